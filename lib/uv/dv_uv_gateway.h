/*
 * The main gateway on libuv: lib/gateway's pure machine driven over a
 * dv_uv_ws WebSocket (connect, reconnect and resume as the machine
 * decides, one timer from its expiry). The client's built-in gateway.
 */
#ifndef DV_UV_GATEWAY_H
#define DV_UV_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "gateway/dv_gateway.h"
#include "tls/dv_tls.h"

typedef struct dv_uv_gw dv_uv_gw;

typedef struct dv_uv_gw_callbacks {
  /* Typed events of the machine (READY, RESUMED, STATE, VOICE_STATE,
   * VOICE_SERVER, HEARTBEAT_ACK); CONNECT and CLOSE_WS are handled here.
   * Borrowed for the call. dv_uv_gw_update_voice_state may be called. */
  void (*on_event)(dv_uv_gw *g, const dv_gw_event *ev, void *ud);
  /* Optional: other dispatches (see dv_gw_callbacks.on_dispatch). */
  void (*on_dispatch)(dv_uv_gw *g, const char *name, const char *d,
                      size_t d_len, void *ud);
  /* Optional: dv_uv_gw_close finished; |g| is freed after it returns. */
  void (*on_closed)(dv_uv_gw *g, void *ud);
} dv_uv_gw_callbacks;

/*
 * Starts connecting to cfg->url. |env| must be resolved (dv_uv_env_resolve;
 * copied, hooks borrowed). |cfg| is copied; |ca_file| copied (NULL: system
 * bundle); |tls_conf|, when not NULL, is used instead of |ca_file| for every
 * WebSocket (a reference is held until the gateway is freed). Errors:
 * DVOICE_ERR_INVALID_ARGUMENT (see dv_gw_init), DVOICE_ERR_NOMEM,
 * DVOICE_ERR_INTERNAL (timer).
 */
int dv_uv_gw_start(dv_uv_gw **out, uv_loop_t *loop, const dvoice_env *env,
                   const dv_gw_config *cfg, const char *ca_file,
                   dv_tls_conf *tls_conf, const dv_uv_gw_callbacks *cb,
                   void *ud);
/* Queues op 4 (see dv_gw_update_voice_state, same errors). */
int dv_uv_gw_update_voice_state(dv_uv_gw *g, uint64_t guild_id,
                                uint64_t channel_id, int self_mute,
                                int self_deaf);
/* op 4 messages not yet sent. */
size_t dv_uv_gw_pending(const dv_uv_gw *g);
dv_gw_state dv_uv_gw_state(const dv_uv_gw *g);
/* Goes offline (close 1000); no event after this; on_closed then frees.
 * May be called from on_event / on_dispatch. */
void dv_uv_gw_close(dv_uv_gw *g);

#endif
