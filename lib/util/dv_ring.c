#include "dv_ring.h"

#include <string.h>

#include "dv_mem.h"

void *dv_ring_push(dv_ring *r, const dvoice_mem *mem, size_t elem) {
  uint8_t *slot;
  if (r->len == r->cap) {
    size_t cap = r->cap == 0 ? 8 : r->cap * 2, i;
    uint8_t *n;
    if (cap > SIZE_MAX / elem) {
      return NULL;
    }
    n = dv_malloc(mem, cap * elem);
    if (n == NULL) {
      return NULL;
    }
    /* Unwrap the old contents to the start of the new block. */
    for (i = 0; i < r->len; i++) {
      memcpy(n + i * elem, r->data + ((r->head + i) % r->cap) * elem, elem);
    }
    dv_free(mem, r->data);
    r->data = n;
    r->cap = cap;
    r->head = 0;
  }
  slot = r->data + ((r->head + r->len) % r->cap) * elem;
  memset(slot, 0, elem);
  r->len++;
  return slot;
}

void *dv_ring_shift(dv_ring *r, size_t elem) {
  uint8_t *slot;
  if (r->len == 0) {
    return NULL;
  }
  slot = r->data + r->head * elem;
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return slot;
}

void dv_ring_clear(dv_ring *r) {
  r->head = 0;
  r->len = 0;
}

void dv_ring_free(dv_ring *r, const dvoice_mem *mem) {
  dv_free(mem, r->data);
  r->data = NULL;
  r->head = r->len = r->cap = 0;
}
