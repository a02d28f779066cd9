#include "dv_gateway.h"

#include <string.h>

#include "json/dv_json.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"

/* Main gateway opcodes (reference 1.1). */
enum {
  OP_DISPATCH = 0,
  OP_HEARTBEAT = 1,
  OP_IDENTIFY = 2,
  OP_VOICE_STATE = 4,
  OP_RESUME = 6,
  OP_RECONNECT = 7,
  OP_INVALID_SESSION = 9,
  OP_HELLO = 10,
  OP_HEARTBEAT_ACK = 11
};

/* Close codes we send: 4000 keeps the session resumable, 1000 ends it. */
enum { CLOSE_RESUMABLE = 4000, CLOSE_NORMAL = 1000 };

/* A Hello interval outside [10 ms, 10 min] is not a plausible server. */
#define HB_MIN_MS 10.0
#define HB_MAX_MS 600000.0
#define CRED_MAX 512
#define URL_QUERY "?v=10&encoding=json"

const char *dv_gw_state_name(dv_gw_state s) {
  switch (s) {
    case DV_GW_IDLE:
      return "IDLE";
    case DV_GW_CONNECTING:
      return "CONNECTING";
    case DV_GW_HELLO_WAIT:
      return "HELLO_WAIT";
    case DV_GW_IDENTIFYING:
      return "IDENTIFYING";
    case DV_GW_RESUMING:
      return "RESUMING";
    case DV_GW_INVALID_WAIT:
      return "INVALID_WAIT";
    case DV_GW_READY:
      return "READY";
    case DV_GW_BACKOFF:
      return "BACKOFF";
    case DV_GW_DISCONNECTED:
      return "DISCONNECTED";
  }
  return "?";
}

const char *dv_gw_reason_name(dv_gw_reason r) {
  switch (r) {
    case DV_GW_REASON_NONE:
      return "none";
    case DV_GW_REASON_CLOSED:
      return "closed";
    case DV_GW_REASON_ZOMBIE:
      return "zombie";
    case DV_GW_REASON_RECONNECT_OP:
      return "reconnect requested";
    case DV_GW_REASON_INVALID_SESSION:
      return "invalid session";
    case DV_GW_REASON_HANDSHAKE_TIMEOUT:
      return "handshake timeout";
    case DV_GW_REASON_PROTOCOL_ERROR:
      return "protocol error";
    case DV_GW_REASON_RETRIES_EXHAUSTED:
      return "retries exhausted";
    case DV_GW_REASON_FATAL_CODE:
      return "fatal close code";
    case DV_GW_REASON_APP_CLOSED:
      return "closed by the application";
    case DV_GW_REASON_NOMEM:
      return "out of memory";
  }
  return "?";
}

dv_gw_action dv_gw_policy_for(int code) {
  switch (code) {
    case 4003: /* not authenticated, or the session was invalidated */
    case 4007: /* invalid seq on resume */
    case 4009: /* session timed out */
      return DV_GW_ACT_REIDENTIFY;
    case 4004: /* authentication failed */
    case 4010: /* invalid shard */
    case 4011: /* sharding required */
    case 4012: /* invalid API version */
    case 4013: /* invalid intents */
    case 4014: /* disallowed intents */
      return DV_GW_ACT_FATAL;
    default:
      /* No code, 1000..3999, 4000/4001/4002/4005/4008 and unknown codes:
       * the session may still be alive, so try to resume it. */
      return DV_GW_ACT_RESUME;
  }
}

/* ---- queues ------------------------------------------------------------- */

static void msg_free(dv_gw *gw, dv_gw_msg *m) {
  if (m->data != NULL) {
    dv_free_secret(gw->env.mem, m->data, m->len);
  }
  memset(m, 0, sizeof(*m));
}

static void fifo_clear(dv_gw *gw, dv_gw_fifo *f) {
  for (size_t i = f->head; i < f->len; i++) {
    msg_free(gw, &f->m[i]);
  }
  f->head = f->len = 0;
}

static size_t fifo_count(const dv_gw_fifo *f) {
  return f->len - f->head;
}

/* Moves |b|'s storage into |f|; on failure |b| is wiped and freed. */
static int fifo_push(dv_gw *gw, dv_gw_fifo *f, dv_buf *b) {
  if (f->head > 0 && f->len == f->cap) {
    memmove(f->m, f->m + f->head, (f->len - f->head) * sizeof(*f->m));
    f->len -= f->head;
    f->head = 0;
  }
  if (f->len == f->cap) {
    size_t ncap = f->cap ? f->cap * 2 : 8;
    dv_gw_msg *nm = dv_realloc(gw->env.mem, f->m, ncap * sizeof(*nm));
    if (nm == NULL) {
      dv_buf_free_secret(b);
      return DVOICE_ERR_NOMEM;
    }
    f->m = nm;
    f->cap = ncap;
  }
  f->m[f->len].data = b->data;
  f->m[f->len].len = b->len;
  f->len++;
  dv_buf_init(b, gw->env.mem);
  return 0;
}

static int fifo_pop(dv_gw_fifo *f, dv_gw_msg *out) {
  if (f->head == f->len) {
    return 0;
  }
  *out = f->m[f->head++];
  if (f->head == f->len) {
    f->head = f->len = 0;
  }
  return 1;
}

/* ---- rate limit --------------------------------------------------------- */

static void rate_prune(dv_gw *gw, dvoice_tstamp ts) {
  while (gw->sent_n > 0 &&
         gw->sent_at[gw->sent_head] + DV_GW_RATE_WINDOW <= ts) {
    gw->sent_head = (gw->sent_head + 1) % DV_GW_RATE_LIMIT;
    gw->sent_n--;
  }
}

static void rate_record(dv_gw *gw, dvoice_tstamp ts) {
  if (gw->sent_n == DV_GW_RATE_LIMIT) {
    /* Only a heartbeat gets here (the reserve is exhausted): forget the
     * oldest entry rather than refuse to beat. */
    gw->sent_head = (gw->sent_head + 1) % DV_GW_RATE_LIMIT;
    gw->sent_n--;
  }
  gw->sent_at[(gw->sent_head + gw->sent_n) % DV_GW_RATE_LIMIT] = ts;
  gw->sent_n++;
}

/* When the next queued op 4 may go out (NONE: nothing is waiting on the
 * window). */
static dvoice_tstamp rate_release_at(const dv_gw *gw) {
  const size_t budget = DV_GW_RATE_LIMIT - DV_GW_RATE_RESERVED;
  size_t k;
  if (gw->state != DV_GW_READY || fifo_count(&gw->pending) == 0 ||
      gw->sent_n < budget) {
    return DVOICE_TSTAMP_NONE;
  }
  /* The (sent_n - budget)-th oldest entry must leave the window. */
  k = gw->sent_n - budget;
  return gw->sent_at[(gw->sent_head + k) % DV_GW_RATE_LIMIT] +
         DV_GW_RATE_WINDOW;
}

/* Queues |b| for sending now and counts it against the window. */
static int send_now(dv_gw *gw, dv_buf *b, int rv, dvoice_tstamp ts) {
  if (rv != 0) {
    dv_buf_free_secret(b);
    return rv;
  }
  rate_prune(gw, ts);
  rv = fifo_push(gw, &gw->out, b);
  if (rv == 0) {
    rate_record(gw, ts);
  }
  return rv;
}

/* Releases queued op 4 messages while the session is up and the window has
 * room outside the heartbeat reserve. */
static int pump(dv_gw *gw, dvoice_tstamp ts) {
  dv_gw_msg m;
  dv_buf b;
  int rv;
  if (gw->state != DV_GW_READY || gw->in_callback) {
    return 0;
  }
  rate_prune(gw, ts);
  while (gw->sent_n < DV_GW_RATE_LIMIT - DV_GW_RATE_RESERVED &&
         fifo_pop(&gw->pending, &m)) {
    b.data = m.data;
    b.len = m.len;
    b.cap = m.len;
    b.mem = gw->env.mem;
    rv = fifo_push(gw, &gw->out, &b);
    if (rv != 0) {
      return rv;
    }
    rate_record(gw, ts);
  }
  return 0;
}

/* ---- events ------------------------------------------------------------- */

static void emit(dv_gw *gw, dv_gw_event *ev) {
  gw->in_callback++;
  gw->cb.on_event(gw, ev, gw->user_data);
  gw->in_callback--;
}

static int state_has_deadline(dv_gw_state s) {
  return s == DV_GW_BACKOFF || s == DV_GW_INVALID_WAIT;
}

static void set_state(dv_gw *gw, dv_gw_state s, dv_gw_reason reason, int code) {
  dv_gw_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_STATE;
  ev.u.state.old_state = gw->state;
  ev.u.state.state = s;
  ev.u.state.reason = reason;
  ev.u.state.close_code = code;
  ev.u.state.deadline =
      state_has_deadline(s) ? gw->deadline : DVOICE_TSTAMP_NONE;
  gw->state = s;
  if (reason != DV_GW_REASON_NONE) {
    DV_INFO(&gw->env, "gateway: %s -> %s (%s, close code %d)",
            dv_gw_state_name(ev.u.state.old_state), dv_gw_state_name(s),
            dv_gw_reason_name(reason), code);
  } else {
    DV_DEBUG(&gw->env, "gateway: %s -> %s",
             dv_gw_state_name(ev.u.state.old_state), dv_gw_state_name(s));
  }
  emit(gw, &ev);
}

static int ws_open(const dv_gw *gw) {
  switch (gw->state) {
    case DV_GW_HELLO_WAIT:
    case DV_GW_IDENTIFYING:
    case DV_GW_RESUMING:
    case DV_GW_INVALID_WAIT:
    case DV_GW_READY:
      return 1;
    case DV_GW_IDLE:
    case DV_GW_CONNECTING:
    case DV_GW_BACKOFF:
    case DV_GW_DISCONNECTED:
      break;
  }
  return 0;
}

static int ws_present(const dv_gw *gw) {
  return ws_open(gw) || gw->state == DV_GW_CONNECTING;
}

static void emit_close_ws(dv_gw *gw, int code) {
  dv_gw_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_CLOSE_WS;
  ev.u.close_ws.code = code;
  emit(gw, &ev);
}

/* Forgets everything tied to one WebSocket. */
static void drop_ws(dv_gw *gw, dvoice_tstamp ts) {
  fifo_clear(gw, &gw->out);
  gw->hb_interval = 0;
  gw->hb_next = DVOICE_TSTAMP_NONE;
  gw->hb_pending = 0;
  gw->sent_n = 0;
  gw->sent_head = 0;
  if (gw->ready_since != DVOICE_TSTAMP_NONE &&
      ts - gw->ready_since >= gw->cfg.stable_after) {
    /* A long healthy session is not part of a failure streak. */
    gw->attempts = 0;
  }
  gw->ready_since = DVOICE_TSTAMP_NONE;
}

static void clear_session(dv_gw *gw) {
  dv_free(gw->env.mem, gw->session_id);
  dv_free(gw->env.mem, gw->resume_url);
  gw->session_id = NULL;
  gw->resume_url = NULL;
}

static void go_disconnected(dv_gw *gw, dv_gw_reason reason, int code) {
  fifo_clear(gw, &gw->pending);
  gw->deadline = DVOICE_TSTAMP_NONE;
  set_state(gw, DV_GW_DISCONNECTED, reason, code);
}

static void connect_now(dv_gw *gw, dvoice_tstamp ts) {
  dv_gw_event ev;
  gw->resuming = gw->session_id != NULL;
  gw->deadline = ts + gw->cfg.handshake_timeout;
  set_state(gw, DV_GW_CONNECTING, DV_GW_REASON_NONE, 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_CONNECT;
  ev.u.connect.url = gw->resuming ? gw->resume_url : gw->url;
  ev.u.connect.resume = gw->resuming;
  DV_INFO(&gw->env, "gateway: connecting to %s (%s)", ev.u.connect.url,
          gw->resuming ? "resume" : "identify");
  emit(gw, &ev);
}

/* A uniform draw in [lo, hi] through the random hook. */
static dvoice_tstamp rand_between(dv_gw *gw, dvoice_tstamp lo,
                                  dvoice_tstamp hi) {
  uint32_t r = dv_rand_u32(&gw->env);
  return lo + (dvoice_tstamp)(((hi - lo) / 1000) * (uint64_t)(r % 1001));
}

/*
 * The WS is gone (or being dropped): decide when to reconnect. |delay_kind|
 * 0 = exponential backoff, 1 = at once (op 7), 2 = 1..5 s (op 9).
 */
static void reconnect_later(dv_gw *gw, dv_gw_reason reason, int code,
                            int delay_kind, dvoice_tstamp ts) {
  dvoice_tstamp d;
  drop_ws(gw, ts);
  gw->attempts++;
  if (gw->attempts > gw->cfg.max_attempts) {
    go_disconnected(gw, DV_GW_REASON_RETRIES_EXHAUSTED, code);
    return;
  }
  if (delay_kind == 1 && gw->attempts == 1) {
    d = 0;
  } else if (delay_kind == 2 && gw->attempts == 1) {
    d = rand_between(gw, 1 * DVOICE_SECONDS, 5 * DVOICE_SECONDS);
  } else {
    d = gw->cfg.backoff_base;
    for (int i = 1; i < gw->attempts && d < gw->cfg.backoff_max; i++) {
      d = d > gw->cfg.backoff_max / 2 ? gw->cfg.backoff_max : d * 2;
    }
    if (d > gw->cfg.backoff_max) {
      d = gw->cfg.backoff_max;
    }
    d = rand_between(gw, d / 2, d);
  }
  gw->deadline = ts + d;
  set_state(gw, DV_GW_BACKOFF, reason, code);
}

/* We drop the WS ourselves and reconnect (resuming when possible). */
static void fail_ws(dv_gw *gw, dv_gw_reason reason, int delay_kind,
                    dvoice_tstamp ts) {
  emit_close_ws(gw, CLOSE_RESUMABLE);
  reconnect_later(gw, reason, 0, delay_kind, ts);
}

static int fail_nomem(dv_gw *gw, dvoice_tstamp ts) {
  if (ws_present(gw)) {
    emit_close_ws(gw, CLOSE_RESUMABLE);
  }
  drop_ws(gw, ts);
  go_disconnected(gw, DV_GW_REASON_NOMEM, 0);
  return DVOICE_ERR_NOMEM;
}

/* ---- outgoing messages -------------------------------------------------- */

static int send_heartbeat(dv_gw *gw, dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, gw->env.mem);
  if (gw->seq >= 0) {
    rv = dv_buf_appendf(&b, "{\"op\":1,\"d\":%lld}", (long long)gw->seq);
  } else {
    rv = dv_buf_append_str(&b, "{\"op\":1,\"d\":null}");
  }
  rv = send_now(gw, &b, rv, ts);
  if (rv == 0) {
    gw->hb_pending = 1;
    gw->hb_sent_at = ts;
  }
  return rv;
}

static int send_identify(dv_gw *gw, dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, gw->env.mem);
  rv = dv_buf_append_str(&b, "{\"op\":2,\"d\":{\"token\":");
  if (rv == 0) {
    rv = dv_json_append_str(&b, gw->token, strlen(gw->token));
  }
  if (rv == 0) {
    rv = dv_buf_appendf(&b, ",\"intents\":%lu,\"properties\":{\"os\":",
                        (unsigned long)gw->cfg.intents);
  }
  if (rv == 0) {
    rv = dv_json_append_str(&b, gw->os, strlen(gw->os));
  }
  if (rv == 0) {
    rv =
        dv_buf_append_str(&b, ",\"browser\":\"dvoice\",\"device\":\"dvoice\"}");
  }
  if (rv == 0 && gw->cfg.has_shard) {
    rv = dv_buf_appendf(&b, ",\"shard\":[%lu,%lu]",
                        (unsigned long)gw->cfg.shard_id,
                        (unsigned long)gw->cfg.shard_count);
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, "}}");
  }
  return send_now(gw, &b, rv, ts);
}

static int send_resume(dv_gw *gw, dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, gw->env.mem);
  rv = dv_buf_append_str(&b, "{\"op\":6,\"d\":{\"token\":");
  if (rv == 0) {
    rv = dv_json_append_str(&b, gw->token, strlen(gw->token));
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, ",\"session_id\":");
  }
  if (rv == 0) {
    rv = dv_json_append_str(&b, gw->session_id, strlen(gw->session_id));
  }
  if (rv == 0) {
    rv = gw->seq >= 0
             ? dv_buf_appendf(&b, ",\"seq\":%lld}}", (long long)gw->seq)
             : dv_buf_append_str(&b, ",\"seq\":null}}");
  }
  return send_now(gw, &b, rv, ts);
}

/* ---- incoming messages -------------------------------------------------- */

static int printable(const char *s, size_t len, size_t max) {
  if (len == 0 || len > max) {
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
      return 0;
    }
  }
  return 1;
}

static int on_hello(dv_gw *gw, const json_t *d, dvoice_tstamp ts) {
  double ms;
  uint64_t us;
  uint32_t r;
  int rv;
  if (gw->state != DV_GW_HELLO_WAIT || d == NULL ||
      dv_json_get_number(d, "heartbeat_interval", HB_MIN_MS, HB_MAX_MS, &ms) !=
          0) {
    return DVOICE_ERR_PROTO;
  }
  us = (uint64_t)(ms * 1000.0);
  gw->hb_interval = us * 1000;
  /* First beat after interval * jitter, jitter in [0, 1) (reference 1.1). */
  r = dv_rand_u32(&gw->env);
  gw->hb_next = ts + ((us * (uint64_t)r) >> 32) * 1000;
  gw->hb_pending = 0;
  DV_DEBUG(&gw->env, "gateway: hello, heartbeat every %.0f ms", ms);
  if (gw->resuming) {
    rv = send_resume(gw, ts);
    if (rv == 0) {
      set_state(gw, DV_GW_RESUMING, DV_GW_REASON_NONE, 0);
    }
  } else {
    rv = send_identify(gw, ts);
    if (rv == 0) {
      set_state(gw, DV_GW_IDENTIFYING, DV_GW_REASON_NONE, 0);
    }
  }
  return rv;
}

static int on_ready(dv_gw *gw, const json_t *d, dvoice_tstamp ts) {
  const char *sid, *url;
  size_t sid_len, url_len;
  json_t *user;
  uint64_t uid;
  dv_gw_event ev;
  dv_buf b;
  int rv;
  if (gw->state != DV_GW_IDENTIFYING || d == NULL ||
      dv_json_get_str(d, "session_id", &sid, &sid_len) != 0 ||
      !printable(sid, sid_len, 256) ||
      dv_json_get_str(d, "resume_gateway_url", &url, &url_len) != 0 ||
      !printable(url, url_len, CRED_MAX) ||
      (strncmp(url, "wss://", 6) != 0 && strncmp(url, "ws://", 5) != 0) ||
      dv_json_get_object(d, "user", &user) != 0 ||
      dv_json_get_snowflake(user, "id", &uid) != 0) {
    return DVOICE_ERR_PROTO;
  }
  /* READY's own "s" was recorded already; keep it. */
  clear_session(gw);
  dv_buf_init(&b, gw->env.mem);
  rv = dv_buf_append(&b, url, url_len);
  if (rv == 0 && memchr(url, '?', url_len) == NULL) {
    rv = dv_buf_append_str(&b,
                           url[url_len - 1] == '/' ? URL_QUERY : "/" URL_QUERY);
  }
  if (rv == 0) {
    rv = dv_buf_push(&b, 0);
  }
  gw->session_id = dv_memdup(gw->env.mem, sid, sid_len + 1);
  if (rv != 0 || gw->session_id == NULL) {
    dv_buf_free(&b);
    return DVOICE_ERR_NOMEM;
  }
  gw->resume_url = (char *)b.data;
  gw->user_id = uid;
  gw->deadline = DVOICE_TSTAMP_NONE;
  gw->ready_since = ts;
  set_state(gw, DV_GW_READY, DV_GW_REASON_NONE, 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_READY;
  ev.u.ready.session_id = gw->session_id;
  ev.u.ready.resume_gateway_url = gw->resume_url;
  ev.u.ready.user_id = uid;
  emit(gw, &ev);
  return 0;
}

static int on_voice_state(dv_gw *gw, const json_t *d) {
  dv_gw_event ev;
  const json_t *g, *c;
  size_t sid_len;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_VOICE_STATE;
  if (!json_is_object(d)) {
    return DVOICE_ERR_PROTO;
  }
  g = json_object_get(d, "guild_id");
  if (g != NULL && !json_is_null(g) &&
      dv_json_snowflake_value(g, &ev.u.voice_state.guild_id) != 0) {
    return DVOICE_ERR_PROTO;
  }
  c = json_object_get(d, "channel_id");
  if (c == NULL) {
    return DVOICE_ERR_PROTO;
  }
  if (!json_is_null(c)) {
    if (dv_json_snowflake_value(c, &ev.u.voice_state.channel_id) != 0) {
      return DVOICE_ERR_PROTO;
    }
    ev.u.voice_state.has_channel = 1;
  }
  if (dv_json_get_snowflake(d, "user_id", &ev.u.voice_state.user_id) != 0 ||
      dv_json_get_str(d, "session_id", &ev.u.voice_state.session_id,
                      &sid_len) != 0 ||
      !printable(ev.u.voice_state.session_id, sid_len, 256)) {
    return DVOICE_ERR_PROTO;
  }
  emit(gw, &ev);
  return 0;
}

static int on_voice_server(dv_gw *gw, const json_t *d) {
  dv_gw_event ev;
  const json_t *e;
  size_t tlen;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_GW_EV_VOICE_SERVER;
  if (!json_is_object(d) ||
      dv_json_get_str(d, "token", &ev.u.voice_server.token, &tlen) != 0 ||
      !printable(ev.u.voice_server.token, tlen, CRED_MAX) ||
      dv_json_get_snowflake(d, "guild_id", &ev.u.voice_server.guild_id) != 0) {
    return DVOICE_ERR_PROTO;
  }
  e = json_object_get(d, "endpoint");
  if (e == NULL) {
    return DVOICE_ERR_PROTO;
  }
  if (!json_is_null(e)) {
    if (!json_is_string(e) ||
        !printable(json_string_value(e), json_string_length(e), CRED_MAX)) {
      return DVOICE_ERR_PROTO;
    }
    ev.u.voice_server.endpoint = json_string_value(e);
  }
  emit(gw, &ev);
  return 0;
}

static int on_raw_dispatch(dv_gw *gw, const char *name, const json_t *d) {
  int rv;
  if (gw->cb.on_dispatch == NULL) {
    return 0;
  }
  dv_buf_reset(&gw->scratch);
  rv = d != NULL ? dv_json_append_value(&gw->scratch, d)
                 : dv_buf_append_str(&gw->scratch, "null");
  if (rv == 0) {
    rv = dv_buf_push(&gw->scratch, 0);
  }
  if (rv != 0) {
    return rv == DVOICE_ERR_NOMEM ? rv : DVOICE_ERR_PROTO;
  }
  gw->in_callback++;
  gw->cb.on_dispatch(gw, name, (const char *)gw->scratch.data,
                     gw->scratch.len - 1, gw->user_data);
  gw->in_callback--;
  return 0;
}

/* Outcome of one message: 0, or an error that drops the WS (|fatal| set),
 * or an error that only drops the event. */
static int on_dispatch(dv_gw *gw, const dv_json_envelope *e, int *fatal,
                       dvoice_tstamp ts) {
  int rv;
  if (e->t == NULL) {
    *fatal = 1;
    return DVOICE_ERR_PROTO;
  }
  if (e->has_seq) {
    gw->seq = e->seq;
  }
  if (strcmp(e->t, "READY") == 0) {
    rv = on_ready(gw, e->d, ts);
    *fatal = rv != 0;
    return rv;
  }
  if (strcmp(e->t, "RESUMED") == 0) {
    dv_gw_event ev;
    if (gw->state != DV_GW_RESUMING) {
      *fatal = 1;
      return DVOICE_ERR_PROTO;
    }
    gw->deadline = DVOICE_TSTAMP_NONE;
    gw->ready_since = ts;
    set_state(gw, DV_GW_READY, DV_GW_REASON_NONE, 0);
    memset(&ev, 0, sizeof(ev));
    ev.type = DV_GW_EV_RESUMED;
    emit(gw, &ev);
    return 0;
  }
  if (gw->state == DV_GW_IDENTIFYING || gw->state == DV_GW_HELLO_WAIT) {
    /* READY is the first dispatch of a session. */
    *fatal = 1;
    return DVOICE_ERR_PROTO;
  }
  if (strcmp(e->t, "VOICE_STATE_UPDATE") == 0) {
    rv = on_voice_state(gw, e->d);
  } else if (strcmp(e->t, "VOICE_SERVER_UPDATE") == 0) {
    rv = on_voice_server(gw, e->d);
  } else {
    rv = on_raw_dispatch(gw, e->t, e->d);
  }
  if (rv == DVOICE_ERR_PROTO) {
    gw->dropped_dispatches++;
    DV_WARN(&gw->env, "gateway: malformed %s dropped", e->t);
  }
  *fatal = rv == DVOICE_ERR_NOMEM;
  return rv;
}

static int on_invalid_session(dv_gw *gw, const json_t *d, dvoice_tstamp ts) {
  switch (gw->state) {
    case DV_GW_IDENTIFYING:
    case DV_GW_RESUMING:
    case DV_GW_READY:
      break;
    case DV_GW_IDLE:
    case DV_GW_CONNECTING:
    case DV_GW_HELLO_WAIT:
    case DV_GW_INVALID_WAIT:
    case DV_GW_BACKOFF:
    case DV_GW_DISCONNECTED:
      return DVOICE_ERR_PROTO;
  }
  if (!json_is_boolean(d)) {
    return DVOICE_ERR_PROTO;
  }
  if (json_is_true(d) && gw->session_id != NULL) {
    /* Resumable: a new connection resumes after a short random wait. */
    emit_close_ws(gw, CLOSE_RESUMABLE);
    reconnect_later(gw, DV_GW_REASON_INVALID_SESSION, 0, 2, ts);
    return 0;
  }
  /* Not resumable: Identify again on this connection after 1..5 s. */
  clear_session(gw);
  gw->seq = -1;
  gw->ready_since = DVOICE_TSTAMP_NONE;
  gw->deadline = ts + rand_between(gw, 1 * DVOICE_SECONDS, 5 * DVOICE_SECONDS);
  set_state(gw, DV_GW_INVALID_WAIT, DV_GW_REASON_INVALID_SESSION, 0);
  return 0;
}

static int check_api(const dv_gw *gw) {
  return gw->in_callback ? DVOICE_ERR_INVALID_STATE : 0;
}

int dv_gw_on_text(dv_gw *gw, const char *json, size_t len, dvoice_tstamp ts) {
  dv_json_envelope e;
  int rv, fatal = 1;
  if (gw == NULL || (json == NULL && len > 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0 || !ws_open(gw)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_json_envelope_parse(&e, json, len, "s");
  if (rv == DVOICE_ERR_NOMEM) {
    return fail_nomem(gw, ts);
  }
  if (rv == 0) {
    switch (e.op) {
      case OP_HELLO:
        rv = on_hello(gw, e.d, ts);
        break;
      case OP_HEARTBEAT_ACK:
        if (gw->hb_interval == 0) {
          rv = DVOICE_ERR_PROTO;
        } else if (gw->hb_pending) {
          dv_gw_event ev;
          gw->hb_pending = 0;
          memset(&ev, 0, sizeof(ev));
          ev.type = DV_GW_EV_HEARTBEAT_ACK;
          ev.u.ack.rtt = ts - gw->hb_sent_at;
          emit(gw, &ev);
        }
        break;
      case OP_HEARTBEAT:
        /* The server asks for a beat now (reference 1.1 point 3). */
        rv = gw->hb_interval == 0 ? DVOICE_ERR_PROTO : send_heartbeat(gw, ts);
        break;
      case OP_RECONNECT:
        fail_ws(gw, DV_GW_REASON_RECONNECT_OP, 1, ts);
        break;
      case OP_INVALID_SESSION:
        rv = on_invalid_session(gw, e.d, ts);
        break;
      case OP_DISPATCH:
        rv = on_dispatch(gw, &e, &fatal, ts);
        break;
      default:
        DV_WARN(&gw->env, "gateway: unexpected op %d", e.op);
        rv = DVOICE_ERR_PROTO;
        break;
    }
  }
  dv_json_envelope_free(&e);
  if (rv == DVOICE_ERR_NOMEM) {
    return fail_nomem(gw, ts);
  }
  if (rv != 0 && fatal && ws_open(gw)) {
    DV_WARN(&gw->env, "gateway: protocol error in state %s",
            dv_gw_state_name(gw->state));
    fail_ws(gw, DV_GW_REASON_PROTOCOL_ERROR, 0, ts);
  }
  if (pump(gw, ts) != 0) {
    return fail_nomem(gw, ts);
  }
  return rv;
}

int dv_gw_on_open(dv_gw *gw, dvoice_tstamp ts) {
  (void)ts;
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0 || gw->state != DV_GW_CONNECTING) {
    return DVOICE_ERR_INVALID_STATE;
  }
  set_state(gw, DV_GW_HELLO_WAIT, DV_GW_REASON_NONE, 0);
  return 0;
}

int dv_gw_on_close(dv_gw *gw, int code, dvoice_tstamp ts) {
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0 || !ws_present(gw)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  switch (dv_gw_policy_for(code)) {
    case DV_GW_ACT_FATAL:
      drop_ws(gw, ts);
      go_disconnected(gw, DV_GW_REASON_FATAL_CODE, code);
      return 0;
    case DV_GW_ACT_REIDENTIFY:
      clear_session(gw);
      gw->seq = -1;
      break;
    case DV_GW_ACT_RESUME:
      break;
  }
  reconnect_later(gw, DV_GW_REASON_CLOSED, code, 0, ts);
  return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

void dv_gw_config_default(dv_gw_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->intents = DV_GW_INTENT_GUILDS | DV_GW_INTENT_GUILD_VOICE_STATES;
}

int dv_gw_init(dv_gw *gw, const dv_gw_config *cfg, const dv_gw_callbacks *cb,
               const dvoice_env *env, void *user_data) {
  const char *url, *os;
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(gw, 0, sizeof(*gw));
  if (cfg == NULL || cb == NULL || cb->on_event == NULL ||
      dv_env_check(env) != 0 || cfg->token == NULL ||
      !printable(cfg->token, strlen(cfg->token), CRED_MAX)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  url = cfg->url != NULL ? cfg->url : DV_GW_DEFAULT_URL;
  os = cfg->os != NULL ? cfg->os : "linux";
  if (!printable(url, strlen(url), CRED_MAX) ||
      (strncmp(url, "wss://", 6) != 0 && strncmp(url, "ws://", 5) != 0) ||
      !printable(os, strlen(os), 64) ||
      (cfg->has_shard && cfg->shard_id >= cfg->shard_count) ||
      cfg->max_attempts < 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  gw->env = *env;
  gw->cb = *cb;
  gw->user_data = user_data;
  gw->cfg = *cfg;
  gw->cfg.intents |= DV_GW_INTENT_GUILDS | DV_GW_INTENT_GUILD_VOICE_STATES;
#define DEF(f, v)                                                              \
  if (gw->cfg.f == 0)                                                          \
  gw->cfg.f = (v)
  DEF(backoff_base, 1 * DVOICE_SECONDS);
  DEF(backoff_max, 60 * DVOICE_SECONDS);
  DEF(max_attempts, 10);
  DEF(handshake_timeout, 30 * DVOICE_SECONDS);
  DEF(stable_after, 60 * DVOICE_SECONDS);
  DEF(max_queue, 1000);
#undef DEF
  gw->seq = -1;
  gw->state = DV_GW_IDLE;
  gw->deadline = DVOICE_TSTAMP_NONE;
  gw->ready_since = DVOICE_TSTAMP_NONE;
  gw->hb_next = DVOICE_TSTAMP_NONE;
  dv_buf_init(&gw->scratch, env->mem);
  gw->token = dv_strdup(env->mem, cfg->token);
  gw->url = dv_strdup(env->mem, url);
  gw->os = dv_strdup(env->mem, os);
  if (gw->token == NULL || gw->url == NULL || gw->os == NULL) {
    dv_gw_free(gw);
    return DVOICE_ERR_NOMEM;
  }
  gw->cfg.token = gw->cfg.url = gw->cfg.os = NULL;
  return 0;
}

void dv_gw_free(dv_gw *gw) {
  if (gw == NULL) {
    return;
  }
  fifo_clear(gw, &gw->out);
  fifo_clear(gw, &gw->pending);
  dv_free(gw->env.mem, gw->out.m);
  dv_free(gw->env.mem, gw->pending.m);
  gw->out.m = gw->pending.m = NULL;
  gw->out.cap = gw->pending.cap = 0;
  msg_free(gw, &gw->cur);
  if (gw->token != NULL) {
    dv_free_secret(gw->env.mem, gw->token, strlen(gw->token));
    gw->token = NULL;
  }
  dv_free(gw->env.mem, gw->url);
  dv_free(gw->env.mem, gw->os);
  gw->url = gw->os = NULL;
  clear_session(gw);
  dv_buf_free(&gw->scratch);
}

int dv_gw_start(dv_gw *gw, dvoice_tstamp ts) {
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0 || gw->state != DV_GW_IDLE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  connect_now(gw, ts);
  return 0;
}

int dv_gw_update_voice_state(dv_gw *gw, uint64_t guild_id, uint64_t channel_id,
                             int self_mute, int self_deaf, dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  if (gw == NULL || guild_id == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (gw->state == DV_GW_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (fifo_count(&gw->pending) >= gw->cfg.max_queue) {
    return DVOICE_ERR_NOBUF;
  }
  dv_buf_init(&b, gw->env.mem);
  rv = dv_buf_append_str(&b, "{\"op\":4,\"d\":{\"guild_id\":");
  if (rv == 0) {
    rv = dv_json_append_snowflake(&b, guild_id);
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, ",\"channel_id\":");
  }
  if (rv == 0) {
    rv = channel_id != 0 ? dv_json_append_snowflake(&b, channel_id)
                         : dv_buf_append_str(&b, "null");
  }
  if (rv == 0) {
    rv = dv_buf_appendf(&b, ",\"self_mute\":%s,\"self_deaf\":%s}}",
                        self_mute ? "true" : "false",
                        self_deaf ? "true" : "false");
  }
  if (rv != 0) {
    dv_buf_free(&b);
    return rv;
  }
  rv = fifo_push(gw, &gw->pending, &b);
  if (rv == 0) {
    rv = pump(gw, ts);
  }
  return rv;
}

int dv_gw_close(dv_gw *gw, dvoice_tstamp ts) {
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0 || gw->state == DV_GW_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (ws_present(gw)) {
    emit_close_ws(gw, CLOSE_NORMAL);
  }
  drop_ws(gw, ts);
  go_disconnected(gw, DV_GW_REASON_APP_CLOSED, 0);
  return 0;
}

static dvoice_tstamp min_ts(dvoice_tstamp a, dvoice_tstamp b) {
  return a < b ? a : b;
}

dvoice_tstamp dv_gw_get_expiry(const dv_gw *gw) {
  dvoice_tstamp e = DVOICE_TSTAMP_NONE;
  switch (gw->state) {
    case DV_GW_CONNECTING:
    case DV_GW_HELLO_WAIT:
    case DV_GW_IDENTIFYING:
    case DV_GW_RESUMING:
    case DV_GW_INVALID_WAIT:
    case DV_GW_BACKOFF:
      e = gw->deadline;
      break;
    case DV_GW_READY:
    case DV_GW_IDLE:
    case DV_GW_DISCONNECTED:
      break;
  }
  if (ws_open(gw) && gw->hb_interval != 0) {
    e = min_ts(e, gw->hb_next);
  }
  return min_ts(e, rate_release_at(gw));
}

int dv_gw_handle_expiry(dv_gw *gw, dvoice_tstamp ts) {
  int rv = 0;
  if (gw == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (check_api(gw) != 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (ws_open(gw) && gw->hb_interval != 0 && ts >= gw->hb_next) {
    if (gw->hb_pending) {
      DV_WARN(&gw->env, "gateway: no heartbeat ACK, reconnecting");
      fail_ws(gw, DV_GW_REASON_ZOMBIE, 0, ts);
    } else {
      rv = send_heartbeat(gw, ts);
      gw->hb_next += gw->hb_interval;
      if (gw->hb_next <= ts) {
        gw->hb_next = ts + gw->hb_interval;
      }
    }
  }
  if (rv == 0 && gw->deadline != DVOICE_TSTAMP_NONE && ts >= gw->deadline) {
    switch (gw->state) {
      case DV_GW_CONNECTING:
      case DV_GW_HELLO_WAIT:
      case DV_GW_IDENTIFYING:
      case DV_GW_RESUMING:
        fail_ws(gw, DV_GW_REASON_HANDSHAKE_TIMEOUT, 0, ts);
        break;
      case DV_GW_INVALID_WAIT:
        gw->resuming = 0;
        rv = send_identify(gw, ts);
        if (rv == 0) {
          gw->deadline = ts + gw->cfg.handshake_timeout;
          set_state(gw, DV_GW_IDENTIFYING, DV_GW_REASON_NONE, 0);
        }
        break;
      case DV_GW_BACKOFF:
        connect_now(gw, ts);
        break;
      case DV_GW_READY:
      case DV_GW_IDLE:
      case DV_GW_DISCONNECTED:
        break;
    }
  }
  if (rv == 0) {
    rv = pump(gw, ts);
  }
  return rv == DVOICE_ERR_NOMEM ? fail_nomem(gw, ts) : rv;
}

int dv_gw_next_out(dv_gw *gw, const uint8_t **data, size_t *len) {
  msg_free(gw, &gw->cur);
  if (!fifo_pop(&gw->out, &gw->cur)) {
    return 0;
  }
  *data = gw->cur.data;
  *len = gw->cur.len;
  return 1;
}

dv_gw_state dv_gw_get_state(const dv_gw *gw) {
  return gw->state;
}

const char *dv_gw_session_id(const dv_gw *gw) {
  return gw->session_id;
}

uint64_t dv_gw_user_id(const dv_gw *gw) {
  return gw->user_id;
}

int64_t dv_gw_last_seq(const dv_gw *gw) {
  return gw->seq;
}

size_t dv_gw_pending_count(const dv_gw *gw) {
  return fifo_count(&gw->pending);
}
