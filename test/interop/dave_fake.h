/*
 * Test-side DAVE helpers shared by test_davey.c and bench_mls_davey.c:
 * - a fake voice gateway acting as the group's EXTERNAL SENDER (its own
 *   P-256 key; the op 25 payload; signed Add/Remove proposals; the op 27
 *   proposal vector), built on lib/mls's codec and crypto;
 * - Opus media-frame encryption/decryption with a per-sender base secret
 *   (reference/dave.md section 4), used to prove that two implementations
 *   derived the same MLS exporter secret;
 * - a child Node process running test/interop/peers/davey_driver.mjs,
 *   spoken to with a line protocol (hex payloads).
 * Functions return 0 or a negative DVOICE_ERR_* code unless said otherwise.
 */
#ifndef DVT_DAVE_FAKE_H
#define DVT_DAVE_FAKE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mls/mls_crypto.h"
#include "util/dv_buf.h"
#include "util/dv_env.h"

/* ---- the fake gateway (external sender) --------------------------------- */

typedef struct dvd_gw {
  dvoice_env env; /* copied; hooks borrowed */
  dv_mls_sig_key key;
  uint8_t group_id[8]; /* big-endian channel id */
  dv_buf es;           /* op 25 payload: the raw ExternalSender */
  dv_buf exts; /* GroupContext extensions<V> body: one external_senders */
} dvd_gw;

/* New gateway for |channel_id| with a fresh signing key (dv_rand). */
int dvd_gw_init(dvd_gw *gw, const dvoice_env *env, uint64_t channel_id);
void dvd_gw_free(dvd_gw *gw);

/* Appends the MLSMessage of an external-sender Add proposal carrying the
 * raw KeyPackage |kp| (op 26 bytes) at |epoch|. */
int dvd_gw_add(const dvd_gw *gw, uint64_t epoch, const uint8_t *kp,
               size_t kp_len, dv_buf *out);

/* Appends the MLSMessage of an external-sender Remove of |leaf|. */
int dvd_gw_remove(const dvd_gw *gw, uint64_t epoch, uint32_t leaf, dv_buf *out);

/* Appends the op 27 append payload after its operation byte, i.e.
 * MLSMessage proposal_messages<V>: varint total length then the messages. */
int dvd_op27_vector(const dv_buf *msgs, size_t n, dv_buf *out);

/* ---- Opus media frames (DAVE section 4) --------------------------------- */

/* Encrypts an Opus frame as sender with base secret |base| using truncated
 * nonce |nonce| (generation nonce >> 24): ciphertext || 8-byte tag ||
 * ULEB128 nonce || supplemental size || FA FA. Appended to |out|. */
int dvd_frame_encrypt(const uint8_t base[16], uint32_t nonce, const uint8_t *pt,
                      size_t len, dv_buf *out);

/* Decrypts a frame without unencrypted ranges (Opus) with |base|: parses
 * the trailer, ratchets to the frame's generation, opens AES-128-GCM with
 * the truncated tag. Plaintext appended to |out|. DVOICE_ERR_MALFORMED on a
 * bad trailer, DVOICE_ERR_CRYPTO on a bad tag. */
int dvd_frame_decrypt(const uint8_t base[16], const uint8_t *frame, size_t len,
                      dv_buf *out);

/* ---- the davey child process -------------------------------------------- */

#define DVD_MAX_FIELDS 8

typedef struct dvd_peer {
  pid_t pid;
  FILE *in;  /* commands to node */
  FILE *out; /* answers from node */
  char *line;
  size_t cap;
  double us; /* time davey spent in the last call, microseconds */
  int n;     /* result fields of the last answer (after the time) */
  char *f[DVD_MAX_FIELDS];
} dvd_peer;

/* Starts `node <script>` with pipes on stdin/stdout. -1 on failure. */
int dvd_start(dvd_peer *p, const char *script);

/* Closes the pipes and reaps the child. */
void dvd_stop(dvd_peer *p);

/* Command building: dvd_begin writes "<op> <session>", dvd_str and dvd_hex
 * add one argument (dvd_hex writes '-' for an empty buffer), dvd_end sends
 * the line and reads the answer. dvd_end returns 0 if davey answered ok
 * (fields in p->f[0..n), time in p->us) and -1 otherwise (p->f[0] then holds
 * the error text, or NULL if the peer died). */
void dvd_begin(dvd_peer *p, const char *op, const char *session);
void dvd_str(dvd_peer *p, const char *s);
void dvd_hex(dvd_peer *p, const uint8_t *data, size_t len);
int dvd_end(dvd_peer *p);

/* Decodes result field |i| (hex, '-' = empty) into |out| (reset first).
 * -1 if the field is missing or not hex. */
int dvd_field_bytes(const dvd_peer *p, int i, dv_buf *out);

#endif
