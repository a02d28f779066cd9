#include "rtp/dv_rtp.h"

#include <string.h>

#include "util/dv_rw.h"

/* ---- header ------------------------------------------------------------- */

void dv_rtp_hdr_opus(dv_rtp_hdr *h, uint16_t seq, uint32_t timestamp,
                     uint32_t ssrc) {
  memset(h, 0, sizeof(*h));
  h->payload_type = DV_RTP_PT_OPUS;
  h->seq = seq;
  h->timestamp = timestamp;
  h->ssrc = ssrc;
  h->len = DV_RTP_HDR_MIN;
}

int dv_rtp_hdr_write(dv_rtp_hdr *h, uint8_t *out, size_t cap) {
  size_t need;
  if (h->csrc_count > 15 || h->payload_type > 127 || h->padding > 1 ||
      h->extension > 1 || h->marker > 1) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  need = DV_RTP_HDR_MIN + 4u * h->csrc_count + (h->extension ? 4u : 0u);
  if (cap < need) {
    return DVOICE_ERR_NOBUF;
  }
  out[0] = (uint8_t)((DV_RTP_VERSION << 6) | (h->padding << 5) |
                     (h->extension << 4) | h->csrc_count);
  out[1] = (uint8_t)((h->marker << 7) | h->payload_type);
  dv_put_u16(out + 2, h->seq);
  dv_put_u32(out + 4, h->timestamp);
  dv_put_u32(out + 8, h->ssrc);
  for (unsigned i = 0; i < h->csrc_count; i++) {
    dv_put_u32(out + 12 + 4 * i, h->csrc[i]);
  }
  if (h->extension) {
    dv_put_u16(out + need - 4, h->ext_profile);
    dv_put_u16(out + need - 2, h->ext_words);
  }
  h->len = need;
  return (int)need;
}

int dv_rtp_hdr_parse(dv_rtp_hdr *h, const uint8_t *p, size_t len) {
  size_t need;
  if (len < DV_RTP_HDR_MIN) {
    return DVOICE_ERR_TRUNCATED;
  }
  if ((p[0] >> 6) != DV_RTP_VERSION) {
    return DVOICE_ERR_MALFORMED;
  }
  h->padding = (p[0] >> 5) & 1;
  h->extension = (p[0] >> 4) & 1;
  h->csrc_count = p[0] & 0x0f;
  h->marker = p[1] >> 7;
  h->payload_type = p[1] & 0x7f;
  h->seq = dv_get_u16(p + 2);
  h->timestamp = dv_get_u32(p + 4);
  h->ssrc = dv_get_u32(p + 8);
  need = DV_RTP_HDR_MIN + 4u * h->csrc_count + (h->extension ? 4u : 0u);
  if (len < need) {
    return DVOICE_ERR_TRUNCATED;
  }
  for (unsigned i = 0; i < h->csrc_count; i++) {
    h->csrc[i] = dv_get_u32(p + 12 + 4 * i);
  }
  if (h->extension) {
    h->ext_profile = dv_get_u16(p + need - 4);
    h->ext_words = dv_get_u16(p + need - 2);
  } else {
    h->ext_profile = 0;
    h->ext_words = 0;
  }
  h->len = need;
  return 0;
}

int dv_rtp_split(dv_rtp_rx *rx, const uint8_t *body, size_t len) {
  size_t ext_len = rx->hdr.extension ? 4u * rx->hdr.ext_words : 0;
  size_t pad = 0;
  if (ext_len > len) {
    return DVOICE_ERR_TRUNCATED;
  }
  if (rx->hdr.padding) {
    /* RFC 3550 5.1: the last byte counts the padding, itself included. */
    if (len == ext_len) {
      return DVOICE_ERR_MALFORMED;
    }
    pad = body[len - 1];
    if (pad == 0 || pad > len - ext_len) {
      return DVOICE_ERR_MALFORMED;
    }
  }
  rx->ext = body;
  rx->ext_len = ext_len;
  rx->payload = body + ext_len;
  rx->payload_len = len - ext_len - pad;
  rx->pad_len = pad;
  return 0;
}

int dv_rtp_parse_plain(dv_rtp_rx *rx, const uint8_t *p, size_t len) {
  int rv = dv_rtp_hdr_parse(&rx->hdr, p, len);
  if (rv < 0) {
    return rv;
  }
  rx->nonce = 0;
  return dv_rtp_split(rx, p + rx->hdr.len, len - rx->hdr.len);
}

int dv_rtp_ext_next(const uint8_t *body, size_t len, size_t *pos, uint8_t *id,
                    const uint8_t **data, size_t *data_len) {
  size_t i = *pos;
  while (i < len && body[i] == 0) {
    i++; /* padding between elements */
  }
  if (i >= len || (body[i] >> 4) == 15) {
    *pos = len;
    return 0;
  }
  if ((body[i] >> 4) == 0) {
    /* ID 0 is reserved for the all-zero padding byte (RFC 8285 4.2). */
    *pos = len;
    return DVOICE_ERR_MALFORMED;
  }
  {
    size_t n = (size_t)(body[i] & 0x0f) + 1;
    if (n > len - i - 1) {
      *pos = len;
      return DVOICE_ERR_TRUNCATED;
    }
    *id = body[i] >> 4;
    *data = body + i + 1;
    *data_len = n;
    *pos = i + 1 + n;
  }
  return 1;
}

/* ---- demultiplexing ----------------------------------------------------- */

dv_udp_kind dv_udp_classify(const uint8_t *p, size_t len) {
  int v2 = len >= 8 && (p[0] >> 6) == DV_RTP_VERSION;
  int rtcp = v2 && p[1] >= 192 && p[1] <= 223;
  if (len == DV_IPDISC_LEN && p[0] == 0x00 && p[1] == 0x02) {
    return DV_UDP_IPDISC;
  }
  if (len == DV_KEEPALIVE_LEN) {
    /* An 8-byte RTCP packet (an empty receiver report) says so in its
     * length field (1 word after the first); our keepalive echo would need
     * a counter above 2^24 (2.6 years) to look like that. */
    return rtcp && dv_get_u16(p + 2) == 1 ? DV_UDP_RTCP : DV_UDP_KEEPALIVE;
  }
  if (rtcp) {
    return DV_UDP_RTCP;
  }
  if (!v2 || len < DV_RTP_HDR_MIN) {
    return DV_UDP_UNKNOWN;
  }
  return (p[1] & 0x7f) == DV_RTP_PT_OPUS ? DV_UDP_RTP_AUDIO : DV_UDP_RTP_OTHER;
}

const char *dv_udp_kind_name(dv_udp_kind k) {
  switch (k) {
    case DV_UDP_IPDISC:
      return "ipdisc";
    case DV_UDP_RTP_AUDIO:
      return "rtp-audio";
    case DV_UDP_RTP_OTHER:
      return "rtp-other";
    case DV_UDP_RTCP:
      return "rtcp";
    case DV_UDP_KEEPALIVE:
      return "keepalive";
    case DV_UDP_UNKNOWN:
      break;
  }
  return "unknown";
}

/* ---- keepalive ---------------------------------------------------------- */

void dv_keepalive_build(uint8_t out[DV_KEEPALIVE_LEN], uint32_t counter) {
  out[0] = (uint8_t)counter;
  out[1] = (uint8_t)(counter >> 8);
  out[2] = (uint8_t)(counter >> 16);
  out[3] = (uint8_t)(counter >> 24);
  memset(out + 4, 0, 4);
}

int dv_keepalive_parse(const uint8_t *p, size_t len, uint32_t *counter) {
  if (len != DV_KEEPALIVE_LEN) {
    return DVOICE_ERR_MALFORMED;
  }
  *counter = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
             ((uint32_t)p[3] << 24);
  return 0;
}

void dv_keepalive_start(dv_keepalive *k, dvoice_tstamp now,
                        dvoice_tstamp interval) {
  k->interval = interval ? interval : DV_KEEPALIVE_INTERVAL;
  k->next = now;
  k->counter = 0;
}

void dv_keepalive_stop(dv_keepalive *k) {
  k->next = DVOICE_TSTAMP_NONE;
}

dvoice_tstamp dv_keepalive_get_expiry(const dv_keepalive *k) {
  return k->next;
}

int dv_keepalive_handle_expiry(dv_keepalive *k, dvoice_tstamp now,
                               uint8_t out[DV_KEEPALIVE_LEN]) {
  if (k->next == DVOICE_TSTAMP_NONE || now < k->next) {
    return 0;
  }
  dv_keepalive_build(out, k->counter++);
  /* Stay on the grid; skip grid points a stall made us miss. */
  k->next += ((now - k->next) / k->interval + 1) * k->interval;
  return 1;
}

/* ---- IP discovery ------------------------------------------------------- */

void dv_ipdisc_build_request(uint8_t out[DV_IPDISC_LEN], uint32_t ssrc) {
  memset(out, 0, DV_IPDISC_LEN);
  dv_put_u16(out, DV_IPDISC_TYPE_REQUEST);
  dv_put_u16(out + 2, DV_IPDISC_BODY_LEN);
  dv_put_u32(out + 4, ssrc);
}

int dv_ipv4_literal_valid(const char *s, size_t len) {
  size_t i = 0;
  for (int octet = 0; octet < 4; octet++) {
    unsigned v = 0;
    size_t digits = 0;
    if (octet > 0) {
      if (i >= len || s[i] != '.') {
        return 0;
      }
      i++;
    }
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (digits == 1 && v == 0) {
        return 0; /* leading zero */
      }
      v = v * 10 + (unsigned)(s[i] - '0');
      if (++digits > 3 || v > 255) {
        return 0;
      }
      i++;
    }
    if (digits == 0) {
      return 0;
    }
  }
  return i == len;
}

int dv_ipdisc_parse_response(const uint8_t *p, size_t len, uint32_t ssrc,
                             dv_ipdisc_result *out) {
  const uint8_t *addr;
  const uint8_t *nul;
  size_t alen;
  uint16_t port;
  if (len < DV_IPDISC_LEN) {
    return DVOICE_ERR_TRUNCATED;
  }
  if (len > DV_IPDISC_LEN) {
    return DVOICE_ERR_TRAILING;
  }
  if (dv_get_u16(p) != DV_IPDISC_TYPE_RESPONSE) {
    return DVOICE_ERR_IPDISC_TYPE;
  }
  if (dv_get_u16(p + 2) != DV_IPDISC_BODY_LEN) {
    return DVOICE_ERR_IPDISC_LENGTH;
  }
  if (dv_get_u32(p + 4) != ssrc) {
    return DVOICE_ERR_IPDISC_SSRC;
  }
  addr = p + 8;
  nul = memchr(addr, 0, DV_IPDISC_ADDR_LEN);
  if (nul == NULL) {
    return DVOICE_ERR_IPDISC_ADDRESS;
  }
  alen = (size_t)(nul - addr);
  if (alen >= sizeof(out->address) ||
      !dv_ipv4_literal_valid((const char *)addr, alen)) {
    return DVOICE_ERR_IPDISC_ADDRESS;
  }
  port = dv_get_u16(p + 72);
  if (port == 0) {
    return DVOICE_ERR_IPDISC_PORT;
  }
  memcpy(out->address, addr, alen);
  out->address[alen] = '\0';
  out->port = port;
  return 0;
}

void dv_ipdisc_retry_start(dv_ipdisc_retry *r, dvoice_tstamp now,
                           dvoice_tstamp interval, unsigned max_attempts) {
  r->interval = interval ? interval : DV_IPDISC_RETRY_INTERVAL;
  r->max_attempts = max_attempts ? max_attempts : DV_IPDISC_RETRY_MAX;
  r->attempts = 0;
  r->next = now;
}

void dv_ipdisc_retry_done(dv_ipdisc_retry *r) {
  r->next = DVOICE_TSTAMP_NONE;
}

dvoice_tstamp dv_ipdisc_retry_get_expiry(const dv_ipdisc_retry *r) {
  return r->next;
}

int dv_ipdisc_retry_handle_expiry(dv_ipdisc_retry *r, dvoice_tstamp now) {
  if (r->next == DVOICE_TSTAMP_NONE || now < r->next) {
    return 0;
  }
  if (r->attempts >= r->max_attempts) {
    r->next = DVOICE_TSTAMP_NONE;
    return DVOICE_ERR_TIMEOUT;
  }
  r->attempts++;
  /* Relative to now: a resend after a stall needs a full interval to be
   * answered before the next one. */
  r->next = now + r->interval;
  return 1;
}
