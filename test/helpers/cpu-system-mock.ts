/**
 * A minimal stand-in for the CPU's execution core, for testing the system
 * half (engine/cpu/system.ts, segmentation.ts) in isolation: flat memory
 * with identity linear = machine addresses (no paging), faults thrown as
 * `Fault` objects, privileged exits as `PrivExit`, RFLAGS kept eagerly.
 * Helpers encode GDT/IDT descriptors and gates in the SDM's layouts.
 */
import { MachineMemory } from '../../engine/memory/machine-memory';
import { CpuState, Seg, SegAttr, Cr0, Efer, CpuMode } from '../../engine/cpu/state';
import type { CpuInternals } from '../../engine/cpu/internals';
import { defaultCpuidPolicy } from '../../engine/cpu/cpuid';

/** An exception raised through `fault` / `pageFault`. */
export class Fault {
  constructor(
    readonly vector: number,
    readonly errorCode: number,
  ) {}
}

/** A privileged-instruction exit raised through `privileged` when intercepting. */
export class PrivExit {
  constructor(readonly op: number) {}
}

/** Flat-memory mock of the core (see file comment). */
export class MockCpu {
  readonly state = new CpuState();
  readonly mem: MachineMemory;
  rflags = 2;
  tmpHi = 0;
  /** Guest debug-register hits (DR6 B0-B3 bits) pending a #DB trap; no I/O breakpoints in the mock. */
  drHit = 0;
  matchIoBreakpoints(_port: number, _size: number): number {
    return 0;
  }
  interceptPrivileged = false;
  interceptExceptions = 0;
  tscPerInstruction = 1;
  tscOffset = 0;
  cpuid = defaultCpuidPolicy();
  exitPrivOp = 0;
  exitPrivReg = -1;
  exitPrivCr = -1;
  exitPrivPort = 0;
  exitPrivSize = 0;
  exitPrivLinLo = 0;
  exitPrivLinHi = 0;
  exitCr2Lo = 0;
  exitCr2Hi = 0;
  insnRipLo = 0;
  insnRipHi = 0;
  insnLength = 2;
  fullFlushes = 0;
  localFlushes = 0;
  pageFlushes: number[] = [];
  ioRead?: (port: number, size: number) => number;
  ioWrite?: (port: number, size: number, value: number) => void;
  /** Linear ranges [start, end) that fault on user (CPL 3) access. */
  supervisorOnly: Array<[number, number]> = [];

  constructor(frames = 64) {
    this.mem = new MachineMemory(frames);
  }

  asInternals(): CpuInternals {
    return this as unknown as CpuInternals;
  }

  fault(vector: number, errorCode: number): never {
    throw new Fault(vector, errorCode);
  }
  pageFault(lo: number, hi: number, errorCode: number): never {
    this.exitCr2Lo = lo;
    this.exitCr2Hi = hi;
    throw new Fault(14, errorCode);
  }
  privileged(op: number): never {
    if (this.interceptPrivileged) {
      this.exitPrivOp = op;
      throw new PrivExit(op);
    }
    throw new Fault(13, 0);
  }

  private off(lo: number, hi: number, n: number, user: boolean, write: boolean): number {
    const a = lo >>> 0;
    if (hi !== 0 || a + n > this.mem.frameCount * 4096)
      this.pageFault(lo, hi, (write ? 2 : 0) | (user ? 4 : 0));
    if (user) {
      for (const [s, e] of this.supervisorOnly) {
        if (a < e && a + n > s) this.pageFault(lo, hi, 1 | (write ? 2 : 0) | 4);
      }
    }
    return a;
  }
  linRead8(lo: number, hi: number, user: boolean): number {
    return this.mem.read8(this.off(lo, hi, 1, user, false));
  }
  linRead16(lo: number, hi: number, user: boolean): number {
    return this.mem.read16(this.off(lo, hi, 2, user, false));
  }
  linRead32(lo: number, hi: number, user: boolean): number {
    return this.mem.read32(this.off(lo, hi, 4, user, false)) | 0;
  }
  linRead64(lo: number, hi: number, user: boolean): number {
    const o = this.off(lo, hi, 8, user, false);
    this.tmpHi = this.mem.read32(o + 4) | 0;
    return this.mem.read32(o) | 0;
  }
  linWrite8(lo: number, hi: number, v: number, user: boolean): void {
    this.mem.write8(this.off(lo, hi, 1, user, true), v);
  }
  linWrite16(lo: number, hi: number, v: number, user: boolean): void {
    this.mem.write16(this.off(lo, hi, 2, user, true), v);
  }
  linWrite32(lo: number, hi: number, v: number, user: boolean): void {
    this.mem.write32(this.off(lo, hi, 4, user, true), v);
  }
  linWrite64(lo: number, hi: number, vLo: number, vHi: number, user: boolean): void {
    const o = this.off(lo, hi, 8, user, true);
    this.mem.write32(o, vLo);
    this.mem.write32(o + 4, vHi);
  }

  getRflags(): number {
    return this.rflags;
  }
  setRflags(v: number): void {
    this.rflags = (v | 2) >>> 0;
  }
  setRip(lo: number, hi: number): void {
    this.state.ripLo = lo | 0;
    this.state.ripHi = hi | 0;
  }
  setSegmentRaw(seg: number, sel: number, baseLo: number, baseHi: number, limit: number, attr: number): void {
    const s = this.state;
    s.segSel[seg] = sel;
    s.segBaseLo[seg] = baseLo | 0;
    s.segBaseHi[seg] = baseHi | 0;
    s.segLimit[seg] = limit >>> 0;
    s.segAttr[seg] = attr | 0;
    if (seg === Seg.CS) s.cpl = sel & 3;
  }
  stateChanged(): void {}
  flushTlb(includeGlobal: boolean): void {
    if (includeGlobal) this.fullFlushes++;
    else this.localFlushes++;
  }
  flushTlbPage(lo: number, _hi: number): void {
    this.pageFlushes.push(lo >>> 0);
  }
  flushCodeCache(): void {}
  mode(): CpuMode {
    const s = this.state;
    if (!(s.cr0 & Cr0.PE)) return CpuMode.REAL;
    if (s.efer & Efer.LMA) return s.segAttr[Seg.CS] & SegAttr.L ? CpuMode.LONG64 : CpuMode.COMPAT32;
    return s.segAttr[Seg.CS] & SegAttr.DB ? CpuMode.PROT32 : CpuMode.PROT16;
  }

  // ---- test conveniences ----
  reg(r: number): number {
    return this.state.gprLo[r] >>> 0;
  }
  setReg(r: number, lo: number, hi = 0): void {
    this.state.gprLo[r] = lo | 0;
    this.state.gprHi[r] = hi | 0;
  }
  read32(addr: number): number {
    return this.mem.read32(addr) >>> 0;
  }
  write32(addr: number, v: number): void {
    this.mem.write32(addr, v);
  }
}

/** Encodes a code/data/system segment descriptor: [dword0, dword1]. `access` = P|DPL|S|type byte, `flags` = G|D/B|L|AVL nibble. */
export function segDesc(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((limit & 0xffff) | ((base & 0xffff) << 16)) >>> 0;
  const hi =
    (((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000)) >>> 0;
  return [lo, hi];
}

/** Encodes an 8-byte gate (call/interrupt/trap): type 0xC/0xE/0xF (32-bit) or 4/6/7 (16-bit). */
export function gate32(
  sel: number,
  off: number,
  type: number,
  dpl: number,
  params = 0,
  present = true,
): [number, number] {
  const lo = ((off & 0xffff) | (sel << 16)) >>> 0;
  const hi = ((off & 0xffff0000) | (((present ? 0x80 : 0) | (dpl << 5) | type) << 8) | params) >>> 0;
  return [lo, hi];
}

/** Encodes a 16-byte IA-32e gate: [dw0, dw1, dw2, dw3]. */
export function gate64(
  sel: number,
  offLo: number,
  offHi: number,
  type: number,
  dpl: number,
  ist = 0,
): number[] {
  const [lo, hi] = gate32(sel, offLo, type, dpl, 0);
  return [lo, (hi & ~0xff) | ist, offHi >>> 0, 0];
}

/** Access bytes. */
export const CODE0 = 0x9a; // P, DPL0, S, code R
export const DATA0 = 0x92; // P, DPL0, S, data W
export const CODE3 = 0xfa;
export const DATA3 = 0xf2;
/** Flags nibbles. */
export const G32 = 0xc; // G, D/B
export const G64 = 0xa; // G, L
