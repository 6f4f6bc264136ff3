/**
 * Contract between the hypervisor's parts: the domain and vCPU objects
 * (engine/xen/domain.ts, owned by the core of the model) and the PV MMU
 * (engine/xen/mm/, page types, validation and the MMU hypercalls).
 *
 * Conventions: MFN/PFN are numbers (< 2^32); guest virtual addresses and
 * 64-bit hypercall arguments are bigint (cold path). Return values of
 * hypercall handlers are Xen's: >= 0 success, negative Xen errno
 * (public/errno.h, see errno.ts) on failure.
 */
import type { CpuApi } from '../cpu/api';
import type { MachineMemory } from '../memory/machine-memory';

/** Special domain ids (Xen public/xen.h). */
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_ANY = 0x7ff5;
export const DOMID_IDLE = 0x7fff;

/** VMASST types (Xen public/xen.h). */
export const VMASST_TYPE_4gb_segments = 0;
export const VMASST_TYPE_4gb_segments_notify = 1;
export const VMASST_TYPE_writable_pagetables = 2;
export const VMASST_TYPE_pae_extended_cr3 = 3;
export const VMASST_TYPE_architectural_iopl = 4;
export const VMASST_TYPE_runstate_update_flag = 5;
export const VMASST_TYPE_m2p_strict = 32;

/** One guest vCPU as the MMU needs it. */
export interface XenVcpuCore {
  readonly id: number;
  readonly cpu: CpuApi;
  /** 64-bit PV: true while the guest kernel runs (Xen's TF_kernel_mode). 32-bit: CPL 1. */
  kernelMode: boolean;
  /** MFN of the kernel root table (64-bit L4 / 32-bit L3), 0 when none. */
  kernelRootMfn: number;
  /** 64-bit only: MFN of the user L4 (0 = none). */
  userRootMfn: number;
  /** LDT as set by MMUEXT_SET_LDT: guest linear base and entry count. */
  ldtBase: bigint;
  ldtEnts: number;
  /** GDT frames set by set_gdt (MFNs) and entry count. */
  gdtFrames: number[];
  gdtEnts: number;
}

/**
 * The domain as the MMU and other subsystems need it. Implemented by
 * `Domain` in engine/xen/domain.ts.
 */
export interface XenDomainCore {
  readonly domid: number;
  readonly bits: 32 | 64;
  readonly mem: MachineMemory;
  readonly vcpus: XenVcpuCore[];
  /** Bitmap of enabled VMASST types (bit n = type n; m2p_strict is bit 32 -> kept in a bigint-free way by `vmAssistOn`). */
  vmAssistOn(type: number): boolean;
  /** Domain id that owns machine frame `mfn`, DOMID_XEN for hypervisor frames, -1 for frames nobody owns / that do not exist. */
  frameOwner(mfn: number): number;
  /** M2P lookup: pfn for an owned frame, or -1 ("invalid" entry). */
  m2p(mfn: number): number;
  /** MMU_MACHPHYS_UPDATE: sets M2P[mfn] = pfn (the caller checked ownership). */
  setM2p(mfn: number, pfn: number): void;
  /** Number of pages the guest has (start_info.nr_pages). */
  readonly nrPages: number;
  /**
   * Records why Xen refused a guest request (text like Xen's log line, e.g.
   * "Bad L1 flags 0x800000" or "Attempt to create linear p.t. with write perms")
   * and returns `-errno`. The debugger's mmu-reject filter stops on it.
   */
  reject(errno: number, reason: string): number;
  /** Crash the domain with a reason (Xen's domain_crash()). */
  crash(reason: string): void;
}

/** Arguments of one hypercall as the dispatcher hands them to a handler. */
export interface HypercallArgs {
  /** Up to 6 raw argument registers, zero-extended (32-bit guests: 32-bit values). */
  readonly a: bigint[];
}
