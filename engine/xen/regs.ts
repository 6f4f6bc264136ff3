/**
 * Cold-path register helpers for the Xen model: 64-bit registers as bigint
 * over the CPU's 32-bit halves, and segment loads of Xen's flat selectors.
 */
import type { CpuApi } from '../cpu/api';
import { Seg, SegAttr } from '../cpu/state';
import type { Vcpu } from './domain';

const M32 = 0xffffffffn;

export function getReg(cpu: CpuApi, r: number): bigint {
  return (BigInt(cpu.state.gprHi[r] >>> 0) << 32n) | BigInt(cpu.state.gprLo[r] >>> 0);
}
export function setReg(cpu: CpuApi, r: number, v: bigint): void {
  cpu.state.gprLo[r] = Number(v & M32) | 0;
  cpu.state.gprHi[r] = Number((v >> 32n) & M32) | 0;
}
export function getRip(cpu: CpuApi): bigint {
  return (BigInt(cpu.state.ripHi >>> 0) << 32n) | BigInt(cpu.state.ripLo >>> 0);
}
export function setRip(cpu: CpuApi, v: bigint): void {
  cpu.state.ripLo = Number(v & M32) | 0;
  cpu.state.ripHi = Number((v >> 32n) & M32) | 0;
}
export function getSegBase(cpu: CpuApi, seg: number): bigint {
  return (BigInt(cpu.state.segBaseHi[seg] >>> 0) << 32n) | BigInt(cpu.state.segBaseLo[seg] >>> 0);
}
export function setSegBase(cpu: CpuApi, seg: number, v: bigint): void {
  cpu.state.segBaseLo[seg] = Number(v & M32) | 0;
  cpu.state.segBaseHi[seg] = Number((v >> 32n) & M32) | 0;
}
export function getKernelGsBase(cpu: CpuApi): bigint {
  return (BigInt(cpu.state.kernelGsBaseHi >>> 0) << 32n) | BigInt(cpu.state.kernelGsBaseLo >>> 0);
}
export function setKernelGsBase(cpu: CpuApi, v: bigint): void {
  cpu.state.kernelGsBaseLo = Number(v & M32) | 0;
  cpu.state.kernelGsBaseHi = Number((v >> 32n) & M32) | 0;
}

/** Canonical 48-bit check (SDM vol. 1 §3.3.7.1). */
export function isCanonical(v: bigint): boolean {
  const top = v >> 47n;
  return top === 0n || top === 0x1ffffn;
}

/** Xen's reserved GDT descriptors (brief §5.8), by selector & ~3, for each guest width. */
const XEN_GDT_64: Record<number, bigint> = {
  0xe008: 0x00af9b000000ffffn,
  0xe010: 0x00cf93000000ffffn,
  0xe020: 0x00cffb000000ffffn,
  0xe028: 0x00cff3000000ffffn,
  0xe030: 0x00affb000000ffffn,
};
const XEN_GDT_32: Record<number, bigint> = {
  0xe008: 0x00af9b000000ffffn,
  0xe010: 0x00cf93000000ffffn,
  0xe018: 0x00cfbb000000ffffn,
  0xe020: 0x00cfb3000000ffffn,
  0xe028: 0x00cffb000000ffffn,
  0xe030: 0x00cff3000000ffffn,
};

/** Reads the 8-byte descriptor for `sel` (Xen's reserved page, the guest GDT frames or the LDT); null if absent. */
export function readDescriptor(v: Vcpu, sel: number): bigint | null {
  const idx = sel >> 3;
  if (sel & 4) {
    if (idx >= v.ldtEnts) return null;
    return v.rd(v.ldtBase + BigInt(idx * 8), 8);
  }
  if (idx === 0) return null;
  if (idx >= 0x1c00) {
    const t = v.domain.bits === 64 ? XEN_GDT_64 : XEN_GDT_32;
    return t[sel & 0xfff8] ?? null;
  }
  if (idx >= v.gdtEnts) return null;
  const frame = v.gdtFrames[idx >> 9];
  const off = v.domain.mem.mfnToOffset(frame);
  if (off < 0) return null;
  const o = off + (idx & 511) * 8;
  return (BigInt(v.domain.mem.read32(o + 4)) << 32n) | BigInt(v.domain.mem.read32(o));
}

/** Decodes a code/data descriptor into (base, limit, attr) for setSegmentRaw. */
export function decodeDescriptor(d: bigint): { base: number; limit: number; attr: number } {
  const lo = Number(d & M32);
  const hi = Number((d >> 32n) & M32);
  const base = ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0;
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  const attr = ((hi >>> 8) & 0xff) | (((hi >>> 20) & 0xf) << 8);
  if (attr & SegAttr.G) limit = ((limit << 12) | 0xfff) >>> 0;
  return { base, limit, attr };
}

/**
 * Loads segment `seg` with `sel` as Xen does when returning to the guest:
 * the descriptor must be present, a code segment for CS, writable data for
 * SS, and DPL must equal RPL for CS/SS. A null selector is allowed for data
 * segments. Returns false when the load would fault (caller crashes or uses
 * the failsafe callback).
 */
export function loadGuestSegment(v: Vcpu, seg: number, sel: number): boolean {
  const cpu = v.cpu;
  if ((sel & ~3) === 0) {
    if (seg === Seg.CS) return false;
    if (seg === Seg.SS && v.domain.bits === 32) return false;
    cpu.setSegmentRaw(seg, sel, 0, 0, 0, SegAttr.UNUSABLE);
    return true;
  }
  const d = readDescriptor(v, sel);
  if (d === null) return false;
  const { base, limit, attr } = decodeDescriptor(d);
  if (!(attr & SegAttr.P) || !(attr & SegAttr.S)) return false;
  const isCode = (attr & 8) !== 0;
  const dpl = (attr >> SegAttr.DPL_SHIFT) & 3;
  if (seg === Seg.CS) {
    if (!isCode || dpl !== (sel & 3)) return false;
  } else if (seg === Seg.SS) {
    if (isCode || !(attr & 2) || dpl !== (sel & 3)) return false;
  } else if (isCode && !(attr & 2)) return false;
  const keepHi = seg === Seg.FS || seg === Seg.GS;
  cpu.setSegmentRaw(
    seg,
    sel,
    base | 0,
    keepHi ? cpu.state.segBaseHi[seg] : 0,
    limit,
    attr | SegAttr.ACCESSED,
  );
  return true;
}
