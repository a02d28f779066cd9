/*
 * dvoice_client: one bot identity on one loop. Each guild's join runs the
 * pure join core (lib/join) and drives the dvoice_conn handed to the
 * application (created deferred, started once both dispatches of the
 * attempt are in hand). The main gateway is the application's adapter, or
 * the built-in one (lib/uv/dv_uv_gateway) feeding the same entry points.
 *
 * Reentrancy: public calls feed the join cores and apply their decisions to
 * the connections (neither runs an application callback), and queue what
 * the application must see (op 4 for the adapter, join events); a 0 ms
 * timer delivers that queue from the loop.
 */
#include <string.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "join/dv_join.h"
#include "join/dv_join_json.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "util/dv_ring.h"
#include "uv/dv_uv_client.h"
#include "uv/dv_uv_conn.h"
#include "uv/dv_uv_env.h"
#include "uv/dv_uv_gateway.h"
#include "uv/dv_uv_pacer.h"
#include "uv/dv_uv_timeline.h"

typedef struct entry {
  dvoice_client *cl;
  uint64_t id; /* unique; queued events refer to entries by id */
  uint64_t guild_id;
  dv_join join;
  dvoice_conn *conn;     /* NULL once the application closed it */
  dvoice_join_state pub; /* last state reported; 0 before the first */
  int ended;
  int leaving; /* the application closed it: its op 4 leave is echoed */
} entry;

typedef enum qtype { Q_OP4 = 1, Q_JOIN, Q_GW } qtype;

typedef struct qitem {
  qtype type;
  uint64_t entry_id;
  uint64_t guild_id, channel_id;
  int self_mute, self_deaf;
  int expect_echo; /* an application's leave: see echo_expect() */
  dvoice_join_event ev;
  dvoice_gateway_event gev;
} qitem;

struct dvoice_client {
  uv_loop_t *loop;
  dvoice_env env;
  /* Pointers cleared. s.user_id is the bot's id: configured, or with the
   * built-in gateway learnt from the first READY (0 until then). */
  dvoice_client_settings s;
  dvoice_conn_settings tmpl;
  char *ca_file;
  /* The TLS configuration shared by the gateway and every voice
   * connection (NULL if it could not be built: each builds its own). */
  dv_tls_conf *tls_conf;
  dvoice_gateway_adapter adapter;
  void *adapter_ud;
  dv_uv_gw *gw;                /* the built-in gateway; NULL with an adapter */
  int gw_had_session;          /* a READY session exists: reconnects resume */
  dvoice_gateway_state gw_pub; /* last state reported; 0 before the first */
  uint64_t gw_user_id;
  dvoice_client_callbacks cb;
  void *user_data;
  entry **ents;
  size_t nents, cap;
  struct echo *echoes; /* per guild; see echo_expect() */
  size_t nechoes, echo_cap;
  dv_ring q; /* of qitem */
  uint64_t next_id;
  uv_timer_t timer;
  int in_flush;
  int closing;
  void (*close_cb)(dvoice_client *cl, void *user_data);
  dv_uv_timeline *tl; /* test-only (dv_uv_timeline.h); NULL: none */
};

static void schedule(dvoice_client *cl);
static void on_timer_closed(uv_handle_t *h);

static dvoice_tstamp now_of(const dvoice_client *cl) {
  return cl->env.now(cl->env.now_user_data);
}

/* ---- echoes of leaves -------------------------------------------------------
 *
 * The main gateway answers op 4 messages in order, and answers a leave with
 * a VOICE_STATE_UPDATE whose channel is null for the bot. Until that echo
 * arrives, every voice dispatch of the guild answers an op 4 sent before
 * the leave: none belongs to a join made after it (join, leave, join again
 * before the answers arrived would pair the first join's token with the
 * second's state, then read the echo as a kick). Such dispatches are
 * dropped. The echo may never come (the bot was not in the channel, or the
 * gateway session was lost), so the count is forgotten after a join
 * timeout.
 */

typedef struct echo {
  uint64_t guild_id;
  int leaves;             /* leaves sent whose echo has not arrived */
  dvoice_tstamp deadline; /* forgotten then */
} echo;

static echo *echo_find(dvoice_client *cl, uint64_t guild_id) {
  size_t i;
  for (i = 0; i < cl->nechoes; i++) {
    if (cl->echoes[i].guild_id == guild_id) {
      return &cl->echoes[i];
    }
  }
  return NULL;
}

/* A leave of |guild_id| goes out now. */
static void echo_expect(dvoice_client *cl, uint64_t guild_id) {
  echo *x = echo_find(cl, guild_id);
  dvoice_tstamp wait =
      cl->s.join_timeout != 0 ? cl->s.join_timeout : 10000 * DVOICE_MS;
  if (x == NULL) {
    if (cl->nechoes == cl->echo_cap) {
      size_t cap = cl->echo_cap == 0 ? 4 : cl->echo_cap * 2;
      echo *n = dv_realloc(cl->env.mem, cl->echoes, cap * sizeof(*n));
      if (n == NULL) {
        /* Without the count a stale dispatch may reach a later join. */
        DV_WARN(&cl->env, "client: leave echo not tracked (out of memory)");
        return;
      }
      cl->echoes = n;
      cl->echo_cap = cap;
    }
    x = &cl->echoes[cl->nechoes++];
    x->guild_id = guild_id;
    x->leaves = 0;
  }
  x->leaves++;
  x->deadline = now_of(cl) + wait;
}

/* The leave could not be sent: no echo will come. */
static void echo_unexpect(dvoice_client *cl, uint64_t guild_id) {
  echo *x = echo_find(cl, guild_id);
  if (x != NULL && x->leaves > 0) {
    x->leaves--;
  }
}

/* Nonzero if a dispatch of |guild_id| answers an op 4 sent before a leave
 * still waiting for its echo; |is_echo| (a null channel for the bot) also
 * consumes the oldest such leave. */
static int echo_absorb(dvoice_client *cl, uint64_t guild_id, int is_echo) {
  echo *x = echo_find(cl, guild_id);
  if (x == NULL || x->leaves == 0) {
    return 0;
  }
  if (now_of(cl) >= x->deadline) {
    x->leaves = 0;
    return 0;
  }
  if (is_echo) {
    x->leaves--;
    DV_DEBUG(&cl->env, "client: guild %llu: echo of a leave",
             (unsigned long long)guild_id);
  } else {
    DV_DEBUG(&cl->env,
             "client: guild %llu: answer to an op 4 before a leave "
             "ignored",
             (unsigned long long)guild_id);
  }
  return 1;
}

const char *dvoice_join_state_name(dvoice_join_state s) {
  switch (s) {
    case DVOICE_JOIN_SIGNALLING:
      return "SIGNALLING";
    case DVOICE_JOIN_CONNECTED:
      return "CONNECTED";
    case DVOICE_JOIN_WAIT_SERVER:
      return "WAIT_SERVER";
    case DVOICE_JOIN_BACKOFF:
      return "BACKOFF";
    case DVOICE_JOIN_ENDED:
      return "ENDED";
  }
  return "UNKNOWN";
}

const char *dvoice_gateway_state_name(dvoice_gateway_state s) {
  switch (s) {
    case DVOICE_GATEWAY_CONNECTING:
      return "CONNECTING";
    case DVOICE_GATEWAY_READY:
      return "READY";
    case DVOICE_GATEWAY_RESUMING:
      return "RESUMING";
    case DVOICE_GATEWAY_DISCONNECTED:
      return "DISCONNECTED";
  }
  return "UNKNOWN";
}

const char *dvoice_join_reason_name(dvoice_join_reason r) {
  switch (r) {
    case DVOICE_JOIN_REASON_NONE:
      return "NONE";
    case DVOICE_JOIN_REASON_LEFT:
      return "LEFT";
    case DVOICE_JOIN_REASON_TIMEOUT:
      return "TIMEOUT";
    case DVOICE_JOIN_REASON_KICKED:
      return "KICKED";
    case DVOICE_JOIN_REASON_SERVER_TIMEOUT:
      return "SERVER_TIMEOUT";
    case DVOICE_JOIN_REASON_RETRIES_EXHAUSTED:
      return "RETRIES_EXHAUSTED";
    case DVOICE_JOIN_REASON_VOICE_FAILED:
      return "VOICE_FAILED";
    case DVOICE_JOIN_REASON_ADAPTER_FAILED:
      return "ADAPTER_FAILED";
    case DVOICE_JOIN_REASON_CLIENT_CLOSED:
      return "CLIENT_CLOSED";
  }
  return "UNKNOWN";
}

void dvoice_client_settings_default(dvoice_client_settings *s) {
  memset(s, 0, sizeof(*s));
  dvoice_env_default(&s->env);
}

/* ---- the queue ------------------------------------------------------------
 */

static qitem *qpush(dvoice_client *cl, qtype type, const entry *e) {
  qitem *it;
  if (cl->closing) {
    return NULL;
  }
  it = dv_ring_push(&cl->q, cl->env.mem, sizeof(*it));
  if (it == NULL) {
    DV_ERROR(&cl->env, "client: event dropped (out of memory)");
    return NULL;
  }
  it->type = type;
  if (e != NULL) {
    it->entry_id = e->id;
    it->guild_id = e->guild_id;
  }
  return it;
}

static void push_join_event(dvoice_client *cl, entry *e, dvoice_join_state st,
                            dvoice_join_reason reason) {
  qitem *it;
  if (e->pub == st) {
    return;
  }
  it = qpush(cl, Q_JOIN, e);
  if (it != NULL) {
    it->ev.state = st;
    it->ev.old_state = e->pub;
    it->ev.reason = reason;
    it->ev.guild_id = e->guild_id;
    it->ev.channel_id = e->join.channel_id;
  }
  e->pub = st;
}

static dvoice_join_reason map_reason(dv_join_reason r) {
  switch (r) {
    case DV_JOIN_REASON_NONE:
      return DVOICE_JOIN_REASON_NONE;
    case DV_JOIN_REASON_LEFT:
      return DVOICE_JOIN_REASON_LEFT;
    case DV_JOIN_REASON_TIMEOUT:
      return DVOICE_JOIN_REASON_TIMEOUT;
    case DV_JOIN_REASON_KICKED:
      return DVOICE_JOIN_REASON_KICKED;
    case DV_JOIN_REASON_SERVER_TIMEOUT:
      return DVOICE_JOIN_REASON_SERVER_TIMEOUT;
    case DV_JOIN_REASON_RETRIES_EXHAUSTED:
      return DVOICE_JOIN_REASON_RETRIES_EXHAUSTED;
    case DV_JOIN_REASON_VOICE_FAILED:
      return DVOICE_JOIN_REASON_VOICE_FAILED;
  }
  return DVOICE_JOIN_REASON_NONE;
}

/* Ends |e| for a reason the core does not know (adapter, client close). */
static void end_entry(dvoice_client *cl, entry *e, dvoice_join_reason reason) {
  if (e->ended) {
    return;
  }
  e->ended = 1;
  push_join_event(cl, e, DVOICE_JOIN_ENDED, reason);
  if (e->conn != NULL) {
    (void)dv_uv_conn_end(e->conn, DVOICE_CONN_REASON_JOIN_ENDED);
  }
}

/* Applies the join core's decisions; call after every input. */
static void drain(dvoice_client *cl, entry *e) {
  dv_join_action a;
  qitem *it;
  int rv;
  while (dv_join_next_action(&e->join, &a) == 1) {
    switch (a.type) {
      case DV_JOIN_ACT_SEND_OP4:
        it = qpush(cl, Q_OP4, e);
        if (it != NULL) {
          it->expect_echo = e->leaving && a.u.op4.channel_id == 0;
          it->channel_id = a.u.op4.channel_id;
          it->self_mute = a.u.op4.self_mute;
          it->self_deaf = a.u.op4.self_deaf;
        }
        break;
      case DV_JOIN_ACT_CONNECT:
      case DV_JOIN_ACT_NEW_SESSION:
        if (e->conn == NULL) {
          break;
        }
        rv = dv_uv_conn_start(e->conn, a.u.creds.session_id, a.u.creds.token,
                              a.u.creds.endpoint);
        if (rv != 0) {
          DV_WARN(&cl->env, "client: guild %llu: credentials refused: %s",
                  (unsigned long long)e->guild_id, dvoice_strerror(rv));
          (void)dv_join_on_conn_state(&e->join, DVOICE_CONN_DISCONNECTED,
                                      now_of(cl));
        }
        break;
      case DV_JOIN_ACT_SUSPEND:
        if (e->conn != NULL) {
          dv_uv_conn_suspend(e->conn);
        }
        break;
      case DV_JOIN_ACT_END:
        e->ended = 1;
        push_join_event(cl, e, DVOICE_JOIN_ENDED, map_reason(a.u.end.reason));
        if (e->conn != NULL) {
          (void)dv_uv_conn_end(e->conn, DVOICE_CONN_REASON_JOIN_ENDED);
        }
        break;
    }
  }
  if (!e->ended) {
    switch (dv_join_get_state(&e->join)) {
      case DV_JOIN_SIGNALLING:
        push_join_event(cl, e, DVOICE_JOIN_SIGNALLING, DVOICE_JOIN_REASON_NONE);
        break;
      case DV_JOIN_CONNECTED:
        push_join_event(cl, e, DVOICE_JOIN_CONNECTED, DVOICE_JOIN_REASON_NONE);
        break;
      case DV_JOIN_WAIT_SERVER:
        push_join_event(cl, e, DVOICE_JOIN_WAIT_SERVER,
                        DVOICE_JOIN_REASON_NONE);
        break;
      case DV_JOIN_BACKOFF:
        push_join_event(cl, e, DVOICE_JOIN_BACKOFF, DVOICE_JOIN_REASON_NONE);
        break;
      case DV_JOIN_IDLE:
      case DV_JOIN_ENDED:
        break;
    }
  }
  schedule(cl);
}

/* ---- entries --------------------------------------------------------------
 */

static entry *find_live(const dvoice_client *cl, uint64_t guild_id) {
  size_t i;
  for (i = 0; i < cl->nents; i++) {
    entry *e = cl->ents[i];
    if (e->guild_id == guild_id && !e->ended && e->conn != NULL) {
      return e;
    }
  }
  return NULL;
}

static entry *find_id(const dvoice_client *cl, uint64_t id) {
  size_t i;
  for (i = 0; i < cl->nents; i++) {
    if (cl->ents[i]->id == id) {
      return cl->ents[i];
    }
  }
  return NULL;
}

static void remove_entry(dvoice_client *cl, entry *e) {
  size_t i;
  for (i = 0; i < cl->nents; i++) {
    if (cl->ents[i] == e) {
      memmove(&cl->ents[i], &cl->ents[i + 1],
              (cl->nents - i - 1) * sizeof(*cl->ents));
      cl->nents--;
      break;
    }
  }
  dv_join_free(&e->join);
  dv_free(cl->env.mem, e);
}

/* The connection's state changes, before the application sees them. */
static void hook_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  entry *e = ud;
  (void)c;
  if (e->ended) {
    return;
  }
  (void)dv_join_on_conn_state(&e->join, ev->state, now_of(e->cl));
  drain(e->cl, e);
}

/* The application closes the connection: that leaves the channel. */
static void hook_closing(dvoice_conn *c, void *ud) {
  entry *e = ud;
  dvoice_client *cl = e->cl;
  (void)c;
  e->conn = NULL;
  if (!e->ended) {
    e->leaving = 1;
    (void)dv_join_leave(&e->join, now_of(cl));
    drain(cl, e);
  }
  remove_entry(cl, e);
}

/* ---- the loop side --------------------------------------------------------
 */

static void flush(dvoice_client *cl);

static void on_timer(uv_timer_t *h) {
  flush(h->data);
}

static void rearm(dvoice_client *cl) {
  dvoice_tstamp t = DVOICE_TSTAMP_NONE, x, now;
  uint64_t ms = 0;
  size_t i;
  if (cl->closing) {
    return;
  }
  if (cl->q.len > 0) {
    uv_timer_start(&cl->timer, on_timer, 0, 0);
    return;
  }
  for (i = 0; i < cl->nents; i++) {
    if (!cl->ents[i]->ended) {
      x = dv_join_get_expiry(&cl->ents[i]->join);
      t = x < t ? x : t;
    }
  }
  if (t == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&cl->timer);
    return;
  }
  now = now_of(cl);
  if (t > now) {
    ms = (t - now + DVOICE_MS - 1) / DVOICE_MS;
  }
  uv_timer_start(&cl->timer, on_timer, ms, 0);
}

static void schedule(dvoice_client *cl) {
  if (!cl->in_flush) {
    rearm(cl);
  }
}

static void deliver(dvoice_client *cl) {
  while (cl->q.len > 0 && !cl->closing) {
    qitem it = *(qitem *)dv_ring_shift(&cl->q, sizeof(qitem));
    entry *e;
    int rv;
    switch (it.type) {
      case Q_OP4:
        /* Counted first: an adapter may feed the echo from inside. */
        if (it.expect_echo) {
          echo_expect(cl, it.guild_id);
        }
        if (cl->gw != NULL) {
          rv = dv_uv_gw_update_voice_state(cl->gw, it.guild_id, it.channel_id,
                                           it.self_mute, it.self_deaf);
        } else {
          rv = cl->adapter.send_voice_state(cl, it.guild_id, it.channel_id,
                                            it.self_mute, it.self_deaf,
                                            cl->adapter_ud);
        }
        if (rv >= 0 && it.channel_id != 0 && cl->tl != NULL &&
            cl->tl->at[DV_UV_STEP_OP4] == 0) {
          cl->tl->at[DV_UV_STEP_OP4] = now_of(cl);
        }
        if (rv < 0) {
          DV_WARN(&cl->env, "client: adapter refused op 4 for guild %llu",
                  (unsigned long long)it.guild_id);
          if (it.expect_echo) {
            echo_unexpect(cl, it.guild_id);
          }
          e = find_id(cl, it.entry_id);
          if (e != NULL && it.channel_id != 0) {
            end_entry(cl, e, DVOICE_JOIN_REASON_ADAPTER_FAILED);
          }
        }
        break;
      case Q_JOIN:
        e = find_id(cl, it.entry_id);
        if (e != NULL && e->conn != NULL && cl->cb.on_join != NULL) {
          cl->cb.on_join(cl, e->conn, &it.ev, cl->user_data);
        }
        break;
      case Q_GW:
        if (cl->cb.on_gateway != NULL) {
          cl->cb.on_gateway(cl, &it.gev, cl->user_data);
        }
        break;
    }
  }
}

static void flush(dvoice_client *cl) {
  dvoice_tstamp now;
  size_t i;
  if (cl->closing) {
    return;
  }
  cl->in_flush = 1;
  now = now_of(cl);
  for (i = 0; i < cl->nents; i++) {
    entry *e = cl->ents[i];
    if (!e->ended && dv_join_get_expiry(&e->join) <= now) {
      (void)dv_join_handle_expiry(&e->join, now);
      drain(cl, e);
    }
  }
  deliver(cl);
  cl->in_flush = 0;
  rearm(cl);
}

/* ---- the built-in gateway -------------------------------------------------
 */

static void push_gw_state(dvoice_client *cl, dvoice_gateway_state st,
                          int close_code) {
  qitem *it;
  if (cl->gw_pub == st) {
    return;
  }
  cl->gw_pub = st;
  it = qpush(cl, Q_GW, NULL);
  if (it != NULL) {
    it->gev.state = st;
    it->gev.close_code = close_code;
    it->gev.user_id = cl->gw_user_id;
  }
  schedule(cl);
}

/* The bot's user id, from READY, when none was configured: joins made
 * before READY (their voice states can only come after it) get it now. */
static void learn_user_id(dvoice_client *cl, uint64_t user_id) {
  size_t i;
  if (user_id == 0) {
    return; /* the machine does not hand out a READY without one */
  }
  cl->s.user_id = user_id;
  cl->tmpl.user_id = user_id;
  for (i = 0; i < cl->nents; i++) {
    entry *e = cl->ents[i];
    (void)dv_join_set_user_id(&e->join, user_id);
    if (e->conn != NULL) {
      /* Not started yet: no voice state could be matched before. */
      (void)dv_uv_conn_set_user_id(e->conn, user_id);
    }
  }
}

/* The machine's events feed the join layer exactly as the adapter entry
 * points do; state changes reach the application from the queue. */
static void gw_event(dv_uv_gw *g, const dv_gw_event *ev, void *ud) {
  dvoice_client *cl = ud;
  (void)g;
  switch (ev->type) {
    case DV_GW_EV_READY:
      cl->gw_had_session = 1;
      cl->gw_user_id = ev->u.ready.user_id;
      if (cl->s.user_id == 0) {
        learn_user_id(cl, cl->gw_user_id);
      } else if (cl->gw_user_id != cl->s.user_id) {
        /* The configured id stays: voice states are matched against it. */
        DV_WARN(&cl->env, "client: READY for user %llu, configured %llu",
                (unsigned long long)cl->gw_user_id,
                (unsigned long long)cl->s.user_id);
      }
      push_gw_state(cl, DVOICE_GATEWAY_READY, 0);
      break;
    case DV_GW_EV_RESUMED:
      push_gw_state(cl, DVOICE_GATEWAY_READY, 0);
      break;
    case DV_GW_EV_VOICE_STATE:
      if (ev->u.voice_state.guild_id != 0 && ev->u.voice_state.user_id != 0) {
        (void)dvoice_client_voice_state(
            cl, ev->u.voice_state.guild_id, ev->u.voice_state.user_id,
            ev->u.voice_state.has_channel ? ev->u.voice_state.channel_id : 0,
            ev->u.voice_state.session_id);
      }
      break;
    case DV_GW_EV_VOICE_SERVER:
      (void)dvoice_client_voice_server(cl, ev->u.voice_server.guild_id,
                                       ev->u.voice_server.token,
                                       ev->u.voice_server.endpoint);
      break;
    case DV_GW_EV_STATE:
      switch (ev->u.state.state) {
        case DV_GW_READY:
          break; /* reported by EV_READY / EV_RESUMED, with the user id */
        case DV_GW_DISCONNECTED:
          push_gw_state(cl, DVOICE_GATEWAY_DISCONNECTED,
                        ev->u.state.close_code);
          break;
        case DV_GW_INVALID_WAIT:
        case DV_GW_IDENTIFYING:
          cl->gw_had_session = 0;
          push_gw_state(cl, DVOICE_GATEWAY_CONNECTING, 0);
          break;
        case DV_GW_RESUMING:
          push_gw_state(cl, DVOICE_GATEWAY_RESUMING, 0);
          break;
        case DV_GW_IDLE:
        case DV_GW_CONNECTING:
        case DV_GW_HELLO_WAIT:
        case DV_GW_BACKOFF:
          if (ev->u.state.close_code != 0 &&
              dv_gw_policy_for(ev->u.state.close_code) ==
                  DV_GW_ACT_REIDENTIFY) {
            cl->gw_had_session = 0;
          }
          push_gw_state(cl,
                        cl->gw_had_session ? DVOICE_GATEWAY_RESUMING
                                           : DVOICE_GATEWAY_CONNECTING,
                        ev->u.state.close_code);
          break;
      }
      break;
    case DV_GW_EV_CONNECT:
    case DV_GW_EV_CLOSE_WS:
    case DV_GW_EV_HEARTBEAT_ACK:
      break;
  }
}

static void gw_dispatch(dv_uv_gw *g, const char *name, const char *d,
                        size_t d_len, void *ud) {
  dvoice_client *cl = ud;
  (void)g;
  if (cl->cb.on_dispatch != NULL) {
    cl->cb.on_dispatch(cl, name, d, d_len, cl->user_data);
  }
}

static int start_gateway(dvoice_client *cl,
                         const dvoice_client_settings *settings) {
  dv_gw_config cfg;
  dv_uv_gw_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_event = gw_event;
  cb.on_dispatch = gw_dispatch;
  dv_gw_config_default(&cfg);
  cfg.token = settings->token;
  cfg.url = settings->gateway_url;
  cfg.intents = settings->intents;
  /* The voice template may skip verification; the gateway never did. */
  dv_tls_conf *tls = cl->tmpl.tls.insecure_skip_verify ? NULL : cl->tls_conf;
  return dv_uv_gw_start(&cl->gw, cl->loop, &cl->env, &cfg, cl->ca_file, tls,
                        &cb, cl);
}

/*
 * Builds the client's one TLS configuration now, as Node loads its CA
 * bundle once at start-up: parsing the system bundle takes milliseconds,
 * which would otherwise block the loop at every voice connect. A failure
 * is only logged: each connection then builds its own and reports the
 * same error when it connects, as before.
 */
static void make_tls_conf(dvoice_client *cl) {
  dv_tls_conf_opts o;
  int rv;
  memset(&o, 0, sizeof(o));
  o.ca_file = cl->ca_file;
  o.insecure_skip_verify = cl->tmpl.tls.insecure_skip_verify;
  rv = dv_tls_conf_new(&cl->tls_conf, &o, &cl->env);
  if (rv != 0) {
    DV_WARN(&cl->env, "client: no shared TLS configuration: %s",
            dvoice_strerror(rv));
  }
}

/* ---- public API -----------------------------------------------------------
 */

int dvoice_client_new(dvoice_client **out, struct uv_loop_s *loop,
                      const dvoice_client_settings *settings,
                      const dvoice_client_callbacks *callbacks,
                      void *user_data) {
  dvoice_client *cl;
  dvoice_env env;
  int rv;
  if (out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  /* With the built-in gateway user_id may be 0: READY tells it. */
  if (loop == NULL || settings == NULL ||
      (settings->adapter != NULL && settings->user_id == 0) ||
      (settings->adapter == NULL && settings->token == NULL) ||
      (settings->adapter != NULL &&
       settings->adapter->send_voice_state == NULL) ||
      settings->max_sessions < 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (settings->pacer != NULL && dv_uv_pacer_loop(settings->pacer) != loop) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_uv_env_resolve(&env, &settings->env);
  if (rv != 0) {
    return rv;
  }
  cl = dv_calloc(env.mem, 1, sizeof(*cl));
  if (cl == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  cl->loop = loop;
  cl->env = env;
  cl->s = *settings;
  cl->s.adapter = NULL;
  cl->s.conn = NULL;
  cl->s.token = cl->s.gateway_url = NULL;
  if (settings->adapter != NULL) {
    cl->adapter = *settings->adapter;
  }
  cl->adapter_ud = settings->adapter_user_data;
  if (callbacks != NULL) {
    cl->cb = *callbacks;
  }
  cl->user_data = user_data;
  if (settings->conn != NULL) {
    cl->tmpl = *settings->conn;
  } else {
    dvoice_conn_settings_default(&cl->tmpl);
  }
  cl->tmpl.session_id = cl->tmpl.token = cl->tmpl.endpoint = NULL;
  if (cl->tmpl.tls.ca_file != NULL) {
    cl->ca_file = dv_strdup(env.mem, cl->tmpl.tls.ca_file);
    if (cl->ca_file == NULL) {
      dv_free(env.mem, cl);
      return DVOICE_ERR_NOMEM;
    }
    cl->tmpl.tls.ca_file = cl->ca_file;
  }
  cl->tmpl.env = settings->env;
  cl->tmpl.pacer = settings->pacer;
  cl->tmpl.user_id = settings->user_id;
  cl->next_id = 1;
  if (uv_timer_init(loop, &cl->timer) != 0) {
    dv_free(env.mem, cl->ca_file);
    dv_free(env.mem, cl);
    return DVOICE_ERR_INTERNAL;
  }
  cl->timer.data = cl;
  make_tls_conf(cl);
  if (settings->adapter == NULL) {
    rv = start_gateway(cl, settings);
    if (rv != 0) {
      cl->closing = 1;
      uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
      return rv == DVOICE_ERR_INVALID_STATE ? DVOICE_ERR_INTERNAL : rv;
    }
  }
  *out = cl;
  return 0;
}

int dvoice_client_join(dvoice_client *cl, uint64_t guild_id,
                       uint64_t channel_id, uint32_t flags,
                       const dvoice_conn_callbacks *callbacks, void *user_data,
                       dvoice_conn **out) {
  dv_join_config jc;
  dvoice_conn_settings cs;
  dv_uv_conn_hooks hooks;
  entry *e;
  int rv;
  if (out != NULL) {
    *out = NULL;
  }
  if (cl == NULL || out == NULL || guild_id == 0 || channel_id == 0 ||
      (flags & ~(DVOICE_JOIN_SELF_MUTE | DVOICE_JOIN_SELF_DEAF)) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  e = find_live(cl, guild_id);
  if (e != NULL) {
    /* A move: the same connection is renewed once both events arrive. */
    rv = dv_join_start(&e->join, channel_id,
                       (flags & DVOICE_JOIN_SELF_MUTE) != 0,
                       (flags & DVOICE_JOIN_SELF_DEAF) != 0, now_of(cl));
    if (rv != 0) {
      return rv;
    }
    drain(cl, e);
    *out = e->conn;
    return 0;
  }
  if (cl->nents == cl->cap) {
    size_t cap = cl->cap == 0 ? 4 : cl->cap * 2;
    entry **n = dv_realloc(cl->env.mem, cl->ents, cap * sizeof(*n));
    if (n == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    cl->ents = n;
    cl->cap = cap;
  }
  e = dv_calloc(cl->env.mem, 1, sizeof(*e));
  if (e == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  e->cl = cl;
  e->id = cl->next_id++;
  e->guild_id = guild_id;
  dv_join_config_default(&jc);
  jc.guild_id = guild_id;
  jc.user_id = cl->s.user_id;
  jc.join_timeout = cl->s.join_timeout;
  jc.server_wait = cl->s.server_wait;
  jc.endpoint_wait = cl->s.endpoint_wait;
  jc.max_sessions = cl->s.max_sessions;
  rv = dv_join_init(&e->join, &jc, &cl->env);
  if (rv != 0) {
    dv_free(cl->env.mem, e);
    return rv;
  }
  cs = cl->tmpl;
  cs.guild_id = guild_id;
  cs.channel_id = channel_id;
  rv = dv_uv_conn_new_deferred(&e->conn, cl->loop, &cs, callbacks, user_data);
  if (rv != 0) {
    dv_join_free(&e->join);
    dv_free(cl->env.mem, e);
    return rv;
  }
  if (cl->tls_conf != NULL) {
    dv_uv_conn_set_tls_conf(e->conn, cl->tls_conf);
  }
  hooks.on_state = hook_state;
  hooks.on_closing = hook_closing;
  dv_uv_conn_set_hooks(e->conn, &hooks, e);
  cl->ents[cl->nents++] = e;
  (void)dv_join_start(&e->join, channel_id,
                      (flags & DVOICE_JOIN_SELF_MUTE) != 0,
                      (flags & DVOICE_JOIN_SELF_DEAF) != 0, now_of(cl));
  *out = e->conn;
  drain(cl, e);
  return 0;
}

int dvoice_client_leave(dvoice_client *cl, dvoice_conn *c,
                        void (*close_cb)(dvoice_conn *c, void *user_data)) {
  size_t i;
  if (cl == NULL || c == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < cl->nents; i++) {
    if (cl->ents[i]->conn == c) {
      return dvoice_conn_close(c, close_cb);
    }
  }
  return DVOICE_ERR_INVALID_ARGUMENT;
}

static int valid_text(const char *s, size_t max) {
  size_t n;
  if (s == NULL) {
    return 0;
  }
  n = strlen(s);
  return n > 0 && n <= max;
}

int dvoice_client_voice_state(dvoice_client *cl, uint64_t guild_id,
                              uint64_t user_id, uint64_t channel_id,
                              const char *session_id) {
  entry *e;
  int rv;
  if (cl == NULL || guild_id == 0 || user_id == 0 ||
      (channel_id != 0 && !valid_text(session_id, DV_JOIN_SESSION_MAX)) ||
      (session_id != NULL && strlen(session_id) > DV_JOIN_SESSION_MAX)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (user_id == cl->s.user_id && echo_absorb(cl, guild_id, channel_id == 0)) {
    return 0;
  }
  e = find_live(cl, guild_id);
  if (e == NULL) {
    return 0;
  }
  rv = dv_join_on_voice_state(&e->join, user_id, channel_id != 0, channel_id,
                              session_id, now_of(cl));
  drain(cl, e);
  return rv == DVOICE_ERR_INVALID_STATE ? 0 : rv;
}

int dvoice_client_voice_server(dvoice_client *cl, uint64_t guild_id,
                               const char *token, const char *endpoint) {
  entry *e;
  int rv;
  if (cl == NULL || guild_id == 0 || !valid_text(token, DV_JOIN_TOKEN_MAX) ||
      (endpoint != NULL && strlen(endpoint) > DV_JOIN_ENDPOINT_MAX)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (echo_absorb(cl, guild_id, 0)) {
    return 0;
  }
  e = find_live(cl, guild_id);
  if (e == NULL) {
    return 0;
  }
  rv = dv_join_on_voice_server(&e->join, token, endpoint, now_of(cl));
  drain(cl, e);
  return rv == DVOICE_ERR_INVALID_STATE ? 0 : rv;
}

int dvoice_client_voice_state_json(dvoice_client *cl, const char *json,
                                   size_t len) {
  dv_join_voice_state vs;
  const char *field;
  int rv;
  if (cl == NULL || json == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_join_parse_voice_state(json, len, &vs, &field);
  if (rv != 0) {
    DV_DEBUG(&cl->env, "client: VOICE_STATE_UPDATE refused (%s%s%s)",
             dvoice_strerror(rv), field != NULL ? ", " : "",
             field != NULL ? field : "");
    return DVOICE_ERR_MALFORMED;
  }
  rv = dvoice_client_voice_state(cl, vs.guild_id, vs.user_id,
                                 vs.has_channel ? vs.channel_id : 0,
                                 vs.has_session ? vs.session_id : NULL);
  return rv == DVOICE_ERR_INVALID_ARGUMENT ? DVOICE_ERR_MALFORMED : rv;
}

int dvoice_client_voice_server_json(dvoice_client *cl, const char *json,
                                    size_t len) {
  dv_join_voice_server vs;
  const char *field;
  int rv;
  if (cl == NULL || json == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_join_parse_voice_server(json, len, &vs, &field);
  if (rv != 0) {
    DV_DEBUG(&cl->env, "client: VOICE_SERVER_UPDATE refused (%s%s%s)",
             dvoice_strerror(rv), field != NULL ? ", " : "",
             field != NULL ? field : "");
    return DVOICE_ERR_MALFORMED;
  }
  rv = dvoice_client_voice_server(cl, vs.guild_id, vs.token,
                                  vs.has_endpoint ? vs.endpoint : NULL);
  dv_wipe(&vs, sizeof(vs));
  return rv == DVOICE_ERR_INVALID_ARGUMENT ? DVOICE_ERR_MALFORMED : rv;
}

void *dvoice_client_get_user_data(const dvoice_client *cl) {
  return cl != NULL ? cl->user_data : NULL;
}

static void on_timer_closed(uv_handle_t *h) {
  dvoice_client *cl = h->data;
  const dvoice_mem *mem = cl->env.mem;
  if (cl->close_cb != NULL) {
    cl->close_cb(cl, cl->user_data);
  }
  dv_ring_free(&cl->q, mem);
  dv_free(mem, cl->ents);
  dv_free(mem, cl->echoes);
  dv_free(mem, cl->ca_file);
  dv_tls_conf_del(cl->tls_conf);
  dv_free(mem, cl);
}

int dvoice_client_close(dvoice_client *cl,
                        void (*close_cb)(dvoice_client *cl, void *user_data)) {
  if (cl == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (cl->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  cl->closing = 1;
  cl->close_cb = close_cb;
  /* Each close removes its entry through hook_closing. */
  while (cl->nents > 0) {
    entry *e = cl->ents[cl->nents - 1];
    if (e->conn != NULL) {
      (void)dvoice_conn_close(e->conn, NULL);
    } else {
      remove_entry(cl, e);
    }
  }
  dv_ring_clear(&cl->q);
  /* Close 1000 ends the session, which takes the bot's voice states with
   * it: no op 4 leave is needed for the joins closed above. */
  if (cl->gw != NULL) {
    dv_uv_gw_close(cl->gw);
    cl->gw = NULL;
  }
  uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
  return 0;
}

dv_tls_conf *dv_uv_client_tls_conf(const dvoice_client *cl) {
  return cl->tls_conf;
}

void dv_uv_client_set_timeline(dvoice_client *cl, dv_uv_timeline *tl) {
  cl->tl = tl;
}
