/* libuv glue for the simulator: WebSocket listener, UDP socket, one timer. */
#include "sim_uv.h"

#include <stdio.h>
#include <string.h>

#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "uv/dv_uv_env.h"
#include "uv/dv_uv_stream.h"

/* One accepted WebSocket and its gateway connection. */
typedef struct simconn {
  dv_sim_uv *sim;
  dv_uv_ws *ws;
  dv_sim_vgw_conn *c; /* NULL until the Upgrade completed */
  int closing;        /* dv_uv_ws_close() was called */
} simconn;

/* Datagrams one recvmmsg call may return (libuv 1.44 reads at most 20), and
 * the room libuv wants for each (64 KiB, its largest datagram). */
#define RX_BATCH 20
#define RX_SLOT (64 * 1024)

typedef struct udp_send {
  uv_udp_send_t req;
  dv_sim_uv *sim;
  dv_buf data;
} udp_send;

struct dv_sim_uv {
  uv_loop_t *loop;
  dvoice_env env;
  dv_sim_uv_settings settings;
  dv_sim_vgw *vgw;
  dv_sim_media *media;
  dv_uv_ws_server *srv;
  uv_udp_t udp;
  uv_timer_t timer;
  uint16_t udp_port;
  char endpoint[32];
  simconn **conns;
  size_t nconns;
  int closing;
  int pending; /* handles and connections still closing */
  void (*close_cb)(dv_sim_uv *sim, void *user_data);
  void *close_ud;
  dvoice_tstamp armed; /* the timer's deadline, or NONE when stopped */
  uint8_t *rxbuf;      /* RX_BATCH slots of RX_SLOT bytes */
  size_t rxlen;
};

void dv_sim_uv_settings_default(dv_sim_uv_settings *s) {
  memset(s, 0, sizeof(*s));
  dv_sim_vgw_settings_default(&s->vgw);
  dv_sim_media_settings_default(&s->media);
  s->require_v8 = 1;
}

dv_sim_vgw *dv_sim_uv_vgw(dv_sim_uv *sim) {
  return sim->vgw;
}

dv_sim_media *dv_sim_uv_media(dv_sim_uv *sim) {
  return sim->media;
}

dvoice_tstamp dv_sim_uv_now(const dv_sim_uv *sim) {
  return dv_uv_env_now(&sim->env);
}

uint16_t dv_sim_uv_ws_port(const dv_sim_uv *sim) {
  return dv_uv_ws_server_port(sim->srv);
}

uint16_t dv_sim_uv_udp_port(const dv_sim_uv *sim) {
  return sim->udp_port;
}

const char *dv_sim_uv_endpoint(const dv_sim_uv *sim) {
  return sim->endpoint;
}

static const dvoice_mem *smem(const dv_sim_uv *sim) {
  return sim->env.mem;
}

/* ---- teardown ---------------------------------------------------------- */

static void finish_close(dv_sim_uv *sim) {
  if (!sim->closing || sim->pending > 0) {
    return;
  }
  if (sim->close_cb != NULL) {
    sim->close_cb(sim, sim->close_ud);
  }
  dv_sim_media_free(sim->media);
  dv_sim_vgw_free(sim->vgw);
  dv_free(smem(sim), sim->conns);
  dv_free(smem(sim), sim->rxbuf);
  dv_free(smem(sim), sim);
}

static void remove_conn(dv_sim_uv *sim, simconn *sc) {
  for (size_t i = 0; i < sim->nconns; i++) {
    if (sim->conns[i] == sc) {
      memmove(&sim->conns[i], &sim->conns[i + 1],
              (sim->nconns - i - 1) * sizeof(*sim->conns));
      sim->nconns--;
      return;
    }
  }
}

static void on_ws_closed(dv_uv_ws *ws, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  if (sc->c != NULL) {
    dv_sim_vgw_conn_free(sc->c);
  }
  remove_conn(sim, sc);
  dv_free(smem(sim), sc);
  if (sim->closing) {
    sim->pending--;
    finish_close(sim);
  }
}

static void close_ws(simconn *sc, int code) {
  if (sc->closing) {
    return;
  }
  /* Codes a WebSocket may not carry (1005, 1006, ...) become 1011, which a
   * client treats like an abnormal closure. */
  if (dv_uv_ws_close(sc->ws, (uint16_t)code, NULL, on_ws_closed) ==
      DVOICE_ERR_INVALID_ARGUMENT) {
    (void)dv_uv_ws_close(sc->ws, 1011, NULL, on_ws_closed);
  }
  sc->closing = 1;
  if (sc->sim->closing) {
    sc->sim->pending++;
  }
}

/* ---- output ------------------------------------------------------------ */

static void on_udp_sent(uv_udp_send_t *req, int status) {
  udp_send *us = (udp_send *)req;
  dv_sim_uv *sim = us->sim;
  if (status != 0 && status != UV_ECANCELED) {
    DV_WARN(&sim->env, "sim-uv: udp send: %s", uv_strerror(status));
  }
  dv_buf_free(&us->data);
  dv_free(smem(sim), us);
}

static void on_timer(uv_timer_t *t);

/* Sends what the media core queued. Datagrams go out directly while the
 * socket takes them; only what would block is queued with a request. */
static void flush_media(dv_sim_uv *sim) {
  dv_sim_dgram d;
  while (dv_sim_media_pop(sim->media, &d)) {
    udp_send *us;
    struct sockaddr_in sa;
    uv_buf_t b;
    int rv;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(d.dest.ip);
    sa.sin_port = htons(d.dest.port);
    b = uv_buf_init((char *)d.data.data, (unsigned)d.data.len);
    rv = uv_udp_try_send(&sim->udp, &b, 1, (const struct sockaddr *)&sa);
    if (rv >= 0 || (rv != UV_EAGAIN && rv != UV_ENOSYS)) {
      if (rv < 0) {
        DV_WARN(&sim->env, "sim-uv: udp send: %s", uv_strerror(rv));
      }
      dv_buf_free(&d.data);
      continue;
    }
    us = dv_calloc(smem(sim), 1, sizeof(*us));
    if (us == NULL) {
      dv_buf_free(&d.data);
      continue;
    }
    us->sim = sim;
    us->data = d.data;
    if (uv_udp_send(&us->req, &sim->udp, &b, 1, (const struct sockaddr *)&sa,
                    on_udp_sent) != 0) {
      dv_buf_free(&us->data);
      dv_free(smem(sim), us);
    }
  }
}

/* Arms the timer for |exp| (NONE: stops it). */
static void arm(dv_sim_uv *sim, dvoice_tstamp exp) {
  dvoice_tstamp now;
  sim->armed = exp;
  if (exp == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&sim->timer);
    return;
  }
  now = dv_sim_uv_now(sim);
  /* Round up so the timer never fires before the deadline. */
  uv_timer_start(&sim->timer, on_timer,
                 exp <= now ? 0 : (exp - now + DVOICE_MS - 1) / DVOICE_MS, 0);
}

/*
 * What a datagram can change: the media core's queue and its deadline (the
 * gateway core only records violations from it, which queue nothing). This
 * avoids dv_sim_uv_flush's walk over every connection per datagram.
 */
static void flush_udp(dv_sim_uv *sim) {
  dvoice_tstamp exp;
  if (sim->closing) {
    return;
  }
  flush_media(sim);
  exp = dv_sim_media_get_expiry(sim->media);
  if (exp < sim->armed) {
    arm(sim, exp);
  }
}

void dv_sim_uv_flush(dv_sim_uv *sim) {
  dv_sim_out o;
  dvoice_tstamp exp, e2;
  if (sim->closing) {
    return;
  }
  for (size_t i = 0; i < sim->nconns; i++) {
    simconn *sc = sim->conns[i];
    if (sc->c == NULL) {
      continue;
    }
    while (dv_sim_vgw_conn_pop(sc->c, &o)) {
      if (!sc->closing) {
        if (o.kind == DV_SIM_OUT_CLOSE) {
          close_ws(sc, o.close_code);
        } else if (dv_uv_ws_send(sc->ws,
                                 o.kind == DV_SIM_OUT_TEXT ? DV_WS_TEXT
                                                           : DV_WS_BINARY,
                                 o.data.data, o.data.len) != 0) {
          DV_WARN(&sim->env, "sim-uv: ws send failed on conn %llu",
                  (unsigned long long)sc->c->id);
        }
      }
      dv_buf_free(&o.data);
    }
  }
  flush_media(sim);
  exp = dv_sim_vgw_get_expiry(sim->vgw);
  e2 = dv_sim_media_get_expiry(sim->media);
  if (e2 < exp) {
    exp = e2;
  }
  arm(sim, exp);
}

static void on_timer(uv_timer_t *t) {
  dv_sim_uv *sim = t->data;
  dvoice_tstamp now = dv_sim_uv_now(sim);
  sim->armed = DVOICE_TSTAMP_NONE; /* it fired; dv_sim_uv_flush re-arms */
  if (dv_sim_vgw_handle_expiry(sim->vgw, now) != 0 ||
      dv_sim_media_handle_expiry(sim->media, now) != 0) {
    DV_WARN(&sim->env, "sim-uv: out of memory in a deadline");
  }
  dv_sim_uv_flush(sim);
}

/* ---- WebSocket callbacks ----------------------------------------------- */

static int target_has_v8(const char *target) {
  const char *q = strchr(target, '?');
  while (q != NULL) {
    q++;
    if (strncmp(q, "v=8", 3) == 0 && (q[3] == '\0' || q[3] == '&')) {
      return 1;
    }
    q = strchr(q, '&');
  }
  return 0;
}

static int on_request(dv_uv_ws *ws, const char *target, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  if (sim->settings.require_v8 && !target_has_v8(target)) {
    (void)dv_sim_vgw_record(sim->vgw, NULL, dv_sim_uv_now(sim), 0,
                            "upgrade target without v=8: %.60s", target);
    return 400;
  }
  return 0;
}

static void on_open(dv_uv_ws *ws, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  if (dv_sim_vgw_conn_new(sim->vgw, dv_sim_uv_now(sim), &sc->c) != 0) {
    close_ws(sc, 1011);
    return;
  }
  sc->c->user_data = sc;
  dv_sim_uv_flush(sim);
}

static void on_message(dv_uv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                       size_t len, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  if (sc->c == NULL) {
    return;
  }
  (void)dv_sim_vgw_conn_recv(sc->c, op == DV_WS_BINARY, data, len,
                             dv_sim_uv_now(sim));
  dv_sim_uv_flush(sim);
}

static void on_peer_close(dv_uv_ws *ws, uint16_t code, const char *reason,
                          size_t reason_len, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  (void)reason;
  (void)reason_len;
  if (sc->c != NULL) {
    dv_sim_vgw_conn_peer_closed(sc->c, code == 1005 ? 1006 : code,
                                dv_sim_uv_now(sim));
  }
  close_ws(sc, 1000);
  dv_sim_uv_flush(sim);
}

static void on_error(dv_uv_ws *ws, int err, int uv_err, void *ud) {
  simconn *sc = ud;
  dv_sim_uv *sim = sc->sim;
  (void)ws;
  DV_INFO(&sim->env, "sim-uv: connection failed: %s (%s)", dvoice_err_name(err),
          uv_err ? uv_strerror(uv_err) : "-");
  if (sc->c != NULL) {
    dv_sim_vgw_conn_peer_closed(sc->c, 1006, dv_sim_uv_now(sim));
  }
  close_ws(sc, 1000);
  dv_sim_uv_flush(sim);
}

static const dv_uv_ws_callbacks conn_callbacks = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_peer_close,
    .on_error = on_error,
    .on_request = on_request,
};

static void on_accept(dv_uv_ws_server *srv, dv_uv_ws *ws, void *ud) {
  dv_sim_uv *sim = ud;
  simconn *sc, **arr;
  (void)srv;
  sc = dv_calloc(smem(sim), 1, sizeof(*sc));
  arr = sc == NULL ? NULL
                   : dv_realloc(smem(sim), sim->conns,
                                (sim->nconns + 1) * sizeof(*arr));
  if (sc == NULL || arr == NULL) {
    dv_free(smem(sim), sc);
    /* Without our state the connection just closes itself. */
    (void)dv_uv_ws_close(ws, 1011, NULL, NULL);
    return;
  }
  sim->conns = arr;
  sim->conns[sim->nconns++] = sc;
  sc->sim = sim;
  sc->ws = ws;
  dv_uv_ws_set_callbacks(ws, &conn_callbacks, sc);
  if (sim->closing) {
    close_ws(sc, 1001);
  }
}

/* ---- UDP ---------------------------------------------------------------- */

/* One buffer, reused: libuv hands each datagram to on_udp_recv before it
 * asks for the next buffer. */
static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  dv_sim_uv *sim = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)sim->rxbuf, (unsigned)sim->rxlen);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  dv_sim_uv *sim = h->data;
  const struct sockaddr_in *sa = (const struct sockaddr_in *)addr;
  dv_sim_addr from;
  if (nread < 0) {
    DV_WARN(&sim->env, "sim-uv: udp recv: %s", uv_strerror((int)nread));
    return;
  }
  if (addr == NULL) {
    /* The end of a recvmmsg batch (UV_UDP_MMSG_FREE) or nothing more to
     * read: send what the batch produced. */
    flush_udp(sim);
    return;
  }
  if (addr->sa_family == AF_INET) {
    from.ip = ntohl(sa->sin_addr.s_addr);
    from.port = ntohs(sa->sin_port);
    if (dv_sim_media_recv(sim->media, (const uint8_t *)buf->base, (size_t)nread,
                          &from, dv_sim_uv_now(sim)) != 0) {
      DV_WARN(&sim->env, "sim-uv: out of memory in media");
    }
  }
  if (!(flags & UV_UDP_MMSG_CHUNK)) {
    flush_udp(sim);
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  dv_sim_uv *sim = h->data;
  sim->pending--;
  finish_close(sim);
}

static void on_srv_closed(dv_uv_ws_server *srv, void *ud) {
  dv_sim_uv *sim = ud;
  (void)srv;
  sim->pending--;
  finish_close(sim);
}

int dv_sim_uv_new(uv_loop_t *loop, const dv_sim_uv_settings *settings,
                  dv_sim_uv **out) {
  dv_uv_ws_server_settings ss;
  dv_sim_uv_settings defaults;
  struct sockaddr_storage name;
  struct sockaddr_in bind_addr;
  dvoice_env env;
  dv_sim_uv *sim;
  int namelen = sizeof(name), rv;
  const char *host;
  if (out == NULL || loop == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (settings == NULL) {
    dv_sim_uv_settings_default(&defaults);
    settings = &defaults;
  }
  rv = dv_uv_env_resolve(&env, settings->env);
  if (rv != 0) {
    return rv;
  }
  host = settings->host != NULL ? settings->host : "127.0.0.1";
  if (uv_ip4_addr(host, 0, &bind_addr) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  sim = dv_calloc(env.mem, 1, sizeof(*sim));
  if (sim == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  sim->loop = loop;
  sim->env = env;
  sim->settings = *settings;
  sim->settings.env = NULL;
  sim->settings.host = NULL;
  sim->settings.cert_file = NULL;
  sim->settings.key_file = NULL;
  rv = dv_sim_vgw_new(&sim->env, &settings->vgw, &sim->vgw);
  if (rv == 0) {
    rv = dv_sim_media_new(&sim->env, sim->vgw, &settings->media, &sim->media);
  }
  if (rv != 0) {
    dv_sim_vgw_free(sim->vgw);
    dv_free(env.mem, sim);
    return rv;
  }
  /* UDP first: Ready must announce its port. It reads with recvmmsg where
   * libuv can, so that a tick's burst from many connections costs a few
   * system calls rather than one per datagram. */
  sim->armed = DVOICE_TSTAMP_NONE;
  rv = uv_udp_init_ex(loop, &sim->udp, AF_INET | UV_UDP_RECVMMSG);
  if (rv != 0) {
    /* No handle exists to close. */
    dv_sim_media_free(sim->media);
    dv_sim_vgw_free(sim->vgw);
    dv_free(env.mem, sim);
    return DVOICE_ERR_TRANSPORT;
  }
  sim->udp.data = sim;
  uv_timer_init(loop, &sim->timer);
  sim->timer.data = sim;
  sim->rxlen = uv_udp_using_recvmmsg(&sim->udp) ? RX_BATCH * RX_SLOT : RX_SLOT;
  sim->rxbuf = dv_malloc(smem(sim), sim->rxlen);
  rv = sim->rxbuf == NULL ? UV_ENOMEM : 0;
  if (rv == 0) {
    rv = uv_udp_bind(&sim->udp, (const struct sockaddr *)&bind_addr, 0);
  }
  if (rv == 0) {
    rv = uv_udp_getsockname(&sim->udp, (struct sockaddr *)&name, &namelen);
  }
  if (rv == 0) {
    rv = uv_udp_recv_start(&sim->udp, on_udp_alloc, on_udp_recv);
  }
  if (rv == 0) {
    sim->udp_port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    dv_sim_vgw_set_udp(sim->vgw, host, sim->udp_port);
    dv_uv_ws_server_settings_default(&ss);
    ss.conn.env = &sim->env;
    ss.host = host;
    ss.port = settings->ws_port;
    ss.cert_file = settings->cert_file;
    ss.key_file = settings->key_file;
    rv = dv_uv_ws_server_new(&sim->srv, loop, &ss, on_accept, NULL, sim);
  } else {
    DV_ERROR(&sim->env, "sim-uv: udp bind: %s", uv_strerror(rv));
    rv = sim->rxbuf == NULL ? DVOICE_ERR_NOMEM : DVOICE_ERR_TRANSPORT;
  }
  if (rv != 0) {
    /* Nothing was accepted: close the two handles and free on the way. */
    sim->closing = 1;
    sim->pending = 2;
    uv_close((uv_handle_t *)&sim->udp, on_handle_closed);
    uv_close((uv_handle_t *)&sim->timer, on_handle_closed);
    return rv;
  }
  snprintf(sim->endpoint, sizeof(sim->endpoint), "%s:%u", host,
           (unsigned)dv_uv_ws_server_port(sim->srv));
  *out = sim;
  return 0;
}

int dv_sim_uv_close(dv_sim_uv *sim,
                    void (*close_cb)(dv_sim_uv *sim, void *user_data),
                    void *user_data) {
  if (sim->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  sim->closing = 1;
  sim->close_cb = close_cb;
  sim->close_ud = user_data;
  sim->pending = 3;
  uv_close((uv_handle_t *)&sim->udp, on_handle_closed);
  uv_close((uv_handle_t *)&sim->timer, on_handle_closed);
  (void)dv_uv_ws_server_close(sim->srv, on_srv_closed);
  for (size_t i = 0; i < sim->nconns; i++) {
    simconn *sc = sim->conns[i];
    if (sc->closing) {
      sim->pending++; /* its close callback is still to come */
    } else {
      close_ws(sc, 1001);
    }
  }
  return 0;
}
