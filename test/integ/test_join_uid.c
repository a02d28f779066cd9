/*
 * dvoice_client with its built-in main gateway and settings.user_id 0: the
 * bot's id comes from READY. Against the public simulator on loopback:
 * - two bots in one channel, both without a configured id: A joins before
 *   READY and streams, B joins from its READY callback; the simulator's
 *   voice gateway checks that each Identify carries the token's user id;
 *   kicking B ends B's join only (A ignores B's voice states);
 * - a configured id that READY contradicts is kept (documented): a warning
 *   is logged and the join times out, nothing else breaks;
 * - the adapter still requires user_id (DVOICE_ERR_INVALID_ARGUMENT).
 */
#include <jansson.h>

#include <dvoice/sim.h>

#include "../interop/dvt_net.h"
#include "audio/dv_opus.h"
#include "dvt_join.h"

#define TOKEN_A "UID.token.a"
#define TOKEN_B "UID.token.b"
#define GUILD 515151515151ull
#define USER_A 626262626262ull
#define USER_B 737373737373ull
#define CHAN 848484848484ull
#define NFRAMES 50
#define TOTAL 100 /* 2 s */

typedef struct fx fx;

/* One bot: its client, its connection and what it saw. */
typedef struct bot {
  fx *f;
  const char *name;
  dvoice_client *cl;
  dvoice_conn *conn;
  int join_on_ready; /* join from on_gateway(READY), not before */
  uint64_t ready_user;
  char joins[256], gws[128];
  int ready, stream_ended, ended, conn_closed, client_closed;
  dvoice_join_reason end_reason;
  int to_send, sent;
} bot;

struct fx {
  uv_loop_t loop;
  dvt_env env;
  dvoice_sim *sim;
  dvoice_conn_settings tmpl;
  bot a, b;
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  int sim_closed;
};

/* |part| is "gateway" or "voice". */
static long long report_sum(fx *f, const char *part, const char *key) {
  static char buf[65536];
  long n = dvoice_sim_report(f->sim, buf, sizeof(buf));
  json_t *root;
  long long v;
  assert_true(n > 0 && (size_t)n < sizeof(buf));
  assert_null(strstr(buf, TOKEN_A));
  assert_null(strstr(buf, TOKEN_B));
  root = json_loads(buf, 0, NULL);
  assert_non_null(root);
  v = dvt_json_sum_key(json_object_get(root, part), key);
  json_decref(root);
  if (getenv("DVT_VERBOSE") != NULL) {
    printf("# report %s\n", buf);
  }
  return v;
}

static void push_some(bot *b) {
  while (b->conn != NULL && b->sent < b->to_send) {
    int rv = dvoice_conn_send_opus(b->conn, b->f->frames[b->sent % NFRAMES],
                                   b->f->lens[b->sent % NFRAMES]);
    if (rv == DVOICE_ERR_NOBUF) {
      return;
    }
    assert_int_equal(rv, 0);
    b->sent++;
  }
}

/* ---- callbacks -------------------------------------------------------------
 */

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  bot *b = ud;
  assert_ptr_equal(c, b->conn);
  printf("# %s state %s (reason %s, close %d)\n", b->name,
         dvoice_conn_state_name(ev->state), dvoice_conn_reason_name(ev->reason),
         ev->close_code);
  if (ev->state == DVOICE_CONN_READY) {
    b->ready++;
    push_some(b);
  }
}

static void on_drain(dvoice_conn *c, void *ud) {
  (void)c;
  push_some(ud);
}

static void on_stream(dvoice_conn *c, int active, void *ud) {
  bot *b = ud;
  (void)c;
  if (!active) {
    b->stream_ended++;
  }
}

static void join(bot *b) {
  dvoice_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  cb.on_drain = on_drain;
  cb.on_stream = on_stream;
  assert_int_equal(dvoice_client_join(b->cl, GUILD, CHAN, 0, &cb, b, &b->conn),
                   0);
  assert_non_null(b->conn);
}

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  bot *b = ud;
  assert_ptr_equal(cl, b->cl);
  assert_ptr_equal(c, b->conn);
  dvt_append(b->joins, sizeof(b->joins), dvoice_join_state_name(ev->state));
  printf("# %s join %s (reason %s)\n", b->name,
         dvoice_join_state_name(ev->state),
         dvoice_join_reason_name(ev->reason));
  if (ev->state == DVOICE_JOIN_ENDED) {
    b->ended++;
    b->end_reason = ev->reason;
  }
}

static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  bot *b = ud;
  assert_ptr_equal(cl, b->cl);
  dvt_append(b->gws, sizeof(b->gws), dvoice_gateway_state_name(ev->state));
  if (ev->state == DVOICE_GATEWAY_READY) {
    b->ready_user = ev->user_id;
    if (b->join_on_ready && b->conn == NULL) {
      join(b);
    }
  } else {
    assert_true(ev->user_id == 0 || ev->user_id == b->ready_user);
  }
}

static void conn_closed(dvoice_conn *c, void *ud) {
  bot *b = ud;
  (void)c;
  b->conn_closed++;
}

static void client_closed(dvoice_client *cl, void *ud) {
  bot *b = ud;
  (void)cl;
  b->client_closed++;
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  fx *f = ud;
  (void)sim;
  f->sim_closed++;
}

/* ---- fixture ---------------------------------------------------------------
 */

static void fx_start(fx *f) {
  dvoice_sim_settings ss;
  uint64_t chans[1] = {CHAN};
  memset(f, 0, sizeof(*f));
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
  assert_int_equal(dvoice_sim_add_bot(f->sim, TOKEN_A, USER_A), 0);
  assert_int_equal(dvoice_sim_add_bot(f->sim, TOKEN_B, USER_B), 0);
  assert_int_equal(dvoice_sim_add_guild(f->sim, GUILD, chans, 1), 0);
  dvoice_conn_settings_default(&f->tmpl);
  f->tmpl.tls.ca_file = dvoice_sim_ca_file(f->sim);
}

/* A built-in client for |token| with |user_id| (0: from READY). */
static void bot_new(fx *f, bot *b, const char *name, const char *token,
                    uint64_t user_id, dvoice_tstamp join_timeout) {
  dvoice_client_settings cs;
  dvoice_client_callbacks ccb;
  b->f = f;
  b->name = name;
  dvoice_client_settings_default(&cs);
  cs.env = f->env.env;
  cs.user_id = user_id;
  cs.token = token;
  cs.gateway_url = dvoice_sim_gateway_url(f->sim);
  cs.conn = &f->tmpl;
  cs.join_timeout = join_timeout;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_join = on_join;
  ccb.on_gateway = on_gateway;
  assert_int_equal(dvoice_client_new(&b->cl, &f->loop, &cs, &ccb, b), 0);
}

static void bot_close(fx *f, bot *b) {
  assert_int_equal(dvoice_client_close(b->cl, client_closed), 0);
  dvt_run_flag(&f->loop, &b->client_closed, 5000);
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_sim_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_false(dvt_log_contains(&f->env.log, TOKEN_A));
  assert_false(dvt_log_contains(&f->env.log, TOKEN_B));
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  dvt_env_free(&f->env);
}

static int both_going(void *ud) {
  fx *f = ud;
  return f->a.sent == f->a.to_send && f->a.stream_ended > 0 && f->b.ready > 0;
}

static int b_ended(void *ud) {
  fx *f = ud;
  return f->b.ended > 0;
}

static int silence_seen(void *ud) {
  return report_sum(ud, "voice", "silence_frames") >= 5;
}

static int three_op4(void *ud) {
  return report_sum(ud, "gateway", "voice_state_updates") >= 3;
}

/* ---- tests -----------------------------------------------------------------
 */

static void test_learn_from_ready(void **state) {
  fx *f = malloc(sizeof(*f));
  (void)state;
  assert_non_null(f);
  fx_start(f);
  bot_new(f, &f->a, "A", TOKEN_A, 0, 0);
  bot_new(f, &f->b, "B", TOKEN_B, 0, 0);
  f->b.join_on_ready = 1;
  /* A joins before READY, with no user id known anywhere yet. */
  f->a.to_send = TOTAL;
  join(&f->a);
  assert_string_equal(f->a.gws, "");

  assert_int_equal(dvt_run_until(&f->loop, both_going, f, 20000), 0);
  assert_string_equal(f->a.gws, "CONNECTING READY");
  assert_string_equal(f->b.gws, "CONNECTING READY");
  assert_true(f->a.ready_user == USER_A);
  assert_true(f->b.ready_user == USER_B);
  assert_string_equal(f->a.joins, "SIGNALLING CONNECTED");
  assert_string_equal(f->b.joins, "SIGNALLING CONNECTED");
  assert_int_equal(f->a.ready, 1);
  assert_int_equal(f->b.ready, 1);
  /* Both voice Identifies carried the token's user id: the simulator
   * closes a mismatch with 4004 and records it. */
  assert_int_equal(report_sum(f, "voice", "identifies"), 2);
  assert_int_equal(dvoice_sim_violation_count(f->sim), 0);
  assert_int_equal(dvt_run_until(&f->loop, silence_seen, f, 5000), 0);
  assert_int_equal(report_sum(f, "voice", "decrypt_failures"), 0);
  assert_true(report_sum(f, "voice", "received") >= TOTAL + 5);

  /* B is kicked: its own voice state ends its join; A, which sees B's
   * voice states too, carries on. */
  assert_int_equal(
      dvoice_sim_command_run(f->sim, DVOICE_SIM_KICK, USER_B, GUILD, 0), 0);
  assert_int_equal(dvt_run_until(&f->loop, b_ended, f, 10000), 0);
  assert_int_equal(f->b.end_reason, DVOICE_JOIN_REASON_KICKED);
  assert_string_equal(f->b.joins, "SIGNALLING CONNECTED ENDED");
  assert_string_equal(f->a.joins, "SIGNALLING CONNECTED");
  assert_int_equal(dvoice_conn_get_state(f->a.conn), DVOICE_CONN_READY);

  /* A leaves: op 4 join A, join B, leave A. */
  assert_int_equal(dvoice_client_leave(f->a.cl, f->a.conn, conn_closed), 0);
  f->a.conn = NULL;
  dvt_run_flag(&f->loop, &f->a.conn_closed, 5000);
  assert_int_equal(dvt_run_until(&f->loop, three_op4, f, 5000), 0);
  assert_int_equal(report_sum(f, "gateway", "voice_state_updates"), 3);
  assert_int_equal(dvoice_conn_close(f->b.conn, conn_closed), 0);
  f->b.conn = NULL;
  dvt_run_flag(&f->loop, &f->b.conn_closed, 5000);
  assert_int_equal(dvoice_sim_violation_count(f->sim), 0);
  bot_close(f, &f->a);
  bot_close(f, &f->b);
  fx_stop(f);
  free(f);
}

static int a_ended(void *ud) {
  fx *f = ud;
  return f->a.ended > 0;
}

/* A configured id that READY contradicts is kept, as documented: voice
 * states are matched against it, so the join times out. */
static void test_configured_mismatch(void **state) {
  fx *f = malloc(sizeof(*f));
  (void)state;
  assert_non_null(f);
  fx_start(f);
  bot_new(f, &f->a, "A", TOKEN_A, USER_B, 800 * DVOICE_MS);
  join(&f->a);
  assert_int_equal(dvt_run_until(&f->loop, a_ended, f, 10000), 0);
  assert_true(f->a.ready_user == USER_A);
  assert_int_equal(f->a.end_reason, DVOICE_JOIN_REASON_TIMEOUT);
  assert_string_equal(f->a.joins, "SIGNALLING ENDED");
  assert_int_equal(f->a.ready, 0);
  assert_true(dvt_log_contains(&f->env.log, "READY for user"));
  assert_int_equal(report_sum(f, "voice", "identifies"), 0);
  assert_int_equal(dvoice_conn_close(f->a.conn, conn_closed), 0);
  f->a.conn = NULL;
  dvt_run_flag(&f->loop, &f->a.conn_closed, 5000);
  bot_close(f, &f->a);
  fx_stop(f);
  free(f);
}

static int send_voice_state(dvoice_client *cl, uint64_t guild_id,
                            uint64_t channel_id, int self_mute, int self_deaf,
                            void *user_data) {
  (void)cl;
  (void)guild_id;
  (void)channel_id;
  (void)self_mute;
  (void)self_deaf;
  (void)user_data;
  return 0;
}

static void closed_flag(dvoice_client *cl, void *ud) {
  (void)cl;
  (*(int *)ud)++;
}

/* The adapter path still needs the id; the built-in one accepts 0. */
static void test_settings(void **state) {
  uv_loop_t loop;
  dvoice_client_settings cs;
  dvoice_gateway_adapter ad = {send_voice_state};
  dvoice_client *cl = (dvoice_client *)&loop;
  int closed = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dvoice_client_settings_default(&cs);
  cs.adapter = &ad;
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(cl);
  /* An adapter and a token: the adapter is used, so the id is needed. */
  cs.token = TOKEN_A;
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(cl);
  cs.user_id = USER_A;
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, &closed), 0);
  assert_int_equal(dvoice_client_close(cl, closed_flag), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(closed, 1);
  /* Built-in: user_id 0 is accepted (nothing listens at this URL; the
   * client is closed before it gets anywhere). */
  cs.adapter = NULL;
  cs.user_id = 0;
  cs.gateway_url = "ws://127.0.0.1:9/?v=10&encoding=json";
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, &closed), 0);
  assert_int_equal(dvoice_client_close(cl, closed_flag), 0);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(closed, 2);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_settings),
      cmocka_unit_test(test_learn_from_ready),
      cmocka_unit_test(test_configured_mismatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
