/*
 * dvoice-play's main-gateway glue. See play_gw.h. The connection itself is
 * the library's (lib/uv/dv_uv_gateway, the client's built-in gateway); this
 * file only adds the tool's policy and forwards voice dispatches.
 */
#include "play_gw.h"

#include <stdlib.h>

#include "uv/dv_uv_env.h"
#include "uv/dv_uv_gateway.h"

struct play_gw {
  dv_uv_gw *gw;
  dvoice_client *client;
  play_gw_callbacks cb;
  void *ud;
  int closing, dead, ever_ready;
};

static void dead(play_gw *g, const char *why, int code) {
  if (!g->closing && !g->dead) {
    g->dead = 1;
    if (g->cb.on_dead != NULL) {
      g->cb.on_dead(g, why, code, g->ud);
    }
  }
}

static void on_event(dv_uv_gw *gw, const dv_gw_event *ev, void *ud) {
  play_gw *g = ud;
  (void)gw;
  switch (ev->type) {
    case DV_GW_EV_READY:
      g->ever_ready = 1;
      if (g->cb.on_ready != NULL) {
        g->cb.on_ready(g, ev->u.ready.user_id, g->ud);
      }
      break;
    case DV_GW_EV_VOICE_STATE:
      if (g->client != NULL && ev->u.voice_state.guild_id != 0) {
        (void)dvoice_client_voice_state(
            g->client, ev->u.voice_state.guild_id, ev->u.voice_state.user_id,
            ev->u.voice_state.has_channel ? ev->u.voice_state.channel_id : 0,
            ev->u.voice_state.session_id);
        if (g->cb.on_voice != NULL) {
          g->cb.on_voice(g, 1, ev->u.voice_state.user_id, g->ud);
        }
      }
      break;
    case DV_GW_EV_VOICE_SERVER:
      if (g->client != NULL) {
        (void)dvoice_client_voice_server(g->client, ev->u.voice_server.guild_id,
                                         ev->u.voice_server.token,
                                         ev->u.voice_server.endpoint);
        if (g->cb.on_voice != NULL) {
          g->cb.on_voice(g, 2, 0, g->ud);
        }
      }
      break;
    case DV_GW_EV_STATE:
      if (ev->u.state.state == DV_GW_DISCONNECTED) {
        dead(g, dv_gw_reason_name(ev->u.state.reason), ev->u.state.close_code);
      } else if (ev->u.state.state == DV_GW_BACKOFF && !g->ever_ready) {
        /* A command-line tool reports a gateway it never reached at once
         * (bad URL, no network, bad token) instead of retrying for
         * minutes; after READY the machine's reconnect policy applies. */
        dead(g,
             ev->u.state.close_code ? "closed during the handshake"
                                    : "cannot connect to the main gateway",
             ev->u.state.close_code);
      }
      break;
    default:
      break;
  }
}

static void on_closed(dv_uv_gw *gw, void *ud) {
  play_gw *g = ud;
  (void)gw;
  if (g->cb.on_closed != NULL) {
    g->cb.on_closed(g, g->ud);
  }
  free(g);
}

int play_gw_start(play_gw **out, uv_loop_t *loop, const dvoice_env *env,
                  const char *url, const char *token, const char *ca_file,
                  const play_gw_callbacks *cb, void *ud) {
  play_gw *g = calloc(1, sizeof(*g));
  dv_uv_gw_callbacks gcb = {on_event, NULL, on_closed};
  dv_gw_config cfg;
  dvoice_env renv;
  int rv;
  if (g == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_uv_env_resolve(&renv, env);
  if (rv != 0) {
    free(g);
    return rv;
  }
  g->cb = *cb;
  g->ud = ud;
  dv_gw_config_default(&cfg);
  cfg.token = token;
  cfg.url = url;
  rv = dv_uv_gw_start(&g->gw, loop, &renv, &cfg, ca_file, &gcb, g);
  if (rv != 0) {
    free(g);
    return rv;
  }
  *out = g;
  return 0;
}

void play_gw_set_client(play_gw *g, dvoice_client *cl) {
  g->client = cl;
}

int play_gw_send_voice_state(play_gw *g, uint64_t guild_id, uint64_t channel_id,
                             int self_mute, int self_deaf) {
  return dv_uv_gw_update_voice_state(g->gw, guild_id, channel_id, self_mute,
                                     self_deaf);
}

int play_gw_flushed(const play_gw *g) {
  return dv_uv_gw_pending(g->gw) == 0;
}

void play_gw_close(play_gw *g) {
  if (g->closing) {
    return;
  }
  g->client = NULL;
  g->closing = 1;
  dv_uv_gw_close(g->gw);
}
