/* The simulator's main gateway core (see sim_gw.h). */
#include "sim_gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "json/dv_json.h"
#include "util/dv_env.h"
#include "util/dv_log.h"
#include "util/dv_mem.h"

#define INTENT_GUILDS (1u << 0)
#define INTENT_GUILD_VOICE_STATES (1u << 7)
/* Intents Discord defines today (bits 0..25); others give 4013. */
#define INTENTS_KNOWN ((1u << 26) - 1)

static const dvoice_mem *gmem(const dv_sim_gw *gw) {
  return gw->env.mem;
}

void dv_sim_gw_settings_default(dv_sim_gw_settings *s) {
  memset(s, 0, sizeof(*s));
  s->heartbeat_interval_ms = 41250;
  s->heartbeat_grace_ms = 5000;
  s->rate_limit = 120;
  s->rate_window_ms = 60000;
  s->replay_max = 256;
}

static void rand_hex(dv_sim_gw *gw, char out[33]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t b[16];
  dv_rand(&gw->env, b, sizeof(b));
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[32] = 0;
}

/* ---- output ------------------------------------------------------------- */

static int queue_out(dv_sim_gw_conn *c, dv_sim_out_kind kind, int code,
                     const void *p, size_t len) {
  return dv_sim_outq_push(&c->out, gmem(c->gw), kind, code, p, len);
}

static int send_text(dv_sim_gw_conn *c, const char *s) {
  return queue_out(c, DV_SIM_OUT_TEXT, 0, s, strlen(s));
}

/* Sends {"op":op,"d":d} (|d| stolen; NULL is JSON null). */
static int send_op(dv_sim_gw_conn *c, int op, json_t *d) {
  dv_buf b;
  int rv;
  dv_buf_init(&b, gmem(c->gw));
  rv = dv_buf_appendf(&b, "{\"op\":%d,\"d\":", op);
  if (rv == 0) {
    rv =
        d != NULL ? dv_json_append_value(&b, d) : dv_buf_append_str(&b, "null");
  }
  if (rv == 0) {
    rv = dv_buf_push(&b, '}');
  }
  if (rv == 0) {
    rv = queue_out(c, DV_SIM_OUT_TEXT, 0, b.data, b.len);
  }
  json_decref(d);
  dv_buf_free(&b);
  return rv == DVOICE_ERR_INVALID_ARGUMENT ? DVOICE_ERR_NOMEM : rv;
}

/* ---- sessions ----------------------------------------------------------- */

static void session_free(dv_sim_gw *gw, dv_sim_gw_session *s) {
  for (size_t i = 0; i < s->nreplay; i++) {
    dv_buf_free(&s->replay[i].text);
  }
  dv_free(gmem(gw), s->replay);
  dv_free(gmem(gw), s->voices);
  dv_sim_violations_free(&s->report.violations, gmem(gw));
  dv_free(gmem(gw), s);
}

static int record(dv_sim_gw *gw, dv_sim_gw_session *s, dvoice_tstamp now,
                  int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int record(dv_sim_gw *gw, dv_sim_gw_session *s, dvoice_tstamp now,
                  int code, const char *fmt, ...) {
  char what[120];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  DV_INFO(&gw->env, "sim-gw: violation (%d): %s", code, what);
  return dv_sim_violations_add(s ? &s->report.violations : &gw->violations,
                               gmem(gw), now, code, what);
}

/* Ends the voice side of |v|: 4014 on its live voice connection. */
static int end_voice(dv_sim_gw_voice *v, dvoice_tstamp now) {
  int rv = 0;
  if (v->vs != NULL) {
    if (v->vs->conn != NULL) {
      rv = dv_sim_vgw_session_close(v->vs, 4014, now);
    } else {
      v->vs->phase = DV_SIM_PHASE_ENDED;
    }
    v->vs = NULL;
  }
  return rv;
}

static int end_all_voice(dv_sim_gw_session *s, dvoice_tstamp now) {
  int rv = 0;
  for (size_t i = 0; i < s->nvoices; i++) {
    int r2 = end_voice(&s->voices[i], now);
    s->voices[i].channel_id = 0;
    rv = rv != 0 ? rv : r2;
  }
  return rv;
}

/* Closes |c| with |code|; the session stays resumable unless the code ends
 * it (4007, 4009 and 4004 never bind one). */
static int close_conn(dv_sim_gw_conn *c, int code, dvoice_tstamp now) {
  dv_sim_gw_session *s = c->session;
  int rv = queue_out(c, DV_SIM_OUT_CLOSE, code, NULL, 0);
  c->state = DV_SIM_GW_CLOSED;
  c->close_code = code;
  c->hb_deadline = DVOICE_TSTAMP_NONE;
  if (s != NULL) {
    s->report.last_close_code = code;
    if (s->conn == c) {
      s->conn = NULL;
    }
    c->session = NULL;
    if (code == 4007 || code == 4009) {
      int r2;
      s->alive = 0;
      r2 = end_all_voice(s, now);
      rv = rv != 0 ? rv : r2;
    }
  }
  return rv;
}

static int violate(dv_sim_gw_conn *c, dvoice_tstamp now, int code,
                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static int violate(dv_sim_gw_conn *c, dvoice_tstamp now, int code,
                   const char *fmt, ...) {
  char what[120];
  va_list ap;
  int rv, rv2;
  va_start(ap, fmt);
  vsnprintf(what, sizeof(what), fmt, ap);
  va_end(ap);
  rv = record(c->gw, c->session, now, code, "%s", what);
  rv2 = close_conn(c, code, now);
  return rv != 0 ? rv : rv2;
}

/* Sends a dispatch on the session (kept for replay). |d| is stolen. */
static int dispatch(dv_sim_gw_session *s, const char *name, json_t *d) {
  dv_sim_gw *gw = s->gw;
  dv_buf b;
  int rv;
  if (d == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  dv_buf_init(&b, gmem(gw));
  s->seq++;
  rv = dv_buf_append_str(&b, "{\"op\":0,\"t\":");
  if (rv == 0) {
    rv = dv_json_append_str(&b, name, strlen(name));
  }
  if (rv == 0) {
    rv = dv_buf_appendf(&b, ",\"s\":%lld,\"d\":", (long long)s->seq);
  }
  if (rv == 0) {
    rv = dv_json_append_value(&b, d);
  }
  if (rv == 0) {
    rv = dv_buf_push(&b, '}');
  }
  json_decref(d);
  if (rv != 0) {
    dv_buf_free(&b);
    return DVOICE_ERR_NOMEM;
  }
  s->report.dispatches++;
  if (s->conn != NULL && s->conn->state == DV_SIM_GW_BOUND) {
    rv = queue_out(s->conn, DV_SIM_OUT_TEXT, 0, b.data, b.len);
  }
  if (rv == 0 && gw->settings.replay_max > 0) {
    if (s->nreplay == gw->settings.replay_max) {
      dv_buf_free(&s->replay[0].text);
      memmove(s->replay, s->replay + 1, (s->nreplay - 1) * sizeof(*s->replay));
      s->nreplay--;
    }
    if (s->replay == NULL) {
      s->replay =
          dv_calloc(gmem(gw), gw->settings.replay_max, sizeof(*s->replay));
      if (s->replay == NULL) {
        dv_buf_free(&b);
        return DVOICE_ERR_NOMEM;
      }
    }
    s->replay[s->nreplay].seq = s->seq;
    s->replay[s->nreplay].text = b;
    s->nreplay++;
    return 0;
  }
  dv_buf_free(&b);
  return rv;
}

dv_sim_gw_voice *dv_sim_gw_voice_state(dv_sim_gw_session *s,
                                       uint64_t guild_id) {
  for (size_t i = 0; i < s->nvoices; i++) {
    if (s->voices[i].guild_id == guild_id) {
      return &s->voices[i];
    }
  }
  return NULL;
}

static dv_sim_gw_voice *voice_get(dv_sim_gw_session *s, uint64_t guild_id) {
  dv_sim_gw_voice *v = dv_sim_gw_voice_state(s, guild_id), *nv;
  if (v != NULL) {
    return v;
  }
  nv = dv_realloc(gmem(s->gw), s->voices, (s->nvoices + 1) * sizeof(*nv));
  if (nv == NULL) {
    return NULL;
  }
  s->voices = nv;
  v = &s->voices[s->nvoices++];
  memset(v, 0, sizeof(*v));
  v->guild_id = guild_id;
  return v;
}

static json_t *voice_state_json(dv_sim_gw_session *s, uint64_t guild_id,
                                uint64_t channel_id, const char *vsid,
                                int self_mute, int self_deaf) {
  char g[DV_SNOWFLAKE_STR_MAX], ch[DV_SNOWFLAKE_STR_MAX];
  dv_json_snowflake_fmt(guild_id, g);
  dv_json_snowflake_fmt(channel_id, ch);
  return json_pack("{s:s,s:o,s:s,s:s,s:b,s:b,s:b,s:b,s:b,s:b,s:n}", "guild_id",
                   g, "channel_id", channel_id ? json_string(ch) : json_null(),
                   "user_id", s->user_id, "session_id", vsid, "deaf", 0, "mute",
                   0, "self_deaf", self_deaf, "self_mute", self_mute,
                   "self_video", 0, "suppress", 0,
                   "request_to_speak_timestamp");
}

static json_t *voice_server_json(dv_sim_gw_session *s, uint64_t guild_id,
                                 const char *token, int server) {
  char g[DV_SNOWFLAKE_STR_MAX];
  dv_json_snowflake_fmt(guild_id, g);
  return json_pack("{s:s,s:s,s:o}", "token", token, "guild_id", g, "endpoint",
                   server >= 0 ? json_string(s->gw->voice[server].endpoint)
                               : json_null());
}

/*
 * Registers a fresh join of |v| on voice server |server| and sends the two
 * events in a random order. VOICE_STATE_UPDATE needs the intent, as on
 * Discord.
 */
static int announce_join(dv_sim_gw_session *s, dv_sim_gw_voice *v,
                         uint64_t channel_id, int server, int self_mute,
                         int self_deaf, dvoice_tstamp now) {
  dv_sim_gw *gw = s->gw;
  char vsid[33], g[DV_SNOWFLAKE_STR_MAX];
  uint8_t order;
  int rv = 0;
  (void)now;
  if (server < 0 || server >= gw->nvoice) {
    return DVOICE_ERR_INVALID_STATE;
  }
  rand_hex(gw, vsid);
  rand_hex(gw, v->token);
  dv_json_snowflake_fmt(v->guild_id, g);
  rv = dv_sim_vgw_add_session(gw->voice[server].vgw, g, s->user_id, vsid,
                              v->token, &v->vs);
  if (rv != 0) {
    v->vs = NULL;
    return rv;
  }
  v->channel_id = channel_id;
  v->server = server;
  dv_rand(&gw->env, &order, 1);
  for (int i = 0; i < 2 && rv == 0; i++) {
    if ((i == 0) == ((order & 1) == 0)) {
      if (s->intents & INTENT_GUILD_VOICE_STATES) {
        rv = dispatch(s, "VOICE_STATE_UPDATE",
                      voice_state_json(s, v->guild_id, channel_id, vsid,
                                       self_mute, self_deaf));
      }
    } else {
      rv = dispatch(s, "VOICE_SERVER_UPDATE",
                    voice_server_json(s, v->guild_id, v->token, server));
    }
  }
  return rv;
}

/* ---- server ------------------------------------------------------------- */

int dv_sim_gw_new(const dvoice_env *env, const dv_sim_gw_settings *settings,
                  dv_sim_gw **out) {
  dv_sim_gw *gw;
  if (out == NULL || dv_env_check(env) != 0) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  gw = dv_calloc(env->mem, 1, sizeof(*gw));
  if (gw == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  gw->env = *env;
  if (settings != NULL) {
    gw->settings = *settings;
  } else {
    dv_sim_gw_settings_default(&gw->settings);
  }
  if (gw->settings.rate_limit == 0 || gw->settings.rate_window_ms == 0 ||
      gw->settings.heartbeat_interval_ms == 0) {
    dv_free(env->mem, gw);
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  gw->next_conn_id = 1;
  *out = gw;
  return 0;
}

void dv_sim_gw_free(dv_sim_gw *gw) {
  if (gw == NULL) {
    return;
  }
  while (gw->nconns > 0) {
    dv_sim_gw_conn_free(gw->conns[gw->nconns - 1]);
  }
  dv_free(gmem(gw), gw->conns);
  for (size_t i = 0; i < gw->nsessions; i++) {
    session_free(gw, gw->sessions[i]);
  }
  dv_free(gmem(gw), gw->sessions);
  for (size_t i = 0; i < gw->nbots; i++) {
    dv_free(gmem(gw), gw->bots[i].token);
  }
  dv_free(gmem(gw), gw->bots);
  for (size_t i = 0; i < gw->nguilds; i++) {
    dv_free(gmem(gw), gw->guilds[i].channels);
  }
  dv_free(gmem(gw), gw->guilds);
  dv_free(gmem(gw), gw->resume_url);
  dv_sim_violations_free(&gw->violations, gmem(gw));
  dv_free(gmem(gw), gw);
}

int dv_sim_gw_set_resume_url(dv_sim_gw *gw, const char *url) {
  char *u = dv_strdup(gmem(gw), url);
  if (u == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  dv_free(gmem(gw), gw->resume_url);
  gw->resume_url = u;
  return 0;
}

int dv_sim_gw_add_voice_server(dv_sim_gw *gw, dv_sim_vgw *vgw,
                               const char *endpoint) {
  if (vgw == NULL || endpoint == NULL || gw->nvoice == DV_SIM_GW_MAX_VOICE ||
      strlen(endpoint) >= sizeof(gw->voice[0].endpoint)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  gw->voice[gw->nvoice].vgw = vgw;
  snprintf(gw->voice[gw->nvoice].endpoint, sizeof(gw->voice[0].endpoint), "%s",
           endpoint);
  return gw->nvoice++;
}

static const dv_sim_gw_bot *find_bot(const dv_sim_gw *gw, const char *token,
                                     size_t len) {
  for (size_t i = 0; i < gw->nbots; i++) {
    if (strlen(gw->bots[i].token) == len &&
        memcmp(gw->bots[i].token, token, len) == 0) {
      return &gw->bots[i];
    }
  }
  return NULL;
}

int dv_sim_gw_has_bot(const dv_sim_gw *gw, const char *token) {
  return find_bot(gw, token, strlen(token)) != NULL;
}

int dv_sim_gw_add_bot(dv_sim_gw *gw, const char *token, uint64_t user_id) {
  dv_sim_gw_bot *nb;
  if (token == NULL || token[0] == 0 || user_id == 0 ||
      find_bot(gw, token, strlen(token)) != NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  nb = dv_realloc(gmem(gw), gw->bots, (gw->nbots + 1) * sizeof(*nb));
  if (nb == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  gw->bots = nb;
  nb[gw->nbots].token = dv_strdup(gmem(gw), token);
  if (nb[gw->nbots].token == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  dv_json_snowflake_fmt(user_id, nb[gw->nbots].user_id);
  gw->nbots++;
  return 0;
}

dv_sim_gw_session *dv_sim_gw_find_session(const dv_sim_gw *gw,
                                          const char *user_id) {
  for (size_t i = gw->nsessions; i > 0; i--) {
    if (strcmp(gw->sessions[i - 1]->user_id, user_id) == 0) {
      return gw->sessions[i - 1];
    }
  }
  return NULL;
}

static dv_sim_gw_session *find_session_id(const dv_sim_gw *gw, const char *id,
                                          size_t len) {
  for (size_t i = 0; i < gw->nsessions; i++) {
    if (strlen(gw->sessions[i]->session_id) == len &&
        memcmp(gw->sessions[i]->session_id, id, len) == 0) {
      return gw->sessions[i];
    }
  }
  return NULL;
}

/* ---- connections -------------------------------------------------------- */

static dvoice_tstamp hb_timeout(const dv_sim_gw *gw) {
  return (dvoice_tstamp)(gw->settings.heartbeat_interval_ms +
                         gw->settings.heartbeat_grace_ms) *
         DVOICE_MS;
}

int dv_sim_gw_conn_new(dv_sim_gw *gw, dvoice_tstamp now, dv_sim_gw_conn **out) {
  dv_sim_gw_conn *c, **arr;
  char hello[96];
  c = dv_calloc(gmem(gw), 1, sizeof(*c));
  arr = c == NULL
            ? NULL
            : dv_realloc(gmem(gw), gw->conns, (gw->nconns + 1) * sizeof(*arr));
  if (c != NULL) {
    c->rx_at = dv_calloc(gmem(gw), gw->settings.rate_limit, sizeof(*c->rx_at));
  }
  if (c == NULL || arr == NULL || c->rx_at == NULL) {
    if (arr != NULL) {
      gw->conns = arr;
    }
    if (c != NULL) {
      dv_free(gmem(gw), c->rx_at);
    }
    dv_free(gmem(gw), c);
    return DVOICE_ERR_NOMEM;
  }
  gw->conns = arr;
  c->gw = gw;
  c->id = gw->next_conn_id++;
  c->state = DV_SIM_GW_AWAIT_IDENTIFY;
  c->hb_deadline = now + hb_timeout(gw);
  snprintf(hello, sizeof(hello),
           "{\"op\":10,\"d\":{\"heartbeat_interval\":%lu},\"s\":null,"
           "\"t\":null}",
           (unsigned long)gw->settings.heartbeat_interval_ms);
  if (send_text(c, hello) != 0) {
    dv_free(gmem(gw), c->rx_at);
    dv_free(gmem(gw), c);
    return DVOICE_ERR_NOMEM;
  }
  gw->conns[gw->nconns++] = c;
  *out = c;
  return 0;
}

void dv_sim_gw_conn_free(dv_sim_gw_conn *c) {
  dv_sim_gw *gw = c->gw;
  if (c->session != NULL && c->session->conn == c) {
    c->session->conn = NULL;
  }
  for (size_t i = 0; i < gw->nconns; i++) {
    if (gw->conns[i] == c) {
      memmove(&gw->conns[i], &gw->conns[i + 1],
              (gw->nconns - i - 1) * sizeof(*gw->conns));
      gw->nconns--;
      break;
    }
  }
  dv_sim_outq_free(&c->out, gmem(gw));
  dv_free(gmem(gw), c->rx_at);
  dv_free(gmem(gw), c);
}

int dv_sim_gw_conn_pop(dv_sim_gw_conn *c, dv_sim_out *out) {
  return dv_sim_outq_pop(&c->out, out);
}

void dv_sim_gw_conn_peer_closed(dv_sim_gw_conn *c, int code,
                                dvoice_tstamp now) {
  dv_sim_gw_session *s = c->session;
  c->state = DV_SIM_GW_CLOSED;
  c->close_code = code;
  c->hb_deadline = DVOICE_TSTAMP_NONE;
  if (s == NULL) {
    return;
  }
  s->report.last_close_code = code;
  if (s->conn == c) {
    s->conn = NULL;
  }
  c->session = NULL;
  if (code == 1000 || code == 1001) {
    /* Going offline ends the session and the bot's voice connections. */
    s->alive = 0;
    (void)end_all_voice(s, now);
  }
}

int dv_sim_gw_conn_close(dv_sim_gw_conn *c, int code, dvoice_tstamp now) {
  if (c->state == DV_SIM_GW_CLOSED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  return close_conn(c, code, now);
}

/* Counts a received message; nonzero when it exceeds the rate limit. */
static int rate_exceeded(dv_sim_gw_conn *c, dvoice_tstamp now) {
  const dv_sim_gw_settings *st = &c->gw->settings;
  dvoice_tstamp win = (dvoice_tstamp)st->rate_window_ms * DVOICE_MS;
  while (c->rx_n > 0 && c->rx_at[c->rx_head] + win <= now) {
    c->rx_head = (c->rx_head + 1) % st->rate_limit;
    c->rx_n--;
  }
  if (c->rx_n == st->rate_limit) {
    return 1;
  }
  c->rx_at[(c->rx_head + c->rx_n) % st->rate_limit] = now;
  c->rx_n++;
  return 0;
}

/* A minimal but complete GUILD_CREATE body (the fields discord.js reads). */
static json_t *guild_json(const dv_sim_gw_session *s,
                          const dv_sim_gw_guild *gd) {
  char g[DV_SNOWFLAKE_STR_MAX];
  json_t *chans = json_array();
  dv_json_snowflake_fmt(gd->id, g);
  for (size_t i = 0; chans != NULL && i < gd->nchannels; i++) {
    char c[DV_SNOWFLAKE_STR_MAX], name[32];
    dv_json_snowflake_fmt(gd->channels[i], c);
    snprintf(name, sizeof(name), "voice-%zu", i + 1);
    json_array_append_new(
        chans, json_pack("{s:s,s:i,s:s,s:s,s:i,s:i,s:i,s:[],s:n,s:n}", "id", c,
                         "type", 2, "name", name, "guild_id", g, "position",
                         (int)i, "bitrate", 64000, "user_limit", 0,
                         "permission_overwrites", "rtc_region", "parent_id"));
  }
  return json_pack(
      "{s:s,s:s,s:n,s:s,s:b,s:b,s:i,s:s,s:[],s:[{s:s,s:s,s:s,s:i,s:i,s:b,"
      "s:b,s:b,s:i}],s:[],s:[],s:[],s:[],s:[],s:[],s:[],s:[],s:o,s:s,s:i,"
      "s:i,s:i,s:i,s:i,s:n,s:n,s:n}",
      "id", g, "name", "dvoice-sim guild", "icon", "owner_id", s->user_id,
      "unavailable", 0, "large", 0, "member_count", 1, "joined_at",
      "2026-01-01T00:00:00.000000+00:00", "features", "roles", "id", g, "name",
      "@everyone", "permissions", "8", "position", 0, "color", 0, "hoist", 0,
      "managed", 0, "mentionable", 0, "flags", 0, "emojis", "stickers",
      "members", "presences", "threads", "stage_instances",
      "guild_scheduled_events", "voice_states", "channels", chans,
      "preferred_locale", "en-US", "verification_level", 0,
      "default_message_notifications", 0, "explicit_content_filter", 0,
      "mfa_level", 0, "premium_tier", 0, "afk_channel_id", "system_channel_id",
      "vanity_url_code");
}

int dv_sim_gw_add_guild(dv_sim_gw *gw, uint64_t guild_id,
                        const uint64_t *voice_channels, size_t n) {
  dv_sim_gw_guild *ng;
  uint64_t *ch;
  if (guild_id == 0 || (n > 0 && voice_channels == NULL)) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < gw->nguilds; i++) {
    if (gw->guilds[i].id == guild_id) {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (voice_channels[i] == 0) {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
  }
  ch = dv_memdup(gmem(gw), voice_channels, n * sizeof(*ch));
  ng = ch == NULL
           ? NULL
           : dv_realloc(gmem(gw), gw->guilds, (gw->nguilds + 1) * sizeof(*ng));
  if (ng == NULL) {
    dv_free(gmem(gw), ch);
    return DVOICE_ERR_NOMEM;
  }
  gw->guilds = ng;
  ng[gw->nguilds].id = guild_id;
  ng[gw->nguilds].channels = ch;
  ng[gw->nguilds].nchannels = n;
  gw->nguilds++;
  return 0;
}

static int is_bool_member(const json_t *o, const char *k) {
  return json_is_boolean(json_object_get(o, k));
}

static int on_identify(dv_sim_gw_conn *c, const json_t *d, dvoice_tstamp now) {
  dv_sim_gw *gw = c->gw;
  const char *token;
  size_t tlen;
  int64_t intents;
  json_t *props, *shard, *ready;
  const char *k;
  json_t *val;
  const dv_sim_gw_bot *bot;
  dv_sim_gw_session *s, **arr;
  int rv;
  if (c->state == DV_SIM_GW_BOUND) {
    return violate(c, now, 4005, "identify on an identified connection");
  }
  if (!json_is_object(d) || dv_json_get_str(d, "token", &token, &tlen) != 0 ||
      dv_json_get_int(d, "intents", 0, UINT32_MAX, &intents) != 0 ||
      dv_json_get_object(d, "properties", &props) != 0 ||
      !json_is_string(json_object_get(props, "os")) ||
      !json_is_string(json_object_get(props, "browser")) ||
      !json_is_string(json_object_get(props, "device"))) {
    return violate(c, now, 4002, "identify: bad or missing fields");
  }
  json_object_foreach((json_t *)d, k, val) {
    if (strcmp(k, "token") != 0 && strcmp(k, "intents") != 0 &&
        strcmp(k, "properties") != 0 && strcmp(k, "shard") != 0 &&
        strcmp(k, "compress") != 0 && strcmp(k, "large_threshold") != 0 &&
        strcmp(k, "presence") != 0) {
      return violate(c, now, 4002, "identify: unknown field %.40s", k);
    }
  }
  if (json_object_get(d, "compress") != NULL &&
      !is_bool_member(d, "compress")) {
    return violate(c, now, 4002, "identify: compress not a boolean");
  }
  shard = json_object_get(d, "shard");
  if (shard != NULL) {
    json_t *a = json_array_get(shard, 0), *b = json_array_get(shard, 1);
    if (!json_is_array(shard) || json_array_size(shard) != 2 ||
        !json_is_integer(a) || !json_is_integer(b)) {
      return violate(c, now, 4002, "identify: bad shard");
    }
    if (json_integer_value(b) != 1 || json_integer_value(a) != 0) {
      /* The simulator runs one shard. */
      return violate(c, now, 4010, "identify: invalid shard");
    }
  }
  if ((uint64_t)intents & ~(uint64_t)INTENTS_KNOWN) {
    return violate(c, now, 4013, "identify: invalid intents");
  }
  bot = find_bot(gw, token, tlen);
  if (bot == NULL) {
    return violate(c, now, 4004, "identify: authentication failed");
  }
  s = dv_calloc(gmem(gw), 1, sizeof(*s));
  arr = s == NULL ? NULL
                  : dv_realloc(gmem(gw), gw->sessions,
                               (gw->nsessions + 1) * sizeof(*arr));
  if (s == NULL || arr == NULL) {
    dv_free(gmem(gw), s);
    return DVOICE_ERR_NOMEM;
  }
  gw->sessions = arr;
  gw->sessions[gw->nsessions++] = s;
  s->gw = gw;
  rand_hex(gw, s->session_id);
  memcpy(s->user_id, bot->user_id, sizeof(s->user_id));
  s->intents = (uint32_t)intents;
  s->alive = 1;
  s->conn = c;
  s->report.identifies = 1;
  s->report.connections = 1;
  c->session = s;
  c->state = DV_SIM_GW_BOUND;
  if (!(s->intents & INTENT_GUILD_VOICE_STATES)) {
    /* Not a close on Discord either: the bot just never hears its own
     * voice state. */
    rv = record(gw, s, now, 0,
                "identify: intents lack GUILD_VOICE_STATES (1<<7)");
    if (rv != 0) {
      return rv;
    }
  }
  {
    json_t *gl = json_array();
    for (size_t i = 0;
         gl != NULL && i < gw->nguilds && (s->intents & INTENT_GUILDS); i++) {
      char g[DV_SNOWFLAKE_STR_MAX];
      dv_json_snowflake_fmt(gw->guilds[i].id, g);
      json_array_append_new(gl,
                            json_pack("{s:s,s:b}", "id", g, "unavailable", 1));
    }
    ready =
        json_pack("{s:i,s:{s:s,s:s,s:s,s:b},s:o,s:s,s:s,s:{s:s,s:i}}", "v", 10,
                  "user", "id", s->user_id, "username", "dvoice-sim-bot",
                  "discriminator", "0", "bot", 1, "guilds", gl, "session_id",
                  s->session_id, "resume_gateway_url",
                  gw->resume_url != NULL ? gw->resume_url : "wss://127.0.0.1:1",
                  "application", "id", s->user_id, "flags", 0);
  }
  rv = dispatch(s, "READY", ready);
  for (size_t i = 0; rv == 0 && i < gw->nguilds; i++) {
    if (s->intents & INTENT_GUILDS) {
      rv = dispatch(s, "GUILD_CREATE", guild_json(s, &gw->guilds[i]));
    }
  }
  return rv;
}

static int on_resume(dv_sim_gw_conn *c, const json_t *d, dvoice_tstamp now) {
  dv_sim_gw *gw = c->gw;
  const char *token, *sid;
  size_t tlen, slen;
  int64_t seq;
  const dv_sim_gw_bot *bot;
  dv_sim_gw_session *s;
  int rv = 0;
  if (c->state == DV_SIM_GW_BOUND) {
    return violate(c, now, 4005, "resume on an identified connection");
  }
  if (!json_is_object(d) || dv_json_get_str(d, "token", &token, &tlen) != 0 ||
      dv_json_get_str(d, "session_id", &sid, &slen) != 0 ||
      dv_json_get_int(d, "seq", 0, DV_JSON_SAFE_INT_MAX, &seq) != 0 ||
      json_object_size(d) != 3) {
    return violate(c, now, 4002, "resume: bad or missing fields");
  }
  bot = find_bot(gw, token, tlen);
  if (bot == NULL) {
    return violate(c, now, 4004, "resume: authentication failed");
  }
  s = find_session_id(gw, sid, slen);
  if (s == NULL || !s->alive || strcmp(s->user_id, bot->user_id) != 0 ||
      (s->nreplay > 0 && seq + 1 < s->replay[0].seq)) {
    /* Gone or too old to replay: Discord answers op 9 false. */
    if (s != NULL) {
      s->report.resume_failures++;
    }
    return send_op(c, 9, json_false());
  }
  if (seq > s->seq) {
    s->report.resume_failures++;
    c->session = s;
    return violate(c, now, 4007, "resume: seq %lld beyond %lld", (long long)seq,
                   (long long)s->seq);
  }
  if (s->conn != NULL && s->conn != c) {
    /* The old connection is superseded. */
    rv = close_conn(s->conn, 4000, now);
  }
  s->conn = c;
  c->session = s;
  c->state = DV_SIM_GW_BOUND;
  s->report.resumes++;
  s->report.connections++;
  for (size_t i = 0; rv == 0 && i < s->nreplay; i++) {
    if (s->replay[i].seq > seq) {
      rv = queue_out(c, DV_SIM_OUT_TEXT, 0, s->replay[i].text.data,
                     s->replay[i].text.len);
      s->report.replayed++;
    }
  }
  if (rv == 0) {
    rv = dispatch(s, "RESUMED", json_object());
  }
  return rv;
}

static int on_voice_state_update(dv_sim_gw_conn *c, const json_t *d,
                                 dvoice_tstamp now) {
  dv_sim_gw_session *s = c->session;
  uint64_t guild, channel = 0;
  const json_t *ch;
  dv_sim_gw_voice *v;
  int self_mute, self_deaf, rv;
  if (!json_is_object(d) || dv_json_get_snowflake(d, "guild_id", &guild) != 0 ||
      guild == 0 || (ch = json_object_get(d, "channel_id")) == NULL ||
      (!json_is_null(ch) &&
       (dv_json_snowflake_value(ch, &channel) != 0 || channel == 0)) ||
      !is_bool_member(d, "self_mute") || !is_bool_member(d, "self_deaf") ||
      json_object_size(d) != 4) {
    return violate(c, now, 4002, "op 4: bad shape");
  }
  if (s->report.voice_state_updates < DV_SIM_GW_OP4_LOG) {
    s->report.op4_channels[s->report.voice_state_updates] = channel;
  }
  s->report.voice_state_updates++;
  self_mute = json_is_true(json_object_get(d, "self_mute"));
  self_deaf = json_is_true(json_object_get(d, "self_deaf"));
  v = voice_get(s, guild);
  if (v == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  if (channel == 0) {
    char vsid[33] = "";
    if (v->channel_id == 0) {
      return 0; /* not in a channel: nothing happens */
    }
    if (v->vs != NULL) {
      snprintf(vsid, sizeof(vsid), "%s", v->vs->session_id);
    }
    v->channel_id = 0;
    rv = 0;
    if (s->intents & INTENT_GUILD_VOICE_STATES) {
      rv = dispatch(s, "VOICE_STATE_UPDATE",
                    voice_state_json(s, guild, 0, vsid, self_mute, self_deaf));
    }
    if (rv == 0) {
      rv = end_voice(v, now);
    }
    return rv;
  }
  /* Join or move (the client drops its old voice connection itself). */
  v->vs = NULL;
  return announce_join(s, v, channel, v->channel_id ? v->server : 0, self_mute,
                       self_deaf, now);
}

int dv_sim_gw_conn_recv(dv_sim_gw_conn *c, int binary, const uint8_t *p,
                        size_t len, dvoice_tstamp now) {
  dv_json_envelope e;
  int rv;
  if (c->state == DV_SIM_GW_CLOSED) {
    return DVOICE_ERR_INVALID_STATE;
  }
  if (rate_exceeded(c, now)) {
    return violate(c, now, 4008, "more than %lu messages in %lu ms",
                   (unsigned long)c->gw->settings.rate_limit,
                   (unsigned long)c->gw->settings.rate_window_ms);
  }
  if (binary) {
    return violate(c, now, 4002, "binary frame on a JSON gateway");
  }
  rv = dv_json_envelope_parse(&e, (const char *)p, len, "s");
  if (rv == DVOICE_ERR_NOMEM) {
    return rv;
  }
  if (rv != 0) {
    return violate(c, now, 4002, "not a gateway payload");
  }
  switch (e.op) {
    case 1: {
      dv_sim_gw_session *s = c->session;
      if (e.d != NULL && !json_is_null(e.d) &&
          (!json_is_integer(e.d) || json_integer_value(e.d) < 0)) {
        rv = violate(c, now, 4002, "heartbeat: d not an integer or null");
        break;
      }
      if (s != NULL && json_is_integer(e.d) &&
          json_integer_value(e.d) > s->seq) {
        rv = record(c->gw, s, now, 0, "heartbeat: seq %lld never sent",
                    (long long)json_integer_value(e.d));
      }
      c->hb_deadline = now + hb_timeout(c->gw);
      if (s != NULL) {
        s->report.heartbeats++;
      }
      if (rv == 0 && s != NULL && s->drop_acks) {
        s->report.acks_dropped++;
      } else if (rv == 0) {
        rv = send_text(c, "{\"op\":11}");
        if (s != NULL) {
          s->report.acks_sent++;
        }
      }
      break;
    }
    case 2:
      rv = on_identify(c, e.d, now);
      break;
    case 6:
      rv = on_resume(c, e.d, now);
      break;
    case 3:
    case 4:
    case 8:
      if (c->state != DV_SIM_GW_BOUND) {
        rv = violate(c, now, 4003, "op %d before identify", e.op);
      } else if (e.op == 4) {
        rv = on_voice_state_update(c, e.d, now);
      } else if (!json_is_object(e.d)) {
        rv = violate(c, now, 4002, "op %d: d not an object", e.op);
      }
      break;
    default:
      rv = violate(c, now, 4001, "unknown opcode %d", e.op);
      break;
  }
  dv_json_envelope_free(&e);
  return rv;
}

/* ---- commands ----------------------------------------------------------- */

int dv_sim_gw_move(dv_sim_gw_session *s, uint64_t guild_id, uint64_t channel_id,
                   dvoice_tstamp now) {
  dv_sim_gw_voice *v = dv_sim_gw_voice_state(s, guild_id);
  int rv;
  if (v == NULL || v->channel_id == 0 || channel_id == 0) {
    return DVOICE_ERR_NOT_FOUND;
  }
  rv = end_voice(v, now);
  return rv != 0 ? rv : announce_join(s, v, channel_id, v->server, 0, 0, now);
}

int dv_sim_gw_region_change(dv_sim_gw_session *s, uint64_t guild_id,
                            dvoice_tstamp now) {
  dv_sim_gw_voice *v = dv_sim_gw_voice_state(s, guild_id);
  char tok[33];
  int rv;
  if (v == NULL || v->channel_id == 0) {
    return DVOICE_ERR_NOT_FOUND;
  }
  rand_hex(s->gw, tok);
  rv = dispatch(s, "VOICE_SERVER_UPDATE",
                voice_server_json(s, guild_id, tok, -1));
  if (rv == 0) {
    rv = end_voice(v, now);
  }
  if (rv == 0) {
    rv = announce_join(s, v, v->channel_id, (v->server + 1) % s->gw->nvoice, 0,
                       0, now);
  }
  return rv;
}

int dv_sim_gw_kick(dv_sim_gw_session *s, uint64_t guild_id, dvoice_tstamp now) {
  dv_sim_gw_voice *v = dv_sim_gw_voice_state(s, guild_id);
  int rv = 0;
  if (v == NULL || v->channel_id == 0) {
    return DVOICE_ERR_NOT_FOUND;
  }
  v->channel_id = 0;
  if (s->intents & INTENT_GUILD_VOICE_STATES) {
    rv = dispatch(s, "VOICE_STATE_UPDATE",
                  voice_state_json(s, guild_id, 0,
                                   v->vs != NULL ? v->vs->session_id : "", 0,
                                   0));
  }
  if (rv == 0) {
    rv = end_voice(v, now);
  }
  return rv;
}

int dv_sim_gw_invalidate(dv_sim_gw_session *s, dvoice_tstamp now) {
  dv_sim_gw_conn *c = s->conn;
  int rv;
  if (!s->alive) {
    return DVOICE_ERR_INVALID_STATE;
  }
  s->alive = 0;
  rv = end_all_voice(s, now);
  if (c != NULL) {
    int r2 = send_op(c, 9, json_false());
    c->session = NULL;
    c->state = DV_SIM_GW_AWAIT_IDENTIFY;
    s->conn = NULL;
    rv = rv != 0 ? rv : r2;
  }
  return rv;
}

int dv_sim_gw_request_reconnect(dv_sim_gw_session *s, dvoice_tstamp now) {
  (void)now;
  if (s->conn == NULL) {
    return DVOICE_ERR_INVALID_STATE;
  }
  return send_op(s->conn, 7, NULL);
}

int dv_sim_gw_dispatch(dv_sim_gw_session *s, const char *name,
                       const char *d_json, dvoice_tstamp now) {
  json_t *d = json_loads(d_json, JSON_DECODE_ANY, NULL);
  (void)now;
  if (d == NULL || name == NULL) {
    json_decref(d);
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return dispatch(s, name, d);
}

/* ---- time --------------------------------------------------------------- */

dvoice_tstamp dv_sim_gw_get_expiry(const dv_sim_gw *gw) {
  dvoice_tstamp e = DVOICE_TSTAMP_NONE;
  for (size_t i = 0; i < gw->nconns; i++) {
    if (gw->conns[i]->hb_deadline < e) {
      e = gw->conns[i]->hb_deadline;
    }
  }
  return e;
}

int dv_sim_gw_handle_expiry(dv_sim_gw *gw, dvoice_tstamp now) {
  int rv = 0;
  for (size_t i = 0; i < gw->nconns && rv == 0; i++) {
    dv_sim_gw_conn *c = gw->conns[i];
    if (c->state != DV_SIM_GW_CLOSED && c->hb_deadline <= now) {
      rv = violate(c, now, 4009, "no heartbeat within %lu ms",
                   (unsigned long)(gw->settings.heartbeat_interval_ms +
                                   gw->settings.heartbeat_grace_ms));
    }
  }
  return rv;
}

/* ---- report ------------------------------------------------------------- */

/* The recorded op 4 channels as snowflake strings, null for a leave. */
static json_t *op4_json(const dv_sim_gw_report *r) {
  json_t *a = json_array();
  size_t n = r->voice_state_updates < DV_SIM_GW_OP4_LOG ? r->voice_state_updates
                                                        : DV_SIM_GW_OP4_LOG;
  char id[DV_SNOWFLAKE_STR_MAX];
  for (size_t i = 0; a != NULL && i < n; i++) {
    if (r->op4_channels[i] == 0) {
      json_array_append_new(a, json_null());
    } else {
      dv_json_snowflake_fmt(r->op4_channels[i], id);
      json_array_append_new(a, json_string(id));
    }
  }
  return a;
}

static json_t *violations_json(const dv_sim_violations *l) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < l->n; i++) {
    json_array_append_new(a, json_pack("{s:I,s:i,s:s}", "when_ms",
                                       (json_int_t)(l->v[i].when / DVOICE_MS),
                                       "close_code", l->v[i].close_code, "what",
                                       l->v[i].what));
  }
  return a;
}

int dv_sim_gw_report_json(const dv_sim_gw *gw, dv_buf *out) {
  json_t *root, *arr;
  int rv;
  arr = json_array();
  for (size_t i = 0; arr != NULL && i < gw->nsessions; i++) {
    const dv_sim_gw_session *s = gw->sessions[i];
    const dv_sim_gw_report *r = &s->report;
    json_array_append_new(
        arr,
        json_pack(
            "{s:s,s:s,s:b,s:I,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,"
            "s:i,s:o,s:o}",
            "session_id", s->session_id, "user_id", s->user_id, "alive",
            s->alive, "seq", (json_int_t)s->seq, "identifies",
            (int)r->identifies, "resumes", (int)r->resumes, "resume_failures",
            (int)r->resume_failures, "connections", (int)r->connections,
            "heartbeats", (int)r->heartbeats, "acks_sent", (int)r->acks_sent,
            "acks_dropped", (int)r->acks_dropped, "voice_state_updates",
            (int)r->voice_state_updates, "dispatches", (int)r->dispatches,
            "replayed", (int)r->replayed, "last_close_code", r->last_close_code,
            "violations", violations_json(&r->violations), "op4_channels",
            op4_json(r)));
  }
  root = arr == NULL
             ? NULL
             : json_pack("{s:o,s:o}", "violations",
                         violations_json(&gw->violations), "sessions", arr);
  if (root == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  rv = dv_json_append_value(out, root);
  json_decref(root);
  return rv == 0 ? 0 : DVOICE_ERR_NOMEM;
}
