#include "dvt.h"

#include <ctype.h>
#include <stdlib.h>

#include <mbedtls/sha256.h>
#include <uv.h>

dvoice_tstamp dvt_clock_now(void *user_data) {
  return ((dvt_clock *)user_data)->now;
}

void dvt_rand_fill(void *user_data, uint8_t *dest, size_t len) {
  dvt_rand *r = user_data;
  for (size_t i = 0; i < len; i++) {
    dest[i] = r->next++;
  }
  r->calls++;
}

void dvt_stream_fill(void *user_data, uint8_t *dest, size_t len) {
  dvt_stream *s = user_data;
  while (len > 0) {
    uint8_t in[8], blk[32];
    size_t take = len < sizeof blk ? len : sizeof blk;
    for (int i = 0; i < 8; i++) {
      in[i] = (uint8_t)(s->ctr >> (8 * i));
    }
    assert_int_equal(mbedtls_sha256_ret(in, sizeof in, blk, 0), 0);
    s->ctr++;
    memcpy(dest, blk, take);
    dest += take;
    len -= take;
  }
  s->calls++;
}

void dvt_env_use_stream(dvoice_env *env, dvt_stream *s, uint64_t ctr) {
  s->ctr = ctr;
  s->calls = 0;
  env->rand = dvt_stream_fill;
  env->rand_user_data = s;
}

/* Each block carries its size in front so the counters stay exact. */
typedef struct hdr {
  size_t size;
  size_t pad; /* keeps the payload 16-byte aligned */
} hdr;

static int refuse(dvt_mem *m) {
  long idx = m->count++;
  if (m->fail_at >= 0 && idx >= m->fail_at) {
    m->failures++;
    return 1;
  }
  return 0;
}

static void *m_malloc(size_t size, void *ud) {
  dvt_mem *m = ud;
  hdr *h;
  if (refuse(m) || (h = malloc(sizeof(hdr) + size)) == NULL) {
    return NULL;
  }
  h->size = size;
  m->live++;
  m->live_bytes += size;
  return h + 1;
}

static void m_free(void *ptr, void *ud) {
  dvt_mem *m = ud;
  hdr *h;
  if (ptr == NULL) {
    return;
  }
  h = (hdr *)ptr - 1;
  m->live--;
  m->live_bytes -= h->size;
  free(h);
}

static void *m_calloc(size_t n, size_t size, void *ud) {
  void *p;
  if (size != 0 && n > SIZE_MAX / size) {
    return NULL;
  }
  p = m_malloc(n * size, ud);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

static void *m_realloc(void *ptr, size_t size, void *ud) {
  dvt_mem *m = ud;
  hdr *h, *nh;
  if (ptr == NULL) {
    return m_malloc(size, ud);
  }
  if (refuse(m)) {
    return NULL;
  }
  h = (hdr *)ptr - 1;
  size_t old = h->size;
  nh = realloc(h, sizeof(hdr) + size);
  if (nh == NULL) {
    return NULL;
  }
  nh->size = size;
  m->live_bytes = m->live_bytes - old + size;
  return nh + 1;
}

void dvt_mem_init(dvt_mem *m, long fail_at) {
  memset(m, 0, sizeof(*m));
  m->mem.user_data = m;
  m->mem.malloc = m_malloc;
  m->mem.free = m_free;
  m->mem.calloc = m_calloc;
  m->mem.realloc = m_realloc;
  m->fail_at = fail_at;
}

long dvt_mem_fail_each(int (*fn)(const dvoice_mem *mem, void *ud), void *ud) {
  for (long i = 0; i < 100000; i++) {
    dvt_mem m;
    int rv;
    dvt_mem_init(&m, i);
    rv = fn(&m.mem, ud);
    if (m.failures == 0) {
      assert_int_equal(rv, 0);
      assert_int_equal(m.live, 0);
      return m.count;
    }
    if (rv != DVOICE_ERR_NOMEM) {
      fail_msg("allocation %ld refused: expected DVOICE_ERR_NOMEM, got %d",
               i, rv);
    }
    if (m.live != 0) {
      fail_msg("allocation %ld refused: %ld blocks leaked", i, m.live);
    }
  }
  fail_msg("dvt_mem_fail_each: no successful run");
  return -1;
}

void dvt_log_init(dvt_log *l) {
  dv_buf_init(&l->text, NULL);
  l->lines = 0;
}

void dvt_log_free(dvt_log *l) {
  dv_buf_free(&l->text);
}

void dvt_log_cb(void *user_data, dvoice_log_level level, const char *line,
                size_t len) {
  dvt_log *l = user_data;
  static const char *names[] = {"none", "error", "warn", "info", "debug"};
  assert_int_equal(strlen(line), len);
  assert_null(memchr(line, '\n', len));
  dv_buf_appendf(&l->text, "%s: %s\n",
                 names[(int)level >= 0 && level <= 4 ? level : 0], line);
  l->lines++;
  if (getenv("DVT_VERBOSE") != NULL) {
    fprintf(stderr, "[log] %s: %.*s\n", names[level <= 4 ? level : 0],
            (int)len, line);
  }
}

int dvt_log_contains(const dvt_log *l, const char *needle) {
  return l->text.data != NULL && strstr((char *)l->text.data, needle) != NULL;
}

void dvt_env_init(dvt_env *e) {
  memset(e, 0, sizeof(*e));
  dvoice_env_default(&e->env);
  dvt_log_init(&e->log);
  e->env.now = dvt_clock_now;
  e->env.now_user_data = &e->clock;
  e->env.rand = dvt_rand_fill;
  e->env.rand_user_data = &e->rand;
  e->env.log = dvt_log_cb;
  e->env.log_user_data = &e->log;
  e->env.log_level = DVOICE_LOG_DEBUG;
}

void dvt_env_free(dvt_env *e) {
  dvt_log_free(&e->log);
}

int dvt_feed(const uint8_t *data, size_t len, const size_t *chunks,
             size_t nchunks, dvt_sink sink, void *user_data) {
  size_t off = 0, k = 0;
  while (off < len) {
    size_t n = nchunks ? chunks[k++ % nchunks] : 0;
    int rv;
    if (n == 0 || n > len - off) {
      n = len - off;
    }
    rv = sink(user_data, data + off, n);
    if (rv != 0) {
      return rv;
    }
    off += n;
  }
  return 0;
}

int dvt_feed_drip(const uint8_t *data, size_t len, dvt_sink sink,
                  void *user_data) {
  static const size_t one = 1;
  return dvt_feed(data, len, &one, 1, sink, user_data);
}

void dvt_accum_init(dvt_accum *a) {
  dv_buf_init(&a->buf, NULL);
  a->chunks = 0;
}

void dvt_accum_free(dvt_accum *a) {
  dv_buf_free(&a->buf);
}

int dvt_accum_sink(void *user_data, const uint8_t *p, size_t len) {
  dvt_accum *a = user_data;
  a->chunks++;
  return dv_buf_append(&a->buf, p, len);
}

static void hexdump(const char *label, const uint8_t *p, size_t len,
                    size_t from) {
  size_t end = from + 32 < len ? from + 32 : len;
  fprintf(stderr, "  %s (%zu bytes) at %zu:", label, len, from);
  for (size_t i = from; i < end; i++) {
    fprintf(stderr, " %02x", p[i]);
  }
  fprintf(stderr, "\n");
}

void dvt_bytes_assert_eq(const uint8_t *got, size_t gotlen,
                         const uint8_t *want, size_t wantlen, const char *file,
                         int line) {
  size_t i, n = gotlen < wantlen ? gotlen : wantlen;
  for (i = 0; i < n && got[i] == want[i]; i++) {
  }
  if (i == n && gotlen == wantlen) {
    return;
  }
  fprintf(stderr, "%s:%d: bytes differ at offset %zu\n", file, line, i);
  hexdump("got ", got, gotlen, i);
  hexdump("want", want, wantlen, i);
  _fail(file, line);
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  c = tolower(c);
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

size_t dvt_unhex(const char *hex, uint8_t **out) {
  size_t n = 0, cap = strlen(hex) / 2 + 1;
  int hi = -1;
  uint8_t *buf = malloc(cap);
  assert_non_null(buf);
  for (const char *s = hex; *s; s++) {
    int v;
    if (isspace((unsigned char)*s)) {
      continue;
    }
    v = hexval((unsigned char)*s);
    if (v < 0) {
      fail_msg("bad hex digit '%c'", *s);
    }
    if (hi < 0) {
      hi = v;
    } else {
      buf[n++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  if (hi >= 0) {
    fail_msg("odd number of hex digits");
  }
  *out = buf;
  return n;
}

static void count_cb(uv_handle_t *h, void *arg) {
  int *open = arg;
  if (!uv_is_closing(h)) {
    fprintf(stderr, "dvt: handle still open: %s %p\n",
            uv_handle_type_name(uv_handle_get_type(h)), (void *)h);
    (*open)++;
  }
}

static void close_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) {
    uv_close(h, NULL);
  }
}

int dvt_loop_teardown(struct uv_loop_s *loop) {
  int open = 0;
  /* Let pending close callbacks run first. */
  uv_run(loop, UV_RUN_NOWAIT);
  uv_walk(loop, count_cb, &open);
  uv_walk(loop, close_cb, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
  return open;
}

const char *dvt_getenv_required(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || *v == 0) {
    if (dvt_in_ci()) {
      fail_msg("%s is not set, and CI requires it", name);
    }
    return NULL;
  }
  return v;
}

int dvt_in_ci(void) {
  const char *ci = getenv("CI");
  return ci != NULL && *ci != 0 && strcmp(ci, "false") != 0;
}

int dvt_skip_program_unless(const char *name, const char *hint) {
  const char *v = getenv(name);
  if ((v != NULL && *v != 0) || dvt_in_ci()) {
    return 0;
  }
  printf("1..0 # SKIP %s unset%s%s\n", name, hint ? " " : "",
         hint ? hint : "");
  return 1;
}
