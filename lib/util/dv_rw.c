#include "dv_rw.h"

#include <string.h>

void dv_rd_init(dv_rd *r, const void *p, size_t len) {
  r->p = p;
  r->len = p ? len : 0;
  r->pos = 0;
  r->err = 0;
}

size_t dv_rd_left(const dv_rd *r) {
  return r->err ? 0 : r->len - r->pos;
}

int dv_rd_fail(dv_rd *r, int err) {
  if (r->err == 0) {
    r->err = err;
  }
  return r->err;
}

/* Returns a pointer to the next |n| bytes and advances, or NULL. */
static const uint8_t *take(dv_rd *r, size_t n) {
  const uint8_t *p;
  if (r->err) {
    return NULL;
  }
  if (n > r->len - r->pos) {
    dv_rd_fail(r, DVOICE_ERR_TRUNCATED);
    return NULL;
  }
  p = r->p + r->pos;
  r->pos += n;
  return p;
}

int dv_rd_u8(dv_rd *r, uint8_t *out) {
  const uint8_t *p = take(r, 1);
  *out = p ? p[0] : 0;
  return r->err;
}

int dv_rd_u16(dv_rd *r, uint16_t *out) {
  const uint8_t *p = take(r, 2);
  *out = p ? dv_get_u16(p) : 0;
  return r->err;
}

int dv_rd_u24(dv_rd *r, uint32_t *out) {
  const uint8_t *p = take(r, 3);
  *out = p ? ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2] : 0;
  return r->err;
}

int dv_rd_u32(dv_rd *r, uint32_t *out) {
  const uint8_t *p = take(r, 4);
  *out = p ? dv_get_u32(p) : 0;
  return r->err;
}

int dv_rd_u64(dv_rd *r, uint64_t *out) {
  const uint8_t *p = take(r, 8);
  *out = p ? dv_get_u64(p) : 0;
  return r->err;
}

int dv_rd_varint(dv_rd *r, uint32_t *out) {
  const uint8_t *p;
  uint8_t first;
  uint32_t v;
  *out = 0;
  if (r->err) {
    return r->err;
  }
  if (r->pos >= r->len) {
    return dv_rd_fail(r, DVOICE_ERR_TRUNCATED);
  }
  first = r->p[r->pos];
  switch (first >> 6) {
    case 0:
      p = take(r, 1);
      v = p[0];
      break;
    case 1:
      if ((p = take(r, 2)) == NULL) {
        return r->err;
      }
      v = dv_get_u16(p) & 0x3fffu;
      if (v < 0x40u) {
        return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
      }
      break;
    case 2:
      if ((p = take(r, 4)) == NULL) {
        return r->err;
      }
      v = dv_get_u32(p) & 0x3fffffffu;
      if (v < 0x4000u) {
        return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
      }
      break;
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  *out = v;
  return 0;
}

int dv_rd_copy(dv_rd *r, void *out, size_t n) {
  const uint8_t *p = take(r, n);
  if (p == NULL) {
    if (n > 0) {
      memset(out, 0, n);
    }
    return r->err;
  }
  if (n > 0) {
    memcpy(out, p, n);
  }
  return 0;
}

int dv_rd_bytes(dv_rd *r, const uint8_t **out, size_t n) {
  *out = take(r, n);
  return r->err;
}

int dv_rd_skip(dv_rd *r, size_t n) {
  take(r, n);
  return r->err;
}

int dv_rd_opaque(dv_rd *r, const uint8_t **out, size_t *out_len) {
  uint32_t n;
  *out = NULL;
  *out_len = 0;
  if (dv_rd_varint(r, &n) != 0) {
    return r->err;
  }
  if ((*out = take(r, n)) == NULL) {
    return r->err;
  }
  *out_len = n;
  return 0;
}

int dv_rd_vec(dv_rd *r, dv_rd *sub) {
  const uint8_t *p;
  size_t n;
  dv_rd_init(sub, NULL, 0);
  if (dv_rd_opaque(r, &p, &n) != 0) {
    sub->err = r->err;
    return r->err;
  }
  dv_rd_init(sub, p, n);
  return 0;
}

int dv_rd_finish(dv_rd *r) {
  if (r->err) {
    return r->err;
  }
  if (r->pos != r->len) {
    return dv_rd_fail(r, DVOICE_ERR_TRAILING);
  }
  return 0;
}

void dv_wr_init(dv_wr *w, dv_buf *b) {
  w->b = b;
  w->err = 0;
}

static uint8_t *grow(dv_wr *w, size_t n) {
  uint8_t *p;
  if (w->err) {
    return NULL;
  }
  p = dv_buf_extend(w->b, n);
  if (p == NULL) {
    w->err = DVOICE_ERR_NOMEM;
  }
  return p;
}

void dv_wr_u8(dv_wr *w, uint8_t v) {
  uint8_t *p = grow(w, 1);
  if (p) {
    p[0] = v;
  }
}

void dv_wr_u16(dv_wr *w, uint16_t v) {
  uint8_t *p = grow(w, 2);
  if (p) {
    dv_put_u16(p, v);
  }
}

void dv_wr_u24(dv_wr *w, uint32_t v) {
  uint8_t *p;
  if (v > 0xffffffu) {
    if (!w->err) {
      w->err = DVOICE_ERR_TOO_LARGE;
    }
    return;
  }
  if ((p = grow(w, 3)) != NULL) {
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
  }
}

void dv_wr_u32(dv_wr *w, uint32_t v) {
  uint8_t *p = grow(w, 4);
  if (p) {
    dv_put_u32(p, v);
  }
}

void dv_wr_u64(dv_wr *w, uint64_t v) {
  uint8_t *p = grow(w, 8);
  if (p) {
    dv_put_u64(p, v);
  }
}

size_t dv_varint_size(uint32_t v) {
  if (v < 0x40u) {
    return 1;
  }
  if (v < 0x4000u) {
    return 2;
  }
  if (v <= DV_VARINT_MAX) {
    return 4;
  }
  return 0;
}

static void put_varint(uint8_t *p, size_t size, uint32_t v) {
  switch (size) {
    case 1:
      p[0] = (uint8_t)v;
      break;
    case 2:
      dv_put_u16(p, (uint16_t)(0x4000u | v));
      break;
    default:
      dv_put_u32(p, 0x80000000u | v);
      break;
  }
}

void dv_wr_varint(dv_wr *w, uint32_t v) {
  size_t size = dv_varint_size(v);
  uint8_t *p;
  if (size == 0) {
    if (!w->err) {
      w->err = DVOICE_ERR_TOO_LARGE;
    }
    return;
  }
  if ((p = grow(w, size)) != NULL) {
    put_varint(p, size, v);
  }
}

void dv_wr_bytes(dv_wr *w, const void *p, size_t n) {
  uint8_t *d;
  if (n == 0) {
    return;
  }
  if ((d = grow(w, n)) != NULL) {
    memcpy(d, p, n);
  }
}

void dv_wr_opaque(dv_wr *w, const void *p, size_t n) {
  if (n > DV_VARINT_MAX) {
    if (!w->err) {
      w->err = DVOICE_ERR_TOO_LARGE;
    }
    return;
  }
  dv_wr_varint(w, (uint32_t)n);
  dv_wr_bytes(w, p, n);
}

size_t dv_wr_vec_begin(dv_wr *w) {
  /* Reserve the longest prefix; dv_wr_vec_end shrinks it to the minimum. */
  size_t mark = w->b->len;
  grow(w, 4);
  return mark;
}

void dv_wr_vec_end(dv_wr *w, size_t mark) {
  size_t body, size;
  if (w->err) {
    return;
  }
  body = w->b->len - mark - 4;
  size = body > DV_VARINT_MAX ? 0 : dv_varint_size((uint32_t)body);
  if (size == 0) {
    w->err = DVOICE_ERR_TOO_LARGE;
    return;
  }
  memmove(w->b->data + mark + size, w->b->data + mark + 4, body);
  put_varint(w->b->data + mark, size, (uint32_t)body);
  w->b->len = mark + size + body;
}
