/**
 * The domain and vCPU objects of the Xen model (Xen's struct domain /
 * struct vcpu for one PV domU). They implement the contracts of
 * engine/xen/types.ts used by the PV MMU (engine/xen/mm) and hold the
 * per-subsystem state the hypercall modules work on.
 */
import type { CpuApi } from '../cpu/api';
import { MachineMemory, PAGE_SIZE } from '../memory/machine-memory';
import { copyFromGuest, copyToGuest } from './guest-access';
import { DOMID_XEN, type XenDomainCore, type XenVcpuCore } from './types';
import { GUEST_MFN_BASE, XEN_MFN_BASE, XEN_POOL_FRAMES, DEFAULT_PERIODIC_NS } from './layout';

/** One virtual IDT entry (Xen public/arch-x86/xen.h: trap_info). */
export interface TrapInfo {
  /** bits 0-1 DPL for INT n, bit 2 mask events on entry. */
  flags: number;
  cs: number;
  address: bigint;
}

/** A registered callback (Xen public/callback.h). */
export interface Callback {
  cs: number;
  address: bigint;
  /** CALLBACKF_mask_events. */
  maskEvents: boolean;
}

/** Where Xen's observers (tracing, debugger filters) are told about events. Every method is optional. */
export interface XenObserver {
  /** Before a hypercall executes; return true to stop the machine first (RIP stays at the instruction). */
  beforeHypercall?(v: Vcpu, nr: number, args: bigint[]): boolean;
  afterHypercall?(v: Vcpu, nr: number, args: bigint[], result: number): void;
  /** Before an exception is bounced to the guest (or crashes it); true = stop first. */
  beforeTrap?(v: Vcpu, vector: number, errorCode: number, cr2: bigint): boolean;
  /** A port was raised ('send' from the guest) or an upcall delivered. */
  event?(v: Vcpu | null, port: number, kind: 'send' | 'upcall'): boolean;
  grantOp?(v: Vcpu, cmd: number, refs: number[]): boolean;
  reject?(errno: number, reason: string): void;
  crash?(reason: string): void;
  trace?(line: string): void;
}

/** Virtual CPU (Xen's struct vcpu with struct pv_vcpu). */
export class Vcpu implements XenVcpuCore {
  kernelMode = true;
  kernelRootMfn = 0;
  userRootMfn = 0;
  ldtBase = 0n;
  ldtEnts = 0;
  gdtFrames: number[] = [];
  gdtEnts = 0;

  /** Virtual IDT: 256 entries, address 0 = none. */
  readonly trapTable: TrapInfo[] = [];
  eventCallback: Callback | null = null;
  failsafeCallback: Callback | null = null;
  syscallCallback: Callback | null = null;
  syscall32Callback: Callback | null = null;
  sysenterCallback: Callback | null = null;
  nmiCallback: Callback | null = null;
  kernelSs = 0;
  kernelSp = 0n;
  /** Virtual CR0.TS (fpu_taskswitch). */
  fpuTs = false;
  /**
   * The guest's view of CR4 (Xen's v->arch.pv.ctrlreg[4], built by
   * pv_fixup_guest_cr4 in traps.ts): TSD/DE/OSXSAVE as the guest set them
   * plus Xen's PAE/MCE/OSFXSR/OSXMMEXCPT. The CPU's own CR4 is Xen's.
   */
  guestCr4 = 0;
  /** Virtual IOPL (physdev set_iopl), 0-3. */
  iopl = 0;
  /** 64-bit GS bases; the active one is in the CPU's GS cache, the other in its KERNEL_GS_BASE MSR. */
  gsBaseUser = 0n;
  gsBaseKernel = 0n;
  fsBase = 0n;
  /** Debug registers as the guest set them (set_debugreg). */
  readonly debugreg: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n, 0xffff0ff0n, 0x400n];
  /** DR7 L/G enables of I/O breakpoints (Xen v->arch.pv.dr7_emul): kept out of the hardware DR7, checked in port I/O emulation. */
  dr7Emul = 0;
  /** 32-bit guests: Xen-owned L4 the CPU's CR3 points at (slot 0 = the guest's L3); 0 until built. */
  compatL4Mfn = 0;
  /** Virtual CR2 (last #PF address). */
  cr2 = 0n;

  /** vcpu_info location: machine frame and byte offset. */
  vcpuInfoMfn = 0;
  vcpuInfoOffset = 0;
  vcpuInfoRegistered = false;
  /** Guest virtual addresses of the runstate / secondary time areas (0 = none). */
  runstateArea = 0n;
  timeArea = 0n;

  online = false;
  blocked = false;
  /** Ports polled by SCHEDOP_poll (null when not polling). */
  pollPorts: number[] | null = null;
  pollTimeoutNs = 0;

  /** Single-shot timer deadline in ns of system time (0 = none). */
  singleshotNs = 0;
  periodicNs = DEFAULT_PERIODIC_NS;
  nextPeriodicNs = DEFAULT_PERIODIC_NS;
  /** Port bound to each per-vCPU VIRQ on this vCPU (0 = unbound). */
  readonly virqPorts = new Int32Array(24);

  /** Runstate accounting (ns in each state: running, runnable, blocked, offline). */
  runstate = 0;
  runstateEntryNs = 0;
  readonly runstateTime = [0, 0, 0, 0];

  /** When set, the next hypercall at this RIP runs without a filter stop (the debugger resumed it). */
  skipFilterRipLo = -1;
  skipFilterRipHi = -1;
  /** Set by handlers that must not have RAX overwritten (iret). */
  noResult = false;

  constructor(
    readonly id: number,
    readonly cpu: CpuApi,
    readonly domain: Domain,
  ) {
    for (let i = 0; i < 256; i++) this.trapTable.push({ flags: 0, cs: 0, address: 0n });
  }

  /** Buffer offset of this vCPU's vcpu_info. */
  vcpuInfoOff(): number {
    const base = this.domain.mem.mfnToOffset(this.vcpuInfoMfn);
    return base < 0 ? -1 : base + this.vcpuInfoOffset;
  }
  get upcallMask(): number {
    const o = this.vcpuInfoOff();
    return o < 0 ? 1 : this.domain.mem.read8(o + 1);
  }
  set upcallMask(v: number) {
    const o = this.vcpuInfoOff();
    if (o >= 0) this.domain.mem.write8(o + 1, v);
  }
  get upcallPending(): number {
    const o = this.vcpuInfoOff();
    return o < 0 ? 0 : this.domain.mem.read8(o);
  }
  set upcallPending(v: number) {
    const o = this.vcpuInfoOff();
    if (o >= 0) this.domain.mem.write8(o, v);
  }

  /** Guest word size in bytes (4 or 8). */
  get ulong(): number {
    return this.domain.bits / 8;
  }

  /** Reads an unsigned little-endian value of `size` bytes at guest virtual `va`; null on fault. */
  rd(va: bigint, size: number): bigint | null {
    const b = copyFromGuest(this.cpu, va, size);
    if (!b) return null;
    let r = 0n;
    for (let i = size - 1; i >= 0; i--) r = (r << 8n) | BigInt(b[i]);
    return r;
  }
  /** Reads `len` bytes at `va`; null on fault. */
  rdBytes(va: bigint, len: number): Uint8Array | null {
    return copyFromGuest(this.cpu, va, len);
  }
  /** Writes `size` bytes of `value` at `va`; false on fault. */
  wr(va: bigint, size: number, value: bigint | number): boolean {
    let x = BigInt(value);
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      b[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return copyToGuest(this.cpu, va, b);
  }
  wrBytes(va: bigint, data: Uint8Array): boolean {
    return copyToGuest(this.cpu, va, data);
  }
  /** Reads a struct of `size` bytes into a DataView (little-endian); null on fault. */
  rdStruct(va: bigint, size: number): DataView | null {
    const b = copyFromGuest(this.cpu, va, size);
    return b ? new DataView(b.buffer, b.byteOffset, b.byteLength) : null;
  }

  /** Current system time of this vCPU in ns (from instructions retired; see time.ts). */
  nowNs(): number {
    return this.domain.time.nowNs(this);
  }
}

/** Domain state: Xen's struct domain for the single PV domU. */
export class Domain implements XenDomainCore {
  readonly domid: number;
  readonly bits: 32 | 64;
  readonly mem: MachineMemory;
  readonly vcpus: Vcpu[] = [];
  nrPages: number;
  /** Pages the domain may hold (start = nrPages). */
  maxPages: number;
  /** Owner of each frame by buffer frame index: domid, DOMID_XEN, or -1 = free. */
  readonly owner: Int32Array;
  /** Next free Xen pool frame index. */
  private xenNext = 0;
  m2pMfns: number[] = [];
  /** Guest frames released by decrease_reservation, reusable by populate_physmap (kept sorted for determinism). */
  readonly freeGuestMfns: number[] = [];
  private vmAssistLo = 0;
  private vmAssistHi = 0;

  sharedInfoMfn = 0;
  startInfoPfn = 0;
  /** Name of the build type string written in start_info.magic. */
  magic = '';

  /** Shutdown state: set by SCHEDOP_shutdown or a crash. */
  shutdownReason: number | null = null;
  shutdownCode = 0;
  crashed: string | null = null;
  /** Last refusal (errno and Xen-like reason) for the debugger. */
  lastReject: { errno: number; reason: string } | null = null;
  observer: XenObserver = {};

  // Subsystems, attached by the builder (avoids import cycles).
  time!: import('./time').XenTime;
  evtchn!: import('./event-channel').EventChannels;
  gnttab!: import('./grant-table').GrantTable;
  mm!: import('./mm/index').PvMm;

  /**
   * @param frameCount frames of guest RAM (pages)
   * @param extraFrames headroom frames (for maxmem > memory)
   */
  constructor(domid: number, bits: 32 | 64, nrPages: number, extraFrames = 0) {
    this.domid = domid;
    this.bits = bits;
    this.nrPages = nrPages;
    this.maxPages = nrPages;
    const total = XEN_POOL_FRAMES + nrPages + extraFrames;
    this.mem = new MachineMemory(total, XEN_MFN_BASE);
    this.owner = new Int32Array(total).fill(-1);
    for (let p = 0; p < nrPages; p++) this.owner[GUEST_MFN_BASE - XEN_MFN_BASE + p] = domid;
    for (let p = nrPages; p < nrPages + extraFrames; p++) {
      this.freeGuestMfns.push(GUEST_MFN_BASE + p);
    }
    // The M2P: one entry per MFN in the buffer, all "invalid" until set.
    const entSize = bits / 8;
    const maxMfn = XEN_MFN_BASE + total;
    const m2pFrames = Math.ceil((maxMfn * entSize) / PAGE_SIZE);
    for (let i = 0; i < m2pFrames; i++) {
      const mfn = this.allocXenFrame();
      this.mem.fill(this.mem.mfnToOffset(mfn), PAGE_SIZE, 0xff);
      this.m2pMfns.push(mfn);
    }
  }

  /** Highest MFN + 1 the M2P covers. */
  get m2pEntries(): number {
    return (this.m2pMfns.length * PAGE_SIZE) / (this.bits / 8);
  }

  vmAssistOn(type: number): boolean {
    if (type < 32) return ((this.vmAssistLo >>> type) & 1) === 1;
    if (type < 64) return ((this.vmAssistHi >>> (type - 32)) & 1) === 1;
    return false;
  }
  setVmAssist(type: number, on: boolean): void {
    if (type < 32) this.vmAssistLo = on ? this.vmAssistLo | (1 << type) : this.vmAssistLo & ~(1 << type);
    else this.vmAssistHi = on ? this.vmAssistHi | (1 << (type - 32)) : this.vmAssistHi & ~(1 << (type - 32));
  }
  /** The VMASST bitmap as Xen reports it (vcpu_guest_context.vm_assist). */
  vmAssistBits(): bigint {
    return (BigInt(this.vmAssistHi >>> 0) << 32n) | BigInt(this.vmAssistLo >>> 0);
  }

  frameOwner(mfn: number): number {
    const i = mfn - XEN_MFN_BASE;
    if (i < 0 || i >= this.owner.length) return -1;
    return this.owner[i];
  }
  setFrameOwner(mfn: number, owner: number): void {
    const i = mfn - XEN_MFN_BASE;
    if (i >= 0 && i < this.owner.length) this.owner[i] = owner;
  }

  private m2pOff(mfn: number): number {
    const entSize = this.bits / 8;
    const byte = mfn * entSize;
    const frame = Math.floor(byte / PAGE_SIZE);
    if (mfn < 0 || frame >= this.m2pMfns.length) return -1;
    return this.mem.mfnToOffset(this.m2pMfns[frame]) + (byte % PAGE_SIZE);
  }
  m2p(mfn: number): number {
    const o = this.m2pOff(mfn);
    if (o < 0) return -1;
    if (this.bits === 64) {
      const hi = this.mem.read32(o + 4);
      const lo = this.mem.read32(o);
      if (hi !== 0) return -1;
      return lo === 0xffffffff ? -1 : lo;
    }
    const v = this.mem.read32(o);
    return v === 0xffffffff ? -1 : v;
  }
  setM2p(mfn: number, pfn: number): void {
    const o = this.m2pOff(mfn);
    if (o < 0) return;
    if (this.bits === 64) {
      if (pfn < 0) this.mem.write64(o, -1, -1);
      else this.mem.write64(o, pfn >>> 0, Math.floor(pfn / 0x100000000));
    } else this.mem.write32(o, pfn < 0 ? 0xffffffff : pfn >>> 0);
  }

  allocXenFrame(): number {
    if (this.xenNext >= XEN_POOL_FRAMES) return -1;
    const idx = this.xenNext++;
    this.owner[idx] = DOMID_XEN;
    this.mem.fill(idx * PAGE_SIZE, PAGE_SIZE, 0);
    return XEN_MFN_BASE + idx;
  }

  reject(errno: number, reason: string): number {
    this.lastReject = { errno, reason };
    this.observer.reject?.(errno, reason);
    return -errno;
  }

  crash(reason: string): void {
    if (this.crashed !== null || this.shutdownReason !== null) return;
    this.observer.crash?.(reason);
    this.crashed = reason;
    this.shutdownReason = 3; // SHUTDOWN_crash
  }

  /** True once the domain shut down or crashed. */
  get finished(): boolean {
    return this.shutdownReason !== null;
  }

  /** Buffer offset of shared_info. */
  sharedInfoOff(): number {
    return this.mem.mfnToOffset(this.sharedInfoMfn);
  }

  trace(line: string): void {
    this.observer.trace?.(line);
  }
}
