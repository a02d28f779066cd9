/*
 * Fidelity of the simulator, checked from outside: discord.js's
 * @discordjs/voice (a real client no one here wrote, run by Node 22 from
 * .npm-peers) joins the simulator's voice gateway over wss:// with DAVE off,
 * runs the whole handshake, and plays a 5 s Ogg Opus tone made at test time.
 * The test then reads what the simulator saw: every packet decrypted and
 * Opus-decoded, the SSRC and mode discord.js reported, unbroken sequence
 * numbers and timestamps, and no protocol violation. Variants: XChaCha20
 * with Hello after Ready, a 4015 resume, a zombie resume, and the receive
 * direction (discord.js hears the simulator's fake speaker).
 */
#include "dvt_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sim/sim_uv.h"
#include "dvt_ogg.h"

#define FRAMES 250 /* 5 s of 20 ms frames */
#define GUILD "41771983423143900"
#define USER "104694319306248192"
#define SESSION "djs-s0"
#define TOKEN "djs-t0"

typedef struct fixture {
  uv_loop_t loop;
  dvt_certs certs;
  char ogg[256];
  const char *peers;
} fixture;

/* Gets the peers, certificates, media and a loop ready; skips the test when
 * no peers are installed (dvt_getenv_required fails it under CI). */
static void fixture_init(fixture *f) {
  const char *peers = dvt_getenv_required("DVOICE_NPM_PEERS");
  char probe[512];
  FILE *p;
  memset(f, 0, sizeof(*f));
  if (peers == NULL) {
    skip();
  }
  snprintf(probe, sizeof(probe),
           "%s/node_modules/@discordjs/voice/package.json", peers);
  p = fopen(probe, "r");
  if (p == NULL) {
    fail_msg("DVOICE_NPM_PEERS=%s lacks @discordjs/voice: run .ci/setup",
             peers);
  }
  fclose(p);
  f->peers = peers;
  dvt_certs_make(&f->certs);
  snprintf(f->ogg, sizeof(f->ogg), "%s/tone.ogg", f->certs.dir);
  assert_int_equal(dvt_ogg_tone_write(f->ogg, FRAMES), 0);
  assert_int_equal(uv_loop_init(&f->loop), 0);
}

static void fixture_fini(fixture *f) {
  assert_int_equal(dvt_loop_teardown(&f->loop), 0);
  dvt_certs_remove(&f->certs);
}

static void on_sim_closed(dv_sim_uv *sim, void *ud) {
  (void)sim;
  *(int *)ud = 1;
}

static int peer_exited(void *ud) {
  return ((const dvt_peer *)ud)->exited;
}

/* Prints what the simulator recorded, for failing runs. */
static void dump_report(dv_sim_uv *sim) {
  dv_buf b;
  dv_buf_init(&b, NULL);
  if (dv_sim_vgw_report_json(dv_sim_uv_vgw(sim), &b) == 0 &&
      dv_buf_append(&b, "", 1) == 0) {
    fprintf(stderr, "# sim report: %s\n", (const char *)b.data);
  }
  dv_buf_free(&b);
}

/* What the simulator does to the session once discord.js is ready. */
typedef enum fault {
  FAULT_NONE = 0,
  FAULT_4015,  /* close with 4015 (voice server crashed) after 1 s */
  FAULT_ZOMBIE /* swallow heartbeat ACKs until discord.js resumes */
} fault;

static int resumed(void *ud) {
  return ((const dv_sim_session *)ud)->report.resumes > 0;
}

static int never(void *ud) {
  (void)ud;
  return 0;
}

/*
 * Runs discord.js against a simulator whose Ready lists |modes| (NULL: the
 * default list, AES-GCM first), injects |flt|, and checks that discord.js
 * settled on |want_mode| and that everything it played arrived intact.
 */
static void play_once(fixture *f, const char *const *modes, size_t nmodes,
                      const char *want_mode, fault flt, int hello_late) {
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_session *s;
  dvt_peer peer;
  char line[256], mode[64];
  unsigned long ssrc = 0, played = 0, idx = 0;
  double ready_ms = 0;
  int sim_closed = 0, resume = flt != FAULT_NONE;
  const dv_sim_media_stats *m;

  dv_sim_uv_settings_default(&st);
  st.cert_file = f->certs.server_cert;
  st.key_file = f->certs.server_key;
  /* A short interval, so that discord.js's v8 heartbeats are checked too. */
  st.vgw.heartbeat_interval_ms = flt == FAULT_ZOMBIE ? 400 : 1000;
  st.vgw.hello_after_ready = hello_late;
  if (modes != NULL) {
    for (size_t i = 0; i < nmodes; i++) {
      st.vgw.modes[i] = modes[i];
    }
    st.vgw.nmodes = nmodes;
  }
  assert_int_equal(dv_sim_uv_new(&f->loop, &st, &sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(sim), GUILD, USER,
                                          SESSION, TOKEN, &s),
                   0);
  {
    const char *args[] = {"--endpoint",
                          dv_sim_uv_endpoint(sim),
                          "--ca",
                          f->certs.ca,
                          "--ogg",
                          f->ogg,
                          "--prefix",
                          "djs",
                          "--guild-base",
                          GUILD,
                          "--user",
                          USER,
                          getenv("DVT_VERBOSE") ? "--debug" : NULL,
                          NULL};
    dvt_peer_start(&peer, &f->loop, f->peers, dvt_peer_script("djs_voice.js"),
                   args);
  }
  dvt_peer_wait(&peer, "READY ", line, sizeof(line), 30000);
  assert_int_equal(
      sscanf(line, "%lu %lu %63s %lf", &idx, &ssrc, mode, &ready_ms), 4);
  assert_int_equal(idx, 0);
  if (flt == FAULT_4015) {
    /* One second into the stream the voice server "crashes" (4015): a
     * client must resume on a new WebSocket with the same session. */
    (void)dvt_run_until(&f->loop, never, NULL, 1000);
    assert_int_equal(dv_sim_vgw_session_close(s, 4015, dv_sim_uv_now(sim)), 0);
    dv_sim_uv_flush(sim);
  } else if (flt == FAULT_ZOMBIE) {
    /* discord.js closes a connection whose last three heartbeats went
     * unanswered and resumes; the simulator answers again from then on. */
    s->drop_acks = 1;
    if (dvt_run_until(&f->loop, resumed, s, 10000) != 0) {
      fail_msg("discord.js did not resume a zombie connection");
    }
    s->drop_acks = 0;
  }
  dvt_peer_wait(&peer, "PLAYED ", line, sizeof(line), 30000);
  assert_int_equal(sscanf(line, "%lu %lu", &idx, &played), 2);
  dvt_peer_wait(&peer, "DONE", NULL, 0, 15000);
  if (dvt_peer_has(&peer, "ERROR")) {
    fail_msg("discord.js reported an error:\n%s", (char *)peer.text.data);
  }
  /* The script exits by itself once it left. */
  if (dvt_run_until(&f->loop, peer_exited, &peer, 10000) != 0) {
    fail_msg("discord.js did not exit after DONE");
  }
  dvt_peer_stop(&peer);
  assert_int_equal(peer.term_signal, 0);
  assert_int_equal(peer.exit_status, 0);

  m = &s->report.media;
  fprintf(stderr,
          "# discord.js: ssrc %lu, mode %s, ready in %.1f ms, played %lu; "
          "sim: received %llu decrypted %llu decoded %llu silence %llu "
          "before_speaking %llu, inter-arrival mean %.3f ms max dev %.3f ms\n",
          ssrc, mode, ready_ms, played, (unsigned long long)m->received,
          (unsigned long long)m->decrypted, (unsigned long long)m->decoded,
          (unsigned long long)m->silence_frames,
          (unsigned long long)m->before_speaking, m->ia_mean_ns / 1e6,
          (double)m->ia_max_dev_ns / 1e6);
  if (s->report.violations.n != 0 || dv_sim_uv_vgw(sim)->violations.n != 0 ||
      m->decrypt_failures != 0 || m->decode_failures != 0) {
    dump_report(sim);
  }

  /* The handshake, as the simulator saw it. */
  assert_int_equal(s->report.identifies, 1);
  assert_int_equal(s->report.resumes, resume ? 1 : 0);
  assert_int_equal(s->report.resume_failures, 0);
  if (flt == FAULT_ZOMBIE) {
    assert_true(s->report.acks_dropped >= 3);
  }
  assert_int_equal(s->report.connections, resume ? 2 : 1);
  assert_int_equal(s->report.select_protocols, 1);
  /* Speaking on and off (after a resume discord.js announces it again, if
   * it had already begun to play: that depends on timing). */
  assert_true(s->report.speaking >= 2);
  assert_true(s->report.heartbeats >= 3);
  assert_string_equal(s->report.mode, want_mode);
  assert_string_equal(mode, want_mode);
  assert_int_equal(ssrc, s->ssrc);
  assert_int_equal(s->report.violations.n, 0);
  assert_int_equal(dv_sim_uv_vgw(sim)->violations.n, 0);
  /* discord.js left with a normal closure. */
  assert_int_equal(s->report.last_close_code, 1000);

  /* Every packet discord.js played arrived, decrypted and decoded. */
  assert_true(m->received >= (resume ? FRAMES / 2 : FRAMES));
  assert_int_equal(m->received, played);
  assert_int_equal(m->decrypted, m->received);
  assert_int_equal(m->decrypt_failures, 0);
  assert_int_equal(m->decoded, m->received);
  assert_int_equal(m->decode_failures, 0);
  /* Each frame of the file exactly once, then the silence tail. discord.js
   * prepares five silence frames but its player turns idle before the
   * cycle that would send the fifth, so four reach the wire. While it
   * resumes, discord.js's player goes on reading the file and drops the
   * frames (the connection is not Ready), without consuming sequence
   * numbers. */
  if (resume) {
    assert_true(m->received - m->silence_frames <= FRAMES);
  } else {
    assert_int_equal(m->received - m->silence_frames, FRAMES);
  }
  assert_true(m->silence_frames >= 1 && m->silence_frames <= 5);
  assert_int_equal(m->header_errors, 0);
  assert_int_equal(m->ssrc_errors, 0);
  assert_int_equal(m->before_key, 0);
  /* One unbroken stream: seq +1 and timestamp +960 per packet. */
  assert_int_equal(m->missing, 0);
  assert_int_equal(m->duplicates, 0);
  assert_int_equal(m->reordered, 0);
  assert_int_equal(m->ts_errors, 0);
  assert_int_equal((uint16_t)(m->last_seq - m->first_seq) + 1u, m->received);
  assert_int_equal((uint32_t)(m->last_ts - m->first_ts),
                   960u * (uint32_t)(m->received - 1));
  assert_int_equal(m->ia_count, m->received - 1);
  /* IP discovery ran and discord.js's 5 s UDP keepalive was understood. */
  assert_true(m->discovery_requests >= 1);
  assert_true(m->keepalives >= 1);

  assert_int_equal(dv_sim_uv_close(sim, on_sim_closed, &sim_closed), 0);
  dvt_run_flag(&f->loop, &sim_closed, 5000);
}

/* Ready lists AES-256-GCM first, as Discord does: discord.js takes it. */
static void test_djs_plays_aes(void **state) {
  fixture f;
  (void)state;
  fixture_init(&f);
  play_once(&f, NULL, 0, "aead_aes256_gcm_rtpsize", FAULT_NONE, 0);
  fixture_fini(&f);
}

/* A server without AES (Discord's docs allow it): XChaCha20 through
 * @noble/ciphers. This server also sends Hello after Ready, an order
 * Discord uses too. */
static void test_djs_plays_xchacha(void **state) {
  static const char *const modes[] = {"aead_xchacha20_poly1305_rtpsize",
                                      "xsalsa20_poly1305_lite_rtpsize",
                                      "xsalsa20_poly1305"};
  fixture f;
  (void)state;
  fixture_init(&f);
  play_once(&f, modes, 3, "aead_xchacha20_poly1305_rtpsize", FAULT_NONE, 1);
  fixture_fini(&f);
}

/* The voice server closes with 4015 mid-stream: discord.js resumes (op 7
 * with seq_ack, op 9) on the same endpoint and keeps its UDP socket, key
 * and RTP counters. */
static void test_djs_resumes(void **state) {
  fixture f;
  (void)state;
  fixture_init(&f);
  play_once(&f, NULL, 0, "aead_aes256_gcm_rtpsize", FAULT_4015, 0);
  fixture_fini(&f);
}

/*
 * The other direction: a fake speaker in the channel sends 100 frames the
 * way Discord relays a member's audio (one-byte-header RTP extension,
 * encrypted extension body, op 11 and op 5 on the gateway first), and
 * discord.js's receiver decrypts, strips the extension and hands out every
 * Opus packet.
 */
static void test_djs_receives(void **state) {
  enum { SPEAKER_FRAMES = 100 };
  static const char speaker[] = "80351110224678912";
  fixture f;
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_session *s;
  dv_sim_speaker *sp;
  dvt_peer peer;
  char line[256];
  unsigned long n = 0, silent = 0, minlen = 0, maxlen = 0;
  uint64_t sent;
  int sim_closed = 0;
  (void)state;
  fixture_init(&f);
  dv_sim_uv_settings_default(&st);
  st.cert_file = f.certs.server_cert;
  st.key_file = f.certs.server_key;
  assert_int_equal(dv_sim_uv_new(&f.loop, &st, &sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(sim), GUILD, USER,
                                          SESSION, TOKEN, &s),
                   0);
  {
    const char *args[] = {"--endpoint",
                          dv_sim_uv_endpoint(sim),
                          "--ca",
                          f.certs.ca,
                          "--mode",
                          "listen",
                          "--listen",
                          speaker,
                          "--guild-base",
                          GUILD,
                          "--user",
                          USER,
                          NULL};
    dvt_peer_start(&peer, &f.loop, f.peers, dvt_peer_script("djs_voice.js"),
                   args);
  }
  dvt_peer_wait(&peer, "READY ", NULL, 0, 30000);
  assert_int_equal(dv_sim_media_speaker_start(dv_sim_uv_media(sim), GUILD,
                                              speaker, 4242, SPEAKER_FRAMES,
                                              dv_sim_uv_now(sim), &sp),
                   0);
  dv_sim_uv_flush(sim);
  dvt_peer_wait(&peer, "HEARD ", line, sizeof(line), 30000);
  assert_int_equal(
      sscanf(line, "%lu %lu %lu %lu", &n, &silent, &minlen, &maxlen), 4);
  dvt_peer_wait(&peer, "DONE", NULL, 0, 15000);
  if (dvt_peer_has(&peer, "ERROR")) {
    fail_msg("discord.js reported an error:\n%s", (char *)peer.text.data);
  }
  if (dvt_run_until(&f.loop, peer_exited, &peer, 10000) != 0) {
    fail_msg("discord.js did not exit after DONE");
  }
  dvt_peer_stop(&peer);
  assert_int_equal(peer.exit_status, 0);
  sent = dv_sim_speaker_sent(sp);
  fprintf(stderr,
          "# speaker sent %llu; discord.js heard %lu (%lu silence), "
          "%lu..%lu bytes\n",
          (unsigned long long)sent, n, silent, minlen, maxlen);
  assert_int_equal(sent, SPEAKER_FRAMES + 5);
  /* The first frames race op 5 (discord.js drops audio from SSRCs it cannot
   * map yet); every later one must come through, the silence tail too. */
  assert_true(n + 3 >= sent && n <= sent);
  assert_int_equal(silent, 5);
  /* Opus frames of the tone, not ciphertext or extension bytes. */
  assert_true(minlen == 3 && maxlen > 3 && maxlen < 1276);
  assert_int_equal(s->report.violations.n, 0);
  assert_int_equal(dv_sim_uv_vgw(sim)->violations.n, 0);
  assert_int_equal(dv_sim_uv_close(sim, on_sim_closed, &sim_closed), 0);
  dvt_run_flag(&f.loop, &sim_closed, 5000);
  fixture_fini(&f);
}

/* The voice server stops acknowledging heartbeats: discord.js gives up
 * after three, closes the WebSocket itself and resumes on a new one. */
static void test_djs_zombie(void **state) {
  fixture f;
  (void)state;
  fixture_init(&f);
  play_once(&f, NULL, 0, "aead_aes256_gcm_rtpsize", FAULT_ZOMBIE, 0);
  fixture_fini(&f);
}

/*
 * Two discord.js members in one channel: the first plays the tone, the
 * simulator forwards it (re-encrypted for the other member, with the
 * speaker's op 5), and the second one's receiver gets every packet.
 */
static void test_djs_member_hears_member(void **state) {
  static const char user2[] = "104694319306248193"; /* USER + 1 */
  fixture f;
  dv_sim_uv_settings st;
  dv_sim_uv *sim;
  dv_sim_session *a, *b;
  dvt_peer peer;
  char line[256];
  unsigned long n = 0, silent = 0, minlen = 0, maxlen = 0, idx = 0, played = 0;
  int sim_closed = 0;
  const dv_sim_media_stats *m;
  (void)state;
  fixture_init(&f);
  dv_sim_uv_settings_default(&st);
  st.cert_file = f.certs.server_cert;
  st.key_file = f.certs.server_key;
  assert_int_equal(dv_sim_uv_new(&f.loop, &st, &sim), 0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(sim), GUILD, USER,
                                          "djs-s0", "djs-t0", &a),
                   0);
  assert_int_equal(dv_sim_vgw_add_session(dv_sim_uv_vgw(sim), GUILD, user2,
                                          "djs-s1", "djs-t1", &b),
                   0);
  {
    const char *args[] = {"--endpoint",
                          dv_sim_uv_endpoint(sim),
                          "--ca",
                          f.certs.ca,
                          "--mode",
                          "pair",
                          "--ogg",
                          f.ogg,
                          "--guild-base",
                          GUILD,
                          "--user",
                          USER,
                          NULL};
    dvt_peer_start(&peer, &f.loop, f.peers, dvt_peer_script("djs_voice.js"),
                   args);
  }
  dvt_peer_wait(&peer, "PLAYED ", line, sizeof(line), 30000);
  assert_int_equal(sscanf(line, "%lu %lu", &idx, &played), 2);
  dvt_peer_wait(&peer, "HEARD ", line, sizeof(line), 30000);
  assert_int_equal(
      sscanf(line, "%lu %lu %lu %lu", &n, &silent, &minlen, &maxlen), 4);
  dvt_peer_wait(&peer, "DONE", NULL, 0, 15000);
  if (dvt_peer_has(&peer, "ERROR")) {
    fail_msg("discord.js reported an error:\n%s", (char *)peer.text.data);
  }
  if (dvt_run_until(&f.loop, peer_exited, &peer, 10000) != 0) {
    fail_msg("discord.js did not exit after DONE");
  }
  dvt_peer_stop(&peer);
  assert_int_equal(peer.exit_status, 0);
  m = &a->report.media;
  fprintf(stderr,
          "# member A played %lu, sim received %llu, forwarded %llu; "
          "member B heard %lu (%lu silence), %lu..%lu bytes\n",
          played, (unsigned long long)m->received,
          (unsigned long long)m->forwarded, n, silent, minlen, maxlen);
  assert_int_equal(m->received, played);
  assert_int_equal(m->decrypted, m->received);
  assert_int_equal(m->decode_failures, 0);
  assert_int_equal(m->forwarded, m->received);
  /* The first packets race the speaker's op 5 to B (discord.js drops audio
   * from SSRCs it cannot map yet); every later one must come through. */
  assert_true(n + 3 >= played && n <= played);
  assert_int_equal(silent, m->silence_frames);
  assert_true(minlen == 3 && maxlen > 3 && maxlen < 1276);
  assert_int_equal(b->report.media.received, 0);
  assert_int_equal(a->report.violations.n, 0);
  assert_int_equal(b->report.violations.n, 0);
  assert_int_equal(dv_sim_uv_vgw(sim)->violations.n, 0);
  assert_int_equal(dv_sim_uv_close(sim, on_sim_closed, &sim_closed), 0);
  dvt_run_flag(&f.loop, &sim_closed, 5000);
  fixture_fini(&f);
}

int main(void) {
  /* Every case needs the npm peers; skip() in each would count as failures. */
  if (dvt_skip_program_unless("DVOICE_NPM_PEERS", "(run bash .ci/setup)")) {
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_djs_plays_aes),
      cmocka_unit_test(test_djs_plays_xchacha),
      cmocka_unit_test(test_djs_resumes),
      cmocka_unit_test(test_djs_zombie),
      cmocka_unit_test(test_djs_receives),
      cmocka_unit_test(test_djs_member_hears_member),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
