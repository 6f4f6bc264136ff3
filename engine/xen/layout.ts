/**
 * Machine frame numbering and fixed addresses of the pvscope host.
 *
 * pvscope does NOT use the identity pfn->mfn mapping, so a guest that mixes
 * up pseudo-physical and machine frames fails the way it would on Xen.
 * One MachineMemory buffer holds, in MFN order (docs/memory-layout.md):
 *
 *   MFN XEN_MFN_BASE .. GUEST_MFN_BASE-1   Xen's own pool (DOMID_XEN):
 *       M2P table frames, shared_info, grant-table frames, the hole's page
 *       tables, per-vCPU GDT windows, ...
 *   MFN GUEST_MFN_BASE + pfn               guest pfn `pfn` (at build time)
 *
 * Guest frames freed by XENMEM_decrease_reservation and reallocated by
 * populate_physmap keep their MFN; only the pfn they back changes.
 */
export const XEN_MFN_BASE = 0x1000;
/** Frames in Xen's pool (16 MiB). */
export const XEN_POOL_FRAMES = 0x1000;
/** MFN of guest pfn 0 right after the build. */
export const GUEST_MFN_BASE = XEN_MFN_BASE + XEN_POOL_FRAMES;

/** The guest's domain id (the only domU; dom0's services live in engine/dom0). */
export const GUEST_DOMID = 1;
/** Domain id of the backends (xenstored, console daemon, blkback). */
export const BACKEND_DOMID = 0;

/** Start of the hypervisor hole / read-only M2P (Xen public/arch-x86/xen-x86_64.h, compat). */
export const HYPERVISOR_VIRT_START_64 = 0xffff800000000000n;
export const M2P_VIRT_END_64 = 0xffff804000000000n;
export const HYPERVISOR_VIRT_START_32 = 0xf5800000n;
export const M2P_VIRT_END_32 = 0xffe00000n;

/** Flat selectors in Xen's reserved GDT page (brief §1.7, §5.8). */
export const FLAT_KERNEL_CS64 = 0xe033;
export const FLAT_KERNEL_SS64 = 0xe02b;
export const FLAT_USER_CS32_64 = 0xe023;
export const FLAT_RING1_CS = 0xe019;
export const FLAT_RING1_DS = 0xe021;
export const FLAT_RING3_CS32 = 0xe02b;
export const FLAT_RING3_DS32 = 0xe033;

/** Number of 32-byte slots written into a hypercall page. */
export const HYPERCALL_PAGE_SLOTS = 128;

/** Fixed wall clock at system time 0 (2026-01-01T00:00:00Z), so runs are deterministic. */
export const WALLCLOCK_EPOCH_SEC = 1767225600;

/** Default periodic timer period of a PV vCPU (Xen: 10 ms). */
export const DEFAULT_PERIODIC_NS = 10_000_000;

/** Grant-table frames a domU may set up (Xen's default max_grant_frames = 64). */
export const MAX_GRANT_FRAMES = 64;
