/* Unit tests of the pure join core (lib/join) under a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dvt.h"
#include "join/dv_join.h"

#define GUILD 41771983423143936ull
#define USER 80351110224678912ull
#define CHAN1 127121515262115840ull
#define CHAN2 222197033908436994ull
#define S (DVOICE_SECONDS)
#define MS (DVOICE_MS)

typedef struct fx {
  dvt_env e;
  dv_join j;
} fx;

static int setup(void **state) {
  fx *f = test_calloc(1, sizeof(*f));
  dv_join_config cfg;
  dvt_env_init(&f->e);
  dv_join_config_default(&cfg);
  cfg.guild_id = GUILD;
  cfg.user_id = USER;
  assert_int_equal(dv_join_init(&f->j, &cfg, &f->e.env), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  dv_join_free(&f->j);
  dvt_env_free(&f->e);
  test_free(f);
  return 0;
}

/* Pops one action and checks its type. */
static dv_join_action pop(fx *f, dv_join_action_type type) {
  dv_join_action a;
  assert_int_equal(dv_join_next_action(&f->j, &a), 1);
  assert_int_equal(a.type, type);
  return a;
}

static void none(fx *f) {
  dv_join_action a;
  assert_int_equal(dv_join_next_action(&f->j, &a), 0);
}

static void expect_op4(fx *f, uint64_t channel) {
  dv_join_action a = pop(f, DV_JOIN_ACT_SEND_OP4);
  assert_true(a.u.op4.channel_id == channel);
}

static void expect_creds(fx *f, dv_join_action_type type, const char *sid,
                         const char *tok, const char *ep) {
  dv_join_action a = pop(f, type);
  assert_string_equal(a.u.creds.session_id, sid);
  assert_string_equal(a.u.creds.token, tok);
  assert_string_equal(a.u.creds.endpoint, ep);
}

static void expect_end(fx *f, dv_join_reason r) {
  dv_join_action a = pop(f, DV_JOIN_ACT_END);
  assert_int_equal(a.u.end.reason, r);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_ENDED);
}

/* Joins CHAN1 and connects with s1/t1/e1 at time 0. */
static void connected(fx *f) {
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 1, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 0), 0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 0), 0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s1", "t1", "e1:443");
  none(f);
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_READY, 0), 0);
}

static void state_then_server(void **state) {
  fx *f = *state;
  dv_join_action a;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 1, 0, 5 * S), 0);
  a = pop(f, DV_JOIN_ACT_SEND_OP4);
  assert_true(a.u.op4.channel_id == CHAN1);
  assert_int_equal(a.u.op4.self_mute, 1);
  assert_int_equal(a.u.op4.self_deaf, 0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_SIGNALLING);
  assert_true(dv_join_get_expiry(&f->j) == 15 * S);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 6 * S),
                   0);
  none(f);
  assert_int_equal(
      dv_join_on_voice_server(&f->j, "t1", "e1.discord.media:443", 6 * S), 0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s1", "t1", "e1.discord.media:443");
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_CONNECTED);
  assert_true(dv_join_get_expiry(&f->j) == DVOICE_TSTAMP_NONE);
}

static void server_then_state(void **state) {
  fx *f = *state;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 1 * MS), 0);
  none(f);
  /* Another user's state never pairs. */
  assert_int_equal(
      dv_join_on_voice_state(&f->j, USER + 1, 1, CHAN1, "other", 2 * MS), 0);
  none(f);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 3 * MS),
                   0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s1", "t1", "e1:443");
  none(f);
}

static void stale_events_ignored(void **state) {
  fx *f = *state;
  connected(f);
  /* We ask to move to CHAN2; the old channel's state and the old token
   * arrive late and must not pair. */
  assert_int_equal(dv_join_start(&f->j, CHAN2, 0, 0, 1 * S), 0);
  expect_op4(f, CHAN2);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "old", 1 * S),
                   0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 1 * S), 0);
  /* The echo of an earlier leave (null channel) while a join is pending. */
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 0, 0, NULL, 1 * S), 0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_SIGNALLING);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e1:443", 2 * S), 0);
  none(f);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s2", 2 * S),
                   0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s2", "t2", "e1:443");
  none(f);
}

static void null_endpoint_then_real(void **state) {
  fx *f = *state;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", NULL, 0), 0);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 0), 0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_SIGNALLING);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e2:443", 2 * S), 0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s1", "t2", "e2:443");
}

static void join_timeout(void **state) {
  fx *f = *state;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 1 * S), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 2 * S),
                   0);
  assert_int_equal(dv_join_handle_expiry(&f->j, 11 * S - 1), 0);
  none(f);
  assert_int_equal(dv_join_handle_expiry(&f->j, 11 * S), 0);
  expect_op4(f, 0); /* cancel, so a late answer leaves no ghost */
  expect_end(f, DV_JOIN_REASON_TIMEOUT);
  none(f);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1", 12 * S),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 12 * S),
                   DVOICE_ERR_INVALID_STATE);
}

static void moved_by_someone(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s1", 3 * S),
                   0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_SIGNALLING);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e1:443", 3 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s1", "t2", "e1:443");
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_CONNECTED);
}

static void moved_server_first(void **state) {
  fx *f = *state;
  connected(f);
  /* The new token first: acted on at once (it may be a region change)... */
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e1:443", 3 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s1", "t2", "e1:443");
  none(f);
  /* ...and the state of the move right after renews it with the new
   * session, never leaving the new token with the old session. */
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s2", 3 * S),
                   0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s2", "t2", "e1:443");
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_CONNECTED);
  /* Once READY, a later state update alone does not renew anything. */
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_READY, 4 * S), 0);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s3", 5 * S),
                   0);
  none(f);
}

static void server_change_while_connected(void **state) {
  fx *f = *state;
  connected(f);
  /* A repeat of the same server changes nothing. */
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 1 * S), 0);
  none(f);
  /* Region change: null endpoint, then a new server. */
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", NULL, 2 * S), 0);
  pop(f, DV_JOIN_ACT_SUSPEND);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_WAIT_SERVER);
  /* The old server closes with 4014 meanwhile. */
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_WAIT_SERVER, 2 * S),
                   0);
  assert_true(dv_join_get_expiry(&f->j) == 7 * S);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t3", "e3:443", 3 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s1", "t3", "e3:443");
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_CONNECTED);
}

static void close_4014_new_server_in_time(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_WAIT_SERVER, 10 * S), 0);
  none(f);
  assert_true(dv_join_get_expiry(&f->j) == 15 * S);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s2", 12 * S),
                   0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e2:443", 14 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s2", "t2", "e2:443");
  none(f);
  assert_int_equal(dv_join_handle_expiry(&f->j, 16 * S), 0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_CONNECTED);
}

static void close_4014_no_server(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_WAIT_SERVER, 10 * S), 0);
  assert_int_equal(dv_join_handle_expiry(&f->j, 15 * S - 1), 0);
  none(f);
  assert_int_equal(dv_join_handle_expiry(&f->j, 15 * S), 0);
  expect_op4(f, 0);
  expect_end(f, DV_JOIN_REASON_SERVER_TIMEOUT);
  none(f);
}

static void kicked(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_WAIT_SERVER, 10 * S), 0);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 0, 0, NULL, 10 * S), 0);
  expect_end(f, DV_JOIN_REASON_KICKED);
  none(f);
  /* The voice connection's later DISCONNECTED is not news. */
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_DISCONNECTED, 11 * S),
      DVOICE_ERR_INVALID_STATE);
  none(f);
}

static void kicked_while_ready(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 0, 0, NULL, 1 * S), 0);
  expect_end(f, DV_JOIN_REASON_KICKED);
}

static void leave(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(dv_join_leave(&f->j, 1 * S), 0);
  expect_op4(f, 0);
  expect_end(f, DV_JOIN_REASON_LEFT);
  none(f);
  assert_int_equal(dv_join_leave(&f->j, 1 * S), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 0, 0, NULL, 1 * S),
                   DVOICE_ERR_INVALID_STATE);
}

static void leave_while_signalling(void **state) {
  fx *f = *state;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_leave(&f->j, 1 * MS), 0);
  expect_op4(f, 0);
  expect_end(f, DV_JOIN_REASON_LEFT);
  assert_true(dv_join_get_expiry(&f->j) == DVOICE_TSTAMP_NONE);
}

static void rejoin_during_pending(void **state) {
  fx *f = *state;
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 1 * S),
                   0);
  /* Re-join before the server update: the first attempt's state is
   * dropped and the new timeout counts from now. */
  assert_int_equal(dv_join_start(&f->j, CHAN2, 0, 0, 2 * S), 0);
  expect_op4(f, CHAN2);
  assert_true(dv_join_get_expiry(&f->j) == 12 * S);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 3 * S), 0);
  none(f);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN2, "s2", 3 * S),
                   0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s2", "t1", "e1:443");
  none(f);
}

static void new_session_bounded(void **state) {
  fx *f = *state;
  int i;
  dvoice_tstamp t = 1 * S,
                want[] = {0, 250 * MS, 500 * MS, 1000 * MS, 2000 * MS};
  char tok[8];
  connected(f);
  for (i = 0; i < 5; i++) {
    assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, t),
                     0);
    if (want[i] == 0) {
      expect_op4(f, CHAN1);
    } else {
      none(f);
      assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_BACKOFF);
      assert_true(dv_join_get_expiry(&f->j) == t + want[i]);
      /* Events while no op 4 is out are stale. */
      assert_int_equal(dv_join_on_voice_server(&f->j, "x", "x:1", t), 0);
      none(f);
      t += want[i];
      assert_int_equal(dv_join_handle_expiry(&f->j, t), 0);
      expect_op4(f, CHAN1);
    }
    snprintf(tok, sizeof(tok), "n%d", i);
    assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s", t), 0);
    assert_int_equal(dv_join_on_voice_server(&f->j, tok, "e1:443", t), 0);
    expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s", tok, "e1:443");
    none(f);
    t += 1 * S;
  }
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, t),
                   0);
  expect_op4(f, 0);
  expect_end(f, DV_JOIN_REASON_RETRIES_EXHAUSTED);
}

static void ready_resets_sessions(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, 1 * S), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s", 1 * S),
                   0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t9", "e1:443", 1 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s", "t9", "e1:443");
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_READY, 2 * S), 0);
  /* The next failure asks again at once, without backoff. */
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, 3 * S), 0);
  expect_op4(f, CHAN1);
}

static void voice_gave_up(void **state) {
  fx *f = *state;
  connected(f);
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_DISCONNECTED, 1 * S), 0);
  expect_op4(f, 0);
  expect_end(f, DV_JOIN_REASON_VOICE_FAILED);
}

static void bad_arguments(void **state) {
  fx *f = *state;
  dv_join j2;
  dv_join_config cfg;
  char big[DV_JOIN_ENDPOINT_MAX + 2];
  dv_join_config_default(&cfg);
  assert_int_equal(dv_join_init(&j2, &cfg, &f->e.env),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_join_free(&j2);
  assert_int_equal(dv_join_start(&f->j, 0, 0, 0, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_READY, 0),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 0), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, NULL, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "", 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_on_voice_server(&f->j, NULL, "e", 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(dv_join_on_voice_server(&f->j, "t", big, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  none(f);
  /* The token never reaches the log. */
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s", 0), 0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "SECRET-TOKEN", "e:1", 0), 0);
  assert_false(dvt_log_contains(&f->e.log, "SECRET-TOKEN"));
}

/* Huge tunables (an application's "never") saturate instead of wrapping
 * into a deadline in the past; found by fuzz_join. */
static void huge_tunables_saturate(void **state) {
  fx *f = *state;
  dv_join_config cfg;
  dv_join_action a;
  dv_join_free(&f->j);
  dv_join_config_default(&cfg);
  cfg.guild_id = GUILD;
  cfg.user_id = USER;
  cfg.join_timeout = DVOICE_TSTAMP_NONE - 1;
  cfg.server_wait = DVOICE_TSTAMP_NONE / 2;
  cfg.endpoint_wait = DVOICE_TSTAMP_NONE;
  cfg.backoff_base = (dvoice_tstamp)1 << 62;
  cfg.backoff_max = DVOICE_TSTAMP_NONE - 1;
  assert_int_equal(dv_join_init(&f->j, &cfg, &f->e.env), 0);
  assert_int_equal(dv_join_start(&f->j, CHAN1, 0, 0, 5 * S), 0);
  expect_op4(f, CHAN1);
  assert_true(dv_join_get_expiry(&f->j) == DVOICE_TSTAMP_NONE - 1);
  assert_int_equal(dv_join_handle_expiry(&f->j, 3600 * S), 0);
  none(f);
  assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_SIGNALLING);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s1", 6 * S),
                   0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", "e1:443", 6 * S), 0);
  expect_creds(f, DV_JOIN_ACT_CONNECT, "s1", "t1", "e1:443");
  /* A null endpoint waits "forever", not zero. */
  assert_int_equal(dv_join_on_voice_server(&f->j, "t1", NULL, 7 * S), 0);
  pop(f, DV_JOIN_ACT_SUSPEND);
  assert_true(dv_join_get_expiry(&f->j) == DVOICE_TSTAMP_NONE - 1);
  assert_int_equal(dv_join_on_conn_state(&f->j, DVOICE_CONN_WAIT_SERVER, 8 * S),
                   0);
  assert_true(dv_join_get_expiry(&f->j) == 8 * S + DVOICE_TSTAMP_NONE / 2);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t2", "e2:443", 9 * S), 0);
  expect_creds(f, DV_JOIN_ACT_NEW_SESSION, "s1", "t2", "e2:443");
  /* New sessions: the first asks at once, the next ones back off by
   * base, 2 * base, then the saturated maximum, never by a wrapped delay
   * (base << 2 would be 2^64, i.e. 0). */
  assert_int_equal(
      dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, 10 * S), 0);
  expect_op4(f, CHAN1);
  assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s2", 11 * S),
                   0);
  assert_int_equal(dv_join_on_voice_server(&f->j, "t3", "e3:443", 11 * S), 0);
  a = pop(f, DV_JOIN_ACT_NEW_SESSION);
  assert_string_equal(a.u.creds.token, "t3");
  for (int i = 0; i < 3; i++) {
    static const char *const tokens[] = {"u0", "u1", "u2"};
    const dvoice_tstamp want[] = {12 * S + ((dvoice_tstamp)1 << 62),
                                  12 * S + ((dvoice_tstamp)1 << 63),
                                  DVOICE_TSTAMP_NONE - 1};
    dvoice_tstamp due;
    assert_int_equal(
        dv_join_on_conn_state(&f->j, DVOICE_CONN_NEED_SESSION, 12 * S), 0);
    none(f);
    assert_int_equal(dv_join_get_state(&f->j), DV_JOIN_BACKOFF);
    due = dv_join_get_expiry(&f->j);
    assert_true(due == want[i]);
    assert_int_equal(dv_join_handle_expiry(&f->j, due - 1), 0);
    none(f);
    assert_int_equal(dv_join_handle_expiry(&f->j, due), 0);
    expect_op4(f, CHAN1);
    assert_true(dv_join_get_expiry(&f->j) == DVOICE_TSTAMP_NONE - 1);
    /* Paired again: back to CONNECTED for the next round. */
    assert_int_equal(dv_join_on_voice_state(&f->j, USER, 1, CHAN1, "s", 0), 0);
    assert_int_equal(dv_join_on_voice_server(&f->j, tokens[i], "e:1", 0), 0);
    pop(f, DV_JOIN_ACT_NEW_SESSION);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(state_then_server),
      T(server_then_state),
      T(stale_events_ignored),
      T(null_endpoint_then_real),
      T(join_timeout),
      T(moved_by_someone),
      T(moved_server_first),
      T(server_change_while_connected),
      T(close_4014_new_server_in_time),
      T(close_4014_no_server),
      T(kicked),
      T(kicked_while_ready),
      T(leave),
      T(leave_while_signalling),
      T(rejoin_during_pending),
      T(new_session_bounded),
      T(ready_resets_sessions),
      T(voice_gave_up),
      T(bad_arguments),
      T(huge_tunables_saturate),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
