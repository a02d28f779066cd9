/*
 * The public simulator object (include/dvoice/sim.h): a main gateway and
 * two voice simulators on one loop, with a generated certificate.
 */
#include <dvoice/sim.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "../unit/tls_testca.h"
#include "json/dv_json.h"
#include "sim_gw_uv.h"
#include "sim_uv.h"
#include "util/dv_buf.h"
#include "util/dv_mem.h"
#include "uv/dv_uv_env.h"

#define NVOICE 2

struct dvoice_sim {
  dvoice_env env;
  dv_sim_gw_uv *gw;
  dv_sim_uv *voice[NVOICE];
  char dir[256];
  int own_dir;
  char ca[300], cert[300], key[300];
  int have_certs;
  char gateway_url[128];
  char api_url[128];
  int closing;
  int pending;
  void (*close_cb)(dvoice_sim *sim, void *user_data);
  void *close_ud;
};

void dvoice_sim_settings_default(dvoice_sim_settings *s) {
  if (s != NULL) {
    memset(s, 0, sizeof(*s));
  }
}

static void remove_files(dvoice_sim *sim) {
  if (sim->have_certs) {
    (void)unlink(sim->ca);
    (void)unlink(sim->cert);
    (void)unlink(sim->key);
  }
  if (sim->own_dir) {
    (void)rmdir(sim->dir);
  }
}

static int make_certs(dvoice_sim *sim, const char *dir) {
  dvt_testca *pki;
  uint32_t seed;
  int rv = 0;
  if (dir != NULL) {
    if (strlen(dir) >= sizeof(sim->dir) - 16) {
      return DVOICE_ERR_INVALID_ARGUMENT;
    }
    snprintf(sim->dir, sizeof(sim->dir), "%s", dir);
  } else {
    snprintf(sim->dir, sizeof(sim->dir), "/tmp/dvoice-sim-XXXXXX");
    if (mkdtemp(sim->dir) == NULL) {
      return DVOICE_ERR_TLS;
    }
    sim->own_dir = 1;
  }
  snprintf(sim->ca, sizeof(sim->ca), "%s/ca.pem", sim->dir);
  snprintf(sim->cert, sizeof(sim->cert), "%s/server.pem", sim->dir);
  snprintf(sim->key, sizeof(sim->key), "%s/server.key", sim->dir);
  pki = dv_calloc(sim->env.mem, 1, sizeof(*pki));
  if (pki == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  /* A fresh key pair per run, drawn through the random hook. */
  sim->env.rand(sim->env.rand_user_data, (uint8_t *)&seed, sizeof(seed));
  if (dvt_testca_generate(pki, "localhost", seed) != 0 ||
      dvt_testca_write_file(sim->ca, pki->ca_pem) != 0 ||
      dvt_testca_write_file(sim->cert, pki->cert_pem) != 0 ||
      dvt_testca_write_file(sim->key, pki->key_pem) != 0) {
    rv = DVOICE_ERR_TLS;
  }
  sim->have_certs = 1;
  dv_free_secret(sim->env.mem, pki, sizeof(*pki));
  return rv;
}

static void part_closed(dvoice_sim *sim) {
  if (--sim->pending > 0) {
    return;
  }
  remove_files(sim);
  if (sim->close_cb != NULL) {
    sim->close_cb(sim, sim->close_ud);
  }
  dv_free(sim->env.mem, sim);
}

static void gw_closed(dv_sim_gw_uv *g, void *ud) {
  (void)g;
  part_closed(ud);
}

static void voice_closed(dv_sim_uv *v, void *ud) {
  (void)v;
  part_closed(ud);
}

/* Closes whatever was started; |sim| is freed when all of it is gone. */
static void close_parts(dvoice_sim *sim) {
  sim->closing = 1;
  sim->pending = 1; /* released below */
  if (sim->gw != NULL && dv_sim_gw_uv_close(sim->gw, gw_closed, sim) == 0) {
    sim->pending++;
  }
  for (int i = 0; i < NVOICE; i++) {
    if (sim->voice[i] != NULL &&
        dv_sim_uv_close(sim->voice[i], voice_closed, sim) == 0) {
      sim->pending++;
    }
  }
  part_closed(sim);
}

int dvoice_sim_start(struct uv_loop_s *loop,
                     const dvoice_sim_settings *settings, dvoice_sim **out) {
  dvoice_sim_settings defaults;
  dv_sim_gw_uv_settings gs;
  dv_sim_uv_settings vs;
  dvoice_sim *sim;
  dvoice_env env;
  int rv;
  if (loop == NULL || out == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  *out = NULL;
  if (settings == NULL) {
    dvoice_sim_settings_default(&defaults);
    settings = &defaults;
  }
  rv = dv_uv_env_resolve(&env, settings->env);
  if (rv != 0) {
    return rv;
  }
  sim = dv_calloc(env.mem, 1, sizeof(*sim));
  if (sim == NULL) {
    return DVOICE_ERR_NOMEM;
  }
  sim->env = env;
  if (!settings->plain) {
    rv = make_certs(sim, settings->dir);
    if (rv != 0) {
      remove_files(sim);
      dv_free(env.mem, sim);
      return rv;
    }
  }
  for (int i = 0; i < NVOICE && rv == 0; i++) {
    dv_sim_uv_settings_default(&vs);
    vs.env = &sim->env;
    vs.host = settings->host;
    if (settings->voice_heartbeat_interval_ms != 0) {
      vs.vgw.heartbeat_interval_ms = settings->voice_heartbeat_interval_ms;
    }
    if (sim->have_certs) {
      vs.cert_file = sim->cert;
      vs.key_file = sim->key;
    }
    rv = dv_sim_uv_new(loop, &vs, &sim->voice[i]);
  }
  if (rv == 0) {
    dv_sim_gw_uv_settings_default(&gs);
    gs.env = &sim->env;
    gs.host = settings->host;
    gs.url_host = sim->have_certs ? "localhost" : NULL;
    gs.port = settings->gateway_port;
    if (settings->heartbeat_interval_ms != 0) {
      gs.gw.heartbeat_interval_ms = settings->heartbeat_interval_ms;
    }
    if (sim->have_certs) {
      gs.cert_file = sim->cert;
      gs.key_file = sim->key;
    }
    rv = dv_sim_gw_uv_new(loop, &gs, &sim->gw);
  }
  for (int i = 0; i < NVOICE && rv == 0; i++) {
    rv = dv_sim_gw_uv_attach_voice(sim->gw, sim->voice[i]);
    rv = rv >= 0 ? 0 : rv;
  }
  if (rv != 0) {
    close_parts(sim);
    return rv;
  }
  snprintf(sim->gateway_url, sizeof(sim->gateway_url), "%s/?v=10&encoding=json",
           dv_sim_gw_uv_url(sim->gw));
  snprintf(sim->api_url, sizeof(sim->api_url), "%s://%s:%u/api/v10",
           sim->have_certs ? "https" : "http",
           sim->have_certs ? "localhost"
                           : (settings->host ? settings->host : "127.0.0.1"),
           (unsigned)dv_sim_gw_uv_port(sim->gw));
  *out = sim;
  return 0;
}

const char *dvoice_sim_gateway_url(const dvoice_sim *sim) {
  return sim->gateway_url;
}

const char *dvoice_sim_api_url(const dvoice_sim *sim) {
  return sim->api_url;
}

const char *dvoice_sim_ca_file(const dvoice_sim *sim) {
  return sim->have_certs ? sim->ca : NULL;
}

const char *dvoice_sim_voice_endpoint(const dvoice_sim *sim, int i) {
  return dv_sim_gw_uv_voice_endpoint(sim->gw, i);
}

int dvoice_sim_add_bot(dvoice_sim *sim, const char *token, uint64_t user_id) {
  if (sim == NULL || sim->closing) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return dv_sim_gw_add_bot(dv_sim_gw_uv_core(sim->gw), token, user_id);
}

int dvoice_sim_add_guild(dvoice_sim *sim, uint64_t guild_id,
                         const uint64_t *voice_channel_ids, size_t n) {
  if (sim == NULL || sim->closing) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  return dv_sim_gw_add_guild(dv_sim_gw_uv_core(sim->gw), guild_id,
                             voice_channel_ids, n);
}

int dvoice_sim_command_run(dvoice_sim *sim, dvoice_sim_command cmd,
                           uint64_t user_id, uint64_t guild_id, uint64_t arg) {
  char uid[DV_SNOWFLAKE_STR_MAX];
  dv_sim_gw_session *s;
  dv_sim_gw_voice *v;
  dvoice_tstamp now;
  int rv;
  if (sim == NULL || sim->closing) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_json_snowflake_fmt(user_id, uid);
  s = dv_sim_gw_find_session(dv_sim_gw_uv_core(sim->gw), uid);
  if (s == NULL) {
    return DVOICE_ERR_NOT_FOUND;
  }
  now = dv_uv_env_now(&sim->env);
  switch (cmd) {
    case DVOICE_SIM_MOVE:
      rv = dv_sim_gw_move(s, guild_id, arg, now);
      break;
    case DVOICE_SIM_REGION_CHANGE:
      rv = dv_sim_gw_region_change(s, guild_id, now);
      break;
    case DVOICE_SIM_KICK:
      rv = dv_sim_gw_kick(s, guild_id, now);
      break;
    case DVOICE_SIM_INVALIDATE_SESSION:
      rv = dv_sim_gw_invalidate(s, now);
      break;
    case DVOICE_SIM_RECONNECT:
      rv = dv_sim_gw_request_reconnect(s, now);
      break;
    case DVOICE_SIM_DROP_ACKS:
      s->drop_acks = arg != 0;
      rv = 0;
      break;
    case DVOICE_SIM_CLOSE_GATEWAY:
      if (arg < 1000 || arg > 4999) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
      rv = s->conn != NULL ? dv_sim_gw_conn_close(s->conn, (int)arg, now)
                           : DVOICE_ERR_INVALID_STATE;
      break;
    case DVOICE_SIM_CLOSE_VOICE:
      if (arg < 1000 || arg > 4999) {
        return DVOICE_ERR_INVALID_ARGUMENT;
      }
      v = dv_sim_gw_voice_state(s, guild_id);
      if (v == NULL || v->vs == NULL) {
        return DVOICE_ERR_NOT_FOUND;
      }
      rv = dv_sim_vgw_session_close(v->vs, (int)arg, now);
      break;
    default:
      return DVOICE_ERR_INVALID_ARGUMENT;
  }
  dv_sim_gw_uv_flush(sim->gw);
  return rv;
}

long dvoice_sim_report(const dvoice_sim *sim, char *buf, size_t cap) {
  dv_buf b;
  int rv;
  long n;
  dv_buf_init(&b, sim->env.mem);
  rv = dv_buf_append_str(&b, "{\"gateway\":");
  if (rv == 0) {
    rv = dv_sim_gw_report_json(dv_sim_gw_uv_core(sim->gw), &b);
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, ",\"voice\":[");
  }
  for (int i = 0; i < NVOICE && rv == 0; i++) {
    if (i > 0) {
      rv = dv_buf_push(&b, ',');
    }
    if (rv == 0) {
      rv = dv_sim_vgw_report_json(dv_sim_uv_vgw(sim->voice[i]), &b);
    }
  }
  if (rv == 0) {
    rv = dv_buf_append_str(&b, "]}");
  }
  if (rv != 0) {
    dv_buf_free(&b);
    return DVOICE_ERR_NOMEM;
  }
  if (cap > 0) {
    size_t k = b.len < cap - 1 ? b.len : cap - 1;
    memcpy(buf, b.data, k);
    buf[k] = 0;
  }
  n = (long)b.len;
  dv_buf_free(&b);
  return n;
}

size_t dvoice_sim_violation_count(const dvoice_sim *sim) {
  const dv_sim_gw *gw = dv_sim_gw_uv_core(sim->gw);
  size_t n = gw->violations.n;
  for (size_t i = 0; i < gw->nsessions; i++) {
    n += gw->sessions[i]->report.violations.n;
  }
  for (int i = 0; i < NVOICE; i++) {
    const dv_sim_vgw *vgw = dv_sim_uv_vgw(sim->voice[i]);
    n += vgw->violations.n;
    for (size_t j = 0; j < vgw->nsessions; j++) {
      n += vgw->sessions[j]->report.violations.n;
    }
  }
  return n;
}

int dvoice_sim_close(dvoice_sim *sim,
                     void (*close_cb)(dvoice_sim *sim, void *user_data),
                     void *user_data) {
  if (sim == NULL) {
    return DVOICE_ERR_INVALID_ARGUMENT;
  }
  if (sim->closing) {
    return DVOICE_ERR_INVALID_STATE;
  }
  sim->close_cb = close_cb;
  sim->close_ud = user_data;
  close_parts(sim);
  return 0;
}
