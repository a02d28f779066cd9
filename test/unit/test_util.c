/* Unit tests for lib/util: buffers, the bounded reader/writer, varints,
 * error strings, logging. */
#include "dvt.h"

#include "util/dv_buf.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"
#include "util/dv_ring.h"
#include "util/dv_rw.h"

static void test_buf_append_and_consume(void **state) {
  dv_buf b;
  (void)state;
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_buf_append(&b, "hello", 5), 0);
  assert_int_equal(dv_buf_push(&b, ' '), 0);
  assert_int_equal(dv_buf_appendf(&b, "%d-%s", 42, "x"), 0);
  assert_int_equal(b.len, 10);
  assert_string_equal((char *)b.data, "hello 42-x");
  dv_buf_consume(&b, 6);
  assert_string_equal((char *)b.data, "42-x");
  dv_buf_consume(&b, 100);
  assert_int_equal(b.len, 0);
  for (int i = 0; i < 1000; i++) {
    assert_int_equal(dv_buf_push(&b, (uint8_t)i), 0);
  }
  assert_int_equal(b.len, 1000);
  assert_int_equal(b.data[999], (uint8_t)999);
  dv_buf_free(&b);
}

static int grow_buf(const dvoice_mem *mem, void *ud) {
  dv_buf b;
  int rv = 0;
  (void)ud;
  dv_buf_init(&b, mem);
  for (int i = 0; i < 300 && rv == 0; i++) {
    rv = dv_buf_appendf(&b, "line %d\n", i);
  }
  dv_buf_free(&b);
  return rv;
}

static void test_buf_nomem_each_allocation(void **state) {
  (void)state;
  /* 300 lines of ~9 bytes need several doublings; each one can fail. */
  assert_true(dvt_mem_fail_each(grow_buf, NULL) >= 5);
}

static void test_rd_integers(void **state) {
  static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                               0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10,
                               0x11, 0x12};
  dv_rd r;
  uint8_t u8;
  uint16_t u16;
  uint32_t u24, u32;
  uint64_t u64;
  (void)state;
  dv_rd_init(&r, in, sizeof(in));
  assert_int_equal(dv_rd_u8(&r, &u8), 0);
  assert_int_equal(dv_rd_u16(&r, &u16), 0);
  assert_int_equal(dv_rd_u24(&r, &u24), 0);
  assert_int_equal(dv_rd_u32(&r, &u32), 0);
  assert_int_equal(dv_rd_u64(&r, &u64), 0);
  assert_int_equal(u8, 0x01);
  assert_int_equal(u16, 0x0203);
  assert_int_equal(u24, 0x040506);
  assert_int_equal(u32, 0x0708090a);
  assert_true(u64 == 0x0b0c0d0e0f101112ull);
  assert_int_equal(dv_rd_finish(&r), 0);
}

static void test_rd_truncation_is_sticky(void **state) {
  static const uint8_t in[] = {0xaa, 0xbb, 0xcc};
  dv_rd r;
  uint32_t v32;
  uint8_t v8;
  (void)state;
  dv_rd_init(&r, in, sizeof(in));
  assert_int_equal(dv_rd_u32(&r, &v32), DVOICE_ERR_TRUNCATED);
  assert_int_equal(v32, 0);
  /* Sticky: even a read that would fit now fails. */
  assert_int_equal(dv_rd_u8(&r, &v8), DVOICE_ERR_TRUNCATED);
  assert_int_equal(v8, 0);
  assert_int_equal(dv_rd_left(&r), 0);
  assert_int_equal(dv_rd_finish(&r), DVOICE_ERR_TRUNCATED);
}

static void test_rd_trailing(void **state) {
  static const uint8_t in[] = {0x01, 0x02};
  dv_rd r;
  uint8_t v;
  (void)state;
  dv_rd_init(&r, in, sizeof(in));
  dv_rd_u8(&r, &v);
  assert_int_equal(dv_rd_finish(&r), DVOICE_ERR_TRAILING);
}

/* RFC 9000 appendix A.1 examples that fit MLS's 1, 2 and 4 byte forms. */
static void test_varint_known_encodings(void **state) {
  static const struct {
    const char *hex;
    uint32_t value;
  } cases[] = {
      {"25", 37},
      {"7bbd", 15293},
      {"9d7f3e7d", 494878333},
      {"00", 0},
      {"3f", 63},
      {"4040", 64},
      {"7fff", 16383},
      {"80004000", 16384},
      {"bfffffff", 0x3fffffff},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t *bin;
    size_t n = dvt_unhex(cases[i].hex, &bin);
    dv_rd r;
    uint32_t v;
    dv_buf b;
    dv_wr w;
    dv_rd_init(&r, bin, n);
    assert_int_equal(dv_rd_varint(&r, &v), 0);
    assert_int_equal(v, cases[i].value);
    assert_int_equal(dv_rd_finish(&r), 0);
    dv_buf_init(&b, NULL);
    dv_wr_init(&w, &b);
    dv_wr_varint(&w, cases[i].value);
    assert_int_equal(w.err, 0);
    dvt_assert_bytes(b.data, b.len, bin, n);
    assert_int_equal(dv_varint_size(v), n);
    dv_buf_free(&b);
    free(bin);
  }
}

static void test_varint_rejects_bad_forms(void **state) {
  static const struct {
    const char *hex;
    int err;
  } cases[] = {
      {"4025", DVOICE_ERR_MALFORMED},         /* 37 in two bytes */
      {"80000025", DVOICE_ERR_MALFORMED},     /* 37 in four bytes */
      {"80003fff", DVOICE_ERR_MALFORMED},     /* 16383 in four bytes */
      {"c000000000000001", DVOICE_ERR_MALFORMED}, /* 8-byte form */
      {"40", DVOICE_ERR_TRUNCATED},
      {"800000", DVOICE_ERR_TRUNCATED},
      {"", DVOICE_ERR_TRUNCATED},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t *bin;
    size_t n = dvt_unhex(cases[i].hex, &bin);
    dv_rd r;
    uint32_t v = 99;
    dv_rd_init(&r, bin, n);
    assert_int_equal(dv_rd_varint(&r, &v), cases[i].err);
    assert_int_equal(v, 0);
    free(bin);
  }
}

static void test_varint_too_large_to_write(void **state) {
  dv_buf b;
  dv_wr w;
  (void)state;
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_wr_varint(&w, 0x40000000u);
  assert_int_equal(w.err, DVOICE_ERR_TOO_LARGE);
  dv_wr_u8(&w, 1); /* sticky: nothing more is written */
  assert_int_equal(b.len, 0);
  dv_buf_free(&b);
}

static void test_opaque_and_nested_vectors(void **state) {
  uint8_t big[300];
  dv_buf b;
  dv_wr w;
  dv_rd r, sub, inner;
  const uint8_t *p;
  size_t n, mark, mark2;
  uint16_t v16;
  (void)state;
  memset(big, 0x5a, sizeof(big));
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_wr_opaque(&w, "abc", 3);
  mark = dv_wr_vec_begin(&w);
  dv_wr_u16(&w, 0x1234);
  mark2 = dv_wr_vec_begin(&w);
  dv_wr_bytes(&w, big, sizeof(big));
  dv_wr_vec_end(&w, mark2);
  dv_wr_vec_end(&w, mark);
  dv_wr_opaque(&w, NULL, 0);
  assert_int_equal(w.err, 0);
  /* 1+3, then outer: 2-byte prefix + 2 + (2 + 300), then 1. */
  assert_int_equal(b.len, 4 + 2 + 2 + 2 + 300 + 1);
  assert_int_equal(b.data[4], 0x40 | ((2 + 2 + 300) >> 8));
  assert_int_equal(b.data[5], (2 + 2 + 300) & 0xff);

  dv_rd_init(&r, b.data, b.len);
  assert_int_equal(dv_rd_opaque(&r, &p, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(p, "abc", 3);
  assert_int_equal(dv_rd_vec(&r, &sub), 0);
  assert_int_equal(dv_rd_u16(&sub, &v16), 0);
  assert_int_equal(v16, 0x1234);
  assert_int_equal(dv_rd_vec(&sub, &inner), 0);
  assert_int_equal(dv_rd_left(&inner), 300);
  assert_int_equal(dv_rd_finish(&sub), 0);
  assert_int_equal(dv_rd_opaque(&r, &p, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(dv_rd_finish(&r), 0);
  dv_buf_free(&b);
}

static void test_opaque_length_past_end(void **state) {
  static const uint8_t in[] = {0x05, 'a', 'b'};
  dv_rd r, sub;
  const uint8_t *p;
  size_t n;
  (void)state;
  dv_rd_init(&r, in, sizeof(in));
  assert_int_equal(dv_rd_opaque(&r, &p, &n), DVOICE_ERR_TRUNCATED);
  assert_null(p);
  assert_int_equal(n, 0);
  dv_rd_init(&r, in, sizeof(in));
  assert_int_equal(dv_rd_vec(&r, &sub), DVOICE_ERR_TRUNCATED);
  assert_int_equal(dv_rd_left(&sub), 0);
}

static void test_strerror_covers_every_code(void **state) {
  (void)state;
  assert_string_equal(dvoice_strerror(0), "success");
  assert_string_equal(dvoice_strerror(-1), "unknown error");
  assert_string_equal(dvoice_strerror(-1999), "unknown error");
  for (int e = -1999; e <= -1000; e++) {
    const char *name = dvoice_err_name(e);
    if (strcmp(name, "UNKNOWN") == 0) {
      continue;
    }
    /* Every named code has its own text, and the name is the enum's. */
    assert_string_not_equal(dvoice_strerror(e), "unknown error");
    assert_true(strncmp(name, "DVOICE_ERR_", 11) == 0);
  }
  assert_string_equal(dvoice_err_name(DVOICE_ERR_WS_TOO_BIG),
                      "DVOICE_ERR_WS_TOO_BIG");
  assert_true(dvoice_err_is_fatal(DVOICE_ERR_NOMEM));
  assert_false(dvoice_err_is_fatal(DVOICE_ERR_PROTO));
  assert_false(dvoice_err_is_fatal(-4000));
}

static int side_effects;

static int bump(void) {
  return ++side_effects;
}

static void test_log_level_checked_before_formatting(void **state) {
  dvt_env e;
  (void)state;
  dvt_env_init(&e);
  e.env.log_level = DVOICE_LOG_WARN;
  side_effects = 0;
  DV_DEBUG(&e.env, "ws: debug %d", bump());
  DV_INFO(&e.env, "ws: info %d", bump());
  assert_int_equal(side_effects, 0);
  assert_int_equal(e.log.lines, 0);
  DV_WARN(&e.env, "ws: warn %d\nsecond", bump());
  assert_int_equal(side_effects, 1);
  assert_int_equal(e.log.lines, 1);
  assert_true(dvt_log_contains(&e.log, "warn: ws: warn 1 second"));
  dvt_env_free(&e);
}

static void test_log_long_line_is_cut(void **state) {
  char big[DV_LOG_LINE_MAX * 2];
  dvt_env e;
  (void)state;
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  dvt_env_init(&e);
  DV_ERROR(&e.env, "%s", big);
  assert_int_equal(e.log.lines, 1);
  assert_true(dvt_log_contains(&e.log, "xxx..."));
  dvt_env_free(&e);
}

static void test_ring_fifo_across_growth_and_wrap(void **state) {
  dv_ring r = {0};
  uint32_t next_in = 0, next_out = 0;
  (void)state;
  assert_null(dv_ring_shift(&r, sizeof(uint32_t)));
  /* Interleave pushes and shifts so the head wraps before each growth. */
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 7; i++) {
      uint32_t *slot = dv_ring_push(&r, NULL, sizeof(uint32_t));
      assert_non_null(slot);
      assert_int_equal(*slot, 0);
      *slot = next_in++;
    }
    for (int i = 0; i < 5; i++) {
      uint32_t *got = dv_ring_shift(&r, sizeof(uint32_t));
      assert_non_null(got);
      assert_int_equal(*got, next_out++);
    }
  }
  assert_int_equal(r.len, next_in - next_out);
  dv_ring_clear(&r);
  assert_null(dv_ring_shift(&r, sizeof(uint32_t)));
  dv_ring_free(&r, NULL);
}

static int ring_fill(const dvoice_mem *mem, void *ud) {
  dv_ring r = {0};
  int rv = 0;
  (void)ud;
  for (int i = 0; i < 100; i++) {
    int *slot = dv_ring_push(&r, mem, sizeof(int));
    if (slot == NULL) {
      rv = DVOICE_ERR_NOMEM;
      break;
    }
    *slot = i;
  }
  /* A failed push leaves the queue intact. */
  for (int i = 0; rv == DVOICE_ERR_NOMEM && r.len > 0; i++) {
    assert_int_equal(*(int *)dv_ring_shift(&r, sizeof(int)), i);
  }
  dv_ring_free(&r, mem);
  return rv;
}

static void test_ring_nomem_keeps_contents(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(ring_fill, NULL) >= 5);
}

static void test_version(void **state) {
  (void)state;
  assert_string_equal(dvoice_version(), DVOICE_VERSION);
  assert_int_equal(dvoice_version_num(), DVOICE_VERSION_NUM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buf_append_and_consume),
      cmocka_unit_test(test_buf_nomem_each_allocation),
      cmocka_unit_test(test_rd_integers),
      cmocka_unit_test(test_rd_truncation_is_sticky),
      cmocka_unit_test(test_rd_trailing),
      cmocka_unit_test(test_varint_known_encodings),
      cmocka_unit_test(test_varint_rejects_bad_forms),
      cmocka_unit_test(test_varint_too_large_to_write),
      cmocka_unit_test(test_opaque_and_nested_vectors),
      cmocka_unit_test(test_opaque_length_past_end),
      cmocka_unit_test(test_strerror_covers_every_code),
      cmocka_unit_test(test_log_level_checked_before_formatting),
      cmocka_unit_test(test_log_long_line_is_cut),
      cmocka_unit_test(test_ring_fifo_across_growth_and_wrap),
      cmocka_unit_test(test_ring_nomem_keeps_contents),
      cmocka_unit_test(test_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
