/*
 * The MLS key schedule (RFC 9420 section 8) for cipher suite 2, plus the
 * small MAC helpers built on it: the exporter, the Welcome key and nonce,
 * the confirmation tag and the membership tag.
 *
 *   init_secret[n-1]
 *         |
 *   commit_secret -> HKDF-Extract = prk
 *         |
 *   ExpandWithLabel(prk, "joiner", GroupContext[n], 32) = joiner_secret
 *         |
 *   psk_secret (0^32 here) -> HKDF-Extract = member ("intermediate") secret
 *         +--> DeriveSecret(., "welcome") = welcome_secret
 *   ExpandWithLabel(member, "epoch", GroupContext[n], 32) = epoch_secret
 *         +--> DeriveSecret(epoch_secret, <label>) = the secrets below
 *
 * All functions return 0 or a negative DVOICE_ERR_* code:
 * DVOICE_ERR_INVALID_ARGUMENT (NULL pointer with a nonzero length, bad
 * length), DVOICE_ERR_CRYPTO (tag mismatch, for the verify helpers only),
 * DVOICE_ERR_INTERNAL (hash failure). On error outputs are wiped. Nothing
 * here allocates.
 */
#ifndef DV_MLS_KEYSCHED_H
#define DV_MLS_KEYSCHED_H

#include <stddef.h>
#include <stdint.h>

#include "mls/mls_crypto.h"

/* Every secret of one epoch. Wipe with dv_mls_epoch_secrets_wipe. */
typedef struct dv_mls_epoch_secrets {
  uint8_t joiner[DV_MLS_HASH_LEN];
  uint8_t welcome[DV_MLS_HASH_LEN];
  uint8_t epoch[DV_MLS_HASH_LEN];
  uint8_t sender_data[DV_MLS_HASH_LEN];         /* "sender data" */
  uint8_t encryption[DV_MLS_HASH_LEN];          /* "encryption" */
  uint8_t exporter[DV_MLS_HASH_LEN];            /* "exporter" */
  uint8_t external[DV_MLS_HASH_LEN];            /* "external" */
  uint8_t confirmation_key[DV_MLS_HASH_LEN];    /* "confirm" */
  uint8_t membership_key[DV_MLS_HASH_LEN];      /* "membership" */
  uint8_t resumption_psk[DV_MLS_HASH_LEN];      /* "resumption" */
  uint8_t epoch_authenticator[DV_MLS_HASH_LEN]; /* "authentication" */
  uint8_t init[DV_MLS_HASH_LEN]; /* "init": the next epoch's init_secret */
} dv_mls_epoch_secrets;

/* Wipes every secret (sodium_memzero). NULL is ignored. */
void dv_mls_epoch_secrets_wipe(dv_mls_epoch_secrets *s);

/*
 * Runs the key schedule from the previous epoch's init secret.
 * init_secret: init_secret[n-1] (32 bytes; for a new group, 32 random
 *   bytes). commit_secret: 32 bytes (0^32 for a commit without a path, and
 *   for a new group). psk_secret: 32 bytes, or NULL for 0^32 (DAVE never
 *   uses PSKs). group_context: the serialized GroupContext of the NEW epoch
 *   (borrowed). Fills every field of |out|, joiner included.
 */
int dv_mls_keysched_from_init(const uint8_t init_secret[DV_MLS_HASH_LEN],
                              const uint8_t commit_secret[DV_MLS_HASH_LEN],
                              const uint8_t *psk_secret,
                              const uint8_t *group_context, size_t gc_len,
                              dv_mls_epoch_secrets *out);

/*
 * Runs the key schedule from a joiner secret (Welcome processing): as above
 * from the joiner_secret step on. out->joiner is set to |joiner_secret|.
 */
int dv_mls_keysched_from_joiner(const uint8_t joiner_secret[DV_MLS_HASH_LEN],
                                const uint8_t *psk_secret,
                                const uint8_t *group_context, size_t gc_len,
                                dv_mls_epoch_secrets *out);

/*
 * MLS-Exporter(label, context, out_len) (RFC 9420 section 8.5):
 *   ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported",
 *                   SHA-256(context), out_len).
 * label is a NUL-terminated string (the "MLS 1.0 " prefix is added).
 * out_len 1..DV_MLS_EXPAND_MAX. DAVE: label "Discord Secure Frames v0",
 * context = little-endian u64 user id, out_len 16.
 */
int dv_mls_export(const uint8_t exporter_secret[DV_MLS_HASH_LEN],
                  const char *label, const uint8_t *context, size_t context_len,
                  uint8_t *out, size_t out_len);

/* One pre-shared key for dv_mls_psk_secret: the encoded PreSharedKeyID
 * (RFC 9420 section 8.4) and the PSK value. DAVE never uses PSKs; this
 * serves the interop vectors. */
typedef struct dv_mls_psk {
  const uint8_t *id; /* encoded PreSharedKeyID */
  size_t id_len;
  const uint8_t *secret;
  size_t secret_len;
} dv_mls_psk;

/*
 * psk_secret over |n| PSKs (RFC 9420 section 8.4): for i = 0..n-1,
 *   psk_extracted = HKDF-Extract(0, psk[i]),
 *   psk_input = ExpandWithLabel(psk_extracted, "derived psk",
 *               PSKLabel{id[i], uint16 i, uint16 n}, 32),
 *   psk_secret = HKDF-Extract(psk_input, psk_secret)   (starting at 0^32).
 * n == 0 gives 0^32. n <= 65535.
 */
int dv_mls_psk_secret(const dv_mls_psk *psks, size_t n,
                      uint8_t out[DV_MLS_HASH_LEN]);

/* Welcome AEAD key and nonce (RFC 9420 section 12.4.3.1):
 * key = ExpandWithLabel(welcome_secret, "key", "", 16),
 * nonce = ExpandWithLabel(welcome_secret, "nonce", "", 12). */
int dv_mls_welcome_key_nonce(const uint8_t welcome_secret[DV_MLS_HASH_LEN],
                             uint8_t key[DV_MLS_AEAD_KEY_LEN],
                             uint8_t nonce[DV_MLS_AEAD_NONCE_LEN]);

/* confirmation_tag = HMAC(confirmation_key, confirmed_transcript_hash). */
int dv_mls_confirmation_tag(const uint8_t confirmation_key[DV_MLS_HASH_LEN],
                            const uint8_t *confirmed_th, size_t th_len,
                            uint8_t tag[DV_MLS_HASH_LEN]);

/* Constant-time check of a received confirmation tag (tag_len must be 32).
 * 0 or DVOICE_ERR_CRYPTO. */
int dv_mls_confirmation_tag_verify(
    const uint8_t confirmation_key[DV_MLS_HASH_LEN],
    const uint8_t *confirmed_th, size_t th_len, const uint8_t *tag,
    size_t tag_len);

/* membership_tag = HMAC(membership_key, AuthenticatedContentTBM), where the
 * TBM (FramedContentTBS || FramedContentAuthData) is given as pieces. */
int dv_mls_membership_tag(const uint8_t membership_key[DV_MLS_HASH_LEN],
                          const dv_mls_iov *tbm, size_t n,
                          uint8_t tag[DV_MLS_HASH_LEN]);

/* Constant-time check of a received membership tag (tag_len must be 32).
 * 0 or DVOICE_ERR_CRYPTO. */
int dv_mls_membership_tag_verify(const uint8_t membership_key[DV_MLS_HASH_LEN],
                                 const dv_mls_iov *tbm, size_t n,
                                 const uint8_t *tag, size_t tag_len);

#endif
