/*
 * libopus wrappers for Discord's format: 48 kHz, stereo, 20 ms frames
 * (960 samples per channel), interleaved PCM as int16 or float. The codec
 * states live in memory from the dvoice_mem allocator (opus_*_get_size and
 * opus_*_init), allocated once at creation; encoding and decoding allocate
 * nothing and never log.
 */
#ifndef DV_OPUS_H
#define DV_OPUS_H

#include <stddef.h>
#include <stdint.h>

#include <dvoice/dvoice.h>

#define DV_OPUS_RATE 48000
#define DV_OPUS_CHANNELS 2
#define DV_OPUS_FRAME_SAMPLES 960 /* per channel, 20 ms */
/* Interleaved samples in one frame (both channels). */
#define DV_OPUS_FRAME_VALUES (DV_OPUS_FRAME_SAMPLES * DV_OPUS_CHANNELS)
/* Largest Opus packet (RFC 6716 3.4: 1275 bytes per frame). */
#define DV_OPUS_MAX_PACKET 1275
/* Largest frame a decoder can return: 120 ms per channel. */
#define DV_OPUS_MAX_DECODE_SAMPLES 5760

/* The 20 ms Opus silence frame Discord expects at the end of a stream. */
#define DV_OPUS_SILENCE_LEN 3
extern const uint8_t dv_opus_silence[DV_OPUS_SILENCE_LEN];

typedef struct dv_opus_enc_settings {
  int32_t bitrate;  /* bits per second, 500..512000; default 64000 */
  int loss_percent; /* expected loss for in-band FEC, 0..100; default 5 */
  int complexity;   /* 0..10; default 10 */
} dv_opus_enc_settings;

/* Fills |s| with the defaults above. */
void dv_opus_enc_settings_default(dv_opus_enc_settings *s);

typedef struct dv_opus_enc dv_opus_enc;
typedef struct dv_opus_dec dv_opus_dec;

/*
 * Creates an encoder: application AUDIO, in-band FEC on, |s| (NULL for the
 * defaults; copied). |mem| is borrowed for the encoder's lifetime.
 * Returns 0, DVOICE_ERR_INVALID_ARGUMENT (a setting out of range),
 * DVOICE_ERR_NOMEM or DVOICE_ERR_INTERNAL (libopus refused).
 */
int dv_opus_enc_new(const dvoice_mem *mem, const dv_opus_enc_settings *s,
                    dv_opus_enc **out);
void dv_opus_enc_free(dv_opus_enc *enc);
/* Changes the bitrate. 0 or DVOICE_ERR_INVALID_ARGUMENT. */
int dv_opus_enc_set_bitrate(dv_opus_enc *enc, int32_t bitrate);

/*
 * Encodes one 20 ms frame of interleaved stereo PCM (DV_OPUS_FRAME_VALUES
 * values) into |out|. Returns the packet length (> 0), or
 * DVOICE_ERR_NOBUF (|cap| too small for this packet) or
 * DVOICE_ERR_INTERNAL.
 */
int dv_opus_encode_s16(dv_opus_enc *enc, const int16_t *pcm, uint8_t *out,
                       size_t cap);
int dv_opus_encode_float(dv_opus_enc *enc, const float *pcm, uint8_t *out,
                         size_t cap);

/* Creates a 48 kHz stereo decoder. 0, DVOICE_ERR_NOMEM or
 * DVOICE_ERR_INTERNAL. */
int dv_opus_dec_new(const dvoice_mem *mem, dv_opus_dec **out);
void dv_opus_dec_free(dv_opus_dec *dec);

/*
 * Decodes |data| (|len| bytes) into interleaved stereo |pcm| with room for
 * |max_samples| samples per channel. |data| NULL conceals one lost frame of
 * |max_samples| (packet loss concealment). |fec| nonzero decodes the FEC
 * copy of the previous frame carried in |data|. Returns the samples per
 * channel written, or DVOICE_ERR_MALFORMED (corrupt packet),
 * DVOICE_ERR_NOBUF (|max_samples| too small) or DVOICE_ERR_INVALID_ARGUMENT.
 */
int dv_opus_decode_s16(dv_opus_dec *dec, const uint8_t *data, size_t len,
                       int16_t *pcm, size_t max_samples, int fec);
int dv_opus_decode_float(dv_opus_dec *dec, const uint8_t *data, size_t len,
                         float *pcm, size_t max_samples, int fec);

#endif
