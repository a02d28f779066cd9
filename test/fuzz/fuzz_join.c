/*
 * Fuzz target for lib/join: the join machine and the voice dispatch parsers
 * together, under a fake clock advanced by the input. Every dispatch goes
 * through dv_join_parse_voice_state / _server first, as the client's JSON
 * entry points do, and only a successful parse for our guild reaches the
 * machine.
 *
 * Input: byte 0 picks the tunables (defaults, tiny, huge, one session);
 * then steps until the input ends (first byte of a step % 12):
 *   0 JOIN     u8 channel (0 = invalid, 1..3), u8 flags
 *   1 LEAVE
 *   2 STATE    u16 len, raw JSON text      3 SERVER   u16 len, raw JSON
 *   4 STATE    u8 canned selector          5 SERVER   u8 canned selector
 *   6 ADVANCE  u16 milliseconds            7 ADVANCE  u8 seconds
 *   8 CLOSE    u8 (< 128: a common voice close code, else u16 code follows),
 *              mapped to the connection state the voice core would report
 *   9 CONN     u8 raw dvoice_conn_state (out-of-range values included)
 *  10 EXPIRY   jump to the machine's deadline and handle it
 *  11 JUMP     u32 seconds (then expiry as for ADVANCE)
 *
 * Invariants checked after every call (aborting on a violation):
 * - credentials are handed over (CONNECT / NEW_SESSION) only with a
 *   non-empty session, token and endpoint within bounds, each taken from a
 *   successfully parsed dispatch for our user; coming out of SIGNALLING,
 *   both dispatches belong to the current attempt (fed after its op 4 or
 *   its move), the token differs from the last one handed over, and the
 *   session was fed for the channel the credentials name;
 * - CONNECT comes at most once and first; nothing follows END; END comes
 *   once and only with state ENDED; op 4 with a null channel only right
 *   before END; op 4 with a channel names the channel asked for;
 * - the state is one of the enum values, the deadline is set exactly in
 *   SIGNALLING, WAIT_SERVER and BACKOFF and always lies after the clock;
 * - every call returns 0 or one of its documented error codes;
 * - parser results are self-consistent (bounds, nonzero snowflakes, no
 *   control characters, zeroed output and a named field on failure);
 * - no token in the log, no action queue overflow; no leak (ASan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join/dv_join.h"
#include "join/dv_join_json.h"
#include "util/dv_rw.h"
#include "voice/dv_voice.h"

#define GUILD 41771983423143936ull
#define OTHER_GUILD 41771983423143937ull
#define USER 80351110224678912ull
#define OTHER_USER 80351110224678913ull
#define TOKEN_MARK "secret-token-"
#define MAX_FED 512

static const uint64_t channels[4] = {0, 127121515262115840ull,
                                     222197033908436994ull, 3};

static const int close_codes[] = {0,    1000, 1001, 1006, 4001, 4002, 4003,
                                  4004, 4005, 4006, 4009, 4011, 4012, 4014,
                                  4015, 4016, 4017, 4020, 4021, 4022, 4999};

static const char *const endpoints[] = {NULL,
                                        NULL,
                                        "",
                                        "ep-a.discord.media:443",
                                        "ep-b.discord.media:443",
                                        "ep-c.discord.media",
                                        "x",
                                        "ep-a.discord.media:443"};

typedef struct fed {
  uint64_t a, b; /* hashes: session and channel, or token and endpoint */
  size_t step;
} fed;

typedef struct fz {
  dv_join j;
  dvoice_tstamp now;
  size_t step;
  /* What was fed. */
  fed states[MAX_FED], servers[MAX_FED];
  size_t nstates, nservers;
  int overflow;        /* too many to track: skip the membership checks */
  size_t attempt_step; /* step of the current attempt's op 4 or move */
  uint64_t want;       /* the channel asked for or moved to */
  uint64_t last_token; /* hash of the last token handed over, 0 none */
  int connects, ended;
} fz;

static uint64_t hash(const char *s) {
  /* FNV-1a; 0 is reserved for "none". */
  uint64_t h = 1469598103934665603ull;
  for (; *s != '\0'; s++) {
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

static const fz *g_z; /* for the failure report only */

static void fail(const char *what) {
  fprintf(stderr, "fuzz_join invariant: %s\n", what);
  if (g_z != NULL) {
    fprintf(stderr, "  step %zu, now %llu, state %s, expiry %llu\n", g_z->step,
            (unsigned long long)g_z->now,
            dv_join_state_name(dv_join_get_state(&g_z->j)),
            (unsigned long long)dv_join_get_expiry(&g_z->j));
  }
  abort();
}

static void check(int cond, const char *what) {
  if (!cond) {
    fail(what);
  }
}

static void log_cb(void *ud, dvoice_log_level level, const char *line,
                   size_t len) {
  (void)ud;
  (void)level;
  (void)len;
  check(strstr(line, TOKEN_MARK) == NULL, "token logged");
  check(strstr(line, "queue full") == NULL, "action queue overflow");
}

static int text_ok(const char *s, size_t max, int may_be_empty) {
  size_t n = strnlen(s, max + 1);
  if (n > max || (n == 0 && !may_be_empty)) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) {
      return 0;
    }
  }
  return 1;
}

static int zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) {
      return 0;
    }
  }
  return 1;
}

static void check_parse_error(int rv, const char *field, const void *out,
                              size_t n) {
  check(zeroed(out, n), "output not zeroed on a parse error");
  switch (rv) {
    case DVOICE_ERR_MALFORMED:
    case DVOICE_ERR_NOMEM:
      check(field == NULL, "field named for a malformed text");
      break;
    case DVOICE_ERR_PROTO:
    case DVOICE_ERR_TOO_LARGE:
      check(field != NULL, "no field named");
      break;
    default:
      fail("undocumented parser error");
  }
}

static int fed_has(const fed *f, size_t n, uint64_t a, uint64_t b,
                   size_t since) {
  for (size_t i = 0; i < n; i++) {
    if (f[i].a == a && f[i].b == b && f[i].step >= since) {
      return 1;
    }
  }
  return 0;
}

static void record(fz *z, fed *f, size_t *n, uint64_t a, uint64_t b) {
  if (*n == MAX_FED) {
    z->overflow = 1;
    return;
  }
  f[*n].a = a;
  f[*n].b = b;
  f[*n].step = z->step;
  (*n)++;
}

static int timed(dv_join_state s) {
  return s == DV_JOIN_SIGNALLING || s == DV_JOIN_WAIT_SERVER ||
         s == DV_JOIN_BACKOFF;
}

/* Drains the actions of one call made in state |pre| and checks them;
 * |state_ch| is the channel of the state update fed by the call, if any. */
static void drain(fz *z, dv_join_state pre, uint64_t state_ch) {
  dv_join_action a;
  int leaving = 0, got_op4 = 0;
  dv_join_state st;
  dvoice_tstamp exp;
  while (dv_join_next_action(&z->j, &a) == 1) {
    check(!z->ended, "action after END");
    check(!leaving || a.type == DV_JOIN_ACT_END, "leave op 4 without END");
    switch (a.type) {
      case DV_JOIN_ACT_SEND_OP4:
        if (a.u.op4.channel_id == 0) {
          leaving = 1;
        } else {
          check(a.u.op4.channel_id == z->want, "op 4 channel");
          z->attempt_step = z->step;
          got_op4 = 1;
        }
        check(a.u.op4.self_mute == 0 || a.u.op4.self_mute == 1, "op 4 mute");
        check(a.u.op4.self_deaf == 0 || a.u.op4.self_deaf == 1, "op 4 deaf");
        break;
      case DV_JOIN_ACT_CONNECT:
      case DV_JOIN_ACT_NEW_SESSION: {
        uint64_t hs, ht, he, hc;
        if (a.type == DV_JOIN_ACT_CONNECT) {
          check(z->connects == 0, "second CONNECT");
          check(pre == DV_JOIN_SIGNALLING, "CONNECT outside SIGNALLING");
          z->connects++;
        } else {
          check(z->connects == 1, "NEW_SESSION before CONNECT");
        }
        check(a.u.creds.session_id != NULL && a.u.creds.token != NULL &&
                  a.u.creds.endpoint != NULL,
              "NULL credentials");
        check(text_ok(a.u.creds.session_id, DV_JOIN_SESSION_MAX, 0),
              "bad session id");
        check(text_ok(a.u.creds.token, DV_JOIN_TOKEN_MAX, 0), "bad token");
        check(text_ok(a.u.creds.endpoint, DV_JOIN_ENDPOINT_MAX, 0),
              "bad or null endpoint");
        check(a.u.creds.channel_id != 0, "credentials without a channel");
        hs = hash(a.u.creds.session_id);
        ht = hash(a.u.creds.token);
        he = hash(a.u.creds.endpoint);
        hc = a.u.creds.channel_id;
        if (!z->overflow) {
          check(fed_has(z->servers, z->nservers, ht, he, 0),
                "token/endpoint never fed together");
          check(fed_has(z->states, z->nstates, hs, hc, 0),
                "session never fed for that channel");
          if (pre == DV_JOIN_SIGNALLING) {
            /* Both events of THIS attempt, in either order. */
            check(fed_has(z->servers, z->nservers, ht, he, z->attempt_step),
                  "server update of an earlier attempt paired");
            check(fed_has(z->states, z->nstates, hs, hc, z->attempt_step),
                  "state update of an earlier attempt paired");
            check(ht != z->last_token, "used token paired again");
            check(hc == z->want, "paired for another channel");
          }
        }
        z->last_token = ht;
        z->want = hc;
        break;
      }
      case DV_JOIN_ACT_SUSPEND:
        check(pre == DV_JOIN_CONNECTED, "SUSPEND outside CONNECTED");
        break;
      case DV_JOIN_ACT_END:
        check(a.u.end.reason > DV_JOIN_REASON_NONE &&
                  a.u.end.reason <= DV_JOIN_REASON_VOICE_FAILED,
              "END reason");
        z->ended = 1;
        leaving = 0;
        break;
      default:
        fail("unknown action");
    }
  }
  check(!leaving, "leave op 4 without END");
  st = dv_join_get_state(&z->j);
  check(st >= DV_JOIN_IDLE && st <= DV_JOIN_ENDED, "state out of range");
  check((st == DV_JOIN_ENDED) == (z->ended != 0), "ENDED without END");
  exp = dv_join_get_expiry(&z->j);
  check(timed(st) == (exp != DVOICE_TSTAMP_NONE), "deadline/state mismatch");
  /* Deadlines saturate at NONE - 1, the end of time: once the clock got
   * there (by jumping to such a deadline) the next one cannot be later. */
  check(exp == DVOICE_TSTAMP_NONE || exp > z->now ||
            exp == DVOICE_TSTAMP_NONE - 1,
        "deadline not ahead");
  if (st == DV_JOIN_SIGNALLING && pre != DV_JOIN_SIGNALLING && !got_op4) {
    /* Into SIGNALLING without op 4: a move by a state update, which
     * starts the attempt with that very update. */
    check(state_ch != 0, "SIGNALLING entered without op 4 or a move");
    z->attempt_step = z->step;
    z->want = state_ch;
  }
}

/* Runs every deadline up to |to| (the clock never goes back). */
static void advance(fz *z, dvoice_tstamp to) {
  dv_join_action a;
  dv_join_state pre;
  for (int i = 0; i < 64; i++) {
    dvoice_tstamp e = dv_join_get_expiry(&z->j);
    if (e == DVOICE_TSTAMP_NONE || e > to) {
      break;
    }
    z->now = e > z->now ? e : z->now;
    pre = dv_join_get_state(&z->j);
    check(dv_join_handle_expiry(&z->j, z->now) == 0, "handle_expiry rv");
    drain(z, pre, 0);
  }
  z->now = to > z->now ? to : z->now;
  check(dv_join_get_expiry(&z->j) > z->now ||
            dv_join_get_expiry(&z->j) == DVOICE_TSTAMP_NONE - 1,
        "expiry does not progress");
  /* A call before the deadline changes nothing. */
  pre = dv_join_get_state(&z->j);
  if (dv_join_get_expiry(&z->j) > z->now) {
    check(dv_join_handle_expiry(&z->j, z->now) == 0, "handle_expiry rv");
    check(dv_join_next_action(&z->j, &a) == 0, "early expiry acted");
    check(dv_join_get_state(&z->j) == pre, "early expiry changed state");
  }
}

static void feed_state(fz *z, const char *json, size_t len) {
  dv_join_voice_state vs;
  const char *field = "unset";
  dv_join_state pre = dv_join_get_state(&z->j);
  int rv = dv_join_parse_voice_state(json, len, &vs, &field);
  if (rv != 0) {
    check_parse_error(rv, field, &vs, sizeof(vs));
    return;
  }
  check(field == NULL, "field named on success");
  check(vs.guild_id != 0 && vs.user_id != 0, "zero snowflake parsed");
  check((vs.has_channel != 0) == (vs.channel_id != 0), "channel flag");
  check(text_ok(vs.session_id, DV_JOIN_SESSION_MAX, !vs.has_channel),
        "parsed session id");
  check(vs.has_session || vs.session_id[0] == '\0', "session flag");
  if (vs.guild_id != GUILD) {
    return; /* the client routes by guild */
  }
  if (vs.user_id == USER && vs.has_channel) {
    record(z, z->states, &z->nstates, hash(vs.session_id), vs.channel_id);
  }
  rv = dv_join_on_voice_state(&z->j, vs.user_id, vs.has_channel, vs.channel_id,
                              vs.has_session ? vs.session_id : NULL, z->now);
  check(rv == 0 || (rv == DVOICE_ERR_INVALID_STATE && pre == DV_JOIN_ENDED),
        "on_voice_state rv");
  drain(z, pre, vs.channel_id);
}

static void feed_server(fz *z, const char *json, size_t len) {
  dv_join_voice_server vs;
  const char *field = "unset";
  dv_join_state pre = dv_join_get_state(&z->j);
  int rv = dv_join_parse_voice_server(json, len, &vs, &field);
  if (rv != 0) {
    check_parse_error(rv, field, &vs, sizeof(vs));
    return;
  }
  check(field == NULL, "field named on success");
  check(vs.guild_id != 0, "zero snowflake parsed");
  check(text_ok(vs.token, DV_JOIN_TOKEN_MAX, 0), "parsed token");
  check(text_ok(vs.endpoint, DV_JOIN_ENDPOINT_MAX, 1), "parsed endpoint");
  check((vs.has_endpoint != 0) == (vs.endpoint[0] != '\0'), "endpoint flag");
  if (vs.guild_id != GUILD) {
    return;
  }
  if (vs.has_endpoint) {
    record(z, z->servers, &z->nservers, hash(vs.token), hash(vs.endpoint));
  }
  rv = dv_join_on_voice_server(&z->j, vs.token,
                               vs.has_endpoint ? vs.endpoint : NULL, z->now);
  check(rv == 0 || (rv == DVOICE_ERR_INVALID_STATE && pre == DV_JOIN_ENDED),
        "on_voice_server rv");
  drain(z, pre, 0);
}

static void canned_state(fz *z, uint8_t v) {
  char buf[512];
  const char *sessions[4] = {"sA", "sB", "sC", NULL};
  uint64_t guild = (v & 0x80) ? OTHER_GUILD : GUILD;
  uint64_t user = (v & 1) ? OTHER_USER : USER;
  uint64_t ch = channels[(v >> 1) & 3];
  const char *sid = sessions[(v >> 3) & 3];
  char chbuf[40], sidbuf[300];
  int n;
  if (ch != 0) {
    snprintf(chbuf, sizeof(chbuf), "\"%llu\"", (unsigned long long)ch);
  } else {
    snprintf(chbuf, sizeof(chbuf), "null");
  }
  if (sid != NULL) {
    snprintf(sidbuf, sizeof(sidbuf), ",\"session_id\":\"%s\"", sid);
  } else {
    sidbuf[0] = '\0';
  }
  n = snprintf(buf, sizeof(buf),
               "{\"guild_id\":\"%llu\",\"user_id\":\"%llu\"%s%s%s,"
               "\"self_mute\":false}",
               (unsigned long long)guild, (unsigned long long)user,
               (v & 0x40) && ch == 0 ? "" : ",\"channel_id\":",
               (v & 0x40) && ch == 0 ? "" : chbuf, sidbuf);
  feed_state(z, buf, (size_t)n);
}

static void canned_server(fz *z, uint8_t v) {
  char buf[512], epbuf[64];
  uint64_t guild = (v & 0x80) ? OTHER_GUILD : GUILD;
  const char *ep = endpoints[(v >> 3) & 7];
  int n;
  if (((v >> 3) & 7) == 1) {
    epbuf[0] = '\0'; /* absent */
  } else if (ep == NULL) {
    snprintf(epbuf, sizeof(epbuf), ",\"endpoint\":null");
  } else {
    snprintf(epbuf, sizeof(epbuf), ",\"endpoint\":\"%s\"", ep);
  }
  n = snprintf(buf, sizeof(buf),
               "{\"token\":\"" TOKEN_MARK "%u\"%s,"
               "\"guild_id\":\"%llu\"}",
               (unsigned)(v & 7) + ((v & 0x40) ? 8 : 0), epbuf,
               (unsigned long long)guild);
  feed_server(z, buf, (size_t)n);
}

static dvoice_conn_state conn_state_for(int code) {
  dv_voice_policy p = dv_voice_policy_for(code, 1);
  switch (p.outcome) {
    case DV_VOICE_OUTCOME_RESUME:
      return DVOICE_CONN_RESUMING;
    case DV_VOICE_OUTCOME_NEW_SESSION:
      return DVOICE_CONN_NEED_SESSION;
    case DV_VOICE_OUTCOME_WAIT_SERVER:
      return DVOICE_CONN_WAIT_SERVER;
    case DV_VOICE_OUTCOME_DISCONNECTED:
    case DV_VOICE_OUTCOME_FATAL:
      return DVOICE_CONN_DISCONNECTED;
    case DV_VOICE_OUTCOME_NONE:
      break;
  }
  return DVOICE_CONN_CONNECTING;
}

static void conn_state(fz *z, int s) {
  dv_join_state pre = dv_join_get_state(&z->j);
  int rv = dv_join_on_conn_state(&z->j, (dvoice_conn_state)s, z->now);
  if (pre == DV_JOIN_ENDED || z->connects == 0) {
    check(rv == DVOICE_ERR_INVALID_STATE, "conn state without a connection");
  } else if (s >= DVOICE_CONN_CONNECTING && s <= DVOICE_CONN_DISCONNECTED) {
    check(rv == 0, "on_conn_state rv");
  } else {
    check(rv == DVOICE_ERR_INVALID_ARGUMENT, "bad conn state accepted");
  }
  drain(z, pre, 0);
}

static void config_for(dv_join_config *cfg, uint8_t v) {
  dv_join_config_default(cfg);
  cfg->guild_id = GUILD;
  cfg->user_id = USER;
  switch (v & 3) {
    case 0:
      break; /* defaults */
    case 1:  /* tiny: every deadline one nanosecond away */
      cfg->join_timeout = cfg->server_wait = cfg->endpoint_wait = 1;
      cfg->backoff_base = 1;
      cfg->backoff_max = 2;
      break;
    case 2: /* huge: "never" as an application might spell it */
      cfg->join_timeout = DVOICE_TSTAMP_NONE - 1;
      cfg->server_wait = DVOICE_TSTAMP_NONE / 2;
      cfg->endpoint_wait = DVOICE_TSTAMP_NONE;
      cfg->backoff_base = (dvoice_tstamp)1 << 62;
      cfg->backoff_max = DVOICE_TSTAMP_NONE - 1;
      break;
    case 3:
      cfg->backoff_base = 3 * DVOICE_SECONDS;
      cfg->backoff_max = 7 * DVOICE_SECONDS;
      break;
  }
  cfg->max_sessions = (v >> 2) & 7; /* 0: the default */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dvoice_env env;
  dv_join_config cfg;
  fz *z;
  dv_rd r;
  uint8_t c0;

  if (size < 1) {
    return 0;
  }
  z = calloc(1, sizeof(*z));
  if (z == NULL) {
    abort();
  }
  g_z = z;
  dvoice_env_default(&env);
  env.log = log_cb;
  env.log_level = DVOICE_LOG_DEBUG;
  dv_rd_init(&r, data, size);
  (void)dv_rd_u8(&r, &c0);
  config_for(&cfg, c0);
  if (dv_join_init(&z->j, &cfg, &env) != 0) {
    abort();
  }
  check(dv_join_get_state(&z->j) == DV_JOIN_IDLE &&
            dv_join_get_expiry(&z->j) == DVOICE_TSTAMP_NONE,
        "init");
  while (dv_rd_left(&r) > 0) {
    uint8_t cmd, u8, f;
    uint16_t u16;
    uint32_t u32;
    const uint8_t *p;
    size_t n;
    dv_join_state pre = dv_join_get_state(&z->j);
    int rv;
    z->step++;
    (void)dv_rd_u8(&r, &cmd);
    switch (cmd % 12) {
      case 0:
        if (dv_rd_u8(&r, &u8) != 0 || dv_rd_u8(&r, &f) != 0) {
          break;
        }
        rv = dv_join_start(&z->j, channels[u8 & 3], f & 1, f & 2, z->now);
        if ((u8 & 3) == 0) {
          check(rv == DVOICE_ERR_INVALID_ARGUMENT, "join channel 0");
        } else {
          if (rv == 0) {
            z->want = channels[u8 & 3];
          }
          check(rv == (pre == DV_JOIN_ENDED ? DVOICE_ERR_INVALID_STATE : 0),
                "join rv");
        }
        drain(z, pre, 0);
        break;
      case 1:
        rv = dv_join_leave(&z->j, z->now);
        check(rv == (pre == DV_JOIN_ENDED ? DVOICE_ERR_INVALID_STATE : 0),
              "leave rv");
        drain(z, pre, 0);
        break;
      case 2:
      case 3:
        if (dv_rd_u16(&r, &u16) != 0) {
          break;
        }
        n = u16 < dv_rd_left(&r) ? u16 : dv_rd_left(&r);
        (void)dv_rd_bytes(&r, &p, n);
        if (cmd % 12 == 2) {
          feed_state(z, (const char *)p, n);
        } else {
          feed_server(z, (const char *)p, n);
        }
        break;
      case 4:
        if (dv_rd_u8(&r, &u8) == 0) {
          canned_state(z, u8);
        }
        break;
      case 5:
        if (dv_rd_u8(&r, &u8) == 0) {
          canned_server(z, u8);
        }
        break;
      case 6:
        if (dv_rd_u16(&r, &u16) == 0) {
          advance(z, z->now + (dvoice_tstamp)u16 * DVOICE_MS);
        }
        break;
      case 7:
        if (dv_rd_u8(&r, &u8) == 0) {
          advance(z, z->now + (dvoice_tstamp)u8 * DVOICE_SECONDS);
        }
        break;
      case 8:
        if (dv_rd_u8(&r, &u8) != 0) {
          break;
        }
        if (u8 < 128) {
          conn_state(
              z, conn_state_for(close_codes[u8 % (sizeof(close_codes) /
                                                  sizeof(close_codes[0]))]));
        } else if (dv_rd_u16(&r, &u16) == 0) {
          conn_state(z, conn_state_for(u16));
        }
        break;
      case 9:
        if (dv_rd_u8(&r, &u8) == 0) {
          conn_state(z, u8 % 8);
        }
        break;
      case 10:
        if (dv_join_get_expiry(&z->j) != DVOICE_TSTAMP_NONE) {
          advance(z, dv_join_get_expiry(&z->j));
        }
        break;
      case 11:
        if (dv_rd_u32(&r, &u32) == 0) {
          advance(z, z->now + (dvoice_tstamp)u32 * DVOICE_SECONDS);
        }
        break;
    }
  }
  dv_join_free(&z->j);
  check(zeroed(z->j.used_token, sizeof(z->j.used_token)) &&
            zeroed(&z->j.cur, sizeof(z->j.cur)),
        "credentials not wiped");
  g_z = NULL;
  free(z);
  return 0;
}
