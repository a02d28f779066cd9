/* Unit tests for lib/ws: the HTTP Upgrade (client and server), messages,
 * fragmentation, ping/pong, the close handshake, size limits, malformed
 * input and allocation failures. Client and server cores run back to back
 * in memory under the counter RNG. */
#include "dvt.h"

#include "util/dv_mem.h"
#include "ws/dv_ws.h"
#include "ws/dv_ws_http.h"

/* ---- a side: one dv_ws plus everything its callbacks saw ---------------- */

typedef struct side {
  dv_ws ws;
  int opened;
  int nmsg;
  dv_ws_opcode last_op;
  dv_buf last; /* payload of the last message */
  int closes;
  uint16_t close_code;
  char reason[128];
  size_t reason_len;
  int pongs;
  dv_buf last_pong;
  int echo;            /* on_message: send the message back */
  int close_in_cb;     /* on_message: close with 4000 */
  int fail_on_message; /* on_message: return CALLBACK_FAILURE */
  int refuse_status;   /* on_request: refuse with this status */
  char target[128];    /* on_request: the request target seen */
  char ua[64];         /* on_request: User-Agent seen */
} side;

static int on_request(dv_ws *ws, const dv_ws_request *req, void *ud) {
  side *s = ud;
  const char *ua = dv_ws_header_find(req->headers, req->nheaders, "user-agent");
  (void)ws;
  snprintf(s->target, sizeof s->target, "%s", req->target);
  snprintf(s->ua, sizeof s->ua, "%s", ua != NULL ? ua : "");
  return s->refuse_status;
}

static int on_open(dv_ws *ws, void *ud) {
  side *s = ud;
  (void)ws;
  s->opened++;
  return 0;
}

static int on_message(dv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                      size_t len, void *ud) {
  side *s = ud;
  s->nmsg++;
  s->last_op = op;
  dv_buf_reset(&s->last);
  assert_int_equal(dv_buf_append(&s->last, data, len), 0);
  if (s->fail_on_message) {
    return DVOICE_ERR_CALLBACK_FAILURE;
  }
  if (s->echo) {
    assert_int_equal(dv_ws_send(ws, op, data, len), 0);
  }
  if (s->close_in_cb) {
    assert_int_equal(dv_ws_close(ws, 4000, "cb", 2), 0);
  }
  return 0;
}

static void on_pong(dv_ws *ws, const uint8_t *data, size_t len, void *ud) {
  side *s = ud;
  (void)ws;
  s->pongs++;
  dv_buf_reset(&s->last_pong);
  assert_int_equal(dv_buf_append(&s->last_pong, data, len), 0);
}

static void on_close(dv_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t len, void *ud) {
  side *s = ud;
  (void)ws;
  s->closes++;
  s->close_code = code;
  assert_true(len < sizeof s->reason);
  memcpy(s->reason, reason, len);
  s->reason[len] = 0;
  s->reason_len = len;
}

static const dv_ws_callbacks side_cb = {on_request, on_open, on_message,
                                        on_pong, on_close};

static const dv_ws_header ua_header[] = {{"User-Agent", "dvoice-test/1"}};

static int side_init(side *s, int is_server, const dvoice_env *env,
                     size_t max_message) {
  dv_ws_opts o;
  memset(s, 0, sizeof *s);
  dv_buf_init(&s->last, NULL);
  dv_buf_init(&s->last_pong, NULL);
  memset(&o, 0, sizeof o);
  o.is_server = is_server;
  o.host = "gateway.discord.gg";
  o.path = "/?v=10&encoding=json";
  o.headers = is_server ? NULL : ua_header;
  o.nheaders = is_server ? 0 : 1;
  o.max_message_size = max_message;
  return dv_ws_init(&s->ws, &o, &side_cb, env, s);
}

static void side_free(side *s) {
  dv_ws_free(&s->ws);
  dv_buf_free(&s->last);
  dv_buf_free(&s->last_pong);
}

static int sink_ws(void *ud, const uint8_t *p, size_t len) {
  return dv_ws_feed(ud, p, len);
}

/* Moves |from|'s output into |to| (by taking the buffer over). */
static int transfer(side *from, side *to) {
  dv_buf *ob = dv_ws_outbuf(&from->ws);
  dv_buf tmp = *ob;
  int rv;
  dv_buf_init(ob, tmp.mem);
  rv = dv_ws_feed(&to->ws, tmp.data, tmp.len);
  dv_buf_free(&tmp);
  return rv;
}

/* Shuttles bytes until both outbufs are empty; returns the first error. */
static int pump(side *a, side *b) {
  for (int i = 0; i < 100; i++) {
    int rv;
    if (dv_ws_outbuf(&a->ws)->len == 0 && dv_ws_outbuf(&b->ws)->len == 0) {
      return 0;
    }
    if ((rv = transfer(a, b)) != 0) {
      return rv;
    }
    if ((rv = transfer(b, a)) != 0) {
      return rv;
    }
  }
  fail_msg("pump did not settle");
  return -1;
}

static void connect_pair(dvt_env *e, side *c, side *s, size_t max_message) {
  assert_int_equal(side_init(c, 0, &e->env, max_message), 0);
  assert_int_equal(side_init(s, 1, &e->env, max_message), 0);
  assert_int_equal(pump(c, s), 0);
  assert_int_equal(c->opened, 1);
  assert_int_equal(s->opened, 1);
  assert_int_equal(dv_ws_state_get(&c->ws), DV_WS_OPEN);
  assert_int_equal(dv_ws_state_get(&s->ws), DV_WS_OPEN);
  assert_string_equal(s->target, "/?v=10&encoding=json");
  assert_string_equal(s->ua, "dvoice-test/1");
}

/* ---- the handshake vectors ---------------------------------------------- */

/* The request under the counter RNG: key = base64(00 01 .. 0f). */
static const char want_request[] =
    "GET /?v=10&encoding=json HTTP/1.1\r\n"
    "Host: gateway.discord.gg\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "User-Agent: dvoice-test/1\r\n"
    "\r\n";
/* base64(SHA-1(key + GUID)), computed independently. */
#define GOOD_ACCEPT "Bz3qJYTGdOe8gUSpLosEdiLKDrk="
static const char good_response[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n"
                                    "\r\n";

static void test_accept_rfc_example(void **state) {
  char out[DV_WS_ACCEPT_LEN + 1];
  (void)state;
  /* RFC 6455 section 1.3. */
  assert_int_equal(dv_ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_client_request_vector(void **state) {
  dvt_env e;
  side c;
  dv_buf *ob;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  ob = dv_ws_outbuf(&c.ws);
  dvt_assert_bytes(ob->data, ob->len, (const uint8_t *)want_request,
                   strlen(want_request));
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_HANDSHAKE);
  /* Sending before the upgrade completes is refused. */
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_TEXT, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_STATE);
  side_free(&c);
  dvt_env_free(&e);
}

static void test_init_rejects_bad_options(void **state) {
  dvt_env e;
  dv_ws ws;
  dv_ws_opts o;
  dv_ws_header bad[] = {{"X-Bad", "a\r\nInjected: 1"}};
  dv_ws_header badname[] = {{"X Bad", "v"}};
  (void)state;
  dvt_env_init(&e);
  memset(&o, 0, sizeof o);
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT); /* no host */
  dv_ws_free(&ws);
  o.host = "h";
  o.path = "/a b";
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_ws_free(&ws);
  o.path = "nopath";
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_ws_free(&ws);
  o.path = NULL;
  o.headers = bad;
  o.nheaders = 1;
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_ws_free(&ws);
  o.headers = badname;
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_ws_free(&ws);
  e.env.rand = NULL;
  o.headers = NULL;
  o.nheaders = 0;
  assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_ws_free(&ws);
  dvt_env_free(&e);
}

/* The good response followed by a text frame "hello" in the same bytes. */
static size_t response_with_frame(uint8_t *buf) {
  size_t n = strlen(good_response);
  memcpy(buf, good_response, n);
  memcpy(buf + n, "\x81\x05hello", 7);
  return n + 7;
}

static void run_response_chunked(const size_t *chunks, size_t nchunks) {
  dvt_env e;
  side c;
  uint8_t resp[256];
  size_t n = response_with_frame(resp);
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  assert_int_equal(dvt_feed(resp, n, chunks, nchunks, sink_ws, &c.ws), 0);
  assert_int_equal(c.opened, 1);
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(c.last_op, DV_WS_TEXT);
  dvt_assert_bytes(c.last.data, c.last.len, (const uint8_t *)"hello", 5);
  assert_int_equal(dv_ws_http_status(&c.ws), 101);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_OPEN);
  side_free(&c);
  dvt_env_free(&e);
}

static void test_upgrade_any_chunking(void **state) {
  static const size_t drip[] = {1};
  static const size_t two[] = {2};
  static const size_t odd[] = {3, 7, 1};
  uint32_t seed = 12345;
  (void)state;
  run_response_chunked(drip, 1);
  run_response_chunked(two, 1);
  run_response_chunked(odd, 3);
  run_response_chunked(NULL, 0);
  /* Random chunkings from a fixed LCG (reproducible). */
  for (int round = 0; round < 50; round++) {
    size_t chunks[8];
    for (int i = 0; i < 8; i++) {
      seed = seed * 1103515245u + 12345u;
      chunks[i] = 1 + (seed >> 16) % 40;
    }
    run_response_chunked(chunks, 8);
  }
}

static void test_upgrade_header_case(void **state) {
  static const char resp[] = "HTTP/1.1 101 OK\r\n"
                             "upgrade: WebSocket\r\n"
                             "CONNECTION: keep-alive, Upgrade\r\n"
                             "X-Other:    spaced value   \r\n"
                             "sec-websocket-accept:" GOOD_ACCEPT "\r\n"
                             "\r\n";
  dvt_env e;
  side c;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  assert_int_equal(
      dvt_feed_drip((const uint8_t *)resp, strlen(resp), sink_ws, &c.ws), 0);
  assert_int_equal(c.opened, 1);
  side_free(&c);
  dvt_env_free(&e);
}

/* Feeds |resp| (whole, then dripped) and expects |want| each time. */
static void expect_response_error(const char *resp, size_t len, int want,
                                  size_t max_header) {
  for (int drip = 0; drip < 2; drip++) {
    dvt_env e;
    dv_ws ws;
    dv_ws_opts o;
    int rv;
    dvt_env_init(&e);
    memset(&o, 0, sizeof o);
    o.host = "h";
    o.max_header_size = max_header;
    assert_int_equal(dv_ws_init(&ws, &o, &side_cb, &e.env, NULL), 0);
    if (drip) {
      rv = dvt_feed_drip((const uint8_t *)resp, len, sink_ws, &ws);
    } else {
      rv = dv_ws_feed(&ws, (const uint8_t *)resp, len);
    }
    if (rv != want) {
      fail_msg("response %.40s...: got %d (%s), want %d", resp, rv,
               dvoice_err_name(rv), want);
    }
    assert_int_equal(dv_ws_state_get(&ws), DV_WS_FAILED);
    assert_int_equal(dv_ws_error(&ws), want);
    /* Sticky: more input gets the same answer. */
    assert_int_equal(dv_ws_feed(&ws, (const uint8_t *)"x", 1), want);
    assert_true(e.log.lines > 0);
    dv_ws_free(&ws);
    dvt_env_free(&e);
  }
}

#define EXPECT(resp, want) expect_response_error(resp, sizeof resp - 1, want, 0)

static void test_upgrade_refused_403(void **state) {
  static const char resp[] = "HTTP/1.1 403 Forbidden\r\n"
                             "Content-Length: 0\r\n\r\n";
  dvt_env e;
  side c;
  (void)state;
  EXPECT(resp, DVOICE_ERR_WS_UPGRADE);
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  assert_int_equal(dv_ws_feed(&c.ws, (const uint8_t *)resp, sizeof resp - 1),
                   DVOICE_ERR_WS_UPGRADE);
  assert_int_equal(dv_ws_http_status(&c.ws), 403);
  assert_true(dvt_log_contains(&e.log, "HTTP 403"));
  assert_int_equal(c.opened, 0);
  side_free(&c);
  dvt_env_free(&e);
}

static void test_upgrade_bad_accept(void **state) {
  (void)state;
  EXPECT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
         DVOICE_ERR_WS_ACCEPT);
  EXPECT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\n\r\n",
         DVOICE_ERR_WS_ACCEPT);
  EXPECT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Accept: " GOOD_ACCEPT
         "x\r\n\r\n",
         DVOICE_ERR_WS_ACCEPT);
  EXPECT("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
         "Connection: Upgrade\r\nSec-WebSocket-Accept: " GOOD_ACCEPT "\r\n"
         "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
         DVOICE_ERR_WS_ACCEPT);
}

static void test_upgrade_malformed(void **state) {
  (void)state;
  EXPECT("FOO/1.1 101 x\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\nUpgrade: websocket\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nUpgrade: websocket\rX\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 1x1 OK\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101OK\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 099 OK\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/2 101 OK\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nNoColon\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nBad Name: v\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nName : v\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nA: b\r\n folded\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nA: b\x01\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nA: b\0c\r\n\r\n", DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\n: empty\r\n\r\n", DVOICE_ERR_PROTO);
  /* 101 without the upgrade headers, or with unasked-for extensions. */
  EXPECT("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
         DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
         DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: close\r\n"
         "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
         DVOICE_ERR_PROTO);
  EXPECT("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate\r\n"
         "Sec-WebSocket-Accept: " GOOD_ACCEPT "\r\n\r\n",
         DVOICE_ERR_PROTO);
  {
    /* Too many header lines. */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof big, "HTTP/1.1 101 OK\r\n");
    for (int i = 0; i < DV_WS_MAX_HEADERS + 1; i++) {
      n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
    }
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    expect_response_error(big, n, DVOICE_ERR_PROTO, 0);
  }
  {
    /* A head longer than max_header_size, with no end in sight. */
    char big[600];
    memcpy(big, "HTTP/1.1 101 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    expect_response_error(big, sizeof big, DVOICE_ERR_PROTO, 512);
  }
}

/* The head bound is exact: max_header_size bytes pass, one more fails. */
static void test_upgrade_header_bound(void **state) {
  size_t n = strlen(good_response);
  (void)state;
  for (int over = 0; over < 2; over++) {
    dvt_env e;
    dv_ws ws;
    dv_ws_opts o;
    dvt_env_init(&e);
    memset(&o, 0, sizeof o);
    o.host = "gateway.discord.gg";
    o.path = "/?v=10&encoding=json";
    o.max_header_size = n - (size_t)over;
    assert_int_equal(dv_ws_init(&ws, &o, NULL, &e.env, NULL), 0);
    assert_int_equal(
        dvt_feed_drip((const uint8_t *)good_response, n, sink_ws, &ws),
        over ? DVOICE_ERR_PROTO : 0);
    assert_int_equal(dv_ws_state_get(&ws), over ? DV_WS_FAILED : DV_WS_OPEN);
    dv_ws_free(&ws);
    dvt_env_free(&e);
  }
}

/* ---- the server side of the Upgrade -------------------------------------- */

static void test_server_drip_request(void **state) {
  dvt_env e;
  side c, s;
  dv_buf *ob;
  dv_buf req;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  assert_int_equal(side_init(&s, 1, &e.env, 0), 0);
  ob = dv_ws_outbuf(&c.ws);
  req = *ob;
  dv_buf_init(ob, NULL);
  assert_int_equal(dvt_feed_drip(req.data, req.len, sink_ws, &s.ws), 0);
  dv_buf_free(&req);
  assert_int_equal(s.opened, 1);
  ob = dv_ws_outbuf(&s.ws);
  dvt_assert_bytes(ob->data, ob->len, (const uint8_t *)good_response,
                   strlen(good_response));
  /* The server's 101 opens the client. */
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(c.opened, 1);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_server_refuses(void **state) {
  dvt_env e;
  side c, s;
  dv_buf *ob;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  assert_int_equal(side_init(&s, 1, &e.env, 0), 0);
  s.refuse_status = 403;
  assert_int_equal(transfer(&c, &s), DVOICE_ERR_WS_UPGRADE);
  assert_int_equal(s.opened, 0);
  assert_int_equal(dv_ws_state_get(&s.ws), DV_WS_FAILED);
  ob = dv_ws_outbuf(&s.ws);
  assert_non_null(strstr((const char *)ob->data, "HTTP/1.1 403 Forbidden\r\n"));
  /* And the client sees the refusal as WS_UPGRADE with status 403. */
  assert_int_equal(transfer(&s, &c), DVOICE_ERR_WS_UPGRADE);
  assert_int_equal(dv_ws_http_status(&c.ws), 403);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void expect_request_status(const char *req, int want_err,
                                  const char *want_status) {
  dvt_env e;
  side s;
  dv_buf *ob;
  dvt_env_init(&e);
  assert_int_equal(side_init(&s, 1, &e.env, 0), 0);
  assert_int_equal(dv_ws_feed(&s.ws, (const uint8_t *)req, strlen(req)),
                   want_err);
  ob = dv_ws_outbuf(&s.ws);
  assert_non_null(ob->data);
  if (strncmp((const char *)ob->data, want_status, strlen(want_status)) != 0) {
    fail_msg("request %.30s: answered %.40s", req, (const char *)ob->data);
  }
  assert_int_equal(s.opened, 0);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_server_bad_requests(void **state) {
  (void)state;
  expect_request_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
                        "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n\r\n",
                        DVOICE_ERR_PROTO, "HTTP/1.1 426 ");
  expect_request_status("POST / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n\r\n",
                        DVOICE_ERR_PROTO, "HTTP/1.1 400 ");
  expect_request_status("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: AAECAwQFBgcICQoL\r\n\r\n",
                        DVOICE_ERR_PROTO, "HTTP/1.1 400 ");
  expect_request_status("GET / HTTP/1.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n\r\n",
                        DVOICE_ERR_PROTO, "HTTP/1.1 400 ");
  expect_request_status("GET /\r\n\r\n", DVOICE_ERR_PROTO, "HTTP/1.1 400 ");
  expect_request_status(" GET / HTTP/1.1\r\n\r\n", DVOICE_ERR_PROTO,
                        "HTTP/1.1 400 ");
}


static int http_ok(dv_ws *ws, const dv_ws_request *req, dv_buf *body,
                   const char **ctype, void *ud) {
  int *calls = ud;
  (void)ws;
  (*calls)++;
  if (strcmp(req->target, "/api/v10/gateway/bot") != 0) {
    return 404;
  }
  *ctype = "application/json";
  assert_int_equal(dv_buf_append_str(body, "{\"url\":\"wss://x\"}"), 0);
  return 200;
}

static int http_bad(dv_ws *ws, const dv_ws_request *req, dv_buf *body,
                    const char **ctype, void *ud) {
  (void)ws;
  (void)req;
  (void)ctype;
  (void)ud;
  (void)dv_buf_append_str(body, "dropped");
  return 42;
}

/* A plain GET (no Upgrade) is answered by on_http with a full response. */
static void test_server_plain_http(void **state) {
  static const char get[] =
      "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: h\r\n"
      "Authorization: Bot x\r\n\r\n";
  static const char want[] =
      "HTTP/1.1 200 OK\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n"
      "{\"url\":\"wss://x\"}";
  dvt_env e;
  dv_ws srv;
  dv_ws_opts o;
  dv_ws_callbacks cb;
  dv_buf *ob;
  int calls = 0;
  (void)state;
  dvt_env_init(&e);
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  memset(&cb, 0, sizeof cb);
  cb.on_http = http_ok;
  assert_int_equal(dv_ws_init(&srv, &o, &cb, &e.env, &calls), 0);
  assert_int_equal(dvt_feed_drip((const uint8_t *)get, sizeof get - 1,
                                 sink_ws, &srv),
                   DVOICE_ERR_WS_UPGRADE);
  assert_int_equal(calls, 1);
  assert_int_equal(dv_ws_state_get(&srv), DV_WS_FAILED);
  ob = dv_ws_outbuf(&srv);
  dvt_assert_bytes(ob->data, ob->len, (const uint8_t *)want, sizeof want - 1);
  dv_ws_free(&srv);
  /* Another target: the callback's status. */
  assert_int_equal(dv_ws_init(&srv, &o, &cb, &e.env, &calls), 0);
  assert_int_equal(dv_ws_feed(&srv, (const uint8_t *)"GET /x HTTP/1.1\r\n"
                                                     "Host: h\r\n\r\n",
                              31),
                   DVOICE_ERR_WS_UPGRADE);
  ob = dv_ws_outbuf(&srv);
  assert_int_equal(strncmp((const char *)ob->data, "HTTP/1.1 404 ", 13), 0);
  dv_ws_free(&srv);
  /* A bad status from the callback becomes 500 with no body. */
  cb.on_http = http_bad;
  assert_int_equal(dv_ws_init(&srv, &o, &cb, &e.env, &calls), 0);
  assert_int_equal(dv_ws_feed(&srv, (const uint8_t *)get, sizeof get - 1),
                   DVOICE_ERR_WS_UPGRADE);
  ob = dv_ws_outbuf(&srv);
  assert_int_equal(strncmp((const char *)ob->data, "HTTP/1.1 500 ", 13), 0);
  assert_null(strstr((const char *)ob->data, "dropped"));
  dv_ws_free(&srv);
  /* Without on_http the request is still refused with 400. */
  expect_request_status(get, DVOICE_ERR_PROTO, "HTTP/1.1 400 ");
  dvt_env_free(&e);
}

static int fail_open(dv_ws *ws, void *ud) {
  (void)ws;
  (void)ud;
  return DVOICE_ERR_CALLBACK_FAILURE;
}

static int fail_request(dv_ws *ws, const dv_ws_request *req, void *ud) {
  (void)ws;
  (void)req;
  (void)ud;
  return DVOICE_ERR_CALLBACK_FAILURE;
}

static void test_server_extra_headers_and_callback_failures(void **state) {
  static const dv_ws_header extra[] = {{"X-Served-By", "dvoice"}};
  dvt_env e;
  side c;
  dv_ws srv;
  dv_ws_opts o;
  dv_ws_callbacks cb = side_cb;
  dv_buf *ob;
  (void)state;
  dvt_env_init(&e);
  /* Extra headers appear in the 101, before the blank line. */
  assert_int_equal(side_init(&c, 0, &e.env, 0), 0);
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.headers = extra;
  o.nheaders = 1;
  assert_int_equal(dv_ws_init(&srv, &o, NULL, &e.env, NULL), 0);
  ob = dv_ws_outbuf(&c.ws);
  assert_int_equal(dv_ws_feed(&srv, ob->data, ob->len), 0);
  ob = dv_ws_outbuf(&srv);
  assert_non_null(
      strstr((const char *)ob->data, "\r\nX-Served-By: dvoice\r\n\r\n"));
  assert_int_equal(dv_ws_close_code_sent(&srv), 0);
  assert_int_equal(dv_ws_close_code_received(&srv), 0);
  dv_ws_free(&srv);
  /* on_request failing aborts the server. */
  cb.on_request = fail_request;
  assert_int_equal(dv_ws_init(&srv, &o, &cb, &e.env, NULL), 0);
  ob = dv_ws_outbuf(&c.ws);
  assert_int_equal(dv_ws_feed(&srv, ob->data, ob->len),
                   DVOICE_ERR_CALLBACK_FAILURE);
  dv_ws_free(&srv);
  /* on_open failing closes with 1011; sends then get the sticky error. */
  memset(&cb, 0, sizeof cb);
  cb.on_open = fail_open;
  assert_int_equal(dv_ws_init(&srv, &o, &cb, &e.env, NULL), 0);
  assert_int_equal(dv_ws_feed(&srv, ob->data, ob->len),
                   DVOICE_ERR_CALLBACK_FAILURE);
  assert_int_equal(dv_ws_close_code_sent(&srv), 1011);
  assert_int_equal(dv_ws_send(&srv, DV_WS_TEXT, (const uint8_t *)"x", 1),
                   DVOICE_ERR_CALLBACK_FAILURE);
  assert_int_equal(dv_ws_close(&srv, 1000, NULL, 0), DVOICE_ERR_INVALID_STATE);
  dv_ws_free(&srv);
  side_free(&c);
  dvt_env_free(&e);
}

static void test_token_lists(void **state) {
  (void)state;
  assert_true(dv_ws_http_list_has("Upgrade", "upgrade"));
  assert_true(dv_ws_http_list_has(" keep-alive ,  UPGRADE  ", "upgrade"));
  assert_true(dv_ws_http_list_has("a,,upgrade\t", "upgrade"));
  assert_false(dv_ws_http_list_has("upgraded", "upgrade"));
  assert_false(dv_ws_http_list_has("up grade", "upgrade"));
  assert_false(dv_ws_http_list_has("", "upgrade"));
}

/* ---- messages ------------------------------------------------------------ */

static void exchange_sizes(dv_ws_opcode op) {
  static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 1048576};
  dvt_env e;
  side c, s;
  uint8_t *payload = malloc(1048576);
  assert_non_null(payload);
  for (size_t i = 0; i < 1048576; i++) {
    payload[i] = (uint8_t)('a' + i % 26);
  }
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    /* client -> server (masked) */
    assert_int_equal(dv_ws_send(&c.ws, op, payload, n), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(s.nmsg, (int)k + 1);
    assert_int_equal(s.last_op, op);
    dvt_assert_bytes(s.last.data, s.last.len, payload, n);
    /* server -> client (unmasked) */
    assert_int_equal(dv_ws_send(&s.ws, op, payload + 1, n > 0 ? n - 1 : 0), 0);
    assert_int_equal(pump(&c, &s), 0);
    assert_int_equal(c.nmsg, (int)k + 1);
    dvt_assert_bytes(c.last.data, c.last.len, payload + 1, n > 0 ? n - 1 : 0);
  }
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
  free(payload);
}

static void test_text_sizes(void **state) {
  (void)state;
  exchange_sizes(DV_WS_TEXT);
}

static void test_binary_sizes(void **state) {
  (void)state;
  exchange_sizes(DV_WS_BINARY);
}

/* Frame headers on the wire for the length encodings 7, 16 and 64 bit. */
static void test_frame_length_encoding(void **state) {
  dvt_env e;
  side c, s;
  uint8_t *p = calloc(1, 65536);
  dv_buf *ob;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  ob = dv_ws_outbuf(&s.ws);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_BINARY, p, 125), 0);
  dvt_assert_bytes(ob->data, 2, (const uint8_t *)"\x82\x7d", 2);
  dv_buf_reset(ob);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_BINARY, p, 126), 0);
  dvt_assert_bytes(ob->data, 4, (const uint8_t *)"\x82\x7e\x00\x7e", 4);
  dv_buf_reset(ob);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_BINARY, p, 65536), 0);
  dvt_assert_bytes(ob->data, 10,
                   (const uint8_t *)"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00",
                   10);
  assert_int_equal(ob->len, 10 + 65536);
  dv_buf_reset(ob);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
  free(p);
}

/* Client frame: masked with the next 4 counter-RNG bytes. */
static void test_client_masking_vector(void **state) {
  dvt_env e;
  side c, s;
  dv_buf *ob;
  uint8_t m[4], want[2 + 4 + 3];
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  for (int i = 0; i < 4; i++) {
    m[i] = (uint8_t)(e.rand.next + i);
  }
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_TEXT, (const uint8_t *)"abc", 3), 0);
  want[0] = 0x81;
  want[1] = 0x83;
  memcpy(want + 2, m, 4);
  for (int i = 0; i < 3; i++) {
    want[6 + i] = (uint8_t)("abc"[i] ^ m[i]);
  }
  ob = dv_ws_outbuf(&c.ws);
  dvt_assert_bytes(ob->data, ob->len, want, sizeof want);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_fragmented_with_ping(void **state) {
  /* "Hel" (text, no FIN), ping "pq", "lo" (continuation, FIN). */
  static const uint8_t frames[] = {0x01, 0x03, 'H',  'e',  'l', 0x89, 0x02,
                                   'p',  'q',  0x80, 0x02, 'l', 'o'};
  static const size_t drip[] = {1};
  dvt_env e;
  side c, s;
  dv_buf *ob;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dvt_feed(frames, sizeof frames, drip, 1, sink_ws, &c.ws), 0);
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(c.last_op, DV_WS_TEXT);
  dvt_assert_bytes(c.last.data, c.last.len, (const uint8_t *)"Hello", 5);
  /* The client answered the ping with a masked pong "pq". */
  ob = dv_ws_outbuf(&c.ws);
  assert_int_equal(ob->len, 2 + 4 + 2);
  assert_int_equal(ob->data[0], 0x8a);
  assert_int_equal(ob->data[1], 0x82);
  assert_int_equal(ob->data[6] ^ ob->data[2], 'p');
  assert_int_equal(ob->data[7] ^ ob->data[3], 'q');
  /* The server accepts it as a pong. */
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(s.pongs, 1);
  dvt_assert_bytes(s.last_pong.data, s.last_pong.len, (const uint8_t *)"pq", 2);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_server_reassembles_masked_fragments(void **state) {
  /* Masked (key 01 02 03 04) "ab" binary no FIN + "cd" continuation FIN. */
  static const uint8_t frames[] = {0x02, 0x82, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2,
                                   0x80, 0x82, 1, 2, 3, 4, 'c' ^ 1, 'd' ^ 2};
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_feed(&s.ws, frames, sizeof frames), 0);
  assert_int_equal(s.nmsg, 1);
  assert_int_equal(s.last_op, DV_WS_BINARY);
  dvt_assert_bytes(s.last.data, s.last.len, (const uint8_t *)"abcd", 4);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

/* A whole conversation from the server, fed to the client in random
 * chunkings: the same messages, in order, whatever the boundaries. */
static void test_frames_any_chunking(void **state) {
  static const size_t drip[] = {1};
  dvt_env e;
  side c, s;
  dv_buf wire;
  uint8_t *p = malloc(70000);
  uint32_t seed = 777;
  (void)state;
  for (size_t i = 0; i < 70000; i++) {
    p[i] = (uint8_t)('A' + i % 23);
  }
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_TEXT, (const uint8_t *)"a", 1), 0);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_BINARY, p, 300), 0);
  assert_int_equal(dv_ws_ping(&s.ws, (const uint8_t *)"hb", 2), 0);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_TEXT, p, 70000), 0);
  assert_int_equal(dv_ws_close(&s.ws, 4006, "session", 7), 0);
  wire = *dv_ws_outbuf(&s.ws);
  dv_buf_init(dv_ws_outbuf(&s.ws), NULL);
  side_free(&c);
  for (int round = 0; round < 30; round++) {
    size_t chunks[6];
    const size_t *cp = chunks;
    size_t nc = 6;
    dvt_env ce;
    dv_buf *ob;
    for (int i = 0; i < 6; i++) {
      seed = seed * 1103515245u + 12345u;
      chunks[i] = 1 + (seed >> 16) % (round < 10 ? 7 : 5000);
    }
    if (round == 0) {
      cp = drip;
      nc = 1;
    }
    /* A fresh client with the same RNG start, upgraded by the same 101. */
    dvt_env_init(&ce);
    assert_int_equal(side_init(&c, 0, &ce.env, 0), 0);
    dv_buf_reset(dv_ws_outbuf(&c.ws));
    assert_int_equal(dv_ws_feed(&c.ws, (const uint8_t *)good_response,
                                strlen(good_response)),
                     0);
    assert_int_equal(dvt_feed(wire.data, wire.len, cp, nc, sink_ws, &c.ws), 0);
    assert_int_equal(c.nmsg, 3);
    assert_int_equal(c.last_op, DV_WS_TEXT);
    dvt_assert_bytes(c.last.data, c.last.len, p, 70000);
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.close_code, 4006);
    assert_string_equal(c.reason, "session");
    assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_CLOSED);
    /* The client answered: a masked pong "hb" then the close echo. */
    ob = dv_ws_outbuf(&c.ws);
    assert_true(ob->len >= 8);
    assert_int_equal(ob->data[0], 0x8a);
    assert_int_equal(ob->data[1], 0x82);
    assert_int_equal(ob->data[8], 0x88);
    side_free(&c);
    dvt_env_free(&ce);
  }
  dv_buf_free(&wire);
  side_free(&s);
  dvt_env_free(&e);
  free(p);
}

static void test_ping_pong(void **state) {
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_ping(&c.ws, (const uint8_t *)"abc", 3), 0);
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(c.pongs, 1);
  dvt_assert_bytes(c.last_pong.data, c.last_pong.len, (const uint8_t *)"abc",
                   3);
  assert_int_equal(dv_ws_ping(&s.ws, NULL, 0), 0);
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(s.pongs, 1);
  assert_int_equal(s.last_pong.len, 0);
  assert_int_equal(dv_ws_ping(&s.ws, (const uint8_t *)"x", 126),
                   DVOICE_ERR_INVALID_ARGUMENT);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_echo_from_callback(void **state) {
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  s.echo = 1;
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_TEXT, (const uint8_t *)"ping!", 5),
                   0);
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(c.nmsg, 1);
  dvt_assert_bytes(c.last.data, c.last.len, (const uint8_t *)"ping!", 5);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

/* ---- closing ----------------------------------------------------------- */

static void close_from(int client_closes, uint16_t code, const char *reason) {
  dvt_env e;
  side c, s;
  side *a, *b;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  a = client_closes ? &c : &s;
  b = client_closes ? &s : &c;
  assert_int_equal(dv_ws_close(&a->ws, code, reason, strlen(reason)), 0);
  assert_int_equal(dv_ws_state_get(&a->ws), DV_WS_CLOSING);
  assert_int_equal(dv_ws_close_code_sent(&a->ws), code);
  assert_int_equal(dv_ws_send(&a->ws, DV_WS_TEXT, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_ws_close(&a->ws, code, NULL, 0),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(pump(&c, &s), 0);
  /* The peer saw our code and reason and echoed them. */
  assert_int_equal(b->closes, 1);
  assert_int_equal(b->close_code, code);
  assert_string_equal(b->reason, reason);
  assert_int_equal(a->closes, 1);
  assert_int_equal(a->close_code, code);
  assert_int_equal(dv_ws_close_code_received(&a->ws), code);
  assert_int_equal(dv_ws_state_get(&a->ws), DV_WS_CLOSED);
  assert_int_equal(dv_ws_state_get(&b->ws), DV_WS_CLOSED);
  /* Input after the close is ignored. */
  assert_int_equal(dv_ws_feed(&a->ws, (const uint8_t *)"\x81\x01x", 3), 0);
  assert_int_equal(a->nmsg, 0);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_close_1000_from_client(void **state) {
  (void)state;
  close_from(1, 1000, "bye");
}

static void test_close_4015_from_server(void **state) {
  (void)state;
  close_from(0, 4015, "voice server crashed");
}

static void test_close_without_code(void **state) {
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_feed(&c.ws, (const uint8_t *)"\x88\x00", 2), 0);
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.close_code, 1005);
  assert_int_equal(c.reason_len, 0);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_CLOSED);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_close_bad_code_args(void **state) {
  dvt_env e;
  side c, s;
  char longr[124];
  (void)state;
  memset(longr, 'r', sizeof longr);
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_close(&c.ws, 1005, NULL, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_ws_close(&c.ws, 999, NULL, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_ws_close(&c.ws, 5000, NULL, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_ws_close(&c.ws, 1000, longr, sizeof longr),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_ws_close(&c.ws, 1000, longr, 123), 0);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_close_from_callback(void **state) {
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  s.close_in_cb = 1;
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_TEXT, (const uint8_t *)"hi", 2), 0);
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.close_code, 4000);
  assert_string_equal(c.reason, "cb");
  assert_int_equal(dv_ws_state_get(&s.ws), DV_WS_CLOSED);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_CLOSED);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

/* ---- limits and peer errors --------------------------------------------- */

static void test_too_big_closes_1009(void **state) {
  dvt_env e;
  side c, s;
  uint8_t *p = calloc(1, 1001);
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 1000);
  /* Exactly the limit passes. */
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_BINARY, p, 1000), 0);
  assert_int_equal(pump(&c, &s), 0);
  assert_int_equal(s.nmsg, 1);
  /* One more byte is refused with 1009. */
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_BINARY, p, 1001), 0);
  assert_int_equal(transfer(&c, &s), DVOICE_ERR_WS_TOO_BIG);
  assert_int_equal(s.nmsg, 1);
  assert_int_equal(dv_ws_state_get(&s.ws), DV_WS_FAILED);
  assert_int_equal(dv_ws_close_code_sent(&s.ws), 1009);
  assert_true(dvt_log_contains(&e.log, "1009"));
  assert_int_equal(transfer(&s, &c), 0);
  assert_int_equal(c.closes, 1);
  assert_int_equal(c.close_code, 1009);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
  free(p);
}

static void test_too_big_fragmented(void **state) {
  /* Two unmasked fragments of 60 bytes against a limit of 100. */
  uint8_t frames[2 * 62];
  dvt_env e;
  side c, s;
  (void)state;
  memset(frames, 'z', sizeof frames);
  frames[0] = 0x02;
  frames[1] = 60;
  frames[62] = 0x80;
  frames[63] = 60;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 100);
  assert_int_equal(dv_ws_feed(&c.ws, frames, sizeof frames),
                   DVOICE_ERR_WS_TOO_BIG);
  assert_int_equal(c.nmsg, 0);
  assert_int_equal(dv_ws_close_code_sent(&c.ws), 1009);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void expect_frame_error(const uint8_t *f, size_t n, int want,
                               uint16_t want_code) {
  dvt_env e;
  side c, s;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  assert_int_equal(dv_ws_feed(&c.ws, f, n), want);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_FAILED);
  if (want_code != 0) {
    assert_int_equal(dv_ws_close_code_sent(&c.ws), want_code);
  }
  assert_int_equal(dv_ws_feed(&c.ws, f, n), want);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

static void test_peer_protocol_errors(void **state) {
  (void)state;
  /* Invalid UTF-8 in a text message: 1007. */
  expect_frame_error((const uint8_t *)"\x81\x02\xc3\x28", 4, DVOICE_ERR_PROTO,
                     1007);
  /* A masked frame from the server: 1002. */
  expect_frame_error((const uint8_t *)"\x81\x81\x00\x00\x00\x00x", 7,
                     DVOICE_ERR_PROTO, 1002);
  /* A continuation with nothing to continue: 1002. */
  expect_frame_error((const uint8_t *)"\x80\x01x", 3, DVOICE_ERR_PROTO, 1002);
  /* Reserved opcode 3: 1002. */
  expect_frame_error((const uint8_t *)"\x83\x01x", 3, DVOICE_ERR_PROTO, 1002);
  /* RSV1 set without an extension: 1002. */
  expect_frame_error((const uint8_t *)"\xc1\x01x", 3, DVOICE_ERR_PROTO, 1002);
  /* Close with an invalid code 999: 1002. */
  expect_frame_error((const uint8_t *)"\x88\x02\x03\xe7", 4, DVOICE_ERR_PROTO,
                     1002);
  /* A fragmented (no FIN) ping. */
  expect_frame_error((const uint8_t *)"\x09\x00", 2, DVOICE_ERR_PROTO, 0);
  /* A ping longer than 125. */
  expect_frame_error((const uint8_t *)"\x89\x7e\x00\x80", 4, DVOICE_ERR_PROTO,
                     0);
}

static void test_callback_failure(void **state) {
  dvt_env e;
  side c, s;
  (void)state;
  dvt_env_init(&e);
  connect_pair(&e, &c, &s, 0);
  c.fail_on_message = 1;
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_TEXT, (const uint8_t *)"a", 1), 0);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_TEXT, (const uint8_t *)"b", 1), 0);
  assert_int_equal(transfer(&s, &c), DVOICE_ERR_CALLBACK_FAILURE);
  /* The second message was not delivered after the failure. */
  assert_int_equal(c.nmsg, 1);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_FAILED);
  assert_int_equal(dv_ws_close_code_sent(&c.ws), 1011);
  assert_int_equal(transfer(&c, &s), 0);
  assert_int_equal(s.close_code, 1011);
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
}

/* ---- allocation failures ------------------------------------------------- */

static int session_with_mem(const dvoice_mem *mem, void *ud) {
  dvt_env e;
  side c, s;
  int rv;
  uint8_t payload[300];
  (void)ud;
  memset(payload, 'p', sizeof payload);
  dvt_env_init(&e);
  e.env.mem = mem;
  rv = side_init(&c, 0, &e.env, 0);
  if (rv == 0) {
    rv = side_init(&s, 1, &e.env, 0);
  } else {
    memset(&s, 0, sizeof s);
  }
  if (rv == 0) {
    rv = pump(&c, &s);
  }
  if (rv == 0) {
    rv = dv_ws_send(&c.ws, DV_WS_BINARY, payload, sizeof payload);
  }
  if (rv == 0) {
    rv = dv_ws_send(&s.ws, DV_WS_TEXT, payload, 100);
  }
  if (rv == 0) {
    rv = pump(&c, &s);
  }
  if (rv == 0) {
    rv = dv_ws_close(&c.ws, 1000, "done", 4);
  }
  if (rv == 0) {
    rv = pump(&c, &s);
  }
  if (rv == 0 &&
      (s.nmsg != 1 || c.nmsg != 1 || dv_ws_state_get(&c.ws) != DV_WS_CLOSED)) {
    rv = DVOICE_ERR_INTERNAL;
  }
  side_free(&c);
  side_free(&s);
  dvt_env_free(&e);
  return rv;
}

static void test_nomem_each_allocation(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(session_with_mem, NULL) >= 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_rfc_example),
      cmocka_unit_test(test_client_request_vector),
      cmocka_unit_test(test_init_rejects_bad_options),
      cmocka_unit_test(test_upgrade_any_chunking),
      cmocka_unit_test(test_upgrade_header_case),
      cmocka_unit_test(test_upgrade_refused_403),
      cmocka_unit_test(test_upgrade_bad_accept),
      cmocka_unit_test(test_upgrade_malformed),
      cmocka_unit_test(test_upgrade_header_bound),
      cmocka_unit_test(test_server_drip_request),
      cmocka_unit_test(test_server_refuses),
      cmocka_unit_test(test_server_bad_requests),
      cmocka_unit_test(test_server_plain_http),
      cmocka_unit_test(test_server_extra_headers_and_callback_failures),
      cmocka_unit_test(test_token_lists),
      cmocka_unit_test(test_text_sizes),
      cmocka_unit_test(test_binary_sizes),
      cmocka_unit_test(test_frame_length_encoding),
      cmocka_unit_test(test_client_masking_vector),
      cmocka_unit_test(test_fragmented_with_ping),
      cmocka_unit_test(test_server_reassembles_masked_fragments),
      cmocka_unit_test(test_frames_any_chunking),
      cmocka_unit_test(test_ping_pong),
      cmocka_unit_test(test_echo_from_callback),
      cmocka_unit_test(test_close_1000_from_client),
      cmocka_unit_test(test_close_4015_from_server),
      cmocka_unit_test(test_close_without_code),
      cmocka_unit_test(test_close_bad_code_args),
      cmocka_unit_test(test_close_from_callback),
      cmocka_unit_test(test_too_big_closes_1009),
      cmocka_unit_test(test_too_big_fragmented),
      cmocka_unit_test(test_peer_protocol_errors),
      cmocka_unit_test(test_callback_failure),
      cmocka_unit_test(test_nomem_each_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
