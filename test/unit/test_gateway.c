/*
 * Unit tests for lib/gateway: the main gateway v10 machine under a fake
 * clock and the counter RNG. Outgoing JSON is compared byte for byte.
 */
#include "dvt.h"

#include "gateway/dv_gateway.h"

#define MS DVOICE_MS
#define SEC DVOICE_SECONDS
#define TOKEN "SECRET.token-xyz"
#define MAX_EVENTS 1024
#define MAX_OUT 512

typedef struct rec {
  dv_gw_event ev;
  char s1[256], s2[256];
} rec;

typedef struct fx {
  dvt_env e;
  dv_gw gw;
  dv_gw_config cfg;
  rec ev[MAX_EVENTS];
  int nev;
  char *out[MAX_OUT];
  int nout;
  char raw_name[64];
  char raw_d[256];
  int nraw;
  int queue_in_cb; /* update_voice_state from the READY callback */
  int reentry_rv;
} fx;

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  fx *f = ud;
  rec *r;
  assert_true(f->nev < MAX_EVENTS);
  r = &f->ev[f->nev++];
  memset(r, 0, sizeof(*r));
  r->ev = *ev;
  switch (ev->type) {
    case DV_GW_EV_CONNECT:
      snprintf(r->s1, sizeof(r->s1), "%s", ev->u.connect.url);
      break;
    case DV_GW_EV_READY:
      snprintf(r->s1, sizeof(r->s1), "%s", ev->u.ready.session_id);
      snprintf(r->s2, sizeof(r->s2), "%s", ev->u.ready.resume_gateway_url);
      if (f->queue_in_cb) {
        assert_int_equal(dv_gw_update_voice_state(gw, 5, 6, 0, 0, 0), 0);
        f->reentry_rv = dv_gw_close(gw, 0);
      }
      break;
    case DV_GW_EV_VOICE_STATE:
      snprintf(r->s1, sizeof(r->s1), "%s", ev->u.voice_state.session_id);
      break;
    case DV_GW_EV_VOICE_SERVER:
      snprintf(r->s1, sizeof(r->s1), "%s", ev->u.voice_server.token);
      snprintf(r->s2, sizeof(r->s2), "%s",
               ev->u.voice_server.endpoint ? ev->u.voice_server.endpoint
                                           : "(null)");
      break;
    default:
      break;
  }
}

static void on_dispatch(dv_gw *gw, const char *name, const char *d, size_t len,
                        void *ud) {
  fx *f = ud;
  (void)gw;
  assert_int_equal(strlen(d), len);
  snprintf(f->raw_name, sizeof(f->raw_name), "%s", name);
  snprintf(f->raw_d, sizeof(f->raw_d), "%s", d);
  f->nraw++;
}

static const dv_gw_callbacks cbs = {on_event, on_dispatch};

static void drain(fx *f) {
  const uint8_t *p;
  size_t len;
  while (dv_gw_next_out(&f->gw, &p, &len)) {
    assert_true(f->nout < MAX_OUT);
    f->out[f->nout] = malloc(len + 1);
    memcpy(f->out[f->nout], p, len);
    f->out[f->nout][len] = 0;
    f->nout++;
  }
}

static void clear_out(fx *f) {
  for (int i = 0; i < f->nout; i++) {
    free(f->out[i]);
  }
  f->nout = 0;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  dvt_env_init(&f->e);
  dv_gw_config_default(&f->cfg);
  f->cfg.token = TOKEN;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  dv_gw_free(&f->gw);
  /* The token must never reach the log, whatever the test did. */
  assert_false(dvt_log_contains(&f->e.log, "SECRET"));
  clear_out(f);
  dvt_env_free(&f->e);
  free(f);
  return 0;
}

static dvoice_tstamp now(fx *f) {
  return f->e.clock.now;
}

static void advance_to(fx *f, dvoice_tstamp t) {
  f->e.clock.now = t;
  assert_int_equal(dv_gw_handle_expiry(&f->gw, t), 0);
  drain(f);
}

/* Runs every deadline up to |t|. */
static void run_until(fx *f, dvoice_tstamp t) {
  for (;;) {
    dvoice_tstamp e = dv_gw_get_expiry(&f->gw);
    if (e > t) {
      break;
    }
    advance_to(f, e < now(f) ? now(f) : e);
  }
  f->e.clock.now = t;
}

static int text(fx *f, const char *json) {
  int rv = dv_gw_on_text(&f->gw, json, strlen(json), now(f));
  drain(f);
  return rv;
}

static rec *last_ev(fx *f, dv_gw_event_type t) {
  for (int i = f->nev - 1; i >= 0; i--) {
    if (f->ev[i].ev.type == t) {
      return &f->ev[i];
    }
  }
  return NULL;
}

static int count_ev(fx *f, dv_gw_event_type t) {
  int n = 0;
  for (int i = 0; i < f->nev; i++) {
    n += f->ev[i].ev.type == t;
  }
  return n;
}

#define HELLO "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}"
#define READY                                                                  \
  "{\"op\":0,\"t\":\"READY\",\"s\":1,\"d\":{\"v\":10,\"session_id\":"          \
  "\"sess1\",\"resume_gateway_url\":\"wss://resume.example\",\"user\":"        \
  "{\"id\":\"1234\",\"username\":\"bot\"},\"guilds\":[]}}"

static void start_and_open(fx *f) {
  assert_int_equal(dv_gw_init(&f->gw, &f->cfg, &cbs, &f->e.env, f), 0);
  assert_int_equal(dv_gw_start(&f->gw, now(f)), 0);
  assert_int_equal(dv_gw_on_open(&f->gw, now(f)), 0);
}

static void to_ready(fx *f) {
  start_and_open(f);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(text(f, READY), 0);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  clear_out(f);
}

/* ---- tests -------------------------------------------------------------- */

static void test_identify_content(void **state) {
  fx *f = *state;
  rec *c;
  f->cfg.has_shard = 1;
  f->cfg.shard_id = 1;
  f->cfg.shard_count = 2;
  f->cfg.intents = 1u << 9;
  start_and_open(f);
  c = last_ev(f, DV_GW_EV_CONNECT);
  assert_non_null(c);
  assert_string_equal(c->s1, "wss://gateway.discord.gg/?v=10&encoding=json");
  assert_int_equal(c->ev.u.connect.resume, 0);
  assert_int_equal(f->nout, 0); /* nothing before Hello */
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(f->nout, 1);
  assert_string_equal(
      f->out[0],
      "{\"op\":2,\"d\":{\"token\":\"SECRET.token-xyz\",\"intents\":641,"
      "\"properties\":{\"os\":\"linux\",\"browser\":\"dvoice\",\"device\":"
      "\"dvoice\"},\"shard\":[1,2]}}");
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_IDENTIFYING);
  assert_int_equal(text(f, READY), 0);
  c = last_ev(f, DV_GW_EV_READY);
  assert_non_null(c);
  assert_string_equal(c->s1, "sess1");
  assert_string_equal(c->s2, "wss://resume.example/?v=10&encoding=json");
  assert_int_equal(c->ev.u.ready.user_id, 1234);
  assert_string_equal(dv_gw_session_id(&f->gw), "sess1");
  assert_int_equal(dv_gw_last_seq(&f->gw), 1);
}

static void test_heartbeat_timing(void **state) {
  fx *f = *state;
  const uint64_t us = 41250000;
  uint32_t r;
  dvoice_tstamp first;
  f->e.rand.next = 0x80;
  start_and_open(f);
  f->e.clock.now = 1000 * MS;
  /* The jitter is the next four counter bytes. */
  r = ((uint32_t)(f->e.rand.next) << 24) |
      ((uint32_t)(uint8_t)(f->e.rand.next + 1) << 16) |
      ((uint32_t)(uint8_t)(f->e.rand.next + 2) << 8) |
      (uint8_t)(f->e.rand.next + 3);
  assert_int_equal(text(f, HELLO), 0);
  first = 1000 * MS + ((us * r) >> 32) * 1000;
  assert_true(first > 1000 * MS && first < 1000 * MS + 41250 * MS);
  assert_int_equal(dv_gw_get_expiry(&f->gw), first);
  clear_out(f);
  advance_to(f, first - 1);
  assert_int_equal(f->nout, 0);
  advance_to(f, first);
  assert_int_equal(f->nout, 1);
  assert_string_equal(f->out[0], "{\"op\":1,\"d\":null}");
  assert_int_equal(text(f, "{\"op\":11}"), 0);
  assert_int_equal(count_ev(f, DV_GW_EV_HEARTBEAT_ACK), 1);
  assert_int_equal(text(f, READY), 0);
  assert_int_equal(dv_gw_get_expiry(&f->gw), first + 41250 * MS);
  advance_to(f, first + 41250 * MS);
  assert_int_equal(f->nout, 2);
  assert_string_equal(f->out[1], "{\"op\":1,\"d\":1}");
  /* A heartbeat request (op 1) is answered at once. */
  assert_int_equal(text(f, "{\"op\":11,\"d\":null}"), 0);
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"GUILD_CREATE\",\"s\":7,\"d\":{}}"), 0);
  assert_int_equal(text(f, "{\"op\":1,\"d\":null}"), 0);
  assert_int_equal(f->nout, 3);
  assert_string_equal(f->out[2], "{\"op\":1,\"d\":7}");
}

static void test_zombie_resumes(void **state) {
  fx *f = *state;
  dvoice_tstamp t;
  rec *c;
  to_ready(f);
  t = dv_gw_get_expiry(&f->gw);
  advance_to(f, t); /* beat 1 */
  assert_int_equal(f->nout, 1);
  advance_to(f, t + 41250 * MS); /* no ACK: zombie */
  c = last_ev(f, DV_GW_EV_CLOSE_WS);
  assert_non_null(c);
  assert_int_equal(c->ev.u.close_ws.code, 4000);
  c = last_ev(f, DV_GW_EV_STATE);
  assert_int_equal(c->ev.u.state.state, DV_GW_BACKOFF);
  assert_int_equal(c->ev.u.state.reason, DV_GW_REASON_ZOMBIE);
  /* Backoff within [base/2, base]. */
  assert_true(c->ev.u.state.deadline >= now(f) + 500 * MS);
  assert_true(c->ev.u.state.deadline <= now(f) + 1000 * MS);
  run_until(f, now(f) + 2 * SEC);
  c = last_ev(f, DV_GW_EV_CONNECT);
  assert_string_equal(c->s1, "wss://resume.example/?v=10&encoding=json");
  assert_int_equal(c->ev.u.connect.resume, 1);
  clear_out(f);
  assert_int_equal(dv_gw_on_open(&f->gw, now(f)), 0);
  assert_int_equal(text(f, HELLO), 0);
  assert_string_equal(f->out[0], "{\"op\":6,\"d\":{\"token\":"
                                 "\"SECRET.token-xyz\",\"session_id\":"
                                 "\"sess1\",\"seq\":1}}");
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_RESUMING);
  /* Replayed events come before RESUMED. */
  assert_int_equal(text(f, "{\"op\":0,\"t\":\"X\",\"s\":2,\"d\":1}"), 0);
  assert_int_equal(text(f, "{\"op\":0,\"t\":\"RESUMED\",\"s\":3,\"d\":{}}"), 0);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  assert_int_equal(count_ev(f, DV_GW_EV_RESUMED), 1);
  assert_int_equal(dv_gw_last_seq(&f->gw), 3);
}

static void test_op7_reconnect(void **state) {
  fx *f = *state;
  rec *c;
  to_ready(f);
  assert_int_equal(text(f, "{\"op\":7,\"d\":null}"), 0);
  c = last_ev(f, DV_GW_EV_CLOSE_WS);
  assert_int_equal(c->ev.u.close_ws.code, 4000);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_BACKOFF);
  assert_int_equal(dv_gw_get_expiry(&f->gw), now(f)); /* at once */
  advance_to(f, now(f));
  c = last_ev(f, DV_GW_EV_CONNECT);
  assert_int_equal(c->ev.u.connect.resume, 1);
  assert_string_equal(c->s1, "wss://resume.example/?v=10&encoding=json");
  /* A second op 7 right away is not a loop: it backs off. */
  assert_int_equal(dv_gw_on_open(&f->gw, now(f)), 0);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(text(f, "{\"op\":7,\"d\":null}"), 0);
  assert_true(dv_gw_get_expiry(&f->gw) >= now(f) + 1 * SEC);
}

static void test_op9_true_resumes(void **state) {
  fx *f = *state;
  rec *c;
  to_ready(f);
  assert_int_equal(text(f, "{\"op\":9,\"d\":true}"), 0);
  c = last_ev(f, DV_GW_EV_CLOSE_WS);
  assert_non_null(c);
  c = last_ev(f, DV_GW_EV_STATE);
  assert_int_equal(c->ev.u.state.state, DV_GW_BACKOFF);
  assert_true(c->ev.u.state.deadline >= now(f) + 1 * SEC &&
              c->ev.u.state.deadline <= now(f) + 5 * SEC);
  run_until(f, now(f) + 5 * SEC);
  c = last_ev(f, DV_GW_EV_CONNECT);
  assert_int_equal(c->ev.u.connect.resume, 1);
}

static void test_op9_false_reidentifies(void **state) {
  fx *f = *state;
  dvoice_tstamp dl;
  int nclose;
  to_ready(f);
  nclose = count_ev(f, DV_GW_EV_CLOSE_WS);
  assert_int_equal(text(f, "{\"op\":9,\"d\":false}"), 0);
  assert_int_equal(count_ev(f, DV_GW_EV_CLOSE_WS), nclose); /* same WS */
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_INVALID_WAIT);
  assert_null(dv_gw_session_id(&f->gw));
  dl = last_ev(f, DV_GW_EV_STATE)->ev.u.state.deadline;
  assert_true(dl >= now(f) + 1 * SEC && dl <= now(f) + 5 * SEC);
  /* Heartbeats may fire while we wait; only Identify matters here. */
  f->e.clock.now = dl;
  assert_int_equal(dv_gw_handle_expiry(&f->gw, dl), 0);
  drain(f);
  assert_true(f->nout >= 1);
  assert_non_null(strstr(f->out[f->nout - 1], "\"op\":2"));
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_IDENTIFYING);
  assert_int_equal(text(f, READY), 0);
  assert_int_equal(count_ev(f, DV_GW_EV_READY), 2);
  /* Bad op 9 payload. */
  assert_int_equal(text(f, "{\"op\":9,\"d\":1}"), DVOICE_ERR_PROTO);
}

typedef struct close_row {
  int code;
  dv_gw_action action;
} close_row;

static void test_close_codes(void **state) {
  static const close_row rows[] = {
      {0, DV_GW_ACT_RESUME},        {1000, DV_GW_ACT_RESUME},
      {1001, DV_GW_ACT_RESUME},     {1006, DV_GW_ACT_RESUME},
      {4000, DV_GW_ACT_RESUME},     {4001, DV_GW_ACT_RESUME},
      {4002, DV_GW_ACT_RESUME},     {4003, DV_GW_ACT_REIDENTIFY},
      {4004, DV_GW_ACT_FATAL},      {4005, DV_GW_ACT_RESUME},
      {4007, DV_GW_ACT_REIDENTIFY}, {4008, DV_GW_ACT_RESUME},
      {4009, DV_GW_ACT_REIDENTIFY}, {4010, DV_GW_ACT_FATAL},
      {4011, DV_GW_ACT_FATAL},      {4012, DV_GW_ACT_FATAL},
      {4013, DV_GW_ACT_FATAL},      {4014, DV_GW_ACT_FATAL},
      {4015, DV_GW_ACT_RESUME},     {4999, DV_GW_ACT_RESUME},
  };
  fx *f = *state;
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    rec *c;
    assert_int_equal(dv_gw_policy_for(rows[i].code), rows[i].action);
    /* And the machine acts on it. */
    dv_gw_free(&f->gw);
    f->nev = 0;
    clear_out(f);
    to_ready(f);
    assert_int_equal(dv_gw_on_close(&f->gw, rows[i].code, now(f)), 0);
    c = last_ev(f, DV_GW_EV_STATE);
    assert_int_equal(c->ev.u.state.close_code, rows[i].code);
    if (rows[i].action == DV_GW_ACT_FATAL) {
      assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_DISCONNECTED);
      assert_int_equal(c->ev.u.state.reason, DV_GW_REASON_FATAL_CODE);
      assert_int_equal(dv_gw_get_expiry(&f->gw), DVOICE_TSTAMP_NONE);
      continue;
    }
    assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_BACKOFF);
    run_until(f, now(f) + 2 * SEC);
    c = last_ev(f, DV_GW_EV_CONNECT);
    assert_int_equal(c->ev.u.connect.resume,
                     rows[i].action == DV_GW_ACT_RESUME);
    assert_string_equal(c->s1, rows[i].action == DV_GW_ACT_RESUME
                                   ? "wss://resume.example/?v=10&encoding=json"
                                   : "wss://gateway.discord.gg/?v=10&"
                                     "encoding=json");
  }
}

static void test_no_reconnect_loop(void **state) {
  fx *f = *state;
  dvoice_tstamp prev_gap = 0;
  f->cfg.max_attempts = 4;
  start_and_open(f);
  for (int i = 0; i < 4; i++) {
    dvoice_tstamp gap;
    assert_int_equal(dv_gw_on_close(&f->gw, 4000, now(f)), 0);
    assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_BACKOFF);
    gap = dv_gw_get_expiry(&f->gw) - now(f);
    /* Each delay's range doubles: [d/2, d]. */
    assert_true(gap >= prev_gap / 2);
    assert_true(gap <= (1ull << i) * SEC);
    prev_gap = gap;
    advance_to(f, dv_gw_get_expiry(&f->gw));
    assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_CONNECTING);
  }
  assert_int_equal(dv_gw_on_close(&f->gw, 0, now(f)), 0);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_DISCONNECTED);
  assert_int_equal(last_ev(f, DV_GW_EV_STATE)->ev.u.state.reason,
                   DV_GW_REASON_RETRIES_EXHAUSTED);
}

static void test_handshake_timeout(void **state) {
  fx *f = *state;
  start_and_open(f);
  assert_int_equal(dv_gw_get_expiry(&f->gw), 30 * SEC);
  advance_to(f, 30 * SEC);
  assert_int_equal(last_ev(f, DV_GW_EV_CLOSE_WS)->ev.u.close_ws.code, 4000);
  assert_int_equal(last_ev(f, DV_GW_EV_STATE)->ev.u.state.reason,
                   DV_GW_REASON_HANDSHAKE_TIMEOUT);
}

static void test_rate_limit(void **state) {
  fx *f = *state;
  dvoice_tstamp t0;
  int hb0;
  to_ready(f);
  /* Identify already used one slot of this connection's window. */
  t0 = now(f);
  for (int i = 0; i < 130; i++) {
    assert_int_equal(
        dv_gw_update_voice_state(&f->gw, 100 + i, i % 2 ? 0 : 7, i & 1, 0, t0),
        0);
  }
  drain(f);
  assert_int_equal(f->nout, 120 - 1 - DV_GW_RATE_RESERVED);
  assert_string_equal(f->out[0],
                      "{\"op\":4,\"d\":{\"guild_id\":\"100\",\"channel_id\":"
                      "\"7\",\"self_mute\":false,\"self_deaf\":false}}");
  assert_string_equal(f->out[1],
                      "{\"op\":4,\"d\":{\"guild_id\":\"101\",\"channel_id\":"
                      "null,\"self_mute\":true,\"self_deaf\":false}}");
  assert_int_equal(dv_gw_pending_count(&f->gw),
                   130 - (120 - 1 - DV_GW_RATE_RESERVED));
  /* Heartbeats still go out (reserved slots). */
  hb0 = f->nout;
  advance_to(f, dv_gw_get_expiry(&f->gw));
  assert_int_equal(f->nout, hb0 + 1);
  assert_non_null(strstr(f->out[hb0], "\"op\":1"));
  assert_int_equal(text(f, "{\"op\":11}"), 0);
  /* The next op 4 waits for the window: the Identify's slot frees at
   * t0 + 60 s (Identify and the op 4s all went out at t0). */
  assert_int_equal(dv_gw_get_expiry(&f->gw) <= t0 + 60 * SEC, 1);
  run_until(f, t0 + 60 * SEC - 1);
  assert_int_equal(dv_gw_pending_count(&f->gw),
                   130 - (120 - 1 - DV_GW_RATE_RESERVED));
  advance_to(f, t0 + 60 * SEC);
  assert_int_equal(dv_gw_pending_count(&f->gw), 0);
  /* Nothing was dropped: every guild id went out once, in order. */
  {
    int g = 100;
    for (int i = 0; i < f->nout; i++) {
      char want[32];
      if (strstr(f->out[i], "\"op\":4") == NULL) {
        continue;
      }
      snprintf(want, sizeof(want), "\"guild_id\":\"%d\"", g++);
      assert_non_null(strstr(f->out[i], want));
    }
    assert_int_equal(g, 230);
  }
}

static void test_queue_before_ready(void **state) {
  fx *f = *state;
  start_and_open(f);
  assert_int_equal(dv_gw_update_voice_state(&f->gw, 5, 6, 0, 1, now(f)), 0);
  drain(f);
  assert_int_equal(f->nout, 0);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(f->nout, 1); /* Identify only */
  assert_int_equal(text(f, READY), 0);
  assert_int_equal(f->nout, 2);
  assert_string_equal(f->out[1],
                      "{\"op\":4,\"d\":{\"guild_id\":\"5\",\"channel_id\":"
                      "\"6\",\"self_mute\":false,\"self_deaf\":true}}");
  assert_int_equal(dv_gw_update_voice_state(&f->gw, 0, 6, 0, 1, now(f)),
                   DVOICE_ERR_INVALID_ARGUMENT);
}

static void test_dispatch_typing(void **state) {
  fx *f = *state;
  rec *c;
  to_ready(f);
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{"
              "\"guild_id\":\"41\",\"channel_id\":\"42\",\"user_id\":\"1234\","
              "\"session_id\":\"vs1\",\"deaf\":false,\"mute\":false}}"),
      0);
  c = last_ev(f, DV_GW_EV_VOICE_STATE);
  assert_non_null(c);
  assert_int_equal(c->ev.u.voice_state.guild_id, 41);
  assert_int_equal(c->ev.u.voice_state.channel_id, 42);
  assert_int_equal(c->ev.u.voice_state.has_channel, 1);
  assert_int_equal(c->ev.u.voice_state.user_id, 1234);
  assert_string_equal(c->s1, "vs1");
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":3,\"d\":{"
              "\"guild_id\":\"41\",\"channel_id\":null,\"user_id\":\"1234\","
              "\"session_id\":\"vs1\"}}"),
      0);
  c = last_ev(f, DV_GW_EV_VOICE_STATE);
  assert_int_equal(c->ev.u.voice_state.has_channel, 0);
  assert_int_equal(c->ev.u.voice_state.channel_id, 0);
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":4,\"d\":{"
              "\"token\":\"vtok\",\"guild_id\":\"41\",\"endpoint\":"
              "\"x.discord.media:443\"}}"),
      0);
  c = last_ev(f, DV_GW_EV_VOICE_SERVER);
  assert_int_equal(c->ev.u.voice_server.guild_id, 41);
  assert_string_equal(c->s1, "vtok");
  assert_string_equal(c->s2, "x.discord.media:443");
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":5,\"d\":{"
              "\"token\":\"vtok2\",\"guild_id\":\"41\",\"endpoint\":null}}"),
      0);
  c = last_ev(f, DV_GW_EV_VOICE_SERVER);
  assert_null(c->ev.u.voice_server.endpoint);
  assert_string_equal(c->s2, "(null)");
  assert_int_equal(dv_gw_last_seq(&f->gw), 5);
}

static void test_raw_dispatch(void **state) {
  fx *f = *state;
  to_ready(f);
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":9,\"d\":{\"id\":"
              "\"77\",\"content\":\"hi \\\"x\\\"\",\"n\":[1,2]}}"),
      0);
  assert_int_equal(f->nraw, 1);
  assert_string_equal(f->raw_name, "MESSAGE_CREATE");
  assert_string_equal(
      f->raw_d, "{\"id\":\"77\",\"content\":\"hi \\\"x\\\"\",\"n\":[1,2]}");
  assert_int_equal(text(f, "{\"op\":0,\"t\":\"TYPING_START\",\"s\":10}"), 0);
  assert_string_equal(f->raw_d, "null");
  assert_int_equal(dv_gw_last_seq(&f->gw), 10);
}

static void test_malformed(void **state) {
  static const char *const bad_typed[] = {
      /* VOICE_STATE_UPDATE */
      "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":5}",
      "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{\"channel_id\":"
      "null,\"user_id\":\"1\"}}",
      "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{\"user_id\":"
      "\"1\",\"session_id\":\"s\"}}",
      "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{\"channel_id\":"
      "42,\"user_id\":\"1\",\"session_id\":\"s\"}}",
      "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{\"channel_id\":"
      "null,\"user_id\":\"-1\",\"session_id\":\"s\"}}",
      /* VOICE_SERVER_UPDATE */
      "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":2,\"d\":{\"guild_id\":"
      "\"1\",\"endpoint\":null}}",
      "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":2,\"d\":{\"token\":\"t\","
      "\"guild_id\":\"1\"}}",
      "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":2,\"d\":{\"token\":\"t\","
      "\"guild_id\":1,\"endpoint\":null}}",
      "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":2,\"d\":{\"token\":\"\","
      "\"guild_id\":\"1\",\"endpoint\":null}}",
      "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":2,\"d\":{\"token\":\"t\","
      "\"guild_id\":\"1\",\"endpoint\":7}}",
  };
  static const char *const bad_envelope[] = {
      "",
      "{",
      "[]",
      "{\"op\":\"0\"}",
      "{\"op\":0,\"s\":1,\"d\":{}}",
      "{\"op\":42,\"d\":null}",
      "{\"op\":10,\"d\":{\"heartbeat_interval\":1}}",
      "{\"op\":0,\"t\":\"READY\",\"s\":1,\"d\":{}}",
      "{\"op\":0,\"t\":\"RESUMED\",\"s\":1,\"d\":{}}",
      "{\"op\":0,\"op\":0,\"t\":\"X\"}",
  };
  fx *f = *state;
  to_ready(f);
  for (size_t i = 0; i < sizeof(bad_typed) / sizeof(bad_typed[0]); i++) {
    assert_int_equal(text(f, bad_typed[i]), DVOICE_ERR_PROTO);
    /* Dropped, connection kept. */
    assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  }
  assert_int_equal(f->gw.dropped_dispatches,
                   sizeof(bad_typed) / sizeof(bad_typed[0]));
  assert_int_equal(count_ev(f, DV_GW_EV_VOICE_STATE), 0);
  assert_int_equal(count_ev(f, DV_GW_EV_VOICE_SERVER), 0);
  for (size_t i = 0; i < sizeof(bad_envelope) / sizeof(bad_envelope[0]); i++) {
    dv_gw_free(&f->gw);
    f->nev = 0;
    to_ready(f);
    assert_int_equal(text(f, bad_envelope[i]), DVOICE_ERR_PROTO);
    assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_BACKOFF);
    assert_int_equal(last_ev(f, DV_GW_EV_CLOSE_WS)->ev.u.close_ws.code, 4000);
  }
  /* Hello twice on one WS, Hello with a string interval. */
  dv_gw_free(&f->gw);
  start_and_open(f);
  assert_int_equal(
      text(f, "{\"op\":10,\"d\":{\"heartbeat_interval\":\"41250\"}}"),
      DVOICE_ERR_PROTO);
  /* Input without a WS is a glue bug. */
  assert_int_equal(text(f, HELLO), DVOICE_ERR_INVALID_STATE);
}

static void test_token_not_logged(void **state) {
  fx *f = *state;
  to_ready(f);
  assert_int_equal(
      text(f, "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":4,\"d\":{"
              "\"token\":\"SECRET-voice\",\"guild_id\":\"41\",\"endpoint\":"
              "null}}"),
      0);
  assert_int_equal(dv_gw_on_close(&f->gw, 4000, now(f)), 0);
  run_until(f, now(f) + 2 * SEC);
  assert_int_equal(dv_gw_on_open(&f->gw, now(f)), 0);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(text(f, "{\"op\":99}"), DVOICE_ERR_PROTO);
  /* The log did capture lines (the check in teardown is not vacuous). */
  assert_true(f->e.log.lines > 3);
  assert_false(dvt_log_contains(&f->e.log, "SECRET"));
}

static void test_callbacks_and_close(void **state) {
  fx *f = *state;
  f->queue_in_cb = 1;
  start_and_open(f);
  assert_int_equal(text(f, HELLO), 0);
  assert_int_equal(text(f, READY), 0);
  assert_int_equal(f->reentry_rv, DVOICE_ERR_INVALID_STATE);
  /* The op 4 queued from the callback went out after it returned. */
  assert_int_equal(f->nout, 2);
  assert_non_null(strstr(f->out[1], "\"op\":4"));
  assert_int_equal(dv_gw_close(&f->gw, now(f)), 0);
  assert_int_equal(last_ev(f, DV_GW_EV_CLOSE_WS)->ev.u.close_ws.code, 1000);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_DISCONNECTED);
  assert_int_equal(dv_gw_close(&f->gw, now(f)), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_gw_update_voice_state(&f->gw, 1, 0, 0, 0, now(f)),
                   DVOICE_ERR_INVALID_STATE);
}

static void test_init_args(void **state) {
  fx *f = *state;
  dv_gw_config c = f->cfg;
  c.token = "bad token";
  assert_int_equal(dv_gw_init(&f->gw, &c, &cbs, &f->e.env, f),
                   DVOICE_ERR_INVALID_ARGUMENT);
  c = f->cfg;
  c.url = "http://x";
  assert_int_equal(dv_gw_init(&f->gw, &c, &cbs, &f->e.env, f),
                   DVOICE_ERR_INVALID_ARGUMENT);
  c = f->cfg;
  c.has_shard = 1;
  c.shard_id = 2;
  c.shard_count = 2;
  assert_int_equal(dv_gw_init(&f->gw, &c, &cbs, &f->e.env, f),
                   DVOICE_ERR_INVALID_ARGUMENT);
}

static int nomem_run(const dvoice_mem *mem, void *ud) {
  fx *f = ud;
  dv_gw gw;
  dvt_env e;
  int rv;
  const char *msgs[] = {HELLO, READY,
                        "{\"op\":0,\"t\":\"OTHER\",\"s\":2,\"d\":{\"a\":[1]}}"};
  dvt_env_init(&e);
  e.env.mem = mem;
  rv = dv_gw_init(&gw, &f->cfg, &cbs, &e.env, f);
  if (rv == 0) {
    rv = dv_gw_start(&gw, 0);
  }
  if (rv == 0) {
    rv = dv_gw_on_open(&gw, 0);
  }
  if (rv == 0) {
    rv = dv_gw_update_voice_state(&gw, 1, 2, 0, 0, 0);
  }
  for (size_t i = 0; rv == 0 && i < 3; i++) {
    rv = dv_gw_on_text(&gw, msgs[i], strlen(msgs[i]), 0);
  }
  if (rv == 0) {
    rv = dv_gw_handle_expiry(&gw, dv_gw_get_expiry(&gw));
  }
  dv_gw_free(&gw);
  dvt_env_free(&e);
  f->nev = 0;
  return rv;
}

static void test_nomem(void **state) {
  assert_true(dvt_mem_fail_each(nomem_run, *state) > 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_identify_content),   T(test_heartbeat_timing),
      T(test_zombie_resumes),     T(test_op7_reconnect),
      T(test_op9_true_resumes),   T(test_op9_false_reidentifies),
      T(test_close_codes),        T(test_no_reconnect_loop),
      T(test_handshake_timeout),  T(test_rate_limit),
      T(test_queue_before_ready), T(test_dispatch_typing),
      T(test_raw_dispatch),       T(test_malformed),
      T(test_token_not_logged),   T(test_callbacks_and_close),
      T(test_init_args),          T(test_nomem),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
