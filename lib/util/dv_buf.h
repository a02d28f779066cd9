/* A growable byte buffer. */
#ifndef DV_BUF_H
#define DV_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

typedef struct dv_buf {
  uint8_t *data;
  size_t len;
  size_t cap;
  const dvoice_mem *mem; /* borrowed; NULL for the default allocator */
} dv_buf;

/* Initialises an empty buffer; allocates nothing. */
void dv_buf_init(dv_buf *b, const dvoice_mem *mem);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void dv_buf_free(dv_buf *b);
/* Like dv_buf_free, wiping the bytes first (for secrets). */
void dv_buf_free_secret(dv_buf *b);
/* Ensures room for |extra| more bytes. 0 or DVOICE_ERR_NOMEM,
 * DVOICE_ERR_TOO_LARGE on size overflow. */
int dv_buf_reserve(dv_buf *b, size_t extra);
/* Appends |len| bytes (|p| may be NULL when len is 0). 0 or NOMEM. */
int dv_buf_append(dv_buf *b, const void *p, size_t len);
/* Appends one byte. */
int dv_buf_push(dv_buf *b, uint8_t byte);
/* Appends a NUL-terminated string without its NUL. */
int dv_buf_append_str(dv_buf *b, const char *s);
/* Appends printf-formatted text (no NUL stored; data[len] is NUL). */
int dv_buf_appendf(dv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Removes the first |n| bytes (n <= len). */
void dv_buf_consume(dv_buf *b, size_t n);
/* Sets len to 0, keeping the storage. */
void dv_buf_reset(dv_buf *b);
/* Grows the buffer by |n| bytes and returns a pointer to them (uninitialised);
 * NULL on allocation failure. */
uint8_t *dv_buf_extend(dv_buf *b, size_t n);

#endif
