/*
 * bench_rtp: CPU cost per packet of the send path (build + transport
 * encrypt, dv_rtp_seal_opus) and the receive path (dv_rtp_open) for both
 * rtpsize modes and both AES-256-GCM backends, plus the pacer's own cost
 * per connection per tick. Prints a table and one JSON object.
 *
 *   bench_rtp [iterations]              everything (default 200000)
 *   bench_rtp --one CASE SIZE ITERS     one case, for callgrind:
 *     valgrind --tool=callgrind bench_rtp --one aes-sodium 160 1000
 *   CASE: aes-sodium, aes-mbedtls, xchacha, or the same with -open.
 *
 * Wall-clock figures are noisy on shared machines: compare the ratios
 * between cases from one run, or use callgrind's instruction counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/dv_pacer.h"
#include "rtp/dv_rtp_crypt.h"

typedef struct bcase {
  const char *name;
  dv_rtp_mode mode;
  dv_rtp_backend backend;
} bcase;

static const bcase CASES[] = {
    {"aes-sodium", DV_RTP_MODE_AES256GCM, DV_RTP_BACKEND_SODIUM},
    {"aes-mbedtls", DV_RTP_MODE_AES256GCM, DV_RTP_BACKEND_MBEDTLS},
    {"xchacha", DV_RTP_MODE_XCHACHA20, DV_RTP_BACKEND_AUTO},
};
#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

/* Payload sizes: silence frame, 64 kb/s, 128 kb/s, a large frame. */
static const size_t SIZES[] = {3, 160, 320, 1000};
#define NSIZES (sizeof(SIZES) / sizeof(SIZES[0]))

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Returns ns per packet, or a negative value if the case is unavailable. */
static double run_case(const bcase *bc, size_t size, long iters, int open) {
  uint8_t key[32], payload[1200], pkt[1300], plain[1300];
  dv_rtp_crypt c;
  dv_rtp_rx rx;
  size_t len = 0;
  double t0, t1;
  volatile uint32_t sink = 0;
  for (int i = 0; i < 32; i++) {
    key[i] = (uint8_t)i;
  }
  for (size_t i = 0; i < size; i++) {
    payload[i] = (uint8_t)(i * 13);
  }
  if (dv_rtp_crypt_init(&c, bc->mode, key, bc->backend) != 0) {
    return -1;
  }
  if (open) {
    if (dv_rtp_seal_opus(&c, 1, 960, 42, payload, size, pkt, sizeof(pkt),
                         &len) != 0) {
      return -1;
    }
  }
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    if (open) {
      if (dv_rtp_open(&c, pkt, len, plain, sizeof(plain), &rx) != 0) {
        abort();
      }
      sink += rx.payload[0];
    } else {
      if (dv_rtp_seal_opus(&c, (uint16_t)i, (uint32_t)i * 960u, 42, payload,
                           size, pkt, sizeof(pkt), &len) != 0) {
        abort();
      }
      sink += pkt[len - 1];
    }
  }
  t1 = now_ns();
  dv_rtp_crypt_clear(&c);
  (void)sink;
  return (t1 - t0) / (double)iters;
}

/* ---- pacer overhead ----------------------------------------------------- */

static uint64_t rand_state = 1;

static void bench_rand(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  for (size_t i = 0; i < len; i++) {
    rand_state = rand_state * 6364136223846793005ull + 1442695040888963407ull;
    dest[i] = (uint8_t)(rand_state >> 56);
  }
}

static int p_prepare(dv_pacer_conn *c, void *ud, const dv_pacer_frame *f) {
  (void)c;
  (void)ud;
  return f->len > 0 ? 0 : -1;
}

static int p_send(dv_pacer_conn *c, void *ud) {
  (void)c;
  (void)ud;
  return 0;
}

static uint8_t pull_frame[160];

static int p_pull(dv_pacer_conn *c, void *ud, dv_pull_result *out) {
  (void)c;
  (void)ud;
  out->kind = DV_PULL_OPUS;
  out->data = pull_frame;
  out->len = sizeof(pull_frame);
  return 0;
}

/* ns of pacer work per connection per tick, |nconn| pull connections. */
static double run_pacer(int nconn, int ticks) {
  dvoice_env env;
  dv_pacer *p;
  dv_pacer_callbacks cb = {p_prepare, p_send, p_pull, NULL, NULL};
  dv_pacer_conn_settings s;
  dv_pacer_conn *c;
  dvoice_tstamp t;
  double t0, t1;
  dvoice_env_default(&env);
  env.rand = bench_rand;
  if (dv_pacer_new(&env, NULL, &cb, &p) != 0) {
    return -1;
  }
  dv_pacer_conn_settings_default(&s, DV_PACER_PULL);
  for (int i = 0; i < nconn; i++) {
    if (dv_pacer_conn_add(p, &s, NULL, &c) != 0 || dv_pacer_conn_play(c)) {
      return -1;
    }
  }
  t = 1000000000;
  dv_pacer_on_tick(p, t);
  t0 = now_ns();
  for (int k = 0; k < ticks; k++) {
    t = dv_pacer_get_expiry(p);
    dv_pacer_on_tick(p, t);
  }
  t1 = now_ns();
  dv_pacer_free(p);
  return (t1 - t0) / ((double)ticks * nconn);
}

int main(int argc, char **argv) {
  long iters = 200000;
  double ns[NCASES][NSIZES][2];
  double pacer_ns[3];
  static const int PACER_N[3] = {1, 100, 1000};
  if (argc == 5 && strcmp(argv[1], "--one") == 0) {
    char name[64];
    int open = 0;
    size_t size = (size_t)strtoul(argv[3], NULL, 10);
    snprintf(name, sizeof(name), "%s", argv[2]);
    if (strlen(name) > 5 && strcmp(name + strlen(name) - 5, "-open") == 0) {
      open = 1;
      name[strlen(name) - 5] = '\0';
    }
    for (size_t i = 0; i < NCASES; i++) {
      if (strcmp(CASES[i].name, name) == 0 && size <= 1000) {
        double r = run_case(&CASES[i], size, strtol(argv[4], NULL, 10), open);
        printf("%s %zu: %.1f ns/packet\n", argv[2], size, r);
        return r < 0;
      }
    }
    fprintf(stderr, "unknown case\n");
    return 2;
  }
  if (argc == 2) {
    iters = strtol(argv[1], NULL, 10);
    if (iters <= 0) {
      iters = 200000;
    }
  }
  for (size_t i = 0; i < NCASES; i++) {
    for (size_t j = 0; j < NSIZES; j++) {
      for (int o = 0; o < 2; o++) {
        run_case(&CASES[i], SIZES[j], iters / 10, o); /* warm up */
        ns[i][j][o] = run_case(&CASES[i], SIZES[j], iters, o);
      }
    }
  }
  for (int k = 0; k < 3; k++) {
    pacer_ns[k] = run_pacer(PACER_N[k], PACER_N[k] >= 1000 ? 3000 : 30000);
  }

  printf("%-12s %6s %14s %14s %10s\n", "mode", "bytes", "seal ns/pkt",
         "open ns/pkt", "seal ratio");
  for (size_t i = 0; i < NCASES; i++) {
    for (size_t j = 0; j < NSIZES; j++) {
      if (ns[i][j][0] < 0) {
        printf("%-12s %6zu %14s %14s %10s\n", CASES[i].name, SIZES[j], "n/a",
               "n/a", "n/a");
        continue;
      }
      printf("%-12s %6zu %14.1f %14.1f %10.2f\n", CASES[i].name, SIZES[j],
             ns[i][j][0], ns[i][j][1],
             ns[0][j][0] > 0 ? ns[i][j][0] / ns[0][j][0] : 0.0);
    }
  }
  for (int k = 0; k < 3; k++) {
    printf("pacer: %4d connections: %.1f ns per connection per tick\n",
           PACER_N[k], pacer_ns[k]);
  }

  printf("{\"bench\":\"rtp\",\"iterations\":%ld,\"cases\":[", iters);
  for (size_t i = 0; i < NCASES; i++) {
    for (size_t j = 0; j < NSIZES; j++) {
      printf("%s{\"mode\":\"%s\",\"payload\":%zu,\"seal_ns\":%.1f,"
             "\"open_ns\":%.1f}",
             i || j ? "," : "", CASES[i].name, SIZES[j], ns[i][j][0],
             ns[i][j][1]);
    }
  }
  printf("],\"pacer\":[");
  for (int k = 0; k < 3; k++) {
    printf("%s{\"connections\":%d,\"ns_per_conn_tick\":%.1f}", k ? "," : "",
           PACER_N[k], pacer_ns[k]);
  }
  printf("]}\n");
  return 0;
}
