/*
 * Transport encryption for the two rtpsize modes (voice-protocol.md 5):
 *
 *   packet = clear header || AEAD(body) || tag[16] || counter[4]
 *
 * The clear header (fixed header, CSRCs, the 4-byte extension preamble) is
 * the associated data; the body (extension body, payload, padding) is
 * encrypted. The nonce is the 4-byte big-endian counter followed by zeros:
 * 12 bytes for AES-256-GCM, 24 for XChaCha20-Poly1305.
 *
 * AES-256-GCM runs on libsodium when crypto_aead_aes256gcm_is_available()
 * (AES-NI and PCLMUL), else on mbedTLS; XChaCha20-Poly1305 on libsodium.
 * A dv_rtp_crypt is a plain struct the caller embeds: no allocation, here or
 * per packet. It holds the key; dv_rtp_crypt_clear() wipes it.
 */
#ifndef DV_RTP_CRYPT_H
#define DV_RTP_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/gcm.h>
#include <sodium.h>

#include "rtp/dv_rtp.h"

typedef enum dv_rtp_mode {
  DV_RTP_MODE_NONE = 0,
  DV_RTP_MODE_AES256GCM = 1, /* "aead_aes256_gcm_rtpsize" */
  DV_RTP_MODE_XCHACHA20 = 2  /* "aead_xchacha20_poly1305_rtpsize" */
} dv_rtp_mode;

/* Which implementation runs AES-256-GCM (XChaCha always uses libsodium). */
typedef enum dv_rtp_backend {
  DV_RTP_BACKEND_AUTO = 0, /* libsodium if the CPU allows, else mbedTLS */
  DV_RTP_BACKEND_SODIUM = 1,
  DV_RTP_BACKEND_MBEDTLS = 2
} dv_rtp_backend;

#define DV_RTP_KEY_LEN 32
#define DV_RTP_TAG_LEN 16
#define DV_RTP_NONCE_LEN 4
/* Bytes a sealed packet adds to its plaintext body: tag and counter. */
#define DV_RTP_CRYPT_OVERHEAD (DV_RTP_TAG_LEN + DV_RTP_NONCE_LEN)
/* Bytes an outgoing bot packet adds to its payload: header, tag, counter. */
#define DV_RTP_SEND_OVERHEAD (DV_RTP_HDR_MIN + DV_RTP_CRYPT_OVERHEAD)

/* The wire names of the modes. */
#define DV_RTP_MODE_NAME_AES256GCM "aead_aes256_gcm_rtpsize"
#define DV_RTP_MODE_NAME_XCHACHA20 "aead_xchacha20_poly1305_rtpsize"

typedef struct dv_rtp_crypt {
  dv_rtp_mode mode;
  dv_rtp_backend backend; /* resolved: SODIUM or MBEDTLS */
  /* Counter for the next dv_rtp_seal(); starts at 0. */
  uint32_t next_nonce;
  /* Packets sealed by dv_rtp_seal(); refuses at 2^32 (nonce reuse). */
  uint64_t sealed;
  uint8_t key[DV_RTP_KEY_LEN];
  /* libsodium's expanded AES key; aligned to 16 inside this array at use,
   * so the struct may live in memory of any alignment. */
  unsigned char aes_state[sizeof(crypto_aead_aes256gcm_state) + 16];
  mbedtls_gcm_context gcm;
  int gcm_ready;
} dv_rtp_crypt;

/* Returns the mode for a wire name (|len| bytes, no NUL needed), or
 * DV_RTP_MODE_NONE for anything else (including discontinued modes). */
dv_rtp_mode dv_rtp_mode_from_name(const char *name, size_t len);
/* Returns the wire name of |mode|, or NULL. */
const char *dv_rtp_mode_name(dv_rtp_mode mode);
/*
 * Picks the mode to select from the server's |offered| list (|n| names,
 * NUL-terminated): AES-256-GCM if offered, else XChaCha20 if offered, else
 * DV_RTP_MODE_NONE. (AES is always usable: mbedTLS backs it.)
 */
dv_rtp_mode dv_rtp_mode_choose(const char *const *offered, size_t n);

/* Nonzero if libsodium's AES-256-GCM is usable on this CPU. */
int dv_rtp_sodium_aes_available(void);

/*
 * Initialises |c| for |mode| with the 32-byte |key| (copied). |backend|
 * selects the AES-256-GCM implementation (ignored for XChaCha20).
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (unknown mode or backend),
 * DVOICE_ERR_UNSUPPORTED (libsodium AES requested but unavailable, or
 * sodium_init failed), DVOICE_ERR_NOMEM (mbedTLS could not allocate its
 * cipher context, through its own allocator) or DVOICE_ERR_CRYPTO (mbedTLS
 * refused the key). |c| must be fresh or cleared (dv_rtp_crypt_clear);
 * on error it holds no key and needs no clear.
 */
int dv_rtp_crypt_init(dv_rtp_crypt *c, dv_rtp_mode mode, const uint8_t *key,
                      dv_rtp_backend backend);
/* Wipes the key material and frees mbedTLS's context; |c| may then be
 * re-initialised. Idempotent after a dv_rtp_crypt_init (even a failed
 * one); not for a never-initialised struct. */
void dv_rtp_crypt_clear(dv_rtp_crypt *c);

/*
 * Seals the plaintext RTP packet |pkt| (clear header, then extension body,
 * payload, padding) into |out| with counter |nonce|. |out| must not overlap
 * |pkt|. Writes len + 20 bytes and stores that in |*out_len|.
 * Returns 0, DVOICE_ERR_TRUNCATED / DVOICE_ERR_MALFORMED (|pkt| has no
 * valid RTP header), DVOICE_ERR_NOBUF (|cap| < len + 20),
 * DVOICE_ERR_INVALID_STATE (|c| not initialised) or DVOICE_ERR_CRYPTO.
 */
int dv_rtp_seal_nonce(dv_rtp_crypt *c, uint32_t nonce, const uint8_t *pkt,
                      size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* dv_rtp_seal_nonce with c->next_nonce, which then advances by one.
 * Additionally DVOICE_ERR_TOO_LARGE once 2^32 packets used the key. */
int dv_rtp_seal(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                size_t cap, size_t *out_len);

/*
 * The send fast path: writes a bot packet (12-byte header from |seq|,
 * |timestamp|, |ssrc|, PT 0x78) and the sealed |payload| into |out|, with
 * counter c->next_nonce (then advanced). |payload| must not overlap |out|.
 * |*out_len| = payload_len + DV_RTP_SEND_OVERHEAD. Errors as dv_rtp_seal.
 */
int dv_rtp_seal_opus(dv_rtp_crypt *c, uint16_t seq, uint32_t timestamp,
                     uint32_t ssrc, const uint8_t *payload, size_t payload_len,
                     uint8_t *out, size_t cap, size_t *out_len);

/*
 * Opens a received rtpsize packet: parses the clear header, decrypts the
 * body into |out| (|cap| >= len - header - 20; |out| must not overlap
 * |pkt|), then skips the extension body and padding. On success |rx|
 * points into |out| for ext and payload and holds the header and counter.
 * Returns 0, DVOICE_ERR_TRUNCATED (shorter than header + tag + counter, or
 * than the extension body), DVOICE_ERR_MALFORMED (not RTP v2, bad padding),
 * DVOICE_ERR_NOBUF (|cap| too small), DVOICE_ERR_INVALID_STATE (|c| not
 * initialised) or DVOICE_ERR_CRYPTO (authentication failed: header,
 * ciphertext, tag or counter altered, or another key).
 */
int dv_rtp_open(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                size_t cap, dv_rtp_rx *rx);

/*
 * RTCP in the rtpsize modes: the 8-byte header (V/P/RC, PT, length, sender
 * SSRC) is the associated data, the rest is encrypted, followed by the
 * same tag and counter (songbird's decrypt_rtcp_in_place). Bots may ignore
 * RTCP; these serve the receive path and the simulator.
 */
#define DV_RTCP_HDR_LEN 8

/* Seals the plaintext RTCP packet |pkt| (>= 8 bytes, version 2) into |out|
 * with counter |nonce|. Errors as dv_rtp_seal_nonce. */
int dv_rtcp_seal_nonce(dv_rtp_crypt *c, uint32_t nonce, const uint8_t *pkt,
                       size_t len, uint8_t *out, size_t cap, size_t *out_len);
/*
 * Opens a received RTCP packet: copies the 8-byte header to |out| and
 * decrypts the rest after it, so |out| holds the plain RTCP packet
 * (|*out_len| = len - 20). |out| must not overlap |pkt|. Returns 0,
 * DVOICE_ERR_TRUNCATED (shorter than 8 + 20), DVOICE_ERR_MALFORMED (not
 * version 2), DVOICE_ERR_NOBUF, DVOICE_ERR_INVALID_STATE or
 * DVOICE_ERR_CRYPTO.
 */
int dv_rtcp_open(dv_rtp_crypt *c, const uint8_t *pkt, size_t len, uint8_t *out,
                 size_t cap, size_t *out_len);

#endif
