/*
 * dv_p256_verify against mbedTLS: signatures mbedTLS makes must verify;
 * any corruption of hash, signature or key must give the same verdict as
 * mbedTLS's verifier; malformed inputs are refused.
 */
#include "dvt.h"

#include <mbedtls/ecdsa.h>
#include <sodium.h>

#include "p256/dv_p256.h"

/* Deterministic generator (dvt's counter RNG repeats every 256 bytes,
 * which would repeat keys and nonces). */
typedef struct det_rng {
  uint64_t calls;
} det_rng;

static int det_rand(void *ud, unsigned char *out, size_t len) {
  det_rng *r = ud;
  uint8_t k[32] = {0x17};
  memcpy(k + 8, &r->calls, sizeof r->calls);
  r->calls++;
  randombytes_buf_deterministic(out, len, k);
  return 0;
}

typedef struct keysig {
  mbedtls_ecdsa_context k;
  uint8_t pub[65];
  uint8_t hash[32];
  uint8_t sig[MBEDTLS_ECDSA_MAX_LEN];
  size_t sig_len;
} keysig;

static void make(keysig *ks, det_rng *rng) {
  mbedtls_ecdsa_init(&ks->k);
  assert_int_equal(
      mbedtls_ecdsa_genkey(&ks->k, MBEDTLS_ECP_DP_SECP256R1, det_rand, rng), 0);
  size_t olen;
  assert_int_equal(mbedtls_ecp_point_write_binary(
                       &ks->k.grp, &ks->k.Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                       ks->pub, sizeof ks->pub),
                   0);
  assert_int_equal(olen, 65);
  det_rand(rng, ks->hash, 32);
  assert_int_equal(mbedtls_ecdsa_write_signature(&ks->k, MBEDTLS_MD_SHA256,
                                                 ks->hash, 32, ks->sig,
                                                 &ks->sig_len, det_rand, rng),
                   0);
}

/* mbedTLS's verdict: 0 or DVOICE_ERR_CRYPTO. */
static int mbed_verify(const uint8_t pub[65], const uint8_t hash[32],
                       const uint8_t *sig, size_t sig_len) {
  mbedtls_ecdsa_context v;
  mbedtls_ecdsa_init(&v);
  int rc = mbedtls_ecp_group_load(&v.grp, MBEDTLS_ECP_DP_SECP256R1);
  if (rc == 0)
    rc = mbedtls_ecp_point_read_binary(&v.grp, &v.Q, pub, 65);
  if (rc == 0)
    rc = mbedtls_ecp_check_pubkey(&v.grp, &v.Q);
  if (rc == 0)
    rc = mbedtls_ecdsa_read_signature(&v, hash, 32, sig, sig_len);
  mbedtls_ecdsa_free(&v);
  return rc == 0 ? 0 : DVOICE_ERR_CRYPTO;
}

static void test_valid_signatures(void **state) {
  (void)state;
  det_rng rng = {0};
  for (int i = 0; i < 200; i++) {
    keysig ks;
    make(&ks, &rng);
    assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, ks.sig, ks.sig_len),
                     0);
    /* Another hash, another key: refused. */
    uint8_t h[32];
    memcpy(h, ks.hash, 32);
    h[i % 32] ^= (uint8_t)(1u << (i % 8));
    assert_int_equal(dv_p256_verify(ks.pub, 65, h, ks.sig, ks.sig_len),
                     DVOICE_ERR_CRYPTO);
    keysig other;
    make(&other, &rng);
    assert_int_equal(dv_p256_verify(other.pub, 65, ks.hash, ks.sig, ks.sig_len),
                     DVOICE_ERR_CRYPTO);
    mbedtls_ecdsa_free(&other.k);
    mbedtls_ecdsa_free(&ks.k);
  }
}

/* Every single-bit flip of the signature and of the key, and a sample of
 * byte values, gives mbedTLS's verdict. */
static void test_corruptions_match_mbedtls(void **state) {
  (void)state;
  det_rng rng = {1000};
  for (int i = 0; i < 8; i++) {
    keysig ks;
    make(&ks, &rng);
    for (size_t b = 0; b < ks.sig_len * 8; b++) {
      uint8_t s[MBEDTLS_ECDSA_MAX_LEN];
      memcpy(s, ks.sig, ks.sig_len);
      s[b / 8] ^= (uint8_t)(1u << (b % 8));
      assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, s, ks.sig_len),
                       mbed_verify(ks.pub, ks.hash, s, ks.sig_len));
    }
    for (size_t b = 0; b < 65 * 8; b += 3) {
      uint8_t p[65];
      memcpy(p, ks.pub, 65);
      p[b / 8] ^= (uint8_t)(1u << (b % 8));
      int want = mbed_verify(p, ks.hash, ks.sig, ks.sig_len);
      assert_int_equal(want, DVOICE_ERR_CRYPTO);
      assert_int_equal(dv_p256_verify(p, 65, ks.hash, ks.sig, ks.sig_len),
                       want);
    }
    /* Truncated and extended encodings. */
    for (size_t n = 0; n < ks.sig_len; n++)
      assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, ks.sig, n),
                       DVOICE_ERR_CRYPTO);
    uint8_t longer[MBEDTLS_ECDSA_MAX_LEN + 1];
    memcpy(longer, ks.sig, ks.sig_len);
    longer[ks.sig_len] = 0;
    assert_int_equal(
        dv_p256_verify(ks.pub, 65, ks.hash, longer, ks.sig_len + 1),
        DVOICE_ERR_CRYPTO);
    mbedtls_ecdsa_free(&ks.k);
  }
}

static void test_out_of_range(void **state) {
  (void)state;
  det_rng rng = {2000};
  keysig ks;
  make(&ks, &rng);
  /* r = 0, s = 1 / r = 1, s = 0 / r = n, s = 1 / r = 2^256 - 1. */
  static const uint8_t r0[] = {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01};
  static const uint8_t s0[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00};
  uint8_t rn[] = {0x30, 0x26, 0x02, 0x21, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00,
                  0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                  0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3,
                  0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51, 0x02, 0x01, 0x01};
  assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, r0, sizeof r0),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, s0, sizeof s0),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, rn, sizeof rn),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(mbed_verify(ks.pub, ks.hash, rn, sizeof rn),
                   DVOICE_ERR_CRYPTO);
  /* Compressed or infinity encodings, wrong lengths, NULL. */
  uint8_t p[65];
  memcpy(p, ks.pub, 65);
  p[0] = 0x02;
  assert_int_equal(dv_p256_verify(p, 65, ks.hash, ks.sig, ks.sig_len),
                   DVOICE_ERR_CRYPTO);
  memset(p, 0, sizeof p);
  p[0] = 0x04;
  assert_int_equal(dv_p256_verify(p, 65, ks.hash, ks.sig, ks.sig_len),
                   DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_p256_verify(ks.pub, 64, ks.hash, ks.sig, ks.sig_len),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_p256_verify(NULL, 65, ks.hash, ks.sig, ks.sig_len),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_p256_verify(ks.pub, 65, ks.hash, NULL, 0),
                   DVOICE_ERR_CRYPTO);
  /* A leading zero in r (non-minimal DER) is accepted like mbedTLS does. */
  uint8_t padded[MBEDTLS_ECDSA_MAX_LEN + 1];
  size_t rl = ks.sig[3];
  if (ks.sig[1] < 0x7f) {
    padded[0] = 0x30;
    padded[1] = (uint8_t)(ks.sig[1] + 1);
    padded[2] = 0x02;
    padded[3] = (uint8_t)(rl + 1);
    padded[4] = 0;
    memcpy(padded + 5, ks.sig + 4, ks.sig_len - 4);
    assert_int_equal(
        dv_p256_verify(ks.pub, 65, ks.hash, padded, ks.sig_len + 1),
        mbed_verify(ks.pub, ks.hash, padded, ks.sig_len + 1));
  }
  mbedtls_ecdsa_free(&ks.k);
}

/* k * P with mbedTLS, as 65 uncompressed bytes. */
static void mbed_mul(const mbedtls_ecp_group *grp, const uint8_t k[32],
                     const mbedtls_ecp_point *p, uint8_t out[65],
                     det_rng *rng) {
  mbedtls_mpi d;
  mbedtls_ecp_point r;
  mbedtls_mpi_init(&d);
  mbedtls_ecp_point_init(&r);
  assert_int_equal(mbedtls_mpi_read_binary(&d, k, 32), 0);
  assert_int_equal(
      mbedtls_ecp_mul((mbedtls_ecp_group *)grp, &r, &d, p, det_rand, rng), 0);
  size_t olen;
  assert_int_equal(mbedtls_ecp_point_write_binary(
                       grp, &r, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, out, 65),
                   0);
  mbedtls_mpi_free(&d);
  mbedtls_ecp_point_free(&r);
}

/* Random scalars times G and times random points, plus the edge scalars
 * 1, 2, 15, 16, n-1, agree with mbedTLS; 0 and n are refused. */
static void test_mul_matches_mbedtls(void **state) {
  (void)state;
  det_rng rng = {3000};
  mbedtls_ecp_group grp;
  mbedtls_ecp_group_init(&grp);
  assert_int_equal(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1), 0);
  uint8_t n[32], edge[6][32];
  assert_int_equal(mbedtls_mpi_write_binary(&grp.N, n, 32), 0);
  memset(edge, 0, sizeof edge);
  edge[0][31] = 1;
  edge[1][31] = 2;
  edge[2][31] = 15;
  edge[3][31] = 16;
  memcpy(edge[4], n, 32);
  edge[4][31] -= 1; /* n - 1 (n ends in 0x51) */
  memset(edge[5], 0xf0, 32);
  edge[5][0] = 0x0f;
  for (int i = 0; i < 60; i++) {
    keysig ks;
    make(&ks, &rng);
    uint8_t k[32], want[65], got[65];
    if (i < 6)
      memcpy(k, edge[i], 32);
    else
      det_rand(&rng, k, 32);
    if (i >= 6 && memcmp(k, n, 32) >= 0)
      k[0] = 0x7f;
    /* k * G */
    mbed_mul(&grp, k, &grp.G, want, &rng);
    assert_int_equal(dv_p256_mul(got, k, NULL, 0), 0);
    dvt_assert_bytes(got, 65, want, 65);
    /* k * Q for a random key Q */
    mbed_mul(&grp, k, &ks.k.Q, want, &rng);
    assert_int_equal(dv_p256_mul(got, k, ks.pub, 65), 0);
    dvt_assert_bytes(got, 65, want, 65);
    /* Q off the curve is refused. */
    uint8_t bad[65];
    memcpy(bad, ks.pub, 65);
    bad[64] ^= 1;
    assert_int_equal(dv_p256_mul(got, k, bad, 65), DVOICE_ERR_CRYPTO);
    mbedtls_ecdsa_free(&ks.k);
  }
  uint8_t zero[32] = {0}, out[65];
  assert_int_equal(dv_p256_mul(out, zero, NULL, 0), DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_p256_mul(out, n, NULL, 0), DVOICE_ERR_CRYPTO);
  assert_int_equal(dv_p256_mul(out, n, out, 64), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_p256_mul(NULL, n, NULL, 0), DVOICE_ERR_INVALID_ARGUMENT);
  mbedtls_ecp_group_free(&grp);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_signatures),
      cmocka_unit_test(test_corruptions_match_mbedtls),
      cmocka_unit_test(test_out_of_range),
      cmocka_unit_test(test_mul_matches_mbedtls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
