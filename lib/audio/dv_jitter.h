/*
 * A per-speaker playout (jitter) buffer, pure: packets go in by RTP
 * sequence number as they arrive; the receive glue takes one frame out per
 * 20 ms tick. Modelled on songbird's playout buffer:
 *
 * - FILL: nothing is played until |depth| packets (default 5 = 100 ms) are
 *   buffered; then DRAIN.
 * - DRAIN: each take returns the frame with the next sequence number, or
 *   MISSING when that packet has not arrived (conceal: decode NULL, or the
 *   FEC copy in the following packet, which take() points at when present).
 *   When the buffer runs dry, it returns EMPTY and goes back to FILL (the
 *   speaker paused or stopped).
 * - Packets older than the playout point are late and dropped; packets
 *   more than |depth + spike| ahead are dropped too, unless nothing is
 *   buffered, in which case the buffer restarts at them (a new talk spurt
 *   after a long silence or a sequence jump).
 *
 * Sequence arithmetic wraps (16-bit). No allocation after creation.
 */
#ifndef DV_JITTER_H
#define DV_JITTER_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

typedef struct dv_jitter dv_jitter;

typedef struct dv_jitter_settings {
  unsigned depth;   /* packets buffered before playout (default 5) */
  unsigned spike;   /* extra slots for bursts (default 3) */
  size_t max_frame; /* largest payload accepted (default 1275) */
} dv_jitter_settings;

/* Fills |s| with the defaults given beside each field. */
void dv_jitter_settings_default(dv_jitter_settings *s);

/* Insert results (all >= 0; errors are negative). */
typedef enum dv_jitter_put {
  DV_JITTER_STORED = 0,
  DV_JITTER_DUPLICATE = 1, /* already buffered: dropped */
  DV_JITTER_LATE = 2,      /* at or before the playout point: dropped */
  DV_JITTER_AHEAD = 3      /* too far ahead while others wait: dropped */
} dv_jitter_put;

/* What one take returns. */
typedef enum dv_jitter_take {
  DV_JITTER_FILLING = 0, /* still filling: play nothing this tick */
  DV_JITTER_FRAME = 1,   /* |frame| holds the next packet */
  DV_JITTER_MISSING = 2, /* the next packet is missing: conceal */
  DV_JITTER_EMPTY = 3    /* ran dry: back to filling */
} dv_jitter_take;

typedef struct dv_jitter_frame {
  const uint8_t *data; /* valid until the next put/take/reset */
  size_t len;
  uint16_t seq;
  uint32_t timestamp;
  /* On MISSING: the packet after the missing one if buffered (its Opus
   * in-band FEC can rebuild the missing frame), else NULL. */
  const uint8_t *next_data;
  size_t next_len;
} dv_jitter_frame;

typedef struct dv_jitter_stats {
  uint64_t received, played, missing, late, duplicate, ahead, restarts;
} dv_jitter_stats;

/* Creates a buffer; |s| NULL for defaults (copied). Returns 0,
 * DVOICE_ERR_INVALID_ARGUMENT (depth 0, depth + spike > 64, max_frame 0)
 * or DVOICE_ERR_NOMEM. |mem| is borrowed for the buffer's lifetime. */
int dv_jitter_new(const dvoice_mem *mem, const dv_jitter_settings *s,
                  dv_jitter **out);
void dv_jitter_free(dv_jitter *jb);
/* Forgets every packet and returns to FILL. */
void dv_jitter_reset(dv_jitter *jb);

/*
 * Buffers a copy of |payload| (|len| bytes) for |seq|/|timestamp|.
 * Returns a dv_jitter_put value, or DVOICE_ERR_TOO_LARGE (len > max_frame)
 * or DVOICE_ERR_INVALID_ARGUMENT (len 0).
 */
int dv_jitter_put_packet(dv_jitter *jb, uint16_t seq, uint32_t timestamp,
                         const uint8_t *payload, size_t len);
/* Takes the frame for this tick (see above); fills |f| for FRAME and
 * MISSING. */
dv_jitter_take dv_jitter_take_frame(dv_jitter *jb, dv_jitter_frame *f);

/* Packets currently buffered. */
size_t dv_jitter_buffered(const dv_jitter *jb);
const dv_jitter_stats *dv_jitter_get_stats(const dv_jitter *jb);

#endif
