/**
 * x87 transcendental functions on the soft-float core (Intel SDM vol. 2
 * F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN, FSIN, FCOS, FSINCOS; vol. 1 §8.3.8
 * "Approximation of Pi", §8.3.10 "Transcendental Instruction Accuracy").
 *
 * Each function takes unpacked operands and writes unpacked results, with
 * the exceptions in `sf.exc` and C1 ("rounded up") in `sf.up`, like the
 * arithmetic in softfloat.ts; x87.ts does the stack, tags and the
 * masked/unmasked responses. Special operands (zeros, infinities, NaNs,
 * unsupported encodings, the exact cases F2XM1(±1), FYL2X(2^n, y), FPTAN's
 * 1.0, ...) follow the SDM's result tables exactly. Every other result is
 * computed in a 160-bit multi-precision format (`MP`: sign, unbounded
 * exponent, ten 16-bit limbs in a Float64Array, every operation truncated
 * with the lost bits jammed into the last bit, i.e. rounded to odd, so the
 * final rounding sees an inexact value as inexact) with Taylor/atanh
 * series, then rounded ONCE to the 64-bit significand by the rounding
 * control (precision control does not apply: SDM vol. 1 §8.1.5.2) with the
 * extended exponent range (denormal results: UE; overflow: OE; register
 * destination, so unmasked UE/OE deliver the scaled result).
 *
 * Accuracy (docs/cpu-testing.md "x87 transcendentals"): the computed value
 * is within 2^-140 (relative) of the exact value, so the result is the
 * exact value correctly rounded in all four rounding modes, except when the
 * exact value lies within 2^-140 relative of a rounding boundary, where it
 * is within 1 ulp. FSIN/FCOS/FSINCOS/FPTAN first reduce the operand exactly
 * by multiples of Pi/2 where Pi is the x87's 66-bit approximation of pi
 * (0.C90FDAA2_2168C234_C * 4, SDM vol. 1 §8.3.8), rounding the quotient to
 * nearest, and return the exact function of the reduced argument (so, like
 * the hardware, FSIN(x) is not sin(x) near multiples of pi for large x).
 *
 * Out of the SDM's domains the results are "undefined"; the engine returns
 * 2^x - 1 for any finite x (F2XM1) and y * log2(1 + x) for any x > -1
 * (FYL2XP1; x = -1 as FYL2X(+0, y), x < -1 invalid).
 *
 * No BigInt, and no allocation per call (module-level scratch).
 */
import {
  BIAS,
  Exc,
  F80,
  K,
  classify,
  propagateNaN,
  roundPack,
  setIndefinite,
  setInf,
  setZero,
  sf,
  unaryInvalidOrNaN,
} from './softfloat';

// ---- 160-bit multi-precision numbers ----

/** Limbs per significand (16 bits each). */
const L = 10;
/** Series stop once a term is below 2^-STOP relative to 1. */
const STOP = 16 * L + 8;

/** (-1)^s * 0.m[0]m[1]..m[L-1] (base 2^16, m[0] >= 0x8000) * 2^e, or zero (z). */
class MP {
  s = 0;
  e = 0;
  z = true;
  m = new Float64Array(L);
}

const W = new Float64Array(2 * L + 4);
const T = new Float64Array(L + 4);
const RB = new Float64Array(L + 2);

function setZ(d: MP, s: number): void {
  d.z = true;
  d.s = s;
  d.e = 0;
  d.m.fill(0);
}

function copyMP(d: MP, a: MP): void {
  d.s = a.s;
  d.e = a.e;
  d.z = a.z;
  d.m.set(a.m);
}

/** d := (-1)^s * 0.buf[0..n) * 2^e, normalized, truncated to L limbs with the rest (and `sticky`) jammed into the last bit. */
function pack(d: MP, s: number, e: number, buf: Float64Array, n: number, sticky: number): void {
  let f = 0;
  while (f < n && buf[f] === 0) f++;
  if (f === n) {
    setZ(d, s);
    return;
  }
  const lz = Math.clz32(buf[f]) - 16;
  let st = sticky;
  for (let i = 0; i < L; i++) {
    const k = f + i;
    const a = k < n ? buf[k] : 0;
    const b = k + 1 < n ? buf[k + 1] : 0;
    d.m[i] = lz ? ((a << lz) | (b >>> (16 - lz))) & 0xffff : a;
  }
  const k = f + L;
  if (k < n) {
    if (lz ? (buf[k] << lz) & 0xffff : buf[k]) st = 1;
    for (let j = k + 1; j < n; j++) if (buf[j]) st = 1;
  }
  if (st) d.m[L - 1] |= 1;
  d.s = s;
  d.e = e - 16 * f - lz;
  d.z = false;
}

/** Magnitude order of a and b (nonzero): -1, 0, 1. */
function cmpMag(a: MP, b: MP): number {
  if (a.e !== b.e) return a.e > b.e ? 1 : -1;
  for (let i = 0; i < L; i++) if (a.m[i] !== b.m[i]) return a.m[i] > b.m[i] ? 1 : -1;
  return 0;
}

/** d := a * b. */
function mul(d: MP, a: MP, b: MP): void {
  if (a.z || b.z) {
    setZ(d, a.s ^ b.s);
    return;
  }
  const am = a.m,
    bm = b.m;
  W[0] = 0;
  const a0 = am[0];
  for (let j = 0; j < L; j++) W[j + 1] = a0 * bm[j];
  for (let i = 1; i < L; i++) {
    const ai = am[i];
    W[i + L] = 0;
    if (ai === 0) continue;
    for (let j = 0; j < L; j++) W[i + j + 1] += ai * bm[j];
  }
  let c = 0;
  for (let k = 2 * L - 1; k >= 0; k--) {
    const v = W[k] + c;
    c = Math.floor(v * (1 / 65536));
    W[k] = v - c * 65536;
  }
  pack(d, a.s ^ b.s, a.e + b.e, W, 2 * L, 0);
}

/** d := a / n for an integer 1 <= n < 2^16. */
function divSmall(d: MP, a: MP, n: number): void {
  if (a.z) {
    setZ(d, a.s);
    return;
  }
  let rem = 0;
  for (let i = 0; i < L + 2; i++) {
    const v = rem * 65536 + (i < L ? a.m[i] : 0);
    let q = Math.floor(v / n);
    rem = v - q * n;
    if (rem < 0) {
      q -= 1;
      rem += n;
    } else if (rem >= n) {
      q += 1;
      rem -= n;
    }
    W[i] = q;
  }
  pack(d, a.s, a.e, W, L + 2, rem ? 1 : 0);
}

/** Order of the division remainder RB against the divisor limbs bm. */
function cmpRem(bm: Float64Array): number {
  if (RB[0] !== 0) return RB[0] > 0 ? 1 : -1;
  for (let k = 0; k < L; k++) if (RB[k + 1] !== bm[k]) return RB[k + 1] > bm[k] ? 1 : -1;
  return 0;
}

/** RB -= q * bm (RB[0] may go negative). */
function subB(bm: Float64Array, q: number): void {
  let carry = 0;
  for (let k = L - 1; k >= 0; k--) {
    const p = q * bm[k] + carry;
    carry = Math.floor(p * (1 / 65536));
    let v = RB[k + 1] - (p - carry * 65536);
    if (v < 0) {
      v += 65536;
      carry += 1;
    }
    RB[k + 1] = v;
  }
  RB[0] -= carry;
}

/** RB += bm. */
function addB(bm: Float64Array): void {
  let c = 0;
  for (let k = L - 1; k >= 0; k--) {
    const v = RB[k + 1] + bm[k] + c;
    c = v >= 65536 ? 1 : 0;
    RB[k + 1] = v - c * 65536;
  }
  RB[0] += c;
}

/**
 * d := a / b (b nonzero): schoolbook long division in base 2^16, each
 * quotient digit estimated from the leading limbs in double precision and
 * corrected so the partial remainder stays in [0, b); exact remainder, so
 * the quotient is truncated with a sticky bit like the other operations.
 */
function div(d: MP, a: MP, b: MP): void {
  if (a.z) {
    setZ(d, a.s ^ b.s);
    return;
  }
  const bm = b.m;
  // RB[0] integer part, RB[1..L] fraction: the partial remainder, < b.
  RB[0] = 0;
  for (let i = 0; i < L; i++) RB[i + 1] = a.m[i];
  const bv = bm[0] / 65536 + bm[1] / 4294967296 + bm[2] / 281474976710656;
  const nq = L + 2;
  W[0] = 0;
  if (cmpRem(bm) >= 0) {
    subB(bm, 1);
    W[0] = 1;
  }
  for (let j = 1; j < nq; j++) {
    // RB := RB * 2^16 (RB < b < 1, so RB[0] is 0 before the shift).
    for (let k = 0; k < L; k++) RB[k] = RB[k + 1];
    RB[L] = 0;
    const tv = RB[0] + RB[1] / 65536 + RB[2] / 4294967296;
    let q = Math.floor(tv / bv);
    if (q > 65535) q = 65535;
    if (q > 0) subB(bm, q);
    while (RB[0] < 0) {
      addB(bm);
      q -= 1;
    }
    while (cmpRem(bm) >= 0) {
      subB(bm, 1);
      q += 1;
    }
    W[j] = q;
  }
  let st = 0;
  for (let k = 0; k <= L; k++) if (RB[k]) st = 1;
  pack(d, a.s ^ b.s, a.e - b.e + 16, W, nq, st);
}

/** d := a + b (sub: a - b): the exact sum truncated toward zero (round to odd). */
function add(d: MP, a: MP, b: MP, sub: boolean): void {
  const sb = sub ? b.s ^ 1 : b.s;
  if (b.z) {
    if (d !== a) copyMP(d, a);
    return;
  }
  if (a.z) {
    if (d !== b) copyMP(d, b);
    d.s = sb;
    return;
  }
  let X = a,
    Y = b,
    sx = a.s,
    sy = sb;
  if (cmpMag(a, b) < 0) {
    X = b;
    Y = a;
    sx = sb;
    sy = a.s;
  }
  const n = L + 3;
  W[0] = 0;
  for (let i = 0; i < L; i++) W[i + 1] = X.m[i];
  W[L + 1] = 0;
  W[L + 2] = 0;
  T.fill(0, 0, n);
  const sh = X.e - Y.e;
  let sticky = 0;
  if (sh >= 16 * (L + 2)) sticky = 1;
  else {
    const q = sh >>> 4,
      r = sh & 15;
    for (let j = 0; j < L; j++) {
      const v = Y.m[j];
      const t = j + 1 + q;
      const hiPart = v >>> r;
      const loPart = r ? (v << (16 - r)) & 0xffff : 0;
      if (t < n) T[t] += hiPart;
      else if (hiPart) sticky = 1;
      if (t + 1 < n) T[t + 1] += loPart;
      else if (loPart) sticky = 1;
    }
  }
  if (sx === sy) {
    let c = 0;
    for (let k = n - 1; k >= 0; k--) {
      const v = W[k] + T[k] + c;
      c = v >= 65536 ? 1 : 0;
      W[k] = v & 0xffff;
    }
  } else {
    // Exact X - Y - (sticky bits) truncated: borrow one unit for the lost bits.
    let br = sticky;
    for (let k = n - 1; k >= 0; k--) {
      let v = W[k] - T[k] - br;
      br = 0;
      if (v < 0) {
        v += 65536;
        br = 1;
      }
      W[k] = v;
    }
  }
  pack(d, sx, X.e + 16, W, n, sticky);
}

/** d := the (finite) extended value a, exactly. */
function fromF80(d: MP, a: F80): void {
  W[0] = a.hi >>> 16;
  W[1] = a.hi & 0xffff;
  W[2] = a.lo >>> 16;
  W[3] = a.lo & 0xffff;
  pack(d, a.s, (a.e === 0 ? 1 : a.e) - BIAS + 1, W, 4, 0);
}

/** d := the integer n (|n| < 2^32). */
function fromInt(d: MP, n: number): void {
  const v = Math.abs(n);
  W[0] = Math.floor(v / 65536);
  W[1] = v % 65536;
  pack(d, n < 0 ? 1 : 0, 32, W, 2, 0);
}

/** Rounds a (nonzero) to the extended format at 64 bits by sf.rc into out. `inexact`: jam a sticky bit (irrational value). */
function toF80(a: MP, out: F80, inexact: boolean): void {
  if (a.z) {
    setZero(out, a.s);
    return;
  }
  const m = a.m;
  const hi = m[0] * 65536 + m[1];
  const lo = m[2] * 65536 + m[3];
  let g = m[4] * 65536 + m[5];
  if (inexact || m[6] || m[7] || m[8] || m[9]) g = (g | 1) >>> 0;
  roundPack(a.s, a.e + BIAS - 1, hi, lo, g, 64, 1, 0x7ffe, true, out);
}

function constant(hex: string, e: number): MP {
  const d = new MP();
  const buf = new Float64Array(hex.length / 4);
  for (let i = 0; i < buf.length; i++) buf[i] = parseInt(hex.slice(i * 4, i * 4 + 4), 16);
  pack(d, 0, e, buf, buf.length, 1);
  return d;
}

// 176-bit expansions (the rest is nonzero: jammed). Checked against series in test/helpers/gen-x87.ts.
const PI = constant('c90fdaa22168c234c4c6628b80dc1cd129024e088a67', 2);
const PI_2 = constant('c90fdaa22168c234c4c6628b80dc1cd129024e088a67', 1);
const PI_4 = constant('c90fdaa22168c234c4c6628b80dc1cd129024e088a67', 0);
const LN2 = constant('b17217f7d1cf79abc9e3b39803f2f6af40f343267298', 0);
const LOG2E = constant('b8aa3b295c17f0bbbe87fed0691d3e88eb577aa8dd69', 1);
const ONE = new MP();
fromInt(ONE, 1);
const TWO = new MP();
fromInt(TWO, 2);

// Scratch.
const mA = new MP();
const mB = new MP();
const mC = new MP();
const mD = new MP();
const mE = new MP();
const mF = new MP();
const mR = new MP();
const mTS = new MP();
const mTC = new MP();
const mOut = new MP();
// Series-only scratch.
const sC = new MP();
const sD = new MP();
const sE = new MP();
const sF = new MP();

// ---- Series ----

/**
 * Tails of sin(r)/r and cos(r) around 1 from r2 = r^2 (|r| <= ~0.8):
 * mTS = sum_{k>=1} (-r2)^k/(2k+1)!, mTC = sum_{k>=1} (-r2)^k/(2k)!.
 */
function sinCosTails(r2: MP): void {
  setZ(mTS, 0);
  setZ(mTC, 0);
  copyMP(sE, ONE);
  for (let k = 1; k < 100; k++) {
    mul(sE, sE, r2);
    divSmall(sE, sE, (2 * k - 1) * (2 * k));
    add(mTC, mTC, sE, (k & 1) === 1);
    divSmall(sF, sE, 2 * k + 1);
    add(mTS, mTS, sF, (k & 1) === 1);
    if (sE.z || sE.e < -STOP) break;
  }
}

/** d := expm1(t) for |t| <= ~0.7: t * (1 + sum_{n>=1} t^n/(n+1)!). */
function expm1(d: MP, t: MP): void {
  setZ(sC, 0);
  copyMP(sE, ONE);
  for (let n = 1; n < 100; n++) {
    mul(sE, sE, t);
    divSmall(sE, sE, n + 1);
    add(sC, sC, sE, false);
    if (sE.z || sE.e < -STOP) break;
  }
  add(sC, ONE, sC, false);
  mul(d, t, sC);
}

/** d := ln((1 + s)/(1 - s)) = 2 atanh(s) for |s| <= ~0.2: 2 s (1 + sum_{k>=1} s^2k/(2k+1)). */
function atanh2(d: MP, s: MP): void {
  mul(sE, s, s);
  copyMP(sF, sE);
  setZ(sC, 0);
  for (let k = 1; k < 200; k++) {
    divSmall(sD, sF, 2 * k + 1);
    add(sC, sC, sD, false);
    mul(sF, sF, sE);
    if (sF.z || sF.e < -STOP) break;
  }
  add(sC, ONE, sC, false);
  mul(d, s, sC);
  d.e += 1;
}

/** d := atan(u) for |u| <= ~0.42: u (1 + sum_{k>=1} (-u^2)^k/(2k+1)). */
function atanSeries(d: MP, u: MP): void {
  mul(sE, u, u);
  copyMP(sF, sE);
  setZ(sC, 0);
  for (let k = 1; k < 400; k++) {
    divSmall(sD, sF, 2 * k + 1);
    add(sC, sC, sD, (k & 1) === 1);
    mul(sF, sF, sE);
    if (sF.z || sF.e < -STOP) break;
  }
  add(sC, ONE, sC, false);
  mul(d, u, sC);
}

/** d := log2(a) for a finite positive MP value; returns true when exact (a = 2^n). Uses mA..mD. */
function log2MP(d: MP, a: MP): boolean {
  // a = m * 2^E with m in [sqrt(1/2), sqrt(2)).
  copyMP(mA, a);
  let E = a.e;
  mA.e = 0;
  // 0.m in [0.5, 1): below sqrt(1/2) = 0.B504F333F9DE6484... take m = 2 * 0.m.
  if (mA.m[0] < 0xb504 || (mA.m[0] === 0xb504 && mA.m[1] < 0xf334)) {
    mA.e = 1;
    E -= 1;
  }
  add(mB, mA, ONE, true);
  if (mB.z) {
    fromInt(d, E);
    return true;
  }
  add(mC, mA, ONE, false);
  div(mB, mB, mC);
  atanh2(mB, mB);
  mul(mB, mB, LOG2E);
  fromInt(mC, E);
  add(d, mC, mB, false);
  return false;
}

// ---- Argument reduction (FSIN, FCOS, FSINCOS, FPTAN) ----

// Pi/2 with the x87's 66-bit pi: P * 2^-65, P = 0x3_243F6A88_85A308D3.
const PH = 0x3243f6a88;
const PL = 0x85a308d3;

/** Quadrant (k mod 4) of the last `reduce`. */
let quadrant = 0;

/**
 * Reduces |a| (finite, nonzero, < 2^63) exactly: |a| = k * Pi/2 + r with k
 * rounded to nearest (|r| <= Pi/4), Pi the 66-bit x87 pi. Sets mR = r and
 * `quadrant` = k mod 4.
 */
function reduce(a: F80): void {
  const E = (a.e === 0 ? 1 : a.e) - BIAS;
  if (E < -1) {
    fromF80(mR, a);
    mR.s = 0;
    quadrant = 0;
    return;
  }
  // N = sig * 2^(E + 2) divided by P bit by bit (quotient bits beyond the low two are not needed).
  const nb = 64 + E + 2;
  let remH = 0,
    remL = 0,
    q = 0;
  for (let i = 0; i < nb; i++) {
    const bit = i < 32 ? (a.hi >>> (31 - i)) & 1 : i < 64 ? (a.lo >>> (63 - i)) & 1 : 0;
    remH = remH * 2 + (remL >>> 31);
    remL = ((remL << 1) | bit) >>> 0;
    if (remH > PH || (remH === PH && remL >= PL)) {
      remL -= PL;
      remH -= PH;
      if (remL < 0) {
        remL += 4294967296;
        remH -= 1;
      }
      q = (q * 2 + 1) & 3;
    } else q = (q * 2) & 3;
  }
  // Round the quotient to nearest: 2 * rem > P (never equal: P is odd).
  const r2H = remH * 2 + (remL >>> 31),
    r2L = (remL << 1) >>> 0;
  let neg = 0;
  if (r2H > PH || (r2H === PH && r2L > PL)) {
    q = (q + 1) & 3;
    neg = 1;
    let l = PL - remL,
      h = PH - remH;
    if (l < 0) {
      l += 4294967296;
      h -= 1;
    }
    remH = h;
    remL = l;
  }
  quadrant = q;
  W[0] = Math.floor(remH / 4294967296);
  const hm = remH % 4294967296;
  W[1] = hm >>> 16;
  W[2] = hm & 0xffff;
  W[3] = remL >>> 16;
  W[4] = remL & 0xffff;
  pack(mR, neg, 80 - 65, W, 5, 0);
}

/** Out-of-range operand of FSIN/FCOS/FSINCOS/FPTAN (|a| >= 2^63): C2 = 1, nothing changes (x87.ts). */
export function trigOutOfRange(a: F80): boolean {
  const k = classify(a);
  return (k === K.NORMAL || k === K.DENORMAL) && a.e >= BIAS + 63;
}

/** Common special operands of the trigonometric functions; returns true when handled (outputs written). */
function trigSpecial(a: F80, k: K, o1: F80, o2: F80 | null): boolean {
  if (k === K.INVALID || k === K.INF) {
    sf.exc |= Exc.IE;
    setIndefinite(o1);
    if (o2) setIndefinite(o2);
    return true;
  }
  if (k >= K.QNAN) {
    propagateNaN(a, k, a, k, false, o1);
    if (o2) o2.copy(o1);
    return true;
  }
  return false;
}

const ONE_F80 = new F80().set(0, BIAS, 0x80000000, 0);

/** sin of the reduced argument (mR, quadrant) with the operand sign s into out. Uses mTS/mTC (call sinCosTails first). */
function sinOut(s: number, out: F80): void {
  if (quadrant & 1) add(mOut, ONE, mTC, false);
  else {
    add(mOut, ONE, mTS, false);
    mul(mOut, mOut, mR);
  }
  if (quadrant & 2) mOut.s ^= 1;
  mOut.s ^= s;
  toF80(mOut, out, true);
}

function cosOut(out: F80): void {
  const q = (quadrant + 1) & 3;
  if (q & 1) add(mOut, ONE, mTC, false);
  else {
    add(mOut, ONE, mTS, false);
    mul(mOut, mOut, mR);
  }
  if (q & 2) mOut.s ^= 1;
  toF80(mOut, out, true);
}

/** FSIN: out = sin(a). |a| >= 2^63 is the caller's (trigOutOfRange). SDM FSIN. */
export function fsin(a: F80, out: F80): void {
  const k = classify(a);
  if (trigSpecial(a, k, out, null)) return;
  if (k === K.ZERO) {
    out.copy(a);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  reduce(a);
  mul(mA, mR, mR);
  sinCosTails(mA);
  sinOut(a.s, out);
}

/** FCOS: out = cos(a). SDM FCOS. */
export function fcos(a: F80, out: F80): void {
  const k = classify(a);
  if (trigSpecial(a, k, out, null)) return;
  if (k === K.ZERO) {
    out.copy(ONE_F80);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  reduce(a);
  mul(mA, mR, mR);
  sinCosTails(mA);
  cosOut(out);
}

/** FSINCOS: sin(a) into `sin`, cos(a) into `cos`; C1 is the sine's rounding (ST1; host behaviour, the SDM only says "rounded up"). SDM FSINCOS. */
export function fsincos(a: F80, sin: F80, cos: F80): void {
  const k = classify(a);
  if (trigSpecial(a, k, sin, cos)) return;
  if (k === K.ZERO) {
    sin.copy(a);
    cos.copy(ONE_F80);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  reduce(a);
  mul(mA, mR, mR);
  sinCosTails(mA);
  cosOut(cos);
  sinOut(a.s, sin);
}

/** FPTAN: tan(a) into out and 1.0 into `one` (the value pushed). SDM FPTAN. */
export function fptan(a: F80, out: F80, one: F80): void {
  const k = classify(a);
  if (trigSpecial(a, k, out, one)) return;
  one.copy(ONE_F80);
  if (k === K.ZERO) {
    out.copy(a);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  reduce(a);
  mul(mA, mR, mR);
  sinCosTails(mA);
  if (quadrant & 1) {
    // tan(r + pi/2) = -cos(r) / sin(r)
    add(mB, ONE, mTC, false);
    add(mC, ONE, mTS, false);
    mul(mC, mC, mR);
    div(mOut, mB, mC);
    mOut.s ^= 1;
  } else {
    // tan(r) = r + r * (Ts - Tc) / (1 + Tc): the correction's sign survives when it is below the precision.
    add(mB, mTS, mTC, true);
    add(mC, ONE, mTC, false);
    div(mB, mB, mC);
    mul(mB, mB, mR);
    add(mOut, mR, mB, false);
  }
  mOut.s ^= a.s;
  toF80(mOut, out, true);
}

// ---- F2XM1 ----

/** F2XM1: out = 2^a - 1 (domain -1 <= a <= +1; beyond it the engine still returns 2^a - 1). SDM F2XM1. */
export function f2xm1(a: F80, out: F80): void {
  const k = classify(a);
  if (unaryInvalidOrNaN(a, k, out)) return;
  if (k === K.ZERO) {
    out.copy(a);
    return;
  }
  if (k === K.INF) {
    if (a.s) out.set(1, BIAS, 0x80000000, 0);
    else out.copy(a);
    return;
  }
  if (k === K.DENORMAL) sf.exc |= Exc.DE;
  const E = (a.e === 0 ? 1 : a.e) - BIAS;
  if (E === 0 && a.hi === 0x80000000 && a.lo === 0) {
    // 2^1 - 1 = 1, 2^-1 - 1 = -0.5: exact, no PE (an AMD EPYC reports both inexact and rounds +1 as if just below 1).
    if (a.s) out.set(1, BIAS - 1, 0x80000000, 0);
    else out.set(0, BIAS, 0x80000000, 0);
    return;
  }
  if (E < 0) {
    fromF80(mA, a);
    mul(mB, mA, LN2);
    expm1(mOut, mB);
  } else if (E < 15) {
    // Out of the domain: 2^a - 1 = 2^n * (expm1(f ln2) + 1) - 1 with n = trunc(a), f = a - n exact.
    const n = (a.s ? -1 : 1) * Math.floor(a.hi / 2 ** (31 - E));
    fromF80(mA, a);
    fromInt(mB, n);
    add(mA, mA, mB, true);
    mul(mB, mA, LN2);
    expm1(mD, mB);
    add(mD, mD, ONE, false);
    mD.e += n;
    add(mOut, mD, ONE, true);
  } else if (a.s) {
    // 2^a - 1 rounds to -1 (with the tiny 2^a kept as sticky).
    copyMP(mA, ONE);
    mA.e -= 40000;
    add(mOut, mA, ONE, true);
  } else {
    copyMP(mOut, ONE);
    mOut.e += 40000;
  }
  toF80(mOut, out, true);
}

// ---- FYL2X, FYL2XP1 ----

/** Unsupported encodings (IE) and NaN operands of the two-operand functions; then DE for denormals unless `noDe`. Returns true when handled. */
function nanOrInvalid(x: F80, kx: K, y: F80, ky: K, out: F80, noDe = false): boolean {
  if (kx === K.INVALID || ky === K.INVALID) {
    sf.exc |= Exc.IE;
    setIndefinite(out);
    return true;
  }
  if (kx >= K.QNAN || ky >= K.QNAN) {
    propagateNaN(x, kx, y, ky, true, out);
    return true;
  }
  if (!noDe && (kx === K.DENORMAL || ky === K.DENORMAL)) sf.exc |= Exc.DE;
  return false;
}

function invalid(out: F80): void {
  sf.exc |= Exc.IE;
  setIndefinite(out);
}

/** out = y * (log value in mD, exact when `exact`). */
function timesY(y: F80, exact: boolean, out: F80): void {
  fromF80(mA, y);
  mul(mOut, mA, mD);
  toF80(mOut, out, !exact);
}

/**
 * FYL2X: out = y * log2(x) (x = ST0, y = ST1). SDM FYL2X table: x < 0
 * (incl. -inf) invalid, x = ±0: ZE and -sign(y) infinity (y = ±0 invalid,
 * y = ±inf: -sign(y) infinity without ZE), x = 1: y * 0 (y = ±inf
 * invalid), x = +inf: sign(y) infinity (y = ±0 invalid).
 */
export function fyl2x(x: F80, y: F80, out: F80): void {
  const kx = classify(x),
    ky = classify(y);
  // A negative x is invalid before the denormal check (host behaviour: IE without DE for a negative denormal).
  if (x.s && kx !== K.ZERO && kx !== K.INVALID && kx < K.QNAN && ky !== K.INVALID && ky < K.QNAN)
    return invalid(out);
  // log2(±0): ZE only, no DE for a denormal y (host behaviour, as FDIV by zero).
  if (nanOrInvalid(x, kx, y, ky, out, kx === K.ZERO)) return;
  if (kx === K.ZERO) {
    if (ky === K.ZERO) return invalid(out);
    if (ky !== K.INF) sf.exc |= Exc.ZE;
    setInf(out, y.s ^ 1);
    return;
  }
  if (kx === K.INF) {
    if (ky === K.ZERO) return invalid(out);
    setInf(out, y.s);
    return;
  }
  const one = x.e === BIAS && x.hi === 0x80000000 && x.lo === 0;
  const below = x.e < BIAS; // log2(x) < 0
  if (one) {
    if (ky === K.INF) return invalid(out);
    setZero(out, y.s);
    return;
  }
  if (ky === K.INF) {
    setInf(out, y.s ^ (below ? 1 : 0));
    return;
  }
  if (ky === K.ZERO) {
    setZero(out, y.s ^ (below ? 1 : 0));
    return;
  }
  fromF80(mR, x);
  const exact = log2MP(mD, mR);
  timesY(y, exact, out);
}

/**
 * FYL2XP1: out = y * log2(x + 1) (x = ST0, y = ST1). SDM FYL2XP1 table
 * (domain |x| < 1 - sqrt(2)/2): x = ±0: zero of sign(x) xor sign(y)
 * (y = ±inf invalid); y = ±inf: infinity of sign(x) xor sign(y).
 */
export function fyl2xp1(x: F80, y: F80, out: F80): void {
  const kx = classify(x),
    ky = classify(y);
  if (nanOrInvalid(x, kx, y, ky, out)) return;
  if (kx === K.ZERO) {
    if (ky === K.INF) return invalid(out);
    setZero(out, x.s ^ y.s);
    return;
  }
  // Out of the domain (engine behaviour): x < -1 invalid, x = -1 as FYL2X(+0, y).
  const E = (x.e === 0 ? 1 : x.e) - BIAS;
  if (x.s && (kx === K.INF || E >= 0)) {
    if (kx === K.INF || E > 0 || x.hi !== 0x80000000 || x.lo !== 0) return invalid(out);
    if (ky === K.ZERO) return invalid(out);
    if (ky !== K.INF) sf.exc |= Exc.ZE;
    setInf(out, y.s ^ 1);
    return;
  }
  if (kx === K.INF) {
    if (ky === K.ZERO) return invalid(out);
    setInf(out, y.s);
    return;
  }
  if (ky === K.INF) {
    setInf(out, x.s ^ y.s);
    return;
  }
  if (ky === K.ZERO) {
    setZero(out, x.s ^ y.s);
    return;
  }
  fromF80(mR, x);
  if (E < -2) {
    // ln(1 + x) = 2 atanh(x / (2 + x)).
    add(mB, TWO, mR, false);
    div(mB, mR, mB);
    atanh2(mD, mB);
    mul(mD, mD, LOG2E);
    timesY(y, false, out);
    return;
  }
  add(mR, mR, ONE, false); // exact: |x| >= 1/4
  const exact = log2MP(mD, mR);
  timesY(y, exact, out);
}

// ---- FPATAN ----

/** Rounds c * sign into out (c one of the pi constants). */
function piOut(c: MP, s: number, out: F80): void {
  copyMP(mOut, c);
  mOut.s = s;
  toF80(mOut, out, true);
}

/**
 * FPATAN: out = atan2(y, x), the angle of (x, y) in (-pi, pi] (x = ST0,
 * y = ST1) with the SDM's FPATAN table for zeros and infinities (no
 * exception for 0/0 or inf/inf: ±0, ±pi, ±pi/2, ±pi/4, ±3pi/4 with the
 * sign of y). SDM FPATAN.
 */
export function fpatan(y: F80, x: F80, out: F80): void {
  const kx = classify(x),
    ky = classify(y);
  if (nanOrInvalid(x, kx, y, ky, out)) return;
  const s = y.s;
  if (ky === K.ZERO) {
    if (x.s) piOut(PI, s, out);
    else setZero(out, s);
    return;
  }
  if (ky === K.INF) {
    if (kx === K.INF) {
      if (x.s) {
        add(mB, PI_2, PI_4, false);
        piOut(mB, s, out);
      } else piOut(PI_4, s, out);
    } else piOut(PI_2, s, out);
    return;
  }
  if (kx === K.ZERO) return piOut(PI_2, s, out);
  if (kx === K.INF) {
    if (x.s) piOut(PI, s, out);
    else setZero(out, s);
    return;
  }
  fromF80(mA, y);
  fromF80(mB, x);
  mA.s = 0;
  mB.s = 0;
  const swap = cmpMag(mA, mB) > 0;
  if (swap) div(mC, mB, mA);
  else div(mC, mA, mB);
  // atan(q), q in (0, 1]: above tan(pi/8) = 0.41421356... use pi/4 + atan((q - 1)/(q + 1)).
  const q = mC;
  if (q.e === 1 || q.e === 0 || (q.e === -1 && q.m[0] >= 0xd414)) {
    add(mD, q, ONE, true);
    add(mE, q, ONE, false);
    div(mD, mD, mE);
    atanSeries(mR, mD);
    add(mR, PI_4, mR, false);
  } else atanSeries(mR, q);
  if (swap) add(mR, PI_2, mR, true);
  if (x.s) add(mR, PI, mR, true);
  mR.s = s;
  toF80(mR, out, true);
}

/** The multi-precision primitives, for unit tests (test/unit/cpu-x87-trans.test.ts checks them against BigInt). */
export const mpForTest = { MP, mul, div, add, divSmall };
