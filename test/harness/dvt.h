/*
 * dvt: the dvoice test harness. Everything a test needs to drive a pure core
 * deterministically (fake clock, counter RNG, scripted byte feeds, output
 * accumulator, failing allocator, captured log) and to prove a libuv loop
 * ends clean. Include after the cmocka prerequisites, or let this header
 * include them.
 */
#ifndef DVT_H
#define DVT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

/* ---- fake clock --------------------------------------------------------- */

typedef struct dvt_clock {
  dvoice_tstamp now;
} dvt_clock;

/* A dvoice_clock_cb reading a dvt_clock passed as user_data. */
dvoice_tstamp dvt_clock_now(void *user_data);

/* ---- counter RNG -------------------------------------------------------- */

/* Emits next, next+1, next+2, ... (mod 256). Byte-exact reproducible. */
typedef struct dvt_rand {
  uint8_t next;
  uint64_t calls;
} dvt_rand;

void dvt_rand_fill(void *user_data, uint8_t *dest, size_t len);

/* A non-repeating deterministic stream for tests that draw many keys (the
 * counter above repeats every 256 bytes, so two draws 256 bytes apart are
 * equal). Each call emits SHA-256(ctr as 8 little-endian bytes), then of
 * ctr+1, ..., consuming one counter value per 32 bytes started; the unused
 * tail of the last block is dropped. Set ctr to choose the stream. */
typedef struct dvt_stream {
  uint64_t ctr;
  uint64_t calls;
} dvt_stream;

/* A dvoice_rand_cb over a dvt_stream passed as user_data. */
void dvt_stream_fill(void *user_data, uint8_t *dest, size_t len);

/* Points env's RNG at a fresh stream starting at ctr (the stream is owned by
 * the caller and must outlive env). */
void dvt_env_use_stream(dvoice_env *env, dvt_stream *s, uint64_t ctr);

/* ---- failing, counting allocator ---------------------------------------- */

typedef struct dvt_mem {
  dvoice_mem mem;     /* hand &mem to the code under test */
  long fail_at;       /* fail the allocation with this index; -1: never */
  long count;         /* allocations attempted so far */
  long failures;      /* allocations refused */
  long live;          /* blocks currently allocated */
  size_t live_bytes;  /* bytes currently allocated */
} dvt_mem;

/* Initialises a counting allocator that fails allocation number |fail_at|
 * (0-based) and every later one, or never if fail_at < 0. */
void dvt_mem_init(dvt_mem *m, long fail_at);

/*
 * Runs |fn| with an allocator failing at 0, 1, 2, ... until a run completes
 * with no refused allocation. Each failing run must return DVOICE_ERR_NOMEM
 * and leave no block allocated; the final run must return 0. Returns the
 * number of allocations the successful run made.
 */
long dvt_mem_fail_each(int (*fn)(const dvoice_mem *mem, void *ud), void *ud);

/* ---- captured log ------------------------------------------------------- */

typedef struct dvt_log {
  dv_buf text;  /* every line, '\n'-separated, NUL-terminated */
  int lines;
} dvt_log;

void dvt_log_init(dvt_log *l);
void dvt_log_free(dvt_log *l);
void dvt_log_cb(void *user_data, dvoice_log_level level, const char *line,
                size_t len);
/* Nonzero if |needle| occurs in the captured text. */
int dvt_log_contains(const dvt_log *l, const char *needle);

/* ---- a whole deterministic environment ---------------------------------- */

typedef struct dvt_env {
  dvoice_env env;
  dvt_clock clock;
  dvt_rand rand;
  dvt_log log;
} dvt_env;

/* Fake clock at 0, counter RNG at 0, log captured at DEBUG level, default
 * allocator (set env.mem to a dvt_mem's mem to count allocations). */
void dvt_env_init(dvt_env *e);
void dvt_env_free(dvt_env *e);

/* ---- scripted feeds ----------------------------------------------------- */

typedef int (*dvt_sink)(void *user_data, const uint8_t *p, size_t len);

/*
 * Delivers |len| bytes to |sink| in chunks whose sizes cycle through
 * |chunks[0..nchunks)| (a 0 entry means "the rest"). nchunks 0 means one
 * chunk. Stops at the first nonzero return and returns it, else 0.
 */
int dvt_feed(const uint8_t *data, size_t len, const size_t *chunks,
             size_t nchunks, dvt_sink sink, void *user_data);
/* dvt_feed with 1-byte chunks. */
int dvt_feed_drip(const uint8_t *data, size_t len, dvt_sink sink,
                  void *user_data);

/* ---- output accumulator ------------------------------------------------- */

typedef struct dvt_accum {
  dv_buf buf;
  int chunks;
} dvt_accum;

void dvt_accum_init(dvt_accum *a);
void dvt_accum_free(dvt_accum *a);
/* A dvt_sink appending to a dvt_accum. */
int dvt_accum_sink(void *user_data, const uint8_t *p, size_t len);
/* Asserts (cmocka) that the accumulated bytes equal |want|; prints a hex
 * dump of the first difference otherwise. */
#define dvt_accum_assert_eq(a, want, wantlen)                                 \
  dvt_bytes_assert_eq((a)->buf.data, (a)->buf.len, (want), (wantlen),         \
                      __FILE__, __LINE__)
void dvt_bytes_assert_eq(const uint8_t *got, size_t gotlen,
                         const uint8_t *want, size_t wantlen, const char *file,
                         int line);
#define dvt_assert_bytes(got, gotlen, want, wantlen)                          \
  dvt_bytes_assert_eq((got), (gotlen), (want), (wantlen), __FILE__, __LINE__)

/* Decodes a hex string (whitespace ignored) into a new buffer; returns its
 * length. Aborts the test on bad hex. Free with free(). */
size_t dvt_unhex(const char *hex, uint8_t **out);

/* ---- libuv loop teardown ------------------------------------------------ */

struct uv_loop_s;
/*
 * Counts the handles still open on |loop| (printing each), closes them, runs
 * the loop until they are gone, and asserts uv_loop_close() == 0. Returns the
 * number of handles that were still open: a test asserts it is 0.
 */
int dvt_loop_teardown(struct uv_loop_s *loop);

/* ---- environment -------------------------------------------------------- */

/* The value of environment variable |name|, or NULL. If it is unset and CI is
 * set (CI=true), the test fails; otherwise it is skipped by the caller. */
const char *dvt_getenv_required(const char *name);

/* 1 when running under CI (CI set, non-empty and not "false"), else 0. */
int dvt_in_ci(void);

/* For main(), before cmocka runs. cmocka 1.1.5 prints a skipped case as
 * "not ok # SKIP", which meson counts as a failure, so a program whose
 * tests all need |name| skips as a whole: if |name| is unset or empty and
 * not under CI, prints the TAP plan "1..0 # SKIP <name> unset <hint>" and
 * returns 1 (main then returns 0). Under CI it returns 0, so the tests run
 * and fail on the missing variable. |hint| may be NULL. */
int dvt_skip_program_unless(const char *name, const char *hint);

#endif
