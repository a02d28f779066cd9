/*
 * MLS interop vectors (mlswg/mls-implementations) for the codec, tree math,
 * ratchet tree, transcript hashes and TreeKEM: tree-math, deserialization,
 * messages, tree-operations, tree-validation, transcript-hashes, treekem.
 * The folder comes from DVOICE_MLS_VECTORS; unset, the tests skip (and fail
 * under CI=true). Each test prints a pass count and names skipped cases.
 */
#include "dvt.h"

#include <jansson.h>
#include <mbedtls/md.h>

#include "mls/mls_codec.h"
#include "mls/mls_transcript.h"
#include "mls/mls_tree.h"
#include "mls/mls_treekem.h"
#include "mls/mls_treemath.h"
#include "util/dv_buf.h"
#include "util/dv_env.h"
#include "util/dv_rw.h"

/* Loads <DVOICE_MLS_VECTORS>/<name>, or skips the test. */
static json_t *load_vectors(const char *name) {
  const char *dir = dvt_getenv_required("DVOICE_MLS_VECTORS");
  char path[1024];
  json_error_t jerr;
  json_t *root;
  if (dir == NULL) {
    print_message("# DVOICE_MLS_VECTORS unset: skipping %s\n", name);
    skip();
  }
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  root = json_load_file(path, 0, &jerr);
  if (root == NULL) {
    fail_msg("cannot load %s: %s", path, jerr.text);
  }
  assert_true(json_is_array(root));
  return root;
}

static const char *jstr(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_string(v)) {
    fail_msg("missing string field %s", key);
  }
  return json_string_value(v);
}

static long long jint(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_integer(v)) {
    fail_msg("missing integer field %s", key);
  }
  return json_integer_value(v);
}

/* Owned hex-decoded bytes. */
typedef struct hexbuf {
  uint8_t *p;
  size_t len;
} hexbuf;

static hexbuf jhex(const json_t *o, const char *key) {
  hexbuf h;
  h.len = dvt_unhex(jstr(o, key), &h.p);
  return h;
}

static uint32_t jidx(const json_t *v) {
  return json_is_null(v) ? DV_MLS_NONE : (uint32_t)json_integer_value(v);
}

/* ---- tree-math.json ----------------------------------------------------- */

static void test_tree_math(void **state) {
  json_t *root = load_vectors("tree-math.json");
  size_t i, x;
  int passed = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    uint32_t n = (uint32_t)jint(c, "n_leaves");
    const json_t *left = json_object_get(c, "left");
    const json_t *right = json_object_get(c, "right");
    const json_t *parent = json_object_get(c, "parent");
    const json_t *sibling = json_object_get(c, "sibling");
    assert_int_equal(dv_mls_tm_width(n), jint(c, "n_nodes"));
    assert_int_equal(dv_mls_tm_root(n), jint(c, "root"));
    for (x = 0; x < json_array_size(left); x++) {
      uint32_t nx = (uint32_t)x;
      assert_int_equal(dv_mls_tm_left(nx), jidx(json_array_get(left, x)));
      assert_int_equal(dv_mls_tm_right(nx), jidx(json_array_get(right, x)));
      assert_int_equal(dv_mls_tm_parent(nx, n),
                       jidx(json_array_get(parent, x)));
      assert_int_equal(dv_mls_tm_sibling(nx, n),
                       jidx(json_array_get(sibling, x)));
    }
    passed++;
  }
  print_message("# tree-math.json: %d/%zu passed\n", passed,
                json_array_size(root));
  json_decref(root);
}

static void test_tree_math_extra(void **state) {
  uint32_t dp[32], cp[32];
  (void)state;
  /* 8 leaves: leaf 2 (node 4) -> 5, 3, 7; copath 6, 1, 11. */
  assert_int_equal(dv_mls_tm_direct_path(4, 8, dp, 32), 3);
  assert_int_equal(dp[0], 5);
  assert_int_equal(dp[1], 3);
  assert_int_equal(dp[2], 7);
  assert_int_equal(dv_mls_tm_copath(4, 8, cp, 32), 3);
  assert_int_equal(cp[0], 6);
  assert_int_equal(cp[1], 1);
  assert_int_equal(cp[2], 11);
  assert_int_equal(dv_mls_tm_direct_path(4, 8, dp, 2), DV_MLS_NONE);
  assert_int_equal(dv_mls_tm_common_ancestor(0, 6), 3);
  assert_int_equal(dv_mls_tm_common_ancestor(0, 2), 1);
  assert_int_equal(dv_mls_tm_common_ancestor(4, 12), 7);
  assert_int_equal(dv_mls_tm_common_ancestor(3, 4), 3);
  assert_int_equal(dv_mls_tm_common_ancestor(5, 5), 5);
  assert_int_equal(dv_mls_tm_common_ancestor(2, 7), 7);
  assert_true(dv_mls_tm_is_ancestor(7, 14));
  assert_false(dv_mls_tm_is_ancestor(3, 8));
}

/* ---- deserialization.json ----------------------------------------------- */

static void test_deserialization(void **state) {
  json_t *root = load_vectors("deserialization.json");
  size_t i;
  int passed = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    hexbuf h = jhex(c, "vlbytes_header");
    dv_rd r;
    dv_buf b;
    dv_wr w;
    uint32_t v;
    dv_rd_init(&r, h.p, h.len);
    assert_int_equal(dv_rd_varint(&r, &v), 0);
    assert_int_equal(dv_rd_finish(&r), 0);
    assert_int_equal(v, jint(c, "length"));
    dv_buf_init(&b, NULL);
    dv_wr_init(&w, &b);
    dv_wr_varint(&w, v);
    assert_int_equal(w.err, 0);
    dvt_assert_bytes(b.data, b.len, h.p, h.len);
    dv_buf_free(&b);
    free(h.p);
    passed++;
  }
  print_message("# deserialization.json: %d/%zu passed\n", passed,
                json_array_size(root));
  json_decref(root);
}

/* ---- messages.json ------------------------------------------------------ */

/* Kinds of structures in messages.json. */
enum msg_kind {
  K_MLS_MESSAGE,
  K_RATCHET_TREE,
  K_GROUP_SECRETS,
  K_COMMIT,
  K_PROPOSAL_BODY /* a proposal body: decoded with its type prepended */
};

/* Decodes |p, len| as |kind|, re-encodes, and asserts byte equality. */
static void round_trip(const char *key, enum msg_kind kind, uint16_t ptype,
                       const uint8_t *p, size_t len) {
  dv_rd r;
  dv_buf b, in;
  dv_wr w;
  dv_buf_init(&b, NULL);
  dv_buf_init(&in, NULL);
  dv_wr_init(&w, &b);
  if (kind == K_PROPOSAL_BODY) {
    dv_wr wi;
    dv_wr_init(&wi, &in);
    dv_wr_u16(&wi, ptype);
    dv_wr_bytes(&wi, p, len);
    assert_int_equal(wi.err, 0);
    p = in.data;
    len = in.len;
  }
  dv_rd_init(&r, p, len);
  switch (kind) {
    case K_MLS_MESSAGE: {
      dv_mls_message m;
      dv_mls_message_read(&r, &m);
      if (dv_rd_finish(&r) != 0) {
        fail_msg("%s: decode error %d", key, r.err);
      }
      dv_mls_message_write(&w, &m);
      break;
    }
    case K_RATCHET_TREE: {
      dv_mls_tree t;
      int rc;
      dv_mls_tree_init(&t, NULL);
      rc = dv_mls_tree_decode(&t, NULL, p, len);
      if (rc != 0) {
        fail_msg("%s: tree decode error %d", key, rc);
      }
      dv_mls_tree_write(&t, &w);
      dv_mls_tree_free(&t);
      break;
    }
    case K_GROUP_SECRETS: {
      dv_mls_group_secrets gs;
      dv_mls_group_secrets_read(&r, &gs);
      if (dv_rd_finish(&r) != 0) {
        fail_msg("%s: decode error %d", key, r.err);
      }
      dv_mls_group_secrets_write(&w, &gs);
      break;
    }
    case K_COMMIT: {
      dv_mls_commit c;
      dv_mls_commit_read(&r, &c);
      if (dv_rd_finish(&r) != 0) {
        fail_msg("%s: decode error %d", key, r.err);
      }
      dv_mls_commit_write(&w, &c);
      break;
    }
    case K_PROPOSAL_BODY: {
      dv_mls_proposal pr;
      dv_mls_proposal_read(&r, &pr);
      if (dv_rd_finish(&r) != 0) {
        fail_msg("%s: decode error %d", key, r.err);
      }
      dv_mls_proposal_write(&w, &pr);
      break;
    }
  }
  assert_int_equal(w.err, 0);
  dvt_assert_bytes(b.data, b.len, p, len);
  dv_buf_free(&b);
  dv_buf_free(&in);
}

static void test_messages(void **state) {
  static const struct {
    const char *key;
    enum msg_kind kind;
    uint16_t ptype;
  } fields[] = {
      {"mls_welcome", K_MLS_MESSAGE, 0},
      {"mls_group_info", K_MLS_MESSAGE, 0},
      {"mls_key_package", K_MLS_MESSAGE, 0},
      {"ratchet_tree", K_RATCHET_TREE, 0},
      {"group_secrets", K_GROUP_SECRETS, 0},
      {"add_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_ADD},
      {"update_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_UPDATE},
      {"remove_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_REMOVE},
      {"pre_shared_key_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_PSK},
      {"re_init_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_REINIT},
      {"external_init_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_EXTERNAL_INIT},
      {"group_context_extensions_proposal", K_PROPOSAL_BODY, DV_MLS_PROP_GCE},
      {"commit", K_COMMIT, 0},
      {"public_message_application", K_MLS_MESSAGE, 0},
      {"public_message_proposal", K_MLS_MESSAGE, 0},
      {"public_message_commit", K_MLS_MESSAGE, 0},
  };
  json_t *root = load_vectors("messages.json");
  size_t i, f;
  int passed = 0, skipped = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
      hexbuf h = jhex(c, fields[f].key);
      round_trip(fields[f].key, fields[f].kind, fields[f].ptype, h.p, h.len);
      free(h.p);
      passed++;
    }
    /* PrivateMessage is not part of DAVE: the decoder must refuse it. */
    {
      hexbuf h = jhex(c, "private_message");
      dv_mls_message m;
      assert_int_equal(dv_mls_message_decode(h.p, h.len, &m),
                       DVOICE_ERR_UNSUPPORTED);
      free(h.p);
      skipped++;
    }
  }
  print_message("# messages.json: %d/%d structures round-tripped in %zu "
                "cases; skipped %d private_message (PrivateMessage is not "
                "used by DAVE; checked to be refused with UNSUPPORTED)\n",
                passed, passed, json_array_size(root), skipped);
  json_decref(root);
}

/* ---- tree-operations.json ----------------------------------------------- */

static void test_tree_operations(void **state) {
  json_t *root = load_vectors("tree-operations.json");
  size_t i;
  int passed = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    hexbuf before = jhex(c, "tree_before"), after = jhex(c, "tree_after");
    hexbuf prop = jhex(c, "proposal");
    hexbuf hb = jhex(c, "tree_hash_before"), ha = jhex(c, "tree_hash_after");
    uint32_t sender = (uint32_t)jint(c, "proposal_sender");
    uint8_t hash[32];
    dv_mls_tree t;
    dv_mls_proposal p;
    dv_rd r;
    dv_buf b;
    dv_wr w;
    uint32_t li, dp[32], n, k;
    dv_mls_tree_init(&t, NULL);
    assert_int_equal(dv_mls_tree_decode(&t, NULL, before.p, before.len), 0);
    assert_int_equal(dv_mls_tree_root_hash(&t, hash), 0);
    dvt_assert_bytes(hash, 32, hb.p, hb.len);
    dv_rd_init(&r, prop.p, prop.len);
    dv_mls_proposal_read(&r, &p);
    assert_int_equal(dv_rd_finish(&r), 0);
    switch (p.type) {
      case DV_MLS_PROP_ADD:
        assert_int_equal(dv_mls_tree_add_leaf(&t, &p.add.leaf_node, &li), 0);
        break;
      case DV_MLS_PROP_REMOVE:
        assert_int_equal(dv_mls_tree_remove_leaf(&t, p.removed), 0);
        dv_mls_tree_truncate(&t);
        break;
      case DV_MLS_PROP_UPDATE:
        /* Replace the sender's leaf and blank its direct path. */
        assert_int_equal(dv_mls_tree_set_leaf(&t, sender, &p.update), 0);
        n = dv_mls_tm_direct_path(2 * sender, t.n_leaves, dp, 32);
        for (k = 0; k < n; k++) {
          dv_mls_tree_blank(&t, dp[k]);
        }
        break;
      default:
        fail_msg("unexpected proposal type %u", p.type);
    }
    dv_buf_init(&b, NULL);
    dv_wr_init(&w, &b);
    dv_mls_tree_write(&t, &w);
    assert_int_equal(w.err, 0);
    dvt_assert_bytes(b.data, b.len, after.p, after.len);
    assert_int_equal(dv_mls_tree_root_hash(&t, hash), 0);
    dvt_assert_bytes(hash, 32, ha.p, ha.len);
    dv_buf_free(&b);
    dv_mls_tree_free(&t);
    free(before.p);
    free(after.p);
    free(prop.p);
    free(hb.p);
    free(ha.p);
    passed++;
  }
  print_message("# tree-operations.json: %d/%zu passed (all cases are cipher "
                "suite 1: tree operations and SHA-256 hashes only, no "
                "signatures)\n",
                passed, json_array_size(root));
  json_decref(root);
}

/* ---- tree-validation.json ----------------------------------------------- */

/* Cipher suites whose hash is SHA-256 (1, 2, 3): structure and hashes can be
 * checked without their signature schemes. */
static int sha256_suite(long long cs) {
  return cs == 1 || cs == 2 || cs == 3;
}

/* Corrupting any leaf signature or parent node must make validation fail. */
static void tree_validation_negative(const dv_mls_tree *t,
                                     const dv_mls_bytes *g) {
  uint32_t x, wd = dv_mls_tm_width(t->n_leaves);
  for (x = 0; x < wd; x++) {
    dv_mls_tree copy;
    dv_mls_tree_node *nd;
    if (t->nodes[x].type == 0) {
      continue;
    }
    dv_mls_tree_init(&copy, NULL);
    assert_int_equal(dv_mls_tree_copy(&copy, t), 0);
    nd = &copy.nodes[x];
    if (nd->type == DV_MLS_NODE_LEAF) {
      /* Flip a bit in the last signature byte (raw is ours to change). */
      nd->raw[nd->raw_len - 1] ^= 1;
      assert_int_equal(dv_mls_tree_validate(&copy, g, 0), DVOICE_ERR_CRYPTO);
    } else {
      /* Flip the last byte of the parent's encryption key: parent-hash (or
       * key) check fails. */
      uint8_t *k = (uint8_t *)nd->u.parent.encryption_key.p;
      k[nd->u.parent.encryption_key.len - 1] ^= 1;
      assert_int_not_equal(dv_mls_tree_validate(&copy, g, 0), 0);
    }
    dv_mls_tree_free(&copy);
  }
}

static void test_tree_validation(void **state) {
  json_t *root = load_vectors("tree-validation.json");
  size_t i, x, k;
  int passed = 0, passed_cs2 = 0, skipped = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    long long cs = jint(c, "cipher_suite");
    const json_t *hashes = json_object_get(c, "tree_hashes");
    const json_t *res = json_object_get(c, "resolutions");
    hexbuf tree;
    dv_mls_tree t;
    uint32_t out[1024];
    uint8_t h[32];
    if (!sha256_suite(cs)) {
      skipped++;
      continue;
    }
    tree = jhex(c, "tree");
    dv_mls_tree_init(&t, NULL);
    assert_int_equal(dv_mls_tree_decode(&t, NULL, tree.p, tree.len), 0);
    assert_int_equal(json_array_size(hashes), dv_mls_tm_width(t.n_leaves));
    for (x = 0; x < json_array_size(hashes); x++) {
      hexbuf want;
      want.len =
          dvt_unhex(json_string_value(json_array_get(hashes, x)), &want.p);
      assert_int_equal(dv_mls_tree_hash(&t, (uint32_t)x, h), 0);
      dvt_assert_bytes(h, 32, want.p, want.len);
      free(want.p);
    }
    for (x = 0; x < json_array_size(res); x++) {
      const json_t *rl = json_array_get(res, x);
      int n = dv_mls_tree_resolution(&t, (uint32_t)x, NULL, 0, out, 1024);
      assert_int_equal(n, json_array_size(rl));
      for (k = 0; k < (size_t)n; k++) {
        assert_int_equal(out[k], json_integer_value(json_array_get(rl, k)));
      }
    }
    assert_int_equal(dv_mls_tree_verify_parent_hashes(&t), 0);
    if (cs == 2) {
      /* Signatures (LeafNodeTBS with the group id), keys, capabilities. */
      hexbuf gid = jhex(c, "group_id");
      dv_mls_bytes g = dv_mls_b(gid.p, gid.len);
      assert_int_equal(dv_mls_tree_validate(&t, &g, 0), 0);
      tree_validation_negative(&t, &g);
      free(gid.p);
    }
    dv_mls_tree_free(&t);
    free(tree.p);
    passed++;
    passed_cs2 += cs == 2;
  }
  print_message("# tree-validation.json: %d passed (%d of them cipher suite "
                "2; suites 1 and 3 share SHA-256 so their hashes, "
                "resolutions and parent hashes are checked too); skipped %d "
                "cases of suites 4-7 (other hash functions)\n",
                passed, passed_cs2, skipped);
  json_decref(root);
}

/* ---- transcript-hashes.json --------------------------------------------- */

static void test_transcript_hashes(void **state) {
  json_t *root = load_vectors("transcript-hashes.json");
  size_t i;
  int passed = 0, skipped = 0;
  (void)state;
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    long long cs = jint(c, "cipher_suite");
    hexbuf key, acb, ib, ca, ia;
    dv_mls_authenticated_content ac;
    dv_mls_bytes interim;
    uint8_t confirmed[32], inter[32], tag[32];
    dv_rd r;
    dv_buf b;
    dv_wr w;
    if (!sha256_suite(cs)) {
      skipped++;
      continue;
    }
    key = jhex(c, "confirmation_key");
    acb = jhex(c, "authenticated_content");
    ib = jhex(c, "interim_transcript_hash_before");
    ca = jhex(c, "confirmed_transcript_hash_after");
    ia = jhex(c, "interim_transcript_hash_after");
    dv_rd_init(&r, acb.p, acb.len);
    dv_mls_authenticated_content_read(&r, &ac);
    assert_int_equal(dv_rd_finish(&r), 0);
    assert_int_equal(ac.content.content_type, DV_MLS_CONTENT_COMMIT);
    /* The codec round-trips the AuthenticatedContent. */
    dv_buf_init(&b, NULL);
    dv_wr_init(&w, &b);
    dv_mls_authenticated_content_write(&w, &ac);
    assert_int_equal(w.err, 0);
    dvt_assert_bytes(b.data, b.len, acb.p, acb.len);
    dv_buf_free(&b);
    interim = dv_mls_b(ib.p, ib.len);
    assert_int_equal(dv_mls_transcript_update(&interim, &ac, confirmed, inter),
                     0);
    dvt_assert_bytes(confirmed, 32, ca.p, ca.len);
    dvt_assert_bytes(inter, 32, ia.p, ia.len);
    /* confirmation_tag = MAC(confirmation_key, confirmed_after). */
    assert_int_equal(
        mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), key.p,
                        key.len, confirmed, 32, tag),
        0);
    dvt_assert_bytes(tag, 32, ac.auth.confirmation_tag.p,
                     ac.auth.confirmation_tag.len);
    free(key.p);
    free(acb.p);
    free(ib.p);
    free(ca.p);
    free(ia.p);
    passed++;
  }
  print_message("# transcript-hashes.json: %d passed (suites 1-3, SHA-256); "
                "skipped %d cases of suites 4-7 (other hash functions)\n",
                passed, skipped);
  json_decref(root);
}

/* ---- treekem.json ------------------------------------------------------- */

/* Serialises the provisional GroupContext the vectors use: no extensions,
 * and the vector's "epoch" as is (it is already the new epoch). */
static void make_gc(dv_buf *b, const hexbuf *gid, uint64_t epoch,
                    const uint8_t th[32], const hexbuf *cth) {
  dv_mls_group_context gc;
  dv_wr w;
  memset(&gc, 0, sizeof(gc));
  gc.version = DV_MLS_VERSION_10;
  gc.cipher_suite = DV_MLS_SUITE_P256;
  gc.group_id = dv_mls_b(gid->p, gid->len);
  gc.epoch = epoch;
  gc.tree_hash = dv_mls_b(th, 32);
  gc.confirmed_transcript_hash = dv_mls_b(cth->p, cth->len);
  dv_buf_reset(b);
  dv_wr_init(&w, b);
  dv_mls_group_context_write(&w, &gc);
  assert_int_equal(w.err, 0);
}

typedef struct leaf_priv {
  uint32_t index;
  dv_mls_tree_priv priv;
  hexbuf sig_priv;
} leaf_priv;

/* Builds, signs and applies a fresh UpdatePath from |sender| on a copy of
 * |t0|, then checks every other private leaf can merge and decrypt it. */
static void encap_round_trip(dvt_env *e, const dv_mls_tree *t0,
                             const leaf_priv *lp, size_t n_lp, size_t s_idx,
                             const hexbuf *gid, uint64_t epoch,
                             const hexbuf *cth) {
  const leaf_priv *sp = &lp[s_idx];
  dv_mls_tree t;
  dv_mls_treekem_encap st;
  dv_mls_leaf_node leaf;
  dv_mls_tree_priv mine;
  uint8_t secret[32], cs[32], cs2[32], th[32], sig[DV_MLS_SIG_MAX];
  size_t sig_len, i;
  dv_buf tbs, gc, up;
  dv_wr w;
  dv_mls_bytes g = dv_mls_b(gid->p, gid->len);
  dv_buf_init(&tbs, NULL);
  dv_buf_init(&gc, NULL);
  dv_buf_init(&up, NULL);
  dv_mls_tree_init(&t, NULL);
  assert_int_equal(dv_mls_tree_copy(&t, t0), 0);
  dv_rand(&e->env, secret, sizeof(secret));
  assert_int_equal(
      dv_mls_treekem_encap_begin(&e->env, &t, sp->index, secret, &st), 0);
  /* New leaf: the old one with the new key, source commit, parent hash. */
  leaf = *dv_mls_tree_leaf(&t, sp->index);
  leaf.encryption_key = dv_mls_b(st.leaf.pub, DV_MLS_PUB_LEN);
  leaf.source = DV_MLS_LEAF_SRC_COMMIT;
  leaf.parent_hash = dv_mls_b(st.leaf_parent_hash, st.leaf_parent_hash_len);
  dv_wr_init(&w, &tbs);
  dv_mls_leaf_node_tbs_write(&w, &leaf, &g, sp->index);
  assert_int_equal(w.err, 0);
  assert_int_equal(dv_mls_sign_with_label(&e->env, sp->sig_priv.p,
                                          "LeafNodeTBS", tbs.data, tbs.len, sig,
                                          &sig_len),
                   0);
  leaf.signature = dv_mls_b(sig, sig_len);
  assert_int_equal(dv_mls_tree_set_leaf(&t, sp->index, &leaf), 0);
  assert_int_equal(dv_mls_tree_root_hash(&t, th), 0);
  make_gc(&gc, gid, epoch, th, cth);
  mine = sp->priv;
  dv_wr_init(&w, &up);
  assert_int_equal(dv_mls_treekem_encap_finish(
                       &e->env, &st, &t, dv_mls_tree_leaf(&t, sp->index), NULL,
                       0, gc.data, gc.len, &w, cs, &mine),
                   0);
  assert_int_equal(dv_mls_tree_priv_prune(&mine, &t), 0);
  /* Every other member merges and decrypts the same commit secret. */
  for (i = 0; i < n_lp; i++) {
    dv_mls_tree t2;
    dv_mls_update_path path;
    dv_mls_tree_priv p2;
    uint8_t th2[32];
    dv_rd r;
    if (i == s_idx) {
      continue;
    }
    dv_rd_init(&r, up.data, up.len);
    dv_mls_update_path_read(&r, &path);
    assert_int_equal(dv_rd_finish(&r), 0);
    dv_mls_tree_init(&t2, NULL);
    assert_int_equal(dv_mls_tree_copy(&t2, t0), 0);
    assert_int_equal(dv_mls_treekem_merge(&t2, sp->index, &path, &g, 0), 0);
    assert_int_equal(dv_mls_tree_validate(&t2, &g, 0), 0);
    assert_int_equal(dv_mls_tree_root_hash(&t2, th2), 0);
    assert_memory_equal(th, th2, 32);
    p2 = lp[i].priv;
    assert_int_equal(dv_mls_treekem_decap(&e->env, &p2, &t2, sp->index, &path,
                                          NULL, 0, gc.data, gc.len, cs2, NULL,
                                          NULL),
                     0);
    assert_memory_equal(cs, cs2, 32);
    dv_mls_tree_priv_wipe(&p2);
    dv_mls_tree_free(&t2);
  }
  dv_mls_tree_priv_wipe(&mine);
  dv_mls_tree_free(&t);
  dv_buf_free(&tbs);
  dv_buf_free(&gc);
  dv_buf_free(&up);
}

static void test_treekem(void **state) {
  json_t *root = load_vectors("treekem.json");
  size_t i, k, u, m;
  int passed = 0, decaps = 0, encaps = 0, skipped = 0;
  dvt_env e;
  (void)state;
  dvt_env_init(&e);
  for (i = 0; i < json_array_size(root); i++) {
    const json_t *c = json_array_get(root, i);
    const json_t *lps = json_object_get(c, "leaves_private");
    const json_t *ups = json_object_get(c, "update_paths");
    hexbuf tree, gid, cth;
    uint64_t epoch;
    dv_mls_tree t;
    leaf_priv lp[64];
    size_t n_lp;
    dv_buf gc;
    if (jint(c, "cipher_suite") != 2) {
      skipped++;
      continue;
    }
    tree = jhex(c, "ratchet_tree");
    gid = jhex(c, "group_id");
    cth = jhex(c, "confirmed_transcript_hash");
    epoch = (uint64_t)jint(c, "epoch");
    dv_mls_tree_init(&t, NULL);
    assert_int_equal(dv_mls_tree_decode(&t, NULL, tree.p, tree.len), 0);
    assert_int_equal(dv_mls_tree_verify_parent_hashes(&t), 0);
    n_lp = json_array_size(lps);
    assert_true(n_lp <= 64);
    /* Private leaves: the leaf key and the listed path secrets must match
     * the public tree. */
    for (k = 0; k < n_lp; k++) {
      const json_t *l = json_array_get(lps, k);
      const json_t *pss = json_object_get(l, "path_secrets");
      hexbuf ep = jhex(l, "encryption_priv");
      lp[k].index = (uint32_t)jint(l, "index");
      lp[k].sig_priv = jhex(l, "signature_priv");
      assert_int_equal(
          dv_mls_tree_priv_init(&e.env, &lp[k].priv, lp[k].index, ep.p), 0);
      assert_int_equal(dv_mls_tree_priv_prune(&lp[k].priv, &t), 0);
      for (m = 0; m < json_array_size(pss); m++) {
        const json_t *pe = json_array_get(pss, m);
        hexbuf ps = jhex(pe, "path_secret");
        assert_int_equal(dv_mls_tree_priv_set_node_secret(
                             &e.env, &lp[k].priv, &t,
                             (uint32_t)jint(pe, "node"), ps.p, ps.len),
                         0);
        free(ps.p);
      }
      free(ep.p);
    }
    dv_buf_init(&gc, NULL);
    for (u = 0; u < json_array_size(ups); u++) {
      const json_t *up = json_array_get(ups, u);
      const json_t *want_ps = json_object_get(up, "path_secrets");
      uint32_t sender = (uint32_t)jint(up, "sender");
      hexbuf upb = jhex(up, "update_path"), cs = jhex(up, "commit_secret");
      hexbuf tha = jhex(up, "tree_hash_after");
      dv_mls_update_path path;
      dv_mls_bytes g = dv_mls_b(gid.p, gid.len);
      dv_mls_tree t2;
      uint8_t th[32];
      dv_rd r;
      dv_rd_init(&r, upb.p, upb.len);
      dv_mls_update_path_read(&r, &path);
      assert_int_equal(dv_rd_finish(&r), 0);
      dv_mls_tree_init(&t2, NULL);
      assert_int_equal(dv_mls_tree_copy(&t2, &t), 0);
      assert_int_equal(dv_mls_treekem_merge(&t2, sender, &path, &g, 0), 0);
      assert_int_equal(dv_mls_tree_root_hash(&t2, th), 0);
      dvt_assert_bytes(th, 32, tha.p, tha.len);
      assert_int_equal(dv_mls_tree_verify_parent_hashes(&t2), 0);
      make_gc(&gc, &gid, epoch, th, &cth);
      for (k = 0; k < n_lp; k++) {
        dv_mls_tree_priv p2 = lp[k].priv;
        uint8_t got_cs[32], got_ps[32];
        uint32_t node;
        const json_t *wp = json_array_get(want_ps, lp[k].index);
        if (lp[k].index == sender) {
          assert_int_equal(dv_mls_treekem_decap(&e.env, &p2, &t2, sender, &path,
                                                NULL, 0, gc.data, gc.len,
                                                got_cs, NULL, NULL),
                           DVOICE_ERR_PROTO);
          continue;
        }
        assert_int_equal(dv_mls_treekem_decap(&e.env, &p2, &t2, sender, &path,
                                              NULL, 0, gc.data, gc.len, got_cs,
                                              got_ps, &node),
                         0);
        dvt_assert_bytes(got_cs, 32, cs.p, cs.len);
        assert_true(json_is_string(wp));
        {
          /* The decrypted secret is the one at LCA(leaf, sender). */
          hexbuf w;
          w.len = dvt_unhex(json_string_value(wp), &w.p);
          dvt_assert_bytes(got_ps, 32, w.p, w.len);
          assert_int_equal(
              node, dv_mls_tm_common_ancestor(2 * lp[k].index, 2 * sender));
          free(w.p);
        }
        dv_mls_tree_priv_wipe(&p2);
        decaps++;
      }
      /* A tampered leaf signature or parent hash must be refused. */
      {
        dv_mls_tree t3;
        uint8_t *sigp = (uint8_t *)path.leaf_node.signature.p;
        dv_mls_tree_init(&t3, NULL);
        assert_int_equal(dv_mls_tree_copy(&t3, &t), 0);
        sigp[path.leaf_node.signature.len - 1] ^= 1;
        assert_int_equal(dv_mls_treekem_merge(&t3, sender, &path, &g, 0),
                         DVOICE_ERR_CRYPTO);
        sigp[path.leaf_node.signature.len - 1] ^= 1;
        dv_mls_tree_free(&t3);
      }
      dv_mls_tree_free(&t2);
      free(upb.p);
      free(cs.p);
      free(tha.p);
      for (k = 0; k < n_lp; k++) {
        if (lp[k].index == sender) {
          encap_round_trip(&e, &t, lp, n_lp, k, &gid, epoch, &cth);
          encaps++;
        }
      }
    }
    for (k = 0; k < n_lp; k++) {
      dv_mls_tree_priv_wipe(&lp[k].priv);
      free(lp[k].sig_priv.p);
    }
    dv_buf_free(&gc);
    dv_mls_tree_free(&t);
    free(tree.p);
    free(gid.p);
    free(cth.p);
    passed++;
  }
  dvt_env_free(&e);
  print_message("# treekem.json: %d/%d cipher suite 2 cases passed (%d "
                "decryptions checked against commit_secret and path "
                "secrets, %d fresh UpdatePaths encapsulated and decrypted by "
                "every other member); skipped %d cases of other suites\n",
                passed, passed, decaps, encaps, skipped);
  json_decref(root);
}

int main(void) {
  const struct CMUnitTest all[] = {
      cmocka_unit_test(test_tree_math),
      cmocka_unit_test(test_tree_math_extra),
      cmocka_unit_test(test_deserialization),
      cmocka_unit_test(test_messages),
      cmocka_unit_test(test_tree_operations),
      cmocka_unit_test(test_tree_validation),
      cmocka_unit_test(test_transcript_hashes),
      cmocka_unit_test(test_treekem),
  };
  const struct CMUnitTest local[] = {
      cmocka_unit_test(test_tree_math_extra),
  };
  const char *dir = getenv("DVOICE_MLS_VECTORS");
  /* cmocka 1.1.5 reports a skipped test as "not ok # SKIP", which meson
   * counts as a failure; without the vectors (outside CI) run only the
   * tests that need none. Under CI the vector tests run and fail. */
  if ((dir == NULL || *dir == 0) && !dvt_in_ci()) {
    printf("# DVOICE_MLS_VECTORS unset: skipping tree-math, "
           "deserialization, messages, tree-operations, tree-validation, "
           "transcript-hashes and treekem vectors\n");
    return cmocka_run_group_tests(local, NULL, NULL);
  }
  return cmocka_run_group_tests(all, NULL, NULL);
}
