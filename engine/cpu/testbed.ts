/**
 * Bare-metal test machines for the CPU: flat machine memory (machine
 * address = physical address, MFN base 0), a GDT with flat segments, page
 * tables identity-mapping all of memory with 4 KiB pages, and the CPU
 * already in the requested mode. Used by the CPU unit tests, the
 * differential tests and the benchmark.
 *
 * Physical layout (bytes):
 *   0x1000  GDT (selectors below)        0x2000  IDT (256 x 16 bytes)
 *   0x3000  TSS (104 bytes)              0x8000-0x7ffff  stack (top 0x80000)
 *   0x100000  default code load address (CODE_BASE)
 *   last 2 MiB of memory: page-table pool (identity tables + `mapPage`)
 *
 * GDT selectors: 0x08 code32 DPL0, 0x10 data DPL0, 0x18 code64 DPL0,
 * 0x23 code32 DPL3, 0x2b data DPL3, 0x33 code64 DPL3, 0x40 TSS (64-bit
 * form in long modes, 32-bit otherwise).
 */
import { Cpu } from './cpu';
import { MachineMemory } from '../memory/machine-memory';

export type TestMode = 'prot32' | 'pae32' | 'long64' | 'compat32' | 'legacy32';

export interface TestMachineOptions {
  mode: TestMode;
  /** Memory size in MiB (default 16, at least 4). */
  memoryMiB?: number;
  /** Set EFER.NXE in paged modes (default true). */
  nx?: boolean;
  /** Set CR4.PGE (default false). */
  pge?: boolean;
  /** Start at CPL 3 with the user selectors (default false: CPL 0). */
  user?: boolean;
}

export const GDT_BASE = 0x1000;
export const IDT_BASE = 0x2000;
export const TSS_BASE = 0x3000;
export const STACK_TOP = 0x80000;
export const CODE_BASE = 0x100000;
export const SEL_CODE32 = 0x08;
export const SEL_DATA = 0x10;
export const SEL_CODE64 = 0x18;
export const SEL_CODE32_USER = 0x23;
export const SEL_DATA_USER = 0x2b;
export const SEL_CODE64_USER = 0x33;
export const SEL_TSS = 0x40;

/** Page-table entry flags for `mapPage` (SDM vol. 3 §4.5). */
export const PTE_P = 1;
export const PTE_W = 2;
export const PTE_U = 4;
export const PTE_A = 0x20;
export const PTE_D = 0x40;
export const PTE_G = 0x100;
/** NX bit (bit 63) — pass as `nx: true` to mapPage. */

export interface TestMachine {
  cpu: Cpu;
  mem: MachineMemory;
  mode: TestMode;
  /** Copies bytes to physical address `addr`. */
  load(addr: number, bytes: Uint8Array | number[]): void;
  /** Sets RIP (and RSP = STACK_TOP unless given). */
  start(rip: number | bigint, rsp?: number | bigint): void;
  /**
   * Maps linear page `lin` to machine address `maddr` with leaf `flags`
   * (PTE_*; intermediate entries get P|W|U). `nx` sets bit 63. Paged modes
   * only. Does not flush the TLB (call cpu.flushTlbPage as a guest would).
   */
  mapPage(lin: number | bigint, maddr: number, flags: number, nx?: boolean): void;
  /** Buffer offset of the leaf PTE mapping `lin` (4 KiB tables), or -1. */
  pteOffset(lin: number | bigint): number;
  /** Physical address of the top-level paging structure (CR3: PML4, PAE PDPT or 32-bit PD); 0 without paging. */
  readonly ptRoot: number;
  /** Installs a 16-byte (long) or 8-byte (32-bit) interrupt gate for `vector` to `handler` (CS = kernel code). */
  setIdtGate(vector: number, handler: number | bigint, dpl?: number, ist?: number): void;
}

const ATTR_CODE32 = 0x9b | 0x400 | 0x800; // P, DPL0, S, code exec/read accessed, D, G
const ATTR_DATA = 0x93 | 0x400 | 0x800;
const ATTR_CODE64 = 0x9b | 0x200 | 0x800;

/** Creates a test machine. Throws RangeError for a bad memory size. */
export function createTestMachine(opts: TestMachineOptions): TestMachine {
  const mib = opts.memoryMiB ?? 16;
  if (!(mib >= 4 && mib <= 1024)) throw new RangeError(`testbed: memoryMiB ${mib} out of range 4..1024`);
  const mem = new MachineMemory(mib * 256, 0);
  const cpu = new Cpu(mem);
  const s = cpu.state;
  const dv = mem.view;
  const mode = opts.mode;
  const user = opts.user === true;
  const long = mode === 'long64' || mode === 'compat32';
  const pae = mode === 'pae32' || long;
  const paged = pae || mode === 'legacy32';

  // GDT.
  const gdt: [number, number][] = [
    [0, 0],
    desc(0, 0xfffff, 0x9b, 0xc), // 0x08 code32
    desc(0, 0xfffff, 0x93, 0xc), // 0x10 data
    desc(0, 0xfffff, 0x9b, 0xa), // 0x18 code64 (L=1)
    desc(0, 0xfffff, 0xfb, 0xc), // 0x20 code32 DPL3
    desc(0, 0xfffff, 0xf3, 0xc), // 0x28 data DPL3
    desc(0, 0xfffff, 0xfb, 0xa), // 0x30 code64 DPL3
    [0, 0],
    desc(TSS_BASE, 0x67, 0x89, 0), // 0x40 TSS (available)
    [0, 0], // upper half of a 64-bit TSS descriptor
  ];
  gdt.forEach(([lo, hi], i) => {
    dv.setUint32(GDT_BASE + i * 8, lo >>> 0, true);
    dv.setUint32(GDT_BASE + i * 8 + 4, hi >>> 0, true);
  });
  s.gdtrBaseLo = GDT_BASE;
  s.gdtrLimit = gdt.length * 8 - 1;
  s.idtrBaseLo = IDT_BASE;
  s.idtrLimit = long ? 256 * 16 - 1 : 256 * 8 - 1;
  // TSS: RSP0 / ESP0 = STACK_TOP - 0x1000 area for privilege changes.
  if (long) dv.setUint32(TSS_BASE + 4, STACK_TOP - 0x4000, true);
  else {
    dv.setUint32(TSS_BASE + 4, STACK_TOP - 0x4000, true);
    dv.setUint16(TSS_BASE + 8, SEL_DATA, true);
  }
  s.segSel[7] = SEL_TSS;
  s.segBaseLo[7] = TSS_BASE;
  s.segLimit[7] = 0x67;
  s.segAttr[7] = long ? 0x8b : 0x8b;

  // Page tables (pool at the top 2 MiB).
  const poolStart = mem.frameCount * 4096 - 2 * 1024 * 1024;
  let poolNext = poolStart;
  const alloc = (): number => {
    if (poolNext >= mem.frameCount * 4096) throw new RangeError('testbed: page-table pool exhausted');
    const a = poolNext;
    poolNext += 4096;
    mem.u8.fill(0, a, a + 4096);
    return a;
  };
  let root = 0;
  if (paged) root = alloc();
  const toBig = (v: number | bigint): bigint => BigInt.asUintN(64, BigInt(v));

  /** Returns the buffer offset of the entry for `lin` at `level` creating tables on the way. */
  const entryFor = (lin: bigint, create: boolean): number => {
    if (mode === 'legacy32') {
      const pdi = Number((lin >> 22n) & 1023n);
      const pde = root + pdi * 4;
      let v = dv.getUint32(pde, true);
      if (!(v & 1)) {
        if (!create) return -1;
        const t = alloc();
        v = t | 7;
        dv.setUint32(pde, v, true);
      }
      return (v & ~0xfff) + Number((lin >> 12n) & 1023n) * 4;
    }
    let table = root;
    let levels: number[];
    if (long) levels = [39, 30, 21];
    else {
      // PAE: root holds the PDPT (4 entries); then PD.
      const pdpti = Number((lin >> 30n) & 3n);
      const e = root + pdpti * 8;
      let v = dv.getUint32(e, true);
      if (!(v & 1)) {
        if (!create) return -1;
        v = alloc() | 1; // PDPTEs have no R/W or U/S bits
        dv.setUint32(e, v, true);
        dv.setUint32(e + 4, 0, true);
      }
      table = v & ~0xfff;
      levels = [21];
    }
    for (const sh of levels) {
      const idx = Number((lin >> BigInt(sh)) & 511n);
      const e = table + idx * 8;
      let v = dv.getUint32(e, true);
      if (!(v & 1)) {
        if (!create) return -1;
        v = alloc() | 7;
        dv.setUint32(e, v, true);
        dv.setUint32(e + 4, 0, true);
      }
      table = v & ~0xfff;
    }
    return table + Number((lin >> 12n) & 511n) * 8;
  };

  const mapPage = (lin: number | bigint, maddr: number, flags: number, nx = false): void => {
    if (!paged) throw new Error('testbed: mapPage needs a paged mode');
    const e = entryFor(toBig(lin), true);
    if (mode === 'legacy32') {
      dv.setUint32(e, ((maddr & ~0xfff) | (flags & 0xfff)) >>> 0, true);
      return;
    }
    dv.setUint32(e, (((maddr % 4294967296) & ~0xfff) | (flags & 0xfff)) >>> 0, true);
    dv.setUint32(e + 4, (Math.floor(maddr / 4294967296) | (nx ? 0x80000000 : 0)) >>> 0, true);
  };

  if (paged) {
    for (let a = 0; a < mem.frameCount * 4096; a += 4096) mapPage(a, a, PTE_P | PTE_W | PTE_U);
  }

  // Control registers.
  s.cr0 = 0x60000010 | 1 | 0x20; // ET, NE, PE (CD/NW as at reset)
  s.cr0 &= ~0x60000000;
  if (paged) {
    s.cr0 |= 0x80000000 | 0x10000; // PG, WP
    s.cr3Lo = root;
    if (pae) s.cr4 |= 0x20;
    if (opts.pge) s.cr4 |= 0x80;
    if (pae && opts.nx !== false) s.efer |= 0x800;
  }
  if (long) s.efer |= 0x100 | 0x400;
  s.cpl = user ? 3 : 0;
  const csSel =
    mode === 'long64' ? (user ? SEL_CODE64_USER : SEL_CODE64) : user ? SEL_CODE32_USER : SEL_CODE32;
  const dsSel = user ? SEL_DATA_USER : SEL_DATA;
  const dpl = user ? 0x60 : 0;
  cpu.setSegmentRaw(1, csSel, 0, 0, 0xffffffff, (mode === 'long64' ? ATTR_CODE64 : ATTR_CODE32) | dpl);
  for (const sg of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(sg, dsSel, 0, 0, 0xffffffff, ATTR_DATA | dpl);
  cpu.setRflags(0x2);
  cpu.stateChanged();
  cpu.flushTlb(true);

  const tm: TestMachine = {
    cpu,
    mem,
    mode,
    ptRoot: root,
    load(addr: number, bytes: Uint8Array | number[]): void {
      const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
      mem.writeBytes(addr, b);
    },
    start(rip: number | bigint, rsp: number | bigint = STACK_TOP): void {
      const r = toBig(rip);
      s.ripLo = Number(r & 0xffffffffn) | 0;
      s.ripHi = long && mode === 'long64' ? Number(r >> 32n) | 0 : 0;
      const sp = toBig(rsp);
      s.gprLo[4] = Number(sp & 0xffffffffn) | 0;
      s.gprHi[4] = mode === 'long64' ? Number(sp >> 32n) | 0 : 0;
    },
    mapPage,
    pteOffset(lin: number | bigint): number {
      if (!paged) return -1;
      return entryFor(toBig(lin), false);
    },
    setIdtGate(vector: number, handler: number | bigint, gdpl = 0, ist = 0): void {
      const h = toBig(handler);
      if (long) {
        const e = IDT_BASE + vector * 16;
        const lo = Number(h & 0xffffn);
        const mid = Number((h >> 16n) & 0xffffn);
        dv.setUint32(e, (lo | (SEL_CODE64 << 16)) >>> 0, true);
        dv.setUint32(e + 4, ((mid << 16) | 0x8e00 | (gdpl << 13) | (ist & 7)) >>> 0, true);
        dv.setUint32(e + 8, Number((h >> 32n) & 0xffffffffn), true);
        dv.setUint32(e + 12, 0, true);
      } else {
        const e = IDT_BASE + vector * 8;
        const lo = Number(h & 0xffffn);
        const mid = Number((h >> 16n) & 0xffffn);
        dv.setUint32(e, (lo | (SEL_CODE32 << 16)) >>> 0, true);
        dv.setUint32(e + 4, ((mid << 16) | 0x8e00 | (gdpl << 13)) >>> 0, true);
      }
    },
  };
  return tm;
}

/** Encodes a segment descriptor: [low dword, high dword]. `flags` nibble = G, D/B, L, AVL (bits 3..0). */
function desc(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi =
    (base & 0xff000000) |
    ((flags & 0xf) << 20) |
    (limit & 0xf0000) |
    ((access & 0xff) << 8) |
    ((base >>> 16) & 0xff);
  return [lo | 0, hi | 0];
}
