/*
 * ws:// and wss:// URL parsing (RFC 6455 section 3). Pure: no I/O, no
 * <uv.h>. The result feeds DNS, the TLS host name and the Upgrade request.
 */
#ifndef DV_UV_URL_H
#define DV_UV_URL_H

#include <stdint.h>

#include <dvoice/dvoice.h>

/* Longest host name accepted (DNS limit). */
#define DV_UV_URL_HOST_MAX 253

typedef struct dv_uv_url {
  int secure;      /* 1 for wss://, 0 for ws:// */
  int host_ipv6;   /* 1 if the host was a bracketed IPv6 literal */
  char *host;      /* without brackets, NUL-terminated; owned */
  uint16_t port;   /* explicit port, or 443 / 80 */
  char *target;    /* path and query, always starting with '/'; owned */
  char *authority; /* Host header value: host[:port], brackets kept; owned */
} dv_uv_url;

/*
 * Parses |url| (NUL-terminated, borrowed) into |u|, allocating with |mem|.
 * Accepts "ws://" or "wss://" (scheme case-insensitive), a host (name, IPv4,
 * or [IPv6]), an optional ":port" (1..65535), an optional path and query.
 * Rejects user info, fragments, empty hosts, empty or zero ports, spaces,
 * control and non-ASCII bytes.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (NULL argument),
 * DVOICE_ERR_UNSUPPORTED (another scheme), DVOICE_ERR_MALFORMED or
 * DVOICE_ERR_NOMEM. On error |u| holds nothing to free.
 */
int dv_uv_url_parse(dv_uv_url *u, const char *url, const dvoice_mem *mem);

/* Frees what dv_uv_url_parse allocated; safe on a zeroed or freed dv_uv_url. */
void dv_uv_url_free(dv_uv_url *u, const dvoice_mem *mem);

#endif
