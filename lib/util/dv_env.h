/*
 * The environment every core receives: allocator, log, randomness. Cores
 * never read a clock (time is an argument) and draw randomness only through
 * dv_rand(), which calls the application's hook. Core constructors reject an
 * environment without a random hook (the public objects in lib/uv fill in the
 * defaults before creating cores).
 */
#ifndef DV_ENV_H
#define DV_ENV_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

static inline void dv_rand(const dvoice_env *env, void *dest, size_t len) {
  env->rand(env->rand_user_data, (uint8_t *)dest, len);
}

static inline uint32_t dv_rand_u32(const dvoice_env *env) {
  uint8_t b[4];
  dv_rand(env, b, 4);
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
         ((uint32_t)b[2] << 8) | b[3];
}

/* Returns 0 if |env| is usable by a core, else DVOICE_ERR_INVALID_ARGUMENT. */
static inline int dv_env_check(const dvoice_env *env) {
  return env != NULL && env->rand != NULL ? 0 : DVOICE_ERR_INVALID_ARGUMENT;
}

#endif
