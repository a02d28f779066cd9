/*
 * MLS cryptographic primitives for cipher suite 2 only:
 * MLS_128_DHKEMP256_AES128GCM_SHA256_P256 (RFC 9420 section 5.1, RFC 9180).
 *
 *   hash      SHA-256 (Nh = 32), MAC = HMAC-SHA256
 *   KDF       HKDF-SHA256 (own Expand: any PRK length, DAVE uses 16 bytes)
 *   AEAD      AES-128-GCM, Nk = 16, Nn = 12, 16-byte tag
 *   KEM       DHKEM(P-256, HKDF-SHA256), kem_id 0x0010, base mode only
 *   signature ECDSA P-256 over SHA-256, DER-encoded signatures
 *
 * Conventions for every function here:
 * - Public keys (HPKE and signature) are uncompressed SEC1 points, exactly
 *   65 bytes (0x04 || X || Y). Every received key is decoded and checked
 *   with mbedtls_ecp_check_pubkey; a bad key gives DVOICE_ERR_CRYPTO.
 * - Private keys are 32-byte big-endian scalars in [1, n-1].
 * - Nothing here allocates through dv_mem: outputs go to caller buffers and
 *   labelled inputs (KDFLabel, SignContent, EncryptContext, RefHashInput)
 *   are streamed into the hash, never built in memory. mbedTLS's bignum
 *   code allocates internally with its own calloc.
 * - Randomness comes only from dv_rand(env, ...): functions that need it
 *   (key generation, ECDSA blinding, ECDH/scalar-multiplication blinding)
 *   take a const dvoice_env * and hand mbedTLS an f_rng that calls dv_rand.
 *   There is no global DRBG. env must be non-NULL with a rand hook.
 * - Intermediate secrets are wiped with sodium_memzero before returning.
 *   MAC and tag comparisons are constant time.
 * - Labels are NUL-terminated ASCII strings WITHOUT the "MLS 1.0 " prefix;
 *   the functions add it where RFC 9420 says so.
 * - Return 0 on success or a negative DVOICE_ERR_* code:
 *   DVOICE_ERR_INVALID_ARGUMENT (NULL pointer with nonzero length, length
 *   out of range), DVOICE_ERR_CRYPTO (bad point, bad signature, AEAD tag
 *   mismatch, mbedTLS failure on peer input), DVOICE_ERR_NOMEM (mbedTLS
 *   bignum allocation failed), DVOICE_ERR_INTERNAL (other mbedTLS failure).
 *   On error every output buffer is zeroed (never left half-written).
 */
#ifndef DV_MLS_CRYPTO_H
#define DV_MLS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

/* Cipher suite 2 constants. */
#define DV_MLS_CIPHER_SUITE 2
#define DV_MLS_HASH_LEN 32       /* Nh: SHA-256 output, HMAC output */
#define DV_MLS_AEAD_KEY_LEN 16   /* Nk */
#define DV_MLS_AEAD_NONCE_LEN 12 /* Nn */
#define DV_MLS_AEAD_TAG_LEN 16
#define DV_MLS_PUB_LEN 65     /* uncompressed P-256 point */
#define DV_MLS_PRIV_LEN 32    /* P-256 scalar */
#define DV_MLS_KEM_ENC_LEN 65 /* HPKE enc = ephemeral public key */
#define DV_MLS_SIG_MAX 72     /* longest DER ECDSA P-256 signature */
/* Largest HKDF-Expand output: 255 * Nh. */
#define DV_MLS_EXPAND_MAX (255 * DV_MLS_HASH_LEN)

/* One piece of a message that is hashed, MACed or signed as the
 * concatenation of several pieces (avoids copying large structures). */
typedef struct dv_mls_iov {
  const uint8_t *p; /* may be NULL when len is 0 */
  size_t len;
} dv_mls_iov;

/* ---- hash, MAC, KDF -------------------------------------------------------
 */

/* out = SHA-256(in). */
int dv_mls_hash(const uint8_t *in, size_t len, uint8_t out[DV_MLS_HASH_LEN]);

/* out = SHA-256(iov[0] || ... || iov[n-1]). */
int dv_mls_hash_v(const dv_mls_iov *iov, size_t n,
                  uint8_t out[DV_MLS_HASH_LEN]);

/* out = HMAC-SHA256(key, msg). key may be any length (0 included). */
int dv_mls_hmac(const uint8_t *key, size_t key_len, const uint8_t *msg,
                size_t msg_len, uint8_t out[DV_MLS_HASH_LEN]);

/* out = HMAC-SHA256(key, iov[0] || ... || iov[n-1]). */
int dv_mls_hmac_v(const uint8_t *key, size_t key_len, const dv_mls_iov *iov,
                  size_t n, uint8_t out[DV_MLS_HASH_LEN]);

/* Constant-time check that tag == HMAC-SHA256(key, msg). 0 if equal,
 * DVOICE_ERR_CRYPTO if not (also when tag_len != 32). */
int dv_mls_hmac_verify(const uint8_t *key, size_t key_len, const uint8_t *msg,
                       size_t msg_len, const uint8_t *tag, size_t tag_len);

/* prk = HKDF-Extract(salt, ikm) = HMAC(salt, ikm). An empty salt means
 * HashLen zero bytes (identical HMAC result). */
int dv_mls_hkdf_extract(const uint8_t *salt, size_t salt_len,
                        const uint8_t *ikm, size_t ikm_len,
                        uint8_t prk[DV_MLS_HASH_LEN]);

/* out = HKDF-Expand(prk, info, out_len). Any prk_len >= 1 is accepted
 * (unlike mbedtls_hkdf_expand). 1 <= out_len <= DV_MLS_EXPAND_MAX, else
 * DVOICE_ERR_INVALID_ARGUMENT. */
int dv_mls_hkdf_expand(const uint8_t *prk, size_t prk_len, const uint8_t *info,
                       size_t info_len, uint8_t *out, size_t out_len);

/* HKDF-Expand with info = iov[0] || ... || iov[n-1]. */
int dv_mls_hkdf_expand_v(const uint8_t *prk, size_t prk_len,
                         const dv_mls_iov *info, size_t n, uint8_t *out,
                         size_t out_len);

/* RFC 9420 section 8:
 * out = ExpandWithLabel(secret, label, context, out_len)
 *     = HKDF-Expand(secret, KDFLabel, out_len) with
 *   KDFLabel { uint16 length = out_len; opaque label<V> = "MLS 1.0 " + label;
 *              opaque context<V> = context; }
 * out_len <= 65535 and <= DV_MLS_EXPAND_MAX. */
int dv_mls_expand_with_label(const uint8_t *secret, size_t secret_len,
                             const char *label, const uint8_t *context,
                             size_t context_len, uint8_t *out, size_t out_len);

/* out = DeriveSecret(secret, label) = ExpandWithLabel(secret, label, "", 32).
 */
int dv_mls_derive_secret(const uint8_t *secret, size_t secret_len,
                         const char *label, uint8_t out[DV_MLS_HASH_LEN]);

/* out = DeriveTreeSecret(secret, label, generation, out_len)
 *     = ExpandWithLabel(secret, label, uint32-BE(generation), out_len).
 * Used by the hash ratchet (DAVE media keys start from a 16-byte secret). */
int dv_mls_derive_tree_secret(const uint8_t *secret, size_t secret_len,
                              const char *label, uint32_t generation,
                              uint8_t *out, size_t out_len);

/* ---- references ----------------------------------------------------------
 */

/* out = RefHash(label, value) = SHA-256(RefHashInput) with
 *   RefHashInput { opaque label<V> = label; opaque value<V> = value; }.
 * NOTE: label is used AS GIVEN (RFC 9420 section 5.2 spells the full label,
 * e.g. "MLS 1.0 KeyPackage Reference"); no prefix is added here. */
int dv_mls_ref_hash(const char *label, const uint8_t *value, size_t value_len,
                    uint8_t out[DV_MLS_HASH_LEN]);

/* RefHash with value = iov[0] || ... || iov[n-1] (n <= 16). */
int dv_mls_ref_hash_v(const char *label, const dv_mls_iov *value, size_t n,
                      uint8_t out[DV_MLS_HASH_LEN]);

/* Encodes |v| as a minimal MLS varint into |b| and returns its size (1, 2
 * or 4), or 0 if v > 2^30 - 1. For streaming length prefixes into hashes
 * (dv_wr is the writer for everything else). */
size_t dv_mls_varint_put(uint8_t b[4], size_t v);

/* KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage bytes).
 */
int dv_mls_make_key_package_ref(const uint8_t *kp, size_t kp_len,
                                uint8_t out[DV_MLS_HASH_LEN]);

/* ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent
 * bytes), i.e. wire_format || FramedContent || FramedContentAuthData. */
int dv_mls_make_proposal_ref(const uint8_t *auth_content, size_t len,
                             uint8_t out[DV_MLS_HASH_LEN]);

/* ---- signatures (ECDSA P-256 / SHA-256, DER) -----------------------------
 */

/* A signature key pair. */
typedef struct dv_mls_sig_key {
  uint8_t priv[DV_MLS_PRIV_LEN];
  uint8_t pub[DV_MLS_PUB_LEN];
} dv_mls_sig_key;

/* Generates a fresh signature key pair from dv_rand(env). */
int dv_mls_sig_keygen(const dvoice_env *env, dv_mls_sig_key *key);

/* Fills key->pub from key->priv (validates the scalar: DVOICE_ERR_CRYPTO
 * if it is 0 or >= n). */
int dv_mls_sig_key_from_priv(const dvoice_env *env, dv_mls_sig_key *key);

/* Wipes a key pair (sodium_memzero). NULL is ignored. */
void dv_mls_sig_key_wipe(dv_mls_sig_key *key);

/* Checks a received signature public key: 65 bytes, uncompressed, on the
 * curve. 0 or DVOICE_ERR_CRYPTO. */
int dv_mls_check_pub(const uint8_t *pub, size_t pub_len);

/* sig = SignWithLabel(priv, label, content) (RFC 9420 section 5.1.2):
 * ECDSA over SHA-256(SignContent) with
 *   SignContent { opaque label<V> = "MLS 1.0 " + label;
 *                 opaque content<V> = content; }.
 * Deterministic (RFC 6979) with blinding randomness from dv_rand(env).
 * sig must hold DV_MLS_SIG_MAX bytes; *sig_len receives the DER length. */
int dv_mls_sign_with_label(const dvoice_env *env,
                           const uint8_t priv[DV_MLS_PRIV_LEN],
                           const char *label, const uint8_t *content,
                           size_t content_len, uint8_t sig[DV_MLS_SIG_MAX],
                           size_t *sig_len);

/* SignWithLabel with content = iov[0] || ... || iov[n-1]. */
int dv_mls_sign_with_label_v(const dvoice_env *env,
                             const uint8_t priv[DV_MLS_PRIV_LEN],
                             const char *label, const dv_mls_iov *content,
                             size_t n, uint8_t sig[DV_MLS_SIG_MAX],
                             size_t *sig_len);

/* VerifyWithLabel(pub, label, content, sig). 0 if the signature is valid;
 * DVOICE_ERR_CRYPTO for a bad key, malformed DER (including trailing
 * bytes) or a wrong signature. */
int dv_mls_verify_with_label(const uint8_t *pub, size_t pub_len,
                             const char *label, const uint8_t *content,
                             size_t content_len, const uint8_t *sig,
                             size_t sig_len);

/* VerifyWithLabel with content = iov[0] || ... || iov[n-1]. */
int dv_mls_verify_with_label_v(const uint8_t *pub, size_t pub_len,
                               const char *label, const dv_mls_iov *content,
                               size_t n, const uint8_t *sig, size_t sig_len);

/* ---- AEAD (AES-128-GCM, 16-byte tag) -------------------------------------
 */

/* ct = AES-128-GCM-Seal(key, nonce, aad, pt): ct holds pt_len + 16 bytes
 * (ciphertext then tag). ct may equal pt (in place). */
int dv_mls_aead_seal(const uint8_t key[DV_MLS_AEAD_KEY_LEN],
                     const uint8_t nonce[DV_MLS_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *ct);

/* pt = AES-128-GCM-Open(key, nonce, aad, ct): pt receives ct_len - 16
 * bytes. pt may equal ct. DVOICE_ERR_CRYPTO if ct_len < 16 or the tag does
 * not match (pt is zeroed then). */
int dv_mls_aead_open(const uint8_t key[DV_MLS_AEAD_KEY_LEN],
                     const uint8_t nonce[DV_MLS_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *pt);

/* ---- HPKE base mode: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM -
 */

/* An HPKE (KEM) key pair. */
typedef struct dv_mls_hpke_key {
  uint8_t priv[DV_MLS_PRIV_LEN];
  uint8_t pub[DV_MLS_PUB_LEN];
} dv_mls_hpke_key;

/* Wipes a key pair (sodium_memzero). NULL is ignored. */
void dv_mls_hpke_key_wipe(dv_mls_hpke_key *key);

/* Generates a fresh HPKE key pair from dv_rand(env). */
int dv_mls_hpke_keygen(const dvoice_env *env, dv_mls_hpke_key *key);

/* RFC 9180 section 7.1.3 DeriveKeyPair(ikm) for P-256: rejection sampling
 * over LabeledExpand(dkp_prk, "candidate", counter, 32) with bitmask 0xff.
 * MLS uses it for tree node keys (ikm = DeriveSecret(path_secret, "node"))
 * and external keys. env supplies blinding randomness for pub = sk * G.
 * DVOICE_ERR_CRYPTO in the (2^-32-ish impossible) case of 256 rejections. */
int dv_mls_hpke_derive_keypair(const dvoice_env *env, const uint8_t *ikm,
                               size_t ikm_len, dv_mls_hpke_key *key);

/* Fills key->pub from key->priv (validates the scalar). */
int dv_mls_hpke_key_from_priv(const dvoice_env *env, dv_mls_hpke_key *key);

/* A single-direction HPKE context after SetupBaseS / SetupBaseR. seq counts
 * messages; MLS only ever uses seq 0 (single-shot). */
typedef struct dv_mls_hpke_ctx {
  uint8_t key[DV_MLS_AEAD_KEY_LEN];
  uint8_t base_nonce[DV_MLS_AEAD_NONCE_LEN];
  uint8_t exporter_secret[DV_MLS_HASH_LEN];
  uint64_t seq;
} dv_mls_hpke_ctx;

/* Wipes a context. NULL is ignored. */
void dv_mls_hpke_ctx_wipe(dv_mls_hpke_ctx *ctx);

/* SetupBaseS(pkR, info): Encap with a fresh ephemeral key from dv_rand(env).
 * enc receives the 65-byte ephemeral public key. pkR is checked. */
int dv_mls_hpke_setup_base_s(const dvoice_env *env, const uint8_t *pk_r,
                             size_t pk_r_len, const uint8_t *info,
                             size_t info_len, uint8_t enc[DV_MLS_KEM_ENC_LEN],
                             dv_mls_hpke_ctx *ctx);

/* SetupBaseS with a given ephemeral key pair instead of a fresh one (tests
 * and RFC 9180 vectors; never reuse an ephemeral key in production). */
int dv_mls_hpke_setup_base_s_eph(const dvoice_env *env,
                                 const dv_mls_hpke_key *eph,
                                 const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len,
                                 uint8_t enc[DV_MLS_KEM_ENC_LEN],
                                 dv_mls_hpke_ctx *ctx);

/* SetupBaseR(enc, skR, info): Decap with the recipient key pair (its pub is
 * needed for the KEM context). enc must be a valid 65-byte point. */
int dv_mls_hpke_setup_base_r(const dvoice_env *env,
                             const dv_mls_hpke_key *key_r, const uint8_t *enc,
                             size_t enc_len, const uint8_t *info,
                             size_t info_len, dv_mls_hpke_ctx *ctx);

/* ctx.Seal(aad, pt) at the current seq, then seq++. ct holds pt_len + 16. */
int dv_mls_hpke_ctx_seal(dv_mls_hpke_ctx *ctx, const uint8_t *aad,
                         size_t aad_len, const uint8_t *pt, size_t pt_len,
                         uint8_t *ct);

/* ctx.Open(aad, ct) at the current seq, then seq++ (only on success).
 * pt receives ct_len - 16 bytes. DVOICE_ERR_CRYPTO on a bad tag. */
int dv_mls_hpke_ctx_open(dv_mls_hpke_ctx *ctx, const uint8_t *aad,
                         size_t aad_len, const uint8_t *ct, size_t ct_len,
                         uint8_t *pt);

/* Single-shot SealBase(pkR, info, aad, pt): enc (65 bytes) and ct
 * (pt_len + 16 bytes). */
int dv_mls_hpke_seal_base(const dvoice_env *env, const uint8_t *pk_r,
                          size_t pk_r_len, const uint8_t *info, size_t info_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                          size_t pt_len, uint8_t enc[DV_MLS_KEM_ENC_LEN],
                          uint8_t *ct);

/* Single-shot OpenBase(enc, skR, info, aad, ct): pt gets ct_len - 16 bytes.
 */
int dv_mls_hpke_open_base(const dvoice_env *env, const dv_mls_hpke_key *key_r,
                          const uint8_t *enc, size_t enc_len,
                          const uint8_t *info, size_t info_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                          size_t ct_len, uint8_t *pt);

/* RFC 9420 section 5.1.3 EncryptWithLabel(pk, label, context, pt):
 * SealBase(pk, info = EncryptContext{ opaque label<V> = "MLS 1.0 " + label;
 * opaque context<V> = context; }, aad = "", pt). Produces the two fields of
 * an HPKECiphertext: kem_output (65 bytes) and ciphertext (pt_len + 16). */
int dv_mls_encrypt_with_label(const dvoice_env *env, const uint8_t *pk,
                              size_t pk_len, const char *label,
                              const uint8_t *context, size_t context_len,
                              const uint8_t *pt, size_t pt_len,
                              uint8_t kem_output[DV_MLS_KEM_ENC_LEN],
                              uint8_t *ct);

/* EncryptWithLabel with a given ephemeral key (tests only). */
int dv_mls_encrypt_with_label_eph(const dvoice_env *env,
                                  const dv_mls_hpke_key *eph, const uint8_t *pk,
                                  size_t pk_len, const char *label,
                                  const uint8_t *context, size_t context_len,
                                  const uint8_t *pt, size_t pt_len,
                                  uint8_t kem_output[DV_MLS_KEM_ENC_LEN],
                                  uint8_t *ct);

/* DecryptWithLabel(key, label, context, kem_output, ciphertext): pt gets
 * ct_len - 16 bytes. DVOICE_ERR_CRYPTO for a bad kem_output point, a short
 * ciphertext or a tag mismatch. */
int dv_mls_decrypt_with_label(const dvoice_env *env, const dv_mls_hpke_key *key,
                              const char *label, const uint8_t *context,
                              size_t context_len, const uint8_t *kem_output,
                              size_t kem_output_len, const uint8_t *ct,
                              size_t ct_len, uint8_t *pt);

/* ---- raw ECDH ------------------------------------------------------------
 */

/* out = x-coordinate of priv * pub, exactly 32 bytes (left-padded).
 * pub is checked; DVOICE_ERR_CRYPTO for an invalid point or an all-zero
 * result (point at infinity). */
int dv_mls_ecdh(const dvoice_env *env, const uint8_t priv[DV_MLS_PRIV_LEN],
                const uint8_t *pub, size_t pub_len,
                uint8_t out[DV_MLS_PRIV_LEN]);

#endif
