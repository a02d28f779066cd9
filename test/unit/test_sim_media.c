/* Unit tests for the simulator's UDP media core (test/sim/sim_media). */
#include "dvt.h"

#include <jansson.h>
#include <opus/opus.h>

#include "../sim/sim_crypt.h"
#include "../sim/sim_media.h"
#include "../sim/sim_vgw.h"
#include "audio/dv_pacer.h"
#include "rtp/dv_rtp.h"
#include "rtp/dv_rtp_crypt.h"
#include "util/dv_rw.h"

#define SERVER "41771983423143937"
#define USER_A "104694319306248192"
#define USER_B "104694319306248193"
#define MS DVOICE_MS

static const char *const AES = "aead_aes256_gcm_rtpsize";
static const char *const XCHACHA = "aead_xchacha20_poly1305_rtpsize";

typedef struct fx {
  dvt_env e;
  dv_sim_vgw *vgw;
  dv_sim_media *m;
  dv_sim_session *a, *b;
  dv_sim_vgw_conn *ca, *cb;
  dv_sim_addr addr_a, addr_b;
} fx;

static void fx_init(fx *f, const dv_sim_media_settings *ms) {
  memset(f, 0, sizeof(*f));
  dvt_env_init(&f->e);
  assert_int_equal(dv_sim_vgw_new(&f->e.env, NULL, &f->vgw), 0);
  dv_sim_vgw_set_udp(f->vgw, "127.0.0.1", 50010);
  assert_int_equal(dv_sim_media_new(&f->e.env, f->vgw, ms, &f->m), 0);
  assert_int_equal(
      dv_sim_vgw_add_session(f->vgw, SERVER, USER_A, "sess-a", "tok-a", &f->a),
      0);
  assert_int_equal(
      dv_sim_vgw_add_session(f->vgw, SERVER, USER_B, "sess-b", "tok-b", &f->b),
      0);
  f->addr_a.ip = 0x0a010203u; /* 10.1.2.3 */
  f->addr_a.port = 0xabcd;
  f->addr_b.ip = 0x7f000001u;
  f->addr_b.port = 40001;
}

static void fx_free(fx *f) {
  dv_sim_media_free(f->m);
  dv_sim_vgw_free(f->vgw);
  dvt_env_free(&f->e);
}

static void drain_ws(dv_sim_vgw_conn *c) {
  dv_sim_out o;
  while (dv_sim_vgw_conn_pop(c, &o)) {
    dv_buf_free(&o.data);
  }
}

static int sendf(dv_sim_vgw_conn *c, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)buf, (size_t)n, 0);
}

/* Runs a client through the gateway: identify, then (if |mode|) select,
 * then (if |speak|) op 5. */
static dv_sim_vgw_conn *join(fx *f, dv_sim_session *s, const char *mode,
                             int speak) {
  dv_sim_vgw_conn *c;
  assert_int_equal(dv_sim_vgw_conn_new(f->vgw, 0, &c), 0);
  assert_int_equal(
      sendf(c,
            "{\"op\":0,\"d\":{\"server_id\":\"%s\",\"user_id\":\"%s\","
            "\"session_id\":\"%s\",\"token\":\"%s\","
            "\"max_dave_protocol_version\":1}}",
            s->server_id, s->user_id, s->session_id, s->token),
      0);
  if (mode != NULL) {
    assert_int_equal(sendf(c,
                           "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{"
                           "\"address\":\"10.1.2.3\",\"port\":43981,"
                           "\"mode\":\"%s\"}}}",
                           mode),
                     0);
  }
  if (speak) {
    assert_int_equal(sendf(c,
                           "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,"
                           "\"ssrc\":%u}}",
                           s->ssrc),
                     0);
  }
  drain_ws(c);
  assert_int_equal(c->state, DV_SIM_CONN_BOUND);
  return c;
}

static void discover(fx *f, dv_sim_session *s, const dv_sim_addr *from) {
  uint8_t req[74];
  dv_sim_dgram d;
  memset(req, 0, sizeof(req));
  dv_put_u16(req, 1);
  dv_put_u16(req + 2, 70);
  dv_put_u32(req + 4, s->ssrc);
  assert_int_equal(dv_sim_media_recv(f->m, req, sizeof(req), from, 0), 0);
  assert_int_equal(dv_sim_media_pop(f->m, &d), 1);
  dv_buf_free(&d.data);
}

/* Builds an encrypted RTP packet the way a client sends it. */
static void build_pkt(dv_buf *out, const dv_sim_session *s, uint16_t seq,
                      uint32_t ts, uint32_t ssrc, const uint8_t *payload,
                      size_t plen, uint32_t counter) {
  uint8_t hdr[12];
  hdr[0] = 0x80;
  hdr[1] = 120;
  dv_put_u16(hdr + 2, seq);
  dv_put_u32(hdr + 4, ts);
  dv_put_u32(hdr + 8, ssrc);
  dv_buf_reset(out);
  assert_int_equal(dv_sim_crypt_seal(s->mode, s->key, hdr, sizeof(hdr), payload,
                                     plen, counter, out),
                   0);
}

static const uint8_t SILENCE[3] = {0xf8, 0xff, 0xfe};

static void feed(fx *f, const dv_buf *b, const dv_sim_addr *from,
                 dvoice_tstamp now) {
  assert_int_equal(dv_sim_media_recv(f->m, b->data, b->len, from, now), 0);
}

static void test_ip_discovery_answer(void **state) {
  uint8_t req[74], *want;
  char hex[400];
  dv_sim_dgram d;
  size_t wlen;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, NULL, 0);
  memset(req, 0, sizeof(req));
  dv_put_u16(req, 1);
  dv_put_u16(req + 2, 70);
  dv_put_u32(req + 4, f.a->ssrc);
  assert_int_equal(dv_sim_media_recv(f.m, req, sizeof(req), &f.addr_a, 0), 0);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  /* type 2, length 70, SSRC, "10.1.2.3" NUL-padded to 64 bytes, port. */
  snprintf(hex, sizeof(hex), "0002 0046 %08x 31302e312e322e33 %0112d abcd",
           f.a->ssrc, 0);
  wlen = dvt_unhex(hex, &want);
  assert_int_equal(wlen, 74);
  dvt_assert_bytes(d.data.data, d.data.len, want, wlen);
  free(want);
  assert_true(d.dest.ip == f.addr_a.ip && d.dest.port == f.addr_a.port);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
  assert_int_equal(f.a->report.media.discovery_requests, 1);
  /* An unknown SSRC is still answered, and counted apart. */
  dv_put_u32(req + 4, 12345);
  assert_int_equal(dv_sim_media_recv(f.m, req, sizeof(req), &f.addr_b, 0), 0);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_int_equal(dv_get_u32(d.data.data + 4), 12345);
  assert_int_equal(dv_get_u16(d.data.data + 72), 40001);
  assert_string_equal((const char *)d.data.data + 8, "127.0.0.1");
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_global_stats(f.m)->unknown, 1);
  fx_free(&f);
}

static void check_stream(const char *mode) {
  dv_sim_media_stats *st;
  const dvoice_tstamp *times;
  size_t n;
  dv_buf b;
  fx f;
  fx_init(&f, NULL);
  join(&f, f.a, mode, 1);
  discover(&f, f.a, &f.addr_a);
  dv_buf_init(&b, NULL);
  for (uint32_t i = 0; i < 10; i++) {
    build_pkt(&b, f.a, (uint16_t)(65530 + i), 0xfffffc00u + 960 * i, f.a->ssrc,
              SILENCE, 3, i + 1);
    feed(&f, &b, &f.addr_a, 1000 * MS + i * 20 * MS);
  }
  /* A payload that is not Opus decrypts but fails to decode. */
  {
    static const uint8_t junk[2] = {0xff, 0xff};
    build_pkt(&b, f.a, 4, 0xfffffc00u + 9600, f.a->ssrc, junk, 2, 11);
    feed(&f, &b, &f.addr_a, 1200 * MS);
  }
  st = &f.a->report.media;
  assert_int_equal(st->received, 11);
  assert_int_equal(st->decrypted, 11);
  assert_int_equal(st->decrypt_failures, 0);
  assert_int_equal(st->missing, 0);
  assert_int_equal(st->duplicates, 0);
  assert_int_equal(st->reordered, 0);
  assert_int_equal(st->ts_errors, 0);
  assert_int_equal(st->silence_frames, 10);
  assert_int_equal(st->decoded, 10);
  assert_int_equal(st->decode_failures, 1);
  assert_int_equal(st->first_seq, 65530);
  assert_int_equal(st->last_seq, 4);
  assert_true(st->first_arrival == 1000 * MS);
  assert_true(st->last_arrival == 1200 * MS);
  assert_int_equal(st->ia_count, 10);
  assert_true(st->ia_mean_ns == 20.0 * MS);
  assert_true(st->ia_min_ns == 20 * MS && st->ia_max_ns == 20 * MS);
  assert_int_equal(st->ia_max_dev_ns, 0);
  assert_true(dv_sim_media_stats_ia_stddev(st) == 0.0);
  assert_true(st->jitter_ns == 0.0);
  assert_true(st->drift_min_ns == 0 && st->drift_max_ns == 0);
  dv_sim_media_arrivals(f.m, f.a, &times, &n);
  assert_int_equal(n, 11);
  assert_true(times[3] == 1060 * MS);
  assert_int_equal(f.a->report.violations.n, 0);
  /* The same figures in the JSON report. */
  {
    json_t *j, *s0, *media;
    dv_buf_reset(&b);
    assert_int_equal(dv_sim_report_json(f.vgw, f.m, &b), 0);
    j = json_loadb((const char *)b.data, b.len, 0, NULL);
    assert_non_null(j);
    s0 = json_array_get(
        json_object_get(json_object_get(j, "gateway"), "sessions"), 0);
    media = json_object_get(s0, "media");
    assert_int_equal(json_integer_value(json_object_get(media, "decrypted")),
                     11);
    assert_int_equal(
        json_integer_value(json_object_get(media, "decode_failures")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(media, "first_arrival_ns")),
        1000 * MS);
    assert_true(json_real_value(json_object_get(media, "ia_mean_ms")) == 20.0);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(j, "media"), "datagrams_in")),
                     12);
    json_decref(j);
  }
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_decrypt_and_continuity_aes(void **state) {
  (void)state;
  check_stream(AES);
}

static void test_decrypt_and_continuity_xchacha(void **state) {
  (void)state;
  check_stream(XCHACHA);
}

static void test_drift_against_media_clock(void **state) {
  /* Arrival offsets from the 20 ms grid, in ms: the pacer's error. */
  static const int off[] = {0, 1, -2, 0, 3, 0};
  dv_sim_media_stats *st;
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, AES, 1);
  dv_buf_init(&b, NULL);
  for (uint32_t i = 0; i < 6; i++) {
    build_pkt(&b, f.a, (uint16_t)i, 777 + 960 * i, f.a->ssrc, SILENCE, 3, i);
    feed(&f, &b, &f.addr_a,
         (dvoice_tstamp)((int64_t)(5000 + 20 * i + off[i]) * (int64_t)MS));
  }
  st = &f.a->report.media;
  assert_true(st->drift_min_ns == -2 * (int64_t)MS);
  assert_true(st->drift_max_ns == 3 * (int64_t)MS);
  /* Inter-arrival: 21, 17, 22, 23, 17 ms. */
  assert_true(st->ia_min_ns == 17 * MS);
  assert_true(st->ia_max_ns == 23 * MS);
  assert_true(st->ia_max_dev_ns == 3 * MS);
  assert_int_equal(st->ia_count, 5);
  /* The packets came from the address given in Select Protocol. */
  assert_int_equal(f.a->report.violations.n, 0);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_select_address_mismatch_recorded(void **state) {
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, AES, 1);
  dv_buf_init(&b, NULL);
  build_pkt(&b, f.a, 1, 960, f.a->ssrc, SILENCE, 3, 0);
  feed(&f, &b, &f.addr_b, 0);
  assert_int_equal(f.a->report.media.decrypted, 1);
  assert_true(dv_sim_violations_find(
      &f.a->report.violations,
      "source 127.0.0.1:40001 is not the selected 10.1.2.3:43981"));
  assert_int_equal(f.a->report.violations.v[0].close_code, 0);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_gaps_duplicates_reorders(void **state) {
  /* seq: 0 1 3 2 2 5 6(ts wrong) 1 */
  static const uint16_t seqs[] = {0, 1, 3, 2, 2, 5, 6, 1};
  dv_sim_media_stats *st;
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, AES, 1);
  dv_buf_init(&b, NULL);
  for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
    uint32_t ts = 5000 + 960u * seqs[i] + (seqs[i] == 6 ? 1 : 0);
    build_pkt(&b, f.a, seqs[i], ts, f.a->ssrc, SILENCE, 3, (uint32_t)i);
    feed(&f, &b, &f.addr_a, i * 20 * MS);
  }
  st = &f.a->report.media;
  assert_int_equal(st->received, 8);
  assert_int_equal(st->decrypted, 8);
  /* 3 skipped 2 (filled late), 5 skipped 4 (never came). */
  assert_int_equal(st->missing, 1);
  assert_int_equal(st->reordered, 1);
  assert_int_equal(st->duplicates, 2);
  assert_int_equal(st->ts_errors, 1);
  assert_int_equal(st->last_seq, 6);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_bad_packets_counted(void **state) {
  dv_sim_media_stats *st;
  uint8_t raw[32];
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  /* RTP before Session Description. */
  join(&f, f.a, NULL, 0);
  discover(&f, f.a, &f.addr_a);
  dv_buf_init(&b, NULL);
  {
    uint8_t hdr[12] = {0x80, 120, 0, 1, 0, 0, 0, 0};
    dv_put_u32(hdr + 8, f.a->ssrc);
    assert_int_equal(dv_sim_media_recv(f.m, hdr, 12, &f.addr_a, 0), 0);
    assert_int_equal(f.a->report.violations.n, 1);
    assert_int_equal(dv_sim_media_recv(f.m, hdr, 12, &f.addr_a, 100 * MS), 0);
  }
  st = &f.a->report.media;
  assert_int_equal(st->before_key, 2);
  assert_int_equal(st->before_speaking, 2);
  assert_true(dv_sim_violations_find(&f.a->report.violations,
                                     "before session description"));
  assert_true(dv_sim_violations_find(&f.a->report.violations,
                                     "before op 5 for 100 ms"));
  assert_int_equal(f.a->report.violations.v[0].close_code, 0);
  assert_int_equal(f.a->report.violations.n, 2);
  fx_free(&f);

  fx_init(&f, NULL);
  join(&f, f.a, XCHACHA, 0);
  discover(&f, f.a, &f.addr_a);
  st = &f.a->report.media;
  /* Before op 5: decrypted and counted; recorded once op 5 is overdue. */
  build_pkt(&b, f.a, 1, 960, f.a->ssrc, SILENCE, 3, 0);
  feed(&f, &b, &f.addr_a, 0);
  feed(&f, &b, &f.addr_a, 99 * MS);
  assert_int_equal(f.a->report.violations.n, 0);
  feed(&f, &b, &f.addr_a, 100 * MS);
  feed(&f, &b, &f.addr_a, 200 * MS);
  assert_int_equal(st->before_speaking, 4);
  assert_int_equal(f.a->report.violations.n, 1);
  /* A flipped ciphertext bit fails the AEAD check. */
  build_pkt(&b, f.a, 2, 1920, f.a->ssrc, SILENCE, 3, 1);
  b.data[13] ^= 1;
  feed(&f, &b, &f.addr_a, 0);
  assert_int_equal(st->decrypt_failures, 1);
  /* Too short for the tag and counter. */
  assert_int_equal(dv_sim_media_recv(f.m, b.data, 20, &f.addr_a, 0), 0);
  assert_int_equal(st->decrypt_failures, 2);
  /* Another SSRC from this client's address. */
  build_pkt(&b, f.a, 3, 2880, 777, SILENCE, 3, 2);
  feed(&f, &b, &f.addr_a, 0);
  assert_int_equal(st->ssrc_errors, 1);
  /* Wrong payload type, wrong version, RTCP, keepalive. */
  build_pkt(&b, f.a, 3, 2880, f.a->ssrc, SILENCE, 3, 3);
  b.data[1] = 96;
  feed(&f, &b, &f.addr_a, 0);
  assert_int_equal(st->header_errors, 1);
  memset(raw, 0, sizeof(raw));
  raw[0] = 0x40;
  assert_int_equal(dv_sim_media_recv(f.m, raw, sizeof(raw), &f.addr_a, 0), 0);
  assert_int_equal(st->header_errors, 2);
  raw[0] = 0x80;
  raw[1] = 200;
  assert_int_equal(dv_sim_media_recv(f.m, raw, sizeof(raw), &f.addr_a, 0), 0);
  assert_int_equal(st->rtcp, 1);
  assert_int_equal(dv_sim_media_recv(f.m, raw, 8, &f.addr_a, 0), 0);
  assert_int_equal(st->keepalives, 1);
  /* From nowhere known. */
  assert_int_equal(dv_sim_media_recv(f.m, raw, 8, &f.addr_b, 0), 0);
  assert_int_equal(dv_sim_media_global_stats(f.m)->unknown, 1);
  assert_int_equal(st->received, 6);
  assert_int_equal(st->decrypted, 4);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_forwarding_reencrypts(void **state) {
  static const uint8_t plain[] = {0x10, 0x7f, 0x00, 0x00, 0xf8, 0xff, 0xfe};
  uint8_t hdr[16];
  dv_sim_dgram d;
  size_t aad_len;
  dv_buf b, got;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  f.ca = join(&f, f.a, AES, 1);
  f.cb = join(&f, f.b, XCHACHA, 1);
  discover(&f, f.a, &f.addr_a);
  discover(&f, f.b, &f.addr_b);
  /* A packet with an encrypted one-word header extension. */
  hdr[0] = 0x90;
  hdr[1] = 120;
  dv_put_u16(hdr + 2, 7);
  dv_put_u32(hdr + 4, 9600);
  dv_put_u32(hdr + 8, f.a->ssrc);
  hdr[12] = 0xbe;
  hdr[13] = 0xde;
  dv_put_u16(hdr + 14, 1);
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_sim_crypt_seal(f.a->mode, f.a->key, hdr, 16, plain,
                                     sizeof(plain), 99, &b),
                   0);
  feed(&f, &b, &f.addr_a, 0);
  assert_int_equal(f.a->report.media.decrypted, 1);
  assert_int_equal(f.a->report.media.silence_frames, 1);
  assert_int_equal(f.a->report.media.forwarded, 1);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_true(d.dest.ip == f.addr_b.ip && d.dest.port == f.addr_b.port);
  /* Same header, B's key and mode, the server's own nonce counter. */
  dvt_assert_bytes(d.data.data, 16, hdr, 16);
  dv_buf_init(&got, NULL);
  assert_int_equal(dv_sim_crypt_open(f.b->mode, f.b->key, d.data.data,
                                     d.data.len, &got, &aad_len),
                   0);
  assert_int_equal(aad_len, 16);
  dvt_assert_bytes(got.data, got.len, plain, sizeof(plain));
  assert_int_equal(dv_get_u32(d.data.data + d.data.len - 4), 0);
  assert_int_equal(dv_sim_crypt_open(f.a->mode, f.a->key, d.data.data,
                                     d.data.len, &got, &aad_len),
                   DVOICE_ERR_CRYPTO);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
  /* B's speaking state reached A over the gateway with B's SSRC. */
  dv_buf_free(&got);
  dv_buf_free(&b);
  fx_free(&f);
}

/* Collects the datagrams a speaker sends to |s| until it goes quiet. */
static size_t run_speaker(fx *f, dv_sim_session *s, uint16_t *seqs, size_t max,
                          dvoice_tstamp *end) {
  dv_sim_dgram d;
  size_t n = 0;
  dvoice_tstamp t;
  while ((t = dv_sim_media_get_expiry(f->m)) != DVOICE_TSTAMP_NONE) {
    assert_int_equal(dv_sim_media_handle_expiry(f->m, t), 0);
    *end = t;
    while (dv_sim_media_pop(f->m, &d)) {
      assert_true(n < max);
      (void)s;
      seqs[n++] = dv_get_u16(d.data.data + 2);
      dv_buf_free(&d.data);
    }
  }
  return n;
}

/* Forwarding reaches exactly the active sessions of the sender's server,
 * also ones registered after the sender's first packet. */
static void test_forwarding_follows_new_members(void **state) {
  dv_sim_session *c, *other;
  dv_sim_addr addr_c = {0x0a000009u, 5009}, addr_o = {0x0a00000au, 5010};
  dv_sim_dgram d;
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, AES, 1);
  join(&f, f.b, AES, 1);
  discover(&f, f.a, &f.addr_a);
  discover(&f, f.b, &f.addr_b);
  assert_int_equal(
      dv_sim_vgw_add_session(f.vgw, "999", USER_B, "sess-o", "tok-o", &other),
      0);
  join(&f, other, AES, 1);
  discover(&f, other, &addr_o);
  dv_buf_init(&b, NULL);
  build_pkt(&b, f.a, 1, 960, f.a->ssrc, SILENCE, 3, 1);
  feed(&f, &b, &f.addr_a, 0);
  assert_int_equal(f.a->report.media.forwarded, 1);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_true(d.dest.port == f.addr_b.port);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
  /* A third member of A's server joins. */
  assert_int_equal(
      dv_sim_vgw_add_session(f.vgw, SERVER, "777", "sess-c", "tok-c", &c), 0);
  join(&f, c, XCHACHA, 1);
  discover(&f, c, &addr_c);
  build_pkt(&b, f.a, 2, 1920, f.a->ssrc, SILENCE, 3, 2);
  feed(&f, &b, &f.addr_a, 20 * MS);
  assert_int_equal(f.a->report.media.forwarded, 3);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_true(d.dest.port == f.addr_b.port);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_true(d.dest.port == addr_c.port);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
  /* B no longer active: only C gets the next one. */
  f.b->phase = DV_SIM_PHASE_ENDED;
  build_pkt(&b, f.a, 3, 2880, f.a->ssrc, SILENCE, 3, 3);
  feed(&f, &b, &f.addr_a, 40 * MS);
  assert_int_equal(f.a->report.media.forwarded, 4);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_true(d.dest.port == addr_c.port);
  dv_buf_free(&d.data);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
  assert_int_equal(other->report.media.received, 0);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_fake_speaker(void **state) {
  dv_sim_speaker *sp;
  OpusDecoder *dec;
  int16_t pcm[5760 * 2];
  dv_sim_dgram d;
  dv_sim_out o;
  json_t *j;
  dv_buf plain;
  size_t aad_len, count = 0;
  uint16_t seq0 = 0;
  uint32_t ts0 = 0;
  int err;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  f.ca = join(&f, f.a, AES, 1);
  discover(&f, f.a, &f.addr_a);
  assert_int_equal(
      dv_sim_media_speaker_start(f.m, SERVER, "555", 4242, 3, 100 * MS, &sp),
      0);
  /* The gateway announced it: op 11, 18, 20, then op 5 with its SSRC. */
  for (int want = 0; want < 4; want++) {
    static const int ops[4] = {11, 18, 20, 5};
    assert_int_equal(dv_sim_vgw_conn_pop(f.ca, &o), 1);
    j = json_loadb((const char *)o.data.data, o.data.len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "op")), ops[want]);
    if (ops[want] == 5) {
      json_t *dd = json_object_get(j, "d");
      assert_int_equal(json_integer_value(json_object_get(dd, "ssrc")), 4242);
      assert_string_equal(json_string_value(json_object_get(dd, "user_id")),
                          "555");
    }
    json_decref(j);
    dv_buf_free(&o.data);
  }
  assert_true(dv_sim_media_get_expiry(f.m) == 100 * MS);
  dec = opus_decoder_create(48000, 2, &err);
  assert_non_null(dec);
  dv_buf_init(&plain, NULL);
  for (;;) {
    dvoice_tstamp t = dv_sim_media_get_expiry(f.m);
    if (t == DVOICE_TSTAMP_NONE) {
      break;
    }
    assert_true(t == 100 * MS + count * 20 * MS);
    assert_int_equal(dv_sim_media_handle_expiry(f.m, t), 0);
    assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
    assert_true(d.dest.ip == f.addr_a.ip && d.dest.port == f.addr_a.port);
    assert_int_equal(d.data.data[0], 0x90);
    assert_int_equal(d.data.data[1], 120);
    assert_int_equal(dv_get_u32(d.data.data + 8), 4242);
    if (count == 0) {
      seq0 = dv_get_u16(d.data.data + 2);
      ts0 = dv_get_u32(d.data.data + 4);
    }
    assert_int_equal(dv_get_u16(d.data.data + 2), (uint16_t)(seq0 + count));
    assert_true(dv_get_u32(d.data.data + 4) == ts0 + 960u * count);
    dv_buf_reset(&plain);
    assert_int_equal(dv_sim_crypt_open(f.a->mode, f.a->key, d.data.data,
                                       d.data.len, &plain, &aad_len),
                     0);
    assert_int_equal(aad_len, 16);
    assert_true(plain.len > 4);
    if (count < 3) {
      assert_int_equal(opus_decode(dec, plain.data + 4,
                                   (opus_int32)(plain.len - 4), pcm, 5760, 0),
                       960);
    } else {
      dvt_assert_bytes(plain.data + 4, plain.len - 4, SILENCE, 3);
    }
    dv_buf_free(&d.data);
    assert_int_equal(dv_sim_media_pop(f.m, &d), 0);
    count++;
  }
  assert_int_equal(count, 8);
  assert_int_equal(dv_sim_speaker_sent(sp), 8);
  opus_decoder_destroy(dec);
  dv_buf_free(&plain);
  dv_sim_media_speaker_stop(f.m, sp, 300 * MS);
  assert_int_equal(dv_sim_vgw_conn_pop(f.ca, &o), 1);
  assert_non_null(strstr((const char *)o.data.data, "\"op\":13"));
  dv_buf_free(&o.data);
  fx_free(&f);
}

/* Runs a 100-frame speaker through the knobs; returns the seqs seen. */
static size_t knob_run(uint32_t loss, uint32_t dup, uint32_t reorder,
                       uint16_t *seqs, size_t max, uint64_t *lost) {
  dv_sim_media_settings ms;
  dvoice_tstamp end = 0;
  size_t n;
  fx f;
  dv_sim_media_settings_default(&ms);
  ms.loss_ppm = loss;
  ms.dup_ppm = dup;
  ms.reorder_ppm = reorder;
  ms.speaker_extension = 0;
  fx_init(&f, &ms);
  f.ca = join(&f, f.a, XCHACHA, 1);
  discover(&f, f.a, &f.addr_a);
  assert_int_equal(
      dv_sim_media_speaker_start(f.m, SERVER, "555", 4242, 95, 0, NULL), 0);
  n = run_speaker(&f, f.a, seqs, max, &end);
  *lost = dv_sim_media_global_stats(f.m)->lost;
  fx_free(&f);
  return n;
}

static void test_knobs_deterministic(void **state) {
  uint16_t s1[400], s2[400];
  uint64_t lost1, lost2;
  size_t n1, n2;
  (void)state;
  /* Loss: the same counter RNG loses the same packets. */
  n1 = knob_run(300000, 0, 0, s1, 400, &lost1);
  n2 = knob_run(300000, 0, 0, s2, 400, &lost2);
  assert_int_equal(n1, n2);
  assert_true(lost1 == lost2);
  assert_memory_equal(s1, s2, n1 * sizeof(uint16_t));
  assert_true(lost1 > 0 && lost1 < 100);
  assert_int_equal(n1 + lost1, 100);
  /* Duplication of every datagram. */
  n1 = knob_run(0, 1000000, 0, s1, 400, &lost1);
  assert_int_equal(n1, 200);
  for (size_t i = 0; i < 100; i++) {
    assert_int_equal(s1[2 * i], s1[2 * i + 1]);
    assert_int_equal(s1[2 * i], (uint16_t)(s1[0] + i));
  }
  /* Reordering of every datagram: pairs swap. */
  n1 = knob_run(0, 0, 1000000, s1, 400, &lost1);
  assert_int_equal(n1, 100);
  for (size_t i = 0; i < 50; i++) {
    assert_int_equal(s1[2 * i], (uint16_t)(s1[1] + 2 * i + 1));
    assert_int_equal(s1[2 * i + 1], (uint16_t)(s1[1] + 2 * i));
  }
  /* Without knobs: every frame, in order. */
  n1 = knob_run(0, 0, 0, s1, 400, &lost1);
  assert_int_equal(n1, 100);
  for (size_t i = 1; i < 100; i++) {
    assert_int_equal(s1[i], (uint16_t)(s1[0] + i));
  }
}

/* lib/rtp builds what the client sends; the simulator's own AEAD must
 * accept it, and lib/rtp must open what the simulator sends. */
static void check_lib_rtp(const char *mode, dv_rtp_backend backend) {
  dv_rtp_crypt cc;
  uint8_t req[DV_IPDISC_LEN], pkt[256], body[DV_RTP_MAX_PACKET];
  dv_ipdisc_result res;
  dv_rtp_rx rx;
  dv_sim_dgram d;
  dv_sim_speaker *sp;
  size_t plen, pos = 0, dlen;
  const uint8_t *data;
  uint8_t id;
  fx f;
  fx_init(&f, NULL);
  f.ca = join(&f, f.a, mode, 1);
  dv_ipdisc_build_request(req, f.a->ssrc);
  assert_int_equal(dv_sim_media_recv(f.m, req, sizeof(req), &f.addr_a, 0), 0);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_int_equal(
      dv_ipdisc_parse_response(d.data.data, d.data.len, f.a->ssrc, &res), 0);
  assert_string_equal(res.address, "10.1.2.3");
  assert_int_equal(res.port, 0xabcd);
  dv_buf_free(&d.data);
  assert_int_equal(dv_rtp_crypt_init(&cc,
                                     dv_rtp_mode_from_name(mode, strlen(mode)),
                                     f.a->key, backend),
                   0);
  for (uint32_t i = 0; i < 5; i++) {
    assert_int_equal(dv_rtp_seal_opus(&cc, (uint16_t)(100 + i), 960 * i,
                                      f.a->ssrc, SILENCE, 3, pkt, sizeof(pkt),
                                      &plen),
                     0);
    assert_int_equal(dv_sim_media_recv(f.m, pkt, plen, &f.addr_a, i * 20 * MS),
                     0);
  }
  assert_int_equal(f.a->report.media.decrypted, 5);
  assert_int_equal(f.a->report.media.decrypt_failures, 0);
  assert_int_equal(f.a->report.media.missing, 0);
  assert_int_equal(f.a->report.media.ts_errors, 0);
  assert_int_equal(f.a->report.media.silence_frames, 5);
  /* A speaker's packet, with its encrypted extension, opens in lib/rtp. */
  assert_int_equal(
      dv_sim_media_speaker_start(f.m, SERVER, "555", 4242, 1, 0, &sp), 0);
  assert_int_equal(dv_sim_media_handle_expiry(f.m, 0), 0);
  assert_int_equal(dv_sim_media_pop(f.m, &d), 1);
  assert_int_equal(
      dv_rtp_open(&cc, d.data.data, d.data.len, body, sizeof(body), &rx), 0);
  assert_int_equal(rx.hdr.ssrc, 4242);
  assert_int_equal(rx.hdr.ext_profile, DV_RTP_EXT_ONE_BYTE);
  assert_int_equal(rx.ext_len, 4);
  assert_int_equal(dv_rtp_ext_next(rx.ext, rx.ext_len, &pos, &id, &data, &dlen),
                   1);
  assert_int_equal(id, 1);
  assert_int_equal(dlen, 1);
  assert_true(rx.payload_len > 3);
  dv_buf_free(&d.data);
  dv_rtp_crypt_clear(&cc);
  fx_free(&f);
}

static void test_lib_rtp_interop(void **state) {
  (void)state;
  check_lib_rtp(AES, DV_RTP_BACKEND_MBEDTLS);
  if (dv_rtp_sodium_aes_available()) {
    check_lib_rtp(AES, DV_RTP_BACKEND_SODIUM);
  }
  check_lib_rtp(XCHACHA, DV_RTP_BACKEND_AUTO);
}

/* lib/audio's pacer feeding lib/rtp packets to the simulator under the
 * fake clock: the simulator's pacing figures must match the tick times. */
typedef struct pace {
  fx *f;
  dv_rtp_crypt crypt;
  uint8_t pkt[128];
  size_t len;
  dvoice_tstamp now;
  int pulls;
} pace;

static int pace_prepare(dv_pacer_conn *c, void *ud, const dv_pacer_frame *fr) {
  pace *p = ud;
  (void)c;
  return dv_rtp_seal_opus(&p->crypt, fr->seq, fr->timestamp, p->f->a->ssrc,
                          fr->data, fr->len, p->pkt, sizeof(p->pkt), &p->len);
}

static int pace_send(dv_pacer_conn *c, void *ud) {
  pace *p = ud;
  (void)c;
  return dv_sim_media_recv(p->f->m, p->pkt, p->len, &p->f->addr_a, p->now);
}

static int pace_pull(dv_pacer_conn *c, void *ud, dv_pull_result *out) {
  pace *p = ud;
  (void)c;
  if (p->pulls++ < 100) {
    out->kind = DV_PULL_OPUS;
    out->data = SILENCE;
    out->len = 3;
  } else {
    out->kind = DV_PULL_NOTHING;
  }
  return 0;
}

static void test_pacer_measured_by_sim(void **state) {
  dv_pacer_callbacks cb = {pace_prepare, pace_send, pace_pull, NULL, NULL};
  dv_pacer_conn_settings cs;
  const dv_pacer_stats *ps;
  dv_sim_media_stats *st;
  dv_pacer *pacer;
  dv_pacer_conn *pc;
  pace p;
  fx f;
  int n = 0;
  (void)state;
  fx_init(&f, NULL);
  join(&f, f.a, AES, 1);
  memset(&p, 0, sizeof(p));
  p.f = &f;
  assert_int_equal(dv_rtp_crypt_init(&p.crypt, DV_RTP_MODE_AES256GCM, f.a->key,
                                     DV_RTP_BACKEND_MBEDTLS),
                   0);
  assert_int_equal(dv_pacer_new(&f.e.env, NULL, &cb, &pacer), 0);
  dv_pacer_conn_settings_default(&cs, DV_PACER_PULL);
  assert_int_equal(dv_pacer_conn_add(pacer, &cs, &p, &pc), 0);
  assert_int_equal(dv_pacer_conn_play(pc), 0);
  p.now = 1000 * MS;
  /* Each tick 0..3 ms after its deadline; one 50 ms stall at tick 60. */
  while (dv_pacer_get_expiry(pacer) != DVOICE_TSTAMP_NONE && n < 400) {
    dvoice_tstamp t = dv_pacer_get_expiry(pacer);
    if (t < p.now) {
      t = p.now;
    }
    p.now = t + (dvoice_tstamp)(n % 4) * MS + (n == 60 ? 50 * MS : 0);
    assert_int_equal(dv_pacer_on_tick(pacer, p.now), 0);
    n++;
    if (dv_pacer_conn_state(pc) == DV_PACER_QUIET) {
      break;
    }
  }
  ps = dv_pacer_conn_stats(pc);
  st = &f.a->report.media;
  /* What the pacer says it sent is what the simulator saw, in order. */
  assert_true(ps->packets_sent == st->decrypted);
  assert_true(st->decrypted >= 100);
  assert_int_equal(st->decrypt_failures, 0);
  assert_int_equal(st->missing, 0);
  assert_int_equal(st->duplicates, 0);
  assert_int_equal(st->reordered, 0);
  assert_int_equal(st->ts_errors, 0);
  assert_true(st->silence_frames >= 100);
  /* The first packet goes out on the second tick (1 ms late), which
   * anchors the grid; a tick on time is then 1 ms early against it, and the
   * stalled send (50 ms late) is 49 ms late: timestamps follow packets, so
   * a stall shows up as drift, never as a timestamp error. */
  assert_true(st->drift_min_ns == -1 * (int64_t)MS);
  assert_true(st->drift_max_ns == 49 * (int64_t)MS);
  assert_true(ps->missed_slots == 2);
  assert_true(st->ia_max_ns >= 50 * MS);
  dv_pacer_free(pacer);
  dv_rtp_crypt_clear(&p.crypt);
  fx_free(&f);
}

/* A whole media scenario under a given allocator, for the NOMEM sweep. */
static int media_run(const dvoice_mem *mem, void *ud) {
  static const char *const msgs[] = {
      "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER_A
      "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
      "\"max_dave_protocol_version\":1}}",
      "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
      "\"10.1.2.3\",\"port\":43981,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
  };
  dv_sim_media_settings ms;
  dvt_env e;
  dv_sim_vgw *vgw = NULL;
  dv_sim_media *m = NULL;
  dv_sim_session *a = NULL, *b = NULL;
  dv_sim_vgw_conn *c = NULL;
  dv_sim_addr from = {0x0a010203u, 43981};
  uint8_t req[74];
  dv_buf pkt;
  char sp[128];
  int rv;
  (void)ud;
  dvt_env_init(&e);
  e.env.mem = mem;
  dv_buf_init(&pkt, NULL);
  dv_sim_media_settings_default(&ms);
  ms.reorder_ppm = 500000;
  ms.dup_ppm = 500000;
  rv = dv_sim_vgw_new(&e.env, NULL, &vgw);
  if (rv == 0) {
    rv = dv_sim_media_new(&e.env, vgw, &ms, &m);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_add_session(vgw, SERVER, USER_A, "sess-a", "tok-a", &a);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_add_session(vgw, SERVER, USER_B, "sess-b", "tok-b", &b);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_conn_new(vgw, 0, &c);
  }
  for (size_t i = 0; i < 2 && rv == 0; i++) {
    rv = dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)msgs[i], strlen(msgs[i]),
                              0);
  }
  if (rv == 0) {
    snprintf(sp, sizeof(sp),
             "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":%u}}",
             a->ssrc);
    rv = dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)sp, strlen(sp), 0);
  }
  if (rv == 0) {
    /* B is active too (set directly) so that A's audio is forwarded. */
    b->phase = DV_SIM_PHASE_ACTIVE;
    b->mode = DV_SIM_MODE_XCHACHA20;
    b->sel_ip = 0x7f000001u;
    b->sel_port = 40001;
    memset(req, 0, sizeof(req));
    dv_put_u16(req, 1);
    dv_put_u16(req + 2, 70);
    dv_put_u32(req + 4, a->ssrc);
    rv = dv_sim_media_recv(m, req, sizeof(req), &from, 0);
  }
  for (uint32_t i = 0; i < 4 && rv == 0; i++) {
    build_pkt(&pkt, a, (uint16_t)i, 960 * i, a->ssrc, SILENCE, 3, i);
    rv = dv_sim_media_recv(m, pkt.data, pkt.len, &from, i * 20 * MS);
  }
  if (rv == 0) {
    rv = dv_sim_media_speaker_start(m, SERVER, "555", 4242, 2, 0, NULL);
  }
  for (int i = 0; i < 4 && rv == 0; i++) {
    rv = dv_sim_media_handle_expiry(m, (dvoice_tstamp)i * 20 * MS);
  }
  dv_buf_free(&pkt);
  dv_sim_media_free(m);
  dv_sim_vgw_free(vgw);
  dvt_env_free(&e);
  return rv;
}

/* A prepared key seals byte-exactly like the one-shot form, opens what it
 * sealed, re-keys when the session's key changes, and refuses when unset. */
static void check_crypt_key(dv_sim_mode mode) {
  uint8_t k1[32], k2[32], hdr[12] = {0x80, 120, 0, 7, 0, 0, 3, 0xc0, 1, 2, 3};
  dv_sim_crypt_key ck;
  dv_buf one, two, plain;
  size_t aad_len = 99;
  for (int i = 0; i < 32; i++) {
    k1[i] = (uint8_t)i;
    k2[i] = (uint8_t)(i + 1);
  }
  dv_buf_init(&one, NULL);
  dv_buf_init(&two, NULL);
  dv_buf_init(&plain, NULL);
  dv_sim_crypt_key_init(&ck);
  /* Unset: length errors first, then UNSUPPORTED. */
  assert_int_equal(dv_sim_crypt_open_key(&ck, hdr, 8, &plain, &aad_len),
                   DVOICE_ERR_TRUNCATED);
  assert_int_equal(dv_sim_crypt_seal_key(&ck, hdr, 12, SILENCE, 3, 1, &two),
                   DVOICE_ERR_UNSUPPORTED);
  assert_int_equal(two.len, 0);
  assert_int_equal(dv_sim_crypt_key_set(&ck, mode, k1), 0);
  assert_int_equal(dv_sim_crypt_seal(mode, k1, hdr, 12, SILENCE, 3, 5, &one),
                   0);
  assert_int_equal(dv_sim_crypt_seal_key(&ck, hdr, 12, SILENCE, 3, 5, &two), 0);
  dvt_assert_bytes(two.data, two.len, one.data, one.len);
  assert_int_equal(
      dv_sim_crypt_open_key(&ck, one.data, one.len, &plain, &aad_len), 0);
  assert_int_equal(aad_len, 12);
  dvt_assert_bytes(plain.data, plain.len, SILENCE, 3);
  /* Setting the same key again keeps it; a new key replaces it. */
  assert_int_equal(dv_sim_crypt_key_set(&ck, mode, k1), 0);
  dv_buf_reset(&plain);
  assert_int_equal(
      dv_sim_crypt_open_key(&ck, one.data, one.len, &plain, &aad_len), 0);
  assert_int_equal(dv_sim_crypt_key_set(&ck, mode, k2), 0);
  dv_buf_reset(&plain);
  assert_int_equal(
      dv_sim_crypt_open_key(&ck, one.data, one.len, &plain, &aad_len),
      DVOICE_ERR_CRYPTO);
  assert_int_equal(plain.len, 0);
  assert_int_equal(dv_sim_crypt_key_set(&ck, mode, k1), 0);
  assert_int_equal(
      dv_sim_crypt_open_key(&ck, one.data, one.len, &plain, &aad_len), 0);
  /* Unset again. */
  assert_int_equal(dv_sim_crypt_key_set(&ck, DV_SIM_MODE_NONE, k1), 0);
  assert_int_equal(
      dv_sim_crypt_open_key(&ck, one.data, one.len, &plain, &aad_len),
      DVOICE_ERR_UNSUPPORTED);
  assert_int_equal(dv_sim_crypt_key_set(&ck, (dv_sim_mode)77, k1),
                   DVOICE_ERR_UNSUPPORTED);
  assert_int_equal(ck.mode, DV_SIM_MODE_NONE);
  dv_sim_crypt_key_free(&ck);
  dv_buf_free(&one);
  dv_buf_free(&two);
  dv_buf_free(&plain);
}

static void test_crypt_key_cache(void **state) {
  (void)state;
  check_crypt_key(DV_SIM_MODE_AES256_GCM);
  check_crypt_key(DV_SIM_MODE_XCHACHA20);
}

/* Hundreds of sessions: every packet and keepalive lands on its own
 * session through the SSRC and address indexes, also after clients move to
 * new ports (entries are deleted and re-inserted). */
#define MANY 300

static void test_many_sessions_indexed(void **state) {
  dv_sim_session *s[MANY];
  dv_sim_addr at[MANY];
  uint8_t ka[8] = {0};
  dvt_stream rs;
  dv_buf b;
  fx f;
  (void)state;
  /* The counter RNG has too few distinct SSRCs for this many sessions. */
  memset(&f, 0, sizeof(f));
  dvt_env_init(&f.e);
  dvt_env_use_stream(&f.e.env, &rs, 1);
  assert_int_equal(dv_sim_vgw_new(&f.e.env, NULL, &f.vgw), 0);
  dv_sim_vgw_set_udp(f.vgw, "127.0.0.1", 50010);
  assert_int_equal(dv_sim_media_new(&f.e.env, f.vgw, NULL, &f.m), 0);
  dv_buf_init(&b, NULL);
  for (int i = 0; i < MANY; i++) {
    char srv[32], sid[32], tok[32];
    snprintf(srv, sizeof(srv), "%d", 5000 + i);
    snprintf(sid, sizeof(sid), "m%d", i);
    snprintf(tok, sizeof(tok), "t%d", i);
    assert_int_equal(
        dv_sim_vgw_add_session(f.vgw, srv, USER_A, sid, tok, &s[i]), 0);
    (void)join(&f, s[i], i % 2 ? AES : XCHACHA, 1);
    /* Ports that collide in the low bits, to exercise probing. */
    at[i].ip = 0x0a000001u;
    at[i].port = (uint16_t)(1024 + 64 * i);
    discover(&f, s[i], &at[i]);
  }
  for (uint16_t k = 0; k < 2; k++) {
    for (int i = 0; i < MANY; i++) {
      build_pkt(&b, s[i], k, 960u * k, s[i]->ssrc, SILENCE, 3, k);
      feed(&f, &b, &at[i], k * 20 * MS);
    }
  }
  /* Every third client moves: its packets come from a new port. */
  for (int i = 0; i < MANY; i += 3) {
    at[i].port = (uint16_t)(at[i].port + 1);
    build_pkt(&b, s[i], 2, 1920, s[i]->ssrc, SILENCE, 3, 2);
    feed(&f, &b, &at[i], 40 * MS);
  }
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(dv_sim_media_recv(f.m, ka, sizeof(ka), &at[i], 0), 0);
  }
  for (int i = 0; i < MANY; i++) {
    const dv_sim_media_stats *st = &s[i]->report.media;
    uint64_t n = i % 3 == 0 ? 3 : 2;
    assert_int_equal(st->received, n);
    assert_int_equal(st->decrypted, n);
    assert_int_equal(st->ssrc_errors, 0);
    assert_int_equal(st->keepalives, 1);
    assert_int_equal(st->discovery_requests, 1);
  }
  assert_int_equal(dv_sim_media_global_stats(f.m)->unknown, 0);
  /* Only each SSRC's first sighting (its discovery) needed a search. */
  assert_int_equal(dv_sim_media_global_stats(f.m)->slow_lookups, MANY);
  /* The old ports of the movers belong to nobody now. */
  for (int i = 0; i < MANY; i += 3) {
    dv_sim_addr old = at[i];
    old.port = (uint16_t)(old.port - 1);
    assert_int_equal(dv_sim_media_recv(f.m, ka, sizeof(ka), &old, 0), 0);
  }
  assert_int_equal(dv_sim_media_global_stats(f.m)->unknown, MANY / 3);
  assert_int_equal(dv_sim_media_global_stats(f.m)->slow_lookups,
                   MANY + MANY / 3);
  dv_buf_free(&b);
  fx_free(&f);
}

static void test_media_nomem_each_allocation(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(media_run, NULL) > 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ip_discovery_answer),
      cmocka_unit_test(test_decrypt_and_continuity_aes),
      cmocka_unit_test(test_decrypt_and_continuity_xchacha),
      cmocka_unit_test(test_drift_against_media_clock),
      cmocka_unit_test(test_select_address_mismatch_recorded),
      cmocka_unit_test(test_gaps_duplicates_reorders),
      cmocka_unit_test(test_bad_packets_counted),
      cmocka_unit_test(test_forwarding_reencrypts),
      cmocka_unit_test(test_forwarding_follows_new_members),
      cmocka_unit_test(test_fake_speaker),
      cmocka_unit_test(test_knobs_deterministic),
      cmocka_unit_test(test_lib_rtp_interop),
      cmocka_unit_test(test_media_nomem_each_allocation),
      cmocka_unit_test(test_crypt_key_cache),
      cmocka_unit_test(test_many_sessions_indexed),
      cmocka_unit_test(test_pacer_measured_by_sim),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
