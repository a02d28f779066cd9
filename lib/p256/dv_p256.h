/*
 * Fast P-256: ECDSA verification (variable time) and scalar
 * multiplication (constant time).
 *
 * Why: verification dominates DAVE's MLS costs (a Welcome for N members
 * verifies N leaf signatures; every proposal and commit carries more), and
 * mbedTLS 2.28's generic bignum code takes about 1.2-1.6 ms per verify.
 * This implementation uses 4x64-bit Montgomery field arithmetic, Jacobian
 * coordinates and an interleaved width-5 wNAF double-scalar
 * multiplication (u1*G + u2*Q), with no inversion of the result point.
 *
 * Verification handles only PUBLIC data (key, hash, signature), so it runs
 * in variable time. dv_p256_mul (ECDH, key generation) handles a secret
 * scalar and runs in constant time.
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

/*
 * out = k * P as an uncompressed point (0x04 || X || Y), in CONSTANT TIME
 * with respect to the secret scalar |scalar| (32 bytes big-endian, must be
 * in [1, n-1]): complete addition formulas, fixed 4-bit windows, masked
 * table lookups. |point| is P (65 bytes uncompressed, checked on the
 * curve), or NULL for the base point G (key generation). For ECDH the
 * shared secret is out[1..33). 0, DVOICE_ERR_CRYPTO (scalar out of range,
 * bad point), DVOICE_ERR_INVALID_ARGUMENT (NULL out/scalar, point length
 * not 65).
 */
int dv_p256_mul(uint8_t out[65], const uint8_t scalar[32], const uint8_t *point,
                size_t point_len);

/* 0 if |pub| is an uncompressed point on the curve (x, y < p), else
 * DVOICE_ERR_CRYPTO; DVOICE_ERR_INVALID_ARGUMENT for NULL or a length other
 * than 65. */
int dv_p256_check_point(const uint8_t *pub, size_t pub_len);

#endif
