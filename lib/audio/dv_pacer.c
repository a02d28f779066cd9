#include "audio/dv_pacer.h"

#include <string.h>

#include "rtp/dv_rtp.h"
#include "util/dv_env.h"
#include "util/dv_mem.h"

struct dv_pacer_conn {
  dv_pacer *p;
  dv_pacer_conn *prev, *next;   /* every connection of the pacer */
  int lane;                     /* index into p->lanes; -1: not scheduled */
  dv_pacer_conn *lprev, *lnext; /* the members of that lane */
  void *ud;
  dv_pacer_conn_settings s;
  dv_pacer_state state;
  int removed;
  int held;           /* dv_pacer_conn_hold(): skipped by both phases */
  int stopping;       /* stop() asked: no polling, IDLE after the tail */
  unsigned tail_left; /* silence frames still to prepare in TAIL */
  int due_slot;       /* a packet was due in the coming slot */
  int prepared;       /* ... and the glue holds it, ready to send */
  int prepared_silence;
  uint16_t seq;
  uint32_t ts;
  /* Push queue: a ring of |cap| slots of s.max_frame bytes. */
  uint8_t *slots;
  size_t *lens;
  size_t cap, head, count;
  unsigned qgen; /* bumped when stop() flushes the queue */
  int want_drain;
  dv_opus_enc *enc; /* pull with PCM */
  uint8_t scratch[DV_OPUS_MAX_PACKET];
  dv_pacer_stats st;
};

static int conn_busy(const dv_pacer_conn *c);

/* A lane: one grid of deadlines and the connections sending on it. */
typedef struct dv_pacer_lane {
  dv_pacer_conn *head, *tail;
  size_t members;
  dvoice_tstamp next; /* next deadline; NONE when the lane is idle */
  int restart;        /* the lane's next tick starts its grid */
  int fresh;          /* no packet has left on this grid yet */
} dv_pacer_lane;

struct dv_pacer {
  dvoice_env env;
  dv_pacer_settings s;
  dv_pacer_callbacks cb;
  dv_pacer_conn *head, *tail;
  size_t nconns;
  dv_pacer_lane *lanes; /* s.lanes of them */
  int cur_lane;         /* the lane ticking now; -1 outside a tick */
  dvoice_tstamp cur_slot;
  int in_tick;
  int removals; /* connections removed during the tick, to free after it */
  dv_pacer_tick_stats ts;
};

void dv_pacer_settings_default(dv_pacer_settings *s) {
  s->interval = 20 * DVOICE_MS;
  s->late_tolerance = 5 * DVOICE_MS;
  s->lanes = DV_PACER_DEFAULT_LANES;
  s->lane_capacity = DV_PACER_DEFAULT_LANE_CAPACITY;
}

void dv_pacer_conn_settings_default(dv_pacer_conn_settings *s,
                                    dv_pacer_style style) {
  memset(s, 0, sizeof(*s));
  s->style = style;
  s->queue_frames = 25;
  s->max_frame = DV_OPUS_MAX_PACKET;
  s->drain_threshold = 12;
  s->pcm = 0;
  dv_opus_enc_settings_default(&s->opus);
  s->silence_frames = 5;
}

uint64_t dv_pacer_stats_deficit(const dv_pacer_stats *s) {
  return s->expected > s->packets_sent ? s->expected - s->packets_sent : 0;
}

int dv_pacer_new(const dvoice_env *env, const dv_pacer_settings *s,
                 const dv_pacer_callbacks *cb, dv_pacer **out) {
  dv_pacer *p;
  *out = NULL;
  if (dv_env_check(env) < 0 || cb == NULL || cb->prepare == NULL ||
      cb->send == NULL ||
      (s != NULL && (s->interval == 0 || s->lanes == 0 ||
                     s->lanes > DV_PACER_MAX_LANES || s->lane_capacity == 0))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  p = dv_calloc(env->mem, 1, sizeof(*p));
  if (p == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  p->env = *env;
  if (s != NULL) {
    p->s = *s;
  } else {
    dv_pacer_settings_default(&p->s);
  }
  p->lanes = dv_calloc(env->mem, p->s.lanes, sizeof(*p->lanes));
  if (p->lanes == NULL) {
    dv_free(env->mem, p);
    return DVOICE_ERR_NOMEM;
  }
  for (unsigned i = 0; i < p->s.lanes; i++) {
    p->lanes[i].next = DVOICE_TSTAMP_NONE;
  }
  p->cb = *cb;
  p->cur_lane = -1;
  p->cur_slot = DVOICE_TSTAMP_NONE;
  *out = p;
  return 0;
}

static void conn_free(dv_pacer *p, dv_pacer_conn *c) {
  dv_opus_enc_free(c->enc);
  dv_free(p->env.mem, c->slots);
  dv_free(p->env.mem, c->lens);
  dv_free(p->env.mem, c);
}

/* Takes |c| out of its lane (it is no longer scheduled). */
static void lane_leave(dv_pacer *p, dv_pacer_conn *c) {
  dv_pacer_lane *l;
  if (c->lane < 0) {
    return;
  }
  l = &p->lanes[c->lane];
  if (c->lprev != NULL) {
    c->lprev->lnext = c->lnext;
  } else {
    l->head = c->lnext;
  }
  if (c->lnext != NULL) {
    c->lnext->lprev = c->lprev;
  } else {
    l->tail = c->lprev;
  }
  c->lprev = c->lnext = NULL;
  l->members--;
  if (l->members == 0 && c->lane != p->cur_lane) {
    l->next = DVOICE_TSTAMP_NONE; /* the tick of the lane running now ends */
    l->restart = 0;               /* with the same check */
  }
  c->lane = -1;
}

static void lane_join(dv_pacer *p, dv_pacer_conn *c, int i) {
  dv_pacer_lane *l = &p->lanes[i];
  c->lane = i;
  c->lnext = NULL;
  c->lprev = l->tail;
  if (l->tail != NULL) {
    l->tail->lnext = c;
  } else {
    l->head = c;
  }
  l->tail = c;
  l->members++;
}

static void unlink_conn(dv_pacer *p, dv_pacer_conn *c) {
  lane_leave(p, c);
  if (c->prev != NULL) {
    c->prev->next = c->next;
  } else {
    p->head = c->next;
  }
  if (c->next != NULL) {
    c->next->prev = c->prev;
  } else {
    p->tail = c->prev;
  }
}

void dv_pacer_free(dv_pacer *p) {
  dv_pacer_conn *c, *n;
  if (p == NULL) {
    return;
  }
  for (c = p->head; c != NULL; c = n) {
    n = c->next;
    conn_free(p, c);
  }
  dv_free(p->env.mem, p->lanes);
  dv_free(p->env.mem, p);
}

static dvoice_tstamp lane_expiry(const dv_pacer_lane *l) {
  return l->restart ? 0 : l->next;
}

dvoice_tstamp dv_pacer_get_expiry(const dv_pacer *p) {
  dvoice_tstamp t = DVOICE_TSTAMP_NONE;
  for (unsigned i = 0; i < p->s.lanes; i++) {
    dvoice_tstamp e = lane_expiry(&p->lanes[i]);
    if (e < t) {
      t = e;
    }
  }
  return t;
}

dvoice_tstamp dv_pacer_current_slot(const dv_pacer *p) {
  return p->cur_slot;
}

size_t dv_pacer_lane_count(const dv_pacer *p) {
  size_t n = 0;
  for (unsigned i = 0; i < p->s.lanes; i++) {
    n += p->lanes[i].members > 0;
  }
  return n;
}

int dv_pacer_conn_lane(const dv_pacer_conn *c) {
  return c->lane;
}

const dv_pacer_tick_stats *dv_pacer_get_tick_stats(const dv_pacer *p) {
  return &p->ts;
}

size_t dv_pacer_conn_count(const dv_pacer *p) {
  return p->nconns;
}

/*
 * Chooses the lane for a connection that starts sending: the fullest lane
 * below lane_capacity (few wake-ups), else an empty lane (a new grid, at
 * the phase farthest from the others: see lane_start), else the emptiest.
 */
static int choose_lane(const dv_pacer *p) {
  int best = -1, empty = -1, least = 0;
  for (unsigned i = 0; i < p->s.lanes; i++) {
    const dv_pacer_lane *l = &p->lanes[i];
    if (l->members == 0) {
      if (empty < 0) {
        empty = (int)i;
      }
    } else if (l->members < p->s.lane_capacity &&
               (best < 0 || l->members > p->lanes[best].members)) {
      best = (int)i;
    }
    if (l->members < p->lanes[least].members) {
      least = (int)i;
    }
  }
  return best >= 0 ? best : empty >= 0 ? empty : least;
}

/* |c| has something to send: it gets a lane if it has none, and an idle
 * lane starts a new grid at its next tick. */
static void wake(dv_pacer_conn *c) {
  dv_pacer *p = c->p;
  dv_pacer_lane *l;
  if (c->removed || c->held) {
    return;
  }
  if (c->lane < 0) {
    lane_join(p, c, choose_lane(p));
  }
  l = &p->lanes[c->lane];
  if (l->next == DVOICE_TSTAMP_NONE && c->lane != p->cur_lane) {
    l->restart = 1;
    l->next = 0;
  }
}

/* ---- connections -------------------------------------------------------- */

int dv_pacer_conn_add(dv_pacer *p, const dv_pacer_conn_settings *s,
                      void *conn_ud, dv_pacer_conn **out) {
  dv_pacer_conn_settings def;
  dv_pacer_conn *c;
  int rv;
  *out = NULL;
  if (s == NULL) {
    dv_pacer_conn_settings_default(&def, DV_PACER_PUSH);
    s = &def;
  }
  if ((s->style != DV_PACER_PUSH && s->style != DV_PACER_PULL) ||
      (s->style == DV_PACER_PULL && p->cb.pull == NULL) ||
      (s->style == DV_PACER_PUSH &&
       (s->queue_frames == 0 || s->max_frame == 0 ||
        s->drain_threshold >= s->queue_frames ||
        s->queue_frames > SIZE_MAX / s->max_frame))) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  c = dv_calloc(p->env.mem, 1, sizeof(*c));
  if (c == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  c->p = p;
  c->lane = -1;
  c->ud = conn_ud;
  c->s = *s;
  c->state = DV_PACER_IDLE;
  if (s->style == DV_PACER_PUSH) {
    c->cap = s->queue_frames;
    c->slots = dv_malloc(p->env.mem, s->queue_frames * s->max_frame);
    c->lens = dv_calloc(p->env.mem, s->queue_frames, sizeof(size_t));
    if (c->slots == NULL || c->lens == NULL) {
      conn_free(p, c);
      return DVOICE_ERR_NOMEM;
    }
  } else if (s->pcm) {
    rv = dv_opus_enc_new(p->env.mem, &s->opus, &c->enc);
    if (rv < 0) {
      conn_free(p, c);
      return rv;
    }
  }
  dv_pacer_conn_randomize_rtp(c);
  c->prev = p->tail;
  if (p->tail != NULL) {
    p->tail->next = c;
  } else {
    p->head = c;
  }
  p->tail = c;
  p->nconns++;
  *out = c;
  return 0;
}

void dv_pacer_conn_remove(dv_pacer_conn *c) {
  dv_pacer *p;
  if (c == NULL || c->removed) {
    return;
  }
  p = c->p;
  c->removed = 1;
  p->nconns--;
  if (p->in_tick) {
    /* The tick's loops may hold |c| or its neighbours: free at the end. */
    p->removals++;
    return;
  }
  unlink_conn(p, c);
  conn_free(p, c);
}

int dv_pacer_conn_push(dv_pacer_conn *c, const uint8_t *frame, size_t len) {
  size_t tail;
  if (c->removed || c->s.style != DV_PACER_PUSH) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (frame == NULL || len == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (len > c->s.max_frame) {
    return DVOICE_ERR_TOO_LARGE;
  }
  if (c->count == c->cap) {
    c->want_drain = 1;
    return DVOICE_ERR_NOBUF;
  }
  tail = (c->head + c->count) % c->cap;
  memcpy(c->slots + tail * c->s.max_frame, frame, len);
  c->lens[tail] = len;
  c->count++;
  if (c->count > c->s.drain_threshold) {
    c->want_drain = 1;
  }
  wake(c);
  return 0;
}

size_t dv_pacer_conn_queued(const dv_pacer_conn *c) {
  return c->count;
}

size_t dv_pacer_conn_queue_capacity(const dv_pacer_conn *c) {
  return c->cap;
}

int dv_pacer_conn_play(dv_pacer_conn *c) {
  if (c->removed || c->s.style != DV_PACER_PULL) {
    return DVOICE_ERR_INVALID_STATE;
  }
  c->stopping = 0;
  if (c->state == DV_PACER_IDLE) {
    c->state = DV_PACER_QUIET;
  }
  wake(c);
  return 0;
}

void dv_pacer_conn_stop(dv_pacer_conn *c) {
  if (c->removed) {
    return;
  }
  c->count = 0;
  c->qgen++;
  switch (c->state) {
    case DV_PACER_ACTIVE:
      c->state = DV_PACER_TAIL;
      c->tail_left = c->s.silence_frames;
      c->stopping = 1;
      break;
    case DV_PACER_TAIL:
      c->stopping = 1;
      break;
    case DV_PACER_QUIET:
      c->state = DV_PACER_IDLE;
      c->stopping = 0;
      break;
    case DV_PACER_IDLE:
      break;
  }
}

void dv_pacer_conn_hold(dv_pacer_conn *c, int hold) {
  if (c->removed || c->held == (hold != 0)) {
    return;
  }
  c->held = hold != 0;
  if (!c->held && conn_busy(c)) {
    wake(c);
  }
}

int dv_pacer_conn_held(const dv_pacer_conn *c) {
  return c->held;
}

dv_pacer_state dv_pacer_conn_state(const dv_pacer_conn *c) {
  return c->state;
}

void dv_pacer_conn_get_rtp(const dv_pacer_conn *c, uint16_t *seq,
                           uint32_t *timestamp) {
  *seq = c->seq;
  *timestamp = c->ts;
}

void dv_pacer_conn_set_rtp(dv_pacer_conn *c, uint16_t seq, uint32_t timestamp) {
  c->seq = seq;
  c->ts = timestamp;
}

void dv_pacer_conn_randomize_rtp(dv_pacer_conn *c) {
  uint8_t b[2];
  dv_rand(&c->p->env, b, 2);
  c->seq = (uint16_t)((b[0] << 8) | b[1]);
  c->ts = dv_rand_u32(&c->p->env);
}

const dv_pacer_stats *dv_pacer_conn_stats(const dv_pacer_conn *c) {
  return &c->st;
}

void *dv_pacer_conn_user_data(const dv_pacer_conn *c) {
  return c->ud;
}

/* ---- the tick ----------------------------------------------------------- */

/* Gets the next real frame: 1 with |*data|/|*len|, 0 for nothing, or a
 * negative error. |*from_queue| says the frame is the queue's head. */
static int next_frame(dv_pacer *p, dv_pacer_conn *c, const uint8_t **data,
                      size_t *len, int *from_queue) {
  dv_pull_result r;
  int rv;
  if (c->s.style == DV_PACER_PUSH) {
    if (c->count == 0) {
      return 0;
    }
    *data = c->slots + c->head * c->s.max_frame;
    *len = c->lens[c->head];
    *from_queue = 1;
    return 1;
  }
  if (c->stopping) {
    return 0;
  }
  memset(&r, 0, sizeof(r));
  rv = p->cb.pull(c, c->ud, &r);
  if (rv < 0) {
    return rv;
  }
  switch (r.kind) {
    case DV_PULL_NOTHING:
      return 0;
    case DV_PULL_OPUS:
      if (r.data == NULL || r.len == 0 || r.len > DV_OPUS_MAX_PACKET) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
      *data = r.data;
      *len = r.len;
      return 1;
    case DV_PULL_PCM_S16:
    case DV_PULL_PCM_FLOAT:
      if (r.data == NULL) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
      if (c->enc == NULL) {
        return DVOICE_ERR_INVALID_STATE;
      }
      rv = r.kind == DV_PULL_PCM_S16
               ? dv_opus_encode_s16(c->enc, r.data, c->scratch,
                                    sizeof(c->scratch))
               : dv_opus_encode_float(c->enc, r.data, c->scratch,
                                      sizeof(c->scratch));
      if (rv < 0) {
        return rv;
      }
      *data = c->scratch;
      *len = (size_t)rv;
      return 1;
  }
  return DVOICE_ERR_INVALID_ARGUMENT;
}

static void notify_stream(dv_pacer *p, dv_pacer_conn *c, int active) {
  if (p->cb.stream != NULL) {
    p->cb.stream(c, c->ud, active);
  }
}

static void end_stream(dv_pacer *p, dv_pacer_conn *c) {
  c->state = c->s.style == DV_PACER_PULL && !c->stopping ? DV_PACER_QUIET
                                                         : DV_PACER_IDLE;
  c->stopping = 0;
  notify_stream(p, c, 0);
}

/* The queue's head was consumed (unless stop() flushed it meanwhile). */
static void pop_frame(dv_pacer *p, dv_pacer_conn *c, unsigned qgen) {
  if (qgen != c->qgen || c->count == 0) {
    return;
  }
  c->head = (c->head + 1) % c->cap;
  c->count--;
  if (c->want_drain && c->count <= c->s.drain_threshold) {
    c->want_drain = 0;
    if (p->cb.drain != NULL && !c->removed) {
      p->cb.drain(c, c->ud);
    }
  }
}

static void prepare_one(dv_pacer *p, dv_pacer_conn *c, dvoice_tstamp due) {
  const uint8_t *data = NULL;
  size_t len = 0;
  int from_queue = 0, silence = 0, rv;
  unsigned qgen = c->qgen;
  dv_pacer_frame f;

  switch (c->state) {
    case DV_PACER_IDLE:
      if (c->s.style != DV_PACER_PUSH || c->count == 0) {
        return;
      }
      break;
    case DV_PACER_ACTIVE:
    case DV_PACER_TAIL:
    case DV_PACER_QUIET:
      break;
  }
  rv = next_frame(p, c, &data, &len, &from_queue);
  if (c->removed) {
    return;
  }
  if (rv < 0) {
    c->st.prepare_errors++;
    if (c->state == DV_PACER_ACTIVE || c->state == DV_PACER_TAIL) {
      c->due_slot = 1; /* a packet was due; this slot is lost */
    }
    return;
  }
  if (rv == 1) {
    int starting = c->state == DV_PACER_IDLE || c->state == DV_PACER_QUIET;
    c->state = DV_PACER_ACTIVE;
    if (starting) {
      c->st.streams++;
      notify_stream(p, c, 1);
      if (c->removed) {
        return;
      }
    }
  } else {
    if (c->state == DV_PACER_ACTIVE) {
      c->state = DV_PACER_TAIL;
      c->tail_left = c->s.silence_frames;
    }
    if (c->state != DV_PACER_TAIL) {
      return; /* QUIET: nothing now */
    }
    if (c->tail_left == 0) {
      end_stream(p, c);
      return;
    }
    data = dv_opus_silence;
    len = DV_OPUS_SILENCE_LEN;
    silence = 1;
    c->tail_left--;
  }

  c->due_slot = 1;
  f.data = data;
  f.len = len;
  f.seq = c->seq;
  f.timestamp = c->ts;
  f.silence = silence;
  f.due = due;
  rv = p->cb.prepare(c, c->ud, &f);
  if (from_queue) {
    pop_frame(p, c, qgen);
  }
  if (c->removed) {
    return;
  }
  if (rv == 0) {
    c->prepared = 1;
    c->prepared_silence = silence;
    c->seq++;
    c->ts += DV_RTP_TS_STEP;
  } else {
    c->st.prepare_errors++;
  }
  if (silence && c->state == DV_PACER_TAIL && c->tail_left == 0) {
    end_stream(p, c);
  }
}

static int conn_busy(const dv_pacer_conn *c) {
  return !c->removed && !c->held &&
         (c->state != DV_PACER_IDLE || c->due_slot || c->prepared ||
          (c->s.style == DV_PACER_PUSH && c->count > 0));
}

/*
 * Where a lane's grid starts: with no other lane running, one interval
 * after |now| (the first tick only prepares). Otherwise in the middle of
 * the widest gap between the running lanes' phases, so that lanes spread
 * over the interval and each wake-up sends few packets; the first
 * deadline is at least half an interval away so that the prepared packets
 * are ready in time.
 */
static dvoice_tstamp lane_start(const dv_pacer *p, const dv_pacer_lane *self,
                                dvoice_tstamp now) {
  const dvoice_tstamp iv = p->s.interval;
  dvoice_tstamp ph[DV_PACER_MAX_LANES], gap = 0, target = 0, t;
  size_t n = 0;
  for (unsigned i = 0; i < p->s.lanes; i++) {
    const dv_pacer_lane *l = &p->lanes[i];
    if (l != self && !l->restart && l->next != DVOICE_TSTAMP_NONE) {
      dvoice_tstamp v = l->next % iv, tmp;
      size_t k = n++;
      ph[k] = v;
      while (k > 0 && ph[k - 1] > ph[k]) { /* insertion sort */
        tmp = ph[k - 1];
        ph[k - 1] = ph[k];
        ph[k] = tmp;
        k--;
      }
    }
  }
  if (n == 0) {
    return now + iv;
  }
  for (size_t k = 0; k < n; k++) {
    dvoice_tstamp a = ph[k], b = k + 1 < n ? ph[k + 1] : ph[0] + iv;
    if (b - a > gap) {
      gap = b - a;
      target = (a + (b - a) / 2) % iv;
    }
  }
  t = now + iv / 2;
  return t + (target + iv - t % iv) % iv;
}

/* Runs the slot of lane |li| that is due at or before |now|. */
static void lane_tick(dv_pacer *p, int li, dvoice_tstamp now) {
  dv_pacer_lane *l = &p->lanes[li];
  dvoice_tstamp slot, lateness = 0;
  uint64_t missed = 0;
  int late = 0;
  dv_pacer_conn *c, *n;

  if (l->restart) {
    /* A new grid starts; anything prepared before a hold goes out now. */
    l->restart = 0;
    l->fresh = 1;
    p->ts.restarts++;
    slot = now;
    l->next = lane_start(p, l, now);
  } else if (l->fresh && now - l->next > p->s.late_tolerance) {
    /* The first slot of a new grid came late (the loop was busy, e.g.
     * starting many streams at once). No packet has left on this grid, so
     * no receiver has seen it: the grid starts here instead, with nothing
     * missed and no lateness. */
    l->fresh = 0;
    p->ts.ticks++;
    p->ts.reanchored++;
    dv_hist_record(&p->ts.lateness, 0);
    slot = now;
    l->next = slot + p->s.interval;
  } else {
    l->fresh = 0;
    lateness = now - l->next;
    missed = lateness / p->s.interval;
    slot = l->next + missed * p->s.interval;
    late = lateness > p->s.late_tolerance;
    p->ts.ticks++;
    p->ts.late_ticks += (uint64_t)late;
    p->ts.missed_slots += missed;
    dv_hist_record(&p->ts.lateness, lateness);
    l->next = slot + p->s.interval;
  }
  p->cur_lane = li;
  p->cur_slot = slot;

  /* Send phase: what was prepared for this slot goes out first. */
  for (c = l->head; c != NULL; c = c->lnext) {
    if (c->removed || !c->due_slot || c->held) {
      continue;
    }
    c->due_slot = 0;
    c->st.expected += 1 + missed;
    c->st.missed_slots += missed;
    if (c->prepared) {
      int silence = c->prepared_silence;
      c->prepared = 0;
      if (p->cb.send(c, c->ud) == 0) {
        c->st.packets_sent++;
        c->st.silence_sent += (uint64_t)silence;
        c->st.late_ticks += (uint64_t)late;
        dv_hist_record(&c->st.lateness, lateness);
      } else {
        c->st.send_errors++;
      }
    }
  }

  /* Prepare phase, for the lane's next grid point. Connections that
   * joined this lane from a callback above are prepared too. */
  for (c = l->head; c != NULL; c = c->lnext) {
    if (!c->removed && !c->held) {
      prepare_one(p, c, l->next);
    }
  }

  /* Connections with nothing more to do leave the lane. */
  for (c = l->head; c != NULL; c = n) {
    n = c->lnext;
    if (!c->removed && !conn_busy(c)) {
      lane_leave(p, c);
    }
  }
  p->cur_lane = -1;
  p->cur_slot = DVOICE_TSTAMP_NONE;
  if (l->members == 0) {
    l->next = DVOICE_TSTAMP_NONE;
  }
}

int dv_pacer_on_tick(dv_pacer *p, dvoice_tstamp now) {
  dv_pacer_conn *c, *n;
  int ran = 0;

  if (p->in_tick) {
    return DVOICE_ERR_INVALID_STATE;
  }
  p->in_tick = 1;
  /* Every lane due by |now|, earliest first; each runs at most once, as
   * its next deadline is then after |now|. */
  for (;;) {
    int li = -1;
    dvoice_tstamp best = DVOICE_TSTAMP_NONE;
    for (unsigned i = 0; i < p->s.lanes; i++) {
      dvoice_tstamp e = lane_expiry(&p->lanes[i]);
      if (e != DVOICE_TSTAMP_NONE && e <= now && (li < 0 || e < best)) {
        li = (int)i;
        best = e;
      }
    }
    if (li < 0) {
      break;
    }
    lane_tick(p, li, now);
    ran = 1;
  }
  p->in_tick = 0;
  if (!ran && dv_pacer_get_expiry(p) != DVOICE_TSTAMP_NONE) {
    p->ts.early++;
  }
  if (p->removals > 0) {
    p->removals = 0;
    for (c = p->head; c != NULL; c = n) {
      n = c->next;
      if (c->removed) {
        unlink_conn(p, c);
        conn_free(p, c);
      }
    }
  }
  return 0;
}
