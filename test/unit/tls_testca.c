/* Test PKI generation; see tls_testca.h. */
#include "tls_testca.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

/* Deterministic entropy: a counter started from the seed. */
static int seed_entropy(void *ctx, unsigned char *out, size_t len) {
  uint32_t *s = ctx;
  for (size_t i = 0; i < len; i++) {
    *s = *s * 1664525u + 1013904223u;
    out[i] = (unsigned char)(*s >> 24);
  }
  return 0;
}

static int gen_key(mbedtls_pk_context *k, mbedtls_ctr_drbg_context *rng) {
  int ret = mbedtls_pk_setup(k, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
  if (ret == 0) {
    ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*k),
                              mbedtls_ctr_drbg_random, rng);
  }
  return ret;
}

static int issue(mbedtls_pk_context *subject_key, const char *subject,
                 mbedtls_pk_context *issuer_key, const char *issuer, int is_ca,
                 int serial_no, mbedtls_ctr_drbg_context *rng, char *pem,
                 size_t pem_size) {
  mbedtls_x509write_cert w;
  mbedtls_mpi serial;
  int ret;
  mbedtls_x509write_crt_init(&w);
  mbedtls_mpi_init(&serial);
  mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w, subject_key);
  mbedtls_x509write_crt_set_issuer_key(&w, issuer_key);
  ret = mbedtls_mpi_lset(&serial, serial_no);
  if (ret == 0) {
    ret = mbedtls_x509write_crt_set_serial(&w, &serial);
  }
  if (ret == 0) {
    ret = mbedtls_x509write_crt_set_validity(&w, "20200101000000",
                                             "20991231235959");
  }
  if (ret == 0) {
    ret = mbedtls_x509write_crt_set_subject_name(&w, subject);
  }
  if (ret == 0) {
    ret = mbedtls_x509write_crt_set_issuer_name(&w, issuer);
  }
  if (ret == 0) {
    ret = mbedtls_x509write_crt_set_basic_constraints(&w, is_ca, -1);
  }
  if (ret == 0) {
    ret = mbedtls_x509write_crt_pem(&w, (unsigned char *)pem, pem_size,
                                    mbedtls_ctr_drbg_random, rng);
  }
  mbedtls_mpi_free(&serial);
  mbedtls_x509write_crt_free(&w);
  return ret;
}

int dvt_testca_generate(dvt_testca *t, const char *server_cn, uint32_t seed) {
  mbedtls_ctr_drbg_context rng;
  mbedtls_pk_context ca_key, other_key, srv_key;
  char subject[256];
  uint32_t state = seed;
  int ret;
  memset(t, 0, sizeof *t);
  mbedtls_ctr_drbg_init(&rng);
  mbedtls_pk_init(&ca_key);
  mbedtls_pk_init(&other_key);
  mbedtls_pk_init(&srv_key);
  snprintf(subject, sizeof subject, "CN=%s,O=dvoice test", server_cn);
  ret = mbedtls_ctr_drbg_seed(&rng, seed_entropy, &state, NULL, 0);
  if (ret == 0) {
    ret = gen_key(&ca_key, &rng);
  }
  if (ret == 0) {
    ret = gen_key(&other_key, &rng);
  }
  if (ret == 0) {
    ret = gen_key(&srv_key, &rng);
  }
  if (ret == 0) {
    ret = issue(&ca_key, "CN=dvoice test CA", &ca_key, "CN=dvoice test CA", 1,
                1, &rng, t->ca_pem, sizeof t->ca_pem);
  }
  if (ret == 0) {
    /* Same name as the real CA: only the key tells them apart. */
    ret =
        issue(&other_key, "CN=dvoice test CA", &other_key, "CN=dvoice test CA",
              1, 2, &rng, t->other_ca_pem, sizeof t->other_ca_pem);
  }
  if (ret == 0) {
    ret = issue(&srv_key, subject, &ca_key, "CN=dvoice test CA", 0, 3, &rng,
                t->cert_pem, sizeof t->cert_pem);
  }
  if (ret == 0) {
    ret = mbedtls_pk_write_key_pem(&srv_key, (unsigned char *)t->key_pem,
                                   sizeof t->key_pem);
  }
  mbedtls_pk_free(&ca_key);
  mbedtls_pk_free(&other_key);
  mbedtls_pk_free(&srv_key);
  mbedtls_ctr_drbg_free(&rng);
  return ret;
}

int dvt_testca_write_file(const char *path, const char *pem) {
  FILE *f = fopen(path, "wb");
  size_t n = strlen(pem);
  int ok;
  if (f == NULL) {
    return -1;
  }
  ok = fwrite(pem, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}
