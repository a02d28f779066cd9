/*
 * libuv glue for the simulator's main gateway: the sim_gw core behind a
 * ws:// or wss:// listener (lib/uv's dv_uv_ws_server) that also answers
 * the REST calls GET /api/v10/gateway and /api/v10/gateway/bot, and one
 * timer armed from the core's deadline. Voice simulators attached with
 * dv_sim_gw_uv_attach_voice() become the gateway's voice servers and are
 * flushed whenever the gateway core acted (commands close their sessions).
 */
#ifndef DV_SIM_GW_UV_H
#define DV_SIM_GW_UV_H

#include <stdint.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "sim_gw.h"
#include "sim_uv.h"

typedef struct dv_sim_gw_uv dv_sim_gw_uv;

typedef struct dv_sim_gw_uv_settings {
  /* Environment; copied, unset hooks get the real clock and libsodium's
   * RNG. NULL: defaults. */
  const dvoice_env *env;
  dv_sim_gw_settings gw;
  /* Address to bind; copied. Default "127.0.0.1". */
  const char *host;
  /* Host name put in the URLs we announce (must match the certificate);
   * copied. Default: |host|. */
  const char *url_host;
  /* Port; 0 lets the kernel choose. */
  uint16_t port;
  /* PEM certificate chain and key; both NULL: plain ws://. */
  const char *cert_file;
  const char *key_file;
} dv_sim_gw_uv_settings;

void dv_sim_gw_uv_settings_default(dv_sim_gw_uv_settings *s);

/* Starts listening. Returns 0, INVALID_ARGUMENT, NOMEM, TRANSPORT, TLS. On
 * error nothing is left on the loop once it ran once more. */
int dv_sim_gw_uv_new(uv_loop_t *loop, const dv_sim_gw_uv_settings *settings,
                     dv_sim_gw_uv **out);

/* Registers |v| (borrowed; close it after the gateway) as the next voice
 * server. Returns its index, INVALID_ARGUMENT or NOMEM. */
int dv_sim_gw_uv_attach_voice(dv_sim_gw_uv *g, dv_sim_uv *v);

dv_sim_gw *dv_sim_gw_uv_core(dv_sim_gw_uv *g);
uint16_t dv_sim_gw_uv_port(const dv_sim_gw_uv *g);
/* "wss://HOST:PORT" (or ws://), the URL /gateway/bot returns; static
 * storage in |g|. */
const char *dv_sim_gw_uv_url(const dv_sim_gw_uv *g);
/* The voice endpoint announced for voice server |i| ("HOST:PORT"). */
const char *dv_sim_gw_uv_voice_endpoint(const dv_sim_gw_uv *g, int i);
/* HTTP requests answered (REST calls). */
uint64_t dv_sim_gw_uv_http_requests(const dv_sim_gw_uv *g);

/* Sends what the cores queued (the gateway and every attached voice
 * simulator) and re-arms the timer. Call after driving the core. */
void dv_sim_gw_uv_flush(dv_sim_gw_uv *g);

/* Closes the listener and every connection (1001). |close_cb| runs once
 * every handle is closed; the core is freed right after it returns.
 * Returns 0 or INVALID_STATE. */
int dv_sim_gw_uv_close(dv_sim_gw_uv *g,
                       void (*close_cb)(dv_sim_gw_uv *g, void *user_data),
                       void *user_data);

#endif
