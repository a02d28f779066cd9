/*
 * A growable FIFO of fixed-size elements (a ring over one allocation). A
 * zero-filled dv_ring is a valid empty queue, so it can live inside an object
 * allocated with dv_calloc. The element size and allocator are passed on
 * each call that may allocate or index; they must be the same every time.
 */
#ifndef DV_RING_H
#define DV_RING_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

typedef struct dv_ring {
  uint8_t *data;
  size_t head, len, cap;
} dv_ring;

/* Appends a zero-filled element and returns it (valid until the next push),
 * or NULL if growing the ring failed (the queue is unchanged). */
void *dv_ring_push(dv_ring *r, const dvoice_mem *mem, size_t elem);
/* Removes the oldest element and returns a pointer to it, valid until the
 * next push; NULL when empty. */
void *dv_ring_shift(dv_ring *r, size_t elem);
/* Drops every element, keeping the storage. */
void dv_ring_clear(dv_ring *r);
/* Frees the storage; the ring is empty and reusable afterwards. */
void dv_ring_free(dv_ring *r, const dvoice_mem *mem);

#endif
