/*
 * MLS crypto and group-operation costs (cipher suite 2, mbedTLS 2.28), all
 * on one thread as they run on the event loop. Prints a table and a JSON
 * line. Usage: bench_mls [members]   (default 8)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_group.h"
#include "mls/mls_keysched.h"
#include "util/dv_rw.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void rand_cb(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  randombytes_buf(dest, len);
}

#define DIE(x)                                                                 \
  do {                                                                         \
    int rc_ = (x);                                                             \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "%s:%d: error %d\n", __FILE__, __LINE__, rc_);           \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

typedef struct result {
  const char *name;
  double us;
} result;

static result results[32];
static int n_results;

static void record(const char *name, double total_us, int iters) {
  results[n_results].name = name;
  results[n_results].us = total_us / iters;
  n_results++;
}

static dvoice_env env;
static dv_mls_sig_key gw;

static void proposal(const uint8_t gid[8], uint64_t epoch, uint16_t type,
                     uint32_t removed, const dv_buf *kp, dv_buf *out) {
  dv_buf fc;
  dv_buf_init(&fc, NULL);
  dv_wr w;
  dv_wr_init(&w, &fc);
  dv_wr_opaque(&w, gid, 8);
  dv_wr_u64(&w, epoch);
  dv_wr_u8(&w, DV_MLS_SENDER_EXTERNAL);
  dv_wr_u32(&w, 0);
  dv_wr_varint(&w, 0);
  dv_wr_u8(&w, DV_MLS_CONTENT_PROPOSAL);
  dv_wr_u16(&w, type);
  if (type == DV_MLS_PROP_REMOVE) {
    dv_wr_u32(&w, removed);
  } else {
    dv_wr_bytes(&w, kp->data, kp->len);
  }
  DIE(w.err);
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  DIE(dv_mls_framed_content_sign(&env, gw.priv, &fcb, DV_MLS_SENDER_EXTERNAL,
                                 NULL, sig, &sig_len));
  DIE(dv_mls_public_message_seal(NULL, &fcb, sig, sig_len, NULL, NULL, NULL,
                                 out));
  dv_buf_free(&fc);
}

typedef struct member {
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik;
  dv_buf kp;
  dv_mls_group g;
} member;

int main(int argc, char **argv) {
  int members = argc > 1 ? atoi(argv[1]) : 8;
  if (members < 3 || members > 200 || sodium_init() < 0)
    return 2;
  dvoice_env_default(&env);
  env.rand = rand_cb;
  const int N = 200;
  double t;
  uint8_t buf[64], out[64];
  memset(buf, 7, sizeof buf);

  t = now_us();
  for (int i = 0; i < 10000; i++)
    DIE(dv_mls_derive_tree_secret(buf, 16, "key", (uint32_t)i, out, 16));
  record("DeriveTreeSecret 16B (ratchet step)", now_us() - t, 10000);

  dv_mls_sig_key sk;
  DIE(dv_mls_sig_keygen(&env, &sk));
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len = 0;
  uint8_t msg[400];
  memset(msg, 1, sizeof msg);
  t = now_us();
  for (int i = 0; i < N; i++)
    DIE(dv_mls_sign_with_label(&env, sk.priv, "FramedContentTBS", msg,
                               sizeof msg, sig, &sig_len));
  record("SignWithLabel (ECDSA P-256)", now_us() - t, N);
  t = now_us();
  for (int i = 0; i < N; i++)
    DIE(dv_mls_verify_with_label(sk.pub, 65, "FramedContentTBS", msg,
                                 sizeof msg, sig, sig_len));
  record("VerifyWithLabel (ECDSA P-256)", now_us() - t, N);

  dv_mls_hpke_key hk, dk;
  DIE(dv_mls_hpke_keygen(&env, &hk));
  uint8_t kem[65], ct[48], pt[32];
  t = now_us();
  for (int i = 0; i < N; i++)
    DIE(dv_mls_encrypt_with_label(&env, hk.pub, 65, "UpdatePathNode", msg, 200,
                                  buf, 32, kem, ct));
  record("EncryptWithLabel (HPKE seal)", now_us() - t, N);
  t = now_us();
  for (int i = 0; i < N; i++)
    DIE(dv_mls_decrypt_with_label(&env, &hk, "UpdatePathNode", msg, 200, kem,
                                  65, ct, sizeof ct, pt));
  record("DecryptWithLabel (HPKE open)", now_us() - t, N);
  t = now_us();
  for (int i = 0; i < N; i++)
    DIE(dv_mls_hpke_derive_keypair(&env, buf, 32, &dk));
  record("DeriveKeyPair (P-256)", now_us() - t, N);
  dv_mls_epoch_secrets es;
  t = now_us();
  for (int i = 0; i < 2000; i++)
    DIE(dv_mls_keysched_from_init(buf, buf, NULL, msg, 150, &es));
  record("key schedule (one epoch)", now_us() - t, 2000);

  /* Group operations: A creates, adds members-1 in one commit; then one
   * member is removed and one added (path commit), processed by B. */
  DIE(dv_mls_sig_keygen(&env, &gw));
  dv_buf es_b, exts, leaf;
  dv_buf_init(&es_b, NULL);
  dv_buf_init(&exts, NULL);
  dv_buf_init(&leaf, NULL);
  dv_wr w;
  dv_wr_init(&w, &es_b);
  dv_wr_opaque(&w, gw.pub, 65);
  dv_wr_u16(&w, 1);
  dv_wr_varint(&w, 1);
  dv_wr_u8(&w, 0);
  dv_wr_init(&w, &exts);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t mk = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, es_b.data, es_b.len);
  dv_wr_vec_end(&w, mk);
  const uint8_t gid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  member *m = calloc((size_t)members + 1, sizeof *m);
  if (m == NULL)
    return 1;
  for (int i = 0; i <= members; i++) {
    DIE(dv_mls_sig_keygen(&env, &m[i].sk));
    DIE(dv_mls_hpke_keygen(&env, &m[i].lk));
    dv_buf_init(&m[i].kp, NULL);
    dv_mls_group_init(&m[i].g, &env);
  }
  t = now_us();
  for (int i = 1; i <= members; i++)
    DIE(dv_mls_dave_key_package(&env, 1000 + (uint64_t)i, &m[i].sk, &m[i].lk,
                                &m[i].ik, &m[i].kp));
  record("DAVE KeyPackage creation", now_us() - t, members);
  DIE(dv_mls_dave_leaf_node(&env, 1000, &m[0].sk, &m[0].lk, &leaf));
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(exts.data, exts.len);
  DIE(dv_mls_group_create(&m[0].g, gid, 8, &lb, &m[0].sk, &m[0].lk, &eb));
  dv_buf pm, commit, welcome;
  dv_buf_init(&pm, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  t = now_us();
  for (int i = 1; i < members; i++) {
    dv_buf_reset(&pm);
    proposal(gid, 0, DV_MLS_PROP_ADD, 0, &m[i].kp, &pm);
    DIE(dv_mls_group_queue_proposal(&m[0].g, pm.data, pm.len, NULL));
  }
  record("queue external Add proposal (verify 3 sigs)", now_us() - t,
         members - 1);
  dv_mls_group next;
  dv_mls_group_init(&next, &env);
  t = now_us();
  DIE(dv_mls_group_commit(&m[0].g, &commit, &welcome, &next));
  record("commit adding members-1 (no path) + Welcome", now_us() - t, 1);
  size_t welcome_len = welcome.len, add_commit_len = commit.len;
  dv_mls_group_free(&m[0].g);
  m[0].g = next;
  dv_mls_group_init(&next, &env);
  t = now_us();
  for (int i = 1; i < members; i++) {
    dv_mls_join_keys k = {m[i].kp.data, m[i].kp.len, &m[i].ik, &m[i].lk,
                          &m[i].sk};
    DIE(dv_mls_group_join(&m[i].g, welcome.data, welcome.len, &k, NULL));
  }
  record("join from Welcome", now_us() - t, members - 1);

  /* Remove member 2, add member `members` (path commit by member 1). */
  for (int i = 0; i < members; i++) {
    if (i == 2)
      continue;
    dv_buf_reset(&pm);
    proposal(gid, 1, DV_MLS_PROP_REMOVE, 2, NULL, &pm);
    DIE(dv_mls_group_queue_proposal(&m[i].g, pm.data, pm.len, NULL));
    dv_buf_reset(&pm);
    proposal(gid, 1, DV_MLS_PROP_ADD, 0, &m[members].kp, &pm);
    DIE(dv_mls_group_queue_proposal(&m[i].g, pm.data, pm.len, NULL));
  }
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  t = now_us();
  DIE(dv_mls_group_commit(&m[1].g, &commit, &welcome, &next));
  record("commit remove+add (path) + Welcome", now_us() - t, 1);
  dv_mls_group_free(&next);
  t = now_us();
  int procs = 0;
  for (int i = 0; i < members; i++) {
    if (i == 1 || i == 2)
      continue;
    dv_mls_group n2;
    dv_mls_group_init(&n2, &env);
    DIE(dv_mls_group_process_commit(&m[i].g, commit.data, commit.len, &n2));
    dv_mls_group_free(&n2);
    procs++;
  }
  record("process remove+add commit (path)", now_us() - t, procs);

  printf("%-46s %12s\n", "operation", "us/op");
  for (int i = 0; i < n_results; i++)
    printf("%-46s %12.1f\n", results[i].name, results[i].us);
  printf("members %d; add-only commit %zu B, Welcome %zu B, path commit %zu "
         "B\n",
         members, add_commit_len, welcome_len, commit.len);
  printf("{\"bench\":\"mls\",\"members\":%d", members);
  for (int i = 0; i < n_results; i++)
    printf(",\"%s\":%.1f", results[i].name, results[i].us);
  printf("}\n");
  for (int i = 0; i <= members; i++) {
    dv_buf_free(&m[i].kp);
    dv_mls_group_free(&m[i].g);
  }
  free(m);
  dv_buf_free(&pm);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&es_b);
  dv_buf_free(&exts);
  dv_buf_free(&leaf);
  return 0;
}
