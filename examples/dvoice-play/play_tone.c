/*
 * Dominant-frequency estimate by Goertzel scan. See play_tone.h.
 */
#include "play_tone.h"

#include <math.h>
#include <stdlib.h>

#define RATE 48000.0

/* Power of the DFT bin at |f| over |x| (already mono, |n| samples). */
static double goertzel(const float *x, size_t n, double f) {
  double w = 2.0 * M_PI * f / RATE;
  double coeff = 2.0 * cos(w);
  double s1 = 0, s2 = 0;
  size_t i;
  for (i = 0; i < n; i++) {
    double s0 = x[i] + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coeff * s1 * s2;
}

double play_dominant_freq(const int16_t *stereo, size_t n, double lo, double hi,
                          double *share) {
  size_t start = 0, len = n, i;
  float *x;
  double best_f = 0, best_p = -1, energy = 0, f;
  if (share != NULL) {
    *share = 0;
  }
  if (n < 480 || hi <= lo || lo <= 0) {
    return 0;
  }
  /* The middle second: enough for 1 Hz bins, skips fades at both ends. */
  if (len > 48000) {
    start = (n - 48000) / 2;
    len = 48000;
  }
  x = malloc(len * sizeof(*x));
  if (x == NULL) {
    return 0;
  }
  for (i = 0; i < len; i++) {
    x[i] = ((float)stereo[2 * (start + i)] + stereo[2 * (start + i) + 1]) /
           65536.0f;
    energy += (double)x[i] * x[i];
  }
  if (energy <= 1e-9) {
    free(x);
    return 0;
  }
  for (f = lo; f <= hi; f += 10.0) {
    double p = goertzel(x, len, f);
    if (p > best_p) {
      best_p = p;
      best_f = f;
    }
  }
  for (f = best_f - 10.0; f <= best_f + 10.0; f += 1.0) {
    double p;
    if (f < lo || f > hi) {
      continue;
    }
    p = goertzel(x, len, f);
    if (p > best_p) {
      best_p = p;
      best_f = f;
    }
  }
  /* Parseval: a bin's power is N/2 times the sinusoid's mean power. */
  if (share != NULL) {
    *share = (2.0 * best_p / (double)len) / energy;
    if (*share > 1.0) {
      *share = 1.0;
    }
  }
  free(x);
  return best_f;
}
