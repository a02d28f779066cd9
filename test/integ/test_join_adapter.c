/*
 * Integration tests for dvoice_client through the ADAPTER against the
 * simulator's voice side on loopback: the test plays the application's main
 * gateway (it answers op 4 by registering a session with the simulator and
 * feeding VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE, alternating their
 * order and alternating raw JSON and typed entry points). Scenarios follow
 * the seed (arikawa): join, speak, 10 s of Opus, stop with five silence
 * frames, leave; moved mid-stream; region change mid-stream
 * (TestRegionChange); kicked mid-stream (TestKickedOut); join and leave
 * three times from inside callbacks (the race test); a join that gets no
 * answer. Assertions are on the simulator's report and event sequences.
 */
#include "../interop/dvt_net.h"

#include "audio/dv_opus.h"
#include "dvt_join.h"
#include "../sim/sim_uv.h"

#define GUILD 111111111111ull
#define GUILD_S "111111111111"
#define USER 222222222222ull
#define USER_S "222222222222"
#define CHAN1 333333333333ull
#define CHAN2 444444444444ull
#define NFRAMES 50

enum scenario { SC_STREAM, SC_MOVE, SC_REGION, SC_KICK, SC_RACE, SC_NOANSWER };

typedef struct fx {
  uv_loop_t loop;
  enum scenario sc;
  dv_sim_uv *sim[2];
  int cur_sim;             /* where the test's gateway sends the bot */
  dv_sim_session *sess[8]; /* every session registered, in order */
  int nsess;
  dvoice_client *cl;
  dvoice_conn *conn;
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  /* The application's gateway. */
  uint64_t op4[16];
  int nop4;
  int answer; /* answer op 4 with a channel */
  /* What the application saw. */
  char joins[512];
  char states[512];
  int ready, stream_ended, disconnected, ended;
  dvoice_join_reason end_reason;
  int conn_closed, sim_closed, client_closed;
  /* Sending. */
  int to_send, sent;
  int acted; /* the mid-stream action ran */
  int send_after_kick;
  /* Race. */
  int rounds;
  uv_timer_t poll;
} fx;

static void push_some(fx *f) {
  while (f->sent < f->to_send) {
    int rv = dvoice_conn_send_opus(f->conn, f->frames[f->sent % NFRAMES],
                                   f->lens[f->sent % NFRAMES]);
    if (rv == DVOICE_ERR_NOBUF) {
      return;
    }
    assert_int_equal(rv, 0);
    f->sent++;
  }
}

/* ---- the test's main gateway ------------------------------------------------
 */

static void feed_state(fx *f, uint64_t channel, const char *sid, int json) {
  char buf[256];
  if (json) {
    if (channel != 0) {
      snprintf(buf, sizeof(buf),
               "{\"guild_id\":\"%s\",\"user_id\":\"%s\",\"channel_id\":"
               "\"%llu\",\"session_id\":\"%s\",\"deaf\":false,\"mute\":false}",
               GUILD_S, USER_S, (unsigned long long)channel, sid);
    } else {
      snprintf(buf, sizeof(buf),
               "{\"guild_id\":\"%s\",\"user_id\":\"%s\",\"channel_id\":null,"
               "\"session_id\":\"%s\"}",
               GUILD_S, USER_S, sid);
    }
    assert_int_equal(dvoice_client_voice_state_json(f->cl, buf, strlen(buf)),
                     0);
  } else {
    assert_int_equal(
        dvoice_client_voice_state(f->cl, GUILD, USER, channel, sid), 0);
  }
}

static void feed_server(fx *f, const char *tok, const char *ep, int json) {
  char buf[256];
  if (json) {
    if (ep != NULL) {
      snprintf(buf, sizeof(buf),
               "{\"guild_id\":\"%s\",\"token\":\"%s\",\"endpoint\":\"%s\"}",
               GUILD_S, tok, ep);
    } else {
      snprintf(buf, sizeof(buf),
               "{\"guild_id\":\"%s\",\"token\":\"%s\",\"endpoint\":null}",
               GUILD_S, tok);
    }
    assert_int_equal(dvoice_client_voice_server_json(f->cl, buf, strlen(buf)),
                     0);
  } else {
    assert_int_equal(dvoice_client_voice_server(f->cl, GUILD, tok, ep), 0);
  }
}

/* Registers a new session on the current simulator and announces it with
 * both dispatches, in an order that alternates. */
static void new_server(fx *f, uint64_t channel) {
  char sid[32], tok[32], ep[64];
  int n = f->nsess;
  dv_sim_uv *sim = f->sim[f->cur_sim];
  assert_true(n < 8);
  snprintf(sid, sizeof(sid), "session-%d", n + 1);
  snprintf(tok, sizeof(tok), "token-%d", n + 1);
  snprintf(ep, sizeof(ep), "ws://%s", dv_sim_uv_endpoint(sim));
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(sim), GUILD_S, USER_S,
                                          sid, tok, &f->sess[n]),
                   0);
  f->nsess++;
  if (n % 2 == 0) {
    feed_state(f, channel, sid, 1);
    feed_server(f, tok, ep, 0);
  } else {
    feed_server(f, tok, ep, 1);
    feed_state(f, channel, sid, 0);
  }
}

static int send_voice_state(dvoice_client *cl, uint64_t guild_id,
                            uint64_t channel_id, int self_mute, int self_deaf,
                            void *ud) {
  fx *f = ud;
  assert_ptr_equal(cl, f->cl);
  assert_true(guild_id == GUILD);
  (void)self_mute;
  assert_int_equal(self_deaf, 1);
  assert_true(f->nop4 < 16);
  f->op4[f->nop4++] = channel_id;
  if (channel_id == 0) {
    /* The echo of a leave: a null channel for us. */
    feed_state(f, 0, "gone", f->nop4 % 2);
  } else if (f->answer) {
    new_server(f, channel_id);
  }
  return 0;
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

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud);

static void start_join(fx *f, uint64_t channel);

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  char s[64];
  assert_ptr_equal(c, f->conn);
  snprintf(s, sizeof(s), "%s", dvoice_conn_state_name(ev->state));
  if (ev->close_code != 0) {
    snprintf(s, sizeof(s), "%s(%d)", dvoice_conn_state_name(ev->state),
             ev->close_code);
  }
  dvt_append(f->states, sizeof(f->states), s);
  printf("# state %s (reason %s)\n", s, dvoice_conn_reason_name(ev->reason));
  if (ev->state == DVOICE_CONN_READY) {
    f->ready++;
    if (f->sc == SC_RACE) {
      /* Leave and join again from inside the callback. */
      f->rounds++;
      assert_int_equal(dvoice_client_leave(f->cl, c, conn_closed), 0);
      if (f->rounds < 3) {
        start_join(f, f->rounds % 2 ? CHAN2 : CHAN1);
      }
      return;
    }
    push_some(f);
  }
  if (ev->state == DVOICE_CONN_DISCONNECTED) {
    f->disconnected++;
    assert_int_equal(ev->reason, DVOICE_CONN_REASON_JOIN_ENDED);
    /* Writes fail once the connection is gone (arikawa's TestKickedOut). */
    f->send_after_kick = dvoice_conn_send_opus(c, f->frames[0], f->lens[0]);
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

/* ---- fixture ----------------------------------------------------------------
 */

static void fx_start(fx *f, enum scenario sc, int nsims) {
  dv_sim_uv_settings ss;
  dvoice_client_settings cs;
  dvoice_client_callbacks ccb;
  dvoice_gateway_adapter ad;
  memset(f, 0, sizeof(*f));
  f->sc = sc;
  f->answer = sc != SC_NOANSWER;
  dvt_encode_tone(f->frames, f->lens, NFRAMES);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  for (int i = 0; i < nsims; i++) {
    dv_sim_uv_settings_default(&ss);
    assert_int_equal(dv_sim_uv_new(&f->loop, &ss, &f->sim[i]), 0);
  }
  dvoice_client_settings_default(&cs);
  memset(&ad, 0, sizeof(ad));
  ad.send_voice_state = send_voice_state;
  cs.user_id = USER;
  cs.adapter = &ad;
  cs.adapter_user_data = f;
  if (sc == SC_NOANSWER) {
    cs.join_timeout = 300 * DVOICE_MS;
  }
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_join = on_join;
  assert_int_equal(dvoice_client_new(&f->cl, &f->loop, &cs, &ccb, f), 0);
  start_join(f, CHAN1);
  /* Nothing runs synchronously: not even the adapter. */
  assert_int_equal(f->nop4, 0);
  assert_string_equal(f->joins, "");
}

static void sim_closed(dv_sim_uv *sim, void *ud) {
  fx *f = ud;
  (void)sim;
  f->sim_closed++;
}

static void client_closed(dvoice_client *cl, void *ud) {
  fx *f = ud;
  (void)cl;
  f->client_closed++;
}

static void fx_stop(fx *f, int nsims) {
  assert_int_equal(dvoice_client_close(f->cl, client_closed), 0);
  assert_int_equal(dvoice_client_close(f->cl, client_closed),
                   DVOICE_ERR_INVALID_STATE);
  dvt_run_flag(&f->loop, &f->client_closed, 5000);
  for (int i = 0; i < nsims; i++) {
    int want = f->sim_closed + 1;
    assert_int_equal(dv_sim_uv_close(f->sim[i], sim_closed, f), 0);
    while (f->sim_closed < want) {
      uv_run(&f->loop, UV_RUN_ONCE);
    }
  }
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
}

static void print_media(const char *what, const dv_sim_session *s) {
  const dv_sim_media_stats *m = &s->report.media;
  printf("# %s: received %llu decrypted %llu missing %llu silence %llu "
         "failures %llu\n",
         what, (unsigned long long)m->received,
         (unsigned long long)m->decrypted, (unsigned long long)m->missing,
         (unsigned long long)m->silence_frames,
         (unsigned long long)m->decrypt_failures);
}

static int stream_done(void *ud) {
  fx *f = ud;
  uint64_t n = 0;
  for (int i = 0; i < f->nsess; i++) {
    n += f->sess[i]->report.media.received;
  }
  return f->stream_ended > 0 && n >= (uint64_t)f->to_send + 5;
}

static void leave_and_wait(fx *f) {
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed), 0);
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  /* The op 4 {null} of the leave goes out from the loop. */
  while (f->op4[f->nop4 - 1] != 0) {
    uv_run(&f->loop, UV_RUN_ONCE);
  }
}

/* ---- the seed's flow --------------------------------------------------------
 */

static void test_stream(void **state) {
  fx *f = calloc(1, sizeof(*f));
  const dv_sim_media_stats *m;
  (void)state;
  assert_non_null(f);
  fx_start(f, SC_STREAM, 1);
  f->to_send = 500;
  dvt_run_flag(&f->loop, &f->ready, 10000);
  assert_string_equal(f->joins, "SIGNALLING CONNECTED");
  assert_int_equal(
      dvoice_conn_set_speaking(f->conn, DVOICE_SPEAKING_MICROPHONE), 0);
  if (dvt_run_until(&f->loop, stream_done, f, 20000) != 0) {
    print_media("timeout", f->sess[0]);
    fail_msg("the simulator did not receive the stream");
  }
  print_media("stream", f->sess[0]);
  m = &f->sess[0]->report.media;
  assert_int_equal(f->nsess, 1);
  assert_int_equal(m->received, 505);
  assert_int_equal(m->decrypted, 505);
  assert_int_equal(m->missing, 0);
  assert_int_equal(m->decrypt_failures, 0);
  assert_int_equal(m->silence_frames, 5);
  assert_int_equal(f->sess[0]->report.violations.n, 0);
  assert_int_equal(f->sess[0]->report.identifies, 1);
  leave_and_wait(f);
  assert_int_equal(f->nop4, 2);
  assert_true(f->op4[0] == CHAN1 && f->op4[1] == 0);
  /* No join event for a connection the application closed. */
  assert_string_equal(f->joins, "SIGNALLING CONNECTED");
  assert_string_equal(f->states, "CONNECTING READY");
  fx_stop(f, 1);
  free(f);
}

/* ---- mid-stream events ------------------------------------------------------
 */

static void mid_action(fx *f) {
  dvoice_tstamp now = dv_sim_uv_now(f->sim[0]);
  switch (f->sc) {
    case SC_MOVE:
      /* Someone moves the bot: the old server closes 4014, then the new
       * channel's state and a new token arrive. */
      assert_int_equal(dv_sim_vgw_session_close(f->sess[0], 4014, now), 0);
      dv_sim_uv_flush(f->sim[0]);
      new_server(f, CHAN2);
      break;
    case SC_REGION:
      /* Region change: null endpoint, the old server closes 4014, and a
       * server in the other region is announced. */
      feed_server(f, "token-1", NULL, 1);
      assert_int_equal(dv_sim_vgw_session_close(f->sess[0], 4014, now), 0);
      dv_sim_uv_flush(f->sim[0]);
      f->cur_sim = 1;
      {
        char ep[64];
        assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim[1]),
                                                GUILD_S, USER_S, "session-1",
                                                "token-2", &f->sess[1]),
                         0);
        f->nsess = 2;
        snprintf(ep, sizeof(ep), "ws://%s", dv_sim_uv_endpoint(f->sim[1]));
        feed_server(f, "token-2", ep, 0);
      }
      break;
    case SC_KICK:
      assert_int_equal(dv_sim_vgw_session_close(f->sess[0], 4014, now), 0);
      dv_sim_uv_flush(f->sim[0]);
      feed_state(f, 0, "session-1", 1);
      break;
    default:
      break;
  }
}

static void on_poll(uv_timer_t *t) {
  fx *f = t->data;
  if (!f->acted && f->nsess > 0 && f->sess[0]->report.media.received >= 100) {
    f->acted = 1;
    mid_action(f);
  }
}

/*
 * Violations of |s| other than, when |closed| (the test closed it with
 * 4014 itself), one packet the client sent before the close but the
 * simulator read after it: datagrams still in the socket buffer when the
 * test ends the session.
 */
static size_t other_violations(const dv_sim_session *s, int closed) {
  size_t n = 0, late = 0;
  for (size_t k = 0; k < s->report.violations.n; k++) {
    const char *what = s->report.violations.v[k].what;
    printf("# violation: %s (%d)\n", what,
           s->report.violations.v[k].close_code);
    if (closed && strstr(what, "after the session ended") != NULL &&
        late++ == 0) {
      continue;
    }
    n++;
  }
  return n;
}

static int kicked_done(void *ud) {
  fx *f = ud;
  return f->ended > 0 && f->disconnected > 0;
}

static void mid_stream(enum scenario sc) {
  fx *f = calloc(1, sizeof(*f));
  int nsims = sc == SC_REGION ? 2 : 1;
  uint64_t total = 0, failures = 0;
  assert_non_null(f);
  fx_start(f, sc, nsims);
  f->to_send = 500;
  assert_int_equal(uv_timer_init(&f->loop, &f->poll), 0);
  f->poll.data = f;
  assert_int_equal(uv_timer_start(&f->poll, on_poll, 20, 20), 0);
  if (sc == SC_KICK) {
    assert_int_equal(dvt_run_until(&f->loop, kicked_done, f, 20000), 0);
    print_media("kicked", f->sess[0]);
    assert_int_equal(f->end_reason, DVOICE_JOIN_REASON_KICKED);
    assert_int_equal(f->send_after_kick, DVOICE_ERR_INVALID_STATE);
    assert_int_equal(dvoice_conn_get_state(f->conn), DVOICE_CONN_DISCONNECTED);
    /* The null channel is fed before the 4014 reaches the client. */
    assert_string_equal(f->joins, "SIGNALLING CONNECTED ENDED");
    /* Kicked: nothing more is asked of the main gateway. */
    assert_int_equal(f->nop4, 1);
    assert_true(f->sess[0]->report.media.received >= 100);
    assert_int_equal(f->sess[0]->report.media.decrypt_failures, 0);
    assert_int_equal(dvoice_conn_close(f->conn, conn_closed), 0);
    dvt_run_flag(&f->loop, &f->conn_closed, 5000);
    assert_int_equal(f->nop4, 1);
  } else {
    if (dvt_run_until(&f->loop, stream_done, f, 30000) != 0) {
      for (int i = 0; i < f->nsess; i++) {
        print_media("timeout", f->sess[i]);
      }
      fail_msg("the stream did not finish");
    }
    for (int i = 0; i < f->nsess; i++) {
      print_media(i == 0 ? "first server" : "second server", f->sess[i]);
      /* Every packet reached a server; the one a closed session read late
       * is counted as before_key there, undecrypted. */
      total += f->sess[i]->report.media.decrypted +
               f->sess[i]->report.media.before_key;
      assert_true(f->sess[i]->report.media.before_key <= (i == 0 ? 1u : 0u));
      failures += f->sess[i]->report.media.decrypt_failures;
      assert_int_equal(f->sess[i]->report.identifies, 1);
      assert_int_equal(other_violations(f->sess[i], i == 0), 0);
    }
    assert_int_equal(f->nsess, 2);
    /* Playback continued on the second server, nothing lost in between
     * (the queue waits while the connection is not READY). */
    assert_true(f->sess[0]->report.media.received >= 100);
    assert_true(f->sess[1]->report.media.received > 0);
    assert_int_equal(f->sess[1]->report.media.silence_frames, 5);
    assert_int_equal(failures, 0);
    assert_true(total >= 505);
    assert_int_equal(f->ready, 2);
    assert_int_equal(f->ended, 0);
    leave_and_wait(f);
  }
  uv_close((uv_handle_t *)&f->poll, NULL);
  fx_stop(f, nsims);
  free(f);
}

static void test_moved(void **state) {
  (void)state;
  mid_stream(SC_MOVE);
}

static void test_region_change(void **state) {
  (void)state;
  mid_stream(SC_REGION);
}

static void test_kicked(void **state) {
  (void)state;
  mid_stream(SC_KICK);
}

/* ---- join and leave three times from inside callbacks ----------------------
 */

static int three_closed(void *ud) {
  return ((fx *)ud)->conn_closed >= 3;
}

static void test_race(void **state) {
  fx *f = calloc(1, sizeof(*f));
  (void)state;
  assert_non_null(f);
  fx_start(f, SC_RACE, 1);
  assert_int_equal(dvt_run_until(&f->loop, three_closed, f, 20000), 0);
  /* Let the last leave's op 4 out. */
  while (f->nop4 < 6) {
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  assert_int_equal(f->rounds, 3);
  assert_int_equal(f->ready, 3);
  assert_int_equal(f->nop4, 6);
  assert_true(f->op4[0] == CHAN1 && f->op4[1] == 0 && f->op4[2] == CHAN2 &&
              f->op4[3] == 0 && f->op4[4] == CHAN1 && f->op4[5] == 0);
  assert_int_equal(f->nsess, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(f->sess[i]->report.identifies, 1);
    assert_int_equal(f->sess[i]->report.violations.n, 0);
  }
  assert_int_equal(f->ended, 0);
  fx_stop(f, 1);
  free(f);
}

/* ---- no answer --------------------------------------------------------------
 */

static int ended(void *ud) {
  return ((fx *)ud)->ended > 0 && ((fx *)ud)->disconnected > 0;
}

static void test_no_answer(void **state) {
  fx *f = calloc(1, sizeof(*f));
  (void)state;
  assert_non_null(f);
  fx_start(f, SC_NOANSWER, 1);
  assert_int_equal(dvt_run_until(&f->loop, ended, f, 5000), 0);
  assert_int_equal(f->end_reason, DVOICE_JOIN_REASON_TIMEOUT);
  assert_string_equal(f->joins, "SIGNALLING ENDED");
  assert_string_equal(f->states, "DISCONNECTED");
  while (f->nop4 < 2) {
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  assert_true(f->op4[0] == CHAN1 && f->op4[1] == 0);
  assert_int_equal(f->nsess, 0);
  assert_int_equal(dvoice_conn_close(f->conn, conn_closed), 0);
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  fx_stop(f, 1);
  free(f);
}

/* ---- argument and state errors ---------------------------------------------
 */

static int refuse(dvoice_client *cl, uint64_t g, uint64_t c, int m, int d,
                  void *ud) {
  (void)cl, (void)g, (void)c, (void)m, (void)d, (void)ud;
  return -1;
}

static void test_api_errors(void **state) {
  uv_loop_t loop;
  dvoice_client_settings cs;
  dvoice_gateway_adapter ad;
  dvoice_client *cl = NULL;
  dvoice_conn *c = NULL, *c2 = NULL;
  int closed = 0;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dvoice_client_settings_default(&cs);
  memset(&ad, 0, sizeof(ad));
  assert_int_equal(dvoice_client_new(NULL, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT); /* no user, no adapter */
  cs.user_id = USER;
  cs.adapter = &ad;
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT); /* no send_voice_state */
  assert_null(cl);
  ad.send_voice_state = refuse;
  assert_int_equal(dvoice_client_new(&cl, &loop, &cs, NULL, &closed), 0);
  assert_ptr_equal(dvoice_client_get_user_data(cl), &closed);
  assert_int_equal(dvoice_client_join(cl, 0, CHAN1, 0, NULL, NULL, &c),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_join(cl, GUILD, 0, 0, NULL, NULL, &c),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_join(cl, GUILD, CHAN1, 4, NULL, NULL, &c),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_join(cl, GUILD, CHAN1, 0, NULL, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_voice_state_json(cl, "{", 1),
                   DVOICE_ERR_MALFORMED);
  assert_int_equal(dvoice_client_voice_state_json(cl, "[]", 2),
                   DVOICE_ERR_MALFORMED);
  assert_int_equal(
      dvoice_client_voice_server_json(cl, "{\"guild_id\":\"1\"}", 14),
      DVOICE_ERR_MALFORMED);
  assert_int_equal(dvoice_client_voice_server(cl, GUILD, NULL, "e"),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_client_voice_state(cl, GUILD, USER, CHAN1, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* Nothing joined: dispatches are accepted and ignored. */
  assert_int_equal(dvoice_client_voice_server(cl, GUILD, "t", "e:1"), 0);
  assert_int_equal(dvoice_client_join(cl, GUILD, CHAN1, 0, NULL, NULL, &c), 0);
  /* A second join of the guild is a move on the same connection. */
  assert_int_equal(dvoice_client_join(cl, GUILD, CHAN2, 0, NULL, NULL, &c2), 0);
  assert_ptr_equal(c, c2);
  assert_int_equal(dvoice_client_leave(cl, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* The adapter refuses op 4: the join ends (seen through the state). */
  while (dvoice_conn_get_state(c) != DVOICE_CONN_DISCONNECTED) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  /* Closing the client closes the connection too. */
  assert_int_equal(dvoice_client_close(cl, NULL), 0);
  assert_int_equal(dvoice_client_close(cl, NULL), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream),        cmocka_unit_test(test_moved),
      cmocka_unit_test(test_region_change), cmocka_unit_test(test_kicked),
      cmocka_unit_test(test_race),          cmocka_unit_test(test_no_answer),
      cmocka_unit_test(test_api_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
