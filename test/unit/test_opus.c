/* Unit tests for lib/audio/dv_opus: the encoder and decoder wrappers. */
#include "dvt.h"

#include <math.h>

#include "audio/dv_opus.h"

/* One 20 ms frame of a 440 Hz stereo sine (left) and 660 Hz (right). */
static void sine_s16(int16_t *pcm, int frame) {
  for (int i = 0; i < DV_OPUS_FRAME_SAMPLES; i++) {
    double t = (double)(frame * DV_OPUS_FRAME_SAMPLES + i) / DV_OPUS_RATE;
    pcm[2 * i] = (int16_t)(12000 * sin(2 * M_PI * 440 * t));
    pcm[2 * i + 1] = (int16_t)(12000 * sin(2 * M_PI * 660 * t));
  }
}

static double rms_s16(const int16_t *pcm, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    s += (double)pcm[i] * pcm[i];
  }
  return sqrt(s / (double)n);
}

static void test_encode_decode_s16(void **state) {
  dv_opus_enc *enc;
  dv_opus_dec *dec;
  int16_t in[DV_OPUS_FRAME_VALUES];
  int16_t out[DV_OPUS_MAX_DECODE_SAMPLES * 2];
  uint8_t pkt[DV_OPUS_MAX_PACKET];
  double in_rms = 0, out_rms = 0;
  (void)state;
  assert_int_equal(dv_opus_enc_new(NULL, NULL, &enc), 0);
  assert_int_equal(dv_opus_dec_new(NULL, &dec), 0);
  for (int f = 0; f < 50; f++) {
    int n;
    sine_s16(in, f);
    n = dv_opus_encode_s16(enc, in, pkt, sizeof(pkt));
    assert_true(n > 3 && n <= DV_OPUS_MAX_PACKET);
    /* 64 kb/s at 50 packets/s: about 160 bytes, well under 400. */
    assert_true(n < 400);
    assert_int_equal(dv_opus_decode_s16(dec, pkt, (size_t)n, out,
                                        DV_OPUS_MAX_DECODE_SAMPLES, 0),
                     DV_OPUS_FRAME_SAMPLES);
    if (f >= 10) {
      in_rms += rms_s16(in, DV_OPUS_FRAME_VALUES);
      out_rms += rms_s16(out, DV_OPUS_FRAME_VALUES);
    }
  }
  /* The decoded signal carries the input's energy (within 20 %). */
  assert_true(out_rms > in_rms * 0.8 && out_rms < in_rms * 1.2);
  /* Loss concealment and the silence frame decode to 20 ms. */
  assert_int_equal(
      dv_opus_decode_s16(dec, NULL, 0, out, DV_OPUS_FRAME_SAMPLES, 0),
      DV_OPUS_FRAME_SAMPLES);
  /* After the overlap of the previous frame has decayed, silence. */
  for (int i = 0; i < 3; i++) {
    assert_int_equal(dv_opus_decode_s16(dec, dv_opus_silence,
                                        DV_OPUS_SILENCE_LEN, out,
                                        DV_OPUS_MAX_DECODE_SAMPLES, 0),
                     DV_OPUS_FRAME_SAMPLES);
  }
  assert_true(rms_s16(out, DV_OPUS_FRAME_VALUES) < 50);
  dv_opus_enc_free(enc);
  dv_opus_dec_free(dec);
}

static void test_encode_float_and_fec(void **state) {
  dv_opus_enc *enc;
  dv_opus_dec *dec;
  float in[DV_OPUS_FRAME_VALUES];
  float out[DV_OPUS_MAX_DECODE_SAMPLES * 2];
  uint8_t pkt[DV_OPUS_MAX_PACKET];
  dv_opus_enc_settings s;
  int n = 0;
  (void)state;
  dv_opus_enc_settings_default(&s);
  s.bitrate = 32000;
  s.loss_percent = 20;
  assert_int_equal(dv_opus_enc_new(NULL, &s, &enc), 0);
  assert_int_equal(dv_opus_dec_new(NULL, &dec), 0);
  for (int f = 0; f < 20; f++) {
    for (int i = 0; i < DV_OPUS_FRAME_VALUES; i++) {
      in[i] = 0.3f * (float)sin(0.05 * (f * DV_OPUS_FRAME_VALUES + i));
    }
    n = dv_opus_encode_float(enc, in, pkt, sizeof(pkt));
    assert_true(n > 0);
  }
  /* Decoding the FEC copy of the previous frame from this packet. */
  assert_int_equal(
      dv_opus_decode_float(dec, pkt, (size_t)n, out, DV_OPUS_FRAME_SAMPLES, 1),
      DV_OPUS_FRAME_SAMPLES);
  assert_int_equal(dv_opus_enc_set_bitrate(enc, 128000), 0);
  assert_int_equal(dv_opus_enc_set_bitrate(enc, 100),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_opus_enc_free(enc);
  dv_opus_dec_free(dec);
}

static void test_errors(void **state) {
  dv_opus_enc *enc;
  dv_opus_dec *dec;
  dv_opus_enc_settings s;
  int16_t pcm[DV_OPUS_MAX_DECODE_SAMPLES * 2];
  /* Code 3 (TOC config 0, stereo=0, c=3) with a frame count of 0. */
  static const uint8_t bad[] = {0x03, 0x00};
  uint8_t pkt[DV_OPUS_MAX_PACKET];
  int n;
  (void)state;
  dv_opus_enc_settings_default(&s);
  s.bitrate = 100;
  assert_int_equal(dv_opus_enc_new(NULL, &s, &enc),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(enc);
  dv_opus_enc_settings_default(&s);
  s.complexity = 11;
  assert_int_equal(dv_opus_enc_new(NULL, &s, &enc),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_opus_dec_new(NULL, &dec), 0);
  assert_int_equal(dv_opus_decode_s16(dec, bad, sizeof(bad), pcm,
                                      DV_OPUS_MAX_DECODE_SAMPLES, 0),
                   DVOICE_ERR_MALFORMED);
  assert_int_equal(dv_opus_decode_s16(dec, bad, 0, pcm, 960, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dv_opus_decode_s16(dec, bad, 1, pcm, 0, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* A 20 ms frame does not fit in 10 ms of output. */
  assert_int_equal(dv_opus_enc_new(NULL, NULL, &enc), 0);
  memset(pcm, 0, sizeof(pcm));
  pcm[0] = 1000;
  n = dv_opus_encode_s16(enc, pcm, pkt, sizeof(pkt));
  assert_true(n > 0);
  assert_int_equal(dv_opus_decode_s16(dec, pkt, (size_t)n, pcm, 480, 0),
                   DVOICE_ERR_NOBUF);
  assert_int_equal(dv_opus_encode_s16(enc, pcm, pkt, 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  dv_opus_enc_free(enc);
  dv_opus_dec_free(dec);
}

static int make_both(const dvoice_mem *mem, void *ud) {
  dv_opus_enc *enc = NULL;
  dv_opus_dec *dec = NULL;
  int rv;
  (void)ud;
  rv = dv_opus_enc_new(mem, NULL, &enc);
  if (rv == 0) {
    rv = dv_opus_dec_new(mem, &dec);
  }
  dv_opus_enc_free(enc);
  dv_opus_dec_free(dec);
  return rv;
}

static void test_nomem(void **state) {
  (void)state;
  /* Two allocations each: wrapper and codec state. */
  assert_int_equal(dvt_mem_fail_each(make_both, NULL), 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_decode_s16),
      cmocka_unit_test(test_encode_float_and_fec),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_nomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
