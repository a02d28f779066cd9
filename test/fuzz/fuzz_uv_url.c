/*
 * Fuzz target for the ws:// / wss:// URL parser (lib/uv/dv_uv_url.c). The
 * voice endpoint and resume_gateway_url come from Discord's gateway, so the
 * parser sees network bytes. Checks the invariants a parsed URL promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uv/dv_uv_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s) {
  for (; *s != 0; s++) {
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  dv_uv_url u;
  if (s == NULL) {
    return 0;
  }
  memcpy(s, data, size);
  s[size] = 0;
  if (dv_uv_url_parse(&u, s, NULL) == 0) {
    if (u.port == 0 || u.host[0] == 0 || u.target[0] != '/' ||
        strlen(u.host) > DV_UV_URL_HOST_MAX || strchr(u.target, '#') != NULL) {
      abort();
    }
    check_printable(u.host);
    check_printable(u.target);
    check_printable(u.authority);
    dv_uv_url_free(&u, NULL);
  } else if (u.host != NULL || u.target != NULL || u.authority != NULL) {
    abort(); /* nothing to free after an error */
  }
  free(s);
  return 0;
}
