/*
 * Build-time sample generator: a sine tone as Ogg Opus (libopus + libogg),
 * WAV or raw s16le, all 48 kHz stereo. The demo, the tests and the fuzz
 * seeds use it, so no media file is committed.
 *
 *   gen_sample [--wav|--raw] [--frame-ms N] [--bitrate B] OUT SECONDS HZ
 *
 * --frame-ms (Ogg only) writes packets of N ms (10, 20, 40, 60) to test
 * dvoice-play's handling of other packet durations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>
#include <opus/opus.h>

static void put16(uint8_t *p, unsigned v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
  put16(p, v & 0xFFFF);
  put16(p + 2, v >> 16);
}

static int write_pages(FILE *f, ogg_stream_state *os, int flush) {
  ogg_page og;
  while (flush ? ogg_stream_flush(os, &og) : ogg_stream_pageout(os, &og)) {
    if (fwrite(og.header, 1, (size_t)og.header_len, f) !=
            (size_t)og.header_len ||
        fwrite(og.body, 1, (size_t)og.body_len, f) != (size_t)og.body_len) {
      return -1;
    }
  }
  return 0;
}

static void tone(int16_t *pcm, size_t n, size_t *phase, double hz) {
  size_t i;
  for (i = 0; i < n; i++) {
    double v = 0.5 * sin(2.0 * M_PI * hz * (double)(*phase)++ / 48000.0);
    pcm[2 * i] = pcm[2 * i + 1] = (int16_t)lrint(v * 32767.0);
  }
}

static int gen_ogg(FILE *f, double seconds, double hz, int frame_ms,
                   int bitrate) {
  int err, frame = 48 * frame_ms;
  long frames = lrint(seconds * 1000.0 / frame_ms), i;
  OpusEncoder *enc =
      opus_encoder_create(48000, 2, OPUS_APPLICATION_AUDIO, &err);
  ogg_stream_state os;
  ogg_packet op;
  uint8_t head[19], tags[8 + 4 + 10 + 4], pkt[1500];
  int16_t pcm[2880 * 2];
  size_t phase = 0;
  int lookahead = 312;
  if (enc == NULL) {
    return -1;
  }
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(bitrate));
  opus_encoder_ctl(enc, OPUS_GET_LOOKAHEAD(&lookahead));
  ogg_stream_init(&os, 0x64766f69);
  memcpy(head, "OpusHead", 8);
  head[8] = 1;
  head[9] = 2;
  put16(head + 10, (unsigned)lookahead);
  put32(head + 12, 48000);
  put16(head + 16, 0);
  head[18] = 0;
  memset(&op, 0, sizeof(op));
  op.packet = head;
  op.bytes = sizeof(head);
  op.b_o_s = 1;
  ogg_stream_packetin(&os, &op);
  write_pages(f, &os, 1);
  memcpy(tags, "OpusTags", 8);
  put32(tags + 8, 10);
  memcpy(tags + 12, "gen_sample", 10);
  put32(tags + 22, 0);
  memset(&op, 0, sizeof(op));
  op.packet = tags;
  op.bytes = sizeof(tags);
  op.packetno = 1;
  ogg_stream_packetin(&os, &op);
  write_pages(f, &os, 1);
  for (i = 0; i < frames; i++) {
    opus_int32 n;
    tone(pcm, (size_t)frame, &phase, hz);
    n = opus_encode(enc, pcm, frame, pkt, sizeof(pkt));
    if (n < 0) {
      opus_encoder_destroy(enc);
      ogg_stream_clear(&os);
      return -1;
    }
    memset(&op, 0, sizeof(op));
    op.packet = pkt;
    op.bytes = n;
    op.packetno = 2 + i;
    op.granulepos = (ogg_int64_t)lookahead + (i + 1) * (ogg_int64_t)frame;
    op.e_o_s = i == frames - 1;
    ogg_stream_packetin(&os, &op);
    if (write_pages(f, &os, 0) != 0) {
      break;
    }
  }
  err = write_pages(f, &os, 1);
  opus_encoder_destroy(enc);
  ogg_stream_clear(&os);
  return err;
}

static int gen_pcm(FILE *f, double seconds, double hz, int wav) {
  size_t n = (size_t)lrint(seconds * 48000.0), phase = 0, done = 0;
  int16_t pcm[960 * 2];
  if (wav) {
    uint8_t h[44];
    uint32_t data = (uint32_t)(n * 4);
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, 2);
    put32(h + 24, 48000);
    put32(h + 28, 48000 * 4);
    put16(h + 32, 4);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data);
    if (fwrite(h, 1, sizeof(h), f) != sizeof(h)) {
      return -1;
    }
  }
  while (done < n) {
    size_t k = n - done < 960 ? n - done : 960;
    tone(pcm, k, &phase, hz);
    if (fwrite(pcm, 4, k, f) != k) {
      return -1;
    }
    done += k;
  }
  return 0;
}

int main(int argc, char **argv) {
  int wav = 0, raw = 0, frame_ms = 20, bitrate = 64000, i = 1, rv;
  FILE *f;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--wav") == 0) {
      wav = 1;
    } else if (strcmp(argv[i], "--raw") == 0) {
      raw = 1;
    } else if (strcmp(argv[i], "--frame-ms") == 0 && i + 1 < argc) {
      frame_ms = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--bitrate") == 0 && i + 1 < argc) {
      bitrate = atoi(argv[++i]);
    } else {
      break;
    }
  }
  if (argc - i != 3 ||
      (frame_ms != 10 && frame_ms != 20 && frame_ms != 40 && frame_ms != 60)) {
    fprintf(stderr, "usage: gen_sample [--wav|--raw] [--frame-ms 10|20|40|60]"
                    " [--bitrate B] OUT SECONDS HZ\n");
    return 2;
  }
  f = fopen(argv[i], "wb");
  if (f == NULL) {
    perror(argv[i]);
    return 1;
  }
  if (wav || raw) {
    rv = gen_pcm(f, atof(argv[i + 1]), atof(argv[i + 2]), wav);
  } else {
    rv = gen_ogg(f, atof(argv[i + 1]), atof(argv[i + 2]), frame_ms, bitrate);
  }
  if (fclose(f) != 0 || rv != 0) {
    fprintf(stderr, "gen_sample: failed to write %s\n", argv[i]);
    return 1;
  }
  return 0;
}
