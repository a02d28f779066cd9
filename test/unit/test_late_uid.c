/*
 * The join core with a user id learnt late (the built-in gateway's READY):
 * initialised with user_id 0, it acts on no voice state until
 * dv_join_set_user_id, then pairs as usual.
 */
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
#define OTHER 90351110224678913ull
#define CHAN 127121515262115840ull
#define MS (DVOICE_MS)

static void pop(dv_join *j, dv_join_action_type type, dv_join_action *out) {
  assert_int_equal(dv_join_next_action(j, out), 1);
  assert_int_equal(out->type, type);
}

static void none(dv_join *j) {
  dv_join_action a;
  assert_int_equal(dv_join_next_action(j, &a), 0);
}

static void init_unknown(dv_join *j, dvt_env *e) {
  dv_join_config cfg;
  dvt_env_init(e);
  dv_join_config_default(&cfg);
  cfg.guild_id = GUILD;
  assert_int_equal(dv_join_init(j, &cfg, &e->env), 0);
}

/* Nothing is matched while the id is unknown, not even a state for user
 * 0; once set, the attempt pairs with the events that follow. */
static void learn_then_pair(void **state) {
  dvt_env e;
  dv_join j;
  dv_join_action a;
  (void)state;
  init_unknown(&j, &e);
  assert_int_equal(dv_join_start(&j, CHAN, 0, 0, 0), 0);
  pop(&j, DV_JOIN_ACT_SEND_OP4, &a);
  assert_true(a.u.op4.channel_id == CHAN);
  assert_int_equal(dv_join_on_voice_state(&j, 0, 1, CHAN, "s0", 1 * MS), 0);
  assert_int_equal(dv_join_on_voice_state(&j, USER, 1, CHAN, "s1", 2 * MS), 0);
  assert_int_equal(dv_join_on_voice_server(&j, "t1", "e1", 3 * MS), 0);
  none(&j);
  assert_int_equal(dv_join_get_state(&j), DV_JOIN_SIGNALLING);

  assert_int_equal(dv_join_set_user_id(&j, USER), 0);
  /* Setting the same id again is harmless; another one is refused. */
  assert_int_equal(dv_join_set_user_id(&j, USER), 0);
  assert_int_equal(dv_join_set_user_id(&j, OTHER), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_join_set_user_id(&j, 0), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_set_user_id(NULL, USER),
                   DVOICE_ERR_INVALID_ARGUMENT);

  /* Another user's state is still ignored; ours completes the pair. */
  assert_int_equal(dv_join_on_voice_state(&j, OTHER, 1, CHAN, "sx", 4 * MS), 0);
  none(&j);
  assert_int_equal(dv_join_on_voice_state(&j, USER, 1, CHAN, "s2", 5 * MS), 0);
  pop(&j, DV_JOIN_ACT_CONNECT, &a);
  assert_string_equal(a.u.creds.session_id, "s2");
  assert_string_equal(a.u.creds.token, "t1");
  assert_string_equal(a.u.creds.endpoint, "e1");
  assert_int_equal(dv_join_get_state(&j), DV_JOIN_CONNECTED);
  none(&j);
  dv_join_free(&j);
  dvt_env_free(&e);
}

/* Unknown id: a null channel for "us" cannot be told from anyone's, so it
 * ends nothing; the join still times out on its own. */
static void unknown_times_out(void **state) {
  dvt_env e;
  dv_join j;
  dv_join_action a;
  (void)state;
  init_unknown(&j, &e);
  assert_int_equal(dv_join_start(&j, CHAN, 0, 0, 0), 0);
  pop(&j, DV_JOIN_ACT_SEND_OP4, &a);
  assert_int_equal(dv_join_on_voice_state(&j, USER, 0, 0, NULL, 1 * MS), 0);
  none(&j);
  assert_true(dv_join_get_expiry(&j) != DVOICE_TSTAMP_NONE);
  assert_int_equal(dv_join_handle_expiry(&j, dv_join_get_expiry(&j)), 0);
  assert_int_equal(dv_join_get_state(&j), DV_JOIN_ENDED);
  dv_join_free(&j);
  dvt_env_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(learn_then_pair),
      cmocka_unit_test(unknown_times_out),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
