/*
 * Our MLS (lib/mls) against davey (@snazzah/davey 0.1.12: openmls in Rust,
 * through its Node binding) on the same operations, in the same run, on
 * DAVE groups of N = 2, 10, 50 and 100 members. This program is the
 * gateway (external sender); davey runs in a Node child
 * (test/interop/peers/davey_driver.mjs) that times only the davey call.
 * For each N:
 *   welcome         join a group of N from a Welcome: davey processWelcome
 *                   vs dv_mls_group_join plus the N per-sender exporter
 *                   secrets (davey derives its decryptors' keys inside).
 *   commit_add      an external Add proposal to a member of the N group:
 *                   davey processProposals (checks + commit + Welcome) vs
 *                   dv_mls_group_queue_proposal + dv_mls_group_commit.
 *   process_add     the other side's add-only commit: davey processCommit
 *                   vs dv_mls_group_process_commit + exporter secrets.
 *   commit_remove   the Remove of that member (an UpdatePath), as above.
 *   process_remove  the other side's remove commit (path), as above.
 * Then ECDSA verification and ECDH: mbedTLS (what lib/mls uses) against
 * lib/p256.
 * Medians of R rounds of CPU time (both sides); ratio = ours / davey
 * (below 1: we are faster).
 * Usage: bench_mls_davey [rounds]   (default 5). Needs node and
 * DVOICE_NPM_PEERS (default: <source>/.npm-peers, from bash .ci/setup).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "dave_fake.h"
#include "mls/mls_codec.h"
#include "mls/mls_group.h"
#include "p256/dv_p256.h"
#include "util/dv_rw.h"

#ifndef DV_SOURCE_ROOT
#define DV_SOURCE_ROOT "."
#endif

#define DIE(x)                                                                 \
  do {                                                                         \
    int rc_ = (x);                                                             \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "%s:%d: %s: %d\n", __FILE__, __LINE__, #x, rc_);         \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

/* CPU time of this (single-threaded) process: the machine is shared, so
 * wall time would measure the neighbours. davey's side is measured the same
 * way (process.cpuUsage around the call). */
static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void rand_cb(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  randombytes_buf(dest, len);
}

static dvoice_env env;
static dvd_peer peer;

static void davey(void) {
  if (dvd_end(&peer) != 0) {
    fprintf(stderr, "davey: %s\n", peer.f[0] ? peer.f[0] : "peer died");
    exit(1);
  }
}

enum {
  OP_WELCOME,
  OP_COMMIT_ADD,
  OP_PROCESS_ADD,
  OP_COMMIT_RM,
  OP_PROCESS_RM,
  N_OPS
};
static const char *op_names[N_OPS] = {"welcome", "commit_add", "process_add",
                                      "commit_remove", "process_remove"};

#define MAX_ROUNDS 20
typedef struct samples {
  double ours[N_OPS][MAX_ROUNDS], theirs[N_OPS][MAX_ROUNDS];
  /* HPKE ciphertexts in the remove commits: the committer's position and
   * the tree's blank nodes decide how many path secrets it encrypts. */
  double seals_ours[MAX_ROUNDS], seals_theirs[MAX_ROUNDS];
} samples;

/* Number of encrypted path secrets (HPKE seals) in a commit. */
static double count_seals(const dv_buf *commit) {
  dv_mls_message m;
  DIE(dv_mls_message_decode(commit->data, commit->len, &m));
  if (!m.pub.content.commit.has_path)
    return 0;
  double n = 0;
  dv_mls_iter it;
  dv_mls_iter_init(&it, &m.pub.content.commit.path.nodes);
  dv_mls_update_path_node node;
  while (dv_mls_next_update_path_node(&it, &node) == 1) {
    dv_mls_iter ct;
    dv_mls_iter_init(&ct, &node.encrypted_path_secret);
    dv_mls_hpke_ciphertext c;
    while (dv_mls_next_hpke_ciphertext(&ct, &c) == 1)
      n++;
  }
  return n;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct our_member {
  uint64_t uid;
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik;
  dv_buf kp;
} our_member;

static void our_member_new(our_member *m, uint64_t uid) {
  m->uid = uid;
  DIE(dv_mls_sig_keygen(&env, &m->sk));
  DIE(dv_mls_hpke_keygen(&env, &m->lk));
  dv_buf_init(&m->kp, NULL);
  DIE(dv_mls_dave_key_package(&env, uid, &m->sk, &m->lk, &m->ik, &m->kp));
}

static void our_member_free(our_member *m) {
  dv_buf_free(&m->kp);
  dv_mls_sig_key_wipe(&m->sk);
  dv_mls_hpke_key_wipe(&m->lk);
  dv_mls_hpke_key_wipe(&m->ik);
}

/* What a DAVE client derives after each transition: every member's media
 * base secret. */
static void all_base_secrets(const dv_mls_group *g) {
  for (uint32_t l = 0; l < g->tree.n_leaves; l++) {
    uint64_t uid;
    uint8_t b[16];
    if (dv_mls_group_user_id(g, l, &uid) == 0)
      DIE(dv_mls_group_dave_base_secret(g, uid, b));
  }
}

static uint32_t leaf_of(const dv_mls_group *g, uint64_t uid) {
  for (uint32_t l = 0; l < g->tree.n_leaves; l++) {
    uint64_t u;
    if (dv_mls_group_user_id(g, l, &u) == 0 && u == uid)
      return l;
  }
  fprintf(stderr, "uid %llu not in the group\n", (unsigned long long)uid);
  exit(1);
}

static void davey_new(const char *name, const char *uid, const dvd_gw *gw,
                      const char *channel, dv_buf *kp) {
  dvd_begin(&peer, "new", name);
  dvd_str(&peer, uid);
  dvd_str(&peer, channel);
  davey();
  dvd_begin(&peer, "es", name);
  dvd_hex(&peer, gw->es.data, gw->es.len);
  davey();
  dvd_begin(&peer, "kp", name);
  davey();
  DIE(dvd_field_bytes(&peer, 0, kp));
}

/* One external proposal |msg| to davey member |name| (op 27 append);
 * returns its commit in |commit|; times it. */
static double davey_props(const char *name, const dv_buf *msg, dv_buf *commit) {
  dv_buf vec;
  dv_buf_init(&vec, NULL);
  DIE(dvd_op27_vector(msg, 1, &vec));
  dvd_begin(&peer, "props", name);
  dvd_str(&peer, "0");
  dvd_hex(&peer, vec.data, vec.len);
  dvd_str(&peer, "-");
  davey();
  dv_buf_free(&vec);
  DIE(dvd_field_bytes(&peer, 0, commit));
  if (commit->len == 0) {
    fprintf(stderr, "davey made no commit\n");
    exit(1);
  }
  return peer.us;
}

static double davey_call(const char *op, const char *name, const dv_buf *b) {
  dvd_begin(&peer, op, name);
  dvd_hex(&peer, b->data, b->len);
  davey();
  return peer.us;
}

static void bench_size(int n, int rounds, samples *s, size_t sizes[4]) {
  char channel[24];
  uint64_t channel_id = 900000000000000000ULL + (uint64_t)n;
  snprintf(channel, sizeof channel, "%llu", (unsigned long long)channel_id);
  dvd_gw gw;
  DIE(dvd_gw_init(&gw, &env, channel_id));
  dv_buf prop, commit, welcome, dkp;
  dv_buf_init(&prop, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  dv_buf_init(&dkp, NULL);

  /* A (uid 1) creates the group; N-2 fillers (ours, never joining) are
   * queued; then the joiner makes N. */
  our_member a;
  our_member_new(&a, 1);
  dv_buf leaf;
  dv_buf_init(&leaf, NULL);
  DIE(dv_mls_dave_leaf_node(&env, a.uid, &a.sk, &a.lk, &leaf));
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(gw.exts.data, gw.exts.len);
  dv_mls_group base, g, next;
  dv_mls_group_init(&base, &env);
  dv_mls_group_init(&g, &env);
  dv_mls_group_init(&next, &env);
  DIE(dv_mls_group_create(&base, gw.group_id, 8, &lb, &a.sk, &a.lk, &eb));
  for (int i = 0; i < n - 2; i++) {
    our_member f;
    our_member_new(&f, 100 + (uint64_t)i);
    dv_buf_reset(&prop);
    DIE(dvd_gw_add(&gw, 0, f.kp.data, f.kp.len, &prop));
    DIE(dv_mls_group_queue_proposal(&base, prop.data, prop.len, NULL));
    our_member_free(&f);
  }

  /* welcome: davey joiners J0..J(R-1), each from its own commit of the
   * same base, so each round below runs on a fresh group of N of the same
   * shape (A's state forks[r] with J_r): the committers then encrypt the
   * same number of path secrets, whatever their leaf. */
  dv_mls_group forks[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++) {
    char name[16], uid[16];
    snprintf(name, sizeof name, "J%d", r);
    snprintf(uid, sizeof uid, "%d", 2000 + r);
    davey_new(name, uid, &gw, channel, &dkp);
    dv_mls_group tmp;
    dv_mls_group_init(&tmp, &env);
    DIE(dv_mls_group_copy(&tmp, &base));
    dv_buf_reset(&prop);
    DIE(dvd_gw_add(&gw, 0, dkp.data, dkp.len, &prop));
    DIE(dv_mls_group_queue_proposal(&tmp, prop.data, prop.len, NULL));
    dv_buf_reset(&commit);
    dv_buf_reset(&welcome);
    dv_mls_group_init(&forks[r], &env);
    DIE(dv_mls_group_commit(&tmp, &commit, &welcome, &forks[r]));
    dv_mls_group_free(&tmp);
    s->theirs[OP_WELCOME][r] = davey_call("welcome", name, &welcome);
    sizes[0] = welcome.len;
  }
  /* Our joiner, R times on one Welcome of the same shape. */
  {
    our_member j;
    our_member_new(&j, 3000);
    dv_mls_group tmp, joined;
    dv_mls_group_init(&tmp, &env);
    dv_mls_group_init(&joined, &env);
    DIE(dv_mls_group_copy(&tmp, &base));
    dv_buf_reset(&prop);
    DIE(dvd_gw_add(&gw, 0, j.kp.data, j.kp.len, &prop));
    DIE(dv_mls_group_queue_proposal(&tmp, prop.data, prop.len, NULL));
    dv_buf_reset(&commit);
    dv_buf_reset(&welcome);
    DIE(dv_mls_group_commit(&tmp, &commit, &welcome, &next));
    dv_mls_group_free(&next);
    dv_mls_group_free(&tmp);
    dv_mls_join_keys k = {j.kp.data, j.kp.len, &j.ik, &j.lk, &j.sk, NULL, 0};
    for (int r = 0; r < rounds; r++) {
      double t = now_us();
      DIE(dv_mls_group_join(&joined, welcome.data, welcome.len, &k, NULL));
      all_base_secrets(&joined);
      s->ours[OP_WELCOME][r] = now_us() - t;
      dv_mls_group_free(&joined);
    }
    our_member_free(&j);
  }

  /* Commit rounds, round r in fork r (A = our committer, J_r = davey's):
   * add K (no path), then remove K (path). Each side creates its commit
   * for the same proposal; each processes the other's; ours wins. */
  for (int r = 0; r < rounds; r++) {
    char jname[16];
    snprintf(jname, sizeof jname, "J%d", r);
    dv_mls_group_free(&g);
    g = forks[r];
    our_member k;
    our_member_new(&k, 5000 + (uint64_t)r);
    for (int rm = 0; rm < 2; rm++) {
      int op_c = rm ? OP_COMMIT_RM : OP_COMMIT_ADD;
      int op_p = rm ? OP_PROCESS_RM : OP_PROCESS_ADD;
      dv_buf_reset(&prop);
      if (rm)
        DIE(dvd_gw_remove(&gw, g.epoch, leaf_of(&g, k.uid), &prop));
      else
        DIE(dvd_gw_add(&gw, g.epoch, k.kp.data, k.kp.len, &prop));
      dv_buf dcommit;
      dv_buf_init(&dcommit, NULL);
      s->theirs[op_c][r] = davey_props(jname, &prop, &dcommit);
      dv_buf_reset(&commit);
      dv_buf_reset(&welcome);
      double t = now_us();
      DIE(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL));
      DIE(dv_mls_group_commit(&g, &commit, &welcome, &next));
      s->ours[op_c][r] = now_us() - t;
      dv_mls_group proc;
      dv_mls_group_init(&proc, &env);
      t = now_us();
      DIE(dv_mls_group_process_commit(&g, dcommit.data, dcommit.len, &proc));
      all_base_secrets(&proc);
      s->ours[op_p][r] = now_us() - t;
      dv_mls_group_free(&proc);
      s->theirs[op_p][r] = davey_call("commit", jname, &commit);
      sizes[rm ? 3 : 2] = commit.len;
      if (rm) {
        s->seals_ours[r] = count_seals(&commit);
        s->seals_theirs[r] = count_seals(&dcommit);
      }
      if (!rm)
        sizes[1] = welcome.len;
      dv_mls_group_free(&g);
      g = next;
      dv_mls_group_init(&next, &env);
      dv_buf_free(&dcommit);
    }
    our_member_free(&k);
    /* Both ended in the same epoch: the comparison ran on real groups. */
    dvd_begin(&peer, "state", jname);
    davey();
    dv_buf auth;
    dv_buf_init(&auth, NULL);
    DIE(dvd_field_bytes(&peer, 2, &auth));
    if (auth.len != 32 ||
        memcmp(auth.data, g.secrets.epoch_authenticator, 32) != 0) {
      fprintf(stderr, "N=%d: davey's epoch authenticator differs\n", n);
      exit(1);
    }
    dv_buf_free(&auth);
    dvd_begin(&peer, "free", jname);
    davey();
  }

  dv_mls_group_free(&base);
  dv_mls_group_free(&g);
  dv_mls_group_free(&next);
  our_member_free(&a);
  dv_buf_free(&leaf);
  dv_buf_free(&prop);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&dkp);
  dvd_gw_free(&gw);
}

/* ECDSA P-256 verification, the bulk of joining and of proposal checks:
 * the verifier lib/mls uses today (mbedTLS) against lib/p256. */
static double verify_mbed_us, verify_p256_us, ecdh_mbed_us, ecdh_p256_us,
    keygen_mbed_us, keygen_p256_us;
static void bench_verify(void) {
  dv_mls_sig_key k;
  DIE(dv_mls_sig_keygen(&env, &k));
  uint8_t msg[300], sig[DV_MLS_SIG_MAX], h[32];
  memset(msg, 3, sizeof msg);
  size_t sig_len;
  DIE(dv_mls_sign_with_label(&env, k.priv, "LeafNodeTBS", msg, sizeof msg, sig,
                             &sig_len));
  const int iters = 200;
  double t = now_us();
  for (int i = 0; i < iters; i++)
    DIE(dv_mls_verify_with_label(k.pub, 65, "LeafNodeTBS", msg, sizeof msg, sig,
                                 sig_len));
  verify_mbed_us = (now_us() - t) / iters;
  /* The same check: SignContent hash, then the fast verifier. */
  dv_buf sc;
  dv_buf_init(&sc, NULL);
  dv_wr w;
  dv_wr_init(&w, &sc);
  dv_wr_opaque(&w, "MLS 1.0 LeafNodeTBS", 19);
  dv_wr_opaque(&w, msg, sizeof msg);
  DIE(w.err);
  t = now_us();
  for (int i = 0; i < iters; i++) {
    DIE(dv_mls_hash(sc.data, sc.len, h));
    DIE(dv_p256_verify(k.pub, 65, h, sig, sig_len));
  }
  verify_p256_us = (now_us() - t) / iters;
  dv_buf_free(&sc);
  /* ECDH (HPKE Encap/Decap, twice per seal with the key generation). */
  dv_mls_hpke_key hk;
  DIE(dv_mls_hpke_keygen(&env, &hk));
  uint8_t shared[32], pt[65];
  t = now_us();
  for (int i = 0; i < iters; i++)
    DIE(dv_mls_ecdh(&env, k.priv, hk.pub, 65, shared));
  ecdh_mbed_us = (now_us() - t) / iters;
  t = now_us();
  for (int i = 0; i < iters; i++)
    DIE(dv_p256_mul(pt, k.priv, hk.pub, 65));
  ecdh_p256_us = (now_us() - t) / iters;
  if (memcmp(pt + 1, shared, 32) != 0) {
    fprintf(stderr, "ECDH results differ\n");
    exit(1);
  }
  /* Key generation (one per HPKE seal): scalar times G. */
  t = now_us();
  for (int i = 0; i < iters; i++)
    DIE(dv_mls_hpke_keygen(&env, &hk));
  keygen_mbed_us = (now_us() - t) / iters;
  t = now_us();
  for (int i = 0; i < iters; i++)
    DIE(dv_p256_mul(pt, hk.priv, NULL, 0));
  keygen_p256_us = (now_us() - t) / iters;
  if (memcmp(pt, hk.pub, 65) != 0) {
    fprintf(stderr, "public keys differ\n");
    exit(1);
  }
  printf("P-256 key generation (k G): mbedTLS %.1f us, lib/p256 %.1f us "
         "(%.1fx)\n",
         keygen_mbed_us, keygen_p256_us, keygen_mbed_us / keygen_p256_us);
  dv_mls_hpke_key_wipe(&hk);
  dv_mls_sig_key_wipe(&k);
  printf("P-256 ECDH (constant time): mbedTLS %.1f us, lib/p256 %.1f us "
         "(%.1fx)\n",
         ecdh_mbed_us, ecdh_p256_us, ecdh_mbed_us / ecdh_p256_us);
  printf("ECDSA P-256 verify (SignWithLabel): mbedTLS %.1f us, lib/p256 "
         "%.1f us (%.1fx)\n",
         verify_mbed_us, verify_p256_us, verify_mbed_us / verify_p256_us);
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  if (rounds < 1 || rounds > MAX_ROUNDS || sodium_init() < 0)
    return 2;
  dvoice_env_default(&env);
  env.rand = rand_cb;
  if (getenv("DVOICE_NPM_PEERS") == NULL)
    setenv("DVOICE_NPM_PEERS", DV_SOURCE_ROOT "/.npm-peers", 1);
  if (dvd_start(&peer, DV_SOURCE_ROOT "/test/interop/peers/davey_driver.mjs") !=
      0) {
    fprintf(stderr, "cannot start node\n");
    return 1;
  }
  static const int sizes_n[] = {2, 10, 50, 100};
  enum { N_SIZES = 4 };
  static samples s[N_SIZES];
  size_t bytes[N_SIZES][4];
  double mo[N_SIZES][N_OPS], mt[N_SIZES][N_OPS], so[N_SIZES], st[N_SIZES];
  for (int i = 0; i < N_SIZES; i++) {
    bench_size(sizes_n[i], rounds, &s[i], bytes[i]);
    for (int o = 0; o < N_OPS; o++) {
      mo[i][o] = median(s[i].ours[o], rounds);
      mt[i][o] = median(s[i].theirs[o], rounds);
    }
    so[i] = median(s[i].seals_ours, rounds);
    st[i] = median(s[i].seals_theirs, rounds);
  }
  dvd_stop(&peer);

  printf("median of %d rounds, CPU microseconds; ratio = ours / davey\n",
         rounds);
  printf("%-4s %-15s %12s %12s %7s\n", "N", "operation", "dvoice", "davey",
         "ratio");
  for (int i = 0; i < N_SIZES; i++)
    for (int o = 0; o < N_OPS; o++)
      printf("%-4d %-15s %12.1f %12.1f %7.2f\n", sizes_n[i], op_names[o],
             mo[i][o], mt[i][o], mo[i][o] / mt[i][o]);
  for (int i = 0; i < N_SIZES; i++)
    printf("N=%d: remove commits encrypt %.0f (dvoice) and %.0f (davey) path "
           "secrets: %.0f vs %.0f us per HPKE seal and its share\n",
           sizes_n[i], so[i], st[i],
           so[i] > 0 ? mo[i][OP_COMMIT_RM] / so[i] : 0,
           st[i] > 0 ? mt[i][OP_COMMIT_RM] / st[i] : 0);
  bench_verify();
  for (int i = 0; i < N_SIZES; i++)
    printf("N=%d: Welcome %zu B (join), %zu B (add); add commit %zu B, "
           "remove commit %zu B\n",
           sizes_n[i], bytes[i][0], bytes[i][1], bytes[i][2], bytes[i][3]);
  printf("{\"bench\":\"mls_davey\",\"rounds\":%d,\"unit\":\"us\",\"sizes\":[",
         rounds);
  for (int i = 0; i < N_SIZES; i++) {
    printf("%s{\"members\":%d,\"remove_seals\":{\"dvoice\":%.0f,"
           "\"davey\":%.0f}",
           i ? "," : "", sizes_n[i], so[i], st[i]);
    for (int o = 0; o < N_OPS; o++)
      printf(",\"%s\":{\"dvoice\":%.1f,\"davey\":%.1f,\"ratio\":%.3f}",
             op_names[o], mo[i][o], mt[i][o], mo[i][o] / mt[i][o]);
    printf("}");
  }
  printf("],\"verify_mbedtls\":%.1f,\"verify_p256\":%.1f}\n", verify_mbed_us,
         verify_p256_us);
  return 0;
}
