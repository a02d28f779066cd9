/*
 * The voice gateway v8 client as a pure state machine (no I/O, no clock, no
 * RNG of its own). The glue feeds it WebSocket events and messages, the IP
 * discovery result and timestamps; it hands back messages to send
 * (dv_voice_next_out), events (callbacks) and its next deadline
 * (dv_voice_get_expiry / dv_voice_handle_expiry).
 *
 * Protocol facts: reference/voice-protocol.md sections 2, 3, 6.
 *
 * Lifecycle of one connection, as the glue sees it:
 *
 *   dv_voice_init -> dv_voice_start
 *   EV_CONNECT{resume=0}      open wss://ENDPOINT/?v=8; then dv_voice_on_open
 *                             (the machine queues Identify, op 0)
 *   messages                  dv_voice_on_text / dv_voice_on_binary
 *   EV_UDP_START{ip,port,ssrc} open UDP, run IP discovery; then
 *                             dv_voice_on_ip_discovered (queues op 1)
 *   EV_SESSION{mode,key,dave} transport key; the machine queues Speaking
 *                             (op 5) right away, then EV_MAY_SEND
 *   EV_MAY_SEND               RTP may flow from now on (op 5 precedes it)
 *   failure                   EV_CLOSE_WS (when the machine drops the WS)
 *                             and EV_STATE with the outcome (table below)
 *   EV_CONNECT{resume=1}      open a new WS to the same endpoint; on_open
 *                             queues Resume (op 7); op 9 gives EV_RESUMED:
 *                             keep the UDP socket, SSRC, key, mode and RTP
 *                             counters.
 *   EV_STATE{NEED_SESSION}    ask the main gateway for a new session (op 4)
 *                             and call dv_voice_new_session with the fresh
 *                             session_id and token (same endpoint or new).
 *   EV_STATE{WAIT_SERVER}     4014/4022: wait for a VOICE_SERVER_UPDATE; if
 *                             one comes, dv_voice_new_session, else the
 *                             machine gives up at its deadline.
 *
 * Rules for the glue:
 * - Drain dv_voice_next_out after every call, then re-arm one timer from
 *   dv_voice_get_expiry.
 * - On EV_CLOSE_WS close the current WebSocket with the given code and do
 *   NOT report that socket's close through dv_voice_on_close: the machine
 *   has already handled it. Messages queued for a dropped WS are discarded.
 * - When dv_voice_on_text/on_binary returns an error other than
 *   INVALID_STATE/INVALID_ARGUMENT (which change nothing), the machine has
 *   already emitted EV_CLOSE_WS and moved on; the value is for logging.
 * - Callbacks run synchronously inside dv_voice_* calls. From a callback only
 *   the getters and dv_voice_send_binary/dv_voice_send_json may be called;
 *   every other call returns DVOICE_ERR_INVALID_STATE there.
 *
 * Messages per state (anything else with a WS open is DVOICE_ERR_PROTO;
 * messages while no WS is open are DVOICE_ERR_INVALID_STATE, a glue bug):
 *   op 8 Hello        any open state; starts heartbeats. A second Hello on
 *                     one WS re-arms with the new interval (logged).
 *   op 2 Ready        IDENTIFYING only (reference 2.2; not repeated on
 *                     resume). Elsewhere: PROTO.
 *   op 4 Session Desc SELECTING only. Elsewhere: PROTO. A mode other than
 *                     the one selected: PROTO (as songbird).
 *   op 9 Resumed      RESUMING only. Elsewhere: PROTO.
 *   op 6 ACK          any open state; any valid ACK clears the missed
 *                     count (as discord.js); EV_HEARTBEAT_ACK only when
 *                     it echoes the nonce of the pending heartbeat.
 *   op 5/11/13        any open state from IDENTIFYING on (reference 2.2:
 *                     per-user state arrives during the handshake).
 *   op 21/22/24, binary 21..31   any open state; handed to the DAVE hooks.
 *   op 18/20 and unknown ops     ignored, their seq kept (reference 2.3/2.4).
 *   op 3 from the server          ignored like an unknown op (unofficial).
 * A sequenced message whose seq is not newer than the last seen one
 * (16-bit serial arithmetic, reference 2.6: the counter wraps at 65536) is a
 * replay after a resume: it is dropped without being processed.
 */
#ifndef DV_VOICE_H
#define DV_VOICE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

/* Transport encryption modes this library implements (reference 5.1). */
typedef enum dv_voice_mode {
  DV_VOICE_MODE_NONE = 0,
  DV_VOICE_MODE_AES256_GCM_RTPSIZE = 1, /* "aead_aes256_gcm_rtpsize" */
  DV_VOICE_MODE_XCHACHA20_RTPSIZE = 2   /* "aead_xchacha20_poly1305_rtpsize" */
} dv_voice_mode;

/* Returns the wire name of |mode|, or NULL for DV_VOICE_MODE_NONE. */
const char *dv_voice_mode_name(dv_voice_mode mode);

typedef enum dv_voice_state {
  DV_VOICE_IDLE = 0,      /* initialised, dv_voice_start not called */
  DV_VOICE_CONNECTING,    /* EV_CONNECT emitted, waiting for on_open */
  DV_VOICE_IDENTIFYING,   /* Identify sent, waiting for Ready */
  DV_VOICE_UDP_DISCOVERY, /* Ready seen, waiting for on_ip_discovered */
  DV_VOICE_SELECTING,     /* Select Protocol sent, waiting for op 4 */
  DV_VOICE_READY,         /* session up (after op 4 or op 9) */
  DV_VOICE_RESUMING,      /* Resume sent, waiting for op 9 */
  DV_VOICE_BACKOFF,       /* no WS; EV_CONNECT due at the deadline */
  DV_VOICE_NEED_SESSION,  /* no WS; waiting for dv_voice_new_session */
  DV_VOICE_WAIT_SERVER,   /* no WS; 4014/4022, waiting for a new server */
  DV_VOICE_DISCONNECTED   /* terminal */
} dv_voice_state;

/* Returns a static name for |s| ("READY"). */
const char *dv_voice_state_name(dv_voice_state s);

/* What the machine decided after a close, timeout or error (reference 6.5). */
typedef enum dv_voice_outcome {
  DV_VOICE_OUTCOME_NONE = 0,     /* ordinary progress, not a failure */
  DV_VOICE_OUTCOME_RESUME,       /* reconnect with op 7 after a backoff */
  DV_VOICE_OUTCOME_NEW_SESSION,  /* a new session (op 4 again) is needed */
  DV_VOICE_OUTCOME_WAIT_SERVER,  /* 4014/4022: wait for a new server */
  DV_VOICE_OUTCOME_DISCONNECTED, /* gave up, with a reason */
  DV_VOICE_OUTCOME_FATAL         /* configuration error (4004, 4017, ...) */
} dv_voice_outcome;

/* A static name for |o|, "?" for an unknown value. */
const char *dv_voice_outcome_name(dv_voice_outcome o);

/* Why an outcome was decided. */
typedef enum dv_voice_reason {
  DV_VOICE_REASON_NONE = 0,
  DV_VOICE_REASON_CLOSED,            /* the WS closed; see close_code */
  DV_VOICE_REASON_ZOMBIE,            /* heartbeat ACKs missing */
  DV_VOICE_REASON_HANDSHAKE_TIMEOUT, /* not ready within handshake_timeout */
  DV_VOICE_REASON_PROTOCOL_ERROR,    /* the server broke the protocol */
  DV_VOICE_REASON_NO_COMMON_MODE,    /* Ready offered no usable mode */
  DV_VOICE_REASON_RETRIES_EXHAUSTED, /* resume/new-session limit reached */
  DV_VOICE_REASON_WAIT_TIMEOUT,      /* no new session/server in time */
  DV_VOICE_REASON_APP_CLOSED,        /* dv_voice_close */
  DV_VOICE_REASON_NOMEM              /* allocation failure */
} dv_voice_reason;

/* A static description of |r|, "?" for an unknown value. */
const char *dv_voice_reason_name(dv_voice_reason r);

/* The close-code policy row for one code (reference 3 and 6.5). */
typedef struct dv_voice_policy {
  dv_voice_outcome outcome;   /* RESUME, NEW_SESSION, WAIT_SERVER,
                                 DISCONNECTED or FATAL */
  int max_sessions;           /* NEW_SESSION: consecutive new sessions this
                                 code allows; 0 = config max_session_attempts */
  dv_voice_outcome exhausted; /* DISCONNECTED or FATAL once over the limit */
} dv_voice_policy;

/*
 * The policy table as a pure function. |code| is the WebSocket close code
 * (0 when the connection dropped without one); |dave_enabled| is nonzero
 * when max_dave_protocol_version > 0 (it changes 4017).
 */
dv_voice_policy dv_voice_policy_for(int code, int dave_enabled);

typedef struct dv_voice dv_voice;

typedef enum dv_voice_event_type {
  DV_VOICE_EV_STATE = 1,       /* state change (with outcome on failures) */
  DV_VOICE_EV_CONNECT,         /* open a WS now (u.connect) */
  DV_VOICE_EV_CLOSE_WS,        /* close the current WS (u.close_ws) */
  DV_VOICE_EV_UDP_START,       /* Ready: UDP + IP discovery (u.udp) */
  DV_VOICE_EV_SESSION,         /* Session Description (u.session) */
  DV_VOICE_EV_RESUMED,         /* op 9: everything carried over */
  DV_VOICE_EV_MAY_SEND,        /* Speaking sent: RTP may flow */
  DV_VOICE_EV_SPEAKING,        /* server op 5 (u.speaking) */
  DV_VOICE_EV_USER_CONNECT,    /* op 11, once per new user (u.user) */
  DV_VOICE_EV_USER_DISCONNECT, /* op 13, or session reset (u.user) */
  DV_VOICE_EV_HEARTBEAT_ACK    /* op 6 matching our nonce (u.ack) */
} dv_voice_event_type;

/* An event; every pointer in it is borrowed for the callback only. */
typedef struct dv_voice_event {
  dv_voice_event_type type;
  union {
    struct {
      dv_voice_state state, old_state;
      dv_voice_outcome outcome; /* NONE unless the change is a failure */
      dv_voice_reason reason;
      int close_code;         /* the WS close code, 0 if none/local */
      dvoice_tstamp deadline; /* BACKOFF/NEED_SESSION/WAIT_SERVER */
    } state;
    struct {
      int resume; /* 1: op 7 will follow on_open; 0: Identify */
    } connect;
    struct {
      int code; /* close code to send: 1000 (app, new server) or 4000 */
    } close_ws;
    struct {
      const char *ip; /* IPv4 literal, NUL-terminated */
      uint16_t port;
      uint32_t ssrc;
    } udp;
    struct {
      dv_voice_mode mode;
      const uint8_t *key; /* 32 bytes; wiped after the callback returns */
      int dave_protocol_version;
      uint32_t ssrc;
    } session;
    struct {
      uint64_t user_id;
      uint32_t ssrc;
      uint32_t flags;
    } speaking;
    struct {
      uint64_t user_id;
    } user;
    struct {
      dvoice_tstamp rtt;
    } ack;
  } u;
} dv_voice_event;

typedef struct dv_voice_callbacks {
  /* Required. Runs synchronously; see the rules at the top of the file. */
  void (*on_event)(dv_voice *v, const dv_voice_event *ev, void *user_data);
} dv_voice_callbacks;

/*
 * The DAVE interface (filled by the DAVE layer; NULL members do nothing).
 * Each hook may queue client frames with dv_voice_send_binary (op 26, 28)
 * or dv_voice_send_json (op 23, 31). A negative return is treated like a
 * protocol error in the message that caused the call.
 */
typedef struct dv_voice_dave {
  void *user_data;
  /* Session Description: the negotiated DAVE version (0: transport only). */
  int (*on_session)(void *user_data, dv_voice *v, int dave_protocol_version,
                    dvoice_tstamp ts);
  /* A new session starts (Identify on a new WS): drop all MLS state. */
  void (*on_reset)(void *user_data, dv_voice *v);
  /* JSON ops 21, 22, 24; |d| borrowed for the call (may be any JSON). */
  int (*on_text)(void *user_data, dv_voice *v, int op, const json_t *d,
                 dvoice_tstamp ts);
  /* Binary ops 21..31: |payload| is what follows the op byte, borrowed. */
  int (*on_binary)(void *user_data, dv_voice *v, int op, const uint8_t *payload,
                   size_t len, dvoice_tstamp ts);
} dv_voice_dave;

typedef struct dv_voice_config {
  uint64_t server_id;     /* guild id */
  uint64_t user_id;       /* the bot's user id */
  const char *session_id; /* copied; printable ASCII, 1..256 bytes */
  const char *token;      /* copied, secret; printable ASCII, 1..256 bytes */
  int max_dave_protocol_version; /* 0..255; 0 until DAVE lands */
  int aes256_gcm_available;      /* nonzero: this build can do AES-256-GCM */
  const dv_voice_dave *dave;     /* copied; NULL: DAVE hooks do nothing */
  /* Tunables; 0 means the default shown. */
  int max_missed_acks;             /* 3 */
  int max_resume_attempts;         /* 3 consecutive resumes */
  int max_session_attempts;        /* 5 consecutive new sessions */
  dvoice_tstamp backoff_base;      /* 250 ms, doubled per attempt */
  dvoice_tstamp backoff_max;       /* 10 s; jitter is +-10 % */
  dvoice_tstamp handshake_timeout; /* 10 s from EV_CONNECT to READY */
  dvoice_tstamp session_wait;      /* 10 s in NEED_SESSION */
  dvoice_tstamp server_wait;       /* 5 s in WAIT_SERVER */
  dvoice_tstamp stable_after;      /* 60 s READY resets the counters */
} dv_voice_config;

/* Fills |cfg| with zeros/defaults (identity fields must be set after). */
void dv_voice_config_default(dv_voice_config *cfg);

/* Maximum number of users tracked (op 11); more is DVOICE_ERR_PROTO. */
#define DV_VOICE_MAX_USERS 65536

typedef struct dv_voice_user {
  uint64_t user_id;
  uint32_t ssrc;
  int has_ssrc;
} dv_voice_user;

typedef struct dv_voice_out {
  uint8_t *data;
  size_t len;
  int binary;
} dv_voice_out;

/* The machine, embedded by its owner; fields are private. */
struct dv_voice {
  dvoice_env env;
  dv_voice_callbacks cb;
  dv_voice_dave dave;
  void *user_data;
  dv_voice_config cfg; /* session_id/token point at owned copies */
  char *session_id;
  char *token;

  dv_voice_state state;
  int in_callback;
  int resuming;           /* the pending/current WS resumes */
  int established;        /* a session key was handed over */
  dvoice_tstamp deadline; /* handshake, backoff or wait deadline */
  dvoice_tstamp retry_at; /* earliest reconnect after NEED_SESSION */
  dvoice_tstamp ready_since;

  int resume_attempts;
  int session_attempts;

  /* Heartbeats (per WS). */
  int hello_seen;
  dvoice_tstamp hb_interval;
  dvoice_tstamp hb_next;
  int missed_acks;
  int hb_pending;
  int64_t hb_nonce;
  dvoice_tstamp hb_sent_at;

  int64_t last_seq; /* -1: none yet */

  /* Session. */
  uint32_t ssrc;
  char udp_ip[16];
  uint16_t udp_port;
  dv_voice_mode mode;
  int dave_version;
  uint32_t speaking_flags;
  int speaking_sent;
  uint32_t speaking_sent_flags;

  dv_voice_user *users;
  size_t nusers, users_cap;

  dv_voice_out *q;
  size_t q_head, q_len, q_cap;
  dv_voice_out cur; /* the message handed out by next_out */
};

/*
 * Initialises |v|. |cfg|, |cb| and |env| are copied (env's hooks and
 * user_data pointers are borrowed for v's lifetime). |user_data| is passed
 * to on_event. Errors: DVOICE_ERR_INVALID_ARGUMENT (NULL, no on_event, no
 * random hook, bad session_id/token, out-of-range tunables),
 * DVOICE_ERR_NOMEM. On error nothing needs freeing, but dv_voice_free is
 * safe.
 */
int dv_voice_init(dv_voice *v, const dv_voice_config *cfg,
                  const dv_voice_callbacks *cb, const dvoice_env *env,
                  void *user_data);
/* Frees everything (wiping the token and queued messages). Idempotent. */
void dv_voice_free(dv_voice *v);

/* IDLE -> CONNECTING: emits EV_CONNECT{resume=0} and arms the handshake
 * timeout. Errors: DVOICE_ERR_INVALID_STATE. */
int dv_voice_start(dv_voice *v, dvoice_tstamp ts);

/* The WS is open: queues Identify (op 0) or Resume (op 7).
 * Errors: DVOICE_ERR_INVALID_STATE (not CONNECTING), DVOICE_ERR_NOMEM. */
int dv_voice_on_open(dv_voice *v, dvoice_tstamp ts);
/* A text message (|len| bytes, no NUL needed, borrowed for the call).
 * Errors: DVOICE_ERR_PROTO, DVOICE_ERR_UNSUPPORTED (no common mode),
 * DVOICE_ERR_INVALID_STATE (no WS open), DVOICE_ERR_INVALID_ARGUMENT
 * (NULL data; nothing changes), DVOICE_ERR_NOMEM, or a DAVE hook's
 * error. */
int dv_voice_on_text(dv_voice *v, const char *json, size_t len,
                     dvoice_tstamp ts);
/* A binary message [seq u16][op u8][payload]. Errors: as on_text. */
int dv_voice_on_binary(dv_voice *v, const uint8_t *data, size_t len,
                       dvoice_tstamp ts);
/* The WS closed (|code| 0 when there was none, e.g. a TCP reset) or failed
 * to open. Errors: DVOICE_ERR_INVALID_STATE (no WS open or connecting). */
int dv_voice_on_close(dv_voice *v, int code, dvoice_tstamp ts);
/* IP discovery finished: |ip| (IPv4 literal, copied) and |port| are our
 * external address. Queues Select Protocol (op 1).
 * Errors: DVOICE_ERR_INVALID_STATE (not UDP_DISCOVERY),
 * DVOICE_ERR_INVALID_ARGUMENT (bad ip or port 0), DVOICE_ERR_NOMEM. */
int dv_voice_on_ip_discovered(dv_voice *v, const char *ip, uint16_t port,
                              dvoice_tstamp ts);
/* Fresh credentials after NEED_SESSION/WAIT_SERVER, or a server change
 * while connected (the current WS is then closed with 1000). Both strings
 * copied. Emits EV_CONNECT{resume=0} after any pending backoff.
 * Errors: DVOICE_ERR_INVALID_STATE (IDLE or DISCONNECTED),
 * DVOICE_ERR_INVALID_ARGUMENT, DVOICE_ERR_NOMEM. */
int dv_voice_new_session(dv_voice *v, const char *session_id, const char *token,
                         dvoice_tstamp ts);
/* Sets the speaking flags (0..7: 1 mic, 2 soundshare, 4 priority). Sent at
 * once when READY (if changed), else at the next READY.
 * Errors: DVOICE_ERR_INVALID_ARGUMENT, DVOICE_ERR_INVALID_STATE
 * (DISCONNECTED), DVOICE_ERR_NOMEM. */
int dv_voice_set_speaking(dv_voice *v, uint32_t flags, dvoice_tstamp ts);
/* Leaves: EV_CLOSE_WS(1000) if a WS is open, then DISCONNECTED.
 * Errors: DVOICE_ERR_INVALID_STATE (already DISCONNECTED). */
int dv_voice_close(dv_voice *v, dvoice_tstamp ts);

/* Next deadline, DVOICE_TSTAMP_NONE if none. */
dvoice_tstamp dv_voice_get_expiry(const dv_voice *v);
/* Runs everything due at |ts| (heartbeats, zombie check, timeouts,
 * backoff). Errors: DVOICE_ERR_NOMEM, DVOICE_ERR_INVALID_STATE (callback). */
int dv_voice_handle_expiry(dv_voice *v, dvoice_tstamp ts);

/* Pops the next message to send. Returns 1 and sets |*data|, |*len|,
 * |*binary| (data valid until the next call on |v|), or 0 when empty. */
int dv_voice_next_out(dv_voice *v, const uint8_t **data, size_t *len,
                      int *binary);

/* Queues a client binary frame [op][payload] (no seq) for DAVE.
 * Errors: DVOICE_ERR_INVALID_STATE (no identified WS),
 * DVOICE_ERR_INVALID_ARGUMENT, DVOICE_ERR_NOMEM. */
int dv_voice_send_binary(dv_voice *v, uint8_t op, const uint8_t *payload,
                         size_t len);
/* Queues {"op":op,"d":d} (|d| borrowed). Errors: as send_binary. */
int dv_voice_send_json(dv_voice *v, int op, const json_t *d);

/* Getters. */
dv_voice_state dv_voice_get_state(const dv_voice *v);
int dv_voice_may_send(const dv_voice *v);
int64_t dv_voice_last_seq(const dv_voice *v); /* -1: none */
uint32_t dv_voice_ssrc(const dv_voice *v);
dv_voice_mode dv_voice_get_mode(const dv_voice *v);
size_t dv_voice_user_count(const dv_voice *v);
/* The i-th connected user (borrowed until the next call on |v|) or NULL. */
const dv_voice_user *dv_voice_user_at(const dv_voice *v, size_t i);
/* Returns the user owning |ssrc| via *user_id: 0, or DVOICE_ERR_NOT_FOUND. */
int dv_voice_user_for_ssrc(const dv_voice *v, uint32_t ssrc, uint64_t *user_id);

#endif
