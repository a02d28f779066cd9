/*
 * Internal accessors of the voice connection driver (dvoice_conn), for
 * benchmarks and tests that link the static library.
 */
#ifndef DV_UV_CONN_H
#define DV_UV_CONN_H

#include <dvoice/dvoice.h>

#include "audio/dv_hist.h"

/* The departure lateness of every packet sent, against its grid slot, ns.
 * Borrowed until the connection's close_cb. */
const dv_hist *dv_uv_conn_departures(const dvoice_conn *c);

/* Departure times of the first and the last packet sent (the
 * environment's clock; 0 before the first). */
void dv_uv_conn_departure_span(const dvoice_conn *c, dvoice_tstamp *first,
                               dvoice_tstamp *last);

/*
 * Owner hooks, for dvoice_client which drives a connection through joins.
 * on_state runs on the loop before the application's on_state with the same
 * event (the owner may call dv_uv_conn_start/end and dvoice_conn_* there);
 * on_closing runs synchronously inside dvoice_conn_close() and must not
 * call back into the connection.
 */
typedef struct dv_uv_conn_hooks {
  void (*on_state)(dvoice_conn *c, const dvoice_conn_event *ev, void *ud);
  void (*on_closing)(dvoice_conn *c, void *ud);
} dv_uv_conn_hooks;

/* As dvoice_conn_new, but session_id, token and endpoint are ignored,
 * user_id may be 0 (not known yet: see dv_uv_conn_set_user_id) and nothing
 * connects until dv_uv_conn_start. Same errors. */
int dv_uv_conn_new_deferred(dvoice_conn **out, struct uv_loop_s *loop,
                            const dvoice_conn_settings *settings,
                            const dvoice_conn_callbacks *callbacks,
                            void *user_data);

/* Sets the owner hooks (copied); |user_data| is passed to them. */
void dv_uv_conn_set_hooks(dvoice_conn *c, const dv_uv_conn_hooks *hooks,
                          void *user_data);

/* Sets the bot's user id of a deferred connection before it starts.
 * Errors: INVALID_ARGUMENT (NULL, 0), INVALID_STATE (already started). */
int dv_uv_conn_set_user_id(dvoice_conn *c, uint64_t user_id);

/* Starts a deferred connection with its first credentials (copied); on a
 * started one this is dvoice_conn_new_session. Errors: INVALID_ARGUMENT,
 * INVALID_STATE (closing, DISCONNECTED, user id still 0), NOMEM, and
 * dv_voice_init's. */
int dv_uv_conn_start(dvoice_conn *c, const char *session_id,
                     const char *token, const char *endpoint);

/* Stops sending (the queue waits) until the next dv_uv_conn_start: the
 * voice server is going away (null endpoint). */
void dv_uv_conn_suspend(dvoice_conn *c);

/* Ends the connection: the WebSocket closes with 1000, the UDP socket
 * closes and the application sees DISCONNECTED with |reason|. Errors:
 * INVALID_ARGUMENT, INVALID_STATE (closing or already DISCONNECTED). */
int dv_uv_conn_end(dvoice_conn *c, dvoice_conn_reason reason);

#endif
