#include <dvoice/dvoice.h>

const char *dvoice_version(void) {
  return DVOICE_VERSION;
}

uint32_t dvoice_version_num(void) {
  return DVOICE_VERSION_NUM;
}

void dvoice_env_default(dvoice_env *env) {
  env->mem = NULL;
  env->log = NULL;
  env->log_user_data = NULL;
  env->log_level = DVOICE_LOG_WARN;
  env->now = NULL;
  env->now_user_data = NULL;
  env->rand = NULL;
  env->rand_user_data = NULL;
}
