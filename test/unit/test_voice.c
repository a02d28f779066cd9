/*
 * Unit tests for lib/voice: the voice gateway v8 machine under a fake clock
 * and the counter RNG. Outgoing JSON is compared byte for byte.
 */
#include "dvt.h"

#include "json/dv_json.h"
#include "util/dv_rw.h"
#include "voice/dv_voice.h"

#define MS DVOICE_MS
#define SEC DVOICE_SECONDS
#define TOKEN "SECRET-TOKEN-xyz.123"
#define SESSION "sess-abc"

#define MAX_EVENTS 512

typedef struct rec {
  dv_voice_event ev;
  uint8_t key[32];
  char ip[16];
} rec;

typedef struct dave_rec {
  int kind; /* 1 text, 2 binary, 3 session, 4 reset */
  int op;
  uint8_t payload[64];
  size_t len;
  int64_t transition_id;
} dave_rec;

typedef struct fx {
  dvt_env e;
  dv_voice v;
  dv_voice_config cfg;
  dv_voice_dave dave;
  dvoice_tstamp now;
  rec ev[MAX_EVENTS];
  int nev, rd;
  dave_rec dv[64];
  int ndv;
  int dave_fail;  /* hooks return this */
  int dave_send;  /* hooks queue client frames */
  int reentry_rv; /* result of a dv_voice_close from inside a callback */
  int try_reentry;
} fx;

static void on_event(dv_voice *v, const dv_voice_event *ev, void *ud) {
  fx *f = ud;
  rec *r;
  (void)v;
  assert_true(f->nev < MAX_EVENTS);
  r = &f->ev[f->nev++];
  memset(r, 0, sizeof(*r));
  r->ev = *ev;
  if (ev->type == DV_VOICE_EV_SESSION) {
    memcpy(r->key, ev->u.session.key, 32);
    r->ev.u.session.key = r->key;
  } else if (ev->type == DV_VOICE_EV_UDP_START) {
    snprintf(r->ip, sizeof(r->ip), "%s", ev->u.udp.ip);
    r->ev.u.udp.ip = r->ip;
  }
  if (f->try_reentry) {
    f->reentry_rv = dv_voice_close(v, f->now);
    f->try_reentry = 0;
  }
}

static int dave_session(void *ud, dv_voice *v, int ver, dvoice_tstamp ts) {
  fx *f = ud;
  static const uint8_t kp[] = {0x00, 0x01, 0x00, 0x02, 0xaa};
  (void)ts;
  f->dv[f->ndv].kind = 3;
  f->dv[f->ndv++].op = ver;
  if (f->dave_send) {
    assert_int_equal(dv_voice_send_binary(v, 26, kp, sizeof(kp)), 0);
  }
  return f->dave_fail;
}

static void dave_reset(void *ud, dv_voice *v) {
  fx *f = ud;
  (void)v;
  f->dv[f->ndv++].kind = 4;
}

static int dave_text(void *ud, dv_voice *v, int op, const json_t *d,
                     dvoice_tstamp ts) {
  fx *f = ud;
  dave_rec *r = &f->dv[f->ndv++];
  int present;
  (void)ts;
  r->kind = 1;
  r->op = op;
  r->transition_id = -1;
  assert_int_equal(dv_json_get_int_opt(d, "transition_id", 0, 65535,
                                       &r->transition_id, &present),
                   0);
  if (f->dave_send && op == 21) {
    json_t *reply =
        json_pack("{s:I}", "transition_id", (json_int_t)r->transition_id);
    assert_int_equal(dv_voice_send_json(v, 23, reply), 0);
    json_decref(reply);
  }
  return f->dave_fail;
}

static int dave_binary(void *ud, dv_voice *v, int op, const uint8_t *p,
                       size_t len, dvoice_tstamp ts) {
  fx *f = ud;
  dave_rec *r = &f->dv[f->ndv++];
  (void)v;
  (void)ts;
  r->kind = 2;
  r->op = op;
  r->len = len;
  assert_true(len <= sizeof(r->payload));
  memcpy(r->payload, p, len);
  return f->dave_fail;
}

static void fx_setup(fx *f, int max_dave, int aes) {
  dv_voice_callbacks cb = {on_event};
  memset(f, 0, sizeof(*f));
  dvt_env_init(&f->e);
  dv_voice_config_default(&f->cfg);
  f->cfg.server_id = 111;
  f->cfg.user_id = 222;
  f->cfg.session_id = SESSION;
  f->cfg.token = TOKEN;
  f->cfg.max_dave_protocol_version = max_dave;
  f->cfg.aes256_gcm_available = aes;
  f->dave.user_data = f;
  f->dave.on_session = dave_session;
  f->dave.on_reset = dave_reset;
  f->dave.on_text = dave_text;
  f->dave.on_binary = dave_binary;
  f->cfg.dave = &f->dave;
  assert_int_equal(dv_voice_init(&f->v, &f->cfg, &cb, &f->e.env, f), 0);
}

static void fx_free(fx *f) {
  /* Whatever happened, the token never reaches the log. */
  assert_false(dvt_log_contains(&f->e.log, TOKEN));
  assert_false(dvt_log_contains(&f->e.log, "SECRET"));
  dv_voice_free(&f->v);
  dvt_env_free(&f->e);
}

/* ---- driving helpers ---------------------------------------------------- */

static int text(fx *f, const char *s) {
  return dv_voice_on_text(&f->v, s, strlen(s), f->now);
}

static int textf(fx *f, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return text(f, buf);
}

#define expect_out(f, s) expect_out_at(f, s, __LINE__)
static void expect_out_at(fx *f, const char *want, int line) {
  const uint8_t *p;
  size_t len;
  int bin;
  if (dv_voice_next_out(&f->v, &p, &len, &bin) != 1) {
    fail_msg("line %d: no message, wanted %s", line, want);
  }
  if (bin || len != strlen(want) || memcmp(p, want, len) != 0) {
    fail_msg("line %d: got %.*s (binary %d)\n  wanted %s", line, (int)len,
             (const char *)p, bin, want);
  }
}

static void expect_out_bin(fx *f, const uint8_t *want, size_t wantlen) {
  const uint8_t *p;
  size_t len;
  int bin;
  assert_int_equal(dv_voice_next_out(&f->v, &p, &len, &bin), 1);
  assert_int_equal(bin, 1);
  dvt_assert_bytes(p, len, want, wantlen);
}

static void expect_no_out(fx *f) {
  const uint8_t *p;
  size_t len;
  int bin;
  if (dv_voice_next_out(&f->v, &p, &len, &bin) != 0) {
    fail_msg("unexpected message %.*s", (int)len, (const char *)p);
  }
}

static const dv_voice_event *next_ev(fx *f) {
  if (f->rd >= f->nev) {
    return NULL;
  }
  return &f->ev[f->rd++].ev;
}

#define expect_ev(f, t) expect_ev_at(f, t, __LINE__)
static const dv_voice_event *expect_ev_at(fx *f, dv_voice_event_type t,
                                          int line) {
  const dv_voice_event *ev = next_ev(f);
  if (ev == NULL) {
    fail_msg("line %d: no event, wanted type %d", line, (int)t);
  }
  if (ev->type != t) {
    fail_msg("line %d: event type %d, wanted %d", line, (int)ev->type, (int)t);
  }
  return ev;
}

#define expect_state(f, s) expect_state_at(f, s, __LINE__)
static const dv_voice_event *expect_state_at(fx *f, dv_voice_state s,
                                             int line) {
  const dv_voice_event *ev = expect_ev_at(f, DV_VOICE_EV_STATE, line);
  if (ev->u.state.state != s) {
    fail_msg("line %d: state %s, wanted %s", line,
             dv_voice_state_name(ev->u.state.state), dv_voice_state_name(s));
  }
  return ev;
}

static void expect_no_ev(fx *f) {
  const dv_voice_event *ev = next_ev(f);
  if (ev != NULL) {
    fail_msg("unexpected event type %d", (int)ev->type);
  }
}

static void skip_events(fx *f) {
  f->rd = f->nev;
}

/* Runs every deadline up to |to| at its exact time. */
static void advance(fx *f, dvoice_tstamp to) {
  for (;;) {
    dvoice_tstamp e = dv_voice_get_expiry(&f->v);
    if (e == DVOICE_TSTAMP_NONE || e > to) {
      break;
    }
    f->now = e;
    assert_int_equal(dv_voice_handle_expiry(&f->v, e), 0);
  }
  f->now = to;
}

/* The counter RNG's next u32 and the jittered delay the machine computes. */
static uint32_t peek_rand(const fx *f) {
  uint8_t n = f->e.rand.next;
  return ((uint32_t)n << 24) | ((uint32_t)(uint8_t)(n + 1) << 16) |
         ((uint32_t)(uint8_t)(n + 2) << 8) | (uint8_t)(n + 3);
}

static dvoice_tstamp jittered(const fx *f, dvoice_tstamp d) {
  return d / 1000 * (900 + peek_rand(f) % 201);
}

static const char *const KEY_JSON =
    "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
    "26,27,28,29,30,31]";

#define HELLO "{\"op\":8,\"d\":{\"v\":8,\"heartbeat_interval\":13750}}"
#define READY_BOTH                                                             \
  "{\"op\":2,\"d\":{\"ssrc\":12871,\"ip\":\"1.2.3.4\",\"port\":50010,"         \
  "\"modes\":[\"aead_aes256_gcm_rtpsize\","                                    \
  "\"aead_xchacha20_poly1305_rtpsize\",\"xsalsa20_poly1305\"],"                \
  "\"heartbeat_interval\":1,\"experiments\":[]}}"
#define IDENTIFY_JSON                                                          \
  "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":\"222\","                \
  "\"session_id\":\"" SESSION "\",\"token\":\"" TOKEN "\","                    \
  "\"max_dave_protocol_version\":%d}}"

/* Start -> Identify -> Hello -> Ready (state UDP_DISCOVERY). */
static void to_discovery(fx *f, const char *ready) {
  char want[512];
  assert_int_equal(dv_voice_start(&f->v, f->now), 0);
  assert_int_equal(dv_voice_on_open(&f->v, f->now), 0);
  snprintf(want, sizeof(want), IDENTIFY_JSON, f->cfg.max_dave_protocol_version);
  expect_out(f, want);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(text(f, ready), 0);
  assert_int_equal(dv_voice_get_state(&f->v), DV_VOICE_UDP_DISCOVERY);
}

/* ... -> Select Protocol -> Session Description -> Speaking (READY). */
static void to_ready(fx *f) {
  to_discovery(f, READY_BOTH);
  assert_int_equal(
      dv_voice_on_ip_discovered(&f->v, "203.0.113.7", 40000, f->now), 0);
  expect_out(f, "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
                "\"203.0.113.7\",\"port\":40000,\"mode\":"
                "\"aead_aes256_gcm_rtpsize\"}}}");
  assert_int_equal(
      textf(f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
            "\"secret_key\":%s,\"dave_protocol_version\":%d}}",
            KEY_JSON, f->cfg.max_dave_protocol_version),
      0);
  expect_out(f, "{\"op\":5,\"d\":{\"speaking\":0,\"delay\":0,\"ssrc\":12871}}");
  assert_int_equal(dv_voice_get_state(&f->v), DV_VOICE_READY);
  skip_events(f);
}

/* ---- tests ------------------------------------------------------------ */

static void test_happy_path(void **state) {
  fx f;
  const dv_voice_event *ev;
  uint64_t uid;
  (void)state;
  fx_setup(&f, 0, 1);

  f.now = 5 * MS;
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE);
  assert_int_equal(dv_voice_start(&f.v, f.now), 0);
  expect_state(&f, DV_VOICE_CONNECTING);
  ev = expect_ev(&f, DV_VOICE_EV_CONNECT);
  assert_int_equal(ev->u.connect.resume, 0);
  expect_no_ev(&f);
  expect_no_out(&f); /* nothing before the WS opens */
  assert_int_equal(dv_voice_get_expiry(&f.v), 5 * MS + 10 * SEC);

  f.now = 40 * MS;
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":\"222\","
                 "\"session_id\":\"sess-abc\",\"token\":\"" TOKEN "\","
                 "\"max_dave_protocol_version\":0}}");
  expect_no_out(&f);
  expect_state(&f, DV_VOICE_IDENTIFYING);

  f.now = 60 * MS;
  assert_int_equal(text(&f, HELLO), 0);
  /* The handshake deadline comes before the first heartbeat. */
  assert_int_equal(dv_voice_get_expiry(&f.v), 5 * MS + 10 * SEC);

  f.now = 70 * MS;
  assert_int_equal(text(&f, READY_BOTH), 0);
  expect_state(&f, DV_VOICE_UDP_DISCOVERY);
  ev = expect_ev(&f, DV_VOICE_EV_UDP_START);
  assert_string_equal(ev->u.udp.ip, "1.2.3.4");
  assert_int_equal(ev->u.udp.port, 50010);
  assert_int_equal(ev->u.udp.ssrc, 12871);
  expect_no_ev(&f);
  expect_no_out(&f);
  /* Ready's bogus heartbeat_interval (1) is ignored. */
  assert_int_equal(f.v.hb_next, 60 * MS + 13750 * MS);
  assert_int_equal(dv_voice_get_expiry(&f.v), 5 * MS + 10 * SEC);
  assert_false(dv_voice_may_send(&f.v));

  f.now = 90 * MS;
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "203.0.113.7", 40000, f.now),
                   0);
  expect_out(&f, "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
                 "\"203.0.113.7\",\"port\":40000,\"mode\":"
                 "\"aead_aes256_gcm_rtpsize\"}}}");
  expect_state(&f, DV_VOICE_SELECTING);

  f.now = 120 * MS;
  assert_int_equal(
      textf(&f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
            "\"secret_key\":%s,\"dave_protocol_version\":0,"
            "\"audio_codec\":\"opus\",\"media_session_id\":\"m\"}}",
            KEY_JSON),
      0);
  expect_state(&f, DV_VOICE_READY);
  ev = expect_ev(&f, DV_VOICE_EV_SESSION);
  assert_int_equal(ev->u.session.mode, DV_VOICE_MODE_AES256_GCM_RTPSIZE);
  for (int i = 0; i < 32; i++) {
    assert_int_equal(ev->u.session.key[i], i);
  }
  assert_int_equal(ev->u.session.dave_protocol_version, 0);
  assert_int_equal(ev->u.session.ssrc, 12871);
  expect_ev(&f, DV_VOICE_EV_MAY_SEND);
  expect_no_ev(&f);
  /* Speaking precedes any audio. */
  expect_out(&f,
             "{\"op\":5,\"d\":{\"speaking\":0,\"delay\":0,\"ssrc\":12871}}");
  expect_no_out(&f);
  assert_true(dv_voice_may_send(&f.v));
  assert_int_equal(dv_voice_get_mode(&f.v), DV_VOICE_MODE_AES256_GCM_RTPSIZE);
  /* The handshake timeout is gone; only the heartbeat remains. */
  assert_int_equal(dv_voice_get_expiry(&f.v), 60 * MS + 13750 * MS);

  assert_int_equal(dv_voice_set_speaking(&f.v, 1, f.now), 0);
  expect_out(&f,
             "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":12871}}");
  assert_int_equal(dv_voice_set_speaking(&f.v, 1, f.now), 0);
  expect_no_out(&f);
  assert_int_equal(dv_voice_set_speaking(&f.v, 8, f.now),
                   DVOICE_ERR_INVALID_ARGUMENT);

  /* Users arrive, one speaks, one leaves. */
  assert_int_equal(text(&f, "{\"op\":11,\"d\":{\"user_ids\":[\"333\","
                            "\"444\"]},\"seq\":1}"),
                   0);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_CONNECT)->u.user.user_id,
                   333);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_CONNECT)->u.user.user_id,
                   444);
  assert_int_equal(text(&f, "{\"op\":5,\"d\":{\"user_id\":\"444\",\"ssrc\":99,"
                            "\"speaking\":1},\"seq\":2}"),
                   0);
  ev = expect_ev(&f, DV_VOICE_EV_SPEAKING);
  assert_int_equal(ev->u.speaking.user_id, 444);
  assert_int_equal(ev->u.speaking.ssrc, 99);
  assert_int_equal(ev->u.speaking.flags, 1);
  assert_int_equal(dv_voice_user_for_ssrc(&f.v, 99, &uid), 0);
  assert_int_equal(uid, 444);
  assert_int_equal(dv_voice_user_for_ssrc(&f.v, 98, &uid),
                   DVOICE_ERR_NOT_FOUND);
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{\"user_id\":\"333\","
                            "\"flags\":3},\"seq\":3}"),
                   0);
  assert_int_equal(text(&f, "{\"op\":20,\"d\":{\"user_id\":\"333\","
                            "\"platform\":0},\"seq\":4}"),
                   0);
  expect_no_ev(&f);
  assert_int_equal(text(&f, "{\"op\":13,\"d\":{\"user_id\":\"444\"},"
                            "\"seq\":5}"),
                   0);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_DISCONNECT)->u.user.user_id,
                   444);
  assert_int_equal(dv_voice_user_count(&f.v), 1);
  assert_int_equal(dv_voice_user_at(&f.v, 0)->user_id, 333);
  assert_null(dv_voice_user_at(&f.v, 1));
  assert_int_equal(dv_voice_user_for_ssrc(&f.v, 99, &uid),
                   DVOICE_ERR_NOT_FOUND);
  assert_int_equal(dv_voice_last_seq(&f.v), 5);

  /* First heartbeat one interval after Hello: {t: ms, seq_ack}. */
  advance(&f, 60 * MS + 13750 * MS);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":13810,\"seq_ack\":5}}");
  expect_no_out(&f);
  f.now += 31 * MS;
  assert_int_equal(text(&f, "{\"op\":6,\"d\":{\"t\":13810}}"), 0);
  ev = expect_ev(&f, DV_VOICE_EV_HEARTBEAT_ACK);
  assert_int_equal(ev->u.ack.rtt, 31 * MS);
  expect_no_ev(&f);
  assert_int_equal(dv_voice_get_expiry(&f.v), 60 * MS + 2 * 13750 * MS);
  fx_free(&f);
}

static void test_heartbeat_before_any_seq(void **state) {
  fx f;
  (void)state;
  fx_setup(&f, 0, 1);
  assert_int_equal(dv_voice_start(&f.v, 0), 0);
  assert_int_equal(dv_voice_on_open(&f.v, 0), 0);
  expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":\"222\","
                 "\"session_id\":\"sess-abc\",\"token\":\"" TOKEN "\","
                 "\"max_dave_protocol_version\":0}}");
  f.now = 1 * MS;
  /* A real-valued interval is accepted (some servers sent 41250.0). */
  assert_int_equal(text(&f, "{\"op\":8,\"d\":{\"heartbeat_interval\":"
                            "2000.5}}"),
                   0);
  advance(&f, 2002 * MS);
  /* 1 ms + 2000.5 ms = 2001.5 ms: the nonce is the whole ms. */
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":2001,\"seq_ack\":-1}}");
  expect_no_out(&f);
  /* A second Hello re-arms with the new interval. */
  f.now = 2100 * MS;
  assert_int_equal(text(&f, "{\"op\":8,\"d\":{\"heartbeat_interval\":500}}"),
                   0);
  assert_int_equal(dv_voice_get_expiry(&f.v), 2600 * MS);
  assert_true(dvt_log_contains(&f.e.log, "second Hello"));
  fx_free(&f);
}

static void test_speaking_requested_early(void **state) {
  fx f;
  (void)state;
  fx_setup(&f, 0, 1);
  /* Requested before the session: sent with op 5 after Session Description,
   * and audio is allowed only after it. */
  assert_int_equal(dv_voice_set_speaking(&f.v, 5, 0), 0);
  to_discovery(&f, READY_BOTH);
  assert_int_equal(dv_voice_set_speaking(&f.v, 5, 0), 0);
  expect_no_out(&f);
  assert_false(dv_voice_may_send(&f.v));
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "10.0.0.1", 1, 0), 0);
  expect_out(&f, "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
                 "\"10.0.0.1\",\"port\":1,\"mode\":"
                 "\"aead_aes256_gcm_rtpsize\"}}}");
  assert_false(dv_voice_may_send(&f.v));
  assert_int_equal(
      textf(&f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
            "\"secret_key\":%s}}",
            KEY_JSON),
      0);
  expect_out(&f,
             "{\"op\":5,\"d\":{\"speaking\":5,\"delay\":0,\"ssrc\":12871}}");
  assert_true(dv_voice_may_send(&f.v));
  /* The MAY_SEND event comes after SESSION. */
  skip_events(&f);
  {
    int seen_session = 0, seen_may = 0;
    for (int i = 0; i < f.nev; i++) {
      if (f.ev[i].ev.type == DV_VOICE_EV_SESSION) {
        seen_session = i + 1;
        assert_int_equal(f.ev[i].ev.u.session.dave_protocol_version, 0);
      }
      if (f.ev[i].ev.type == DV_VOICE_EV_MAY_SEND) {
        seen_may = i + 1;
      }
    }
    assert_true(seen_session > 0 && seen_may > seen_session);
  }
  fx_free(&f);
}

typedef struct code_case {
  int code;
  int max_dave;
  dv_voice_outcome outcome;
  dv_voice_state state;
} code_case;

static const code_case code_cases[] = {
    {0, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {1000, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {1001, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {1006, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {1011, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {3999, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {4000, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4001, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4002, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4003, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4004, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4005, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4006, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4009, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4011, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4012, 0, DV_VOICE_OUTCOME_FATAL, DV_VOICE_DISCONNECTED},
    {4013, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {4014, 0, DV_VOICE_OUTCOME_WAIT_SERVER, DV_VOICE_WAIT_SERVER},
    {4015, 0, DV_VOICE_OUTCOME_RESUME, DV_VOICE_BACKOFF},
    {4016, 0, DV_VOICE_OUTCOME_FATAL, DV_VOICE_DISCONNECTED},
    {4017, 0, DV_VOICE_OUTCOME_FATAL, DV_VOICE_DISCONNECTED},
    {4017, 1, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4020, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4021, 0, DV_VOICE_OUTCOME_DISCONNECTED, DV_VOICE_DISCONNECTED},
    {4022, 0, DV_VOICE_OUTCOME_WAIT_SERVER, DV_VOICE_WAIT_SERVER},
    {4023, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {4999, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
    {5000, 0, DV_VOICE_OUTCOME_NEW_SESSION, DV_VOICE_NEED_SESSION},
};

static void test_close_code_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(code_cases) / sizeof(code_cases[0]); i++) {
    const code_case *c = &code_cases[i];
    const dv_voice_event *ev;
    dv_voice_policy p = dv_voice_policy_for(c->code, c->max_dave > 0);
    fx f;
    if (p.outcome != c->outcome) {
      fail_msg("policy for %d: %s, wanted %s", c->code,
               dv_voice_outcome_name(p.outcome),
               dv_voice_outcome_name(c->outcome));
    }
    fx_setup(&f, c->max_dave, 1);
    f.now = 1 * SEC;
    to_ready(&f);
    f.now = 2 * SEC;
    assert_int_equal(dv_voice_on_close(&f.v, c->code, f.now), 0);
    /* The server closed it: no CLOSE_WS, only the decision. */
    ev = expect_ev(&f, DV_VOICE_EV_STATE);
    if (ev->u.state.state != c->state || ev->u.state.outcome != c->outcome) {
      fail_msg("code %d: %s/%s, wanted %s/%s", c->code,
               dv_voice_state_name(ev->u.state.state),
               dv_voice_outcome_name(ev->u.state.outcome),
               dv_voice_state_name(c->state),
               dv_voice_outcome_name(c->outcome));
    }
    assert_int_equal(ev->u.state.close_code, c->code);
    assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_CLOSED);
    assert_int_equal(ev->u.state.old_state, DV_VOICE_READY);
    expect_no_ev(&f);
    expect_no_out(&f);
    /* Resume keeps the session (audio may continue over UDP); every other
     * outcome ends it. */
    assert_int_equal(dv_voice_may_send(&f.v),
                     c->outcome == DV_VOICE_OUTCOME_RESUME);
    switch (c->state) {
      case DV_VOICE_BACKOFF:
        assert_int_equal(ev->u.state.deadline, dv_voice_get_expiry(&f.v));
        assert_true(ev->u.state.deadline >= f.now + 225 * MS &&
                    ev->u.state.deadline <= f.now + 275 * MS);
        break;
      case DV_VOICE_NEED_SESSION:
        assert_int_equal(dv_voice_get_expiry(&f.v), f.now + 10 * SEC);
        break;
      case DV_VOICE_WAIT_SERVER:
        assert_int_equal(dv_voice_get_expiry(&f.v), f.now + 5 * SEC);
        break;
      default:
        assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE);
        assert_int_equal(dv_voice_on_close(&f.v, 1000, f.now),
                         DVOICE_ERR_INVALID_STATE);
        break;
    }
    fx_free(&f);
  }
}

/* Close codes before the first Session Description: nothing to resume. */
static void test_close_before_session(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  to_discovery(&f, READY_BOTH);
  skip_events(&f);
  assert_int_equal(dv_voice_on_close(&f.v, 1006, f.now), 0);
  ev = expect_state(&f, DV_VOICE_NEED_SESSION);
  assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_NEW_SESSION);
  assert_int_equal(ev->u.state.close_code, 1006);
  fx_free(&f);
}

/* One-shot codes: a second 4004 in a row is fatal, never a loop. */
static void test_once_codes_give_up(void **state) {
  static const struct {
    int code;
    dv_voice_outcome final;
  } cases[] = {{4004, DV_VOICE_OUTCOME_FATAL},
               {4001, DV_VOICE_OUTCOME_DISCONNECTED},
               {4020, DV_VOICE_OUTCOME_DISCONNECTED},
               {4017, DV_VOICE_OUTCOME_FATAL}};
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fx f;
    const dv_voice_event *ev;
    fx_setup(&f, 1, 1);
    to_ready(&f);
    assert_int_equal(dv_voice_on_close(&f.v, cases[i].code, f.now), 0);
    expect_state(&f, DV_VOICE_NEED_SESSION);
    assert_int_equal(dv_voice_new_session(&f.v, "s2", "t2", f.now), 0);
    skip_events(&f);
    advance(&f, f.now + 1 * SEC);
    assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_CONNECTING);
    assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
    expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":"
                   "\"222\",\"session_id\":\"s2\",\"token\":\"t2\","
                   "\"max_dave_protocol_version\":1}}");
    skip_events(&f);
    assert_int_equal(dv_voice_on_close(&f.v, cases[i].code, f.now), 0);
    ev = expect_state(&f, DV_VOICE_DISCONNECTED);
    assert_int_equal(ev->u.state.outcome, cases[i].final);
    assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_RETRIES_EXHAUSTED);
    assert_int_equal(ev->u.state.close_code, cases[i].code);
    assert_int_equal(dv_voice_new_session(&f.v, "s3", "t3", f.now),
                     DVOICE_ERR_INVALID_STATE);
    fx_free(&f);
  }
}

static void test_zombie_after_three_missed_acks(void **state) {
  fx f;
  const dv_voice_event *ev;
  const dvoice_tstamp hello = 1000 * MS, iv = 13750 * MS;
  dvoice_tstamp zombie_at, want_deadline;
  (void)state;
  fx_setup(&f, 0, 1);
  assert_int_equal(dv_voice_start(&f.v, 0), 0);
  assert_int_equal(dv_voice_on_open(&f.v, 0), 0);
  dv_voice_next_out(&f.v, &(const uint8_t *){NULL}, &(size_t){0}, &(int){0});
  f.now = hello;
  assert_int_equal(text(&f, HELLO), 0);
  assert_int_equal(text(&f, READY_BOTH), 0);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "10.0.0.1", 5, f.now), 0);
  assert_int_equal(
      textf(&f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
            "\"secret_key\":%s}}",
            KEY_JSON),
      0);
  while (dv_voice_next_out(&f.v, &(const uint8_t *){NULL}, &(size_t){0},
                           &(int){0})) {
  }
  skip_events(&f);

  /* Three beats at exact multiples of the interval, none acknowledged. */
  advance(&f, hello + iv - 1);
  expect_no_out(&f);
  advance(&f, hello + iv);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":14750,\"seq_ack\":-1}}");
  advance(&f, hello + 2 * iv);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":28500,\"seq_ack\":-1}}");
  advance(&f, hello + 3 * iv);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":42250,\"seq_ack\":-1}}");
  expect_no_ev(&f);
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_READY);
  /* At the fourth tick the machine gives up on the socket and resumes. */
  zombie_at = hello + 4 * iv;
  advance(&f, zombie_at - 1);
  expect_no_ev(&f);
  want_deadline = zombie_at + jittered(&f, 250 * MS);
  advance(&f, zombie_at);
  expect_no_out(&f);
  ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  assert_int_equal(ev->u.close_ws.code, 4000);
  ev = expect_state(&f, DV_VOICE_BACKOFF);
  assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_RESUME);
  assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_ZOMBIE);
  assert_int_equal(ev->u.state.close_code, 0);
  assert_int_equal(ev->u.state.deadline, want_deadline);
  assert_int_equal(dv_voice_get_expiry(&f.v), want_deadline);
  /* The glue must not report that socket's close. */
  assert_int_equal(dv_voice_on_close(&f.v, 4000, f.now),
                   DVOICE_ERR_INVALID_STATE);
  advance(&f, want_deadline);
  expect_state(&f, DV_VOICE_CONNECTING);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 1);
  fx_free(&f);
}

static void test_acks_keep_alive(void **state) {
  fx f;
  const dvoice_tstamp iv = 13750 * MS;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  for (int i = 1; i <= 10; i++) {
    char ack[64];
    advance(&f, i * iv);
    snprintf(ack, sizeof(ack), "{\"op\":3,\"d\":{\"t\":%llu,\"seq_ack\":-1}}",
             (unsigned long long)(i * iv / MS));
    expect_out(&f, ack);
    /* Only every other beat is acknowledged: never 3 in a row missing. */
    if (i % 2 == 0) {
      snprintf(ack, sizeof(ack), "{\"op\":6,\"d\":{\"t\":%llu}}",
               (unsigned long long)(i * iv / MS));
      assert_int_equal(text(&f, ack), 0);
    }
  }
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_READY);
  /* A stale or foreign nonce still proves liveness but gives no RTT. */
  skip_events(&f);
  assert_int_equal(text(&f, "{\"op\":6,\"d\":{\"t\":1}}"), 0);
  expect_no_ev(&f);
  fx_free(&f);
}

static void test_resume_and_replay(void **state) {
  fx f;
  const dv_voice_event *ev;
  dvoice_tstamp dl;
  (void)state;
  fx_setup(&f, 0, 0);
  f.now = 1 * SEC;
  assert_int_equal(dv_voice_start(&f.v, f.now), 0);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  assert_int_equal(text(&f, HELLO), 0);
  assert_int_equal(text(&f, READY_BOTH), 0);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "10.0.0.1", 5, f.now), 0);
  assert_int_equal(
      textf(&f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_xchacha20_poly1305_rtpsize\","
            "\"secret_key\":%s}}",
            KEY_JSON),
      0);
  while (dv_voice_next_out(&f.v, &(const uint8_t *){NULL}, &(size_t){0},
                           &(int){0})) {
  }
  assert_int_equal(text(&f, "{\"op\":11,\"d\":{\"user_ids\":[\"5\"]},"
                            "\"seq\":5}"),
                   0);
  assert_int_equal(text(&f, "{\"op\":5,\"d\":{\"user_id\":\"5\",\"ssrc\":7,"
                            "\"speaking\":1},\"seq\":6}"),
                   0);
  skip_events(&f);

  f.now = 2 * SEC;
  dl = f.now + jittered(&f, 250 * MS);
  assert_int_equal(dv_voice_on_close(&f.v, 1006, f.now), 0);
  ev = expect_state(&f, DV_VOICE_BACKOFF);
  assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_RESUME);
  assert_int_equal(ev->u.state.deadline, dl);
  /* No heartbeats without a socket. */
  assert_int_equal(dv_voice_get_expiry(&f.v), dl);
  advance(&f, dl);
  expect_state(&f, DV_VOICE_CONNECTING);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 1);
  f.now += 50 * MS;
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  expect_out(&f, "{\"op\":7,\"d\":{\"server_id\":\"111\",\"session_id\":"
                 "\"sess-abc\",\"token\":\"" TOKEN "\",\"seq_ack\":6}}");
  expect_no_out(&f);
  expect_state(&f, DV_VOICE_RESUMING);
  expect_no_ev(&f); /* users kept, DAVE not reset */
  assert_int_equal(text(&f, HELLO), 0);
  assert_int_equal(text(&f, "{\"op\":9,\"d\":null}"), 0);
  expect_state(&f, DV_VOICE_READY);
  expect_ev(&f, DV_VOICE_EV_RESUMED);
  expect_no_ev(&f);
  expect_out(&f,
             "{\"op\":5,\"d\":{\"speaking\":0,\"delay\":0,\"ssrc\":12871}}");
  assert_true(dv_voice_may_send(&f.v));
  assert_int_equal(dv_voice_ssrc(&f.v), 12871);
  assert_int_equal(dv_voice_get_mode(&f.v), DV_VOICE_MODE_XCHACHA20_RTPSIZE);

  /* The server replays from an older point: seq 5 and 6 were seen. */
  assert_int_equal(text(&f, "{\"op\":11,\"d\":{\"user_ids\":[\"5\"]},"
                            "\"seq\":5}"),
                   0);
  assert_int_equal(text(&f, "{\"op\":5,\"d\":{\"user_id\":\"5\",\"ssrc\":7,"
                            "\"speaking\":1},\"seq\":6}"),
                   0);
  expect_no_ev(&f);
  assert_int_equal(dv_voice_last_seq(&f.v), 6);
  /* Then the message we missed. */
  assert_int_equal(text(&f, "{\"op\":13,\"d\":{\"user_id\":\"5\"},"
                            "\"seq\":7}"),
                   0);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_DISCONNECT)->u.user.user_id,
                   5);
  assert_int_equal(dv_voice_last_seq(&f.v), 7);
  /* Resumed again in READY is a protocol error. */
  assert_int_equal(text(&f, "{\"op\":9,\"d\":null}"), DVOICE_ERR_PROTO);
  fx_free(&f);
}

static void test_resume_refused(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  assert_int_equal(dv_voice_on_close(&f.v, 4015, f.now), 0);
  advance(&f, f.now + 1 * SEC);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  skip_events(&f);
  /* A 4xxx close during the resume: the session is gone. Even 4015. */
  assert_int_equal(dv_voice_on_close(&f.v, 4015, f.now), 0);
  ev = expect_state(&f, DV_VOICE_NEED_SESSION);
  assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_NEW_SESSION);
  assert_false(dv_voice_may_send(&f.v));
  fx_free(&f);
}

static uint8_t bin_frame[64];

static const uint8_t *frame(uint16_t seq, uint8_t op, const char *payload,
                            size_t *len) {
  size_t n = strlen(payload);
  dv_put_u16(bin_frame, seq);
  bin_frame[2] = op;
  memcpy(bin_frame + 3, payload, n);
  *len = n + 3;
  return bin_frame;
}

static void test_seq_zero_and_wrap(void **state) {
  fx f;
  const uint8_t *p;
  size_t n;
  (void)state;
  fx_setup(&f, 1, 1);
  to_ready(&f);
  f.ndv = 0;
  /* seq 0 is a seen seq (discord.js's `if (packet.seq)` bug). */
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":0}"), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 0);
  advance(&f, 13750 * MS);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":13750,\"seq_ack\":0}}");
  /* Walk the shared space up to the u16 wrap in steps below 2^15. */
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":30000}"), 0);
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":60000}"), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 60000);
  /* A seq behind (and a repeat) is a replay and is dropped. */
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":50000}"), 0);
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":60000}"), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 60000);
  /* Binary frames across the wrap: 65534, 65535, 0. */
  p = frame(65534, 27, "\x01", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 65534);
  p = frame(65535, 29, "\x00\x01", &n);
  n = 5;
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 65535);
  p = frame(0, 30, "xy", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 0);
  assert_int_equal(f.ndv, 3);
  assert_int_equal(f.dv[0].op, 27);
  assert_int_equal(f.dv[1].op, 29);
  assert_int_equal(f.dv[1].len, 2);
  assert_int_equal(f.dv[2].op, 30);
  /* A replay of 65535 after the wrap is old. */
  p = frame(65535, 29, "zz", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(f.ndv, 3);
  assert_int_equal(dv_voice_last_seq(&f.v), 0);
  /* Text continues the shared space. */
  assert_int_equal(text(&f, "{\"op\":18,\"d\":{},\"seq\":1}"), 0);
  advance(&f, 2 * 13750 * MS);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":27500,\"seq_ack\":1}}");
  /* Unknown binary op: ignored, seq kept. */
  p = frame(2, 99, "", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 2);
  assert_int_equal(f.ndv, 3);
  /* Unknown text op: ignored, seq kept. */
  assert_int_equal(text(&f, "{\"op\":77,\"d\":[1,2],\"seq\":3}"), 0);
  assert_int_equal(dv_voice_last_seq(&f.v), 3);
  fx_free(&f);
}

typedef struct mode_case {
  const char *modes;
  int aes;
  const char *want; /* NULL: no common mode */
} mode_case;

static void test_mode_selection(void **state) {
  static const mode_case cases[] = {
      {"[\"aead_xchacha20_poly1305_rtpsize\",\"aead_aes256_gcm_rtpsize\"]", 1,
       "aead_aes256_gcm_rtpsize"},
      {"[\"aead_aes256_gcm_rtpsize\",\"aead_xchacha20_poly1305_rtpsize\"]", 0,
       "aead_xchacha20_poly1305_rtpsize"},
      {"[\"aead_xchacha20_poly1305_rtpsize\"]", 1,
       "aead_xchacha20_poly1305_rtpsize"},
      {"[\"xsalsa20_poly1305_lite\",\"aead_xchacha20_poly1305_rtpsize\","
       "\"aead_aes256_gcm\"]",
       1, "aead_xchacha20_poly1305_rtpsize"},
      {"[\"aead_aes256_gcm_rtpsize\"]", 0, NULL},
      {"[\"xsalsa20_poly1305\",\"xsalsa20_poly1305_suffix\","
       "\"xsalsa20_poly1305_lite\",\"aead_aes256_gcm\","
       "\"xsalsa20_poly1305_lite_rtpsize\"]",
       1, NULL},
      {"[]", 1, NULL},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fx f;
    int rv;
    const dv_voice_event *ev;
    fx_setup(&f, 0, cases[i].aes);
    assert_int_equal(dv_voice_start(&f.v, 0), 0);
    assert_int_equal(dv_voice_on_open(&f.v, 0), 0);
    skip_events(&f);
    expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":"
                   "\"222\",\"session_id\":\"sess-abc\",\"token\":\"" TOKEN
                   "\",\"max_dave_protocol_version\":0}}");
    rv = textf(&f,
               "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4\",\"port\":9,"
               "\"modes\":%s}}",
               cases[i].modes);
    if (cases[i].want == NULL) {
      assert_int_equal(rv, DVOICE_ERR_UNSUPPORTED);
      ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
      assert_int_equal(ev->u.close_ws.code, 1000);
      ev = expect_state(&f, DV_VOICE_DISCONNECTED);
      assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_FATAL);
      assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_NO_COMMON_MODE);
      expect_no_out(&f);
    } else {
      char want[256];
      assert_int_equal(rv, 0);
      assert_int_equal(dv_voice_on_ip_discovered(&f.v, "9.9.9.9", 9, 0), 0);
      snprintf(want, sizeof(want),
               "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
               "\"9.9.9.9\",\"port\":9,\"mode\":\"%s\"}}}",
               cases[i].want);
      expect_out(&f, want);
      /* The server must confirm the mode we asked for. */
      rv = textf(&f, "{\"op\":4,\"d\":{\"mode\":\"%s\",\"secret_key\":%s}}",
                 strcmp(cases[i].want, "aead_aes256_gcm_rtpsize") == 0
                     ? "aead_xchacha20_poly1305_rtpsize"
                     : "aead_aes256_gcm_rtpsize",
                 KEY_JSON);
      assert_int_equal(rv, DVOICE_ERR_PROTO);
    }
    fx_free(&f);
  }
}

static void test_backoff_bounded(void **state) {
  fx f;
  const dv_voice_event *ev;
  int connects = 0;
  dvoice_tstamp base = 250 * MS;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  /* Resume attempts: 250, 500, 1000 ms (+-10 %), each failing at once. */
  for (int k = 1; k <= 3; k++) {
    dvoice_tstamp want = f.now + jittered(&f, base << (k - 1));
    assert_int_equal(dv_voice_on_close(&f.v, 1006, f.now), 0);
    ev = expect_state(&f, DV_VOICE_BACKOFF);
    assert_int_equal(ev->u.state.deadline, want);
    assert_true(ev->u.state.deadline - f.now >= (base << (k - 1)) / 10 * 9);
    assert_true(ev->u.state.deadline - f.now <= (base << (k - 1)) / 10 * 11);
    advance(&f, want);
    expect_state(&f, DV_VOICE_CONNECTING);
    assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 1);
    connects++;
  }
  /* The fourth failure gives up resuming; new sessions follow, each
   * after its own backoff, five at most. */
  {
    dvoice_tstamp want = f.now + jittered(&f, base);
    assert_int_equal(dv_voice_on_close(&f.v, 1006, f.now), 0);
    ev = expect_state(&f, DV_VOICE_NEED_SESSION);
    assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_NEW_SESSION);
    for (int k = 1; k <= 5; k++) {
      assert_int_equal(dv_voice_new_session(&f.v, "s", "t", f.now), 0);
      ev = expect_state(&f, DV_VOICE_BACKOFF);
      assert_int_equal(ev->u.state.deadline, want);
      advance(&f, want);
      expect_state(&f, DV_VOICE_CONNECTING);
      assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 0);
      connects++;
      assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
      expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":"
                     "\"222\",\"session_id\":\"s\",\"token\":\"t\","
                     "\"max_dave_protocol_version\":0}}");
      skip_events(&f);
      want = f.now + jittered(&f, base << k);
      assert_int_equal(dv_voice_on_close(&f.v, 4006, f.now), 0);
      if (k < 5) {
        ev = expect_state(&f, DV_VOICE_NEED_SESSION);
        assert_int_equal(ev->u.state.close_code, 4006);
      }
    }
  }
  ev = expect_state(&f, DV_VOICE_DISCONNECTED);
  assert_int_equal(ev->u.state.outcome, DV_VOICE_OUTCOME_DISCONNECTED);
  assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_RETRIES_EXHAUSTED);
  assert_int_equal(connects, 8);
  /* Nothing is ever scheduled again. */
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE);
  advance(&f, f.now + 3600 * SEC);
  expect_no_ev(&f);
  fx_free(&f);
}

static void test_backoff_capped(void **state) {
  fx f;
  dv_voice_callbacks cb = {on_event};
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  dv_voice_free(&f.v);
  f.cfg.backoff_base = 400 * MS;
  f.cfg.backoff_max = 1 * SEC;
  f.cfg.max_resume_attempts = 6;
  assert_int_equal(dv_voice_init(&f.v, &f.cfg, &cb, &f.e.env, &f), 0);
  to_ready(&f);
  /* 400, 800, then capped at 1000 ms, always within +-10 %. */
  for (int k = 1; k <= 6; k++) {
    dvoice_tstamp nominal = k == 1 ? 400 * MS : k == 2 ? 800 * MS : 1 * SEC;
    dvoice_tstamp want = f.now + jittered(&f, nominal);
    assert_int_equal(dv_voice_on_close(&f.v, 0, f.now), 0);
    ev = expect_state(&f, DV_VOICE_BACKOFF);
    assert_int_equal(ev->u.state.deadline, want);
    assert_true(want - f.now <= 1100 * MS);
    advance(&f, want);
    skip_events(&f);
  }
  assert_int_equal(dv_voice_on_close(&f.v, 0, f.now), 0);
  expect_state(&f, DV_VOICE_NEED_SESSION);
  fx_free(&f);
}

/* Resumes that succeed but die at once still count: no endless loop. */
static void test_flapping_resume_is_bounded(void **state) {
  fx f;
  int resumes = 0;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  for (;;) {
    assert_int_equal(dv_voice_on_close(&f.v, 1001, f.now), 0);
    if (dv_voice_get_state(&f.v) != DV_VOICE_BACKOFF) {
      break;
    }
    advance(&f, dv_voice_get_expiry(&f.v));
    assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
    assert_int_equal(text(&f, HELLO), 0);
    assert_int_equal(text(&f, "{\"op\":9,\"d\":null}"), 0);
    assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_READY);
    f.now += 5 * SEC;
    resumes++;
    assert_true(resumes < 10);
  }
  assert_int_equal(resumes, 3);
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_NEED_SESSION);
  fx_free(&f);
}

/* A connection READY for 60 s earns a fresh set of retries. */
static void test_stable_connection_resets_counters(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  for (int round = 0; round < 5; round++) {
    dvoice_tstamp want;
    /* Keep the heartbeats acknowledged while time passes. */
    for (int i = 0; i < 5; i++) {
      const uint8_t *p;
      size_t n;
      int bin;
      char ack[64];
      advance(&f, f.now + 13750 * MS);
      while (dv_voice_next_out(&f.v, &p, &n, &bin)) {
      }
      snprintf(ack, sizeof(ack), "{\"op\":6,\"d\":{\"t\":%lld}}",
               (long long)f.v.hb_nonce);
      assert_int_equal(text(&f, ack), 0);
    }
    skip_events(&f);
    want = f.now + jittered(&f, 250 * MS);
    assert_int_equal(dv_voice_on_close(&f.v, 1006, f.now), 0);
    ev = expect_state(&f, DV_VOICE_BACKOFF);
    /* Always the first attempt's delay. */
    assert_int_equal(ev->u.state.deadline, want);
    advance(&f, want);
    assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
    assert_int_equal(text(&f, HELLO), 0);
    assert_int_equal(text(&f, "{\"op\":9,\"d\":null}"), 0);
    while (dv_voice_next_out(&f.v, &(const uint8_t *){NULL}, &(size_t){0},
                             &(int){0})) {
    }
  }
  fx_free(&f);
}

typedef enum prep { AT_IDENTIFYING, AT_SELECTING, AT_READY } prep;

typedef struct bad_case {
  prep at;
  const char *msg;
} bad_case;

static void prep_to(fx *f, prep at) {
  switch (at) {
    case AT_IDENTIFYING:
      assert_int_equal(dv_voice_start(&f->v, f->now), 0);
      assert_int_equal(dv_voice_on_open(&f->v, f->now), 0);
      assert_int_equal(text(f, HELLO), 0);
      break;
    case AT_SELECTING:
      to_discovery(f, READY_BOTH);
      assert_int_equal(dv_voice_on_ip_discovered(&f->v, "1.1.1.1", 2, f->now),
                       0);
      break;
    case AT_READY:
      to_ready(f);
      break;
  }
  while (dv_voice_next_out(&f->v, &(const uint8_t *){NULL}, &(size_t){0},
                           &(int){0})) {
  }
  skip_events(f);
}

static void test_malformed_rejected(void **state) {
  static const bad_case cases[] = {
      {AT_READY, "not json"},
      {AT_READY, "{\"op\":\"5\",\"d\":{}}"},
      {AT_READY, "{\"op\":5,\"d\":{},\"seq\":\"9\"}"},
      {AT_READY, "{\"op\":8,\"d\":{\"heartbeat_interval\":\"13750\"}}"},
      {AT_READY, "{\"op\":8,\"d\":{\"heartbeat_interval\":0}}"},
      {AT_READY, "{\"op\":8,\"d\":{\"heartbeat_interval\":-5}}"},
      {AT_READY, "{\"op\":8,\"d\":{\"heartbeat_interval\":1e12}}"},
      {AT_READY, "{\"op\":8,\"d\":null}"},
      {AT_READY, "{\"op\":6,\"d\":{\"t\":\"1\"}}"},
      {AT_READY, "{\"op\":6,\"d\":1}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":444,\"ssrc\":1,"
                 "\"speaking\":1}}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":\"12a\",\"ssrc\":1,"
                 "\"speaking\":1}}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":\"18446744073709551616\","
                 "\"ssrc\":1,\"speaking\":1}}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":\"4\",\"ssrc\":-1,"
                 "\"speaking\":1}}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":\"4\",\"ssrc\":4294967296,"
                 "\"speaking\":1}}"},
      {AT_READY, "{\"op\":5,\"d\":{\"user_id\":\"4\",\"ssrc\":1}}"},
      {AT_READY, "{\"op\":11,\"d\":{\"user_ids\":\"5\"}}"},
      {AT_READY, "{\"op\":11,\"d\":{\"user_ids\":[\"5\",\"x\"]}}"},
      {AT_READY, "{\"op\":11,\"d\":{\"user_ids\":[\"5\",6]}}"},
      {AT_READY, "{\"op\":11,\"d\":null}"},
      {AT_READY, "{\"op\":13,\"d\":{}}"},
      {AT_READY, "{\"op\":13,\"d\":{\"user_id\":\"-5\"}}"},
      {AT_READY, READY_BOTH},
      {AT_READY, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
                 "\"secret_key\":[]}}"},
      {AT_READY, "{\"op\":9,\"d\":null}"},
      {AT_READY, "{\"op\":21,\"d\":5}"},
      {AT_READY, "{\"op\":22}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ip\":\"1.2.3.4\",\"port\":1,"
                       "\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3\","
                       "\"port\":1,\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4.5\","
                       "\"port\":1,\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":1234,"
                       "\"port\":1,\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4\","
                       "\"port\":0,\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4\","
                       "\"port\":65536,\"modes\":[]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4\","
                       "\"port\":1,\"modes\":[\"aead_aes256_gcm_rtpsize\","
                       "7]}}"},
      {AT_IDENTIFYING, "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"1.2.3.4\","
                       "\"port\":1}}"},
      {AT_IDENTIFYING, "{\"op\":4,\"d\":{}}"},
      {AT_IDENTIFYING, "{\"op\":9,\"d\":null}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
                     "\"secret_key\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
                     "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30]}}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
                     "\"secret_key\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
                     "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,256]}}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
                     "\"secret_key\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
                     "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,\"1\"]}}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
                     "\"secret_key\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,"
                     "16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31],"
                     "\"dave_protocol_version\":1}}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"secret_key\":[0,1,2,3,4,5,6,7,8,9,"
                     "10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,"
                     "28,29,30,31]}}"},
      {AT_SELECTING, "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\"}}"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fx f;
    int rv;
    const dv_voice_event *ev;
    fx_setup(&f, 0, 1);
    prep_to(&f, cases[i].at);
    rv = text(&f, cases[i].msg);
    if (rv != DVOICE_ERR_PROTO) {
      fail_msg("case %zu (%s): %d", i, cases[i].msg, rv);
    }
    /* Nothing half-done: no user events, the WS is dropped with 4000. */
    ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
    assert_int_equal(ev->u.close_ws.code, 4000);
    ev = expect_ev(&f, DV_VOICE_EV_STATE);
    assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_PROTOCOL_ERROR);
    assert_int_equal(ev->u.state.state, cases[i].at == AT_READY
                                            ? DV_VOICE_BACKOFF
                                            : DV_VOICE_NEED_SESSION);
    expect_no_ev(&f);
    expect_no_out(&f);
    /* Further input for the dead socket is refused without effect. */
    assert_int_equal(text(&f, HELLO), DVOICE_ERR_INVALID_STATE);
    fx_free(&f);
  }
}

static void test_binary_too_short(void **state) {
  static const uint8_t two[] = {0x00, 0x01};
  fx f;
  (void)state;
  fx_setup(&f, 1, 1);
  prep_to(&f, AT_READY);
  assert_int_equal(dv_voice_on_binary(&f.v, two, sizeof(two), f.now),
                   DVOICE_ERR_PROTO);
  expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  expect_state(&f, DV_VOICE_BACKOFF);
  assert_int_equal(dv_voice_on_binary(&f.v, two, sizeof(two), f.now),
                   DVOICE_ERR_INVALID_STATE);
  fx_free(&f);
}

static void test_dave_interface(void **state) {
  fx f;
  const uint8_t *p;
  size_t n;
  static const uint8_t kp[] = {26, 0x00, 0x01, 0x00, 0x02, 0xaa};
  (void)state;
  fx_setup(&f, 1, 1);
  f.dave_send = 1;
  to_discovery(&f, READY_BOTH);
  /* on_reset ran when the new session identified. */
  assert_int_equal(f.ndv, 1);
  assert_int_equal(f.dv[0].kind, 4);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "1.1.1.1", 2, f.now), 0);
  expect_out(&f, "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
                 "\"1.1.1.1\",\"port\":2,\"mode\":"
                 "\"aead_aes256_gcm_rtpsize\"}}}");
  assert_int_equal(
      textf(&f,
            "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
            "\"secret_key\":%s,\"dave_protocol_version\":1}}",
            KEY_JSON),
      0);
  /* Speaking first, then the key package DAVE queued from on_session. */
  expect_out(&f,
             "{\"op\":5,\"d\":{\"speaking\":0,\"delay\":0,\"ssrc\":12871}}");
  expect_out_bin(&f, kp, sizeof(kp));
  expect_no_out(&f);
  assert_int_equal(f.dv[1].kind, 3);
  assert_int_equal(f.dv[1].op, 1);

  /* Binary server frames: [seq][op][payload] -> (op, payload). */
  p = frame(1, 25, "\x40\x41\x42", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(f.dv[2].kind, 2);
  assert_int_equal(f.dv[2].op, 25);
  dvt_assert_bytes(f.dv[2].payload, f.dv[2].len,
                   (const uint8_t *)"\x40\x41\x42", 3);
  p = frame(2, 30, "", &n);
  bin_frame[3] = 0x00;
  bin_frame[4] = 0x07;
  bin_frame[5] = 0xee;
  n = 6;
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(f.dv[3].op, 30);
  dvt_assert_bytes(f.dv[3].payload, f.dv[3].len,
                   (const uint8_t *)"\x00\x07\xee", 3);
  /* Empty payload is handed over as such. */
  p = frame(3, 27, "", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(f.dv[4].op, 27);
  assert_int_equal(f.dv[4].len, 0);

  /* JSON DAVE ops, and a reply queued from the hook. */
  assert_int_equal(text(&f, "{\"op\":21,\"d\":{\"transition_id\":3,"
                            "\"protocol_version\":0},\"seq\":4}"),
                   0);
  assert_int_equal(f.dv[5].kind, 1);
  assert_int_equal(f.dv[5].op, 21);
  assert_int_equal(f.dv[5].transition_id, 3);
  expect_out(&f, "{\"op\":23,\"d\":{\"transition_id\":3}}");
  assert_int_equal(text(&f, "{\"op\":22,\"d\":{\"transition_id\":3},"
                            "\"seq\":5}"),
                   0);
  assert_int_equal(f.dv[6].op, 22);
  assert_int_equal(text(&f, "{\"op\":24,\"d\":{\"epoch\":1,"
                            "\"protocol_version\":1},\"seq\":6}"),
                   0);
  assert_int_equal(f.dv[7].op, 24);
  assert_int_equal(f.ndv, 8);
  assert_int_equal(dv_voice_last_seq(&f.v), 6);
  /* Client ops arriving from the server are not DAVE input. */
  assert_int_equal(text(&f, "{\"op\":23,\"d\":{\"transition_id\":3}}"), 0);
  assert_int_equal(f.ndv, 8);

  /* A failing hook drops the connection like any protocol error. */
  f.dave_fail = DVOICE_ERR_PROTO;
  p = frame(7, 29, "\x00\x01", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), DVOICE_ERR_PROTO);
  skip_events(&f);
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_BACKOFF);
  /* The failed frame's seq was not acknowledged: a resume replays it. */
  assert_int_equal(dv_voice_last_seq(&f.v), 6);
  /* No client frames without a socket. */
  assert_int_equal(dv_voice_send_binary(&f.v, 26, kp, 1),
                   DVOICE_ERR_INVALID_STATE);
  fx_free(&f);
}

static void test_dave_default_does_nothing(void **state) {
  fx f;
  dv_voice_callbacks cb = {on_event};
  const uint8_t *p;
  size_t n;
  (void)state;
  fx_setup(&f, 1, 1);
  dv_voice_free(&f.v);
  f.cfg.dave = NULL;
  assert_int_equal(dv_voice_init(&f.v, &f.cfg, &cb, &f.e.env, &f), 0);
  to_ready(&f);
  p = frame(9, 25, "abc", &n);
  assert_int_equal(dv_voice_on_binary(&f.v, p, n, f.now), 0);
  assert_int_equal(text(&f, "{\"op\":21,\"d\":{\"transition_id\":1}}"), 0);
  assert_int_equal(f.ndv, 0);
  expect_no_out(&f);
  assert_int_equal(dv_voice_last_seq(&f.v), 9);
  fx_free(&f);
}

static void test_wait_server(void **state) {
  fx f;
  const dv_voice_event *ev;
  dvoice_tstamp retry;
  (void)state;
  /* A move: 4014, then a new server within the wait. */
  fx_setup(&f, 0, 1);
  to_ready(&f);
  assert_int_equal(text(&f, "{\"op\":11,\"d\":{\"user_ids\":[\"9\"]}}"), 0);
  skip_events(&f);
  f.now = 100 * SEC;
  retry = f.now + jittered(&f, 250 * MS);
  assert_int_equal(dv_voice_on_close(&f.v, 4014, f.now), 0);
  ev = expect_state(&f, DV_VOICE_WAIT_SERVER);
  assert_int_equal(ev->u.state.deadline, f.now + 5 * SEC);
  f.now += 2 * SEC;
  assert_int_equal(dv_voice_new_session(&f.v, "s-new", "t-new", f.now), 0);
  /* The backoff already elapsed: connect at once. */
  assert_true(retry < f.now);
  expect_state(&f, DV_VOICE_CONNECTING);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 0);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  expect_out(&f, "{\"op\":0,\"d\":{\"server_id\":\"111\",\"user_id\":\"222\","
                 "\"session_id\":\"s-new\",\"token\":\"t-new\","
                 "\"max_dave_protocol_version\":0}}");
  /* The old session's users are gone. */
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_DISCONNECT)->u.user.user_id,
                   9);
  assert_int_equal(dv_voice_user_count(&f.v), 0);
  fx_free(&f);

  /* A kick: nobody calls new_session; give up at the deadline. */
  fx_setup(&f, 0, 1);
  to_ready(&f);
  f.now = 100 * SEC;
  assert_int_equal(dv_voice_on_close(&f.v, 4022, f.now), 0);
  expect_state(&f, DV_VOICE_WAIT_SERVER);
  advance(&f, f.now + 5 * SEC - 1);
  expect_no_ev(&f);
  advance(&f, f.now + 1);
  ev = expect_state(&f, DV_VOICE_DISCONNECTED);
  assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_WAIT_TIMEOUT);
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE);
  fx_free(&f);
}

static void test_handshake_timeout(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  f.now = 1 * SEC;
  assert_int_equal(dv_voice_start(&f.v, f.now), 0);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  assert_int_equal(text(&f, HELLO), 0);
  skip_events(&f);
  /* Heartbeats are not handshake progress: still times out at 11 s. */
  advance(&f, 11 * SEC - 1);
  expect_no_ev(&f);
  advance(&f, 11 * SEC);
  ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  assert_int_equal(ev->u.close_ws.code, 4000);
  ev = expect_state(&f, DV_VOICE_NEED_SESSION);
  assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_HANDSHAKE_TIMEOUT);
  fx_free(&f);

  /* The WS never opens: the timeout also covers CONNECTING. */
  fx_setup(&f, 0, 1);
  assert_int_equal(dv_voice_start(&f.v, 0), 0);
  skip_events(&f);
  advance(&f, 10 * SEC);
  expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  expect_state(&f, DV_VOICE_NEED_SESSION);
  fx_free(&f);

  /* A "never" timeout saturates instead of wrapping into the past. */
  memset(&f, 0, sizeof(f));
  {
    dv_voice_callbacks cb = {on_event};
    dvt_env_init(&f.e);
    dv_voice_config_default(&f.cfg);
    f.cfg.server_id = 111;
    f.cfg.user_id = 222;
    f.cfg.session_id = SESSION;
    f.cfg.token = TOKEN;
    f.cfg.handshake_timeout = UINT64_MAX;
    assert_int_equal(dv_voice_init(&f.v, &f.cfg, &cb, &f.e.env, &f), 0);
  }
  f.now = 5 * SEC;
  assert_int_equal(dv_voice_start(&f.v, f.now), 0);
  skip_events(&f);
  assert_true(dv_voice_get_expiry(&f.v) == DVOICE_TSTAMP_NONE - 1);
  fx_free(&f);
}

static void test_app_close(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  assert_int_equal(dv_voice_close(&f.v, f.now), 0);
  ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  assert_int_equal(ev->u.close_ws.code, 1000);
  ev = expect_state(&f, DV_VOICE_DISCONNECTED);
  assert_int_equal(ev->u.state.reason, DV_VOICE_REASON_APP_CLOSED);
  assert_false(dv_voice_may_send(&f.v));
  assert_int_equal(dv_voice_close(&f.v, f.now), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(text(&f, HELLO), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_set_speaking(&f.v, 1, f.now),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE);
  fx_free(&f);
}

static void test_server_change_while_ready(void **state) {
  fx f;
  const dv_voice_event *ev;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  assert_int_equal(dv_voice_new_session(&f.v, "s2", "t2", f.now), 0);
  ev = expect_ev(&f, DV_VOICE_EV_CLOSE_WS);
  assert_int_equal(ev->u.close_ws.code, 1000);
  expect_state(&f, DV_VOICE_CONNECTING);
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_CONNECT)->u.connect.resume, 0);
  assert_false(dv_voice_may_send(&f.v));
  assert_int_equal(dv_voice_new_session(&f.v, "", "t2", f.now),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_voice_new_session(&f.v, "s\n", "t2", f.now),
                   DVOICE_ERR_INVALID_ARGUMENT);
  fx_free(&f);
}

static void test_state_errors_and_reentry(void **state) {
  fx f;
  (void)state;
  fx_setup(&f, 0, 1);
  assert_int_equal(dv_voice_on_open(&f.v, 0), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(text(&f, HELLO), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_on_close(&f.v, 1000, 0), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "1.2.3.4", 1, 0),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_new_session(&f.v, "a", "b", 0),
                   DVOICE_ERR_INVALID_STATE);
  /* A callback cannot re-enter the machine. */
  f.try_reentry = 1;
  assert_int_equal(dv_voice_start(&f.v, 0), 0);
  assert_int_equal(f.reentry_rv, DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_CONNECTING);
  assert_int_equal(dv_voice_start(&f.v, 0), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_voice_on_open(&f.v, 0), 0);
  assert_int_equal(text(&f, HELLO), 0);
  assert_int_equal(text(&f, READY_BOTH), 0);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "1.2.3", 1, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, "1.2.3.4", 0, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_voice_on_ip_discovered(&f.v, NULL, 1, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  fx_free(&f);
}

static void nop_event(dv_voice *v, const dv_voice_event *ev, void *ud) {
  (void)v;
  (void)ev;
  (void)ud;
}

static void test_init_validation(void **state) {
  dvt_env e;
  dv_voice v;
  dv_voice_config cfg;
  dv_voice_callbacks cb = {nop_event}, nocb = {NULL};
  (void)state;
  dvt_env_init(&e);
  dv_voice_config_default(&cfg);
  cfg.session_id = "s";
  cfg.token = "t";
  assert_int_equal(dv_voice_init(&v, &cfg, &nocb, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cfg.token = NULL;
  assert_int_equal(dv_voice_init(&v, &cfg, &cb, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* Quotes and backslashes are escaped in Identify and parse back. */
  cfg.token = "t\"\\k";
  cfg.server_id = UINT64_MAX;
  assert_int_equal(dv_voice_init(&v, &cfg, &cb, &e.env, NULL), 0);
  assert_int_equal(dv_voice_start(&v, 0), 0);
  assert_int_equal(dv_voice_on_open(&v, 0), 0);
  {
    const uint8_t *p;
    size_t n;
    int bin;
    dv_json_envelope env;
    json_t *d;
    const char *tok;
    uint64_t sid;
    assert_int_equal(dv_voice_next_out(&v, &p, &n, &bin), 1);
    assert_int_equal(dv_json_envelope_parse(&env, (const char *)p, n, "seq"),
                     0);
    assert_int_equal(env.op, 0);
    d = env.d;
    assert_int_equal(dv_json_get_str(d, "token", &tok, NULL), 0);
    assert_string_equal(tok, "t\"\\k");
    assert_int_equal(dv_json_get_snowflake(d, "server_id", &sid), 0);
    assert_true(sid == UINT64_MAX);
    dv_json_envelope_free(&env);
  }
  dv_voice_free(&v);
  cfg.max_dave_protocol_version = 256;
  assert_int_equal(dv_voice_init(&v, &cfg, &cb, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cfg.max_dave_protocol_version = 1;
  e.env.rand = NULL;
  assert_int_equal(dv_voice_init(&v, &cfg, &cb, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_voice_free(&v);
  dvt_env_free(&e);
}

/* The whole happy path plus a resume with every allocation failing in
 * turn: NOMEM comes back and nothing leaks. */
static int run_session(const dvoice_mem *mem, void *ud) {
  dvt_env e;
  dv_voice v;
  dv_voice_config cfg;
  dv_voice_callbacks cb = {nop_event};
  char sd[512];
  const uint8_t *p;
  size_t n;
  int bin, rv;
  (void)ud;
  dvt_env_init(&e);
  e.env.mem = mem;
  dv_voice_config_default(&cfg);
  cfg.session_id = SESSION;
  cfg.token = TOKEN;
  cfg.aes256_gcm_available = 1;
  snprintf(sd, sizeof(sd),
           "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\","
           "\"secret_key\":%s}}",
           KEY_JSON);
  rv = dv_voice_init(&v, &cfg, &cb, &e.env, NULL);
#define STEP(call)                                                             \
  if (rv == 0) {                                                               \
    rv = (call);                                                               \
  }
#define T(s) dv_voice_on_text(&v, (s), strlen(s), 0)
  STEP(dv_voice_start(&v, 0));
  STEP(dv_voice_on_open(&v, 0));
  STEP(T(HELLO));
  STEP(T(READY_BOTH));
  STEP(dv_voice_on_ip_discovered(&v, "1.2.3.4", 5, 0));
  STEP(T(sd));
  STEP(T("{\"op\":11,\"d\":{\"user_ids\":[\"1\",\"2\",\"3\",\"4\",\"5\","
         "\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\","
         "\"16\",\"17\"]},\"seq\":1}"));
  STEP(dv_voice_handle_expiry(&v, 13750 * MS));
  STEP(dv_voice_on_close(&v, 1006, 13760 * MS));
  STEP(dv_voice_handle_expiry(&v, 20 * SEC));
  STEP(dv_voice_on_open(&v, 20 * SEC));
  STEP(T("{\"op\":9,\"d\":null}"));
  while (dv_voice_next_out(&v, &p, &n, &bin)) {
  }
  dv_voice_free(&v);
  dvt_env_free(&e);
#undef T
#undef STEP
  return rv;
}

static void test_nomem_each_allocation(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(run_session, NULL) >= 8);
}

static void test_ssrc_remap_and_unknown_user(void **state) {
  fx f;
  uint64_t uid;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  assert_int_equal(text(&f, "{\"op\":5,\"d\":{\"user_id\":\"1\",\"ssrc\":99,"
                            "\"speaking\":1}}"),
                   0);
  /* op 5 for a user not announced by op 11 adds the user. */
  assert_int_equal(expect_ev(&f, DV_VOICE_EV_USER_CONNECT)->u.user.user_id, 1);
  expect_ev(&f, DV_VOICE_EV_SPEAKING);
  /* The SSRC moves to another user: the newest mapping wins. */
  assert_int_equal(text(&f, "{\"op\":5,\"d\":{\"user_id\":\"2\",\"ssrc\":99,"
                            "\"speaking\":0}}"),
                   0);
  assert_int_equal(dv_voice_user_for_ssrc(&f.v, 99, &uid), 0);
  assert_int_equal(uid, 2);
  assert_false(dv_voice_user_at(&f.v, 0)->has_ssrc);
  /* Clients Connect for a known user emits nothing new. */
  skip_events(&f);
  assert_int_equal(text(&f, "{\"op\":11,\"d\":{\"user_ids\":[\"1\",\"2\"]}}"),
                   0);
  expect_no_ev(&f);
  /* A disconnect for an unknown user is ignored. */
  assert_int_equal(text(&f, "{\"op\":13,\"d\":{\"user_id\":\"77\"}}"), 0);
  expect_no_ev(&f);
  assert_int_equal(dv_voice_user_count(&f.v), 2);
  fx_free(&f);
}

static void test_heartbeat_after_stall(void **state) {
  fx f;
  const dvoice_tstamp iv = 13750 * MS;
  (void)state;
  fx_setup(&f, 0, 1);
  to_ready(&f);
  /* The loop stalls for 3.5 intervals: one beat, never a burst, and the
   * schedule restarts from now. */
  f.now = 3 * iv + iv / 2;
  assert_int_equal(dv_voice_handle_expiry(&f.v, f.now), 0);
  expect_out(&f, "{\"op\":3,\"d\":{\"t\":48125,\"seq_ack\":-1}}");
  expect_no_out(&f);
  assert_int_equal(dv_voice_get_expiry(&f.v), f.now + iv);
  /* Expiry handling before the deadline does nothing. */
  assert_int_equal(dv_voice_handle_expiry(&f.v, f.now + iv - 1), 0);
  expect_no_out(&f);
  fx_free(&f);
}

static void test_deadlines_saturate(void **state) {
  fx f;
  const dvoice_tstamp t0 = DVOICE_TSTAMP_NONE - 5 * SEC;
  (void)state;
  fx_setup(&f, 0, 1);
  f.now = t0;
  assert_int_equal(dv_voice_start(&f.v, f.now), 0);
  /* t0 + 10 s does not wrap around into the past. */
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE - 1);
  assert_int_equal(dv_voice_on_open(&f.v, f.now), 0);
  assert_int_equal(text(&f, HELLO), 0);
  assert_int_equal(dv_voice_get_expiry(&f.v), DVOICE_TSTAMP_NONE - 1);
  assert_int_equal(dv_voice_on_text(&f.v, NULL, 5, f.now),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_voice_on_binary(&f.v, NULL, 5, f.now),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_voice_get_state(&f.v), DV_VOICE_IDENTIFYING);
  fx_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_happy_path),
      cmocka_unit_test(test_heartbeat_before_any_seq),
      cmocka_unit_test(test_speaking_requested_early),
      cmocka_unit_test(test_close_code_table),
      cmocka_unit_test(test_close_before_session),
      cmocka_unit_test(test_once_codes_give_up),
      cmocka_unit_test(test_zombie_after_three_missed_acks),
      cmocka_unit_test(test_acks_keep_alive),
      cmocka_unit_test(test_resume_and_replay),
      cmocka_unit_test(test_resume_refused),
      cmocka_unit_test(test_seq_zero_and_wrap),
      cmocka_unit_test(test_mode_selection),
      cmocka_unit_test(test_backoff_bounded),
      cmocka_unit_test(test_backoff_capped),
      cmocka_unit_test(test_flapping_resume_is_bounded),
      cmocka_unit_test(test_stable_connection_resets_counters),
      cmocka_unit_test(test_malformed_rejected),
      cmocka_unit_test(test_binary_too_short),
      cmocka_unit_test(test_dave_interface),
      cmocka_unit_test(test_dave_default_does_nothing),
      cmocka_unit_test(test_wait_server),
      cmocka_unit_test(test_handshake_timeout),
      cmocka_unit_test(test_app_close),
      cmocka_unit_test(test_server_change_while_ready),
      cmocka_unit_test(test_state_errors_and_reentry),
      cmocka_unit_test(test_init_validation),
      cmocka_unit_test(test_nomem_each_allocation),
      cmocka_unit_test(test_ssrc_remap_and_unknown_user),
      cmocka_unit_test(test_heartbeat_after_stall),
      cmocka_unit_test(test_deadlines_saturate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
