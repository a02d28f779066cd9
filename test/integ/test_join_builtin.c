/*
 * Integration tests for dvoice_client with its BUILT-IN main gateway
 * against the public simulator (dvoice/sim.h) on loopback, wss:// with the
 * simulator's CA: the seed flow (join before READY, speak 2 s of Opus,
 * five silence frames, leave), kicked mid-stream, moved mid-stream, and
 * op 7 Reconnect mid-stream (the gateway resumes; the voice connection is
 * not touched). Assertions are on the simulator's JSON report and on the
 * event sequences the application saw.
 */
#include <jansson.h>

#include <dvoice/sim.h>

#include "../interop/dvt_net.h"
#include "audio/dv_opus.h"
#include "dvt_join.h"

#define TOKEN "BUILTIN.token.7"
#define GUILD 111111111111ull
#define USER 222222222222ull
#define CHAN1 333333333333ull
#define CHAN2 444444444444ull
#define NFRAMES 50
#define TOTAL 100 /* 2 s */

enum scenario { SC_STREAM, SC_KICK, SC_MOVE, SC_RECONNECT };

typedef struct fx {
  uv_loop_t loop;
  dvt_env env;
  enum scenario sc;
  dvoice_sim *sim;
  dvoice_client *cl;
  dvoice_conn *conn;
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  char joins[512], gws[256];
  int guild_creates;
  int ready, stream_ended, disconnected, ended;
  dvoice_join_reason end_reason;
  int conn_closed, sim_closed, client_closed;
  int to_send, sent, acted;
} fx;

static void push_some(fx *f) {
  while (f->conn != NULL && f->sent < f->to_send) {
    int rv = dvoice_conn_send_opus(f->conn, f->frames[f->sent % NFRAMES],
                                   f->lens[f->sent % NFRAMES]);
    if (rv == DVOICE_ERR_NOBUF) {
      return;
    }
    assert_int_equal(rv, 0);
    f->sent++;
  }
}

/* ---- the simulator's report ----------------------------------------------
 */

/* Sums every integer member named |key| anywhere under |j|. */
static long long sum_key(const json_t *j, const char *key) {
  long long n = 0;
  const char *k;
  json_t *v;
  size_t i;
  if (json_is_object(j)) {
    json_object_foreach((json_t *)j, k, v) {
      if (strcmp(k, key) == 0 && json_is_integer(v)) {
        n += json_integer_value(v);
      } else {
        n += sum_key(v, key);
      }
    }
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) {
      n += sum_key(v, key);
    }
  }
  return n;
}

/* |part| is "gateway" or "voice". */
static long long report_sum(fx *f, const char *part, const char *key) {
  static char buf[65536];
  long n = dvoice_sim_report(f->sim, buf, sizeof(buf));
  json_t *root;
  long long v;
  assert_true(n > 0 && (size_t)n < sizeof(buf));
  assert_null(strstr(buf, TOKEN));
  root = json_loads(buf, 0, NULL);
  assert_non_null(root);
  v = sum_key(json_object_get(root, part), key);
  json_decref(root);
  return v;
}

static void print_report(fx *f) {
  static char buf[65536];
  long n = dvoice_sim_report(f->sim, buf, sizeof(buf));
  if (n > 0 && getenv("DVT_VERBOSE") != NULL) {
    printf("# report %s\n", buf);
  }
}

/* ---- callbacks -------------------------------------------------------------
 */

static void conn_closed(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  f->conn_closed++;
}

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  fx *f = ud;
  assert_ptr_equal(cl, f->cl);
  assert_ptr_equal(c, f->conn);
  dvt_append(f->joins, sizeof(f->joins), dvoice_join_state_name(ev->state));
  printf("# join %s (reason %s, channel %llu)\n",
         dvoice_join_state_name(ev->state), dvoice_join_reason_name(ev->reason),
         (unsigned long long)ev->channel_id);
  if (ev->state == DVOICE_JOIN_ENDED) {
    f->ended++;
    f->end_reason = ev->reason;
  }
}

static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  fx *f = ud;
  assert_ptr_equal(cl, f->cl);
  dvt_append(f->gws, sizeof(f->gws), dvoice_gateway_state_name(ev->state));
  printf("# gateway %s (close %d)\n", dvoice_gateway_state_name(ev->state),
         ev->close_code);
  if (ev->state == DVOICE_GATEWAY_READY) {
    assert_true(ev->user_id == USER);
  }
}

static void on_dispatch(dvoice_client *cl, const char *name, const char *d,
                        size_t d_len, void *ud) {
  fx *f = ud;
  assert_ptr_equal(cl, f->cl);
  assert_int_equal(strlen(d), d_len);
  if (strcmp(name, "GUILD_CREATE") == 0 && strstr(d, "111111111111") != NULL) {
    f->guild_creates++;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  assert_ptr_equal(c, f->conn);
  printf("# state %s (reason %s, close %d)\n",
         dvoice_conn_state_name(ev->state), dvoice_conn_reason_name(ev->reason),
         ev->close_code);
  if (ev->state == DVOICE_CONN_READY) {
    f->ready++;
    push_some(f);
  }
  if (ev->state == DVOICE_CONN_DISCONNECTED) {
    f->disconnected++;
    assert_int_equal(ev->reason, DVOICE_CONN_REASON_JOIN_ENDED);
    assert_true(dvoice_conn_send_opus(c, f->frames[0], f->lens[0]) < 0);
  }
}

static void on_drain(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  push_some(f);
}

static void on_stream(dvoice_conn *c, int active, void *ud) {
  fx *f = ud;
  (void)c;
  if (!active) {
    f->stream_ended++;
  }
}

/* ---- fixture ---------------------------------------------------------------
 */

static void fx_start(fx *f, enum scenario sc) {
  dvoice_sim_settings ss;
  dvoice_client_settings cs;
  dvoice_conn_settings tmpl;
  dvoice_client_callbacks ccb;
  dvoice_conn_callbacks cb;
  uint64_t chans[2] = {CHAN1, CHAN2};
  memset(f, 0, sizeof(*f));
  f->sc = sc;
  dvt_encode_tone(f->frames, f->lens, NFRAMES);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dvt_env_init(&f->env);
  f->env.env.now = NULL;
  f->env.env.rand = NULL;
  f->env.env.log_level = DVOICE_LOG_DEBUG;
  dvoice_sim_settings_default(&ss);
  ss.env = &f->env.env;
  ss.heartbeat_interval_ms = 500;
  assert_int_equal(dvoice_sim_start(&f->loop, &ss, &f->sim), 0);
  assert_int_equal(dvoice_sim_add_bot(f->sim, TOKEN, USER), 0);
  assert_int_equal(dvoice_sim_add_guild(f->sim, GUILD, chans, 2), 0);

  dvoice_client_settings_default(&cs);
  cs.env = f->env.env;
  cs.user_id = USER;
  cs.token = TOKEN;
  cs.gateway_url = dvoice_sim_gateway_url(f->sim);
  dvoice_conn_settings_default(&tmpl);
  tmpl.tls.ca_file = dvoice_sim_ca_file(f->sim);
  cs.conn = &tmpl;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_join = on_join;
  ccb.on_gateway = on_gateway;
  ccb.on_dispatch = on_dispatch;
  assert_int_equal(dvoice_client_new(&f->cl, &f->loop, &cs, &ccb, f), 0);

  /* Joined before READY: op 4 waits for the session. */
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  cb.on_drain = on_drain;
  cb.on_stream = on_stream;
  f->to_send = sc == SC_STREAM ? TOTAL : TOTAL / 2;
  assert_int_equal(dvoice_client_join(f->cl, GUILD, CHAN1,
                                      DVOICE_JOIN_SELF_DEAF, &cb, f, &f->conn),
                   0);
  assert_non_null(f->conn);
  assert_string_equal(f->gws, "");
  assert_string_equal(f->joins, "");
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  fx *f = ud;
  (void)sim;
  f->sim_closed++;
}

static void client_closed(dvoice_client *cl, void *ud) {
  fx *f = ud;
  (void)cl;
  f->client_closed++;
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_client_close(f->cl, client_closed), 0);
  assert_int_equal(dvoice_client_close(f->cl, client_closed),
                   DVOICE_ERR_INVALID_STATE);
  dvt_run_flag(&f->loop, &f->client_closed, 5000);
  assert_int_equal(dvoice_sim_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_false(dvt_log_contains(&f->env.log, TOKEN));
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  dvt_env_free(&f->env);
}

static int stream_done(void *ud) {
  fx *f = ud;
  return f->sent == f->to_send && f->stream_ended > 0;
}

static int half_sent(void *ud) {
  fx *f = ud;
  return f->sent == f->to_send && f->ready > 0;
}

static int left_seen(void *ud) {
  fx *f = ud;
  return report_sum(f, "gateway", "voice_state_updates") >= 2;
}

static int silence_seen(void *ud) {
  return report_sum(ud, "voice", "silence_frames") >= 5;
}

/* Every packet sent arrived and decrypted, five silence frames ended it. */
static void check_media(fx *f, long long frames) {
  long long received;
  assert_int_equal(dvt_run_until(&f->loop, silence_seen, f, 5000), 0);
  received = report_sum(f, "voice", "received");
  print_report(f);
  assert_int_equal(report_sum(f, "voice", "decrypt_failures"), 0);
  assert_int_equal(received, report_sum(f, "voice", "decrypted") +
                                 report_sum(f, "voice", "before_key"));
  assert_true(report_sum(f, "voice", "before_key") <= 1);
  assert_true(received >= frames);
  assert_int_equal(report_sum(f, "voice", "silence_frames") % 5, 0);
  assert_true(report_sum(f, "voice", "silence_frames") >= 5);
}

static void leave_and_check(fx *f) {
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed), 0);
  f->conn = NULL;
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  /* The leave's op 4 reaches the simulator's main gateway. */
  assert_int_equal(dvt_run_until(&f->loop, left_seen, f, 5000), 0);
  assert_int_equal(report_sum(f, "gateway", "voice_state_updates"), 2);
  if (dvoice_sim_violation_count(f->sim) != 0) {
    print_report(f);
    fail_msg("%zu violations", dvoice_sim_violation_count(f->sim));
  }
}

/* ---- tests -----------------------------------------------------------------
 */

static void test_stream(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_STREAM);
  assert_int_equal(dvt_run_until(&f.loop, stream_done, &f, 20000), 0);
  assert_string_equal(f.gws, "CONNECTING READY");
  assert_int_equal(f.guild_creates, 1);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED");
  check_media(&f, TOTAL);
  assert_int_equal(report_sum(&f, "voice", "silence_frames"), 5);
  assert_int_equal(report_sum(&f, "voice", "received"), TOTAL + 5);
  assert_int_equal(report_sum(&f, "voice", "identifies"), 1);
  leave_and_check(&f);
  fx_stop(&f);
}

static int kicked_done(void *ud) {
  fx *f = ud;
  return f->ended > 0 && f->disconnected > 0;
}

static void test_kicked(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_KICK);
  assert_int_equal(dvt_run_until(&f.loop, half_sent, &f, 20000), 0);
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_KICK, USER, GUILD, 0), 0);
  assert_int_equal(dvt_run_until(&f.loop, kicked_done, &f, 10000), 0);
  assert_int_equal(f.end_reason, DVOICE_JOIN_REASON_KICKED);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED ENDED");
  assert_int_equal(report_sum(&f, "voice", "decrypt_failures"), 0);
  /* Nothing hangs: closing the ended connection sends no op 4. */
  assert_int_equal(dvoice_conn_close(f.conn, conn_closed), 0);
  f.conn = NULL;
  dvt_run_flag(&f.loop, &f.conn_closed, 5000);
  assert_int_equal(report_sum(&f, "gateway", "voice_state_updates"), 1);
  assert_string_equal(f.gws, "CONNECTING READY");
  assert_int_equal(dvoice_sim_violation_count(f.sim), 0);
  fx_stop(&f);
}

static void test_moved(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_MOVE);
  assert_int_equal(dvt_run_until(&f.loop, half_sent, &f, 20000), 0);
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_MOVE, USER, GUILD, CHAN2), 0);
  f.to_send = TOTAL;
  push_some(&f);
  assert_int_equal(dvt_run_until(&f.loop, stream_done, &f, 30000), 0);
  assert_int_equal(f.ended, 0);
  assert_true(f.ready >= 2);
  check_media(&f, TOTAL);
  assert_int_equal(report_sum(&f, "voice", "identifies"), 2);
  leave_and_check(&f);
  fx_stop(&f);
}

static void test_reconnect(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_RECONNECT);
  assert_int_equal(dvt_run_until(&f.loop, half_sent, &f, 20000), 0);
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_RECONNECT, USER, 0, 0), 0);
  f.to_send = TOTAL;
  push_some(&f);
  assert_int_equal(dvt_run_until(&f.loop, stream_done, &f, 30000), 0);
  assert_string_equal(f.gws, "CONNECTING READY RESUMING READY");
  assert_int_equal(report_sum(&f, "gateway", "resumes"), 1);
  assert_int_equal(report_sum(&f, "gateway", "identifies"), 1);
  /* The voice connection was not touched. */
  assert_int_equal(f.ready, 1);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED");
  assert_int_equal(report_sum(&f, "voice", "identifies"), 1);
  assert_int_equal(report_sum(&f, "voice", "resumes"), 0);
  check_media(&f, TOTAL);
  assert_int_equal(report_sum(&f, "voice", "silence_frames"), 5);
  assert_int_equal(report_sum(&f, "voice", "received"), TOTAL + 5);
  leave_and_check(&f);
  fx_stop(&f);
}

/* Bad built-in settings fail at once and leave nothing on the loop. */
static void test_bad_settings(void **state) {
  uv_loop_t loop;
  dvoice_client_settings cs;
  dvoice_client *cl = (dvoice_client *)&loop;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dvoice_client_settings_default(&cs);
  cs.user_id = USER;
  /* Neither an adapter nor a token. */
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(cl);
  /* A token the gateway machine refuses (not printable). */
  cs.token = "bad\ntoken";
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(cl);
  cs.token = TOKEN;
  cs.gateway_url = "";
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(cl);
  assert_string_equal(dvoice_gateway_state_name(DVOICE_GATEWAY_RESUMING),
                      "RESUMING");
  assert_string_equal(dvoice_gateway_state_name((dvoice_gateway_state)99),
                      "UNKNOWN");
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_settings), cmocka_unit_test(test_stream),
      cmocka_unit_test(test_kicked),       cmocka_unit_test(test_moved),
      cmocka_unit_test(test_reconnect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
