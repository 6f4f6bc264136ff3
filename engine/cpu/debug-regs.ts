/**
 * The guest's hardware debug registers (Intel SDM vol. 3 chapter 18 "Debug,
 * Branch Profile, TSC, and Intel Resource Director Technology Features",
 * §18.2 "Debug Registers", §18.3.1 "Debug Exception (#DB) - Interrupt
 * Vector 1"): decoding DR7 into per-class masks of armed breakpoints and
 * matching instruction fetches, data accesses and I/O ports against DR0-DR3.
 *
 * These are the guest's own breakpoints. pvscope's debugger uses separate
 * mechanisms (`Cpu.setBreakpoint`, `Cpu.setWatch`, physical data watches)
 * and never reads or writes DR0-DR7.
 *
 * DR7 layout: L0/G0..L3/G3 in bits 0-7 (either enables breakpoint n),
 * R/Wn in bits 16+4n..17+4n (00 execute, 01 write, 10 I/O when CR4.DE else
 * undefined (treated as disabled), 11 read/write), LENn in bits 18+4n..19+4n
 * (00 1 byte, 01 2 bytes, 10 8 bytes, 11 4 bytes). Data and I/O breakpoints
 * match any access overlapping the naturally aligned range
 * [DRn & ~(len-1), +len). Execute breakpoints match an instruction whose
 * first byte is at DRn (LEN should be 00; other lengths behave as 00 here).
 * Outside 64-bit mode only the low 32 bits of DRn take part.
 */
import type { CpuState } from './state';

/** Armed breakpoints of each class as 4-bit masks (bit n = DRn). */
export interface DrArmed {
  /** Instruction breakpoints (R/W = 00). */
  exec: number;
  /** Data breakpoints on writes (R/W = 01 or 11). */
  write: number;
  /** Data breakpoints on reads (R/W = 11). */
  read: number;
  /** I/O breakpoints (R/W = 10 with CR4.DE). */
  io: number;
}

/** Length in bytes of breakpoint `n` from its DR7 LEN field (SDM vol. 3 §18.2.5). */
export function drLength(dr7: number, n: number): number {
  const len = (dr7 >>> (18 + 4 * n)) & 3;
  return len === 0 ? 1 : len === 1 ? 2 : len === 2 ? 8 : 4;
}

/**
 * Decodes DR7 into `out` (SDM vol. 3 §18.2.4, §18.2.5). `cr4De` is CR4.DE:
 * with it R/W = 10 selects I/O breakpoints, without it the encoding is
 * undefined and the breakpoint is treated as disabled.
 */
export function drDecode(dr7: number, cr4De: boolean, out: DrArmed): void {
  out.exec = 0;
  out.write = 0;
  out.read = 0;
  out.io = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue;
    const rw = (dr7 >>> (16 + 4 * n)) & 3;
    const bit = 1 << n;
    if (rw === 0) out.exec |= bit;
    else if (rw === 1) out.write |= bit;
    else if (rw === 3) {
      out.write |= bit;
      out.read |= bit;
    } else if (cr4De) out.io |= bit;
  }
}

/** Breakpoints in `mask` whose address is exactly (lo, hi) (instruction breakpoints). `long`: compare 64 bits. */
export function drMatchExec(s: CpuState, mask: number, lo: number, hi: number, long: boolean): number {
  let hit = 0;
  for (let n = 0; n < 4; n++) {
    if (!(mask & (1 << n))) continue;
    if (s.drLo[n] === (lo | 0) && (!long || s.drHi[n] === (hi | 0))) hit |= 1 << n;
  }
  return hit;
}

/**
 * Breakpoints in `mask` whose aligned range overlaps the `size`-byte access at
 * linear (lo, hi). `long`: the high halves must match too.
 */
export function drMatchRange(
  s: CpuState,
  dr7: number,
  mask: number,
  lo: number,
  hi: number,
  size: number,
  long: boolean,
): number {
  let hit = 0;
  const a = lo >>> 0;
  for (let n = 0; n < 4; n++) {
    if (!(mask & (1 << n))) continue;
    if (long && s.drHi[n] !== (hi | 0)) continue;
    const len = drLength(dr7, n);
    const b = (s.drLo[n] & ~(len - 1)) >>> 0;
    if (a < b + len && a + size > b) hit |= 1 << n;
  }
  return hit;
}

/** True when the 4 KiB linear page holding (lo, hi) overlaps a breakpoint in `mask` (no TLB permission may be cached for it). */
export function drOnPage(
  s: CpuState,
  dr7: number,
  mask: number,
  lo: number,
  hi: number,
  long: boolean,
): boolean {
  return drMatchRange(s, dr7, mask, lo & -4096, hi, 4096, long) !== 0;
}
