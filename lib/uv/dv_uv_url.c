#include "dv_uv_url.h"

#include <string.h>

#include "util/dv_mem.h"

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive prefix match; returns the prefix length or 0. */
static size_t has_prefix(const char *s, const char *prefix) {
  size_t i;
  for (i = 0; prefix[i] != 0; i++) {
    if (lower((unsigned char)s[i]) != prefix[i]) {
      return 0;
    }
  }
  return i;
}

static int is_alnum(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* Characters allowed in a registered name or IPv4 literal. Percent-encoded
 * host names are not supported: no DNS name needs them. */
static int is_host_char(int c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_';
}

static int is_ipv6_char(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* Printable ASCII without space: what may appear in a request target. The
 * fragment mark is excluded because RFC 6455 forbids fragments. */
static int is_target_char(int c) {
  return c > 0x20 && c < 0x7f && c != '#';
}

static char *copy_range(const dvoice_mem *mem, const char *p, size_t n) {
  char *s = dv_malloc(mem, n + 1);
  if (s != NULL) {
    memcpy(s, p, n);
    s[n] = 0;
  }
  return s;
}

int dv_uv_url_parse(dv_uv_url *u, const char *url, const dvoice_mem *mem) {
  const char *p, *host, *host_end, *auth, *auth_end;
  size_t n;
  unsigned long port = 0;
  int ipv6 = 0;
  if (u == NULL || url == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(u, 0, sizeof(*u));
  if ((n = has_prefix(url, "wss://")) != 0) {
    u->secure = 1;
  } else if ((n = has_prefix(url, "ws://")) == 0) {
    return DVOICE_ERR_UNSUPPORTED;
  }
  p = url + n;
  auth = p;
  if (*p == '[') {
    host = ++p;
    while (is_ipv6_char((unsigned char)*p)) {
      p++;
    }
    if (*p != ']' || p == host) {
      return DVOICE_ERR_MALFORMED;
    }
    host_end = p++;
    ipv6 = 1;
  } else {
    host = p;
    while (is_host_char((unsigned char)*p)) {
      p++;
    }
    host_end = p;
    if (host_end == host) {
      return DVOICE_ERR_MALFORMED;
    }
  }
  if ((size_t)(host_end - host) > DV_UV_URL_HOST_MAX) {
    return DVOICE_ERR_MALFORMED;
  }
  if (*p == ':') {
    const char *digits = ++p;
    while (*p >= '0' && *p <= '9' && p - digits < 6) {
      port = port * 10 + (unsigned long)(*p - '0');
      p++;
    }
    if (p == digits || p - digits > 5 || port == 0 || port > 65535) {
      return DVOICE_ERR_MALFORMED;
    }
  } else {
    port = u->secure ? 443 : 80;
  }
  auth_end = p;
  /* The authority must end here: anything else (user info '@', a stray
   * character) is rejected rather than guessed at. */
  if (*p != 0 && *p != '/' && *p != '?') {
    return DVOICE_ERR_MALFORMED;
  }
  for (const char *q = p; *q != 0; q++) {
    if (!is_target_char((unsigned char)*q)) {
      return DVOICE_ERR_MALFORMED;
    }
  }
  u->port = (uint16_t)port;
  u->host_ipv6 = ipv6;
  u->host = copy_range(mem, host, (size_t)(host_end - host));
  u->authority = copy_range(mem, auth, (size_t)(auth_end - auth));
  if (*p == '/') {
    u->target = copy_range(mem, p, strlen(p));
  } else {
    /* An empty path is "/"; a bare query gets "/" in front. */
    n = strlen(p);
    u->target = dv_malloc(mem, n + 2);
    if (u->target != NULL) {
      u->target[0] = '/';
      memcpy(u->target + 1, p, n + 1);
    }
  }
  if (u->host == NULL || u->authority == NULL || u->target == NULL) {
    dv_uv_url_free(u, mem);
    return DVOICE_ERR_NOMEM;
  }
  return 0;
}

void dv_uv_url_free(dv_uv_url *u, const dvoice_mem *mem) {
  if (u == NULL) {
    return;
  }
  dv_free(mem, u->host);
  dv_free(mem, u->authority);
  dv_free(mem, u->target);
  u->host = u->authority = u->target = NULL;
}
