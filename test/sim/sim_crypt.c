/* Transport AEAD for the simulator (independent of lib/rtp). */
#include "sim_crypt.h"

#include <string.h>

#include <mbedtls/gcm.h>
#include <sodium.h>

#include "util/dv_mem.h"

size_t dv_sim_rtp_aad_len(const uint8_t *p, size_t len) {
  size_t h;
  if (len < 12) {
    return 0;
  }
  h = 12 + 4 * (size_t)(p[0] & 0x0f) + ((p[0] & 0x10) ? 4 : 0);
  return len >= h ? h : 0;
}

/* The 4 counter bytes go first; the rest of the nonce is zero. */
static void make_nonce(uint8_t nonce[24], const uint8_t ctr[4]) {
  memset(nonce, 0, 24);
  memcpy(nonce, ctr, 4);
}

void dv_sim_crypt_key_init(dv_sim_crypt_key *k) {
  memset(k, 0, sizeof(*k));
  k->mode = DV_SIM_MODE_NONE;
  mbedtls_gcm_init(&k->gcm);
}

void dv_sim_crypt_key_free(dv_sim_crypt_key *k) {
  mbedtls_gcm_free(&k->gcm); /* zeroises the expanded key */
  sodium_memzero(k->key, sizeof(k->key));
  k->mode = DV_SIM_MODE_NONE;
  mbedtls_gcm_init(&k->gcm);
}

int dv_sim_crypt_key_set(dv_sim_crypt_key *k, dv_sim_mode mode,
                         const uint8_t key[32]) {
  if (mode == k->mode &&
      (mode == DV_SIM_MODE_NONE || sodium_memcmp(key, k->key, 32) == 0)) {
    return 0;
  }
  dv_sim_crypt_key_free(k);
  switch (mode) {
    case DV_SIM_MODE_NONE:
      return 0;
    case DV_SIM_MODE_AES256_GCM:
      if (mbedtls_gcm_setkey(&k->gcm, MBEDTLS_CIPHER_ID_AES, key, 256) != 0) {
        dv_sim_crypt_key_free(k);
        return DVOICE_ERR_CRYPTO;
      }
      break;
    case DV_SIM_MODE_XCHACHA20:
      break;
    default:
      return DVOICE_ERR_UNSUPPORTED;
  }
  memcpy(k->key, key, 32);
  k->mode = mode;
  return 0;
}

int dv_sim_crypt_open_key(dv_sim_crypt_key *k, const uint8_t *pkt, size_t len,
                          dv_buf *plain, size_t *aad_len) {
  uint8_t nonce[24];
  size_t h = dv_sim_rtp_aad_len(pkt, len), ctlen;
  const uint8_t *ct, *tag;
  uint8_t *dst;
  int rv = 0;
  *aad_len = h;
  if (h == 0 || len < h + DV_SIM_TAG_LEN + DV_SIM_NONCE_SUFFIX) {
    return DVOICE_ERR_TRUNCATED;
  }
  if (k->mode != DV_SIM_MODE_AES256_GCM && k->mode != DV_SIM_MODE_XCHACHA20) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  ctlen = len - h - DV_SIM_TAG_LEN - DV_SIM_NONCE_SUFFIX;
  ct = pkt + h;
  tag = ct + ctlen;
  make_nonce(nonce, pkt + len - DV_SIM_NONCE_SUFFIX);
  dst = dv_buf_extend(plain, ctlen + 1);
  if (dst == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  plain->len -= 1; /* the spare byte keeps dst valid when ctlen is 0 */
  if (k->mode == DV_SIM_MODE_AES256_GCM) {
    if (mbedtls_gcm_auth_decrypt(&k->gcm, ctlen, nonce, 12, pkt, h, tag,
                                 DV_SIM_TAG_LEN, ct, dst) != 0) {
      rv = DVOICE_ERR_CRYPTO;
    }
  } else if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                 dst, NULL, ct, ctlen, tag, pkt, h, nonce, k->key) != 0) {
    rv = DVOICE_ERR_CRYPTO;
  }
  if (rv != 0) {
    sodium_memzero(dst, ctlen);
    plain->len -= ctlen;
  }
  return rv;
}

int dv_sim_crypt_seal_key(dv_sim_crypt_key *k, const uint8_t *aad,
                          size_t aad_len, const uint8_t *plain,
                          size_t plain_len, uint32_t counter, dv_buf *out) {
  uint8_t nonce[24], ctr[4];
  size_t start = out->len;
  uint8_t *dst;
  ctr[0] = (uint8_t)(counter >> 24);
  ctr[1] = (uint8_t)(counter >> 16);
  ctr[2] = (uint8_t)(counter >> 8);
  ctr[3] = (uint8_t)counter;
  make_nonce(nonce, ctr);
  if (k->mode != DV_SIM_MODE_AES256_GCM && k->mode != DV_SIM_MODE_XCHACHA20) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  dst = dv_buf_extend(out, aad_len + plain_len + DV_SIM_TAG_LEN + 4);
  if (dst == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  memcpy(dst, aad, aad_len);
  if (k->mode == DV_SIM_MODE_AES256_GCM) {
    if (mbedtls_gcm_crypt_and_tag(&k->gcm, MBEDTLS_GCM_ENCRYPT, plain_len,
                                  nonce, 12, aad, aad_len, plain, dst + aad_len,
                                  DV_SIM_TAG_LEN,
                                  dst + aad_len + plain_len) != 0) {
      out->len = start;
      return DVOICE_ERR_CRYPTO;
    }
  } else {
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        dst + aad_len, dst + aad_len + plain_len, NULL, plain, plain_len, aad,
        aad_len, NULL, nonce, k->key);
  }
  memcpy(dst + aad_len + plain_len + DV_SIM_TAG_LEN, ctr, 4);
  return 0;
}

/* The one-shot forms key a temporary context: fine for tests, too slow for
 * the media server's per-packet path. */
int dv_sim_crypt_open(dv_sim_mode mode, const uint8_t key[32],
                      const uint8_t *pkt, size_t len, dv_buf *plain,
                      size_t *aad_len) {
  dv_sim_crypt_key k;
  int rv;
  *aad_len = 0;
  dv_sim_crypt_key_init(&k);
  rv = dv_sim_crypt_key_set(&k, mode, key);
  if (rv == 0 || rv == DVOICE_ERR_UNSUPPORTED) {
    /* An unset key still gets the length checks first. */
    rv = dv_sim_crypt_open_key(&k, pkt, len, plain, aad_len);
  }
  dv_sim_crypt_key_free(&k);
  return rv;
}

int dv_sim_crypt_seal(dv_sim_mode mode, const uint8_t key[32],
                      const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                      size_t plain_len, uint32_t counter, dv_buf *out) {
  dv_sim_crypt_key k;
  int rv;
  dv_sim_crypt_key_init(&k);
  rv = dv_sim_crypt_key_set(&k, mode, key);
  if (rv == 0) {
    rv =
        dv_sim_crypt_seal_key(&k, aad, aad_len, plain, plain_len, counter, out);
  }
  dv_sim_crypt_key_free(&k);
  return rv;
}
