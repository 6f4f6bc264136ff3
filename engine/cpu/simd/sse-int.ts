/**
 * Packed integer instructions on XMM registers: SSE2 integer (66 0F 60-7F,
 * C4/C5, D1-FE), SSSE3 (66 0F 38 00-1E, 66 0F 3A 0F) and SSE4.1 integer
 * (66 0F 38 10-41, 66 0F 3A 0E-22, 42), following the Intel SDM vol. 2
 * pages of each instruction (operation sections) and vol. 1 ch. 11-12.
 *
 * The element kernels (`Kernel`) work on three preallocated 16-byte scratch
 * operands, A (destination/first source), B (second source) and R (result),
 * over `n` bytes (16 for XMM, 8 for the MMX forms, which `mmx.ts` registers
 * with the same kernels). No allocation, no BigInt: 64-bit lanes are two
 * 32-bit halves.
 */
import type { Cpu } from '../cpu';
import { Insn } from '../decoder';
import { getR, operandAddress, readRm, setR, undefinedOpcode, writeRm } from '../ops/operands';
import { readRm128, readRmLow, writeMemLow, writeRm128 } from './operands';
import { defineSimd, Pfx, SimdKind, type SimdHandler } from './table';

const AB = new ArrayBuffer(16);
const BB = new ArrayBuffer(16);
const RB = new ArrayBuffer(16);
/** Scratch operand A (destination / first source) in every element view. */
export const A8 = new Uint8Array(AB);
export const A8s = new Int8Array(AB);
export const A16 = new Uint16Array(AB);
export const A16s = new Int16Array(AB);
export const A32 = new Int32Array(AB);
/** Scratch operand B (second source). */
export const B8 = new Uint8Array(BB);
export const B8s = new Int8Array(BB);
export const B16 = new Uint16Array(BB);
export const B16s = new Int16Array(BB);
export const B32 = new Int32Array(BB);
/** Scratch result R. */
export const R8 = new Uint8Array(RB);
export const R8s = new Int8Array(RB);
export const R16 = new Uint16Array(RB);
export const R16s = new Int16Array(RB);
export const R32 = new Int32Array(RB);

/**
 * An element kernel: computes R from A and B over `n` bytes (8 or 16);
 * `imm` is the instruction's imm8 (0-255) where it has one.
 */
export type Kernel = (n: number, imm: number) => void;

/** High half of the last `mulU32` / `mulS32` product. */
let mulHi = 0;

/** Unsigned 32x32 -> 64 product of a and b (any int32 bit patterns); low half returned, high in `mulHi`. */
function mulU32(a: number, b: number): number {
  const al = a & 0xffff,
    ah = a >>> 16,
    bl = b & 0xffff,
    bh = b >>> 16;
  const ll = al * bl,
    lh = al * bh,
    hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  mulHi = (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
  return ((mid & 0xffff) << 16) | (ll & 0xffff);
}

/** Signed 32x32 -> 64 product (SDM PMULDQ); low half returned, high in `mulHi`. */
function mulS32(a: number, b: number): number {
  const lo = mulU32(a, b);
  let hi = mulHi;
  if (a < 0) hi = (hi - b) | 0;
  if (b < 0) hi = (hi - a) | 0;
  mulHi = hi;
  return lo;
}

function sat8(v: number): number {
  return v > 127 ? 127 : v < -128 ? -128 : v;
}
function satU8(v: number): number {
  return v > 255 ? 255 : v < 0 ? 0 : v;
}
function sat16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}
function satU16(v: number): number {
  return v > 65535 ? 65535 : v < 0 ? 0 : v;
}

// ---------------- kernels: arithmetic ----------------

export const paddb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8[i] + B8[i];
};
export const paddw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16[i] + B16[i];
};
export const paddd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = (A32[i] + B32[i]) | 0;
};
export const paddq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    const lo = (A32[i] >>> 0) + (B32[i] >>> 0);
    R32[i] = lo | 0;
    R32[i + 1] = (A32[i + 1] + B32[i + 1] + (lo > 0xffffffff ? 1 : 0)) | 0;
  }
};
export const psubb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8[i] - B8[i];
};
export const psubw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16[i] - B16[i];
};
export const psubd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = (A32[i] - B32[i]) | 0;
};
export const psubq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    const al = A32[i] >>> 0,
      bl = B32[i] >>> 0;
    R32[i] = (al - bl) | 0;
    R32[i + 1] = (A32[i + 1] - B32[i + 1] - (al < bl ? 1 : 0)) | 0;
  }
};
export const paddsb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8s[i] = sat8(A8s[i] + B8s[i]);
};
export const paddsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = sat16(A16s[i] + B16s[i]);
};
export const paddusb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = satU8(A8[i] + B8[i]);
};
export const paddusw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = satU16(A16[i] + B16[i]);
};
export const psubsb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8s[i] = sat8(A8s[i] - B8s[i]);
};
export const psubsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = sat16(A16s[i] - B16s[i]);
};
export const psubusb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = satU8(A8[i] - B8[i]);
};
export const psubusw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = satU16(A16[i] - B16[i]);
};
export const pmullw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = Math.imul(A16s[i], B16s[i]);
};
export const pmulhw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = (A16s[i] * B16s[i]) >> 16;
};
export const pmulhuw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = (A16[i] * B16[i]) >>> 16;
};
export const pmuludq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    R32[i] = mulU32(A32[i], B32[i]);
    R32[i + 1] = mulHi;
  }
};
export const pmaddwd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++)
    R32[i] = (A16s[2 * i] * B16s[2 * i] + A16s[2 * i + 1] * B16s[2 * i + 1]) | 0;
};
export const pavgb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = (A8[i] + B8[i] + 1) >> 1;
};
export const pavgw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = (A16[i] + B16[i] + 1) >> 1;
};
export const psadbw: Kernel = (n) => {
  for (let q = 0; q < n; q += 8) {
    let s = 0;
    for (let i = q; i < q + 8; i++) s += A8[i] > B8[i] ? A8[i] - B8[i] : B8[i] - A8[i];
    R32[q >> 2] = s;
    R32[(q >> 2) + 1] = 0;
  }
};
export const pminub: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8[i] < B8[i] ? A8[i] : B8[i];
};
export const pmaxub: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8[i] > B8[i] ? A8[i] : B8[i];
};
export const pminsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = A16s[i] < B16s[i] ? A16s[i] : B16s[i];
};
export const pmaxsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = A16s[i] > B16s[i] ? A16s[i] : B16s[i];
};

// ---------------- kernels: compare, logic, pack, unpack ----------------

export const pcmpeqb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8[i] === B8[i] ? 0xff : 0;
};
export const pcmpeqw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16[i] === B16[i] ? 0xffff : 0;
};
export const pcmpeqd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] === B32[i] ? -1 : 0;
};
export const pcmpgtb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = A8s[i] > B8s[i] ? 0xff : 0;
};
export const pcmpgtw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16s[i] > B16s[i] ? 0xffff : 0;
};
export const pcmpgtd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] > B32[i] ? -1 : 0;
};
export const pand: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] & B32[i];
};
export const pandn: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = ~A32[i] & B32[i];
};
export const por: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] | B32[i];
};
export const pxor: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] ^ B32[i];
};
export const packsswb: Kernel = (n) => {
  const h = n >> 1;
  for (let i = 0; i < h; i++) {
    R8s[i] = sat8(A16s[i]);
    R8s[i + h] = sat8(B16s[i]);
  }
};
export const packuswb: Kernel = (n) => {
  const h = n >> 1;
  for (let i = 0; i < h; i++) {
    R8[i] = satU8(A16s[i]);
    R8[i + h] = satU8(B16s[i]);
  }
};
export const packssdw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16s[i] = sat16(A32[i]);
    R16s[i + h] = sat16(B32[i]);
  }
};
const packusdw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16[i] = satU16(A32[i]);
    R16[i + h] = satU16(B32[i]);
  }
};

/** PUNPCKL/H with elements of `e` bytes: interleaves the low (high = false) or high halves of A and B. */
function unpack(e: number, high: boolean): Kernel {
  return (n) => {
    const base = high ? n >> 1 : 0;
    const cnt = n >> 1;
    for (let i = 0; i < cnt; i += e) {
      const o = 2 * i;
      for (let k = 0; k < e; k++) {
        R8[o + k] = A8[base + i + k];
        R8[o + e + k] = B8[base + i + k];
      }
    }
  };
}
export const punpcklbw = unpack(1, false);
export const punpcklwd = unpack(2, false);
export const punpckldq = unpack(4, false);
const punpcklqdq = unpack(8, false);
export const punpckhbw = unpack(1, true);
export const punpckhwd = unpack(2, true);
export const punpckhdq = unpack(4, true);
const punpckhqdq = unpack(8, true);

// ---------------- kernels: shifts (count = low 64 bits of B, capped at 64) ----------------

function shiftCount(): number {
  const lo = B32[0] >>> 0;
  return B32[1] !== 0 || lo > 64 ? 64 : lo;
}
export const psrlw: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 1; i++) R16[i] = c > 15 ? 0 : A16[i] >>> c;
};
export const psraw: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 1; i++) R16s[i] = A16s[i] >> (c > 15 ? 15 : c);
};
export const psllw: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 1; i++) R16[i] = c > 15 ? 0 : A16[i] << c;
};
export const psrld: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 2; i++) R32[i] = c > 31 ? 0 : A32[i] >>> c;
};
export const psrad: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] >> (c > 31 ? 31 : c);
};
export const pslld: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 2; i++) R32[i] = c > 31 ? 0 : A32[i] << c;
};
export const psrlq: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 2; i += 2) {
    const lo = A32[i],
      hi = A32[i + 1];
    if (c > 63) R32[i] = R32[i + 1] = 0;
    else if (c === 0) {
      R32[i] = lo;
      R32[i + 1] = hi;
    } else if (c < 32) {
      R32[i] = (lo >>> c) | (hi << (32 - c));
      R32[i + 1] = hi >>> c;
    } else {
      R32[i] = hi >>> (c - 32);
      R32[i + 1] = 0;
    }
  }
};
export const psllq: Kernel = (n) => {
  const c = shiftCount();
  for (let i = 0; i < n >> 2; i += 2) {
    const lo = A32[i],
      hi = A32[i + 1];
    if (c > 63) R32[i] = R32[i + 1] = 0;
    else if (c === 0) {
      R32[i] = lo;
      R32[i + 1] = hi;
    } else if (c < 32) {
      R32[i + 1] = (hi << c) | (lo >>> (32 - c));
      R32[i] = lo << c;
    } else {
      R32[i + 1] = lo << (c - 32);
      R32[i] = 0;
    }
  }
};

// ---------------- kernels: SSSE3 ----------------

export const pshufb: Kernel = (n) => {
  for (let i = 0; i < n; i++) {
    const s = B8[i];
    R8[i] = s & 0x80 ? 0 : A8[s & (n - 1)];
  }
};
export const phaddw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16[i] = A16[2 * i] + A16[2 * i + 1];
    R16[h + i] = B16[2 * i] + B16[2 * i + 1];
  }
};
export const phaddd: Kernel = (n) => {
  const h = n >> 3;
  for (let i = 0; i < h; i++) {
    R32[i] = (A32[2 * i] + A32[2 * i + 1]) | 0;
    R32[h + i] = (B32[2 * i] + B32[2 * i + 1]) | 0;
  }
};
export const phaddsw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16s[i] = sat16(A16s[2 * i] + A16s[2 * i + 1]);
    R16s[h + i] = sat16(B16s[2 * i] + B16s[2 * i + 1]);
  }
};
export const phsubw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16[i] = A16[2 * i] - A16[2 * i + 1];
    R16[h + i] = B16[2 * i] - B16[2 * i + 1];
  }
};
export const phsubd: Kernel = (n) => {
  const h = n >> 3;
  for (let i = 0; i < h; i++) {
    R32[i] = (A32[2 * i] - A32[2 * i + 1]) | 0;
    R32[h + i] = (B32[2 * i] - B32[2 * i + 1]) | 0;
  }
};
export const phsubsw: Kernel = (n) => {
  const h = n >> 2;
  for (let i = 0; i < h; i++) {
    R16s[i] = sat16(A16s[2 * i] - A16s[2 * i + 1]);
    R16s[h + i] = sat16(B16s[2 * i] - B16s[2 * i + 1]);
  }
};
/** PMADDUBSW: unsigned bytes of A times signed bytes of B, adjacent pairs summed with signed saturation. */
export const pmaddubsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = sat16(A8[2 * i] * B8s[2 * i] + A8[2 * i + 1] * B8s[2 * i + 1]);
};
export const pmulhrsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = (((A16s[i] * B16s[i]) >> 14) + 1) >> 1;
};
export const psignb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8s[i] = B8s[i] < 0 ? -A8s[i] : B8s[i] === 0 ? 0 : A8s[i];
};
export const psignw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16s[i] = B16s[i] < 0 ? -A16s[i] : B16s[i] === 0 ? 0 : A16s[i];
};
export const psignd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = B32[i] < 0 ? -A32[i] | 0 : B32[i] === 0 ? 0 : A32[i];
};
export const pabsb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8[i] = B8s[i] < 0 ? -B8s[i] : B8s[i];
};
export const pabsw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = B16s[i] < 0 ? -B16s[i] : B16s[i];
};
export const pabsd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = B32[i] < 0 ? -B32[i] | 0 : B32[i];
};
/** PALIGNR: bytes imm.. of the 2n-byte concatenation A:B (B low), zero past the end. */
export const palignr: Kernel = (n, imm) => {
  for (let i = 0; i < n; i++) {
    const k = i + imm;
    R8[i] = k < n ? B8[k] : k < 2 * n ? A8[k - n] : 0;
  }
};

// ---------------- kernels: SSE4.1 / SSE4.2 (XMM only) ----------------

const pminsb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8s[i] = A8s[i] < B8s[i] ? A8s[i] : B8s[i];
};
const pmaxsb: Kernel = (n) => {
  for (let i = 0; i < n; i++) R8s[i] = A8s[i] > B8s[i] ? A8s[i] : B8s[i];
};
const pminuw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16[i] < B16[i] ? A16[i] : B16[i];
};
const pmaxuw: Kernel = (n) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = A16[i] > B16[i] ? A16[i] : B16[i];
};
const pminsd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] < B32[i] ? A32[i] : B32[i];
};
const pmaxsd: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] > B32[i] ? A32[i] : B32[i];
};
const pminud: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] >>> 0 < B32[i] >>> 0 ? A32[i] : B32[i];
};
const pmaxud: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = A32[i] >>> 0 > B32[i] >>> 0 ? A32[i] : B32[i];
};
const pmulld: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i++) R32[i] = Math.imul(A32[i], B32[i]);
};
const pmuldq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    R32[i] = mulS32(A32[i], B32[i]);
    R32[i + 1] = mulHi;
  }
};
const pcmpeqq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    const m = A32[i] === B32[i] && A32[i + 1] === B32[i + 1] ? -1 : 0;
    R32[i] = R32[i + 1] = m;
  }
};
/** PCMPGTQ (SSE4.2): signed 64-bit greater-than. */
export const pcmpgtq: Kernel = (n) => {
  for (let i = 0; i < n >> 2; i += 2) {
    const ah = A32[i + 1],
      bh = B32[i + 1];
    const gt = ah > bh || (ah === bh && A32[i] >>> 0 > B32[i] >>> 0);
    R32[i] = R32[i + 1] = gt ? -1 : 0;
  }
};
const pblendw: Kernel = (n, imm) => {
  for (let i = 0; i < n >> 1; i++) R16[i] = (imm >> i) & 1 ? B16[i] : A16[i];
};
/** MPSADBW: eight sums of absolute differences of 4-byte blocks (SDM MPSADBW operation). */
const mpsadbw: Kernel = (_n, imm) => {
  const ao = imm & 4,
    bo = (imm & 3) << 2;
  for (let k = 0; k < 8; k++) {
    let s = 0;
    for (let j = 0; j < 4; j++) {
      const x = A8[ao + k + j],
        y = B8[bo + j];
      s += x > y ? x - y : y - x;
    }
    R16[k] = s;
  }
};
const phminposuw: Kernel = () => {
  let m = B16[0],
    at = 0;
  for (let i = 1; i < 8; i++)
    if (B16[i] < m) {
      m = B16[i];
      at = i;
    }
  R32[0] = m | (at << 16);
  R32[1] = R32[2] = R32[3] = 0;
};

// ---------------- XMM operand plumbing ----------------

/**
 * Handler for `xmm1, xmm2/m128` with kernel `k`: A = XMMreg, B = r/m
 * (16-byte aligned memory unless `aligned` is false: #GP(0)), result to
 * XMMreg.
 */
export function xmmBinary(k: Kernel, aligned = true): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, aligned, B32, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    A32[0] = x[r];
    A32[1] = x[r + 1];
    A32[2] = x[r + 2];
    A32[3] = x[r + 3];
    k(16, d.imm & 0xff);
    x[r] = R32[0];
    x[r + 1] = R32[1];
    x[r + 2] = R32[2];
    x[r + 3] = R32[3];
    return 1;
  };
}

/**
 * Kernels that exist as 0F xx (MMX register forms, `mmx.ts`) and 66 0F xx
 * (XMM forms, here): [opcode, kernel]. 0F 60-62 (PUNPCKL*) read only 32 bits
 * of memory in their MMX forms (SDM PUNPCKLBW "mm, mm/m32").
 */
export const SHARED_BINARY: ReadonlyArray<readonly [number, Kernel]> = [
  [0x160, punpcklbw],
  [0x161, punpcklwd],
  [0x162, punpckldq],
  [0x163, packsswb],
  [0x164, pcmpgtb],
  [0x165, pcmpgtw],
  [0x166, pcmpgtd],
  [0x167, packuswb],
  [0x168, punpckhbw],
  [0x169, punpckhwd],
  [0x16a, punpckhdq],
  [0x16b, packssdw],
  [0x174, pcmpeqb],
  [0x175, pcmpeqw],
  [0x176, pcmpeqd],
  [0x1d1, psrlw],
  [0x1d2, psrld],
  [0x1d3, psrlq],
  [0x1d4, paddq],
  [0x1d5, pmullw],
  [0x1d8, psubusb],
  [0x1d9, psubusw],
  [0x1da, pminub],
  [0x1db, pand],
  [0x1dc, paddusb],
  [0x1dd, paddusw],
  [0x1de, pmaxub],
  [0x1df, pandn],
  [0x1e0, pavgb],
  [0x1e1, psraw],
  [0x1e2, psrad],
  [0x1e3, pavgw],
  [0x1e4, pmulhuw],
  [0x1e5, pmulhw],
  [0x1e8, psubsb],
  [0x1e9, psubsw],
  [0x1ea, pminsw],
  [0x1eb, por],
  [0x1ec, paddsb],
  [0x1ed, paddsw],
  [0x1ee, pmaxsw],
  [0x1ef, pxor],
  [0x1f1, psllw],
  [0x1f2, pslld],
  [0x1f3, psllq],
  [0x1f4, pmuludq],
  [0x1f5, pmaddwd],
  [0x1f6, psadbw],
  [0x1f8, psubb],
  [0x1f9, psubw],
  [0x1fa, psubd],
  [0x1fb, psubq],
  [0x1fc, paddb],
  [0x1fd, paddw],
  [0x1fe, paddd],
  // SSSE3 (0F 38 xx): MMX forms without prefix, XMM forms with 66.
  [0x200, pshufb],
  [0x201, phaddw],
  [0x202, phaddd],
  [0x203, phaddsw],
  [0x204, pmaddubsw],
  [0x205, phsubw],
  [0x206, phsubd],
  [0x207, phsubsw],
  [0x208, psignb],
  [0x209, psignw],
  [0x20a, psignd],
  [0x20b, pmulhrsw],
  [0x21c, pabsb],
  [0x21d, pabsw],
  [0x21e, pabsd],
  [0x30f, palignr],
];

/** Kernels that exist only as 66-prefixed XMM forms (m128 aligned). */
const XMM_ONLY: ReadonlyArray<readonly [number, Kernel]> = [
  [0x16c, punpcklqdq],
  [0x16d, punpckhqdq],
  [0x22b, packusdw],
  [0x228, pmuldq],
  [0x229, pcmpeqq],
  [0x238, pminsb],
  [0x239, pminsd],
  [0x23a, pminuw],
  [0x23b, pminud],
  [0x23c, pmaxsb],
  [0x23d, pmaxsd],
  [0x23e, pmaxuw],
  [0x23f, pmaxud],
  [0x240, pmulld],
  [0x241, phminposuw],
  [0x30e, pblendw],
  [0x342, mpsadbw],
];

function xmmGet(cpu: Cpu, reg: number, out: Int32Array): void {
  const x = cpu.state.xmm;
  const r = reg << 2;
  out[0] = x[r];
  out[1] = x[r + 1];
  out[2] = x[r + 2];
  out[3] = x[r + 3];
}
function xmmPut(cpu: Cpu, reg: number, src: Int32Array): void {
  const x = cpu.state.xmm;
  const r = reg << 2;
  x[r] = src[0];
  x[r + 1] = src[1];
  x[r + 2] = src[2];
  x[r + 3] = src[3];
}
function xmmSet(cpu: Cpu, reg: number, l0: number, l1: number, l2: number, l3: number): void {
  const x = cpu.state.xmm;
  const r = reg << 2;
  x[r] = l0;
  x[r + 1] = l1;
  x[r + 2] = l2;
  x[r + 3] = l3;
}

/** Shift-by-immediate groups 66 0F 71/72/73 (register forms only; /reg selects the operation). */
function shiftImm(group: number): SimdHandler {
  return (cpu, d) => {
    if (d.mod !== 3) return undefinedOpcode(cpu, d);
    const g = d.reg & 7;
    const imm = d.imm & 0xff;
    let k: Kernel | undefined;
    if (group === 0x71) k = g === 2 ? psrlw : g === 4 ? psraw : g === 6 ? psllw : undefined;
    else if (group === 0x72) k = g === 2 ? psrld : g === 4 ? psrad : g === 6 ? pslld : undefined;
    else if (g === 2) k = psrlq;
    else if (g === 6) k = psllq;
    else if (g === 3 || g === 7) {
      // PSRLDQ / PSLLDQ: byte shifts of the whole register.
      xmmGet(cpu, d.rm, A32);
      const c = imm > 16 ? 16 : imm;
      for (let i = 0; i < 16; i++) {
        const s = g === 3 ? i + c : i - c;
        R8[i] = s >= 0 && s < 16 ? A8[s] : 0;
      }
      xmmPut(cpu, d.rm, R32);
      return 1;
    }
    if (!k) return undefinedOpcode(cpu, d);
    xmmGet(cpu, d.rm, A32);
    B32[0] = imm;
    B32[1] = 0;
    k(16, 0);
    xmmPut(cpu, d.rm, R32);
    return 1;
  };
}

/** Operand size of MOVD/MOVQ-style GPR operands: 8 with REX.W, else 4. */
function gprSize(d: Insn): 4 | 8 {
  return d.rex & 8 ? 8 : 4;
}

/** #UD for the register form of a memory-only instruction. */
function memOnly(cpu: Cpu, d: Insn): void {
  if (d.mod === 3) undefinedOpcode(cpu, d);
}

/**
 * PMOVSX/PMOVZX (66 0F 38 20-25, 30-35): source XMMrm low bytes or `bytes`
 * of memory (no alignment), elements of `from` bytes widened to `to` bytes.
 */
function pmovx(from: 1 | 2 | 4, to: 2 | 4 | 8, signed: boolean): SimdHandler {
  const bytes = (16 / to) * from;
  return (cpu, d) => {
    if (d.mod === 3) xmmGet(cpu, d.rm, B32);
    else {
      const lo = operandAddress(cpu, d, bytes, false);
      const hi = cpu.tmpHi;
      if (bytes === 2) B32[0] = cpu.rdS(lo, hi, 2);
      else if (bytes === 4) B32[0] = cpu.rdS(lo, hi, 4);
      else {
        B32[0] = cpu.rdS(lo, hi, 8);
        B32[1] = cpu.tmpHi;
      }
    }
    const cnt = 16 / to;
    for (let i = 0; i < cnt; i++) {
      let v: number;
      if (from === 1) v = signed ? B8s[i] : B8[i];
      else if (from === 2) v = signed ? B16s[i] : B16[i];
      else v = B32[i];
      if (to === 2) R16[i] = v;
      else if (to === 4) R32[i] = v;
      else {
        R32[2 * i] = v;
        R32[2 * i + 1] = signed ? v >> 31 : 0;
      }
    }
    xmmPut(cpu, d.reg, R32);
    return 1;
  };
}

/** Registers the SSE2/SSSE3/SSE4.1 integer XMM forms (66-prefixed) and MOVNTI. */
export function registerSseInt(): void {
  const S = SimdKind.SSE;
  for (const [op, k] of SHARED_BINARY) defineSimd(op, Pfx.P66, S, xmmBinary(k));
  for (const [op, k] of XMM_ONLY) defineSimd(op, Pfx.P66, S, xmmBinary(k));

  // MOVD/MOVQ xmm, r/m32/64 (66 [REX.W] 0F 6E): zero-extends to 128 bits.
  defineSimd(0x16e, Pfx.P66, S, (cpu, d) => {
    const s = gprSize(d);
    const v = readRm(cpu, d, s);
    xmmSet(cpu, d.reg, v, s === 8 ? cpu.tmpHi : 0, 0, 0);
    return 1;
  });
  // MOVD/MOVQ r/m32/64, xmm (66 [REX.W] 0F 7E).
  defineSimd(0x17e, Pfx.P66, S, (cpu, d) => {
    const s = gprSize(d);
    const x = cpu.state.xmm;
    writeRm(cpu, d, s, x[d.reg << 2], s === 8 ? x[(d.reg << 2) + 1] : 0);
    return 1;
  });
  // MOVQ xmm, xmm/m64 (F3 0F 7E): high qword cleared.
  defineSimd(0x17e, Pfx.F3, S, (cpu, d) => {
    readRmLow(cpu, d, 8, B32, 0);
    xmmSet(cpu, d.reg, B32[0], B32[1], 0, 0);
    return 1;
  });
  // MOVQ xmm/m64, xmm (66 0F D6): a register destination gets its high qword cleared.
  defineSimd(0x1d6, Pfx.P66, S, (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.mod === 3) xmmSet(cpu, d.rm, x[r], x[r + 1], 0, 0);
    else writeMemLow(cpu, d, 8, x, r);
    return 1;
  });
  // MOVDQA / MOVDQU loads and stores.
  const load = (aligned: boolean): SimdHandler => {
    return (cpu, d) => {
      readRm128(cpu, d, aligned, B32, 0);
      xmmPut(cpu, d.reg, B32);
      return 1;
    };
  };
  const store = (aligned: boolean): SimdHandler => {
    return (cpu, d) => {
      writeRm128(cpu, d, aligned, cpu.state.xmm, d.reg << 2);
      return 1;
    };
  };
  defineSimd(0x16f, Pfx.P66, S, load(true));
  defineSimd(0x16f, Pfx.F3, S, load(false));
  defineSimd(0x17f, Pfx.P66, S, store(true));
  defineSimd(0x17f, Pfx.F3, S, store(false));
  // MOVNTDQ m128, xmm (66 0F E7) and MOVNTDQA xmm, m128 (66 0F 38 2A): memory only, aligned.
  const storeA = store(true),
    loadA = load(true);
  defineSimd(0x1e7, Pfx.P66, S, (cpu, d) => (d.mod === 3 ? undefinedOpcode(cpu, d) : storeA(cpu, d)));
  defineSimd(0x22a, Pfx.P66, S, (cpu, d) => (d.mod === 3 ? undefinedOpcode(cpu, d) : loadA(cpu, d)));
  // MOVNTI m32/m64, r32/r64 (0F C3): integer instruction, no CR0/CR4 checks (SDM MOVNTI exceptions).
  defineSimd(0x1c3, Pfx.NONE, SimdKind.INT, (cpu, d) => {
    memOnly(cpu, d);
    const s = gprSize(d);
    const v = getR(cpu, d, s, d.reg);
    writeRm(cpu, d, s, v, s === 8 ? cpu.tmpHi : 0);
    return 1;
  });

  // PSHUFD / PSHUFHW / PSHUFLW (66/F3/F2 0F 70 ib).
  defineSimd(0x170, Pfx.P66, S, (cpu, d) => {
    readRm128(cpu, d, true, B32, 0);
    const imm = d.imm & 0xff;
    for (let i = 0; i < 4; i++) R32[i] = B32[(imm >> (2 * i)) & 3];
    xmmPut(cpu, d.reg, R32);
    return 1;
  });
  defineSimd(0x170, Pfx.F3, S, (cpu, d) => {
    readRm128(cpu, d, true, B32, 0);
    const imm = d.imm & 0xff;
    R32[0] = B32[0];
    R32[1] = B32[1];
    for (let i = 0; i < 4; i++) R16[4 + i] = B16[4 + ((imm >> (2 * i)) & 3)];
    xmmPut(cpu, d.reg, R32);
    return 1;
  });
  defineSimd(0x170, Pfx.F2, S, (cpu, d) => {
    readRm128(cpu, d, true, B32, 0);
    const imm = d.imm & 0xff;
    for (let i = 0; i < 4; i++) R16[i] = B16[(imm >> (2 * i)) & 3];
    R32[2] = B32[2];
    R32[3] = B32[3];
    xmmPut(cpu, d.reg, R32);
    return 1;
  });
  defineSimd(0x171, Pfx.P66, S, shiftImm(0x71));
  defineSimd(0x172, Pfx.P66, S, shiftImm(0x72));
  defineSimd(0x173, Pfx.P66, S, shiftImm(0x73));

  // PINSRW xmm, r32/m16, imm8 (66 0F C4); PEXTRW r32, xmm, imm8 (66 0F C5, register form).
  defineSimd(0x1c4, Pfx.P66, S, (cpu, d) => {
    const v = d.mod === 3 ? getR(cpu, d, 4, d.rm) : readRm(cpu, d, 2);
    const x = cpu.state.xmmU8;
    const o = (d.reg << 4) + ((d.imm & 7) << 1);
    x[o] = v;
    x[o + 1] = v >> 8;
    return 1;
  });
  defineSimd(0x1c5, Pfx.P66, S, (cpu, d) => {
    if (d.mod !== 3) return undefinedOpcode(cpu, d);
    const x = cpu.state.xmmU8;
    const o = (d.rm << 4) + ((d.imm & 7) << 1);
    setR(cpu, d, 4, d.reg, x[o] | (x[o + 1] << 8), 0);
    return 1;
  });
  // PMOVMSKB r32, xmm (66 0F D7).
  defineSimd(0x1d7, Pfx.P66, S, (cpu, d) => {
    if (d.mod !== 3) return undefinedOpcode(cpu, d);
    const x = cpu.state.xmmU8;
    const o = d.rm << 4;
    let m = 0;
    for (let i = 0; i < 16; i++) m |= (x[o + i] >> 7) << i;
    setR(cpu, d, 4, d.reg, m, 0);
    return 1;
  });
  // MASKMOVDQU xmm1, xmm2 (66 0F F7): bytes of xmm1 whose xmm2 mask bit is set, to DS:rDI.
  defineSimd(0x1f7, Pfx.P66, S, (cpu, d) => {
    if (d.mod !== 3) return undefinedOpcode(cpu, d);
    xmmGet(cpu, d.reg, A32);
    xmmGet(cpu, d.rm, B32);
    maskedStore(cpu, d, 16);
    return 1;
  });

  // SSE4.1: PBLENDVB (implicit XMM0), PTEST, PMOVSX/ZX.
  defineSimd(0x210, Pfx.P66, S, (cpu, d) => {
    readRm128(cpu, d, true, B32, 0);
    xmmGet(cpu, d.reg, A32);
    const m = cpu.state.xmmU8;
    for (let i = 0; i < 16; i++) R8[i] = m[i] & 0x80 ? B8[i] : A8[i];
    xmmPut(cpu, d.reg, R32);
    return 1;
  });
  defineSimd(0x217, Pfx.P66, S, (cpu, d) => {
    readRm128(cpu, d, true, B32, 0);
    xmmGet(cpu, d.reg, A32);
    let and = 0,
      andn = 0;
    for (let i = 0; i < 4; i++) {
      and |= A32[i] & B32[i];
      andn |= ~A32[i] & B32[i];
    }
    cpu.setArith((and === 0 ? 0x40 : 0) | (andn === 0 ? 1 : 0));
    return 1;
  });
  defineSimd(0x220, Pfx.P66, S, pmovx(1, 2, true));
  defineSimd(0x221, Pfx.P66, S, pmovx(1, 4, true));
  defineSimd(0x222, Pfx.P66, S, pmovx(1, 8, true));
  defineSimd(0x223, Pfx.P66, S, pmovx(2, 4, true));
  defineSimd(0x224, Pfx.P66, S, pmovx(2, 8, true));
  defineSimd(0x225, Pfx.P66, S, pmovx(4, 8, true));
  defineSimd(0x230, Pfx.P66, S, pmovx(1, 2, false));
  defineSimd(0x231, Pfx.P66, S, pmovx(1, 4, false));
  defineSimd(0x232, Pfx.P66, S, pmovx(1, 8, false));
  defineSimd(0x233, Pfx.P66, S, pmovx(2, 4, false));
  defineSimd(0x234, Pfx.P66, S, pmovx(2, 8, false));
  defineSimd(0x235, Pfx.P66, S, pmovx(4, 8, false));

  // PEXTRB/PEXTRW/PEXTRD/PEXTRQ r/m, xmm, imm8 (66 0F 3A 14/15/16): register destinations zero-extended.
  defineSimd(0x314, Pfx.P66, S, (cpu, d) => {
    const v = cpu.state.xmmU8[(d.reg << 4) + (d.imm & 15)];
    if (d.mod === 3) setR(cpu, d, 4, d.rm, v, 0);
    else writeRm(cpu, d, 1, v, 0);
    return 1;
  });
  defineSimd(0x315, Pfx.P66, S, (cpu, d) => {
    const x = cpu.state.xmmU8;
    const o = (d.reg << 4) + ((d.imm & 7) << 1);
    const v = x[o] | (x[o + 1] << 8);
    if (d.mod === 3) setR(cpu, d, 4, d.rm, v, 0);
    else writeRm(cpu, d, 2, v, 0);
    return 1;
  });
  defineSimd(0x316, Pfx.P66, S, (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.rex & 8) {
      const q = r + ((d.imm & 1) << 1);
      writeRm(cpu, d, 8, x[q], x[q + 1]);
    } else writeRm(cpu, d, 4, x[r + (d.imm & 3)], 0);
    return 1;
  });
  // PINSRB xmm, r32/m8, imm8 (66 0F 3A 20); PINSRD/PINSRQ xmm, r/m32/64, imm8 (66 [REX.W] 0F 3A 22).
  defineSimd(0x320, Pfx.P66, S, (cpu, d) => {
    const v = d.mod === 3 ? getR(cpu, d, 4, d.rm) : readRm(cpu, d, 1);
    cpu.state.xmmU8[(d.reg << 4) + (d.imm & 15)] = v;
    return 1;
  });
  defineSimd(0x322, Pfx.P66, S, (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.rex & 8) {
      const v = readRm(cpu, d, 8);
      const q = r + ((d.imm & 1) << 1);
      x[q] = v;
      x[q + 1] = cpu.tmpHi;
    } else x[r + (d.imm & 3)] = readRm(cpu, d, 4);
    return 1;
  });
}

/** Preallocated operand descriptor for the implicit DS:rDI of MASKMOVQ/MASKMOVDQU. */
const rdiOperand = new Insn();
const MBUF = new Uint8Array(16);

/**
 * MASKMOVQ/MASKMOVDQU store (SDM vol. 2): the bytes of A whose byte in B
 * has bit 7 set go to DS:rDI (segment override allowed, address size from
 * the instruction). Only the span from the first to the last selected byte
 * is accessed (read then written back merged, so a fault leaves memory
 * unchanged); a zero mask touches no memory.
 */
export function maskedStore(cpu: Cpu, d: Insn, n: number): void {
  let first = -1,
    last = -1;
  for (let i = 0; i < n; i++)
    if (B8[i] & 0x80) {
      if (first < 0) first = i;
      last = i;
    }
  if (first < 0) return;
  const m = rdiOperand;
  m.long = d.long;
  m.asz = d.asz;
  m.seg = d.seg;
  m.nextLo = d.nextLo;
  m.nextHi = d.nextHi;
  m.mod = 0;
  m.base = 7;
  m.index = -1;
  m.scale = 0;
  m.disp = first;
  m.ripRel = false;
  m.defSeg = 3;
  m.hasModrm = true;
  const span = last - first + 1;
  const lo = operandAddress(cpu, m, span, true);
  const hi = cpu.tmpHi;
  cpu.rdBytes(lo, hi, span, MBUF, 0);
  for (let i = first; i <= last; i++) if (B8[i] & 0x80) MBUF[i - first] = A8[i];
  cpu.wrBytes(lo, hi, span, MBUF, 0);
}
