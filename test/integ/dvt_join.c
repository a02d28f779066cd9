#include "dvt_join.h"

#include "dvt.h"

void dvt_append(char *buf, size_t cap, const char *s) {
  size_t n = strlen(buf);
  snprintf(buf + n, cap - n, "%s%s", n > 0 ? " " : "", s);
}

void dvt_encode_tone(uint8_t (*frames)[DV_OPUS_MAX_PACKET], size_t *lens,
                     int n) {
  dv_opus_enc *enc;
  int16_t pcm[DV_OPUS_FRAME_VALUES];
  size_t k = 0;
  assert_int_equal(dv_opus_enc_new(NULL, NULL, &enc), 0);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < DV_OPUS_FRAME_SAMPLES; j++, k++) {
      double ph = (double)(k % 48000) * 440.0 / 48000.0;
      double x = ph - (double)(long)ph;
      double tri = x < 0.5 ? 4.0 * x - 1.0 : 3.0 - 4.0 * x;
      pcm[2 * j] = pcm[2 * j + 1] = (int16_t)(tri * 8000.0);
    }
    int len = dv_opus_encode_s16(enc, pcm, frames[i], DV_OPUS_MAX_PACKET);
    assert_true(len > 0);
    lens[i] = (size_t)len;
  }
  dv_opus_enc_free(enc);
}

long long dvt_json_sum_key(const json_t *j, const char *key) {
  long long n = 0;
  const char *k;
  json_t *v;
  size_t i;
  if (json_is_object(j)) {
    json_object_foreach((json_t *)j, k, v) {
      if (strcmp(k, key) == 0 && json_is_integer(v)) {
        n += json_integer_value(v);
      } else {
        n += dvt_json_sum_key(v, key);
      }
    }
  } else if (json_is_array(j)) {
    json_array_foreach(j, i, v) {
      n += dvt_json_sum_key(v, key);
    }
  }
  return n;
}
