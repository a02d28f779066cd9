#include "rtp/dv_rtp_crypt.h"

#include <string.h>

#include "util/dv_mem.h"
#include "util/dv_rw.h"

dv_rtp_mode dv_rtp_mode_from_name(const char *name, size_t len) {
  if (len == strlen(DV_RTP_MODE_NAME_AES256GCM) &&
      memcmp(name, DV_RTP_MODE_NAME_AES256GCM, len) == 0) {
    return DV_RTP_MODE_AES256GCM;
  }
  if (len == strlen(DV_RTP_MODE_NAME_XCHACHA20) &&
      memcmp(name, DV_RTP_MODE_NAME_XCHACHA20, len) == 0) {
    return DV_RTP_MODE_XCHACHA20;
  }
  return DV_RTP_MODE_NONE;
}

const char *dv_rtp_mode_name(dv_rtp_mode mode) {
  switch (mode) {
    case DV_RTP_MODE_AES256GCM:
      return DV_RTP_MODE_NAME_AES256GCM;
    case DV_RTP_MODE_XCHACHA20:
      return DV_RTP_MODE_NAME_XCHACHA20;
    case DV_RTP_MODE_NONE:
      break;
  }
  return NULL;
}

dv_rtp_mode dv_rtp_mode_choose(const char *const *offered, size_t n) {
  dv_rtp_mode best = DV_RTP_MODE_NONE;
  for (size_t i = 0; i < n; i++) {
    dv_rtp_mode m;
    if (offered[i] == NULL) {
      continue;
    }
    m = dv_rtp_mode_from_name(offered[i], strlen(offered[i]));
    if (m == DV_RTP_MODE_AES256GCM) {
      return m;
    }
    if (m == DV_RTP_MODE_XCHACHA20) {
      best = m;
    }
  }
  return best;
}

int dv_rtp_sodium_aes_available(void) {
  return sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
}

static crypto_aead_aes256gcm_state *aes_state(const dv_rtp_crypt *c) {
  uintptr_t p = (uintptr_t)c->aes_state;
  return (crypto_aead_aes256gcm_state *)((p + 15) & ~(uintptr_t)15);
}

int dv_rtp_crypt_init(dv_rtp_crypt *c, dv_rtp_mode mode, const uint8_t *key,
                      dv_rtp_backend backend) {
  int rv;
  memset(c, 0, sizeof(*c));
  if (key == NULL ||
      (mode != DV_RTP_MODE_AES256GCM && mode != DV_RTP_MODE_XCHACHA20)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (backend != DV_RTP_BACKEND_AUTO && backend != DV_RTP_BACKEND_SODIUM &&
      backend != DV_RTP_BACKEND_MBEDTLS) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (sodium_init() < 0) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  c->mode = mode;
  memcpy(c->key, key, DV_RTP_KEY_LEN);
  if (mode == DV_RTP_MODE_XCHACHA20) {
    c->backend = DV_RTP_BACKEND_SODIUM;
    return 0;
  }
  if (backend == DV_RTP_BACKEND_AUTO) {
    backend = crypto_aead_aes256gcm_is_available() ? DV_RTP_BACKEND_SODIUM
                                                   : DV_RTP_BACKEND_MBEDTLS;
  }
  c->backend = backend;
  if (backend == DV_RTP_BACKEND_SODIUM) {
    if (!crypto_aead_aes256gcm_is_available()) {
      dv_rtp_crypt_clear(c);
      return DVOICE_ERR_UNSUPPORTED;
    }
    crypto_aead_aes256gcm_beforenm(aes_state(c), c->key);
    return 0;
  }
  mbedtls_gcm_init(&c->gcm);
  c->gcm_ready = 1;
  /* mbedTLS allocates its cipher context here (with its own allocator),
   * never per packet. */
  rv = mbedtls_gcm_setkey(&c->gcm, MBEDTLS_CIPHER_ID_AES, c->key, 256);
  if (rv != 0) {
    dv_rtp_crypt_clear(c);
    return rv == MBEDTLS_ERR_CIPHER_ALLOC_FAILED ? DVOICE_ERR_NOMEM
                                                 : DVOICE_ERR_CRYPTO;
  }
  return 0;
}

void dv_rtp_crypt_clear(dv_rtp_crypt *c) {
  if (c->gcm_ready) {
    mbedtls_gcm_free(&c->gcm); /* wipes the expanded key */
  }
  dv_wipe(c, sizeof(*c));
}

/* Forms the full nonce: the counter's 4 bytes first, zeros after. */
static void make_nonce(uint8_t nonce[24], uint32_t ctr) {
  memset(nonce, 0, 24);
  dv_put_u32(nonce, ctr);
}

/* Encrypts |body| into |ct| and writes the tag; |aad| is the clear header. */
static int aead_seal(dv_rtp_crypt *c, const uint8_t nonce[24],
                     const uint8_t *aad, size_t aad_len, const uint8_t *body,
                     size_t body_len, uint8_t *ct, uint8_t *tag) {
  unsigned long long taglen = 0;
  switch (c->mode) {
    case DV_RTP_MODE_XCHACHA20:
      crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
          ct, tag, &taglen, body, body_len, aad, aad_len, NULL, nonce, c->key);
      return 0;
    case DV_RTP_MODE_AES256GCM:
      if (c->backend == DV_RTP_BACKEND_SODIUM) {
        crypto_aead_aes256gcm_encrypt_detached_afternm(
            ct, tag, &taglen, body, body_len, aad, aad_len, NULL, nonce,
            aes_state(c));
        return 0;
      }
      return mbedtls_gcm_crypt_and_tag(&c->gcm, MBEDTLS_GCM_ENCRYPT, body_len,
                                       nonce, 12, aad, aad_len, body, ct,
                                       DV_RTP_TAG_LEN, tag) == 0
                 ? 0
                 : DVOICE_ERR_CRYPTO;
    case DV_RTP_MODE_NONE:
      break;
  }
  return DVOICE_ERR_INVALID_STATE;
}

static int aead_open(dv_rtp_crypt *c, const uint8_t nonce[24],
                     const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                     size_t ct_len, const uint8_t *tag, uint8_t *out) {
  int rv;
  switch (c->mode) {
    case DV_RTP_MODE_XCHACHA20:
      rv = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
          out, NULL, ct, ct_len, tag, aad, aad_len, nonce, c->key);
      return rv == 0 ? 0 : DVOICE_ERR_CRYPTO;
    case DV_RTP_MODE_AES256GCM:
      if (c->backend == DV_RTP_BACKEND_SODIUM) {
        rv = crypto_aead_aes256gcm_decrypt_detached_afternm(
            out, NULL, ct, ct_len, tag, aad, aad_len, nonce, aes_state(c));
      } else {
        rv = mbedtls_gcm_auth_decrypt(&c->gcm, ct_len, nonce, 12, aad, aad_len,
                                      tag, DV_RTP_TAG_LEN, ct, out);
      }
      return rv == 0 ? 0 : DVOICE_ERR_CRYPTO;
    case DV_RTP_MODE_NONE:
      break;
  }
  return DVOICE_ERR_INVALID_STATE;
}

int dv_rtp_seal_nonce(dv_rtp_crypt *c, uint32_t ctr, const uint8_t *pkt,
                      size_t len, uint8_t *out, size_t cap, size_t *out_len) {
  dv_rtp_hdr h;
  uint8_t nonce[24];
  size_t body_len;
  int rv;
  if (c->mode == DV_RTP_MODE_NONE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_rtp_hdr_parse(&h, pkt, len);
  if (rv < 0) {
    return rv;
  }
  if (cap < len || cap - len < DV_RTP_CRYPT_OVERHEAD) {
    return DVOICE_ERR_NOBUF;
  }
  body_len = len - h.len;
  memcpy(out, pkt, h.len);
  make_nonce(nonce, ctr);
  rv = aead_seal(c, nonce, out, h.len, pkt + h.len, body_len, out + h.len,
                 out + len);
  if (rv < 0) {
    return rv;
  }
  dv_put_u32(out + len + DV_RTP_TAG_LEN, ctr);
  *out_len = len + DV_RTP_CRYPT_OVERHEAD;
  return 0;
}

/* Takes the next counter value, refusing once the key's 2^32 are used. */
static int take_nonce(dv_rtp_crypt *c, uint32_t *ctr) {
  if (c->sealed >= ((uint64_t)1 << 32)) {
    return DVOICE_ERR_TOO_LARGE;
  }
  *ctr = c->next_nonce;
  return 0;
}

static void commit_nonce(dv_rtp_crypt *c) {
  c->next_nonce++;
  c->sealed++;
}

int dv_rtp_seal(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                size_t cap, size_t *out_len) {
  uint32_t ctr;
  int rv = take_nonce(c, &ctr);
  if (rv == 0) {
    rv = dv_rtp_seal_nonce(c, ctr, pkt, len, out, cap, out_len);
  }
  if (rv == 0) {
    commit_nonce(c);
  }
  return rv;
}

int dv_rtp_seal_opus(dv_rtp_crypt *c, uint16_t seq, uint32_t timestamp,
                     uint32_t ssrc, const uint8_t *payload, size_t payload_len,
                     uint8_t *out, size_t cap, size_t *out_len) {
  dv_rtp_hdr h;
  uint8_t nonce[24];
  uint32_t ctr;
  int rv;
  if (c->mode == DV_RTP_MODE_NONE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (cap < DV_RTP_SEND_OVERHEAD || cap - DV_RTP_SEND_OVERHEAD < payload_len) {
    return DVOICE_ERR_NOBUF;
  }
  rv = take_nonce(c, &ctr);
  if (rv < 0) {
    return rv;
  }
  dv_rtp_hdr_opus(&h, seq, timestamp, ssrc);
  (void)dv_rtp_hdr_write(&h, out, cap); /* cannot fail: checked above */
  make_nonce(nonce, ctr);
  rv = aead_seal(c, nonce, out, DV_RTP_HDR_MIN, payload, payload_len,
                 out + DV_RTP_HDR_MIN, out + DV_RTP_HDR_MIN + payload_len);
  if (rv < 0) {
    return rv;
  }
  dv_put_u32(out + DV_RTP_HDR_MIN + payload_len + DV_RTP_TAG_LEN, ctr);
  *out_len = payload_len + DV_RTP_SEND_OVERHEAD;
  commit_nonce(c);
  return 0;
}

int dv_rtp_open(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                size_t cap, dv_rtp_rx *rx) {
  uint8_t nonce[24];
  size_t ct_len;
  int rv;
  if (c->mode == DV_RTP_MODE_NONE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_rtp_hdr_parse(&rx->hdr, pkt, len);
  if (rv < 0) {
    return rv;
  }
  if (len - rx->hdr.len < DV_RTP_CRYPT_OVERHEAD) {
    return DVOICE_ERR_TRUNCATED;
  }
  ct_len = len - rx->hdr.len - DV_RTP_CRYPT_OVERHEAD;
  if (cap < ct_len) {
    return DVOICE_ERR_NOBUF;
  }
  rx->nonce = dv_get_u32(pkt + len - DV_RTP_NONCE_LEN);
  make_nonce(nonce, rx->nonce);
  rv = aead_open(c, nonce, pkt, rx->hdr.len, pkt + rx->hdr.len, ct_len,
                 pkt + rx->hdr.len + ct_len, out);
  if (rv < 0) {
    return rv;
  }
  return dv_rtp_split(rx, out, ct_len);
}

int dv_rtcp_seal_nonce(dv_rtp_crypt *c, uint32_t ctr, const uint8_t *pkt,
                       size_t len, uint8_t *out, size_t cap, size_t *out_len) {
  uint8_t nonce[24];
  int rv;
  if (c->mode == DV_RTP_MODE_NONE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (len < DV_RTCP_HDR_LEN) {
    return DVOICE_ERR_TRUNCATED;
  }
  if ((pkt[0] >> 6) != DV_RTP_VERSION) {
    return DVOICE_ERR_MALFORMED;
  }
  if (cap < len || cap - len < DV_RTP_CRYPT_OVERHEAD) {
    return DVOICE_ERR_NOBUF;
  }
  memcpy(out, pkt, DV_RTCP_HDR_LEN);
  make_nonce(nonce, ctr);
  rv = aead_seal(c, nonce, out, DV_RTCP_HDR_LEN, pkt + DV_RTCP_HDR_LEN,
                 len - DV_RTCP_HDR_LEN, out + DV_RTCP_HDR_LEN, out + len);
  if (rv < 0) {
    return rv;
  }
  dv_put_u32(out + len + DV_RTP_TAG_LEN, ctr);
  *out_len = len + DV_RTP_CRYPT_OVERHEAD;
  return 0;
}

int dv_rtcp_open(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                 size_t cap, size_t *out_len) {
  uint8_t nonce[24];
  size_t ct_len;
  int rv;
  if (c->mode == DV_RTP_MODE_NONE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (len < DV_RTCP_HDR_LEN + DV_RTP_CRYPT_OVERHEAD) {
    return DVOICE_ERR_TRUNCATED;
  }
  if ((pkt[0] >> 6) != DV_RTP_VERSION) {
    return DVOICE_ERR_MALFORMED;
  }
  ct_len = len - DV_RTCP_HDR_LEN - DV_RTP_CRYPT_OVERHEAD;
  if (cap < DV_RTCP_HDR_LEN + ct_len) {
    return DVOICE_ERR_NOBUF;
  }
  make_nonce(nonce, dv_get_u32(pkt + len - DV_RTP_NONCE_LEN));
  rv = aead_open(c, nonce, pkt, DV_RTCP_HDR_LEN, pkt + DV_RTCP_HDR_LEN, ct_len,
                 pkt + DV_RTCP_HDR_LEN + ct_len, out + DV_RTCP_HDR_LEN);
  if (rv < 0) {
    return rv;
  }
  memcpy(out, pkt, DV_RTCP_HDR_LEN);
  *out_len = DV_RTCP_HDR_LEN + ct_len;
  return 0;
}
