/* The simulator's report: violation lists, media statistics, JSON. */
#include "sim_report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "util/dv_mem.h"

int dv_sim_violations_add(dv_sim_violations *l, const dvoice_mem *mem,
                          dvoice_tstamp when, int close_code,
                          const char *what) {
  dv_sim_violation *v;
  if (l->n == l->cap) {
    size_t ncap = l->cap ? l->cap * 2 : 4;
    dv_sim_violation *nv = dv_realloc(mem, l->v, ncap * sizeof(*nv));
    if (nv == NULL) {
      return DVOICE_ERR_NOMEM;
    }
    l->v = nv;
    l->cap = ncap;
  }
  v = &l->v[l->n++];
  v->when = when;
  v->close_code = close_code;
  snprintf(v->what, sizeof(v->what), "%s", what);
  return 0;
}

void dv_sim_violations_free(dv_sim_violations *l, const dvoice_mem *mem) {
  dv_free(mem, l->v);
  memset(l, 0, sizeof(*l));
}

int dv_sim_violations_find(const dv_sim_violations *l, const char *needle) {
  for (size_t i = 0; i < l->n; i++) {
    if (strstr(l->v[i].what, needle) != NULL) {
      return 1;
    }
  }
  return 0;
}

void dv_sim_media_stats_init(dv_sim_media_stats *s) {
  memset(s, 0, sizeof(*s));
  s->first_arrival = DVOICE_TSTAMP_NONE;
  s->last_arrival = DVOICE_TSTAMP_NONE;
  s->ia_min_ns = UINT64_MAX;
}

double dv_sim_media_stats_ia_stddev(const dv_sim_media_stats *s) {
  if (s->ia_count < 2) {
    return 0.0;
  }
  return sqrt(s->ia_m2 / (double)(s->ia_count - 1));
}

static int add_u64(json_t *o, const char *k, uint64_t v) {
  return json_object_set_new(o, k, json_integer((json_int_t)v));
}

int dv_sim_session_report_json(const dv_sim_session_report *r,
                               const char *session_id, const char *user_id,
                               uint32_t ssrc, dv_buf *out) {
  const dv_sim_media_stats *m = &r->media;
  json_t *o = json_object(), *media = json_object(), *vl = json_array();
  char *text;
  int bad = 0, rv;
  if (o == NULL || media == NULL || vl == NULL) {
    json_decref(o);
    json_decref(media);
    json_decref(vl);
    return DVOICE_ERR_NOMEM;
  }
  bad |= json_object_set_new(o, "session_id", json_string(session_id));
  bad |= json_object_set_new(o, "user_id", json_string(user_id));
  bad |= add_u64(o, "ssrc", ssrc);
  bad |= json_object_set_new(o, "mode", json_string(r->mode));
  bad |= add_u64(o, "identifies", r->identifies);
  bad |= add_u64(o, "resumes", r->resumes);
  bad |= add_u64(o, "resume_failures", r->resume_failures);
  bad |= add_u64(o, "connections", r->connections);
  bad |= add_u64(o, "heartbeats", r->heartbeats);
  bad |= add_u64(o, "acks_sent", r->acks_sent);
  bad |= add_u64(o, "acks_dropped", r->acks_dropped);
  bad |= add_u64(o, "select_protocols", r->select_protocols);
  bad |= add_u64(o, "speaking", r->speaking);
  bad |= add_u64(o, "replayed", r->replayed);
  bad |= json_object_set_new(o, "last_close_code",
                             json_integer(r->last_close_code));
  for (size_t i = 0; i < r->violations.n; i++) {
    const dv_sim_violation *v = &r->violations.v[i];
    bad |= json_array_append_new(
        vl, json_pack("{s:I,s:i,s:s}", "when_ns", (json_int_t)v->when,
                      "close_code", v->close_code, "what", v->what));
  }
  bad |= json_object_set_new(o, "violations", vl);
  bad |= add_u64(media, "discovery_requests", m->discovery_requests);
  bad |= add_u64(media, "keepalives", m->keepalives);
  bad |= add_u64(media, "rtcp", m->rtcp);
  bad |= add_u64(media, "received", m->received);
  bad |= add_u64(media, "decrypted", m->decrypted);
  bad |= add_u64(media, "decrypt_failures", m->decrypt_failures);
  bad |= add_u64(media, "before_key", m->before_key);
  bad |= add_u64(media, "before_speaking", m->before_speaking);
  bad |= add_u64(media, "header_errors", m->header_errors);
  bad |= add_u64(media, "ssrc_errors", m->ssrc_errors);
  bad |= add_u64(media, "missing", m->missing);
  bad |= add_u64(media, "duplicates", m->duplicates);
  bad |= add_u64(media, "reordered", m->reordered);
  bad |= add_u64(media, "ts_errors", m->ts_errors);
  bad |= add_u64(media, "silence_frames", m->silence_frames);
  bad |= add_u64(media, "decoded", m->decoded);
  bad |= add_u64(media, "decode_failures", m->decode_failures);
  bad |= add_u64(media, "forwarded", m->forwarded);
  if (m->received > 0) {
    bad |= add_u64(media, "first_arrival_ns", m->first_arrival);
    bad |= add_u64(media, "last_arrival_ns", m->last_arrival);
  } else {
    bad |= json_object_set_new(media, "first_arrival_ns", json_null());
    bad |= json_object_set_new(media, "last_arrival_ns", json_null());
  }
  bad |= add_u64(media, "ia_count", m->ia_count);
  bad |=
      json_object_set_new(media, "ia_mean_ms", json_real(m->ia_mean_ns / 1e6));
  bad |= json_object_set_new(media, "ia_stddev_ms",
                             json_real(dv_sim_media_stats_ia_stddev(m) / 1e6));
  bad |= json_object_set_new(
      media, "ia_min_ms",
      json_real(m->ia_count ? (double)m->ia_min_ns / 1e6 : 0.0));
  bad |= json_object_set_new(media, "ia_max_ms",
                             json_real((double)m->ia_max_ns / 1e6));
  bad |= json_object_set_new(media, "ia_max_dev_ms",
                             json_real((double)m->ia_max_dev_ns / 1e6));
  bad |= json_object_set_new(media, "jitter_ms", json_real(m->jitter_ns / 1e6));
  bad |= json_object_set_new(media, "drift_min_ms",
                             json_real((double)m->drift_min_ns / 1e6));
  bad |= json_object_set_new(media, "drift_max_ms",
                             json_real((double)m->drift_max_ns / 1e6));
  bad |= json_object_set_new(o, "media", media);
  if (bad) {
    json_decref(o);
    return DVOICE_ERR_NOMEM;
  }
  text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (text == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_buf_append_str(out, text);
  free(text);
  return rv;
}
