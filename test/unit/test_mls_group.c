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
  dvt_env_init(&e);
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
  assert_int_equal(dv_mls_key_package_verify(NULL, &k1), 0);
  assert_int_equal(dv_mls_key_package_verify(NULL, &k2), 0);
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
    if (rc == 0) rc = dv_mls_key_package_verify(NULL, &k3);
    if (rc == 0) fail_msg("flipped byte %zu still verifies", i);
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
                                              DV_MLS_SENDER_EXTERNAL, NULL,
                                              sig, &sig_len),
                   0);
  assert_int_equal(
      dv_mls_public_message_seal(NULL, &fcb, sig, sig_len, NULL, NULL, NULL,
                                 out),
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
  if (rc != 0) return rc;
  return dv_mls_group_check_external_proposal(g, &m, ref);
}

static void test_external_proposals(void **state) {
  (void)state;
  dvt_env e;
  dvt_env_init(&e);
  gateway gw;
  gateway_init(&gw, &e);
  const uint8_t gid[8] = {0x0c, 0xde, 0x77, 0xea, 0xdc, 0x82, 0x30, 0x33};
  dv_mls_group g;
  make_group(&e, &gw, &g, gid);
  assert_int_equal(g.epoch, 0);
  assert_int_equal(g.own_leaf, 0);
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
  gateway_proposal(&other, &e, gid, 8, 0, DV_MLS_PROP_REMOVE, 0, NULL, 0,
                   &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_CRYPTO);
  /* An Add whose KeyPackage signature is broken. */
  kp.data[kp.len - 5] ^= 1;
  dv_buf_reset(&msg);
  gateway_proposal(&gw, &e, gid, 8, 0, DV_MLS_PROP_ADD, 0, &kp, 0, &msg);
  assert_int_equal(check(&g, &msg, ref), DVOICE_ERR_CRYPTO);
  kp.data[kp.len - 5] ^= 1;

  dv_buf_free(&kp);
  dv_buf_free(&msg);
  dv_buf_free(&gw.es);
  dv_buf_free(&other.es);
  dv_mls_group_free(&g);
  assert_int_equal(g.tree.n_leaves, 0);
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
  if (rc == 0) rc = dv_mls_dave_leaf_node(&env, UID, &c->sk, &c->lk, &leaf);
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
  dvt_env_init(&e);
  nomem_ctx c;
  c.e = &e;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &c.sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &c.lk), 0);
  long n = dvt_mem_fail_each(run_create, &c);
  assert_true(n > 0);
  dvt_env_free(&e);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_package_layout),
      cmocka_unit_test(test_external_proposals),
      cmocka_unit_test(test_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
