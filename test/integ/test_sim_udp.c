/*
 * Integration tests for the simulator's UDP glue (test/sim/sim_uv): packets
 * get the kernel's receive time as their arrival, not the time the
 * simulator's loop got round to them; a burst larger than one recvmmsg
 * batch is all read and attributed; the receive buffer setting is applied.
 * The session is made active directly on the gateway core, so no
 * WebSocket handshake is needed.
 */
#include "../interop/dvt_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../sim/sim_crypt.h"
#include "../sim/sim_uv.h"
#include "util/dv_rw.h"

#define SERVER "41771983423143937"
#define USER "104694319306248192"
#define MS DVOICE_MS

typedef struct fx {
  uv_loop_t loop;
  dv_sim_uv *sim;
  dv_sim_session *s;
  int fd; /* the client's UDP socket */
  struct sockaddr_in to;
  int closed;
} fx;

static void fx_start(fx *f, const dv_sim_uv_settings *st) {
  struct sockaddr_in me;
  socklen_t len = sizeof(me);
  memset(f, 0, sizeof(*f));
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(dv_sim_uv_new(&f->loop, st, &f->sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim), SERVER, USER,
                                          "sess", "tok", &f->s),
                   0);
  f->fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(f->fd >= 0);
  memset(&me, 0, sizeof(me));
  me.sin_family = AF_INET;
  me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(f->fd, (struct sockaddr *)&me, sizeof(me)), 0);
  assert_int_equal(getsockname(f->fd, (struct sockaddr *)&me, &len), 0);
  memset(&f->to, 0, sizeof(f->to));
  f->to.sin_family = AF_INET;
  f->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  f->to.sin_port = htons(dv_sim_uv_udp_port(f->sim));
  /* Active as if Select Protocol and op 5 had arrived from this socket. */
  f->s->phase = DV_SIM_PHASE_ACTIVE;
  f->s->mode = DV_SIM_MODE_AES256_GCM;
  for (int i = 0; i < 32; i++) {
    f->s->key[i] = (uint8_t)(7 * i + 1);
  }
  f->s->speaking_seen = 1;
  f->s->sel_ip = 0x7f000001u;
  f->s->sel_port = ntohs(me.sin_port);
}

static void on_closed(dv_sim_uv *sim, void *ud) {
  (void)sim;
  *(int *)ud = 1;
}

static void fx_finish(fx *f) {
  close(f->fd);
  assert_int_equal(dv_sim_uv_close(f->sim, on_closed, &f->closed), 0);
  dvt_run_flag(&f->loop, &f->closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
}

/* Sends RTP packet |seq| (a silence frame) from the client. */
static void send_rtp(fx *f, uint16_t seq) {
  static const uint8_t silence[3] = {0xf8, 0xff, 0xfe};
  uint8_t hdr[12];
  dv_buf b;
  hdr[0] = 0x80;
  hdr[1] = 120;
  dv_put_u16(hdr + 2, seq);
  dv_put_u32(hdr + 4, 960u * seq);
  dv_put_u32(hdr + 8, f->s->ssrc);
  dv_buf_init(&b, NULL);
  assert_int_equal(dv_sim_crypt_seal(f->s->mode, f->s->key, hdr, sizeof(hdr),
                                     silence, sizeof(silence), seq, &b),
                   0);
  assert_int_equal(sendto(f->fd, b.data, b.len, 0,
                          (const struct sockaddr *)&f->to, sizeof(f->to)),
                   (ssize_t)b.len);
  dv_buf_free(&b);
}

static int received_1(void *ud) {
  const fx *f = ud;
  return f->s->report.media.decrypted >= 1;
}

static int received_4(void *ud) {
  const fx *f = ud;
  return f->s->report.media.decrypted >= 4;
}

static void sleep_ms(long ms) {
  struct timespec ts = {0, ms * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static void test_arrival_is_kernel_receive_time(void **state) {
  const dvoice_tstamp *t;
  size_t n;
  fx f;
  (void)state;
  fx_start(&f, NULL);
  /* Linux may switch receive timestamping on a moment after the first
   * socket asks for it (a deferred static key; until then packets are
   * stamped when read): one packet first, then a pause. */
  send_rtp(&f, 1);
  assert_int_equal(dvt_run_until(&f.loop, received_1, &f, 5000), 0);
  sleep_ms(50);
  /* Three packets 30 ms apart while the loop does not run: read together,
   * they must still arrive 30 ms apart. */
  send_rtp(&f, 2);
  sleep_ms(30);
  send_rtp(&f, 3);
  sleep_ms(30);
  send_rtp(&f, 4);
  sleep_ms(30);
  assert_int_equal(dvt_run_until(&f.loop, received_4, &f, 5000), 0);
  dv_sim_media_arrivals(dv_sim_uv_media(f.sim), f.s, &t, &n);
  assert_int_equal(n, 4);
  assert_true(t[2] - t[1] >= 29 * MS);
  assert_true(t[3] - t[2] >= 29 * MS);
  /* Read at least 30 ms after the last was sent, yet not stamped then. */
  assert_true(t[3] <= dv_sim_uv_now(f.sim) - 29 * MS);
  assert_int_equal(f.s->report.media.decrypt_failures, 0);
  assert_int_equal(f.s->report.media.missing, 0);
  assert_int_equal(f.s->report.violations.n, 0);
  fx_finish(&f);
}

#define BURST 200

static int received_burst(void *ud) {
  const fx *f = ud;
  return f->s->report.media.received >= BURST;
}

static void test_burst_beyond_one_batch(void **state) {
  const dvoice_tstamp *t;
  dv_sim_uv_settings st;
  size_t n;
  fx f;
  (void)state;
  dv_sim_uv_settings_default(&st);
  st.udp_rcvbuf = 1 << 20;
  fx_start(&f, &st);
  for (uint16_t i = 1; i <= BURST; i++) {
    send_rtp(&f, i);
  }
  assert_int_equal(dvt_run_until(&f.loop, received_burst, &f, 5000), 0);
  assert_int_equal(f.s->report.media.decrypted, BURST);
  assert_int_equal(f.s->report.media.missing, 0);
  assert_int_equal(f.s->report.media.reordered, 0);
  assert_int_equal(f.s->report.media.ts_errors, 0);
  dv_sim_media_arrivals(dv_sim_uv_media(f.sim), f.s, &t, &n);
  assert_int_equal(n, BURST);
  for (size_t i = 1; i < n; i++) {
    assert_true(t[i] >= t[i - 1]);
  }
  assert_int_equal(dv_sim_media_global_stats(dv_sim_uv_media(f.sim))->unknown,
                   0);
  fx_finish(&f);
}

static void test_receive_buffer_setting(void **state) {
  dv_sim_uv_settings st;
  fx f;
  (void)state;
  /* Below every default net.core.rmem_max, so granted as asked. */
  dv_sim_uv_settings_default(&st);
  st.udp_rcvbuf = 65536;
  fx_start(&f, &st);
  assert_int_equal(dv_sim_uv_udp_rcvbuf(f.sim), 65536);
  fx_finish(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arrival_is_kernel_receive_time),
      cmocka_unit_test(test_burst_beyond_one_batch),
      cmocka_unit_test(test_receive_buffer_setting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
