/* Unit tests for the per-speaker playout buffer (lib/audio/dv_jitter). */
#include "dvt.h"

#include "audio/dv_jitter.h"
#include "util/dv_rw.h"

/* Payload: the sequence number, big-endian, twice. */
static int put(dv_jitter *jb, uint16_t seq) {
  uint8_t p[4];
  dv_put_u16(p, seq);
  dv_put_u16(p + 2, seq);
  return dv_jitter_put_packet(jb, seq, (uint32_t)seq * 960u, p, sizeof(p));
}

static void expect_frame(dv_jitter *jb, uint16_t seq) {
  dv_jitter_frame f;
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_FRAME);
  assert_int_equal(f.seq, seq);
  assert_int_equal(f.len, 4);
  assert_int_equal(dv_get_u16(f.data), seq);
  assert_int_equal(f.timestamp, (uint32_t)seq * 960u);
}

static void test_fill_then_drain_in_order(void **state) {
  dv_jitter *jb;
  dv_jitter_frame f;
  (void)state;
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_FILLING);
  /* One packet arrives per tick: four ticks of filling, then playout
   * 100 ms behind. */
  for (uint16_t s = 0; s < 20; s++) {
    assert_int_equal(put(jb, s), DV_JITTER_STORED);
    if (s < 4) {
      assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_FILLING);
    } else {
      expect_frame(jb, (uint16_t)(s - 4));
    }
  }
  /* The speaker stops: the rest drains, then EMPTY and filling again. */
  for (uint16_t s = 16; s < 20; s++) {
    expect_frame(jb, s);
  }
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_EMPTY);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_FILLING);
  assert_true(dv_jitter_get_stats(jb)->played == 20);
  dv_jitter_free(jb);
}

static void test_reorder_loss_fec_pointer(void **state) {
  dv_jitter *jb;
  dv_jitter_frame f;
  static const uint16_t order[] = {100, 102, 101, 104, 105, 106};
  (void)state;
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
    assert_int_equal(put(jb, order[i]), DV_JITTER_STORED);
  }
  expect_frame(jb, 100);
  expect_frame(jb, 101);
  expect_frame(jb, 102);
  /* 103 never arrived: conceal, with 104 offered for its FEC. */
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_MISSING);
  assert_int_equal(f.seq, 103);
  assert_null(f.data);
  assert_non_null(f.next_data);
  assert_int_equal(dv_get_u16(f.next_data), 104);
  assert_int_equal(f.timestamp, 103u * 960u);
  /* It arrives now: too late. A duplicate is dropped too. */
  assert_int_equal(put(jb, 103), DV_JITTER_LATE);
  assert_int_equal(put(jb, 105), DV_JITTER_DUPLICATE);
  expect_frame(jb, 104);
  expect_frame(jb, 105);
  expect_frame(jb, 106);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_EMPTY);
  assert_true(dv_jitter_get_stats(jb)->missing == 1);
  assert_true(dv_jitter_get_stats(jb)->late == 1);
  assert_true(dv_jitter_get_stats(jb)->duplicate == 1);
  dv_jitter_free(jb);
}

static void test_rewind_while_filling(void **state) {
  dv_jitter *jb;
  (void)state;
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  /* 7 arrives before 5 and 6: nothing played yet, so they are kept. */
  assert_int_equal(put(jb, 7), DV_JITTER_STORED);
  assert_int_equal(put(jb, 5), DV_JITTER_STORED);
  assert_int_equal(put(jb, 6), DV_JITTER_STORED);
  assert_int_equal(put(jb, 8), DV_JITTER_STORED);
  assert_int_equal(put(jb, 9), DV_JITTER_STORED);
  /* A rewind that would not fit (9 - 0 + 1 > 8 slots) is late. */
  assert_int_equal(put(jb, 0), DV_JITTER_LATE);
  for (uint16_t s = 5; s <= 9; s++) {
    expect_frame(jb, s);
  }
  dv_jitter_free(jb);
}

static void test_ahead_and_restart(void **state) {
  dv_jitter *jb;
  dv_jitter_frame f;
  (void)state;
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  for (uint16_t s = 10; s < 15; s++) {
    assert_int_equal(put(jb, s), DV_JITTER_STORED);
  }
  /* 8 slots: 18 fits, 18 + 8 does not while others wait. */
  assert_int_equal(put(jb, 17), DV_JITTER_STORED);
  assert_int_equal(put(jb, 18), DV_JITTER_AHEAD);
  for (uint16_t s = 10; s < 15; s++) {
    expect_frame(jb, s);
  }
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_MISSING);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_MISSING);
  expect_frame(jb, 17);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_EMPTY);
  /* A new talk spurt far ahead restarts the buffer there. */
  assert_int_equal(put(jb, 5000), DV_JITTER_STORED);
  assert_true(dv_jitter_get_stats(jb)->restarts == 1);
  for (uint16_t s = 5001; s < 5005; s++) {
    assert_int_equal(put(jb, s), DV_JITTER_STORED);
  }
  expect_frame(jb, 5000);
  dv_jitter_reset(jb);
  assert_int_equal(dv_jitter_buffered(jb), 0);
  assert_int_equal(dv_jitter_take_frame(jb, &f), DV_JITTER_FILLING);
  dv_jitter_free(jb);
}

static void test_sequence_wrap(void **state) {
  dv_jitter *jb;
  (void)state;
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  for (uint32_t s = 65530; s < 65540; s++) {
    assert_int_equal(put(jb, (uint16_t)s), DV_JITTER_STORED);
    if (s >= 65534) {
      expect_frame(jb, (uint16_t)(s - 4));
    }
  }
  assert_int_equal(put(jb, 65533), DV_JITTER_LATE);
  dv_jitter_free(jb);
}

static int make_one(const dvoice_mem *mem, void *ud) {
  dv_jitter *jb;
  int rv = dv_jitter_new(mem, NULL, &jb);
  (void)ud;
  dv_jitter_free(jb);
  return rv;
}

static void test_args_and_nomem(void **state) {
  dv_jitter *jb;
  dv_jitter_settings s;
  uint8_t big[1276] = {0};
  (void)state;
  assert_int_equal(dvt_mem_fail_each(make_one, NULL), 3);
  dv_jitter_settings_default(&s);
  s.depth = 0;
  assert_int_equal(dv_jitter_new(NULL, &s, &jb), DVOICE_ERR_INVALID_ARGUMENT);
  dv_jitter_settings_default(&s);
  s.spike = 60;
  assert_int_equal(dv_jitter_new(NULL, &s, &jb), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_jitter_new(NULL, NULL, &jb), 0);
  assert_int_equal(dv_jitter_put_packet(jb, 1, 1, big, sizeof(big)),
                   DVOICE_ERR_TOO_LARGE);
  assert_int_equal(dv_jitter_put_packet(jb, 1, 1, big, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_jitter_free(jb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fill_then_drain_in_order),
      cmocka_unit_test(test_reorder_loss_fec_pointer),
      cmocka_unit_test(test_rewind_while_filling),
      cmocka_unit_test(test_ahead_and_restart),
      cmocka_unit_test(test_sequence_wrap),
      cmocka_unit_test(test_args_and_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
