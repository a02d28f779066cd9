/*
 * Fuzz target for the simulator's cores (test/sim): the voice gateway
 * server parsing client messages and the media server parsing datagrams.
 * The input is a script of steps; canned valid messages and packets let the
 * fuzzer reach the deep states (bound, active, media flowing) quickly.
 *
 * Script format, repeated until the input ends (first byte of a step % 10):
 *   0 CONNECT                     1 TEXT   u8 conn, u16 len, bytes
 *   2 BINARY u8 conn, u16 len, bytes
 *   3 ADVANCE u16 ms, modulo 2 s (runs both cores' deadlines)
 *   4 PEER CLOSE u8 conn, u16 code
 *   5 DGRAM u8 from, u16 len, bytes
 *   6 CANNED u8 conn, u8 index (identify, resume, select, speaking, ...)
 *   7 SERVER CLOSE u8 conn, u16 code
 *   8 SPEAKER u8 (even: start, odd: stop)
 *   9 RTP u8 from, u8 session, u16 seq (a valid packet for that session)
 * Invariants: no crash, leak or sanitizer report; every popped close frame
 * leaves its connection closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sim/sim_crypt.h"
#include "../sim/sim_media.h"
#include "../sim/sim_vgw.h"
#include "util/dv_rw.h"

#define NCONN 4
#define SERVER "41771983423143937"

typedef struct fz {
  uint8_t rnd;
  dvoice_tstamp now;
  dv_sim_vgw *vgw;
  dv_sim_media *m;
  dv_sim_session *s[2];
  dv_sim_vgw_conn *c[NCONN];
  dv_sim_speaker *sp;
} fz;

static void fz_rand(void *ud, uint8_t *dest, size_t len) {
  fz *f = ud;
  for (size_t i = 0; i < len; i++) {
    dest[i] = f->rnd++;
  }
}

static void drain(fz *f) {
  dv_sim_out o;
  dv_sim_dgram d;
  for (int i = 0; i < NCONN; i++) {
    if (f->c[i] == NULL) {
      continue;
    }
    while (dv_sim_vgw_conn_pop(f->c[i], &o)) {
      if (o.kind == DV_SIM_OUT_CLOSE && f->c[i]->state != DV_SIM_CONN_CLOSED) {
        abort();
      }
      dv_buf_free(&o.data);
    }
  }
  while (dv_sim_media_pop(f->m, &d)) {
    dv_buf_free(&d.data);
  }
}

static int take(const uint8_t **p, size_t *n, size_t k) {
  if (*n < k) {
    return 0;
  }
  *p += k;
  *n -= k;
  return 1;
}

static void canned(fz *f, dv_sim_vgw_conn *c, unsigned idx) {
  char buf[512];
  const dv_sim_session *s = f->s[idx & 1];
  int n = 0;
  switch ((idx >> 1) % 8) {
    case 0:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":0,\"d\":{\"server_id\":\"%s\",\"user_id\":\"%s\","
                   "\"session_id\":\"%s\",\"token\":\"%s\","
                   "\"max_dave_protocol_version\":1}}",
                   s->server_id, s->user_id, s->session_id, s->token);
      break;
    case 1:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":7,\"d\":{\"server_id\":\"%s\","
                   "\"session_id\":\"%s\",\"token\":\"%s\",\"seq_ack\":%d}}",
                   s->server_id, s->session_id, s->token, (int)(idx >> 4) - 1);
      break;
    case 2:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{"
                   "\"address\":\"127.0.0.1\",\"port\":4000%u,"
                   "\"mode\":\"aead_aes256_gcm_rtpsize\"}}}",
                   idx & 1);
      break;
    case 3:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":1,\"d\":{\"protocol\":\"udp\",\"data\":{"
                   "\"address\":\"127.0.0.1\",\"port\":4000%u,"
                   "\"mode\":\"aead_xchacha20_poly1305_rtpsize\"}}}",
                   idx & 1);
      break;
    case 4:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":5,\"d\":{\"speaking\":1,\"delay\":0,\"ssrc\":%u}}",
                   s->ssrc);
      break;
    case 5:
      n = snprintf(buf, sizeof(buf),
                   "{\"op\":3,\"d\":{\"t\":%u,\"seq_ack\":%d}}", idx,
                   (int)(idx >> 4) - 1);
      break;
    case 6:
      n = snprintf(buf, sizeof(buf), "{\"op\":3,\"d\":{\"t\":1}}");
      break;
    default:
      n = snprintf(buf, sizeof(buf), "{\"op\":23,\"d\":{\"transition_id\":1}}");
      break;
  }
  (void)dv_sim_vgw_conn_recv(c, 0, (const uint8_t *)buf, (size_t)n, f->now);
}

static void addr_of(unsigned i, dv_sim_addr *a) {
  a->ip = 0x7f000001u;
  a->port = (uint16_t)(40000 + (i & 3));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dvoice_env env;
  fz f;
  const uint8_t *p = data;
  size_t n = size;
  memset(&f, 0, sizeof(f));
  dvoice_env_default(&env);
  env.rand = fz_rand;
  env.rand_user_data = &f;
  if (dv_sim_vgw_new(&env, NULL, &f.vgw) != 0) {
    abort();
  }
  if (dv_sim_media_new(&env, f.vgw, NULL, &f.m) != 0 ||
      dv_sim_vgw_add_session(f.vgw, SERVER, "104694319306248192", "sess-a",
                             "tok-a", &f.s[0]) != 0 ||
      dv_sim_vgw_add_session(f.vgw, SERVER, "104694319306248193", "sess-b",
                             "tok-b", &f.s[1]) != 0) {
    abort();
  }
  while (n > 0) {
    unsigned step = p[0] % 10;
    const uint8_t *a = p + 1;
    dv_sim_addr from;
    if (!take(&p, &n, 1)) {
      break;
    }
    switch (step) {
      case 0:
        for (int i = 0; i < NCONN; i++) {
          if (f.c[i] == NULL) {
            if (dv_sim_vgw_conn_new(f.vgw, f.now, &f.c[i]) != 0) {
              abort();
            }
            break;
          }
        }
        break;
      case 1:
      case 2: {
        uint16_t len;
        dv_sim_vgw_conn *c;
        if (!take(&p, &n, 3)) {
          n = 0;
          break;
        }
        c = f.c[a[0] % NCONN];
        len = dv_get_u16(a + 1);
        if (len > n) {
          len = (uint16_t)n;
        }
        if (c != NULL) {
          (void)dv_sim_vgw_conn_recv(c, step == 2, p, len, f.now);
        }
        take(&p, &n, len);
        break;
      }
      case 3:
        if (!take(&p, &n, 2)) {
          n = 0;
          break;
        }
        /* Bounded so a fake speaker does not encode minutes of Opus. */
        f.now += (dvoice_tstamp)(dv_get_u16(a) % 2000) * DVOICE_MS;
        for (;;) {
          dvoice_tstamp t = dv_sim_vgw_get_expiry(f.vgw);
          dvoice_tstamp t2 = dv_sim_media_get_expiry(f.m);
          if (t2 < t) {
            t = t2;
          }
          if (t > f.now) {
            break;
          }
          if (dv_sim_vgw_handle_expiry(f.vgw, t) != 0 ||
              dv_sim_media_handle_expiry(f.m, t) != 0) {
            abort();
          }
          drain(&f);
          if (dv_sim_vgw_get_expiry(f.vgw) <= t ||
              dv_sim_media_get_expiry(f.m) <= t) {
            abort(); /* a deadline that does not move forward */
          }
        }
        break;
      case 4:
      case 7: {
        unsigned i;
        if (!take(&p, &n, 3)) {
          n = 0;
          break;
        }
        i = a[0] % NCONN;
        if (f.c[i] != NULL) {
          if (step == 4) {
            dv_sim_vgw_conn_peer_closed(f.c[i], dv_get_u16(a + 1), f.now);
            dv_sim_vgw_conn_free(f.c[i]);
            f.c[i] = NULL;
          } else {
            (void)dv_sim_vgw_conn_close(f.c[i], dv_get_u16(a + 1), f.now);
          }
        }
        break;
      }
      case 5: {
        uint16_t len;
        if (!take(&p, &n, 3)) {
          n = 0;
          break;
        }
        addr_of(a[0], &from);
        len = dv_get_u16(a + 1);
        if (len > n) {
          len = (uint16_t)n;
        }
        if (dv_sim_media_recv(f.m, p, len, &from, f.now) != 0) {
          abort();
        }
        take(&p, &n, len);
        break;
      }
      case 6:
        if (!take(&p, &n, 2)) {
          n = 0;
          break;
        }
        if (f.c[a[0] % NCONN] != NULL) {
          canned(&f, f.c[a[0] % NCONN], a[1]);
        }
        break;
      case 8:
        if (!take(&p, &n, 1)) {
          n = 0;
          break;
        }
        if ((a[0] & 1) == 0 && f.sp == NULL) {
          if (dv_sim_media_speaker_start(f.m, SERVER, "555", 4242, a[0] >> 1,
                                         f.now, &f.sp) != 0) {
            abort();
          }
        } else if ((a[0] & 1) == 1 && f.sp != NULL) {
          dv_sim_media_speaker_stop(f.m, f.sp, f.now);
          f.sp = NULL;
        }
        break;
      case 9: {
        static const uint8_t silence[3] = {0xf8, 0xff, 0xfe};
        const dv_sim_session *s;
        uint8_t hdr[12];
        dv_buf b;
        uint16_t seq;
        if (!take(&p, &n, 4)) {
          n = 0;
          break;
        }
        addr_of(a[0], &from);
        s = f.s[a[1] & 1];
        seq = dv_get_u16(a + 2);
        if (s->mode == DV_SIM_MODE_NONE) {
          break;
        }
        hdr[0] = 0x80;
        hdr[1] = 120;
        dv_put_u16(hdr + 2, seq);
        dv_put_u32(hdr + 4, 960u * seq);
        dv_put_u32(hdr + 8, s->ssrc);
        dv_buf_init(&b, NULL);
        if (dv_sim_crypt_seal(s->mode, s->key, hdr, 12, silence, 3, seq, &b) !=
                0 ||
            dv_sim_media_recv(f.m, b.data, b.len, &from, f.now) != 0) {
          abort();
        }
        dv_buf_free(&b);
        break;
      }
      default:
        break;
    }
    drain(&f);
  }
  {
    dv_buf rep;
    dv_buf_init(&rep, NULL);
    if (dv_sim_vgw_report_json(f.vgw, &rep) != 0) {
      abort();
    }
    dv_buf_free(&rep);
  }
  dv_sim_media_free(f.m);
  dv_sim_vgw_free(f.vgw);
  return 0;
}
