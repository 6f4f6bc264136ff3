/**
 * Engine side of the CPU differential tests: a bare test machine (no Xen)
 * with flat segments and identity paging, in 64-bit long mode or 32-bit
 * protected mode with PAE paging, running at CPL 0 with every exception
 * intercepted. Linear = machine address for the first `IDENTITY_BYTES`.
 *
 * Built only through the CPU's public contract (engine/cpu/api.ts,
 * state.ts): `new Cpu(mem)`, CR0/CR3/CR4/EFER in `state`, `setSegmentRaw`,
 * `stateChanged`, `run`.
 *
 * Page tables (4 KiB pages, all present + writable + user) live above the
 * identity-mapped range, so nothing a case does can reach them.
 */
import { Cpu } from '../../engine/cpu/cpu';
import { ExitReason } from '../../engine/cpu/api';
import { MachineMemory } from '../../engine/memory/machine-memory';
import { GS_BASE64, type Bitness } from './native-harness';

/** Bytes identity-mapped from linear 0. */
export const IDENTITY_BYTES = 16 << 20;
const PT_BASE = IDENTITY_BYTES; // page-table frames start here (machine address)

/** Segment attribute words (`SegAttr`): P, S, DPL 0, type; L / D/B / G in bits 8-11. */
const CODE64 = 0x9b | 0x200 | 0x800;
const CODE32 = 0x9b | 0x400 | 0x800;
const CODE16 = 0x9b | 0x800;
const DATA32 = 0x93 | 0x400 | 0x800;
/** DPL field of a segment attribute word. */
const DPL3 = 3 << 5;

export interface TestMachine {
  cpu: Cpu;
  mem: MachineMemory;
  bitness: Bitness;
}

/**
 * Creates a CPL-0 flat machine of `bitness` (64: IA-32e 64-bit mode; 32:
 * protected mode, PAE paging) with `IDENTITY_BYTES` of identity-mapped RAM
 * and `interceptExceptions` = all vectors (64-bit: CS/DS/ES/SS hidden bases
 * are junk, which 64-bit mode ignores, and GS base = `GS_BASE64`, as in the
 * native harness); the 4 KiB pages at the linear
 * addresses in `unmapped` are not present. See `resetSegments` for 16-bit
 * code and CPL 3.
 */
export function createMachine(bitness: Bitness, unmapped: number[] = []): TestMachine {
  const ptFrames = 16;
  const mem = new MachineMemory(IDENTITY_BYTES / 4096 + ptFrames);
  const cpu = new Cpu(mem);
  const s = cpu.state;
  const nPt = IDENTITY_BYTES / (2 << 20); // page tables, 512 entries x 4 KiB each
  const ptAddr = (i: number) => PT_BASE + 0x3000 + i * 0x1000;
  for (let i = 0; i < nPt; i++) {
    for (let e = 0; e < 512; e++) {
      const frame = (i * 512 + e) * 0x1000;
      mem.write64(ptAddr(i) + e * 8, frame | 0x7, 0);
    }
  }
  // Pages left not-present (page-fault cases).
  for (const lin of unmapped)
    mem.write64(ptAddr(Math.floor(lin / (2 << 20))) + ((lin >>> 12) & 511) * 8, 0, 0);
  const pd = PT_BASE + 0x2000;
  for (let i = 0; i < nPt; i++) mem.write64(pd + i * 8, ptAddr(i) | 0x7, 0);
  const pdpt = PT_BASE + 0x1000;
  if (bitness === 64) {
    const pml4 = PT_BASE;
    mem.write64(pml4, pdpt | 0x7, 0);
    mem.write64(pdpt, pd | 0x7, 0);
    s.cr3Lo = pml4;
    s.efer = 0x100 | 0x400 | 0x1; // LME, LMA, SCE
  } else {
    // PAE PDPTEs: only P (bit 0) is allowed among the low control bits.
    mem.write64(pdpt, pd | 0x1, 0);
    s.cr3Lo = pdpt;
    s.efer = 0;
  }
  s.cr4 = 0x20; // PAE
  s.cr0 = 0x80000000 | 0x1 | 0x10 | 0x20 | 0; // PG, PE, ET, NE
  s.cpl = 0;
  resetSegments(cpu, bitness, 0);
  if (bitness === 64) {
    // 64-bit mode ignores the bases of CS, DS, ES and SS (SDM vol. 3 §3.4.4): give them junk to prove it.
    for (const seg of [0, 1, 2, 3]) {
      const st = cpu.state;
      cpu.setSegmentRaw(seg, st.segSel[seg], 0x12345000, 0, st.segLimit[seg], st.segAttr[seg]);
    }
    cpu.setSegmentRaw(5, 0, GS_BASE64, 0, 0xffffffff, DATA32);
  }
  cpu.interceptExceptions = -1;
  cpu.stateChanged();
  cpu.flushCodeCache();
  return { cpu, mem, bitness };
}

/**
 * Loads flat segments (base 0, limit 4 GiB) for code of `codeBits` (16, 32,
 * 64) at privilege level `cpl` (0 or 3): CS = 0x08|cpl, data = 0x10|cpl.
 */
export function resetSegments(cpu: Cpu, codeBits: 16 | 32 | 64, cpl: 0 | 3): void {
  const dpl = cpl === 3 ? DPL3 : 0;
  const code = codeBits === 64 ? CODE64 : codeBits === 32 ? CODE32 : CODE16;
  for (const seg of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(seg, 0x10 | cpl, 0, 0, 0xffffffff, DATA32 | dpl);
  cpu.setSegmentRaw(1, 0x08 | cpl, 0, 0, 0xffffffff, code | dpl);
  cpu.state.cpl = cpl;
  cpu.stateChanged();
}

/** Sets GPR `i` from a BigInt (64-bit two's complement). */
export function setGpr(cpu: Cpu, i: number, v: bigint): void {
  cpu.state.gprLo[i] = Number(v & 0xffffffffn) | 0;
  cpu.state.gprHi[i] = Number((v >> 32n) & 0xffffffffn) | 0;
}

/** GPR `i` as an unsigned 64-bit BigInt. */
export function getGpr(cpu: Cpu, i: number): bigint {
  return (BigInt(cpu.state.gprHi[i] >>> 0) << 32n) | BigInt(cpu.state.gprLo[i] >>> 0);
}

/** RIP as an unsigned BigInt. */
export function getRip(cpu: Cpu): bigint {
  return (BigInt(cpu.state.ripHi >>> 0) << 32n) | BigInt(cpu.state.ripLo >>> 0);
}

/** Names of ExitReason values for messages. */
export const EXIT_NAMES = [
  'BUDGET',
  'EXCEPTION',
  'SOFT_INT',
  'SYSCALL',
  'SYSENTER',
  'PRIVILEGED',
  'HALT',
  'BREAKPOINT',
  'WATCH',
  'SHUTDOWN',
  'STOP_REQUESTED',
  'STEP',
];

/** Result of `runUntilExit`. */
export interface RunResult {
  exit: number;
  /** Exception vector when exit = EXCEPTION. */
  vector: number;
  /** A JS error escaped the engine (always a bug). */
  thrown?: string;
}

/**
 * Runs until an exit other than BUDGET, at most `maxInsns` instructions.
 * Never throws: a JS error from the engine is returned in `thrown`.
 */
export function runUntilExit(cpu: Cpu, maxInsns = 100000): RunResult {
  let left = maxInsns;
  try {
    while (left > 0) {
      const slice = Math.min(left, 10000);
      const before = cpu.state.instructionsRetired;
      const r = cpu.run(slice);
      if (r !== ExitReason.BUDGET) return { exit: r, vector: cpu.exitVector };
      left -= Math.max(1, cpu.state.instructionsRetired - before);
    }
    return { exit: ExitReason.BUDGET, vector: -1 };
  } catch (e) {
    return { exit: -1, vector: -1, thrown: (e as Error)?.stack ?? String(e) };
  }
}
