/*
 * dvoice-sim: runs the whole simulator (main gateway, two voice gateways,
 * UDP media) on loopback until SIGINT/SIGTERM or "quit", printing its URLs
 * and CA file first and its report last.
 *
 *   dvoice-sim [--port N] [--dir DIR] [--plain] [--bot TOKEN:USER_ID]...
 *              [--guild GUILD_ID:CHANNEL_ID[,CHANNEL_ID...]]...
 *
 * Commands, one per line on stdin (when stdin is a pipe or a terminal):
 *   move USER GUILD CHANNEL | region USER GUILD | kick USER GUILD |
 *   invalidate USER | reconnect USER | drop_acks USER 0|1 |
 *   close_gateway USER CODE | close_voice USER GUILD CODE | report | quit
 * Each command answers "ok" or "error NAME".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <dvoice/dvoice.h>
#include <dvoice/sim.h>

typedef struct app {
  uv_loop_t *loop;
  dvoice_sim *sim;
  uv_signal_t sigint, sigterm;
  uv_pipe_t in;
  int have_in;
  char line[1024];
  size_t linelen;
  int stopping;
} app;

static void print_report(app *a) {
  long n = dvoice_sim_report(a->sim, NULL, 0);
  char *buf;
  if (n < 0 || (buf = malloc((size_t)n + 1)) == NULL) {
    printf("report error\n");
    return;
  }
  dvoice_sim_report(a->sim, buf, (size_t)n + 1);
  printf("report %s\n", buf);
  free(buf);
  fflush(stdout);
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  (void)sim;
  (void)ud;
  printf("closed\n");
  fflush(stdout);
}

static void stop(app *a) {
  if (a->stopping) {
    return;
  }
  a->stopping = 1;
  print_report(a);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  if (a->have_in) {
    uv_close((uv_handle_t *)&a->in, NULL);
  }
  (void)dvoice_sim_close(a->sim, sim_closed, a);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  stop(s->data);
}

static int run_command(app *a, char *line) {
  char cmd[32];
  unsigned long long u = 0, g = 0, x = 0;
  int n = sscanf(line, "%31s %llu %llu %llu", cmd, &u, &g, &x);
  if (n < 1) {
    return 0;
  }
  if (strcmp(cmd, "quit") == 0) {
    stop(a);
    return 0;
  }
  if (strcmp(cmd, "report") == 0) {
    print_report(a);
    return 0;
  }
  if (strcmp(cmd, "move") == 0 && n == 4) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_MOVE, u, g, x);
  }
  if (strcmp(cmd, "region") == 0 && n == 3) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_REGION_CHANGE, u, g, 0);
  }
  if (strcmp(cmd, "kick") == 0 && n == 3) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_KICK, u, g, 0);
  }
  if (strcmp(cmd, "invalidate") == 0 && n == 2) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_INVALIDATE_SESSION, u, 0,
                                  0);
  }
  if (strcmp(cmd, "reconnect") == 0 && n == 2) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_RECONNECT, u, 0, 0);
  }
  if (strcmp(cmd, "drop_acks") == 0 && n == 3) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_DROP_ACKS, u, 0, g);
  }
  if (strcmp(cmd, "close_gateway") == 0 && n == 3) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_CLOSE_GATEWAY, u, 0, g);
  }
  if (strcmp(cmd, "close_voice") == 0 && n == 4) {
    return dvoice_sim_command_run(a->sim, DVOICE_SIM_CLOSE_VOICE, u, g, x);
  }
  return DVOICE_ERR_INVALID_ARGUMENT;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  static char buf[512];
  (void)h;
  (void)hint;
  *b = uv_buf_init(buf, sizeof(buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  app *a = s->data;
  if (nread < 0) {
    /* stdin closed: keep running until a signal. */
    uv_read_stop(s);
    return;
  }
  for (ssize_t i = 0; i < nread && !a->stopping; i++) {
    char c = b->base[i];
    if (c == '\n') {
      int rv;
      a->line[a->linelen] = 0;
      a->linelen = 0;
      rv = run_command(a, a->line);
      if (!a->stopping) {
        printf(rv == 0 ? "ok\n" : "error %s\n", dvoice_err_name(rv));
        fflush(stdout);
      }
    } else if (a->linelen + 1 < sizeof(a->line)) {
      a->line[a->linelen++] = c;
    }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: dvoice-sim [--port N] [--dir DIR] [--plain] "
                  "[--bot TOKEN:USER_ID]... "
                  "[--guild GUILD:CHANNEL[,CHANNEL...]]...\n");
}

int main(int argc, char **argv) {
  dvoice_sim_settings st;
  app a;
  int rv;
  memset(&a, 0, sizeof(a));
  a.loop = uv_default_loop();
  dvoice_sim_settings_default(&st);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      st.gateway_port = (uint16_t)atoi(argv[++i]);
    } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      st.dir = argv[++i];
    } else if (strcmp(argv[i], "--plain") == 0) {
      st.plain = 1;
    } else if ((strcmp(argv[i], "--bot") == 0 ||
                strcmp(argv[i], "--guild") == 0) &&
               i + 1 < argc) {
      i++; /* registered after start */
    } else {
      usage();
      return 2;
    }
  }
  rv = dvoice_sim_start(a.loop, &st, &a.sim);
  if (rv != 0) {
    fprintf(stderr, "dvoice-sim: %s\n", dvoice_strerror(rv));
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--bot") == 0 && i + 1 < argc) {
      char *colon = strchr(argv[++i], ':');
      if (colon == NULL) {
        usage();
        stop(&a);
        uv_run(a.loop, UV_RUN_DEFAULT);
        return 2;
      }
      *colon = 0;
      rv = dvoice_sim_add_bot(a.sim, argv[i], strtoull(colon + 1, NULL, 10));
      if (rv != 0) {
        fprintf(stderr, "dvoice-sim: --bot: %s\n", dvoice_strerror(rv));
      }
    } else if (strcmp(argv[i], "--guild") == 0 && i + 1 < argc) {
      uint64_t ch[16];
      size_t n = 0;
      char *p = argv[++i], *end;
      uint64_t g = strtoull(p, &end, 10);
      if (*end == ':') {
        p = end + 1;
        while (n < 16 && *p != 0) {
          ch[n++] = strtoull(p, &end, 10);
          p = *end == ',' ? end + 1 : end;
          if (end == p && *p != 0) {
            break;
          }
        }
      }
      rv = dvoice_sim_add_guild(a.sim, g, ch, n);
      if (rv != 0) {
        fprintf(stderr, "dvoice-sim: --guild: %s\n", dvoice_strerror(rv));
      }
    }
  }
  printf("gateway_url %s\n", dvoice_sim_gateway_url(a.sim));
  printf("api_url %s\n", dvoice_sim_api_url(a.sim));
  printf("ca_file %s\n",
         dvoice_sim_ca_file(a.sim) ? dvoice_sim_ca_file(a.sim) : "-");
  printf("voice_endpoint %s\n", dvoice_sim_voice_endpoint(a.sim, 0));
  printf("voice_endpoint %s\n", dvoice_sim_voice_endpoint(a.sim, 1));
  printf("ready\n");
  fflush(stdout);
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sigterm);
  a.sigint.data = a.sigterm.data = &a;
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  {
    uv_handle_type t = uv_guess_handle(0);
    if ((t == UV_NAMED_PIPE || t == UV_TTY) &&
        uv_pipe_init(a.loop, &a.in, 0) == 0) {
      a.have_in = 1;
      a.in.data = &a;
      if (uv_pipe_open(&a.in, 0) != 0 ||
          uv_read_start((uv_stream_t *)&a.in, on_alloc, on_read) != 0) {
        uv_close((uv_handle_t *)&a.in, NULL);
        a.have_in = 0;
      }
    }
  }
  uv_run(a.loop, UV_RUN_DEFAULT);
  return uv_loop_close(a.loop) == 0 ? 0 : 1;
}
