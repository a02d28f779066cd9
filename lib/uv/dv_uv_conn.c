/*
 * dvoice_conn: the voice connection driver. It wires the voice gateway core
 * (lib/voice) to a WebSocket stream (lib/uv/dv_uv_stream), a connected UDP
 * socket (IP discovery, keepalive, receive demux and decryption with
 * lib/rtp), one uv_timer armed from the cores' deadlines, and the loop's
 * pacer (lib/uv/dv_uv_pacer) for sending.
 *
 * Glue pattern: every libuv callback feeds a core, then calls flush() last.
 * flush() runs the actions the voice core asked for (open a WebSocket, open
 * the UDP socket), the expiries that are due, drains the voice core's output
 * onto the WebSocket, releases or holds the pacer connection, delivers the
 * queued application events, and finally re-arms the one timer.
 *
 * Application callbacks never run inside a core's callback: core events are
 * queued and delivered by flush() once the core call has returned, so the
 * application may call any public function from its callbacks. Public
 * functions never deliver events themselves; they schedule a flush on the
 * timer (0 ms) unless one is running.
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "audio/dv_hist.h"
#include "audio/dv_jitter.h"
#include "audio/dv_opus.h"
#include "audio/dv_pacer.h"
#include "rtp/dv_rtp.h"
#include "rtp/dv_rtp_crypt.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "util/dv_ring.h"
#include "uv/dv_uv_conn.h"
#include "uv/dv_uv_env.h"
#include "uv/dv_uv_pacer.h"
#include "uv/dv_uv_stream.h"
#include "uv/dv_uv_timeline.h"
#include "voice/dv_voice.h"

#define RX_BUF_SIZE 2048
#define REASON_MAX 124

/* An application event waiting for delivery. */
typedef enum aev_type {
  AEV_STATE = 1,
  AEV_SPEAKING,
  AEV_USER,
  AEV_DRAIN,
  AEV_STREAM
} aev_type;

typedef struct aev {
  aev_type type;
  union {
    struct {
      dvoice_conn_event ev; /* close_reason points at |reason| on delivery */
      char reason[REASON_MAX];
    } st;
    struct {
      uint64_t user_id;
      uint32_t ssrc, flags;
    } speaking;
    struct {
      uint64_t user_id;
      int joined;
    } user;
    struct {
      int active;
    } stream;
  } u;
} aev;

/* One UDP socket; heap-allocated so that a new session can open the next
 * one while the previous one is still closing. */
typedef struct udp_sock {
  uv_udp_t h;
  dvoice_conn *c;
} udp_sock;

/* A prepared packet. The payload is kept so that the packet can be sealed
 * again if the key or SSRC changed while it waited (a new session). */
typedef struct pkt_slot {
  uint8_t data[DV_RTP_MAX_PACKET];
  size_t len;
  uint8_t payload[DV_OPUS_MAX_PACKET];
  size_t payload_len;
  uint16_t seq;
  uint32_t timestamp;
  uint32_t gen; /* key generation it was sealed with */
  uv_udp_send_t req;
  int inflight; /* uv_udp_send fallback in progress */
} pkt_slot;

/* A speaker being decoded (on_pcm): its jitter buffer and decoder,
 * allocated when its first packet arrives. */
typedef struct speaker {
  uint32_t ssrc;
  dv_jitter *jb;
  dv_opus_dec *dec;
} speaker;

struct dvoice_conn {
  uv_loop_t *loop;
  dvoice_env env;
  dvoice_conn_settings s; /* string members cleared; copies below */
  char *endpoint;
  char *ca_file;
  dvoice_conn_callbacks cb;
  void *user_data;

  dv_voice voice;
  dvoice_pacer *pacer;
  int private_pacer;
  dv_pacer_conn *pc;

  /* WebSocket. */
  dv_uv_ws *ws;
  int want_connect;
  int last_ws_err;
  int last_close_code;
  char last_reason[REASON_MAX];

  /* UDP. */
  udp_sock *udp;
  int udp_ready; /* IP discovery done */
  int want_udp;
  char udp_ip[16];
  uint16_t udp_port;
  uint32_t ssrc;
  dv_ipdisc_retry ipd;
  dv_keepalive ka;
  int udp_err;
  uint8_t rx_buf[RX_BUF_SIZE];
  uint8_t rx_plain[RX_BUF_SIZE];

  /* Transport encryption. */
  dv_rtp_crypt crypt;
  int have_key;
  uint32_t key_gen;

  /* Send side. */
  pkt_slot slot[2];
  int prepared; /* index of the prepared slot, -1 if none */
  int held;

  /* Decoded receive (on_pcm). */
  speaker *spk;
  size_t nspk;
  uv_timer_t rx_timer;
  int rx_running;
  dvoice_tstamp rx_next;
  int16_t pcm[DV_OPUS_MAX_DECODE_SAMPLES * DV_OPUS_CHANNELS];

  /* Timer and flush. */
  uv_timer_t timer;
  int in_flush, need_flush;

  /* Events for the application. */
  dv_ring evq; /* of aev */
  dvoice_conn_state pub_state;
  int resuming;
  int first_event_sent;

  /* Statistics kept by the glue. */
  dv_hist departure;
  dvoice_tstamp first_departure, last_departure;
  uint64_t send_queued, send_errors_glue, packets_received, decrypt_failures;
  uint64_t rx_other, keepalives_sent, ipdisc_requests, resumes, sessions;
  dvoice_tstamp rtt;

  /* Closing. */
  int closing;
  int pending; /* handles and objects whose close callbacks are awaited */
  void (*close_cb)(dvoice_conn *c, void *user_data);

  /* Owner hooks (dvoice_client, see dv_uv_conn.h). */
  int deferred;                /* created without credentials, not started */
  int suspended;               /* the server is going away: do not send */
  dvoice_conn_reason end_reason; /* set by dv_uv_conn_end */
  dv_uv_conn_hooks hooks;
  void *hooks_ud;

  /* Test-only join timeline (dv_uv_timeline.h); NULL: none. */
  dv_uv_timeline *tl;
};

static void flush(dvoice_conn *c);
static void schedule(dvoice_conn *c);

static dvoice_tstamp now_of(const dvoice_conn *c) {
  return dv_uv_env_now(&c->env);
}

/* Records the first time of |step| when a timeline is set. */
static void tl_mark(dvoice_conn *c, dv_uv_step step) {
  if (c->tl != NULL && c->tl->at[step] == 0) {
    c->tl->at[step] = now_of(c);
  }
}

/* The timeline's view of a voice gateway JSON message: its "op" (the
 * first one; voice messages nest none), or -1. Never used otherwise. */
static int tl_op(const uint8_t *p, size_t len) {
  size_t i, j;
  int op = 0, digits = 0;
  for (i = 0; i + 4 <= len; i++) {
    if (memcmp(p + i, "\"op\"", 4) == 0) {
      for (j = i + 4; j < len && (p[j] == ' ' || p[j] == ':'); j++) {
      }
      for (; j < len && p[j] >= '0' && p[j] <= '9' && digits < 3; j++) {
        op = op * 10 + (p[j] - '0');
        digits++;
      }
      return digits > 0 ? op : -1;
    }
  }
  return -1;
}

/* ---- names ----------------------------------------------------------------
 */

const char *dvoice_conn_state_name(dvoice_conn_state s) {
  switch (s) {
    case DVOICE_CONN_CONNECTING:
      return "CONNECTING";
    case DVOICE_CONN_READY:
      return "READY";
    case DVOICE_CONN_RESUMING:
      return "RESUMING";
    case DVOICE_CONN_NEED_SESSION:
      return "NEED_SESSION";
    case DVOICE_CONN_WAIT_SERVER:
      return "WAIT_SERVER";
    case DVOICE_CONN_DISCONNECTED:
      return "DISCONNECTED";
  }
  return "UNKNOWN";
}

const char *dvoice_conn_reason_name(dvoice_conn_reason r) {
  switch (r) {
    case DVOICE_CONN_REASON_NONE:
      return "NONE";
    case DVOICE_CONN_REASON_CLOSED:
      return "CLOSED";
    case DVOICE_CONN_REASON_ZOMBIE:
      return "ZOMBIE";
    case DVOICE_CONN_REASON_HANDSHAKE_TIMEOUT:
      return "HANDSHAKE_TIMEOUT";
    case DVOICE_CONN_REASON_PROTOCOL_ERROR:
      return "PROTOCOL_ERROR";
    case DVOICE_CONN_REASON_NO_COMMON_MODE:
      return "NO_COMMON_MODE";
    case DVOICE_CONN_REASON_RETRIES_EXHAUSTED:
      return "RETRIES_EXHAUSTED";
    case DVOICE_CONN_REASON_WAIT_TIMEOUT:
      return "WAIT_TIMEOUT";
    case DVOICE_CONN_REASON_APP_CLOSED:
      return "APP_CLOSED";
    case DVOICE_CONN_REASON_NOMEM:
      return "NOMEM";
    case DVOICE_CONN_REASON_TRANSPORT:
      return "TRANSPORT";
    case DVOICE_CONN_REASON_UDP:
      return "UDP";
    case DVOICE_CONN_REASON_JOIN_ENDED:
      return "JOIN_ENDED";
  }
  return "UNKNOWN";
}

/* ---- settings -------------------------------------------------------------
 */

void dvoice_conn_settings_default(dvoice_conn_settings *s) {
  if (s == NULL) {
    return;
  }
  memset(s, 0, sizeof(*s));
  dvoice_env_default(&s->env);
  s->queue_frames = 25;
  s->drain_threshold = 12;
  s->opus_bitrate = 64000;
  s->opus_loss_percent = 5;
  s->opus_complexity = 10;
  s->auto_speaking = DVOICE_SPEAKING_MICROPHONE;
  s->rx_jitter_depth = 5;
  s->rx_max_speakers = 64;
}

/* ---- application events ---------------------------------------------------
 */

static aev *evq_push(dvoice_conn *c) {
  aev *e;
  if (c->closing) {
    return NULL;
  }
  e = dv_ring_push(&c->evq, c->env.mem, sizeof(*e));
  if (e == NULL) {
    DV_ERROR(&c->env, "conn: event dropped (out of memory)");
  }
  return e;
}

static void deliver_events(dvoice_conn *c) {
  while (c->evq.len > 0 && !c->closing) {
    aev e = *(aev *)dv_ring_shift(&c->evq, sizeof(aev));
    switch (e.type) {
      case AEV_STATE:
        e.u.st.ev.close_reason = e.u.st.reason;
        if (c->hooks.on_state != NULL) {
          c->hooks.on_state(c, &e.u.st.ev, c->hooks_ud);
          if (c->closing) {
            break;
          }
        }
        if (c->cb.on_state != NULL) {
          c->cb.on_state(c, &e.u.st.ev, c->user_data);
        }
        break;
      case AEV_SPEAKING:
        if (c->cb.on_speaking != NULL) {
          c->cb.on_speaking(c, e.u.speaking.user_id, e.u.speaking.ssrc,
                            e.u.speaking.flags, c->user_data);
        }
        break;
      case AEV_USER:
        if (c->cb.on_user != NULL) {
          c->cb.on_user(c, e.u.user.user_id, e.u.user.joined, c->user_data);
        }
        break;
      case AEV_DRAIN:
        if (c->cb.on_drain != NULL) {
          c->cb.on_drain(c, c->user_data);
        }
        break;
      case AEV_STREAM:
        if (c->cb.on_stream != NULL) {
          c->cb.on_stream(c, e.u.stream.active, c->user_data);
        }
        break;
    }
  }
}

static dvoice_conn_reason map_reason(dv_voice_reason r) {
  switch (r) {
    case DV_VOICE_REASON_NONE:
      return DVOICE_CONN_REASON_NONE;
    case DV_VOICE_REASON_CLOSED:
      return DVOICE_CONN_REASON_CLOSED;
    case DV_VOICE_REASON_ZOMBIE:
      return DVOICE_CONN_REASON_ZOMBIE;
    case DV_VOICE_REASON_HANDSHAKE_TIMEOUT:
      return DVOICE_CONN_REASON_HANDSHAKE_TIMEOUT;
    case DV_VOICE_REASON_PROTOCOL_ERROR:
      return DVOICE_CONN_REASON_PROTOCOL_ERROR;
    case DV_VOICE_REASON_NO_COMMON_MODE:
      return DVOICE_CONN_REASON_NO_COMMON_MODE;
    case DV_VOICE_REASON_RETRIES_EXHAUSTED:
      return DVOICE_CONN_REASON_RETRIES_EXHAUSTED;
    case DV_VOICE_REASON_WAIT_TIMEOUT:
      return DVOICE_CONN_REASON_WAIT_TIMEOUT;
    case DV_VOICE_REASON_APP_CLOSED:
      return DVOICE_CONN_REASON_APP_CLOSED;
    case DV_VOICE_REASON_NOMEM:
      return DVOICE_CONN_REASON_NOMEM;
  }
  return DVOICE_CONN_REASON_NONE;
}

/* Maps the voice core's state to the public one. */
static dvoice_conn_state map_state(const dvoice_conn *c, dv_voice_state s) {
  switch (s) {
    case DV_VOICE_READY:
      return DVOICE_CONN_READY;
    case DV_VOICE_RESUMING:
      return DVOICE_CONN_RESUMING;
    case DV_VOICE_NEED_SESSION:
      return DVOICE_CONN_NEED_SESSION;
    case DV_VOICE_WAIT_SERVER:
      return DVOICE_CONN_WAIT_SERVER;
    case DV_VOICE_DISCONNECTED:
      return DVOICE_CONN_DISCONNECTED;
    case DV_VOICE_IDLE:
    case DV_VOICE_CONNECTING:
    case DV_VOICE_IDENTIFYING:
    case DV_VOICE_UDP_DISCOVERY:
    case DV_VOICE_SELECTING:
    case DV_VOICE_BACKOFF:
      return c->resuming ? DVOICE_CONN_RESUMING : DVOICE_CONN_CONNECTING;
  }
  return DVOICE_CONN_CONNECTING;
}

static void on_voice_state(dvoice_conn *c, const dv_voice_event *ev) {
  dvoice_conn_state ns, old;
  aev *e;
  int failure = ev->u.state.outcome != DV_VOICE_OUTCOME_NONE;
  if (ev->u.state.outcome == DV_VOICE_OUTCOME_RESUME) {
    c->resuming = 1;
  } else if (failure || ev->u.state.state == DV_VOICE_READY) {
    c->resuming = 0;
  }
  ns = map_state(c, ev->u.state.state);
  if (ns == c->pub_state && !failure && c->first_event_sent) {
    return;
  }
  old = c->pub_state;
  c->pub_state = ns; /* even if the event cannot be queued */
  e = evq_push(c);
  if (e == NULL) {
    return;
  }
  c->first_event_sent = 1;
  e->type = AEV_STATE;
  e->u.st.ev.state = ns;
  e->u.st.ev.old_state = old;
  e->u.st.ev.reason = map_reason(ev->u.state.reason);
  if (c->end_reason != DVOICE_CONN_REASON_NONE &&
      ns == DVOICE_CONN_DISCONNECTED) {
    e->u.st.ev.reason = c->end_reason;
  }
  e->u.st.ev.close_code = ev->u.state.close_code;
  e->u.st.ev.fatal = ev->u.state.outcome == DV_VOICE_OUTCOME_FATAL;
  e->u.st.ev.deadline =
      ns == DVOICE_CONN_NEED_SESSION || ns == DVOICE_CONN_WAIT_SERVER
          ? ev->u.state.deadline
          : DVOICE_TSTAMP_NONE;
  if (ev->u.state.reason == DV_VOICE_REASON_CLOSED &&
      ev->u.state.close_code == 0 && c->last_ws_err != 0) {
    /* The socket failed rather than closed. */
    e->u.st.ev.reason = DVOICE_CONN_REASON_TRANSPORT;
    e->u.st.ev.err = c->last_ws_err;
  }
  if (ev->u.state.close_code != 0 &&
      ev->u.state.close_code == c->last_close_code) {
    memcpy(e->u.st.reason, c->last_reason, sizeof(e->u.st.reason));
  }
}

/* ---- the voice core's events (run inside dv_voice_* calls) ----------------
 */

static void ws_drop(dvoice_conn *c, int code);

static void on_voice_event(dv_voice *v, const dv_voice_event *ev, void *ud) {
  dvoice_conn *c = ud;
  aev *e;
  int rv;
  (void)v;
  switch (ev->type) {
    case DV_VOICE_EV_STATE:
      on_voice_state(c, ev);
      break;
    case DV_VOICE_EV_CONNECT:
      c->want_connect = 1;
      break;
    case DV_VOICE_EV_CLOSE_WS:
      ws_drop(c, ev->u.close_ws.code);
      break;
    case DV_VOICE_EV_UDP_START:
      snprintf(c->udp_ip, sizeof(c->udp_ip), "%s", ev->u.udp.ip);
      c->udp_port = ev->u.udp.port;
      c->ssrc = ev->u.udp.ssrc;
      c->want_udp = 1;
      break;
    case DV_VOICE_EV_SESSION: {
      dv_rtp_mode mode = ev->u.session.mode == DV_VOICE_MODE_AES256_GCM_RTPSIZE
                             ? DV_RTP_MODE_AES256GCM
                         : ev->u.session.mode == DV_VOICE_MODE_XCHACHA20_RTPSIZE
                             ? DV_RTP_MODE_XCHACHA20
                             : DV_RTP_MODE_NONE;
      dv_rtp_crypt_clear(&c->crypt);
      c->have_key = 0;
      /* The key is wiped when this callback returns: copy it now. */
      rv = dv_rtp_crypt_init(&c->crypt, mode, ev->u.session.key,
                             DV_RTP_BACKEND_AUTO);
      if (rv != 0) {
        DV_ERROR(&c->env, "conn: transport key rejected: %s",
                 dvoice_strerror(rv));
        break;
      }
      c->have_key = 1;
      c->key_gen++;
      c->ssrc = ev->u.session.ssrc;
      c->sessions++;
      break;
    }
    case DV_VOICE_EV_RESUMED:
      c->resumes++;
      break;
    case DV_VOICE_EV_MAY_SEND:
      break; /* the hold is recomputed by flush() */
    case DV_VOICE_EV_SPEAKING:
      e = evq_push(c);
      if (e != NULL) {
        e->type = AEV_SPEAKING;
        e->u.speaking.user_id = ev->u.speaking.user_id;
        e->u.speaking.ssrc = ev->u.speaking.ssrc;
        e->u.speaking.flags = ev->u.speaking.flags;
      }
      break;
    case DV_VOICE_EV_USER_CONNECT:
    case DV_VOICE_EV_USER_DISCONNECT:
      e = evq_push(c);
      if (e != NULL) {
        e->type = AEV_USER;
        e->u.user.user_id = ev->u.user.user_id;
        e->u.user.joined = ev->type == DV_VOICE_EV_USER_CONNECT;
      }
      break;
    case DV_VOICE_EV_HEARTBEAT_ACK:
      c->rtt = ev->u.ack.rtt;
      break;
  }
}

/* ---- lifetime -------------------------------------------------------------
 */

static void conn_free(dvoice_conn *c) {
  void (*cb)(dvoice_conn *, void *) = c->close_cb;
  const dvoice_mem *mem = c->env.mem;
  if (cb != NULL) {
    cb(c, c->user_data);
  }
  dv_voice_free(&c->voice);
  dv_rtp_crypt_clear(&c->crypt);
  for (size_t i = 0; i < c->nspk; i++) {
    dv_jitter_free(c->spk[i].jb);
    dv_opus_dec_free(c->spk[i].dec);
  }
  dv_free(mem, c->spk);
  dv_ring_free(&c->evq, mem);
  dv_free(mem, c->endpoint);
  dv_free(mem, c->ca_file);
  dv_wipe(c->slot, sizeof(c->slot));
  dv_free(mem, c);
}

static void release(dvoice_conn *c) {
  if (--c->pending == 0 && c->closing) {
    conn_free(c);
  }
}

static void on_ws_released(dv_uv_ws *s, void *ud) {
  (void)s;
  release(ud);
}

static void on_timer_closed(uv_handle_t *h) {
  release(h->data);
}

static void on_udp_closed(uv_handle_t *h) {
  udp_sock *u = h->data;
  dvoice_conn *c = u->c;
  dv_free(c->env.mem, u);
  release(c);
}

static void on_pacer_closed(dvoice_pacer *p, void *ud) {
  (void)p;
  release(ud);
}

/* Closes the current WebSocket (its callbacks stop at once). */
static void ws_drop(dvoice_conn *c, int code) {
  dv_uv_ws *ws = c->ws;
  if (ws == NULL) {
    return;
  }
  c->ws = NULL;
  if (code < 1000 || code > 4999) {
    code = 1000;
  }
  if (dv_uv_ws_close(ws, (uint16_t)code, NULL, on_ws_released) == 0) {
    c->pending++;
  }
}

static void udp_close(dvoice_conn *c) {
  udp_sock *u = c->udp;
  if (u == NULL) {
    return;
  }
  c->udp = NULL;
  c->udp_ready = 0;
  dv_ipdisc_retry_done(&c->ipd);
  dv_keepalive_stop(&c->ka);
  uv_udp_recv_stop(&u->h);
  c->pending++;
  uv_close((uv_handle_t *)&u->h, on_udp_closed);
}

/* ---- the send side (called by the pacer, inside its tick) -----------------
 */

/* The pacer connection may run only while the session can carry audio. */
static void update_hold(dvoice_conn *c) {
  int hold = c->closing || c->suspended ||
             dv_voice_get_state(&c->voice) != DV_VOICE_READY ||
             !dv_voice_may_send(&c->voice) || !c->have_key || !c->udp_ready;
  if (!hold) {
    tl_mark(c, DV_UV_STEP_SENDABLE);
  }
  if (c->pc == NULL || hold == c->held) {
    return;
  }
  c->held = hold;
  dv_pacer_conn_hold(c->pc, hold);
  if (!hold) {
    dv_uv_pacer_kick(c->pacer);
  }
}

static int seal_slot(dvoice_conn *c, pkt_slot *sl) {
  int rv =
      dv_rtp_seal_opus(&c->crypt, sl->seq, sl->timestamp, c->ssrc, sl->payload,
                       sl->payload_len, sl->data, sizeof(sl->data), &sl->len);
  sl->gen = c->key_gen;
  return rv;
}

int dv_uv_conn_prepare(dvoice_conn *c, const dv_pacer_frame *f) {
  pkt_slot *sl;
  int i;
  if (c->closing || !c->have_key) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (f->len > DV_OPUS_MAX_PACKET) {
    return DVOICE_ERR_TOO_LARGE;
  }
  /* Prefer the slot not used last; never one the kernel still holds. */
  i = c->prepared == 0 ? 1 : 0;
  if (c->slot[i].inflight) {
    i = 1 - i;
    if (c->slot[i].inflight) {
      return DVOICE_ERR_NOBUF;
    }
  }
  sl = &c->slot[i];
  memcpy(sl->payload, f->data, f->len);
  sl->payload_len = f->len;
  sl->seq = f->seq;
  sl->timestamp = f->timestamp;
  if (seal_slot(c, sl) != 0) {
    return DVOICE_ERR_CRYPTO;
  }
  c->prepared = i;
  return 0;
}

static void on_udp_sent(uv_udp_send_t *req, int status) {
  pkt_slot *sl = req->data;
  sl->inflight = 0;
  (void)status; /* counted when queued; a later failure is only logged */
}

int dv_uv_conn_send(dvoice_conn *c) {
  pkt_slot *sl;
  uv_buf_t b;
  int rv;
  dvoice_tstamp now, slot_time;
  if (c->prepared < 0 || c->udp == NULL || c->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  sl = &c->slot[c->prepared];
  c->prepared = -1;
  if (sl->gen != c->key_gen && seal_slot(c, sl) != 0) {
    /* Sealed for a previous session: seal it again with the new key. */
    return DVOICE_ERR_CRYPTO;
  }
  b = uv_buf_init((char *)sl->data, (unsigned)sl->len);
  now = now_of(c);
  rv = uv_udp_try_send(&c->udp->h, &b, 1, NULL);
  if (rv == UV_EAGAIN || rv == UV_ENOBUFS) {
    sl->req.data = sl;
    rv = uv_udp_send(&sl->req, &c->udp->h, &b, 1, NULL, on_udp_sent);
    if (rv == 0) {
      sl->inflight = 1;
      c->send_queued++;
    }
  } else if (rv > 0) {
    rv = 0;
  }
  if (rv < 0) {
    DV_DEBUG(&c->env, "conn: udp send: %s", uv_strerror(rv));
    return DVOICE_ERR_TRANSPORT;
  }
  slot_time = dv_uv_pacer_slot(c->pacer);
  dv_hist_record(&c->departure, now > slot_time ? now - slot_time : 0);
  if (c->departure.count == 1) {
    c->first_departure = now;
  }
  c->last_departure = now;
  return 0;
}

int dv_uv_conn_pull(dvoice_conn *c, dv_pull_result *out) {
  dvoice_source_frame f;
  int rv;
  if (c->closing || c->cb.source == NULL) {
    out->kind = DV_PULL_NOTHING;
    return 0;
  }
  memset(&f, 0, sizeof(f));
  rv = c->cb.source(c, &f, c->user_data);
  if (rv != 0) {
    return DVOICE_ERR_CALLBACK_FAILURE;
  }
  if (c->closing) {
    out->kind = DV_PULL_NOTHING;
    return 0;
  }
  switch (f.kind) {
    case DVOICE_SOURCE_NOTHING:
      out->kind = DV_PULL_NOTHING;
      return 0;
    case DVOICE_SOURCE_OPUS:
      out->kind = DV_PULL_OPUS;
      break;
    case DVOICE_SOURCE_PCM_S16:
      out->kind = DV_PULL_PCM_S16;
      break;
    case DVOICE_SOURCE_PCM_FLOAT:
      out->kind = DV_PULL_PCM_FLOAT;
      break;
    default:
      return DVOICE_ERR_INVALID_ARGUMENT;
  }
  out->data = f.data;
  out->len = f.len;
  return 0;
}

void dv_uv_conn_drain(dvoice_conn *c) {
  aev *e = evq_push(c);
  if (e != NULL) {
    e->type = AEV_DRAIN;
    schedule(c);
  }
}

void dv_uv_conn_stream(dvoice_conn *c, int active) {
  aev *e;
  if (c->closing) {
    return;
  }
  if (c->s.auto_speaking != 0) {
    /* Not inside a voice core callback here: the core may be called. */
    (void)dv_voice_set_speaking(&c->voice, active ? c->s.auto_speaking : 0,
                                now_of(c));
  }
  e = evq_push(c);
  if (e != NULL) {
    e->type = AEV_STREAM;
    e->u.stream.active = active;
  }
  schedule(c);
}

/* ---- UDP ------------------------------------------------------------------
 */

static void udp_send_small(dvoice_conn *c, const uint8_t *p, size_t len) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
  int rv;
  if (c->udp == NULL) {
    return;
  }
  rv = uv_udp_try_send(&c->udp->h, &b, 1, NULL);
  if (rv < 0) {
    /* Control datagrams are retried by their schedules. */
    DV_DEBUG(&c->env, "conn: udp control send: %s", uv_strerror(rv));
  }
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  udp_sock *u = h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)u->c->rx_buf, sizeof(u->c->rx_buf));
}

/* ---- decoded receive: per-speaker jitter buffer and decoder ------------- */

static void on_rx_timer(uv_timer_t *h);

static void rx_arm(dvoice_conn *c, dvoice_tstamp now) {
  /* Rounded up: an early wake-up would only re-arm. */
  uint64_t ms =
      c->rx_next > now ? (c->rx_next - now + DVOICE_MS - 1) / DVOICE_MS : 0;
  uv_timer_start(&c->rx_timer, on_rx_timer, ms, 0);
}

static speaker *rx_speaker(dvoice_conn *c, uint32_t ssrc) {
  dv_jitter_settings js;
  speaker *n;
  for (size_t i = 0; i < c->nspk; i++) {
    if (c->spk[i].ssrc == ssrc) {
      return &c->spk[i];
    }
  }
  if (c->nspk >= c->s.rx_max_speakers) {
    return NULL;
  }
  /* Once per speaker, not per packet. */
  n = dv_realloc(c->env.mem, c->spk, (c->nspk + 1) * sizeof(*n));
  if (n == NULL) {
    return NULL;
  }
  c->spk = n;
  n = &c->spk[c->nspk];
  memset(n, 0, sizeof(*n));
  n->ssrc = ssrc;
  dv_jitter_settings_default(&js);
  js.depth = c->s.rx_jitter_depth;
  if (dv_jitter_new(c->env.mem, &js, &n->jb) != 0 ||
      dv_opus_dec_new(c->env.mem, &n->dec) != 0) {
    dv_jitter_free(n->jb);
    return NULL;
  }
  c->nspk++;
  return n;
}

static void rx_buffer(dvoice_conn *c, const dv_rtp_rx *rx) {
  speaker *sp = rx_speaker(c, rx->hdr.ssrc);
  if (sp == NULL) {
    return;
  }
  (void)dv_jitter_put_packet(sp->jb, rx->hdr.seq, rx->hdr.timestamp,
                             rx->payload, rx->payload_len);
  if (!c->rx_running) {
    /* Playout starts on its own 20 ms grid. */
    c->rx_running = 1;
    c->rx_next = now_of(c) + 20 * DVOICE_MS;
    rx_arm(c, now_of(c));
  }
}

static void on_rx_timer(uv_timer_t *h) {
  dvoice_conn *c = h->data;
  dvoice_tstamp now = now_of(c);
  int busy = 0;
  if (c->closing) {
    return;
  }
  if (now < c->rx_next) {
    rx_arm(c, now);
    return;
  }
  /* One frame per speaker per 20 ms; after a stall, no catch-up burst. */
  c->rx_next += 20 * DVOICE_MS;
  if (c->rx_next <= now) {
    c->rx_next = now + 20 * DVOICE_MS;
  }
  for (size_t i = 0; i < c->nspk && !c->closing; i++) {
    speaker *sp = &c->spk[i];
    dv_jitter_frame jf;
    dvoice_pcm_frame pf;
    int n = -1;
    memset(&pf, 0, sizeof(pf));
    switch (dv_jitter_take_frame(sp->jb, &jf)) {
      case DV_JITTER_FRAME:
        n = dv_opus_decode_s16(sp->dec, jf.data, jf.len, c->pcm,
                               DV_OPUS_MAX_DECODE_SAMPLES, 0);
        break;
      case DV_JITTER_MISSING:
        pf.concealed = 1;
        n = jf.next_data != NULL
                ? dv_opus_decode_s16(sp->dec, jf.next_data, jf.next_len, c->pcm,
                                     DV_OPUS_FRAME_SAMPLES, 1)
                : dv_opus_decode_s16(sp->dec, NULL, 0, c->pcm,
                                     DV_OPUS_FRAME_SAMPLES, 0);
        break;
      case DV_JITTER_FILLING:
      case DV_JITTER_EMPTY:
        break;
    }
    if (dv_jitter_buffered(sp->jb) > 0) {
      busy = 1;
    }
    if (n <= 0) {
      continue;
    }
    busy = 1;
    pf.ssrc = sp->ssrc;
    (void)dv_voice_user_for_ssrc(&c->voice, sp->ssrc, &pf.user_id);
    pf.pcm = c->pcm;
    pf.samples = (size_t)n;
    c->cb.on_pcm(c, &pf, c->user_data);
  }
  if (c->closing) {
    return;
  }
  if (busy) {
    rx_arm(c, now_of(c));
  } else {
    c->rx_running = 0; /* every speaker is quiet: restart on a packet */
  }
}

static void on_rtp(dvoice_conn *c, const uint8_t *p, size_t len) {
  dv_rtp_rx rx;
  dvoice_opus_packet pkt;
  uint64_t user_id = 0;
  if (!c->have_key) {
    c->rx_other++;
    return;
  }
  if (dv_rtp_open(&c->crypt, p, len, c->rx_plain, sizeof(c->rx_plain), &rx) !=
      0) {
    c->decrypt_failures++;
    return;
  }
  c->packets_received++;
  if (c->cb.on_pcm != NULL && rx.payload_len > 0) {
    rx_buffer(c, &rx);
  }
  if (c->cb.on_opus == NULL) {
    return;
  }
  (void)dv_voice_user_for_ssrc(&c->voice, rx.hdr.ssrc, &user_id);
  pkt.user_id = user_id;
  pkt.ssrc = rx.hdr.ssrc;
  pkt.seq = rx.hdr.seq;
  pkt.timestamp = rx.hdr.timestamp;
  pkt.data = rx.payload;
  pkt.len = rx.payload_len;
  c->cb.on_opus(c, &pkt, c->user_data);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  udp_sock *u = h->data;
  dvoice_conn *c = u->c;
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len;
  (void)addr;
  if (c->closing || u != c->udp || nread == 0) {
    return;
  }
  if (nread < 0) {
    DV_DEBUG(&c->env, "conn: udp receive: %s", uv_strerror((int)nread));
    return;
  }
  if (flags & UV_UDP_PARTIAL) {
    c->rx_other++;
    return;
  }
  len = (size_t)nread;
  switch (dv_udp_classify(p, len)) {
    case DV_UDP_IPDISC: {
      dv_ipdisc_result r;
      if (c->udp_ready || dv_ipdisc_parse_response(p, len, c->ssrc, &r) != 0) {
        c->rx_other++;
        return;
      }
      tl_mark(c, DV_UV_STEP_IPDISC);
      dv_ipdisc_retry_done(&c->ipd);
      c->udp_ready = 1;
      dv_keepalive_start(&c->ka, now_of(c), c->s.keepalive_interval);
      DV_DEBUG(&c->env, "conn: ip discovery done (port %u)", (unsigned)r.port);
      (void)dv_voice_on_ip_discovered(&c->voice, r.address, r.port, now_of(c));
      flush(c);
      return;
    }
    case DV_UDP_RTP_AUDIO:
      on_rtp(c, p, len);
      return;
    case DV_UDP_KEEPALIVE:
    case DV_UDP_RTP_OTHER:
    case DV_UDP_RTCP:
    case DV_UDP_UNKNOWN:
      c->rx_other++;
      return;
  }
  c->rx_other++;
}

static int udp_open(dvoice_conn *c) {
  struct sockaddr_in addr;
  udp_sock *u;
  int rv;
  udp_close(c);
  rv = uv_ip4_addr(c->udp_ip, c->udp_port, &addr);
  if (rv != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  u = dv_calloc(c->env.mem, 1, sizeof(*u));
  if (u == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  u->c = c;
  rv = uv_udp_init(c->loop, &u->h);
  if (rv != 0) {
    dv_free(c->env.mem, u);
    return DVOICE_ERR_INTERNAL;
  }
  u->h.data = u;
  c->udp = u;
  rv = uv_udp_connect(&u->h, (const struct sockaddr *)&addr);
  if (rv == 0) {
    rv = uv_udp_recv_start(&u->h, on_udp_alloc, on_udp_recv);
  }
  if (rv != 0) {
    DV_WARN(&c->env, "conn: udp socket: %s", uv_strerror(rv));
    c->udp_err = rv;
    udp_close(c);
    return DVOICE_ERR_TRANSPORT;
  }
  dv_ipdisc_retry_start(&c->ipd, now_of(c), c->s.ipdisc_interval,
                        c->s.ipdisc_attempts);
  return 0;
}

/* ---- WebSocket ------------------------------------------------------------
 */

static void on_ws_open(dv_uv_ws *s, void *ud) {
  dvoice_conn *c = ud;
  if (s != c->ws) {
    return;
  }
  tl_mark(c, DV_UV_STEP_WS_OPEN);
  (void)dv_voice_on_open(&c->voice, now_of(c));
  flush(c);
}

static void on_ws_message(dv_uv_ws *s, dv_ws_opcode op, const uint8_t *data,
                          size_t len, void *ud) {
  dvoice_conn *c = ud;
  int rv;
  if (s != c->ws) {
    return;
  }
  if (c->tl != NULL && op != DV_WS_BINARY) {
    switch (tl_op(data, len)) {
      case 8:
        tl_mark(c, DV_UV_STEP_HELLO);
        break;
      case 2:
        tl_mark(c, DV_UV_STEP_READY);
        break;
      case 4:
        tl_mark(c, DV_UV_STEP_SESSION);
        break;
      default:
        break;
    }
  }
  if (op == DV_WS_BINARY) {
    rv = dv_voice_on_binary(&c->voice, data, len, now_of(c));
  } else {
    rv = dv_voice_on_text(&c->voice, (const char *)data, len, now_of(c));
  }
  if (rv != 0) {
    DV_DEBUG(&c->env, "conn: voice message: %s", dvoice_strerror(rv));
  }
  flush(c);
}

static void on_ws_close(dv_uv_ws *s, uint16_t code, const char *reason,
                        size_t reason_len, void *ud) {
  dvoice_conn *c = ud;
  if (s != c->ws) {
    return;
  }
  c->last_ws_err = 0;
  c->last_close_code = code;
  if (reason_len >= sizeof(c->last_reason)) {
    reason_len = sizeof(c->last_reason) - 1;
  }
  memcpy(c->last_reason, reason, reason_len);
  c->last_reason[reason_len] = 0;
  ws_drop(c, 1000);
  /* 1005 means the close frame carried no code. */
  (void)dv_voice_on_close(&c->voice, code == 1005 ? 0 : code, now_of(c));
  flush(c);
}

static void on_ws_error(dv_uv_ws *s, int err, int uv_err, void *ud) {
  dvoice_conn *c = ud;
  if (s != c->ws) {
    return;
  }
  DV_INFO(&c->env, "conn: voice websocket failed: %s (%s)",
          dvoice_strerror(err), uv_err != 0 ? uv_strerror(uv_err) : "-");
  c->last_ws_err = err;
  c->last_close_code = 0;
  c->last_reason[0] = 0;
  ws_drop(c, 1000);
  (void)dv_voice_on_close(&c->voice, 0, now_of(c));
  flush(c);
}

static int ws_connect(dvoice_conn *c) {
  dv_uv_ws_settings ws;
  dv_uv_ws_callbacks cb;
  char url[512];
  const char *ep = c->endpoint;
  int n, rv;
  ws_drop(c, 1000);
  if (strstr(ep, "://") != NULL) {
    n = snprintf(url, sizeof(url), "%s%s", ep,
                 strchr(strstr(ep, "://") + 3, '/') != NULL ? "" : "/?v=8");
  } else {
    n = snprintf(url, sizeof(url), "wss://%s/?v=8", ep);
  }
  if (n < 0 || (size_t)n >= sizeof(url)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_uv_ws_settings_default(&ws);
  ws.env = &c->env;
  ws.tls = c->s.tls;
  ws.tls.ca_file = c->ca_file;
  memset(&cb, 0, sizeof(cb));
  cb.on_open = on_ws_open;
  cb.on_message = on_ws_message;
  cb.on_close = on_ws_close;
  cb.on_error = on_ws_error;
  c->last_ws_err = 0;
  rv = dv_uv_ws_connect(&c->ws, c->loop, url, &ws, &cb, c);
  if (rv == 0 && c->tl != NULL) {
    dv_uv_ws_set_timeline(c->ws, c->tl);
  }
  return rv;
}

/* ---- flush ----------------------------------------------------------------
 */

/* Runs the actions the voice core asked for; returns nonzero if any ran. */
static int run_actions(dvoice_conn *c, dvoice_tstamp now) {
  int ran = 0, rv;
  if (c->want_udp) {
    c->want_udp = 0;
    ran = 1;
    rv = udp_open(c);
    if (rv != 0) {
      /* Without a socket the handshake cannot finish; the core's
       * handshake timeout decides what happens next. */
      DV_WARN(&c->env, "conn: cannot open the udp socket: %s",
              dvoice_strerror(rv));
    }
  }
  if (c->want_connect) {
    c->want_connect = 0;
    ran = 1;
    rv = ws_connect(c);
    if (rv != 0) {
      DV_WARN(&c->env, "conn: cannot open the voice websocket: %s",
              dvoice_strerror(rv));
      c->ws = NULL;
      c->last_ws_err = rv;
      /* The core sees a connection that failed at once. */
      (void)dv_voice_on_close(&c->voice, 0, now);
    }
  }
  return ran;
}

static int run_expiries(dvoice_conn *c, dvoice_tstamp now) {
  uint8_t buf[DV_IPDISC_LEN];
  int ran = 0, rv;
  if (dv_voice_get_expiry(&c->voice) <= now) {
    (void)dv_voice_handle_expiry(&c->voice, now);
    ran = 1;
  }
  if (dv_ipdisc_retry_get_expiry(&c->ipd) <= now) {
    rv = dv_ipdisc_retry_handle_expiry(&c->ipd, now);
    if (rv == 1) {
      dv_ipdisc_build_request(buf, c->ssrc);
      udp_send_small(c, buf, sizeof(buf));
      c->ipdisc_requests++;
    } else if (rv == DVOICE_ERR_TIMEOUT) {
      DV_WARN(&c->env, "conn: ip discovery got no answer");
    }
  }
  if (dv_keepalive_get_expiry(&c->ka) <= now &&
      dv_keepalive_handle_expiry(&c->ka, now, buf) == 1) {
    udp_send_small(c, buf, DV_KEEPALIVE_LEN);
    c->keepalives_sent++;
  }
  return ran;
}

static void drain_voice(dvoice_conn *c) {
  const uint8_t *data;
  size_t len;
  int binary, rv;
  while (dv_voice_next_out(&c->voice, &data, &len, &binary) == 1) {
    if (c->ws == NULL) {
      continue; /* the core discards messages for a dropped socket */
    }
    rv = dv_uv_ws_send(c->ws, binary ? DV_WS_BINARY : DV_WS_TEXT, data, len);
    if (rv != 0) {
      DV_WARN(&c->env, "conn: voice send: %s", dvoice_strerror(rv));
    } else if (c->tl != NULL && !binary) {
      int op = tl_op(data, len);
      if (op == 0) {
        tl_mark(c, DV_UV_STEP_IDENTIFY);
      } else if (op == 1) {
        tl_mark(c, DV_UV_STEP_SELECT);
      }
    }
  }
}

static void on_timer(uv_timer_t *h) {
  flush(h->data);
}

static void rearm(dvoice_conn *c) {
  dvoice_tstamp t = dv_voice_get_expiry(&c->voice), x, now;
  uint64_t ms = 0;
  x = dv_ipdisc_retry_get_expiry(&c->ipd);
  t = x < t ? x : t;
  x = dv_keepalive_get_expiry(&c->ka);
  t = x < t ? x : t;
  if (t == DVOICE_TSTAMP_NONE) {
    uv_timer_stop(&c->timer);
    return;
  }
  now = now_of(c);
  if (t > now) {
    ms = (t - now + DVOICE_MS - 1) / DVOICE_MS;
  }
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void flush(dvoice_conn *c) {
  int rounds;
  if (c->in_flush) {
    c->need_flush = 1;
    return;
  }
  c->in_flush = 1;
  do {
    c->need_flush = 0;
    if (!c->closing) {
      /* Actions can cause more actions (a connect that fails at once);
       * the core's backoff bounds them, and so does this counter. */
      for (rounds = 0; rounds < 8; rounds++) {
        dvoice_tstamp now = now_of(c);
        int ran = run_actions(c, now);
        ran |= run_expiries(c, now);
        if (!ran && !c->want_connect && !c->want_udp) {
          break;
        }
      }
      drain_voice(c);
      update_hold(c);
    }
    deliver_events(c);
  } while (c->need_flush && !c->closing);
  c->in_flush = 0;
  if (!c->closing) {
    rearm(c);
  }
}

static void schedule(dvoice_conn *c) {
  if (c->closing) {
    return;
  }
  if (c->in_flush) {
    c->need_flush = 1;
    return;
  }
  uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* ---- public API -----------------------------------------------------------
 */

static int valid_text(const char *s, size_t max) {
  size_t n;
  if (s == NULL) {
    return 0;
  }
  n = strlen(s);
  if (n == 0 || n > max) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
      return 0;
    }
  }
  return 1;
}

static int voice_init(dvoice_conn *c, const char *session_id,
                      const char *token) {
  dv_voice_config vc;
  dv_voice_callbacks vcb;
  const dvoice_conn_settings *settings = &c->s;
  dv_voice_config_default(&vc);
  vc.server_id = settings->guild_id;
  vc.user_id = settings->user_id;
  vc.session_id = session_id;
  vc.token = token;
  vc.max_dave_protocol_version = 0;
  vc.aes256_gcm_available = 1; /* mbedTLS backs it where libsodium cannot */
  vc.max_missed_acks = settings->max_missed_acks;
  vc.max_resume_attempts = settings->max_resume_attempts;
  vc.max_session_attempts = settings->max_session_attempts;
  vc.handshake_timeout = settings->handshake_timeout;
  vc.session_wait = settings->session_wait;
  vc.server_wait = settings->server_wait;
  vcb.on_event = on_voice_event;
  return dv_voice_init(&c->voice, &vc, &vcb, &c->env, c);
}

static int conn_new(dvoice_conn **out, struct uv_loop_s *loop,
                    const dvoice_conn_settings *settings,
                    const dvoice_conn_callbacks *callbacks, void *user_data,
                    int deferred) {
  dvoice_conn *c;
  dv_pacer_conn_settings pcs;
  dvoice_env env;
  int rv;

  if (out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (loop == NULL || settings == NULL || settings->guild_id == 0 ||
      settings->user_id == 0 || !valid_text(settings->session_id, 256) ||
      !valid_text(settings->token, 256) ||
      !valid_text(settings->endpoint, 400) ||
      settings->drain_threshold >= settings->queue_frames ||
      settings->queue_frames > 3000 || settings->auto_speaking > 7 ||
      settings->rx_jitter_depth == 0 || settings->rx_jitter_depth > 32) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (settings->pacer != NULL && dv_uv_pacer_loop(settings->pacer) != loop) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_uv_env_resolve(&env, &settings->env);
  if (rv != 0) {
    return rv;
  }
  c = dv_calloc(env.mem, 1, sizeof(*c));
  if (c == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  c->loop = loop;
  c->env = env;
  c->s = *settings;
  c->s.session_id = c->s.token = c->s.endpoint = NULL;
  c->s.tls.ca_file = NULL;
  c->s.env = env;
  if (callbacks != NULL) {
    c->cb = *callbacks;
  }
  c->user_data = user_data;
  c->prepared = -1;
  c->pub_state = DVOICE_CONN_CONNECTING;
  c->held = 1;
  dv_ipdisc_retry_done(&c->ipd);
  dv_keepalive_stop(&c->ka);
  c->endpoint = dv_strdup(env.mem, settings->endpoint);
  if (settings->tls.ca_file != NULL) {
    c->ca_file = dv_strdup(env.mem, settings->tls.ca_file);
  }
  if (c->endpoint == NULL ||
      (settings->tls.ca_file != NULL && c->ca_file == NULL)) {
    rv = DVOICE_ERR_NOMEM;
    goto fail;
  }

  rv = voice_init(c, settings->session_id, settings->token);
  if (rv != 0) {
    goto fail;
  }

  if (settings->pacer != NULL) {
    c->pacer = settings->pacer;
  } else {
    rv = dv_uv_pacer_new_private(&c->pacer, loop, &c->env, on_pacer_closed, c);
    if (rv != 0) {
      goto fail_voice;
    }
    c->private_pacer = 1;
  }
  dv_pacer_conn_settings_default(&pcs, c->cb.source != NULL ? DV_PACER_PULL
                                                            : DV_PACER_PUSH);
  if (c->cb.source != NULL) {
    pcs.pcm = 1;
    pcs.opus.bitrate = settings->opus_bitrate;
    pcs.opus.loss_percent = settings->opus_loss_percent;
    pcs.opus.complexity = settings->opus_complexity;
  } else {
    pcs.queue_frames = settings->queue_frames;
    pcs.drain_threshold = settings->drain_threshold;
  }
  rv = dv_uv_pacer_attach(c->pacer, &pcs, c, &c->pc);
  if (rv != 0) {
    goto fail_pacer;
  }
  dv_pacer_conn_hold(c->pc, 1);

  if (uv_timer_init(loop, &c->timer) != 0) {
    rv = DVOICE_ERR_INTERNAL;
    dv_uv_pacer_detach(c->pacer, c->pc);
    goto fail_pacer;
  }
  c->timer.data = c;
  uv_timer_init(loop, &c->rx_timer); /* cannot fail once a timer could */
  c->rx_timer.data = c;
  if (deferred) {
    /* The owner starts it with dv_uv_conn_start once it has credentials. */
    c->deferred = 1;
    *out = c;
    return 0;
  }
  rv = dv_voice_start(&c->voice, now_of(c));
  if (rv != 0) {
    /* Unreachable on a fresh core. The handles close asynchronously and
     * the memory goes with them; no callback runs. */
    (void)dvoice_conn_close(c, NULL);
    return DVOICE_ERR_INTERNAL;
  }
  DV_INFO(&c->env, "conn: connecting to guild %llu",
          (unsigned long long)settings->guild_id);
  schedule(c);
  *out = c;
  return 0;

fail_pacer:
  if (c->private_pacer) {
    /* It closes asynchronously and must not call back into |c|. */
    dv_uv_pacer_discard(c->pacer);
  }
fail_voice:
  dv_voice_free(&c->voice);
fail:
  dv_free(env.mem, c->endpoint);
  dv_free(env.mem, c->ca_file);
  dv_free(env.mem, c);
  return rv;
}

int dvoice_conn_new(dvoice_conn **out, struct uv_loop_s *loop,
                    const dvoice_conn_settings *settings,
                    const dvoice_conn_callbacks *callbacks, void *user_data) {
  return conn_new(out, loop, settings, callbacks, user_data, 0);
}

int dvoice_conn_send_opus(dvoice_conn *c, const uint8_t *frame, size_t len) {
  int rv;
  if (c == NULL || frame == NULL || len == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (len > DV_OPUS_MAX_PACKET) {
    return DVOICE_ERR_TOO_LARGE;
  }
  if (c->closing || c->cb.source != NULL ||
      c->pub_state == DVOICE_CONN_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_pacer_conn_push(c->pc, frame, len);
  if (rv == 0) {
    dv_uv_pacer_kick(c->pacer);
  }
  return rv;
}

size_t dvoice_conn_queued(const dvoice_conn *c) {
  if (c == NULL || c->pc == NULL || c->cb.source != NULL) {
    return 0;
  }
  return dv_pacer_conn_queued(c->pc);
}

int dvoice_conn_play(dvoice_conn *c) {
  int rv;
  if (c == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing || c->cb.source == NULL ||
      c->pub_state == DVOICE_CONN_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_pacer_conn_play(c->pc);
  if (rv == 0) {
    dv_uv_pacer_kick(c->pacer);
  }
  return rv;
}

int dvoice_conn_stop(dvoice_conn *c) {
  if (c == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  dv_pacer_conn_stop(c->pc);
  dv_uv_pacer_kick(c->pacer);
  return 0;
}

int dvoice_conn_set_speaking(dvoice_conn *c, uint32_t flags) {
  int rv;
  if (c == NULL || flags > 7) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing || c->pub_state == DVOICE_CONN_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_voice_set_speaking(&c->voice, flags, now_of(c));
  if (rv == 0) {
    schedule(c);
  }
  return rv;
}

int dvoice_conn_new_session(dvoice_conn *c, const char *session_id,
                            const char *token, const char *endpoint) {
  char *ep = NULL;
  int rv;
  if (c == NULL || !valid_text(session_id, 256) || !valid_text(token, 256) ||
      (endpoint != NULL && !valid_text(endpoint, 400))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing || c->pub_state == DVOICE_CONN_DISCONNECTED || c->deferred) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (endpoint != NULL) {
    ep = dv_strdup(c->env.mem, endpoint);
    if (ep == NULL) {
      return DVOICE_ERR_NOMEM;
    }
  }
  rv = dv_voice_new_session(&c->voice, session_id, token, now_of(c));
  if (rv != 0) {
    dv_free(c->env.mem, ep);
    return rv;
  }
  if (ep != NULL) {
    dv_free(c->env.mem, c->endpoint);
    c->endpoint = ep;
  }
  c->resuming = 0;
  schedule(c);
  return 0;
}

dvoice_conn_state dvoice_conn_get_state(const dvoice_conn *c) {
  return c != NULL ? c->pub_state : DVOICE_CONN_DISCONNECTED;
}

int dvoice_conn_get_stats(const dvoice_conn *c, dvoice_conn_stats *out) {
  const dv_pacer_stats *ps;
  if (c == NULL || out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (c->pc != NULL) {
    ps = dv_pacer_conn_stats(c->pc);
    out->packets_sent = ps->packets_sent;
    out->silence_sent = ps->silence_sent;
    out->expected = ps->expected;
    out->deficit = dv_pacer_stats_deficit(ps);
    out->missed_slots = ps->missed_slots;
    out->late_ticks = ps->late_ticks;
    out->send_errors = ps->send_errors;
    out->prepare_errors = ps->prepare_errors;
    out->streams = ps->streams;
  }
  out->send_queued = c->send_queued;
  out->lateness_p50 = dv_hist_quantile(&c->departure, 500000);
  out->lateness_p99 = dv_hist_quantile(&c->departure, 990000);
  out->lateness_p999 = dv_hist_quantile(&c->departure, 999000);
  out->lateness_max = c->departure.max;
  out->packets_received = c->packets_received;
  out->decrypt_failures = c->decrypt_failures;
  out->rx_other = c->rx_other;
  out->keepalives_sent = c->keepalives_sent;
  out->ipdisc_requests = c->ipdisc_requests;
  out->resumes = c->resumes;
  out->sessions = c->sessions;
  out->rtt = c->rtt;
  out->ssrc = c->ssrc;
  out->mode = c->have_key ? (int)c->crypt.mode : 0;
  return 0;
}

const dv_hist *dv_uv_conn_departures(const dvoice_conn *c) {
  return &c->departure;
}

void dv_uv_conn_departure_span(const dvoice_conn *c, dvoice_tstamp *first,
                               dvoice_tstamp *last) {
  *first = c->first_departure;
  *last = c->last_departure;
}

void *dvoice_conn_get_user_data(const dvoice_conn *c) {
  return c != NULL ? c->user_data : NULL;
}

int dvoice_conn_close(dvoice_conn *c,
                      void (*close_cb)(dvoice_conn *c, void *user_data)) {
  if (c == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  /* Tell the server we leave (close 1000); events are no longer queued. */
  c->closing = 1;
  c->close_cb = close_cb;
  if (c->hooks.on_closing != NULL) {
    c->hooks.on_closing(c, c->hooks_ud);
  }
  if (dv_voice_get_state(&c->voice) != DV_VOICE_DISCONNECTED) {
    (void)dv_voice_close(&c->voice, now_of(c));
  }
  ws_drop(c, 1000);
  udp_close(c);
  dv_ring_clear(&c->evq);
  if (c->pc != NULL) {
    dv_pacer_conn_hold(c->pc, 1);
    dv_uv_pacer_detach(c->pacer, c->pc);
    c->pc = NULL;
    if (c->private_pacer) {
      c->pending++; /* on_pacer_closed */
    }
  }
  c->pending += 2;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  uv_close((uv_handle_t *)&c->rx_timer, on_timer_closed);
  return 0;
}

/* ---- owner hooks (dvoice_client) ----------------------------------------- */

int dv_uv_conn_new_deferred(dvoice_conn **out, struct uv_loop_s *loop,
                            const dvoice_conn_settings *settings,
                            const dvoice_conn_callbacks *callbacks,
                            void *user_data) {
  dvoice_conn_settings s;
  int rv;
  if (settings == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  /* Placeholders pass validation; they are replaced before any use. A
   * user id not known yet (0) is set by dv_uv_conn_set_user_id. */
  s = *settings;
  s.session_id = "-";
  s.token = "-";
  s.endpoint = "-";
  if (s.user_id == 0) {
    s.user_id = 1;
  }
  rv = conn_new(out, loop, &s, callbacks, user_data, 1);
  if (rv == 0) {
    (*out)->s.user_id = settings->user_id;
  }
  return rv;
}

int dv_uv_conn_set_user_id(dvoice_conn *c, uint64_t user_id) {
  if (c == NULL || user_id == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (!c->deferred) {
    return DVOICE_ERR_INVALID_STATE;
  }
  c->s.user_id = user_id;
  return 0;
}

void dv_uv_conn_set_hooks(dvoice_conn *c, const dv_uv_conn_hooks *hooks,
                          void *user_data) {
  c->hooks = *hooks;
  c->hooks_ud = user_data;
}

int dv_uv_conn_start(dvoice_conn *c, const char *session_id,
                     const char *token, const char *endpoint) {
  char *ep;
  int rv;
  if (c == NULL || !valid_text(session_id, 256) || !valid_text(token, 256) ||
      !valid_text(endpoint, 400)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (!c->deferred) {
    rv = dvoice_conn_new_session(c, session_id, token, endpoint);
    if (rv == 0) {
      c->suspended = 0;
    }
    return rv;
  }
  if (c->closing || c->pub_state == DVOICE_CONN_DISCONNECTED ||
      c->s.user_id == 0) {
    return DVOICE_ERR_INVALID_STATE;
  }
  tl_mark(c, DV_UV_STEP_EVENTS);
  ep = dv_strdup(c->env.mem, endpoint);
  if (ep == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  dv_voice_free(&c->voice);
  rv = voice_init(c, session_id, token);
  if (rv == 0) {
    rv = dv_voice_start(&c->voice, now_of(c));
  }
  if (rv != 0) {
    dv_free(c->env.mem, ep);
    /* Keep a valid idle core so that close stays safe. */
    (void)voice_init(c, "-", "-");
    return rv;
  }
  dv_free(c->env.mem, c->endpoint);
  c->endpoint = ep;
  c->deferred = 0;
  DV_INFO(&c->env, "conn: connecting to guild %llu",
          (unsigned long long)c->s.guild_id);
  schedule(c);
  return 0;
}

int dv_uv_conn_end(dvoice_conn *c, dvoice_conn_reason reason) {
  aev *e;
  if (c == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (c->closing || c->pub_state == DVOICE_CONN_DISCONNECTED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  c->end_reason = reason;
  if (c->deferred) {
    e = evq_push(c);
    if (e != NULL) {
      e->type = AEV_STATE;
      e->u.st.ev.state = DVOICE_CONN_DISCONNECTED;
      e->u.st.ev.old_state = c->pub_state;
      e->u.st.ev.reason = reason;
      e->u.st.ev.deadline = DVOICE_TSTAMP_NONE;
    }
    c->first_event_sent = 1;
    c->pub_state = DVOICE_CONN_DISCONNECTED;
  } else if (dv_voice_get_state(&c->voice) != DV_VOICE_DISCONNECTED) {
    (void)dv_voice_close(&c->voice, now_of(c));
  }
  udp_close(c);
  schedule(c);
  return 0;
}

void dv_uv_conn_suspend(dvoice_conn *c) {
  c->suspended = 1;
  /* At once: the pacer's next tick must not send any more. */
  update_hold(c);
  schedule(c);
}

void dv_uv_conn_set_timeline(dvoice_conn *c, dv_uv_timeline *tl) {
  c->tl = tl;
  if (c->ws != NULL) {
    dv_uv_ws_set_timeline(c->ws, tl);
  }
}
