/* libuv glue for the simulator's main gateway (see sim_gw_uv.h). */
#include "sim_gw_uv.h"

#include <stdio.h>
#include <string.h>

#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "uv/dv_uv_env.h"
#include "uv/dv_uv_stream.h"

typedef struct gwconn {
  dv_sim_gw_uv *g;
  dv_uv_ws *ws;
  dv_sim_gw_conn *c; /* NULL until the Upgrade completed */
  int closing;
} gwconn;

struct dv_sim_gw_uv {
  uv_loop_t *loop;
  dvoice_env env;
  dv_sim_gw *core;
  dv_uv_ws_server *srv;
  uv_timer_t timer;
  char url[96];
  char endpoints[DV_SIM_GW_MAX_VOICE][80];
  char url_host[64];
  dv_sim_uv *voices[DV_SIM_GW_MAX_VOICE];
  int nvoices;
  uint64_t http_requests;
  gwconn **conns;
  size_t nconns;
  int closing;
  int pending;
  void (*close_cb)(dv_sim_gw_uv *g, void *user_data);
  void *close_ud;
};

void dv_sim_gw_uv_settings_default(dv_sim_gw_uv_settings *s) {
  memset(s, 0, sizeof(*s));
  dv_sim_gw_settings_default(&s->gw);
}

dv_sim_gw *dv_sim_gw_uv_core(dv_sim_gw_uv *g) {
  return g->core;
}

uint16_t dv_sim_gw_uv_port(const dv_sim_gw_uv *g) {
  return dv_uv_ws_server_port(g->srv);
}

const char *dv_sim_gw_uv_url(const dv_sim_gw_uv *g) {
  return g->url;
}

const char *dv_sim_gw_uv_voice_endpoint(const dv_sim_gw_uv *g, int i) {
  return i >= 0 && i < g->nvoices ? g->endpoints[i] : NULL;
}

uint64_t dv_sim_gw_uv_http_requests(const dv_sim_gw_uv *g) {
  return g->http_requests;
}

static dvoice_tstamp gnow(const dv_sim_gw_uv *g) {
  return dv_uv_env_now(&g->env);
}

int dv_sim_gw_uv_attach_voice(dv_sim_gw_uv *g, dv_sim_uv *v) {
  int idx;
  if (v == NULL || g->nvoices == DV_SIM_GW_MAX_VOICE) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  snprintf(g->endpoints[g->nvoices], sizeof(g->endpoints[0]), "%s:%u",
           g->url_host, (unsigned)dv_sim_uv_ws_port(v));
  idx = dv_sim_gw_add_voice_server(g->core, dv_sim_uv_vgw(v),
                                   g->endpoints[g->nvoices]);
  if (idx < 0) {
    return idx;
  }
  g->voices[g->nvoices++] = v;
  return idx;
}

/* ---- teardown ---------------------------------------------------------- */

static void finish_close(dv_sim_gw_uv *g) {
  if (!g->closing || g->pending > 0) {
    return;
  }
  if (g->close_cb != NULL) {
    g->close_cb(g, g->close_ud);
  }
  dv_sim_gw_free(g->core);
  dv_free(g->env.mem, g->conns);
  dv_free(g->env.mem, g);
}

static void on_ws_closed(dv_uv_ws *ws, void *ud) {
  gwconn *gc = ud;
  dv_sim_gw_uv *g = gc->g;
  (void)ws;
  if (gc->c != NULL) {
    dv_sim_gw_conn_free(gc->c);
  }
  for (size_t i = 0; i < g->nconns; i++) {
    if (g->conns[i] == gc) {
      memmove(&g->conns[i], &g->conns[i + 1],
              (g->nconns - i - 1) * sizeof(*g->conns));
      g->nconns--;
      break;
    }
  }
  dv_free(g->env.mem, gc);
  if (g->closing) {
    g->pending--;
    finish_close(g);
  }
}

static void close_ws(gwconn *gc, int code) {
  if (gc->closing) {
    return;
  }
  if (dv_uv_ws_close(gc->ws, (uint16_t)code, NULL, on_ws_closed) ==
      DVOICE_ERR_INVALID_ARGUMENT) {
    (void)dv_uv_ws_close(gc->ws, 1011, NULL, on_ws_closed);
  }
  gc->closing = 1;
  if (gc->g->closing) {
    gc->g->pending++;
  }
}

/* ---- output ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

void dv_sim_gw_uv_flush(dv_sim_gw_uv *g) {
  dv_sim_out o;
  dvoice_tstamp exp, now;
  if (g->closing) {
    return;
  }
  for (size_t i = 0; i < g->nconns; i++) {
    gwconn *gc = g->conns[i];
    if (gc->c == NULL) {
      continue;
    }
    while (dv_sim_gw_conn_pop(gc->c, &o)) {
      if (!gc->closing) {
        if (o.kind == DV_SIM_OUT_CLOSE) {
          close_ws(gc, o.close_code);
        } else if (dv_uv_ws_send(gc->ws, DV_WS_TEXT, o.data.data, o.data.len) !=
                   0) {
          DV_WARN(&g->env, "sim-gw-uv: send failed on conn %llu",
                  (unsigned long long)gc->c->id);
        }
      }
      dv_buf_free(&o.data);
    }
  }
  for (int i = 0; i < g->nvoices; i++) {
    dv_sim_uv_flush(g->voices[i]);
  }
  exp = dv_sim_gw_get_expiry(g->core);
  if (exp == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&g->timer);
    return;
  }
  now = gnow(g);
  uv_timer_start(&g->timer, on_timer,
                 exp <= now ? 0 : (exp - now + DVOICE_MS - 1) / DVOICE_MS, 0);
}

static void on_timer(uv_timer_t *t) {
  dv_sim_gw_uv *g = t->data;
  if (dv_sim_gw_handle_expiry(g->core, gnow(g)) != 0) {
    DV_WARN(&g->env, "sim-gw-uv: out of memory in a deadline");
  }
  dv_sim_gw_uv_flush(g);
}

/* ---- WebSocket and HTTP callbacks --------------------------------------- */

static int on_http(dv_uv_ws *ws, const char *target,
                   const dv_ws_header *headers, size_t nheaders, dv_buf *body,
                   const char **ctype, void *ud) {
  gwconn *gc = ud;
  dv_sim_gw_uv *g = gc->g;
  size_t tl = strcspn(target, "?");
  int bot = tl == strlen("/api/v10/gateway/bot") &&
            strncmp(target, "/api/v10/gateway/bot", tl) == 0;
  int plain = tl == strlen("/api/v10/gateway") &&
              strncmp(target, "/api/v10/gateway", tl) == 0;
  const char *auth = dv_ws_header_find(headers, nheaders, "Authorization");
  (void)ws;
  g->http_requests++;
  *ctype = "application/json";
  if (bot && (auth == NULL || strncmp(auth, "Bot ", 4) != 0 ||
              !dv_sim_gw_has_bot(g->core, auth + 4))) {
    /* As Discord: /gateway/bot needs "Authorization: Bot TOKEN". */
    (void)dv_sim_violations_add(&g->core->violations, g->env.mem, gnow(g), 0,
                                "GET /gateway/bot without a valid bot token");
    (void)dv_buf_append_str(body,
                            "{\"message\":\"401: Unauthorized\",\"code\":0}");
    return 401;
  }
  if (bot) {
    return dv_buf_appendf(body,
                          "{\"url\":\"%s\",\"shards\":1,"
                          "\"session_start_limit\":{\"total\":1000,"
                          "\"remaining\":1000,\"reset_after\":86400000,"
                          "\"max_concurrency\":1}}",
                          g->url) == 0
               ? 200
               : 500;
  }
  if (plain) {
    return dv_buf_appendf(body, "{\"url\":\"%s\"}", g->url) == 0 ? 200 : 500;
  }
  (void)dv_buf_append_str(body, "{\"message\":\"404: Not Found\",\"code\":0}");
  return 404;
}

static void on_open(dv_uv_ws *ws, void *ud) {
  gwconn *gc = ud;
  dv_sim_gw_uv *g = gc->g;
  (void)ws;
  if (dv_sim_gw_conn_new(g->core, gnow(g), &gc->c) != 0) {
    close_ws(gc, 1011);
    return;
  }
  gc->c->user_data = gc;
  dv_sim_gw_uv_flush(g);
}

static void on_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  gwconn *gc = ud;
  (void)ws;
  if (gc->c == NULL) {
    return;
  }
  (void)dv_sim_gw_conn_recv(gc->c, op == DV_WS_BINARY, data, len, gnow(gc->g));
  dv_sim_gw_uv_flush(gc->g);
}

static void on_peer_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                          size_t reason_len, void *ud) {
  gwconn *gc = ud;
  (void)ws;
  (void)reason;
  (void)reason_len;
  if (gc->c != NULL) {
    dv_sim_gw_conn_peer_closed(gc->c, code == 1005 ? 1006 : code, gnow(gc->g));
  }
  close_ws(gc, 1000);
  dv_sim_gw_uv_flush(gc->g);
}

static void on_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  gwconn *gc = ud;
  (void)ws;
  if (err != DVOICE_ERR_WS_UPGRADE) {
    DV_INFO(&gc->g->env, "sim-gw-uv: connection failed: %s (%s)",
            dvoice_err_name(err), uv_err ? uv_strerror(uv_err) : "-");
  }
  if (gc->c != NULL) {
    dv_sim_gw_conn_peer_closed(gc->c, 1006, gnow(gc->g));
  }
  close_ws(gc, 1000);
  dv_sim_gw_uv_flush(gc->g);
}

static const dv_uv_ws_callbacks conn_callbacks = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_peer_close,
    .on_error = on_error,
    .on_http = on_http,
};

static void on_accept(dv_uv_ws_server *srv, dv_uv_ws *ws, void *ud) {
  dv_sim_gw_uv *g = ud;
  gwconn *gc, **arr;
  (void)srv;
  gc = dv_calloc(g->env.mem, 1, sizeof(*gc));
  arr = gc == NULL
            ? NULL
            : dv_realloc(g->env.mem, g->conns, (g->nconns + 1) * sizeof(*arr));
  if (gc == NULL || arr == NULL) {
    dv_free(g->env.mem, gc);
    (void)dv_uv_ws_close(ws, 1011, NULL, NULL);
    return;
  }
  g->conns = arr;
  g->conns[g->nconns++] = gc;
  gc->g = g;
  gc->ws = ws;
  dv_uv_ws_set_callbacks(ws, &conn_callbacks, gc);
  if (g->closing) {
    close_ws(gc, 1001);
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  dv_sim_gw_uv *g = h->data;
  g->pending--;
  finish_close(g);
}

static void on_srv_closed(dv_uv_ws_server *srv, void *ud) {
  dv_sim_gw_uv *g = ud;
  (void)srv;
  g->pending--;
  finish_close(g);
}

int dv_sim_gw_uv_new(uv_loop_t *loop, const dv_sim_gw_uv_settings *settings,
                     dv_sim_gw_uv **out) {
  dv_uv_ws_server_settings ss;
  dv_sim_gw_uv_settings defaults;
  dvoice_env env;
  dv_sim_gw_uv *g;
  const char *host, *url_host;
  int rv;
  if (out == NULL || loop == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (settings == NULL) {
    dv_sim_gw_uv_settings_default(&defaults);
    settings = &defaults;
  }
  rv = dv_uv_env_resolve(&env, settings->env);
  if (rv != 0) {
    return rv;
  }
  host = settings->host != NULL ? settings->host : "127.0.0.1";
  url_host = settings->url_host != NULL ? settings->url_host : host;
  if (strlen(url_host) >= 64) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  g = dv_calloc(env.mem, 1, sizeof(*g));
  if (g == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  g->loop = loop;
  g->env = env;
  snprintf(g->url_host, sizeof(g->url_host), "%s", url_host);
  rv = dv_sim_gw_new(&g->env, &settings->gw, &g->core);
  if (rv != 0) {
    dv_free(env.mem, g);
    return rv;
  }
  dv_uv_ws_server_settings_default(&ss);
  ss.conn.env = &g->env;
  ss.conn.connect_timeout_ms = 30000;
  ss.host = host;
  ss.port = settings->port;
  ss.cert_file = settings->cert_file;
  ss.key_file = settings->key_file;
  rv = dv_uv_ws_server_new(&g->srv, loop, &ss, on_accept, NULL, g);
  if (rv == 0) {
    snprintf(g->url, sizeof(g->url), "%s://%s:%u",
             settings->cert_file != NULL ? "wss" : "ws", url_host,
             (unsigned)dv_uv_ws_server_port(g->srv));
    rv = dv_sim_gw_set_resume_url(g->core, g->url);
    if (rv != 0) {
      (void)dv_uv_ws_server_close(g->srv, NULL);
    }
  }
  if (rv != 0) {
    dv_sim_gw_free(g->core);
    dv_free(env.mem, g);
    return rv;
  }
  uv_timer_init(loop, &g->timer);
  g->timer.data = g;
  *out = g;
  return 0;
}

int dv_sim_gw_uv_close(dv_sim_gw_uv *g,
                       void (*close_cb)(dv_sim_gw_uv *g, void *user_data),
                       void *user_data) {
  if (g->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  g->closing = 1;
  g->close_cb = close_cb;
  g->close_ud = user_data;
  g->pending = 2;
  uv_close((uv_handle_t *)&g->timer, on_handle_closed);
  (void)dv_uv_ws_server_close(g->srv, on_srv_closed);
  for (size_t i = 0; i < g->nconns; i++) {
    gwconn *gc = g->conns[i];
    if (gc->closing) {
      g->pending++;
    } else {
      close_ws(gc, 1001);
    }
  }
  return 0;
}
