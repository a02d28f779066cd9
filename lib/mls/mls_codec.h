/*
 * TLS presentation codec for the RFC 9420 structures DAVE uses
 * (reference/dave.md section 3.2).
 *
 * Ownership model: decoding never allocates. Every decoded struct BORROWS
 * from the input bytes: dv_mls_bytes and dv_mls_vec fields point into the
 * buffer handed to the decoder, which must outlive the struct. Nested
 * vectors of structs are validated completely at decode time and kept as
 * their encoded body (dv_mls_vec); walk them with the dv_mls_next_* iterators
 * (which cannot fail on a vector the decoder accepted). Vectors of u16/u32
 * are read with dv_mls_vec_u16/u32.
 *
 * Encoding: dv_mls_*_write(w, x) appends the encoding of |x| to a dv_wr
 * (sticky error in w->err). Vectors of structs are re-encoded element by
 * element from their body, so a body built by a caller must hold well-formed
 * elements (write them with the element writers into a scratch dv_buf, then
 * point the dv_mls_vec at it with the element count); a malformed body sets
 * w->err = DVOICE_ERR_MALFORMED. Decode-then-write is byte-identical.
 *
 * Decode errors: DVOICE_ERR_TRUNCATED (input ends early),
 * DVOICE_ERR_TRAILING (bytes after the structure or inside a vector after
 * the last element), DVOICE_ERR_MALFORMED (non-minimal varint, bad enum or
 * optional/bool value, bad list length), DVOICE_ERR_UNSUPPORTED (protocol
 * version != mls10, unknown credential/proposal/wire-format type that cannot
 * be skipped, PrivateMessage, and -- in the dv_mls_*_decode entry points --
 * a cipher suite other than 2).
 *
 * The dv_mls_*_read(dv_rd *, ...) functions read one structure from a
 * reader, accept any cipher suite value (the mlswg messages.json vectors use
 * several), and leave the reader positioned after it; check the return value
 * or r->err. The dv_mls_*_decode(p, len, ...) entry points read a whole
 * buffer, reject trailing bytes and require cipher suite 2.
 */
#ifndef DV_MLS_CODEC_H
#define DV_MLS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "util/dv_rw.h"

#define DV_MLS_VERSION_10 1
#define DV_MLS_SUITE_P256 2 /* MLS_128_DHKEMP256_AES128GCM_SHA256_P256 */

enum {
  DV_MLS_WF_PUBLIC = 1,
  DV_MLS_WF_PRIVATE = 2,
  DV_MLS_WF_WELCOME = 3,
  DV_MLS_WF_GROUP_INFO = 4,
  DV_MLS_WF_KEY_PACKAGE = 5
};

enum { DV_MLS_CRED_BASIC = 1, DV_MLS_CRED_X509 = 2 };

enum {
  DV_MLS_EXT_APPLICATION_ID = 1,
  DV_MLS_EXT_RATCHET_TREE = 2,
  DV_MLS_EXT_REQUIRED_CAPABILITIES = 3,
  DV_MLS_EXT_EXTERNAL_PUB = 4,
  DV_MLS_EXT_EXTERNAL_SENDERS = 5
};

enum {
  DV_MLS_LEAF_SRC_KEY_PACKAGE = 1,
  DV_MLS_LEAF_SRC_UPDATE = 2,
  DV_MLS_LEAF_SRC_COMMIT = 3
};

enum {
  DV_MLS_PROP_ADD = 1,
  DV_MLS_PROP_UPDATE = 2,
  DV_MLS_PROP_REMOVE = 3,
  DV_MLS_PROP_PSK = 4,
  DV_MLS_PROP_REINIT = 5,
  DV_MLS_PROP_EXTERNAL_INIT = 6,
  DV_MLS_PROP_GCE = 7
};

enum { DV_MLS_POR_PROPOSAL = 1, DV_MLS_POR_REFERENCE = 2 };

enum {
  DV_MLS_SENDER_MEMBER = 1,
  DV_MLS_SENDER_EXTERNAL = 2,
  DV_MLS_SENDER_NEW_MEMBER_PROPOSAL = 3,
  DV_MLS_SENDER_NEW_MEMBER_COMMIT = 4
};

enum {
  DV_MLS_CONTENT_APPLICATION = 1,
  DV_MLS_CONTENT_PROPOSAL = 2,
  DV_MLS_CONTENT_COMMIT = 3
};

enum { DV_MLS_NODE_LEAF = 1, DV_MLS_NODE_PARENT = 2 };

enum { DV_MLS_PSK_EXTERNAL = 1, DV_MLS_PSK_RESUMPTION = 2 };

/* A borrowed byte string (the contents of an opaque<V>). */
typedef struct dv_mls_bytes {
  const uint8_t *p;
  size_t len;
} dv_mls_bytes;

/* A borrowed vector body (without its length prefix) and its element count. */
typedef struct dv_mls_vec {
  const uint8_t *p;
  size_t len;
  uint32_t count;
} dv_mls_vec;

/* Iterator over a dv_mls_vec of structs. */
typedef struct dv_mls_iter {
  dv_rd r;
} dv_mls_iter;

typedef struct dv_mls_credential {
  uint16_t type;         /* DV_MLS_CRED_BASIC or DV_MLS_CRED_X509 */
  dv_mls_bytes identity; /* basic */
  dv_mls_vec certs;      /* x509: vector of opaque cert_data<V> */
} dv_mls_credential;

/* Each list is a vector of uint16. */
typedef struct dv_mls_capabilities {
  dv_mls_vec versions, cipher_suites, extensions, proposals, credentials;
} dv_mls_capabilities;

typedef struct dv_mls_extension {
  uint16_t type;
  dv_mls_bytes data;
} dv_mls_extension;

typedef struct dv_mls_leaf_node {
  dv_mls_bytes encryption_key, signature_key;
  dv_mls_credential credential;
  dv_mls_capabilities capabilities;
  uint8_t source;                 /* DV_MLS_LEAF_SRC_* */
  uint64_t not_before, not_after; /* source key_package */
  dv_mls_bytes parent_hash;       /* source commit */
  dv_mls_vec extensions;          /* of dv_mls_extension */
  dv_mls_bytes signature;
  /* Set by the decoder: the whole encoding, and its length minus the
   * signature<V> (LeafNodeTBS without the group_id/leaf_index suffix). */
  dv_mls_bytes raw;
  size_t tbs_len;
} dv_mls_leaf_node;

typedef struct dv_mls_key_package {
  uint16_t version, cipher_suite;
  dv_mls_bytes init_key;
  dv_mls_leaf_node leaf_node;
  dv_mls_vec extensions;
  dv_mls_bytes signature;
  dv_mls_bytes raw; /* decoder: whole encoding (KeyPackageRef input) */
  size_t tbs_len;   /* decoder: KeyPackageTBS = raw.p[0..tbs_len) */
} dv_mls_key_package;

typedef struct dv_mls_hpke_ciphertext {
  dv_mls_bytes kem_output, ciphertext;
} dv_mls_hpke_ciphertext;

typedef struct dv_mls_update_path_node {
  dv_mls_bytes encryption_key;
  dv_mls_vec encrypted_path_secret; /* of dv_mls_hpke_ciphertext */
} dv_mls_update_path_node;

typedef struct dv_mls_update_path {
  dv_mls_leaf_node leaf_node;
  dv_mls_vec nodes; /* of dv_mls_update_path_node */
} dv_mls_update_path;

typedef struct dv_mls_parent_node {
  dv_mls_bytes encryption_key, parent_hash;
  dv_mls_vec unmerged_leaves; /* of uint32 */
} dv_mls_parent_node;

typedef struct dv_mls_node {
  uint8_t type; /* DV_MLS_NODE_LEAF or DV_MLS_NODE_PARENT */
  dv_mls_leaf_node leaf;
  dv_mls_parent_node parent;
} dv_mls_node;

typedef struct dv_mls_psk_id {
  uint8_t psktype;     /* DV_MLS_PSK_* */
  dv_mls_bytes psk_id; /* external */
  uint8_t usage;       /* resumption: ResumptionPSKUsage (uint8) */
  dv_mls_bytes psk_group_id;
  uint64_t psk_epoch;
  dv_mls_bytes psk_nonce;
} dv_mls_psk_id;

typedef struct dv_mls_proposal {
  uint16_t type;                /* DV_MLS_PROP_* */
  dv_mls_key_package add;       /* add */
  dv_mls_leaf_node update;      /* update */
  uint32_t removed;             /* remove */
  dv_mls_psk_id psk;            /* pre_shared_key */
  dv_mls_bytes reinit_group_id; /* reinit */
  uint16_t reinit_version, reinit_cipher_suite;
  dv_mls_vec extensions;   /* reinit and group_context_extensions */
  dv_mls_bytes kem_output; /* external_init */
} dv_mls_proposal;

typedef struct dv_mls_proposal_or_ref {
  uint8_t type; /* DV_MLS_POR_* */
  dv_mls_proposal proposal;
  dv_mls_bytes reference;
} dv_mls_proposal_or_ref;

typedef struct dv_mls_commit {
  dv_mls_vec proposals; /* of dv_mls_proposal_or_ref */
  int has_path;
  dv_mls_update_path path;
} dv_mls_commit;

typedef struct dv_mls_sender {
  uint8_t type;   /* DV_MLS_SENDER_* */
  uint32_t index; /* member: leaf_index; external: sender_index */
} dv_mls_sender;

typedef struct dv_mls_framed_content {
  dv_mls_bytes group_id;
  uint64_t epoch;
  dv_mls_sender sender;
  dv_mls_bytes authenticated_data;
  uint8_t content_type; /* DV_MLS_CONTENT_* */
  dv_mls_bytes application_data;
  dv_mls_proposal proposal;
  dv_mls_commit commit;
  dv_mls_bytes raw; /* decoder: the FramedContent encoding */
} dv_mls_framed_content;

typedef struct dv_mls_auth_data {
  dv_mls_bytes signature;
  dv_mls_bytes confirmation_tag; /* iff content_type commit */
  /* Decoder: the FramedContentAuthData encoding (for AuthenticatedContentTBM
   * = FramedContentTBS || this). */
  dv_mls_bytes raw;
} dv_mls_auth_data;

typedef struct dv_mls_public_message {
  dv_mls_framed_content content;
  dv_mls_auth_data auth;
  dv_mls_bytes membership_tag; /* iff sender member */
} dv_mls_public_message;

/* AuthenticatedContent{wire_format; FramedContent; FramedContentAuthData}. */
typedef struct dv_mls_authenticated_content {
  uint16_t wire_format;
  dv_mls_framed_content content;
  dv_mls_auth_data auth;
  dv_mls_bytes raw;
} dv_mls_authenticated_content;

typedef struct dv_mls_group_context {
  uint16_t version, cipher_suite;
  dv_mls_bytes group_id;
  uint64_t epoch;
  dv_mls_bytes tree_hash, confirmed_transcript_hash;
  dv_mls_vec extensions;
  dv_mls_bytes raw; /* decoder */
} dv_mls_group_context;

typedef struct dv_mls_group_info {
  dv_mls_group_context group_context;
  dv_mls_vec extensions;
  dv_mls_bytes confirmation_tag;
  uint32_t signer;
  dv_mls_bytes signature;
  dv_mls_bytes raw; /* decoder */
  size_t tbs_len;   /* decoder: GroupInfoTBS = raw.p[0..tbs_len) */
} dv_mls_group_info;

typedef struct dv_mls_group_secrets {
  dv_mls_bytes joiner_secret;
  int has_path_secret;
  dv_mls_bytes path_secret;
  dv_mls_vec psks; /* of dv_mls_psk_id */
} dv_mls_group_secrets;

typedef struct dv_mls_encrypted_group_secrets {
  dv_mls_bytes new_member; /* KeyPackageRef */
  dv_mls_hpke_ciphertext encrypted_group_secrets;
} dv_mls_encrypted_group_secrets;

typedef struct dv_mls_welcome {
  uint16_t cipher_suite;
  dv_mls_vec secrets; /* of dv_mls_encrypted_group_secrets */
  dv_mls_bytes encrypted_group_info;
} dv_mls_welcome;

typedef struct dv_mls_external_sender {
  dv_mls_bytes signature_key;
  dv_mls_credential credential;
} dv_mls_external_sender;

typedef struct dv_mls_message {
  uint16_t version;
  uint16_t wire_format; /* DV_MLS_WF_*; never PRIVATE after a decode */
  dv_mls_public_message pub;
  dv_mls_welcome welcome;
  dv_mls_group_info group_info;
  dv_mls_key_package key_package;
  /* Decoder, PUBLIC only: wire_format || FramedContent ||
   * FramedContentAuthData, i.e. the AuthenticatedContent that ProposalRef
   * hashes (the message minus its version and membership tag). */
  dv_mls_bytes authenticated_content;
} dv_mls_message;

/* ---- vectors ------------------------------------------------------------ */

/* Element |i| (< count) of a validated vector of uint16 / uint32. */
uint16_t dv_mls_vec_u16(const dv_mls_vec *v, uint32_t i);
uint32_t dv_mls_vec_u32(const dv_mls_vec *v, uint32_t i);
/* Nonzero if the uint16 vector |v| contains |x|. */
int dv_mls_vec_has_u16(const dv_mls_vec *v, uint16_t x);

/* Starts |it| at the first element of the validated vector |v| (borrowed
 * for the iteration). */
void dv_mls_iter_init(dv_mls_iter *it, const dv_mls_vec *v);
/* Each returns 1 and fills |out| with the next element, 0 at the end, or a
 * negative decode error for a malformed body (never for a decoded one). */
int dv_mls_next_extension(dv_mls_iter *it, dv_mls_extension *out);
int dv_mls_next_opaque(dv_mls_iter *it, dv_mls_bytes *out);
int dv_mls_next_hpke_ciphertext(dv_mls_iter *it, dv_mls_hpke_ciphertext *out);
int dv_mls_next_update_path_node(dv_mls_iter *it, dv_mls_update_path_node *out);
int dv_mls_next_proposal_or_ref(dv_mls_iter *it, dv_mls_proposal_or_ref *out);
int dv_mls_next_psk_id(dv_mls_iter *it, dv_mls_psk_id *out);
int dv_mls_next_encrypted_group_secrets(dv_mls_iter *it,
                                        dv_mls_encrypted_group_secrets *out);
int dv_mls_next_external_sender(dv_mls_iter *it, dv_mls_external_sender *out);
/* Finds the first extension of |type| in |exts|: 1 found (|out| set), 0 not
 * found. */
int dv_mls_find_extension(const dv_mls_vec *exts, uint16_t type,
                          dv_mls_extension *out);

/* ---- readers (see the header comment) ----------------------------------- */

int dv_mls_credential_read(dv_rd *r, dv_mls_credential *out);
int dv_mls_capabilities_read(dv_rd *r, dv_mls_capabilities *out);
int dv_mls_extensions_read(dv_rd *r, dv_mls_vec *out);
int dv_mls_leaf_node_read(dv_rd *r, dv_mls_leaf_node *out);
int dv_mls_key_package_read(dv_rd *r, dv_mls_key_package *out);
int dv_mls_hpke_ciphertext_read(dv_rd *r, dv_mls_hpke_ciphertext *out);
int dv_mls_update_path_read(dv_rd *r, dv_mls_update_path *out);
int dv_mls_parent_node_read(dv_rd *r, dv_mls_parent_node *out);
int dv_mls_node_read(dv_rd *r, dv_mls_node *out);
int dv_mls_psk_id_read(dv_rd *r, dv_mls_psk_id *out);
int dv_mls_proposal_read(dv_rd *r, dv_mls_proposal *out);
int dv_mls_proposal_or_ref_read(dv_rd *r, dv_mls_proposal_or_ref *out);
int dv_mls_commit_read(dv_rd *r, dv_mls_commit *out);
int dv_mls_framed_content_read(dv_rd *r, dv_mls_framed_content *out);
/* FramedContentAuthData; the confirmation tag is read iff |content_type| is
 * commit. */
int dv_mls_auth_data_read(dv_rd *r, uint8_t content_type,
                          dv_mls_auth_data *out);
int dv_mls_public_message_read(dv_rd *r, dv_mls_public_message *out);
int dv_mls_authenticated_content_read(dv_rd *r,
                                      dv_mls_authenticated_content *out);
int dv_mls_group_context_read(dv_rd *r, dv_mls_group_context *out);
int dv_mls_group_info_read(dv_rd *r, dv_mls_group_info *out);
int dv_mls_group_secrets_read(dv_rd *r, dv_mls_group_secrets *out);
int dv_mls_encrypted_group_secrets_read(dv_rd *r,
                                        dv_mls_encrypted_group_secrets *out);
int dv_mls_welcome_read(dv_rd *r, dv_mls_welcome *out);
int dv_mls_external_sender_read(dv_rd *r, dv_mls_external_sender *out);
/* MLSMessage: version must be mls10; PrivateMessage gives UNSUPPORTED. */
int dv_mls_message_read(dv_rd *r, dv_mls_message *out);

/* ---- whole-buffer decoders: no trailing bytes, cipher suite 2 ----------- */

int dv_mls_key_package_decode(const uint8_t *p, size_t len,
                              dv_mls_key_package *out);
int dv_mls_message_decode(const uint8_t *p, size_t len, dv_mls_message *out);
int dv_mls_welcome_decode(const uint8_t *p, size_t len, dv_mls_welcome *out);
int dv_mls_group_info_decode(const uint8_t *p, size_t len,
                             dv_mls_group_info *out);
int dv_mls_group_secrets_decode(const uint8_t *p, size_t len,
                                dv_mls_group_secrets *out);
int dv_mls_external_sender_decode(const uint8_t *p, size_t len,
                                  dv_mls_external_sender *out);

/* ---- writers ------------------------------------------------------------ */

void dv_mls_credential_write(dv_wr *w, const dv_mls_credential *x);
void dv_mls_capabilities_write(dv_wr *w, const dv_mls_capabilities *x);
void dv_mls_extension_write(dv_wr *w, const dv_mls_extension *x);
/* Writes the vector (with its length prefix). */
void dv_mls_extensions_write(dv_wr *w, const dv_mls_vec *exts);
void dv_mls_leaf_node_write(dv_wr *w, const dv_mls_leaf_node *x);
/* LeafNodeTBS: the leaf without its signature, followed by group_id<V> and
 * u32 leaf_index when the source is update or commit (ignored otherwise;
 * group_id NULL then sets DVOICE_ERR_INVALID_ARGUMENT). */
void dv_mls_leaf_node_tbs_write(dv_wr *w, const dv_mls_leaf_node *x,
                                const dv_mls_bytes *group_id,
                                uint32_t leaf_index);
void dv_mls_key_package_write(dv_wr *w, const dv_mls_key_package *x);
/* KeyPackageTBS: the key package without its signature. */
void dv_mls_key_package_tbs_write(dv_wr *w, const dv_mls_key_package *x);
void dv_mls_hpke_ciphertext_write(dv_wr *w, const dv_mls_hpke_ciphertext *x);
void dv_mls_update_path_node_write(dv_wr *w, const dv_mls_update_path_node *x);
void dv_mls_update_path_write(dv_wr *w, const dv_mls_update_path *x);
void dv_mls_parent_node_write(dv_wr *w, const dv_mls_parent_node *x);
void dv_mls_node_write(dv_wr *w, const dv_mls_node *x);
void dv_mls_psk_id_write(dv_wr *w, const dv_mls_psk_id *x);
void dv_mls_proposal_write(dv_wr *w, const dv_mls_proposal *x);
void dv_mls_proposal_or_ref_write(dv_wr *w, const dv_mls_proposal_or_ref *x);
void dv_mls_commit_write(dv_wr *w, const dv_mls_commit *x);
void dv_mls_sender_write(dv_wr *w, const dv_mls_sender *x);
void dv_mls_framed_content_write(dv_wr *w, const dv_mls_framed_content *x);
void dv_mls_auth_data_write(dv_wr *w, uint8_t content_type,
                            const dv_mls_auth_data *x);
void dv_mls_public_message_write(dv_wr *w, const dv_mls_public_message *x);
void dv_mls_authenticated_content_write(dv_wr *w,
                                        const dv_mls_authenticated_content *x);
void dv_mls_group_context_write(dv_wr *w, const dv_mls_group_context *x);
void dv_mls_group_info_write(dv_wr *w, const dv_mls_group_info *x);
/* GroupInfoTBS: the group info without its signature. */
void dv_mls_group_info_tbs_write(dv_wr *w, const dv_mls_group_info *x);
void dv_mls_group_secrets_write(dv_wr *w, const dv_mls_group_secrets *x);
void dv_mls_encrypted_group_secrets_write(
    dv_wr *w, const dv_mls_encrypted_group_secrets *x);
void dv_mls_welcome_write(dv_wr *w, const dv_mls_welcome *x);
void dv_mls_external_sender_write(dv_wr *w, const dv_mls_external_sender *x);
void dv_mls_message_write(dv_wr *w, const dv_mls_message *x);

/* Helpers: a dv_mls_bytes over |p, len|; equality of two byte strings. */
static inline dv_mls_bytes dv_mls_b(const uint8_t *p, size_t len) {
  dv_mls_bytes b;
  b.p = p;
  b.len = len;
  return b;
}
/* Nonzero if |a| and |b| hold the same bytes. Not constant time: for
 * public values only. */
int dv_mls_bytes_eq(const dv_mls_bytes *a, const dv_mls_bytes *b);

#endif
