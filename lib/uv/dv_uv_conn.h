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

#endif
