/*
 * The simulator's UDP media server, as a pure core: fed (datagram, source
 * address, now), it queues (datagram, destination) pairs and reports its next
 * deadline. It answers IP discovery, decrypts and checks every RTP packet
 * against the session the voice gateway core negotiated, records arrival
 * times, forwards audio to the other members of the channel (re-encrypted
 * for each), plays fake speakers, and loses, duplicates or reorders its own
 * outgoing datagrams on command.
 *
 * The media server reads sessions from a dv_sim_vgw (borrowed): free the
 * media server before the gateway.
 */
#ifndef DV_SIM_MEDIA_H
#define DV_SIM_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "sim_vgw.h"
#include "util/dv_buf.h"

/* An IPv4 address and port, both in host byte order. */
typedef struct dv_sim_addr {
  uint32_t ip;
  uint16_t port;
} dv_sim_addr;

typedef struct dv_sim_media_settings {
  /* Outgoing datagrams (to clients) lost, duplicated, or held back and sent
   * after the next one, in parts per million, drawn from the random hook.
   * Default 0. */
  uint32_t loss_ppm;
  uint32_t dup_ppm;
  uint32_t reorder_ppm;
  /* Nonzero: Opus-decode every payload and count failures. Default 1. */
  int decode_opus;
  /* Nonzero: forward each client's audio to the other members. Default 1. */
  int forward;
  /* Nonzero: fake speakers' packets carry an encrypted one-byte-header RTP
   * extension, as Discord clients' packets do. Default 1. */
  int speaker_extension;
  /* Arrival times kept per session (oldest first). Default 3000 (60 s). */
  size_t max_arrivals;
} dv_sim_media_settings;

void dv_sim_media_settings_default(dv_sim_media_settings *s);

/* An outgoing datagram; the receiver of dv_sim_media_pop owns |data|. */
typedef struct dv_sim_dgram {
  dv_buf data;
  dv_sim_addr dest;
} dv_sim_dgram;

/* Counters not tied to a session. */
typedef struct dv_sim_media_global {
  uint64_t datagrams_in;
  uint64_t unknown; /* not attributable to any session */
  uint64_t sent;    /* datagrams queued for sending */
  uint64_t lost;    /* dropped by the loss knob */
  uint64_t duplicated;
  uint64_t reordered;
  uint64_t unroutable; /* destination session has no address yet */
  uint64_t speaker_frames;
  uint64_t speaker_late; /* fake speaker ticks that ran late */
  /* SSRC or address lookups the index could not answer, done by a linear
   * search instead (first packets, unknown sources, failed index inserts). */
  uint64_t slow_lookups;
} dv_sim_media_global;

typedef struct dv_sim_media dv_sim_media;
typedef struct dv_sim_speaker dv_sim_speaker;

/* |env| copied (random hook required), |vgw| borrowed, |settings| copied
 * (NULL: defaults). Returns 0, INVALID_ARGUMENT, NOMEM, INTERNAL (libsodium
 * failed to initialise). */
int dv_sim_media_new(const dvoice_env *env, dv_sim_vgw *vgw,
                     const dv_sim_media_settings *settings, dv_sim_media **out);
void dv_sim_media_free(dv_sim_media *m);

/* The counters not tied to a session. */
const dv_sim_media_global *dv_sim_media_global_stats(const dv_sim_media *m);

/* Changes the misbehaviour knobs at any time. */
void dv_sim_media_set_knobs(dv_sim_media *m, uint32_t loss_ppm,
                            uint32_t dup_ppm, uint32_t reorder_ppm);

/*
 * Feeds one datagram received from |from|. Everything the client got wrong
 * is counted on its session; this returns an error only for NOMEM.
 */
int dv_sim_media_recv(dv_sim_media *m, const uint8_t *p, size_t len,
                      const dv_sim_addr *from, dvoice_tstamp now);

/* Pops the next datagram to send. Returns 1 if one was popped, else 0. */
int dv_sim_media_pop(dv_sim_media *m, dv_sim_dgram *out);

/* Earliest deadline (fake speaker frames, held datagrams) or NONE. */
dvoice_tstamp dv_sim_media_get_expiry(const dv_sim_media *m);
/* Runs every deadline <= now. Returns 0 or NOMEM. */
int dv_sim_media_handle_expiry(dv_sim_media *m, dvoice_tstamp now);

/* Arrival times of a session's packets (borrowed until the next call into
 * |m|); *n is 0 if none. */
void dv_sim_media_arrivals(const dv_sim_media *m, const dv_sim_session *s,
                           const dvoice_tstamp **times, size_t *n);

/*
 * Appends the whole simulator report as one JSON object:
 * {"gateway": <dv_sim_vgw_report_json>, "media": {global counters}}.
 * Returns 0 or DVOICE_ERR_NOMEM.
 */
int dv_sim_report_json(const dv_sim_vgw *vgw, const dv_sim_media *m,
                       dv_buf *out);

/*
 * Starts a fake speaker in server |server_id|: announces it on the gateway
 * (op 11, op 5 with speaking 1, via dv_sim_vgw_add_fake), then sends every
 * ACTIVE session of that server one Opus frame (a 440 Hz tone) every 20 ms
 * from |now| on; after |nframes| frames (0: until stopped) it sends five
 * silence frames and goes quiet. Strings copied. Returns 0,
 * INVALID_ARGUMENT (ssrc in use), NOMEM, INTERNAL (Opus encoder failed).
 */
int dv_sim_media_speaker_start(dv_sim_media *m, const char *server_id,
                               const char *user_id, uint32_t ssrc,
                               uint32_t nframes, dvoice_tstamp now,
                               dv_sim_speaker **out);
/* Frames the speaker sent (tone and silence). */
uint64_t dv_sim_speaker_sent(const dv_sim_speaker *sp);
/* Stops and removes a speaker (op 13 on the gateway). */
void dv_sim_media_speaker_stop(dv_sim_media *m, dv_sim_speaker *sp,
                               dvoice_tstamp now);

#endif
