/*
 * Unit tests for the simulator's main gateway core (test/sim/sim_gw), alone
 * (strict validation, close codes) and paired in memory with lib/gateway's
 * client machine (join, random event order, move, region change, kick,
 * invalidate, reconnect, dropped ACKs), under a fake clock.
 */
#include "dvt.h"

#include "gateway/dv_gateway.h"
#include "../sim/sim_gw.h"
#include "../sim/sim_vgw.h"

#define MS DVOICE_MS
#define SEC DVOICE_SECONDS
#define TOKEN "SIMTOKEN.abc"
#define BOT 4242

typedef struct vev {
  dv_gw_event_type type;
  uint64_t channel_id;
  int has_channel;
  char s1[64], s2[64];
} vev;

typedef struct fx {
  dvt_env e;
  dv_sim_vgw *vgw[2];
  dv_sim_gw *sgw;
  /* Client side. */
  dv_gw gw;
  int gw_live;
  dv_sim_gw_conn *conn; /* the connection the client is on */
  int ws_open;
  vev ev[256];
  int nev;
  char connect_url[128];
  int closes_by_client, closes_by_server;
  int last_server_close;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  dvt_env_init(&f->e);
  assert_int_equal(dv_sim_vgw_new(&f->e.env, NULL, &f->vgw[0]), 0);
  assert_int_equal(dv_sim_vgw_new(&f->e.env, NULL, &f->vgw[1]), 0);
  assert_int_equal(dv_sim_gw_new(&f->e.env, NULL, &f->sgw), 0);
  assert_int_equal(dv_sim_gw_set_resume_url(f->sgw, "wss://127.0.0.1:9"), 0);
  assert_int_equal(
      dv_sim_gw_add_voice_server(f->sgw, f->vgw[0], "127.0.0.1:1001"), 0);
  assert_int_equal(
      dv_sim_gw_add_voice_server(f->sgw, f->vgw[1], "127.0.0.1:1002"), 1);
  assert_int_equal(dv_sim_gw_add_bot(f->sgw, TOKEN, BOT), 0);
  assert_int_equal(dv_sim_gw_add_bot(f->sgw, TOKEN, 7),
                   DVOICE_ERR_INVALID_ARGUMENT);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  if (f->gw_live) {
    dv_gw_free(&f->gw);
  }
  dv_sim_gw_free(f->sgw);
  dv_sim_vgw_free(f->vgw[0]);
  dv_sim_vgw_free(f->vgw[1]);
  assert_false(dvt_log_contains(&f->e.log, TOKEN));
  dvt_env_free(&f->e);
  free(f);
  return 0;
}

static dvoice_tstamp now(fx *f) {
  return f->e.clock.now;
}

/* ---- raw server-side helpers --------------------------------------------- */

static dv_sim_gw_conn *raw_conn(fx *f) {
  dv_sim_gw_conn *c;
  dv_sim_out o;
  assert_int_equal(dv_sim_gw_conn_new(f->sgw, now(f), &c), 0);
  assert_int_equal(dv_sim_gw_conn_pop(c, &o), 1);
  assert_int_equal(o.kind, DV_SIM_OUT_TEXT);
  assert_non_null(strstr((char *)o.data.data, "\"heartbeat_interval\":41250"));
  dv_buf_free(&o.data);
  return c;
}

static void raw_send(fx *f, dv_sim_gw_conn *c, const char *s) {
  assert_int_equal(
      dv_sim_gw_conn_recv(c, 0, (const uint8_t *)s, strlen(s), now(f)), 0);
}

/* Pops every frame; returns the close code (0 if none) and copies the last
 * text frame into |last|. */
static int raw_drain(dv_sim_gw_conn *c, char *last, size_t cap) {
  dv_sim_out o;
  int code = 0;
  while (dv_sim_gw_conn_pop(c, &o)) {
    if (o.kind == DV_SIM_OUT_CLOSE) {
      code = o.close_code;
    } else if (last != NULL) {
      snprintf(last, cap, "%.*s", (int)o.data.len, (char *)o.data.data);
    }
    dv_buf_free(&o.data);
  }
  return code;
}

#define IDENTIFY_OK                                                            \
  "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":129,\"properties\":"   \
  "{\"os\":\"linux\",\"browser\":\"x\",\"device\":\"x\"}}}"

typedef struct bad_case {
  const char *before; /* sent first (may be NULL) */
  const char *msg;
  int code;
} bad_case;

static void test_validation_close_codes(void **state) {
  static const bad_case cases[] = {
      {NULL, "not json", 4002},
      {NULL, "{\"op\":99,\"d\":null}", 4001},
      {NULL, "{\"op\":4,\"d\":{}}", 4003},
      {NULL, "{\"op\":3,\"d\":{}}", 4003},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"nope\",\"intents\":129,\"properties\":"
       "{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}",
       4004},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":\"129\","
       "\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}",
       4002},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":129,"
       "\"properties\":{\"os\":\"l\",\"browser\":\"x\"}}}",
       4002},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":129,\"bogus\":1,"
       "\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}",
       4002},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":1073741824,"
       "\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}",
       4013},
      {NULL,
       "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":129,\"shard\":"
       "[1,2],\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":"
       "\"x\"}}}",
       4010},
      {IDENTIFY_OK, IDENTIFY_OK, 4005},
      {NULL, "{\"op\":1,\"d\":\"5\"}", 4002},
      {IDENTIFY_OK,
       "{\"op\":4,\"d\":{\"guild_id\":\"1\",\"channel_id\":2,\"self_mute\":"
       "false,\"self_deaf\":false}}",
       4002},
      {IDENTIFY_OK,
       "{\"op\":4,\"d\":{\"guild_id\":1,\"channel_id\":null,\"self_mute\":"
       "false,\"self_deaf\":false}}",
       4002},
      {IDENTIFY_OK,
       "{\"op\":4,\"d\":{\"guild_id\":\"1\",\"channel_id\":null,"
       "\"self_mute\":\"no\",\"self_deaf\":false}}",
       4002},
      {IDENTIFY_OK,
       "{\"op\":4,\"d\":{\"guild_id\":\"1\",\"channel_id\":null,"
       "\"self_mute\":false}}",
       4002},
      {IDENTIFY_OK,
       "{\"op\":6,\"d\":{\"token\":\"" TOKEN "\",\"session_id\":\"x\","
       "\"seq\":1}}",
       4005},
  };
  fx *f = *state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dv_sim_gw_conn *c = raw_conn(f);
    if (cases[i].before != NULL) {
      raw_send(f, c, cases[i].before);
      assert_int_equal(raw_drain(c, NULL, 0), 0);
    }
    raw_send(f, c, cases[i].msg);
    assert_int_equal(raw_drain(c, NULL, 0), cases[i].code);
    assert_int_equal(
        dv_sim_gw_conn_recv(c, 0, (const uint8_t *)"{}", 2, now(f)),
        DVOICE_ERR_INVALID_STATE);
    dv_sim_gw_conn_free(c);
  }
  /* Every violation was recorded somewhere with its close code. */
  assert_true(f->sgw->violations.n >= 8);
  assert_true(
      dv_sim_violations_find(&f->sgw->violations, "authentication failed"));
}

static void test_missing_intent_recorded(void **state) {
  fx *f = *state;
  dv_sim_gw_conn *c = raw_conn(f);
  dv_sim_gw_session *s;
  char last[512];
  raw_send(
      f, c,
      "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":1,"
      "\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}");
  assert_int_equal(raw_drain(c, last, sizeof(last)), 0);
  assert_non_null(strstr(last, "\"t\":\"READY\""));
  s = dv_sim_gw_find_session(f->sgw, "4242");
  assert_non_null(s);
  assert_true(
      dv_sim_violations_find(&s->report.violations, "GUILD_VOICE_STATES"));
  /* Without the intent only VOICE_SERVER_UPDATE arrives. */
  raw_send(f, c,
           "{\"op\":4,\"d\":{\"guild_id\":\"5\",\"channel_id\":\"6\","
           "\"self_mute\":false,\"self_deaf\":false}}");
  assert_int_equal(raw_drain(c, last, sizeof(last)), 0);
  assert_non_null(strstr(last, "VOICE_SERVER_UPDATE"));
  assert_int_equal(s->seq, 2);
  dv_sim_gw_conn_free(c);
}

static void test_rate_limit_and_heartbeat_timeout(void **state) {
  fx *f = *state;
  dv_sim_gw_conn *c = raw_conn(f);
  for (int i = 0; i < 120; i++) {
    raw_send(f, c, "{\"op\":1,\"d\":null}");
  }
  assert_int_equal(raw_drain(c, NULL, 0), 0);
  raw_send(f, c, "{\"op\":1,\"d\":null}");
  assert_int_equal(raw_drain(c, NULL, 0), 4008);
  dv_sim_gw_conn_free(c);
  /* Silence after Hello: 4009 at interval + grace. */
  c = raw_conn(f);
  assert_int_equal(dv_sim_gw_get_expiry(f->sgw), now(f) + 46250 * MS);
  f->e.clock.now += 46250 * MS - 1;
  assert_int_equal(dv_sim_gw_handle_expiry(f->sgw, now(f)), 0);
  assert_int_equal(raw_drain(c, NULL, 0), 0);
  f->e.clock.now += 1;
  assert_int_equal(dv_sim_gw_handle_expiry(f->sgw, now(f)), 0);
  assert_int_equal(raw_drain(c, NULL, 0), 4009);
  dv_sim_gw_conn_free(c);
}

static void test_resume_checks(void **state) {
  fx *f = *state;
  dv_sim_gw_conn *c = raw_conn(f);
  dv_sim_gw_session *s;
  char msg[256], last[512];
  raw_send(f, c, IDENTIFY_OK);
  raw_drain(c, NULL, 0);
  s = dv_sim_gw_find_session(f->sgw, "4242");
  assert_int_equal(dv_sim_gw_dispatch(s, "X", "{\"a\":1}", now(f)), 0);
  assert_int_equal(dv_sim_gw_dispatch(s, "Y", "[]", now(f)), 0);
  dv_sim_gw_conn_peer_closed(c, 1006, now(f));
  dv_sim_gw_conn_free(c);
  /* Unknown session: op 9 false, connection stays. */
  c = raw_conn(f);
  raw_send(f, c,
           "{\"op\":6,\"d\":{\"token\":\"" TOKEN "\",\"session_id\":\"nope\","
           "\"seq\":1}}");
  assert_int_equal(raw_drain(c, last, sizeof(last)), 0);
  assert_string_equal(last, "{\"op\":9,\"d\":false}");
  /* Good resume from seq 1: X and Y replayed, then RESUMED. */
  snprintf(msg, sizeof(msg),
           "{\"op\":6,\"d\":{\"token\":\"" TOKEN "\",\"session_id\":\"%s\","
           "\"seq\":1}}",
           s->session_id);
  raw_send(f, c, msg);
  assert_int_equal(raw_drain(c, last, sizeof(last)), 0);
  assert_string_equal(last, "{\"op\":0,\"t\":\"RESUMED\",\"s\":4,\"d\":{}}");
  assert_int_equal(s->report.replayed, 2);
  dv_sim_gw_conn_peer_closed(c, 4000, now(f));
  dv_sim_gw_conn_free(c);
  /* A seq we never sent: 4007 and the session ends. */
  c = raw_conn(f);
  snprintf(msg, sizeof(msg),
           "{\"op\":6,\"d\":{\"token\":\"" TOKEN "\",\"session_id\":\"%s\","
           "\"seq\":99}}",
           s->session_id);
  raw_send(f, c, msg);
  assert_int_equal(raw_drain(c, NULL, 0), 4007);
  assert_false(s->alive);
  dv_sim_gw_conn_free(c);
}

static void test_guild_create(void **state) {
  static const uint64_t chans[] = {501, 502};
  fx *f = *state;
  dv_sim_gw_conn *c;
  dv_sim_out o;
  int n = 0;
  char seen[3][2048];
  assert_int_equal(dv_sim_gw_add_guild(f->sgw, 77, chans, 2), 0);
  assert_int_equal(dv_sim_gw_add_guild(f->sgw, 77, chans, 2),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_sim_gw_add_guild(f->sgw, 0, chans, 2),
                   DVOICE_ERR_INVALID_ARGUMENT);
  c = raw_conn(f);
  raw_send(f, c, IDENTIFY_OK);
  while (dv_sim_gw_conn_pop(c, &o)) {
    assert_true(n < 3);
    snprintf(seen[n++], sizeof(seen[0]), "%.*s", (int)o.data.len,
             (char *)o.data.data);
    dv_buf_free(&o.data);
  }
  assert_int_equal(n, 2);
  assert_non_null(strstr(seen[0], "\"t\":\"READY\""));
  assert_non_null(
      strstr(seen[0], "\"guilds\":[{\"id\":\"77\",\"unavailable\":true}]"));
  assert_non_null(strstr(seen[1], "\"t\":\"GUILD_CREATE\",\"s\":2"));
  assert_non_null(strstr(seen[1], "{\"id\":\"502\",\"type\":2,"));
  assert_non_null(strstr(seen[1], "\"voice_states\":[]"));
  dv_sim_gw_conn_free(c);
  /* Without the GUILDS intent: no guilds at all. */
  c = raw_conn(f);
  raw_send(
      f, c,
      "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":128,"
      "\"properties\":{\"os\":\"l\",\"browser\":\"x\",\"device\":\"x\"}}}");
  n = 0;
  while (dv_sim_gw_conn_pop(c, &o)) {
    snprintf(seen[n++], sizeof(seen[0]), "%.*s", (int)o.data.len,
             (char *)o.data.data);
    dv_buf_free(&o.data);
  }
  assert_int_equal(n, 1);
  assert_non_null(strstr(seen[0], "\"guilds\":[]"));
  dv_sim_gw_conn_free(c);
}

/* ---- paired with the client machine ------------------------------------- */

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  fx *f = ud;
  vev *r;
  (void)gw;
  switch (ev->type) {
    case DV_GW_EV_CONNECT:
      snprintf(f->connect_url, sizeof(f->connect_url), "%s", ev->u.connect.url);
      assert_int_equal(dv_sim_gw_conn_new(f->sgw, now(f), &f->conn), 0);
      f->ws_open = 0; /* opened by pump() */
      return;
    case DV_GW_EV_CLOSE_WS:
      if (f->conn != NULL) {
        dv_sim_gw_conn_peer_closed(f->conn, ev->u.close_ws.code, now(f));
        raw_drain(f->conn, NULL, 0);
        dv_sim_gw_conn_free(f->conn);
        f->conn = NULL;
      }
      f->closes_by_client++;
      return;
    case DV_GW_EV_VOICE_STATE:
    case DV_GW_EV_VOICE_SERVER:
      break;
    default:
      return;
  }
  assert_true(f->nev < 256);
  r = &f->ev[f->nev++];
  memset(r, 0, sizeof(*r));
  r->type = ev->type;
  if (ev->type == DV_GW_EV_VOICE_STATE) {
    r->channel_id = ev->u.voice_state.channel_id;
    r->has_channel = ev->u.voice_state.has_channel;
    snprintf(r->s1, sizeof(r->s1), "%s", ev->u.voice_state.session_id);
  } else {
    snprintf(r->s1, sizeof(r->s1), "%s", ev->u.voice_server.token);
    snprintf(r->s2, sizeof(r->s2), "%s",
             ev->u.voice_server.endpoint ? ev->u.voice_server.endpoint
                                         : "(null)");
  }
}

static const dv_gw_callbacks cbs = {on_event, NULL};

/* Moves messages both ways until nothing moves. */
static void pump(fx *f) {
  for (int moved = 1; moved;) {
    const uint8_t *p;
    size_t len;
    dv_sim_out o;
    moved = 0;
    if (f->conn != NULL && !f->ws_open &&
        dv_gw_get_state(&f->gw) == DV_GW_CONNECTING) {
      f->ws_open = 1;
      assert_int_equal(dv_gw_on_open(&f->gw, now(f)), 0);
      moved = 1;
    }
    while (f->conn != NULL && dv_gw_next_out(&f->gw, &p, &len)) {
      (void)dv_sim_gw_conn_recv(f->conn, 0, p, len, now(f));
      moved = 1;
    }
    while (f->conn != NULL && f->ws_open && dv_sim_gw_conn_pop(f->conn, &o)) {
      moved = 1;
      if (o.kind == DV_SIM_OUT_CLOSE) {
        dv_sim_gw_conn *c = f->conn;
        f->last_server_close = o.close_code;
        f->closes_by_server++;
        f->conn = NULL;
        raw_drain(c, NULL, 0);
        dv_sim_gw_conn_free(c);
        dv_buf_free(&o.data);
        assert_int_equal(dv_gw_on_close(&f->gw, o.close_code, now(f)), 0);
        break;
      }
      (void)dv_gw_on_text(&f->gw, (const char *)o.data.data, o.data.len,
                          now(f));
      dv_buf_free(&o.data);
    }
  }
}

/* Advances both machines' clocks to |t|, running their deadlines. */
static void run_until(fx *f, dvoice_tstamp t) {
  for (int guard = 0; guard < 10000; guard++) {
    dvoice_tstamp e1 = dv_gw_get_expiry(&f->gw);
    dvoice_tstamp e2 = dv_sim_gw_get_expiry(f->sgw);
    dvoice_tstamp e = e1 < e2 ? e1 : e2;
    if (e > t) {
      break;
    }
    if (e > now(f)) {
      f->e.clock.now = e;
    }
    assert_int_equal(dv_sim_gw_handle_expiry(f->sgw, now(f)), 0);
    pump(f);
    assert_int_equal(dv_gw_handle_expiry(&f->gw, now(f)), 0);
    pump(f);
  }
  f->e.clock.now = t;
}

static void client_ready(fx *f) {
  dv_gw_config cfg;
  dv_gw_config_default(&cfg);
  cfg.token = TOKEN;
  cfg.url = "wss://127.0.0.1:9/?v=10&encoding=json";
  assert_int_equal(dv_gw_init(&f->gw, &cfg, &cbs, &f->e.env, f), 0);
  f->gw_live = 1;
  assert_int_equal(dv_gw_start(&f->gw, now(f)), 0);
  pump(f);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  assert_int_equal(dv_gw_user_id(&f->gw), BOT);
}

/* The last VOICE_STATE and VOICE_SERVER events since index |from|. */
static void pair_since(fx *f, int from, vev **st, vev **sv) {
  *st = *sv = NULL;
  for (int i = from; i < f->nev; i++) {
    if (f->ev[i].type == DV_GW_EV_VOICE_STATE) {
      *st = &f->ev[i];
    } else {
      *sv = &f->ev[i];
    }
  }
}

static void join(fx *f, uint64_t guild, uint64_t channel, vev **st, vev **sv) {
  int from = f->nev;
  assert_int_equal(
      dv_gw_update_voice_state(&f->gw, guild, channel, 0, 0, now(f)), 0);
  pump(f);
  pair_since(f, from, st, sv);
}

static void test_pair_join_registers_voice(void **state) {
  fx *f = *state;
  vev *st, *sv;
  dv_sim_session *vs;
  client_ready(f);
  assert_string_equal(f->connect_url, "wss://127.0.0.1:9/?v=10&encoding=json");
  join(f, 77, 88, &st, &sv);
  assert_non_null(st);
  assert_non_null(sv);
  assert_int_equal(st->channel_id, 88);
  assert_string_equal(sv->s2, "127.0.0.1:1001");
  /* The pair is exactly what the voice side expects. */
  vs = dv_sim_vgw_find_session(f->vgw[0], st->s1);
  assert_non_null(vs);
  assert_string_equal(vs->token, sv->s1);
  assert_string_equal(vs->server_id, "77");
  assert_string_equal(vs->user_id, "4242");
  /* Leave: a null channel. */
  {
    int from = f->nev;
    assert_int_equal(dv_gw_update_voice_state(&f->gw, 77, 0, 0, 0, now(f)), 0);
    pump(f);
    pair_since(f, from, &st, &sv);
    assert_non_null(st);
    assert_int_equal(st->has_channel, 0);
    assert_null(sv);
    assert_int_equal(vs->phase, DV_SIM_PHASE_ENDED);
  }
  /* The report keeps the op 4 sequence: join 88, then leave. */
  {
    dv_sim_gw_session *s = dv_sim_gw_find_session(f->sgw, "4242");
    dv_buf b;
    assert_non_null(s);
    assert_int_equal(s->report.voice_state_updates, 2);
    assert_int_equal(s->report.op4_channels[0], 88);
    assert_int_equal(s->report.op4_channels[1], 0);
    dv_buf_init(&b, NULL);
    assert_int_equal(dv_sim_gw_report_json(f->sgw, &b), 0);
    assert_int_equal(dv_buf_push(&b, 0), 0);
    assert_non_null(strstr((char *)b.data, "\"op4_channels\":[\"88\",null]"));
    dv_buf_free(&b);
  }
}

static void test_pair_random_order(void **state) {
  fx *f = *state;
  int state_first = 0, server_first = 0;
  client_ready(f);
  for (int i = 0; i < 16; i++) {
    int from = f->nev;
    vev *st, *sv;
    join(f, 77, 100 + i, &st, &sv);
    assert_non_null(st);
    assert_non_null(sv);
    if (f->ev[from].type == DV_GW_EV_VOICE_STATE) {
      state_first++;
    } else {
      server_first++;
    }
  }
  assert_true(state_first > 0);
  assert_true(server_first > 0);
}

static void test_pair_move_region_kick(void **state) {
  fx *f = *state;
  dv_sim_gw_session *s;
  vev *st, *sv;
  char tok1[64];
  int from;
  client_ready(f);
  join(f, 77, 88, &st, &sv);
  snprintf(tok1, sizeof(tok1), "%s", sv->s1);
  s = dv_sim_gw_find_session(f->sgw, "4242");
  /* Move. */
  from = f->nev;
  assert_int_equal(dv_sim_gw_move(s, 77, 99, now(f)), 0);
  pump(f);
  pair_since(f, from, &st, &sv);
  assert_non_null(st);
  assert_non_null(sv);
  assert_int_equal(st->channel_id, 99);
  assert_string_not_equal(sv->s1, tok1);
  assert_string_equal(sv->s2, "127.0.0.1:1001");
  /* Region change: null endpoint first, then the second voice server. */
  from = f->nev;
  assert_int_equal(dv_sim_gw_region_change(s, 77, now(f)), 0);
  pump(f);
  assert_int_equal(f->ev[from].type, DV_GW_EV_VOICE_SERVER);
  assert_string_equal(f->ev[from].s2, "(null)");
  pair_since(f, from + 1, &st, &sv);
  assert_non_null(sv);
  assert_string_equal(sv->s2, "127.0.0.1:1002");
  assert_non_null(dv_sim_vgw_find_session(f->vgw[1], st->s1));
  /* Kick. */
  from = f->nev;
  assert_int_equal(dv_sim_gw_kick(s, 77, now(f)), 0);
  pump(f);
  pair_since(f, from, &st, &sv);
  assert_non_null(st);
  assert_int_equal(st->has_channel, 0);
  assert_int_equal(dv_sim_gw_kick(s, 77, now(f)), DVOICE_ERR_NOT_FOUND);
  assert_int_equal(s->report.voice_state_updates, 1);
}

static void test_pair_reconnect_and_invalidate(void **state) {
  fx *f = *state;
  dv_sim_gw_session *s, *s2;
  client_ready(f);
  s = dv_sim_gw_find_session(f->sgw, "4242");
  /* op 7: the client drops the WS and resumes at resume_gateway_url. */
  assert_int_equal(dv_sim_gw_request_reconnect(s, now(f)), 0);
  pump(f);
  assert_int_equal(f->closes_by_client, 1);
  run_until(f, now(f) + 1 * MS);
  assert_string_equal(f->connect_url, "wss://127.0.0.1:9/?v=10&encoding=json");
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  assert_int_equal(s->report.resumes, 1);
  assert_int_equal(s->report.connections, 2);
  /* Invalidate: op 9 false, the client identifies again after 1..5 s. */
  assert_int_equal(dv_sim_gw_invalidate(s, now(f)), 0);
  pump(f);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_INVALID_WAIT);
  run_until(f, now(f) + 6 * SEC);
  assert_int_equal(dv_gw_get_state(&f->gw), DV_GW_READY);
  s2 = dv_sim_gw_find_session(f->sgw, "4242");
  assert_ptr_not_equal(s, s2);
  assert_false(s->alive);
  assert_string_equal(dv_gw_session_id(&f->gw), s2->session_id);
  assert_int_equal(s2->report.violations.n, 0);
}

static void test_pair_dropped_acks(void **state) {
  fx *f = *state;
  dv_sim_gw_session *s;
  client_ready(f);
  s = dv_sim_gw_find_session(f->sgw, "4242");
  s->drop_acks = 1;
  /* Two beats without ACK: the client calls it a zombie and resumes. */
  run_until(f, now(f) + 100 * SEC);
  assert_true(s->report.acks_dropped >= 1);
  assert_true(f->closes_by_client >= 1);
  assert_true(s->report.resumes >= 1);
  assert_int_equal(s->report.violations.n, 0);
  /* Heartbeats keep the server's timeout away: no 4009. */
  assert_int_equal(f->closes_by_server, 0);
}

static void test_report_json(void **state) {
  fx *f = *state;
  dv_buf b;
  client_ready(f);
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_sim_gw_report_json(f->sgw, &b), 0);
  assert_int_equal(dv_buf_push(&b, 0), 0);
  assert_non_null(strstr((char *)b.data, "\"identifies\":1"));
  assert_non_null(strstr((char *)b.data, "\"user_id\":\"4242\""));
  assert_null(strstr((char *)b.data, TOKEN));
  dv_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_validation_close_codes),
      T(test_missing_intent_recorded),
      T(test_rate_limit_and_heartbeat_timeout),
      T(test_resume_checks),
      T(test_guild_create),
      T(test_pair_join_registers_voice),
      T(test_pair_random_order),
      T(test_pair_move_region_kick),
      T(test_pair_reconnect_and_invalidate),
      T(test_pair_dropped_acks),
      T(test_report_json),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
