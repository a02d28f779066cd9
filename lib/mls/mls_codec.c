#include "mls/mls_codec.h"

#include <string.h>

#include <dvoice/dvoice.h>

/* ---- small helpers ------------------------------------------------------ */

static int rd_opaque(dv_rd *r, dv_mls_bytes *b) {
  return dv_rd_opaque(r, &b->p, &b->len);
}

/* Reads an optional<> presence byte: 0 or 1, anything else is malformed. */
static int rd_present(dv_rd *r, int *present) {
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

/* Reads a vector of fixed-size integers of |width| bytes. */
static int rd_int_vec(dv_rd *r, size_t width, dv_mls_vec *v) {
  dv_rd sub;
  memset(v, 0, sizeof(*v));
  if (dv_rd_vec(r, &sub) != 0) {
    return r->err;
  }
  if (sub.len % width != 0) {
    return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  v->p = sub.p;
  v->len = sub.len;
  v->count = (uint32_t)(sub.len / width);
  return 0;
}

static size_t rd_pos(const dv_rd *r) {
  return r->pos;
}

static void set_raw(const dv_rd *r, size_t start, dv_mls_bytes *raw) {
  raw->p = r->err ? NULL : r->p + start;
  raw->len = r->err ? 0 : r->pos - start;
}

/*
 * Reads a vector of structs with |T| scratch element and |readfn|, checking
 * every element and counting them. Errors inside the body are copied to the
 * outer reader.
 */
#define RD_STRUCT_VEC(r, vec, T, readfn)                                       \
  do {                                                                         \
    dv_rd sub_;                                                                \
    T e_;                                                                      \
    memset((vec), 0, sizeof(*(vec)));                                          \
    if (dv_rd_vec((r), &sub_) == 0) {                                          \
      (vec)->p = sub_.p;                                                       \
      (vec)->len = sub_.len;                                                   \
      while (dv_rd_left(&sub_) > 0) {                                          \
        if (readfn(&sub_, &e_) != 0) {                                         \
          dv_rd_fail((r), sub_.err);                                           \
          break;                                                               \
        }                                                                      \
        (vec)->count++;                                                        \
      }                                                                        \
    }                                                                          \
  } while (0)

/* Writes a vector of structs by re-encoding each element of |vec|. */
#define WR_STRUCT_VEC(w, vec, T, nextfn, writefn)                              \
  do {                                                                         \
    dv_mls_iter it_;                                                           \
    T e_;                                                                      \
    int rc_;                                                                   \
    size_t m_ = dv_wr_vec_begin(w);                                            \
    dv_mls_iter_init(&it_, (vec));                                             \
    while ((rc_ = nextfn(&it_, &e_)) == 1) {                                   \
      writefn((w), &e_);                                                       \
    }                                                                          \
    if (rc_ < 0 && (w)->err == 0) {                                            \
      (w)->err = DVOICE_ERR_MALFORMED;                                         \
    }                                                                          \
    dv_wr_vec_end((w), m_);                                                    \
  } while (0)

static void wr_bytes_v(dv_wr *w, const dv_mls_bytes *b) {
  dv_wr_opaque(w, b->p, b->len);
}

/* Writes a vector of integers from its body (already canonical). */
static void wr_int_vec(dv_wr *w, const dv_mls_vec *v, size_t width) {
  if (v->len % width != 0 && w->err == 0) {
    w->err = DVOICE_ERR_MALFORMED;
    return;
  }
  dv_wr_opaque(w, v->p, v->len);
}

int dv_mls_bytes_eq(const dv_mls_bytes *a, const dv_mls_bytes *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- vectors ------------------------------------------------------------ */

uint16_t dv_mls_vec_u16(const dv_mls_vec *v, uint32_t i) {
  if ((size_t)i * 2 + 2 > v->len) {
    return 0;
  }
  return dv_get_u16(v->p + (size_t)i * 2);
}

uint32_t dv_mls_vec_u32(const dv_mls_vec *v, uint32_t i) {
  if ((size_t)i * 4 + 4 > v->len) {
    return 0;
  }
  return dv_get_u32(v->p + (size_t)i * 4);
}

int dv_mls_vec_has_u16(const dv_mls_vec *v, uint16_t x) {
  size_t i;
  for (i = 0; i + 2 <= v->len; i += 2) {
    if (dv_get_u16(v->p + i) == x) {
      return 1;
    }
  }
  return 0;
}

void dv_mls_iter_init(dv_mls_iter *it, const dv_mls_vec *v) {
  dv_rd_init(&it->r, v->p, v->len);
}

#define DEFINE_NEXT(name, T, readfn)                                           \
  int name(dv_mls_iter *it, T *out) {                                          \
    if (it->r.err) {                                                           \
      return it->r.err;                                                        \
    }                                                                          \
    if (dv_rd_left(&it->r) == 0) {                                             \
      return 0;                                                                \
    }                                                                          \
    if (readfn(&it->r, out) != 0) {                                            \
      return it->r.err;                                                        \
    }                                                                          \
    return 1;                                                                  \
  }

static int extension_read(dv_rd *r, dv_mls_extension *out) {
  dv_rd_u16(r, &out->type);
  rd_opaque(r, &out->data);
  return r->err;
}

static int opaque_read(dv_rd *r, dv_mls_bytes *out) {
  return rd_opaque(r, out);
}

static int update_path_node_read(dv_rd *r, dv_mls_update_path_node *out);

DEFINE_NEXT(dv_mls_next_extension, dv_mls_extension, extension_read)
DEFINE_NEXT(dv_mls_next_opaque, dv_mls_bytes, opaque_read)
DEFINE_NEXT(dv_mls_next_hpke_ciphertext, dv_mls_hpke_ciphertext,
            dv_mls_hpke_ciphertext_read)
DEFINE_NEXT(dv_mls_next_update_path_node, dv_mls_update_path_node,
            update_path_node_read)
DEFINE_NEXT(dv_mls_next_proposal_or_ref, dv_mls_proposal_or_ref,
            dv_mls_proposal_or_ref_read)
DEFINE_NEXT(dv_mls_next_psk_id, dv_mls_psk_id, dv_mls_psk_id_read)
DEFINE_NEXT(dv_mls_next_encrypted_group_secrets, dv_mls_encrypted_group_secrets,
            dv_mls_encrypted_group_secrets_read)
DEFINE_NEXT(dv_mls_next_external_sender, dv_mls_external_sender,
            dv_mls_external_sender_read)

int dv_mls_find_extension(const dv_mls_vec *exts, uint16_t type,
                          dv_mls_extension *out) {
  dv_mls_iter it;
  dv_mls_extension e;
  dv_mls_iter_init(&it, exts);
  while (dv_mls_next_extension(&it, &e) == 1) {
    if (e.type == type) {
      *out = e;
      return 1;
    }
  }
  return 0;
}

/* ---- readers ------------------------------------------------------------ */

int dv_mls_credential_read(dv_rd *r, dv_mls_credential *out) {
  memset(out, 0, sizeof(*out));
  if (dv_rd_u16(r, &out->type) != 0) {
    return r->err;
  }
  switch (out->type) {
    case DV_MLS_CRED_BASIC:
      return rd_opaque(r, &out->identity);
    case DV_MLS_CRED_X509:
      RD_STRUCT_VEC(r, &out->certs, dv_mls_bytes, opaque_read);
      return r->err;
    default:
      /* Unknown credential types have no length prefix to skip by. */
      return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
  }
}

int dv_mls_capabilities_read(dv_rd *r, dv_mls_capabilities *out) {
  rd_int_vec(r, 2, &out->versions);
  rd_int_vec(r, 2, &out->cipher_suites);
  rd_int_vec(r, 2, &out->extensions);
  rd_int_vec(r, 2, &out->proposals);
  rd_int_vec(r, 2, &out->credentials);
  return r->err;
}

int dv_mls_extensions_read(dv_rd *r, dv_mls_vec *out) {
  RD_STRUCT_VEC(r, out, dv_mls_extension, extension_read);
  return r->err;
}

int dv_mls_leaf_node_read(dv_rd *r, dv_mls_leaf_node *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  rd_opaque(r, &out->encryption_key);
  rd_opaque(r, &out->signature_key);
  dv_mls_credential_read(r, &out->credential);
  dv_mls_capabilities_read(r, &out->capabilities);
  if (dv_rd_u8(r, &out->source) != 0) {
    return r->err;
  }
  switch (out->source) {
    case DV_MLS_LEAF_SRC_KEY_PACKAGE:
      dv_rd_u64(r, &out->not_before);
      dv_rd_u64(r, &out->not_after);
      break;
    case DV_MLS_LEAF_SRC_UPDATE:
      break;
    case DV_MLS_LEAF_SRC_COMMIT:
      rd_opaque(r, &out->parent_hash);
      break;
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  dv_mls_extensions_read(r, &out->extensions);
  out->tbs_len = r->err ? 0 : r->pos - start;
  rd_opaque(r, &out->signature);
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_key_package_read(dv_rd *r, dv_mls_key_package *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  dv_rd_u16(r, &out->version);
  dv_rd_u16(r, &out->cipher_suite);
  if (r->err) {
    return r->err;
  }
  if (out->version != DV_MLS_VERSION_10) {
    return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
  }
  rd_opaque(r, &out->init_key);
  dv_mls_leaf_node_read(r, &out->leaf_node);
  dv_mls_extensions_read(r, &out->extensions);
  out->tbs_len = r->err ? 0 : r->pos - start;
  rd_opaque(r, &out->signature);
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_hpke_ciphertext_read(dv_rd *r, dv_mls_hpke_ciphertext *out) {
  rd_opaque(r, &out->kem_output);
  rd_opaque(r, &out->ciphertext);
  return r->err;
}

static int update_path_node_read(dv_rd *r, dv_mls_update_path_node *out) {
  rd_opaque(r, &out->encryption_key);
  RD_STRUCT_VEC(r, &out->encrypted_path_secret, dv_mls_hpke_ciphertext,
                dv_mls_hpke_ciphertext_read);
  return r->err;
}

int dv_mls_update_path_read(dv_rd *r, dv_mls_update_path *out) {
  dv_mls_leaf_node_read(r, &out->leaf_node);
  RD_STRUCT_VEC(r, &out->nodes, dv_mls_update_path_node, update_path_node_read);
  return r->err;
}

int dv_mls_parent_node_read(dv_rd *r, dv_mls_parent_node *out) {
  rd_opaque(r, &out->encryption_key);
  rd_opaque(r, &out->parent_hash);
  rd_int_vec(r, 4, &out->unmerged_leaves);
  return r->err;
}

int dv_mls_node_read(dv_rd *r, dv_mls_node *out) {
  memset(out, 0, sizeof(*out));
  if (dv_rd_u8(r, &out->type) != 0) {
    return r->err;
  }
  switch (out->type) {
    case DV_MLS_NODE_LEAF:
      return dv_mls_leaf_node_read(r, &out->leaf);
    case DV_MLS_NODE_PARENT:
      return dv_mls_parent_node_read(r, &out->parent);
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
}

int dv_mls_psk_id_read(dv_rd *r, dv_mls_psk_id *out) {
  memset(out, 0, sizeof(*out));
  if (dv_rd_u8(r, &out->psktype) != 0) {
    return r->err;
  }
  switch (out->psktype) {
    case DV_MLS_PSK_EXTERNAL:
      rd_opaque(r, &out->psk_id);
      break;
    case DV_MLS_PSK_RESUMPTION:
      dv_rd_u8(r, &out->usage);
      rd_opaque(r, &out->psk_group_id);
      dv_rd_u64(r, &out->psk_epoch);
      break;
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  rd_opaque(r, &out->psk_nonce);
  return r->err;
}

int dv_mls_proposal_read(dv_rd *r, dv_mls_proposal *out) {
  memset(out, 0, sizeof(*out));
  if (dv_rd_u16(r, &out->type) != 0) {
    return r->err;
  }
  switch (out->type) {
    case DV_MLS_PROP_ADD:
      return dv_mls_key_package_read(r, &out->add);
    case DV_MLS_PROP_UPDATE:
      return dv_mls_leaf_node_read(r, &out->update);
    case DV_MLS_PROP_REMOVE:
      return dv_rd_u32(r, &out->removed);
    case DV_MLS_PROP_PSK:
      return dv_mls_psk_id_read(r, &out->psk);
    case DV_MLS_PROP_REINIT:
      rd_opaque(r, &out->reinit_group_id);
      dv_rd_u16(r, &out->reinit_version);
      dv_rd_u16(r, &out->reinit_cipher_suite);
      return dv_mls_extensions_read(r, &out->extensions);
    case DV_MLS_PROP_EXTERNAL_INIT:
      return rd_opaque(r, &out->kem_output);
    case DV_MLS_PROP_GCE:
      return dv_mls_extensions_read(r, &out->extensions);
    default:
      /* Proposal bodies carry no length, so unknown types cannot be skipped. */
      return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
  }
}

int dv_mls_proposal_or_ref_read(dv_rd *r, dv_mls_proposal_or_ref *out) {
  if (dv_rd_u8(r, &out->type) != 0) {
    return r->err;
  }
  switch (out->type) {
    case DV_MLS_POR_PROPOSAL:
      memset(&out->reference, 0, sizeof(out->reference));
      return dv_mls_proposal_read(r, &out->proposal);
    case DV_MLS_POR_REFERENCE:
      memset(&out->proposal, 0, sizeof(out->proposal));
      return rd_opaque(r, &out->reference);
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
}

int dv_mls_commit_read(dv_rd *r, dv_mls_commit *out) {
  memset(out, 0, sizeof(*out));
  RD_STRUCT_VEC(r, &out->proposals, dv_mls_proposal_or_ref,
                dv_mls_proposal_or_ref_read);
  if (rd_present(r, &out->has_path) != 0) {
    return r->err;
  }
  if (out->has_path) {
    dv_mls_update_path_read(r, &out->path);
  }
  return r->err;
}

static int sender_read(dv_rd *r, dv_mls_sender *out) {
  out->index = 0;
  if (dv_rd_u8(r, &out->type) != 0) {
    return r->err;
  }
  switch (out->type) {
    case DV_MLS_SENDER_MEMBER:
    case DV_MLS_SENDER_EXTERNAL:
      return dv_rd_u32(r, &out->index);
    case DV_MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case DV_MLS_SENDER_NEW_MEMBER_COMMIT:
      return 0;
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
}

int dv_mls_framed_content_read(dv_rd *r, dv_mls_framed_content *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  rd_opaque(r, &out->group_id);
  dv_rd_u64(r, &out->epoch);
  sender_read(r, &out->sender);
  rd_opaque(r, &out->authenticated_data);
  if (dv_rd_u8(r, &out->content_type) != 0) {
    return r->err;
  }
  switch (out->content_type) {
    case DV_MLS_CONTENT_APPLICATION:
      rd_opaque(r, &out->application_data);
      break;
    case DV_MLS_CONTENT_PROPOSAL:
      dv_mls_proposal_read(r, &out->proposal);
      break;
    case DV_MLS_CONTENT_COMMIT:
      dv_mls_commit_read(r, &out->commit);
      break;
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_auth_data_read(dv_rd *r, uint8_t content_type,
                          dv_mls_auth_data *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  rd_opaque(r, &out->signature);
  if (content_type == DV_MLS_CONTENT_COMMIT) {
    rd_opaque(r, &out->confirmation_tag);
  }
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_public_message_read(dv_rd *r, dv_mls_public_message *out) {
  memset(&out->membership_tag, 0, sizeof(out->membership_tag));
  if (dv_mls_framed_content_read(r, &out->content) != 0) {
    return r->err;
  }
  dv_mls_auth_data_read(r, out->content.content_type, &out->auth);
  if (out->content.sender.type == DV_MLS_SENDER_MEMBER) {
    rd_opaque(r, &out->membership_tag);
  }
  return r->err;
}

int dv_mls_authenticated_content_read(dv_rd *r,
                                      dv_mls_authenticated_content *out) {
  size_t start = rd_pos(r);
  if (dv_rd_u16(r, &out->wire_format) != 0) {
    return r->err;
  }
  if (dv_mls_framed_content_read(r, &out->content) != 0) {
    return r->err;
  }
  dv_mls_auth_data_read(r, out->content.content_type, &out->auth);
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_group_context_read(dv_rd *r, dv_mls_group_context *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  dv_rd_u16(r, &out->version);
  dv_rd_u16(r, &out->cipher_suite);
  if (r->err) {
    return r->err;
  }
  if (out->version != DV_MLS_VERSION_10) {
    return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
  }
  rd_opaque(r, &out->group_id);
  dv_rd_u64(r, &out->epoch);
  rd_opaque(r, &out->tree_hash);
  rd_opaque(r, &out->confirmed_transcript_hash);
  dv_mls_extensions_read(r, &out->extensions);
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_group_info_read(dv_rd *r, dv_mls_group_info *out) {
  size_t start = rd_pos(r);
  memset(out, 0, sizeof(*out));
  dv_mls_group_context_read(r, &out->group_context);
  dv_mls_extensions_read(r, &out->extensions);
  rd_opaque(r, &out->confirmation_tag);
  dv_rd_u32(r, &out->signer);
  out->tbs_len = r->err ? 0 : r->pos - start;
  rd_opaque(r, &out->signature);
  set_raw(r, start, &out->raw);
  return r->err;
}

int dv_mls_group_secrets_read(dv_rd *r, dv_mls_group_secrets *out) {
  memset(out, 0, sizeof(*out));
  rd_opaque(r, &out->joiner_secret);
  if (rd_present(r, &out->has_path_secret) != 0) {
    return r->err;
  }
  if (out->has_path_secret) {
    rd_opaque(r, &out->path_secret);
  }
  RD_STRUCT_VEC(r, &out->psks, dv_mls_psk_id, dv_mls_psk_id_read);
  return r->err;
}

int dv_mls_encrypted_group_secrets_read(dv_rd *r,
                                        dv_mls_encrypted_group_secrets *out) {
  rd_opaque(r, &out->new_member);
  dv_mls_hpke_ciphertext_read(r, &out->encrypted_group_secrets);
  return r->err;
}

int dv_mls_welcome_read(dv_rd *r, dv_mls_welcome *out) {
  memset(out, 0, sizeof(*out));
  dv_rd_u16(r, &out->cipher_suite);
  RD_STRUCT_VEC(r, &out->secrets, dv_mls_encrypted_group_secrets,
                dv_mls_encrypted_group_secrets_read);
  rd_opaque(r, &out->encrypted_group_info);
  return r->err;
}

int dv_mls_external_sender_read(dv_rd *r, dv_mls_external_sender *out) {
  rd_opaque(r, &out->signature_key);
  dv_mls_credential_read(r, &out->credential);
  return r->err;
}

int dv_mls_message_read(dv_rd *r, dv_mls_message *out) {
  memset(out, 0, sizeof(*out));
  dv_rd_u16(r, &out->version);
  dv_rd_u16(r, &out->wire_format);
  if (r->err) {
    return r->err;
  }
  if (out->version != DV_MLS_VERSION_10) {
    return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
  }
  switch (out->wire_format) {
    case DV_MLS_WF_PUBLIC: {
      size_t start = rd_pos(r) - 2;
      if (dv_mls_public_message_read(r, &out->pub) == 0) {
        out->authenticated_content.p = r->p + start;
        out->authenticated_content.len =
            (size_t)(out->pub.auth.raw.p + out->pub.auth.raw.len -
                     (r->p + start));
      }
      return r->err;
    }
    case DV_MLS_WF_WELCOME:
      return dv_mls_welcome_read(r, &out->welcome);
    case DV_MLS_WF_GROUP_INFO:
      return dv_mls_group_info_read(r, &out->group_info);
    case DV_MLS_WF_KEY_PACKAGE:
      return dv_mls_key_package_read(r, &out->key_package);
    case DV_MLS_WF_PRIVATE:
      /* DAVE never uses PrivateMessage. */
      return dv_rd_fail(r, DVOICE_ERR_UNSUPPORTED);
    default:
      return dv_rd_fail(r, DVOICE_ERR_MALFORMED);
  }
}

/* ---- whole-buffer decoders ---------------------------------------------- */

static int check_suite(int rc, uint16_t suite) {
  if (rc == 0 && suite != DV_MLS_SUITE_P256) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  return rc;
}

int dv_mls_key_package_decode(const uint8_t *p, size_t len,
                              dv_mls_key_package *out) {
  dv_rd r;
  dv_rd_init(&r, p, len);
  dv_mls_key_package_read(&r, out);
  return check_suite(dv_rd_finish(&r), out->cipher_suite);
}

int dv_mls_message_decode(const uint8_t *p, size_t len, dv_mls_message *out) {
  dv_rd r;
  int rc;
  uint16_t suite = DV_MLS_SUITE_P256;
  dv_rd_init(&r, p, len);
  dv_mls_message_read(&r, out);
  rc = dv_rd_finish(&r);
  if (rc != 0) {
    return rc;
  }
  switch (out->wire_format) {
    case DV_MLS_WF_WELCOME:
      suite = out->welcome.cipher_suite;
      break;
    case DV_MLS_WF_GROUP_INFO:
      suite = out->group_info.group_context.cipher_suite;
      break;
    case DV_MLS_WF_KEY_PACKAGE:
      suite = out->key_package.cipher_suite;
      break;
    default:
      break;
  }
  return check_suite(0, suite);
}

int dv_mls_welcome_decode(const uint8_t *p, size_t len, dv_mls_welcome *out) {
  dv_rd r;
  dv_rd_init(&r, p, len);
  dv_mls_welcome_read(&r, out);
  return check_suite(dv_rd_finish(&r), out->cipher_suite);
}

int dv_mls_group_info_decode(const uint8_t *p, size_t len,
                             dv_mls_group_info *out) {
  dv_rd r;
  dv_rd_init(&r, p, len);
  dv_mls_group_info_read(&r, out);
  return check_suite(dv_rd_finish(&r), out->group_context.cipher_suite);
}

int dv_mls_group_secrets_decode(const uint8_t *p, size_t len,
                                dv_mls_group_secrets *out) {
  dv_rd r;
  dv_rd_init(&r, p, len);
  dv_mls_group_secrets_read(&r, out);
  return dv_rd_finish(&r);
}

int dv_mls_external_sender_decode(const uint8_t *p, size_t len,
                                  dv_mls_external_sender *out) {
  dv_rd r;
  dv_rd_init(&r, p, len);
  dv_mls_external_sender_read(&r, out);
  return dv_rd_finish(&r);
}

/* ---- writers ------------------------------------------------------------ */

static void wr_fail(dv_wr *w, int err) {
  if (w->err == 0) {
    w->err = err;
  }
}

void dv_mls_credential_write(dv_wr *w, const dv_mls_credential *x) {
  dv_wr_u16(w, x->type);
  switch (x->type) {
    case DV_MLS_CRED_BASIC:
      wr_bytes_v(w, &x->identity);
      break;
    case DV_MLS_CRED_X509:
      WR_STRUCT_VEC(w, &x->certs, dv_mls_bytes, dv_mls_next_opaque, wr_bytes_v);
      break;
    default:
      wr_fail(w, DVOICE_ERR_UNSUPPORTED);
      break;
  }
}

void dv_mls_capabilities_write(dv_wr *w, const dv_mls_capabilities *x) {
  wr_int_vec(w, &x->versions, 2);
  wr_int_vec(w, &x->cipher_suites, 2);
  wr_int_vec(w, &x->extensions, 2);
  wr_int_vec(w, &x->proposals, 2);
  wr_int_vec(w, &x->credentials, 2);
}

void dv_mls_extension_write(dv_wr *w, const dv_mls_extension *x) {
  dv_wr_u16(w, x->type);
  wr_bytes_v(w, &x->data);
}

void dv_mls_extensions_write(dv_wr *w, const dv_mls_vec *exts) {
  WR_STRUCT_VEC(w, exts, dv_mls_extension, dv_mls_next_extension,
                dv_mls_extension_write);
}

/* The LeafNode fields before the signature. */
static void leaf_node_body_write(dv_wr *w, const dv_mls_leaf_node *x) {
  wr_bytes_v(w, &x->encryption_key);
  wr_bytes_v(w, &x->signature_key);
  dv_mls_credential_write(w, &x->credential);
  dv_mls_capabilities_write(w, &x->capabilities);
  dv_wr_u8(w, x->source);
  switch (x->source) {
    case DV_MLS_LEAF_SRC_KEY_PACKAGE:
      dv_wr_u64(w, x->not_before);
      dv_wr_u64(w, x->not_after);
      break;
    case DV_MLS_LEAF_SRC_UPDATE:
      break;
    case DV_MLS_LEAF_SRC_COMMIT:
      wr_bytes_v(w, &x->parent_hash);
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
  dv_mls_extensions_write(w, &x->extensions);
}

void dv_mls_leaf_node_write(dv_wr *w, const dv_mls_leaf_node *x) {
  leaf_node_body_write(w, x);
  wr_bytes_v(w, &x->signature);
}

void dv_mls_leaf_node_tbs_write(dv_wr *w, const dv_mls_leaf_node *x,
                                const dv_mls_bytes *group_id,
                                uint32_t leaf_index) {
  leaf_node_body_write(w, x);
  if (x->source == DV_MLS_LEAF_SRC_UPDATE ||
      x->source == DV_MLS_LEAF_SRC_COMMIT) {
    if (group_id == NULL) {
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      return;
    }
    wr_bytes_v(w, group_id);
    dv_wr_u32(w, leaf_index);
  }
}

void dv_mls_key_package_tbs_write(dv_wr *w, const dv_mls_key_package *x) {
  dv_wr_u16(w, x->version);
  dv_wr_u16(w, x->cipher_suite);
  wr_bytes_v(w, &x->init_key);
  dv_mls_leaf_node_write(w, &x->leaf_node);
  dv_mls_extensions_write(w, &x->extensions);
}

void dv_mls_key_package_write(dv_wr *w, const dv_mls_key_package *x) {
  dv_mls_key_package_tbs_write(w, x);
  wr_bytes_v(w, &x->signature);
}

void dv_mls_hpke_ciphertext_write(dv_wr *w, const dv_mls_hpke_ciphertext *x) {
  wr_bytes_v(w, &x->kem_output);
  wr_bytes_v(w, &x->ciphertext);
}

void dv_mls_update_path_node_write(dv_wr *w, const dv_mls_update_path_node *x) {
  wr_bytes_v(w, &x->encryption_key);
  WR_STRUCT_VEC(w, &x->encrypted_path_secret, dv_mls_hpke_ciphertext,
                dv_mls_next_hpke_ciphertext, dv_mls_hpke_ciphertext_write);
}

void dv_mls_update_path_write(dv_wr *w, const dv_mls_update_path *x) {
  dv_mls_leaf_node_write(w, &x->leaf_node);
  WR_STRUCT_VEC(w, &x->nodes, dv_mls_update_path_node,
                dv_mls_next_update_path_node, dv_mls_update_path_node_write);
}

void dv_mls_parent_node_write(dv_wr *w, const dv_mls_parent_node *x) {
  wr_bytes_v(w, &x->encryption_key);
  wr_bytes_v(w, &x->parent_hash);
  wr_int_vec(w, &x->unmerged_leaves, 4);
}

void dv_mls_node_write(dv_wr *w, const dv_mls_node *x) {
  dv_wr_u8(w, x->type);
  switch (x->type) {
    case DV_MLS_NODE_LEAF:
      dv_mls_leaf_node_write(w, &x->leaf);
      break;
    case DV_MLS_NODE_PARENT:
      dv_mls_parent_node_write(w, &x->parent);
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
}

void dv_mls_psk_id_write(dv_wr *w, const dv_mls_psk_id *x) {
  dv_wr_u8(w, x->psktype);
  switch (x->psktype) {
    case DV_MLS_PSK_EXTERNAL:
      wr_bytes_v(w, &x->psk_id);
      break;
    case DV_MLS_PSK_RESUMPTION:
      dv_wr_u8(w, x->usage);
      wr_bytes_v(w, &x->psk_group_id);
      dv_wr_u64(w, x->psk_epoch);
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
  wr_bytes_v(w, &x->psk_nonce);
}

void dv_mls_proposal_write(dv_wr *w, const dv_mls_proposal *x) {
  dv_wr_u16(w, x->type);
  switch (x->type) {
    case DV_MLS_PROP_ADD:
      dv_mls_key_package_write(w, &x->add);
      break;
    case DV_MLS_PROP_UPDATE:
      dv_mls_leaf_node_write(w, &x->update);
      break;
    case DV_MLS_PROP_REMOVE:
      dv_wr_u32(w, x->removed);
      break;
    case DV_MLS_PROP_PSK:
      dv_mls_psk_id_write(w, &x->psk);
      break;
    case DV_MLS_PROP_REINIT:
      wr_bytes_v(w, &x->reinit_group_id);
      dv_wr_u16(w, x->reinit_version);
      dv_wr_u16(w, x->reinit_cipher_suite);
      dv_mls_extensions_write(w, &x->extensions);
      break;
    case DV_MLS_PROP_EXTERNAL_INIT:
      wr_bytes_v(w, &x->kem_output);
      break;
    case DV_MLS_PROP_GCE:
      dv_mls_extensions_write(w, &x->extensions);
      break;
    default:
      wr_fail(w, DVOICE_ERR_UNSUPPORTED);
      break;
  }
}

void dv_mls_proposal_or_ref_write(dv_wr *w, const dv_mls_proposal_or_ref *x) {
  dv_wr_u8(w, x->type);
  switch (x->type) {
    case DV_MLS_POR_PROPOSAL:
      dv_mls_proposal_write(w, &x->proposal);
      break;
    case DV_MLS_POR_REFERENCE:
      wr_bytes_v(w, &x->reference);
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
}

void dv_mls_commit_write(dv_wr *w, const dv_mls_commit *x) {
  WR_STRUCT_VEC(w, &x->proposals, dv_mls_proposal_or_ref,
                dv_mls_next_proposal_or_ref, dv_mls_proposal_or_ref_write);
  dv_wr_u8(w, x->has_path ? 1 : 0);
  if (x->has_path) {
    dv_mls_update_path_write(w, &x->path);
  }
}

void dv_mls_sender_write(dv_wr *w, const dv_mls_sender *x) {
  dv_wr_u8(w, x->type);
  switch (x->type) {
    case DV_MLS_SENDER_MEMBER:
    case DV_MLS_SENDER_EXTERNAL:
      dv_wr_u32(w, x->index);
      break;
    case DV_MLS_SENDER_NEW_MEMBER_PROPOSAL:
    case DV_MLS_SENDER_NEW_MEMBER_COMMIT:
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
}

void dv_mls_framed_content_write(dv_wr *w, const dv_mls_framed_content *x) {
  wr_bytes_v(w, &x->group_id);
  dv_wr_u64(w, x->epoch);
  dv_mls_sender_write(w, &x->sender);
  wr_bytes_v(w, &x->authenticated_data);
  dv_wr_u8(w, x->content_type);
  switch (x->content_type) {
    case DV_MLS_CONTENT_APPLICATION:
      wr_bytes_v(w, &x->application_data);
      break;
    case DV_MLS_CONTENT_PROPOSAL:
      dv_mls_proposal_write(w, &x->proposal);
      break;
    case DV_MLS_CONTENT_COMMIT:
      dv_mls_commit_write(w, &x->commit);
      break;
    default:
      wr_fail(w, DVOICE_ERR_INVALID_ARGUMENT);
      break;
  }
}

void dv_mls_auth_data_write(dv_wr *w, uint8_t content_type,
                            const dv_mls_auth_data *x) {
  wr_bytes_v(w, &x->signature);
  if (content_type == DV_MLS_CONTENT_COMMIT) {
    wr_bytes_v(w, &x->confirmation_tag);
  }
}

void dv_mls_public_message_write(dv_wr *w, const dv_mls_public_message *x) {
  dv_mls_framed_content_write(w, &x->content);
  dv_mls_auth_data_write(w, x->content.content_type, &x->auth);
  if (x->content.sender.type == DV_MLS_SENDER_MEMBER) {
    wr_bytes_v(w, &x->membership_tag);
  }
}

void dv_mls_authenticated_content_write(dv_wr *w,
                                        const dv_mls_authenticated_content *x) {
  dv_wr_u16(w, x->wire_format);
  dv_mls_framed_content_write(w, &x->content);
  dv_mls_auth_data_write(w, x->content.content_type, &x->auth);
}

void dv_mls_group_context_write(dv_wr *w, const dv_mls_group_context *x) {
  dv_wr_u16(w, x->version);
  dv_wr_u16(w, x->cipher_suite);
  wr_bytes_v(w, &x->group_id);
  dv_wr_u64(w, x->epoch);
  wr_bytes_v(w, &x->tree_hash);
  wr_bytes_v(w, &x->confirmed_transcript_hash);
  dv_mls_extensions_write(w, &x->extensions);
}

void dv_mls_group_info_tbs_write(dv_wr *w, const dv_mls_group_info *x) {
  dv_mls_group_context_write(w, &x->group_context);
  dv_mls_extensions_write(w, &x->extensions);
  wr_bytes_v(w, &x->confirmation_tag);
  dv_wr_u32(w, x->signer);
}

void dv_mls_group_info_write(dv_wr *w, const dv_mls_group_info *x) {
  dv_mls_group_info_tbs_write(w, x);
  wr_bytes_v(w, &x->signature);
}

void dv_mls_group_secrets_write(dv_wr *w, const dv_mls_group_secrets *x) {
  wr_bytes_v(w, &x->joiner_secret);
  dv_wr_u8(w, x->has_path_secret ? 1 : 0);
  if (x->has_path_secret) {
    wr_bytes_v(w, &x->path_secret);
  }
  WR_STRUCT_VEC(w, &x->psks, dv_mls_psk_id, dv_mls_next_psk_id,
                dv_mls_psk_id_write);
}

void dv_mls_encrypted_group_secrets_write(
    dv_wr *w, const dv_mls_encrypted_group_secrets *x) {
  wr_bytes_v(w, &x->new_member);
  dv_mls_hpke_ciphertext_write(w, &x->encrypted_group_secrets);
}

void dv_mls_welcome_write(dv_wr *w, const dv_mls_welcome *x) {
  dv_wr_u16(w, x->cipher_suite);
  WR_STRUCT_VEC(w, &x->secrets, dv_mls_encrypted_group_secrets,
                dv_mls_next_encrypted_group_secrets,
                dv_mls_encrypted_group_secrets_write);
  wr_bytes_v(w, &x->encrypted_group_info);
}

void dv_mls_external_sender_write(dv_wr *w, const dv_mls_external_sender *x) {
  wr_bytes_v(w, &x->signature_key);
  dv_mls_credential_write(w, &x->credential);
}

void dv_mls_message_write(dv_wr *w, const dv_mls_message *x) {
  dv_wr_u16(w, x->version);
  dv_wr_u16(w, x->wire_format);
  switch (x->wire_format) {
    case DV_MLS_WF_PUBLIC:
      dv_mls_public_message_write(w, &x->pub);
      break;
    case DV_MLS_WF_WELCOME:
      dv_mls_welcome_write(w, &x->welcome);
      break;
    case DV_MLS_WF_GROUP_INFO:
      dv_mls_group_info_write(w, &x->group_info);
      break;
    case DV_MLS_WF_KEY_PACKAGE:
      dv_mls_key_package_write(w, &x->key_package);
      break;
    default:
      wr_fail(w, DVOICE_ERR_UNSUPPORTED);
      break;
  }
}
