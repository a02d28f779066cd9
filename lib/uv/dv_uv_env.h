/* The environment's default hooks: the only place that reads the real clock
 * or the system RNG. */
#ifndef DV_UV_ENV_H
#define DV_UV_ENV_H

#include <dvoice/dvoice.h>

/* Copies |in| (NULL: defaults) to |out| and fills every unset hook with its
 * default: uv_hrtime() for the clock, randombytes_buf() for randomness.
 * Returns 0, or DVOICE_ERR_INTERNAL if libsodium cannot initialise. */
int dv_uv_env_resolve(dvoice_env *out, const dvoice_env *in);

/* Reads the environment's clock. */
dvoice_tstamp dv_uv_env_now(const dvoice_env *env);

#endif
