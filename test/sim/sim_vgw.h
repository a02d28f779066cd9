/*
 * The simulator's voice gateway (v8), server side, as a pure core.
 *
 * A dv_sim_vgw holds the sessions that the test (or the main-gateway
 * simulator) registered as expected joins, and one state machine per
 * WebSocket connection. It is fed whole WebSocket messages and timestamps;
 * it queues outgoing frames (text, binary, close) per connection and reports
 * its next deadline. It never reads a clock, draws randomness only through
 * the environment's hook, and does no I/O.
 *
 * Every protocol violation is recorded (on the session when the connection
 * is bound to one, else on the server) and answered with Discord's close
 * code for it.
 */
#ifndef DV_SIM_VGW_H
#define DV_SIM_VGW_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "sim_report.h"
#include "util/dv_buf.h"

/* Transport modes the simulator can run (the two that still exist). */
typedef enum dv_sim_mode {
  DV_SIM_MODE_NONE = 0,
  DV_SIM_MODE_AES256_GCM = 1, /* aead_aes256_gcm_rtpsize */
  DV_SIM_MODE_XCHACHA20 = 2   /* aead_xchacha20_poly1305_rtpsize */
} dv_sim_mode;

/* Mode name <-> enum; unknown and discontinued names give DV_SIM_MODE_NONE. */
dv_sim_mode dv_sim_mode_from_name(const char *name);
const char *dv_sim_mode_name(dv_sim_mode m);

#define DV_SIM_MAX_MODES 8

typedef struct dv_sim_vgw_settings {
  /* Hello's heartbeat_interval, ms. Default 13750. */
  uint32_t heartbeat_interval_ms;
  /* Extra time after the interval before closing with 4009. Default 5000. */
  uint32_t heartbeat_grace_ms;
  /* The UDP side announced in Ready (IPv4 literal, copied). Default
   * "127.0.0.1" and port 0; set both before clients connect. */
  char udp_ip[16];
  uint16_t udp_port;
  /* Ready's modes, in order; borrowed static strings. Default: AES-GCM,
   * XChaCha20, and three discontinued modes a client must filter out. */
  const char *modes[DV_SIM_MAX_MODES];
  size_t nmodes;
  /* Sequenced messages kept per session for replay on resume. Default 64. */
  size_t replay_max;
  /* First seq a session uses. Default 0 (catches "seq 0 means none").
   * Seqs are sent modulo 65536; 65530 tests the wrap. */
  uint32_t seq_start;
  /* Nonzero: Identify with max_dave_protocol_version 0 closes with 4017.
   * Default 0 (the simulator does not run DAVE yet). */
  int require_dave;
  /* Nonzero: send Hello only after Ready instead of at connection open. */
  int hello_after_ready;
  /* Nonzero: send unofficial op 18/20 with op 11 (clients must ignore them).
   * Default 1. */
  int send_extra_ops;
} dv_sim_vgw_settings;

void dv_sim_vgw_settings_default(dv_sim_vgw_settings *s);

/* A session's progress. */
typedef enum dv_sim_phase {
  DV_SIM_PHASE_REGISTERED = 0, /* expected, never identified */
  DV_SIM_PHASE_READY,          /* Ready sent, waiting for Select Protocol */
  DV_SIM_PHASE_ACTIVE,         /* Session Description sent */
  DV_SIM_PHASE_ENDED           /* closed for good; resume gives 4006 */
} dv_sim_phase;

struct dv_sim_vgw_conn;
struct dv_sim_member_media; /* owned by sim_media */

/* One sequenced message kept for replay. */
typedef struct dv_sim_replay {
  uint32_t seq;
  dv_buf text;
} dv_sim_replay;

/*
 * A registered join. Tests read |report| and the identity fields directly;
 * everything else is the cores' business.
 */
typedef struct dv_sim_session {
  struct dv_sim_vgw *vgw; /* the owning server */
  char *server_id, *user_id, *session_id, *token;
  dv_sim_phase phase; /* READY and ACTIVE sessions can be resumed */
  uint32_t ssrc;
  dv_sim_mode mode;
  uint8_t key[32];
  int speaking_seen; /* a valid op 5 arrived */
  uint32_t speaking_flags;
  /* The address the client gave in Select Protocol (IPv4, host order). */
  uint32_t sel_ip;
  uint16_t sel_port;
  struct dv_sim_vgw_conn *conn; /* the live connection, or NULL */
  uint32_t next_seq;            /* seq of the next sequenced message */
  int have_seq;                 /* a sequenced message was sent */
  dv_sim_replay *replay;        /* ring of replay_max entries */
  size_t replay_head, replay_len;
  uint32_t replay_dropped_upto; /* seqs <= this one fell out of the ring */
  int replay_dropped;
  /* Commands. */
  int drop_acks;     /* nonzero: swallow heartbeat ACKs */
  int refuse_resume; /* nonzero: the next resume closes with 4006 */
  struct dv_sim_member_media *media; /* sim_media's per-session state */
  dv_sim_session_report report;
} dv_sim_session;

/* A member of a channel that is not a connected client (a fake speaker). */
typedef struct dv_sim_fake_member {
  char *server_id, *user_id;
  uint32_t ssrc;
  uint32_t speaking;
} dv_sim_fake_member;

/* What the glue must do next for a connection. */
typedef enum dv_sim_out_kind {
  DV_SIM_OUT_TEXT = 1,
  DV_SIM_OUT_BINARY = 2,
  DV_SIM_OUT_CLOSE = 3 /* close the WebSocket with |close_code| */
} dv_sim_out_kind;

typedef struct dv_sim_out {
  dv_sim_out_kind kind;
  int close_code;
  dv_buf data; /* owned by the receiver of dv_sim_vgw_conn_pop */
} dv_sim_out;

/* A FIFO of dv_sim_out, shared by the main and voice gateway connections.
 * Zero-initialised it is empty. */
typedef struct dv_sim_outq {
  dv_sim_out *v;
  size_t head, len, cap;
} dv_sim_outq;

/* Appends a frame of |kind| (with |close_code| for DV_SIM_OUT_CLOSE) whose
 * payload is a copy of |p|/|len|. Returns 0 or DVOICE_ERR_NOMEM (the queue
 * is then unchanged). */
int dv_sim_outq_push(dv_sim_outq *q, const dvoice_mem *mem,
                     dv_sim_out_kind kind, int close_code, const void *p,
                     size_t len);

/* Moves the oldest frame into |out| (the caller then owns out->data) and
 * returns 1, or returns 0 if the queue is empty. */
int dv_sim_outq_pop(dv_sim_outq *q, dv_sim_out *out);

/* Frees every queued frame and the queue's storage; the queue is left
 * empty and reusable. */
void dv_sim_outq_free(dv_sim_outq *q, const dvoice_mem *mem);

typedef enum dv_sim_conn_state {
  DV_SIM_CONN_AWAIT_IDENTIFY = 0, /* Hello sent; op 0 or op 7 expected */
  DV_SIM_CONN_BOUND,              /* identified or resumed */
  DV_SIM_CONN_CLOSED              /* close queued or peer gone */
} dv_sim_conn_state;

typedef struct dv_sim_vgw dv_sim_vgw;

typedef struct dv_sim_vgw_conn {
  dv_sim_vgw *vgw;
  uint64_t id; /* connection number, from 1 */
  dv_sim_conn_state state;
  dv_sim_session *session;   /* bound session, or NULL */
  dvoice_tstamp hb_deadline; /* heartbeat timeout; NONE before Hello */
  int hello_sent;
  dv_sim_outq out; /* outgoing frames */
  int close_code;  /* the code we closed with, or the peer's */
  void *user_data; /* for the glue */
} dv_sim_vgw_conn;

struct dv_sim_vgw {
  dvoice_env env;
  dv_sim_vgw_settings settings;
  dv_sim_session **sessions;
  size_t nsessions;
  dv_sim_fake_member **fakes;
  size_t nfakes;
  dv_sim_vgw_conn **conns;
  size_t nconns;
  uint64_t next_conn_id;
  /* Violations on connections not bound to a session. */
  dv_sim_violations violations;
};

/* Creates a server. |env| is copied (its random hook is required);
 * |settings| copied, NULL for defaults. Returns 0, INVALID_ARGUMENT, NOMEM. */
int dv_sim_vgw_new(const dvoice_env *env, const dv_sim_vgw_settings *settings,
                   dv_sim_vgw **out);
/* Frees the server, its sessions and every connection still open. */
void dv_sim_vgw_free(dv_sim_vgw *vgw);

/* Sets the UDP address announced in Ready (after the socket is bound). */
void dv_sim_vgw_set_udp(dv_sim_vgw *vgw, const char *ip, uint16_t port);

/* Registers an expected join; strings copied. The SSRC is drawn from the
 * random hook (nonzero, unique). Returns 0, INVALID_ARGUMENT (a string is
 * NULL, or the session_id is taken), NOMEM. |out| may be NULL. */
int dv_sim_vgw_add_session(dv_sim_vgw *vgw, const char *server_id,
                           const char *user_id, const char *session_id,
                           const char *token, dv_sim_session **out);
/* Looks a session up; NULL if unknown. */
dv_sim_session *dv_sim_vgw_find_session(const dv_sim_vgw *vgw,
                                        const char *session_id);
dv_sim_session *dv_sim_vgw_find_ssrc(const dv_sim_vgw *vgw, uint32_t ssrc);

/*
 * Adds a fake member to server |server_id| (copied) with |ssrc| and
 * announces it to every connected session of that server: op 11, then op 5
 * with |speaking| flags. Returns 0, INVALID_ARGUMENT (ssrc in use), NOMEM.
 */
int dv_sim_vgw_add_fake(dv_sim_vgw *vgw, const char *server_id,
                        const char *user_id, uint32_t ssrc, uint32_t speaking,
                        dvoice_tstamp now, dv_sim_fake_member **out);
/* Removes a fake member, announcing op 13. Returns 0 or NOT_FOUND. */
int dv_sim_vgw_remove_fake(dv_sim_vgw *vgw, const char *user_id,
                           dvoice_tstamp now);

/*
 * Opens a connection (a WebSocket upgrade completed). Queues Hello unless
 * settings.hello_after_ready. Returns 0, NOMEM.
 */
int dv_sim_vgw_conn_new(dv_sim_vgw *vgw, dvoice_tstamp now,
                        dv_sim_vgw_conn **out);
/*
 * Feeds one whole WebSocket message (|binary| nonzero for a binary frame).
 * Violations are recorded and answered with a queued close; they are not
 * errors. Returns 0, INVALID_STATE (the connection is closed; the message
 * was recorded and dropped), NOMEM.
 */
int dv_sim_vgw_conn_recv(dv_sim_vgw_conn *c, int binary, const uint8_t *p,
                         size_t len, dvoice_tstamp now);
/*
 * The peer closed the WebSocket with |code| (1006 when the transport just
 * dropped). The session stays resumable unless the code is 1000 or 1001.
 */
void dv_sim_vgw_conn_peer_closed(dv_sim_vgw_conn *c, int code,
                                 dvoice_tstamp now);
/* Pops the next outgoing frame into |out| (the caller owns out->data and
 * frees it with dv_buf_free). Returns 1 if a frame was popped, 0 if none. */
int dv_sim_vgw_conn_pop(dv_sim_vgw_conn *c, dv_sim_out *out);
/* Detaches and frees a connection (the glue's socket is gone). */
void dv_sim_vgw_conn_free(dv_sim_vgw_conn *c);

/* Misbehaviour: closes |c| now with |code| (any value). The session stays
 * resumable iff code is 4015 or below 4000. Returns 0 or INVALID_STATE. */
int dv_sim_vgw_conn_close(dv_sim_vgw_conn *c, int code, dvoice_tstamp now);
/* Closes the session's live connection, if any. Same rules. */
int dv_sim_vgw_session_close(dv_sim_session *s, int code, dvoice_tstamp now);

/* Sends a sequenced message (op, d as compact JSON text) to a session; it is
 * kept for replay. For tests that want arbitrary server dispatches. Returns
 * 0, INVALID_ARGUMENT (d is not JSON), NOMEM. */
int dv_sim_vgw_session_send(dv_sim_session *s, int op, const char *d_json,
                            dvoice_tstamp now);

/* Called by sim_media: RTP-level violations to record on a session (close
 * code 0). Returns 0 or NOMEM. */
int dv_sim_vgw_record(dv_sim_vgw *vgw, dv_sim_session *s, dvoice_tstamp now,
                      int close_code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* The earliest deadline over every connection (heartbeat timeouts), or
 * DVOICE_TSTAMP_NONE. */
dvoice_tstamp dv_sim_vgw_get_expiry(const dv_sim_vgw *vgw);
/* Runs every deadline <= now. Returns 0 or NOMEM. */
int dv_sim_vgw_handle_expiry(dv_sim_vgw *vgw, dvoice_tstamp now);

/* Appends the whole gateway report (server violations and every session) as
 * one JSON object. Returns 0 or NOMEM. */
int dv_sim_vgw_report_json(const dv_sim_vgw *vgw, dv_buf *out);

#endif
