#include "dv_voice.h"

#include <arpa/inet.h>
#include <string.h>

#include "json/dv_json.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "util/dv_rw.h"

/* Voice gateway opcodes (reference 2.3). */
enum {
  OP_IDENTIFY = 0,
  OP_SELECT_PROTOCOL = 1,
  OP_READY = 2,
  OP_HEARTBEAT = 3,
  OP_SESSION_DESCRIPTION = 4,
  OP_SPEAKING = 5,
  OP_HEARTBEAT_ACK = 6,
  OP_RESUME = 7,
  OP_HELLO = 8,
  OP_RESUMED = 9,
  OP_CLIENTS_CONNECT = 11,
  OP_CLIENT_DISCONNECT = 13,
  OP_DAVE_PREPARE_TRANSITION = 21,
  OP_DAVE_EXECUTE_TRANSITION = 22,
  OP_DAVE_PREPARE_EPOCH = 24,
  OP_DAVE_FIRST = 21,
  OP_DAVE_LAST = 31
};

/* Close codes we send when we drop the WS ourselves. */
enum { CLOSE_NORMAL = 1000, CLOSE_LOCAL_ERROR = 4000 };

/* Hello's interval must be in [10 ms, 10 min]: anything else is not a
 * plausible server and would make us spin or go silent. */
#define HB_MIN_MS 10.0
#define HB_MAX_MS 600000.0

#define SECRET_KEY_LEN 32
#define CRED_MAX 256

static const char *const mode_names[] = {NULL, "aead_aes256_gcm_rtpsize",
                                         "aead_xchacha20_poly1305_rtpsize"};

const char *dv_voice_mode_name(dv_voice_mode mode) {
  switch (mode) {
    case DV_VOICE_MODE_AES256_GCM_RTPSIZE:
    case DV_VOICE_MODE_XCHACHA20_RTPSIZE:
      return mode_names[mode];
    case DV_VOICE_MODE_NONE:
      break;
  }
  return NULL;
}

const char *dv_voice_state_name(dv_voice_state s) {
  switch (s) {
    case DV_VOICE_IDLE:
      return "IDLE";
    case DV_VOICE_CONNECTING:
      return "CONNECTING";
    case DV_VOICE_IDENTIFYING:
      return "IDENTIFYING";
    case DV_VOICE_UDP_DISCOVERY:
      return "UDP_DISCOVERY";
    case DV_VOICE_SELECTING:
      return "SELECTING";
    case DV_VOICE_READY:
      return "READY";
    case DV_VOICE_RESUMING:
      return "RESUMING";
    case DV_VOICE_BACKOFF:
      return "BACKOFF";
    case DV_VOICE_NEED_SESSION:
      return "NEED_SESSION";
    case DV_VOICE_WAIT_SERVER:
      return "WAIT_SERVER";
    case DV_VOICE_DISCONNECTED:
      return "DISCONNECTED";
  }
  return "?";
}

const char *dv_voice_outcome_name(dv_voice_outcome o) {
  switch (o) {
    case DV_VOICE_OUTCOME_NONE:
      return "NONE";
    case DV_VOICE_OUTCOME_RESUME:
      return "RESUME";
    case DV_VOICE_OUTCOME_NEW_SESSION:
      return "NEW_SESSION";
    case DV_VOICE_OUTCOME_WAIT_SERVER:
      return "WAIT_SERVER";
    case DV_VOICE_OUTCOME_DISCONNECTED:
      return "DISCONNECTED";
    case DV_VOICE_OUTCOME_FATAL:
      return "FATAL";
  }
  return "?";
}

const char *dv_voice_reason_name(dv_voice_reason r) {
  switch (r) {
    case DV_VOICE_REASON_NONE:
      return "none";
    case DV_VOICE_REASON_CLOSED:
      return "closed";
    case DV_VOICE_REASON_ZOMBIE:
      return "zombie";
    case DV_VOICE_REASON_HANDSHAKE_TIMEOUT:
      return "handshake timeout";
    case DV_VOICE_REASON_PROTOCOL_ERROR:
      return "protocol error";
    case DV_VOICE_REASON_NO_COMMON_MODE:
      return "no common mode";
    case DV_VOICE_REASON_RETRIES_EXHAUSTED:
      return "retries exhausted";
    case DV_VOICE_REASON_WAIT_TIMEOUT:
      return "wait timeout";
    case DV_VOICE_REASON_APP_CLOSED:
      return "closed by the application";
    case DV_VOICE_REASON_NOMEM:
      return "out of memory";
  }
  return "?";
}

/* ---- close-code policy (reference 3 and 6.5) ---------------------------- */

typedef struct policy_row {
  int code;
  dv_voice_outcome outcome;
  int max_sessions;
  dv_voice_outcome exhausted;
} policy_row;

#define R DV_VOICE_OUTCOME_RESUME
#define N DV_VOICE_OUTCOME_NEW_SESSION
#define W DV_VOICE_OUTCOME_WAIT_SERVER
#define D DV_VOICE_OUTCOME_DISCONNECTED
#define F DV_VOICE_OUTCOME_FATAL

/* One row per documented voice close code. Codes below 4000 (and 0, no
 * code) resume; unknown 4xxx and above get one new session. */
static const policy_row policy_table[] = {
    /* Our bugs: one new session, then give up. */
    {4001, N, 1, D}, /* unknown opcode */
    {4002, N, 1, D}, /* failed to decode payload */
    {4003, N, 1, D}, /* not authenticated */
    {4004, N, 1, F}, /* authentication failed: stale token, else config */
    {4005, N, 1, D}, /* already authenticated */
    /* The session is gone: new session, bounded by max_session_attempts. */
    {4006, N, 0, D}, /* session no longer valid */
    {4009, N, 0, D}, /* session timeout */
    {4011, N, 0, D}, /* server not found */
    {4012, F, 0, F}, /* unknown protocol: our Select Protocol is wrong */
    {4013, R, 0, D}, /* WebRTC crashed (unofficial): as 4015 */
    {4014, W, 0, D}, /* disconnected: kicked or moved */
    {4015, R, 0, D}, /* voice server crashed: resume */
    {4016, F, 0, F}, /* unknown encryption mode: our mode selection */
    {4017, F, 0, F}, /* DAVE required: fatal unless DAVE is enabled */
    {4020, N, 1, D}, /* bad request */
    {4021, D, 0, D}, /* rate limited: should not reconnect */
    {4022, W, 0, D}, /* call terminated: as 4014 */
};

#undef R
#undef N
#undef W
#undef D
#undef F

dv_voice_policy dv_voice_policy_for(int code, int dave_enabled) {
  dv_voice_policy p;
  if (code < 4000) {
    /* No code, 1000/1001 from the server, 1006 and every other
     * transport-level code: resume (reference 6.5). Our own closes never
     * come back through on_close. */
    p.outcome = DV_VOICE_OUTCOME_RESUME;
    p.max_sessions = 0;
    p.exhausted = DV_VOICE_OUTCOME_DISCONNECTED;
    return p;
  }
  for (size_t i = 0; i < sizeof(policy_table) / sizeof(policy_table[0]); i++) {
    if (policy_table[i].code == code) {
      p.outcome = policy_table[i].outcome;
      p.max_sessions = policy_table[i].max_sessions;
      p.exhausted = policy_table[i].exhausted;
      if (code == 4017 && dave_enabled) {
        /* We did offer DAVE; one new session, never a loop. */
        p.outcome = DV_VOICE_OUTCOME_NEW_SESSION;
        p.max_sessions = 1;
      }
      return p;
    }
  }
  p.outcome = DV_VOICE_OUTCOME_NEW_SESSION;
  p.max_sessions = 1;
  p.exhausted = DV_VOICE_OUTCOME_DISCONNECTED;
  return p;
}

/* ---- small helpers ------------------------------------------------------ */

/* Deadline arithmetic saturates below DVOICE_TSTAMP_NONE, so a huge
 * timestamp or tunable never wraps around into an immediate deadline. */
/* Saturates below NONE, also for a huge |b| (an application's "never"). */
static dvoice_tstamp ts_add(dvoice_tstamp a, dvoice_tstamp b) {
  return b >= DVOICE_TSTAMP_NONE - 1 || a >= DVOICE_TSTAMP_NONE - 1 - b
             ? DVOICE_TSTAMP_NONE - 1
             : a + b;
}

static int ws_open(const dv_voice *v) {
  switch (v->state) {
    case DV_VOICE_IDENTIFYING:
    case DV_VOICE_UDP_DISCOVERY:
    case DV_VOICE_SELECTING:
    case DV_VOICE_READY:
    case DV_VOICE_RESUMING:
      return 1;
    case DV_VOICE_IDLE:
    case DV_VOICE_CONNECTING:
    case DV_VOICE_BACKOFF:
    case DV_VOICE_NEED_SESSION:
    case DV_VOICE_WAIT_SERVER:
    case DV_VOICE_DISCONNECTED:
      break;
  }
  return 0;
}

/* A WS exists or is being opened by the glue. */
static int ws_present(const dv_voice *v) {
  return ws_open(v) || v->state == DV_VOICE_CONNECTING;
}

static void emit(dv_voice *v, dv_voice_event *ev) {
  v->in_callback++;
  v->cb.on_event(v, ev, v->user_data);
  v->in_callback--;
}

static void set_state(dv_voice *v, dv_voice_state s, dv_voice_outcome outcome,
                      dv_voice_reason reason, int close_code) {
  dv_voice_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_STATE;
  ev.u.state.old_state = v->state;
  ev.u.state.state = s;
  ev.u.state.outcome = outcome;
  ev.u.state.reason = reason;
  ev.u.state.close_code = close_code;
  v->state = s;
  switch (s) {
    case DV_VOICE_BACKOFF:
    case DV_VOICE_NEED_SESSION:
    case DV_VOICE_WAIT_SERVER:
      ev.u.state.deadline = v->deadline;
      break;
    default:
      ev.u.state.deadline = DVOICE_TSTAMP_NONE;
      break;
  }
  if (outcome != DV_VOICE_OUTCOME_NONE) {
    DV_INFO(&v->env, "voice: %s -> %s (%s, %s, close code %d)",
            dv_voice_state_name(ev.u.state.old_state), dv_voice_state_name(s),
            dv_voice_outcome_name(outcome), dv_voice_reason_name(reason),
            close_code);
  } else {
    DV_DEBUG(&v->env, "voice: %s -> %s",
             dv_voice_state_name(ev.u.state.old_state), dv_voice_state_name(s));
  }
  emit(v, &ev);
}

static void out_free(dv_voice *v, dv_voice_out *o) {
  if (o->data != NULL) {
    /* Identify and Resume carry the token: wipe every message. */
    dv_free_secret(v->env.mem, o->data, o->len);
  }
  memset(o, 0, sizeof(*o));
}

static void q_clear(dv_voice *v) {
  for (size_t i = v->q_head; i < v->q_len; i++) {
    out_free(v, &v->q[i]);
  }
  v->q_head = v->q_len = 0;
}

/* Moves |b|'s storage into the queue. On failure |b| is freed (wiped). */
static int q_push(dv_voice *v, dv_buf *b, int binary) {
  if (v->q_head > 0 && v->q_len == v->q_cap) {
    memmove(v->q, v->q + v->q_head, (v->q_len - v->q_head) * sizeof(*v->q));
    v->q_len -= v->q_head;
    v->q_head = 0;
  }
  if (v->q_len == v->q_cap) {
    size_t ncap = v->q_cap ? v->q_cap * 2 : 8;
    dv_voice_out *nq = dv_realloc(v->env.mem, v->q, ncap * sizeof(*nq));
    if (nq == NULL) {
      dv_buf_free_secret(b);
      return DVOICE_ERR_NOMEM;
    }
    v->q = nq;
    v->q_cap = ncap;
  }
  v->q[v->q_len].data = b->data;
  v->q[v->q_len].len = b->len;
  v->q[v->q_len].binary = binary;
  v->q_len++;
  dv_buf_init(b, v->env.mem);
  return 0;
}

/* Finishes a text message built in |b| (sticky error |rv|) and queues it. */
static int q_push_text(dv_voice *v, dv_buf *b, int rv) {
  if (rv != 0) {
    dv_buf_free_secret(b);
    return rv;
  }
  return q_push(v, b, 0);
}

static void drop_ws(dv_voice *v) {
  q_clear(v);
  v->hello_seen = 0;
  v->hb_pending = 0;
  v->missed_acks = 0;
  v->hb_next = DVOICE_TSTAMP_NONE;
}

static dvoice_tstamp backoff_delay(dv_voice *v, int attempt) {
  dvoice_tstamp d = v->cfg.backoff_base;
  uint32_t r;
  for (int i = 1; i < attempt && d < v->cfg.backoff_max; i++) {
    d = d > v->cfg.backoff_max / 2 ? v->cfg.backoff_max : d * 2;
  }
  if (d > v->cfg.backoff_max) {
    d = v->cfg.backoff_max;
  }
  /* +-10 % jitter in 0.1 % steps, drawn through the random hook. */
  r = dv_rand_u32(&v->env);
  return d / 1000 * (900 + r % 201);
}

static void users_reset(dv_voice *v) {
  while (v->nusers > 0) {
    dv_voice_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = DV_VOICE_EV_USER_DISCONNECT;
    ev.u.user.user_id = v->users[--v->nusers].user_id;
    emit(v, &ev);
  }
}

static dv_voice_user *user_find(dv_voice *v, uint64_t user_id) {
  for (size_t i = 0; i < v->nusers; i++) {
    if (v->users[i].user_id == user_id) {
      return &v->users[i];
    }
  }
  return NULL;
}

/* Adds |user_id| if new (emitting USER_CONNECT); returns it or NULL. */
static int user_add(dv_voice *v, uint64_t user_id, dv_voice_user **out) {
  dv_voice_user *u = user_find(v, user_id);
  dv_voice_event ev;
  if (u == NULL) {
    if (v->nusers >= DV_VOICE_MAX_USERS) {
      return DVOICE_ERR_PROTO;
    }
    if (v->nusers == v->users_cap) {
      size_t ncap = v->users_cap ? v->users_cap * 2 : 16;
      dv_voice_user *nu = dv_realloc(v->env.mem, v->users, ncap * sizeof(*nu));
      if (nu == NULL) {
        return DVOICE_ERR_NOMEM;
      }
      v->users = nu;
      v->users_cap = ncap;
    }
    u = &v->users[v->nusers++];
    memset(u, 0, sizeof(*u));
    u->user_id = user_id;
    memset(&ev, 0, sizeof(ev));
    ev.type = DV_VOICE_EV_USER_CONNECT;
    ev.u.user.user_id = user_id;
    emit(v, &ev);
    /* The callback cannot touch the array, so |u| is still valid. */
  }
  if (out != NULL) {
    *out = u;
  }
  return 0;
}

/* ---- outgoing messages -------------------------------------------------- */

static int send_heartbeat(dv_voice *v, dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  /* The nonce is the timestamp in ms (reference 2.4), below 2^53. */
  v->hb_nonce = (int64_t)(ts / DVOICE_MS);
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_appendf(&b, "{\"op\":3,\"d\":{\"t\":%lld,\"seq_ack\":%lld}}",
                      (long long)v->hb_nonce, (long long)v->last_seq);
  rv = q_push_text(v, &b, rv);
  if (rv == 0) {
    v->hb_pending = 1;
    v->hb_sent_at = ts;
    v->missed_acks++;
    DV_DEBUG(&v->env, "voice: heartbeat t=%lld seq_ack=%lld",
             (long long)v->hb_nonce, (long long)v->last_seq);
  }
  return rv;
}

/* Builds Identify (op 0) or Resume (op 7). The buffer is reserved up front
 * so that no realloc leaves a copy of the token behind unwiped. */
static int send_identify_or_resume(dv_voice *v, int resume) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_reserve(&b, 256 + 2 * 6 * CRED_MAX);
  if (rv == 0) {
    rv = dv_buf_appendf(&b, "{\"op\":%d,\"d\":{\"server_id\":",
                        resume ? OP_RESUME : OP_IDENTIFY);
  }
  if (rv == 0) {
    rv = dv_json_append_snowflake(&b, v->cfg.server_id);
  }
  if (rv == 0 && !resume) {
    rv = dv_buf_append_str(&b, ",\"user_id\":");
    if (rv == 0) {
      rv = dv_json_append_snowflake(&b, v->cfg.user_id);
    }
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, ",\"session_id\":");
  }
  if (rv == 0) {
    rv = dv_json_append_str(&b, v->session_id, strlen(v->session_id));
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, ",\"token\":");
  }
  if (rv == 0) {
    rv = dv_json_append_str(&b, v->token, strlen(v->token));
  }
  if (rv == 0) {
    if (resume) {
      rv = dv_buf_appendf(&b, ",\"seq_ack\":%lld}}", (long long)v->last_seq);
    } else {
      rv = dv_buf_appendf(&b, ",\"max_dave_protocol_version\":%d}}",
                          v->cfg.max_dave_protocol_version);
    }
  }
  return q_push_text(v, &b, rv);
}

static int send_speaking(dv_voice *v) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_appendf(&b,
                      "{\"op\":5,\"d\":{\"speaking\":%lu,\"delay\":0,"
                      "\"ssrc\":%lu}}",
                      (unsigned long)v->speaking_flags, (unsigned long)v->ssrc);
  rv = q_push_text(v, &b, rv);
  if (rv == 0) {
    v->speaking_sent = 1;
    v->speaking_sent_flags = v->speaking_flags;
  }
  return rv;
}

/* ---- failure handling ---------------------------------------------------- */

static void connect_now(dv_voice *v, dvoice_tstamp ts) {
  dv_voice_event ev;
  v->deadline = ts_add(ts, v->cfg.handshake_timeout);
  set_state(v, DV_VOICE_CONNECTING, DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE,
            0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_CONNECT;
  ev.u.connect.resume = v->resuming;
  DV_INFO(&v->env, "voice: connecting (%s)",
          v->resuming ? "resume" : "identify");
  emit(v, &ev);
}

static void emit_close_ws(dv_voice *v, int code) {
  dv_voice_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_CLOSE_WS;
  ev.u.close_ws.code = code;
  emit(v, &ev);
}

static void go_disconnected(dv_voice *v, dv_voice_outcome outcome,
                            dv_voice_reason reason, int close_code) {
  drop_ws(v);
  v->established = 0;
  v->resuming = 0;
  v->deadline = DVOICE_TSTAMP_NONE;
  set_state(v, DV_VOICE_DISCONNECTED, outcome, reason, close_code);
}

/*
 * The current WS is gone: closed by the server (reason CLOSED, |code|) or
 * dropped by us (zombie, timeout, protocol error; treated as a drop without
 * a code). Applies the policy table and the retry limits.
 */
static void handle_failure(dv_voice *v, int code, dv_voice_reason reason,
                           dvoice_tstamp ts) {
  dv_voice_state was = v->state;
  int was_resuming =
      v->resuming && (was == DV_VOICE_RESUMING || was == DV_VOICE_CONNECTING);
  dv_voice_policy p;
  dv_voice_outcome outcome;
  int limit;

  drop_ws(v);
  /* A connection that stayed READY long enough proves the retries worked:
   * only then do the counters start over, so flapping never loops. */
  if (was == DV_VOICE_READY && ts >= v->ready_since &&
      ts - v->ready_since >= v->cfg.stable_after) {
    v->resume_attempts = 0;
    v->session_attempts = 0;
  }
  p = dv_voice_policy_for(reason == DV_VOICE_REASON_CLOSED ? code : 0,
                          v->cfg.max_dave_protocol_version > 0);
  outcome = p.outcome;
  limit = p.max_sessions;

  if (outcome == DV_VOICE_OUTCOME_RESUME) {
    if (!v->established) {
      /* Nothing to resume before the first Session Description. */
      outcome = DV_VOICE_OUTCOME_NEW_SESSION;
    } else if (was_resuming && reason == DV_VOICE_REASON_CLOSED &&
               code >= 4000) {
      /* The server refused our Resume (reference 2.4, 6.5). */
      outcome = DV_VOICE_OUTCOME_NEW_SESSION;
    } else if (v->resume_attempts >= v->cfg.max_resume_attempts) {
      outcome = DV_VOICE_OUTCOME_NEW_SESSION;
    }
    if (outcome == DV_VOICE_OUTCOME_NEW_SESSION) {
      limit = 0;
    }
  }
  if (outcome == DV_VOICE_OUTCOME_NEW_SESSION ||
      outcome == DV_VOICE_OUTCOME_WAIT_SERVER) {
    if (limit == 0) {
      limit = v->cfg.max_session_attempts;
    }
    if (v->session_attempts >= limit) {
      go_disconnected(v, p.exhausted, DV_VOICE_REASON_RETRIES_EXHAUSTED, code);
      return;
    }
  }

  switch (outcome) {
    case DV_VOICE_OUTCOME_RESUME:
      v->resume_attempts++;
      v->resuming = 1;
      v->deadline = ts_add(ts, backoff_delay(v, v->resume_attempts));
      set_state(v, DV_VOICE_BACKOFF, outcome, reason, code);
      return;
    case DV_VOICE_OUTCOME_NEW_SESSION:
    case DV_VOICE_OUTCOME_WAIT_SERVER:
      v->session_attempts++;
      v->resume_attempts = 0;
      v->resuming = 0;
      v->established = 0;
      v->retry_at = ts_add(ts, backoff_delay(v, v->session_attempts));
      v->deadline = ts_add(ts, outcome == DV_VOICE_OUTCOME_NEW_SESSION
                                   ? v->cfg.session_wait
                                   : v->cfg.server_wait);
      set_state(v,
                outcome == DV_VOICE_OUTCOME_NEW_SESSION ? DV_VOICE_NEED_SESSION
                                                        : DV_VOICE_WAIT_SERVER,
                outcome, reason, code);
      return;
    case DV_VOICE_OUTCOME_DISCONNECTED:
    case DV_VOICE_OUTCOME_FATAL:
    case DV_VOICE_OUTCOME_NONE:
      break;
  }
  go_disconnected(v,
                  outcome == DV_VOICE_OUTCOME_NONE
                      ? DV_VOICE_OUTCOME_DISCONNECTED
                      : outcome,
                  reason, code);
}

/* We drop the WS ourselves: tell the glue, then apply the policy. */
static int fail_local(dv_voice *v, dv_voice_reason reason, int err,
                      dvoice_tstamp ts) {
  if (err == DVOICE_ERR_NOMEM) {
    if (ws_present(v)) {
      emit_close_ws(v, CLOSE_LOCAL_ERROR);
    }
    go_disconnected(v, DV_VOICE_OUTCOME_DISCONNECTED, DV_VOICE_REASON_NOMEM, 0);
    return err;
  }
  DV_WARN(&v->env, "voice: dropping the connection: %s (%s)",
          dv_voice_reason_name(reason), dvoice_err_name(err));
  if (ws_present(v)) {
    emit_close_ws(v, CLOSE_LOCAL_ERROR);
  }
  handle_failure(v, 0, reason, ts);
  return err;
}

/* ---- incoming messages --------------------------------------------------- */

/* 16-bit serial arithmetic: is |seq| not newer than the last seen one? */
static int is_replay(const dv_voice *v, int64_t seq) {
  uint16_t diff;
  if (v->last_seq < 0) {
    return 0;
  }
  diff = (uint16_t)((uint64_t)seq - (uint64_t)v->last_seq);
  return diff == 0 || diff >= 0x8000;
}

static int on_hello(dv_voice *v, const json_t *d, dvoice_tstamp ts) {
  double ms;
  int rv =
      dv_json_get_number(d, "heartbeat_interval", HB_MIN_MS, HB_MAX_MS, &ms);
  if (rv != 0) {
    return rv;
  }
  if (v->hello_seen) {
    DV_WARN(&v->env, "voice: second Hello on one connection; re-arming");
  }
  v->hello_seen = 1;
  v->hb_interval = (dvoice_tstamp)(ms * (double)DVOICE_MS);
  /* No first-beat jitter on the voice gateway (reference 2.7). */
  v->hb_next = ts_add(ts, v->hb_interval);
  v->missed_acks = 0;
  v->hb_pending = 0;
  DV_DEBUG(&v->env, "voice: hello, heartbeat every %.0f ms", ms);
  return 0;
}

static dv_voice_mode choose_mode(const dv_voice *v, const json_t *modes) {
  int aes = 0, xchacha = 0;
  size_t i;
  json_t *m;
  json_array_foreach(modes, i, m) {
    const char *s = json_string_value(m);
    if (strcmp(s, mode_names[DV_VOICE_MODE_AES256_GCM_RTPSIZE]) == 0) {
      aes = 1;
    } else if (strcmp(s, mode_names[DV_VOICE_MODE_XCHACHA20_RTPSIZE]) == 0) {
      xchacha = 1;
    }
    /* Discontinued modes (xsalsa20 variants, aead_aes256_gcm) may still
     * be listed (reference 5.1): they are skipped. */
  }
  if (aes && v->cfg.aes256_gcm_available) {
    return DV_VOICE_MODE_AES256_GCM_RTPSIZE;
  }
  if (xchacha) {
    return DV_VOICE_MODE_XCHACHA20_RTPSIZE;
  }
  return DV_VOICE_MODE_NONE;
}

static int valid_ipv4(const char *ip, size_t len) {
  struct in_addr a;
  return len >= 7 && len <= 15 && inet_pton(AF_INET, ip, &a) == 1;
}

static int on_ready(dv_voice *v, const json_t *d, dvoice_tstamp ts) {
  int64_t ssrc, port;
  const char *ip;
  size_t iplen, i;
  json_t *modes, *m;
  dv_voice_mode mode;
  dv_voice_event ev;
  int rv;

  if (v->state != DV_VOICE_IDENTIFYING) {
    DV_WARN(&v->env, "voice: Ready in state %s", dv_voice_state_name(v->state));
    return DVOICE_ERR_PROTO;
  }
  if ((rv = dv_json_get_int(d, "ssrc", 0, UINT32_MAX, &ssrc)) != 0 ||
      (rv = dv_json_get_str(d, "ip", &ip, &iplen)) != 0 ||
      (rv = dv_json_get_int(d, "port", 1, 65535, &port)) != 0 ||
      (rv = dv_json_get_array(d, "modes", &modes)) != 0) {
    return rv;
  }
  if (!valid_ipv4(ip, iplen)) {
    return DVOICE_ERR_PROTO;
  }
  json_array_foreach(modes, i, m) {
    if (!json_is_string(m)) {
      return DVOICE_ERR_PROTO;
    }
  }
  mode = choose_mode(v, modes);
  if (mode == DV_VOICE_MODE_NONE) {
    DV_ERROR(&v->env, "voice: no usable encryption mode offered");
    emit_close_ws(v, CLOSE_NORMAL);
    go_disconnected(v, DV_VOICE_OUTCOME_FATAL, DV_VOICE_REASON_NO_COMMON_MODE,
                    0);
    return DVOICE_ERR_UNSUPPORTED;
  }
  v->ssrc = (uint32_t)ssrc;
  memcpy(v->udp_ip, ip, iplen + 1);
  v->udp_port = (uint16_t)port;
  v->mode = mode;
  DV_INFO(&v->env, "voice: ready, ssrc %lu, media %s:%u, mode %s",
          (unsigned long)v->ssrc, v->udp_ip, (unsigned)v->udp_port,
          dv_voice_mode_name(mode));
  set_state(v, DV_VOICE_UDP_DISCOVERY, DV_VOICE_OUTCOME_NONE,
            DV_VOICE_REASON_NONE, 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_UDP_START;
  ev.u.udp.ip = v->udp_ip;
  ev.u.udp.port = v->udp_port;
  ev.u.udp.ssrc = v->ssrc;
  emit(v, &ev);
  (void)ts;
  return 0;
}

static int dave_on_session(dv_voice *v, dvoice_tstamp ts) {
  int rv = 0;
  if (v->dave.on_session != NULL) {
    v->in_callback++;
    rv = v->dave.on_session(v->dave.user_data, v, v->dave_version, ts);
    v->in_callback--;
  }
  return rv < 0 ? rv : 0;
}

static int on_session_description(dv_voice *v, const json_t *d,
                                  dvoice_tstamp ts) {
  const char *mode;
  json_t *key, *k;
  uint8_t secret[SECRET_KEY_LEN];
  int64_t dave = 0, b;
  int has_dave, rv;
  size_t i;
  dv_voice_event ev;

  if (v->state != DV_VOICE_SELECTING) {
    DV_WARN(&v->env, "voice: Session Description in state %s",
            dv_voice_state_name(v->state));
    return DVOICE_ERR_PROTO;
  }
  if ((rv = dv_json_get_str(d, "mode", &mode, NULL)) != 0 ||
      (rv = dv_json_get_array(d, "secret_key", &key)) != 0 ||
      (rv = dv_json_get_int_opt(d, "dave_protocol_version", 0,
                                v->cfg.max_dave_protocol_version, &dave,
                                &has_dave)) != 0) {
    return rv;
  }
  if (strcmp(mode, dv_voice_mode_name(v->mode)) != 0 ||
      json_array_size(key) != SECRET_KEY_LEN) {
    return DVOICE_ERR_PROTO;
  }
  json_array_foreach(key, i, k) {
    if (!json_is_integer(k) || (b = json_integer_value(k)) < 0 || b > 255) {
      dv_wipe(secret, sizeof(secret));
      return DVOICE_ERR_PROTO;
    }
    secret[i] = (uint8_t)b;
  }
  v->dave_version = has_dave ? (int)dave : 0;
  v->established = 1;
  v->ready_since = ts;
  v->deadline = DVOICE_TSTAMP_NONE;
  DV_INFO(&v->env, "voice: session ready, mode %s, dave v%d", mode,
          v->dave_version);
  set_state(v, DV_VOICE_READY, DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE, 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_SESSION;
  ev.u.session.mode = v->mode;
  ev.u.session.key = secret;
  ev.u.session.dave_protocol_version = v->dave_version;
  ev.u.session.ssrc = v->ssrc;
  emit(v, &ev);
  dv_wipe(secret, sizeof(secret));
  /* One op 5 must precede any RTP (reference 2.4): send the current flags
   * (0 registers the SSRC, as discord.py does) before allowing audio. */
  rv = send_speaking(v);
  if (rv != 0) {
    return rv;
  }
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_MAY_SEND;
  emit(v, &ev);
  return dave_on_session(v, ts);
}

static int on_resumed(dv_voice *v, dvoice_tstamp ts) {
  dv_voice_event ev;
  if (v->state != DV_VOICE_RESUMING) {
    DV_WARN(&v->env, "voice: Resumed in state %s",
            dv_voice_state_name(v->state));
    return DVOICE_ERR_PROTO;
  }
  v->ready_since = ts;
  v->deadline = DVOICE_TSTAMP_NONE;
  set_state(v, DV_VOICE_READY, DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE, 0);
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_RESUMED;
  emit(v, &ev);
  /* The speaking indicator may have been reset with the old socket
   * (discord.js resets its flag on resume): restate it. */
  return send_speaking(v);
}

static int on_heartbeat_ack(dv_voice *v, const json_t *d, dvoice_tstamp ts) {
  int64_t t;
  int rv = dv_json_get_int(d, "t", 0, DV_JSON_SAFE_INT_MAX, &t);
  dv_voice_event ev;
  if (rv != 0) {
    return rv;
  }
  /* Any ACK proves the socket is alive (discord.js resets on every op 6). */
  v->missed_acks = 0;
  if (v->hb_pending && t == v->hb_nonce) {
    v->hb_pending = 0;
    memset(&ev, 0, sizeof(ev));
    ev.type = DV_VOICE_EV_HEARTBEAT_ACK;
    ev.u.ack.rtt = ts >= v->hb_sent_at ? ts - v->hb_sent_at : 0;
    emit(v, &ev);
  } else {
    DV_DEBUG(&v->env, "voice: heartbeat ACK for nonce %lld not pending",
             (long long)t);
  }
  return 0;
}

static int on_speaking(dv_voice *v, const json_t *d) {
  uint64_t user_id;
  int64_t ssrc, flags;
  dv_voice_user *u;
  dv_voice_event ev;
  int rv;
  if ((rv = dv_json_get_snowflake(d, "user_id", &user_id)) != 0 ||
      (rv = dv_json_get_int(d, "ssrc", 0, UINT32_MAX, &ssrc)) != 0 ||
      (rv = dv_json_get_int(d, "speaking", 0, UINT32_MAX, &flags)) != 0) {
    return rv;
  }
  for (size_t i = 0; i < v->nusers; i++) {
    /* An SSRC belongs to one user at a time; the newest mapping wins. */
    if (v->users[i].has_ssrc && v->users[i].ssrc == (uint32_t)ssrc &&
        v->users[i].user_id != user_id) {
      v->users[i].has_ssrc = 0;
    }
  }
  rv = user_add(v, user_id, &u);
  if (rv != 0) {
    return rv;
  }
  u->ssrc = (uint32_t)ssrc;
  u->has_ssrc = 1;
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_SPEAKING;
  ev.u.speaking.user_id = user_id;
  ev.u.speaking.ssrc = (uint32_t)ssrc;
  ev.u.speaking.flags = (uint32_t)flags;
  emit(v, &ev);
  return 0;
}

static int on_clients_connect(dv_voice *v, const json_t *d) {
  json_t *ids, *id;
  size_t i;
  uint64_t user_id;
  int rv = dv_json_get_array(d, "user_ids", &ids);
  if (rv != 0) {
    return rv;
  }
  /* Validate everything first so that a bad entry changes nothing. */
  json_array_foreach(ids, i, id) {
    if ((rv = dv_json_snowflake_value(id, &user_id)) != 0) {
      return rv;
    }
  }
  json_array_foreach(ids, i, id) {
    (void)dv_json_snowflake_value(id, &user_id);
    if ((rv = user_add(v, user_id, NULL)) != 0) {
      return rv;
    }
  }
  return 0;
}

static int on_client_disconnect(dv_voice *v, const json_t *d) {
  uint64_t user_id;
  dv_voice_user *u;
  dv_voice_event ev;
  int rv = dv_json_get_snowflake(d, "user_id", &user_id);
  if (rv != 0) {
    return rv;
  }
  u = user_find(v, user_id);
  if (u == NULL) {
    DV_DEBUG(&v->env, "voice: disconnect for unknown user %llu",
             (unsigned long long)user_id);
    return 0;
  }
  *u = v->users[--v->nusers];
  memset(&ev, 0, sizeof(ev));
  ev.type = DV_VOICE_EV_USER_DISCONNECT;
  ev.u.user.user_id = user_id;
  emit(v, &ev);
  return 0;
}

static int on_dave_text(dv_voice *v, int op, const json_t *d,
                        dvoice_tstamp ts) {
  int rv = 0;
  if (!json_is_object(d)) {
    return DVOICE_ERR_PROTO;
  }
  if (v->dave.on_text != NULL) {
    v->in_callback++;
    rv = v->dave.on_text(v->dave.user_data, v, op, d, ts);
    v->in_callback--;
  }
  return rv < 0 ? rv : 0;
}

static int dispatch_text(dv_voice *v, const dv_json_envelope *e,
                         dvoice_tstamp ts) {
  const json_t *d = e->d;
  switch (e->op) {
    case OP_HELLO:
      return on_hello(v, d, ts);
    case OP_READY:
      return on_ready(v, d, ts);
    case OP_SESSION_DESCRIPTION:
      return on_session_description(v, d, ts);
    case OP_RESUMED:
      return on_resumed(v, ts);
    case OP_HEARTBEAT_ACK:
      return on_heartbeat_ack(v, d, ts);
    case OP_SPEAKING:
      return on_speaking(v, d);
    case OP_CLIENTS_CONNECT:
      return on_clients_connect(v, d);
    case OP_CLIENT_DISCONNECT:
      return on_client_disconnect(v, d);
    case OP_DAVE_PREPARE_TRANSITION:
    case OP_DAVE_EXECUTE_TRANSITION:
    case OP_DAVE_PREPARE_EPOCH:
      return on_dave_text(v, e->op, d, ts);
    default:
      /* Ops 18, 20, 15, server op 3 and anything unknown (reference 2.3:
       * ignore them, keep their seq). */
      DV_DEBUG(&v->env, "voice: ignoring op %d", e->op);
      return 0;
  }
}

static int check_input(const dv_voice *v) {
  if (v->in_callback) {
    return DVOICE_ERR_INVALID_STATE;
  }
  return ws_open(v) ? 0 : DVOICE_ERR_INVALID_STATE;
}

/* After processing: an error drops the WS (unless a handler already
 * moved the machine off it, e.g. no common mode). */
static int after_message(dv_voice *v, int rv, int has_seq, int64_t seq,
                         dvoice_tstamp ts) {
  if (rv == 0) {
    if (has_seq && ws_open(v)) {
      v->last_seq = seq;
    }
    return 0;
  }
  if (ws_present(v)) {
    return fail_local(v,
                      rv == DVOICE_ERR_NOMEM ? DV_VOICE_REASON_NOMEM
                                             : DV_VOICE_REASON_PROTOCOL_ERROR,
                      rv, ts);
  }
  return rv;
}

int dv_voice_on_text(dv_voice *v, const char *json, size_t len,
                     dvoice_tstamp ts) {
  dv_json_envelope e;
  int rv = check_input(v);
  if (rv != 0) {
    return rv;
  }
  if (json == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = dv_json_envelope_parse(&e, json, len, "seq");
  if (rv == 0 && e.has_seq && is_replay(v, e.seq)) {
    DV_DEBUG(&v->env, "voice: dropping replayed op %d seq %lld", e.op,
             (long long)e.seq);
    dv_json_envelope_free(&e);
    return 0;
  }
  if (rv == 0) {
    rv = dispatch_text(v, &e, ts);
  }
  rv = after_message(v, rv, e.has_seq, e.seq, ts);
  dv_json_envelope_free(&e);
  return rv;
}

int dv_voice_on_binary(dv_voice *v, const uint8_t *data, size_t len,
                       dvoice_tstamp ts) {
  uint16_t seq;
  int op, rv = check_input(v);
  if (rv != 0) {
    return rv;
  }
  if (data == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (len < 3) {
    return after_message(v, DVOICE_ERR_PROTO, 0, 0, ts);
  }
  seq = dv_get_u16(data);
  op = data[2];
  if (is_replay(v, seq)) {
    DV_DEBUG(&v->env, "voice: dropping replayed binary op %d seq %u", op,
             (unsigned)seq);
    return 0;
  }
  if (op >= OP_DAVE_FIRST && op <= OP_DAVE_LAST) {
    if (v->dave.on_binary != NULL) {
      v->in_callback++;
      rv = v->dave.on_binary(v->dave.user_data, v, op, data + 3, len - 3, ts);
      v->in_callback--;
      rv = rv < 0 ? rv : 0;
    }
  } else {
    DV_DEBUG(&v->env, "voice: ignoring binary op %d", op);
  }
  return after_message(v, rv, 1, seq, ts);
}

/* ---- inputs from the glue ----------------------------------------------- */

static int valid_cred(const char *s) {
  size_t n;
  if (s == NULL) {
    return 0;
  }
  n = strlen(s);
  if (n == 0 || n > CRED_MAX) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
      return 0;
    }
  }
  return 1;
}

static void free_creds(dv_voice *v) {
  if (v->token != NULL) {
    dv_free_secret(v->env.mem, v->token, strlen(v->token));
  }
  if (v->session_id != NULL) {
    dv_free_secret(v->env.mem, v->session_id, strlen(v->session_id));
  }
  v->token = v->session_id = NULL;
  v->cfg.token = v->cfg.session_id = NULL;
}

static int set_creds(dv_voice *v, const char *session_id, const char *token) {
  char *s, *t;
  if (!valid_cred(session_id) || !valid_cred(token)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  s = dv_strdup(v->env.mem, session_id);
  t = dv_strdup(v->env.mem, token);
  if (s == NULL || t == NULL) {
    if (s != NULL) {
      dv_free_secret(v->env.mem, s, strlen(s));
    }
    if (t != NULL) {
      dv_free_secret(v->env.mem, t, strlen(t));
    }
    return DVOICE_ERR_NOMEM;
  }
  free_creds(v);
  v->session_id = s;
  v->token = t;
  v->cfg.session_id = s;
  v->cfg.token = t;
  return 0;
}

void dv_voice_config_default(dv_voice_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
}

int dv_voice_init(dv_voice *v, const dv_voice_config *cfg,
                  const dv_voice_callbacks *cb, const dvoice_env *env,
                  void *user_data) {
  int rv;
  if (v == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(v, 0, sizeof(*v));
  if (cfg == NULL || cb == NULL || cb->on_event == NULL ||
      dv_env_check(env) != 0 || cfg->max_dave_protocol_version < 0 ||
      cfg->max_dave_protocol_version > 255 || cfg->max_missed_acks < 0 ||
      cfg->max_resume_attempts < 0 || cfg->max_session_attempts < 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  v->env = *env;
  v->cb = *cb;
  v->user_data = user_data;
  v->cfg = *cfg;
  if (cfg->dave != NULL) {
    v->dave = *cfg->dave;
  }
  v->cfg.dave = NULL;
  v->cfg.session_id = v->cfg.token = NULL;
#define DEF(field, value)                                                      \
  if (v->cfg.field == 0) {                                                     \
    v->cfg.field = (value);                                                    \
  }
  DEF(max_missed_acks, 3);
  DEF(max_resume_attempts, 3);
  DEF(max_session_attempts, 5);
  DEF(backoff_base, 250 * DVOICE_MS);
  DEF(backoff_max, 10 * DVOICE_SECONDS);
  DEF(handshake_timeout, 10 * DVOICE_SECONDS);
  DEF(session_wait, 10 * DVOICE_SECONDS);
  DEF(server_wait, 5 * DVOICE_SECONDS);
  DEF(stable_after, 60 * DVOICE_SECONDS);
#undef DEF
  if (v->cfg.backoff_base > v->cfg.backoff_max ||
      v->cfg.backoff_max > 3600 * DVOICE_SECONDS) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = set_creds(v, cfg->session_id, cfg->token);
  if (rv != 0) {
    memset(v, 0, sizeof(*v));
    return rv;
  }
  v->state = DV_VOICE_IDLE;
  v->last_seq = -1;
  v->deadline = DVOICE_TSTAMP_NONE;
  v->hb_next = DVOICE_TSTAMP_NONE;
  return 0;
}

void dv_voice_free(dv_voice *v) {
  if (v == NULL) {
    return;
  }
  q_clear(v);
  out_free(v, &v->cur);
  dv_free(v->env.mem, v->q);
  dv_free(v->env.mem, v->users);
  free_creds(v);
  memset(v, 0, sizeof(*v));
}

int dv_voice_start(dv_voice *v, dvoice_tstamp ts) {
  if (v->in_callback || v->state != DV_VOICE_IDLE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  v->resuming = 0;
  connect_now(v, ts);
  return 0;
}

int dv_voice_on_open(dv_voice *v, dvoice_tstamp ts) {
  int rv;
  if (v->in_callback || v->state != DV_VOICE_CONNECTING) {
    return DVOICE_ERR_INVALID_STATE;
  }
  drop_ws(v);
  if (!v->resuming) {
    /* A new session: everything learnt on the old one is void. */
    v->last_seq = -1;
    v->established = 0;
    v->speaking_sent = 0;
    v->mode = DV_VOICE_MODE_NONE;
    users_reset(v);
    if (v->dave.on_reset != NULL) {
      v->in_callback++;
      v->dave.on_reset(v->dave.user_data, v);
      v->in_callback--;
    }
  }
  rv = send_identify_or_resume(v, v->resuming);
  if (rv != 0) {
    return fail_local(v, DV_VOICE_REASON_NOMEM, rv, ts);
  }
  DV_INFO(&v->env, "voice: %s sent (server %llu)",
          v->resuming ? "resume" : "identify",
          (unsigned long long)v->cfg.server_id);
  set_state(v, v->resuming ? DV_VOICE_RESUMING : DV_VOICE_IDENTIFYING,
            DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE, 0);
  return 0;
}

int dv_voice_on_close(dv_voice *v, int code, dvoice_tstamp ts) {
  if (v->in_callback || !ws_present(v)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  DV_INFO(&v->env, "voice: connection closed with code %d in %s", code,
          dv_voice_state_name(v->state));
  handle_failure(v, code, DV_VOICE_REASON_CLOSED, ts);
  return 0;
}

int dv_voice_on_ip_discovered(dv_voice *v, const char *ip, uint16_t port,
                              dvoice_tstamp ts) {
  dv_buf b;
  int rv;
  if (v->in_callback || v->state != DV_VOICE_UDP_DISCOVERY) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (ip == NULL || port == 0 || !valid_ipv4(ip, strlen(ip))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_appendf(&b,
                      "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{"
                      "\"address\":\"%s\",\"port\":%u,\"mode\":\"%s\"}}}",
                      ip, (unsigned)port, dv_voice_mode_name(v->mode));
  rv = q_push_text(v, &b, rv);
  if (rv != 0) {
    return fail_local(v, DV_VOICE_REASON_NOMEM, rv, ts);
  }
  DV_DEBUG(&v->env, "voice: select protocol %s", dv_voice_mode_name(v->mode));
  set_state(v, DV_VOICE_SELECTING, DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE,
            0);
  return 0;
}

int dv_voice_new_session(dv_voice *v, const char *session_id, const char *token,
                         dvoice_tstamp ts) {
  dvoice_tstamp at = ts;
  int rv;
  if (v->in_callback) {
    return DVOICE_ERR_INVALID_STATE;
  }
  switch (v->state) {
    case DV_VOICE_IDLE:
    case DV_VOICE_DISCONNECTED:
      return DVOICE_ERR_INVALID_STATE;
    case DV_VOICE_NEED_SESSION:
    case DV_VOICE_WAIT_SERVER:
      /* Keep the backoff decided at the failure. */
      at = v->retry_at > ts ? v->retry_at : ts;
      break;
    case DV_VOICE_CONNECTING:
    case DV_VOICE_IDENTIFYING:
    case DV_VOICE_UDP_DISCOVERY:
    case DV_VOICE_SELECTING:
    case DV_VOICE_READY:
    case DV_VOICE_RESUMING:
    case DV_VOICE_BACKOFF:
      /* A server change while connected (reference 6.5): not a failure. */
      break;
  }
  rv = set_creds(v, session_id, token);
  if (rv != 0) {
    return rv;
  }
  if (ws_present(v)) {
    emit_close_ws(v, CLOSE_NORMAL);
  }
  drop_ws(v);
  v->resuming = 0;
  v->established = 0;
  if (at > ts) {
    v->deadline = at;
    set_state(v, DV_VOICE_BACKOFF, DV_VOICE_OUTCOME_NONE, DV_VOICE_REASON_NONE,
              0);
  } else {
    connect_now(v, ts);
  }
  return 0;
}

int dv_voice_set_speaking(dv_voice *v, uint32_t flags, dvoice_tstamp ts) {
  int rv;
  if (flags > 7) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (v->in_callback || v->state == DV_VOICE_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  v->speaking_flags = flags;
  if (v->state != DV_VOICE_READY ||
      (v->speaking_sent && v->speaking_sent_flags == flags)) {
    return 0;
  }
  rv = send_speaking(v);
  if (rv != 0) {
    return fail_local(v, DV_VOICE_REASON_NOMEM, rv, ts);
  }
  return 0;
}

int dv_voice_close(dv_voice *v, dvoice_tstamp ts) {
  (void)ts;
  if (v->in_callback || v->state == DV_VOICE_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (ws_present(v)) {
    emit_close_ws(v, CLOSE_NORMAL);
  }
  go_disconnected(v, DV_VOICE_OUTCOME_DISCONNECTED, DV_VOICE_REASON_APP_CLOSED,
                  0);
  return 0;
}

dvoice_tstamp dv_voice_get_expiry(const dv_voice *v) {
  dvoice_tstamp e = DVOICE_TSTAMP_NONE;
  switch (v->state) {
    case DV_VOICE_CONNECTING:
    case DV_VOICE_IDENTIFYING:
    case DV_VOICE_UDP_DISCOVERY:
    case DV_VOICE_SELECTING:
    case DV_VOICE_RESUMING:
    case DV_VOICE_BACKOFF:
    case DV_VOICE_NEED_SESSION:
    case DV_VOICE_WAIT_SERVER:
      e = v->deadline;
      break;
    case DV_VOICE_IDLE:
    case DV_VOICE_READY:
    case DV_VOICE_DISCONNECTED:
      break;
  }
  if (ws_open(v) && v->hello_seen && v->hb_next < e) {
    e = v->hb_next;
  }
  return e;
}

int dv_voice_handle_expiry(dv_voice *v, dvoice_tstamp ts) {
  int rv;
  if (v->in_callback) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (ws_open(v) && v->hello_seen && ts >= v->hb_next) {
    if (v->missed_acks >= v->cfg.max_missed_acks) {
      /* discord.js: at a tick with 3 unanswered beats, close and resume. */
      DV_WARN(&v->env, "voice: %d heartbeats unacknowledged", v->missed_acks);
      fail_local(v, DV_VOICE_REASON_ZOMBIE, 0, ts);
      return 0;
    }
    rv = send_heartbeat(v, ts);
    if (rv != 0) {
      return fail_local(v, DV_VOICE_REASON_NOMEM, rv, ts);
    }
    /* Absolute schedule; after a stall resynchronise instead of bursting. */
    v->hb_next = ts_add(v->hb_next, v->hb_interval);
    if (v->hb_next <= ts) {
      v->hb_next = ts_add(ts, v->hb_interval);
    }
  }
  if (v->deadline == DVOICE_TSTAMP_NONE || ts < v->deadline) {
    return 0;
  }
  switch (v->state) {
    case DV_VOICE_CONNECTING:
    case DV_VOICE_IDENTIFYING:
    case DV_VOICE_UDP_DISCOVERY:
    case DV_VOICE_SELECTING:
    case DV_VOICE_RESUMING:
      fail_local(v, DV_VOICE_REASON_HANDSHAKE_TIMEOUT, 0, ts);
      return 0;
    case DV_VOICE_BACKOFF:
      connect_now(v, ts);
      return 0;
    case DV_VOICE_NEED_SESSION:
    case DV_VOICE_WAIT_SERVER:
      go_disconnected(v, DV_VOICE_OUTCOME_DISCONNECTED,
                      DV_VOICE_REASON_WAIT_TIMEOUT, 0);
      return 0;
    case DV_VOICE_IDLE:
    case DV_VOICE_READY:
    case DV_VOICE_DISCONNECTED:
      /* These states keep no deadline. */
      break;
  }
  return 0;
}

int dv_voice_next_out(dv_voice *v, const uint8_t **data, size_t *len,
                      int *binary) {
  out_free(v, &v->cur);
  if (v->q_head >= v->q_len) {
    v->q_head = v->q_len = 0;
    return 0;
  }
  v->cur = v->q[v->q_head++];
  *data = v->cur.data;
  *len = v->cur.len;
  *binary = v->cur.binary;
  return 1;
}

int dv_voice_send_binary(dv_voice *v, uint8_t op, const uint8_t *payload,
                         size_t len) {
  dv_buf b;
  int rv;
  if (!ws_open(v)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (payload == NULL && len != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_push(&b, op);
  if (rv == 0) {
    rv = dv_buf_append(&b, payload, len);
  }
  if (rv != 0) {
    dv_buf_free(&b);
    return rv;
  }
  return q_push(v, &b, 1);
}

int dv_voice_send_json(dv_voice *v, int op, const json_t *d) {
  dv_buf b;
  int rv;
  if (!ws_open(v)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (op < 0 || op > 255 || d == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_buf_init(&b, v->env.mem);
  rv = dv_buf_appendf(&b, "{\"op\":%d,\"d\":", op);
  if (rv == 0) {
    rv = dv_json_append_value(&b, d);
  }
  if (rv == 0) {
    rv = dv_buf_push(&b, '}');
  }
  return q_push_text(v, &b, rv);
}

dv_voice_state dv_voice_get_state(const dv_voice *v) {
  return v->state;
}

int dv_voice_may_send(const dv_voice *v) {
  return v->established && v->speaking_sent;
}

int64_t dv_voice_last_seq(const dv_voice *v) {
  return v->last_seq;
}

uint32_t dv_voice_ssrc(const dv_voice *v) {
  return v->ssrc;
}

dv_voice_mode dv_voice_get_mode(const dv_voice *v) {
  return v->mode;
}

size_t dv_voice_user_count(const dv_voice *v) {
  return v->nusers;
}

const dv_voice_user *dv_voice_user_at(const dv_voice *v, size_t i) {
  return i < v->nusers ? &v->users[i] : NULL;
}

int dv_voice_user_for_ssrc(const dv_voice *v, uint32_t ssrc,
                           uint64_t *user_id) {
  for (size_t i = 0; i < v->nusers; i++) {
    if (v->users[i].has_ssrc && v->users[i].ssrc == ssrc) {
      *user_id = v->users[i].user_id;
      return 0;
    }
  }
  return DVOICE_ERR_NOT_FOUND;
}
