/*
 * The library's voice gateway client (lib/voice) against the simulator's
 * voice gateway (test/sim/sim_vgw), both pure, wired message by message
 * under one fake clock. What the simulator records is the verdict.
 */
#include "dvt.h"

#include <jansson.h>

#include "../sim/sim_vgw.h"
#include "voice/dv_voice.h"

#define SERVER "41771983423143937"
#define USER "104694319306248192"
#define SERVER_ID 41771983423143937ull
#define USER_ID 104694319306248192ull
#define MS DVOICE_MS
#define SEC DVOICE_SECONDS

typedef struct pair {
  dvt_env e;
  dv_sim_vgw *vgw;
  dv_sim_session *s;
  dv_voice v;
  dv_sim_vgw_conn *c; /* the server side of the client's WebSocket */
  int connect_pending;
  int close_pending, close_code;
  int udp_pending;
  uint8_t key[32];
  int sessions; /* EV_SESSION count */
  int resumed;
  int acks;
  dv_voice_state state;
  dv_voice_outcome outcome;
  int state_close_code;
  char log[2048];
} pair;

static void logf_(pair *p, const char *fmt, ...) {
  size_t n = strlen(p->log);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->log + n, sizeof(p->log) - n, fmt, ap);
  va_end(ap);
}

static void on_event(dv_voice *v, const dv_voice_event *ev, void *ud) {
  pair *p = ud;
  (void)v;
  switch (ev->type) {
    case DV_VOICE_EV_STATE:
      p->state = ev->u.state.state;
      p->outcome = ev->u.state.outcome;
      p->state_close_code = ev->u.state.close_code;
      logf_(p, "%s ", dv_voice_state_name(ev->u.state.state));
      break;
    case DV_VOICE_EV_CONNECT:
      p->connect_pending = 1;
      break;
    case DV_VOICE_EV_CLOSE_WS:
      p->close_pending = 1;
      p->close_code = ev->u.close_ws.code;
      logf_(p, "close_ws:%d ", ev->u.close_ws.code);
      break;
    case DV_VOICE_EV_UDP_START:
      p->udp_pending = 1;
      break;
    case DV_VOICE_EV_SESSION:
      memcpy(p->key, ev->u.session.key, 32);
      p->sessions++;
      break;
    case DV_VOICE_EV_RESUMED:
      p->resumed++;
      break;
    case DV_VOICE_EV_HEARTBEAT_ACK:
      p->acks++;
      break;
    default:
      break;
  }
}

static void pair_init(pair *p, const dv_sim_vgw_settings *st) {
  dv_voice_config cfg;
  dv_voice_callbacks cb = {on_event};
  memset(p, 0, sizeof(*p));
  dvt_env_init(&p->e);
  p->e.env.log_level = DVOICE_LOG_WARN;
  assert_int_equal(dv_sim_vgw_new(&p->e.env, st, &p->vgw), 0);
  dv_sim_vgw_set_udp(p->vgw, "127.0.0.1", 50010);
  assert_int_equal(
      dv_sim_vgw_add_session(p->vgw, SERVER, USER, "sess-1", "tok-1", &p->s),
      0);
  dv_voice_config_default(&cfg);
  cfg.server_id = SERVER_ID;
  cfg.user_id = USER_ID;
  cfg.session_id = "sess-1";
  cfg.token = "tok-1";
  cfg.max_dave_protocol_version = 1;
  cfg.aes256_gcm_available = 1;
  assert_int_equal(dv_voice_init(&p->v, &cfg, &cb, &p->e.env, p), 0);
}

static void pair_free(pair *p) {
  dv_voice_free(&p->v);
  dv_sim_vgw_free(p->vgw);
  dvt_env_free(&p->e);
}

static dvoice_tstamp now_of(pair *p) {
  return p->e.clock.now;
}

/* Moves everything both sides queued until neither has anything left. */
static void pump(pair *p) {
  int busy = 1;
  while (busy) {
    const uint8_t *data;
    size_t len;
    int binary;
    dv_sim_out o;
    busy = 0;
    if (p->close_pending) {
      /* The client dropped its WebSocket with a close frame. */
      p->close_pending = 0;
      if (p->c != NULL) {
        dv_sim_vgw_conn_peer_closed(p->c, p->close_code, now_of(p));
        dv_sim_vgw_conn_free(p->c);
        p->c = NULL;
      }
      busy = 1;
    }
    if (p->connect_pending) {
      p->connect_pending = 0;
      assert_null(p->c);
      assert_int_equal(dv_sim_vgw_conn_new(p->vgw, now_of(p), &p->c), 0);
      assert_int_equal(dv_voice_on_open(&p->v, now_of(p)), 0);
      busy = 1;
    }
    while (dv_voice_next_out(&p->v, &data, &len, &binary)) {
      busy = 1;
      if (p->c != NULL && p->c->state != DV_SIM_CONN_CLOSED) {
        (void)dv_sim_vgw_conn_recv(p->c, binary, data, len, now_of(p));
      }
    }
    while (p->c != NULL && dv_sim_vgw_conn_pop(p->c, &o)) {
      busy = 1;
      if (o.kind == DV_SIM_OUT_CLOSE) {
        logf_(p, "srv_close:%d ", o.close_code);
        dv_sim_vgw_conn_free(p->c);
        p->c = NULL;
        (void)dv_voice_on_close(&p->v, o.close_code, now_of(p));
      } else {
        assert_int_equal(o.kind, DV_SIM_OUT_TEXT);
        (void)dv_voice_on_text(&p->v, (const char *)o.data.data, o.data.len,
                               now_of(p));
      }
      dv_buf_free(&o.data);
    }
    if (p->udp_pending) {
      p->udp_pending = 0;
      assert_int_equal(
          dv_voice_on_ip_discovered(&p->v, "127.0.0.1", 40000, now_of(p)), 0);
      busy = 1;
    }
  }
}

/* Runs both machines' deadlines in time order up to |until|. */
static void advance(pair *p, dvoice_tstamp until) {
  for (;;) {
    dvoice_tstamp t = dv_voice_get_expiry(&p->v);
    dvoice_tstamp t2 = dv_sim_vgw_get_expiry(p->vgw);
    if (t2 < t) {
      t = t2;
    }
    if (t > until) {
      break;
    }
    if (t > p->e.clock.now) {
      p->e.clock.now = t;
    }
    assert_int_equal(dv_voice_handle_expiry(&p->v, now_of(p)), 0);
    assert_int_equal(dv_sim_vgw_handle_expiry(p->vgw, now_of(p)), 0);
    pump(p);
  }
  p->e.clock.now = until;
}

static void start(pair *p) {
  assert_int_equal(dv_voice_start(&p->v, now_of(p)), 0);
  pump(p);
}

static void test_pair_happy_path_and_heartbeats(void **state) {
  pair p;
  (void)state;
  pair_init(&p, NULL);
  start(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->phase, DV_SIM_PHASE_ACTIVE);
  assert_int_equal(p.sessions, 1);
  assert_memory_equal(p.key, p.s->key, 32);
  assert_int_equal(p.s->mode, DV_SIM_MODE_AES256_GCM);
  assert_int_equal(dv_voice_ssrc(&p.v), p.s->ssrc);
  /* The client registers its SSRC with op 5 before sending anything. */
  assert_true(p.s->speaking_seen);
  /* A minute of heartbeats, every one acknowledged, no timeout. */
  advance(&p, 60 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_true(p.s->report.heartbeats >= 4);
  assert_int_equal(p.acks, (int)p.s->report.acks_sent);
  assert_int_equal(p.s->report.identifies, 1);
  assert_int_equal(p.s->report.violations.n, 0);
  assert_int_equal(p.vgw->violations.n, 0);
  assert_non_null(p.c);
  assert_int_equal(p.c->state, DV_SIM_CONN_BOUND);
  pair_free(&p);
}

static void test_pair_resume_after_4015_with_replay(void **state) {
  pair p;
  (void)state;
  pair_init(&p, NULL);
  start(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  advance(&p, 20 * SEC);
  assert_int_equal(dv_sim_vgw_session_close(p.s, 4015, now_of(&p)), 0);
  /* Someone joins while the client is away: buffered for the replay. */
  assert_int_equal(
      dv_sim_vgw_add_fake(p.vgw, SERVER, "555", 4242, 1, now_of(&p), NULL), 0);
  pump(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_BACKOFF);
  advance(&p, 30 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.resumed, 1);
  assert_int_equal(p.s->report.resumes, 1);
  assert_int_equal(p.s->report.identifies, 1);
  assert_int_equal(p.s->report.replayed, 4);
  assert_int_equal(dv_voice_user_count(&p.v), 1);
  assert_int_equal(dv_voice_last_seq(&p.v), 3);
  assert_int_equal(p.s->report.violations.n, 0);
  assert_string_equal(p.log, "CONNECTING IDENTIFYING UDP_DISCOVERY SELECTING "
                             "READY srv_close:4015 BACKOFF CONNECTING "
                             "RESUMING READY ");
  advance(&p, 90 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->report.violations.n, 0);
  pair_free(&p);
}

static void test_pair_resume_across_seq_wrap(void **state) {
  dv_sim_vgw_settings st;
  pair p;
  (void)state;
  dv_sim_vgw_settings_default(&st);
  st.seq_start = 65533;
  pair_init(&p, &st);
  start(&p);
  /* 65533, 65534, 65535, 0 arrive live ... */
  assert_int_equal(
      dv_sim_vgw_add_fake(p.vgw, SERVER, "555", 4242, 1, now_of(&p), NULL), 0);
  pump(&p);
  assert_int_equal(dv_voice_last_seq(&p.v), 0);
  assert_int_equal(dv_sim_vgw_session_close(p.s, 4015, now_of(&p)), 0);
  /* ... 1, 2, 3, 4 are replayed after the resume. */
  assert_int_equal(
      dv_sim_vgw_add_fake(p.vgw, SERVER, "556", 4243, 1, now_of(&p), NULL), 0);
  pump(&p);
  advance(&p, now_of(&p) + 10 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->report.resumes, 1);
  assert_int_equal(p.s->report.replayed, 4);
  assert_int_equal(dv_voice_last_seq(&p.v), 4);
  assert_int_equal(dv_voice_user_count(&p.v), 2);
  advance(&p, now_of(&p) + 60 * SEC);
  assert_int_equal(p.s->report.violations.n, 0);
  pair_free(&p);
}

static void test_pair_zombie_resumes(void **state) {
  pair p;
  (void)state;
  pair_init(&p, NULL);
  start(&p);
  p.s->drop_acks = 1;
  /* The client notices the missing ACKs and drops the socket itself. */
  for (int i = 0; i < 200 && p.resumed == 0; i++) {
    advance(&p, now_of(&p) + SEC);
    if (!p.s->drop_acks || dv_voice_get_state(&p.v) != DV_VOICE_READY) {
      p.s->drop_acks = 0;
    }
  }
  assert_int_equal(p.resumed, 1);
  assert_true(p.s->report.acks_dropped >= 2);
  assert_int_equal(p.s->report.resumes, 1);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->report.violations.n, 0);
  pair_free(&p);
}

static void test_pair_4006_new_session(void **state) {
  dv_sim_session *s2;
  pair p;
  (void)state;
  pair_init(&p, NULL);
  start(&p);
  assert_int_equal(dv_sim_vgw_session_close(p.s, 4006, now_of(&p)), 0);
  pump(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_NEED_SESSION);
  assert_int_equal(p.s->phase, DV_SIM_PHASE_ENDED);
  /* The main gateway (here: the test) hands out a new session. */
  assert_int_equal(
      dv_sim_vgw_add_session(p.vgw, SERVER, USER, "sess-2", "tok-2", &s2), 0);
  assert_int_equal(dv_voice_new_session(&p.v, "sess-2", "tok-2", now_of(&p)),
                   0);
  pump(&p);
  advance(&p, now_of(&p) + 15 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(s2->phase, DV_SIM_PHASE_ACTIVE);
  assert_int_equal(s2->report.identifies, 1);
  assert_int_equal(dv_voice_ssrc(&p.v), s2->ssrc);
  assert_int_equal(p.sessions, 2);
  assert_memory_equal(p.key, s2->key, 32);
  assert_int_equal(s2->report.violations.n, 0);
  pair_free(&p);
}

static void test_pair_4014_waits_then_gives_up(void **state) {
  pair p;
  (void)state;
  pair_init(&p, NULL);
  start(&p);
  assert_int_equal(dv_sim_vgw_session_close(p.s, 4014, now_of(&p)), 0);
  pump(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_WAIT_SERVER);
  advance(&p, now_of(&p) + 30 * SEC);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_DISCONNECTED);
  assert_int_equal(p.s->report.resumes, 0);
  assert_int_equal(p.s->report.identifies, 1);
  pair_free(&p);
}

static void test_pair_mode_choice(void **state) {
  dv_sim_vgw_settings st;
  pair p;
  (void)state;
  /* Only XChaCha20 offered (plus discontinued noise): it is chosen. */
  dv_sim_vgw_settings_default(&st);
  st.modes[0] = "xsalsa20_poly1305";
  st.modes[1] = "aead_xchacha20_poly1305_rtpsize";
  st.modes[2] = "aead_aes256_gcm";
  st.nmodes = 3;
  pair_init(&p, &st);
  start(&p);
  assert_int_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->mode, DV_SIM_MODE_XCHACHA20);
  assert_int_equal(p.s->report.violations.n, 0);
  pair_free(&p);
  /* Nothing usable: the client gives up without selecting anything. */
  dv_sim_vgw_settings_default(&st);
  st.modes[0] = "xsalsa20_poly1305";
  st.modes[1] = "aead_aes256_gcm";
  st.nmodes = 2;
  pair_init(&p, &st);
  start(&p);
  advance(&p, 60 * SEC);
  assert_int_not_equal(dv_voice_get_state(&p.v), DV_VOICE_READY);
  assert_int_equal(p.s->report.select_protocols, 0);
  assert_int_equal(p.s->report.violations.n, 0);
  pair_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pair_happy_path_and_heartbeats),
      cmocka_unit_test(test_pair_resume_after_4015_with_replay),
      cmocka_unit_test(test_pair_resume_across_seq_wrap),
      cmocka_unit_test(test_pair_zombie_resumes),
      cmocka_unit_test(test_pair_4006_new_session),
      cmocka_unit_test(test_pair_4014_waits_then_gives_up),
      cmocka_unit_test(test_pair_mode_choice),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
