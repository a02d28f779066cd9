/*
 * MLS cipher suite 2 primitives on mbedTLS 2.28 and libsodium.
 *
 * HMAC is computed directly on mbedtls_sha256 contexts (RFC 2104) so that
 * a keyed state can be cloned per HKDF block and inputs can be streamed
 * without allocating; mbedtls_md_setup would allocate on every call.
 */
#include "mls/mls_crypto.h"
#include "p256/dv_p256.h"

#include <string.h>

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/sha256.h>
#include <sodium.h>

#include "util/dv_env.h"

#define LABEL_PREFIX "MLS 1.0 "
#define LABEL_PREFIX_LEN 8
#define HMAC_BLOCK 64
/* Longest label accepted (labels are short compile-time strings). */
#define LABEL_MAX 255

/* ---- small helpers -------------------------------------------------------
 */

size_t dv_mls_varint_put(uint8_t b[4], size_t v) {
  if (v < 0x40) {
    b[0] = (uint8_t)v;
    return 1;
  }
  if (v < 0x4000) {
    b[0] = (uint8_t)(0x40 | (v >> 8));
    b[1] = (uint8_t)v;
    return 2;
  }
  if (v <= 0x3fffffff) {
    b[0] = (uint8_t)(0x80 | (v >> 24));
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
    return 4;
  }
  return 0;
}

static size_t iov_total(const dv_mls_iov *iov, size_t n) {
  size_t t = 0;
  for (size_t i = 0; i < n; i++)
    t += iov[i].len;
  return t;
}

static int iov_valid(const dv_mls_iov *iov, size_t n) {
  if (n > 0 && iov == NULL)
    return 0;
  for (size_t i = 0; i < n; i++) {
    if (iov[i].p == NULL && iov[i].len != 0)
      return 0;
  }
  return 1;
}

/* Maps an mbedTLS error: allocation failures to NOMEM, anything else to
 * |other| (CRYPTO for checks on peer data, INTERNAL for our own keys). */
static int map_mbed(int ret, int other) {
  if (ret == 0)
    return 0;
  if (ret == MBEDTLS_ERR_MPI_ALLOC_FAILED ||
      ret == MBEDTLS_ERR_ECP_ALLOC_FAILED)
    return DVOICE_ERR_NOMEM;
  return other;
}

/* The only randomness source handed to mbedTLS: the application's hook. */
static int env_rng(void *p_rng, unsigned char *out, size_t len) {
  dv_rand((const dvoice_env *)p_rng, out, len);
  return 0;
}

/* ---- SHA-256 and HMAC ----------------------------------------------------
 */

int dv_mls_hash(const uint8_t *in, size_t len, uint8_t out[DV_MLS_HASH_LEN]) {
  dv_mls_iov iov = {in, len};
  return dv_mls_hash_v(&iov, 1, out);
}

int dv_mls_hash_v(const dv_mls_iov *iov, size_t n,
                  uint8_t out[DV_MLS_HASH_LEN]) {
  if (out == NULL || !iov_valid(iov, n))
    return DVOICE_ERR_INVALID_ARGUMENT;
  mbedtls_sha256_context c;
  mbedtls_sha256_init(&c);
  int ret = mbedtls_sha256_starts_ret(&c, 0);
  for (size_t i = 0; ret == 0 && i < n; i++) {
    if (iov[i].len > 0)
      ret = mbedtls_sha256_update_ret(&c, iov[i].p, iov[i].len);
  }
  if (ret == 0)
    ret = mbedtls_sha256_finish_ret(&c, out);
  mbedtls_sha256_free(&c);
  if (ret != 0) {
    sodium_memzero(out, DV_MLS_HASH_LEN);
    return DVOICE_ERR_INTERNAL;
  }
  return 0;
}

/* A keyed HMAC-SHA256: the inner and outer hash states after absorbing the
 * padded key, cloned for every message under the same key. */
typedef struct hmac_key {
  mbedtls_sha256_context in;
  mbedtls_sha256_context out;
} hmac_key;

static void hmac_key_free(hmac_key *k) {
  mbedtls_sha256_free(&k->in); /* mbedTLS zeroizes the state */
  mbedtls_sha256_free(&k->out);
}

static int hmac_key_init(hmac_key *k, const uint8_t *key, size_t key_len) {
  uint8_t block[HMAC_BLOCK];
  uint8_t pad[HMAC_BLOCK];
  int ret = 0;
  mbedtls_sha256_init(&k->in);
  mbedtls_sha256_init(&k->out);
  memset(block, 0, sizeof block);
  if (key_len > HMAC_BLOCK) {
    ret = mbedtls_sha256_ret(key, key_len, block, 0);
  } else if (key_len > 0) {
    memcpy(block, key, key_len);
  }
  for (size_t i = 0; i < HMAC_BLOCK; i++)
    pad[i] = block[i] ^ 0x36;
  if (ret == 0)
    ret = mbedtls_sha256_starts_ret(&k->in, 0);
  if (ret == 0)
    ret = mbedtls_sha256_update_ret(&k->in, pad, HMAC_BLOCK);
  for (size_t i = 0; i < HMAC_BLOCK; i++)
    pad[i] = block[i] ^ 0x5c;
  if (ret == 0)
    ret = mbedtls_sha256_starts_ret(&k->out, 0);
  if (ret == 0)
    ret = mbedtls_sha256_update_ret(&k->out, pad, HMAC_BLOCK);
  sodium_memzero(block, sizeof block);
  sodium_memzero(pad, sizeof pad);
  if (ret != 0) {
    hmac_key_free(k);
    return DVOICE_ERR_INTERNAL;
  }
  return 0;
}

/* Starts a message: |c| becomes a copy of the keyed inner state. */
static void hmac_start(const hmac_key *k, mbedtls_sha256_context *c) {
  mbedtls_sha256_init(c);
  mbedtls_sha256_clone(c, &k->in);
}

static int hmac_update(mbedtls_sha256_context *c, const void *p, size_t len) {
  if (len == 0)
    return 0;
  return mbedtls_sha256_update_ret(c, p, len) == 0 ? 0 : DVOICE_ERR_INTERNAL;
}

/* Finishes the message started in |c| (which is freed) into |out|. */
static int hmac_finish(const hmac_key *k, mbedtls_sha256_context *c,
                       uint8_t out[DV_MLS_HASH_LEN]) {
  uint8_t inner[DV_MLS_HASH_LEN];
  mbedtls_sha256_context o;
  int ret = mbedtls_sha256_finish_ret(c, inner);
  mbedtls_sha256_free(c);
  mbedtls_sha256_init(&o);
  mbedtls_sha256_clone(&o, &k->out);
  if (ret == 0)
    ret = mbedtls_sha256_update_ret(&o, inner, sizeof inner);
  if (ret == 0)
    ret = mbedtls_sha256_finish_ret(&o, out);
  mbedtls_sha256_free(&o);
  sodium_memzero(inner, sizeof inner);
  return ret == 0 ? 0 : DVOICE_ERR_INTERNAL;
}

int dv_mls_hmac_v(const uint8_t *key, size_t key_len, const dv_mls_iov *iov,
                  size_t n, uint8_t out[DV_MLS_HASH_LEN]) {
  if (out == NULL || (key == NULL && key_len != 0) || !iov_valid(iov, n))
    return DVOICE_ERR_INVALID_ARGUMENT;
  hmac_key k;
  int ret = hmac_key_init(&k, key, key_len);
  if (ret != 0)
    goto fail;
  mbedtls_sha256_context c;
  hmac_start(&k, &c);
  for (size_t i = 0; ret == 0 && i < n; i++)
    ret = hmac_update(&c, iov[i].p, iov[i].len);
  if (ret == 0) {
    ret = hmac_finish(&k, &c, out);
  } else {
    mbedtls_sha256_free(&c);
  }
  hmac_key_free(&k);
  if (ret == 0)
    return 0;
fail:
  sodium_memzero(out, DV_MLS_HASH_LEN);
  return ret;
}

int dv_mls_hmac(const uint8_t *key, size_t key_len, const uint8_t *msg,
                size_t msg_len, uint8_t out[DV_MLS_HASH_LEN]) {
  dv_mls_iov iov = {msg, msg_len};
  return dv_mls_hmac_v(key, key_len, &iov, 1, out);
}

int dv_mls_hmac_verify(const uint8_t *key, size_t key_len, const uint8_t *msg,
                       size_t msg_len, const uint8_t *tag, size_t tag_len) {
  uint8_t mac[DV_MLS_HASH_LEN];
  if (tag == NULL && tag_len != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = dv_mls_hmac(key, key_len, msg, msg_len, mac);
  if (ret != 0)
    return ret;
  if (tag_len != DV_MLS_HASH_LEN || sodium_memcmp(mac, tag, tag_len) != 0)
    ret = DVOICE_ERR_CRYPTO;
  sodium_memzero(mac, sizeof mac);
  return ret;
}

/* ---- HKDF ----------------------------------------------------------------
 */

int dv_mls_hkdf_extract(const uint8_t *salt, size_t salt_len,
                        const uint8_t *ikm, size_t ikm_len,
                        uint8_t prk[DV_MLS_HASH_LEN]) {
  /* HMAC pads a short key with zeros, so an empty salt already equals the
   * RFC 5869 default of HashLen zero bytes. */
  return dv_mls_hmac(salt, salt_len, ikm, ikm_len, prk);
}

int dv_mls_hkdf_expand_v(const uint8_t *prk, size_t prk_len,
                         const dv_mls_iov *info, size_t n, uint8_t *out,
                         size_t out_len) {
  if (prk == NULL || prk_len == 0 || out == NULL || out_len == 0 ||
      out_len > DV_MLS_EXPAND_MAX || !iov_valid(info, n))
    return DVOICE_ERR_INVALID_ARGUMENT;
  hmac_key k;
  uint8_t t[DV_MLS_HASH_LEN];
  size_t done = 0;
  int ret = hmac_key_init(&k, prk, prk_len);
  if (ret != 0)
    goto fail;
  for (uint8_t ctr = 1; ret == 0 && done < out_len; ctr++) {
    mbedtls_sha256_context c;
    hmac_start(&k, &c);
    if (ctr > 1)
      ret = hmac_update(&c, t, sizeof t);
    for (size_t i = 0; ret == 0 && i < n; i++)
      ret = hmac_update(&c, info[i].p, info[i].len);
    if (ret == 0)
      ret = hmac_update(&c, &ctr, 1);
    if (ret != 0) {
      mbedtls_sha256_free(&c);
      break;
    }
    ret = hmac_finish(&k, &c, t);
    if (ret != 0)
      break;
    size_t take = out_len - done < sizeof t ? out_len - done : sizeof t;
    memcpy(out + done, t, take);
    done += take;
  }
  hmac_key_free(&k);
  sodium_memzero(t, sizeof t);
  if (ret == 0)
    return 0;
fail:
  sodium_memzero(out, out_len);
  return ret;
}

int dv_mls_hkdf_expand(const uint8_t *prk, size_t prk_len, const uint8_t *info,
                       size_t info_len, uint8_t *out, size_t out_len) {
  dv_mls_iov iov = {info, info_len};
  return dv_mls_hkdf_expand_v(prk, prk_len, &iov, 1, out, out_len);
}

int dv_mls_expand_with_label(const uint8_t *secret, size_t secret_len,
                             const char *label, const uint8_t *context,
                             size_t context_len, uint8_t *out, size_t out_len) {
  if (label == NULL || (context == NULL && context_len != 0) ||
      out_len > 0xffff)
    return DVOICE_ERR_INVALID_ARGUMENT;
  size_t label_len = strlen(label);
  if (label_len > LABEL_MAX)
    return DVOICE_ERR_INVALID_ARGUMENT;
  /* KDFLabel { uint16 length; opaque label<V>; opaque context<V>; } */
  uint8_t len16[2] = {(uint8_t)(out_len >> 8), (uint8_t)out_len};
  uint8_t lv[4], cv[4];
  size_t lvn = dv_mls_varint_put(lv, LABEL_PREFIX_LEN + label_len);
  size_t cvn = dv_mls_varint_put(cv, context_len);
  if (cvn == 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_iov info[6] = {
      {len16, 2},
      {lv, lvn},
      {(const uint8_t *)LABEL_PREFIX, LABEL_PREFIX_LEN},
      {(const uint8_t *)label, label_len},
      {cv, cvn},
      {context, context_len},
  };
  return dv_mls_hkdf_expand_v(secret, secret_len, info, 6, out, out_len);
}

int dv_mls_derive_secret(const uint8_t *secret, size_t secret_len,
                         const char *label, uint8_t out[DV_MLS_HASH_LEN]) {
  return dv_mls_expand_with_label(secret, secret_len, label, NULL, 0, out,
                                  DV_MLS_HASH_LEN);
}

int dv_mls_derive_tree_secret(const uint8_t *secret, size_t secret_len,
                              const char *label, uint32_t generation,
                              uint8_t *out, size_t out_len) {
  uint8_t g[4] = {(uint8_t)(generation >> 24), (uint8_t)(generation >> 16),
                  (uint8_t)(generation >> 8), (uint8_t)generation};
  return dv_mls_expand_with_label(secret, secret_len, label, g, 4, out,
                                  out_len);
}

/* ---- references ----------------------------------------------------------
 */

int dv_mls_ref_hash_v(const char *label, const dv_mls_iov *value, size_t n,
                      uint8_t out[DV_MLS_HASH_LEN]) {
  if (label == NULL || n > 16 || !iov_valid(value, n))
    return DVOICE_ERR_INVALID_ARGUMENT;
  size_t label_len = strlen(label);
  uint8_t lv[4], vv[4];
  size_t lvn = dv_mls_varint_put(lv, label_len);
  size_t vvn = dv_mls_varint_put(vv, iov_total(value, n));
  if (lvn == 0 || vvn == 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_iov iov[3 + 16] = {
      {lv, lvn}, {(const uint8_t *)label, label_len}, {vv, vvn}};
  for (size_t i = 0; i < n; i++)
    iov[3 + i] = value[i];
  return dv_mls_hash_v(iov, 3 + n, out);
}

int dv_mls_ref_hash(const char *label, const uint8_t *value, size_t value_len,
                    uint8_t out[DV_MLS_HASH_LEN]) {
  dv_mls_iov iov = {value, value_len};
  return dv_mls_ref_hash_v(label, &iov, 1, out);
}

int dv_mls_make_key_package_ref(const uint8_t *kp, size_t kp_len,
                                uint8_t out[DV_MLS_HASH_LEN]) {
  return dv_mls_ref_hash("MLS 1.0 KeyPackage Reference", kp, kp_len, out);
}

int dv_mls_make_proposal_ref(const uint8_t *auth_content, size_t len,
                             uint8_t out[DV_MLS_HASH_LEN]) {
  return dv_mls_ref_hash("MLS 1.0 Proposal Reference", auth_content, len, out);
}

/* ---- P-256 helpers -------------------------------------------------------
 */

/* Loads a received uncompressed point into |pt| and checks it is on the
 * curve and not the point at infinity. */
static int load_pub(const mbedtls_ecp_group *grp, mbedtls_ecp_point *pt,
                    const uint8_t *pub, size_t pub_len) {
  if (pub == NULL || pub_len != DV_MLS_PUB_LEN || pub[0] != 0x04)
    return DVOICE_ERR_CRYPTO;
  int ret = mbedtls_ecp_point_read_binary(grp, pt, pub, pub_len);
  if (ret == 0)
    ret = mbedtls_ecp_check_pubkey(grp, pt);
  return map_mbed(ret, DVOICE_ERR_CRYPTO);
}

/* Loads our own private scalar and checks 0 < d < n. */
static int load_priv(const mbedtls_ecp_group *grp, mbedtls_mpi *d,
                     const uint8_t priv[DV_MLS_PRIV_LEN]) {
  int ret = mbedtls_mpi_read_binary(d, priv, DV_MLS_PRIV_LEN);
  if (ret == 0)
    ret = mbedtls_ecp_check_privkey(grp, d);
  return map_mbed(ret, DVOICE_ERR_CRYPTO);
}

/* pub = priv * G (lib/p256, constant time). */
static int pub_from_priv(const dvoice_env *env,
                         const uint8_t priv[DV_MLS_PRIV_LEN],
                         uint8_t pub[DV_MLS_PUB_LEN]) {
  if (dv_env_check(env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = dv_p256_mul(pub, priv, NULL, 0);
  if (ret != 0)
    sodium_memzero(pub, DV_MLS_PUB_LEN);
  return ret;
}

/* Draws a uniformly random scalar in [1, n-1] by rejection sampling over
 * dv_rand output. */
static int random_priv(const dvoice_env *env, uint8_t priv[DV_MLS_PRIV_LEN]) {
  if (dv_env_check(env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  mbedtls_ecp_group grp;
  mbedtls_mpi d;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&d);
  int ret = map_mbed(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1),
                     DVOICE_ERR_INTERNAL);
  int found = 0;
  /* The rejection probability is about 2^-32 per draw; a hook that keeps
   * producing invalid scalars is broken. */
  for (int i = 0; ret == 0 && !found && i < 64; i++) {
    dv_rand(env, priv, DV_MLS_PRIV_LEN);
    ret = load_priv(&grp, &d, priv);
    if (ret == 0) {
      found = 1;
    } else if (ret == DVOICE_ERR_CRYPTO) {
      ret = 0;
    }
  }
  mbedtls_mpi_free(&d);
  mbedtls_ecp_group_free(&grp);
  if (ret == 0 && !found)
    ret = DVOICE_ERR_INTERNAL;
  if (ret != 0)
    sodium_memzero(priv, DV_MLS_PRIV_LEN);
  return ret;
}

int dv_mls_check_pub(const uint8_t *pub, size_t pub_len) {
  mbedtls_ecp_group grp;
  mbedtls_ecp_point q;
  mbedtls_ecp_group_init(&grp);
  mbedtls_ecp_point_init(&q);
  int ret = map_mbed(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1),
                     DVOICE_ERR_INTERNAL);
  if (ret == 0)
    ret = load_pub(&grp, &q, pub, pub_len);
  mbedtls_ecp_point_free(&q);
  mbedtls_ecp_group_free(&grp);
  return ret;
}

int dv_mls_ecdh(const dvoice_env *env, const uint8_t priv[DV_MLS_PRIV_LEN],
                const uint8_t *pub, size_t pub_len,
                uint8_t out[DV_MLS_PRIV_LEN]) {
  if (priv == NULL || out == NULL || dv_env_check(env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  sodium_memzero(out, DV_MLS_PRIV_LEN);
  if (pub == NULL || pub_len != DV_MLS_PUB_LEN)
    return DVOICE_ERR_CRYPTO;
  /* A bad private key is the caller's error, a bad point the peer's. */
  uint8_t pt[DV_MLS_PUB_LEN];
  int ret = dv_p256_check_point(pub, pub_len);
  if (ret == 0) {
    ret = dv_p256_mul(pt, priv, pub, pub_len);
    if (ret == DVOICE_ERR_CRYPTO)
      ret = DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (ret == 0)
    memcpy(out, pt + 1, DV_MLS_PRIV_LEN);
  sodium_memzero(pt, sizeof pt);
  if (ret != 0)
    sodium_memzero(out, DV_MLS_PRIV_LEN);
  return ret;
}

/* ---- signatures ----------------------------------------------------------
 */

int dv_mls_sig_keygen(const dvoice_env *env, dv_mls_sig_key *key) {
  if (key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = random_priv(env, key->priv);
  if (ret == 0)
    ret = pub_from_priv(env, key->priv, key->pub);
  if (ret != 0)
    dv_mls_sig_key_wipe(key);
  return ret;
}

int dv_mls_sig_key_from_priv(const dvoice_env *env, dv_mls_sig_key *key) {
  if (key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return pub_from_priv(env, key->priv, key->pub);
}

void dv_mls_sig_key_wipe(dv_mls_sig_key *key) {
  if (key != NULL)
    sodium_memzero(key, sizeof *key);
}

/* SHA-256(SignContent{ "MLS 1.0 " + label <V>; content<V> }). */
static int sign_content_hash(const char *label, const dv_mls_iov *content,
                             size_t n, uint8_t out[DV_MLS_HASH_LEN]) {
  if (label == NULL || !iov_valid(content, n) || n > 16)
    return DVOICE_ERR_INVALID_ARGUMENT;
  size_t label_len = strlen(label);
  if (label_len > LABEL_MAX)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t lv[4], cv[4];
  size_t lvn = dv_mls_varint_put(lv, LABEL_PREFIX_LEN + label_len);
  size_t cvn = dv_mls_varint_put(cv, iov_total(content, n));
  if (cvn == 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  dv_mls_iov iov[4 + 16] = {
      {lv, lvn},
      {(const uint8_t *)LABEL_PREFIX, LABEL_PREFIX_LEN},
      {(const uint8_t *)label, label_len},
      {cv, cvn},
  };
  for (size_t i = 0; i < n; i++)
    iov[4 + i] = content[i];
  return dv_mls_hash_v(iov, 4 + n, out);
}

int dv_mls_sign_with_label_v(const dvoice_env *env,
                             const uint8_t priv[DV_MLS_PRIV_LEN],
                             const char *label, const dv_mls_iov *content,
                             size_t n, uint8_t sig[DV_MLS_SIG_MAX],
                             size_t *sig_len) {
  if (priv == NULL || sig == NULL || sig_len == NULL || dv_env_check(env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  *sig_len = 0;
  uint8_t h[DV_MLS_HASH_LEN];
  uint8_t der[MBEDTLS_ECDSA_MAX_LEN];
  size_t der_len = 0;
  int ret = sign_content_hash(label, content, n, h);
  if (ret != 0)
    return ret;
  mbedtls_ecdsa_context ec;
  mbedtls_ecdsa_init(&ec);
  ret = map_mbed(mbedtls_ecp_group_load(&ec.grp, MBEDTLS_ECP_DP_SECP256R1),
                 DVOICE_ERR_INTERNAL);
  if (ret == 0) {
    ret = load_priv(&ec.grp, &ec.d, priv);
    if (ret == DVOICE_ERR_CRYPTO)
      ret = DVOICE_ERR_INVALID_ARGUMENT;
  }
  /* Deterministic nonce (RFC 6979, MBEDTLS_ECDSA_DETERMINISTIC); env_rng
   * only feeds mbedTLS's side-channel blinding. */
  if (ret == 0)
    ret = map_mbed(mbedtls_ecdsa_write_signature(&ec, MBEDTLS_MD_SHA256, h,
                                                 sizeof h, der, &der_len,
                                                 env_rng, (void *)env),
                   DVOICE_ERR_INTERNAL);
  if (ret == 0 && (der_len == 0 || der_len > DV_MLS_SIG_MAX))
    ret = DVOICE_ERR_INTERNAL;
  if (ret == 0) {
    memcpy(sig, der, der_len);
    *sig_len = der_len;
  }
  mbedtls_ecdsa_free(&ec);
  sodium_memzero(h, sizeof h);
  return ret;
}

int dv_mls_sign_with_label(const dvoice_env *env,
                           const uint8_t priv[DV_MLS_PRIV_LEN],
                           const char *label, const uint8_t *content,
                           size_t content_len, uint8_t sig[DV_MLS_SIG_MAX],
                           size_t *sig_len) {
  dv_mls_iov iov = {content, content_len};
  return dv_mls_sign_with_label_v(env, priv, label, &iov, 1, sig, sig_len);
}

int dv_mls_verify_with_label_v(const uint8_t *pub, size_t pub_len,
                               const char *label, const dv_mls_iov *content,
                               size_t n, const uint8_t *sig, size_t sig_len) {
  if (sig == NULL || sig_len == 0 || sig_len > DV_MLS_SIG_MAX)
    return DVOICE_ERR_CRYPTO;
  uint8_t h[DV_MLS_HASH_LEN];
  int ret = sign_content_hash(label, content, n, h);
  if (ret != 0)
    return ret;
  /* Only public inputs: the variable-time verifier of lib/p256 (about 7x
   * faster than mbedTLS; same verdicts, see test_p256). */
  ret = dv_p256_verify(pub, pub_len, h, sig, sig_len);
  return ret == DVOICE_ERR_INVALID_ARGUMENT ? DVOICE_ERR_CRYPTO : ret;
}

int dv_mls_verify_with_label(const uint8_t *pub, size_t pub_len,
                             const char *label, const uint8_t *content,
                             size_t content_len, const uint8_t *sig,
                             size_t sig_len) {
  dv_mls_iov iov = {content, content_len};
  return dv_mls_verify_with_label_v(pub, pub_len, label, &iov, 1, sig, sig_len);
}

/* ---- AEAD ----------------------------------------------------------------
 */

int dv_mls_aead_seal(const uint8_t key[DV_MLS_AEAD_KEY_LEN],
                     const uint8_t nonce[DV_MLS_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                     size_t pt_len, uint8_t *ct) {
  if (key == NULL || nonce == NULL || ct == NULL ||
      (aad == NULL && aad_len != 0) || (pt == NULL && pt_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  mbedtls_gcm_context g;
  mbedtls_gcm_init(&g);
  int ret = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 128);
  if (ret == 0)
    ret = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, pt_len, nonce,
                                    DV_MLS_AEAD_NONCE_LEN, aad, aad_len, pt, ct,
                                    DV_MLS_AEAD_TAG_LEN, ct + pt_len);
  mbedtls_gcm_free(&g);
  if (ret != 0) {
    sodium_memzero(ct, pt_len + DV_MLS_AEAD_TAG_LEN);
    return DVOICE_ERR_INTERNAL;
  }
  return 0;
}

int dv_mls_aead_open(const uint8_t key[DV_MLS_AEAD_KEY_LEN],
                     const uint8_t nonce[DV_MLS_AEAD_NONCE_LEN],
                     const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                     size_t ct_len, uint8_t *pt) {
  if (key == NULL || nonce == NULL || (aad == NULL && aad_len != 0) ||
      (ct == NULL && ct_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (ct_len < DV_MLS_AEAD_TAG_LEN)
    return DVOICE_ERR_CRYPTO;
  size_t pt_len = ct_len - DV_MLS_AEAD_TAG_LEN;
  if (pt == NULL && pt_len != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  /* The tag is copied first: when pt == ct, decryption overwrites only the
   * ciphertext part, but a copy keeps the check independent of aliasing. */
  uint8_t tag[DV_MLS_AEAD_TAG_LEN];
  memcpy(tag, ct + pt_len, sizeof tag);
  mbedtls_gcm_context g;
  mbedtls_gcm_init(&g);
  int ret = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 128);
  if (ret != 0) {
    mbedtls_gcm_free(&g);
    return DVOICE_ERR_INTERNAL;
  }
  /* auth_decrypt compares the tag in constant time and zeroes the output
   * on mismatch. */
  ret = mbedtls_gcm_auth_decrypt(&g, pt_len, nonce, DV_MLS_AEAD_NONCE_LEN, aad,
                                 aad_len, tag, sizeof tag, ct, pt);
  mbedtls_gcm_free(&g);
  if (ret != 0) {
    if (pt_len > 0)
      sodium_memzero(pt, pt_len);
    return ret == MBEDTLS_ERR_GCM_AUTH_FAILED ? DVOICE_ERR_CRYPTO
                                              : DVOICE_ERR_INTERNAL;
  }
  return 0;
}

/* ---- HPKE ----------------------------------------------------------------
 */

/* suite_id for the KEM: "KEM" || I2OSP(0x0010, 2). */
static const uint8_t SID_KEM[5] = {'K', 'E', 'M', 0x00, 0x10};
/* suite_id for HPKE: "HPKE" || kem 0x0010 || kdf 0x0001 || aead 0x0001. */
static const uint8_t SID_HPKE[10] = {'H',  'P',  'K',  'E',  0x00,
                                     0x10, 0x00, 0x01, 0x00, 0x01};
static const uint8_t HPKE_V1[7] = {'H', 'P', 'K', 'E', '-', 'v', '1'};

/* LabeledExtract(salt, label, ikm) =
 *   HKDF-Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
static int labeled_extract(const uint8_t *sid, size_t sid_len,
                           const uint8_t *salt, size_t salt_len,
                           const char *label, const uint8_t *ikm,
                           size_t ikm_len, uint8_t out[DV_MLS_HASH_LEN]) {
  dv_mls_iov iov[4] = {{HPKE_V1, sizeof HPKE_V1},
                       {sid, sid_len},
                       {(const uint8_t *)label, strlen(label)},
                       {ikm, ikm_len}};
  return dv_mls_hmac_v(salt, salt_len, iov, 4, out);
}

/* LabeledExpand(prk, label, info, L) = HKDF-Expand(prk,
 *   I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L). */
static int labeled_expand(const uint8_t *sid, size_t sid_len,
                          const uint8_t *prk, const char *label,
                          const uint8_t *info, size_t info_len, uint8_t *out,
                          size_t out_len) {
  uint8_t l2[2] = {(uint8_t)(out_len >> 8), (uint8_t)out_len};
  dv_mls_iov iov[5] = {{l2, 2},
                       {HPKE_V1, sizeof HPKE_V1},
                       {sid, sid_len},
                       {(const uint8_t *)label, strlen(label)},
                       {info, info_len}};
  return dv_mls_hkdf_expand_v(prk, DV_MLS_HASH_LEN, iov, 5, out, out_len);
}

void dv_mls_hpke_key_wipe(dv_mls_hpke_key *key) {
  if (key != NULL)
    sodium_memzero(key, sizeof *key);
}

void dv_mls_hpke_ctx_wipe(dv_mls_hpke_ctx *ctx) {
  if (ctx != NULL)
    sodium_memzero(ctx, sizeof *ctx);
}

int dv_mls_hpke_keygen(const dvoice_env *env, dv_mls_hpke_key *key) {
  if (key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  int ret = random_priv(env, key->priv);
  if (ret == 0)
    ret = pub_from_priv(env, key->priv, key->pub);
  if (ret != 0)
    dv_mls_hpke_key_wipe(key);
  return ret;
}

int dv_mls_hpke_key_from_priv(const dvoice_env *env, dv_mls_hpke_key *key) {
  if (key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  return pub_from_priv(env, key->priv, key->pub);
}

int dv_mls_hpke_derive_keypair(const dvoice_env *env, const uint8_t *ikm,
                               size_t ikm_len, dv_mls_hpke_key *key) {
  if (key == NULL || (ikm == NULL && ikm_len != 0) || dv_env_check(env) != 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t prk[DV_MLS_HASH_LEN];
  mbedtls_ecp_group grp;
  mbedtls_mpi d;
  mbedtls_ecp_group_init(&grp);
  mbedtls_mpi_init(&d);
  int ret = map_mbed(mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1),
                     DVOICE_ERR_INTERNAL);
  if (ret == 0)
    ret = labeled_extract(SID_KEM, sizeof SID_KEM, NULL, 0, "dkp_prk", ikm,
                          ikm_len, prk);
  int found = 0;
  for (unsigned ctr = 0; ret == 0 && !found && ctr < 256; ctr++) {
    uint8_t c = (uint8_t)ctr;
    ret = labeled_expand(SID_KEM, sizeof SID_KEM, prk, "candidate", &c, 1,
                         key->priv, DV_MLS_PRIV_LEN);
    if (ret != 0)
      break;
    key->priv[0] &= 0xff; /* the P-256 bitmask keeps every bit */
    ret = load_priv(&grp, &d, key->priv);
    if (ret == 0) {
      found = 1;
    } else if (ret == DVOICE_ERR_CRYPTO) {
      ret = 0; /* out of range: try the next counter */
    }
  }
  if (ret == 0 && !found)
    ret = DVOICE_ERR_CRYPTO;
  mbedtls_mpi_free(&d);
  mbedtls_ecp_group_free(&grp);
  sodium_memzero(prk, sizeof prk);
  if (ret == 0)
    ret = pub_from_priv(env, key->priv, key->pub);
  if (ret != 0)
    dv_mls_hpke_key_wipe(key);
  return ret;
}

/* Shared secret from the DH output and the KEM context enc || pkR. */
static int kem_extract_and_expand(const uint8_t dh[DV_MLS_PRIV_LEN],
                                  const uint8_t enc[DV_MLS_PUB_LEN],
                                  const uint8_t pk_r[DV_MLS_PUB_LEN],
                                  uint8_t shared[DV_MLS_HASH_LEN]) {
  uint8_t prk[DV_MLS_HASH_LEN];
  uint8_t kem_ctx[2 * DV_MLS_PUB_LEN];
  memcpy(kem_ctx, enc, DV_MLS_PUB_LEN);
  memcpy(kem_ctx + DV_MLS_PUB_LEN, pk_r, DV_MLS_PUB_LEN);
  int ret = labeled_extract(SID_KEM, sizeof SID_KEM, NULL, 0, "eae_prk", dh,
                            DV_MLS_PRIV_LEN, prk);
  if (ret == 0)
    ret = labeled_expand(SID_KEM, sizeof SID_KEM, prk, "shared_secret", kem_ctx,
                         sizeof kem_ctx, shared, DV_MLS_HASH_LEN);
  sodium_memzero(prk, sizeof prk);
  return ret;
}

/* KeySchedule for mode_base with no PSK (RFC 9180 section 5.1), given
 * info_hash = LabeledExtract("", "info_hash", info). Taking the hash lets
 * EncryptWithLabel stream its info (a GroupContext) instead of copying it. */
static int hpke_key_schedule_ih(const uint8_t shared[DV_MLS_HASH_LEN],
                                const uint8_t info_hash[DV_MLS_HASH_LEN],
                                dv_mls_hpke_ctx *ctx) {
  uint8_t ksc[1 + 2 * DV_MLS_HASH_LEN];
  uint8_t secret[DV_MLS_HASH_LEN];
  ksc[0] = 0x00;
  int ret = labeled_extract(SID_HPKE, sizeof SID_HPKE, NULL, 0, "psk_id_hash",
                            NULL, 0, ksc + 1);
  memcpy(ksc + 1 + DV_MLS_HASH_LEN, info_hash, DV_MLS_HASH_LEN);
  if (ret == 0)
    ret = labeled_extract(SID_HPKE, sizeof SID_HPKE, shared, DV_MLS_HASH_LEN,
                          "secret", NULL, 0, secret);
  if (ret == 0)
    ret = labeled_expand(SID_HPKE, sizeof SID_HPKE, secret, "key", ksc,
                         sizeof ksc, ctx->key, sizeof ctx->key);
  if (ret == 0)
    ret = labeled_expand(SID_HPKE, sizeof SID_HPKE, secret, "base_nonce", ksc,
                         sizeof ksc, ctx->base_nonce, sizeof ctx->base_nonce);
  if (ret == 0)
    ret = labeled_expand(SID_HPKE, sizeof SID_HPKE, secret, "exp", ksc,
                         sizeof ksc, ctx->exporter_secret,
                         sizeof ctx->exporter_secret);
  ctx->seq = 0;
  sodium_memzero(secret, sizeof secret);
  if (ret != 0)
    dv_mls_hpke_ctx_wipe(ctx);
  return ret;
}

static int hpke_key_schedule(const uint8_t shared[DV_MLS_HASH_LEN],
                             const uint8_t *info, size_t info_len,
                             dv_mls_hpke_ctx *ctx) {
  uint8_t ih[DV_MLS_HASH_LEN];
  int ret = labeled_extract(SID_HPKE, sizeof SID_HPKE, NULL, 0, "info_hash",
                            info, info_len, ih);
  if (ret == 0)
    ret = hpke_key_schedule_ih(shared, ih, ctx);
  return ret;
}

int dv_mls_hpke_setup_base_s_eph(const dvoice_env *env,
                                 const dv_mls_hpke_key *eph,
                                 const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len,
                                 uint8_t enc[DV_MLS_KEM_ENC_LEN],
                                 dv_mls_hpke_ctx *ctx) {
  if (eph == NULL || enc == NULL || ctx == NULL ||
      (info == NULL && info_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t dh[DV_MLS_PRIV_LEN];
  uint8_t shared[DV_MLS_HASH_LEN];
  int ret = dv_mls_ecdh(env, eph->priv, pk_r, pk_r_len, dh);
  if (ret == 0)
    ret = kem_extract_and_expand(dh, eph->pub, pk_r, shared);
  if (ret == 0)
    ret = hpke_key_schedule(shared, info, info_len, ctx);
  if (ret == 0)
    memcpy(enc, eph->pub, DV_MLS_KEM_ENC_LEN);
  sodium_memzero(dh, sizeof dh);
  sodium_memzero(shared, sizeof shared);
  if (ret != 0) {
    dv_mls_hpke_ctx_wipe(ctx);
    sodium_memzero(enc, DV_MLS_KEM_ENC_LEN);
  }
  return ret;
}

int dv_mls_hpke_setup_base_s(const dvoice_env *env, const uint8_t *pk_r,
                             size_t pk_r_len, const uint8_t *info,
                             size_t info_len, uint8_t enc[DV_MLS_KEM_ENC_LEN],
                             dv_mls_hpke_ctx *ctx) {
  dv_mls_hpke_key eph;
  int ret = dv_mls_hpke_keygen(env, &eph);
  if (ret == 0)
    ret = dv_mls_hpke_setup_base_s_eph(env, &eph, pk_r, pk_r_len, info,
                                       info_len, enc, ctx);
  dv_mls_hpke_key_wipe(&eph);
  return ret;
}

int dv_mls_hpke_setup_base_r(const dvoice_env *env,
                             const dv_mls_hpke_key *key_r, const uint8_t *enc,
                             size_t enc_len, const uint8_t *info,
                             size_t info_len, dv_mls_hpke_ctx *ctx) {
  if (key_r == NULL || ctx == NULL || (info == NULL && info_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t dh[DV_MLS_PRIV_LEN];
  uint8_t shared[DV_MLS_HASH_LEN];
  /* dv_mls_ecdh checks enc is a valid uncompressed point. */
  int ret = dv_mls_ecdh(env, key_r->priv, enc, enc_len, dh);
  if (ret == 0)
    ret = kem_extract_and_expand(dh, enc, key_r->pub, shared);
  if (ret == 0)
    ret = hpke_key_schedule(shared, info, info_len, ctx);
  sodium_memzero(dh, sizeof dh);
  sodium_memzero(shared, sizeof shared);
  if (ret != 0)
    dv_mls_hpke_ctx_wipe(ctx);
  return ret;
}

/* nonce = base_nonce XOR I2OSP(seq, Nn). */
static void hpke_nonce(const dv_mls_hpke_ctx *ctx,
                       uint8_t nonce[DV_MLS_AEAD_NONCE_LEN]) {
  memcpy(nonce, ctx->base_nonce, DV_MLS_AEAD_NONCE_LEN);
  for (int i = 0; i < 8; i++)
    nonce[DV_MLS_AEAD_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

int dv_mls_hpke_ctx_seal(dv_mls_hpke_ctx *ctx, const uint8_t *aad,
                         size_t aad_len, const uint8_t *pt, size_t pt_len,
                         uint8_t *ct) {
  if (ctx == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (ctx->seq == UINT64_MAX)
    return DVOICE_ERR_TOO_LARGE;
  uint8_t nonce[DV_MLS_AEAD_NONCE_LEN];
  hpke_nonce(ctx, nonce);
  int ret = dv_mls_aead_seal(ctx->key, nonce, aad, aad_len, pt, pt_len, ct);
  if (ret == 0)
    ctx->seq++;
  return ret;
}

int dv_mls_hpke_ctx_open(dv_mls_hpke_ctx *ctx, const uint8_t *aad,
                         size_t aad_len, const uint8_t *ct, size_t ct_len,
                         uint8_t *pt) {
  if (ctx == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  if (ctx->seq == UINT64_MAX)
    return DVOICE_ERR_TOO_LARGE;
  uint8_t nonce[DV_MLS_AEAD_NONCE_LEN];
  hpke_nonce(ctx, nonce);
  int ret = dv_mls_aead_open(ctx->key, nonce, aad, aad_len, ct, ct_len, pt);
  if (ret == 0)
    ctx->seq++;
  return ret;
}

int dv_mls_hpke_seal_base(const dvoice_env *env, const uint8_t *pk_r,
                          size_t pk_r_len, const uint8_t *info, size_t info_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                          size_t pt_len, uint8_t enc[DV_MLS_KEM_ENC_LEN],
                          uint8_t *ct) {
  dv_mls_hpke_ctx ctx;
  int ret =
      dv_mls_hpke_setup_base_s(env, pk_r, pk_r_len, info, info_len, enc, &ctx);
  if (ret == 0)
    ret = dv_mls_hpke_ctx_seal(&ctx, aad, aad_len, pt, pt_len, ct);
  dv_mls_hpke_ctx_wipe(&ctx);
  return ret;
}

int dv_mls_hpke_open_base(const dvoice_env *env, const dv_mls_hpke_key *key_r,
                          const uint8_t *enc, size_t enc_len,
                          const uint8_t *info, size_t info_len,
                          const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                          size_t ct_len, uint8_t *pt) {
  dv_mls_hpke_ctx ctx;
  int ret =
      dv_mls_hpke_setup_base_r(env, key_r, enc, enc_len, info, info_len, &ctx);
  if (ret == 0)
    ret = dv_mls_hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt);
  dv_mls_hpke_ctx_wipe(&ctx);
  return ret;
}

/* ---- EncryptWithLabel ----------------------------------------------------
 */

/* info_hash = LabeledExtract("", "info_hash", info) for the HPKE info
 * EncryptContext{ opaque label<V> = "MLS 1.0 " + label; opaque context<V>; },
 * streamed into the HMAC. HPKE uses the info nowhere else. */
static int encrypt_context_hash(const char *label, const uint8_t *context,
                                size_t context_len,
                                uint8_t info_hash[DV_MLS_HASH_LEN]) {
  if (label == NULL || (context == NULL && context_len != 0))
    return DVOICE_ERR_INVALID_ARGUMENT;
  size_t label_len = strlen(label);
  if (label_len > LABEL_MAX)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t lv[4], cv[4];
  size_t lvn = dv_mls_varint_put(lv, LABEL_PREFIX_LEN + label_len);
  size_t cvn = dv_mls_varint_put(cv, context_len);
  if (cvn == 0)
    return DVOICE_ERR_INVALID_ARGUMENT;
  static const char info_label[] = "info_hash";
  dv_mls_iov iov[9] = {
      {HPKE_V1, sizeof HPKE_V1},
      {SID_HPKE, sizeof SID_HPKE},
      {(const uint8_t *)info_label, sizeof info_label - 1},
      {lv, lvn},
      {(const uint8_t *)LABEL_PREFIX, LABEL_PREFIX_LEN},
      {(const uint8_t *)label, label_len},
      {cv, cvn},
      {context, context_len},
  };
  return dv_mls_hmac_v(NULL, 0, iov, 8, info_hash);
}

int dv_mls_encrypt_with_label_eph(const dvoice_env *env,
                                  const dv_mls_hpke_key *eph, const uint8_t *pk,
                                  size_t pk_len, const char *label,
                                  const uint8_t *context, size_t context_len,
                                  const uint8_t *pt, size_t pt_len,
                                  uint8_t kem_output[DV_MLS_KEM_ENC_LEN],
                                  uint8_t *ct) {
  if (eph == NULL || kem_output == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t ih[DV_MLS_HASH_LEN];
  uint8_t dh[DV_MLS_PRIV_LEN];
  uint8_t shared[DV_MLS_HASH_LEN];
  dv_mls_hpke_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  int ret = encrypt_context_hash(label, context, context_len, ih);
  if (ret == 0)
    ret = dv_mls_ecdh(env, eph->priv, pk, pk_len, dh);
  if (ret == 0)
    ret = kem_extract_and_expand(dh, eph->pub, pk, shared);
  if (ret == 0)
    ret = hpke_key_schedule_ih(shared, ih, &ctx);
  if (ret == 0)
    ret = dv_mls_hpke_ctx_seal(&ctx, NULL, 0, pt, pt_len, ct);
  if (ret == 0)
    memcpy(kem_output, eph->pub, DV_MLS_KEM_ENC_LEN);
  dv_mls_hpke_ctx_wipe(&ctx);
  sodium_memzero(dh, sizeof dh);
  sodium_memzero(shared, sizeof shared);
  if (ret != 0)
    sodium_memzero(kem_output, DV_MLS_KEM_ENC_LEN);
  return ret;
}

int dv_mls_encrypt_with_label(const dvoice_env *env, const uint8_t *pk,
                              size_t pk_len, const char *label,
                              const uint8_t *context, size_t context_len,
                              const uint8_t *pt, size_t pt_len,
                              uint8_t kem_output[DV_MLS_KEM_ENC_LEN],
                              uint8_t *ct) {
  dv_mls_hpke_key eph;
  int ret = dv_mls_hpke_keygen(env, &eph);
  if (ret == 0)
    ret =
        dv_mls_encrypt_with_label_eph(env, &eph, pk, pk_len, label, context,
                                      context_len, pt, pt_len, kem_output, ct);
  dv_mls_hpke_key_wipe(&eph);
  return ret;
}

int dv_mls_decrypt_with_label(const dvoice_env *env, const dv_mls_hpke_key *key,
                              const char *label, const uint8_t *context,
                              size_t context_len, const uint8_t *kem_output,
                              size_t kem_output_len, const uint8_t *ct,
                              size_t ct_len, uint8_t *pt) {
  if (key == NULL)
    return DVOICE_ERR_INVALID_ARGUMENT;
  uint8_t ih[DV_MLS_HASH_LEN];
  uint8_t dh[DV_MLS_PRIV_LEN];
  uint8_t shared[DV_MLS_HASH_LEN];
  dv_mls_hpke_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  int ret = encrypt_context_hash(label, context, context_len, ih);
  if (ret == 0)
    ret = dv_mls_ecdh(env, key->priv, kem_output, kem_output_len, dh);
  if (ret == 0)
    ret = kem_extract_and_expand(dh, kem_output, key->pub, shared);
  if (ret == 0)
    ret = hpke_key_schedule_ih(shared, ih, &ctx);
  if (ret == 0)
    ret = dv_mls_hpke_ctx_open(&ctx, NULL, 0, ct, ct_len, pt);
  dv_mls_hpke_ctx_wipe(&ctx);
  sodium_memzero(dh, sizeof dh);
  sodium_memzero(shared, sizeof shared);
  return ret;
}
