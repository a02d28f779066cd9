#include "bench_djs.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DVOICE_SOURCE_ROOT
#define DVOICE_SOURCE_ROOT "."
#endif

int bench_djs_register(dv_sim_vgw *vgw, unsigned count) {
  for (unsigned i = 0; i < count; i++) {
    char g[32], sess[32], tok[32];
    int rv;
    snprintf(g, sizeof(g), "%" PRIu64,
             (uint64_t)strtoull(BENCH_DJS_GUILD_BASE, NULL, 10) + i);
    snprintf(sess, sizeof(sess), BENCH_DJS_PREFIX "-s%u", i);
    snprintf(tok, sizeof(tok), BENCH_DJS_PREFIX "-t%u", i);
    rv = dv_sim_vgw_add_session(vgw, g, BENCH_DJS_USER, sess, tok, NULL);
    if (rv != 0) {
      return rv;
    }
  }
  return 0;
}

static void on_line(bench_djs *d, char *l) {
  unsigned idx;
  unsigned long ssrc;
  double ms;
  char mode[64];
  unsigned long long n;
  if (d->verbose) {
    fprintf(stderr, "[djs] %s\n", l);
  }
  if (strncmp(l, "VERSION ", 8) == 0) {
    snprintf(d->version, sizeof(d->version), "%s", l + 8);
  } else if (sscanf(l, "READY %u %lu %63s %lf", &idx, &ssrc, mode, &ms) == 4) {
    d->ready++;
    snprintf(d->transport, sizeof(d->transport), "%s", mode);
    (void)bench_samples_add(&d->ready_ms, ms);
  } else if (sscanf(l, "PLAYED %u %llu", &idx, &n) == 2) {
    d->played++;
    d->packets_played += n;
  } else if (strncmp(l, "STEPS ", 6) == 0) {
    double at[BENCH_DJS_NSTEPS];
    char *p = l + 6, *end;
    int k;
    (void)strtoul(p, &end, 10); /* the join's index */
    for (k = 0; k < BENCH_DJS_NSTEPS && end != p; k++) {
      p = end;
      at[k] = strtod(p, &end);
    }
    if (k < BENCH_DJS_NSTEPS || end == p) {
      d->errors++;
      fprintf(stderr, "discord.js: malformed line: %s\n", l);
      return;
    }
    if (d->steps == d->step_cap) {
      unsigned cap = d->step_cap ? d->step_cap * 2 : 64;
      void *nr = realloc(d->step_rows, cap * sizeof(*d->step_rows));
      if (nr == NULL) {
        d->errors++;
        fprintf(stderr, "bench: out of memory\n");
        return;
      }
      d->step_rows = nr;
      d->step_cap = cap;
    }
    memcpy(d->step_rows[d->steps++], at, sizeof(at));
    p = end;
    ms = strtod(p, &end);
    if (end != p) {
      (void)bench_samples_add(&d->cpu_ms, ms);
    }
  } else if (sscanf(l, "REORDERED %u", &idx) == 1) {
    d->reordered = idx;
  } else if (sscanf(l, "JOIN %u %lf", &idx, &ms) == 2) {
    (void)bench_samples_add(&d->join_ms, ms);
  } else if (strcmp(l, "GWREADY") == 0) {
    d->gw_ready = 1;
  } else if (strcmp(l, "IDLE") == 0) {
    d->idle++;
  } else if (strcmp(l, "DONE") == 0) {
    d->done = 1;
  } else if (strncmp(l, "ERROR", 5) == 0) {
    d->errors++;
    fprintf(stderr, "discord.js: %s\n", l);
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  bench_djs *d = h->data;
  (void)hint;
  *buf = uv_buf_init(d->rbuf, sizeof(d->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  bench_djs *d = s->data;
  if (n < 0) {
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < n; i++) {
    char c = buf->base[i];
    if (c == '\n') {
      d->line[d->linelen] = 0;
      on_line(d, d->line);
      d->linelen = 0;
    } else if (d->linelen + 1 < sizeof(d->line)) {
      d->line[d->linelen++] = c;
    }
  }
}

static void on_closed(uv_handle_t *h) {
  bench_djs *d = h->data;
  d->open--;
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int sig) {
  bench_djs *d = proc->data;
  d->exited = 1;
  d->exit_status = status;
  d->term_signal = sig;
  uv_timer_stop(&d->watchdog);
}

static void on_watchdog(uv_timer_t *t) {
  bench_djs *d = t->data;
  fprintf(stderr, "bench: the discord.js peer ran too long; killing it\n");
  d->timed_out = 1;
  uv_process_kill(&d->proc, SIGTERM);
}

int bench_djs_start(bench_djs *d, uv_loop_t *loop,
                    const bench_djs_settings *s) {
  char *argv[40], node_path[600], path_env[1024], nbuf[16], guild[32];
  char wbuf[16], user[32], channel[32];
  char peers[512], script[512];
  char *env[3];
  uv_process_options_t po;
  uv_stdio_container_t stdio[3];
  const char *path = getenv("PATH"), *pp = s->peers;
  const char *mode = s->mode != NULL ? s->mode : "play";
  int gwjoin = strcmp(mode, "gwjoin") == 0;
  size_t n = 0;
  int rv;
  memset(d, 0, sizeof(*d));
  if (pp == NULL) {
    pp = getenv("DVOICE_NPM_PEERS");
  }
  if (pp == NULL || *pp == 0) {
    snprintf(peers, sizeof(peers), "%s/.npm-peers", DVOICE_SOURCE_ROOT);
  } else {
    snprintf(peers, sizeof(peers), "%s", pp);
  }
  if (s->script != NULL) {
    snprintf(script, sizeof(script), "%s", s->script);
  } else if (gwjoin) {
    snprintf(script, sizeof(script), "%s/bench/peers/djs_join.js",
             DVOICE_SOURCE_ROOT);
  } else {
    snprintf(script, sizeof(script), "%s/test/interop/peers/djs_voice.js",
             DVOICE_SOURCE_ROOT);
  }
  snprintf(nbuf, sizeof(nbuf), "%u", s->n);
  snprintf(guild, sizeof(guild), "%s", BENCH_DJS_GUILD_BASE);
  argv[n++] = "node";
  argv[n++] = script;
  if (gwjoin) {
    snprintf(wbuf, sizeof(wbuf), "%u", s->warmup);
    snprintf(user, sizeof(user), "%" PRIu64, s->user);
    snprintf(guild, sizeof(guild), "%" PRIu64, s->guild);
    snprintf(channel, sizeof(channel), "%" PRIu64, s->channel);
    argv[n++] = "--gateway";
    argv[n++] = (char *)s->gateway;
    argv[n++] = "--ca";
    argv[n++] = (char *)s->ca;
    argv[n++] = "--token";
    argv[n++] = (char *)s->token;
    argv[n++] = "--user";
    argv[n++] = user;
    argv[n++] = "--guild";
    argv[n++] = guild;
    argv[n++] = "--channel";
    argv[n++] = channel;
    argv[n++] = "--n";
    argv[n++] = nbuf;
    argv[n++] = "--warmup";
    argv[n++] = wbuf;
    if (s->paced) {
      argv[n++] = "--paced";
    }
    if (s->verbose) {
      argv[n++] = "--debug";
    }
  } else {
    argv[n++] = "--endpoint";
    argv[n++] = (char *)s->endpoint;
    argv[n++] = "--ca";
    argv[n++] = (char *)s->ca;
    argv[n++] = "--mode";
    argv[n++] = (char *)mode;
    argv[n++] = "--n";
    argv[n++] = nbuf;
    argv[n++] = "--prefix";
    argv[n++] = BENCH_DJS_PREFIX;
    argv[n++] = "--guild-base";
    argv[n++] = guild;
    argv[n++] = "--user";
    argv[n++] = BENCH_DJS_USER;
    if (s->ogg != NULL) {
      argv[n++] = "--ogg";
      argv[n++] = (char *)s->ogg;
    }
    if (s->departures != NULL) {
      argv[n++] = "--departures";
      argv[n++] = (char *)s->departures;
    }
  }
  argv[n] = NULL;
  snprintf(node_path, sizeof(node_path), "NODE_PATH=%s/node_modules", peers);
  snprintf(path_env, sizeof(path_env), "PATH=%s",
           path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
  env[0] = node_path;
  env[1] = path_env;
  env[2] = NULL;
  d->verbose = s->verbose;
  uv_pipe_init(loop, &d->out, 0);
  uv_timer_init(loop, &d->watchdog);
  d->out.data = d->proc.data = d->watchdog.data = d;
  d->open = 2;
  memset(&po, 0, sizeof(po));
  po.file = "node";
  po.args = argv;
  po.env = env;
  po.exit_cb = on_exit_cb;
  stdio[0].flags = UV_IGNORE;
  if (gwjoin && s->paced) {
    uv_pipe_init(loop, &d->in, 0);
    d->in.data = d;
    d->have_in = 1;
    d->open++;
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&d->in;
  }
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&d->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  po.stdio = stdio;
  po.stdio_count = 3;
  rv = uv_spawn(loop, &d->proc, &po);
  d->open++; /* the process handle needs closing even after a failure */
  if (rv != 0) {
    fprintf(stderr, "bench: cannot spawn node: %s\n", uv_strerror(rv));
    d->exited = 1;
    d->exit_status = -1;
    return -1;
  }
  uv_read_start((uv_stream_t *)&d->out, on_alloc, on_read);
  uv_timer_start(&d->watchdog, on_watchdog, s->timeout_ms, 0);
  return 0;
}

int bench_djs_read_departures(const char *path, bench_arrivals *a, size_t skip,
                              uint64_t period_ns) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  int streams = 0;
  if (f == NULL) {
    return -1;
  }
  while (getline(&line, &cap, f) > 0 && streams >= 0) {
    dvoice_tstamp *t = NULL;
    size_t n = 0, tcap = 0;
    char *p = line, *end;
    (void)strtoull(p, &end, 10); /* the connection index */
    if (end == p) {
      streams = -1;
      break;
    }
    for (p = end;; p = end) {
      unsigned long long v = strtoull(p, &end, 10);
      if (end == p) {
        break;
      }
      if (n == tcap) {
        size_t nc = tcap ? tcap * 2 : 1024;
        dvoice_tstamp *nt = realloc(t, nc * sizeof(*t));
        if (nt == NULL) {
          streams = -1;
          break;
        }
        t = nt;
        tcap = nc;
      }
      t[n++] = (dvoice_tstamp)v;
    }
    if (streams >= 0 && bench_arrivals_add(a, t, n, skip, period_ns) != 0) {
      streams = -1;
    }
    if (streams >= 0) {
      streams++;
    }
    free(t);
  }
  free(line);
  fclose(f);
  return streams;
}

int bench_djs_ok(const bench_djs *d) {
  return d->exited && d->exit_status == 0 && d->term_signal == 0 &&
         !d->timed_out && d->errors == 0 && d->done;
}

int bench_djs_command(bench_djs *d, const char *line) {
  char buf[64];
  uv_buf_t b;
  int n = snprintf(buf, sizeof(buf), "%s\n", line);
  if (!d->have_in || d->exited || n < 0 || (size_t)n >= sizeof(buf)) {
    return -1;
  }
  /* A short line always fits in an empty pipe: the script reads each one
   * before the next is written. */
  b = uv_buf_init(buf, (unsigned)n);
  return uv_try_write((uv_stream_t *)&d->in, &b, 1) == n ? 0 : -1;
}

void bench_djs_close(bench_djs *d) {
  if (d->have_in) {
    uv_close((uv_handle_t *)&d->in, on_closed);
  }
  uv_close((uv_handle_t *)&d->out, on_closed);
  uv_close((uv_handle_t *)&d->watchdog, on_closed);
  uv_close((uv_handle_t *)&d->proc, on_closed);
}

void bench_djs_free(bench_djs *d) {
  bench_samples_free(&d->ready_ms);
  bench_samples_free(&d->join_ms);
  bench_samples_free(&d->cpu_ms);
  free(d->step_rows);
  d->step_rows = NULL;
}
