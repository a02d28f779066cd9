/*
 * Group-level conformance, cipher suite 2:
 * - the Discord gateway capture ($DVOICE_DAVE_VECTORS/
 *   discord-gateway-capture.json): op 25 external sender, op 27 add
 *   proposal (signature, KeyPackage, proposal ref, KeyPackage ref), op 27
 *   revoke payload;
 * - message-protection.json: proposal_pub and commit_pub (membership tag,
 *   signature; sign-and-verify round trip);
 * - welcome.json: GroupSecrets and GroupInfo decryption, GroupInfo
 *   signature, key schedule and confirmation tag;
 * - passive-client-welcome.json: full join (tree, path secret, key
 *   schedule), compared on the epoch authenticator.
 * Skips when the vector folders are unset (fails under CI=true) and names
 * every skipped case with its reason.
 */
#include "dvt.h"

#include <sodium.h>

#include "cvec.h"
#include "mls/mls_codec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_group.h"
#include "mls/mls_keysched.h"
#include "util/dv_rw.h"

#define MLS_ENV "DVOICE_MLS_VECTORS"
#define DAVE_ENV "DVOICE_DAVE_VECTORS"

static uint64_t parse_u64(const char *s) {
  return strtoull(s, NULL, 10);
}

/* Extension vector body holding one external_senders extension with the
 * given ExternalSender encoding. */
static void external_senders_ext(dv_buf *out, const uint8_t *es,
                                 size_t es_len) {
  dv_wr w;
  dv_wr_init(&w, out);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t m = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, es, es_len);
  dv_wr_vec_end(&w, m);
  assert_int_equal(w.err, 0);
}

static void test_gateway_capture(void **state) {
  (void)state;
  json_t *root = cvec_load(DAVE_ENV, "discord-gateway-capture.json");
  if (root == NULL) {
    print_message("# discord-gateway-capture.json: skipped, " DAVE_ENV
                  " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  cvec_bytes es_bytes = cvec_field(root, "op25_external_sender_payload");
  cvec_bytes append =
      cvec_field(root, "op27_append_payload_after_operation_type");
  cvec_bytes revoke =
      cvec_field(root, "op27_revoke_payload_after_operation_type");
  const json_t *exp = json_object_get(root, "expected");
  cvec_bytes want_ref = cvec_field(exp, "proposal_ref_of_the_add");
  cvec_bytes want_kp_ref =
      cvec_field(exp, "key_package_ref_of_the_added_member");
  uint64_t channel = parse_u64(cvec_str(root, "channel_id"));
  uint64_t self_uid = parse_u64(cvec_str(root, "self_user_id"));
  uint64_t added_uid = parse_u64(cvec_str(root, "added_user_id"));

  /* op 25: a raw ExternalSender, 71 bytes, basic identity 0x00. */
  dv_mls_external_sender es;
  assert_int_equal(dv_mls_external_sender_decode(es_bytes.p, es_bytes.len, &es),
                   0);
  assert_int_equal(dv_mls_check_pub(es.signature_key.p, es.signature_key.len),
                   0);

  /* A pending epoch-0 group for the channel with that external sender. */
  dv_mls_sig_key sk;
  dv_mls_hpke_key lk;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &sk), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &lk), 0);
  dv_buf leaf, exts;
  dv_buf_init(&leaf, NULL);
  dv_buf_init(&exts, NULL);
  assert_int_equal(dv_mls_dave_leaf_node(&e.env, self_uid, &sk, &lk, &leaf), 0);
  external_senders_ext(&exts, es_bytes.p, es_bytes.len);
  uint8_t gid[8];
  dv_put_u64(gid, channel);
  dv_mls_group g;
  dv_mls_group_init(&g, &e.env);
  dv_mls_bytes leaf_b = dv_mls_b(leaf.data, leaf.len);
  dv_mls_bytes ext_b = dv_mls_b(exts.data, exts.len);
  assert_int_equal(
      dv_mls_group_create(&g, gid, sizeof gid, &leaf_b, &sk, &lk, &ext_b), 0);
  dv_mls_external_sender got_es;
  assert_int_equal(dv_mls_group_external_sender(&g, &got_es), 0);
  assert_true(dv_mls_bytes_eq(&got_es.signature_key, &es.signature_key));
  assert_int_equal(
      dv_mls_group_external_sender_matches(&g, es_bytes.p, es_bytes.len), 0);

  /* op 27 append: MLSMessage proposal_messages<V>. */
  dv_rd r, sub;
  dv_rd_init(&r, append.p, append.len);
  assert_int_equal(dv_rd_vec(&r, &sub), 0);
  assert_int_equal(dv_rd_finish(&r), 0);
  size_t n_msgs = 0;
  while (dv_rd_left(&sub) > 0) {
    dv_mls_message m;
    size_t start = sub.pos;
    assert_int_equal(dv_mls_message_read(&sub, &m), 0);
    size_t mlen = sub.pos - start;
    n_msgs++;
    assert_int_equal(m.wire_format, DV_MLS_WF_PUBLIC);
    const dv_mls_public_message *pm = &m.pub;
    assert_int_equal(pm->content.sender.type, DV_MLS_SENDER_EXTERNAL);
    assert_int_equal(pm->content.proposal.type, DV_MLS_PROP_ADD);
    assert_null(pm->membership_tag.p);
    /* The signature covers FramedContentTBS without a GroupContext. */
    assert_int_equal(dv_mls_public_message_verify(NULL, pm, es.signature_key.p,
                                                  es.signature_key.len, NULL,
                                                  NULL),
                     0);
    uint8_t ref[32];
    assert_int_equal(dv_mls_proposal_ref(pm, ref), 0);
    dvt_assert_bytes(ref, 32, want_ref.p, want_ref.len);
    /* The same through the group check (epoch 0, our channel). */
    memset(ref, 0, sizeof ref);
    assert_int_equal(dv_mls_group_check_external_proposal(&g, &m, ref), 0);
    dvt_assert_bytes(ref, 32, want_ref.p, want_ref.len);
    /* The added KeyPackage: both signatures, its ref and user id. */
    const dv_mls_key_package *kp = &pm->content.proposal.add;
    assert_int_equal(dv_mls_key_package_verify(NULL, kp, DV_MLS_VALIDATE_DAVE),
                     0);
    assert_int_equal(dv_mls_make_key_package_ref(kp->raw.p, kp->raw.len, ref),
                     0);
    dvt_assert_bytes(ref, 32, want_kp_ref.p, want_kp_ref.len);
    uint64_t uid = 0;
    assert_int_equal(dv_mls_leaf_user_id(&kp->leaf_node, &uid), 0);
    assert_true(uid == added_uid);

    /* Tampering: every signature byte, the epoch, the group. */
    uint8_t *copy = malloc(mlen);
    assert_non_null(copy);
    memcpy(copy, sub.p + start, mlen);
    dv_mls_message m2;
    size_t sig_off = (size_t)(pm->auth.signature.p - (sub.p + start));
    for (size_t i = 0; i < pm->auth.signature.len; i += 7) {
      copy[sig_off + i] ^= 0x04;
      int rc = dv_mls_message_decode(copy, mlen, &m2);
      if (rc == 0)
        rc = dv_mls_group_check_external_proposal(&g, &m2, ref);
      assert_int_not_equal(rc, 0);
      copy[sig_off + i] ^= 0x04;
    }
    /* Epoch byte (last byte of the u64 after the 8-byte group id). */
    copy[4 + 1 + 8 + 7] ^= 1;
    assert_int_equal(dv_mls_message_decode(copy, mlen, &m2), 0);
    assert_int_equal(dv_mls_group_check_external_proposal(&g, &m2, ref),
                     DVOICE_ERR_PROTO);
    copy[4 + 1 + 8 + 7] ^= 1;
    /* Every truncation and one trailing byte are decode errors. */
    for (size_t cut = 0; cut < mlen; cut++)
      assert_int_not_equal(dv_mls_message_decode(copy, cut, &m2), 0);
    uint8_t *longer = malloc(mlen + 1);
    assert_non_null(longer);
    memcpy(longer, copy, mlen);
    longer[mlen] = 0;
    assert_int_equal(dv_mls_message_decode(longer, mlen + 1, &m2),
                     DVOICE_ERR_TRAILING);
    free(longer);
    free(copy);
  }
  assert_int_equal(n_msgs, 1);

  /* op 27 revoke: ProposalRef proposal_refs<V>, holding the add's ref. */
  dv_rd_init(&r, revoke.p, revoke.len);
  assert_int_equal(dv_rd_vec(&r, &sub), 0);
  const uint8_t *rp;
  size_t rl;
  assert_int_equal(dv_rd_opaque(&sub, &rp, &rl), 0);
  assert_int_equal(dv_rd_finish(&sub), 0);
  assert_int_equal(dv_rd_finish(&r), 0);
  dvt_assert_bytes(rp, rl, want_ref.p, want_ref.len);

  print_message("# discord-gateway-capture.json: 1 passed (op 25 external "
                "sender, op 27 add: 3 signatures, proposal ref, KeyPackage "
                "ref; op 27 revoke)\n");
  dv_mls_group_free(&g);
  dv_buf_free(&leaf);
  dv_buf_free(&exts);
  cvec_bytes_free(&es_bytes);
  cvec_bytes_free(&append);
  cvec_bytes_free(&revoke);
  cvec_bytes_free(&want_ref);
  cvec_bytes_free(&want_kp_ref);
  dvt_env_free(&e);
  json_decref(root);
}

/* media-frames.json: the MLS-Exporter half of DAVE (dave.md 4.1, 4.2): the
 * per-sender base secret from the exporter secret, and the hash ratchet's
 * first keys from a 16-byte secret. The frame AEAD is the media layer's. */
static void test_dave_exporter(void **state) {
  (void)state;
  json_t *root = cvec_load(DAVE_ENV, "media-frames.json");
  if (root == NULL) {
    print_message("# media-frames.json: skipped, " DAVE_ENV " unset\n");
    skip();
  }
  cvec_bytes exporter = cvec_field(root, "exporter_secret");
  cvec_bytes want_base = cvec_field(root, "base_secret");
  const json_t *ex = json_object_get(root, "export");
  uint64_t uid = parse_u64(cvec_str(root, "sender_user_id"));
  uint8_t ctx[8];
  for (int i = 0; i < 8; i++)
    ctx[i] = (uint8_t)(uid >> (8 * i));
  assert_int_equal(exporter.len, 32);
  uint8_t base[16];
  assert_int_equal(cvec_u64(ex, "length"), 16);
  assert_int_equal(
      dv_mls_export(exporter.p, cvec_str(ex, "label"), ctx, 8, base, 16), 0);
  dvt_assert_bytes(base, 16, want_base.p, want_base.len);

  const json_t *hr = json_object_get(root, "hash_ratchet");
  cvec_bytes rb = cvec_field(hr, "base");
  cvec_bytes k0 = cvec_field(hr, "key0"), n0 = cvec_field(hr, "nonce0");
  cvec_bytes k1 = cvec_field(hr, "key1"), k2 = cvec_field(hr, "key2");
  uint8_t secret[32], next[32], key[16], nonce[12];
  size_t slen = rb.len;
  memcpy(secret, rb.p, slen);
  const cvec_bytes *keys[3] = {&k0, &k1, &k2};
  for (uint32_t g = 0; g < 3; g++) {
    assert_int_equal(dv_mls_derive_tree_secret(secret, slen, "key", g, key, 16),
                     0);
    dvt_assert_bytes(key, 16, keys[g]->p, keys[g]->len);
    if (g == 0) {
      assert_int_equal(
          dv_mls_derive_tree_secret(secret, slen, "nonce", g, nonce, 12), 0);
      dvt_assert_bytes(nonce, 12, n0.p, n0.len);
    }
    assert_int_equal(
        dv_mls_derive_tree_secret(secret, slen, "secret", g, next, 32), 0);
    memcpy(secret, next, 32);
    slen = 32;
  }
  print_message("# media-frames.json: 1 passed (exporter base secret, hash "
                "ratchet key0..2 and nonce0; frame AEAD left to the media "
                "layer)\n");
  cvec_bytes_free(&exporter);
  cvec_bytes_free(&want_base);
  cvec_bytes_free(&rb);
  cvec_bytes_free(&k0);
  cvec_bytes_free(&n0);
  cvec_bytes_free(&k1);
  cvec_bytes_free(&k2);
  json_decref(root);
}

/* A GroupContext with no extensions. */
static void write_gc(dv_buf *b, const cvec_bytes *gid, uint64_t epoch,
                     const cvec_bytes *th, const cvec_bytes *cth) {
  dv_wr w;
  dv_wr_init(&w, b);
  dv_wr_u16(&w, 1);
  dv_wr_u16(&w, 2);
  dv_wr_opaque(&w, gid->p, gid->len);
  dv_wr_u64(&w, epoch);
  dv_wr_opaque(&w, th->p, th->len);
  dv_wr_opaque(&w, cth->p, cth->len);
  dv_wr_varint(&w, 0);
  assert_int_equal(w.err, 0);
}

/* Verifies |msg_hex| (an MLSMessage PublicMessage from a member) and that
 * its content encodes as |content| (proposal or commit). Then signs the
 * same content ourselves and verifies the result. */
static void check_protection(dvt_env *e, const json_t *c, const char *kind,
                             const dv_buf *gc) {
  char key[32];
  snprintf(key, sizeof key, "%s_pub", kind);
  cvec_bytes msg = cvec_field(c, key);
  cvec_bytes content = cvec_field(c, kind);
  cvec_bytes pub = cvec_field(c, "signature_pub");
  cvec_bytes priv = cvec_field(c, "signature_priv");
  cvec_bytes mk = cvec_field(c, "membership_key");
  assert_int_equal(mk.len, 32);
  dv_mls_bytes gcb = dv_mls_b(gc->data, gc->len);

  dv_mls_message m;
  assert_int_equal(dv_mls_message_decode(msg.p, msg.len, &m), 0);
  assert_int_equal(m.wire_format, DV_MLS_WF_PUBLIC);
  assert_int_equal(m.pub.content.sender.type, DV_MLS_SENDER_MEMBER);
  assert_int_equal(
      dv_mls_public_message_verify(NULL, &m.pub, pub.p, pub.len, &gcb, mk.p),
      0);
  /* A wrong membership key or GroupContext fails. */
  mk.p[0] ^= 1;
  assert_int_equal(
      dv_mls_public_message_verify(NULL, &m.pub, pub.p, pub.len, &gcb, mk.p),
      DVOICE_ERR_CRYPTO);
  mk.p[0] ^= 1;
  gc->data[gc->len - 2] ^= 1;
  assert_int_equal(
      dv_mls_public_message_verify(NULL, &m.pub, pub.p, pub.len, &gcb, mk.p),
      DVOICE_ERR_CRYPTO);
  gc->data[gc->len - 2] ^= 1;

  /* The content is the given proposal / commit. */
  dv_buf enc;
  dv_buf_init(&enc, NULL);
  dv_wr w;
  dv_wr_init(&w, &enc);
  if (m.pub.content.content_type == DV_MLS_CONTENT_PROPOSAL) {
    dv_mls_proposal_write(&w, &m.pub.content.proposal);
  } else {
    assert_int_equal(m.pub.content.content_type, DV_MLS_CONTENT_COMMIT);
    dv_mls_commit_write(&w, &m.pub.content.commit);
  }
  assert_int_equal(w.err, 0);
  dvt_assert_bytes(enc.data, enc.len, content.p, content.len);

  /* Round trip: sign the same FramedContent ourselves, seal, verify. */
  dv_mls_sig_key sk;
  assert_int_equal(priv.len, 32);
  memcpy(sk.priv, priv.p, 32);
  assert_int_equal(dv_mls_sig_key_from_priv(&e->env, &sk), 0);
  dvt_assert_bytes(sk.pub, 65, pub.p, pub.len);
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len;
  assert_int_equal(
      dv_mls_framed_content_sign(&e->env, sk.priv, &m.pub.content.raw,
                                 DV_MLS_SENDER_MEMBER, &gcb, sig, &sig_len),
      0);
  uint8_t ctag[32];
  memset(ctag, 0x5a, sizeof ctag);
  int is_commit = m.pub.content.content_type == DV_MLS_CONTENT_COMMIT;
  dv_buf out;
  dv_buf_init(&out, NULL);
  assert_int_equal(dv_mls_public_message_seal(NULL, &m.pub.content.raw, sig,
                                              sig_len, is_commit ? ctag : NULL,
                                              mk.p, &gcb, &out),
                   0);
  dv_mls_message m2;
  assert_int_equal(dv_mls_message_decode(out.data, out.len, &m2), 0);
  assert_int_equal(
      dv_mls_public_message_verify(NULL, &m2.pub, pub.p, pub.len, &gcb, mk.p),
      0);
  assert_true(dv_mls_bytes_eq(&m2.pub.content.raw, &m.pub.content.raw));
  /* Deterministic ECDSA: our signature equals the vector's only if the
   * generator used RFC 6979 too, so only the verification is asserted. */
  dv_buf_free(&out);
  dv_buf_free(&enc);
  dv_mls_sig_key_wipe(&sk);
  cvec_bytes_free(&msg);
  cvec_bytes_free(&content);
  cvec_bytes_free(&pub);
  cvec_bytes_free(&priv);
  cvec_bytes_free(&mk);
}

static void test_message_protection(void **state) {
  (void)state;
  json_t *root = cvec_load(MLS_ENV, "message-protection.json");
  if (root == NULL) {
    print_message("# message-protection.json: skipped, " MLS_ENV " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, passed = 0, other = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != 2) {
      other++;
      continue;
    }
    cvec_bytes gid = cvec_field(c, "group_id");
    cvec_bytes th = cvec_field(c, "tree_hash");
    cvec_bytes cth = cvec_field(c, "confirmed_transcript_hash");
    dv_buf gc;
    dv_buf_init(&gc, NULL);
    write_gc(&gc, &gid, cvec_u64(c, "epoch"), &th, &cth);
    check_protection(&e, c, "proposal", &gc);
    check_protection(&e, c, "commit", &gc);
    print_message("# message-protection.json case %zu: skipped parts "
                  "proposal_priv, commit_priv, application_priv "
                  "(PrivateMessage: DAVE uses PublicMessage only)\n",
                  idx);
    dv_buf_free(&gc);
    cvec_bytes_free(&gid);
    cvec_bytes_free(&th);
    cvec_bytes_free(&cth);
    passed++;
  }
  print_message("# message-protection.json: %zu passed (cipher suite 2: "
                "proposal_pub, commit_pub), %zu skipped (other cipher "
                "suites)\n",
                passed, other);
  assert_true(passed > 0);
  dvt_env_free(&e);
  json_decref(root);
}

static void test_welcome(void **state) {
  (void)state;
  json_t *root = cvec_load(MLS_ENV, "welcome.json");
  if (root == NULL) {
    print_message("# welcome.json: skipped, " MLS_ENV " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, passed = 0, other = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != 2) {
      other++;
      continue;
    }
    cvec_bytes kp_msg = cvec_field(c, "key_package");
    cvec_bytes init_priv = cvec_field(c, "init_priv");
    cvec_bytes signer_pub = cvec_field(c, "signer_pub");
    cvec_bytes wmsg = cvec_field(c, "welcome");
    dv_mls_message kpm, wm;
    assert_int_equal(dv_mls_message_decode(kp_msg.p, kp_msg.len, &kpm), 0);
    assert_int_equal(kpm.wire_format, DV_MLS_WF_KEY_PACKAGE);
    assert_int_equal(dv_mls_key_package_verify(NULL, &kpm.key_package, 0), 0);
    assert_int_equal(dv_mls_message_decode(wmsg.p, wmsg.len, &wm), 0);
    assert_int_equal(wm.wire_format, DV_MLS_WF_WELCOME);
    dv_mls_hpke_key ik;
    assert_int_equal(init_priv.len, 32);
    memcpy(ik.priv, init_priv.p, 32);
    assert_int_equal(dv_mls_hpke_key_from_priv(&e.env, &ik), 0);
    assert_true(dv_mls_bytes_eq(&kpm.key_package.init_key,
                                &(dv_mls_bytes){ik.pub, 65}));
    uint8_t ref[32];
    assert_int_equal(dv_mls_make_key_package_ref(kpm.key_package.raw.p,
                                                 kpm.key_package.raw.len, ref),
                     0);
    dv_buf gs, gib;
    dv_buf_init(&gs, NULL);
    dv_buf_init(&gib, NULL);
    assert_int_equal(
        dv_mls_welcome_open(&e.env, &wm.welcome, ref, &ik, &gs, &gib), 0);
    dv_mls_group_secrets sec;
    dv_mls_group_info gi;
    assert_int_equal(dv_mls_group_secrets_decode(gs.data, gs.len, &sec), 0);
    assert_int_equal(dv_mls_group_info_decode(gib.data, gib.len, &gi), 0);
    assert_int_equal(dv_mls_verify_with_label(
                         signer_pub.p, signer_pub.len, "GroupInfoTBS", gi.raw.p,
                         gi.tbs_len, gi.signature.p, gi.signature.len),
                     0);
    dv_mls_epoch_secrets s;
    assert_int_equal(dv_mls_keysched_from_joiner(sec.joiner_secret.p, NULL,
                                                 gi.group_context.raw.p,
                                                 gi.group_context.raw.len, &s),
                     0);
    assert_int_equal(dv_mls_confirmation_tag_verify(
                         s.confirmation_key,
                         gi.group_context.confirmed_transcript_hash.p,
                         gi.group_context.confirmed_transcript_hash.len,
                         gi.confirmation_tag.p, gi.confirmation_tag.len),
                     0);
    /* Someone else's KeyPackage ref finds nothing; a wrong init key fails
     * the HPKE tag. */
    ref[0] ^= 1;
    assert_int_equal(
        dv_mls_welcome_open(&e.env, &wm.welcome, ref, &ik, &gs, &gib),
        DVOICE_ERR_NOT_FOUND);
    ref[0] ^= 1;
    dv_mls_hpke_key other_key;
    assert_int_equal(dv_mls_hpke_keygen(&e.env, &other_key), 0);
    assert_int_equal(
        dv_mls_welcome_open(&e.env, &wm.welcome, ref, &other_key, &gs, &gib),
        DVOICE_ERR_CRYPTO);
    dv_mls_epoch_secrets_wipe(&s);
    dv_buf_free_secret(&gs);
    dv_buf_free(&gib);
    cvec_bytes_free(&kp_msg);
    cvec_bytes_free(&init_priv);
    cvec_bytes_free(&signer_pub);
    cvec_bytes_free(&wmsg);
    passed++;
  }
  print_message("# welcome.json: %zu passed (cipher suite 2), %zu skipped "
                "(other cipher suites)\n",
                passed, other);
  assert_true(passed > 0);
  dvt_env_free(&e);
  json_decref(root);
}

/* Fills |psks| from a case's external_psks (psk_id/psk hex). */
static size_t load_psks(const json_t *c, cvec_bytes ids[8],
                        cvec_bytes secrets[8], dv_mls_external_psk psks[8]) {
  const json_t *list = json_object_get(c, "external_psks");
  size_t n = json_array_size(list);
  assert_true(n <= 8);
  for (size_t i = 0; i < n; i++) {
    const json_t *p = json_array_get(list, i);
    ids[i] = cvec_field(p, "psk_id");
    secrets[i] = cvec_field(p, "psk");
    psks[i].id = ids[i].p;
    psks[i].id_len = ids[i].len;
    psks[i].secret = secrets[i].p;
    psks[i].secret_len = secrets[i].len;
  }
  return n;
}

static void test_passive_client_welcome(void **state) {
  (void)state;
  json_t *root = cvec_load(MLS_ENV, "passive-client-welcome.json");
  if (root == NULL) {
    print_message("# passive-client-welcome.json: skipped, " MLS_ENV
                  " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, passed = 0, other = 0, psk = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != 2) {
      other++;
      continue;
    }
    cvec_bytes ids[8], secrets[8];
    dv_mls_external_psk psks[8];
    size_t n_psks = load_psks(c, ids, secrets, psks);
    if (n_psks > 0)
      psk++;
    cvec_bytes kp_msg = cvec_field(c, "key_package");
    cvec_bytes sig_priv = cvec_field(c, "signature_priv");
    cvec_bytes enc_priv = cvec_field(c, "encryption_priv");
    cvec_bytes init_priv = cvec_field(c, "init_priv");
    cvec_bytes wmsg = cvec_field(c, "welcome");
    cvec_bytes want_auth = cvec_field(c, "initial_epoch_authenticator");
    cvec_bytes tree = {NULL, 0};
    if (json_is_string(json_object_get(c, "ratchet_tree")))
      tree = cvec_field(c, "ratchet_tree");

    dv_mls_message kpm;
    assert_int_equal(dv_mls_message_decode(kp_msg.p, kp_msg.len, &kpm), 0);
    dv_mls_sig_key sk;
    dv_mls_hpke_key ik, lk;
    memcpy(sk.priv, sig_priv.p, 32);
    memcpy(ik.priv, init_priv.p, 32);
    memcpy(lk.priv, enc_priv.p, 32);
    assert_int_equal(dv_mls_sig_key_from_priv(&e.env, &sk), 0);
    assert_int_equal(dv_mls_hpke_key_from_priv(&e.env, &ik), 0);
    assert_int_equal(dv_mls_hpke_key_from_priv(&e.env, &lk), 0);
    dv_mls_join_keys keys = {kpm.key_package.raw.p,
                             kpm.key_package.raw.len,
                             &ik,
                             &lk,
                             &sk,
                             psks,
                             n_psks};
    /* The Welcome is MLSMessage-wrapped: skip version and wire format. */
    assert_true(wmsg.len > 4);
    dv_mls_bytes ext_tree = dv_mls_b(tree.p, tree.len);
    if (n_psks > 0) {
      /* Without the PSK (DAVE's setting) such a Welcome is refused. */
      dv_mls_group g0;
      dv_mls_group_init(&g0, &e.env);
      g0.validate_flags = 0;
      keys.n_psks = 0;
      assert_int_equal(dv_mls_group_join(&g0, wmsg.p + 4, wmsg.len - 4, &keys,
                                         tree.p != NULL ? &ext_tree : NULL),
                       DVOICE_ERR_UNSUPPORTED);
      keys.n_psks = n_psks;
      dv_mls_group_free(&g0);
    }
    dv_mls_group g;
    dv_mls_group_init(&g, &e.env);
    g.validate_flags = 0; /* generic MLS credentials, not DAVE's */
    int rc = dv_mls_group_join(&g, wmsg.p + 4, wmsg.len - 4, &keys,
                               tree.p != NULL ? &ext_tree : NULL);
    if (rc != 0)
      print_error("case %zu: join failed %d\n", idx, rc);
    assert_int_equal(rc, 0);
    dvt_assert_bytes(g.secrets.epoch_authenticator, 32, want_auth.p,
                     want_auth.len);
    /* A tampered tree (in-band or external) is refused. */
    if (tree.p != NULL) {
      dv_mls_group g2;
      dv_mls_group_init(&g2, &e.env);
      g2.validate_flags = 0;
      tree.p[tree.len - 3] ^= 1;
      assert_int_not_equal(
          dv_mls_group_join(&g2, wmsg.p + 4, wmsg.len - 4, &keys, &ext_tree),
          0);
      assert_int_equal(g2.tree.n_leaves, 0);
      tree.p[tree.len - 3] ^= 1;
      dv_mls_group_free(&g2);
    }
    dv_mls_group_free(&g);
    cvec_bytes_free(&kp_msg);
    cvec_bytes_free(&sig_priv);
    cvec_bytes_free(&enc_priv);
    cvec_bytes_free(&init_priv);
    cvec_bytes_free(&wmsg);
    cvec_bytes_free(&want_auth);
    if (tree.p != NULL)
      cvec_bytes_free(&tree);
    for (size_t i = 0; i < n_psks; i++) {
      cvec_bytes_free(&ids[i]);
      cvec_bytes_free(&secrets[i]);
    }
    passed++;
  }
  print_message("# passive-client-welcome.json: %zu passed (cipher suite 2; "
                "%zu of them with an external PSK), %zu skipped (other cipher "
                "suites)\n",
                passed, psk, other);
  assert_true(passed > 0);
  dvt_env_free(&e);
  json_decref(root);
}

/* Nonzero if the encoded commit MLSMessage holds an inline proposal. */
static int has_inline_proposal(const cvec_bytes *commit) {
  dv_mls_message m;
  assert_int_equal(dv_mls_message_decode(commit->p, commit->len, &m), 0);
  dv_mls_iter it;
  dv_mls_proposal_or_ref por;
  dv_mls_iter_init(&it, &m.pub.content.commit.proposals);
  while (dv_mls_next_proposal_or_ref(&it, &por) == 1) {
    if (por.type == DV_MLS_POR_PROPOSAL)
      return por.proposal.type;
  }
  return 0;
}

/* passive-client-handling-commit.json: join (with the cases' external PSK),
 * then process each epoch's proposals (by reference, from members) and
 * commit, comparing epoch authenticators. Stops a case, naming the reason,
 * at the first epoch using something DAVE does not (inline proposals,
 * proposal types other than Add/Remove). */
static void test_passive_client_commit(void **state) {
  (void)state;
  json_t *root = cvec_load(MLS_ENV, "passive-client-handling-commit.json");
  if (root == NULL) {
    print_message("# passive-client-handling-commit.json: skipped, " MLS_ENV
                  " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, full = 0, partial = 0, other = 0, epochs_ok = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != 2) {
      other++;
      continue;
    }
    cvec_bytes ids[8], secrets[8];
    dv_mls_external_psk psks[8];
    size_t n_psks = load_psks(c, ids, secrets, psks);
    cvec_bytes kp_msg = cvec_field(c, "key_package");
    cvec_bytes sig_priv = cvec_field(c, "signature_priv");
    cvec_bytes enc_priv = cvec_field(c, "encryption_priv");
    cvec_bytes init_priv = cvec_field(c, "init_priv");
    cvec_bytes wmsg = cvec_field(c, "welcome");
    cvec_bytes want_auth = cvec_field(c, "initial_epoch_authenticator");
    cvec_bytes tree = {NULL, 0};
    if (json_is_string(json_object_get(c, "ratchet_tree")))
      tree = cvec_field(c, "ratchet_tree");
    dv_mls_message kpm;
    assert_int_equal(dv_mls_message_decode(kp_msg.p, kp_msg.len, &kpm), 0);
    dv_mls_sig_key sk;
    dv_mls_hpke_key ik, lk;
    memcpy(sk.priv, sig_priv.p, 32);
    memcpy(ik.priv, init_priv.p, 32);
    memcpy(lk.priv, enc_priv.p, 32);
    assert_int_equal(dv_mls_sig_key_from_priv(&e.env, &sk), 0);
    assert_int_equal(dv_mls_hpke_key_from_priv(&e.env, &ik), 0);
    assert_int_equal(dv_mls_hpke_key_from_priv(&e.env, &lk), 0);
    dv_mls_join_keys keys = {kpm.key_package.raw.p,
                             kpm.key_package.raw.len,
                             &ik,
                             &lk,
                             &sk,
                             psks,
                             n_psks};
    dv_mls_bytes ext_tree = dv_mls_b(tree.p, tree.len);
    dv_mls_group g, next;
    dv_mls_group_init(&g, &e.env);
    dv_mls_group_init(&next, &e.env);
    g.validate_flags = 0;
    g.accept_member_proposals = 1;
    int rc = dv_mls_group_join(&g, wmsg.p + 4, wmsg.len - 4, &keys,
                               tree.p != NULL ? &ext_tree : NULL);
    if (rc != 0)
      print_error("case %zu: join failed %d\n", idx, rc);
    assert_int_equal(rc, 0);
    dvt_assert_bytes(g.secrets.epoch_authenticator, 32, want_auth.p,
                     want_auth.len);
    const json_t *epochs = json_object_get(c, "epochs");
    size_t ei;
    const json_t *ep;
    int stopped = 0;
    json_array_foreach(epochs, ei, ep) {
      const json_t *props = json_object_get(ep, "proposals");
      size_t pi;
      const json_t *ph;
      json_array_foreach(props, pi, ph) {
        cvec_bytes pm;
        pm.p = NULL;
        pm.len = dvt_unhex(json_string_value(ph), &pm.p);
        rc = dv_mls_group_queue_proposal(&g, pm.p, pm.len, NULL);
        cvec_bytes_free(&pm);
        if (rc == DVOICE_ERR_UNSUPPORTED) {
          print_message("# passive-client-handling-commit.json case %zu: "
                        "epoch %zu on skipped, proposal type other than "
                        "Add/Remove (DAVE uses only those)\n",
                        idx, ei + 1);
          stopped = 1;
          break;
        }
        assert_int_equal(rc, 0);
      }
      if (stopped)
        break;
      cvec_bytes commit = cvec_field(ep, "commit");
      int inl = has_inline_proposal(&commit);
      if (inl != 0) {
        print_message("# passive-client-handling-commit.json case %zu: epoch "
                      "%zu on skipped, inline proposal (type %d; DAVE "
                      "commits by reference only)\n",
                      idx, ei + 1, inl);
        cvec_bytes_free(&commit);
        stopped = 1;
        break;
      }
      rc = dv_mls_group_process_commit(&g, commit.p, commit.len, &next);
      if (rc != 0)
        print_error("case %zu epoch %zu: commit failed %d\n", idx, ei + 1, rc);
      assert_int_equal(rc, 0);
      cvec_bytes auth = cvec_field(ep, "epoch_authenticator");
      dvt_assert_bytes(next.secrets.epoch_authenticator, 32, auth.p, auth.len);
      dv_mls_group_free(&g);
      g = next;
      dv_mls_group_init(&next, &e.env);
      cvec_bytes_free(&auth);
      cvec_bytes_free(&commit);
      epochs_ok++;
    }
    if (stopped) {
      partial++;
    } else {
      full++;
    }
    dv_mls_group_free(&g);
    dv_mls_group_free(&next);
    for (size_t i = 0; i < n_psks; i++) {
      cvec_bytes_free(&ids[i]);
      cvec_bytes_free(&secrets[i]);
    }
    cvec_bytes_free(&kp_msg);
    cvec_bytes_free(&sig_priv);
    cvec_bytes_free(&enc_priv);
    cvec_bytes_free(&init_priv);
    cvec_bytes_free(&wmsg);
    cvec_bytes_free(&want_auth);
    if (tree.p != NULL)
      cvec_bytes_free(&tree);
  }
  print_message("# passive-client-handling-commit.json: %zu passed fully, %zu "
                "passed up to a skipped epoch (%zu commits processed), %zu "
                "skipped (other cipher suites)\n",
                full, partial, epochs_ok, other);
  assert_true(full > 0);
  dvt_env_free(&e);
  json_decref(root);
}

int main(void) {
  static const char *const vars[] = {MLS_ENV, DAVE_ENV, NULL};
  if (cvec_skip_all_unless(vars))
    return 0;
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gateway_capture),
      cmocka_unit_test(test_dave_exporter),
      cmocka_unit_test(test_message_protection),
      cmocka_unit_test(test_welcome),
      cmocka_unit_test(test_passive_client_welcome),
      cmocka_unit_test(test_passive_client_commit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
