/*
 * The pacer's libuv glue (struct dvoice_pacer): the pure scheduler of
 * lib/audio/dv_pacer.h driven by a timerfd armed with absolute
 * CLOCK_MONOTONIC deadlines and watched by a uv_poll handle (Linux), or by a
 * single-shot uv_timer re-armed per tick. One pacer serves every connection
 * attached to it; connections reference-count it.
 *
 * The per-connection work of a tick (prepare: build and encrypt a packet;
 * send: hand it to the kernel; pull: ask the application's source; drain and
 * stream notifications) is done by the connection glue through the
 * dv_uv_conn_* functions below, which lib/uv/dv_uv_conn.c defines.
 */
#ifndef DV_UV_PACER_H
#define DV_UV_PACER_H

#include <dvoice/dvoice.h>

#include "audio/dv_pacer.h"

/* Attaches a connection: a new dv_pacer_conn with |s| (copied) whose
 * callbacks receive |conn| (a dvoice_conn). Returns 0,
 * DVOICE_ERR_INVALID_STATE (the pacer is closing), or dv_pacer_conn_add's
 * errors. */
int dv_uv_pacer_attach(dvoice_pacer *p, const dv_pacer_conn_settings *s,
                       dvoice_conn *conn, dv_pacer_conn **out);
/* Detaches (callable from inside a tick). When the last connection leaves
 * a released pacer, the pacer closes. */
void dv_uv_pacer_detach(dvoice_pacer *p, dv_pacer_conn *pc);
/* Re-arms the wake-up after a change that may have moved the deadline
 * (push, play, hold released). Cheap when nothing changed. */
void dv_uv_pacer_kick(dvoice_pacer *p);
/* The grid point of the tick that is running (valid inside a tick). */
dvoice_tstamp dv_uv_pacer_slot(const dvoice_pacer *p);
/* A private pacer whose owner failed to set up: close it without calling
 * back. */
void dv_uv_pacer_discard(dvoice_pacer *p);
/* The loop the pacer runs on. */
struct uv_loop_s *dv_uv_pacer_loop(const dvoice_pacer *p);

/*
 * Creates a pacer owned by one connection (no application reference):
 * when that connection detaches it closes, then |closed_cb| runs.
 */
int dv_uv_pacer_new_private(dvoice_pacer **out, struct uv_loop_s *loop,
                            const dvoice_env *env,
                            void (*closed_cb)(dvoice_pacer *p, void *ud),
                            void *ud);

/* Defined by the connection glue; called from inside the pacer's tick. */
int dv_uv_conn_prepare(dvoice_conn *c, const dv_pacer_frame *f);
int dv_uv_conn_send(dvoice_conn *c);
int dv_uv_conn_pull(dvoice_conn *c, dv_pull_result *out);
void dv_uv_conn_drain(dvoice_conn *c);
void dv_uv_conn_stream(dvoice_conn *c, int active);

#endif
