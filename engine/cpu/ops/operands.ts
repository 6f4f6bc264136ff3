/**
 * Operand access for the integer instruction handlers (engine/cpu/ops/*)
 * and the unit files (x87, SIMD, XSAVE): effective and linear addresses of
 * the ModRM memory operand (Intel SDM vol. 1 §3.7.5, vol. 3 §3.4 segment
 * base and limit), register and r/m reads/writes at 1/2/4/8 bytes (64-bit
 * values as two 32-bit halves), and #UD.
 *
 * Scratch state shared by the handlers (no allocation per instruction):
 * `ea` holds the last computed memory-operand address, `res.hi` the high
 * half of the last 64-bit ALU/shift result.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { insnName } from '../names';

/** Size in bytes (1/2/4/8) -> lazy-flags size index 0-3 (`cpu.lfOp` bits 4-5). */
export const SZI: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

/** Value mask of a 1/2/4-byte operand (-1 for 4 and 8: work on the low half). */
export function mask(s: number): number {
  return s === 1 ? 0xff : s === 2 ? 0xffff : -1;
}
/** Sign bit of a 1/2/4-byte operand (the low half's bit 31 for 4 and 8). */
export function sign(s: number): number {
  return s === 1 ? 0x80 : s === 2 ? 0x8000 : -2147483648;
}

/** Address of the current memory operand (lo, hi halves), written by the address helpers below. */
export const ea = { lo: 0, hi: 0 };
/** High half of the last 64-bit result of `alu`/`incdec`/`shiftOp`/`shiftDouble`. */
export const res = { hi: 0 };

/** Offset of the memory operand (no segment). */
export function offsetOf(cpu: Cpu, d: Insn): void {
  const R = cpu.state.gprLo,
    H = cpu.state.gprHi;
  if (d.asz === 8) {
    if (d.ripRel) {
      const n = (d.nextLo >>> 0) + d.disp;
      ea.lo = n | 0;
      ea.hi = (d.nextHi + Math.floor(n / 4294967296)) | 0;
      return;
    }
    // The signed displacement lives in t; floor() carries its sign extension into the high half.
    let t = d.disp;
    let h = 0;
    if (d.base >= 0) {
      t += R[d.base] >>> 0;
      h += H[d.base];
    }
    if (d.index >= 0) {
      t += (R[d.index] >>> 0) * (1 << d.scale);
      h += H[d.index] << d.scale;
    }
    ea.lo = t | 0;
    ea.hi = (h + Math.floor(t / 4294967296)) | 0;
    return;
  }
  let t = d.disp;
  if (d.base >= 0) t += R[d.base];
  if (d.index >= 0) t += d.asz === 4 ? R[d.index] << d.scale : R[d.index];
  ea.lo = d.asz === 4 ? t | 0 : t & 0xffff;
  ea.hi = 0;
}

/** Linear address of the memory operand into ea.lo/ea.hi (segment base, limit check outside 64-bit mode). */
export function linOf(cpu: Cpu, d: Insn, size: number, write: boolean): void {
  offsetOf(cpu, d);
  const seg = d.seg >= 0 ? d.seg : d.defSeg;
  applySeg(cpu, seg, size, write);
}

/**
 * Turns the offset in `ea` into a linear address through segment `seg` (Seg number) for an access of
 * `size` bytes: 64-bit mode adds the FS/GS base and raises #SS(0) for a non-canonical SS address; other
 * modes check the limit and add the base (`cpu.segLin`: #GP(0)/#SS(0)).
 */
export function applySeg(cpu: Cpu, seg: number, size: number, write: boolean): void {
  const s = cpu.state;
  if (cpu.curMode === 5) {
    // A non-canonical address referencing SS is #SS(0), not #GP(0) (SDM vol. 3 §6.15 "Interrupt 12").
    if (seg === 2 && (ea.hi << 16) >> 16 !== ea.hi) cpu.fault(12, 0);
    if (seg === 4 || seg === 5) {
      const t = (ea.lo >>> 0) + (s.segBaseLo[seg] >>> 0);
      ea.lo = t | 0;
      ea.hi = (ea.hi + s.segBaseHi[seg] + (t > 0xffffffff ? 1 : 0)) | 0;
    }
    return;
  }
  ea.hi = 0;
  if (cpu.flat && (seg === 0 || seg === 2 || seg === 3)) return;
  ea.lo = cpu.segLin(seg, ea.lo, size, write);
}

/**
 * Linear address of the memory operand of `d` for an access of `size` bytes
 * (segment base added, limit checked outside 64-bit mode: #GP(0)/#SS(0)).
 * Returns the low half; the high half is left in `cpu.tmpHi`. For the unit
 * files (x87, SIMD, XSAVE) that access wide operands with `cpu.rdBytes` /
 * `cpu.wrBytes`.
 */
export function operandAddress(cpu: Cpu, d: Insn, size: number, write: boolean): number {
  linOf(cpu, d, size, write);
  cpu.tmpHi = ea.hi;
  return ea.lo;
}

/** Reads the r/m operand of `d` at size 1/2/4/8 (register or memory; 8: high half in `cpu.tmpHi`). */
export function readRm(cpu: Cpu, d: Insn, s: number): number {
  return rdRM(cpu, d, s, false);
}

/** Writes the r/m operand of `d` at size 1/2/4/8 (register or memory at the operand's address). */
export function writeRm(cpu: Cpu, d: Insn, s: number, v: number, vh: number): void {
  if (d.mod !== 3) linOf(cpu, d, s, true);
  wrRM(cpu, d, s, v, vh);
}

/** Raises #UD for `d`, naming the instruction in `exitDetail`. */
export function undefinedOpcode(cpu: Cpu, d: Insn): never {
  return ud(cpu, d);
}

/** Reads `s` bytes at the linear address in `ea` (8: high half in `cpu.tmpHi`); faults as `cpu.rdS`. */
export function rdMem(cpu: Cpu, s: number): number {
  return cpu.rdS(ea.lo, ea.hi, s);
}

/** Writes `s` bytes (v, vh) at the linear address in `ea`; faults as `cpu.wrS`. */
export function wrMem(cpu: Cpu, s: number, v: number, vh: number): void {
  cpu.wrS(ea.lo, ea.hi, s, v, vh);
}

/** Register read at size s (8: lo, hi in cpu.tmpHi). */
export function getR(cpu: Cpu, d: Insn, s: number, r: number): number {
  const R = cpu.state.gprLo;
  if (s === 1) {
    if (!d.rex && r >= 4 && r < 8) return (R[r - 4] >> 8) & 0xff;
    return R[r] & 0xff;
  }
  if (s === 2) return R[r] & 0xffff;
  if (s === 8) cpu.tmpHi = cpu.state.gprHi[r];
  return R[r];
}

/** Register write at size s (1: AH..BH without REX; 4: upper half zeroed; 8: high half `vh`). */
export function setR(cpu: Cpu, d: Insn, s: number, r: number, v: number, vh: number): void {
  const R = cpu.state.gprLo;
  if (s === 1) {
    if (!d.rex && r >= 4 && r < 8) R[r - 4] = (R[r - 4] & ~0xff00) | ((v & 0xff) << 8);
    else R[r] = (R[r] & ~0xff) | (v & 0xff);
  } else if (s === 2) R[r] = (R[r] & ~0xffff) | (v & 0xffff);
  else if (s === 4) {
    R[r] = v;
    cpu.state.gprHi[r] = 0;
  } else {
    R[r] = v;
    cpu.state.gprHi[r] = vh;
  }
}

/** Reads the r/m operand (memory address kept in ea.lo/ea.hi for a following write). */
export function rdRM(cpu: Cpu, d: Insn, s: number, write: boolean): number {
  if (d.mod === 3) return getR(cpu, d, s, d.rm);
  linOf(cpu, d, s, write);
  return rdMem(cpu, s);
}

/** Writes the r/m operand: the register, or memory at the address a preceding `rdRM`/`linOf` left in `ea`. */
export function wrRM(cpu: Cpu, d: Insn, s: number, v: number, vh: number): void {
  if (d.mod === 3) setR(cpu, d, s, d.rm, v, vh);
  else wrMem(cpu, s, v, vh);
}

/** #UD for `d` with the instruction's name in `exitDetail` (never returns). */
export function ud(cpu: Cpu, d: Insn): never {
  cpu.exitDetail = insnName(cpu, d);
  return cpu.fault(6, -1);
}
