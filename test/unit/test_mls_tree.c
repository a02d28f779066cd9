/* Unit tests for lib/mls codec, ratchet tree and TreeKEM with structures we
 * build ourselves (DAVE-shaped KeyPackages signed with our own keys): error
 * codes of the decoders, tree operations, validation failures, allocation
 * failures, and an encap/decap round trip excluding a newly added leaf. */
#include "dvt.h"

#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_tree.h"
#include "mls/mls_treekem.h"
#include "util/dv_buf.h"
#include "util/dv_env.h"
#include "util/dv_rw.h"

/* The dvt counter RNG repeats every 256 bytes, which would give members
 * equal keys; keys here come from the harness's non-repeating stream. */
static dvt_stream rand_stream;

static void env_init(dvt_env *e) {
  dvt_env_init(e);
  dvt_env_use_stream(&e->env, &rand_stream, 0x9e3779b97f4a7c15ull);
}

static const uint8_t caps_versions[] = {0x00, 0x01};
static const uint8_t caps_suites[] = {0x00, 0x02};
static const uint8_t caps_creds[] = {0x00, 0x01};

/* A member we built: its KeyPackage bytes and private keys. */
typedef struct member {
  dv_buf kp;
  dv_mls_sig_key sig;
  dv_mls_hpke_key enc, init;
  uint8_t id[8];
} member;

static dv_mls_vec vec_of(const uint8_t *p, size_t len, uint32_t count) {
  dv_mls_vec v;
  v.p = p;
  v.len = len;
  v.count = count;
  return v;
}

/* Builds a DAVE KeyPackage for user |uid| (section 1.1 of dave.md). */
static void build_member(dvt_env *e, uint64_t uid, member *m) {
  dv_mls_key_package kp;
  dv_mls_leaf_node *ln = &kp.leaf_node;
  dv_buf tbs, lsig_buf;
  dv_wr w;
  uint8_t lsig[DV_MLS_SIG_MAX], ksig[DV_MLS_SIG_MAX];
  size_t lsig_len, ksig_len;
  assert_int_equal(dv_mls_sig_keygen(&e->env, &m->sig), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e->env, &m->enc), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e->env, &m->init), 0);
  dv_put_u64(m->id, uid);
  memset(&kp, 0, sizeof(kp));
  kp.version = DV_MLS_VERSION_10;
  kp.cipher_suite = DV_MLS_SUITE_P256;
  kp.init_key = dv_mls_b(m->init.pub, DV_MLS_PUB_LEN);
  ln->encryption_key = dv_mls_b(m->enc.pub, DV_MLS_PUB_LEN);
  ln->signature_key = dv_mls_b(m->sig.pub, DV_MLS_PUB_LEN);
  ln->credential.type = DV_MLS_CRED_BASIC;
  ln->credential.identity = dv_mls_b(m->id, 8);
  ln->capabilities.versions = vec_of(caps_versions, 2, 1);
  ln->capabilities.cipher_suites = vec_of(caps_suites, 2, 1);
  ln->capabilities.credentials = vec_of(caps_creds, 2, 1);
  ln->source = DV_MLS_LEAF_SRC_KEY_PACKAGE;
  ln->not_before = 0;
  ln->not_after = UINT64_MAX;
  dv_buf_init(&tbs, NULL);
  dv_buf_init(&lsig_buf, NULL);
  dv_wr_init(&w, &tbs);
  dv_mls_leaf_node_tbs_write(&w, ln, NULL, 0);
  assert_int_equal(w.err, 0);
  assert_int_equal(dv_mls_sign_with_label(&e->env, m->sig.priv, "LeafNodeTBS",
                                          tbs.data, tbs.len, lsig, &lsig_len),
                   0);
  ln->signature = dv_mls_b(lsig, lsig_len);
  dv_buf_reset(&tbs);
  dv_wr_init(&w, &tbs);
  dv_mls_key_package_tbs_write(&w, &kp);
  assert_int_equal(w.err, 0);
  assert_int_equal(dv_mls_sign_with_label(&e->env, m->sig.priv, "KeyPackageTBS",
                                          tbs.data, tbs.len, ksig, &ksig_len),
                   0);
  kp.signature = dv_mls_b(ksig, ksig_len);
  dv_buf_init(&m->kp, NULL);
  dv_wr_init(&w, &m->kp);
  dv_mls_key_package_write(&w, &kp);
  assert_int_equal(w.err, 0);
  dv_buf_free(&tbs);
  dv_buf_free(&lsig_buf);
}

static void free_member(member *m) {
  dv_buf_free(&m->kp);
}

static void test_key_package_build_decode(void **state) {
  dvt_env e;
  member m;
  dv_mls_key_package kp;
  (void)state;
  env_init(&e);
  build_member(&e, 158533742254751744ull, &m);
  /* 4 + 67 + (67 + 67 + 11 + 11 + 1 + 16 + 1 + sig) + 1 + sig. */
  assert_true(m.kp.len >= 385 && m.kp.len <= 395);
  assert_int_equal(m.kp.data[0], 0x00);
  assert_int_equal(m.kp.data[3], 0x02);
  assert_int_equal(dv_mls_key_package_decode(m.kp.data, m.kp.len, &kp), 0);
  assert_int_equal(kp.leaf_node.credential.identity.len, 8);
  assert_int_equal(kp.raw.len, m.kp.len);
  assert_int_equal(dv_mls_leaf_validate(&kp.leaf_node, NULL, 0,
                                        DV_MLS_LEAF_SRC_KEY_PACKAGE,
                                        DV_MLS_VALIDATE_DAVE),
                   0);
  assert_int_equal(dv_mls_verify_with_label(
                       kp.leaf_node.signature_key.p,
                       kp.leaf_node.signature_key.len, "KeyPackageTBS",
                       kp.raw.p, kp.tbs_len, kp.signature.p, kp.signature.len),
                   0);
  /* Wrong expected source, and a leaf signed for another purpose. */
  assert_int_equal(
      dv_mls_leaf_validate(&kp.leaf_node, NULL, 0, DV_MLS_LEAF_SRC_COMMIT, 0),
      DVOICE_ERR_PROTO);
  free_member(&m);
  dvt_env_free(&e);
}

/* Decodes |p, len| as a strict KeyPackage and returns the error. */
static int kp_err(const uint8_t *p, size_t len) {
  dv_mls_key_package kp;
  return dv_mls_key_package_decode(p, len, &kp);
}

static void test_key_package_errors(void **state) {
  dvt_env e;
  member m;
  dv_mls_key_package kp;
  uint8_t *copy;
  size_t n, src;
  dv_rd r;
  (void)state;
  env_init(&e);
  build_member(&e, 42, &m);
  n = m.kp.len;
  copy = malloc(n + 8);
  assert_non_null(copy);
  /* Every proper prefix is truncated. */
  for (size_t i = 0; i < n; i++) {
    memcpy(copy, m.kp.data, i);
    assert_int_equal(kp_err(copy, i), DVOICE_ERR_TRUNCATED);
  }
  /* A trailing byte. */
  memcpy(copy, m.kp.data, n);
  copy[n] = 0;
  assert_int_equal(kp_err(copy, n + 1), DVOICE_ERR_TRAILING);
  /* Wrong version; wrong cipher suite (strict decoder only). */
  copy[1] = 2;
  assert_int_equal(kp_err(copy, n), DVOICE_ERR_UNSUPPORTED);
  copy[1] = 1;
  copy[3] = 1;
  assert_int_equal(kp_err(copy, n), DVOICE_ERR_UNSUPPORTED);
  dv_rd_init(&r, copy, n);
  assert_int_equal(dv_mls_key_package_read(&r, &kp), 0);
  copy[3] = 2;
  /* Bad leaf_node_source. */
  assert_int_equal(dv_mls_key_package_decode(copy, n, &kp), 0);
  src = (size_t)(kp.leaf_node.credential.identity.p - copy) + 8 + 11;
  assert_int_equal(copy[src], DV_MLS_LEAF_SRC_KEY_PACKAGE);
  copy[src] = 4;
  assert_int_equal(kp_err(copy, n), DVOICE_ERR_MALFORMED);
  copy[src] = 0;
  assert_int_equal(kp_err(copy, n), DVOICE_ERR_MALFORMED);
  copy[src] = 1;
  /* Unknown credential type. */
  copy[src - 11 - 8 - 1 - 1] = 3;
  assert_int_equal(kp_err(copy, n), DVOICE_ERR_UNSUPPORTED);
  copy[src - 11 - 8 - 1 - 1] = 1;
  /* Odd-length uint16 list (versions<V> = 01 00 -> length 1). */
  copy[src - 11] = 1;
  assert_int_not_equal(kp_err(copy, n), 0);
  copy[src - 11] = 2;
  assert_int_equal(kp_err(copy, n), 0);
  /* Non-minimal varint: init_key length 0x4041 rewritten as 0x80000041. */
  assert_int_equal(copy[4], 0x40);
  assert_int_equal(copy[5], 0x41);
  {
    uint8_t *nm = malloc(n + 2);
    assert_non_null(nm);
    memcpy(nm, copy, 4);
    nm[4] = 0x80;
    nm[5] = 0x00;
    nm[6] = 0x00;
    nm[7] = 0x41;
    memcpy(nm + 8, copy + 6, n - 6);
    assert_int_equal(kp_err(nm, n + 2), DVOICE_ERR_MALFORMED);
    free(nm);
  }
  /* A corrupted signature decodes but does not verify. */
  copy[n - 1] ^= 1;
  assert_int_equal(dv_mls_key_package_decode(copy, n, &kp), 0);
  assert_int_equal(dv_mls_verify_with_label(
                       kp.leaf_node.signature_key.p,
                       kp.leaf_node.signature_key.len, "KeyPackageTBS",
                       kp.raw.p, kp.tbs_len, kp.signature.p, kp.signature.len),
                   DVOICE_ERR_CRYPTO);
  free(copy);
  free_member(&m);
  dvt_env_free(&e);
}

static void test_message_errors(void **state) {
  /* External-sender Remove proposal, as the gateway sends it (op 27). */
  static const uint8_t remove[] = {
      0x00, 0x01, 0x00, 0x01, 0x08, 1,    2,    3,    4,    5,
      6,    7,    8,    0,    0,    0,    0,    0,    0,    0,
      5,    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x03,
      0x00, 0x00, 0x00, 0x01, 0x03, 0xaa, 0xbb, 0xcc};
  uint8_t m[sizeof(remove) + 1];
  dv_mls_message msg;
  dv_buf b;
  dv_wr w;
  (void)state;
  assert_int_equal(dv_mls_message_decode(remove, sizeof(remove), &msg), 0);
  assert_int_equal(msg.wire_format, DV_MLS_WF_PUBLIC);
  assert_int_equal(msg.pub.content.sender.type, DV_MLS_SENDER_EXTERNAL);
  assert_int_equal(msg.pub.content.content_type, DV_MLS_CONTENT_PROPOSAL);
  assert_int_equal(msg.pub.content.proposal.type, DV_MLS_PROP_REMOVE);
  assert_int_equal(msg.pub.content.proposal.removed, 1);
  assert_int_equal(msg.pub.auth.signature.len, 3);
  assert_int_equal(msg.pub.membership_tag.len, 0);
  assert_int_equal(msg.pub.content.raw.len, sizeof(remove) - 4 - 4);
  assert_int_equal(msg.pub.auth.raw.len, 4);
  assert_ptr_equal(msg.authenticated_content.p, remove + 2);
  assert_int_equal(msg.authenticated_content.len, sizeof(remove) - 2);
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_message_write(&w, &msg);
  dvt_assert_bytes(b.data, b.len, remove, sizeof(remove));
  dv_buf_free(&b);
  memcpy(m, remove, sizeof(remove));
  m[3] = 2; /* PrivateMessage */
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_UNSUPPORTED);
  m[3] = 9;
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_MALFORMED);
  m[3] = 1;
  m[1] = 0; /* version 0 */
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_UNSUPPORTED);
  m[1] = 1;
  m[21] = 5; /* sender type */
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_MALFORMED);
  m[21] = 2;
  m[27] = 4; /* content type */
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_MALFORMED);
  m[27] = 2;
  m[29] = 9; /* proposal type */
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_UNSUPPORTED);
  m[29] = 3;
  /* A member sender needs a membership tag: now the input is short. */
  m[21] = 1;
  assert_int_equal(dv_mls_message_decode(m, sizeof(remove), &msg),
                   DVOICE_ERR_TRUNCATED);
  m[sizeof(remove)] = 0; /* empty membership_tag */
  assert_int_equal(dv_mls_message_decode(m, sizeof(m), &msg), 0);
  /* The membership tag is not part of the AuthenticatedContent. */
  assert_int_equal(msg.authenticated_content.len, sizeof(m) - 2 - 1);
  m[21] = 2;
  assert_int_equal(dv_mls_message_decode(m, sizeof(m), &msg),
                   DVOICE_ERR_TRAILING);
}

static void test_commit_optional(void **state) {
  /* Commit{proposals = [ref(2 bytes)], path absent}. */
  static const uint8_t commit[] = {0x04, 0x02, 0x02, 0xab, 0xcd, 0x00};
  uint8_t c[sizeof(commit)];
  dv_mls_commit cm;
  dv_mls_iter it;
  dv_mls_proposal_or_ref por;
  dv_rd r;
  (void)state;
  dv_rd_init(&r, commit, sizeof(commit));
  assert_int_equal(dv_mls_commit_read(&r, &cm), 0);
  assert_int_equal(dv_rd_finish(&r), 0);
  assert_int_equal(cm.proposals.count, 1);
  assert_false(cm.has_path);
  dv_mls_iter_init(&it, &cm.proposals);
  assert_int_equal(dv_mls_next_proposal_or_ref(&it, &por), 1);
  assert_int_equal(por.type, DV_MLS_POR_REFERENCE);
  assert_int_equal(por.reference.len, 2);
  assert_int_equal(dv_mls_next_proposal_or_ref(&it, &por), 0);
  memcpy(c, commit, sizeof(c));
  c[5] = 2; /* optional<> presence must be 0 or 1 */
  dv_rd_init(&r, c, sizeof(c));
  assert_int_equal(dv_mls_commit_read(&r, &cm), DVOICE_ERR_MALFORMED);
  c[5] = 0;
  c[1] = 3; /* ProposalOrRef type */
  dv_rd_init(&r, c, sizeof(c));
  assert_int_equal(dv_mls_commit_read(&r, &cm), DVOICE_ERR_MALFORMED);
  c[1] = 2;
  c[0] = 0x05; /* the vector swallows the 00: a ProposalOrRef of type 0 */
  dv_rd_init(&r, c, sizeof(c));
  assert_int_equal(dv_mls_commit_read(&r, &cm), DVOICE_ERR_MALFORMED);
  c[0] = 0x03; /* vector ends inside an element */
  dv_rd_init(&r, c, sizeof(c));
  assert_int_equal(dv_mls_commit_read(&r, &cm), DVOICE_ERR_TRUNCATED);
}

/* A tree of |n| members built with dv_mls_tree_add_leaf. */
static void build_tree(dvt_env *e, member *ms, size_t n, dv_mls_tree *t) {
  size_t i;
  dv_mls_tree_init(t, NULL);
  for (i = 0; i < n; i++) {
    dv_mls_key_package kp;
    uint32_t li;
    build_member(e, 1000 + i, &ms[i]);
    assert_int_equal(
        dv_mls_key_package_decode(ms[i].kp.data, ms[i].kp.len, &kp), 0);
    assert_int_equal(dv_mls_tree_add_leaf(t, &kp.leaf_node, &li), 0);
    assert_int_equal(li, i);
  }
}

static void tree_round_trip(const dv_mls_tree *t) {
  dv_buf b, b2;
  dv_wr w;
  dv_mls_tree t2;
  uint8_t h1[32], h2[32];
  dv_buf_init(&b, NULL);
  dv_buf_init(&b2, NULL);
  dv_wr_init(&w, &b);
  dv_mls_tree_write(t, &w);
  assert_int_equal(w.err, 0);
  dv_mls_tree_init(&t2, NULL);
  assert_int_equal(dv_mls_tree_decode(&t2, NULL, b.data, b.len), 0);
  dv_wr_init(&w, &b2);
  dv_mls_tree_write(&t2, &w);
  dvt_assert_bytes(b2.data, b2.len, b.data, b.len);
  assert_int_equal(dv_mls_tree_root_hash(t, h1), 0);
  assert_int_equal(dv_mls_tree_root_hash(&t2, h2), 0);
  assert_memory_equal(h1, h2, 32);
  dv_mls_tree_free(&t2);
  dv_buf_free(&b);
  dv_buf_free(&b2);
}

static void test_tree_add_remove(void **state) {
  dvt_env e;
  member ms[5];
  dv_mls_tree t;
  dv_mls_key_package kp;
  dv_mls_parent_node pn;
  dv_mls_hpke_key pk;
  const dv_mls_parent_node *p;
  uint32_t li, res[8];
  size_t i;
  (void)state;
  env_init(&e);
  build_tree(&e, ms, 3, &t);
  assert_int_equal(t.n_leaves, 4);
  assert_int_equal(dv_mls_tree_validate(&t, NULL, DV_MLS_VALIDATE_DAVE), 0);
  tree_round_trip(&t);
  /* A parent above leaves 0..3 (node 3) gets the next adds as unmerged
   * leaves, kept sorted. */
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &pk), 0);
  memset(&pn, 0, sizeof(pn));
  pn.encryption_key = dv_mls_b(pk.pub, DV_MLS_PUB_LEN);
  assert_int_equal(dv_mls_tree_set_parent(&t, 3, &pn), 0);
  assert_int_equal(dv_mls_tree_set_parent(&t, 2, &pn),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_mls_tree_remove_leaf(&t, 1), 0);
  assert_null(dv_mls_tree_leaf(&t, 1));
  assert_null(dv_mls_tree_parent(&t, 3));
  assert_int_equal(dv_mls_tree_set_parent(&t, 3, &pn), 0);
  build_member(&e, 2000, &ms[3]);
  assert_int_equal(dv_mls_key_package_decode(ms[3].kp.data, ms[3].kp.len, &kp),
                   0);
  assert_int_equal(dv_mls_tree_add_leaf(&t, &kp.leaf_node, &li), 0);
  assert_int_equal(li, 1); /* leftmost blank */
  build_member(&e, 2001, &ms[4]);
  assert_int_equal(dv_mls_key_package_decode(ms[4].kp.data, ms[4].kp.len, &kp),
                   0);
  assert_int_equal(dv_mls_tree_add_leaf(&t, &kp.leaf_node, &li), 0);
  assert_int_equal(li, 3);
  p = dv_mls_tree_parent(&t, 3);
  assert_non_null(p);
  assert_int_equal(p->unmerged_leaves.count, 2);
  assert_int_equal(dv_mls_vec_u32(&p->unmerged_leaves, 0), 1);
  assert_int_equal(dv_mls_vec_u32(&p->unmerged_leaves, 1), 3);
  /* Resolution of the root: the parent and its unmerged leaves. */
  assert_int_equal(dv_mls_tree_resolution(&t, 3, NULL, 0, res, 8), 3);
  assert_int_equal(res[0], 3);
  assert_int_equal(res[1], 2);
  assert_int_equal(res[2], 6);
  li = 3;
  assert_int_equal(dv_mls_tree_resolution(&t, 3, &li, 1, res, 8), 2);
  assert_int_equal(dv_mls_tree_resolution(&t, 3, NULL, 0, res, 2),
                   DVOICE_ERR_NOBUF);
  tree_round_trip(&t);
  /* The parent has no valid parent hash: validation fails. */
  assert_int_equal(dv_mls_tree_validate(&t, NULL, 0), DVOICE_ERR_CRYPTO);
  /* Remove the two right leaves: the tree halves. */
  assert_int_equal(dv_mls_tree_remove_leaf(&t, 3), 0);
  assert_int_equal(dv_mls_tree_remove_leaf(&t, 2), 0);
  assert_int_equal(dv_mls_tree_remove_leaf(&t, 2), DVOICE_ERR_INVALID_ARGUMENT);
  dv_mls_tree_truncate(&t);
  assert_int_equal(t.n_leaves, 2);
  tree_round_trip(&t);
  assert_int_equal(dv_mls_tree_validate(&t, NULL, DV_MLS_VALIDATE_DAVE), 0);
  /* The same leaf twice: duplicate keys and identity. */
  assert_int_equal(dv_mls_tree_add_leaf(&t, dv_mls_tree_leaf(&t, 0), &li), 0);
  assert_int_equal(dv_mls_tree_validate(&t, NULL, 0), DVOICE_ERR_PROTO);
  assert_int_equal(dv_mls_tree_check_unique(&t, 0), DVOICE_ERR_PROTO);
  assert_int_equal(dv_mls_tree_remove_leaf(&t, 2), 0);
  assert_int_equal(dv_mls_tree_check_unique(&t, DV_MLS_VALIDATE_DAVE), 0);
  dv_mls_tree_free(&t);
  for (i = 0; i < 5; i++) {
    free_member(&ms[i]);
  }
  dvt_env_free(&e);
}

static void test_tree_decode_errors(void **state) {
  dvt_env e;
  member ms[2];
  dv_mls_tree t, t2;
  dv_buf b, bad;
  dv_wr w;
  size_t i;
  (void)state;
  env_init(&e);
  build_tree(&e, ms, 2, &t);
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_tree_write(&t, &w);
  dv_mls_tree_init(&t2, NULL);
  /* Nodes: leaf, blank, leaf. Body starts after the 2-byte length. */
  assert_int_equal(b.data[0] & 0xc0, 0x40);
  /* Empty tree. */
  assert_int_equal(dv_mls_tree_decode(&t2, NULL, (const uint8_t *)"\0", 1),
                   DVOICE_ERR_MALFORMED);
  /* A trailing blank node. */
  dv_buf_init(&bad, NULL);
  dv_wr_init(&w, &bad);
  {
    size_t mark = dv_wr_vec_begin(&w);
    dv_wr_bytes(&w, b.data + 2, b.len - 2);
    dv_wr_u8(&w, 0);
    dv_wr_vec_end(&w, mark);
  }
  assert_int_equal(dv_mls_tree_decode(&t2, NULL, bad.data, bad.len),
                   DVOICE_ERR_MALFORMED);
  /* A leaf in a parent position: "leaf, leaf". */
  dv_buf_reset(&bad);
  dv_wr_init(&w, &bad);
  {
    size_t mark = dv_wr_vec_begin(&w);
    dv_wr_bytes(&w, b.data + 2, 2 + t.nodes[0].raw_len);
    dv_wr_bytes(&w, b.data + 2, 2 + t.nodes[0].raw_len);
    dv_wr_vec_end(&w, mark);
  }
  assert_int_equal(dv_mls_tree_decode(&t2, NULL, bad.data, bad.len),
                   DVOICE_ERR_MALFORMED);
  /* Every truncation fails, never over-reads. */
  for (i = 0; i < b.len; i++) {
    assert_int_not_equal(dv_mls_tree_decode(&t2, NULL, b.data, i), 0);
  }
  assert_int_equal(dv_mls_tree_decode(&t2, NULL, b.data, b.len), 0);
  dv_mls_tree_free(&t2);
  dv_buf_free(&bad);
  dv_buf_free(&b);
  dv_mls_tree_free(&t);
  for (i = 0; i < 2; i++) {
    free_member(&ms[i]);
  }
  dvt_env_free(&e);
}

typedef struct nomem_ctx {
  const dv_buf *tree;
  const dv_mls_leaf_node *leaf;
} nomem_ctx;

static int tree_ops_with(const dvoice_mem *mem, void *ud) {
  nomem_ctx *c = ud;
  dv_mls_tree t, t2;
  uint32_t li;
  int rc;
  dv_mls_tree_init(&t, mem);
  dv_mls_tree_init(&t2, mem);
  rc = dv_mls_tree_decode(&t, mem, c->tree->data, c->tree->len);
  if (rc == 0) {
    rc = dv_mls_tree_copy(&t2, &t);
  }
  if (rc == 0) {
    rc = dv_mls_tree_add_leaf(&t2, c->leaf, &li);
  }
  if (rc == 0) {
    rc = dv_mls_tree_add_leaf(&t2, c->leaf, &li);
  }
  if (rc == 0) {
    rc = dv_mls_tree_validate(&t, NULL, 0);
  }
  dv_mls_tree_free(&t);
  dv_mls_tree_free(&t2);
  return rc;
}

static void test_tree_nomem(void **state) {
  dvt_env e;
  member ms[3];
  dv_mls_tree t;
  dv_buf b;
  dv_wr w;
  nomem_ctx c;
  dv_mls_key_package kp;
  size_t i;
  (void)state;
  env_init(&e);
  build_tree(&e, ms, 2, &t);
  build_member(&e, 99, &ms[2]);
  assert_int_equal(dv_mls_key_package_decode(ms[2].kp.data, ms[2].kp.len, &kp),
                   0);
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_tree_write(&t, &w);
  c.tree = &b;
  c.leaf = &kp.leaf_node;
  assert_true(dvt_mem_fail_each(tree_ops_with, &c) >= 5);
  dv_buf_free(&b);
  dv_mls_tree_free(&t);
  for (i = 0; i < 3; i++) {
    free_member(&ms[i]);
  }
  dvt_env_free(&e);
}

/* Signs |leaf| (source commit) for |index| in group |g|. */
static void sign_commit_leaf(dvt_env *e, const member *m,
                             dv_mls_leaf_node *leaf, const dv_mls_bytes *g,
                             uint32_t index, uint8_t sig[DV_MLS_SIG_MAX]) {
  dv_buf tbs;
  dv_wr w;
  size_t sig_len;
  dv_buf_init(&tbs, NULL);
  dv_wr_init(&w, &tbs);
  dv_mls_leaf_node_tbs_write(&w, leaf, g, index);
  assert_int_equal(w.err, 0);
  assert_int_equal(dv_mls_sign_with_label(&e->env, m->sig.priv, "LeafNodeTBS",
                                          tbs.data, tbs.len, sig, &sig_len),
                   0);
  leaf->signature = dv_mls_b(sig, sig_len);
  dv_buf_free(&tbs);
}

static void test_treekem_exclude_added(void **state) {
  static const uint8_t gid[8] = {0x0c, 0xde, 0x77, 0xea,
                                 0xdc, 0x82, 0x30, 0x33};
  static const uint8_t gc[] = "provisional group context";
  dv_mls_bytes g = dv_mls_b(gid, sizeof(gid));
  dvt_env e;
  member ms[3];
  dv_mls_tree t0, t, t2;
  dv_mls_treekem_encap st;
  dv_mls_tree_priv pr[3];
  dv_mls_leaf_node leaf;
  dv_mls_update_path path;
  uint8_t secret[32], cs[32], cs1[32], cs2[32], sig[DV_MLS_SIG_MAX];
  uint32_t added = 2;
  dv_buf up;
  dv_wr w;
  dv_rd r;
  size_t i;
  (void)state;
  env_init(&e);
  /* Members 0 and 1, then member 2 added by this commit (excluded). */
  build_tree(&e, ms, 3, &t0);
  for (i = 0; i < 3; i++) {
    assert_int_equal(
        dv_mls_tree_priv_init(&e.env, &pr[i], (uint32_t)i, ms[i].enc.priv), 0);
    assert_int_equal(dv_mls_tree_priv_prune(&pr[i], &t0), 0);
  }
  dv_mls_tree_init(&t, NULL);
  assert_int_equal(dv_mls_tree_copy(&t, &t0), 0);
  dv_rand(&e.env, secret, sizeof(secret));
  assert_int_equal(dv_mls_treekem_encap_begin(&e.env, &t, 0, secret, &st), 0);
  assert_int_equal(st.n, 2);
  leaf = *dv_mls_tree_leaf(&t, 0);
  leaf.encryption_key = dv_mls_b(st.leaf.pub, DV_MLS_PUB_LEN);
  leaf.source = DV_MLS_LEAF_SRC_COMMIT;
  leaf.parent_hash = dv_mls_b(st.leaf_parent_hash, st.leaf_parent_hash_len);
  sign_commit_leaf(&e, &ms[0], &leaf, &g, 0, sig);
  assert_int_equal(dv_mls_tree_set_leaf(&t, 0, &leaf), 0);
  dv_buf_init(&up, NULL);
  dv_wr_init(&w, &up);
  assert_int_equal(
      dv_mls_treekem_encap_finish(&e.env, &st, &t, dv_mls_tree_leaf(&t, 0),
                                  &added, 1, gc, sizeof(gc), &w, cs, &pr[0]),
      0);
  assert_int_equal(dv_mls_tree_priv_prune(&pr[0], &t), 0);
  assert_int_equal(pr[0].n, 2);
  assert_int_equal(dv_mls_tree_validate(&t, &g, 0), 0);
  dv_rd_init(&r, up.data, up.len);
  assert_int_equal(dv_mls_update_path_read(&r, &path), 0);
  assert_int_equal(dv_rd_finish(&r), 0);
  /* Member 1 merges and decrypts. */
  dv_mls_tree_init(&t2, NULL);
  assert_int_equal(dv_mls_tree_copy(&t2, &t0), 0);
  assert_int_equal(dv_mls_treekem_merge(&t2, 0, &path, &g, 0), 0);
  assert_int_equal(dv_mls_treekem_decap(&e.env, &pr[1], &t2, 0, &path, &added,
                                        1, gc, sizeof(gc), cs1, NULL, NULL),
                   0);
  assert_memory_equal(cs, cs1, 32);
  /* The wrong context fails to decrypt. */
  assert_int_equal(dv_mls_treekem_decap(&e.env, &pr[1], &t2, 0, &path, &added,
                                        1, gc, sizeof(gc) - 1, cs1, NULL, NULL),
                   DVOICE_ERR_CRYPTO);
  /* The added member has nothing to decrypt (it gets a Welcome); without
   * the exclusion the ciphertext count no longer matches. */
  assert_int_equal(dv_mls_treekem_decap(&e.env, &pr[2], &t2, 0, &path, &added,
                                        1, gc, sizeof(gc), cs2, NULL, NULL),
                   DVOICE_ERR_PROTO);
  assert_int_equal(dv_mls_treekem_decap(&e.env, &pr[2], &t2, 0, &path, NULL, 0,
                                        gc, sizeof(gc), cs2, NULL, NULL),
                   DVOICE_ERR_PROTO);
  /* Welcome-style: implant the root path secret for member 2. */
  {
    uint8_t ps[32], csw[32];
    dv_mls_tree_priv p1 = pr[1];
    uint32_t node;
    assert_int_equal(dv_mls_treekem_decap(&e.env, &p1, &t2, 0, &path, &added, 1,
                                          gc, sizeof(gc), cs1, ps, &node),
                     0);
    assert_int_equal(node, 1);
    /* Member 2 needs the secret at LCA(2, 0) = root 3: one step up. */
    assert_int_equal(
        dv_mls_tree_priv_implant(&e.env, &pr[2], &t2, 0, 1, ps, 32, csw),
        DVOICE_ERR_PROTO);
    assert_int_equal(dv_mls_derive_secret(ps, 32, "path", csw), 0);
    assert_int_equal(
        dv_mls_tree_priv_implant(&e.env, &pr[2], &t2, 0, 3, csw, 32, csw), 0);
    assert_memory_equal(cs, csw, 32);
    assert_non_null(dv_mls_tree_priv_key(&pr[2], 3));
  }
  /* A path with one node too few is refused. */
  {
    dv_mls_update_path short_path = path;
    dv_mls_update_path_node first;
    dv_mls_iter it;
    dv_mls_tree t3;
    dv_mls_iter_init(&it, &path.nodes);
    assert_int_equal(dv_mls_next_update_path_node(&it, &first), 1);
    short_path.nodes.len = it.r.pos;
    short_path.nodes.count = 1;
    dv_mls_tree_init(&t3, NULL);
    assert_int_equal(dv_mls_tree_copy(&t3, &t0), 0);
    assert_int_equal(dv_mls_treekem_merge(&t3, 0, &short_path, &g, 0),
                     DVOICE_ERR_PROTO);
    dv_mls_tree_free(&t3);
  }
  dv_mls_tree_free(&t2);
  dv_mls_tree_free(&t);
  dv_mls_tree_free(&t0);
  dv_buf_free(&up);
  for (i = 0; i < 3; i++) {
    dv_mls_tree_priv_wipe(&pr[i]);
    free_member(&ms[i]);
  }
  dvt_env_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_package_build_decode),
      cmocka_unit_test(test_key_package_errors),
      cmocka_unit_test(test_message_errors),
      cmocka_unit_test(test_commit_optional),
      cmocka_unit_test(test_tree_add_remove),
      cmocka_unit_test(test_tree_decode_errors),
      cmocka_unit_test(test_tree_nomem),
      cmocka_unit_test(test_treekem_exclude_added),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
