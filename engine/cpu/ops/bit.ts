/**
 * Bit and byte instructions (Intel SDM vol. 1 §7.3.7; vol. 2 BT/BTS/BTR/BTC,
 * BSF/BSR, TZCNT/LZCNT (F3), POPCNT (F3), SETcc). BT* with a register
 * offset and a memory operand address a bit string (signed offset).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { applySeg, ea, getR, linOf, mask, offsetOf, rdMem, rdRM, setR, ud, wrMem, wrRM } from './operands';
import { setSome } from './arith-flags';
import { defineOp, OpPfx, range } from './table';

/** SETcc r/m8 (0F 90-9F). */
function setcc(cpu: Cpu, d: Insn): number {
  const v = cpu.cond(d.op & 15) ? 1 : 0;
  if (d.mod !== 3) linOf(cpu, d, 1, true);
  wrRM(cpu, d, 1, v, 0);
  return 1;
}

/** POPCNT r, r/m (F3 0F B8); without F3 #UD (JMPE is not offered). */
function popcntOp(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (d.rep !== 0xf3) return ud(cpu, d);
  const v = rdRM(cpu, d, s, false);
  const vh = s === 8 ? cpu.tmpHi : 0;
  const c = popcnt(s === 4 || s === 8 ? v : v & mask(s)) + (s === 8 ? popcnt(vh) : 0);
  setR(cpu, d, s, d.reg, c, 0);
  cpu.setArith(c === 0 ? 0x40 : 0);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerBit(): void {
  defineOp(range(0x190, 0x19f), setcc);
  defineOp(0x1a3, bitTest);
  defineOp([0x1ab, 0x1b3, 0x1bb], bitTest, { lock: 0xff });
  // Group 8 (0F BA): BT/BTS/BTR/BTC imm8 at /4-/7; LOCK for BTS/BTR/BTC.
  defineOp(0x1ba, bitTest, { lock: 0xe0 });
  defineOp([0x1bc, 0x1bd], bitScan, { pfx: OpPfx.F3 });
  defineOp(0x1b8, popcntOp, { pfx: OpPfx.F3 });
}

function popcnt(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

function clz32x(v: number): number {
  return Math.clz32(v);
}

function bitScan(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const v = rdRM(cpu, d, s, false);
  const vh = s === 8 ? cpu.tmpHi : 0;
  const bits = s * 8;
  const lo = s < 4 ? v & mask(s) : v;
  const zero = (lo | vh) === 0;
  const tz = (): number => {
    if (lo !== 0) return 31 - clz32x(lo & -lo);
    return 32 + 31 - clz32x(vh & -vh);
  };
  const msb = (): number => {
    if (s === 8 && vh !== 0) return 63 - clz32x(vh);
    return 31 - clz32x(lo);
  };
  if (d.rep === 0xf3) {
    // TZCNT / LZCNT
    let c: number;
    if (d.op === 0x1bc) c = zero ? bits : tz();
    else c = zero ? bits : bits - 1 - msb();
    setR(cpu, d, s, d.reg, c, 0);
    cpu.setArith((c === 0 ? 0x40 : 0) | (zero ? 1 : 0));
    return 1;
  }
  if (zero) {
    // Destination unchanged (as hardware does), ZF = 1.
    cpu.setArith(0x40);
    return 1;
  }
  const r = d.op === 0x1bc ? tz() : msb();
  setR(cpu, d, s, d.reg, r, 0);
  cpu.setArith(0);
  return 1;
}

function bitTest(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const s = d.osz;
  const bits = s * 8;
  let kind: number; // 0 BT, 1 BTS, 2 BTR, 3 BTC
  let offLo: number,
    offHi = 0;
  let fromImm = false;
  if (d.op === 0x1ba) {
    const g = d.reg & 7;
    if (g < 4) return ud(cpu, d);
    kind = g - 4;
    offLo = d.imm & 0xff;
    fromImm = true;
  } else {
    kind = d.op === 0x1a3 ? 0 : d.op === 0x1ab ? 1 : d.op === 0x1b3 ? 2 : 3;
    offLo = getR(cpu, d, s, d.reg);
    offHi = s === 8 ? cpu.tmpHi : 0;
    if (s === 2) offLo = (offLo << 16) >> 16;
  }
  let v: number,
    vh = 0;
  let bit: number;
  if (d.mod === 3 || fromImm) {
    bit = offLo & (bits - 1);
    if (d.mod === 3) {
      v = getR(cpu, d, s, d.rm);
      vh = s === 8 ? cpu.tmpHi : 0;
    } else {
      linOf(cpu, d, s, kind !== 0);
      v = rdMem(cpu, s);
      vh = s === 8 ? cpu.tmpHi : 0;
    }
  } else {
    // Bit string: the offset selects a word relative to the operand address (signed).
    const off = s === 8 ? offHi * 4294967296 + (offLo >>> 0) : offLo;
    const wordIdx = Math.floor(off / bits);
    bit = off - wordIdx * bits;
    offsetOf(cpu, d);
    const delta = wordIdx * s;
    const t = (ea.lo >>> 0) + delta;
    if (d.asz === 8) {
      ea.lo = (t % 4294967296) | 0;
      ea.hi = (ea.hi + Math.floor(t / 4294967296)) | 0;
    } else ea.lo = d.asz === 4 ? t | 0 : t & 0xffff;
    applySeg(cpu, d.seg >= 0 ? d.seg : d.defSeg, s, kind !== 0);
    v = rdMem(cpu, s);
    vh = s === 8 ? cpu.tmpHi : 0;
  }
  const cf = bit < 32 ? (v >>> bit) & 1 : (vh >>> (bit - 32)) & 1;
  if (kind !== 0) {
    let nv = v,
      nvh = vh;
    const m = bit < 32 ? 1 << bit : 0;
    const mh = bit >= 32 ? 1 << (bit - 32) : 0;
    if (kind === 1) {
      nv |= m;
      nvh |= mh;
    } else if (kind === 2) {
      nv &= ~m;
      nvh &= ~mh;
    } else {
      nv ^= m;
      nvh ^= mh;
    }
    if (d.mod === 3) setR(cpu, d, s, d.rm, s < 4 ? nv & mask(s) : nv, nvh);
    else wrMem(cpu, s, s < 4 ? nv & mask(s) : nv, nvh);
  }
  setSome(cpu, 1, cf);
  void st;
  return 1;
}
