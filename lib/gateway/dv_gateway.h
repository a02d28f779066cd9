/*
 * Discord's main gateway (v10, JSON text frames, no compression) as a pure
 * state machine: no I/O, no clock, no RNG of its own. The glue feeds it
 * WebSocket events and text messages with timestamps; it hands back
 * messages to send (dv_gw_next_out), events (callbacks) and its next
 * deadline (dv_gw_get_expiry / dv_gw_handle_expiry).
 *
 * Protocol facts: reference/voice-protocol.md section 1.
 *
 * Lifecycle, as the glue sees it:
 *
 *   dv_gw_init -> dv_gw_start
 *   EV_CONNECT{url,resume}  open a WebSocket to |url|; then dv_gw_on_open
 *                           (or dv_gw_on_close(0) if it failed)
 *   op 10 Hello             starts heartbeats (first beat after
 *                           interval * jitter) and queues Identify (op 2)
 *                           or Resume (op 6)
 *   READY / RESUMED         EV_READY / EV_RESUMED; queued op 4 messages go
 *                           out from now on, under the rate limit
 *   dispatches              EV_VOICE_STATE, EV_VOICE_SERVER, and every
 *                           other one to the optional on_dispatch callback
 *   failure                 EV_CLOSE_WS (the machine drops the WS), then
 *                           EV_STATE{BACKOFF} and EV_CONNECT at the deadline
 *                           (resume to resume_gateway_url when the session
 *                           allows it, else a fresh Identify to the URL)
 *
 * Rules for the glue:
 * - Drain dv_gw_next_out after every call, then re-arm one timer from
 *   dv_gw_get_expiry.
 * - On EV_CLOSE_WS close the current WebSocket (open or still connecting)
 *   with the given code and do NOT report its close through dv_gw_on_close.
 * - Callbacks run synchronously inside dv_gw_* calls. From a callback only
 *   the getters and dv_gw_update_voice_state may be called (it only
 *   queues); every other call returns DVOICE_ERR_INVALID_STATE there.
 *
 * Close codes (dv_gw_policy_for, reference 1.1 and 1.8):
 *   no code, 1000..3999 from the peer or the transport, 4000, 4001, 4002,
 *   4005, 4008 and unknown 4xxx: reconnect and resume (identify when there
 *   is no session yet);
 *   4003, 4007, 4009: reconnect with a fresh Identify (session gone);
 *   4004, 4010, 4011, 4012, 4013, 4014: fatal (configuration), no retry.
 * We close with 4000 when we want to resume (zombie, op 7, protocol error)
 * and with 1000 only in dv_gw_close, because 1000/1001 end the session and
 * take the bot's voice connections down with it.
 *
 * Malformed input: an unparsable envelope, an unknown opcode or a bad
 * Hello/READY drops the WS (4000) and resumes. A malformed VOICE_STATE_UPDATE
 * or VOICE_SERVER_UPDATE body is dropped and logged (DVOICE_ERR_PROTO is
 * returned) but the connection stays: a resume would replay the same event.
 */
#ifndef DV_GATEWAY_H
#define DV_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

#define DV_GW_DEFAULT_URL "wss://gateway.discord.gg/?v=10&encoding=json"
#define DV_GW_INTENT_GUILDS (1u << 0)
#define DV_GW_INTENT_GUILD_VOICE_STATES (1u << 7)

/* Send rate limit per connection (reference 1.1 point 10). */
#define DV_GW_RATE_LIMIT 120
#define DV_GW_RATE_WINDOW (60 * DVOICE_SECONDS)
/* Slots in each window that only heartbeats may use. */
#define DV_GW_RATE_RESERVED 4

typedef enum dv_gw_state {
  DV_GW_IDLE = 0,     /* initialised, dv_gw_start not called */
  DV_GW_CONNECTING,   /* EV_CONNECT emitted, waiting for on_open */
  DV_GW_HELLO_WAIT,   /* WS open, waiting for op 10 */
  DV_GW_IDENTIFYING,  /* Identify sent, waiting for READY */
  DV_GW_RESUMING,     /* Resume sent, waiting for RESUMED */
  DV_GW_INVALID_WAIT, /* op 9 false: Identify again at the deadline */
  DV_GW_READY,        /* session up */
  DV_GW_BACKOFF,      /* no WS; EV_CONNECT due at the deadline */
  DV_GW_DISCONNECTED  /* terminal */
} dv_gw_state;

/* A static name for |s|, "?" for an unknown value. */
const char *dv_gw_state_name(dv_gw_state s);

/* What a close code means for us. */
typedef enum dv_gw_action {
  DV_GW_ACT_RESUME = 1,     /* reconnect, resume if a session exists */
  DV_GW_ACT_REIDENTIFY = 2, /* reconnect with a new session */
  DV_GW_ACT_FATAL = 3       /* give up: configuration error */
} dv_gw_action;

/* The close-code table as a pure function (0: no code). */
dv_gw_action dv_gw_policy_for(int code);

typedef enum dv_gw_reason {
  DV_GW_REASON_NONE = 0,
  DV_GW_REASON_CLOSED,            /* the WS closed; see close_code */
  DV_GW_REASON_ZOMBIE,            /* no ACK before the next heartbeat */
  DV_GW_REASON_RECONNECT_OP,      /* server op 7 */
  DV_GW_REASON_INVALID_SESSION,   /* server op 9 */
  DV_GW_REASON_HANDSHAKE_TIMEOUT, /* not READY/RESUMED in time */
  DV_GW_REASON_PROTOCOL_ERROR,    /* the server broke the protocol */
  DV_GW_REASON_RETRIES_EXHAUSTED, /* max_attempts reached */
  DV_GW_REASON_FATAL_CODE,        /* 4004, 4010..4014 */
  DV_GW_REASON_APP_CLOSED,        /* dv_gw_close */
  DV_GW_REASON_NOMEM
} dv_gw_reason;

/* A static description of |r|, "?" for an unknown value. */
const char *dv_gw_reason_name(dv_gw_reason r);

typedef struct dv_gw dv_gw;

typedef enum dv_gw_event_type {
  DV_GW_EV_STATE = 1,    /* u.state */
  DV_GW_EV_CONNECT,      /* u.connect: open a WS */
  DV_GW_EV_CLOSE_WS,     /* u.close_ws: close the current WS */
  DV_GW_EV_READY,        /* u.ready */
  DV_GW_EV_RESUMED,      /* no payload */
  DV_GW_EV_VOICE_STATE,  /* u.voice_state */
  DV_GW_EV_VOICE_SERVER, /* u.voice_server */
  DV_GW_EV_HEARTBEAT_ACK /* u.ack */
} dv_gw_event_type;

/* An event; every pointer in it is borrowed for the callback only. */
typedef struct dv_gw_event {
  dv_gw_event_type type;
  union {
    struct {
      dv_gw_state state, old_state;
      dv_gw_reason reason;
      int close_code;         /* the peer's close code, 0 if none */
      dvoice_tstamp deadline; /* BACKOFF / INVALID_WAIT, else NONE */
    } state;
    struct {
      const char *url;
      int resume; /* 1: Resume will follow Hello; 0: Identify */
    } connect;
    struct {
      int code; /* 4000 (resume later) or 1000 (dv_gw_close) */
    } close_ws;
    struct {
      const char *session_id;
      const char *resume_gateway_url;
      uint64_t user_id;
    } ready;
    struct {
      uint64_t guild_id; /* 0 when the state has no guild */
      uint64_t channel_id;
      int has_channel; /* 0: channel_id was null (left/kicked) */
      uint64_t user_id;
      const char *session_id;
    } voice_state;
    struct {
      uint64_t guild_id;
      const char *token;    /* secret: never log it */
      const char *endpoint; /* "host:port", or NULL (server going away) */
    } voice_server;
    struct {
      dvoice_tstamp rtt;
    } ack;
  } u;
} dv_gw_event;

typedef struct dv_gw_callbacks {
  /* Required. */
  void (*on_event)(dv_gw *gw, const dv_gw_event *ev, void *user_data);
  /* Optional: every dispatch not typed above, as its name and the compact
   * JSON text of "d" (|d_len| bytes, NUL-terminated), borrowed. */
  void (*on_dispatch)(dv_gw *gw, const char *name, const char *d, size_t d_len,
                      void *user_data);
} dv_gw_callbacks;

typedef struct dv_gw_config {
  const char *token; /* copied, secret; printable ASCII, 1..512 */
  const char *url;   /* copied; NULL: DV_GW_DEFAULT_URL */
  uint32_t intents;  /* GUILDS and GUILD_VOICE_STATES are always added */
  const char *os;    /* copied; NULL: "linux" */
  int has_shard;     /* nonzero: send shard [shard_id, shard_count] */
  uint32_t shard_id, shard_count;
  /* Tunables; 0 means the default shown. */
  dvoice_tstamp backoff_base;      /* 1 s, doubled per attempt */
  dvoice_tstamp backoff_max;       /* 60 s; delay drawn in [d/2, d] */
  int max_attempts;                /* 10 consecutive failed connections */
  dvoice_tstamp handshake_timeout; /* 30 s from EV_CONNECT to READY */
  dvoice_tstamp stable_after;      /* 60 s of READY reset the attempts */
  size_t max_queue;                /* 1000 queued op 4 messages */
} dv_gw_config;

/* Fills |cfg| with the defaults given beside each field. */
void dv_gw_config_default(dv_gw_config *cfg);

typedef struct dv_gw_msg {
  uint8_t *data;
  size_t len;
} dv_gw_msg;

/* A FIFO of messages (wiped when freed: Identify carries the token). */
typedef struct dv_gw_fifo {
  dv_gw_msg *m;
  size_t head, len, cap;
} dv_gw_fifo;

/* The machine, embedded by its owner; fields are private. */
struct dv_gw {
  dvoice_env env;
  dv_gw_callbacks cb;
  void *user_data;
  dv_gw_config cfg; /* string members point at owned copies */
  char *token, *url, *os;

  dv_gw_state state;
  int in_callback;
  int resuming;           /* the current/pending WS resumes */
  int attempts;           /* consecutive connections that did not get stable */
  dvoice_tstamp deadline; /* handshake, backoff or invalid-session */
  dvoice_tstamp ready_since; /* NONE unless READY */

  /* Session. */
  char *session_id;
  char *resume_url; /* with the query appended */
  uint64_t user_id;
  int64_t seq; /* -1: none */

  /* Heartbeats (per WS). */
  dvoice_tstamp hb_interval; /* 0 before Hello */
  dvoice_tstamp hb_next;
  int hb_pending;
  dvoice_tstamp hb_sent_at;

  /* Rate limit: send times of the last DV_GW_RATE_LIMIT messages. */
  dvoice_tstamp sent_at[DV_GW_RATE_LIMIT];
  size_t sent_head, sent_n;

  dv_gw_fifo out;              /* ready to send */
  dv_gw_fifo pending;          /* op 4 waiting for READY or the rate limit */
  dv_gw_msg cur;               /* handed out by next_out */
  dv_buf scratch;              /* raw dispatch text */
  uint64_t dropped_dispatches; /* malformed typed dispatches */
};

/*
 * Initialises |gw|. |cfg|, |cb| and |env| are copied (env's hooks are
 * borrowed for gw's lifetime). Errors: DVOICE_ERR_INVALID_ARGUMENT (NULL,
 * no on_event, no random hook, bad token/url, shard_id >= shard_count),
 * DVOICE_ERR_NOMEM. dv_gw_free is safe after a failed init.
 */
int dv_gw_init(dv_gw *gw, const dv_gw_config *cfg, const dv_gw_callbacks *cb,
               const dvoice_env *env, void *user_data);
/* Frees everything, wiping the token and queued messages. Idempotent. */
void dv_gw_free(dv_gw *gw);

/* IDLE -> CONNECTING (EV_CONNECT to the configured URL).
 * Errors: DVOICE_ERR_INVALID_STATE. */
int dv_gw_start(dv_gw *gw, dvoice_tstamp ts);
/* The WS is open. Errors: DVOICE_ERR_INVALID_STATE (not CONNECTING). */
int dv_gw_on_open(dv_gw *gw, dvoice_tstamp ts);
/* One text message (|len| bytes, borrowed for the call).
 * Errors: DVOICE_ERR_PROTO, DVOICE_ERR_INVALID_STATE (no WS open),
 * DVOICE_ERR_NOMEM. */
int dv_gw_on_text(dv_gw *gw, const char *json, size_t len, dvoice_tstamp ts);
/* The WS closed with |code| (0: none, e.g. TCP reset) or failed to open.
 * Errors: DVOICE_ERR_INVALID_STATE (no WS open or connecting). */
int dv_gw_on_close(dv_gw *gw, int code, dvoice_tstamp ts);

/*
 * Queues op 4 Voice State Update {guild_id, channel_id (0: null),
 * self_mute, self_deaf}. It is sent once the session is READY, within the
 * rate limit (never dropped; excess waits for the window).
 * Errors: DVOICE_ERR_INVALID_ARGUMENT (guild_id 0),
 * DVOICE_ERR_INVALID_STATE (DISCONNECTED), DVOICE_ERR_NOBUF (max_queue
 * messages already waiting), DVOICE_ERR_NOMEM.
 */
int dv_gw_update_voice_state(dv_gw *gw, uint64_t guild_id, uint64_t channel_id,
                             int self_mute, int self_deaf, dvoice_tstamp ts);

/* Goes offline: EV_CLOSE_WS(1000) if a WS exists, then DISCONNECTED.
 * Errors: DVOICE_ERR_INVALID_STATE (already DISCONNECTED). */
int dv_gw_close(dv_gw *gw, dvoice_tstamp ts);

/* Next deadline, DVOICE_TSTAMP_NONE if none. */
dvoice_tstamp dv_gw_get_expiry(const dv_gw *gw);
/* Runs everything due at |ts|. Errors: DVOICE_ERR_NOMEM,
 * DVOICE_ERR_INVALID_STATE (from a callback). */
int dv_gw_handle_expiry(dv_gw *gw, dvoice_tstamp ts);

/* Pops the next text message to send: 1 with |*data|/|*len| set (valid
 * until the next call on |gw|), or 0 when empty. */
int dv_gw_next_out(dv_gw *gw, const uint8_t **data, size_t *len);

/* The machine's current state. */
dv_gw_state dv_gw_get_state(const dv_gw *gw);
/* The READY session id (NULL before READY), borrowed until the next call. */
const char *dv_gw_session_id(const dv_gw *gw);
uint64_t dv_gw_user_id(const dv_gw *gw);
int64_t dv_gw_last_seq(const dv_gw *gw); /* -1: none */
/* op 4 messages waiting for READY or the rate limit. */
size_t dv_gw_pending_count(const dv_gw *gw);

#endif
