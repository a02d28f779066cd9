/*
 * RTP as Discord uses it (reference/voice-protocol.md sections 4.3-4.6):
 * header build and parse (CSRCs, the 0xBEDE one-byte-header extension,
 * padding), classification of received datagrams, IP discovery (74-byte
 * request and response), the UDP keepalive, and two pure schedules for the
 * glue: IP discovery retransmission and the 5 s keepalive.
 *
 * Everything here is pure: fed bytes and timestamps, no I/O, no clock, no
 * allocation. Parsers never read outside [p, p+len) and return negative
 * DVOICE_ERR_* codes for bad input.
 */
#ifndef DV_RTP_H
#define DV_RTP_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

/* ---- constants ---------------------------------------------------------- */

#define DV_RTP_VERSION 2
/* Payload type Discord uses for Opus. */
#define DV_RTP_PT_OPUS 0x78
/* Fixed header size (no CSRC, no extension). */
#define DV_RTP_HDR_MIN 12
/* Largest header: 15 CSRCs and an extension preamble. */
#define DV_RTP_HDR_MAX (12 + 15 * 4 + 4)
/* Profile of the RFC 8285 one-byte-header extension. */
#define DV_RTP_EXT_ONE_BYTE 0xBEDE
/* Largest datagram we build (songbird's VOICE_PACKET_MAX). */
#define DV_RTP_MAX_PACKET 1460
/* Samples per channel in one 20 ms frame at 48 kHz: the timestamp step. */
#define DV_RTP_TS_STEP 960

/* ---- header ------------------------------------------------------------- */

typedef struct dv_rtp_hdr {
  uint8_t padding;      /* P bit (0/1) */
  uint8_t extension;    /* X bit (0/1) */
  uint8_t csrc_count;   /* CC, 0..15 */
  uint8_t marker;       /* M bit (0/1) */
  uint8_t payload_type; /* 0..127 */
  uint16_t seq;
  uint32_t timestamp;
  uint32_t ssrc;
  uint32_t csrc[15];    /* csrc[0..csrc_count) */
  uint16_t ext_profile; /* valid if extension; 0xBEDE from Discord clients */
  uint16_t ext_words;   /* extension body length in 32-bit words */
  /* Parse output: bytes of the header in the clear, 12 + 4*CC + 4*X. In the
   * rtpsize modes exactly these bytes are the AEAD's associated data. */
  size_t len;
} dv_rtp_hdr;

/* Fills |h| with the header of an outgoing bot packet: V=2, no padding,
 * extension or CSRC, M=0, PT 0x78. */
void dv_rtp_hdr_opus(dv_rtp_hdr *h, uint16_t seq, uint32_t timestamp,
                     uint32_t ssrc);

/*
 * Writes |h| (fixed header, CSRCs, and the 4-byte extension preamble if
 * h->extension) to |out|. The extension body and padding belong to the
 * payload and are not written. Returns the number of bytes written (also
 * stored in h->len), or DVOICE_ERR_INVALID_ARGUMENT (csrc_count > 15,
 * payload_type > 127, flags not 0/1) or DVOICE_ERR_NOBUF (|cap| too small).
 */
int dv_rtp_hdr_write(dv_rtp_hdr *h, uint8_t *out, size_t cap);

/*
 * Parses the part of an RTP packet that is in the clear in the rtpsize
 * modes: fixed header, CSRCs, extension preamble. Sets h->len. Returns 0,
 * DVOICE_ERR_TRUNCATED (shorter than the header it announces) or
 * DVOICE_ERR_MALFORMED (version != 2).
 */
int dv_rtp_hdr_parse(dv_rtp_hdr *h, const uint8_t *p, size_t len);

/* A received packet split into its parts. */
typedef struct dv_rtp_rx {
  dv_rtp_hdr hdr;
  uint32_t nonce;     /* the appended counter (dv_rtp_open only) */
  const uint8_t *ext; /* extension body, ext_len = 4*ext_words bytes */
  size_t ext_len;
  const uint8_t *payload; /* Opus or DAVE frame, padding removed */
  size_t payload_len;
  size_t pad_len; /* padding bytes removed (0 if P is clear) */
} dv_rtp_rx;

/*
 * Splits the body that follows the clear header (for received rtpsize
 * packets: the decrypted plaintext) into extension body, payload and
 * padding, using rx->hdr (already parsed). Pointers borrow from |body|.
 * Returns 0, DVOICE_ERR_TRUNCATED (extension body longer than |body|) or
 * DVOICE_ERR_MALFORMED (P set and the pad count is 0 or exceeds what is
 * left after the extension body).
 */
int dv_rtp_split(dv_rtp_rx *rx, const uint8_t *body, size_t len);

/* Parses an unencrypted RTP packet (header, extension body, payload,
 * padding): dv_rtp_hdr_parse then dv_rtp_split. Errors as those two. */
int dv_rtp_parse_plain(dv_rtp_rx *rx, const uint8_t *p, size_t len);

/*
 * Iterates the elements of a one-byte-header extension body (RFC 8285
 * 4.2). Start with *pos = 0. Each call skips padding bytes (ID 0) and
 * returns 1 with |*id| (1..14), |*data| and |*data_len| (1..16) borrowed
 * from |body|, 0 at the end (end of body or ID 15), DVOICE_ERR_TRUNCATED
 * if an element runs past the body, or DVOICE_ERR_MALFORMED for ID 0 with a
 * nonzero length (ID 0 is reserved for padding bytes).
 */
int dv_rtp_ext_next(const uint8_t *body, size_t len, size_t *pos, uint8_t *id,
                    const uint8_t **data, size_t *data_len);

/* ---- receive demultiplexing --------------------------------------------- */

typedef enum dv_udp_kind {
  DV_UDP_UNKNOWN = 0,   /* none of the below: drop */
  DV_UDP_IPDISC = 1,    /* 74 bytes, type 0x0002: an IP discovery response */
  DV_UDP_RTP_AUDIO = 2, /* RTP v2, payload type 0x78 */
  DV_UDP_RTP_OTHER = 3, /* RTP v2, another payload type (video, probes) */
  DV_UDP_RTCP = 4,      /* v2, byte 1 in 192..223 (RFC 5761) */
  DV_UDP_KEEPALIVE = 5  /* 8 bytes: an echo of our keepalive */
} dv_udp_kind;

/* Classifies one received datagram by its shape; reads nothing beyond
 * |len|. It does not validate: parse with the matching function. */
dv_udp_kind dv_udp_classify(const uint8_t *p, size_t len);

/* Returns a static name for |k| ("rtp-audio", ...). */
const char *dv_udp_kind_name(dv_udp_kind k);

/* ---- keepalive ---------------------------------------------------------- */

/* The keepalive is discord.js's: a u32 little-endian counter, 4 zeros. */
#define DV_KEEPALIVE_LEN 8
#define DV_KEEPALIVE_INTERVAL (5 * DVOICE_SECONDS)

/* Writes the keepalive datagram for |counter| into |out|. */
void dv_keepalive_build(uint8_t out[DV_KEEPALIVE_LEN], uint32_t counter);
/* Returns 0 and the echoed counter, or DVOICE_ERR_MALFORMED. */
int dv_keepalive_parse(const uint8_t *p, size_t len, uint32_t *counter);

/*
 * The keepalive schedule: one packet at start, then one every interval on
 * an absolute grid. After a stall it sends one packet and skips the missed
 * grid points (never a burst).
 */
typedef struct dv_keepalive {
  dvoice_tstamp interval;
  dvoice_tstamp next; /* DVOICE_TSTAMP_NONE when stopped */
  uint32_t counter;   /* counter of the next packet */
} dv_keepalive;

/* Starts the schedule: the first packet is due at |now|. interval 0 means
 * DV_KEEPALIVE_INTERVAL. The counter starts at 0. */
void dv_keepalive_start(dv_keepalive *k, dvoice_tstamp now,
                        dvoice_tstamp interval);
void dv_keepalive_stop(dv_keepalive *k);
/* Next deadline, or DVOICE_TSTAMP_NONE when stopped. */
dvoice_tstamp dv_keepalive_get_expiry(const dv_keepalive *k);
/* If a packet is due at |now|, writes it to |out| and returns 1 (the glue
 * sends it); returns 0 if nothing is due. */
int dv_keepalive_handle_expiry(dv_keepalive *k, dvoice_tstamp now,
                               uint8_t out[DV_KEEPALIVE_LEN]);

/* ---- IP discovery ------------------------------------------------------- */

#define DV_IPDISC_LEN 74
#define DV_IPDISC_TYPE_REQUEST 0x0001
#define DV_IPDISC_TYPE_RESPONSE 0x0002
/* The length field: bytes after it. */
#define DV_IPDISC_BODY_LEN 70
#define DV_IPDISC_ADDR_LEN 64

/* Writes the 74-byte request: type 1, length 70, |ssrc|, zero address,
 * zero port. */
void dv_ipdisc_build_request(uint8_t out[DV_IPDISC_LEN], uint32_t ssrc);

typedef struct dv_ipdisc_result {
  char address[16]; /* dotted-quad IPv4, NUL-terminated */
  uint16_t port;
} dv_ipdisc_result;

/*
 * Parses and strictly validates a response for |ssrc|. Returns 0 and fills
 * |out|, or (checked in this order):
 *   DVOICE_ERR_TRUNCATED        fewer than 74 bytes
 *   DVOICE_ERR_TRAILING         more than 74 bytes
 *   DVOICE_ERR_IPDISC_TYPE      type != 0x0002
 *   DVOICE_ERR_IPDISC_LENGTH    length field != 70
 *   DVOICE_ERR_IPDISC_SSRC      SSRC differs from |ssrc|
 *   DVOICE_ERR_IPDISC_ADDRESS   no NUL in the 64-byte field, or the text
 *                               before it is not a dotted-quad IPv4 literal
 *                               (four decimal octets 0..255, no leading
 *                               zeros, no sign or space)
 *   DVOICE_ERR_IPDISC_PORT      port 0
 * |out| is untouched on error.
 */
int dv_ipdisc_parse_response(const uint8_t *p, size_t len, uint32_t ssrc,
                             dv_ipdisc_result *out);

/* Returns 1 if |s| (|len| bytes, no NUL needed) is a dotted-quad IPv4
 * literal as accepted above, else 0. */
int dv_ipv4_literal_valid(const char *s, size_t len);

/*
 * IP discovery retransmission: send at start, resend every |interval|
 * until an answer or |max_attempts| sends in total; one interval after the
 * last send the attempt times out.
 */
typedef struct dv_ipdisc_retry {
  dvoice_tstamp interval;
  unsigned max_attempts;
  unsigned attempts;  /* sends so far */
  dvoice_tstamp next; /* DVOICE_TSTAMP_NONE when done */
} dv_ipdisc_retry;

#define DV_IPDISC_RETRY_INTERVAL (1 * DVOICE_SECONDS)
#define DV_IPDISC_RETRY_MAX 10

/* Starts: the first send is due at |now|. 0 picks the defaults above. */
void dv_ipdisc_retry_start(dv_ipdisc_retry *r, dvoice_tstamp now,
                           dvoice_tstamp interval, unsigned max_attempts);
/* Call when a valid response arrived: no more sends or timeout. */
void dv_ipdisc_retry_done(dv_ipdisc_retry *r);
dvoice_tstamp dv_ipdisc_retry_get_expiry(const dv_ipdisc_retry *r);
/*
 * Returns 1 if the glue must send a request now (the send is counted),
 * 0 if nothing is due, or DVOICE_ERR_TIMEOUT once, when the last attempt
 * went unanswered for an interval (the schedule then stops).
 */
int dv_ipdisc_retry_handle_expiry(dv_ipdisc_retry *r, dvoice_tstamp now);

#endif
