/*
 * The benchmarks' shared arrival statistics (bench/bench_common), on
 * synthetic arrival series whose lateness, jitter and drift are known.
 */
#include "dvt.h"

#include <math.h>

#include "../../bench/bench_common.h"

#define P (20 * DVOICE_MS)

static void test_quantiles(void **state) {
  bench_samples s = {0};
  (void)state;
  assert_true(isnan(bench_samples_quantile(&s, 0.5)));
  for (int i = 100; i >= 1; i--) {
    assert_int_equal(bench_samples_add(&s, (double)i), 0);
  }
  /* Nearest rank: p50 of 1..100 is 50, p99 is 99, max 100, min 1. */
  assert_true(bench_samples_quantile(&s, 0.5) == 50.0);
  assert_true(bench_samples_quantile(&s, 0.99) == 99.0);
  assert_true(bench_samples_quantile(&s, 0.999) == 100.0);
  assert_true(bench_samples_quantile(&s, 1.0) == 100.0);
  assert_true(bench_samples_quantile(&s, 0.0) == 1.0);
  bench_samples_free(&s);
}

/* A perfect grid: no lateness, no jitter, no drift. */
static void test_perfect_grid(void **state) {
  dvoice_tstamp t[500];
  bench_arrivals a;
  (void)state;
  for (size_t k = 0; k < 500; k++) {
    t[k] = 5 * DVOICE_MS + k * P;
  }
  bench_arrivals_init(&a);
  assert_int_equal(bench_arrivals_add(&a, t, 500, 0, P), 0);
  assert_int_equal(a.streams, 1);
  assert_int_equal(a.packets, 500);
  assert_true(bench_samples_quantile(&a.grid_ms, 1.0) == 0.0);
  assert_true(bench_samples_quantile(&a.ia_ms, 1.0) == 0.0);
  assert_true(fabs(a.drift_ms) < 1e-9);
  bench_arrivals_free(&a);
}

/* One packet 3 ms late, a first packet 2 ms late: lateness is measured
 * from the earliest grid, so the first packet's delay does not shift the
 * others; the late packet shows in both lateness and inter-arrival. */
static void test_late_packets(void **state) {
  dvoice_tstamp t[1000];
  bench_arrivals a;
  (void)state;
  for (size_t k = 0; k < 1000; k++) {
    t[k] = DVOICE_SECONDS + k * P;
  }
  t[0] += 2 * DVOICE_MS;
  t[500] += 3 * DVOICE_MS;
  bench_arrivals_init(&a);
  assert_int_equal(bench_arrivals_add(&a, t, 1000, 0, P), 0);
  assert_true(bench_samples_quantile(&a.grid_ms, 0.5) == 0.0);
  assert_true(fabs(bench_samples_quantile(&a.grid_ms, 1.0) - 3.0) < 1e-9);
  assert_true(fabs(bench_samples_quantile(&a.grid_ms, 0.999) - 2.0) < 1e-9);
  assert_true(fabs(bench_samples_quantile(&a.ia_ms, 1.0) - 3.0) < 1e-9);
  /* Two outliers barely tilt the least-squares drift. */
  assert_true(fabs(a.drift_ms) < 0.1);
  /* Skipping the first packet leaves only the 3 ms one. */
  bench_arrivals_free(&a);
  bench_arrivals_init(&a);
  assert_int_equal(bench_arrivals_add(&a, t, 1000, 1, P), 0);
  assert_int_equal(a.packets, 999);
  assert_true(bench_samples_quantile(&a.grid_ms, 0.99) == 0.0);
  assert_true(fabs(bench_samples_quantile(&a.grid_ms, 1.0) - 3.0) < 1e-9);
  bench_arrivals_free(&a);
}

/* A stream 1000 ppm slow (20.02 ms per packet) drifts 20 ms over 1001
 * packets and its lateness grows linearly; pooling a perfect stream keeps
 * the worse drift. */
static void test_drift_and_pooling(void **state) {
  dvoice_tstamp slow[1001], good[1001];
  bench_arrivals a;
  (void)state;
  for (size_t k = 0; k < 1001; k++) {
    slow[k] = k * (P + (dvoice_tstamp)20000);
    good[k] = 7 * DVOICE_MS + k * P;
  }
  bench_arrivals_init(&a);
  assert_int_equal(bench_arrivals_add(&a, good, 1001, 0, P), 0);
  assert_int_equal(bench_arrivals_add(&a, slow, 1001, 0, P), 0);
  assert_int_equal(a.streams, 2);
  assert_int_equal(a.packets, 2002);
  assert_true(fabs(a.drift_ms - 20.0) < 1e-6);
  assert_true(fabs(a.drift_ppm - 1000.0) < 1e-6);
  assert_true(fabs(bench_samples_quantile(&a.grid_ms, 1.0) - 20.0) < 1e-6);
  assert_true(fabs(bench_samples_quantile(&a.ia_ms, 1.0) - 0.02) < 1e-6);
  /* Too short streams add nothing. */
  assert_int_equal(bench_arrivals_add(&a, good, 1, 0, P), 0);
  assert_int_equal(bench_arrivals_add(&a, good, 10, 9, P), 0);
  assert_int_equal(a.streams, 2);
  bench_arrivals_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quantiles),
      cmocka_unit_test(test_perfect_grid),
      cmocka_unit_test(test_late_packets),
      cmocka_unit_test(test_drift_and_pooling),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
