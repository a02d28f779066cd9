/*
 * Differential target for lib/p256 against mbedTLS on peer-controlled
 * bytes: input = public key (65) || hash (32) || DER signature (rest).
 * dv_p256_verify must give mbedTLS's verdict; dv_p256_check_point must
 * agree with mbedtls_ecp_check_pubkey; for a valid point, a scalar taken
 * from the hash times it must equal mbedTLS's product.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecdsa.h>

#include "p256/dv_p256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_rng(void *p, unsigned char *b, size_t n) {
  (void)p;
  memset(b, 0x42, n);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 97)
    return 0;
  const uint8_t *pub = data, *hash = data + 65, *sig = data + 97;
  size_t sig_len = size - 97;
  mbedtls_ecdsa_context v;
  mbedtls_ecdsa_init(&v);
  if (mbedtls_ecp_group_load(&v.grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
    abort();
  int point_ok = pub[0] == 0x04 &&
                 mbedtls_ecp_point_read_binary(&v.grp, &v.Q, pub, 65) == 0 &&
                 mbedtls_ecp_check_pubkey(&v.grp, &v.Q) == 0;
  if ((dv_p256_check_point(pub, 65) == 0) != point_ok)
    abort();
  int want =
      point_ok && mbedtls_ecdsa_read_signature(&v, hash, 32, sig, sig_len) == 0;
  if ((dv_p256_verify(pub, 65, hash, sig, sig_len) == 0) != want)
    abort();
  if (point_ok) {
    mbedtls_mpi d;
    mbedtls_ecp_point r;
    mbedtls_mpi_init(&d);
    mbedtls_ecp_point_init(&r);
    uint8_t got[65], exp[65];
    size_t olen;
    int ok = mbedtls_mpi_read_binary(&d, hash, 32) == 0 &&
             mbedtls_ecp_check_privkey(&v.grp, &d) == 0;
    int rc = dv_p256_mul(got, hash, pub, 65);
    if ((rc == 0) != ok)
      abort();
    if (ok) {
      if (mbedtls_ecp_mul(&v.grp, &r, &d, &v.Q, no_rng, NULL) != 0 ||
          mbedtls_ecp_point_write_binary(&v.grp, &r,
                                         MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                         exp, sizeof exp) != 0 ||
          memcmp(got, exp, 65) != 0)
        abort();
    }
    mbedtls_mpi_free(&d);
    mbedtls_ecp_point_free(&r);
  }
  mbedtls_ecdsa_free(&v);
  return 0;
}
