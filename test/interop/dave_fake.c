/* Test-side DAVE helpers: fake gateway, Opus frames, davey child process.
 */
#include "dave_fake.h"

#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/gcm.h>
#include <sodium.h>

#include "mls/mls_codec.h"
#include "mls/mls_group.h"
#include "util/dv_rw.h"

extern char **environ;

/* ---- fake gateway -------------------------------------------------------- */

int dvd_gw_init(dvd_gw *gw, const dvoice_env *env, uint64_t channel_id) {
  memset(gw, 0, sizeof *gw);
  gw->env = *env;
  dv_buf_init(&gw->es, env->mem);
  dv_buf_init(&gw->exts, env->mem);
  dv_put_u64(gw->group_id, channel_id);
  int rc = dv_mls_sig_keygen(env, &gw->key);
  if (rc != 0)
    return rc;
  /* Discord's production ExternalSender: the key and a basic credential
   * whose identity is one zero byte (reference/dave.md section 1.2). */
  dv_wr w;
  dv_wr_init(&w, &gw->es);
  dv_wr_opaque(&w, gw->key.pub, DV_MLS_PUB_LEN);
  dv_wr_u16(&w, DV_MLS_CRED_BASIC);
  dv_wr_varint(&w, 1);
  dv_wr_u8(&w, 0);
  if (w.err != 0)
    return w.err;
  dv_wr_init(&w, &gw->exts);
  dv_wr_u16(&w, DV_MLS_EXT_EXTERNAL_SENDERS);
  size_t m = dv_wr_vec_begin(&w);
  dv_wr_opaque(&w, gw->es.data, gw->es.len);
  dv_wr_vec_end(&w, m);
  return w.err;
}

void dvd_gw_free(dvd_gw *gw) {
  dv_mls_sig_key_wipe(&gw->key);
  dv_buf_free(&gw->es);
  dv_buf_free(&gw->exts);
}

static int gw_proposal(const dvd_gw *gw, uint64_t epoch, uint16_t type,
                       const uint8_t *body, size_t body_len, dv_buf *out) {
  dv_buf fc;
  dv_buf_init(&fc, gw->env.mem);
  dv_wr w;
  dv_wr_init(&w, &fc);
  dv_wr_opaque(&w, gw->group_id, sizeof gw->group_id);
  dv_wr_u64(&w, epoch);
  dv_wr_u8(&w, DV_MLS_SENDER_EXTERNAL);
  dv_wr_u32(&w, 0); /* sender_index: the only external sender */
  dv_wr_varint(&w, 0);
  dv_wr_u8(&w, DV_MLS_CONTENT_PROPOSAL);
  dv_wr_u16(&w, type);
  dv_wr_bytes(&w, body, body_len);
  int rc = w.err;
  uint8_t sig[DV_MLS_SIG_MAX];
  size_t sig_len = 0;
  dv_mls_bytes fcb = dv_mls_b(fc.data, fc.len);
  if (rc == 0)
    rc =
        dv_mls_framed_content_sign(&gw->env, gw->key.priv, &fcb,
                                   DV_MLS_SENDER_EXTERNAL, NULL, sig, &sig_len);
  if (rc == 0)
    rc = dv_mls_public_message_seal(gw->env.mem, &fcb, sig, sig_len, NULL, NULL,
                                    NULL, out);
  dv_buf_free(&fc);
  return rc;
}

int dvd_gw_add(const dvd_gw *gw, uint64_t epoch, const uint8_t *kp,
               size_t kp_len, dv_buf *out) {
  return gw_proposal(gw, epoch, DV_MLS_PROP_ADD, kp, kp_len, out);
}

int dvd_gw_remove(const dvd_gw *gw, uint64_t epoch, uint32_t leaf,
                  dv_buf *out) {
  uint8_t b[4];
  dv_put_u32(b, leaf);
  return gw_proposal(gw, epoch, DV_MLS_PROP_REMOVE, b, sizeof b, out);
}

int dvd_op27_vector(const dv_buf *msgs, size_t n, dv_buf *out) {
  dv_wr w;
  dv_wr_init(&w, out);
  size_t m = dv_wr_vec_begin(&w);
  for (size_t i = 0; i < n; i++)
    dv_wr_bytes(&w, msgs[i].data, msgs[i].len);
  dv_wr_vec_end(&w, m);
  return w.err;
}

/* ---- media frames -------------------------------------------------------- */

#define TAG_LEN 8

/* key = the ratchet's key for |generation|: secret_0 = base (16 bytes),
 * secret_{g+1} = ExpandWithLabel(secret_g, "secret", u32be(g), 32). */
static int frame_key(const uint8_t base[16], uint32_t generation,
                     uint8_t key[16]) {
  uint8_t s[32], t[32];
  size_t s_len = 16;
  memcpy(s, base, 16);
  int rc = 0;
  for (uint32_t g = 0; g < generation && rc == 0; g++) {
    rc = dv_mls_derive_tree_secret(s, s_len, "secret", g, t, 32);
    memcpy(s, t, 32);
    s_len = 32;
  }
  if (rc == 0)
    rc = dv_mls_derive_tree_secret(s, s_len, "key", generation, key, 16);
  sodium_memzero(s, sizeof s);
  sodium_memzero(t, sizeof t);
  return rc;
}

static void frame_iv(uint32_t nonce, uint8_t iv[12]) {
  memset(iv, 0, 12);
  iv[8] = (uint8_t)nonce;
  iv[9] = (uint8_t)(nonce >> 8);
  iv[10] = (uint8_t)(nonce >> 16);
  iv[11] = (uint8_t)(nonce >> 24);
}

int dvd_frame_encrypt(const uint8_t base[16], uint32_t nonce, const uint8_t *pt,
                      size_t len, dv_buf *out) {
  uint8_t key[16], iv[12], tag[TAG_LEN];
  int rc = frame_key(base, nonce >> 24, key);
  if (rc != 0)
    return rc;
  frame_iv(nonce, iv);
  size_t off = out->len;
  rc = dv_buf_reserve(out, len + 16);
  if (rc != 0)
    return rc;
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128) != 0 ||
      mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, len, iv, 12, NULL, 0,
                                pt, out->data + off, TAG_LEN, tag) != 0)
    rc = DVOICE_ERR_CRYPTO;
  mbedtls_gcm_free(&gcm);
  sodium_memzero(key, sizeof key);
  if (rc != 0)
    return rc;
  out->len += len;
  dv_buf_append(out, tag, TAG_LEN);
  size_t uleb = 0;
  uint32_t v = nonce;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    dv_buf_push(out, (uint8_t)(b | (v != 0 ? 0x80 : 0)));
    uleb++;
  } while (v != 0);
  dv_buf_push(out, (uint8_t)(TAG_LEN + uleb + 1 + 2));
  dv_buf_push(out, 0xfa);
  return dv_buf_push(out, 0xfa);
}

int dvd_frame_decrypt(const uint8_t base[16], const uint8_t *frame, size_t len,
                      dv_buf *out) {
  if (len < 11 || frame[len - 1] != 0xfa || frame[len - 2] != 0xfa)
    return DVOICE_ERR_MALFORMED;
  size_t supp = frame[len - 3];
  if (supp < 11 || supp > len)
    return DVOICE_ERR_MALFORMED;
  size_t ct_len = len - supp;
  const uint8_t *tag = frame + ct_len;
  size_t p = ct_len + TAG_LEN, end = len - 3;
  uint64_t nonce = 0;
  unsigned shift = 0;
  for (;;) {
    if (p >= end || shift > 28)
      return DVOICE_ERR_MALFORMED;
    uint8_t b = frame[p++];
    nonce |= (uint64_t)(b & 0x7f) << shift;
    shift += 7;
    if ((b & 0x80) == 0)
      break;
  }
  if (p != end) /* Opus frames carry no unencrypted ranges */
    return DVOICE_ERR_MALFORMED;
  uint8_t key[16], iv[12];
  int rc = frame_key(base, (uint32_t)nonce >> 24, key);
  if (rc != 0)
    return rc;
  frame_iv((uint32_t)nonce, iv);
  size_t off = out->len;
  rc = dv_buf_reserve(out, ct_len + 1);
  if (rc != 0)
    return rc;
  mbedtls_gcm_context gcm;
  mbedtls_gcm_init(&gcm);
  if (mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, 128) != 0 ||
      mbedtls_gcm_auth_decrypt(&gcm, ct_len, iv, 12, NULL, 0, tag, TAG_LEN,
                               frame, out->data + off) != 0)
    rc = DVOICE_ERR_CRYPTO;
  mbedtls_gcm_free(&gcm);
  sodium_memzero(key, sizeof key);
  if (rc == 0)
    out->len += ct_len;
  return rc;
}

/* ---- davey child process ------------------------------------------------- */

int dvd_start(dvd_peer *p, const char *script) {
  memset(p, 0, sizeof *p);
  int to[2], from[2];
  if (pipe(to) != 0)
    return -1;
  if (pipe(from) != 0) {
    close(to[0]);
    close(to[1]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, to[0], 0);
  posix_spawn_file_actions_adddup2(&fa, from[1], 1);
  posix_spawn_file_actions_addclose(&fa, to[1]);
  posix_spawn_file_actions_addclose(&fa, from[0]);
  char *argv[] = {"node", (char *)script, NULL};
  int rc = posix_spawnp(&p->pid, "node", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(to[0]);
  close(from[1]);
  if (rc != 0) {
    close(to[1]);
    close(from[0]);
    return -1;
  }
  signal(SIGPIPE, SIG_IGN);
  p->in = fdopen(to[1], "w");
  p->out = fdopen(from[0], "r");
  return p->in != NULL && p->out != NULL ? 0 : -1;
}

void dvd_stop(dvd_peer *p) {
  if (p->in != NULL)
    fclose(p->in);
  if (p->out != NULL)
    fclose(p->out);
  int st;
  if (p->pid > 0)
    waitpid(p->pid, &st, 0);
  free(p->line);
  memset(p, 0, sizeof *p);
}

void dvd_begin(dvd_peer *p, const char *op, const char *session) {
  fprintf(p->in, "%s %s", op, session);
}

void dvd_str(dvd_peer *p, const char *s) {
  fprintf(p->in, " %s", s);
}

void dvd_hex(dvd_peer *p, const uint8_t *data, size_t len) {
  fputc(' ', p->in);
  if (len == 0)
    fputc('-', p->in);
  for (size_t i = 0; i < len; i++)
    fprintf(p->in, "%02x", data[i]);
}

int dvd_end(dvd_peer *p) {
  fputc('\n', p->in);
  fflush(p->in);
  p->n = 0;
  p->us = 0;
  p->f[0] = NULL;
  ssize_t n = getline(&p->line, &p->cap, p->out);
  if (n <= 0)
    return -1;
  if (p->line[n - 1] == '\n')
    p->line[n - 1] = 0;
  if (strncmp(p->line, "err ", 4) == 0) {
    p->f[0] = p->line + 4;
    return -1;
  }
  if (strncmp(p->line, "ok ", 3) != 0) {
    p->f[0] = p->line;
    return -1;
  }
  char *save = NULL;
  char *t = strtok_r(p->line + 3, " ", &save);
  p->us = t != NULL ? strtod(t, NULL) : 0;
  while ((t = strtok_r(NULL, " ", &save)) != NULL && p->n < DVD_MAX_FIELDS)
    p->f[p->n++] = t;
  return 0;
}

int dvd_field_bytes(const dvd_peer *p, int i, dv_buf *out) {
  dv_buf_reset(out);
  if (i >= p->n)
    return -1;
  const char *h = p->f[i];
  if (strcmp(h, "-") == 0)
    return 0;
  size_t n = strlen(h);
  if (n % 2 != 0 || dv_buf_reserve(out, n / 2) != 0)
    return -1;
  for (size_t k = 0; k < n; k += 2) {
    unsigned v;
    if (sscanf(h + k, "%2x", &v) != 1)
      return -1;
    out->data[out->len++] = (uint8_t)v;
  }
  return 0;
}
