#include "dv_uv_stream.h"

#include <stdio.h>
#include <string.h>

#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "dv_uv_env.h"
#include "dv_uv_timeline.h"
#include "dv_uv_url.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_CLOSE_TIMEOUT_MS 2000
#define DEFAULT_HIGH_WATER ((size_t)1 << 20)
#define DEFAULT_QUEUE_MAX ((size_t)16 << 20)
/* One TLS record's worth: the voice gateway's messages are small, wslay
 * reassembles larger ones, and this buffer is inside every connection (64
 * KiB made a voice connection cost 138 KiB). */
#define READ_BUF_SIZE 16384

/*
 * The connection's life. Each libuv callback moves it forward; an unexpected
 * input in a state is handled explicitly in each switch.
 */
typedef enum conn_state {
  ST_RESOLVING,  /* client: getaddrinfo in flight */
  ST_CONNECTING, /* client: TCP connect in flight (one address at a time) */
  ST_HANDSHAKE,  /* TCP up; TLS handshake and/or Upgrade in progress */
  ST_OPEN,       /* WebSocket open */
  ST_CLOSING,    /* a close frame went one way; waiting for the other */
  ST_SHUTDOWN,   /* WebSocket done; close_notify and FIN sent, awaiting EOF */
  ST_DEAD        /* transport gone (or going); only releasing remains */
} conn_state;

static const char *const state_names[] = {
    "resolving", "connecting", "handshake", "open",
    "closing",   "shutdown",   "dead"};

/* One uv_write request and the bytes it owns. */
typedef struct wreq {
  uv_write_t req;
  dv_uv_ws *s;
  dv_buf buf;
} wreq;

struct dv_uv_ws {
  uv_loop_t *loop;
  dvoice_env env;
  dv_uv_ws_settings set; /* copied; headers and env pointers cleared */
  dv_uv_ws_callbacks cb;
  void *ud;
  dv_uv_ws_server *srv; /* server side: the server that accepted us */
  int is_server;
  int secure;
  dv_uv_url url; /* client */
  char *target;  /* server: the request target, copied */
  char peer[80]; /* "host:port" for log lines */
  conn_state state;

  /* libuv handles and requests; |pending| counts closes and requests that
   * must finish before the memory may go. */
  uv_timer_t timer;
  int timer_closing;
  uv_tcp_t tcp;
  int tcp_state; /* 0 none, 1 initialised, 2 closing */
  int reading;
  uv_getaddrinfo_t gai;
  int gai_pending;
  struct addrinfo *ai_list;
  struct addrinfo *ai_next;
  int last_connect_err;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  int shutdown_sent;
  int pending;

  /* The cores. */
  dv_tls_conf *tls_conf;
  int own_conf;
  dv_tls tls;
  int tls_inited;
  dv_ws ws;
  int ws_inited;
  dv_buf plain; /* plaintext taken from TLS, on its way to ws */

  size_t inflight; /* bytes in uv_write requests not yet completed */
  int over_high;   /* a send went over the high-water mark */
  dvoice_tstamp deadline;
  int tcp_eof; /* the peer ended TCP */
  int tls_eof; /* the peer sent close_notify */

  int err; /* the first error, kept */
  int uv_err;
  int terminal;      /* on_close or on_error delivered (or suppressed) */
  int err_pending;   /* on_error waiting to be delivered */
  int drain_pending; /* on_drain waiting to be delivered */
  int in_ws;         /* inside dv_ws_feed: the ws outbuf is not ours now */
  int in_flush;
  int close_requested;
  void (*close_cb)(dv_uv_ws *s, void *user_data);

  uint8_t rbuf[READ_BUF_SIZE];

  /* Test-only join timeline (dv_uv_timeline.h); NULL: none. */
  dv_uv_timeline *tl;
};

struct dv_uv_ws_server {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  dvoice_env env;
  dv_uv_ws_settings conn_set;
  dv_ws_header *headers; /* deep copy of conn_set.headers */
  size_t nheaders;
  dv_tls_conf *tls_conf;
  int own_conf;
  dv_uv_ws_accept_cb on_accept;
  dv_uv_ws_callbacks conn_cb;
  void *ud;
  uint16_t port;
  int closing;
  int listener_closed;
  size_t nconns; /* accepted connections not yet freed */
  void (*close_cb)(dv_uv_ws_server *srv, void *user_data);
};

static void flush(dv_uv_ws *s);
static void settle(dv_uv_ws *s);
static void to_dead(dv_uv_ws *s);
static void begin_shutdown(dv_uv_ws *s);
static void try_next_address(dv_uv_ws *s);
static void server_maybe_free(dv_uv_ws_server *srv);

/* ---- small helpers ------------------------------------------------------ */

static dvoice_tstamp now_ns(const dv_uv_ws *s) {
  return dv_uv_env_now(&s->env);
}

/* Records the first time of |step| when a timeline is set. */
static void tl_mark(dv_uv_ws *s, dv_uv_step step) {
  if (s->tl != NULL && s->tl->at[step] == 0) {
    s->tl->at[step] = now_ns(s);
  }
}

/* "host:port" of the peer for log lines. */
static const char *peer_name(const dv_uv_ws *s) {
  return s->peer;
}

static void set_peer_name(dv_uv_ws *s) {
  struct sockaddr_storage a;
  char ip[64] = "?";
  int len = sizeof(a);
  unsigned port = 0;
  if (!s->is_server) {
    snprintf(s->peer, sizeof(s->peer), "%.60s:%u", s->url.host,
             (unsigned)s->url.port);
    return;
  }
  if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&a, &len) == 0) {
    if (a.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&a, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&a, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in *)&a)->sin_port);
    }
  }
  snprintf(s->peer, sizeof(s->peer), "client %s:%u", ip, port);
}

static int code_sendable(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

static size_t queue_size(dv_uv_ws *s) {
  size_t n = s->inflight;
  if (s->ws_inited) {
    n += dv_ws_outbuf(&s->ws)->len;
  }
  return n;
}

/*
 * Records the first error. The owner hears about it through on_error at
 * the end of the current libuv callback (or on the next loop turn), unless
 * it already closed the stream or got its terminal event.
 */
static void fail(dv_uv_ws *s, int err, int uv_err, const char *what) {
  if (s->err != 0) {
    return;
  }
  s->err = err;
  s->uv_err = uv_err;
  if (s->close_requested || s->terminal) {
    DV_DEBUG(&s->env, "uv: %s: %s while closing: %s%s%s", peer_name(s), what,
             dvoice_strerror(err), uv_err ? ": " : "",
             uv_err ? uv_strerror(uv_err) : "");
    return;
  }
  s->err_pending = 1;
  DV_WARN(&s->env, "uv: %s: %s failed in state %s: %s%s%s%s", peer_name(s),
          what, state_names[s->state], dvoice_strerror(err), uv_err ? " (" : "",
          uv_err ? uv_err_name(uv_err) : "", uv_err ? ")" : "");
}

static int map_connect_err(int uv_err) {
  switch (uv_err) {
    case 0:
      return DVOICE_ERR_DNS; /* no usable address at all */
    case UV_ECONNREFUSED:
      return DVOICE_ERR_CONN_REFUSED;
    case UV_ETIMEDOUT:
      return DVOICE_ERR_TIMEOUT;
    default:
      return DVOICE_ERR_TRANSPORT;
  }
}

/* ---- releasing ---------------------------------------------------------- */

static void free_stream(dv_uv_ws *s) {
  const dvoice_mem *mem = s->env.mem;
  dv_uv_ws_server *srv = s->srv;
  if (s->ws_inited) {
    dv_ws_free(&s->ws);
  }
  if (s->tls_inited) {
    dv_tls_free(&s->tls);
  }
  if (s->own_conf) {
    dv_tls_conf_del(s->tls_conf);
  }
  if (s->ai_list != NULL) {
    uv_freeaddrinfo(s->ai_list);
  }
  dv_buf_free_secret(&s->plain);
  dv_uv_url_free(&s->url, mem);
  dv_free(mem, s->target);
  dv_free(mem, s);
  if (srv != NULL) {
    srv->nconns--;
    server_maybe_free(srv);
  }
}

/* Frees |s| once the owner released it and nothing of libuv's is left. Only
 * ever called last in a libuv callback. */
static void maybe_free(dv_uv_ws *s) {
  if (s->close_requested && s->state == ST_DEAD && s->timer_closing &&
      s->pending == 0) {
    if (s->close_cb != NULL) {
      s->close_cb(s, s->ud);
    }
    free_stream(s);
  }
}

static void on_timer_closed(uv_handle_t *h) {
  dv_uv_ws *s = h->data;
  s->pending--;
  maybe_free(s);
}

static void on_tcp_closed(uv_handle_t *h) {
  dv_uv_ws *s = h->data;
  s->pending--;
  s->tcp_state = 0;
  s->reading = 0;
  if (s->state == ST_CONNECTING) {
    /* The previous address failed; its handle is gone, try the next. */
    try_next_address(s);
  }
  settle(s);
  maybe_free(s);
}

static void close_tcp(dv_uv_ws *s) {
  if (s->tcp_state == 1) {
    s->tcp_state = 2;
    s->pending++;
    uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
  }
}

static void to_dead(dv_uv_ws *s) {
  if (s->state == ST_DEAD) {
    return;
  }
  DV_DEBUG(&s->env, "uv: %s: %s -> dead", peer_name(s), state_names[s->state]);
  s->state = ST_DEAD;
  s->deadline = DVOICE_TSTAMP_NONE;
  if (s->gai_pending) {
    /* The callback still runs (with UV_EAI_CANCELED if this worked). */
    uv_cancel((uv_req_t *)&s->gai);
  }
  close_tcp(s);
}

/* ---- output: ws -> tls -> uv_write ------------------------------------- */

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  dv_uv_ws *s = w->s;
  s->inflight -= w->buf.len;
  dv_buf_free(&w->buf);
  dv_free(s->env.mem, w);
  if (status == UV_ECANCELED) {
    return; /* the handle is closing; its close callback follows */
  }
  if (status != 0) {
    fail(s, DVOICE_ERR_TRANSPORT, status, "write");
    to_dead(s);
  }
  if (s->over_high && queue_size(s) <= s->set.write_high_water) {
    s->over_high = 0;
    s->drain_pending = 1;
  }
  settle(s);
}

/* Hands the bytes of |b| to uv_write, taking its storage. */
static void write_out(dv_uv_ws *s, dv_buf *b) {
  const dvoice_mem *bmem = b->mem;
  uv_buf_t ub;
  wreq *w;
  int rv;
  if (b->len == 0) {
    return;
  }
  w = dv_malloc(s->env.mem, sizeof(*w));
  if (w == NULL) {
    fail(s, DVOICE_ERR_NOMEM, 0, "write");
    to_dead(s);
    return;
  }
  w->s = s;
  w->buf = *b;
  dv_buf_init(b, bmem);
  ub = uv_buf_init((char *)w->buf.data, (unsigned)w->buf.len);
  rv = uv_write(&w->req, (uv_stream_t *)&s->tcp, &ub, 1, on_written);
  if (rv != 0) {
    dv_buf_free(&w->buf);
    dv_free(s->env.mem, w);
    fail(s, DVOICE_ERR_TRANSPORT, rv, "write");
    to_dead(s);
    return;
  }
  s->inflight += w->buf.len;
}

/* Moves every pending byte down the stack to the socket. */
static void pump(dv_uv_ws *s) {
  if (s->tcp_state != 1 || s->in_ws) {
    return;
  }
  switch (s->state) {
    case ST_RESOLVING:
    case ST_CONNECTING:
    case ST_DEAD:
      return; /* no connected socket */
    case ST_HANDSHAKE:
    case ST_OPEN:
    case ST_CLOSING:
    case ST_SHUTDOWN:
      break;
  }
  if (s->ws_inited) {
    dv_buf *wo = dv_ws_outbuf(&s->ws);
    if (!s->secure) {
      write_out(s, wo);
    } else if (wo->len > 0) {
      int rv = dv_tls_write(&s->tls, wo->data, wo->len);
      /* Frames carry tokens (Identify) in a reversible mask: wipe them. */
      dv_wipe(wo->data, wo->len);
      dv_buf_reset(wo);
      if (rv == DVOICE_ERR_INVALID_STATE) {
        /* TLS is already shut down: nothing more may be sent. */
        DV_DEBUG(&s->env, "uv: dropped WebSocket bytes after TLS shutdown");
      } else if (rv != 0) {
        fail(s, rv, 0, "TLS write");
        to_dead(s);
        return;
      }
    }
  }
  if (s->secure && s->tls_inited && s->state != ST_DEAD) {
    write_out(s, dv_tls_outbuf(&s->tls));
  }
}

/* ---- timer -------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void rearm(dv_uv_ws *s) {
  dvoice_tstamp due = s->deadline, now;
  uint64_t ms;
  if (s->timer_closing) {
    return;
  }
  if (s->err_pending || s->drain_pending) {
    due = 0; /* deliver on the next loop turn */
  }
  if (due == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&s->timer);
    return;
  }
  now = now_ns(s);
  ms = due <= now ? 0 : (due - now + DVOICE_MS - 1) / DVOICE_MS;
  uv_timer_start(&s->timer, on_timer, ms, 0);
}

static void set_close_deadline(dv_uv_ws *s) {
  s->deadline = now_ns(s) + s->set.close_timeout_ms * DVOICE_MS;
}

static void on_timer(uv_timer_t *t) {
  dv_uv_ws *s = t->data;
  if (s->deadline != DVOICE_TSTAMP_NONE && now_ns(s) >= s->deadline) {
    s->deadline = DVOICE_TSTAMP_NONE;
    switch (s->state) {
      case ST_RESOLVING:
        fail(s, DVOICE_ERR_TIMEOUT, 0, "resolve");
        to_dead(s);
        break;
      case ST_CONNECTING:
        fail(s, DVOICE_ERR_TIMEOUT, 0, "connect");
        to_dead(s);
        break;
      case ST_HANDSHAKE:
        fail(s, DVOICE_ERR_TIMEOUT, 0,
             s->secure && !dv_tls_is_established(&s->tls) ? "TLS handshake"
                                                          : "upgrade");
        to_dead(s);
        break;
      case ST_CLOSING:
      case ST_SHUTDOWN:
        DV_INFO(&s->env, "uv: %s: close timed out in state %s; dropping",
                peer_name(s), state_names[s->state]);
        to_dead(s);
        break;
      case ST_OPEN:
      case ST_DEAD:
        break; /* no deadline applies; a stale timer */
    }
  }
  settle(s);
}

/* ---- state transitions -------------------------------------------------- */

static void on_shutdown_done(uv_shutdown_t *req, int status) {
  dv_uv_ws *s = req->handle->data;
  if (status == UV_ECANCELED) {
    return;
  }
  if (status != 0) {
    DV_DEBUG(&s->env, "uv: shutdown: %s", uv_strerror(status));
  }
  settle(s);
}

/* The WebSocket is finished (closed both ways, failed, or refused): send
 * what is left, TLS close_notify, then FIN, and wait for the peer's EOF. */
static void begin_shutdown(dv_uv_ws *s) {
  switch (s->state) {
    case ST_HANDSHAKE:
    case ST_OPEN:
    case ST_CLOSING:
      break;
    case ST_RESOLVING:
    case ST_CONNECTING:
    case ST_SHUTDOWN:
    case ST_DEAD:
      return;
  }
  if (s->state != ST_CLOSING || s->deadline == DVOICE_TSTAMP_NONE) {
    set_close_deadline(s);
  }
  s->state = ST_SHUTDOWN;
  pump(s);
  if (s->state == ST_DEAD) {
    return;
  }
  if (s->secure && dv_tls_is_established(&s->tls) &&
      dv_tls_state_get(&s->tls) != DV_TLS_FAILED) {
    if (dv_tls_shutdown(&s->tls) == DVOICE_ERR_NOMEM) {
      fail(s, DVOICE_ERR_NOMEM, 0, "TLS shutdown");
      to_dead(s);
      return;
    }
    pump(s);
  }
  if (s->tcp_eof || s->tls_eof) {
    /* The peer is already gone; what we could send is on its way. */
    to_dead(s);
    return;
  }
  if (s->tcp_state == 1 && !s->shutdown_sent) {
    int rv =
        uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown_done);
    s->shutdown_sent = 1;
    if (rv != 0) {
      to_dead(s);
    }
  }
}

/* Moves the state forward from what the cores say. No user callbacks. */
static void advance(dv_uv_ws *s) {
  switch (s->state) {
    case ST_RESOLVING:
    case ST_CONNECTING:
      if (s->close_requested) {
        to_dead(s);
      }
      break;
    case ST_HANDSHAKE:
      if (s->close_requested) {
        to_dead(s);
      } else if (s->ws_inited && dv_ws_state_get(&s->ws) == DV_WS_FAILED) {
        begin_shutdown(s);
      }
      break;
    case ST_OPEN:
    case ST_CLOSING:
      switch (dv_ws_state_get(&s->ws)) {
        case DV_WS_CLOSING:
          if (s->state == ST_OPEN) {
            s->state = ST_CLOSING;
            set_close_deadline(s);
          }
          break;
        case DV_WS_CLOSED:
        case DV_WS_FAILED:
          begin_shutdown(s);
          break;
        case DV_WS_HANDSHAKE:
        case DV_WS_OPEN:
          break;
      }
      break;
    case ST_SHUTDOWN:
      if (s->tcp_eof || s->tls_eof) {
        to_dead(s);
      }
      break;
    case ST_DEAD:
      break;
  }
  if (s->state == ST_DEAD && s->close_requested && !s->timer_closing) {
    s->timer_closing = 1;
    s->pending++;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
  }
}

/* Drains output, advances the state, re-arms the timer. Never calls the
 * owner, so public functions may call it. */
static void flush(dv_uv_ws *s) {
  if (s->in_ws || s->in_flush) {
    return; /* the outer caller flushes when it unwinds */
  }
  s->in_flush = 1;
  pump(s);
  advance(s);
  pump(s);
  rearm(s);
  s->in_flush = 0;
}

/* Delivers one deferred event; returns 1 if it did. */
static int dispatch(dv_uv_ws *s) {
  if (s->close_requested) {
    s->err_pending = s->drain_pending = 0;
    return 0;
  }
  if (s->err_pending) {
    s->err_pending = 0;
    if (!s->terminal) {
      s->terminal = 1;
      if (s->cb.on_error != NULL) {
        s->cb.on_error(s, s->err, s->uv_err, s->ud);
      }
      return 1;
    }
  }
  if (s->drain_pending) {
    s->drain_pending = 0;
    if (!s->terminal && s->state == ST_OPEN && s->cb.on_drain != NULL) {
      s->cb.on_drain(s, s->ud);
      return 1;
    }
  }
  return 0;
}

/* The tail of every libuv callback: flush, then deliver deferred events
 * (each may lead the owner to call us again), until quiet. */
static void settle(dv_uv_ws *s) {
  do {
    flush(s);
  } while (dispatch(s));
  flush(s);
}

/* ---- input: uv read -> tls -> ws --------------------------------------- */

static void feed_ws(dv_uv_ws *s, const uint8_t *p, size_t n) {
  int rv;
  dv_ws_state st = dv_ws_state_get(&s->ws);
  if (st == DV_WS_CLOSED || st == DV_WS_FAILED) {
    return; /* nothing more is read once the WebSocket is finished */
  }
  s->in_ws++;
  rv = dv_ws_feed(&s->ws, p, n);
  s->in_ws--;
  if (rv == 0 || rv == DVOICE_ERR_INVALID_STATE) {
    return;
  }
  fail(s, rv, 0, "websocket");
  if (!s->is_server &&
      (rv == DVOICE_ERR_WS_UPGRADE || rv == DVOICE_ERR_WS_ACCEPT)) {
    /* A refused client upgrade has nothing left to say. */
    to_dead(s);
  } else if (rv == DVOICE_ERR_NOMEM) {
    to_dead(s);
  }
  /* Otherwise a close frame or an HTTP error is queued: advance() sends it
   * and shuts down gracefully. */
}

static void on_tls_error(dv_uv_ws *s, int rv) {
  if (rv == DVOICE_ERR_TLS_CLOSED) {
    s->tls_eof = 1;
    if (s->state == ST_SHUTDOWN || s->close_requested ||
        (s->ws_inited && dv_ws_state_get(&s->ws) == DV_WS_CLOSED)) {
      return; /* expected: advance() finishes */
    }
    fail(s, DVOICE_ERR_TLS_CLOSED, 0, "TLS (peer sent close_notify)");
    to_dead(s);
    return;
  }
  fail(s, rv, 0, dv_tls_is_established(&s->tls) ? "TLS" : "TLS handshake");
  /* Send the alert if there is one, then drop the connection. */
  if (s->tcp_state == 1) {
    write_out(s, dv_tls_outbuf(&s->tls));
  }
  to_dead(s);
}

static void feed_bytes(dv_uv_ws *s, const uint8_t *p, size_t n) {
  int rv;
  if (!s->secure) {
    feed_ws(s, p, n);
    return;
  }
  if (dv_tls_is_closed(&s->tls)) {
    return; /* after close_notify or a failure nothing more is read */
  }
  rv = dv_tls_feed(&s->tls, p, n);
  if (s->tl != NULL && dv_tls_is_established(&s->tls)) {
    tl_mark(s, DV_UV_STEP_TLS);
  }
  /* Plaintext decrypted before an error is still delivered. */
  if (dv_tls_read(&s->tls, &s->plain) != 0) {
    fail(s, DVOICE_ERR_NOMEM, 0, "TLS read");
    to_dead(s);
    return;
  }
  if (s->plain.len > 0) {
    feed_ws(s, s->plain.data, s->plain.len);
    /* Decrypted frames carry keys (Session Description): wipe them. */
    dv_wipe(s->plain.data, s->plain.len);
    dv_buf_reset(&s->plain);
  }
  if (rv != 0) {
    on_tls_error(s, rv);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  dv_uv_ws *s = h->data;
  (void)hint;
  *buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  dv_uv_ws *s = stream->data;
  if (n == 0) {
    return; /* EAGAIN */
  }
  if (n < 0) {
    uv_read_stop(stream);
    s->reading = 0;
    if (n == UV_EOF || n == UV_ECONNRESET) {
      s->tcp_eof = 1;
    }
    switch (s->state) {
      case ST_SHUTDOWN:
      case ST_DEAD:
        to_dead(s); /* expected */
        break;
      case ST_HANDSHAKE:
      case ST_OPEN:
      case ST_CLOSING:
        if (s->tcp_eof) {
          fail(s, s->secure ? DVOICE_ERR_TLS_CLOSED : DVOICE_ERR_EOF,
               n == UV_EOF ? 0 : (int)n, "read (peer closed)");
        } else {
          fail(s, DVOICE_ERR_TRANSPORT, (int)n, "read");
        }
        to_dead(s);
        break;
      case ST_RESOLVING:
      case ST_CONNECTING:
        fail(s, DVOICE_ERR_INTERNAL, (int)n, "read before connect");
        to_dead(s);
        break;
    }
    settle(s);
    return;
  }
  switch (s->state) {
    case ST_HANDSHAKE:
    case ST_OPEN:
    case ST_CLOSING:
    case ST_SHUTDOWN:
      feed_bytes(s, (const uint8_t *)buf->base, (size_t)n);
      break;
    case ST_RESOLVING:
    case ST_CONNECTING:
    case ST_DEAD:
      break; /* late bytes on a dying connection are dropped */
  }
  settle(s);
}

static int start_reading(dv_uv_ws *s) {
  int rv = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
  if (rv != 0) {
    fail(s, DVOICE_ERR_TRANSPORT, rv, "read start");
    to_dead(s);
    return rv;
  }
  s->reading = 1;
  return 0;
}

/* ---- ws core callbacks -------------------------------------------------- */

static int ws_on_request(dv_ws *ws, const dv_ws_request *req, void *ud) {
  dv_uv_ws *s = ud;
  (void)ws;
  dv_free(s->env.mem, s->target);
  s->target = dv_strdup(s->env.mem, req->target);
  if (s->target == NULL) {
    fail(s, DVOICE_ERR_NOMEM, 0, "request");
    return DVOICE_ERR_CALLBACK_FAILURE;
  }
  if (!s->close_requested && s->cb.on_request != NULL) {
    return s->cb.on_request(s, s->target, s->ud);
  }
  return 0;
}

static int ws_on_http(dv_ws *ws, const dv_ws_request *req, dv_buf *body,
                      const char **content_type, void *ud) {
  dv_uv_ws *s = ud;
  (void)ws;
  if (s->close_requested || s->cb.on_http == NULL) {
    return 400;
  }
  return s->cb.on_http(s, req->target, req->headers, req->nheaders, body,
                       content_type, s->ud);
}

static int ws_on_open(dv_ws *ws, void *ud) {
  dv_uv_ws *s = ud;
  (void)ws;
  if (s->state != ST_HANDSHAKE) {
    return 0; /* closing already: the owner does not hear about it */
  }
  s->state = ST_OPEN;
  s->deadline = DVOICE_TSTAMP_NONE;
  DV_INFO(&s->env, "uv: %s: WebSocket open%s%s", peer_name(s),
          s->secure ? " over " : "",
          s->secure ? dv_tls_ciphersuite(&s->tls) : "");
  if (!s->close_requested && s->cb.on_open != NULL) {
    s->cb.on_open(s, s->ud);
  }
  return 0;
}

static int ws_on_message(dv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                         size_t len, void *ud) {
  dv_uv_ws *s = ud;
  (void)ws;
  if (!s->close_requested && !s->terminal && s->err == 0 &&
      s->cb.on_message != NULL) {
    s->cb.on_message(s, op, data, len, s->ud);
  }
  return 0;
}

static void ws_on_pong(dv_ws *ws, const uint8_t *data, size_t len, void *ud) {
  dv_uv_ws *s = ud;
  (void)ws;
  if (!s->close_requested && !s->terminal && s->err == 0 &&
      s->cb.on_pong != NULL) {
    s->cb.on_pong(s, data, len, s->ud);
  }
}

static void ws_on_close(dv_ws *ws, uint16_t code, const uint8_t *reason,
                        size_t reason_len, void *ud) {
  dv_uv_ws *s = ud;
  char text[128];
  (void)ws;
  DV_INFO(&s->env, "uv: %s: peer closed with %u", peer_name(s), (unsigned)code);
  if (s->close_requested || s->terminal || s->err != 0) {
    return; /* the answer to our close, or after a failure */
  }
  s->terminal = 1;
  if (reason_len >= sizeof(text)) {
    reason_len = sizeof(text) - 1;
  }
  if (reason_len > 0) {
    memcpy(text, reason, reason_len);
  }
  text[reason_len] = 0;
  if (s->cb.on_close != NULL) {
    s->cb.on_close(s, code, text, reason_len, s->ud);
  }
}

static int init_cores(dv_uv_ws *s, const dv_ws_header *headers,
                      size_t nheaders) {
  dv_ws_opts o;
  dv_ws_callbacks wcb;
  int rv;
  if (s->secure) {
    s->tls_inited = 1; /* dv_tls_free is needed even after a failed init */
    rv = dv_tls_init(&s->tls, s->tls_conf, s->is_server ? NULL : s->url.host);
    if (rv == 0 && !s->is_server) {
      rv = dv_tls_start(&s->tls);
    }
    if (rv != 0) {
      return rv;
    }
  }
  memset(&o, 0, sizeof(o));
  o.is_server = s->is_server;
  if (!s->is_server) {
    o.host = s->url.authority;
    o.path = s->url.target;
  }
  o.headers = headers;
  o.nheaders = nheaders;
  o.max_message_size = s->set.max_message_size;
  memset(&wcb, 0, sizeof(wcb));
  wcb.on_request = ws_on_request;
  wcb.on_http = ws_on_http;
  wcb.on_open = ws_on_open;
  wcb.on_message = ws_on_message;
  wcb.on_pong = ws_on_pong;
  wcb.on_close = ws_on_close;
  s->ws_inited = 1;
  return dv_ws_init(&s->ws, &o, &wcb, &s->env, s);
}

/* ---- connecting (client) ------------------------------------------------ */

static void on_connected(uv_connect_t *req, int status) {
  dv_uv_ws *s = req->handle->data;
  if (status == UV_ECANCELED || s->state != ST_CONNECTING) {
    return; /* the handle is closing; its close callback follows */
  }
  if (status != 0) {
    s->last_connect_err = status;
    DV_DEBUG(&s->env, "uv: %s: connect attempt: %s", peer_name(s),
             uv_strerror(status));
    close_tcp(s); /* on_tcp_closed tries the next address */
    settle(s);
    return;
  }
  tl_mark(s, DV_UV_STEP_TCP);
  uv_freeaddrinfo(s->ai_list);
  s->ai_list = s->ai_next = NULL;
  s->state = ST_HANDSHAKE;
  DV_DEBUG(&s->env, "uv: %s: TCP connected", peer_name(s));
  start_reading(s);
  settle(s);
}

static void try_next_address(dv_uv_ws *s) {
  while (s->ai_next != NULL) {
    struct addrinfo *ai = s->ai_next;
    int rv;
    s->ai_next = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
      continue;
    }
    rv = uv_tcp_init(s->loop, &s->tcp);
    if (rv != 0) {
      fail(s, DVOICE_ERR_TRANSPORT, rv, "socket");
      to_dead(s);
      return;
    }
    s->tcp.data = s;
    s->tcp_state = 1;
    uv_tcp_nodelay(&s->tcp, 1);
    rv = uv_tcp_connect(&s->connect_req, &s->tcp, ai->ai_addr, on_connected);
    if (rv == 0) {
      return;
    }
    s->last_connect_err = rv;
    close_tcp(s); /* on_tcp_closed comes back here */
    return;
  }
  fail(s, map_connect_err(s->last_connect_err), s->last_connect_err, "connect");
  to_dead(s);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  dv_uv_ws *s = req->data;
  s->gai_pending = 0;
  s->pending--;
  switch (s->state) {
    case ST_RESOLVING:
      if (status != 0) {
        fail(s, DVOICE_ERR_DNS, status, "resolve");
        to_dead(s);
        break;
      }
      tl_mark(s, DV_UV_STEP_DNS);
      s->ai_list = s->ai_next = res;
      res = NULL;
      s->state = ST_CONNECTING;
      try_next_address(s);
      break;
    case ST_CONNECTING:
    case ST_HANDSHAKE:
    case ST_OPEN:
    case ST_CLOSING:
    case ST_SHUTDOWN:
    case ST_DEAD:
      break; /* cancelled (timeout or close) */
  }
  if (res != NULL) {
    uv_freeaddrinfo(res);
  }
  settle(s);
  maybe_free(s);
}

/* ---- construction ------------------------------------------------------- */

void dv_uv_ws_settings_default(dv_uv_ws_settings *s) {
  memset(s, 0, sizeof(*s));
  s->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  s->close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
  s->write_high_water = DEFAULT_HIGH_WATER;
  s->write_queue_max = DEFAULT_QUEUE_MAX;
}

/* Allocates a stream with the settings and env applied. */
static int stream_new(dv_uv_ws **out, uv_loop_t *loop,
                      const dv_uv_ws_settings *set, const dvoice_env *env,
                      const dv_uv_ws_callbacks *cb, void *ud) {
  dv_uv_ws *s = dv_calloc(env->mem, 1, sizeof(*s));
  if (s == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  s->loop = loop;
  s->env = *env;
  s->set = *set;
  s->set.env = NULL;
  s->set.headers = NULL;
  s->set.nheaders = 0;
  if (s->set.connect_timeout_ms == 0) {
    s->set.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  }
  if (s->set.close_timeout_ms == 0) {
    s->set.close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
  }
  if (s->set.write_high_water == 0) {
    s->set.write_high_water = DEFAULT_HIGH_WATER;
  }
  if (s->set.write_queue_max == 0) {
    s->set.write_queue_max = DEFAULT_QUEUE_MAX;
  }
  if (cb != NULL) {
    s->cb = *cb;
  }
  s->ud = ud;
  s->deadline = DVOICE_TSTAMP_NONE;
  dv_buf_init(&s->plain, env->mem);
  *out = s;
  return 0;
}

static int make_client_conf(dv_uv_ws *s, const dv_uv_ws_settings *set) {
  dv_tls_conf_opts o;
  if (set->tls_conf != NULL) {
    s->tls_conf = set->tls_conf;
    return 0;
  }
  memset(&o, 0, sizeof(o));
  o.ca_file = set->tls.ca_file;
  o.insecure_skip_verify = set->tls.insecure_skip_verify;
  s->own_conf = 1;
  return dv_tls_conf_new(&s->tls_conf, &o, &s->env);
}

int dv_uv_ws_connect(dv_uv_ws **out, uv_loop_t *loop, const char *url,
                     const dv_uv_ws_settings *settings,
                     const dv_uv_ws_callbacks *cb, void *user_data) {
  dv_uv_ws_settings defaults;
  dvoice_env env;
  struct addrinfo hints;
  char port[8];
  dv_uv_ws *s;
  int rv;
  if (out == NULL || loop == NULL || url == NULL || cb == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (settings == NULL) {
    dv_uv_ws_settings_default(&defaults);
    settings = &defaults;
  }
  rv = dv_uv_env_resolve(&env, settings->env);
  if (rv != 0) {
    return rv;
  }
  rv = stream_new(&s, loop, settings, &env, cb, user_data);
  if (rv != 0) {
    return rv;
  }
  rv = dv_uv_url_parse(&s->url, url, env.mem);
  if (rv == 0) {
    set_peer_name(s);
    s->secure = s->url.secure;
    if (s->secure) {
      rv = make_client_conf(s, settings);
    }
  }
  if (rv == 0) {
    /* The cores start now: the ClientHello and the Upgrade request wait in
     * their buffers until TCP connects. */
    rv = init_cores(s, settings->headers, settings->nheaders);
  }
  if (rv != 0) {
    DV_WARN(&env, "uv: cannot start a WebSocket connection: %s",
            dvoice_strerror(rv));
    free_stream(s);
    return rv;
  }
  rv = uv_timer_init(loop, &s->timer);
  if (rv != 0) {
    free_stream(s);
    return DVOICE_ERR_INTERNAL;
  }
  s->timer.data = s;
  s->state = ST_RESOLVING;
  s->deadline = now_ns(s) + s->set.connect_timeout_ms * DVOICE_MS;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  snprintf(port, sizeof(port), "%u", (unsigned)s->url.port);
  s->gai.data = s;
  rv = uv_getaddrinfo(loop, &s->gai, on_resolved, s->url.host, port, &hints);
  if (rv == 0) {
    s->gai_pending = 1;
    s->pending++;
  } else {
    /* Reported from the loop like any other DNS failure. */
    fail(s, DVOICE_ERR_DNS, rv, "resolve");
    to_dead(s);
  }
  DV_DEBUG(&env, "uv: connecting to %s:%u (%s)", s->url.host,
           (unsigned)s->url.port, s->secure ? "wss" : "ws");
  flush(s);
  *out = s;
  return 0;
}

/* ---- public calls ------------------------------------------------------- */

int dv_uv_ws_send(dv_uv_ws *s, dv_ws_opcode op, const uint8_t *data,
                  size_t len) {
  int rv;
  if (s == NULL || (op != DV_WS_TEXT && op != DV_WS_BINARY) ||
      (data == NULL && len > 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (s->state != ST_OPEN || s->close_requested || s->terminal || s->err != 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (queue_size(s) > s->set.write_queue_max) {
    s->over_high = 1;
    return DVOICE_ERR_NOBUF;
  }
  rv = dv_ws_send(&s->ws, op, data, len);
  if (rv != 0 && rv != DVOICE_ERR_NOMEM) {
    /* The WebSocket is failing inside the current callback; the owner
     * hears why through on_error. */
    rv = DVOICE_ERR_INVALID_STATE;
  }
  if (rv == DVOICE_ERR_NOMEM) {
    fail(s, rv, 0, "send");
    to_dead(s);
  }
  if (rv == 0) {
    flush(s);
    if (queue_size(s) > s->set.write_high_water) {
      s->over_high = 1;
    }
  } else {
    flush(s);
  }
  return rv;
}

int dv_uv_ws_ping(dv_uv_ws *s, const uint8_t *data, size_t len) {
  int rv;
  if (s == NULL || (data == NULL && len > 0) || len > 125) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (s->state != ST_OPEN || s->close_requested || s->terminal || s->err != 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (queue_size(s) > s->set.write_queue_max) {
    return DVOICE_ERR_NOBUF;
  }
  rv = dv_ws_ping(&s->ws, data, len);
  if (rv != 0 && rv != DVOICE_ERR_NOMEM) {
    rv = DVOICE_ERR_INVALID_STATE;
  }
  if (rv == DVOICE_ERR_NOMEM) {
    fail(s, rv, 0, "ping");
    to_dead(s);
  }
  flush(s);
  return rv;
}

size_t dv_uv_ws_write_queue_size(const dv_uv_ws *s) {
  return s == NULL ? 0 : queue_size((dv_uv_ws *)s);
}

int dv_uv_ws_writable(const dv_uv_ws *s) {
  return s != NULL && queue_size((dv_uv_ws *)s) <= s->set.write_high_water;
}

int dv_uv_ws_close(dv_uv_ws *s, uint16_t code, const char *reason,
                   void (*close_cb)(dv_uv_ws *s, void *user_data)) {
  size_t reason_len = reason != NULL ? strlen(reason) : 0;
  if (s == NULL || !code_sendable(code) || reason_len > 123) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (s->close_requested) {
    return DVOICE_ERR_INVALID_STATE;
  }
  s->close_requested = 1;
  s->close_cb = close_cb;
  s->err_pending = s->drain_pending = 0;
  switch (s->state) {
    case ST_OPEN: {
      /* Once the peer's close arrived (on_close may be running now) the
       * core has answered it already: just let the handshake finish. */
      int answered = dv_ws_close_code_received(&s->ws) != 0;
      int rv = DVOICE_ERR_INVALID_STATE;
      if (!answered && dv_ws_state_get(&s->ws) == DV_WS_OPEN) {
        rv = dv_ws_close(&s->ws, code, reason, reason_len);
      }
      if (rv == 0 || answered) {
        s->state = ST_CLOSING;
        set_close_deadline(s);
      } else if (rv == DVOICE_ERR_NOMEM ||
                 dv_ws_state_get(&s->ws) == DV_WS_OPEN) {
        /* No close frame can be sent: drop the connection. */
        to_dead(s);
      }
      /* Otherwise the WebSocket is already finishing; advance() follows. */
      break;
    }
    case ST_RESOLVING:
    case ST_CONNECTING:
    case ST_HANDSHAKE:
      to_dead(s);
      break;
    case ST_CLOSING:
    case ST_SHUTDOWN:
    case ST_DEAD:
      break; /* already on its way down */
  }
  flush(s);
  return 0;
}

void dv_uv_ws_set_callbacks(dv_uv_ws *s, const dv_uv_ws_callbacks *cb,
                            void *user_data) {
  if (s == NULL) {
    return;
  }
  if (cb != NULL) {
    s->cb = *cb;
  } else {
    memset(&s->cb, 0, sizeof(s->cb));
  }
  s->ud = user_data;
}

const char *dv_uv_ws_target(const dv_uv_ws *s) {
  if (s == NULL) {
    return "";
  }
  if (s->is_server) {
    return s->target != NULL ? s->target : "";
  }
  return s->url.target;
}

uint16_t dv_uv_ws_close_code_sent(const dv_uv_ws *s) {
  return s != NULL && s->ws_inited ? dv_ws_close_code_sent(&s->ws) : 0;
}

uint16_t dv_uv_ws_close_code_received(const dv_uv_ws *s) {
  return s != NULL && s->ws_inited ? dv_ws_close_code_received(&s->ws) : 0;
}

/* ---- listening side ----------------------------------------------------- */

void dv_uv_ws_server_settings_default(dv_uv_ws_server_settings *s) {
  memset(s, 0, sizeof(*s));
  dv_uv_ws_settings_default(&s->conn);
}

static void free_headers(const dvoice_mem *mem, dv_ws_header *h, size_t n) {
  if (h == NULL) {
    return;
  }
  for (size_t i = 0; i < n; i++) {
    dv_free(mem, (void *)h[i].name);
    dv_free(mem, (void *)h[i].value);
  }
  dv_free(mem, h);
}

static int copy_headers(const dvoice_mem *mem, const dv_ws_header *in, size_t n,
                        dv_ws_header **out) {
  dv_ws_header *h;
  *out = NULL;
  if (n == 0) {
    return 0;
  }
  if (in == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  h = dv_calloc(mem, n, sizeof(*h));
  if (h == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    h[i].name = dv_strdup(mem, in[i].name);
    h[i].value = dv_strdup(mem, in[i].value);
    if (h[i].name == NULL || h[i].value == NULL) {
      free_headers(mem, h, n);
      return DVOICE_ERR_NOMEM;
    }
  }
  *out = h;
  return 0;
}

static void server_maybe_free(dv_uv_ws_server *srv) {
  if (srv->closing && srv->listener_closed && srv->nconns == 0) {
    const dvoice_mem *mem = srv->env.mem;
    if (srv->own_conf) {
      dv_tls_conf_del(srv->tls_conf);
    }
    free_headers(mem, srv->headers, srv->nheaders);
    dv_free(mem, srv);
  }
}

static void on_listener_closed(uv_handle_t *h) {
  dv_uv_ws_server *srv = h->data;
  srv->listener_closed = 1;
  if (srv->close_cb != NULL) {
    srv->close_cb(srv, srv->ud);
  }
  server_maybe_free(srv);
}

/* Releases an accepted connection the owner never saw. */
static void drop_conn(dv_uv_ws *s) {
  s->close_requested = 1;
  s->close_cb = NULL;
  to_dead(s);
  flush(s);
}

static void on_connection(uv_stream_t *listener, int status) {
  dv_uv_ws_server *srv = listener->data;
  dv_uv_ws *s;
  int rv;
  if (status != 0) {
    DV_WARN(&srv->env, "uv: server: accept: %s", uv_strerror(status));
    return;
  }
  if (srv->closing) {
    return;
  }
  if (stream_new(&s, srv->loop, &srv->conn_set, &srv->env, &srv->conn_cb,
                 srv->ud) != 0) {
    DV_WARN(&srv->env, "uv: server: no memory for a connection");
    return;
  }
  s->is_server = 1;
  s->srv = srv;
  srv->nconns++;
  s->secure = srv->tls_conf != NULL;
  s->tls_conf = srv->tls_conf;
  if (uv_timer_init(srv->loop, &s->timer) != 0) {
    free_stream(s);
    return;
  }
  s->timer.data = s;
  s->state = ST_HANDSHAKE;
  s->deadline = now_ns(s) + s->set.connect_timeout_ms * DVOICE_MS;
  rv = uv_tcp_init(srv->loop, &s->tcp);
  if (rv == 0) {
    s->tcp.data = s;
    s->tcp_state = 1;
    rv = uv_accept(listener, (uv_stream_t *)&s->tcp);
  }
  if (rv != 0) {
    DV_WARN(&srv->env, "uv: server: accept: %s", uv_strerror(rv));
    drop_conn(s);
    return;
  }
  uv_tcp_nodelay(&s->tcp, 1);
  set_peer_name(s);
  rv = init_cores(s, srv->headers, srv->nheaders);
  if (rv != 0) {
    DV_WARN(&srv->env, "uv: server: connection setup: %s", dvoice_strerror(rv));
    drop_conn(s);
    return;
  }
  if (start_reading(s) != 0) {
    s->err_pending = 0;
    drop_conn(s);
    return;
  }
  DV_DEBUG(&srv->env, "uv: server: accepted a connection");
  if (srv->on_accept != NULL) {
    srv->on_accept(srv, s, srv->ud);
  }
  settle(s);
}

int dv_uv_ws_server_new(dv_uv_ws_server **out, uv_loop_t *loop,
                        const dv_uv_ws_server_settings *settings,
                        dv_uv_ws_accept_cb on_accept,
                        const dv_uv_ws_callbacks *conn_cb, void *user_data) {
  dv_uv_ws_server *srv;
  dvoice_env env;
  struct sockaddr_storage addr;
  struct sockaddr_storage got;
  const char *host;
  int rv, len = sizeof(got);
  if (out == NULL || loop == NULL || settings == NULL || on_accept == NULL ||
      ((settings->cert_file == NULL) != (settings->key_file == NULL))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  host = settings->host != NULL ? settings->host : "127.0.0.1";
  if (uv_ip4_addr(host, settings->port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, settings->port, (struct sockaddr_in6 *)&addr) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = dv_uv_env_resolve(&env, settings->conn.env);
  if (rv != 0) {
    return rv;
  }
  srv = dv_calloc(env.mem, 1, sizeof(*srv));
  if (srv == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  srv->loop = loop;
  srv->env = env;
  srv->conn_set = settings->conn;
  srv->conn_set.env = NULL;
  srv->conn_set.tls_conf = NULL;
  srv->on_accept = on_accept;
  if (conn_cb != NULL) {
    srv->conn_cb = *conn_cb;
  }
  srv->ud = user_data;
  rv = copy_headers(env.mem, settings->conn.headers, settings->conn.nheaders,
                    &srv->headers);
  srv->nheaders = srv->headers != NULL ? settings->conn.nheaders : 0;
  srv->conn_set.headers = NULL;
  srv->conn_set.nheaders = 0;
  if (rv == 0) {
    if (settings->tls_conf != NULL) {
      srv->tls_conf = settings->tls_conf;
    } else if (settings->cert_file != NULL) {
      dv_tls_conf_opts o;
      memset(&o, 0, sizeof(o));
      o.is_server = 1;
      o.cert_file = settings->cert_file;
      o.key_file = settings->key_file;
      srv->own_conf = 1;
      rv = dv_tls_conf_new(&srv->tls_conf, &o, &srv->env);
    }
  }
  if (rv != 0) {
    srv->closing = srv->listener_closed = 1;
    server_maybe_free(srv);
    return rv;
  }
  rv = uv_tcp_init(loop, &srv->tcp);
  if (rv != 0) {
    srv->closing = srv->listener_closed = 1;
    server_maybe_free(srv);
    return DVOICE_ERR_INTERNAL;
  }
  srv->tcp.data = srv;
  rv = uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&addr, 0);
  if (rv == 0) {
    rv = uv_listen((uv_stream_t *)&srv->tcp,
                   settings->backlog > 0 ? settings->backlog : 128,
                   on_connection);
  }
  if (rv == 0) {
    rv = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&got, &len);
  }
  if (rv != 0) {
    DV_WARN(&env, "uv: server: cannot listen on %s:%u: %s", host,
            (unsigned)settings->port, uv_strerror(rv));
    /* The handle is freed from its close callback; no owner callback. */
    srv->closing = 1;
    uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
    return DVOICE_ERR_TRANSPORT;
  }
  srv->port =
      ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                      : ((struct sockaddr_in *)&got)->sin_port);
  DV_INFO(&env, "uv: server: listening on %s:%u (%s)", host,
          (unsigned)srv->port, srv->tls_conf != NULL ? "wss" : "ws");
  *out = srv;
  return 0;
}

uint16_t dv_uv_ws_server_port(const dv_uv_ws_server *srv) {
  return srv != NULL ? srv->port : 0;
}

int dv_uv_ws_server_close(dv_uv_ws_server *srv,
                          void (*close_cb)(dv_uv_ws_server *srv,
                                           void *user_data)) {
  if (srv == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (srv->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  srv->closing = 1;
  srv->close_cb = close_cb;
  uv_close((uv_handle_t *)&srv->tcp, on_listener_closed);
  return 0;
}

void dv_uv_ws_set_timeline(dv_uv_ws *s, dv_uv_timeline *tl) {
  s->tl = tl;
}
