/*
 * The per-guild join orchestration as a pure state machine (no I/O, no
 * clock, no allocation). It decides when to send op 4, pairs the two voice
 * dispatches of the current attempt, and tells its owner when to start,
 * renew or end the voice connection.
 *
 * Protocol facts: reference/voice-protocol.md sections 1.3 to 1.7 and 6.5.
 *
 *   dv_join_start          op 4 {channel}; SIGNALLING until BOTH
 *                          VOICE_STATE_UPDATE (our user, the requested
 *                          channel, session_id) and VOICE_SERVER_UPDATE
 *                          (token, endpoint != null) of this attempt are in
 *                          hand, in either order, within join_timeout.
 *   ACT_CONNECT            first credentials: start the voice connection.
 *   ACT_NEW_SESSION        new credentials while a voice connection exists
 *                          (move, region change, new session): Identify
 *                          afresh on a new WebSocket.
 *   ACT_SUSPEND            the server is going away (null endpoint): stop
 *                          sending until the next ACT_NEW_SESSION.
 *   ACT_END                give up; |reason| says why. ACT_SEND_OP4 with a
 *                          null channel precedes it when we must leave.
 *
 * Stale events: op 4 clears both slots and bumps the attempt. A state
 * update for another channel than the one requested, a server update
 * carrying a token already used by an earlier attempt, and a null channel
 * while a join is pending (the echo of an earlier leave) are ignored.
 *
 * The owner feeds the voice connection's state changes
 * (dv_join_on_conn_state): NEED_SESSION asks the main gateway again (op 4,
 * bounded, with backoff), WAIT_SERVER (4014/4022) waits server_wait for a
 * new VOICE_SERVER_UPDATE, DISCONNECTED ends the join.
 *
 * Rule for the owner: after every call drain dv_join_next_action, then
 * re-arm a timer from dv_join_get_expiry. Credentials referenced by an
 * action are valid until the next call other than dv_join_next_action.
 */
#ifndef DV_JOIN_H
#define DV_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#define DV_JOIN_SESSION_MAX 256
#define DV_JOIN_TOKEN_MAX 256
#define DV_JOIN_ENDPOINT_MAX 400
#define DV_JOIN_ACTIONS 8

typedef enum dv_join_state {
  DV_JOIN_IDLE = 0,    /* nothing asked yet */
  DV_JOIN_SIGNALLING,  /* op 4 sent; waiting for both events */
  DV_JOIN_CONNECTED,   /* the voice connection has current credentials */
  DV_JOIN_WAIT_SERVER, /* null endpoint or 4014/4022: a new server? */
  DV_JOIN_BACKOFF,     /* new session asked; op 4 goes out at the deadline */
  DV_JOIN_ENDED        /* terminal: left, kicked, timed out, gave up */
} dv_join_state;

const char *dv_join_state_name(dv_join_state s);

/* Why a join ended (mirrors the public dvoice_join_reason). */
typedef enum dv_join_reason {
  DV_JOIN_REASON_NONE = 0,
  DV_JOIN_REASON_LEFT,              /* dv_join_leave */
  DV_JOIN_REASON_TIMEOUT,           /* the events did not come in time */
  DV_JOIN_REASON_KICKED,            /* null channel for us, no join pending */
  DV_JOIN_REASON_SERVER_TIMEOUT,    /* no new server after 4014/null */
  DV_JOIN_REASON_RETRIES_EXHAUSTED, /* too many new sessions */
  DV_JOIN_REASON_VOICE_FAILED       /* the voice connection gave up */
} dv_join_reason;

const char *dv_join_reason_name(dv_join_reason r);

typedef enum dv_join_action_type {
  DV_JOIN_ACT_SEND_OP4 = 1, /* u.op4 */
  DV_JOIN_ACT_CONNECT,      /* u.creds */
  DV_JOIN_ACT_NEW_SESSION,  /* u.creds */
  DV_JOIN_ACT_SUSPEND,      /* null endpoint: stop sending, keep state */
  DV_JOIN_ACT_END           /* u.end */
} dv_join_action_type;

typedef struct dv_join_action {
  dv_join_action_type type;
  union {
    struct {
      uint64_t channel_id; /* 0: null (leave) */
      int self_mute, self_deaf;
    } op4;
    struct {
      uint64_t channel_id;
      const char *session_id; /* see the rule above */
      const char *token;      /* secret */
      const char *endpoint;
    } creds;
    struct {
      dv_join_reason reason;
    } end;
  } u;
} dv_join_action;

typedef struct dv_join_config {
  uint64_t guild_id;
  /* The bot: other users' states are not ours. 0: not known yet (every
   * state update is ignored until dv_join_set_user_id). */
  uint64_t user_id;
  /* Tunables; 0 means the default shown. */
  dvoice_tstamp join_timeout;  /* 10 s for both events */
  dvoice_tstamp server_wait;   /* 5 s after 4014/4022 */
  dvoice_tstamp endpoint_wait; /* 10 s after a null endpoint */
  int max_sessions;            /* 5 consecutive new sessions */
  dvoice_tstamp backoff_base;  /* 250 ms, doubled per new session */
  dvoice_tstamp backoff_max;   /* 10 s */
} dv_join_config;

typedef struct dv_join_creds {
  char session_id[DV_JOIN_SESSION_MAX + 1];
  char token[DV_JOIN_TOKEN_MAX + 1];
  char endpoint[DV_JOIN_ENDPOINT_MAX + 1];
  uint64_t channel_id;
  int have_state, have_server;
} dv_join_creds;

/* Embedded by its owner; fields are private. */
typedef struct dv_join {
  dvoice_env env;
  dv_join_config cfg;
  dv_join_state state;
  uint64_t attempt;    /* bumped by every op 4 with a channel */
  uint64_t channel_id; /* requested (or moved-to) channel */
  int self_mute, self_deaf;
  int has_conn;     /* a voice connection exists (CONNECT was emitted) */
  int sessions;     /* consecutive new sessions asked */
  int server_fresh; /* a lone server update renewed cur (no state yet) */
  dvoice_tstamp deadline;
  dv_join_creds pend;                     /* this attempt's events */
  dv_join_creds cur;                      /* what the voice connection uses */
  char used_token[DV_JOIN_TOKEN_MAX + 1]; /* last token handed over */
  dv_join_action q[DV_JOIN_ACTIONS];
  size_t q_head, q_len;
} dv_join;

/* Fills |cfg| with zeros (defaults). */
void dv_join_config_default(dv_join_config *cfg);

/*
 * Initialises |j| (IDLE). |cfg| and |env| are copied. Errors:
 * DVOICE_ERR_INVALID_ARGUMENT (NULL, zero guild id).
 */
int dv_join_init(dv_join *j, const dv_join_config *cfg, const dvoice_env *env);

/* Wipes the credentials. Safe after a failed init. */
void dv_join_free(dv_join *j);

/*
 * Sets the bot's user id once it is known (READY), for a join initialised
 * with user_id 0; callable in every state. Errors:
 * DVOICE_ERR_INVALID_ARGUMENT (NULL, zero), DVOICE_ERR_INVALID_STATE
 * (another id is already set).
 */
int dv_join_set_user_id(dv_join *j, uint64_t user_id);

/*
 * Asks to join (or move to) |channel_id| (nonzero): clears both event
 * slots, queues op 4 and waits join_timeout. Callable in every state but
 * ENDED. Errors: DVOICE_ERR_INVALID_ARGUMENT (channel 0),
 * DVOICE_ERR_INVALID_STATE (ENDED).
 */
int dv_join_start(dv_join *j, uint64_t channel_id, int self_mute, int self_deaf,
                  dvoice_tstamp ts);

/*
 * Leaves: queues op 4 with a null channel and ACT_END(LEFT).
 * Errors: DVOICE_ERR_INVALID_STATE (ENDED).
 */
int dv_join_leave(dv_join *j, dvoice_tstamp ts);

/*
 * A VOICE_STATE_UPDATE for this guild. |has_channel| 0 means a null
 * channel. Returns 0 whether it was used or ignored (stale, another user),
 * or DVOICE_ERR_INVALID_ARGUMENT (NULL/oversized session_id with a
 * channel), DVOICE_ERR_INVALID_STATE (ENDED: nothing to do).
 */
int dv_join_on_voice_state(dv_join *j, uint64_t user_id, int has_channel,
                           uint64_t channel_id, const char *session_id,
                           dvoice_tstamp ts);

/*
 * A VOICE_SERVER_UPDATE for this guild; |endpoint| NULL means null. Returns
 * 0 (used or ignored), DVOICE_ERR_INVALID_ARGUMENT (NULL or oversized
 * token/endpoint), DVOICE_ERR_INVALID_STATE (ENDED).
 */
int dv_join_on_voice_server(dv_join *j, const char *token, const char *endpoint,
                            dvoice_tstamp ts);

/*
 * The voice connection changed state (READY, NEED_SESSION, WAIT_SERVER,
 * DISCONNECTED; others are accepted and change nothing). Errors:
 * DVOICE_ERR_INVALID_STATE (no voice connection, or ENDED).
 */
int dv_join_on_conn_state(dv_join *j, dvoice_conn_state s, dvoice_tstamp ts);

/* Next deadline, DVOICE_TSTAMP_NONE if none. */
dvoice_tstamp dv_join_get_expiry(const dv_join *j);

/* Runs what is due at |ts|. Returns 0. */
int dv_join_handle_expiry(dv_join *j, dvoice_tstamp ts);

/* Pops the next action into |out|: 1, or 0 when none. */
int dv_join_next_action(dv_join *j, dv_join_action *out);

dv_join_state dv_join_get_state(const dv_join *j);

#endif
