/*
 * TreeKEM (RFC 9420 sections 7.4-7.6, 12.4.2; reference/dave.md 3.6) for
 * cipher suite 2.
 *
 * Private tree state (dv_mls_tree_priv): our leaf index, our leaf HPKE key
 * and the HPKE keys of the parent nodes on our direct path that we know.
 * It holds secrets: wipe it with dv_mls_tree_priv_wipe. After any change to
 * the public tree, call dv_mls_tree_priv_prune to drop keys whose node was
 * blanked or replaced.
 *
 * Path secret chain: for a committer with filtered direct path P1..Pk,
 *   ps[0] = leaf_secret (random), leaf key = DeriveKeyPair(
 *   DeriveSecret(ps[0], "node")), ps[i] = DeriveSecret(ps[i-1], "path"),
 *   Pi key = DeriveKeyPair(DeriveSecret(ps[i], "node")),
 *   commit_secret = DeriveSecret(ps[k], "path").
 *
 * Errors: DVOICE_ERR_INVALID_ARGUMENT, DVOICE_ERR_NOMEM, DVOICE_ERR_PROTO
 * (path node count differs from the filtered direct path, our leaf is the
 * sender, nothing we can decrypt, ciphertext count mismatch),
 * DVOICE_ERR_CRYPTO (bad signature, parent-hash chain mismatch, HPKE
 * failure, derived public key differs from the path's), codec errors.
 */
#ifndef DV_MLS_TREEKEM_H
#define DV_MLS_TREEKEM_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_tree.h"

#define DV_MLS_MAX_DEPTH 32

typedef struct dv_mls_tree_priv {
  uint32_t leaf_index;
  dv_mls_hpke_key leaf;
  uint32_t n;                       /* known parent keys */
  uint32_t nodes[DV_MLS_MAX_DEPTH]; /* their node indices */
  dv_mls_hpke_key keys[DV_MLS_MAX_DEPTH];
} dv_mls_tree_priv;

/* Starts a private state for leaf |leaf_index| with HPKE private key
 * |leaf_priv| (the public key is derived). No parent keys. */
int dv_mls_tree_priv_init(const dvoice_env *env, dv_mls_tree_priv *priv,
                          uint32_t leaf_index,
                          const uint8_t leaf_priv[DV_MLS_PRIV_LEN]);
void dv_mls_tree_priv_wipe(dv_mls_tree_priv *priv);
/* Drops parent keys for nodes that are blank, off our direct path, or whose
 * public key differs from the tree's. Returns DVOICE_ERR_PROTO if our own
 * leaf is blank or its key differs from priv->leaf.pub, else 0. */
int dv_mls_tree_priv_prune(dv_mls_tree_priv *priv, const dv_mls_tree *t);
/* The key for node |node| (our leaf node 2*leaf_index or a parent we
 * know), or NULL. */
const dv_mls_hpke_key *dv_mls_tree_priv_key(const dv_mls_tree_priv *priv,
                                            uint32_t node);

/*
 * Implants |path_secret| at node |node| of |sender|'s filtered direct path
 * in |t| (the Welcome path_secret, at LCA(own leaf, committer)) and derives
 * the keys of that node and every later node of the path, checking each
 * against the tree's public key and storing them in |priv| (node must be on
 * our direct path). commit_secret (may be NULL) receives the commit secret.
 */
int dv_mls_tree_priv_implant(const dvoice_env *env, dv_mls_tree_priv *priv,
                             const dv_mls_tree *t, uint32_t sender,
                             uint32_t node, const uint8_t *path_secret,
                             size_t path_secret_len,
                             uint8_t commit_secret[DV_MLS_HASH_LEN]);

/* Derives the key of node |node| from its path secret, checks it against
 * the tree's public key (DVOICE_ERR_CRYPTO if different) and stores it. */
int dv_mls_tree_priv_set_node_secret(const dvoice_env *env,
                                     dv_mls_tree_priv *priv,
                                     const dv_mls_tree *t, uint32_t node,
                                     const uint8_t *path_secret,
                                     size_t path_secret_len);

/*
 * Receiver step 1: merges |path| from leaf |sender| into |t| (the tree
 * after this commit's proposals). Checks the leaf node (source commit,
 * signature with |group_id| and |sender|, keys), that the path has one node
 * per filtered-direct-path node, then blanks the sender's direct path,
 * sets the new leaf and path nodes (with parent hashes, no unmerged
 * leaves) and checks the leaf's parent_hash against the recomputed chain.
 * |flags| are DV_MLS_VALIDATE_* flags for the leaf check.
 * Work on a copy of the tree: on error |t| is partly updated.
 */
int dv_mls_treekem_merge(dv_mls_tree *t, uint32_t sender,
                         const dv_mls_update_path *path,
                         const dv_mls_bytes *group_id, unsigned flags);

/*
 * Receiver step 2 (after merge, with the provisional GroupContext): finds
 * the path node whose copath resolution (minus |exclude|, the leaves added
 * by this commit) holds a key of ours, decrypts its path secret
 * (EncryptWithLabel "UpdatePathNode", context = |gc|), derives the rest of
 * the path, checks every derived public key against the tree and stores
 * the new parent keys in |priv|. Outputs the commit secret and, if not
 * NULL, the decrypted path secret and the node it belongs to.
 */
int dv_mls_treekem_decap(const dvoice_env *env, dv_mls_tree_priv *priv,
                         const dv_mls_tree *t, uint32_t sender,
                         const dv_mls_update_path *path,
                         const uint32_t *exclude, size_t n_exclude,
                         const uint8_t *gc, size_t gc_len,
                         uint8_t commit_secret[DV_MLS_HASH_LEN],
                         uint8_t path_secret[DV_MLS_HASH_LEN],
                         uint32_t *path_secret_node);

/* Committer state between encap_begin and encap_finish (holds secrets;
 * wiped by encap_finish and dv_mls_treekem_encap_wipe). */
typedef struct dv_mls_treekem_encap {
  uint32_t sender;
  uint32_t n; /* filtered direct path length */
  uint32_t fdp[DV_MLS_MAX_DEPTH];
  uint32_t copath[DV_MLS_MAX_DEPTH];
  uint8_t ps[DV_MLS_MAX_DEPTH][DV_MLS_HASH_LEN]; /* path secret per node */
  dv_mls_hpke_key keys[DV_MLS_MAX_DEPTH];
  dv_mls_hpke_key leaf; /* the new leaf HPKE key */
  uint8_t commit_secret[DV_MLS_HASH_LEN];
  uint8_t leaf_parent_hash[DV_MLS_HASH_LEN];
  size_t leaf_parent_hash_len; /* 0 if the path is empty */
} dv_mls_treekem_encap;

/* Wipes |st|, which holds path secrets (NULL is allowed). */
void dv_mls_treekem_encap_wipe(dv_mls_treekem_encap *st);

/*
 * Committer step 1, on the tree after this commit's proposals: derives the
 * leaf key and path secrets from |leaf_secret| (32 random bytes), blanks
 * the sender's direct path and sets the filtered-direct-path nodes (new
 * public keys, parent hashes, no unmerged leaves). The caller then builds
 * the new LeafNode (encryption_key = st->leaf.pub, source commit,
 * parent_hash = st->leaf_parent_hash[0..len)), signs it with group_id and
 * sender, stores it with dv_mls_tree_set_leaf, and computes the tree hash
 * for the provisional GroupContext.
 */
int dv_mls_treekem_encap_begin(const dvoice_env *env, dv_mls_tree *t,
                               uint32_t sender,
                               const uint8_t leaf_secret[DV_MLS_HASH_LEN],
                               dv_mls_treekem_encap *st);

/*
 * Committer step 2: writes the UpdatePath (|leaf|, then for each path node
 * its public key and the path secret encrypted to every node of its copath
 * child's resolution minus |exclude|) to |w|, fills |commit_secret|, and
 * if |priv| is not NULL replaces its leaf key and parent keys with the new
 * ones. Wipes |st|.
 */
int dv_mls_treekem_encap_finish(const dvoice_env *env, dv_mls_treekem_encap *st,
                                const dv_mls_tree *t,
                                const dv_mls_leaf_node *leaf,
                                const uint32_t *exclude, size_t n_exclude,
                                const uint8_t *gc, size_t gc_len, dv_wr *w,
                                uint8_t commit_secret[DV_MLS_HASH_LEN],
                                dv_mls_tree_priv *priv);

#endif
