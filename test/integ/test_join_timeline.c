/*
 * The test-only join timeline (lib/uv/dv_uv_timeline.h) that bench_join
 * reads: a join through the built-in gateway against the public simulator
 * (wss://) records every step once, in the protocol's order, and the last
 * one (ready to send) no later than the READY event; a join without a
 * timeline leaves the previous one untouched. Only the order of the
 * steps is asserted, never their durations.
 */
#include <dvoice/sim.h>

#include "../interop/dvt_net.h"
#include "dvt.h"
#include "uv/dv_uv_timeline.h"

#define TOKEN "TIMELINE.token.1"
#define GUILD 111111111111ull
#define USER 222222222222ull
#define CHAN 333333333333ull

typedef struct fx {
  uv_loop_t loop;
  dvt_env env;
  dvoice_sim *sim;
  dvoice_client *cl;
  dvoice_conn *conn;
  dv_uv_timeline tl;
  dvoice_tstamp ready_at;
  int gw_ready, ready, failed, conn_closed, sim_closed, client_closed;
} fx;

static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  fx *f = ud;
  (void)cl;
  if (ev->state == DVOICE_GATEWAY_READY) {
    f->gw_ready = 1;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY) {
    f->ready = 1;
    f->ready_at = uv_hrtime(); /* the client's clock (the default) */
  } else if (ev->state != DVOICE_CONN_CONNECTING) {
    f->failed = 1;
  }
}

static void conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  ((fx *)ud)->conn_closed = 1;
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  (void)sim;
  ((fx *)ud)->sim_closed = 1;
}

static void client_closed(dvoice_client *cl, void *ud) {
  (void)cl;
  ((fx *)ud)->client_closed = 1;
}

static void fx_start(fx *f) {
  dvoice_sim_settings ss;
  dvoice_client_settings cs;
  dvoice_conn_settings tmpl;
  dvoice_client_callbacks ccb;
  uint64_t chan = CHAN;
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dvt_env_init(&f->env);
  f->env.env.now = NULL; /* real sockets: the real clock */
  f->env.env.rand = NULL;
  dvoice_sim_settings_default(&ss);
  assert_int_equal(dvoice_sim_start(&f->loop, &ss, &f->sim), 0);
  assert_int_equal(dvoice_sim_add_bot(f->sim, TOKEN, USER), 0);
  assert_int_equal(dvoice_sim_add_guild(f->sim, GUILD, &chan, 1), 0);
  dvoice_client_settings_default(&cs);
  cs.env = f->env.env;
  cs.user_id = USER;
  cs.token = TOKEN;
  cs.gateway_url = dvoice_sim_gateway_url(f->sim);
  dvoice_conn_settings_default(&tmpl);
  tmpl.tls.ca_file = dvoice_sim_ca_file(f->sim);
  cs.conn = &tmpl;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_gateway = on_gateway;
  assert_int_equal(dvoice_client_new(&f->cl, &f->loop, &cs, &ccb, f), 0);
  dvt_run_flag(&f->loop, &f->gw_ready, 10000);
}

/* Joins (with |tl| as the timeline, or none) until READY. */
static void join(fx *f, dv_uv_timeline *tl) {
  dvoice_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  f->ready = 0;
  dv_uv_client_set_timeline(f->cl, tl);
  assert_int_equal(dvoice_client_join(f->cl, GUILD, CHAN, DVOICE_JOIN_SELF_DEAF,
                                      &cb, f, &f->conn),
                   0);
  dv_uv_conn_set_timeline(f->conn, tl);
  dvt_run_flag(&f->loop, &f->ready, 10000);
  assert_false(f->failed);
}

static void leave(fx *f) {
  f->conn_closed = 0;
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed), 0);
  f->conn = NULL;
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_client_close(f->cl, client_closed), 0);
  dvt_run_flag(&f->loop, &f->client_closed, 5000);
  assert_int_equal(dvoice_sim_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  dvt_env_free(&f->env);
}

static void test_steps_in_order(void **state) {
  fx f;
  const dvoice_tstamp *at = f.tl.at;
  (void)state;
  fx_start(&f);
  join(&f, &f.tl);
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    print_message("# step %d at +%llu ns\n", k,
                  (unsigned long long)(at[k] - at[DV_UV_STEP_OP4]));
    assert_true(at[k] != 0);
  }
  /* The order the protocol imposes; Hello and Identify may come either
   * way round once the socket is open. */
  assert_true(at[DV_UV_STEP_OP4] <= at[DV_UV_STEP_EVENTS]);
  assert_true(at[DV_UV_STEP_EVENTS] <= at[DV_UV_STEP_DNS]);
  assert_true(at[DV_UV_STEP_DNS] <= at[DV_UV_STEP_TCP]);
  assert_true(at[DV_UV_STEP_TCP] <= at[DV_UV_STEP_TLS]);
  assert_true(at[DV_UV_STEP_TLS] <= at[DV_UV_STEP_WS_OPEN]);
  assert_true(at[DV_UV_STEP_WS_OPEN] <= at[DV_UV_STEP_HELLO]);
  assert_true(at[DV_UV_STEP_WS_OPEN] <= at[DV_UV_STEP_IDENTIFY]);
  assert_true(at[DV_UV_STEP_IDENTIFY] <= at[DV_UV_STEP_READY]);
  assert_true(at[DV_UV_STEP_READY] <= at[DV_UV_STEP_IPDISC]);
  assert_true(at[DV_UV_STEP_IPDISC] <= at[DV_UV_STEP_SELECT]);
  assert_true(at[DV_UV_STEP_SELECT] <= at[DV_UV_STEP_SESSION]);
  assert_true(at[DV_UV_STEP_SESSION] <= at[DV_UV_STEP_SENDABLE]);
  assert_true(at[DV_UV_STEP_SENDABLE] <= f.ready_at);
  leave(&f);
  fx_stop(&f);
}

static void test_no_timeline_records_nothing(void **state) {
  fx f;
  dv_uv_timeline before;
  (void)state;
  fx_start(&f);
  join(&f, &f.tl);
  leave(&f);
  before = f.tl;
  /* A second join without a timeline: the first one's record stays. */
  join(&f, NULL);
  leave(&f);
  assert_memory_equal(&before, &f.tl, sizeof(before));
  fx_stop(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_steps_in_order),
      cmocka_unit_test(test_no_timeline_records_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
