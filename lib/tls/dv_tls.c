/*
 * TLS 1.2 over memory buffers on mbedTLS 2.28. See dv_tls.h.
 *
 * mbedTLS pulls and pushes bytes through BIO callbacks; ours read from the
 * slice being fed (returning WANT_READ when it is used up) and append to the
 * output buffer (never blocking). Every call therefore runs the record layer
 * as far as the input allows and returns; nothing waits on I/O.
 */
#include "tls/dv_tls.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"

/* A client session kept for resumption, keyed by "host:port". */
typedef struct tls_session {
  int used;
  char key[DV_TLS_SESSION_KEY_MAX];
  dvoice_tstamp stored; /* start of the full handshake that made it */
  mbedtls_ssl_session s;
} tls_session;

struct dv_tls_conf {
  dvoice_env env;
  unsigned refs;
  int is_server;
  int insecure;
  int tickets;                     /* server: ticket context set up */
  int no_resume;                   /* client: neither offer nor keep sessions */
  unsigned long n_full, n_resumed; /* completed handshakes */
  mbedtls_ssl_config ssl;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt ca;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  mbedtls_ssl_ticket_context ticket;
  tls_session sessions[DV_TLS_SESSION_CACHE_MAX];
};

/* ECDHE with AEAD only: forward secrecy and no CBC padding oracles. */
static const int tls_suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    0,
};

/*
 * WebSocket runs over HTTP/1.1. Offering it explicitly keeps a server or
 * proxy that speaks h2 from choosing it; a server that ignores ALPN is fine.
 */
static const char *tls_alpn[] = {"http/1.1", NULL};

/*
 * Key exchange groups, preferred first, for both ends (a server conf picks
 * by this order too: with mbedTLS's default list, secp521r1 first, our
 * simulator made every client, Node's included, pay for P-521). X25519
 * first measured about 0.5 ms faster per join than P-256 first
 * (bench_join). The list also bounds the curves accepted in certificates,
 * so P-384 and P-521 stay, last.
 */
static const mbedtls_ecp_group_id tls_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1, MBEDTLS_ECP_DP_SECP521R1, MBEDTLS_ECP_DP_NONE};

/* Signature hashes, SHA-256 first (what P-256 and RSA-2048 certs use). */
static const int tls_sig_hashes[] = {MBEDTLS_MD_SHA256, MBEDTLS_MD_SHA384,
                                     MBEDTLS_MD_SHA512, MBEDTLS_MD_NONE};

/* The DRBG's entropy source: the application's random hook, nothing else. */
static int entropy_from_hook(void *ctx, unsigned char *out, size_t len) {
  const dv_tls_conf *c = ctx;
  dv_rand(&c->env, out, len);
  return 0;
}

static const char *mbed_err(int ret, char *buf, size_t size) {
  mbedtls_strerror(ret, buf, size);
  return buf;
}

/* PEM parsers need a NUL-terminated buffer whose length counts the NUL. */
static uint8_t *pem_copy(const dvoice_mem *mem, const uint8_t *p, size_t len) {
  uint8_t *z = dv_malloc(mem, len + 1);
  if (z != NULL) {
    if (len > 0) {
      memcpy(z, p, len);
    }
    z[len] = 0;
  }
  return z;
}

static int load_ca(dv_tls_conf *c, const dv_tls_conf_opts *o) {
  char eb[128];
  int ret;
  const char *what;
  if (o->ca_pem != NULL) {
    uint8_t *z = pem_copy(c->env.mem, o->ca_pem, o->ca_pem_len);
    if (z == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    ret = mbedtls_x509_crt_parse(&c->ca, z, o->ca_pem_len + 1);
    dv_free(c->env.mem, z);
    what = "CA PEM buffer";
  } else {
    what = o->ca_file != NULL ? o->ca_file : DV_TLS_SYSTEM_CA_FILE;
    ret = mbedtls_x509_crt_parse_file(&c->ca, what);
  }
  if (ret == MBEDTLS_ERR_X509_ALLOC_FAILED) {
    return DVOICE_ERR_NOMEM;
  }
  /* A positive count means some entries were skipped; usable if any parsed. */
  if (ret < 0 || c->ca.version == 0) {
    DV_WARN(&c->env, "tls: cannot load CAs from %s: %s", what,
            ret < 0 ? mbed_err(ret, eb, sizeof eb) : "no certificate");
    return DVOICE_ERR_TLS_CA;
  }
  if (ret > 0) {
    DV_INFO(&c->env, "tls: %s: skipped %d unparsable certificates", what, ret);
  }
  DV_DEBUG(&c->env, "tls: loaded CAs from %s", what);
  return 0;
}

static int load_server_identity(dv_tls_conf *c, const dv_tls_conf_opts *o) {
  char eb[128];
  int ret;
  if (o->cert_pem != NULL) {
    uint8_t *z = pem_copy(c->env.mem, o->cert_pem, o->cert_pem_len);
    if (z == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    ret = mbedtls_x509_crt_parse(&c->cert, z, o->cert_pem_len + 1);
    dv_free(c->env.mem, z);
  } else {
    ret = mbedtls_x509_crt_parse_file(&c->cert, o->cert_file);
  }
  if (ret == MBEDTLS_ERR_X509_ALLOC_FAILED) {
    return DVOICE_ERR_NOMEM;
  }
  if (ret != 0) {
    DV_WARN(&c->env, "tls: cannot load server certificate: %s",
            ret < 0 ? mbed_err(ret, eb, sizeof eb) : "unparsable entries");
    return DVOICE_ERR_TLS;
  }
  if (o->key_pem != NULL) {
    uint8_t *z = pem_copy(c->env.mem, o->key_pem, o->key_pem_len);
    if (z == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    ret = mbedtls_pk_parse_key(&c->key, z, o->key_pem_len + 1, NULL, 0);
    dv_free_secret(c->env.mem, z, o->key_pem_len + 1);
  } else {
    ret = mbedtls_pk_parse_keyfile(&c->key, o->key_file, NULL);
  }
  if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED) {
    return DVOICE_ERR_NOMEM;
  }
  if (ret != 0) {
    DV_WARN(&c->env, "tls: cannot load server key: %s",
            mbed_err(ret, eb, sizeof eb));
    return DVOICE_ERR_TLS;
  }
  if (mbedtls_pk_check_pair(&c->cert.pk, &c->key) != 0) {
    DV_WARN(&c->env, "tls: server certificate and key do not match");
    return DVOICE_ERR_TLS;
  }
  ret = mbedtls_ssl_conf_own_cert(&c->ssl, &c->cert, &c->key);
  if (ret != 0) {
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? DVOICE_ERR_NOMEM
                                               : DVOICE_ERR_TLS;
  }
  return 0;
}

int dv_tls_conf_new(dv_tls_conf **out, const dv_tls_conf_opts *o,
                    const dvoice_env *env) {
  static const unsigned char pers[] = "dvoice tls drbg";
  dv_tls_conf *c;
  int ret;
  if (out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (o == NULL || dv_env_check(env) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (o->is_server && ((o->cert_pem == NULL && o->cert_file == NULL) ||
                       (o->key_pem == NULL && o->key_file == NULL))) {
    DV_WARN(env, "tls: server conf without certificate or key");
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  c = dv_calloc(env->mem, 1, sizeof *c);
  if (c == NULL) {
    DV_WARN(env, "tls: out of memory creating the configuration");
    return DVOICE_ERR_NOMEM;
  }
  c->env = *env;
  c->refs = 1;
  c->is_server = o->is_server != 0;
  c->insecure = !c->is_server && o->insecure_skip_verify != 0;
  mbedtls_ssl_config_init(&c->ssl);
  mbedtls_ctr_drbg_init(&c->drbg);
  mbedtls_x509_crt_init(&c->ca);
  mbedtls_x509_crt_init(&c->cert);
  mbedtls_pk_init(&c->key);
  mbedtls_ssl_ticket_init(&c->ticket);

  ret = mbedtls_ctr_drbg_seed(&c->drbg, entropy_from_hook, c, pers,
                              sizeof pers - 1);
  if (ret != 0) {
    DV_WARN(env, "tls: DRBG seeding failed (%d)", ret);
    ret = DVOICE_ERR_TLS;
    goto fail;
  }
  ret = mbedtls_ssl_config_defaults(
      &c->ssl, c->is_server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
  if (ret != 0) {
    DV_WARN(env, "tls: mbedtls_ssl_config_defaults failed (%d)", ret);
    ret =
        ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? DVOICE_ERR_NOMEM : DVOICE_ERR_TLS;
    goto fail;
  }
  mbedtls_ssl_conf_min_version(&c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_max_version(&c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                               MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_ciphersuites(&c->ssl, tls_suites);
  mbedtls_ssl_conf_curves(&c->ssl, tls_curves);
  mbedtls_ssl_conf_sig_hashes(&c->ssl, tls_sig_hashes);
  mbedtls_ssl_conf_rng(&c->ssl, mbedtls_ctr_drbg_random, &c->drbg);
  /* Cannot fail: the list is static, non-empty and well-formed. */
  (void)mbedtls_ssl_conf_alpn_protocols(&c->ssl, tls_alpn);

  if (c->is_server) {
    mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_NONE);
    ret = load_server_identity(c, o);
    if (ret == 0 && o->session_tickets) {
      /* Ticket keys come from the DRBG and rotate with mbedTLS's clock. */
      ret = mbedtls_ssl_ticket_setup(&c->ticket, mbedtls_ctr_drbg_random,
                                     &c->drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                     DV_TLS_TICKET_LIFETIME_S);
      if (ret != 0) {
        DV_WARN(env, "tls: session ticket setup failed (%d)", ret);
        ret = DVOICE_ERR_TLS;
      } else {
        c->tickets = 1;
        mbedtls_ssl_conf_session_tickets_cb(&c->ssl, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse,
                                            &c->ticket);
      }
    }
  } else if (c->insecure) {
    mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_NONE);
    ret = 0;
  } else {
    mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
    ret = load_ca(c, o);
    if (ret == 0) {
      mbedtls_ssl_conf_ca_chain(&c->ssl, &c->ca, NULL);
    }
  }
  if (ret != 0) {
    goto fail;
  }
  *out = c;
  return 0;

fail:
  if (ret == DVOICE_ERR_NOMEM) {
    DV_WARN(env, "tls: out of memory creating the configuration");
  }
  dv_tls_conf_del(c);
  return ret;
}

dv_tls_conf *dv_tls_conf_ref(dv_tls_conf *c) {
  if (c != NULL) {
    c->refs++;
  }
  return c;
}

/* Frees a cached session; mbedtls_ssl_session_free zeroes the master
 * secret and the ticket. */
static void session_drop(tls_session *e) {
  if (e->used) {
    mbedtls_ssl_session_free(&e->s);
    dv_wipe(e, sizeof *e);
  }
}

void dv_tls_conf_del(dv_tls_conf *c) {
  if (c == NULL || --c->refs > 0) {
    return;
  }
  for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
    session_drop(&c->sessions[i]);
  }
  mbedtls_ssl_ticket_free(&c->ticket);
  mbedtls_ssl_config_free(&c->ssl);
  mbedtls_ctr_drbg_free(&c->drbg);
  mbedtls_x509_crt_free(&c->ca);
  mbedtls_x509_crt_free(&c->cert);
  mbedtls_pk_free(&c->key);
  dv_free_secret(c->env.mem, c, sizeof *c);
}

/* ---- BIO callbacks ------------------------------------------------------ */

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  dv_tls *t = ctx;
  if (dv_buf_append(&t->out, buf, len) != 0) {
    t->out_err = DVOICE_ERR_NOMEM;
    return MBEDTLS_ERR_SSL_ALLOC_FAILED;
  }
  return len > INT32_MAX ? INT32_MAX : (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  dv_tls *t = ctx;
  size_t n = t->in_len < len ? t->in_len : len;
  if (n == 0) {
    return MBEDTLS_ERR_SSL_WANT_READ;
  }
  if (n > INT32_MAX) {
    n = INT32_MAX;
  }
  memcpy(buf, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

/* ---- connections -------------------------------------------------------- */

int dv_tls_init(dv_tls *t, dv_tls_conf *conf, const char *hostname) {
  int ret;
  if (t == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(t, 0, sizeof *t);
  if (conf == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  t->conf = conf;
  t->env = &conf->env;
  t->is_server = conf->is_server;
  t->state = DV_TLS_HANDSHAKE;
  dv_buf_init(&t->out, conf->env.mem);
  dv_buf_init(&t->plain, conf->env.mem);
  dv_buf_init(&t->pending, conf->env.mem);
  if (t->is_server
          ? hostname != NULL
          : (hostname == NULL || hostname[0] == 0) && !conf->insecure) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  mbedtls_ssl_init(&t->ssl);
  t->initialised = 1;
  ret = mbedtls_ssl_setup(&t->ssl, &conf->ssl);
  if (ret == 0 && hostname != NULL) {
    ret = mbedtls_ssl_set_hostname(&t->ssl, hostname);
  }
  if (ret != 0) {
    DV_WARN(t->env, "tls: connection setup failed (%d)", ret);
    return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? DVOICE_ERR_NOMEM
                                               : DVOICE_ERR_TLS;
  }
  mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
  if (conf->insecure) {
    DV_WARN(t->env,
            "tls: certificate verification disabled (insecure_skip_verify)"
            " for %s",
            hostname != NULL ? hostname : "(no name)");
  }
  return 0;
}

/* ---- client session cache ---------------------------------------------- */

static tls_session *session_find(dv_tls_conf *c, const char *key) {
  for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
    if (c->sessions[i].used && strcmp(c->sessions[i].key, key) == 0) {
      return &c->sessions[i];
    }
  }
  return NULL;
}

/* How long a session may be offered: our bound, or the ticket's hint. */
static uint64_t session_max_age(const mbedtls_ssl_session *s) {
  uint64_t max = DV_TLS_SESSION_MAX_AGE_S;
  if (s->ticket != NULL && s->ticket_lifetime > 0 && s->ticket_lifetime < max) {
    max = s->ticket_lifetime;
  }
  return max * 1000u * DVOICE_MS;
}

/* 1 if |ns| carries the ticket of the session that was offered: mbedTLS
 * keeps it when a server declines the offer and issues no new ticket,
 * though the master secret is new, so that pair must never be offered.
 * (A declined offer whose server announced no new ticket is refused by
 * the caller too, in case the entry was replaced meanwhile.) */
static int stale_ticket(const mbedtls_ssl_session *ns,
                        const tls_session *offered) {
  return offered != NULL && offered->s.ticket != NULL && ns->ticket != NULL &&
         ns->ticket_len == offered->s.ticket_len &&
         memcmp(ns->ticket, offered->s.ticket, ns->ticket_len) == 0;
}

/* Keeps the session just established under the connection's key. A
 * resumed session keeps the time of the full handshake it came from, so
 * a chain of resumptions cannot outlive the bound. */
static void session_store(dv_tls *t) {
  dv_tls_conf *c = t->conf;
  tls_session *e = session_find(c, t->sess_key);
  dvoice_tstamp stored = t->now;
  mbedtls_ssl_session ns;
  mbedtls_ssl_session_init(&ns);
  if (mbedtls_ssl_get_session(&t->ssl, &ns) != 0 ||
      (!t->resumed && t->offered && ns.ticket != NULL &&
       (!t->got_ticket || stale_ticket(&ns, e)))) {
    mbedtls_ssl_session_free(&ns);
    if (e != NULL) {
      session_drop(e);
    }
    DV_DEBUG(t->env, "tls: not keeping the session for %s", t->sess_key);
    return;
  }
  if (e != NULL) {
    if (t->resumed) {
      stored = e->stored;
    }
  } else {
    for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
      tls_session *x = &c->sessions[i];
      if (!x->used) {
        e = x;
        break;
      }
      if (e == NULL || x->stored < e->stored) {
        e = x; /* when full, the oldest full handshake's session goes */
      }
    }
  }
  session_drop(e);
  e->s = ns; /* the slot takes over what |ns| points to */
  e->used = 1;
  e->stored = stored;
  memcpy(e->key, t->sess_key, sizeof e->key);
}

/* Forgets the session offered by a connection that failed. */
static void session_forget(dv_tls *t) {
  tls_session *e;
  if (!t->offered) {
    return;
  }
  e = session_find(t->conf, t->sess_key);
  if (e != NULL) {
    session_drop(e);
  }
}

int dv_tls_init_client(dv_tls *t, dv_tls_conf *conf, const char *hostname,
                       uint16_t port, dvoice_tstamp now) {
  tls_session *e;
  int n, ret = dv_tls_init(t, conf, hostname);
  if (ret != 0) {
    return ret;
  }
  if (t->is_server) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (hostname == NULL) {
    return 0; /* insecure and nameless: nothing to key a session by */
  }
  n = snprintf(t->sess_key, sizeof t->sess_key, "%s:%u", hostname,
               (unsigned)port);
  if (n < 0 || (size_t)n >= sizeof t->sess_key) {
    t->sess_key[0] = 0; /* too long a name: no resumption */
    return 0;
  }
  t->now = now;
  if (conf->no_resume) {
    t->sess_key[0] = 0;
    return 0;
  }
  e = session_find(conf, t->sess_key);
  if (e == NULL) {
    return 0;
  }
  if (now < e->stored || now - e->stored > session_max_age(&e->s)) {
    DV_DEBUG(t->env, "tls: session for %s expired", t->sess_key);
    session_drop(e);
    return 0;
  }
  ret = mbedtls_ssl_set_session(&t->ssl, &e->s);
  if (ret == 0) {
    t->offered = 1;
  } else if (ret == MBEDTLS_ERR_SSL_ALLOC_FAILED) {
    return DVOICE_ERR_NOMEM;
  } else {
    session_drop(e); /* unusable: a full handshake follows */
  }
  return 0;
}

void dv_tls_conf_set_resumption(dv_tls_conf *c, int on) {
  c->no_resume = !on;
  if (!on) {
    for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
      session_drop(&c->sessions[i]);
    }
  }
}

void dv_tls_conf_handshakes(const dv_tls_conf *c, unsigned long *full,
                            unsigned long *resumed) {
  *full = c->n_full;
  *resumed = c->n_resumed;
}

int dv_tls_conf_free_slots_wiped(const dv_tls_conf *c) {
  for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
    const uint8_t *p = (const uint8_t *)&c->sessions[i];
    if (c->sessions[i].used) {
      continue;
    }
    for (size_t k = 0; k < sizeof c->sessions[i]; k++) {
      if (p[k] != 0) {
        return 0;
      }
    }
  }
  return 1;
}

size_t dv_tls_conf_session_count(const dv_tls_conf *c) {
  size_t n = 0;
  for (size_t i = 0; i < DV_TLS_SESSION_CACHE_MAX; i++) {
    n += c->sessions[i].used != 0;
  }
  return n;
}

int dv_tls_is_resumed(const dv_tls *t) {
  return t->resumed;
}

void dv_tls_free(dv_tls *t) {
  if (t == NULL) {
    return;
  }
  if (t->initialised) {
    mbedtls_ssl_free(&t->ssl);
    t->initialised = 0;
  }
  dv_buf_free(&t->out);
  dv_buf_free_secret(&t->plain);
  dv_buf_free_secret(&t->pending);
  t->in = NULL;
  t->in_len = 0;
}

/* Turns an mbedTLS failure into our code, logs it and fails the connection. */
static int fail(dv_tls *t, int ret, const char *during) {
  char eb[160];
  int code;
  if (t->out_err != 0 || ret == MBEDTLS_ERR_SSL_ALLOC_FAILED) {
    DV_WARN(t->env, "tls: out of memory during %s", during);
    code = DVOICE_ERR_NOMEM;
  } else if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
    uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
    size_t i;
    code = flags == MBEDTLS_X509_BADCERT_CN_MISMATCH ? DVOICE_ERR_TLS_HOSTNAME
                                                     : DVOICE_ERR_TLS_BAD_CERT;
    if (mbedtls_x509_crt_verify_info(eb, sizeof eb, "", flags) < 0) {
      eb[0] = 0;
    }
    /* The info text is one line per flag; keep the log line single. */
    for (i = 0; eb[i] != 0; i++) {
      if (eb[i] == '\n') {
        eb[i] = eb[i + 1] != 0 ? ';' : 0;
      }
    }
    DV_WARN(t->env, "tls: %s for %s (flags 0x%x): %s",
            code == DVOICE_ERR_TLS_HOSTNAME ? "host name mismatch"
                                            : "certificate not trusted",
            t->ssl.hostname != NULL ? t->ssl.hostname : "?", (unsigned)flags,
            eb);
  } else if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
    DV_WARN(t->env, "tls: peer closed during %s", during);
    code = DVOICE_ERR_TLS_CLOSED;
  } else {
    DV_WARN(t->env, "tls: %s failed: %s", during, mbed_err(ret, eb, sizeof eb));
    code = DVOICE_ERR_TLS;
  }
  t->err = code;
  t->state = code == DVOICE_ERR_TLS_CLOSED ? DV_TLS_CLOSED : DV_TLS_FAILED;
  return code;
}

static int write_all(dv_tls *t, const uint8_t *p, size_t len) {
  size_t off = 0;
  while (off < len) {
    int ret = mbedtls_ssl_write(&t->ssl, p + off, len - off);
    if (ret <= 0) {
      /* Our send callback never blocks, so WANT_WRITE cannot happen. */
      return fail(t, ret, "write");
    }
    off += (size_t)ret;
  }
  return 0;
}

/* Decrypts every complete record currently available. */
static int read_records(dv_tls *t) {
  for (;;) {
    size_t before = t->in_len;
    int ret;
    if (dv_buf_reserve(&t->plain, MBEDTLS_SSL_MAX_CONTENT_LEN) != 0) {
      t->err = DVOICE_ERR_NOMEM;
      t->state = DV_TLS_FAILED;
      return t->err;
    }
    ret = mbedtls_ssl_read(&t->ssl, t->plain.data + t->plain.len,
                           MBEDTLS_SSL_MAX_CONTENT_LEN);
    if (ret > 0) {
      t->plain.len += (size_t)ret;
      continue;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
      return 0;
    }
    if (ret == 0) {
      /* An empty record: keep going only while input is being consumed. */
      if (t->in_len < before) {
        continue;
      }
      return 0;
    }
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
      DV_DEBUG(t->env, "tls: peer sent close_notify");
      t->err = DVOICE_ERR_TLS_CLOSED;
      t->state = DV_TLS_CLOSED;
      return t->err;
    }
    return fail(t, ret, "read");
  }
}

static int drive(dv_tls *t) {
  int ret;
  switch (t->state) {
    case DV_TLS_HANDSHAKE:
      /* mbedtls_ssl_handshake's loop, stepped here to see whether the
       * session was resumed: the flag lives in the handshake parameters,
       * freed at the end, and a client sets it when offering a session, so
       * it only means "resumed" once the ServerHello is handled. */
      ret = 0;
      while (ret == 0 && t->ssl.state != MBEDTLS_SSL_HANDSHAKE_OVER) {
        ret = mbedtls_ssl_handshake_step(&t->ssl);
        if (t->ssl.handshake != NULL &&
            t->ssl.state > MBEDTLS_SSL_SERVER_HELLO) {
          t->resumed = t->ssl.handshake->resume != 0;
          t->got_ticket |= t->ssl.handshake->new_session_ticket != 0;
        }
      }
      if (ret == MBEDTLS_ERR_SSL_WANT_READ ||
          ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return 0;
      }
      if (ret != 0) {
        session_forget(t);
        return fail(t, ret, "handshake");
      }
      t->state = DV_TLS_OPEN;
      t->established = 1;
      if (t->resumed) {
        t->conf->n_resumed++;
      } else {
        t->conf->n_full++;
      }
      DV_DEBUG(t->env, "tls: handshake done, %s%s",
               mbedtls_ssl_get_ciphersuite(&t->ssl),
               t->resumed ? ", resumed" : "");
      if (!t->is_server && t->sess_key[0] != 0) {
        session_store(t);
      }
      if (t->pending.len > 0) {
        ret = write_all(t, t->pending.data, t->pending.len);
        dv_wipe(t->pending.data, t->pending.len);
        dv_buf_reset(&t->pending);
        if (ret != 0) {
          return ret;
        }
      }
      return read_records(t);
    case DV_TLS_OPEN:
    case DV_TLS_CLOSING:
      return read_records(t);
    case DV_TLS_CLOSED:
    case DV_TLS_FAILED:
      return t->err;
  }
  return DVOICE_ERR_INTERNAL;
}

int dv_tls_start(dv_tls *t) {
  if (t == NULL || !t->initialised) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (t->state != DV_TLS_HANDSHAKE) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (t->is_server) {
    return 0;
  }
  return drive(t);
}

int dv_tls_feed(dv_tls *t, const uint8_t *ciphertext, size_t len) {
  int ret;
  if (t == NULL || !t->initialised || (ciphertext == NULL && len > 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (t->state == DV_TLS_CLOSED || t->state == DV_TLS_FAILED) {
    return t->err;
  }
  t->in = ciphertext;
  t->in_len = len;
  ret = drive(t);
  /* Bytes after a fatal error or close_notify are dropped on purpose. */
  t->in = NULL;
  t->in_len = 0;
  return ret;
}

int dv_tls_write(dv_tls *t, const uint8_t *plaintext, size_t len) {
  if (t == NULL || !t->initialised || (plaintext == NULL && len > 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  switch (t->state) {
    case DV_TLS_HANDSHAKE:
      return dv_buf_append(&t->pending, plaintext, len) == 0 ? 0
                                                             : DVOICE_ERR_NOMEM;
    case DV_TLS_OPEN:
      return write_all(t, plaintext, len);
    case DV_TLS_CLOSING:
    case DV_TLS_CLOSED:
      return DVOICE_ERR_INVALID_STATE;
    case DV_TLS_FAILED:
      return t->err;
  }
  return DVOICE_ERR_INTERNAL;
}

int dv_tls_read(dv_tls *t, dv_buf *dst) {
  if (t == NULL || dst == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (t->plain.len == 0) {
    return 0;
  }
  if (dst->len == 0 && dst->mem == t->plain.mem) {
    dv_buf tmp = *dst;
    *dst = t->plain;
    t->plain = tmp;
    return 0;
  }
  if (dv_buf_append(dst, t->plain.data, t->plain.len) != 0) {
    return DVOICE_ERR_NOMEM;
  }
  dv_wipe(t->plain.data, t->plain.len);
  dv_buf_reset(&t->plain);
  return 0;
}

dv_buf *dv_tls_outbuf(dv_tls *t) {
  return &t->out;
}

int dv_tls_shutdown(dv_tls *t) {
  int ret;
  if (t == NULL || !t->initialised) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  switch (t->state) {
    case DV_TLS_OPEN:
    case DV_TLS_CLOSED:
      ret = mbedtls_ssl_close_notify(&t->ssl);
      if (ret != 0) {
        return fail(t, ret, "close_notify");
      }
      if (t->state == DV_TLS_OPEN) {
        t->state = DV_TLS_CLOSING;
      }
      return 0;
    case DV_TLS_CLOSING:
      return 0;
    case DV_TLS_HANDSHAKE:
    case DV_TLS_FAILED:
      return DVOICE_ERR_INVALID_STATE;
  }
  return DVOICE_ERR_INTERNAL;
}

dv_tls_state dv_tls_state_get(const dv_tls *t) {
  return t->state;
}

int dv_tls_is_established(const dv_tls *t) {
  return t->established;
}

int dv_tls_is_closed(const dv_tls *t) {
  return t->state == DV_TLS_CLOSED || t->state == DV_TLS_FAILED;
}

int dv_tls_error(const dv_tls *t) {
  return t->err;
}

const char *dv_tls_ciphersuite(const dv_tls *t) {
  return t->established ? mbedtls_ssl_get_ciphersuite(&t->ssl) : NULL;
}
