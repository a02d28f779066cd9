/*
 * Shared pieces of the benchmarks that measure on the simulator's side:
 * arrival statistics of paced RTP streams against the ideal 20 ms grid
 * (used by bench_djs_pacing for discord.js and meant for bench_pacing for
 * dvoice, so both are measured the same way), percentiles, and test
 * certificates made with the openssl CLI.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <dvoice/dvoice.h>

/* A growable set of samples (doubles) with nearest-rank quantiles. */
typedef struct bench_samples {
  double *v;
  size_t n, cap;
  int sorted;
} bench_samples;

/* Appends |x|; returns 0 or -1 (out of memory). */
int bench_samples_add(bench_samples *s, double x);
/* The q-quantile (0 <= q <= 1) by nearest rank; NAN if empty. Sorts. */
double bench_samples_quantile(bench_samples *s, double q);
void bench_samples_free(bench_samples *s);

/*
 * Arrival statistics over one or more streams. For each stream (arrival
 * times a_0..a_{n-1} of consecutive packets, one per |period|):
 *  - grid lateness: a_k - (t0 + k * period), with t0 = min_k(a_k - k *
 *    period), i.e. how far each packet arrived behind the earliest grid
 *    that no packet beat. A pacer that keeps an absolute schedule scores
 *    near 0; drift and stalls push it up. Pooled over all streams.
 *  - inter-arrival deviation: |a_k - a_{k-1} - period|, pooled.
 *  - drift: the least-squares slope of (a_k - a_0 - k * period) against
 *    k, times the run's length (ms) and relative to the period (ppm): how
 *    much faster (negative) or slower (positive) than 50 packets/s the
 *    stream ran. The largest magnitude over the streams is kept.
 */
typedef struct bench_arrivals {
  bench_samples grid_ms;
  bench_samples ia_ms;
  size_t streams;
  size_t packets;
  double drift_ms; /* signed drift of the stream with the largest |drift| */
  double drift_ppm;
  double span_s; /* longest stream, first to last arrival */
} bench_arrivals;

void bench_arrivals_init(bench_arrivals *a);
/* Adds a stream, skipping its first |skip| packets (warm-up). Returns 0 or
 * -1 (out of memory). Streams with fewer than 2 packets add nothing. */
int bench_arrivals_add(bench_arrivals *a, const dvoice_tstamp *t, size_t n,
                       size_t skip, uint64_t period_ns);
void bench_arrivals_free(bench_arrivals *a);

/* Writes the statistics as one JSON object (no newline): {"streams",
 * "packets", "grid_ms":{p50,p99,p999,max}, "ia_dev_ms":{...}, "drift_ms",
 * "drift_ppm", "span_s"}. */
void bench_arrivals_json(bench_arrivals *a, FILE *out);
/* Writes a header line for bench_arrivals_row. */
void bench_arrivals_header(FILE *out);
/* Writes one table row labelled |label|. */
void bench_arrivals_row(bench_arrivals *a, const char *label, FILE *out);

/* Test certificates in a fresh temp dir: a CA and a server certificate for
 * localhost and 127.0.0.1 (P-256, two days). */
typedef struct bench_certs {
  char dir[128];
  char ca[192], cert[192], key[192];
} bench_certs;

/* Returns 0 or -1 (mkdtemp or openssl failed; a message went to stderr). */
int bench_certs_make(bench_certs *c);
/* Removes the temp dir and everything in it. */
void bench_certs_remove(bench_certs *c);

#endif
