/* Fuzz target: IP discovery response parsing and datagram classification.
 * Input: one received datagram. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtp/dv_rtp.h"
#include "util/dv_rw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dv_ipdisc_result r;
  uint32_t ssrc = size >= 8 ? dv_get_u32(data + 4) : 0x12345678u;
  uint32_t ctr;
  dv_udp_kind k = dv_udp_classify(data, size);
  int rv = dv_ipdisc_parse_response(data, size, ssrc, &r);
  if (rv == 0) {
    /* Whatever is accepted is a dotted quad, port != 0, from a 74-byte
     * type-2 datagram that the demultiplexer routes to discovery. */
    if (!dv_ipv4_literal_valid(r.address, strlen(r.address)) || r.port == 0 ||
        size != DV_IPDISC_LEN || k != DV_UDP_IPDISC) {
      abort();
    }
  }
  /* The SSRC check is its own error. */
  if (dv_ipdisc_parse_response(data, size, ssrc ^ 1u, &r) == 0) {
    abort();
  }
  (void)dv_keepalive_parse(data, size, &ctr);
  (void)dv_ipv4_literal_valid((const char *)data, size);
  (void)dv_udp_kind_name(k);
  return 0;
}
