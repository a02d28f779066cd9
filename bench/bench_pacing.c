/*
 * bench_pacing: N voice connections on one loop, sharing one pacer, send
 * pre-encoded Opus to the simulator for a while; prints how precisely the
 * packets left (departure lateness against the ideal 20 ms grid: p50, p99,
 * p999, max), the drift of the stream seen by the simulator, the CPU time
 * per packet on the sending thread (getrusage), and the memory per
 * connection (dvoice's allocator), as one JSON line and a table.
 *
 * The simulator (voice gateway and UDP media server) runs on its own loop
 * in a second thread so that its work does not disturb the sender's loop.
 *
 * The same statistics are also computed on the simulator's side over each
 * stream's arrival times (bench_common's bench_arrivals, as
 * bench_djs_pacing does for discord.js).
 *
 * Each connection is in its own guild, as a bot's are. A "floor" runs for
 * the same length twice, on the empty loop and then with the connections
 * joined and idle: a bare 20 ms timer of the pacer's kind on the same loop,
 * whose wake-up lateness and CPU per wake-up show what the machine itself
 * allows. Besides the raw CPU per packet, a marginal figure subtracts the
 * cheaper floor's CPU per wake-up times the pacer's wake-ups while
 * streaming, and the idle connections' background (the idle floor's excess
 * over that) per 20 ms.
 * The simulator thread's CPU per packet (its CPU clock) and the host's UDP
 * receive-buffer drops are printed so that a saturated simulator shows.
 *
 *   bench_pacing [connections=1] [seconds=10] [aes|xchacha] [timerfd|uv]
 *                [djs]
 *
 * The pacer's lanes can be set with the environment variables
 * DVOICE_BENCH_LANES and DVOICE_BENCH_LANE_CAPACITY (default: the
 * library's, 20 and 32; DVOICE_BENCH_LANES=1 puts every connection on one
 * grid, as before lanes existed).
 *
 * djs: afterwards, in the same run, @discordjs/voice (bench_djs, Node from
 * $DVOICE_NPM_PEERS) plays the same length with the same number of
 * connections against a second simulator, measured the same way on the
 * simulator's side; prints both rows and the ratios dvoice/discord.js.
 * discord.js's CPU and memory are its Node process's (getrusage of the
 * child: startup included), so those two ratios are upper bounds.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "../test/interop/dvt_ogg.h"
#include "../test/sim/sim_uv.h"
#include "bench_common.h"
#include "bench_djs.h"
#include "audio/dv_hist.h"
#include "audio/dv_opus.h"
#include "uv/dv_uv_conn.h"

#define NFRAMES 50
#define GUILD_BASE 111111000000ull

/* A counting allocator for dvoice's own allocations (sender thread only). */
typedef struct counting {
  dvoice_mem mem;
  size_t live, peak;
} counting;

typedef struct hdr {
  size_t size;
  size_t pad;
} hdr;

static void *c_malloc(size_t n, void *ud) {
  counting *c = ud;
  hdr *h = malloc(sizeof(hdr) + n);
  if (h == NULL) {
    return NULL;
  }
  h->size = n;
  c->live += n;
  if (c->live > c->peak) {
    c->peak = c->live;
  }
  return h + 1;
}

static void c_free(void *p, void *ud) {
  counting *c = ud;
  hdr *h;
  if (p == NULL) {
    return;
  }
  h = (hdr *)p - 1;
  c->live -= h->size;
  free(h);
}

static void *c_calloc(size_t n, size_t size, void *ud) {
  void *p;
  if (size != 0 && n > SIZE_MAX / size) {
    return NULL;
  }
  p = c_malloc(n * size, ud);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

static void *c_realloc(void *p, size_t n, void *ud) {
  void *q;
  hdr *h;
  if (p == NULL) {
    return c_malloc(n, ud);
  }
  h = (hdr *)p - 1;
  q = c_malloc(n, ud);
  if (q == NULL) {
    return NULL;
  }
  memcpy(q, p, h->size < n ? h->size : n);
  c_free(p, ud);
  return q;
}

typedef struct bench bench;

typedef struct one {
  bench *b;
  dvoice_conn *conn;
  int ready;
  int sent;
  int ended;
} one;

/* Per-session figures copied out of the simulator before it frees them. */
typedef struct sim_fig {
  uint64_t received, decrypted, missing;
  uint32_t first_seq, last_seq;
  dvoice_tstamp first, last;
} sim_fig;

struct bench {
  int n;
  int seconds;
  int frames_each;
  uv_loop_t loop;
  dvoice_pacer *pacer;
  one *conns;
  int ready, ended, closed;
  int streaming;
  uv_timer_t wait;
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  counting mem;
  /* Simulator thread. */
  uv_loop_t sim_loop;
  dv_sim_uv *sim;
  dv_sim_session **sess;
  uv_async_t sim_stop;
  pthread_t sim_thread;
  sim_fig *figs;
  int sim_closed;
  dv_sim_media_global sim_global;
  bench_arrivals arr; /* simulator-side arrivals of dvoice's streams */
};

static void push(one *o) {
  bench *b = o->b;
  while (b->streaming && o->sent < b->frames_each) {
    int rv = dvoice_conn_send_opus(o->conn, b->frames[o->sent % NFRAMES],
                                   b->lens[o->sent % NFRAMES]);
    if (rv != 0) {
      return; /* DVOICE_ERR_NOBUF: on_drain comes back */
    }
    o->sent++;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  one *o = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY && !o->ready) {
    o->ready = 1;
    o->b->ready++;
  } else if (ev->state != DVOICE_CONN_READY &&
             ev->state != DVOICE_CONN_CONNECTING) {
    fprintf(stderr, "connection left READY: %s (%s, close %d, %s)\n",
            dvoice_conn_state_name(ev->state),
            dvoice_conn_reason_name(ev->reason), ev->close_code,
            ev->err != 0 ? dvoice_strerror(ev->err) : "-");
  }
}

static void on_drain(dvoice_conn *c, void *ud) {
  (void)c;
  push(ud);
}

static void on_stream(dvoice_conn *c, int active, void *ud) {
  one *o = ud;
  (void)c;
  if (!active && !o->ended) {
    o->ended = 1;
    o->b->ended++;
  }
}

static void on_closed(dvoice_conn *c, void *ud) {
  one *o = ud;
  (void)c;
  o->b->closed++;
}

/* ---- the simulator's thread -----------------------------------------------
 */

static void sim_closed(dv_sim_uv *sim, void *ud) {
  bench *b = ud;
  (void)sim;
  for (int i = 0; i < b->n; i++) {
    const dv_sim_media_stats *m = &b->sess[i]->report.media;
    b->figs[i].received = m->received;
    b->figs[i].decrypted = m->decrypted;
    b->figs[i].missing = m->missing;
    b->figs[i].first = m->first_arrival;
    b->figs[i].last = m->last_arrival;
    b->figs[i].first_seq = m->first_seq;
    b->figs[i].last_seq = m->last_seq;
    {
      const dvoice_tstamp *times;
      size_t n;
      dv_sim_media_arrivals(dv_sim_uv_media(b->sim), b->sess[i], &times, &n);
      if (bench_arrivals_add(&b->arr, times, n, 0, 20000000) != 0) {
        abort();
      }
    }
  }
  b->sim_global = *dv_sim_media_global_stats(dv_sim_uv_media(b->sim));
  b->sim_closed = 1;
}

static void on_sim_stop(uv_async_t *a) {
  bench *b = a->data;
  uv_close((uv_handle_t *)a, NULL);
  dv_sim_uv_close(b->sim, sim_closed, b);
}

/* The simulator's UDP receive buffer: room for a tick's burst from 1000
 * connections while its thread is busy. */
#define SIM_RCVBUF (4 << 20)

/* Warns if the kernel granted the simulator less receive buffer than asked
 * (it caps at net.core.rmem_max without an error). */
static void check_rcvbuf(const dv_sim_uv *sim) {
  int got = dv_sim_uv_udp_rcvbuf(sim);
  if (got < SIM_RCVBUF) {
    fprintf(stderr,
            "warning: simulator UDP receive buffer is %d bytes; raise "
            "net.core.rmem_max to at least %d for N=1000\n",
            got, SIM_RCVBUF);
  }
}

/* The host's count of UDP datagrams dropped for a full receive buffer
 * (RcvbufErrors in /proc/net/snmp), or -1. Host-wide: other processes'
 * drops count too. */
static long long udp_rcvbuf_errors(void) {
  char names[512], values[512];
  long long v = -1;
  FILE *f = fopen("/proc/net/snmp", "r");
  if (f == NULL) {
    return -1;
  }
  while (fgets(names, sizeof(names), f) != NULL &&
         fgets(values, sizeof(values), f) != NULL) {
    char *sn, *sv, *n, *x;
    if (strncmp(names, "Udp:", 4) != 0) {
      continue;
    }
    /* Walk both lines' fields in step to find the column. */
    n = strtok_r(names, " \n", &sn);
    x = strtok_r(values, " \n", &sv);
    while (n != NULL && x != NULL) {
      if (strcmp(n, "RcvbufErrors") == 0) {
        v = atoll(x);
        break;
      }
      n = strtok_r(NULL, " \n", &sn);
      x = strtok_r(NULL, " \n", &sv);
    }
    break;
  }
  fclose(f);
  return v;
}

static void *sim_main(void *arg) {
  bench *b = arg;
  /* Named so that profiles can tell its samples from the sender's. */
  pthread_setname_np(pthread_self(), "dv-sim");
  uv_run(&b->sim_loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---- helpers --------------------------------------------------------------
 */

static void encode_frames(bench *b) {
  dv_opus_enc *enc;
  int16_t pcm[DV_OPUS_FRAME_VALUES];
  size_t n = 0;
  if (dv_opus_enc_new(NULL, NULL, &enc) != 0) {
    abort();
  }
  for (int i = 0; i < NFRAMES; i++) {
    for (int j = 0; j < DV_OPUS_FRAME_SAMPLES; j++, n++) {
      double ph = (double)(n % 48000) * 440.0 / 48000.0;
      double x = ph - (double)(long)ph;
      int16_t s = (int16_t)((x < 0.5 ? 4.0 * x - 1.0 : 3.0 - 4.0 * x) * 8000);
      pcm[2 * j] = s;
      pcm[2 * j + 1] = s;
    }
    b->lens[i] = (size_t)dv_opus_encode_s16(enc, pcm, b->frames[i],
                                            sizeof(b->frames[i]));
  }
  dv_opus_enc_free(enc);
}

/* CPU time of the sending thread: user (our code) and system (the
 * kernel's UDP send path), seconds. */
static void cpu_seconds(double *user, double *sys) {
  struct rusage ru;
  /* getrusage(RUSAGE_THREAD) counts this thread only: the simulator's
   * thread is not in it. */
  getrusage(RUSAGE_THREAD, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The sending thread's CPU time from its own clock, seconds: exact, where
 * getrusage's user/system split is sampled at the scheduler's tick. */
static double thread_cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A CPU-time clock (another thread's), seconds. */
static double clock_seconds(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run_until(uv_loop_t *loop, const int *counter, int target,
                      const char *what, unsigned timeout_s) {
  uint64_t until = uv_hrtime() + (uint64_t)timeout_s * 1000000000ull;
  while (*counter < target) {
    uv_run(loop, UV_RUN_ONCE);
    if (uv_hrtime() > until) {
      fprintf(stderr, "timeout waiting for %s (%d of %d)\n", what, *counter,
              target);
      exit(2);
    }
  }
}

static void on_wait_timer(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * The floor. What the machine allows: a bare timer waking every 20 ms on the
 * sender's loop and thread, with the same kind of timer as the pacer (a
 * one-shot absolute timerfd re-armed each tick and watched with uv_poll, or a
 * uv_timer), doing nothing. Its wake-up lateness bounds what any pacer on
 * this loop can achieve, and its CPU per wake-up is the cost of just waking.
 */

#define FLOOR_PERIOD_NS 20000000ull

typedef struct floor_run {
  int use_timerfd;
  int tfd;
  uv_poll_t poll;
  uv_timer_t timer;
  uint64_t next; /* the deadline waited for, uv_hrtime() (CLOCK_MONOTONIC) */
  uint64_t end;  /* no deadline at or after this one is waited for */
  uint64_t wakeups, missed;
  bench_samples late_ms;
  double cpu_s; /* the thread's CPU time over the run */
  int done;
  int closed;
} floor_run;

static void floor_arm(floor_run *f);

static void floor_wake(floor_run *f) {
  uint64_t now = uv_hrtime();
  if (now < f->next) {
    floor_arm(f); /* early (uv_timer's millisecond rounding): wait on */
    return;
  }
  if (bench_samples_add(&f->late_ms, (double)(now - f->next) / 1e6) != 0) {
    abort();
  }
  f->wakeups++;
  f->next += FLOOR_PERIOD_NS;
  while (f->next <= now) {
    /* Slots passed while late are skipped, as the pacer skips them. */
    f->next += FLOOR_PERIOD_NS;
    f->missed++;
  }
  if (f->next >= f->end) {
    f->done = 1;
    if (f->use_timerfd) {
      uv_poll_stop(&f->poll);
    } else {
      uv_timer_stop(&f->timer);
    }
    return;
  }
  floor_arm(f);
}

static void on_floor_poll(uv_poll_t *h, int status, int events) {
  floor_run *f = h->data;
  uint64_t expirations;
  (void)status;
  (void)events;
  if (read(f->tfd, &expirations, sizeof(expirations)) < 0) {
    return; /* EAGAIN: not due yet */
  }
  floor_wake(f);
}

static void on_floor_timer(uv_timer_t *t) {
  floor_wake(t->data);
}

static void floor_arm(floor_run *f) {
  if (f->use_timerfd) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    its.it_value.tv_sec = (time_t)(f->next / 1000000000ull);
    its.it_value.tv_nsec = (long)(f->next % 1000000000ull);
    if (timerfd_settime(f->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
      perror("timerfd_settime");
      exit(2);
    }
  } else {
    uint64_t now = uv_hrtime();
    /* Rounded up, as the pacer's uv_timer mode does. */
    uint64_t ms = f->next > now ? (f->next - now + 999999) / 1000000 : 0;
    uv_timer_start(&f->timer, on_floor_timer, ms, 0);
  }
}

static void on_floor_closed(uv_handle_t *h) {
  ((floor_run *)h->data)->closed++;
}

/* Runs the floor on |loop| for |seconds| (the loop runs everything else on
 * it meanwhile) and fills |f|. */
static void floor_measure(uv_loop_t *loop, int use_timerfd, int seconds,
                          floor_run *f) {
  double c0;
  memset(f, 0, sizeof(*f));
  f->use_timerfd = use_timerfd;
  if (use_timerfd) {
    f->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (f->tfd < 0 || uv_poll_init(loop, &f->poll, f->tfd) != 0) {
      perror("floor: timerfd");
      exit(2);
    }
    f->poll.data = f;
  } else {
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
  }
  c0 = thread_cpu_seconds();
  /* The first deadline one period ahead, then a fixed grid. */
  f->next = uv_hrtime() + FLOOR_PERIOD_NS;
  f->end = f->next + (uint64_t)seconds * 1000000000ull;
  if (use_timerfd) {
    uv_poll_start(&f->poll, UV_READABLE, on_floor_poll);
  }
  floor_arm(f);
  run_until(loop, &f->done, 1, "the floor", (unsigned)seconds + 30);
  f->cpu_s = thread_cpu_seconds() - c0;
  if (use_timerfd) {
    uv_close((uv_handle_t *)&f->poll, on_floor_closed);
  } else {
    uv_close((uv_handle_t *)&f->timer, on_floor_closed);
  }
  run_until(loop, &f->closed, 1, "the floor's handle", 5);
  if (use_timerfd) {
    close(f->tfd);
  }
}

/* The floor's CPU per wake-up, us. */
static double floor_cpu_us(const floor_run *f) {
  return f->wakeups > 0 ? f->cpu_s * 1e6 / (double)f->wakeups : 0;
}

/* Writes a floor's figures as a JSON object (no newline). */
static void floor_json(floor_run *f, const char *timer, FILE *out) {
  fprintf(out,
          "{\"timer\":\"%s\",\"wakeups\":%llu,\"missed\":%llu,"
          "\"late_ms\":{\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f},"
          "\"cpu_us_per_wakeup\":%.3f}",
          timer, (unsigned long long)f->wakeups, (unsigned long long)f->missed,
          bench_samples_quantile(&f->late_ms, 0.5),
          bench_samples_quantile(&f->late_ms, 0.99),
          bench_samples_quantile(&f->late_ms, 1.0), floor_cpu_us(f));
}

/* Writes a floor's two table rows; |what| says what else the loop held. */
static void floor_rows(floor_run *f, const char *label, const char *timer,
                       const char *what, FILE *out) {
  char l[64];
  snprintf(l, sizeof(l), "%s p50/p99/max", label);
  fprintf(out, "%-28s %.3f / %.3f / %.3f ms (bare %s, %llu wake-ups, %s)\n", l,
          bench_samples_quantile(&f->late_ms, 0.5),
          bench_samples_quantile(&f->late_ms, 0.99),
          bench_samples_quantile(&f->late_ms, 1.0), timer,
          (unsigned long long)f->wakeups, what);
  snprintf(l, sizeof(l), "%s cpu", label);
  fprintf(out, "%-28s %.3f us per wake-up (sender thread)\n", l,
          floor_cpu_us(f));
}

/* discord.js's figures from the same kind of run. */
typedef struct djs_fig {
  int ok;
  char version[128];
  bench_arrivals arr, dep;
  uint64_t packets;
  double cpu_us_per_packet; /* the whole Node process, startup included */
  double kib_per_conn;      /* its peak RSS over N */
} djs_fig;

static void djs_sim_closed(dv_sim_uv *sim, void *ud) {
  (void)sim;
  *(int *)ud = 1;
}

/* Runs @discordjs/voice with |n| connections for |seconds| against a fresh
 * simulator (TLS, as discord.js needs) and fills |f|. Returns 0 or -1. */
static int run_djs(int n, int seconds, int xchacha, djs_fig *f) {
  bench_certs certs;
  char ogg[256], dep[256];
  uv_loop_t loop;
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_vgw *vgw;
  bench_djs p;
  bench_djs_settings ds;
  struct rusage ru;
  int closed = 0;
  uint32_t frames = (uint32_t)seconds * 50;

  memset(f, 0, sizeof(*f));
  bench_arrivals_init(&f->arr);
  bench_arrivals_init(&f->dep);
  if (bench_certs_make(&certs) != 0) {
    return -1;
  }
  snprintf(ogg, sizeof(ogg), "%s/tone.ogg", certs.dir);
  snprintf(dep, sizeof(dep), "%s/departures.txt", certs.dir);
  if (dvt_ogg_tone_write(ogg, frames) != 0) {
    bench_certs_remove(&certs);
    return -1;
  }
  uv_loop_init(&loop);
  dv_sim_uv_settings_default(&st);
  st.cert_file = certs.cert;
  st.key_file = certs.key;
  st.media.decode_opus = 0;
  st.media.forward = 0;
  st.media.max_arrivals = frames + 64;
  st.udp_rcvbuf = SIM_RCVBUF;
  /* discord.js opens all its connections at once. */
  st.ws_backlog = 4096;
  if (xchacha) {
    st.vgw.modes[0] = dv_sim_mode_name(DV_SIM_MODE_XCHACHA20);
    st.vgw.nmodes = 1;
  }
  if (dv_sim_uv_new(&loop, &st, &sim) != 0) {
    return -1;
  }
  check_rcvbuf(sim);
  vgw = dv_sim_uv_vgw(sim);
  if (bench_djs_register(vgw, (unsigned)n) != 0) {
    return -1;
  }
  memset(&ds, 0, sizeof(ds));
  ds.mode = "play";
  ds.n = (unsigned)n;
  ds.endpoint = dv_sim_uv_endpoint(sim);
  ds.ca = certs.ca;
  ds.ogg = ogg;
  ds.departures = dep;
  ds.timeout_ms = (uint64_t)seconds * 1000 + 60000 + (uint64_t)n * 100;
  f->ok = bench_djs_start(&p, &loop, &ds) == 0;
  while (!p.exited) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  f->ok = f->ok && bench_djs_ok(&p);
  snprintf(f->version, sizeof(f->version), "%s", p.version);
  f->packets = p.packets_played;
  for (size_t i = 0; i < vgw->nsessions; i++) {
    const dvoice_tstamp *times;
    size_t cnt;
    dv_sim_media_arrivals(dv_sim_uv_media(sim), vgw->sessions[i], &times, &cnt);
    if (bench_arrivals_add(&f->arr, times, cnt, 0, 20000000) != 0) {
      abort();
    }
  }
  if (bench_djs_read_departures(dep, &f->dep, 0, 20000000) != n) {
    f->ok = 0;
  }
  if (getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    double cpu =
        (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
        ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
    f->cpu_us_per_packet =
        cpu * 1e6 / (double)(f->packets > 0 ? f->packets : 1);
    f->kib_per_conn = (double)ru.ru_maxrss / (double)n; /* KiB on Linux */
  }
  bench_djs_close(&p);
  dv_sim_uv_close(sim, djs_sim_closed, &closed);
  while (!closed || p.open > 0) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  uv_loop_close(&loop);
  bench_djs_free(&p);
  bench_certs_remove(&certs);
  return f->ok ? 0 : -1;
}

/* x / y, or 0 if y is not positive. */
static double ratio(double x, double y) {
  return y > 0 ? x / y : 0;
}

int main(int argc, char **argv) {
  bench *b = calloc(1, sizeof(*b));
  dv_sim_uv_settings ss;
  dvoice_pacer_settings ps;
  dvoice_conn_settings cs;
  dvoice_conn_callbacks cb;
  dvoice_pacer_stats pst, pst0;
  floor_run fl0, fl;
  dv_hist all;
  const char *mode = argc > 3 ? argv[3] : "aes";
  const char *timer = argc > 4 ? argv[4] : "timerfd";
  char endpoint[64], sid[32], tok[32];
  double u0, s0, u1, s1, t0, t1, sim0, sim1;
  uint64_t wall0, wall1;
  long long rcvbuf_err0, rcvbuf_err1;
  clockid_t sim_clock;
  uint64_t packets = 0, late = 0, missed = 0, received = 0, sim_missing = 0;
  size_t mem_ready;
  int64_t *drift, *spread;
  struct rlimit rl;

  if (b == NULL) {
    return 1;
  }
  b->n = argc > 1 ? atoi(argv[1]) : 1;
  b->seconds = argc > 2 ? atoi(argv[2]) : 10;
  if (b->n < 1 || b->n > 5000 || b->seconds < 1) {
    fprintf(stderr,
            "usage: %s [connections] [seconds] [aes|xchacha] [timerfd|uv]\n",
            argv[0]);
    return 1;
  }
  b->frames_each = b->seconds * 50;
  /* libuv writes to sockets with write(): a peer gone mid-write must not
   * kill the process. */
  signal(SIGPIPE, SIG_IGN);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    /* Per connection: its TCP and UDP sockets and the simulator's end of
     * the TCP one. Fail now rather than with a join timeout later. */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)b->n * 3 + 64) {
      fprintf(stderr, "open file limit %llu is too low for %d connections\n",
              (unsigned long long)rl.rlim_cur, b->n);
      return 1;
    }
  }
  encode_frames(b);
  b->mem.mem.user_data = &b->mem;
  b->mem.mem.malloc = c_malloc;
  b->mem.mem.free = c_free;
  b->mem.mem.calloc = c_calloc;
  b->mem.mem.realloc = c_realloc;

  /* The simulator, on its own loop and thread. */
  uv_loop_init(&b->sim_loop);
  dv_sim_uv_settings_default(&ss);
  ss.vgw.modes[0] = strcmp(mode, "xchacha") == 0
                        ? dv_sim_mode_name(DV_SIM_MODE_XCHACHA20)
                        : dv_sim_mode_name(DV_SIM_MODE_AES256_GCM);
  ss.vgw.nmodes = 1;
  ss.media.decode_opus = 0;
  ss.media.forward = 0;
  ss.media.max_arrivals = (size_t)b->frames_each + 64;
  ss.udp_rcvbuf = SIM_RCVBUF;
  if (dv_sim_uv_new(&b->sim_loop, &ss, &b->sim) != 0) {
    fprintf(stderr, "simulator failed to start\n");
    return 1;
  }
  check_rcvbuf(b->sim);
  b->sess = calloc((size_t)b->n, sizeof(*b->sess));
  b->figs = calloc((size_t)b->n, sizeof(*b->figs));
  b->conns = calloc((size_t)b->n, sizeof(*b->conns));
  drift = calloc((size_t)b->n, sizeof(*drift));
  spread = calloc((size_t)b->n, sizeof(*spread));
  /* One guild per connection, as a bot's connections are (one voice
   * connection per guild): the simulator then sends no op 11 to the other
   * connections, which at N=1000 would be half a million gateway messages
   * competing with the media it measures. */
  for (int i = 0; i < b->n; i++) {
    char gid[32];
    snprintf(gid, sizeof(gid), "%llu", GUILD_BASE + (unsigned long long)i);
    snprintf(sid, sizeof(sid), "s%d", i);
    snprintf(tok, sizeof(tok), "t%d", i);
    if (dv_sim_vgw_add_session(dv_sim_uv_vgw(b->sim), gid, "222222222222", sid,
                               tok, &b->sess[i]) != 0) {
      return 1;
    }
  }
  snprintf(endpoint, sizeof(endpoint), "ws://%s", dv_sim_uv_endpoint(b->sim));
  bench_arrivals_init(&b->arr);
  uv_async_init(&b->sim_loop, &b->sim_stop, on_sim_stop);
  b->sim_stop.data = b;
  pthread_create(&b->sim_thread, NULL, sim_main, b);
  if (pthread_getcpuclockid(b->sim_thread, &sim_clock) != 0) {
    fprintf(stderr, "no CPU clock for the simulator's thread\n");
    return 1;
  }

  /* The sender: one loop, one pacer, N connections. */
  uv_loop_init(&b->loop);
  dvoice_pacer_settings_default(&ps);
  ps.env.mem = &b->mem.mem;
  if (getenv("DVOICE_BENCH_LANES") != NULL) {
    ps.lanes = (unsigned)atoi(getenv("DVOICE_BENCH_LANES"));
  }
  if (getenv("DVOICE_BENCH_LANE_CAPACITY") != NULL) {
    ps.lane_capacity = (size_t)atoi(getenv("DVOICE_BENCH_LANE_CAPACITY"));
  }
  ps.timer = strcmp(timer, "uv") == 0 ? DVOICE_PACER_TIMER_UV
                                      : DVOICE_PACER_TIMER_TIMERFD;
  if (dvoice_pacer_new(&b->pacer, &b->loop, &ps) != 0) {
    fprintf(stderr, "pacer failed\n");
    return 1;
  }
  /* The floor on the empty loop: what the machine itself allows. */
  floor_measure(&b->loop, ps.timer == DVOICE_PACER_TIMER_TIMERFD, b->seconds,
                &fl0);
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  cb.on_drain = on_drain;
  cb.on_stream = on_stream;
  for (int i = 0; i < b->n; i++) {
    one *o = &b->conns[i];
    o->b = b;
    dvoice_conn_settings_default(&cs);
    cs.env.mem = &b->mem.mem;
    cs.pacer = b->pacer;
    cs.guild_id = GUILD_BASE + (uint64_t)i;
    cs.channel_id = 333;
    cs.user_id = 222222222222ull;
    snprintf(sid, sizeof(sid), "s%d", i);
    snprintf(tok, sizeof(tok), "t%d", i);
    cs.session_id = sid;
    cs.token = tok;
    cs.endpoint = endpoint;
    if (dvoice_conn_new(&o->conn, &b->loop, &cs, &cb, o) != 0) {
      fprintf(stderr, "connection %d failed\n", i);
      return 1;
    }
    /* Join in batches, as bots do, rather than 1000 SYNs at once (the
     * simulator's listen backlog is 128). */
    if ((i + 1) % 100 == 0) {
      run_until(&b->loop, &b->ready, i + 1, "READY", 60);
    }
  }
  run_until(&b->loop, &b->ready, b->n, "READY", 60 + (unsigned)b->n / 20);
  mem_ready = b->mem.live;

  /* Again with the connections joined and idle: their background work
   * (heartbeats, keepalives) is in it, so the marginal figure below charges
   * packets with sending only. */
  floor_measure(&b->loop, ps.timer == DVOICE_PACER_TIMER_TIMERFD, b->seconds,
                &fl);

  /* Stream. */
  dvoice_pacer_get_stats(b->pacer, &pst0);
  rcvbuf_err0 = udp_rcvbuf_errors();
  cpu_seconds(&u0, &s0);
  t0 = thread_cpu_seconds();
  wall0 = uv_hrtime();
  sim0 = clock_seconds(sim_clock);
  b->streaming = 1;
  for (int i = 0; i < b->n; i++) {
    push(&b->conns[i]);
  }
  run_until(&b->loop, &b->ended, b->n, "the end of the streams",
            (unsigned)b->seconds * 2 + 30);
  /* Let the last silence frames leave (they go out one tick later). */
  {
    int fired = 0;
    uv_timer_init(&b->loop, &b->wait);
    b->wait.data = &fired;
    uv_timer_start(&b->wait, on_wait_timer, 100, 0);
    run_until(&b->loop, &fired, 1, "the last packets", 5);
    uv_close((uv_handle_t *)&b->wait, NULL);
  }
  cpu_seconds(&u1, &s1);
  t1 = thread_cpu_seconds();
  wall1 = uv_hrtime();
  sim1 = clock_seconds(sim_clock);
  rcvbuf_err1 = udp_rcvbuf_errors();

  dv_hist_reset(&all);
  for (int i = 0; i < b->n; i++) {
    dvoice_conn_stats st;
    const dv_hist *h = dv_uv_conn_departures(b->conns[i].conn);
    dvoice_tstamp first, last;
    dvoice_conn_get_stats(b->conns[i].conn, &st);
    dv_uv_conn_departure_span(b->conns[i].conn, &first, &last);
    /* Drift: where the last packet left against the grid the first one
     * started (missed slots included: they are drift too). */
    drift[i] =
        st.packets_sent > 1
            ? (int64_t)(last - first) -
                  (int64_t)(st.packets_sent - 1 + st.missed_slots) * 20000000
            : 0;
    /* Jitter seen by one receiver: the spread of this connection's own
     * departures (its position in the send loop is a constant offset). */
    spread[i] =
        (int64_t)(dv_hist_quantile(h, 990000) - dv_hist_quantile(h, 10000));
    packets += st.packets_sent;
    late += st.late_ticks;
    missed += st.missed_slots;
    all.count += h->count;
    all.sum += h->sum;
    if (h->max > all.max) {
      all.max = h->max;
    }
    for (size_t k = 0; k < DV_HIST_BUCKETS; k++) {
      all.bucket[k] += h->bucket[k];
    }
  }
  dvoice_pacer_get_stats(b->pacer, &pst);

  for (int i = 0; i < b->n; i++) {
    dvoice_conn_close(b->conns[i].conn, on_closed);
  }
  dvoice_pacer_close(b->pacer, NULL, NULL);
  run_until(&b->loop, &b->closed, b->n, "close", 30);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->loop);

  uv_async_send(&b->sim_stop);
  pthread_join(b->sim_thread, NULL);
  uv_run(&b->sim_loop, UV_RUN_DEFAULT);
  uv_loop_close(&b->sim_loop);

  for (int i = 0; i < b->n; i++) {
    sim_fig *f = &b->figs[i];
    received += f->received;
    sim_missing += f->missing;
  }
  qsort(drift, (size_t)b->n, sizeof(*drift), cmp_i64);
  qsort(spread, (size_t)b->n, sizeof(*spread), cmp_i64);

  {
    double np = packets > 0 ? (double)packets : 1;
    double us_per_pkt = (t1 - t0) * 1e6 / np;
    double sim_us = (sim1 - sim0) * 1e6 / np;
    uint64_t ticks = pst.wakeups - pst0.wakeups;
    /* Marginal: the streaming thread's CPU minus what it would have spent
     * without packets, per packet: each pacer wake-up at the cheaper
     * floor's cost per wake-up (the empty loop's wake-ups can cost more: the
     * CPU idles deeper between them), plus the idle connections' background
     * (the idle floor's excess over that) per 20 ms streamed. With lanes the
     * pacer wakes many times per 20 ms, so the background is charged by
     * time, not per wake-up. */
    double idle_us = floor_cpu_us(&fl);
    double wake_us =
        floor_cpu_us(&fl0) < idle_us ? floor_cpu_us(&fl0) : idle_us;
    double bg_us = idle_us - wake_us;
    double periods = (double)(wall1 - wall0) / (double)FLOOR_PERIOD_NS;
    double marg_us =
        ((t1 - t0) * 1e6 - wake_us * (double)ticks - bg_us * periods) / np;
    double us_user = (u1 - u0) * 1e6 / np, us_sys = (s1 - s0) * 1e6 / np;
    double p50 = (double)dv_hist_quantile(&all, 500000) / 1e6;
    double p99 = (double)dv_hist_quantile(&all, 990000) / 1e6;
    double p999 = (double)dv_hist_quantile(&all, 999000) / 1e6;
    double mx = (double)all.max / 1e6;
    double d50 = (double)drift[b->n / 2] / 1e6;
    double dmax =
        (double)(llabs(drift[0]) > llabs(drift[b->n - 1]) ? drift[0]
                                                          : drift[b->n - 1]) /
        1e6;
    double kib = (double)mem_ready / (double)b->n / 1024.0;
    double s50 = (double)spread[b->n / 2] / 1e6;
    double smax = (double)spread[b->n - 1] / 1e6;
    double load[3] = {0, 0, 0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la != NULL) {
      if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) {
        load[0] = 0;
      }
      fclose(la);
    }
    printf("{\"bench\":\"pacing\",\"connections\":%d,\"seconds\":%d,"
           "\"mode\":\"%s\",\"timer\":\"%s\",\"packets\":%llu,"
           "\"departure_ms\":{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,"
           "\"max\":%.4f},\"late_ticks\":%llu,\"missed_slots\":%llu,"
           "\"drift_ms\":{\"median\":%.4f,\"worst\":%.4f},"
           "\"per_conn_spread_p1_p99_ms\":{\"median\":%.4f,\"worst\":%.4f},"
           "\"cpu_us_per_packet\":%.3f,\"cpu_user_us\":%.3f,"
           "\"cpu_sys_us\":%.3f,\"mem_kib_per_conn\":%.1f,"
           "\"pacer_wakeups\":%llu,\"sim_received\":%llu,"
           "\"sim_missing\":%llu,\"sim_cpu_us_per_packet\":%.3f,"
           "\"stream_wakeups\":%llu,\"cpu_us_per_packet_marginal\":%.3f,"
           "\"udp_rcvbuf_errors\":%lld,\"loadavg\":%.2f,\"floor_empty\":",
           b->n, b->seconds, mode, timer, (unsigned long long)packets, p50, p99,
           p999, mx, (unsigned long long)late, (unsigned long long)missed, d50,
           dmax, s50, smax, us_per_pkt, us_user, us_sys, kib,
           (unsigned long long)pst.wakeups, (unsigned long long)received,
           (unsigned long long)sim_missing, sim_us, (unsigned long long)ticks,
           marg_us, (long long)(rcvbuf_err1 - rcvbuf_err0), load[0]);
    floor_json(&fl0, timer, stdout);
    printf(",\"floor_idle_conns\":");
    floor_json(&fl, timer, stdout);
    printf("}\n");
    printf("%-28s %s\n", "connections", argv[1] != NULL ? argv[1] : "1");
    printf("%-28s %llu\n", "packets sent", (unsigned long long)packets);
    printf("%-28s %.3f / %.3f / %.3f / %.3f ms\n", "departure p50/p99/p999/max",
           p50, p99, p999, mx);
    printf("%-28s %llu late, %llu missed slots\n", "ticks",
           (unsigned long long)late, (unsigned long long)missed);
    printf("%-28s median %.3f ms, worst %.3f ms\n", "drift at the end", d50,
           dmax);
    printf("%-28s median %.3f ms, worst %.3f ms\n", "per-connection p1..p99",
           s50, smax);
    floor_rows(&fl0, "floor, empty", timer, "empty loop", stdout);
    floor_rows(&fl, "floor, idle", timer, "connections idle", stdout);
    printf("%-28s %.3f us (user %.3f, system %.3f)\n", "cpu per packet",
           us_per_pkt, us_user, us_sys);
    printf("%-28s %.3f us = (stream cpu - %.3f us x %llu wake-ups - %.3f us "
           "x %.0f periods) / packets\n",
           "cpu per packet, marginal", marg_us, wake_us,
           (unsigned long long)ticks, bg_us, periods);
    printf("%-28s %.1f KiB\n", "memory per connection", kib);
    printf("%-28s %llu received, %llu missing\n", "simulator",
           (unsigned long long)received, (unsigned long long)sim_missing);
    printf("%-28s %.3f us per packet (simulator thread, CPU clock)\n",
           "simulator cpu", sim_us);
    printf("%-28s %.2f\n", "load average (1 min)", load[0]);
    printf("%-28s %lld (host-wide, during the run)\n", "udp receive drops",
           (long long)(rcvbuf_err1 - rcvbuf_err0));
    printf("%-28s %llu datagrams in, %llu unattributed, %llu sent\n",
           "simulator udp", (unsigned long long)b->sim_global.datagrams_in,
           (unsigned long long)b->sim_global.unknown,
           (unsigned long long)b->sim_global.sent);
  }
  {
    char label[64];
    int with_djs = argc > 5 && strcmp(argv[5], "djs") == 0;
    djs_fig df;
    double us_per_pkt = (t1 - t0) * 1e6 / (double)(packets > 0 ? packets : 1);
    double kib = (double)mem_ready / (double)b->n / 1024.0;
    bench_samples *g = &b->arr.grid_ms;
    double q[4];
    q[0] = bench_samples_quantile(g, 0.5);
    q[1] = bench_samples_quantile(g, 0.99);
    q[2] = bench_samples_quantile(g, 0.999);
    q[3] = bench_samples_quantile(g, 1.0);
    printf("# simulator-side arrivals, lateness behind each stream's grid\n");
    bench_arrivals_header(stdout);
    snprintf(label, sizeof(label), "dvoice N=%d %ds arrival", b->n, b->seconds);
    bench_arrivals_row(&b->arr, label, stdout);
    if (with_djs) {
      int rv = run_djs(b->n, b->seconds, strcmp(mode, "xchacha") == 0, &df);
      bench_samples *h = &df.arr.grid_ms;
      double r[4];
      r[0] = bench_samples_quantile(h, 0.5);
      r[1] = bench_samples_quantile(h, 0.99);
      r[2] = bench_samples_quantile(h, 0.999);
      r[3] = bench_samples_quantile(h, 1.0);
      snprintf(label, sizeof(label), "djs N=%d %ds departure", b->n,
               b->seconds);
      bench_arrivals_row(&df.dep, label, stdout);
      snprintf(label, sizeof(label), "djs N=%d %ds arrival", b->n, b->seconds);
      bench_arrivals_row(&df.arr, label, stdout);
      printf("%-28s %s%s\n", "discord.js", df.version,
             rv == 0 ? "" : " (FAILED)");
      printf("%-28s %.3f us dvoice (sender thread), %.3f us discord.js "
             "(Node process)\n",
             "cpu per packet", us_per_pkt, df.cpu_us_per_packet);
      printf("%-28s %.1f KiB dvoice (allocator), %.1f KiB discord.js "
             "(peak RSS / N)\n",
             "memory per connection", kib, df.kib_per_conn);
      printf("%-28s p50 %.3f, p99 %.3f, p999 %.3f, max %.3f; cpu %.4f, "
             "mem %.4f\n",
             "ratio dvoice/discord.js", ratio(q[0], r[0]), ratio(q[1], r[1]),
             ratio(q[2], r[2]), ratio(q[3], r[3]),
             ratio(us_per_pkt, df.cpu_us_per_packet),
             ratio(kib, df.kib_per_conn));
      printf("{\"bench\":\"pacing_vs_djs\",\"connections\":%d,"
             "\"seconds\":%d,\"mode\":\"%s\",\"dvoice\":{\"arrivals\":",
             b->n, b->seconds, mode);
      bench_arrivals_json(&b->arr, stdout);
      printf(",\"cpu_us_per_packet\":%.3f,\"mem_kib_per_conn\":%.1f},"
             "\"djs\":{\"version\":\"%s\",\"ok\":%s,\"arrivals\":",
             us_per_pkt, kib, df.version, rv == 0 ? "true" : "false");
      bench_arrivals_json(&df.arr, stdout);
      printf(",\"departures\":");
      bench_arrivals_json(&df.dep, stdout);
      printf(",\"cpu_us_per_packet\":%.3f,\"mem_kib_per_conn\":%.1f},"
             "\"ratio\":{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,"
             "\"max\":%.4f,\"cpu\":%.4f,\"mem\":%.4f}}\n",
             df.cpu_us_per_packet, df.kib_per_conn, ratio(q[0], r[0]),
             ratio(q[1], r[1]), ratio(q[2], r[2]), ratio(q[3], r[3]),
             ratio(us_per_pkt, df.cpu_us_per_packet),
             ratio(kib, df.kib_per_conn));
      bench_arrivals_free(&df.arr);
      bench_arrivals_free(&df.dep);
    } else {
      printf("{\"bench\":\"pacing_arrivals\",\"connections\":%d,"
             "\"arrivals\":",
             b->n);
      bench_arrivals_json(&b->arr, stdout);
      printf("}\n");
    }
  }
  bench_arrivals_free(&b->arr);
  bench_samples_free(&fl0.late_ms);
  bench_samples_free(&fl.late_ms);
  free(drift);
  free(spread);
  free(b->sess);
  free(b->figs);
  free(b->conns);
  free(b);
  return 0;
}
