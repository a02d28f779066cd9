/*
 * Integration tests for dvoice_conn against the simulator on loopback, in
 * one process and one loop: a real 20 ms paced stream in both transport
 * modes (forced by the simulator's offered modes), resume after 4015, a new
 * session after 4006, zombie detection, and 10 % loss on the simulator's
 * side. Assertions are on the simulator's report and on event sequences,
 * never on durations; gaps are printed. Every test has a watchdog and ends
 * with no handle left on the loop.
 */
#include "../interop/dvt_net.h"

#include "audio/dv_opus.h"
#include "../sim/sim_uv.h"

#define GUILD 111111111111ull
#define USER 222222222222ull
#define NFRAMES 50 /* one second of tone, looped */

typedef struct fx {
  uv_loop_t loop;
  dv_sim_uv *sim;
  dv_sim_session *sess;
  dvoice_conn *conn;
  dvoice_pacer *pacer;
  char endpoint[64];
  uint8_t frames[NFRAMES][DV_OPUS_MAX_PACKET];
  size_t lens[NFRAMES];
  /* What the application saw. */
  char states[1024];
  dvoice_conn_event last;
  int nstates;
  int ready;     /* READY events */
  int resuming;  /* RESUMING events */
  int need_session;
  int stream_ended;
  int drains;
  int conn_closed, sim_closed, pacer_closed;
  /* Sending. */
  int to_send, sent;
  /* Receiving. */
  uint64_t opus_rx, opus_rx_mapped;
  uint64_t speaking_user;
  /* Scenario knobs. */
  int close_at;          /* close the WS with close_code after this many */
  int close_code;
  int closed_mid;
  dvoice_conn_reason resume_reason;
  dv_sim_speaker *speaker;
  int left_ready;
  /* Pull style. */
  int pull;
  int pcm_frames;     /* PCM frames the source still gives */
  int source_calls;
  int16_t pcm[DV_OPUS_FRAME_VALUES];
  /* Closing from inside callbacks. */
  int close_in_ready;
  int closing_called;
  int close_in_source;
  int after_close_events;
  uv_timer_t wait;
} fx;

static void add_state(fx *f, const dvoice_conn_event *ev) {
  size_t n = strlen(f->states);
  snprintf(f->states + n, sizeof(f->states) - n, "%s%s",
           n > 0 ? " " : "", dvoice_conn_state_name(ev->state));
  if (ev->close_code != 0) {
    n = strlen(f->states);
    snprintf(f->states + n, sizeof(f->states) - n, "(%d)", ev->close_code);
  }
}

static void push_some(fx *f) {
  while (f->sent < f->to_send) {
    int rv = dvoice_conn_send_opus(f->conn, f->frames[f->sent % NFRAMES],
                                   f->lens[f->sent % NFRAMES]);
    if (rv == DVOICE_ERR_NOBUF) {
      return;
    }
    assert_int_equal(rv, 0);
    f->sent++;
  }
}

static void conn_closed(dvoice_conn *c, void *ud);

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  fx *f = ud;
  assert_ptr_equal(c, f->conn);
  if (f->conn_closed || f->closing_called) {
    f->after_close_events++;
  }
  f->last = *ev;
  f->nstates++;
  add_state(f, ev);
  printf("# state %s (old %s, reason %s, close %d \"%s\")\n",
         dvoice_conn_state_name(ev->state),
         dvoice_conn_state_name(ev->old_state),
         dvoice_conn_reason_name(ev->reason), ev->close_code,
         ev->close_reason);
  switch (ev->state) {
    case DVOICE_CONN_READY:
      f->ready++;
      if (f->close_in_ready) {
        /* Closing from inside a callback is allowed. */
        f->closing_called = 1;
        assert_int_equal(dvoice_conn_close(c, conn_closed), 0);
        assert_int_equal(dvoice_conn_send_opus(c, f->frames[0], f->lens[0]),
                         DVOICE_ERR_INVALID_STATE);
      }
      break;
    case DVOICE_CONN_RESUMING:
      if (f->resuming++ == 0) {
        f->resume_reason = ev->reason;
      }
      /* The new socket gets its ACKs again. */
      f->sess->drop_acks = 0;
      break;
    case DVOICE_CONN_NEED_SESSION:
      f->need_session++;
      break;
    default:
      break;
  }
  if (f->ready > 0 && ev->state != DVOICE_CONN_READY) {
    f->left_ready++;
  }
}

static void on_drain(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  f->drains++;
  push_some(f);
}

static void on_stream(dvoice_conn *c, int active, void *ud) {
  fx *f = ud;
  (void)c;
  if (!active) {
    f->stream_ended++;
  }
}

static void on_opus(dvoice_conn *c, const dvoice_opus_packet *pkt, void *ud) {
  fx *f = ud;
  (void)c;
  assert_non_null(pkt->data);
  f->opus_rx++;
  if (pkt->user_id != 0) {
    f->opus_rx_mapped++;
  }
}

static void on_speaking(dvoice_conn *c, uint64_t user_id, uint32_t ssrc,
                        uint32_t flags, void *ud) {
  fx *f = ud;
  (void)c;
  (void)ssrc;
  (void)flags;
  f->speaking_user = user_id;
}

static int on_source(dvoice_conn *c, dvoice_source_frame *out, void *ud) {
  fx *f = ud;
  if (f->conn_closed || f->closing_called) {
    f->after_close_events++;
  }
  f->source_calls++;
  if (f->close_in_source && f->source_calls == 10) {
    f->closing_called = 1;
    assert_int_equal(dvoice_conn_close(c, conn_closed), 0);
    out->kind = DVOICE_SOURCE_PCM_S16; /* ignored: the connection closes */
    out->data = f->pcm;
    return 0;
  }
  if (f->pcm_frames > 0) {
    f->pcm_frames--;
    for (int j = 0; j < DV_OPUS_FRAME_VALUES; j++) {
      f->pcm[j] = (int16_t)(((j / 2) % 109) * 150 - 8000); /* ~440 Hz saw */
    }
    out->kind = DVOICE_SOURCE_PCM_S16;
    out->data = f->pcm;
  } else {
    out->kind = DVOICE_SOURCE_NOTHING;
  }
  return 0;
}

static void encode_tone(fx *f) {
  dv_opus_enc *enc;
  int16_t pcm[DV_OPUS_FRAME_VALUES];
  size_t n = 0;
  assert_int_equal(dv_opus_enc_new(NULL, NULL, &enc), 0);
  for (int i = 0; i < NFRAMES; i++) {
    for (int j = 0; j < DV_OPUS_FRAME_SAMPLES; j++, n++) {
      /* 440 Hz, integer phase: 48000 / 440 is not whole, so use a table
       * free approximation through the sine of the exact phase. */
      double ph = (double)(n % 48000) * 440.0 / 48000.0;
      double x = ph - (double)(long)ph; /* 0..1 */
      /* A triangle wave at 440 Hz: no libm needed, still a tone. */
      double tri = x < 0.5 ? 4.0 * x - 1.0 : 3.0 - 4.0 * x;
      int16_t s = (int16_t)(tri * 8000.0);
      pcm[2 * j] = s;
      pcm[2 * j + 1] = s;
    }
    int len = dv_opus_encode_s16(enc, pcm, f->frames[i],
                                 sizeof(f->frames[i]));
    assert_true(len > 0);
    f->lens[i] = (size_t)len;
  }
  dv_opus_enc_free(enc);
}

static int on_source(dvoice_conn *c, dvoice_source_frame *out, void *ud);

/* shared_pacer: 0 private, 1 timerfd, 2 uv_timer with a 1 ms spin. */
static void fx_start_ex(fx *f, dv_sim_mode mode, uint32_t hb_ms,
                        int shared_pacer, int pull) {
  dv_sim_uv_settings ss;
  dvoice_conn_settings cs;
  dvoice_conn_callbacks cb;
  int close_in_ready = f->close_in_ready;
  memset(f, 0, sizeof(*f));
  f->close_in_ready = close_in_ready;
  f->pull = pull;
  encode_tone(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  dv_sim_uv_settings_default(&ss);
  ss.vgw.modes[0] = dv_sim_mode_name(mode);
  ss.vgw.nmodes = 1;
  if (hb_ms != 0) {
    ss.vgw.heartbeat_interval_ms = hb_ms;
  }
  ss.media.decode_opus = 1;
  assert_int_equal(dv_sim_uv_new(&f->loop, &ss, &f->sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim),
                                          "111111111111", "222222222222",
                                          "session-1", "token-1", &f->sess),
                   0);
  snprintf(f->endpoint, sizeof(f->endpoint), "ws://%s",
           dv_sim_uv_endpoint(f->sim));
  if (shared_pacer) {
    dvoice_pacer_settings ps;
    dvoice_pacer_settings_default(&ps);
    if (shared_pacer == 2) {
      ps.timer = DVOICE_PACER_TIMER_UV;
      ps.spin = DVOICE_MS;
    }
    assert_int_equal(dvoice_pacer_new(&f->pacer, &f->loop, &ps), 0);
  }
  dvoice_conn_settings_default(&cs);
  cs.guild_id = GUILD;
  cs.channel_id = 333;
  cs.user_id = USER;
  cs.session_id = "session-1";
  cs.token = "token-1";
  cs.endpoint = f->endpoint;
  cs.pacer = f->pacer;
  memset(&cb, 0, sizeof(cb));
  cb.on_state = on_state;
  cb.on_drain = on_drain;
  cb.on_stream = on_stream;
  cb.on_opus = on_opus;
  cb.on_speaking = on_speaking;
  if (pull) {
    cb.source = on_source;
  }
  assert_int_equal(dvoice_conn_new(&f->conn, &f->loop, &cs, &cb, f), 0);
  /* Nothing is delivered synchronously. */
  assert_int_equal(f->nstates, 0);
  dvt_run_flag(&f->loop, &f->ready, 10000);
  if (f->close_in_ready) {
    return;
  }
  assert_int_equal(dvoice_conn_get_state(f->conn), DVOICE_CONN_READY);
}

static void fx_start(fx *f, dv_sim_mode mode, uint32_t hb_ms,
                     int shared_pacer) {
  fx_start_ex(f, mode, hb_ms, shared_pacer, 0);
}

static void conn_closed(dvoice_conn *c, void *ud) {
  fx *f = ud;
  (void)c;
  f->conn_closed++;
}

static void sim_closed(dv_sim_uv *sim, void *ud) {
  fx *f = ud;
  (void)sim;
  f->sim_closed++;
}

static void pacer_closed(dvoice_pacer *p, void *ud) {
  fx *f = ud;
  (void)p;
  f->pacer_closed++;
}

static void fx_stop(fx *f) {
  assert_int_equal(dvoice_conn_close(f->conn, conn_closed), 0);
  assert_int_equal(dvoice_conn_close(f->conn, conn_closed),
                   DVOICE_ERR_INVALID_STATE);
  if (f->pacer != NULL) {
    assert_int_equal(dvoice_pacer_close(f->pacer, pacer_closed, f), 0);
  }
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  if (f->pacer != NULL) {
    dvt_run_flag(&f->loop, &f->pacer_closed, 5000);
  }
  assert_int_equal(dv_sim_uv_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(f->conn_closed, 1);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
}

static void set_flag_timer(uv_timer_t *t) {
  *(int *)t->data = 1;
}

static int media_received_at_least(void *ud) {
  fx *f = ud;
  return f->sess->report.media.received >= (uint64_t)f->to_send + 5 &&
         f->stream_ended > 0;
}

static void print_media(const char *what, const dv_sim_session *s) {
  const dv_sim_media_stats *m = &s->report.media;
  printf("# %s: received %llu decrypted %llu missing %llu silence %llu "
         "ts_errors %llu inter-arrival max %.3f ms mean %.3f ms max dev "
         "%.3f ms jitter %.3f ms\n",
         what, (unsigned long long)m->received,
         (unsigned long long)m->decrypted, (unsigned long long)m->missing,
         (unsigned long long)m->silence_frames,
         (unsigned long long)m->ts_errors, (double)m->ia_max_ns / 1e6,
         m->ia_mean_ns / 1e6, (double)m->ia_max_dev_ns / 1e6,
         m->jitter_ns / 1e6);
}

static void assert_clean_stream(const dv_sim_session *s, uint64_t n) {
  const dv_sim_media_stats *m = &s->report.media;
  assert_int_equal(m->received, n);
  assert_int_equal(m->decrypted, n);
  assert_int_equal(m->decrypt_failures, 0);
  assert_int_equal(m->missing, 0);
  assert_int_equal(m->duplicates, 0);
  assert_int_equal(m->reordered, 0);
  assert_int_equal(m->ts_errors, 0);
  assert_int_equal(m->header_errors, 0);
  assert_int_equal(m->ssrc_errors, 0);
  assert_int_equal(m->before_key, 0);
  assert_int_equal(m->before_speaking, 0);
  assert_int_equal(m->decode_failures, 0);
  assert_int_equal(m->silence_frames, 5);
  /* Consecutive sequence numbers and timestamps +960 each. */
  assert_int_equal((uint16_t)(m->last_seq - m->first_seq), n - 1);
  assert_int_equal((uint32_t)(m->last_ts - m->first_ts), (n - 1) * 960);
}

/* ---- 10 s of Opus: 500 packets and 5 silence frames ---------------------- */

static void stream_500(dv_sim_mode mode, int mode_num) {
  fx *f = calloc(1, sizeof(*f));
  dvoice_conn_stats st;
  assert_non_null(f);
  fx_start(f, mode, 0, 1);
  assert_int_equal(dvoice_conn_set_speaking(f->conn,
                                            DVOICE_SPEAKING_MICROPHONE),
                   0);
  f->to_send = 500;
  push_some(f);
  /* The bounded queue refused the rest; on_drain asks for more. */
  assert_true(f->sent < f->to_send);
  assert_int_equal(dvoice_conn_queued(f->conn), 25);
  if (dvt_run_until(&f->loop, media_received_at_least, f, 20000) != 0) {
    print_media("timeout", f->sess);
    fail_msg("the simulator did not receive the stream");
  }
  print_media(dv_sim_mode_name(mode), f->sess);
  assert_int_equal(f->sent, 500);
  assert_true(f->drains > 0);
  assert_int_equal(f->stream_ended, 1);
  assert_clean_stream(f->sess, 505);
  assert_string_equal(f->sess->report.mode, dv_sim_mode_name(mode));
  assert_true(f->sess->report.speaking >= 2);
  assert_int_equal(dvoice_conn_get_stats(f->conn, &st), 0);
  assert_int_equal(st.packets_sent, 505);
  assert_int_equal(st.silence_sent, 5);
  assert_int_equal(st.ssrc, f->sess->ssrc);
  assert_int_equal(st.mode, mode_num);
  assert_int_equal(st.send_errors, 0);
  printf("# departure lateness p50 %.3f p99 %.3f p999 %.3f max %.3f ms, "
         "late ticks %llu, deficit %llu, rtt %.3f ms\n",
         (double)st.lateness_p50 / 1e6, (double)st.lateness_p99 / 1e6,
         (double)st.lateness_p999 / 1e6, (double)st.lateness_max / 1e6,
         (unsigned long long)st.late_ticks, (unsigned long long)st.deficit,
         (double)st.rtt / 1e6);
  assert_string_equal(f->states, "CONNECTING READY");
  fx_stop(f);
  free(f);
}

static void test_stream_aes(void **state) {
  (void)state;
  stream_500(DV_SIM_MODE_AES256_GCM, 1);
}

static void test_stream_xchacha(void **state) {
  (void)state;
  stream_500(DV_SIM_MODE_XCHACHA20, 2);
}

/* ---- 4015 mid-stream: resumed, nothing lost, the gap printed ------------- */

static void check_close(uv_timer_t *t) {
  fx *f = t->data;
  if (!f->closed_mid &&
      f->sess->report.media.received >= (uint64_t)f->close_at) {
    f->closed_mid = 1;
    assert_int_equal(dv_sim_vgw_session_close(f->sess, f->close_code,
                                              dv_sim_uv_now(f->sim)),
                     0);
    dv_sim_uv_flush(f->sim);
    uv_timer_stop(t);
  }
}

static void resume_4015(dv_sim_mode mode) {
  fx *f = calloc(1, sizeof(*f));
  uv_timer_t t;
  dvoice_conn_stats st;
  assert_non_null(f);
  fx_start(f, mode, 0, 0); /* a private pacer this time */
  f->to_send = 200;
  f->close_at = 60;
  f->close_code = 4015;
  uv_timer_init(&f->loop, &t);
  t.data = f;
  uv_timer_start(&t, check_close, 5, 5);
  push_some(f);
  if (dvt_run_until(&f->loop, media_received_at_least, f, 20000) != 0) {
    print_media("timeout", f->sess);
    fail_msg("the stream did not complete after the resume");
  }
  uv_close((uv_handle_t *)&t, NULL);
  print_media("after 4015", f->sess);
  printf("# resume gap (largest inter-arrival): %.3f ms\n",
         (double)f->sess->report.media.ia_max_ns / 1e6);
  assert_true(f->closed_mid);
  assert_string_equal(f->states, "CONNECTING READY RESUMING(4015) READY");
  assert_int_equal(f->sess->report.resumes, 1);
  assert_int_equal(f->sess->report.identifies, 1);
  /* Same SSRC, same key, counters continue: a clean stream. */
  assert_clean_stream(f->sess, 205);
  assert_int_equal(dvoice_conn_get_stats(f->conn, &st), 0);
  assert_int_equal(st.resumes, 1);
  assert_int_equal(st.sessions, 1);
  fx_stop(f);
  free(f);
}

static void test_resume_aes(void **state) {
  (void)state;
  resume_4015(DV_SIM_MODE_AES256_GCM);
}

static void test_resume_xchacha(void **state) {
  (void)state;
  resume_4015(DV_SIM_MODE_XCHACHA20);
}

/* ---- 4006: the application is told; a new session recovers -------------- */

static void new_session_4006(dv_sim_mode mode) {
  fx *f = calloc(1, sizeof(*f));
  dv_sim_session *s2;
  dvoice_conn_stats st;
  assert_non_null(f);
  fx_start(f, mode, 0, 1);
  assert_int_equal(dv_sim_vgw_session_close(f->sess, 4006,
                                            dv_sim_uv_now(f->sim)),
                   0);
  dv_sim_uv_flush(f->sim);
  dvt_run_flag(&f->loop, &f->need_session, 5000);
  assert_int_equal(f->last.state, DVOICE_CONN_NEED_SESSION);
  assert_int_equal(f->last.close_code, 4006);
  assert_int_equal(f->last.reason, DVOICE_CONN_REASON_CLOSED);
  assert_int_equal(f->last.fatal, 0);
  assert_true(f->last.deadline != DVOICE_TSTAMP_NONE);
  assert_int_equal(f->sess->report.resumes, 0);
  /* The application got a new session from its main gateway. */
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(f->sim),
                                          "111111111111", "222222222222",
                                          "session-2", "token-2", &s2),
                   0);
  assert_int_equal(dvoice_conn_new_session(f->conn, "session-2", "token-2",
                                           NULL),
                   0);
  f->ready = 0;
  dvt_run_flag(&f->loop, &f->ready, 10000);
  f->sess = s2;
  f->to_send = 50;
  push_some(f);
  if (dvt_run_until(&f->loop, media_received_at_least, f, 10000) != 0) {
    print_media("timeout", s2);
    fail_msg("no audio on the new session");
  }
  assert_string_equal(f->states,
                      "CONNECTING READY NEED_SESSION(4006) CONNECTING READY");
  assert_int_equal(s2->report.identifies, 1);
  assert_clean_stream(s2, 55);
  assert_int_equal(dvoice_conn_get_stats(f->conn, &st), 0);
  assert_int_equal(st.ssrc, s2->ssrc);
  assert_int_equal(st.sessions, 2);
  fx_stop(f);
  free(f);
}

static void test_new_session_aes(void **state) {
  (void)state;
  new_session_4006(DV_SIM_MODE_AES256_GCM);
}

static void test_new_session_xchacha(void **state) {
  (void)state;
  new_session_4006(DV_SIM_MODE_XCHACHA20);
}

/* ---- dropped ACKs: zombie detected, resumed ------------------------------ */

static int ready_twice(void *ud) {
  fx *f = ud;
  return f->ready >= 2;
}

static void zombie(dv_sim_mode mode) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  /* Short heartbeats so that three missed ACKs take about a second. */
  fx_start(f, mode, 300, 1);
  f->sess->drop_acks = 1; /* on_state clears it when RESUMING */
  if (dvt_run_until(&f->loop, ready_twice, f, 15000) != 0) {
    fail_msg("no resume after the zombie: %s", f->states);
  }
  assert_string_equal(f->states, "CONNECTING READY RESUMING READY");
  assert_int_equal(f->resume_reason, DVOICE_CONN_REASON_ZOMBIE);
  assert_true(f->sess->report.acks_dropped >= 3);
  assert_int_equal(f->sess->report.resumes, 1);
  assert_int_equal(f->sess->report.identifies, 1);
  fx_stop(f);
  free(f);
}

static void test_zombie_aes(void **state) {
  (void)state;
  zombie(DV_SIM_MODE_AES256_GCM);
}

static void test_zombie_xchacha(void **state) {
  (void)state;
  zombie(DV_SIM_MODE_XCHACHA20);
}

/* ---- 10 % loss on the simulator's side: nothing breaks ------------------- */

#define SPEAKER_FRAMES 150

static int loss_done(void *ud) {
  fx *f = ud;
  const dv_sim_media_global *g = dv_sim_media_global_stats(
      dv_sim_uv_media(f->sim));
  return f->stream_ended > 0 &&
         f->sess->report.media.received >= (uint64_t)f->to_send + 5 &&
         dv_sim_speaker_sent(f->speaker) >= SPEAKER_FRAMES + 5 &&
         f->opus_rx + g->lost >= SPEAKER_FRAMES + 5;
}

static void loss(dv_sim_mode mode) {
  fx *f = calloc(1, sizeof(*f));
  dv_sim_media *m;
  const dv_sim_media_global *g;
  dvoice_conn_stats st;
  assert_non_null(f);
  fx_start(f, mode, 0, 1);
  m = dv_sim_uv_media(f->sim);
  dv_sim_media_set_knobs(m, 100000, 0, 0); /* 10 % of datagrams to us */
  assert_int_equal(dv_sim_media_speaker_start(m, "111111111111", "999",
                                              4242, SPEAKER_FRAMES,
                                              dv_sim_uv_now(f->sim),
                                              &f->speaker),
                   0);
  dv_sim_uv_flush(f->sim);
  f->to_send = SPEAKER_FRAMES;
  push_some(f);
  if (dvt_run_until(&f->loop, loss_done, f, 20000) != 0) {
    fail_msg("loss test did not finish: rx %llu", (unsigned long long)f->opus_rx);
  }
  g = dv_sim_media_global_stats(m);
  printf("# loss: speaker sent %llu, we received %llu, simulator lost %llu\n",
         (unsigned long long)dv_sim_speaker_sent(f->speaker),
         (unsigned long long)f->opus_rx, (unsigned long long)g->lost);
  /* The connection never left READY; loss only costs packets. */
  assert_int_equal(f->left_ready, 0);
  assert_string_equal(f->states, "CONNECTING READY");
  assert_true(g->lost > 0);
  assert_true(f->opus_rx < SPEAKER_FRAMES + 5);
  assert_true(f->opus_rx_mapped > 0);
  assert_int_equal(f->speaking_user, 999);
  assert_int_equal(dvoice_conn_get_stats(f->conn, &st), 0);
  assert_int_equal(st.decrypt_failures, 0);
  assert_int_equal(st.packets_received, f->opus_rx);
  /* Our own stream is untouched by the loss on the way back. */
  assert_clean_stream(f->sess, SPEAKER_FRAMES + 5);
  fx_stop(f);
  free(f);
}

static void test_loss_aes(void **state) {
  (void)state;
  loss(DV_SIM_MODE_AES256_GCM);
}

static void test_loss_xchacha(void **state) {
  (void)state;
  loss(DV_SIM_MODE_XCHACHA20);
}

/* ---- pull style: PCM encoded by the library ----------------------------- */

static int pull_done(void *ud) {
  fx *f = ud;
  return f->stream_ended > 0 && f->sess->report.media.received >= 105;
}

static void test_pull_pcm(void **state) {
  fx *f = calloc(1, sizeof(*f));
  int calls;
  (void)state;
  assert_non_null(f);
  fx_start_ex(f, DV_SIM_MODE_XCHACHA20, 0, 1, 1);
  /* Push is refused on a pull connection; play starts the source. */
  assert_int_equal(dvoice_conn_send_opus(f->conn, f->frames[0], f->lens[0]),
                   DVOICE_ERR_INVALID_STATE);
  assert_int_equal(f->source_calls, 0);
  f->pcm_frames = 100;
  assert_int_equal(dvoice_conn_play(f->conn), 0);
  assert_int_equal(f->source_calls, 0); /* never synchronously */
  if (dvt_run_until(&f->loop, pull_done, f, 15000) != 0) {
    print_media("timeout", f->sess);
    fail_msg("pull stream incomplete");
  }
  print_media("pull pcm", f->sess);
  assert_clean_stream(f->sess, 105);
  assert_int_equal(f->sess->report.media.decoded, 105);
  /* Quiet: the source is still asked every tick; stop ends that. */
  calls = f->source_calls;
  assert_true(calls >= 101);
  assert_int_equal(dvoice_conn_stop(f->conn), 0);
  calls = f->source_calls;
  {
    int fired = 0;
    uv_timer_init(&f->loop, &f->wait);
    f->wait.data = &fired;
    uv_timer_start(&f->wait, set_flag_timer, 100, 0);
    dvt_run_flag(&f->loop, &fired, 2000);
    uv_close((uv_handle_t *)&f->wait, NULL);
  }
  assert_int_equal(f->source_calls, calls);
  fx_stop(f);
  free(f);
}

/* ---- the uv_timer fallback with a spin ----------------------------------- */

static void test_uv_timer_pacer(void **state) {
  fx *f = calloc(1, sizeof(*f));
  dvoice_pacer_stats ps;
  (void)state;
  assert_non_null(f);
  fx_start(f, DV_SIM_MODE_AES256_GCM, 0, 2);
  f->to_send = 100;
  push_some(f);
  if (dvt_run_until(&f->loop, media_received_at_least, f, 15000) != 0) {
    fail_msg("uv_timer pacer: stream incomplete");
  }
  assert_clean_stream(f->sess, 105);
  assert_int_equal(dvoice_pacer_get_stats(f->pacer, &ps), 0);
  assert_int_equal(ps.connections, 1);
  assert_true(ps.ticks >= 105);
  printf("# uv_timer pacer wake-up lateness p50 %.3f p99 %.3f max %.3f ms\n",
         (double)ps.lateness_p50 / 1e6, (double)ps.lateness_p99 / 1e6,
         (double)ps.lateness_max / 1e6);
  fx_stop(f);
  free(f);
}

/* ---- closing from inside callbacks --------------------------------------- */

static void close_from(int where) {
  fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  if (where == 0) {
    /* fx_start_ex returns right after READY, where the close happened. */
    f->close_in_ready = 1;
    fx_start_ex(f, DV_SIM_MODE_AES256_GCM, 0, 0, 0);
  } else {
    fx_start_ex(f, DV_SIM_MODE_AES256_GCM, 0, 1, 1);
    f->close_in_source = 1;
    f->pcm_frames = 1000;
    assert_int_equal(dvoice_conn_play(f->conn), 0);
  }
  dvt_run_flag(&f->loop, &f->conn_closed, 5000);
  assert_int_equal(f->conn_closed, 1);
  assert_int_equal(f->after_close_events, 0);
  if (where == 1) {
    assert_int_equal(f->source_calls, 10);
    assert_int_equal(dvoice_pacer_close(f->pacer, pacer_closed, f), 0);
    dvt_run_flag(&f->loop, &f->pacer_closed, 5000);
  }
  assert_int_equal(dv_sim_uv_close(f->sim, sim_closed, f), 0);
  dvt_run_flag(&f->loop, &f->sim_closed, 5000);
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  free(f);
}

static void test_close_in_on_state(void **state) {
  (void)state;
  close_from(0);
}

static void test_close_in_source(void **state) {
  (void)state;
  close_from(1);
}

/* ---- argument and state errors ------------------------------------------- */

static void test_api_errors(void **state) {
  uv_loop_t loop;
  dvoice_conn_settings cs;
  dvoice_conn *c = (dvoice_conn *)&loop;
  dvoice_pacer *p;
  dvoice_pacer_settings ps;
  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  dvoice_conn_settings_default(&cs);
  cs.guild_id = GUILD;
  cs.user_id = USER;
  cs.session_id = "s";
  cs.token = "t";
  cs.endpoint = "ws://127.0.0.1:1";
  assert_int_equal(dvoice_conn_new(NULL, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_new(&c, NULL, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_null(c);
  cs.token = "has space";
  assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cs.token = "t";
  cs.guild_id = 0;
  assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cs.guild_id = GUILD;
  cs.drain_threshold = cs.queue_frames;
  assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cs.drain_threshold = 12;
  cs.auto_speaking = 8;
  assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  cs.auto_speaking = 1;
  assert_int_equal(dvoice_conn_send_opus(NULL, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_play(NULL), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_stop(NULL), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_close(NULL, NULL), DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_get_stats(NULL, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_get_state(NULL), DVOICE_CONN_DISCONNECTED);
  assert_string_equal(dvoice_conn_state_name(DVOICE_CONN_WAIT_SERVER),
                      "WAIT_SERVER");
  assert_string_equal(dvoice_conn_reason_name(DVOICE_CONN_REASON_ZOMBIE),
                      "ZOMBIE");
  assert_string_equal(dvoice_conn_state_name((dvoice_conn_state)99),
                      "UNKNOWN");
  dvoice_pacer_settings_default(&ps);
  ps.spin = 3 * DVOICE_MS;
  assert_int_equal(dvoice_pacer_new(&p, &loop, &ps),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_pacer_new(NULL, &loop, NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  /* A pacer of another loop is refused. */
  {
    uv_loop_t other;
    assert_int_equal(uv_loop_init(&other), 0);
    assert_int_equal(dvoice_pacer_new(&p, &other, NULL), 0);
    cs.pacer = p;
    assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL),
                     DVOICE_ERR_INVALID_STATE);
    cs.pacer = NULL;
    assert_int_equal(dvoice_pacer_close(p, NULL, NULL), 0);
    assert_int_equal(dvoice_pacer_close(p, NULL, NULL),
                     DVOICE_ERR_INVALID_STATE);
    uv_run(&other, UV_RUN_DEFAULT);
    assert_int_equal(dvt_loop_teardown(&other), 0);
  }
  /* A connection to a closed port: errors on the live object, then close. */
  assert_int_equal(dvoice_conn_new(&c, &loop, &cs, NULL, NULL), 0);
  assert_int_equal(dvoice_conn_send_opus(c, (const uint8_t *)"x", 0),
                   DVOICE_ERR_INVALID_ARGUMENT);
  {
    static const uint8_t big[1276];
    assert_int_equal(dvoice_conn_send_opus(c, big, sizeof(big)),
                     DVOICE_ERR_TOO_LARGE);
  }
  assert_int_equal(dvoice_conn_play(c), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dvoice_conn_set_speaking(c, 8),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_new_session(c, NULL, "t", NULL),
                   DVOICE_ERR_INVALID_ARGUMENT);
  assert_int_equal(dvoice_conn_send_opus(c, (const uint8_t *)"\xf8\xff\xfe",
                                         3),
                   0);
  assert_int_equal(dvoice_conn_queued(c), 1);
  assert_int_equal(dvoice_conn_close(c, NULL), 0);
  assert_int_equal(dvoice_conn_close(c, NULL), DVOICE_ERR_INVALID_STATE);
  assert_int_equal(dvoice_conn_send_opus(c, (const uint8_t *)"x", 1),
                   DVOICE_ERR_INVALID_STATE);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(dvt_loop_teardown(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stream_aes),
      cmocka_unit_test(test_stream_xchacha),
      cmocka_unit_test(test_resume_aes),
      cmocka_unit_test(test_resume_xchacha),
      cmocka_unit_test(test_new_session_aes),
      cmocka_unit_test(test_new_session_xchacha),
      cmocka_unit_test(test_zombie_aes),
      cmocka_unit_test(test_zombie_xchacha),
      cmocka_unit_test(test_loss_aes),
      cmocka_unit_test(test_loss_xchacha),
      cmocka_unit_test(test_pull_pcm),
      cmocka_unit_test(test_uv_timer_pacer),
      cmocka_unit_test(test_close_in_on_state),
      cmocka_unit_test(test_close_in_source),
      cmocka_unit_test(test_api_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
