#include "audio/dv_opus.h"

#include <opus.h>

#include "util/dv_mem.h"

const uint8_t dv_opus_silence[DV_OPUS_SILENCE_LEN] = {0xf8, 0xff, 0xfe};

struct dv_opus_enc {
  const dvoice_mem *mem;
  OpusEncoder *st; /* opus_encoder_get_size() bytes from |mem| */
};

struct dv_opus_dec {
  const dvoice_mem *mem;
  OpusDecoder *st;
};

void dv_opus_enc_settings_default(dv_opus_enc_settings *s) {
  s->bitrate = 64000;
  s->loss_percent = 5;
  s->complexity = 10;
}

static int map_opus_err(int err) {
  switch (err) {
    case OPUS_BUFFER_TOO_SMALL:
      return DVOICE_ERR_NOBUF;
    case OPUS_INVALID_PACKET:
      return DVOICE_ERR_MALFORMED;
    case OPUS_BAD_ARG:
      return DVOICE_ERR_INVALID_ARGUMENT;
    case OPUS_ALLOC_FAIL:
      return DVOICE_ERR_NOMEM;
    default:
      return DVOICE_ERR_INTERNAL;
  }
}

int dv_opus_enc_new(const dvoice_mem *mem, const dv_opus_enc_settings *s,
                    dv_opus_enc **out) {
  dv_opus_enc_settings def;
  dv_opus_enc *e;
  int rv;
  *out = NULL;
  if (s == NULL) {
    dv_opus_enc_settings_default(&def);
    s = &def;
  }
  if (s->bitrate < 500 || s->bitrate > 512000 || s->loss_percent < 0 ||
      s->loss_percent > 100 || s->complexity < 0 || s->complexity > 10) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  e = dv_calloc(mem, 1, sizeof(*e));
  if (e == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  e->mem = mem;
  e->st = dv_malloc(mem, (size_t)opus_encoder_get_size(DV_OPUS_CHANNELS));
  if (e->st == NULL) {
    dv_free(mem, e);
    return DVOICE_ERR_NOMEM;
  }
  rv = opus_encoder_init(e->st, DV_OPUS_RATE, DV_OPUS_CHANNELS,
                         OPUS_APPLICATION_AUDIO);
  if (rv == OPUS_OK) {
    rv = opus_encoder_ctl(e->st, OPUS_SET_BITRATE(s->bitrate));
  }
  if (rv == OPUS_OK) {
    rv = opus_encoder_ctl(e->st, OPUS_SET_INBAND_FEC(1));
  }
  if (rv == OPUS_OK) {
    rv = opus_encoder_ctl(e->st, OPUS_SET_PACKET_LOSS_PERC(s->loss_percent));
  }
  if (rv == OPUS_OK) {
    rv = opus_encoder_ctl(e->st, OPUS_SET_COMPLEXITY(s->complexity));
  }
  if (rv != OPUS_OK) {
    dv_opus_enc_free(e);
    return DVOICE_ERR_INTERNAL;
  }
  *out = e;
  return 0;
}

void dv_opus_enc_free(dv_opus_enc *enc) {
  if (enc != NULL) {
    const dvoice_mem *mem = enc->mem;
    dv_free(mem, enc->st);
    dv_free(mem, enc);
  }
}

int dv_opus_enc_set_bitrate(dv_opus_enc *enc, int32_t bitrate) {
  if (bitrate < 500 || bitrate > 512000) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return opus_encoder_ctl(enc->st, OPUS_SET_BITRATE(bitrate)) == OPUS_OK
             ? 0
             : DVOICE_ERR_INVALID_ARGUMENT;
}

/* libopus takes an int32 capacity; larger buffers are simply capped. */
static opus_int32 cap32(size_t cap) {
  return cap > 0x7fffffff ? 0x7fffffff : (opus_int32)cap;
}

int dv_opus_encode_s16(dv_opus_enc *enc, const int16_t *pcm, uint8_t *out,
                       size_t cap) {
  opus_int32 n =
      opus_encode(enc->st, pcm, DV_OPUS_FRAME_SAMPLES, out, cap32(cap));
  return n < 0 ? map_opus_err(n) : n;
}

int dv_opus_encode_float(dv_opus_enc *enc, const float *pcm, uint8_t *out,
                         size_t cap) {
  opus_int32 n =
      opus_encode_float(enc->st, pcm, DV_OPUS_FRAME_SAMPLES, out, cap32(cap));
  return n < 0 ? map_opus_err(n) : n;
}

int dv_opus_dec_new(const dvoice_mem *mem, dv_opus_dec **out) {
  dv_opus_dec *d;
  *out = NULL;
  d = dv_calloc(mem, 1, sizeof(*d));
  if (d == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  d->mem = mem;
  d->st = dv_malloc(mem, (size_t)opus_decoder_get_size(DV_OPUS_CHANNELS));
  if (d->st == NULL) {
    dv_free(mem, d);
    return DVOICE_ERR_NOMEM;
  }
  if (opus_decoder_init(d->st, DV_OPUS_RATE, DV_OPUS_CHANNELS) != OPUS_OK) {
    dv_opus_dec_free(d);
    return DVOICE_ERR_INTERNAL;
  }
  *out = d;
  return 0;
}

void dv_opus_dec_free(dv_opus_dec *dec) {
  if (dec != NULL) {
    const dvoice_mem *mem = dec->mem;
    dv_free(mem, dec->st);
    dv_free(mem, dec);
  }
}

static int check_decode_args(const uint8_t *data, size_t len,
                             size_t max_samples) {
  if (max_samples == 0 || max_samples > DV_OPUS_MAX_DECODE_SAMPLES ||
      len > 0x7fffffff || (data != NULL && len == 0)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

int dv_opus_decode_s16(dv_opus_dec *dec, const uint8_t *data, size_t len,
                       int16_t *pcm, size_t max_samples, int fec) {
  int n = check_decode_args(data, len, max_samples);
  if (n < 0) {
    return n;
  }
  n = opus_decode(dec->st, data, data ? (opus_int32)len : 0, pcm,
                  (int)max_samples, fec ? 1 : 0);
  return n < 0 ? map_opus_err(n) : n;
}

int dv_opus_decode_float(dv_opus_dec *dec, const uint8_t *data, size_t len,
                         float *pcm, size_t max_samples, int fec) {
  int n = check_decode_args(data, len, max_samples);
  if (n < 0) {
    return n;
  }
  n = opus_decode_float(dec->st, data, data ? (opus_int32)len : 0, pcm,
                        (int)max_samples, fec ? 1 : 0);
  return n < 0 ? map_opus_err(n) : n;
}
