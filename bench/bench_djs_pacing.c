/*
 * bench_djs_pacing: discord.js (@discordjs/voice, run by Node 22 from
 * .npm-peers) against the simulator, measured on the simulator's side
 * exactly as bench_pacing measures dvoice.
 *
 *   bench_djs_pacing [--n N] [--seconds S] [--skip P] [--decode]
 *   bench_djs_pacing --mode join [--k K]
 *
 * pace (default): N connections (one guild each) play an S-second Ogg Opus
 *   tone at once; the simulator records every packet's arrival time, and
 *   the program prints the lateness of each packet behind its stream's
 *   ideal 20 ms grid (p50/p99/p99.9/max), the inter-arrival deviation and
 *   the drift, pooled over the N streams (the first P packets of each
 *   stream skipped), as a table and one JSON line. --decode also has the
 *   simulator Opus-decode every packet (it adds work to the measuring side,
 *   so it is off by default).
 * join: K joins one after the other; for each, the time from
 *   joinVoiceChannel() to the Ready state (Session Description in hand), as
 *   measured inside Node; prints median, p95 and max.
 *
 * Other options: --peers DIR (default $DVOICE_NPM_PEERS, else
 * SOURCE/.npm-peers), --script PATH (default SOURCE/test/interop/peers/
 * djs_voice.js), --verbose (the peer's lines on stderr).
 * Exit status: 0 on success, 1 if anything failed (a peer error, a packet the
 * simulator could not decrypt, a missing packet).
 */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "../test/interop/dvt_ogg.h"
#include "../test/sim/sim_uv.h"
#include "bench_common.h"

#ifndef DVOICE_SOURCE_ROOT
#define DVOICE_SOURCE_ROOT "."
#endif

#define GUILD_BASE "41771983423143900"
#define USER "104694319306248192"
#define PREFIX "djsb"
#define PERIOD_NS (20 * DVOICE_MS)

typedef struct opts {
  const char *mode;
  unsigned n, k, seconds, skip;
  int decode, verbose;
  const char *peers, *script;
} opts;

typedef struct peer {
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t watchdog;
  int exited, open, timed_out;
  int64_t status;
  int signal;
  char line[4096];
  size_t linelen;
  char rbuf[4096];
  /* What the script reported. */
  char version[128];
  char tmode[64];
  unsigned ready, played, errors, done;
  uint64_t packets_played;
  bench_samples ready_ms, join_ms;
  int verbose;
} peer;

static void usage(void) {
  fprintf(stderr,
          "usage: bench_djs_pacing [--mode pace|join] [--n N] [--seconds S]\n"
          "         [--k K] [--skip P] [--decode] [--peers DIR]\n"
          "         [--script PATH] [--verbose]\n");
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
  static char peers[512], script[512];
  memset(o, 0, sizeof(*o));
  o->mode = "pace";
  o->n = 1;
  o->k = 20;
  o->seconds = 10;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--decode") == 0) {
      o->decode = 1;
      continue;
    }
    if (strcmp(a, "--verbose") == 0) {
      o->verbose = 1;
      continue;
    }
    if (v == NULL) {
      usage();
    }
    i++;
    if (strcmp(a, "--mode") == 0) {
      o->mode = v;
    } else if (strcmp(a, "--n") == 0) {
      o->n = parse_uint(v, 1, 1000);
    } else if (strcmp(a, "--k") == 0) {
      o->k = parse_uint(v, 1, 10000);
    } else if (strcmp(a, "--seconds") == 0) {
      o->seconds = parse_uint(v, 1, 3600);
    } else if (strcmp(a, "--skip") == 0) {
      o->skip = parse_uint(v, 0, 100000);
    } else if (strcmp(a, "--peers") == 0) {
      o->peers = v;
    } else if (strcmp(a, "--script") == 0) {
      o->script = v;
    } else {
      usage();
    }
  }
  if (strcmp(o->mode, "pace") != 0 && strcmp(o->mode, "join") != 0) {
    usage();
  }
  if (o->peers == NULL) {
    o->peers = getenv("DVOICE_NPM_PEERS");
  }
  if (o->peers == NULL || *o->peers == 0) {
    snprintf(peers, sizeof(peers), "%s/.npm-peers", DVOICE_SOURCE_ROOT);
    o->peers = peers;
  }
  if (o->script == NULL) {
    snprintf(script, sizeof(script), "%s/test/interop/peers/djs_voice.js",
             DVOICE_SOURCE_ROOT);
    o->script = script;
  }
}

/* ---- the Node peer ------------------------------------------------------ */

static void on_line(peer *p, char *l) {
  unsigned idx;
  unsigned long ssrc;
  double ms;
  char mode[64];
  unsigned long long n;
  if (p->verbose) {
    fprintf(stderr, "[djs] %s\n", l);
  }
  if (strncmp(l, "VERSION ", 8) == 0) {
    snprintf(p->version, sizeof(p->version), "%s", l + 8);
  } else if (sscanf(l, "READY %u %lu %63s %lf", &idx, &ssrc, mode, &ms) == 4) {
    p->ready++;
    snprintf(p->tmode, sizeof(p->tmode), "%s", mode);
    (void)bench_samples_add(&p->ready_ms, ms);
  } else if (sscanf(l, "PLAYED %u %llu", &idx, &n) == 2) {
    p->played++;
    p->packets_played += n;
  } else if (sscanf(l, "JOIN %u %lf", &idx, &ms) == 2) {
    (void)bench_samples_add(&p->join_ms, ms);
  } else if (strcmp(l, "DONE") == 0) {
    p->done = 1;
  } else if (strncmp(l, "ERROR", 5) == 0) {
    p->errors++;
    fprintf(stderr, "discord.js: %s\n", l);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  peer *p = h->data;
  (void)hint;
  *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  peer *p = s->data;
  if (n < 0) {
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      p->line[p->linelen] = 0;
      on_line(p, p->line);
      p->linelen = 0;
    } else if (p->linelen + 1 < sizeof(p->line)) {
      p->line[p->linelen++] = c;
    }
  }
}

static void on_closed(uv_handle_t *h) {
  peer *p = h->data;
  p->open--;
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig) {
  peer *p = proc->data;
  p->exited = 1;
  p->status = status;
  p->signal = sig;
  uv_timer_stop(&p->watchdog);
}

static void on_watchdog(uv_timer_t *t) {
  peer *p = t->data;
  fprintf(stderr, "bench: the discord.js peer ran too long; killing it\n");
  p->timed_out = 1;
  uv_process_kill(&p->proc, SIGTERM);
}

static int peer_start(peer *p, uv_loop_t *loop, const opts *o,
                      const char *const *args, uint64_t timeout_ms) {
  char *argv[32], node_path[600], path_env[1024];
  char *env[3];
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  size_t n = 0;
  const char *path = getenv("PATH");
  int rv;
  argv[n++] = "node";
  argv[n++] = (char *)o->script;
  for (size_t i = 0; args[i] != NULL && n < 31; i++) {
    argv[n++] = (char *)args[i];
  }
  argv[n] = NULL;
  snprintf(node_path, sizeof(node_path), "NODE_PATH=%s/node_modules", o->peers);
  snprintf(path_env, sizeof(path_env), "PATH=%s",
           path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
  env[0] = node_path;
  env[1] = path_env;
  env[2] = NULL;
  p->verbose = o->verbose;
  uv_pipe_init(loop, &p->out, 0);
  uv_timer_init(loop, &p->watchdog);
  p->out.data = p->proc.data = p->watchdog.data = p;
  p->open = 2;
  memset(&po, 0, sizeof(po));
  po.file = "node";
  po.args = argv;
  po.env = env;
  po.exit_cb = on_exit_cb;
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  po.stdio = stdio;
  po.stdio_count = 3;
  rv = uv_spawn(loop, &p->proc, &po);
  p->open++;
  if (rv != 0) {
    fprintf(stderr, "bench: cannot spawn node: %s\n", uv_strerror(rv));
    p->exited = 1;
    p->status = -1;
    return -1;
  }
  uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
  uv_timer_start(&p->watchdog, on_watchdog, timeout_ms, 0);
  return 0;
}

static void peer_close(peer *p) {
  uv_close((uv_handle_t *)&p->out, on_closed);
  uv_close((uv_handle_t *)&p->watchdog, on_closed);
  uv_close((uv_handle_t *)&p->proc, on_closed);
}

/* ---- main --------------------------------------------------------------- */

static void on_sim_closed(dv_sim_uv *sim, void *ud) {
  (void)sim;
  *(int *)ud = 1;
}

/* The media counters summed over every session. */
typedef struct totals {
  uint64_t received, decrypted, decrypt_failures, decoded, decode_failures,
      missing, duplicates, reordered, ts_errors, silence;
  uint32_t violations;
} totals;

static void sum_sessions(dv_sim_vgw *vgw, totals *t) {
  memset(t, 0, sizeof(*t));
  for (size_t i = 0; i < vgw->nsessions; i++) {
    const dv_sim_session *s = vgw->sessions[i];
    const dv_sim_media_stats *m = &s->report.media;
    t->received += m->received;
    t->decrypted += m->decrypted;
    t->decrypt_failures += m->decrypt_failures;
    t->decoded += m->decoded;
    t->decode_failures += m->decode_failures;
    t->missing += m->missing;
    t->duplicates += m->duplicates;
    t->reordered += m->reordered;
    t->ts_errors += m->ts_errors;
    t->silence += m->silence_frames;
    t->violations += (uint32_t)s->report.violations.n;
  }
  t->violations += (uint32_t)vgw->violations.n;
}

int main(int argc, char **argv) {
  opts o;
  bench_certs certs;
  char ogg[256], nbuf[16], guild[32];
  uv_loop_t loop;
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_vgw *vgw;
  peer p;
  totals t;
  bench_arrivals arr;
  int join = 0, ok = 1, sim_closed = 0;
  unsigned count;
  uint32_t frames;

  parse_opts(argc, argv, &o);
  join = strcmp(o.mode, "join") == 0;
  count = join ? o.k : o.n;
  frames = o.seconds * 50;
  snprintf(guild, sizeof(guild), "%s", GUILD_BASE);
  if (bench_certs_make(&certs) != 0) {
    return 1;
  }
  snprintf(ogg, sizeof(ogg), "%s/tone.ogg", certs.dir);
  if (!join && dvt_ogg_tone_write(ogg, frames) != 0) {
    fprintf(stderr, "bench: cannot write %s\n", ogg);
    bench_certs_remove(&certs);
    return 1;
  }
  uv_loop_init(&loop);
  dv_sim_uv_settings_default(&st);
  st.cert_file = certs.cert;
  st.key_file = certs.key;
  st.media.decode_opus = o.decode;
  st.media.forward = 0;
  st.media.max_arrivals = frames + 64;
  if (dv_sim_uv_new(&loop, &st, &sim) != 0) {
    fprintf(stderr, "bench: cannot start the simulator\n");
    return 1;
  }
  vgw = dv_sim_uv_vgw(sim);
  for (unsigned i = 0; i < count; i++) {
    char g[32], sess[32], tok[32];
    /* Guild i is GUILD_BASE + i; the base's last digits leave room. */
    snprintf(g, sizeof(g), "%" PRIu64,
             (uint64_t)strtoull(GUILD_BASE, NULL, 10) + (uint64_t)i);
    snprintf(sess, sizeof(sess), PREFIX "-s%u", i);
    snprintf(tok, sizeof(tok), PREFIX "-t%u", i);
    if (dv_sim_vgw_add_session(vgw, g, USER, sess, tok, NULL) != 0) {
      fprintf(stderr, "bench: cannot register session %u\n", i);
      return 1;
    }
  }
  snprintf(nbuf, sizeof(nbuf), "%u", count);
  {
    const char *args[] = {"--endpoint",
                          dv_sim_uv_endpoint(sim),
                          "--ca",
                          certs.ca,
                          "--ogg",
                          ogg,
                          "--mode",
                          join ? "join" : "play",
                          "--n",
                          nbuf,
                          "--prefix",
                          PREFIX,
                          "--guild-base",
                          guild,
                          "--user",
                          USER,
                          NULL};
    memset(&p, 0, sizeof(p));
    if (peer_start(&p, &loop, &o, args,
                   (uint64_t)o.seconds * 1000 + 60000 +
                       (join ? (uint64_t)o.k * 2000 : 0)) != 0) {
      ok = 0;
    }
  }
  while (!p.exited) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  if (p.status != 0 || p.signal != 0 || p.timed_out || p.errors > 0 ||
      !p.done) {
    fprintf(stderr,
            "bench: the discord.js peer failed (status %" PRId64
            ", signal %d, %u errors, done %u)\n",
            p.status, p.signal, p.errors, p.done);
    ok = 0;
  }

  sum_sessions(vgw, &t);
  if (t.decrypt_failures != 0 || t.missing != 0 || t.violations != 0 ||
      (!join && t.received != p.packets_played)) {
    ok = 0;
  }
  printf("# discord.js %s, transport %s, %s mode, N=%u\n",
         p.version[0] ? p.version : "?", p.tmode[0] ? p.tmode : "?", o.mode,
         count);
  if (join) {
    bench_samples *j = &p.join_ms;
    printf("%-28s %6s %9s %9s %9s %9s\n", "join latency (ms)", "K", "p50",
           "p95", "max", "min");
    printf("%-28s %6zu %9.3f %9.3f %9.3f %9.3f\n", "discord.js join -> Ready",
           j->n, bench_samples_quantile(j, 0.5),
           bench_samples_quantile(j, 0.95), bench_samples_quantile(j, 1.0),
           bench_samples_quantile(j, 0.0));
    printf("{\"bench\":\"djs_join\",\"client\":\"discord.js\","
           "\"version\":\"%s\",\"k\":%zu,\"join_ms\":{\"p50\":%.4f,"
           "\"p95\":%.4f,\"max\":%.4f,\"min\":%.4f},\"violations\":%u,"
           "\"ok\":%s}\n",
           p.version, j->n, bench_samples_quantile(j, 0.5),
           bench_samples_quantile(j, 0.95), bench_samples_quantile(j, 1.0),
           bench_samples_quantile(j, 0.0), t.violations, ok ? "true" : "false");
    if (j->n != o.k) {
      ok = 0;
    }
  } else {
    char label[64];
    bench_arrivals_init(&arr);
    for (size_t i = 0; i < vgw->nsessions; i++) {
      const dvoice_tstamp *times;
      size_t n;
      dv_sim_media_arrivals(dv_sim_uv_media(sim), vgw->sessions[i], &times, &n);
      if (bench_arrivals_add(&arr, times, n, o.skip, PERIOD_NS) != 0) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
      }
    }
    snprintf(label, sizeof(label), "discord.js N=%u %us", o.n, o.seconds);
    bench_arrivals_header(stdout);
    bench_arrivals_row(&arr, label, stdout);
    printf("# sim: received %" PRIu64 " (played %" PRIu64
           "), decrypt failures %" PRIu64 ", decode failures %" PRIu64
           " (decoded %" PRIu64 "), missing %" PRIu64 ", ts errors %" PRIu64
           ", violations %u\n",
           t.received, p.packets_played, t.decrypt_failures, t.decode_failures,
           t.decoded, t.missing, t.ts_errors, t.violations);
    printf("{\"bench\":\"djs_pacing\",\"client\":\"discord.js\","
           "\"version\":\"%s\",\"transport\":\"%s\",\"n\":%u,"
           "\"seconds\":%u,\"skip\":%u,\"arrivals\":",
           p.version, p.tmode, o.n, o.seconds, o.skip);
    bench_arrivals_json(&arr, stdout);
    printf(",\"ready_ms\":{\"p50\":%.4f,\"max\":%.4f},\"received\":%" PRIu64
           ",\"played\":%" PRIu64 ",\"decrypt_failures\":%" PRIu64
           ",\"decode_failures\":%" PRIu64 ",\"missing\":%" PRIu64
           ",\"ts_errors\":%" PRIu64 ",\"violations\":%u,\"ok\":%s}\n",
           bench_samples_quantile(&p.ready_ms, 0.5),
           bench_samples_quantile(&p.ready_ms, 1.0), t.received,
           p.packets_played, t.decrypt_failures, t.decode_failures, t.missing,
           t.ts_errors, t.violations, ok ? "true" : "false");
    bench_arrivals_free(&arr);
  }

  peer_close(&p);
  dv_sim_uv_close(sim, on_sim_closed, &sim_closed);
  while (!sim_closed || p.open > 0) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "bench: handles left on the loop\n");
    ok = 0;
  }
  bench_samples_free(&p.ready_ms);
  bench_samples_free(&p.join_ms);
  bench_certs_remove(&certs);
  return ok ? 0 : 1;
}
