/*
 * Join latency through dvoice_client's adapter against the simulator on
 * loopback (one loop, one process): from the op 4 handed to the adapter to
 * the connection's READY (voice WS open, Identify, Ready, IP discovery,
 * Select Protocol, Session Description), over N joins (default 50, argv[1]).
 * The adapter answers op 4 at once with both dispatches, so the figure is
 * the library's and the simulator's handshake cost. Prints JSON and a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <dvoice/dvoice.h>

#include "../test/sim/sim_uv.h"

#define GUILD_S "111111111111"
#define USER_S "222222222222"

typedef struct bench {
  uv_loop_t loop;
  dv_sim_uv *sim;
  dvoice_client *cl;
  dvoice_conn *conn;
  char ep[64];
  int n, i, done, nsess;
  uint64_t t_op4, t_paired;
  double *total, *pair;
  int closed;
} bench;

static uint64_t now_ns(void) {
  return uv_hrtime();
}

static int send_vs(dvoice_client *cl, uint64_t guild, uint64_t channel,
                   int mute, int deaf, void *ud) {
  bench *b = ud;
  char sid[32], tok[32];
  dv_sim_session *s;
  (void)mute, (void)deaf;
  if (channel == 0) {
    return 0;
  }
  b->t_op4 = now_ns();
  snprintf(sid, sizeof(sid), "s-%d", b->nsess);
  snprintf(tok, sizeof(tok), "t-%d", b->nsess);
  b->nsess++;
  if (dv_sim_vgw_add_session(dv_sim_uv_vgw(b->sim), GUILD_S, USER_S, sid, tok,
                             &s) != 0) {
    return -1;
  }
  (void)dvoice_client_voice_state(cl, guild, 222222222222ull, channel, sid);
  (void)dvoice_client_voice_server(cl, guild, tok, b->ep);
  b->t_paired = now_ns();
  return 0;
}

static void join_next(bench *b);

static void conn_closed(dvoice_conn *c, void *ud) {
  bench *b = ud;
  (void)c;
  if (b->i < b->n) {
    join_next(b);
  } else {
    b->done = 1;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  bench *b = ud;
  if (ev->state == DVOICE_CONN_READY) {
    uint64_t t = now_ns();
    b->total[b->i] = (double)(t - b->t_op4) / 1e6;
    b->pair[b->i] = (double)(b->t_paired - b->t_op4) / 1e6;
    b->i++;
    (void)dvoice_client_leave(b->cl, c, conn_closed);
  } else if (ev->state == DVOICE_CONN_DISCONNECTED) {
    fprintf(stderr, "join %d failed: %s\n", b->i,
            dvoice_conn_reason_name(ev->reason));
    exit(1);
  }
}

static void join_next(bench *b) {
  dvoice_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  if (dvoice_client_join(b->cl, 111111111111ull, 333333333333ull, 0, &cb, b,
                         &b->conn) != 0) {
    fprintf(stderr, "join failed\n");
    exit(1);
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double quant(double *v, int n, double q) {
  int k = (int)(q * (n - 1) + 0.5);
  return v[k];
}

static void client_closed(dvoice_client *cl, void *ud) {
  (void)cl;
  ((bench *)ud)->closed++;
}

static void sim_closed(dv_sim_uv *s, void *ud) {
  (void)s;
  ((bench *)ud)->closed++;
}

int main(int argc, char **argv) {
  bench b;
  dv_sim_uv_settings ss;
  dvoice_client_settings cs;
  dvoice_gateway_adapter ad;
  memset(&b, 0, sizeof(b));
  b.n = argc > 1 ? atoi(argv[1]) : 50;
  if (b.n < 1 || b.n > 100000) {
    return 2;
  }
  b.total = calloc((size_t)b.n, sizeof(double));
  b.pair = calloc((size_t)b.n, sizeof(double));
  if (b.total == NULL || b.pair == NULL || uv_loop_init(&b.loop) != 0) {
    return 1;
  }
  dv_sim_uv_settings_default(&ss);
  if (dv_sim_uv_new(&b.loop, &ss, &b.sim) != 0) {
    return 1;
  }
  snprintf(b.ep, sizeof(b.ep), "ws://%s", dv_sim_uv_endpoint(b.sim));
  dvoice_client_settings_default(&cs);
  memset(&ad, 0, sizeof(ad));
  ad.send_voice_state = send_vs;
  cs.user_id = 222222222222ull;
  cs.adapter = &ad;
  cs.adapter_user_data = &b;
  if (dvoice_client_new(&b.cl, &b.loop, &cs, NULL, &b) != 0) {
    return 1;
  }
  join_next(&b);
  while (!b.done) {
    uv_run(&b.loop, UV_RUN_ONCE);
  }
  (void)dvoice_client_close(b.cl, client_closed);
  (void)dv_sim_uv_close(b.sim, sim_closed, &b);
  while (b.closed < 2) {
    uv_run(&b.loop, UV_RUN_ONCE);
  }
  uv_run(&b.loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&b.loop);
  qsort(b.total, (size_t)b.n, sizeof(double), cmp);
  qsort(b.pair, (size_t)b.n, sizeof(double), cmp);
  printf("{\"bench\":\"join\",\"joins\":%d,\"op4_to_paired_ms\":{\"p50\":%.3f,"
         "\"p95\":%.3f},\"op4_to_ready_ms\":{\"p50\":%.3f,\"p95\":%.3f,"
         "\"max\":%.3f}}\n",
         b.n, quant(b.pair, b.n, 0.5), quant(b.pair, b.n, 0.95),
         quant(b.total, b.n, 0.5), quant(b.total, b.n, 0.95), b.total[b.n - 1]);
  printf("%-28s %10s %10s\n", "step (ms)", "median", "p95");
  printf("%-28s %10.3f %10.3f\n", "op4 -> both events paired",
         quant(b.pair, b.n, 0.5), quant(b.pair, b.n, 0.95));
  printf("%-28s %10.3f %10.3f\n", "op4 -> READY (total)",
         quant(b.total, b.n, 0.5), quant(b.total, b.n, 0.95));
  free(b.total);
  free(b.pair);
  return 0;
}
