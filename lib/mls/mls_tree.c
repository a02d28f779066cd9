#include "mls/mls_tree.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>

#include "util/dv_buf.h"
#include "util/dv_mem.h"

/* ---- SHA-256 over pieces ------------------------------------------------ */

typedef struct hasher {
  mbedtls_sha256_context ctx;
  int err;
} hasher;

static void h_init(hasher *h) {
  mbedtls_sha256_init(&h->ctx);
  h->err = mbedtls_sha256_starts_ret(&h->ctx, 0) != 0;
}

static void h_bytes(hasher *h, const void *p, size_t n) {
  if (n > 0 && !h->err) {
    h->err = mbedtls_sha256_update_ret(&h->ctx, p, n) != 0;
  }
}

static void h_u8(hasher *h, uint8_t v) {
  h_bytes(h, &v, 1);
}

static void h_u32(hasher *h, uint32_t v) {
  uint8_t b[4];
  dv_put_u32(b, v);
  h_bytes(h, b, 4);
}

static void h_varint(hasher *h, size_t v) {
  uint8_t b[4];
  size_t n = v > DV_VARINT_MAX ? 0 : dv_varint_size((uint32_t)v);
  if (n == 0) {
    h->err = 1;
    return;
  }
  if (n == 1) {
    b[0] = (uint8_t)v;
  } else if (n == 2) {
    dv_put_u16(b, (uint16_t)(0x4000u | v));
  } else {
    dv_put_u32(b, (uint32_t)(0x80000000u | v));
  }
  h_bytes(h, b, n);
}

static void h_opaque(hasher *h, const void *p, size_t n) {
  h_varint(h, n);
  h_bytes(h, p, n);
}

static int h_finish(hasher *h, uint8_t out[DV_MLS_HASH_LEN]) {
  if (!h->err) {
    h->err = mbedtls_sha256_finish_ret(&h->ctx, out) != 0;
  }
  mbedtls_sha256_free(&h->ctx);
  return h->err ? DVOICE_ERR_CRYPTO : 0;
}

/* ---- node storage ------------------------------------------------------- */

static uint32_t width(const dv_mls_tree *t) {
  return dv_mls_tm_width(t->n_leaves);
}

static void node_clear(const dv_mls_tree *t, dv_mls_tree_node *n) {
  dv_free(t->mem, n->raw);
  memset(n, 0, sizeof(*n));
}

/* Takes ownership of |raw| (allocated from t->mem) and decodes the view. */
static int node_adopt(dv_mls_tree *t, uint32_t x, uint8_t type, uint8_t *raw,
                      size_t len) {
  dv_mls_tree_node *n = &t->nodes[x];
  dv_mls_tree_node tmp;
  dv_rd r;
  memset(&tmp, 0, sizeof(tmp));
  tmp.type = type;
  tmp.raw = raw;
  tmp.raw_len = len;
  dv_rd_init(&r, raw, len);
  if (type == DV_MLS_NODE_LEAF) {
    dv_mls_leaf_node_read(&r, &tmp.u.leaf);
  } else {
    dv_mls_parent_node_read(&r, &tmp.u.parent);
  }
  if (dv_rd_finish(&r) != 0) {
    dv_free(t->mem, raw);
    return r.err;
  }
  node_clear(t, n);
  *n = tmp;
  return 0;
}

static int node_copy_raw(dv_mls_tree *t, uint32_t x, uint8_t type,
                         const uint8_t *p, size_t len) {
  uint8_t *raw = dv_memdup(t->mem, p, len);
  if (raw == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  return node_adopt(t, x, type, raw, len);
}

void dv_mls_tree_init(dv_mls_tree *t, const dvoice_mem *mem) {
  t->mem = mem;
  t->n_leaves = 0;
  t->nodes = NULL;
}

void dv_mls_tree_free(dv_mls_tree *t) {
  uint32_t i, w = width(t);
  for (i = 0; i < w; i++) {
    node_clear(t, &t->nodes[i]);
  }
  dv_free(t->mem, t->nodes);
  t->nodes = NULL;
  t->n_leaves = 0;
}

/* Resizes to |n_leaves| leaves; new nodes are blank, dropped ones freed. */
static int resize(dv_mls_tree *t, uint32_t n_leaves) {
  uint32_t old_w = width(t), new_w = dv_mls_tm_width(n_leaves), i;
  dv_mls_tree_node *nodes;
  if (n_leaves > DV_MLS_TREE_MAX_LEAVES) {
    return DVOICE_ERR_TOO_LARGE;
  }
  for (i = new_w; i < old_w; i++) {
    node_clear(t, &t->nodes[i]);
  }
  if (new_w == 0) {
    dv_free(t->mem, t->nodes);
    t->nodes = NULL;
    t->n_leaves = 0;
    return 0;
  }
  nodes = dv_realloc(t->mem, t->nodes, (size_t)new_w * sizeof(*nodes));
  if (nodes == NULL) {
    if (new_w < old_w) {
      /* Shrinking in place failed: keep the larger block. */
      t->n_leaves = n_leaves;
      return 0;
    }
    return DVOICE_ERR_NOMEM;
  }
  for (i = old_w; i < new_w; i++) {
    memset(&nodes[i], 0, sizeof(nodes[i]));
  }
  t->nodes = nodes;
  t->n_leaves = n_leaves;
  return 0;
}

int dv_mls_tree_copy(dv_mls_tree *dst, const dv_mls_tree *src) {
  uint32_t i, w = width(src);
  int rc;
  dv_mls_tree tmp;
  if (dst == src) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_mls_tree_init(&tmp, src->mem);
  if ((rc = resize(&tmp, src->n_leaves)) != 0) {
    return rc;
  }
  for (i = 0; i < w; i++) {
    if (src->nodes[i].type != 0) {
      rc = node_copy_raw(&tmp, i, src->nodes[i].type, src->nodes[i].raw,
                         src->nodes[i].raw_len);
      if (rc != 0) {
        dv_mls_tree_free(&tmp);
        return rc;
      }
    }
  }
  *dst = tmp;
  return 0;
}

/* ---- accessors ---------------------------------------------------------- */

const dv_mls_leaf_node *dv_mls_tree_leaf(const dv_mls_tree *t,
                                         uint32_t leaf_index) {
  if (leaf_index >= t->n_leaves ||
      t->nodes[2 * leaf_index].type != DV_MLS_NODE_LEAF) {
    return NULL;
  }
  return &t->nodes[2 * leaf_index].u.leaf;
}

const dv_mls_parent_node *dv_mls_tree_parent(const dv_mls_tree *t,
                                             uint32_t node) {
  if (node >= width(t) || t->nodes[node].type != DV_MLS_NODE_PARENT) {
    return NULL;
  }
  return &t->nodes[node].u.parent;
}

int dv_mls_tree_is_blank(const dv_mls_tree *t, uint32_t node) {
  return node >= width(t) || t->nodes[node].type == 0;
}

/* Encodes with |fn| into a fresh buffer and adopts it as node |x|. */
static int set_encoded(dv_mls_tree *t, uint32_t x, uint8_t type,
                       const void *src) {
  dv_buf b;
  dv_wr w;
  dv_buf_init(&b, t->mem);
  dv_wr_init(&w, &b);
  if (type == DV_MLS_NODE_LEAF) {
    dv_mls_leaf_node_write(&w, src);
  } else {
    dv_mls_parent_node_write(&w, src);
  }
  if (w.err) {
    dv_buf_free(&b);
    return w.err;
  }
  if (b.len == 0) {
    dv_buf_free(&b);
    return DVOICE_ERR_INTERNAL;
  }
  /* The buffer's block becomes the node's raw encoding. */
  return node_adopt(t, x, type, b.data, b.len);
}

int dv_mls_tree_set_leaf(dv_mls_tree *t, uint32_t leaf_index,
                         const dv_mls_leaf_node *leaf) {
  if (leaf_index >= t->n_leaves || leaf == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return set_encoded(t, 2 * leaf_index, DV_MLS_NODE_LEAF, leaf);
}

int dv_mls_tree_set_parent(dv_mls_tree *t, uint32_t node,
                           const dv_mls_parent_node *parent) {
  if (node >= width(t) || (node & 1u) == 0 || parent == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return set_encoded(t, node, DV_MLS_NODE_PARENT, parent);
}

void dv_mls_tree_blank(dv_mls_tree *t, uint32_t node) {
  if (node < width(t)) {
    node_clear(t, &t->nodes[node]);
  }
}

/* ---- decode / encode ---------------------------------------------------- */

/* Reads an optional<Node> presence byte (0 or 1). */
static int rd_present_node(dv_rd *r, int *present) {
  uint8_t v;
  *present = 0;
  if (dv_rd_u8(r, &v) != 0) {
    return r->err;
  }
  if (v > 1) {
    return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  *present = v;
  return 0;
}

static uint32_t leaf_of_node(uint32_t x) {
  return x / 2;
}

/* Checks the unmerged_leaves of parent |x|: ascending, in range,
 * descendants of x, non-blank leaves. */
static int check_unmerged(const dv_mls_tree *t, uint32_t x) {
  const dv_mls_parent_node *p = &t->nodes[x].u.parent;
  uint32_t i, prev = 0, li;
  for (i = 0; i < p->unmerged_leaves.count; i++) {
    li = dv_mls_vec_u32(&p->unmerged_leaves, i);
    if ((i > 0 && li <= prev) || li >= t->n_leaves ||
        !dv_mls_tm_is_ancestor(x, 2 * li) ||
        t->nodes[2 * li].type != DV_MLS_NODE_LEAF) {
      return DVOICE_ERR_MALFORMED;
    }
    prev = li;
  }
  return 0;
}

int dv_mls_tree_decode(dv_mls_tree *t, const dvoice_mem *mem, const uint8_t *p,
                       size_t len) {
  dv_rd r, sub;
  uint32_t count = 0, n_leaves = 1, x;
  int present, rc;
  dv_mls_node node;
  size_t start;
  dv_mls_tree_free(t);
  dv_mls_tree_init(t, mem);
  dv_rd_init(&r, p, len);
  if (dv_rd_vec(&r, &sub) != 0 || dv_rd_finish(&r) != 0) {
    return r.err;
  }
  /* First pass: validate the syntax and count the nodes. */
  while (dv_rd_left(&sub) > 0) {
    if (rd_present_node(&sub, &present) != 0) {
      return sub.err;
    }
    if (present) {
      if (dv_mls_node_read(&sub, &node) != 0) {
        return sub.err;
      }
      if (node.type != ((count & 1u) ? DV_MLS_NODE_PARENT : DV_MLS_NODE_LEAF)) {
        return DVOICE_ERR_MALFORMED;
      }
    }
    count++;
    if (count > 2 * DV_MLS_TREE_MAX_LEAVES) {
      return DVOICE_ERR_TOO_LARGE;
    }
    if (dv_rd_left(&sub) == 0 && !present) {
      /* Trailing blank nodes must be omitted. */
      return DVOICE_ERR_MALFORMED;
    }
  }
  if (count == 0 || (count & 1u) == 0) {
    return DVOICE_ERR_MALFORMED;
  }
  while (dv_mls_tm_width(n_leaves) < count) {
    n_leaves *= 2;
  }
  if ((rc = resize(t, n_leaves)) != 0) {
    return rc;
  }
  /* Second pass: copy every node. */
  dv_rd_init(&r, p, len);
  dv_rd_vec(&r, &sub);
  for (x = 0; x < count; x++) {
    rd_present_node(&sub, &present);
    if (!present) {
      continue;
    }
    dv_rd_skip(&sub, 1);
    start = sub.pos;
    if (x & 1u) {
      dv_mls_parent_node_read(&sub, &node.parent);
    } else {
      dv_mls_leaf_node_read(&sub, &node.leaf);
    }
    rc = sub.err
             ? sub.err
             : node_copy_raw(t, x,
                             (x & 1u) ? DV_MLS_NODE_PARENT : DV_MLS_NODE_LEAF,
                             sub.p + start, sub.pos - start);
    if (rc != 0) {
      dv_mls_tree_free(t);
      return rc;
    }
  }
  for (x = 1; x < count; x += 2) {
    if (t->nodes[x].type == DV_MLS_NODE_PARENT &&
        (rc = check_unmerged(t, x)) != 0) {
      dv_mls_tree_free(t);
      return rc;
    }
  }
  return 0;
}

void dv_mls_tree_write(const dv_mls_tree *t, dv_wr *w) {
  uint32_t wd = width(t), last = 0, x;
  int any = 0;
  size_t mark;
  for (x = 0; x < wd; x++) {
    if (t->nodes[x].type != 0) {
      last = x;
      any = 1;
    }
  }
  mark = dv_wr_vec_begin(w);
  for (x = 0; any && x <= last; x++) {
    if (t->nodes[x].type == 0) {
      dv_wr_u8(w, 0);
    } else {
      dv_wr_u8(w, 1);
      dv_wr_u8(w, t->nodes[x].type);
      dv_wr_bytes(w, t->nodes[x].raw, t->nodes[x].raw_len);
    }
  }
  dv_wr_vec_end(w, mark);
}

/* ---- add / remove / truncate -------------------------------------------- */

/* Inserts |li| into parent |x|'s sorted unmerged_leaves. */
static int add_unmerged(dv_mls_tree *t, uint32_t x, uint32_t li) {
  const dv_mls_parent_node *p = &t->nodes[x].u.parent;
  dv_mls_parent_node np = *p;
  uint8_t *list;
  uint32_t i, n = p->unmerged_leaves.count, j = 0;
  int inserted = 0, rc;
  list = dv_malloc(t->mem, ((size_t)n + 1) * 4);
  if (list == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  for (i = 0; i < n; i++) {
    uint32_t v = dv_mls_vec_u32(&p->unmerged_leaves, i);
    if (!inserted && li < v) {
      dv_put_u32(list + 4 * j++, li);
      inserted = 1;
    }
    if (v != li) {
      dv_put_u32(list + 4 * j++, v);
    }
  }
  if (!inserted) {
    dv_put_u32(list + 4 * j++, li);
  }
  np.unmerged_leaves.p = list;
  np.unmerged_leaves.len = (size_t)j * 4;
  np.unmerged_leaves.count = j;
  rc = set_encoded(t, x, DV_MLS_NODE_PARENT, &np);
  dv_free(t->mem, list);
  return rc;
}

int dv_mls_tree_add_leaf(dv_mls_tree *t, const dv_mls_leaf_node *leaf,
                         uint32_t *leaf_index) {
  uint32_t li, dp[32], n, i;
  int rc;
  /* |leaf| may point into t->nodes, which the resize below moves; its
   * bytes live in separate node allocations and stay put. */
  dv_mls_leaf_node copy;
  if (leaf == NULL || leaf_index == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  copy = *leaf;
  leaf = &copy;
  for (li = 0; li < t->n_leaves; li++) {
    if (t->nodes[2 * li].type == 0) {
      break;
    }
  }
  if (li == t->n_leaves) {
    rc = resize(t, t->n_leaves == 0 ? 1 : 2 * t->n_leaves);
    if (rc != 0) {
      return rc;
    }
  }
  if ((rc = dv_mls_tree_set_leaf(t, li, leaf)) != 0) {
    return rc;
  }
  n = dv_mls_tm_direct_path(2 * li, t->n_leaves, dp, 32);
  for (i = 0; i < n; i++) {
    if (t->nodes[dp[i]].type == DV_MLS_NODE_PARENT &&
        (rc = add_unmerged(t, dp[i], li)) != 0) {
      return rc;
    }
  }
  *leaf_index = li;
  return 0;
}

int dv_mls_tree_remove_leaf(dv_mls_tree *t, uint32_t leaf_index) {
  uint32_t dp[32], n, i;
  if (leaf_index >= t->n_leaves || t->nodes[2 * leaf_index].type == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  node_clear(t, &t->nodes[2 * leaf_index]);
  n = dv_mls_tm_direct_path(2 * leaf_index, t->n_leaves, dp, 32);
  for (i = 0; i < n; i++) {
    node_clear(t, &t->nodes[dp[i]]);
  }
  return 0;
}

void dv_mls_tree_truncate(dv_mls_tree *t) {
  uint32_t li;
  int blank;
  while (t->n_leaves > 1) {
    blank = 1;
    for (li = t->n_leaves / 2; li < t->n_leaves && blank; li++) {
      blank = t->nodes[2 * li].type == 0;
    }
    if (!blank) {
      break;
    }
    (void)resize(t, t->n_leaves / 2);
  }
}

/* ---- resolution and filtered direct path -------------------------------- */

static int excluded(uint32_t li, const uint32_t *ex, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (ex[i] == li) {
      return 1;
    }
  }
  return 0;
}

static int resolve(const dv_mls_tree *t, uint32_t x, const uint32_t *ex,
                   size_t n_ex, uint32_t *out, size_t cap, size_t *n) {
  const dv_mls_tree_node *nd = &t->nodes[x];
  uint32_t i;
  int rc;
  if (nd->type == DV_MLS_NODE_LEAF) {
    if (excluded(leaf_of_node(x), ex, n_ex)) {
      return 0;
    }
    if (*n >= cap) {
      return DVOICE_ERR_NOBUF;
    }
    out[(*n)++] = x;
    return 0;
  }
  if (nd->type == DV_MLS_NODE_PARENT) {
    if (*n >= cap) {
      return DVOICE_ERR_NOBUF;
    }
    out[(*n)++] = x;
    for (i = 0; i < nd->u.parent.unmerged_leaves.count; i++) {
      uint32_t li = dv_mls_vec_u32(&nd->u.parent.unmerged_leaves, i);
      if (excluded(li, ex, n_ex)) {
        continue;
      }
      if (*n >= cap) {
        return DVOICE_ERR_NOBUF;
      }
      out[(*n)++] = 2 * li;
    }
    return 0;
  }
  if ((x & 1u) == 0) {
    return 0;
  }
  if ((rc = resolve(t, dv_mls_tm_left(x), ex, n_ex, out, cap, n)) != 0) {
    return rc;
  }
  return resolve(t, dv_mls_tm_right(x), ex, n_ex, out, cap, n);
}

int dv_mls_tree_resolution(const dv_mls_tree *t, uint32_t node,
                           const uint32_t *exclude, size_t n_exclude,
                           uint32_t *out, size_t cap) {
  size_t n = 0;
  int rc;
  if (node >= width(t)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rc = resolve(t, node, exclude, n_exclude, out, cap, &n);
  return rc != 0 ? rc : (int)n;
}

/* Nonzero if the resolution of |x| is non-empty. */
static int has_resolution(const dv_mls_tree *t, uint32_t x) {
  if (t->nodes[x].type != 0) {
    return 1;
  }
  if ((x & 1u) == 0) {
    return 0;
  }
  return has_resolution(t, dv_mls_tm_left(x)) ||
         has_resolution(t, dv_mls_tm_right(x));
}

int dv_mls_tree_filtered_direct_path(const dv_mls_tree *t, uint32_t leaf_index,
                                     uint32_t out[32], uint32_t copath[32]) {
  uint32_t dp[32], cp[32], n, i, k = 0;
  if (leaf_index >= t->n_leaves) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  n = dv_mls_tm_direct_path(2 * leaf_index, t->n_leaves, dp, 32);
  dv_mls_tm_copath(2 * leaf_index, t->n_leaves, cp, 32);
  for (i = 0; i < n; i++) {
    if (has_resolution(t, cp[i])) {
      if (copath != NULL) {
        copath[k] = cp[i];
      }
      out[k++] = dp[i];
    }
  }
  return (int)k;
}

/* ---- tree hash ---------------------------------------------------------- */

/*
 * Tree hash of |x| with the leaves in |ex| treated as blank and removed from
 * every unmerged_leaves list (the "original" tree hash used by parent-hash
 * verification). n_ex 0 gives the plain tree hash.
 */
static int tree_hash_ex(const dv_mls_tree *t, uint32_t x, const uint32_t *ex,
                        size_t n_ex, uint8_t out[DV_MLS_HASH_LEN]) {
  const dv_mls_tree_node *nd = &t->nodes[x];
  uint8_t lh[DV_MLS_HASH_LEN], rh[DV_MLS_HASH_LEN];
  hasher h;
  int rc;
  if ((x & 1u) == 0) {
    h_init(&h);
    h_u8(&h, DV_MLS_NODE_LEAF);
    h_u32(&h, leaf_of_node(x));
    if (nd->type == DV_MLS_NODE_LEAF && !excluded(leaf_of_node(x), ex, n_ex)) {
      h_u8(&h, 1);
      h_bytes(&h, nd->raw, nd->raw_len);
    } else {
      h_u8(&h, 0);
    }
    return h_finish(&h, out);
  }
  if ((rc = tree_hash_ex(t, dv_mls_tm_left(x), ex, n_ex, lh)) != 0 ||
      (rc = tree_hash_ex(t, dv_mls_tm_right(x), ex, n_ex, rh)) != 0) {
    return rc;
  }
  h_init(&h);
  h_u8(&h, DV_MLS_NODE_PARENT);
  if (nd->type == DV_MLS_NODE_PARENT) {
    const dv_mls_parent_node *p = &nd->u.parent;
    uint32_t i, kept = 0;
    h_u8(&h, 1);
    if (n_ex == 0) {
      h_bytes(&h, nd->raw, nd->raw_len);
    } else {
      h_opaque(&h, p->encryption_key.p, p->encryption_key.len);
      h_opaque(&h, p->parent_hash.p, p->parent_hash.len);
      for (i = 0; i < p->unmerged_leaves.count; i++) {
        kept += !excluded(dv_mls_vec_u32(&p->unmerged_leaves, i), ex, n_ex);
      }
      h_varint(&h, (size_t)kept * 4);
      for (i = 0; i < p->unmerged_leaves.count; i++) {
        uint32_t li = dv_mls_vec_u32(&p->unmerged_leaves, i);
        if (!excluded(li, ex, n_ex)) {
          h_u32(&h, li);
        }
      }
    }
  } else {
    h_u8(&h, 0);
  }
  h_opaque(&h, lh, sizeof(lh));
  h_opaque(&h, rh, sizeof(rh));
  return h_finish(&h, out);
}

int dv_mls_tree_hash(const dv_mls_tree *t, uint32_t node,
                     uint8_t out[DV_MLS_HASH_LEN]) {
  if (node >= width(t)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return tree_hash_ex(t, node, NULL, 0, out);
}

int dv_mls_tree_root_hash(const dv_mls_tree *t, uint8_t out[DV_MLS_HASH_LEN]) {
  if (t->n_leaves == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return tree_hash_ex(t, dv_mls_tm_root(t->n_leaves), NULL, 0, out);
}

/* ---- parent hash -------------------------------------------------------- */

int dv_mls_tree_parent_hash(const dv_mls_tree *t, uint32_t parent_node,
                            uint32_t sibling, uint8_t out[DV_MLS_HASH_LEN]) {
  const dv_mls_parent_node *p = dv_mls_tree_parent(t, parent_node);
  uint8_t sh[DV_MLS_HASH_LEN];
  uint32_t ex[64];
  uint32_t *exp = ex, i, n;
  hasher h;
  int rc;
  if (p == NULL || sibling >= width(t) ||
      (sibling != dv_mls_tm_left(parent_node) &&
       sibling != dv_mls_tm_right(parent_node))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  n = p->unmerged_leaves.count;
  if (n > 64) {
    exp = dv_malloc(t->mem, (size_t)n * sizeof(*exp));
    if (exp == NULL) {
      return DVOICE_ERR_NOMEM;
    }
  }
  for (i = 0; i < n; i++) {
    exp[i] = dv_mls_vec_u32(&p->unmerged_leaves, i);
  }
  rc = tree_hash_ex(t, sibling, exp, n, sh);
  if (exp != ex) {
    dv_free(t->mem, exp);
  }
  if (rc != 0) {
    return rc;
  }
  h_init(&h);
  h_opaque(&h, p->encryption_key.p, p->encryption_key.len);
  h_opaque(&h, p->parent_hash.p, p->parent_hash.len);
  h_opaque(&h, sh, sizeof(sh));
  return h_finish(&h, out);
}

/* The parent_hash field of node |x| (empty for leaves of other sources). */
static dv_mls_bytes node_parent_hash(const dv_mls_tree *t, uint32_t x) {
  const dv_mls_tree_node *nd = &t->nodes[x];
  dv_mls_bytes none = {NULL, 0};
  if (nd->type == DV_MLS_NODE_PARENT) {
    return nd->u.parent.parent_hash;
  }
  if (nd->type == DV_MLS_NODE_LEAF &&
      nd->u.leaf.source == DV_MLS_LEAF_SRC_COMMIT) {
    return nd->u.leaf.parent_hash;
  }
  return none;
}

/* Nonzero if the resolution of |child| minus node |d| is exactly the set of
 * parent |p|'s unmerged leaves that lie under |child| (RFC 9420 7.9.2). */
static int rest_is_unmerged(const dv_mls_parent_node *p, uint32_t child,
                            const uint32_t *res, int n, uint32_t d) {
  uint32_t i, under = 0;
  int k, found;
  for (i = 0; i < p->unmerged_leaves.count; i++) {
    uint32_t x = 2 * dv_mls_vec_u32(&p->unmerged_leaves, i);
    if (!dv_mls_tm_is_ancestor(child, x)) {
      continue;
    }
    under++;
    found = 0;
    for (k = 0; k < n && !found; k++) {
      found = res[k] == x && x != d;
    }
    if (!found) {
      return 0;
    }
  }
  /* Every unmerged leaf under child is in res, distinct from d: the sizes
   * must match for the sets to be equal. */
  return (uint32_t)n == under + 1;
}

/* Nonzero if some node D in the resolution of |child| carries |ph| and the
 * rest of that resolution is |x|'s unmerged leaves under |child|. */
static int chain_ok(const dv_mls_tree *t, uint32_t x, uint32_t child,
                    const uint8_t ph[DV_MLS_HASH_LEN], uint32_t *res,
                    size_t cap) {
  int n = dv_mls_tree_resolution(t, child, NULL, 0, res, cap), i;
  dv_mls_bytes want = {ph, DV_MLS_HASH_LEN}, got;
  for (i = 0; i < n; i++) {
    got = node_parent_hash(t, res[i]);
    if (dv_mls_bytes_eq(&got, &want) &&
        rest_is_unmerged(&t->nodes[x].u.parent, child, res, n, res[i])) {
      return 1;
    }
  }
  return 0;
}

int dv_mls_tree_verify_parent_hashes(const dv_mls_tree *t) {
  uint32_t x, l, r, wd = width(t);
  uint8_t ph[DV_MLS_HASH_LEN];
  uint32_t *res;
  int rc = 0;
  if (t->n_leaves == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  res = dv_malloc(t->mem, ((size_t)t->n_leaves + 1) * sizeof(*res));
  if (res == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  for (x = 1; x < wd && rc == 0; x += 2) {
    if (t->nodes[x].type != DV_MLS_NODE_PARENT) {
      continue;
    }
    l = dv_mls_tm_left(x);
    r = dv_mls_tm_right(x);
    if ((rc = dv_mls_tree_parent_hash(t, x, r, ph)) != 0) {
      break;
    }
    if (chain_ok(t, x, l, ph, res, t->n_leaves + 1)) {
      continue;
    }
    if ((rc = dv_mls_tree_parent_hash(t, x, l, ph)) != 0) {
      break;
    }
    if (!chain_ok(t, x, r, ph, res, t->n_leaves + 1)) {
      rc = DVOICE_ERR_CRYPTO;
    }
  }
  dv_free(t->mem, res);
  return rc;
}

/* ---- validation --------------------------------------------------------- */

/* Nonzero for the extension types every implementation supports by
 * default (RFC 9420 7.2); they need not be listed in capabilities. */
static int default_extension(uint16_t type) {
  return type >= DV_MLS_EXT_APPLICATION_ID &&
         type <= DV_MLS_EXT_EXTERNAL_SENDERS;
}

int dv_mls_leaf_validate(const dv_mls_leaf_node *leaf,
                         const dv_mls_bytes *group_id, uint32_t leaf_index,
                         uint8_t expected_source, unsigned flags) {
  dv_mls_iov iov[4];
  uint8_t pre[4], idx[4];
  size_t n = 1, pre_len;
  dv_mls_iter it;
  dv_mls_extension ext;
  if (leaf == NULL || leaf->raw.p == NULL || leaf->tbs_len > leaf->raw.len) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (expected_source != 0 && leaf->source != expected_source) {
    return DVOICE_ERR_PROTO;
  }
  if (leaf->credential.type != DV_MLS_CRED_BASIC) {
    return DVOICE_ERR_PROTO;
  }
  if ((flags & DV_MLS_VALIDATE_DAVE) && leaf->credential.identity.len != 8) {
    return DVOICE_ERR_PROTO;
  }
  if (!(flags & DV_MLS_VALIDATE_NO_CAPS) &&
      (!dv_mls_vec_has_u16(&leaf->capabilities.versions, DV_MLS_VERSION_10) ||
       !dv_mls_vec_has_u16(&leaf->capabilities.cipher_suites,
                           DV_MLS_SUITE_P256) ||
       !dv_mls_vec_has_u16(&leaf->capabilities.credentials,
                           DV_MLS_CRED_BASIC))) {
    return DVOICE_ERR_PROTO;
  }
  dv_mls_iter_init(&it, &leaf->extensions);
  while (dv_mls_next_extension(&it, &ext) == 1) {
    if (!default_extension(ext.type) &&
        !dv_mls_vec_has_u16(&leaf->capabilities.extensions, ext.type)) {
      return DVOICE_ERR_PROTO;
    }
  }
  if (dv_mls_check_pub(leaf->signature_key.p, leaf->signature_key.len) != 0 ||
      dv_mls_check_pub(leaf->encryption_key.p, leaf->encryption_key.len) != 0) {
    return DVOICE_ERR_CRYPTO;
  }
  iov[0].p = leaf->raw.p;
  iov[0].len = leaf->tbs_len;
  if (leaf->source == DV_MLS_LEAF_SRC_UPDATE ||
      leaf->source == DV_MLS_LEAF_SRC_COMMIT) {
    if (group_id == NULL) {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
    pre_len = group_id->len > DV_VARINT_MAX
                  ? 0
                  : dv_varint_size((uint32_t)group_id->len);
    if (pre_len == 1) {
      pre[0] = (uint8_t)group_id->len;
    } else if (pre_len == 2) {
      dv_put_u16(pre, (uint16_t)(0x4000u | group_id->len));
    } else if (pre_len == 4) {
      dv_put_u32(pre, (uint32_t)(0x80000000u | group_id->len));
    } else {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
    dv_put_u32(idx, leaf_index);
    iov[1].p = pre;
    iov[1].len = pre_len;
    iov[2].p = group_id->p;
    iov[2].len = group_id->len;
    iov[3].p = idx;
    iov[3].len = 4;
    n = 4;
  }
  if (dv_mls_verify_with_label_v(leaf->signature_key.p, leaf->signature_key.len,
                                 "LeafNodeTBS", iov, n, leaf->signature.p,
                                 leaf->signature.len) != 0) {
    return DVOICE_ERR_CRYPTO;
  }
  return 0;
}

static int cmp_bytes(const void *a, const void *b) {
  const dv_mls_bytes *x = a, *y = b;
  int c;
  if (x->len != y->len) {
    return x->len < y->len ? -1 : 1;
  }
  c = x->len ? memcmp(x->p, y->p, x->len) : 0;
  return c;
}

/* DVOICE_ERR_PROTO if two of the |n| byte strings are equal (sorts them). */
static int check_unique(dv_mls_bytes *v, size_t n) {
  size_t i;
  if (n < 2) {
    return 0;
  }
  qsort(v, n, sizeof(*v), cmp_bytes);
  for (i = 1; i < n; i++) {
    if (cmp_bytes(&v[i - 1], &v[i]) == 0) {
      return DVOICE_ERR_PROTO;
    }
  }
  return 0;
}

/* Uniqueness checks shared by dv_mls_tree_check_unique and _validate. */
static int unique_keys(const dv_mls_tree *t, unsigned flags) {
  uint32_t x, wd = width(t);
  size_t n_enc = 0, n_sig = 0, n_id = 0;
  dv_mls_bytes *enc, *sig, *ids;
  int rc;
  if (t->n_leaves == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  enc = dv_malloc(t->mem, (size_t)wd * 3 * sizeof(*enc));
  if (enc == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  sig = enc + wd;
  ids = sig + wd;
  for (x = 0; x < wd; x++) {
    const dv_mls_tree_node *nd = &t->nodes[x];
    if (nd->type == DV_MLS_NODE_LEAF) {
      enc[n_enc++] = nd->u.leaf.encryption_key;
      sig[n_sig++] = nd->u.leaf.signature_key;
      ids[n_id++] = nd->u.leaf.credential.identity;
    } else if (nd->type == DV_MLS_NODE_PARENT) {
      enc[n_enc++] = nd->u.parent.encryption_key;
    }
  }
  rc = check_unique(enc, n_enc);
  if (rc == 0) {
    rc = check_unique(sig, n_sig);
  }
  if (rc == 0 && (flags & DV_MLS_VALIDATE_DAVE)) {
    rc = check_unique(ids, n_id);
  }
  dv_free(t->mem, enc);
  return rc;
}

int dv_mls_tree_check_unique(const dv_mls_tree *t, unsigned flags) {
  return unique_keys(t, flags);
}

int dv_mls_tree_validate(const dv_mls_tree *t, const dv_mls_bytes *group_id,
                         unsigned flags) {
  uint32_t x, wd = width(t);
  int rc = 0;
  if (t->n_leaves == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  for (x = 0; x < wd && rc == 0; x += 2) {
    if (t->nodes[x].type == DV_MLS_NODE_LEAF) {
      rc = dv_mls_leaf_validate(&t->nodes[x].u.leaf, group_id, leaf_of_node(x),
                                0, flags);
    }
  }
  if (rc == 0) {
    rc = unique_keys(t, flags);
  }
  if (rc == 0) {
    rc = dv_mls_tree_verify_parent_hashes(t);
  }
  return rc;
}
