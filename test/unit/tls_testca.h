/*
 * A throw-away PKI generated at test time with mbedTLS (no key material is
 * committed): a test CA, a server certificate for a given name signed by it,
 * and a second, unrelated CA for "wrong CA" tests. ECDSA P-256, SHA-256,
 * valid 2020..2099. Deterministic for a given seed.
 *
 * Other tests may compile this file too (add '../unit/tls_testca.c' to their
 * sources).
 */
#ifndef TLS_TESTCA_H
#define TLS_TESTCA_H

#include <stddef.h>
#include <stdint.h>

typedef struct dvt_testca {
  char ca_pem[2048];       /* the CA that signed the server certificate */
  char other_ca_pem[2048]; /* an unrelated CA */
  char cert_pem[2048];     /* server certificate, CN = the requested name */
  char key_pem[1024];      /* server private key */
} dvt_testca;

/* Generates everything; returns 0 or an mbedTLS error code. */
int dvt_testca_generate(dvt_testca *t, const char *server_cn, uint32_t seed);

/* Writes |pem| to |path|; returns 0 or -1. */
int dvt_testca_write_file(const char *path, const char *pem);

#endif
