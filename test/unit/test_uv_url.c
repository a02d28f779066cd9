/* Unit tests for the ws:// / wss:// URL parser in lib/uv. */
#include "dvt.h"

#include "uv/dv_uv_url.h"

typedef struct good_case {
  const char *url;
  int secure;
  const char *host;
  unsigned port;
  const char *target;
  const char *authority;
} good_case;

static const good_case good[] = {
    {"wss://gateway.discord.gg/?v=10&encoding=json", 1, "gateway.discord.gg",
     443, "/?v=10&encoding=json", "gateway.discord.gg"},
    {"wss://c-ams01.discord.media:443/?v=8", 1, "c-ams01.discord.media", 443,
     "/?v=8", "c-ams01.discord.media:443"},
    {"ws://127.0.0.1:8080", 0, "127.0.0.1", 8080, "/", "127.0.0.1:8080"},
    {"ws://localhost", 0, "localhost", 80, "/", "localhost"},
    {"WSS://Example.COM?x=1", 1, "Example.COM", 443, "/?x=1", "Example.COM"},
    {"ws://[::1]:9/a/b?c", 0, "::1", 9, "/a/b?c", "[::1]:9"},
    {"wss://h:65535/", 1, "h", 65535, "/", "h:65535"},
    {"ws://h_1.x/%41", 0, "h_1.x", 80, "/%41", "h_1.x"},
};

static void test_url_good(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    dv_uv_url u;
    assert_int_equal(dv_uv_url_parse(&u, good[i].url, NULL), 0);
    assert_int_equal(u.secure, good[i].secure);
    assert_string_equal(u.host, good[i].host);
    assert_int_equal(u.port, good[i].port);
    assert_string_equal(u.target, good[i].target);
    assert_string_equal(u.authority, good[i].authority);
    dv_uv_url_free(&u, NULL);
    dv_uv_url_free(&u, NULL); /* idempotent */
  }
}

typedef struct bad_case {
  const char *url;
  int err;
} bad_case;

static const bad_case bad[] = {
    {"http://example.com/", DVOICE_ERR_UNSUPPORTED},
    {"wss:/example.com/", DVOICE_ERR_UNSUPPORTED},
    {"", DVOICE_ERR_UNSUPPORTED},
    {"wss://", DVOICE_ERR_MALFORMED},
    {"wss:///path", DVOICE_ERR_MALFORMED},
    {"wss://:443/", DVOICE_ERR_MALFORMED},
    {"wss://host:/", DVOICE_ERR_MALFORMED},
    {"wss://host:0/", DVOICE_ERR_MALFORMED},
    {"wss://host:65536/", DVOICE_ERR_MALFORMED},
    {"wss://host:123456/", DVOICE_ERR_MALFORMED},
    {"wss://host:12x/", DVOICE_ERR_MALFORMED},
    {"wss://user@host/", DVOICE_ERR_MALFORMED},
    {"wss://user:pw@host/", DVOICE_ERR_MALFORMED},
    {"wss://host/#frag", DVOICE_ERR_MALFORMED},
    {"wss://host#frag", DVOICE_ERR_MALFORMED},
    {"wss://host/a b", DVOICE_ERR_MALFORMED},
    {"wss://host/a\r\nX: y", DVOICE_ERR_MALFORMED},
    {"wss://host/\x7f", DVOICE_ERR_MALFORMED},
    {"wss://host/\xc3\xa9", DVOICE_ERR_MALFORMED},
    {"wss://ho st/", DVOICE_ERR_MALFORMED},
    {"wss://[::1/", DVOICE_ERR_MALFORMED},
    {"wss://[]/", DVOICE_ERR_MALFORMED},
    {"wss://[::1]x/", DVOICE_ERR_MALFORMED},
};

static void test_url_bad(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    dv_uv_url u;
    int rv = dv_uv_url_parse(&u, bad[i].url, NULL);
    if (rv != bad[i].err) {
      fail_msg("url %zu \"%s\": got %d want %d", i, bad[i].url, rv, bad[i].err);
    }
    assert_null(u.host);
    assert_null(u.target);
  }
  assert_int_equal(dv_uv_url_parse(NULL, "ws://h", NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
}

static void test_url_host_length(void **state) {
  char url[400];
  dv_uv_url u;
  (void)state;
  /* 253 characters is the DNS limit and accepted; 254 is not. */
  strcpy(url, "wss://");
  memset(url + 6, 'a', 253);
  strcpy(url + 6 + 253, "/x");
  assert_int_equal(dv_uv_url_parse(&u, url, NULL), 0);
  assert_int_equal(strlen(u.host), 253);
  dv_uv_url_free(&u, NULL);
  memset(url + 6, 'a', 254);
  strcpy(url + 6 + 254, "/x");
  assert_int_equal(dv_uv_url_parse(&u, url, NULL), DVOICE_ERR_MALFORMED);
}

static int parse_with(const dvoice_mem *mem, void *ud) {
  dv_uv_url u;
  int rv = dv_uv_url_parse(&u, (const char *)ud, mem);
  dv_uv_url_free(&u, mem);
  return rv;
}

static void test_url_nomem(void **state) {
  (void)state;
  assert_int_equal(dvt_mem_fail_each(parse_with, "wss://h:1/p?q"), 3);
  assert_int_equal(dvt_mem_fail_each(parse_with, "ws://h?q"), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_good),
      cmocka_unit_test(test_url_bad),
      cmocka_unit_test(test_url_host_length),
      cmocka_unit_test(test_url_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
