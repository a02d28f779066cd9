#include "dv_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dv_log_emit(const dvoice_env *env, dvoice_log_level level,
                 const char *fmt, ...) {
  char line[DV_LOG_LINE_MAX];
  va_list ap;
  int n;
  size_t len;
  if (!dv_log_enabled(env, level)) {
    return;
  }
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0) {
    return;
  }
  if ((size_t)n >= sizeof(line)) {
    memcpy(line + sizeof(line) - 4, "...", 4);
    len = sizeof(line) - 1;
  } else {
    len = (size_t)n;
  }
  /* One line per call: fold embedded newlines. */
  for (size_t i = 0; i < len; i++) {
    if (line[i] == '\n' || line[i] == '\r') {
      line[i] = ' ';
    }
  }
  env->log(env->log_user_data, level, line, len);
}
