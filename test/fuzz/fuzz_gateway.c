/*
 * Fuzz target for lib/gateway (and lib/json through it): the input is a
 * script of steps for the main gateway machine: raw text messages, time
 * steps, closes with any code, opens, op 4 requests, application closes,
 * and canned valid messages that let the fuzzer reach the deep states
 * quickly. After each step all output is drained.
 *
 * Script format, repeated until the input ends (first byte of a step % 8):
 *   0 TEXT     u16 len, bytes     1 ADVANCE  u16 milliseconds
 *   2 CLOSE    u16 close code     3 OPEN
 *   4 CANNED   u8 index           5 OP 4     u8 guild, u8 channel, u8 flags
 *   6 APP CLOSE                   7 ADVANCE  u8 seconds
 * Invariants checked: the token never reaches the log (unless the peer
 * sent it back, raw or escaped) or an outgoing message other than
 * Identify/Resume; after handle_expiry the next deadline
 * is in the future; events carry sane values (state in range and current,
 * credentials printable and bounded, READY with a ws resume URL);
 * dispatch payloads handed on are valid JSON; no crash, leak or sanitizer
 * report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/dv_gateway.h"
#include "util/dv_rw.h"

#define TOKEN "FUZZ-SECRET-TOKEN"

static const char *const canned[] = {
    "{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}",
    "{\"op\":0,\"t\":\"READY\",\"s\":1,\"d\":{\"session_id\":\"s1\","
    "\"resume_gateway_url\":\"wss://r.example\",\"user\":{\"id\":\"9\"}}}",
    "{\"op\":11}",
    "{\"op\":0,\"t\":\"RESUMED\",\"s\":5,\"d\":{}}",
    "{\"op\":0,\"t\":\"VOICE_STATE_UPDATE\",\"s\":2,\"d\":{\"guild_id\":"
    "\"1\",\"channel_id\":\"2\",\"user_id\":\"9\",\"session_id\":\"v\"}}",
    "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":3,\"d\":{\"token\":\"t\","
    "\"guild_id\":\"1\",\"endpoint\":\"h:443\"}}",
    "{\"op\":0,\"t\":\"VOICE_SERVER_UPDATE\",\"s\":4,\"d\":{\"token\":\"t\","
    "\"guild_id\":\"1\",\"endpoint\":null}}",
    "{\"op\":7,\"d\":null}",
    "{\"op\":9,\"d\":true}",
    "{\"op\":9,\"d\":false}",
    "{\"op\":1,\"d\":null}",
    "{\"op\":0,\"t\":\"GUILD_CREATE\",\"s\":6,\"d\":{\"id\":\"1\","
    "\"voice_states\":[]}}",
    "{\"op\":10,\"d\":{\"heartbeat_interval\":10}}",
};

typedef struct fuzz_ctx {
  uint8_t rnd;
  int events;
  /* The peer sent our token back (in a URL, a session id...): logging
   * the peer's strings may then show it, which is not a leak. */
  int peer_echoed_token;
} fuzz_ctx;

static void rand_cb(void *ud, uint8_t *dest, size_t len) {
  fuzz_ctx *c = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = c->rnd++;
  }
}

static void log_cb(void *ud, dvoice_log_level level, const char *line,
                   size_t len) {
  const fuzz_ctx *c = ud;
  (void)level;
  (void)len;
  if (!c->peer_echoed_token && strstr(line, TOKEN) != NULL) {
    fprintf(stderr, "token logged: %s\n", line);
    abort();
  }
}

/* A credential as the gateway promises it: printable ASCII, 1..max. */
static int printable_ok(const char *s, size_t max) {
  size_t n;
  if (s == NULL) {
    return 0;
  }
  n = strnlen(s, max + 1);
  if (n == 0 || n > max) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
      return 0;
    }
  }
  return 1;
}

static void die(const char *what) {
  fprintf(stderr, "fuzz_gateway invariant: %s\n", what);
  abort();
}

static void on_event(dv_gw *gw, const dv_gw_event *ev, void *ud) {
  fuzz_ctx *c = ud;
  c->events++;
  switch (ev->type) {
    case DV_GW_EV_CONNECT:
      if (ev->u.connect.url == NULL ||
          strncmp(ev->u.connect.url, "ws", 2) != 0) {
        die("connect url");
      }
      break;
    case DV_GW_EV_READY:
      if (ev->u.ready.session_id == NULL || dv_gw_session_id(gw) == NULL ||
          ev->u.ready.resume_gateway_url == NULL ||
          strncmp(ev->u.ready.resume_gateway_url, "ws", 2) != 0) {
        die("READY fields");
      }
      break;
    case DV_GW_EV_STATE:
      if ((int)ev->u.state.state < DV_GW_IDLE ||
          ev->u.state.state > DV_GW_DISCONNECTED ||
          ev->u.state.state != dv_gw_get_state(gw)) {
        die("state event");
      }
      break;
    case DV_GW_EV_VOICE_STATE:
      /* A zero user or guild id is passed on; the client filters it. */
      if (!printable_ok(ev->u.voice_state.session_id, 256) ||
          (!ev->u.voice_state.has_channel &&
           ev->u.voice_state.channel_id != 0)) {
        die("voice state fields");
      }
      /* Queueing from a callback is allowed. */
      (void)dv_gw_update_voice_state(gw, 1, 0, 0, 0, 0);
      break;
    case DV_GW_EV_VOICE_SERVER:
      if (!printable_ok(ev->u.voice_server.token, 512) ||
          (ev->u.voice_server.endpoint != NULL &&
           !printable_ok(ev->u.voice_server.endpoint, 512))) {
        die("voice server fields");
      }
      break;
    default:
      break;
  }
}

static void on_dispatch(dv_gw *gw, const char *name, const char *d, size_t len,
                        void *ud) {
  json_t *j;
  (void)gw;
  (void)ud;
  if (name == NULL || d == NULL || strlen(d) != len) {
    die("dispatch payload");
  }
  /* The re-serialised payload is JSON again. */
  j = json_loadb(d, len, JSON_DECODE_ANY, NULL);
  if (j == NULL) {
    die("dispatch not JSON");
  }
  json_decref(j);
}

static int contains(const uint8_t *p, size_t n, const char *needle) {
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++) {
    if (memcmp(p + i, needle, k) == 0) {
      return 1;
    }
  }
  return 0;
}

/* Whether a peer message carries our token, raw or JSON-escaped. */
static int echoes_token(const uint8_t *p, size_t n) {
  json_t *j;
  char *text;
  int found;
  if (contains(p, n, TOKEN)) {
    return 1;
  }
  j = json_loadb((const char *)p, n, 0, NULL);
  if (j == NULL) {
    return 0;
  }
  /* Re-encoded, only '"', '\\' and control characters are escaped. */
  text = json_dumps(j, JSON_ENCODE_ANY);
  found = text != NULL && strstr(text, TOKEN) != NULL;
  free(text);
  json_decref(j);
  return found;
}

static void drain(dv_gw *gw) {
  const uint8_t *p;
  size_t n;
  while (dv_gw_next_out(gw, &p, &n)) {
    if (n == 0 || p == NULL) {
      abort();
    }
    /* Only Identify (op 2) and Resume (op 6) carry the token. */
    if (contains(p, n, TOKEN) && !contains(p, n, "\"op\":2") &&
        !contains(p, n, "\"op\":6")) {
      abort();
    }
  }
}

static void run_expiry(dv_gw *gw, dvoice_tstamp *now, dvoice_tstamp to) {
  for (int i = 0; i < 512; i++) {
    dvoice_tstamp e = dv_gw_get_expiry(gw);
    if (e == DVOICE_TSTAMP_NONE || e > to) {
      break;
    }
    if (e > *now) {
      *now = e;
    }
    (void)dv_gw_handle_expiry(gw, *now);
    drain(gw);
    if (dv_gw_get_expiry(gw) <= *now &&
        dv_gw_get_state(gw) != DV_GW_DISCONNECTED &&
        dv_gw_get_state(gw) != DV_GW_BACKOFF) {
      /* Everything due was handled: the next deadline is in the future
       * (a BACKOFF may legitimately be due now: op 7 reconnects at once). */
      abort();
    }
  }
  *now = to;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dvoice_env env;
  dv_gw gw;
  dv_gw_config cfg;
  dv_gw_callbacks cb = {on_event, on_dispatch};
  fuzz_ctx ctx = {0, 0, 0};
  dvoice_tstamp now = 0;
  dv_rd r;

  dvoice_env_default(&env);
  env.rand = rand_cb;
  env.rand_user_data = &ctx;
  env.log = log_cb;
  env.log_user_data = &ctx;
  env.log_level = DVOICE_LOG_DEBUG;
  dv_gw_config_default(&cfg);
  cfg.token = TOKEN;
  cfg.max_attempts = 1000;
  if (dv_gw_init(&gw, &cfg, &cb, &env, &ctx) != 0 ||
      dv_gw_start(&gw, now) != 0) {
    abort();
  }
  dv_rd_init(&r, data, size);
  while (dv_rd_left(&r) > 0) {
    uint8_t cmd, u8, a, b;
    uint16_t u16;
    const uint8_t *p;
    size_t n;
    (void)dv_rd_u8(&r, &cmd);
    switch (cmd % 8) {
      case 0:
        if (dv_rd_u16(&r, &u16) != 0) {
          break;
        }
        n = u16 < dv_rd_left(&r) ? u16 : dv_rd_left(&r);
        (void)dv_rd_bytes(&r, &p, n);
        ctx.peer_echoed_token |= echoes_token(p, n);
        (void)dv_gw_on_text(&gw, (const char *)p, n, now);
        break;
      case 1:
        if (dv_rd_u16(&r, &u16) == 0) {
          run_expiry(&gw, &now, now + (dvoice_tstamp)u16 * DVOICE_MS);
        }
        break;
      case 2:
        if (dv_rd_u16(&r, &u16) == 0) {
          (void)dv_gw_on_close(&gw, u16, now);
        }
        break;
      case 3:
        (void)dv_gw_on_open(&gw, now);
        break;
      case 4:
        if (dv_rd_u8(&r, &u8) == 0) {
          const char *m = canned[u8 % (sizeof(canned) / sizeof(canned[0]))];
          (void)dv_gw_on_text(&gw, m, strlen(m), now);
        }
        break;
      case 5:
        if (dv_rd_u8(&r, &a) == 0 && dv_rd_u8(&r, &b) == 0 &&
            dv_rd_u8(&r, &u8) == 0) {
          (void)dv_gw_update_voice_state(&gw, a, b, u8 & 1, u8 & 2, now);
        }
        break;
      case 6:
        (void)dv_gw_close(&gw, now);
        break;
      case 7:
        if (dv_rd_u8(&r, &u8) == 0) {
          run_expiry(&gw, &now, now + (dvoice_tstamp)u8 * DVOICE_SECONDS);
        }
        break;
    }
    drain(&gw);
  }
  dv_gw_free(&gw);
  return 0;
}
