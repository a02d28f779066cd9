/* Fuzz target: MLSMessage decoding (voice gateway ops 25/27/29), plus a
 * re-encode round trip and a walk over every nested vector. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_mls_common.h"
#include "mls/mls_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks a commit's proposals and path so the iterators run on fuzz data. */
static void walk_commit(const dv_mls_commit *c) {
  dv_mls_iter it, it2;
  dv_mls_proposal_or_ref por;
  dv_mls_update_path_node n;
  dv_mls_hpke_ciphertext ct;
  uint32_t count = 0;
  dv_mls_iter_init(&it, &c->proposals);
  while (dv_mls_next_proposal_or_ref(&it, &por) == 1) {
    count++;
  }
  if (count != c->proposals.count || it.r.err) {
    abort();
  }
  if (!c->has_path) {
    return;
  }
  dv_mls_iter_init(&it, &c->path.nodes);
  while (dv_mls_next_update_path_node(&it, &n) == 1) {
    dv_mls_iter_init(&it2, &n.encrypted_path_secret);
    while (dv_mls_next_hpke_ciphertext(&it2, &ct) == 1) {
    }
    if (it2.r.err) {
      abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_mls_message m;
  dv_mls_external_sender es;
  dv_rd r;
  dv_buf b;
  dv_wr w;
  (void)dv_mls_message_decode(data, size, &m);
  (void)dv_mls_external_sender_decode(data, size, &es);
  dv_rd_init(&r, data, size);
  if (dv_mls_message_read(&r, &m) != 0) {
    return 0;
  }
  if (m.wire_format == DV_MLS_WF_PUBLIC &&
      m.pub.content.content_type == DV_MLS_CONTENT_COMMIT) {
    walk_commit(&m.pub.content.commit);
  }
  dv_buf_init(&b, NULL);
  dv_wr_init(&w, &b);
  dv_mls_message_write(&w, &m);
  fuzz_check_same(&b, w.err, data, r.pos);
  dv_buf_free(&b);
  return 0;
}
