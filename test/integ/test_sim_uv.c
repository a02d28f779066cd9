/*
 * Integration tests for the simulator's libuv glue (test/sim/sim_uv): a
 * scripted client on lib/uv's WebSocket stream, a UDP socket and lib/rtp
 * runs the whole voice handshake against it on 127.0.0.1, plain and over
 * TLS, and the test then reads what the simulator recorded.
 */
#include "../interop/dvt_net.h"

#include <jansson.h>

#include "../sim/sim_uv.h"
#include "rtp/dv_rtp.h"
#include "rtp/dv_rtp_crypt.h"
#include "util/dv_rw.h"
#include "uv/dv_uv_stream.h"

#define SERVER "41771983423143937"
#define USER "104694319306248192"

typedef struct client {
  uv_loop_t *loop;
  dv_sim_uv *sim;
  dv_sim_session *s;
  dv_uv_ws *ws;
  uv_udp_t udp;
  int udp_open;
  uint32_t ssrc;
  uint16_t udp_port;
  dv_rtp_crypt crypt;
  int have_key;
  char events[512];
  int got_ack;
  int closed;
  uint16_t close_code;
  int errored;
  int err;
  int released;
  int sim_released;
  int udp_closed;
  uint8_t rxbuf[2048];
} client;

static void ev(client *c, const char *fmt, ...) {
  size_t n = strlen(c->events);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->events + n, sizeof(c->events) - n, fmt, ap);
  va_end(ap);
}

static void send_text(client *c, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  assert_int_equal(dv_uv_ws_send(c->ws, DV_WS_TEXT, (uint8_t *)buf, (size_t)n),
                   0);
}

static void udp_send(client *c, const uint8_t *p, size_t len) {
  struct sockaddr_in sa;
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
  assert_int_equal(uv_ip4_addr("127.0.0.1", c->udp_port, &sa), 0);
  /* Loopback datagrams this small are sent at once. */
  assert_int_equal(
      uv_udp_try_send(&c->udp, &b, 1, (const struct sockaddr *)&sa), (int)len);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  client *c = h->data;
  (void)sz;
  *buf = uv_buf_init((char *)c->rxbuf, sizeof(c->rxbuf));
}

static void on_udp(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                   const struct sockaddr *addr, unsigned flags) {
  client *c = h->data;
  dv_ipdisc_result res;
  (void)flags;
  (void)addr;
  if (n <= 0) {
    return;
  }
  if (dv_udp_classify((const uint8_t *)buf->base, (size_t)n) == DV_UDP_IPDISC) {
    assert_int_equal(dv_ipdisc_parse_response((const uint8_t *)buf->base,
                                              (size_t)n, c->ssrc, &res),
                     0);
    ev(c, "disc ");
    send_text(c,
              "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
              "\"%s\",\"port\":%u,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
              res.address, (unsigned)res.port);
  }
}

static void on_open(dv_uv_ws *ws, void *ud) {
  client *c = ud;
  (void)ws;
  ev(c, "open ");
  send_text(c,
            "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
            "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
            "\"max_dave_protocol_version\":1}}");
}

static void on_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  client *c = ud;
  json_t *j = json_loadb((const char *)data, len, 0, NULL), *d;
  uint8_t req[DV_IPDISC_LEN], key[32], pkt[128];
  static const uint8_t silence[3] = {0xf8, 0xff, 0xfe};
  size_t plen;
  int o;
  (void)ws;
  assert_int_equal(op, DV_WS_TEXT);
  assert_non_null(j);
  o = (int)json_integer_value(json_object_get(j, "op"));
  d = json_object_get(j, "d");
  ev(c, "op%d ", o);
  switch (o) {
    case 2:
      c->ssrc = (uint32_t)json_integer_value(json_object_get(d, "ssrc"));
      c->udp_port = (uint16_t)json_integer_value(json_object_get(d, "port"));
      dv_ipdisc_build_request(req, c->ssrc);
      udp_send(c, req, sizeof(req));
      break;
    case 4:
      for (size_t i = 0; i < 32; i++) {
        key[i] = (uint8_t)json_integer_value(
            json_array_get(json_object_get(d, "secret_key"), i));
      }
      assert_int_equal(dv_rtp_crypt_init(&c->crypt, DV_RTP_MODE_AES256GCM, key,
                                         DV_RTP_BACKEND_AUTO),
                       0);
      c->have_key = 1;
      send_text(c, "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":%u}}",
                c->ssrc);
      for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(dv_rtp_seal_opus(&c->crypt, (uint16_t)i, 960 * i,
                                          c->ssrc, silence, 3, pkt, sizeof(pkt),
                                          &plen),
                         0);
        udp_send(c, pkt, plen);
      }
      send_text(c, "{\"op\":3,\"d\":{\"t\":77,\"seq_ack\":-1}}");
      break;
    case 6:
      assert_int_equal(json_integer_value(json_object_get(d, "t")), 77);
      c->got_ack = 1;
      break;
    default:
      break;
  }
  json_decref(j);
}

static void on_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                     size_t rlen, void *ud) {
  client *c = ud;
  (void)ws;
  (void)reason;
  (void)rlen;
  c->closed = 1;
  c->close_code = code;
  ev(c, "close:%u ", code);
}

static void on_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  client *c = ud;
  (void)ws;
  (void)uv_err;
  c->errored = 1;
  c->err = err;
  ev(c, "error:%s ", dvoice_err_name(err));
}

static void on_released(dv_uv_ws *ws, void *ud) {
  client *c = ud;
  (void)ws;
  c->released = 1;
}

static void on_sim_closed(dv_sim_uv *sim, void *ud) {
  client *c = ud;
  (void)sim;
  c->sim_released = 1;
}

static void on_udp_closed(uv_handle_t *h) {
  client *c = h->data;
  c->udp_closed = 1;
}

static int decrypted5(void *ud) {
  client *c = ud;
  return c->got_ack && c->s->report.media.decrypted == 5;
}

static const dv_uv_ws_callbacks client_cb = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
    .on_error = on_error,
};

static void start(client *c, uv_loop_t *loop, dv_sim_uv_settings *st,
                  const char *scheme, const char *path, const char *ca) {
  dv_uv_ws_settings ws;
  char url[128];
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  assert_int_equal(dv_sim_uv_new(loop, st, &c->sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(c->sim), SERVER, USER,
                                          "sess-a", "tok-a", &c->s),
                   0);
  assert_int_equal(uv_udp_init(loop, &c->udp), 0);
  c->udp.data = c;
  {
    struct sockaddr_in sa;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_udp_bind(&c->udp, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_udp_recv_start(&c->udp, on_alloc, on_udp), 0);
  }
  dv_uv_ws_settings_default(&ws);
  ws.tls.ca_file = ca;
  snprintf(url, sizeof(url), "%s://localhost:%u%s", scheme,
           (unsigned)dv_sim_uv_ws_port(c->sim), path);
  assert_int_equal(dv_uv_ws_connect(&c->ws, loop, url, &ws, &client_cb, c), 0);
}

static void finish(client *c) {
  if (!c->released) {
    assert_int_equal(dv_uv_ws_close(c->ws, 1000, NULL, on_released), 0);
  }
  uv_close((uv_handle_t *)&c->udp, on_udp_closed);
  assert_int_equal(dv_sim_uv_close(c->sim, on_sim_closed, c), 0);
  dvt_run_flag(c->loop, &c->sim_released, 5000);
  dvt_run_flag(c->loop, &c->udp_closed, 5000);
  dvt_run_flag(c->loop, &c->released, 5000);
  if (c->have_key) {
    dv_rtp_crypt_clear(&c->crypt);
  }
}

static void run_handshake(const char *scheme, const char *cert, const char *key,
                          const char *ca) {
  dv_sim_uv_settings st;
  uv_loop_t loop;
  client c;
  assert_int_equal(uv_loop_init(&loop), 0);
  dv_sim_uv_settings_default(&st);
  st.cert_file = cert;
  st.key_file = key;
  start(&c, &loop, &st, scheme, "/?v=8", ca);
  assert_int_equal(dvt_run_until(&loop, decrypted5, &c, 5000), 0);
  assert_string_equal(c.events, "open op8 op2 disc op4 op6 ");
  assert_int_equal(c.s->report.identifies, 1);
  assert_int_equal(c.s->report.speaking, 1);
  assert_int_equal(c.s->report.heartbeats, 1);
  assert_int_equal(c.s->report.media.discovery_requests, 1);
  assert_int_equal(c.s->report.media.decrypt_failures, 0);
  assert_int_equal(c.s->report.media.missing, 0);
  assert_int_equal(c.s->report.media.silence_frames, 5);
  assert_int_equal(c.s->report.violations.n, 0);
  /* Misbehaviour on command reaches the wire: close with 4015. */
  assert_int_equal(dv_sim_vgw_session_close(c.s, 4015, dv_sim_uv_now(c.sim)),
                   0);
  dv_sim_uv_flush(c.sim);
  dvt_run_flag(&loop, &c.closed, 5000);
  assert_int_equal(c.close_code, 4015);
  assert_int_equal(c.s->phase, DV_SIM_PHASE_ACTIVE);
  finish(&c);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

static void test_plain_handshake_and_media(void **state) {
  (void)state;
  run_handshake("ws", NULL, NULL, NULL);
}

static void test_tls_handshake_and_media(void **state) {
  dvt_certs certs;
  (void)state;
  dvt_certs_make(&certs);
  run_handshake("wss", certs.server_cert, certs.server_key, certs.ca);
  dvt_certs_remove(&certs);
}

static void test_upgrade_without_v8_refused(void **state) {
  dv_sim_uv_settings st;
  uv_loop_t loop;
  client c;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dv_sim_uv_settings_default(&st);
  start(&c, &loop, &st, "ws", "/", NULL);
  dvt_run_flag(&loop, &c.errored, 5000);
  assert_int_equal(c.err, DVOICE_ERR_WS_UPGRADE);
  assert_true(
      dv_sim_violations_find(&dv_sim_uv_vgw(c.sim)->violations, "without v=8"));
  finish(&c);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

static void test_heartbeat_timeout_on_the_wire(void **state) {
  dv_sim_uv_settings st;
  uv_loop_t loop;
  client c;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dv_sim_uv_settings_default(&st);
  st.vgw.heartbeat_interval_ms = 50;
  st.vgw.heartbeat_grace_ms = 50;
  start(&c, &loop, &st, "ws", "/?v=8", NULL);
  /* The client never heartbeats: the timer closes it with 4009. */
  dvt_run_flag(&loop, &c.closed, 5000);
  assert_int_equal(c.close_code, 4009);
  assert_true(dv_sim_violations_find(&c.s->report.violations, "no heartbeat"));
  finish(&c);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_handshake_and_media),
      cmocka_unit_test(test_tls_handshake_and_media),
      cmocka_unit_test(test_upgrade_without_v8_refused),
      cmocka_unit_test(test_heartbeat_timeout_on_the_wire),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
