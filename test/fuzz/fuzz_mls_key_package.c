/* Fuzz target: raw KeyPackage decoding (voice gateway op 26 / Add
 * proposals), strict (cipher suite 2) and lenient, with a re-encode
 * round trip and the leaf checks that need no valid signature to run. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_mls_common.h"
#include "mls/mls_codec.h"
#include "mls/mls_tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_mls_key_package kp;
  dv_rd r;
  dv_buf b;
  dv_wr w;
  (void)dv_mls_key_package_decode(data, size, &kp);
  dv_rd_init(&r, data, size);
  if (dv_mls_key_package_read(&r, &kp) != 0) {
    return 0;
  }
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_key_package_write(&w, &kp);
  fuzz_check_same(&b, w.err, data, r.pos);
  dv_buf_reset(&b);
  dv_wr_init(&w, &b);
  dv_mls_key_package_tbs_write(&w, &kp);
  fuzz_check_same(&b, w.err, data, kp.tbs_len);
  dv_buf_free(&b);
  (void)dv_mls_leaf_validate(&kp.leaf_node, NULL, 0,
                             DV_MLS_LEAF_SRC_KEY_PACKAGE, DV_MLS_VALIDATE_DAVE);
  return 0;
}
