/*
 * Integration tests for how dvoice_client matches voice dispatches to joins
 * across a leave, through the ADAPTER (the test plays the main gateway and
 * orders every dispatch itself) against the simulator's voice side on
 * loopback. The main gateway answers op 4 messages in order, and a leave
 * with a null channel (its echo): until the echo, every dispatch of the
 * guild answers an op 4 sent before the leave and must not reach a join
 * made after it.
 *   stale_before_echo  join, leave, join the same channel again; the first
 *                      join's answers, the echo, then the second's arrive:
 *                      the second join uses its own session, no kick.
 *   lost_echo          the leave is never echoed (the bot was not in the
 *                      channel): after join_timeout a new join works.
 *   refused_leave      the adapter refuses the leave's op 4: no echo is
 *                      waited for, an immediate new join works.
 */
#include "../interop/dvt_net.h"

#include "../sim/sim_uv.h"
#include "dvt_join.h"

#define GUILD 111111111111ull
#define GUILD_S "111111111111"
#define USER 222222222222ull
#define USER_S "222222222222"
#define CHAN1 333333333333ull
#define CHAN2 444444444444ull
#define JOIN_TIMEOUT_MS 300

typedef struct fx {
  uv_loop_t loop;
  dv_sim_uv *sim;
  dv_sim_session *sess[4];
  int nsess;
  dvoice_client *cl;
  dvoice_conn *conn;
  uint64_t op4[8];
  int nop4;
  int refuse_leave;
  char joins[256], states[256];
  int ready, ended, conn_closed, sim_closed, client_closed;
  dvoice_join_reason end_reason;
} fx;

/* ---- the test's main gateway ---------------------------------------------
 */

static int send_voice_state(dvoice_client *cl, uint64_t guild_id,
                            uint64_t channel_id, int self_mute, int self_deaf,
                            void *ud) {
  fx *f = ud;
  (void)cl, (void)self_mute, (void)self_deaf;
  assert_true(guild_id == GUILD);
  assert_true(f->nop4 < 8);
  f->op4[f->nop4++] = channel_id;
  return channel_id == 0 && f->refuse_leave ? -1 : 0;
}

/* Registers session |n| (1-based) with the voice simulator. */
static void add_session(fx *f, int n) {
  char sid[32], tok[32];
  snprintf(sid, sizeof(sid), "session-%d", n);
  snprintf(tok, sizeof(tok), "token-%d", n);
  assert_true(f->nsess < 4);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim), GUILD_S,
                                          USER_S, sid, tok, &f->sess[n - 1]),
                   0);
  f->nsess++;
}

/* Both dispatches answering a join with session |n|, state first. */
static void answer_join(fx *f, uint64_t channel, int n) {
  char sid[32], tok[32], ep[64];
  snprintf(sid, sizeof(sid), "session-%d", n);
  snprintf(tok, sizeof(tok), "token-%d", n);
  snprintf(ep, sizeof(ep), "ws://%s", dv_sim_uv_endpoint(f->sim));
  assert_int_equal(dvoice_client_voice_state(f->cl, GUILD, USER, channel, sid),
                   0);
  assert_int_equal(dvoice_client_voice_server(f->cl, GUILD, tok, ep), 0);
}

/* The echo of a leave: a null channel for the bot. */
static void echo_leave(fx *f, int n) {
  char sid[32];
  snprintf(sid, sizeof(sid), "session-%d", n);
  assert_int_equal(dvoice_client_voice_state(f->cl, GUILD, USER, 0, sid), 0);
}

/* ---- callbacks -------------------------------------------------------------
 */

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  fx *f = ud;
  (void)cl;
  assert_ptr_equal(c, f->conn);
  dvt_append(f->joins, sizeof(f->joins), dvoice_join_state_name(ev->state));
  printf("# join %s (reason %s)\n", dvoice_join_state_name(ev->state),
         dvoice_join_reason_name(ev->reason));
  if (ev->state == DVOICE_JOIN_ENDED) {
    f->ended++;
    f->end_reason = ev->reason;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  assert_ptr_equal(c, f->conn);
  dvt_append(f->states, sizeof(f->states), dvoice_conn_state_name(ev->state));
  if (ev->state == DVOICE_CONN_READY) {
    f->ready++;
  }
}

static void conn_closed(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  f->conn_closed++;
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

/* ---- fixture ---------------------------------------------------------------
 */

static void fx_start(fx *f) {
  dv_sim_uv_settings ss;
  dvoice_client_settings cs;
  dvoice_client_callbacks ccb;
  dvoice_gateway_adapter ad;
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dv_sim_uv_settings_default(&ss);
  assert_int_equal(dv_sim_uv_new(&f->loop, &ss, &f->sim), 0);
  dvoice_client_settings_default(&cs);
  memset(&ad, 0, sizeof(ad));
  ad.send_voice_state = send_voice_state;
  cs.user_id = USER;
  cs.adapter = &ad;
  cs.adapter_user_data = f;
  cs.join_timeout = JOIN_TIMEOUT_MS * DVOICE_MS;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_join = on_join;
  assert_int_equal(dvoice_client_new(&f->cl, &f->loop, &cs, &ccb, f), 0);
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_client_close(f->cl, client_closed), 0);
  dvt_run_flag(&f->loop, &f->client_closed, 5000);
  assert_int_equal(dv_sim_uv_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
}

/* Joins |channel| and runs until its op 4 reached the adapter. */
static void join_now(fx *f, uint64_t channel) {
  dvoice_conn_callbacks cb;
  int want = f->nop4 + 1;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  f->conn = NULL;
  f->joins[0] = f->states[0] = 0;
  assert_int_equal(
      dvoice_client_join(f->cl, GUILD, channel, 0, &cb, f, &f->conn), 0);
  /* NOWAIT: a blocking iteration could sleep until the join timeout. */
  while (f->nop4 < want || f->joins[0] == 0) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_true(f->op4[want - 1] == channel);
  assert_string_equal(f->joins, "SIGNALLING");
}

/* Leaves and runs until the op 4 leave reached the adapter and the
 * connection closed. */
static void leave_now(fx *f) {
  int want = f->nop4 + 1, closed = f->conn_closed + 1;
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed), 0);
  f->conn = NULL;
  while (f->nop4 < want || f->conn_closed < closed) {
    uv_run(&f->loop, UV_RUN_NOWAIT);
  }
  assert_true(f->op4[want - 1] == 0);
}

static int ready_or_ended(void *ud) {
  fx *f = ud;
  return f->ready > 0 || f->ended > 0;
}

static int never(void *ud) {
  (void)ud;
  return 0;
}

/* The current join reaches READY on session |n| (1-based), alone. */
static void check_connected_on(fx *f, int n) {
  assert_int_equal(dvt_run_until(&f->loop, ready_or_ended, f, 5000), 0);
  assert_int_equal(f->ended, 0);
  assert_string_equal(f->joins, "SIGNALLING CONNECTED");
  assert_string_equal(f->states, "CONNECTING READY");
  for (int i = 0; i < f->nsess; i++) {
    assert_int_equal(f->sess[i]->report.identifies, i == n - 1 ? 1 : 0);
    assert_int_equal(f->sess[i]->report.violations.n, 0);
  }
}

/* ---- tests -----------------------------------------------------------------
 */

static void test_stale_before_echo(void **state) {
  fx f;
  (void)state;
  fx_start(&f);
  add_session(&f, 1);
  add_session(&f, 2);
  join_now(&f, CHAN1);
  leave_now(&f);
  join_now(&f, CHAN1);
  /* The gateway's answers, in the order it sent them. */
  answer_join(&f, CHAN1, 1);
  echo_leave(&f, 1);
  answer_join(&f, CHAN1, 2);
  check_connected_on(&f, 2);
  /* A later null channel is a kick again: nothing is left to echo. */
  echo_leave(&f, 2);
  assert_int_equal(dvt_run_until(&f.loop, ready_or_ended, &f, 1000), 0);
  assert_int_equal(dvt_run_until(&f.loop, never, &f, 100), -1);
  assert_int_equal(f.ended, 1);
  assert_int_equal(f.end_reason, DVOICE_JOIN_REASON_KICKED);
  assert_int_equal(f.nop4, 3);
  assert_int_equal(dvoice_conn_close(f.conn, conn_closed), 0);
  f.conn = NULL;
  dvt_run_flag(&f.loop, &f.conn_closed, 5000);
  fx_stop(&f);
}

static void test_lost_echo(void **state) {
  fx f;
  (void)state;
  fx_start(&f);
  add_session(&f, 1);
  join_now(&f, CHAN1);
  leave_now(&f);
  /* No answer and no echo: the bot never got into the channel. After a
   * join timeout the leave is no longer waited for. */
  assert_int_equal(dvt_run_until(&f.loop, never, &f, JOIN_TIMEOUT_MS + 50), -1);
  join_now(&f, CHAN2);
  answer_join(&f, CHAN2, 1);
  check_connected_on(&f, 1);
  leave_now(&f);
  assert_int_equal(f.nop4, 4);
  fx_stop(&f);
}

static void test_refused_leave(void **state) {
  fx f;
  (void)state;
  fx_start(&f);
  add_session(&f, 1);
  join_now(&f, CHAN1);
  f.refuse_leave = 1;
  leave_now(&f);
  f.refuse_leave = 0;
  /* The leave never went out: its echo is not waited for. */
  join_now(&f, CHAN2);
  answer_join(&f, CHAN2, 1);
  check_connected_on(&f, 1);
  leave_now(&f);
  fx_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stale_before_echo),
      cmocka_unit_test(test_lost_echo),
      cmocka_unit_test(test_refused_leave),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
