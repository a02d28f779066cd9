#include "join/dv_join_json.h"

#include <string.h>

#include <jansson.h>

#include "json/dv_json.h"
#include "util/dv_mem.h"

/* Loads |len| bytes as a JSON object, strictly (see the header). */
static int load_object(const char *json, size_t len, json_t **out) {
  json_error_t jerr;
  json_t *d = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
  *out = NULL;
  if (d == NULL) {
    return json_error_code(&jerr) == json_error_out_of_memory
               ? DVOICE_ERR_NOMEM
               : DVOICE_ERR_MALFORMED;
  }
  if (!json_is_object(d)) {
    json_decref(d);
    return DVOICE_ERR_MALFORMED;
  }
  *out = d;
  return 0;
}

/* A snowflake member: a nonzero decimal string. |*present| (when not NULL)
 * makes it optional: absent or null gives 0 with *present = 0. */
static int get_snowflake(const json_t *d, const char *key, uint64_t *out,
                         int *present) {
  const json_t *v = json_object_get(d, key);
  *out = 0;
  if (present != NULL) {
    *present = 0;
    if (v == NULL || json_is_null(v)) {
      return 0;
    }
  }
  if (v == NULL || dv_json_snowflake_value(v, out) != 0 || *out == 0) {
    *out = 0;
    return DVOICE_ERR_PROTO;
  }
  if (present != NULL) {
    *present = 1;
  }
  return 0;
}

/* An optional string member copied into |dst| (room for |max| bytes and
 * the NUL): absent or null gives *present = 0 and "". A present string
 * must be at most |max| bytes, without control characters. */
static int get_text(const json_t *d, const char *key, char *dst, size_t max,
                    int *present) {
  const json_t *v = json_object_get(d, key);
  const char *s;
  size_t n, i;
  *present = 0;
  dst[0] = '\0';
  if (v == NULL || json_is_null(v)) {
    return 0;
  }
  if (!json_is_string(v)) {
    return DVOICE_ERR_PROTO;
  }
  s = json_string_value(v);
  n = json_string_length(v);
  if (n > max) {
    return DVOICE_ERR_TOO_LARGE;
  }
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    /* jansson rejects NUL unless asked; checked anyway so that the length
     * and strlen() can never disagree. */
    if (c < 0x20 || c == 0x7f) {
      return DVOICE_ERR_PROTO;
    }
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
  *present = 1;
  return 0;
}

/* Records the failing member and clears |out|. */
static int fail(int rv, const char *name, void *out, size_t out_len,
                const char **field) {
  dv_wipe(out, out_len);
  if (field != NULL) {
    *field = name;
  }
  return rv;
}

int dv_join_parse_voice_state(const char *json, size_t len,
                              dv_join_voice_state *out, const char **field) {
  json_t *d;
  int rv;
  if (field != NULL) {
    *field = NULL;
  }
  if (out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (json == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = load_object(json, len, &d);
  if (rv != 0) {
    return rv;
  }
  if (get_snowflake(d, "guild_id", &out->guild_id, NULL) != 0) {
    rv = fail(DVOICE_ERR_PROTO, "guild_id", out, sizeof(*out), field);
  } else if (get_snowflake(d, "user_id", &out->user_id, NULL) != 0) {
    rv = fail(DVOICE_ERR_PROTO, "user_id", out, sizeof(*out), field);
  } else if (get_snowflake(d, "channel_id", &out->channel_id,
                           &out->has_channel) != 0) {
    rv = fail(DVOICE_ERR_PROTO, "channel_id", out, sizeof(*out), field);
  } else if ((rv = get_text(d, "session_id", out->session_id,
                            DV_JOIN_SESSION_MAX, &out->has_session)) != 0) {
    rv = fail(rv, "session_id", out, sizeof(*out), field);
  } else if (out->has_channel &&
             (!out->has_session || out->session_id[0] == '\0')) {
    /* Joining needs the session the voice server will ask for. */
    rv = fail(DVOICE_ERR_PROTO, "session_id", out, sizeof(*out), field);
  }
  json_decref(d);
  return rv;
}

int dv_join_parse_voice_server(const char *json, size_t len,
                               dv_join_voice_server *out, const char **field) {
  json_t *d;
  int rv, has_token;
  if (field != NULL) {
    *field = NULL;
  }
  if (out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  memset(out, 0, sizeof(*out));
  if (json == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  rv = load_object(json, len, &d);
  if (rv != 0) {
    return rv;
  }
  if (get_snowflake(d, "guild_id", &out->guild_id, NULL) != 0) {
    rv = fail(DVOICE_ERR_PROTO, "guild_id", out, sizeof(*out), field);
  } else if ((rv = get_text(d, "token", out->token, DV_JOIN_TOKEN_MAX,
                            &has_token)) != 0) {
    rv = fail(rv, "token", out, sizeof(*out), field);
  } else if (!has_token || out->token[0] == '\0') {
    rv = fail(DVOICE_ERR_PROTO, "token", out, sizeof(*out), field);
  } else if ((rv = get_text(d, "endpoint", out->endpoint, DV_JOIN_ENDPOINT_MAX,
                            &out->has_endpoint)) != 0) {
    rv = fail(rv, "endpoint", out, sizeof(*out), field);
  } else if (out->endpoint[0] == '\0') {
    /* An empty endpoint is treated as null: no server for now. */
    out->has_endpoint = 0;
  }
  json_decref(d);
  return rv;
}
