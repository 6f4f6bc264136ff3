/**
 * String instructions (Intel SDM vol. 1 §7.3.9; vol. 2 MOVS, CMPS, SCAS,
 * LODS, STOS, INS, OUTS, REP/REPE/REPNE). REP forms run at most `REP_CHUNK`
 * iterations per call and return 0 with RIP at the instruction to be
 * resumed; completed iterations are committed (RCX/RSI/RDI), as the SDM
 * requires for a fault part-way.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { systemOps } from '../system';
import { applySeg, ea, getR, rdMem, setR, wrMem } from './operands';
import { alu } from './alu';
import { defineOp, OpPfx, range } from './table';

/** Registers this file's opcodes (see table.ts). */
export function registerString(): void {
  defineOp([...range(0x6c, 0x6f), ...range(0xa4, 0xa7), ...range(0xaa, 0xaf)], stringOp, { pfx: OpPfx.REP });
}

/** Iterations of a REP string instruction done per call before yielding to the run loop. */
const REP_CHUNK = 4096;

/** Count register (CX/ECX/RCX per address size) is zero. */
export function countZero(cpu: Cpu, asz: number): boolean {
  const R = cpu.state.gprLo;
  if (asz === 2) return (R[1] & 0xffff) === 0;
  if (asz === 4) return R[1] === 0;
  return (R[1] | cpu.state.gprHi[1]) === 0;
}

/** Decrements the count register (CX/ECX/RCX per address size `asz`; ECX in 64-bit mode zero-extends). */
export function decCount(cpu: Cpu, asz: number): void {
  const st = cpu.state;
  if (asz === 2) st.gprLo[1] = (st.gprLo[1] & ~0xffff) | ((st.gprLo[1] - 1) & 0xffff);
  else if (asz === 4) {
    st.gprLo[1] = (st.gprLo[1] - 1) | 0;
    if (cpu.curMode === 5) st.gprHi[1] = 0;
  } else {
    if (st.gprLo[1] === 0) st.gprHi[1] = (st.gprHi[1] - 1) | 0;
    st.gprLo[1] = (st.gprLo[1] - 1) | 0;
  }
}

/** Advances index register r by delta per address size. */
function stepIndex(cpu: Cpu, r: number, asz: number, delta: number): void {
  const st = cpu.state;
  if (asz === 2) st.gprLo[r] = (st.gprLo[r] & ~0xffff) | ((st.gprLo[r] + delta) & 0xffff);
  else if (asz === 4) {
    st.gprLo[r] = (st.gprLo[r] + delta) | 0;
    if (cpu.curMode === 5) st.gprHi[r] = 0;
  } else {
    const t = (st.gprLo[r] >>> 0) + delta;
    st.gprLo[r] = t | 0;
    st.gprHi[r] = (st.gprHi[r] + Math.floor(t / 4294967296)) | 0;
  }
}

/** Linear address of string operand: seg:rSI or ES:rDI. */
function strAddr(cpu: Cpu, d: Insn, src: boolean, size: number, write: boolean): void {
  const st = cpu.state;
  const r = src ? 6 : 7;
  if (d.asz === 8) {
    ea.lo = st.gprLo[r];
    ea.hi = st.gprHi[r];
  } else {
    ea.lo = d.asz === 4 ? st.gprLo[r] : st.gprLo[r] & 0xffff;
    ea.hi = 0;
  }
  const seg = src ? (d.seg >= 0 ? d.seg : 3) : 0;
  applySeg(cpu, seg, size, write);
}

function stringOp(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const R = st.gprLo;
  const op = d.op;
  const sz = op & 1 ? d.osz : 1;
  const delta = cpu.rfl & 0x400 ? -sz : sz;
  const rep = d.rep !== 0;
  const isCmp = op === 0xa6 || op === 0xa7 || op === 0xae || op === 0xaf;
  const isIo = op >= 0x6c && op <= 0x6f;
  if (isIo) {
    const port = R[2] & 0xffff;
    cpu.exitPrivPort = -1;
    cpu.exitPrivSize = sz;
    systemOps.ioCheck(cpu, op < 0x6e ? 9 : 10, port, sz);
  }
  let iter = 0;
  if (rep && d.asz === 4 && cpu.curMode === 5 && countZero(cpu, 4)) {
    // Intel (the CPUID vendor): with ECX = 0 a 32-bit-address REP still writes ECX and the index registers
    // it uses as 32-bit values, zeroing their upper halves; AMD leaves them (test/helpers/vendor-table.ts
    // row rep-addr32-count0)
    st.gprHi[1] = 0;
    if (op !== 0xaa && op !== 0xab && op !== 0xae && op !== 0xaf && op !== 0x6c && op !== 0x6d)
      st.gprHi[6] = 0;
    if (op !== 0xac && op !== 0xad && op !== 0x6e && op !== 0x6f) st.gprHi[7] = 0;
    return 1;
  }
  // Intel keeps the instruction's input flags when REPE/REPNE CMPS/SCAS faults part-way; AMD reports the
  // last completed iteration's (vendor-table row rep-cmps-fault-flags)
  const entryArith = rep && isCmp ? cpu.arith() : 0;
  try {
    return stringLoop(cpu, d, op, sz, delta, rep, isCmp, iter);
  } catch (e) {
    if (rep && isCmp) cpu.setArith(entryArith);
    throw e;
  }
}

function stringLoop(
  cpu: Cpu,
  d: Insn,
  op: number,
  sz: number,
  delta: number,
  rep: boolean,
  isCmp: boolean,
  iter: number,
): number {
  const st = cpu.state;
  const R = st.gprLo;
  for (;;) {
    if (rep && countZero(cpu, d.asz)) break;
    if (iter >= REP_CHUNK) {
      // Yield; the instruction resumes where it stopped.
      st.ripLo = d.ripLo;
      st.ripHi = d.ripHi;
      cpu.repWork += iter;
      return 0;
    }
    switch (op) {
      case 0xa4:
      case 0xa5: {
        strAddr(cpu, d, true, sz, false);
        const v = rdMem(cpu, sz);
        const vh = cpu.tmpHi;
        strAddr(cpu, d, false, sz, true);
        wrMem(cpu, sz, v, vh);
        stepIndex(cpu, 6, d.asz, delta);
        stepIndex(cpu, 7, d.asz, delta);
        break;
      }
      case 0xaa:
      case 0xab: {
        strAddr(cpu, d, false, sz, true);
        wrMem(cpu, sz, getR(cpu, d, sz, 0), cpu.tmpHi);
        stepIndex(cpu, 7, d.asz, delta);
        break;
      }
      case 0xac:
      case 0xad: {
        strAddr(cpu, d, true, sz, false);
        const v = rdMem(cpu, sz);
        setR(cpu, d, sz, 0, v, cpu.tmpHi);
        stepIndex(cpu, 6, d.asz, delta);
        break;
      }
      case 0xa6:
      case 0xa7: {
        strAddr(cpu, d, true, sz, false);
        const a = rdMem(cpu, sz);
        const ah = cpu.tmpHi;
        strAddr(cpu, d, false, sz, false);
        const b = rdMem(cpu, sz);
        alu(cpu, 7, sz, a, ah, b, cpu.tmpHi);
        stepIndex(cpu, 6, d.asz, delta);
        stepIndex(cpu, 7, d.asz, delta);
        break;
      }
      case 0xae:
      case 0xaf: {
        strAddr(cpu, d, false, sz, false);
        const b = rdMem(cpu, sz);
        const bh = cpu.tmpHi;
        const a = getR(cpu, d, sz, 0);
        alu(cpu, 7, sz, a, cpu.tmpHi, b, bh);
        stepIndex(cpu, 7, d.asz, delta);
        break;
      }
      case 0x6c:
      case 0x6d: {
        strAddr(cpu, d, false, sz, true);
        // Probe the destination before reading the port (a fault must not consume input).
        cpu.xlate(ea.lo, ea.hi, 1, st.cpl === 3);
        const v = systemOps.in(cpu, R[2] & 0xffff, sz);
        wrMem(cpu, sz, v, 0);
        stepIndex(cpu, 7, d.asz, delta);
        break;
      }
      case 0x6e:
      case 0x6f: {
        strAddr(cpu, d, true, sz, false);
        const v = rdMem(cpu, sz);
        systemOps.out(cpu, R[2] & 0xffff, sz, v);
        stepIndex(cpu, 6, d.asz, delta);
        break;
      }
    }
    iter++;
    if (!rep) break;
    decCount(cpu, d.asz);
    if (isCmp) {
      const zf = (cpu.arith() & 0x40) !== 0;
      if (d.rep === 0xf3 && !zf) break;
      if (d.rep === 0xf2 && zf) break;
    }
  }
  if (rep) cpu.repWork += iter;
  return 1;
}
