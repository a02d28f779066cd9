/*
 * Small jansson helpers shared by the gateway cores: the {op, d, seq|s, t}
 * envelope, strict typed getters, Discord snowflakes (decimal strings) and
 * a JSON string writer for building payloads into a dv_buf.
 *
 * Every getter is strict: a missing member or a member of the wrong JSON
 * type or out of the stated range is DVOICE_ERR_PROTO, because these values
 * come from the network. Integers must be JSON integers (1.0 is a real and
 * is rejected).
 *
 * Allocation: jansson allocates with its own process-global allocator
 * (malloc unless the application called json_set_alloc_funcs). dvoice never
 * sets those hooks, since a library must not change global state, so parsed
 * documents do not go through dvoice_mem and their storage is freed without
 * wiping. Outgoing payloads that carry secrets (the token) are therefore
 * built with dv_json_append_str into a dv_buf instead of through jansson.
 */
#ifndef DV_JSON_H
#define DV_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/dv_buf.h"

/* A parsed gateway message. */
typedef struct dv_json_envelope {
  json_t *root;  /* owned reference; released by dv_json_envelope_free */
  int op;        /* "op": integer 0..65535 */
  json_t *d;     /* "d", borrowed from root; NULL when absent */
  int has_seq;   /* nonzero when the sequence member is present, not null */
  int64_t seq;   /* its value, 0..2^53-1 */
  const char *t; /* "t" (dispatch name), borrowed; NULL when absent/null */
} dv_json_envelope;

/* Largest integer a JSON peer can represent exactly (2^53 - 1). */
#define DV_JSON_SAFE_INT_MAX ((int64_t)9007199254740991LL)

/*
 * Parses |len| bytes of |text| (no NUL needed) as a gateway envelope. The
 * sequence member is named |seq_key| ("seq" on the voice gateway, "s" on the
 * main gateway). Duplicate keys, trailing garbage and NUL bytes inside
 * strings are rejected. On success |e| owns a reference; on failure |e| is
 * left empty (dv_json_envelope_free is still safe).
 * Errors: DVOICE_ERR_PROTO (not JSON, not an object, bad op/seq/t),
 * DVOICE_ERR_NOMEM.
 */
int dv_json_envelope_parse(dv_json_envelope *e, const char *text, size_t len,
                           const char *seq_key);
void dv_json_envelope_free(dv_json_envelope *e);

/* Required integer member in [min, max]. Errors: DVOICE_ERR_PROTO. */
int dv_json_get_int(const json_t *obj, const char *key, int64_t min,
                    int64_t max, int64_t *out);
/* Optional integer member: absent or null sets *present = 0 and returns 0.
 * Errors: DVOICE_ERR_PROTO (wrong type or out of range). */
int dv_json_get_int_opt(const json_t *obj, const char *key, int64_t min,
                        int64_t max, int64_t *out, int *present);
/* Required number member (integer or real), finite, in [min, max].
 * Errors: DVOICE_ERR_PROTO. */
int dv_json_get_number(const json_t *obj, const char *key, double min,
                       double max, double *out);
/* Required string member; |*out| is borrowed from |obj| and NUL-terminated,
 * |*len| excludes the NUL (len may be NULL). Errors: DVOICE_ERR_PROTO. */
int dv_json_get_str(const json_t *obj, const char *key, const char **out,
                    size_t *len);
/* Required object / array member, borrowed. Errors: DVOICE_ERR_PROTO. */
int dv_json_get_object(const json_t *obj, const char *key, json_t **out);
int dv_json_get_array(const json_t *obj, const char *key, json_t **out);
/* Required snowflake member (a JSON string of decimal digits).
 * Errors: DVOICE_ERR_PROTO. */
int dv_json_get_snowflake(const json_t *obj, const char *key, uint64_t *out);
/* A snowflake JSON value (string). Errors: DVOICE_ERR_PROTO. */
int dv_json_snowflake_value(const json_t *v, uint64_t *out);

/*
 * Parses a snowflake: 1 to 20 ASCII digits, no sign, no spaces, no leading
 * zero (except "0" itself), value <= UINT64_MAX.
 * Errors: DVOICE_ERR_PROTO.
 */
int dv_json_snowflake_parse(const char *s, size_t len, uint64_t *out);

/* Room for the decimal form of any uint64 plus the NUL. */
#define DV_SNOWFLAKE_STR_MAX 21
/* Writes the decimal form of |v| with a NUL; returns its length. */
size_t dv_json_snowflake_fmt(uint64_t v, char out[DV_SNOWFLAKE_STR_MAX]);

/*
 * Appends |s| (|len| bytes, UTF-8 passed through) as a quoted JSON string,
 * escaping '"', '\\' and control characters.
 * Errors: DVOICE_ERR_NOMEM, DVOICE_ERR_TOO_LARGE.
 */
int dv_json_append_str(dv_buf *b, const char *s, size_t len);
/* Appends |v| as a quoted snowflake string. Errors: as dv_json_append_str. */
int dv_json_append_snowflake(dv_buf *b, uint64_t v);
/* Appends the compact serialisation of |j| (members in insertion order).
 * Errors: DVOICE_ERR_NOMEM, DVOICE_ERR_INVALID_ARGUMENT (unserialisable). */
int dv_json_append_value(dv_buf *b, const json_t *j);

#endif
