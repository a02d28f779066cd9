/* Fuzz target: dvoice-play's Ogg Opus reader (examples/dvoice-play).
 * Input: byte 0 picks the feeding chunk size, the rest is the file. Every
 * frame handed out must be one 20 ms Opus packet of 1..1275 bytes. */
#include <stdint.h>
#include <stdlib.h>

#include <opus/opus.h>

#include "../../examples/dvoice-play/play_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static play_frame f;
  play_reader *r;
  size_t chunk, off = 1;
  int rv;
  if (size < 1) {
    return 0;
  }
  chunk = (size_t)(data[0] & 0x7f) + 1;
  r = play_reader_new((data[0] & 0x80) ? PLAY_FMT_AUTO : PLAY_FMT_OGG);
  if (r == NULL) {
    return 0;
  }
  for (;;) {
    rv = play_reader_next(r, &f);
    if (rv == PLAY_FRAME) {
      if (f.kind != PLAY_KIND_OPUS || f.len == 0 || f.len > PLAY_OPUS_MAX ||
          opus_packet_get_nb_samples(f.data, (opus_int32)f.len, 48000) !=
              PLAY_FRAME_SAMPLES) {
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
  play_reader_free(r);
  (void)play_ogg_last_granule(data + 1, size - 1);
  return 0;
}
