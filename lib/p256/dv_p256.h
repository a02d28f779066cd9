/*
 * Fast ECDSA P-256 signature verification (variable time).
 *
 * Why: verification dominates DAVE's MLS costs (a Welcome for N members
 * verifies N leaf signatures; every proposal and commit carries more), and
 * mbedTLS 2.28's generic bignum code takes about 1.2-1.6 ms per verify.
 * This implementation uses 4x64-bit Montgomery field arithmetic, Jacobian
 * coordinates and an interleaved width-5 wNAF double-scalar
 * multiplication (u1*G + u2*Q), with no inversion of the result point.
 *
 * Verification handles only PUBLIC data (key, hash, signature), so
 * variable time is safe here. Do not use these routines with secrets
 * (signing and ECDH stay on mbedTLS).
 */
#ifndef DV_P256_H
#define DV_P256_H

#include <stddef.h>
#include <stdint.h>

/*
 * Verifies the DER ECDSA signature |sig| (SEQUENCE of two INTEGERs, no
 * trailing bytes) over the 32-byte |hash| with the uncompressed public key
 * |pub| (0x04 || X || Y, 65 bytes, checked to lie on the curve).
 * Returns 0 if valid, DVOICE_ERR_CRYPTO otherwise (bad key, bad encoding,
 * r or s out of [1, n-1], wrong signature), DVOICE_ERR_INVALID_ARGUMENT
 * for NULL or a key not 65 bytes long.
 */
int dv_p256_verify(const uint8_t *pub, size_t pub_len, const uint8_t hash[32],
                   const uint8_t *sig, size_t sig_len);

#endif
