/* libuv glue for the simulator: WebSocket listener, UDP socket, one timer. */
#include "sim_uv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* Datagrams per recvmmsg call, bytes kept of each (longer ones arrive
 * truncated, as before), and calls per readable event, so that a flood
 * cannot starve the loop's other handles. */
#define RX_BATCH 32
#define RX_SLOT 2048
#define RX_ROUNDS 16
/* Kernel receive stamps older than this are not trusted (clock stepped). */
#define RX_MAX_AGE (1000 * DVOICE_MS)

struct dv_sim_uv {
  uv_loop_t *loop;
  dvoice_env env;
  dv_sim_uv_settings settings;
  dv_sim_vgw *vgw;
  dv_sim_media *media;
  dv_uv_ws_server *srv;
  /* The UDP socket is ours, watched with a uv_poll_t: libuv 1.44's uv_udp_t
   * cannot hand over the kernel's receive timestamps. */
  int fd;
  uv_poll_t udp_poll;
  int poll_events;
  dv_sim_dgram *txq; /* datagrams waiting for the socket to take them */
  size_t txq_head, txq_len, txq_cap;
  dvoice_tstamp last_at; /* the latest arrival time handed to the core */
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

static void on_timer(uv_timer_t *t);
static void on_udp_poll(uv_poll_t *h, int status, int events);

/* Watches the socket for |events| (UV_READABLE always while open). */
static void udp_watch(dv_sim_uv *sim, int events) {
  if (events != sim->poll_events && !sim->closing) {
    sim->poll_events = events;
    (void)uv_poll_start(&sim->udp_poll, events, on_udp_poll);
  }
}

/* Sends one datagram now. Returns 1 if the socket would block (keep it),
 * else 0 (sent, or dropped with a warning). */
static int udp_send_now(dv_sim_uv *sim, const dv_sim_dgram *d) {
  struct sockaddr_in sa;
  ssize_t n;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(d->dest.ip);
  sa.sin_port = htons(d->dest.port);
  do {
    n = sendto(sim->fd, d->data.data, d->data.len, MSG_DONTWAIT,
               (const struct sockaddr *)&sa, sizeof(sa));
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
    return 1;
  }
  DV_WARN(&sim->env, "sim-uv: udp send: %s", strerror(errno));
  return 0;
}

/* Sends queued datagrams in order until the socket would block. */
static void txq_drain(dv_sim_uv *sim) {
  while (sim->txq_head < sim->txq_len) {
    dv_sim_dgram *d = &sim->txq[sim->txq_head];
    if (udp_send_now(sim, d)) {
      return;
    }
    dv_buf_free(&d->data);
    sim->txq_head++;
  }
  sim->txq_head = sim->txq_len = 0;
  udp_watch(sim, UV_READABLE);
}

/* Queues |d| (taking its data) behind the others and waits for room. */
static void txq_push(dv_sim_uv *sim, dv_sim_dgram *d) {
  if (sim->txq_len == sim->txq_cap) {
    size_t ncap = sim->txq_cap ? sim->txq_cap * 2 : 64;
    dv_sim_dgram *n = dv_realloc(smem(sim), sim->txq, ncap * sizeof(*n));
    if (n == NULL) {
      DV_WARN(&sim->env, "sim-uv: out of memory queueing a datagram");
      dv_buf_free(&d->data);
      return;
    }
    sim->txq = n;
    sim->txq_cap = ncap;
  }
  sim->txq[sim->txq_len++] = *d;
  udp_watch(sim, UV_READABLE | UV_WRITABLE);
}

static void txq_free(dv_sim_uv *sim) {
  for (size_t i = sim->txq_head; i < sim->txq_len; i++) {
    dv_buf_free(&sim->txq[i].data);
  }
  dv_free(smem(sim), sim->txq);
  sim->txq = NULL;
  sim->txq_head = sim->txq_len = sim->txq_cap = 0;
}

/* Sends what the media core queued: directly while the socket takes it and
 * nothing is waiting, else behind what is waiting. */
static void flush_media(dv_sim_uv *sim) {
  dv_sim_dgram d;
  while (dv_sim_media_pop(sim->media, &d)) {
    if (sim->txq_head < sim->txq_len || udp_send_now(sim, &d)) {
      txq_push(sim, &d);
    } else {
      dv_buf_free(&d.data);
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

/* The kernel's receive time of a datagram (SO_TIMESTAMPNS, the real-time
 * clock) from its control messages; 0 if absent. */
static int64_t rx_stamp(struct msghdr *mh) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL;
       c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
  }
  return 0;
}

/*
 * Reads what the socket holds, in batches, and feeds it to the media core.
 * Each datagram's arrival is the kernel's receive time moved onto the
 * environment's clock, so a busy simulator thread does not make a sender
 * look late; the times handed over never go backwards nor past now.
 */
static void udp_read(dv_sim_uv *sim) {
  struct mmsghdr msgs[RX_BATCH];
  struct iovec iov[RX_BATCH];
  struct sockaddr_in peers[RX_BATCH];
  /* Room for one timestamp message each, aligned as cmsghdr needs. */
  uint64_t ctl[RX_BATCH][(CMSG_SPACE(sizeof(struct timespec)) + 7) / 8];
  for (int round = 0; round < RX_ROUNDS && !sim->closing; round++) {
    struct timespec rt;
    dvoice_tstamp now;
    int64_t real;
    int n;
    memset(msgs, 0, sizeof(msgs));
    for (int k = 0; k < RX_BATCH; k++) {
      iov[k].iov_base = sim->rxbuf + (size_t)k * RX_SLOT;
      iov[k].iov_len = RX_SLOT;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_name = &peers[k];
      msgs[k].msg_hdr.msg_namelen = sizeof(peers[k]);
      msgs[k].msg_hdr.msg_control = ctl[k];
      msgs[k].msg_hdr.msg_controllen = sizeof(ctl[k]);
    }
    n = recvmmsg(sim->fd, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        DV_WARN(&sim->env, "sim-uv: udp recv: %s", strerror(errno));
      }
      break;
    }
    now = dv_sim_uv_now(sim);
    clock_gettime(CLOCK_REALTIME, &rt);
    real = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec;
    for (int k = 0; k < n; k++) {
      struct msghdr *mh = &msgs[k].msg_hdr;
      int64_t stamp = rx_stamp(mh), age = real - stamp;
      dvoice_tstamp at = now;
      dv_sim_addr from;
      if (mh->msg_namelen < sizeof(struct sockaddr_in) ||
          peers[k].sin_family != AF_INET) {
        continue;
      }
      if (stamp != 0 && age > 0 && age < (int64_t)RX_MAX_AGE &&
          (uint64_t)age < now) {
        at = now - (uint64_t)age;
      }
      if (at < sim->last_at) {
        at = sim->last_at;
      }
      sim->last_at = at;
      from.ip = ntohl(peers[k].sin_addr.s_addr);
      from.port = ntohs(peers[k].sin_port);
      if (dv_sim_media_recv(sim->media, iov[k].iov_base, msgs[k].msg_len, &from,
                            at) != 0) {
        DV_WARN(&sim->env, "sim-uv: out of memory in media");
      }
    }
    if (n < RX_BATCH) {
      break;
    }
  }
  flush_udp(sim);
}

static void on_udp_poll(uv_poll_t *h, int status, int events) {
  dv_sim_uv *sim = h->data;
  if (status < 0) {
    DV_WARN(&sim->env, "sim-uv: udp poll: %s", uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE) {
    txq_drain(sim);
  }
  if (events & UV_READABLE) {
    udp_read(sim);
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  dv_sim_uv *sim = h->data;
  sim->pending--;
  finish_close(sim);
}

/* The poll handle is gone: the socket can be closed now. */
static void on_udp_closed(uv_handle_t *h) {
  dv_sim_uv *sim = h->data;
  close(sim->fd);
  sim->fd = -1;
  txq_free(sim);
  sim->pending--;
  finish_close(sim);
}

/* Opens the UDP socket on |addr| (port 0: the kernel's choice) with
 * receive timestamps and the requested receive buffer, and reads back its
 * port. Returns the descriptor, or -1 with errno set. */
static int udp_open(const struct sockaddr_in *addr, int rcvbuf,
                    uint16_t *port) {
  struct sockaddr_in name;
  socklen_t namelen = sizeof(name);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
      on = 1;
  if (fd < 0) {
    return -1;
  }
  /* Without stamps arrivals fall back to the time of reading. */
  (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  if (rcvbuf > 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0 ||
      getsockname(fd, (struct sockaddr *)&name, &namelen) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  *port = ntohs(name.sin_port);
  return fd;
}

int dv_sim_uv_udp_rcvbuf(const dv_sim_uv *sim) {
  int v = 0;
  socklen_t len = sizeof(v);
  if (getsockopt(sim->fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) {
    return 0;
  }
  /* Linux reports twice what was granted (its bookkeeping overhead). */
  return v / 2;
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
  struct sockaddr_in bind_addr;
  dvoice_env env;
  dv_sim_uv *sim;
  int rv;
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
  /* UDP first: Ready must announce its port. It is read with recvmmsg, so
   * that a tick's burst from many connections costs a few system calls
   * rather than one per datagram. */
  sim->armed = DVOICE_TSTAMP_NONE;
  sim->rxbuf = dv_malloc(smem(sim), (size_t)RX_BATCH * RX_SLOT);
  sim->fd = sim->rxbuf == NULL
                ? -1
                : udp_open(&bind_addr, settings->udp_rcvbuf, &sim->udp_port);
  if (sim->fd < 0 || uv_poll_init(loop, &sim->udp_poll, sim->fd) != 0) {
    /* No handle exists to close. */
    if (sim->fd >= 0) {
      close(sim->fd);
    } else if (sim->rxbuf != NULL) {
      DV_ERROR(&sim->env, "sim-uv: udp socket: %s", strerror(errno));
    }
    rv = sim->rxbuf == NULL ? DVOICE_ERR_NOMEM : DVOICE_ERR_TRANSPORT;
    dv_free(env.mem, sim->rxbuf);
    dv_sim_media_free(sim->media);
    dv_sim_vgw_free(sim->vgw);
    dv_free(env.mem, sim);
    return rv;
  }
  sim->udp_poll.data = sim;
  uv_timer_init(loop, &sim->timer);
  sim->timer.data = sim;
  sim->poll_events = UV_READABLE;
  rv = uv_poll_start(&sim->udp_poll, UV_READABLE, on_udp_poll);
  if (rv == 0) {
    dv_sim_vgw_set_udp(sim->vgw, host, sim->udp_port);
    dv_uv_ws_server_settings_default(&ss);
    ss.conn.env = &sim->env;
    ss.host = host;
    ss.port = settings->ws_port;
    ss.backlog = settings->ws_backlog;
    ss.cert_file = settings->cert_file;
    ss.key_file = settings->key_file;
    rv = dv_uv_ws_server_new(&sim->srv, loop, &ss, on_accept, NULL, sim);
  } else {
    DV_ERROR(&sim->env, "sim-uv: udp poll: %s", uv_strerror(rv));
    rv = DVOICE_ERR_TRANSPORT;
  }
  if (rv != 0) {
    /* Nothing was accepted: close the two handles and free on the way. */
    sim->closing = 1;
    sim->pending = 2;
    uv_close((uv_handle_t *)&sim->udp_poll, on_udp_closed);
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
  uv_close((uv_handle_t *)&sim->udp_poll, on_udp_closed);
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
