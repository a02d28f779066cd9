#include "dvt_ogg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>
#include <opus.h>

#define RATE 48000
#define CHANNELS 2
#define FRAME 960

static void put_le16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v) {
  put_le16(p, v & 0xffff);
  put_le16(p + 2, v >> 16);
}

/* Writes every page the stream has ready; |flush| forces a page out. */
static int write_pages(ogg_stream_state *os, FILE *f, int flush) {
  ogg_page pg;
  while (flush ? ogg_stream_flush(os, &pg) : ogg_stream_pageout(os, &pg)) {
    if (fwrite(pg.header, 1, (size_t)pg.header_len, f) !=
            (size_t)pg.header_len ||
        fwrite(pg.body, 1, (size_t)pg.body_len, f) != (size_t)pg.body_len) {
      return -1;
    }
  }
  return 0;
}

static int write_headers(ogg_stream_state *os, FILE *f, int preskip) {
  static const char vendor[] = "dvoice test tone";
  unsigned char head[19], tags[8 + 4 + sizeof(vendor) - 1 + 4];
  ogg_packet op;
  /* OpusHead: version 1, channel count, pre-skip, input rate, gain 0,
   * channel mapping family 0 (RFC 7845 section 5.1). */
  memcpy(head, "OpusHead", 8);
  head[8] = 1;
  head[9] = CHANNELS;
  put_le16(head + 10, (unsigned)preskip);
  put_le32(head + 12, RATE);
  put_le16(head + 16, 0);
  head[18] = 0;
  memset(&op, 0, sizeof(op));
  op.packet = head;
  op.bytes = sizeof(head);
  op.b_o_s = 1;
  if (ogg_stream_packetin(os, &op) != 0 || write_pages(os, f, 1) != 0) {
    return -1;
  }
  /* OpusTags: vendor string, no user comments (section 5.2). */
  memcpy(tags, "OpusTags", 8);
  put_le32(tags + 8, sizeof(vendor) - 1);
  memcpy(tags + 12, vendor, sizeof(vendor) - 1);
  put_le32(tags + 12 + sizeof(vendor) - 1, 0);
  memset(&op, 0, sizeof(op));
  op.packet = tags;
  op.bytes = sizeof(tags);
  op.packetno = 1;
  if (ogg_stream_packetin(os, &op) != 0 || write_pages(os, f, 1) != 0) {
    return -1;
  }
  return 0;
}

int dvt_ogg_tone_write(const char *path, uint32_t frames) {
  ogg_stream_state os;
  OpusEncoder *enc;
  FILE *f;
  opus_int16 pcm[FRAME * CHANNELS];
  unsigned char pkt[1275];
  opus_int32 lookahead = 0;
  int err = 0, rv = -1;
  uint64_t t = 0;
  enc = opus_encoder_create(RATE, CHANNELS, OPUS_APPLICATION_AUDIO, &err);
  if (enc == NULL || err != OPUS_OK) {
    return -1;
  }
  if (opus_encoder_ctl(enc, OPUS_SET_BITRATE(64000)) != OPUS_OK ||
      opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead)) != OPUS_OK) {
    opus_encoder_destroy(enc);
    return -1;
  }
  f = fopen(path, "wb");
  if (f == NULL) {
    opus_encoder_destroy(enc);
    return -1;
  }
  /* A fixed serial number keeps the file the same from run to run. */
  if (ogg_stream_init(&os, 0x64766f69) != 0) {
    fclose(f);
    opus_encoder_destroy(enc);
    return -1;
  }
  if (write_headers(&os, f, lookahead) != 0) {
    goto out;
  }
  for (uint32_t k = 0; k < frames; k++) {
    ogg_packet op;
    opus_int32 n;
    for (int i = 0; i < FRAME; i++, t++) {
      double s = sin(2.0 * M_PI * 440.0 * (double)t / RATE);
      pcm[2 * i] = pcm[2 * i + 1] = (opus_int16)(s * 8000.0);
    }
    n = opus_encode(enc, pcm, FRAME, pkt, (opus_int32)sizeof(pkt));
    if (n < 0) {
      goto out;
    }
    memset(&op, 0, sizeof(op));
    op.packet = pkt;
    op.bytes = n;
    op.packetno = (ogg_int64_t)k + 2;
    /* Granule positions count 48 kHz samples including the pre-skip. */
    op.granulepos = (ogg_int64_t)(k + 1) * FRAME;
    op.e_o_s = k + 1 == frames;
    if (ogg_stream_packetin(&os, &op) != 0 || write_pages(&os, f, 0) != 0) {
      goto out;
    }
  }
  if (write_pages(&os, f, 1) != 0) {
    goto out;
  }
  rv = 0;
out:
  ogg_stream_clear(&os);
  opus_encoder_destroy(enc);
  if (fclose(f) != 0) {
    rv = -1;
  }
  return rv;
}
