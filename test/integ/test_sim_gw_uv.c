/*
 * Integration: lib/gateway's machine, driven by a minimal libuv glue in this
 * test over wss:// (dv_uv_ws), against the public simulator (dvoice/sim.h)
 * on loopback: identify, op 4 join with both events, op 7 resume, region
 * change to the second voice server, kick, clean close; the simulator
 * records no violation and nothing is left on the loop.
 */
#include "dvt.h"

#include <uv.h>

#include <dvoice/sim.h>

#include "../interop/dvt_net.h"
#include "gateway/dv_gateway.h"
#include "uv/dv_uv_stream.h"

#define TOKEN "INTEG.token.1"
#define BOT 4242

typedef struct cli {
  uv_loop_t loop;
  dvt_env env;
  dvoice_sim *sim;
  int sim_closed;
  dv_gw gw;
  dv_uv_ws *ws;
  int ws_released;
  uv_timer_t timer;
  int ready, resumed, states, servers, null_endpoints, kicked;
  char endpoint[80];
  char session[64];
} cli;

static void flush(cli *c);

static dvoice_tstamp now(cli *c) {
  (void)c;
  return uv_hrtime();
}

static void ws_released(dv_uv_ws *ws, void *ud) {
  cli *c = ud;
  (void)ws;
  c->ws_released++;
}

static void drop_ws(cli *c, int code) {
  if (c->ws != NULL) {
    (void)dv_uv_ws_close(c->ws, (uint16_t)code, NULL, ws_released);
    c->ws = NULL;
  }
}

static void ws_open(dv_uv_ws *ws, void *ud) {
  cli *c = ud;
  (void)ws;
  (void)dv_gw_on_open(&c->gw, now(c));
  flush(c);
}

static void ws_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  cli *c = ud;
  (void)ws;
  assert_int_equal(op, DV_WS_TEXT);
  (void)dv_gw_on_text(&c->gw, (const char *)data, len, now(c));
  flush(c);
}

static void ws_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                     size_t rlen, void *ud) {
  cli *c = ud;
  (void)reason;
  (void)rlen;
  if (c->ws == ws) {
    drop_ws(c, 1000);
    (void)dv_gw_on_close(&c->gw, code == 1005 ? 0 : code, now(c));
  }
  flush(c);
}

static void ws_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  cli *c = ud;
  (void)err;
  (void)uv_err;
  if (c->ws == ws) {
    drop_ws(c, 1000);
    (void)dv_gw_on_close(&c->gw, 0, now(c));
  }
  flush(c);
}

static const dv_uv_ws_callbacks ws_cb = {
    .on_open = ws_open,
    .on_message = ws_message,
    .on_close = ws_close,
    .on_error = ws_error,
};

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  cli *c = ud;
  dv_uv_ws_settings s;
  (void)gw;
  switch (ev->type) {
    case DV_GW_EV_CONNECT:
      dv_uv_ws_settings_default(&s);
      s.env = &c->env.env;
      s.tls.ca_file = dvoice_sim_ca_file(c->sim);
      assert_int_equal(
          dv_uv_ws_connect(&c->ws, &c->loop, ev->u.connect.url, &s, &ws_cb, c),
          0);
      break;
    case DV_GW_EV_CLOSE_WS:
      drop_ws(c, ev->u.close_ws.code);
      break;
    case DV_GW_EV_READY:
      c->ready++;
      snprintf(c->session, sizeof(c->session), "%s", ev->u.ready.session_id);
      break;
    case DV_GW_EV_RESUMED:
      c->resumed++;
      break;
    case DV_GW_EV_VOICE_STATE:
      c->states++;
      c->kicked += !ev->u.voice_state.has_channel;
      break;
    case DV_GW_EV_VOICE_SERVER:
      c->servers++;
      if (ev->u.voice_server.endpoint == NULL) {
        c->null_endpoints++;
      } else {
        snprintf(c->endpoint, sizeof(c->endpoint), "%s",
                 ev->u.voice_server.endpoint);
      }
      break;
    default:
      break;
  }
}

static void on_timer(uv_timer_t *t) {
  cli *c = t->data;
  (void)dv_gw_handle_expiry(&c->gw, now(c));
  flush(c);
}

static void flush(cli *c) {
  const uint8_t *p;
  size_t len;
  dvoice_tstamp e, n;
  while (dv_gw_next_out(&c->gw, &p, &len)) {
    if (c->ws != NULL) {
      (void)dv_uv_ws_send(c->ws, DV_WS_TEXT, p, len);
    }
  }
  e = dv_gw_get_expiry(&c->gw);
  if (e == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&c->timer);
    return;
  }
  n = now(c);
  uv_timer_start(&c->timer, on_timer,
                 e <= n ? 0 : (e - n + DVOICE_MS - 1) / DVOICE_MS, 0);
}

static int ready1(void *ud) {
  return ((cli *)ud)->ready >= 1;
}
static int joined(void *ud) {
  return ((cli *)ud)->states >= 1 && ((cli *)ud)->servers >= 1;
}
static int resumed(void *ud) {
  return ((cli *)ud)->resumed >= 1;
}
static int region_done(void *ud) {
  cli *c = ud;
  return c->null_endpoints == 1 && c->servers >= 3;
}
static int kicked(void *ud) {
  return ((cli *)ud)->kicked >= 1;
}
static int released(void *ud) {
  return ((cli *)ud)->ws_released >= 2;
}

static void sim_closed_flag(dvoice_sim *sim, void *ud) {
  (void)sim;
  *(int *)ud = 1;
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  (void)sim;
  ((cli *)ud)->sim_closed = 1;
}

static void test_gateway_against_sim(void **state) {
  cli c;
  dvoice_sim_settings ss;
  dv_gw_config cfg;
  dv_gw_callbacks cb = {on_event, NULL};
  char report[8192];
  long n;
  (void)state;
  memset(&c, 0, sizeof(c));
  assert_int_equal(uv_loop_init(&c.loop), 0);
  dvt_env_init(&c.env);
  c.env.env.now = NULL;
  c.env.env.rand = NULL;
  c.env.env.log_level = DVOICE_LOG_INFO;
  dvoice_sim_settings_default(&ss);
  ss.env = &c.env.env;
  ss.heartbeat_interval_ms = 300;
  assert_int_equal(dvoice_sim_start(&c.loop, &ss, &c.sim), 0);
  assert_non_null(dvoice_sim_ca_file(c.sim));
  assert_int_equal(dvoice_sim_add_bot(c.sim, TOKEN, BOT), 0);
  assert_int_equal(uv_timer_init(&c.loop, &c.timer), 0);
  c.timer.data = &c;

  {
    dvoice_env genv;
    dvoice_env_default(&genv);
    genv.log = c.env.env.log;
    genv.log_user_data = c.env.env.log_user_data;
    genv.log_level = DVOICE_LOG_DEBUG;
    genv.rand = dvt_rand_fill;
    genv.rand_user_data = &c.env.rand;
    dv_gw_config_default(&cfg);
    cfg.token = TOKEN;
    cfg.url = dvoice_sim_gateway_url(c.sim);
    assert_int_equal(dv_gw_init(&c.gw, &cfg, &cb, &genv, &c), 0);
  }
  assert_int_equal(dv_gw_start(&c.gw, now(&c)), 0);
  flush(&c);
  assert_int_equal(dvt_run_until(&c.loop, ready1, &c, 10000), 0);

  /* Join: both events, the first voice server. */
  assert_int_equal(dv_gw_update_voice_state(&c.gw, 77, 88, 0, 1, now(&c)), 0);
  flush(&c);
  assert_int_equal(dvt_run_until(&c.loop, joined, &c, 5000), 0);
  assert_string_equal(c.endpoint, dvoice_sim_voice_endpoint(c.sim, 0));

  /* op 7: the client resumes on a new connection. */
  assert_int_equal(
      dvoice_sim_command_run(c.sim, DVOICE_SIM_RECONNECT, BOT, 0, 0), 0);
  assert_int_equal(dvt_run_until(&c.loop, resumed, &c, 10000), 0);
  assert_int_equal(c.ready, 1);

  /* Region change: null endpoint, then the second voice server. */
  assert_int_equal(
      dvoice_sim_command_run(c.sim, DVOICE_SIM_REGION_CHANGE, BOT, 77, 0), 0);
  assert_int_equal(dvt_run_until(&c.loop, region_done, &c, 5000), 0);
  assert_string_equal(c.endpoint, dvoice_sim_voice_endpoint(c.sim, 1));

  /* Kick. */
  assert_int_equal(dvoice_sim_command_run(c.sim, DVOICE_SIM_KICK, BOT, 77, 0),
                   0);
  assert_int_equal(dvt_run_until(&c.loop, kicked, &c, 5000), 0);
  assert_int_equal(dvoice_sim_command_run(c.sim, DVOICE_SIM_KICK, BOT, 77, 0),
                   DVOICE_ERR_NOT_FOUND);

  /* Heartbeats flowed for a while without a violation. */
  {
    uint64_t until = uv_hrtime() + 1000 * DVOICE_MS;
    while (uv_hrtime() < until) {
      uv_run(&c.loop, UV_RUN_ONCE);
    }
  }
  n = dvoice_sim_report(c.sim, report, sizeof(report));
  assert_true(n > 0 && (size_t)n < sizeof(report));
  assert_non_null(strstr(report, "\"resumes\":1"));
  assert_non_null(strstr(report, "\"voice_state_updates\":1"));
  if (dvoice_sim_violation_count(c.sim) != 0) {
    fail_msg("violations: %s", report);
  }
  assert_null(strstr(report, TOKEN));

  /* Leave cleanly. */
  assert_int_equal(dv_gw_close(&c.gw, now(&c)), 0);
  flush(&c);
  assert_int_equal(dvt_run_until(&c.loop, released, &c, 5000), 0);
  dv_gw_free(&c.gw);
  uv_close((uv_handle_t *)&c.timer, NULL);
  assert_int_equal(dvoice_sim_close(c.sim, sim_closed, &c), 0);
  assert_int_equal(dvoice_sim_close(c.sim, sim_closed, &c),
                   DVOICE_ERR_INVALID_STATE);
  dvt_run_flag(&c.loop, &c.sim_closed, 5000);
  assert_false(dvt_log_contains(&c.env.log, TOKEN));
  assert_int_equal(dvt_loop_teardown(&c.loop), 0);
  dvt_env_free(&c.env);
}

/* ---- REST over plain HTTP (dvoice_sim_settings.plain) -------------------- */

typedef struct http_get {
  uv_tcp_t tcp;
  uv_connect_t conn;
  uv_write_t wr;
  const char *req;
  dv_buf got;
  int eof;
  char rx[4096];
} http_get;

static void hg_alloc(uv_handle_t *h, size_t n, uv_buf_t *b) {
  http_get *hg = h->data;
  (void)n;
  *b = uv_buf_init(hg->rx, sizeof(hg->rx));
}

static void hg_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  http_get *hg = st->data;
  if (n > 0) {
    assert_int_equal(dv_buf_append(&hg->got, b->base, (size_t)n), 0);
  } else if (n < 0) {
    hg->eof = 1;
    uv_read_stop(st);
  }
}

static void hg_connected(uv_connect_t *req, int status) {
  http_get *hg = req->data;
  uv_buf_t b = uv_buf_init((char *)hg->req, (unsigned)strlen(hg->req));
  assert_int_equal(status, 0);
  assert_int_equal(uv_write(&hg->wr, (uv_stream_t *)&hg->tcp, &b, 1, NULL), 0);
  assert_int_equal(uv_read_start((uv_stream_t *)&hg->tcp, hg_alloc, hg_read),
                   0);
}

/* Sends |req| to 127.0.0.1:|port| and returns the response (malloc'd). */
static char *http_fetch(uv_loop_t *loop, uint16_t port, const char *req) {
  http_get hg;
  struct sockaddr_in a;
  char *out;
  memset(&hg, 0, sizeof(hg));
  dv_buf_init(&hg.got, NULL);
  hg.req = req;
  hg.tcp.data = hg.conn.data = &hg;
  assert_int_equal(uv_tcp_init(loop, &hg.tcp), 0);
  assert_int_equal(uv_ip4_addr("127.0.0.1", port, &a), 0);
  assert_int_equal(
      uv_tcp_connect(&hg.conn, &hg.tcp, (struct sockaddr *)&a, hg_connected),
      0);
  dvt_run_flag(loop, &hg.eof, 5000);
  uv_close((uv_handle_t *)&hg.tcp, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(dv_buf_push(&hg.got, 0), 0);
  out = strdup((char *)hg.got.data);
  dv_buf_free(&hg.got);
  return out;
}

static void test_rest_gateway_bot(void **state) {
  uv_loop_t loop;
  dvt_env env;
  dvoice_sim *sim;
  dvoice_sim_settings ss;
  int closed = 0;
  unsigned port;
  char req[256], *resp;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dvt_env_init(&env);
  env.env.now = NULL;
  env.env.rand = NULL;
  dvoice_sim_settings_default(&ss);
  ss.env = &env.env;
  ss.plain = 1;
  assert_int_equal(dvoice_sim_start(&loop, &ss, &sim), 0);
  assert_null(dvoice_sim_ca_file(sim));
  assert_int_equal(dvoice_sim_add_bot(sim, TOKEN, BOT), 0);
  assert_int_equal(
      sscanf(dvoice_sim_api_url(sim), "http://127.0.0.1:%u/api/v10", &port), 1);
  snprintf(req, sizeof(req),
           "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bot %s\r\n\r\n",
           TOKEN);
  resp = http_fetch(&loop, (uint16_t)port, req);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(resp, "\"shards\":1"));
  {
    char want[128];
    snprintf(want, sizeof(want), "{\"url\":\"ws://127.0.0.1:%u\"", port);
    assert_non_null(strstr(resp, want));
  }
  free(resp);
  assert_int_equal(dvoice_sim_violation_count(sim), 0);
  /* Without the bot token: 401, recorded. */
  resp = http_fetch(&loop, (uint16_t)port,
                    "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(resp, "HTTP/1.1 401 "));
  free(resp);
  assert_int_equal(dvoice_sim_violation_count(sim), 1);
  /* /gateway needs no token; unknown paths are 404. */
  resp = http_fetch(&loop, (uint16_t)port,
                    "GET /api/v10/gateway HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  free(resp);
  resp = http_fetch(&loop, (uint16_t)port,
                    "GET /api/v10/users/@me HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_non_null(strstr(resp, "HTTP/1.1 404 "));
  free(resp);
  assert_int_equal(dvoice_sim_close(sim, sim_closed_flag, &closed), 0);
  dvt_run_flag(&loop, &closed, 5000);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
  dvt_env_free(&env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gateway_against_sim),
      cmocka_unit_test(test_rest_gateway_bot),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
