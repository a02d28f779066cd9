#include "dv_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dv_mem.h"

void dv_buf_init(dv_buf *b, const dvoice_mem *mem) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->mem = mem;
}

void dv_buf_free(dv_buf *b) {
  dv_free(b->mem, b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void dv_buf_free_secret(dv_buf *b) {
  dv_wipe(b->data, b->cap);
  dv_buf_free(b);
}

int dv_buf_reserve(dv_buf *b, size_t extra) {
  size_t need, cap;
  uint8_t *p;
  if (extra > SIZE_MAX - b->len - 1) {
    return DVOICE_ERR_TOO_LARGE;
  }
  /* One spare byte so that text built here can always be NUL-terminated. */
  need = b->len + extra + 1;
  if (need <= b->cap) {
    return 0;
  }
  cap = b->cap ? b->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  p = dv_realloc(b->mem, b->data, cap);
  if (p == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int dv_buf_append(dv_buf *b, const void *p, size_t len) {
  int rv = dv_buf_reserve(b, len);
  if (rv != 0) {
    return rv;
  }
  if (len > 0) {
    memcpy(b->data + b->len, p, len);
  }
  b->len += len;
  b->data[b->len] = 0;
  return 0;
}

int dv_buf_push(dv_buf *b, uint8_t byte) {
  return dv_buf_append(b, &byte, 1);
}

int dv_buf_append_str(dv_buf *b, const char *s) {
  return dv_buf_append(b, s, strlen(s));
}

int dv_buf_appendf(dv_buf *b, const char *fmt, ...) {
  va_list ap;
  int n, rv;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = dv_buf_reserve(b, (size_t)n);
  if (rv != 0) {
    return rv;
  }
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void dv_buf_consume(dv_buf *b, size_t n) {
  if (n >= b->len) {
    dv_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = 0;
}

void dv_buf_reset(dv_buf *b) {
  b->len = 0;
  if (b->data != NULL) {
    b->data[0] = 0;
  }
}

uint8_t *dv_buf_extend(dv_buf *b, size_t n) {
  uint8_t *p;
  if (dv_buf_reserve(b, n) != 0) {
    return NULL;
  }
  p = b->data + b->len;
  b->len += n;
  b->data[b->len] = 0;
  return p;
}
