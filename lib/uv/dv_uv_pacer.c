#include "uv/dv_uv_pacer.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#if defined(__linux__)
#include <sys/timerfd.h>
#define DV_HAVE_TIMERFD 1
#else
#define DV_HAVE_TIMERFD 0
#endif

#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "uv/dv_uv_env.h"

_Static_assert(DVOICE_PACER_MAX_LANES == DV_PACER_MAX_LANES,
               "the public and the core lane limits agree");

struct dvoice_pacer {
  uv_loop_t *loop;
  dvoice_env env;
  int real_clock; /* env.now is the default, CLOCK_MONOTONIC itself */
  dvoice_pacer_settings s;
  dv_pacer *core;
  int use_timerfd;
  int tfd;
  uv_poll_t poll;
  uv_timer_t timer;
  int poll_open, timer_open, poll_active;
  int handles_closing;
  size_t refs;  /* attached connections */
  int released; /* no application reference any more */
  int closing;  /* handles are closing */
  int in_tick;
  dvoice_tstamp armed; /* deadline the wake-up is armed for; NONE: none */
  uint64_t wakeups;
  void (*closed_cb)(dvoice_pacer *p, void *ud);
  void *closed_ud;
};

void dvoice_pacer_settings_default(dvoice_pacer_settings *s) {
  if (s == NULL) {
    return;
  }
  memset(s, 0, sizeof(*s));
  dvoice_env_default(&s->env);
  s->timer = DVOICE_PACER_TIMER_AUTO;
  s->spin = 0;
  s->late_tolerance = 5 * DVOICE_MS;
  s->lanes = DV_PACER_DEFAULT_LANES;
  s->lane_capacity = DV_PACER_DEFAULT_LANE_CAPACITY;
}

/* ---- the pacer core's callbacks: forwarded to the connection glue -------- */

static int cb_prepare(dv_pacer_conn *c, void *ud, const dv_pacer_frame *f) {
  (void)c;
  return dv_uv_conn_prepare(ud, f);
}

static int cb_send(dv_pacer_conn *c, void *ud) {
  (void)c;
  return dv_uv_conn_send(ud);
}

static int cb_pull(dv_pacer_conn *c, void *ud, dv_pull_result *out) {
  (void)c;
  return dv_uv_conn_pull(ud, out);
}

static void cb_drain(dv_pacer_conn *c, void *ud) {
  (void)c;
  dv_uv_conn_drain(ud);
}

static void cb_stream(dv_pacer_conn *c, void *ud, int active) {
  (void)c;
  dv_uv_conn_stream(ud, active);
}

/* ---- clocks and arming --------------------------------------------------- */

static dvoice_tstamp env_now(const dvoice_pacer *p) {
  return dv_uv_env_now(&p->env);
}

/* Converts a deadline on the environment's clock to CLOCK_MONOTONIC. */
static dvoice_tstamp to_monotonic(const dvoice_pacer *p, dvoice_tstamp t) {
  dvoice_tstamp env, mono;
  if (p->real_clock) {
    return t;
  }
  env = env_now(p);
  mono = uv_hrtime();
  return t >= env ? mono + (t - env) : mono;
}

static void on_tick_poll(uv_poll_t *h, int status, int events);
static void on_tick_timer(uv_timer_t *h);

static void disarm(dvoice_pacer *p) {
  p->armed = DVOICE_TSTAMP_NONE;
#if DV_HAVE_TIMERFD
  if (p->use_timerfd) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    (void)timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    if (p->poll_active) {
      uv_poll_stop(&p->poll);
      p->poll_active = 0;
    }
    return;
  }
#endif
  uv_timer_stop(&p->timer);
}

static void arm(dvoice_pacer *p) {
  dvoice_tstamp t;
  if (p->closing || p->in_tick) {
    return;
  }
  t = dv_pacer_get_expiry(p->core);
  if (t == p->armed) {
    return;
  }
  if (t == DVOICE_TSTAMP_NONE) {
    disarm(p);
    return;
  }
  p->armed = t;
#if DV_HAVE_TIMERFD
  if (p->use_timerfd) {
    struct itimerspec its;
    dvoice_tstamp mono = t == 0 ? uv_hrtime() : to_monotonic(p, t);
    memset(&its, 0, sizeof(its));
    if (mono == 0) {
      mono = 1; /* a zero it_value would disarm */
    }
    its.it_value.tv_sec = (time_t)(mono / DVOICE_SECONDS);
    its.it_value.tv_nsec = (long)(mono % DVOICE_SECONDS);
    if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
      DV_ERROR(&p->env, "pacer: timerfd_settime: %s", strerror(errno));
    }
    if (!p->poll_active) {
      uv_poll_start(&p->poll, UV_READABLE, on_tick_poll);
      p->poll_active = 1;
    }
    return;
  }
#endif
  {
    dvoice_tstamp now = env_now(p), wake = t;
    uint64_t ms = 0;
    if (t != 0 && p->s.spin > 0) {
      wake = t > p->s.spin ? t - p->s.spin : 0;
    }
    if (t != 0 && wake > now) {
      /* Round down when spinning (the spin finishes the wait), else up. */
      ms = (wake - now) / DVOICE_MS;
      if (p->s.spin == 0 && (wake - now) % DVOICE_MS != 0) {
        ms++;
      }
    }
    uv_timer_start(&p->timer, on_tick_timer, ms, 0);
  }
}

static void maybe_close(dvoice_pacer *p);

static void tick(dvoice_pacer *p) {
  dvoice_tstamp now = env_now(p);
  p->wakeups++;
  p->armed = DVOICE_TSTAMP_NONE;
  p->in_tick = 1;
  (void)dv_pacer_on_tick(p->core, now);
  p->in_tick = 0;
  if (p->released && p->refs == 0) {
    maybe_close(p);
    return;
  }
  arm(p);
}

static void on_tick_poll(uv_poll_t *h, int status, int events) {
  dvoice_pacer *p = h->data;
  (void)events;
  if (status < 0) {
    DV_ERROR(&p->env, "pacer: poll: %s", uv_strerror(status));
  }
#if DV_HAVE_TIMERFD
  {
    uint64_t expirations;
    ssize_t n = read(p->tfd, &expirations, sizeof(expirations));
    (void)n; /* EAGAIN: woken for another reason; the core checks time */
  }
#endif
  tick(p);
}

static void on_tick_timer(uv_timer_t *h) {
  dvoice_pacer *p = h->data;
  if (p->s.spin > 0 && p->armed != 0 && p->armed != DVOICE_TSTAMP_NONE) {
    /* Finish the wait precisely; bounded by the spin plus one ms. */
    dvoice_tstamp until = p->armed, limit = env_now(p) + p->s.spin + DVOICE_MS;
    dvoice_tstamp now;
    while ((now = env_now(p)) < until && now < limit) {
    }
  }
  tick(p);
}

/* ---- lifetime ------------------------------------------------------------ */

static void free_pacer(dvoice_pacer *p) {
  void (*cb)(dvoice_pacer *, void *) = p->closed_cb;
  void *ud = p->closed_ud;
  const dvoice_mem *mem = p->env.mem;
  if (cb != NULL) {
    cb(p, ud);
  }
  dv_pacer_free(p->core);
  dv_free(mem, p);
}

static void on_handle_closed(uv_handle_t *h) {
  dvoice_pacer *p = h->data;
  if (--p->handles_closing > 0) {
    return;
  }
#if DV_HAVE_TIMERFD
  if (p->tfd >= 0) {
    close(p->tfd); /* after the poll handle is gone (libuv's rule) */
    p->tfd = -1;
  }
#endif
  free_pacer(p);
}

static void maybe_close(dvoice_pacer *p) {
  if (p->closing || !p->released || p->refs != 0 || p->in_tick) {
    return;
  }
  p->closing = 1;
  if (p->poll_open) {
    p->handles_closing++;
    uv_close((uv_handle_t *)&p->poll, on_handle_closed);
  }
  if (p->timer_open) {
    p->handles_closing++;
    uv_close((uv_handle_t *)&p->timer, on_handle_closed);
  }
  if (p->handles_closing == 0) {
    /* Never reached: a pacer always has one handle. */
    free_pacer(p);
  }
}

static int pacer_create(dvoice_pacer **out, uv_loop_t *loop,
                        const dvoice_pacer_settings *s) {
  dvoice_pacer *p;
  dv_pacer_callbacks cb;
  dv_pacer_settings ps;
  int rv, want_tfd;

  if (s->spin > 2 * DVOICE_MS || s->lanes > DVOICE_PACER_MAX_LANES ||
      (s->timer != DVOICE_PACER_TIMER_AUTO &&
       s->timer != DVOICE_PACER_TIMER_TIMERFD &&
       s->timer != DVOICE_PACER_TIMER_UV)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (s->timer == DVOICE_PACER_TIMER_TIMERFD && !DV_HAVE_TIMERFD) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  want_tfd = DV_HAVE_TIMERFD && s->timer != DVOICE_PACER_TIMER_UV;
  p = dv_calloc(s->env.mem, 1, sizeof(*p));
  if (p == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  p->loop = loop;
  p->s = *s;
  p->tfd = -1;
  p->armed = DVOICE_TSTAMP_NONE;
  p->real_clock = s->env.now == NULL;
  rv = dv_uv_env_resolve(&p->env, &s->env);
  if (rv != 0) {
    dv_free(s->env.mem, p);
    return rv;
  }
  memset(&cb, 0, sizeof(cb));
  cb.prepare = cb_prepare;
  cb.send = cb_send;
  cb.pull = cb_pull;
  cb.drain = cb_drain;
  cb.stream = cb_stream;
  dv_pacer_settings_default(&ps);
  if (s->late_tolerance != 0) {
    ps.late_tolerance = s->late_tolerance;
  }
  if (s->lanes != 0) {
    ps.lanes = s->lanes;
  }
  if (s->lane_capacity != 0) {
    ps.lane_capacity = s->lane_capacity;
  }
  rv = dv_pacer_new(&p->env, &ps, &cb, &p->core);
  if (rv != 0) {
    dv_free(s->env.mem, p);
    return rv;
  }
#if DV_HAVE_TIMERFD
  if (want_tfd) {
    p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (p->tfd < 0) {
      DV_WARN(&p->env, "pacer: timerfd_create: %s; using uv_timer",
              strerror(errno));
      if (s->timer == DVOICE_PACER_TIMER_TIMERFD) {
        dv_pacer_free(p->core);
        dv_free(s->env.mem, p);
        return DVOICE_ERR_INTERNAL;
      }
    } else if (uv_poll_init(loop, &p->poll, p->tfd) != 0) {
      close(p->tfd);
      dv_pacer_free(p->core);
      dv_free(s->env.mem, p);
      return DVOICE_ERR_INTERNAL;
    } else {
      p->poll.data = p;
      p->poll_open = 1;
      p->use_timerfd = 1;
    }
  }
#else
  (void)want_tfd;
#endif
  if (!p->use_timerfd) {
    if (uv_timer_init(loop, &p->timer) != 0) {
      dv_pacer_free(p->core);
      dv_free(s->env.mem, p);
      return DVOICE_ERR_INTERNAL;
    }
    p->timer.data = p;
    p->timer_open = 1;
  }
  DV_DEBUG(&p->env, "pacer: created (%s)",
           p->use_timerfd ? "timerfd" : "uv_timer");
  *out = p;
  return 0;
}

int dvoice_pacer_new(dvoice_pacer **out, struct uv_loop_s *loop,
                     const dvoice_pacer_settings *settings) {
  dvoice_pacer_settings def;
  if (out == NULL || loop == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (settings == NULL) {
    dvoice_pacer_settings_default(&def);
    settings = &def;
  }
  return pacer_create(out, loop, settings);
}

int dv_uv_pacer_new_private(dvoice_pacer **out, struct uv_loop_s *loop,
                            const dvoice_env *env,
                            void (*closed_cb)(dvoice_pacer *p, void *ud),
                            void *ud) {
  dvoice_pacer_settings s;
  int rv;
  dvoice_pacer_settings_default(&s);
  s.env = *env;
  rv = pacer_create(out, loop, &s);
  if (rv == 0) {
    (*out)->released = 1;
    (*out)->closed_cb = closed_cb;
    (*out)->closed_ud = ud;
  }
  return rv;
}

int dvoice_pacer_close(dvoice_pacer *p,
                       void (*close_cb)(dvoice_pacer *p, void *user_data),
                       void *user_data) {
  if (p == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (p->released) {
    return DVOICE_ERR_INVALID_STATE;
  }
  p->released = 1;
  p->closed_cb = close_cb;
  p->closed_ud = user_data;
  maybe_close(p);
  return 0;
}

int dvoice_pacer_get_stats(const dvoice_pacer *p, dvoice_pacer_stats *out) {
  const dv_pacer_tick_stats *ts;
  if (p == NULL || out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  ts = dv_pacer_get_tick_stats(p->core);
  memset(out, 0, sizeof(*out));
  out->ticks = ts->ticks;
  out->late_ticks = ts->late_ticks;
  out->missed_slots = ts->missed_slots;
  out->restarts = ts->restarts;
  out->reanchored = ts->reanchored;
  out->wakeups = p->wakeups;
  out->lateness_p50 = dv_hist_quantile(&ts->lateness, 500000);
  out->lateness_p99 = dv_hist_quantile(&ts->lateness, 990000);
  out->lateness_p999 = dv_hist_quantile(&ts->lateness, 999000);
  out->lateness_max = ts->lateness.max;
  out->connections = dv_pacer_conn_count(p->core);
  out->lanes = dv_pacer_lane_count(p->core);
  return 0;
}

int dv_uv_pacer_attach(dvoice_pacer *p, const dv_pacer_conn_settings *s,
                       dvoice_conn *conn, dv_pacer_conn **out) {
  int rv;
  /* A released pacer gains no connection, except a private pacer its
   * owner attaches to right after creating it. */
  if (p->closing || (p->released && p->refs > 0)) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rv = dv_pacer_conn_add(p->core, s, conn, out);
  if (rv == 0) {
    p->refs++;
  }
  return rv;
}

void dv_uv_pacer_detach(dvoice_pacer *p, dv_pacer_conn *pc) {
  dv_pacer_conn_remove(pc);
  p->refs--;
  if (p->refs == 0) {
    maybe_close(p);
  }
}

void dv_uv_pacer_kick(dvoice_pacer *p) {
  arm(p);
}

dvoice_tstamp dv_uv_pacer_slot(const dvoice_pacer *p) {
  return dv_pacer_current_slot(p->core);
}

void dv_uv_pacer_discard(dvoice_pacer *p) {
  p->closed_cb = NULL;
  p->closed_ud = NULL;
  maybe_close(p);
}

struct uv_loop_s *dv_uv_pacer_loop(const dvoice_pacer *p) {
  return p->loop;
}
