/*
 * Transcript hashes (RFC 9420 section 8.2), SHA-256 (cipher suite 2):
 *   confirmed[n] = H(interim[n-1] || ConfirmedTranscriptHashInput)
 *     ConfirmedTranscriptHashInput = u16 wire_format || FramedContent
 *                                    || signature<V>
 *   interim[n]   = H(confirmed[n] || confirmation_tag<V>)
 * Errors: DVOICE_ERR_INVALID_ARGUMENT (NULL input), DVOICE_ERR_TOO_LARGE,
 * DVOICE_ERR_CRYPTO (hash failure).
 */
#ifndef DV_MLS_TRANSCRIPT_H
#define DV_MLS_TRANSCRIPT_H

#include <stdint.h>

#include "mls/mls_codec.h"

/* |interim_before| may be empty (len 0). |framed_content| is the encoded
 * FramedContent (dv_mls_framed_content.raw after a decode). */
int dv_mls_transcript_confirmed(const dv_mls_bytes *interim_before,
                                uint16_t wire_format,
                                const dv_mls_bytes *framed_content,
                                const dv_mls_bytes *signature, uint8_t out[32]);
int dv_mls_transcript_interim(const uint8_t confirmed[32],
                              const dv_mls_bytes *confirmation_tag,
                              uint8_t out[32]);
/* Both hashes from a decoded AuthenticatedContent (a commit). */
int dv_mls_transcript_update(const dv_mls_bytes *interim_before,
                             const dv_mls_authenticated_content *ac,
                             uint8_t confirmed[32], uint8_t interim[32]);

#endif
