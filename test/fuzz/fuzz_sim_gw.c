/*
 * Fuzz target for the simulator's main gateway core (test/sim/sim_gw): the
 * input is a script of client messages (raw or canned valid ones), new
 * connections, peer closes, time steps and misbehaviour commands. After
 * each step every queued frame is popped. Invariants: a closed connection
 * queues nothing more; no crash, leak or sanitizer report.
 *
 * Script format, repeated (first byte of a step % 8):
 *   0 TEXT u16 len, bytes   1 NEW CONNECTION     2 ADVANCE u16 ms
 *   3 PEER CLOSE u16 code   4 COMMAND u8 which   5 CANNED u8 index
 *   6 BINARY u8 len, bytes  7 SERVER CLOSE u16 code
 */
#include <stdlib.h>
#include <string.h>

#include "../sim/sim_gw.h"
#include "../sim/sim_vgw.h"
#include "util/dv_rw.h"

#define TOKEN "FUZZ.TOKEN"

static const char *const canned[] = {
    "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":129,\"properties\":"
    "{\"os\":\"l\",\"browser\":\"b\",\"device\":\"d\"}}}",
    "{\"op\":1,\"d\":null}",
    "{\"op\":1,\"d\":3}",
    "{\"op\":4,\"d\":{\"guild_id\":\"7\",\"channel_id\":\"8\",\"self_mute\":"
    "false,\"self_deaf\":true}}",
    "{\"op\":4,\"d\":{\"guild_id\":\"7\",\"channel_id\":null,\"self_mute\":"
    "false,\"self_deaf\":false}}",
    "{\"op\":6,\"d\":{\"token\":\"" TOKEN "\",\"session_id\":\"x\",\"seq\":1}}",
    "{\"op\":3,\"d\":{}}",
    "{\"op\":2,\"d\":{\"token\":\"" TOKEN "\",\"intents\":1,\"properties\":"
    "{\"os\":\"l\",\"browser\":\"b\",\"device\":\"d\"},\"shard\":[0,1]}}",
};

static void rand_cb(void *ud, uint8_t *dest, size_t len) {
  uint8_t *c = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = (*c)++;
  }
}

#define MAXC 8

static void drain(dv_sim_gw_conn **conns, int n) {
  dv_sim_out o;
  for (int i = 0; i < n; i++) {
    int closed = 0;
    while (dv_sim_gw_conn_pop(conns[i], &o)) {
      if (closed) {
        abort(); /* nothing after a close frame */
      }
      closed = o.kind == DV_SIM_OUT_CLOSE;
      dv_buf_free(&o.data);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dvoice_env env;
  uint8_t rnd = 0;
  dv_sim_vgw *vgw[2];
  dv_sim_gw *gw;
  dv_sim_gw_conn *conns[MAXC];
  int nconns = 0;
  dvoice_tstamp now = 0;
  dv_rd r;
  dvoice_env_default(&env);
  env.rand = rand_cb;
  env.rand_user_data = &rnd;
  if (dv_sim_vgw_new(&env, NULL, &vgw[0]) != 0 ||
      dv_sim_vgw_new(&env, NULL, &vgw[1]) != 0 ||
      dv_sim_gw_new(&env, NULL, &gw) != 0 ||
      dv_sim_gw_add_voice_server(gw, vgw[0], "a:1") != 0 ||
      dv_sim_gw_add_voice_server(gw, vgw[1], "b:2") != 1 ||
      dv_sim_gw_add_bot(gw, TOKEN, 99) != 0 ||
      dv_sim_gw_conn_new(gw, now, &conns[0]) != 0) {
    abort();
  }
  nconns = 1;
  dv_rd_init(&r, data, size);
  while (dv_rd_left(&r) > 0) {
    uint8_t cmd, u8;
    uint16_t u16;
    const uint8_t *p;
    size_t n;
    dv_sim_gw_conn *c = conns[nconns - 1];
    dv_sim_gw_session *s = dv_sim_gw_find_session(gw, "99");
    (void)dv_rd_u8(&r, &cmd);
    switch (cmd % 8) {
      case 0:
        if (dv_rd_u16(&r, &u16) != 0) {
          break;
        }
        n = u16 < dv_rd_left(&r) ? u16 : dv_rd_left(&r);
        (void)dv_rd_bytes(&r, &p, n);
        (void)dv_sim_gw_conn_recv(c, 0, p, n, now);
        break;
      case 1:
        if (nconns < MAXC && dv_sim_gw_conn_new(gw, now, &c) == 0) {
          conns[nconns++] = c;
        }
        break;
      case 2:
        if (dv_rd_u16(&r, &u16) == 0) {
          now += (dvoice_tstamp)u16 * DVOICE_MS * 16;
          if (dv_sim_gw_get_expiry(gw) <= now) {
            (void)dv_sim_gw_handle_expiry(gw, now);
          }
          (void)dv_sim_vgw_handle_expiry(vgw[0], now);
          (void)dv_sim_vgw_handle_expiry(vgw[1], now);
        }
        break;
      case 3:
        if (dv_rd_u16(&r, &u16) == 0) {
          dv_sim_gw_conn_peer_closed(c, u16, now);
        }
        break;
      case 4:
        if (dv_rd_u8(&r, &u8) != 0 || s == NULL) {
          break;
        }
        switch (u8 % 6) {
          case 0:
            (void)dv_sim_gw_move(s, 7, 9 + u8, now);
            break;
          case 1:
            (void)dv_sim_gw_region_change(s, 7, now);
            break;
          case 2:
            (void)dv_sim_gw_kick(s, 7, now);
            break;
          case 3:
            (void)dv_sim_gw_invalidate(s, now);
            break;
          case 4:
            (void)dv_sim_gw_request_reconnect(s, now);
            break;
          case 5:
            s->drop_acks = !s->drop_acks;
            break;
        }
        break;
      case 5:
        if (dv_rd_u8(&r, &u8) == 0) {
          const char *m = canned[u8 % (sizeof(canned) / sizeof(canned[0]))];
          (void)dv_sim_gw_conn_recv(c, 0, (const uint8_t *)m, strlen(m), now);
        }
        break;
      case 6:
        if (dv_rd_u8(&r, &u8) == 0) {
          n = u8 < dv_rd_left(&r) ? u8 : dv_rd_left(&r);
          (void)dv_rd_bytes(&r, &p, n);
          (void)dv_sim_gw_conn_recv(c, 1, p, n, now);
        }
        break;
      case 7:
        if (dv_rd_u16(&r, &u16) == 0) {
          (void)dv_sim_gw_conn_close(c, u16, now);
        }
        break;
    }
    drain(conns, nconns);
  }
  {
    dv_buf b;
    dv_buf_init(&b, NULL);
    (void)dv_sim_gw_report_json(gw, &b);
    dv_buf_free(&b);
  }
  dv_sim_gw_free(gw);
  dv_sim_vgw_free(vgw[0]);
  dv_sim_vgw_free(vgw[1]);
  return 0;
}
