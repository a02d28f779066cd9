/*
 * The smallest dvoice program: connect to a voice server, play a raw PCM
 * file (s16le, 48 kHz, stereo), leave. It starts from the three values a
 * bot's main gateway hands out when it joins a channel (op 4): the
 * session_id of VOICE_STATE_UPDATE and the token and endpoint of
 * VOICE_SERVER_UPDATE. To let dvoice send op 4 and pair those events
 * itself, see adapter.c.
 *
 *   minimal GUILD_ID USER_ID SESSION_ID TOKEN ENDPOINT FILE.raw
 */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include <dvoice/dvoice.h>

static FILE *in;
static int16_t pcm[960 * 2]; /* one 20 ms frame */

/* Called by the pacer exactly when the next frame is due. */
static int source(dvoice_conn *c, dvoice_source_frame *out, void *ud) {
  (void)ud;
  if (fread(pcm, sizeof(pcm), 1, in) != 1) {
    dvoice_conn_close(c, NULL); /* the end: leave */
    return 0;                   /* out->kind is NOTHING */
  }
  out->kind = DVOICE_SOURCE_PCM_S16; /* dvoice encodes it with libopus */
  out->data = pcm;
  return 0;
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  (void)ud;
  printf("voice: %s\n", dvoice_conn_state_name(ev->state));
  if (ev->state == DVOICE_CONN_READY) {
    dvoice_conn_play(c); /* start asking source() every 20 ms */
  } else if (ev->state == DVOICE_CONN_DISCONNECTED) {
    dvoice_conn_close(c, NULL);
  }
}

int main(int argc, char **argv) {
  dvoice_conn_settings s;
  dvoice_conn_callbacks cb = {0};
  dvoice_conn *c;
  int rv;
  if (argc != 7 || (in = fopen(argv[6], "rb")) == NULL) {
    fprintf(stderr, "usage: minimal GUILD USER SESSION TOKEN ENDPOINT "
                    "FILE.raw\n");
    return 2;
  }
  dvoice_conn_settings_default(&s);
  s.guild_id = strtoull(argv[1], NULL, 10);
  s.user_id = strtoull(argv[2], NULL, 10);
  s.session_id = argv[3];
  s.token = argv[4];
  s.endpoint = argv[5];
  cb.on_state = on_state;
  cb.source = source;
  rv = dvoice_conn_new(&c, uv_default_loop(), &s, &cb, NULL);
  if (rv != 0) {
    fprintf(stderr, "dvoice_conn_new: %s\n", dvoice_strerror(rv));
    return 1;
  }
  uv_run(uv_default_loop(), UV_RUN_DEFAULT); /* returns once closed */
  fclose(in);
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}
