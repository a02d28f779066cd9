/* Unit tests for dv_pacer_conn_hold (the pause the connection glue uses
 * while a voice connection resumes), under a virtual clock: nothing is
 * pulled, popped or sent while held; the packet prepared before the hold
 * goes out first after it; sequence numbers stay consecutive; a held
 * connection lets the pacer go idle; pushing while held keeps frames. */
#include "dvt.h"

#include "audio/dv_pacer.h"

#define MS DVOICE_MS
#define T0 (1000 * DVOICE_SECONDS)

typedef struct hconn {
  dv_pacer_conn *c;
  uint16_t prepared_seq;
  int have;
  uint16_t sent_seq[256];
  size_t nsent;
  uint8_t first_byte[256];
  uint8_t prepared_byte;
  int pulls;
} hconn;

static int h_prepare(dv_pacer_conn *c, void *ud, const dv_pacer_frame *f) {
  hconn *h = ud;
  (void)c;
  assert_false(h->have); /* never prepared twice without a send */
  h->prepared_seq = f->seq;
  h->prepared_byte = f->data[0];
  h->have = 1;
  return 0;
}

static int h_send(dv_pacer_conn *c, void *ud) {
  hconn *h = ud;
  (void)c;
  assert_true(h->have);
  assert_true(h->nsent < 256);
  h->first_byte[h->nsent] = h->prepared_byte;
  h->sent_seq[h->nsent++] = h->prepared_seq;
  h->have = 0;
  return 0;
}

static int h_pull(dv_pacer_conn *c, void *ud, dv_pull_result *out) {
  hconn *h = ud;
  static const uint8_t frame[3] = {0x42, 0x42, 0x42};
  (void)c;
  h->pulls++;
  out->kind = DV_PULL_OPUS;
  out->data = frame;
  out->len = sizeof(frame);
  return 0;
}

static dv_pacer *new_pacer(dvt_env *e) {
  dv_pacer_callbacks cb;
  dv_pacer *p;
  memset(&cb, 0, sizeof(cb));
  cb.prepare = h_prepare;
  cb.send = h_send;
  cb.pull = h_pull;
  assert_int_equal(dv_pacer_new(&e->env, NULL, &cb, &p), 0);
  return p;
}

/* Runs ticks at every deadline up to |until|. */
static dvoice_tstamp run(dv_pacer *p, dvoice_tstamp now, dvoice_tstamp until) {
  while (1) {
    dvoice_tstamp t = dv_pacer_get_expiry(p);
    if (t == DVOICE_TSTAMP_NONE) {
      return now;
    }
    if (t > until) {
      return now;
    }
    if (t > now) {
      now = t;
    }
    assert_int_equal(dv_pacer_on_tick(p, now), 0);
  }
}

static void test_hold_push(void **state) {
  dvt_env e;
  dv_pacer *p;
  hconn h;
  dvoice_tstamp now = T0;
  uint8_t fr[1];
  (void)state;
  dvt_env_init(&e);
  memset(&h, 0, sizeof(h));
  p = new_pacer(&e);
  assert_int_equal(dv_pacer_conn_add(p, NULL, &h, &h.c), 0);
  for (int i = 0; i < 10; i++) {
    fr[0] = (uint8_t)i;
    assert_int_equal(dv_pacer_conn_push(h.c, fr, 1), 0);
  }
  /* Three packets out (frames 0..2), frame 3 prepared. */
  now = run(p, now, now + 60 * MS);
  assert_int_equal(h.nsent, 3);
  assert_true(h.have);
  assert_int_equal(h.prepared_byte, 3);
  dv_pacer_conn_hold(h.c, 1);
  assert_int_equal(dv_pacer_conn_held(h.c), 1);
  /* Held: the pacer goes idle, nothing is sent or popped. */
  now = run(p, now, now + 200 * MS);
  assert_int_equal(dv_pacer_get_expiry(p), DVOICE_TSTAMP_NONE);
  assert_int_equal(h.nsent, 3);
  assert_int_equal(dv_pacer_conn_queued(h.c), 6);
  /* Pushing while held keeps frames. */
  fr[0] = 10;
  assert_int_equal(dv_pacer_conn_push(h.c, fr, 1), 0);
  assert_int_equal(dv_pacer_get_expiry(p) == DVOICE_TSTAMP_NONE ||
                       dv_pacer_get_expiry(p) == 0,
                   1);
  now += 500 * MS;
  dv_pacer_conn_hold(h.c, 0);
  assert_int_equal(dv_pacer_get_expiry(p), 0);
  now = run(p, now, now + 400 * MS);
  /* Every frame went out once, in order, with consecutive sequence
   * numbers; then the five silence frames. */
  assert_int_equal(h.nsent, 11 + 5);
  for (size_t i = 0; i < 11; i++) {
    assert_int_equal(h.first_byte[i], i);
  }
  for (size_t i = 1; i < h.nsent; i++) {
    assert_int_equal((uint16_t)(h.sent_seq[i] - h.sent_seq[i - 1]), 1);
  }
  assert_int_equal(dv_pacer_conn_stats(h.c)->packets_sent, 16);
  dv_pacer_free(p);
  dvt_env_free(&e);
}

static void test_hold_pull(void **state) {
  dvt_env e;
  dv_pacer *p;
  hconn h;
  dv_pacer_conn_settings s;
  dvoice_tstamp now = T0;
  int pulls;
  (void)state;
  dvt_env_init(&e);
  memset(&h, 0, sizeof(h));
  p = new_pacer(&e);
  dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
  assert_int_equal(dv_pacer_conn_add(p, &s, &h, &h.c), 0);
  /* Held before it starts: play does not pull. */
  dv_pacer_conn_hold(h.c, 1);
  assert_int_equal(dv_pacer_conn_play(h.c), 0);
  now = run(p, now, now + 100 * MS);
  assert_int_equal(h.pulls, 0);
  assert_int_equal(h.nsent, 0);
  dv_pacer_conn_hold(h.c, 0);
  now = run(p, now, now + 100 * MS);
  pulls = h.pulls;
  assert_true(pulls >= 5);
  dv_pacer_conn_hold(h.c, 1);
  now = run(p, now, now + 100 * MS);
  assert_int_equal(h.pulls, pulls);
  /* Removing a held connection is fine. */
  dv_pacer_conn_remove(h.c);
  assert_int_equal(dv_pacer_conn_count(p), 0);
  dv_pacer_free(p);
  dvt_env_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hold_push),
      cmocka_unit_test(test_hold_pull),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
