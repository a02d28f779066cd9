/*
 * Dominant-frequency estimate of decoded audio, used by dvoice-play's
 * simulator verdict: a Goertzel scan (single-bin DFTs) over a coarse grid,
 * then a fine grid around the best bin. Pure arithmetic; no I/O.
 */
#ifndef PLAY_TONE_H
#define PLAY_TONE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns the frequency (Hz, 1 Hz resolution) with the most energy between
 * |lo| and |hi| Hz in |n| interleaved stereo s16 samples at 48 kHz (left
 * and right are averaged), or 0 if |n| is under 480 samples (10 ms) or the
 * signal is silent. At most the middle second is analysed. If |share| is
 * not NULL it receives that bin's share of the signal's energy (0..1; a
 * pure tone gives about 1).
 */
double play_dominant_freq(const int16_t *stereo, size_t n, double lo, double hi,
                          double *share);

#endif
