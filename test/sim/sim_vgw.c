/* The simulator's voice gateway v8, server side (pure core). */
#include "sim_vgw.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "json/dv_json.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"

/* ---- modes ------------------------------------------------------------- */

dv_sim_mode dv_sim_mode_from_name(const char *name) {
  if (name == NULL) {
    return DV_SIM_MODE_NONE;
  }
  if (strcmp(name, "aead_aes256_gcm_rtpsize") == 0) {
    return DV_SIM_MODE_AES256_GCM;
  }
  if (strcmp(name, "aead_xchacha20_poly1305_rtpsize") == 0) {
    return DV_SIM_MODE_XCHACHA20;
  }
  return DV_SIM_MODE_NONE;
}

const char *dv_sim_mode_name(dv_sim_mode m) {
  switch (m) {
    case DV_SIM_MODE_AES256_GCM:
      return "aead_aes256_gcm_rtpsize";
    case DV_SIM_MODE_XCHACHA20:
      return "aead_xchacha20_poly1305_rtpsize";
    case DV_SIM_MODE_NONE:
      break;
  }
  return "";
}

void dv_sim_vgw_settings_default(dv_sim_vgw_settings *s) {
  memset(s, 0, sizeof(*s));
  s->heartbeat_interval_ms = 13750;
  s->heartbeat_grace_ms = 5000;
  snprintf(s->udp_ip, sizeof(s->udp_ip), "%s", "127.0.0.1");
  s->udp_port = 0;
  /* Ready still lists discontinued modes in the wild; clients must filter. */
  s->modes[0] = "aead_aes256_gcm_rtpsize";
  s->modes[1] = "aead_aes256_gcm";
  s->modes[2] = "aead_xchacha20_poly1305_rtpsize";
  s->modes[3] = "xsalsa20_poly1305_lite_rtpsize";
  s->modes[4] = "xsalsa20_poly1305";
  s->nmodes = 5;
  s->replay_max = 64;
  s->seq_start = 0;
  s->require_dave = 0;
  s->hello_after_ready = 0;
  s->send_extra_ops = 1;
}

/* ---- small helpers ----------------------------------------------------- */

static const dvoice_mem *vmem(const dv_sim_vgw *vgw) {
  return vgw->env.mem;
}

/* Snowflakes are checked by lib/json's parser (decimal, no leading zero,
 * fits in a u64). */
static int is_snowflake(const char *s) {
  uint64_t v;
  return dv_json_snowflake_parse(s, strlen(s), &v) == 0;
}

static int is_ipv4(const char *s) {
  struct in_addr a;
  return inet_pton(AF_INET, s, &a) == 1;
}

int dv_sim_outq_push(dv_sim_outq *q, const dvoice_mem *mem,
                     dv_sim_out_kind kind, int close_code, const void *p,
                     size_t len) {
  dv_sim_out *o;
  if (q->head > 0 && q->head == q->len) {
    q->head = q->len = 0;
  }
  if (q->len == q->cap) {
    size_t ncap = q->cap ? q->cap * 2 : 8;
    dv_sim_out *n = dv_realloc(mem, q->v, ncap * sizeof(*n));
    if (n == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    q->v = n;
    q->cap = ncap;
  }
  o = &q->v[q->len];
  memset(o, 0, sizeof(*o));
  o->kind = kind;
  o->close_code = close_code;
  dv_buf_init(&o->data, mem);
  if (dv_buf_append(&o->data, p, len) != 0) {
    dv_buf_free(&o->data);
    return DVOICE_ERR_NOMEM;
  }
  q->len++;
  return 0;
}

int dv_sim_outq_pop(dv_sim_outq *q, dv_sim_out *out) {
  if (q->head == q->len) {
    return 0;
  }
  *out = q->v[q->head++];
  return 1;
}

void dv_sim_outq_free(dv_sim_outq *q, const dvoice_mem *mem) {
  for (size_t i = q->head; i < q->len; i++) {
    dv_buf_free(&q->v[i].data);
  }
  dv_free(mem, q->v);
  memset(q, 0, sizeof(*q));
}

static int queue_out(dv_sim_vgw_conn *c, dv_sim_out_kind kind, int code,
                     const void *p, size_t len) {
  return dv_sim_outq_push(&c->out, vmem(c->vgw), kind, code, p, len);
}

/* Serialises |msg| (reference stolen) compactly into |out|. */
static int dump_json(json_t *msg, dv_buf *out) {
  char *text;
  int rv;
  if (msg == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(msg);
  if (text == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_buf_append_str(out, text);
  free(text);
  return rv;
}

/* Queues an unsequenced JSON message {op, d}; steals |d|. */
static int send_op(dv_sim_vgw_conn *c, int op, json_t *d) {
  dv_buf b;
  int rv;
  if (d == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  dv_buf_init(&b, vmem(c->vgw));
  rv = dump_json(json_pack("{s:i,s:o}", "op", op, "d", d), &b);
  if (rv == 0) {
    rv = queue_out(c, DV_SIM_OUT_TEXT, 0, b.data, b.len);
  }
  dv_buf_free(&b);
  return rv;
}

static uint32_t last_seq(const dv_sim_session *s) {
  return s->next_seq - 1;
}

/*
 * On the wire seq is 16 bits and wraps (the binary prefix is a u16); inside,
 * the counter is 32 bits. Maps a client's seq_ack to the newest internal seq
 * with those low 16 bits. Returns 0, or -1 if it names nothing we sent.
 */
static int map_ack(const dv_sim_session *s, int64_t ack, uint32_t *out) {
  uint32_t last = last_seq(s), back;
  if (!s->have_seq || ack < 0 || ack > 0xffff) {
    return -1;
  }
  back = (uint16_t)((uint16_t)last - (uint16_t)ack);
  if (back > last - s->vgw->settings.seq_start) {
    return -1;
  }
  *out = last - back;
  return 0;
}

/* Sends a sequenced message to a session: it gets the next seq, goes into
 * the replay ring, and is queued if a connection is live. Steals |d|. */
static int session_send_seq(dv_sim_vgw *vgw, dv_sim_session *s, int op,
                            json_t *d) {
  size_t cap = vgw->settings.replay_max;
  dv_sim_replay *slot;
  uint32_t seq;
  int rv;
  if (d == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  seq = s->next_seq;
  if (cap == 0) {
    json_decref(d);
    return DVOICE_ERR_INVALID_STATE;
  }
  if (s->replay_len == cap) {
    /* The oldest message falls out: a resume from before it must fail. */
    slot = &s->replay[s->replay_head];
    s->replay_dropped = 1;
    s->replay_dropped_upto = slot->seq;
    dv_buf_free(&slot->text);
    s->replay_head = (s->replay_head + 1) % cap;
    s->replay_len--;
  }
  slot = &s->replay[(s->replay_head + s->replay_len) % cap];
  dv_buf_init(&slot->text, vmem(vgw));
  slot->seq = seq;
  rv = dump_json(json_pack("{s:i,s:o,s:I}", "op", op, "d", d, "seq",
                           (json_int_t)(seq & 0xffffu)),
                 &slot->text);
  if (rv != 0) {
    dv_buf_free(&slot->text);
    return rv;
  }
  s->replay_len++;
  s->next_seq++;
  s->have_seq = 1;
  if (s->conn != NULL && s->conn->state == DV_SIM_CONN_BOUND) {
    return queue_out(s->conn, DV_SIM_OUT_TEXT, 0, slot->text.data,
                     slot->text.len);
  }
  return 0;
}

int dv_sim_vgw_record(dv_sim_vgw *vgw, dv_sim_session *s, dvoice_tstamp now,
                      int close_code, const char *fmt, ...) {
  char what[120];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  DV_INFO(&vgw->env, "sim-vgw: violation (%d): %s", close_code, what);
  return dv_sim_violations_add(s ? &s->report.violations : &vgw->violations,
                               vmem(vgw), now, close_code, what);
}

static int session_alive(const dv_sim_session *s) {
  return s->phase == DV_SIM_PHASE_READY || s->phase == DV_SIM_PHASE_ACTIVE;
}

/* Announces that |gone| left to every other live session of its server. */
static int broadcast_leave(dv_sim_vgw *vgw, const char *server_id,
                           const char *user_id, const dv_sim_session *skip) {
  int rv = 0;
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o == skip || !session_alive(o) ||
        strcmp(o->server_id, server_id) != 0) {
      continue;
    }
    rv = session_send_seq(vgw, o, 13, json_pack("{s:s}", "user_id", user_id));
  }
  return rv;
}

static int end_session(dv_sim_vgw *vgw, dv_sim_session *s) {
  int was_alive = session_alive(s);
  s->phase = DV_SIM_PHASE_ENDED;
  if (was_alive) {
    return broadcast_leave(vgw, s->server_id, s->user_id, s);
  }
  return 0;
}

/* Closes |c| with |code|: queues the close frame, detaches the session and
 * ends it unless the code lets the client resume (4015, or below 4000). */
static int close_conn(dv_sim_vgw_conn *c, int code, dvoice_tstamp now) {
  dv_sim_session *s = c->session;
  int rv;
  (void)now;
  rv = queue_out(c, DV_SIM_OUT_CLOSE, code, NULL, 0);
  c->state = DV_SIM_CONN_CLOSED;
  c->close_code = code;
  c->hb_deadline = DVOICE_TSTAMP_NONE;
  if (s != NULL) {
    s->report.last_close_code = code;
    if (s->conn == c) {
      s->conn = NULL;
    }
    c->session = NULL;
    if (!(code == 4015 || code < 4000)) {
      int rv2 = end_session(c->vgw, s);
      if (rv == 0) {
        rv = rv2;
      }
    }
  }
  return rv;
}

/* Records a violation on the connection's session (or the server) and
 * closes with |code|. */
static int violate(dv_sim_vgw_conn *c, dvoice_tstamp now, int code,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int violate(dv_sim_vgw_conn *c, dvoice_tstamp now, int code,
                   const char *fmt, ...) {
  char what[120];
  va_list ap;
  int rv, rv2;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  rv = dv_sim_vgw_record(c->vgw, c->session, now, code, "%s", what);
  rv2 = close_conn(c, code, now);
  return rv != 0 ? rv : rv2;
}

/* ---- server ------------------------------------------------------------ */

int dv_sim_vgw_new(const dvoice_env *env, const dv_sim_vgw_settings *settings,
                   dv_sim_vgw **out) {
  dv_sim_vgw *vgw;
  if (out == NULL || dv_env_check(env) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  vgw = dv_calloc(env->mem, 1, sizeof(*vgw));
  if (vgw == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  vgw->env = *env;
  if (settings != NULL) {
    vgw->settings = *settings;
  } else {
    dv_sim_vgw_settings_default(&vgw->settings);
  }
  if (vgw->settings.replay_max == 0 ||
      vgw->settings.nmodes > DV_SIM_MAX_MODES) {
    dv_free(env->mem, vgw);
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  vgw->next_conn_id = 1;
  *out = vgw;
  return 0;
}

static void session_free(dv_sim_vgw *vgw, dv_sim_session *s) {
  const dvoice_mem *mem = vmem(vgw);
  for (size_t i = 0; i < s->replay_len; i++) {
    dv_buf_free(
        &s->replay[(s->replay_head + i) % vgw->settings.replay_max].text);
  }
  dv_free(mem, s->replay);
  dv_free(mem, s->server_id);
  dv_free(mem, s->user_id);
  dv_free(mem, s->session_id);
  if (s->token != NULL) {
    dv_free_secret(mem, s->token, strlen(s->token));
  }
  dv_wipe(s->key, sizeof(s->key));
  dv_sim_violations_free(&s->report.violations, mem);
  dv_free(mem, s);
}

static void fake_free(dv_sim_vgw *vgw, dv_sim_fake_member *f) {
  dv_free(vmem(vgw), f->server_id);
  dv_free(vmem(vgw), f->user_id);
  dv_free(vmem(vgw), f);
}

void dv_sim_vgw_free(dv_sim_vgw *vgw) {
  const dvoice_mem *mem;
  if (vgw == NULL) {
    return;
  }
  mem = vmem(vgw);
  while (vgw->nconns > 0) {
    dv_sim_vgw_conn_free(vgw->conns[vgw->nconns - 1]);
  }
  for (size_t i = 0; i < vgw->nsessions; i++) {
    session_free(vgw, vgw->sessions[i]);
  }
  for (size_t i = 0; i < vgw->nfakes; i++) {
    fake_free(vgw, vgw->fakes[i]);
  }
  dv_free(mem, vgw->sessions);
  dv_free(mem, vgw->fakes);
  dv_free(mem, vgw->conns);
  dv_sim_violations_free(&vgw->violations, mem);
  dv_free(mem, vgw);
}

void dv_sim_vgw_set_udp(dv_sim_vgw *vgw, const char *ip, uint16_t port) {
  snprintf(vgw->settings.udp_ip, sizeof(vgw->settings.udp_ip), "%s", ip);
  vgw->settings.udp_port = port;
}

static int ssrc_taken(const dv_sim_vgw *vgw, uint32_t ssrc) {
  for (size_t i = 0; i < vgw->nsessions; i++) {
    if (vgw->sessions[i]->ssrc == ssrc) {
      return 1;
    }
  }
  for (size_t i = 0; i < vgw->nfakes; i++) {
    if (vgw->fakes[i]->ssrc == ssrc) {
      return 1;
    }
  }
  return 0;
}

/* Appends |p| to a pointer array. */
static int ptr_push(const dvoice_mem *mem, void ***arr, size_t *n, void *p) {
  void **na = dv_realloc(mem, *arr, (*n + 1) * sizeof(void *));
  if (na == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  na[*n] = p;
  *arr = na;
  (*n)++;
  return 0;
}

static void ptr_remove(void **arr, size_t *n, const void *p) {
  for (size_t i = 0; i < *n; i++) {
    if (arr[i] == p) {
      memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof(void *));
      (*n)--;
      return;
    }
  }
}

int dv_sim_vgw_add_session(dv_sim_vgw *vgw, const char *server_id,
                           const char *user_id, const char *session_id,
                           const char *token, dv_sim_session **out) {
  const dvoice_mem *mem;
  dv_sim_session *s;
  if (out != NULL) {
    *out = NULL;
  }
  if (vgw == NULL || server_id == NULL || user_id == NULL ||
      session_id == NULL || token == NULL ||
      dv_sim_vgw_find_session(vgw, session_id) != NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  mem = vmem(vgw);
  s = dv_calloc(mem, 1, sizeof(*s));
  if (s == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  s->server_id = dv_strdup(mem, server_id);
  s->user_id = dv_strdup(mem, user_id);
  s->session_id = dv_strdup(mem, session_id);
  s->token = dv_strdup(mem, token);
  s->replay = dv_calloc(mem, vgw->settings.replay_max, sizeof(*s->replay));
  s->vgw = vgw;
  do {
    s->ssrc = dv_rand_u32(&vgw->env);
  } while (s->ssrc == 0 || ssrc_taken(vgw, s->ssrc));
  if (s->server_id == NULL || s->user_id == NULL || s->session_id == NULL ||
      s->token == NULL || s->replay == NULL ||
      ptr_push(mem, (void ***)&vgw->sessions, &vgw->nsessions, s) != 0) {
    session_free(vgw, s);
    return DVOICE_ERR_NOMEM;
  }
  s->next_seq = vgw->settings.seq_start;
  s->phase = DV_SIM_PHASE_REGISTERED;
  dv_sim_media_stats_init(&s->report.media);
  if (out != NULL) {
    *out = s;
  }
  return 0;
}

dv_sim_session *dv_sim_vgw_find_session(const dv_sim_vgw *vgw,
                                        const char *session_id) {
  for (size_t i = 0; i < vgw->nsessions; i++) {
    if (strcmp(vgw->sessions[i]->session_id, session_id) == 0) {
      return vgw->sessions[i];
    }
  }
  return NULL;
}

dv_sim_session *dv_sim_vgw_find_ssrc(const dv_sim_vgw *vgw, uint32_t ssrc) {
  for (size_t i = 0; i < vgw->nsessions; i++) {
    if (vgw->sessions[i]->ssrc == ssrc) {
      return vgw->sessions[i];
    }
  }
  return NULL;
}

/* op 11 then (optionally) op 18 and 20 for one joining user. */
static int announce_user(dv_sim_vgw *vgw, dv_sim_session *to,
                         const char *user_id) {
  int rv =
      session_send_seq(vgw, to, 11, json_pack("{s:[s]}", "user_ids", user_id));
  if (rv == 0 && vgw->settings.send_extra_ops) {
    rv = session_send_seq(
        vgw, to, 18, json_pack("{s:s,s:i}", "user_id", user_id, "flags", 0));
    if (rv == 0) {
      rv = session_send_seq(
          vgw, to, 20,
          json_pack("{s:s,s:i}", "user_id", user_id, "platform", 0));
    }
  }
  return rv;
}

static int send_speaking(dv_sim_vgw *vgw, dv_sim_session *to,
                         const char *user_id, uint32_t ssrc,
                         uint32_t speaking) {
  return session_send_seq(vgw, to, 5,
                          json_pack("{s:s,s:I,s:I}", "user_id", user_id, "ssrc",
                                    (json_int_t)ssrc, "speaking",
                                    (json_int_t)speaking));
}

int dv_sim_vgw_add_fake(dv_sim_vgw *vgw, const char *server_id,
                        const char *user_id, uint32_t ssrc, uint32_t speaking,
                        dvoice_tstamp now, dv_sim_fake_member **out) {
  const dvoice_mem *mem;
  dv_sim_fake_member *f;
  int rv = 0;
  (void)now;
  if (out != NULL) {
    *out = NULL;
  }
  if (vgw == NULL || server_id == NULL || user_id == NULL || ssrc == 0 ||
      ssrc_taken(vgw, ssrc)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  mem = vmem(vgw);
  f = dv_calloc(mem, 1, sizeof(*f));
  if (f == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  f->server_id = dv_strdup(mem, server_id);
  f->user_id = dv_strdup(mem, user_id);
  f->ssrc = ssrc;
  f->speaking = speaking;
  if (f->server_id == NULL || f->user_id == NULL ||
      ptr_push(mem, (void ***)&vgw->fakes, &vgw->nfakes, f) != 0) {
    fake_free(vgw, f);
    return DVOICE_ERR_NOMEM;
  }
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *s = vgw->sessions[i];
    if (!session_alive(s) || strcmp(s->server_id, server_id) != 0) {
      continue;
    }
    rv = announce_user(vgw, s, user_id);
    if (rv == 0) {
      rv = send_speaking(vgw, s, user_id, ssrc, speaking);
    }
  }
  if (out != NULL) {
    *out = f;
  }
  return rv;
}

int dv_sim_vgw_remove_fake(dv_sim_vgw *vgw, const char *user_id,
                           dvoice_tstamp now) {
  (void)now;
  for (size_t i = 0; i < vgw->nfakes; i++) {
    dv_sim_fake_member *f = vgw->fakes[i];
    int rv;
    if (strcmp(f->user_id, user_id) != 0) {
      continue;
    }
    rv = broadcast_leave(vgw, f->server_id, f->user_id, NULL);
    ptr_remove((void **)vgw->fakes, &vgw->nfakes, f);
    fake_free(vgw, f);
    return rv;
  }
  return DVOICE_ERR_NOT_FOUND;
}

/* ---- connections ------------------------------------------------------- */

static int send_hello(dv_sim_vgw_conn *c, dvoice_tstamp now) {
  const dv_sim_vgw_settings *st = &c->vgw->settings;
  c->hello_sent = 1;
  c->hb_deadline = now + (dvoice_tstamp)(st->heartbeat_interval_ms +
                                         st->heartbeat_grace_ms) *
                             DVOICE_MS;
  return send_op(c, 8,
                 json_pack("{s:i,s:I}", "v", 8, "heartbeat_interval",
                           (json_int_t)st->heartbeat_interval_ms));
}

int dv_sim_vgw_conn_new(dv_sim_vgw *vgw, dvoice_tstamp now,
                        dv_sim_vgw_conn **out) {
  dv_sim_vgw_conn *c;
  int rv;
  *out = NULL;
  c = dv_calloc(vmem(vgw), 1, sizeof(*c));
  if (c == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  c->vgw = vgw;
  c->id = vgw->next_conn_id++;
  c->state = DV_SIM_CONN_AWAIT_IDENTIFY;
  c->hb_deadline = DVOICE_TSTAMP_NONE;
  if (ptr_push(vmem(vgw), (void ***)&vgw->conns, &vgw->nconns, c) != 0) {
    dv_free(vmem(vgw), c);
    return DVOICE_ERR_NOMEM;
  }
  if (!vgw->settings.hello_after_ready) {
    rv = send_hello(c, now);
    if (rv != 0) {
      dv_sim_vgw_conn_free(c);
      return rv;
    }
  }
  *out = c;
  return 0;
}

void dv_sim_vgw_conn_free(dv_sim_vgw_conn *c) {
  dv_sim_vgw *vgw;
  if (c == NULL) {
    return;
  }
  vgw = c->vgw;
  if (c->session != NULL && c->session->conn == c) {
    c->session->conn = NULL;
  }
  dv_sim_outq_free(&c->out, vmem(vgw));
  ptr_remove((void **)vgw->conns, &vgw->nconns, c);
  dv_free(vmem(vgw), c);
}

int dv_sim_vgw_conn_pop(dv_sim_vgw_conn *c, dv_sim_out *out) {
  return dv_sim_outq_pop(&c->out, out);
}

void dv_sim_vgw_conn_peer_closed(dv_sim_vgw_conn *c, int code,
                                 dvoice_tstamp now) {
  dv_sim_session *s = c->session;
  (void)now;
  if (c->state == DV_SIM_CONN_CLOSED) {
    return;
  }
  c->state = DV_SIM_CONN_CLOSED;
  c->close_code = code;
  c->hb_deadline = DVOICE_TSTAMP_NONE;
  if (s != NULL) {
    s->report.last_close_code = code;
    s->conn = NULL;
    c->session = NULL;
    /* A normal closure from the client ends the session for good. */
    if (code == 1000 || code == 1001) {
      (void)end_session(c->vgw, s);
    }
  }
}

int dv_sim_vgw_conn_close(dv_sim_vgw_conn *c, int code, dvoice_tstamp now) {
  if (c->state == DV_SIM_CONN_CLOSED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  return close_conn(c, code, now);
}

int dv_sim_vgw_session_close(dv_sim_session *s, int code, dvoice_tstamp now) {
  if (s->conn == NULL) {
    return DVOICE_ERR_INVALID_STATE;
  }
  return close_conn(s->conn, code, now);
}

int dv_sim_vgw_session_send(dv_sim_session *s, int op, const char *d_json,
                            dvoice_tstamp now) {
  json_t *d;
  (void)now;
  if (!session_alive(s)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  d = json_loads(d_json, JSON_DECODE_ANY, NULL);
  if (d == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return session_send_seq(s->vgw, s, op, d);
}

/* ---- message handlers -------------------------------------------------- */

/* Reads a required string member; NULL if missing or not a string. */
static const char *get_str(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int handle_identify(dv_sim_vgw_conn *c, json_t *d, dvoice_tstamp now) {
  dv_sim_vgw *vgw = c->vgw;
  const char *server_id, *user_id, *session_id, *token;
  json_t *dave, *modes;
  dv_sim_session *s;
  int rv;
  if (!json_is_object(d)) {
    return violate(c, now, 4020, "identify: d is not an object");
  }
  server_id = get_str(d, "server_id");
  user_id = get_str(d, "user_id");
  session_id = get_str(d, "session_id");
  token = get_str(d, "token");
  if (server_id == NULL || user_id == NULL || session_id == NULL ||
      token == NULL) {
    return violate(c, now, 4020,
                   "identify: server_id, user_id, session_id, token must be "
                   "strings");
  }
  if (!is_snowflake(server_id) || !is_snowflake(user_id)) {
    return violate(c, now, 4020, "identify: server_id/user_id not snowflakes");
  }
  if (session_id[0] == '\0' || token[0] == '\0') {
    return violate(c, now, 4020, "identify: empty session_id or token");
  }
  dave = json_object_get(d, "max_dave_protocol_version");
  if (dave == NULL) {
    return violate(c, now, vgw->settings.require_dave ? 4017 : 4020,
                   "identify: max_dave_protocol_version missing");
  }
  if (!json_is_integer(dave) || json_integer_value(dave) < 0 ||
      json_integer_value(dave) > 255) {
    return violate(c, now, 4020,
                   "identify: max_dave_protocol_version not a small integer");
  }
  s = dv_sim_vgw_find_session(vgw, session_id);
  if (s == NULL) {
    return violate(c, now, 4006, "identify: unknown session_id");
  }
  if (s->phase != DV_SIM_PHASE_REGISTERED) {
    /* Recorded on the session it concerns, which itself stays as it is. */
    rv = dv_sim_vgw_record(vgw, s, now, 4006,
                           "identify: session already identified");
    return rv != 0 ? rv : close_conn(c, 4006, now);
  }
  c->session = s;
  if (strcmp(s->token, token) != 0 || strcmp(s->server_id, server_id) != 0 ||
      strcmp(s->user_id, user_id) != 0) {
    c->session = NULL;
    rv = dv_sim_vgw_record(vgw, s, now, 4004,
                           "identify: token/server_id/user_id mismatch");
    return rv != 0 ? rv : close_conn(c, 4004, now);
  }
  if (vgw->settings.require_dave && json_integer_value(dave) == 0) {
    c->session = NULL;
    rv = dv_sim_vgw_record(vgw, s, now, 4017,
                           "identify: max_dave_protocol_version 0");
    return rv != 0 ? rv : close_conn(c, 4017, now);
  }
  s->conn = c;
  s->phase = DV_SIM_PHASE_READY;
  s->report.identifies++;
  s->report.connections++;
  c->state = DV_SIM_CONN_BOUND;
  modes = json_array();
  for (size_t i = 0; modes != NULL && i < vgw->settings.nmodes; i++) {
    if (json_array_append_new(modes, json_string(vgw->settings.modes[i])) !=
        0) {
      json_decref(modes);
      modes = NULL;
    }
  }
  if (modes == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  /* Ready's heartbeat_interval is bogus on Discord too; clients ignore it. */
  rv = send_op(c, 2,
               json_pack("{s:I,s:s,s:i,s:o,s:i}", "ssrc", (json_int_t)s->ssrc,
                         "ip", vgw->settings.udp_ip, "port",
                         (int)vgw->settings.udp_port, "modes", modes,
                         "heartbeat_interval", 1));
  if (rv == 0 && !c->hello_sent) {
    rv = send_hello(c, now);
  }
  /* Tell the newcomer who is here, and everyone else about the newcomer. */
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o == s || !session_alive(o) ||
        strcmp(o->server_id, s->server_id) != 0) {
      continue;
    }
    rv = announce_user(vgw, s, o->user_id);
    if (rv == 0 && o->speaking_seen) {
      rv = send_speaking(vgw, s, o->user_id, o->ssrc, o->speaking_flags);
    }
    if (rv == 0) {
      rv = announce_user(vgw, o, s->user_id);
    }
  }
  for (size_t i = 0; i < vgw->nfakes && rv == 0; i++) {
    dv_sim_fake_member *f = vgw->fakes[i];
    if (strcmp(f->server_id, s->server_id) != 0) {
      continue;
    }
    rv = announce_user(vgw, s, f->user_id);
    if (rv == 0) {
      rv = send_speaking(vgw, s, f->user_id, f->ssrc, f->speaking);
    }
  }
  return rv;
}

static int handle_resume(dv_sim_vgw_conn *c, json_t *d, dvoice_tstamp now) {
  dv_sim_vgw *vgw = c->vgw;
  const char *server_id, *session_id, *token;
  json_t *ack;
  json_int_t seq_ack = -1;
  uint32_t ack_int = 0;
  dv_sim_session *s;
  size_t replayed = 0;
  int rv;
  if (!json_is_object(d)) {
    return violate(c, now, 4020, "resume: d is not an object");
  }
  server_id = get_str(d, "server_id");
  session_id = get_str(d, "session_id");
  token = get_str(d, "token");
  if (server_id == NULL || session_id == NULL || token == NULL) {
    return violate(c, now, 4020,
                   "resume: server_id, session_id, token must be strings");
  }
  ack = json_object_get(d, "seq_ack");
  if (ack != NULL) {
    if (!json_is_integer(ack) || json_integer_value(ack) < -1) {
      return violate(c, now, 4020, "resume: seq_ack not an integer >= -1");
    }
    seq_ack = json_integer_value(ack);
  }
  s = dv_sim_vgw_find_session(vgw, session_id);
  if (s == NULL) {
    return violate(c, now, 4006, "resume: unknown session_id");
  }
  if (strcmp(s->token, token) != 0 || strcmp(s->server_id, server_id) != 0) {
    rv = dv_sim_vgw_record(vgw, s, now, 4004,
                           "resume: token/server_id mismatch");
    return rv != 0 ? rv : close_conn(c, 4004, now);
  }
  if (seq_ack >= 0 && map_ack(s, seq_ack, &ack_int) != 0) {
    rv = dv_sim_vgw_record(vgw, s, now, 4006,
                           "resume: seq_ack %lld is no seq we sent",
                           (long long)seq_ack);
    if (rv != 0) {
      return rv;
    }
    s->refuse_resume = 1;
  }
  /* The remaining failures are Discord's choices, not client bugs. */
  if (!session_alive(s) || s->refuse_resume ||
      (s->replay_dropped &&
       (seq_ack < 0 || ack_int < s->replay_dropped_upto))) {
    s->refuse_resume = 0;
    s->report.resume_failures++;
    s->report.last_close_code = 4006;
    if (s->conn != NULL) {
      (void)close_conn(s->conn, 4006, now);
    }
    rv = queue_out(c, DV_SIM_OUT_CLOSE, 4006, NULL, 0);
    c->state = DV_SIM_CONN_CLOSED;
    c->close_code = 4006;
    c->hb_deadline = DVOICE_TSTAMP_NONE;
    if (rv == 0) {
      rv = end_session(vgw, s);
    }
    return rv;
  }
  if (s->conn != NULL) {
    /* The client gave up on a connection we still hold: drop it quietly. */
    dv_sim_vgw_conn *old = s->conn;
    old->session = NULL;
    s->conn = NULL;
    rv = queue_out(old, DV_SIM_OUT_CLOSE, 4000, NULL, 0);
    old->state = DV_SIM_CONN_CLOSED;
    old->hb_deadline = DVOICE_TSTAMP_NONE;
    if (rv != 0) {
      return rv;
    }
  }
  c->session = s;
  c->state = DV_SIM_CONN_BOUND;
  s->conn = c;
  s->report.resumes++;
  s->report.connections++;
  rv = send_op(c, 9, json_null());
  for (size_t i = 0; i < s->replay_len && rv == 0; i++) {
    dv_sim_replay *r =
        &s->replay[(s->replay_head + i) % vgw->settings.replay_max];
    if (seq_ack >= 0 && r->seq <= ack_int) {
      continue;
    }
    rv = queue_out(c, DV_SIM_OUT_TEXT, 0, r->text.data, r->text.len);
    replayed++;
  }
  s->report.replayed += (uint32_t)replayed;
  if (rv == 0 && !c->hello_sent) {
    rv = send_hello(c, now);
  }
  return rv;
}

static int handle_heartbeat(dv_sim_vgw_conn *c, json_t *d, dvoice_tstamp now) {
  const dv_sim_vgw_settings *st = &c->vgw->settings;
  dv_sim_session *s = c->session;
  uint32_t ack_int;
  json_t *t, *ack;
  if (!json_is_object(d)) {
    return violate(c, now, 4020, "heartbeat: d is not a v8 {t, seq_ack}");
  }
  t = json_object_get(d, "t");
  if (!json_is_integer(t)) {
    return violate(c, now, 4020, "heartbeat: t is not an integer");
  }
  ack = json_object_get(d, "seq_ack");
  if (ack != NULL && !json_is_integer(ack)) {
    return violate(c, now, 4020, "heartbeat: seq_ack is not an integer");
  }
  if (ack != NULL && json_integer_value(ack) >= 0 &&
      map_ack(s, json_integer_value(ack), &ack_int) != 0) {
    /* Not fatal on Discord as far as anyone knows, but a client bug. */
    int rv = dv_sim_vgw_record(c->vgw, s, now, 0,
                               "heartbeat: seq_ack %lld is no seq we sent",
                               (long long)json_integer_value(ack));
    if (rv != 0) {
      return rv;
    }
  }
  s->report.heartbeats++;
  if (c->hello_sent) {
    c->hb_deadline = now + (dvoice_tstamp)(st->heartbeat_interval_ms +
                                           st->heartbeat_grace_ms) *
                               DVOICE_MS;
  }
  if (s->drop_acks) {
    s->report.acks_dropped++;
    return 0;
  }
  s->report.acks_sent++;
  return send_op(c, 6, json_pack("{s:O}", "t", t));
}

static int handle_select(dv_sim_vgw_conn *c, json_t *d, dvoice_tstamp now) {
  dv_sim_vgw *vgw = c->vgw;
  dv_sim_session *s = c->session;
  const char *proto, *addr, *mode_name;
  json_t *data, *port, *key;
  dv_sim_mode mode;
  int offered = 0;
  struct in_addr ia;
  char sid[33];
  uint8_t rnd[16];
  if (s->phase != DV_SIM_PHASE_READY) {
    return violate(c, now, 4020, "select protocol: not expected now");
  }
  if (!json_is_object(d)) {
    return violate(c, now, 4020, "select protocol: d is not an object");
  }
  proto = get_str(d, "protocol");
  if (proto == NULL || strcmp(proto, "udp") != 0) {
    return violate(c, now, 4012, "select protocol: protocol is not \"udp\"");
  }
  data = json_object_get(d, "data");
  if (!json_is_object(data)) {
    return violate(c, now, 4020, "select protocol: data is not an object");
  }
  addr = get_str(data, "address");
  port = json_object_get(data, "port");
  mode_name = get_str(data, "mode");
  if (addr == NULL || !is_ipv4(addr)) {
    return violate(c, now, 4020, "select protocol: address not IPv4");
  }
  if (!json_is_integer(port) || json_integer_value(port) < 1 ||
      json_integer_value(port) > 65535) {
    return violate(c, now, 4020, "select protocol: bad port");
  }
  if (mode_name == NULL) {
    return violate(c, now, 4020, "select protocol: mode missing");
  }
  for (size_t i = 0; i < vgw->settings.nmodes; i++) {
    if (strcmp(vgw->settings.modes[i], mode_name) == 0) {
      offered = 1;
    }
  }
  mode = dv_sim_mode_from_name(mode_name);
  if (!offered || mode == DV_SIM_MODE_NONE) {
    return violate(c, now, 4016, "select protocol: mode %.60s %s", mode_name,
                   offered ? "discontinued" : "not offered");
  }
  (void)inet_pton(AF_INET, addr, &ia);
  s->sel_ip = ntohl(ia.s_addr);
  s->sel_port = (uint16_t)json_integer_value(port);
  s->mode = mode;
  snprintf(s->report.mode, sizeof(s->report.mode), "%s", mode_name);
  s->report.select_protocols++;
  dv_rand(&vgw->env, s->key, sizeof(s->key));
  dv_rand(&vgw->env, rnd, sizeof(rnd));
  for (size_t i = 0; i < sizeof(rnd); i++) {
    snprintf(sid + 2 * i, 3, "%02x", rnd[i]);
  }
  key = json_array();
  for (size_t i = 0; key != NULL && i < sizeof(s->key); i++) {
    if (json_array_append_new(key, json_integer(s->key[i])) != 0) {
      json_decref(key);
      key = NULL;
    }
  }
  if (key == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  s->phase = DV_SIM_PHASE_ACTIVE;
  return send_op(c, 4,
                 json_pack("{s:s,s:o,s:i,s:s,s:s}", "mode", mode_name,
                           "secret_key", key, "dave_protocol_version", 0,
                           "audio_codec", "opus", "media_session_id", sid));
}

static int handle_speaking(dv_sim_vgw_conn *c, json_t *d, dvoice_tstamp now) {
  dv_sim_vgw *vgw = c->vgw;
  dv_sim_session *s = c->session;
  json_t *speaking, *delay, *ssrc;
  int rv = 0;
  if (s->phase != DV_SIM_PHASE_ACTIVE) {
    return violate(c, now, 4020, "speaking: before session description");
  }
  if (!json_is_object(d)) {
    return violate(c, now, 4020, "speaking: d is not an object");
  }
  speaking = json_object_get(d, "speaking");
  delay = json_object_get(d, "delay");
  ssrc = json_object_get(d, "ssrc");
  if (!json_is_integer(speaking) || json_integer_value(speaking) < 0 ||
      json_integer_value(speaking) > 7) {
    return violate(c, now, 4020, "speaking: speaking not a flag set 0..7");
  }
  if (!json_is_integer(delay) || json_integer_value(delay) != 0) {
    return violate(c, now, 4020, "speaking: delay is not 0");
  }
  if (!json_is_integer(ssrc) ||
      json_integer_value(ssrc) != (json_int_t)s->ssrc) {
    return violate(c, now, 4020, "speaking: ssrc is not the session's");
  }
  s->speaking_seen = 1;
  s->speaking_flags = (uint32_t)json_integer_value(speaking);
  s->report.speaking++;
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o == s || !session_alive(o) ||
        strcmp(o->server_id, s->server_id) != 0) {
      continue;
    }
    rv = send_speaking(vgw, o, s->user_id, s->ssrc, s->speaking_flags);
  }
  return rv;
}

static int is_client_op(json_int_t op) {
  return op == 0 || op == 1 || op == 3 || op == 5 || op == 7 || op == 23 ||
         op == 31;
}

static int handle_text(dv_sim_vgw_conn *c, const uint8_t *p, size_t len,
                       dvoice_tstamp now) {
  dv_json_envelope e;
  json_int_t op;
  json_t *d;
  int rv;
  rv = dv_json_envelope_parse(&e, (const char *)p, len, "seq");
  if (rv == DVOICE_ERR_NOMEM) {
    return rv;
  }
  if (rv != 0) {
    return violate(c, now, 4002, "not a JSON {op, d} envelope");
  }
  op = e.op;
  d = e.d;
  if (!is_client_op(op)) {
    rv = violate(c, now, 4001, "unknown opcode %lld", (long long)op);
  } else if (d == NULL) {
    rv = violate(c, now, 4002, "op %lld without d", (long long)op);
  } else {
    switch (c->state) {
      case DV_SIM_CONN_AWAIT_IDENTIFY:
        if (op == 0) {
          rv = handle_identify(c, d, now);
        } else if (op == 7) {
          rv = handle_resume(c, d, now);
        } else {
          rv = violate(c, now, 4003, "op %lld before identify", (long long)op);
        }
        break;
      case DV_SIM_CONN_BOUND:
        switch (op) {
          case 0:
            rv = violate(c, now, 4005, "identify while authenticated");
            break;
          case 7:
            rv = violate(c, now, 4005, "resume while authenticated");
            break;
          case 1:
            rv = handle_select(c, d, now);
            break;
          case 3:
            rv = handle_heartbeat(c, d, now);
            break;
          case 5:
            rv = handle_speaking(c, d, now);
            break;
          default:
            rv = violate(c, now, 4020, "DAVE op %lld while DAVE inactive",
                         (long long)op);
            break;
        }
        break;
      case DV_SIM_CONN_CLOSED:
      default:
        rv = DVOICE_ERR_INVALID_STATE;
        break;
    }
  }
  dv_json_envelope_free(&e);
  return rv;
}

int dv_sim_vgw_conn_recv(dv_sim_vgw_conn *c, int binary, const uint8_t *p,
                         size_t len, dvoice_tstamp now) {
  switch (c->state) {
    case DV_SIM_CONN_CLOSED:
      /* In-flight messages after our close are normal; they are dropped. */
      return DVOICE_ERR_INVALID_STATE;
    case DV_SIM_CONN_AWAIT_IDENTIFY:
    case DV_SIM_CONN_BOUND:
      break;
  }
  if (!binary) {
    return handle_text(c, p, len, now);
  }
  if (len == 0) {
    return violate(c, now, 4002, "empty binary message");
  }
  if (c->state == DV_SIM_CONN_AWAIT_IDENTIFY) {
    return violate(c, now, 4003, "binary op %u before identify", p[0]);
  }
  if (p[0] != 26 && p[0] != 28) {
    return violate(c, now, 4001, "unknown binary opcode %u", p[0]);
  }
  return violate(c, now, 4020, "binary DAVE op %u while DAVE inactive", p[0]);
}

/* ---- deadlines --------------------------------------------------------- */

dvoice_tstamp dv_sim_vgw_get_expiry(const dv_sim_vgw *vgw) {
  dvoice_tstamp t = DVOICE_TSTAMP_NONE;
  for (size_t i = 0; i < vgw->nconns; i++) {
    const dv_sim_vgw_conn *c = vgw->conns[i];
    if (c->state != DV_SIM_CONN_CLOSED && c->hb_deadline < t) {
      t = c->hb_deadline;
    }
  }
  return t;
}

int dv_sim_vgw_handle_expiry(dv_sim_vgw *vgw, dvoice_tstamp now) {
  int rv = 0;
  for (size_t i = 0; i < vgw->nconns; i++) {
    dv_sim_vgw_conn *c = vgw->conns[i];
    if (c->state != DV_SIM_CONN_CLOSED && c->hb_deadline <= now) {
      int r = violate(c, now, 4009, "no heartbeat within interval + grace");
      if (rv == 0) {
        rv = r;
      }
    }
  }
  return rv;
}

/* ---- report ------------------------------------------------------------ */

int dv_sim_vgw_report_json(const dv_sim_vgw *vgw, dv_buf *out) {
  int rv = dv_buf_append_str(out, "{\"unbound_violations\":[");
  for (size_t i = 0; i < vgw->violations.n && rv == 0; i++) {
    const dv_sim_violation *v = &vgw->violations.v[i];
    json_t *o = json_pack("{s:I,s:i,s:s}", "when_ns", (json_int_t)v->when,
                          "close_code", v->close_code, "what", v->what);
    if (i > 0) {
      rv = dv_buf_push(out, ',');
    }
    if (rv == 0) {
      rv = dump_json(o, out);
    }
  }
  if (rv == 0) {
    rv = dv_buf_append_str(out, "],\"sessions\":[");
  }
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    const dv_sim_session *s = vgw->sessions[i];
    if (i > 0) {
      rv = dv_buf_push(out, ',');
    }
    if (rv == 0) {
      rv = dv_sim_session_report_json(&s->report, s->session_id, s->user_id,
                                      s->ssrc, out);
    }
  }
  if (rv == 0) {
    rv = dv_buf_append_str(out, "]}");
  }
  return rv;
}
