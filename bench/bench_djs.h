/*
 * discord.js as a benchmark peer: registers the sessions its driver script
 * (test/interop/peers/djs_voice.js) joins with, runs the script under Node
 * on the caller's loop, and collects what it reports. Lets a benchmark run
 * discord.js and dvoice side by side against one simulator in one process.
 */
#ifndef BENCH_DJS_H
#define BENCH_DJS_H

#include <stdint.h>

#include <uv.h>

#include "../test/sim/sim_vgw.h"
#include "bench_common.h"

/* The identities djs_voice.js uses: connection i joins guild
 * BENCH_DJS_GUILD_BASE + i as BENCH_DJS_USER with session
 * "BENCH_DJS_PREFIX-s<i>" and token "BENCH_DJS_PREFIX-t<i>". */
#define BENCH_DJS_GUILD_BASE "41771983423143900"
#define BENCH_DJS_USER "104694319306248192"
#define BENCH_DJS_PREFIX "djsb"

/* gwjoin: the steps bench/peers/djs_join.js times per join (its STEPS
 * line), from joinVoiceChannel(): op 4 sent, both voice dispatches, DNS
 * lookup, TCP connected, TLS handshake done, voice WS open, Hello, Identify
 * sent, Ready, IP discovery answered, Select Protocol sent, Session
 * Description, VoiceConnectionStatus.Ready. */
#define BENCH_DJS_NSTEPS 13

typedef struct bench_djs_settings {
  /* "play" (default), "join" (fake adapter, sessions registered with
   * bench_djs_register) or "gwjoin" (djs_join.js: through the simulator's
   * main gateway; |n| measured joins after |warmup| ones). */
  const char *mode;
  unsigned n;           /* connections (play) or joins (join) */
  const char *endpoint; /* the simulator's "127.0.0.1:PORT" */
  const char *ca;       /* PEM file that signed the simulator's cert */
  const char *ogg;      /* play: the Ogg Opus file every connection plays */
  /* NULL: $DVOICE_NPM_PEERS, else SOURCE/.npm-peers. */
  const char *peers;
  /* NULL: SOURCE/test/interop/peers/djs_voice.js, or for gwjoin
   * SOURCE/bench/peers/djs_join.js. */
  const char *script;
  /* gwjoin: the main gateway's URL, the bot's token and user id, the guild
   * and channel to join, warm-up joins. */
  const char *gateway;
  const char *token;
  uint64_t user, guild, channel;
  unsigned warmup;
  /* gwjoin: the script waits for a "JOIN" line on its stdin before each
   * join (bench_djs_command) and prints IDLE once it left, so that a
   * benchmark can interleave its own joins with discord.js's. */
  int paced;
  /* play: a file the script writes its RTP send times to (NULL: none). */
  const char *departures;
  uint64_t timeout_ms; /* the script is killed after this long */
  int verbose;         /* copy its lines to stderr */
} bench_djs_settings;

typedef struct bench_djs {
  /* Results, valid once |exited|. */
  int exited, timed_out, term_signal;
  int64_t exit_status;
  char version[128];  /* "@discordjs/voice version node version" */
  char transport[64]; /* the encryption mode it chose */
  unsigned ready, played, errors, done;
  uint64_t packets_played; /* summed over connections */
  bench_samples ready_ms;  /* per connection: join to Ready */
  bench_samples join_ms;   /* join mode: per join */
  /* gwjoin: one row per measured join: the ms from joinVoiceChannel() to
   * each step, negative if the step was not seen. */
  double (*step_rows)[BENCH_DJS_NSTEPS];
  /* gwjoin: per measured join, the Node process's CPU time (user +
   * system, every thread) from joinVoiceChannel() to Ready, ms. */
  bench_samples cpu_ms;
  unsigned steps, step_cap;
  /* gwjoin: the script's main gateway is READY (GWREADY); joins it
   * finished, leave included (IDLE lines, paced mode). */
  int gw_ready;
  unsigned idle;
  /* gwjoin: VOICE_SERVER_UPDATEs the script held back until the state
   * update was in (@discordjs/voice needs that order). */
  unsigned reordered;
  /* Private. */
  uv_process_t proc;
  uv_pipe_t out;
  uv_pipe_t in; /* paced mode: the script's stdin */
  int have_in;
  uv_timer_t watchdog;
  int open, verbose;
  char line[4096];
  size_t linelen;
  char rbuf[4096];
} bench_djs;

/* Registers |count| sessions on |vgw| as above. Returns 0 or a dvoice
 * error code. */
int bench_djs_register(dv_sim_vgw *vgw, unsigned count);
/* Starts the script. Returns 0, or -1 (spawn failed; message on stderr;
 * bench_djs_close is still needed). */
int bench_djs_start(bench_djs *d, uv_loop_t *loop, const bench_djs_settings *s);
/* Paced mode: writes |line| and a newline to the script's stdin. Returns
 * 0, or -1 (not paced, or the pipe refused it). */
int bench_djs_command(bench_djs *d, const char *line);
/* Nonzero if the script finished cleanly (exit 0, DONE, no ERROR line). */
int bench_djs_ok(const bench_djs *d);
/*
 * Reads a departures file the script wrote (one line per connection:
 * index, then the send time of each RTP packet in ns) and adds each
 * connection as a stream to |a|, skipping |skip| packets each. Returns the
 * number of streams read, or -1 (file unreadable, malformed, or out of
 * memory).
 */
int bench_djs_read_departures(const char *path, bench_arrivals *a, size_t skip,
                              uint64_t period_ns);
/* Closes the handles; run the loop until d->open is 0, then call
 * bench_djs_free. */
void bench_djs_close(bench_djs *d);
void bench_djs_free(bench_djs *d);

#endif
