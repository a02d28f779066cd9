/* JSON test vector helpers; see cvec.h. */
#include "cvec.h"

#include "dvt.h"

int cvec_skip_all_unless(const char *const *vars) {
  for (size_t i = 0; vars[i] != NULL; i++) {
    if (dvt_skip_program_unless(vars[i], NULL)) {
      return 1;
    }
  }
  return 0;
}

json_t *cvec_load(const char *env_var, const char *file) {
  const char *dir = dvt_getenv_required(env_var);
  if (dir == NULL)
    return NULL;
  char path[4096];
  int n = snprintf(path, sizeof path, "%s/%s", dir, file);
  if (n < 0 || (size_t)n >= sizeof path)
    fail_msg("path too long");
  json_error_t err;
  json_t *root = json_load_file(path, 0, &err);
  if (root == NULL)
    fail_msg("%s:%d: %s", path, err.line, err.text);
  return root;
}

const char *cvec_str(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_string(v))
    fail_msg("missing string field %s", key);
  return json_string_value(v);
}

uint64_t cvec_u64(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    fail_msg("missing integer field %s", key);
  return (uint64_t)json_integer_value(v);
}

uint8_t *cvec_hex(const json_t *obj, const char *key, size_t *len) {
  uint8_t *out = NULL;
  *len = dvt_unhex(cvec_str(obj, key), &out);
  return out;
}

cvec_bytes cvec_field(const json_t *obj, const char *key) {
  cvec_bytes b;
  b.p = cvec_hex(obj, key, &b.len);
  return b;
}

void cvec_bytes_free(cvec_bytes *b) {
  free(b->p);
  b->p = NULL;
  b->len = 0;
}
