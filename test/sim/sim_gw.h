/*
 * The simulator's MAIN gateway (v10, JSON), server side, as a pure core.
 *
 * It knows the bots (token -> user id) the test registered, runs one state
 * machine per WebSocket connection and one session per successful
 * Identify, validates every client payload strictly (violations are
 * recorded and answered with Discord's close codes), and answers op 4 Voice
 * State Update with VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE in a random
 * order (random hook), registering each join as an expected session with a
 * voice gateway core (sim_vgw). Misbehaviour commands move the bot, change
 * the voice region, kick it, invalidate its session, ask it to reconnect
 * and drop heartbeat ACKs.
 *
 * Close codes it sends: 4001 unknown opcode, 4002 decode error (not JSON,
 * wrong field types), 4003 not authenticated (a command before Identify),
 * 4004 authentication failed (unknown token), 4005 already authenticated,
 * 4007 invalid seq on resume, 4008 rate limited (over 120 messages per
 * 60 s), 4009 session timed out (no heartbeat within interval + grace),
 * 4010 invalid shard, 4013 invalid intents (unknown bits).
 * A client that closes with 1000 or 1001 ends its session, and with it the
 * bot's voice connections (4014 on the voice side), as Discord does.
 *
 * Never reads a clock, draws randomness only through the environment's
 * hook, does no I/O.
 */
#ifndef DV_SIM_GW_H
#define DV_SIM_GW_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#include "json/dv_json.h"
#include "sim_report.h"
#include "sim_vgw.h"
#include "util/dv_buf.h"

#define DV_SIM_GW_MAX_VOICE 4
#define DV_SIM_GW_OP4_LOG 32

typedef struct dv_sim_gw_settings {
  /* Hello's heartbeat_interval, ms. Default 41250. */
  uint32_t heartbeat_interval_ms;
  /* Extra time after the interval before closing with 4009. Default 5000. */
  uint32_t heartbeat_grace_ms;
  /* Messages per window before 4008. Defaults 120 and 60000 ms. */
  uint32_t rate_limit;
  uint32_t rate_window_ms;
  /* Dispatches kept per session for replay on resume. Default 256. */
  size_t replay_max;
} dv_sim_gw_settings;

void dv_sim_gw_settings_default(dv_sim_gw_settings *s);

/* What the simulator recorded for one gateway session. */
typedef struct dv_sim_gw_report {
  uint32_t identifies, resumes, resume_failures;
  uint32_t connections; /* WebSockets bound to the session */
  uint32_t heartbeats, acks_sent, acks_dropped;
  uint32_t voice_state_updates; /* valid op 4 received */
  /* The channel of each of the first DV_SIM_GW_OP4_LOG valid op 4, in
   * order (0: null), so tests can check join/leave sequences. */
  uint64_t op4_channels[DV_SIM_GW_OP4_LOG];
  uint32_t dispatches; /* dispatches sent (replays not counted) */
  uint32_t replayed;
  int last_close_code;
  dv_sim_violations violations;
} dv_sim_gw_report;

/* The bot's voice state in one guild. */
typedef struct dv_sim_gw_voice {
  uint64_t guild_id;
  uint64_t channel_id; /* 0: not in a channel */
  int server;          /* index of the voice server it was sent to */
  dv_sim_session *vs;  /* the registered join (owned by its vgw) or NULL */
  char token[33];      /* the current voice token */
} dv_sim_gw_voice;

typedef struct dv_sim_gw_replay {
  int64_t seq;
  dv_buf text;
} dv_sim_gw_replay;

struct dv_sim_gw_conn;
typedef struct dv_sim_gw dv_sim_gw;

typedef struct dv_sim_gw_session {
  dv_sim_gw *gw;
  char session_id[33];
  char user_id[DV_SNOWFLAKE_STR_MAX];
  uint32_t intents;
  int alive;   /* resumable */
  int64_t seq; /* last dispatch sequence sent; 0 before READY */
  dv_sim_gw_replay *replay;
  size_t nreplay;
  struct dv_sim_gw_conn *conn; /* live connection or NULL */
  dv_sim_gw_voice *voices;
  size_t nvoices;
  int drop_acks; /* command: swallow heartbeat ACKs */
  dv_sim_gw_report report;
} dv_sim_gw_session;

typedef enum dv_sim_gw_conn_state {
  DV_SIM_GW_AWAIT_IDENTIFY = 0, /* Hello sent */
  DV_SIM_GW_BOUND,              /* identified or resumed */
  DV_SIM_GW_CLOSED              /* close queued or peer gone */
} dv_sim_gw_conn_state;

typedef struct dv_sim_gw_conn {
  dv_sim_gw *gw;
  uint64_t id;
  dv_sim_gw_conn_state state;
  dv_sim_gw_session *session;
  dvoice_tstamp hb_deadline;
  dvoice_tstamp *rx_at; /* receive times, ring of rate_limit entries */
  size_t rx_head, rx_n;
  dv_sim_outq out; /* outgoing frames */
  int close_code;
  void *user_data; /* for the glue */
} dv_sim_gw_conn;

typedef struct dv_sim_gw_bot {
  char *token;
  char user_id[DV_SNOWFLAKE_STR_MAX];
} dv_sim_gw_bot;

/* A guild the bots are in, with its voice channels. */
typedef struct dv_sim_gw_guild {
  uint64_t id;
  uint64_t *channels;
  size_t nchannels;
} dv_sim_gw_guild;

struct dv_sim_gw {
  dvoice_env env;
  dv_sim_gw_settings settings;
  char *resume_url;
  struct {
    dv_sim_vgw *vgw;
    char endpoint[64];
  } voice[DV_SIM_GW_MAX_VOICE];
  int nvoice;
  dv_sim_gw_bot *bots;
  size_t nbots;
  dv_sim_gw_guild *guilds;
  size_t nguilds;
  dv_sim_gw_session **sessions;
  size_t nsessions;
  dv_sim_gw_conn **conns;
  size_t nconns;
  uint64_t next_conn_id;
  dv_sim_violations violations; /* on connections without a session */
};

/* Creates a server. |env| copied (random hook required), |settings| copied
 * (NULL: defaults). Returns 0, INVALID_ARGUMENT, NOMEM. */
int dv_sim_gw_new(const dvoice_env *env, const dv_sim_gw_settings *settings,
                  dv_sim_gw **out);
void dv_sim_gw_free(dv_sim_gw *gw);

/* The resume_gateway_url announced in READY (copied). Returns 0 or NOMEM. */
int dv_sim_gw_set_resume_url(dv_sim_gw *gw, const char *url);
/* Adds a voice server: joins are registered with |vgw| (borrowed) and
 * announced with |endpoint| ("host:port", copied). The first one is the
 * default; region changes rotate through them. Returns the index, or
 * INVALID_ARGUMENT (too many, endpoint too long). */
int dv_sim_gw_add_voice_server(dv_sim_gw *gw, dv_sim_vgw *vgw,
                               const char *endpoint);
/* Registers a bot (|token| copied). Returns 0, INVALID_ARGUMENT (empty
 * token, user_id 0, token taken), NOMEM. */
int dv_sim_gw_add_bot(dv_sim_gw *gw, const char *token, uint64_t user_id);

/* 1 if |token| belongs to a registered bot. */
int dv_sim_gw_has_bot(const dv_sim_gw *gw, const char *token);

/* Adds a guild with |n| voice channels (copied). Sessions whose intents
 * include GUILDS see it in READY (unavailable) and then as GUILD_CREATE,
 * as libraries that cache guilds (discord.js) expect. Returns 0,
 * INVALID_ARGUMENT (id 0, a channel 0, guild known), NOMEM. */
int dv_sim_gw_add_guild(dv_sim_gw *gw, uint64_t guild_id,
                        const uint64_t *voice_channels, size_t n);

/* A WebSocket upgrade completed: queues Hello. Returns 0 or NOMEM. */
int dv_sim_gw_conn_new(dv_sim_gw *gw, dvoice_tstamp now, dv_sim_gw_conn **out);
/* Feeds one whole message. Violations are recorded and answered with a
 * queued close; they are not errors. Returns 0, INVALID_STATE (connection
 * closed), NOMEM. */
int dv_sim_gw_conn_recv(dv_sim_gw_conn *c, int binary, const uint8_t *p,
                        size_t len, dvoice_tstamp now);
/* The peer closed with |code| (1006: transport dropped). */
void dv_sim_gw_conn_peer_closed(dv_sim_gw_conn *c, int code, dvoice_tstamp now);
/* Pops the next outgoing frame (caller frees out->data). 1 or 0. */
int dv_sim_gw_conn_pop(dv_sim_gw_conn *c, dv_sim_out *out);
void dv_sim_gw_conn_free(dv_sim_gw_conn *c);
/* Misbehaviour: close |c| now with |code|. Returns 0 or INVALID_STATE. */
int dv_sim_gw_conn_close(dv_sim_gw_conn *c, int code, dvoice_tstamp now);

/* The newest session of bot |user_id| (decimal), alive or not; NULL. */
dv_sim_gw_session *dv_sim_gw_find_session(const dv_sim_gw *gw,
                                          const char *user_id);
/* The session's voice state in |guild_id|, or NULL. */
dv_sim_gw_voice *dv_sim_gw_voice_state(dv_sim_gw_session *s, uint64_t guild_id);

/* ---- commands (each returns 0, NOT_FOUND, INVALID_STATE or NOMEM) ----- */

/* Someone moves the bot: the old voice session closes with 4014, then a
 * new VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE (new token), random
 * order. NOT_FOUND: the bot is not in a channel of |guild_id|. */
int dv_sim_gw_move(dv_sim_gw_session *s, uint64_t guild_id, uint64_t channel_id,
                   dvoice_tstamp now);
/* Region change: VOICE_SERVER_UPDATE with a null endpoint, the old voice
 * session closes with 4014, then VOICE_SERVER_UPDATE with the next voice
 * server's endpoint and a new token. */
int dv_sim_gw_region_change(dv_sim_gw_session *s, uint64_t guild_id,
                            dvoice_tstamp now);
/* Kick: VOICE_STATE_UPDATE with a null channel, 4014 on the voice side. */
int dv_sim_gw_kick(dv_sim_gw_session *s, uint64_t guild_id, dvoice_tstamp now);
/* op 9 d=false on the live connection; the session ends (its voice
 * sessions get 4014). */
int dv_sim_gw_invalidate(dv_sim_gw_session *s, dvoice_tstamp now);
/* op 7 on the live connection. */
int dv_sim_gw_request_reconnect(dv_sim_gw_session *s, dvoice_tstamp now);
/* Any dispatch (|d_json| must be JSON). INVALID_ARGUMENT if it is not. */
int dv_sim_gw_dispatch(dv_sim_gw_session *s, const char *name,
                       const char *d_json, dvoice_tstamp now);

dvoice_tstamp dv_sim_gw_get_expiry(const dv_sim_gw *gw);
int dv_sim_gw_handle_expiry(dv_sim_gw *gw, dvoice_tstamp now);

/* Appends {"violations":[...],"sessions":[...]} as JSON. 0 or NOMEM. */
int dv_sim_gw_report_json(const dv_sim_gw *gw, dv_buf *out);

#endif
