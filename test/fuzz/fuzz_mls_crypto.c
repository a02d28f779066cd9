/*
 * Fuzz target: the crypto entry points that take peer bytes directly.
 * The input is split as: u8 selector, then the rest.
 *   0: a public key (first 65 bytes or fewer) and a DER signature (the
 *      rest) for VerifyWithLabel; must never verify.
 *   1: an HPKECiphertext-like pair (kem_output = first 65 bytes,
 *      ciphertext = the rest) for DecryptWithLabel with a fixed key; must
 *      never decrypt.
 *   2: an AES-GCM ciphertext for dv_mls_aead_open with a fixed key.
 *   3: a secret and a label length for ExpandWithLabel / DeriveSecret with
 *      any PRK length (1..n).
 * Nothing may crash or over-read.
 */
#include <stdlib.h>
#include <string.h>

#include "mls/mls_crypto.h"
#include "mls/mls_keysched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fixed_rand(void *ud, uint8_t *dest, size_t len) {
  (void)ud;
  for (size_t i = 0; i < len; i++)
    dest[i] = (uint8_t)(0x5a + i * 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  dvoice_env env;
  dvoice_env_default(&env);
  env.rand = fixed_rand;
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  uint8_t out[4096];
  static const uint8_t msg[] = "fuzz message";
  switch (data[0] % 4) {
    case 0: {
      size_t kl = n < 65 ? n : 65;
      int rc = dv_mls_verify_with_label(p, kl, "FramedContentTBS", msg,
                                        sizeof msg, p + kl, n - kl);
      if (rc == 0)
        abort(); /* no forgery without the private key */
      (void)dv_mls_check_pub(p, kl);
      break;
    }
    case 1: {
      dv_mls_hpke_key k;
      memset(k.priv, 0x11, sizeof k.priv);
      if (dv_mls_hpke_key_from_priv(&env, &k) != 0)
        abort();
      size_t kl = n < 65 ? n : 65;
      if (n - kl <= sizeof out + DV_MLS_AEAD_TAG_LEN &&
          dv_mls_decrypt_with_label(&env, &k, "Welcome", msg, sizeof msg, p, kl,
                                    p + kl, n - kl, out) == 0)
        abort();
      break;
    }
    case 2: {
      uint8_t key[16] = {1}, nonce[12] = {2};
      if (n <= sizeof out + DV_MLS_AEAD_TAG_LEN &&
          dv_mls_aead_open(key, nonce, NULL, 0, p, n, out) == 0)
        abort();
      break;
    }
    default: {
      if (n < 2)
        break;
      size_t len = 1 + (p[0] % 64);
      char label[64];
      size_t ll = (size_t)(p[1] % 32);
      for (size_t i = 0; i < ll; i++)
        label[i] = (char)('a' + (i % 26));
      label[ll] = 0;
      if (n - 2 > 0) {
        (void)dv_mls_expand_with_label(p + 2, n - 2, label, p, n, out, len);
        (void)dv_mls_derive_secret(p + 2, n - 2, label, out);
      }
      (void)dv_mls_export(out, label, p, n, out + 32, len);
      break;
    }
  }
  return 0;
}
