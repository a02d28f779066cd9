/*
 * The public ratchet tree (RFC 9420 sections 4, 7.1-7.9, 12.1) for cipher
 * suite 2 (SHA-256 hashes, 32 bytes).
 *
 * Ownership: a dv_mls_tree owns its nodes. Each non-blank node keeps its own
 * canonical encoding (LeafNode or ParentNode bytes) in an allocation from
 * the tree's allocator; the decoded view (leaf / parent) borrows from that
 * encoding and stays valid until the node is changed or the tree is freed.
 * Setting a node copies the given struct (its borrowed bytes may be freed
 * afterwards).
 *
 * The leaf count is always a power of two (1, 2, 4, ...), at most
 * DV_MLS_TREE_MAX_LEAVES. Node x is a leaf iff x is even; leaf i is node 2i.
 *
 * Errors: DVOICE_ERR_NOMEM, DVOICE_ERR_INVALID_ARGUMENT (index out of range,
 * wrong node kind), DVOICE_ERR_TOO_LARGE (tree would exceed the leaf limit),
 * decode errors from mls_codec.h, DVOICE_ERR_MALFORMED (ratchet tree
 * structure: a leaf where a parent belongs, an empty tree, trailing blank,
 * an unmerged leaf that is not a descendant or is blank, unsorted unmerged
 * list), DVOICE_ERR_CRYPTO (tree-hash, parent-hash or signature mismatch),
 * DVOICE_ERR_PROTO (leaf validation failure: capabilities, credential,
 * duplicate keys).
 */
#ifndef DV_MLS_TREE_H
#define DV_MLS_TREE_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_treemath.h"

#define DV_MLS_TREE_MAX_LEAVES (1u << 14)

typedef struct dv_mls_tree_node {
  uint8_t type; /* 0 blank, DV_MLS_NODE_LEAF, DV_MLS_NODE_PARENT */
  uint8_t *raw; /* owned encoding of the LeafNode / ParentNode */
  size_t raw_len;
  union {
    dv_mls_leaf_node leaf;     /* type LEAF: borrows from raw */
    dv_mls_parent_node parent; /* type PARENT: borrows from raw */
  } u;
} dv_mls_tree_node;

typedef struct dv_mls_tree {
  const dvoice_mem *mem;   /* borrowed */
  uint32_t n_leaves;       /* 0 only for an initialised, empty tree */
  dv_mls_tree_node *nodes; /* dv_mls_tm_width(n_leaves) entries */
} dv_mls_tree;

/* An empty tree (0 leaves); allocates nothing. */
void dv_mls_tree_init(dv_mls_tree *t, const dvoice_mem *mem);
/* Frees every node; the tree is empty afterwards. */
void dv_mls_tree_free(dv_mls_tree *t);
/* Deep copy of |src| into |dst|, which must hold no nodes (initialised or
 * freed) and is overwritten; it uses src's allocator. */
int dv_mls_tree_copy(dv_mls_tree *dst, const dv_mls_tree *src);

/* Parses the ratchet_tree extension data (optional<Node> nodes<V>) into |t|
 * (any previous content is freed). Checks the node kinds by position, that
 * the last node is a non-blank leaf, and that every unmerged leaf is a
 * non-blank descendant leaf listed in ascending order. Does not check
 * hashes or signatures (see dv_mls_tree_verify_*). */
int dv_mls_tree_decode(dv_mls_tree *t, const dvoice_mem *mem, const uint8_t *p,
                       size_t len);
/* Writes the ratchet_tree extension data: trailing blank nodes omitted. */
void dv_mls_tree_write(const dv_mls_tree *t, dv_wr *w);

/* Node accessors: NULL if blank, out of range or of the other kind. */
const dv_mls_leaf_node *dv_mls_tree_leaf(const dv_mls_tree *t,
                                         uint32_t leaf_index);
const dv_mls_parent_node *dv_mls_tree_parent(const dv_mls_tree *t,
                                             uint32_t node);
int dv_mls_tree_is_blank(const dv_mls_tree *t, uint32_t node);

/* Replaces leaf |leaf_index| (must be < n_leaves) by a copy of |leaf|. */
int dv_mls_tree_set_leaf(dv_mls_tree *t, uint32_t leaf_index,
                         const dv_mls_leaf_node *leaf);
/* Replaces parent node |node| (odd, in range) by a copy of |parent|. */
int dv_mls_tree_set_parent(dv_mls_tree *t, uint32_t node,
                           const dv_mls_parent_node *parent);
/* Blanks node |node|. */
void dv_mls_tree_blank(dv_mls_tree *t, uint32_t node);

/* Add (RFC 9420 7.7): puts a copy of |leaf| at the leftmost blank leaf, or
 * doubles the tree, and adds the new index to the unmerged_leaves of every
 * non-blank parent on its direct path. |*leaf_index| receives the index.
 * |leaf| may be a node of |t| itself (it is copied before the tree grows).
 * Note: views returned by dv_mls_tree_leaf/_parent are invalidated by any
 * call that changes |t|; copy the struct first if you need it after. */
int dv_mls_tree_add_leaf(dv_mls_tree *t, const dv_mls_leaf_node *leaf,
                         uint32_t *leaf_index);
/* Remove: blanks leaf |leaf_index| (must be non-blank) and its direct path.
 * Does not truncate (call dv_mls_tree_truncate after all proposals). */
int dv_mls_tree_remove_leaf(dv_mls_tree *t, uint32_t leaf_index);
/* Halves the tree while the right half of its leaves is entirely blank. */
void dv_mls_tree_truncate(dv_mls_tree *t);

/* Resolution of |node| into |out| (capacity |cap| node indices), leaving
 * out the leaves listed in |exclude[0..n_exclude)| (leaf indices; may be
 * NULL). Returns the count, or DVOICE_ERR_NOBUF if |cap| is too small, or
 * DVOICE_ERR_INVALID_ARGUMENT. n_leaves + 1 entries always suffice. */
int dv_mls_tree_resolution(const dv_mls_tree *t, uint32_t node,
                           const uint32_t *exclude, size_t n_exclude,
                           uint32_t *out, size_t cap);
/* Filtered direct path of leaf |leaf_index| (RFC 9420 4.1.2): the
 * direct-path nodes whose copath child has a non-empty resolution. Writes
 * up to 32 node indices to |out| (and the matching copath children to
 * |copath| if not NULL); returns the count or an error. */
int dv_mls_tree_filtered_direct_path(const dv_mls_tree *t, uint32_t leaf_index,
                                     uint32_t out[32], uint32_t copath[32]);

/* Tree hash of the subtree rooted at |node|. */
int dv_mls_tree_hash(const dv_mls_tree *t, uint32_t node,
                     uint8_t out[DV_MLS_HASH_LEN]);
/* Tree hash of the root (GroupContext.tree_hash). */
int dv_mls_tree_root_hash(const dv_mls_tree *t, uint8_t out[DV_MLS_HASH_LEN]);
/* Parent hash of non-blank parent |parent_node| with respect to its child
 * |sibling| (the child not on the path), computed on the current tree with
 * the parent's unmerged leaves removed from the sibling subtree. */
int dv_mls_tree_parent_hash(const dv_mls_tree *t, uint32_t parent_node,
                            uint32_t sibling, uint8_t out[DV_MLS_HASH_LEN]);
/* Checks that every non-blank parent node P is parent-hash valid (RFC 9420
 * 7.9.2): for one child C (with sibling S), some node D in res(C) carries
 * H(ParentHashInput(P, original tree hash of S)), and res(C) minus D is
 * exactly the set of P's unmerged leaves under C. (mlspp only checks the
 * first half; honest trees satisfy both.) 0 or DVOICE_ERR_CRYPTO. */
int dv_mls_tree_verify_parent_hashes(const dv_mls_tree *t);

/* ---- validation (RFC 9420 7.3, 7.9.2, 12.4.3.1; reference/dave.md 3.5) -- */

/* Flags for dv_mls_leaf_validate / dv_mls_tree_validate. */
enum {
  /* DAVE profile: basic credential with an 8-byte identity (the big-endian
   * user ID), and no two leaves with the same identity. */
  DV_MLS_VALIDATE_DAVE = 1u << 0,
  /* Skip the suite-2 capability checks (versions contains mls10,
   * cipher_suites contains 2, credentials contains basic); only for test
   * vectors whose leaves advertise other suites. */
  DV_MLS_VALIDATE_NO_CAPS = 1u << 1
};

/*
 * Validates one decoded leaf node (leaf->raw must be set, i.e. the leaf came
 * from a decoder or from a dv_mls_tree):
 * - |expected_source| (DV_MLS_LEAF_SRC_*) matches, unless it is 0;
 * - signature_key and encryption_key are valid uncompressed P-256 points;
 * - the credential is basic (DAVE: 8-byte identity) and capabilities list
 *   mls10, cipher suite 2 and the basic credential (unless NO_CAPS), and
 *   every leaf extension type is listed in capabilities.extensions;
 * - the signature verifies: VerifyWithLabel(signature_key, "LeafNodeTBS",
 *   LeafNodeTBS), where sources update and commit append |group_id| and
 *   |leaf_index|.
 * Lifetimes are not checked (DAVE uses 0..2^64-1 and members ignore it).
 * Errors: DVOICE_ERR_INVALID_ARGUMENT (no raw bytes), DVOICE_ERR_PROTO
 * (source, credential, capabilities), DVOICE_ERR_CRYPTO (key, signature).
 */
int dv_mls_leaf_validate(const dv_mls_leaf_node *leaf,
                         const dv_mls_bytes *group_id, uint32_t leaf_index,
                         uint8_t expected_source, unsigned flags);

/*
 * Validates a whole tree received in a Welcome: every non-blank leaf with
 * dv_mls_leaf_validate (any source), encryption keys unique across all
 * nodes, signature keys unique across leaves (DAVE: identities too), and
 * every parent node parent-hash valid. The tree hash is checked by the
 * caller against GroupContext.tree_hash (dv_mls_tree_root_hash).
 * Errors: as dv_mls_leaf_validate, DVOICE_ERR_PROTO for a duplicate,
 * DVOICE_ERR_CRYPTO for a parent-hash failure, DVOICE_ERR_NOMEM.
 */
int dv_mls_tree_validate(const dv_mls_tree *t, const dv_mls_bytes *group_id,
                         unsigned flags);

/* Only the uniqueness part of dv_mls_tree_validate (cheap; no signatures):
 * call it after applying Add proposals. 0, DVOICE_ERR_PROTO (duplicate
 * encryption key, signature key, or with DV_MLS_VALIDATE_DAVE identity),
 * DVOICE_ERR_NOMEM, DVOICE_ERR_INVALID_ARGUMENT (empty tree). */
int dv_mls_tree_check_unique(const dv_mls_tree *t, unsigned flags);

#endif
