/* Fuzz target: ratchet_tree extension decoding and validation (the tree a
 * joiner receives in a Welcome), plus tree hashes, resolutions, parent-hash
 * checks, an Add and a Remove on the decoded tree, and a re-encode. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_mls_common.h"
#include "mls/mls_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t gid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  dv_mls_bytes g = {gid, sizeof(gid)};
  dv_mls_tree t;
  dv_buf b;
  dv_wr w;
  uint8_t h[DV_MLS_HASH_LEN];
  uint32_t *res, x, li, fdp[32], cp[32];
  dv_mls_leaf_node leaf;
  dv_mls_tree_init(&t, NULL);
  if (dv_mls_tree_decode(&t, NULL, data, size) != 0) {
    return 0;
  }
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_tree_write(&t, &w);
  fuzz_check_same(&b, w.err, data, size);
  dv_buf_free(&b);
  if (dv_mls_tree_root_hash(&t, h) != 0) {
    abort();
  }
  res = malloc(((size_t)t.n_leaves + 1) * sizeof(*res));
  if (res == NULL) {
    abort();
  }
  for (x = 0; x < dv_mls_tm_width(t.n_leaves); x++) {
    (void)dv_mls_tree_resolution(&t, x, NULL, 0, res, t.n_leaves + 1);
  }
  free(res);
  for (li = 0; li < t.n_leaves; li++) {
    (void)dv_mls_tree_filtered_direct_path(&t, li, fdp, cp);
  }
  (void)dv_mls_tree_verify_parent_hashes(&t);
  (void)dv_mls_tree_validate(&t, &g, DV_MLS_VALIDATE_DAVE);
  /* Add a copy of the last leaf (the last node is always a leaf), then
   * remove leaf 0 if present, truncate and re-hash. */
  for (li = t.n_leaves; li-- > 0;) {
    if (dv_mls_tree_leaf(&t, li) != NULL) {
      break;
    }
  }
  if (dv_mls_tree_leaf(&t, li) == NULL) {
    abort();
  }
  leaf = *dv_mls_tree_leaf(&t, li);
  {
    dv_mls_tree c;
    uint32_t added;
    dv_mls_tree_init(&c, NULL);
    if (dv_mls_tree_copy(&c, &t) != 0) {
      abort();
    }
    /* Fails only when the tree is already at its size limit. */
    if (dv_mls_tree_add_leaf(&c, &leaf, &added) != 0 &&
        c.n_leaves < DV_MLS_TREE_MAX_LEAVES) {
      abort();
    }
    if (dv_mls_tree_leaf(&c, 0) != NULL) {
      (void)dv_mls_tree_remove_leaf(&c, 0);
    }
    dv_mls_tree_truncate(&c);
    (void)dv_mls_tree_root_hash(&c, h);
    dv_mls_tree_free(&c);
  }
  dv_mls_tree_free(&t);
  return 0;
}
