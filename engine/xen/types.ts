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
  /**
   * 32-bit guests run by a long-mode CPU: MFN of the Xen-owned per-vCPU L4
   * whose slot 0 holds the guest's L3 (Xen's compat monitor table); CR3
   * points at it. 0 = not allocated yet (the MMU allocates it on the first
   * base-pointer load). Unused for 64-bit guests.
   */
  compatL4Mfn?: number;
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
  /**
   * Allocates one zeroed frame from the hypervisor's own pool (owner
   * DOMID_XEN), e.g. for the hole's page tables or the GDT window.
   * @returns the MFN, or -1 when the pool is exhausted.
   */
  allocXenFrame(): number;
  /**
   * MFNs of the frames holding the machine-to-phys table, in order: entry
   * `mfn` lives at byte `mfn * (bits / 8)` of this run of frames (64-bit:
   * u64 entries, 32-bit: u32). Xen maps them read-only at the M2P virtual
   * range (64-bit 0xFFFF800000000000, 32-bit 0xF5800000).
   */
  readonly m2pMfns: readonly number[];
}

/**
 * The backend domain (dom0) mapping or copying a frontend's grant
 * (Xen common/grant_table.c as seen by a backend). Implemented by the
 * grant table in engine/xen/grant-table.ts for engine/dom0.
 */
export interface GrantBackendApi {
  /**
   * Maps grant `ref` of domain `frontDomid` (GNTMAP_host_map, read-only
   * unless `write`). Checks the entry like Xen's map_grant_ref: type
   * GTF_permit_access, domid = the backend (0), GTF_readonly vs `write`;
   * sets GTF_reading/GTF_writing while mapped.
   * @returns the machine frame and a handle, or `{ error }` with a GNTST_*
   *   value (negative, e.g. -3 bad_gntref, -8 permission_denied).
   */
  map(frontDomid: number, ref: number, write: boolean): { mfn: number; handle: number } | { error: number };
  /** Unmaps a handle returned by `map` (clears GTF_reading/GTF_writing when the last mapping goes). Unknown handles are ignored. */
  unmap(handle: number): void;
  /**
   * Copies `len` bytes between a frontend grant and a backend buffer (like
   * GNTTABOP_copy with one side a grant): `toGuest` true writes `data` into
   * the granted frame at `offset`, false reads from it into `data`.
   * @returns GNTST_okay (0) or a negative GNTST_* value.
   */
  copy?(frontDomid: number, ref: number, offset: number, data: Uint8Array, toGuest: boolean): number;
}

/**
 * Dom0's end of interdomain event channels (Xen common/event_channel.c).
 * Implemented by engine/xen/event-channel.ts for engine/dom0.
 */
export interface EvtchnBackendApi {
  /**
   * Binds dom0's end to the frontend's unbound port `frontPort` (which must
   * be in state unbound with remote_dom 0); `onNotify` runs when the
   * frontend sends on it. `notify()` raises the frontend's port; `close()`
   * turns it back into unbound.
   * @returns the binding, or `{ error }` with -errno (e.g. -EINVAL for a
   *   port that is not unbound toward dom0).
   */
  bindInterdomain(
    frontDomid: number,
    frontPort: number,
    onNotify: () => void,
  ): { notify(): void; close(): void } | { error: number };
}

/** Arguments of one hypercall as the dispatcher hands them to a handler. */
export interface HypercallArgs {
  /** Up to 6 raw argument registers, zero-extended (32-bit guests: 32-bit values). */
  readonly a: bigint[];
}
