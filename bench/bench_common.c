#include "bench_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int bench_samples_add(bench_samples *s, double x) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    double *v = realloc(s->v, cap * sizeof(*v));
    if (v == NULL) {
      return -1;
    }
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = x;
  s->sorted = 0;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_samples_quantile(bench_samples *s, double q) {
  size_t rank;
  if (s->n == 0) {
    return NAN;
  }
  if (!s->sorted) {
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    s->sorted = 1;
  }
  /* Nearest rank: the smallest sample with at least q of them at or below
   * it. */
  rank = (size_t)ceil(q * (double)s->n);
  if (rank == 0) {
    rank = 1;
  }
  if (rank > s->n) {
    rank = s->n;
  }
  return s->v[rank - 1];
}

void bench_samples_free(bench_samples *s) {
  free(s->v);
  memset(s, 0, sizeof(*s));
}

void bench_arrivals_init(bench_arrivals *a) {
  memset(a, 0, sizeof(*a));
}

void bench_arrivals_free(bench_arrivals *a) {
  bench_samples_free(&a->grid_ms);
  bench_samples_free(&a->ia_ms);
}

int bench_arrivals_add(bench_arrivals *a, const dvoice_tstamp *t, size_t n,
                       size_t skip, uint64_t period_ns) {
  int64_t t0 = INT64_MAX;
  double drift, span, slope;
  if (n <= skip || n - skip < 2) {
    return 0;
  }
  t += skip;
  n -= skip;
  /* Offsets from the grid k * period, relative to the first arrival so the
   * arithmetic stays well inside int64 range. */
  for (size_t k = 0; k < n; k++) {
    int64_t off = (int64_t)(t[k] - t[0]) - (int64_t)(k * period_ns);
    if (off < t0) {
      t0 = off;
    }
  }
  for (size_t k = 0; k < n; k++) {
    int64_t off = (int64_t)(t[k] - t[0]) - (int64_t)(k * period_ns);
    if (bench_samples_add(&a->grid_ms, (double)(off - t0) / 1e6) != 0) {
      return -1;
    }
    if (k > 0) {
      double d = (double)(int64_t)(t[k] - t[k - 1]) - (double)period_ns;
      if (bench_samples_add(&a->ia_ms, fabs(d) / 1e6) != 0) {
        return -1;
      }
    }
  }
  /* Drift: the least-squares slope of the offsets against k, over the
   * run, so one late first or last packet does not dominate it. */
  {
    double sk = 0, so = 0, skk = 0, sko = 0, dn = (double)n, den;
    for (size_t k = 0; k < n; k++) {
      double off = (double)((int64_t)(t[k] - t[0]) - (int64_t)(k * period_ns));
      sk += (double)k;
      so += off;
      skk += (double)k * (double)k;
      sko += (double)k * off;
    }
    den = dn * skk - sk * sk;
    slope = den != 0 ? (dn * sko - sk * so) / den : 0; /* ns per packet */
  }
  span = (double)(t[n - 1] - t[0]);
  drift = slope * (double)(n - 1);
  if (a->streams == 0 || fabs(drift / 1e6) > fabs(a->drift_ms)) {
    a->drift_ms = drift / 1e6;
    a->drift_ppm = slope / (double)period_ns * 1e6;
  }
  if (span / 1e9 > a->span_s) {
    a->span_s = span / 1e9;
  }
  a->streams++;
  a->packets += n;
  return 0;
}

static void json_quantiles(bench_samples *s, FILE *out) {
  fprintf(out, "{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f}",
          bench_samples_quantile(s, 0.5), bench_samples_quantile(s, 0.99),
          bench_samples_quantile(s, 0.999), bench_samples_quantile(s, 1.0));
}

void bench_arrivals_json(bench_arrivals *a, FILE *out) {
  fprintf(out, "{\"streams\":%zu,\"packets\":%zu,\"grid_ms\":", a->streams,
          a->packets);
  json_quantiles(&a->grid_ms, out);
  fprintf(out, ",\"ia_dev_ms\":");
  json_quantiles(&a->ia_ms, out);
  fprintf(out, ",\"drift_ms\":%.4f,\"drift_ppm\":%.2f,\"span_s\":%.3f}",
          a->drift_ms, a->drift_ppm, a->span_s);
}

void bench_arrivals_header(FILE *out) {
  fprintf(out,
          "%-22s %4s %7s | %-31s | %-31s | %9s %8s\n"
          "%-22s %4s %7s | %7s %7s %7s %7s | %7s %7s %7s %7s | %9s %8s\n",
          "", "", "", "lateness vs 20 ms grid (ms)",
          "|inter-arrival - 20 ms| (ms)", "drift", "drift", "run", "N",
          "packets", "p50", "p99", "p99.9", "max", "p50", "p99", "p99.9", "max",
          "ms", "ppm");
}

void bench_arrivals_row(bench_arrivals *a, const char *label, FILE *out) {
  bench_samples *g = &a->grid_ms, *i = &a->ia_ms;
  fprintf(out,
          "%-22s %4zu %7zu | %7.3f %7.3f %7.3f %7.3f | %7.3f %7.3f %7.3f "
          "%7.3f | %9.3f %8.1f\n",
          label, a->streams, a->packets, bench_samples_quantile(g, 0.5),
          bench_samples_quantile(g, 0.99), bench_samples_quantile(g, 0.999),
          bench_samples_quantile(g, 1.0), bench_samples_quantile(i, 0.5),
          bench_samples_quantile(i, 0.99), bench_samples_quantile(i, 0.999),
          bench_samples_quantile(i, 1.0), a->drift_ms, a->drift_ppm);
}

/* The same certificates as the integration tests' (test/interop/dvt_net.c),
 * made by a shell script so that no key material is ever committed. */
static const char certs_script[] =
    "set -eu\n"
    "cd \"$1\"\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt "
    "ec_paramgen_curve:P-256 -out \"$1\" 2>/dev/null; }\n"
    "key ca.key\n"
    "openssl req -x509 -new -key ca.key -out ca.pem -days 2 "
    "-subj '/CN=dvoice bench CA' "
    "-addext basicConstraints=critical,CA:TRUE "
    "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null\n"
    "key server.key\n"
    "openssl req -new -key server.key -out server.csr -subj /CN=localhost "
    "2>/dev/null\n"
    "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
    "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > "
    "server.ext\n"
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
    "-CAcreateserial -out server.pem -days 2 -extfile server.ext "
    "2>/dev/null\n";

int bench_certs_make(bench_certs *c) {
  char path[256], cmd[512];
  FILE *f;
  memset(c, 0, sizeof(*c));
  snprintf(c->dir, sizeof(c->dir), "/tmp/dvoice-bench-XXXXXX");
  if (mkdtemp(c->dir) == NULL) {
    perror("mkdtemp");
    return -1;
  }
  snprintf(path, sizeof(path), "%s/make_certs.sh", c->dir);
  f = fopen(path, "w");
  if (f == NULL || fputs(certs_script, f) < 0 || fclose(f) != 0) {
    fprintf(stderr, "cannot write %s\n", path);
    return -1;
  }
  snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", path, c->dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "certificate generation failed: %s\n", cmd);
    return -1;
  }
  snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
  snprintf(c->cert, sizeof(c->cert), "%s/server.pem", c->dir);
  snprintf(c->key, sizeof(c->key), "%s/server.key", c->dir);
  return 0;
}

void bench_certs_remove(bench_certs *c) {
  char cmd[256];
  if (strncmp(c->dir, "/tmp/dvoice-bench-", 18) == 0) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "could not remove %s\n", c->dir);
    }
  }
  c->dir[0] = 0;
}
