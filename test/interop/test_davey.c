/*
 * DAVE groups mixing our MLS clients (C1, C2, C3) and davey clients
 * (@snazzah/davey, openmls, the library discord.js uses; D1..D5, run in a
 * Node child through peers/davey_driver.mjs). This program plays the voice
 * gateway: the EXTERNAL SENDER with its own P-256 key, whose op 25 payload
 * every member gets, and which signs every Add and Remove proposal.
 *   a. C1's group: C1 commits adding D1 and D2; both join from C1's Welcome.
 *   b. D1 commits adding C2 and D3; C1 and D2 process it, C2 and D3 join
 *      from davey's Welcome (D2's own competing commit loses).
 *   c. C2 commits removing D2 (UpdatePath); C1, D1, D3 process it.
 *   d. D3 commits removing C1 (UpdatePath); C2, D1 process it; C1 sees
 *      itself removed.
 *   e. C2 commits removing D1 and adding D4 and C3 (path + Welcome).
 *   f. D3 commits removing D4 and adding D5 (path + Welcome).
 * After each step, for every member: the same epoch, the same epoch
 * authenticator (davey's getEpochAuthenticator), the same roster (davey's
 * getUserIds vs our tree's credentials); our clients have byte-equal
 * MLS-Exporter("Discord Secure Frames v0", LE64 uid, 16) for every member;
 * and, since davey exposes no exporter, each davey member encrypts an Opus
 * frame that every one of our clients decrypts with ITS exporter secret for
 * that sender, and each of our clients encrypts a frame with its exporter
 * secret that every davey member decrypts. A frame opens only if both sides
 * derived the same per-sender secret (AES-GCM tag).
 */
#include "dvt.h"

#include <sodium.h>

#include "dave_fake.h"
#include "mls/mls_codec.h"
#include "mls/mls_group.h"
#include "util/dv_rw.h"

#define CHANNEL 927310423890473011ULL
#define CHANNEL_STR "927310423890473011"
#define RECOGNIZED                                                             \
  "1001,1002,1003,2001,2002,2003,2004,2005" /* every user in the call */

/* Deterministic generator: ChaCha20 keyed by a hash of a seed and a call
 * counter, so every key differs (dvt's counter RNG repeats every 256
 * bytes) and runs are reproducible on our side. */
typedef struct det_rng {
  uint8_t seed[32];
  uint64_t calls;
} det_rng;

static void det_rand(void *ud, uint8_t *dest, size_t len) {
  det_rng *r = ud;
  uint8_t in[40], k[32];
  memcpy(in, r->seed, 32);
  dv_put_u64(in + 32, r->calls++);
  crypto_generichash(k, sizeof k, in, sizeof in, NULL, 0);
  randombytes_buf_deterministic(dest, len, k);
}

typedef struct ours {
  const char *name;
  uint64_t uid;
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik;
  dv_buf kp;
  dv_mls_group g;
  int in;         /* member of the current epoch */
  uint32_t nonce; /* media nonce, increasing over the whole run */
} ours;

typedef struct theirs {
  const char *name;
  const char *uid;
  dv_buf kp;
  int in;
} theirs;

enum { N_OURS = 3, N_THEIRS = 5 };

typedef struct ctx {
  det_rng rng;
  dvoice_env env;
  dvd_gw gw;
  dvd_peer peer;
  ours c[N_OURS];
  theirs d[N_THEIRS];
  dv_buf prop[3], vec, commit, welcome, tmp, tmp2;
  int frames; /* frames checked, both directions */
} ctx;

static const char *script_path(void) {
  static char path[4096];
  const char *dir = getenv("DVOICE_INTEROP_DIR");
  snprintf(path, sizeof path, "%s/peers/davey_driver.mjs",
           dir != NULL ? dir : "test/interop");
  return path;
}

static void call_ok(ctx *x) {
  if (dvd_end(&x->peer) != 0)
    fail_msg("davey: %s", x->peer.f[0] != NULL ? x->peer.f[0] : "peer died");
}

static int setup(void **state) {
  ctx *x = calloc(1, sizeof *x);
  assert_non_null(x);
  memset(x->rng.seed, 0x5a, sizeof x->rng.seed);
  dvoice_env_default(&x->env);
  x->env.rand = det_rand;
  x->env.rand_user_data = &x->rng;
  assert_int_equal(dvd_gw_init(&x->gw, &x->env, CHANNEL), 0);
  static const char *cn[N_OURS] = {"C1", "C2", "C3"};
  for (int i = 0; i < N_OURS; i++) {
    ours *c = &x->c[i];
    c->name = cn[i];
    c->uid = 1001 + (uint64_t)i;
    dv_buf_init(&c->kp, NULL);
    dv_mls_group_init(&c->g, &x->env);
    assert_int_equal(dv_mls_sig_keygen(&x->env, &c->sk), 0);
    assert_int_equal(dv_mls_hpke_keygen(&x->env, &c->lk), 0);
  }
  static const char *dn[N_THEIRS] = {"D1", "D2", "D3", "D4", "D5"};
  static const char *du[N_THEIRS] = {"2001", "2002", "2003", "2004", "2005"};
  for (int i = 0; i < N_THEIRS; i++) {
    x->d[i].name = dn[i];
    x->d[i].uid = du[i];
    dv_buf_init(&x->d[i].kp, NULL);
  }
  for (int i = 0; i < 3; i++)
    dv_buf_init(&x->prop[i], NULL);
  dv_buf_init(&x->vec, NULL);
  dv_buf_init(&x->commit, NULL);
  dv_buf_init(&x->welcome, NULL);
  dv_buf_init(&x->tmp, NULL);
  dv_buf_init(&x->tmp2, NULL);
  assert_int_equal(dvd_start(&x->peer, script_path()), 0);
  *state = x;
  return 0;
}

static int teardown(void **state) {
  ctx *x = *state;
  dvd_stop(&x->peer);
  for (int i = 0; i < N_OURS; i++) {
    dv_buf_free(&x->c[i].kp);
    dv_mls_group_free(&x->c[i].g);
    dv_mls_sig_key_wipe(&x->c[i].sk);
    dv_mls_hpke_key_wipe(&x->c[i].lk);
    dv_mls_hpke_key_wipe(&x->c[i].ik);
  }
  for (int i = 0; i < N_THEIRS; i++)
    dv_buf_free(&x->d[i].kp);
  for (int i = 0; i < 3; i++)
    dv_buf_free(&x->prop[i]);
  dv_buf_free(&x->vec);
  dv_buf_free(&x->commit);
  dv_buf_free(&x->welcome);
  dv_buf_free(&x->tmp);
  dv_buf_free(&x->tmp2);
  dvd_gw_free(&x->gw);
  free(x);
  return 0;
}

/* ---- members ------------------------------------------------------------- */

static void our_key_package(ctx *x, ours *c) {
  dv_buf_reset(&c->kp);
  dv_mls_hpke_key_wipe(&c->ik);
  assert_int_equal(
      dv_mls_dave_key_package(&x->env, c->uid, &c->sk, &c->lk, &c->ik, &c->kp),
      0);
}

/* A new davey session with the gateway's op 25 payload; its KeyPackage must
 * pass our DAVE checks. */
static void their_key_package(ctx *x, theirs *d) {
  dvd_begin(&x->peer, "new", d->name);
  dvd_str(&x->peer, d->uid);
  dvd_str(&x->peer, CHANNEL_STR);
  call_ok(x);
  dvd_begin(&x->peer, "es", d->name);
  dvd_hex(&x->peer, x->gw.es.data, x->gw.es.len);
  call_ok(x);
  dvd_begin(&x->peer, "kp", d->name);
  call_ok(x);
  assert_int_equal(dvd_field_bytes(&x->peer, 0, &d->kp), 0);
  dv_mls_key_package k;
  assert_int_equal(dv_mls_key_package_decode(d->kp.data, d->kp.len, &k), 0);
  assert_int_equal(dv_mls_key_package_verify(NULL, &k, DV_MLS_VALIDATE_DAVE),
                   0);
}

/* Builds op 27's vector from x->prop[0..n) into x->vec. */
static void make_vec(ctx *x, size_t n) {
  dv_buf_reset(&x->vec);
  assert_int_equal(dvd_op27_vector(x->prop, n, &x->vec), 0);
}

/* Op 27 to a davey member; its commit and Welcome land in |commit| and
 * |welcome| (empty if none). */
static void their_proposals(ctx *x, theirs *d, dv_buf *commit,
                            dv_buf *welcome) {
  dvd_begin(&x->peer, "props", d->name);
  dvd_str(&x->peer, "0");
  dvd_hex(&x->peer, x->vec.data, x->vec.len);
  dvd_str(&x->peer, RECOGNIZED);
  call_ok(x);
  assert_int_equal(dvd_field_bytes(&x->peer, 0, commit), 0);
  assert_int_equal(dvd_field_bytes(&x->peer, 1, welcome), 0);
}

/* Op 27 to one of ours: each message is validated and queued. */
static void our_proposals(ctx *x, ours *c, size_t n) {
  for (size_t i = 0; i < n; i++)
    assert_int_equal(dv_mls_group_queue_proposal(&c->g, x->prop[i].data,
                                                 x->prop[i].len, NULL),
                     0);
}

/* Op 27 to every member but |except_ours| / |except_theirs| (the
 * committer, handled by the caller); davey members' own commits lose. */
static void broadcast_proposals(ctx *x, size_t n, const ours *except_ours,
                                const theirs *except_theirs) {
  make_vec(x, n);
  for (int i = 0; i < N_OURS; i++)
    if (x->c[i].in && &x->c[i] != except_ours)
      our_proposals(x, &x->c[i], n);
  for (int i = 0; i < N_THEIRS; i++)
    if (x->d[i].in && &x->d[i] != except_theirs)
      their_proposals(x, &x->d[i], &x->tmp, &x->tmp2);
}

static void adopt(dv_mls_group *g, dv_mls_group *next) {
  dv_mls_group_free(g);
  *g = *next;
  dv_mls_group_init(next, &g->env);
}

/* Op 29 with x->commit to every member but |committer_ours| (which adopts
 * its cached next state itself). Our members in |removed| see themselves
 * removed. */
static void broadcast_commit(ctx *x, const ours *committer_ours) {
  for (int i = 0; i < N_OURS; i++) {
    ours *c = &x->c[i];
    if (!c->in || c == committer_ours)
      continue;
    dv_mls_group next;
    dv_mls_group_init(&next, &x->env);
    int rc = dv_mls_group_process_commit(&c->g, x->commit.data, x->commit.len,
                                         &next);
    if (rc != 0)
      fail_msg("%s: process_commit: %s", c->name, dvoice_strerror(rc));
    adopt(&c->g, &next);
  }
  for (int i = 0; i < N_THEIRS; i++) {
    if (!x->d[i].in)
      continue;
    dvd_begin(&x->peer, "commit", x->d[i].name);
    dvd_hex(&x->peer, x->commit.data, x->commit.len);
    call_ok(x);
  }
}

static void our_join(ctx *x, ours *c) {
  dv_mls_join_keys k = {c->kp.data, c->kp.len, &c->ik, &c->lk, &c->sk, NULL, 0};
  int rc = dv_mls_group_join(&c->g, x->welcome.data, x->welcome.len, &k, NULL);
  if (rc != 0)
    fail_msg("%s: join: %s", c->name, dvoice_strerror(rc));
  assert_int_equal(
      dv_mls_group_external_sender_matches(&c->g, x->gw.es.data, x->gw.es.len),
      0);
  c->in = 1;
}

static void their_join(ctx *x, theirs *d) {
  dvd_begin(&x->peer, "welcome", d->name);
  dvd_hex(&x->peer, x->welcome.data, x->welcome.len);
  call_ok(x);
  d->in = 1;
}

static int commit_has_path(const dv_buf *commit) {
  dv_mls_message m;
  assert_int_equal(dv_mls_message_decode(commit->data, commit->len, &m), 0);
  assert_int_equal(m.pub.content.content_type, DV_MLS_CONTENT_COMMIT);
  return m.pub.content.commit.has_path;
}

/* ---- the comparison ------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
  const char *x = a, *y = b;
  return strcmp(x, y);
}

/* Every member agrees on epoch, epoch authenticator, roster and per-sender
 * exporter secrets (see the file comment). */
static void check_all(ctx *x, const char *step) {
  const ours *ref = NULL;
  for (int i = 0; i < N_OURS && ref == NULL; i++)
    if (x->c[i].in)
      ref = &x->c[i];
  assert_non_null(ref);
  const dv_mls_group *rg = &ref->g;

  /* The roster from our tree, as sorted decimal strings. */
  char ids[16][24];
  uint64_t uids[16];
  int n = 0;
  for (uint32_t l = 0; l < rg->tree.n_leaves; l++) {
    uint64_t uid;
    int rc = dv_mls_group_user_id(rg, l, &uid);
    if (rc == DVOICE_ERR_NOT_FOUND)
      continue;
    assert_int_equal(rc, 0);
    assert_true(n < 16);
    uids[n] = uid;
    snprintf(ids[n], sizeof ids[n], "%llu", (unsigned long long)uid);
    n++;
  }
  char roster[16 * 24] = "";
  char sorted[16][24];
  memcpy(sorted, ids, sizeof ids);
  qsort(sorted, (size_t)n, sizeof sorted[0], cmp_u64);
  for (int i = 0; i < n; i++) {
    if (i > 0)
      strcat(roster, ",");
    strcat(roster, sorted[i]);
  }

  /* Our members: identical state and identical exporter secrets. */
  int members = 0;
  for (int i = 0; i < N_OURS; i++) {
    const ours *c = &x->c[i];
    if (!c->in)
      continue;
    members++;
    assert_int_equal(c->g.epoch, rg->epoch);
    dvt_assert_bytes(c->g.secrets.epoch_authenticator, 32,
                     rg->secrets.epoch_authenticator, 32);
    dvt_assert_bytes(c->g.tree_hash, 32, rg->tree_hash, 32);
    for (int k = 0; k < n; k++) {
      uint8_t a[16], b[16];
      assert_int_equal(dv_mls_group_dave_base_secret(&c->g, uids[k], a), 0);
      assert_int_equal(dv_mls_group_dave_base_secret(rg, uids[k], b), 0);
      dvt_assert_bytes(a, 16, b, 16);
    }
  }

  /* davey members: epoch, authenticator, roster. */
  char epoch[24];
  snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)rg->epoch);
  for (int i = 0; i < N_THEIRS; i++) {
    const theirs *d = &x->d[i];
    if (!d->in)
      continue;
    members++;
    dvd_begin(&x->peer, "state", d->name);
    call_ok(x);
    assert_true(x->peer.n >= 4);
    assert_string_equal(x->peer.f[0], epoch);
    if (strcmp(x->peer.f[3], roster) != 0)
      fail_msg("%s %s: davey roster %s, ours %s", step, d->name, x->peer.f[3],
               roster);
    assert_int_equal(dvd_field_bytes(&x->peer, 2, &x->tmp), 0);
    dvt_assert_bytes(x->tmp.data, x->tmp.len, rg->secrets.epoch_authenticator,
                     32);
  }
  assert_int_equal(members, n);

  /* Media both ways proves the same exporter secret per sender. */
  uint8_t pt[40];
  for (size_t k = 0; k < sizeof pt; k++)
    pt[k] = (uint8_t)(0x78 + 3 * k + rg->epoch);
  for (int i = 0; i < N_THEIRS; i++) {
    const theirs *d = &x->d[i];
    if (!d->in)
      continue;
    dvd_begin(&x->peer, "enc", d->name);
    dvd_hex(&x->peer, pt, sizeof pt);
    call_ok(x);
    dv_buf frame;
    dv_buf_init(&frame, NULL);
    assert_int_equal(dvd_field_bytes(&x->peer, 0, &frame), 0);
    assert_true(frame.len > sizeof pt);
    uint64_t uid = strtoull(d->uid, NULL, 10);
    for (int j = 0; j < N_OURS; j++) {
      if (!x->c[j].in)
        continue;
      uint8_t base[16];
      assert_int_equal(dv_mls_group_dave_base_secret(&x->c[j].g, uid, base), 0);
      dv_buf_reset(&x->tmp);
      int rc = dvd_frame_decrypt(base, frame.data, frame.len, &x->tmp);
      if (rc != 0)
        fail_msg("%s: %s cannot open %s's frame: %s", step, x->c[j].name,
                 d->name, dvoice_strerror(rc));
      dvt_assert_bytes(x->tmp.data, x->tmp.len, pt, sizeof pt);
      /* The check can fail: a wrong secret does not open the frame. */
      base[0] ^= 1;
      dv_buf_reset(&x->tmp);
      assert_int_equal(dvd_frame_decrypt(base, frame.data, frame.len, &x->tmp),
                       DVOICE_ERR_CRYPTO);
      x->frames++;
    }
    dv_buf_free(&frame);
  }
  for (int j = 0; j < N_OURS; j++) {
    ours *c = &x->c[j];
    if (!c->in)
      continue;
    uint8_t base[16];
    assert_int_equal(dv_mls_group_dave_base_secret(&c->g, c->uid, base), 0);
    dv_buf_reset(&x->tmp2);
    assert_int_equal(
        dvd_frame_encrypt(base, ++c->nonce, pt, sizeof pt, &x->tmp2), 0);
    char uid[24];
    snprintf(uid, sizeof uid, "%llu", (unsigned long long)c->uid);
    for (int i = 0; i < N_THEIRS; i++) {
      if (!x->d[i].in)
        continue;
      dvd_begin(&x->peer, "dec", x->d[i].name);
      dvd_str(&x->peer, uid);
      dvd_hex(&x->peer, x->tmp2.data, x->tmp2.len);
      if (dvd_end(&x->peer) != 0)
        fail_msg("%s: %s cannot open %s's frame: %s", step, x->d[i].name,
                 c->name, x->peer.f[0] ? x->peer.f[0] : "peer died");
      assert_int_equal(dvd_field_bytes(&x->peer, 0, &x->tmp), 0);
      dvt_assert_bytes(x->tmp.data, x->tmp.len, pt, sizeof pt);
      x->frames++;
    }
  }
  print_message("# %s: epoch %llu, %d members (%s), authenticators, exporter "
                "secrets and media agree\n",
                step, (unsigned long long)rg->epoch, n, roster);
}

/* ---- the scenario -------------------------------------------------------- */

static void test_mixed_group(void **state) {
  ctx *x = *state;
  dvt_getenv_required("DVOICE_NPM_PEERS");
  ours *C1 = &x->c[0], *C2 = &x->c[1], *C3 = &x->c[2];
  theirs *D1 = &x->d[0], *D2 = &x->d[1], *D3 = &x->d[2], *D4 = &x->d[3],
         *D5 = &x->d[4];
  dv_mls_group next;
  dv_mls_group_init(&next, &x->env);

  /* a. C1 creates the group and commits the Adds of D1 and D2. */
  dv_buf leaf;
  dv_buf_init(&leaf, NULL);
  assert_int_equal(
      dv_mls_dave_leaf_node(&x->env, C1->uid, &C1->sk, &C1->lk, &leaf), 0);
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(x->gw.exts.data, x->gw.exts.len);
  assert_int_equal(dv_mls_group_create(&C1->g, x->gw.group_id, 8, &lb, &C1->sk,
                                       &C1->lk, &eb),
                   0);
  dv_buf_free(&leaf);
  C1->in = 1;
  their_key_package(x, D1);
  their_key_package(x, D2);
  dv_buf_reset(&x->prop[0]);
  dv_buf_reset(&x->prop[1]);
  assert_int_equal(dvd_gw_add(&x->gw, 0, D1->kp.data, D1->kp.len, &x->prop[0]),
                   0);
  assert_int_equal(dvd_gw_add(&x->gw, 0, D2->kp.data, D2->kp.len, &x->prop[1]),
                   0);
  our_proposals(x, C1, 2);
  dv_buf_reset(&x->commit);
  dv_buf_reset(&x->welcome);
  assert_int_equal(dv_mls_group_commit(&C1->g, &x->commit, &x->welcome, &next),
                   0);
  assert_false(commit_has_path(&x->commit));
  adopt(&C1->g, &next);
  their_join(x, D1);
  their_join(x, D2);
  check_all(x, "a (ours adds 2 davey)");

  /* b. D1 commits the Adds of C2 and D3; D2's own commit loses. */
  our_key_package(x, C2);
  their_key_package(x, D3);
  dv_buf_reset(&x->prop[0]);
  dv_buf_reset(&x->prop[1]);
  assert_int_equal(dvd_gw_add(&x->gw, 1, C2->kp.data, C2->kp.len, &x->prop[0]),
                   0);
  assert_int_equal(dvd_gw_add(&x->gw, 1, D3->kp.data, D3->kp.len, &x->prop[1]),
                   0);
  broadcast_proposals(x, 2, NULL, D1);
  their_proposals(x, D1, &x->commit, &x->welcome);
  assert_true(x->commit.len > 0 && x->welcome.len > 0);
  assert_false(commit_has_path(&x->commit));
  broadcast_commit(x, NULL);
  our_join(x, C2);
  their_join(x, D3);
  check_all(x, "b (davey adds ours + davey)");

  /* c. C2 commits the Remove of D2 (leaf 2), with a path. */
  assert_int_equal(dv_mls_group_own_leaf(&C2->g), 3);
  dv_buf_reset(&x->prop[0]);
  assert_int_equal(dvd_gw_remove(&x->gw, 2, 2, &x->prop[0]), 0);
  D2->in = 0;
  broadcast_proposals(x, 1, NULL, NULL);
  dv_buf_reset(&x->commit);
  dv_buf_reset(&x->welcome);
  assert_int_equal(dv_mls_group_commit(&C2->g, &x->commit, &x->welcome, &next),
                   0);
  assert_true(commit_has_path(&x->commit));
  assert_int_equal(x->welcome.len, 0);
  adopt(&C2->g, &next);
  broadcast_commit(x, C2);
  check_all(x, "c (ours removes davey, path)");

  /* d. D3 commits the Remove of C1 (leaf 0), with a path. */
  dv_buf_reset(&x->prop[0]);
  assert_int_equal(dvd_gw_remove(&x->gw, 3, 0, &x->prop[0]), 0);
  broadcast_proposals(x, 1, NULL, D3);
  their_proposals(x, D3, &x->commit, &x->welcome);
  assert_true(x->commit.len > 0);
  assert_true(commit_has_path(&x->commit));
  {
    dv_mls_group gone;
    dv_mls_group_init(&gone, &x->env);
    assert_int_equal(dv_mls_group_process_commit(&C1->g, x->commit.data,
                                                 x->commit.len, &gone),
                     DVOICE_ERR_PROTO);
    dv_mls_group_free(&gone);
  }
  C1->in = 0;
  broadcast_commit(x, NULL);
  check_all(x, "d (davey removes ours, path)");

  /* e. C2 commits Remove D1 + Add D4 + Add C3 (path and Welcome). */
  their_key_package(x, D4);
  our_key_package(x, C3);
  for (int i = 0; i < 3; i++)
    dv_buf_reset(&x->prop[i]);
  assert_int_equal(dvd_gw_remove(&x->gw, 4, 1, &x->prop[0]), 0);
  assert_int_equal(dvd_gw_add(&x->gw, 4, D4->kp.data, D4->kp.len, &x->prop[1]),
                   0);
  assert_int_equal(dvd_gw_add(&x->gw, 4, C3->kp.data, C3->kp.len, &x->prop[2]),
                   0);
  D1->in = 0;
  broadcast_proposals(x, 3, NULL, NULL);
  dv_buf_reset(&x->commit);
  dv_buf_reset(&x->welcome);
  assert_int_equal(dv_mls_group_commit(&C2->g, &x->commit, &x->welcome, &next),
                   0);
  assert_true(commit_has_path(&x->commit));
  adopt(&C2->g, &next);
  broadcast_commit(x, C2);
  their_join(x, D4);
  our_join(x, C3);
  check_all(x, "e (ours removes + adds, path + Welcome)");

  /* f. D3 commits Remove D4 + Add D5 (path and Welcome). */
  their_key_package(x, D5);
  dvd_begin(&x->peer, "state", D4->name);
  call_ok(x);
  uint32_t d4_leaf = (uint32_t)strtoul(x->peer.f[1], NULL, 10);
  for (int i = 0; i < 2; i++)
    dv_buf_reset(&x->prop[i]);
  assert_int_equal(dvd_gw_remove(&x->gw, 5, d4_leaf, &x->prop[0]), 0);
  assert_int_equal(dvd_gw_add(&x->gw, 5, D5->kp.data, D5->kp.len, &x->prop[1]),
                   0);
  D4->in = 0;
  broadcast_proposals(x, 2, NULL, D3);
  their_proposals(x, D3, &x->commit, &x->welcome);
  assert_true(x->commit.len > 0 && x->welcome.len > 0);
  assert_true(commit_has_path(&x->commit));
  broadcast_commit(x, NULL);
  their_join(x, D5);
  check_all(x, "f (davey removes + adds, path + Welcome)");
  print_message("# %d media frames crossed between implementations\n",
                x->frames);
  dv_mls_group_free(&next);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  if (dvt_skip_program_unless("DVOICE_NPM_PEERS", "(run bash .ci/setup)")) {
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mixed_group, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
