/*
 * Fuzz target: the WebSocket frame layer after a successful upgrade.
 *
 * Input layout: byte 0 = flags (bits 0-2: number of chunk-size bytes that
 * follow, bit 3: act as the server instead of the client, bit 4: echo every
 * message from the callback, bit 5: start a close after the input, bit 6:
 * send a ping first); then that many chunk sizes (0 = 1 byte); the rest is
 * frame bytes fed to dv_ws_feed() in chunks cycling through those sizes.
 * The upgrade itself uses fixed vectors (counter RNG), so every input
 * reaches the frame layer. Max message size is 4096 to reach 1009 quickly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/dv_buf.h"
#include "ws/dv_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char response[] =
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n"
    "\r\n";
static const char request[] = "GET / HTTP/1.1\r\n"
                              "Host: h\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";

static void counter_rand(void *ud, uint8_t *dest, size_t len) {
  uint8_t *next = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = (*next)++;
  }
}

typedef struct fstate {
  int echo;
  size_t total;
} fstate;

static int on_message(dv_ws *ws, dv_ws_opcode op, const uint8_t *d, size_t n,
                      void *ud) {
  fstate *s = ud;
  volatile uint8_t sink = 0;
  /* Touch every byte so ASan checks the buffer bounds. */
  for (size_t i = 0; i < n; i++) {
    sink ^= d[i];
  }
  (void)sink;
  s->total += n;
  if (n > 4096) {
    abort(); /* the limit must hold */
  }
  if (s->echo) {
    return dv_ws_send(ws, op, d, n);
  }
  return 0;
}

static void on_close(dv_ws *ws, uint16_t code, const uint8_t *reason,
                     size_t len, void *ud) {
  (void)ws;
  (void)ud;
  if (len > 123 || (len > 0 && reason == NULL) || code < 1000) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const dv_ws_callbacks cb = {NULL, NULL, on_message, NULL, on_close};
  dvoice_env env;
  dv_ws_opts o;
  dv_ws ws;
  fstate st = {0, 0};
  uint8_t next = 0;
  size_t chunks[7], nchunks, off, ci = 0;
  uint8_t flags;
  int rv;
  if (size < 1) {
    return 0;
  }
  flags = data[0];
  nchunks = flags & 7;
  if (size < 1 + nchunks) {
    return 0;
  }
  for (size_t i = 0; i < nchunks; i++) {
    chunks[i] = data[1 + i] != 0 ? data[1 + i] : 1;
  }
  data += 1 + nchunks;
  size -= 1 + nchunks;
  st.echo = (flags & 0x10) != 0;

  memset(&env, 0, sizeof env);
  env.rand = counter_rand;
  env.rand_user_data = &next;
  memset(&o, 0, sizeof o);
  o.is_server = (flags & 0x08) != 0;
  o.host = "h";
  o.max_message_size = 4096;
  if (dv_ws_init(&ws, &o, &cb, &env, &st) != 0) {
    abort();
  }
  rv = o.is_server
           ? dv_ws_feed(&ws, (const uint8_t *)request, sizeof request - 1)
           : dv_ws_feed(&ws, (const uint8_t *)response, sizeof response - 1);
  if (rv != 0 || dv_ws_state_get(&ws) != DV_WS_OPEN) {
    abort();
  }
  dv_buf_reset(dv_ws_outbuf(&ws));
  if (flags & 0x40) {
    (void)dv_ws_ping(&ws, (const uint8_t *)"fz", 2);
  }
  for (off = 0; off < size;) {
    size_t want = nchunks > 0 ? chunks[ci++ % nchunks] : size;
    size_t n = size - off < want ? size - off : want;
    uint8_t *piece = malloc(n);
    if (piece == NULL) {
      break;
    }
    memcpy(piece, data + off, n);
    rv = dv_ws_feed(&ws, piece, n);
    free(piece);
    off += n;
    dv_buf_reset(dv_ws_outbuf(&ws));
    if (rv != 0) {
      if (dv_ws_state_get(&ws) != DV_WS_FAILED || dv_ws_error(&ws) != rv) {
        abort();
      }
      break;
    }
  }
  if (flags & 0x20) {
    (void)dv_ws_close(&ws, 1000, "fuzz", 4);
    (void)dv_ws_send(&ws, DV_WS_TEXT, (const uint8_t *)"x", 1);
  }
  dv_ws_free(&ws);
  return 0;
}
