/* Shared helper for the MLS fuzz targets: re-encoding a decoded structure
 * must give back exactly the bytes it was decoded from. */
#ifndef FUZZ_MLS_COMMON_H
#define FUZZ_MLS_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "util/dv_buf.h"
#include "util/dv_rw.h"

static inline void fuzz_check_same(const dv_buf *b, int werr, const uint8_t *p,
                                   size_t len) {
  if (werr != 0 || b->len != len || (len > 0 && memcmp(b->data, p, len))) {
    abort();
  }
}

#endif
