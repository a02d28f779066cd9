/*
 * Internal accessors of dvoice_client, for benchmarks and tests that link
 * the static library.
 */
#ifndef DV_UV_CLIENT_H
#define DV_UV_CLIENT_H

#include <dvoice/dvoice.h>

#include "tls/dv_tls.h"

/* The TLS configuration the client shares between its gateway and its
 * voice connections (borrowed until the client is freed), or NULL if it
 * could not be built. */
dv_tls_conf *dv_uv_client_tls_conf(const dvoice_client *cl);

#endif
