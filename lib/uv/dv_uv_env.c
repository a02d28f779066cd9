#include "dv_uv_env.h"

#include <sodium.h>
#include <uv.h>

static dvoice_tstamp default_now(void *ud) {
  (void)ud;
  return uv_hrtime();
}

static void default_rand(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  randombytes_buf(dest, len);
}

int dv_uv_env_resolve(dvoice_env *out, const dvoice_env *in) {
  if (in != NULL) {
    *out = *in;
  } else {
    dvoice_env_default(out);
  }
  if (out->now == NULL) {
    out->now = default_now;
    out->now_user_data = NULL;
  }
  if (out->rand == NULL) {
    if (sodium_init() < 0) {
      return DVOICE_ERR_INTERNAL;
    }
    out->rand = default_rand;
    out->rand_user_data = NULL;
  }
  return 0;
}

dvoice_tstamp dv_uv_env_now(const dvoice_env *env) {
  return env->now(env->now_user_data);
}
