/*
 * Helpers for the conformance tests that read JSON test vectors (jansson):
 * locating the vector folders through the environment, loading a file, and
 * decoding hex fields. Every helper fails the current cmocka test on bad
 * input rather than returning garbage.
 */
#ifndef CVEC_H
#define CVEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Loads $<env_var>/<file> as JSON. Returns NULL (and the caller skips) if
 * the variable is unset outside CI; fails the test if it is unset under
 * CI=true or the file cannot be parsed. Free with json_decref. */
json_t *cvec_load(const char *env_var, const char *file);

/*
 * For main(), before cmocka runs: if any of the NULL-terminated variables
 * is unset and CI is not true, prints the TAP plan "1..0 # SKIP ..." (which
 * meson reports as a skipped test; cmocka 1.1.5 prints skips as "not ok #
 * SKIP", which meson counts as failures) and returns 1: main then returns
 * 0. Under CI=true it returns 0 so the tests run and fail on the missing
 * variable (dvt_getenv_required).
 */
int cvec_skip_all_unless(const char *const *vars);

/* The string member |key| of |obj|; fails the test if it is missing. */
const char *cvec_str(const json_t *obj, const char *key);

/* The integer member |key| of |obj|; fails the test if it is missing. */
uint64_t cvec_u64(const json_t *obj, const char *key);

/* Decodes the hex string member |key| into a new malloc'd buffer (at least
 * 1 byte allocated); *len receives its length. Fails the test on bad hex or
 * a missing member. Free with free(). */
uint8_t *cvec_hex(const json_t *obj, const char *key, size_t *len);

/* A decoded hex field with its length, freed by cvec_bytes_free. */
typedef struct cvec_bytes {
  uint8_t *p;
  size_t len;
} cvec_bytes;

cvec_bytes cvec_field(const json_t *obj, const char *key);
void cvec_bytes_free(cvec_bytes *b);

#endif
