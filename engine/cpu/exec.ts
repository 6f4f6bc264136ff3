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
    case 0xe4:
    case 0xe5:
    case 0xec:
    case 0xed: {
      const sz = op & 1 ? (s === 2 ? 2 : 4) : 1;
      const port = op < 0xe8 ? d.imm & 0xff : R[2] & 0xffff;
      cpu.exitPrivPort = op < 0xe8 ? port : -1;
      cpu.exitPrivSize = sz;
      systemOps.ioCheck(cpu, 7, port, sz);
      const v = systemOps.in(cpu, port, sz);
      setR(cpu, d, sz, 0, v, 0);
      return 1;
    }
    case 0xe6:
    case 0xe7:
    case 0xee:
    case 0xef: {
      const sz = op & 1 ? (s === 2 ? 2 : 4) : 1;
      const port = op < 0xe8 ? d.imm & 0xff : R[2] & 0xffff;
      cpu.exitPrivPort = op < 0xe8 ? port : -1;
      cpu.exitPrivSize = sz;
      systemOps.ioCheck(cpu, 8, port, sz);
      systemOps.out(cpu, port, sz, getR(cpu, d, sz, 0));
      return 1;
    }
    case 0xf4:
      cpu.exitPrivOp = 12;
      systemOps.hlt(cpu);
      return 1;
    case 0xf5:
      setSome(cpu, 1, cpu.getCF() ^ 1);
      return 1;
    case 0xf8:
      setSome(cpu, 1, 0);
      return 1;
    case 0xf9:
      setSome(cpu, 1, 1);
      return 1;
    case 0xfa:
      cpu.exitPrivOp = 18;
      systemOps.cli(cpu);
      return 1;
    case 0xfb:
      cpu.exitPrivOp = 19;
      systemOps.sti(cpu);
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
    case 0x100:
      return group6(cpu, d);
    case 0x101:
      return group7(cpu, d);
    case 0x102:
    case 0x103: {
      if (cpu.curMode === 0 || cpu.curMode === 6) return ud(cpu, d);
      const sel = rdRM(cpu, d, 2, false) & 0xffff;
      const v = op === 0x102 ? systemOps.lar(cpu, sel) : systemOps.lsl(cpu, sel);
      if (v === -1) setSome(cpu, 0x40, 0);
      else {
        setSome(cpu, 0x40, 0x40);
        setR(cpu, d, s, d.reg, v, 0);
      }
      return 1;
    }
    case 0x105:
      if (cpu.interceptSyscall) return cpu.exitAtBoundary(3, d);
      systemOps.syscall(cpu);
      return 1;
    case 0x106:
      cpu.exitPrivOp = 11;
      systemOps.clts(cpu);
      return 1;
    case 0x107:
      cpu.exitPrivOp = 26;
      systemOps.sysret(cpu, s === 8 ? 8 : 4);
      return 1;
    case 0x108:
      cpu.exitPrivOp = 21;
      systemOps.invd(cpu);
      return 1;
    case 0x109:
      cpu.exitPrivOp = 20;
      systemOps.wbinvd(cpu);
      return 1;
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
    case 0x120:
    case 0x121:
    case 0x122:
    case 0x123: {
      // MOV r, CRn / DRn and back: operand is always the register (mod ignored).
      const n = d.reg;
      const rr = d.rm;
      if (op === 0x121 || op === 0x123 ? n > 7 : n !== 0 && n !== 2 && n !== 3 && n !== 4 && n !== 8)
        return ud(cpu, d);
      cpu.exitPrivReg = rr;
      cpu.exitPrivCr = n;
      if (op === 0x120) {
        cpu.exitPrivOp = 1;
        const v = systemOps.movFromCr(cpu, n, rr);
        if (long) setR(cpu, d, 8, rr, v, cpu.tmpHi);
        else setR(cpu, d, 4, rr, v, 0);
      } else if (op === 0x122) {
        cpu.exitPrivOp = 2;
        systemOps.movToCr(cpu, n, R[rr], long ? H[rr] : 0, rr);
      } else if (op === 0x121) {
        cpu.exitPrivOp = 3;
        const v = systemOps.movFromDr(cpu, n, rr);
        if (long) setR(cpu, d, 8, rr, v, cpu.tmpHi);
        else setR(cpu, d, 4, rr, v, 0);
      } else {
        cpu.exitPrivOp = 4;
        systemOps.movToDr(cpu, n, R[rr], long ? H[rr] : 0, rr);
      }
      return 1;
    }
    case 0x130:
      cpu.exitPrivOp = 6;
      systemOps.wrmsr(cpu);
      return 1;
    case 0x131:
      cpu.exitPrivOp = 23;
      systemOps.rdtsc(cpu);
      return 1;
    case 0x132:
      cpu.exitPrivOp = 5;
      systemOps.rdmsr(cpu);
      return 1;
    case 0x133:
      cpu.exitPrivOp = 22;
      systemOps.rdpmc(cpu);
      return 1;
    case 0x134:
      if (cpu.interceptSysenter) return cpu.exitAtBoundary(4, d);
      systemOps.sysenter(cpu);
      return 1;
    case 0x135:
      cpu.exitPrivOp = 27;
      systemOps.sysexit(cpu, s === 8 ? 8 : 4);
      return 1;
    case 0x1a2:
      systemOps.cpuid(cpu);
      return 1;
    case 0x1ae: {
      const g = d.reg & 7;
      if (d.rep) return ud(cpu, d); // F2/F3 forms (RDFSBASE..., PTWRITE, UMONITOR...) not supported
      if (d.mod === 3) {
        if (g >= 5) return 1; // LFENCE / MFENCE / SFENCE
        return ud(cpu, d); // RDFSBASE etc. not supported
      }
      if (g === 7) {
        // CLFLUSH: checks the address like a read.
        linOf(cpu, d, 1, false);
        rdMem(cpu, 1);
        return 1;
      }
      return execXsave(cpu, d); // FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE/XRSTOR/XSAVEOPT
    }
  }
  if (isSse(op) || op === 0x177) return execSimd(cpu, d);
  return ud(cpu, d);
}

function group6(cpu: Cpu, d: Insn): number {
  const g = d.reg & 7;
  if (cpu.curMode === 0 || cpu.curMode === 6) return ud(cpu, d);
  switch (g) {
    case 0:
    case 1: {
      const v = g === 0 ? systemOps.storeLdtr(cpu) : systemOps.storeTr(cpu);
      if (d.mod === 3) setR(cpu, d, d.osz, d.rm, v, 0);
      else {
        linOf(cpu, d, 2, true);
        wrMem(cpu, 2, v, 0);
      }
      return 1;
    }
    case 2:
    case 3: {
      const sel = rdRM(cpu, d, 2, false) & 0xffff;
      cpu.exitPrivOp = g === 2 ? 16 : 17;
      systemOps.descriptorTableOp(cpu, g === 2 ? DescOp.LLDT : DescOp.LTR, sel, 0, d.osz);
      return 1;
    }
    case 4:
    case 5: {
      const sel = rdRM(cpu, d, 2, false) & 0xffff;
      const ok = g === 4 ? systemOps.verr(cpu, sel) : systemOps.verw(cpu, sel);
      setSome(cpu, 0x40, ok ? 0x40 : 0);
      return 1;
    }
  }
  return ud(cpu, d);
}

function group7(cpu: Cpu, d: Insn): number {
  const g = d.reg & 7;
  const st = cpu.state;
  if (d.mod === 3) {
    const rm = d.rm & 7;
    if (g === 7 && rm === 0) {
      if (cpu.curMode !== 5) return ud(cpu, d);
      cpu.exitPrivOp = 25;
      systemOps.swapgs(cpu);
      return 1;
    }
    if (g === 7 && rm === 1) {
      systemOps.rdtscp(cpu);
      return 1;
    }
    if (g === 4) {
      const v = systemOps.smsw(cpu);
      setR(cpu, d, d.osz, d.rm, v, 0);
      return 1;
    }
    if (g === 6) {
      cpu.exitPrivOp = 24;
      systemOps.lmsw(cpu, getR(cpu, d, 2, d.rm));
      return 1;
    }
    if (g === 2 && (rm === 0 || rm === 1)) {
      // XGETBV/XSETBV (engine/cpu/system.ts)
      return (rm === 0 ? systemOps.xgetbv : systemOps.xsetbv)(cpu, d.p66 || d.rep !== 0);
    }
    return ud(cpu, d);
  }
  switch (g) {
    case 0:
    case 1:
    case 2:
    case 3: {
      const opSize = cpu.curMode === 5 ? 8 : d.osz;
      linOf(cpu, d, opSize === 8 ? 10 : 6, g < 2);
      cpu.exitPrivOp = g === 2 ? 14 : g === 3 ? 15 : 99;
      cpu.exitPrivLinLo = ea.lo;
      cpu.exitPrivLinHi = ea.hi;
      const ops = [DescOp.SGDT, DescOp.SIDT, DescOp.LGDT, DescOp.LIDT];
      systemOps.descriptorTableOp(cpu, ops[g], ea.lo, ea.hi, opSize);
      return 1;
    }
    case 4: {
      const v = systemOps.smsw(cpu);
      linOf(cpu, d, 2, true);
      wrMem(cpu, 2, v, 0);
      return 1;
    }
    case 6: {
      const v = rdRM(cpu, d, 2, false);
      cpu.exitPrivOp = 24;
      systemOps.lmsw(cpu, v);
      return 1;
    }
    case 7: {
      linOf(cpu, d, 1, false);
      cpu.exitPrivOp = 13;
      cpu.exitPrivLinLo = ea.lo;
      cpu.exitPrivLinHi = ea.hi;
      systemOps.invlpg(cpu, ea.lo, ea.hi);
      return 1;
    }
  }
  void st;
  return ud(cpu, d);
}
