/*
 * Array-based left-balanced binary tree math (RFC 9420 appendix C).
 * Nodes are numbered 0..2n-2 for n leaves; leaf i is node 2i. Node indices
 * are uint32_t. Functions taking |n_leaves| require n_leaves >= 1; the
 * ratchet tree keeps n_leaves a power of two, but these functions also work
 * for any n (as the tree-math.json vectors require).
 */
#ifndef DV_MLS_TREEMATH_H
#define DV_MLS_TREEMATH_H

#include <stddef.h>
#include <stdint.h>

#define DV_MLS_NONE UINT32_MAX

/* Number of trailing 1 bits of |x| (0 for leaves). */
uint32_t dv_mls_tm_level(uint32_t x);
/* 2n - 1 for n > 0, else 0. */
uint32_t dv_mls_tm_width(uint32_t n_leaves);
uint32_t dv_mls_tm_root(uint32_t n_leaves);
/* Children of parent |x|; DV_MLS_NONE for a leaf. */
uint32_t dv_mls_tm_left(uint32_t x);
uint32_t dv_mls_tm_right(uint32_t x);
/* Parent / sibling of |x| in a tree of |n_leaves|; DV_MLS_NONE for the root
 * or a node outside the tree. */
uint32_t dv_mls_tm_parent(uint32_t x, uint32_t n_leaves);
uint32_t dv_mls_tm_sibling(uint32_t x, uint32_t n_leaves);
/* Writes the direct path of |x| (parent .. root, root included, x excluded)
 * into |out| (capacity |cap|); returns its length (0 for the root), or
 * DV_MLS_NONE if |cap| is too small. 32 entries always suffice. */
uint32_t dv_mls_tm_direct_path(uint32_t x, uint32_t n_leaves, uint32_t *out,
                               uint32_t cap);
/* The copath: the sibling of x and of every direct-path node but the root. */
uint32_t dv_mls_tm_copath(uint32_t x, uint32_t n_leaves, uint32_t *out,
                          uint32_t cap);
/* Lowest common ancestor of nodes |x| and |y| (x itself if x == y). */
uint32_t dv_mls_tm_common_ancestor(uint32_t x, uint32_t y);
/* Nonzero if |a| is an ancestor of (or equal to) |d|. */
int dv_mls_tm_is_ancestor(uint32_t a, uint32_t d);

#endif
