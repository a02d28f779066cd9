/*
 * bench_djs_pacing: discord.js (@discordjs/voice, run by Node 22 from
 * .npm-peers) against the simulator, measured on the simulator's side
 * exactly as bench_pacing measures dvoice.
 *
 *   bench_djs_pacing [--n N] [--seconds S] [--skip P] [--decode] [--xchacha]
 *   bench_djs_pacing --mode join [--k K]
 *
 * pace (default): N connections (one guild each) play an S-second Ogg Opus
 *   tone at once; the simulator records every packet's arrival time, and
 *   the program prints the lateness of each packet behind its stream's
 *   ideal 20 ms grid (p50/p99/p99.9/max), the inter-arrival deviation and
 *   the drift, pooled over the N streams (the first P packets of each
 *   stream skipped), as a table and one JSON line; the same statistics
 *   over the times discord.js handed each packet to its UDP socket
 *   (departures, recorded inside Node) come first. --decode also has the
 *   simulator Opus-decode every packet (it adds work to the measuring side,
 *   so it is off by default).
 * join: K joins one after the other; for each, the time from
 *   joinVoiceChannel() to the Ready state (Session Description in hand), as
 *   measured inside Node; prints median, p95 and max.
 *
 * --xchacha: the simulator offers only XChaCha20-Poly1305 (default: its
 * usual list, AES-256-GCM first, which discord.js takes).
 * Other options: --peers DIR (default $DVOICE_NPM_PEERS, else
 * SOURCE/.npm-peers), --script PATH (default SOURCE/test/interop/peers/
 * djs_voice.js), --verbose (the peer's lines on stderr).
 * Exit status: 0 on success, 1 if anything failed (a peer error, a packet the
 * simulator could not decrypt, a missing packet).
 *
 * The statistics are bench_common's bench_arrivals and the peer is
 * bench_djs, so a benchmark of dvoice can measure both the same way in one
 * run (register dvoice's sessions and bench_djs's on one simulator).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "../test/interop/dvt_ogg.h"
#include "../test/sim/sim_uv.h"
#include "bench_common.h"
#include "bench_djs.h"

#define PERIOD_NS (20 * DVOICE_MS)

typedef struct opts {
  const char *mode;
  unsigned n, k, seconds, skip;
  int decode, verbose, xchacha;
  const char *peers, *script;
} opts;

static void usage(void) {
  fprintf(stderr,
          "usage: bench_djs_pacing [--mode pace|join] [--n N] [--seconds S]\n"
          "         [--k K] [--skip P] [--decode] [--xchacha] [--peers DIR]\n"
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
    if (strcmp(a, "--xchacha") == 0) {
      o->xchacha = 1;
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
  char ogg[256], dep[256];
  uv_loop_t loop;
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_vgw *vgw;
  bench_djs p;
  bench_djs_settings ds;
  totals t;
  bench_arrivals arr, dep_arr;
  int join = 0, ok = 1, sim_closed = 0;
  unsigned count;
  uint32_t frames;

  parse_opts(argc, argv, &o);
  join = strcmp(o.mode, "join") == 0;
  count = join ? o.k : o.n;
  frames = o.seconds * 50;
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
  if (o.xchacha) {
    /* A server without AES-GCM: discord.js falls back to XChaCha20. */
    st.vgw.modes[0] = "aead_xchacha20_poly1305_rtpsize";
    st.vgw.nmodes = 1;
  }
  if (dv_sim_uv_new(&loop, &st, &sim) != 0) {
    fprintf(stderr, "bench: cannot start the simulator\n");
    return 1;
  }
  vgw = dv_sim_uv_vgw(sim);
  if (bench_djs_register(vgw, count) != 0) {
    fprintf(stderr, "bench: cannot register the sessions\n");
    return 1;
  }
  memset(&ds, 0, sizeof(ds));
  ds.mode = join ? "join" : "play";
  ds.n = count;
  ds.endpoint = dv_sim_uv_endpoint(sim);
  ds.ca = certs.ca;
  ds.ogg = join ? NULL : ogg;
  snprintf(dep, sizeof(dep), "%s/departures.txt", certs.dir);
  ds.departures = join ? NULL : dep;
  ds.peers = o.peers;
  ds.script = o.script;
  ds.timeout_ms =
      (uint64_t)o.seconds * 1000 + 60000 + (join ? (uint64_t)o.k * 2000 : 0);
  ds.verbose = o.verbose;
  if (bench_djs_start(&p, &loop, &ds) != 0) {
    ok = 0;
  }
  while (!p.exited) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  if (!bench_djs_ok(&p)) {
    fprintf(stderr,
            "bench: the discord.js peer failed (status %" PRId64
            ", signal %d, %u errors, done %u)\n",
            p.exit_status, p.term_signal, p.errors, p.done);
    ok = 0;
  }

  sum_sessions(vgw, &t);
  if (t.decrypt_failures != 0 || t.missing != 0 || t.violations != 0 ||
      (!join && t.received != p.packets_played)) {
    ok = 0;
  }
  printf("# discord.js %s, transport %s, %s mode, N=%u\n",
         p.version[0] ? p.version : "?", p.transport[0] ? p.transport : "?",
         o.mode, count);
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
    /* The same statistics over the send times discord.js recorded (the
     * departures, before the kernel and the simulator's loop). */
    bench_arrivals_init(&dep_arr);
    if (bench_djs_read_departures(dep, &dep_arr, o.skip, PERIOD_NS) !=
        (int)o.n) {
      fprintf(stderr, "bench: no usable departures file %s\n", dep);
      ok = 0;
    }
    bench_arrivals_header(stdout);
    snprintf(label, sizeof(label), "djs N=%u %us departure", o.n, o.seconds);
    bench_arrivals_row(&dep_arr, label, stdout);
    snprintf(label, sizeof(label), "djs N=%u %us arrival", o.n, o.seconds);
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
           p.version, p.transport, o.n, o.seconds, o.skip);
    bench_arrivals_json(&arr, stdout);
    printf(",\"departures\":");
    bench_arrivals_json(&dep_arr, stdout);
    printf(",\"ready_ms\":{\"p50\":%.4f,\"max\":%.4f},\"received\":%" PRIu64
           ",\"played\":%" PRIu64 ",\"decrypt_failures\":%" PRIu64
           ",\"decode_failures\":%" PRIu64 ",\"missing\":%" PRIu64
           ",\"ts_errors\":%" PRIu64 ",\"violations\":%u,\"ok\":%s}\n",
           bench_samples_quantile(&p.ready_ms, 0.5),
           bench_samples_quantile(&p.ready_ms, 1.0), t.received,
           p.packets_played, t.decrypt_failures, t.decode_failures, t.missing,
           t.ts_errors, t.violations, ok ? "true" : "false");
    bench_arrivals_free(&arr);
    bench_arrivals_free(&dep_arr);
  }

  bench_djs_close(&p);
  dv_sim_uv_close(sim, on_sim_closed, &sim_closed);
  while (!sim_closed || p.open > 0) {
    uv_run(&loop, UV_RUN_ONCE);
  }
  if (uv_loop_close(&loop) != 0) {
    fprintf(stderr, "bench: handles left on the loop\n");
    ok = 0;
  }
  bench_djs_free(&p);
  bench_certs_remove(&certs);
  return ok ? 0 : 1;
}
