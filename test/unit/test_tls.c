/* Unit tests for lib/tls: client and server cores back to back in memory
 * with a PKI generated at test time (tls_testca.c). Handshake, data both
 * ways, any chunking, chain and host name failures, close_notify, config
 * errors, the DRBG drawing only from the random hook, allocation failures. */
#include "dvt.h"

#include <unistd.h>

#include "tls/dv_tls.h"
#include "tls_testca.h"
#include "util/dv_mem.h"
#include "util/dv_rw.h"
#include "ws/dv_ws.h"

static dvt_testca pki;

static int group_setup(void **state) {
  (void)state;
  return dvt_testca_generate(&pki, "localhost", 42) == 0 ? 0 : -1;
}

/* ---- a client/server pair ---------------------------------------------- */

typedef struct pair {
  dv_tls_conf *cconf;
  dv_tls_conf *sconf;
  dv_tls c;
  dv_tls s;
  dv_buf c_plain; /* what the client read */
  dv_buf s_plain; /* what the server read */
  int c_err;      /* first error from feeding the client */
  int s_err;
} pair;

static int make_client_conf(dv_tls_conf **out, const char *ca_pem,
                            const dvoice_env *env) {
  dv_tls_conf_opts o;
  memset(&o, 0, sizeof o);
  o.ca_pem = (const uint8_t *)ca_pem;
  o.ca_pem_len = strlen(ca_pem);
  return dv_tls_conf_new(out, &o, env);
}

static int make_server_conf(dv_tls_conf **out, const dvoice_env *env) {
  dv_tls_conf_opts o;
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.cert_pem = (const uint8_t *)pki.cert_pem;
  o.cert_pem_len = strlen(pki.cert_pem);
  o.key_pem = (const uint8_t *)pki.key_pem;
  o.key_pem_len = strlen(pki.key_pem);
  return dv_tls_conf_new(out, &o, env);
}

static int pair_init(pair *p, const dvoice_env *env, const char *ca_pem,
                     const char *hostname) {
  int rv;
  memset(p, 0, sizeof *p);
  dv_buf_init(&p->c_plain, env->mem);
  dv_buf_init(&p->s_plain, env->mem);
  rv = make_client_conf(&p->cconf, ca_pem, env);
  if (rv == 0) {
    rv = make_server_conf(&p->sconf, env);
  }
  if (rv == 0) {
    rv = dv_tls_init(&p->c, p->cconf, hostname);
  }
  if (rv == 0) {
    rv = dv_tls_init(&p->s, p->sconf, NULL);
  }
  return rv;
}

static void pair_free(pair *p) {
  dv_tls_free(&p->c);
  dv_tls_free(&p->s);
  dv_tls_conf_del(p->cconf);
  dv_tls_conf_del(p->sconf);
  dv_buf_free(&p->c_plain);
  dv_buf_free(&p->s_plain);
}

static int sink_tls(void *ud, const uint8_t *p, size_t len) {
  return dv_tls_feed(ud, p, len);
}

/* Moves |from|'s ciphertext into |to| in chunks; reads |to|'s plaintext. */
static int transfer(dv_tls *from, dv_tls *to, dv_buf *plain,
                    const size_t *chunks, size_t nchunks) {
  dv_buf *ob = dv_tls_outbuf(from);
  dv_buf tmp = *ob;
  int rv;
  dv_buf_init(ob, tmp.mem);
  rv = dvt_feed(tmp.data, tmp.len, chunks, nchunks, sink_tls, to);
  dv_buf_free(&tmp);
  if (dv_tls_read(to, plain) != 0 && rv == 0) {
    rv = DVOICE_ERR_NOMEM;
  }
  return rv;
}

/* Shuttles until both outbufs are empty or one side errs. */
static int pump_chunked(pair *p, const size_t *chunks, size_t nchunks) {
  for (int i = 0; i < 50; i++) {
    int rv;
    if (dv_tls_outbuf(&p->c)->len == 0 && dv_tls_outbuf(&p->s)->len == 0) {
      return 0;
    }
    rv = transfer(&p->c, &p->s, &p->s_plain, chunks, nchunks);
    if (rv != 0) {
      p->s_err = rv;
      return rv;
    }
    rv = transfer(&p->s, &p->c, &p->c_plain, chunks, nchunks);
    if (rv != 0) {
      p->c_err = rv;
      return rv;
    }
  }
  fail_msg("pump did not settle");
  return -1;
}

static int pump(pair *p) {
  return pump_chunked(p, NULL, 0);
}

static void handshake_ok(pair *p) {
  assert_int_equal(dv_tls_start(&p->c), 0);
  assert_int_equal(dv_tls_start(&p->s), 0);
  assert_true(dv_tls_outbuf(&p->c)->len > 0);     /* ClientHello */
  assert_int_equal(dv_tls_outbuf(&p->s)->len, 0); /* server waits */
  assert_int_equal(pump(p), 0);
  assert_true(dv_tls_is_established(&p->c));
  assert_true(dv_tls_is_established(&p->s));
  assert_int_equal(dv_tls_state_get(&p->c), DV_TLS_OPEN);
  assert_int_equal(dv_tls_state_get(&p->s), DV_TLS_OPEN);
}

/* ---- resumption and shared confs ---------------------------------------- */

static int make_ticket_server_conf(dv_tls_conf **out, const dvoice_env *env,
                                   int tickets) {
  dv_tls_conf_opts o;
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.cert_pem = (const uint8_t *)pki.cert_pem;
  o.cert_pem_len = strlen(pki.cert_pem);
  o.key_pem = (const uint8_t *)pki.key_pem;
  o.key_pem_len = strlen(pki.key_pem);
  o.session_tickets = tickets;
  return dv_tls_conf_new(out, &o, env);
}

/* One connection from |cc| to |sc| for localhost:|port| at |now|; reports
 * whether each side saw a resumed session. */
static int shake(dv_tls_conf *cc, dv_tls_conf *sc, uint16_t port,
                 dvoice_tstamp now, int *cres, int *sres) {
  pair p;
  int rv;
  memset(&p, 0, sizeof p);
  dv_buf_init(&p.c_plain, NULL);
  dv_buf_init(&p.s_plain, NULL);
  rv = dv_tls_init_client(&p.c, cc, "localhost", port, now);
  if (rv == 0) {
    rv = dv_tls_init(&p.s, sc, NULL);
  }
  if (rv == 0) {
    rv = dv_tls_start(&p.c);
  }
  if (rv == 0) {
    rv = pump(&p);
  }
  if (rv == 0 &&
      !(dv_tls_is_established(&p.c) && dv_tls_is_established(&p.s))) {
    rv = -1;
  }
  *cres = dv_tls_is_resumed(&p.c);
  *sres = dv_tls_is_resumed(&p.s);
  /* Data still flows either way. */
  if (rv == 0) {
    rv = dv_tls_write(&p.c, (const uint8_t *)"ping", 4);
  }
  if (rv == 0) {
    rv = pump(&p);
  }
  if (rv == 0 && (p.s_plain.len != 4 || memcmp(p.s_plain.data, "ping", 4))) {
    rv = -1;
  }
  dv_tls_free(&p.c);
  dv_tls_free(&p.s);
  dv_buf_free(&p.c_plain);
  dv_buf_free(&p.s_plain);
  return rv;
}

static void test_resume_second_connection(void **state) {
  dvt_env e;
  dv_tls_conf *cc, *sc;
  int cr, sr;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(make_client_conf(&cc, pki.ca_pem, &e.env), 0);
  assert_int_equal(make_ticket_server_conf(&sc, &e.env, 1), 0);
  assert_int_equal(dv_tls_conf_session_count(cc), 0);
  assert_int_equal(shake(cc, sc, 443, 0, &cr, &sr), 0);
  assert_false(cr);
  assert_false(sr);
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  assert_int_equal(shake(cc, sc, 443, 1000 * DVOICE_MS, &cr, &sr), 0);
  assert_true(cr);
  assert_true(sr);
  assert_true(dvt_log_contains(&e.log, ", resumed"));
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  /* Another port is another server: a full handshake, a second entry. */
  assert_int_equal(shake(cc, sc, 8443, 2000 * DVOICE_MS, &cr, &sr), 0);
  assert_false(cr);
  assert_int_equal(dv_tls_conf_session_count(cc), 2);
  /* The plain dv_tls_init neither offers nor keeps sessions. */
  {
    pair p;
    memset(&p, 0, sizeof p);
    dv_buf_init(&p.c_plain, NULL);
    dv_buf_init(&p.s_plain, NULL);
    assert_int_equal(dv_tls_init(&p.c, cc, "localhost"), 0);
    assert_int_equal(dv_tls_init(&p.s, sc, NULL), 0);
    assert_int_equal(dv_tls_start(&p.c), 0);
    assert_int_equal(pump(&p), 0);
    assert_true(dv_tls_is_established(&p.c));
    assert_false(dv_tls_is_resumed(&p.c));
    dv_tls_free(&p.c);
    dv_tls_free(&p.s);
  }
  assert_int_equal(dv_tls_conf_session_count(cc), 2);
  {
    unsigned long full, res;
    dv_tls_conf_handshakes(cc, &full, &res);
    assert_int_equal(full, 3);
    assert_int_equal(res, 1);
    dv_tls_conf_handshakes(sc, &full, &res);
    assert_int_equal(full, 3);
    assert_int_equal(res, 1);
    /* Resumption off: cache emptied, nothing offered or kept. */
    dv_tls_conf_set_resumption(cc, 0);
    assert_int_equal(dv_tls_conf_session_count(cc), 0);
    assert_int_equal(shake(cc, sc, 443, 3000 * DVOICE_MS, &cr, &sr), 0);
    assert_int_equal(shake(cc, sc, 443, 3001 * DVOICE_MS, &cr, &sr), 0);
    assert_false(cr);
    assert_int_equal(dv_tls_conf_session_count(cc), 0);
    dv_tls_conf_set_resumption(cc, 1);
    assert_int_equal(shake(cc, sc, 443, 3002 * DVOICE_MS, &cr, &sr), 0);
    assert_int_equal(shake(cc, sc, 443, 3003 * DVOICE_MS, &cr, &sr), 0);
    assert_true(cr);
    dv_tls_conf_handshakes(cc, &full, &res);
    assert_int_equal(full, 6);
    assert_int_equal(res, 2);
  }
  /* A server conf cannot start a client connection. */
  {
    dv_tls t;
    assert_int_equal(dv_tls_init_client(&t, sc, "localhost", 443, 0),
                     DVOICE_ERR_INVALID_ARGUMENT);
    dv_tls_free(&t);
  }
  dv_tls_conf_del(cc);
  dv_tls_conf_del(sc);
  dvt_env_free(&e);
}

static void test_resume_declined_falls_back(void **state) {
  dvt_env e;
  dv_tls_conf *cc, *sc, *other, *plain;
  int cr, sr;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(make_client_conf(&cc, pki.ca_pem, &e.env), 0);
  assert_int_equal(make_ticket_server_conf(&sc, &e.env, 1), 0);
  assert_int_equal(make_ticket_server_conf(&other, &e.env, 1), 0);
  assert_int_equal(make_ticket_server_conf(&plain, &e.env, 0), 0);
  assert_int_equal(shake(cc, sc, 443, 0, &cr, &sr), 0);
  /* Same name, but the server restarted (other ticket keys): the ticket
   * does not decrypt and a full handshake follows. */
  assert_int_equal(shake(cc, other, 443, DVOICE_MS, &cr, &sr), 0);
  assert_false(cr);
  assert_false(sr);
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  /* A server without tickets or cache: full handshake too. */
  assert_int_equal(shake(cc, plain, 443, 2 * DVOICE_MS, &cr, &sr), 0);
  assert_false(cr);
  /* mbedTLS left |other|'s ticket beside |plain|'s new master secret in
   * that session; it is not kept, else |other| would resume with the old
   * secret and the handshake would fail. */
  assert_int_equal(dv_tls_conf_session_count(cc), 0);
  assert_int_equal(shake(cc, other, 443, 3 * DVOICE_MS, &cr, &sr), 0);
  assert_false(cr);
  assert_int_equal(shake(cc, other, 443, 4 * DVOICE_MS, &cr, &sr), 0);
  assert_true(cr);
  dv_tls_conf_del(cc);
  dv_tls_conf_del(sc);
  dv_tls_conf_del(other);
  dv_tls_conf_del(plain);
  dvt_env_free(&e);
}

static void test_resume_expires_and_is_bounded(void **state) {
  const dvoice_tstamp age =
      (dvoice_tstamp)DV_TLS_SESSION_MAX_AGE_S * 1000u * DVOICE_MS;
  dvt_env e;
  dv_tls_conf *cc, *sc;
  int cr, sr;
  dvoice_tstamp t0 = 5000 * DVOICE_MS;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(make_client_conf(&cc, pki.ca_pem, &e.env), 0);
  assert_int_equal(make_ticket_server_conf(&sc, &e.env, 1), 0);
  assert_int_equal(shake(cc, sc, 443, t0, &cr, &sr), 0);
  /* Resumptions keep the full handshake's time: the bound holds. */
  assert_int_equal(shake(cc, sc, 443, t0 + age, &cr, &sr), 0);
  assert_true(cr);
  assert_int_equal(shake(cc, sc, 443, t0 + age + 1, &cr, &sr), 0);
  assert_false(cr);
  assert_true(dvt_log_contains(&e.log, "tls: session for localhost:443 "
                                       "expired"));
  assert_true(dv_tls_conf_free_slots_wiped(cc));
  /* A clock going backwards does not resume either. */
  assert_int_equal(shake(cc, sc, 443, t0, &cr, &sr), 0);
  assert_false(cr);
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  /* Bounded: the oldest entries go. */
  for (uint16_t i = 0; i < DV_TLS_SESSION_CACHE_MAX + 4; i++) {
    assert_int_equal(shake(cc, sc, (uint16_t)(1000 + i), t0 + 1 + i, &cr, &sr),
                     0);
  }
  assert_int_equal(dv_tls_conf_session_count(cc), DV_TLS_SESSION_CACHE_MAX);
  dv_tls_conf_set_resumption(cc, 0);
  assert_int_equal(dv_tls_conf_session_count(cc), 0);
  assert_true(dv_tls_conf_free_slots_wiped(cc));
  dv_tls_conf_set_resumption(cc, 1);
  for (uint16_t i = 0; i < DV_TLS_SESSION_CACHE_MAX + 4; i++) {
    assert_int_equal(shake(cc, sc, (uint16_t)(1000 + i), t0 + 1 + i, &cr, &sr),
                     0);
  }
  assert_int_equal(shake(cc, sc, 1000, t0 + 100, &cr, &sr), 0);
  assert_false(cr); /* evicted */
  assert_int_equal(
      shake(cc, sc, 1000 + DV_TLS_SESSION_CACHE_MAX + 3, t0 + 101, &cr, &sr),
      0);
  assert_true(cr);
  assert_int_equal(dv_tls_conf_session_count(cc), DV_TLS_SESSION_CACHE_MAX);
  dv_tls_conf_del(cc);
  dv_tls_conf_del(sc);
  dvt_env_free(&e);
}

static void test_failed_offer_is_forgotten(void **state) {
  static const uint8_t junk[] = "\x15\x03\x03\x00\x02\x02\x28"; /* alert */
  dvt_env e;
  dv_tls_conf *cc, *sc;
  dv_tls t;
  int cr, sr;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(make_client_conf(&cc, pki.ca_pem, &e.env), 0);
  assert_int_equal(make_ticket_server_conf(&sc, &e.env, 1), 0);
  assert_int_equal(shake(cc, sc, 443, 0, &cr, &sr), 0);
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  assert_int_equal(dv_tls_init_client(&t, cc, "localhost", 443, 1), 0);
  assert_int_equal(dv_tls_start(&t), 0);
  assert_true(dv_tls_feed(&t, junk, sizeof junk - 1) < 0);
  assert_false(dv_tls_is_resumed(&t));
  dv_tls_free(&t);
  assert_int_equal(dv_tls_conf_session_count(cc), 0);
  assert_true(dv_tls_conf_free_slots_wiped(cc));
  /* A failure without an offer leaves other entries alone. */
  assert_int_equal(shake(cc, sc, 443, 2, &cr, &sr), 0);
  assert_int_equal(dv_tls_init_client(&t, cc, "localhost", 444, 3), 0);
  assert_int_equal(dv_tls_start(&t), 0);
  assert_true(dv_tls_feed(&t, junk, sizeof junk - 1) < 0);
  dv_tls_free(&t);
  assert_int_equal(dv_tls_conf_session_count(cc), 1);
  dv_tls_conf_del(cc);
  dv_tls_conf_del(sc);
  dvt_env_free(&e);
}

/* References: the conf lives until the last is dropped; nothing leaks. */
static void test_conf_references(void **state) {
  dvt_env e;
  dvt_mem m;
  dv_tls_conf *cc, *sc;
  int cr, sr;
  (void)state;
  dvt_env_init(&e);
  dvt_mem_init(&m, -1);
  e.env.mem = &m.mem;
  assert_null(dv_tls_conf_ref(NULL));
  dv_tls_conf_del(NULL);
  assert_int_equal(make_client_conf(&cc, pki.ca_pem, &e.env), 0);
  assert_int_equal(make_ticket_server_conf(&sc, &e.env, 1), 0);
  assert_ptr_equal(dv_tls_conf_ref(cc), cc);
  assert_ptr_equal(dv_tls_conf_ref(cc), cc);
  dv_tls_conf_del(cc);
  dv_tls_conf_del(cc);
  /* Still alive with one reference: connections work and share sessions. */
  assert_int_equal(shake(cc, sc, 443, 0, &cr, &sr), 0);
  assert_int_equal(shake(cc, sc, 443, 1, &cr, &sr), 0);
  assert_true(cr);
  assert_true(m.live > 0);
  dv_tls_conf_del(cc);
  dv_tls_conf_del(sc);
  assert_int_equal(m.live, 0);
  dvt_env_free(&e);
}

/* ---- tests ------------------------------------------------------------- */

/* Finds extension |type| in a ClientHello record; returns its body. */
static int find_hello_ext(const dv_buf *rec, uint16_t type, dv_rd *body) {
  dv_rd r, exts;
  uint8_t ct, ht;
  uint16_t ver, ext_type;
  uint32_t hlen;
  dv_rd_init(&r, rec->data, rec->len);
  dv_rd_u8(&r, &ct);
  dv_rd_u16(&r, &ver);
  dv_rd_skip(&r, 2); /* record length */
  dv_rd_u8(&r, &ht);
  dv_rd_u24(&r, &hlen);
  dv_rd_u16(&r, &ver);
  dv_rd_skip(&r, 32); /* random */
  {
    uint8_t n;
    dv_rd_u8(&r, &n); /* session id */
    dv_rd_skip(&r, n);
  }
  {
    uint16_t n;
    dv_rd_u16(&r, &n); /* cipher suites */
    dv_rd_skip(&r, n);
  }
  {
    uint8_t n;
    dv_rd_u8(&r, &n); /* compression methods */
    dv_rd_skip(&r, n);
  }
  {
    uint16_t n;
    const uint8_t *p;
    if (dv_rd_u16(&r, &n) != 0 || dv_rd_bytes(&r, &p, n) != 0) {
      return -1;
    }
    dv_rd_init(&exts, p, n);
  }
  if (ct != 22 || ht != 1) {
    return -1;
  }
  while (dv_rd_left(&exts) > 0) {
    uint16_t n;
    const uint8_t *p;
    if (dv_rd_u16(&exts, &ext_type) != 0 || dv_rd_u16(&exts, &n) != 0 ||
        dv_rd_bytes(&exts, &p, n) != 0) {
      return -1;
    }
    if (ext_type == type) {
      dv_rd_init(body, p, n);
      return 0;
    }
  }
  return -1;
}

/* The ClientHello prefers X25519 then P-256 (not mbedTLS's default P-521
 * first) and SHA-256 signatures first. */
static void test_client_hello_preferences(void **state) {
  dvt_env e;
  pair p;
  dv_rd ext;
  uint16_t len, g0, g1, sh;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_start(&p.c), 0);
  /* supported_groups (10): a u16 list. */
  assert_int_equal(find_hello_ext(dv_tls_outbuf(&p.c), 10, &ext), 0);
  assert_int_equal(dv_rd_u16(&ext, &len), 0);
  assert_int_equal(dv_rd_u16(&ext, &g0), 0);
  assert_int_equal(dv_rd_u16(&ext, &g1), 0);
  assert_int_equal(g0, 29); /* x25519 */
  assert_int_equal(g1, 23); /* secp256r1 */
  /* signature_algorithms (13): (hash, signature) pairs; SHA-256 is 4. */
  assert_int_equal(find_hello_ext(dv_tls_outbuf(&p.c), 13, &ext), 0);
  assert_int_equal(dv_rd_u16(&ext, &len), 0);
  assert_int_equal(dv_rd_u16(&ext, &sh), 0);
  assert_int_equal(sh >> 8, 4);
  /* And the handshake still completes with these lists on both sides. */
  assert_int_equal(pump(&p), 0);
  assert_true(dv_tls_is_established(&p.c));
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_handshake_and_data(void **state) {
  dvt_env e;
  pair p;
  uint8_t *big = malloc(100000);
  (void)state;
  for (size_t i = 0; i < 100000; i++) {
    big[i] = (uint8_t)(i * 7);
  }
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_null(dv_tls_ciphersuite(&p.c));
  handshake_ok(&p);
  assert_string_equal(dv_tls_ciphersuite(&p.c),
                      "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256");
  assert_string_equal(mbedtls_ssl_get_alpn_protocol(&p.c.ssl), "http/1.1");
  assert_string_equal(mbedtls_ssl_get_alpn_protocol(&p.s.ssl), "http/1.1");
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"hello", 5), 0);
  assert_int_equal(pump(&p), 0);
  dvt_assert_bytes(p.s_plain.data, p.s_plain.len, (const uint8_t *)"hello", 5);
  /* 100 kB spans several 16 KiB records. */
  assert_int_equal(dv_tls_write(&p.s, big, 100000), 0);
  assert_true(dv_tls_outbuf(&p.s)->len > 100000);
  assert_int_equal(pump(&p), 0);
  dvt_assert_bytes(p.c_plain.data, p.c_plain.len, big, 100000);
  assert_int_equal(dv_tls_error(&p.c), 0);
  pair_free(&p);
  dvt_env_free(&e);
  free(big);
}

static void test_write_before_handshake_is_queued(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  /* E.g. the WebSocket Upgrade request, written before TLS is up. */
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"GET / HTTP/1.1", 14),
                   0);
  assert_int_equal(dv_tls_outbuf(&p.c)->len, 0);
  handshake_ok(&p);
  dvt_assert_bytes(p.s_plain.data, p.s_plain.len,
                   (const uint8_t *)"GET / HTTP/1.1", 14);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_handshake_any_chunking(void **state) {
  static const size_t drip[] = {1};
  static const size_t odd[] = {5, 1, 13, 2, 300};
  const size_t *patterns[] = {drip, odd};
  const size_t npat[] = {1, 5};
  (void)state;
  for (int k = 0; k < 2; k++) {
    dvt_env e;
    pair p;
    dvt_env_init(&e);
    assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
    assert_int_equal(dv_tls_start(&p.c), 0);
    assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"ping", 4), 0);
    assert_int_equal(pump_chunked(&p, patterns[k], npat[k]), 0);
    assert_true(dv_tls_is_established(&p.c));
    dvt_assert_bytes(p.s_plain.data, p.s_plain.len, (const uint8_t *)"ping", 4);
    pair_free(&p);
    dvt_env_free(&e);
  }
}

static void test_wrong_ca_is_bad_cert(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.other_ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_start(&p.c), 0);
  assert_int_equal(pump(&p), DVOICE_ERR_TLS_BAD_CERT);
  assert_int_equal(p.c_err, DVOICE_ERR_TLS_BAD_CERT);
  assert_int_equal(dv_tls_state_get(&p.c), DV_TLS_FAILED);
  assert_true(dv_tls_is_closed(&p.c));
  assert_false(dv_tls_is_established(&p.c));
  assert_true(dvt_log_contains(&e.log, "certificate not trusted"));
  assert_true(dvt_log_contains(&e.log, "localhost"));
  /* Sticky, and writes are refused with the same error. */
  assert_int_equal(dv_tls_feed(&p.c, (const uint8_t *)"x", 1),
                   DVOICE_ERR_TLS_BAD_CERT);
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"x", 1),
                   DVOICE_ERR_TLS_BAD_CERT);
  /* The client sent a fatal alert; the server fails the handshake. */
  assert_true(dv_tls_outbuf(&p.c)->len > 0);
  assert_int_equal(transfer(&p.c, &p.s, &p.s_plain, NULL, 0), DVOICE_ERR_TLS);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_wrong_hostname(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "gateway.discord.gg"), 0);
  assert_int_equal(dv_tls_start(&p.c), 0);
  assert_int_equal(pump(&p), DVOICE_ERR_TLS_HOSTNAME);
  assert_int_equal(p.c_err, DVOICE_ERR_TLS_HOSTNAME);
  assert_true(dvt_log_contains(&e.log, "host name mismatch"));
  assert_true(dvt_log_contains(&e.log, "gateway.discord.gg"));
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_insecure_skips_verification(void **state) {
  dvt_env e;
  pair p;
  dv_tls_conf_opts o;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.other_ca_pem, "nothing.example"),
                   0);
  dv_tls_free(&p.c);
  dv_tls_conf_del(p.cconf);
  memset(&o, 0, sizeof o);
  o.insecure_skip_verify = 1;
  assert_int_equal(dv_tls_conf_new(&p.cconf, &o, &e.env), 0);
  assert_int_equal(dv_tls_init(&p.c, p.cconf, "nothing.example"), 0);
  assert_true(dvt_log_contains(&e.log, "verification disabled"));
  handshake_ok(&p);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_close_notify(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  handshake_ok(&p);
  /* Data then close_notify in the same flight: the data still arrives. */
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"last words", 10), 0);
  assert_int_equal(dv_tls_shutdown(&p.c), 0);
  assert_int_equal(dv_tls_state_get(&p.c), DV_TLS_CLOSING);
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(transfer(&p.c, &p.s, &p.s_plain, NULL, 0),
                   DVOICE_ERR_TLS_CLOSED);
  dvt_assert_bytes(p.s_plain.data, p.s_plain.len, (const uint8_t *)"last words",
                   10);
  assert_int_equal(dv_tls_state_get(&p.s), DV_TLS_CLOSED);
  assert_true(dv_tls_is_closed(&p.s));
  assert_true(dv_tls_is_established(&p.s));
  assert_int_equal(dv_tls_feed(&p.s, (const uint8_t *)"x", 1),
                   DVOICE_ERR_TLS_CLOSED);
  /* The server answers with its own close_notify. */
  assert_int_equal(dv_tls_shutdown(&p.s), 0);
  assert_int_equal(transfer(&p.s, &p.c, &p.c_plain, NULL, 0),
                   DVOICE_ERR_TLS_CLOSED);
  assert_int_equal(dv_tls_state_get(&p.c), DV_TLS_CLOSED);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_shutdown_states(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_shutdown(&p.c), DVOICE_ERR_INVALID_STATE);
  handshake_ok(&p);
  assert_int_equal(dv_tls_start(&p.c), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dv_tls_shutdown(&p.c), 0);
  assert_int_equal(dv_tls_shutdown(&p.c), 0);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_garbage_ciphertext(void **state) {
  static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_feed(&p.s, junk, sizeof junk - 1), DVOICE_ERR_TLS);
  assert_int_equal(dv_tls_state_get(&p.s), DV_TLS_FAILED);
  assert_true(dvt_log_contains(&e.log, "tls: handshake failed"));
  /* After the handshake, a flipped bit in a record fails the MAC. */
  pair_free(&p);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  handshake_ok(&p);
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"abcdef", 6), 0);
  dv_tls_outbuf(&p.c)->data[dv_tls_outbuf(&p.c)->len - 1] ^= 1;
  assert_int_equal(transfer(&p.c, &p.s, &p.s_plain, NULL, 0), DVOICE_ERR_TLS);
  assert_int_equal(p.s_plain.len, 0);
  pair_free(&p);
  dvt_env_free(&e);
}

/* Plaintext alerts arriving instead of the ServerHello. */
static void test_alert_during_handshake(void **state) {
  static const uint8_t close_notify[] = {0x15, 0x03, 0x03, 0x00,
                                         0x02, 0x01, 0x00};
  static const uint8_t hs_failure[] = {0x15, 0x03, 0x03, 0x00,
                                       0x02, 0x02, 0x28};
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_start(&p.c), 0);
  assert_int_equal(
      dvt_feed_drip(close_notify, sizeof close_notify, sink_tls, &p.c),
      DVOICE_ERR_TLS_CLOSED);
  assert_int_equal(dv_tls_state_get(&p.c), DV_TLS_CLOSED);
  assert_true(dvt_log_contains(&e.log, "peer closed during handshake"));
  pair_free(&p);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  assert_int_equal(dv_tls_start(&p.c), 0);
  assert_int_equal(dv_tls_feed(&p.c, hs_failure, sizeof hs_failure),
                   DVOICE_ERR_TLS);
  assert_int_equal(dv_tls_state_get(&p.c), DV_TLS_FAILED);
  pair_free(&p);
  dvt_env_free(&e);
}

/* dv_tls_read appends when the destination already holds bytes. */
static void test_read_appends(void **state) {
  dvt_env e;
  pair p;
  (void)state;
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  handshake_ok(&p);
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"abc", 3), 0);
  assert_int_equal(pump(&p), 0);
  assert_int_equal(dv_tls_write(&p.c, (const uint8_t *)"def", 3), 0);
  assert_int_equal(pump(&p), 0);
  dvt_assert_bytes(p.s_plain.data, p.s_plain.len, (const uint8_t *)"abcdef", 6);
  assert_int_equal(dv_tls_read(&p.s, NULL), DVOICE_ERR_INVALID_ARGUMENT);
  pair_free(&p);
  dvt_env_free(&e);
}

static void test_conf_errors(void **state) {
  dvt_env e;
  dv_tls_conf *c = (dv_tls_conf *)&e; /* must be reset to NULL on error */
  dv_tls_conf_opts o;
  dv_tls t;
  (void)state;
  dvt_env_init(&e);
  memset(&o, 0, sizeof o);
  o.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), DVOICE_ERR_TLS_CA);
  assert_null(c);
  assert_true(dvt_log_contains(&e.log, "/nonexistent/ca.pem"));
  o.ca_file = NULL;
  o.ca_pem = (const uint8_t *)"not a certificate";
  o.ca_pem_len = 17;
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), DVOICE_ERR_TLS_CA);
  /* Server: missing key; key that does not match; garbage certificate. */
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.cert_pem = (const uint8_t *)pki.cert_pem;
  o.cert_pem_len = strlen(pki.cert_pem);
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env),
                   DVOICE_ERR_INVALID_ARGUMENT);
  o.key_pem = (const uint8_t *)pki.key_pem;
  o.key_pem_len = strlen(pki.key_pem);
  o.cert_pem = (const uint8_t *)pki.ca_pem;
  o.cert_pem_len = strlen(pki.ca_pem);
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), DVOICE_ERR_TLS);
  assert_true(dvt_log_contains(&e.log, "do not match"));
  o.cert_pem = (const uint8_t *)"junk";
  o.cert_pem_len = 4;
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), DVOICE_ERR_TLS);
  o.cert_pem = (const uint8_t *)pki.cert_pem;
  o.cert_pem_len = strlen(pki.cert_pem);
  o.key_pem = (const uint8_t *)"junk";
  o.key_pem_len = 4;
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), DVOICE_ERR_TLS);
  /* No random hook, no options. */
  e.env.rand = NULL;
  assert_int_equal(dv_tls_conf_new(&c, &o, &e.env),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_tls_conf_new(&c, NULL, &e.env),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dvt_env_free(&e);
  /* A client conn needs a host name, a server conn must not have one. */
  dvt_env_init(&e);
  assert_int_equal(make_client_conf(&c, pki.ca_pem, &e.env), 0);
  assert_int_equal(dv_tls_init(&t, c, NULL), DVOICE_ERR_INVALID_ARGUMENT);
  dv_tls_free(&t);
  assert_int_equal(dv_tls_init(&t, c, ""), DVOICE_ERR_INVALID_ARGUMENT);
  dv_tls_free(&t);
  dv_tls_conf_del(c);
  assert_int_equal(make_server_conf(&c, &e.env), 0);
  assert_int_equal(dv_tls_init(&t, c, "localhost"),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_tls_free(&t);
  dv_tls_free(&t); /* twice is fine */
  dv_tls_conf_del(c);
  dvt_env_free(&e);
}

static void test_files_and_system_bundle(void **state) {
  char dir[] = "/tmp/dvoice-tls-XXXXXX";
  char ca[64], cert[64], key[64];
  dvt_env e;
  dv_tls_conf_opts o;
  dv_tls_conf *c;
  pair p;
  (void)state;
  assert_non_null(mkdtemp(dir));
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(key, sizeof key, "%s/key.pem", dir);
  assert_int_equal(dvt_testca_write_file(ca, pki.ca_pem), 0);
  assert_int_equal(dvt_testca_write_file(cert, pki.cert_pem), 0);
  assert_int_equal(dvt_testca_write_file(key, pki.key_pem), 0);
  dvt_env_init(&e);
  /* The same handshake with every PEM coming from files. */
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  dv_tls_free(&p.c);
  dv_tls_free(&p.s);
  dv_tls_conf_del(p.cconf);
  dv_tls_conf_del(p.sconf);
  memset(&o, 0, sizeof o);
  o.ca_file = ca;
  assert_int_equal(dv_tls_conf_new(&p.cconf, &o, &e.env), 0);
  memset(&o, 0, sizeof o);
  o.is_server = 1;
  o.cert_file = cert;
  o.key_file = key;
  assert_int_equal(dv_tls_conf_new(&p.sconf, &o, &e.env), 0);
  assert_int_equal(dv_tls_init(&p.c, p.cconf, "localhost"), 0);
  assert_int_equal(dv_tls_init(&p.s, p.sconf, NULL), 0);
  handshake_ok(&p);
  pair_free(&p);
  unlink(ca);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  /* The system bundle, where the machine has one. */
  if (access(DV_TLS_SYSTEM_CA_FILE, R_OK) == 0) {
    memset(&o, 0, sizeof o);
    assert_int_equal(dv_tls_conf_new(&c, &o, &e.env), 0);
    dv_tls_conf_del(c);
  }
  dvt_env_free(&e);
}

/* The DRBG draws only from the hook: same counter, same ClientHello except
 * the 4-byte gmt_unix_time mbedTLS puts at the start of the random. */
static void test_randomness_from_hook_only(void **state) {
  dv_buf hello[2];
  (void)state;
  for (int k = 0; k < 2; k++) {
    dvt_env e;
    dv_tls_conf *c;
    dv_tls t;
    dvt_env_init(&e);
    assert_int_equal(make_client_conf(&c, pki.ca_pem, &e.env), 0);
    assert_true(e.rand.calls > 0);
    assert_int_equal(dv_tls_init(&t, c, "localhost"), 0);
    assert_int_equal(dv_tls_start(&t), 0);
    hello[k] = *dv_tls_outbuf(&t);
    dv_buf_init(dv_tls_outbuf(&t), NULL);
    dv_tls_free(&t);
    dv_tls_conf_del(c);
    dvt_env_free(&e);
  }
  /* record(5) + handshake header(4) + version(2) = 11; time = [11, 15). */
  assert_true(hello[0].len > 15);
  memset(hello[0].data + 11, 0, 4);
  memset(hello[1].data + 11, 0, 4);
  dvt_assert_bytes(hello[0].data, hello[0].len, hello[1].data, hello[1].len);
  /* And a different counter start gives a different random. */
  {
    dvt_env e;
    dv_tls_conf *c;
    dv_tls t;
    dvt_env_init(&e);
    e.rand.next = 99;
    assert_int_equal(make_client_conf(&c, pki.ca_pem, &e.env), 0);
    assert_int_equal(dv_tls_init(&t, c, "localhost"), 0);
    assert_int_equal(dv_tls_start(&t), 0);
    assert_true(memcmp(dv_tls_outbuf(&t)->data + 15, hello[0].data + 15, 28) !=
                0);
    dv_tls_free(&t);
    dv_tls_conf_del(c);
    dvt_env_free(&e);
  }
  dv_buf_free(&hello[0]);
  dv_buf_free(&hello[1]);
}

/* ---- WebSocket over TLS, both cores stacked as lib/uv stacks them -------- */

typedef struct wsend {
  dv_ws ws;
  dv_tls *tls;
  dv_buf plain;
  int nmsg;
  dv_buf last;
  uint16_t close_code;
} wsend;

static int wsend_on_message(dv_ws *ws, dv_ws_opcode op, const uint8_t *data,
                            size_t len, void *ud) {
  wsend *w = ud;
  (void)ws;
  (void)op;
  w->nmsg++;
  dv_buf_reset(&w->last);
  return dv_buf_append(&w->last, data, len) == 0 ? 0
                                                 : DVOICE_ERR_CALLBACK_FAILURE;
}

static void wsend_on_close(dv_ws *ws, uint16_t code, const uint8_t *r, size_t n,
                           void *ud) {
  wsend *w = ud;
  (void)ws;
  (void)r;
  (void)n;
  w->close_code = code;
}

/* ws outbuf -> TLS plaintext in. */
static void ws_down(wsend *w) {
  dv_buf *ob = dv_ws_outbuf(&w->ws);
  if (ob->len > 0) {
    assert_int_equal(dv_tls_write(w->tls, ob->data, ob->len), 0);
    dv_buf_reset(ob);
  }
}

/* Peer's ciphertext -> our TLS -> plaintext -> our ws, in |chunk| pieces. */
static void tls_up(wsend *from, wsend *to, size_t chunk) {
  dv_buf *ob = dv_tls_outbuf(from->tls);
  dv_buf ct = *ob;
  dv_buf_init(ob, ct.mem);
  for (size_t off = 0; off < ct.len; off += chunk) {
    size_t n = ct.len - off < chunk ? ct.len - off : chunk;
    int rv = dv_tls_feed(to->tls, ct.data + off, n);
    assert_true(rv == 0 || rv == DVOICE_ERR_TLS_CLOSED);
    assert_int_equal(dv_tls_read(to->tls, &to->plain), 0);
    if (to->plain.len > 0) {
      assert_int_equal(dv_ws_feed(&to->ws, to->plain.data, to->plain.len), 0);
      dv_buf_reset(&to->plain);
    }
  }
  dv_buf_free(&ct);
}

static void stack_pump(wsend *a, wsend *b, size_t chunk) {
  for (int i = 0; i < 100; i++) {
    ws_down(a);
    ws_down(b);
    if (dv_tls_outbuf(a->tls)->len == 0 && dv_tls_outbuf(b->tls)->len == 0) {
      return;
    }
    tls_up(a, b, chunk);
    tls_up(b, a, chunk);
  }
  fail_msg("stack did not settle");
}

static void test_ws_over_tls(void **state) {
  static const dv_ws_callbacks cb = {NULL, NULL, wsend_on_message, NULL,
                                     wsend_on_close};
  dvt_env e;
  pair p;
  wsend c, s;
  dv_ws_opts o;
  uint8_t *big = malloc(1048576);
  (void)state;
  for (size_t i = 0; i < 1048576; i++) {
    big[i] = (uint8_t)(0x20 + i % 95); /* ASCII: valid UTF-8 text */
  }
  dvt_env_init(&e);
  assert_int_equal(pair_init(&p, &e.env, pki.ca_pem, "localhost"), 0);
  memset(&c, 0, sizeof c);
  memset(&s, 0, sizeof s);
  c.tls = &p.c;
  s.tls = &p.s;
  dv_buf_init(&c.plain, NULL);
  dv_buf_init(&s.plain, NULL);
  dv_buf_init(&c.last, NULL);
  dv_buf_init(&s.last, NULL);
  memset(&o, 0, sizeof o);
  o.host = "localhost";
  o.path = "/?v=8";
  assert_int_equal(dv_ws_init(&c.ws, &o, &cb, &e.env, &c), 0);
  o.is_server = 1;
  assert_int_equal(dv_ws_init(&s.ws, &o, &cb, &e.env, &s), 0);
  /* The Upgrade request is written before TLS is up, as lib/uv does. */
  assert_int_equal(dv_tls_start(&p.c), 0);
  stack_pump(&c, &s, 1000);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_OPEN);
  assert_int_equal(dv_ws_state_get(&s.ws), DV_WS_OPEN);
  assert_int_equal(dv_ws_send(&c.ws, DV_WS_TEXT, big, 1048576), 0);
  assert_int_equal(dv_ws_send(&s.ws, DV_WS_BINARY, big + 1, 70000), 0);
  stack_pump(&c, &s, 777);
  assert_int_equal(s.nmsg, 1);
  dvt_assert_bytes(s.last.data, s.last.len, big, 1048576);
  assert_int_equal(c.nmsg, 1);
  dvt_assert_bytes(c.last.data, c.last.len, big + 1, 70000);
  assert_int_equal(dv_ws_close(&c.ws, 1000, "bye", 3), 0);
  stack_pump(&c, &s, 1);
  assert_int_equal(s.close_code, 1000);
  assert_int_equal(c.close_code, 1000);
  assert_int_equal(dv_ws_state_get(&c.ws), DV_WS_CLOSED);
  assert_int_equal(dv_ws_state_get(&s.ws), DV_WS_CLOSED);
  dv_ws_free(&c.ws);
  dv_ws_free(&s.ws);
  dv_buf_free(&c.plain);
  dv_buf_free(&s.plain);
  dv_buf_free(&c.last);
  dv_buf_free(&s.last);
  pair_free(&p);
  dvt_env_free(&e);
  free(big);
}

static int session_with_mem(const dvoice_mem *mem, void *ud) {
  dvt_env e;
  pair p;
  int rv;
  (void)ud;
  dvt_env_init(&e);
  e.env.mem = mem;
  rv = pair_init(&p, &e.env, pki.ca_pem, "localhost");
  if (rv == 0) {
    rv = dv_tls_write(&p.c, (const uint8_t *)"early", 5);
  }
  if (rv == 0) {
    rv = dv_tls_start(&p.c);
  }
  if (rv == 0) {
    rv = pump(&p);
  }
  if (rv == 0) {
    rv = dv_tls_write(&p.s, (const uint8_t *)"reply", 5);
  }
  if (rv == 0) {
    rv = pump(&p);
  }
  if (rv == 0) {
    rv = dv_tls_shutdown(&p.c);
  }
  if (rv == 0) {
    rv = pump(&p);
    if (rv == DVOICE_ERR_TLS_CLOSED) {
      rv = 0;
    }
  }
  if (rv == 0 && (p.s_plain.len != 5 || p.c_plain.len != 5)) {
    rv = DVOICE_ERR_INTERNAL;
  }
  pair_free(&p);
  dvt_env_free(&e);
  return rv;
}

static void test_nomem_each_allocation(void **state) {
  (void)state;
  assert_true(dvt_mem_fail_each(session_with_mem, NULL) >= 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_data),
      cmocka_unit_test(test_write_before_handshake_is_queued),
      cmocka_unit_test(test_handshake_any_chunking),
      cmocka_unit_test(test_wrong_ca_is_bad_cert),
      cmocka_unit_test(test_wrong_hostname),
      cmocka_unit_test(test_insecure_skips_verification),
      cmocka_unit_test(test_close_notify),
      cmocka_unit_test(test_shutdown_states),
      cmocka_unit_test(test_garbage_ciphertext),
      cmocka_unit_test(test_alert_during_handshake),
      cmocka_unit_test(test_read_appends),
      cmocka_unit_test(test_conf_errors),
      cmocka_unit_test(test_files_and_system_bundle),
      cmocka_unit_test(test_randomness_from_hook_only),
      cmocka_unit_test(test_ws_over_tls),
      cmocka_unit_test(test_nomem_each_allocation),
      cmocka_unit_test(test_client_hello_preferences),
      cmocka_unit_test(test_resume_second_connection),
      cmocka_unit_test(test_resume_declined_falls_back),
      cmocka_unit_test(test_resume_expires_and_is_bounded),
      cmocka_unit_test(test_failed_offer_is_forgotten),
      cmocka_unit_test(test_conf_references),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
