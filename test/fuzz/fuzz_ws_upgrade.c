/*
 * Fuzz target: the HTTP/1.1 Upgrade head parsers of lib/ws.
 *
 * Input byte 0 picks the side and the chunking: bit 7 set = server (parse a
 * request), else client (parse a response to the request made under the
 * counter RNG, so the accepting seeds carry Accept
 * Bz3qJYTGdOe8gUSpLosEdiLKDrk=); bits 0-5 = chunk size (0 = the whole input at
 * once). The rest is fed to dv_ws_feed(); once upgraded, leftover bytes run
 * through the frame layer. The same bytes also go straight to
 * dv_ws_http_parse() as a request and as a response, from exact-size heap
 * copies so ASan sees any over-read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dv_buf.h"
#include "ws/dv_ws.h"
#include "ws/dv_ws_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void counter_rand(void *ud, uint8_t *dest, size_t len) {
  uint8_t *next = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = (*next)++;
  }
}

static int on_message(dv_ws *ws, dv_ws_opcode op, const uint8_t *d, size_t n,
                      void *ud) {
  (void)ud;
  return dv_ws_send(ws, op, d, n > 64 ? 64 : n);
}

static void parse_copy(const uint8_t *data, size_t size, int is_response) {
  dv_ws_http m;
  uint8_t *copy = malloc(size > 0 ? size : 1);
  if (copy == NULL) {
    return;
  }
  if (size > 0) {
    memcpy(copy, data, size);
  }
  if (dv_ws_http_parse(copy, size, is_response, &m) == 0) {
    /* Every string the parser hands out must be readable. */
    volatile size_t total = 0;
    for (size_t i = 0; i < m.n; i++) {
      total += strlen(m.h[i].name) + strlen(m.h[i].value);
    }
    if (!is_response) {
      total += strlen(m.method) + strlen(m.target);
    }
    (void)total;
  }
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const dv_ws_callbacks cb = {NULL, NULL, on_message, NULL, NULL};
  dvoice_env env;
  dv_ws_opts o;
  dv_ws ws;
  uint8_t next = 0;
  size_t chunk, off;
  if (size < 1) {
    return 0;
  }
  memset(&env, 0, sizeof env);
  env.rand = counter_rand;
  env.rand_user_data = &next;
  memset(&o, 0, sizeof o);
  o.is_server = (data[0] & 0x80) != 0;
  o.host = "gateway.discord.gg";
  o.path = "/?v=10&encoding=json";
  o.max_header_size = 2048;
  o.max_message_size = 4096;
  chunk = data[0] & 0x3f;
  data++;
  size--;

  parse_copy(data, size, 1);
  parse_copy(data, size, 0);

  if (dv_ws_init(&ws, &o, &cb, &env, NULL) != 0) {
    abort();
  }
  dv_buf_reset(dv_ws_outbuf(&ws));
  if (chunk == 0) {
    chunk = size;
  }
  for (off = 0; off < size;) {
    size_t n = size - off < chunk ? size - off : chunk;
    uint8_t *piece = malloc(n);
    int rv;
    if (piece == NULL) {
      break;
    }
    memcpy(piece, data + off, n);
    rv = dv_ws_feed(&ws, piece, n);
    free(piece);
    off += n;
    dv_buf_reset(dv_ws_outbuf(&ws));
    if (rv != 0) {
      /* Errors are sticky. */
      if (dv_ws_feed(&ws, data, 0) != rv ||
          dv_ws_state_get(&ws) != DV_WS_FAILED) {
        abort();
      }
      break;
    }
  }
  dv_ws_free(&ws);
  return 0;
}
