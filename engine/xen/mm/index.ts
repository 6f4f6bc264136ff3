/**
 * The PV MMU as Xen enforces it (Xen xen/arch/x86/mm.c, pv/mm.c,
 * pv/ro-page-fault.c, pv/descriptor-tables.c): page types and reference
 * counts per machine frame, recursive page-table validation, pinning, base
 * pointers, the MMU hypercalls, writable page tables and descriptor tables.
 *
 * This first version is a placeholder with the final signatures; every
 * hypercall handler returns -ENOSYS until the implementation lands.
 */
import { ENOSYS } from '../errno';
import type { XenDomainCore, XenVcpuCore } from '../types';

/** Xen's page type of a machine frame. */
export type PageTypeName = 'none' | 'l1' | 'l2' | 'l3' | 'l4' | 'seg_desc' | 'writable';

/** What Xen's frame table says about one machine frame. */
export interface PageInfo {
  type: PageTypeName;
  /** Type references (validated tables referencing it, pins, base pointers, writable mappings). */
  typeCount: number;
  pinned: boolean;
  /** General references (mappings of any kind, type references included). */
  refCount: number;
}

/** The PV MMU of one domain. */
export class PvMm {
  constructor(readonly dom: XenDomainCore) {}

  /** Page type information of machine frame `mfn`. */
  pageInfo(mfn: number): PageInfo {
    void mfn;
    return { type: 'none', typeCount: 0, pinned: false, refCount: 0 };
  }
  /** MMUEXT_PIN_Ln_TABLE. @returns 0 or -errno. */
  pin(level: 1 | 2 | 3 | 4, mfn: number): number {
    void level;
    void mfn;
    return -ENOSYS;
  }
  /** MMUEXT_UNPIN_TABLE. @returns 0 or -errno. */
  unpin(mfn: number): number {
    void mfn;
    return -ENOSYS;
  }
  /** MMUEXT_NEW_BASEPTR. @returns 0 or -errno. */
  newBaseptr(vcpu: XenVcpuCore, mfn: number): number {
    void vcpu;
    void mfn;
    return -ENOSYS;
  }
  /** MMUEXT_NEW_USER_BASEPTR. @returns 0 or -errno. */
  newUserBaseptr(vcpu: XenVcpuCore, mfn: number): number {
    void vcpu;
    void mfn;
    return -ENOSYS;
  }
  /** HYPERVISOR_mmu_update (1). */
  mmuUpdate(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** HYPERVISOR_set_gdt (2). */
  setGdt(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** HYPERVISOR_update_descriptor (10). */
  updateDescriptor(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** HYPERVISOR_update_va_mapping (14). */
  updateVaMapping(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** HYPERVISOR_update_va_mapping_otherdomain (22). */
  updateVaMappingOtherdomain(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** HYPERVISOR_mmuext_op (26). */
  mmuextOp(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    void a;
    return -ENOSYS;
  }
  /** Writable page-table emulation on a guest-kernel #PF. @returns true when emulated. */
  ptwrFault(vcpu: XenVcpuCore, cr2: bigint, errorCode: number): boolean {
    void vcpu;
    void cr2;
    void errorCode;
    return false;
  }
  /** Sets up Xen's frames for the hypervisor hole (RO M2P, per-vCPU GDT windows). */
  installXenMappings(): void {}
}
