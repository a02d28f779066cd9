/*
 * Unit tests for lib/mls/mls_group: DAVE KeyPackage bytes (dave.md 1.1),
 * epoch-0 group creation, external-sender proposals signed by a fake
 * gateway (accept and every reject path), allocation failures.
 */
#include "dvt.h"

#include <sodium.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_group.h"
#include "util/dv_rw.h"

#define UID 158049329150427136ull

/* These tests draw many keys, so they use the harness's non-repeating
 * stream rather than its 256-byte counter. */
static dvt_stream rand_stream;

static void env_init(dvt_env *e) {
  dvt_env_init(e);
  dvt_env_use_stream(&e->env, &rand_stream, 1);
}

static void expect_prefix(const uint8_t **p, const char *hex) {
  uint8_t *want = NULL;
  size_t n = dvt_unhex(hex, &want);
  dvt_assert_bytes(*p, n, want, n);
  *p += n;
  free(want);
}

static void test_key_package_layout(void **state) {
  (void)state;
  dvt_env e;
  env_init(&e);
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik, ik2;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &lk), 0);
  dv_buf kp, kp2;
  dv_buf_init(&kp, NULL);
  dv_buf_init(&kp2, NULL);
  assert_int_equal(dv_mls_dave_key_package(&e.env, UID, &sk, &lk, &ik, &kp), 0);
  assert_int_equal(dv_mls_dave_key_package(&e.env, UID, &sk, &lk, &ik2, &kp2),
                   0);
  /* Byte by byte as in dave.md section 1.1. */
  const uint8_t *p = kp.data;
  expect_prefix(&p, "0001 0002 4041");
  dvt_assert_bytes(p, 65, ik.pub, 65);
  p += 65;
  expect_prefix(&p, "4041");
  dvt_assert_bytes(p, 65, lk.pub, 65);
  p += 65;
  expect_prefix(&p, "4041");
  dvt_assert_bytes(p, 65, sk.pub, 65);
  p += 65;
  expect_prefix(&p, "0001 08");
  uint8_t uid_be[8];
  dv_put_u64(uid_be, UID);
  dvt_assert_bytes(p, 8, uid_be, 8);
  p += 8;
  expect_prefix(&p, "02 0001 02 0002 00 00 02 0001 01"
                    "0000000000000000 ffffffffffffffff 00");
  /* The DER signatures (70-72 bytes) take a 2-byte varint prefix. */
  assert_int_equal(p[0], 0x40);
  size_t ls = p[1];
  assert_true(ls >= 8 && ls <= 72);
  p += 2 + ls;
  expect_prefix(&p, "00 40");
  size_t ks = p[0];
  p += 1 + ks;
  assert_int_equal((size_t)(p - kp.data), kp.len);
  /* It decodes and verifies; init key fresh each time, leaf identical. */
  dv_mls_key_package k1, k2;
  assert_int_equal(dv_mls_key_package_decode(kp.data, kp.len, &k1), 0);
  assert_int_equal(dv_mls_key_package_decode(kp2.data, kp2.len, &k2), 0);
  assert_int_equal(dv_mls_key_package_verify(NULL, &k1, DV_MLS_VALIDATE_DAVE),
                   0);
  assert_int_equal(dv_mls_key_package_verify(NULL, &k2, DV_MLS_VALIDATE_DAVE),
                   0);
  assert_false(dv_mls_bytes_eq(&k1.init_key, &k2.init_key));
  assert_true(dv_mls_bytes_eq(&k1.leaf_node.raw, &k2.leaf_node.raw));
  uint64_t uid = 0;
  assert_int_equal(dv_mls_leaf_user_id(&k1.leaf_node, &uid), 0);
  assert_true(uid == UID);
  /* Tampering with any byte breaks decode or verification. */
  for (size_t i = 0; i < kp.len; i++) {
    kp.data[i] ^= 0x01;
    dv_mls_key_package k3;
    int rc = dv_mls_key_package_decode(kp.data, kp.len, &k3);
    if (rc == 0)
      rc = dv_mls_key_package_verify(NULL, &k3, DV_MLS_VALIDATE_DAVE);
    if (rc == 0)
      fail_msg("flipped byte %zu still verifies", i);
    kp.data[i] ^= 0x01;
  }
  dv_buf_free(&kp);
  dv_buf_free(&kp2);
  dvt_env_free(&e);
}

/* A fake gateway: its ExternalSender and a signing key. */
typedef struct gateway {
  dv_mls_sig_key key;
  dv_buf es; /* ExternalSender encoding */
} gateway;

static void gateway_init(gateway *gw, dvt_env *e) {
  assert_int_equal(dv_mls_sig_keygen(&e->env, &gw->key), 0);
  dv_buf_init(&gw->es, NULL);
  dv_wr w;
  dv_wr_init(&w, &gw->es);
  dv_wr_opaque(&w, gw->key.pub, 65);
  dv_wr_u16(&w, DV_MLS_CRED_BASIC);
  const uint8_t id = 0;
  dv_wr_opaque(&w, &id, 1);
  assert_int_equal(w.err, 0);
}

/* Builds an MLSMessage external proposal: Remove(leaf) or Add(kp). */
static void gateway_proposal(gateway *gw, dvt_env *e, const uint8_t *gid,
                             size_t gid_len, uint64_t epoch, uint16_t type,
                             uint32_t removed, const dv_buf *kp,
                             uint32_t sender_index, dv_buf *out) {
  dv_buf fc;
  dv_buf_init(&fc, NULL);
  dv_wr w;
  dv_wr_init(&w, &fc);
  dv_wr_opaque(&w, gid, gid_len);
  dv_wr_u64(&w, epoch);
  dv_wr_u8(&w, DV_MLS_SENDER_EXTERNAL);
  dv_wr_u32(&w, sender_index);
  dv_wr_varint(&w, 0);
  dv_wr_u8(&w, DV_MLS_CONTENT_PROPOSAL);
  dv_wr_u16(&w, type);
  if (type == DV_MLS_PROP_REMOVE) {
    dv_wr_u32(&w, removed);
  } else if (kp != NULL) {
    dv_wr_bytes(&w, kp->data, kp->len);
  }
  assert_int_equal(w.err, 0);
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  assert_int_equal(dv_mls_framed_content_sign(&e->env, gw->key.priv, &fcb,
                                              DV_MLS_SENDER_EXTERNAL, NULL, sig,
                                              &sig_len),
                   0);
  assert_int_equal(dv_mls_public_message_seal(NULL, &fcb, sig, sig_len, NULL,
                                              NULL, NULL, out),
                   0);
  dv_buf_free(&fc);
}

static void make_group(dvt_env *e, gateway *gw, dv_mls_group *g,
                       const uint8_t gid[8]) {
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk;
  assert_int_equal(dv_mls_sig_keygen(&e->env, &sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e->env, &lk), 0);
  dv_buf leaf, exts;
  dv_buf_init(&leaf, NULL);
  dv_buf_init(&exts, NULL);
  assert_int_equal(dv_mls_dave_leaf_node(&e->env, UID, &sk, &lk, &leaf), 0);
  dv_wr w;
  dv_wr_init(&w, &exts);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t m = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, gw->es.data, gw->es.len);
  dv_wr_vec_end(&w, m);
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(exts.data, exts.len);
  dv_mls_group_init(g, &e->env);
  assert_int_equal(dv_mls_group_create(g, gid, 8, &lb, &sk, &lk, &eb), 0);
  dv_buf_free(&leaf);
  dv_buf_free(&exts);
}

static int check(dv_mls_group *g, const dv_buf *msg, uint8_t ref[32]) {
  dv_mls_message m;
  int rc = dv_mls_message_decode(msg->data, msg->len, &m);
  if (rc != 0)
    return rc;
  return dv_mls_group_check_external_proposal(g, &m, ref);
}

static void test_external_proposals(void **state) {
  (void)state;
  dvt_env e;
  env_init(&e);
  gateway gw;
  gateway_init(&gw, &e);
  const uint8_t gid[8] = {0x0c, 0xde, 0x77, 0xea, 0xdc, 0x82, 0x30, 0x33};
  dv_mls_group g;
  make_group(&e, &gw, &g, gid);
  assert_int_equal(g.epoch, 0);
  assert_int_equal(dv_mls_group_own_leaf(&g), 0);
  uint64_t uid = 0;
  assert_int_equal(dv_mls_group_user_id(&g, 0, &uid), 0);
  assert_true(uid == UID);
  assert_int_equal(dv_mls_group_user_id(&g, 1, &uid), DVOICE_ERR_NOT_FOUND);

  /* A peer's KeyPackage, proposed for addition. */
  dv_mls_sig_key psk;
  dv_mls_hpke_key plk, pik;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &psk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &plk), 0);
  dv_buf kp, msg;
  dv_buf_init(&kp, NULL);
  dv_buf_init(&msg, NULL);
  assert_int_equal(dv_mls_dave_key_package(&e.env, 42, &psk, &plk, &pik, &kp),
                   0);
  uint8_t ref[32], ref2[32];
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &kp, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), 0);
  /* The ref is RefHash over the MLSMessage minus its version. */
  assert_int_equal(dv_mls_ref_hash("MLS 1.0 Proposal Reference", msg.data + 2,
                                   msg.len - 2, ref2),
                   0);
  assert_memory_equal(ref, ref2, 32);

  /* Remove of our (occupied) leaf 0 passes; of blank leaf 3 fails. */
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_REMOVE, 0, NULL, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), 0);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_REMOVE, 3, NULL, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_PROTO);
  /* Wrong epoch, wrong group, wrong sender index. */
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 1, DV_MLS_PROP_REMOVE, 0, NULL, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_PROTO);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 7, 0, DV_MLS_PROP_REMOVE, 0, NULL, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_PROTO);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_REMOVE, 0, NULL, 1, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_PROTO);
  /* Signed by someone else. */
  gateway other;
  gateway_init(&other, &e);
  dv_buf_reset(&msg);
  gateway_proposal(&other, &e, gid, 8, 0, DV_MLS_PROP_REMOVE, 0, NULL, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_CRYPTO);
  /* An Add whose KeyPackage signature is broken. */
  kp.data[kp.len - 5] ^= 1;
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &kp, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_CRYPTO);
  kp.data[kp.len - 5] ^= 1;

  /* The DAVE Welcome check against the op 25 bytes. */
  assert_int_equal(
      dv_mls_group_external_sender_matches(&g, gw.es.data, gw.es.len), 0);
  assert_int_equal(
      dv_mls_group_external_sender_matches(&g, other.es.data, other.es.len),
      DVOICE_ERR_PROTO);
  assert_int_equal(
      dv_mls_group_external_sender_matches(&g, gw.es.data, gw.es.len - 1),
      DVOICE_ERR_PROTO);
  /* The media base secret is the exporter with a little-endian user id. */
  uint8_t base[16], want[16], le[8] = {0x2a};
  assert_int_equal(dv_mls_group_dave_base_secret(&g, 42, base), 0);
  assert_int_equal(dv_mls_export(g.secrets.exporter, "Discord Secure Frames v0",
                                 le, 8, want, 16),
                   0);
  assert_memory_equal(base, want, 16);

  dv_buf_free(&kp);
  dv_buf_free(&msg);
  dv_buf_free(&gw.es);
  dv_buf_free(&other.es);
  dv_mls_group_free(&g);
  assert_int_equal(g.tree.n_leaves, 0);
  dvt_env_free(&e);
}

/* A member-to-be: keys, its KeyPackage and init key. */
typedef struct member {
  uint64_t uid;
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik;
  dv_buf kp;
  dv_mls_group g;
} member;

static void member_init(member *m, dvt_env *e, uint64_t uid) {
  m->uid = uid;
  assert_int_equal(dv_mls_sig_keygen(&e->env, &m->sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e->env, &m->lk), 0);
  dv_buf_init(&m->kp, NULL);
  assert_int_equal(
      dv_mls_dave_key_package(&e->env, uid, &m->sk, &m->lk, &m->ik, &m->kp), 0);
  dv_mls_group_init(&m->g, &e->env);
}

static void member_free(member *m) {
  dv_buf_free(&m->kp);
  dv_mls_group_free(&m->g);
}

static void member_join(member *m, const dv_buf *welcome) {
  dv_mls_join_keys keys = {m->kp.data, m->kp.len, &m->ik, &m->lk, &m->sk};
  assert_int_equal(
      dv_mls_group_join(&m->g, welcome->data, welcome->len, &keys, NULL), 0);
}

/* Replaces |g| by |next| (which is left empty). */
static void adopt(dv_mls_group *g, dv_mls_group *next) {
  dv_mls_group_free(g);
  *g = *next;
  dv_mls_group_init(next, &g->env);
}

/* Queues the gateway's proposal |msg| in every group of |gs|. */
static void queue_all(dv_mls_group **gs, size_t n, const dv_buf *msg) {
  uint8_t ref[32], ref0[32];
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(dv_mls_group_queue_proposal(gs[i], msg->data, msg->len,
                                                 i == 0 ? ref0 : ref),
                     0);
    if (i > 0)
      assert_memory_equal(ref, ref0, 32);
  }
}

static int commit_has_path(const dv_buf *commit) {
  dv_mls_message m;
  assert_int_equal(dv_mls_message_decode(commit->data, commit->len, &m), 0);
  assert_int_equal(m.pub.content.content_type, DV_MLS_CONTENT_COMMIT);
  return m.pub.content.commit.has_path;
}

static void same_epoch(const dv_mls_group *a, const dv_mls_group *b) {
  assert_true(a->epoch == b->epoch);
  assert_memory_equal(a->secrets.epoch_authenticator,
                      b->secrets.epoch_authenticator, 32);
  assert_memory_equal(a->secrets.exporter, b->secrets.exporter, 32);
  assert_memory_equal(a->tree_hash, b->tree_hash, 32);
  assert_int_equal(a->group_context.len, b->group_context.len);
  assert_memory_equal(a->group_context.data, b->group_context.data,
                      a->group_context.len);
  assert_memory_equal(a->interim_th, b->interim_th, 32);
}

static void test_commit_flow(void **state) {
  (void)state;
  dvt_env e;
  env_init(&e);
  gateway gw;
  gateway_init(&gw, &e);
  const uint8_t gid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  member a, b, c, d;
  a.uid = UID;
  dv_buf_init(&a.kp, NULL);
  make_group(&e, &gw, &a.g, gid);
  member_init(&b, &e, 1001);
  member_init(&c, &e, 1002);
  member_init(&d, &e, 1003);
  dv_buf msg, commit, welcome;
  dv_buf_init(&msg, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  dv_mls_group next;
  dv_mls_group_init(&next, &e.env);

  /* Epoch 0 -> 1: A adds B and C (add-only: no path). */
  dv_mls_group *ga[1] = {&a.g};
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &b.kp, 0, &msg);
  queue_all(ga, 1, &msg);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &c.kp, 0, &msg);
  queue_all(ga, 1, &msg);
  assert_int_equal(dv_mls_group_commit(&a.g, &commit, &welcome, &next), 0);
  assert_true(welcome.len > 0);
  assert_int_equal(commit_has_path(&commit), 0);
  adopt(&a.g, &next);
  assert_int_equal(a.g.epoch, 1);
  assert_int_equal(a.g.n_props, 0);
  member_join(&b, &welcome);
  member_join(&c, &welcome);
  same_epoch(&a.g, &b.g);
  same_epoch(&a.g, &c.g);
  assert_int_equal(dv_mls_group_own_leaf(&b.g), 1);
  assert_int_equal(dv_mls_group_own_leaf(&c.g), 2);
  /* The split join's leaf check, by range: a broken signature on leaf 0
   * fails its range only. */
  dv_mls_group bcopy;
  dv_mls_group_init(&bcopy, &e.env);
  assert_int_equal(dv_mls_group_copy(&bcopy, &b.g), 0);
  assert_int_equal(dv_mls_group_join_verify_leaves(&bcopy, 0, UINT32_MAX), 0);
  uint8_t *lsig = (uint8_t *)bcopy.tree.nodes[0].u.leaf.signature.p;
  lsig[bcopy.tree.nodes[0].u.leaf.signature.len - 1] ^= 1;
  assert_int_equal(dv_mls_group_join_verify_leaves(&bcopy, 0, 1),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_group_join_verify_leaves(&bcopy, 1, 2), 0);
  assert_int_equal(dv_mls_group_join_verify_leaves(&bcopy, 0, UINT32_MAX),
                   DVOICE_ERR_CRYPTO);
  dv_mls_group_free(&bcopy);
  uint64_t uid;
  assert_int_equal(dv_mls_group_user_id(&b.g, 2, &uid), 0);
  assert_true(uid == 1002);
  /* A joiner cannot process a commit of an epoch it never saw. */
  assert_int_equal(
      dv_mls_group_process_commit(&b.g, commit.data, commit.len, &next),
      DVOICE_ERR_PROTO);

  /* Epoch 1 -> 2: B removes C and adds D (path required). */
  dv_mls_group *gab[3] = {&a.g, &b.g, &c.g};
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 1, DV_MLS_PROP_REMOVE, 2, NULL, 0, &msg);
  queue_all(gab, 3, &msg);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 1, DV_MLS_PROP_ADD, 0, &d.kp, 0, &msg);
  queue_all(gab, 3, &msg);
  /* DAVE: a committer may not change its identity. A copy of B whose own
   * leaf claims another user id (same keys, validly signed) commits; A
   * refuses the result. */
  {
    dv_mls_group bad;
    dv_mls_group_init(&bad, &e.env);
    assert_int_equal(dv_mls_group_copy(&bad, &b.g), 0);
    dv_buf lf;
    dv_buf_init(&lf, NULL);
    assert_int_equal(dv_mls_dave_leaf_node(&e.env, 4242, &b.sk, &b.lk, &lf), 0);
    dv_mls_leaf_node ln;
    dv_rd rd;
    dv_rd_init(&rd, lf.data, lf.len);
    assert_int_equal(dv_mls_leaf_node_read(&rd, &ln), 0);
    assert_int_equal(dv_mls_tree_set_leaf(&bad.tree, 1, &ln), 0);
    dv_buf bc, bw;
    dv_buf_init(&bc, NULL);
    dv_buf_init(&bw, NULL);
    assert_int_equal(dv_mls_group_commit(&bad, &bc, &bw, &next), 0);
    dv_mls_group_free(&next);
    assert_int_equal(dv_mls_group_process_commit(&a.g, bc.data, bc.len, &next),
                     DVOICE_ERR_PROTO);
    assert_int_equal(next.tree.n_leaves, 0);
    dv_buf_free(&bc);
    dv_buf_free(&bw);
    dv_buf_free(&lf);
    dv_mls_group_free(&bad);
  }
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&b.g, &commit, &welcome, &next), 0);
  assert_true(welcome.len > 0);
  assert_int_equal(commit_has_path(&commit), 1);
  dv_mls_group bnext = next;
  dv_mls_group_init(&next, &e.env);
  /* Tampering anywhere in the commit is refused by A. */
  for (size_t i = 0; i < commit.len; i += 13) {
    commit.data[i] ^= 0x20;
    assert_int_not_equal(
        dv_mls_group_process_commit(&a.g, commit.data, commit.len, &next), 0);
    assert_int_equal(next.tree.n_leaves, 0);
    commit.data[i] ^= 0x20;
  }
  /* C is removed by it. */
  assert_int_equal(
      dv_mls_group_process_commit(&c.g, commit.data, commit.len, &next),
      DVOICE_ERR_PROTO);
  /* B cannot process its own commit. */
  assert_int_equal(
      dv_mls_group_process_commit(&b.g, commit.data, commit.len, &next),
      DVOICE_ERR_PROTO);
  assert_int_equal(
      dv_mls_group_process_commit(&a.g, commit.data, commit.len, &next), 0);
  adopt(&a.g, &next);
  adopt(&b.g, &bnext);
  member_join(&d, &welcome);
  same_epoch(&a.g, &b.g);
  same_epoch(&a.g, &d.g);
  assert_int_equal(dv_mls_group_own_leaf(&d.g), 2);

  /* Epoch 2 -> 3: the gateway removes B; D commits (with a path, no
   * Welcome) and A processes it, but not without the proposal queued. */
  dv_mls_group *gad[2] = {&a.g, &d.g};
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 2, DV_MLS_PROP_REMOVE, 1, NULL, 0, &msg);
  queue_all(gad, 2, &msg);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&d.g, &commit, &welcome, &next), 0);
  assert_int_equal(welcome.len, 0);
  dv_mls_group dnext = next;
  dv_mls_group_init(&next, &e.env);
  /* Without the proposal queued, A refuses the commit. */
  dv_mls_group a_copy;
  dv_mls_group_init(&a_copy, &e.env);
  assert_int_equal(dv_mls_group_copy(&a_copy, &a.g), 0);
  dv_mls_group_clear_proposals(&a_copy);
  assert_int_equal(
      dv_mls_group_process_commit(&a_copy, commit.data, commit.len, &next),
      DVOICE_ERR_PROTO);
  dv_mls_group_free(&a_copy);
  assert_int_equal(
      dv_mls_group_process_commit(&a.g, commit.data, commit.len, &next), 0);
  adopt(&a.g, &next);
  adopt(&d.g, &dnext);
  same_epoch(&a.g, &d.g);
  assert_int_equal(a.g.epoch, 3);

  /* Epoch 3 -> 4: an empty commit (path required) by A, processed by D. */
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&a.g, &commit, &welcome, &next), 0);
  assert_int_equal(commit_has_path(&commit), 1);
  assert_int_equal(welcome.len, 0);
  dv_mls_group anext = next;
  dv_mls_group_init(&next, &e.env);
  assert_int_equal(
      dv_mls_group_process_commit(&d.g, commit.data, commit.len, &next), 0);
  adopt(&a.g, &anext);
  adopt(&d.g, &next);
  same_epoch(&a.g, &d.g);
  assert_int_equal(a.g.epoch, 4);

  /* Check off the loop, then queue the checked bytes cheaply; a different
   * message under that ref is refused. */
  uint8_t cref[32];
  dv_buf other_msg;
  dv_buf_init(&other_msg, NULL);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 4, DV_MLS_PROP_REMOVE, 2, NULL, 0, &msg);
  gateway_proposal(&gw, &e, gid, 8, 4, DV_MLS_PROP_REMOVE, 0, NULL, 0,
                   &other_msg);
  dv_mls_message cm;
  assert_int_equal(dv_mls_message_decode(msg.data, msg.len, &cm), 0);
  assert_int_equal(dv_mls_group_check_external_proposal(&a.g, &cm, cref), 0);
  assert_int_equal(
      dv_mls_group_queue_checked(&a.g, other_msg.data, other_msg.len, cref),
      DVOICE_ERR_PROTO);
  assert_int_equal(dv_mls_group_queue_checked(&a.g, msg.data, msg.len, cref),
                   0);
  assert_int_equal(dv_mls_group_queue_checked(&a.g, msg.data, msg.len, cref),
                   DVOICE_ERR_PROTO);
  assert_int_equal(a.g.n_props, 1);
  assert_int_equal(dv_mls_group_revoke_proposal(&a.g, cref), 0);
  dv_buf_free(&other_msg);

  /* Revoke: queue then revoke leaves nothing; an unknown ref is refused. */
  uint8_t ref[32];
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 4, DV_MLS_PROP_REMOVE, 2, NULL, 0, &msg);
  assert_int_equal(dv_mls_group_queue_proposal(&a.g, msg.data, msg.len, ref),
                   0);
  assert_int_equal(dv_mls_group_queue_proposal(&a.g, msg.data, msg.len, NULL),
                   DVOICE_ERR_PROTO);
  assert_int_equal(dv_mls_group_revoke_proposal(&a.g, ref), 0);
  assert_int_equal(dv_mls_group_revoke_proposal(&a.g, ref),
                   DVOICE_ERR_NOT_FOUND);
  assert_int_equal(a.g.n_props, 0);

  dv_buf_free(&msg);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&gw.es);
  member_free(&a);
  member_free(&b);
  member_free(&c);
  member_free(&d);
  dv_mls_group_free(&next);
  dvt_env_free(&e);
}

/* Injects an allocation failure at 0, 1, 2, ... allocations into |op|
 * (which allocates from |m| and frees everything it made) until a run
 * succeeds; each failing run must return NOMEM and leak nothing. */
static long fail_each_op(dvt_mem *m, int (*op)(void *), void *ud) {
  for (long i = 0; i < 100000; i++) {
    long live = m->live;
    m->failures = 0;
    m->fail_at = m->count + i;
    int rc = op(ud);
    m->fail_at = -1;
    assert_int_equal(m->live, live);
    if (m->failures == 0) {
      assert_int_equal(rc, 0);
      return i;
    }
    if (rc != DVOICE_ERR_NOMEM)
      fail_msg("allocation %ld refused: got %d, not NOMEM", i, rc);
  }
  fail_msg("no successful run");
  return -1;
}

typedef struct op_ctx {
  const dv_mls_group *g;
  const dv_buf *in; /* welcome or commit */
  member *m;
} op_ctx;

static int op_commit(void *ud) {
  op_ctx *c = ud;
  dv_buf commit, welcome;
  dv_mls_group next;
  dv_buf_init(&commit, c->g->env.mem);
  dv_buf_init(&welcome, c->g->env.mem);
  dv_mls_group_init(&next, &c->g->env);
  int rc = dv_mls_group_commit(c->g, &commit, &welcome, &next);
  dv_mls_group_free(&next);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  return rc;
}

static int op_join(void *ud) {
  op_ctx *c = ud;
  dv_mls_group g;
  dv_mls_group_init(&g, &c->g->env);
  dv_mls_join_keys keys = {c->m->kp.data, c->m->kp.len, &c->m->ik, &c->m->lk,
                           &c->m->sk};
  int rc = dv_mls_group_join(&g, c->in->data, c->in->len, &keys, NULL);
  dv_mls_group_free(&g);
  return rc;
}

static int op_process(void *ud) {
  op_ctx *c = ud;
  dv_mls_group next;
  dv_mls_group_init(&next, &c->g->env);
  int rc = dv_mls_group_process_commit(c->g, c->in->data, c->in->len, &next);
  dv_mls_group_free(&next);
  return rc;
}

/* Allocation failures in commit creation, Welcome joining and commit
 * processing (with a path and a Welcome path secret). */
static void test_nomem_ops(void **state) {
  (void)state;
  dvt_env e;
  env_init(&e);
  dvt_mem m;
  dvt_mem_init(&m, -1);
  e.env.mem = &m.mem;
  gateway gw;
  gateway_init(&gw, &e);
  const uint8_t gid[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  member a, b, c, d;
  a.uid = UID;
  dv_buf_init(&a.kp, NULL);
  make_group(&e, &gw, &a.g, gid);
  member_init(&b, &e, 2001);
  member_init(&c, &e, 2002);
  member_init(&d, &e, 2003);
  dv_buf msg, commit, welcome;
  dv_buf_init(&msg, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  dv_mls_group *ga[1] = {&a.g};
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &b.kp, 0, &msg);
  queue_all(ga, 1, &msg);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &c.kp, 0, &msg);
  queue_all(ga, 1, &msg);
  op_ctx oc = {&a.g, NULL, NULL};
  assert_true(fail_each_op(&m, op_commit, &oc) > 0);

  dv_mls_group next;
  dv_mls_group_init(&next, &e.env);
  assert_int_equal(dv_mls_group_commit(&a.g, &commit, &welcome, &next), 0);
  adopt(&a.g, &next);
  oc.g = &b.g;
  oc.in = &welcome;
  oc.m = &b;
  assert_true(fail_each_op(&m, op_join, &oc) > 0);
  member_join(&b, &welcome);

  /* B removes C and adds D: a path commit for A, a path secret for D. */
  dv_mls_group *gab[2] = {&a.g, &b.g};
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 1, DV_MLS_PROP_REMOVE, 2, NULL, 0, &msg);
  queue_all(gab, 2, &msg);
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 1, DV_MLS_PROP_ADD, 0, &d.kp, 0, &msg);
  queue_all(gab, 2, &msg);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  oc.g = &b.g;
  assert_true(fail_each_op(&m, op_commit, &oc) > 0);
  assert_int_equal(dv_mls_group_commit(&b.g, &commit, &welcome, &next), 0);
  dv_mls_group_free(&next);
  oc.g = &a.g;
  oc.in = &commit;
  assert_true(fail_each_op(&m, op_process, &oc) > 0);
  oc.g = &d.g;
  oc.in = &welcome;
  oc.m = &d;
  assert_true(fail_each_op(&m, op_join, &oc) > 0);

  dv_buf_free(&msg);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&gw.es);
  member_free(&a);
  member_free(&b);
  member_free(&c);
  member_free(&d);
  assert_int_equal(m.live, 0);
  dvt_env_free(&e);
}

typedef struct nomem_ctx {
  dvt_env *e;
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk;
} nomem_ctx;

static int run_create(const dvoice_mem *mem, void *ud) {
  nomem_ctx *c = ud;
  dvoice_env env = c->e->env;
  env.mem = mem;
  dv_buf kp, leaf;
  dv_mls_hpke_key ik;
  dv_buf_init(&kp, mem);
  dv_buf_init(&leaf, mem);
  int rc = dv_mls_dave_key_package(&env, UID, &c->sk, &c->lk, &ik, &kp);
  if (rc == 0)
    rc = dv_mls_dave_leaf_node(&env, UID, &c->sk, &c->lk, &leaf);
  dv_mls_group g;
  dv_mls_group_init(&g, &env);
  if (rc == 0) {
    const uint8_t gid[8] = {1};
    const uint8_t ext[] = {0x00, 0x05, 0x00};
    dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
    dv_mls_bytes eb = dv_mls_b(ext, sizeof ext);
    rc = dv_mls_group_create(&g, gid, 8, &lb, &c->sk, &c->lk, &eb);
  }
  dv_mls_group_free(&g);
  dv_buf_free(&kp);
  dv_buf_free(&leaf);
  return rc;
}

static void test_nomem(void **state) {
  (void)state;
  dvt_env e;
  env_init(&e);
  nomem_ctx c;
  c.e = &e;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &c.sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &c.lk), 0);
  long n = dvt_mem_fail_each(run_create, &c);
  assert_true(n > 0);
  dvt_env_free(&e);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_package_layout),
      cmocka_unit_test(test_external_proposals),
      cmocka_unit_test(test_commit_flow),
      cmocka_unit_test(test_nomem),
      cmocka_unit_test(test_nomem_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
