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

int dv_mls_key_package_verify(const dvoice_mem *mem,
                              const dv_mls_key_package *kp, unsigned flags) {
  if (kp == NULL || kp->raw.p == NULL || kp->tbs_len == 0 ||
      kp->tbs_len > kp->raw.len)
    return DVOICE_ERR_INVALID_ARGUMENT;
  (void)mem;
  if (kp->version != DV_MLS_VERSION_10 || kp->cipher_suite != DV_MLS_SUITE_P256)
    return DVOICE_ERR_UNSUPPORTED;
  int ret = dv_mls_check_pub(kp->init_key.p, kp->init_key.len);
  if (ret != 0)
    return ret;
  if (dv_mls_bytes_eq(&kp->init_key, &kp->leaf_node.encryption_key))
    return DVOICE_ERR_PROTO;
  ret = dv_mls_leaf_validate(&kp->leaf_node, NULL, 0,
                             DV_MLS_LEAF_SRC_KEY_PACKAGE, flags);
  if (ret != 0)
    return ret;
  /* KeyPackageTBS is the decoded encoding up to the signature. */
  return dv_mls_verify_with_label(kp->leaf_node.signature_key.p,
                                  kp->leaf_node.signature_key.len,
                                  "KeyPackageTBS", kp->raw.p, kp->tbs_len,
                                  kp->signature.p, kp->signature.len);
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

/* Signs |ln| (LeafNodeTBS; group_id and leaf_index count only for the
 * update and commit sources) into |sigbuf| and points ln->signature at
 * it. */
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
  if (ret == 0)
    ln->signature = dv_mls_b(sigbuf, sig_len);
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
  if (ret != 0 || out == NULL)
    return ret ? ret : DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_leaf_node ln;
  uint8_t uid[8], sigbuf[DV_MLS_SIG_MAX];
  dave_leaf_fill(&ln, user_id, uid, sig, leaf_key);
  ret = leaf_sign(env, &ln, sig, sigbuf, NULL, 0);
  if (ret != 0)
    return ret;
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
  if (ret != 0)
    return ret;
  if (init_key == NULL || out == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_key_package kp;
  uint8_t uid[8], leaf_sig[DV_MLS_SIG_MAX], kp_sig[DV_MLS_SIG_MAX];
  size_t kp_sig_len = 0;
  memset(&kp, 0, sizeof kp);
  ret = dv_mls_hpke_keygen(env, init_key);
  if (ret != 0)
    return ret;
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
  if (leaf == NULL || user_id == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
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
      if (w->err == 0)
        w->err = DVOICE_ERR_INVALID_ARGUMENT;
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
  if (ret != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
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
    if (ret != 0)
      return ret;
  }
  size_t start = out->len;
  dv_wr w;
  dv_wr_init(&w, out);
  dv_wr_u16(&w, DV_MLS_VERSION_10);
  dv_wr_u16(&w, DV_MLS_WF_PUBLIC);
  dv_wr_bytes(&w, fc->p, fc->len);
  dv_mls_auth_data_write(&w, c.content_type, &auth);
  if (is_member)
    dv_wr_opaque(&w, tag, sizeof tag);
  if (w.err != 0)
    out->len = start;
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
  if (svn == 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_iov iov[4] = {{wf, 2},
                       {pm->content.raw.p, pm->content.raw.len},
                       {sv, svn},
                       {pm->auth.signature.p, pm->auth.signature.len}};
  return dv_mls_ref_hash_v("MLS 1.0 Proposal Reference", iov, 4, out);
}

/* ---- group state ---------------------------------------------------------
 */

static const uint8_t ZERO32[DV_MLS_HASH_LEN];

void dv_mls_group_init(dv_mls_group *g, const dvoice_env *env) {
  memset(g, 0, sizeof *g);
  if (env != NULL)
    g->env = *env;
  g->validate_flags = DV_MLS_VALIDATE_DAVE;
  dv_buf_init(&g->group_id, g->env.mem);
  dv_buf_init(&g->extensions, g->env.mem);
  dv_buf_init(&g->group_context, g->env.mem);
  dv_mls_tree_init(&g->tree, g->env.mem);
}

void dv_mls_group_clear_proposals(dv_mls_group *g) {
  for (size_t i = 0; i < g->n_props; i++)
    dv_free(g->env.mem, g->props[i].msg);
  dv_free(g->env.mem, g->props);
  g->props = NULL;
  g->n_props = g->cap_props = 0;
}

void dv_mls_group_free(dv_mls_group *g) {
  if (g == NULL)
    return;
  dvoice_env env = g->env;
  unsigned flags = g->validate_flags;
  int accept = g->accept_member_proposals;
  dv_mls_group_clear_proposals(g);
  dv_buf_free(&g->group_id);
  dv_buf_free(&g->extensions);
  dv_buf_free(&g->group_context);
  dv_mls_tree_free(&g->tree);
  sodium_memzero(g, sizeof *g);
  dv_mls_group_init(g, &env);
  g->validate_flags = flags;
  g->accept_member_proposals = accept;
}

static int group_is_empty(const dv_mls_group *g) {
  return g->tree.n_leaves == 0 && g->group_id.len == 0;
}

/* Appends a copy of |msg| (an MLSMessage already validated) with |ref|. */
static int queue_push(dv_mls_group *g, const uint8_t *msg, size_t len,
                      const uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g->n_props == g->cap_props) {
    size_t cap = g->cap_props ? 2 * g->cap_props : 4;
    dv_mls_queued_proposal *p =
        dv_realloc(g->env.mem, g->props, cap * sizeof *p);
    if (p == NULL)
      return DVOICE_ERR_NOMEM;
    g->props = p;
    g->cap_props = cap;
  }
  dv_mls_queued_proposal *q = &g->props[g->n_props];
  q->msg = dv_memdup(g->env.mem, msg, len);
  if (q->msg == NULL)
    return DVOICE_ERR_NOMEM;
  q->msg_len = len;
  memcpy(q->ref, ref, DV_MLS_HASH_LEN);
  if (dv_mls_message_decode(q->msg, len, &q->m) != 0) {
    dv_free(g->env.mem, q->msg);
    return DVOICE_ERR_INTERNAL;
  }
  g->n_props++;
  return 0;
}

int dv_mls_group_copy(dv_mls_group *dst, const dv_mls_group *src) {
  if (dst == NULL || src == NULL || !group_is_empty(dst))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_group_init(dst, &src->env);
  dst->validate_flags = src->validate_flags;
  dst->accept_member_proposals = src->accept_member_proposals;
  int ret =
      dv_buf_append(&dst->group_id, src->group_id.data, src->group_id.len);
  if (ret == 0)
    ret = dv_buf_append(&dst->extensions, src->extensions.data,
                        src->extensions.len);
  if (ret == 0)
    ret = dv_buf_append(&dst->group_context, src->group_context.data,
                        src->group_context.len);
  if (ret == 0)
    ret = dv_mls_tree_copy(&dst->tree, &src->tree);
  for (size_t i = 0; ret == 0 && i < src->n_props; i++)
    ret = queue_push(dst, src->props[i].msg, src->props[i].msg_len,
                     src->props[i].ref);
  if (ret != 0) {
    dv_mls_group_free(dst);
    return ret;
  }
  dst->epoch = src->epoch;
  dst->priv = src->priv;
  dst->sig = src->sig;
  memcpy(dst->tree_hash, src->tree_hash, sizeof dst->tree_hash);
  memcpy(dst->confirmed_th, src->confirmed_th, sizeof dst->confirmed_th);
  dst->confirmed_th_len = src->confirmed_th_len;
  memcpy(dst->interim_th, src->interim_th, sizeof dst->interim_th);
  dst->secrets = src->secrets;
  return 0;
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
    if (dv_rd_opaque(&r, &d, &dl) != 0)
      break;
    n++;
  }
  *count = n;
  return dv_rd_finish(&r);
}

/* Serializes a GroupContext for |g|'s group id and extensions with the
 * given epoch, tree hash and confirmed hash into |out| (reset first). */
static int write_context(const dv_mls_group *g, uint64_t epoch,
                         const uint8_t tree_hash[DV_MLS_HASH_LEN],
                         const uint8_t *confirmed, size_t confirmed_len,
                         dv_buf *out) {
  dv_mls_group_context gc;
  uint32_t count = 0;
  int ret = count_extensions(g->extensions.data, g->extensions.len, &count);
  if (ret != 0)
    return ret;
  memset(&gc, 0, sizeof gc);
  gc.version = DV_MLS_VERSION_10;
  gc.cipher_suite = DV_MLS_SUITE_P256;
  gc.group_id = dv_mls_b(g->group_id.data, g->group_id.len);
  gc.epoch = epoch;
  gc.tree_hash = dv_mls_b(tree_hash, DV_MLS_HASH_LEN);
  gc.confirmed_transcript_hash = dv_mls_b(confirmed, confirmed_len);
  gc.extensions.p = g->extensions.data;
  gc.extensions.len = g->extensions.len;
  gc.extensions.count = count;
  dv_buf_reset(out);
  dv_wr w;
  dv_wr_init(&w, out);
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
      leaf->p == NULL || sig == NULL || leaf_key == NULL ||
      extensions == NULL || (extensions->p == NULL && extensions->len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_leaf_node ln;
  dv_rd r;
  dv_rd_init(&r, leaf->p, leaf->len);
  dv_mls_leaf_node_read(&r, &ln);
  int ret = dv_rd_finish(&r);
  if (ret != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (!bytes_eq(&ln.encryption_key, leaf_key->pub, DV_MLS_PUB_LEN) ||
      !bytes_eq(&ln.signature_key, sig->pub, DV_MLS_PUB_LEN))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint32_t idx = 0;
  uint8_t init_secret[DV_MLS_HASH_LEN];
  uint8_t tag[DV_MLS_HASH_LEN];
  ret = dv_buf_append(&g->group_id, group_id, group_id_len);
  if (ret == 0)
    ret = dv_buf_append(&g->extensions, extensions->p, extensions->len);
  if (ret == 0)
    ret = dv_mls_tree_add_leaf(&g->tree, &ln, &idx);
  if (ret == 0)
    ret = dv_mls_tree_root_hash(&g->tree, g->tree_hash);
  if (ret == 0)
    ret = dv_mls_tree_priv_init(&g->env, &g->priv, idx, leaf_key->priv);
  g->epoch = 0;
  g->sig = *sig;
  g->confirmed_th_len = 0;
  if (ret == 0)
    ret = write_context(g, 0, g->tree_hash, NULL, 0, &g->group_context);
  if (ret == 0) {
    dv_rand(&g->env, init_secret, sizeof init_secret);
    ret = dv_mls_keysched_from_init(init_secret, ZERO32, NULL,
                                    g->group_context.data, g->group_context.len,
                                    &g->secrets);
  }
  /* Epoch 0 has no commit; the interim hash uses the tag over the empty
   * confirmed hash (as mlspp does), which only the creator ever needs. */
  if (ret == 0)
    ret = dv_mls_confirmation_tag(g->secrets.confirmation_key, NULL, 0, tag);
  if (ret == 0)
    ret = interim_hash(NULL, 0, tag, sizeof tag, g->interim_th);
  sodium_memzero(init_secret, sizeof init_secret);
  if (ret != 0)
    dv_mls_group_free(g);
  return ret;
}

/* psk_secret for the PSKs named in |sec| (external ones only), looked up
 * in |psks|. */
static int group_secrets_psk(const dvoice_mem *mem,
                             const dv_mls_group_secrets *sec,
                             const dv_mls_external_psk *psks, size_t n_psks,
                             uint8_t out[DV_MLS_HASH_LEN]) {
  size_t n = sec->psks.count;
  if (n == 0) {
    memset(out, 0, DV_MLS_HASH_LEN);
    return 0;
  }
  if (n_psks == 0 || n > 64)
    return DVOICE_ERR_UNSUPPORTED;
  dv_mls_psk list[64];
  size_t offs[64];
  dv_buf ids;
  dv_buf_init(&ids, mem);
  dv_mls_iter it;
  dv_mls_psk_id id;
  size_t i = 0;
  int ret = 0, rc;
  dv_mls_iter_init(&it, &sec->psks);
  while (ret == 0 && i < n && (rc = dv_mls_next_psk_id(&it, &id)) == 1) {
    const dv_mls_external_psk *found = NULL;
    for (size_t j = 0; id.psktype == DV_MLS_PSK_EXTERNAL && j < n_psks; j++) {
      if (bytes_eq(&id.psk_id, psks[j].id, psks[j].id_len))
        found = &psks[j];
    }
    if (found == NULL) {
      ret = DVOICE_ERR_UNSUPPORTED;
      break;
    }
    offs[i] = ids.len;
    dv_wr w;
    dv_wr_init(&w, &ids);
    dv_mls_psk_id_write(&w, &id);
    ret = w.err;
    list[i].id_len = ids.len - offs[i];
    list[i].secret = found->secret;
    list[i].secret_len = found->secret_len;
    i++;
  }
  if (ret == 0 && i != n)
    ret = DVOICE_ERR_MALFORMED;
  for (size_t k = 0; ret == 0 && k < n; k++)
    list[k].id = ids.data + offs[k];
  if (ret == 0)
    ret = dv_mls_psk_secret(list, n, out);
  dv_buf_free(&ids);
  return ret;
}

static int welcome_open_psk(const dvoice_env *env,
                            const dv_mls_welcome *welcome,
                            const uint8_t kp_ref[DV_MLS_HASH_LEN],
                            const dv_mls_hpke_key *init_key,
                            const dv_mls_external_psk *psks, size_t n_psks,
                            dv_buf *group_secrets, dv_buf *group_info,
                            uint8_t psk_secret[DV_MLS_HASH_LEN]) {
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
  if (rc < 0)
    return rc;
  if (!found)
    return DVOICE_ERR_NOT_FOUND;
  const dv_mls_hpke_ciphertext *hc = &egs.encrypted_group_secrets;
  if (hc->ciphertext.len < DV_MLS_AEAD_TAG_LEN)
    return DVOICE_ERR_CRYPTO;
  size_t gs_len = hc->ciphertext.len - DV_MLS_AEAD_TAG_LEN;
  size_t gs_start = group_secrets->len, gi_start = group_info->len;
  uint8_t *gs = dv_buf_extend(group_secrets, gs_len);
  if (gs == NULL)
    return DVOICE_ERR_NOMEM;
  int ret = dv_mls_decrypt_with_label(
      env, init_key, "Welcome", welcome->encrypted_group_info.p,
      welcome->encrypted_group_info.len, hc->kem_output.p, hc->kem_output.len,
      hc->ciphertext.p, hc->ciphertext.len, gs);
  dv_mls_group_secrets sec;
  if (ret == 0)
    ret = dv_mls_group_secrets_decode(gs, gs_len, &sec);
  /* DAVE uses no PSKs (psk_secret 0^32); only the interop vectors pass
   * external PSKs. */
  if (ret == 0)
    ret = group_secrets_psk(env->mem, &sec, psks, n_psks, psk_secret);
  if (ret == 0 &&
      (sec.joiner_secret.len != DV_MLS_HASH_LEN ||
       (sec.has_path_secret && sec.path_secret.len != DV_MLS_HASH_LEN)))
    ret = DVOICE_ERR_PROTO;
  uint8_t member[DV_MLS_HASH_LEN], ws[DV_MLS_HASH_LEN];
  uint8_t key[DV_MLS_AEAD_KEY_LEN], nonce[DV_MLS_AEAD_NONCE_LEN];
  if (ret == 0)
    ret = dv_mls_hkdf_extract(sec.joiner_secret.p, sec.joiner_secret.len,
                              psk_secret, DV_MLS_HASH_LEN, member);
  if (ret == 0)
    ret = dv_mls_derive_secret(member, sizeof member, "welcome", ws);
  if (ret == 0)
    ret = dv_mls_welcome_key_nonce(ws, key, nonce);
  const dv_mls_bytes *egi = &welcome->encrypted_group_info;
  if (ret == 0 && egi->len < DV_MLS_AEAD_TAG_LEN)
    ret = DVOICE_ERR_CRYPTO;
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

int dv_mls_welcome_open(const dvoice_env *env, const dv_mls_welcome *welcome,
                        const uint8_t kp_ref[DV_MLS_HASH_LEN],
                        const dv_mls_hpke_key *init_key, dv_buf *group_secrets,
                        dv_buf *group_info) {
  uint8_t psk_secret[DV_MLS_HASH_LEN];
  return welcome_open_psk(env, welcome, kp_ref, init_key, NULL, 0,
                          group_secrets, group_info, psk_secret);
}

int dv_mls_group_join_begin(dv_mls_group *g, const uint8_t *welcome,
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
  if (ret != 0)
    return ret;
  ret =
      dv_mls_key_package_decode(keys->key_package, keys->key_package_len, &kp);
  if (ret != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (!bytes_eq(&kp.leaf_node.encryption_key, keys->leaf_key->pub,
                DV_MLS_PUB_LEN) ||
      !bytes_eq(&kp.leaf_node.signature_key, keys->sig->pub, DV_MLS_PUB_LEN) ||
      !bytes_eq(&kp.init_key, keys->init_key->pub, DV_MLS_PUB_LEN))
    return DVOICE_ERR_INVALID_ARGUMENT;
  ret = dv_mls_make_key_package_ref(keys->key_package, keys->key_package_len,
                                    kp_ref);
  if (ret != 0)
    return ret;

  dv_buf gs_buf, gi_buf;
  dv_buf_init(&gs_buf, mem);
  dv_buf_init(&gi_buf, mem);
  uint8_t psk_secret[DV_MLS_HASH_LEN];
  ret = welcome_open_psk(&g->env, &w, kp_ref, keys->init_key, keys->psks,
                         keys->n_psks, &gs_buf, &gi_buf, psk_secret);
  dv_mls_group_secrets sec;
  dv_mls_group_info gi;
  if (ret == 0)
    ret = dv_mls_group_secrets_decode(gs_buf.data, gs_buf.len, &sec);
  if (ret == 0)
    ret = dv_mls_group_info_decode(gi_buf.data, gi_buf.len, &gi);
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
  if (ret == 0)
    ret = dv_mls_tree_decode(&g->tree, mem, tree_p, tree_len);
  if (ret == 0)
    ret = dv_mls_tree_root_hash(&g->tree, g->tree_hash);
  if (ret == 0 &&
      sodium_memcmp(g->tree_hash, gc->tree_hash.p, DV_MLS_HASH_LEN) != 0)
    ret = DVOICE_ERR_CRYPTO;
  /* GroupInfo signature by the committer's leaf. */
  const dv_mls_leaf_node *signer = NULL;
  if (ret == 0) {
    signer = dv_mls_tree_leaf(&g->tree, gi.signer);
    if (signer == NULL)
      ret = DVOICE_ERR_PROTO;
  }
  if (ret == 0)
    ret = dv_mls_verify_with_label(
        signer->signature_key.p, signer->signature_key.len, "GroupInfoTBS",
        gi.raw.p, gi.tbs_len, gi.signature.p, gi.signature.len);
  /* Key uniqueness (and DAVE identities) and parent hashes; the leaves
   * themselves are dv_mls_group_join_verify_leaves' job. */
  if (ret == 0)
    ret = dv_mls_tree_check_unique(&g->tree, g->validate_flags);
  if (ret == 0)
    ret = dv_mls_tree_verify_parent_hashes(&g->tree);
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
  if (ret == 0 && !found)
    ret = DVOICE_ERR_NOT_FOUND;
  if (ret == 0)
    ret = dv_mls_tree_priv_init(&g->env, &g->priv, own, keys->leaf_key->priv);
  if (ret == 0) {
    g->sig = *keys->sig;
    g->epoch = gc->epoch;
    ret = dv_buf_append(&g->group_id, gc->group_id.p, gc->group_id.len);
  }
  if (ret == 0 && sec.has_path_secret) {
    if (own == gi.signer) {
      ret = DVOICE_ERR_PROTO;
    } else {
      uint32_t lca = dv_mls_tm_common_ancestor(2 * own, 2 * gi.signer);
      ret = dv_mls_tree_priv_implant(&g->env, &g->priv, &g->tree, gi.signer,
                                     lca, sec.path_secret.p,
                                     sec.path_secret.len, NULL);
    }
  }
  /* Key schedule from the joiner secret with the GroupInfo's context, then
   * the confirmation tag over the confirmed transcript hash. */
  if (ret == 0)
    ret = dv_mls_keysched_from_joiner(sec.joiner_secret.p, psk_secret,
                                      gc->raw.p, gc->raw.len, &g->secrets);
  if (ret == 0)
    ret = dv_mls_confirmation_tag_verify(
        g->secrets.confirmation_key, gc->confirmed_transcript_hash.p,
        gc->confirmed_transcript_hash.len, gi.confirmation_tag.p,
        gi.confirmation_tag.len);
  if (ret == 0) {
    memcpy(g->confirmed_th, gc->confirmed_transcript_hash.p, DV_MLS_HASH_LEN);
    g->confirmed_th_len = DV_MLS_HASH_LEN;
    ret = interim_hash(g->confirmed_th, DV_MLS_HASH_LEN, gi.confirmation_tag.p,
                       gi.confirmation_tag.len, g->interim_th);
  }
  if (ret == 0)
    ret = dv_buf_append(&g->extensions, gc->extensions.p, gc->extensions.len);
  if (ret == 0)
    ret = dv_buf_append(&g->group_context, gc->raw.p, gc->raw.len);
  dv_buf_free_secret(&gs_buf);
  dv_buf_free(&gi_buf);
  if (ret != 0)
    dv_mls_group_free(g);
  return ret;
}

int dv_mls_group_join_verify_leaves(const dv_mls_group *g, uint32_t first,
                                    uint32_t count) {
  if (g == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_bytes gid = dv_mls_b(g->group_id.data, g->group_id.len);
  for (uint32_t i = first; i < g->tree.n_leaves && i - first < count; i++) {
    const dv_mls_leaf_node *l = dv_mls_tree_leaf(&g->tree, i);
    if (l == NULL)
      continue;
    int ret = dv_mls_leaf_validate(l, &gid, i, 0, g->validate_flags);
    if (ret != 0)
      return ret;
  }
  return 0;
}

int dv_mls_group_join(dv_mls_group *g, const uint8_t *welcome,
                      size_t welcome_len, const dv_mls_join_keys *keys,
                      const dv_mls_bytes *external_tree) {
  int ret =
      dv_mls_group_join_begin(g, welcome, welcome_len, keys, external_tree);
  if (ret == 0)
    ret = dv_mls_group_join_verify_leaves(g, 0, UINT32_MAX);
  if (ret != 0)
    dv_mls_group_free(g);
  return ret;
}

int dv_mls_group_user_id(const dv_mls_group *g, uint32_t leaf_index,
                         uint64_t *user_id) {
  if (g == NULL || user_id == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  const dv_mls_leaf_node *l = dv_mls_tree_leaf(&g->tree, leaf_index);
  if (l == NULL)
    return DVOICE_ERR_NOT_FOUND;
  return dv_mls_leaf_user_id(l, user_id);
}

int dv_mls_group_external_sender(const dv_mls_group *g,
                                 dv_mls_external_sender *out) {
  if (g == NULL || out == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_vec exts;
  uint32_t count = 0;
  int ret = count_extensions(g->extensions.data, g->extensions.len, &count);
  if (ret != 0)
    return ret;
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

int dv_mls_group_external_sender_matches(const dv_mls_group *g,
                                         const uint8_t *es, size_t es_len) {
  if (g == NULL || (es == NULL && es_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_external_sender parsed;
  int ret = dv_mls_group_external_sender(g, &parsed);
  if (ret != 0)
    return ret;
  /* The single element spans from its signature_key prefix to the end of
   * the vector body; compare it byte for byte. */
  dv_mls_vec exts;
  uint32_t count = 0;
  dv_mls_extension e;
  ret = count_extensions(g->extensions.data, g->extensions.len, &count);
  if (ret != 0)
    return ret;
  exts.p = g->extensions.data;
  exts.len = g->extensions.len;
  exts.count = count;
  if (!dv_mls_find_extension(&exts, DV_MLS_EXT_EXTERNAL_SENDERS, &e))
    return DVOICE_ERR_NOT_FOUND;
  dv_rd r, sub;
  dv_rd_init(&r, e.data.p, e.data.len);
  if (dv_rd_vec(&r, &sub) != 0 || dv_rd_finish(&r) != 0)
    return DVOICE_ERR_PROTO;
  if (sub.len != es_len || (es_len > 0 && memcmp(sub.p, es, es_len) != 0))
    return DVOICE_ERR_PROTO;
  return 0;
}

int dv_mls_group_dave_base_secret(const dv_mls_group *g, uint64_t user_id,
                                  uint8_t out[16]) {
  if (g == NULL || out == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t ctx[8];
  for (int i = 0; i < 8; i++)
    ctx[i] = (uint8_t)(user_id >> (8 * i));
  return dv_mls_export(g->secrets.exporter, "Discord Secure Frames v0", ctx,
                       sizeof ctx, out, 16);
}

/* The checks shared by external and member proposals once the signature is
 * verified: an Add carries a valid KeyPackage, a Remove names an occupied
 * leaf. On success writes the proposal's reference into |ref|. */
static int check_proposal_body(const dv_mls_group *g,
                               const dv_mls_public_message *pm,
                               const dv_mls_proposal *p,
                               uint8_t ref[DV_MLS_HASH_LEN]) {
  int ret = 0;
  if (p->type == DV_MLS_PROP_ADD) {
    ret = dv_mls_key_package_verify(g->env.mem, &p->add, g->validate_flags);
  } else if (dv_mls_tree_leaf(&g->tree, p->removed) == NULL) {
    ret = DVOICE_ERR_PROTO;
  }
  if (ret == 0)
    ret = dv_mls_proposal_ref(pm, ref);
  return ret;
}

int dv_mls_group_check_external_proposal(const dv_mls_group *g,
                                         const dv_mls_message *msg,
                                         uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g == NULL || msg == NULL || ref == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (msg->wire_format != DV_MLS_WF_PUBLIC)
    return DVOICE_ERR_PROTO;
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
  if (ret != 0)
    return ret;
  ret = dv_mls_public_message_verify(g->env.mem, pm, es.signature_key.p,
                                     es.signature_key.len, NULL, NULL);
  if (ret != 0)
    return ret;
  return check_proposal_body(g, pm, p, ref);
}

/* ---- proposal queue ------------------------------------------------------
 */

static dv_mls_queued_proposal *queue_find(const dv_mls_group *g,
                                          const uint8_t *ref, size_t len) {
  if (len != DV_MLS_HASH_LEN)
    return NULL;
  for (size_t i = 0; i < g->n_props; i++) {
    if (memcmp(g->props[i].ref, ref, DV_MLS_HASH_LEN) == 0)
      return &g->props[i];
  }
  return NULL;
}

/* A proposal by a member (generic MLS; never accepted for DAVE). */
static int check_member_proposal(const dv_mls_group *g,
                                 const dv_mls_message *msg,
                                 uint8_t ref[DV_MLS_HASH_LEN]) {
  const dv_mls_public_message *pm = &msg->pub;
  const dv_mls_framed_content *fc = &pm->content;
  if (!bytes_eq(&fc->group_id, g->group_id.data, g->group_id.len) ||
      fc->epoch != g->epoch || fc->content_type != DV_MLS_CONTENT_PROPOSAL)
    return DVOICE_ERR_PROTO;
  const dv_mls_leaf_node *sl = dv_mls_tree_leaf(&g->tree, fc->sender.index);
  if (sl == NULL)
    return DVOICE_ERR_PROTO;
  const dv_mls_proposal *p = &fc->proposal;
  if (p->type != DV_MLS_PROP_ADD && p->type != DV_MLS_PROP_REMOVE)
    return DVOICE_ERR_UNSUPPORTED;
  dv_mls_bytes gcb = dv_mls_b(g->group_context.data, g->group_context.len);
  int ret = dv_mls_public_message_verify(g->env.mem, pm, sl->signature_key.p,
                                         sl->signature_key.len, &gcb,
                                         g->secrets.membership_key);
  if (ret != 0)
    return ret;
  return check_proposal_body(g, pm, p, ref);
}

int dv_mls_group_queue_proposal(dv_mls_group *g, const uint8_t *msg, size_t len,
                                uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g == NULL || msg == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_message m;
  uint8_t r[DV_MLS_HASH_LEN];
  int ret = dv_mls_message_decode(msg, len, &m);
  if (ret == 0 && g->accept_member_proposals &&
      m.wire_format == DV_MLS_WF_PUBLIC &&
      m.pub.content.sender.type == DV_MLS_SENDER_MEMBER) {
    ret = check_member_proposal(g, &m, r);
  } else if (ret == 0) {
    ret = dv_mls_group_check_external_proposal(g, &m, r);
  }
  if (ret == 0 && queue_find(g, r, sizeof r) != NULL)
    ret = DVOICE_ERR_PROTO;
  if (ret == 0)
    ret = queue_push(g, msg, len, r);
  if (ret == 0 && ref != NULL)
    memcpy(ref, r, sizeof r);
  return ret;
}

int dv_mls_group_queue_checked(dv_mls_group *g, const uint8_t *msg, size_t len,
                               const uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g == NULL || msg == NULL || ref == NULL || group_is_empty(g))
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_message m;
  uint8_t r[DV_MLS_HASH_LEN];
  int ret = dv_mls_message_decode(msg, len, &m);
  if (ret != 0)
    return ret;
  const dv_mls_framed_content *fc = &m.pub.content;
  if (m.wire_format != DV_MLS_WF_PUBLIC ||
      !bytes_eq(&fc->group_id, g->group_id.data, g->group_id.len) ||
      fc->epoch != g->epoch || fc->content_type != DV_MLS_CONTENT_PROPOSAL)
    return DVOICE_ERR_PROTO;
  ret = dv_mls_proposal_ref(&m.pub, r);
  if (ret != 0)
    return ret;
  if (sodium_memcmp(r, ref, sizeof r) != 0 ||
      queue_find(g, r, sizeof r) != NULL)
    return DVOICE_ERR_PROTO;
  return queue_push(g, msg, len, r);
}

int dv_mls_group_revoke_proposal(dv_mls_group *g,
                                 const uint8_t ref[DV_MLS_HASH_LEN]) {
  if (g == NULL || ref == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_queued_proposal *q = queue_find(g, ref, DV_MLS_HASH_LEN);
  if (q == NULL)
    return DVOICE_ERR_NOT_FOUND;
  size_t i = (size_t)(q - g->props);
  dv_free(g->env.mem, q->msg);
  memmove(&g->props[i], &g->props[i + 1],
          (g->n_props - i - 1) * sizeof g->props[0]);
  g->n_props--;
  return 0;
}

/* ---- commits -------------------------------------------------------------
 */

/* Most members one commit may add (DAVE calls hold far fewer). */
#define MAX_ADDS 256

/* What applying a commit's proposals to a tree produced. */
typedef struct applied {
  uint32_t added[MAX_ADDS];
  const dv_mls_key_package *added_kp[MAX_ADDS];
  size_t n_added;
  size_t n_removed;
} applied;

/* Checks that leaf |idx| shares no encryption key, signature key or (DAVE)
 * identity with another node of |t|. */
static int check_new_leaf_unique(const dv_mls_tree *t, uint32_t idx,
                                 unsigned flags) {
  const dv_mls_leaf_node *a = dv_mls_tree_leaf(t, idx);
  if (a == NULL)
    return DVOICE_ERR_INTERNAL;
  for (uint32_t i = 0; i < t->n_leaves; i++) {
    const dv_mls_leaf_node *b = dv_mls_tree_leaf(t, i);
    if (i == idx || b == NULL)
      continue;
    if (dv_mls_bytes_eq(&a->encryption_key, &b->encryption_key) ||
        dv_mls_bytes_eq(&a->signature_key, &b->signature_key))
      return DVOICE_ERR_PROTO;
    if ((flags & DV_MLS_VALIDATE_DAVE) &&
        dv_mls_bytes_eq(&a->credential.identity, &b->credential.identity))
      return DVOICE_ERR_PROTO;
  }
  for (uint32_t n = 1; n < dv_mls_tm_width(t->n_leaves); n += 2) {
    const dv_mls_parent_node *p = dv_mls_tree_parent(t, n);
    if (p != NULL && dv_mls_bytes_eq(&a->encryption_key, &p->encryption_key))
      return DVOICE_ERR_PROTO;
  }
  return 0;
}

/* Applies |props| (queued proposals, commit order) to |t|: every Remove,
 * then every Add, then truncation. |committer| must survive. */
static int apply_proposals(dv_mls_tree *t, dv_mls_queued_proposal *const *props,
                           size_t n, uint32_t committer, uint32_t own,
                           unsigned flags, applied *out) {
  memset(out, 0, sizeof *out);
  for (size_t i = 0; i < n; i++) {
    const dv_mls_proposal *p = &props[i]->m.pub.content.proposal;
    if (p->type != DV_MLS_PROP_REMOVE)
      continue;
    if (p->removed == committer || p->removed == own)
      return DVOICE_ERR_PROTO;
    if (dv_mls_tree_remove_leaf(t, p->removed) != 0)
      return DVOICE_ERR_PROTO;
    out->n_removed++;
  }
  for (size_t i = 0; i < n; i++) {
    const dv_mls_proposal *p = &props[i]->m.pub.content.proposal;
    if (p->type != DV_MLS_PROP_ADD)
      continue;
    if (out->n_added == MAX_ADDS)
      return DVOICE_ERR_TOO_LARGE;
    uint32_t idx;
    int ret = dv_mls_tree_add_leaf(t, &p->add.leaf_node, &idx);
    if (ret != 0)
      return ret;
    ret = check_new_leaf_unique(t, idx, flags);
    if (ret != 0)
      return ret;
    out->added[out->n_added] = idx;
    out->added_kp[out->n_added] = &p->add;
    out->n_added++;
  }
  dv_mls_tree_truncate(t);
  return 0;
}

/* Builds and signs our new commit-source LeafNode (copy of the current one
 * with a new encryption key and parent hash) into |buf|, decoded in |out|. */
static int build_commit_leaf(const dv_mls_group *g, const dv_mls_tree *t,
                             const dv_mls_treekem_encap *st, dv_buf *buf,
                             dv_mls_leaf_node *out) {
  const dv_mls_leaf_node *old = dv_mls_tree_leaf(t, g->priv.leaf_index);
  if (old == NULL)
    return DVOICE_ERR_INTERNAL;
  dv_mls_leaf_node ln = *old;
  uint8_t sigbuf[DV_MLS_SIG_MAX];
  ln.encryption_key = dv_mls_b(st->leaf.pub, DV_MLS_PUB_LEN);
  ln.source = DV_MLS_LEAF_SRC_COMMIT;
  ln.parent_hash = dv_mls_b(st->leaf_parent_hash, st->leaf_parent_hash_len);
  dv_mls_bytes gid = dv_mls_b(g->group_id.data, g->group_id.len);
  int ret = leaf_sign(&g->env, &ln, &g->sig, sigbuf, &gid, g->priv.leaf_index);
  if (ret != 0)
    return ret;
  dv_wr w;
  dv_wr_init(&w, buf);
  dv_mls_leaf_node_write(&w, &ln);
  if (w.err != 0)
    return w.err;
  dv_rd r;
  dv_rd_init(&r, buf->data, buf->len);
  dv_mls_leaf_node_read(&r, out);
  return dv_rd_finish(&r) == 0 ? 0 : DVOICE_ERR_INTERNAL;
}

/* Writes the Welcome for the joiners in |ap| (dave.md section 3.10). */
static int build_welcome(const dv_mls_group *next, const uint8_t *tag,
                         const applied *ap,
                         uint8_t (*joiner_ps)[DV_MLS_HASH_LEN],
                         const int *has_ps, dv_buf *welcome) {
  const dvoice_mem *mem = next->env.mem;
  dv_buf gi, egi;
  dv_buf_init(&gi, mem);
  dv_buf_init(&egi, mem);
  dv_wr w;
  dv_wr_init(&w, &gi);
  /* GroupInfoTBS: GroupContext, extensions [ratchet_tree], tag, signer. */
  dv_wr_bytes(&w, next->group_context.data, next->group_context.len);
  size_t exts = dv_wr_vec_begin(&w);
  dv_wr_u16(&w, DV_MLS_EXT_RATCHET_TREE);
  size_t rt = dv_wr_vec_begin(&w);
  dv_mls_tree_write(&next->tree, &w);
  dv_wr_vec_end(&w, rt);
  dv_wr_vec_end(&w, exts);
  dv_wr_opaque(&w, tag, DV_MLS_HASH_LEN);
  dv_wr_u32(&w, next->priv.leaf_index);
  int ret = w.err;
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len = 0;
  if (ret == 0)
    ret = dv_mls_sign_with_label(&next->env, next->sig.priv, "GroupInfoTBS",
                                 gi.data, gi.len, sig, &sig_len);
  if (ret == 0) {
    dv_wr_opaque(&w, sig, sig_len);
    ret = w.err;
  }
  /* encrypted_group_info under the welcome key and nonce. */
  uint8_t key[DV_MLS_AEAD_KEY_LEN], nonce[DV_MLS_AEAD_NONCE_LEN];
  if (ret == 0)
    ret = dv_mls_welcome_key_nonce(next->secrets.welcome, key, nonce);
  uint8_t *ct = NULL;
  if (ret == 0) {
    ct = dv_buf_extend(&egi, gi.len + DV_MLS_AEAD_TAG_LEN);
    if (ct == NULL)
      ret = DVOICE_ERR_NOMEM;
  }
  if (ret == 0)
    ret = dv_mls_aead_seal(key, nonce, NULL, 0, gi.data, gi.len, ct);
  sodium_memzero(key, sizeof key);
  sodium_memzero(nonce, sizeof nonce);

  size_t start = welcome->len;
  dv_wr ww;
  dv_wr_init(&ww, welcome);
  dv_wr_u16(&ww, DV_MLS_SUITE_P256);
  size_t secrets = dv_wr_vec_begin(&ww);
  dv_buf gs;
  dv_buf_init(&gs, mem);
  for (size_t i = 0; ret == 0 && i < ap->n_added; i++) {
    const dv_mls_key_package *kp = ap->added_kp[i];
    uint8_t ref[DV_MLS_HASH_LEN];
    ret = dv_mls_make_key_package_ref(kp->raw.p, kp->raw.len, ref);
    /* GroupSecrets{joiner_secret, optional path_secret, psks = []}. */
    dv_buf_reset(&gs);
    dv_wr gw;
    dv_wr_init(&gw, &gs);
    dv_wr_opaque(&gw, next->secrets.joiner, DV_MLS_HASH_LEN);
    dv_wr_u8(&gw, has_ps[i] ? 1 : 0);
    if (has_ps[i])
      dv_wr_opaque(&gw, joiner_ps[i], DV_MLS_HASH_LEN);
    dv_wr_varint(&gw, 0);
    if (ret == 0)
      ret = gw.err;
    uint8_t kem[DV_MLS_KEM_ENC_LEN];
    uint8_t *gct = NULL;
    if (ret == 0) {
      gct = dv_malloc(mem, gs.len + DV_MLS_AEAD_TAG_LEN);
      if (gct == NULL)
        ret = DVOICE_ERR_NOMEM;
    }
    if (ret == 0)
      ret = dv_mls_encrypt_with_label(&next->env, kp->init_key.p,
                                      kp->init_key.len, "Welcome", egi.data,
                                      egi.len, gs.data, gs.len, kem, gct);
    if (ret == 0) {
      dv_wr_opaque(&ww, ref, sizeof ref);
      dv_wr_opaque(&ww, kem, sizeof kem);
      dv_wr_opaque(&ww, gct, gs.len + DV_MLS_AEAD_TAG_LEN);
      ret = ww.err;
    }
    dv_free(mem, gct);
  }
  dv_wr_vec_end(&ww, secrets);
  dv_wr_opaque(&ww, egi.data, egi.len);
  if (ret == 0)
    ret = ww.err;
  if (ret != 0)
    welcome->len = start;
  dv_buf_free_secret(&gs);
  dv_buf_free(&gi);
  dv_buf_free(&egi);
  return ret;
}

/* Advances |next| (a copy of the old state whose tree already holds the
 * new epoch's tree) to the new epoch: confirmed transcript hash from the
 * commit, GroupContext, key schedule, then the confirmation tag: computed
 * into |tag_out| if not NULL, else checked against |tag_in|. */
static int advance_epoch(const dv_mls_group *g, dv_mls_group *next,
                         const dv_mls_bytes *fc, const dv_mls_bytes *sig,
                         const uint8_t commit_secret[DV_MLS_HASH_LEN],
                         const dv_mls_bytes *tag_in, uint8_t *tag_out) {
  dv_mls_bytes interim = dv_mls_b(g->interim_th, DV_MLS_HASH_LEN);
  int ret = dv_mls_transcript_confirmed(&interim, DV_MLS_WF_PUBLIC, fc, sig,
                                        next->confirmed_th);
  if (ret != 0)
    return ret;
  next->confirmed_th_len = DV_MLS_HASH_LEN;
  next->epoch = g->epoch + 1;
  ret = dv_mls_tree_root_hash(&next->tree, next->tree_hash);
  if (ret == 0)
    ret = write_context(next, next->epoch, next->tree_hash, next->confirmed_th,
                        DV_MLS_HASH_LEN, &next->group_context);
  if (ret == 0)
    ret = dv_mls_keysched_from_init(g->secrets.init, commit_secret, NULL,
                                    next->group_context.data,
                                    next->group_context.len, &next->secrets);
  uint8_t tag[DV_MLS_HASH_LEN];
  if (ret == 0) {
    if (tag_out != NULL) {
      ret = dv_mls_confirmation_tag(next->secrets.confirmation_key,
                                    next->confirmed_th, DV_MLS_HASH_LEN, tag);
      memcpy(tag_out, tag, sizeof tag);
    } else {
      ret = dv_mls_confirmation_tag_verify(next->secrets.confirmation_key,
                                           next->confirmed_th, DV_MLS_HASH_LEN,
                                           tag_in->p, tag_in->len);
      if (ret == 0)
        memcpy(tag, tag_in->p, sizeof tag);
    }
  }
  if (ret == 0)
    ret = interim_hash(next->confirmed_th, DV_MLS_HASH_LEN, tag, sizeof tag,
                       next->interim_th);
  if (ret == 0)
    ret = dv_mls_tree_priv_prune(&next->priv, &next->tree);
  dv_mls_group_clear_proposals(next);
  return ret;
}

int dv_mls_group_commit(const dv_mls_group *g, dv_buf *commit, dv_buf *welcome,
                        dv_mls_group *next) {
  if (g == NULL || commit == NULL || welcome == NULL || next == NULL ||
      group_is_empty(g) || dv_env_check(&g->env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  const dvoice_mem *mem = g->env.mem;
  uint32_t own = g->priv.leaf_index;
  int ret = dv_mls_group_copy(next, g);
  if (ret != 0)
    return ret;
  dv_mls_queued_proposal **props = NULL;
  applied *ap = dv_calloc(mem, 1, sizeof *ap);
  uint8_t(*joiner_ps)[DV_MLS_HASH_LEN] = NULL;
  int *has_ps = NULL;
  dv_mls_treekem_encap *st = NULL;
  dv_buf leaf_buf, path_buf, fc;
  dv_buf_init(&leaf_buf, mem);
  dv_buf_init(&path_buf, mem);
  dv_buf_init(&fc, mem);
  uint8_t commit_secret[DV_MLS_HASH_LEN];
  memset(commit_secret, 0, sizeof commit_secret);
  if (ap == NULL)
    ret = DVOICE_ERR_NOMEM;
  if (ret == 0 && g->n_props > 0) {
    props = dv_calloc(mem, g->n_props, sizeof *props);
    if (props == NULL)
      ret = DVOICE_ERR_NOMEM;
    for (size_t i = 0; ret == 0 && i < g->n_props; i++)
      props[i] = &g->props[i];
  }
  if (ret == 0)
    ret = apply_proposals(&next->tree, props, g->n_props, own, UINT32_MAX,
                          g->validate_flags, ap);
  int with_path = ap != NULL && (ap->n_removed > 0 || g->n_props == 0);
  if (ret == 0 && ap->n_added > 0) {
    joiner_ps = dv_calloc(mem, ap->n_added, DV_MLS_HASH_LEN);
    has_ps = dv_calloc(mem, ap->n_added, sizeof *has_ps);
    if (joiner_ps == NULL || has_ps == NULL)
      ret = DVOICE_ERR_NOMEM;
  }
  dv_mls_leaf_node new_leaf;
  if (ret == 0 && with_path) {
    uint8_t leaf_secret[DV_MLS_HASH_LEN];
    st = dv_malloc(mem, sizeof *st);
    if (st == NULL)
      ret = DVOICE_ERR_NOMEM;
    if (ret == 0) {
      dv_rand(&g->env, leaf_secret, sizeof leaf_secret);
      ret = dv_mls_treekem_encap_begin(&g->env, &next->tree, own, leaf_secret,
                                       st);
      sodium_memzero(leaf_secret, sizeof leaf_secret);
    }
    if (ret == 0)
      ret = build_commit_leaf(g, &next->tree, st, &leaf_buf, &new_leaf);
    if (ret == 0)
      ret = dv_mls_tree_set_leaf(&next->tree, own, &new_leaf);
    /* Each joiner gets the path secret of its common ancestor with us. */
    for (size_t j = 0; ret == 0 && j < ap->n_added; j++) {
      uint32_t lca = dv_mls_tm_common_ancestor(2 * own, 2 * ap->added[j]);
      for (uint32_t i = 0; i < st->n; i++) {
        if (st->fdp[i] == lca) {
          memcpy(joiner_ps[j], st->ps[i], DV_MLS_HASH_LEN);
          has_ps[j] = 1;
        }
      }
      if (!has_ps[j])
        ret = DVOICE_ERR_INTERNAL;
    }
    /* The provisional GroupContext: new epoch and tree, old confirmed. */
    dv_buf pgc;
    dv_buf_init(&pgc, mem);
    uint8_t th[DV_MLS_HASH_LEN];
    if (ret == 0)
      ret = dv_mls_tree_root_hash(&next->tree, th);
    if (ret == 0)
      ret = write_context(g, g->epoch + 1, th, g->confirmed_th,
                          g->confirmed_th_len, &pgc);
    if (ret == 0) {
      dv_wr pw;
      dv_wr_init(&pw, &path_buf);
      ret = dv_mls_treekem_encap_finish(
          &g->env, st, &next->tree, dv_mls_tree_leaf(&next->tree, own),
          ap->added, ap->n_added, pgc.data, pgc.len, &pw, commit_secret,
          &next->priv);
      if (ret == 0)
        ret = pw.err;
    }
    dv_buf_free(&pgc);
  }
  /* FramedContent{group_id, epoch, member own, "", commit}. */
  dv_wr w;
  dv_wr_init(&w, &fc);
  dv_wr_opaque(&w, g->group_id.data, g->group_id.len);
  dv_wr_u64(&w, g->epoch);
  dv_wr_u8(&w, DV_MLS_SENDER_MEMBER);
  dv_wr_u32(&w, own);
  dv_wr_varint(&w, 0);
  dv_wr_u8(&w, DV_MLS_CONTENT_COMMIT);
  size_t pv = dv_wr_vec_begin(&w);
  for (size_t i = 0; i < g->n_props; i++) {
    dv_wr_u8(&w, DV_MLS_POR_REFERENCE);
    dv_wr_opaque(&w, g->props[i].ref, DV_MLS_HASH_LEN);
  }
  dv_wr_vec_end(&w, pv);
  dv_wr_u8(&w, with_path ? 1 : 0);
  if (with_path)
    dv_wr_bytes(&w, path_buf.data, path_buf.len);
  if (ret == 0)
    ret = w.err;
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len = 0;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  dv_mls_bytes gcb = dv_mls_b(g->group_context.data, g->group_context.len);
  if (ret == 0)
    ret = dv_mls_framed_content_sign(&g->env, g->sig.priv, &fcb,
                                     DV_MLS_SENDER_MEMBER, &gcb, sig, &sig_len);
  uint8_t tag[DV_MLS_HASH_LEN];
  dv_mls_bytes sigb = dv_mls_b(sig, sig_len);
  if (ret == 0)
    ret = advance_epoch(g, next, &fcb, &sigb, commit_secret, NULL, tag);
  size_t commit_start = commit->len;
  if (ret == 0)
    ret = dv_mls_public_message_seal(mem, &fcb, sig, sig_len, tag,
                                     g->secrets.membership_key, &gcb, commit);
  if (ret == 0 && ap->n_added > 0) {
    ret = build_welcome(next, tag, ap, joiner_ps, has_ps, welcome);
    if (ret != 0)
      commit->len = commit_start;
  }
  if (st != NULL) {
    dv_mls_treekem_encap_wipe(st);
    dv_free(mem, st);
  }
  if (joiner_ps != NULL) {
    sodium_memzero(joiner_ps, ap->n_added * DV_MLS_HASH_LEN);
    dv_free(mem, joiner_ps);
  }
  dv_free(mem, has_ps);
  dv_free(mem, props);
  dv_free(mem, ap);
  sodium_memzero(commit_secret, sizeof commit_secret);
  dv_buf_free(&leaf_buf);
  dv_buf_free(&path_buf);
  dv_buf_free(&fc);
  if (ret != 0)
    dv_mls_group_free(next);
  return ret;
}

int dv_mls_group_process_commit(const dv_mls_group *g, const uint8_t *msg,
                                size_t len, dv_mls_group *next) {
  if (g == NULL || msg == NULL || next == NULL || group_is_empty(g) ||
      dv_env_check(&g->env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  const dvoice_mem *mem = g->env.mem;
  dv_mls_message m;
  int ret = dv_mls_message_decode(msg, len, &m);
  if (ret != 0)
    return ret;
  const dv_mls_public_message *pm = &m.pub;
  const dv_mls_framed_content *fc = &pm->content;
  if (m.wire_format != DV_MLS_WF_PUBLIC ||
      !bytes_eq(&fc->group_id, g->group_id.data, g->group_id.len) ||
      fc->epoch != g->epoch || fc->sender.type != DV_MLS_SENDER_MEMBER ||
      fc->content_type != DV_MLS_CONTENT_COMMIT ||
      fc->sender.index == g->priv.leaf_index)
    return DVOICE_ERR_PROTO;
  uint32_t sender = fc->sender.index;
  const dv_mls_leaf_node *sl = dv_mls_tree_leaf(&g->tree, sender);
  if (sl == NULL)
    return DVOICE_ERR_PROTO;
  dv_mls_bytes gcb = dv_mls_b(g->group_context.data, g->group_context.len);
  ret = dv_mls_public_message_verify(mem, pm, sl->signature_key.p,
                                     sl->signature_key.len, &gcb,
                                     g->secrets.membership_key);
  if (ret != 0)
    return ret;
  if (pm->auth.confirmation_tag.len != DV_MLS_HASH_LEN)
    return DVOICE_ERR_CRYPTO;

  /* Resolve every proposal reference against the queue. */
  const dv_mls_commit *c = &fc->commit;
  dv_mls_queued_proposal **props = NULL;
  applied *ap = NULL;
  if (c->proposals.count > 0) {
    props = dv_calloc(mem, c->proposals.count, sizeof *props);
    if (props == NULL)
      return DVOICE_ERR_NOMEM;
  }
  dv_mls_iter it;
  dv_mls_proposal_or_ref por;
  size_t n = 0;
  int rc;
  dv_mls_iter_init(&it, &c->proposals);
  while ((rc = dv_mls_next_proposal_or_ref(&it, &por)) == 1) {
    dv_mls_queued_proposal *q = NULL;
    if (por.type == DV_MLS_POR_REFERENCE)
      q = queue_find(g, por.reference.p, por.reference.len);
    /* DAVE: proposals by reference only, each at most once. */
    for (size_t i = 0; q != NULL && i < n; i++)
      if (props[i] == q)
        q = NULL;
    if (q == NULL || n == c->proposals.count) {
      ret = DVOICE_ERR_PROTO;
      break;
    }
    props[n++] = q;
  }
  if (ret == 0 && rc < 0)
    ret = rc;
  if (ret == 0)
    ret = dv_mls_group_copy(next, g);
  if (ret == 0) {
    ap = dv_calloc(mem, 1, sizeof *ap);
    if (ap == NULL)
      ret = DVOICE_ERR_NOMEM;
  }
  if (ret == 0)
    ret = apply_proposals(&next->tree, props, n, sender, g->priv.leaf_index,
                          g->validate_flags, ap);
  /* A path is required with a Remove or an empty commit; RFC 9420 allows
   * one anyway, and DAVE clients just never send it for add-only commits. */
  int need_path = ap != NULL && (ap->n_removed > 0 || n == 0);
  if (ret == 0 && need_path && !c->has_path)
    ret = DVOICE_ERR_PROTO;
  uint8_t commit_secret[DV_MLS_HASH_LEN];
  memset(commit_secret, 0, sizeof commit_secret);
  if (ret == 0 && c->has_path) {
    dv_buf pgc;
    uint8_t th[DV_MLS_HASH_LEN];
    dv_buf_init(&pgc, mem);
    ret = dv_mls_treekem_merge(&next->tree, sender, &c->path, &fc->group_id,
                               g->validate_flags);
    /* DAVE: a committer keeps its credential and signature key (the
     * gateway enforces the same). */
    const dv_mls_leaf_node *nl = dv_mls_tree_leaf(&next->tree, sender);
    if (ret == 0 && (g->validate_flags & DV_MLS_VALIDATE_DAVE) &&
        (nl == NULL ||
         !dv_mls_bytes_eq(&nl->credential.identity, &sl->credential.identity) ||
         !dv_mls_bytes_eq(&nl->signature_key, &sl->signature_key)))
      ret = DVOICE_ERR_PROTO;
    if (ret == 0)
      ret = dv_mls_tree_root_hash(&next->tree, th);
    if (ret == 0)
      ret = write_context(g, g->epoch + 1, th, g->confirmed_th,
                          g->confirmed_th_len, &pgc);
    if (ret == 0)
      ret = dv_mls_treekem_decap(&g->env, &next->priv, &next->tree, sender,
                                 &c->path, ap->added, ap->n_added, pgc.data,
                                 pgc.len, commit_secret, NULL, NULL);
    dv_buf_free(&pgc);
  }
  if (ret == 0)
    ret = advance_epoch(g, next, &fc->raw, &pm->auth.signature, commit_secret,
                        &pm->auth.confirmation_tag, NULL);
  sodium_memzero(commit_secret, sizeof commit_secret);
  dv_free(mem, ap);
  dv_free(mem, props);
  if (ret != 0)
    dv_mls_group_free(next);
  return ret;
}
