/*
 * One TLS configuration per dvoice_client: its built-in gateway and every
 * voice connection it makes share it, so the CA file is parsed once, and
 * reconnections to a host seen before resume their TLS session against the
 * public simulator (wss://, whose server confs issue session tickets):
 * a voice resume after 4015, a main gateway resume after 4000, a second
 * join. A standalone dvoice_conn builds its conf at its first connect and
 * keeps it across a 4015 resume and a new session after 4006. Counts log lines
 * of the client's environment (captured at DEBUG); never asserts durations. The
 * counting allocator must end with nothing allocated.
 */
#include <dvoice/sim.h>

#include <stdio.h>
#include <unistd.h>

#include "../interop/dvt_net.h"
#include "../sim/sim_uv.h"
#include "../unit/tls_testca.h"
#include "dvt.h"

#define TOKEN "TLSSHARE.token.1"
#define GUILD 111111111111ull
#define USER 222222222222ull
#define CHAN 333333333333ull

typedef struct fx {
  uv_loop_t loop;
  dvt_env env;
  dvt_mem mem;
  dvoice_sim *sim;
  dvoice_client *cl;
  dvoice_conn *conn;
  int gw_ready, ready, failed, conn_closed, sim_closed, client_closed;
  int want; /* handshake lines awaited by run_handshakes */
} fx;

static int count(const fx *f, const char *needle) {
  const char *p = (const char *)f->env.log.text.data;
  int n = 0;
  if (p == NULL) {
    return 0;
  }
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

#define LOADED "tls: loaded CAs from"
#define DONE "tls: handshake done"
#define RESUMED ", resumed\n"

static void on_gateway(dvoice_client *cl, const dvoice_gateway_event *ev,
                       void *ud) {
  fx *f = ud;
  (void)cl;
  if (ev->state == DVOICE_GATEWAY_READY) {
    f->gw_ready = 1;
  }
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY) {
    f->ready = 1;
  } else if (ev->state != DVOICE_CONN_CONNECTING &&
             ev->state != DVOICE_CONN_RESUMING) {
    f->failed = 1;
  }
}

static void conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  ((fx *)ud)->conn_closed = 1;
}

static void sim_closed(dvoice_sim *sim, void *ud) {
  (void)sim;
  ((fx *)ud)->sim_closed = 1;
}

static void client_closed(dvoice_client *cl, void *ud) {
  (void)cl;
  ((fx *)ud)->client_closed = 1;
}

static int enough_handshakes(void *ud) {
  fx *f = ud;
  return count(f, DONE) >= f->want;
}

/* Runs the loop until |n| TLS handshakes in all have completed. */
static void run_handshakes(fx *f, int n) {
  f->want = n;
  assert_int_equal(dvt_run_until(&f->loop, enough_handshakes, f, 10000), 0);
}

static void fx_start(fx *f) {
  dvoice_sim_settings ss;
  dvoice_client_settings cs;
  dvoice_conn_settings tmpl;
  dvoice_client_callbacks ccb;
  uint64_t chan = CHAN;
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dvt_env_init(&f->env);
  dvt_mem_init(&f->mem, -1);
  f->env.env.mem = &f->mem.mem;
  f->env.env.now = NULL; /* real sockets: the real clock */
  f->env.env.rand = NULL;
  dvoice_sim_settings_default(&ss);
  assert_int_equal(dvoice_sim_start(&f->loop, &ss, &f->sim), 0);
  assert_int_equal(dvoice_sim_add_bot(f->sim, TOKEN, USER), 0);
  assert_int_equal(dvoice_sim_add_guild(f->sim, GUILD, &chan, 1), 0);
  dvoice_client_settings_default(&cs);
  cs.env = f->env.env;
  cs.user_id = USER;
  cs.token = TOKEN;
  cs.gateway_url = dvoice_sim_gateway_url(f->sim);
  dvoice_conn_settings_default(&tmpl);
  tmpl.tls.ca_file = dvoice_sim_ca_file(f->sim);
  cs.conn = &tmpl;
  memset(&ccb, 0, sizeof(ccb));
  ccb.on_gateway = on_gateway;
  assert_int_equal(dvoice_client_new(&f->cl, &f->loop, &cs, &ccb, f), 0);
  dvt_run_flag(&f->loop, &f->gw_ready, 10000);
}

static void join(fx *f) {
  dvoice_conn_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  f->ready = 0;
  assert_int_equal(dvoice_client_join(f->cl, GUILD, CHAN, 0, &cb, f, &f->conn),
                   0);
  dvt_run_flag(&f->loop, &f->ready, 10000);
  assert_false(f->failed);
}

static void leave(fx *f) {
  f->conn_closed = 0;
  assert_int_equal(dvoice_client_leave(f->cl, f->conn, conn_closed), 0);
  f->conn = NULL;
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_client_close(f->cl, client_closed), 0);
  dvt_run_flag(&f->loop, &f->client_closed, 5000);
  assert_int_equal(dvoice_sim_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  /* The shared conf went with the last of client, gateway and conns. */
  assert_int_equal(f->mem.live, 0);
  dvt_env_free(&f->env);
}

static void test_one_conf_and_resumption(void **state) {
  fx f;
  (void)state;
  fx_start(&f);
  /* The main gateway: one full handshake. */
  assert_int_equal(count(&f, DONE), 1);
  assert_int_equal(count(&f, RESUMED), 0);

  /* First contact with the voice server: a full handshake. */
  join(&f);
  assert_int_equal(count(&f, DONE), 2);
  assert_int_equal(count(&f, RESUMED), 0);

  /* 4015: the voice WebSocket reconnects and resumes, TLS too. */
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_CLOSE_VOICE, USER, GUILD, 4015),
      0);
  run_handshakes(&f, 3);
  assert_int_equal(count(&f, RESUMED), 1);

  /* The main gateway closed with 4000: it resumes, TLS too. */
  assert_int_equal(
      dvoice_sim_command_run(f.sim, DVOICE_SIM_CLOSE_GATEWAY, USER, 0, 4000),
      0);
  run_handshakes(&f, 4);
  assert_int_equal(count(&f, RESUMED), 2);
  leave(&f);

  /* A later join to the same voice server: resumed. */
  join(&f);
  assert_int_equal(count(&f, DONE), 5);
  assert_int_equal(count(&f, RESUMED), 3);
  leave(&f);

  /* Five connections, two hosts, one CA parse. */
  assert_int_equal(count(&f, LOADED), 1);
  assert_false(f.failed);
  fx_stop(&f);
}

/* ---- a standalone dvoice_conn ------------------------------------------- */

typedef struct sfx {
  uv_loop_t loop;
  dvt_env env;
  dvt_mem mem;
  dv_sim_uv *sim;
  dvoice_conn *conn;
  int ready, sim_closed, conn_closed, want;
} sfx;

static int scount(const sfx *f, const char *needle) {
  const char *p = (const char *)f->env.log.text.data;
  int n = 0;
  while (p != NULL && (p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

static void s_on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  sfx *f = ud;
  (void)c;
  if (ev->state == DVOICE_CONN_READY) {
    f->ready++;
  }
}

static void s_conn_closed(dvoice_conn *c, void *ud) {
  (void)c;
  ((sfx *)ud)->conn_closed = 1;
}

static void s_sim_closed(dv_sim_uv *sim, void *ud) {
  (void)sim;
  ((sfx *)ud)->sim_closed = 1;
}

static int s_enough(void *ud) {
  sfx *f = ud;
  return f->ready >= f->want;
}

static void s_run_ready(sfx *f, int n) {
  f->want = n;
  assert_int_equal(dvt_run_until(&f->loop, s_enough, f, 10000), 0);
}

static void test_standalone_conn_keeps_its_conf(void **state) {
  static dvt_testca pki;
  char dir[] = "/tmp/dvt_tlsshare_XXXXXX", ca[64], cert[64], key[64];
  char endpoint[64];
  dv_sim_uv_settings ss;
  dvoice_conn_settings cs;
  dvoice_conn_callbacks cb;
  dv_sim_session *sess;
  sfx *f = calloc(1, sizeof(*f));
  (void)state;
  assert_non_null(f);
  assert_int_equal(dvt_testca_generate(&pki, "localhost", 7), 0);
  assert_non_null(mkdtemp(dir));
  snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
  snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
  snprintf(key, sizeof(key), "%s/key.pem", dir);
  assert_int_equal(dvt_testca_write_file(ca, pki.ca_pem), 0);
  assert_int_equal(dvt_testca_write_file(cert, pki.cert_pem), 0);
  assert_int_equal(dvt_testca_write_file(key, pki.key_pem), 0);

  assert_int_equal(uv_loop_init(&f->loop), 0);
  dvt_env_init(&f->env);
  dvt_mem_init(&f->mem, -1);
  f->env.env.mem = &f->mem.mem;
  f->env.env.now = NULL;
  f->env.env.rand = NULL;
  dv_sim_uv_settings_default(&ss);
  ss.cert_file = cert;
  ss.key_file = key;
  assert_int_equal(dv_sim_uv_new(&f->loop, &ss, &f->sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim), "111111111111",
                                          "222222222222", "session-1",
                                          "token-1", &sess),
                   0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim), "111111111111",
                                          "222222222222", "session-2",
                                          "token-2", NULL),
                   0);
  snprintf(endpoint, sizeof(endpoint), "wss://localhost:%u",
           (unsigned)dv_sim_uv_ws_port(f->sim));
  dvoice_conn_settings_default(&cs);
  cs.env = f->env.env;
  cs.guild_id = GUILD;
  cs.channel_id = CHAN;
  cs.user_id = USER;
  cs.session_id = "session-1";
  cs.token = "token-1";
  cs.endpoint = endpoint;
  cs.tls.ca_file = ca;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = s_on_state;
  assert_int_equal(dvoice_conn_new(&f->conn, &f->loop, &cs, &cb, f), 0);
  s_run_ready(f, 1);
  assert_int_equal(scount(f, DONE), 1);
  assert_int_equal(scount(f, RESUMED), 0);

  /* 4015: the WebSocket reconnects with the same conf and resumes TLS. */
  assert_int_equal(dv_sim_vgw_session_close(sess, 4015, dv_sim_uv_now(f->sim)),
                   0);
  dv_sim_uv_flush(f->sim);
  s_run_ready(f, 2);
  assert_int_equal(scount(f, DONE), 2);
  assert_int_equal(scount(f, RESUMED), 1);

  /* 4006 then new credentials: a new voice session, same TLS conf. */
  assert_int_equal(dv_sim_vgw_session_close(sess, 4006, dv_sim_uv_now(f->sim)),
                   0);
  dv_sim_uv_flush(f->sim);
  assert_int_equal(
      dvoice_conn_new_session(f->conn, "session-2", "token-2", NULL), 0);
  s_run_ready(f, 3);
  assert_int_equal(scount(f, DONE), 3);
  assert_int_equal(scount(f, RESUMED), 2);
  assert_int_equal(scount(f, LOADED), 1);

  assert_int_equal(dvoice_conn_close(f->conn, s_conn_closed), 0);
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  assert_int_equal(dv_sim_uv_close(f->sim, s_sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  assert_int_equal(f->mem.live, 0);
  dvt_env_free(&f->env);
  unlink(ca);
  unlink(cert);
  unlink(key);
  rmdir(dir);
  free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_conf_and_resumption),
      cmocka_unit_test(test_standalone_conn_keeps_its_conf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
