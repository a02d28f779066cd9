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

/* ======================================================================== */
/* The pacer: one 20 ms send clock per event loop                           */
/* ======================================================================== */

struct uv_loop_s; /* uv_loop_t; the header does not need <uv.h> */

/*
 * A pacer sends the audio of every connection attached to it on one
 * absolute 20 ms grid (deadline += 20 ms, never now + 20 ms). At each tick
 * it first sends the packets prepared for that tick, then prepares the next
 * tick's packets (pulls sources, encodes, encrypts), so variable work never
 * delays a departure. A late tick is counted and never turns into a burst.
 * Create one per loop and pass it to every dvoice_conn on that loop; a
 * connection created without one makes a private pacer for itself.
 */
typedef struct dvoice_pacer dvoice_pacer;

/* How the pacer wakes up. */
typedef enum dvoice_pacer_timer {
  /* timerfd where available (Linux), else the uv_timer fallback. */
  DVOICE_PACER_TIMER_AUTO = 0,
  /* A timerfd armed with an absolute CLOCK_MONOTONIC deadline, watched by
   * a uv_poll handle: microsecond wake-ups without spinning (Linux). */
  DVOICE_PACER_TIMER_TIMERFD = 1,
  /* A single-shot uv_timer re-armed every tick (millisecond granularity),
   * optionally finished by a short spin (see spin). Portable. */
  DVOICE_PACER_TIMER_UV = 2
} dvoice_pacer_timer;

typedef struct dvoice_pacer_settings {
  /* Environment (allocator, log, clock, random); copied. The clock must be
   * monotonic nanoseconds; deadlines are converted to CLOCK_MONOTONIC. The
   * send queues and Opus encoders of attached connections are allocated
   * from this allocator. */
  dvoice_env env;
  /* Default DVOICE_PACER_TIMER_AUTO. */
  dvoice_pacer_timer timer;
  /* DVOICE_PACER_TIMER_UV only: wake this much before the deadline and
   * spin until it (0..2 ms). Default 0 (no spin). */
  dvoice_tstamp spin;
  /* A send later than its deadline by more than this counts as a late
   * tick. Default 5 ms. */
  dvoice_tstamp late_tolerance;
  /* Lanes: the pacer spreads connections over up to |lanes| grids of 20 ms,
   * each at its own phase, so that one wake-up sends at most about
   * |lane_capacity| packets and the last packet of a wake-up does not leave
   * late behind hundreds of others. A connection keeps its lane (and so an
   * exact 20 ms grid) while it sends; a new lane starts in the widest gap
   * between the running ones. More lanes: smoother departures, more
   * wake-ups. |lanes| 1 puts every connection on one grid. Defaults 20 and
   * 32; 0 means the default; |lanes| at most DVOICE_PACER_MAX_LANES. */
  unsigned lanes;
  size_t lane_capacity;
} dvoice_pacer_settings;

#define DVOICE_PACER_MAX_LANES 64

/* Fills |s| with the defaults above (env from dvoice_env_default()). */
DVOICE_EXTERN void dvoice_pacer_settings_default(dvoice_pacer_settings *s);

/*
 * Creates a pacer on |loop| (borrowed; must outlive the pacer) with
 * |settings| (copied; NULL: defaults). Creates no libuv handle that keeps
 * the loop alive while no connection sends. Never runs a callback.
 * Returns 0 and sets |*out|, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out or loop; spin over 2 ms; an
 *                                unknown timer value; lanes over
 *                                DVOICE_PACER_MAX_LANES
 *   DVOICE_ERR_UNSUPPORTED       TIMERFD asked for where there is none
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          a libuv handle, the timerfd or libsodium
 *                                failed to initialise
 */
DVOICE_EXTERN int dvoice_pacer_new(dvoice_pacer **out, struct uv_loop_s *loop,
                                   const dvoice_pacer_settings *settings);

/*
 * Releases the application's reference to |p|. Connections still attached
 * keep it running; once the last one has closed, its handles close,
 * |close_cb| (may be NULL) runs exactly once with |user_data|, and the
 * memory is freed right after it returns. Callable from any dvoice
 * callback. Returns 0 (close_cb will run), or (close_cb will not run):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL p
 *   DVOICE_ERR_INVALID_STATE     dvoice_pacer_close() was already called
 */
DVOICE_EXTERN int dvoice_pacer_close(dvoice_pacer *p,
                                     void (*close_cb)(dvoice_pacer *p,
                                                      void *user_data),
                                     void *user_data);

/* Pacer-wide tick statistics. */
typedef struct dvoice_pacer_stats {
  uint64_t ticks;        /* grid points served */
  uint64_t late_ticks;   /* ticks later than late_tolerance */
  uint64_t missed_slots; /* grid points skipped after a stall */
  uint64_t restarts;     /* lane grids started after being idle */
  uint64_t reanchored;   /* new grids started later than planned because
                            their first slot came late (nothing was sent
                            on them yet, so nothing is counted late) */
  uint64_t wakeups;      /* timer wake-ups (ticks plus early ones) */
  /* Wake-up lateness against the deadline, ns. */
  uint64_t lateness_p50, lateness_p99, lateness_p999, lateness_max;
  size_t connections;    /* connections attached now */
  size_t lanes;          /* lanes with a connection sending now */
} dvoice_pacer_stats;

/* Fills |out|. Returns 0 or DVOICE_ERR_INVALID_ARGUMENT (NULL). */
DVOICE_EXTERN int dvoice_pacer_get_stats(const dvoice_pacer *p,
                                         dvoice_pacer_stats *out);

/* ======================================================================== */
/* Voice connections                                                        */
/* ======================================================================== */

/*
 * One voice connection to one guild's voice server, made from the server
 * information the application got from its main gateway (VOICE_STATE_UPDATE
 * session_id and VOICE_SERVER_UPDATE token and endpoint): the adapter level.
 * It runs the voice gateway (WebSocket), the UDP media socket (IP discovery,
 * keepalive, transport encryption), sending paced by a dvoice_pacer, and
 * receiving. It recovers by itself where Discord allows (resume) and tells
 * the application when it needs a new session or a new server.
 *
 * Reentrancy: no dvoice_conn_* function runs an application callback
 * synchronously (events are delivered from the loop), and every function
 * below may be called from inside any dvoice callback, dvoice_conn_close()
 * included. After dvoice_conn_close() no callback runs except close_cb.
 *
 * DAVE (end-to-end encryption) is not wired in yet: the connection
 * identifies with max_dave_protocol_version 0, so Discord's non-stage voice
 * channels answer 4017, reported as DISCONNECTED with fatal set. Transport
 * encryption (both rtpsize modes) is complete.
 *
 * Threads: a connection, its pacer and every call on them belong to the
 * thread running their loop. Like any libuv program writing to sockets, the
 * application should ignore SIGPIPE (a peer that vanishes mid-write would
 * otherwise end the process).
 *
 * Memory: about 115 KiB per connection (the WebSocket read buffer, 64 KiB,
 * and the push queue, queue_frames x 1275 bytes, dominate), allocated at
 * creation and when the WebSocket connects; nothing on the per-packet path.
 */
typedef struct dvoice_conn dvoice_conn;

/* The connection's state, as the application sees it. */
typedef enum dvoice_conn_state {
  /* Voice gateway handshake: WebSocket, Identify, Ready, UDP IP
   * discovery, Select Protocol, Session Description. */
  DVOICE_CONN_CONNECTING = 1,
  /* The session is up: audio is sent and received. */
  DVOICE_CONN_READY = 2,
  /* The WebSocket was lost and is being resumed (op 7): the UDP socket,
   * SSRC, key and RTP counters are kept; sending pauses meanwhile
   * (nothing queued or pulled is lost). */
  DVOICE_CONN_RESUMING = 3,
  /* Discord invalidated the session (4006, 4009, ... or a failed resume):
   * obtain a new session_id and token through the main gateway (op 4) and
   * call dvoice_conn_new_session() before event.deadline. */
  DVOICE_CONN_NEED_SESSION = 4,
  /* Disconnected by Discord (4014, 4022): moved, kicked or the call ended.
   * If a new VOICE_SERVER_UPDATE arrives, call dvoice_conn_new_session()
   * before event.deadline; else the connection becomes DISCONNECTED. */
  DVOICE_CONN_WAIT_SERVER = 5,
  /* Terminal: see event.reason and event.fatal. Close the connection. */
  DVOICE_CONN_DISCONNECTED = 6
} dvoice_conn_state;

/* Why the connection changed state (for failures). */
typedef enum dvoice_conn_reason {
  DVOICE_CONN_REASON_NONE = 0,
  /* The voice gateway closed the WebSocket; see close_code and
   * close_reason. */
  DVOICE_CONN_REASON_CLOSED = 1,
  /* Heartbeat ACKs stopped arriving (zombie connection). */
  DVOICE_CONN_REASON_ZOMBIE = 2,
  /* The handshake did not finish in time. */
  DVOICE_CONN_REASON_HANDSHAKE_TIMEOUT = 3,
  /* The server broke the protocol. */
  DVOICE_CONN_REASON_PROTOCOL_ERROR = 4,
  /* The server offered no encryption mode this library implements. */
  DVOICE_CONN_REASON_NO_COMMON_MODE = 5,
  /* The limit of consecutive resumes or new sessions was reached. */
  DVOICE_CONN_REASON_RETRIES_EXHAUSTED = 6,
  /* No new session or server was given in time. */
  DVOICE_CONN_REASON_WAIT_TIMEOUT = 7,
  /* dvoice_conn_close() was called. */
  DVOICE_CONN_REASON_APP_CLOSED = 8,
  /* An allocation failed. */
  DVOICE_CONN_REASON_NOMEM = 9,
  /* The WebSocket could not be opened or failed (DNS, TCP, TLS, HTTP);
   * event.err holds the DVOICE_ERR_* code. */
  DVOICE_CONN_REASON_TRANSPORT = 10,
  /* The UDP socket failed or IP discovery got no answer; event.err holds
   * the DVOICE_ERR_* code. */
  DVOICE_CONN_REASON_UDP = 11,
  /* A connection made by dvoice_client_join(): the join ended (left,
   * kicked, no server in time, ...); the client's on_join says why. */
  DVOICE_CONN_REASON_JOIN_ENDED = 12
} dvoice_conn_reason;

/* A state change, borrowed for the duration of on_state. */
typedef struct dvoice_conn_event {
  dvoice_conn_state state;
  dvoice_conn_state old_state;
  dvoice_conn_reason reason;
  /* The voice gateway's close code (4006, 4015, ...), 0 if none. */
  int close_code;
  /* The close frame's reason text (NUL-terminated, "" if none). */
  const char *close_reason;
  /* A DVOICE_ERR_* code behind the change, 0 if none. */
  int err;
  /* 1 for a configuration error Discord will not accept again (4004 after
   * the retry, 4016, 4017, 4021, ...); 0 otherwise. */
  int fatal;
  /* NEED_SESSION and WAIT_SERVER: the library gives up at this time (the
   * environment's clock); DVOICE_TSTAMP_NONE otherwise. */
  dvoice_tstamp deadline;
} dvoice_conn_event;

/* Returns a static name for |s| ("READY"), "UNKNOWN" for other values. */
DVOICE_EXTERN const char *dvoice_conn_state_name(dvoice_conn_state s);
/* Returns a static name for |r| ("ZOMBIE"), "UNKNOWN" for other values. */
DVOICE_EXTERN const char *dvoice_conn_reason_name(dvoice_conn_reason r);

/* One received Opus packet, borrowed for the duration of on_opus. */
typedef struct dvoice_opus_packet {
  /* The speaker, from the server's op 5 SSRC mapping; 0 while unknown. */
  uint64_t user_id;
  uint32_t ssrc;
  uint16_t seq;       /* RTP sequence number */
  uint32_t timestamp; /* RTP timestamp, 48 kHz */
  const uint8_t *data; /* the Opus frame (transport-decrypted) */
  size_t len;
} dvoice_opus_packet;

/* One 20 ms frame of a speaker's decoded audio, borrowed for on_pcm. */
typedef struct dvoice_pcm_frame {
  uint64_t user_id;   /* 0 while the SSRC is not mapped yet */
  uint32_t ssrc;
  /* 48 kHz stereo, interleaved: samples * 2 values. */
  const int16_t *pcm;
  size_t samples;     /* per channel; 960 for a 20 ms frame */
  /* 1: the packet was lost and this frame was concealed (Opus in-band FEC
   * from the next packet when it was there, else packet loss
   * concealment). */
  int concealed;
} dvoice_pcm_frame;

/* What a pull source hands back (see dvoice_conn_callbacks.source). */
typedef enum dvoice_source_kind {
  /* Nothing now: the stream ends with five silence frames, then the
   * source is asked again at every tick. */
  DVOICE_SOURCE_NOTHING = 0,
  /* data/len: one Opus frame of 20 ms (at most 1275 bytes). */
  DVOICE_SOURCE_OPUS = 1,
  /* data: 960 x 2 interleaved int16 samples (20 ms, 48 kHz stereo); the
   * library encodes it (settings.opus_*). */
  DVOICE_SOURCE_PCM_S16 = 2,
  /* data: 960 x 2 interleaved float samples in [-1, 1]. */
  DVOICE_SOURCE_PCM_FLOAT = 3
} dvoice_source_kind;

typedef struct dvoice_source_frame {
  dvoice_source_kind kind;
  /* Borrowed: must stay valid until control returns to the event loop
   * (the library encodes or copies it right after the callback). */
  const void *data;
  size_t len; /* DVOICE_SOURCE_OPUS only */
} dvoice_source_frame;

/* Speaking flags (op 5). */
#define DVOICE_SPEAKING_MICROPHONE 1u
#define DVOICE_SPEAKING_SOUNDSHARE 2u
#define DVOICE_SPEAKING_PRIORITY 4u

/*
 * Callbacks, copied at creation; any member may be NULL. Data passed to a
 * callback is borrowed for the duration of the call. Every dvoice function
 * may be called from inside them.
 */
typedef struct dvoice_conn_callbacks {
  /* The state changed, or a failure was handled within a state (a resume
   * that failed and is retried). */
  void (*on_state)(dvoice_conn *c, const dvoice_conn_event *ev,
                   void *user_data);
  /* A transport-decrypted Opus packet from another member. */
  void (*on_opus)(dvoice_conn *c, const dvoice_opus_packet *pkt,
                  void *user_data);
  /*
   * Decoded audio, per speaker, one frame per speaker every 20 ms while it
   * talks: packets go through a per-speaker jitter buffer (settings
   * rx_jitter_depth) and an Opus decoder; lost packets are concealed.
   * Setting this callback enables decoding.
   */
  void (*on_pcm)(dvoice_conn *c, const dvoice_pcm_frame *frame,
                 void *user_data);
  /* The server's op 5: |user_id| speaks with |ssrc| and |flags|. */
  void (*on_speaking)(dvoice_conn *c, uint64_t user_id, uint32_t ssrc,
                      uint32_t flags, void *user_data);
  /* A member joined (|joined| 1, op 11) or left (0, op 13). */
  void (*on_user)(dvoice_conn *c, uint64_t user_id, int joined,
                  void *user_data);
  /* Push style: the send queue, after refusing a frame (NOBUF) or filling
   * above settings.drain_threshold, fell back to the threshold. */
  void (*on_drain)(dvoice_conn *c, void *user_data);
  /* A stream started (|active| 1: its first frame is prepared) or ended
   * (0: its five silence frames are prepared). */
  void (*on_stream)(dvoice_conn *c, int active, void *user_data);
  /*
   * Pull style (set this to choose it; push otherwise): called by the
   * pacer exactly when a frame is due, once per 20 ms while playing (see
   * dvoice_conn_play()). Fill |out| (zeroed on entry) and return 0, or
   * return DVOICE_ERR_CALLBACK_FAILURE to lose this slot (counted in
   * prepare_errors). It must return quickly: every connection of the
   * loop waits for it.
   */
  int (*source)(dvoice_conn *c, dvoice_source_frame *out, void *user_data);
} dvoice_conn_callbacks;

typedef struct dvoice_conn_settings {
  /* Environment (allocator, log, clock, random); copied. The hooks'
   * user_data pointers are borrowed for the connection's lifetime. */
  dvoice_env env;
  /* Certificate checks for wss://; ca_file copied. */
  dvoice_tls_settings tls;
  /* The loop's pacer (borrowed; it stays alive while the connection is
   * attached, even after dvoice_pacer_close()). NULL: a private pacer. */
  dvoice_pacer *pacer;
  /* Identity (required): guild, channel, the bot's user id. */
  uint64_t guild_id;
  uint64_t channel_id;
  uint64_t user_id;
  /* From VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE (required; copied;
   * the token is a secret and is never logged). |endpoint| is
   * "host[:port]" (wss://ENDPOINT/?v=8); an explicit "ws://" or "wss://"
   * prefix is honoured (ws:// for local simulators only). */
  const char *session_id;
  const char *token;
  const char *endpoint;
  /* Push style: queue capacity in frames (default 25, 500 ms) and the
   * on_drain level (default 12). */
  size_t queue_frames;
  size_t drain_threshold;
  /* Pull style with PCM: libopus encoder settings (20 ms frames, in-band
   * FEC on). Defaults: 64000 b/s, 5 % expected loss, complexity 10. */
  int32_t opus_bitrate;
  int opus_loss_percent;
  int opus_complexity;
  /* Speaking flags sent (op 5) when a stream starts; 0 is sent when it
   * ends. 0 disables automatic speaking updates. Default
   * DVOICE_SPEAKING_MICROPHONE. */
  uint32_t auto_speaking;
  /* on_pcm: packets buffered per speaker before playout (1..32, default
   * 5, 100 ms) and the most speakers decoded at once (default 64; more are
   * delivered through on_opus only). */
  unsigned rx_jitter_depth;
  unsigned rx_max_speakers;
  /* Recovery limits; 0 means the default shown. */
  int max_resume_attempts;     /* 3 consecutive resumes */
  int max_session_attempts;    /* 5 consecutive new sessions */
  int max_missed_acks;         /* 3 heartbeat ACKs before "zombie" */
  dvoice_tstamp handshake_timeout; /* 10 s */
  dvoice_tstamp session_wait;      /* 10 s in NEED_SESSION */
  dvoice_tstamp server_wait;       /* 5 s in WAIT_SERVER */
  dvoice_tstamp ipdisc_interval;   /* 1 s between IP discovery requests */
  unsigned ipdisc_attempts;        /* 10 requests */
  dvoice_tstamp keepalive_interval; /* 5 s between UDP keepalives */
} dvoice_conn_settings;

/* Fills |s| with the defaults above; identity fields zero/NULL. */
DVOICE_EXTERN void dvoice_conn_settings_default(dvoice_conn_settings *s);

/*
 * Creates a connection on |loop| (borrowed; must outlive it) and starts
 * connecting. |settings| and |callbacks| are copied (callbacks may be
 * NULL); |user_data| is passed to every callback. The first on_state
 * (CONNECTING) comes from the loop.
 * Returns 0 and sets |*out| (then call dvoice_conn_close() exactly once),
 * or (nothing to close, no callback will run):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out/loop/settings; missing or
 *                                malformed session_id, token or endpoint;
 *                                a zero guild_id or user_id; a setting out
 *                                of range
 *   DVOICE_ERR_INVALID_STATE     settings.pacer is closing or belongs to
 *                                another loop
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          a libuv handle, libsodium or libopus
 *                                failed to initialise
 */
DVOICE_EXTERN int dvoice_conn_new(dvoice_conn **out, struct uv_loop_s *loop,
                                  const dvoice_conn_settings *settings,
                                  const dvoice_conn_callbacks *callbacks,
                                  void *user_data);

/*
 * Push style: copies one 20 ms Opus frame (1..1275 bytes) into the send
 * queue; the pacer sends one frame per 20 ms. An idle connection starts a
 * stream; when the queue runs dry the stream ends with five silence frames.
 * Frames may be queued in any state; they wait while not READY.
 * Returns 0, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL c or frame, len 0
 *   DVOICE_ERR_TOO_LARGE         len > 1275
 *   DVOICE_ERR_NOBUF             the queue is full: wait for on_drain
 *   DVOICE_ERR_INVALID_STATE     a pull connection, closing or
 *                                DISCONNECTED
 */
DVOICE_EXTERN int dvoice_conn_send_opus(dvoice_conn *c, const uint8_t *frame,
                                        size_t len);

/* Push style: frames queued now. 0 for NULL or a pull connection. */
DVOICE_EXTERN size_t dvoice_conn_queued(const dvoice_conn *c);

/*
 * Pull style: starts asking callbacks.source at every tick.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL) or
 * DVOICE_ERR_INVALID_STATE (a push connection, closing or DISCONNECTED).
 */
DVOICE_EXTERN int dvoice_conn_play(dvoice_conn *c);

/*
 * Ends the current stream: drops queued frames (push) or stops asking the
 * source (pull), and sends five silence frames if a stream was running.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL) or
 * DVOICE_ERR_INVALID_STATE (closing).
 */
DVOICE_EXTERN int dvoice_conn_stop(dvoice_conn *c);

/*
 * Sets the speaking flags (DVOICE_SPEAKING_*, 0..7) and sends op 5 when
 * READY (else at the next READY). With settings.auto_speaking nonzero the
 * library also sends its own updates at stream start and end.
 * Returns 0, or DVOICE_ERR_INVALID_ARGUMENT (NULL, flags > 7),
 * DVOICE_ERR_INVALID_STATE (closing or DISCONNECTED), DVOICE_ERR_NOMEM.
 */
DVOICE_EXTERN int dvoice_conn_set_speaking(dvoice_conn *c, uint32_t flags);

/*
 * Fresh credentials after NEED_SESSION or WAIT_SERVER, or a server change
 * while connected (a VOICE_SERVER_UPDATE with a new token or endpoint): the
 * current WebSocket is closed with 1000 and a new session is identified on
 * a new UDP socket. |session_id| and |token| are required, |endpoint| may be
 * NULL to keep the current one; all copied.
 * Returns 0, or DVOICE_ERR_INVALID_ARGUMENT (NULL c, session_id or token;
 * malformed values), DVOICE_ERR_INVALID_STATE (closing or DISCONNECTED),
 * DVOICE_ERR_NOMEM.
 */
DVOICE_EXTERN int dvoice_conn_new_session(dvoice_conn *c,
                                          const char *session_id,
                                          const char *token,
                                          const char *endpoint);

/* The current state (CONNECTING before the first event). */
DVOICE_EXTERN dvoice_conn_state dvoice_conn_get_state(const dvoice_conn *c);

/* Per-connection statistics. */
typedef struct dvoice_conn_stats {
  uint64_t packets_sent;   /* RTP packets handed to the kernel */
  uint64_t silence_sent;   /* of which silence frames */
  uint64_t expected;       /* slots in which a packet was due */
  uint64_t deficit;        /* expected - packets_sent (50 per second) */
  uint64_t missed_slots;   /* slots skipped after a stall */
  uint64_t late_ticks;     /* sends later than the pacer's tolerance */
  uint64_t send_errors;    /* sends that failed */
  uint64_t send_queued;    /* sends that fell back to uv_udp_send */
  uint64_t prepare_errors; /* source failures, encoder errors, lost slots */
  uint64_t streams;        /* streams started */
  /* Departure lateness of each packet against its grid slot, ns. */
  uint64_t lateness_p50, lateness_p99, lateness_p999, lateness_max;
  uint64_t packets_received; /* RTP audio packets received */
  uint64_t decrypt_failures; /* received packets failing authentication */
  uint64_t rx_other;         /* other datagrams (RTCP, video, unknown) */
  uint64_t keepalives_sent;
  uint64_t ipdisc_requests;
  uint64_t resumes;          /* successful resumes */
  uint64_t sessions;         /* sessions established (Identify + op 4) */
  dvoice_tstamp rtt;         /* last heartbeat round trip, 0 if none */
  uint32_t ssrc;             /* our SSRC, 0 before Ready */
  int mode;                  /* 1 aead_aes256_gcm_rtpsize,
                                2 aead_xchacha20_poly1305_rtpsize, 0 none */
} dvoice_conn_stats;

/* Fills |out|. Returns 0 or DVOICE_ERR_INVALID_ARGUMENT (NULL). */
DVOICE_EXTERN int dvoice_conn_get_stats(const dvoice_conn *c,
                                        dvoice_conn_stats *out);

/* The user_data given to dvoice_conn_new(). */
DVOICE_EXTERN void *dvoice_conn_get_user_data(const dvoice_conn *c);

/*
 * Leaves: closes the WebSocket with 1000, stops sending (nothing queued is
 * sent), closes the UDP socket and every timer. |close_cb| (may be NULL)
 * runs exactly once after every libuv handle of the connection has closed;
 * the memory is freed right after it returns. No other callback runs after
 * this call. Callable from inside any callback.
 * Returns 0 (close_cb will run), or (it will not):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL c
 *   DVOICE_ERR_INVALID_STATE     dvoice_conn_close() was already called
 */
DVOICE_EXTERN int dvoice_conn_close(dvoice_conn *c,
                                    void (*close_cb)(dvoice_conn *c,
                                                     void *user_data));

/* ======================================================================== */
/* The client: one bot identity, joining channels through the main gateway */
/* ======================================================================== */

/*
 * One bot identity on one loop. It joins voice channels by asking the main
 * gateway for op 4 Update Voice State and pairing the two dispatches that
 * answer it (VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE, in either order),
 * then drives the dvoice_conn it handed out through moves, region changes,
 * new sessions, kicks and leaves.
 *
 * The main gateway is either the client's BUILT-IN one (settings.token:
 * it identifies, keeps the session and consumes the voice dispatches; the
 * bot's user id may be left for READY to tell), or reached through an
 * ADAPTER the application provides: a function that sends op 4, and entry
 * points through which the application feeds the two voice dispatches (raw
 * JSON or typed fields); the bot's user id is then required.
 *
 * Reentrancy: no dvoice_client_* function runs an application callback
 * synchronously (the adapter's send_voice_state included: it runs from the
 * loop), and every function may be called from inside any dvoice callback,
 * dvoice_client_close() included.
 */
typedef struct dvoice_client dvoice_client;

/* The application's side of the main gateway. */
typedef struct dvoice_gateway_adapter {
  /*
   * Required. Sends op 4 Update Voice State {guild_id, channel_id (0:
   * null, i.e. leave), self_mute, self_deaf} on the application's gateway
   * connection. Called from the loop. Return 0 if the payload was sent or
   * queued; a negative value ends a join that waits for it (reason
   * DVOICE_JOIN_REASON_ADAPTER_FAILED).
   */
  int (*send_voice_state)(dvoice_client *cl, uint64_t guild_id,
                          uint64_t channel_id, int self_mute, int self_deaf,
                          void *user_data);
} dvoice_gateway_adapter;

/* The join's state, per guild, as the application sees it. */
typedef enum dvoice_join_state {
  /* op 4 sent: waiting for both voice dispatches of this attempt. */
  DVOICE_JOIN_SIGNALLING = 1,
  /* The connection has current credentials (its own on_state tells how
   * far its handshake is). */
  DVOICE_JOIN_CONNECTED = 2,
  /* The voice server went away (null endpoint, close 4014/4022): waiting
   * for a new one. */
  DVOICE_JOIN_WAIT_SERVER = 3,
  /* A new session was asked for and op 4 goes out after a backoff. */
  DVOICE_JOIN_BACKOFF = 4,
  /* Terminal: see the event's reason. The connection is DISCONNECTED;
   * close it. */
  DVOICE_JOIN_ENDED = 5
} dvoice_join_state;

/* Why a join ended. */
typedef enum dvoice_join_reason {
  DVOICE_JOIN_REASON_NONE = 0,
  /* The application left (dvoice_client_leave or dvoice_conn_close). */
  DVOICE_JOIN_REASON_LEFT = 1,
  /* The two dispatches did not arrive within join_timeout. */
  DVOICE_JOIN_REASON_TIMEOUT = 2,
  /* A VOICE_STATE_UPDATE with a null channel for the bot while no join
   * was pending: kicked or disconnected by someone. */
  DVOICE_JOIN_REASON_KICKED = 3,
  /* No new voice server within server_wait (4014/4022) or endpoint_wait
   * (null endpoint). */
  DVOICE_JOIN_REASON_SERVER_TIMEOUT = 4,
  /* Too many consecutive new sessions (max_sessions). */
  DVOICE_JOIN_REASON_RETRIES_EXHAUSTED = 5,
  /* The voice connection gave up (its DISCONNECTED event says why). */
  DVOICE_JOIN_REASON_VOICE_FAILED = 6,
  /* The adapter's send_voice_state failed. */
  DVOICE_JOIN_REASON_ADAPTER_FAILED = 7,
  /* dvoice_client_close() was called. */
  DVOICE_JOIN_REASON_CLIENT_CLOSED = 8
} dvoice_join_reason;

/* Returns a static name ("SIGNALLING"), "UNKNOWN" for other values. */
DVOICE_EXTERN const char *dvoice_join_state_name(dvoice_join_state s);
/* Returns a static name ("KICKED"), "UNKNOWN" for other values. */
DVOICE_EXTERN const char *dvoice_join_reason_name(dvoice_join_reason r);

/* A join state change, borrowed for the duration of on_join. */
typedef struct dvoice_join_event {
  dvoice_join_state state;
  dvoice_join_state old_state;
  dvoice_join_reason reason; /* ENDED only; NONE otherwise */
  uint64_t guild_id;
  uint64_t channel_id; /* the channel requested or moved to */
} dvoice_join_event;

/* Flags for dvoice_client_join(). */
#define DVOICE_JOIN_SELF_MUTE 1u
#define DVOICE_JOIN_SELF_DEAF 2u

/* States of the built-in main gateway connection. */
typedef enum dvoice_gateway_state {
  /* Connecting (or reconnecting after a failure) with a fresh Identify. */
  DVOICE_GATEWAY_CONNECTING = 1,
  /* The session is up (READY or RESUMED): op 4 messages go out. */
  DVOICE_GATEWAY_READY = 2,
  /* The connection dropped (or op 7 asked for it): reconnecting to
   * resume the session. Voice connections are not affected. */
  DVOICE_GATEWAY_RESUMING = 3,
  /* Terminal: a fatal close code (4004 bad token, 4010..4014), retries
   * exhausted, or the client closed. Joins can no longer be signalled. */
  DVOICE_GATEWAY_DISCONNECTED = 4
} dvoice_gateway_state;

/* A gateway state change, borrowed for the duration of on_gateway. */
typedef struct dvoice_gateway_event {
  dvoice_gateway_state state;
  /* The close code that caused the change (0 if none), e.g. 4004. */
  int close_code;
  /* The bot's user id from READY (0 before the first READY); the id the
   * client uses when settings.user_id was 0. */
  uint64_t user_id;
} dvoice_gateway_event;

/* Returns a static name ("READY"), "UNKNOWN" for other values. */
DVOICE_EXTERN const char *dvoice_gateway_state_name(dvoice_gateway_state s);

/* Callbacks, copied at creation; any member may be NULL. */
typedef struct dvoice_client_callbacks {
  /* A join changed state. |c| is the connection dvoice_client_join()
   * returned (never one the application has closed). */
  void (*on_join)(dvoice_client *cl, dvoice_conn *c,
                  const dvoice_join_event *ev, void *user_data);
  /* Built-in gateway only: a dispatch other than VOICE_STATE_UPDATE and
   * VOICE_SERVER_UPDATE (which the client consumes), as its event name
   * ("GUILD_CREATE") and the compact JSON text of its "d" (|d_len| bytes,
   * NUL-terminated); both borrowed for the call. */
  void (*on_dispatch)(dvoice_client *cl, const char *name, const char *d,
                      size_t d_len, void *user_data);
  /* Built-in gateway only: its connection changed state. */
  void (*on_gateway)(dvoice_client *cl, const dvoice_gateway_event *ev,
                     void *user_data);
} dvoice_client_callbacks;

typedef struct dvoice_client_settings {
  /* Environment (allocator, log, clock, random); copied; the hooks'
   * user_data pointers are borrowed for the client's lifetime. */
  dvoice_env env;
  /* The bot's user id: only its voice states are acted on, and voice
   * connections identify with it. Required with an adapter. With the
   * built-in gateway it may be 0: the client then takes it from READY's
   * user.id (joins made before READY wait for it, as their op 4 does). If
   * it is set and READY names another user, the configured id is kept (a
   * warning is logged): voice states are matched against it, so joins
   * will time out; set it to 0 to follow the token. */
  uint64_t user_id;
  /* The adapter (copied) and its user_data (borrowed). NULL: the client
   * runs its built-in main gateway (token required). */
  const dvoice_gateway_adapter *adapter;
  void *adapter_user_data;
  /* Built-in gateway: the bot token (copied, secret, never logged;
   * printable ASCII, 1..512 bytes, without the "Bot " prefix). */
  const char *token;
  /* Built-in gateway: the URL (copied); NULL means Discord's
   * "wss://gateway.discord.gg/?v=10&encoding=json". TLS uses the conn
   * template's tls settings (ca_file). */
  const char *gateway_url;
  /* Built-in gateway: extra intent bits; GUILDS and GUILD_VOICE_STATES
   * are always included. */
  uint32_t intents;
  /* Template for every connection the client makes (copied at
   * dvoice_client_new: env, identity and credential fields are ignored,
   * tls.ca_file is copied). dvoice_conn_settings_default() if unset. */
  const dvoice_conn_settings *conn;
  /* The loop's pacer for every connection (borrowed; see
   * dvoice_conn_settings.pacer). NULL: each connection makes its own. */
  dvoice_pacer *pacer;
  /* Timeouts and limits; 0 means the default shown. */
  dvoice_tstamp join_timeout;  /* 10 s for both dispatches */
  dvoice_tstamp server_wait;   /* 5 s for a new server after 4014/4022 */
  dvoice_tstamp endpoint_wait; /* 10 s after a null endpoint */
  int max_sessions;            /* 5 consecutive new sessions */
} dvoice_client_settings;

/* Fills |s| with the defaults above (env from dvoice_env_default()). */
DVOICE_EXTERN void dvoice_client_settings_default(dvoice_client_settings *s);

/*
 * Creates a client on |loop| (borrowed; must outlive it). |settings| and
 * |callbacks| are copied (callbacks may be NULL); |user_data| goes to
 * every client callback. With the built-in gateway (adapter NULL) the
 * client starts connecting at once (asynchronously; on_gateway reports
 * progress); joins made before READY send their op 4 once READY, and
 * with settings.user_id 0 they learn the bot's id from READY.
 * Returns 0 and sets |*out| (then call dvoice_client_close() exactly
 * once), or (nothing to close):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL out, loop or settings; user_id 0
 *                                with an adapter; neither an adapter nor
 *                                a token; an adapter without
 *                                send_voice_state; a negative
 *                                max_sessions; a bad token or gateway_url
 *                                (built-in gateway)
 *   DVOICE_ERR_INVALID_STATE     settings.pacer belongs to another loop
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          a libuv handle failed to initialise
 */
DVOICE_EXTERN int dvoice_client_new(dvoice_client **out,
                                    struct uv_loop_s *loop,
                                    const dvoice_client_settings *settings,
                                    const dvoice_client_callbacks *callbacks,
                                    void *user_data);

/*
 * Joins |channel_id| of |guild_id| (op 4 with DVOICE_JOIN_* |flags|) and
 * returns in |*out| the connection the join drives. The connection stays
 * CONNECTING until both dispatches arrive; frames may be queued meanwhile.
 * |callbacks| (copied, may be NULL) and |user_data| are the connection's,
 * as in dvoice_conn_new(). If the guild already has a live join, this is
 * a move: op 4 goes out with the new channel, |*out| is that join's
 * connection and |callbacks|/|user_data| are ignored. Close the
 * connection (dvoice_conn_close or dvoice_client_leave) exactly once.
 * Returns 0, or (nothing to close, no callback runs):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL cl or out; zero guild or channel;
 *                                unknown flags
 *   DVOICE_ERR_INVALID_STATE     the client is closing
 *   DVOICE_ERR_NOMEM             an allocation failed
 *   DVOICE_ERR_INTERNAL          a libuv handle, libsodium or libopus
 *                                failed to initialise
 */
DVOICE_EXTERN int dvoice_client_join(dvoice_client *cl, uint64_t guild_id,
                                     uint64_t channel_id, uint32_t flags,
                                     const dvoice_conn_callbacks *callbacks,
                                     void *user_data, dvoice_conn **out);

/*
 * Leaves: sends op 4 with a null channel and closes |c| (exactly as
 * dvoice_conn_close(c, close_cb), which also leaves). Returns 0 (close_cb
 * runs), or (it does not):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL cl or c, or c not made by |cl|
 *   DVOICE_ERR_INVALID_STATE     c is already closing
 */
DVOICE_EXTERN int dvoice_client_leave(dvoice_client *cl, dvoice_conn *c,
                                      void (*close_cb)(dvoice_conn *c,
                                                       void *user_data));

/*
 * Adapter entry points: the application feeds the `d` object of a
 * VOICE_STATE_UPDATE / VOICE_SERVER_UPDATE dispatch as JSON text (|json|
 * borrowed for the call, |len| bytes, need not be NUL-terminated).
 * Dispatches for guilds without a live join, and voice states of other
 * users, are accepted and ignored. Returns 0, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL cl or json
 *   DVOICE_ERR_MALFORMED         not JSON, or a field missing or mistyped
 *   DVOICE_ERR_INVALID_STATE     the client is closing
 */
DVOICE_EXTERN int dvoice_client_voice_state_json(dvoice_client *cl,
                                                 const char *json,
                                                 size_t len);
DVOICE_EXTERN int dvoice_client_voice_server_json(dvoice_client *cl,
                                                  const char *json,
                                                  size_t len);

/*
 * Typed adapter entry points. |channel_id| 0 means a null channel;
 * |endpoint| NULL means a null endpoint; strings copied. Returns 0, or:
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL cl; zero guild or user; a missing
 *                                session_id (with a channel) or token;
 *                                over-long strings (256, 256, 400 bytes)
 *   DVOICE_ERR_INVALID_STATE     the client is closing
 */
DVOICE_EXTERN int dvoice_client_voice_state(dvoice_client *cl,
                                            uint64_t guild_id,
                                            uint64_t user_id,
                                            uint64_t channel_id,
                                            const char *session_id);
DVOICE_EXTERN int dvoice_client_voice_server(dvoice_client *cl,
                                             uint64_t guild_id,
                                             const char *token,
                                             const char *endpoint);

/* The user_data given to dvoice_client_new(). */
DVOICE_EXTERN void *dvoice_client_get_user_data(const dvoice_client *cl);

/*
 * Closes the client: every connection it made that is still open is
 * closed (as dvoice_conn_close(c, NULL): their close_cb will not run, so
 * close them first if you need it); op 4 payloads not yet handed to the
 * adapter are dropped. |close_cb| (may be NULL) runs exactly once after
 * the client's handles have closed; the memory is freed right after it
 * returns. No other client callback runs after this call.
 * Returns 0 (close_cb will run), or (it will not):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL cl
 *   DVOICE_ERR_INVALID_STATE     already closing
 */
DVOICE_EXTERN int dvoice_client_close(dvoice_client *cl,
                                      void (*close_cb)(dvoice_client *cl,
                                                       void *user_data));

#ifdef __cplusplus
}
#endif

#endif /* DVOICE_DVOICE_H */
