/*
 * Typed fields from the raw `d` object of the two voice dispatches of the
 * main gateway (VOICE_STATE_UPDATE, VOICE_SERVER_UPDATE), as an
 * application's adapter hands them over. Pure: no clock, no I/O; jansson
 * allocates the parse tree with its global allocator and it is released
 * before returning (see lib/json/dv_json.h on why that storage is not
 * wiped).
 *
 * The parse is strict because the text comes from the network: duplicate
 * keys, trailing bytes, invalid UTF-8 and NUL characters inside strings are
 * rejected (jansson), snowflakes must be decimal strings (a JSON number is
 * a type error) and never "0", and the strings the join core keeps must be
 * within its bounds and free of control characters (the endpoint ends up
 * in a URL and a Host header). Members not listed below are ignored.
 *
 * Error codes (every failure leaves |*out| zeroed and sets |*field| when
 * |field| is not NULL):
 *   DVOICE_ERR_INVALID_ARGUMENT  NULL json or out
 *   DVOICE_ERR_MALFORMED         not JSON (truncated, trailing bytes, bad
 *                                UTF-8, NUL in a string) or not an object;
 *                                *field is NULL
 *   DVOICE_ERR_PROTO             a member missing, of the wrong JSON type,
 *                                an invalid snowflake, an empty or
 *                                control-character string; *field names it
 *   DVOICE_ERR_TOO_LARGE         a string over its bound (session_id 256,
 *                                token 256, endpoint 400 bytes); *field
 *                                names it
 *   DVOICE_ERR_NOMEM             jansson ran out of memory
 */
#ifndef DV_JOIN_JSON_H
#define DV_JOIN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "join/dv_join.h"

/* The members of a VOICE_STATE_UPDATE the join core uses. */
typedef struct dv_join_voice_state {
  uint64_t guild_id;   /* "guild_id", required */
  uint64_t user_id;    /* "user_id", required */
  int has_channel;     /* "channel_id" present and not null */
  uint64_t channel_id; /* nonzero when has_channel, else 0 */
  int has_session;     /* "session_id" present and not null */
  /* Required (non-empty) with a channel; optional with a null one. */
  char session_id[DV_JOIN_SESSION_MAX + 1];
} dv_join_voice_state;

/* The members of a VOICE_SERVER_UPDATE. Holds a secret: wipe it. */
typedef struct dv_join_voice_server {
  uint64_t guild_id;                       /* "guild_id", required */
  char token[DV_JOIN_TOKEN_MAX + 1];       /* "token", required, secret */
  int has_endpoint;                        /* 0: null, absent or "" */
  char endpoint[DV_JOIN_ENDPOINT_MAX + 1]; /* "" unless has_endpoint */
} dv_join_voice_server;

/*
 * Parses |len| bytes of |json| (no NUL needed) into |out|. |field| (may be
 * NULL) receives the static name of the offending member on a PROTO or
 * TOO_LARGE error. Errors: see the top of this file.
 */
int dv_join_parse_voice_state(const char *json, size_t len,
                              dv_join_voice_state *out, const char **field);

/*
 * As above for a VOICE_SERVER_UPDATE. A null or absent endpoint, and an
 * empty string, mean "no server for now" (has_endpoint 0). The caller wipes
 * |out| (dv_wipe) once done with the token; on failure it is already wiped.
 */
int dv_join_parse_voice_server(const char *json, size_t len,
                               dv_join_voice_server *out, const char **field);

#endif
