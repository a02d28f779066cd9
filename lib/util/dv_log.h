/*
 * Internal logging. Every layer logs through the application's dvoice_env:
 * the level is checked before any formatting, the line is formatted into a
 * fixed stack buffer (no allocation; long lines are cut and end in "..."),
 * and it reaches the callback as one line without a newline.
 * Never pass a token, key or other secret to these macros.
 */
#ifndef DV_LOG_H
#define DV_LOG_H

#include <dvoice/dvoice.h>

#define DV_LOG_LINE_MAX 512

#define dv_log_enabled(env, lvl)                                              \
  ((env) != NULL && (env)->log != NULL && (int)(lvl) <= (int)(env)->log_level)

/* Formats one line and hands it to env's log callback; use the DV_* macros,
 * which check the level before evaluating the arguments. */
void dv_log_emit(const dvoice_env *env, dvoice_log_level level,
                 const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#define DV_LOG(env, lvl, ...)                                                 \
  do {                                                                        \
    if (dv_log_enabled(env, lvl)) {                                           \
      dv_log_emit(env, lvl, __VA_ARGS__);                                     \
    }                                                                         \
  } while (0)

#define DV_ERROR(env, ...) DV_LOG(env, DVOICE_LOG_ERROR, __VA_ARGS__)
#define DV_WARN(env, ...) DV_LOG(env, DVOICE_LOG_WARN, __VA_ARGS__)
#define DV_INFO(env, ...) DV_LOG(env, DVOICE_LOG_INFO, __VA_ARGS__)
#ifdef DV_NO_DEBUG_LOG
#define DV_DEBUG(env, ...)                                                    \
  do {                                                                        \
  } while (0)
#else
#define DV_DEBUG(env, ...) DV_LOG(env, DVOICE_LOG_DEBUG, __VA_ARGS__)
#endif

#endif
