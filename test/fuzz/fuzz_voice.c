/*
 * Fuzz target for lib/voice (and lib/json through it): the input is a script
 * of steps for the voice gateway machine: raw text and binary messages, time
 * steps, closes with any code, opens, IP discovery results, new sessions,
 * speaking changes, and canned valid messages that let the fuzzer reach the
 * deep states quickly. After each step all output is drained.
 *
 * Script format, repeated until the input ends (first byte of a step % 12):
 *   0 TEXT    u16 len, bytes        1 BINARY  u16 len, bytes
 *   2 ADVANCE u16 milliseconds      3 CLOSE   u16 close code
 *   4 OPEN                          5 IP discovered
 *   6 NEW SESSION                   7 SPEAKING u8 flags
 *   8 APP CLOSE                     9 CANNED  u8 index
 *   10 ACK the last heartbeat       11 START
 * Invariants checked: the token never reaches the log or an event; the
 * machine never schedules a deadline in the past after handle_expiry; no
 * crash, leak or sanitizer report.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/dv_json.h"
#include "util/dv_rw.h"
#include "voice/dv_voice.h"

#define TOKEN "FUZZ-SECRET-TOKEN"

static const char *const canned[] = {
    "{\"op\":8,\"d\":{\"v\":8,\"heartbeat_interval\":13750}}",
    "{\"op\":2,\"d\":{\"ssrc\":12871,\"ip\":\"1.2.3.4\",\"port\":50010,"
    "\"modes\":[\"aead_aes256_gcm_rtpsize\","
    "\"aead_xchacha20_poly1305_rtpsize\"]}}",
    "{\"op\":2,\"d\":{\"ssrc\":1,\"ip\":\"10.0.0.1\",\"port\":1,"
    "\"modes\":[\"aead_xchacha20_poly1305_rtpsize\"]}}",
    "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\",\"secret_key\":"
    "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
    "26,27,28,29,30,31],\"dave_protocol_version\":0}}",
    "{\"op\":4,\"d\":{\"mode\":\"aead_xchacha20_poly1305_rtpsize\","
    "\"secret_key\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,"
    "21,22,23,24,25,26,27,28,29,30,31]}}",
    "{\"op\":9,\"d\":null}",
    "{\"op\":11,\"d\":{\"user_ids\":[\"5\",\"6\",\"7\"]},\"seq\":1}",
    "{\"op\":5,\"d\":{\"user_id\":\"6\",\"ssrc\":77,\"speaking\":1},"
    "\"seq\":2}",
    "{\"op\":13,\"d\":{\"user_id\":\"6\"},\"seq\":3}",
    "{\"op\":21,\"d\":{\"transition_id\":3,\"protocol_version\":0},"
    "\"seq\":4}",
    "{\"op\":24,\"d\":{\"epoch\":1,\"protocol_version\":1},\"seq\":5}",
    "{\"op\":8,\"d\":{\"heartbeat_interval\":10}}",
    "{\"op\":4,\"d\":{\"mode\":\"aead_aes256_gcm_rtpsize\",\"secret_key\":"
    "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
    "26,27,28,29,30,31],\"dave_protocol_version\":1}}",
};

typedef struct fuzz_ctx {
  uint8_t rnd;
  int events;
} fuzz_ctx;

static void rand_cb(void *ud, uint8_t *dest, size_t len) {
  fuzz_ctx *c = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = c->rnd++;
  }
}

static void log_cb(void *ud, dvoice_log_level level, const char *line,
                   size_t len) {
  (void)ud;
  (void)level;
  (void)len;
  if (strstr(line, TOKEN) != NULL) {
    fprintf(stderr, "token logged: %s\n", line);
    abort();
  }
}

static void on_event(dv_voice *v, const dv_voice_event *ev, void *ud) {
  fuzz_ctx *c = ud;
  c->events++;
  switch (ev->type) {
    case DV_VOICE_EV_SESSION:
      if (ev->u.session.key == NULL ||
          dv_voice_mode_name(ev->u.session.mode) == NULL) {
        abort();
      }
      break;
    case DV_VOICE_EV_UDP_START:
      if (ev->u.udp.ip == NULL || ev->u.udp.port == 0) {
        abort();
      }
      break;
    case DV_VOICE_EV_MAY_SEND:
      if (!dv_voice_may_send(v)) {
        abort();
      }
      break;
    default:
      break;
  }
}

static int dave_binary(void *ud, dv_voice *v, int op, const uint8_t *p,
                       size_t len, dvoice_tstamp ts) {
  (void)ud;
  (void)ts;
  if (len > 0 && p[0] == 0xff) {
    return DVOICE_ERR_PROTO;
  }
  if (op == 27) {
    /* A reply from inside the hook, as DAVE will send op 28. */
    return dv_voice_send_binary(v, 28, p, len);
  }
  return 0;
}

static int dave_text(void *ud, dv_voice *v, int op, const json_t *d,
                     dvoice_tstamp ts) {
  int64_t tid;
  int present;
  (void)ud;
  (void)ts;
  if (dv_json_get_int_opt(d, "transition_id", 0, 65535, &tid, &present) != 0) {
    return DVOICE_ERR_PROTO;
  }
  if (op == 21 && present) {
    json_t *r = json_pack("{s:I}", "transition_id", (json_int_t)tid);
    int rv = r != NULL ? dv_voice_send_json(v, 23, r) : DVOICE_ERR_NOMEM;
    json_decref(r);
    return rv;
  }
  return 0;
}

static void drain(dv_voice *v) {
  const uint8_t *p;
  size_t n;
  int bin;
  while (dv_voice_next_out(v, &p, &n, &bin)) {
    if (n == 0 || p == NULL) {
      abort();
    }
  }
}

static void run_expiry(dv_voice *v, dvoice_tstamp *now, dvoice_tstamp to) {
  for (int i = 0; i < 256; i++) {
    dvoice_tstamp e = dv_voice_get_expiry(v);
    if (e == DVOICE_TSTAMP_NONE || e > to) {
      break;
    }
    if (e > *now) {
      *now = e;
    }
    (void)dv_voice_handle_expiry(v, *now);
    drain(v);
    if (dv_voice_get_expiry(v) <= *now &&
        dv_voice_get_state(v) != DV_VOICE_DISCONNECTED) {
      /* Everything due was handled: the next deadline is in the future. */
      abort();
    }
  }
  *now = to;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dvoice_env env;
  dv_voice v;
  dv_voice_config cfg;
  dv_voice_callbacks cb = {on_event};
  dv_voice_dave dave = {NULL, NULL, NULL, dave_text, dave_binary};
  fuzz_ctx ctx = {0, 0};
  dvoice_tstamp now = 0;
  dv_rd r;
  int trace;

  dvoice_env_default(&env);
  env.rand = rand_cb;
  env.rand_user_data = &ctx;
  env.log = log_cb;
  env.log_level = DVOICE_LOG_DEBUG;
  dv_voice_config_default(&cfg);
  cfg.server_id = 1;
  cfg.user_id = 2;
  cfg.session_id = "fuzz-session";
  cfg.token = TOKEN;
  cfg.max_dave_protocol_version = 1;
  cfg.aes256_gcm_available = 1;
  cfg.dave = &dave;
  if (dv_voice_init(&v, &cfg, &cb, &env, &ctx) != 0) {
    abort();
  }
  trace = getenv("FUZZ_VOICE_TRACE") != NULL;
  dv_rd_init(&r, data, size);
  while (dv_rd_left(&r) > 0) {
    uint8_t cmd, u8;
    uint16_t u16;
    const uint8_t *p;
    size_t n;
    (void)dv_rd_u8(&r, &cmd);
    switch (cmd % 12) {
      case 0:
      case 1:
        if (dv_rd_u16(&r, &u16) != 0) {
          break;
        }
        n = u16 < dv_rd_left(&r) ? u16 : dv_rd_left(&r);
        (void)dv_rd_bytes(&r, &p, n);
        if (cmd % 12 == 0) {
          (void)dv_voice_on_text(&v, (const char *)p, n, now);
        } else {
          (void)dv_voice_on_binary(&v, p, n, now);
        }
        break;
      case 2:
        if (dv_rd_u16(&r, &u16) == 0) {
          run_expiry(&v, &now, now + (dvoice_tstamp)u16 * DVOICE_MS);
        }
        break;
      case 3:
        if (dv_rd_u16(&r, &u16) == 0) {
          (void)dv_voice_on_close(&v, u16, now);
        }
        break;
      case 4:
        (void)dv_voice_on_open(&v, now);
        break;
      case 5:
        (void)dv_voice_on_ip_discovered(&v, "203.0.113.9", 4242, now);
        break;
      case 6:
        (void)dv_voice_new_session(&v, "fuzz-session-2", TOKEN "-2", now);
        break;
      case 7:
        if (dv_rd_u8(&r, &u8) == 0) {
          (void)dv_voice_set_speaking(&v, u8 & 7, now);
        }
        break;
      case 8:
        (void)dv_voice_close(&v, now);
        break;
      case 9:
        if (dv_rd_u8(&r, &u8) == 0) {
          const char *m = canned[u8 % (sizeof(canned) / sizeof(canned[0]))];
          (void)dv_voice_on_text(&v, m, strlen(m), now);
        }
        break;
      case 10: {
        char ack[64];
        int k = snprintf(ack, sizeof(ack), "{\"op\":6,\"d\":{\"t\":%lld}}",
                         (long long)v.hb_nonce);
        (void)dv_voice_on_text(&v, ack, (size_t)k, now);
        break;
      }
      case 11:
        (void)dv_voice_start(&v, now);
        break;
    }
    drain(&v);
    if (trace) {
      /* FUZZ_VOICE_TRACE=1 shows where a seed leads. */
      fprintf(stderr, "step %u -> %s\n", (unsigned)(cmd % 12),
              dv_voice_state_name(dv_voice_get_state(&v)));
    }
  }
  dv_voice_free(&v);
  return 0;
}
