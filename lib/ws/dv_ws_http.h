/*
 * The HTTP/1.1 part of the WebSocket opening handshake (RFC 6455 section 4):
 * header-block collection from arbitrary chunks, a strict parser for the
 * request and response heads, the writers, and the key/accept computation.
 * Internal to lib/ws.
 */
#ifndef DV_WS_HTTP_H
#define DV_WS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/dv_buf.h"
#include "ws/dv_ws.h"

/* Length of a Sec-WebSocket-Key (base64 of 16 bytes) and of an Accept
 * value (base64 of a SHA-1), without the NUL. */
#define DV_WS_KEY_LEN 24
#define DV_WS_ACCEPT_LEN 28

/* A parsed head; all strings point into the (modified) header block. */
typedef struct dv_ws_http {
  int status;         /* response: status code */
  const char *method; /* request */
  const char *target; /* request */
  dv_ws_header h[DV_WS_MAX_HEADERS];
  size_t n;
} dv_ws_http;

/*
 * Appends bytes from |p[0..len)| to |hdr| up to and including the first
 * empty line (CRLF CRLF). Sets |*used| to the bytes taken. Returns 1 when the
 * block is complete, 0 when more input is needed, DVOICE_ERR_PROTO if the
 * block would exceed |max| bytes or (responses) does not start with "HTTP/",
 * DVOICE_ERR_NOMEM.
 */
int dv_ws_http_collect(dv_buf *hdr, size_t max, int is_response,
                       const uint8_t *p, size_t len, size_t *used);

/*
 * Parses the complete header block |b[0..len)| (as collected above) in
 * place, NUL-terminating the pieces. Returns 0 or DVOICE_ERR_PROTO (bare CR
 * or LF, NUL or control bytes, bad status/request line, bad header name,
 * obs-fold, too many headers).
 */
int dv_ws_http_parse(uint8_t *b, size_t len, int is_response, dv_ws_http *m);

/* 1 if the comma-separated |list| contains |token| (ASCII
 * case-insensitive, surrounding whitespace ignored). */
int dv_ws_http_list_has(const char *list, const char *token);

/* Counts the headers named |name| (case-insensitive). */
size_t dv_ws_http_count(const dv_ws_http *m, const char *name);

/* Computes the Sec-WebSocket-Accept value for |key| (|key_len| bytes) into
 * |out| (NUL-terminated). Returns 0 or DVOICE_ERR_INTERNAL. */
int dv_ws_accept_for(const char *key, size_t key_len,
                     char out[DV_WS_ACCEPT_LEN + 1]);

/* 0 if every header is a token name with a CR/LF-free value, else
 * DVOICE_ERR_INVALID_ARGUMENT. */
int dv_ws_http_check_headers(const dv_ws_header *h, size_t n);
/* 1 if |s| is a non-empty string of visible ASCII / obs-text bytes. */
int dv_ws_http_is_visible(const char *s);

/* Writers; each returns 0 or DVOICE_ERR_NOMEM. */
int dv_ws_http_write_request(dv_buf *out, const char *host, const char *path,
                             const char *key, const dv_ws_header *h, size_t n);
int dv_ws_http_write_101(dv_buf *out, const char *accept, const dv_buf *extra);
int dv_ws_http_write_status(dv_buf *out, int status);
/* A complete response with |status|, |content_type| and |len| body bytes,
 * ending the connection ("Connection: close"). */
int dv_ws_http_write_response(dv_buf *out, int status, const char *content_type,
                              const uint8_t *body, size_t len);

#endif
