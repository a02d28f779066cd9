#include "mls/mls_treemath.h"

uint32_t dv_mls_tm_level(uint32_t x) {
  uint32_t k = 0;
  while (k < 32 && ((x >> k) & 1u) == 1u) {
    k++;
  }
  return k;
}

uint32_t dv_mls_tm_width(uint32_t n_leaves) {
  return n_leaves == 0 ? 0 : 2 * n_leaves - 1;
}

uint32_t dv_mls_tm_root(uint32_t n_leaves) {
  uint32_t w = dv_mls_tm_width(n_leaves);
  uint32_t k = 0;
  if (w == 0) {
    return DV_MLS_NONE;
  }
  /* root = 2^floor(log2(w)) - 1 */
  while ((w >> (k + 1)) != 0) {
    k++;
  }
  return (1u << k) - 1;
}

uint32_t dv_mls_tm_left(uint32_t x) {
  uint32_t k = dv_mls_tm_level(x);
  if (k == 0 || k >= 32) {
    return DV_MLS_NONE;
  }
  return x ^ (1u << (k - 1));
}

/* The right child in an infinite (full) tree. */
static uint32_t right_full(uint32_t x) {
  uint32_t k = dv_mls_tm_level(x);
  if (k == 0 || k >= 31) {
    return DV_MLS_NONE;
  }
  return x ^ (3u << (k - 1));
}

uint32_t dv_mls_tm_right(uint32_t x) {
  return right_full(x);
}

/* The parent in an infinite (full) tree. */
static uint32_t parent_full(uint32_t x) {
  uint32_t k = dv_mls_tm_level(x);
  uint32_t b;
  if (k >= 30) {
    return DV_MLS_NONE;
  }
  b = (x >> (k + 1)) & 1u;
  return (x | (1u << k)) ^ (b << (k + 1));
}

uint32_t dv_mls_tm_parent(uint32_t x, uint32_t n_leaves) {
  uint32_t w = dv_mls_tm_width(n_leaves);
  uint32_t p;
  if (x >= w || x == dv_mls_tm_root(n_leaves)) {
    return DV_MLS_NONE;
  }
  /* In a tree that is not full, climb past the parents that lie beyond the
   * last node; the real parent is the first one inside the tree. */
  p = parent_full(x);
  while (p != DV_MLS_NONE && p >= w) {
    p = parent_full(p);
  }
  return p;
}

uint32_t dv_mls_tm_sibling(uint32_t x, uint32_t n_leaves) {
  uint32_t p = dv_mls_tm_parent(x, n_leaves);
  uint32_t l, r, w;
  if (p == DV_MLS_NONE) {
    return DV_MLS_NONE;
  }
  l = dv_mls_tm_left(p);
  if (l != x) {
    return l;
  }
  /* The right child of a parent in a non-full tree: descend left from the
   * full-tree right child until inside the tree. */
  w = dv_mls_tm_width(n_leaves);
  r = right_full(p);
  while (r != DV_MLS_NONE && r >= w) {
    r = dv_mls_tm_left(r);
  }
  return r;
}

uint32_t dv_mls_tm_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out,
                               uint32_t cap) {
  uint32_t n = 0;
  uint32_t p = dv_mls_tm_parent(x, n_leaves);
  while (p != DV_MLS_NONE) {
    if (n >= cap) {
      return DV_MLS_NONE;
    }
    out[n++] = p;
    p = dv_mls_tm_parent(p, n_leaves);
  }
  return n;
}

uint32_t dv_mls_tm_copath(uint32_t x, uint32_t n_leaves, uint32_t *out,
                          uint32_t cap) {
  uint32_t n = 0;
  uint32_t cur = x;
  uint32_t s;
  while ((s = dv_mls_tm_sibling(cur, n_leaves)) != DV_MLS_NONE) {
    if (n >= cap) {
      return DV_MLS_NONE;
    }
    out[n++] = s;
    cur = dv_mls_tm_parent(cur, n_leaves);
  }
  return n;
}

uint32_t dv_mls_tm_common_ancestor(uint32_t x, uint32_t y) {
  uint32_t k = 0;
  if (dv_mls_tm_is_ancestor(x, y)) {
    return x;
  }
  if (dv_mls_tm_is_ancestor(y, x)) {
    return y;
  }
  /* Shift off bits until the prefixes agree; the ancestor keeps the common
   * prefix, then a 0 bit and k - 1 one bits. */
  while (x != y) {
    x >>= 1;
    y >>= 1;
    k++;
  }
  return (x << k) + (1u << (k - 1)) - 1;
}

int dv_mls_tm_is_ancestor(uint32_t a, uint32_t d) {
  uint32_t k = dv_mls_tm_level(a);
  uint32_t span;
  if (k >= 31) {
    return 0;
  }
  /* Node a at level k covers the range [a - (2^k - 1), a + (2^k - 1)]. */
  span = (1u << k) - 1;
  return d + span >= a && d <= a + span;
}
