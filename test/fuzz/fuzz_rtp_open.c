/* Fuzz target: RTP receive path. Input: one received datagram.
 * 1. Header parsing, plain parsing and extension walking on the raw bytes.
 * 2. dv_rtp_open with a fixed key in both rtpsize modes (and both AES
 *    backends): forged input must be rejected without over-reading.
 * 3. The input treated as a plaintext packet: sealed with the fixed key,
 *    then opened; the result must match the plain parse exactly. This
 *    drives the post-decryption split (extension body, padding) with
 *    arbitrary plaintext. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtp/dv_rtp.h"
#include "rtp/dv_rtp_crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCTX 3

static dv_rtp_crypt ctx[NCTX];
static int nctx;

static void setup(void) {
  uint8_t key[32];
  for (int i = 0; i < 32; i++) {
    key[i] = (uint8_t)(i * 7 + 3);
  }
  if (dv_rtp_crypt_init(&ctx[nctx], DV_RTP_MODE_XCHACHA20, key, 0) == 0) {
    nctx++;
  }
  if (dv_rtp_crypt_init(&ctx[nctx], DV_RTP_MODE_AES256GCM, key,
                        DV_RTP_BACKEND_MBEDTLS) == 0) {
    nctx++;
  }
  if (dv_rtp_sodium_aes_available() &&
      dv_rtp_crypt_init(&ctx[nctx], DV_RTP_MODE_AES256GCM, key,
                        DV_RTP_BACKEND_SODIUM) == 0) {
    nctx++;
  }
}

static void walk_ext(const dv_rtp_rx *rx) {
  size_t pos = 0, dlen;
  uint8_t id;
  const uint8_t *d;
  int guard = 0;
  while (dv_rtp_ext_next(rx->ext, rx->ext_len, &pos, &id, &d, &dlen) == 1) {
    if (id == 0 || id == 15 || dlen == 0 || dlen > 16 ||
        d + dlen > rx->ext + rx->ext_len || ++guard > 1024) {
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[2048], sealed[2100];
  dv_rtp_rx plain, rx;
  size_t sl;
  int prv;
  if (nctx == 0) {
    setup();
  }
  if (size > 2000) {
    return 0;
  }
  (void)dv_udp_classify(data, size);
  prv = dv_rtp_parse_plain(&plain, data, size);
  if (prv == 0) {
    if (plain.payload + plain.payload_len + plain.pad_len != data + size) {
      abort();
    }
    walk_ext(&plain);
  }
  for (int i = 0; i < nctx; i++) {
    /* Forged input fails; genuine packets (the seeds use this key) open
     * into |out| with consistent lengths. */
    int rv = dv_rtp_open(&ctx[i], data, size, out, sizeof(out), &rx);
    if (rv == 0 &&
        (rx.ext != out || rx.ext_len + rx.payload_len + rx.pad_len !=
                              size - rx.hdr.len - DV_RTP_CRYPT_OVERHEAD)) {
      abort();
    }
  }
  for (int i = 0; i < nctx; i++) {
    size_t ol;
    if (dv_rtcp_open(&ctx[i], data, size, out, sizeof(out), &ol) == 0 &&
        ol + DV_RTP_CRYPT_OVERHEAD != size) {
      abort();
    }
  }
  if (dv_rtp_hdr_parse(&plain.hdr, data, size) != 0) {
    return 0;
  }
  for (int i = 0; i < nctx; i++) {
    int rv = dv_rtp_seal_nonce(&ctx[i], (uint32_t)size * 2654435761u, data,
                               size, sealed, sizeof(sealed), &sl);
    if (rv != 0 || sl != size + DV_RTP_CRYPT_OVERHEAD) {
      abort();
    }
    rv = dv_rtp_open(&ctx[i], sealed, sl, out, sizeof(out), &rx);
    if (rv != prv) {
      abort();
    }
    if (rv == 0) {
      if (rx.ext_len != plain.ext_len || rx.pad_len != plain.pad_len ||
          rx.payload_len != plain.payload_len ||
          memcmp(rx.payload, plain.payload, rx.payload_len) != 0 ||
          memcmp(rx.ext, plain.ext, rx.ext_len) != 0 ||
          rx.nonce != (uint32_t)size * 2654435761u) {
        abort();
      }
      walk_ext(&rx);
    }
  }
  return 0;
}
