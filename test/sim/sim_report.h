/*
 * What the simulator saw, per session: a plain struct tests read directly,
 * and a JSON writer for programs (dvoice-sim) and failing tests.
 */
#ifndef DV_SIM_REPORT_H
#define DV_SIM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

/* One protocol violation: what the peer did wrong, when, and the close code
 * the simulator answered with (0: recorded only, the connection stays up). */
typedef struct dv_sim_violation {
  dvoice_tstamp when;
  int close_code;
  char what[120];
} dv_sim_violation;

/* A growable list of violations. */
typedef struct dv_sim_violations {
  dv_sim_violation *v;
  size_t n;
  size_t cap;
} dv_sim_violations;

/* Media-side counters for one session (the client's own stream). */
typedef struct dv_sim_media_stats {
  uint64_t discovery_requests; /* IP discovery requests answered */
  uint64_t keepalives;         /* datagrams shorter than an RTP header */
  uint64_t rtcp;               /* RTCP packets (PT 200..206), not decrypted */
  uint64_t received;           /* RTP packets with this session's SSRC */
  uint64_t decrypted;          /* of which the AEAD check passed */
  uint64_t decrypt_failures;   /* AEAD check failed or packet too short */
  uint64_t before_key;         /* RTP before Session Description */
  uint64_t before_speaking;    /* RTP before the first op 5 */
  uint64_t header_errors;      /* version != 2 or PT != 120 */
  uint64_t ssrc_errors;        /* RTP from this session's address, other SSRC */
  uint64_t missing;            /* sequence numbers skipped (net of late fill) */
  uint64_t duplicates;         /* sequence numbers seen twice */
  uint64_t reordered;          /* packets older than the highest seen */
  uint64_t ts_errors;          /* timestamp != expected (+960 per seq step) */
  uint64_t silence_frames;     /* payload exactly F8 FF FE */
  uint64_t decoded;            /* payloads Opus-decoded (if enabled) */
  uint64_t decode_failures;    /* opus_decode() < 0 */
  uint64_t forwarded;          /* copies sent to other members */
  uint32_t first_seq, last_seq; /* first and highest sequence number */
  uint32_t first_ts, last_ts;
  dvoice_tstamp first_arrival; /* DVOICE_TSTAMP_NONE until the first packet */
  dvoice_tstamp last_arrival;
  /* Inter-arrival deltas between consecutive in-order packets, ns. */
  uint64_t ia_count;
  double ia_mean_ns;
  double ia_m2; /* Welford accumulator; stddev from it */
  uint64_t ia_min_ns, ia_max_ns;
  uint64_t ia_max_dev_ns; /* max |delta - 20 ms| */
  double jitter_ns;       /* RFC 3550 interarrival jitter estimate */
  /* Arrival minus the media clock's grid (anchored at the first packet,
   * 48 kHz timestamps), over in-order packets: a pacer's drift and spread.
   * Both 0 until a second packet. */
  int64_t drift_min_ns, drift_max_ns;
} dv_sim_media_stats;

/* Everything recorded for one registered session. */
typedef struct dv_sim_session_report {
  uint32_t identifies; /* accepted Identify messages */
  uint32_t resumes;    /* accepted Resume messages */
  uint32_t resume_failures;
  uint32_t connections; /* WebSocket connections bound to the session */
  uint32_t heartbeats;  /* valid op 3 received */
  uint32_t acks_sent;
  uint32_t acks_dropped; /* by command */
  uint32_t select_protocols;
  uint32_t speaking;   /* valid op 5 received */
  uint32_t replayed;   /* messages re-sent after a resume */
  int last_close_code; /* last close code sent or received; 0 if none */
  char mode[48];       /* selected transport mode, "" before op 1 */
  dv_sim_violations violations;
  dv_sim_media_stats media;
} dv_sim_session_report;

/* Appends a violation; returns 0 or DVOICE_ERR_NOMEM. */
int dv_sim_violations_add(dv_sim_violations *l, const dvoice_mem *mem,
                          dvoice_tstamp when, int close_code, const char *what);
void dv_sim_violations_free(dv_sim_violations *l, const dvoice_mem *mem);
/* Nonzero if a recorded violation's text contains |needle|. */
int dv_sim_violations_find(const dv_sim_violations *l, const char *needle);

void dv_sim_media_stats_init(dv_sim_media_stats *s);
/* Standard deviation of the inter-arrival deltas, ns (0 below 2 samples). */
double dv_sim_media_stats_ia_stddev(const dv_sim_media_stats *s);

/* Appends |r| as one JSON object (no trailing newline) to |out|. */
int dv_sim_session_report_json(const dv_sim_session_report *r,
                               const char *session_id, const char *user_id,
                               uint32_t ssrc, dv_buf *out);

#endif
