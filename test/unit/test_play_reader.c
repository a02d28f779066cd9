/*
 * Unit tests for dvoice-play's input readers (examples/dvoice-play): Ogg
 * Opus streams built in memory with libogg and libopus (continued packets,
 * drips, truncation at every length, corruption, wrong codecs and packet
 * durations), WAV (formats, chunks, pad bytes, odd sizes), raw PCM, and the
 * dominant-frequency estimate used by the simulator verdict.
 */
#include "dvt.h"

#include <math.h>

#include <ogg/ogg.h>
#include <opus/opus.h>

#include "../../examples/dvoice-play/play_reader.h"
#include "../../examples/dvoice-play/play_tone.h"

#define MAXP 64

typedef struct stream {
  uint8_t *data;
  size_t len;
  /* The audio packets put in, for comparison. */
  uint8_t pkt[MAXP][PLAY_OPUS_MAX];
  size_t plen[MAXP];
  int npkt;
} stream;

static void st_append(stream *s, const uint8_t *p, size_t n) {
  s->data = realloc(s->data, s->len + n);
  assert_non_null(s->data);
  memcpy(s->data + s->len, p, n);
  s->len += n;
}

static void st_pages(stream *s, ogg_stream_state *os, int flush, int fill) {
  ogg_page og;
  for (;;) {
    int rv = fill > 0 ? ogg_stream_flush_fill(os, &og, fill)
             : flush  ? ogg_stream_flush(os, &og)
                      : ogg_stream_pageout(os, &og);
    if (rv == 0) {
      break;
    }
    st_append(s, og.header, (size_t)og.header_len);
    st_append(s, og.body, (size_t)og.body_len);
  }
}

static void put_packet(ogg_stream_state *os, const uint8_t *p, size_t n,
                       int64_t no, int64_t gran, int bos, int eos) {
  ogg_packet op;
  memset(&op, 0, sizeof(op));
  op.packet = (unsigned char *)p;
  op.bytes = (long)n;
  op.packetno = no;
  op.granulepos = gran;
  op.b_o_s = bos;
  op.e_o_s = eos;
  assert_int_equal(ogg_stream_packetin(os, &op), 0);
}

typedef struct gen_opts {
  int frame_ms;      /* packet duration */
  int npkt;          /* audio packets */
  int fill;          /* >0: pages of about this many bytes (continued) */
  int channels;      /* OpusHead channel count */
  int family;        /* mapping family */
  int no_tags;       /* omit OpusTags */
  const char *magic; /* "OpusHead" unless set */
} gen_opts;

static void gen_default(gen_opts *o) {
  memset(o, 0, sizeof(*o));
  o->frame_ms = 20;
  o->npkt = 10;
  o->channels = 2;
}

/* Builds an Ogg Opus stream of a 440 Hz tone. */
static void gen_ogg(stream *s, const gen_opts *o) {
  ogg_stream_state os;
  uint8_t head[19] = {0}, tags[16] = "OpusTags";
  int16_t pcm[2880 * 2];
  int err, i, j, frame = 48 * o->frame_ms;
  OpusEncoder *enc =
      opus_encoder_create(48000, 2, OPUS_APPLICATION_AUDIO, &err);
  assert_non_null(enc);
  memset(s, 0, sizeof(*s));
  ogg_stream_init(&os, 1234);
  memcpy(head, o->magic ? o->magic : "OpusHead", 8);
  head[8] = 1;
  head[9] = (uint8_t)o->channels;
  head[10] = 0x38;
  head[11] = 0x01; /* pre-skip 312 */
  head[12] = 0x80;
  head[13] = 0xBB; /* 48000 */
  head[18] = (uint8_t)o->family;
  put_packet(&os, head, sizeof(head), 0, 0, 1, 0);
  st_pages(s, &os, 1, 0);
  if (!o->no_tags) {
    put_packet(&os, tags, sizeof(tags), 1, 0, 0, 0);
    st_pages(s, &os, 1, o->fill);
  }
  for (i = 0; i < o->npkt && i < MAXP; i++) {
    opus_int32 n;
    for (j = 0; j < frame; j++) {
      pcm[2 * j] = pcm[2 * j + 1] =
          (int16_t)(8000 * sin(2 * M_PI * 440 * (i * frame + j) / 48000.0));
    }
    n = opus_encode(enc, pcm, frame, s->pkt[i], PLAY_OPUS_MAX);
    assert_true(n > 0);
    s->plen[i] = (size_t)n;
    put_packet(&os, s->pkt[i], (size_t)n, 2 + i, 312 + (i + 1) * frame, 0,
               i == o->npkt - 1);
    st_pages(s, &os, 0, o->fill);
  }
  s->npkt = i;
  st_pages(s, &os, 1, o->fill);
  ogg_stream_clear(&os);
  opus_encoder_destroy(enc);
}

/* Feeds |p| in chunks of |chunk| bytes, pulling frames as they come.
 * Returns the final status (PLAY_END or PLAY_ERROR); frames in |out|. */
static int read_all(play_reader *r, const uint8_t *p, size_t n, size_t chunk,
                    play_frame *out, int max, int *nout) {
  size_t off = 0;
  int rv;
  static play_frame scratch;
  *nout = 0;
  for (;;) {
    play_frame *f = *nout < max ? &out[*nout] : &scratch;
    rv = play_reader_next(r, f);
    if (rv == PLAY_FRAME) {
      (*nout)++;
      continue;
    }
    if (rv != PLAY_NEED_MORE) {
      return rv;
    }
    if (off == n) {
      play_reader_eof(r);
      continue;
    }
    {
      size_t k = n - off < chunk ? n - off : chunk;
      if (play_reader_feed(r, p + off, k) != 0) {
        return PLAY_ERROR;
      }
      off += k;
    }
  }
}

static play_frame frames[3 * MAXP];

static void check_ogg_frames(const stream *s, size_t chunk) {
  play_reader *r = play_reader_new(PLAY_FMT_AUTO);
  int n, i;
  assert_int_equal(read_all(r, s->data, s->len, chunk, frames, 3 * MAXP, &n),
                   PLAY_END);
  assert_int_equal(n, s->npkt);
  for (i = 0; i < n; i++) {
    assert_int_equal(frames[i].kind, PLAY_KIND_OPUS);
    assert_int_equal(frames[i].len, s->plen[i]);
    assert_memory_equal(frames[i].data, s->pkt[i], s->plen[i]);
  }
  assert_int_equal(play_reader_get_info(r)->format, PLAY_FMT_OGG);
  assert_int_equal(play_reader_get_info(r)->channels, 2);
  assert_int_equal(play_reader_get_info(r)->pre_skip, 312);
  assert_int_equal(play_reader_get_info(r)->last_granule, 312 + s->npkt * 960);
  play_reader_free(r);
}

static void ogg_basic(void **state) {
  stream s;
  gen_opts o;
  (void)state;
  gen_default(&o);
  gen_ogg(&s, &o);
  check_ogg_frames(&s, 4096);
  check_ogg_frames(&s, s.len);
  free(s.data);
}

static void ogg_drip(void **state) {
  stream s;
  gen_opts o;
  (void)state;
  gen_default(&o);
  gen_ogg(&s, &o);
  check_ogg_frames(&s, 1);
  check_ogg_frames(&s, 7);
  free(s.data);
}

/* Pages of about 30 bytes: most packets continue over several pages. */
static void ogg_continued(void **state) {
  stream s;
  gen_opts o;
  (void)state;
  gen_default(&o);
  o.fill = 30;
  gen_ogg(&s, &o);
  check_ogg_frames(&s, 1);
  check_ogg_frames(&s, 333);
  free(s.data);
}

/* Every truncation ends cleanly: an error before the audio, otherwise a
 * prefix of the packets; never a crash or a made-up frame. */
static void ogg_truncated_everywhere(void **state) {
  stream s;
  gen_opts o;
  size_t cut;
  (void)state;
  gen_default(&o);
  o.npkt = 4;
  gen_ogg(&s, &o);
  for (cut = 0; cut < s.len; cut++) {
    play_reader *r = play_reader_new(PLAY_FMT_AUTO);
    int n, i, rv = read_all(r, s.data, cut, 64, frames, MAXP, &n);
    assert_true(rv == PLAY_END || rv == PLAY_ERROR);
    assert_true(n < s.npkt);
    if (rv == PLAY_ERROR) {
      assert_true(strlen(play_reader_error(r)) > 0);
    }
    for (i = 0; i < n; i++) {
      assert_memory_equal(frames[i].data, s.pkt[i], s.plen[i]);
    }
    play_reader_free(r);
  }
  free(s.data);
}

/* A corrupted byte breaks one page's checksum: that page is skipped (a
 * hole), the rest still plays. */
static void ogg_corrupt_page(void **state) {
  stream s;
  gen_opts o;
  play_reader *r;
  int n;
  (void)state;
  gen_default(&o);
  o.npkt = 20;
  o.fill = 200;
  gen_ogg(&s, &o);
  s.data[s.len / 2] ^= 0x55;
  r = play_reader_new(PLAY_FMT_OGG);
  assert_int_equal(read_all(r, s.data, s.len, 100, frames, MAXP, &n), PLAY_END);
  assert_true(n > 0 && n < s.npkt);
  assert_true(play_reader_get_info(r)->skipped_bytes > 0);
  assert_true(play_reader_get_info(r)->holes > 0);
  play_reader_free(r);
  free(s.data);
}

static void expect_error(const uint8_t *p, size_t n, play_format fmt,
                         const char *needle) {
  play_reader *r = play_reader_new(fmt);
  int nf;
  assert_int_equal(read_all(r, p, n, 50, frames, MAXP, &nf), PLAY_ERROR);
  if (strstr(play_reader_error(r), needle) == NULL) {
    fail_msg("error \"%s\" lacks \"%s\"", play_reader_error(r), needle);
  }
  /* Terminal: nothing more comes out. */
  assert_int_equal(play_reader_next(r, frames), PLAY_ERROR);
  assert_int_equal(play_reader_feed(r, p, 1), PLAY_ERROR);
  play_reader_free(r);
}

static void ogg_wrong_streams(void **state) {
  stream s;
  gen_opts o;
  (void)state;
  gen_default(&o);
  o.magic = "OpusHeaX";
  gen_ogg(&s, &o);
  expect_error(s.data, s.len, PLAY_FMT_AUTO, "not Opus");
  free(s.data);
  gen_default(&o);
  o.channels = 6;
  o.family = 1;
  gen_ogg(&s, &o);
  expect_error(s.data, s.len, PLAY_FMT_AUTO, "6 channels");
  free(s.data);
  gen_default(&o);
  o.no_tags = 1;
  gen_ogg(&s, &o);
  expect_error(s.data, s.len, PLAY_FMT_AUTO, "OpusTags");
  free(s.data);
  gen_default(&o);
  o.frame_ms = 10;
  gen_ogg(&s, &o);
  expect_error(s.data, s.len, PLAY_FMT_AUTO, "lasts 10.0 ms");
  free(s.data);
  expect_error((const uint8_t *)"ID3\3junkjunkjunk", 16, PLAY_FMT_AUTO,
               "not an Ogg Opus or WAV");
  expect_error((const uint8_t *)"Og", 2, PLAY_FMT_AUTO,
               "not an Ogg Opus or WAV");
  expect_error((const uint8_t *)"", 0, PLAY_FMT_AUTO, "empty");
}

/* 60 ms packets of three 20 ms frames are split into three packets that
 * each decode to 960 samples. */
static void ogg_split_long_packets(void **state) {
  stream s;
  gen_opts o;
  play_reader *r;
  int n, i;
  (void)state;
  gen_default(&o);
  o.frame_ms = 60;
  o.npkt = 5;
  gen_ogg(&s, &o);
  r = play_reader_new(PLAY_FMT_OGG);
  assert_int_equal(read_all(r, s.data, s.len, 3, frames, 3 * MAXP, &n),
                   PLAY_END);
  assert_int_equal(n, 15);
  assert_int_equal(play_reader_get_info(r)->split_packets, 5);
  for (i = 0; i < n; i++) {
    assert_int_equal(opus_packet_get_nb_samples(
                         frames[i].data, (opus_int32)frames[i].len, 48000),
                     960);
  }
  play_reader_free(r);
  free(s.data);
}

static void ogg_last_granule(void **state) {
  stream s;
  gen_opts o;
  (void)state;
  gen_default(&o);
  o.npkt = 7;
  gen_ogg(&s, &o);
  assert_int_equal(play_ogg_last_granule(s.data, s.len), 312 + 7 * 960);
  /* A tail starting mid-page still finds the last whole page. */
  assert_int_equal(play_ogg_last_granule(s.data + 5, s.len - 5), 312 + 7 * 960);
  assert_int_equal(play_ogg_last_granule(s.data, 10), -1);
  free(s.data);
}

/* ------------------------------------------------------------------------ */
/* WAV and raw                                                              */
/* ------------------------------------------------------------------------ */

static size_t wav_header(uint8_t *h, uint16_t tag, uint16_t ch, uint32_t rate,
                         uint16_t bits, uint32_t data) {
  memcpy(h, "RIFF\0\0\0\0WAVEfmt \x10\0\0\0", 20);
  h[20] = (uint8_t)tag;
  h[21] = (uint8_t)(tag >> 8);
  h[22] = (uint8_t)ch;
  h[23] = 0;
  memcpy(h + 24, &rate, 4); /* the test host is little-endian */
  {
    uint32_t br = rate * ch * bits / 8;
    uint16_t ba = (uint16_t)(ch * bits / 8);
    memcpy(h + 28, &br, 4);
    memcpy(h + 32, &ba, 2);
  }
  memcpy(h + 34, &bits, 2);
  memcpy(h + 36, "data", 4);
  memcpy(h + 40, &data, 4);
  return 44;
}

static uint8_t pcmbuf[44 + 64 + 4 * 3840 + 16];

static void wav_stereo_odd_size(void **state) {
  /* Two full frames and 6 more bytes: one sample plus half a sample. */
  uint32_t data = 2 * 3840 + 6;
  size_t h = wav_header(pcmbuf, 1, 2, 48000, 16, data), i;
  play_reader *r;
  int n;
  (void)state;
  for (i = 0; i < data; i++) {
    pcmbuf[h + i] = (uint8_t)(i * 7 + 1);
  }
  /* A chunk after the data chunk is ignored. */
  memcpy(pcmbuf + h + data, "LIST\0\0\0\0", 8);
  r = play_reader_new(PLAY_FMT_AUTO);
  assert_int_equal(read_all(r, pcmbuf, h + data + 8, 1, frames, MAXP, &n),
                   PLAY_END);
  assert_int_equal(n, 3);
  assert_memory_equal(frames[0].data, pcmbuf + h, 3840);
  assert_memory_equal(frames[1].data, pcmbuf + h + 3840, 3840);
  assert_memory_equal(frames[2].data, pcmbuf + h + 7680, 4);
  assert_int_equal(frames[2].data[4], 0); /* padded with silence */
  assert_int_equal(play_reader_get_info(r)->padded_frames, 1);
  assert_int_equal(play_reader_get_info(r)->dropped_bytes, 2);
  assert_int_equal(play_reader_get_info(r)->total_frames, 3);
  play_reader_free(r);
}

static void wav_mono_and_chunks(void **state) {
  /* LIST before fmt, an odd-sized chunk with its pad byte, mono data of
   * unknown size (streaming writers). */
  uint8_t *p = pcmbuf;
  uint32_t i;
  play_reader *r;
  int n;
  (void)state;
  memcpy(p, "RIFF\0\0\0\0WAVE", 12);
  memcpy(p + 12, "LIST\x03\0\0\0abc\0", 12);
  memcpy(p + 24, "fmt \x10\0\0\0", 8);
  p[32] = 1, p[33] = 0, p[34] = 1, p[35] = 0;
  {
    uint32_t rate = 48000, br = 96000;
    uint16_t ba = 2, bits = 16;
    memcpy(p + 36, &rate, 4);
    memcpy(p + 40, &br, 4);
    memcpy(p + 44, &ba, 2);
    memcpy(p + 46, &bits, 2);
  }
  memcpy(p + 48, "data\xff\xff\xff\xff", 8);
  for (i = 0; i < 1920; i++) {
    p[56 + i] = (uint8_t)i;
  }
  r = play_reader_new(PLAY_FMT_WAV);
  assert_int_equal(read_all(r, p, 56 + 1920, 5, frames, MAXP, &n), PLAY_END);
  assert_int_equal(n, 1);
  assert_true(play_reader_get_info(r)->converted_mono);
  for (i = 0; i < 960; i++) {
    assert_int_equal(frames[0].data[4 * i], p[56 + 2 * i]);
    assert_int_equal(frames[0].data[4 * i + 2], p[56 + 2 * i]);
    assert_int_equal(frames[0].data[4 * i + 3], p[56 + 2 * i + 1]);
  }
  play_reader_free(r);
}

static void wav_wrong_formats(void **state) {
  size_t h;
  (void)state;
  h = wav_header(pcmbuf, 1, 2, 44100, 16, 3840);
  expect_error(pcmbuf, h + 3840, PLAY_FMT_AUTO, "44100 Hz");
  h = wav_header(pcmbuf, 1, 2, 48000, 8, 3840);
  expect_error(pcmbuf, h + 3840, PLAY_FMT_AUTO, "8-bit");
  h = wav_header(pcmbuf, 3, 2, 48000, 32, 3840);
  expect_error(pcmbuf, h + 3840, PLAY_FMT_AUTO, "not integer PCM");
  h = wav_header(pcmbuf, 1, 6, 48000, 16, 3840);
  expect_error(pcmbuf, h + 3840, PLAY_FMT_AUTO, "6 channel");
  /* data before fmt */
  memcpy(pcmbuf, "RIFF\0\0\0\0WAVEdata\4\0\0\0abcd", 24);
  expect_error(pcmbuf, 24, PLAY_FMT_AUTO, "before the fmt");
  /* no data chunk */
  h = wav_header(pcmbuf, 1, 2, 48000, 16, 0);
  expect_error(pcmbuf, 36, PLAY_FMT_AUTO, "no data chunk");
  /* a huge fmt chunk */
  memcpy(pcmbuf, "RIFF\0\0\0\0WAVEfmt \0\0\1\0", 20);
  expect_error(pcmbuf, 20, PLAY_FMT_AUTO, "too large");
  /* truncated inside fmt */
  h = wav_header(pcmbuf, 1, 2, 48000, 16, 0);
  expect_error(pcmbuf, 30, PLAY_FMT_WAV, "truncated");
  expect_error((const uint8_t *)"RIFF\0\0\0\0WAVX", 12, PLAY_FMT_WAV,
               "not a RIFF WAVE");
}

static void wav_truncated_everywhere(void **state) {
  size_t h = wav_header(pcmbuf, 1, 2, 48000, 16, 3840 + 8), cut;
  (void)state;
  memset(pcmbuf + h, 0x11, 3840 + 8);
  for (cut = 0; cut <= h + 3840 + 8; cut++) {
    play_reader *r = play_reader_new(PLAY_FMT_AUTO);
    int n, rv = read_all(r, pcmbuf, cut, 13, frames, MAXP, &n);
    if (cut < h) {
      assert_int_equal(rv, PLAY_ERROR);
    } else {
      /* Whatever data there is, in whole samples, rounded up to frames. */
      assert_int_equal(rv, PLAY_END);
      assert_int_equal(n, (int)(((cut - h) / 4 * 4 + 3839) / 3840));
    }
    play_reader_free(r);
  }
}

static void raw_odd_sizes(void **state) {
  play_reader *r;
  int n;
  size_t i;
  (void)state;
  for (i = 0; i < 2 * 3840 + 1; i++) {
    pcmbuf[i] = (uint8_t)(i ^ 0x5a);
  }
  r = play_reader_new(PLAY_FMT_RAW);
  /* Even a file that starts like Ogg is raw when told so. */
  memcpy(pcmbuf, "OggS", 4);
  assert_int_equal(read_all(r, pcmbuf, 2 * 3840 + 1, 1000, frames, MAXP, &n),
                   PLAY_END);
  assert_int_equal(n, 2);
  assert_memory_equal(frames[1].data, pcmbuf + 3840, 3840);
  assert_int_equal(play_reader_get_info(r)->dropped_bytes, 1);
  assert_int_equal(play_reader_get_info(r)->padded_frames, 0);
  play_reader_free(r);
  r = play_reader_new(PLAY_FMT_RAW);
  assert_int_equal(read_all(r, pcmbuf, 0, 1, frames, MAXP, &n), PLAY_END);
  assert_int_equal(n, 0);
  play_reader_free(r);
}

static void tone_dominant(void **state) {
  static int16_t pcm[2 * 96000];
  double share;
  int i, f;
  (void)state;
  for (f = 200; f <= 3000; f += 1400) {
    for (i = 0; i < 96000; i++) {
      pcm[2 * i] = pcm[2 * i + 1] =
          (int16_t)(10000 * sin(2 * M_PI * f * i / 48000.0));
    }
    assert_true(fabs(play_dominant_freq(pcm, 96000, 50, 8000, &share) - f) <=
                1.0);
    assert_true(share > 0.9);
  }
  memset(pcm, 0, sizeof(pcm));
  assert_true(play_dominant_freq(pcm, 96000, 50, 8000, &share) == 0);
  assert_true(play_dominant_freq(pcm, 100, 50, 8000, NULL) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ogg_basic),
      cmocka_unit_test(ogg_drip),
      cmocka_unit_test(ogg_continued),
      cmocka_unit_test(ogg_truncated_everywhere),
      cmocka_unit_test(ogg_corrupt_page),
      cmocka_unit_test(ogg_wrong_streams),
      cmocka_unit_test(ogg_split_long_packets),
      cmocka_unit_test(ogg_last_granule),
      cmocka_unit_test(wav_stereo_odd_size),
      cmocka_unit_test(wav_mono_and_chunks),
      cmocka_unit_test(wav_wrong_formats),
      cmocka_unit_test(wav_truncated_everywhere),
      cmocka_unit_test(raw_odd_sizes),
      cmocka_unit_test(tone_dominant),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
