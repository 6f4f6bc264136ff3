/**
 * Generic implementation of every instruction the core supports, one
 * decoded `Insn` at a time (Intel SDM vol. 2 instruction pages). Compiled
 * blocks call it for instructions they do not emit inline; it is also the
 * reference semantics for the less common operand sizes.
 *
 * Contract: faults go through `cpu.fault`/`cpu.pageFault` before any
 * architectural change (restartable), except REP string instructions,
 * which commit completed iterations (RCX/RSI/RDI) as the SDM requires.
 * Block-ending instructions set RIP themselves (default: the next
 * instruction). Returns 1 when the instruction retired, 0 when a REP string
 * instruction stopped early to be resumed (RIP left at it).
 */
import type { Cpu } from './cpu';
import { isTerminator } from './block-rules';
import { ARITH_FLAGS, LF_ADD, LF_DEC, LF_IMUL64, LF_INC, LF_LOGIC, LF_SUB, PARITY } from './flags';
import type { Insn } from './decoder';
import { systemOps } from './system';
import { DescOp } from './system-hooks';
import { insnName } from './names';
import { execX87 } from './fpu/x87';
import { execXsave } from './fpu/xsave';
import { execSimd } from './simd/index';
import {
  applySeg,
  ea,
  getR,
  linOf,
  mask,
  offsetOf,
  rdMem,
  rdRM,
  res,
  setR,
  sign,
  ud,
  wrMem,
  wrRM,
} from './ops/operands';
import { setLazy, setSome, szp } from './ops/arith-flags';
import { alu, incdec } from './ops/alu';
import { countZero, decCount } from './ops/string';
import { adjustSp, peek, push } from './ops/stack';
import { opHandlers } from './ops/table';
import { registerIntegerOps } from './ops/index';
export { getR, operandAddress, readRm, setR, undefinedOpcode, writeRm } from './ops/operands';

registerIntegerOps();

// ---------------- operand access ----------------

// ---------------- flags ----------------

// ---------------- ALU ----------------

// ---------------- shifts / rotates ----------------

// ---------------- 64-bit helpers (cold) ----------------

// ---------------- stack ----------------

// ---------------- control ----------------

// ---------------- #UD ----------------

/** Opcodes that accept LOCK with a memory destination (SDM vol. 2 LOCK). */
function lockable(d: Insn): boolean {
  if (!d.isMem) return false;
  const op = d.op;
  if (op < 0x40 && (op & 7) < 2 && op >> 3 !== 7) return true;
  if (op >= 0x80 && op <= 0x83) return (d.reg & 7) !== 7;
  if (op === 0x86 || op === 0x87) return true;
  if (op === 0xf6 || op === 0xf7) return (d.reg & 7) === 2 || (d.reg & 7) === 3;
  if (op === 0xfe || op === 0xff) return (d.reg & 7) < 2;
  if (op === 0x1ab || op === 0x1b3 || op === 0x1bb) return true;
  if (op === 0x1ba) return (d.reg & 7) >= 5;
  if (op === 0x1b0 || op === 0x1b1 || op === 0x1c0 || op === 0x1c1) return true;
  if (op === 0x1c7) return (d.reg & 7) === 1;
  return false;
}

function isSse(op: number): boolean {
  if (op >= 0x200) return true;
  if (op < 0x100) return false;
  const b = op & 0xff;
  return (
    (b >= 0x10 && b <= 0x17) ||
    (b >= 0x28 && b <= 0x2f) ||
    (b >= 0x50 && b <= 0x7f) ||
    b === 0xc2 ||
    b === 0xc3 ||
    (b >= 0xc4 && b <= 0xc6) ||
    b >= 0xd0 ||
    b === 0xb8 ||
    b === 0x0e ||
    b === 0x0f
  );
}

// ---------------- main dispatch ----------------

/** Executes one instruction; see the file comment for the contract. */
export function execInsn(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  cpu.insnRipLo = d.ripLo;
  cpu.insnRipHi = d.ripHi;
  cpu.insnLength = d.len;
  if (d.bad === 2) return cpu.fault(13, 0);
  if (d.bad) return ud(cpu, d);
  if (d.lock && !lockable(d)) return ud(cpu, d);
  if (isTerminator(d)) {
    st.ripLo = d.nextLo;
    st.ripHi = d.nextHi;
  }
  const h = opHandlers[d.op];
  if (h !== undefined) return h(cpu, d);
  const op = d.op;
  const s = d.osz;
  const R = st.gprLo;
  const H = st.gprHi;
  const long = cpu.curMode === 5;

  switch (op) {
    // ----- segment push/pop (32-bit modes) -----
    case 0x62:
      return ud(cpu, d); // BOUND (and EVEX) not supported
    case 0x9b:
      return execX87(cpu, d); // FWAIT
    case 0x9e:
      // SAHF: LAHF/SAHF are available in 64-bit mode (CPUID 80000001h ECX[0] is set).
      setSome(cpu, 0xd5, (R[0] >> 8) & 0xd5);
      return 1;
    case 0x9f:
      R[0] = (R[0] & ~0xff00) | (((cpu.getRflags() & 0xd7) | 2) << 8);
      return 1;
    case 0xd6:
      return ud(cpu, d);
    case 0xf5:
      setSome(cpu, 1, cpu.getCF() ^ 1);
      return 1;
    case 0xf8:
      setSome(cpu, 1, 0);
      return 1;
    case 0xf9:
      setSome(cpu, 1, 1);
      return 1;
    case 0xfc:
      cpu.rfl &= ~0x400;
      return 1;
    case 0xfd:
      cpu.rfl |= 0x400;
      return 1;
  }
  if (op >= 0xd8 && op <= 0xdf) return execX87(cpu, d);
  if (op >= 0x100) return exec0f(cpu, d);
  return ud(cpu, d);
}

// ---------------- string instructions ----------------

// ---------------- two-byte opcodes ----------------

function exec0f(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const R = st.gprLo;
  const H = st.gprHi;
  const op = d.op;
  const s = d.osz;
  const long = cpu.curMode === 5;
  switch (op) {
    case 0x10b:
    case 0x1b9:
    case 0x1ff:
      return ud(cpu, d); // UD2, UD1, UD0
    case 0x10d:
    case 0x118:
      if (d.mod === 3 && op === 0x10d) return ud(cpu, d);
      return 1; // PREFETCH*: no memory access, never faults
    case 0x119:
    case 0x11a:
    case 0x11b:
    case 0x11c:
    case 0x11d:
    case 0x11e:
    case 0x11f:
      return 1; // hint NOPs
  }
  if (isSse(op) || op === 0x177) return execSimd(cpu, d);
  return ud(cpu, d);
}
