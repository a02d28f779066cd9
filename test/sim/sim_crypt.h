/*
 * The simulator's own transport AEAD for the two rtpsize modes, written
 * independently of lib/rtp on purpose: tests that check lib/rtp's packets
 * against it catch mistakes the library would otherwise agree with itself
 * about (nonce placement, AAD extent, extension body handling).
 */
#ifndef DV_SIM_CRYPT_H
#define DV_SIM_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/gcm.h>

#include "sim_vgw.h"
#include "util/dv_buf.h"

#define DV_SIM_TAG_LEN 16
#define DV_SIM_NONCE_SUFFIX 4

/* Length of the authenticated, unencrypted part of an RTP packet in rtpsize
 * modes: 12 + 4*CC, plus the 4-byte extension preamble when X is set.
 * Returns 0 if |len| cannot hold it. */
size_t dv_sim_rtp_aad_len(const uint8_t *p, size_t len);

/*
 * A transport key ready for use. AES-256-GCM's key schedule and GHASH table
 * are computed once per key here instead of once per packet, which at a
 * thousand streams is most of the simulator's receive cost.
 */
typedef struct dv_sim_crypt_key {
  dv_sim_mode mode; /* DV_SIM_MODE_NONE: not set */
  uint8_t key[32];
  mbedtls_gcm_context gcm; /* keyed in DV_SIM_MODE_AES256_GCM only */
} dv_sim_crypt_key;

/* Makes |k| unset. */
void dv_sim_crypt_key_init(dv_sim_crypt_key *k);
/*
 * Keys |k| for |mode| and |key| (copied), unless it already holds exactly
 * those: cheap to call before every packet. DV_SIM_MODE_NONE unsets it.
 * Returns 0, DVOICE_ERR_UNSUPPORTED (unknown mode; |k| is then unset),
 * DVOICE_ERR_CRYPTO (|k| is then unset).
 */
int dv_sim_crypt_key_set(dv_sim_crypt_key *k, dv_sim_mode mode,
                         const uint8_t key[32]);
/* Wipes |k| and frees what it holds; it is left unset and reusable. */
void dv_sim_crypt_key_free(dv_sim_crypt_key *k);

/* dv_sim_crypt_open and dv_sim_crypt_seal with a prepared key (an unset
 * one gives DVOICE_ERR_UNSUPPORTED, after the length checks for open). */
int dv_sim_crypt_open_key(dv_sim_crypt_key *k, const uint8_t *pkt, size_t len,
                          dv_buf *plain, size_t *aad_len);
int dv_sim_crypt_seal_key(dv_sim_crypt_key *k, const uint8_t *aad,
                          size_t aad_len, const uint8_t *plain,
                          size_t plain_len, uint32_t counter, dv_buf *out);

/*
 * Decrypts an rtpsize packet into |plain| (appended): the plaintext after
 * the AAD, which starts with the extension body when X is set. Sets
 * |*aad_len|. Returns 0, DVOICE_ERR_TRUNCATED, DVOICE_ERR_CRYPTO,
 * DVOICE_ERR_UNSUPPORTED (mode), DVOICE_ERR_NOMEM.
 */
int dv_sim_crypt_open(dv_sim_mode mode, const uint8_t key[32],
                      const uint8_t *pkt, size_t len, dv_buf *plain,
                      size_t *aad_len);

/*
 * Builds a packet: |aad| (header incl. CSRCs and extension preamble)
 * followed by the AEAD of |plain| (extension body and payload), the 16-byte
 * tag, and |counter| big-endian (also the first 4 nonce bytes). Appends to
 * |out|. Returns 0, DVOICE_ERR_UNSUPPORTED, DVOICE_ERR_NOMEM,
 * DVOICE_ERR_CRYPTO.
 */
int dv_sim_crypt_seal(dv_sim_mode mode, const uint8_t key[32],
                      const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                      size_t plain_len, uint32_t counter, dv_buf *out);

#endif
