/*
 * P-256 with 4x64-bit Montgomery arithmetic (mod p for the field, mod n for
 * the scalars; every modular operation branch-free). ECDSA verification:
 * Jacobian points, interleaved width-5 wNAF for u1*G + u2*Q, variable time
 * on public data. Scalar multiplication: complete projective formulas,
 * fixed windows and masked lookups, constant time (see dv_p256.h).
 */
#include "p256/dv_p256.h"

#include <string.h>

#include <dvoice/dvoice.h>
#include <sodium.h>

#include "p256/dv_p256_table.h"

#if !defined(__SIZEOF_INT128__)
#error "lib/p256 needs unsigned __int128 (a 64-bit gcc or clang target)"
#endif

typedef uint64_t u64;
__extension__ typedef unsigned __int128 u128;

/* A modulus with its Montgomery constants (R = 2^256). */
typedef struct modulus {
  u64 m[4];
  u64 minv;   /* -m^-1 mod 2^64 */
  u64 one[4]; /* R mod m */
  u64 rr[4];  /* R^2 mod m */
} modulus;

/* ---- 256-bit helpers ------------------------------------------------------
 */

static void from_be(u64 r[4], const uint8_t b[32]) {
  for (int i = 0; i < 4; i++) {
    u64 v = 0;
    for (int j = 0; j < 8; j++)
      v = (v << 8) | b[(3 - i) * 8 + j];
    r[i] = v;
  }
}

static int is_zero(const u64 a[4]) {
  return (a[0] | a[1] | a[2] | a[3]) == 0;
}

static int eq(const u64 a[4], const u64 b[4]) {
  return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

/* a >= b */
static int geq(const u64 a[4], const u64 b[4]) {
  for (int i = 3; i >= 0; i--)
    if (a[i] != b[i])
      return a[i] > b[i];
  return 1;
}

/* r = a + b, returns the carry. */
static u64 add4(u64 r[4], const u64 a[4], const u64 b[4]) {
  u64 c = 0;
  for (int i = 0; i < 4; i++) {
    u128 s = (u128)a[i] + b[i] + c;
    r[i] = (u64)s;
    c = (u64)(s >> 64);
  }
  return c;
}

/* r = a - b, returns the borrow. */
static u64 sub4(u64 r[4], const u64 a[4], const u64 b[4]) {
  u64 br = 0;
  for (int i = 0; i < 4; i++) {
    u128 d = (u128)a[i] - b[i] - br;
    r[i] = (u64)d;
    br = (u64)(d >> 64) & 1;
  }
  return br;
}

/* ---- modular arithmetic ---------------------------------------------------
 */

/* Branch-free selection: r = mask ? a : b (mask all ones or zero). */
static void select4(u64 r[4], u64 mask, const u64 a[4], const u64 b[4]) {
  for (int i = 0; i < 4; i++)
    r[i] = (a[i] & mask) | (b[i] & ~mask);
}

/* The modular operations below run in constant time (no branch or index
 * depends on the values), so the scalar multiplication can use them with
 * secrets. */
static void mod_add(u64 r[4], const u64 a[4], const u64 b[4],
                    const modulus *M) {
  u64 s[4], d[4];
  u64 c = add4(s, a, b);
  u64 br = sub4(d, s, M->m);
  /* s >= m iff carry or no borrow. */
  select4(r, (u64)0 - (c | (br ^ 1)), d, s);
}

static void mod_sub(u64 r[4], const u64 a[4], const u64 b[4],
                    const modulus *M) {
  u64 d[4], m[4];
  u64 br = sub4(d, a, b);
  for (int i = 0; i < 4; i++)
    m[i] = M->m[i] & ((u64)0 - br);
  add4(r, d, m);
}

/* r = a * b * R^-1 mod m (CIOS); a, b < m. */
static void mont_mul(u64 r[4], const u64 a[4], const u64 b[4],
                     const modulus *M) {
  u64 t[6] = {0};
  for (int i = 0; i < 4; i++) {
    u64 c = 0;
    for (int j = 0; j < 4; j++) {
      u128 uv = (u128)a[j] * b[i] + t[j] + c;
      t[j] = (u64)uv;
      c = (u64)(uv >> 64);
    }
    u128 uv = (u128)t[4] + c;
    t[4] = (u64)uv;
    t[5] = (u64)(uv >> 64);
    u64 mm = t[0] * M->minv;
    uv = (u128)mm * M->m[0] + t[0];
    c = (u64)(uv >> 64);
    for (int j = 1; j < 4; j++) {
      uv = (u128)mm * M->m[j] + t[j] + c;
      t[j - 1] = (u64)uv;
      c = (u64)(uv >> 64);
    }
    uv = (u128)t[4] + c;
    t[3] = (u64)uv;
    t[4] = t[5] + (u64)(uv >> 64);
  }
  u64 d[4];
  u64 br = sub4(d, t, M->m);
  select4(r, (u64)0 - (t[4] | (br ^ 1)), d, t);
}

/* Fills the Montgomery constants of M->m (odd, > 2^255). */
static void modulus_init(modulus *M) {
  /* -m^-1 mod 2^64 by Newton iteration. */
  u64 inv = 1;
  for (int i = 0; i < 7; i++)
    inv *= 2 - M->m[0] * inv;
  M->minv = (u64)0 - inv;
  /* R mod m = 2^256 - m, as m > 2^255. */
  u64 zero[4] = {0};
  sub4(M->one, zero, M->m);
  /* R^2 mod m: double R mod m 256 times. */
  memcpy(M->rr, M->one, sizeof M->rr);
  for (int i = 0; i < 256; i++)
    mod_add(M->rr, M->rr, M->rr, M);
}

static void to_mont(u64 r[4], const u64 a[4], const modulus *M) {
  mont_mul(r, a, M->rr, M);
}

/* ---- curve ----------------------------------------------------------------
 */

static const uint8_t P_BE[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t N_BE[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17,
    0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
static const uint8_t B_BE[32] = {
    0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7, 0xb3, 0xeb, 0xbd,
    0x55, 0x76, 0x98, 0x86, 0xbc, 0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53,
    0xb0, 0xf6, 0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b};
static const uint8_t GX_BE[32] = {
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6,
    0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb,
    0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96};
static const uint8_t GY_BE[32] = {
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb,
    0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31,
    0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5};

/* Jacobian point (X/Z^2, Y/Z^3), coordinates in Montgomery form; Z = 0 is
 * the point at infinity. */
typedef struct jpoint {
  u64 x[4], y[4], z[4];
} jpoint;

typedef struct curve {
  modulus p, n;
  u64 b[4]; /* Montgomery form */
} curve;

static void curve_init(curve *c) {
  from_be(c->p.m, P_BE);
  modulus_init(&c->p);
  from_be(c->n.m, N_BE);
  modulus_init(&c->n);
  u64 b[4];
  from_be(b, B_BE);
  to_mont(c->b, b, &c->p);
}

#define FMUL(r, a, b) mont_mul(r, a, b, &c->p)
#define FADD(r, a, b) mod_add(r, a, b, &c->p)
#define FSUB(r, a, b) mod_sub(r, a, b, &c->p)

/* r = 2p (dbl-2001-b, a = -3); r may alias p. */
static void pt_double(const curve *c, jpoint *r, const jpoint *p) {
  if (is_zero(p->z)) {
    *r = *p;
    return;
  }
  u64 delta[4], gamma[4], beta[4], alpha[4], t1[4], t2[4];
  FMUL(delta, p->z, p->z);
  FMUL(gamma, p->y, p->y);
  FMUL(beta, p->x, gamma);
  FSUB(t1, p->x, delta);
  FADD(t2, p->x, delta);
  FMUL(alpha, t1, t2);
  FADD(t1, alpha, alpha);
  FADD(alpha, t1, alpha); /* 3 (X - delta)(X + delta) */
  u64 z3[4];
  FADD(t1, p->y, p->z);
  FMUL(t2, t1, t1);
  FSUB(t2, t2, gamma);
  FSUB(z3, t2, delta);
  u64 x3[4], b4[4], b8[4];
  FMUL(x3, alpha, alpha);
  FADD(b4, beta, beta);
  FADD(b4, b4, b4);
  FADD(b8, b4, b4);
  FSUB(x3, x3, b8);
  u64 y3[4], g2[4];
  FSUB(t1, b4, x3);
  FMUL(y3, alpha, t1);
  FMUL(g2, gamma, gamma);
  FADD(g2, g2, g2);
  FADD(g2, g2, g2);
  FADD(g2, g2, g2); /* 8 gamma^2 */
  FSUB(y3, y3, g2);
  memcpy(r->x, x3, sizeof x3);
  memcpy(r->y, y3, sizeof y3);
  memcpy(r->z, z3, sizeof z3);
}

/* r = a + b (add-2007-bl); r may alias a or b. */
static void pt_add(const curve *c, jpoint *r, const jpoint *a,
                   const jpoint *b) {
  if (is_zero(a->z)) {
    *r = *b;
    return;
  }
  if (is_zero(b->z)) {
    *r = *a;
    return;
  }
  u64 z1z1[4], z2z2[4], u1[4], u2[4], s1[4], s2[4], t[4];
  FMUL(z1z1, a->z, a->z);
  FMUL(z2z2, b->z, b->z);
  FMUL(u1, a->x, z2z2);
  FMUL(u2, b->x, z1z1);
  FMUL(t, b->z, z2z2);
  FMUL(s1, a->y, t);
  FMUL(t, a->z, z1z1);
  FMUL(s2, b->y, t);
  u64 h[4], rr[4];
  FSUB(h, u2, u1);
  FSUB(rr, s2, s1);
  if (is_zero(h)) {
    if (is_zero(rr)) {
      pt_double(c, r, a);
    } else {
      memset(r, 0, sizeof *r); /* a = -b */
    }
    return;
  }
  FADD(rr, rr, rr);
  u64 i[4], j[4], v[4];
  FADD(t, h, h);
  FMUL(i, t, t);
  FMUL(j, h, i);
  FMUL(v, u1, i);
  u64 x3[4], y3[4], z3[4];
  FMUL(x3, rr, rr);
  FSUB(x3, x3, j);
  FSUB(x3, x3, v);
  FSUB(x3, x3, v);
  FSUB(t, v, x3);
  FMUL(y3, rr, t);
  FMUL(t, s1, j);
  FADD(t, t, t);
  FSUB(y3, y3, t);
  FADD(t, a->z, b->z);
  FMUL(z3, t, t);
  FSUB(z3, z3, z1z1);
  FSUB(z3, z3, z2z2);
  FMUL(z3, z3, h);
  memcpy(r->x, x3, sizeof x3);
  memcpy(r->y, y3, sizeof y3);
  memcpy(r->z, z3, sizeof z3);
}

static void pt_neg(const curve *c, jpoint *r, const jpoint *p) {
  static const u64 zero[4] = {0};
  *r = *p;
  FSUB(r->y, zero, p->y);
}

/* Affine (x, y) in Montgomery form to Jacobian. */
static void pt_from_affine(const curve *c, jpoint *r, const u64 x[4],
                           const u64 y[4]) {
  memcpy(r->x, x, 4 * sizeof(u64));
  memcpy(r->y, y, 4 * sizeof(u64));
  memcpy(r->z, c->p.one, 4 * sizeof(u64));
}

/* Width-5 NAF of k: out[i] in {0, +-1, +-3, ..., +-15}; returns length. */
static int wnaf5(int8_t out[258], const u64 k[4]) {
  u64 d[5] = {k[0], k[1], k[2], k[3], 0};
  int len = 0;
  while ((d[0] | d[1] | d[2] | d[3] | d[4]) != 0) {
    int z = 0;
    if (d[0] & 1) {
      z = (int)(d[0] & 31);
      if (z >= 16)
        z -= 32;
      if (z > 0) {
        d[0] -= (u64)z; /* the low bits equal z: no borrow */
      } else {
        u64 add = (u64)(-z), c;
        d[0] += add;
        c = d[0] < add;
        for (int i = 1; i < 5 && c; i++)
          c = ++d[i] == 0;
      }
    }
    out[len++] = (int8_t)z;
    for (int i = 0; i < 4; i++)
      d[i] = (d[i] >> 1) | (d[i + 1] << 63);
    d[4] >>= 1;
  }
  return len;
}

/* tab[i] = (2i + 1) p for i in 0..7. */
static void odd_multiples(const curve *c, jpoint tab[8], const jpoint *p) {
  jpoint two;
  tab[0] = *p;
  pt_double(c, &two, p);
  for (int i = 1; i < 8; i++)
    pt_add(c, &tab[i], &tab[i - 1], &two);
}

/* ---- signature parsing ----------------------------------------------------
 */

/* Reads a DER length: short form or 1 to 4 length bytes (non-minimal
 * forms included), exactly what mbedTLS's parser accepts, so both
 * verifiers agree on every input. */
static int der_len(const uint8_t **p, const uint8_t *end, size_t *len) {
  if (*p >= end)
    return -1;
  uint8_t b = *(*p)++;
  if (b < 0x80) {
    *len = b;
  } else {
    size_t n = b & 0x7f;
    if (n == 0 || n > 4 || (size_t)(end - *p) < n)
      return -1;
    size_t v = 0;
    for (size_t i = 0; i < n; i++)
      v = (v << 8) | *(*p)++;
    *len = v;
  }
  return (size_t)(end - *p) >= *len ? 0 : -1;
}

/* INTEGER read as an unsigned big-endian number (as mbedTLS does); at most
 * 32 significant bytes. */
static int der_int(const uint8_t **p, const uint8_t *end, u64 out[4]) {
  size_t len;
  if (*p >= end || *(*p)++ != 0x02 || der_len(p, end, &len) != 0 || len == 0)
    return -1;
  const uint8_t *v = *p;
  *p += len;
  while (len > 0 && *v == 0) {
    v++;
    len--;
  }
  if (len > 32)
    return -1;
  uint8_t b[32] = {0};
  memcpy(b + 32 - len, v, len);
  from_be(out, b);
  return 0;
}

static int parse_sig(const uint8_t *sig, size_t sig_len, u64 r[4], u64 s[4]) {
  const uint8_t *p = sig, *end = sig + sig_len;
  size_t len;
  if (sig_len < 2 || *p++ != 0x30 || der_len(&p, end, &len) != 0 ||
      p + len != end)
    return -1;
  if (der_int(&p, end, r) != 0 || der_int(&p, end, s) != 0 || p != end)
    return -1;
  return 0;
}

/* ---- verification ---------------------------------------------------------
 */

int dv_p256_verify(const uint8_t *pub, size_t pub_len, const uint8_t hash[32],
                   const uint8_t *sig, size_t sig_len) {
  if (pub == NULL || hash == NULL || (sig == NULL && sig_len != 0) ||
      pub_len != 65)
    return DVOICE_ERR_INVALID_ARGUMENT;
  curve cv;
  const curve *c = &cv;
  curve_init(&cv);

  /* r, s in [1, n-1]. */
  u64 r[4], s[4];
  if (parse_sig(sig, sig_len, r, s) != 0 || is_zero(r) || is_zero(s) ||
      geq(r, c->n.m) || geq(s, c->n.m))
    return DVOICE_ERR_CRYPTO;

  /* Q on the curve: x, y < p and y^2 = x^3 - 3x + b. */
  if (pub[0] != 0x04)
    return DVOICE_ERR_CRYPTO;
  u64 qx[4], qy[4];
  from_be(qx, pub + 1);
  from_be(qy, pub + 33);
  if (geq(qx, c->p.m) || geq(qy, c->p.m))
    return DVOICE_ERR_CRYPTO;
  to_mont(qx, qx, &c->p);
  to_mont(qy, qy, &c->p);
  u64 lhs[4], rhs[4], t[4];
  FMUL(lhs, qy, qy);
  FMUL(t, qx, qx);
  FMUL(rhs, t, qx);
  FADD(t, qx, qx);
  FADD(t, t, qx);
  FSUB(rhs, rhs, t);
  FADD(rhs, rhs, c->b);
  if (!eq(lhs, rhs))
    return DVOICE_ERR_CRYPTO;

  /* e = hash mod n; w = s^-1 (Montgomery form, by Fermat);
   * u1 = e w, u2 = r w (plain form: one Montgomery factor cancels). */
  u64 e[4], w[4], sm[4], u1[4], u2[4];
  from_be(e, hash);
  if (geq(e, c->n.m))
    sub4(e, e, c->n.m);
  to_mont(sm, s, &c->n);
  u64 exp[4], two[4] = {2, 0, 0, 0};
  sub4(exp, c->n.m, two);
  memcpy(w, c->n.one, sizeof w);
  for (int i = 255; i >= 0; i--) {
    mont_mul(w, w, w, &c->n);
    if ((exp[i / 64] >> (i % 64)) & 1)
      mont_mul(w, w, sm, &c->n);
  }
  mont_mul(u1, e, w, &c->n);
  mont_mul(u2, r, w, &c->n);

  /* R = u1 G + u2 Q. */
  u64 gx[4], gy[4];
  from_be(gx, GX_BE);
  from_be(gy, GY_BE);
  to_mont(gx, gx, &c->p);
  to_mont(gy, gy, &c->p);
  jpoint g, q, tg[8], tq[8], acc;
  pt_from_affine(c, &g, gx, gy);
  pt_from_affine(c, &q, qx, qy);
  odd_multiples(c, tg, &g);
  odd_multiples(c, tq, &q);
  int8_t n1[258], n2[258];
  int l1 = wnaf5(n1, u1), l2 = wnaf5(n2, u2);
  int len = l1 > l2 ? l1 : l2;
  memset(&acc, 0, sizeof acc);
  for (int i = len - 1; i >= 0; i--) {
    pt_double(c, &acc, &acc);
    int d1 = i < l1 ? n1[i] : 0, d2 = i < l2 ? n2[i] : 0;
    jpoint tmp;
    if (d1 > 0) {
      pt_add(c, &acc, &acc, &tg[d1 / 2]);
    } else if (d1 < 0) {
      pt_neg(c, &tmp, &tg[-d1 / 2]);
      pt_add(c, &acc, &acc, &tmp);
    }
    if (d2 > 0) {
      pt_add(c, &acc, &acc, &tq[d2 / 2]);
    } else if (d2 < 0) {
      pt_neg(c, &tmp, &tq[-d2 / 2]);
      pt_add(c, &acc, &acc, &tmp);
    }
  }
  if (is_zero(acc.z))
    return DVOICE_ERR_CRYPTO;

  /* x(R) mod n == r without inverting Z: X == r' Z^2 for r' in {r, r + n}
   * (r + n only while it is below p). */
  u64 z2[4], rm[4], cand[4];
  FMUL(z2, acc.z, acc.z);
  to_mont(rm, r, &c->p); /* r < n < p */
  FMUL(cand, rm, z2);
  if (eq(cand, acc.x))
    return 0;
  u64 rn[4];
  if (add4(rn, r, c->n.m) == 0 && !geq(rn, c->p.m)) {
    to_mont(rm, rn, &c->p);
    FMUL(cand, rm, z2);
    if (eq(cand, acc.x))
      return 0;
  }
  return DVOICE_ERR_CRYPTO;
}

/* ---- constant-time scalar multiplication ----------------------------------
 */

/* Homogeneous projective point (X/Z, Y/Z), Montgomery form; the identity is
 * (0 : 1 : 0). */
typedef struct ppoint {
  u64 x[4], y[4], z[4];
} ppoint;

/* r = a + b with the complete formulas of Renes, Costello and Batina
 * (2016, algorithm 4, a = -3): no exceptional cases (doubling, identity,
 * inverses), so no branch depends on the points. r may alias a or b. */
static void pp_add(const curve *c, ppoint *r, const ppoint *a,
                   const ppoint *b) {
  u64 t0[4], t1[4], t2[4], t3[4], t4[4], x3[4], y3[4], z3[4];
  FMUL(t0, a->x, b->x);
  FMUL(t1, a->y, b->y);
  FMUL(t2, a->z, b->z);
  FADD(t3, a->x, a->y);
  FADD(t4, b->x, b->y);
  FMUL(t3, t3, t4);
  FADD(t4, t0, t1);
  FSUB(t3, t3, t4);
  FADD(t4, a->y, a->z);
  FADD(x3, b->y, b->z);
  FMUL(t4, t4, x3);
  FADD(x3, t1, t2);
  FSUB(t4, t4, x3);
  FADD(x3, a->x, a->z);
  FADD(y3, b->x, b->z);
  FMUL(x3, x3, y3);
  FADD(y3, t0, t2);
  FSUB(y3, x3, y3);
  FMUL(z3, c->b, t2);
  FSUB(x3, y3, z3);
  FADD(z3, x3, x3);
  FADD(x3, x3, z3);
  FSUB(z3, t1, x3);
  FADD(x3, t1, x3);
  FMUL(y3, c->b, y3);
  FADD(t1, t2, t2);
  FADD(t2, t1, t2);
  FSUB(y3, y3, t2);
  FSUB(y3, y3, t0);
  FADD(t1, y3, y3);
  FADD(y3, t1, y3);
  FADD(t1, t0, t0);
  FADD(t0, t1, t0);
  FSUB(t0, t0, t2);
  FMUL(t1, t4, y3);
  FMUL(t2, t0, y3);
  FMUL(y3, x3, z3);
  FADD(y3, y3, t2);
  FMUL(x3, x3, t3);
  FSUB(x3, x3, t1);
  FMUL(z3, z3, t4);
  FMUL(t1, t3, t0);
  FADD(z3, z3, t1);
  memcpy(r->x, x3, sizeof x3);
  memcpy(r->y, y3, sizeof y3);
  memcpy(r->z, z3, sizeof z3);
}

/* a^(m-2) mod m in Montgomery form (the exponent is public). */
static void mod_inv(u64 r[4], const u64 a[4], const modulus *M) {
  u64 e[4], two[4] = {2, 0, 0, 0}, acc[4];
  sub4(e, M->m, two);
  memcpy(acc, M->one, sizeof acc);
  for (int i = 255; i >= 0; i--) {
    mont_mul(acc, acc, acc, M);
    if ((e[i / 64] >> (i % 64)) & 1)
      mont_mul(acc, acc, a, M);
  }
  memcpy(r, acc, sizeof acc);
}

static void to_be(uint8_t b[32], const u64 a[4]) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 8; j++)
      b[(3 - i) * 8 + j] = (uint8_t)(a[i] >> (56 - 8 * j));
}

/* Decodes and checks an uncompressed point (x, y < p, on the curve) into
 * Montgomery-form affine coordinates. */
static int decode_point(const curve *c, const uint8_t *pub, u64 x[4],
                        u64 y[4]) {
  if (pub[0] != 0x04)
    return -1;
  from_be(x, pub + 1);
  from_be(y, pub + 33);
  if (geq(x, c->p.m) || geq(y, c->p.m))
    return -1;
  to_mont(x, x, &c->p);
  to_mont(y, y, &c->p);
  u64 lhs[4], rhs[4], t[4];
  FMUL(lhs, y, y);
  FMUL(t, x, x);
  FMUL(rhs, t, x);
  FADD(t, x, x);
  FADD(t, t, x);
  FSUB(rhs, rhs, t);
  FADD(rhs, rhs, c->b);
  return eq(lhs, rhs) ? 0 : -1;
}

/* acc = k G with the fixed-base table: k = sum of d_w 16^w, so k G is the
 * sum of the 64 entries T[w][d_w] (d_w = 0 adds the identity): 64 complete
 * additions, no doubling. Every lookup reads all 15 entries of its window
 * under masks. */
static void mul_base(const curve *c, ppoint *acc, const u64 k[4]) {
  memset(acc, 0, sizeof *acc);
  memcpy(acc->y, c->p.one, sizeof acc->y);
  for (int w = 0; w < 64; w++) {
    u64 digit = (k[w / 16] >> ((w % 16) * 4)) & 15;
    u64 x[4] = {0}, y[4] = {0};
    for (u64 i = 1; i < 16; i++) {
      u64 mask = (u64)0 - (u64)(((i ^ digit) - 1) >> 63);
      for (int j = 0; j < 4; j++) {
        x[j] |= P256_GTAB[w][i - 1][0][j] & mask;
        y[j] |= P256_GTAB[w][i - 1][1][j] & mask;
      }
    }
    u64 zero_mask = (u64)0 - (u64)((digit - 1) >> 63); /* digit == 0 */
    ppoint t;
    to_mont(t.x, x, &c->p);
    to_mont(t.y, y, &c->p);
    /* The identity (0 : 1 : 0) when the digit is 0. */
    for (int j = 0; j < 4; j++) {
      t.y[j] |= c->p.one[j] & zero_mask;
      t.z[j] = c->p.one[j] & ~zero_mask;
    }
    pp_add(c, acc, acc, &t);
    sodium_memzero(&t, sizeof t);
    sodium_memzero(x, sizeof x);
    sodium_memzero(y, sizeof y);
  }
}

int dv_p256_mul(uint8_t out[65], const uint8_t scalar[32], const uint8_t *point,
                size_t point_len) {
  if (out == NULL || scalar == NULL || (point != NULL && point_len != 65))
    return DVOICE_ERR_INVALID_ARGUMENT;
  curve cv;
  const curve *c = &cv;
  curve_init(&cv);
  u64 k[4];
  from_be(k, scalar);
  /* 0 < k < n; only validity is revealed. */
  if (is_zero(k) || geq(k, c->n.m)) {
    sodium_memzero(k, sizeof k);
    return DVOICE_ERR_CRYPTO;
  }
  ppoint tab[16], acc, t;
  memset(tab, 0, sizeof tab);
  memset(&t, 0, sizeof t);
  if (point == NULL) {
    mul_base(c, &acc, k);
  } else {
    u64 px[4], py[4];
    if (decode_point(c, point, px, py) != 0) {
      sodium_memzero(k, sizeof k);
      return DVOICE_ERR_CRYPTO;
    }
    /* tab[i] = i P, tab[0] the identity. */
    memcpy(tab[0].y, c->p.one, sizeof tab[0].y);
    memcpy(tab[1].x, px, sizeof px);
    memcpy(tab[1].y, py, sizeof py);
    memcpy(tab[1].z, c->p.one, sizeof tab[1].z);
    for (int i = 2; i < 16; i++)
      pp_add(c, &tab[i], &tab[i - 1], &tab[1]);
    /* Fixed 4-bit windows from the top; every window does four
     * doublings, a full-table masked lookup and one addition. */
    acc = tab[0];
    for (int w = 63; w >= 0; w--) {
      for (int d = 0; d < 4; d++)
        pp_add(c, &acc, &acc, &acc);
      u64 digit = (k[w / 16] >> ((w % 16) * 4)) & 15;
      memset(&t, 0, sizeof t);
      for (u64 i = 0; i < 16; i++) {
        u64 mask = (u64)0 - (u64)(((i ^ digit) - 1) >> 63); /* i == digit */
        for (int j = 0; j < 4; j++) {
          t.x[j] |= tab[i].x[j] & mask;
          t.y[j] |= tab[i].y[j] & mask;
          t.z[j] |= tab[i].z[j] & mask;
        }
      }
      pp_add(c, &acc, &acc, &t);
    }
  }
  int rc = 0;
  if (is_zero(acc.z)) { /* cannot happen for 0 < k < n */
    rc = DVOICE_ERR_CRYPTO;
  } else {
    u64 zi[4], x[4], y[4], one[4] = {1, 0, 0, 0};
    mod_inv(zi, acc.z, &c->p);
    FMUL(x, acc.x, zi);
    FMUL(y, acc.y, zi);
    FMUL(x, x, one); /* out of Montgomery form */
    FMUL(y, y, one);
    out[0] = 0x04;
    to_be(out + 1, x);
    to_be(out + 33, y);
  }
  sodium_memzero(k, sizeof k);
  sodium_memzero(tab, sizeof tab);
  sodium_memzero(&acc, sizeof acc);
  sodium_memzero(&t, sizeof t);
  return rc;
}

int dv_p256_check_point(const uint8_t *pub, size_t pub_len) {
  if (pub == NULL || pub_len != 65)
    return DVOICE_ERR_INVALID_ARGUMENT;
  curve cv;
  curve_init(&cv);
  u64 x[4], y[4];
  return decode_point(&cv, pub, x, y) == 0 ? 0 : DVOICE_ERR_CRYPTO;
}
