/* Allocation through the application's dvoice_mem hooks. */
#ifndef DV_MEM_H
#define DV_MEM_H

#include <stddef.h>

#include <dvoice/dvoice.h>

/* |mem| may be NULL everywhere below: the default allocator is used. */
void *dv_malloc(const dvoice_mem *mem, size_t size);
void *dv_calloc(const dvoice_mem *mem, size_t nmemb, size_t size);
void *dv_realloc(const dvoice_mem *mem, void *ptr, size_t size);
void dv_free(const dvoice_mem *mem, void *ptr);
/* Copies |len| bytes into a new allocation; NULL on failure. len 0 gives a
 * valid 1-byte allocation so that NULL always means failure. */
void *dv_memdup(const dvoice_mem *mem, const void *src, size_t len);
/* Copies a NUL-terminated string; NULL if |s| is NULL or on failure. */
char *dv_strdup(const dvoice_mem *mem, const char *s);
/* Wipes |len| bytes at |p| in a way the compiler cannot elide. */
void dv_wipe(void *p, size_t len);
/* dv_wipe(p, len) then dv_free(mem, p). */
void dv_free_secret(const dvoice_mem *mem, void *p, size_t len);

#endif
