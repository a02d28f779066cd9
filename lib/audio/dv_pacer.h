/*
 * The pacer's scheduling logic (DESIGN.md section 4), pure: no clock, no
 * I/O, time is passed in. One pacer per loop serves every connection.
 *
 * Time: ticks sit on an absolute grid, origin + n * interval; the next
 * deadline is always the previous one plus the interval, never now plus
 * the interval, so the schedule does not drift. A tick later than its
 * deadline + late_tolerance is counted late. A tick one or more intervals
 * late is resynchronised: the missed grid points are skipped and counted
 * (missed slots, deficit), and each connection still sends at most one
 * packet per tick: never a burst.
 *
 * Lanes: connections are spread over up to |lanes| grids of the same
 * interval, each at its own phase, so that one wake-up sends at most about
 * lane_capacity packets instead of every connection's packet at once (the
 * last packet of a 1000-packet burst would leave milliseconds late, and
 * the burst itself is unkind to the network). A connection gets a lane
 * when it starts sending (the fullest lane below lane_capacity, else an
 * unused lane, else the emptiest) and keeps it until it has nothing left
 * to send (idle or held); its packets stay on that lane's grid. A new
 * lane's grid starts in the middle of the widest gap between the phases
 * of the lanes running, at least half an interval ahead. Each connection
 * sees an exact 20 ms grid; only the phase between connections differs,
 * which no receiver can observe (every stream has its own SSRC and jitter
 * buffer). With lanes = 1 every connection shares one grid. A grid whose
 * first slot comes more than late_tolerance late (the loop was busy, e.g.
 * starting hundreds of streams at once) starts at that tick instead: no
 * packet has left on it, so no receiver can tell (tick stats: reanchored).
 *
 * Each tick: first the send phase (every connection sends the packet it
 * prepared for this slot: callbacks.send), then the prepare phase (every
 * active connection gets its next frame from its push queue, its pull
 * source or its silence tail, and the glue builds and encrypts the packet:
 * callbacks.prepare). Variable work therefore never delays a send instant.
 *
 * Glue pattern:
 *   t = dv_pacer_get_expiry(p);        arm a timer at t (NONE: disarm)
 *   on timer: dv_pacer_on_tick(p, now); re-arm from dv_pacer_get_expiry
 * An idle pacer (no connection active) has no deadline; when a connection
 * becomes active the expiry becomes 0 ("now"), and the tick that follows
 * starts a new grid at its |now|.
 *
 * Streams: a connection is IDLE (nothing sent, not polled), ACTIVE (one
 * frame per tick), TAIL (five silence frames F8 FF FE after the source ran
 * dry or after stop) or QUIET (pull style only: tail sent, the source is
 * still asked each tick). RTP sequence and timestamp start at random values
 * drawn from the env's random hook and advance by 1 and 960 per prepared
 * packet (content is delayed by a stall, not dropped, so the timestamp
 * follows packets, not wall time).
 *
 * Callbacks may add and remove connections, push, play and stop; the
 * pacer itself must not be freed from inside a callback.
 */
#ifndef DV_PACER_H
#define DV_PACER_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "audio/dv_hist.h"
#include "audio/dv_opus.h"

typedef struct dv_pacer dv_pacer;
typedef struct dv_pacer_conn dv_pacer_conn;

#define DV_PACER_MAX_LANES 64
#define DV_PACER_DEFAULT_LANES 20
#define DV_PACER_DEFAULT_LANE_CAPACITY 32

typedef struct dv_pacer_settings {
  dvoice_tstamp interval;       /* default 20 ms */
  dvoice_tstamp late_tolerance; /* default 5 ms */
  /* Lanes (1..DV_PACER_MAX_LANES, default DV_PACER_DEFAULT_LANES) and
   * connections per lane before another lane opens (default
   * DV_PACER_DEFAULT_LANE_CAPACITY). 1 lane: every connection on one grid. */
  unsigned lanes;
  size_t lane_capacity;
} dv_pacer_settings;

/* Fills |s| with the defaults given beside each field. */
void dv_pacer_settings_default(dv_pacer_settings *s);

/* A frame handed to callbacks.prepare. */
typedef struct dv_pacer_frame {
  const uint8_t *data; /* Opus bytes, borrowed for the callback */
  size_t len;
  uint16_t seq;       /* RTP sequence number to use */
  uint32_t timestamp; /* RTP timestamp to use */
  int silence;        /* 1: a tail frame F8 FF FE (not DAVE-encrypted) */
  dvoice_tstamp due;  /* the grid slot this packet will be sent in */
} dv_pacer_frame;

/* What a pull source returns. */
typedef enum dv_pull_kind {
  DV_PULL_NOTHING = 0,  /* nothing now: silence tail, then quiet */
  DV_PULL_OPUS = 1,     /* data/len: one Opus frame, borrowed */
  DV_PULL_PCM_S16 = 2,  /* data: DV_OPUS_FRAME_VALUES int16, borrowed */
  DV_PULL_PCM_FLOAT = 3 /* data: DV_OPUS_FRAME_VALUES float, borrowed */
} dv_pull_kind;

/* |data| is borrowed until the prepare callback for this frame returns
 * (PCM: until the pull callback returns; it is encoded at once). */
typedef struct dv_pull_result {
  dv_pull_kind kind;
  const void *data;
  size_t len; /* DV_PULL_OPUS only */
} dv_pull_result;

typedef struct dv_pacer_callbacks {
  /*
   * Prepare phase: build the RTP packet for |f| (DAVE unless f->silence,
   * then transport encryption) into the connection's own buffer. Return 0,
   * or a negative code: the slot is lost (prepare_errors), and seq and
   * timestamp are not consumed. Required.
   */
  int (*prepare)(dv_pacer_conn *c, void *conn_ud, const dv_pacer_frame *f);
  /* Send phase: send the packet prepared for this slot. 0 or negative
   * (send_errors). Required. */
  int (*send)(dv_pacer_conn *c, void *conn_ud);
  /* Pull style: called exactly when a frame is due; fill |out|. A negative
   * return counts as a prepare error for the slot. Required for pull. */
  int (*pull)(dv_pacer_conn *c, void *conn_ud, dv_pull_result *out);
  /* Push style: the queue, having been refused a frame or filled above the
   * drain threshold, fell to the threshold. Optional. */
  void (*drain)(dv_pacer_conn *c, void *conn_ud);
  /* A stream started (|active| 1: first frame prepared after IDLE or
   * QUIET; send op 5 speaking) or ended (0: the tail is prepared).
   * Optional. */
  void (*stream)(dv_pacer_conn *c, void *conn_ud, int active);
} dv_pacer_callbacks;

typedef enum dv_pacer_style {
  DV_PACER_PUSH = 0,
  DV_PACER_PULL = 1
} dv_pacer_style;

typedef enum dv_pacer_state {
  DV_PACER_IDLE = 0,
  DV_PACER_ACTIVE = 1,
  DV_PACER_TAIL = 2,
  DV_PACER_QUIET = 3
} dv_pacer_state;

typedef struct dv_pacer_conn_settings {
  dv_pacer_style style;
  /* Push: capacity in frames (default 25, 500 ms) and largest frame
   * accepted (default DV_OPUS_MAX_PACKET). */
  size_t queue_frames;
  size_t max_frame;
  /* Push: drain notification level in frames (default queue_frames / 2). */
  size_t drain_threshold;
  /* Pull: nonzero creates an Opus encoder for PCM results. */
  int pcm;
  dv_opus_enc_settings opus;
  /* Silence frames at the end of a stream (default 5). */
  unsigned silence_frames;
} dv_pacer_conn_settings;

/* Fills |s| with the defaults given beside each field, for |style|. */
void dv_pacer_conn_settings_default(dv_pacer_conn_settings *s,
                                    dv_pacer_style style);

/* Per-connection statistics. */
typedef struct dv_pacer_stats {
  uint64_t packets_sent; /* send callbacks that returned 0 */
  uint64_t silence_sent; /* of which tail frames */
  uint64_t expected;     /* slots in which a packet was due (50/s) */
  uint64_t missed_slots; /* slots skipped by resynchronisation */
  uint64_t late_ticks;   /* sends later than deadline + tolerance */
  uint64_t send_errors;
  uint64_t prepare_errors; /* prepare/pull callback, encoder, bad frame */
  uint64_t streams;        /* streams started */
  dv_hist lateness;        /* lateness of each send, ns */
} dv_pacer_stats;

/* expected - packets_sent (0 if negative). */
uint64_t dv_pacer_stats_deficit(const dv_pacer_stats *s);

/* Pacer-wide tick statistics. */
typedef struct dv_pacer_tick_stats {
  uint64_t ticks; /* on_tick calls that ran a slot */
  uint64_t early; /* on_tick calls before the deadline (no-ops) */
  uint64_t late_ticks;
  uint64_t missed_slots;
  uint64_t restarts;   /* grids started after idle */
  uint64_t reanchored; /* new grids whose first slot came late: moved */
  dv_hist lateness;
} dv_pacer_tick_stats;

/*
 * Creates a pacer. |env| is copied (its random hook is required);
 * |s| NULL for defaults, copied; |cb| copied. Returns 0,
 * DVOICE_ERR_INVALID_ARGUMENT (NULL env/cb, no random hook, no prepare or
 * send callback, interval 0) or DVOICE_ERR_NOMEM.
 */
int dv_pacer_new(const dvoice_env *env, const dv_pacer_settings *s,
                 const dv_pacer_callbacks *cb, dv_pacer **out);
/* Frees the pacer and every connection. Not from inside a callback. */
void dv_pacer_free(dv_pacer *p);

/* Next deadline: 0 when a new grid must start now, DVOICE_TSTAMP_NONE when
 * idle. */
dvoice_tstamp dv_pacer_get_expiry(const dv_pacer *p);
/* During a send or prepare callback: the grid point of the lane being
 * served (its deadline); departures are measured against it. NONE outside
 * a tick. */
dvoice_tstamp dv_pacer_current_slot(const dv_pacer *p);
/* Lanes with at least one connection; the lane of |c| (-1: none now). */
size_t dv_pacer_lane_count(const dv_pacer *p);
int dv_pacer_conn_lane(const dv_pacer_conn *c);
/* Runs every lane's tick due at or before |now|; a call before the deadline
 * does nothing. Returns 0, or DVOICE_ERR_INVALID_STATE when called from inside
 * one of its own callbacks. */
int dv_pacer_on_tick(dv_pacer *p, dvoice_tstamp now);

/* The pacer's tick statistics, owned by |p| and updated by each tick. */
const dv_pacer_tick_stats *dv_pacer_get_tick_stats(const dv_pacer *p);
/* Connections currently registered (removed ones excluded). */
size_t dv_pacer_conn_count(const dv_pacer *p);

/*
 * Adds a connection in state IDLE; |s| NULL for push defaults (copied);
 * |conn_ud| is passed to every callback. Sequence and timestamp are drawn
 * from the random hook. Returns 0, DVOICE_ERR_INVALID_ARGUMENT (bad
 * settings, or pull without a pull callback) or DVOICE_ERR_NOMEM.
 */
int dv_pacer_conn_add(dv_pacer *p, const dv_pacer_conn_settings *s,
                      void *conn_ud, dv_pacer_conn **out);
/* Removes |c|: no callback runs for it afterwards; freed now, or at the end
 * of the tick when called from a callback. */
void dv_pacer_conn_remove(dv_pacer_conn *c);

/*
 * Push style: copies one Opus frame into the queue; an IDLE connection
 * becomes active. Returns 0, DVOICE_ERR_NOBUF (queue full: wait for
 * drain), DVOICE_ERR_TOO_LARGE (len > max_frame), DVOICE_ERR_INVALID_ARGUMENT
 * (len 0) or DVOICE_ERR_INVALID_STATE (a pull connection).
 */
int dv_pacer_conn_push(dv_pacer_conn *c, const uint8_t *frame, size_t len);
/* Frames queued, and the capacity. */
size_t dv_pacer_conn_queued(const dv_pacer_conn *c);
size_t dv_pacer_conn_queue_capacity(const dv_pacer_conn *c);

/* Pull style: start asking the source (IDLE/QUIET -> ACTIVE). 0 or
 * DVOICE_ERR_INVALID_STATE (a push connection). */
int dv_pacer_conn_play(dv_pacer_conn *c);
/* Ends the stream: drops queued frames, sends the silence tail if a stream
 * was running, then IDLE (the pull source is not asked meanwhile; frames
 * pushed afterwards start a new stream). */
void dv_pacer_conn_stop(dv_pacer_conn *c);

/*
 * Pauses (|hold| nonzero) or resumes a connection without losing anything:
 * while held it is skipped by both phases (no pull, no queue pop, no tail
 * progress, no statistics), and a packet prepared before the hold stays
 * prepared and goes out in the first slot after it ends. Pushing still
 * fills the queue. Used while the voice connection cannot send (resume).
 */
void dv_pacer_conn_hold(dv_pacer_conn *c, int hold);
int dv_pacer_conn_held(const dv_pacer_conn *c);

/* The connection's current state. */
dv_pacer_state dv_pacer_conn_state(const dv_pacer_conn *c);
/* Next sequence number and timestamp; setting them (e.g. to keep them
 * across a resume, or in tests). */
void dv_pacer_conn_get_rtp(const dv_pacer_conn *c, uint16_t *seq,
                           uint32_t *timestamp);
void dv_pacer_conn_set_rtp(dv_pacer_conn *c, uint16_t seq, uint32_t timestamp);
/* Draws new random start values (a new voice session). */
void dv_pacer_conn_randomize_rtp(dv_pacer_conn *c);
const dv_pacer_stats *dv_pacer_conn_stats(const dv_pacer_conn *c);
void *dv_pacer_conn_user_data(const dv_pacer_conn *c);

#endif
