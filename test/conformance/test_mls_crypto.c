/*
 * MLS interop vectors for the crypto layer, cipher suite 2 only:
 * crypto-basics.json (labels, refs, signatures, EncryptWithLabel) and
 * key-schedule.json (every epoch, every secret, the exporter and the
 * external key pair). Reads $DVOICE_MLS_VECTORS; skips when unset (fails
 * under CI=true). Prints a pass count per file and names skipped cases.
 */
#include "dvt.h"

#include <sodium.h>

#include "cvec.h"
#include "mls/mls_crypto.h"
#include "mls/mls_keysched.h"
#include "util/dv_rw.h"

#define ENV "DVOICE_MLS_VECTORS"

static void expect_eq(const char *what, size_t idx, const uint8_t *got,
                      size_t got_len, const cvec_bytes *want) {
  if (got_len != want->len || memcmp(got, want->p, got_len) != 0) {
    print_error("case %zu: %s differs\n", idx, what);
  }
  dvt_assert_bytes(got, got_len, want->p, want->len);
}

static void check_crypto_basics(size_t idx, const json_t *c, dvt_env *e) {
  uint8_t out[256];

  /* ref_hash */
  const json_t *rh = json_object_get(c, "ref_hash");
  cvec_bytes value = cvec_field(rh, "value"), want = cvec_field(rh, "out");
  assert_int_equal(
      dv_mls_ref_hash(cvec_str(rh, "label"), value.p, value.len, out), 0);
  expect_eq("ref_hash", idx, out, 32, &want);
  cvec_bytes_free(&value);
  cvec_bytes_free(&want);

  /* expand_with_label */
  const json_t *ew = json_object_get(c, "expand_with_label");
  cvec_bytes secret = cvec_field(ew, "secret");
  cvec_bytes context = cvec_field(ew, "context");
  want = cvec_field(ew, "out");
  size_t len = (size_t)cvec_u64(ew, "length");
  assert_true(len <= sizeof out);
  assert_int_equal(dv_mls_expand_with_label(secret.p, secret.len,
                                            cvec_str(ew, "label"), context.p,
                                            context.len, out, len),
                   0);
  expect_eq("expand_with_label", idx, out, len, &want);
  cvec_bytes_free(&secret);
  cvec_bytes_free(&context);
  cvec_bytes_free(&want);

  /* derive_secret */
  const json_t *ds = json_object_get(c, "derive_secret");
  secret = cvec_field(ds, "secret");
  want = cvec_field(ds, "out");
  assert_int_equal(
      dv_mls_derive_secret(secret.p, secret.len, cvec_str(ds, "label"), out),
      0);
  expect_eq("derive_secret", idx, out, 32, &want);
  cvec_bytes_free(&secret);
  cvec_bytes_free(&want);

  /* derive_tree_secret */
  const json_t *dt = json_object_get(c, "derive_tree_secret");
  secret = cvec_field(dt, "secret");
  want = cvec_field(dt, "out");
  len = (size_t)cvec_u64(dt, "length");
  assert_true(len <= sizeof out);
  assert_int_equal(
      dv_mls_derive_tree_secret(secret.p, secret.len, cvec_str(dt, "label"),
                                (uint32_t)cvec_u64(dt, "generation"), out, len),
      0);
  expect_eq("derive_tree_secret", idx, out, len, &want);
  cvec_bytes_free(&secret);
  cvec_bytes_free(&want);

  /* sign_with_label: verify the given signature, reject it over other
   * content, then sign and verify our own. */
  const json_t *sw = json_object_get(c, "sign_with_label");
  cvec_bytes priv = cvec_field(sw, "priv"), pub = cvec_field(sw, "pub");
  cvec_bytes content = cvec_field(sw, "content");
  cvec_bytes sig = cvec_field(sw, "signature");
  const char *label = cvec_str(sw, "label");
  assert_int_equal(priv.len, DV_MLS_PRIV_LEN);
  assert_int_equal(dv_mls_verify_with_label(pub.p, pub.len, label, content.p,
                                            content.len, sig.p, sig.len),
                   0);
  assert_int_equal(dv_mls_verify_with_label(pub.p, pub.len, "other", content.p,
                                            content.len, sig.p, sig.len),
                   DVOICE_ERR_CRYPTO);
  dv_mls_sig_key key;
  memcpy(key.priv, priv.p, DV_MLS_PRIV_LEN);
  assert_int_equal(dv_mls_sig_key_from_priv(&e->env, &key), 0);
  dvt_assert_bytes(key.pub, DV_MLS_PUB_LEN, pub.p, pub.len);
  uint8_t mysig[DV_MLS_SIG_MAX];
  size_t mysig_len = 0;
  assert_int_equal(dv_mls_sign_with_label(&e->env, key.priv, label, content.p,
                                          content.len, mysig, &mysig_len),
                   0);
  assert_int_equal(dv_mls_verify_with_label(pub.p, pub.len, label, content.p,
                                            content.len, mysig, mysig_len),
                   0);
  dv_mls_sig_key_wipe(&key);
  cvec_bytes_free(&priv);
  cvec_bytes_free(&pub);
  cvec_bytes_free(&content);
  cvec_bytes_free(&sig);

  /* encrypt_with_label: decrypt the given ciphertext, then round trip. */
  const json_t *el = json_object_get(c, "encrypt_with_label");
  priv = cvec_field(el, "priv");
  pub = cvec_field(el, "pub");
  context = cvec_field(el, "context");
  cvec_bytes pt = cvec_field(el, "plaintext");
  cvec_bytes kem = cvec_field(el, "kem_output");
  cvec_bytes ct = cvec_field(el, "ciphertext");
  label = cvec_str(el, "label");
  dv_mls_hpke_key hk;
  assert_int_equal(priv.len, DV_MLS_PRIV_LEN);
  assert_int_equal(pub.len, DV_MLS_PUB_LEN);
  memcpy(hk.priv, priv.p, DV_MLS_PRIV_LEN);
  memcpy(hk.pub, pub.p, DV_MLS_PUB_LEN);
  assert_true(ct.len >= DV_MLS_AEAD_TAG_LEN && ct.len <= sizeof out);
  assert_int_equal(dv_mls_decrypt_with_label(&e->env, &hk, label, context.p,
                                             context.len, kem.p, kem.len, ct.p,
                                             ct.len, out),
                   0);
  expect_eq("encrypt_with_label plaintext", idx, out,
            ct.len - DV_MLS_AEAD_TAG_LEN, &pt);
  uint8_t my_kem[DV_MLS_KEM_ENC_LEN];
  uint8_t my_ct[256];
  assert_true(pt.len + DV_MLS_AEAD_TAG_LEN <= sizeof my_ct);
  assert_int_equal(dv_mls_encrypt_with_label(&e->env, pub.p, pub.len, label,
                                             context.p, context.len, pt.p,
                                             pt.len, my_kem, my_ct),
                   0);
  assert_int_equal(dv_mls_decrypt_with_label(
                       &e->env, &hk, label, context.p, context.len, my_kem,
                       sizeof my_kem, my_ct, pt.len + DV_MLS_AEAD_TAG_LEN, out),
                   0);
  dvt_assert_bytes(out, pt.len, pt.p, pt.len);
  dv_mls_hpke_key_wipe(&hk);
  cvec_bytes_free(&priv);
  cvec_bytes_free(&pub);
  cvec_bytes_free(&context);
  cvec_bytes_free(&pt);
  cvec_bytes_free(&kem);
  cvec_bytes_free(&ct);
}

static void test_crypto_basics(void **state) {
  (void)state;
  json_t *root = cvec_load(ENV, "crypto-basics.json");
  if (root == NULL) {
    print_message("# crypto-basics.json: skipped, " ENV " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, passed = 0, other = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != DV_MLS_CIPHER_SUITE) {
      other++;
      continue;
    }
    check_crypto_basics(idx, c, &e);
    passed++;
  }
  print_message("# crypto-basics.json: %zu passed (cipher suite 2), %zu "
                "skipped (other cipher suites)\n",
                passed, other);
  assert_true(passed > 0);
  dvt_env_free(&e);
  json_decref(root);
}

/* GroupContext for suite 2, version mls10, with no extensions. */
static void build_group_context(dv_buf *b, const cvec_bytes *group_id,
                                uint64_t epoch, const cvec_bytes *tree_hash,
                                const cvec_bytes *cth) {
  dv_wr w;
  dv_wr_init(&w, b);
  dv_wr_u16(&w, 1);
  dv_wr_u16(&w, DV_MLS_CIPHER_SUITE);
  dv_wr_opaque(&w, group_id->p, group_id->len);
  dv_wr_u64(&w, epoch);
  dv_wr_opaque(&w, tree_hash->p, tree_hash->len);
  dv_wr_opaque(&w, cth->p, cth->len);
  dv_wr_varint(&w, 0);
  assert_int_equal(w.err, 0);
}

static void check_key_schedule(size_t idx, const json_t *c, dvt_env *e,
                               size_t *epochs_checked) {
  cvec_bytes group_id = cvec_field(c, "group_id");
  cvec_bytes init = cvec_field(c, "initial_init_secret");
  assert_int_equal(init.len, DV_MLS_HASH_LEN);
  uint8_t init_secret[DV_MLS_HASH_LEN];
  memcpy(init_secret, init.p, DV_MLS_HASH_LEN);
  cvec_bytes_free(&init);

  const json_t *epochs = json_object_get(c, "epochs");
  size_t n;
  json_t *ep;
  json_array_foreach(epochs, n, ep) {
    cvec_bytes tree_hash = cvec_field(ep, "tree_hash");
    cvec_bytes commit = cvec_field(ep, "commit_secret");
    cvec_bytes psk = cvec_field(ep, "psk_secret");
    cvec_bytes cth = cvec_field(ep, "confirmed_transcript_hash");
    cvec_bytes gc_want = cvec_field(ep, "group_context");
    assert_int_equal(commit.len, DV_MLS_HASH_LEN);
    assert_int_equal(psk.len, DV_MLS_HASH_LEN);

    dv_buf gc;
    dv_buf_init(&gc, NULL);
    build_group_context(&gc, &group_id, (uint64_t)n, &tree_hash, &cth);
    expect_eq("group_context", idx, gc.data, gc.len, &gc_want);

    dv_mls_epoch_secrets s;
    assert_int_equal(dv_mls_keysched_from_init(init_secret, commit.p, psk.p,
                                               gc.data, gc.len, &s),
                     0);
    static const struct {
      const char *key;
      size_t off;
    } fields[] = {
        {"joiner_secret", offsetof(dv_mls_epoch_secrets, joiner)},
        {"welcome_secret", offsetof(dv_mls_epoch_secrets, welcome)},
        {"init_secret", offsetof(dv_mls_epoch_secrets, init)},
        {"sender_data_secret", offsetof(dv_mls_epoch_secrets, sender_data)},
        {"encryption_secret", offsetof(dv_mls_epoch_secrets, encryption)},
        {"exporter_secret", offsetof(dv_mls_epoch_secrets, exporter)},
        {"epoch_authenticator",
         offsetof(dv_mls_epoch_secrets, epoch_authenticator)},
        {"external_secret", offsetof(dv_mls_epoch_secrets, external)},
        {"confirmation_key", offsetof(dv_mls_epoch_secrets, confirmation_key)},
        {"membership_key", offsetof(dv_mls_epoch_secrets, membership_key)},
        {"resumption_psk", offsetof(dv_mls_epoch_secrets, resumption_psk)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
      cvec_bytes want = cvec_field(ep, fields[i].key);
      expect_eq(fields[i].key, idx, (const uint8_t *)&s + fields[i].off,
                DV_MLS_HASH_LEN, &want);
      cvec_bytes_free(&want);
    }

    /* The joiner path gives the same epoch. */
    dv_mls_epoch_secrets s2;
    assert_int_equal(
        dv_mls_keysched_from_joiner(s.joiner, psk.p, gc.data, gc.len, &s2), 0);
    assert_memory_equal(&s, &s2, sizeof s);

    /* external_pub = DeriveKeyPair(external_secret).pub */
    cvec_bytes ext_pub = cvec_field(ep, "external_pub");
    dv_mls_hpke_key ext;
    assert_int_equal(
        dv_mls_hpke_derive_keypair(&e->env, s.external, DV_MLS_HASH_LEN, &ext),
        0);
    expect_eq("external_pub", idx, ext.pub, DV_MLS_PUB_LEN, &ext_pub);
    cvec_bytes_free(&ext_pub);

    /* exporter: the label is the ASCII string as written. */
    const json_t *ex = json_object_get(ep, "exporter");
    cvec_bytes ctx = cvec_field(ex, "context");
    cvec_bytes want = cvec_field(ex, "secret");
    size_t len = (size_t)cvec_u64(ex, "length");
    uint8_t out[256];
    assert_true(len <= sizeof out);
    assert_int_equal(dv_mls_export(s.exporter, cvec_str(ex, "label"), ctx.p,
                                   ctx.len, out, len),
                     0);
    expect_eq("exporter", idx, out, len, &want);
    cvec_bytes_free(&ctx);
    cvec_bytes_free(&want);

    memcpy(init_secret, s.init, DV_MLS_HASH_LEN);
    dv_mls_epoch_secrets_wipe(&s);
    dv_mls_epoch_secrets_wipe(&s2);
    dv_buf_free(&gc);
    cvec_bytes_free(&tree_hash);
    cvec_bytes_free(&commit);
    cvec_bytes_free(&psk);
    cvec_bytes_free(&cth);
    cvec_bytes_free(&gc_want);
    (*epochs_checked)++;
  }
  cvec_bytes_free(&group_id);
}

static void test_key_schedule(void **state) {
  (void)state;
  json_t *root = cvec_load(ENV, "key-schedule.json");
  if (root == NULL) {
    print_message("# key-schedule.json: skipped, " ENV " unset\n");
    skip();
  }
  dvt_env e;
  dvt_env_init(&e);
  size_t idx, passed = 0, other = 0, epochs = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != DV_MLS_CIPHER_SUITE) {
      other++;
      continue;
    }
    check_key_schedule(idx, c, &e, &epochs);
    passed++;
  }
  print_message("# key-schedule.json: %zu passed (cipher suite 2, %zu "
                "epochs), %zu skipped (other cipher suites)\n",
                passed, epochs, other);
  assert_true(passed > 0);
  dvt_env_free(&e);
  json_decref(root);
}

/* psk_secret.json: psk_secret over external PSKs (test support only: DAVE
 * never uses PSKs). PreSharedKeyID{psktype external, psk_id<V>,
 * psk_nonce<V>}. */
static void test_psk_secret(void **state) {
  (void)state;
  json_t *root = cvec_load(ENV, "psk_secret.json");
  if (root == NULL) {
    print_message("# psk_secret.json: skipped, " ENV " unset\n");
    skip();
  }
  size_t idx, passed = 0, other = 0;
  json_t *c;
  json_array_foreach(root, idx, c) {
    if (cvec_u64(c, "cipher_suite") != DV_MLS_CIPHER_SUITE) {
      other++;
      continue;
    }
    const json_t *list = json_object_get(c, "psks");
    size_t n = json_array_size(list);
    dv_buf ids[16];
    cvec_bytes secrets[16];
    dv_mls_psk psks[16];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
      const json_t *p = json_array_get(list, i);
      cvec_bytes id = cvec_field(p, "psk_id");
      cvec_bytes nonce = cvec_field(p, "psk_nonce");
      secrets[i] = cvec_field(p, "psk");
      dv_buf_init(&ids[i], NULL);
      dv_wr w;
      dv_wr_init(&w, &ids[i]);
      dv_wr_u8(&w, 1);
      dv_wr_opaque(&w, id.p, id.len);
      dv_wr_opaque(&w, nonce.p, nonce.len);
      assert_int_equal(w.err, 0);
      psks[i].id = ids[i].data;
      psks[i].id_len = ids[i].len;
      psks[i].secret = secrets[i].p;
      psks[i].secret_len = secrets[i].len;
      cvec_bytes_free(&id);
      cvec_bytes_free(&nonce);
    }
    uint8_t out[32];
    cvec_bytes want = cvec_field(c, "psk_secret");
    assert_int_equal(dv_mls_psk_secret(psks, n, out), 0);
    expect_eq("psk_secret", idx, out, 32, &want);
    cvec_bytes_free(&want);
    for (size_t i = 0; i < n; i++) {
      dv_buf_free(&ids[i]);
      cvec_bytes_free(&secrets[i]);
    }
    passed++;
  }
  print_message("# psk_secret.json: %zu passed (cipher suite 2), %zu skipped "
                "(other cipher suites)\n",
                passed, other);
  assert_true(passed > 0);
  json_decref(root);
}

int main(void) {
  static const char *const vars[] = {ENV, NULL};
  if (cvec_skip_all_unless(vars))
    return 0;
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crypto_basics),
      cmocka_unit_test(test_key_schedule),
      cmocka_unit_test(test_psk_secret),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
