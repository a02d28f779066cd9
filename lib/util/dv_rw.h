/*
 * Bounded big-endian reader and writer, with MLS/QUIC-style variable-length
 * integers (RFC 9420 section 2.1.2: 1, 2 or 4 bytes, 2-bit length prefix,
 * minimal encoding required on decode, prefix 0b11 invalid).
 *
 * Both keep a sticky error: after the first failure every further call fails
 * with the same code and reads/writes nothing, so a decoder can read a whole
 * structure and check |err| once. A reader never reads outside [p, p+len).
 */
#ifndef DV_RW_H
#define DV_RW_H

#include <stddef.h>
#include <stdint.h>

#include "dv_buf.h"

typedef struct dv_rd {
  const uint8_t *p;
  size_t len;
  size_t pos;
  int err; /* 0, or the first error: TRUNCATED, MALFORMED, TOO_LARGE */
} dv_rd;

/* Largest value an MLS varint can carry (2^30 - 1). */
#define DV_VARINT_MAX 0x3fffffffu

/* Starts reading |len| bytes at |p| (borrowed while |r| is used). */
void dv_rd_init(dv_rd *r, const void *p, size_t len);
/* Bytes left to read (0 after an error). */
size_t dv_rd_left(const dv_rd *r);
/* Each returns 0 or the sticky error; on error |*out| is set to 0. */
int dv_rd_u8(dv_rd *r, uint8_t *out);
int dv_rd_u16(dv_rd *r, uint16_t *out);
int dv_rd_u24(dv_rd *r, uint32_t *out);
int dv_rd_u32(dv_rd *r, uint32_t *out);
int dv_rd_u64(dv_rd *r, uint64_t *out);
/* MLS varint; DVOICE_ERR_MALFORMED for prefix 0b11 or a non-minimal form. */
int dv_rd_varint(dv_rd *r, uint32_t *out);
/* Copies |n| bytes to |out|. */
int dv_rd_copy(dv_rd *r, void *out, size_t n);
/* Points |*out| at the next |n| bytes (borrowed from the input) and skips. */
int dv_rd_bytes(dv_rd *r, const uint8_t **out, size_t n);
int dv_rd_skip(dv_rd *r, size_t n);
/* Reads an MLS opaque<V>: varint length then that many bytes, returned as a
 * borrowed pointer and length. */
int dv_rd_opaque(dv_rd *r, const uint8_t **out, size_t *out_len);
/* Reads a varint-length-prefixed vector and initialises |sub| over its body;
 * the outer reader skips past it. */
int dv_rd_vec(dv_rd *r, dv_rd *sub);
/* Records |err| (if no error is recorded yet); returns the sticky error. */
int dv_rd_fail(dv_rd *r, int err);
/* DVOICE_ERR_TRAILING if bytes are left, else the sticky error (0 if none). */
int dv_rd_finish(dv_rd *r);

typedef struct dv_wr {
  dv_buf *b; /* borrowed */
  int err;   /* 0, or the first error (NOMEM, TOO_LARGE, INVALID_ARGUMENT) */
} dv_wr;

/* Starts appending to |b| (borrowed while |w| is used); clears the error. */
void dv_wr_init(dv_wr *w, dv_buf *b);
void dv_wr_u8(dv_wr *w, uint8_t v);
void dv_wr_u16(dv_wr *w, uint16_t v);
void dv_wr_u24(dv_wr *w, uint32_t v);
void dv_wr_u32(dv_wr *w, uint32_t v);
void dv_wr_u64(dv_wr *w, uint64_t v);
/* MLS varint, minimal form; TOO_LARGE above DV_VARINT_MAX. */
void dv_wr_varint(dv_wr *w, uint32_t v);
void dv_wr_bytes(dv_wr *w, const void *p, size_t n);
/* varint length then the bytes. */
void dv_wr_opaque(dv_wr *w, const void *p, size_t n);
/* Starts a varint-length-prefixed vector; returns a mark for dv_wr_vec_end.
 * The body is written with the ordinary calls in between. */
size_t dv_wr_vec_begin(dv_wr *w);
/* Closes the vector opened at |mark|, writing its minimal length prefix. */
void dv_wr_vec_end(dv_wr *w, size_t mark);
/* Encoded size of a varint for |v| (1, 2 or 4), 0 if too large. */
size_t dv_varint_size(uint32_t v);

/* Big-endian stores and loads on raw memory (caller checks bounds). */
static inline void dv_put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void dv_put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline void dv_put_u64(uint8_t *p, uint64_t v) {
  dv_put_u32(p, (uint32_t)(v >> 32));
  dv_put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t dv_get_u16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t dv_get_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
         ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static inline uint64_t dv_get_u64(const uint8_t *p) {
  return ((uint64_t)dv_get_u32(p) << 32) | dv_get_u32(p + 4);
}

#endif
