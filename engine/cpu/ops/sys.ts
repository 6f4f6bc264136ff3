/**
 * System instructions (Intel SDM vol. 2; vol. 3 ch. 2-5): port I/O, HLT,
 * CLI/STI, group 6 (SLDT/STR/LLDT/LTR/VERR/VERW), group 7
 * (SGDT/SIDT/LGDT/LIDT/SMSW/LMSW/INVLPG/SWAPGS/RDTSCP/XGETBV/XSETBV),
 * LAR/LSL, SYSCALL/SYSRET/SYSENTER/SYSEXIT, CLTS, INVD/WBINVD, MOV to/from
 * CRn/DRn, WRMSR/RDMSR/RDTSC/RDPMC, CPUID and group 15 (fences, CLFLUSH,
 * FXSAVE/XSAVE... through fpu/xsave.ts). The checks and effects live in
 * ../system.ts (`systemOps`); these handlers decode operands and record
 * `cpu.exitPriv*` for a driver that intercepts privileged operations.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { systemOps } from '../system';
import { DescOp } from '../system-hooks';
import { execXsave } from '../fpu/xsave';
import { ea, getR, linOf, rdMem, rdRM, setR, ud, wrMem } from './operands';
import { setSome } from './arith-flags';
import { defineOp, OpPfx, range, Unit } from './table';

/** IN AL/eAX, imm8 / DX (E4/E5/EC/ED). */
function inPort(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const R = cpu.state.gprLo;
  const sz = op & 1 ? (s === 2 ? 2 : 4) : 1;
  const port = op < 0xe8 ? d.imm & 0xff : R[2] & 0xffff;
  cpu.exitPrivPort = op < 0xe8 ? port : -1;
  cpu.exitPrivSize = sz;
  systemOps.ioCheck(cpu, 7, port, sz);
  const v = systemOps.in(cpu, port, sz);
  setR(cpu, d, sz, 0, v, 0);
  return 1;
}

/** OUT imm8 / DX, AL/eAX (E6/E7/EE/EF). */
function outPort(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const R = cpu.state.gprLo;
  const sz = op & 1 ? (s === 2 ? 2 : 4) : 1;
  const port = op < 0xe8 ? d.imm & 0xff : R[2] & 0xffff;
  cpu.exitPrivPort = op < 0xe8 ? port : -1;
  cpu.exitPrivSize = sz;
  systemOps.ioCheck(cpu, 8, port, sz);
  systemOps.out(cpu, port, sz, getR(cpu, d, sz, 0));
  return 1;
}

/** HLT (F4). */
function hlt(cpu: Cpu): number {
  cpu.exitPrivOp = 12;
  systemOps.hlt(cpu);
  return 1;
}

/** CLI (FA). */
function cli(cpu: Cpu): number {
  cpu.exitPrivOp = 18;
  systemOps.cli(cpu);
  return 1;
}

/** STI (FB). */
function sti(cpu: Cpu): number {
  cpu.exitPrivOp = 19;
  systemOps.sti(cpu);
  return 1;
}

/** LAR / LSL r, r/m16 (0F 02/03): ZF = 1 and the result when the selector passes; #UD in real and V86 mode. */
function larLsl(cpu: Cpu, d: Insn): number {
  const op = d.op;
  if (cpu.curMode === 0 || cpu.curMode === 6) return ud(cpu, d);
  const sel = rdRM(cpu, d, 2, false) & 0xffff;
  const v = op === 0x102 ? systemOps.lar(cpu, sel) : systemOps.lsl(cpu, sel);
  if (v === -1) setSome(cpu, 0x40, 0);
  else {
    setSome(cpu, 0x40, 0x40);
    setR(cpu, d, d.osz, d.reg, v, 0);
  }
  return 1;
}

/** SYSCALL (0F 05): an intercepted SYSCALL exits at the instruction boundary. */
function syscall(cpu: Cpu, d: Insn): number {
  if (cpu.interceptSyscall) return cpu.exitAtBoundary(3, d);
  systemOps.syscall(cpu);
  return 1;
}

/** CLTS (0F 06). */
function clts(cpu: Cpu): number {
  cpu.exitPrivOp = 11;
  systemOps.clts(cpu);
  return 1;
}

/** SYSRET (0F 07; REX.W: to 64-bit code). */
function sysret(cpu: Cpu, d: Insn): number {
  cpu.exitPrivOp = 26;
  systemOps.sysret(cpu, d.osz === 8 ? 8 : 4);
  return 1;
}

/** INVD (0F 08). */
function invd(cpu: Cpu): number {
  cpu.exitPrivOp = 21;
  systemOps.invd(cpu);
  return 1;
}

/** WBINVD (0F 09). */
function wbinvd(cpu: Cpu): number {
  cpu.exitPrivOp = 20;
  systemOps.wbinvd(cpu);
  return 1;
}

/** MOV r, CRn / MOV CRn, r / MOV r, DRn / MOV DRn, r (0F 20-23): the operand is always the register (mod ignored). */
function movCrDr(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  const long = cpu.curMode === 5;
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

/** WRMSR (0F 30). */
function wrmsr(cpu: Cpu): number {
  cpu.exitPrivOp = 6;
  systemOps.wrmsr(cpu);
  return 1;
}

/** RDTSC (0F 31). */
function rdtsc(cpu: Cpu): number {
  cpu.exitPrivOp = 23;
  systemOps.rdtsc(cpu);
  return 1;
}

/** RDMSR (0F 32). */
function rdmsr(cpu: Cpu): number {
  cpu.exitPrivOp = 5;
  systemOps.rdmsr(cpu);
  return 1;
}

/** RDPMC (0F 33). */
function rdpmc(cpu: Cpu): number {
  cpu.exitPrivOp = 22;
  systemOps.rdpmc(cpu);
  return 1;
}

/** SYSENTER (0F 34): an intercepted SYSENTER exits at the instruction boundary. */
function sysenter(cpu: Cpu, d: Insn): number {
  if (cpu.interceptSysenter) return cpu.exitAtBoundary(4, d);
  systemOps.sysenter(cpu);
  return 1;
}

/** SYSEXIT (0F 35; REX.W: to 64-bit code). */
function sysexit(cpu: Cpu, d: Insn): number {
  cpu.exitPrivOp = 27;
  systemOps.sysexit(cpu, d.osz === 8 ? 8 : 4);
  return 1;
}

/** CPUID (0F A2). */
function cpuid(cpu: Cpu): number {
  systemOps.cpuid(cpu);
  return 1;
}

/** Group 15 (0F AE): LFENCE/MFENCE/SFENCE, CLFLUSH, and the FXSAVE/XSAVE family (fpu/xsave.ts); F2/F3 forms #UD. */
function group15(cpu: Cpu, d: Insn): number {
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

/** Registers this file's opcodes (see table.ts). */
export function registerSys(): void {
  const sys = { unit: Unit.SYSTEM };
  defineOp([0xe4, 0xe5, 0xec, 0xed], inPort, sys);
  defineOp([0xe6, 0xe7, 0xee, 0xef], outPort, sys);
  defineOp(0xf4, hlt, sys);
  defineOp(0xfa, cli, sys);
  defineOp(0xfb, sti, sys);
  defineOp(0x100, group6, sys);
  defineOp(0x101, group7, sys);
  defineOp([0x102, 0x103], larLsl, sys);
  defineOp(0x105, syscall, sys);
  defineOp(0x106, clts, sys);
  defineOp(0x107, sysret, sys);
  defineOp(0x108, invd, sys);
  defineOp(0x109, wbinvd, sys);
  defineOp(range(0x120, 0x123), movCrDr, sys);
  defineOp(0x130, wrmsr, sys);
  defineOp(0x131, rdtsc, sys);
  defineOp(0x132, rdmsr, sys);
  defineOp(0x133, rdpmc, sys);
  defineOp(0x134, sysenter, sys);
  defineOp(0x135, sysexit, sys);
  defineOp(0x1a2, cpuid, sys);
  defineOp(0x1ae, group15, { unit: Unit.SYSTEM, pfx: OpPfx.NO_REP });
}

/** Group 6 (0F 00): SLDT/STR/LLDT/LTR/VERR/VERW; #UD in real and V86 mode. */
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

/** Group 7 (0F 01): descriptor-table loads/stores, SMSW/LMSW, INVLPG, SWAPGS, RDTSCP, XGETBV/XSETBV. */
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
