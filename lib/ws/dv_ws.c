/*
 * WebSocket connection over memory buffers. See dv_ws.h.
 *
 * wslay 1.1.1 pulls input and pushes output through callbacks. Ours read
 * from the slice being fed (WOULDBLOCK when it is used up) and append to the
 * output buffer (never blocking), so wslay_event_recv() processes exactly
 * the bytes we were given and wslay_event_send() moves every queued frame
 * into the outbuf at once.
 */
#include "ws/dv_ws.h"

#include <string.h>

#include <mbedtls/base64.h>

#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "ws/dv_ws_http.h"

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                        int flags, void *user_data) {
  dv_ws *ws = user_data;
  size_t n;
  (void)flags;
  if (ws->cb_err != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  n = ws->in_len < len ? ws->in_len : len;
  if (n == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  memcpy(buf, ws->in, n);
  ws->in += n;
  ws->in_len -= n;
  return (ssize_t)n;
}

static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *data,
                        size_t len, int flags, void *user_data) {
  dv_ws *ws = user_data;
  (void)flags;
  if (dv_buf_append(&ws->out, data, len) != 0) {
    ws->nomem = 1;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int wsl_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       void *user_data) {
  dv_ws *ws = user_data;
  (void)ctx;
  dv_rand(&ws->env, buf, len);
  return 0;
}

/* Records an application callback's refusal; wslay stops at the next read. */
static void callback_failed(dv_ws *ws) {
  ws->cb_err = DVOICE_ERR_CALLBACK_FAILURE;
  /* Say why before wslay's own close (which carries no code) can go out. */
  (void)wslay_event_queue_close(ws->ctx, 1011, NULL, 0);
}

static void wsl_on_msg(wslay_event_context_ptr ctx,
                       const struct wslay_event_on_msg_recv_arg *arg,
                       void *user_data) {
  dv_ws *ws = user_data;
  (void)ctx;
  if (ws->cb_err != 0) {
    return;
  }
  switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
      if (ws->cb.on_message != NULL &&
          ws->cb.on_message(
              ws, arg->opcode == WSLAY_TEXT_FRAME ? DV_WS_TEXT : DV_WS_BINARY,
              arg->msg, arg->msg_length, ws->user_data) != 0) {
        callback_failed(ws);
      }
      break;
    case WSLAY_CONNECTION_CLOSE: {
      const uint8_t *reason = NULL;
      size_t rlen = 0;
      if (arg->msg_length >= 2) {
        reason = arg->msg + 2;
        rlen = arg->msg_length - 2;
      }
      ws->code_recv = arg->status_code != 0 ? arg->status_code : 1005;
      DV_DEBUG(&ws->env, "ws: peer closed with %u", (unsigned)ws->code_recv);
      if (!ws->close_reported) {
        ws->close_reported = 1;
        if (ws->cb.on_close != NULL) {
          ws->cb.on_close(ws, ws->code_recv, reason, rlen, ws->user_data);
        }
      }
      break;
    }
    case WSLAY_PONG:
      if (ws->cb.on_pong != NULL) {
        ws->cb.on_pong(ws, arg->msg, arg->msg_length, ws->user_data);
      }
      break;
    default:
      /* Pings are answered by wslay; nothing else reaches here. */
      break;
  }
}

static const struct wslay_event_callbacks wsl_callbacks = {
    wsl_recv, wsl_send, wsl_genmask, NULL, NULL, NULL, wsl_on_msg,
};

/* ---- state bookkeeping -------------------------------------------------- */

static int fail(dv_ws *ws, int err) {
  ws->err = err;
  ws->state = DV_WS_FAILED;
  return err;
}

/* Moves every queued frame into the outbuf. */
static int flush(dv_ws *ws) {
  int r;
  if (ws->ctx == NULL) {
    return 0;
  }
  r = wslay_event_send(ws->ctx);
  if (ws->nomem) {
    return DVOICE_ERR_NOMEM;
  }
  return r == 0 ? 0 : DVOICE_ERR_INTERNAL;
}

/*
 * Derives our state from wslay's after a read or write: who closed, and
 * whether wslay closed on its own because the peer broke the protocol or
 * sent too much.
 */
static int settle(dv_ws *ws, int rv) {
  int recv, sent;
  if (ws->nomem) {
    DV_WARN(&ws->env, "ws: out of memory");
    return fail(ws, DVOICE_ERR_NOMEM);
  }
  if (ws->cb_err != 0) {
    DV_WARN(&ws->env, "ws: application callback failed; closing");
    return fail(ws, ws->cb_err);
  }
  if (rv != 0) {
    return fail(ws, rv);
  }
  recv = wslay_event_get_close_received(ws->ctx);
  sent = wslay_event_get_close_sent(ws->ctx);
  if (sent && !recv && !ws->we_closed) {
    uint16_t code = wslay_event_get_status_code_sent(ws->ctx);
    if (code == WSLAY_CODE_MESSAGE_TOO_BIG) {
      DV_WARN(&ws->env, "ws: message larger than %zu bytes; closed with 1009",
              ws->max_message);
      return fail(ws, DVOICE_ERR_WS_TOO_BIG);
    }
    DV_WARN(&ws->env, "ws: protocol error from peer; closed with %u",
            (unsigned)code);
    return fail(ws, DVOICE_ERR_PROTO);
  }
  if (recv && sent) {
    ws->state = DV_WS_CLOSED;
  } else if (ws->we_closed) {
    ws->state = DV_WS_CLOSING;
  }
  return 0;
}

/* Feeds frame bytes to wslay, then writes its replies. */
static int feed_frames(dv_ws *ws, const uint8_t *p, size_t len) {
  int r, rv = 0;
  if (len == 0) {
    return 0;
  }
  ws->in = p;
  ws->in_len = len;
  ws->in_callback = 1;
  r = wslay_event_recv(ws->ctx);
  ws->in_callback = 0;
  /* Bytes after a close frame or an error are dropped on purpose. */
  ws->in = NULL;
  ws->in_len = 0;
  if (r == WSLAY_ERR_NOMEM) {
    ws->nomem = 1;
  } else if (r != 0 && ws->cb_err == 0 && !ws->nomem) {
    /* The frame layer rejected the input (bad header, bad length). */
    DV_WARN(&ws->env, "ws: malformed frame from peer");
    rv = DVOICE_ERR_PROTO;
  }
  /* Even after an error, try to send the close frame wslay queued. */
  r = flush(ws);
  if (rv == 0 && r != 0 && r != DVOICE_ERR_NOMEM) {
    rv = r;
  }
  return settle(ws, rv);
}

static int open_ctx(dv_ws *ws) {
  int r = ws->is_server
              ? wslay_event_context_server_init(&ws->ctx, &wsl_callbacks, ws)
              : wslay_event_context_client_init(&ws->ctx, &wsl_callbacks, ws);
  if (r != 0) {
    ws->ctx = NULL;
    return DVOICE_ERR_NOMEM;
  }
  wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->max_message);
  return 0;
}

/* Calls on_open after the context exists; a refusal closes with 1011. */
static int become_open(dv_ws *ws) {
  ws->state = DV_WS_OPEN;
  if (ws->cb.on_open != NULL) {
    int r;
    ws->in_callback = 1;
    r = ws->cb.on_open(ws, ws->user_data);
    ws->in_callback = 0;
    if (r != 0) {
      callback_failed(ws);
    }
  }
  if (flush(ws) != 0 && !ws->nomem) {
    return fail(ws, DVOICE_ERR_INTERNAL);
  }
  return settle(ws, 0);
}

/* ---- the Upgrade -------------------------------------------------------- */

static int client_check_response(dv_ws *ws, const dv_ws_http *m) {
  const char *v;
  ws->http_status = m->status;
  if (m->status != 101) {
    DV_WARN(&ws->env, "ws: upgrade refused: HTTP %d", m->status);
    return DVOICE_ERR_WS_UPGRADE;
  }
  v = dv_ws_header_find(m->h, m->n, "Upgrade");
  if (v == NULL || !dv_ws_http_list_has(v, "websocket")) {
    DV_WARN(&ws->env, "ws: 101 response without Upgrade: websocket");
    return DVOICE_ERR_PROTO;
  }
  v = dv_ws_header_find(m->h, m->n, "Connection");
  if (v == NULL || !dv_ws_http_list_has(v, "upgrade")) {
    DV_WARN(&ws->env, "ws: 101 response without Connection: upgrade");
    return DVOICE_ERR_PROTO;
  }
  /* We offer no extension and no subprotocol, so none may be chosen. */
  if (dv_ws_http_count(m, "Sec-WebSocket-Extensions") != 0 ||
      dv_ws_http_count(m, "Sec-WebSocket-Protocol") != 0) {
    DV_WARN(&ws->env, "ws: server selected an extension or subprotocol");
    return DVOICE_ERR_PROTO;
  }
  v = dv_ws_header_find(m->h, m->n, "Sec-WebSocket-Accept");
  if (v == NULL || dv_ws_http_count(m, "Sec-WebSocket-Accept") != 1 ||
      strcmp(v, ws->accept) != 0) {
    DV_WARN(&ws->env, "ws: Sec-WebSocket-Accept %s",
            v == NULL ? "missing" : "does not match our key");
    return DVOICE_ERR_WS_ACCEPT;
  }
  return 0;
}

/* Server: validates the request; returns 0 or the status to answer. */
static int server_check_request(dv_ws *ws, const dv_ws_http *m,
                                char accept[DV_WS_ACCEPT_LEN + 1]) {
  const char *v;
  unsigned char raw[18];
  size_t olen = 0;
  if (strcmp(m->method, "GET") != 0 || m->target[0] == 0) {
    return 400;
  }
  if (dv_ws_http_count(m, "Host") != 1) {
    return 400;
  }
  v = dv_ws_header_find(m->h, m->n, "Upgrade");
  if (v == NULL || !dv_ws_http_list_has(v, "websocket")) {
    return 400;
  }
  v = dv_ws_header_find(m->h, m->n, "Connection");
  if (v == NULL || !dv_ws_http_list_has(v, "upgrade")) {
    return 400;
  }
  v = dv_ws_header_find(m->h, m->n, "Sec-WebSocket-Version");
  if (v == NULL || strcmp(v, "13") != 0) {
    return 426;
  }
  v = dv_ws_header_find(m->h, m->n, "Sec-WebSocket-Key");
  if (v == NULL || dv_ws_http_count(m, "Sec-WebSocket-Key") != 1 ||
      strlen(v) != DV_WS_KEY_LEN ||
      mbedtls_base64_decode(raw, sizeof raw, &olen, (const unsigned char *)v,
                            DV_WS_KEY_LEN) != 0 ||
      olen != 16) {
    return 400;
  }
  if (dv_ws_accept_for(v, DV_WS_KEY_LEN, accept) != 0) {
    return 500;
  }
  (void)ws;
  return 0;
}

/* Server: a GET without Upgrade goes to on_http, which answers it. */
static int server_plain_http(dv_ws *ws, const dv_ws_http *m) {
  dv_ws_request req;
  dv_buf body;
  const char *ctype = "application/json";
  int status, rv;
  req.method = m->method;
  req.target = m->target;
  req.headers = m->h;
  req.nheaders = m->n;
  dv_buf_init(&body, ws->env.mem);
  status = ws->cb.on_http(ws, &req, &body, &ctype, ws->user_data);
  if (status < 200 || status > 599) {
    DV_WARN(&ws->env, "ws: on_http failed; answering 500");
    status = 500;
    dv_buf_reset(&body);
    ctype = "text/plain";
  }
  if (ctype == NULL || !dv_ws_http_is_visible(ctype)) {
    ctype = "application/octet-stream";
  }
  ws->http_status = status;
  rv = dv_ws_http_write_response(&ws->out, status, ctype, body.data, body.len);
  dv_buf_free(&body);
  return rv != 0 ? rv : DVOICE_ERR_WS_UPGRADE;
}

static int server_upgrade(dv_ws *ws, const dv_ws_http *m) {
  char accept[DV_WS_ACCEPT_LEN + 1];
  int status;
  if (ws->cb.on_http != NULL && strcmp(m->method, "GET") == 0 &&
      dv_ws_header_find(m->h, m->n, "Upgrade") == NULL) {
    return server_plain_http(ws, m);
  }
  status = server_check_request(ws, m, accept);
  if (status != 0) {
    DV_WARN(&ws->env, "ws: invalid upgrade request; answering %d", status);
    ws->http_status = status;
    if (dv_ws_http_write_status(&ws->out, status) != 0) {
      return DVOICE_ERR_NOMEM;
    }
    return DVOICE_ERR_PROTO;
  }
  if (ws->cb.on_request != NULL) {
    dv_ws_request req;
    int r;
    req.method = m->method;
    req.target = m->target;
    req.headers = m->h;
    req.nheaders = m->n;
    r = ws->cb.on_request(ws, &req, ws->user_data);
    if (r >= 400 && r <= 599) {
      DV_INFO(&ws->env, "ws: upgrade refused by application: %d", r);
      ws->http_status = r;
      if (dv_ws_http_write_status(&ws->out, r) != 0) {
        return DVOICE_ERR_NOMEM;
      }
      return DVOICE_ERR_WS_UPGRADE;
    }
    if (r != 0) {
      DV_WARN(&ws->env, "ws: on_request failed");
      return DVOICE_ERR_CALLBACK_FAILURE;
    }
  }
  ws->http_status = 101;
  if (dv_ws_http_write_101(&ws->out, accept, &ws->extra) != 0) {
    return DVOICE_ERR_NOMEM;
  }
  return 0;
}

/* Collects and parses the head; returns 1 when upgraded (with *used). */
static int feed_upgrade(dv_ws *ws, const uint8_t *p, size_t len, size_t *used) {
  dv_ws_http m;
  int r = dv_ws_http_collect(&ws->hdr, ws->max_header, !ws->is_server, p, len,
                             used);
  if (r == 0) {
    return 0;
  }
  if (r < 0) {
    if (r == DVOICE_ERR_PROTO) {
      DV_WARN(&ws->env, "ws: malformed or oversized HTTP head");
      if (ws->is_server) {
        (void)dv_ws_http_write_status(&ws->out, 400);
      }
    }
    return r;
  }
  r = dv_ws_http_parse(ws->hdr.data, ws->hdr.len, !ws->is_server, &m);
  if (r != 0) {
    DV_WARN(&ws->env, "ws: malformed HTTP head");
    if (ws->is_server) {
      (void)dv_ws_http_write_status(&ws->out, 400);
    }
    return r;
  }
  r = ws->is_server ? server_upgrade(ws, &m) : client_check_response(ws, &m);
  /* The head may hold headers the application considers secret. */
  dv_buf_free_secret(&ws->hdr);
  if (r != 0) {
    return r;
  }
  r = open_ctx(ws);
  return r != 0 ? r : 1;
}

/* ---- public functions --------------------------------------------------- */

int dv_ws_init(dv_ws *ws, const dv_ws_opts *o, const dv_ws_callbacks *cb,
               const dvoice_env *env, void *user_data) {
  size_t i;
  if (ws == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(ws, 0, sizeof *ws);
  dv_buf_init(&ws->out, NULL);
  dv_buf_init(&ws->hdr, NULL);
  dv_buf_init(&ws->extra, NULL);
  if (o == NULL || dv_env_check(env) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  ws->env = *env;
  dv_buf_init(&ws->out, env->mem);
  dv_buf_init(&ws->hdr, env->mem);
  dv_buf_init(&ws->extra, env->mem);
  if (cb != NULL) {
    ws->cb = *cb;
  }
  ws->user_data = user_data;
  ws->is_server = o->is_server != 0;
  ws->state = DV_WS_HANDSHAKE;
  ws->max_message = o->max_message_size != 0 ? o->max_message_size
                                             : DV_WS_DEFAULT_MAX_MESSAGE;
  ws->max_header =
      o->max_header_size != 0 ? o->max_header_size : DV_WS_DEFAULT_MAX_HEADER;
  if (dv_ws_http_check_headers(o->headers, o->nheaders) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (ws->is_server) {
    for (i = 0; i < o->nheaders; i++) {
      if (dv_buf_appendf(&ws->extra, "%s: %s\r\n", o->headers[i].name,
                         o->headers[i].value) != 0) {
        return DVOICE_ERR_NOMEM;
      }
    }
    return 0;
  } else {
    uint8_t nonce[16];
    char key[DV_WS_KEY_LEN + 1];
    size_t olen = 0;
    const char *path = o->path != NULL ? o->path : "/";
    if (!dv_ws_http_is_visible(o->host) || !dv_ws_http_is_visible(path) ||
        path[0] != '/') {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
    dv_rand(&ws->env, nonce, sizeof nonce);
    if (mbedtls_base64_encode((unsigned char *)key, sizeof key, &olen, nonce,
                              sizeof nonce) != 0 ||
        olen != DV_WS_KEY_LEN ||
        dv_ws_accept_for(key, DV_WS_KEY_LEN, ws->accept) != 0) {
      return DVOICE_ERR_INTERNAL;
    }
    return dv_ws_http_write_request(&ws->out, o->host, path, key, o->headers,
                                    o->nheaders);
  }
}

void dv_ws_free(dv_ws *ws) {
  if (ws == NULL) {
    return;
  }
  if (ws->ctx != NULL) {
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
  }
  /* Outgoing text may carry credentials (the gateway Identify). */
  dv_buf_free_secret(&ws->out);
  dv_buf_free_secret(&ws->hdr);
  dv_buf_free(&ws->extra);
  ws->state = DV_WS_FAILED;
}

int dv_ws_feed(dv_ws *ws, const uint8_t *data, size_t len) {
  size_t used = 0;
  int r;
  if (ws == NULL || (data == NULL && len > 0) || ws->in_callback) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  switch (ws->state) {
    case DV_WS_HANDSHAKE:
      r = feed_upgrade(ws, data, len, &used);
      if (r <= 0) {
        return r == 0 ? 0 : fail(ws, r);
      }
      r = become_open(ws);
      if (r != 0) {
        return r;
      }
      if (ws->state != DV_WS_OPEN && ws->state != DV_WS_CLOSING) {
        return 0;
      }
      return feed_frames(ws, data + used, len - used);
    case DV_WS_OPEN:
    case DV_WS_CLOSING:
      return feed_frames(ws, data, len);
    case DV_WS_CLOSED:
      return 0;
    case DV_WS_FAILED:
      return ws->err != 0 ? ws->err : DVOICE_ERR_INVALID_STATE;
  }
  return DVOICE_ERR_INTERNAL;
}

static int queue(dv_ws *ws, uint8_t opcode, const uint8_t *data, size_t len) {
  struct wslay_event_msg msg;
  int r;
  if (ws->state != DV_WS_OPEN || ws->cb_err != 0) {
    return ws->state == DV_WS_FAILED && ws->err != 0 ? ws->err
                                                     : DVOICE_ERR_INVALID_STATE;
  }
  msg.opcode = opcode;
  msg.msg = data;
  msg.msg_length = len;
  r = wslay_event_queue_msg(ws->ctx, &msg);
  if (r == WSLAY_ERR_NOMEM) {
    return DVOICE_ERR_NOMEM;
  }
  if (r == WSLAY_ERR_NO_MORE_MSG) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (r != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (ws->in_callback) {
    return 0;
  }
  return settle(ws, flush(ws));
}

int dv_ws_send(dv_ws *ws, dv_ws_opcode op, const uint8_t *data, size_t len) {
  if (ws == NULL || (data == NULL && len > 0) ||
      (op != DV_WS_TEXT && op != DV_WS_BINARY)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return queue(ws, op == DV_WS_TEXT ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
               data, len);
}

int dv_ws_ping(dv_ws *ws, const uint8_t *data, size_t len) {
  if (ws == NULL || (data == NULL && len > 0) || len > 125) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return queue(ws, WSLAY_PING, data, len);
}

static int sendable_code(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

int dv_ws_close(dv_ws *ws, uint16_t code, const char *reason,
                size_t reason_len) {
  int r;
  if (ws == NULL || !sendable_code(code) || reason_len > 123 ||
      (reason == NULL && reason_len > 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (ws->state != DV_WS_OPEN || ws->cb_err != 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  r = wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
                              reason_len);
  if (r == WSLAY_ERR_NOMEM) {
    return DVOICE_ERR_NOMEM;
  }
  if (r != 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  ws->we_closed = 1;
  if (ws->in_callback) {
    return 0;
  }
  return settle(ws, flush(ws));
}

dv_buf *dv_ws_outbuf(dv_ws *ws) {
  return &ws->out;
}

dv_ws_state dv_ws_state_get(const dv_ws *ws) {
  return ws->state;
}

int dv_ws_error(const dv_ws *ws) {
  return ws->err;
}

int dv_ws_http_status(const dv_ws *ws) {
  return ws->http_status;
}

uint16_t dv_ws_close_code_received(const dv_ws *ws) {
  return ws->code_recv;
}

uint16_t dv_ws_close_code_sent(const dv_ws *ws) {
  if (ws->ctx == NULL || !wslay_event_get_close_sent(ws->ctx)) {
    return 0;
  }
  return wslay_event_get_status_code_sent(ws->ctx);
}
