#include "join/dv_join.h"

#include <string.h>

#include "util/dv_log.h"
#include "util/dv_mem.h"

#define DEF_JOIN_TIMEOUT (10 * DVOICE_SECONDS)
#define DEF_SERVER_WAIT (5 * DVOICE_SECONDS)
#define DEF_ENDPOINT_WAIT (10 * DVOICE_SECONDS)
#define DEF_MAX_SESSIONS 5
#define DEF_BACKOFF_BASE (250 * DVOICE_MS)
#define DEF_BACKOFF_MAX (10 * DVOICE_SECONDS)

const char *dv_join_state_name(dv_join_state s) {
  switch (s) {
    case DV_JOIN_IDLE:
      return "IDLE";
    case DV_JOIN_SIGNALLING:
      return "SIGNALLING";
    case DV_JOIN_CONNECTED:
      return "CONNECTED";
    case DV_JOIN_WAIT_SERVER:
      return "WAIT_SERVER";
    case DV_JOIN_BACKOFF:
      return "BACKOFF";
    case DV_JOIN_ENDED:
      return "ENDED";
  }
  return "UNKNOWN";
}

const char *dv_join_reason_name(dv_join_reason r) {
  switch (r) {
    case DV_JOIN_REASON_NONE:
      return "NONE";
    case DV_JOIN_REASON_LEFT:
      return "LEFT";
    case DV_JOIN_REASON_TIMEOUT:
      return "TIMEOUT";
    case DV_JOIN_REASON_KICKED:
      return "KICKED";
    case DV_JOIN_REASON_SERVER_TIMEOUT:
      return "SERVER_TIMEOUT";
    case DV_JOIN_REASON_RETRIES_EXHAUSTED:
      return "RETRIES_EXHAUSTED";
    case DV_JOIN_REASON_VOICE_FAILED:
      return "VOICE_FAILED";
  }
  return "UNKNOWN";
}

void dv_join_config_default(dv_join_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
}

int dv_join_init(dv_join *j, const dv_join_config *cfg, const dvoice_env *env) {
  if (j == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(j, 0, sizeof(*j));
  if (cfg == NULL || env == NULL || cfg->guild_id == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  j->env = *env;
  j->cfg = *cfg;
  if (j->cfg.join_timeout == 0) {
    j->cfg.join_timeout = DEF_JOIN_TIMEOUT;
  }
  if (j->cfg.server_wait == 0) {
    j->cfg.server_wait = DEF_SERVER_WAIT;
  }
  if (j->cfg.endpoint_wait == 0) {
    j->cfg.endpoint_wait = DEF_ENDPOINT_WAIT;
  }
  if (j->cfg.max_sessions <= 0) {
    j->cfg.max_sessions = DEF_MAX_SESSIONS;
  }
  if (j->cfg.backoff_base == 0) {
    j->cfg.backoff_base = DEF_BACKOFF_BASE;
  }
  if (j->cfg.backoff_max == 0) {
    j->cfg.backoff_max = DEF_BACKOFF_MAX;
  }
  j->state = DV_JOIN_IDLE;
  j->deadline = DVOICE_TSTAMP_NONE;
  return 0;
}

void dv_join_free(dv_join *j) {
  if (j != NULL) {
    dv_wipe(&j->pend, sizeof(j->pend));
    dv_wipe(&j->cur, sizeof(j->cur));
    dv_wipe(j->used_token, sizeof(j->used_token));
  }
}

int dv_join_set_user_id(dv_join *j, uint64_t user_id) {
  if (j == NULL || user_id == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (j->cfg.user_id != 0 && j->cfg.user_id != user_id) {
    return DVOICE_ERR_INVALID_STATE;
  }
  j->cfg.user_id = user_id;
  return 0;
}

/* ---- helpers --------------------------------------------------------------
 */

static dv_join_action *push(dv_join *j, dv_join_action_type type) {
  dv_join_action *a;
  if (j->q_len == DV_JOIN_ACTIONS) {
    /* The owner drains after every call; this cannot fill up. */
    DV_ERROR(&j->env, "join: action queue full, dropping the oldest");
    j->q_head = (j->q_head + 1) % DV_JOIN_ACTIONS;
    j->q_len--;
  }
  a = &j->q[(j->q_head + j->q_len) % DV_JOIN_ACTIONS];
  memset(a, 0, sizeof(*a));
  a->type = type;
  j->q_len++;
  return a;
}

static void push_op4(dv_join *j, uint64_t channel_id) {
  dv_join_action *a = push(j, DV_JOIN_ACT_SEND_OP4);
  a->u.op4.channel_id = channel_id;
  a->u.op4.self_mute = j->self_mute;
  a->u.op4.self_deaf = j->self_deaf;
}

static void push_creds(dv_join *j, dv_join_action_type type) {
  dv_join_action *a = push(j, type);
  a->u.creds.channel_id = j->cur.channel_id;
  a->u.creds.session_id = j->cur.session_id;
  a->u.creds.token = j->cur.token;
  a->u.creds.endpoint = j->cur.endpoint;
}

static void set_state(dv_join *j, dv_join_state s, dvoice_tstamp deadline) {
  if (s != j->state) {
    DV_DEBUG(&j->env, "join: guild %llu %s -> %s",
             (unsigned long long)j->cfg.guild_id, dv_join_state_name(j->state),
             dv_join_state_name(s));
  }
  j->state = s;
  j->deadline = deadline;
}

/* Ends the join; |leave| also tells the main gateway we are gone. */
static void end(dv_join *j, dv_join_reason reason, int leave) {
  if (leave) {
    push_op4(j, 0);
  }
  push(j, DV_JOIN_ACT_END)->u.end.reason = reason;
  DV_INFO(&j->env, "join: guild %llu ended (%s)",
          (unsigned long long)j->cfg.guild_id, dv_join_reason_name(reason));
  set_state(j, DV_JOIN_ENDED, DVOICE_TSTAMP_NONE);
  dv_wipe(&j->pend, sizeof(j->pend));
}

static void clear_pending(dv_join *j) {
  dv_wipe(&j->pend, sizeof(j->pend));
}

/* Deadline arithmetic saturates below DVOICE_TSTAMP_NONE: a huge tunable
 * (an application's "never") must not wrap into an immediate deadline. */
static dvoice_tstamp ts_add(dvoice_tstamp a, dvoice_tstamp b) {
  if (a >= DVOICE_TSTAMP_NONE - 1 || b >= DVOICE_TSTAMP_NONE - 1 - a) {
    return DVOICE_TSTAMP_NONE - 1;
  }
  return a + b;
}

/* Sends op 4 for the current channel: a new attempt. */
static void ask(dv_join *j, dvoice_tstamp ts) {
  clear_pending(j);
  j->attempt++;
  push_op4(j, j->channel_id);
  set_state(j, DV_JOIN_SIGNALLING, ts_add(ts, j->cfg.join_timeout));
}

static int text_ok(const char *s, size_t max) {
  size_t n;
  if (s == NULL) {
    return 0;
  }
  n = strlen(s);
  return n > 0 && n <= max;
}

static void copy(char *dst, const char *src, size_t cap) {
  size_t n = strlen(src);
  if (n >= cap) {
    n = cap - 1;
  }
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Hands the paired credentials to the voice connection. */
static void try_pair(dv_join *j) {
  if (!j->pend.have_state || !j->pend.have_server) {
    return;
  }
  j->cur = j->pend;
  j->cur.channel_id = j->channel_id;
  copy(j->used_token, j->cur.token, sizeof(j->used_token));
  clear_pending(j);
  j->server_fresh = 0;
  push_creds(j, j->has_conn ? DV_JOIN_ACT_NEW_SESSION : DV_JOIN_ACT_CONNECT);
  j->has_conn = 1;
  set_state(j, DV_JOIN_CONNECTED, DVOICE_TSTAMP_NONE);
}

/* ---- inputs ---------------------------------------------------------------
 */

int dv_join_start(dv_join *j, uint64_t channel_id, int self_mute, int self_deaf,
                  dvoice_tstamp ts) {
  if (j == NULL || channel_id == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  switch (j->state) {
    case DV_JOIN_ENDED:
      return DVOICE_ERR_INVALID_STATE;
    case DV_JOIN_IDLE:
    case DV_JOIN_SIGNALLING:
    case DV_JOIN_CONNECTED:
    case DV_JOIN_WAIT_SERVER:
    case DV_JOIN_BACKOFF:
      break;
  }
  j->channel_id = channel_id;
  j->self_mute = self_mute != 0;
  j->self_deaf = self_deaf != 0;
  j->sessions = 0;
  ask(j, ts);
  return 0;
}

int dv_join_leave(dv_join *j, dvoice_tstamp ts) {
  (void)ts;
  if (j == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (j->state == DV_JOIN_ENDED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  end(j, DV_JOIN_REASON_LEFT, 1);
  return 0;
}

int dv_join_on_voice_state(dv_join *j, uint64_t user_id, int has_channel,
                           uint64_t channel_id, const char *session_id,
                           dvoice_tstamp ts) {
  if (j == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (j->state == DV_JOIN_ENDED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (j->cfg.user_id == 0 || user_id != j->cfg.user_id) {
    /* Someone else's state, or ours not known yet: not ours to act on. */
    return 0;
  }
  if (has_channel &&
      (channel_id == 0 || !text_ok(session_id, DV_JOIN_SESSION_MAX))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  switch (j->state) {
    case DV_JOIN_IDLE:
    case DV_JOIN_BACKOFF:
      /* No op 4 is outstanding: whatever this answers is stale. */
      DV_DEBUG(&j->env, "join: state update ignored in %s",
               dv_join_state_name(j->state));
      return 0;
    case DV_JOIN_SIGNALLING:
      if (!has_channel || channel_id != j->channel_id) {
        /* The echo of an earlier leave or join (reference 1.6). */
        DV_DEBUG(&j->env, "join: stale state update ignored");
        return 0;
      }
      copy(j->pend.session_id, session_id, sizeof(j->pend.session_id));
      j->pend.have_state = 1;
      try_pair(j);
      return 0;
    case DV_JOIN_CONNECTED:
    case DV_JOIN_WAIT_SERVER:
      if (!has_channel) {
        /* Null channel for us with no join pending: kicked (1.7). */
        end(j, DV_JOIN_REASON_KICKED, 0);
        return 0;
      }
      if (channel_id != j->cur.channel_id && j->server_fresh) {
        /* Moved, and the new token came first: pair them now (a token
         * must not stay with the old session, arikawa #303). */
        j->channel_id = channel_id;
        j->cur.channel_id = channel_id;
        copy(j->cur.session_id, session_id, sizeof(j->cur.session_id));
        j->server_fresh = 0;
        push_creds(j, DV_JOIN_ACT_NEW_SESSION);
        set_state(j, DV_JOIN_CONNECTED, DVOICE_TSTAMP_NONE);
        return 0;
      }
      if (channel_id != j->cur.channel_id) {
        /* Moved by someone: the new token follows in a server update. */
        DV_INFO(&j->env, "join: guild %llu moved to channel %llu",
                (unsigned long long)j->cfg.guild_id,
                (unsigned long long)channel_id);
        j->channel_id = channel_id;
        clear_pending(j);
        j->attempt++;
        copy(j->pend.session_id, session_id, sizeof(j->pend.session_id));
        j->pend.have_state = 1;
        set_state(j, DV_JOIN_SIGNALLING, ts_add(ts, j->cfg.join_timeout));
        return 0;
      }
      /* Same channel: keep the newest session id for the next session;
       * if a lone server update just renewed the token, they belong
       * together. */
      if (strcmp(session_id, j->cur.session_id) != 0) {
        copy(j->cur.session_id, session_id, sizeof(j->cur.session_id));
        if (j->server_fresh) {
          j->server_fresh = 0;
          push_creds(j, DV_JOIN_ACT_NEW_SESSION);
          set_state(j, DV_JOIN_CONNECTED, DVOICE_TSTAMP_NONE);
        }
      }
      return 0;
    case DV_JOIN_ENDED:
      break;
  }
  return DVOICE_ERR_INVALID_STATE;
}

int dv_join_on_voice_server(dv_join *j, const char *token, const char *endpoint,
                            dvoice_tstamp ts) {
  if (j == NULL || !text_ok(token, DV_JOIN_TOKEN_MAX) ||
      (endpoint != NULL && strlen(endpoint) > DV_JOIN_ENDPOINT_MAX)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (endpoint != NULL && endpoint[0] == '\0') {
    endpoint = NULL;
  }
  switch (j->state) {
    case DV_JOIN_ENDED:
      return DVOICE_ERR_INVALID_STATE;
    case DV_JOIN_IDLE:
    case DV_JOIN_BACKOFF:
      DV_DEBUG(&j->env, "join: server update ignored in %s",
               dv_join_state_name(j->state));
      return 0;
    case DV_JOIN_SIGNALLING:
      if (strcmp(token, j->used_token) == 0) {
        DV_DEBUG(&j->env, "join: stale server update ignored");
        return 0;
      }
      if (endpoint == NULL) {
        /* Reallocating: wait for the next server update (1.5). */
        j->pend.have_server = 0;
        return 0;
      }
      copy(j->pend.token, token, sizeof(j->pend.token));
      copy(j->pend.endpoint, endpoint, sizeof(j->pend.endpoint));
      j->pend.have_server = 1;
      try_pair(j);
      return 0;
    case DV_JOIN_CONNECTED:
    case DV_JOIN_WAIT_SERVER:
      if (endpoint == NULL) {
        if (j->state == DV_JOIN_CONNECTED) {
          push(j, DV_JOIN_ACT_SUSPEND);
          set_state(j, DV_JOIN_WAIT_SERVER, ts_add(ts, j->cfg.endpoint_wait));
        }
        return 0;
      }
      if (strcmp(token, j->cur.token) == 0 &&
          strcmp(endpoint, j->cur.endpoint) == 0) {
        return 0; /* a repeat of what the connection already uses */
      }
      /* A new server or token: a fresh Identify (6.5). */
      copy(j->cur.token, token, sizeof(j->cur.token));
      copy(j->cur.endpoint, endpoint, sizeof(j->cur.endpoint));
      copy(j->used_token, token, sizeof(j->used_token));
      j->server_fresh = 1;
      push_creds(j, DV_JOIN_ACT_NEW_SESSION);
      set_state(j, DV_JOIN_CONNECTED, DVOICE_TSTAMP_NONE);
      return 0;
  }
  return DVOICE_ERR_INVALID_STATE;
}

int dv_join_on_conn_state(dv_join *j, dvoice_conn_state s, dvoice_tstamp ts) {
  dvoice_tstamp delay;
  if (j == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (j->state == DV_JOIN_ENDED || !j->has_conn) {
    return DVOICE_ERR_INVALID_STATE;
  }
  switch (s) {
    case DVOICE_CONN_READY:
      j->sessions = 0;
      j->server_fresh = 0;
      return 0;
    case DVOICE_CONN_CONNECTING:
    case DVOICE_CONN_RESUMING:
      return 0;
    case DVOICE_CONN_NEED_SESSION:
      if (j->state == DV_JOIN_SIGNALLING || j->state == DV_JOIN_BACKOFF) {
        return 0; /* already asking the main gateway */
      }
      if (j->sessions >= j->cfg.max_sessions) {
        end(j, DV_JOIN_REASON_RETRIES_EXHAUSTED, 1);
        return 0;
      }
      delay = 0;
      if (j->sessions > 0) {
        int shift = j->sessions - 1 < 20 ? j->sessions - 1 : 20;
        /* Doubling saturates at backoff_max instead of shifting bits out
         * (a wrapped delay could come out as 0: no backoff at all). */
        if (j->cfg.backoff_base > (j->cfg.backoff_max >> shift)) {
          delay = j->cfg.backoff_max;
        } else {
          delay = j->cfg.backoff_base << shift;
        }
      }
      j->sessions++;
      if (delay == 0) {
        ask(j, ts);
      } else {
        set_state(j, DV_JOIN_BACKOFF, ts_add(ts, delay));
      }
      return 0;
    case DVOICE_CONN_WAIT_SERVER:
      if (j->state == DV_JOIN_CONNECTED) {
        set_state(j, DV_JOIN_WAIT_SERVER, ts_add(ts, j->cfg.server_wait));
      } else if (j->state == DV_JOIN_WAIT_SERVER &&
                 j->deadline > ts_add(ts, j->cfg.server_wait)) {
        j->deadline = ts_add(ts, j->cfg.server_wait);
      }
      return 0;
    case DVOICE_CONN_DISCONNECTED:
      end(j, DV_JOIN_REASON_VOICE_FAILED, 1);
      return 0;
  }
  return DVOICE_ERR_INVALID_ARGUMENT;
}

dvoice_tstamp dv_join_get_expiry(const dv_join *j) {
  return j->deadline;
}

int dv_join_handle_expiry(dv_join *j, dvoice_tstamp ts) {
  if (j->deadline == DVOICE_TSTAMP_NONE || ts < j->deadline) {
    return 0;
  }
  switch (j->state) {
    case DV_JOIN_SIGNALLING:
      end(j, DV_JOIN_REASON_TIMEOUT, 1);
      break;
    case DV_JOIN_WAIT_SERVER:
      end(j, DV_JOIN_REASON_SERVER_TIMEOUT, 1);
      break;
    case DV_JOIN_BACKOFF:
      ask(j, ts);
      break;
    case DV_JOIN_IDLE:
    case DV_JOIN_CONNECTED:
    case DV_JOIN_ENDED:
      j->deadline = DVOICE_TSTAMP_NONE;
      break;
  }
  return 0;
}

int dv_join_next_action(dv_join *j, dv_join_action *out) {
  if (j->q_len == 0) {
    return 0;
  }
  *out = j->q[j->q_head];
  j->q_head = (j->q_head + 1) % DV_JOIN_ACTIONS;
  j->q_len--;
  return 1;
}

dv_join_state dv_join_get_state(const dv_join *j) {
  return j->state;
}
