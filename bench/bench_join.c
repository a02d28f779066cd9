/*
 * bench_join: join latency of dvoice and of @discordjs/voice against the
 * same simulator in one run, step by step.
 *
 *   bench_join [joins=50] [--warmup W] [--no-djs] [--sequential]
 *              [--system-ca] [--peers DIR] [--verbose]
 *
 * The simulator (main gateway v10 and one voice server: gateway v8 and
 * UDP media) runs wss:// only, with a throw-away CA, on its own loop in a
 * second thread. Both bots reach it the same way: they connect to its main
 * gateway (dvoice with its built-in gateway, discord.js with
 * bench/peers/djs_join.js, a minimal gateway client feeding
 * @discordjs/voice's adapter), then join and leave one channel W + N times,
 * one join after the other; the simulator answers each op 4 with
 * VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE (in a random order) and
 * registers the session. dvoice runs on this thread's loop, discord.js in
 * its Node process (from $DVOICE_NPM_PEERS, else SOURCE/.npm-peers). The
 * joins alternate, one dvoice join then one discord.js join, so that both
 * see the same load on a shared machine; --sequential runs all of
 * dvoice's joins first, then all of discord.js's. Both trust only the
 * simulator's CA, unless --system-ca: then both trust the system bundle
 * plus that CA, as bots in production trust the system bundle (discord.js
 * loads it once at start-up, dvoice for each voice connection).
 *
 * Each join is timed from the application's join call (dvoice_client_join
 * / joinVoiceChannel) to each step: op 4 sent, both voice dispatches in
 * hand, voice host resolved (dvoice: after building its TLS config), TCP
 * connected, TLS handshake done, voice WebSocket open (Upgrade answered),
 * Hello, Identify sent, Ready, IP discovery
 * answered, Select Protocol sent, Session Description, ready to send
 * (dvoice: the UDP socket is discovered, the key is in and the session
 * may carry audio, i.e. a pushed frame leaves on the next pacer tick;
 * discord.js: VoiceConnectionStatus.Ready). dvoice's steps come from the
 * internal test-only timeline (lib/uv/dv_uv_timeline.h). Prints a table
 * (per step: time since the join call, and time since the previous step,
 * median and p95) and one JSON line with the ratios dvoice/discord.js of
 * the total (target <= 0.20). Without the Node peers, only dvoice's half is
 * printed and the JSON says why the ratio is missing.
 *
 * Discord's gateway allows 120 messages a minute: W + N <= 55 (a join and
 * a leave per round).
 * Exit status: 0 when every join of both clients succeeded and the
 * simulator saw no violation, 1 otherwise, 2 on a usage error.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "../test/sim/sim_gw_uv.h"
#include "../test/sim/sim_uv.h"
#include "bench_common.h"
#include "bench_djs.h"
#include "uv/dv_uv_timeline.h"

#define DV_TOKEN "bench.join.dvoice"
#define DV_USER 222222222222ull
#define DV_GUILD 111111111111ull
#define DV_CHANNEL 333333333333ull
#define DJS_TOKEN "bench.join.discordjs"
#define DJS_USER 104694319306248192ull
#define DJS_GUILD 41771983423143900ull
#define DJS_CHANNEL 41771983423144900ull
#define MAX_ROUNDS 55

_Static_assert(BENCH_DJS_NSTEPS == DV_UV_NSTEPS,
               "bench_djs and dv_uv_timeline time the same steps");

static const char *const step_names[DV_UV_NSTEPS] = {
    "op 4 sent",     "voice events (both)",  "DNS resolved",
    "TCP connected", "TLS handshake done",   "voice WS open",
    "Hello",         "Identify sent",        "Ready",
    "IP discovery",  "Select Protocol sent", "Session Description",
    "ready to send"};
static const char *const step_keys[DV_UV_NSTEPS] = {"op4_sent",
                                                    "voice_events",
                                                    "dns",
                                                    "tcp",
                                                    "tls",
                                                    "ws_open",
                                                    "hello",
                                                    "identify",
                                                    "ready",
                                                    "ipdisc",
                                                    "select_protocol",
                                                    "session_description",
                                                    "ready_to_send"};
#define TOTAL (DV_UV_NSTEPS - 1)

typedef struct opts {
  unsigned n, warmup;
  int djs, sequential, system_ca, verbose;
  const char *peers;
} opts;

/* One client's figures over the measured joins: per step, the ms since the
 * join call (at) and since the previous step (delta); per join, the voice
 * WebSocket's setup (both dispatches in hand to WS open: DNS, TCP, TLS,
 * Upgrade), the rest of the join (total minus setup), and the client's CPU
 * time from the join call to ready (dvoice: its thread, without the
 * simulator's; discord.js: its whole Node process). */
typedef struct figs {
  bench_samples at[DV_UV_NSTEPS];
  bench_samples delta[DV_UV_NSTEPS];
  bench_samples setup, rest, cpu;
  unsigned joins;
} figs;

typedef struct bench {
  opts o;
  /* The simulator's thread. */
  uv_loop_t sim_loop;
  dv_sim_uv *vsim;
  dv_sim_gw_uv *gsim;
  uv_async_t stop;
  pthread_t thread;
  int sim_parts;
  size_t violations;
  /* dvoice, on this thread. */
  uv_loop_t loop;
  uv_timer_t tick; /* wakes the loop so that deadlines are checked */
  dvoice_client *cl;
  dvoice_conn *conn;
  dv_uv_timeline tl;
  dvoice_tstamp t_join;
  double cpu_join, cpu_ready; /* this thread's CPU time, ms */
  int gw_state, ready, failed, conn_closed, client_closed;
  figs dv;
} bench;

static void usage(void) {
  fprintf(stderr, "usage: bench_join [joins=50] [--warmup W] [--no-djs] "
                  "[--sequential] [--system-ca] [--peers DIR] "
                  "[--verbose]\n");
  exit(2);
}

static unsigned parse_uint(const char *s, unsigned lo, unsigned hi) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == 0 || *end != 0 || v < lo || v > hi) {
    usage();
  }
  return (unsigned)v;
}

static void parse_opts(int argc, char **argv, opts *o) {
  int positional = 0;
  memset(o, 0, sizeof(*o));
  o->n = 50;
  o->djs = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--no-djs") == 0) {
      o->djs = 0;
    } else if (strcmp(a, "--sequential") == 0) {
      o->sequential = 1;
    } else if (strcmp(a, "--system-ca") == 0) {
      o->system_ca = 1;
    } else if (strcmp(a, "--verbose") == 0) {
      o->verbose = 1;
    } else if (strcmp(a, "--warmup") == 0 && i + 1 < argc) {
      o->warmup = parse_uint(argv[++i], 0, MAX_ROUNDS);
    } else if (strcmp(a, "--peers") == 0 && i + 1 < argc) {
      o->peers = argv[++i];
    } else if (a[0] != '-' && !positional) {
      o->n = parse_uint(a, 1, MAX_ROUNDS);
      positional = 1;
    } else {
      usage();
    }
  }
  if (o->n + o->warmup > MAX_ROUNDS) {
    fprintf(stderr,
            "bench_join: joins + warm-up must be <= %d (the main gateway "
            "allows 120 messages a minute; each round is a join and a "
            "leave)\n",
            MAX_ROUNDS);
    exit(2);
  }
}

static void figs_free(figs *f) {
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    bench_samples_free(&f->at[k]);
    bench_samples_free(&f->delta[k]);
  }
  bench_samples_free(&f->setup);
  bench_samples_free(&f->rest);
  bench_samples_free(&f->cpu);
}

/* Adds one join: |at| holds the ms since the join call of each step,
 * negative if the step was not seen. */
static void figs_add(figs *f, const double *at) {
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    if (at[k] < 0) {
      continue;
    }
    (void)bench_samples_add(&f->at[k], at[k]);
    if (k == 0 || at[k - 1] >= 0) {
      (void)bench_samples_add(&f->delta[k], at[k] - (k == 0 ? 0 : at[k - 1]));
    }
  }
  if (at[DV_UV_STEP_EVENTS] >= 0 && at[DV_UV_STEP_WS_OPEN] >= 0 &&
      at[TOTAL] >= 0) {
    double setup = at[DV_UV_STEP_WS_OPEN] - at[DV_UV_STEP_EVENTS];
    (void)bench_samples_add(&f->setup, setup);
    (void)bench_samples_add(&f->rest, at[TOTAL] - setup);
  }
  f->joins++;
}

/* ---- the simulator's thread -------------------------------------------- */

static size_t count_violations(bench *b) {
  dv_sim_vgw *vgw = dv_sim_uv_vgw(b->vsim);
  dv_sim_gw *gw = dv_sim_gw_uv_core(b->gsim);
  size_t n = vgw->violations.n + gw->violations.n;
  for (size_t i = 0; i < vgw->nsessions; i++) {
    const dv_sim_violations *v = &vgw->sessions[i]->report.violations;
    for (size_t j = 0; j < v->n; j++) {
      fprintf(stderr, "simulator: voice violation: %s (%d)\n", v->v[j].what,
              v->v[j].close_code);
    }
    n += v->n;
  }
  for (size_t i = 0; i < gw->nsessions; i++) {
    const dv_sim_violations *v = &gw->sessions[i]->report.violations;
    for (size_t j = 0; j < v->n; j++) {
      fprintf(stderr, "simulator: gateway violation: %s (%d)\n", v->v[j].what,
              v->v[j].close_code);
    }
    n += v->n;
  }
  return n;
}

static void gsim_closed(dv_sim_gw_uv *g, void *ud) {
  (void)g;
  ((bench *)ud)->sim_parts--;
}

static void vsim_closed(dv_sim_uv *v, void *ud) {
  (void)v;
  ((bench *)ud)->sim_parts--;
}

static void on_stop(uv_async_t *a) {
  bench *b = a->data;
  b->violations = count_violations(b);
  uv_close((uv_handle_t *)a, NULL);
  b->sim_parts = 2;
  /* The gateway first: it borrows the voice simulator. */
  (void)dv_sim_gw_uv_close(b->gsim, gsim_closed, b);
  (void)dv_sim_uv_close(b->vsim, vsim_closed, b);
}

static void *sim_main(void *arg) {
  bench *b = arg;
  pthread_setname_np(pthread_self(), "dv-sim");
  uv_run(&b->sim_loop, UV_RUN_DEFAULT);
  return NULL;
}

static int sim_start(bench *b, const bench_certs *certs) {
  dv_sim_uv_settings vs;
  dv_sim_gw_uv_settings gs;
  uint64_t ch;
  dv_sim_gw *gw;
  if (uv_loop_init(&b->sim_loop) != 0) {
    return -1;
  }
  dv_sim_uv_settings_default(&vs);
  vs.cert_file = certs->cert;
  vs.key_file = certs->key;
  vs.media.forward = 0;
  if (dv_sim_uv_new(&b->sim_loop, &vs, &b->vsim) != 0) {
    return -1;
  }
  dv_sim_gw_uv_settings_default(&gs);
  gs.cert_file = certs->cert;
  gs.key_file = certs->key;
  /* Both bots resolve and verify "localhost", as with the public sim. */
  gs.url_host = "localhost";
  if (dv_sim_gw_uv_new(&b->sim_loop, &gs, &b->gsim) != 0 ||
      dv_sim_gw_uv_attach_voice(b->gsim, b->vsim) < 0) {
    return -1;
  }
  gw = dv_sim_gw_uv_core(b->gsim);
  ch = DV_CHANNEL;
  if (dv_sim_gw_add_bot(gw, DV_TOKEN, DV_USER) != 0 ||
      dv_sim_gw_add_bot(gw, DJS_TOKEN, DJS_USER) != 0 ||
      dv_sim_gw_add_guild(gw, DV_GUILD, &ch, 1) != 0) {
    return -1;
  }
  ch = DJS_CHANNEL;
  if (dv_sim_gw_add_guild(gw, DJS_GUILD, &ch, 1) != 0 ||
      uv_async_init(&b->sim_loop, &b->stop, on_stop) != 0) {
    return -1;
  }
  b->stop.data = b;
  return pthread_create(&b->thread, NULL, sim_main, b) == 0 ? 0 : -1;
}

static void sim_stop(bench *b) {
  uv_async_send(&b->stop);
  pthread_join(b->thread, NULL);
  while (b->sim_parts > 0) {
    uv_run(&b->sim_loop, UV_RUN_ONCE);
  }
  uv_run(&b->sim_loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&b->sim_loop) != 0) {
    fprintf(stderr, "bench_join: handles left on the simulator's loop\n");
  }
}

/* ---- dvoice ------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Runs the loop until |*flag| is set or |seconds| pass; 0 or -1. */
static int run_until(bench *b, const int *flag, unsigned seconds) {
  uint64_t until = uv_hrtime() + (uint64_t)seconds * 1000000000ull;
  while (!*flag) {
    uv_run(&b->loop, UV_RUN_ONCE);
    if (!*flag && uv_hrtime() > until) {
      return -1;
    }
  }
  return 0;
}

static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  bench *b = ud;
  (void)cl;
  if (ev->state == DVOICE_GATEWAY_READY) {
    b->gw_state = 1;
  } else if (ev->state == DVOICE_GATEWAY_DISCONNECTED) {
    fprintf(stderr, "dvoice: main gateway disconnected (close %d)\n",
            ev->close_code);
    b->failed = 1;
  }
}

/* This thread's CPU time, ms. */
static double thread_cpu_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  bench *b = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY) {
    b->cpu_ready = thread_cpu_ms();
    b->ready = 1;
  } else if (ev->state != DVOICE_CONN_CONNECTING) {
    fprintf(stderr, "dvoice: join failed: %s (%s, close %d, %s)\n",
            dvoice_conn_state_name(ev->state),
            dvoice_conn_reason_name(ev->reason), ev->close_code,
            ev->err != 0 ? dvoice_strerror(ev->err) : "-");
    b->failed = 1;
  }
}

static void on_conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  ((bench *)ud)->conn_closed = 1;
}

static void on_client_closed(dvoice_client *cl, void *ud) {
  (void)cl;
  ((bench *)ud)->client_closed = 1;
}

/* Adds one join's timeline (absolute times, 0: not reached) to |f|. */
static void figs_add_timeline(figs *f, const dv_uv_timeline *tl,
                              dvoice_tstamp t0) {
  double at[DV_UV_NSTEPS];
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    at[k] = tl->at[k] != 0 ? ((double)tl->at[k] - (double)t0) / 1e6 : -1;
  }
  figs_add(f, at);
}

/* Starts the client and waits for its main gateway; 0 or -1. */
static int dv_start(bench *b, const bench_certs *certs, const char *url) {
  dvoice_client_settings cs;
  dvoice_conn_settings tmpl;
  dvoice_client_callbacks ccb;
  dvoice_client_settings_default(&cs);
  dvoice_conn_settings_default(&tmpl);
  tmpl.tls.ca_file = certs->ca;
  cs.user_id = DV_USER;
  cs.token = DV_TOKEN;
  cs.gateway_url = url;
  cs.conn = &tmpl;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_gateway = on_gateway;
  if (dvoice_client_new(&b->cl, &b->loop, &cs, &ccb, b) != 0) {
    fprintf(stderr, "dvoice: cannot create the client\n");
    return -1;
  }
  if (run_until(b, &b->gw_state, 10) != 0 || b->failed) {
    fprintf(stderr, "dvoice: the main gateway did not become READY\n");
    return -1;
  }
  return 0;
}

/* Join |i| (measured unless a warm-up) and its leave; 0 or -1. */
static int dv_round(bench *b, unsigned i) {
  dvoice_conn_callbacks cb;
  int rv = 0;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  memset(&b->tl, 0, sizeof(b->tl));
  b->ready = 0;
  b->conn_closed = 0;
  dv_uv_client_set_timeline(b->cl, &b->tl);
  b->cpu_join = thread_cpu_ms();
  b->t_join = uv_hrtime();
  if (dvoice_client_join(b->cl, DV_GUILD, DV_CHANNEL, DVOICE_JOIN_SELF_DEAF,
                         &cb, b, &b->conn) != 0) {
    fprintf(stderr, "dvoice: dvoice_client_join failed\n");
    return -1;
  }
  dv_uv_conn_set_timeline(b->conn, &b->tl);
  if (run_until(b, &b->ready, 15) != 0 || b->failed) {
    fprintf(stderr, "dvoice: join %u did not become READY\n", i);
    rv = -1;
  } else if (i >= b->o.warmup) {
    figs_add_timeline(&b->dv, &b->tl, b->t_join);
    (void)bench_samples_add(&b->dv.cpu, b->cpu_ready - b->cpu_join);
  }
  dv_uv_conn_set_timeline(b->conn, NULL);
  dv_uv_client_set_timeline(b->cl, NULL);
  (void)dvoice_client_leave(b->cl, b->conn, on_conn_closed);
  b->conn = NULL;
  if (run_until(b, &b->conn_closed, 10) != 0) {
    fprintf(stderr, "dvoice: leave %u did not finish\n", i);
    rv = -1;
  }
  return rv;
}

/* Closes the client (if it was made); 0 or -1. */
static int dv_stop(bench *b) {
  if (b->cl == NULL) {
    return 0;
  }
  (void)dvoice_client_close(b->cl, on_client_closed);
  if (run_until(b, &b->client_closed, 10) != 0) {
    fprintf(stderr, "dvoice: the client did not close\n");
    return -1;
  }
  return 0;
}

/* ---- discord.js --------------------------------------------------------- */

/* Starts discord.js (paced: it joins when told) and waits for its main
 * gateway. Returns 0, -1 (it failed; |p| needs djs_finish) or -2 (the Node
 * peers are not installed; nothing to finish); |why| says what went
 * wrong. */
static int djs_start(bench *b, const bench_certs *certs, const char *url,
                     bench_djs *p, int paced, char *why, size_t whylen) {
  bench_djs_settings ds;
  char probe[600];
  const char *peers =
      b->o.peers != NULL ? b->o.peers : getenv("DVOICE_NPM_PEERS");
  struct stat st;
  uint64_t until = uv_hrtime() + 30 * 1000000000ull;
  if (peers == NULL || *peers == 0) {
    peers = DVOICE_SOURCE_ROOT "/.npm-peers";
  }
  snprintf(probe, sizeof(probe), "%s/node_modules/@discordjs/voice", peers);
  if (stat(probe, &st) != 0) {
    snprintf(why, whylen,
             "@discordjs/voice not found in %s (set DVOICE_NPM_PEERS)", peers);
    return -2;
  }
  memset(&ds, 0, sizeof(ds));
  ds.mode = "gwjoin";
  ds.n = b->o.n;
  ds.warmup = b->o.warmup;
  ds.paced = paced;
  ds.gateway = url;
  ds.ca = certs->ca;
  ds.token = DJS_TOKEN;
  ds.user = DJS_USER;
  ds.guild = DJS_GUILD;
  ds.channel = DJS_CHANNEL;
  ds.peers = peers;
  ds.timeout_ms = 60000 + (uint64_t)(b->o.n + b->o.warmup) * 3000;
  ds.verbose = b->o.verbose;
  if (bench_djs_start(p, &b->loop, &ds) != 0) {
    snprintf(why, whylen, "cannot start node");
    return -1;
  }
  while (!p->gw_ready && !p->exited && uv_hrtime() < until) {
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  if (!p->gw_ready) {
    snprintf(why, whylen, "the discord.js peer did not reach its gateway");
    return -1;
  }
  return 0;
}

/* Paced: discord.js's join |i| and its leave; 0 or -1. */
static int djs_round(bench *b, bench_djs *p, unsigned i) {
  uint64_t until = uv_hrtime() + 30 * 1000000000ull;
  if (bench_djs_command(p, "JOIN") != 0) {
    return -1;
  }
  while (p->idle <= i && !p->exited && uv_hrtime() < until) {
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  return p->idle > i ? 0 : -1;
}

/* Waits for the script to exit, closes its handles and checks it. Returns
 * 0 or -1 (|why| set). */
static int djs_finish(bench *b, bench_djs *p, char *why, size_t whylen) {
  while (!p->exited) {
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  bench_djs_close(p);
  while (p->open > 0) {
    uv_run(&b->loop, UV_RUN_ONCE);
  }
  if (!bench_djs_ok(p) || p->steps != b->o.n) {
    if (why[0] == 0) {
      snprintf(why, whylen,
               "the discord.js peer failed (status %" PRId64
               ", signal %d, %u errors, %u of %u joins)",
               p->exit_status, p->term_signal, p->errors, p->steps, b->o.n);
    }
    return -1;
  }
  return 0;
}

/* Runs both clients: interleaved (one dvoice join, then one discord.js
 * join, each alone on the machine's share of CPU), or one after the other.
 * Sets *dv_ok, and returns discord.js's outcome as djs_start does. */
static int run_both(bench *b, const bench_certs *certs, const char *url,
                    bench_djs *p, int *dv_ok, char *why, size_t whylen) {
  unsigned rounds = b->o.warmup + b->o.n;
  int djs_rv = -2, interleave = b->o.djs && !b->o.sequential;
  *dv_ok = 0;
  if (interleave) {
    djs_rv = djs_start(b, certs, url, p, 1, why, whylen);
  }
  if (dv_start(b, certs, url) == 0) {
    *dv_ok = 1;
    for (unsigned i = 0; i < rounds && *dv_ok; i++) {
      *dv_ok = dv_round(b, i) == 0;
      if (*dv_ok && interleave && djs_rv == 0 && djs_round(b, p, i) != 0) {
        djs_rv = -1;
      }
    }
  }
  if (dv_stop(b) != 0) {
    *dv_ok = 0;
  }
  if (b->o.djs && !interleave) {
    djs_rv = djs_start(b, certs, url, p, 0, why, whylen);
  }
  if (djs_rv != -2) {
    /* An unfinished paced script sees its stdin close and stops. */
    if (interleave && p->idle < rounds && p->have_in && !p->exited) {
      uv_close((uv_handle_t *)&p->in, NULL);
      p->have_in = 0;
      p->open--;
    }
    if (djs_finish(b, p, why, whylen) != 0) {
      djs_rv = -1;
    }
  }
  return djs_rv;
}

/* ---- output ------------------------------------------------------------- */

static double q(bench_samples *s, double x) {
  return s->n > 0 ? bench_samples_quantile(s, x) : NAN;
}

static void json_num(double v) {
  if (isnan(v)) {
    printf("null");
  } else {
    printf("%.4f", v);
  }
}

static void json_q(const char *key, bench_samples *v, int with_max) {
  printf("\"%s\":{\"p50\":", key);
  json_num(q(v, 0.5));
  printf(",\"p95\":");
  json_num(q(v, 0.95));
  if (with_max) {
    printf(",\"max\":");
    json_num(q(v, 1.0));
  }
  printf("}");
}

static void json_figs(figs *f) {
  printf("{\"joins\":%u,\"steps\":{", f->joins);
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    printf("%s\"%s\":{\"n\":%zu,\"at_p50\":", k ? "," : "", step_keys[k],
           f->at[k].n);
    json_num(q(&f->at[k], 0.5));
    printf(",\"at_p95\":");
    json_num(q(&f->at[k], 0.95));
    printf(",\"step_p50\":");
    json_num(q(&f->delta[k], 0.5));
    printf(",\"step_p95\":");
    json_num(q(&f->delta[k], 0.95));
    printf("}");
  }
  printf("},");
  json_q("total_ms", &f->at[TOTAL], 1);
  printf(",");
  json_q("ws_setup_ms", &f->setup, 0);
  printf(",");
  json_q("rest_ms", &f->rest, 0);
  printf(",");
  json_q("cpu_ms", &f->cpu, 0);
  printf("}");
}

/* The figures compared: the total, the voice WebSocket's setup, the rest
 * of the join and the client's CPU time. */
#define NPARTS 4
typedef struct ratios {
  double v[NPARTS][2]; /* [total, setup, rest, cpu][p50, p95] */
} ratios;

static bench_samples *part(figs *f, int i) {
  return i == 0   ? &f->at[TOTAL]
         : i == 1 ? &f->setup
         : i == 2 ? &f->rest
                  : &f->cpu;
}

static void ratios_of(ratios *r, figs *dv, figs *dj) {
  for (int i = 0; i < NPARTS; i++) {
    r->v[i][0] = q(part(dv, i), 0.5) / q(part(dj, i), 0.5);
    r->v[i][1] = q(part(dv, i), 0.95) / q(part(dj, i), 0.95);
  }
}

static void print_table(figs *dv, figs *dj, const ratios *r, int have_ratio,
                        const char *why) {
  static const char *const parts[NPARTS] = {
      "total (ready to send)", "WS setup (events->open)",
      "rest (total - setup)", "client CPU time"};
  printf("# ms; 'since' is from the join call, 'step' from the previous step "
         "(negative: it came first)\n");
  printf("%-23s %9s %9s %9s %9s | %9s %9s %9s %9s\n", "", "dvoice", "", "", "",
         "discord.js", "", "", "");
  printf("%-23s %9s %9s %9s %9s | %9s %9s %9s %9s\n", "step", "since p50",
         "p95", "step p50", "p95", "since p50", "p95", "step p50", "p95");
  for (int k = 0; k < DV_UV_NSTEPS; k++) {
    printf("%-23s %9.3f %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f %9.3f\n",
           step_names[k], q(&dv->at[k], 0.5), q(&dv->at[k], 0.95),
           q(&dv->delta[k], 0.5), q(&dv->delta[k], 0.95), q(&dj->at[k], 0.5),
           q(&dj->at[k], 0.95), q(&dj->delta[k], 0.5), q(&dj->delta[k], 0.95));
  }
  printf("\n%-23s %9s %9s | %9s %9s | %9s %9s\n", "per join", "dvoice p50",
         "p95", "djs p50", "p95", "ratio p50", "p95");
  for (int i = 0; i < NPARTS; i++) {
    printf("%-23s %10.3f %9.3f | %9.3f %9.3f | %9.3f %9.3f\n", parts[i],
           q(part(dv, i), 0.5), q(part(dv, i), 0.95), q(part(dj, i), 0.5),
           q(part(dj, i), 0.95), have_ratio ? r->v[i][0] : NAN,
           have_ratio ? r->v[i][1] : NAN);
  }
  if (have_ratio) {
    printf("# target: total ratio <= 0.20: %s\n",
           r->v[0][0] <= 0.20 && r->v[0][1] <= 0.20 ? "met" : "NOT met");
  } else {
    printf("# no ratio: %s\n", why);
  }
}

static void json_ratios(const ratios *r, int have_ratio) {
  static const char *const keys[NPARTS] = {"total", "ws_setup", "rest", "cpu"};
  printf("\"ratio\":{");
  for (int i = 0; i < NPARTS; i++) {
    printf("%s\"%s\":{\"p50\":", i ? "," : "", keys[i]);
    json_num(have_ratio ? r->v[i][0] : NAN);
    printf(",\"p95\":");
    json_num(have_ratio ? r->v[i][1] : NAN);
    printf("}");
  }
  printf("}");
}

/* --system-ca: both clients trust the system bundle plus the simulator's
 * CA, as a bot in production trusts the system bundle. Rewrites
 * certs->ca to the combined file; 0 or -1. */
static int make_bundle(bench_certs *certs) {
  static const char *const sys = "/etc/ssl/certs/ca-certificates.crt";
  char path[sizeof(certs->ca)], buf[8192];
  const char *parts[2];
  FILE *out;
  size_t n;
  int rv = 0;
  if ((size_t)snprintf(path, sizeof(path), "%s/bundle.pem", certs->dir) >=
      sizeof(path)) {
    return -1;
  }
  parts[0] = sys;
  parts[1] = certs->ca;
  out = fopen(path, "w");
  if (out == NULL) {
    return -1;
  }
  for (int i = 0; i < 2 && rv == 0; i++) {
    FILE *in = fopen(parts[i], "r");
    if (in == NULL) {
      fprintf(stderr, "bench_join: cannot read %s\n", parts[i]);
      rv = -1;
      break;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
      if (fwrite(buf, 1, n, out) != n) {
        rv = -1;
        break;
      }
    }
    fclose(in);
  }
  if (fclose(out) != 0) {
    rv = -1;
  }
  if (rv == 0) {
    memcpy(certs->ca, path, sizeof(path));
  }
  return rv;
}

int main(int argc, char **argv) {
  bench b;
  bench_certs certs;
  bench_djs p;
  figs dj;
  char url[160], why[256] = "";
  double load0[3] = {0}, load1[3] = {0};
  ratios r;
  int dv_ok, djs_ok = 0, djs_rv = -2, have_ratio, ok;

  memset(&b, 0, sizeof(b));
  memset(&p, 0, sizeof(p));
  memset(&dj, 0, sizeof(dj));
  memset(&r, 0, sizeof(r));
  parse_opts(argc, argv, &b.o);
  if (getloadavg(load0, 3) < 0) {
    load0[0] = load0[1] = load0[2] = NAN;
  }
  if (bench_certs_make(&certs) != 0) {
    return 1;
  }
  if (b.o.system_ca && make_bundle(&certs) != 0) {
    fprintf(stderr, "bench_join: cannot write the CA bundle\n");
    bench_certs_remove(&certs);
    return 1;
  }
  if (sim_start(&b, &certs) != 0) {
    fprintf(stderr, "bench_join: cannot start the simulator\n");
    bench_certs_remove(&certs);
    return 1;
  }
  snprintf(url, sizeof(url), "%s/?v=10&encoding=json",
           dv_sim_gw_uv_url(b.gsim));
  uv_loop_init(&b.loop);
  uv_timer_init(&b.loop, &b.tick);
  uv_timer_start(&b.tick, on_tick, 100, 100);

  djs_rv = run_both(&b, &certs, url, &p, &dv_ok, why, sizeof(why));
  djs_ok = djs_rv == 0;
  if (!b.o.djs) {
    snprintf(why, sizeof(why), "--no-djs");
  }
  for (char *c = why; *c != 0; c++) {
    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) {
      *c = '\'';
    }
  }
  if (djs_ok) {
    for (unsigned i = 0; i < p.steps; i++) {
      figs_add(&dj, p.step_rows[i]);
    }
    dj.cpu = p.cpu_ms;
    memset(&p.cpu_ms, 0, sizeof(p.cpu_ms));
  }
  uv_close((uv_handle_t *)&b.tick, NULL);
  uv_run(&b.loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&b.loop) != 0) {
    fprintf(stderr, "bench_join: handles left on the loop\n");
    dv_ok = 0;
  }
  sim_stop(&b);
  if (getloadavg(load1, 3) < 0) {
    load1[0] = load1[1] = load1[2] = NAN;
  }

  have_ratio = dv_ok && djs_ok;
  if (have_ratio) {
    ratios_of(&r, &b.dv, &dj);
  } else if (!dv_ok) {
    snprintf(why, sizeof(why), "dvoice's joins failed");
  }
  printf("# join latency, wss:// for both (TLS 1.2, trusting %s), %u joins "
         "each after %u warm-up, %s; dvoice %s; discord.js %s\n",
         b.o.system_ca ? "the system bundle + the simulator's CA"
                       : "the simulator's CA",
         b.o.n, b.o.warmup, b.o.sequential ? "sequential" : "interleaved",
         dvoice_version(), djs_ok ? p.version : "(not run)");
  printf("# load average %.2f %.2f %.2f before, %.2f %.2f %.2f after\n",
         load0[0], load0[1], load0[2], load1[0], load1[1], load1[2]);
  if (djs_ok) {
    printf("# discord.js: %u of %u VOICE_SERVER_UPDATEs held for the state "
           "update (its known ordering bug)\n",
           p.reordered, b.o.n + b.o.warmup);
  }
  print_table(&b.dv, &dj, &r, have_ratio, why);
  printf("# simulator violations: %zu\n", b.violations);

  printf("{\"bench\":\"join\",\"transport\":\"wss\",\"ca\":\"%s\","
         "\"order\":\"%s\",\"joins\":%u,\"warmup\":%u,\"loadavg_before\":[%.2f,"
         "%.2f,%.2f],"
         "\"loadavg_after\":[%.2f,%.2f,%.2f],\"dvoice\":",
         b.o.system_ca ? "system+sim" : "sim",
         b.o.sequential ? "sequential" : "interleaved", b.o.n, b.o.warmup,
         load0[0], load0[1], load0[2], load1[0], load1[1], load1[2]);
  json_figs(&b.dv);
  printf(",\"djs\":");
  if (djs_ok) {
    printf("{\"version\":\"%s\",\"reordered\":%u,\"figs\":", p.version,
           p.reordered);
    json_figs(&dj);
    printf("}");
  } else {
    printf("null");
  }
  printf(",");
  json_ratios(&r, have_ratio);
  printf(",\"target\":0.20,\"ratio_missing\":");
  if (have_ratio) {
    printf("null");
  } else {
    printf("\"%s\"", why);
  }
  /* Missing peers are not a failure: dvoice's half stands alone. */
  ok = dv_ok && djs_rv != -1 && b.violations == 0;
  printf(",\"violations\":%zu,\"ok\":%s}\n", b.violations,
         ok ? "true" : "false");
  figs_free(&b.dv);
  figs_free(&dj);
  bench_djs_free(&p);
  bench_certs_remove(&certs);
  return ok ? 0 : 1;
}
