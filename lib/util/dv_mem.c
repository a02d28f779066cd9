#include "dv_mem.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static void *def_malloc(size_t size, void *ud) {
  (void)ud;
  return malloc(size);
}

static void def_free(void *ptr, void *ud) {
  (void)ud;
  free(ptr);
}

static void *def_calloc(size_t n, size_t size, void *ud) {
  (void)ud;
  return calloc(n, size);
}

static void *def_realloc(void *ptr, size_t size, void *ud) {
  (void)ud;
  return realloc(ptr, size);
}

static const dvoice_mem default_mem = {NULL, def_malloc, def_free, def_calloc,
                                       def_realloc};

const dvoice_mem *dvoice_mem_default(void) {
  return &default_mem;
}

static const dvoice_mem *pick(const dvoice_mem *mem) {
  return mem ? mem : &default_mem;
}

void *dv_malloc(const dvoice_mem *mem, size_t size) {
  mem = pick(mem);
  return mem->malloc(size ? size : 1, mem->user_data);
}

void *dv_calloc(const dvoice_mem *mem, size_t nmemb, size_t size) {
  mem = pick(mem);
  if (nmemb == 0 || size == 0) {
    nmemb = 1;
    size = 1;
  }
  return mem->calloc(nmemb, size, mem->user_data);
}

void *dv_realloc(const dvoice_mem *mem, void *ptr, size_t size) {
  mem = pick(mem);
  return mem->realloc(ptr, size ? size : 1, mem->user_data);
}

void dv_free(const dvoice_mem *mem, void *ptr) {
  if (ptr == NULL) {
    return;
  }
  mem = pick(mem);
  mem->free(ptr, mem->user_data);
}

void *dv_memdup(const dvoice_mem *mem, const void *src, size_t len) {
  void *p = dv_malloc(mem, len);
  if (p != NULL && len > 0) {
    memcpy(p, src, len);
  }
  return p;
}

char *dv_strdup(const dvoice_mem *mem, const char *s) {
  if (s == NULL) {
    return NULL;
  }
  return dv_memdup(mem, s, strlen(s) + 1);
}

void dv_wipe(void *p, size_t len) {
  if (p != NULL && len > 0) {
    sodium_memzero(p, len);
  }
}

void dv_free_secret(const dvoice_mem *mem, void *p, size_t len) {
  dv_wipe(p, len);
  dv_free(mem, p);
}
