/**
 * Segmentation: descriptor-table reads, protected-mode segment loads with the
 * SDM's checks, the TSS fields used by stack switches, the TSS I/O
 * permission bitmap, and the descriptor-inspection instructions
 * (LAR/LSL/VERR/VERW) and table-register loads (LLDT/LTR).
 *
 * Sources: Intel SDM vol. 3 ch. 3 (segments, descriptors), ch. 5
 * (protection checks), ch. 7 (TSS layouts), §8/§19 (I/O permission bitmap,
 * now vol. 1 §19.5), and the vol. 2 pages of MOV/POP Sreg, LDS/LES/LFS/LGS/
 * LSS, LAR, LSL, VERR/VERW, LLDT, LTR.
 *
 * Every function here runs over `CpuInternals`. Faults abort the current
 * instruction through `cpu.fault()` (which throws the core's preallocated
 * sentinel) and are raised before any architectural state changes, so a
 * faulting instruction can be restarted. Descriptor reads are supervisor
 * linear reads (`cpu.linRead32(lo, hi, false)`) and can raise #PF.
 *
 * None of this is on the per-instruction hot path; still, nothing here
 * allocates: decoded descriptors go into caller-supplied `Descriptor`
 * scratch objects, allocated once per module.
 */
import type { CpuInternals } from './internals';
import { Cr0, Efer, Flag, Seg, SegAttr, Vector } from './state';

/**
 * One decoded segment or system descriptor (SDM vol. 3 §3.4.5, §7.2.2,
 * §6.14.1). Raw dwords are kept so gates (whose layout differs) can be
 * decoded by their users. Reused as scratch: callers own one instance each.
 */
export class Descriptor {
  /** Raw dwords 0-1, and 2-3 for 16-byte long-mode system descriptors. */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  /** Linear address of the descriptor in its table (halves). */
  addrLo = 0;
  addrHi = 0;
  /** Segment base (halves; hi only from 16-byte system descriptors). */
  baseLo = 0;
  baseHi = 0;
  /** Expanded limit in bytes (granularity applied), unsigned 32-bit. */
  limit = 0;
  /** `SegAttr` word: access byte in bits 0-7, flags nibble in bits 8-11. */
  attr = 0;

  /** Descriptor type field (bits 0-3 of the access byte). */
  get type(): number {
    return this.attr & 0xf;
  }
  /** Descriptor privilege level (0-3). */
  get dpl(): number {
    return (this.attr >>> 5) & 3;
  }
  /** Segment-present flag (P). */
  get present(): boolean {
    return (this.attr & SegAttr.P) !== 0;
  }
  /** S=0: system descriptor (TSS, LDT, gates). */
  get system(): boolean {
    return (this.attr & SegAttr.S) === 0;
  }
  /** Code segment (S=1, type bit 3). */
  get code(): boolean {
    return (this.attr & (SegAttr.S | 8)) === (SegAttr.S | 8);
  }
  /** Data segment (S=1, type bit 3 clear). */
  get data(): boolean {
    return (this.attr & (SegAttr.S | 8)) === SegAttr.S;
  }
  /** Conforming code segment (type bit 2 of a code segment). */
  get conforming(): boolean {
    return this.code && (this.attr & 4) !== 0;
  }
  /** Readable: any data segment, or code with R set. */
  get readable(): boolean {
    return this.data || (this.code && (this.attr & 2) !== 0);
  }
  /** Writable data segment. */
  get writable(): boolean {
    return this.data && (this.attr & 2) !== 0;
  }
  /** 64-bit code segment (L=1, D=0). */
  get long(): boolean {
    return (this.attr & (SegAttr.L | SegAttr.DB)) === SegAttr.L;
  }
}

/** Descriptor types of system segments and gates (SDM vol. 3 table 3-2). */
export const enum SysType {
  TSS16_AVAIL = 1,
  LDT = 2,
  TSS16_BUSY = 3,
  CALL_GATE16 = 4,
  TASK_GATE = 5,
  INT_GATE16 = 6,
  TRAP_GATE16 = 7,
  TSS_AVAIL = 9,
  TSS_BUSY = 0xb,
  CALL_GATE = 0xc,
  INT_GATE = 0xe,
  TRAP_GATE = 0xf,
}

/** Attribute word of a present, accessed, writable flat data segment at `dpl` with B=1, G=1. */
export function flatDataAttr(dpl: number): number {
  return 0x3 | SegAttr.S | (dpl << SegAttr.DPL_SHIFT) | SegAttr.P | SegAttr.DB | SegAttr.G;
}

/** Attribute word of a present, accessed, readable flat code segment at `dpl`; `long` = 64-bit (L=1), else 32-bit (D=1). */
export function flatCodeAttr(dpl: number, long: boolean): number {
  return (
    0xb | SegAttr.S | (dpl << SegAttr.DPL_SHIFT) | SegAttr.P | SegAttr.G | (long ? SegAttr.L : SegAttr.DB)
  );
}

/** EFER.LMA: IA-32e mode active (64-bit or compatibility mode). */
export function longModeActive(cpu: CpuInternals): boolean {
  return (cpu.state.efer & Efer.LMA) !== 0;
}

/** True in 64-bit mode (IA-32e with CS.L = 1). */
export function in64BitMode(cpu: CpuInternals): boolean {
  return (cpu.state.efer & Efer.LMA) !== 0 && (cpu.state.segAttr[Seg.CS] & SegAttr.L) !== 0;
}

/**
 * True when the 64-bit address (halves, int32 or uint32) is canonical for
 * 48-bit linear addresses (bits 63:47 all equal). SDM vol. 1 §3.3.7.1.
 */
export function isCanonical(lo: number, hi: number): boolean {
  return (hi << 16) >> 16 === (hi | 0);
}

/**
 * Supervisor 32-bit linear read at (lo, hi) + off; the address wraps at
 * 4 GiB outside IA-32e mode (`lma` false), else carries into the high half.
 */
export function readLin32(cpu: CpuInternals, lo: number, hi: number, off: number, lma: boolean): number {
  const sum = (lo >>> 0) + off;
  return cpu.linRead32(sum >>> 0, lma ? (sum > 0xffffffff ? hi + 1 : hi) | 0 : 0, false);
}

/** As `readLin32`, 16 bits. */
export function readLin16(cpu: CpuInternals, lo: number, hi: number, off: number, lma: boolean): number {
  const sum = (lo >>> 0) + off;
  return cpu.linRead16(sum >>> 0, lma ? (sum > 0xffffffff ? hi + 1 : hi) | 0 : 0, false);
}

/** Supervisor 8-bit linear write at (lo, hi) + off, wrapping as `readLin32`. */
export function writeLin8(
  cpu: CpuInternals,
  lo: number,
  hi: number,
  off: number,
  v: number,
  lma: boolean,
): void {
  const sum = (lo >>> 0) + off;
  cpu.linWrite8(sum >>> 0, lma ? (sum > 0xffffffff ? hi + 1 : hi) | 0 : 0, v, false);
}

/**
 * Locate descriptor `sel` in the GDT (TI=0) or LDT (TI=1) and read it into
 * `d` (8 bytes, or 16 when `wide`, as long-mode system descriptors and gates
 * are). Supervisor linear reads; may raise #PF.
 * @returns false when the selector's index lies beyond the table limit, or
 *   TI=1 with a null/unusable LDTR (the caller raises the fault its
 *   instruction specifies, usually #GP(selector & 0xFFFC)).
 */
export function readDescriptor(cpu: CpuInternals, sel: number, d: Descriptor, wide: boolean): boolean {
  const s = cpu.state;
  const off = sel & 0xfff8;
  const last = off + (wide ? 15 : 7);
  let baseLo: number;
  let baseHi: number;
  if (sel & 4) {
    if (s.segAttr[Seg.LDTR] & SegAttr.UNUSABLE || s.segSel[Seg.LDTR] < 4) return false;
    if (last > s.segLimit[Seg.LDTR] >>> 0) return false;
    baseLo = s.segBaseLo[Seg.LDTR];
    baseHi = s.segBaseHi[Seg.LDTR];
  } else {
    if (last > s.gdtrLimit >>> 0) return false;
    baseLo = s.gdtrBaseLo;
    baseHi = s.gdtrBaseHi;
  }
  const lma = (s.efer & Efer.LMA) !== 0;
  const sum = (baseLo >>> 0) + off;
  const lo = sum >>> 0;
  const hi = lma ? (baseHi + (sum > 0xffffffff ? 1 : 0)) | 0 : 0;
  d.addrLo = lo;
  d.addrHi = hi;
  d.w0 = readLin32(cpu, lo, hi, 0, lma);
  d.w1 = readLin32(cpu, lo, hi, 4, lma);
  if (wide) {
    d.w2 = readLin32(cpu, lo, hi, 8, lma);
    d.w3 = readLin32(cpu, lo, hi, 12, lma);
  } else {
    d.w2 = 0;
    d.w3 = 0;
  }
  decodeDescriptor(d, wide);
  return true;
}

/**
 * Decode `d.w0`/`d.w1` (and `d.w2` when `wide`) into base, limit and
 * attributes (SDM vol. 3 figure 3-8; figure 7-4 for 16-byte forms).
 */
export function decodeDescriptor(d: Descriptor, wide: boolean): void {
  const w0 = d.w0 >>> 0;
  const w1 = d.w1 >>> 0;
  let limit = (w0 & 0xffff) | (w1 & 0xf0000);
  if (w1 & (1 << 23)) limit = ((limit << 12) | 0xfff) >>> 0;
  d.limit = limit;
  d.baseLo = ((w0 >>> 16) | ((w1 & 0xff) << 16) | (w1 & 0xff000000)) >>> 0;
  d.baseHi = wide ? d.w2 | 0 : 0;
  d.attr = ((w1 >>> 8) & 0xff) | (((w1 >>> 20) & 0xf) << 8);
}

/**
 * Set the Accessed bit (type bit 0) of a code/data descriptor in memory, as
 * the processor does on a segment load (SDM vol. 3 §3.4.5.1). Supervisor
 * write through paging; may raise #PF. No-op when already set.
 */
export function setAccessed(cpu: CpuInternals, d: Descriptor): void {
  if (d.attr & SegAttr.ACCESSED) return;
  d.attr |= SegAttr.ACCESSED;
  d.w1 |= 1 << 8;
  writeLin8(cpu, d.addrLo, d.addrHi, 5, (d.w1 >>> 8) & 0xff, longModeActive(cpu));
}

/**
 * Write a segment register's selector and hidden cache from a decoded
 * descriptor. In 64-bit mode FS/GS take the 32-bit descriptor base with the
 * upper half zeroed (SDM vol. 3 §3.4.4); other bases are loaded but ignored
 * by address generation.
 */
export function commitSegment(cpu: CpuInternals, seg: number, sel: number, d: Descriptor): void {
  cpu.setSegmentRaw(seg, sel, d.baseLo | 0, 0, d.limit, d.attr);
}

/**
 * Load a null selector: the register becomes unusable (SegAttr.UNUSABLE),
 * base 0 (Intel zeroes the base, also for FS/GS in 64-bit mode), limit 0.
 * `sel` keeps its RPL bits, as the visible register does.
 */
export function loadNull(cpu: CpuInternals, seg: number, sel: number, dpl = 0): void {
  cpu.setSegmentRaw(seg, sel & 0xffff, 0, 0, 0, SegAttr.UNUSABLE | (dpl << SegAttr.DPL_SHIFT));
}

const dLoad = new Descriptor();

/**
 * Load ES/SS/DS/FS/GS as MOV Sreg, POP Sreg and LDS/LES/LFS/LGS/LSS do (SDM
 * vol. 2 "MOV - Move to/from Segment Registers"). CS is never loaded here
 * (MOV CS is #UD; far transfers use their own checks in system.ts).
 *
 * Real mode and virtual-8086 mode: base = selector * 16; the limit and
 * attributes are kept (real mode) or set to a 64 KiB writable data segment
 * (V86, DPL 3).
 *
 * Protected mode, in order: SS with a null selector -> #GP(0), except in
 * 64-bit mode at CPL < 3 with RPL = CPL (loads an unusable SS); index beyond
 * the GDT/LDT limit -> #GP(sel); SS: RPL != CPL, not a writable data
 * segment, or DPL != CPL -> #GP(sel), not present -> #SS(sel); DS/ES/FS/GS:
 * not data and not readable code -> #GP(sel), data or non-conforming code
 * with RPL > DPL or CPL > DPL -> #GP(sel), not present -> #NP(sel); null
 * selectors load an unusable register. Error codes are `sel & 0xFFFC`
 * (EXT = 0: software-initiated). Sets the descriptor's Accessed bit.
 */
export function loadDataSegment(cpu: CpuInternals, seg: number, sel: number): void {
  const s = cpu.state;
  sel &= 0xffff;
  if ((s.cr0 & Cr0.PE) === 0 || cpu.getRflags() & Flag.VM) {
    const v86 = (s.cr0 & Cr0.PE) !== 0;
    if (v86) {
      cpu.setSegmentRaw(
        seg,
        sel,
        sel << 4,
        0,
        0xffff,
        0x3 | SegAttr.S | (3 << SegAttr.DPL_SHIFT) | SegAttr.P,
      );
    } else {
      let attr = s.segAttr[seg] & ~SegAttr.UNUSABLE;
      if ((attr & SegAttr.P) === 0) attr = 0x3 | SegAttr.S | SegAttr.P;
      cpu.setSegmentRaw(seg, sel, sel << 4, 0, s.segLimit[seg], attr);
    }
    if (seg === Seg.SS) cpu.stateChanged();
    return;
  }
  const cpl = s.cpl;
  const rpl = sel & 3;
  const err = sel & 0xfffc;
  if (err === 0 && (sel & 4) === 0) {
    // Null selector (index 0 in the GDT; any RPL).
    if (seg === Seg.SS) {
      if (!(in64BitMode(cpu) && cpl < 3 && rpl === cpl)) cpu.fault(Vector.GP, 0);
      loadNull(cpu, seg, sel, cpl);
      cpu.stateChanged();
      return;
    }
    loadNull(cpu, seg, sel);
    return;
  }
  const d = dLoad;
  if (!readDescriptor(cpu, sel, d, false)) cpu.fault(Vector.GP, err);
  if (seg === Seg.SS) {
    if (rpl !== cpl || !d.writable || d.dpl !== cpl) cpu.fault(Vector.GP, err);
    if (!d.present) cpu.fault(Vector.SS, err);
  } else {
    if (!d.readable) cpu.fault(Vector.GP, err);
    if (!d.conforming && (rpl > d.dpl || cpl > d.dpl)) cpu.fault(Vector.GP, err);
    if (!d.present) cpu.fault(Vector.NP, err);
  }
  setAccessed(cpu, d);
  commitSegment(cpu, seg, sel, d);
  if (seg === Seg.SS) cpu.stateChanged();
}

// ---------------------------------------------------------------------------
// TSS
// ---------------------------------------------------------------------------

/** Result of `readTssStack`: the inner stack pointer (halves) and SS selector. */
export const tssStack = { spLo: 0, spHi: 0, ss: 0 };

/**
 * Read the stack for privilege level `dpl` (0-2) from the current TSS
 * (SDM vol. 3 §7.2.1 figure 7-2 for the 32-bit TSS: ESPn at 4 + 8n, SSn at
 * 8 + 8n; 16-bit TSS: SPn at 2 + 4n, SSn at 4 + 4n; §7.7 figure 7-11 for the
 * 64-bit TSS: RSPn at 4 + 8n) into `tssStack`. With `ist` 1-7 (64-bit only)
 * reads IST n at 0x24 + 8(n-1) instead. A TSS limit too small for the field
 * raises #TS(TR selector | ext); an unusable TR raises #TS(ext).
 */
export function readTssStack(cpu: CpuInternals, dpl: number, ist: number, ext: number): void {
  const s = cpu.state;
  const trSel = s.segSel[Seg.TR] & 0xfffc;
  if (s.segAttr[Seg.TR] & SegAttr.UNUSABLE || (s.segAttr[Seg.TR] & SegAttr.P) === 0) {
    cpu.fault(Vector.TS, trSel | ext);
  }
  const limit = s.segLimit[Seg.TR] >>> 0;
  const baseLo = s.segBaseLo[Seg.TR] >>> 0;
  const lma = (s.efer & Efer.LMA) !== 0;
  const baseHi = lma ? s.segBaseHi[Seg.TR] : 0;
  if (lma) {
    const off = ist ? 0x24 + 8 * (ist - 1) : 4 + 8 * dpl;
    if (off + 7 > limit) cpu.fault(Vector.TS, trSel | ext);
    tssStack.spLo = readLin32(cpu, baseLo, baseHi, off, true);
    tssStack.spHi = readLin32(cpu, baseLo, baseHi, off + 4, true);
    tssStack.ss = 0;
    return;
  }
  const type = s.segAttr[Seg.TR] & 0xf;
  if (type === SysType.TSS_AVAIL || type === SysType.TSS_BUSY) {
    const off = 4 + 8 * dpl;
    if (off + 5 > limit) cpu.fault(Vector.TS, trSel | ext);
    tssStack.spLo = readLin32(cpu, baseLo, 0, off, false);
    tssStack.spHi = 0;
    tssStack.ss = readLin16(cpu, baseLo, 0, off + 4, false);
  } else {
    const off = 2 + 4 * dpl;
    if (off + 3 > limit) cpu.fault(Vector.TS, trSel | ext);
    tssStack.spLo = readLin16(cpu, baseLo, 0, off, false);
    tssStack.spHi = 0;
    tssStack.ss = readLin16(cpu, baseLo, 0, off + 2, false);
  }
}

/**
 * I/O permission check for `size` bytes (1, 2, 4) at `port` (SDM vol. 1
 * §19.5 "I/O Permission Bit Map"): allowed in real mode, and in protected
 * mode when CPL <= IOPL (not in V86 mode); otherwise every bit for
 * port..port+size-1 in the TSS I/O bitmap must be clear. The bitmap offset
 * is the 16-bit field at TSS+0x66; the TR must hold a 32-bit or 64-bit TSS
 * whose limit covers the two bitmap bytes read. May raise #PF (TSS reads).
 * @returns true when the access is permitted; the caller raises #GP(0) (or
 *   the privileged-instruction exit) otherwise.
 */
export function ioPermitted(cpu: CpuInternals, port: number, size: number): boolean {
  const s = cpu.state;
  if ((s.cr0 & Cr0.PE) === 0) return true;
  const fl = cpu.getRflags();
  if ((fl & Flag.VM) === 0 && s.cpl <= ((fl >>> 12) & 3)) return true;
  if (s.segAttr[Seg.TR] & SegAttr.UNUSABLE) return false;
  const type = s.segAttr[Seg.TR] & 0xf;
  if (type !== SysType.TSS_AVAIL && type !== SysType.TSS_BUSY) return false;
  const limit = s.segLimit[Seg.TR] >>> 0;
  if (limit < 0x67) return false;
  const lma = (s.efer & Efer.LMA) !== 0;
  const baseLo = s.segBaseLo[Seg.TR] >>> 0;
  const baseHi = lma ? s.segBaseHi[Seg.TR] : 0;
  const mapBase = readLin16(cpu, baseLo, baseHi, 0x66, lma);
  const byteOff = mapBase + ((port & 0xffff) >>> 3);
  if (byteOff + 1 > limit) return false;
  const bits = readLin16(cpu, baseLo, baseHi, byteOff, lma);
  const mask = ((1 << size) - 1) << (port & 7);
  return (bits & mask) === 0;
}

// ---------------------------------------------------------------------------
// LAR / LSL / VERR / VERW
// ---------------------------------------------------------------------------

const dInspect = new Descriptor();

/** Shared checks of LAR/LSL/VERR/VERW: returns the descriptor when visible at CPL/RPL, else null. */
function inspect(cpu: CpuInternals, sel: number, allowedSystem: number): Descriptor | null {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0 && (sel & 4) === 0) return null;
  const d = dInspect;
  if (!readDescriptor(cpu, sel, d, false)) return null;
  if (d.system) {
    if (((allowedSystem >>> d.type) & 1) === 0) return null;
  }
  if (!d.conforming) {
    const cpl = cpu.state.cpl;
    if (d.dpl < cpl || d.dpl < (sel & 3)) return null;
  }
  return d;
}

/** System types LAR accepts: legacy 1,2,3,4,5,9,B,C; IA-32e 2,9,B,C (SDM vol. 2 "LAR" table). */
function larTypes(cpu: CpuInternals): number {
  return longModeActive(cpu) ? 0x1a04 : 0x1a3e;
}
/** System types LSL accepts: legacy 1,2,3,9,B; IA-32e 2,9,B. */
function lslTypes(cpu: CpuInternals): number {
  return longModeActive(cpu) ? 0x0a04 : 0x0a0e;
}

/**
 * LAR (SDM vol. 2 "LAR"): access rights of `sel`, or -1 when the selector
 * is null, beyond the table, of a type LAR rejects, or not visible at
 * CPL/RPL (the instruction then clears ZF and leaves the destination).
 * The result is dword 1 of the descriptor masked with 0x00FFFF00 (the SDM
 * leaves bits 16-19 undefined; processors return the descriptor's limit
 * bits there, and so does the engine); the caller masks further to 0xFF00
 * for a 16-bit operand. Only #PF can be
 * raised (descriptor read). #UD outside protected mode is the caller's.
 */
export function lar(cpu: CpuInternals, sel: number): number {
  const d = inspect(cpu, sel, larTypes(cpu));
  return d ? (d.w1 & 0x00ffff00) >>> 0 : -1;
}

/** LSL (SDM vol. 2 "LSL"): the expanded limit (bytes, unsigned) or -1 when invalid (ZF cleared). */
export function lsl(cpu: CpuInternals, sel: number): number {
  const d = inspect(cpu, sel, lslTypes(cpu));
  return d ? d.limit >>> 0 : -1;
}

/**
 * VERR/VERW (SDM vol. 2 "VERR/VERW"): true when `sel` names a code/data
 * segment readable (`write` false) or writable data (`write` true) at the
 * current CPL and the selector's RPL; conforming code skips the privilege
 * check for VERR. Never faults except #PF on the descriptor read.
 */
export function verify(cpu: CpuInternals, sel: number, write: boolean): boolean {
  const d = inspect(cpu, sel, 0);
  if (!d || d.system) return false;
  return write ? d.writable : d.readable;
}

// ---------------------------------------------------------------------------
// LLDT / LTR
// ---------------------------------------------------------------------------

const dTable = new Descriptor();

/**
 * LLDT (SDM vol. 2 "LLDT"), privilege already checked by the caller. A null
 * selector makes LDTR unusable. Otherwise: TI=1 or index beyond the GDT ->
 * #GP(sel); not an LDT descriptor (type 2) -> #GP(sel); not present ->
 * #NP(sel). In IA-32e mode the descriptor is 16 bytes: the upper type field
 * must be 0 and the base canonical, else #GP(sel).
 */
export function loadLdtr(cpu: CpuInternals, sel: number): void {
  sel &= 0xffff;
  const err = sel & 0xfffc;
  if ((sel & 0xfffc) === 0) {
    cpu.setSegmentRaw(Seg.LDTR, sel, 0, 0, 0, SegAttr.UNUSABLE);
    return;
  }
  const lma = longModeActive(cpu);
  const d = dTable;
  if (sel & 4 || !readDescriptor(cpu, sel, d, lma)) cpu.fault(Vector.GP, err);
  if (!d.system || d.type !== SysType.LDT) cpu.fault(Vector.GP, err);
  if (lma && ((d.w3 >>> 8) & 0x1f) !== 0) cpu.fault(Vector.GP, err);
  if (lma && !isCanonical(d.baseLo, d.baseHi)) cpu.fault(Vector.GP, err);
  if (!d.present) cpu.fault(Vector.NP, err);
  cpu.setSegmentRaw(Seg.LDTR, sel, d.baseLo | 0, d.baseHi, d.limit, d.attr);
}

/**
 * LTR (SDM vol. 2 "LTR"), privilege already checked by the caller. Null
 * selector -> #GP(0); TI=1 or beyond the GDT -> #GP(sel); not an available
 * TSS (type 1 or 9; only 9 in IA-32e mode) -> #GP(sel); IA-32e: upper type
 * field not 0 or base not canonical -> #GP(sel); not present -> #NP(sel).
 * Marks the descriptor busy in memory (type |= 2) and loads TR. With
 * `allowBusy` (drivers restoring state, not the instruction) a busy TSS is
 * accepted too.
 */
export function loadTr(cpu: CpuInternals, sel: number, allowBusy = false): void {
  sel &= 0xffff;
  const err = sel & 0xfffc;
  if (err === 0) cpu.fault(Vector.GP, 0);
  const lma = longModeActive(cpu);
  const d = dTable;
  if (sel & 4 || !readDescriptor(cpu, sel, d, lma)) cpu.fault(Vector.GP, err);
  const type = allowBusy ? d.type & ~2 : d.type;
  const okType = type === SysType.TSS_AVAIL || (!lma && type === SysType.TSS16_AVAIL);
  if (!d.system || !okType) cpu.fault(Vector.GP, err);
  if (lma && ((d.w3 >>> 8) & 0x1f) !== 0) cpu.fault(Vector.GP, err);
  if (lma && !isCanonical(d.baseLo, d.baseHi)) cpu.fault(Vector.GP, err);
  if (!d.present) cpu.fault(Vector.NP, err);
  // Busy bit: type bit 1, in byte 5 of the descriptor.
  writeLin8(cpu, d.addrLo, d.addrHi, 5, ((d.w1 >>> 8) & 0xff) | 2, lma);
  cpu.setSegmentRaw(Seg.TR, sel, d.baseLo | 0, d.baseHi, d.limit, d.attr | 2);
}
