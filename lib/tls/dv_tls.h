/*
 * dv_tls: TLS 1.2 (mbedTLS 2.28) over memory buffers, client and server.
 *
 * Sans-I/O: the caller moves the bytes. Ciphertext from the network goes in
 * with dv_tls_feed(); ciphertext to send accumulates in dv_tls_outbuf();
 * plaintext to send goes in with dv_tls_write() (accepted whole, queued until
 * the handshake completes); decrypted plaintext is taken with dv_tls_read().
 * Nothing here touches a socket or a clock of its own.
 *
 * Two objects:
 * - dv_tls_conf (heap, opaque, reference-counted): shared by many
 *   connections. It owns the mbedtls_ssl_config, the trusted CA chain
 *   (client) or certificate and key and session ticket keys (server), a
 *   CTR_DRBG seeded, and reseeded, only from the environment's random hook
 *   (dv_rand), and (client) a small cache of TLS sessions to resume, keyed
 *   by host:port. Creating it is the only step that reads files (the CA
 *   bundle, or PEM cert/key paths), once: make one per client, not one per
 *   connection.
 * - dv_tls (embedded in the caller's struct): one connection.
 *
 * Typical client flow (the glue in lib/uv):
 *   dv_tls_init_client(&t, conf, "gateway.discord.gg", 443, now);
 *   dv_tls_start(&t);                         ClientHello -> outbuf
 *   on every network read:  dv_tls_feed(&t, p, n); dv_tls_read(&t, &pt);
 *   after every call:       send and consume dv_tls_outbuf(&t)
 *   dv_tls_is_established(&t) turns 1 when the handshake is done.
 * Even when a call returns an error, the outbuf may hold an alert to send and
 * dv_tls_read() may still hold plaintext decrypted before the error.
 *
 * Time: mbedTLS itself calls time() to check certificate validity periods
 * and for the first four bytes of the hello random (MBEDTLS_HAVE_TIME_DATE in
 * Debian's build); that is outside our control and the only clock use.
 *
 * Allocation: mbedTLS 2.28 on Debian is built without
 * MBEDTLS_PLATFORM_MEMORY, so its objects (the ssl context's 2 x ~16 KiB
 * record buffers, parsed certificates, bignums) come from its own global
 * calloc/free. We do not set global hooks from a library. Everything dvoice
 * allocates itself (the conf struct, output and plaintext buffers) goes
 * through the environment's dvoice_mem.
 *
 * Not thread-safe: a conf and its connections belong to one thread (loop).
 */
#ifndef DV_TLS_H
#define DV_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>

#include <dvoice/dvoice.h>

#include "util/dv_buf.h"

/* Client session cache: entries per conf, longest "host:port" key, and
 * the longest a session is offered after its full handshake (a shorter
 * ticket lifetime hint from the server wins). */
#define DV_TLS_SESSION_CACHE_MAX 8
#define DV_TLS_SESSION_KEY_MAX 272
#define DV_TLS_SESSION_MAX_AGE_S 7200u
/* Lifetime of the session tickets a server conf issues. */
#define DV_TLS_TICKET_LIFETIME_S 7200u

/* System CA bundle used when a client conf names no CA (Debian path). */
#define DV_TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/* Options for dv_tls_conf_new(). Zero-initialise, then set what you need. */
typedef struct dv_tls_conf_opts {
  /* Nonzero for a server conf, 0 for a client conf. */
  int is_server;

  /* ---- client ---- */
  /*
   * Trusted CAs as a PEM file path; read once by dv_tls_conf_new(). Ignored
   * when ca_pem is set. NULL (and no ca_pem): DV_TLS_SYSTEM_CA_FILE.
   */
  const char *ca_file;
  /* Trusted CAs as PEM text in memory (borrowed during the call; need not be
   * NUL-terminated). Takes precedence over ca_file. */
  const uint8_t *ca_pem;
  size_t ca_pem_len;
  /*
   * Nonzero: do not verify the server's chain or name (debugging only). No CA
   * is loaded. Every connection made with the conf logs a WARN line.
   */
  int insecure_skip_verify;

  /* ---- server ---- */
  /* Certificate chain (leaf first) and private key as PEM files, or as PEM
   * text in memory (the buffers take precedence over the paths; borrowed
   * during the call). The key must not be password protected. */
  const char *cert_file;
  const char *key_file;
  const uint8_t *cert_pem;
  size_t cert_pem_len;
  const uint8_t *key_pem;
  size_t key_pem_len;
  /* Nonzero: issue and accept RFC 5077 session tickets (keys from the
   * DRBG, lifetime DV_TLS_TICKET_LIFETIME_S), so clients can resume. */
  int session_tickets;
} dv_tls_conf_opts;

typedef struct dv_tls_conf dv_tls_conf;

/*
 * Creates a shared TLS configuration from |o| (read during the call) and
 * |env| (copied; its allocator and hooks' user_data are borrowed for the
 * conf's lifetime). The DRBG is seeded from |env|'s random hook, which must
 * be set. Protocol: TLS 1.2 only, ECDHE key exchange (X25519, then P-256,
 * P-384, P-521; SHA-256 signatures preferred) with AES-GCM or
 * ChaCha20-Poly1305, certificate verification required (unless
 * insecure_skip_verify), ALPN "http/1.1" offered (client) or accepted
 * (server; a client offering ALPN without http/1.1 is refused).
 *
 * Returns 0 and sets |*out|, or one of:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out/o/env, env without a random hook,
 *                                server without cert or key
 *   DVOICE_ERR_TLS_CA            the CA file or PEM could not be loaded or
 *                                held no usable certificate
 *   DVOICE_ERR_TLS               the server cert or key could not be loaded,
 *                                or they do not match; DRBG or config setup
 *                                failed
 *   DVOICE_ERR_NOMEM             an allocation failed
 * Each failure is logged at WARN with the reason.
 */
int dv_tls_conf_new(dv_tls_conf **out, const dv_tls_conf_opts *o,
                    const dvoice_env *env);

/*
 * Reference counting: dv_tls_conf_new returns a conf holding one
 * reference; dv_tls_conf_ref takes another (returns |c|; NULL is
 * ignored) and dv_tls_conf_del drops one, freeing the conf, its CA chain
 * and its cached sessions (secrets wiped) with the last. Every dv_tls
 * initialised from |c| must be freed before its owner drops its reference.
 */
dv_tls_conf *dv_tls_conf_ref(dv_tls_conf *c);
void dv_tls_conf_del(dv_tls_conf *c);

/* Client sessions currently cached in |c| (for tests). */
size_t dv_tls_conf_session_count(const dv_tls_conf *c);

/* 1 if every unused cache slot of |c| is all zero bytes: a dropped
 * session (expired, evicted, replaced, forgotten) left no master secret or
 * ticket behind (for tests). */
int dv_tls_conf_free_slots_wiped(const dv_tls_conf *c);

/* Turns session resumption on (the default) or off for connections
 * started later; off also drops the cached sessions. For benchmarks that
 * time full handshakes. */
void dv_tls_conf_set_resumption(dv_tls_conf *c, int on);

/* Handshakes completed by connections of |c|: full and resumed. */
void dv_tls_conf_handshakes(const dv_tls_conf *c, unsigned long *full,
                            unsigned long *resumed);

/* Connection states (dv_tls_state()). */
typedef enum dv_tls_state {
  DV_TLS_HANDSHAKE = 0, /* handshake in progress (or not started) */
  DV_TLS_OPEN,          /* established: application data flows */
  DV_TLS_CLOSING,       /* we sent close_notify; the peer may still send */
  DV_TLS_CLOSED,        /* the peer sent close_notify */
  DV_TLS_FAILED         /* a fatal error; see dv_tls_error() */
} dv_tls_state;

/*
 * One TLS connection. Embed it; treat every field as private and use the
 * functions below.
 */
typedef struct dv_tls {
  mbedtls_ssl_context ssl;
  dv_tls_conf *conf;     /* borrowed; must outlive this connection */
  const dvoice_env *env; /* points into conf */
  dv_buf out;            /* ciphertext to send */
  dv_buf plain;          /* decrypted plaintext not yet read */
  dv_buf pending;        /* plaintext written before the handshake ended */
  const uint8_t *in;     /* ciphertext being fed (during dv_tls_feed) */
  size_t in_len;
  int out_err; /* allocation failure inside the send callback */
  dv_tls_state state;
  int err; /* sticky error once FAILED (or TLS_CLOSED) */
  int is_server;
  int established; /* the handshake completed at some point */
  int initialised; /* ssl context needs mbedtls_ssl_free */
  /* Client session resumption (dv_tls_init_client). */
  char sess_key[DV_TLS_SESSION_KEY_MAX]; /* "host:port"; empty: none */
  dvoice_tstamp now;                     /* when the connection started */
  int offered;                           /* a cached session was offered */
  int resumed;    /* the server accepted it (abbreviated handshake) */
  int got_ticket; /* the server announced a new session ticket */
} dv_tls;

/*
 * Initialises |t| as a connection using |conf| (borrowed until
 * dv_tls_free()). |hostname| (copied; client only, NULL for a server) is
 * sent as SNI and checked against the server certificate's subjectAltName
 * DNS entries or CN; mbedTLS 2.28 has no IP-address SAN matching, so local
 * tests should use a name such as "localhost". A client conf requires a
 * hostname unless it was made with insecure_skip_verify.
 * No bytes are produced yet: call dv_tls_start() (client) or dv_tls_feed().
 *
 * dv_tls_free() must be called afterwards even if this fails.
 * Returns 0, or one of:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL t/conf; client without hostname;
 *                                server with a hostname
 *   DVOICE_ERR_NOMEM             mbedTLS could not allocate its buffers
 *   DVOICE_ERR_TLS               other mbedTLS setup failure
 */
int dv_tls_init(dv_tls *t, dv_tls_conf *conf, const char *hostname);

/*
 * As dv_tls_init() for a client, with resumption: a session cached in
 * |conf| for "|hostname|:|port|" and at most DV_TLS_SESSION_MAX_AGE_S old
 * at |now| (or older than its ticket's lifetime hint) is offered; after a
 * completed handshake the session is cached (the oldest entry goes when
 * DV_TLS_SESSION_CACHE_MAX are held). A server that declines the offer
 * gets a full handshake; a handshake that fails after an offer drops the
 * cached session. Same errors as dv_tls_init(), and
 * DVOICE_ERR_INVALID_ARGUMENT for a server conf.
 */
int dv_tls_init_client(dv_tls *t, dv_tls_conf *conf, const char *hostname,
                       uint16_t port, dvoice_tstamp now);

/* 1 if the handshake resumed a cached session (abbreviated handshake). */
int dv_tls_is_resumed(const dv_tls *t);

/* Frees everything |t| owns; safe after a failed dv_tls_init() and twice. */
void dv_tls_free(dv_tls *t);

/*
 * Starts the handshake: a client writes its ClientHello to the outbuf. For
 * a server this does nothing (it waits for the ClientHello via feed).
 * Returns 0, or the errors of dv_tls_feed(); DVOICE_ERR_INVALID_STATE if
 * not in DV_TLS_HANDSHAKE; DVOICE_ERR_INVALID_ARGUMENT if |t| was never
 * initialised successfully.
 */
int dv_tls_start(dv_tls *t);

/*
 * Feeds |len| bytes of ciphertext received from the network (copied or
 * consumed during the call; any chunking works). Advances the handshake,
 * flushes plaintext queued by dv_tls_write() once established, and decrypts
 * every complete record into the plaintext buffer (take it with
 * dv_tls_read()). Output (handshake messages, alerts) goes to the outbuf.
 *
 * Returns 0, or one of (all but NOMEM also logged at WARN):
 *   DVOICE_ERR_TLS_BAD_CERT   the server's chain did not verify (client)
 *   DVOICE_ERR_TLS_HOSTNAME   the chain verified but the name did not match
 *   DVOICE_ERR_TLS            handshake failure, fatal alert, bad record
 *   DVOICE_ERR_TLS_CLOSED     the peer sent close_notify (state CLOSED);
 *                             plaintext before it is still readable
 *   DVOICE_ERR_NOMEM          an allocation failed
 * After any error the state is FAILED (CLOSED for TLS_CLOSED) and later
 * calls to dv_tls_feed() return the same error (sticky) without reading
 * input; dv_tls_read() and the outbuf keep working.
 */
int dv_tls_feed(dv_tls *t, const uint8_t *ciphertext, size_t len);

/*
 * Queues |len| bytes of plaintext to send (copied; accepted whole). Before
 * the handshake completes they wait in memory; afterwards they are
 * encrypted into the outbuf immediately, in records of at most 16 KiB.
 * Returns 0, or:
 *   DVOICE_ERR_INVALID_STATE  after dv_tls_shutdown() or once CLOSED
 *   DVOICE_ERR_NOMEM          an allocation failed (before the handshake
 *                             completes nothing was queued; afterwards the
 *                             connection FAILS)
 *   DVOICE_ERR_TLS            mbedTLS refused to encrypt (FAILS)
 *   the sticky error          if the connection FAILED
 */
int dv_tls_write(dv_tls *t, const uint8_t *plaintext, size_t len);

/*
 * Moves all decrypted plaintext into |dst| (appended; when |dst| is empty
 * the storage is handed over without copying, so |dst| must use the same
 * allocator as the env). Returns 0, DVOICE_ERR_NOMEM (nothing moved) or
 * DVOICE_ERR_INVALID_ARGUMENT (NULL argument).
 */
int dv_tls_read(dv_tls *t, dv_buf *dst);

/*
 * The ciphertext waiting to be sent. The caller sends it and removes what it
 * sent with dv_buf_consume() or dv_buf_reset(), or moves it out by copying
 * the struct and calling dv_buf_init(outbuf, mem) on the original. Valid
 * until the next call on |t|.
 */
dv_buf *dv_tls_outbuf(dv_tls *t);

/*
 * Sends close_notify (to the outbuf) and stops accepting writes; state
 * becomes CLOSING (or stays CLOSED). Plaintext still pending from before
 * the handshake is dropped. Returns 0, DVOICE_ERR_NOMEM, or
 * DVOICE_ERR_INVALID_STATE if the handshake never completed or the
 * connection failed (then just close the transport).
 */
int dv_tls_shutdown(dv_tls *t);

/* The current state. */
dv_tls_state dv_tls_state_get(const dv_tls *t);
/* 1 if the handshake completed (OPEN or CLOSING or CLOSED after OPEN). */
int dv_tls_is_established(const dv_tls *t);
/* 1 once the peer's close_notify arrived or the connection FAILED. */
int dv_tls_is_closed(const dv_tls *t);
/* The sticky error (0 while healthy). */
int dv_tls_error(const dv_tls *t);
/* The negotiated ciphersuite name once established, else NULL (static). */
const char *dv_tls_ciphersuite(const dv_tls *t);

#endif
