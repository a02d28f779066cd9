/*
 * Embedding dvoice in a bot that already has a main gateway connection:
 * the adapter. dvoice asks the application to send op 4 (send_voice_state)
 * and the application feeds it the two voice dispatches it receives. dvoice
 * pairs them, connects, follows moves and region changes, and sends op 4
 * with a null channel when leaving.
 *
 * The two functions marked "your gateway" stand for the application's own
 * gateway library; here they are stubs so that the file compiles and runs
 * (it then times out waiting for the dispatches, which is the expected
 * outcome without a real gateway).
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include <dvoice/dvoice.h>

/* --- your gateway ------------------------------------------------------ */

/* Sends a gateway payload (op 4 here). */
static int my_gateway_send(const char *json) {
  printf("gateway <- %s\n", json);
  return 0;
}

/* --- the adapter --------------------------------------------------------- */

/* dvoice wants op 4 sent: build it and hand it to the gateway. */
static int send_voice_state(dvoice_client *cl, uint64_t guild_id,
                            uint64_t channel_id, int self_mute, int self_deaf,
                            void *ud) {
  char json[256], channel[32] = "null";
  (void)cl;
  (void)ud;
  if (channel_id != 0) {
    snprintf(channel, sizeof(channel), "\"%llu\"",
             (unsigned long long)channel_id);
  }
  snprintf(json, sizeof(json),
           "{\"op\":4,\"d\":{\"guild_id\":\"%llu\",\"channel_id\":%s,"
           "\"self_mute\":%s,\"self_deaf\":%s}}",
           (unsigned long long)guild_id, channel, self_mute ? "true" : "false",
           self_deaf ? "true" : "false");
  return my_gateway_send(json);
}

/* Call this from your gateway's dispatch handler with the "d" object. */
void my_on_dispatch(dvoice_client *cl, const char *name, const char *d,
                    size_t len);
void my_on_dispatch(dvoice_client *cl, const char *name, const char *d,
                    size_t len) {
  if (strcmp(name, "VOICE_STATE_UPDATE") == 0) {
    dvoice_client_voice_state_json(cl, d, len);
  } else if (strcmp(name, "VOICE_SERVER_UPDATE") == 0) {
    dvoice_client_voice_server_json(cl, d, len);
  }
}

/* --- the application ----------------------------------------------------- */

static void on_join(dvoice_client *cl, dvoice_conn *c,
                    const dvoice_join_event *ev, void *ud) {
  (void)ud;
  printf("join: %s", dvoice_join_state_name(ev->state));
  if (ev->state == DVOICE_JOIN_ENDED) {
    printf(" (%s)", dvoice_join_reason_name(ev->reason));
    dvoice_conn_close(c, NULL);
    dvoice_client_close(cl, NULL);
  }
  printf("\n");
}

static void on_state(dvoice_conn *c, const dvoice_conn_event *ev, void *ud) {
  static const uint8_t silence[3] = {0xF8, 0xFF, 0xFE};
  (void)ud;
  printf("voice: %s\n", dvoice_conn_state_name(ev->state));
  if (ev->state == DVOICE_CONN_READY) {
    dvoice_conn_send_opus(c, silence, sizeof(silence)); /* push style */
  }
}

int main(void) {
  static const dvoice_gateway_adapter adapter = {send_voice_state};
  dvoice_client_settings s;
  dvoice_client_callbacks ccb = {on_join};
  dvoice_conn_callbacks cb = {0};
  dvoice_client *cl;
  dvoice_conn *c;
  int rv;
  dvoice_client_settings_default(&s);
  s.user_id = 222222222222222222ull; /* the bot's id, from READY */
  s.adapter = &adapter;
  s.join_timeout = 2 * DVOICE_SECONDS;
  rv = dvoice_client_new(&cl, uv_default_loop(), &s, &ccb, NULL);
  if (rv != 0) {
    fprintf(stderr, "dvoice_client_new: %s\n", dvoice_strerror(rv));
    return 1;
  }
  cb.on_state = on_state;
  rv = dvoice_client_join(cl, 111111111111111111ull, 333333333333333333ull, 0,
                          &cb, NULL, &c);
  if (rv != 0) {
    fprintf(stderr, "dvoice_client_join: %s\n", dvoice_strerror(rv));
    dvoice_client_close(cl, NULL);
  }
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  return uv_loop_close(uv_default_loop()) == 0 ? 0 : 1;
}
