/* Unit tests of the voice dispatch parsers (lib/join/dv_join_json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dvt.h"
#include "join/dv_join_json.h"

/* A real-looking dispatch with members the parser ignores. */
#define STATE_OK                                                               \
  "{\"member\":{\"user\":{\"id\":\"80351110224678912\"},\"roles\":[]},"        \
  "\"user_id\":\"80351110224678912\",\"suppress\":false,"                      \
  "\"session_id\":\"90326bd25d71d39b9ef95b299e3872ff\",\"self_video\":false,"  \
  "\"self_mute\":false,\"self_deaf\":true,\"request_to_speak_timestamp\":"     \
  "null,\"mute\":false,\"guild_id\":\"41771983423143936\",\"deaf\":false,"     \
  "\"channel_id\":\"127121515262115840\"}"

#define SERVER_OK                                                              \
  "{\"token\":\"my_token\",\"guild_id\":\"41771983423143936\",\"endpoint\":"   \
  "\"sweetwater-12345.discord.media:443\"}"

static int zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) {
      return 0;
    }
  }
  return 1;
}

static int vs(const char *json, dv_join_voice_state *out, const char **field) {
  return dv_join_parse_voice_state(json, strlen(json), out, field);
}

static int sv(const char *json, dv_join_voice_server *out, const char **field) {
  return dv_join_parse_voice_server(json, strlen(json), out, field);
}

/* Expects a state error |rv| on |field| (NULL: none) and a zeroed out. */
static void state_fails(const char *json, int rv, const char *field) {
  dv_join_voice_state out;
  const char *f = "unset";
  memset(&out, 0xa5, sizeof(out));
  assert_int_equal(vs(json, &out, &f), rv);
  if (field == NULL) {
    assert_null(f);
  } else {
    assert_non_null(f);
    assert_string_equal(f, field);
  }
  assert_true(zeroed(&out, sizeof(out)));
}

static void server_fails(const char *json, int rv, const char *field) {
  dv_join_voice_server out;
  const char *f = "unset";
  memset(&out, 0xa5, sizeof(out));
  assert_int_equal(sv(json, &out, &f), rv);
  if (field == NULL) {
    assert_null(f);
  } else {
    assert_non_null(f);
    assert_string_equal(f, field);
  }
  assert_true(zeroed(&out, sizeof(out)));
}

/* A string of |n| copies of |c|, malloc'd. */
static char *fill(size_t n, char c) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

/* |pre| + |mid| + |post|, malloc'd. */
static char *cat3(const char *pre, const char *mid, const char *post) {
  size_t a = strlen(pre), b = strlen(mid), c = strlen(post);
  char *s = malloc(a + b + c + 1);
  assert_non_null(s);
  memcpy(s, pre, a);
  memcpy(s + a, mid, b);
  memcpy(s + a + b, post, c + 1);
  return s;
}

static void test_state_valid(void **state) {
  dv_join_voice_state out;
  const char *f = "unset";
  (void)state;
  assert_int_equal(vs(STATE_OK, &out, &f), 0);
  assert_null(f);
  assert_true(out.guild_id == 41771983423143936ull);
  assert_true(out.user_id == 80351110224678912ull);
  assert_int_equal(out.has_channel, 1);
  assert_true(out.channel_id == 127121515262115840ull);
  assert_int_equal(out.has_session, 1);
  assert_string_equal(out.session_id, "90326bd25d71d39b9ef95b299e3872ff");
}

static void test_state_null_channel(void **state) {
  dv_join_voice_state out;
  (void)state;
  /* A leave: null channel, the session still present. */
  assert_int_equal(vs("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":"
                      "null,\"session_id\":\"s\"}",
                      &out, NULL),
                   0);
  assert_int_equal(out.has_channel, 0);
  assert_true(out.channel_id == 0);
  assert_int_equal(out.has_session, 1);
  assert_string_equal(out.session_id, "s");
  /* Absent channel and session: a null channel without a session. */
  assert_int_equal(vs("{\"guild_id\":\"1\",\"user_id\":\"2\"}", &out, NULL), 0);
  assert_int_equal(out.has_channel, 0);
  assert_int_equal(out.has_session, 0);
  assert_string_equal(out.session_id, "");
  /* A null session with a null channel is the same. */
  assert_int_equal(vs("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":"
                      "null,\"session_id\":null}",
                      &out, NULL),
                   0);
  assert_int_equal(out.has_session, 0);
}

static void test_state_missing(void **state) {
  (void)state;
  state_fails("{\"user_id\":\"2\",\"channel_id\":\"3\",\"session_id\":\"s\"}",
              DVOICE_ERR_PROTO, "guild_id");
  state_fails("{\"guild_id\":\"1\",\"channel_id\":\"3\",\"session_id\":\"s\"}",
              DVOICE_ERR_PROTO, "user_id");
  /* A channel needs a session: absent, null or empty. */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\"}",
              DVOICE_ERR_PROTO, "session_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":null}",
              DVOICE_ERR_PROTO, "session_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"\"}",
              DVOICE_ERR_PROTO, "session_id");
  state_fails("{}", DVOICE_ERR_PROTO, "guild_id");
}

static void test_state_types(void **state) {
  (void)state;
  /* Snowflakes are strings: numbers are type errors. */
  state_fails("{\"guild_id\":1,\"user_id\":\"2\"}", DVOICE_ERR_PROTO,
              "guild_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":2}", DVOICE_ERR_PROTO,
              "user_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":3,"
              "\"session_id\":\"s\"}",
              DVOICE_ERR_PROTO, "channel_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":3.0,"
              "\"session_id\":\"s\"}",
              DVOICE_ERR_PROTO, "channel_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":null}", DVOICE_ERR_PROTO,
              "user_id");
  state_fails("{\"guild_id\":[\"1\"],\"user_id\":\"2\"}", DVOICE_ERR_PROTO,
              "guild_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":true,"
              "\"session_id\":\"s\"}",
              DVOICE_ERR_PROTO, "channel_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":7}",
              DVOICE_ERR_PROTO, "session_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"session_id\":{}}",
              DVOICE_ERR_PROTO, "session_id");
}

static void test_state_snowflakes(void **state) {
  dv_join_voice_state out;
  static const char *const bad[] = {"0",
                                    "01",
                                    "-1",
                                    " 1",
                                    "1 ",
                                    "+1",
                                    "1e3",
                                    "0x10",
                                    "",
                                    "18446744073709551616",
                                    "99999999999999999999",
                                    "123456789012345678901"};
  char buf[256];
  (void)state;
  assert_int_equal(vs("{\"guild_id\":\"18446744073709551615\",\"user_id\":"
                      "\"1\"}",
                      &out, NULL),
                   0);
  assert_true(out.guild_id == UINT64_MAX);
  assert_true(out.user_id == 1);
  /* Escapes are decoded first: "1\u0030" is "10". */
  assert_int_equal(
      vs("{\"guild_id\":\"1\",\"user_id\":\"1\\u0030\"}", &out, NULL), 0);
  assert_true(out.user_id == 10);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(buf, sizeof(buf),
             "{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"%s\","
             "\"session_id\":\"s\"}",
             bad[i]);
    state_fails(buf, DVOICE_ERR_PROTO, "channel_id");
  }
}

static void test_state_bounds(void **state) {
  dv_join_voice_state out;
  char *sid = fill(DV_JOIN_SESSION_MAX, 'a');
  char *json = cat3("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":"
                    "\"3\",\"session_id\":\"",
                    sid, "\"}");
  (void)state;
  assert_int_equal(vs(json, &out, NULL), 0);
  assert_int_equal(strlen(out.session_id), DV_JOIN_SESSION_MAX);
  free(json);
  free(sid);
  sid = fill(DV_JOIN_SESSION_MAX + 1, 'a');
  json = cat3("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"",
              sid, "\"}");
  state_fails(json, DVOICE_ERR_TOO_LARGE, "session_id");
  free(json);
  free(sid);
  /* Over the bound even with a null channel. */
  sid = fill(100000, 'b');
  json = cat3("{\"guild_id\":\"1\",\"user_id\":\"2\",\"session_id\":\"", sid,
              "\"}");
  state_fails(json, DVOICE_ERR_TOO_LARGE, "session_id");
  free(json);
  free(sid);
}

static void test_state_bad_text(void **state) {
  static const char nul_raw[] =
      "{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
      "\"session_id\":\"a\0b\"}";
  dv_join_voice_state out;
  (void)state;
  /* Escaped NUL: jansson refuses it without JSON_ALLOW_NUL. */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"a\\u0000b\"}",
              DVOICE_ERR_MALFORMED, NULL);
  /* A raw NUL byte inside the text. */
  memset(&out, 0xa5, sizeof(out));
  assert_int_equal(
      dv_join_parse_voice_state(nul_raw, sizeof(nul_raw) - 1, &out, NULL),
      DVOICE_ERR_MALFORMED);
  assert_true(zeroed(&out, sizeof(out)));
  /* Invalid UTF-8 (a lone continuation byte, an overlong form). */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"a\x80\"}",
              DVOICE_ERR_MALFORMED, NULL);
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"\xc0\xaf\"}",
              DVOICE_ERR_MALFORMED, NULL);
  /* A lone surrogate escape. */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"\\ud800\"}",
              DVOICE_ERR_MALFORMED, NULL);
  /* Escaped control characters decode fine but are refused. */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"a\\r\\nb\"}",
              DVOICE_ERR_PROTO, "session_id");
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":\"3\","
              "\"session_id\":\"\\u007f\"}",
              DVOICE_ERR_PROTO, "session_id");
  /* Valid non-ASCII UTF-8 is kept as is. */
  assert_int_equal(vs("{\"guild_id\":\"1\",\"user_id\":\"2\",\"channel_id\":"
                      "\"3\",\"session_id\":\"\xc3\xa9\\u00e9\"}",
                      &out, NULL),
                   0);
  assert_string_equal(out.session_id, "\xc3\xa9\xc3\xa9");
}

static void test_not_json(void **state) {
  static const char *const bad[] = {
      "", " ", "null", "[]", "\"x\"", "42", "{", "{\"guild_id\"",
      "{\"guild_id\":\"1\",\"user_id\":\"2\"} x",
      "{\"guild_id\":\"1\",\"user_id\":\"2\"}{}",
      /* Duplicate keys are refused rather than picking one. */
      "{\"guild_id\":\"1\",\"user_id\":\"2\",\"user_id\":\"3\"}",
      "{'guild_id':'1'}"};
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    state_fails(bad[i], DVOICE_ERR_MALFORMED, NULL);
    server_fails(bad[i], DVOICE_ERR_MALFORMED, NULL);
  }
}

/* Every strict prefix of a valid document is refused; the whole parses. */
static void test_truncated(void **state) {
  static const char *const docs[] = {STATE_OK, SERVER_OK};
  (void)state;
  for (size_t d = 0; d < 2; d++) {
    size_t n = strlen(docs[d]);
    char *copy = malloc(n);
    assert_non_null(copy);
    /* No NUL after the text: the parser must stay within |len|. */
    memcpy(copy, docs[d], n);
    for (size_t k = 0; k < n; k++) {
      dv_join_voice_state o1;
      dv_join_voice_server o2;
      int rv = d == 0 ? dv_join_parse_voice_state(copy, k, &o1, NULL)
                      : dv_join_parse_voice_server(copy, k, &o2, NULL);
      assert_int_equal(rv, DVOICE_ERR_MALFORMED);
    }
    if (d == 0) {
      dv_join_voice_state o1;
      assert_int_equal(dv_join_parse_voice_state(copy, n, &o1, NULL), 0);
    } else {
      dv_join_voice_server o2;
      assert_int_equal(dv_join_parse_voice_server(copy, n, &o2, NULL), 0);
    }
    free(copy);
  }
}

static void test_huge_values(void **state) {
  dv_join_voice_state out;
  char *json;
  char *deep;
  size_t depth = 5000;
  (void)state;
  /* Integers beyond int64 and reals beyond double in ignored members. */
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"x\":"
              "123456789012345678901234567890}",
              DVOICE_ERR_MALFORMED, NULL);
  state_fails("{\"guild_id\":\"1\",\"user_id\":\"2\",\"x\":1e999}",
              DVOICE_ERR_MALFORMED, NULL);
  /* Nesting far deeper than jansson's limit is refused, not recursed. */
  deep = malloc(2 * depth + 1);
  assert_non_null(deep);
  memset(deep, '[', depth);
  memset(deep + depth, ']', depth);
  deep[2 * depth] = '\0';
  json = cat3("{\"guild_id\":\"1\",\"user_id\":\"2\",\"x\":", deep, "}");
  state_fails(json, DVOICE_ERR_MALFORMED, NULL);
  free(json);
  /* Moderate nesting in an ignored member is fine. */
  deep[20] = '\0';
  memset(deep + 10, ']', 10);
  json = cat3("{\"guild_id\":\"1\",\"user_id\":\"2\",\"x\":", deep, "}");
  assert_int_equal(vs(json, &out, NULL), 0);
  free(json);
  free(deep);
}

static void test_server_valid(void **state) {
  dv_join_voice_server out;
  const char *f = "unset";
  (void)state;
  assert_int_equal(sv(SERVER_OK, &out, &f), 0);
  assert_null(f);
  assert_true(out.guild_id == 41771983423143936ull);
  assert_string_equal(out.token, "my_token");
  assert_int_equal(out.has_endpoint, 1);
  assert_string_equal(out.endpoint, "sweetwater-12345.discord.media:443");
}

static void test_server_null_endpoint(void **state) {
  static const char *const docs[] = {
      "{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":null}",
      "{\"token\":\"t\",\"guild_id\":\"1\"}",
      "{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":\"\"}"};
  (void)state;
  for (size_t i = 0; i < 3; i++) {
    dv_join_voice_server out;
    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(sv(docs[i], &out, NULL), 0);
    assert_int_equal(out.has_endpoint, 0);
    assert_string_equal(out.endpoint, "");
    assert_string_equal(out.token, "t");
  }
}

static void test_server_errors(void **state) {
  (void)state;
  server_fails("{\"guild_id\":\"1\",\"endpoint\":\"h\"}", DVOICE_ERR_PROTO,
               "token");
  server_fails("{\"token\":null,\"guild_id\":\"1\"}", DVOICE_ERR_PROTO,
               "token");
  server_fails("{\"token\":\"\",\"guild_id\":\"1\"}", DVOICE_ERR_PROTO,
               "token");
  server_fails("{\"token\":12,\"guild_id\":\"1\"}", DVOICE_ERR_PROTO, "token");
  server_fails("{\"token\":\"t\"}", DVOICE_ERR_PROTO, "guild_id");
  server_fails("{\"token\":\"t\",\"guild_id\":1}", DVOICE_ERR_PROTO,
               "guild_id");
  server_fails("{\"token\":\"t\",\"guild_id\":\"0\"}", DVOICE_ERR_PROTO,
               "guild_id");
  server_fails("{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":443}",
               DVOICE_ERR_PROTO, "endpoint");
  server_fails("{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":false}",
               DVOICE_ERR_PROTO, "endpoint");
  /* A header injection attempt through the endpoint. */
  server_fails("{\"token\":\"t\",\"guild_id\":\"1\",\"endpoint\":"
               "\"h:443\\r\\nX-Evil: 1\"}",
               DVOICE_ERR_PROTO, "endpoint");
  server_fails("{\"token\":\"a\\tb\",\"guild_id\":\"1\"}", DVOICE_ERR_PROTO,
               "token");
}

static void test_server_bounds(void **state) {
  dv_join_voice_server out;
  char *s = fill(DV_JOIN_TOKEN_MAX, 't');
  char *json = cat3("{\"guild_id\":\"1\",\"token\":\"", s, "\"}");
  (void)state;
  assert_int_equal(sv(json, &out, NULL), 0);
  assert_int_equal(strlen(out.token), DV_JOIN_TOKEN_MAX);
  free(json);
  free(s);
  s = fill(DV_JOIN_TOKEN_MAX + 1, 't');
  json = cat3("{\"guild_id\":\"1\",\"token\":\"", s, "\"}");
  server_fails(json, DVOICE_ERR_TOO_LARGE, "token");
  free(json);
  free(s);
  s = fill(DV_JOIN_ENDPOINT_MAX, 'e');
  json = cat3("{\"guild_id\":\"1\",\"token\":\"t\",\"endpoint\":\"", s, "\"}");
  assert_int_equal(sv(json, &out, NULL), 0);
  assert_int_equal(strlen(out.endpoint), DV_JOIN_ENDPOINT_MAX);
  free(json);
  free(s);
  /* The token was already copied when the endpoint fails: it is wiped. */
  s = fill(DV_JOIN_ENDPOINT_MAX + 1, 'e');
  json = cat3("{\"guild_id\":\"1\",\"token\":\"secret\",\"endpoint\":\"", s,
              "\"}");
  server_fails(json, DVOICE_ERR_TOO_LARGE, "endpoint");
  free(json);
  free(s);
}

static void test_null_args(void **state) {
  dv_join_voice_state a;
  dv_join_voice_server b;
  const char *f = "unset";
  (void)state;
  assert_int_equal(dv_join_parse_voice_state(NULL, 0, &a, &f),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(f);
  assert_int_equal(dv_join_parse_voice_state("{}", 2, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_parse_voice_server(NULL, 0, &b, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_join_parse_voice_server("{}", 2, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
}

/* The parsed fields drive the join core to a connection, in either order. */
static void test_feeds_join(void **state) {
  dvt_env e;
  dv_join j;
  dv_join_config cfg;
  dv_join_voice_state st;
  dv_join_voice_server srv;
  dv_join_action a;
  (void)state;
  for (int order = 0; order < 2; order++) {
    dvt_env_init(&e);
    dv_join_config_default(&cfg);
    cfg.guild_id = 41771983423143936ull;
    cfg.user_id = 80351110224678912ull;
    assert_int_equal(dv_join_init(&j, &cfg, &e.env), 0);
    assert_int_equal(dv_join_start(&j, 127121515262115840ull, 0, 0, 0), 0);
    assert_int_equal(dv_join_next_action(&j, &a), 1);
    assert_int_equal(a.type, DV_JOIN_ACT_SEND_OP4);
    assert_int_equal(vs(STATE_OK, &st, NULL), 0);
    assert_int_equal(sv(SERVER_OK, &srv, NULL), 0);
    for (int k = 0; k < 2; k++) {
      if ((k == 0) == (order == 0)) {
        assert_int_equal(dv_join_on_voice_state(&j, st.user_id, st.has_channel,
                                                st.channel_id, st.session_id,
                                                0),
                         0);
      } else {
        assert_int_equal(
            dv_join_on_voice_server(&j, srv.token,
                                    srv.has_endpoint ? srv.endpoint : NULL, 0),
            0);
      }
      assert_int_equal(dv_join_next_action(&j, &a), k);
    }
    assert_int_equal(a.type, DV_JOIN_ACT_CONNECT);
    assert_string_equal(a.u.creds.session_id, st.session_id);
    assert_string_equal(a.u.creds.token, "my_token");
    assert_string_equal(a.u.creds.endpoint, srv.endpoint);
    assert_int_equal(dv_join_get_state(&j), DV_JOIN_CONNECTED);
    dv_join_free(&j);
    dvt_env_free(&e);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_state_valid),
      cmocka_unit_test(test_state_null_channel),
      cmocka_unit_test(test_state_missing),
      cmocka_unit_test(test_state_types),
      cmocka_unit_test(test_state_snowflakes),
      cmocka_unit_test(test_state_bounds),
      cmocka_unit_test(test_state_bad_text),
      cmocka_unit_test(test_not_json),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_huge_values),
      cmocka_unit_test(test_server_valid),
      cmocka_unit_test(test_server_null_endpoint),
      cmocka_unit_test(test_server_errors),
      cmocka_unit_test(test_server_bounds),
      cmocka_unit_test(test_null_args),
      cmocka_unit_test(test_feeds_join),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
