/*
 * Fuzz target: group-level processing of peer bytes on a fixed two-member
 * group (built once, deterministically). The first input byte selects:
 *   0: an external proposal (op 27 append) queued into member B,
 *   1: a commit processed by B (B has a Remove and an Add queued),
 *   2: a Welcome joined by a prepared KeyPackage owner,
 * and the rest is the message. Nothing may crash, over-read or leak; a
 * successful result is undone so every input sees the same state.
 * With FUZZ_MLS_GROUP_SEEDS=<dir> set, the first call writes one valid
 * seed per mode into <dir>, named by SHA-256.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_group.h"
#include "util/dv_rw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A deterministic, non-repeating random stream (SHA-256 of a counter). */
static uint64_t rand_ctr = 1;
static void hash_rand(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  while (len > 0) {
    uint8_t blk[32];
    dv_mls_hash((const uint8_t *)&rand_ctr, sizeof rand_ctr, blk);
    rand_ctr++;
    size_t take = len < sizeof blk ? len : sizeof blk;
    memcpy(dest, blk, take);
    dest += take;
    len -= take;
  }
}

typedef struct fstate {
  int ready;
  dvoice_env env;
  dv_mls_sig_key gw;
  dv_mls_group b;
  dv_mls_sig_key d_sk;
  dv_mls_hpke_key d_lk, d_ik;
  dv_buf d_kp;
  dv_buf seed_prop, seed_commit, seed_welcome;
} fstate;

static fstate S;

#define CHECK(x)                                                               \
  do {                                                                         \
    int rc_ = (x);                                                             \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "%s:%d: error %d\n", __FILE__, __LINE__, rc_);           \
      abort();                                                                 \
    }                                                                          \
  } while (0)

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
  CHECK(w.err);
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  CHECK(dv_mls_framed_content_sign(
      &S.env, S.gw.priv, &fcb, DV_MLS_SENDER_EXTERNAL, NULL, sig, &sig_len));
  CHECK(dv_mls_public_message_seal(NULL, &fcb, sig, sig_len, NULL, NULL, NULL,
                                   out));
  dv_buf_free(&fc);
}

static void member_kp(uint64_t uid, dv_mls_sig_key *sk, dv_mls_hpke_key *lk,
                      dv_mls_hpke_key *ik, dv_buf *kp) {
  CHECK(dv_mls_sig_keygen(&S.env, sk));
  CHECK(dv_mls_hpke_keygen(&S.env, lk));
  dv_buf_init(kp, NULL);
  CHECK(dv_mls_dave_key_package(&S.env, uid, sk, lk, ik, kp));
}

static void write_seed(const char *dir, uint8_t mode, const dv_buf *b) {
  dv_buf s;
  dv_buf_init(&s, NULL);
  CHECK(dv_buf_push(&s, mode));
  CHECK(dv_buf_append(&s, b->data, b->len));
  uint8_t h[32];
  CHECK(dv_mls_hash(s.data, s.len, h));
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/", dir);
  for (int i = 0; i < 32 && n > 0 && (size_t)n + 2 < sizeof path; i++)
    n += snprintf(path + n, sizeof path - (size_t)n, "%02x", h[i]);
  FILE *f = fopen(path, "wb");
  if (f != NULL) {
    fwrite(s.data, 1, s.len, f);
    fclose(f);
  }
  dv_buf_free(&s);
}

/* A (creator) adds B and C at epoch 0 -> 1; B then queues Remove(C) and
 * Add(D); A commits those (with a path): the seeds. */
static void setup(void) {
  dvoice_env_default(&S.env);
  S.env.rand = hash_rand;
  const uint8_t gid[8] = {0x0c, 0xde, 0x77, 0xea, 0xdc, 0x82, 0x30, 0x33};
  CHECK(dv_mls_sig_keygen(&S.env, &S.gw));
  dv_buf es, exts, leaf;
  dv_buf_init(&es, NULL);
  dv_buf_init(&exts, NULL);
  dv_buf_init(&leaf, NULL);
  dv_wr w;
  dv_wr_init(&w, &es);
  dv_wr_opaque(&w, S.gw.pub, 65);
  dv_wr_u16(&w, DV_MLS_CRED_BASIC);
  dv_wr_varint(&w, 1);
  dv_wr_u8(&w, 0);
  dv_wr_init(&w, &exts);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t m = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, es.data, es.len);
  dv_wr_vec_end(&w, m);
  CHECK(w.err);

  dv_mls_sig_key a_sk, b_sk, c_sk;
  dv_mls_hpke_key a_lk, b_lk, b_ik, c_lk, c_ik;
  dv_buf b_kp, c_kp;
  CHECK(dv_mls_sig_keygen(&S.env, &a_sk));
  CHECK(dv_mls_hpke_keygen(&S.env, &a_lk));
  CHECK(dv_mls_dave_leaf_node(&S.env, 1, &a_sk, &a_lk, &leaf));
  member_kp(2, &b_sk, &b_lk, &b_ik, &b_kp);
  member_kp(3, &c_sk, &c_lk, &c_ik, &c_kp);
  member_kp(4, &S.d_sk, &S.d_lk, &S.d_ik, &S.d_kp);

  dv_mls_group a, next;
  dv_mls_group_init(&a, &S.env);
  dv_mls_group_init(&next, &S.env);
  dv_mls_group_init(&S.b, &S.env);
  dv_mls_bytes lb = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes eb = dv_mls_b(exts.data, exts.len);
  CHECK(dv_mls_group_create(&a, gid, 8, &lb, &a_sk, &a_lk, &eb));
  dv_buf msg, commit, welcome;
  dv_buf_init(&msg, NULL);
  dv_buf_init(&commit, NULL);
  dv_buf_init(&welcome, NULL);
  proposal(gid, 0, DV_MLS_PROP_ADD, 0, &b_kp, &msg);
  CHECK(dv_mls_group_queue_proposal(&a, msg.data, msg.len, NULL));
  dv_buf_reset(&msg);
  proposal(gid, 0, DV_MLS_PROP_ADD, 0, &c_kp, &msg);
  CHECK(dv_mls_group_queue_proposal(&a, msg.data, msg.len, NULL));
  CHECK(dv_mls_group_commit(&a, &commit, &welcome, &next));
  dv_mls_group_free(&a);
  a = next;
  dv_mls_group_init(&next, &S.env);
  dv_mls_join_keys keys = {b_kp.data, b_kp.len, &b_ik, &b_lk, &b_sk};
  CHECK(dv_mls_group_join(&S.b, welcome.data, welcome.len, &keys, NULL));

  dv_buf_init(&S.seed_prop, NULL);
  proposal(gid, 1, DV_MLS_PROP_REMOVE, 2, NULL, &S.seed_prop);
  CHECK(
      dv_mls_group_queue_proposal(&a, S.seed_prop.data, S.seed_prop.len, NULL));
  CHECK(dv_mls_group_queue_proposal(&S.b, S.seed_prop.data, S.seed_prop.len,
                                    NULL));
  dv_buf_reset(&msg);
  proposal(gid, 1, DV_MLS_PROP_ADD, 0, &S.d_kp, &msg);
  CHECK(dv_mls_group_queue_proposal(&a, msg.data, msg.len, NULL));
  CHECK(dv_mls_group_queue_proposal(&S.b, msg.data, msg.len, NULL));
  dv_buf_init(&S.seed_commit, NULL);
  dv_buf_init(&S.seed_welcome, NULL);
  CHECK(dv_mls_group_commit(&a, &S.seed_commit, &S.seed_welcome, &next));
  /* The seed proposal is a new one (Remove of A's leaf) so it queues. */
  dv_buf_reset(&S.seed_prop);
  proposal(gid, 1, DV_MLS_PROP_REMOVE, 0, NULL, &S.seed_prop);

  /* Each seed must be accepted, or the state above is wrong. */
  uint8_t ref[32];
  CHECK(dv_mls_group_queue_proposal(&S.b, S.seed_prop.data, S.seed_prop.len,
                                    ref));
  CHECK(dv_mls_group_revoke_proposal(&S.b, ref));
  dv_mls_group_free(&next);
  CHECK(dv_mls_group_process_commit(&S.b, S.seed_commit.data, S.seed_commit.len,
                                    &next));
  dv_mls_group_free(&next);
  dv_mls_group d;
  dv_mls_group_init(&d, &S.env);
  dv_mls_join_keys dkeys = {S.d_kp.data, S.d_kp.len, &S.d_ik, &S.d_lk, &S.d_sk};
  CHECK(dv_mls_group_join(&d, S.seed_welcome.data, S.seed_welcome.len, &dkeys,
                          NULL));
  dv_mls_group_free(&d);

  const char *dir = getenv("FUZZ_MLS_GROUP_SEEDS");
  if (dir != NULL) {
    write_seed(dir, 0, &S.seed_prop);
    write_seed(dir, 1, &S.seed_commit);
    write_seed(dir, 2, &S.seed_welcome);
  }
  dv_mls_group_free(&a);
  dv_mls_group_free(&next);
  dv_buf_free(&es);
  dv_buf_free(&exts);
  dv_buf_free(&leaf);
  dv_buf_free(&b_kp);
  dv_buf_free(&c_kp);
  dv_buf_free(&msg);
  dv_buf_free(&commit);
  dv_buf_free(&welcome);
  S.ready = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (!S.ready)
    setup();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!S.ready)
    setup();
  if (size < 1)
    return 0;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  dv_mls_group next;
  dv_mls_group_init(&next, &S.env);
  switch (data[0] % 3) {
    case 0: {
      uint8_t ref[32];
      size_t before = S.b.n_props;
      if (dv_mls_group_queue_proposal(&S.b, p, n, ref) == 0) {
        if (S.b.n_props != before + 1)
          abort();
        CHECK(dv_mls_group_revoke_proposal(&S.b, ref));
      }
      if (S.b.n_props != before)
        abort();
      break;
    }
    case 1:
      if (dv_mls_group_process_commit(&S.b, p, n, &next) == 0 &&
          next.epoch != S.b.epoch + 1)
        abort();
      break;
    default: {
      dv_mls_join_keys keys = {S.d_kp.data, S.d_kp.len, &S.d_ik, &S.d_lk,
                               &S.d_sk};
      if (dv_mls_group_join(&next, p, n, &keys, NULL) == 0 && next.epoch != 2)
        abort();
      break;
    }
  }
  dv_mls_group_free(&next);
  return 0;
}
