/*
 * A fixed-size log-scale histogram of nanosecond durations (lateness,
 * inter-departure gaps): one bucket below 1024 ns, then four sub-buckets per
 * power of two up to 2^40 ns (~18 minutes; larger values land in the last
 * bucket). Quantiles are exact to within a quarter of a power of two and
 * never exceed the recorded maximum. No allocation; about 500 bytes.
 */
#ifndef DV_HIST_H
#define DV_HIST_H

#include <stddef.h>
#include <stdint.h>

#define DV_HIST_MIN_EXP 10
#define DV_HIST_MAX_EXP 39
#define DV_HIST_SUB 4
#define DV_HIST_BUCKETS                                                        \
  (1 + (DV_HIST_MAX_EXP - DV_HIST_MIN_EXP + 1) * DV_HIST_SUB)

typedef struct dv_hist {
  uint64_t count;
  uint64_t sum; /* saturating */
  uint64_t max;
  uint32_t bucket[DV_HIST_BUCKETS];
} dv_hist;

/* Empties |h|. */
void dv_hist_reset(dv_hist *h);
void dv_hist_record(dv_hist *h, uint64_t ns);
/* Bucket index of |ns|, and the largest value bucket |i| holds. */
size_t dv_hist_bucket_of(uint64_t ns);
uint64_t dv_hist_bucket_upper(size_t i);
/*
 * The value at quantile |ppm| (parts per million: 500000 = p50,
 * 990000 = p99, 999000 = p999, 1000000 = max): the upper bound of the
 * bucket holding that rank, capped at the maximum. 0 if empty.
 */
uint64_t dv_hist_quantile(const dv_hist *h, uint32_t ppm);

#endif
