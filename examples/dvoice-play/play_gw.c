/*
 * dvoice-play's main-gateway glue. See play_gw.h. The pattern is the
 * library's own: feed the pure machine, then flush its output and re-arm
 * one timer from its next deadline, last in every callback.
 */
#include "play_gw.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/dv_gateway.h"
#include "uv/dv_uv_stream.h"

struct play_gw {
  uv_loop_t *loop;
  dvoice_env env;
  dv_gw gw;
  int gw_init;
  dv_uv_ws *ws;
  int ws_live; /* WebSockets not yet released */
  uv_timer_t timer;
  int timer_open;
  char *ca_file;
  dvoice_client *client;
  play_gw_callbacks cb;
  void *ud;
  int closing, dead, ever_ready;
};

static void flush(play_gw *g);

static dvoice_tstamp now(void) {
  return uv_hrtime();
}

static void rand_fill(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  randombytes_buf(dest, len);
}

static void maybe_closed(play_gw *g) {
  if (g->closing && g->ws_live == 0 && !g->timer_open) {
    play_gw_callbacks cb = g->cb;
    void *ud = g->ud;
    if (cb.on_closed != NULL) {
      cb.on_closed(g, ud);
    }
    dv_gw_free(&g->gw);
    free(g->ca_file);
    free(g);
  }
}

static void ws_released(dv_uv_ws *ws, void *ud) {
  play_gw *g = ud;
  (void)ws;
  g->ws_live--;
  maybe_closed(g);
}

static void drop_ws(play_gw *g, int code) {
  if (g->ws != NULL) {
    if (dv_uv_ws_close(g->ws, (uint16_t)code, NULL, ws_released) != 0) {
      g->ws_live--;
    }
    g->ws = NULL;
  }
}

static void ws_open(dv_uv_ws *ws, void *ud) {
  play_gw *g = ud;
  (void)ws;
  (void)dv_gw_on_open(&g->gw, now());
  flush(g);
}

static void ws_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  play_gw *g = ud;
  (void)ws;
  if (op == DV_WS_TEXT) {
    (void)dv_gw_on_text(&g->gw, (const char *)data, len, now());
  }
  flush(g);
}

static void ws_gone(play_gw *g, dv_uv_ws *ws, int code) {
  if (g->ws == ws) {
    drop_ws(g, 1000);
    if (!g->closing && !g->ever_ready && !g->dead) {
      /* A command-line tool reports a gateway it never reached at once
       * (bad URL, no network, bad token) instead of retrying for
       * minutes; after READY the machine's reconnect policy applies. */
      g->dead = 1;
      if (g->cb.on_dead != NULL) {
        g->cb.on_dead(g,
                      code ? "closed during the handshake"
                           : "cannot connect to the main gateway",
                      code, g->ud);
      }
      return;
    }
    if (!g->closing) {
      (void)dv_gw_on_close(&g->gw, code, now());
    }
  }
  flush(g);
}

static void ws_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                     size_t rlen, void *ud) {
  (void)reason;
  (void)rlen;
  ws_gone(ud, ws, code == 1005 ? 0 : code);
}

static void ws_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  (void)err;
  (void)uv_err;
  ws_gone(ud, ws, 0);
}

static const dv_uv_ws_callbacks ws_cb = {
    .on_open = ws_open,
    .on_message = ws_message,
    .on_close = ws_close,
    .on_error = ws_error,
};

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  play_gw *g = ud;
  dv_uv_ws_settings s;
  (void)gw;
  switch (ev->type) {
    case DV_GW_EV_CONNECT:
      if (g->closing) {
        break;
      }
      dv_uv_ws_settings_default(&s);
      s.env = &g->env;
      s.tls.ca_file = g->ca_file;
      if (dv_uv_ws_connect(&g->ws, g->loop, ev->u.connect.url, &s, &ws_cb, g) ==
          0) {
        g->ws_live++;
      } else {
        g->ws = NULL;
        (void)dv_gw_on_close(&g->gw, 0, now());
      }
      break;
    case DV_GW_EV_CLOSE_WS:
      drop_ws(g, ev->u.close_ws.code);
      break;
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
      if (ev->u.state.state == DV_GW_DISCONNECTED && !g->closing && !g->dead) {
        g->dead = 1;
        if (g->cb.on_dead != NULL) {
          g->cb.on_dead(g, dv_gw_reason_name(ev->u.state.reason),
                        ev->u.state.close_code, g->ud);
        }
      }
      break;
    default:
      break;
  }
}

static void on_timer(uv_timer_t *t) {
  play_gw *g = t->data;
  (void)dv_gw_handle_expiry(&g->gw, now());
  flush(g);
}

static void timer_closed(uv_handle_t *h) {
  play_gw *g = h->data;
  g->timer_open = 0;
  maybe_closed(g);
}

static void flush(play_gw *g) {
  const uint8_t *p;
  size_t len;
  dvoice_tstamp e, n;
  while (dv_gw_next_out(&g->gw, &p, &len)) {
    if (g->ws != NULL) {
      (void)dv_uv_ws_send(g->ws, DV_WS_TEXT, p, len);
    }
  }
  if (g->closing || !g->timer_open) {
    return;
  }
  e = dv_gw_get_expiry(&g->gw);
  if (e == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&g->timer);
    return;
  }
  n = now();
  uv_timer_start(&g->timer, on_timer,
                 e <= n ? 0 : (e - n + DVOICE_MS - 1) / DVOICE_MS, 0);
}

int play_gw_start(play_gw **out, uv_loop_t *loop, const dvoice_env *env,
                  const char *url, const char *token, const char *ca_file,
                  const play_gw_callbacks *cb, void *ud) {
  play_gw *g = calloc(1, sizeof(*g));
  dv_gw_config cfg;
  dv_gw_callbacks gcb = {on_event, NULL};
  int rv;
  if (g == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  if (sodium_init() < 0) {
    free(g);
    return DVOICE_ERR_INTERNAL;
  }
  g->loop = loop;
  g->env = *env;
  g->env.rand = rand_fill;
  g->cb = *cb;
  g->ud = ud;
  if (ca_file != NULL && (g->ca_file = strdup(ca_file)) == NULL) {
    free(g);
    return DVOICE_ERR_NOMEM;
  }
  dv_gw_config_default(&cfg);
  cfg.token = token;
  cfg.url = url;
  rv = dv_gw_init(&g->gw, &cfg, &gcb, &g->env, g);
  if (rv == 0) {
    rv = dv_gw_start(&g->gw, now());
  }
  if (rv != 0) {
    dv_gw_free(&g->gw);
    free(g->ca_file);
    free(g);
    return rv;
  }
  uv_timer_init(loop, &g->timer);
  g->timer.data = g;
  g->timer_open = 1;
  *out = g;
  flush(g);
  return 0;
}

void play_gw_set_client(play_gw *g, dvoice_client *cl) {
  g->client = cl;
}

int play_gw_send_voice_state(play_gw *g, uint64_t guild_id, uint64_t channel_id,
                             int self_mute, int self_deaf) {
  int rv = dv_gw_update_voice_state(&g->gw, guild_id, channel_id, self_mute,
                                    self_deaf, now());
  flush(g);
  return rv;
}

int play_gw_flushed(const play_gw *g) {
  return dv_gw_pending_count(&g->gw) == 0;
}

void play_gw_close(play_gw *g) {
  if (g->closing) {
    return;
  }
  g->client = NULL;
  g->closing = 1; /* before dv_gw_close: its DISCONNECTED is expected */
  (void)dv_gw_close(&g->gw, now());
  flush(g);
  drop_ws(g, 1000);
  uv_close((uv_handle_t *)&g->timer, timer_closed);
}
