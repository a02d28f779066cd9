/*
 * dvoice-sim: an offline fake Discord for tests (libdvoice-sim).
 *
 * One dvoice_sim runs, on the application's libuv loop and on loopback:
 * the main gateway (v10 JSON over wss://, plus GET /api/v10/gateway/bot
 * over https://), two voice gateways (v8, the second one for region
 * changes) and their UDP media servers. It validates everything a bot
 * sends, closes with Discord's close codes when the bot breaks the
 * protocol, can misbehave on command, and records what it saw as a JSON
 * report. It generates a throw-away certificate authority at start; point
 * the bot's CA file at dvoice_sim_ca_file().
 *
 * Conventions are those of <dvoice/dvoice.h>: negative DVOICE_ERR_* codes,
 * the close callback runs exactly once when the call returned 0, and no
 * callback runs synchronously. Every function must be called on the loop's
 * thread; the accessors (which return no error) require a non-NULL |sim|
 * that has been started and whose close callback has not run yet.
 */
#ifndef DVOICE_SIM_H
#define DVOICE_SIM_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;
typedef struct dvoice_sim dvoice_sim;

typedef struct dvoice_sim_settings {
  /* Environment (allocator, log, clock, random); copied. NULL: defaults. */
  const dvoice_env *env;
  /* Local address to bind; copied. NULL: "127.0.0.1". */
  const char *host;
  /* Main gateway port; 0 lets the kernel choose. */
  uint16_t gateway_port;
  /* Directory for the generated ca.pem, server.pem and server.key; copied.
   * NULL: a new directory under /tmp, removed by dvoice_sim_close(). */
  const char *dir;
  /* Nonzero: plain ws:// and no certificates (then there is no CA file). */
  int plain;
  /* Main gateway Hello interval, ms; 0: 41250. */
  uint32_t heartbeat_interval_ms;
  /* Voice gateway Hello interval, ms; 0: 13750. */
  uint32_t voice_heartbeat_interval_ms;
} dvoice_sim_settings;

/* Fills |s| with the defaults above. Does nothing when |s| is NULL. */
DVOICE_EXTERN void dvoice_sim_settings_default(dvoice_sim_settings *s);

/*
 * Starts the simulator on |loop| with |settings| (copied; NULL: defaults).
 * Returns 0 and sets |*out|, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out/loop; a bad host
 *   DVOICE_ERR_TLS               the certificates could not be generated or
 *                                written
 *   DVOICE_ERR_TRANSPORT         a socket could not be bound
 *   DVOICE_ERR_NOMEM             an allocation failed
 * On error nothing is left on the loop once it ran again.
 */
DVOICE_EXTERN int dvoice_sim_start(struct uv_loop_s *loop,
                                   const dvoice_sim_settings *settings,
                                   dvoice_sim **out);

/* "wss://localhost:PORT/?v=10&encoding=json": the gateway URL for a bot.
 * Valid until the close callback. */
DVOICE_EXTERN const char *dvoice_sim_gateway_url(const dvoice_sim *sim);
/* "https://localhost:PORT/api/v10": the REST base (GET /gateway/bot).
 * Valid until the close callback. */
DVOICE_EXTERN const char *dvoice_sim_api_url(const dvoice_sim *sim);
/* The PEM CA file that signed the simulator's certificate, or NULL when
 * plain. Valid until the close callback. */
DVOICE_EXTERN const char *dvoice_sim_ca_file(const dvoice_sim *sim);
/* Voice server |i| (0 or 1) endpoint "localhost:PORT" as announced in
 * VOICE_SERVER_UPDATE, or NULL. Valid until the close callback. */
DVOICE_EXTERN const char *dvoice_sim_voice_endpoint(const dvoice_sim *sim,
                                                    int i);

/* Registers a bot: |token| (copied) identifies as |user_id|.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL or closing sim, empty
 * token, user_id 0, token already registered), DVOICE_ERR_NOMEM. */
DVOICE_EXTERN int dvoice_sim_add_bot(dvoice_sim *sim, const char *token,
                                     uint64_t user_id);

/* Adds guild |guild_id| with |n| voice channels (copied). Bots that
 * identify with the GUILDS intent see it in READY and as GUILD_CREATE.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL or closing sim, an id is 0,
 * the guild exists), DVOICE_ERR_NOMEM. */
DVOICE_EXTERN int dvoice_sim_add_guild(dvoice_sim *sim, uint64_t guild_id,
                                       const uint64_t *voice_channel_ids,
                                       size_t n);

/* Misbehaviour commands, applied to the newest gateway session of a bot. */
typedef enum dvoice_sim_command {
  /* Move the bot in guild |guild_id| to channel |arg|: 4014 on the old
   * voice connection, then VOICE_STATE_UPDATE + VOICE_SERVER_UPDATE. */
  DVOICE_SIM_MOVE = 1,
  /* VOICE_SERVER_UPDATE with a null endpoint, 4014 on the voice side, then
   * the other voice server's endpoint with a new token. */
  DVOICE_SIM_REGION_CHANGE = 2,
  /* VOICE_STATE_UPDATE with a null channel and 4014 on the voice side. */
  DVOICE_SIM_KICK = 3,
  /* op 9 Invalid Session (not resumable). */
  DVOICE_SIM_INVALIDATE_SESSION = 4,
  /* op 7 Reconnect. */
  DVOICE_SIM_RECONNECT = 5,
  /* Stop (|arg| nonzero) or resume (0) answering main-gateway heartbeats. */
  DVOICE_SIM_DROP_ACKS = 6,
  /* Close the bot's main gateway connection with close code |arg|. */
  DVOICE_SIM_CLOSE_GATEWAY = 7,
  /* Close the bot's voice connection in |guild_id| with close code |arg|. */
  DVOICE_SIM_CLOSE_VOICE = 8
} dvoice_sim_command;

/*
 * Runs |cmd| for bot |user_id| (guild_id and arg as documented per
 * command). Returns 0, or DVOICE_ERR_NOT_FOUND (no session for the bot, or
 * the bot is not in a voice channel of the guild), DVOICE_ERR_INVALID_STATE
 * (no live connection to act on), DVOICE_ERR_INVALID_ARGUMENT (NULL or
 * closing sim, unknown command, bad close code), DVOICE_ERR_NOMEM. The
 * resulting frames are queued for writing before this call returns.
 */
DVOICE_EXTERN int dvoice_sim_command_run(dvoice_sim *sim,
                                         dvoice_sim_command cmd,
                                         uint64_t user_id, uint64_t guild_id,
                                         uint64_t arg);

/*
 * Writes the report (one JSON object: main gateway sessions and
 * violations, and each voice server's sessions, media statistics and
 * violations) into |buf| (|cap| bytes, NUL-terminated when cap > 0; may be
 * NULL with cap 0). Returns the report's length without the NUL (the
 * report was cut if that is >= cap), or DVOICE_ERR_NOMEM.
 */
DVOICE_EXTERN long dvoice_sim_report(const dvoice_sim *sim, char *buf,
                                     size_t cap);

/* Number of protocol violations recorded so far (all servers). */
DVOICE_EXTERN size_t dvoice_sim_violation_count(const dvoice_sim *sim);

/*
 * Closes everything; |close_cb| (may be NULL) runs once every handle is
 * closed, then |sim| is freed (|sim| is still valid inside the callback,
 * not after it). Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL sim), or
 * DVOICE_ERR_INVALID_STATE (already closing; the callback will not run
 * twice).
 */
DVOICE_EXTERN int dvoice_sim_close(dvoice_sim *sim,
                                   void (*close_cb)(dvoice_sim *sim,
                                                    void *user_data),
                                   void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* DVOICE_SIM_H */
