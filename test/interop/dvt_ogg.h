/*
 * Test media made at test time: a 440 Hz stereo tone, Opus-encoded in 20 ms
 * frames and written as an Ogg Opus file (RFC 7845) with libogg, so peers
 * that play Ogg Opus files (discord.js's StreamType.OggOpus) can be fed
 * without committing any binary media. No cmocka: benchmarks use it too.
 */
#ifndef DVT_OGG_H
#define DVT_OGG_H

#include <stdint.h>

/*
 * Writes |frames| Opus frames of 20 ms (48 kHz, stereo, 64 kbit/s) to
 * |path|. Returns 0, or -1 (the encoder or the file failed; errno may say
 * why).
 */
int dvt_ogg_tone_write(const char *path, uint32_t frames);

#endif
