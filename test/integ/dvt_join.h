/*
 * Helpers shared by the dvoice_client integration tests (join_adapter,
 * join_builtin, join_uid, ...): a space-separated event log, a
 * pre-encoded Opus tone and a sum over the simulator's JSON report.
 */
#ifndef DVT_JOIN_H
#define DVT_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audio/dv_opus.h"

/* Appends |s| to the space-separated list in |buf| (|cap| bytes). */
void dvt_append(char *buf, size_t cap, const char *s);

/* Encodes |n| 20 ms stereo frames of a 440 Hz triangle tone into
 * frames[i] (DV_OPUS_MAX_PACKET bytes each), lengths in lens[i]. */
void dvt_encode_tone(uint8_t (*frames)[DV_OPUS_MAX_PACKET], size_t *lens,
                     int n);

/* Sums every integer member named |key| anywhere under |j| (objects and
 * arrays, recursively); 0 when there is none. */
long long dvt_json_sum_key(const json_t *j, const char *key);

#endif
