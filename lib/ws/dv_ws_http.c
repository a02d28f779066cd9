/*
 * HTTP/1.1 heads for the WebSocket opening handshake. The parser is strict
 * (RFC 9112 syntax, CRLF only, no obs-fold): a WebSocket peer has no reason
 * to send anything unusual, and every byte it sends before the upgrade is
 * untrusted input.
 */
#include "ws/dv_ws_http.h"

#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/sha1.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static int is_tchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
      (c >= 'A' && c <= 'Z')) {
    return 1;
  }
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* VCHAR or obs-text. */
static int is_vis(uint8_t c) {
  return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

/* Field-value and reason-phrase bytes: visible, space or tab. */
static int is_text(uint8_t c) {
  return is_vis(c) || c == ' ' || c == '\t';
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ieq(const char *a, const char *b, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (lower((uint8_t)a[i]) != lower((uint8_t)b[i])) {
      return 0;
    }
  }
  return 1;
}

int dv_ws_http_collect(dv_buf *hdr, size_t max, int is_response,
                       const uint8_t *p, size_t len, size_t *used) {
  static const char prefix[] = "HTTP/";
  size_t i;
  *used = 0;
  for (i = 0; i < len; i++) {
    size_t n;
    if (hdr->len >= max) {
      return DVOICE_ERR_PROTO;
    }
    if (dv_buf_push(hdr, p[i]) != 0) {
      return DVOICE_ERR_NOMEM;
    }
    n = hdr->len;
    /* Reject a non-HTTP peer at once instead of after max bytes. */
    if (is_response && n <= sizeof prefix - 1 &&
        hdr->data[n - 1] != (uint8_t)prefix[n - 1]) {
      return DVOICE_ERR_PROTO;
    }
    if (!is_response && n == 1 && !is_tchar(hdr->data[0])) {
      return DVOICE_ERR_PROTO;
    }
    if (n >= 4 && memcmp(hdr->data + n - 4, "\r\n\r\n", 4) == 0) {
      *used = i + 1;
      return 1;
    }
  }
  *used = len;
  return 0;
}

static int parse_status_line(char *s, size_t len, dv_ws_http *m) {
  size_t i;
  /* "HTTP/1.x SP 3DIGIT [SP reason-phrase]" */
  if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' ||
      s[8] != ' ') {
    return DVOICE_ERR_PROTO;
  }
  for (i = 9; i < 12; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return DVOICE_ERR_PROTO;
    }
  }
  m->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  if (m->status < 100) {
    return DVOICE_ERR_PROTO;
  }
  if (len > 12 && s[12] != ' ') {
    return DVOICE_ERR_PROTO;
  }
  for (i = 13; i < len; i++) {
    if (!is_text((uint8_t)s[i])) {
      return DVOICE_ERR_PROTO;
    }
  }
  return 0;
}

static int parse_request_line(char *s, size_t len, dv_ws_http *m) {
  size_t i = 0, t;
  /* "method SP request-target SP HTTP/1.x" */
  while (i < len && is_tchar((uint8_t)s[i])) {
    i++;
  }
  if (i == 0 || i >= len || s[i] != ' ') {
    return DVOICE_ERR_PROTO;
  }
  s[i] = 0;
  m->method = s;
  t = ++i;
  while (i < len && is_vis((uint8_t)s[i])) {
    i++;
  }
  if (i == t || i >= len || s[i] != ' ') {
    return DVOICE_ERR_PROTO;
  }
  s[i] = 0;
  m->target = s + t;
  i++;
  if (len - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || s[i + 7] < '0' ||
      s[i + 7] > '9') {
    return DVOICE_ERR_PROTO;
  }
  return 0;
}

static int parse_header_line(char *s, size_t len, dv_ws_http *m) {
  size_t i = 0, v, e;
  while (i < len && is_tchar((uint8_t)s[i])) {
    i++;
  }
  /* An empty name also rejects obs-fold (a line starting with SP/HTAB). */
  if (i == 0 || i >= len || s[i] != ':') {
    return DVOICE_ERR_PROTO;
  }
  if (m->n >= DV_WS_MAX_HEADERS) {
    return DVOICE_ERR_PROTO;
  }
  s[i] = 0;
  v = i + 1;
  while (v < len && (s[v] == ' ' || s[v] == '\t')) {
    v++;
  }
  e = len;
  while (e > v && (s[e - 1] == ' ' || s[e - 1] == '\t')) {
    e--;
  }
  for (i = v; i < e; i++) {
    if (!is_text((uint8_t)s[i])) {
      return DVOICE_ERR_PROTO;
    }
  }
  s[e] = 0;
  m->h[m->n].name = s;
  m->h[m->n].value = s + v;
  m->n++;
  return 0;
}

int dv_ws_http_parse(uint8_t *b, size_t len, int is_response, dv_ws_http *m) {
  size_t pos = 0;
  int first = 1;
  memset(m, 0, sizeof *m);
  while (pos < len) {
    size_t e = pos;
    int rv;
    /* Find the line end; a CR must be followed by LF, a LF preceded by CR. */
    while (e < len && b[e] != '\r' && b[e] != '\n') {
      if (b[e] == 0) {
        return DVOICE_ERR_PROTO;
      }
      e++;
    }
    if (e + 1 >= len || b[e] != '\r' || b[e + 1] != '\n') {
      return DVOICE_ERR_PROTO;
    }
    b[e] = 0;
    if (e == pos) {
      /* The empty line ends the block; it can only be the last line. */
      if (first || e + 2 != len) {
        return DVOICE_ERR_PROTO;
      }
      return 0;
    }
    if (first) {
      rv = is_response ? parse_status_line((char *)b + pos, e - pos, m)
                       : parse_request_line((char *)b + pos, e - pos, m);
      first = 0;
    } else {
      rv = parse_header_line((char *)b + pos, e - pos, m);
    }
    if (rv != 0) {
      return rv;
    }
    pos = e + 2;
  }
  return DVOICE_ERR_PROTO;
}

int dv_ws_http_list_has(const char *list, const char *token) {
  size_t tl = strlen(token);
  const char *p = list;
  while (*p != 0) {
    const char *s, *e;
    while (*p == ' ' || *p == '\t' || *p == ',') {
      p++;
    }
    s = p;
    while (*p != 0 && *p != ',') {
      p++;
    }
    e = p;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
      e--;
    }
    if ((size_t)(e - s) == tl && ieq(s, token, tl)) {
      return 1;
    }
  }
  return 0;
}

size_t dv_ws_http_count(const dv_ws_http *m, const char *name) {
  size_t i, c = 0, nl = strlen(name);
  for (i = 0; i < m->n; i++) {
    if (strlen(m->h[i].name) == nl && ieq(m->h[i].name, name, nl)) {
      c++;
    }
  }
  return c;
}

const char *dv_ws_header_find(const dv_ws_header *headers, size_t n,
                              const char *name) {
  size_t i, nl = strlen(name);
  for (i = 0; i < n; i++) {
    if (strlen(headers[i].name) == nl && ieq(headers[i].name, name, nl)) {
      return headers[i].value;
    }
  }
  return NULL;
}

int dv_ws_accept_for(const char *key, size_t key_len,
                     char out[DV_WS_ACCEPT_LEN + 1]) {
  mbedtls_sha1_context sha;
  unsigned char digest[20];
  size_t olen = 0;
  int ret;
  mbedtls_sha1_init(&sha);
  ret = mbedtls_sha1_starts_ret(&sha);
  if (ret == 0) {
    ret = mbedtls_sha1_update_ret(&sha, (const unsigned char *)key, key_len);
  }
  if (ret == 0) {
    ret = mbedtls_sha1_update_ret(&sha, (const unsigned char *)ws_guid,
                                  sizeof ws_guid - 1);
  }
  if (ret == 0) {
    ret = mbedtls_sha1_finish_ret(&sha, digest);
  }
  mbedtls_sha1_free(&sha);
  if (ret == 0) {
    ret = mbedtls_base64_encode((unsigned char *)out, DV_WS_ACCEPT_LEN + 1,
                                &olen, digest, sizeof digest);
  }
  if (ret != 0 || olen != DV_WS_ACCEPT_LEN) {
    return DVOICE_ERR_INTERNAL;
  }
  out[DV_WS_ACCEPT_LEN] = 0;
  return 0;
}

int dv_ws_http_is_visible(const char *s) {
  if (s == NULL || *s == 0) {
    return 0;
  }
  for (; *s != 0; s++) {
    if (!is_vis((uint8_t)*s)) {
      return 0;
    }
  }
  return 1;
}

int dv_ws_http_check_headers(const dv_ws_header *h, size_t n) {
  size_t i;
  const char *p;
  if (n > 0 && h == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < n; i++) {
    if (h[i].name == NULL || h[i].value == NULL || h[i].name[0] == 0) {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
    for (p = h[i].name; *p != 0; p++) {
      if (!is_tchar((uint8_t)*p)) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
    }
    for (p = h[i].value; *p != 0; p++) {
      if (!is_text((uint8_t)*p)) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
    }
  }
  return 0;
}

int dv_ws_http_write_request(dv_buf *out, const char *host, const char *path,
                             const char *key, const dv_ws_header *h, size_t n) {
  size_t i;
  int rv = dv_buf_appendf(out,
                          "GET %s HTTP/1.1\r\n"
                          "Host: %s\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n",
                          path, host, key);
  for (i = 0; rv == 0 && i < n; i++) {
    rv = dv_buf_appendf(out, "%s: %s\r\n", h[i].name, h[i].value);
  }
  if (rv == 0) {
    rv = dv_buf_append(out, "\r\n", 2);
  }
  return rv == 0 ? 0 : DVOICE_ERR_NOMEM;
}

int dv_ws_http_write_101(dv_buf *out, const char *accept, const dv_buf *extra) {
  int rv = dv_buf_appendf(out,
                          "HTTP/1.1 101 Switching Protocols\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n",
                          accept);
  if (rv == 0 && extra->len > 0) {
    rv = dv_buf_append(out, extra->data, extra->len);
  }
  if (rv == 0) {
    rv = dv_buf_append(out, "\r\n", 2);
  }
  return rv == 0 ? 0 : DVOICE_ERR_NOMEM;
}

static const char *reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

int dv_ws_http_write_status(dv_buf *out, int status) {
  int rv = dv_buf_appendf(out,
                          "HTTP/1.1 %d %s\r\n"
                          "Connection: close\r\n"
                          "Content-Length: 0\r\n",
                          status, reason_phrase(status));
  if (rv == 0 && status == 426) {
    rv = dv_buf_append_str(out, "Sec-WebSocket-Version: 13\r\n");
  }
  if (rv == 0) {
    rv = dv_buf_append(out, "\r\n", 2);
  }
  return rv == 0 ? 0 : DVOICE_ERR_NOMEM;
}

int dv_ws_http_write_response(dv_buf *out, int status, const char *content_type,
                              const uint8_t *body, size_t len) {
  int rv = dv_buf_appendf(out,
                          "HTTP/1.1 %d %s\r\n"
                          "Connection: close\r\n"
                          "Content-Type: %s\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          status, reason_phrase(status), content_type, len);
  if (rv == 0) {
    rv = dv_buf_append(out, body, len);
  }
  return rv == 0 ? 0 : DVOICE_ERR_NOMEM;
}
