/*
 * Unit tests for lib/mls/mls_crypto and mls_keysched: published vectors
 * (RFC 4231 HMAC, RFC 5869 HKDF, RFC 9180 A.3.1 HPKE), cross-checks against
 * mbedTLS, and every rejection path (bad points, malformed signatures,
 * tag mismatches, length limits).
 */
#include "dvt.h"

#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <sodium.h>

#include "mls/mls_crypto.h"
#include "mls/mls_keysched.h"

/* Decodes a hex literal into |out| (at most |cap| bytes); returns length. */
static size_t hex(const char *s, uint8_t *out, size_t cap) {
  uint8_t *tmp = NULL;
  size_t n = dvt_unhex(s, &tmp);
  assert_true(n <= cap);
  memcpy(out, tmp, n);
  free(tmp);
  return n;
}

static void test_hmac_rfc4231(void **state) {
  (void)state;
  uint8_t key[131], out[32], want[32];
  /* Test case 1. */
  memset(key, 0x0b, 20);
  assert_int_equal(dv_mls_hmac(key, 20, (const uint8_t *)"Hi There", 8, out),
                   0);
  hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want,
      32);
  assert_memory_equal(out, want, 32);
  /* Test case 2: short key. */
  const char *m2 = "what do ya want for nothing?";
  assert_int_equal(dv_mls_hmac((const uint8_t *)"Jefe", 4, (const uint8_t *)m2,
                               strlen(m2), out),
                   0);
  hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want,
      32);
  assert_memory_equal(out, want, 32);
  /* Test case 6: key longer than the block. */
  memset(key, 0xaa, 131);
  const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
  assert_int_equal(dv_mls_hmac(key, 131, (const uint8_t *)m6, strlen(m6), out),
                   0);
  hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want,
      32);
  assert_memory_equal(out, want, 32);
  /* Verify: right tag, wrong tag, wrong length. */
  assert_int_equal(
      dv_mls_hmac_verify(key, 131, (const uint8_t *)m6, strlen(m6), want, 32),
      0);
  want[31] ^= 1;
  assert_int_equal(
      dv_mls_hmac_verify(key, 131, (const uint8_t *)m6, strlen(m6), want, 32),
      DVOICE_ERR_CRYPTO);
  want[31] ^= 1;
  assert_int_equal(
      dv_mls_hmac_verify(key, 131, (const uint8_t *)m6, strlen(m6), want, 31),
      DVOICE_ERR_CRYPTO);
}

/* Our HMAC and iovec splitting against mbedtls_md_hmac for key lengths
 * around the block size and messages split at every position. */
static void test_hmac_cross_mbedtls(void **state) {
  (void)state;
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  uint8_t key[130], msg[150], a[32], b[32];
  for (size_t i = 0; i < sizeof key; i++)
    key[i] = (uint8_t)(i * 7 + 1);
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 13 + 5);
  for (size_t kl = 0; kl <= sizeof key; kl += 13) {
    for (size_t ml = 0; ml <= sizeof msg; ml += 29) {
      assert_int_equal(mbedtls_md_hmac(md, key, kl, msg, ml, b), 0);
      assert_int_equal(dv_mls_hmac(kl ? key : NULL, kl, msg, ml, a), 0);
      assert_memory_equal(a, b, 32);
      for (size_t cut = 0; cut <= ml; cut += 11) {
        dv_mls_iov iov[3] = {{msg, cut}, {NULL, 0}, {msg + cut, ml - cut}};
        assert_int_equal(dv_mls_hmac_v(key, kl, iov, 3, a), 0);
        assert_memory_equal(a, b, 32);
      }
    }
  }
  /* The hash of the pieces equals the hash of the whole. */
  dv_mls_iov iov[2] = {{msg, 70}, {msg + 70, 80}};
  assert_int_equal(dv_mls_hash(msg, 150, a), 0);
  assert_int_equal(dv_mls_hash_v(iov, 2, b), 0);
  assert_memory_equal(a, b, 32);
}

static void test_hkdf_rfc5869(void **state) {
  (void)state;
  uint8_t ikm[22], salt[13], info[10], prk[32], okm[42], want[42];
  memset(ikm, 0x0b, sizeof ikm);
  for (int i = 0; i < 13; i++)
    salt[i] = (uint8_t)i;
  for (int i = 0; i < 10; i++)
    info[i] = (uint8_t)(0xf0 + i);
  assert_int_equal(dv_mls_hkdf_extract(salt, sizeof salt, ikm, sizeof ikm, prk),
                   0);
  hex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5", want,
      32);
  assert_memory_equal(prk, want, 32);
  assert_int_equal(
      dv_mls_hkdf_expand(prk, 32, info, sizeof info, okm, sizeof okm), 0);
  hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf3400"
      "7208d5b887185865",
      want, 42);
  assert_memory_equal(okm, want, 42);
  /* Empty salt == HashLen zero bytes. */
  uint8_t zeros[32] = {0}, p2[32];
  assert_int_equal(dv_mls_hkdf_extract(NULL, 0, ikm, sizeof ikm, prk), 0);
  assert_int_equal(dv_mls_hkdf_extract(zeros, 32, ikm, sizeof ikm, p2), 0);
  assert_memory_equal(prk, p2, 32);
}

/* Expand against mbedTLS for a 32-byte PRK, and by hand (T(1) = HMAC(prk,
 * info || 01)) for the 16-byte PRK mbedTLS refuses. Length limits. */
static void test_hkdf_expand_limits(void **state) {
  (void)state;
  static uint8_t big[DV_MLS_EXPAND_MAX + 1], ref[DV_MLS_EXPAND_MAX];
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  uint8_t prk[32], info[5] = {1, 2, 3, 4, 5};
  for (int i = 0; i < 32; i++)
    prk[i] = (uint8_t)(0x40 + i);
  assert_int_equal(dv_mls_hkdf_expand(prk, 32, info, 5, big, DV_MLS_EXPAND_MAX),
                   0);
  assert_int_equal(
      mbedtls_hkdf_expand(md, prk, 32, info, 5, ref, DV_MLS_EXPAND_MAX), 0);
  assert_memory_equal(big, ref, DV_MLS_EXPAND_MAX);
  assert_int_equal(
      dv_mls_hkdf_expand(prk, 32, info, 5, big, DV_MLS_EXPAND_MAX + 1),
      DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_mls_hkdf_expand(prk, 32, info, 5, big, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_mls_hkdf_expand(prk, 0, info, 5, big, 16),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* 16-byte PRK. */
  uint8_t t1[32], msg[6], out[16];
  memcpy(msg, info, 5);
  msg[5] = 1;
  assert_int_equal(mbedtls_md_hmac(md, prk, 16, msg, 6, t1), 0);
  assert_int_equal(dv_mls_hkdf_expand(prk, 16, info, 5, out, 16), 0);
  assert_memory_equal(out, t1, 16);
  /* ExpandWithLabel length field is a uint16. */
  assert_int_equal(
      dv_mls_expand_with_label(prk, 32, "x", NULL, 0, big, 0x10000),
      DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_mls_expand_with_label(prk, 32, "x", NULL, 5, big, 16),
                   DVOICE_ERR_INVALID_ARGUMENT);
}

/* DeriveTreeSecret == ExpandWithLabel with a big-endian u32 context, and
 * works from a 16-byte secret (the DAVE media ratchet). */
static void test_tree_secret_16(void **state) {
  (void)state;
  uint8_t s[16], a[16], b[16];
  for (int i = 0; i < 16; i++)
    s[i] = (uint8_t)i;
  const uint8_t g[4] = {0x01, 0x02, 0x03, 0x04};
  assert_int_equal(dv_mls_derive_tree_secret(s, 16, "key", 0x01020304u, a, 16),
                   0);
  assert_int_equal(dv_mls_expand_with_label(s, 16, "key", g, 4, b, 16), 0);
  assert_memory_equal(a, b, 16);
}

static const char *A31_PKRM =
    "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b"
    "4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0";
static const char *A31_PKEM =
    "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7"
    "b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4";

/* RFC 9180 A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM,
 * base mode. DeriveKeyPair for both sides, Encap, Seal/Open at seq 0, 1. */
static void test_hpke_rfc9180_a31(void **state) {
  (void)state;
  dvt_env e;
  dvt_env_init(&e);
  uint8_t ikm[32], want[128], info[20], pt[29], aad[7], ct[64], back[64];
  dv_mls_hpke_key eph, rcp;
  size_t n = hex("4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce"
                 "860e",
                 ikm, 32);
  assert_int_equal(dv_mls_hpke_derive_keypair(&e.env, ikm, n, &eph), 0);
  hex("4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb", want,
      32);
  assert_memory_equal(eph.priv, want, 32);
  hex(A31_PKEM, want, 65);
  assert_memory_equal(eph.pub, want, 65);
  n = hex("668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
          ikm, 32);
  assert_int_equal(dv_mls_hpke_derive_keypair(&e.env, ikm, n, &rcp), 0);
  hex("f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2", want,
      32);
  assert_memory_equal(rcp.priv, want, 32);
  hex(A31_PKRM, want, 65);
  assert_memory_equal(rcp.pub, want, 65);

  size_t info_len = hex("4f6465206f6e2061204772656369616e2055726e", info, 20);
  size_t pt_len =
      hex("4265617574792069732074727574682c20747275746820626561757479", pt,
          sizeof pt);
  dv_mls_hpke_ctx s, r;
  uint8_t enc[65];
  assert_int_equal(dv_mls_hpke_setup_base_s_eph(&e.env, &eph, rcp.pub, 65, info,
                                                info_len, enc, &s),
                   0);
  assert_memory_equal(enc, eph.pub, 65);
  assert_int_equal(
      dv_mls_hpke_setup_base_r(&e.env, &rcp, enc, 65, info, info_len, &r), 0);
  assert_memory_equal(s.key, r.key, 16);
  const char *cts[2] = {
      "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac"
      "232e3ab2523f39513434",
      "fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06646e03"
      "29cbdf3c3cd655b28e82"};
  for (int seq = 0; seq < 2; seq++) {
    size_t aad_len =
        hex(seq == 0 ? "436f756e742d30" : "436f756e742d31", aad, sizeof aad);
    size_t ct_len = hex(cts[seq], want, sizeof want);
    assert_int_equal(ct_len, pt_len + 16);
    assert_int_equal(dv_mls_hpke_ctx_seal(&s, aad, aad_len, pt, pt_len, ct), 0);
    assert_memory_equal(ct, want, ct_len);
    /* A wrong aad fails and does not advance the receiver. */
    assert_int_equal(
        dv_mls_hpke_ctx_open(&r, aad, aad_len - 1, ct, ct_len, back),
        DVOICE_ERR_CRYPTO);
    assert_int_equal(dv_mls_hpke_ctx_open(&r, aad, aad_len, ct, ct_len, back),
                     0);
    assert_memory_equal(back, pt, pt_len);
  }
  assert_int_equal(s.seq, 2);
  assert_int_equal(r.seq, 2);
  /* Single-shot open of the seq-0 ciphertext. */
  size_t ct_len = hex(cts[0], ct, sizeof ct);
  size_t aad_len = hex("436f756e742d30", aad, sizeof aad);
  assert_int_equal(dv_mls_hpke_open_base(&e.env, &rcp, enc, 65, info, info_len,
                                         aad, aad_len, ct, ct_len, back),
                   0);
  assert_memory_equal(back, pt, pt_len);
  dv_mls_hpke_ctx_wipe(&s);
  dv_mls_hpke_ctx_wipe(&r);
  dv_mls_hpke_key_wipe(&eph);
  dv_mls_hpke_key_wipe(&rcp);
  dvt_env_free(&e);
}

/* Copies of a valid key with one defect each. */
static void check_bad_points(const uint8_t good[65],
                             int (*check)(const uint8_t *, size_t, void *),
                             void *ud) {
  uint8_t p[66];
  /* Wrong lengths. */
  memcpy(p, good, 65);
  assert_int_equal(check(p, 64, ud), DVOICE_ERR_CRYPTO);
  p[65] = 0;
  assert_int_equal(check(p, 66, ud), DVOICE_ERR_CRYPTO);
  assert_int_equal(check(p, 0, ud), DVOICE_ERR_CRYPTO);
  /* Compressed form of the same point. */
  p[0] = (uint8_t)(0x02 | (good[64] & 1));
  assert_int_equal(check(p, 33, ud), DVOICE_ERR_CRYPTO);
  assert_int_equal(check(p, 65, ud), DVOICE_ERR_CRYPTO);
  /* Point at infinity encodings. */
  p[0] = 0x00;
  assert_int_equal(check(p, 1, ud), DVOICE_ERR_CRYPTO);
  memset(p, 0, 65);
  p[0] = 0x04;
  assert_int_equal(check(p, 65, ud), DVOICE_ERR_CRYPTO);
  /* Off the curve. */
  memcpy(p, good, 65);
  p[64] ^= 1;
  assert_int_equal(check(p, 65, ud), DVOICE_ERR_CRYPTO);
  /* Coordinate >= p. */
  memset(p + 1, 0xff, 32);
  assert_int_equal(check(p, 65, ud), DVOICE_ERR_CRYPTO);
  /* NULL. */
  assert_int_equal(check(NULL, 65, ud), DVOICE_ERR_CRYPTO);
  /* And the good one passes. */
  assert_int_equal(check(good, 65, ud), 0);
}

static int chk_pub(const uint8_t *p, size_t n, void *ud) {
  (void)ud;
  return dv_mls_check_pub(p, n);
}

typedef struct sig_case {
  const uint8_t *msg;
  size_t msg_len;
  const uint8_t *sig;
  size_t sig_len;
} sig_case;

static int chk_verify(const uint8_t *p, size_t n, void *ud) {
  const sig_case *c = ud;
  return dv_mls_verify_with_label(p, n, "Test", c->msg, c->msg_len, c->sig,
                                  c->sig_len);
}

typedef struct ecdh_case {
  dvt_env *e;
  const uint8_t *priv;
} ecdh_case;

static int chk_ecdh(const uint8_t *p, size_t n, void *ud) {
  const ecdh_case *c = ud;
  uint8_t out[32];
  int ret = dv_mls_ecdh(&c->e->env, c->priv, p, n, out);
  if (ret != 0) {
    uint8_t z[32] = {0};
    assert_memory_equal(out, z, 32);
  }
  return ret;
}

static void test_signatures(void **state) {
  (void)state;
  dvt_env e;
  dvt_env_init(&e);
  dv_mls_sig_key k, k2;
  assert_int_equal(dv_mls_sig_keygen(&e.env, &k), 0);
  /* The counter RNG makes key generation reproducible. */
  dvt_env e2;
  dvt_env_init(&e2);
  assert_int_equal(dv_mls_sig_keygen(&e2.env, &k2), 0);
  assert_memory_equal(&k, &k2, sizeof k);
  dvt_env_free(&e2);

  const uint8_t msg[] = "content to sign";
  uint8_t sig[DV_MLS_SIG_MAX], sig2[DV_MLS_SIG_MAX];
  size_t sig_len = 0, sig2_len = 0;
  assert_int_equal(dv_mls_sign_with_label(&e.env, k.priv, "Test", msg,
                                          sizeof msg, sig, &sig_len),
                   0);
  assert_true(sig_len >= 8 && sig_len <= DV_MLS_SIG_MAX);
  assert_int_equal(sig[0], 0x30);
  /* RFC 6979: the same message gives the same signature. */
  assert_int_equal(dv_mls_sign_with_label(&e.env, k.priv, "Test", msg,
                                          sizeof msg, sig2, &sig2_len),
                   0);
  assert_int_equal(sig_len, sig2_len);
  assert_memory_equal(sig, sig2, sig_len);
  /* Pieces sign like the whole. */
  dv_mls_iov iov[2] = {{msg, 3}, {msg + 3, sizeof msg - 3}};
  assert_int_equal(
      dv_mls_verify_with_label_v(k.pub, 65, "Test", iov, 2, sig, sig_len), 0);
  assert_int_equal(dv_mls_verify_with_label(k.pub, 65, "Test", msg, sizeof msg,
                                            sig, sig_len),
                   0);
  /* Wrong label, message, key, or mangled DER. */
  assert_int_equal(dv_mls_verify_with_label(k.pub, 65, "Tesu", msg, sizeof msg,
                                            sig, sig_len),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_verify_with_label(k.pub, 65, "Test", msg,
                                            sizeof msg - 1, sig, sig_len),
                   DVOICE_ERR_CRYPTO);
  for (size_t cut = 0; cut < sig_len; cut++) {
    assert_int_equal(
        dv_mls_verify_with_label(k.pub, 65, "Test", msg, sizeof msg, sig, cut),
        DVOICE_ERR_CRYPTO);
  }
  uint8_t longer[DV_MLS_SIG_MAX + 1];
  memcpy(longer, sig, sig_len);
  longer[sig_len] = 0;
  assert_int_equal(dv_mls_verify_with_label(k.pub, 65, "Test", msg, sizeof msg,
                                            longer, sig_len + 1),
                   DVOICE_ERR_CRYPTO);
  for (size_t i = 0; i < sig_len; i++) {
    sig[i] ^= 0x01;
    assert_int_equal(dv_mls_verify_with_label(k.pub, 65, "Test", msg,
                                              sizeof msg, sig, sig_len),
                     DVOICE_ERR_CRYPTO);
    sig[i] ^= 0x01;
  }
  sig_case sc = {msg, sizeof msg, sig, sig_len};
  check_bad_points(k.pub, chk_verify, &sc);
  check_bad_points(k.pub, chk_pub, NULL);
  assert_int_equal(dv_mls_verify_with_label(k2.pub, 65, "Test", msg, sizeof msg,
                                            sig, sig_len),
                   0);
  assert_int_equal(dv_mls_sig_keygen(&e.env, &k2), 0);
  assert_int_equal(dv_mls_verify_with_label(k2.pub, 65, "Test", msg, sizeof msg,
                                            sig, sig_len),
                   DVOICE_ERR_CRYPTO);
  /* Invalid private scalars: 0 and n. */
  memset(k2.priv, 0, 32);
  assert_int_equal(dv_mls_sig_key_from_priv(&e.env, &k2), DVOICE_ERR_CRYPTO);
  hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
      k2.priv, 32);
  assert_int_equal(dv_mls_sig_key_from_priv(&e.env, &k2), DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_sign_with_label(&e.env, k2.priv, "Test", msg,
                                          sizeof msg, sig, &sig_len),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(sig_len, 0);
  dv_mls_sig_key_wipe(&k);
  dv_mls_sig_key_wipe(&k2);
  dvt_env_free(&e);
}

static void test_ecdh_and_hpke_rejects(void **state) {
  (void)state;
  dvt_env e;
  dvt_env_init(&e);
  dv_mls_hpke_key a, b;
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &a), 0);
  assert_int_equal(dv_mls_hpke_keygen(&e.env, &b), 0);
  uint8_t ab[32], ba[32];
  assert_int_equal(dv_mls_ecdh(&e.env, a.priv, b.pub, 65, ab), 0);
  assert_int_equal(dv_mls_ecdh(&e.env, b.priv, a.pub, 65, ba), 0);
  assert_memory_equal(ab, ba, 32);
  ecdh_case ec = {&e, a.priv};
  check_bad_points(b.pub, chk_ecdh, &ec);

  /* EncryptWithLabel round trip, then every kind of tampering. */
  const uint8_t ctx[] = "group context";
  const uint8_t pt[] = "path secret bytes";
  uint8_t kem[65], ct[sizeof pt + 16], out[sizeof pt];
  assert_int_equal(dv_mls_encrypt_with_label(&e.env, b.pub, 65,
                                             "UpdatePathNode", ctx, sizeof ctx,
                                             pt, sizeof pt, kem, ct),
                   0);
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode", ctx,
                                             sizeof ctx, kem, 65, ct, sizeof ct,
                                             out),
                   0);
  assert_memory_equal(out, pt, sizeof pt);
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "Welcome", ctx,
                                             sizeof ctx, kem, 65, ct, sizeof ct,
                                             out),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode", ctx,
                                             sizeof ctx - 1, kem, 65, ct,
                                             sizeof ct, out),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &a, "UpdatePathNode", ctx,
                                             sizeof ctx, kem, 65, ct, sizeof ct,
                                             out),
                   DVOICE_ERR_CRYPTO);
  for (size_t i = 0; i < sizeof ct; i++) {
    ct[i] ^= 0x80;
    assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode",
                                               ctx, sizeof ctx, kem, 65, ct,
                                               sizeof ct, out),
                     DVOICE_ERR_CRYPTO);
    ct[i] ^= 0x80;
  }
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode", ctx,
                                             sizeof ctx, kem, 65, ct, 15, out),
                   DVOICE_ERR_CRYPTO);
  kem[64] ^= 1; /* off the curve */
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode", ctx,
                                             sizeof ctx, kem, 65, ct, sizeof ct,
                                             out),
                   DVOICE_ERR_CRYPTO);
  kem[64] ^= 1;
  assert_int_equal(dv_mls_decrypt_with_label(&e.env, &b, "UpdatePathNode", ctx,
                                             sizeof ctx, kem, 33, ct, sizeof ct,
                                             out),
                   DVOICE_ERR_CRYPTO);
  /* EncryptWithLabel to a bad key fails and leaves no kem_output. */
  uint8_t bad[65];
  memcpy(bad, b.pub, 65);
  bad[10] ^= 1;
  assert_int_equal(dv_mls_encrypt_with_label(&e.env, bad, 65, "Welcome", ctx,
                                             sizeof ctx, pt, sizeof pt, kem,
                                             ct),
                   DVOICE_ERR_CRYPTO);
  uint8_t z[65] = {0};
  assert_memory_equal(kem, z, 65);
  /* EncryptWithLabel equals SealBase with info = EncryptContext. */
  uint8_t info[64];
  size_t il = 0;
  const char *lab = "MLS 1.0 Welcome";
  info[il++] = (uint8_t)strlen(lab);
  memcpy(info + il, lab, strlen(lab));
  il += strlen(lab);
  info[il++] = sizeof ctx;
  memcpy(info + il, ctx, sizeof ctx);
  il += sizeof ctx;
  assert_int_equal(dv_mls_encrypt_with_label(&e.env, b.pub, 65, "Welcome", ctx,
                                             sizeof ctx, pt, sizeof pt, kem,
                                             ct),
                   0);
  assert_int_equal(dv_mls_hpke_open_base(&e.env, &b, kem, 65, info, il, NULL, 0,
                                         ct, sizeof ct, out),
                   0);
  assert_memory_equal(out, pt, sizeof pt);
  dv_mls_hpke_key_wipe(&a);
  dv_mls_hpke_key_wipe(&b);
  dvt_env_free(&e);
}

static void test_aead(void **state) {
  (void)state;
  uint8_t key[16], nonce[12], buf[64], out[64];
  for (int i = 0; i < 16; i++)
    key[i] = (uint8_t)i;
  for (int i = 0; i < 12; i++)
    nonce[i] = (uint8_t)(0xa0 + i);
  const uint8_t pt[] = "hello aead";
  const uint8_t aad[] = "aad";
  assert_int_equal(
      dv_mls_aead_seal(key, nonce, aad, sizeof aad, pt, sizeof pt, buf), 0);
  assert_int_equal(
      dv_mls_aead_open(key, nonce, aad, sizeof aad, buf, sizeof pt + 16, out),
      0);
  assert_memory_equal(out, pt, sizeof pt);
  /* In place. */
  memcpy(out, pt, sizeof pt);
  assert_int_equal(
      dv_mls_aead_seal(key, nonce, aad, sizeof aad, out, sizeof pt, out), 0);
  assert_memory_equal(out, buf, sizeof pt + 16);
  assert_int_equal(
      dv_mls_aead_open(key, nonce, aad, sizeof aad, out, sizeof pt + 16, out),
      0);
  assert_memory_equal(out, pt, sizeof pt);
  /* Tampering: tag, ciphertext, aad, short input; output is zeroed. */
  buf[sizeof pt + 15] ^= 1;
  memset(out, 0x55, sizeof out);
  assert_int_equal(
      dv_mls_aead_open(key, nonce, aad, sizeof aad, buf, sizeof pt + 16, out),
      DVOICE_ERR_CRYPTO);
  uint8_t z[sizeof pt] = {0};
  assert_memory_equal(out, z, sizeof pt);
  buf[sizeof pt + 15] ^= 1;
  buf[0] ^= 1;
  assert_int_equal(
      dv_mls_aead_open(key, nonce, aad, sizeof aad, buf, sizeof pt + 16, out),
      DVOICE_ERR_CRYPTO);
  buf[0] ^= 1;
  assert_int_equal(dv_mls_aead_open(key, nonce, aad, sizeof aad - 1, buf,
                                    sizeof pt + 16, out),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_mls_aead_open(key, nonce, NULL, 0, buf, 15, out),
                   DVOICE_ERR_CRYPTO);
  /* Empty plaintext: a bare tag. */
  assert_int_equal(dv_mls_aead_seal(key, nonce, NULL, 0, NULL, 0, buf), 0);
  assert_int_equal(dv_mls_aead_open(key, nonce, NULL, 0, buf, 16, NULL), 0);
}

static void test_keysched_helpers(void **state) {
  (void)state;
  uint8_t init[32] = {1}, commit[32] = {0}, gc[40];
  for (int i = 0; i < 40; i++)
    gc[i] = (uint8_t)i;
  dv_mls_epoch_secrets a, b;
  assert_int_equal(
      dv_mls_keysched_from_init(init, commit, NULL, gc, sizeof gc, &a), 0);
  /* psk NULL means 0^32. */
  assert_int_equal(
      dv_mls_keysched_from_init(init, commit, commit, gc, sizeof gc, &b), 0);
  assert_memory_equal(&a, &b, sizeof a);
  /* A different GroupContext changes everything from the joiner on. */
  gc[0] ^= 1;
  assert_int_equal(
      dv_mls_keysched_from_init(init, commit, NULL, gc, sizeof gc, &b), 0);
  assert_memory_not_equal(a.joiner, b.joiner, 32);
  assert_memory_not_equal(a.epoch_authenticator, b.epoch_authenticator, 32);
  /* Welcome key and nonce from the welcome secret. */
  uint8_t key[16], nonce[12], k2[16];
  assert_int_equal(dv_mls_welcome_key_nonce(a.welcome, key, nonce), 0);
  assert_int_equal(
      dv_mls_expand_with_label(a.welcome, 32, "key", NULL, 0, k2, 16), 0);
  assert_memory_equal(key, k2, 16);
  /* Tags. */
  const uint8_t th[32] = {9};
  uint8_t tag[32];
  assert_int_equal(dv_mls_confirmation_tag(a.confirmation_key, th, 32, tag), 0);
  assert_int_equal(
      dv_mls_confirmation_tag_verify(a.confirmation_key, th, 32, tag, 32), 0);
  tag[0] ^= 1;
  assert_int_equal(
      dv_mls_confirmation_tag_verify(a.confirmation_key, th, 32, tag, 32),
      DVOICE_ERR_CRYPTO);
  dv_mls_iov tbm[2] = {{th, 10}, {th + 10, 22}};
  assert_int_equal(dv_mls_membership_tag(a.membership_key, tbm, 2, tag), 0);
  assert_int_equal(
      dv_mls_membership_tag_verify(a.membership_key, tbm, 2, tag, 32), 0);
  assert_int_equal(
      dv_mls_membership_tag_verify(a.membership_key, tbm, 1, tag, 32),
      DVOICE_ERR_CRYPTO);
  assert_int_equal(
      dv_mls_membership_tag_verify(a.membership_key, tbm, 2, tag, 0),
      DVOICE_ERR_CRYPTO);
  /* Exporter: DAVE's per-sender base secret is 16 bytes. */
  uint8_t ctx[8] = {0}, base[16], base2[16];
  assert_int_equal(
      dv_mls_export(a.exporter, "Discord Secure Frames v0", ctx, 8, base, 16),
      0);
  ctx[0] = 1;
  assert_int_equal(
      dv_mls_export(a.exporter, "Discord Secure Frames v0", ctx, 8, base2, 16),
      0);
  assert_memory_not_equal(base, base2, 16);
  dv_mls_epoch_secrets_wipe(&a);
  dv_mls_epoch_secrets_wipe(&b);
  uint8_t zero[sizeof a];
  memset(zero, 0, sizeof zero);
  assert_memory_equal(&a, zero, sizeof a);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hmac_rfc4231),
      cmocka_unit_test(test_hmac_cross_mbedtls),
      cmocka_unit_test(test_hkdf_rfc5869),
      cmocka_unit_test(test_hkdf_expand_limits),
      cmocka_unit_test(test_tree_secret_16),
      cmocka_unit_test(test_hpke_rfc9180_a31),
      cmocka_unit_test(test_signatures),
      cmocka_unit_test(test_ecdh_and_hpke_rejects),
      cmocka_unit_test(test_aead),
      cmocka_unit_test(test_keysched_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
