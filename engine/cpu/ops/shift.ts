/**
 * Shifts and rotates (Intel SDM vol. 1 §7.3.6; vol. 2 SAL/SAR/SHL/SHR,
 * RCL/RCR/ROL/ROR, SHLD, SHRD): counts masked to 5 bits (6 with 64-bit
 * operands); a masked count of 0 changes no flags.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { getR, mask, rdRM, res, wrRM } from './operands';
import { setSome, szp } from './arith-flags';
import { defineOp } from './table';

/** Group 2 (C0/C1 imm8, D0/D1 by 1, D2/D3 by CL): ROL ROR RCL RCR SHL SHR SAL SAR by /reg. */
function group2(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  const sz = op & 1 ? d.osz : 1;
  const raw = op <= 0xc1 ? d.imm : op <= 0xd1 ? 1 : R[1] & 0xff;
  const c = raw & (sz === 8 ? 0x3f : 0x1f);
  const g = d.reg & 7;
  const a = rdRM(cpu, d, sz, true);
  const ah = cpu.tmpHi;
  if (c === 0) {
    if (sz === 4 && d.mod === 3) H[d.rm] = 0; // 32-bit destination still zero-extended
    return 1;
  }
  const r = shiftOp(cpu, g, sz, a, ah, c);
  wrRM(cpu, d, sz, r, res.hi);
  return 1;
}

/** SHLD (0F A4 imm8 / A5 CL) and SHRD (0F AC imm8 / AD CL). */
function shiftDoubleOp(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  const a = rdRM(cpu, d, s, true);
  const ah = cpu.tmpHi;
  const b = getR(cpu, d, s, d.reg);
  const bh = cpu.tmpHi;
  const raw = op & 1 ? R[1] & 0xff : d.imm;
  const c = raw & (s === 8 ? 0x3f : 0x1f);
  if (c === 0) {
    if (s === 4 && d.mod === 3) H[d.rm] = 0;
    return 1;
  }
  const r = shiftDouble(cpu, s, a, ah, b, bh, c, op < 0x1ac);
  wrRM(cpu, d, s, r, res.hi);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerShift(): void {
  defineOp([0xc0, 0xc1, 0xd0, 0xd1, 0xd2, 0xd3], group2);
  defineOp([0x1a4, 0x1a5, 0x1ac, 0x1ad], shiftDoubleOp);
}

export function bitAt(lo: number, hi: number, n: number): number {
  if (n < 0 || n > 63) return 0;
  return n < 32 ? (lo >>> n) & 1 : (hi >>> (n - 32)) & 1;
}

/** Group 2 op g (ROL ROR RCL RCR SHL SHR SAL SAR) on (a, ah) by count c (already masked); sets flags; result hi in res.hi. */
export function shiftOp(cpu: Cpu, g: number, s: number, a: number, ah: number, c: number): number {
  const bits = s * 8;
  const m = mask(s);
  if (s < 8) {
    a &= m;
    ah = 0;
  }
  let lo = a,
    hi = ah;
  if (g === 0 || g === 1) {
    const n = c % bits;
    if (n) {
      for (let i = 0; i < n; i++) {
        if (g === 0) {
          const top = bitAt(lo, hi, bits - 1);
          [lo, hi] = shl1(lo, hi, s, top);
        } else {
          const bot = lo & 1;
          [lo, hi] = shr1(lo, hi, s, bot);
        }
      }
    }
    const cf = g === 0 ? lo & 1 : bitAt(lo, hi, bits - 1);
    const msb = bitAt(lo, hi, bits - 1);
    const of = g === 0 ? msb ^ cf : msb ^ bitAt(lo, hi, bits - 2);
    setSome(cpu, 0x801, cf | (of << 11));
    res.hi = hi;
    return lo;
  }
  if (g === 2 || g === 3) {
    const n = s === 1 ? c % 9 : s === 2 ? c % 17 : c;
    let cf = cpu.getCF();
    for (let i = 0; i < n; i++) {
      if (g === 2) {
        const top = bitAt(lo, hi, bits - 1);
        [lo, hi] = shl1(lo, hi, s, cf);
        cf = top;
      } else {
        const bot = lo & 1;
        [lo, hi] = shr1(lo, hi, s, cf);
        cf = bot;
      }
    }
    const msb = bitAt(lo, hi, bits - 1);
    const of = g === 2 ? msb ^ cf : msb ^ bitAt(lo, hi, bits - 2);
    if (n) setSome(cpu, 0x801, cf | (of << 11));
    res.hi = hi;
    return lo;
  }
  // SHL/SAL, SHR, SAR
  let cf = 0,
    of = 0;
  if (g === 4 || g === 6) {
    cf = bitAt(a, ah, bits - c);
    if (c >= bits) {
      lo = 0;
      hi = 0;
    } else if (s === 8) {
      if (c >= 32) {
        hi = a << (c - 32);
        lo = 0;
      } else {
        hi = (ah << c) | (a >>> (32 - c));
        lo = a << c;
      }
    } else lo = (a << c) & m;
    of = bitAt(lo, hi, bits - 1) ^ cf;
  } else if (g === 5) {
    cf = bitAt(a, ah, c - 1);
    if (c >= bits) {
      lo = 0;
      hi = 0;
    } else if (s === 8) {
      if (c >= 32) {
        lo = ah >>> (c - 32);
        hi = 0;
      } else {
        lo = (a >>> c) | (ah << (32 - c));
        hi = ah >>> c;
      }
    } else lo = (a >>> 0) >>> c;
    lo |= 0;
    of = bitAt(a, ah, bits - 1);
  } else {
    const neg = bitAt(a, ah, bits - 1);
    cf = c - 1 >= bits ? neg : bitAt(a, ah, c - 1);
    if (s === 8) {
      if (c >= 32) {
        lo = ah >> (c - 32);
        hi = ah >> 31;
      } else {
        lo = (a >>> c) | (ah << (32 - c));
        hi = ah >> c;
      }
    } else {
      const sa = s === 4 ? a : (a << (32 - bits)) >> (32 - bits);
      lo = (sa >> (c > 31 ? 31 : c)) & m;
    }
  }
  cpu.setArith(cf | (of << 11) | szp(s, lo, hi));
  res.hi = hi;
  return lo;
}

export function shl1(lo: number, hi: number, s: number, inBit: number): [number, number] {
  if (s === 8) return [(lo << 1) | inBit, (hi << 1) | (lo >>> 31)];
  return [((lo << 1) | inBit) & mask(s), 0];
}

export function shr1(lo: number, hi: number, s: number, inBit: number): [number, number] {
  if (s === 8) return [(lo >>> 1) | (hi << 31), (hi >>> 1) | (inBit << 31)];
  const bits = s * 8;
  return [((lo & mask(s)) >>> 1) | (inBit << (bits - 1)), 0];
}

export function shiftDouble(
  cpu: Cpu,
  s: number,
  a: number,
  ah: number,
  b: number,
  bh: number,
  c: number,
  left: boolean,
): number {
  const bits = s * 8;
  if (s < 8) {
    a &= mask(s);
    b &= mask(s);
    ah = 0;
    bh = 0;
  }
  let lo = a,
    hi = ah,
    slo = b,
    shi = bh;
  let cf = 0;
  const orig = bitAt(a, ah, bits - 1);
  for (let i = 0; i < c; i++) {
    if (left) {
      cf = bitAt(lo, hi, bits - 1);
      const inBit = bitAt(slo, shi, bits - 1);
      [lo, hi] = shl1(lo, hi, s, inBit);
      [slo, shi] = shl1(slo, shi, s, 0);
    } else {
      cf = lo & 1;
      const inBit = slo & 1;
      [lo, hi] = shr1(lo, hi, s, inBit);
      [slo, shi] = shr1(slo, shi, s, 0);
    }
  }
  const of = bitAt(lo, hi, bits - 1) ^ orig;
  cpu.setArith(cf | (of << 11) | szp(s, lo, hi));
  res.hi = hi;
  return lo;
}
