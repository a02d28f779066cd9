/*
 * dvoice: a Discord voice client library on libuv.
 *
 * Conventions used by every declaration in this header:
 *
 * - Errors are negative ints in the range -1000...-1999 (enum dvoice_error);
 *   0 is success. libuv never uses this range, so a dvoice error and a libuv
 *   error can travel in the same int. dvoice_strerror() names each one.
 * - Ownership is stated on every pointer parameter:
 *     "copied"   the library copies what it needs before returning;
 *     "borrowed" the pointer must stay valid for the stated duration;
 *     "valid until ..." for pointers the library hands out.
 *   Data passed to a callback is borrowed for the duration of that callback.
 * - Asynchronous calls follow libuv's promise: if the call returns an error,
 *   its callback never runs; if it returns 0, the callback runs exactly once.
 *   No public call runs an application callback synchronously, and every
 *   public function may be called from inside a dvoice callback.
 * - Each function's comment lists the complete set of error codes it can
 *   return.
 * - Time is a dvoice_tstamp: nanoseconds on a monotonic clock, supplied by the
 *   clock hook (settings). Randomness comes from the random hook. Outside
 *   lib/uv nothing in the library reads a clock or draws randomness itself.
 */
#ifndef DVOICE_DVOICE_H
#define DVOICE_DVOICE_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BUILDING_DVOICE) && defined(__GNUC__)
#define DVOICE_EXTERN __attribute__((visibility("default")))
#else
#define DVOICE_EXTERN
#endif

/* Nanoseconds on a monotonic clock. DVOICE_TSTAMP_NONE means "no deadline". */
typedef uint64_t dvoice_tstamp;
#define DVOICE_TSTAMP_NONE UINT64_MAX
#define DVOICE_MS ((dvoice_tstamp)1000000)
#define DVOICE_SECONDS ((dvoice_tstamp)1000000000)

/*
 * Error codes. Codes at or below DVOICE_ERR_FATAL mean the object that
 * returned them cannot continue and must be closed.
 */
typedef enum dvoice_error {
  /* An argument is NULL, out of range or malformed. */
  DVOICE_ERR_INVALID_ARGUMENT = -1001,
  /* The call is not allowed in the object's current state. */
  DVOICE_ERR_INVALID_STATE = -1002,
  /* A bounded buffer or queue is full; retry after it drains. */
  DVOICE_ERR_NOBUF = -1003,
  /* More input is needed before anything can be decided. */
  DVOICE_ERR_AGAIN = -1004,
  /* A length or count exceeds a configured or protocol limit. */
  DVOICE_ERR_TOO_LARGE = -1005,
  /* Input ended before a complete structure was read. */
  DVOICE_ERR_TRUNCATED = -1006,
  /* A structure was followed by unexpected trailing bytes. */
  DVOICE_ERR_TRAILING = -1007,
  /* Encoded data is malformed (bad varint, bad enum value, bad syntax). */
  DVOICE_ERR_MALFORMED = -1008,
  /* Not supported (version, cipher suite, mode, feature). */
  DVOICE_ERR_UNSUPPORTED = -1009,
  /* A lookup found nothing. */
  DVOICE_ERR_NOT_FOUND = -1010,
  /* The operation was cancelled because its object is closing. */
  DVOICE_ERR_CANCELED = -1011,
  /* A timer ran out (connect timeout, join timeout, handshake timeout). */
  DVOICE_ERR_TIMEOUT = -1012,

  /* The peer broke the protocol. */
  DVOICE_ERR_PROTO = -1101,
  /* The HTTP Upgrade to WebSocket was refused (non-101 status). */
  DVOICE_ERR_WS_UPGRADE = -1102,
  /* The Upgrade response's Sec-WebSocket-Accept does not match our key. */
  DVOICE_ERR_WS_ACCEPT = -1103,
  /* The WebSocket peer closed the connection (the close code travels apart). */
  DVOICE_ERR_WS_CLOSED = -1104,
  /* A WebSocket message exceeded the maximum message size (closed with 1009). */
  DVOICE_ERR_WS_TOO_BIG = -1105,

  /* Socket-level failure; the libuv error code travels with the event. */
  DVOICE_ERR_TRANSPORT = -1201,
  /* Host name resolution failed. */
  DVOICE_ERR_DNS = -1202,
  /* TCP connect was refused. */
  DVOICE_ERR_CONN_REFUSED = -1203,
  /* The peer closed the transport (EOF or reset) before a clean close. */
  DVOICE_ERR_EOF = -1204,

  /* TLS handshake failed for a reason other than the ones below. */
  DVOICE_ERR_TLS = -1301,
  /* The server's certificate chain did not verify against the trusted CAs. */
  DVOICE_ERR_TLS_BAD_CERT = -1302,
  /* The server's certificate does not match the expected host name. */
  DVOICE_ERR_TLS_HOSTNAME = -1303,
  /* The TLS peer closed the connection (close_notify or EOF mid-record). */
  DVOICE_ERR_TLS_CLOSED = -1304,
  /* The CA file or system CA bundle could not be loaded. */
  DVOICE_ERR_TLS_CA = -1305,

  /* Cryptographic check failed (AEAD tag, signature, MAC, bad point). */
  DVOICE_ERR_CRYPTO = -1401,

  /* A Discord gateway rejected us with a non-recoverable close code. */
  DVOICE_ERR_REJECTED = -1501,

  /* IP discovery response: type is not 0x0002. */
  DVOICE_ERR_IPDISC_TYPE = -1601,
  /* IP discovery response: length field is not 70. */
  DVOICE_ERR_IPDISC_LENGTH = -1602,
  /* IP discovery response: address not a NUL-terminated IPv4 literal. */
  DVOICE_ERR_IPDISC_ADDRESS = -1603,
  /* IP discovery response: port 0. */
  DVOICE_ERR_IPDISC_PORT = -1604,
  /* IP discovery response: SSRC is not ours. */
  DVOICE_ERR_IPDISC_SSRC = -1605,

  /* <= this value: fatal for the object that returned it. */
  DVOICE_ERR_FATAL = -1900,
  /* An allocation failed. */
  DVOICE_ERR_NOMEM = -1901,
  /* An application callback asked to abort. */
  DVOICE_ERR_CALLBACK_FAILURE = -1902,
  /* An internal invariant failed (a bug in dvoice). */
  DVOICE_ERR_INTERNAL = -1903
} dvoice_error;

/*
 * Returns a static, human-readable string for |err|: a dvoice error, 0
 * ("success"), or "unknown error" for anything else. Never NULL.
 */
DVOICE_EXTERN const char *dvoice_strerror(int err);

/* Returns the symbolic name of |err| ("DVOICE_ERR_PROTO"), or "UNKNOWN". */
DVOICE_EXTERN const char *dvoice_err_name(int err);

/* Returns nonzero if |err| is fatal (<= DVOICE_ERR_FATAL and a dvoice code). */
DVOICE_EXTERN int dvoice_err_is_fatal(int err);

/*
 * Returns the library's version string ("MAJOR.MINOR.PATCH"), static.
 * Compare with DVOICE_VERSION to detect a header/library mismatch.
 */
DVOICE_EXTERN const char *dvoice_version(void);

/* Returns the library's version as 0xMMmmpp (see DVOICE_VERSION_NUM). */
DVOICE_EXTERN uint32_t dvoice_version_num(void);

/*
 * Allocator hooks. Every allocation dvoice itself makes goes through these
 * (mbedTLS and jansson keep their own allocators: their hooks are global and
 * a library must not set them). A NULL dvoice_mem pointer anywhere means the
 * default allocator (malloc, calloc, realloc, free). All four members must be
 * set. |realloc| and |free| accept NULL.
 */
typedef struct dvoice_mem {
  void *user_data;
  void *(*malloc)(size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *(*calloc)(size_t nmemb, size_t size, void *user_data);
  void *(*realloc)(void *ptr, size_t size, void *user_data);
} dvoice_mem;

/* Returns the default allocator (static; never NULL). */
DVOICE_EXTERN const dvoice_mem *dvoice_mem_default(void);

/* Log levels, most severe first. */
typedef enum dvoice_log_level {
  DVOICE_LOG_NONE = 0,
  DVOICE_LOG_ERROR = 1,
  DVOICE_LOG_WARN = 2,
  DVOICE_LOG_INFO = 3,
  DVOICE_LOG_DEBUG = 4
} dvoice_log_level;

/*
 * Log callback: receives one formatted line without a trailing newline,
 * NUL-terminated, |len| bytes long, borrowed for the duration of the call.
 * Lines are prefixed by the layer ("tls: ", "ws: ", ...). The level filter is
 * applied before formatting, so a filtered line costs nothing. Tokens and
 * keys never appear in log lines.
 */
typedef void (*dvoice_log_cb)(void *user_data, dvoice_log_level level,
                              const char *line, size_t len);

/*
 * Clock hook: returns the current time in nanoseconds on a monotonic clock.
 * Default: uv_hrtime(). Tests install a fake clock.
 */
typedef dvoice_tstamp (*dvoice_clock_cb)(void *user_data);

/*
 * Random hook: fills |dest| with |len| random bytes. It must not fail.
 * Default: libsodium's randombytes_buf(). Tests install a counter.
 */
typedef void (*dvoice_rand_cb)(void *user_data, uint8_t *dest, size_t len);

/*
 * Environment shared by every object: allocator, log, clock, randomness.
 * Fill with dvoice_env_default() and override what you need. Copied by every
 * function that takes it; the hooks' user_data pointers are borrowed for the
 * lifetime of the objects created with it.
 */
typedef struct dvoice_env {
  /* Allocator; NULL for the default. Borrowed for the objects' lifetime. */
  const dvoice_mem *mem;
  /* Log callback; NULL to discard. Default NULL. */
  dvoice_log_cb log;
  void *log_user_data;
  /* Lines above this level are discarded before formatting. Default WARN. */
  dvoice_log_level log_level;
  /* Clock hook; NULL for uv_hrtime(). */
  dvoice_clock_cb now;
  void *now_user_data;
  /* Random hook; NULL for randombytes_buf(). */
  dvoice_rand_cb rand;
  void *rand_user_data;
} dvoice_env;

/* Fills |env| with the defaults described above. |env| must not be NULL. */
DVOICE_EXTERN void dvoice_env_default(dvoice_env *env);

/*
 * TLS settings for every outgoing wss:// connection.
 */
typedef struct dvoice_tls_settings {
  /*
   * PEM file of trusted CA certificates; copied. NULL: the system bundle
   * (/etc/ssl/certs/ca-certificates.crt). Tests point this at their own CA.
   */
  const char *ca_file;
  /*
   * Nonzero disables certificate verification. For debugging only; it is
   * logged as a warning on every connection.
   */
  int insecure_skip_verify;
} dvoice_tls_settings;

#ifdef __cplusplus
}
#endif

#endif /* DVOICE_DVOICE_H */
