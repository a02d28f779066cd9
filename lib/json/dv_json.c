#include "dv_json.h"

#include <string.h>

#include <dvoice/dvoice.h>

void dv_json_envelope_free(dv_json_envelope *e) {
  if (e->root != NULL) {
    json_decref(e->root);
  }
  memset(e, 0, sizeof(*e));
}

int dv_json_envelope_parse(dv_json_envelope *e, const char *text, size_t len,
                           const char *seq_key) {
  json_error_t jerr;
  json_t *root, *v;
  int64_t op;
  int rv;

  memset(e, 0, sizeof(*e));
  root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    return json_error_code(&jerr) == json_error_out_of_memory
               ? DVOICE_ERR_NOMEM
               : DVOICE_ERR_PROTO;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return DVOICE_ERR_PROTO;
  }
  e->root = root;
  rv = dv_json_get_int(root, "op", 0, 65535, &op);
  if (rv != 0) {
    goto fail;
  }
  e->op = (int)op;
  e->d = json_object_get(root, "d");
  rv = dv_json_get_int_opt(root, seq_key, 0, DV_JSON_SAFE_INT_MAX, &e->seq,
                           &e->has_seq);
  if (rv != 0) {
    goto fail;
  }
  v = json_object_get(root, "t");
  if (v != NULL && !json_is_null(v)) {
    if (!json_is_string(v)) {
      rv = DVOICE_ERR_PROTO;
      goto fail;
    }
    e->t = json_string_value(v);
  }
  return 0;
fail:
  dv_json_envelope_free(e);
  return rv;
}

static int int_value(const json_t *v, int64_t min, int64_t max, int64_t *out) {
  json_int_t i;
  if (!json_is_integer(v)) {
    return DVOICE_ERR_PROTO;
  }
  i = json_integer_value(v);
  if ((int64_t)i < min || (int64_t)i > max) {
    return DVOICE_ERR_PROTO;
  }
  *out = (int64_t)i;
  return 0;
}

int dv_json_get_int(const json_t *obj, const char *key, int64_t min,
                    int64_t max, int64_t *out) {
  const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL) {
    return DVOICE_ERR_PROTO;
  }
  return int_value(v, min, max, out);
}

int dv_json_get_int_opt(const json_t *obj, const char *key, int64_t min,
                        int64_t max, int64_t *out, int *present) {
  const json_t *v;
  *present = 0;
  if (!json_is_object(obj)) {
    return DVOICE_ERR_PROTO;
  }
  v = json_object_get(obj, key);
  if (v == NULL || json_is_null(v)) {
    return 0;
  }
  if (int_value(v, min, max, out) != 0) {
    return DVOICE_ERR_PROTO;
  }
  *present = 1;
  return 0;
}

int dv_json_get_number(const json_t *obj, const char *key, double min,
                       double max, double *out) {
  const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  double x;
  if (v == NULL || !json_is_number(v)) {
    return DVOICE_ERR_PROTO;
  }
  x = json_number_value(v);
  /* The comparisons are false for NaN, so NaN is rejected too. */
  if (!(x >= min && x <= max)) {
    return DVOICE_ERR_PROTO;
  }
  *out = x;
  return 0;
}

int dv_json_get_str(const json_t *obj, const char *key, const char **out,
                    size_t *len) {
  const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL || !json_is_string(v)) {
    return DVOICE_ERR_PROTO;
  }
  *out = json_string_value(v);
  if (len != NULL) {
    *len = json_string_length(v);
  }
  return 0;
}

int dv_json_get_object(const json_t *obj, const char *key, json_t **out) {
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL || !json_is_object(v)) {
    return DVOICE_ERR_PROTO;
  }
  *out = v;
  return 0;
}

int dv_json_get_array(const json_t *obj, const char *key, json_t **out) {
  json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  if (v == NULL || !json_is_array(v)) {
    return DVOICE_ERR_PROTO;
  }
  *out = v;
  return 0;
}

int dv_json_snowflake_parse(const char *s, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (s == NULL || len == 0 || len > 20 || (s[0] == '0' && len > 1)) {
    return DVOICE_ERR_PROTO;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned d = (unsigned char)s[i] - (unsigned)'0';
    if (d > 9) {
      return DVOICE_ERR_PROTO;
    }
    if (v > (UINT64_MAX - d) / 10) {
      return DVOICE_ERR_PROTO;
    }
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int dv_json_snowflake_value(const json_t *v, uint64_t *out) {
  if (v == NULL || !json_is_string(v)) {
    return DVOICE_ERR_PROTO;
  }
  return dv_json_snowflake_parse(json_string_value(v), json_string_length(v),
                                 out);
}

int dv_json_get_snowflake(const json_t *obj, const char *key, uint64_t *out) {
  const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
  return dv_json_snowflake_value(v, out);
}

size_t dv_json_snowflake_fmt(uint64_t v, char out[DV_SNOWFLAKE_STR_MAX]) {
  char tmp[DV_SNOWFLAKE_STR_MAX];
  size_t n = 0, i;
  do {
    tmp[n++] = (char)('0' + (v % 10));
    v /= 10;
  } while (v != 0);
  for (i = 0; i < n; i++) {
    out[i] = tmp[n - 1 - i];
  }
  out[n] = '\0';
  return n;
}

int dv_json_append_str(dv_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  int rv = dv_buf_push(b, '"');
  for (size_t i = 0; i < len && rv == 0; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      rv = dv_buf_append(b, esc, 2);
    } else if (c < 0x20) {
      char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      rv = dv_buf_append(b, esc, 6);
    } else {
      rv = dv_buf_push(b, c);
    }
  }
  if (rv == 0) {
    rv = dv_buf_push(b, '"');
  }
  return rv;
}

int dv_json_append_snowflake(dv_buf *b, uint64_t v) {
  char s[DV_SNOWFLAKE_STR_MAX];
  size_t n = dv_json_snowflake_fmt(v, s);
  return dv_json_append_str(b, s, n);
}

typedef struct dump_ctx {
  dv_buf *b;
  int err;
} dump_ctx;

static int dump_cb(const char *buffer, size_t size, void *data) {
  dump_ctx *c = data;
  c->err = dv_buf_append(c->b, buffer, size);
  return c->err == 0 ? 0 : -1;
}

int dv_json_append_value(dv_buf *b, const json_t *j) {
  dump_ctx c = {b, 0};
  size_t mark = b->len;
  if (j == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (json_dump_callback(j, dump_cb, &c, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
    b->len = mark;
    return c.err != 0 ? c.err : DVOICE_ERR_INVALID_ARGUMENT;
  }
  return 0;
}
