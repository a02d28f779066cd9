/*
 * dvoice-play's input readers. See play_reader.h.
 */
#include "play_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>
#include <opus/opus.h>

/* A WAV fmt chunk larger than this is not a format we could accept. */
#define WAV_FMT_MAX 64
/* Frames one Ogg packet may hold (120 ms of 20 ms frames). */
#define SPLIT_MAX 6

typedef enum wav_state {
  WAV_RIFF = 0, /* waiting for "RIFF" size "WAVE" */
  WAV_CHUNK,    /* waiting for a chunk header */
  WAV_FMT,      /* reading the fmt chunk body */
  WAV_SKIP,     /* skipping an unknown chunk */
  WAV_DATA,     /* PCM samples */
  WAV_DONE      /* the data chunk ended */
} wav_state;

typedef enum ogg_phase {
  OGG_HEAD = 0, /* the next packet must be OpusHead */
  OGG_TAGS,     /* the next packet must be OpusTags */
  OGG_AUDIO,    /* audio packets */
  OGG_ENDED     /* EOS seen; a new BOS may chain another stream */
} ogg_phase;

struct play_reader {
  play_format fmt;
  play_reader_info info;
  int eof;
  int failed;
  char err[200];
  /* Auto-detection: the first bytes, until the format is known. */
  uint8_t sniff[12];
  size_t nsniff;
  /* Ogg. */
  ogg_sync_state oy;
  ogg_stream_state os;
  int os_init;
  long serial;
  ogg_phase phase;
  uint8_t split[SPLIT_MAX][PLAY_OPUS_MAX];
  size_t split_len[SPLIT_MAX];
  int nsplit, split_pos;
  OpusRepacketizer *rp;
  /* WAV and raw: pending input bytes (a copy of what was fed). */
  uint8_t *buf;
  size_t len, cap, off;
  wav_state wst;
  uint64_t chunk_left; /* bytes left in the current chunk */
  int data_unbounded;  /* data size 0 or 0xFFFFFFFF: read to the end */
  int have_fmt;
  int channels;
  uint8_t pad_pending;
};

const char *play_format_name(play_format f) {
  switch (f) {
    case PLAY_FMT_AUTO:
      return "auto";
    case PLAY_FMT_OGG:
      return "Ogg Opus";
    case PLAY_FMT_WAV:
      return "WAV";
    case PLAY_FMT_RAW:
      return "raw s16le 48 kHz stereo";
  }
  return "unknown";
}

static int fail(play_reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(play_reader *r, const char *fmt, ...) {
  va_list ap;
  if (!r->failed) {
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->failed = 1;
  }
  return PLAY_ERROR;
}

static uint16_t le16(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

play_reader *play_reader_new(play_format fmt) {
  play_reader *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    return NULL;
  }
  r->fmt = fmt;
  r->info.format = fmt;
  r->info.last_granule = -1;
  ogg_sync_init(&r->oy);
  return r;
}

void play_reader_free(play_reader *r) {
  if (r == NULL) {
    return;
  }
  ogg_sync_clear(&r->oy);
  if (r->os_init) {
    ogg_stream_clear(&r->os);
  }
  if (r->rp != NULL) {
    opus_repacketizer_destroy(r->rp);
  }
  free(r->buf);
  free(r);
}

const char *play_reader_error(const play_reader *r) {
  return r->err;
}

const play_reader_info *play_reader_get_info(const play_reader *r) {
  return &r->info;
}

/* ------------------------------------------------------------------------ */
/* Byte buffer for WAV and raw                                              */
/* ------------------------------------------------------------------------ */

static int buf_append(play_reader *r, const uint8_t *p, size_t n) {
  if (r->off > 0 && r->off == r->len) {
    r->off = r->len = 0;
  }
  if (r->len + n > r->cap) {
    size_t cap;
    uint8_t *nb;
    /* Compact first: consumed bytes are never needed again. */
    if (r->off > 0) {
      memmove(r->buf, r->buf + r->off, r->len - r->off);
      r->len -= r->off;
      r->off = 0;
    }
    if (r->len + n > r->cap) {
      cap = r->cap ? r->cap : 8192;
      while (cap < r->len + n) {
        cap *= 2;
      }
      nb = realloc(r->buf, cap);
      if (nb == NULL) {
        return fail(r, "out of memory");
      }
      r->buf = nb;
      r->cap = cap;
    }
  }
  memcpy(r->buf + r->len, p, n);
  r->len += n;
  return 0;
}

static size_t buf_avail(const play_reader *r) {
  return r->len - r->off;
}

/* ------------------------------------------------------------------------ */
/* Feeding                                                                  */
/* ------------------------------------------------------------------------ */

/* Nonzero if the first |n| sniffed bytes could still begin |magic|. */
static int could_be(const play_reader *r, const char *magic) {
  size_t n = r->nsniff < 4 ? r->nsniff : 4;
  return memcmp(r->sniff, magic, n) == 0;
}

static int detect(play_reader *r) {
  if (r->nsniff >= 4 && memcmp(r->sniff, "OggS", 4) == 0) {
    r->fmt = PLAY_FMT_OGG;
  } else if (r->nsniff >= 12 && memcmp(r->sniff, "RIFF", 4) == 0 &&
             memcmp(r->sniff + 8, "WAVE", 4) == 0) {
    r->fmt = PLAY_FMT_WAV;
  } else if (r->nsniff < 12 && !r->eof &&
             (could_be(r, "OggS") || could_be(r, "RIFF"))) {
    return 0; /* undecided */
  } else {
    return fail(r, "not an Ogg Opus or WAV file (use --raw for raw "
                   "s16le 48 kHz stereo PCM)");
  }
  r->info.format = r->fmt;
  return 1;
}

static int feed_format(play_reader *r, const uint8_t *p, size_t n) {
  if (r->fmt == PLAY_FMT_OGG) {
    char *dst;
    if (n == 0) {
      return 0;
    }
    dst = ogg_sync_buffer(&r->oy, (long)n);
    if (dst == NULL) {
      return fail(r, "out of memory");
    }
    memcpy(dst, p, n);
    ogg_sync_wrote(&r->oy, (long)n);
    return 0;
  }
  return buf_append(r, p, n);
}

int play_reader_feed(play_reader *r, const uint8_t *p, size_t n) {
  if (r->failed) {
    return PLAY_ERROR;
  }
  if (r->eof) {
    return fail(r, "input fed after its end");
  }
  r->info.bytes_in += n;
  if (r->fmt == PLAY_FMT_AUTO) {
    size_t take = sizeof(r->sniff) - r->nsniff;
    int rv;
    if (take > n) {
      take = n;
    }
    memcpy(r->sniff + r->nsniff, p, take);
    r->nsniff += take;
    p += take;
    n -= take;
    rv = detect(r);
    if (rv <= 0) {
      return rv;
    }
    if (feed_format(r, r->sniff, r->nsniff) != 0) {
      return PLAY_ERROR;
    }
  }
  return feed_format(r, p, n);
}

void play_reader_eof(play_reader *r) {
  r->eof = 1;
  if (r->fmt == PLAY_FMT_AUTO && !r->failed) {
    if (r->nsniff == 0) {
      fail(r, "the input is empty");
    } else if (detect(r) > 0) {
      feed_format(r, r->sniff, r->nsniff);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Ogg Opus                                                                 */
/* ------------------------------------------------------------------------ */

static int opus_head(play_reader *r, const ogg_packet *op) {
  const uint8_t *p = op->packet;
  if (op->bytes < 19 || memcmp(p, "OpusHead", 8) != 0) {
    return fail(r, "the Ogg stream is not Opus (no OpusHead packet)");
  }
  /* RFC 7845: the major version is the upper four bits; 0 is ours. */
  if ((p[8] & 0xF0) != 0) {
    return fail(r, "unsupported OpusHead version %u", p[8]);
  }
  r->info.channels = p[9];
  r->info.pre_skip = le16(p + 10);
  r->info.input_rate = le32(p + 12);
  if (p[9] == 0) {
    return fail(r, "OpusHead declares 0 channels");
  }
  if (p[18] != 0 || p[9] > 2) {
    return fail(r,
                "the Opus stream has %u channels (mapping family %u); "
                "Discord takes mono or stereo Opus (family 0)",
                p[9], p[18]);
  }
  r->phase = OGG_TAGS;
  return 0;
}

/* Splits a packet of several 20 ms frames into 20 ms packets. */
static int split_packet(play_reader *r, const uint8_t *p, size_t len,
                        int samples) {
  int n, i;
  if (r->rp == NULL && (r->rp = opus_repacketizer_create()) == NULL) {
    return fail(r, "out of memory");
  }
  opus_repacketizer_init(r->rp);
  if (opus_repacketizer_cat(r->rp, p, (opus_int32)len) != OPUS_OK) {
    return fail(r, "Opus packet %llu is corrupt",
                (unsigned long long)r->info.frames + 1);
  }
  n = opus_repacketizer_get_nb_frames(r->rp);
  if (n < 1 || n > SPLIT_MAX || n * PLAY_FRAME_SAMPLES != samples) {
    return fail(r,
                "Opus packet %llu lasts %.1f ms in %d frame(s); dvoice-play "
                "sends 20 ms frames (re-encode with 20 ms frames, e.g. "
                "opusenc --framesize 20)",
                (unsigned long long)r->info.frames + 1, samples / 48.0, n);
  }
  for (i = 0; i < n; i++) {
    opus_int32 out = opus_repacketizer_out_range(r->rp, i, i + 1, r->split[i],
                                                 PLAY_OPUS_MAX);
    if (out <= 0) {
      return fail(r, "Opus packet %llu could not be split",
                  (unsigned long long)r->info.frames + 1);
    }
    r->split_len[i] = (size_t)out;
  }
  r->nsplit = n;
  r->split_pos = 0;
  r->info.split_packets++;
  return 0;
}

/* Handles one audio packet: 1 with a frame in |out|, 0 if split into the
 * split queue, PLAY_ERROR on a bad packet. */
static int opus_audio(play_reader *r, const ogg_packet *op, play_frame *out) {
  int samples;
  size_t len = (size_t)op->bytes;
  if (len == 0) {
    return fail(r, "Opus packet %llu is empty",
                (unsigned long long)r->info.frames + 1);
  }
  samples = opus_packet_get_nb_samples(op->packet, (opus_int32)len, 48000);
  if (samples <= 0) {
    return fail(r, "Opus packet %llu is corrupt (bad TOC)",
                (unsigned long long)r->info.frames + 1);
  }
  if (samples == PLAY_FRAME_SAMPLES) {
    if (len > PLAY_OPUS_MAX) {
      return fail(r, "Opus packet %llu is %zu bytes (over 1275)",
                  (unsigned long long)r->info.frames + 1, len);
    }
    out->kind = PLAY_KIND_OPUS;
    out->len = len;
    memcpy(out->data, op->packet, len);
    return 1;
  }
  if (samples < PLAY_FRAME_SAMPLES || samples % PLAY_FRAME_SAMPLES != 0 ||
      len > PLAY_OPUS_MAX * SPLIT_MAX) {
    return fail(r,
                "Opus packet %llu lasts %.1f ms; dvoice-play sends 20 ms "
                "frames (re-encode with 20 ms frames, e.g. opusenc "
                "--framesize 20)",
                (unsigned long long)r->info.frames + 1, samples / 48.0);
  }
  if (split_packet(r, op->packet, len, samples) != 0) {
    return PLAY_ERROR;
  }
  return 0;
}

static int take_page(play_reader *r, ogg_page *og) {
  long serial = ogg_page_serialno(og);
  if (r->os_init && serial == r->serial && r->phase != OGG_ENDED) {
    if (ogg_stream_pagein(&r->os, og) != 0) {
      return fail(r, "Ogg page rejected (bad version or serial)");
    }
    if (ogg_page_granulepos(og) >= 0) {
      r->info.last_granule = ogg_page_granulepos(og);
    }
    return 0;
  }
  if (ogg_page_bos(og) && (!r->os_init || r->phase == OGG_ENDED)) {
    /* The first stream, or a chained one after the previous ended. */
    if (r->os_init) {
      ogg_stream_clear(&r->os);
      r->info.chained++;
    }
    if (ogg_stream_init(&r->os, (int)serial) != 0) {
      return fail(r, "out of memory");
    }
    r->os_init = 1;
    r->serial = serial;
    r->phase = OGG_HEAD;
    if (ogg_stream_pagein(&r->os, og) != 0) {
      return fail(r, "Ogg page rejected");
    }
    return 0;
  }
  if (!r->os_init) {
    return fail(r, "the Ogg stream does not start with a BOS page");
  }
  r->info.other_streams++;
  return 0;
}

static int next_ogg(play_reader *r, play_frame *out) {
  for (;;) {
    ogg_packet op;
    ogg_page og;
    int rv;
    if (r->split_pos < r->nsplit) {
      int i = r->split_pos++;
      out->kind = PLAY_KIND_OPUS;
      out->len = r->split_len[i];
      memcpy(out->data, r->split[i], out->len);
      return PLAY_FRAME;
    }
    if (r->os_init && r->phase != OGG_ENDED) {
      rv = ogg_stream_packetout(&r->os, &op);
      if (rv < 0) {
        /* A gap in the page sequence: data was lost. Keep going. */
        r->info.holes++;
        continue;
      }
      if (rv == 1) {
        if (op.bytes < 0 || op.packet == NULL) {
          return fail(r, "bad Ogg packet");
        }
        switch (r->phase) {
          case OGG_HEAD:
            if (opus_head(r, &op) != 0) {
              return PLAY_ERROR;
            }
            continue;
          case OGG_TAGS:
            if (op.bytes < 8 || memcmp(op.packet, "OpusTags", 8) != 0) {
              return fail(r, "OpusTags missing after OpusHead");
            }
            r->phase = OGG_AUDIO;
            continue;
          case OGG_AUDIO:
            rv = opus_audio(r, &op, out);
            if (rv < 0) {
              return PLAY_ERROR;
            }
            if (op.e_o_s) {
              r->phase = OGG_ENDED;
            }
            if (rv == 1) {
              return PLAY_FRAME;
            }
            continue;
          case OGG_ENDED:
            return fail(r, "internal: packet after the end of stream");
        }
      }
      if (ogg_stream_eos(&r->os) && r->phase == OGG_AUDIO) {
        r->phase = OGG_ENDED;
      }
    }
    rv = ogg_sync_pageout(&r->oy, &og);
    if (rv < 0) {
      /* Bytes skipped to find the next page: corruption or junk. */
      r->info.skipped_bytes++;
      continue;
    }
    if (rv == 1) {
      if (take_page(r, &og) != 0) {
        return PLAY_ERROR;
      }
      continue;
    }
    if (!r->eof) {
      return PLAY_NEED_MORE;
    }
    if (!r->os_init) {
      return fail(r, "no Ogg page found (truncated or not Ogg)");
    }
    if (r->phase == OGG_HEAD) {
      return fail(r, "the Ogg stream ends before its OpusHead packet");
    }
    if (r->phase == OGG_TAGS) {
      return fail(r, "the Ogg stream ends before its OpusTags packet");
    }
    return PLAY_END;
  }
}

int64_t play_ogg_last_granule(const uint8_t *tail, size_t len) {
  ogg_sync_state oy;
  ogg_page og;
  int64_t last = -1;
  char *dst;
  int rv;
  ogg_sync_init(&oy);
  dst = ogg_sync_buffer(&oy, (long)len);
  if (dst != NULL && len > 0) {
    memcpy(dst, tail, len);
    ogg_sync_wrote(&oy, (long)len);
    while ((rv = ogg_sync_pageout(&oy, &og)) != 0) {
      if (rv == 1 && ogg_page_granulepos(&og) >= 0) {
        last = ogg_page_granulepos(&og);
      }
    }
  }
  ogg_sync_clear(&oy);
  return last;
}

/* ------------------------------------------------------------------------ */
/* WAV and raw PCM                                                          */
/* ------------------------------------------------------------------------ */

static int wav_fmt(play_reader *r, const uint8_t *p, size_t n) {
  uint16_t tag, ch, bits;
  uint32_t rate;
  if (n < 16) {
    return fail(r, "WAV fmt chunk too short (%zu bytes)", n);
  }
  tag = le16(p);
  ch = le16(p + 2);
  rate = le32(p + 4);
  bits = le16(p + 14);
  /* WAVE_FORMAT_EXTENSIBLE: the real tag is the sub-format GUID's head. */
  if (tag == 0xFFFE) {
    if (n < 40) {
      return fail(r, "WAV extensible fmt chunk too short (%zu bytes)", n);
    }
    tag = le16(p + 24);
  }
  if (tag != 1) {
    return fail(r,
                "WAV sample format %u is not integer PCM; convert it: "
                "ffmpeg -i IN -f s16le -ar 48000 -ac 2 - | dvoice-play "
                "--pcm -",
                tag);
  }
  if (bits != 16 || rate != 48000 || (ch != 1 && ch != 2)) {
    return fail(r,
                "WAV is %u-bit, %u Hz, %u channel(s); dvoice-play needs "
                "16-bit 48000 Hz mono or stereo. Convert it: ffmpeg -i IN "
                "-f s16le -ar 48000 -ac 2 - | dvoice-play --pcm -",
                bits, rate, ch);
  }
  if (le16(p + 12) != ch * 2 || le32(p + 8) != rate * ch * 2) {
    return fail(r, "WAV fmt chunk is inconsistent (block align %u)",
                le16(p + 12));
  }
  r->channels = ch;
  r->info.channels = ch;
  r->info.converted_mono = ch == 1;
  r->have_fmt = 1;
  return 0;
}

/* Walks the RIFF header and chunks until the data chunk starts. Returns
 * 1 when in WAV_DATA, 0 for more input, PLAY_ERROR. */
static int wav_header(play_reader *r) {
  for (;;) {
    const uint8_t *p = r->buf + r->off;
    size_t avail = buf_avail(r);
    switch (r->wst) {
      case WAV_RIFF:
        if (avail < 12) {
          return 0;
        }
        if (memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0) {
          return fail(r, "not a RIFF WAVE file");
        }
        r->off += 12;
        r->wst = WAV_CHUNK;
        break;
      case WAV_CHUNK: {
        uint32_t size;
        if (avail < 8) {
          return 0;
        }
        size = le32(p + 4);
        r->off += 8;
        if (memcmp(p, "fmt ", 4) == 0) {
          if (r->have_fmt) {
            return fail(r, "WAV has two fmt chunks");
          }
          if (size > WAV_FMT_MAX) {
            return fail(r, "WAV fmt chunk too large (%u bytes)", size);
          }
          r->chunk_left = size;
          r->pad_pending = size & 1;
          r->wst = WAV_FMT;
        } else if (memcmp(p, "data", 4) == 0) {
          if (!r->have_fmt) {
            return fail(r, "WAV data chunk before the fmt chunk");
          }
          /* Streaming writers leave the size 0 or all ones. */
          r->data_unbounded = size == 0 || size == 0xFFFFFFFFu;
          r->chunk_left = size;
          if (!r->data_unbounded) {
            uint32_t frame = (uint32_t)r->channels * 2 * PLAY_FRAME_SAMPLES;
            r->info.total_frames = (size + frame - 1) / frame;
          }
          r->wst = WAV_DATA;
          return 1;
        } else {
          /* LIST, fact, cue, ...: skipped, with the RIFF pad byte. */
          r->chunk_left = (uint64_t)size + (size & 1);
          r->wst = WAV_SKIP;
        }
        break;
      }
      case WAV_FMT:
        if (avail < r->chunk_left + r->pad_pending) {
          if (r->eof) {
            return fail(r, "WAV truncated inside the fmt chunk");
          }
          return 0;
        }
        if (wav_fmt(r, p, (size_t)r->chunk_left) != 0) {
          return PLAY_ERROR;
        }
        r->off += (size_t)r->chunk_left + r->pad_pending;
        r->wst = WAV_CHUNK;
        break;
      case WAV_SKIP: {
        size_t take = avail < r->chunk_left ? avail : (size_t)r->chunk_left;
        r->off += take;
        r->chunk_left -= take;
        if (r->chunk_left > 0) {
          if (r->eof) {
            return fail(r, "WAV truncated inside a chunk (no data chunk)");
          }
          return 0;
        }
        r->wst = WAV_CHUNK;
        break;
      }
      case WAV_DATA:
      case WAV_DONE:
        return 1;
    }
  }
}

/* Takes one frame of PCM from the buffer, bounded by |limit| bytes of
 * the current data, padding a final partial frame with silence. */
static int pcm_frame(play_reader *r, play_frame *out, int channels,
                     uint64_t limit, int final) {
  size_t want = (size_t)channels * 2 * PLAY_FRAME_SAMPLES;
  size_t have = buf_avail(r);
  const uint8_t *p = r->buf + r->off;
  size_t take, sample = (size_t)channels * 2, i;
  if (have > limit) {
    have = (size_t)limit;
  }
  if (have < want && !final) {
    return PLAY_NEED_MORE;
  }
  take = have < want ? have : want;
  if (take < want) {
    /* The end: whole samples are padded, a partial sample is dropped. */
    size_t drop = take % sample;
    r->info.dropped_bytes += drop;
    r->off += drop;
    take -= drop;
    if (take == 0) {
      return PLAY_END;
    }
    r->info.padded_frames++;
  }
  memset(out->data, 0, sizeof(out->data));
  if (channels == 2) {
    memcpy(out->data, p, take);
  } else {
    for (i = 0; i < take / 2; i++) {
      out->data[i * 4] = out->data[i * 4 + 2] = p[i * 2];
      out->data[i * 4 + 1] = out->data[i * 4 + 3] = p[i * 2 + 1];
    }
  }
  out->kind = PLAY_KIND_PCM;
  out->len = PLAY_PCM_FRAME_BYTES;
  r->off += take;
  return PLAY_FRAME;
}

static int next_wav(play_reader *r, play_frame *out) {
  int rv = wav_header(r);
  uint64_t limit;
  size_t before;
  if (rv <= 0) {
    if (rv == 0 && r->eof) {
      return fail(r, r->wst == WAV_RIFF ? "WAV truncated in its header"
                                        : "WAV has no data chunk");
    }
    return rv;
  }
  if (r->wst == WAV_DONE) {
    return PLAY_END;
  }
  limit = r->data_unbounded ? UINT64_MAX : r->chunk_left;
  before = r->off;
  rv = pcm_frame(r, out, r->channels, limit,
                 r->eof ||
                     (!r->data_unbounded && buf_avail(r) >= r->chunk_left));
  if (!r->data_unbounded) {
    r->chunk_left -= r->off - before;
    if (rv == PLAY_END || (rv == PLAY_FRAME && r->chunk_left == 0)) {
      /* Chunks after the data chunk (LIST, ...) are ignored. */
      r->wst = WAV_DONE;
    }
  }
  if (rv == PLAY_NEED_MORE && r->eof) {
    return PLAY_END;
  }
  return rv;
}

int play_reader_next(play_reader *r, play_frame *out) {
  int rv;
  if (r->failed) {
    return PLAY_ERROR;
  }
  switch (r->fmt) {
    case PLAY_FMT_AUTO:
      if (!r->eof) {
        return PLAY_NEED_MORE;
      }
      return fail(r, "the input is empty");
    case PLAY_FMT_OGG:
      rv = next_ogg(r, out);
      break;
    case PLAY_FMT_WAV:
      rv = next_wav(r, out);
      break;
    case PLAY_FMT_RAW:
      rv = pcm_frame(r, out, 2, UINT64_MAX, r->eof);
      break;
    default:
      return fail(r, "internal: unknown format");
  }
  if (rv == PLAY_FRAME) {
    r->info.frames++;
  }
  return rv;
}
