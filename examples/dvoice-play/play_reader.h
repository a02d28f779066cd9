/*
 * dvoice-play's input readers: Ogg Opus (packets passed through untouched),
 * WAV (PCM s16le 48 kHz, mono or stereo) and raw s16le 48 kHz stereo.
 *
 * The readers parse untrusted bytes. They are push parsers: the caller
 * feeds whatever bytes it has (a file read, a pipe read, one byte at a
 * time), marks the end of input, and pulls 20 ms frames out. Nothing here
 * does I/O, so the same code serves files, stdin, the unit tests and the
 * fuzz targets.
 */
#ifndef PLAY_READER_H
#define PLAY_READER_H

#include <stddef.h>
#include <stdint.h>

/* 20 ms at 48 kHz: 960 samples per channel. */
#define PLAY_FRAME_SAMPLES 960
/* One 20 ms stereo s16 frame. */
#define PLAY_PCM_FRAME_BYTES (PLAY_FRAME_SAMPLES * 2 * 2)
/* The largest Opus packet RFC 6716 allows. */
#define PLAY_OPUS_MAX 1275

typedef enum play_format {
  PLAY_FMT_AUTO = 0, /* Ogg or WAV, chosen from the first bytes */
  PLAY_FMT_OGG = 1,
  PLAY_FMT_WAV = 2,
  PLAY_FMT_RAW = 3
} play_format;

const char *play_format_name(play_format f);

typedef enum play_kind {
  PLAY_KIND_OPUS = 1, /* data/len: one 20 ms Opus packet */
  PLAY_KIND_PCM = 2   /* data: PLAY_PCM_FRAME_BYTES of s16le stereo */
} play_kind;

typedef struct play_frame {
  play_kind kind;
  size_t len;
  uint8_t data[PLAY_PCM_FRAME_BYTES];
} play_frame;

/* Results of play_reader_next(). */
#define PLAY_NEED_MORE 0 /* feed more bytes (or call play_reader_eof) */
#define PLAY_FRAME 1     /* *out holds a frame */
#define PLAY_END 2       /* the input ended cleanly; no more frames */
#define PLAY_ERROR (-1)  /* see play_reader_error(); terminal */

typedef struct play_reader play_reader;

/* Counters describing what the reader saw (for the summary and tests). */
typedef struct play_reader_info {
  play_format format;
  uint64_t frames;       /* frames handed out */
  uint64_t total_frames; /* known total (WAV data size), else 0 */
  uint64_t bytes_in;     /* bytes fed */
  /* Ogg */
  int channels;           /* OpusHead or WAV channel count */
  uint32_t input_rate;    /* OpusHead input sample rate (informational) */
  uint16_t pre_skip;      /* OpusHead pre-skip, samples at 48 kHz */
  int64_t last_granule;   /* last page granule position, -1 if none */
  uint64_t split_packets; /* 40/60/.. ms packets split into 20 ms frames */
  uint64_t holes;         /* gaps in the page sequence (lost data) */
  uint64_t skipped_bytes; /* bytes skipped to regain page sync */
  uint64_t other_streams; /* pages of other logical streams, ignored */
  uint64_t chained;       /* further chained Opus streams followed */
  /* PCM */
  uint64_t padded_frames; /* a final partial frame padded with silence */
  uint64_t dropped_bytes; /* trailing bytes that do not make a sample */
  int converted_mono;     /* mono WAV duplicated to stereo */
} play_reader_info;

/* Returns a new reader for |fmt|, or NULL when out of memory. */
play_reader *play_reader_new(play_format fmt);
void play_reader_free(play_reader *r);

/* Feeds |n| bytes (copied). Returns 0, or PLAY_ERROR (already failed, or
 * fed after play_reader_eof). */
int play_reader_feed(play_reader *r, const uint8_t *p, size_t n);
/* Marks the end of input. */
void play_reader_eof(play_reader *r);
/* Pulls the next frame: PLAY_FRAME, PLAY_NEED_MORE, PLAY_END, PLAY_ERROR. */
int play_reader_next(play_reader *r, play_frame *out);
/* A one-line explanation of the failure ("" before any). */
const char *play_reader_error(const play_reader *r);
const play_reader_info *play_reader_get_info(const play_reader *r);

/*
 * Scans the tail of an Ogg file (the last up to 64 KiB) for the last page
 * header with a valid checksum and returns its granule position, or -1.
 * Used for the total duration of a file before playing it.
 */
int64_t play_ogg_last_granule(const uint8_t *tail, size_t len);

#endif
