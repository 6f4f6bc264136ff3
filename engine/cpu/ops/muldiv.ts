/**
 * Multiply and divide (Intel SDM vol. 2 MUL, IMUL, DIV, IDIV) and the rest
 * of group 3 (TEST/NOT/NEG r/m). 64 x 64 -> 128-bit products use 16-bit
 * limbs in doubles (no BigInt); only DIV/IDIV r/m64 (128 / 64) use BigInt
 * (cold). #DE (vector 0) for a zero divisor or a quotient that does not fit.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { LF_IMUL64, PARITY } from '../flags';
import { getR, mask, rdRM, res, setR, wrRM } from './operands';
import { setLazy, szp } from './arith-flags';
import { alu } from './alu';
import { defineOp } from './table';

/** Group 3 (F6/F7): TEST imm, NOT, NEG, MUL, IMUL, DIV, IDIV by /reg. */
function group3Op(cpu: Cpu, d: Insn): number {
  group3(cpu, d, d.op === 0xf6 ? 1 : d.osz);
  return 1;
}

/** IMUL r, r/m, imm (69 imm16/32, 6B imm8) and IMUL r, r/m (0F AF). */
function imulOp(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const a = rdRM(cpu, d, s, false);
  const ah = cpu.tmpHi;
  let b: number, bh: number;
  if (d.op === 0x1af) {
    b = getR(cpu, d, s, d.reg);
    bh = cpu.tmpHi;
  } else {
    b = d.imm;
    bh = d.imm >> 31;
  }
  imul2(cpu, d, s, a, ah, b, bh);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerMulDiv(): void {
  // LOCK: NOT (/2) and NEG (/3) with a memory destination.
  defineOp([0xf6, 0xf7], group3Op, { lock: 0x0c });
  defineOp([0x69, 0x6b, 0x1af], imulOp);
}

function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function toBigS(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, toBig(lo, hi));
}

function loOf(v: bigint): number {
  return Number(v & 0xffffffffn) | 0;
}

function hiOf(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn) | 0;
}

function group3(cpu: Cpu, d: Insn, s: number): void {
  const g = d.reg & 7;
  const st = cpu.state;
  const R = st.gprLo;
  const H = st.gprHi;
  switch (g) {
    case 0:
    case 1: {
      const a = rdRM(cpu, d, s, false);
      alu(cpu, 4, s, a, cpu.tmpHi, s === 1 ? d.imm & 0xff : s === 2 ? d.imm & 0xffff : d.imm, d.imm >> 31);
      return;
    }
    case 2: {
      const a = rdRM(cpu, d, s, true);
      wrRM(cpu, d, s, ~a & mask(s), ~cpu.tmpHi);
      return;
    }
    case 3: {
      const a = rdRM(cpu, d, s, true);
      const r = alu(cpu, 5, s, 0, 0, a, cpu.tmpHi);
      wrRM(cpu, d, s, r, res.hi);
      return;
    }
    case 4:
    case 5: {
      const signed = g === 5;
      const b = rdRM(cpu, d, s, false);
      const bh = cpu.tmpHi;
      let of = false;
      if (s === 1) {
        const a = R[0] & 0xff;
        const p = signed ? ((a << 24) >> 24) * ((b << 24) >> 24) : a * b;
        R[0] = (R[0] & ~0xffff) | (p & 0xffff);
        of = signed ? p !== (p << 24) >> 24 : p >> 8 !== 0;
        mulFlags(cpu, of, p & 0xff);
      } else if (s === 2) {
        const a = R[0] & 0xffff;
        const p = signed ? ((a << 16) >> 16) * ((b << 16) >> 16) : a * b;
        R[0] = (R[0] & ~0xffff) | (p & 0xffff);
        R[2] = (R[2] & ~0xffff) | ((p >> 16) & 0xffff);
        of = signed ? p !== (p << 16) >> 16 : p >>> 16 !== 0;
        mulFlags(cpu, of, p & 0xffff);
      } else if (s === 4) {
        const a = R[0];
        const p = signed ? BigInt(a) * BigInt(b) : BigInt(a >>> 0) * BigInt(b >>> 0);
        const lo = loOf(p),
          hi = hiOf(p);
        R[0] = lo;
        R[2] = hi;
        H[0] = 0;
        H[2] = 0;
        of = signed ? hi !== lo >> 31 : hi !== 0;
        mulFlags(cpu, of, lo);
      } else {
        // 64 x 64 -> 128 with 16-bit limbs (no BigInt).
        mul128(R[0], H[0], b, bh);
        let p2 = P128[2],
          p3 = P128[3];
        if (signed) {
          // Signed high half = unsigned high - (a<0 ? b : 0) - (b<0 ? a : 0) (mod 2^64).
          if (H[0] < 0) {
            p2 = sub64(p2, p3, b, bh);
            p3 = subHi;
          }
          if (bh < 0) {
            p2 = sub64(p2, p3, R[0], H[0]);
            p3 = subHi;
          }
        }
        R[0] = P128[0];
        H[0] = P128[1];
        R[2] = p2;
        H[2] = p3;
        const ext = H[0] >> 31;
        of = signed ? p2 !== ext || p3 !== ext : (p2 | p3) !== 0;
        mulFlags(cpu, of, R[0] | H[0]);
      }
      return;
    }
    case 6:
    case 7: {
      const signed = g === 7;
      const b = rdRM(cpu, d, s, false);
      const bh = cpu.tmpHi;
      if (s === 1) {
        const a = R[0] & 0xffff;
        const dv = signed ? (b << 24) >> 24 : b;
        if (dv === 0) cpu.fault(0, -1);
        const n = signed ? (a << 16) >> 16 : a;
        const q = Math.trunc(n / dv);
        const r = n - q * dv;
        if (signed ? q > 127 || q < -128 : q > 255) cpu.fault(0, -1);
        R[0] = (R[0] & ~0xffff) | (q & 0xff) | ((r & 0xff) << 8);
      } else if (s === 2) {
        const n0 = ((R[2] & 0xffff) << 16) | (R[0] & 0xffff);
        const dv = signed ? (b << 16) >> 16 : b;
        if (dv === 0) cpu.fault(0, -1);
        const n = signed ? n0 : n0 >>> 0;
        const q = Math.trunc(n / dv);
        const r = n - q * dv;
        if (signed ? q > 32767 || q < -32768 : q > 65535) cpu.fault(0, -1);
        R[0] = (R[0] & ~0xffff) | (q & 0xffff);
        R[2] = (R[2] & ~0xffff) | (r & 0xffff);
      } else if (s === 4) {
        if (b === 0) cpu.fault(0, -1);
        // EDX:EAX / r/m32 without BigInt: long division in 16-bit steps (exact in doubles).
        let nLo = R[0],
          nHi = R[2];
        const negN = signed && nHi < 0;
        if (negN) {
          nLo = sub64(0, 0, nLo, nHi);
          nHi = subHi;
        }
        const negD = signed && b < 0;
        const dv = negD ? -b >>> 0 : b >>> 0;
        const hiU = nHi >>> 0;
        if (hiU >= dv) cpu.fault(0, -1); // quotient needs more than 32 bits
        let rem = hiU;
        let t = rem * 65536 + (nLo >>> 16);
        const q1 = Math.floor(t / dv);
        rem = t - q1 * dv;
        t = rem * 65536 + (nLo & 0xffff);
        const q0 = Math.floor(t / dv);
        rem = t - q0 * dv;
        let q = q1 * 65536 + q0;
        if (signed) {
          const qNeg = negN !== negD;
          if (qNeg ? q > 0x80000000 : q > 0x7fffffff) cpu.fault(0, -1);
          if (qNeg) q = -q;
          if (negN) rem = -rem;
        }
        R[0] = q | 0;
        R[2] = rem | 0;
        H[0] = 0;
        H[2] = 0;
      } else {
        const dvb = signed ? toBigS(b, bh) : toBig(b, bh);
        if (dvb === 0n) cpu.fault(0, -1);
        const n128 = (toBig(R[2], H[2]) << 64n) | toBig(R[0], H[0]);
        const n = signed ? BigInt.asIntN(128, n128) : n128;
        const q = n / dvb;
        const r = n % dvb;
        if (signed ? q > 0x7fffffffffffffffn || q < -0x8000000000000000n : q > 0xffffffffffffffffn)
          cpu.fault(0, -1);
        R[0] = loOf(q);
        H[0] = hiOf(q);
        R[2] = loOf(r);
        H[2] = hiOf(r);
      }
      return;
    }
  }
}

/** Result words (u32 as int32, little-endian) of the last `mul128`. */
const P128 = new Int32Array(4);

const LIMB = new Float64Array(8);

const LA = new Float64Array(4);

const LB = new Float64Array(4);

/** Unsigned 64 x 64 -> 128-bit product of (a, ah) and (b, bh) into P128 (SDM MUL r/m64). */
function mul128(a: number, ah: number, b: number, bh: number): void {
  const A0 = a & 0xffff,
    A1 = a >>> 16,
    A2 = ah & 0xffff,
    A3 = ah >>> 16;
  const B0 = b & 0xffff,
    B1 = b >>> 16,
    B2 = bh & 0xffff,
    B3 = bh >>> 16;
  LIMB.fill(0);
  const As = LA,
    Bs = LB;
  As[0] = A0;
  As[1] = A1;
  As[2] = A2;
  As[3] = A3;
  Bs[0] = B0;
  Bs[1] = B1;
  Bs[2] = B2;
  Bs[3] = B3;
  for (let i = 0; i < 4; i++) {
    let carry = 0;
    const ai = As[i];
    for (let j = 0; j < 4; j++) {
      const t = LIMB[i + j] + ai * Bs[j] + carry;
      carry = Math.floor(t / 65536);
      LIMB[i + j] = t - carry * 65536;
    }
    LIMB[i + 4] += carry;
  }
  for (let w = 0; w < 4; w++) P128[w] = LIMB[2 * w] | (LIMB[2 * w + 1] << 16);
}

/** (a, ah) - (b, bh) mod 2^64: low half returned, high half in `subHi`. */
let subHi = 0;

function sub64(a: number, ah: number, b: number, bh: number): number {
  const t = (a >>> 0) - (b >>> 0);
  subHi = (ah - bh - (t < 0 ? 1 : 0)) | 0;
  return t | 0;
}

function mulFlags(cpu: Cpu, of: boolean, low: number): void {
  cpu.setArith((of ? 0x801 : 0) | PARITY[low & 0xff] | (low === 0 ? 0x40 : 0));
}

function imul2(cpu: Cpu, d: Insn, s: number, a: number, ah: number, b: number, bh: number): void {
  let lo: number,
    hi = 0,
    of: boolean;
  if (s === 2) {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    lo = p & 0xffff;
    of = p !== (p << 16) >> 16;
  } else if (s === 4) {
    lo = Math.imul(a, b);
    of = a * b !== lo;
  } else {
    lo = cpu.mul64(a, ah, b, bh);
    hi = cpu.tmpHi;
    setR(cpu, d, s, d.reg, lo, hi);
    setLazy(cpu, LF_IMUL64, 8, a, b, lo, ah, bh, hi);
    return;
  }
  setR(cpu, d, s, d.reg, lo, hi);
  cpu.setArith((of ? 0x801 : 0) | szp(s, lo, hi));
}
