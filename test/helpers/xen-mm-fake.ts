/**
 * A small fake Xen domain for the PV MMU unit tests: machine memory with a
 * non-identity MFN base, a frame-owner map, a Xen frame pool, M2P frames, a
 * recording `reject`, and a stub CPU whose `translate` walks the guest page
 * tables from CR3 (4-level for 64-bit, PAE for 32-bit) like the MMU would.
 */
import { MachineMemory, PAGE_SIZE } from '../../engine/memory/machine-memory';
import { CpuState } from '../../engine/cpu/state';
import type { CpuApi } from '../../engine/cpu/api';
import { DOMID_XEN, type XenDomainCore, type XenVcpuCore } from '../../engine/xen/types';

export const MFN_BASE = 0x1000;
/** Frames 0..63 of machine memory: Xen's pool. */
export const XEN_POOL = 64;
/** Guest pfn p lives at mfn GUEST_MFN0 + p (the tests use a simple p2m). */
export const GUEST_MFN0 = MFN_BASE + XEN_POOL;
export const GUEST_PAGES = 512;
/** Frames owned by dom0. */
export const DOM0_MFN0 = GUEST_MFN0 + GUEST_PAGES;
export const DOM0_PAGES = 16;
export const TOTAL_FRAMES = XEN_POOL + GUEST_PAGES + DOM0_PAGES + 16; // 16 unowned at the end

export function mfnOf(pfn: number): number {
  return GUEST_MFN0 + pfn;
}

export class FakeCpu {
  readonly state = new CpuState();
  flushes = 0;
  flushedPages: bigint[] = [];
  stateChanges = 0;
  rflags = 0x202;
  ldtr: { sel: number; baseLo: number; baseHi: number; limit: number; attr: number } | null = null;
  lastWalkError = 0;
  constructor(
    readonly mem: MachineMemory,
    readonly bits: 32 | 64,
  ) {}
  translate(linLo: number, linHi: number, access: number, user: boolean, setAD = false): number {
    void setAD;
    const va = (BigInt(linHi >>> 0) << 32n) | BigInt(linLo >>> 0);
    const write = access === 1;
    const st = this.state;
    let tableMfn: number;
    let levels: bigint[];
    if (this.bits === 64) {
      tableMfn = (st.cr3Lo >>> 12) + (st.cr3Hi & 0xfffff) * 0x100000;
      levels = [39n, 30n, 21n, 12n];
    } else {
      const c = st.cr3Lo >>> 0;
      tableMfn = (c >>> 12) | ((c & 0xfff) << 20);
      levels = [30n, 21n, 12n];
    }
    for (let k = 0; k < levels.length; k++) {
      const shift = levels[k];
      const idx = Number((va >> shift) & (this.bits === 32 && k === 0 ? 3n : 511n));
      const base = this.mem.mfnToOffset(tableMfn);
      if (base < 0) return -1;
      const lo = this.mem.read32(base + idx * 8);
      const hi = this.mem.read32(base + idx * 8 + 4);
      if (!(lo & 1)) return -1;
      if (write && !(lo & 2) && !(this.bits === 32 && k === 0)) return -1;
      if (user && !(lo & 4) && !(this.bits === 32 && k === 0)) return -1;
      tableMfn = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
    }
    const off = this.mem.mfnToOffset(tableMfn);
    return off < 0 ? -1 : off + Number(va & 0xfffn);
  }
  flushTlb(): void {
    this.flushes++;
  }
  flushTlbPage(lo: number, hi: number): void {
    this.flushedPages.push((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  }
  stateChanged(): void {
    this.stateChanges++;
  }
  getRflags(): number {
    return this.rflags;
  }
  setRflags(v: number): void {
    this.rflags = v;
  }
  setSegmentRaw(seg: number, sel: number, baseLo: number, baseHi: number, limit: number, attr: number): void {
    if (seg === 6) this.ldtr = { sel, baseLo, baseHi, limit, attr };
  }
}

export interface Rejection {
  errno: number;
  reason: string;
}

export class FakeDomain implements XenDomainCore {
  readonly domid = 1;
  readonly mem = new MachineMemory(TOTAL_FRAMES, MFN_BASE);
  readonly vcpus: XenVcpuCore[] = [];
  readonly nrPages = GUEST_PAGES;
  readonly rejections: Rejection[] = [];
  readonly m2pMfns: number[] = [];
  crashed: string | null = null;
  private assists = new Set<number>();
  private nextXen = MFN_BASE;
  private m2pTable = new Map<number, number>();

  constructor(
    readonly bits: 32 | 64,
    nvcpus = 1,
  ) {
    const entries = MFN_BASE + TOTAL_FRAMES;
    const frames = Math.ceil((entries * (bits / 8)) / PAGE_SIZE);
    for (let k = 0; k < frames; k++) this.m2pMfns.push(this.allocXenFrame());
    for (let p = 0; p < GUEST_PAGES; p++) this.setM2p(mfnOf(p), p);
    for (let v = 0; v < nvcpus; v++) {
      this.vcpus.push({
        id: v,
        cpu: new FakeCpu(this.mem, bits) as unknown as CpuApi,
        kernelMode: true,
        kernelRootMfn: 0,
        userRootMfn: 0,
        ldtBase: 0n,
        ldtEnts: 0,
        gdtFrames: [],
        gdtEnts: 0,
      });
    }
  }
  fake(v = 0): FakeCpu {
    return this.vcpus[v].cpu as unknown as FakeCpu;
  }
  enableAssist(type: number): void {
    this.assists.add(type);
  }
  vmAssistOn(type: number): boolean {
    return this.assists.has(type);
  }
  frameOwner(mfn: number): number {
    if (mfn >= MFN_BASE && mfn < MFN_BASE + XEN_POOL) return DOMID_XEN;
    if (mfn >= GUEST_MFN0 && mfn < GUEST_MFN0 + GUEST_PAGES) return this.domid;
    if (mfn >= DOM0_MFN0 && mfn < DOM0_MFN0 + DOM0_PAGES) return 0;
    return -1;
  }
  m2p(mfn: number): number {
    return this.m2pTable.get(mfn) ?? -1;
  }
  setM2p(mfn: number, pfn: number): void {
    this.m2pTable.set(mfn, pfn);
    const w = this.bits / 8;
    const byte = mfn * w;
    const f = this.m2pMfns[Math.floor(byte / PAGE_SIZE)];
    const off = this.mem.mfnToOffset(f) + (byte % PAGE_SIZE);
    if (w === 8) this.mem.write64Big(off, pfn < 0 ? (1n << 64n) - 1n : BigInt(pfn));
    else this.mem.write32(off, pfn < 0 ? 0xffffffff : pfn);
  }
  reject(errno: number, reason: string): number {
    this.rejections.push({ errno, reason });
    return -errno;
  }
  crash(reason: string): void {
    this.crashed = reason;
  }
  allocXenFrame(): number {
    if (this.nextXen >= MFN_BASE + XEN_POOL) return -1;
    const m = this.nextXen++;
    this.mem.fill(this.mem.mfnToOffset(m), PAGE_SIZE, 0);
    return m;
  }
  /** Writes entry `slot` of guest frame `pfn` (raw, bypassing the MMU, like the builder). */
  setEntry(pfn: number, slot: number, val: bigint): void {
    this.mem.write64Big(this.mem.mfnToOffset(mfnOf(pfn)) + slot * 8, val);
  }
  getEntry(pfn: number, slot: number): bigint {
    return this.mem.read64Big(this.mem.mfnToOffset(mfnOf(pfn)) + slot * 8);
  }
  /** Raw bytes into guest frame `pfn` at `off`. */
  poke(pfn: number, off: number, data: Uint8Array): void {
    this.mem.writeBytes(this.mem.mfnToOffset(mfnOf(pfn)) + off, data);
  }
  lastReason(): string {
    return this.rejections.length ? this.rejections[this.rejections.length - 1].reason : '';
  }
}

/** An 8-byte entry for guest pfn `pfn` with `flags` (bits 0-11) and optional high bits. */
export function pte(pfn: number, flags: number, high = 0n): bigint {
  return (BigInt(mfnOf(pfn)) << 12n) | BigInt(flags) | high;
}

export const P = 1,
  RW = 2,
  US = 4,
  PWT = 8,
  PCD = 0x10,
  A = 0x20,
  D = 0x40,
  PSE = 0x80,
  G = 0x100;

/** Page-table pfns of the bootstrap layout built by `buildBootTables`. */
export const BOOT = { l4: 500, l3: 501, l2: 502, l1: 503, l2x: 504 };

/**
 * Builds builder-style bootstrap tables mapping VA = pfn * 4096 for pfn
 * 0..`mapped`-1 (L1 P|RW|A, RO for the table frames; upper levels
 * P|RW|A|D|US). 64-bit: L4 500 -> L3 501 -> L2 502 -> L1 503. 32-bit: L3
 * 500 (slot 0 -> L2 502, slot 3 -> L2 504) -> L1 503.
 * @returns the root pfn
 */
export function buildBootTables(d: FakeDomain, mapped = 256): number {
  const upper = P | RW | A | D | US;
  const tables = [BOOT.l4, BOOT.l3, BOOT.l2, BOOT.l1, BOOT.l2x];
  for (let p = 0; p < mapped; p++) d.setEntry(BOOT.l1, p, pte(p, tables.includes(p) ? P | A : P | RW | A));
  for (const t of tables) d.setEntry(BOOT.l1, t, pte(t, P | A));
  d.setEntry(BOOT.l2, 0, pte(BOOT.l1, upper));
  if (d.bits === 64) {
    d.setEntry(BOOT.l3, 0, pte(BOOT.l2, upper));
    d.setEntry(BOOT.l4, 0, pte(BOOT.l3, upper));
    return BOOT.l4;
  }
  d.setEntry(BOOT.l4, 0, pte(BOOT.l2, P));
  d.setEntry(BOOT.l4, 3, pte(BOOT.l2x, P));
  return BOOT.l4;
}
