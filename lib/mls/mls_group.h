/*
 * MLS group state and handshake messages for DAVE (cipher suite 2, RFC
 * 9420): KeyPackage creation in DAVE's profile, PublicMessage signing and
 * verification (member and external senders), proposal references, a new
 * epoch-0 group, joining from a Welcome, the proposal queue, and commit
 * creation and processing (with TreeKEM from mls_treekem). See
 * reference/dave.md sections 1 and 3.
 *
 * Threading (DESIGN.md section 5): functions taking a const group only read
 * it, so they may run on a worker thread while the loop thread leaves the
 * group alone; they call env->rand and env->mem from that thread, so those
 * hooks must be thread-safe (the defaults are).
 *
 * Every function returns 0 or a negative DVOICE_ERR_* code. Common codes:
 * DVOICE_ERR_INVALID_ARGUMENT (NULL, bad length), DVOICE_ERR_NOMEM,
 * decode errors from mls_codec.h (TRUNCATED, TRAILING, MALFORMED,
 * UNSUPPORTED), DVOICE_ERR_CRYPTO (bad signature, MAC, AEAD tag, point,
 * tree hash or parent hash), DVOICE_ERR_PROTO (a well-formed message that
 * breaks an MLS or DAVE rule: wrong group, epoch, sender, content type,
 * proposal type, missing extension), DVOICE_ERR_UNSUPPORTED (PSKs without
 * dv_mls_join_keys.psks, PrivateMessage), DVOICE_ERR_NOT_FOUND (a Welcome
 * with no secrets for our KeyPackage, our leaf missing from the tree).
 * Peer input never crashes or over-reads.
 */
#ifndef DV_MLS_GROUP_H
#define DV_MLS_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_keysched.h"
#include "mls/mls_tree.h"
#include "mls/mls_treekem.h"
#include "util/dv_buf.h"

/* ---- leaves and key packages ---------------------------------------------
 */

/*
 * Verifies a decoded KeyPackage (dv_mls_key_package_decode): version 1,
 * cipher suite 2, init_key a valid point different from the leaf's
 * encryption_key, the leaf (dv_mls_leaf_validate with source key_package
 * and |flags|, e.g. DV_MLS_VALIDATE_DAVE) and the KeyPackage signature
 * ("KeyPackageTBS"). Lifetime is not checked (DAVE does not).
 * 0, DVOICE_ERR_CRYPTO, DVOICE_ERR_PROTO, DVOICE_ERR_UNSUPPORTED, NOMEM.
 */
int dv_mls_key_package_verify(const dvoice_mem *mem,
                              const dv_mls_key_package *kp, unsigned flags);

/*
 * Builds a KeyPackage in DAVE's profile (dave.md section 1.1): basic
 * credential = 8-byte big-endian |user_id|, capabilities versions [1],
 * suites [2], extensions [], proposals [], credentials [1]; lifetime
 * 0..2^64-1; no extensions; leaf HPKE key |leaf_key| (reused across key
 * packages, as libdave does); a FRESH init key generated here from
 * dv_rand(env) and returned in |init_key| (keep it to open the Welcome);
 * both signatures with |sig|. The encoding is appended to |out| (the raw
 * KeyPackage that op 26 carries). Errors: INVALID_ARGUMENT, NOMEM,
 * INTERNAL.
 */
int dv_mls_dave_key_package(const dvoice_env *env, uint64_t user_id,
                            const dv_mls_sig_key *sig,
                            const dv_mls_hpke_key *leaf_key,
                            dv_mls_hpke_key *init_key, dv_buf *out);

/* Appends DAVE's LeafNode (source key_package, as above) for |user_id|,
 * signed with |sig|, to |out|. */
int dv_mls_dave_leaf_node(const dvoice_env *env, uint64_t user_id,
                          const dv_mls_sig_key *sig,
                          const dv_mls_hpke_key *leaf_key, dv_buf *out);

/* The user id of a leaf: its basic credential identity as a big-endian
 * u64. DVOICE_ERR_PROTO unless the credential is basic with exactly 8
 * bytes of identity. */
int dv_mls_leaf_user_id(const dv_mls_leaf_node *leaf, uint64_t *user_id);

/* ---- PublicMessage framing -----------------------------------------------
 */

/*
 * Appends FramedContentTBS: u16 version (1), u16 wire_format, the
 * FramedContent encoding |fc| (borrowed bytes), then the serialized
 * GroupContext |gc| iff |sender_type| is member or new_member_commit
 * (external senders sign without it; dave.md section 0 item 7).
 */
void dv_mls_framed_content_tbs_write(dv_wr *w, uint16_t wire_format,
                                     const dv_mls_bytes *fc,
                                     uint8_t sender_type,
                                     const dv_mls_bytes *gc);

/*
 * Verifies a decoded PublicMessage: the signature over FramedContentTBS
 * with |sig_pub| (the sender's signature key), and for a member sender the
 * membership tag HMAC(membership_key, FramedContentTBS ||
 * FramedContentAuthData) (membership_key must then be non-NULL). |gc| is
 * the serialized GroupContext of the message's epoch (unused for external
 * senders). Does not check group id or epoch (the caller does).
 * 0, DVOICE_ERR_CRYPTO, DVOICE_ERR_PROTO (member sender without a tag,
 * sender type not member/external), NOMEM.
 */
int dv_mls_public_message_verify(const dvoice_mem *mem,
                                 const dv_mls_public_message *pm,
                                 const uint8_t *sig_pub, size_t sig_pub_len,
                                 const dv_mls_bytes *gc,
                                 const uint8_t *membership_key);

/*
 * Signs an encoded FramedContent |fc| for wire_format PublicMessage:
 * SignWithLabel(priv, "FramedContentTBS", FramedContentTBS). |gc| as for
 * dv_mls_framed_content_tbs_write. sig holds DV_MLS_SIG_MAX bytes.
 */
int dv_mls_framed_content_sign(const dvoice_env *env,
                               const uint8_t priv[DV_MLS_PRIV_LEN],
                               const dv_mls_bytes *fc, uint8_t sender_type,
                               const dv_mls_bytes *gc,
                               uint8_t sig[DV_MLS_SIG_MAX], size_t *sig_len);

/*
 * Appends MLSMessage{mls10, PublicMessage{fc, signature<V>,
 * [confirmation_tag<V>], [membership_tag<V>]}} to |out|.
 * confirmation_tag (32 bytes) must be non-NULL iff the content type is
 * commit; membership_key must be non-NULL iff the sender is a member (the
 * tag is computed here over the TBM, with |gc|). |fc| must be a whole
 * encoded FramedContent (it is decoded to learn sender and content type).
 */
int dv_mls_public_message_seal(const dvoice_mem *mem, const dv_mls_bytes *fc,
                               const uint8_t *sig, size_t sig_len,
                               const uint8_t *confirmation_tag,
                               const uint8_t *membership_key,
                               const dv_mls_bytes *gc, dv_buf *out);

/*
 * ProposalRef of a decoded proposal PublicMessage: RefHash("MLS 1.0
 * Proposal Reference", AuthenticatedContent), AuthenticatedContent =
 * u16 wire_format (1) || FramedContent || signature<V>.
 * DVOICE_ERR_PROTO if the content is not a proposal.
 */
int dv_mls_proposal_ref(const dv_mls_public_message *pm,
                        uint8_t out[DV_MLS_HASH_LEN]);

/* ---- group state ---------------------------------------------------------
 */

/* A proposal received from the external sender and queued for the next
 * commit: an owned copy of its MLSMessage and its ProposalRef. */
typedef struct dv_mls_queued_proposal {
  uint8_t ref[DV_MLS_HASH_LEN];
  uint8_t *msg; /* owned (env.mem) */
  size_t msg_len;
  dv_mls_message m; /* decoded view borrowing |msg| */
} dv_mls_queued_proposal;

/* One member's view of a group at one epoch. Owns everything it points to
 * (allocated with env.mem). Secrets are wiped by dv_mls_group_free. */
typedef struct dv_mls_group {
  dvoice_env env; /* copied; hooks borrowed */
  /* DV_MLS_VALIDATE_* flags for leaves (default DV_MLS_VALIDATE_DAVE; the
   * generic MLS test vectors clear it). */
  unsigned validate_flags;
  /* Nonzero: dv_mls_group_queue_proposal also accepts Add/Remove proposals
   * sent by members (membership tag and signature checked). Default 0:
   * DAVE allows proposals only from the external sender. */
  int accept_member_proposals;
  dv_buf group_id;
  uint64_t epoch;
  dv_mls_tree tree;
  dv_mls_tree_priv priv; /* own leaf index, leaf key, parent keys */
  dv_mls_sig_key sig;    /* own signature key */
  dv_buf extensions;     /* GroupContext extensions<V>: the vector body */
  uint8_t tree_hash[DV_MLS_HASH_LEN];
  uint8_t confirmed_th[DV_MLS_HASH_LEN];
  size_t confirmed_th_len; /* 0 at a new group's epoch 0 */
  uint8_t interim_th[DV_MLS_HASH_LEN];
  dv_mls_epoch_secrets secrets;
  dv_buf group_context;          /* serialized GroupContext of this epoch */
  dv_mls_queued_proposal *props; /* queue for the next commit */
  size_t n_props, cap_props;
} dv_mls_group;

/* An empty group (no state); allocates nothing. env is copied;
 * validate_flags is DV_MLS_VALIDATE_DAVE. */
void dv_mls_group_init(dv_mls_group *g, const dvoice_env *env);

/* Frees the state and wipes every secret; the group is empty again (env
 * and validate_flags are kept). */
void dv_mls_group_free(dv_mls_group *g);

/* Deep copy of |src| (state and proposal queue) into |dst|, which must be
 * empty (init or freed); it uses src's env. NOMEM leaves |dst| empty. */
int dv_mls_group_copy(dv_mls_group *dst, const dv_mls_group *src);

/* Our leaf index. */
static inline uint32_t dv_mls_group_own_leaf(const dv_mls_group *g) {
  return g->priv.leaf_index;
}

/*
 * Creates a new epoch-0 group with us alone at leaf 0 (RFC 9420 section
 * 11): |leaf| is our encoded LeafNode (e.g. from dv_mls_dave_leaf_node),
 * |sig| and |leaf_key| our keys (copied), |extensions| the encoded
 * GroupContext extensions<V> vector BODY (e.g. one external_senders
 * extension). init_secret is drawn from dv_rand; confirmed transcript hash
 * empty; interim = H(confirmation_tag<V>) over the epoch-0 tag. |g| must be
 * empty (init or freed).
 */
int dv_mls_group_create(dv_mls_group *g, const uint8_t *group_id,
                        size_t group_id_len, const dv_mls_bytes *leaf,
                        const dv_mls_sig_key *sig,
                        const dv_mls_hpke_key *leaf_key,
                        const dv_mls_bytes *extensions);

/* An external PSK a Welcome may reference (interop vectors only). */
typedef struct dv_mls_external_psk {
  const uint8_t *id; /* psk_id */
  size_t id_len;
  const uint8_t *secret;
  size_t secret_len;
} dv_mls_external_psk;

/* Inputs for joining from a Welcome. All borrowed for the call. */
typedef struct dv_mls_join_keys {
  const uint8_t *key_package; /* our KeyPackage encoding */
  size_t key_package_len;
  const dv_mls_hpke_key *init_key; /* its init key pair */
  const dv_mls_hpke_key *leaf_key; /* its leaf HPKE key pair */
  const dv_mls_sig_key *sig;       /* its signature key pair */
  /* External PSKs the GroupSecrets may name (NULL/0 for DAVE, where a
   * Welcome carrying PSKs is refused with DVOICE_ERR_UNSUPPORTED). */
  const dv_mls_external_psk *psks;
  size_t n_psks;
} dv_mls_join_keys;

/*
 * Opens a Welcome for our KeyPackage (RFC 9420 section 12.4.3.1) without
 * building group state: finds our EncryptedGroupSecrets by KeyPackageRef,
 * opens it (EncryptWithLabel "Welcome", context encrypted_group_info),
 * requires psks empty, derives the welcome key and decrypts the GroupInfo.
 * The GroupSecrets and GroupInfo plaintexts are appended to |group_secrets|
 * and |group_info| (secrets: wipe with dv_buf_free_secret).
 * |welcome| is a decoded Welcome. NOT_FOUND if no entry names us.
 */
int dv_mls_welcome_open(const dvoice_env *env, const dv_mls_welcome *welcome,
                        const uint8_t kp_ref[DV_MLS_HASH_LEN],
                        const dv_mls_hpke_key *init_key, dv_buf *group_secrets,
                        dv_buf *group_info);

/*
 * Joins a group from a Welcome: dv_mls_welcome_open, then the GroupInfo
 * (cipher suite 2, version 1) and its ratchet_tree extension (or
 * |external_tree| if not NULL: the same optional<Node> nodes<V> encoding),
 * tree hash == GroupContext.tree_hash, GroupInfo signature by the signer's
 * leaf, every leaf signature and key, parent hashes, our own leaf (matched
 * by encryption and signature key), the path secret (implanted at the
 * common ancestor of us and the signer, derived upward, public keys checked
 * against the tree), the key schedule from the joiner secret, and the
 * confirmation tag. |welcome| is a whole encoded Welcome (not MLSMessage
 * wrapped). |g| must be empty; on failure it stays empty.
 */
int dv_mls_group_join(dv_mls_group *g, const uint8_t *welcome,
                      size_t welcome_len, const dv_mls_join_keys *keys,
                      const dv_mls_bytes *external_tree);

/*
 * The same join split so the leaf-signature checks (one ECDSA verify per
 * member, the bulk of the cost) can run on several worker threads
 * (DESIGN.md section 5): dv_mls_group_join_begin does everything
 * dv_mls_group_join does except validating the leaves themselves (the
 * GroupInfo signature, tree hash, key uniqueness and parent hashes are
 * checked); then dv_mls_group_join_verify_leaves must succeed for every
 * leaf range covering [0, g->tree.n_leaves) before |g| is used. It only
 * reads |g|, so ranges may run concurrently. On any failure the caller
 * frees |g|. dv_mls_group_join is begin + verify_leaves(0, all).
 */
int dv_mls_group_join_begin(dv_mls_group *g, const uint8_t *welcome,
                            size_t welcome_len, const dv_mls_join_keys *keys,
                            const dv_mls_bytes *external_tree);

/* Validates leaves [first, first + count) of a group from
 * dv_mls_group_join_begin (dv_mls_leaf_validate with the group id and the
 * group's validate_flags; blank leaves are skipped; the range is clipped to
 * the tree). 0, DVOICE_ERR_CRYPTO, DVOICE_ERR_PROTO. */
int dv_mls_group_join_verify_leaves(const dv_mls_group *g, uint32_t first,
                                    uint32_t count);

/* The user id of leaf |leaf_index| (DAVE credential). NOT_FOUND if blank,
 * PROTO if the credential is not an 8-byte basic identity. */
int dv_mls_group_user_id(const dv_mls_group *g, uint32_t leaf_index,
                         uint64_t *user_id);

/*
 * The group's external sender (the only entry of the external_senders
 * extension): |out| borrows from g->extensions. NOT_FOUND if the
 * extension is absent, PROTO if it does not hold exactly one entry.
 */
int dv_mls_group_external_sender(const dv_mls_group *g,
                                 dv_mls_external_sender *out);

/*
 * DAVE's Welcome check (dave.md section 1.2): 0 if the group's
 * external_senders extension holds exactly one ExternalSender whose
 * encoding equals |es| (the op 25 payload), else DVOICE_ERR_PROTO
 * (NOT_FOUND if the extension is absent).
 */
int dv_mls_group_external_sender_matches(const dv_mls_group *g,
                                         const uint8_t *es, size_t es_len);

/*
 * DAVE's per-sender media base secret for this epoch (dave.md section
 * 4.1): MLS-Exporter("Discord Secure Frames v0", little-endian u64
 * |user_id|, 16).
 */
int dv_mls_group_dave_base_secret(const dv_mls_group *g, uint64_t user_id,
                                  uint8_t out[16]);

/*
 * Validates a proposal from the external sender (dave.md section 1.3):
 * PublicMessage, our group id and epoch, content proposal, sender
 * external index 0, proposal Add or Remove, signature by the group's
 * external sender key (no GroupContext, no membership tag). For Add, the
 * KeyPackage is verified (dv_mls_key_package_verify); for Remove, the leaf
 * must be occupied. On success |ref| receives the ProposalRef. The
 * recognized-user check (DAVE) is the caller's. |msg| is a decoded
 * MLSMessage.
 */
int dv_mls_group_check_external_proposal(const dv_mls_group *g,
                                         const dv_mls_message *msg,
                                         uint8_t ref[DV_MLS_HASH_LEN]);

/* ---- proposal queue and commits ------------------------------------------
 */

/*
 * Validates an encoded MLSMessage proposal from the external sender
 * (dv_mls_group_check_external_proposal), or from a member when
 * g->accept_member_proposals is set (our group and epoch, Add or Remove,
 * membership tag, signature by the sender's leaf; UNSUPPORTED for other
 * proposal types), and appends a copy to the queue.
 * |ref| (may be NULL) receives its ProposalRef. A proposal whose ref is
 * already queued is refused with DVOICE_ERR_PROTO. Decode errors, PROTO,
 * CRYPTO, NOMEM.
 */
int dv_mls_group_queue_proposal(dv_mls_group *g, const uint8_t *msg, size_t len,
                                uint8_t ref[DV_MLS_HASH_LEN]);

/*
 * Queues a proposal already validated off the loop thread (DESIGN.md
 * section 5: the expensive dv_mls_group_check_external_proposal runs on a
 * worker with this group left untouched, then this cheap step runs on the
 * loop). Decodes |msg|, requires our group id and epoch, recomputes the
 * ProposalRef and requires it to equal |ref| (the one the check returned,
 * so the bytes are the ones checked); signatures are NOT verified again.
 * Errors: decode errors, PROTO (group, epoch, ref mismatch, duplicate),
 * NOMEM.
 */
int dv_mls_group_queue_checked(dv_mls_group *g, const uint8_t *msg, size_t len,
                               const uint8_t ref[DV_MLS_HASH_LEN]);

/* Removes the queued proposal with |ref| (op 27 revoke). NOT_FOUND if no
 * queued proposal has that ref. */
int dv_mls_group_revoke_proposal(dv_mls_group *g,
                                 const uint8_t ref[DV_MLS_HASH_LEN]);

/* Drops every queued proposal. */
void dv_mls_group_clear_proposals(dv_mls_group *g);

/*
 * Commits every queued proposal, by reference and in queue order (dave.md
 * section 1.4): Removes then Adds applied to a copy of the tree, then
 * truncation; an UpdatePath iff a Remove is present (or the queue is
 * empty); the commit is signed, confirmed and membership-tagged with this
 * epoch's keys. Appends the MLSMessage(PublicMessage commit) to |commit|
 * and, iff the commit adds members, the raw Welcome (ratchet_tree in the
 * GroupInfo) to |welcome|. |next| (must be empty) receives the state of
 * the next epoch, to adopt if this commit wins. |g| is not modified.
 * Errors: PROTO (a proposal removes us), NOMEM, CRYPTO, INTERNAL.
 */
int dv_mls_group_commit(const dv_mls_group *g, dv_buf *commit, dv_buf *welcome,
                        dv_mls_group *next);

/*
 * Processes another member's commit (dave.md section 3.9): an encoded
 * MLSMessage; our group id and epoch; a member sender other than us whose
 * leaf exists; membership tag and signature; every proposal a reference
 * to a queued proposal (inline proposals are refused); Removes then Adds
 * then truncation; an UpdatePath present if required (a Remove or no
 * proposals; optional otherwise), merged and decrypted (DAVE flag: the
 * committer's new leaf keeps its identity and signature key); the key schedule
 * and the confirmation tag. |next| (must be empty) receives the next epoch's
 * state; |g| is not modified. Errors: decode errors, PROTO (wrong
 * group/epoch/sender/content, unknown or inline proposal, missing path, we are
 * removed), CRYPTO (tag, signature, path), NOMEM.
 */
int dv_mls_group_process_commit(const dv_mls_group *g, const uint8_t *msg,
                                size_t len, dv_mls_group *next);

#endif
