/* MLS group state and handshake messages for DAVE; see mls_group.h. */
#include "mls/mls_group.h"

#include <string.h>

#include <sodium.h>

#include "mls/mls_transcript.h"
#include "mls/mls_treemath.h"
#include "util/dv_env.h"
#include "util/dv_mem.h"
#include "util/dv_rw.h"

/* DAVE leaf capabilities (dave.md section 1.1): uint16 vector bodies. */
static const uint8_t CAP_VERSIONS[] = {0x00, 0x01};
static const uint8_t CAP_SUITES[] = {0x00, 0x02};
static const uint8_t CAP_CREDENTIALS[] = {0x00, 0x01};

static int bytes_eq(const dv_mls_bytes *a, const uint8_t *p, size_t len) {
  return a->len == len && (len == 0 || memcmp(a->p, p, len) == 0);
}

/* ---- leaves and key packages ---------------------------------------------
 */

int dv_mls_leaf_verify(const dvoice_mem *mem, const dv_mls_leaf_node *leaf,
                       const uint8_t *group_id, size_t group_id_len,
                       uint32_t leaf_index) {
  if (leaf == NULL || (group_id == NULL && group_id_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = dv_mls_check_pub(leaf->encryption_key.p, leaf->encryption_key.len);
  if (ret != 0) return ret;
  dv_buf b;
  dv_wr w;
  dv_mls_bytes gid = dv_mls_b(group_id, group_id_len);
  dv_buf_init(&b, mem);
  dv_wr_init(&w, &b);
  dv_mls_leaf_node_tbs_write(&w, leaf, &gid, leaf_index);
  ret = w.err;
  if (ret == 0)
    ret = dv_mls_verify_with_label(leaf->signature_key.p,
                                   leaf->signature_key.len, "LeafNodeTBS",
                                   b.data, b.len, leaf->signature.p,
                                   leaf->signature.len);
  dv_buf_free(&b);
  return ret;
}

int dv_mls_key_package_verify(const dvoice_mem *mem,
                              const dv_mls_key_package *kp) {
  if (kp == NULL) return DVOICE_ERR_INVALID_ARGUMENT;
  if (kp->version != DV_MLS_VERSION_10 ||
      kp->cipher_suite != DV_MLS_SUITE_P256)
    return DVOICE_ERR_UNSUPPORTED;
  if (kp->leaf_node.source != DV_MLS_LEAF_SRC_KEY_PACKAGE)
    return DVOICE_ERR_PROTO;
  int ret = dv_mls_check_pub(kp->init_key.p, kp->init_key.len);
  if (ret != 0) return ret;
  if (dv_mls_bytes_eq(&kp->init_key, &kp->leaf_node.encryption_key))
    return DVOICE_ERR_PROTO;
  ret = dv_mls_leaf_verify(mem, &kp->leaf_node, NULL, 0, 0);
  if (ret != 0) return ret;
  /* KeyPackageTBS: the decoded encoding up to the signature, else
   * re-encoded. */
  if (kp->raw.p != NULL && kp->tbs_len > 0 && kp->tbs_len <= kp->raw.len) {
    return dv_mls_verify_with_label(
        kp->leaf_node.signature_key.p, kp->leaf_node.signature_key.len,
        "KeyPackageTBS", kp->raw.p, kp->tbs_len, kp->signature.p,
        kp->signature.len);
  }
  dv_buf b;
  dv_wr w;
  dv_buf_init(&b, mem);
  dv_wr_init(&w, &b);
  dv_mls_key_package_tbs_write(&w, kp);
  ret = w.err;
  if (ret == 0)
    ret = dv_mls_verify_with_label(
        kp->leaf_node.signature_key.p, kp->leaf_node.signature_key.len,
        "KeyPackageTBS", b.data, b.len, kp->signature.p, kp->signature.len);
  dv_buf_free(&b);
  return ret;
}

/* Fills |ln| with DAVE's unsigned key_package-source leaf; |uid_be| is
 * caller storage for the identity. */
static void dave_leaf_fill(dv_mls_leaf_node *ln, uint64_t user_id,
                           uint8_t uid_be[8], const dv_mls_sig_key *sig,
                           const dv_mls_hpke_key *leaf_key) {
  memset(ln, 0, sizeof *ln);
  dv_put_u64(uid_be, user_id);
  ln->encryption_key = dv_mls_b(leaf_key->pub, DV_MLS_PUB_LEN);
  ln->signature_key = dv_mls_b(sig->pub, DV_MLS_PUB_LEN);
  ln->credential.type = DV_MLS_CRED_BASIC;
  ln->credential.identity = dv_mls_b(uid_be, 8);
  ln->capabilities.versions.p = CAP_VERSIONS;
  ln->capabilities.versions.len = sizeof CAP_VERSIONS;
  ln->capabilities.versions.count = 1;
  ln->capabilities.cipher_suites.p = CAP_SUITES;
  ln->capabilities.cipher_suites.len = sizeof CAP_SUITES;
  ln->capabilities.cipher_suites.count = 1;
  ln->capabilities.credentials.p = CAP_CREDENTIALS;
  ln->capabilities.credentials.len = sizeof CAP_CREDENTIALS;
  ln->capabilities.credentials.count = 1;
  ln->source = DV_MLS_LEAF_SRC_KEY_PACKAGE;
  ln->not_before = 0;
  ln->not_after = UINT64_MAX;
}

/* Signs |ln| (key_package source) into |sigbuf| and points ln->signature
 * at it. */
static int leaf_sign(const dvoice_env *env, dv_mls_leaf_node *ln,
                     const dv_mls_sig_key *sig, uint8_t sigbuf[DV_MLS_SIG_MAX],
                     const dv_mls_bytes *group_id, uint32_t leaf_index) {
  dv_buf b;
  dv_wr w;
  size_t sig_len = 0;
  dv_buf_init(&b, env->mem);
  dv_wr_init(&w, &b);
  dv_mls_leaf_node_tbs_write(&w, ln, group_id, leaf_index);
  int ret = w.err;
  if (ret == 0)
    ret = dv_mls_sign_with_label(env, sig->priv, "LeafNodeTBS", b.data, b.len,
                                 sigbuf, &sig_len);
  dv_buf_free(&b);
  if (ret == 0) ln->signature = dv_mls_b(sigbuf, sig_len);
  return ret;
}

static int check_keys(const dvoice_env *env, const dv_mls_sig_key *sig,
                      const dv_mls_hpke_key *leaf_key) {
  if (dv_env_check(env) != 0 || sig == NULL || leaf_key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return 0;
}

int dv_mls_dave_leaf_node(const dvoice_env *env, uint64_t user_id,
                          const dv_mls_sig_key *sig,
                          const dv_mls_hpke_key *leaf_key, dv_buf *out) {
  int ret = check_keys(env, sig, leaf_key);
  if (ret != 0 || out == NULL) return ret ? ret : DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_leaf_node ln;
  uint8_t uid[8], sigbuf[DV_MLS_SIG_MAX];
  dave_leaf_fill(&ln, user_id, uid, sig, leaf_key);
  ret = leaf_sign(env, &ln, sig, sigbuf, NULL, 0);
  if (ret != 0) return ret;
  dv_wr w;
  dv_wr_init(&w, out);
  dv_mls_leaf_node_write(&w, &ln);
  return w.err;
}

int dv_mls_dave_key_package(const dvoice_env *env, uint64_t user_id,
                            const dv_mls_sig_key *sig,
                            const dv_mls_hpke_key *leaf_key,
                            dv_mls_hpke_key *init_key, dv_buf *out) {
  int ret = check_keys(env, sig, leaf_key);
  if (ret != 0) return ret;
  if (init_key == NULL || out == NULL) return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_key_package kp;
  uint8_t uid[8], leaf_sig[DV_MLS_SIG_MAX], kp_sig[DV_MLS_SIG_MAX];
  size_t kp_sig_len = 0;
  memset(&kp, 0, sizeof kp);
  ret = dv_mls_hpke_keygen(env, init_key);
  if (ret != 0) return ret;
  dave_leaf_fill(&kp.leaf_node, user_id, uid, sig, leaf_key);
  ret = leaf_sign(env, &kp.leaf_node, sig, leaf_sig, NULL, 0);
  kp.version = DV_MLS_VERSION_10;
  kp.cipher_suite = DV_MLS_SUITE_P256;
  kp.init_key = dv_mls_b(init_key->pub, DV_MLS_PUB_LEN);
  size_t start = out->len;
  dv_wr w;
  dv_wr_init(&w, out);
  if (ret == 0) {
    dv_mls_key_package_tbs_write(&w, &kp);
    ret = w.err;
  }
  if (ret == 0)
    ret = dv_mls_sign_with_label(env, sig->priv, "KeyPackageTBS",
                                 out->data + start, out->len - start, kp_sig,
                                 &kp_sig_len);
  if (ret == 0) {
    dv_wr_opaque(&w, kp_sig, kp_sig_len);
    ret = w.err;
  }
  if (ret != 0) {
    out->len = start;
    dv_mls_hpke_key_wipe(init_key);
  }
  return ret;
}

int dv_mls_leaf_user_id(const dv_mls_leaf_node *leaf, uint64_t *user_id) {
  if (leaf == NULL || user_id == NULL) return DVOICE_ERR_INVALID_ARGUMENT;
  if (leaf->credential.type != DV_MLS_CRED_BASIC ||
      leaf->credential.identity.len != 8)
    return DVOICE_ERR_PROTO;
  *user_id = dv_get_u64(leaf->credential.identity.p);
  return 0;
}

/* ---- PublicMessage framing -----------------------------------------------
 */

static int sender_has_context(uint8_t sender_type) {
  return sender_type == DV_MLS_SENDER_MEMBER ||
         sender_type == DV_MLS_SENDER_NEW_MEMBER_COMMIT;
}

void dv_mls_framed_content_tbs_write(dv_wr *w, uint16_t wire_format,
                                     const dv_mls_bytes *fc,
                                     uint8_t sender_type,
                                     const dv_mls_bytes *gc) {
  dv_wr_u16(w, DV_MLS_VERSION_10);
  dv_wr_u16(w, wire_format);
  dv_wr_bytes(w, fc->p, fc->len);
  if (sender_has_context(sender_type)) {
    if (gc == NULL || gc->len == 0) {
      if (w->err == 0) w->err = DVOICE_ERR_INVALID_ARGUMENT;
      return;
    }
    dv_wr_bytes(w, gc->p, gc->len);
  }
}

int dv_mls_public_message_verify(const dvoice_mem *mem,
                                 const dv_mls_public_message *pm,
                                 const uint8_t *sig_pub, size_t sig_pub_len,
                                 const dv_mls_bytes *gc,
                                 const uint8_t *membership_key) {
  if (pm == NULL || pm->content.raw.p == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t st = pm->content.sender.type;
  if (st != DV_MLS_SENDER_MEMBER && st != DV_MLS_SENDER_EXTERNAL)
    return DVOICE_ERR_PROTO;
  if (st == DV_MLS_SENDER_MEMBER &&
      (membership_key == NULL || pm->membership_tag.p == NULL))
    return membership_key == NULL ? DVOICE_ERR_INVALID_ARGUMENT
                                  : DVOICE_ERR_PROTO;
  dv_buf b;
  dv_wr w;
  dv_buf_init(&b, mem);
  dv_wr_init(&w, &b);
  dv_mls_framed_content_tbs_write(&w, DV_MLS_WF_PUBLIC, &pm->content.raw, st,
                                  gc);
  size_t tbs_len = b.len;
  int ret = w.err;
  /* The membership tag (cheap) is checked before the signature. */
  if (ret == 0 && st == DV_MLS_SENDER_MEMBER) {
    dv_mls_auth_data_write(&w, pm->content.content_type, &pm->auth);
    ret = w.err;
    if (ret == 0) {
      dv_mls_iov tbm = {b.data, b.len};
      ret = dv_mls_membership_tag_verify(membership_key, &tbm, 1,
                                         pm->membership_tag.p,
                                         pm->membership_tag.len);
    }
  }
  if (ret == 0)
    ret = dv_mls_verify_with_label(sig_pub, sig_pub_len, "FramedContentTBS",
                                   b.data, tbs_len, pm->auth.signature.p,
                                   pm->auth.signature.len);
  dv_buf_free(&b);
  return ret;
}

int dv_mls_framed_content_sign(const dvoice_env *env,
                               const uint8_t priv[DV_MLS_PRIV_LEN],
                               const dv_mls_bytes *fc, uint8_t sender_type,
                               const dv_mls_bytes *gc,
                               uint8_t sig[DV_MLS_SIG_MAX], size_t *sig_len) {
  if (dv_env_check(env) != 0 || fc == NULL || sig_len == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_buf b;
  dv_wr w;
  dv_buf_init(&b, env->mem);
  dv_wr_init(&w, &b);
  dv_mls_framed_content_tbs_write(&w, DV_MLS_WF_PUBLIC, fc, sender_type, gc);
  int ret = w.err;
  if (ret == 0)
    ret = dv_mls_sign_with_label(env, priv, "FramedContentTBS", b.data, b.len,
                                 sig, sig_len);
  dv_buf_free(&b);
  return ret;
}

int dv_mls_public_message_seal(const dvoice_mem *mem, const dv_mls_bytes *fc,
                                const uint8_t *sig, size_t sig_len,
                                const uint8_t *confirmation_tag,
                                const uint8_t *membership_key,
                                const dv_mls_bytes *gc, dv_buf *out) {
  if (fc == NULL || fc->p == NULL || sig == NULL || out == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_framed_content c;
  dv_rd r;
  dv_rd_init(&r, fc->p, fc->len);
  dv_mls_framed_content_read(&r, &c);
  int ret = dv_rd_finish(&r);
  if (ret != 0) return DVOICE_ERR_INVALID_ARGUMENT;
  int is_commit = c.content_type == DV_MLS_CONTENT_COMMIT;
  int is_member = c.sender.type == DV_MLS_SENDER_MEMBER;
  if (is_commit != (confirmation_tag != NULL) ||
      is_member != (membership_key != NULL))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_auth_data auth;
  auth.signature = dv_mls_b(sig, sig_len);
  auth.confirmation_tag =
      dv_mls_b(confirmation_tag, is_commit ? DV_MLS_HASH_LEN : 0);
  uint8_t tag[DV_MLS_HASH_LEN];
  if (is_member) {
    dv_buf b;
    dv_wr w;
    dv_buf_init(&b, mem);
    dv_wr_init(&w, &b);
    dv_mls_framed_content_tbs_write(&w, DV_MLS_WF_PUBLIC, fc, c.sender.type,
                                    gc);
    dv_mls_auth_data_write(&w, c.content_type, &auth);
    ret = w.err;
    if (ret == 0) {
      dv_mls_iov tbm = {b.data, b.len};
      ret = dv_mls_membership_tag(membership_key, &tbm, 1, tag);
    }
    dv_buf_free(&b);
    if (ret != 0) return ret;
  }
  size_t start = out->len;
  dv_wr w;
  dv_wr_init(&w, out);
  dv_wr_u16(&w, DV_MLS_VERSION_10);
  dv_wr_u16(&w, DV_MLS_WF_PUBLIC);
  dv_wr_bytes(&w, fc->p, fc->len);
  dv_mls_auth_data_write(&w, c.content_type, &auth);
  if (is_member) dv_wr_opaque(&w, tag, sizeof tag);
  if (w.err != 0) out->len = start;
  return w.err;
}

int dv_mls_proposal_ref(const dv_mls_public_message *pm,
                        uint8_t out[DV_MLS_HASH_LEN]) {
  if (pm == NULL || pm->content.raw.p == NULL || out == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (pm->content.content_type != DV_MLS_CONTENT_PROPOSAL)
    return DVOICE_ERR_PROTO;
  /* AuthenticatedContent = wire_format || FramedContent || signature<V>
   * (proposals carry no confirmation tag). */
  uint8_t wf[2] = {0x00, DV_MLS_WF_PUBLIC};
  uint8_t sv[4];
  size_t svn = dv_mls_varint_put(sv, pm->auth.signature.len);
  if (svn == 0) return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_iov iov[4] = {{wf, 2},
                       {pm->content.raw.p, pm->content.raw.len},
                       {sv, svn},
                       {pm->auth.signature.p, pm->auth.signature.len}};
  return dv_mls_ref_hash_v("MLS 1.0 Proposal Reference", iov, 4, out);
}

/* ---- group state ---------------------------------------------------------
 */

void dv_mls_group_init(dv_mls_group *g, const dvoice_env *env) {
  memset(g, 0, sizeof *g);
  if (env != NULL) g->env = *env;
  dv_buf_init(&g->group_id, g->env.mem);
  dv_buf_init(&g->extensions, g->env.mem);
  dv_buf_init(&g->group_context, g->env.mem);
  dv_mls_tree_init(&g->tree, g->env.mem);
}

void dv_mls_group_free(dv_mls_group *g) {
  if (g == NULL) return;
  dvoice_env env = g->env;
  dv_buf_free(&g->group_id);
  dv_buf_free(&g->extensions);
  dv_buf_free(&g->group_context);
  dv_mls_tree_free(&g->tree);
  sodium_memzero(g, sizeof *g);
  dv_mls_group_init(g, &env);
}

static int group_is_empty(const dv_mls_group *g) {
  return g->tree.n_leaves == 0 && g->group_id.len == 0;
}

/* Counts the extensions in an extensions<V> body; negative if malformed. */
static int count_extensions(const uint8_t *p, size_t len, uint32_t *count) {
  dv_rd r;
  uint32_t n = 0;
  dv_rd_init(&r, p, len);
  while (dv_rd_left(&r) > 0) {
    uint16_t type;
    const uint8_t *d;
    size_t dl;
    dv_rd_u16(&r, &type);
    if (dv_rd_opaque(&r, &d, &dl) != 0) break;
    n++;
  }
  *count = n;
  return dv_rd_finish(&r);
}

/* Re-serializes the GroupContext of the current epoch into g->group_context
 * (tree_hash and confirmed hash must be current). */
static int group_write_context(dv_mls_group *g) {
  dv_mls_group_context gc;
  uint32_t count = 0;
  int ret = count_extensions(g->extensions.data, g->extensions.len, &count);
  if (ret != 0) return ret;
  memset(&gc, 0, sizeof gc);
  gc.version = DV_MLS_VERSION_10;
  gc.cipher_suite = DV_MLS_SUITE_P256;
  gc.group_id = dv_mls_b(g->group_id.data, g->group_id.len);
  gc.epoch = g->epoch;
  gc.tree_hash = dv_mls_b(g->tree_hash, DV_MLS_HASH_LEN);
  gc.confirmed_transcript_hash =
      dv_mls_b(g->confirmed_th, g->confirmed_th_len);
  gc.extensions.p = g->extensions.data;
  gc.extensions.len = g->extensions.len;
  gc.extensions.count = count;
  dv_buf_reset(&g->group_context);
  dv_wr w;
  dv_wr_init(&w, &g->group_context);
  dv_mls_group_context_write(&w, &gc);
  return w.err;
}

/* interim = H(confirmed || confirmation_tag<V>), confirmed may be empty. */
static int interim_hash(const uint8_t *confirmed, size_t confirmed_len,
                        const uint8_t *tag, size_t tag_len,
                        uint8_t out[DV_MLS_HASH_LEN]) {
  uint8_t tv[4];
  size_t tvn = dv_mls_varint_put(tv, tag_len);
  dv_mls_iov iov[3] = {{confirmed, confirmed_len}, {tv, tvn}, {tag, tag_len}};
  return dv_mls_hash_v(iov, 3, out);
}

int dv_mls_group_create(dv_mls_group *g, const uint8_t *group_id,
                        size_t group_id_len, const dv_mls_bytes *leaf,
                        const dv_mls_sig_key *sig,
                        const dv_mls_hpke_key *leaf_key,
                        const dv_mls_bytes *extensions) {
  if (g == NULL || !group_is_empty(g) || dv_env_check(&g->env) != 0 ||
      group_id == NULL || group_id_len == 0 || leaf == NULL ||
      sig == NULL || leaf_key == NULL || extensions == NULL ||
      (extensions->p == NULL && extensions->len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_leaf_node ln;
  dv_rd r;
  dv_rd_init(&r, leaf->p, leaf->len);
  dv_mls_leaf_node_read(&r, &ln);
  int ret = dv_rd_finish(&r);
  if (ret != 0) return DVOICE_ERR_INVALID_ARGUMENT;
  if (!bytes_eq(&ln.encryption_key, leaf_key->pub, DV_MLS_PUB_LEN) ||
      !bytes_eq(&ln.signature_key, sig->pub, DV_MLS_PUB_LEN))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint32_t idx = 0;
  uint8_t init_secret[DV_MLS_HASH_LEN];
  static const uint8_t zero[DV_MLS_HASH_LEN];
  uint8_t tag[DV_MLS_HASH_LEN];
  ret = dv_buf_append(&g->group_id, group_id, group_id_len);
  if (ret == 0) ret = dv_buf_append(&g->extensions, extensions->p,
                                    extensions->len);
  if (ret == 0) ret = dv_mls_tree_add_leaf(&g->tree, &ln, &idx);
  if (ret == 0) ret = dv_mls_tree_root_hash(&g->tree, g->tree_hash);
  g->epoch = 0;
  g->own_leaf = idx;
  g->sig = *sig;
  g->leaf_key = *leaf_key;
  g->confirmed_th_len = 0;
  if (ret == 0) ret = group_write_context(g);
  if (ret == 0) {
    dv_rand(&g->env, init_secret, sizeof init_secret);
    ret = dv_mls_keysched_from_init(init_secret, zero, NULL,
                                    g->group_context.data,
                                    g->group_context.len, &g->secrets);
  }
  /* Epoch 0 has no commit; the interim hash uses the tag over the empty
   * confirmed hash (as mlspp does), which only the creator ever needs. */
  if (ret == 0)
    ret = dv_mls_confirmation_tag(g->secrets.confirmation_key, NULL, 0, tag);
  if (ret == 0)
    ret = interim_hash(NULL, 0, tag, sizeof tag, g->interim_th);
  sodium_memzero(init_secret, sizeof init_secret);
  if (ret != 0) dv_mls_group_free(g);
  return ret;
}

int dv_mls_welcome_open(const dvoice_env *env, const dv_mls_welcome *welcome,
                        const uint8_t kp_ref[DV_MLS_HASH_LEN],
                        const dv_mls_hpke_key *init_key, dv_buf *group_secrets,
                        dv_buf *group_info) {
  if (dv_env_check(env) != 0 || welcome == NULL || kp_ref == NULL ||
      init_key == NULL || group_secrets == NULL || group_info == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (welcome->cipher_suite != DV_MLS_SUITE_P256)
    return DVOICE_ERR_UNSUPPORTED;
  dv_mls_iter it;
  dv_mls_encrypted_group_secrets egs;
  int found = 0, rc;
  dv_mls_iter_init(&it, &welcome->secrets);
  while ((rc = dv_mls_next_encrypted_group_secrets(&it, &egs)) == 1) {
    if (bytes_eq(&egs.new_member, kp_ref, DV_MLS_HASH_LEN)) {
      found = 1;
      break;
    }
  }
  if (rc < 0) return rc;
  if (!found) return DVOICE_ERR_NOT_FOUND;
  const dv_mls_hpke_ciphertext *hc = &egs.encrypted_group_secrets;
  if (hc->ciphertext.len < DV_MLS_AEAD_TAG_LEN) return DVOICE_ERR_CRYPTO;
  size_t gs_len = hc->ciphertext.len - DV_MLS_AEAD_TAG_LEN;
  size_t gs_start = group_secrets->len, gi_start = group_info->len;
  uint8_t *gs = dv_buf_extend(group_secrets, gs_len);
  if (gs == NULL) return DVOICE_ERR_NOMEM;
  int ret = dv_mls_decrypt_with_label(
      env, init_key, "Welcome", welcome->encrypted_group_info.p,
      welcome->encrypted_group_info.len, hc->kem_output.p, hc->kem_output.len,
      hc->ciphertext.p, hc->ciphertext.len, gs);
  dv_mls_group_secrets sec;
  if (ret == 0) ret = dv_mls_group_secrets_decode(gs, gs_len, &sec);
  /* DAVE uses no PSKs; psk_secret is then 0^32. */
  if (ret == 0 && sec.psks.count != 0) ret = DVOICE_ERR_UNSUPPORTED;
  if (ret == 0 && (sec.joiner_secret.len != DV_MLS_HASH_LEN ||
                   (sec.has_path_secret &&
                    sec.path_secret.len != DV_MLS_HASH_LEN)))
    ret = DVOICE_ERR_PROTO;
  uint8_t member[DV_MLS_HASH_LEN], ws[DV_MLS_HASH_LEN];
  uint8_t key[DV_MLS_AEAD_KEY_LEN], nonce[DV_MLS_AEAD_NONCE_LEN];
  static const uint8_t zero[DV_MLS_HASH_LEN];
  if (ret == 0)
    ret = dv_mls_hkdf_extract(sec.joiner_secret.p, sec.joiner_secret.len,
                              zero, sizeof zero, member);
  if (ret == 0) ret = dv_mls_derive_secret(member, sizeof member, "welcome", ws);
  if (ret == 0) ret = dv_mls_welcome_key_nonce(ws, key, nonce);
  const dv_mls_bytes *egi = &welcome->encrypted_group_info;
  if (ret == 0 && egi->len < DV_MLS_AEAD_TAG_LEN) ret = DVOICE_ERR_CRYPTO;
  if (ret == 0) {
    uint8_t *gi = dv_buf_extend(group_info, egi->len - DV_MLS_AEAD_TAG_LEN);
    if (gi == NULL) {
      ret = DVOICE_ERR_NOMEM;
    } else {
      ret = dv_mls_aead_open(key, nonce, NULL, 0, egi->p, egi->len, gi);
    }
  }
  sodium_memzero(member, sizeof member);
  sodium_memzero(ws, sizeof ws);
  sodium_memzero(key, sizeof key);
  sodium_memzero(nonce, sizeof nonce);
  if (ret != 0) {
    sodium_memzero(group_secrets->data + gs_start,
                   group_secrets->len - gs_start);
    group_secrets->len = gs_start;
    group_info->len = gi_start;
  }
  return ret;
}

/* Checks every non-blank leaf (signature, keys) and that no two leaves
 * share an encryption or signature key (RFC 9420 section 7.9 and 12.4.3.1).
 */
static int verify_leaves(const dvoice_mem *mem, const dv_mls_tree *t,
                         const uint8_t *group_id, size_t group_id_len) {
  for (uint32_t i = 0; i < t->n_leaves; i++) {
    const dv_mls_leaf_node *a = dv_mls_tree_leaf(t, i);
    if (a == NULL) continue;
    int ret = dv_mls_leaf_verify(mem, a, group_id, group_id_len, i);
    if (ret != 0) return ret;
    for (uint32_t j = i + 1; j < t->n_leaves; j++) {
      const dv_mls_leaf_node *b = dv_mls_tree_leaf(t, j);
      if (b == NULL) continue;
      if (dv_mls_bytes_eq(&a->encryption_key, &b->encryption_key) ||
          dv_mls_bytes_eq(&a->signature_key, &b->signature_key))
        return DVOICE_ERR_PROTO;
    }
  }
  return 0;
}

/* Adds (or replaces) the private key of parent node |node|. */
static int group_set_node_key(dv_mls_group *g, uint32_t node,
                              const dv_mls_hpke_key *key) {
  for (size_t i = 0; i < g->n_node_keys; i++) {
    if (g->node_keys[i].node == node) {
      g->node_keys[i].key = *key;
      return 0;
    }
  }
  if (g->n_node_keys == DV_MLS_MAX_NODE_KEYS) return DVOICE_ERR_INTERNAL;
  g->node_keys[g->n_node_keys].node = node;
  g->node_keys[g->n_node_keys].key = *key;
  g->n_node_keys++;
  return 0;
}

/* Implants |path_secret| at |start| (a node of the filtered direct path
 * of |sender|) and derives the keys of it and the fdp nodes above it,
 * checking each derived public key against the tree. */
static int group_implant_path_secret(dv_mls_group *g, uint32_t sender,
                                     uint32_t start,
                                     const uint8_t path_secret[32]) {
  uint32_t fdp[32];
  int n = dv_mls_tree_filtered_direct_path(&g->tree, sender, fdp, NULL);
  if (n < 0) return n;
  int i = 0;
  while (i < n && fdp[i] != start) i++;
  if (i == n) return DVOICE_ERR_PROTO;
  uint8_t ps[DV_MLS_HASH_LEN], ns[DV_MLS_HASH_LEN];
  dv_mls_hpke_key k;
  int ret = 0;
  memcpy(ps, path_secret, sizeof ps);
  for (; ret == 0 && i < n; i++) {
    const dv_mls_parent_node *p = dv_mls_tree_parent(&g->tree, fdp[i]);
    ret = dv_mls_derive_secret(ps, sizeof ps, "node", ns);
    if (ret == 0) ret = dv_mls_hpke_derive_keypair(&g->env, ns, sizeof ns, &k);
    if (ret == 0 &&
        (p == NULL || !bytes_eq(&p->encryption_key, k.pub, DV_MLS_PUB_LEN)))
      ret = DVOICE_ERR_CRYPTO;
    if (ret == 0) ret = group_set_node_key(g, fdp[i], &k);
    if (ret == 0) ret = dv_mls_derive_secret(ps, sizeof ps, "path", ps);
  }
  sodium_memzero(ps, sizeof ps);
  sodium_memzero(ns, sizeof ns);
  dv_mls_hpke_key_wipe(&k);
  return ret;
}

int dv_mls_group_join(dv_mls_group *g, const uint8_t *welcome,
                      size_t welcome_len, const dv_mls_join_keys *keys,
                      const dv_mls_bytes *external_tree) {
  if (g == NULL || !group_is_empty(g) || dv_env_check(&g->env) != 0 ||
      welcome == NULL || keys == NULL || keys->key_package == NULL ||
      keys->init_key == NULL || keys->leaf_key == NULL || keys->sig == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  const dvoice_mem *mem = g->env.mem;
  dv_mls_welcome w;
  dv_mls_key_package kp;
  uint8_t kp_ref[DV_MLS_HASH_LEN];
  int ret = dv_mls_welcome_decode(welcome, welcome_len, &w);
  if (ret != 0) return ret;
  ret = dv_mls_key_package_decode(keys->key_package, keys->key_package_len,
                                  &kp);
  if (ret != 0) return DVOICE_ERR_INVALID_ARGUMENT;
  if (!bytes_eq(&kp.leaf_node.encryption_key, keys->leaf_key->pub,
                DV_MLS_PUB_LEN) ||
      !bytes_eq(&kp.leaf_node.signature_key, keys->sig->pub,
                DV_MLS_PUB_LEN) ||
      !bytes_eq(&kp.init_key, keys->init_key->pub, DV_MLS_PUB_LEN))
    return DVOICE_ERR_INVALID_ARGUMENT;
  ret = dv_mls_make_key_package_ref(keys->key_package, keys->key_package_len,
                                    kp_ref);
  if (ret != 0) return ret;

  dv_buf gs_buf, gi_buf;
  dv_buf_init(&gs_buf, mem);
  dv_buf_init(&gi_buf, mem);
  ret = dv_mls_welcome_open(&g->env, &w, kp_ref, keys->init_key, &gs_buf,
                            &gi_buf);
  dv_mls_group_secrets sec;
  dv_mls_group_info gi;
  if (ret == 0) ret = dv_mls_group_secrets_decode(gs_buf.data, gs_buf.len, &sec);
  if (ret == 0) ret = dv_mls_group_info_decode(gi_buf.data, gi_buf.len, &gi);
  const dv_mls_group_context *gc = &gi.group_context;
  if (ret == 0 && (gc->tree_hash.len != DV_MLS_HASH_LEN ||
                   gc->confirmed_transcript_hash.len != DV_MLS_HASH_LEN ||
                   gc->group_id.len == 0))
    ret = DVOICE_ERR_PROTO;

  /* The ratchet tree: in-band extension, else the one given out of band. */
  dv_mls_extension rt;
  const uint8_t *tree_p = NULL;
  size_t tree_len = 0;
  if (ret == 0) {
    if (dv_mls_find_extension(&gi.extensions, DV_MLS_EXT_RATCHET_TREE, &rt)) {
      tree_p = rt.data.p;
      tree_len = rt.data.len;
    } else if (external_tree != NULL && external_tree->p != NULL) {
      tree_p = external_tree->p;
      tree_len = external_tree->len;
    } else {
      ret = DVOICE_ERR_PROTO;
    }
  }
  if (ret == 0) ret = dv_mls_tree_decode(&g->tree, mem, tree_p, tree_len);
  if (ret == 0) ret = dv_mls_tree_root_hash(&g->tree, g->tree_hash);
  if (ret == 0 && sodium_memcmp(g->tree_hash, gc->tree_hash.p,
                                DV_MLS_HASH_LEN) != 0)
    ret = DVOICE_ERR_CRYPTO;
  /* GroupInfo signature by the committer's leaf. */
  const dv_mls_leaf_node *signer = NULL;
  if (ret == 0) {
    signer = dv_mls_tree_leaf(&g->tree, gi.signer);
    if (signer == NULL) ret = DVOICE_ERR_PROTO;
  }
  if (ret == 0)
    ret = dv_mls_verify_with_label(signer->signature_key.p,
                                   signer->signature_key.len, "GroupInfoTBS",
                                   gi.raw.p, gi.tbs_len, gi.signature.p,
                                   gi.signature.len);
  if (ret == 0)
    ret = verify_leaves(mem, &g->tree, gc->group_id.p, gc->group_id.len);
  if (ret == 0) ret = dv_mls_tree_verify_parent_hashes(&g->tree);
  /* Our leaf: the one carrying our KeyPackage's keys. */
  uint32_t own = 0;
  int found = 0;
  for (uint32_t i = 0; ret == 0 && i < g->tree.n_leaves; i++) {
    const dv_mls_leaf_node *l = dv_mls_tree_leaf(&g->tree, i);
    if (l != NULL &&
        dv_mls_bytes_eq(&l->encryption_key, &kp.leaf_node.encryption_key) &&
        dv_mls_bytes_eq(&l->signature_key, &kp.leaf_node.signature_key)) {
      own = i;
      found = 1;
      break;
    }
  }
  if (ret == 0 && !found) ret = DVOICE_ERR_NOT_FOUND;
  if (ret == 0) {
    g->own_leaf = own;
    g->sig = *keys->sig;
    g->leaf_key = *keys->leaf_key;
    g->epoch = gc->epoch;
    ret = dv_buf_append(&g->group_id, gc->group_id.p, gc->group_id.len);
  }
  if (ret == 0 && sec.has_path_secret) {
    if (own == gi.signer) {
      ret = DVOICE_ERR_PROTO;
    } else {
      uint32_t lca = dv_mls_tm_common_ancestor(2 * own, 2 * gi.signer);
      ret = group_implant_path_secret(g, gi.signer, lca, sec.path_secret.p);
    }
  }
  /* Key schedule from the joiner secret with the GroupInfo's context, then
   * the confirmation tag over the confirmed transcript hash. */
  if (ret == 0)
    ret = dv_mls_keysched_from_joiner(sec.joiner_secret.p, NULL, gc->raw.p,
                                      gc->raw.len, &g->secrets);
  if (ret == 0)
    ret = dv_mls_confirmation_tag_verify(
        g->secrets.confirmation_key, gc->confirmed_transcript_hash.p,
        gc->confirmed_transcript_hash.len, gi.confirmation_tag.p,
        gi.confirmation_tag.len);
  if (ret == 0) {
    memcpy(g->confirmed_th, gc->confirmed_transcript_hash.p, DV_MLS_HASH_LEN);
    g->confirmed_th_len = DV_MLS_HASH_LEN;
    ret = interim_hash(g->confirmed_th, DV_MLS_HASH_LEN,
                       gi.confirmation_tag.p, gi.confirmation_tag.len,
                       g->interim_th);
  }
  if (ret == 0)
    ret = dv_buf_append(&g->extensions, gc->extensions.p, gc->extensions.len);
  if (ret == 0) ret = dv_buf_append(&g->group_context, gc->raw.p, gc->raw.len);
  dv_buf_free_secret(&gs_buf);
  dv_buf_free(&gi_buf);
  if (ret != 0) dv_mls_group_free(g);
  return ret;
}

int dv_mls_group_user_id(const dv_mls_group *g, uint32_t leaf_index,
                         uint64_t *user_id) {
  if (g == NULL || user_id == NULL) return DVOICE_ERR_INVALID_ARGUMENT;
  const dv_mls_leaf_node *l = dv_mls_tree_leaf(&g->tree, leaf_index);
  if (l == NULL) return DVOICE_ERR_NOT_FOUND;
  return dv_mls_leaf_user_id(l, user_id);
}

int dv_mls_group_external_sender(const dv_mls_group *g,
                                 dv_mls_external_sender *out) {
  if (g == NULL || out == NULL) return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_vec exts;
  uint32_t count = 0;
  int ret = count_extensions(g->extensions.data, g->extensions.len, &count);
  if (ret != 0) return ret;
  exts.p = g->extensions.data;
  exts.len = g->extensions.len;
  exts.count = count;
  dv_mls_extension e;
  if (!dv_mls_find_extension(&exts, DV_MLS_EXT_EXTERNAL_SENDERS, &e))
    return DVOICE_ERR_NOT_FOUND;
  /* extension_data = ExternalSender external_senders<V>, exactly one. */
  dv_rd r, sub;
  dv_rd_init(&r, e.data.p, e.data.len);
  dv_rd_vec(&r, &sub);
  ret = dv_rd_finish(&r);
  if (ret == 0) {
    dv_mls_external_sender_read(&sub, out);
    ret = dv_rd_finish(&sub);
  }
  return ret == 0 ? 0 : DVOICE_ERR_PROTO;
}

int dv_mls_group_check_external_proposal(const dv_mls_group *g,
                                         const dv_mls_message *msg,
                                         uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g == NULL || msg == NULL || ref == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (msg->wire_format != DV_MLS_WF_PUBLIC) return DVOICE_ERR_PROTO;
  const dv_mls_public_message *pm = &msg->pub;
  const dv_mls_framed_content *fc = &pm->content;
  if (!bytes_eq(&fc->group_id, g->group_id.data, g->group_id.len) ||
      fc->epoch != g->epoch || fc->content_type != DV_MLS_CONTENT_PROPOSAL ||
      fc->sender.type != DV_MLS_SENDER_EXTERNAL || fc->sender.index != 0)
    return DVOICE_ERR_PROTO;
  const dv_mls_proposal *p = &fc->proposal;
  if (p->type != DV_MLS_PROP_ADD && p->type != DV_MLS_PROP_REMOVE)
    return DVOICE_ERR_PROTO;
  dv_mls_external_sender es;
  int ret = dv_mls_group_external_sender(g, &es);
  if (ret != 0) return ret;
  ret = dv_mls_public_message_verify(g->env.mem, pm, es.signature_key.p,
                                     es.signature_key.len, NULL, NULL);
  if (ret != 0) return ret;
  if (p->type == DV_MLS_PROP_ADD) {
    ret = dv_mls_key_package_verify(g->env.mem, &p->add);
  } else if (dv_mls_tree_leaf(&g->tree, p->removed) == NULL) {
    ret = DVOICE_ERR_PROTO;
  }
  if (ret == 0) ret = dv_mls_proposal_ref(pm, ref);
  return ret;
}
