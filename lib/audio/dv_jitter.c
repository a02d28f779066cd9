#include "audio/dv_jitter.h"

#include <string.h>

#include "audio/dv_opus.h"
#include "util/dv_mem.h"

typedef struct slot {
  size_t len;
  uint32_t ts;
  uint16_t seq;
  uint8_t used;
} slot;

struct dv_jitter {
  const dvoice_mem *mem;
  dv_jitter_settings s;
  unsigned cap;  /* depth + spike slots */
  uint8_t *data; /* cap * max_frame bytes */
  slot *slots;
  int started; /* a playout point exists */
  int filling;
  int can_rewind; /* nothing played since the playout point was set */
  uint16_t next;  /* sequence number of the next frame to play */
  unsigned head;  /* slot of |next| */
  size_t count;
  dv_jitter_stats st;
};

void dv_jitter_settings_default(dv_jitter_settings *s) {
  s->depth = 5;
  s->spike = 3;
  s->max_frame = DV_OPUS_MAX_PACKET;
}

int dv_jitter_new(const dvoice_mem *mem, const dv_jitter_settings *s,
                  dv_jitter **out) {
  dv_jitter_settings def;
  dv_jitter *jb;
  *out = NULL;
  if (s == NULL) {
    dv_jitter_settings_default(&def);
    s = &def;
  }
  if (s->depth == 0 || s->depth > 64 || s->spike > 64 - s->depth ||
      s->max_frame == 0 || s->max_frame > 65536) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  jb = dv_calloc(mem, 1, sizeof(*jb));
  if (jb == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  jb->mem = mem;
  jb->s = *s;
  jb->cap = s->depth + s->spike;
  jb->data = dv_malloc(mem, jb->cap * s->max_frame);
  jb->slots = dv_calloc(mem, jb->cap, sizeof(slot));
  if (jb->data == NULL || jb->slots == NULL) {
    dv_jitter_free(jb);
    return DVOICE_ERR_NOMEM;
  }
  jb->filling = 1;
  *out = jb;
  return 0;
}

void dv_jitter_free(dv_jitter *jb) {
  if (jb != NULL) {
    dv_free(jb->mem, jb->data);
    dv_free(jb->mem, jb->slots);
    dv_free(jb->mem, jb);
  }
}

void dv_jitter_reset(dv_jitter *jb) {
  memset(jb->slots, 0, jb->cap * sizeof(slot));
  jb->started = 0;
  jb->filling = 1;
  jb->head = 0;
  jb->count = 0;
}

size_t dv_jitter_buffered(const dv_jitter *jb) {
  return jb->count;
}

const dv_jitter_stats *dv_jitter_get_stats(const dv_jitter *jb) {
  return &jb->st;
}

/* Offset of |seq| from the playout point, wrapping (-32768..32767). */
static int offset_of(const dv_jitter *jb, uint16_t seq) {
  int d = (int)(uint16_t)(seq - jb->next);
  return d >= 32768 ? d - 65536 : d;
}

/* One past the furthest buffered offset (0 if empty). */
static unsigned span(const dv_jitter *jb) {
  unsigned sp = 0;
  for (unsigned i = 0; i < jb->cap; i++) {
    if (jb->slots[(jb->head + i) % jb->cap].used) {
      sp = i + 1;
    }
  }
  return sp;
}

int dv_jitter_put_packet(dv_jitter *jb, uint16_t seq, uint32_t timestamp,
                         const uint8_t *payload, size_t len) {
  int off;
  slot *sl;
  if (payload == NULL || len == 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (len > jb->s.max_frame) {
    return DVOICE_ERR_TOO_LARGE;
  }
  jb->st.received++;
  if (!jb->started) {
    jb->started = 1;
    jb->can_rewind = 1;
    jb->next = seq;
    jb->head = 0;
  }
  off = offset_of(jb, seq);
  if (off < 0) {
    /* Before anything was played, an earlier packet moves the playout
     * point back if everything buffered still fits. */
    unsigned back = (unsigned)-off;
    if (!jb->can_rewind || back + span(jb) > jb->cap) {
      jb->st.late++;
      return DV_JITTER_LATE;
    }
    jb->head = (jb->head + jb->cap - back % jb->cap) % jb->cap;
    jb->next = seq;
    off = 0;
  } else if ((unsigned)off >= jb->cap) {
    if (jb->count > 0) {
      jb->st.ahead++;
      return DV_JITTER_AHEAD;
    }
    /* Nothing waits: a new talk spurt or a jump; restart there. */
    jb->st.restarts++;
    jb->next = seq;
    jb->head = 0;
    jb->filling = 1;
    jb->can_rewind = 1;
    off = 0;
  }
  sl = &jb->slots[(jb->head + (unsigned)off) % jb->cap];
  if (sl->used) {
    jb->st.duplicate++;
    return DV_JITTER_DUPLICATE;
  }
  memcpy(jb->data + (size_t)((sl - jb->slots)) * jb->s.max_frame, payload, len);
  sl->len = len;
  sl->ts = timestamp;
  sl->seq = seq;
  sl->used = 1;
  jb->count++;
  return DV_JITTER_STORED;
}

dv_jitter_take dv_jitter_take_frame(dv_jitter *jb, dv_jitter_frame *f) {
  slot *sl, *nx;
  if (jb->filling) {
    if (jb->count < jb->s.depth) {
      return DV_JITTER_FILLING;
    }
    jb->filling = 0;
  }
  jb->can_rewind = 0;
  if (jb->count == 0) {
    jb->filling = 1;
    return DV_JITTER_EMPTY;
  }
  sl = &jb->slots[jb->head];
  memset(f, 0, sizeof(*f));
  f->seq = jb->next;
  if (sl->used) {
    f->data = jb->data + (size_t)jb->head * jb->s.max_frame;
    f->len = sl->len;
    f->timestamp = sl->ts;
    sl->used = 0;
    jb->count--;
    jb->st.played++;
  } else {
    nx = &jb->slots[(jb->head + 1) % jb->cap];
    if (nx->used) {
      f->next_data =
          jb->data + (size_t)((jb->head + 1) % jb->cap) * jb->s.max_frame;
      f->next_len = nx->len;
      f->timestamp = nx->ts - 960u;
    }
    jb->st.missing++;
  }
  jb->head = (jb->head + 1) % jb->cap;
  jb->next++;
  return f->data != NULL ? DV_JITTER_FRAME : DV_JITTER_MISSING;
}
