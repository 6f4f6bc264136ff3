/**
 * The domain builder (libxenguest xg_dom_x86.c / xg_dom_core.c and Xen's
 * domain creation as a toolstack drives it): lays out guest memory as in
 * brief §1.4-1.7, writes start_info, the P2M list, the xenstore and console
 * rings, bootstrap page tables, the boot stack, shared_info and the
 * pre-seeded grant entries, and sets the vCPU's start-of-day registers.
 *
 * Memory numbering: see layout.ts and docs/memory-layout.md.
 */
import type { CpuApi, CpuidPolicy, CpuidResult } from '../cpu/api';
import type { MachineMemory } from '../memory/machine-memory';
import { Seg, Reg, Cr0, Cr4, Efer, Flag } from '../cpu/state';
import { PAGE_SIZE } from '../memory/machine-memory';
import { Domain, Vcpu } from './domain';
import { XenTime } from './time';
import { EventChannels } from './event-channel';
import { GrantTable, GTF_permit_access } from './grant-table';
import { PvMm } from './mm/index';
import { writeHypercallPage } from './hypercall-page';
import { setReg, setRip, loadGuestSegment } from './regs';
import { XEN_MAJOR, XEN_MINOR } from './version';
import { vcpuInitHook } from './vcpu-op';
import { initVcpuFromContext } from './vcpu-context';
import { MAX_VCPUS } from './config';
import { guestKernel, pvFixupGuestCr4 } from './traps';
import {
  GUEST_MFN_BASE,
  GUEST_DOMID,
  BACKEND_DOMID,
  FLAT_KERNEL_CS64,
  FLAT_KERNEL_SS64,
  FLAT_RING1_CS,
  FLAT_RING1_DS,
} from './layout';

/** What the builder needs from a kernel image (engine/image's LoadedImage provides it). */
export interface BuildImage {
  bits: 32 | 64;
  entry: bigint;
  virtBase: bigint;
  virtKstart: bigint;
  virtKend: bigint;
  hypercallPage?: bigint;
  modStartPfn: boolean;
  /** Segments: guest virtual address, bytes from the file, size in memory. */
  segments: { vaddr: bigint; data: Uint8Array; memsz: number }[];
}

export interface BuildOptions {
  /** Guest RAM in pages. */
  nrPages: number;
  vcpus: number;
  cmdline: string;
  ramdisk?: Uint8Array;
  tscPerInstruction: number;
  /** Creates the CPU of each vCPU (default: engine/cpu's `Cpu`); tests may pass a stand-in. */
  createCpu?: (mem: MachineMemory) => CpuApi;
}

function defaultCreateCpu(mem: MachineMemory): CpuApi {
  // Loaded lazily so the Xen model can be unit-tested without the interpreter.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Cpu } = require('../cpu/cpu') as typeof import('../cpu/cpu');
  return new Cpu(mem);
}

/** Everything the builder decided, for inspection and the toolstack glue. */
export interface BuildResult {
  dom: Domain;
  startInfoPfn: number;
  storePfn: number;
  consolePfn: number;
  storePort: number;
  consolePort: number;
  ptBasePfn: number;
  nrPtFrames: number;
  p2mPfn: number;
  stackPfn: number;
  virtPgtabEnd: bigint;
  entry: bigint;
}

export class BuildError extends Error {}

const MASK64 = (1n << 64n) - 1n;
const MB4 = 4n << 20n;

function pfnToMfn(pfn: number): number {
  return GUEST_MFN_BASE + pfn;
}

const bits = (...b: number[]) => b.reduce((m, x) => (m | (1 << x)) >>> 0, 0);
/** Leaf 1 ECX XSAVE (26) and OSXSAVE (27). */
const CPUID_XSAVE = 1 << 26;
const CPUID_OSXSAVE = 1 << 27;
/** Leaf 1 EDX: VME, PSE, MTRR, PGE, PSE36, DS, ACPI, TM, PBE. */
const PV_HIDE_1_EDX = bits(1, 3, 12, 13, 17, 21, 22, 29, 31);
/** Leaf 1 ECX: DTES64, MONITOR, DS_CPL, VMX, SMX, EST, TM2, XTPR, PDCM, PCID, DCA, X2APIC, TSC_DEADLINE, OSXSAVE. */
const PV_HIDE_1_ECX = bits(2, 3, 4, 5, 6, 7, 8, 14, 15, 17, 18, 21, 24, 27);
/** Leaf 7.0 EBX: TSC_ADJUST, SGX, SMEP, INVPCID, PQM, MPX, PQE, SMAP, PROC_TRACE, AVX512PF, AVX512ER. */
const PV_HIDE_7_EBX = bits(1, 2, 7, 10, 12, 14, 15, 20, 25, 26, 27);
/** Leaf 7.0 ECX: UMIP, PKU, OSPKE, WAITPKG, CET_SS, TME, LA57, BLD, ENQCMD, SGX_LC, PKS. */
const PV_HIDE_7_ECX = bits(2, 3, 4, 5, 7, 13, 16, 24, 29, 30, 31);
/** Leaf 0x80000001 EDX: PAGE1GB. */
const PV_HIDE_E1_EDX = bits(26);
/** Leaf 0x80000001 ECX: SVM, EXTAPIC, CR8_LEGACY, OSVW, IBS, SKINIT, WDT, LWP, NODEID_MSR, TOPOEXT, MONITORX. */
const PV_HIDE_E1_ECX = bits(2, 3, 4, 9, 10, 12, 13, 15, 19, 22, 29);

/**
 * CPUID policy with Xen's leaves 0x40000000-0x40000005 (brief §3.3) and the
 * hypervisor bit. With `v`, leaf 1 ECX.OSXSAVE is Xen's dynamic PV bit
 * (xen/arch/x86/cpuid.c guest_cpuid): set when the guest's virtual
 * CR4.OSXSAVE is, or, on the enlightened path (the forced-emulation prefix,
 * which calls `leaf` without `cr4`, i.e. while a #UD is serviced) in guest
 * kernel mode, when Xen's own CR4.OSXSAVE is: the leak PV Linux relies on
 * (xen_check_xsave).
 */
export function xenCpuidPolicy(
  base: CpuidPolicy,
  tscKhz: number,
  tscMul: number,
  tscShift: number,
  v?: Vcpu,
): CpuidPolicy {
  return {
    leaf(eax: number, ecx: number, cr4?: number): CpuidResult {
      const l = eax >>> 0;
      if (l >= 0x40000000 && l < 0x40010000) {
        switch (l) {
          case 0x40000000:
            return { eax: 0x40000005, ebx: 0x566e6558, ecx: 0x65584d4d, edx: 0x4d4d566e };
          case 0x40000001:
            return { eax: ((XEN_MAJOR << 16) | XEN_MINOR) >>> 0, ebx: 0, ecx: 0, edx: 0 };
          case 0x40000002:
            return { eax: 1, ebx: 0x40000000, ecx: 1, edx: 0 };
          case 0x40000003:
            if (ecx === 0) return { eax: 0, ebx: 0, ecx: tscKhz >>> 0, edx: 0 };
            if (ecx === 1) return { eax: 0, ebx: 0, ecx: tscMul >>> 0, edx: tscShift & 0xff };
            if (ecx === 2) return { eax: tscKhz >>> 0, ebx: 0, ecx: 0, edx: 0 };
            return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
          default:
            return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
        }
      }
      const r = base.leaf(eax, ecx, cr4);
      // Features Xen does not offer a PV guest (public/arch-x86/cpufeatureset.h: only 'A' bits reach PV).
      switch (l) {
        case 1: {
          let osxsave = 0;
          if (v && r.ecx & CPUID_XSAVE) {
            const enlightened = cr4 === undefined && guestKernel(v) && (v.cpu.state.cr4 & Cr4.OSXSAVE) !== 0;
            if (v.guestCr4 & Cr4.OSXSAVE || enlightened) osxsave = CPUID_OSXSAVE;
          }
          return {
            ...r,
            ecx: ((r.ecx & ~PV_HIDE_1_ECX) | osxsave | 0x80000000) >>> 0,
            edx: (r.edx & ~PV_HIDE_1_EDX) >>> 0,
          };
        }
        case 7:
          if (ecx === 0)
            return { ...r, ebx: (r.ebx & ~PV_HIDE_7_EBX) >>> 0, ecx: (r.ecx & ~PV_HIDE_7_ECX) >>> 0 };
          return r;
        case 0x80000001:
          return { ...r, ecx: (r.ecx & ~PV_HIDE_E1_ECX) >>> 0, edx: (r.edx & ~PV_HIDE_E1_EDX) >>> 0 };
        default:
          return r;
      }
    },
  };
}

/** Number of tables at a level whose entries cover 2^shift bytes, for [s, e). */
function tablesFor(s: bigint, e: bigint, shift: bigint): number {
  return Number(((e - 1n) >> (shift + 9n)) - (s >> (shift + 9n)) + 1n);
}

/**
 * Builds the domain. Throws BuildError for a configuration the builder
 * cannot satisfy (image too big for the memory, bad entry point).
 */
export function buildDomain(img: BuildImage, opt: BuildOptions): BuildResult {
  const bits = img.bits;
  if (opt.nrPages < 256) throw new BuildError(`memory: at least 1 MiB is needed (got ${opt.nrPages} pages)`);
  if (opt.vcpus < 1 || opt.vcpus > MAX_VCPUS)
    throw new BuildError(`vcpus: must be 1-${MAX_VCPUS} (got ${opt.vcpus})`);
  const dom = new Domain(GUEST_DOMID, bits, opt.nrPages);
  dom.magic = bits === 64 ? 'xen-3.0-x86_64' : 'xen-3.0-x86_32p';
  dom.time = new XenTime(dom, opt.tscPerInstruction);
  dom.evtchn = new EventChannels(dom);
  dom.gnttab = new GrantTable(dom);
  dom.mm = new PvMm(dom);
  const mem = dom.mem;
  const vmask = bits === 64 ? MASK64 : 0xffffffffn;
  const virtBase = img.virtBase & vmask;
  const va = (pfn: number) => (virtBase + BigInt(pfn) * 4096n) & vmask;
  const pfnOff = (pfn: number) => mem.mfnToOffset(pfnToMfn(pfn));

  // Xen frames: shared_info and the first grant-table frame.
  dom.sharedInfoMfn = dom.allocXenFrame();
  dom.gnttab.grow(1);

  // Guest frames: M2P for every page.
  for (let p = 0; p < opt.nrPages; p++) dom.setM2p(pfnToMfn(p), p);

  // --- Layout (bump allocator in pfn order) ---
  if (img.virtKstart < virtBase || img.virtKend < img.virtKstart)
    throw new BuildError('image: VIRT_BASE above the kernel start');
  let next = Number(((img.virtKend - virtBase + 4095n) & ~4095n) >> 12n);
  const checkFits = (n: number, what: string) => {
    if (n > opt.nrPages)
      throw new BuildError(`memory: ${opt.nrPages} pages are too few for the ${what} (need more than ${n})`);
  };
  checkFits(next, 'kernel image');
  for (const s of img.segments) {
    const off = Number((s.vaddr - virtBase) & vmask);
    if (off + s.memsz > next * PAGE_SIZE)
      throw new BuildError('image: segment outside [virt_kstart, virt_kend)');
    // Copy byte runs page by page (guest frames are contiguous in our numbering, but stay general).
    let done = 0;
    while (done < s.memsz) {
      const o = off + done;
      const pfn = Math.floor(o / PAGE_SIZE);
      const n = Math.min(PAGE_SIZE - (o % PAGE_SIZE), s.memsz - done);
      const dst = pfnOff(pfn) + (o % PAGE_SIZE);
      const fileN = Math.max(0, Math.min(n, s.data.length - done));
      if (fileN > 0) mem.writeBytes(dst, s.data.subarray(done, done + fileN));
      if (n > fileN) mem.fill(dst + fileN, n - fileN, 0);
      done += n;
    }
  }
  let modStart = 0n;
  let modLen = 0;
  let ramdiskPfn = -1;
  const ramdiskPages = opt.ramdisk ? Math.ceil(opt.ramdisk.length / PAGE_SIZE) : 0;
  if (opt.ramdisk && !img.modStartPfn) {
    ramdiskPfn = next;
    next += ramdiskPages;
    checkFits(next, 'ramdisk');
    modStart = va(ramdiskPfn);
    modLen = opt.ramdisk.length;
  }
  const p2mPfn = next;
  const p2mPages = Math.ceil((opt.nrPages * (bits / 8)) / PAGE_SIZE);
  next += p2mPages;
  const startInfoPfn = next++;
  const storePfn = next++;
  const consolePfn = next++;
  const ptPfn = next;
  // Count bootstrap tables (they must map themselves, the stack and 512 KiB of slack, to a 4 MiB boundary).
  const shifts64 = [39n, 30n, 21n, 12n];
  let nPt = 1;
  let end = 0n;
  for (let iter = 0; iter < 16; iter++) {
    end = ((virtBase + BigInt(ptPfn + nPt + 1) * 4096n + (512n << 10n) + MB4 - 1n) / MB4) * MB4;
    let n: number;
    if (bits === 64) {
      n =
        1 +
        tablesFor(virtBase, end, shifts64[1]) +
        tablesFor(virtBase, end, shifts64[2]) +
        tablesFor(virtBase, end, shifts64[3]);
    } else {
      n = 1 + tablesFor(virtBase, end, 21n) + tablesFor(virtBase, end, 12n);
      if (end - 1n < 0xc0000000n) n += 1; // extra L2 for L3[3]
    }
    if (n === nPt) break;
    nPt = n;
  }
  const virtPgtabEnd = end;
  const stackPfn = ptPfn + nPt;
  next = stackPfn + 1;
  const mappedPages = Number((virtPgtabEnd - virtBase) >> 12n);
  checkFits(mappedPages, 'initial mapping');
  if (opt.ramdisk && img.modStartPfn) {
    ramdiskPfn = mappedPages;
    checkFits(ramdiskPfn + ramdiskPages, 'ramdisk');
    modStart = BigInt(ramdiskPfn);
    modLen = ramdiskPages * PAGE_SIZE;
  }
  if (opt.ramdisk && ramdiskPfn >= 0) {
    mem.writeBytes(pfnOff(ramdiskPfn), opt.ramdisk);
  }

  // --- Page tables ---
  const tableKey = new Map<string, number>();
  let ptNext = ptPfn;
  const levels = bits === 64 ? [4, 3, 2, 1] : [3, 2, 1];
  const shiftOf = (lvl: number) => BigInt(12 + 9 * (lvl - 1));
  const vaIdx = (x: bigint) => (bits === 64 ? x & ((1n << 48n) - 1n) : x);
  const s0 = vaIdx(virtBase);
  const e0 = vaIdx(virtPgtabEnd - 1n) + 1n;
  tableKey.set(`${levels[0]}:0`, ptNext++);
  for (const lvl of levels.slice(1)) {
    const span = shiftOf(lvl) + 9n;
    for (let k = s0 >> span; k <= (e0 - 1n) >> span; k++) tableKey.set(`${lvl}:${k}`, ptNext++);
  }
  if (bits === 32 && !tableKey.has('2:3')) tableKey.set('2:3', ptNext++);
  if (ptNext - ptPfn !== nPt) throw new BuildError('builder: page-table count mismatch');
  const isPt = (pfn: number) => pfn >= ptPfn && pfn < ptPfn + nPt;
  const L1_PROT = 0x23n; // P|RW|A
  const UPPER_PROT = 0x67n; // P|RW|A|D|US
  const writeEntry = (tablePfn: number, idx: number, val: bigint) => {
    mem.write64(pfnOff(tablePfn) + idx * 8, Number(val & 0xffffffffn), Number(val >> 32n));
  };
  for (const [key, tpfn] of tableKey) {
    const [lvlS, kS] = key.split(':');
    const lvl = Number(lvlS);
    const k = BigInt(kS);
    const sh = shiftOf(lvl);
    const base = lvl === levels[0] ? 0n : k << (sh + 9n);
    const nEnt = bits === 32 && lvl === 3 ? 4 : 512;
    for (let i = 0; i < nEnt; i++) {
      const lo = base + (BigInt(i) << sh);
      const hi = lo + (1n << sh);
      if (hi <= s0 || lo >= e0) {
        // Not in the mapped range; 32-bit L3[3] still points at its L2.
        if (!(bits === 32 && lvl === 3 && i === 3)) continue;
      }
      if (lvl === 1) {
        const pfn = Number((lo - s0) >> 12n);
        const prot = isPt(pfn) ? L1_PROT & ~2n : L1_PROT;
        writeEntry(tpfn, i, (BigInt(pfnToMfn(pfn)) << 12n) | prot);
      } else {
        const child = tableKey.get(`${lvl - 1}:${lo >> (shiftOf(lvl - 1) + 9n)}`);
        if (child === undefined) continue;
        const prot = bits === 32 && lvl === 3 ? 0x1n : UPPER_PROT;
        writeEntry(tpfn, i, (BigInt(pfnToMfn(child)) << 12n) | prot);
      }
    }
  }
  const rootMfn = pfnToMfn(ptPfn);

  // --- P2M list ---
  for (let p = 0; p < opt.nrPages; p++) {
    const o = pfnOff(p2mPfn) + p * (bits / 8);
    if (bits === 64) mem.write64(o, pfnToMfn(p), 0);
    else mem.write32(o, pfnToMfn(p));
  }
  // Fill the rest of the last P2M page with ~0 (unused).
  const p2mEnd = pfnOff(p2mPfn) + opt.nrPages * (bits / 8);
  mem.fill(p2mEnd, pfnOff(p2mPfn) + p2mPages * PAGE_SIZE - p2mEnd, 0xff);

  // --- Event channels: xenstore (port 1), console (port 2), toward dom0 ---
  const storePort = dom.evtchn.allocUnbound(BACKEND_DOMID);
  const consolePort = dom.evtchn.allocUnbound(BACKEND_DOMID);

  // --- Grant entries 0 (console) and 1 (xenstore) (xc_dom_gnttab_seed) ---
  dom.gnttab.seed(0, GTF_permit_access, BACKEND_DOMID, pfnToMfn(consolePfn));
  dom.gnttab.seed(1, GTF_permit_access, BACKEND_DOMID, pfnToMfn(storePfn));

  // --- Console ring: empty, connected ---
  mem.fill(pfnOff(consolePfn), PAGE_SIZE, 0);
  mem.fill(pfnOff(storePfn), PAGE_SIZE, 0);

  // --- Hypercall page ---
  if (img.hypercallPage !== undefined) {
    const hp = Number(((img.hypercallPage & vmask) - virtBase) >> 12n);
    if (hp < 0 || hp >= mappedPages)
      throw new BuildError('image: HYPERCALL_PAGE outside the initial mapping');
    writeHypercallPage(dom, pfnOff(hp));
  }

  // --- start_info ---
  const si = pfnOff(startInfoPfn);
  mem.fill(si, PAGE_SIZE, 0);
  mem.writeBytes(si, new TextEncoder().encode(dom.magic));
  const siMaddr = dom.sharedInfoMfn * PAGE_SIZE;
  const cmd = new TextEncoder().encode(opt.cmdline).subarray(0, 1023);
  const siFlags = img.modStartPfn && opt.ramdisk ? 8 : 0;
  if (bits === 64) {
    const w64 = (o: number, v: number | bigint) => mem.write64Big(si + o, BigInt(v));
    w64(0x20, opt.nrPages);
    w64(0x28, siMaddr);
    mem.write32(si + 0x30, siFlags);
    w64(0x38, pfnToMfn(storePfn));
    mem.write32(si + 0x40, storePort);
    w64(0x48, pfnToMfn(consolePfn));
    mem.write32(si + 0x50, consolePort);
    w64(0x58, va(ptPfn));
    w64(0x60, nPt);
    w64(0x68, va(p2mPfn));
    w64(0x70, modStart);
    w64(0x78, modLen);
    mem.writeBytes(si + 0x80, cmd);
  } else {
    const w = (o: number, v: number | bigint) => mem.write32(si + o, Number(BigInt(v) & 0xffffffffn));
    w(0x20, opt.nrPages);
    w(0x24, siMaddr);
    w(0x28, siFlags);
    w(0x2c, pfnToMfn(storePfn));
    w(0x30, storePort);
    w(0x34, pfnToMfn(consolePfn));
    w(0x38, consolePort);
    w(0x3c, va(ptPfn));
    w(0x40, nPt);
    w(0x44, va(p2mPfn));
    w(0x48, modStart);
    w(0x4c, modLen);
    mem.writeBytes(si + 0x50, cmd);
  }
  dom.startInfoPfn = startInfoPfn;

  // --- shared_info: zeroed, every vcpu_info masked; arch.max_pfn ---
  const sh = dom.sharedInfoOff();
  for (let i = 0; i < 32; i++) mem.write8(sh + i * 64 + 1, 1);
  if (bits === 64) mem.write64(sh + 0xc10, opt.nrPages, 0);
  else mem.write32(sh + 0x90c, opt.nrPages);
  dom.time.writeWallclock();

  // --- vCPUs ---
  const codeHooks: ((f: number) => void)[] = [];
  for (let i = 0; i < opt.vcpus; i++) {
    const cpu = (opt.createCpu ?? defaultCreateCpu)(mem);
    codeHooks.push(mem.onCodeWrite);
    const v = new Vcpu(i, cpu, dom);
    v.vcpuInfoMfn = dom.sharedInfoMfn;
    v.vcpuInfoOffset = i * 64;
    dom.vcpus.push(v);
    setupCpu(v, opt.tscPerInstruction);
  }
  // Several Cpu objects share the memory: every one must hear about code writes.
  if (codeHooks.length > 1) {
    mem.onCodeWrite = (f: number) => {
      for (const h of codeHooks) h(f);
    };
  }

  dom.mm.installXenMappings();
  vcpuInitHook.init = (t, ctx) => {
    const rc = initVcpuFromContext(t, ctx);
    if (rc === 0) syncCompatCr3(t);
    return rc;
  };
  const v0 = dom.vcpus[0];
  const pinRc = dom.mm.pin(bits === 64 ? 4 : 3, rootMfn);
  const bpRc = dom.mm.newBaseptr(v0, rootMfn);
  if (pinRc < 0 || bpRc < 0 || v0.kernelRootMfn !== rootMfn) {
    // The MMU refused (or is not available): load CR3 directly so the guest can still start.
    v0.kernelRootMfn = rootMfn;
    v0.cpu.state.cr3Lo = (rootMfn * PAGE_SIZE) | 0;
    v0.cpu.state.cr3Hi = 0;
    v0.cpu.stateChanged();
    v0.cpu.flushTlb(true);
    dom.trace(`builder: MMU pin=${pinRc} new_baseptr=${bpRc}; CR3 loaded directly`);
  }
  syncCompatCr3(v0);
  v0.online = true;
  v0.runstate = 0;
  setRip(v0.cpu, img.entry & vmask);
  setReg(v0.cpu, Reg.RSP, va(stackPfn + 1));
  setReg(v0.cpu, Reg.RSI, va(startInfoPfn));
  v0.kernelSs = bits === 64 ? FLAT_KERNEL_SS64 : FLAT_RING1_DS;
  v0.kernelSp = va(stackPfn + 1);
  dom.time.updateVcpuTime(v0);
  for (const v of dom.vcpus) {
    v.nextPeriodicNs = v.periodicNs;
  }

  return {
    dom,
    startInfoPfn,
    storePfn,
    consolePfn,
    storePort,
    consolePort,
    ptBasePfn: ptPfn,
    nrPtFrames: nPt,
    p2mPfn,
    stackPfn,
    virtPgtabEnd,
    entry: img.entry & vmask,
  };
}

/** Start-of-day CPU state of a vCPU (brief §1.7): paging, flat selectors, intercepts, CPUID policy. */
export function setupCpu(v: Vcpu, tscPerInstruction: number): void {
  const cpu = v.cpu;
  const d = v.domain;
  const st = cpu.state;
  cpu.tscPerInstruction = Math.max(1, Math.floor(tscPerInstruction));
  cpu.tscOffset = 0;
  cpu.interceptExceptions = 0xffffffff | 0;
  cpu.interceptSoftInt.fill(1);
  cpu.interceptSyscall = true;
  cpu.interceptSysenter = true;
  cpu.interceptPrivileged = true;
  st.cr0 = Cr0.PE | Cr0.MP | Cr0.ET | Cr0.NE | Cr0.WP | Cr0.AM | Cr0.PG | 0;
  // Xen's own CR4 (mmu_cr4_features on an XSAVE host: OSXSAVE set, so the guest's XSAVE/XGETBV run natively);
  // the guest sees pv_fixup_guest_cr4's view. XCR0 starts as Xen loads it for a vCPU: x87|SSE.
  st.cr4 = Cr4.PAE | Cr4.PGE | Cr4.OSFXSR | Cr4.OSXMMEXCPT | Cr4.OSXSAVE;
  st.xcr0 = 3;
  v.guestCr4 = pvFixupGuestCr4(v, 0);
  st.dr6 = 0xffff0ff0 | 0;
  st.dr7 = 0x400;
  if (d.bits === 64) {
    st.efer = Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE;
    st.cpl = 3;
    loadGuestSegment(v, Seg.CS, FLAT_KERNEL_CS64);
    loadGuestSegment(v, Seg.SS, FLAT_KERNEL_SS64);
    for (const s of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) loadGuestSegment(v, s, 0);
  } else {
    // Xen runs a 32-bit PV guest as a compat guest of a 64-bit hypervisor:
    // long mode with a 32-bit code segment, the guest's PAE L3 under a
    // per-vCPU L4 (syncCompatCr3).
    st.efer = Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE;
    st.cpl = 1;
    loadGuestSegment(v, Seg.CS, FLAT_RING1_CS);
    for (const s of [Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS]) loadGuestSegment(v, s, FLAT_RING1_DS);
  }
  cpu.setRflags(Flag.IF | Flag.FIXED1);
  const t = d.time;
  cpu.cpuid = xenCpuidPolicy(cpu.cpuid, t.k * 1_000_000, t.mul, t.shift, v);
  cpu.stateChanged();
}

/**
 * 32-bit (compat) guests: the CPU runs in long mode, so CR3 points at a
 * Xen-owned per-vCPU L4 whose slot 0 maps the guest's L3 (Xen's
 * pv_l3 under the compat monitor table). Called after anything that may
 * have changed the guest's base pointer. No-op for 64-bit guests.
 */
export function syncCompatCr3(v: Vcpu): void {
  const d = v.domain;
  if (d.bits !== 32 || v.kernelRootMfn === 0) return;
  if (v.compatL4Mfn === 0) {
    v.compatL4Mfn = d.allocXenFrame();
    if (v.compatL4Mfn < 0) {
      v.compatL4Mfn = 0;
      d.crash('out of hypervisor frames for the compat L4');
      return;
    }
  }
  const cpu = v.cpu;
  const l4 = v.compatL4Mfn;
  const off = d.mem.mfnToOffset(l4);
  const want = (v.kernelRootMfn * PAGE_SIZE + 0x67) >>> 0;
  const wantHi = Math.floor(v.kernelRootMfn / 0x100000);
  const cur = d.mem.read32(off);
  const curHi = d.mem.read32(off + 4);
  const cr3 = (cpu.state.cr3Lo >>> 0) + (cpu.state.cr3Hi >>> 0) * 0x100000000;
  if (cur === want && curHi === wantHi && cr3 === l4 * PAGE_SIZE) return;
  d.mem.write32(off, want);
  d.mem.write32(off + 4, wantHi);
  cpu.state.cr3Lo = (l4 * PAGE_SIZE) | 0;
  cpu.state.cr3Hi = Math.floor(l4 / 0x100000);
  cpu.stateChanged();
  cpu.flushTlb(true);
}
