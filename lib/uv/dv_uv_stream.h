/*
 * dv_uv_ws: one WebSocket connection on a libuv loop, as ONE object that
 * owns DNS, TCP (with a connect timeout), TLS (wss://; plain ws:// for
 * tests and the simulator) and the WebSocket layer. It is the glue between
 * libuv and the pure cores in lib/tls and lib/ws: every libuv callback feeds
 * the cores, then one flush drains their output down the stack (ws -> tls ->
 * uv_write) and re-arms the object's single timer.
 *
 * The listening side (dv_uv_ws_server) accepts TCP on a local address, runs
 * server TLS and the server Upgrade, and hands each connection to its owner
 * as the same dv_uv_ws object.
 *
 * Rules shared by every function below (libuv's):
 * - No callback is ever invoked synchronously from one of these functions;
 *   every callback runs from the loop.
 * - Every function may be called from inside any callback of this object,
 *   dv_uv_ws_close() included.
 * - dv_uv_ws_connect() returning an error means no callback will run and
 *   there is nothing to close. Returning 0 means the owner must call
 *   dv_uv_ws_close() exactly once, whatever happens; its close_cb then runs
 *   exactly once, after every libuv handle and request of the object has
 *   finished, and the memory is freed right after close_cb returns.
 *
 * Events, in order: on_open once (the Upgrade completed), then on_message
 * for each message; then at most ONE terminal event: on_close (the peer sent
 * a close frame; our echo is sent automatically) or on_error (the
 * connection failed; nothing more will arrive). After a terminal event the
 * object tears its transport down gracefully by itself; the owner still
 * calls dv_uv_ws_close() to release it. After dv_uv_ws_close() no callback
 * runs except close_cb.
 */
#ifndef DV_UV_STREAM_H
#define DV_UV_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "tls/dv_tls.h"
#include "ws/dv_ws.h"

typedef struct dv_uv_ws dv_uv_ws;
typedef struct dv_uv_ws_server dv_uv_ws_server;

typedef struct dv_uv_ws_callbacks {
  /* The WebSocket is open; messages may be sent. */
  void (*on_open)(dv_uv_ws *s, void *user_data);
  /* One complete message; |data| is borrowed for the call. |op| is
   * DV_WS_TEXT (valid UTF-8, not NUL-terminated) or DV_WS_BINARY. */
  void (*on_message)(dv_uv_ws *s, dv_ws_opcode op, const uint8_t *data,
                     size_t len, void *user_data);
  /* A pong arrived (payload borrowed). May be NULL. */
  void (*on_pong)(dv_uv_ws *s, const uint8_t *data, size_t len,
                  void *user_data);
  /* Terminal: the peer closed with |code| (1005: no code) and |reason|
   * (UTF-8, borrowed, NUL-terminated, |reason_len| bytes). */
  void (*on_close)(dv_uv_ws *s, uint16_t code, const char *reason,
                   size_t reason_len, void *user_data);
  /*
   * Terminal: the connection failed. |err| is a DVOICE_ERR_* code:
   *   DVOICE_ERR_DNS, DVOICE_ERR_CONN_REFUSED, DVOICE_ERR_TIMEOUT (connect,
   *   TLS handshake or Upgrade took longer than connect_timeout_ms),
   *   DVOICE_ERR_TRANSPORT (other socket error), DVOICE_ERR_EOF (plain TCP
   *   closed or reset before the close handshake), DVOICE_ERR_TLS,
   *   DVOICE_ERR_TLS_BAD_CERT, DVOICE_ERR_TLS_HOSTNAME,
   *   DVOICE_ERR_TLS_CLOSED (TLS closed before the close handshake),
   *   DVOICE_ERR_WS_UPGRADE, DVOICE_ERR_WS_ACCEPT, DVOICE_ERR_PROTO,
   *   DVOICE_ERR_WS_TOO_BIG (we closed with 1009), DVOICE_ERR_NOMEM.
   * |uv_err| is the libuv error behind it (0 if none): a UV_EAI_* code for
   * DNS, a UV_E* code for socket errors; pass it to uv_strerror().
   */
  void (*on_error)(dv_uv_ws *s, int err, int uv_err, void *user_data);
  /* The write queue fell back under the high-water mark after a send went
   * over it (see dv_uv_ws_writable()). May be NULL. */
  void (*on_drain)(dv_uv_ws *s, void *user_data);
  /*
   * Server side only, may be NULL: the Upgrade request for |target|
   * ("/?v=8", borrowed) arrived. Return 0 to accept, or an HTTP status in
   * 400..599 to refuse (the connection then fails with
   * DVOICE_ERR_WS_UPGRADE).
   */
  int (*on_request)(dv_uv_ws *s, const char *target, void *user_data);
  /*
   * Server side only, may be NULL: a plain HTTP GET (no Upgrade) for
   * |target| with |headers| (borrowed for the call) arrived. Append the
   * response body to |body|, set
   * |*content_type| (static string; default "application/json") and
   * return an HTTP status in 200..599 (else 500 is sent). The response is
   * sent with "Connection: close", then the connection fails with
   * DVOICE_ERR_WS_UPGRADE (on_error) and shuts down once the response is
   * written. NULL: such requests get 400.
   */
  int (*on_http)(dv_uv_ws *s, const char *target, const dv_ws_header *headers,
                 size_t nheaders, dv_buf *body, const char **content_type,
                 void *user_data);
} dv_uv_ws_callbacks;

typedef struct dv_uv_ws_settings {
  /* Environment (allocator, log, clock, random); copied, with unset hooks
   * filled by dv_uv_env_resolve(). NULL: all defaults. */
  const dvoice_env *env;
  /* Trusted CAs for wss:// (ca_file copied and read during connect; NULL:
   * the system bundle). Ignored when tls_conf is set. */
  dvoice_tls_settings tls;
  /* A client TLS configuration to share between streams: the stream takes
   * a reference (dv_tls_conf_ref) for its lifetime, and offers and caches
   * TLS sessions in it (resumption per host:port). NULL: the stream builds
   * its own from |tls|. */
  dv_tls_conf *tls_conf;
  /* DNS + TCP connect + TLS handshake + Upgrade must finish in this time.
   * Default 10000. */
  uint64_t connect_timeout_ms;
  /* Graceful close (close handshake, close_notify, FIN/EOF) is cut after
   * this. Default 2000. */
  uint64_t close_timeout_ms;
  /* Largest message received; a larger one closes with 1009. 0: 1 MiB. */
  size_t max_message_size;
  /* dv_uv_ws_writable() turns 0 above this many queued bytes. Default
   * 1 MiB. */
  size_t write_high_water;
  /* dv_uv_ws_send() refuses (DVOICE_ERR_NOBUF) above this. Default 16 MiB. */
  size_t write_queue_max;
  /* Extra Upgrade request (client) or 101 response (server) headers;
   * copied. */
  const dv_ws_header *headers;
  size_t nheaders;
} dv_uv_ws_settings;

/* Fills |s| with the defaults above. */
void dv_uv_ws_settings_default(dv_uv_ws_settings *s);

/*
 * Starts connecting to |url| (ws:// or wss://, copied) on |loop|, with
 * |settings| (copied; NULL: defaults) and |cb| (copied). |user_data| is
 * passed to every callback. For wss:// the CA file is read now (unless a
 * shared tls_conf is given).
 * Returns 0 and sets |*out|, or (no callback will run):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out/loop/url/cb; an extra header
 *                                that is not a token or holds CR/LF
 *   DVOICE_ERR_UNSUPPORTED       not a ws:// or wss:// URL
 *   DVOICE_ERR_MALFORMED         a malformed URL
 *   DVOICE_ERR_TLS_CA            the CA file could not be loaded
 *   DVOICE_ERR_TLS               TLS setup failed
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          libsodium or a libuv handle failed to
 *                                initialise
 */
int dv_uv_ws_connect(dv_uv_ws **out, uv_loop_t *loop, const char *url,
                     const dv_uv_ws_settings *settings,
                     const dv_uv_ws_callbacks *cb, void *user_data);

/*
 * Queues one message (|data| copied). Allowed once on_open ran and before
 * any terminal event or dv_uv_ws_close(). Returns 0, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL s, bad |op|, NULL data with len > 0
 *   DVOICE_ERR_INVALID_STATE     not open
 *   DVOICE_ERR_NOBUF             the write queue is over write_queue_max
 *   DVOICE_ERR_NOMEM             an allocation failed (the connection then
 *                                fails with on_error)
 */
int dv_uv_ws_send(dv_uv_ws *s, dv_ws_opcode op, const uint8_t *data,
                  size_t len);

/* Sends a ping with |len| <= 125 bytes (copied). Errors as dv_uv_ws_send(),
 * INVALID_ARGUMENT when len > 125. */
int dv_uv_ws_ping(dv_uv_ws *s, const uint8_t *data, size_t len);

/*
 * Bytes queued and not yet handed to the kernel (framed and, for wss://,
 * encrypted). Like uv_stream_get_write_queue_size().
 */
size_t dv_uv_ws_write_queue_size(const dv_uv_ws *s);

/* 1 while the write queue is at or under write_high_water. When a send
 * takes it over, on_drain runs once it is back under. */
int dv_uv_ws_writable(const dv_uv_ws *s);

/*
 * Closes |s|: if the WebSocket is open, sends a close frame with |code| and
 * |reason| (<= 123 bytes, copied; NULL for none) and waits (up to
 * close_timeout_ms) for the peer's, then sends TLS close_notify and a TCP
 * FIN; anything still connecting is cancelled. |close_cb| (may be NULL)
 * runs once every handle and request has finished; |s| is freed right
 * after it returns. No other callback runs after this call.
 * Returns 0, or (close_cb will not run, nothing changes):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL s; a code that may not be sent (not
 *                                1000..1003, 1007..1011, 3000..4999); a
 *                                reason over 123 bytes
 *   DVOICE_ERR_INVALID_STATE     dv_uv_ws_close() was already called
 */
int dv_uv_ws_close(dv_uv_ws *s, uint16_t code, const char *reason,
                   void (*close_cb)(dv_uv_ws *s, void *user_data));

/* Replaces the callbacks (copied) and user data; meant for a server's
 * on_accept. */
void dv_uv_ws_set_callbacks(dv_uv_ws *s, const dv_uv_ws_callbacks *cb,
                            void *user_data);

/* The request target: the URL's path and query (client) or the Upgrade
 * request's target (server, "" until it arrived). Valid until close_cb. */
const char *dv_uv_ws_target(const dv_uv_ws *s);

/* The close code we sent and the one we received (0: none). */
uint16_t dv_uv_ws_close_code_sent(const dv_uv_ws *s);
uint16_t dv_uv_ws_close_code_received(const dv_uv_ws *s);

/* ---- listening side ----------------------------------------------------- */

typedef struct dv_uv_ws_server_settings {
  /* Settings for every accepted connection (env, timeouts, limits, extra
   * 101 headers). Copied; its TLS fields are ignored. */
  dv_uv_ws_settings conn;
  /* Local address to bind; copied. NULL: "127.0.0.1". */
  const char *host;
  /* Port; 0 lets the kernel choose (see dv_uv_ws_server_port()). */
  uint16_t port;
  /* Server certificate chain and key as PEM files (read during the call).
   * Both NULL: plain ws://. */
  const char *cert_file;
  const char *key_file;
  /* A server TLS configuration to use instead (the server takes a
   * reference until it and every connection it accepted are freed). A conf
   * built from cert_file/key_file issues session tickets. */
  dv_tls_conf *tls_conf;
  /* listen() backlog; 0: 128. */
  int backlog;
} dv_uv_ws_server_settings;

/* Fills |s| with the defaults above. */
void dv_uv_ws_server_settings_default(dv_uv_ws_server_settings *s);

/*
 * |conn| was accepted (TCP); its handshake is starting. The owner sets its
 * callbacks with dv_uv_ws_set_callbacks() (else the server's |conn_cb| and
 * |user_data| apply) and must eventually dv_uv_ws_close() it. The
 * connection lives on independently of the server.
 */
typedef void (*dv_uv_ws_accept_cb)(dv_uv_ws_server *srv, dv_uv_ws *conn,
                                   void *user_data);

/*
 * Binds and listens on |loop| with |settings| (copied). |conn_cb| (copied,
 * may be NULL) is the initial callback set of each accepted connection.
 * Returns 0 and sets |*out|, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out/loop/settings/on_accept; a bad
 *                                host; only one of cert_file and key_file
 *   DVOICE_ERR_TLS               the certificate or key could not be loaded
 *   DVOICE_ERR_TRANSPORT         bind or listen failed (logged with the
 *                                libuv error)
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          libsodium could not initialise
 */
int dv_uv_ws_server_new(dv_uv_ws_server **out, uv_loop_t *loop,
                        const dv_uv_ws_server_settings *settings,
                        dv_uv_ws_accept_cb on_accept,
                        const dv_uv_ws_callbacks *conn_cb, void *user_data);

/* The port the server listens on. */
uint16_t dv_uv_ws_server_port(const dv_uv_ws_server *srv);

/*
 * Stops listening. |close_cb| (may be NULL) runs once the listening handle
 * is closed. Accepted connections are not affected; the server's shared
 * memory is freed after close_cb and the last accepted connection's
 * close_cb. Returns 0, or DVOICE_ERR_INVALID_STATE if already called.
 */
int dv_uv_ws_server_close(dv_uv_ws_server *srv,
                          void (*close_cb)(dv_uv_ws_server *srv,
                                           void *user_data));

#endif
