/* Unit tests for the simulator's voice gateway core (test/sim/sim_vgw). */
#include "dvt.h"

#include <jansson.h>

#include "../sim/sim_vgw.h"
#include "util/dv_mem.h"

#define SERVER "41771983423143937"
#define USER "104694319306248192"
#define USER2 "104694319306248193"

typedef struct fx {
  dvt_env e;
  dv_sim_vgw *vgw;
  dv_sim_session *s;
} fx;

static void fx_init(fx *f, const dv_sim_vgw_settings *st) {
  dvt_env_init(&f->e);
  assert_int_equal(dv_sim_vgw_new(&f->e.env, st, &f->vgw), 0);
  dv_sim_vgw_set_udp(f->vgw, "127.0.0.1", 50010);
  assert_int_equal(
      dv_sim_vgw_add_session(f->vgw, SERVER, USER, "sess-a", "tok-a", &f->s),
      0);
}

static void fx_free(fx *f) {
  dv_sim_vgw_free(f->vgw);
  dvt_env_free(&f->e);
}

/* Pops the next frame; asserts it is a text frame and parses it. */
static json_t *next_json(dv_sim_vgw_conn *c) {
  dv_sim_out o;
  json_t *j;
  assert_int_equal(dv_sim_vgw_conn_pop(c, &o), 1);
  assert_int_equal(o.kind, DV_SIM_OUT_TEXT);
  j = json_loadb((const char *)o.data.data, o.data.len, 0, NULL);
  dv_buf_free(&o.data);
  assert_non_null(j);
  return j;
}

static int op_of(json_t *j) {
  return (int)json_integer_value(json_object_get(j, "op"));
}

static json_t *d_of(json_t *j) {
  return json_object_get(j, "d");
}

/* Pops the next frame and checks its op; returns it for more checks. */
static json_t *expect_op(dv_sim_vgw_conn *c, int op) {
  json_t *j = next_json(c);
  assert_int_equal(op_of(j), op);
  return j;
}

static void expect_close(dv_sim_vgw_conn *c, int code) {
  dv_sim_out o;
  assert_int_equal(dv_sim_vgw_conn_pop(c, &o), 1);
  assert_int_equal(o.kind, DV_SIM_OUT_CLOSE);
  assert_int_equal(o.close_code, code);
  dv_buf_free(&o.data);
  assert_int_equal(c->state, DV_SIM_CONN_CLOSED);
}

static void expect_nothing(dv_sim_vgw_conn *c) {
  dv_sim_out o;
  assert_int_equal(dv_sim_vgw_conn_pop(c, &o), 0);
}

static void drain(dv_sim_vgw_conn *c) {
  dv_sim_out o;
  while (dv_sim_vgw_conn_pop(c, &o)) {
    dv_buf_free(&o.data);
  }
}

static int sendf(dv_sim_vgw_conn *c, dvoice_tstamp now, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof(buf));
  return dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)buf, (size_t)n, now);
}

static void send_identify(dv_sim_vgw_conn *c, const char *user,
                          const char *sess, const char *tok,
                          dvoice_tstamp now) {
  assert_int_equal(sendf(c, now,
                         "{\"op\":0,\"d\":{\"server_id\":\"" SERVER
                         "\",\"user_id\":\"%s\",\"session_id\":\"%s\","
                         "\"token\":\"%s\",\"max_dave_protocol_version\":1}}",
                         user, sess, tok),
                   0);
}

static void send_select(dv_sim_vgw_conn *c, const char *mode,
                        dvoice_tstamp now) {
  assert_int_equal(sendf(c, now,
                         "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{"
                         "\"address\":\"127.0.0.1\",\"port\":40000,"
                         "\"mode\":\"%s\"}}}",
                         mode),
                   0);
}

/* Opens a connection and runs Hello, Identify, Ready, and (if |mode|)
 * Select Protocol and Session Description, draining everything. */
static dv_sim_vgw_conn *join(dv_sim_vgw *vgw, dv_sim_session *s,
                             const char *mode, dvoice_tstamp now) {
  dv_sim_vgw_conn *c;
  assert_int_equal(dv_sim_vgw_conn_new(vgw, now, &c), 0);
  send_identify(c, s->user_id, s->session_id, s->token, now);
  if (mode != NULL) {
    send_select(c, mode, now);
  }
  drain(c);
  assert_int_equal(c->state, DV_SIM_CONN_BOUND);
  return c;
}

static void test_happy_path(void **state) {
  fx f;
  dv_sim_vgw_conn *c;
  json_t *j, *d, *modes, *key;
  (void)state;
  fx_init(&f, NULL);
  f.e.clock.now = 1000 * DVOICE_MS;
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, f.e.clock.now, &c), 0);
  /* Hello first, v 8, default interval. */
  j = expect_op(c, 8);
  assert_int_equal(json_integer_value(json_object_get(d_of(j), "v")), 8);
  assert_int_equal(
      json_integer_value(json_object_get(d_of(j), "heartbeat_interval")),
      13750);
  json_decref(j);
  expect_nothing(c);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) ==
              f.e.clock.now + (13750 + 5000) * DVOICE_MS);

  send_identify(c, USER, "sess-a", "tok-a", f.e.clock.now);
  j = expect_op(c, 2);
  d = d_of(j);
  assert_true((uint32_t)json_integer_value(json_object_get(d, "ssrc")) ==
              f.s->ssrc);
  assert_string_equal(json_string_value(json_object_get(d, "ip")), "127.0.0.1");
  assert_int_equal(json_integer_value(json_object_get(d, "port")), 50010);
  modes = json_object_get(d, "modes");
  assert_int_equal(json_array_size(modes), 5);
  assert_string_equal(json_string_value(json_array_get(modes, 0)),
                      "aead_aes256_gcm_rtpsize");
  assert_null(json_object_get(j, "seq"));
  json_decref(j);
  expect_nothing(c);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_READY);

  send_select(c, "aead_xchacha20_poly1305_rtpsize", f.e.clock.now);
  j = expect_op(c, 4);
  d = d_of(j);
  assert_string_equal(json_string_value(json_object_get(d, "mode")),
                      "aead_xchacha20_poly1305_rtpsize");
  assert_int_equal(
      json_integer_value(json_object_get(d, "dave_protocol_version")), 0);
  key = json_object_get(d, "secret_key");
  assert_int_equal(json_array_size(key), 32);
  for (size_t i = 0; i < 32; i++) {
    assert_int_equal(json_integer_value(json_array_get(key, i)), f.s->key[i]);
  }
  json_decref(j);
  assert_int_equal(f.s->mode, DV_SIM_MODE_XCHACHA20);
  assert_int_equal(f.s->sel_port, 40000);
  assert_true(f.s->sel_ip == 0x7f000001u);

  assert_int_equal(sendf(c, f.e.clock.now,
                         "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,"
                         "\"ssrc\":%u}}",
                         f.s->ssrc),
                   0);
  expect_nothing(c);
  assert_true(f.s->speaking_seen);

  f.e.clock.now += 13750 * DVOICE_MS;
  assert_int_equal(sendf(c, f.e.clock.now,
                         "{\"op\":3,\"d\":{\"t\":1501184119561,"
                         "\"seq_ack\":-1}}"),
                   0);
  j = expect_op(c, 6);
  assert_true(json_integer_value(json_object_get(d_of(j), "t")) ==
              1501184119561LL);
  json_decref(j);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) ==
              f.e.clock.now + (13750 + 5000) * DVOICE_MS);
  assert_int_equal(f.s->report.identifies, 1);
  assert_int_equal(f.s->report.heartbeats, 1);
  assert_int_equal(f.s->report.acks_sent, 1);
  assert_int_equal(f.s->report.speaking, 1);
  assert_int_equal(f.s->report.violations.n, 0);
  assert_int_equal(f.vgw->violations.n, 0);
  assert_string_equal(f.s->report.mode, "aead_xchacha20_poly1305_rtpsize");
  fx_free(&f);
}

/* One malformed or misplaced message and the close code it must earn. */
typedef struct bad_case {
  int level; /* 0: fresh, 1: identified, 2: session description */
  int binary;
  const char *msg; /* "%u" is replaced by the session's SSRC */
  int code;
  const char *what; /* substring of the recorded violation */
  size_t blen;      /* length of a binary message */
} bad_case;

static const bad_case bad_cases[] = {
    {0, 0, "not json", 4002, "envelope"},
    {0, 0, "[0]", 4002, "envelope"},
    {0, 0, "{\"op\":\"0\",\"d\":{}}", 4002, "envelope"},
    {0, 0, "{\"op\":0,\"op\":0,\"d\":{}}", 4002, "envelope"},
    {0, 0, "{\"op\":0}", 4002, "without d"},
    {0, 0, "{\"op\":99,\"d\":{}}", 4001, "unknown opcode 99"},
    {0, 0, "{\"op\":2,\"d\":{}}", 4001, "unknown opcode 2"},
    {0, 0, "{\"op\":3,\"d\":{\"t\":1}}", 4003, "before identify"},
    {0, 0, "{\"op\":5,\"d\":{}}", 4003, "before identify"},
    {0, 1, "\x1a", 4003, "binary op 26 before identify", 1},
    {0, 0, "{\"op\":0,\"d\":[]}", 4020, "not an object"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":" USER
     ",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":1}}",
     4020, "must be strings"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"0123\",\"user_id\":\"" USER
     "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":1}}",
     4020, "not snowflakes"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
     "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\"}}",
     4020, "max_dave_protocol_version missing"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
     "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":\"1\"}}",
     4020, "not a small integer"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
     "\",\"session_id\":\"nope\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":1}}",
     4006, "unknown session_id"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
     "\",\"session_id\":\"sess-a\",\"token\":\"wrong\","
     "\"max_dave_protocol_version\":1}}",
     4004, "mismatch"},
    {0, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER2
     "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":1}}",
     4004, "mismatch"},
    {0, 0,
     "{\"op\":7,\"d\":{\"server_id\":\"" SERVER "\",\"session_id\":\"nope\","
     "\"token\":\"tok-a\",\"seq_ack\":-1}}",
     4006, "unknown session_id"},
    {0, 0,
     "{\"op\":7,\"d\":{\"server_id\":\"" SERVER "\",\"session_id\":\"sess-a\","
     "\"token\":\"tok-a\",\"seq_ack\":\"1\"}}",
     4020, "seq_ack not an integer"},
    {1, 0,
     "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
     "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
     "\"max_dave_protocol_version\":1}}",
     4005, "identify while authenticated"},
    {1, 0,
     "{\"op\":7,\"d\":{\"server_id\":\"" SERVER "\",\"session_id\":\"sess-a\","
     "\"token\":\"tok-a\",\"seq_ack\":-1}}",
     4005, "resume while authenticated"},
    {1, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"webrtc\",\"data\":{\"address\":"
     "\"127.0.0.1\",\"port\":1,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
     4012, "not \"udp\""},
    {1, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
     "\"127.0.0.1\",\"port\":1,\"mode\":\"xsalsa20_poly1305\"}}}",
     4016, "discontinued"},
    {1, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
     "\"127.0.0.1\",\"port\":1,\"mode\":\"aead_aes256_gcm_rtpsize_x\"}}}",
     4016, "not offered"},
    {1, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
     "\"localhost\",\"port\":1,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
     4020, "address not IPv4"},
    {1, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
     "\"127.0.0.1\",\"port\":70000,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
     4020, "bad port"},
    {1, 0, "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":%u}}", 4020,
     "before session description"},
    {1, 0, "{\"op\":3,\"d\":1234}", 4020, "v8"},
    {1, 0, "{\"op\":3,\"d\":{\"t\":\"1234\"}}", 4020, "t is not an integer"},
    {1, 0, "{\"op\":3,\"d\":{\"t\":1,\"seq_ack\":\"0\"}}", 4020,
     "seq_ack is not an integer"},
    {1, 1, "\x1a\x00\x01", 4020, "binary DAVE op 26", 3},
    {1, 1, "\x63", 4001, "unknown binary opcode 99", 1},
    {1, 0, "{\"op\":23,\"d\":{\"transition_id\":1}}", 4020, "DAVE op 23"},
    {2, 0,
     "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{\"address\":"
     "\"127.0.0.1\",\"port\":1,\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
     4020, "not expected now"},
    {2, 0, "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":1}}", 4020,
     "ssrc is not the session's"},
    {2, 0, "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":5,\"ssrc\":%u}}", 4020,
     "delay is not 0"},
    {2, 0, "{\"op\":5,\"d\":{\"speaking\":8,\"delay\":0,\"ssrc\":%u}}", 4020,
     "flag set"},
    {2, 0, "{\"op\":5,\"d\":{\"speaking\":\"1\",\"delay\":0,\"ssrc\":%u}}",
     4020, "flag set"},
};

static void test_violations_close_codes(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    const bad_case *bc = &bad_cases[i];
    char msg[1024];
    fx f;
    dv_sim_vgw_conn *c;
    const dv_sim_violations *vl;
    int n;
    fx_init(&f, NULL);
    if (bc->level == 0) {
      assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 0, &c), 0);
      drain(c);
    } else {
      c = join(f.vgw, f.s, bc->level == 2 ? "aead_aes256_gcm_rtpsize" : NULL,
               0);
    }
    {
      /* Substitute "%u" by hand: the table is not a format string. */
      const char *at = strstr(bc->msg, "%u");
      if (at != NULL) {
        n = snprintf(msg, sizeof(msg), "%.*s%u%s", (int)(at - bc->msg), bc->msg,
                     f.s->ssrc, at + 2);
      } else {
        n = snprintf(msg, sizeof(msg), "%s", bc->msg);
      }
    }
    if (bc->binary) {
      /* Binary cases may hold NUL bytes. */
      memcpy(msg, bc->msg, bc->blen);
      n = (int)bc->blen;
    }
    print_message("# case %zu: %s\n", i, bc->what);
    assert_int_equal(
        dv_sim_vgw_conn_recv(c, bc->binary, (const uint8_t *)msg, (size_t)n, 5),
        0);
    expect_close(c, bc->code);
    expect_nothing(c);
    /* Violations before binding land on the server, else on the session. */
    vl = f.s->report.violations.n > 0 ? &f.s->report.violations
                                      : &f.vgw->violations;
    assert_int_equal(vl->n, 1);
    assert_int_equal(vl->v[0].close_code, bc->code);
    assert_true(vl->v[0].when == 5);
    if (!dv_sim_violations_find(vl, bc->what)) {
      fail_msg("case %zu: violation \"%s\" not \"%s\"", i, vl->v[0].what,
               bc->what);
    }
    /* Anything after the close is refused, not processed. */
    assert_int_equal(sendf(c, 6, "{\"op\":3,\"d\":{\"t\":1}}"),
                     DVOICE_ERR_INVALID_STATE);
    expect_nothing(c);
    fx_free(&f);
  }
}

static void test_require_dave_and_hello_after_ready(void **state) {
  dv_sim_vgw_settings st;
  dv_sim_vgw_conn *c;
  json_t *j;
  fx f;
  (void)state;
  dv_sim_vgw_settings_default(&st);
  st.require_dave = 1;
  fx_init(&f, &st);
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 0, &c), 0);
  json_decref(expect_op(c, 8));
  assert_int_equal(sendf(c, 0,
                         "{\"op\":0,\"d\":{\"server_id\":\"" SERVER
                         "\",\"user_id\":\"" USER
                         "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
                         "\"max_dave_protocol_version\":0}}"),
                   0);
  expect_close(c, 4017);
  assert_true(dv_sim_violations_find(&f.s->report.violations,
                                     "max_dave_protocol_version 0"));
  fx_free(&f);

  dv_sim_vgw_settings_default(&st);
  st.hello_after_ready = 1;
  st.heartbeat_interval_ms = 5000;
  st.modes[0] = "aead_xchacha20_poly1305_rtpsize";
  st.nmodes = 1;
  fx_init(&f, &st);
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 0, &c), 0);
  expect_nothing(c);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) == DVOICE_TSTAMP_NONE);
  send_identify(c, USER, "sess-a", "tok-a", 7);
  j = expect_op(c, 2);
  assert_int_equal(json_array_size(json_object_get(d_of(j), "modes")), 1);
  json_decref(j);
  j = expect_op(c, 8);
  assert_int_equal(
      json_integer_value(json_object_get(d_of(j), "heartbeat_interval")), 5000);
  json_decref(j);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) == 7 + 10000 * DVOICE_MS);
  /* Only one mode offered: the other one is refused. */
  send_select(c, "aead_aes256_gcm_rtpsize", 8);
  expect_close(c, 4016);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ENDED);
  fx_free(&f);
}

static void test_heartbeat_timeout(void **state) {
  dv_sim_vgw_conn *c, *c2;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) == 18750 * DVOICE_MS);
  assert_int_equal(dv_sim_vgw_handle_expiry(f.vgw, 18750 * DVOICE_MS - 1), 0);
  expect_nothing(c);
  assert_int_equal(sendf(c, 10 * DVOICE_SECONDS,
                         "{\"op\":3,\"d\":{\"t\":5,\"seq_ack\":-1}}"),
                   0);
  json_decref(expect_op(c, 6));
  assert_true(dv_sim_vgw_get_expiry(f.vgw) ==
              10 * DVOICE_SECONDS + 18750 * DVOICE_MS);
  assert_int_equal(dv_sim_vgw_handle_expiry(f.vgw, 20 * DVOICE_SECONDS), 0);
  expect_nothing(c);
  assert_int_equal(dv_sim_vgw_handle_expiry(f.vgw, 30 * DVOICE_SECONDS), 0);
  expect_close(c, 4009);
  assert_true(dv_sim_violations_find(&f.s->report.violations, "no heartbeat"));
  assert_int_equal(f.s->report.violations.v[0].close_code, 4009);
  assert_true(f.s->report.violations.v[0].when == 30 * DVOICE_SECONDS);
  assert_true(dv_sim_vgw_get_expiry(f.vgw) == DVOICE_TSTAMP_NONE);
  /* 4009 ends the session: a resume is refused. */
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ENDED);
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 31 * DVOICE_SECONDS, &c2), 0);
  drain(c2);
  assert_int_equal(sendf(c2, 31 * DVOICE_SECONDS,
                         "{\"op\":7,\"d\":{\"server_id\":\"" SERVER
                         "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
                         "\"seq_ack\":-1}}"),
                   0);
  expect_close(c2, 4006);
  assert_int_equal(f.s->report.resume_failures, 1);
  fx_free(&f);
}

static void send_resume(dv_sim_vgw_conn *c, const char *sess, long long ack,
                        dvoice_tstamp now) {
  assert_int_equal(sendf(c, now,
                         "{\"op\":7,\"d\":{\"server_id\":\"" SERVER
                         "\",\"session_id\":\"%s\",\"token\":\"tok-a\","
                         "\"seq_ack\":%lld}}",
                         sess, ack),
                   0);
}

static void expect_seq(dv_sim_vgw_conn *c, int op, long long seq) {
  json_t *j = expect_op(c, op);
  assert_true(json_integer_value(json_object_get(j, "seq")) == seq);
  json_decref(j);
}

static void test_resume_replays_after_seq_ack(void **state) {
  dv_sim_session *b;
  dv_sim_vgw_conn *ca, *cb, *ca2;
  json_t *j;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  assert_int_equal(
      dv_sim_vgw_add_session(f.vgw, SERVER, USER2, "sess-b", "tok-b", &b), 0);
  ca = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  /* B joins: A learns of it with op 11, 18, 20 (seq 0, 1, 2). */
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 0, &cb), 0);
  send_identify(cb, USER2, "sess-b", "tok-b", 1);
  j = expect_op(ca, 11);
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(d_of(j), "user_ids"), 0)),
                      USER2);
  assert_int_equal(json_integer_value(json_object_get(j, "seq")), 0);
  json_decref(j);
  expect_seq(ca, 18, 1);
  expect_seq(ca, 20, 2);
  expect_nothing(ca);
  /* And B learns of A the same way, in its own seq space. */
  json_decref(expect_op(cb, 8));
  json_decref(expect_op(cb, 2));
  expect_seq(cb, 11, 0);
  expect_seq(cb, 18, 1);
  expect_seq(cb, 20, 2);
  /* A's transport drops; what happens meanwhile is buffered. */
  dv_sim_vgw_conn_peer_closed(ca, 1006, 2);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ACTIVE);
  send_select(cb, "aead_xchacha20_poly1305_rtpsize", 3);
  assert_int_equal(sendf(cb, 3,
                         "{\"op\":5,\"d\":{\"speaking\":5,\"delay\":0,"
                         "\"ssrc\":%u}}",
                         b->ssrc),
                   0);
  assert_int_equal(dv_sim_vgw_add_fake(f.vgw, SERVER, "999", 4242, 1, 4, NULL),
                   0);
  drain(cb);
  /* Resume acknowledging seq 1: op 9, then seq 2..7 in order. */
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 5, &ca2), 0);
  json_decref(expect_op(ca2, 8));
  send_resume(ca2, "sess-a", 1, 5);
  j = expect_op(ca2, 9);
  assert_true(json_is_null(d_of(j)));
  json_decref(j);
  expect_seq(ca2, 20, 2);
  j = expect_op(ca2, 5);
  assert_int_equal(json_integer_value(json_object_get(j, "seq")), 3);
  assert_string_equal(json_string_value(json_object_get(d_of(j), "user_id")),
                      USER2);
  assert_true((uint32_t)json_integer_value(json_object_get(d_of(j), "ssrc")) ==
              b->ssrc);
  assert_int_equal(json_integer_value(json_object_get(d_of(j), "speaking")), 5);
  json_decref(j);
  expect_seq(ca2, 11, 4);
  expect_seq(ca2, 18, 5);
  expect_seq(ca2, 20, 6);
  expect_seq(ca2, 5, 7);
  expect_nothing(ca2);
  assert_int_equal(f.s->report.resumes, 1);
  assert_int_equal(f.s->report.replayed, 6);
  assert_int_equal(f.s->report.connections, 2);
  /* The resumed connection works: heartbeats, and new messages arrive live. */
  assert_int_equal(sendf(ca2, 6, "{\"op\":3,\"d\":{\"t\":9,\"seq_ack\":7}}"),
                   0);
  json_decref(expect_op(ca2, 6));
  assert_int_equal(dv_sim_vgw_remove_fake(f.vgw, "999", 7), 0);
  expect_seq(ca2, 13, 8);
  /* A heartbeat acknowledging a seq never sent is recorded, not fatal. */
  assert_int_equal(sendf(ca2, 8, "{\"op\":3,\"d\":{\"t\":9,\"seq_ack\":50}}"),
                   0);
  json_decref(expect_op(ca2, 6));
  assert_true(dv_sim_violations_find(&f.s->report.violations,
                                     "seq_ack 50 is no seq we sent"));
  assert_int_equal(f.s->report.violations.v[0].close_code, 0);
  /* A client closing normally ends its session: B hears op 13. */
  dv_sim_vgw_conn_peer_closed(ca2, 1000, 9);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ENDED);
  j = expect_op(cb, 13);
  assert_string_equal(json_string_value(json_object_get(d_of(j), "user_id")),
                      "999");
  json_decref(j);
  j = expect_op(cb, 13);
  assert_string_equal(json_string_value(json_object_get(d_of(j), "user_id")),
                      USER);
  expect_nothing(cb);
  json_decref(j);
  fx_free(&f);
}

static void test_resume_failures(void **state) {
  dv_sim_vgw_settings st;
  dv_sim_vgw_conn *c, *c2;
  fx f;
  (void)state;
  /* Refused on command: 4006 and the session is over. */
  fx_init(&f, NULL);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  dv_sim_vgw_conn_peer_closed(c, 1006, 1);
  f.s->refuse_resume = 1;
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 2, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", -1, 2);
  expect_close(c2, 4006);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ENDED);
  assert_int_equal(f.s->report.resume_failures, 1);
  assert_int_equal(f.s->report.violations.n, 0);
  fx_free(&f);

  /* seq_ack beyond anything sent: a client bug, recorded, 4006. */
  fx_init(&f, NULL);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  dv_sim_vgw_conn_peer_closed(c, 4000, 1);
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 2, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", 3, 2);
  expect_close(c2, 4006);
  assert_true(dv_sim_violations_find(&f.s->report.violations,
                                     "seq_ack 3 is no seq we sent"));
  fx_free(&f);

  /* The replay buffer lost what the client missed: 4006. */
  dv_sim_vgw_settings_default(&st);
  st.replay_max = 2;
  fx_init(&f, &st);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  dv_sim_vgw_conn_peer_closed(c, 1006, 1);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(dv_sim_vgw_session_send(f.s, 18, "{\"flags\":1}", 1), 0);
  }
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 2, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", 0, 2);
  expect_close(c2, 4006);
  assert_int_equal(f.s->report.resume_failures, 1);
  fx_free(&f);

  /* ... but a resume from inside the buffer works. */
  fx_init(&f, &st);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  dv_sim_vgw_conn_peer_closed(c, 1006, 1);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(dv_sim_vgw_session_send(f.s, 18, "{\"flags\":1}", 1), 0);
  }
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 2, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", 1, 2);
  json_decref(expect_op(c2, 9));
  expect_seq(c2, 18, 2);
  expect_seq(c2, 18, 3);
  expect_nothing(c2);
  fx_free(&f);
}

static void test_seq_wraps_at_16_bits(void **state) {
  dv_sim_vgw_settings st;
  dv_sim_vgw_conn *c, *c2;
  fx f;
  (void)state;
  dv_sim_vgw_settings_default(&st);
  st.seq_start = 65534;
  fx_init(&f, &st);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  assert_int_equal(dv_sim_vgw_session_send(f.s, 18, "{\"flags\":1}", 1), 0);
  expect_seq(c, 18, 65534);
  dv_sim_vgw_conn_peer_closed(c, 1006, 1);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(dv_sim_vgw_session_send(f.s, 18, "{\"flags\":1}", 1), 0);
  }
  /* Acknowledging 65535 replays 0 and 1: the seq wrapped. */
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 2, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", 65535, 2);
  json_decref(expect_op(c2, 9));
  expect_seq(c2, 18, 0);
  expect_seq(c2, 18, 1);
  expect_nothing(c2);
  assert_int_equal(f.s->report.replayed, 2);
  assert_int_equal(sendf(c2, 3, "{\"op\":3,\"d\":{\"t\":1,\"seq_ack\":1}}"), 0);
  json_decref(expect_op(c2, 6));
  assert_int_equal(f.s->report.violations.n, 0);
  /* 2 was never sent (the newest is 1). */
  assert_int_equal(sendf(c2, 3, "{\"op\":3,\"d\":{\"t\":1,\"seq_ack\":2}}"), 0);
  json_decref(expect_op(c2, 6));
  assert_true(dv_sim_violations_find(&f.s->report.violations,
                                     "seq_ack 2 is no seq we sent"));
  fx_free(&f);
}

static void test_commands(void **state) {
  dv_sim_vgw_conn *c, *c2;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  f.s->drop_acks = 1;
  assert_int_equal(sendf(c, 1, "{\"op\":3,\"d\":{\"t\":1}}"), 0);
  expect_nothing(c);
  assert_int_equal(f.s->report.acks_dropped, 1);
  assert_int_equal(f.s->report.heartbeats, 1);
  /* 4015 lets the client resume. */
  assert_int_equal(dv_sim_vgw_conn_close(c, 4015, 2), 0);
  expect_close(c, 4015);
  assert_int_equal(dv_sim_vgw_conn_close(c, 4015, 2), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ACTIVE);
  assert_int_equal(f.s->report.last_close_code, 4015);
  dv_sim_vgw_conn_free(c);
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 3, &c2), 0);
  drain(c2);
  send_resume(c2, "sess-a", -1, 3);
  json_decref(expect_op(c2, 9));
  expect_nothing(c2);
  /* 4014 does not. */
  assert_int_equal(dv_sim_vgw_session_close(f.s, 4014, 4), 0);
  expect_close(c2, 4014);
  assert_int_equal(f.s->phase, DV_SIM_PHASE_ENDED);
  assert_int_equal(dv_sim_vgw_session_close(f.s, 4014, 4),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_sim_vgw_session_send(f.s, 18, "{}", 5),
                   DVOICE_ERR_INVALID_STATE);
  /* A used session cannot be identified again. */
  assert_int_equal(dv_sim_vgw_conn_new(f.vgw, 5, &c), 0);
  drain(c);
  send_identify(c, USER, "sess-a", "tok-a", 5);
  expect_close(c, 4006);
  assert_true(
      dv_sim_violations_find(&f.s->report.violations, "already identified"));
  fx_free(&f);
}

static void test_report_json(void **state) {
  dv_sim_vgw_conn *c;
  json_t *j, *s0, *v;
  dv_buf b;
  fx f;
  (void)state;
  fx_init(&f, NULL);
  c = join(f.vgw, f.s, "aead_aes256_gcm_rtpsize", 0);
  assert_int_equal(sendf(c, 1, "{\"op\":3,\"d\":{\"t\":1}}"), 0);
  assert_int_equal(sendf(c, 2, "{\"op\":42,\"d\":{}}"), 0);
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_sim_vgw_report_json(f.vgw, &b), 0);
  j = json_loadb((const char *)b.data, b.len, 0, NULL);
  assert_non_null(j);
  s0 = json_array_get(json_object_get(j, "sessions"), 0);
  assert_non_null(s0);
  assert_string_equal(json_string_value(json_object_get(s0, "session_id")),
                      "sess-a");
  assert_int_equal(json_integer_value(json_object_get(s0, "identifies")), 1);
  assert_int_equal(json_integer_value(json_object_get(s0, "heartbeats")), 1);
  assert_int_equal(json_integer_value(json_object_get(s0, "last_close_code")),
                   4001);
  assert_string_equal(json_string_value(json_object_get(s0, "mode")),
                      "aead_aes256_gcm_rtpsize");
  v = json_array_get(json_object_get(s0, "violations"), 0);
  assert_int_equal(json_integer_value(json_object_get(v, "close_code")), 4001);
  assert_int_equal(json_integer_value(json_object_get(v, "when_ns")), 2);
  assert_true(json_is_null(
      json_object_get(json_object_get(s0, "media"), "first_arrival_ns")));
  json_decref(j);
  dv_buf_free(&b);
  fx_free(&f);
}

/* One whole handshake under a given allocator, for the NOMEM sweep. */
static int handshake(const dvoice_mem *mem, void *ud) {
  dvt_env e;
  dv_sim_vgw *vgw = NULL;
  dv_sim_session *s, *s2;
  dv_sim_vgw_conn *c = NULL;
  char msg[512];
  int rv;
  (void)ud;
  dvt_env_init(&e);
  e.env.mem = mem;
  rv = dv_sim_vgw_new(&e.env, NULL, &vgw);
  if (rv == 0) {
    rv = dv_sim_vgw_add_session(vgw, SERVER, USER, "sess-a", "tok-a", &s);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_add_session(vgw, SERVER, USER2, "sess-b", "tok-b", &s2);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_conn_new(vgw, 0, &c);
  }
  if (rv == 0) {
    snprintf(msg, sizeof(msg),
             "{\"op\":0,\"d\":{\"server_id\":\"" SERVER "\",\"user_id\":\"" USER
             "\",\"session_id\":\"sess-a\",\"token\":\"tok-a\","
             "\"max_dave_protocol_version\":1}}");
    rv = dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)msg, strlen(msg), 0);
  }
  if (rv == 0) {
    rv = dv_sim_vgw_add_fake(vgw, SERVER, "999", 7, 1, 0, NULL);
  }
  if (rv == 0) {
    snprintf(msg, sizeof(msg), "{\"op\":3,\"d\":{\"t\":1}}");
    rv = dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)msg, strlen(msg), 0);
  }
  if (rv == 0) {
    snprintf(msg, sizeof(msg), "{\"op\":77,\"d\":{}}");
    rv = dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)msg, strlen(msg), 0);
  }
  dv_sim_vgw_free(vgw);
  dvt_env_free(&e);
  return rv;
}

static void test_nomem_each_allocation(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(handshake, NULL) > 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_happy_path),
      cmocka_unit_test(test_violations_close_codes),
      cmocka_unit_test(test_require_dave_and_hello_after_ready),
      cmocka_unit_test(test_heartbeat_timeout),
      cmocka_unit_test(test_resume_replays_after_seq_ack),
      cmocka_unit_test(test_resume_failures),
      cmocka_unit_test(test_seq_wraps_at_16_bits),
      cmocka_unit_test(test_commands),
      cmocka_unit_test(test_report_json),
      cmocka_unit_test(test_nomem_each_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
