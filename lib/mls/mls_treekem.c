#include "mls/mls_treekem.h"

#include <string.h>

#include <sodium.h>

#include "util/dv_mem.h"

/* ---- path secret chain -------------------------------------------------- */

/* key = DeriveKeyPair(DeriveSecret(ps, "node")). */
static int node_key(const dvoice_env *env, const uint8_t ps[DV_MLS_HASH_LEN],
                    dv_mls_hpke_key *key) {
  uint8_t ns[DV_MLS_HASH_LEN];
  int rc = dv_mls_derive_secret(ps, DV_MLS_HASH_LEN, "node", ns);
  if (rc == 0) {
    rc = dv_mls_hpke_derive_keypair(env, ns, sizeof(ns), key);
  }
  sodium_memzero(ns, sizeof(ns));
  return rc;
}

/* out = DeriveSecret(ps, "path"); out may equal ps. */
static int next_secret(const uint8_t ps[DV_MLS_HASH_LEN],
                       uint8_t out[DV_MLS_HASH_LEN]) {
  uint8_t tmp[DV_MLS_HASH_LEN];
  int rc = dv_mls_derive_secret(ps, DV_MLS_HASH_LEN, "path", tmp);
  memcpy(out, tmp, sizeof(tmp));
  sodium_memzero(tmp, sizeof(tmp));
  return rc;
}

/* The encryption key of node |x| in |t| (empty if blank). */
static dv_mls_bytes node_pub(const dv_mls_tree *t, uint32_t x) {
  dv_mls_bytes none = {NULL, 0};
  const dv_mls_parent_node *p;
  const dv_mls_leaf_node *l;
  if ((x & 1u) == 0) {
    l = dv_mls_tree_leaf(t, x / 2);
    return l ? l->encryption_key : none;
  }
  p = dv_mls_tree_parent(t, x);
  return p ? p->encryption_key : none;
}

static int pub_matches(const dv_mls_tree *t, uint32_t x,
                       const dv_mls_hpke_key *k) {
  dv_mls_bytes have = node_pub(t, x), want = {k->pub, DV_MLS_PUB_LEN};
  return dv_mls_bytes_eq(&have, &want);
}

/* ---- private state ------------------------------------------------------ */

int dv_mls_tree_priv_init(const dvoice_env *env, dv_mls_tree_priv *priv,
                          uint32_t leaf_index,
                          const uint8_t leaf_priv[DV_MLS_PRIV_LEN]) {
  int rc;
  if (priv == NULL || leaf_priv == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(priv, 0, sizeof(*priv));
  priv->leaf_index = leaf_index;
  memcpy(priv->leaf.priv, leaf_priv, DV_MLS_PRIV_LEN);
  rc = dv_mls_hpke_key_from_priv(env, &priv->leaf);
  if (rc != 0) {
    dv_mls_tree_priv_wipe(priv);
  }
  return rc;
}

void dv_mls_tree_priv_wipe(dv_mls_tree_priv *priv) {
  if (priv != NULL) {
    sodium_memzero(priv, sizeof(*priv));
  }
}

const dv_mls_hpke_key *dv_mls_tree_priv_key(const dv_mls_tree_priv *priv,
                                            uint32_t node) {
  uint32_t i;
  if (node == 2 * priv->leaf_index) {
    return &priv->leaf;
  }
  for (i = 0; i < priv->n; i++) {
    if (priv->nodes[i] == node) {
      return &priv->keys[i];
    }
  }
  return NULL;
}

static void priv_store(dv_mls_tree_priv *priv, uint32_t node,
                       const dv_mls_hpke_key *key) {
  uint32_t i;
  for (i = 0; i < priv->n; i++) {
    if (priv->nodes[i] == node) {
      priv->keys[i] = *key;
      return;
    }
  }
  if (priv->n < DV_MLS_MAX_DEPTH) {
    priv->nodes[priv->n] = node;
    priv->keys[priv->n] = *key;
    priv->n++;
  }
}

int dv_mls_tree_priv_prune(dv_mls_tree_priv *priv, const dv_mls_tree *t) {
  uint32_t i, k = 0, leaf = 2 * priv->leaf_index;
  for (i = 0; i < priv->n; i++) {
    uint32_t x = priv->nodes[i];
    if (x != leaf && dv_mls_tm_is_ancestor(x, leaf) &&
        pub_matches(t, x, &priv->keys[i])) {
      priv->nodes[k] = x;
      priv->keys[k] = priv->keys[i];
      k++;
    }
  }
  for (i = k; i < priv->n; i++) {
    sodium_memzero(&priv->keys[i], sizeof(priv->keys[i]));
    priv->nodes[i] = 0;
  }
  priv->n = k;
  return pub_matches(t, leaf, &priv->leaf) ? 0 : DVOICE_ERR_PROTO;
}

/* Derives and checks the keys of fdp[i..n) from |ps| (for fdp[i]), stores
 * them, and leaves the commit secret in |commit_secret|. */
static int derive_up(const dvoice_env *env, dv_mls_tree_priv *priv,
                     const dv_mls_tree *t, const uint32_t *fdp, uint32_t n,
                     uint32_t i, const uint8_t ps[DV_MLS_HASH_LEN],
                     uint8_t commit_secret[DV_MLS_HASH_LEN]) {
  uint8_t cur[DV_MLS_HASH_LEN];
  dv_mls_hpke_key key;
  int rc = 0;
  memcpy(cur, ps, sizeof(cur));
  for (; i < n && rc == 0; i++) {
    rc = node_key(env, cur, &key);
    if (rc == 0 && !pub_matches(t, fdp[i], &key)) {
      rc = DVOICE_ERR_CRYPTO;
    }
    if (rc == 0) {
      priv_store(priv, fdp[i], &key);
      rc = next_secret(cur, cur);
    }
  }
  if (rc == 0 && commit_secret != NULL) {
    memcpy(commit_secret, cur, DV_MLS_HASH_LEN);
  }
  sodium_memzero(cur, sizeof(cur));
  sodium_memzero(&key, sizeof(key));
  return rc;
}

int dv_mls_tree_priv_implant(const dvoice_env *env, dv_mls_tree_priv *priv,
                             const dv_mls_tree *t, uint32_t sender,
                             uint32_t node, const uint8_t *path_secret,
                             size_t path_secret_len,
                             uint8_t commit_secret[DV_MLS_HASH_LEN]) {
  uint32_t fdp[32], i;
  int n;
  if (priv == NULL || t == NULL || path_secret == NULL ||
      path_secret_len != DV_MLS_HASH_LEN) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  n = dv_mls_tree_filtered_direct_path(t, sender, fdp, NULL);
  if (n < 0) {
    return n;
  }
  for (i = 0; i < (uint32_t)n && fdp[i] != node; i++) {
  }
  if (i == (uint32_t)n || !dv_mls_tm_is_ancestor(node, 2 * priv->leaf_index)) {
    return DVOICE_ERR_PROTO;
  }
  return derive_up(env, priv, t, fdp, (uint32_t)n, i, path_secret,
                   commit_secret);
}

int dv_mls_tree_priv_set_node_secret(const dvoice_env *env,
                                     dv_mls_tree_priv *priv,
                                     const dv_mls_tree *t, uint32_t node,
                                     const uint8_t *path_secret,
                                     size_t path_secret_len) {
  dv_mls_hpke_key key;
  int rc;
  if (priv == NULL || t == NULL || path_secret == NULL ||
      path_secret_len != DV_MLS_HASH_LEN) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rc = node_key(env, path_secret, &key);
  if (rc == 0 && !pub_matches(t, node, &key)) {
    rc = DVOICE_ERR_CRYPTO;
  }
  if (rc == 0) {
    priv_store(priv, node, &key);
  }
  sodium_memzero(&key, sizeof(key));
  return rc;
}

/* ---- merge -------------------------------------------------------------- */

/* Blanks |sender|'s direct path and sets fdp nodes top-down with parent
 * hashes; pubs[i] is fdp[i]'s key. Leaves the parent hash the leaf must
 * carry in |leaf_ph| (*leaf_ph_len 0 when the path is empty). */
static int set_path_nodes(dv_mls_tree *t, uint32_t sender, const uint32_t *fdp,
                          const uint32_t *copath, uint32_t n,
                          const dv_mls_bytes *pubs,
                          uint8_t leaf_ph[DV_MLS_HASH_LEN],
                          size_t *leaf_ph_len) {
  uint32_t dp[32], nd, i;
  uint8_t ph[DV_MLS_HASH_LEN];
  dv_mls_parent_node pn;
  int rc;
  nd = dv_mls_tm_direct_path(2 * sender, t->n_leaves, dp, 32);
  for (i = 0; i < nd; i++) {
    dv_mls_tree_blank(t, dp[i]);
  }
  *leaf_ph_len = 0;
  memset(&pn, 0, sizeof(pn));
  for (i = n; i-- > 0;) {
    pn.encryption_key = pubs[i];
    if (i == n - 1) {
      pn.parent_hash.p = NULL;
      pn.parent_hash.len = 0;
    } else {
      rc = dv_mls_tree_parent_hash(t, fdp[i + 1], copath[i + 1], ph);
      if (rc != 0) {
        return rc;
      }
      pn.parent_hash.p = ph;
      pn.parent_hash.len = sizeof(ph);
    }
    if ((rc = dv_mls_tree_set_parent(t, fdp[i], &pn)) != 0) {
      return rc;
    }
  }
  if (n > 0) {
    rc = dv_mls_tree_parent_hash(t, fdp[0], copath[0], leaf_ph);
    if (rc != 0) {
      return rc;
    }
    *leaf_ph_len = DV_MLS_HASH_LEN;
  }
  return 0;
}

/* Reads up to |cap| path nodes; returns their count or an error. */
static int path_nodes(const dv_mls_update_path *path,
                      dv_mls_update_path_node *out, uint32_t cap) {
  dv_mls_iter it;
  uint32_t k = 0;
  int rc;
  if (path->nodes.count > cap) {
    return DVOICE_ERR_PROTO;
  }
  dv_mls_iter_init(&it, &path->nodes);
  while ((rc = dv_mls_next_update_path_node(&it, &out[k])) == 1) {
    k++;
  }
  return rc < 0 ? rc : (int)k;
}

/* Computes the sender's filtered direct path and copath and decodes the
 * path's nodes (32 slots each); the path must have one node per filtered
 * direct-path entry. Returns that count, or a negative error code. */
static int path_shape(const dv_mls_tree *t, uint32_t sender,
                      const dv_mls_update_path *path, uint32_t fdp[32],
                      uint32_t copath[32], dv_mls_update_path_node nodes[32]) {
  int n = dv_mls_tree_filtered_direct_path(t, sender, fdp, copath);
  int k;
  if (n < 0) {
    return n;
  }
  k = path_nodes(path, nodes, 32);
  if (k < 0) {
    return k;
  }
  return k == n ? n : DVOICE_ERR_PROTO;
}

int dv_mls_treekem_merge(dv_mls_tree *t, uint32_t sender,
                         const dv_mls_update_path *path,
                         const dv_mls_bytes *group_id, unsigned flags) {
  uint32_t fdp[32], copath[32], i;
  dv_mls_update_path_node nodes[32];
  dv_mls_bytes pubs[32], want;
  uint8_t ph[DV_MLS_HASH_LEN];
  size_t ph_len;
  int n, rc;
  if (t == NULL || path == NULL || group_id == NULL ||
      dv_mls_tree_leaf(t, sender) == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rc = dv_mls_leaf_validate(&path->leaf_node, group_id, sender,
                            DV_MLS_LEAF_SRC_COMMIT, flags);
  if (rc != 0) {
    return rc;
  }
  n = path_shape(t, sender, path, fdp, copath, nodes);
  if (n < 0) {
    return n;
  }
  for (i = 0; i < (uint32_t)n; i++) {
    pubs[i] = nodes[i].encryption_key;
    if (dv_mls_check_pub(pubs[i].p, pubs[i].len) != 0) {
      return DVOICE_ERR_CRYPTO;
    }
  }
  rc = set_path_nodes(t, sender, fdp, copath, (uint32_t)n, pubs, ph, &ph_len);
  if (rc != 0) {
    return rc;
  }
  want.p = ph;
  want.len = ph_len;
  if (!dv_mls_bytes_eq(&path->leaf_node.parent_hash, &want)) {
    return DVOICE_ERR_CRYPTO;
  }
  return dv_mls_tree_set_leaf(t, sender, &path->leaf_node);
}

/* ---- decap -------------------------------------------------------------- */

int dv_mls_treekem_decap(const dvoice_env *env, dv_mls_tree_priv *priv,
                         const dv_mls_tree *t, uint32_t sender,
                         const dv_mls_update_path *path,
                         const uint32_t *exclude, size_t n_exclude,
                         const uint8_t *gc, size_t gc_len,
                         uint8_t commit_secret[DV_MLS_HASH_LEN],
                         uint8_t path_secret[DV_MLS_HASH_LEN],
                         uint32_t *path_secret_node) {
  uint32_t fdp[32], copath[32], i, leaf, *res;
  dv_mls_update_path_node nodes[32];
  dv_mls_iter it;
  dv_mls_hpke_ciphertext ct;
  const dv_mls_hpke_key *key = NULL;
  uint8_t ps[DV_MLS_HASH_LEN];
  int n, nres, j, rc;
  if (env == NULL || priv == NULL || t == NULL || path == NULL ||
      commit_secret == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (sender == priv->leaf_index) {
    return DVOICE_ERR_PROTO;
  }
  n = path_shape(t, sender, path, fdp, copath, nodes);
  if (n < 0) {
    return n;
  }
  leaf = 2 * priv->leaf_index;
  for (i = 0; i < (uint32_t)n && !dv_mls_tm_is_ancestor(fdp[i], leaf); i++) {
  }
  if (i == (uint32_t)n) {
    return DVOICE_ERR_PROTO;
  }
  res = dv_malloc(t->mem, ((size_t)t->n_leaves + 1) * sizeof(*res));
  if (res == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  nres = dv_mls_tree_resolution(t, copath[i], exclude, n_exclude, res,
                                (size_t)t->n_leaves + 1);
  for (j = 0; j < nres && key == NULL; j++) {
    key = dv_mls_tree_priv_key(priv, res[j]);
    if (key != NULL && !pub_matches(t, res[j], key)) {
      key = NULL;
    }
  }
  j--;
  dv_free(t->mem, res);
  if (nres < 0) {
    return nres;
  }
  if (key == NULL) {
    return DVOICE_ERR_PROTO;
  }
  if (nodes[i].encrypted_path_secret.count != (uint32_t)nres) {
    return DVOICE_ERR_PROTO;
  }
  dv_mls_iter_init(&it, &nodes[i].encrypted_path_secret);
  do {
    rc = dv_mls_next_hpke_ciphertext(&it, &ct);
  } while (rc == 1 && j-- > 0);
  if (rc != 1) {
    return rc < 0 ? rc : DVOICE_ERR_PROTO;
  }
  if (ct.ciphertext.len != DV_MLS_HASH_LEN + DV_MLS_AEAD_TAG_LEN) {
    return DVOICE_ERR_CRYPTO;
  }
  rc = dv_mls_decrypt_with_label(env, key, "UpdatePathNode", gc, gc_len,
                                 ct.kem_output.p, ct.kem_output.len,
                                 ct.ciphertext.p, ct.ciphertext.len, ps);
  if (rc == 0) {
    rc = derive_up(env, priv, t, fdp, (uint32_t)n, i, ps, commit_secret);
  }
  if (rc == 0) {
    if (path_secret != NULL) {
      memcpy(path_secret, ps, sizeof(ps));
    }
    if (path_secret_node != NULL) {
      *path_secret_node = fdp[i];
    }
    (void)dv_mls_tree_priv_prune(priv, t);
  }
  sodium_memzero(ps, sizeof(ps));
  return rc;
}

/* ---- encap -------------------------------------------------------------- */

void dv_mls_treekem_encap_wipe(dv_mls_treekem_encap *st) {
  if (st != NULL) {
    sodium_memzero(st, sizeof(*st));
  }
}

int dv_mls_treekem_encap_begin(const dvoice_env *env, dv_mls_tree *t,
                               uint32_t sender,
                               const uint8_t leaf_secret[DV_MLS_HASH_LEN],
                               dv_mls_treekem_encap *st) {
  uint8_t cur[DV_MLS_HASH_LEN];
  dv_mls_bytes pubs[32];
  uint32_t i;
  int n, rc;
  if (env == NULL || t == NULL || leaf_secret == NULL || st == NULL ||
      dv_mls_tree_leaf(t, sender) == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(st, 0, sizeof(*st));
  st->sender = sender;
  n = dv_mls_tree_filtered_direct_path(t, sender, st->fdp, st->copath);
  if (n < 0) {
    return n;
  }
  st->n = (uint32_t)n;
  rc = node_key(env, leaf_secret, &st->leaf);
  memcpy(cur, leaf_secret, sizeof(cur));
  for (i = 0; i < st->n && rc == 0; i++) {
    rc = next_secret(cur, cur);
    if (rc == 0) {
      memcpy(st->ps[i], cur, sizeof(cur));
      rc = node_key(env, cur, &st->keys[i]);
      pubs[i].p = st->keys[i].pub;
      pubs[i].len = DV_MLS_PUB_LEN;
    }
  }
  if (rc == 0) {
    rc = next_secret(cur, st->commit_secret);
  }
  sodium_memzero(cur, sizeof(cur));
  if (rc == 0) {
    rc = set_path_nodes(t, sender, st->fdp, st->copath, st->n, pubs,
                        st->leaf_parent_hash, &st->leaf_parent_hash_len);
  }
  if (rc != 0) {
    dv_mls_treekem_encap_wipe(st);
  }
  return rc;
}

int dv_mls_treekem_encap_finish(const dvoice_env *env, dv_mls_treekem_encap *st,
                                const dv_mls_tree *t,
                                const dv_mls_leaf_node *leaf,
                                const uint32_t *exclude, size_t n_exclude,
                                const uint8_t *gc, size_t gc_len, dv_wr *w,
                                uint8_t commit_secret[DV_MLS_HASH_LEN],
                                dv_mls_tree_priv *priv) {
  uint8_t enc[DV_MLS_KEM_ENC_LEN];
  uint8_t ct[DV_MLS_HASH_LEN + DV_MLS_AEAD_TAG_LEN];
  uint32_t *res, i;
  size_t outer, inner;
  int nres, j, rc = 0;
  if (env == NULL || st == NULL || t == NULL || leaf == NULL || w == NULL ||
      commit_secret == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  res = dv_malloc(t->mem, ((size_t)t->n_leaves + 1) * sizeof(*res));
  if (res == NULL) {
    dv_mls_treekem_encap_wipe(st);
    return DVOICE_ERR_NOMEM;
  }
  dv_mls_leaf_node_write(w, leaf);
  outer = dv_wr_vec_begin(w);
  for (i = 0; i < st->n && rc == 0; i++) {
    dv_wr_opaque(w, st->keys[i].pub, DV_MLS_PUB_LEN);
    inner = dv_wr_vec_begin(w);
    nres = dv_mls_tree_resolution(t, st->copath[i], exclude, n_exclude, res,
                                  (size_t)t->n_leaves + 1);
    if (nres < 0) {
      rc = nres;
      break;
    }
    for (j = 0; j < nres && rc == 0; j++) {
      dv_mls_bytes pk = node_pub(t, res[j]);
      rc = dv_mls_encrypt_with_label(env, pk.p, pk.len, "UpdatePathNode", gc,
                                     gc_len, st->ps[i], DV_MLS_HASH_LEN, enc,
                                     ct);
      dv_wr_opaque(w, enc, sizeof(enc));
      dv_wr_opaque(w, ct, sizeof(ct));
    }
    dv_wr_vec_end(w, inner);
  }
  dv_wr_vec_end(w, outer);
  dv_free(t->mem, res);
  if (rc == 0 && w->err != 0) {
    rc = w->err;
  }
  if (rc == 0) {
    memcpy(commit_secret, st->commit_secret, DV_MLS_HASH_LEN);
    if (priv != NULL) {
      dv_mls_tree_priv_wipe(priv);
      priv->leaf_index = st->sender;
      priv->leaf = st->leaf;
      for (i = 0; i < st->n; i++) {
        priv_store(priv, st->fdp[i], &st->keys[i]);
      }
    }
  }
  dv_mls_treekem_encap_wipe(st);
  return rc;
}
