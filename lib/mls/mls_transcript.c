#include "mls/mls_transcript.h"

#include <mbedtls/sha256.h>

#include <dvoice/dvoice.h>

/* SHA-256 over the concatenation of |k| pieces. */
static int sha256_parts(const uint8_t *const *p, const size_t *n, size_t k,
                        uint8_t out[32]) {
  mbedtls_sha256_context c;
  size_t i;
  int rc = 0;
  mbedtls_sha256_init(&c);
  rc |= mbedtls_sha256_starts_ret(&c, 0);
  for (i = 0; i < k; i++) {
    if (n[i] > 0) {
      rc |= mbedtls_sha256_update_ret(&c, p[i], n[i]);
    }
  }
  rc |= mbedtls_sha256_finish_ret(&c, out);
  mbedtls_sha256_free(&c);
  return rc != 0 ? DVOICE_ERR_CRYPTO : 0;
}

/* Writes the minimal varint for |v| into |b|; returns its size or 0. */
static size_t varint(uint8_t b[4], size_t v) {
  size_t n = v > DV_VARINT_MAX ? 0 : dv_varint_size((uint32_t)v);
  if (n == 1) {
    b[0] = (uint8_t)v;
  } else if (n == 2) {
    dv_put_u16(b, (uint16_t)(0x4000u | v));
  } else if (n == 4) {
    dv_put_u32(b, (uint32_t)(0x80000000u | v));
  }
  return n;
}

int dv_mls_transcript_confirmed(const dv_mls_bytes *interim_before,
                                uint16_t wire_format,
                                const dv_mls_bytes *framed_content,
                                const dv_mls_bytes *signature,
                                uint8_t out[32]) {
  uint8_t wf[2], pre[4];
  const uint8_t *p[5];
  size_t n[5];
  if (interim_before == NULL || framed_content == NULL || signature == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_put_u16(wf, wire_format);
  p[0] = interim_before->p;
  n[0] = interim_before->len;
  p[1] = wf;
  n[1] = 2;
  p[2] = framed_content->p;
  n[2] = framed_content->len;
  p[3] = pre;
  if ((n[3] = varint(pre, signature->len)) == 0) {
    return DVOICE_ERR_TOO_LARGE;
  }
  p[4] = signature->p;
  n[4] = signature->len;
  return sha256_parts(p, n, 5, out);
}

int dv_mls_transcript_interim(const uint8_t confirmed[32],
                              const dv_mls_bytes *confirmation_tag,
                              uint8_t out[32]) {
  uint8_t pre[4];
  const uint8_t *p[3];
  size_t n[3];
  if (confirmed == NULL || confirmation_tag == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  p[0] = confirmed;
  n[0] = 32;
  p[1] = pre;
  if ((n[1] = varint(pre, confirmation_tag->len)) == 0) {
    return DVOICE_ERR_TOO_LARGE;
  }
  p[2] = confirmation_tag->p;
  n[2] = confirmation_tag->len;
  return sha256_parts(p, n, 3, out);
}

int dv_mls_transcript_update(const dv_mls_bytes *interim_before,
                             const dv_mls_authenticated_content *ac,
                             uint8_t confirmed[32], uint8_t interim[32]) {
  int rc;
  if (ac == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rc = dv_mls_transcript_confirmed(interim_before, ac->wire_format,
                                   &ac->content.raw, &ac->auth.signature,
                                   confirmed);
  if (rc != 0) {
    return rc;
  }
  return dv_mls_transcript_interim(confirmed, &ac->auth.confirmation_tag,
                                   interim);
}
