/**
 * Control transfer (Intel SDM vol. 1 §6.3-6.4, §7.3.8; vol. 2 JMP, Jcc,
 * CALL, RET, LOOP/LOOPcc, JCXZ/JECXZ/JRCXZ, INT n/INT3/INTO/INT1, IRET,
 * far CALL/JMP/RET through ../system.ts) and group 4/5 (INC/DEC, indirect
 * CALL/JMP near and far, PUSH r/m). A target outside CS's limit (or
 * non-canonical) is #GP(0) before anything changes. These instructions end
 * their block; `execInsn` has set RIP to the next instruction already.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { systemOps } from '../system';
import { ea, linOf, rdMem, rdRM, res, ud, wrRM } from './operands';
import { incdec } from './alu';
import { adjustSp, peek, push } from './stack';
import { countZero, decCount } from './string';
import { defineOp, range } from './table';

/** RET near (C3; C2 imm16 also releases imm16 bytes). */
function retNear(cpu: Cpu, d: Insn): number {
  const long = cpu.curMode === 5;
  const ss = long ? 8 : d.osz;
  const v = peek(cpu, ss, 0);
  const vh = long ? cpu.tmpHi : 0;
  setRip(cpu, v, vh, ss);
  adjustSp(cpu, ss + (d.op === 0xc2 ? d.imm : 0));
  return 1;
}

/** Jcc rel8 (70-7F) / rel16/32 (0F 80-8F). */
function jcc(cpu: Cpu, d: Insn): number {
  if (cpu.cond(d.op & 15)) {
    const lo = relTarget(d),
      hi = relHi;
    setRip(cpu, lo, hi, d.osz);
  }
  return 1;
}

/** LOOPNE / LOOPE / LOOP rel8 (E0/E1/E2): decrement the count without touching flags. */
function loop(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  // LOOPNE / LOOPE / LOOP: decrement the count without touching flags.
  const asz = d.asz;
  const saveLo = R[1],
    saveHi = H[1];
  decCount(cpu, asz);
  let take = !countZero(cpu, asz);
  if (op === 0xe0) take = take && !(cpu.arith() & 0x40);
  else if (op === 0xe1) take = take && (cpu.arith() & 0x40) !== 0;
  if (take) {
    const lo = relTarget(d),
      hi = relHi;
    try {
      setRip(cpu, lo, hi, d.osz);
    } catch (e) {
      R[1] = saveLo;
      H[1] = saveHi;
      throw e;
    }
  }
  return 1;
}

/** JCXZ/JECXZ/JRCXZ rel8 (E3), count register by address size. */
function jcxz(cpu: Cpu, d: Insn): number {
  if (countZero(cpu, d.asz)) {
    const lo = relTarget(d),
      hi = relHi;
    setRip(cpu, lo, hi, d.osz);
  }
  return 1;
}

/** CALL rel16/32 (E8): the target is checked before the push. */
function callRel(cpu: Cpu, d: Insn): number {
  const long = cpu.curMode === 5;
  const lo = relTarget(d),
    hi = relHi;
  const ss = long ? 8 : d.osz;
  const tgt = ss === 2 ? lo & 0xffff : lo;
  // Check the target before pushing (fault leaves the stack untouched).
  if (long && (hi << 16) >> 16 !== hi) cpu.fault(13, 0);
  push(cpu, ss, ss === 2 ? d.nextLo & 0xffff : d.nextLo, d.nextHi);
  setRip(cpu, tgt, hi, ss);
  return 1;
}

/** JMP rel16/32 (E9) / rel8 (EB). */
function jmpRel(cpu: Cpu, d: Insn): number {
  const lo = relTarget(d),
    hi = relHi;
  setRip(cpu, lo, hi, d.osz);
  return 1;
}

/** CALL ptr16:16/32 (9A): #UD in 64-bit mode. */
function callFar(cpu: Cpu, d: Insn): number {
  if (cpu.curMode === 5) return ud(cpu, d);
  systemOps.farCall(cpu, d.imm2, d.imm, 0, d.osz);
  return 1;
}

/** JMP ptr16:16/32 (EA; the decoder marks it #UD in 64-bit mode). */
function jmpFar(cpu: Cpu, d: Insn): number {
  systemOps.farJump(cpu, d.imm2, d.imm, 0, d.osz);
  return 1;
}

/** RET far (CB; CA imm16). */
function retFar(cpu: Cpu, d: Insn): number {
  systemOps.farReturn(cpu, d.osz, d.op === 0xca ? d.imm : 0);
  return 1;
}

/** INT3 (CC): #BP trap. */
function int3(cpu: Cpu, d: Insn): number {
  softInt(cpu, d, 3, true);
  return 1;
}

/** INT imm8 (CD): an intercepted vector exits at the instruction boundary. */
function intN(cpu: Cpu, d: Insn): number {
  if (cpu.interceptSoftInt[d.imm & 0xff]) {
    cpu.exitVector = d.imm & 0xff;
    return cpu.exitAtBoundary(2, d);
  }
  softInt(cpu, d, d.imm & 0xff, false);
  return 1;
}

/** INTO (CE): #OF trap when OF = 1; #UD in 64-bit mode. */
function into(cpu: Cpu, d: Insn): number {
  if (cpu.curMode === 5) return ud(cpu, d);
  if (cpu.arith() & 0x800) softInt(cpu, d, 4, true);
  return 1;
}

/** IRET/IRETD/IRETQ (CF). */
function iret(cpu: Cpu, d: Insn): number {
  systemOps.iret(cpu, d.osz);
  return 1;
}

/** INT1 / ICEBP (F1): #DB trap. */
function int1(cpu: Cpu, d: Insn): number {
  // INT1 (ICEBP): #DB trap.
  softInt(cpu, d, 1, true);
  return 1;
}

/** Group 4 (FE) / group 5 (FF). */
function group45Op(cpu: Cpu, d: Insn): number {
  return group45(cpu, d, d.op === 0xfe ? 1 : d.osz);
}

/** Registers this file's opcodes (see table.ts). */
export function registerControl(): void {
  defineOp([0xc2, 0xc3], retNear);
  defineOp([...range(0x70, 0x7f), ...range(0x180, 0x18f)], jcc);
  defineOp([0xe0, 0xe1, 0xe2], loop);
  defineOp(0xe3, jcxz);
  defineOp(0xe8, callRel);
  defineOp([0xe9, 0xeb], jmpRel);
  defineOp(0x9a, callFar);
  defineOp(0xea, jmpFar);
  defineOp([0xca, 0xcb], retFar);
  defineOp(0xcc, int3);
  defineOp(0xcd, intN);
  defineOp(0xce, into);
  defineOp(0xcf, iret);
  defineOp(0xf1, int1);
  // LOCK: INC (/0) and DEC (/1) with a memory destination.
  defineOp([0xfe, 0xff], group45Op, { lock: 0x03 });
}

function setRip(cpu: Cpu, lo: number, hi: number, osz: number): void {
  if (cpu.curMode === 5) {
    if ((hi << 16) >> 16 !== hi) cpu.fault(13, 0);
    cpu.setRip(lo, hi);
  } else {
    const eip = osz === 2 ? lo & 0xffff : lo;
    const lim = cpu.state.segLimit[1];
    if (cpu.curMode !== 0 && eip >>> 0 > lim) cpu.fault(13, 0);
    cpu.setRip(eip, 0);
  }
}

/** Target of a relative branch: low half returned, high half in `relHi` (no allocation). */
let relHi = 0;

function relTarget(d: Insn): number {
  const n = (d.nextLo >>> 0) + d.imm;
  relHi = d.long ? (d.nextHi + Math.floor(n / 4294967296)) | 0 : 0;
  return n | 0;
}

function softInt(cpu: Cpu, d: Insn, vector: number, exception: boolean): void {
  if (exception && cpu.interceptExceptions & (1 << vector)) cpu.trap(vector);
  cpu.deliverInterrupt(vector, -1, true, d.nextLo, d.nextHi);
}

function group45(cpu: Cpu, d: Insn, s: number): number {
  const g = d.reg & 7;
  const long = cpu.curMode === 5;
  if (g < 2) {
    const a = rdRM(cpu, d, s, true);
    const r = incdec(cpu, s, a, cpu.tmpHi, g === 1);
    wrRM(cpu, d, s, r, res.hi);
    return 1;
  }
  if (d.op === 0xfe) return ud(cpu, d);
  switch (g) {
    case 2:
    case 4: {
      const ss = long ? 8 : s;
      const v = rdRM(cpu, d, ss, false);
      const vh = long ? cpu.tmpHi : 0;
      if (long && (vh << 16) >> 16 !== vh) cpu.fault(13, 0);
      if (g === 2) push(cpu, ss, ss === 2 ? cpu.state.ripLo & 0xffff : cpu.state.ripLo, cpu.state.ripHi);
      setRip(cpu, v, vh, ss);
      return 1;
    }
    case 3:
    case 5: {
      if (d.mod === 3) return ud(cpu, d);
      linOf(cpu, d, s + 2, false);
      const off = rdMem(cpu, s === 8 ? 8 : s);
      const offHi = s === 8 ? cpu.tmpHi : 0;
      const n = (ea.lo >>> 0) + s;
      const sel = cpu.rdS(n | 0, (ea.hi + (n > 0xffffffff ? 1 : 0)) | 0, 2);
      if (g === 3) systemOps.farCall(cpu, sel, s === 2 ? off & 0xffff : off, offHi, s);
      else systemOps.farJump(cpu, sel, s === 2 ? off & 0xffff : off, offHi, s);
      return 1;
    }
    case 6: {
      const v = rdRM(cpu, d, s, false);
      push(cpu, s, v, cpu.tmpHi);
      return 1;
    }
  }
  return ud(cpu, d);
}
