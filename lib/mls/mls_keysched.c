/* The MLS key schedule; see mls_keysched.h. */
#include "mls/mls_keysched.h"

#include <string.h>

#include <sodium.h>

void dv_mls_epoch_secrets_wipe(dv_mls_epoch_secrets *s) {
  if (s != NULL)
    sodium_memzero(s, sizeof *s);
}

static const uint8_t ZERO32[DV_MLS_HASH_LEN];

int dv_mls_keysched_from_joiner(const uint8_t joiner_secret[DV_MLS_HASH_LEN],
                                const uint8_t *psk_secret,
                                const uint8_t *group_context, size_t gc_len,
                                dv_mls_epoch_secrets *out) {
  if (joiner_secret == NULL || out == NULL ||
      (group_context == NULL && gc_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t member[DV_MLS_HASH_LEN];
  /* Copy first: joiner_secret may point into |out|. */
  memmove(out->joiner, joiner_secret, DV_MLS_HASH_LEN);
  const uint8_t *psk = psk_secret != NULL ? psk_secret : ZERO32;
  int ret = dv_mls_hkdf_extract(out->joiner, DV_MLS_HASH_LEN, psk,
                                DV_MLS_HASH_LEN, member);
  if (ret == 0)
    ret = dv_mls_derive_secret(member, sizeof member, "welcome", out->welcome);
  if (ret == 0)
    ret =
        dv_mls_expand_with_label(member, sizeof member, "epoch", group_context,
                                 gc_len, out->epoch, DV_MLS_HASH_LEN);
  static const struct {
    const char *label;
    size_t off;
  } derived[] = {
      {"sender data", offsetof(dv_mls_epoch_secrets, sender_data)},
      {"encryption", offsetof(dv_mls_epoch_secrets, encryption)},
      {"exporter", offsetof(dv_mls_epoch_secrets, exporter)},
      {"external", offsetof(dv_mls_epoch_secrets, external)},
      {"confirm", offsetof(dv_mls_epoch_secrets, confirmation_key)},
      {"membership", offsetof(dv_mls_epoch_secrets, membership_key)},
      {"resumption", offsetof(dv_mls_epoch_secrets, resumption_psk)},
      {"authentication", offsetof(dv_mls_epoch_secrets, epoch_authenticator)},
      {"init", offsetof(dv_mls_epoch_secrets, init)},
  };
  for (size_t i = 0; ret == 0 && i < sizeof derived / sizeof derived[0]; i++)
    ret = dv_mls_derive_secret(out->epoch, DV_MLS_HASH_LEN, derived[i].label,
                               (uint8_t *)out + derived[i].off);
  sodium_memzero(member, sizeof member);
  if (ret != 0)
    dv_mls_epoch_secrets_wipe(out);
  return ret;
}

int dv_mls_keysched_from_init(const uint8_t init_secret[DV_MLS_HASH_LEN],
                              const uint8_t commit_secret[DV_MLS_HASH_LEN],
                              const uint8_t *psk_secret,
                              const uint8_t *group_context, size_t gc_len,
                              dv_mls_epoch_secrets *out) {
  if (init_secret == NULL || commit_secret == NULL || out == NULL ||
      (group_context == NULL && gc_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t prk[DV_MLS_HASH_LEN];
  uint8_t joiner[DV_MLS_HASH_LEN];
  int ret = dv_mls_hkdf_extract(init_secret, DV_MLS_HASH_LEN, commit_secret,
                                DV_MLS_HASH_LEN, prk);
  if (ret == 0)
    ret = dv_mls_expand_with_label(prk, sizeof prk, "joiner", group_context,
                                   gc_len, joiner, sizeof joiner);
  if (ret == 0)
    ret = dv_mls_keysched_from_joiner(joiner, psk_secret, group_context, gc_len,
                                      out);
  sodium_memzero(prk, sizeof prk);
  sodium_memzero(joiner, sizeof joiner);
  if (ret != 0)
    dv_mls_epoch_secrets_wipe(out);
  return ret;
}

int dv_mls_export(const uint8_t exporter_secret[DV_MLS_HASH_LEN],
                  const char *label, const uint8_t *context, size_t context_len,
                  uint8_t *out, size_t out_len) {
  if (exporter_secret == NULL || label == NULL || out == NULL ||
      (context == NULL && context_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t derived[DV_MLS_HASH_LEN];
  uint8_t ctx_hash[DV_MLS_HASH_LEN];
  int ret =
      dv_mls_derive_secret(exporter_secret, DV_MLS_HASH_LEN, label, derived);
  if (ret == 0)
    ret = dv_mls_hash(context, context_len, ctx_hash);
  if (ret == 0)
    ret = dv_mls_expand_with_label(derived, sizeof derived, "exported",
                                   ctx_hash, sizeof ctx_hash, out, out_len);
  sodium_memzero(derived, sizeof derived);
  return ret;
}

int dv_mls_welcome_key_nonce(const uint8_t welcome_secret[DV_MLS_HASH_LEN],
                             uint8_t key[DV_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[DV_MLS_AEAD_NONCE_LEN]) {
  if (welcome_secret == NULL || key == NULL || nonce == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = dv_mls_expand_with_label(welcome_secret, DV_MLS_HASH_LEN, "key",
                                     NULL, 0, key, DV_MLS_AEAD_KEY_LEN);
  if (ret == 0)
    ret = dv_mls_expand_with_label(welcome_secret, DV_MLS_HASH_LEN, "nonce",
                                   NULL, 0, nonce, DV_MLS_AEAD_NONCE_LEN);
  if (ret != 0) {
    sodium_memzero(key, DV_MLS_AEAD_KEY_LEN);
    sodium_memzero(nonce, DV_MLS_AEAD_NONCE_LEN);
  }
  return ret;
}

int dv_mls_confirmation_tag(const uint8_t confirmation_key[DV_MLS_HASH_LEN],
                            const uint8_t *confirmed_th, size_t th_len,
                            uint8_t tag[DV_MLS_HASH_LEN]) {
  if (confirmation_key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return dv_mls_hmac(confirmation_key, DV_MLS_HASH_LEN, confirmed_th, th_len,
                     tag);
}

int dv_mls_confirmation_tag_verify(
    const uint8_t confirmation_key[DV_MLS_HASH_LEN],
    const uint8_t *confirmed_th, size_t th_len, const uint8_t *tag,
    size_t tag_len) {
  if (confirmation_key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return dv_mls_hmac_verify(confirmation_key, DV_MLS_HASH_LEN, confirmed_th,
                            th_len, tag, tag_len);
}

int dv_mls_membership_tag(const uint8_t membership_key[DV_MLS_HASH_LEN],
                          const dv_mls_iov *tbm, size_t n,
                          uint8_t tag[DV_MLS_HASH_LEN]) {
  if (membership_key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return dv_mls_hmac_v(membership_key, DV_MLS_HASH_LEN, tbm, n, tag);
}

int dv_mls_membership_tag_verify(const uint8_t membership_key[DV_MLS_HASH_LEN],
                                 const dv_mls_iov *tbm, size_t n,
                                 const uint8_t *tag, size_t tag_len) {
  if (membership_key == NULL || (tag == NULL && tag_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t mac[DV_MLS_HASH_LEN];
  int ret = dv_mls_hmac_v(membership_key, DV_MLS_HASH_LEN, tbm, n, mac);
  if (ret != 0)
    return ret;
  if (tag_len != DV_MLS_HASH_LEN || sodium_memcmp(mac, tag, tag_len) != 0)
    ret = DVOICE_ERR_CRYPTO;
  sodium_memzero(mac, sizeof mac);
  return ret;
}

int dv_mls_psk_secret(const dv_mls_psk *psks, size_t n,
                      uint8_t out[DV_MLS_HASH_LEN]) {
  if (out == NULL || (psks == NULL && n != 0) || n > 0xffff)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t extracted[DV_MLS_HASH_LEN], input[DV_MLS_HASH_LEN];
  uint8_t label[2048];
  int ret = 0;
  memset(out, 0, DV_MLS_HASH_LEN);
  for (size_t i = 0; ret == 0 && i < n; i++) {
    const dv_mls_psk *p = &psks[i];
    if ((p->id == NULL && p->id_len != 0) ||
        (p->secret == NULL && p->secret_len != 0) ||
        p->id_len > sizeof label - 4) {
      ret = DVOICE_ERR_INVALID_ARGUMENT;
      break;
    }
    /* PSKLabel{PreSharedKeyID id; uint16 index; uint16 count}. */
    memcpy(label, p->id, p->id_len);
    label[p->id_len] = (uint8_t)(i >> 8);
    label[p->id_len + 1] = (uint8_t)i;
    label[p->id_len + 2] = (uint8_t)(n >> 8);
    label[p->id_len + 3] = (uint8_t)n;
    ret = dv_mls_hkdf_extract(NULL, 0, p->secret, p->secret_len, extracted);
    if (ret == 0)
      ret = dv_mls_expand_with_label(extracted, sizeof extracted, "derived psk",
                                     label, p->id_len + 4, input, sizeof input);
    if (ret == 0)
      ret = dv_mls_hkdf_extract(input, sizeof input, out, DV_MLS_HASH_LEN, out);
  }
  sodium_memzero(extracted, sizeof extracted);
  sodium_memzero(input, sizeof input);
  if (ret != 0)
    sodium_memzero(out, DV_MLS_HASH_LEN);
  return ret;
}
