/* Unit tests for lib/json: envelope, strict getters, snowflakes, writer. */
#include "dvt.h"

#include "json/dv_json.h"

static int parse(dv_json_envelope *e, const char *s) {
  return dv_json_envelope_parse(e, s, strlen(s), "seq");
}

static void test_envelope_fields(void **state) {
  dv_json_envelope e;
  (void)state;
  assert_int_equal(parse(&e, "{\"op\":5,\"d\":{\"x\":1},\"seq\":0}"), 0);
  assert_int_equal(e.op, 5);
  assert_true(json_is_object(e.d));
  assert_int_equal(e.has_seq, 1);
  assert_int_equal(e.seq, 0);
  assert_null(e.t);
  dv_json_envelope_free(&e);

  assert_int_equal(parse(&e, "{\"op\":8,\"d\":null,\"seq\":null,\"t\":null}"),
                   0);
  assert_int_equal(e.op, 8);
  assert_true(json_is_null(e.d));
  assert_int_equal(e.has_seq, 0);
  dv_json_envelope_free(&e);

  assert_int_equal(parse(&e, "{\"op\":9}"), 0);
  assert_null(e.d);
  assert_int_equal(e.has_seq, 0);
  dv_json_envelope_free(&e);

  /* Main gateway form: "s" and "t". */
  {
    const char *m = "{\"op\":0,\"d\":{},\"s\":42,\"t\":\"READY\"}";
    assert_int_equal(dv_json_envelope_parse(&e, m, strlen(m), "s"), 0);
  }
  assert_int_equal(e.has_seq, 1);
  assert_int_equal(e.seq, 42);
  assert_string_equal(e.t, "READY");
  dv_json_envelope_free(&e);
}

static void test_envelope_rejects(void **state) {
  static const char *const bad[] = {
      "",
      "[]",
      "42",
      "{\"d\":{}}",                          /* no op */
      "{\"op\":\"5\"}",                      /* op as string */
      "{\"op\":5.0}",                        /* op as real */
      "{\"op\":-1}",                         /* op out of range */
      "{\"op\":65536}",                      /* op out of range */
      "{\"op\":5,\"seq\":\"1\"}",            /* seq as string */
      "{\"op\":5,\"seq\":-1}",               /* negative seq */
      "{\"op\":5,\"seq\":9007199254740992}", /* seq above 2^53-1 */
      "{\"op\":5,\"seq\":1.5}",              /* seq real */
      "{\"op\":5,\"t\":5}",                  /* t not a string */
      "{\"op\":5,\"op\":6}",                 /* duplicate key */
      "{\"op\":5} x",                        /* trailing garbage */
      "{\"op\":5",                           /* truncated */
      "{\"op\":5,\"d\":\"a\\u0000b\"}",      /* NUL in a string */
      "{\"op\":99999999999999999999999}",    /* integer overflow */
  };
  dv_json_envelope e;
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int rv = parse(&e, bad[i]);
    if (rv != DVOICE_ERR_PROTO) {
      fail_msg("accepted or wrong error for %s: %d", bad[i], rv);
    }
    assert_null(e.root);
    dv_json_envelope_free(&e);
  }
  /* An embedded NUL byte in the input, outside any string. */
  assert_int_equal(dv_json_envelope_parse(&e, "{\"op\":5}\0", 9, "seq"),
                   DVOICE_ERR_PROTO);
}

static void test_getters(void **state) {
  json_error_t jerr;
  json_t *o = json_loads("{\"i\":7,\"r\":2.5,\"s\":\"str\",\"n\":null,"
                         "\"a\":[1],\"o\":{},\"big\":4294967296,"
                         "\"sf\":\"1234567890123456789\"}",
                         0, &jerr);
  int64_t i;
  double r;
  const char *s;
  size_t len;
  json_t *sub;
  uint64_t sf;
  int present;
  (void)state;
  assert_non_null(o);
  assert_int_equal(dv_json_get_int(o, "i", 0, 10, &i), 0);
  assert_int_equal(i, 7);
  assert_int_equal(dv_json_get_int(o, "i", 8, 10, &i), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_int(o, "r", 0, 10, &i), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_int(o, "s", 0, 10, &i), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_int(o, "missing", 0, 10, &i), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_int(o, "big", 0, UINT32_MAX, &i),
                   DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_int_opt(o, "n", 0, 10, &i, &present), 0);
  assert_int_equal(present, 0);
  assert_int_equal(dv_json_get_int_opt(o, "missing", 0, 10, &i, &present), 0);
  assert_int_equal(present, 0);
  assert_int_equal(dv_json_get_int_opt(o, "i", 0, 10, &i, &present), 0);
  assert_int_equal(present, 1);
  assert_int_equal(dv_json_get_int_opt(o, "s", 0, 10, &i, &present),
                   DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_number(o, "r", 0, 10, &r), 0);
  assert_true(r == 2.5);
  assert_int_equal(dv_json_get_number(o, "i", 0, 10, &r), 0);
  assert_true(r == 7.0);
  assert_int_equal(dv_json_get_number(o, "r", 3, 10, &r), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_number(o, "s", 0, 10, &r), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_str(o, "s", &s, &len), 0);
  assert_string_equal(s, "str");
  assert_int_equal(len, 3);
  assert_int_equal(dv_json_get_str(o, "i", &s, &len), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_str(o, "n", &s, &len), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_array(o, "a", &sub), 0);
  assert_int_equal(dv_json_get_array(o, "o", &sub), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_object(o, "o", &sub), 0);
  assert_int_equal(dv_json_get_object(o, "a", &sub), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_snowflake(o, "sf", &sf), 0);
  assert_true(sf == 1234567890123456789ull);
  assert_int_equal(dv_json_get_snowflake(o, "i", &sf), DVOICE_ERR_PROTO);
  /* Getters on a non-object fail instead of crashing. */
  assert_int_equal(dv_json_get_int(NULL, "i", 0, 1, &i), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_get_str(json_object_get(o, "a"), "i", &s, NULL),
                   DVOICE_ERR_PROTO);
  json_decref(o);
}

static void test_snowflakes(void **state) {
  static const char *const bad[] = {
      "",
      "-1",
      "+1",
      " 1",
      "1 ",
      "01",
      "1a",
      "0x10",
      "1.0",
      "18446744073709551616",
      "99999999999999999999",
      "123456789012345678901",
  };
  uint64_t v;
  char buf[DV_SNOWFLAKE_STR_MAX];
  (void)state;
  assert_int_equal(dv_json_snowflake_parse("0", 1, &v), 0);
  assert_true(v == 0);
  assert_int_equal(dv_json_snowflake_parse("18446744073709551615", 20, &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(dv_json_snowflake_parse("81384788765712384", 17, &v), 0);
  assert_true(v == 81384788765712384ull);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (dv_json_snowflake_parse(bad[i], strlen(bad[i]), &v) !=
        DVOICE_ERR_PROTO) {
      fail_msg("accepted snowflake '%s'", bad[i]);
    }
  }
  /* Length is explicit: an embedded NUL is a non-digit. */
  assert_int_equal(dv_json_snowflake_parse("1\0002", 3, &v), DVOICE_ERR_PROTO);
  assert_int_equal(dv_json_snowflake_fmt(0, buf), 1);
  assert_string_equal(buf, "0");
  assert_int_equal(dv_json_snowflake_fmt(UINT64_MAX, buf), 20);
  assert_string_equal(buf, "18446744073709551615");
  /* Round trip. */
  for (uint64_t x = 1; x < UINT64_MAX / 7; x = x * 7 + 3) {
    size_t n = dv_json_snowflake_fmt(x, buf);
    assert_int_equal(dv_json_snowflake_parse(buf, n, &v), 0);
    assert_true(v == x);
  }
}

static void test_writer(void **state) {
  dv_buf b;
  json_t *j;
  (void)state;
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_json_append_str(&b, "a\"b\\c\n\x01\xc3\xa9", 9), 0);
  assert_int_equal(dv_buf_push(&b, ','), 0);
  assert_int_equal(dv_json_append_snowflake(&b, 42), 0);
  assert_int_equal(dv_buf_push(&b, ','), 0);
  j = json_pack("{s:i,s:[i,s]}", "transition_id", 3, "x", 1, "y");
  assert_non_null(j);
  assert_int_equal(dv_json_append_value(&b, j), 0);
  json_decref(j);
  dvt_assert_bytes(b.data, b.len,
                   (const uint8_t *)"\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\","
                                    "\"42\",{\"transition_id\":3,\"x\":[1,"
                                    "\"y\"]}",
                   strlen("\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\",\"42\","
                          "{\"transition_id\":3,\"x\":[1,\"y\"]}"));
  /* What the writer produces parses back to the same string. */
  {
    dv_buf b2;
    json_t *back;
    json_error_t jerr;
    dv_buf_init(&b2, NULL);
    assert_int_equal(dv_json_append_str(&b2, "t\"o\\k\x1f", 6), 0);
    back = json_loadb((const char *)b2.data, b2.len, JSON_DECODE_ANY, &jerr);
    assert_non_null(back);
    assert_string_equal(json_string_value(back), "t\"o\\k\x1f");
    json_decref(back);
    dv_buf_free(&b2);
  }
  assert_int_equal(dv_json_append_value(&b, NULL), DVOICE_ERR_INVALID_ARGUMENT);
  dv_buf_free(&b);
}

static int write_all(const dvoice_mem *mem, void *ud) {
  dv_buf b;
  int rv;
  json_t *j = ud;
  dv_buf_init(&b, mem);
  rv = dv_json_append_str(&b, "hello world, a long enough string to grow", 41);
  if (rv == 0) {
    rv = dv_json_append_value(&b, j);
  }
  dv_buf_free(&b);
  return rv;
}

static void test_writer_nomem(void **state) {
  json_t *j = json_pack("{s:s}", "k", "a value long enough to need growth");
  (void)state;
  assert_true(dvt_mem_fail_each(write_all, j) >= 1);
  json_decref(j);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envelope_fields),
      cmocka_unit_test(test_envelope_rejects),
      cmocka_unit_test(test_getters),
      cmocka_unit_test(test_snowflakes),
      cmocka_unit_test(test_writer),
      cmocka_unit_test(test_writer_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
