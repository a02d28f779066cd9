/* Unit tests for the pure pacer (lib/audio/dv_pacer) and its histogram,
 * under a virtual clock: zero drift over ten minutes, resynchronisation
 * after a stall without bursts, RTP numbering and wrap, the silence tail,
 * the push queue and its drain notification, the pull hook, many
 * connections, and changes made from inside callbacks. */
#include "dvt.h"

#include "audio/dv_hist.h"
#include "audio/dv_opus.h"
#include "audio/dv_pacer.h"
#include "util/dv_rw.h"

#define MS DVOICE_MS
#define T0 (1000 * DVOICE_SECONDS)

/* ---- a fake glue -------------------------------------------------------- */

typedef struct sent_pkt {
  dvoice_tstamp at; /* virtual time of the send */
  uint16_t seq;
  uint32_t ts;
  int silence;
  size_t len;
  uint8_t b0;   /* first payload byte */
  uint32_t tag; /* first 4 payload bytes, big-endian (0 if shorter) */
} sent_pkt;

typedef struct tconn {
  dv_pacer_conn *c;
  struct tglue *g;
  /* The packet the glue holds between prepare and send. */
  dv_pacer_frame f;
  uint8_t pkt[1500];
  int have;
  /* Everything sent. */
  sent_pkt *sent;
  size_t nsent, capsent;
  /* Sends within the current tick (burst detector). */
  int this_tick;
  int max_per_tick;
  int fail_prepare, fail_send; /* fail the next N */
  int drains;
  int starts, ends;
  /* Pull script: frames to return, then NOTHING. */
  int pull_calls;
  int pull_frames;       /* frames left to return */
  uint32_t pull_counter; /* content of the next pulled frame */
  int pull_pcm;          /* return PCM instead of Opus */
  int16_t pcm[DV_OPUS_FRAME_VALUES];
  uint8_t pull_buf[8];
  /* Actions run from inside callbacks. */
  int remove_self_in_prepare;
  struct tconn *remove_in_send;
  int add_in_send;
} tconn;

typedef struct tglue {
  dvt_env e;
  dv_pacer *p;
  dvoice_tstamp now;
  tconn *added[256];
  int nadded;
} tglue;

static void record(tconn *t, const dv_pacer_frame *f, const uint8_t *pkt) {
  sent_pkt *s;
  if (t->nsent == t->capsent) {
    t->capsent = t->capsent ? 2 * t->capsent : 256;
    t->sent = realloc(t->sent, t->capsent * sizeof(*t->sent));
    assert_non_null(t->sent);
  }
  s = &t->sent[t->nsent++];
  s->at = t->g->now;
  s->seq = f->seq;
  s->ts = f->timestamp;
  s->silence = f->silence;
  s->len = f->len;
  s->b0 = pkt[0];
  s->tag = f->len >= 4 ? dv_get_u32(pkt) : 0;
}

static int cb_prepare(dv_pacer_conn *c, void *ud, const dv_pacer_frame *f) {
  tconn *t = ud;
  assert_ptr_equal(t->c, c);
  assert_false(t->have); /* never two packets prepared for one slot */
  if (t->remove_self_in_prepare) {
    dv_pacer_conn_remove(c);
    t->c = NULL;
    return 0;
  }
  if (t->fail_prepare > 0) {
    t->fail_prepare--;
    return DVOICE_ERR_CRYPTO;
  }
  assert_true(f->len > 0 && f->len <= sizeof(t->pkt));
  memcpy(t->pkt, f->data, f->len);
  t->f = *f;
  t->have = 1;
  if (f->silence) {
    assert_int_equal(f->len, 3);
    assert_memory_equal(f->data, dv_opus_silence, 3);
  }
  return 0;
}

static tconn *add_conn(tglue *g, dv_pacer_style style);
static int g_now_ok(const tconn *t);

static int cb_send(dv_pacer_conn *c, void *ud) {
  tconn *t = ud;
  assert_ptr_equal(t->c, c);
  assert_true(t->have);
  /* The packet goes out in the slot it was prepared for, or later. */
  assert_true(g_now_ok(t));
  t->have = 0;
  if (++t->this_tick > t->max_per_tick) {
    t->max_per_tick = t->this_tick;
  }
  if (t->remove_in_send != NULL && t->remove_in_send->c != NULL) {
    dv_pacer_conn_remove(t->remove_in_send->c);
    t->remove_in_send->c = NULL;
    t->remove_in_send = NULL;
  }
  if (t->add_in_send > 0) {
    t->add_in_send--;
    add_conn(t->g, DV_PACER_PUSH);
  }
  if (t->fail_send > 0) {
    t->fail_send--;
    return DVOICE_ERR_TRANSPORT;
  }
  record(t, &t->f, t->pkt);
  return 0;
}

static int cb_pull(dv_pacer_conn *c, void *ud, dv_pull_result *out) {
  tconn *t = ud;
  assert_ptr_equal(t->c, c);
  t->pull_calls++;
  if (t->pull_frames <= 0) {
    out->kind = DV_PULL_NOTHING;
    return 0;
  }
  t->pull_frames--;
  if (t->pull_pcm) {
    for (int i = 0; i < DV_OPUS_FRAME_VALUES; i++) {
      t->pcm[i] = (int16_t)((i * 97 + (int)t->pull_counter) % 8000 - 4000);
    }
    t->pull_counter++;
    out->kind = DV_PULL_PCM_S16;
    out->data = t->pcm;
    return 0;
  }
  dv_put_u32(t->pull_buf, t->pull_counter++);
  out->kind = DV_PULL_OPUS;
  out->data = t->pull_buf;
  out->len = 8;
  return 0;
}

static void cb_drain(dv_pacer_conn *c, void *ud) {
  tconn *t = ud;
  assert_ptr_equal(t->c, c);
  t->drains++;
}

static void cb_stream(dv_pacer_conn *c, void *ud, int active) {
  tconn *t = ud;
  assert_ptr_equal(t->c, c);
  if (active) {
    t->starts++;
  } else {
    t->ends++;
  }
}

static const dv_pacer_callbacks CBS = {cb_prepare, cb_send, cb_pull, cb_drain,
                                       cb_stream};

/* The send callback runs during a tick: the virtual clock is at or after
 * the slot the packet was prepared for. */
static int g_now_ok(const tconn *t) {
  return t->g->now >= t->f.due;
}

static void glue_init(tglue *g, const dv_pacer_settings *s) {
  memset(g, 0, sizeof(*g));
  dvt_env_init(&g->e);
  assert_int_equal(dv_pacer_new(&g->e.env, s, &CBS, &g->p), 0);
}

static tconn *add_conn_s(tglue *g, const dv_pacer_conn_settings *s) {
  tconn *t = calloc(1, sizeof(*t));
  assert_non_null(t);
  t->g = g;
  assert_true(g->nadded < 256);
  g->added[g->nadded++] = t;
  assert_int_equal(dv_pacer_conn_add(g->p, s, t, &t->c), 0);
  return t;
}

static tconn *add_conn(tglue *g, dv_pacer_style style) {
  dv_pacer_conn_settings s;
  dv_pacer_conn_settings_default(&s, style);
  return add_conn_s(g, &s);
}

static void glue_free(tglue *g) {
  dv_pacer_free(g->p);
  for (int i = 0; i < g->nadded; i++) {
    free(g->added[i]->sent);
    free(g->added[i]);
  }
  dvt_env_free(&g->e);
}

static void push_tagged(tconn *t, uint32_t tag) {
  uint8_t f[10];
  memset(f, 0xab, sizeof(f));
  dv_put_u32(f, tag);
  assert_int_equal(dv_pacer_conn_push(t->c, f, sizeof(f)), 0);
}

/* Runs one tick at |at| and resets the per-tick burst counters. */
static void tick_at(tglue *g, tconn **ts, int n, dvoice_tstamp at) {
  g->now = at;
  for (int i = 0; i < n; i++) {
    if (ts[i] != NULL) {
      ts[i]->this_tick = 0;
    }
  }
  assert_int_equal(dv_pacer_on_tick(g->p, at), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_hist_quantiles(void **state) {
  dv_hist h;
  (void)state;
  dv_hist_reset(&h);
  assert_true(dv_hist_quantile(&h, 500000) == 0);
  /* 1000 values: 1..1000 us. */
  for (uint64_t v = 1; v <= 1000; v++) {
    dv_hist_record(&h, v * 1000);
  }
  assert_true(h.count == 1000);
  assert_true(h.max == 1000000);
  {
    uint64_t p50 = dv_hist_quantile(&h, 500000);
    uint64_t p99 = dv_hist_quantile(&h, 990000);
    uint64_t p999 = dv_hist_quantile(&h, 999000);
    /* Within a quarter power of two above the true value. */
    assert_true(p50 >= 500000 && p50 <= 500000 * 5 / 4);
    assert_true(p99 >= 990000 && p99 <= 1000000);
    assert_true(p999 >= 999000 && p999 <= 1000000);
    assert_true(dv_hist_quantile(&h, 1000000) == 1000000);
  }
  /* Bucket bounds are contiguous and increasing. */
  for (size_t i = 0; i + 2 < DV_HIST_BUCKETS; i++) {
    uint64_t up = dv_hist_bucket_upper(i);
    assert_int_equal(dv_hist_bucket_of(up), i);
    assert_int_equal(dv_hist_bucket_of(up + 1), i + 1);
  }
  assert_int_equal(dv_hist_bucket_of(UINT64_MAX), DV_HIST_BUCKETS - 1);
  assert_int_equal(dv_hist_bucket_of(0), 0);
}

/* 30000 ticks (ten minutes) with jitter below the tolerance: tick n's
 * deadline is exactly start + n * 20 ms, one packet per tick, in order. */
static void test_zero_drift_ten_minutes(void **state) {
  tglue g;
  tconn *t;
  const int N = 30000;
  uint32_t tag = 0;
  const dv_pacer_stats *st;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  assert_true(dv_pacer_get_expiry(g.p) == DVOICE_TSTAMP_NONE);
  push_tagged(t, tag++);
  assert_true(dv_pacer_get_expiry(g.p) == 0);
  tick_at(&g, &t, 1, T0); /* starts the grid at T0, prepares tick 1 */
  for (int n = 1; n <= N; n++) {
    dvoice_tstamp due = dv_pacer_get_expiry(g.p);
    dvoice_tstamp jitter = (dvoice_tstamp)((n * 7919) % 4000) * 1000;
    assert_true(due == T0 + (dvoice_tstamp)n * 20 * MS);
    /* Keep the producer ahead; the last frame is pushed for tick N. */
    while (tag <= (uint32_t)N - 1 && dv_pacer_conn_queued(t->c) < 3) {
      push_tagged(t, tag++);
    }
    tick_at(&g, &t, 1, due + jitter);
    assert_int_equal(t->nsent, (size_t)n);
    assert_true(t->sent[n - 1].at == due + jitter);
  }
  st = dv_pacer_conn_stats(t->c);
  assert_true(st->packets_sent == (uint64_t)N);
  assert_true(st->expected == (uint64_t)N);
  assert_true(dv_pacer_stats_deficit(st) == 0);
  assert_true(st->late_ticks == 0);
  assert_true(st->missed_slots == 0);
  assert_true(st->lateness.count == (uint64_t)N);
  assert_true(st->lateness.max <= 4 * MS);
  assert_true(dv_hist_quantile(&st->lateness, 999000) <= 4 * MS);
  assert_true(dv_pacer_get_tick_stats(g.p)->ticks == (uint64_t)N);
  assert_int_equal(t->max_per_tick, 1);
  for (int i = 0; i < N; i++) {
    assert_int_equal(t->sent[i].tag, (uint32_t)i);
    assert_false(t->sent[i].silence);
    if (i > 0) {
      assert_int_equal(t->sent[i].seq, (uint16_t)(t->sent[i - 1].seq + 1));
      assert_int_equal(t->sent[i].ts, t->sent[i - 1].ts + 960);
    }
  }
  assert_int_equal(t->starts, 1);
  glue_free(&g);
}

/* A 500 ms stall: one packet per connection in the late tick, 25 missed
 * slots each, and the schedule stays on the original grid. */
static void test_stall_resync_no_burst(void **state) {
  tglue g;
  tconn *ts[3];
  dvoice_tstamp due;
  (void)state;
  glue_init(&g, NULL);
  for (int i = 0; i < 3; i++) {
    ts[i] = add_conn(&g, i == 2 ? DV_PACER_PULL : DV_PACER_PUSH);
    if (i == 2) {
      ts[i]->pull_frames = 1000000;
      assert_int_equal(dv_pacer_conn_play(ts[i]->c), 0);
    }
  }
  push_tagged(ts[0], 0);
  push_tagged(ts[1], 0);
  tick_at(&g, ts, 3, T0);
  for (int n = 1; n <= 300; n++) {
    for (int i = 0; i < 2; i++) {
      while (dv_pacer_conn_queued(ts[i]->c) < 3) {
        push_tagged(ts[i], (uint32_t)n);
      }
    }
    due = dv_pacer_get_expiry(g.p);
    assert_true((due - T0) % (20 * MS) == 0);
    if (n == 100) {
      /* 15 ms late: counted late, not resynchronised. */
      tick_at(&g, ts, 3, due + 15 * MS);
      assert_true(dv_pacer_get_expiry(g.p) == due + 20 * MS);
    } else if (n == 150) {
      /* The stall. */
      tick_at(&g, ts, 3, due + 500 * MS);
      for (int i = 0; i < 3; i++) {
        assert_int_equal(ts[i]->this_tick, 1);
      }
      assert_true(dv_pacer_get_expiry(g.p) == due + 520 * MS);
    } else {
      tick_at(&g, ts, 3, due);
    }
  }
  for (int i = 0; i < 3; i++) {
    const dv_pacer_stats *st = dv_pacer_conn_stats(ts[i]->c);
    assert_int_equal(ts[i]->max_per_tick, 1);
    assert_true(st->packets_sent == 300);
    assert_true(st->missed_slots == 25);
    assert_true(st->expected == 325);
    assert_true(dv_pacer_stats_deficit(st) == 25);
    assert_true(st->late_ticks == 2);
    assert_true(st->lateness.max == 500 * MS);
    /* Sequence numbers stay contiguous: content is delayed, not lost. */
    for (size_t k = 1; k < ts[i]->nsent; k++) {
      assert_int_equal(ts[i]->sent[k].seq,
                       (uint16_t)(ts[i]->sent[k - 1].seq + 1));
    }
  }
  assert_true(dv_pacer_get_tick_stats(g.p)->missed_slots == 25);
  assert_true(dv_pacer_get_tick_stats(g.p)->late_ticks == 2);
  glue_free(&g);
}

static void test_early_tick_is_noop(void **state) {
  tglue g;
  tconn *t;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  push_tagged(t, 1);
  push_tagged(t, 2);
  tick_at(&g, &t, 1, T0);
  tick_at(&g, &t, 1, T0 + 20 * MS - 1);
  assert_int_equal(t->nsent, 0);
  assert_true(dv_pacer_get_tick_stats(g.p)->early == 1);
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 20 * MS);
  tick_at(&g, &t, 1, T0 + 20 * MS);
  assert_int_equal(t->nsent, 1);
  glue_free(&g);
}

static void test_rtp_random_start_and_wrap(void **state) {
  tglue g;
  tconn *t;
  uint16_t seq;
  uint32_t ts;
  static const uint16_t want_seq[] = {65534, 65535, 0, 1, 2};
  (void)state;
  glue_init(&g, NULL);
  g.e.rand.next = 0x10;
  t = add_conn(&g, DV_PACER_PUSH);
  /* Drawn from the random hook: bytes 10 11, then 12 13 14 15. */
  dv_pacer_conn_get_rtp(t->c, &seq, &ts);
  assert_int_equal(seq, 0x1011);
  assert_int_equal(ts, 0x12131415);
  dv_pacer_conn_randomize_rtp(t->c);
  dv_pacer_conn_get_rtp(t->c, &seq, &ts);
  assert_int_equal(seq, 0x1617);
  dv_pacer_conn_set_rtp(t->c, 65534, 0xfffff800u);
  for (uint32_t i = 0; i < 5; i++) {
    push_tagged(t, i);
  }
  tick_at(&g, &t, 1, T0);
  for (int n = 1; n <= 5; n++) {
    tick_at(&g, &t, 1, T0 + (dvoice_tstamp)n * 20 * MS);
  }
  assert_int_equal(t->nsent, 5);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(t->sent[i].seq, want_seq[i]);
    assert_int_equal(t->sent[i].ts, (uint32_t)(0xfffff800u + 960u * i));
  }
  assert_int_equal(t->sent[2].ts, 0xffffff80u);
  assert_int_equal(t->sent[3].ts, 0x340);
  glue_free(&g);
}

/* Runs ticks until the pacer is idle or |max| ticks; returns ticks run. */
static int run_until_idle(tglue *g, tconn **ts, int n, int max) {
  int k = 0;
  while (k < max) {
    dvoice_tstamp due = dv_pacer_get_expiry(g->p);
    if (due == DVOICE_TSTAMP_NONE) {
      break;
    }
    tick_at(g, ts, n, due == 0 ? g->now + 7 * MS : due);
    k++;
  }
  return k;
}

static void test_silence_tail_push(void **state) {
  tglue g;
  tconn *t;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  g.now = T0;
  for (uint32_t i = 0; i < 3; i++) {
    push_tagged(t, 100 + i);
  }
  run_until_idle(&g, &t, 1, 100);
  assert_int_equal(t->nsent, 8);
  for (int i = 0; i < 3; i++) {
    assert_false(t->sent[i].silence);
    assert_int_equal(t->sent[i].tag, 100u + (uint32_t)i);
  }
  for (int i = 3; i < 8; i++) {
    assert_true(t->sent[i].silence);
    assert_int_equal(t->sent[i].b0, 0xf8);
    assert_int_equal(t->sent[i].seq, (uint16_t)(t->sent[2].seq + i - 2));
  }
  assert_int_equal(dv_pacer_conn_state(t->c), DV_PACER_IDLE);
  assert_true(dv_pacer_get_expiry(g.p) == DVOICE_TSTAMP_NONE);
  assert_true(dv_pacer_conn_stats(t->c)->silence_sent == 5);
  assert_int_equal(t->starts, 1);
  assert_int_equal(t->ends, 1);

  /* A frame arriving during the tail resumes the stream: the tail is cut,
   * and a later end sends a full tail again. */
  push_tagged(t, 7);
  tick_at(&g, &t, 1, g.now + 100 * MS); /* restart */
  tick_at(&g, &t, 1, g.now + 20 * MS);  /* frame 7 */
  tick_at(&g, &t, 1, g.now + 20 * MS);  /* silence 1 */
  push_tagged(t, 8);
  run_until_idle(&g, &t, 1, 100);
  /* 7, two silences (one was prepared before 8 arrived), 8, the tail. */
  assert_int_equal(t->nsent, 8 + 1 + 2 + 1 + 5);
  assert_int_equal(t->sent[8].tag, 7);
  assert_int_equal(t->sent[9].silence, 1);
  assert_int_equal(t->sent[10].silence, 1);
  assert_int_equal(t->sent[11].tag, 8);
  assert_true(dv_pacer_conn_stats(t->c)->silence_sent == 12);
  assert_int_equal(t->starts, 2);
  assert_int_equal(t->ends, 2);
  glue_free(&g);
}

static void test_stop_mid_stream(void **state) {
  tglue g;
  tconn *t;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  g.now = T0;
  for (uint32_t i = 0; i < 10; i++) {
    push_tagged(t, i);
  }
  tick_at(&g, &t, 1, T0);
  tick_at(&g, &t, 1, T0 + 20 * MS);
  tick_at(&g, &t, 1, T0 + 40 * MS);
  assert_int_equal(t->nsent, 2);
  dv_pacer_conn_stop(t->c);
  assert_int_equal(dv_pacer_conn_queued(t->c), 0);
  run_until_idle(&g, &t, 1, 100);
  /* The frame prepared before stop still goes out, then five silences. */
  assert_int_equal(t->nsent, 3 + 5);
  for (int i = 3; i < 8; i++) {
    assert_true(t->sent[i].silence);
  }
  assert_int_equal(dv_pacer_conn_state(t->c), DV_PACER_IDLE);
  glue_free(&g);
}

static void test_pull_tail_quiet_and_stop(void **state) {
  tglue g;
  tconn *t;
  int calls;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PULL);
  assert_int_equal(dv_pacer_conn_push(t->c, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_STATE);
  g.now = T0;
  t->pull_frames = 4;
  assert_int_equal(dv_pacer_conn_play(t->c), 0);
  assert_int_equal(dv_pacer_conn_state(t->c), DV_PACER_QUIET);
  for (int n = 0; n <= 20; n++) {
    tick_at(&g, &t, 1, T0 + (dvoice_tstamp)n * 20 * MS);
  }
  /* Asked once per tick, exactly when a frame was due. */
  assert_int_equal(t->pull_calls, 21);
  assert_int_equal(t->nsent, 9);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(t->sent[i].tag, (uint32_t)i);
  }
  for (int i = 4; i < 9; i++) {
    assert_true(t->sent[i].silence);
  }
  assert_int_equal(dv_pacer_conn_state(t->c), DV_PACER_QUIET);
  assert_int_equal(t->ends, 1);
  /* Quiet but polled: audio returns without any call. */
  t->pull_frames = 2;
  tick_at(&g, &t, 1, T0 + 21 * 20 * MS);
  tick_at(&g, &t, 1, T0 + 22 * 20 * MS);
  assert_int_equal(t->starts, 2);
  assert_int_equal(t->nsent, 10);
  /* Stop: the tail goes out without asking the source, then IDLE. */
  t->pull_frames = 1000;
  dv_pacer_conn_stop(t->c);
  calls = t->pull_calls;
  run_until_idle(&g, &t, 1, 100);
  assert_int_equal(t->pull_calls, calls);
  assert_int_equal(t->nsent, 11 + 5);
  assert_int_equal(dv_pacer_conn_state(t->c), DV_PACER_IDLE);
  assert_true(dv_pacer_get_expiry(g.p) == DVOICE_TSTAMP_NONE);
  glue_free(&g);
}

static void test_pull_pcm_encodes(void **state) {
  tglue g;
  tconn *t;
  dv_pacer_conn_settings s;
  dv_opus_dec *dec;
  int16_t pcm[DV_OPUS_MAX_DECODE_SAMPLES * 2];
  (void)state;
  glue_init(&g, NULL);
  dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
  s.pcm = 1;
  t = add_conn_s(&g, &s);
  t->pull_pcm = 1;
  t->pull_frames = 3;
  assert_int_equal(dv_pacer_conn_play(t->c), 0);
  assert_int_equal(dv_opus_dec_new(NULL, &dec), 0);
  g.now = T0;
  tick_at(&g, &t, 1, T0);
  for (int n = 1; n <= 3; n++) {
    /* The prepared frame is real Opus: it decodes to 20 ms. */
    assert_true(t->have);
    assert_int_equal(dv_opus_decode_s16(dec, t->pkt, t->f.len, pcm,
                                        DV_OPUS_MAX_DECODE_SAMPLES, 0),
                     960);
    tick_at(&g, &t, 1, T0 + (dvoice_tstamp)n * 20 * MS);
  }
  assert_int_equal(t->nsent, 3);
  dv_opus_dec_free(dec);
  glue_free(&g);

  /* PCM from a source without an encoder is a prepare error. */
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PULL);
  t->pull_pcm = 1;
  t->pull_frames = 1;
  assert_int_equal(dv_pacer_conn_play(t->c), 0);
  tick_at(&g, &t, 1, T0);
  assert_false(t->have);
  assert_true(dv_pacer_conn_stats(t->c)->prepare_errors == 1);
  glue_free(&g);
}

static void test_push_queue_full_and_drain(void **state) {
  tglue g;
  tconn *t;
  dv_pacer_conn_settings s;
  uint8_t big[DV_OPUS_MAX_PACKET + 1] = {1};
  (void)state;
  glue_init(&g, NULL);
  dv_pacer_conn_settings_default(&s, DV_PACER_PUSH);
  s.queue_frames = 4;
  s.drain_threshold = 1;
  t = add_conn_s(&g, &s);
  assert_int_equal(dv_pacer_conn_queue_capacity(t->c), 4);
  for (uint32_t i = 0; i < 4; i++) {
    push_tagged(t, i);
  }
  assert_int_equal(dv_pacer_conn_queued(t->c), 4);
  assert_int_equal(dv_pacer_conn_push(t->c, big, 10), DVOICE_ERR_NOBUF);
  assert_int_equal(dv_pacer_conn_push(t->c, big, sizeof(big)),
                   DVOICE_ERR_TOO_LARGE);
  assert_int_equal(dv_pacer_conn_push(t->c, big, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_pacer_conn_play(t->c), DVOICE_ERR_INVALID_STATE);
  g.now = T0;
  tick_at(&g, &t, 1, T0); /* prepares frame 0: 3 left */
  assert_int_equal(t->drains, 0);
  tick_at(&g, &t, 1, T0 + 20 * MS); /* 2 left */
  assert_int_equal(t->drains, 0);
  tick_at(&g, &t, 1, T0 + 40 * MS); /* 1 left: drain */
  assert_int_equal(t->drains, 1);
  assert_int_equal(dv_pacer_conn_queued(t->c), 1);
  tick_at(&g, &t, 1, T0 + 60 * MS);
  assert_int_equal(t->drains, 1); /* once per episode */
  /* Above the threshold again: another drain when it falls back. */
  push_tagged(t, 4);
  push_tagged(t, 5);
  tick_at(&g, &t, 1, T0 + 80 * MS);
  assert_int_equal(t->drains, 2);
  run_until_idle(&g, &t, 1, 100);
  assert_int_equal(t->nsent, 6 + 5);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(t->sent[i].tag, (uint32_t)i);
  }
  glue_free(&g);
}

static void test_errors_counted(void **state) {
  tglue g;
  tconn *t;
  const dv_pacer_stats *st;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  for (uint32_t i = 0; i < 6; i++) {
    push_tagged(t, i);
  }
  t->fail_prepare = 1;
  g.now = T0;
  run_until_idle(&g, &t, 1, 100);
  st = dv_pacer_conn_stats(t->c);
  /* Frame 0's slot is lost (its frame is consumed); seq not consumed. */
  assert_true(st->prepare_errors == 1);
  assert_int_equal(t->nsent, 5 + 5);
  assert_int_equal(t->sent[0].tag, 1);
  assert_true(st->expected == 11);
  assert_true(dv_pacer_stats_deficit(st) == 1);
  for (size_t k = 1; k < t->nsent; k++) {
    assert_int_equal(t->sent[k].seq, (uint16_t)(t->sent[k - 1].seq + 1));
  }
  /* A failed send is counted and not retried. */
  push_tagged(t, 50);
  t->fail_send = 1;
  run_until_idle(&g, &t, 1, 100);
  assert_true(st->send_errors == 1);
  assert_int_equal(t->nsent, 10 + 5);
  glue_free(&g);
}

/* 40 connections, with removals and additions from inside callbacks:
 * every remaining connection sends exactly one packet per tick. */
static void test_many_connections_and_callback_changes(void **state) {
  tglue g;
  tconn *ts[64];
  int n = 40;
  dvoice_tstamp due;
  dv_pacer_settings ps;
  (void)state;
  dv_pacer_settings_default(&ps);
  ps.lanes = 1; /* every connection on one grid */
  glue_init(&g, &ps);
  for (int i = 0; i < n; i++) {
    ts[i] = add_conn(&g, i % 3 == 0 ? DV_PACER_PULL : DV_PACER_PUSH);
    if (i % 3 == 0) {
      ts[i]->pull_frames = 1000000;
      assert_int_equal(dv_pacer_conn_play(ts[i]->c), 0);
    }
  }
  assert_int_equal(dv_pacer_conn_count(g.p), 40);
  g.now = T0;
  for (int k = 0; k < 500; k++) {
    for (int i = 0; i < n; i++) {
      if (ts[i]->c != NULL && i % 3 != 0) {
        while (dv_pacer_conn_queued(ts[i]->c) < 2) {
          push_tagged(ts[i], (uint32_t)k);
        }
      }
    }
    if (k == 100) {
      /* Lane order is the order connections started sending: the pull
       * connections (i % 3 == 0) first, then the push ones in order. */
      ts[4]->remove_in_send = ts[5]; /* a later neighbour */
      ts[8]->remove_in_send = ts[7]; /* an earlier one */
      ts[11]->remove_self_in_prepare = 1;
      ts[12]->add_in_send = 2;
    }
    due = dv_pacer_get_expiry(g.p);
    tick_at(&g, ts, n, due == 0 ? T0 : due + (dvoice_tstamp)(k % 3) * MS);
    if (k > 0) {
      assert_true(due == T0 + (dvoice_tstamp)k * 20 * MS);
    }
  }
  assert_int_equal(dv_pacer_conn_count(g.p), 40 - 3 + 2);
  for (int i = 0; i < n; i++) {
    if (ts[i]->c == NULL) {
      continue;
    }
    assert_int_equal(ts[i]->max_per_tick, 1);
    assert_int_equal(ts[i]->nsent, 499);
    assert_true(dv_pacer_stats_deficit(dv_pacer_conn_stats(ts[i]->c)) == 0);
  }
  assert_null(ts[5]->c);
  assert_null(ts[7]->c);
  assert_null(ts[11]->c);
  assert_int_equal(ts[5]->nsent, 99);  /* removed before its 100th send */
  assert_int_equal(ts[7]->nsent, 100); /* removed after it */
  /* Removal outside a tick frees at once. */
  dv_pacer_conn_remove(ts[0]->c);
  ts[0]->c = NULL;
  assert_int_equal(dv_pacer_conn_count(g.p), 38);
  glue_free(&g);
}

static uint32_t lcg(uint64_t *st) {
  *st = *st * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(*st >> 33);
}

/* Random operations (push, stop, play, remove/add, ticks early, on time,
 * late and stalled) with invariants checked after every step. */
static void randomized(const dv_pacer_settings *ps, uint64_t rs) {
  tglue g;
  tconn *ts[8];
  dvoice_tstamp origin = 0;
  int adds = 8;
  const int one_grid = ps == NULL || ps->lanes == 1;
  glue_init(&g, ps);
  g.now = T0;
  for (int i = 0; i < 8; i++) {
    ts[i] = add_conn(&g, i & 1 ? DV_PACER_PULL : DV_PACER_PUSH);
  }
  for (int step = 0; step < 20000; step++) {
    uint32_t r = lcg(&rs) % 100;
    tconn *t = ts[lcg(&rs) % 8];
    if (r < 20 && t->c != NULL) {
      if (dv_pacer_conn_push(t->c, (const uint8_t *)"\x01\x02\x03\x04\x05",
                             5) == DVOICE_ERR_INVALID_STATE) {
        t->pull_frames += (int)(lcg(&rs) % 40);
        assert_int_equal(dv_pacer_conn_play(t->c), 0);
      }
    } else if (r < 23 && t->c != NULL) {
      dv_pacer_conn_stop(t->c);
    } else if (r < 24 && t->c != NULL && adds < 200) {
      for (int i = 0; i < 8; i++) {
        if (ts[i] == t) {
          dv_pacer_conn_remove(t->c);
          t->c = NULL;
          ts[i] = add_conn(&g, lcg(&rs) & 1 ? DV_PACER_PULL : DV_PACER_PUSH);
          adds++;
          break;
        }
      }
    } else {
      dvoice_tstamp due = dv_pacer_get_expiry(g.p);
      dvoice_tstamp at;
      uint32_t q = lcg(&rs) % 1000;
      if (due == DVOICE_TSTAMP_NONE) {
        continue;
      }
      if (due == 0) {
        at = g.now + (dvoice_tstamp)(lcg(&rs) % 50) * MS;
        origin = at;
      } else if (q < 50) {
        at = due - 1 - (dvoice_tstamp)(lcg(&rs) % (19 * MS)); /* early */
        if (at < g.now) {
          at = g.now;
        }
      } else if (q < 900) {
        at = due + (dvoice_tstamp)(lcg(&rs) % (3 * MS));
      } else if (q < 990) {
        at = due + (dvoice_tstamp)(lcg(&rs) % (30 * MS));
      } else {
        at = due + (dvoice_tstamp)(lcg(&rs) % (700 * MS));
      }
      {
        uint64_t re = dv_pacer_get_tick_stats(g.p)->reanchored;
        tick_at(&g, ts, 8, at);
        if (dv_pacer_get_tick_stats(g.p)->reanchored != re) {
          origin = at; /* a new grid's first slot came late: it moved */
        }
      }
      due = dv_pacer_get_expiry(g.p);
      if (due != DVOICE_TSTAMP_NONE) {
        assert_true(due > g.now || (due == 0));
        if (due != 0 && one_grid) {
          assert_true((due - origin) % (20 * MS) == 0);
        }
      }
      if (!one_grid) {
        /* Lanes fill to capacity before another opens. */
        assert_true(dv_pacer_lane_count(g.p) <= ps->lanes);
        assert_true(dv_pacer_lane_count(g.p) <=
                    (8 + ps->lane_capacity - 1) / ps->lane_capacity + 1);
      }
    }
  }
  for (int i = 0; i < g.nadded; i++) {
    tconn *t = g.added[i];
    int run = 0;
    assert_true(t->max_per_tick <= 1);
    for (size_t k = 0; k < t->nsent; k++) {
      if (k > 0) {
        assert_int_equal(t->sent[k].seq, (uint16_t)(t->sent[k - 1].seq + 1));
        assert_int_equal(t->sent[k].ts, t->sent[k - 1].ts + 960);
        assert_true(t->sent[k].at > t->sent[k - 1].at);
      }
      run = t->sent[k].silence ? run + 1 : 0;
      assert_true(run <= 5);
    }
    if (t->c != NULL) {
      const dv_pacer_stats *st = dv_pacer_conn_stats(t->c);
      assert_true(st->expected >= st->packets_sent);
      assert_true(st->packets_sent == t->nsent);
    }
  }
  assert_true(dv_pacer_get_tick_stats(g.p)->ticks > 1000);
  assert_true(dv_pacer_get_tick_stats(g.p)->missed_slots > 0);
  glue_free(&g);
}

static void test_randomized_invariants(void **state) {
  (void)state;
  randomized(NULL, 12345);
}

/* The same with three lanes of two connections: streams start and stop in
 * random order, so connections change lanes between streams. */
static void test_randomized_invariants_lanes(void **state) {
  dv_pacer_settings ps;
  (void)state;
  dv_pacer_settings_default(&ps);
  ps.lanes = 3;
  ps.lane_capacity = 2;
  randomized(&ps, 777);
}

/* Distance between two phases on the 20 ms circle. */
static dvoice_tstamp phase_dist(dvoice_tstamp a, dvoice_tstamp b) {
  dvoice_tstamp d = (a > b ? a - b : b - a) % (20 * MS);
  return d < 20 * MS - d ? d : 20 * MS - d;
}

/*
 * 100 connections start together with the defaults (capacity 32): four
 * lanes of 32, 32, 32 and 4 at phases 5 ms apart; every
 * connection sends on an exact 20 ms grid of its own for ten seconds, one
 * packet per wake-up at most, and no wake-up sends more than 32 packets.
 * When every stream ends the lanes empty and the pacer goes idle.
 */
static void test_lanes_spread(void **state) {
  tglue g;
  tconn *ts[100];
  dvoice_tstamp phase[4] = {0};
  int nphase = 0, wakeups = 0;
  (void)state;
  glue_init(&g, NULL);
  for (int i = 0; i < 100; i++) {
    ts[i] = add_conn(&g, DV_PACER_PUSH);
    push_tagged(ts[i], 0);
  }
  assert_int_equal(dv_pacer_lane_count(g.p), 4);
  g.now = T0;
  for (int k = 0; k < 20000; k++) {
    dvoice_tstamp due = dv_pacer_get_expiry(g.p);
    size_t before = 0, after = 0;
    assert_true(due != DVOICE_TSTAMP_NONE);
    for (int i = 0; i < 100; i++) {
      if (g.now < T0 + 10 * DVOICE_SECONDS) {
        while (dv_pacer_conn_queued(ts[i]->c) < 2) {
          push_tagged(ts[i], (uint32_t)k);
        }
      }
      before += ts[i]->nsent;
    }
    tick_at(&g, ts, 100, due == 0 ? g.now : due);
    wakeups++;
    for (int i = 0; i < 100; i++) {
      after += ts[i]->nsent;
    }
    assert_true(after - before <= 32);
    if (due != 0 && nphase < 4 && after > before) {
      int seen = 0;
      for (int j = 0; j < nphase; j++) {
        seen |= phase[j] == due % (20 * MS);
      }
      if (!seen) {
        phase[nphase++] = due % (20 * MS);
      }
    }
    if (dv_pacer_get_expiry(g.p) == DVOICE_TSTAMP_NONE) {
      break;
    }
  }
  assert_true(dv_pacer_get_expiry(g.p) == DVOICE_TSTAMP_NONE);
  assert_int_equal(dv_pacer_lane_count(g.p), 0);
  /* Four grids spread evenly: each new one in the middle of the widest
   * gap (10 ms from the first, then 5 ms from both). */
  assert_int_equal(nphase, 4);
  for (int a = 0; a < 4; a++) {
    for (int b = a + 1; b < 4; b++) {
      assert_true(phase_dist(phase[a], phase[b]) >= 5 * MS);
    }
  }
  for (int i = 0; i < 100; i++) {
    tconn *t = ts[i];
    const dv_pacer_stats *st = dv_pacer_conn_stats(t->c);
    assert_int_equal(t->max_per_tick, 1);
    assert_true(t->nsent >= 495 && t->nsent <= 510);
    assert_true(dv_pacer_stats_deficit(st) == 0);
    assert_int_equal(dv_pacer_conn_lane(t->c), -1);
    for (size_t k = 1; k < t->nsent; k++) {
      /* Its own exact grid: sends land on the deadline, 20 ms apart. */
      assert_true(t->sent[k].at - t->sent[k - 1].at == 20 * MS);
    }
  }
  /* Four wake-ups per 20 ms (plus the starts), not one per packet. */
  assert_true(wakeups <= 4 * 510 + 4);
  glue_free(&g);
}

/* A new grid whose first slot comes more than late_tolerance late (the
 * loop was busy starting streams) starts at that tick instead: nothing was
 * sent on it yet, so nothing is missed or late. Later slots are not
 * moved: a late tick there is counted and resynchronised as usual. */
static void test_fresh_grid_reanchors(void **state) {
  tglue g;
  tconn *t;
  const dv_pacer_stats *st;
  (void)state;
  glue_init(&g, NULL);
  t = add_conn(&g, DV_PACER_PUSH);
  for (int i = 0; i < 5; i++) {
    push_tagged(t, (uint32_t)i);
  }
  tick_at(&g, &t, 1, T0);
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 20 * MS);
  tick_at(&g, &t, 1, T0 + 50 * MS); /* 30 ms late: the grid moves */
  assert_int_equal(t->nsent, 1);
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 70 * MS);
  assert_true(dv_pacer_get_tick_stats(g.p)->reanchored == 1);
  tick_at(&g, &t, 1, T0 + 70 * MS + 3 * MS); /* within tolerance */
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 90 * MS);
  tick_at(&g, &t, 1, T0 + 120 * MS); /* 30 ms late again: resynchronised */
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 130 * MS);
  st = dv_pacer_conn_stats(t->c);
  assert_true(st->missed_slots == 1);
  assert_true(st->late_ticks == 1);
  assert_true(dv_pacer_get_tick_stats(g.p)->reanchored == 1);
  assert_int_equal(t->nsent, 3);
  glue_free(&g);
}

/* One lane: every connection on the same grid, all sent in one wake-up. */
static void test_lanes_one(void **state) {
  tglue g;
  tconn *ts[100];
  dv_pacer_settings ps;
  (void)state;
  dv_pacer_settings_default(&ps);
  ps.lanes = 1;
  glue_init(&g, &ps);
  for (int i = 0; i < 100; i++) {
    ts[i] = add_conn(&g, DV_PACER_PUSH);
    push_tagged(ts[i], 0);
    push_tagged(ts[i], 1);
  }
  assert_int_equal(dv_pacer_lane_count(g.p), 1);
  tick_at(&g, ts, 100, T0);
  tick_at(&g, ts, 100, T0 + 20 * MS);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(ts[i]->nsent, 1);
    assert_true(ts[i]->sent[0].at == T0 + 20 * MS);
  }
  assert_true(dv_pacer_get_expiry(g.p) == T0 + 40 * MS);
  glue_free(&g);
}

/* A lane that empties stops; its connections' next stream joins a running
 * lane (here the other one) and keeps that lane's phase. */
static void test_lanes_reuse(void **state) {
  tglue g;
  tconn *ts[3];
  dv_pacer_settings ps;
  dvoice_tstamp due;
  (void)state;
  dv_pacer_settings_default(&ps);
  ps.lane_capacity = 2;
  glue_init(&g, &ps);
  for (int i = 0; i < 3; i++) {
    ts[i] = add_conn(&g, DV_PACER_PUSH);
    push_tagged(ts[i], 0);
  }
  assert_int_equal(dv_pacer_lane_count(g.p), 2);
  assert_int_equal(dv_pacer_conn_lane(ts[0]->c), dv_pacer_conn_lane(ts[1]->c));
  assert_true(dv_pacer_conn_lane(ts[2]->c) != dv_pacer_conn_lane(ts[0]->c));
  /* Run until everything went quiet (one frame, five silence frames). */
  g.now = T0;
  while ((due = dv_pacer_get_expiry(g.p)) != DVOICE_TSTAMP_NONE) {
    tick_at(&g, ts, 3, due == 0 ? g.now : due);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ts[i]->nsent, 6);
    assert_int_equal(dv_pacer_conn_lane(ts[i]->c), -1);
  }
  /* ts[0] streams for a while; ts[2] then joins its lane (not full). */
  push_tagged(ts[0], 1);
  for (int k = 0; k < 5; k++) {
    push_tagged(ts[0], 1);
    due = dv_pacer_get_expiry(g.p);
    tick_at(&g, ts, 3, due == 0 ? g.now : due);
  }
  push_tagged(ts[2], 2);
  assert_int_equal(dv_pacer_conn_lane(ts[2]->c), dv_pacer_conn_lane(ts[0]->c));
  assert_int_equal(dv_pacer_lane_count(g.p), 1);
  due = dv_pacer_get_expiry(g.p);
  tick_at(&g, ts, 3, due);
  due = dv_pacer_get_expiry(g.p);
  tick_at(&g, ts, 3, due);
  assert_true(ts[2]->sent[ts[2]->nsent - 1].at ==
              ts[0]->sent[ts[0]->nsent - 1].at);
  glue_free(&g);
}

/* Once connections exist, ticks, pushes and pulls allocate nothing. */
static void test_no_allocation_per_packet(void **state) {
  tglue g;
  tconn *ts[2];
  dvt_mem m;
  dv_pacer_conn_settings s;
  long before;
  (void)state;
  dvt_mem_init(&m, -1);
  memset(&g, 0, sizeof(g));
  dvt_env_init(&g.e);
  g.e.env.mem = &m.mem;
  assert_int_equal(dv_pacer_new(&g.e.env, NULL, &CBS, &g.p), 0);
  ts[0] = add_conn(&g, DV_PACER_PUSH);
  dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
  s.pcm = 1;
  ts[1] = add_conn_s(&g, &s);
  ts[1]->pull_pcm = 1;
  ts[1]->pull_frames = 1000000;
  assert_int_equal(dv_pacer_conn_play(ts[1]->c), 0);
  before = m.count;
  g.now = T0;
  for (int k = 0; k < 2000; k++) {
    dvoice_tstamp due = dv_pacer_get_expiry(g.p);
    if (dv_pacer_conn_queued(ts[0]->c) < 2) {
      push_tagged(ts[0], (uint32_t)k);
    }
    if (k == 1000) {
      dv_pacer_conn_stop(ts[0]->c);
    }
    tick_at(&g, ts, 2, due == 0 ? T0 : due);
  }
  assert_int_equal(m.count, before);
  assert_true(ts[1]->nsent == 1999);
  glue_free(&g);
  assert_int_equal(m.live, 0);
}

static int make_pacer_and_conns(const dvoice_mem *mem, void *ud) {
  dvt_env e;
  dv_pacer *p;
  dv_pacer_conn *c;
  dv_pacer_conn_settings s;
  int rv;
  (void)ud;
  dvt_env_init(&e);
  e.env.mem = mem;
  rv = dv_pacer_new(&e.env, NULL, &CBS, &p);
  if (rv == 0) {
    rv = dv_pacer_conn_add(p, NULL, NULL, &c);
    if (rv == 0) {
      dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
      s.pcm = 1;
      rv = dv_pacer_conn_add(p, &s, NULL, &c);
    }
    dv_pacer_free(p);
  }
  dvt_env_free(&e);
  return rv;
}

static void test_nomem_and_bad_args(void **state) {
  dvt_env e;
  dv_pacer *p;
  dv_pacer_conn *c;
  dv_pacer_conn_settings s;
  dv_pacer_callbacks cb = CBS;
  (void)state;
  assert_true(dvt_mem_fail_each(make_pacer_and_conns, NULL) >= 5);
  dvt_env_init(&e);
  cb.send = NULL;
  assert_int_equal(dv_pacer_new(&e.env, NULL, &cb, &p),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cb = CBS;
  cb.pull = NULL;
  assert_int_equal(dv_pacer_new(&e.env, NULL, &cb, &p), 0);
  dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
  assert_int_equal(dv_pacer_conn_add(p, &s, NULL, &c),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_pacer_conn_settings_default(&s, DV_PACER_PUSH);
  s.drain_threshold = s.queue_frames;
  assert_int_equal(dv_pacer_conn_add(p, &s, NULL, &c),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_pacer_free(p);
  {
    dv_pacer_settings ps;
    dv_pacer_settings_default(&ps);
    ps.lanes = 0;
    assert_int_equal(dv_pacer_new(&e.env, &ps, &CBS, &p),
                     DVOICE_ERR_INVALID_ARGUMENT);
    ps.lanes = DV_PACER_MAX_LANES + 1;
    assert_int_equal(dv_pacer_new(&e.env, &ps, &CBS, &p),
                     DVOICE_ERR_INVALID_ARGUMENT);
    ps.lanes = 2;
    ps.lane_capacity = 0;
    assert_int_equal(dv_pacer_new(&e.env, &ps, &CBS, &p),
                     DVOICE_ERR_INVALID_ARGUMENT);
  }
  e.env.rand = NULL;
  assert_int_equal(dv_pacer_new(&e.env, NULL, &CBS, &p),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dvt_env_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hist_quantiles),
      cmocka_unit_test(test_zero_drift_ten_minutes),
      cmocka_unit_test(test_stall_resync_no_burst),
      cmocka_unit_test(test_early_tick_is_noop),
      cmocka_unit_test(test_rtp_random_start_and_wrap),
      cmocka_unit_test(test_silence_tail_push),
      cmocka_unit_test(test_stop_mid_stream),
      cmocka_unit_test(test_pull_tail_quiet_and_stop),
      cmocka_unit_test(test_pull_pcm_encodes),
      cmocka_unit_test(test_push_queue_full_and_drain),
      cmocka_unit_test(test_errors_counted),
      cmocka_unit_test(test_many_connections_and_callback_changes),
      cmocka_unit_test(test_randomized_invariants),
      cmocka_unit_test(test_randomized_invariants_lanes),
      cmocka_unit_test(test_lanes_spread),
      cmocka_unit_test(test_lanes_one),
      cmocka_unit_test(test_fresh_grid_reanchors),
      cmocka_unit_test(test_lanes_reuse),
      cmocka_unit_test(test_no_allocation_per_packet),
      cmocka_unit_test(test_nomem_and_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
