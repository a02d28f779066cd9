/*
 * dvoice-play: plays an Ogg Opus file, a WAV file or raw PCM into a Discord
 * voice channel, or into the embedded simulator (--sim).
 *
 * It is also the library's worked example, on the public API only: a
 * dvoice_client with its built-in main gateway (the bot token; the bot's
 * user id comes from READY), one join, one pull source that hands the
 * pacer a frame exactly when it is due, a refill that reads input outside
 * the pacer's tick, a live progress line from the statistics, and a clean
 * leave on Ctrl-C. Run it with --help for the options.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <opus/opus.h>
#include <uv.h>

#include <dvoice/dvoice.h>

#include "play_reader.h"
#include "play_tone.h"

#include <jansson.h>

#ifdef DVOICE_PLAY_SIM
#include <dvoice/sim.h>
#endif

/* Exit codes (documented in --help and the README). */
#define EXIT_OK 0
#define EXIT_INTERNAL 1
#define EXIT_USAGE 2
#define EXIT_INPUT 3
#define EXIT_JOIN 4
#define EXIT_DISCONNECTED 5
#define EXIT_VERDICT 6
#define EXIT_INTERRUPTED 130

/* Frames buffered ahead of the pacer: 2 s. */
#define FIFO_FRAMES 100
/* The simulator's listener keeps at most this much decoded audio. */
#define LISTEN_MAX_SAMPLES (48000 * 30)

#define SIM_GUILD 111111111111111111ull
#define SIM_CHANNEL 222222222222222222ull
#define SIM_USER 333333333333333333ull
#define SIM_LISTENER 444444444444444444ull

typedef struct options {
  const char *path; /* "-" for stdin */
  play_format fmt;
  uint64_t guild, channel;
  const char *gateway;
  const char *ca_file;
  int32_t bitrate;
  int sim, quiet, verbose;
} options;

/* Milestones of the join, in the order they happen. */
enum {
  MS_START = 0,
  MS_JOIN,
  MS_GW_OPEN,
  MS_GW_READY,
  MS_OP4,
  MS_VOICE_EVENTS,
  MS_WS_OPEN,
  MS_READY,
  MS_IPDISC,
  MS_SELECT,
  MS_SESSION,
  MS_FIRST_PACKET,
  MS_COUNT
};

static const char *const ms_names[MS_COUNT] = {
    "start",
    "join requested",
    "main gateway WebSocket open",
    "main gateway READY",
    "op 4 Voice State Update sent",
    "VOICE_STATE_UPDATE + VOICE_SERVER_UPDATE received",
    "voice WebSocket open",
    "Ready",
    "IP discovery done",
    "Select Protocol sent",
    "Session Description",
    "first packet sent",
};

struct app;

/* One bot in the channel: its client (with the built-in main gateway) and
 * its connection. */
typedef struct member {
  struct app *a;
  int listener;
  uint64_t user_id; /* from READY */
  dvoice_client *cl;
  dvoice_conn *conn;
  int started, gw_ready, ready, closing, done;
} member;

typedef struct app {
  uv_loop_t *loop;
  options opt;
  int tty;
  uint64_t t0;
  /* Input. */
  play_reader *rd;
  FILE *file;
  uv_pipe_t pipe;
  int use_pipe, pipe_reading, pipe_open;
  uint8_t slab[65536]; /* pipe read buffer */
  int input_done;      /* the reader returned PLAY_END */
  uv_idle_t refill;
  int refill_open;
  play_frame fifo[FIFO_FRAMES];
  size_t fifo_head, fifo_len;
  play_frame cur; /* the frame handed to the pacer (borrowed by it) */
  uint64_t total_frames;
  uint64_t underruns;
  int starving;
  /* The bot playing, and in --sim a second member listening. */
  member play, listen;
  uint64_t guild, channel;
  const char *gw_url, *token, *ca_file;
  dvoice_conn *conn; /* play.conn while open */
  dvoice_conn_state state;
  int was_ready, playing, finished, leaving;
  int closing_all, all_closed;
  uint64_t ms_at[MS_COUNT];
  char ms_note[MS_COUNT][96];
  dvoice_conn_stats final_stats;
  int have_final_stats;
  uint64_t silence_mark;
  uv_timer_t ui, linger;
  int ui_open, linger_open;
  uv_signal_t sigint;
  int sig_open, linger_ticks;
  int exit_code;
  size_t progress_width;
  /* Simulator verdict. */
  void *sim; /* dvoice_sim */
  int have_verdict;
  uint64_t v_received, v_decrypted, v_decoded, v_silence, v_decrypt_fail,
      v_decode_fail;
  size_t v_violations;
  uint64_t v_op4;
  char v_mode[48];
  OpusDecoder *dec;
  int16_t *heard;
  size_t nheard;
  uint64_t heard_packets, heard_errors;
} app;

static void maybe_finish(app *a);
static void start_leave(app *a, const char *why);

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

static double secs_since(const app *a, uint64_t t) {
  return (double)(t - a->t0) / 1e9;
}

/* Clears the progress line on a terminal before other output. */
static void clear_progress(app *a) {
  if (a->tty && a->progress_width > 0) {
    fprintf(stderr, "\r%*s\r", (int)a->progress_width, "");
    a->progress_width = 0;
  }
}

static void note(app *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(app *a, const char *fmt, ...) {
  va_list ap;
  clear_progress(a);
  fprintf(stderr, "dvoice-play: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void milestone(app *a, int which, const char *detail) {
  if (a->ms_at[which] != 0) {
    return;
  }
  a->ms_at[which] = uv_hrtime();
  if (detail != NULL) {
    snprintf(a->ms_note[which], sizeof(a->ms_note[which]), "%s", detail);
  }
  if (!a->opt.quiet) {
    clear_progress(a);
    printf("[%8.3f s] %s%s%s\n", secs_since(a, a->ms_at[which]),
           ms_names[which], detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
  }
}

/* The library's log lines name each step of the handshake; the timeline is
 * read from them so that it shows what the library did, when it did it. */
static void on_log(void *ud, dvoice_log_level level, const char *line,
                   size_t len) {
  app *a = ud;
  const char *p;
  (void)len;
  /* The main gateway's WebSocket opens first; the voice one after both
   * voice dispatches arrived. */
  if (strstr(line, ": WebSocket open") != NULL &&
      strncmp(line, "uv: ", 4) == 0) {
    milestone(a, a->ms_at[MS_VOICE_EVENTS] != 0 ? MS_WS_OPEN : MS_GW_OPEN,
              NULL);
  } else if ((p = strstr(line, "voice: ready, ")) != NULL) {
    milestone(a, MS_READY, p + strlen("voice: ready, "));
  } else if ((p = strstr(line, "conn: ip discovery done")) != NULL) {
    milestone(a, MS_IPDISC, NULL);
  } else if ((p = strstr(line, "voice: select protocol ")) != NULL) {
    milestone(a, MS_SELECT, p + strlen("voice: select protocol "));
  } else if ((p = strstr(line, "voice: session ready, ")) != NULL) {
    milestone(a, MS_SESSION, p + strlen("voice: session ready, "));
  }
  if (level <= DVOICE_LOG_WARN ||
      (a->opt.verbose && level <= DVOICE_LOG_INFO) || a->opt.verbose > 1) {
    clear_progress(a);
    fprintf(stderr, "dvoice: %s\n", line);
  }
}

static void format_time(char *out, size_t n, double s) {
  int m = (int)(s / 60.0);
  snprintf(out, n, "%d:%04.1f", m, s - m * 60.0);
}

static void progress(app *a, int final) {
  dvoice_conn_stats st;
  char el[32], tot[32], line[256];
  int n;
  if (a->opt.quiet || a->conn == NULL) {
    return;
  }
  dvoice_conn_get_stats(a->conn, &st);
  format_time(el, sizeof(el),
              (double)(st.packets_sent - st.silence_sent) * 0.02);
  if (a->total_frames > 0) {
    format_time(tot, sizeof(tot), (double)a->total_frames * 0.02);
  } else {
    snprintf(tot, sizeof(tot), "?");
  }
  n = snprintf(line, sizeof(line),
               "%s / %s  %" PRIu64 " packets  %" PRIu64
               " late  p99 %.2f ms  %s%s",
               el, tot, st.packets_sent, st.late_ticks,
               (double)st.lateness_p99 / 1e6, dvoice_conn_state_name(a->state),
               a->underruns ? "  (input underruns)" : "");
  if (n < 0) {
    return;
  }
  if (a->tty) {
    fprintf(stderr, "\r%s", line);
    if ((size_t)n < a->progress_width) {
      fprintf(stderr, "%*s", (int)(a->progress_width - (size_t)n), "");
    }
    a->progress_width = (size_t)n;
    if (final) {
      fputc('\n', stderr);
      a->progress_width = 0;
    }
  } else {
    fprintf(stderr, "dvoice-play: %s\n", line);
  }
  fflush(stderr);
}

/* ------------------------------------------------------------------------ */
/* Input                                                                    */
/* ------------------------------------------------------------------------ */

static void input_failed(app *a) {
  note(a, "%s: %s", a->opt.path, play_reader_error(a->rd));
  if (a->exit_code == EXIT_OK) {
    a->exit_code = EXIT_INPUT;
  }
  a->input_done = 1;
  start_leave(a, "input error");
}

/* Moves parsed frames into the FIFO. Returns 1 while it has room. */
static int drain_reader(app *a) {
  while (a->fifo_len < FIFO_FRAMES && !a->input_done) {
    play_frame *f = &a->fifo[(a->fifo_head + a->fifo_len) % FIFO_FRAMES];
    int rv = play_reader_next(a->rd, f);
    if (rv == PLAY_FRAME) {
      a->fifo_len++;
    } else if (rv == PLAY_END) {
      a->input_done = 1;
    } else if (rv == PLAY_ERROR) {
      input_failed(a);
      return 0;
    } else {
      return 1; /* needs more bytes */
    }
  }
  return a->fifo_len < FIFO_FRAMES;
}

/* Reads the file until the FIFO is full; runs outside the pacer's tick. */
static void fill_from_file(app *a) {
  uint8_t buf[16384];
  while (drain_reader(a) && !a->input_done) {
    size_t n = fread(buf, 1, sizeof(buf), a->file);
    if (n > 0 && play_reader_feed(a->rd, buf, n) != 0) {
      input_failed(a);
      return;
    }
    if (n < sizeof(buf)) {
      if (ferror(a->file)) {
        note(a, "%s: read error: %s", a->opt.path, strerror(errno));
        a->exit_code = EXIT_INPUT;
        a->input_done = 1;
        start_leave(a, "read error");
        return;
      }
      play_reader_eof(a->rd);
    }
  }
}

static void on_pipe_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  app *a = h->data;
  (void)size;
  /* One read at a time: the bytes are copied into the reader at once. */
  *buf = uv_buf_init((char *)a->slab, sizeof(a->slab));
}

static void on_pipe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  app *a = s->data;
  if (nread > 0) {
    if (play_reader_feed(a->rd, (const uint8_t *)buf->base, (size_t)nread)) {
      input_failed(a);
      return;
    }
  } else if (nread == UV_EOF) {
    play_reader_eof(a->rd);
    uv_read_stop(s);
    a->pipe_reading = 0;
  } else if (nread < 0) {
    note(a, "stdin: %s", uv_strerror((int)nread));
    a->exit_code = EXIT_INPUT;
    play_reader_eof(a->rd);
    uv_read_stop(s);
    a->pipe_reading = 0;
  }
  /* Backpressure: stop reading while the FIFO is full. */
  if (!drain_reader(a) && a->pipe_reading) {
    uv_read_stop(s);
    a->pipe_reading = 0;
  }
}

static void refill(app *a) {
  if (a->input_done || a->rd == NULL) {
    return;
  }
  if (a->use_pipe) {
    if (drain_reader(a) && !a->pipe_reading && a->pipe_open && !a->input_done) {
      if (uv_read_start((uv_stream_t *)&a->pipe, on_pipe_alloc, on_pipe_read) ==
          0) {
        a->pipe_reading = 1;
      }
    }
  } else {
    fill_from_file(a);
  }
}

static void on_refill(uv_idle_t *h) {
  app *a = h->data;
  uv_idle_stop(h);
  refill(a);
  maybe_finish(a);
}

static int open_input(app *a) {
  const char *p = a->opt.path;
  a->rd = play_reader_new(a->opt.fmt);
  if (a->rd == NULL) {
    note(a, "out of memory");
    return EXIT_INTERNAL;
  }
  if (strcmp(p, "-") == 0) {
    uv_handle_type t = uv_guess_handle(0);
    if (t == UV_TTY) {
      note(a, "stdin is a terminal; pipe audio into it, e.g. ffmpeg -i IN "
              "-f s16le -ar 48000 -ac 2 - | dvoice-play --pcm -");
      return EXIT_USAGE;
    }
    if (t == UV_NAMED_PIPE) {
      if (uv_pipe_init(a->loop, &a->pipe, 0) != 0 ||
          uv_pipe_open(&a->pipe, 0) != 0) {
        note(a, "stdin: cannot open as a pipe");
        return EXIT_INPUT;
      }
      a->pipe.data = a;
      a->pipe_open = 1;
      a->use_pipe = 1;
      return 0;
    }
    a->file = stdin; /* a redirected regular file */
  } else {
    a->file = fopen(p, "rb");
    if (a->file == NULL) {
      note(a, "%s: %s", p, strerror(errno));
      return EXIT_INPUT;
    }
  }
  /* The total duration, for the progress line: from the data size (WAV,
   * raw) or the last page's granule position (Ogg). */
  if (a->file != stdin && fseek(a->file, 0, SEEK_END) == 0) {
    long size = ftell(a->file);
    uint8_t head[12], *tail;
    size_t nh;
    rewind(a->file);
    nh = fread(head, 1, sizeof(head), a->file);
    rewind(a->file);
    if (a->opt.fmt == PLAY_FMT_RAW && size > 0) {
      a->total_frames =
          ((uint64_t)size + PLAY_PCM_FRAME_BYTES - 1) / PLAY_PCM_FRAME_BYTES;
    } else if (nh >= 4 && memcmp(head, "OggS", 4) == 0 && size > 0) {
      long tl = size < 65536 ? size : 65536;
      tail = malloc((size_t)tl);
      if (tail != NULL && fseek(a->file, size - tl, SEEK_SET) == 0 &&
          fread(tail, 1, (size_t)tl, a->file) == (size_t)tl) {
        int64_t g = play_ogg_last_granule(tail, (size_t)tl);
        if (g > 0) {
          a->total_frames =
              ((uint64_t)g + PLAY_FRAME_SAMPLES - 1) / PLAY_FRAME_SAMPLES;
        }
      }
      free(tail);
      rewind(a->file);
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

/* The pacer calls this exactly when a frame is due. It only pops the FIFO;
 * reading happens in the idle refill, outside the tick. */
static int source(dvoice_conn *c, dvoice_source_frame *out, void *ud) {
  app *a = ud;
  (void)c;
  if (a->ms_at[MS_FIRST_PACKET] == 0 && a->cur.len > 0) {
    dvoice_conn_stats st;
    dvoice_conn_get_stats(a->conn, &st);
    if (st.packets_sent > 0) {
      milestone(a, MS_FIRST_PACKET, NULL);
    }
  }
  if (a->fifo_len == 0) {
    if (!a->input_done && !a->starving && a->cur.len > 0) {
      a->underruns++;
      a->starving = 1;
    }
    out->kind = DVOICE_SOURCE_NOTHING;
  } else {
    a->starving = 0;
    a->cur = a->fifo[a->fifo_head];
    a->fifo_head = (a->fifo_head + 1) % FIFO_FRAMES;
    a->fifo_len--;
    if (a->cur.kind == PLAY_KIND_OPUS) {
      out->kind = DVOICE_SOURCE_OPUS;
      out->len = a->cur.len;
    } else {
      out->kind = DVOICE_SOURCE_PCM_S16;
    }
    out->data = a->cur.data;
  }
  if (a->refill_open && !a->input_done && a->fifo_len < FIFO_FRAMES / 2) {
    uv_idle_start(&a->refill, on_refill);
  }
  if (a->fifo_len == 0 && a->input_done && a->refill_open) {
    uv_idle_start(&a->refill, on_refill); /* lets maybe_finish run */
  }
  return 0;
}

static void on_stream(dvoice_conn *c, int active, void *ud) {
  app *a = ud;
  (void)c;
  if (!active) {
    maybe_finish(a);
  }
}

/* ------------------------------------------------------------------------ */
/* Leaving and closing                                                      */
/* ------------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h) {
  (void)h;
}

static void close_handles(app *a) {
  if (a->ui_open) {
    uv_close((uv_handle_t *)&a->ui, on_handle_closed);
    a->ui_open = 0;
  }
  if (a->linger_open) {
    uv_close((uv_handle_t *)&a->linger, on_handle_closed);
    a->linger_open = 0;
  }
  if (a->sig_open) {
    uv_close((uv_handle_t *)&a->sigint, on_handle_closed);
    a->sig_open = 0;
  }
  if (a->refill_open) {
    uv_close((uv_handle_t *)&a->refill, on_handle_closed);
    a->refill_open = 0;
  }
  if (a->pipe_open) {
    uv_close((uv_handle_t *)&a->pipe, on_handle_closed);
    a->pipe_open = 0;
  }
}

/* ------------------------------------------------------------------------ */
/* The simulator's verdict                                                  */
/* ------------------------------------------------------------------------ */

#ifdef DVOICE_PLAY_SIM
static void on_sim_closed(dvoice_sim *sim, void *ud) {
  (void)sim;
  (void)ud;
}

static uint64_t jget(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

/* Reads the simulator's report: the media counters of every voice session
 * of the playing bot (there is more than one after a move). */
static void read_report(app *a) {
  dvoice_sim *sim = a->sim;
  long n = dvoice_sim_report(sim, NULL, 0);
  char *buf;
  json_t *root, *voice;
  size_t i, j;
  char uid[24];
  if (n <= 0 || (buf = malloc((size_t)n + 1)) == NULL) {
    return;
  }
  dvoice_sim_report(sim, buf, (size_t)n + 1);
  root = json_loadb(buf, (size_t)n, 0, NULL);
  free(buf);
  if (root == NULL) {
    return;
  }
  snprintf(uid, sizeof(uid), "%" PRIu64, a->play.user_id);
  /* op 4 messages the bot's main gateway sessions sent (join, leave). */
  voice = json_object_get(json_object_get(root, "gateway"), "sessions");
  for (i = 0; i < json_array_size(voice); i++) {
    json_t *s = json_array_get(voice, i);
    const char *u = json_string_value(json_object_get(s, "user_id"));
    if (u != NULL && strcmp(u, uid) == 0) {
      a->v_op4 += jget(s, "voice_state_updates");
    }
  }
  voice = json_object_get(root, "voice");
  for (i = 0; i < json_array_size(voice); i++) {
    json_t *ss = json_object_get(json_array_get(voice, i), "sessions");
    for (j = 0; j < json_array_size(ss); j++) {
      json_t *s = json_array_get(ss, j), *m = json_object_get(s, "media");
      const char *u = json_string_value(json_object_get(s, "user_id"));
      const char *mode = json_string_value(json_object_get(s, "mode"));
      if (u == NULL || strcmp(u, uid) != 0 || m == NULL) {
        continue;
      }
      a->v_received += jget(m, "received");
      a->v_decrypted += jget(m, "decrypted");
      a->v_decoded += jget(m, "decoded");
      a->v_silence += jget(m, "silence_frames");
      a->v_decrypt_fail += jget(m, "decrypt_failures");
      a->v_decode_fail += jget(m, "decode_failures");
      if (mode != NULL && mode[0]) {
        snprintf(a->v_mode, sizeof(a->v_mode), "%s", mode);
      }
    }
  }
  json_decref(root);
  a->v_violations = dvoice_sim_violation_count(sim);
  a->have_verdict = 1;
}

/* Prints the simulator's verdict and returns nonzero if it failed. */
static int sim_verdict(app *a) {
  double share = 0, hz;
  int ok;
  if (!a->have_verdict) {
    printf("simulator verdict: FAIL (no report)\n");
    return 1;
  }
  hz = play_dominant_freq(a->heard, a->nheard, 50.0, 8000.0, &share);
  ok = a->v_received > 0 && a->v_decrypt_fail == 0 &&
       a->v_decrypted == a->v_received && a->v_decode_fail == 0 &&
       a->v_decoded == a->v_decrypted && a->v_violations == 0 &&
       a->heard_errors == 0 && a->v_op4 >= 2;
  printf("simulator: main gateway got %" PRIu64 " op 4 Voice State Updates "
         "from the bot (join and leave)\n",
         a->v_op4);
  printf("simulator: %" PRIu64 " packets received, %" PRIu64
         " decrypted, %" PRIu64 " decoded (%" PRIu64
         " silence frames), %" PRIu64 " decrypt failures, %" PRIu64
         " decode failures, %zu protocol violations, mode %s\n",
         a->v_received, a->v_decrypted, a->v_decoded, a->v_silence,
         a->v_decrypt_fail, a->v_decode_fail, a->v_violations,
         a->v_mode[0] ? a->v_mode : "none");
  printf("listener: %" PRIu64 " packets heard, %.2f s decoded, dominant "
         "frequency %.0f Hz (%.0f%% of the energy)\n",
         a->heard_packets, (double)a->nheard / 48000.0, hz, share * 100.0);
  printf("simulator verdict: %s: %" PRIu64 " packets, all %s, dominant "
         "frequency %.0f Hz\n",
         ok ? "PASS" : "FAIL", a->v_received,
         ok ? "decrypted and decoded" : "NOT decrypted and decoded", hz);
  return !ok;
}
#endif

/* ------------------------------------------------------------------------ */
/* Leaving and closing                                                      */
/* ------------------------------------------------------------------------ */

static void check_all_closed(app *a) {
  if (a->all_closed || !a->closing_all || !a->play.done || !a->listen.done) {
    return;
  }
  a->all_closed = 1;
#ifdef DVOICE_PLAY_SIM
  if (a->sim != NULL) {
    read_report(a);
    dvoice_sim_close(a->sim, on_sim_closed, a);
  }
#endif
  close_handles(a);
}

/* The client's close also ends its main gateway session (close 1000). */
static void member_client_closed(dvoice_client *cl, void *ud) {
  member *m = ud;
  (void)cl;
  m->cl = NULL;
  m->done = 1;
  check_all_closed(m->a);
}

static void member_conn_closed(member *m) {
  m->conn = NULL;
  if (m->cl != NULL) {
    dvoice_client_close(m->cl, member_client_closed);
  } else {
    member_client_closed(NULL, m);
  }
}

/* Close callbacks get the connection's user_data, the app. */
static void play_conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  member_conn_closed(&((app *)ud)->play);
}

static void listen_conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  member_conn_closed(&((app *)ud)->listen);
}

/* Leaves the channel (op 4 with a null channel) and closes the connection,
 * then the client and its gateway, each after the previous one. */
static void member_close(member *m) {
  void (*cb)(dvoice_conn *, void *) =
      m->listener ? listen_conn_closed : play_conn_closed;
  if (m->closing) {
    return;
  }
  m->closing = 1;
  if (!m->started) {
    m->done = 1;
    return;
  }
  if (m->conn != NULL) {
    dvoice_conn *c = m->conn;
    if (dvoice_client_leave(m->cl, c, cb) != 0 &&
        dvoice_conn_close(c, cb) != 0) {
      member_conn_closed(m);
    }
    return;
  }
  member_conn_closed(m);
}

static void close_all(app *a) {
  if (a->closing_all) {
    return;
  }
  a->closing_all = 1;
  if (a->conn != NULL && !a->have_final_stats) {
    dvoice_conn_get_stats(a->conn, &a->final_stats);
    a->have_final_stats = 1;
  }
  progress(a, 1);
  a->conn = NULL;
  member_close(&a->play);
  member_close(&a->listen);
  check_all_closed(a);
}

/* Waits for the five silence frames to leave (at most 400 ms), then
 * leaves. */
static void on_linger(uv_timer_t *t) {
  app *a = t->data;
  dvoice_conn_stats st;
  dvoice_conn_get_stats(a->conn, &st);
  if (st.silence_sent >= a->silence_mark + 5 || ++a->linger_ticks > 20) {
    uv_timer_stop(t);
    close_all(a);
  }
}

static void start_leave(app *a, const char *why) {
  dvoice_conn_stats st;
  if (a->leaving) {
    return;
  }
  a->leaving = 1;
  if (a->conn == NULL || a->state != DVOICE_CONN_READY) {
    close_all(a);
    return;
  }
  if (!a->opt.quiet && why != NULL) {
    note(a, "leaving (%s)", why);
  }
  /* Stop the stream (five silence frames), then leave once they left. */
  dvoice_conn_get_stats(a->conn, &st);
  a->silence_mark = st.silence_sent;
  if (a->fifo_len > 0 || !a->input_done) {
    a->fifo_len = 0;
    a->input_done = 1;
    dvoice_conn_stop(a->conn);
  } else if (!a->playing) {
    a->silence_mark = st.silence_sent - 5; /* nothing was playing */
  }
  if (uv_timer_init(a->loop, &a->linger) == 0) {
    a->linger.data = a;
    a->linger_open = 1;
    uv_timer_start(&a->linger, on_linger, 20, 20);
  } else {
    close_all(a);
  }
}

/* Ends playback once the input is exhausted and the stream has ended. */
static void maybe_finish(app *a) {
  if (a->finished || !a->playing || !a->input_done || a->fifo_len > 0) {
    return;
  }
  a->finished = 1;
  start_leave(a, NULL);
}

static void on_sigint(uv_signal_t *s, int signum) {
  app *a = s->data;
  (void)signum;
  if (a->exit_code == EXIT_OK) {
    a->exit_code = EXIT_INTERRUPTED;
  }
  if (a->leaving) {
    note(a, "interrupted again: closing now");
    close_all(a);
    return;
  }
  start_leave(a, "interrupted");
}

static void on_ui(uv_timer_t *t) {
  progress(t->data, 0);
}

/* ------------------------------------------------------------------------ */
/* The connections                                                          */
/* ------------------------------------------------------------------------ */

static void maybe_play(app *a) {
  if (a->playing || a->leaving || a->state != DVOICE_CONN_READY) {
    return;
  }
  if (a->opt.sim && !a->listen.ready) {
    return; /* play once the listener is in the channel too */
  }
  a->playing = 1;
  dvoice_conn_play(a->conn);
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  app *a = ud;
  (void)c;
  a->state = ev->state;
  if (a->opt.verbose ||
      (ev->state != DVOICE_CONN_CONNECTING && ev->state != DVOICE_CONN_READY &&
       ev->state != DVOICE_CONN_DISCONNECTED && !a->opt.quiet)) {
    note(a, "connection %s -> %s%s%s", dvoice_conn_state_name(ev->old_state),
         dvoice_conn_state_name(ev->state), ev->reason ? ", " : "",
         ev->reason ? dvoice_conn_reason_name(ev->reason) : "");
    if (ev->close_code != 0) {
      note(a, "  close code %d %s", ev->close_code, ev->close_reason);
    }
  }
  switch (ev->state) {
    case DVOICE_CONN_READY:
      a->was_ready = 1;
      a->play.ready = 1;
      maybe_play(a);
      break;
    case DVOICE_CONN_DISCONNECTED:
      if (a->leaving) {
        break;
      }
      if (a->exit_code == EXIT_OK) {
        a->exit_code = a->was_ready ? EXIT_DISCONNECTED : EXIT_JOIN;
      }
      note(a, "%s: %s (close code %d%s%s)",
           a->was_ready ? "disconnected" : "join failed",
           dvoice_conn_reason_name(ev->reason), ev->close_code,
           ev->err ? ", " : "", ev->err ? dvoice_strerror(ev->err) : "");
      a->leaving = 1;
      close_all(a);
      break;
    default:
      break;
  }
}

/* What a main gateway close code means to someone running the tool. */
static const char *gateway_close_hint(int code) {
  switch (code) {
    case 4004:
      return ": authentication failed (check DISCORD_TOKEN)";
    case 4010:
    case 4011:
      return ": sharding required or invalid";
    case 4012:
      return ": invalid API version";
    case 4013:
    case 4014:
      return ": intents refused (GUILD_VOICE_STATES is needed)";
    default:
      return "";
  }
}

/* The client's main gateway: READY names the bot, and op 4 of a join
 * made before it goes out right then. */
static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  member *m = ud;
  app *a = m->a;
  char detail[64];
  (void)cl;
  if (a->opt.verbose) {
    note(a, "%smain gateway %s (close code %d)",
         m->listener ? "listener: " : "", dvoice_gateway_state_name(ev->state),
         ev->close_code);
  }
  switch (ev->state) {
    case DVOICE_GATEWAY_READY:
      m->gw_ready = 1;
      m->user_id = ev->user_id;
      if (!m->listener) {
        snprintf(detail, sizeof(detail), "bot user id %" PRIu64, ev->user_id);
        milestone(a, MS_GW_READY, detail);
        if (m->conn != NULL) {
          milestone(a, MS_OP4, a->ms_note[MS_JOIN]);
        }
      }
      break;
    case DVOICE_GATEWAY_RESUMING:
      if (!a->opt.quiet && !a->opt.verbose) {
        note(a, "%smain gateway reconnecting to resume (close code %d)",
             m->listener ? "listener: " : "", ev->close_code);
      }
      break;
    case DVOICE_GATEWAY_DISCONNECTED:
      if (a->leaving || m->closing) {
        break;
      }
      note(a, "%smain gateway gave up (close code %d%s)",
           m->listener ? "listener: " : "", ev->close_code,
           gateway_close_hint(ev->close_code));
      if (a->exit_code == EXIT_OK) {
        a->exit_code = a->was_ready ? EXIT_DISCONNECTED : EXIT_JOIN;
      }
      a->leaving = 1;
      close_all(a);
      break;
    case DVOICE_GATEWAY_CONNECTING:
      break;
  }
}

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  member *m = ud;
  app *a = m->a;
  char detail[96];
  (void)cl;
  (void)c;
  if (a->opt.verbose) {
    note(a, "%s join %s -> %s", m->listener ? "listener" : "player",
         dvoice_join_state_name(ev->old_state),
         dvoice_join_state_name(ev->state));
  }
  if (!m->listener) {
    switch (ev->state) {
      case DVOICE_JOIN_SIGNALLING:
        snprintf(detail, sizeof(detail), "guild %" PRIu64 " channel %" PRIu64,
                 ev->guild_id, ev->channel_id);
        milestone(a, MS_JOIN, detail);
        if (m->gw_ready) {
          milestone(a, MS_OP4, detail);
        }
        break;
      case DVOICE_JOIN_CONNECTED:
        milestone(a, MS_VOICE_EVENTS, NULL);
        break;
      default:
        break;
    }
  }
  if (ev->state == DVOICE_JOIN_ENDED && !a->leaving && !m->closing) {
    note(a, "%sjoin ended: %s%s", m->listener ? "listener: " : "",
         dvoice_join_reason_name(ev->reason),
         ev->reason == DVOICE_JOIN_REASON_TIMEOUT && !m->gw_ready
             ? " (the main gateway never became READY: unreachable?)"
             : "");
    if (a->exit_code == EXIT_OK) {
      a->exit_code = a->was_ready ? EXIT_DISCONNECTED : EXIT_JOIN;
    }
    a->leaving = 1;
    close_all(a);
  }
}

#ifdef DVOICE_PLAY_SIM
static void listener_state(dvoice_conn *c, const dvoice_conn_event *ev,
                           void *ud) {
  app *a = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY) {
    a->listen.ready = 1;
    maybe_play(a);
  }
}

/* The listener is a second member of the simulated channel: it decodes
 * what the simulator forwards, so the verdict checks the audio from the
 * outside, after encryption, forwarding and decryption. */
static void listener_opus(dvoice_conn *c, const dvoice_opus_packet *pkt,
                          void *ud) {
  app *a = ud;
  int n;
  (void)c;
  a->heard_packets++;
  if (a->dec == NULL || a->heard == NULL ||
      a->nheard + 5760 > LISTEN_MAX_SAMPLES) {
    return;
  }
  n = opus_decode(a->dec, pkt->data, (opus_int32)pkt->len,
                  a->heard + 2 * a->nheard, 5760, 0);
  if (n < 0) {
    a->heard_errors++;
  } else {
    a->nheard += (size_t)n;
  }
}
#endif

/*
 * Starts a member: a client with the built-in main gateway (the bot's user
 * id is learnt from READY, so only the token is needed) and, at once, its
 * join: the client sends op 4 as soon as the gateway is READY.
 */
static int member_start(app *a, member *m, const char *token) {
  dvoice_client_settings s;
  dvoice_client_callbacks ccb;
  dvoice_conn_settings cs;
  dvoice_conn_callbacks cb;
  int rv;
  m->a = a;
  dvoice_conn_settings_default(&cs);
  cs.tls.ca_file = a->ca_file;
  cs.opus_bitrate = a->opt.bitrate;
  dvoice_client_settings_default(&s);
  if (!m->listener) {
    /* Debug lines feed the timeline; on_log prints what the options ask. */
    s.env.log = on_log;
    s.env.log_user_data = a;
    s.env.log_level = DVOICE_LOG_DEBUG;
    cs.env = s.env;
  }
  s.token = token;
  s.gateway_url = a->gw_url; /* NULL: Discord's */
  s.conn = &cs;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_join = on_join;
  ccb.on_gateway = on_gateway;
  rv = dvoice_client_new(&m->cl, a->loop, &s, &ccb, m);
  if (rv != 0) {
    m->cl = NULL;
    if (rv == DVOICE_ERR_INVALID_ARGUMENT) {
      note(a, "%s: check --gateway and DISCORD_TOKEN", dvoice_strerror(rv));
      return EXIT_USAGE;
    }
    note(a, "cannot start the client: %s", dvoice_strerror(rv));
    return EXIT_INTERNAL;
  }
  m->started = 1;
  memset(&cb, 0, sizeof(cb));
  if (m->listener) {
#ifdef DVOICE_PLAY_SIM
    cb.on_state = listener_state;
    cb.on_opus = listener_opus;
#endif
  } else {
    cb.on_state = on_state;
    cb.on_stream = on_stream;
    cb.source = source;
  }
  rv = dvoice_client_join(m->cl, a->guild, a->channel, 0, &cb, a, &m->conn);
  if (rv != 0) {
    note(a, "cannot join: %s", dvoice_strerror(rv));
    m->conn = NULL;
    return EXIT_JOIN;
  }
  if (!m->listener) {
    a->conn = m->conn;
  }
  return 0;
}

#ifdef DVOICE_PLAY_SIM
#define SIM_PLAY_TOKEN "dvoice-play.sim.token"
#define SIM_LISTEN_TOKEN "dvoice-play.listener.token"

static int start_sim(app *a) {
  dvoice_sim *sim;
  int rv, err;
  rv = dvoice_sim_start(a->loop, NULL, &sim);
  if (rv != 0) {
    note(a, "simulator: %s", dvoice_strerror(rv));
    return EXIT_INTERNAL;
  }
  a->sim = sim;
  if (dvoice_sim_add_bot(sim, SIM_PLAY_TOKEN, SIM_USER) != 0 ||
      dvoice_sim_add_bot(sim, SIM_LISTEN_TOKEN, SIM_LISTENER) != 0) {
    note(a, "simulator: cannot register the bots");
    return EXIT_INTERNAL;
  }
  a->gw_url = dvoice_sim_gateway_url(sim);
  a->ca_file = dvoice_sim_ca_file(sim);
  a->token = SIM_PLAY_TOKEN;
  if (a->guild == 0) {
    a->guild = SIM_GUILD;
  }
  if (a->channel == 0) {
    a->channel = SIM_CHANNEL;
  }
  if (!a->opt.quiet) {
    printf("simulator: main gateway %s, voice server %s\n", a->gw_url,
           dvoice_sim_voice_endpoint(sim, 0));
  }
  a->dec = opus_decoder_create(48000, 2, &err);
  a->heard = malloc(sizeof(int16_t) * 2 * LISTEN_MAX_SAMPLES);
  a->listen.listener = 1;
  rv = member_start(a, &a->listen, SIM_LISTEN_TOKEN);
  return rv;
}
#endif

/* ------------------------------------------------------------------------ */
/* Arguments                                                                */
/* ------------------------------------------------------------------------ */

static const char usage_text[] =
    "usage: dvoice-play [options] FILE          play an Ogg Opus or WAV file\n"
    "       dvoice-play [options] --raw FILE    play raw s16le 48 kHz stereo\n"
    "       dvoice-play [options] --pcm -       play raw PCM from stdin\n"
    "\n"
    "Plays audio into a Discord voice channel, paced at one 20 ms packet\n"
    "per tick, and leaves the channel when the input ends.\n"
    "\n"
    "Input:\n"
    "  FILE          Ogg Opus (.opus/.ogg): packets are sent untouched; they\n"
    "                must last 20 ms (40/60 ms packets are split, others\n"
    "                are refused). WAV: 16-bit PCM, 48000 Hz, mono or\n"
    "                stereo (mono is duplicated); encoded with libopus.\n"
    "  --raw FILE    raw PCM, signed 16-bit little-endian, 48 kHz, stereo.\n"
    "  --pcm FILE    the same; FILE \"-\" reads stdin, e.g.\n"
    "                ffmpeg -i song.mp3 -f s16le -ar 48000 -ac 2 - |\n"
    "                  dvoice-play --pcm - --guild G --channel C\n"
    "\n"
    "Where to play:\n"
    "  --guild ID    the guild (server) id\n"
    "  --channel ID  the voice channel id\n"
    "                The bot token is read from the environment variable\n"
    "                DISCORD_TOKEN (never printed; a \"Bot \" prefix is\n"
    "                accepted). The bot connects to the main gateway with\n"
    "                it and learns its own user id from READY.\n"
    "  --gateway URL main gateway URL (default wss://gateway.discord.gg)\n"
    "  --ca-file PEM trusted CA certificates for wss:// (default: the\n"
    "                system bundle)\n"
    "  --sim         start the embedded simulator (a fake Discord on\n"
    "                127.0.0.1) and play into it; no token or ids needed.\n"
    "                Prints the join timeline and the simulator's verdict:\n"
    "                packets received, decrypted, decoded, and the dominant\n"
    "                frequency a second member of the channel heard.\n"
    "\n"
    "Sending:\n"
    "  --bitrate BPS Opus bitrate for PCM and WAV input (6000..510000,\n"
    "                default 64000); Ogg Opus packets are not re-encoded.\n"
    "\n"
    "Output:\n"
    "  --quiet       no progress line and no timeline (errors and the\n"
    "                summary are still printed)\n"
    "  --verbose     also print the library's log lines (twice: debug)\n"
    "  --help        this text\n"
    "\n"
    "On a terminal a progress line (elapsed / total, packets, late ticks,\n"
    "p99 lateness, connection state) is refreshed in place; otherwise\n"
    "plain lines are logged. Ctrl-C leaves the channel properly (five\n"
    "silence frames, op 4 with a null channel, close); a second Ctrl-C\n"
    "closes at once.\n"
    "\n"
    "Exit status:\n"
    "  0    played to the end and left\n"
    "  1    internal error (out of memory, libuv failure)\n"
    "  2    bad arguments\n"
    "  3    unreadable or unsupported input\n"
    "  4    join failure (the main gateway or the voice connection never\n"
    "       became READY: bad token, unreachable, no voice server)\n"
    "  5    disconnected after joining\n"
    "  6    --sim: the simulator's verdict failed\n"
    "  130  interrupted by Ctrl-C (left properly)\n";

static int parse_id(const char *s, uint64_t *out) {
  char *end;
  unsigned long long v;
  if (s == NULL || *s < '0' || *s > '9') {
    return -1;
  }
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v == 0) {
    return -1;
  }
  *out = v;
  return 0;
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "dvoice-play: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'dvoice-play --help'.\n");
  return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, options *o) {
  int i;
  memset(o, 0, sizeof(*o));
  o->bitrate = 64000;
  for (i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
      fputs(usage_text, stdout);
      return -1;
    } else if (strcmp(s, "--sim") == 0) {
      o->sim = 1;
    } else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
      o->quiet = 1;
    } else if (strcmp(s, "--verbose") == 0 || strcmp(s, "-v") == 0) {
      o->verbose++;
    } else if (strcmp(s, "--raw") == 0 || strcmp(s, "--pcm") == 0) {
      if (v == NULL) {
        return usage_error("%s needs a file (\"-\" for stdin)", s);
      }
      if (o->path != NULL) {
        return usage_error("more than one input (%s)", v);
      }
      o->path = v;
      o->fmt = PLAY_FMT_RAW;
      i++;
    } else if (strcmp(s, "--guild") == 0 || strcmp(s, "--channel") == 0) {
      uint64_t id;
      if (parse_id(v, &id) != 0) {
        return usage_error("%s needs a numeric id", s);
      }
      if (s[2] == 'g') {
        o->guild = id;
      } else {
        o->channel = id;
      }
      i++;
    } else if (strcmp(s, "--gateway") == 0 || strcmp(s, "--ca-file") == 0) {
      if (v == NULL) {
        return usage_error("%s needs a value", s);
      }
      if (s[2] == 'g') {
        o->gateway = v;
      } else {
        o->ca_file = v;
      }
      i++;
    } else if (strcmp(s, "--bitrate") == 0) {
      char *end;
      long b = v ? strtol(v, &end, 10) : 0;
      if (v == NULL || *end != '\0' || b < 6000 || b > 510000) {
        return usage_error("--bitrate needs a number from 6000 to 510000");
      }
      o->bitrate = (int32_t)b;
      i++;
    } else if (s[0] == '-' && s[1] != '\0') {
      return usage_error("unknown option %s", s);
    } else {
      if (o->path != NULL) {
        return usage_error("more than one input (%s)", s);
      }
      o->path = s;
      o->fmt = PLAY_FMT_AUTO;
    }
  }
  if (o->path == NULL) {
    return usage_error("no input given");
  }
  if (strcmp(o->path, "-") == 0 && o->fmt == PLAY_FMT_AUTO) {
    return usage_error("stdin needs --pcm - (raw s16le 48 kHz stereo)");
  }
  if (!o->sim) {
    if (o->guild == 0 || o->channel == 0) {
      return usage_error("--guild and --channel are required (or --sim)");
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Main                                                                     */
/* ------------------------------------------------------------------------ */

static void print_summary(app *a) {
  const dvoice_conn_stats *st = &a->final_stats;
  const play_reader_info *in = a->rd ? play_reader_get_info(a->rd) : NULL;
  if (a->have_final_stats) {
    printf("summary: %" PRIu64 " packets sent (%" PRIu64
           " silence) in %.1f s of audio, %" PRIu64 " late ticks, "
           "lateness p50 %.3f ms p99 %.3f ms max %.3f ms, deficit %" PRIu64
           ", %" PRIu64 " send errors, %" PRIu64 " input underruns\n",
           st->packets_sent, st->silence_sent,
           (double)(st->packets_sent - st->silence_sent) * 0.02, st->late_ticks,
           (double)st->lateness_p50 / 1e6, (double)st->lateness_p99 / 1e6,
           (double)st->lateness_max / 1e6, st->deficit, st->send_errors,
           a->underruns);
  }
  if (in != NULL && in->format != PLAY_FMT_AUTO) {
    printf("input: %s, %" PRIu64 " frames", play_format_name(in->format),
           in->frames);
    if (in->split_packets) {
      printf(", %" PRIu64 " long packets split", in->split_packets);
    }
    if (in->holes || in->skipped_bytes) {
      printf(", %" PRIu64 " gaps, %" PRIu64 " bytes skipped", in->holes,
             in->skipped_bytes);
    }
    if (in->padded_frames) {
      printf(", last frame padded");
    }
    if (in->dropped_bytes) {
      printf(", %" PRIu64 " trailing bytes dropped", in->dropped_bytes);
    }
    if (in->converted_mono) {
      printf(", mono duplicated to stereo");
    }
    printf("\n");
  }
}

int main(int argc, char **argv) {
  static app a; /* large (the FIFO); one per process */
  uv_loop_t loop;
  int rv;

  rv = parse_args(argc, argv, &a.opt);
  if (rv != 0) {
    return rv < 0 ? EXIT_OK : rv;
  }
  if (uv_loop_init(&loop) != 0) {
    return EXIT_INTERNAL;
  }
  a.loop = &loop;
  a.tty = isatty(2);
  a.t0 = uv_hrtime();
  a.state = DVOICE_CONN_CONNECTING;

  rv = open_input(&a);
  if (rv == 0) {
    /* Fail fast on a bad header, before joining anything. */
    refill(&a);
    if (a.use_pipe || a.exit_code != 0) {
      rv = a.exit_code;
    }
  }
  if (rv != 0) {
    close_handles(&a);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    play_reader_free(a.rd);
    return rv;
  }
  if (a.total_frames == 0 && a.rd != NULL) {
    a.total_frames = play_reader_get_info(a.rd)->total_frames;
  }
  if (a.opt.fmt != PLAY_FMT_RAW &&
      play_reader_get_info(a.rd)->format == PLAY_FMT_OGG &&
      a.opt.bitrate != 64000 && !a.opt.quiet) {
    note(&a, "--bitrate ignored: Ogg Opus packets are sent as they are");
  }

  uv_idle_init(&loop, &a.refill);
  a.refill.data = &a;
  a.refill_open = 1;
  uv_signal_init(&loop, &a.sigint);
  a.sigint.data = &a;
  a.sig_open = 1;
  uv_signal_start(&a.sigint, on_sigint, SIGINT);
  uv_timer_init(&loop, &a.ui);
  a.ui.data = &a;
  a.ui_open = 1;
  if (!a.opt.quiet) {
    uv_timer_start(&a.ui, on_ui, a.tty ? 200 : 5000, a.tty ? 200 : 5000);
  }

  milestone(&a, MS_START, a.opt.sim ? "embedded simulator" : NULL);
  rv = 0;
  a.guild = a.opt.guild;
  a.channel = a.opt.channel;
  a.ca_file = a.opt.ca_file;
  a.gw_url = a.opt.gateway;
  if (a.opt.sim) {
#ifdef DVOICE_PLAY_SIM
    rv = start_sim(&a);
#else
    note(&a, "--sim: this build has no simulator (configure with tests)");
    rv = EXIT_USAGE;
#endif
  } else {
    a.token = getenv("DISCORD_TOKEN");
    if (a.token != NULL && strncmp(a.token, "Bot ", 4) == 0) {
      a.token += 4; /* the library adds the prefix itself */
    }
    if (a.token == NULL || *a.token == '\0') {
      note(&a, "DISCORD_TOKEN is not set");
      rv = EXIT_USAGE;
    }
  }
  if (rv == 0) {
    rv = member_start(&a, &a.play, a.token);
  }
  if (rv != 0) {
    a.exit_code = rv;
    close_all(&a);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  print_summary(&a);
#ifdef DVOICE_PLAY_SIM
  if (a.opt.sim && a.play.started) {
    if (sim_verdict(&a) && a.exit_code == EXIT_OK) {
      a.exit_code = EXIT_VERDICT;
    }
  }
#endif
  if (a.dec != NULL) {
    opus_decoder_destroy(a.dec);
  }
  free(a.heard);
  if (uv_loop_close(&loop) != 0) {
    note(&a, "internal: handles left on the loop");
    if (a.exit_code == EXIT_OK) {
      a.exit_code = EXIT_INTERNAL;
    }
  }
  play_reader_free(a.rd);
  if (a.file != NULL && a.file != stdin) {
    fclose(a.file);
  }
  return a.exit_code;
}
