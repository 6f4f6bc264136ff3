/**
 * SSE floating-point core (Intel SDM vol. 1 §4.8-4.9, §10.2.3, §11.5): binary32
 * and binary64 arithmetic with every MXCSR rounding mode, DAZ, FTZ and the
 * six exception flags, on raw lane bits (Int32 halves), without BigInt and
 * without allocation.
 *
 * Method. JS arithmetic gives the round-to-nearest double result `s` of an
 * operation; an error-free transformation (TwoSum for +/-, Dekker's
 * TwoProduct for the remainders of *, / and sqrt, all FMA-free) gives the
 * sign (and, where it matters, the size) of the exact error `e` (exact
 * result = s + e). `rnd` then rounds s + e to the target format's grid in the
 * MXCSR rounding mode, detecting overflow, underflow (tininess after
 * rounding, as x86 does) and inexactness exactly. binary64 operands are first
 * normalised to [1, 2) significands with an exponent kept aside (`sc`), so the
 * transformations are exact whatever the magnitudes. binary32 operations run
 * in doubles (exact or innocuously double-rounded: 53 >= 2*24 + 2).
 * Round-to-nearest results in the normal range take a short path.
 *
 * NaN rules (SDM vol. 1 table 11-1): the first source's NaN wins (quietened),
 * else the second's; invalid operations give the QNaN indefinite
 * (0xFFC00000, 0xFFF80000_00000000). Exception precedence (SDM vol. 1
 * §4.9.2): SNaN invalid, QNaN operand, other invalid / divide-by-zero, then
 * denormal operand, then overflow/underflow with inexact.
 *
 * Flags go to `sf.pre` (pre-computation: IE, DE, ZE) and `sf.post` (OE, UE,
 * PE); the instruction handler commits them (see sse-fp.ts `commitMx`).
 */

/** MXCSR bits (SDM vol. 1 §10.2.3). */
export const enum Mx {
  IE = 1,
  DE = 2,
  ZE = 4,
  OE = 8,
  UE = 0x10,
  PE = 0x20,
  DAZ = 0x40,
  IM = 0x80,
  UM = 0x800,
  FTZ = 0x8000,
}

/** Per-instruction context: MXCSR in effect (`mx`), accumulated flags, high half of a binary64 / int64 result. */
export const sf = { mx: 0x1f80, pre: 0, post: 0, hi: 0 };

/** QNaN indefinite (binary32). */
export const INDEF32 = 0xffc00000 | 0;
/** High half of the binary64 QNaN indefinite (low half 0). */
export const INDEF64_HI = 0xfff80000 | 0;

const BUF = new ArrayBuffer(8);
const D = new Float64Array(BUF);
const I = new Int32Array(BUF);
const F = new Float32Array(BUF);

/** binary32 bits -> number (not for NaNs). */
export function f32(b: number): number {
  I[0] = b;
  return F[0];
}
/** number (exactly a binary32, not NaN) -> bits. */
export function bits32(x: number): number {
  F[0] = x;
  return I[0];
}
/** binary64 halves -> number (not for NaNs). */
export function f64(lo: number, hi: number): number {
  I[0] = lo;
  I[1] = hi;
  return D[0];
}
/** number (not NaN) -> low half of its binary64 bits; high half in `sf.hi`. */
export function bits64(x: number): number {
  D[0] = x;
  sf.hi = I[1];
  return I[0];
}
/** True when binary32 bits `b` are a NaN. */
export function isNaN32(b: number): boolean {
  return (b & 0x7fffffff) > 0x7f800000;
}
/** True when the binary64 (lo, hi) is a NaN. */
export function isNaN64(lo: number, hi: number): boolean {
  const h = hi & 0x7fffffff;
  return h > 0x7ff00000 || (h === 0x7ff00000 && lo !== 0);
}

/** 2^n for n in [-1074, 1023]. */
function pow2(n: number): number {
  if (n >= -1022) {
    I[0] = 0;
    I[1] = (n + 1023) << 20;
    return D[0];
  }
  I[0] = 0;
  I[1] = 0x100000; // 2^-1022
  return D[0] * pow2(n + 1022);
}
/** x * 2^n exactly (the result representable), n any integer in [-2200, 2200]. */
function scale(x: number, n: number): number {
  while (n > 1000) {
    x *= pow2(1000);
    n -= 1000;
  }
  while (n < -1000) {
    x *= pow2(-1000);
    n += 1000;
  }
  return x * pow2(n);
}
/** floor(log2 x) for a positive normal double. */
function expOf(x: number): number {
  D[0] = x;
  return ((I[1] >>> 20) & 0x7ff) - 1023;
}
function isPow2(x: number): boolean {
  D[0] = x;
  return (I[1] & 0xfffff) === 0 && I[0] === 0;
}

let nExp = 0;
/** Significand of finite nonzero x scaled to [1, 2) (sign kept); exponent in `nExp`. */
function norm(x: number): number {
  D[0] = x;
  let adj = 0;
  if ((I[1] & 0x7ff00000) === 0) {
    D[0] = x * 18446744073709551616; // 2^64
    adj = -64;
  }
  nExp = ((I[1] >>> 20) & 0x7ff) - 1023 + adj;
  I[1] = (I[1] & 0x800fffff) | 0x3ff00000;
  return D[0];
}

let pErr = 0;
/** x * y (RN) with its exact error in `pErr` (Dekker; |x|, |y| < 2^995, product error not subnormal). */
function twoProd(x: number, y: number): number {
  const p = x * y;
  let c = 134217729 * x;
  const xh = c - (c - x);
  const xl = x - xh;
  c = 134217729 * y;
  const yh = c - (c - y);
  const yl = y - yh;
  pErr = xh * yh - p + xh * yl + xl * yh + xl * yl;
  return p;
}
/** Exact error of s = a + b (Knuth TwoSum). */
function twoSumErr(a: number, b: number, s: number): number {
  const bb = s - a;
  return a - (s - bb) + (b - bb);
}

/**
 * Shrinks the approximate error term of a quotient or square root (computed
 * from an exact remainder by one rounded division) so that it can never
 * reach half a unit of the double grid it was computed on: the exact error
 * there is strictly below half an ulp (the JS result is correctly rounded
 * and a quotient or root of doubles is never exactly a midpoint), but the
 * rounded division can land on it and `roundAt` would then see a tie. The
 * sign, and every comparison farther than 2^-20 relative from the midpoint,
 * are unchanged.
 */
const SHRINK = 1 - 2 ** -20;

let inex = false;
/**
 * Rounds S + E (S > 0) to a multiple of u in `mode` (0 nearest-even, 1 away
 * from zero, 2 toward zero); sets `inex`. Only E's sign matters except at a
 * grid point or midpoint (see file comment).
 */
function roundAt(S: number, E: number, u: number, mode: number): number {
  const t = S / u;
  let n = Math.floor(t);
  let f = t - n;
  if (f === 0 && E === 0) {
    inex = false;
    return S;
  }
  inex = true;
  if (f === 0 && E < 0) {
    n -= 1;
    f = 1;
  }
  let up: boolean;
  if (mode === 1) up = true;
  else if (mode === 2) up = false;
  else {
    let c: number;
    if (f === 0) c = E / u - 0.5;
    else if (f === 1) c = E / u + 0.5;
    else if (f === 0.5) c = E;
    else c = f - 0.5;
    up = c > 0 || (c === 0 && n % 2 === 1);
  }
  return (up ? n + 1 : n) * u;
}

const MAX32 = 3.4028234663852886e38;

/**
 * Rounds the exact value (s + e) * 2^sc to the format with `p` significand
 * bits and normal exponents [emin, emax], in MXCSR.RC, with FTZ and the
 * OE/UE/PE flags (tininess after rounding; masked responses). `s` is a
 * finite nonzero normal double. Returns the result as a number.
 */
export function rnd(s: number, e: number, sc: number, p: number, emin: number, emax: number): number {
  const mx = sf.mx;
  const neg = s < 0;
  const S = neg ? -s : s;
  const E = neg ? -e : e;
  const rc = (mx >> 13) & 3;
  const mode = rc === 0 ? 0 : rc === 3 ? 2 : (rc === 1) === neg ? 1 : 2;
  let k = expOf(S);
  if (E < 0 && isPow2(S)) k--;
  const ek = k + sc;
  let r: number;
  if (ek >= emin) {
    const R = roundAt(S, E, pow2(k - p + 1), mode);
    if (R === Infinity || expOf(R) + sc > emax) {
      if (!(mx & 0x400)) {
        sf.post |= Mx.OE | (inex ? Mx.PE : 0);
        r = Infinity;
      } else {
        sf.post |= Mx.OE | Mx.PE;
        r = mode === 2 ? (p === 24 ? MAX32 : Number.MAX_VALUE) : Infinity;
      }
      return neg ? -r : r;
    }
    if (inex) sf.post |= Mx.PE;
    r = sc === 0 ? R : scale(R, sc);
    return neg ? -r : r;
  }
  // Tiny before rounding; x86 detects tininess after rounding (unbounded exponent).
  let tiny = true;
  if (ek === emin - 1) tiny = roundAt(S, E, pow2(k - p + 1), mode) < pow2(emin - sc);
  const ulpE = emin - p + 1; // true exponent of the subnormal grid
  if (ek < ulpE - 2) {
    inex = true;
    r = mode === 1 ? pow2(ulpE) : 0;
  } else {
    r = scale(roundAt(S, E, pow2(ulpE - sc), mode), sc);
  }
  if (tiny) {
    if (!(mx & Mx.UM)) {
      // unmasked: PE reports the inexactness of the full-precision (exponent-wrapped) result,
      // not of the denormalised one (the destination is not written)
      roundAt(S, E, pow2(k - p + 1), mode);
      sf.post |= Mx.UE | (inex ? Mx.PE : 0);
    } else if (mx & Mx.FTZ) {
      sf.post |= Mx.UE | Mx.PE;
      r = 0;
    } else if (inex) sf.post |= Mx.UE | Mx.PE;
  } else if (inex) sf.post |= Mx.PE;
  return neg ? -r : r;
}

/** Rounds s + e (s a nonzero normal double, the exact value of a binary32 operation) to binary32 bits. */
export function fin32(s: number, e: number): number {
  if ((sf.mx & 0xe000) === 0) {
    const r = Math.fround(s);
    const a = r < 0 ? -r : r;
    if (a > 1.1754943508222875e-38 && a !== Infinity) {
      if (r !== s || e !== 0) sf.post |= Mx.PE;
      return bits32(r);
    }
  }
  return bits32(rnd(s, e, 0, 24, -126, 127));
}

/** Rounds (s + e) * 2^sc to binary64; returns the low half, high half in `sf.hi`. */
export function fin64(s: number, e: number, sc: number): number {
  if (sc === 0 && (sf.mx & 0xe000) === 0) {
    const a = s < 0 ? -s : s;
    if (a > 2.2250738585072014e-308 && a !== Infinity) {
      if (e !== 0) sf.post |= Mx.PE;
      return bits64(s);
    }
  }
  return bits64(rnd(s, e, sc, 53, -1022, 1023));
}

/** Opcodes (0F xx low byte) of the lane operations. */
export const enum FOp {
  SQRT = 0x51,
  ADD = 0x58,
  MUL = 0x59,
  SUB = 0x5c,
  MIN = 0x5d,
  DIV = 0x5e,
  MAX = 0x5f,
}

/** DAZ / DE handling of a binary32 operand: returns the bits to use; ORs DE into `den` when denormal. */
let den = 0;
function daz32(b: number): number {
  if ((b & 0x7f800000) === 0 && b & 0x7fffff) {
    if (sf.mx & Mx.DAZ) return b & 0x80000000;
    den = Mx.DE;
  }
  return b;
}
let dHi = 0;
function daz64(lo: number, hi: number): number {
  dHi = hi;
  if ((hi & 0x7ff00000) === 0 && (lo | (hi & 0xfffff)) !== 0) {
    if (sf.mx & Mx.DAZ) {
      dHi = hi & 0x80000000;
      return 0;
    }
    den = Mx.DE;
  }
  return lo;
}

/**
 * One binary32 lane of ADD/SUB/MUL/DIV/MIN/MAX/SQRT (`op`: FOp): `a` first
 * source (destination), `b` second source (SQRT: the operand). Returns the
 * result bits; flags into `sf.pre` / `sf.post`.
 */
export function op32(op: number, a: number, b: number): number {
  if (op === FOp.MIN || op === FOp.MAX) {
    if (isNaN32(a) || isNaN32(b)) {
      // the second operand is returned as the instruction sees it: a denormal flushed under DAZ
      sf.pre |= Mx.IE;
      return (b & 0x7f800000) === 0 && sf.mx & Mx.DAZ ? b & 0x80000000 : b;
    }
    den = 0;
    a = daz32(a);
    b = daz32(b);
    sf.pre |= den;
    const x = f32(a);
    const y = f32(b);
    return op === FOp.MIN ? (x < y ? a : b) : x > y ? a : b;
  }
  if (op === FOp.SQRT) a = b;
  const an = isNaN32(a);
  const bn = op !== FOp.SQRT && isNaN32(b);
  if (an || bn) {
    if ((an && !(a & 0x400000)) || (bn && !(b & 0x400000))) sf.pre |= Mx.IE;
    return (an ? a : b) | 0x400000;
  }
  den = 0;
  a = daz32(a);
  if (op !== FOp.SQRT) b = daz32(b);
  const x = f32(a);
  let y = f32(b);
  switch (op) {
    case FOp.SUB:
    case FOp.ADD: {
      if (op === FOp.SUB) y = -y;
      if (x === Infinity || x === -Infinity || y === Infinity || y === -Infinity) {
        if (x === -y) {
          sf.pre |= Mx.IE;
          return INDEF32;
        }
        sf.pre |= den;
        return bits32(x + y);
      }
      sf.pre |= den;
      const s = x + y;
      if (s === 0) return zeroSum32(x, y);
      return fin32(s, twoSumErr(x, y, s));
    }
    case FOp.MUL: {
      const xi = x === Infinity || x === -Infinity;
      const yi = y === Infinity || y === -Infinity;
      if ((xi && y === 0) || (yi && x === 0)) {
        sf.pre |= Mx.IE;
        return INDEF32;
      }
      sf.pre |= den;
      const s = x * y;
      if (xi || yi || s === 0) return bits32(s);
      return fin32(s, 0);
    }
    case FOp.DIV: {
      const xi = x === Infinity || x === -Infinity;
      const yi = y === Infinity || y === -Infinity;
      if ((x === 0 && y === 0) || (xi && yi)) {
        sf.pre |= Mx.IE;
        return INDEF32;
      }
      if (y === 0) {
        // a finite nonzero dividend is divide-by-zero; inf / 0 is an exact inf (IEEE 754 §7.3)
        if (!xi) sf.pre |= Mx.ZE;
        return bits32(x / y);
      }
      sf.pre |= den;
      const s = x / y;
      if (xi || yi || x === 0) return bits32(s);
      const ph = twoProd(s, y);
      const rem = x - ph - pErr;
      return fin32(s, (rem / y) * SHRINK);
    }
    default: {
      // SQRT
      if (a < 0 && x !== 0) {
        sf.pre |= Mx.IE;
        return INDEF32;
      }
      if (x === 0 || x === Infinity) return a;
      sf.pre |= den;
      const s = Math.sqrt(x);
      const ph = twoProd(s, s);
      return fin32(s, ((x - ph - pErr) / (2 * s)) * SHRINK);
    }
  }
}

/**
 * Bits of an exact-zero sum x + y (IEEE 754 §6.3): two zeros of one sign keep
 * it; otherwise +0, or -0 when rounding down (MXCSR.RC = 01).
 */
function zeroSum32(x: number, y: number): number {
  if (x === 0 && y === 0 && 1 / x < 0 === 1 / y < 0) return 1 / x < 0 ? 0x80000000 | 0 : 0;
  return ((sf.mx >> 13) & 3) === 1 ? 0x80000000 | 0 : 0;
}

/**
 * One binary64 lane of `op` (as `op32`): a = (alo, ahi), b = (blo, bhi).
 * Returns the low half of the result, high half in `sf.hi`.
 */
export function op64(op: number, alo: number, ahi: number, blo: number, bhi: number): number {
  if (op === FOp.MIN || op === FOp.MAX) {
    if (isNaN64(alo, ahi) || isNaN64(blo, bhi)) {
      sf.pre |= Mx.IE;
      if ((bhi & 0x7ff00000) === 0 && sf.mx & Mx.DAZ) {
        sf.hi = bhi & 0x80000000;
        return 0;
      }
      sf.hi = bhi;
      return blo;
    }
    den = 0;
    alo = daz64(alo, ahi);
    ahi = dHi;
    blo = daz64(blo, bhi);
    bhi = dHi;
    sf.pre |= den;
    const x = f64(alo, ahi);
    const y = f64(blo, bhi);
    if (op === FOp.MIN ? x < y : x > y) {
      sf.hi = ahi;
      return alo;
    }
    sf.hi = bhi;
    return blo;
  }
  if (op === FOp.SQRT) {
    alo = blo;
    ahi = bhi;
  }
  const an = isNaN64(alo, ahi);
  const bn = op !== FOp.SQRT && isNaN64(blo, bhi);
  if (an || bn) {
    if ((an && !(ahi & 0x80000)) || (bn && !(bhi & 0x80000))) sf.pre |= Mx.IE;
    if (an) {
      sf.hi = ahi | 0x80000;
      return alo;
    }
    sf.hi = bhi | 0x80000;
    return blo;
  }
  den = 0;
  alo = daz64(alo, ahi);
  ahi = dHi;
  if (op !== FOp.SQRT) {
    blo = daz64(blo, bhi);
    bhi = dHi;
  }
  const x = f64(alo, ahi);
  let y = f64(blo, bhi);
  const fast = (sf.mx & 0xe000) === 0;
  switch (op) {
    case FOp.SUB:
    case FOp.ADD: {
      if (op === FOp.SUB) y = -y;
      if (x === Infinity || x === -Infinity || y === Infinity || y === -Infinity) {
        if (x === -y) return indef64();
        sf.pre |= den;
        return bits64(x + y);
      }
      sf.pre |= den;
      let s = x + y;
      if (s === 0) {
        const z = zeroSum32(x, y);
        sf.hi = z;
        return 0;
      }
      const as = s < 0 ? -s : s;
      if (as === Infinity) {
        const x2 = x * 0.5;
        const y2 = y * 0.5;
        s = x2 + y2;
        return fin64(s, twoSumErr(x2, y2, s), 1);
      }
      if (as < 1e-290) {
        const x2 = x * 4.149515568880993e180; // 2^600
        const y2 = y * 4.149515568880993e180;
        s = x2 + y2;
        return fin64(s, twoSumErr(x2, y2, s), -600);
      }
      return fin64(s, twoSumErr(x, y, s), 0);
    }
    case FOp.MUL: {
      const xi = x === Infinity || x === -Infinity;
      const yi = y === Infinity || y === -Infinity;
      if ((xi && y === 0) || (yi && x === 0)) return indef64();
      sf.pre |= den;
      const s = x * y;
      if (xi || yi || x === 0 || y === 0) return bits64(s);
      if (fast) {
        const as = s < 0 ? -s : s;
        const ax = x < 0 ? -x : x;
        const ay = y < 0 ? -y : y;
        if (as > 1e-280 && as < 1e290 && ax < 1e290 && ay < 1e290) {
          twoProd(x, y);
          if (pErr !== 0) sf.post |= Mx.PE;
          return bits64(s);
        }
      }
      const mx = norm(x);
      const ex = nExp;
      const my = norm(y);
      const sn = twoProd(mx, my);
      return fin64(sn, pErr, ex + nExp);
    }
    case FOp.DIV: {
      const xi = x === Infinity || x === -Infinity;
      const yi = y === Infinity || y === -Infinity;
      if ((x === 0 && y === 0) || (xi && yi)) return indef64();
      if (y === 0) {
        if (!xi) sf.pre |= Mx.ZE;
        return bits64(x / y);
      }
      sf.pre |= den;
      const s = x / y;
      if (xi || yi || x === 0) return bits64(s);
      if (fast) {
        const as = s < 0 ? -s : s;
        const ax = x < 0 ? -x : x;
        const ay = y < 0 ? -y : y;
        if (as > 1e-280 && as < 1e290 && ax > 1e-280 && ax < 1e290 && ay > 1e-280 && ay < 1e290) {
          const ph = twoProd(s, y);
          if (x - ph - pErr !== 0) sf.post |= Mx.PE;
          return bits64(s);
        }
      }
      const mx = norm(x);
      const ex = nExp;
      const my = norm(y);
      const q = mx / my;
      const ph = twoProd(q, my);
      return fin64(q, ((mx - ph - pErr) / my) * SHRINK, ex - nExp);
    }
    default: {
      if (ahi < 0 && x !== 0) return indef64();
      if (x === 0 || x === Infinity) {
        sf.hi = ahi;
        return alo;
      }
      sf.pre |= den;
      let m = norm(x);
      let ex = nExp;
      if (ex & 1) {
        m *= 2;
        ex -= 1;
      }
      const s = Math.sqrt(m);
      const ph = twoProd(s, s);
      return fin64(s, ((m - ph - pErr) / (2 * s)) * SHRINK, ex / 2);
    }
  }
}

function indef64(): number {
  sf.pre |= Mx.IE;
  sf.hi = INDEF64_HI;
  return 0;
}

/**
 * CMPPS/CMPSS predicate `pred` (0-7: EQ LT LE UNORD NEQ NLT NLE ORD; SDM
 * vol. 2 CMPPS table 3-1) on binary32 bits; IE for SNaN, and for QNaN with
 * the signaling predicates LT/LE/NLT/NLE; DE for denormal operands.
 */
export function cmp32(a: number, b: number, pred: number): boolean {
  if (isNaN32(a) || isNaN32(b)) {
    if (
      (pred & 3) === 1 ||
      (pred & 3) === 2 ||
      (isNaN32(a) && !(a & 0x400000)) ||
      (isNaN32(b) && !(b & 0x400000))
    )
      sf.pre |= Mx.IE;
    return pred === 3 || pred === 4 || pred === 5 || pred === 6;
  }
  den = 0;
  a = daz32(a);
  b = daz32(b);
  sf.pre |= den;
  return cmpRel(f32(a), f32(b), pred);
}

/** CMPPD/CMPSD predicate on binary64 operands (as `cmp32`). */
export function cmp64(alo: number, ahi: number, blo: number, bhi: number, pred: number): boolean {
  const an = isNaN64(alo, ahi);
  const bn = isNaN64(blo, bhi);
  if (an || bn) {
    if ((pred & 3) === 1 || (pred & 3) === 2 || (an && !(ahi & 0x80000)) || (bn && !(bhi & 0x80000)))
      sf.pre |= Mx.IE;
    return pred === 3 || pred === 4 || pred === 5 || pred === 6;
  }
  den = 0;
  alo = daz64(alo, ahi);
  ahi = dHi;
  blo = daz64(blo, bhi);
  bhi = dHi;
  sf.pre |= den;
  return cmpRel(f64(alo, ahi), f64(blo, bhi), pred);
}

function cmpRel(x: number, y: number, pred: number): boolean {
  switch (pred) {
    case 0:
      return x === y;
    case 1:
      return x < y;
    case 2:
      return x <= y;
    case 3:
      return false;
    case 4:
      return x !== y;
    case 5:
      return !(x < y);
    case 6:
      return !(x <= y);
    default:
      return true;
  }
}

/**
 * COMISS/UCOMISS relation of binary32 a, b: 0 greater, 1 less, 2 equal, 3
 * unordered. IE for SNaN (and QNaN when `signaling`, COMISS); DE.
 */
export function rel32(a: number, b: number, signaling: boolean): number {
  if (isNaN32(a) || isNaN32(b)) {
    if (signaling || (isNaN32(a) && !(a & 0x400000)) || (isNaN32(b) && !(b & 0x400000))) sf.pre |= Mx.IE;
    return 3;
  }
  den = 0;
  const x = f32(daz32(a));
  const y = f32(daz32(b));
  sf.pre |= den;
  return x > y ? 0 : x < y ? 1 : 2;
}

/** COMISD/UCOMISD relation (as `rel32`). */
export function rel64(alo: number, ahi: number, blo: number, bhi: number, signaling: boolean): number {
  const an = isNaN64(alo, ahi);
  const bn = isNaN64(blo, bhi);
  if (an || bn) {
    if (signaling || (an && !(ahi & 0x80000)) || (bn && !(bhi & 0x80000))) sf.pre |= Mx.IE;
    return 3;
  }
  den = 0;
  alo = daz64(alo, ahi);
  ahi = dHi;
  blo = daz64(blo, bhi);
  bhi = dHi;
  sf.pre |= den;
  const x = f64(alo, ahi);
  const y = f64(blo, bhi);
  return x > y ? 0 : x < y ? 1 : 2;
}

// ---------------- conversions ----------------

/** binary32 -> binary64 (CVTSS2SD/CVTPS2PD): exact; NaN quietened with its payload; IE for SNaN, DE. Low half returned, high in `sf.hi`. */
export function cvt32to64(b: number): number {
  if (isNaN32(b)) {
    if (!(b & 0x400000)) sf.pre |= Mx.IE;
    sf.hi = (b & 0x80000000) | 0x7ff80000 | ((b & 0x3fffff) >>> 3);
    return (b & 7) << 29;
  }
  den = 0;
  b = daz32(b);
  sf.pre |= den;
  return bits64(f32(b));
}

/** binary64 -> binary32 (CVTSD2SS/CVTPD2PS): rounded per MXCSR; NaN quietened (payload truncated); IE, DE, OE, UE, PE. */
export function cvt64to32(lo: number, hi: number): number {
  if (isNaN64(lo, hi)) {
    if (!(hi & 0x80000)) sf.pre |= Mx.IE;
    return (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
  }
  den = 0;
  lo = daz64(lo, hi);
  hi = dHi;
  sf.pre |= den;
  const x = f64(lo, hi);
  if (x === 0 || x === Infinity || x === -Infinity) return bits32(x);
  const ax = x < 0 ? -x : x;
  if (ax < 1e-290) return bits32(rnd(x * 4.149515568880993e180, 0, -600, 24, -126, 127));
  return fin32(x, 0);
}

/** Rounds x to an integral value: `rc` 0 nearest-even, 1 down, 2 up, 3 toward zero (SDM MXCSR.RC encoding). */
export function roundInt(x: number, rc: number): number {
  switch (rc) {
    case 0: {
      const r = Math.round(x);
      return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
    }
    case 1:
      return Math.floor(x);
    case 2:
      return Math.ceil(x);
    default:
      return Math.trunc(x);
  }
}

/**
 * Float (a number, not NaN; or NaN for a NaN operand) -> int32 (`bits` 32)
 * or int64 (64: low half returned, high in `sf.hi`), rounded with MXCSR.RC
 * or truncated (`trunc`, CVTT*). NaN and out-of-range give the integer
 * indefinite (0x80000000, 0x80000000_00000000) with IE; otherwise PE when
 * inexact (SDM CVTSS2SI).
 */
export function toInt(x: number, trunc: boolean, bits: 32 | 64): number {
  const r = roundInt(x, trunc ? 3 : (sf.mx >> 13) & 3);
  if (bits === 32) {
    if (!(r >= -2147483648 && r <= 2147483647)) {
      sf.pre |= Mx.IE;
      return 0x80000000 | 0;
    }
    if (r !== x) sf.post |= Mx.PE;
    return r | 0;
  }
  if (!(r >= -9223372036854775808 && r < 9223372036854775808)) {
    sf.pre |= Mx.IE;
    sf.hi = 0x80000000 | 0;
    return 0;
  }
  if (r !== x) sf.post |= Mx.PE;
  const h = Math.floor(r / 4294967296);
  sf.hi = h | 0;
  return (r - h * 4294967296) | 0;
}

/** binary32 bits -> number for an integer conversion: NaN for NaN, DAZ applied (no DE: SDM lists IE, PE only). */
export function f32ForInt(b: number): number {
  if (isNaN32(b)) return NaN;
  if ((b & 0x7f800000) === 0 && sf.mx & Mx.DAZ) return 0;
  return f32(b);
}
/** binary64 halves -> number for an integer conversion (as `f32ForInt`). */
export function f64ForInt(lo: number, hi: number): number {
  if (isNaN64(lo, hi)) return NaN;
  if ((hi & 0x7ff00000) === 0 && sf.mx & Mx.DAZ) return 0;
  return f64(lo, hi);
}

/** int64 (lo, hi signed halves) -> binary32 bits, rounded per MXCSR (CVTSI2SS r64). */
export function i64to32(lo: number, hi: number): number {
  const a = hi * 4294967296;
  const b = lo >>> 0;
  const s = a + b;
  if (s === 0) return 0;
  // s is already rounded to 53 bits: with an error left, a second rounding (fin32's RN fast path)
  // could see a false tie (2^62 + 2^38 + 1 -> 2^62 instead of 2^62 + 2^39): round s + e once
  const e = twoSumErr(a, b, s);
  return e === 0 ? fin32(s, 0) : bits32(rnd(s, e, 0, 24, -126, 127));
}
/** int64 -> binary64, rounded per MXCSR (CVTSI2SD r64); low half returned, high in `sf.hi`. */
export function i64to64(lo: number, hi: number): number {
  const a = hi * 4294967296;
  const b = lo >>> 0;
  const s = a + b;
  if (s === 0) return bits64(0);
  return fin64(s, twoSumErr(a, b, s), 0);
}
/** int32 -> binary32 bits, rounded per MXCSR (CVTSI2SS r32, CVTDQ2PS). */
export function i32to32(v: number): number {
  if (v === 0) return 0;
  return fin32(v, 0);
}
