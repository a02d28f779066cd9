/*
 * Interop: lib/uv's WebSocket stream against Node's `ws` package over TLS on
 * 127.0.0.1, in both roles, plus failures provoked by small Node servers.
 * The peers are scripts in test/interop/peers; their stdout lines are the
 * peer's side of each assertion. Skipped when DVOICE_NPM_PEERS is unset
 * (a failure under CI=true).
 */
#include "dvt_net.h"

#include "uv/dv_uv_stream.h"

#define MIB ((size_t)1 << 20)

static const char *npm_peers;
static dvt_certs certs;

/* ---- one side's record -------------------------------------------------- */

typedef struct side {
  dv_uv_ws *ws;
  int opened;
  int messages;
  int closed;
  int errored;
  int err;
  int uv_err;
  uint16_t code;
  char reason[128];
  int released;
  char scenario[32]; /* server side: from the peer's first message */
  char target[64];   /* the request target, copied in on_open */
  int echo;          /* echo every message (after the scenario) */
  dv_buf last;       /* the last message */
  dv_ws_opcode last_op;
} side;

static void released_cb(dv_uv_ws *ws, void *ud) {
  (void)ws;
  ((side *)ud)->released = 1;
}

static void side_close(side *sd, uint16_t code, const char *reason) {
  assert_int_equal(dv_uv_ws_close(sd->ws, code, reason, released_cb), 0);
}

static void cb_open(dv_uv_ws *ws, void *ud) {
  side *sd = ud;
  sd->opened++;
  snprintf(sd->target, sizeof(sd->target), "%s", dv_uv_ws_target(ws));
}

static void cb_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  side *sd = ud;
  sd->messages++;
  sd->last_op = op;
  dv_buf_reset(&sd->last);
  assert_int_equal(dv_buf_append(&sd->last, data, len), 0);
  if (sd->echo) {
    assert_int_equal(dv_uv_ws_send(ws, op, data, len), 0);
  }
}

static void cb_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                     size_t len, void *ud) {
  side *sd = ud;
  (void)ws;
  sd->closed++;
  sd->code = code;
  assert_true(len < sizeof(sd->reason));
  memcpy(sd->reason, reason, len + 1);
}

static void cb_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  side *sd = ud;
  (void)ws;
  sd->errored++;
  sd->err = err;
  sd->uv_err = uv_err;
}

static const dv_uv_ws_callbacks client_cb = {
    .on_open = cb_open,
    .on_message = cb_message,
    .on_close = cb_close,
    .on_error = cb_error,
};

static int opened_or_failed(void *ud) {
  side *sd = ud;
  return sd->opened || sd->errored || sd->closed;
}

static int ended(void *ud) {
  side *sd = ud;
  return sd->errored || sd->closed;
}

/* ---- fixture: loop + env + a Node peer ---------------------------------- */

typedef struct fx {
  uv_loop_t loop;
  dvt_env env;
  dvt_peer peer;
  int have_peer;
  side client;
  side server;
  dv_uv_ws_server *srv;
  int srv_closed;
} fx;

static void fx_init(fx *f) {
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dvt_env_init(&f->env);
  f->env.env.now = NULL;
  f->env.env.rand = NULL;
  dv_buf_init(&f->client.last, NULL);
  dv_buf_init(&f->server.last, NULL);
}

static void srv_closed_cb(dv_uv_ws_server *srv, void *ud) {
  (void)srv;
  ((fx *)ud)->srv_closed = 1;
}

static void fx_end(fx *f) {
  if (f->srv != NULL) {
    assert_int_equal(dv_uv_ws_server_close(f->srv, srv_closed_cb), 0);
    dvt_run_flag(&f->loop, &f->srv_closed, 5000);
  }
  if (f->have_peer) {
    dvt_peer_stop(&f->peer);
  }
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  dv_buf_free(&f->client.last);
  dv_buf_free(&f->server.last);
  dvt_env_free(&f->env);
}

static void fx_settings(fx *f, dv_uv_ws_settings *s) {
  dv_uv_ws_settings_default(s);
  s->env = &f->env.env;
  s->tls.ca_file = certs.ca;
  s->connect_timeout_ms = 5000;
  s->close_timeout_ms = 2000;
  s->max_message_size = MIB;
}

/* Starts ws_server.js; returns the port of |which| ("good" or "wrong"). */
static unsigned start_ws_server(fx *f, const char *which) {
  const char *args[] = {certs.server_cert, certs.server_key, certs.wrong_cert,
                        certs.wrong_key, NULL};
  char rest[64], prefix[32];
  dvt_peer_start(&f->peer, &f->loop, npm_peers, dvt_peer_script("ws_server.js"),
                 args);
  f->have_peer = 1;
  snprintf(prefix, sizeof(prefix), "PORT %s ", which);
  dvt_peer_wait(&f->peer, prefix, rest, sizeof(rest), 10000);
  return (unsigned)atoi(rest);
}

static unsigned start_raw_server(fx *f, const char *which) {
  const char *args[] = {certs.server_cert, certs.server_key, NULL};
  char rest[64], prefix[32];
  dvt_peer_start(&f->peer, &f->loop, npm_peers,
                 dvt_peer_script("raw_server.js"), args);
  f->have_peer = 1;
  snprintf(prefix, sizeof(prefix), "PORT %s ", which);
  dvt_peer_wait(&f->peer, prefix, rest, sizeof(rest), 10000);
  return (unsigned)atoi(rest);
}

static void client_connect(fx *f, const char *host, unsigned port,
                           const char *path, const dv_uv_ws_settings *s) {
  char url[256];
  snprintf(url, sizeof(url), "wss://%s:%u%s", host, port, path);
  assert_int_equal(
      dv_uv_ws_connect(&f->client.ws, &f->loop, url, s, &client_cb, &f->client),
      0);
}

#define NEED_PEERS()                                                           \
  do {                                                                         \
    if (npm_peers == NULL) {                                                   \
      skip();                                                                  \
    }                                                                          \
  } while (0)

/* ---- our client against Node's ws server -------------------------------- */

static void fill_pattern(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(i * 31 + seed);
  }
}

static int got_messages(void *ud) {
  side *sd = ud;
  return sd->messages >= 1 || sd->errored || sd->closed;
}

static void test_client_echo(void **state) {
  static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000, MIB};
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  uint8_t *buf;
  char line[256];
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  fx_settings(&f, &s);
  client_connect(&f, "localhost", port, "/echo", &s);
  dvt_run_until(&f.loop, opened_or_failed, &f.client, 10000);
  assert_int_equal(f.client.opened, 1);
  buf = malloc(MIB);
  assert_non_null(buf);
  /* One message at a time, text and binary, each compared byte for byte. */
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    for (int text = 0; text < 2; text++) {
      size_t n = sizes[i];
      if (text) {
        memset(buf, 'a' + (int)(i % 26), n);
      } else {
        fill_pattern(buf, n, (unsigned)n);
      }
      f.client.messages = 0;
      assert_int_equal(
          dv_uv_ws_send(f.client.ws, text ? DV_WS_TEXT : DV_WS_BINARY, buf, n),
          0);
      assert_int_equal(dvt_run_until(&f.loop, got_messages, &f.client, 10000),
                       0);
      assert_int_equal(f.client.messages, 1);
      assert_int_equal(f.client.last_op, text ? DV_WS_TEXT : DV_WS_BINARY);
      dvt_assert_bytes(f.client.last.data, f.client.last.len, buf, n);
    }
  }
  free(buf);
  side_close(&f.client, 1000, "echo done");
  dvt_peer_wait(&f.peer, "CLOSE /echo ", line, sizeof(line), 10000);
  assert_string_equal(line, "1000 echo done");
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  assert_int_equal(f.client.closed + f.client.errored, 0);
  fx_end(&f);
}

static void test_client_fragmented(void **state) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  uint8_t want[70000];
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  fx_settings(&f, &s);
  f.client.echo = 1;
  client_connect(&f, "localhost", port, "/fragment", &s);
  dvt_run_until(&f.loop, got_messages, &f.client, 10000);
  /* Three frames from the server became one message. */
  assert_int_equal(f.client.messages, 1);
  fill_pattern(want, sizeof(want), 7);
  dvt_assert_bytes(f.client.last.data, f.client.last.len, want, sizeof(want));
  /* Our echo of it arrived whole at the server. */
  dvt_peer_wait(&f.peer, "FRAGMENT ok", NULL, 0, 10000);
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  fx_end(&f);
}

static void test_client_answers_ping(void **state) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  char line[64];
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  fx_settings(&f, &s);
  client_connect(&f, "localhost", port, "/ping", &s);
  dvt_peer_wait(&f.peer, "PONG ", line, sizeof(line), 10000);
  assert_string_equal(line, "dvoice-ping");
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  assert_int_equal(f.client.opened, 1);
  fx_end(&f);
}

static void run_server_closes(uint16_t code, const char *path,
                              const char *reason) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  char line[128], want[128];
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  fx_settings(&f, &s);
  client_connect(&f, "localhost", port, path, &s);
  dvt_run_until(&f.loop, ended, &f.client, 10000);
  assert_int_equal(f.client.errored, 0);
  assert_int_equal(f.client.closed, 1);
  assert_int_equal(f.client.code, code);
  assert_string_equal(f.client.reason, reason);
  /* The server saw the close handshake complete (our echo of its code). */
  snprintf(want, sizeof(want), "CLOSE %s ", path);
  dvt_peer_wait(&f.peer, want, line, sizeof(line), 10000);
  snprintf(want, sizeof(want), "%u %s", (unsigned)code, reason);
  assert_string_equal(line, want);
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  fx_end(&f);
}

static void test_client_server_closes_1000(void **state) {
  (void)state;
  run_server_closes(1000, "/close1000", "normal bye");
}

static void test_client_server_closes_4015(void **state) {
  (void)state;
  run_server_closes(4015, "/close4015", "voice server crashed");
}

static void test_client_message_too_big(void **state) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  char line[128];
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  fx_settings(&f, &s);
  client_connect(&f, "localhost", port, "/big?n=1048577", &s);
  dvt_run_until(&f.loop, ended, &f.client, 10000);
  assert_int_equal(f.client.err, DVOICE_ERR_WS_TOO_BIG);
  assert_int_equal(f.client.messages, 0);
  dvt_peer_wait(&f.peer, "CLOSE /big ", line, sizeof(line), 10000);
  assert_int_equal(atoi(line), 1009);
  assert_true(dvt_log_contains(&f.env.log, "message too big"));
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  fx_end(&f);
}

/* Every byte of the Upgrade response and the frames in its own TLS record:
 * the glue must reassemble across many tiny reads. */
static void test_client_byte_by_byte(void **state) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  fx_settings(&f, &s);
  client_connect(&f, "localhost", port, "/drip", &s);
  dvt_run_until(&f.loop, ended, &f.client, 10000);
  assert_int_equal(f.client.opened, 1);
  assert_int_equal(f.client.messages, 1);
  assert_int_equal(f.client.last_op, DV_WS_TEXT);
  dvt_assert_bytes(f.client.last.data, f.client.last.len,
                   (const uint8_t *)"hello", 5);
  assert_int_equal(f.client.closed, 1);
  assert_int_equal(f.client.code, 1000);
  assert_string_equal(f.client.reason, "drip done");
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  fx_end(&f);
}

/* A peer that never answers our close frame, and one that answers but
 * never ends TCP: close_cb still runs, after close_timeout_ms. */
static void run_close_timeout(const char *path, const char *state_name) {
  fx f;
  dv_uv_ws_settings s;
  unsigned port;
  char needle[96];
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  fx_settings(&f, &s);
  s.close_timeout_ms = 300;
  client_connect(&f, "localhost", port, path, &s);
  dvt_run_until(&f.loop, opened_or_failed, &f.client, 10000);
  assert_int_equal(f.client.opened, 1);
  side_close(&f.client, 1000, NULL);
  dvt_run_flag(&f.loop, &f.client.released, 10000);
  snprintf(needle, sizeof(needle), "close timed out in state %s", state_name);
  if (!dvt_log_contains(&f.env.log, needle)) {
    fail_msg("no \"%s\" in:\n%s", needle, (char *)f.env.log.text.data);
  }
  assert_int_equal(f.client.closed + f.client.errored, 0);
  fx_end(&f);
}

static void test_close_timeout_no_close_frame(void **state) {
  (void)state;
  run_close_timeout("/mute", "closing");
}

static void test_close_timeout_no_fin(void **state) {
  (void)state;
  run_close_timeout("/nofin", "shutdown");
}

/* ---- failures ------------------------------------------------------------ */

/* Connects to |port| with the CA |ca|; expects on_error(|want|) and a log
 * line containing |needle|. */
static void expect_client_error(fx *f, const char *host, unsigned port,
                                const char *path, const char *ca,
                                uint64_t timeout_ms, int want,
                                const char *needle) {
  dv_uv_ws_settings s;
  fx_settings(f, &s);
  s.tls.ca_file = ca;
  s.connect_timeout_ms = timeout_ms;
  client_connect(f, host, port, path, &s);
  dvt_run_until(&f->loop, ended, &f->client, 15000);
  if (f->client.errored != 1 || f->client.err != want) {
    fail_msg("want %s, got %s (errored %d closed %d); log:\n%s",
             dvoice_err_name(want), dvoice_err_name(f->client.err),
             f->client.errored, f->client.closed, (char *)f->env.log.text.data);
  }
  /* Only the mid-frame failures get as far as the open WebSocket. */
  assert_int_equal(f->client.opened, want == DVOICE_ERR_TLS_CLOSED);
  if (!dvt_log_contains(&f->env.log, needle)) {
    fail_msg("no log line with \"%s\" in:\n%s", needle,
             (char *)f->env.log.text.data);
  }
  side_close(&f->client, 1000, NULL);
  dvt_run_flag(&f->loop, &f->client.released, 10000);
}

static void test_fail_wrong_ca(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "good");
  expect_client_error(&f, "localhost", port, "/echo", certs.otherca, 5000,
                      DVOICE_ERR_TLS_BAD_CERT, "not trusted");
  fx_end(&f);
}

static void test_fail_hostname_mismatch(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_ws_server(&f, "wrong");
  expect_client_error(&f, "localhost", port, "/echo", certs.ca, 5000,
                      DVOICE_ERR_TLS_HOSTNAME, "host name");
  fx_end(&f);
}

static void test_fail_conn_refused(void **state) {
  fx f;
  unsigned port;
  (void)state;
  fx_init(&f);
  port = (unsigned)dvt_closed_port(&f.loop);
  expect_client_error(&f, "127.0.0.1", port, "/", certs.ca, 5000,
                      DVOICE_ERR_CONN_REFUSED, "connection refused");
  assert_int_equal(f.client.uv_err, UV_ECONNREFUSED);
  fx_end(&f);
}

static void test_fail_dns(void **state) {
  fx f;
  (void)state;
  fx_init(&f);
  expect_client_error(&f, "does-not-exist.invalid", 443, "/", certs.ca, 5000,
                      DVOICE_ERR_DNS, "host name resolution failed");
  assert_true(f.client.uv_err != 0);
  fx_end(&f);
}

static void test_fail_tls_handshake_timeout(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "silent");
  expect_client_error(&f, "localhost", port, "/", certs.ca, 400,
                      DVOICE_ERR_TIMEOUT, "TLS handshake failed");
  fx_end(&f);
}

static void test_fail_upgrade_timeout(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  /* Long enough for the TLS handshake to finish even under valgrind, so
   * the deadline hits the Upgrade stage. */
  expect_client_error(&f, "localhost", port, "/hang", certs.ca, 2500,
                      DVOICE_ERR_TIMEOUT, "upgrade failed");
  dvt_peer_wait(&f.peer, "REQUEST /hang", NULL, 0, 1000);
  fx_end(&f);
}

static void test_fail_upgrade_403(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  expect_client_error(&f, "localhost", port, "/403", certs.ca, 5000,
                      DVOICE_ERR_WS_UPGRADE, "403");
  fx_end(&f);
}

static void test_fail_upgrade_bad_accept(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  expect_client_error(&f, "localhost", port, "/badaccept", certs.ca, 5000,
                      DVOICE_ERR_WS_ACCEPT, "Sec-WebSocket-Accept");
  fx_end(&f);
}

static void test_fail_tls_closed_mid_frame(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  /* close_notify, then FIN, in the middle of a frame. */
  expect_client_error(&f, "localhost", port, "/midframe", certs.ca, 5000,
                      DVOICE_ERR_TLS_CLOSED, "close_notify");
  fx_end(&f);
}

static void test_fail_tcp_closed_mid_frame(void **state) {
  fx f;
  unsigned port;
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  port = start_raw_server(&f, "tls");
  /* FIN without close_notify, in the middle of a frame. */
  expect_client_error(&f, "localhost", port, "/midframe-rst", certs.ca, 5000,
                      DVOICE_ERR_TLS_CLOSED, "peer closed");
  fx_end(&f);
}

/* ---- Node's ws client against our listener ------------------------------ */

static void srv_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                        size_t len, void *ud) {
  side *sd = ud;
  static const char prefix[] = "scenario ";
  if (sd->scenario[0] == 0) {
    /* The first message names the scenario. */
    assert_int_equal(op, DV_WS_TEXT);
    assert_true(len > sizeof(prefix) - 1 && len < sizeof(sd->scenario) + 9);
    assert_memory_equal(data, prefix, sizeof(prefix) - 1);
    memcpy(sd->scenario, data + 9, len - 9);
    sd->scenario[len - 9] = 0;
    if (strcmp(sd->scenario, "echo") == 0 ||
        strcmp(sd->scenario, "fragment") == 0) {
      sd->echo = 1;
    } else if (strcmp(sd->scenario, "close1000") == 0) {
      side_close(sd, 1000, "normal bye");
    } else if (strcmp(sd->scenario, "close4015") == 0) {
      side_close(sd, 4015, "voice server crashed");
    }
    return;
  }
  cb_message(ws, op, data, len, ud);
}

static const dv_uv_ws_callbacks server_cb = {
    .on_open = cb_open,
    .on_message = srv_message,
    .on_close = cb_close,
    .on_error = cb_error,
};

static void srv_accept(dv_uv_ws_server *srv, dv_uv_ws *conn, void *ud) {
  fx *f = ud;
  (void)srv;
  assert_null(f->server.ws);
  f->server.ws = conn;
  dv_uv_ws_set_callbacks(conn, &server_cb, &f->server);
}

/* Runs ws_client.js |scenario| against our TLS listener, waits for it to
 * finish, and returns its "CLOSE" line in |close_line|. */
static void run_reverse(fx *f, const char *scenario, const char *extra,
                        char *close_line, size_t n) {
  dv_uv_ws_server_settings ss;
  char url[128];
  const char *args[5];
  fx_init(f);
  dv_uv_ws_server_settings_default(&ss);
  ss.conn.env = &f->env.env;
  ss.conn.max_message_size = MIB;
  ss.conn.close_timeout_ms = 2000;
  ss.cert_file = certs.server_cert;
  ss.key_file = certs.server_key;
  assert_int_equal(
      dv_uv_ws_server_new(&f->srv, &f->loop, &ss, srv_accept, NULL, f), 0);
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/dvoice?x=1",
           dv_uv_ws_server_port(f->srv));
  args[0] = url;
  args[1] = certs.ca;
  args[2] = scenario;
  args[3] = extra;
  args[4] = NULL;
  dvt_peer_start(&f->peer, &f->loop, npm_peers, dvt_peer_script("ws_client.js"),
                 args);
  f->have_peer = 1;
  dvt_peer_wait(&f->peer, "OPEN", NULL, 0, 10000);
  dvt_peer_wait(&f->peer, "CLOSE ", close_line, n, 15000);
  dvt_peer_wait(&f->peer, "DONE", NULL, 0, 10000);
  assert_false(dvt_peer_has(&f->peer, "ERROR"));
  assert_non_null(f->server.ws);
  assert_int_equal(f->server.opened, 1);
  assert_string_equal(f->server.target, "/dvoice?x=1");
  assert_string_equal(f->server.scenario, scenario);
}

static void reverse_end(fx *f) {
  dvt_run_until(&f->loop, ended, &f->server, 5000);
  side_close(&f->server, 1000, NULL);
  dvt_run_flag(&f->loop, &f->server.released, 10000);
  fx_end(f);
}

static void test_server_echo(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "echo", NULL, line, sizeof(line));
  dvt_peer_wait(&f.peer, "ECHO ok ", NULL, 0, 1000);
  assert_string_equal(line, "1000 echo done");
  /* 8 sizes x 2 types, the largest 1 MiB. */
  assert_int_equal(f.server.messages, 16);
  dvt_run_until(&f.loop, ended, &f.server, 5000);
  assert_int_equal(f.server.code, 1000);
  assert_string_equal(f.server.reason, "echo done");
  reverse_end(&f);
}

static void test_server_fragmented(void **state) {
  fx f;
  char line[128];
  uint8_t want[70000];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "fragment", NULL, line, sizeof(line));
  dvt_peer_wait(&f.peer, "FRAGMENT ok", NULL, 0, 1000);
  assert_int_equal(f.server.messages, 1);
  fill_pattern(want, sizeof(want), 7);
  dvt_assert_bytes(f.server.last.data, f.server.last.len, want, sizeof(want));
  reverse_end(&f);
}

static void test_server_answers_ping(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "ping", NULL, line, sizeof(line));
  dvt_peer_wait(&f.peer, "PONG dvoice-ping", NULL, 0, 1000);
  assert_string_equal(line, "1000 ping done");
  reverse_end(&f);
}

static void test_server_closes_1000(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "close1000", NULL, line, sizeof(line));
  assert_string_equal(line, "1000 normal bye");
  dvt_run_flag(&f.loop, &f.server.released, 10000);
  assert_int_equal(f.server.closed + f.server.errored, 0);
  fx_end(&f);
}

static void test_server_closes_4015(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "close4015", NULL, line, sizeof(line));
  assert_string_equal(line, "4015 voice server crashed");
  dvt_run_flag(&f.loop, &f.server.released, 10000);
  assert_int_equal(f.server.closed + f.server.errored, 0);
  fx_end(&f);
}

static void test_server_message_too_big(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "big", "2000000", line, sizeof(line));
  assert_int_equal(atoi(line), 1009);
  dvt_run_until(&f.loop, ended, &f.server, 5000);
  assert_int_equal(f.server.err, DVOICE_ERR_WS_TOO_BIG);
  assert_int_equal(f.server.messages, 0);
  reverse_end(&f);
}

static void test_server_client_closes_4001(void **state) {
  fx f;
  char line[128];
  (void)state;
  NEED_PEERS();
  run_reverse(&f, "clientclose", NULL, line, sizeof(line));
  assert_string_equal(line, "4001 client bye");
  dvt_run_until(&f.loop, ended, &f.server, 5000);
  assert_int_equal(f.server.closed, 1);
  assert_int_equal(f.server.code, 4001);
  assert_string_equal(f.server.reason, "client bye");
  reverse_end(&f);
}

/* A Node client that does not trust our certificate: its TLS alert fails
 * our side of the handshake. */
static void test_server_client_rejects_cert(void **state) {
  fx f;
  dv_uv_ws_server_settings ss;
  char url[128], line[256];
  const char *args[4];
  (void)state;
  NEED_PEERS();
  fx_init(&f);
  dv_uv_ws_server_settings_default(&ss);
  ss.conn.env = &f.env.env;
  ss.cert_file = certs.server_cert;
  ss.key_file = certs.server_key;
  assert_int_equal(
      dv_uv_ws_server_new(&f.srv, &f.loop, &ss, srv_accept, NULL, &f), 0);
  snprintf(url, sizeof(url), "wss://127.0.0.1:%u/",
           dv_uv_ws_server_port(f.srv));
  args[0] = url;
  args[1] = certs.otherca;
  args[2] = "echo";
  args[3] = NULL;
  dvt_peer_start(&f.peer, &f.loop, npm_peers, dvt_peer_script("ws_client.js"),
                 args);
  f.have_peer = 1;
  dvt_peer_wait(&f.peer, "ERROR ", line, sizeof(line), 10000);
  dvt_peer_wait(&f.peer, "CLOSE 1006", NULL, 0, 10000);
  dvt_run_until(&f.loop, ended, &f.server, 10000);
  assert_int_equal(f.server.opened, 0);
  assert_int_equal(f.server.errored, 1);
  assert_true(f.server.err == DVOICE_ERR_TLS ||
              f.server.err == DVOICE_ERR_TLS_CLOSED);
  assert_true(dvt_log_contains(&f.env.log, "TLS"));
  side_close(&f.server, 1000, NULL);
  dvt_run_flag(&f.loop, &f.server.released, 10000);
  fx_end(&f);
}

static int group_setup(void **state) {
  (void)state;
  npm_peers = dvt_getenv_required("DVOICE_NPM_PEERS");
  dvt_certs_make(&certs);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  dvt_certs_remove(&certs);
  return 0;
}

int main(void) {
  if (dvt_skip_program_unless("DVOICE_NPM_PEERS", "(run bash .ci/setup)")) {
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_echo),
      cmocka_unit_test(test_client_fragmented),
      cmocka_unit_test(test_client_answers_ping),
      cmocka_unit_test(test_client_server_closes_1000),
      cmocka_unit_test(test_client_server_closes_4015),
      cmocka_unit_test(test_client_message_too_big),
      cmocka_unit_test(test_client_byte_by_byte),
      cmocka_unit_test(test_close_timeout_no_close_frame),
      cmocka_unit_test(test_close_timeout_no_fin),
      cmocka_unit_test(test_fail_wrong_ca),
      cmocka_unit_test(test_fail_hostname_mismatch),
      cmocka_unit_test(test_fail_conn_refused),
      cmocka_unit_test(test_fail_dns),
      cmocka_unit_test(test_fail_tls_handshake_timeout),
      cmocka_unit_test(test_fail_upgrade_timeout),
      cmocka_unit_test(test_fail_upgrade_403),
      cmocka_unit_test(test_fail_upgrade_bad_accept),
      cmocka_unit_test(test_fail_tls_closed_mid_frame),
      cmocka_unit_test(test_fail_tcp_closed_mid_frame),
      cmocka_unit_test(test_server_echo),
      cmocka_unit_test(test_server_fragmented),
      cmocka_unit_test(test_server_answers_ping),
      cmocka_unit_test(test_server_closes_1000),
      cmocka_unit_test(test_server_closes_4015),
      cmocka_unit_test(test_server_message_too_big),
      cmocka_unit_test(test_server_client_closes_4001),
      cmocka_unit_test(test_server_client_rejects_cert),
  };
  if (getenv("DVT_FILTER") != NULL) {
    cmocka_set_test_filter(getenv("DVT_FILTER")); /* e.g. "*tls*" */
  }
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
