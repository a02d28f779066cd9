/*
 * A small main-gateway connection for dvoice-play: lib/gateway's pure
 * machine driven over a libuv WebSocket (lib/uv), feeding a dvoice_client
 * through the adapter. Applications that already run a gateway use the
 * adapter directly (see examples/adapter.c); this glue stands in for it in
 * a standalone program.
 */
#ifndef PLAY_GW_H
#define PLAY_GW_H

#include <stdint.h>

#include <uv.h>

#include <dvoice/dvoice.h>

typedef struct play_gw play_gw;

typedef struct play_gw_callbacks {
  /* The session is READY: |user_id| is the bot's id. */
  void (*on_ready)(play_gw *g, uint64_t user_id, void *ud);
  /* A voice dispatch was fed to the client (1: state of |user_id|, 2:
   * server, user_id 0). */
  void (*on_voice)(play_gw *g, int which, uint64_t user_id, void *ud);
  /* The gateway gave up (bad token, retries exhausted): |why| is static. */
  void (*on_dead)(play_gw *g, const char *why, int close_code, void *ud);
  /* play_gw_close() finished: every handle is closed. */
  void (*on_closed)(play_gw *g, void *ud);
} play_gw_callbacks;

/*
 * Connects to |url| with |token| (copied, never logged) and |ca_file|
 * (NULL: system bundle). |env| copied (its log is used). Returns 0, or a
 * DVOICE_ERR_* code.
 */
int play_gw_start(play_gw **out, uv_loop_t *loop, const dvoice_env *env,
                  const char *url, const char *token, const char *ca_file,
                  const play_gw_callbacks *cb, void *ud);
/* Hands VOICE_STATE_UPDATE / VOICE_SERVER_UPDATE to |cl| from now on. */
void play_gw_set_client(play_gw *g, dvoice_client *cl);
/* The adapter's send_voice_state: queues op 4. */
int play_gw_send_voice_state(play_gw *g, uint64_t guild_id, uint64_t channel_id,
                             int self_mute, int self_deaf);
/* Nonzero once op 4 messages queued earlier have all been sent. */
int play_gw_flushed(const play_gw *g);
/* Goes offline (close 1000) and frees |g| after on_closed. */
void play_gw_close(play_gw *g);

#endif
