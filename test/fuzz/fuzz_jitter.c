/* Fuzz target: the playout buffer fed with network-chosen sequence
 * numbers. Input: a script of 3-byte operations: [op][seq hi][seq lo];
 * op & 3 == 3 takes a frame, otherwise the packet |seq| (payload: op and
 * seq, op % 7 + 1 bytes) is put. Invariants: frames come out in strictly
 * increasing (wrapping) sequence order, each buffered packet at most
 * once, and the buffered count never exceeds the capacity. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/dv_jitter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_jitter *jb;
  dv_jitter_settings s;
  int have_last = 0;
  uint16_t last = 0;
  uint64_t restarts = 0;
  dv_jitter_settings_default(&s);
  if (dv_jitter_new(NULL, &s, &jb) != 0) {
    return 0;
  }
  for (size_t i = 0; i + 3 <= size; i += 3) {
    uint8_t op = data[i];
    uint16_t seq = (uint16_t)((data[i + 1] << 8) | data[i + 2]);
    if ((op & 3) == 3) {
      dv_jitter_frame f;
      dv_jitter_take t = dv_jitter_take_frame(jb, &f);
      if (dv_jitter_get_stats(jb)->restarts != restarts) {
        restarts = dv_jitter_get_stats(jb)->restarts;
        have_last = 0; /* a restart may jump anywhere */
      }
      if (t == DV_JITTER_FRAME || t == DV_JITTER_MISSING) {
        if (have_last && (int16_t)(uint16_t)(f.seq - last) <= 0) {
          abort();
        }
        /* A frame is the packet stored under its sequence number. */
        if (t == DV_JITTER_FRAME &&
            (f.len < 3 || f.data[1] != (uint8_t)(f.seq >> 8) ||
             f.data[2] != (uint8_t)f.seq)) {
          abort();
        }
        last = f.seq;
        have_last = 1;
      }
    } else {
      uint8_t p[8] = {op, (uint8_t)(seq >> 8), (uint8_t)seq, 1, 2, 3, 4, 5};
      size_t len = (size_t)(op % 6) + 3;
      int rv = dv_jitter_put_packet(jb, seq, seq * 960u, p, len);
      if (rv < 0) {
        abort();
      }
    }
    if (dv_jitter_buffered(jb) > s.depth + s.spike) {
      abort();
    }
  }
  dv_jitter_free(jb);
  return 0;
}
