/*
 * Test-only join timeline: when each step of a join happened, for the join
 * latency benchmark. Internal (not public API); a client or connection
 * without a timeline (the default) records nothing and behaves the same.
 * Each step keeps its first time only (the environment's clock), so the
 * caller zeroes the struct before each join.
 */
#ifndef DV_UV_TIMELINE_H
#define DV_UV_TIMELINE_H

#include <dvoice/dvoice.h>

typedef enum dv_uv_step {
  DV_UV_STEP_OP4 = 0,  /* op 4 (join) handed to the main gateway */
  DV_UV_STEP_EVENTS,   /* both voice dispatches in hand: connection started */
  DV_UV_STEP_DNS,      /* voice host resolved (after the TLS config is built) */
  DV_UV_STEP_TCP,      /* TCP connected */
  DV_UV_STEP_TLS,      /* TLS handshake done */
  DV_UV_STEP_WS_OPEN,  /* voice WebSocket open (TLS and Upgrade done) */
  DV_UV_STEP_HELLO,    /* op 8 Hello received */
  DV_UV_STEP_IDENTIFY, /* op 0 Identify handed to the WebSocket */
  DV_UV_STEP_READY,    /* op 2 Ready received */
  DV_UV_STEP_IPDISC,   /* IP discovery answer received */
  DV_UV_STEP_SELECT,   /* op 1 Select Protocol handed to the WebSocket */
  DV_UV_STEP_SESSION,  /* op 4 Session Description received */
  DV_UV_STEP_SENDABLE, /* a pushed frame would leave on the next tick */
  DV_UV_NSTEPS
} dv_uv_step;

typedef struct dv_uv_timeline {
  dvoice_tstamp at[DV_UV_NSTEPS]; /* 0: not reached */
} dv_uv_timeline;

/* Sets where the connection (and its WebSocket) records its steps (EVENTS
 * onwards); |tl| is borrowed until it is replaced or the connection is
 * closed; NULL stops. */
void dv_uv_conn_set_timeline(dvoice_conn *c, dv_uv_timeline *tl);

/* Sets where the client records OP4 (for any join); borrowed as above. */
void dv_uv_client_set_timeline(dvoice_client *cl, dv_uv_timeline *tl);

/* Sets where a client WebSocket records DNS, TCP and TLS (the connection
 * passes its own timeline on); borrowed as above. */
struct dv_uv_ws;
void dv_uv_ws_set_timeline(struct dv_uv_ws *s, dv_uv_timeline *tl);

#endif
