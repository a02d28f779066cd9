/*
 * Fuzz target: the dv_tls glue on the server side (BIO callbacks, the
 * handshake/read loop, error mapping, sticky states) fed arbitrary client
 * bytes. Byte 0 picks the chunk size (0 = all at once); the rest is fed to
 * a fresh server connection. mbedTLS itself is a system library and not
 * instrumented, so coverage feedback comes from our code only.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/dv_tls.h"
#include "util/dv_buf.h"

#include "../unit/tls_testca.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static dv_tls_conf *conf;
static dvoice_env env;
static uint8_t next;

static void counter_rand(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = next++;
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static dvt_testca pki;
  dv_tls_conf_opts o;
  (void)argc;
  (void)argv;
  if (dvt_testca_generate(&pki, "localhost", 7) != 0) {
    abort();
  }
  memset(&env, 0, sizeof env);
  env.rand = counter_rand;
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.cert_pem = (const uint8_t *)pki.cert_pem;
  o.cert_pem_len = strlen(pki.cert_pem);
  o.key_pem = (const uint8_t *)pki.key_pem;
  o.key_pem_len = strlen(pki.key_pem);
  if (dv_tls_conf_new(&conf, &o, &env) != 0) {
    abort();
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_tls t;
  dv_buf plain;
  size_t chunk, off;
  if (size < 1) {
    return 0;
  }
  chunk = data[0];
  data++;
  size--;
  if (chunk == 0) {
    chunk = size > 0 ? size : 1;
  }
  if (dv_tls_init(&t, conf, NULL) != 0 || dv_tls_start(&t) != 0) {
    abort();
  }
  dv_buf_init(&plain, NULL);
  for (off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    uint8_t *piece = malloc(n);
    int rv;
    if (piece == NULL) {
      break;
    }
    memcpy(piece, data + off, n);
    rv = dv_tls_feed(&t, piece, n);
    free(piece);
    dv_buf_reset(dv_tls_outbuf(&t));
    if (dv_tls_read(&t, &plain) != 0) {
      abort();
    }
    if (rv != 0) {
      /* Sticky, and the state says so. */
      if (dv_tls_feed(&t, data, 0) != rv || !dv_tls_is_closed(&t)) {
        abort();
      }
      break;
    }
  }
  /* No client can finish a handshake with fixed bytes: nothing decrypted. */
  if (plain.len != 0) {
    abort();
  }
  dv_buf_free(&plain);
  dv_tls_free(&t);
  return 0;
}
