/*
 * dv_ws: WebSocket (RFC 6455) over memory buffers, client and server, on
 * wslay 1.1.1's event API.
 *
 * Sans-I/O: plaintext bytes from the transport (TLS or TCP) go in with
 * dv_ws_feed(); bytes to send accumulate in dv_ws_outbuf(); events arrive
 * through a callbacks struct. No clock, no socket; randomness (the
 * Sec-WebSocket-Key and client mask keys) comes from the env's random hook.
 *
 * The connection starts with the HTTP/1.1 Upgrade:
 * - client: dv_ws_init() writes the GET request to the outbuf; the response
 *   is parsed incrementally from dv_ws_feed() (any chunking, header block
 *   bounded by max_header_size); Sec-WebSocket-Accept is checked; bytes after
 *   the header block are frames and are processed in the same call.
 * - server: the request is parsed the same way, handed to on_request, and
 *   answered with 101 (or a 4xx/5xx status chosen by on_request, or 400/426
 *   for a request that is not a valid WebSocket upgrade).
 *
 * Messages: text and binary, fragmented ones reassembled, pings answered
 * automatically, text and close reasons checked for UTF-8 (1007 otherwise),
 * the close handshake in both directions, a maximum message size (closing
 * with 1009). Client frames are masked.
 *
 * States: HANDSHAKE -> OPEN -> CLOSING (we sent close) -> CLOSED (both close
 * frames exchanged, or the peer's close received and answered). Any error
 * -> FAILED. Once CLOSED or FAILED and the outbuf is sent, the caller closes
 * the transport.
 *
 * Allocation: our buffers go through the env's dvoice_mem; wslay 1.1.1 has
 * no allocator hook and uses malloc for its context, queued messages and
 * reassembly (documented exception).
 *
 * Callbacks run only from inside dv_ws_feed(). From a callback the
 * application may call dv_ws_send(), dv_ws_ping() and dv_ws_close() (their
 * frames are written after the callback returns), but not dv_ws_free().
 */
#ifndef DV_WS_H
#define DV_WS_H

#include <stddef.h>
#include <stdint.h>

#include <wslay/wslay.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

/* Default maximum size of one received message (after reassembly). */
#define DV_WS_DEFAULT_MAX_MESSAGE ((size_t)1048576)
/* Default bound on the HTTP Upgrade request/response header block. */
#define DV_WS_DEFAULT_MAX_HEADER ((size_t)16384)
/* Most header lines accepted in one request or response. */
#define DV_WS_MAX_HEADERS 64

typedef struct dv_ws dv_ws;

/* Message types for dv_ws_send() and on_message. */
typedef enum dv_ws_opcode { DV_WS_TEXT = 1, DV_WS_BINARY = 2 } dv_ws_opcode;

typedef enum dv_ws_state {
  DV_WS_HANDSHAKE = 0, /* client: request sent, awaiting the response;
                          server: awaiting the request */
  DV_WS_OPEN,          /* messages flow */
  DV_WS_CLOSING,       /* we sent a close frame; awaiting the peer's */
  DV_WS_CLOSED,        /* close frames went both ways */
  DV_WS_FAILED         /* upgrade refused or failed, protocol error, ... */
} dv_ws_state;

/* One HTTP header line. Both strings NUL-terminated. */
typedef struct dv_ws_header {
  const char *name;
  const char *value;
} dv_ws_header;

/*
 * A parsed Upgrade request (server side), borrowed for the duration of
 * on_request. Header names keep their case as received; values have
 * surrounding whitespace removed.
 */
typedef struct dv_ws_request {
  const char *method; /* always "GET" (others are refused with 400) */
  const char *target; /* request-target, e.g. "/?v=8" */
  const dv_ws_header *headers;
  size_t nheaders;
} dv_ws_request;

/*
 * Returns the value of the first header named |name| (ASCII
 * case-insensitive) among |headers[0..n)|, or NULL.
 */
const char *dv_ws_header_find(const dv_ws_header *headers, size_t n,
                              const char *name);

typedef struct dv_ws_opts {
  /* Nonzero for the server side. */
  int is_server;
  /* Client: Host header value ("gateway.discord.gg", "127.0.0.1:8080");
   * required; copied. */
  const char *host;
  /* Client: request-target; NULL means "/". Copied. */
  const char *path;
  /*
   * Extra headers: client, added to the request; server, added to the 101
   * response. Copied. Names must be HTTP tokens and values must not contain
   * CR or LF (else DVOICE_ERR_INVALID_ARGUMENT).
   */
  const dv_ws_header *headers;
  size_t nheaders;
  /* Largest received message accepted; 0 means DV_WS_DEFAULT_MAX_MESSAGE.
   * A larger one closes the connection with 1009. */
  size_t max_message_size;
  /* Largest Upgrade header block accepted; 0 means DV_WS_DEFAULT_MAX_HEADER. */
  size_t max_header_size;
} dv_ws_opts;

/*
 * Callbacks; copied at dv_ws_init(). Any may be NULL. Callbacks returning
 * int return 0 to continue or DVOICE_ERR_CALLBACK_FAILURE to abort: the
 * connection then FAILS (a close frame with 1011 is queued if OPEN) and
 * dv_ws_feed() returns DVOICE_ERR_CALLBACK_FAILURE.
 */
typedef struct dv_ws_callbacks {
  /*
   * Server: a syntactically valid WebSocket Upgrade request arrived. Return
   * 0 to accept (the 101 response is queued), or an HTTP status in 400..599
   * to refuse (that status is queued with an empty body, the state becomes
   * FAILED and dv_ws_feed() returns DVOICE_ERR_WS_UPGRADE). NULL accepts.
   */
  int (*on_request)(dv_ws *ws, const dv_ws_request *req, void *user_data);
  /* The connection is OPEN (client: after a valid 101; server: after the
   * 101 was queued). */
  int (*on_open)(dv_ws *ws, void *user_data);
  /* A complete message; |data| (not NUL-terminated) is borrowed for the
   * call. Text messages are valid UTF-8. */
  int (*on_message)(dv_ws *ws, dv_ws_opcode op, const uint8_t *data, size_t len,
                    void *user_data);
  /* A pong arrived (payload borrowed). */
  void (*on_pong)(dv_ws *ws, const uint8_t *data, size_t len, void *user_data);
  /*
   * The peer's close frame arrived: |code| is its status code, 1005 when it
   * carried none; |reason| (UTF-8, not NUL-terminated, borrowed) may be
   * empty. If we had not sent a close, an echo with the same code is queued.
   * Called at most once.
   */
  void (*on_close)(dv_ws *ws, uint16_t code, const uint8_t *reason,
                   size_t reason_len, void *user_data);
  /*
   * Server, may be NULL: a GET request WITHOUT an Upgrade header arrived (a
   * plain HTTP call, e.g. a REST endpoint of a test server). Append the
   * response body to |body| (empty on entry), optionally set
   * |*content_type| (a static string; default "application/json") and
   * return an HTTP status in 200..599. The response is queued with
   * "Connection: close", the state becomes FAILED and dv_ws_feed() returns
   * DVOICE_ERR_WS_UPGRADE, as for a refused Upgrade. Any other return value
   * answers 500. When NULL, such a request is answered with 400.
   */
  int (*on_http)(dv_ws *ws, const dv_ws_request *req, dv_buf *body,
                 const char **content_type, void *user_data);
} dv_ws_callbacks;

/*
 * One WebSocket connection. Embed it; treat every field as private and use
 * the functions below.
 */
struct dv_ws {
  dvoice_env env;     /* copied */
  dv_ws_callbacks cb; /* copied */
  void *user_data;
  wslay_event_context_ptr ctx; /* NULL until OPEN */
  dv_ws_state state;
  int is_server;
  int err;            /* sticky error once FAILED */
  int cb_err;         /* error raised inside a wslay callback */
  int in_callback;    /* defer flushing while inside wslay_recv */
  int close_reported; /* on_close delivered */
  int we_closed;      /* dv_ws_close() was called */
  int http_status;    /* status of the Upgrade response */
  size_t max_message;
  size_t max_header;
  dv_buf out;         /* bytes to send */
  dv_buf hdr;         /* Upgrade header block being collected */
  uint16_t code_recv; /* peer's close code, 0 until received */
  int nomem;          /* allocation failed inside a wslay callback */
  const uint8_t *in;  /* frame bytes being fed (during feed) */
  size_t in_len;
  char accept[29]; /* client: expected Sec-WebSocket-Accept */
  dv_buf extra;    /* server: extra response header lines */
};

/*
 * Initialises |ws| with options |o| (copied), callbacks |cb| (copied; NULL
 * for none), environment |env| (copied; its allocator and hooks' user_data
 * borrowed until dv_ws_free; the random hook must be set) and |user_data|
 * (passed to every callback). A client writes its Upgrade request to the
 * outbuf now: the Sec-WebSocket-Key is base64 of 16 bytes from the random
 * hook.
 *
 * dv_ws_free() must be called afterwards even if this fails.
 * Returns 0, or one of:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL ws/o/env, no random hook, client
 *                                without host, CR/LF/space in host or path,
 *                                a bad extra header
 *   DVOICE_ERR_NOMEM             an allocation failed
 */
int dv_ws_init(dv_ws *ws, const dv_ws_opts *o, const dv_ws_callbacks *cb,
               const dvoice_env *env, void *user_data);

/* Frees everything |ws| owns; safe after a failed init and twice. */
void dv_ws_free(dv_ws *ws);

/*
 * Feeds |len| bytes received from the transport (consumed during the call;
 * any chunking works). Parses the Upgrade, then frames; runs callbacks;
 * writes replies (101, pongs, close echoes) to the outbuf.
 *
 * Returns 0, or one of (each failure also logged at WARN):
 *   DVOICE_ERR_WS_UPGRADE        client: the response status was not 101
 *                                (see dv_ws_http_status()); server:
 *                                on_request refused the request
 *   DVOICE_ERR_WS_ACCEPT         client: Sec-WebSocket-Accept missing or
 *                                wrong
 *   DVOICE_ERR_PROTO             malformed or oversized HTTP, an invalid
 *                                upgrade (400/426 sent by a server), or a
 *                                frame-level protocol error (close 1002 or
 *                                1007 queued)
 *   DVOICE_ERR_WS_TOO_BIG        a message exceeded max_message_size (close
 *                                1009 queued)
 *   DVOICE_ERR_CALLBACK_FAILURE  a callback asked to abort
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL ws, NULL data with len > 0, or
 *                                called from inside a callback
 * After an error the state is FAILED and later calls return the same error
 * without reading input. Bytes arriving after the peer's close frame (and
 * any bytes fed once CLOSED) are ignored and 0 is returned.
 */
int dv_ws_feed(dv_ws *ws, const uint8_t *data, size_t len);

/*
 * Queues one message of type |op| with |len| bytes at |data| (copied) and
 * writes its frame to the outbuf (unless called from a callback: then after
 * it returns). Returns 0, or one of:
 *   DVOICE_ERR_INVALID_ARGUMENT  bad opcode, NULL data with len > 0
 *   DVOICE_ERR_INVALID_STATE     not OPEN (handshake pending, closing,
 *                                closed, or a callback already failed)
 *   DVOICE_ERR_NOMEM             an allocation failed (writing the frame
 *                                out of memory FAILS the connection)
 *   the sticky error             once FAILED
 */
int dv_ws_send(dv_ws *ws, dv_ws_opcode op, const uint8_t *data, size_t len);

/* Queues a ping with |len| <= 125 bytes of payload (copied). Errors as for
 * dv_ws_send() (INVALID_ARGUMENT when len > 125). */
int dv_ws_ping(dv_ws *ws, const uint8_t *data, size_t len);

/*
 * Starts the close handshake: queues a close frame with |code| and
 * |reason| (UTF-8, |reason_len| <= 123 bytes, copied; may be NULL with 0;
 * an invalid UTF-8 reason makes the peer fail the connection with 1007).
 * The state becomes CLOSING until the peer's close frame arrives (CLOSED).
 * Once the peer's close has arrived it was already answered, and this
 * returns DVOICE_ERR_INVALID_STATE. Returns 0, or one of:
 *   DVOICE_ERR_INVALID_ARGUMENT  code not sendable (must be 1000..1003,
 *                                1007..1011 or 3000..4999), reason too long
 *   DVOICE_ERR_INVALID_STATE     not OPEN (already closing, failed, or the
 *                                handshake is not done)
 *   DVOICE_ERR_NOMEM             an allocation failed
 */
int dv_ws_close(dv_ws *ws, uint16_t code, const char *reason,
                size_t reason_len);

/*
 * The bytes waiting to be sent. The caller sends them and removes what it
 * sent with dv_buf_consume() or dv_buf_reset(), or moves them out by copying
 * the struct and calling dv_buf_init(outbuf, mem) on the original. Valid
 * until the next call on |ws|.
 */
dv_buf *dv_ws_outbuf(dv_ws *ws);

/* The current state. */
dv_ws_state dv_ws_state_get(const dv_ws *ws);
/* The sticky error (0 while healthy). */
int dv_ws_error(const dv_ws *ws);
/* Client: the HTTP status of the Upgrade response (0 until parsed). */
int dv_ws_http_status(const dv_ws *ws);
/* The close code received from the peer (1005: none given), 0 if no close
 * frame arrived yet. */
uint16_t dv_ws_close_code_received(const dv_ws *ws);
/* The close code we sent (including wslay's automatic 1002/1007/1009 and
 * echoes), 0 if none was sent yet. */
uint16_t dv_ws_close_code_sent(const dv_ws *ws);

#endif
