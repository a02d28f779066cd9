/* Fuzz target: dvoice-play's WAV and raw PCM readers (examples/dvoice-play).
 * Input: byte 0 picks the format (bits 6-7: auto, WAV, raw) and the feeding
 * chunk size (bits 0-5); the rest is the file. Every frame handed out must
 * be one 20 ms stereo s16 frame, and never more frames than the bytes
 * allow. */
#include <stdint.h>
#include <stdlib.h>

#include "../../examples/dvoice-play/play_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const play_format fmts[4] = {PLAY_FMT_AUTO, PLAY_FMT_WAV, PLAY_FMT_RAW,
                                      PLAY_FMT_WAV};
  static play_frame f;
  play_reader *r;
  size_t chunk, off = 1;
  uint64_t n = 0;
  int rv;
  if (size < 1) {
    return 0;
  }
  chunk = (size_t)(data[0] & 0x3f) * 61 + 1;
  r = play_reader_new(fmts[data[0] >> 6]);
  if (r == NULL) {
    return 0;
  }
  for (;;) {
    rv = play_reader_next(r, &f);
    if (rv == PLAY_FRAME) {
      /* Mono input doubles, so one frame needs at least 1920 bytes, except
       * a final padded frame. */
      if (f.kind != PLAY_KIND_PCM || f.len != PLAY_PCM_FRAME_BYTES) {
        abort();
      }
      n++;
      if ((n - 1) * 1920 >= size) {
        abort();
      }
      continue;
    }
    if (rv != PLAY_NEED_MORE) {
      break;
    }
    if (off >= size) {
      play_reader_eof(r);
      continue;
    }
    {
      size_t k = size - off < chunk ? size - off : chunk;
      if (play_reader_feed(r, data + off, k) != 0) {
        break;
      }
      off += k;
    }
  }
  if (rv == PLAY_ERROR && play_reader_error(r)[0] == '\0') {
    abort();
  }
  if (play_reader_get_info(r)->frames != n) {
    abort();
  }
  play_reader_free(r);
  return 0;
}
