/* Fuzz target: raw Welcome decoding (voice gateway ops 28/30), plus the
 * structures found inside a Welcome once decrypted: GroupSecrets and
 * GroupInfo (the input is tried as each). Re-encodings must match. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_mls_common.h"
#include "mls/mls_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_mls_welcome wm;
  dv_mls_group_secrets gs;
  dv_mls_group_info gi;
  dv_mls_encrypted_group_secrets egs;
  dv_mls_extension ext;
  dv_mls_iter it;
  dv_buf b;
  dv_wr w;
  dv_buf_init(&b, NULL);
  if (dv_mls_welcome_decode(data, size, &wm) == 0) {
    uint32_t n = 0;
    dv_mls_iter_init(&it, &wm.secrets);
    while (dv_mls_next_encrypted_group_secrets(&it, &egs) == 1) {
      n++;
    }
    if (n != wm.secrets.count) {
      abort();
    }
    dv_wr_init(&w, &b);
    dv_mls_welcome_write(&w, &wm);
    fuzz_check_same(&b, w.err, data, size);
  }
  if (dv_mls_group_secrets_decode(data, size, &gs) == 0) {
    dv_buf_reset(&b);
    dv_wr_init(&w, &b);
    dv_mls_group_secrets_write(&w, &gs);
    fuzz_check_same(&b, w.err, data, size);
  }
  if (dv_mls_group_info_decode(data, size, &gi) == 0) {
    (void)dv_mls_find_extension(&gi.extensions, DV_MLS_EXT_RATCHET_TREE, &ext);
    dv_buf_reset(&b);
    dv_wr_init(&w, &b);
    dv_mls_group_info_write(&w, &gi);
    fuzz_check_same(&b, w.err, data, size);
    dv_buf_reset(&b);
    dv_wr_init(&w, &b);
    dv_mls_group_info_tbs_write(&w, &gi);
    fuzz_check_same(&b, w.err, data, gi.tbs_len);
  }
  dv_buf_free(&b);
  return 0;
}
