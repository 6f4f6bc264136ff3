/**
 * Flag control, hints and reserved encodings (Intel SDM vol. 1 §7.3.14,
 * §7.3.16; vol. 2 CLC/STC/CMC/CLD/STD, LAHF/SAHF, PREFETCHh, NOP r/m (hint
 * space 0F 19-1F), UD0/UD1/UD2).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { ud } from './operands';
import { setSome } from './arith-flags';
import { defineOp, range } from './table';

/** SAHF (9E): SF ZF AF PF CF from AH (available in 64-bit mode: CPUID 80000001h ECX[0] is set). */
function sahf(cpu: Cpu): number {
  // SAHF: LAHF/SAHF are available in 64-bit mode (CPUID 80000001h ECX[0] is set).
  setSome(cpu, 0xd5, (cpu.state.gprLo[0] >> 8) & 0xd5);
  return 1;
}

/** LAHF (9F): AH = SF ZF 0 AF 0 PF 1 CF. */
function lahf(cpu: Cpu): number {
  const R = cpu.state.gprLo;
  R[0] = (R[0] & ~0xff00) | (((cpu.getRflags() & 0xd7) | 2) << 8);
  return 1;
}

/** CMC (F5). */
function cmc(cpu: Cpu): number {
  setSome(cpu, 1, cpu.getCF() ^ 1);
  return 1;
}

/** CLC (F8). */
function clc(cpu: Cpu): number {
  setSome(cpu, 1, 0);
  return 1;
}

/** STC (F9). */
function stc(cpu: Cpu): number {
  setSome(cpu, 1, 1);
  return 1;
}

/** CLD (FC). */
function cld(cpu: Cpu): number {
  cpu.rfl &= ~0x400;
  return 1;
}

/** STD (FD). */
function std(cpu: Cpu): number {
  cpu.rfl |= 0x400;
  return 1;
}

/** PREFETCH (0F 0D, memory only) / PREFETCHh (0F 18): no memory access, never faults. */
function prefetch(cpu: Cpu, d: Insn): number {
  if (d.mod === 3 && d.op === 0x10d) return ud(cpu, d);
  return 1; // PREFETCH*: no memory access, never faults
}

/** Hint NOPs (0F 19-1F, NOP r/m). */
function hintNop(): number {
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerMisc(): void {
  defineOp(0x9e, sahf);
  defineOp(0x9f, lahf);
  defineOp(0xf5, cmc);
  defineOp(0xf8, clc);
  defineOp(0xf9, stc);
  defineOp(0xfc, cld);
  defineOp(0xfd, std);
  defineOp([0x10d, 0x118], prefetch);
  defineOp(range(0x119, 0x11f), hintNop);
  // BOUND (62; EVEX in 64-bit mode), SALC (D6), UD2/UD1/UD0: #UD, named in exitDetail.
  defineOp([0x62, 0xd6, 0x10b, 0x1b9, 0x1ff], ud);
}
