/*
 * Integration tests for dvoice_client with its BUILT-IN main gateway
 * against the public simulator (dvoice/sim.h) on loopback, wss:// with the
 * simulator's CA: the seed flow (join before READY, speak 2 s of Opus,
 * five silence frames, leave), kicked mid-stream, moved mid-stream, and
 * op 7 Reconnect mid-stream (the gateway resumes; the voice connection is
 * not touched), region change mid-stream (arikawa's TestRegionChange), and
 * join and leave three times in a row from inside callbacks (arikawa's race
 * test: leave on READY, leave while the join is pending, kicked and joined
 * again from the ENDED event). Assertions are on the simulator's JSON
 * report (op 4 sequence, per-server voice sessions, media) and on the
 * event sequences the application saw; every test ends with
 * dvt_loop_teardown().
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

enum scenario {
  SC_STREAM,
  SC_KICK,
  SC_MOVE,
  SC_RECONNECT,
  SC_REGION,
  SC_RACE_READY,     /* leave on READY, join again from the close callback */
  SC_RACE_CONNECTED, /* the same from on_join CONNECTED, mid-handshake */
  SC_RACE_SAME,      /* leave and join again, both inside on_state READY */
  SC_RACE_PENDING,   /* leave on SIGNALLING, before both voice events */
  SC_RACE_KICK       /* kicked on READY, join again from on_join ENDED */
};

#define ROUNDS 3

typedef struct fx {
  uv_loop_t loop;
  dvt_env env;
  enum scenario sc;
  dvoice_sim *sim;
  dvoice_client *cl;
  dvoice_conn *conn;
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  char joins[512], gws[256], states[512];
  int guild_creates;
  int ready, stream_ended, disconnected, ended;
  dvoice_join_reason end_reason;
  int conn_closed, sim_closed, client_closed;
  int to_send, sent, acted;
  int send_after_end;
  /* Races: one round per join; what ended each. */
  int rounds;
  dvoice_join_reason reasons[ROUNDS + 1];
  uint64_t round_channel[ROUNDS + 2];
} fx;

static void start_join(fx *f, uint64_t channel);

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
  v = dvt_json_sum_key(json_object_get(root, part), key);
  json_decref(root);
  return v;
}

static json_t *report_load(fx *f) {
  static char buf[65536];
  long n = dvoice_sim_report(f->sim, buf, sizeof(buf));
  json_t *root;
  assert_true(n > 0 && (size_t)n < sizeof(buf));
  assert_null(strstr(buf, TOKEN));
  root = json_loads(buf, 0, NULL);
  assert_non_null(root);
  return root;
}

/* Sums |key| over voice server |i|'s sessions (0: the first region). */
static long long report_server(fx *f, int i, const char *key) {
  json_t *root = report_load(f);
  json_t *v = json_array_get(json_object_get(root, "voice"), (size_t)i);
  long long n;
  assert_non_null(v);
  n = dvt_json_sum_key(json_object_get(v, "sessions"), key);
  json_decref(root);
  return n;
}

/* Sessions registered with voice server |i| (one per join the main
 * gateway answered there). */
static size_t report_server_sessions(fx *f, int i) {
  json_t *root = report_load(f);
  json_t *v = json_array_get(json_object_get(root, "voice"), (size_t)i);
  size_t n;
  assert_non_null(v);
  n = json_array_size(json_object_get(v, "sessions"));
  json_decref(root);
  return n;
}

/* |key| of voice server |i|'s session |k|, in registration order. */
static long long report_session(fx *f, int i, size_t k, const char *key) {
  json_t *root = report_load(f);
  json_t *v = json_array_get(json_object_get(root, "voice"), (size_t)i);
  json_t *sess = json_array_get(json_object_get(v, "sessions"), k);
  long long n;
  assert_non_null(sess);
  n = dvt_json_sum_key(sess, key);
  json_decref(root);
  return n;
}

/* The op 4 channels the main gateway received, in order, as a
 * space-separated list ("null" for a leave); the bot has one session. */
static void report_op4(fx *f, char *out, size_t cap) {
  json_t *root = report_load(f);
  json_t *sessions =
      json_object_get(json_object_get(root, "gateway"), "sessions");
  json_t *chans, *c;
  size_t i;
  assert_int_equal(json_array_size(sessions), 1);
  chans = json_object_get(json_array_get(sessions, 0), "op4_channels");
  assert_true(json_is_array(chans));
  out[0] = 0;
  json_array_foreach(chans, i, c) {
    dvt_append(out, cap, json_is_string(c) ? json_string_value(c) : "null");
  }
  json_decref(root);
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

/* Channel of race round |k| (1-based): CHAN1, CHAN2, CHAN1, ... */
static uint64_t round_chan(int k) {
  return k % 2 ? CHAN1 : CHAN2;
}

/* A race round's connection finished closing: the next round joins from
 * here (SC_RACE_READY, SC_RACE_PENDING). */
static void race_closed(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  f->conn_closed++;
  f->conn = NULL;
  if (((f->sc == SC_RACE_READY || f->sc == SC_RACE_CONNECTED) &&
       f->rounds < ROUNDS) ||
      (f->sc == SC_RACE_PENDING && f->rounds <= ROUNDS)) {
    start_join(f, round_chan(f->rounds + 1));
  }
}

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  fx *f = ud;
  assert_ptr_equal(cl, f->cl);
  assert_ptr_equal(c, f->conn);
  assert_true(ev->guild_id == GUILD);
  dvt_append(f->joins, sizeof(f->joins), dvoice_join_state_name(ev->state));
  printf("# join %s (reason %s, channel %llu)\n",
         dvoice_join_state_name(ev->state), dvoice_join_reason_name(ev->reason),
         (unsigned long long)ev->channel_id);
  if (ev->state != DVOICE_JOIN_ENDED) {
    assert_int_equal(ev->reason, DVOICE_JOIN_REASON_NONE);
  }
  if (ev->state == DVOICE_JOIN_SIGNALLING && f->sc == SC_RACE_PENDING &&
      f->rounds < ROUNDS) {
    /* Leave before either voice event of this join arrived. */
    assert_int_equal(ev->old_state, 0);
    f->round_channel[f->rounds++] = ev->channel_id;
    assert_int_equal(dvoice_client_leave(cl, c, race_closed), 0);
    return;
  }
  if (ev->state == DVOICE_JOIN_CONNECTED && f->sc == SC_RACE_CONNECTED) {
    /* Leave while the voice handshake has just started. */
    f->rounds++;
    assert_int_equal(dvoice_client_leave(cl, c, race_closed), 0);
    return;
  }
  if (ev->state == DVOICE_JOIN_ENDED) {
    f->ended++;
    f->end_reason = ev->reason;
    if (f->sc == SC_RACE_KICK) {
      dvoice_conn *old = c;
      assert_true(f->rounds >= 1 && f->rounds <= ROUNDS);
      f->reasons[f->rounds - 1] = ev->reason;
      /* Join again first (the ended join still holds the guild), then
       * close the ended connection: no op 4 leave for it. */
      if (f->rounds < ROUNDS) {
        start_join(f, round_chan(f->rounds + 1));
        assert_ptr_not_equal(f->conn, old);
      } else {
        f->conn = NULL;
      }
      f->send_after_end = dvoice_conn_send_opus(old, f->frames[0], f->lens[0]);
      assert_int_equal(dvoice_conn_get_state(old), DVOICE_CONN_DISCONNECTED);
      assert_int_equal(dvoice_client_leave(cl, old, conn_closed), 0);
    }
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
  dvt_append(f->states, sizeof(f->states), dvoice_conn_state_name(ev->state));
  if (ev->state == DVOICE_CONN_READY) {
    f->ready++;
    switch (f->sc) {
      case SC_RACE_READY:
        f->rounds++;
        assert_int_equal(dvoice_client_leave(f->cl, c, race_closed), 0);
        return;
      case SC_RACE_SAME:
        /* Leave and join again without returning to the loop. */
        f->rounds++;
        assert_int_equal(dvoice_client_leave(f->cl, c, conn_closed), 0);
        f->conn = NULL;
        if (f->rounds < ROUNDS) {
          start_join(f, round_chan(f->rounds + 1));
        }
        return;
      case SC_RACE_KICK:
        /* Someone disconnects the bot as soon as it is in. */
        f->rounds++;
        assert_int_equal(
            dvoice_sim_command_run(f->sim, DVOICE_SIM_KICK, USER, GUILD, 0), 0);
        return;
      default:
        break;
    }
    push_some(f);
  }
  if (ev->state == DVOICE_CONN_DISCONNECTED) {
    f->disconnected++;
    assert_int_equal(ev->reason, DVOICE_CONN_REASON_JOIN_ENDED);
    f->send_after_end = dvoice_conn_send_opus(c, f->frames[0], f->lens[0]);
    assert_int_equal(f->send_after_end, DVOICE_ERR_INVALID_STATE);
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

static void start_join(fx *f, uint64_t channel) {
  dvoice_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  cb.on_drain = on_drain;
  cb.on_stream = on_stream;
  f->conn = NULL;
  assert_int_equal(dvoice_client_join(f->cl, GUILD, channel,
                                      DVOICE_JOIN_SELF_DEAF, &cb, f, &f->conn),
                   0);
  assert_non_null(f->conn);
}

static void fx_start(fx *f, enum scenario sc) {
  dvoice_sim_settings ss;
  dvoice_client_settings cs;
  dvoice_conn_settings tmpl;
  dvoice_client_callbacks ccb;
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
  if (sc == SC_STREAM) {
    f->to_send = TOTAL;
  } else if (sc < SC_RACE_READY) {
    f->to_send = TOTAL / 2;
  }
  start_join(f, CHAN1);
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

/*
 * The join events with WAIT_SERVER taken out: a kick sends the null
 * channel on the main gateway and 4014 on the voice WebSocket, and either
 * may reach the client first (4014 first shows WAIT_SERVER before ENDED).
 * Returns how many were taken out.
 */
static int joins_without_wait(const fx *f, char *out, size_t cap) {
  char copy[512];
  char *tok, *save = NULL;
  int n = 0;
  snprintf(copy, sizeof(copy), "%s", f->joins);
  out[0] = 0;
  for (tok = strtok_r(copy, " ", &save); tok != NULL;
       tok = strtok_r(NULL, " ", &save)) {
    if (strcmp(tok, "WAIT_SERVER") == 0) {
      n++;
    } else {
      dvt_append(out, cap, tok);
    }
  }
  return n;
}

static int never(void *ud) {
  (void)ud;
  return 0;
}

/* Lets the loop run |ms| so that anything wrongly queued would go out. */
static void settle(fx *f, unsigned ms) {
  assert_int_equal(dvt_run_until(&f->loop, never, f, ms), -1);
}

static void test_kicked(void **state) {
  fx f;
  char op4[256], joins[512];
  dvoice_conn_stats st;
  (void)state;
  fx_start(&f, SC_KICK);
  assert_int_equal(dvt_run_until(&f.loop, half_sent, &f, 20000), 0);
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_KICK, USER, GUILD, 0), 0);
  assert_int_equal(dvt_run_until(&f.loop, kicked_done, &f, 10000), 0);
  /* The application is told once, by both layers, and why. */
  assert_int_equal(f.ended, 1);
  assert_int_equal(f.disconnected, 1);
  assert_int_equal(f.end_reason, DVOICE_JOIN_REASON_KICKED);
  assert_true(strcmp(f.joins, "SIGNALLING CONNECTED ENDED") == 0 ||
              strcmp(f.joins, "SIGNALLING CONNECTED WAIT_SERVER ENDED") == 0);
  snprintf(joins, sizeof(joins), "%s", f.joins);
  assert_int_equal(f.send_after_end, DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dvoice_conn_get_state(f.conn), DVOICE_CONN_DISCONNECTED);
  assert_true(report_sum(&f, "voice", "received") > 0);
  assert_int_equal(report_sum(&f, "voice", "decrypt_failures"), 0);
  /* The ended connection stays until the application closes it, and
   * nothing more is sent or reported meanwhile. */
  assert_int_equal(dvoice_conn_get_stats(f.conn, &st), 0);
  settle(&f, 300);
  assert_int_equal(f.conn_closed, 0);
  assert_string_equal(f.joins, joins);
  {
    dvoice_conn_stats st2;
    assert_int_equal(dvoice_conn_get_stats(f.conn, &st2), 0);
    assert_true(st2.packets_sent == st.packets_sent);
  }
  /* Nothing hangs: closing the ended connection sends no op 4. */
  assert_int_equal(dvoice_conn_close(f.conn, conn_closed), 0);
  f.conn = NULL;
  dvt_run_flag(&f.loop, &f.conn_closed, 5000);
  settle(&f, 200);
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333");
  assert_int_equal(f.ended, 1);
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

static int region0_streaming(void *ud) {
  fx *f = ud;
  return f->sent == f->to_send && report_server(f, 0, "received") >= 10;
}

/*
 * Region change mid-stream (arikawa's TestRegionChange): the main gateway
 * sends VOICE_SERVER_UPDATE with a null endpoint, the first server closes
 * 4014, then both dispatches point at the other server. The join waits
 * for the server and renews the same connection there with a fresh
 * Identify; the frames queued meanwhile are sent to the new server.
 */
static void test_region_change(void **state) {
  fx f;
  char op4[256];
  dvoice_conn_stats st;
  long long r0, r1;
  (void)state;
  fx_start(&f, SC_REGION);
  assert_int_equal(dvt_run_until(&f.loop, region0_streaming, &f, 20000), 0);
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_REGION_CHANGE, USER, GUILD, 0),
      0);
  f.to_send = TOTAL;
  push_some(&f);
  assert_int_equal(dvt_run_until(&f.loop, stream_done, &f, 30000), 0);
  check_media(&f, TOTAL);
  /* The join's states, and the connection's: one handshake per server. */
  assert_string_equal(f.joins, "SIGNALLING CONNECTED WAIT_SERVER CONNECTED");
  assert_int_equal(f.ended, 0);
  assert_int_equal(f.ready, 2);
  assert_int_equal(f.disconnected, 0);
  /* The new server's dispatches usually overtake the old server's 4014;
   * when they do not, the connection shows WAIT_SERVER in between. */
  assert_true(
      strcmp(f.states, "CONNECTING READY CONNECTING READY") == 0 ||
      strcmp(f.states, "CONNECTING READY WAIT_SERVER CONNECTING READY") == 0);
  /* A fresh Identify on each server, no resume of the old session. */
  assert_int_equal(report_server_sessions(&f, 0), 1);
  assert_int_equal(report_server_sessions(&f, 1), 1);
  assert_int_equal(report_server(&f, 0, "identifies"), 1);
  assert_int_equal(report_server(&f, 1, "identifies"), 1);
  assert_int_equal(report_sum(&f, "voice", "resumes"), 0);
  assert_int_equal(report_server(&f, 0, "last_close_code"), 4014);
  /* Playback continued on the new server and ended there properly. */
  r0 = report_server(&f, 0, "received");
  r1 = report_server(&f, 1, "received");
  printf("# region change: %lld packets to the first server, %lld to the "
         "second\n",
         r0, r1);
  assert_true(r0 >= 10);
  assert_true(r1 > 5);
  assert_int_equal(report_server(&f, 1, "decrypted"), r1);
  assert_int_equal(report_server(&f, 1, "missing"), 0);
  assert_int_equal(report_server(&f, 1, "silence_frames"), 5);
  assert_int_equal(report_server(&f, 0, "silence_frames"), 0);
  /* No frame the application pushed was lost: each one left once, and
   * the servers received every packet sent. */
  assert_int_equal(dvoice_conn_get_stats(f.conn, &st), 0);
  assert_int_equal(st.prepare_errors, 0);
  assert_int_equal(st.send_errors, 0);
  assert_int_equal(st.packets_sent, TOTAL + 5);
  assert_int_equal(st.silence_sent, 5);
  assert_int_equal(st.streams, 1);
  assert_int_equal(r0 + r1, TOTAL + 5);
  /* The region change asked nothing of the main gateway. */
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333");
  assert_string_equal(f.gws, "CONNECTING READY");
  leave_and_check(&f);
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333 null");
  fx_stop(&f);
}

/* ---- join and leave three times from inside callbacks ----------------------
 */

static int race_done(void *ud) {
  fx *f = ud;
  return f->rounds == ROUNDS && f->conn_closed == ROUNDS;
}

static int op4_six(void *ud) {
  return report_sum(ud, "gateway", "voice_state_updates") >= 2 * ROUNDS;
}

/* The three rounds as the simulator saw them: join and leave, each join a
 * fresh voice session on the first server, identified |identifies| times
 * (-1: at most once). */
static void check_three_rounds(fx *f, long long identifies) {
  char op4[256];
  assert_int_equal(dvt_run_until(&f->loop, op4_six, f, 5000), 0);
  settle(f, 200);
  report_op4(f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333 null 444444444444 null "
                           "333333333333 null");
  assert_int_equal(report_server_sessions(f, 0), ROUNDS);
  assert_int_equal(report_server_sessions(f, 1), 0);
  for (size_t k = 0; k < ROUNDS; k++) {
    if (identifies >= 0) {
      assert_int_equal(report_session(f, 0, k, "identifies"), identifies);
    } else {
      /* Left mid-handshake: the Identify may or may not have gone out. */
      assert_true(report_session(f, 0, k, "identifies") <= 1);
    }
  }
  assert_int_equal(report_sum(f, "gateway", "identifies"), 1);
  assert_string_equal(f->gws, "CONNECTING READY");
  /* No join event for a connection the application closed. */
  assert_int_equal(f->ended, 0);
  assert_int_equal(f->disconnected, 0);
  if (dvoice_sim_violation_count(f->sim) != 0) {
    print_report(f);
    fail_msg("%zu violations", dvoice_sim_violation_count(f->sim));
  }
}

/* Leave from on_state READY; join again from the leave's close callback. */
static void test_race(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_RACE_READY);
  assert_int_equal(dvt_run_until(&f.loop, race_done, &f, 20000), 0);
  assert_null(f.conn);
  assert_int_equal(f.ready, ROUNDS);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED SIGNALLING CONNECTED "
                               "SIGNALLING CONNECTED");
  assert_string_equal(f.states, "CONNECTING READY CONNECTING READY "
                                "CONNECTING READY");
  check_three_rounds(&f, 1);
  fx_stop(&f);
}

/* Leave and join again inside the same on_state READY call. */
static void test_race_same_callback(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_RACE_SAME);
  assert_int_equal(dvt_run_until(&f.loop, race_done, &f, 20000), 0);
  assert_null(f.conn);
  assert_int_equal(f.ready, ROUNDS);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED SIGNALLING CONNECTED "
                               "SIGNALLING CONNECTED");
  check_three_rounds(&f, 1);
  fx_stop(&f);
}

/* Leave from on_join CONNECTED (the voice WebSocket is being opened);
 * join again from the close callback. */
static void test_race_connected(void **state) {
  fx f;
  (void)state;
  fx_start(&f, SC_RACE_CONNECTED);
  assert_int_equal(dvt_run_until(&f.loop, race_done, &f, 20000), 0);
  assert_null(f.conn);
  assert_string_equal(f.joins, "SIGNALLING CONNECTED SIGNALLING CONNECTED "
                               "SIGNALLING CONNECTED");
  /* Each connection was closed before READY. */
  assert_int_equal(f.ready, 0);
  assert_string_equal(f.states, "CONNECTING CONNECTING CONNECTING");
  printf("# states: %s; voice identifies %lld\n", f.states,
         report_sum(&f, "voice", "identifies"));
  check_three_rounds(&f, -1);
  fx_stop(&f);
}

static int pending_done(void *ud) {
  fx *f = ud;
  return f->conn_closed == ROUNDS && f->ready > 0;
}

/*
 * Leave while the join is pending (on SIGNALLING, before either voice
 * event), three times, then a fourth join that stays: the answers to the
 * abandoned joins arrive while later joins wait, and must not be paired
 * with them. The fourth join connects to its own voice session.
 */
static void test_race_pending(void **state) {
  fx f;
  char op4[256];
  (void)state;
  fx_start(&f, SC_RACE_PENDING);
  assert_int_equal(dvt_run_until(&f.loop, pending_done, &f, 20000), 0);
  assert_int_equal(f.rounds, ROUNDS);
  assert_true(f.round_channel[0] == CHAN1 && f.round_channel[1] == CHAN2 &&
              f.round_channel[2] == CHAN1);
  assert_string_equal(f.joins, "SIGNALLING SIGNALLING SIGNALLING SIGNALLING "
                               "CONNECTED");
  assert_string_equal(f.states, "CONNECTING READY");
  assert_int_equal(f.ready, 1);
  assert_int_equal(f.ended, 0);
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333 null 444444444444 null "
                           "333333333333 null 444444444444");
  /* Four sessions registered; only the last one was used. */
  assert_int_equal(report_server_sessions(&f, 0), ROUNDS + 1);
  for (size_t k = 0; k < ROUNDS; k++) {
    assert_int_equal(report_session(&f, 0, k, "identifies"), 0);
  }
  assert_int_equal(report_session(&f, 0, ROUNDS, "identifies"), 1);
  /* The join is usable: a short stream reaches the server. */
  f.to_send = 10;
  push_some(&f);
  assert_int_equal(dvt_run_until(&f.loop, stream_done, &f, 10000), 0);
  assert_int_equal(dvt_run_until(&f.loop, silence_seen, &f, 5000), 0);
  assert_int_equal(report_session(&f, 0, ROUNDS, "received"), 15);
  assert_int_equal(report_session(&f, 0, ROUNDS, "decrypted"), 15);
  assert_int_equal(dvoice_client_leave(f.cl, f.conn, conn_closed), 0);
  f.conn = NULL;
  dvt_run_flag(&f.loop, &f.conn_closed, 5000);
  settle(&f, 200);
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333 null 444444444444 null "
                           "333333333333 null 444444444444 null");
  if (dvoice_sim_violation_count(f.sim) != 0) {
    print_report(&f);
    fail_msg("%zu violations", dvoice_sim_violation_count(f.sim));
  }
  fx_stop(&f);
}

static int kick_race_done(void *ud) {
  fx *f = ud;
  return f->ended == ROUNDS && f->conn_closed == ROUNDS;
}

/*
 * Kicked as soon as READY, three times; each time the application joins
 * again from inside on_join ENDED, then closes the ended connection.
 */
static void test_race_kicked(void **state) {
  fx f;
  char op4[256];
  (void)state;
  fx_start(&f, SC_RACE_KICK);
  assert_int_equal(dvt_run_until(&f.loop, kick_race_done, &f, 20000), 0);
  settle(&f, 200);
  assert_null(f.conn);
  assert_int_equal(f.rounds, ROUNDS);
  assert_int_equal(f.ready, ROUNDS);
  for (int k = 0; k < ROUNDS; k++) {
    assert_int_equal(f.reasons[k], DVOICE_JOIN_REASON_KICKED);
  }
  assert_int_equal(f.ended, ROUNDS);
  assert_int_equal(f.send_after_end, DVOICE_ERR_INVALID_STATE);
  {
    char joins[512];
    int waits = joins_without_wait(&f, joins, sizeof(joins));
    printf("# %d of %d kicks reached the client as 4014 first\n", waits,
           ROUNDS);
    assert_true(waits <= ROUNDS);
    assert_string_equal(joins, "SIGNALLING CONNECTED ENDED SIGNALLING "
                               "CONNECTED ENDED SIGNALLING CONNECTED ENDED");
  }
  /* Kicked joins send no leave. */
  report_op4(&f, op4, sizeof(op4));
  assert_string_equal(op4, "333333333333 444444444444 333333333333");
  assert_int_equal(report_server_sessions(&f, 0), ROUNDS);
  for (size_t k = 0; k < ROUNDS; k++) {
    assert_int_equal(report_session(&f, 0, k, "identifies"), 1);
    assert_int_equal(report_session(&f, 0, k, "last_close_code"), 4014);
  }
  assert_string_equal(f.gws, "CONNECTING READY");
  if (dvoice_sim_violation_count(f.sim) != 0) {
    print_report(&f);
    fail_msg("%zu violations", dvoice_sim_violation_count(f.sim));
  }
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
      cmocka_unit_test(test_bad_settings),
      cmocka_unit_test(test_stream),
      cmocka_unit_test(test_kicked),
      cmocka_unit_test(test_moved),
      cmocka_unit_test(test_reconnect),
      cmocka_unit_test(test_region_change),
      cmocka_unit_test(test_race),
      cmocka_unit_test(test_race_same_callback),
      cmocka_unit_test(test_race_connected),
      cmocka_unit_test(test_race_pending),
      cmocka_unit_test(test_race_kicked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
