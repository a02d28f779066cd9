/* The simulator's UDP media server (pure core). */
#include "sim_media.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <opus/opus.h>
#include <sodium.h>

#include "sim_crypt.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "util/dv_rw.h"

#define FRAME_NS (20 * DVOICE_MS)
#define FRAME_TS 960u
#define DISCOVERY_LEN 74
#define PT_OPUS 120
#define PCM_MAX (5760 * 2)
#define SILENCE_TAIL 5
#define HOLD_MAX_NS (60 * DVOICE_MS)
#define SPEAKING_RACE_NS (100 * DVOICE_MS)

static const uint8_t silence_frame[3] = {0xf8, 0xff, 0xfe};

/* Per-session media state, hung off dv_sim_session.media. */
struct dv_sim_member_media {
  dv_sim_session *session;
  int addr_known;
  dv_sim_addr addr;     /* where the client's packets come from */
  uint32_t out_counter; /* nonce counter for packets we send it */
  int have_first;
  uint16_t hi_seq;
  uint32_t hi_ts;
  uint64_t window; /* bit i: seq hi_seq - i was received */
  dvoice_tstamp last_inorder;
  dvoice_tstamp anchor_at; /* arrival of the first tracked packet */
  OpusDecoder *dec;
  dvoice_tstamp *arrivals;
  size_t narrivals;
  dvoice_tstamp first_unannounced; /* first packet before op 5 */
  int warned_key, warned_speaking, warned_decrypt;
  dv_sim_crypt_key ck; /* the session's key, prepared for both directions */
  /* The other sessions of its server, in the gateway's order, as of
   * |peers_seen| sessions (sessions are only ever added, and keep their
   * server): forwarding then skips the rest of the gateway. */
  dv_sim_session **peers;
  size_t npeers, peers_seen;
};

struct dv_sim_speaker {
  dv_sim_media *m;
  char *server_id;
  char *user_id;
  uint32_t ssrc;
  uint16_t seq;
  uint32_t ts;
  uint32_t nframes;      /* tone frames to send; 0: unlimited */
  uint64_t sent;         /* frames sent, tone and silence */
  uint32_t silence_left; /* silence frames still to send */
  int quiet;             /* done sending */
  dvoice_tstamp next;
  double phase;
  OpusEncoder *enc;
};

/*
 * An open-addressing hash map from nonzero 64-bit keys to pointers (linear
 * probing, backward-shift deletion), so that finding a packet's session
 * costs the same with 1000 sessions as with one. It is only an index: a
 * failed insert leaves lookups to fall back on a linear search.
 */
typedef struct map_slot {
  uint64_t key; /* 0: empty */
  void *val;
} map_slot;

typedef struct ptr_map {
  map_slot *v;
  size_t cap; /* a power of two, or 0 */
  size_t n;
} ptr_map;

typedef struct held {
  int used;
  dv_sim_dgram d;
  dvoice_tstamp since;
} held;

struct dv_sim_media {
  dvoice_env env;
  dv_sim_vgw *vgw;
  dv_sim_media_settings settings;
  dv_sim_media_global g;
  struct dv_sim_member_media **members;
  size_t nmembers;
  ptr_map by_ssrc; /* SSRC -> dv_sim_session */
  ptr_map by_addr; /* source address -> dv_sim_member_media */
  dv_sim_speaker **speakers;
  size_t nspeakers;
  dv_sim_dgram *out;
  size_t out_head, out_len, out_cap;
  held hold;
  dv_buf scratch; /* decrypted input */
  dv_buf tx;      /* packets being encrypted; never aliases scratch */
  int16_t *pcm;
};

void dv_sim_media_settings_default(dv_sim_media_settings *s) {
  memset(s, 0, sizeof(*s));
  s->decode_opus = 1;
  s->forward = 1;
  s->speaker_extension = 1;
  s->max_arrivals = 3000;
}

static const dvoice_mem *mmem(const dv_sim_media *m) {
  return m->env.mem;
}

int dv_sim_media_new(const dvoice_env *env, dv_sim_vgw *vgw,
                     const dv_sim_media_settings *settings,
                     dv_sim_media **out) {
  dv_sim_media *m;
  if (out == NULL || vgw == NULL || dv_env_check(env) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (sodium_init() < 0) {
    return DVOICE_ERR_INTERNAL;
  }
  m = dv_calloc(env->mem, 1, sizeof(*m));
  if (m == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  m->env = *env;
  m->vgw = vgw;
  if (settings != NULL) {
    m->settings = *settings;
  } else {
    dv_sim_media_settings_default(&m->settings);
  }
  dv_buf_init(&m->scratch, env->mem);
  dv_buf_init(&m->tx, env->mem);
  m->pcm = dv_malloc(env->mem, PCM_MAX * sizeof(int16_t));
  if (m->pcm == NULL) {
    dv_free(env->mem, m);
    return DVOICE_ERR_NOMEM;
  }
  *out = m;
  return 0;
}

static void speaker_free(dv_sim_media *m, dv_sim_speaker *sp) {
  if (sp->enc != NULL) {
    opus_encoder_destroy(sp->enc);
  }
  dv_free(mmem(m), sp->server_id);
  dv_free(mmem(m), sp->user_id);
  dv_free(mmem(m), sp);
}

void dv_sim_media_free(dv_sim_media *m) {
  const dvoice_mem *mem;
  if (m == NULL) {
    return;
  }
  mem = mmem(m);
  for (size_t i = 0; i < m->nmembers; i++) {
    struct dv_sim_member_media *mm = m->members[i];
    if (mm->session->media == mm) {
      mm->session->media = NULL;
    }
    if (mm->dec != NULL) {
      opus_decoder_destroy(mm->dec);
    }
    dv_sim_crypt_key_free(&mm->ck);
    dv_free(mem, mm->peers);
    dv_free(mem, mm->arrivals);
    dv_free(mem, mm);
  }
  for (size_t i = 0; i < m->nspeakers; i++) {
    speaker_free(m, m->speakers[i]);
  }
  for (size_t i = m->out_head; i < m->out_len; i++) {
    dv_buf_free(&m->out[i].data);
  }
  if (m->hold.used) {
    dv_buf_free(&m->hold.d.data);
  }
  dv_free(mem, m->out);
  dv_free(mem, m->by_ssrc.v);
  dv_free(mem, m->by_addr.v);
  dv_free(mem, m->members);
  dv_free(mem, m->speakers);
  dv_buf_free_secret(&m->scratch);
  dv_buf_free(&m->tx);
  dv_free(mem, m->pcm);
  dv_free(mem, m);
}

const dv_sim_media_global *dv_sim_media_global_stats(const dv_sim_media *m) {
  return &m->g;
}

void dv_sim_media_set_knobs(dv_sim_media *m, uint32_t loss_ppm,
                            uint32_t dup_ppm, uint32_t reorder_ppm) {
  m->settings.loss_ppm = loss_ppm;
  m->settings.dup_ppm = dup_ppm;
  m->settings.reorder_ppm = reorder_ppm;
}

/* ---- output ------------------------------------------------------------ */

/* Appends a datagram (taking ownership of |d->data|) to the send queue. */
static int push_out(dv_sim_media *m, dv_sim_dgram *d) {
  if (m->out_head > 0 && m->out_head == m->out_len) {
    m->out_head = m->out_len = 0;
  }
  if (m->out_len == m->out_cap) {
    size_t ncap = m->out_cap ? m->out_cap * 2 : 16;
    dv_sim_dgram *n = dv_realloc(mmem(m), m->out, ncap * sizeof(*n));
    if (n == NULL) {
      dv_buf_free(&d->data);
      return DVOICE_ERR_NOMEM;
    }
    m->out = n;
    m->out_cap = ncap;
  }
  m->out[m->out_len++] = *d;
  m->g.sent++;
  return 0;
}

static int roll(dv_sim_media *m, uint32_t ppm) {
  if (ppm == 0) {
    return 0;
  }
  return dv_rand_u32(&m->env) % 1000000u < ppm;
}

static int release_held(dv_sim_media *m) {
  if (!m->hold.used) {
    return 0;
  }
  m->hold.used = 0;
  return push_out(m, &m->hold.d);
}

/* Sends |p| to |dest| through the misbehaviour knobs. */
static int send_dgram(dv_sim_media *m, const uint8_t *p, size_t len,
                      const dv_sim_addr *dest, dvoice_tstamp now) {
  dv_sim_dgram d;
  int dup, rv;
  if (roll(m, m->settings.loss_ppm)) {
    m->g.lost++;
    return 0;
  }
  dup = roll(m, m->settings.dup_ppm);
  dv_buf_init(&d.data, mmem(m));
  d.dest = *dest;
  if (dv_buf_append(&d.data, p, len) != 0) {
    dv_buf_free(&d.data);
    return DVOICE_ERR_NOMEM;
  }
  if (!m->hold.used && roll(m, m->settings.reorder_ppm)) {
    /* Held back until the next datagram has gone out. */
    m->g.reordered++;
    m->hold.used = 1;
    m->hold.d = d;
    m->hold.since = now;
    return 0;
  }
  if (dup) {
    dv_sim_dgram d2;
    dv_buf_init(&d2.data, mmem(m));
    d2.dest = *dest;
    if (dv_buf_append(&d2.data, p, len) != 0) {
      dv_buf_free(&d2.data);
      dv_buf_free(&d.data);
      return DVOICE_ERR_NOMEM;
    }
    m->g.duplicated++;
    rv = push_out(m, &d);
    if (rv == 0) {
      rv = push_out(m, &d2);
    } else {
      dv_buf_free(&d2.data);
    }
  } else {
    rv = push_out(m, &d);
  }
  if (rv == 0) {
    rv = release_held(m);
  }
  return rv;
}

int dv_sim_media_pop(dv_sim_media *m, dv_sim_dgram *out) {
  if (m->out_head == m->out_len) {
    return 0;
  }
  *out = m->out[m->out_head++];
  return 1;
}

/* ---- index ------------------------------------------------------------- */

static size_t map_home(const ptr_map *mp, uint64_t key) {
  /* Fibonacci hashing: SSRCs are random but addresses are not. */
  return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (mp->cap - 1);
}

static void *map_get(const ptr_map *mp, uint64_t key) {
  if (mp->cap == 0) {
    return NULL;
  }
  for (size_t i = map_home(mp, key);; i = (i + 1) & (mp->cap - 1)) {
    if (mp->v[i].key == key) {
      return mp->v[i].val;
    }
    if (mp->v[i].key == 0) {
      return NULL;
    }
  }
}

/* Inserts or replaces. Returns 0 or DVOICE_ERR_NOMEM (|mp| unchanged). */
static int map_put(ptr_map *mp, const dvoice_mem *mem, uint64_t key,
                   void *val) {
  size_t i;
  if ((mp->n + 1) * 2 > mp->cap) {
    /* Keep the load at most one half: probes stay short. */
    ptr_map g;
    g.cap = mp->cap ? mp->cap * 2 : 64;
    g.n = 0;
    g.v = dv_calloc(mem, g.cap, sizeof(*g.v));
    if (g.v == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    for (size_t k = 0; k < mp->cap; k++) {
      if (mp->v[k].key != 0) {
        size_t j = map_home(&g, mp->v[k].key);
        while (g.v[j].key != 0) {
          j = (j + 1) & (g.cap - 1);
        }
        g.v[j] = mp->v[k];
        g.n++;
      }
    }
    dv_free(mem, mp->v);
    *mp = g;
  }
  for (i = map_home(mp, key); mp->v[i].key != 0 && mp->v[i].key != key;
       i = (i + 1) & (mp->cap - 1)) {
  }
  if (mp->v[i].key == 0) {
    mp->n++;
  }
  mp->v[i].key = key;
  mp->v[i].val = val;
  return 0;
}

/* Removes |key| if it maps to |val|. */
static void map_del(ptr_map *mp, uint64_t key, const void *val) {
  size_t i, j;
  if (mp->cap == 0) {
    return;
  }
  for (i = map_home(mp, key); mp->v[i].key != key;
       i = (i + 1) & (mp->cap - 1)) {
    if (mp->v[i].key == 0) {
      return;
    }
  }
  if (mp->v[i].val != val) {
    return;
  }
  /* Backward shift: pull later entries of the run into the hole unless
   * their home lies cyclically in (hole, their slot]. */
  for (j = (i + 1) & (mp->cap - 1); mp->v[j].key != 0;
       j = (j + 1) & (mp->cap - 1)) {
    size_t h = map_home(mp, mp->v[j].key);
    if (((j - h) & (mp->cap - 1)) >= ((j - i) & (mp->cap - 1))) {
      mp->v[i] = mp->v[j];
      i = j;
    }
  }
  mp->v[i].key = 0;
  mp->v[i].val = NULL;
  mp->n--;
}

static uint64_t ssrc_key(uint32_t ssrc) {
  return (uint64_t)1 << 48 | ssrc;
}

static uint64_t addr_key(const dv_sim_addr *a) {
  return (uint64_t)1 << 48 | (uint64_t)a->ip << 16 | a->port;
}

/* ---- members ----------------------------------------------------------- */

static struct dv_sim_member_media *member_of(dv_sim_media *m,
                                             dv_sim_session *s) {
  struct dv_sim_member_media *mm = s->media, **arr;
  if (mm != NULL) {
    return mm;
  }
  mm = dv_calloc(mmem(m), 1, sizeof(*mm));
  if (mm == NULL) {
    return NULL;
  }
  arr = dv_realloc(mmem(m), m->members, (m->nmembers + 1) * sizeof(*arr));
  if (arr == NULL) {
    dv_free(mmem(m), mm);
    return NULL;
  }
  m->members = arr;
  m->members[m->nmembers++] = mm;
  mm->session = s;
  mm->first_unannounced = DVOICE_TSTAMP_NONE;
  dv_sim_crypt_key_init(&mm->ck);
  s->media = mm;
  return mm;
}

static int same_addr(const dv_sim_addr *a, const dv_sim_addr *b) {
  return a->ip == b->ip && a->port == b->port;
}

/* Records where |mm|'s packets come from, keeping the address index. */
static void set_addr(dv_sim_media *m, struct dv_sim_member_media *mm,
                     const dv_sim_addr *a) {
  if (mm->addr_known && same_addr(&mm->addr, a)) {
    return;
  }
  if (mm->addr_known) {
    map_del(&m->by_addr, addr_key(&mm->addr), mm);
  }
  mm->addr_known = 1;
  mm->addr = *a;
  /* On failure the linear search below still finds it. */
  (void)map_put(&m->by_addr, mmem(m), addr_key(a), mm);
}

/* The session whose packets come from |a|. When several share the address
 * the index answers with the one that claimed it last. */
static dv_sim_session *session_by_addr(dv_sim_media *m, const dv_sim_addr *a) {
  struct dv_sim_member_media *mm = map_get(&m->by_addr, addr_key(a));
  if (mm != NULL && mm->addr_known && same_addr(&mm->addr, a)) {
    return mm->session;
  }
  m->g.slow_lookups++;
  for (size_t i = 0; i < m->nmembers; i++) {
    mm = m->members[i];
    if (mm->addr_known && same_addr(&mm->addr, a)) {
      (void)map_put(&m->by_addr, mmem(m), addr_key(a), mm);
      return mm->session;
    }
  }
  return NULL;
}

/* The session with |ssrc|. Sessions live as long as the gateway and keep
 * their SSRC, so an indexed one stays valid; the check is belt and braces. */
static dv_sim_session *session_by_ssrc(dv_sim_media *m, uint32_t ssrc) {
  dv_sim_session *s = map_get(&m->by_ssrc, ssrc_key(ssrc));
  if (s != NULL && s->ssrc == ssrc) {
    return s;
  }
  m->g.slow_lookups++;
  s = dv_sim_vgw_find_ssrc(m->vgw, ssrc);
  if (s != NULL) {
    (void)map_put(&m->by_ssrc, mmem(m), ssrc_key(ssrc), s);
  }
  return s;
}

/* Where packets for |s| go: the address its packets come from, else the one
 * it gave in Select Protocol. 0 if neither is known. */
static int dest_of(const dv_sim_session *s, dv_sim_addr *out) {
  const struct dv_sim_member_media *mm = s->media;
  if (mm != NULL && mm->addr_known) {
    *out = mm->addr;
    return 1;
  }
  if (s->sel_port != 0) {
    out->ip = s->sel_ip;
    out->port = s->sel_port;
    return 1;
  }
  return 0;
}

/* Encrypts |plain| under |aad| for session |to| and sends it. */
static int send_to_session(dv_sim_media *m, dv_sim_session *to,
                           const uint8_t *aad, size_t aad_len,
                           const uint8_t *plain, size_t plain_len,
                           dvoice_tstamp now) {
  struct dv_sim_member_media *mm;
  dv_sim_addr dest;
  int rv;
  if (!dest_of(to, &dest)) {
    m->g.unroutable++;
    return 0;
  }
  mm = member_of(m, to);
  if (mm == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_sim_crypt_key_set(&mm->ck, to->mode, to->key);
  if (rv != 0) {
    return rv;
  }
  dv_buf_reset(&m->tx);
  rv = dv_sim_crypt_seal_key(&mm->ck, aad, aad_len, plain, plain_len,
                             mm->out_counter++, &m->tx);
  if (rv != 0) {
    return rv;
  }
  return send_dgram(m, m->tx.data, m->tx.len, &dest, now);
}

/* ---- receive ----------------------------------------------------------- */

static int answer_discovery(dv_sim_media *m, const uint8_t *p,
                            const dv_sim_addr *from, dvoice_tstamp now) {
  uint8_t resp[DISCOVERY_LEN];
  uint32_t ssrc = dv_get_u32(p + 4);
  dv_sim_session *s = session_by_ssrc(m, ssrc);
  dv_sim_dgram d;
  memset(resp, 0, sizeof(resp));
  dv_put_u16(resp, 2);
  dv_put_u16(resp + 2, 70);
  dv_put_u32(resp + 4, ssrc);
  snprintf((char *)resp + 8, 64, "%u.%u.%u.%u", (from->ip >> 24) & 0xff,
           (from->ip >> 16) & 0xff, (from->ip >> 8) & 0xff, from->ip & 0xff);
  dv_put_u16(resp + 72, from->port);
  if (s != NULL) {
    struct dv_sim_member_media *mm = member_of(m, s);
    if (mm == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    set_addr(m, mm, from);
    s->report.media.discovery_requests++;
  } else {
    m->g.unknown++;
  }
  (void)now;
  /* Discovery answers bypass the knobs: clients retransmit, but a test of
   * loss should not have to wait for that. */
  dv_buf_init(&d.data, mmem(m));
  d.dest = *from;
  if (dv_buf_append(&d.data, resp, sizeof(resp)) != 0) {
    dv_buf_free(&d.data);
    return DVOICE_ERR_NOMEM;
  }
  return push_out(m, &d);
}

static void track_continuity(struct dv_sim_member_media *mm,
                             dv_sim_media_stats *st, uint16_t seq, uint32_t ts,
                             dvoice_tstamp now) {
  int d;
  if (!mm->have_first) {
    mm->have_first = 1;
    mm->hi_seq = seq;
    mm->hi_ts = ts;
    mm->window = 1;
    mm->last_inorder = now;
    mm->anchor_at = now;
    st->first_seq = seq;
    st->first_ts = ts;
    st->last_seq = seq;
    st->last_ts = ts;
    return;
  }
  d = (int16_t)(uint16_t)(seq - mm->hi_seq);
  if (d > 0) {
    uint64_t delta = now - mm->last_inorder;
    /* Where the media clock says this packet belongs: 1 sample = 1/48 ms. */
    int64_t drift =
        (int64_t)(now - mm->anchor_at) -
        (int64_t)((uint64_t)(uint32_t)(ts - st->first_ts) * 1000000u / 48u);
    if (drift < st->drift_min_ns) {
      st->drift_min_ns = drift;
    }
    if (drift > st->drift_max_ns) {
      st->drift_max_ns = drift;
    }
    st->missing += (uint64_t)(d - 1);
    if ((uint32_t)(ts - mm->hi_ts) != FRAME_TS * (uint32_t)d) {
      st->ts_errors++;
    }
    if (d == 1) {
      /* Inter-arrival statistics over consecutive packets only. */
      double x = (double)delta, dm;
      uint64_t dev = delta > FRAME_NS ? delta - FRAME_NS : FRAME_NS - delta;
      double dj;
      st->ia_count++;
      dm = x - st->ia_mean_ns;
      st->ia_mean_ns += dm / (double)st->ia_count;
      st->ia_m2 += dm * (x - st->ia_mean_ns);
      if (delta < st->ia_min_ns) {
        st->ia_min_ns = delta;
      }
      if (delta > st->ia_max_ns) {
        st->ia_max_ns = delta;
      }
      if (dev > st->ia_max_dev_ns) {
        st->ia_max_dev_ns = dev;
      }
      /* RFC 3550 section 6.4.1, with the timestamp step in ns. */
      dj = x - (double)(uint32_t)(ts - mm->hi_ts) * 1e9 / 48000.0;
      st->jitter_ns += (fabs(dj) - st->jitter_ns) / 16.0;
    }
    mm->window = d >= 64 ? 1 : (mm->window << d) | 1;
    mm->hi_seq = seq;
    mm->hi_ts = ts;
    mm->last_inorder = now;
    st->last_seq = seq;
    st->last_ts = ts;
  } else if (d == 0) {
    st->duplicates++;
  } else {
    int k = -d;
    if (k < 64 && ((mm->window >> k) & 1)) {
      st->duplicates++;
      return;
    }
    st->reordered++;
    if (k < 64) {
      mm->window |= (uint64_t)1 << k;
      if (st->missing > 0) {
        st->missing--;
      }
    }
    if ((uint32_t)(mm->hi_ts - ts) != FRAME_TS * (uint32_t)k) {
      st->ts_errors++;
    }
  }
}

/* Brings |mm|'s list of same-server sessions up to date. Returns 1, or 0
 * if out of memory (the caller then scans the gateway). */
static int peers_ready(dv_sim_media *m, struct dv_sim_member_media *mm) {
  dv_sim_vgw *vgw = m->vgw;
  const dv_sim_session *self = mm->session;
  dv_sim_session **arr;
  size_t n = 0;
  if (mm->peers_seen == vgw->nsessions) {
    return 1;
  }
  for (size_t i = 0; i < vgw->nsessions; i++) {
    const dv_sim_session *o = vgw->sessions[i];
    n += o != self && strcmp(o->server_id, self->server_id) == 0;
  }
  arr = dv_realloc(mmem(m), mm->peers, (n ? n : 1) * sizeof(*arr));
  if (arr == NULL) {
    return 0;
  }
  mm->peers = arr;
  mm->npeers = 0;
  for (size_t i = 0; i < vgw->nsessions; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o != self && strcmp(o->server_id, self->server_id) == 0) {
      arr[mm->npeers++] = o;
    }
  }
  mm->peers_seen = vgw->nsessions;
  return 1;
}

static int forward(dv_sim_media *m, dv_sim_session *from, const uint8_t *aad,
                   size_t aad_len, const uint8_t *plain, size_t plain_len,
                   dvoice_tstamp now) {
  dv_sim_vgw *vgw = m->vgw;
  struct dv_sim_member_media *mm = from->media;
  int rv = 0;
  if (mm != NULL && peers_ready(m, mm)) {
    for (size_t i = 0; i < mm->npeers && rv == 0; i++) {
      dv_sim_session *o = mm->peers[i];
      if (o->phase != DV_SIM_PHASE_ACTIVE) {
        continue;
      }
      rv = send_to_session(m, o, aad, aad_len, plain, plain_len, now);
      if (rv == 0) {
        from->report.media.forwarded++;
      }
    }
    return rv;
  }
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o == from || o->phase != DV_SIM_PHASE_ACTIVE ||
        strcmp(o->server_id, from->server_id) != 0) {
      continue;
    }
    rv = send_to_session(m, o, aad, aad_len, plain, plain_len, now);
    if (rv == 0) {
      from->report.media.forwarded++;
    }
  }
  return rv;
}

static int handle_rtp(dv_sim_media *m, dv_sim_session *s, const uint8_t *p,
                      size_t len, const dv_sim_addr *from, dvoice_tstamp now) {
  struct dv_sim_member_media *mm = member_of(m, s);
  dv_sim_media_stats *st = &s->report.media;
  size_t aad_len, plain_len, ext, off;
  uint8_t *plain;
  int rv;
  if (mm == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  st->received++;
  if (st->first_arrival == DVOICE_TSTAMP_NONE) {
    st->first_arrival = now;
  }
  st->last_arrival = now;
  if (mm->arrivals == NULL && m->settings.max_arrivals > 0) {
    mm->arrivals =
        dv_malloc(mmem(m), m->settings.max_arrivals * sizeof(dvoice_tstamp));
    if (mm->arrivals == NULL) {
      return DVOICE_ERR_NOMEM;
    }
  }
  if (mm->narrivals < m->settings.max_arrivals) {
    mm->arrivals[mm->narrivals++] = now;
  }
  if (!s->speaking_seen) {
    /* op 5 travels over TCP and may lose a race with the first datagrams
     * sent right after it: only a stream still without op 5 after
     * SPEAKING_RACE_NS is a violation. */
    st->before_speaking++;
    if (mm->first_unannounced == DVOICE_TSTAMP_NONE) {
      mm->first_unannounced = now;
    }
    if (!mm->warned_speaking &&
        now - mm->first_unannounced >= SPEAKING_RACE_NS) {
      mm->warned_speaking = 1;
      rv = dv_sim_vgw_record(
          m->vgw, s, now, 0, "rtp: packets before op 5 for %llu ms",
          (unsigned long long)((now - mm->first_unannounced) / DVOICE_MS));
      if (rv != 0) {
        return rv;
      }
    }
  }
  if (s->phase != DV_SIM_PHASE_ACTIVE || s->mode == DV_SIM_MODE_NONE) {
    st->before_key++;
    if (!mm->warned_key) {
      mm->warned_key = 1;
      return dv_sim_vgw_record(m->vgw, s, now, 0,
                               s->phase == DV_SIM_PHASE_ENDED
                                   ? "rtp: packet after the session ended"
                                   : "rtp: packet before session "
                                     "description");
    }
    return 0;
  }
  dv_buf_reset(&m->scratch);
  rv = dv_sim_crypt_key_set(&mm->ck, s->mode, s->key);
  if (rv == 0) {
    rv = dv_sim_crypt_open_key(&mm->ck, p, len, &m->scratch, &aad_len);
  }
  if (rv == DVOICE_ERR_NOMEM) {
    return rv;
  }
  if (rv != 0) {
    st->decrypt_failures++;
    if (!mm->warned_decrypt) {
      mm->warned_decrypt = 1;
      return dv_sim_vgw_record(m->vgw, s, now, 0, "rtp: decrypt failed (%s)",
                               dvoice_err_name(rv));
    }
    return 0;
  }
  st->decrypted++;
  if (st->decrypted == 1 && s->sel_port != 0 &&
      (s->sel_ip != from->ip || s->sel_port != from->port)) {
    /* Select Protocol should carry what IP discovery reported. */
    rv = dv_sim_vgw_record(m->vgw, s, now, 0,
                           "rtp: source %u.%u.%u.%u:%u is not the selected "
                           "%u.%u.%u.%u:%u",
                           from->ip >> 24, (from->ip >> 16) & 0xff,
                           (from->ip >> 8) & 0xff, from->ip & 0xff,
                           (unsigned)from->port, s->sel_ip >> 24,
                           (s->sel_ip >> 16) & 0xff, (s->sel_ip >> 8) & 0xff,
                           s->sel_ip & 0xff, (unsigned)s->sel_port);
    if (rv != 0) {
      return rv;
    }
  }
  set_addr(m, mm, from);
  track_continuity(mm, st, dv_get_u16(p + 2), dv_get_u32(p + 4), now);
  plain = m->scratch.data;
  plain_len = m->scratch.len;
  /* Skip the encrypted extension body, then strip RTP padding. */
  off = 0;
  if (p[0] & 0x10) {
    ext = 4 * (size_t)dv_get_u16(p + aad_len - 2);
    if (ext > plain_len) {
      st->header_errors++;
      return 0;
    }
    off = ext;
  }
  if ((p[0] & 0x20) && plain_len > off) {
    uint8_t pad = plain[plain_len - 1];
    if (pad == 0 || pad > plain_len - off) {
      st->header_errors++;
      return 0;
    }
    plain_len -= pad;
  }
  if (plain_len - off == sizeof(silence_frame) &&
      memcmp(plain + off, silence_frame, sizeof(silence_frame)) == 0) {
    st->silence_frames++;
  }
  if (m->settings.decode_opus) {
    int err = 0, n;
    if (mm->dec == NULL) {
      mm->dec = opus_decoder_create(48000, 2, &err);
      if (mm->dec == NULL) {
        return DVOICE_ERR_NOMEM;
      }
    }
    n = opus_decode(mm->dec, plain + off, (opus_int32)(plain_len - off), m->pcm,
                    PCM_MAX / 2, 0);
    if (n < 0) {
      st->decode_failures++;
    } else {
      st->decoded++;
    }
  }
  if (m->settings.forward) {
    /* Re-sent with the original header; the payload keeps its padding. */
    return forward(m, s, p, aad_len, m->scratch.data, m->scratch.len, now);
  }
  return 0;
}

int dv_sim_media_recv(dv_sim_media *m, const uint8_t *p, size_t len,
                      const dv_sim_addr *from, dvoice_tstamp now) {
  dv_sim_session *s;
  uint8_t pt;
  m->g.datagrams_in++;
  if (len == DISCOVERY_LEN && dv_get_u16(p) == 1 && dv_get_u16(p + 2) == 70) {
    return answer_discovery(m, p, from, now);
  }
  if (len < 12) {
    s = session_by_addr(m, from);
    if (s != NULL) {
      s->report.media.keepalives++;
    } else {
      m->g.unknown++;
    }
    return 0;
  }
  pt = p[1] & 0x7f;
  if ((p[0] >> 6) != 2) {
    s = session_by_addr(m, from);
    if (s != NULL) {
      s->report.media.header_errors++;
    } else {
      m->g.unknown++;
    }
    return 0;
  }
  if (p[1] >= 200 && p[1] <= 206) {
    s = session_by_addr(m, from);
    if (s != NULL) {
      s->report.media.rtcp++;
    } else {
      m->g.unknown++;
    }
    return 0;
  }
  s = session_by_ssrc(m, dv_get_u32(p + 8));
  if (s == NULL) {
    s = session_by_addr(m, from);
    if (s != NULL) {
      s->report.media.ssrc_errors++;
    } else {
      m->g.unknown++;
    }
    return 0;
  }
  if (pt != PT_OPUS) {
    s->report.media.header_errors++;
    return 0;
  }
  return handle_rtp(m, s, p, len, from, now);
}

void dv_sim_media_arrivals(const dv_sim_media *m, const dv_sim_session *s,
                           const dvoice_tstamp **times, size_t *n) {
  (void)m;
  if (s->media == NULL) {
    *times = NULL;
    *n = 0;
    return;
  }
  *times = s->media->arrivals;
  *n = s->media->narrivals;
}

/* ---- fake speakers ----------------------------------------------------- */

int dv_sim_media_speaker_start(dv_sim_media *m, const char *server_id,
                               const char *user_id, uint32_t ssrc,
                               uint32_t nframes, dvoice_tstamp now,
                               dv_sim_speaker **out) {
  dv_sim_speaker *sp, **arr;
  int err = 0, rv;
  if (out != NULL) {
    *out = NULL;
  }
  if (server_id == NULL || user_id == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  sp = dv_calloc(mmem(m), 1, sizeof(*sp));
  if (sp == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  sp->m = m;
  sp->server_id = dv_strdup(mmem(m), server_id);
  sp->user_id = dv_strdup(mmem(m), user_id);
  sp->ssrc = ssrc;
  sp->nframes = nframes;
  sp->next = now;
  sp->seq = (uint16_t)dv_rand_u32(&m->env);
  sp->ts = dv_rand_u32(&m->env);
  sp->enc = opus_encoder_create(48000, 2, OPUS_APPLICATION_AUDIO, &err);
  if (sp->server_id == NULL || sp->user_id == NULL) {
    speaker_free(m, sp);
    return DVOICE_ERR_NOMEM;
  }
  if (sp->enc == NULL) {
    speaker_free(m, sp);
    return DVOICE_ERR_INTERNAL;
  }
  /* A test tone needs no quality; keep the simulator cheap. */
  (void)opus_encoder_ctl(sp->enc, OPUS_SET_COMPLEXITY(0));
  arr = dv_realloc(mmem(m), m->speakers, (m->nspeakers + 1) * sizeof(*arr));
  if (arr == NULL) {
    speaker_free(m, sp);
    return DVOICE_ERR_NOMEM;
  }
  m->speakers = arr;
  rv = dv_sim_vgw_add_fake(m->vgw, server_id, user_id, ssrc, 1, now, NULL);
  if (rv != 0) {
    speaker_free(m, sp);
    return rv;
  }
  m->speakers[m->nspeakers++] = sp;
  if (out != NULL) {
    *out = sp;
  }
  return 0;
}

uint64_t dv_sim_speaker_sent(const dv_sim_speaker *sp) {
  return sp->sent;
}

void dv_sim_media_speaker_stop(dv_sim_media *m, dv_sim_speaker *sp,
                               dvoice_tstamp now) {
  for (size_t i = 0; i < m->nspeakers; i++) {
    if (m->speakers[i] == sp) {
      memmove(&m->speakers[i], &m->speakers[i + 1],
              (m->nspeakers - i - 1) * sizeof(*m->speakers));
      m->nspeakers--;
      (void)dv_sim_vgw_remove_fake(m->vgw, sp->user_id, now);
      speaker_free(m, sp);
      return;
    }
  }
}

/* Encodes the next 20 ms of a 440 Hz tone (or takes the silence frame) and
 * sends it to every active session of the speaker's server. */
static int speaker_tick(dv_sim_media *m, dv_sim_speaker *sp,
                        dvoice_tstamp now) {
  uint8_t frame[400], plain[4 + sizeof(frame)], aad[16];
  size_t flen, aad_len = 12, plain_len = 0;
  dv_sim_vgw *vgw = m->vgw;
  int rv = 0;
  if (sp->nframes != 0 && sp->sent >= sp->nframes) {
    memcpy(frame, silence_frame, sizeof(silence_frame));
    flen = sizeof(silence_frame);
    if (--sp->silence_left == 0) {
      sp->quiet = 1;
    }
  } else {
    int16_t pcm[960 * 2];
    opus_int32 n;
    for (int i = 0; i < 960; i++) {
      int16_t v = (int16_t)(8000.0 * sin(sp->phase));
      pcm[2 * i] = v;
      pcm[2 * i + 1] = v;
      sp->phase += 2.0 * 3.14159265358979 * 440.0 / 48000.0;
    }
    sp->phase = fmod(sp->phase, 2.0 * 3.14159265358979);
    n = opus_encode(sp->enc, pcm, 960, frame, (opus_int32)sizeof(frame));
    if (n < 0) {
      return DVOICE_ERR_INTERNAL;
    }
    flen = (size_t)n;
    if (sp->nframes != 0 && sp->sent + 1 == sp->nframes) {
      sp->silence_left = SILENCE_TAIL;
    }
  }
  aad[0] = 0x80;
  aad[1] = PT_OPUS;
  dv_put_u16(aad + 2, sp->seq);
  dv_put_u32(aad + 4, sp->ts);
  dv_put_u32(aad + 8, sp->ssrc);
  if (m->settings.speaker_extension) {
    /* One-byte-header extension (0xBEDE), one word: audio level element. */
    aad[0] |= 0x10;
    aad[12] = 0xbe;
    aad[13] = 0xde;
    dv_put_u16(aad + 14, 1);
    aad_len = 16;
    plain[0] = 0x10; /* id 1, length 1 */
    plain[1] = 0x7f; /* level */
    plain[2] = 0;
    plain[3] = 0;
    plain_len = 4;
  }
  memcpy(plain + plain_len, frame, flen);
  plain_len += flen;
  sp->seq++;
  sp->ts += FRAME_TS;
  sp->sent++;
  m->g.speaker_frames++;
  for (size_t i = 0; i < vgw->nsessions && rv == 0; i++) {
    dv_sim_session *o = vgw->sessions[i];
    if (o->phase != DV_SIM_PHASE_ACTIVE ||
        strcmp(o->server_id, sp->server_id) != 0) {
      continue;
    }
    rv = send_to_session(m, o, aad, aad_len, plain, plain_len, now);
  }
  return rv;
}

dvoice_tstamp dv_sim_media_get_expiry(const dv_sim_media *m) {
  dvoice_tstamp t = DVOICE_TSTAMP_NONE;
  for (size_t i = 0; i < m->nspeakers; i++) {
    if (!m->speakers[i]->quiet && m->speakers[i]->next < t) {
      t = m->speakers[i]->next;
    }
  }
  if (m->hold.used && m->hold.since + HOLD_MAX_NS < t) {
    t = m->hold.since + HOLD_MAX_NS;
  }
  return t;
}

int dv_sim_media_handle_expiry(dv_sim_media *m, dvoice_tstamp now) {
  int rv = 0;
  for (size_t i = 0; i < m->nspeakers && rv == 0; i++) {
    dv_sim_speaker *sp = m->speakers[i];
    if (sp->quiet || sp->next > now) {
      continue;
    }
    rv = speaker_tick(m, sp, now);
    /* Absolute grid; after a stall resynchronise instead of bursting. */
    sp->next += FRAME_NS;
    if (sp->next + FRAME_NS <= now) {
      m->g.speaker_late++;
      sp->next = now + FRAME_NS;
    }
  }
  if (rv == 0 && m->hold.used && m->hold.since + HOLD_MAX_NS <= now) {
    rv = release_held(m);
  }
  return rv;
}

/* ---- report ------------------------------------------------------------ */

int dv_sim_report_json(const dv_sim_vgw *vgw, const dv_sim_media *m,
                       dv_buf *out) {
  const dv_sim_media_global *g = &m->g;
  int rv = dv_buf_append_str(out, "{\"gateway\":");
  if (rv == 0) {
    rv = dv_sim_vgw_report_json(vgw, out);
  }
  if (rv == 0) {
    rv = dv_buf_appendf(
        out,
        ",\"media\":{\"datagrams_in\":%llu,\"unknown\":%llu,"
        "\"sent\":%llu,\"lost\":%llu,\"duplicated\":%llu,"
        "\"reordered\":%llu,\"unroutable\":%llu,\"speaker_frames\":%llu,"
        "\"speaker_late\":%llu}}",
        (unsigned long long)g->datagrams_in, (unsigned long long)g->unknown,
        (unsigned long long)g->sent, (unsigned long long)g->lost,
        (unsigned long long)g->duplicated, (unsigned long long)g->reordered,
        (unsigned long long)g->unroutable,
        (unsigned long long)g->speaker_frames,
        (unsigned long long)g->speaker_late);
  }
  return rv;
}
