/*
 * MLS interop with davey (@snazzah/davey 0.1.12, openmls; the DAVE library
 * discord.js uses), run as a Node child (davey_peer.mjs). We play the
 * gateway (external sender) and one member; davey plays the others:
 *   1. davey joins our Welcome (our add-only commit);
 *   2. we process davey's add-only commit, a second davey joins its Welcome;
 *   3. we process davey's commit removing that member (UpdatePath);
 *   4. davey processes our add-only commit, a third davey joins our Welcome;
 *   5. davey processes our commit removing it (UpdatePath).
 * After each step every member's epoch authenticator must match ours.
 * Needs DVOICE_NPM_PEERS (with @snazzah/davey installed) and node.
 */
#include "dvt.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_group.h"
#include "util/dv_rw.h"

typedef struct peer {
  pid_t pid;
  FILE *in;  /* commands to node */
  FILE *out; /* answers from node */
} peer;

static int peer_start(peer *p, const char *script) {
  int to[2], from[2];
  if (pipe(to) != 0 || pipe(from) != 0)
    return -1;
  p->pid = fork();
  if (p->pid < 0)
    return -1;
  if (p->pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[1]);
    close(from[0]);
    execlp("node", "node", script, (char *)NULL);
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  p->in = fdopen(to[1], "w");
  p->out = fdopen(from[0], "r");
  return p->in != NULL && p->out != NULL ? 0 : -1;
}

static void peer_stop(peer *p) {
  fclose(p->in);
  fclose(p->out);
  int st;
  waitpid(p->pid, &st, 0);
}

/* Sends |cmd| (consumed) and returns the answer (caller decrefs). */
static json_t *rpc(peer *p, json_t *cmd) {
  char *s = json_dumps(cmd, JSON_COMPACT);
  json_decref(cmd);
  assert_non_null(s);
  fprintf(p->in, "%s\n", s);
  fflush(p->in);
  free(s);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, p->out);
  if (n <= 0)
    fail_msg("davey peer died (is @snazzah/davey installed?)");
  json_error_t err;
  json_t *ans = json_loads(line, 0, &err);
  free(line);
  assert_non_null(ans);
  const json_t *e = json_object_get(ans, "error");
  if (e != NULL)
    fail_msg("davey: %s", json_string_value(e));
  return ans;
}

static char *to_hex(const uint8_t *p, size_t n) {
  char *s = malloc(2 * n + 1);
  assert_non_null(s);
  for (size_t i = 0; i < n; i++)
    sprintf(s + 2 * i, "%02x", p[i]);
  s[2 * n] = 0;
  return s;
}

static json_t *cmd(const char *op, const char *name) {
  return json_pack("{ssss}", "op", op, "name", name);
}

static json_t *cmd_hex(const char *op, const char *name, const uint8_t *p,
                       size_t n) {
  char *h = to_hex(p, n);
  json_t *c = json_pack("{ssssss}", "op", op, "name", name, "hex", h);
  free(h);
  return c;
}

/* Returns the hex field |key| of |ans| decoded into |out| (reset first);
 * 0 if it is null. */
static int ans_bytes(const json_t *ans, const char *key, dv_buf *out) {
  dv_buf_reset(out);
  const json_t *v = json_object_get(ans, key);
  if (!json_is_string(v))
    return 0;
  uint8_t *b = NULL;
  size_t n = dvt_unhex(json_string_value(v), &b);
  assert_int_equal(dv_buf_append(out, b, n), 0);
  free(b);
  return 1;
}

static dvoice_env env;
static dv_mls_sig_key gw;
static uint8_t gid[8];
static const char *CHANNEL = "927310423890473011";

static void rand_cb(void *ud, uint8_t *d, size_t n) {
  (void)ud;
  randombytes_buf(d, n);
}

/* The gateway's proposal, as op 27 carries it: the MLSMessage. */
static void proposal(uint64_t epoch, uint16_t type, uint32_t removed,
                     const dv_buf *kp, dv_buf *out) {
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
  assert_int_equal(w.err, 0);
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  assert_int_equal(dv_mls_framed_content_sign(&env, gw.priv, &fcb,
                                              DV_MLS_SENDER_EXTERNAL, NULL, sig,
                                              &sig_len),
                   0);
  dv_buf_reset(out);
  assert_int_equal(dv_mls_public_message_seal(NULL, &fcb, sig, sig_len, NULL,
                                              NULL, NULL, out),
                   0);
  dv_buf_free(&fc);
}

/* Hands the proposal to a davey member (op 27 append: varint length then
 * the message) and returns its commit and welcome (possibly empty). */
static void davey_proposals(peer *p, const char *name, const dv_buf *prop,
                            dv_buf *commit, dv_buf *welcome) {
  dv_buf v;
  dv_buf_init(&v, NULL);
  dv_wr w;
  dv_wr_init(&w, &v);
  dv_wr_opaque(&w, prop->data, prop->len);
  assert_int_equal(w.err, 0);
  json_t *c = cmd_hex("proposals", name, v.data, v.len);
  json_object_set_new(c, "type", json_integer(0));
  json_object_set_new(c, "recognized",
                      json_pack("[ssss]", "1000", "2001", "2002", "2003"));
  json_t *a = rpc(p, c);
  ans_bytes(a, "commit", commit);
  ans_bytes(a, "welcome", welcome);
  json_decref(a);
  dv_buf_free(&v);
}

static void expect_auth(peer *p, const char *name, const dv_mls_group *g) {
  json_t *a = rpc(p, cmd("auth", name));
  dv_buf b;
  dv_buf_init(&b, NULL);
  assert_true(ans_bytes(a, "hex", &b));
  if (b.len != 32 || memcmp(b.data, g->secrets.epoch_authenticator, 32) != 0)
    print_error("%s: epoch authenticator differs at epoch %llu\n", name,
                (unsigned long long)g->epoch);
  dvt_assert_bytes(b.data, b.len, g->secrets.epoch_authenticator, 32);
  assert_int_equal(json_integer_value(json_object_get(a, "epoch")),
                   (json_int_t)g->epoch);
  dv_buf_free(&b);
  json_decref(a);
}

static void new_davey(peer *p, const char *name, const char *uid,
                      const dv_buf *es, dv_buf *kp) {
  json_t *a = rpc(p, json_pack("{ssssssss}", "op", "new", "name", name, "uid",
                               uid, "channel", CHANNEL));
  json_decref(a);
  json_decref(rpc(p, cmd_hex("es", name, es->data, es->len)));
  a = rpc(p, cmd("kp", name));
  assert_true(ans_bytes(a, "hex", kp));
  json_decref(a);
  /* davey's KeyPackage follows DAVE's profile and verifies here. */
  dv_mls_key_package k;
  assert_int_equal(dv_mls_key_package_decode(kp->data, kp->len, &k), 0);
  assert_int_equal(dv_mls_key_package_verify(NULL, &k, DV_MLS_VALIDATE_DAVE),
                   0);
}

static void adopt(dv_mls_group *g, dv_mls_group *next) {
  dv_mls_group_free(g);
  *g = *next;
  dv_mls_group_init(next, &env);
}

static void test_davey(void **state) {
  (void)state;
  const char *peers = dvt_getenv_required("DVOICE_NPM_PEERS");
  const char *dir = getenv("DVOICE_INTEROP_DIR");
  if (peers == NULL || dir == NULL) {
    print_message("# skipped: DVOICE_NPM_PEERS or DVOICE_INTEROP_DIR unset\n");
    skip();
  }
  char script[4096];
  snprintf(script, sizeof script, "%s/davey_peer.mjs", dir);
  peer p;
  assert_int_equal(peer_start(&p, script), 0);

  dvoice_env_default(&env);
  env.rand = rand_cb;
  dv_put_u64(gid, strtoull(CHANNEL, NULL, 10));
  assert_int_equal(dv_mls_sig_keygen(&env, &gw), 0);
  dv_buf es, exts, leaf, kp, prop, commit, welcome;
  dv_buf_init(&es, NULL);
  dv_buf_init(&exts, NULL);
  dv_buf_init(&leaf, NULL);
  dv_buf_init(&kp, NULL);
  dv_buf_init(&prop, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  dv_wr w;
  dv_wr_init(&w, &es);
  dv_wr_opaque(&w, gw.pub, 65);
  dv_wr_u16(&w, DV_MLS_CRED_BASIC);
  dv_wr_varint(&w, 1);
  dv_wr_u8(&w, 0);
  dv_wr_init(&w, &exts);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t m = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, es.data, es.len);
  dv_wr_vec_end(&w, m);
  assert_int_equal(w.err, 0);

  /* Our member, creator of the group, user 1000. */
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk;
  assert_int_equal(dv_mls_sig_keygen(&env, &sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&env, &lk), 0);
  assert_int_equal(dv_mls_dave_leaf_node(&env, 1000, &sk, &lk, &leaf), 0);
  dv_mls_group g, next;
  dv_mls_group_init(&g, &env);
  dv_mls_group_init(&next, &env);
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(exts.data, exts.len);
  assert_int_equal(dv_mls_group_create(&g, gid, 8, &lb, &sk, &lk, &eb), 0);

  /* 1. D1 joins our Welcome. */
  new_davey(&p, "D1", "2001", &es, &kp);
  proposal(0, DV_MLS_PROP_ADD, 0, &kp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("welcome", "D1", welcome.data, welcome.len)));
  expect_auth(&p, "D1", &g);
  print_message("# davey joined our Welcome (epoch 1)\n");

  /* 2. D1 commits the Add of D2; we process it; D2 joins D1's Welcome. */
  new_davey(&p, "D2", "2002", &es, &kp);
  proposal(1, DV_MLS_PROP_ADD, 0, &kp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &commit, &welcome);
  assert_true(commit.len > 0 && welcome.len > 0);
  assert_int_equal(
      dv_mls_group_process_commit(&g, commit.data, commit.len, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D2", welcome.data, welcome.len)));
  expect_auth(&p, "D1", &g);
  expect_auth(&p, "D2", &g);
  print_message("# processed davey's add-only commit (epoch 2)\n");

  /* 3. D1 commits the Remove of D2 (leaf 2), with an UpdatePath. */
  proposal(2, DV_MLS_PROP_REMOVE, 2, NULL, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &commit, &welcome);
  assert_true(commit.len > 0);
  assert_int_equal(
      dv_mls_group_process_commit(&g, commit.data, commit.len, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  expect_auth(&p, "D1", &g);
  print_message("# processed davey's remove commit with a path (epoch 3)\n");

  /* 4. We commit the Add of D3; D1 processes it, D3 joins. */
  new_davey(&p, "D3", "2003", &es, &kp);
  proposal(3, DV_MLS_PROP_ADD, 0, &kp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  dv_buf dc, dw;
  dv_buf_init(&dc, NULL);
  dv_buf_init(&dw, NULL);
  davey_proposals(&p, "D1", &prop, &dc, &dw); /* D1's own commit loses */
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D3", welcome.data, welcome.len)));
  expect_auth(&p, "D1", &g);
  expect_auth(&p, "D3", &g);
  print_message("# davey processed our add-only commit (epoch 4)\n");

  /* 5. We commit the Remove of D3 (leaf 2) with a path; D1 processes. */
  proposal(4, DV_MLS_PROP_REMOVE, 2, NULL, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &dc, &dw);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  expect_auth(&p, "D1", &g);
  print_message("# davey processed our remove commit with a path (epoch "
                "5)\n");

  /* 6. We add D4 (add-only), then 7. remove D4 and add D5 in one commit:
   * D5 joins a Welcome carrying a path secret; D1 processes the path. */
  new_davey(&p, "D4", "2002", &es, &kp);
  proposal(5, DV_MLS_PROP_ADD, 0, &kp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &dc, &dw);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D4", welcome.data, welcome.len)));
  expect_auth(&p, "D4", &g);
  new_davey(&p, "D5", "2003", &es, &kp);
  dv_buf prop2;
  dv_buf_init(&prop2, NULL);
  proposal(6, DV_MLS_PROP_REMOVE, 2, NULL, &prop);
  proposal(6, DV_MLS_PROP_ADD, 0, &kp, &prop2);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop2.data, prop2.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &dc, &dw);
  davey_proposals(&p, "D1", &prop2, &dc, &dw);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D5", welcome.data, welcome.len)));
  expect_auth(&p, "D1", &g);
  expect_auth(&p, "D5", &g);
  dv_buf_free(&prop2);
  print_message("# davey joined our path commit's Welcome (path secret) and "
                "processed it (epoch 7)\n");

  peer_stop(&p);
  dv_mls_group_free(&g);
  dv_mls_group_free(&next);
  dv_buf_free(&es);
  dv_buf_free(&exts);
  dv_buf_free(&leaf);
  dv_buf_free(&kp);
  dv_buf_free(&prop);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&dc);
  dv_buf_free(&dw);
}

/* davey creates the group (its pending epoch-0 group wins): we join its
 * Welcome, then process its next add-only commit, then davey processes our
 * path commit removing the member it added. */
static void test_davey_creates(void **state) {
  (void)state;
  const char *peers = dvt_getenv_required("DVOICE_NPM_PEERS");
  const char *dir = getenv("DVOICE_INTEROP_DIR");
  if (peers == NULL || dir == NULL) {
    print_message("# skipped: DVOICE_NPM_PEERS or DVOICE_INTEROP_DIR unset\n");
    skip();
  }
  char script[4096];
  snprintf(script, sizeof script, "%s/davey_peer.mjs", dir);
  peer p;
  assert_int_equal(peer_start(&p, script), 0);
  dvoice_env_default(&env);
  env.rand = rand_cb;
  dv_put_u64(gid, strtoull(CHANNEL, NULL, 10));
  assert_int_equal(dv_mls_sig_keygen(&env, &gw), 0);
  dv_buf es, kp, dkp, prop, commit, welcome;
  dv_buf_init(&es, NULL);
  dv_buf_init(&kp, NULL);
  dv_buf_init(&dkp, NULL);
  dv_buf_init(&prop, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  dv_wr w;
  dv_wr_init(&w, &es);
  dv_wr_opaque(&w, gw.pub, 65);
  dv_wr_u16(&w, DV_MLS_CRED_BASIC);
  dv_wr_varint(&w, 1);
  dv_wr_u8(&w, 0);
  assert_int_equal(w.err, 0);

  /* Our KeyPackage (user 1000); davey D1 proposes nothing itself. */
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk, ik;
  assert_int_equal(dv_mls_sig_keygen(&env, &sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&env, &lk), 0);
  assert_int_equal(dv_mls_dave_key_package(&env, 1000, &sk, &lk, &ik, &kp), 0);
  new_davey(&p, "D1", "2001", &es, &dkp);
  proposal(0, DV_MLS_PROP_ADD, 0, &kp, &prop);
  davey_proposals(&p, "D1", &prop, &commit, &welcome);
  assert_true(commit.len > 0 && welcome.len > 0);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  dv_mls_group g, next;
  dv_mls_group_init(&g, &env);
  dv_mls_group_init(&next, &env);
  dv_mls_join_keys keys = {kp.data, kp.len, &ik, &lk, &sk};
  assert_int_equal(
      dv_mls_group_join(&g, welcome.data, welcome.len, &keys, NULL), 0);
  assert_int_equal(dv_mls_group_external_sender_matches(&g, es.data, es.len),
                   0);
  expect_auth(&p, "D1", &g);
  print_message("# joined davey's Welcome (epoch %llu, our leaf %u)\n",
                (unsigned long long)g.epoch, dv_mls_group_own_leaf(&g));

  /* D1 adds D2; we process. */
  new_davey(&p, "D2", "2002", &es, &dkp);
  proposal(g.epoch, DV_MLS_PROP_ADD, 0, &dkp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &commit, &welcome);
  assert_int_equal(
      dv_mls_group_process_commit(&g, commit.data, commit.len, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D2", welcome.data, welcome.len)));
  expect_auth(&p, "D1", &g);
  expect_auth(&p, "D2", &g);

  /* We remove D2 with a path; D1 processes our commit. */
  json_t *a = rpc(&p, cmd("auth", "D2"));
  uint32_t d2_leaf = (uint32_t)json_integer_value(json_object_get(a, "leaf"));
  json_decref(a);
  proposal(g.epoch, DV_MLS_PROP_REMOVE, d2_leaf, NULL, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  dv_buf dc, dw;
  dv_buf_init(&dc, NULL);
  dv_buf_init(&dw, NULL);
  davey_proposals(&p, "D1", &prop, &dc, &dw);
  dv_buf_reset(&commit);
  dv_buf_reset(&welcome);
  assert_int_equal(dv_mls_group_commit(&g, &commit, &welcome, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  expect_auth(&p, "D1", &g);
  print_message("# davey processed our path commit (epoch %llu)\n",
                (unsigned long long)g.epoch);

  /* D1 adds D3; then D1 removes D3 and adds our second member (user 2002)
   * in one path commit: we process it, our second member joins its
   * Welcome with the path secret. */
  new_davey(&p, "D3", "2003", &es, &dkp);
  proposal(g.epoch, DV_MLS_PROP_ADD, 0, &dkp, &prop);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &commit, &welcome);
  assert_int_equal(
      dv_mls_group_process_commit(&g, commit.data, commit.len, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  json_decref(rpc(&p, cmd_hex("welcome", "D3", welcome.data, welcome.len)));
  a = rpc(&p, cmd("auth", "D3"));
  uint32_t d3_leaf = (uint32_t)json_integer_value(json_object_get(a, "leaf"));
  json_decref(a);
  dv_mls_sig_key sk2;
  dv_mls_hpke_key lk2, ik2;
  dv_buf kp2, prop2;
  dv_buf_init(&kp2, NULL);
  dv_buf_init(&prop2, NULL);
  assert_int_equal(dv_mls_sig_keygen(&env, &sk2), 0);
  assert_int_equal(dv_mls_hpke_keygen(&env, &lk2), 0);
  assert_int_equal(dv_mls_dave_key_package(&env, 2002, &sk2, &lk2, &ik2, &kp2),
                   0);
  proposal(g.epoch, DV_MLS_PROP_REMOVE, d3_leaf, NULL, &prop);
  proposal(g.epoch, DV_MLS_PROP_ADD, 0, &kp2, &prop2);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop.data, prop.len, NULL),
                   0);
  assert_int_equal(dv_mls_group_queue_proposal(&g, prop2.data, prop2.len, NULL),
                   0);
  davey_proposals(&p, "D1", &prop, &dc, &dw);
  davey_proposals(&p, "D1", &prop2, &commit, &welcome);
  assert_true(commit.len > 0 && welcome.len > 0);
  assert_int_equal(
      dv_mls_group_process_commit(&g, commit.data, commit.len, &next), 0);
  adopt(&g, &next);
  json_decref(rpc(&p, cmd_hex("commit", "D1", commit.data, commit.len)));
  dv_mls_group g2;
  dv_mls_group_init(&g2, &env);
  dv_mls_join_keys keys2 = {kp2.data, kp2.len, &ik2, &lk2, &sk2};
  assert_int_equal(
      dv_mls_group_join(&g2, welcome.data, welcome.len, &keys2, NULL), 0);
  assert_memory_equal(g2.secrets.epoch_authenticator,
                      g.secrets.epoch_authenticator, 32);
  expect_auth(&p, "D1", &g);
  print_message("# processed davey's remove+add path commit; joined its "
                "Welcome with a path secret (epoch %llu)\n",
                (unsigned long long)g.epoch);
  dv_mls_group_free(&g2);
  dv_buf_free(&kp2);
  dv_buf_free(&prop2);

  peer_stop(&p);
  dv_mls_group_free(&g);
  dv_mls_group_free(&next);
  dv_buf_free(&es);
  dv_buf_free(&kp);
  dv_buf_free(&dkp);
  dv_buf_free(&prop);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  dv_buf_free(&dc);
  dv_buf_free(&dw);
}

int main(void) {
  /* Without the npm peers (and outside CI) the whole test is skipped; see
   * cvec_skip_all_unless for why this is not a cmocka skip. */
  const char *ci = getenv("CI");
  const char *peers = getenv("DVOICE_NPM_PEERS");
  if ((ci == NULL || *ci == 0 || strcmp(ci, "false") == 0) &&
      (peers == NULL || *peers == 0)) {
    printf("1..0 # SKIP DVOICE_NPM_PEERS unset\n");
    return 0;
  }
  if (sodium_init() < 0)
    return 1;
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_davey),
      cmocka_unit_test(test_davey_creates),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
