/*
 * libuv glue for the simulator: the voice gateway core behind a ws:// or
 * wss:// listener (lib/uv's dv_uv_ws_server), the media core behind a UDP
 * socket on 127.0.0.1, and one timer armed from both cores' deadlines.
 * Datagrams reach the media core stamped with the kernel's receive time
 * (SO_TIMESTAMPNS, moved onto the environment's clock), not the time the
 * simulator got round to reading them.
 *
 * Tests drive misbehaviour by calling the cores directly (dv_sim_uv_vgw(),
 * dv_sim_uv_media()) and then dv_sim_uv_flush(), which pushes whatever the
 * cores queued onto the sockets and re-arms the timer.
 */
#ifndef DV_SIM_UV_H
#define DV_SIM_UV_H

#include <stdint.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "sim_media.h"
#include "sim_vgw.h"

typedef struct dv_sim_uv dv_sim_uv;

typedef struct dv_sim_uv_settings {
  /* Environment; copied, unset hooks get the real clock and libsodium's
   * RNG. NULL: defaults. */
  const dvoice_env *env;
  dv_sim_vgw_settings vgw;
  dv_sim_media_settings media;
  /* Local address for both sockets; copied. Default "127.0.0.1". */
  const char *host;
  /* WebSocket port; 0 lets the kernel choose. Default 0. */
  uint16_t ws_port;
  /* PEM certificate chain and key for wss://; both NULL: plain ws://. */
  const char *cert_file;
  const char *key_file;
  /* Nonzero: refuse Upgrade requests whose target lacks v=8 (HTTP 400,
   * recorded as an unbound violation). Default 1. */
  int require_v8;
  /* Nonzero: SO_RCVBUF of the UDP socket, bytes (the kernel caps it at
   * net.core.rmem_max; see dv_sim_uv_udp_rcvbuf). Default 0: the system's. */
  int udp_rcvbuf;
  /* The WebSocket listener's backlog (capped by net.core.somaxconn); 0:
   * lib/uv's default (128). Raise it when many clients connect at once. */
  int ws_backlog;
} dv_sim_uv_settings;

void dv_sim_uv_settings_default(dv_sim_uv_settings *s);

/*
 * Starts the simulator on |loop|. Returns 0, or INVALID_ARGUMENT, NOMEM,
 * TRANSPORT (bind/listen failed), TLS (certificate or key unusable),
 * INTERNAL. On error the handles already opened are closing: run the loop
 * once more and nothing is left on it.
 */
int dv_sim_uv_new(uv_loop_t *loop, const dv_sim_uv_settings *settings,
                  dv_sim_uv **out);

/* The cores (valid until the close callback). */
dv_sim_vgw *dv_sim_uv_vgw(dv_sim_uv *sim);
dv_sim_media *dv_sim_uv_media(dv_sim_uv *sim);
/* The environment's clock. */
dvoice_tstamp dv_sim_uv_now(const dv_sim_uv *sim);
uint16_t dv_sim_uv_ws_port(const dv_sim_uv *sim);
uint16_t dv_sim_uv_udp_port(const dv_sim_uv *sim);
/* The UDP socket's receive buffer as granted, bytes; 0 if unknown. */
int dv_sim_uv_udp_rcvbuf(const dv_sim_uv *sim);
/* The VOICE_SERVER_UPDATE endpoint, "127.0.0.1:PORT" (static storage in
 * |sim|). */
const char *dv_sim_uv_endpoint(const dv_sim_uv *sim);

/* Sends what the cores queued and re-arms the timer. Call after driving a
 * core directly. */
void dv_sim_uv_flush(dv_sim_uv *sim);

/*
 * Closes everything (open WebSockets get 1001). |close_cb| runs once every
 * handle is closed; the cores are freed right after it returns, so read the
 * report inside it or before. Returns 0 or INVALID_STATE (already closing).
 */
int dv_sim_uv_close(dv_sim_uv *sim,
                    void (*close_cb)(dv_sim_uv *sim, void *user_data),
                    void *user_data);

#endif
