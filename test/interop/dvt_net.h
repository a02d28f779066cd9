/*
 * Helpers for the network tests (test/integ and test/interop): running a
 * loop until a condition with a watchdog, test certificates generated at
 * test time, and Node peer processes whose stdout lines the test waits on.
 */
#ifndef DVT_NET_H
#define DVT_NET_H

#include <uv.h>

#include "dvt.h"

/*
 * Runs |loop| until |cond(ud)| is nonzero or |timeout_ms| passes (a watchdog
 * timer, closed before returning). Returns 0 if the condition held, -1 on
 * timeout.
 */
int dvt_run_until(uv_loop_t *loop, int (*cond)(void *ud), void *ud,
                  unsigned timeout_ms);
/* Runs |loop| until |*flag| is nonzero; fails the test after |timeout_ms|. */
void dvt_run_flag(uv_loop_t *loop, const int *flag, unsigned timeout_ms);

/* Test certificates, made with the openssl CLI in a temp dir. */
typedef struct dvt_certs {
  char dir[128];
  char ca[192], otherca[192];
  char server_cert[192], server_key[192];
  char wrong_cert[192], wrong_key[192];
} dvt_certs;

/* Generates the certificates; fails the test if openssl fails. */
void dvt_certs_make(dvt_certs *c);
/* Removes the temp dir. */
void dvt_certs_remove(dvt_certs *c);

/* Path of a script in test/interop/peers (DVOICE_INTEROP_DIR, else the
 * source dir compiled in). Returns a static buffer. */
const char *dvt_peer_script(const char *name);

/* A Node peer process; the test reads its stdout line by line. */
typedef struct dvt_peer {
  uv_loop_t *loop;
  uv_process_t proc;
  uv_pipe_t out;
  uv_pipe_t in;
  dv_buf text; /* every stdout line so far, '\n'-terminated */
  int open;    /* handles not yet closed */
  int exited;
  int64_t exit_status;
  int term_signal;
  char rbuf[4096];
} dvt_peer;

/*
 * Starts "node SCRIPT ARGS..." with NODE_PATH pointing at |npm_peers|'s
 * node_modules; stdin and stdout are pipes, stderr is inherited. |args| is
 * NULL-terminated. Fails the test if the spawn fails.
 */
void dvt_peer_start(dvt_peer *p, uv_loop_t *loop, const char *npm_peers,
                    const char *script, const char *const *args);
/*
 * Runs the loop until the peer printed a line starting with |prefix| that
 * no earlier call consumed; consumes it and copies the rest of the line
 * (after the prefix) into |rest| when not NULL. Fails the test after
 * |timeout_ms|.
 */
void dvt_peer_wait(dvt_peer *p, const char *prefix, char *rest, size_t restlen,
                   unsigned timeout_ms);
/* Nonzero if such a line is there now (not consumed). */
int dvt_peer_has(dvt_peer *p, const char *prefix);
/* Ends the peer (closes its stdin, SIGTERM) and closes every handle; runs
 * the loop until they are closed. */
void dvt_peer_stop(dvt_peer *p);

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
int dvt_closed_port(uv_loop_t *loop);

#endif
