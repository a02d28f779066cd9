/*
 * The main gateway on libuv. See dv_uv_gateway.h. The pattern: feed the
 * pure machine, then flush its output and re-arm one timer from its next
 * deadline, last in every callback.
 */
#include "uv/dv_uv_gateway.h"

#include <string.h>

#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "uv/dv_uv_stream.h"

struct dv_uv_gw {
  uv_loop_t *loop;
  dvoice_env env;
  dv_gw gw;
  dv_uv_ws *ws;
  int ws_live; /* WebSockets not yet released */
  uv_timer_t timer;
  int timer_open;
  char *ca_file;
  dv_tls_conf *tls_conf; /* shared with the owner; NULL: per WebSocket */
  dv_uv_gw_callbacks cb;
  void *ud;
  int closing;
  int in_cb; /* inside a machine callback: only queueing is allowed */
};

static void flush(dv_uv_gw *g);

static dvoice_tstamp now(const dv_uv_gw *g) {
  return g->env.now(g->env.now_user_data);
}

static void maybe_closed(dv_uv_gw *g) {
  if (g->closing && g->ws_live == 0 && !g->timer_open) {
    const dvoice_mem *mem = g->env.mem;
    if (g->cb.on_closed != NULL) {
      g->cb.on_closed(g, g->ud);
    }
    dv_gw_free(&g->gw);
    dv_free(mem, g->ca_file);
    dv_tls_conf_del(g->tls_conf);
    dv_free(mem, g);
  }
}

static void ws_released(dv_uv_ws *ws, void *ud) {
  dv_uv_gw *g = ud;
  (void)ws;
  g->ws_live--;
  maybe_closed(g);
}

static void drop_ws(dv_uv_gw *g, int code) {
  if (g->ws != NULL) {
    if (dv_uv_ws_close(g->ws, (uint16_t)code, NULL, ws_released) != 0) {
      g->ws_live--;
    }
    g->ws = NULL;
  }
}

static void ws_open(dv_uv_ws *ws, void *ud) {
  dv_uv_gw *g = ud;
  (void)ws;
  (void)dv_gw_on_open(&g->gw, now(g));
  flush(g);
}

static void ws_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  dv_uv_gw *g = ud;
  (void)ws;
  if (op == DV_WS_TEXT) {
    (void)dv_gw_on_text(&g->gw, (const char *)data, len, now(g));
  }
  flush(g);
}

/* The current WS is gone: the machine decides whether to resume. */
static void ws_gone(dv_uv_gw *g, dv_uv_ws *ws, int code) {
  if (g->ws == ws) {
    drop_ws(g, 1000);
    if (!g->closing) {
      (void)dv_gw_on_close(&g->gw, code, now(g));
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
  dv_uv_gw *g = ud;
  (void)uv_err;
  DV_DEBUG(&g->env, "gateway: transport error %s", dvoice_strerror(err));
  ws_gone(g, ws, 0);
}

static const dv_uv_ws_callbacks ws_cb = {
    .on_open = ws_open,
    .on_message = ws_message,
    .on_close = ws_close,
    .on_error = ws_error,
};

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  dv_uv_gw *g = ud;
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
      s.tls_conf = g->tls_conf;
      if (dv_uv_ws_connect(&g->ws, g->loop, ev->u.connect.url, &s, &ws_cb, g) ==
          0) {
        g->ws_live++;
      } else {
        /* Reported as a failed open once this callback returns. */
        g->ws = NULL;
        DV_WARN(&g->env, "gateway: cannot start a WebSocket");
      }
      break;
    case DV_GW_EV_CLOSE_WS:
      drop_ws(g, ev->u.close_ws.code);
      break;
    case DV_GW_EV_STATE:
    case DV_GW_EV_READY:
    case DV_GW_EV_RESUMED:
    case DV_GW_EV_VOICE_STATE:
    case DV_GW_EV_VOICE_SERVER:
    case DV_GW_EV_HEARTBEAT_ACK:
      if (!g->closing && g->cb.on_event != NULL) {
        g->in_cb++;
        g->cb.on_event(g, ev, g->ud);
        g->in_cb--;
      }
      break;
  }
}

static void on_dispatch(dv_gw *gw, const char *name, const char *d,
                        size_t d_len, void *ud) {
  dv_uv_gw *g = ud;
  (void)gw;
  if (!g->closing && g->cb.on_dispatch != NULL) {
    g->in_cb++;
    g->cb.on_dispatch(g, name, d, d_len, g->ud);
    g->in_cb--;
  }
}

static void on_timer(uv_timer_t *t) {
  dv_uv_gw *g = t->data;
  (void)dv_gw_handle_expiry(&g->gw, now(g));
  flush(g);
}

static void timer_closed(uv_handle_t *h) {
  dv_uv_gw *g = h->data;
  g->timer_open = 0;
  maybe_closed(g);
}

static void flush(dv_uv_gw *g) {
  const uint8_t *p;
  size_t len;
  dvoice_tstamp e, n;
  /* A WS that could not even start counts as a failed open. */
  if (!g->closing && g->ws == NULL &&
      dv_gw_get_state(&g->gw) == DV_GW_CONNECTING) {
    (void)dv_gw_on_close(&g->gw, 0, now(g));
  }
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
  n = now(g);
  uv_timer_start(&g->timer, on_timer,
                 e <= n ? 0 : (e - n + DVOICE_MS - 1) / DVOICE_MS, 0);
}

int dv_uv_gw_start(dv_uv_gw **out, uv_loop_t *loop, const dvoice_env *env,
                   const dv_gw_config *cfg, const char *ca_file,
                   dv_tls_conf *tls_conf, const dv_uv_gw_callbacks *cb,
                   void *ud) {
  dv_uv_gw *g;
  dv_gw_callbacks gcb = {on_event, on_dispatch};
  int rv;
  *out = NULL;
  g = dv_calloc(env->mem, 1, sizeof(*g));
  if (g == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  g->loop = loop;
  g->env = *env;
  g->cb = *cb;
  g->ud = ud;
  if (ca_file != NULL && (g->ca_file = dv_strdup(env->mem, ca_file)) == NULL) {
    dv_free(env->mem, g);
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_gw_init(&g->gw, cfg, &gcb, &g->env, g);
  if (rv == 0 && uv_timer_init(loop, &g->timer) != 0) {
    rv = DVOICE_ERR_INTERNAL;
  }
  if (rv != 0) {
    dv_gw_free(&g->gw);
    dv_free(env->mem, g->ca_file);
    dv_free(env->mem, g);
    return rv;
  }
  g->tls_conf = dv_tls_conf_ref(tls_conf);
  g->timer.data = g;
  g->timer_open = 1;
  (void)dv_gw_start(&g->gw, now(g));
  *out = g;
  flush(g);
  return 0;
}

int dv_uv_gw_update_voice_state(dv_uv_gw *g, uint64_t guild_id,
                                uint64_t channel_id, int self_mute,
                                int self_deaf) {
  int rv = dv_gw_update_voice_state(&g->gw, guild_id, channel_id, self_mute,
                                    self_deaf, now(g));
  if (g->in_cb == 0) {
    flush(g); /* else the flush after the machine call sends it */
  }
  return rv;
}

size_t dv_uv_gw_pending(const dv_uv_gw *g) {
  return dv_gw_pending_count(&g->gw);
}

dv_gw_state dv_uv_gw_state(const dv_uv_gw *g) {
  return dv_gw_get_state(&g->gw);
}

void dv_uv_gw_close(dv_uv_gw *g) {
  if (g->closing) {
    return;
  }
  g->closing = 1; /* before dv_gw_close: its DISCONNECTED is expected */
  /* From a machine callback the machine cannot be driven: the WS is simply
   * dropped below and the machine is freed with |g|. */
  if (g->in_cb == 0) {
    (void)dv_gw_close(&g->gw, now(g));
    flush(g);
  }
  drop_ws(g, 1000);
  uv_close((uv_handle_t *)&g->timer, timer_closed);
}
