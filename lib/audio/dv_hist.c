#include "audio/dv_hist.h"

#include <string.h>

void dv_hist_reset(dv_hist *h) {
  memset(h, 0, sizeof(*h));
}

/* Index of the highest set bit; |v| is nonzero (every packet records one
 * value, so this is on the send path). */
static unsigned msb64(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return 63u - (unsigned)__builtin_clzll(v);
#else
  unsigned e = 0;
  while (v >>= 1) {
    e++;
  }
  return e;
#endif
}

size_t dv_hist_bucket_of(uint64_t ns) {
  unsigned e;
  if (ns < ((uint64_t)1 << DV_HIST_MIN_EXP)) {
    return 0;
  }
  e = msb64(ns);
  if (e > DV_HIST_MAX_EXP) {
    return DV_HIST_BUCKETS - 1;
  }
  return 1 + (size_t)(e - DV_HIST_MIN_EXP) * DV_HIST_SUB +
         (size_t)((ns >> (e - 2)) & (DV_HIST_SUB - 1));
}

uint64_t dv_hist_bucket_upper(size_t i) {
  unsigned e, sub;
  if (i == 0) {
    return ((uint64_t)1 << DV_HIST_MIN_EXP) - 1;
  }
  if (i >= DV_HIST_BUCKETS - 1) {
    return UINT64_MAX;
  }
  e = DV_HIST_MIN_EXP + (unsigned)((i - 1) / DV_HIST_SUB);
  sub = (unsigned)((i - 1) % DV_HIST_SUB);
  return ((uint64_t)1 << e) + ((uint64_t)(sub + 1) << (e - 2)) - 1;
}

void dv_hist_record(dv_hist *h, uint64_t ns) {
  size_t i = dv_hist_bucket_of(ns);
  h->count++;
  h->sum = h->sum + ns < h->sum ? UINT64_MAX : h->sum + ns;
  if (ns > h->max) {
    h->max = ns;
  }
  if (h->bucket[i] != UINT32_MAX) {
    h->bucket[i]++;
  }
}

uint64_t dv_hist_quantile(const dv_hist *h, uint32_t ppm) {
  uint64_t rank, seen = 0;
  if (h->count == 0) {
    return 0;
  }
  if (ppm >= 1000000) {
    return h->max;
  }
  /* Rank of the quantile, 1-based, rounded up. */
  rank = (h->count * ppm + 999999) / 1000000;
  if (rank == 0) {
    rank = 1;
  }
  for (size_t i = 0; i < DV_HIST_BUCKETS; i++) {
    seen += h->bucket[i];
    if (seen >= rank) {
      uint64_t up = dv_hist_bucket_upper(i);
      return up < h->max ? up : h->max;
    }
  }
  return h->max;
}
