/* Unit tests for lib/rtp: header build/parse, extension elements, padding,
 * datagram classification, keepalive, IP discovery, retransmission, and
 * transport encryption in both rtpsize modes. The known-answer vectors come
 * from an independent implementation (tools/gen_rtp_vectors.py: OpenSSL
 * through pyca/cryptography, HChaCha20 in Python). */
#include "dvt.h"

#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>
#include <sodium.h>

#include "rtp/dv_rtp.h"
#include "rtp/dv_rtp_crypt.h"
#include "util/dv_rw.h"

/* ---- shared fixtures ---------------------------------------------------- */

/* Key bytes (i*7+3) mod 256, as in the generator. */
static void test_key(uint8_t key[32]) {
  for (int i = 0; i < 32; i++) {
    key[i] = (uint8_t)(i * 7 + 3);
  }
}

/* P=1 X=1 CC=2 M=1 PT=0x78, two CSRCs, a BEDE extension of 2 words,
 * payload "opus-frame-data", 3 bytes of padding. */
static const char *PLAIN_HEX =
    "b2f8123489abcdef11223344deadbeefcafef00dbede000210aa000090010000"
    "6f7075732d6672616d652d64617461000003";
static const char *AES_HEX =
    "b2f8123489abcdef11223344deadbeefcafef00dbede0002db5cc439cb5121fcbaa03e"
    "f46012053bf849c253d4bb7327312a583d378669d3a27e9a6b20afb085198e01020304";
static const char *XCHACHA_HEX =
    "b2f8123489abcdef11223344deadbeefcafef00dbede00021f8754913d22c9f34f865b"
    "e6818a5fa6d6bfbf93107dc193bd1dbeff9814cad00e65447eda7907ffdc7001020304";
static const char *BOT_AES_HEX =
    "8078fffffffffed80000abcd750fab78d76dbf1e4e59e8affab18cca94be9200000000";
static const char *BOT_XCHACHA_HEX =
    "8078fffffffffed80000abcdee5acd655eeab39f11ff340e6c80ad81f5475e00000000";

/* Backends to exercise for AES-256-GCM on this machine. */
static int aes_backends(dv_rtp_backend out[2]) {
  int n = 0;
  if (dv_rtp_sodium_aes_available()) {
    out[n++] = DV_RTP_BACKEND_SODIUM;
  }
  out[n++] = DV_RTP_BACKEND_MBEDTLS;
  return n;
}

/* ---- header ------------------------------------------------------------- */

static void test_hdr_opus_bytes(void **state) {
  dv_rtp_hdr h;
  uint8_t out[DV_RTP_HDR_MAX];
  static const uint8_t want[] = {0x80, 0x78, 0xab, 0xcd, 0x01, 0x02,
                                 0x03, 0x04, 0xde, 0xad, 0xbe, 0xef};
  (void)state;
  dv_rtp_hdr_opus(&h, 0xabcd, 0x01020304, 0xdeadbeef);
  assert_int_equal(dv_rtp_hdr_write(&h, out, sizeof(out)), 12);
  dvt_assert_bytes(out, 12, want, sizeof(want));
  assert_int_equal(dv_rtp_hdr_write(&h, out, 11), DVOICE_ERR_NOBUF);
}

static void test_hdr_variants_roundtrip(void **state) {
  (void)state;
  for (unsigned cc = 0; cc <= 15; cc++) {
    for (unsigned x = 0; x <= 1; x++) {
      for (unsigned pm = 0; pm < 4; pm++) {
        dv_rtp_hdr h, g;
        uint8_t out[DV_RTP_HDR_MAX];
        size_t want = 12 + 4 * cc + 4 * x;
        memset(&h, 0, sizeof(h));
        h.padding = (uint8_t)(pm & 1);
        h.marker = (uint8_t)(pm >> 1);
        h.extension = (uint8_t)x;
        h.csrc_count = (uint8_t)cc;
        h.payload_type = (uint8_t)(cc * 7 + 3);
        h.seq = (uint16_t)(0xfff0 + cc);
        h.timestamp = 0xfffffff0u + cc;
        h.ssrc = 0x01020304u * (cc + 1);
        for (unsigned i = 0; i < cc; i++) {
          h.csrc[i] = 0xa0000000u + i;
        }
        h.ext_profile = DV_RTP_EXT_ONE_BYTE;
        h.ext_words = (uint16_t)(cc + 1);
        assert_int_equal(dv_rtp_hdr_write(&h, out, sizeof(out)), (int)want);
        assert_int_equal(out[0] >> 6, 2);
        assert_int_equal(dv_rtp_hdr_parse(&g, out, want), 0);
        assert_int_equal(g.len, want);
        assert_int_equal(g.padding, h.padding);
        assert_int_equal(g.marker, h.marker);
        assert_int_equal(g.extension, x);
        assert_int_equal(g.csrc_count, cc);
        assert_int_equal(g.payload_type, h.payload_type);
        assert_int_equal(g.seq, h.seq);
        assert_int_equal(g.timestamp, h.timestamp);
        assert_int_equal(g.ssrc, h.ssrc);
        for (unsigned i = 0; i < cc; i++) {
          assert_int_equal(g.csrc[i], h.csrc[i]);
        }
        if (x) {
          assert_int_equal(g.ext_profile, DV_RTP_EXT_ONE_BYTE);
          assert_int_equal(g.ext_words, cc + 1);
        }
        /* Every shorter prefix is truncated, never over-read. */
        for (size_t l = 0; l < want; l++) {
          uint8_t *copy = malloc(l ? l : 1);
          memcpy(copy, out, l);
          assert_int_equal(dv_rtp_hdr_parse(&g, copy, l), DVOICE_ERR_TRUNCATED);
          free(copy);
        }
      }
    }
  }
}

static void test_hdr_rejects(void **state) {
  dv_rtp_hdr h;
  uint8_t p[12] = {0x40, 0x78};
  (void)state;
  assert_int_equal(dv_rtp_hdr_parse(&h, p, 12), DVOICE_ERR_MALFORMED);
  p[0] = 0xc0;
  assert_int_equal(dv_rtp_hdr_parse(&h, p, 12), DVOICE_ERR_MALFORMED);
  memset(&h, 0, sizeof(h));
  h.csrc_count = 16;
  assert_int_equal(dv_rtp_hdr_write(&h, p, 12), DVOICE_ERR_INVALID_ARGUMENT);
  h.csrc_count = 0;
  h.payload_type = 128;
  assert_int_equal(dv_rtp_hdr_write(&h, p, 12), DVOICE_ERR_INVALID_ARGUMENT);
  h.payload_type = 0x78;
  h.marker = 2;
  assert_int_equal(dv_rtp_hdr_write(&h, p, 12), DVOICE_ERR_INVALID_ARGUMENT);
}

static void test_parse_plain_ext_and_padding(void **state) {
  uint8_t *pkt;
  size_t len = dvt_unhex(PLAIN_HEX, &pkt);
  dv_rtp_rx rx;
  size_t pos = 0, dlen;
  uint8_t id;
  const uint8_t *data;
  (void)state;
  assert_int_equal(dv_rtp_parse_plain(&rx, pkt, len), 0);
  assert_int_equal(rx.hdr.len, 24);
  assert_int_equal(rx.hdr.csrc_count, 2);
  assert_int_equal(rx.hdr.csrc[1], 0xcafef00d);
  assert_int_equal(rx.hdr.marker, 1);
  assert_int_equal(rx.ext_len, 8);
  assert_int_equal(rx.pad_len, 3);
  assert_int_equal(rx.payload_len, 15);
  assert_memory_equal(rx.payload, "opus-frame-data", 15);
  /* Extension elements: id 1 (0xaa), padding, id 9 (0x01), padding. */
  assert_int_equal(dv_rtp_ext_next(rx.ext, rx.ext_len, &pos, &id, &data, &dlen),
                   1);
  assert_int_equal(id, 1);
  assert_int_equal(dlen, 1);
  assert_int_equal(data[0], 0xaa);
  assert_int_equal(dv_rtp_ext_next(rx.ext, rx.ext_len, &pos, &id, &data, &dlen),
                   1);
  assert_int_equal(id, 9);
  assert_int_equal(data[0], 0x01);
  assert_int_equal(dv_rtp_ext_next(rx.ext, rx.ext_len, &pos, &id, &data, &dlen),
                   0);

  /* Pad count 0, or larger than what follows the extension: malformed. */
  pkt[len - 1] = 0;
  assert_int_equal(dv_rtp_parse_plain(&rx, pkt, len), DVOICE_ERR_MALFORMED);
  pkt[len - 1] = 19; /* 15 + 3 + 1 > 18 bytes after the extension body */
  assert_int_equal(dv_rtp_parse_plain(&rx, pkt, len), DVOICE_ERR_MALFORMED);
  pkt[len - 1] = 18; /* the whole payload is padding: allowed, empty */
  assert_int_equal(dv_rtp_parse_plain(&rx, pkt, len), 0);
  assert_int_equal(rx.payload_len, 0);
  /* Extension body longer than the packet. */
  pkt[len - 1] = 3;
  pkt[23] = 0x10;
  assert_int_equal(dv_rtp_parse_plain(&rx, pkt, len), DVOICE_ERR_TRUNCATED);
  free(pkt);
}

static void test_ext_elements_edge_cases(void **state) {
  /* id 2 with 16 bytes, then a stop (id 15). */
  uint8_t body[20] = {0x2f};
  uint8_t cut[3] = {0x12, 0xaa, 0xbb}; /* id 1 claims 3 bytes, 2 left */
  size_t pos = 0, dlen;
  uint8_t id;
  const uint8_t *data;
  (void)state;
  body[17] = 0xf0;
  body[18] = 0x11; /* never reached: after the stop */
  assert_int_equal(dv_rtp_ext_next(body, sizeof(body), &pos, &id, &data, &dlen),
                   1);
  assert_int_equal(id, 2);
  assert_int_equal(dlen, 16);
  assert_int_equal(dv_rtp_ext_next(body, sizeof(body), &pos, &id, &data, &dlen),
                   0);
  pos = 0;
  assert_int_equal(dv_rtp_ext_next(cut, sizeof(cut), &pos, &id, &data, &dlen),
                   DVOICE_ERR_TRUNCATED);
  pos = 0;
  cut[0] = 0x05; /* ID 0 with a length: reserved */
  assert_int_equal(dv_rtp_ext_next(cut, sizeof(cut), &pos, &id, &data, &dlen),
                   DVOICE_ERR_MALFORMED);
  assert_int_equal(pos, sizeof(cut));
}

/* ---- classification ----------------------------------------------------- */

static void test_classify(void **state) {
  uint8_t ipd[74] = {0x00, 0x02, 0x00, 70};
  uint8_t ka[8];
  uint8_t rr[8] = {0x80, 0xc9, 0x00, 0x01, 1, 2, 3, 4};
  uint8_t sr[28] = {0x80, 0xc8, 0x00, 0x06};
  uint8_t rtp[20] = {0x90, 0x78};
  uint8_t rtpm[20] = {0x80, 0xf8};
  uint8_t vid[20] = {0x80, 0x65};
  uint8_t junk[20] = {0x00, 0x01};
  (void)state;
  assert_int_equal(dv_udp_classify(ipd, 74), DV_UDP_IPDISC);
  assert_int_equal(dv_udp_classify(ipd, 73), DV_UDP_UNKNOWN);
  dv_keepalive_build(ka, 7);
  assert_int_equal(dv_udp_classify(ka, 8), DV_UDP_KEEPALIVE);
  dv_keepalive_build(ka, 0xc980c980u); /* looks like RTCP, length wrong */
  assert_int_equal(dv_udp_classify(ka, 8), DV_UDP_KEEPALIVE);
  assert_int_equal(dv_udp_classify(rr, 8), DV_UDP_RTCP);
  assert_int_equal(dv_udp_classify(sr, 28), DV_UDP_RTCP);
  assert_int_equal(dv_udp_classify(rtp, 20), DV_UDP_RTP_AUDIO);
  assert_int_equal(dv_udp_classify(rtpm, 20), DV_UDP_RTP_AUDIO);
  assert_int_equal(dv_udp_classify(vid, 20), DV_UDP_RTP_OTHER);
  assert_int_equal(dv_udp_classify(rtp, 11), DV_UDP_UNKNOWN);
  assert_int_equal(dv_udp_classify(junk, 20), DV_UDP_UNKNOWN);
  assert_int_equal(dv_udp_classify(junk, 0), DV_UDP_UNKNOWN);
  assert_string_equal(dv_udp_kind_name(DV_UDP_RTCP), "rtcp");
}

/* ---- keepalive ---------------------------------------------------------- */

static void test_keepalive_packet_and_schedule(void **state) {
  dv_keepalive k;
  uint8_t out[8];
  uint32_t ctr;
  static const uint8_t want[8] = {0x04, 0x03, 0x02, 0x01, 0, 0, 0, 0};
  const dvoice_tstamp t0 = 1000 * DVOICE_SECONDS;
  (void)state;
  dv_keepalive_build(out, 0x01020304);
  dvt_assert_bytes(out, 8, want, 8);
  assert_int_equal(dv_keepalive_parse(out, 8, &ctr), 0);
  assert_int_equal(ctr, 0x01020304);
  assert_int_equal(dv_keepalive_parse(out, 7, &ctr), DVOICE_ERR_MALFORMED);

  dv_keepalive_start(&k, t0, 0);
  assert_true(dv_keepalive_get_expiry(&k) == t0);
  assert_int_equal(dv_keepalive_handle_expiry(&k, t0, out), 1);
  assert_int_equal(out[0], 0);
  assert_true(dv_keepalive_get_expiry(&k) == t0 + 5 * DVOICE_SECONDS);
  assert_int_equal(dv_keepalive_handle_expiry(&k, t0 + DVOICE_SECONDS, out), 0);
  /* 3 ms late: the grid is kept. */
  assert_int_equal(dv_keepalive_handle_expiry(
                       &k, t0 + 5 * DVOICE_SECONDS + 3 * DVOICE_MS, out),
                   1);
  assert_int_equal(out[0], 1);
  assert_true(dv_keepalive_get_expiry(&k) == t0 + 10 * DVOICE_SECONDS);
  /* A 12 s stall: one packet, the missed grid points are skipped. */
  assert_int_equal(
      dv_keepalive_handle_expiry(&k, t0 + 22 * DVOICE_SECONDS, out), 1);
  assert_int_equal(out[0], 2);
  assert_true(dv_keepalive_get_expiry(&k) == t0 + 25 * DVOICE_SECONDS);
  assert_int_equal(
      dv_keepalive_handle_expiry(&k, t0 + 22 * DVOICE_SECONDS, out), 0);
  dv_keepalive_stop(&k);
  assert_true(dv_keepalive_get_expiry(&k) == DVOICE_TSTAMP_NONE);
  assert_int_equal(dv_keepalive_handle_expiry(&k, UINT64_MAX - 1, out), 0);
}

/* ---- IP discovery ------------------------------------------------------- */

static void make_response(uint8_t p[74], uint32_t ssrc, const char *addr,
                          uint16_t port) {
  memset(p, 0, 74);
  dv_put_u16(p, 2);
  dv_put_u16(p + 2, 70);
  dv_put_u32(p + 4, ssrc);
  memcpy(p + 8, addr, strlen(addr));
  dv_put_u16(p + 72, port);
}

static void test_ipdisc_request_bytes(void **state) {
  uint8_t out[74];
  uint8_t want[74] = {0x00, 0x01, 0x00, 0x46, 0x12, 0x34, 0x56, 0x78};
  (void)state;
  memset(out, 0xee, sizeof(out));
  dv_ipdisc_build_request(out, 0x12345678);
  dvt_assert_bytes(out, 74, want, 74);
}

static void test_ipdisc_response_valid(void **state) {
  uint8_t p[74];
  dv_ipdisc_result r;
  (void)state;
  make_response(p, 0xabcdef01, "203.0.113.7", 50123);
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 0xabcdef01, &r), 0);
  assert_string_equal(r.address, "203.0.113.7");
  assert_int_equal(r.port, 50123);
  /* Longest and shortest literals; garbage after the NUL is ignored. */
  make_response(p, 1, "255.255.255.255", 1);
  p[30] = 'x';
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 1, &r), 0);
  assert_string_equal(r.address, "255.255.255.255");
  make_response(p, 1, "0.0.0.0", 65535);
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 1, &r), 0);
  assert_string_equal(r.address, "0.0.0.0");
  assert_int_equal(r.port, 65535);
}

static void test_ipdisc_response_errors(void **state) {
  uint8_t p[80];
  dv_ipdisc_result r;
  static const char *bad[] = {
      "",         "1.2.3",    "1.2.3.4.5",  "256.1.1.1",   "1.2.3.04",
      "01.2.3.4", "1..2.3",   " 1.2.3.4",   "1.2.3.4 ",    "+1.2.3.4",
      "1.2.3.-4", "a.b.c.d",  "::1",        "1.2.3.4:80",  "1000.1.1.1",
      "1.2.3.4.", ".1.2.3.4", "1.2.3.4444", "example.com", "1.2.3.0x1",
  };
  (void)state;
  memset(&r, 0x5a, sizeof(r));
  make_response(p, 9, "1.2.3.4", 80);
  assert_int_equal(dv_ipdisc_parse_response(p, 73, 9, &r),
                   DVOICE_ERR_TRUNCATED);
  assert_int_equal(dv_ipdisc_parse_response(p, 0, 9, &r), DVOICE_ERR_TRUNCATED);
  assert_int_equal(dv_ipdisc_parse_response(p, 75, 9, &r), DVOICE_ERR_TRAILING);
  p[1] = 1;
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 9, &r),
                   DVOICE_ERR_IPDISC_TYPE);
  p[1] = 2;
  p[3] = 74;
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 9, &r),
                   DVOICE_ERR_IPDISC_LENGTH);
  p[3] = 70;
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 10, &r),
                   DVOICE_ERR_IPDISC_SSRC);
  /* No NUL anywhere in the 64-byte field. */
  memset(p + 8, '1', 64);
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 9, &r),
                   DVOICE_ERR_IPDISC_ADDRESS);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    make_response(p, 9, bad[i], 80);
    assert_int_equal(dv_ipdisc_parse_response(p, 74, 9, &r),
                     DVOICE_ERR_IPDISC_ADDRESS);
    assert_false(dv_ipv4_literal_valid(bad[i], strlen(bad[i])));
  }
  make_response(p, 9, "1.2.3.4", 0);
  assert_int_equal(dv_ipdisc_parse_response(p, 74, 9, &r),
                   DVOICE_ERR_IPDISC_PORT);
  /* |r| untouched by every failure. */
  assert_int_equal((uint8_t)r.address[0], 0x5a);
  assert_true(dvoice_strerror(DVOICE_ERR_IPDISC_PORT)[0] != 'u');
}

static void test_ipdisc_retry(void **state) {
  dv_ipdisc_retry r;
  const dvoice_tstamp t0 = 77 * DVOICE_SECONDS;
  int sends = 0;
  (void)state;
  dv_ipdisc_retry_start(&r, t0, 0, 3);
  assert_true(dv_ipdisc_retry_get_expiry(&r) == t0);
  for (int i = 0; i < 3; i++) {
    dvoice_tstamp due = dv_ipdisc_retry_get_expiry(&r);
    assert_true(due == t0 + (dvoice_tstamp)i * DVOICE_SECONDS);
    assert_int_equal(dv_ipdisc_retry_handle_expiry(&r, due - 1), 0);
    assert_int_equal(dv_ipdisc_retry_handle_expiry(&r, due), 1);
    sends++;
  }
  assert_int_equal(sends, 3);
  assert_int_equal(dv_ipdisc_retry_handle_expiry(&r, t0 + 3 * DVOICE_SECONDS),
                   DVOICE_ERR_TIMEOUT);
  assert_true(dv_ipdisc_retry_get_expiry(&r) == DVOICE_TSTAMP_NONE);
  assert_int_equal(dv_ipdisc_retry_handle_expiry(&r, UINT64_MAX - 1), 0);

  dv_ipdisc_retry_start(&r, t0, 0, 0);
  assert_int_equal(r.max_attempts, DV_IPDISC_RETRY_MAX);
  assert_int_equal(dv_ipdisc_retry_handle_expiry(&r, t0), 1);
  dv_ipdisc_retry_done(&r);
  assert_true(dv_ipdisc_retry_get_expiry(&r) == DVOICE_TSTAMP_NONE);
}

/* ---- transport encryption ----------------------------------------------- */

static void test_mode_names(void **state) {
  static const char *offered[] = {"xsalsa20_poly1305",
                                  "aead_xchacha20_poly1305_rtpsize",
                                  "aead_aes256_gcm_rtpsize", NULL};
  (void)state;
  assert_int_equal(dv_rtp_mode_choose(offered, 4), DV_RTP_MODE_AES256GCM);
  assert_int_equal(dv_rtp_mode_choose(offered, 2), DV_RTP_MODE_XCHACHA20);
  assert_int_equal(dv_rtp_mode_choose(offered, 1), DV_RTP_MODE_NONE);
  assert_int_equal(dv_rtp_mode_from_name("aead_aes256_gcm", 15),
                   DV_RTP_MODE_NONE);
  assert_string_equal(dv_rtp_mode_name(DV_RTP_MODE_XCHACHA20),
                      "aead_xchacha20_poly1305_rtpsize");
  assert_null(dv_rtp_mode_name(DV_RTP_MODE_NONE));
}

/* Seals PLAIN with counter 0x01020304 and compares with |want_hex|. */
static void check_kat(dv_rtp_mode mode, dv_rtp_backend be,
                      const char *want_hex) {
  uint8_t key[32], *plain, *want, out[128], dec[128];
  size_t plen = dvt_unhex(PLAIN_HEX, &plain);
  size_t wlen = dvt_unhex(want_hex, &want);
  size_t olen = 0;
  dv_rtp_crypt c;
  dv_rtp_rx rx;
  test_key(key);
  assert_int_equal(dv_rtp_crypt_init(&c, mode, key, be), 0);
  assert_int_equal(
      dv_rtp_seal_nonce(&c, 0x01020304, plain, plen, out, sizeof(out), &olen),
      0);
  dvt_assert_bytes(out, olen, want, wlen);
  /* And the independent packet opens. */
  assert_int_equal(dv_rtp_open(&c, want, wlen, dec, sizeof(dec), &rx), 0);
  assert_int_equal(rx.nonce, 0x01020304);
  assert_int_equal(rx.hdr.ssrc, 0x11223344);
  assert_int_equal(rx.hdr.csrc[0], 0xdeadbeef);
  assert_int_equal(rx.ext_len, 8);
  assert_memory_equal(rx.ext, plain + 24, 8);
  assert_int_equal(rx.pad_len, 3);
  assert_int_equal(rx.payload_len, 15);
  assert_memory_equal(rx.payload, "opus-frame-data", 15);
  dv_rtp_crypt_clear(&c);
  free(plain);
  free(want);
}

static void test_kat_aes256gcm(void **state) {
  dv_rtp_backend be[2];
  int n = aes_backends(be);
  (void)state;
  for (int i = 0; i < n; i++) {
    check_kat(DV_RTP_MODE_AES256GCM, be[i], AES_HEX);
  }
  check_kat(DV_RTP_MODE_AES256GCM, DV_RTP_BACKEND_AUTO, AES_HEX);
}

static void test_kat_xchacha20(void **state) {
  (void)state;
  check_kat(DV_RTP_MODE_XCHACHA20, DV_RTP_BACKEND_AUTO, XCHACHA_HEX);
}

/* The bot fast path: header built in place, counter 0, the 5th silence
 * frame of a stream whose seq and timestamp are about to wrap. */
static void test_kat_bot_packet(void **state) {
  static const uint8_t silence[3] = {0xf8, 0xff, 0xfe};
  dv_rtp_backend be[2];
  int n = aes_backends(be);
  uint8_t key[32], *want, out[64];
  size_t wlen, olen;
  dv_rtp_crypt c;
  (void)state;
  test_key(key);
  for (int i = 0; i <= n; i++) {
    int xc = i == n;
    wlen = dvt_unhex(xc ? BOT_XCHACHA_HEX : BOT_AES_HEX, &want);
    assert_int_equal(dv_rtp_crypt_init(
                         &c, xc ? DV_RTP_MODE_XCHACHA20 : DV_RTP_MODE_AES256GCM,
                         key, xc ? DV_RTP_BACKEND_AUTO : be[i]),
                     0);
    assert_int_equal(dv_rtp_seal_opus(&c, 65535, 4294967000u, 0xabcd, silence,
                                      3, out, sizeof(out), &olen),
                     0);
    dvt_assert_bytes(out, olen, want, wlen);
    assert_int_equal(olen, 3 + DV_RTP_SEND_OVERHEAD);
    assert_int_equal(c.next_nonce, 1);
    /* The next packet uses counter 1 (big-endian, last 4 bytes). */
    assert_int_equal(dv_rtp_seal_opus(&c, 0, 960, 0xabcd, silence, 3, out,
                                      sizeof(out), &olen),
                     0);
    assert_int_equal(dv_get_u32(out + olen - 4), 1);
    /* Too small an output buffer. */
    assert_int_equal(dv_rtp_seal_opus(&c, 0, 0, 0, silence, 3, out,
                                      3 + DV_RTP_SEND_OVERHEAD - 1, &olen),
                     DVOICE_ERR_NOBUF);
    dv_rtp_crypt_clear(&c);
    free(want);
  }
}

/* AES-GCM: libsodium and mbedTLS agree on random packets of every size. */
static void test_aes_backends_agree(void **state) {
  uint8_t key[32], pkt[300], a[400], b[400];
  dv_rtp_crypt cs, cm;
  size_t la, lb;
  (void)state;
  randombytes_buf(key, sizeof(key));
  if (!dv_rtp_sodium_aes_available()) {
    /* No AES-NI: nothing to compare against; the sodium backend must then
     * refuse rather than run (cmocka's skip() would count as a failure). */
    print_message("# no AES-NI: checking that the sodium backend refuses\n");
    assert_int_equal(dv_rtp_crypt_init(&cs, DV_RTP_MODE_AES256GCM, key,
                                       DV_RTP_BACKEND_SODIUM),
                     DVOICE_ERR_UNSUPPORTED);
    return;
  }
  assert_int_equal(
      dv_rtp_crypt_init(&cs, DV_RTP_MODE_AES256GCM, key, DV_RTP_BACKEND_SODIUM),
      0);
  assert_int_equal(dv_rtp_crypt_init(&cm, DV_RTP_MODE_AES256GCM, key,
                                     DV_RTP_BACKEND_MBEDTLS),
                   0);
  for (size_t len = 12; len < sizeof(pkt); len++) {
    uint32_t ctr = (uint32_t)len * 2654435761u;
    randombytes_buf(pkt, len);
    pkt[0] = 0x80; /* no CSRC, no extension */
    assert_int_equal(dv_rtp_seal_nonce(&cs, ctr, pkt, len, a, sizeof(a), &la),
                     0);
    assert_int_equal(dv_rtp_seal_nonce(&cm, ctr, pkt, len, b, sizeof(b), &lb),
                     0);
    dvt_assert_bytes(a, la, b, lb);
  }
  dv_rtp_crypt_clear(&cs);
  dv_rtp_crypt_clear(&cm);
}

/* XChaCha20: libsodium against HChaCha20 + mbedTLS ChaCha20-Poly1305. */
static void test_xchacha_second_path(void **state) {
  static const uint8_t hk[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
  static const uint8_t hn[16] = {0, 0, 0, 0x09, 0,    0,    0,    0x4a,
                                 0, 0, 0, 0,    0x31, 0x41, 0x59, 0x27};
  uint8_t *want_h;
  uint8_t sub[32], key[32], pkt[200], a[300], b[300];
  size_t la;
  dv_rtp_crypt c;
  (void)state;
  /* draft-irtf-cfrg-xchacha-03 2.2.1. */
  dvt_unhex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc",
            &want_h);
  crypto_core_hchacha20(sub, hn, hk, NULL);
  dvt_assert_bytes(sub, 32, want_h, 32);
  free(want_h);

  randombytes_buf(key, sizeof(key));
  assert_int_equal(
      dv_rtp_crypt_init(&c, DV_RTP_MODE_XCHACHA20, key, DV_RTP_BACKEND_AUTO),
      0);
  for (size_t len = 12; len < sizeof(pkt); len += 7) {
    uint32_t ctr = (uint32_t)len * 40503u;
    uint8_t n24[24] = {0}, n12[12] = {0};
    mbedtls_chachapoly_context cp;
    randombytes_buf(pkt, len);
    pkt[0] = 0x80;
    assert_int_equal(dv_rtp_seal_nonce(&c, ctr, pkt, len, a, sizeof(a), &la),
                     0);
    /* Second path: subkey = HChaCha20(key, nonce[0..16)), then IETF
     * ChaCha20-Poly1305 with nonce 0^4 || nonce[16..24). */
    dv_put_u32(n24, ctr);
    crypto_core_hchacha20(sub, n24, key, NULL);
    memcpy(n12 + 4, n24 + 16, 8);
    memcpy(b, pkt, 12);
    mbedtls_chachapoly_init(&cp);
    assert_int_equal(mbedtls_chachapoly_setkey(&cp, sub), 0);
    assert_int_equal(mbedtls_chachapoly_encrypt_and_tag(&cp, len - 12, n12, pkt,
                                                        12, pkt + 12, b + 12,
                                                        b + len),
                     0);
    mbedtls_chachapoly_free(&cp);
    dv_put_u32(b + len + 16, ctr);
    dvt_assert_bytes(a, la, b, len + 20);
  }
  dv_rtp_crypt_clear(&c);
}

/* Builds a plaintext packet with |cc| CSRCs, an extension of |words| words
 * if |x|, a payload of |plen| bytes and |pad| bytes of padding. */
static size_t build_plain(uint8_t *out, unsigned cc, int x, unsigned words,
                          size_t plen, unsigned pad) {
  dv_rtp_hdr h;
  size_t n;
  memset(&h, 0, sizeof(h));
  h.csrc_count = (uint8_t)cc;
  h.extension = (uint8_t)x;
  h.padding = pad ? 1 : 0;
  h.payload_type = DV_RTP_PT_OPUS;
  h.seq = 42;
  h.timestamp = 4242;
  h.ssrc = 0x5eed;
  for (unsigned i = 0; i < cc; i++) {
    h.csrc[i] = 1000 + i;
  }
  h.ext_profile = DV_RTP_EXT_ONE_BYTE;
  h.ext_words = (uint16_t)words;
  n = (size_t)dv_rtp_hdr_write(&h, out, DV_RTP_HDR_MAX);
  if (x) {
    for (unsigned i = 0; i < 4 * words; i++) {
      out[n++] = (uint8_t)(0xe0 + i);
    }
  }
  for (size_t i = 0; i < plen; i++) {
    out[n++] = (uint8_t)(i * 31 + 7);
  }
  for (unsigned i = 0; i < pad; i++) {
    out[n++] = i + 1 == pad ? (uint8_t)pad : 0;
  }
  return n;
}

static void roundtrip_shapes(dv_rtp_mode mode, dv_rtp_backend be) {
  uint8_t key[32], plain[400], sealed[450], dec[450];
  dv_rtp_crypt c;
  test_key(key);
  assert_int_equal(dv_rtp_crypt_init(&c, mode, key, be), 0);
  for (unsigned cc = 0; cc <= 15; cc += 5) {
    for (int x = 0; x <= 1; x++) {
      for (unsigned pad = 0; pad <= 4; pad += 2) {
        for (size_t plen = 0; plen <= 40; plen += 20) {
          unsigned words = x ? 3 : 0;
          size_t len = build_plain(plain, cc, x, words, plen, pad);
          size_t hl = 12 + 4 * cc + 4u * (unsigned)x, sl;
          dv_rtp_rx rx;
          assert_int_equal(
              dv_rtp_seal(&c, plain, len, sealed, sizeof(sealed), &sl), 0);
          assert_int_equal(sl, len + 20);
          /* The clear header is exactly the AAD; the extension body is
           * encrypted along with the payload. */
          assert_memory_equal(sealed, plain, hl);
          if (x) {
            assert_memory_not_equal(sealed + hl, plain + hl, 4 * words);
          }
          assert_int_equal(dv_rtp_open(&c, sealed, sl, dec, sizeof(dec), &rx),
                           0);
          assert_int_equal(rx.hdr.len, hl);
          assert_int_equal(rx.hdr.csrc_count, cc);
          assert_int_equal(rx.ext_len, 4 * words);
          assert_int_equal(rx.pad_len, pad);
          assert_int_equal(rx.payload_len, plen);
          assert_memory_equal(rx.payload, plain + hl + 4 * words, plen);
          assert_int_equal(rx.nonce, c.next_nonce - 1);
          /* Output buffer one byte short of the body. */
          if (len > hl) {
            assert_int_equal(
                dv_rtp_open(&c, sealed, sl, dec, len - hl - 1, &rx),
                DVOICE_ERR_NOBUF);
          }
        }
      }
    }
  }
  dv_rtp_crypt_clear(&c);
}

static void test_roundtrip_csrc_ext_padding(void **state) {
  dv_rtp_backend be[2];
  int n = aes_backends(be);
  (void)state;
  for (int i = 0; i < n; i++) {
    roundtrip_shapes(DV_RTP_MODE_AES256GCM, be[i]);
  }
  roundtrip_shapes(DV_RTP_MODE_XCHACHA20, DV_RTP_BACKEND_AUTO);
}

/* Every single-bit flip anywhere in the packet is rejected. */
static void tamper_all(dv_rtp_mode mode, dv_rtp_backend be) {
  uint8_t key[32], plain[100], sealed[150], dec[150];
  dv_rtp_crypt c, other;
  size_t len = build_plain(plain, 2, 1, 2, 30, 3), sl;
  dv_rtp_rx rx;
  test_key(key);
  assert_int_equal(dv_rtp_crypt_init(&c, mode, key, be), 0);
  assert_int_equal(dv_rtp_seal(&c, plain, len, sealed, sizeof(sealed), &sl), 0);
  for (size_t i = 0; i < sl; i++) {
    for (int bit = 0; bit < 8; bit++) {
      int rv;
      sealed[i] ^= (uint8_t)(1 << bit);
      rv = dv_rtp_open(&c, sealed, sl, dec, sizeof(dec), &rx);
      if (i == 0) {
        /* V/P/X/CC: may also change the header's shape. */
        assert_true(rv == DVOICE_ERR_CRYPTO || rv == DVOICE_ERR_MALFORMED ||
                    rv == DVOICE_ERR_TRUNCATED);
      } else {
        assert_int_equal(rv, DVOICE_ERR_CRYPTO);
      }
      sealed[i] ^= (uint8_t)(1 << bit);
    }
  }
  assert_int_equal(dv_rtp_open(&c, sealed, sl, dec, sizeof(dec), &rx), 0);
  /* Truncation: every shorter length fails cleanly. */
  for (size_t l = 0; l < sl; l++) {
    int rv = dv_rtp_open(&c, sealed, l, dec, sizeof(dec), &rx);
    assert_true(rv == DVOICE_ERR_TRUNCATED || rv == DVOICE_ERR_CRYPTO);
  }
  /* Another key. */
  key[0] ^= 1;
  assert_int_equal(dv_rtp_crypt_init(&other, mode, key, be), 0);
  assert_int_equal(dv_rtp_open(&other, sealed, sl, dec, sizeof(dec), &rx),
                   DVOICE_ERR_CRYPTO);
  dv_rtp_crypt_clear(&other);
  dv_rtp_crypt_clear(&c);
}

static void test_tampered_rejected(void **state) {
  dv_rtp_backend be[2];
  int n = aes_backends(be);
  (void)state;
  for (int i = 0; i < n; i++) {
    tamper_all(DV_RTP_MODE_AES256GCM, be[i]);
  }
  tamper_all(DV_RTP_MODE_XCHACHA20, DV_RTP_BACKEND_AUTO);
}

static void test_crypt_state_errors(void **state) {
  uint8_t key[32] = {0}, pkt[32] = {0x80, 0x78}, out[64];
  size_t ol;
  dv_rtp_crypt c;
  dv_rtp_rx rx;
  (void)state;
  assert_int_equal(dv_rtp_crypt_init(&c, DV_RTP_MODE_NONE, key, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_rtp_seal(&c, pkt, 20, out, sizeof(out), &ol),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_rtp_open(&c, pkt, 32, out, sizeof(out), &rx),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_rtp_crypt_init(&c, DV_RTP_MODE_XCHACHA20, key, 7),
                   DVOICE_ERR_INVALID_ARGUMENT);
  if (!dv_rtp_sodium_aes_available()) {
    assert_int_equal(dv_rtp_crypt_init(&c, DV_RTP_MODE_AES256GCM, key,
                                       DV_RTP_BACKEND_SODIUM),
                     DVOICE_ERR_UNSUPPORTED);
  }
  assert_int_equal(
      dv_rtp_crypt_init(&c, DV_RTP_MODE_XCHACHA20, key, DV_RTP_BACKEND_AUTO),
      0);
  /* Not RTP / output too small. */
  pkt[0] = 0x40;
  assert_int_equal(dv_rtp_seal(&c, pkt, 20, out, sizeof(out), &ol),
                   DVOICE_ERR_MALFORMED);
  pkt[0] = 0x80;
  assert_int_equal(dv_rtp_seal(&c, pkt, 20, out, 39, &ol), DVOICE_ERR_NOBUF);
  assert_int_equal(c.next_nonce, 0);
  /* The counter space of one key is never reused. */
  c.next_nonce = 0xffffffffu;
  c.sealed = 0xffffffffu;
  assert_int_equal(dv_rtp_seal(&c, pkt, 20, out, sizeof(out), &ol), 0);
  assert_int_equal(dv_get_u32(out + ol - 4), 0xffffffffu);
  assert_int_equal(dv_rtp_seal(&c, pkt, 20, out, sizeof(out), &ol),
                   DVOICE_ERR_TOO_LARGE);
  assert_int_equal(dv_rtp_seal_opus(&c, 0, 0, 0, pkt, 3, out, sizeof(out), &ol),
                   DVOICE_ERR_TOO_LARGE);
  dv_rtp_crypt_clear(&c);
  assert_int_equal(c.key[0] | c.key[31], 0);
  assert_int_equal(c.mode, DV_RTP_MODE_NONE);
}

static void test_rtcp_roundtrip_and_tamper(void **state) {
  /* A sender report: header, sender SSRC, 20 bytes of sender info. */
  uint8_t sr[28] = {0x80, 0xc8, 0x00, 0x06, 0x11, 0x22, 0x33, 0x44};
  uint8_t key[32], sealed[64], out[64];
  size_t sl, ol;
  dv_rtp_crypt c;
  dv_rtp_backend be[2];
  int n = aes_backends(be);
  (void)state;
  test_key(key);
  for (int i = 0; i < 20; i++) {
    sr[8 + i] = (uint8_t)(i + 1);
  }
  for (int m = 0; m <= n; m++) {
    int xc = m == n;
    assert_int_equal(dv_rtp_crypt_init(
                         &c, xc ? DV_RTP_MODE_XCHACHA20 : DV_RTP_MODE_AES256GCM,
                         key, xc ? DV_RTP_BACKEND_AUTO : be[m]),
                     0);
    assert_int_equal(
        dv_rtcp_seal_nonce(&c, 77, sr, sizeof(sr), sealed, sizeof(sealed), &sl),
        0);
    assert_int_equal(sl, sizeof(sr) + 20);
    assert_memory_equal(sealed, sr, 8);
    assert_memory_not_equal(sealed + 8, sr + 8, 20);
    assert_int_equal(dv_udp_classify(sealed, sl), DV_UDP_RTCP);
    assert_int_equal(dv_rtcp_open(&c, sealed, sl, out, sizeof(out), &ol), 0);
    dvt_assert_bytes(out, ol, sr, sizeof(sr));
    assert_int_equal(dv_rtcp_open(&c, sealed, sl, out, ol - 1, &ol),
                     DVOICE_ERR_NOBUF);
    for (size_t k = 1; k < sl; k++) {
      sealed[k] ^= 0x10;
      assert_int_equal(dv_rtcp_open(&c, sealed, sl, out, sizeof(out), &ol),
                       DVOICE_ERR_CRYPTO);
      sealed[k] ^= 0x10;
    }
    assert_int_equal(dv_rtcp_open(&c, sealed, 27, out, sizeof(out), &ol),
                     DVOICE_ERR_TRUNCATED);
    dv_rtp_crypt_clear(&c);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hdr_opus_bytes),
      cmocka_unit_test(test_hdr_variants_roundtrip),
      cmocka_unit_test(test_hdr_rejects),
      cmocka_unit_test(test_parse_plain_ext_and_padding),
      cmocka_unit_test(test_ext_elements_edge_cases),
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_keepalive_packet_and_schedule),
      cmocka_unit_test(test_ipdisc_request_bytes),
      cmocka_unit_test(test_ipdisc_response_valid),
      cmocka_unit_test(test_ipdisc_response_errors),
      cmocka_unit_test(test_ipdisc_retry),
      cmocka_unit_test(test_mode_names),
      cmocka_unit_test(test_kat_aes256gcm),
      cmocka_unit_test(test_kat_xchacha20),
      cmocka_unit_test(test_kat_bot_packet),
      cmocka_unit_test(test_aes_backends_agree),
      cmocka_unit_test(test_xchacha_second_path),
      cmocka_unit_test(test_roundtrip_csrc_ext_padding),
      cmocka_unit_test(test_tampered_rejected),
      cmocka_unit_test(test_crypt_state_errors),
      cmocka_unit_test(test_rtcp_roundtrip_and_tamper),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
