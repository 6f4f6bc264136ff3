/**
 * Stack instructions (Intel SDM vol. 1 §6.2-6.3, §7.3.1.4; vol. 2 PUSH,
 * POP, PUSHA/POPA, PUSHF/POPF, ENTER, LEAVE, PUSH/POP Sreg). The stack
 * address size follows SS.B (64-bit mode: 8); a non-canonical 64-bit stack
 * address is #SS(0). A fault leaves rSP unchanged.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { ARITH_FLAGS } from '../flags';
import { systemOps } from '../system';
import { getR, linOf, setR, ud, wrMem } from './operands';
import { defineOp, range } from './table';

/** PUSH ES/CS/SS/DS (06/0E/16/1E): #UD in 64-bit mode. */
function pushSeg(cpu: Cpu, d: Insn): number {
  if (cpu.curMode === 5) return ud(cpu, d);
  push(cpu, d.osz, cpu.state.segSel[d.op >> 3], 0);
  return 1;
}

/** POP ES/SS/DS (07/17/1F) with the checks of a segment load: #UD in 64-bit mode. */
function popSeg(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (cpu.curMode === 5) return ud(cpu, d);
  const v = peek(cpu, s, 0) & 0xffff;
  systemOps.loadSegment(cpu, d.op >> 3, v);
  adjustSp(cpu, s);
  return 1;
}

/** PUSH FS / PUSH GS (0F A0 / 0F A8). */
function pushFsGs(cpu: Cpu, d: Insn): number {
  push(cpu, d.osz, cpu.state.segSel[d.op === 0x1a0 ? 4 : 5], 0);
  return 1;
}

/** POP FS / POP GS (0F A1 / 0F A9). */
function popFsGs(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const v = peek(cpu, s, 0) & 0xffff;
  systemOps.loadSegment(cpu, d.op === 0x1a1 ? 4 : 5, v);
  adjustSp(cpu, s);
  return 1;
}

/** PUSHA/PUSHAD (60): #UD in 64-bit mode; the whole area is checked before rSP moves. */
function pusha(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  if (cpu.curMode === 5) return ud(cpu, d);
  const sp = getR(cpu, d, s, 4);
  const vals = [0, 1, 2, 3, -1, 5, 6, 7].map((r) => (r < 0 ? sp : getR(cpu, d, s, r)));
  // Check the whole area first so a fault leaves ESP unchanged.
  const ss = stackSize(cpu);
  const base = ss === 4 ? (R[4] - 8 * s) | 0 : (R[4] - 8 * s) & 0xffff;
  const lin = cpu.flat && ss === 4 ? base : cpu.segLin(2, base, 8 * s, true);
  for (let i = 0; i < 8; i++) cpu.wrS((lin + (7 - i) * s) | 0, 0, s, vals[i], 0);
  if (ss === 4) R[4] = base;
  else R[4] = (R[4] & ~0xffff) | base;
  return 1;
}

/** POPA/POPAD (61): #UD in 64-bit mode; the saved rSP slot is skipped. */
function popa(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (cpu.curMode === 5) return ud(cpu, d);
  const vals: number[] = [];
  for (let i = 0; i < 8; i++) vals.push(peek(cpu, s, i * s));
  for (let i = 0; i < 8; i++) if (i !== 3) setR(cpu, d, s, 7 - i, vals[i], 0);
  adjustSp(cpu, 8 * s);
  return 1;
}

/** PUSH imm (68 imm16/32, 6A imm8 sign-extended). */
function pushImm(cpu: Cpu, d: Insn): number {
  push(cpu, d.osz, d.imm, d.imm >> 31);
  return 1;
}

/** POP r/m (8F /0): the address is computed with the incremented stack pointer. */
function popRm(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  if ((d.reg & 7) !== 0) return ud(cpu, d);
  const v = peek(cpu, s, 0);
  const vh = cpu.tmpHi;
  // The address is computed with the incremented stack pointer (SDM POP).
  const saveLo = R[4],
    saveHi = H[4];
  adjustSp(cpu, s);
  try {
    if (d.mod === 3) setR(cpu, d, s, d.rm, v, vh);
    else {
      linOf(cpu, d, s, true);
      wrMem(cpu, s, v, vh);
    }
  } catch (e) {
    R[4] = saveLo;
    H[4] = saveHi;
    throw e;
  }
  return 1;
}

/** PUSHF (9C): #GP(0) in virtual-8086 mode with IOPL < 3; VM and RF are not pushed. */
function pushf(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (cpu.mode() === 6 && (cpu.rfl & 0x3000) !== 0x3000) cpu.fault(13, 0);
  const f = cpu.getRflags() & ~0x30000; // VM and RF are not pushed
  push(cpu, s, s === 2 ? f & 0xffff : f, 0);
  return 1;
}

/** POPF (9D). */
function popfOp(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const v = peek(cpu, s, 0);
  popf(cpu, v, s);
  adjustSp(cpu, s);
  return 1;
}

/** ENTER imm16, imm8 (C8). */
function enterOp(cpu: Cpu, d: Insn): number {
  enter(cpu, d);
  return 1;
}

/** LEAVE (C9): rSP = rBP, then pop rBP. */
function leave(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  // LEAVE: rSP = rBP, then pop rBP.
  const ss = stackSize(cpu);
  const saveLo = R[4],
    saveHi = H[4];
  if (ss === 8) {
    R[4] = R[5];
    H[4] = H[5];
  } else if (ss === 4) R[4] = R[5];
  else R[4] = (R[4] & ~0xffff) | (R[5] & 0xffff);
  try {
    const v = pop(cpu, s);
    setR(cpu, d, s, 5, v, cpu.tmpHi);
  } catch (e) {
    R[4] = saveLo;
    H[4] = saveHi;
    throw e;
  }
  return 1;
}

/** PUSH r (50-57, REX.B selects r8-r15). */
function pushReg(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const r = (d.op & 7) | ((d.rex & 1) << 3);
  const v = getR(cpu, d, s, r);
  push(cpu, s, v, cpu.tmpHi);
  return 1;
}

/** POP r (58-5F, REX.B selects r8-r15). */
function popReg(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const r = (d.op & 7) | ((d.rex & 1) << 3);
  const v = pop(cpu, s);
  setR(cpu, d, s, r, v, cpu.tmpHi);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerStack(): void {
  defineOp([0x06, 0x0e, 0x16, 0x1e], pushSeg);
  defineOp([0x07, 0x17, 0x1f], popSeg);
  defineOp([0x1a0, 0x1a8], pushFsGs);
  defineOp([0x1a1, 0x1a9], popFsGs);
  defineOp(0x60, pusha);
  defineOp(0x61, popa);
  defineOp([0x68, 0x6a], pushImm);
  defineOp(0x8f, popRm);
  defineOp(0x9c, pushf);
  defineOp(0x9d, popfOp);
  defineOp(0xc8, enterOp);
  defineOp(0xc9, leave);
  defineOp(range(0x50, 0x57), pushReg);
  defineOp(range(0x58, 0x5f), popReg);
}

/** Stack address size in bytes. */
function stackSize(cpu: Cpu): number {
  if (cpu.curMode === 5) return 8;
  return cpu.state.segAttr[2] & 0x400 ? 4 : 2;
}

/** Pushes `s` bytes (v, vh) at SS:rSP - s; rSP moves only when the write succeeded. */
export function push(cpu: Cpu, s: number, v: number, vh: number): void {
  const st = cpu.state;
  const ss = stackSize(cpu);
  if (ss === 8) {
    const t = (st.gprLo[4] >>> 0) - s;
    const lo = t | 0;
    const hi = (st.gprHi[4] - (t < 0 ? 1 : 0)) | 0;
    if ((hi << 16) >> 16 !== hi) cpu.fault(12, 0); // non-canonical stack address: #SS(0)
    cpu.wrS(lo, hi, s, v, vh);
    st.gprLo[4] = lo;
    st.gprHi[4] = hi;
    return;
  }
  const sp = ss === 4 ? (st.gprLo[4] - s) | 0 : (st.gprLo[4] - s) & 0xffff;
  const lin = cpu.flat && ss === 4 ? sp : cpu.segLin(2, sp, s, true);
  cpu.wrS(lin, 0, s, v, vh);
  if (ss === 4) st.gprLo[4] = sp;
  else st.gprLo[4] = (st.gprLo[4] & ~0xffff) | sp;
}

/** Reads the stack slot at depth `depth` bytes without popping. */
export function peek(cpu: Cpu, s: number, depth: number): number {
  const st = cpu.state;
  const ss = stackSize(cpu);
  if (ss === 8) {
    const t = (st.gprLo[4] >>> 0) + depth;
    const hi = (st.gprHi[4] + (t > 0xffffffff ? 1 : 0)) | 0;
    if ((hi << 16) >> 16 !== hi) cpu.fault(12, 0); // non-canonical stack address: #SS(0)
    return cpu.rdS(t | 0, hi, s);
  }
  const sp = ss === 4 ? (st.gprLo[4] + depth) | 0 : (st.gprLo[4] + depth) & 0xffff;
  const lin = cpu.flat && ss === 4 ? sp : cpu.segLin(2, sp, s, false);
  return cpu.rdS(lin, 0, s);
}

/** Adds `n` (may be negative) to SP/ESP/RSP per the stack address size. */
export function adjustSp(cpu: Cpu, n: number): void {
  const st = cpu.state;
  const ss = stackSize(cpu);
  if (ss === 8) {
    const t = (st.gprLo[4] >>> 0) + n;
    st.gprLo[4] = t | 0;
    st.gprHi[4] = (st.gprHi[4] + Math.floor(t / 4294967296)) | 0;
  } else if (ss === 4) st.gprLo[4] = (st.gprLo[4] + n) | 0;
  else st.gprLo[4] = (st.gprLo[4] & ~0xffff) | ((st.gprLo[4] + n) & 0xffff);
}

function pop(cpu: Cpu, s: number): number {
  const v = peek(cpu, s, 0);
  const h = cpu.tmpHi;
  adjustSp(cpu, s);
  cpu.tmpHi = h;
  return v;
}

function popf(cpu: Cpu, v: number, s: number): void {
  const st = cpu.state;
  const m = cpu.mode();
  const iopl = (cpu.rfl >> 12) & 3;
  if (m === 6 && iopl !== 3) cpu.fault(13, 0);
  // Writable bits: arithmetic, TF, DF, NT, AC, ID; IF if CPL <= IOPL; IOPL at CPL 0. VM/RF/VIP/VIF kept.
  let writable = ARITH_FLAGS | 0x100 | 0x400 | 0x4000 | 0x40000 | 0x200000;
  if (st.cpl <= iopl || m === 0) writable |= 0x200;
  if (st.cpl === 0 || m === 0) writable |= 0x3000;
  if (s === 2) writable &= 0xffff;
  const old = cpu.getRflags();
  cpu.setRflags((old & ~writable) | (v & writable));
}

function enter(cpu: Cpu, d: Insn): void {
  const st = cpu.state;
  const R = st.gprLo,
    H = st.gprHi;
  const s = d.osz;
  const size = d.imm & 0xffff;
  const level = d.imm2 & 31;
  const saveLo = [R[4], R[5]],
    saveHi = [H[4], H[5]];
  try {
    push(cpu, s, getR(cpu, d, s, 5), cpu.tmpHi);
    const frameLo = getR(cpu, d, s, 4);
    const frameHi = cpu.tmpHi;
    if (level > 0) {
      let bpLo = saveLo[1],
        bpHi = saveHi[1];
      for (let i = 1; i < level; i++) {
        const t = (bpLo >>> 0) - s;
        bpLo = t | 0;
        if (t < 0) bpHi = (bpHi - 1) | 0;
        let v: number, vh: number;
        if (cpu.curMode === 5) {
          v = cpu.rdS(bpLo, bpHi, s);
          vh = cpu.tmpHi;
        } else {
          v = cpu.rdS(cpu.flat ? bpLo : cpu.segLin(2, bpLo, s, false), 0, s);
          vh = 0;
        }
        push(cpu, s, v, vh);
      }
      push(cpu, s, frameLo, frameHi);
    }
    setR(cpu, d, s, 5, frameLo, frameHi);
    adjustSp(cpu, -size);
  } catch (e) {
    R[4] = saveLo[0];
    R[5] = saveLo[1];
    H[4] = saveHi[0];
    H[5] = saveHi[1];
    throw e;
  }
}
