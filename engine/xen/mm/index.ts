/**
 * The PV MMU as Xen enforces it: page types and reference counts per
 * machine frame, recursive page-table validation, pinning, base pointers,
 * the MMU hypercalls (mmu_update, mmuext_op, update_va_mapping[_otherdomain],
 * set_gdt, update_descriptor), writable page tables (ptwr) and the Xen-owned
 * mappings of the hypervisor hole (read-only M2P, per-vCPU GDT window).
 *
 * Sources of the behaviour: Xen xen/arch/x86/mm.c (get_page_from_l1e,
 * promote_lN_table, mod_lN_entry, _get_page_type, do_mmu_update,
 * do_mmuext_op, __do_update_va_mapping, new_guest_cr3), pv/mm.h
 * (adjust_guest_lNe), pv/descriptor-tables.c, pv/ro-page-fault.c,
 * x86_64/compat/mm.c; the ABI brief §5.
 *
 * State lives in typed arrays indexed by frame index (mfn - mem.mfnBase):
 * no object per frame. Every refusal is reported through
 * `dom.reject(errno, reason)` with a reason worded after Xen's log line, and
 * the hypercall returns Xen's -errno.
 *
 * Deliberate simplifications (documented for users of the model):
 *  - No preemption/continuations: every operation completes in one call.
 *  - Linear page tables (an entry pointing at a table of its own level) are
 *    accepted as Xen's CONFIG_PV_LINEAR_PT does: read-only entries only
 *    ("Attempt to create linear p.t. with write perms"), the target must be
 *    the table itself or an already validated table of that level. Xen's
 *    extra rule against nesting linear uses is not modelled.
 *  - LDT pages are read by the CPU straight through the guest's own mapping
 *    of ldt_base; Xen's lazy "typeable as seg_desc" check on first LDT use
 *    is not modelled.
 *  - Grant mappings made by the guest through its own PTEs are not
 *    supported yet (hook: `foreignMappable`).
 */
import { EACCES, EBUSY, EFAULT, EINVAL, ENOSYS, EOPNOTSUPP, EPERM, ERANGE, ESRCH } from '../errno';
import { copyFromGuest, readGuestUint, writeGuestUint } from '../guest-access';
import {
  DOMID_IO,
  DOMID_SELF,
  DOMID_XEN,
  VMASST_TYPE_m2p_strict,
  VMASST_TYPE_pae_extended_cr3,
  VMASST_TYPE_writable_pagetables,
  type XenDomainCore,
  type XenVcpuCore,
} from '../types';
import { PAGE_SIZE } from '../../memory/machine-memory';
import {
  checkDescriptor,
  FIRST_RESERVED_GDT_ENTRY,
  FIRST_RESERVED_GDT_PAGE,
  GDT_LIMIT,
  HYPERVISOR_COMPAT_VIRT_START,
  LDT_SELECTOR,
  MAX_LDT_ENTRIES,
  xenReservedGdt,
} from './descriptors';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_GUEST_KERNEL,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
  COMPAT_L3_DISALLOW_MASK,
  FASTPATH_FLAG_WHITELIST,
  flagsHi,
  L1_DISALLOW_MASK,
  L2_DISALLOW_MASK,
  L3_DISALLOW_MASK,
  L4_DISALLOW_MASK,
  pteFlags,
  pteHi,
  pteLo,
  pteMfn,
} from './pte';
import { decodeStore, readSizedReg, type DecodeEnv } from './ptwr-decode';
import { chargeWork, createContinuation, hypercallPreemptCheck } from '../preempt';

export * from './pte';
export {
  checkDescriptor,
  xenReservedGdt,
  FIRST_RESERVED_GDT_ENTRY,
  GDT_LIMIT,
  LDT_SELECTOR,
} from './descriptors';

/** Xen's page type of a machine frame. */
export type PageTypeName = 'none' | 'l1' | 'l2' | 'l3' | 'l4' | 'seg_desc' | 'writable';

/** What Xen's frame table says about one machine frame. */
export interface PageInfo {
  type: PageTypeName;
  /** Type references: validated tables pointing at it, pins, base pointers, writable mappings, GDT use. */
  typeCount: number;
  pinned: boolean;
  /** General references (mappings and type users; Xen's count_info without the allocation reference). */
  refCount: number;
}

// Page types (Xen PGT_*), as stored in `ptype`.
const PGT_NONE = 0;
const PGT_L1 = 1;
const PGT_L2 = 2;
const PGT_L3 = 3;
const PGT_L4 = 4;
const PGT_SEG_DESC = 5;
const PGT_WRITABLE = 6;
const TYPE_NAMES: PageTypeName[] = ['none', 'l1', 'l2', 'l3', 'l4', 'seg_desc', 'writable'];

// Bits of `pflags`.
const PF_VALIDATED = 1;
const PF_PINNED = 2;
/** The L2 hangs under a 32-bit L3's slot 3 and holds Xen's slots 428-511 (PGT_pae_xen_l2). */
const PF_PAE_XEN_L2 = 4;

/** mmu_update commands (public/xen.h). */
export const MMU_NORMAL_PT_UPDATE = 0;
export const MMU_MACHPHYS_UPDATE = 1;
export const MMU_PT_UPDATE_PRESERVE_AD = 2;
export const MMU_PT_UPDATE_NO_TRANSLATE = 3;
/** Count flag of a continued mmu_update/mmuext_op. */
export const MMU_UPDATE_PREEMPTED = 0x80000000;

/** mmuext_op commands (public/xen.h). */
export const MMUEXT_PIN_L1_TABLE = 0;
export const MMUEXT_PIN_L2_TABLE = 1;
export const MMUEXT_PIN_L3_TABLE = 2;
export const MMUEXT_PIN_L4_TABLE = 3;
export const MMUEXT_UNPIN_TABLE = 4;
export const MMUEXT_NEW_BASEPTR = 5;
export const MMUEXT_TLB_FLUSH_LOCAL = 6;
export const MMUEXT_INVLPG_LOCAL = 7;
export const MMUEXT_TLB_FLUSH_MULTI = 8;
export const MMUEXT_INVLPG_MULTI = 9;
export const MMUEXT_TLB_FLUSH_ALL = 10;
export const MMUEXT_INVLPG_ALL = 11;
export const MMUEXT_FLUSH_CACHE = 12;
export const MMUEXT_SET_LDT = 13;
export const MMUEXT_NEW_USER_BASEPTR = 15;
export const MMUEXT_CLEAR_PAGE = 16;
export const MMUEXT_COPY_PAGE = 17;
export const MMUEXT_FLUSH_CACHE_GLOBAL = 18;
export const MMUEXT_MARK_SUPER = 19;
export const MMUEXT_UNMARK_SUPER = 20;

/** update_va_mapping flags (public/xen.h UVMF_*). */
export const UVMF_NONE = 0;
export const UVMF_TLB_FLUSH = 1;
export const UVMF_INVLPG = 2;
export const UVMF_FLUSHTYPE_MASK = 3;
export const UVMF_MULTI = 0;
export const UVMF_LOCAL = 0;
export const UVMF_ALL = 4;

/** Guest-visible virtual addresses of the hypervisor hole (brief §5.6). */
export const RO_MPT_VIRT_START_64 = 0xffff800000000000n;
export const RO_MPT_VIRT_START_32 = 0xf5800000;
/** 64-bit: per-domain area (L4 slot 260) where the per-vCPU GDT windows live. */
export const PERDOMAIN_VIRT_START_64 = 0xffff820000000000n;
/** 64-bit: bytes of per-domain space per vCPU (GDT 64 KiB + LDT 64 KiB, Xen GDT_LDT_VCPU_VA_SHIFT). */
export const GDT_LDT_VCPU_SPAN_64 = 0x20000;
/** 32-bit: GDT windows in the last 2 MiB of the compat hole (L2 slot 511 under L3[3]), 64 KiB per vCPU. */
export const GDT_WINDOW_VIRT_START_32 = 0xffe00000;
export const GDT_WINDOW_SPAN_32 = 0x10000;
/** 32-bit: first L2 slot (under L3[3]) owned by Xen (COMPAT_L2_PAGETABLE_FIRST_XEN_SLOT for a domU). */
export const COMPAT_L2_FIRST_XEN_SLOT = 428;
/** 64-bit: L4 slots 256-271 belong to Xen. */
export const ROOT_PAGETABLE_FIRST_XEN_SLOT = 256;
export const ROOT_PAGETABLE_LAST_XEN_SLOT = 271;
const L4_SLOT_RO_MPT = 256;
const L4_SLOT_PERDOMAIN = 260;

const PFEC_PRESENT = 1;
const PFEC_WRITE = 2;
const PFEC_RSVD = 8;
const PFEC_INSN = 16;

function hex(n: number | bigint): string {
  return '0x' + n.toString(16);
}

function entryHex(lo: number, hi: number): string {
  return '0x' + ((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString(16).padStart(16, '0');
}

/** The PV MMU of one domain. */
export class PvMm {
  readonly dom: XenDomainCore;
  private readonly ptype: Uint8Array;
  private readonly pflags: Uint8Array;
  private readonly typeCount: Uint32Array;
  private readonly refCount: Uint32Array;
  /**
   * Xen's virtual TLB clock (xen/arch/x86/flushtlb.c tlbflush_clock): ticks
   * on every full TLB flush this MMU performs. Starts at 1 so frames never
   * stamped (stamp 0) need no flush.
   */
  private tlbflushClock = 1;
  /** Per frame: the clock when its type count last dropped to 0 (page_info tlbflush_timestamp). */
  private readonly tlbflushStamp: Uint32Array;
  /** Per vCPU index: the clock at its last full flush (per-CPU tlbflush_time). */
  private readonly vcpuFlushTime: number[] = [];
  /** Xen frames the guest may map as if they were its own (shared_info, grant frames): mfn -> writable. */
  private readonly shared = new Map<number, boolean>();
  /** Why the innermost check failed (combined into the refusal reason). */
  private why = '';
  /** True while handling a guest hypercall (some checks only apply to the running guest). */
  private inGuestOp = false;

  // Xen-owned frames of the hole.
  private roMptL4Lo = 0;
  private roMptL4Hi = 0;
  private perdomainL4Lo = 0;
  private perdomainL4Hi = 0;
  /** 32-bit: Xen's entries for L2 slots 428..511 (lo, hi pairs). */
  private compatXenL2: number[] = [];
  /** GDT window L1 frames: 64-bit one per 16 vCPUs; 32-bit one for up to 32 vCPUs. */
  private gdtL1Mfns: number[] = [];
  private perdomainL2Mfn = 0;
  private zeroMfn = 0;
  private reservedGdtMfns = new Map<number, number>();
  private installed = false;

  /**
   * Hook for frames another domain granted to this one: return true to let
   * an L1 entry of this domain map `mfn` (read-only unless `write`). Default:
   * no foreign mappings.
   */
  foreignMappable: (mfn: number, write: boolean) => boolean = () => false;

  /** @param dom the domain whose frames this MMU types and validates. */
  constructor(dom: XenDomainCore) {
    this.dom = dom;
    const n = dom.mem.frameCount;
    this.ptype = new Uint8Array(n);
    this.pflags = new Uint8Array(n);
    this.typeCount = new Uint32Array(n);
    this.refCount = new Uint32Array(n);
    this.tlbflushStamp = new Uint32Array(n);
  }

  /**
   * Full TLB flush of `v` (global entries included) recorded on the TLB
   * clock, as Xen's pre_flush()/post_flush() do around a flush.
   */
  private flushVcpuTlb(v: XenVcpuCore): void {
    v.cpu.flushTlb(true);
    const k = this.dom.vcpus.indexOf(v);
    if (k >= 0) this.vcpuFlushTime[k] = ++this.tlbflushClock;
  }

  /**
   * Xen _get_page_type() on a type change: every vCPU of the domain (its
   * dirty_cpumask) that has not flushed its TLB since the frame's type
   * count last dropped to 0 (tlbflush_filter / NEED_FLUSH) is flushed, so no
   * stale mapping of the old type (e.g. a writable one) survives.
   */
  private flushStaleOnTypeChange(i: number): void {
    const stamp = this.tlbflushStamp[i];
    if (stamp === 0) return;
    const vs = this.dom.vcpus;
    for (let k = 0; k < vs.length; k++) {
      if ((this.vcpuFlushTime[k] ?? 1) <= stamp) this.flushVcpuTlb(vs[k]);
    }
  }

  // ---------------------------------------------------------------------
  // Frame table
  // ---------------------------------------------------------------------

  /**
   * Page type information of machine frame `mfn` (Xen's page_info type_info
   * and count_info). Frames outside machine memory report type 'none'.
   */
  pageInfo(mfn: number): PageInfo {
    const i = this.idx(mfn);
    if (i < 0) return { type: 'none', typeCount: 0, pinned: false, refCount: 0 };
    return {
      type: TYPE_NAMES[this.ptype[i]],
      typeCount: this.typeCount[i],
      pinned: (this.pflags[i] & PF_PINNED) !== 0,
      refCount: this.refCount[i],
    };
  }

  /** True when the frame is a validated page table of `level` (1-4). */
  isValidatedTable(mfn: number, level: number): boolean {
    const i = this.idx(mfn);
    return (
      i >= 0 && this.ptype[i] === level && this.typeCount[i] > 0 && (this.pflags[i] & PF_VALIDATED) !== 0
    );
  }

  /**
   * Lets the guest map a Xen-owned frame (Xen share_xen_page_with_guest():
   * shared_info, grant-table frames). Such frames then pass the ownership
   * check of L1 entries.
   * @param writable SHARE_rw (true) or SHARE_ro
   */
  shareWithGuest(mfn: number, writable: boolean): void {
    this.shared.set(mfn, writable);
  }

  private idx(mfn: number): number {
    const i = mfn - this.dom.mem.mfnBase;
    return Number.isInteger(i) && i >= 0 && i < this.dom.mem.frameCount ? i : -1;
  }

  /**
   * Owner as Xen's page_get_owner sees it. Xen assigns the frames it shares
   * with a guest (share_xen_page_with_guest: shared_info, grant-table
   * frames) to that guest, so L1 entries may map them; here they are owned
   * by DOMID_XEN, so they count as the guest's when registered with
   * shareWithGuest() or when the domain object names them (`sharedInfoMfn`,
   * `gnttab.frames`, as engine/xen/domain.ts has them).
   */
  private owner(mfn: number): number {
    if (this.shared.has(mfn)) return this.dom.domid;
    if (this.idx(mfn) < 0) return -1;
    const o = this.dom.frameOwner(mfn);
    if (o === DOMID_XEN && this.sharedByDomain(mfn)) return this.dom.domid;
    return o;
  }

  /** A Xen frame shared with the guest (always typed writable in Xen). */
  private isXenShared(mfn: number): boolean {
    return this.shared.has(mfn) || (this.dom.frameOwner(mfn) === DOMID_XEN && this.sharedByDomain(mfn));
  }

  private sharedByDomain(mfn: number): boolean {
    const d = this.dom as unknown as { sharedInfoMfn?: unknown; gnttab?: { frames?: unknown } };
    if (typeof d.sharedInfoMfn === 'number' && d.sharedInfoMfn === mfn && mfn !== 0) return true;
    const frames = d.gnttab?.frames;
    return Array.isArray(frames) && frames.includes(mfn);
  }

  private ownedBySelf(mfn: number): boolean {
    return this.idx(mfn) >= 0 && this.owner(mfn) === this.dom.domid;
  }

  private pfnText(mfn: number): string {
    const p = this.idx(mfn) >= 0 ? this.dom.m2p(mfn) : -1;
    return p < 0 ? 'invalid' : hex(p);
  }

  private readEntry(mfn: number, slot: number): [number, number] {
    const off = this.dom.mem.mfnToOffset(mfn) + slot * 8;
    return [this.dom.mem.read32(off), this.dom.mem.read32(off + 4)];
  }

  private writeEntry(mfn: number, slot: number, lo: number, hi: number): void {
    const off = this.dom.mem.mfnToOffset(mfn) + slot * 8;
    this.dom.mem.write64(off, lo >>> 0, hi >>> 0);
  }

  /**
   * Xen _get_page_type(): takes a type reference of `type` on the frame,
   * changing its type when the type count is 0 and validating page tables
   * and descriptor pages on first use.
   * @returns 0, or -errno with `this.why` set.
   */
  private getPageType(mfn: number, type: number, paeXenL2 = false): number {
    const i = this.idx(mfn);
    if (i < 0) {
      this.why = `mfn ${hex(mfn)} does not exist`;
      return -EINVAL;
    }
    if (type !== PGT_WRITABLE && this.isXenShared(mfn)) {
      this.why = `Bad type (saw writable != exp ${TYPE_NAMES[type]}) for Xen page mfn ${hex(mfn)} shared with the guest`;
      return -EINVAL;
    }
    const count = this.typeCount[i];
    if (count === 0) {
      if (this.ptype[i] !== type) this.flushStaleOnTypeChange(i);
      if (this.ptype[i] !== type || (this.pflags[i] & PF_PAE_XEN_L2) !== (paeXenL2 ? PF_PAE_XEN_L2 : 0)) {
        this.ptype[i] = type;
        this.pflags[i] &= ~(PF_VALIDATED | PF_PAE_XEN_L2);
        if (paeXenL2) this.pflags[i] |= PF_PAE_XEN_L2;
        if (type === PGT_WRITABLE) this.pflags[i] |= PF_VALIDATED;
      }
    } else {
      const cur = this.ptype[i];
      const curXen = (this.pflags[i] & PF_PAE_XEN_L2) !== 0;
      if (cur !== type || curXen !== paeXenL2) {
        // Xen stays silent when this could be a recursive (linear) mapping attempt.
        if (!(cur === type + 1 && type >= PGT_L1 && type <= PGT_L3)) {
          this.why =
            `Bad type (saw ${TYPE_NAMES[cur]}${curXen ? '+pae_xen_l2' : ''} != exp ${TYPE_NAMES[type]}` +
            `${paeXenL2 ? '+pae_xen_l2' : ''}) for mfn ${hex(mfn)} (pfn ${this.pfnText(mfn)})`;
        } else {
          this.why = `mfn ${hex(mfn)} is an ${TYPE_NAMES[cur]}, not an ${TYPE_NAMES[type]}`;
        }
        return -EINVAL;
      }
      if (!(this.pflags[i] & PF_VALIDATED)) {
        this.why = `mfn ${hex(mfn)} is being validated as ${TYPE_NAMES[type]} (recursive reference)`;
        return -EINVAL;
      }
    }
    this.typeCount[i]++;
    if (!(this.pflags[i] & PF_VALIDATED)) {
      const rc = this.validate(mfn, type);
      if (rc < 0) {
        this.typeCount[i] = 0;
        this.ptype[i] = PGT_NONE;
        this.pflags[i] = 0;
        return rc;
      }
      this.pflags[i] |= PF_VALIDATED;
    }
    return 0;
  }

  /** Xen _put_page_type(): drops a type reference; a page table whose count reaches 0 is devalidated. */
  private putPageType(mfn: number): void {
    const i = this.idx(mfn);
    if (i < 0 || this.typeCount[i] === 0) return;
    this.typeCount[i]--;
    if (this.typeCount[i] === 0) {
      this.tlbflushStamp[i] = this.tlbflushClock;
      const t = this.ptype[i];
      if (t >= PGT_L1 && t <= PGT_L4 && this.pflags[i] & PF_VALIDATED) {
        this.pflags[i] &= ~PF_VALIDATED;
        this.devalidate(mfn, t);
        this.pflags[i] &= ~PF_PAE_XEN_L2;
      }
    }
  }

  private getRef(mfn: number): void {
    const i = this.idx(mfn);
    if (i >= 0) this.refCount[i]++;
  }

  private putRef(mfn: number): void {
    const i = this.idx(mfn);
    if (i >= 0 && this.refCount[i] > 0) this.refCount[i]--;
  }

  /** Xen get_page_and_type_from_mfn(): owner check (-EINVAL), general + type reference. */
  private getPageAndType(mfn: number, type: number, paeXenL2 = false): number {
    if (!this.ownedBySelf(mfn)) {
      const o = this.owner(mfn);
      this.why = `Error mfn ${hex(mfn)}: rd=d${this.dom.domid} od=${o < 0 ? 'none' : 'd' + o}`;
      return -EINVAL;
    }
    const rc = this.getPageType(mfn, type, paeXenL2);
    if (rc < 0) return rc;
    this.getRef(mfn);
    return 0;
  }

  private putPageAndType(mfn: number): void {
    this.putPageType(mfn);
    this.putRef(mfn);
  }

  // ---------------------------------------------------------------------
  // Entry references (get_page_from_lNe / put_page_from_lNe)
  // ---------------------------------------------------------------------

  private l1DisallowMask(): number {
    // A domU without I/O memory, I/O ports or passthrough devices.
    return L1_DISALLOW_MASK;
  }

  private l3DisallowMask(): number {
    return this.dom.bits === 32 ? COMPAT_L3_DISALLOW_MASK : L3_DISALLOW_MASK;
  }

  /**
   * Xen get_page_from_l1e() for a present entry: flags, ownership and (for
   * RW) a writable type reference.
   * @param pgOwner domid the data frame must belong to (self, or DOMID_IO)
   */
  private getPageFromL1e(lo: number, hi: number, pgOwner: number): number {
    const flags = pteFlags(lo, hi);
    const bad = flags & this.l1DisallowMask();
    if (bad) {
      this.why = `Bad L1 flags ${hex(bad)}`;
      return -EINVAL;
    }
    const mfn = pteMfn(lo, hi);
    const write = (flags & _PAGE_RW) !== 0;
    const realOwner = this.owner(mfn);
    if (realOwner < 0 || realOwner === DOMID_IO) {
      const who = pgOwner === DOMID_IO ? this.dom.domid : pgOwner;
      this.why = `d${who} non-privileged attempt to map MMIO space ${hex(mfn)}`;
      return -EPERM;
    }
    const couldNotPin = (detail: string): number => {
      this.why =
        `${detail}; Error getting mfn ${hex(mfn)} (pfn ${this.pfnText(mfn)}) from L1 entry ` +
        `${entryHex(lo, hi)} for l1e_owner d${this.dom.domid}, pg_owner d${pgOwner}`;
      return -EBUSY;
    };
    if (realOwner !== pgOwner) {
      if (realOwner !== DOMID_XEN && this.foreignMappable(mfn, write)) {
        this.getRef(mfn);
        return 0;
      }
      return couldNotPin(
        `pg_owner d${pgOwner} l1e_owner d${this.dom.domid}, but real_pg_owner d${realOwner}`,
      );
    }
    const sharedRw = this.shared.get(mfn);
    if (write && sharedRw === false)
      return couldNotPin('Could not get page type PGT_writable_page (read-only Xen page)');
    if (write) {
      const rc = this.getPageType(mfn, PGT_WRITABLE);
      if (rc < 0) return couldNotPin(`Could not get page type PGT_writable_page (${this.why})`);
    }
    this.getRef(mfn);
    return 0;
  }

  private putPageFromL1e(lo: number, hi: number): void {
    const flags = pteFlags(lo, hi);
    if (!(flags & _PAGE_PRESENT)) return;
    const mfn = pteMfn(lo, hi);
    if (this.idx(mfn) < 0) return;
    const o = this.owner(mfn);
    if (flags & _PAGE_RW && o === this.dom.domid && this.shared.get(mfn) !== false) this.putPageType(mfn);
    this.putRef(mfn);
  }

  /**
   * Xen get_lN_linear_pagetable(): an entry of a level-`level` table that
   * points at a table of the same level. Only read-only entries, and only
   * to the table itself or another validated table of that level.
   * @returns true when accepted (a reference has been taken unless it is a self map)
   */
  private getLinear(level: number, lo: number, hi: number, tableMfn: number): boolean {
    if (pteFlags(lo, hi) & _PAGE_RW) {
      this.why = 'Attempt to create linear p.t. with write perms';
      return false;
    }
    const mfn = pteMfn(lo, hi);
    if (mfn === tableMfn) return true;
    const i = this.idx(mfn);
    if (i < 0 || !this.ownedBySelf(mfn)) return false;
    if (this.ptype[i] !== level || !(this.pflags[i] & PF_VALIDATED) || this.typeCount[i] === 0) return false;
    this.typeCount[i]++;
    this.getRef(mfn);
    return true;
  }

  /** Xen get_page_from_l2e/l3e/l4e for a present entry of a level-`level` table at `tableMfn`. */
  private getPageFromUpper(level: number, lo: number, hi: number, tableMfn: number): number {
    const flags = pteFlags(lo, hi);
    const mask = level === 2 ? L2_DISALLOW_MASK : level === 3 ? this.l3DisallowMask() : L4_DISALLOW_MASK;
    if (flags & mask) {
      this.why = `Bad L${level} flags ${hex(flags & mask)}`;
      return -EINVAL;
    }
    const mfn = pteMfn(lo, hi);
    const rc = this.getPageAndType(mfn, level - 1);
    if (rc === -EINVAL && !(level === 3 && this.dom.bits === 32)) {
      const prev = this.why;
      if (this.idx(mfn) >= 0 && this.ptype[this.idx(mfn)] === level && this.ownedBySelf(mfn)) {
        if (this.getLinear(level, lo, hi, tableMfn)) return 0;
        return -EINVAL;
      }
      if (mfn === tableMfn) {
        if (this.getLinear(level, lo, hi, tableMfn)) return 0;
        return -EINVAL;
      }
      this.why = prev;
    }
    return rc;
  }

  private putPageFromUpper(lo: number, hi: number, tableMfn: number): void {
    if (!(lo & _PAGE_PRESENT)) return;
    const mfn = pteMfn(lo, hi);
    if (mfn === tableMfn) return;
    this.putPageAndType(mfn);
  }

  // ---------------------------------------------------------------------
  // Guest-visible rewrites (pv/mm.h adjust_guest_lNe)
  // ---------------------------------------------------------------------

  private adjustL1(lo: number, hi: number): [number, number] {
    if (this.dom.bits === 64 && lo & _PAGE_PRESENT) {
      if (!(lo & _PAGE_USER)) {
        lo |= _PAGE_USER;
        hi |= flagsHi(_PAGE_GUEST_KERNEL);
      }
      if (!(pteFlags(lo, hi) & _PAGE_GUEST_KERNEL)) lo |= _PAGE_GLOBAL | _PAGE_USER;
    }
    return [lo >>> 0, hi >>> 0];
  }

  private adjustUpper(level: number, lo: number): number {
    if (!(lo & _PAGE_PRESENT)) return lo >>> 0;
    if (this.dom.bits === 64) {
      if (level === 4) return (lo | _PAGE_USER | _PAGE_ACCESSED) >>> 0;
      return (lo | _PAGE_USER) >>> 0;
    }
    if (level === 3) return (lo | _PAGE_USER | _PAGE_RW) >>> 0;
    return lo >>> 0;
  }

  // ---------------------------------------------------------------------
  // Validation (promote_lN_table) and devalidation (demote_lN_table)
  // ---------------------------------------------------------------------

  private isGuestL2Slot(mfn: number, slot: number): boolean {
    if (this.dom.bits === 64) return true;
    const i = this.idx(mfn);
    return !(i >= 0 && this.pflags[i] & PF_PAE_XEN_L2) || slot < COMPAT_L2_FIRST_XEN_SLOT;
  }

  private static isGuestL4Slot(slot: number): boolean {
    return slot < ROOT_PAGETABLE_FIRST_XEN_SLOT || slot > ROOT_PAGETABLE_LAST_XEN_SLOT;
  }

  private validate(mfn: number, type: number): number {
    switch (type) {
      case PGT_L1:
        return this.promoteL1(mfn);
      case PGT_L2:
        return this.promoteL2(mfn);
      case PGT_L3:
        return this.promoteL3(mfn);
      case PGT_L4:
        return this.promoteL4(mfn);
      case PGT_SEG_DESC:
        return this.validateSegdescPage(mfn);
      default:
        return 0;
    }
  }

  private promoteL1(mfn: number): number {
    for (let s = 0; s < 512; s++) {
      const [lo, hi] = this.readEntry(mfn, s);
      if (!(lo & _PAGE_PRESENT)) continue;
      const rc = this.getPageFromL1e(lo, hi, this.dom.domid);
      if (rc < 0) {
        this.why = `${this.why}; Failure ${rc} in promote_l1_table: slot ${hex(s)}`;
        for (let k = s - 1; k >= 0; k--) {
          const [l, h] = this.readEntry(mfn, k);
          this.putPageFromL1e(l, h);
        }
        return rc;
      }
      const [nl, nh] = this.adjustL1(lo, hi);
      if (nl !== lo || nh !== hi) this.writeEntry(mfn, s, nl, nh);
    }
    return 0;
  }

  private promoteL2(mfn: number): number {
    for (let s = 0; s < 512; s++) {
      if (!this.isGuestL2Slot(mfn, s)) continue;
      const [lo, hi] = this.readEntry(mfn, s);
      if (!(lo & _PAGE_PRESENT)) continue;
      const rc = this.getPageFromUpper(2, lo, hi, mfn);
      if (rc < 0) {
        this.why = `${this.why}; Failure ${rc} in promote_l2_table: slot ${hex(s)}`;
        this.unwindUpper(mfn, s, 2);
        return rc;
      }
      const nl = this.adjustUpper(2, lo);
      if (nl !== lo >>> 0) this.writeEntry(mfn, s, nl, hi);
    }
    const i = this.idx(mfn);
    if (this.pflags[i] & PF_PAE_XEN_L2) this.writeCompatXenSlots(mfn);
    return 0;
  }

  private unwindUpper(mfn: number, upto: number, level: number): void {
    for (let k = upto - 1; k >= 0; k--) {
      if (level === 2 && !this.isGuestL2Slot(mfn, k)) continue;
      if (level === 4 && !PvMm.isGuestL4Slot(k)) continue;
      const [l, h] = this.readEntry(mfn, k);
      this.putPageFromUpper(l, h, mfn);
      if (level === 3 && this.dom.bits === 32 && l & _PAGE_PRESENT) {
        this.writeEntry(mfn, k, (l & ~(_PAGE_USER | _PAGE_RW | _PAGE_ACCESSED)) >>> 0, h);
      }
    }
  }

  private promoteL3(mfn: number): number {
    if (this.dom.bits === 32) {
      if (this.inGuestOp && !this.dom.vmAssistOn(VMASST_TYPE_pae_extended_cr3) && mfn >= 0x100000) {
        this.why = `PAE pgd must be below 4GB (${hex(mfn)} >= 0x100000)`;
        return -ERANGE;
      }
      // The whole page is an L3 to the MMU: entries 4-511 are cleared.
      this.dom.mem.fill(this.dom.mem.mfnToOffset(mfn) + 32, PAGE_SIZE - 32, 0);
      for (let s = 0; s < 4; s++) {
        const [lo, hi] = this.readEntry(mfn, s);
        let rc = 0;
        if (s === 3) {
          const bad = pteFlags(lo, hi) & COMPAT_L3_DISALLOW_MASK;
          if (!(lo & _PAGE_PRESENT)) {
            this.why = 'PAE L3 3rd slot is empty';
            rc = -EINVAL;
          } else if (bad) {
            this.why = `Bad L3 flags ${hex(bad)}`;
            rc = -EINVAL;
          } else {
            const l2 = pteMfn(lo, hi);
            rc = this.getPageAndType(l2, PGT_L2, true);
            if (rc === 0 && this.typeCount[this.idx(l2)] !== 1) {
              this.putPageAndType(l2);
              this.why = 'PAE L3 3rd slot is shared';
              rc = -EINVAL;
            }
          }
        } else if (lo & _PAGE_PRESENT) {
          rc = this.getPageFromUpper(3, lo, hi, mfn);
        } else continue;
        if (rc < 0) {
          this.why = `${this.why}; Failure ${rc} in promote_l3_table: slot ${hex(s)}`;
          this.unwindUpper(mfn, s, 3);
          return rc;
        }
        this.writeEntry(mfn, s, this.adjustUpper(3, lo), hi);
      }
      return 0;
    }
    for (let s = 0; s < 512; s++) {
      const [lo, hi] = this.readEntry(mfn, s);
      if (!(lo & _PAGE_PRESENT)) continue;
      const rc = this.getPageFromUpper(3, lo, hi, mfn);
      if (rc < 0) {
        this.why = `${this.why}; Failure ${rc} in promote_l3_table: slot ${hex(s)}`;
        this.unwindUpper(mfn, s, 3);
        return rc;
      }
      const nl = this.adjustUpper(3, lo);
      if (nl !== lo >>> 0) this.writeEntry(mfn, s, nl, hi);
    }
    return 0;
  }

  private promoteL4(mfn: number): number {
    if (this.dom.bits === 32) {
      this.why = '32-bit guests have no L4 tables';
      return -EINVAL;
    }
    for (let s = 0; s < 512; s++) {
      if (!PvMm.isGuestL4Slot(s)) continue;
      const [lo, hi] = this.readEntry(mfn, s);
      if (!(lo & _PAGE_PRESENT)) continue;
      const rc = this.getPageFromUpper(4, lo, hi, mfn);
      if (rc < 0) {
        this.why = `${this.why}; Failure ${rc} in promote_l4_table: slot ${hex(s)}`;
        this.unwindUpper(mfn, s, 4);
        return rc;
      }
      const nl = this.adjustUpper(4, lo);
      if (nl !== lo >>> 0) this.writeEntry(mfn, s, nl, hi);
    }
    this.writeXenL4Slots(mfn, true);
    return 0;
  }

  private devalidate(mfn: number, type: number): void {
    if (type === PGT_L1) {
      for (let s = 0; s < 512; s++) {
        const [lo, hi] = this.readEntry(mfn, s);
        this.putPageFromL1e(lo, hi);
      }
      return;
    }
    const n = type === PGT_L3 && this.dom.bits === 32 ? 4 : 512;
    for (let s = n - 1; s >= 0; s--) {
      if (type === PGT_L2 && !this.isGuestL2Slot(mfn, s)) continue;
      if (type === PGT_L4 && !PvMm.isGuestL4Slot(s)) continue;
      const [lo, hi] = this.readEntry(mfn, s);
      this.putPageFromUpper(lo, hi, mfn);
      if (type === PGT_L3 && this.dom.bits === 32 && lo & _PAGE_PRESENT) {
        this.writeEntry(mfn, s, (lo & ~(_PAGE_USER | _PAGE_RW | _PAGE_ACCESSED)) >>> 0, hi);
      }
    }
  }

  private validateSegdescPage(mfn: number): number {
    const off = this.dom.mem.mfnToOffset(mfn);
    const fixed: [number, number, number][] = [];
    for (let k = 0; k < 512; k++) {
      const a = this.dom.mem.read32(off + k * 8);
      const b = this.dom.mem.read32(off + k * 8 + 4);
      const r = checkDescriptor(a, b, this.dom.bits);
      if (!r) {
        this.why = `Bad descriptor ${entryHex(a, b)} at entry ${k} of mfn ${hex(mfn)}`;
        return -EINVAL;
      }
      if (r.a !== a || r.b !== b) fixed.push([k, r.a, r.b]);
    }
    for (const [k, a, b] of fixed) this.dom.mem.write64(off + k * 8, a, b);
    return 0;
  }

  // ---------------------------------------------------------------------
  // Xen's own mappings
  // ---------------------------------------------------------------------

  private allocXen(): number {
    const mfn = this.dom.allocXenFrame();
    if (mfn < 0) throw new Error('PvMm: Xen frame pool exhausted while building the hypervisor hole');
    return mfn;
  }

  /**
   * Sets up Xen's frames for the hypervisor hole: the read-only M2P
   * (64-bit: 0xFFFF800000000000 via L4 slot 256, user-readable; 32-bit:
   * 0xF5800000 via the L2 under L3[3], slots 428-510) and per-vCPU
   * supervisor-only GDT windows (64-bit: 0xFFFF820000000000 + vcpu *
   * 128 KiB via slot 260; 32-bit: 0xFFE00000 + vcpu * 64 KiB via slot 511)
   * holding the guest's GDT frames (pages 0-13) and Xen's reserved page
   * (page 14). Points every vCPU's GDTR at its window (limit 0xEFFF).
   * Call once from the builder before pinning the bootstrap tables; later
   * validated L4s / pae_xen_l2 L2s receive these entries automatically.
   * Throws Error when the Xen frame pool is exhausted (a configuration bug).
   */
  installXenMappings(): void {
    if (this.installed) return;
    this.installed = true;
    const mem = this.dom.mem;
    const m2p = this.dom.m2pMfns;
    this.zeroMfn = this.allocXen();
    const roFlags = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED;
    const hvRw = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
    if (this.dom.bits === 64) {
      // RO M2P: L4[256] -> L3 -> L2 -> L1s -> M2P frames.
      const l3 = this.allocXen();
      const l2 = this.allocXen();
      mem.write64(
        mem.mfnToOffset(l3),
        pteLo(l2, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED),
        pteHi(l2, 0),
      );
      const nL1 = Math.min(512, Math.ceil(m2p.length / 512));
      for (let t = 0; t < nL1; t++) {
        const l1 = this.allocXen();
        mem.write64(
          mem.mfnToOffset(l2) + t * 8,
          pteLo(l1, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED),
          pteHi(l1, 0),
        );
        for (let e = 0; e < 512 && t * 512 + e < m2p.length; e++) {
          const f = m2p[t * 512 + e];
          mem.write64(mem.mfnToOffset(l1) + e * 8, pteLo(f, roFlags), pteHi(f, 0));
        }
      }
      this.roMptL4Lo = pteLo(l3, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED);
      this.roMptL4Hi = pteHi(l3, 0);
      // Per-domain area: L4[260] -> L3 -> L2 -> GDT window L1s (16 vCPUs each).
      const pl3 = this.allocXen();
      this.perdomainL2Mfn = this.allocXen();
      mem.write64(mem.mfnToOffset(pl3), pteLo(this.perdomainL2Mfn, hvRw), pteHi(this.perdomainL2Mfn, 0));
      this.perdomainL4Lo = pteLo(pl3, hvRw);
      this.perdomainL4Hi = pteHi(pl3, 0);
    } else {
      // Compat M2P in L2 slots 428-510 (4 KiB pages), GDT windows in slot 511.
      const slots = 511 - COMPAT_L2_FIRST_XEN_SLOT;
      const nL1 = Math.min(slots, Math.ceil(m2p.length / 512));
      this.compatXenL2 = new Array<number>((512 - COMPAT_L2_FIRST_XEN_SLOT) * 2).fill(0);
      for (let t = 0; t < nL1; t++) {
        const l1 = this.allocXen();
        this.compatXenL2[t * 2] = pteLo(l1, _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED);
        this.compatXenL2[t * 2 + 1] = pteHi(l1, 0);
        for (let e = 0; e < 512 && t * 512 + e < m2p.length; e++) {
          const f = m2p[t * 512 + e];
          mem.write64(mem.mfnToOffset(l1) + e * 8, pteLo(f, roFlags), pteHi(f, 0));
        }
      }
      const g = this.allocXen();
      this.gdtL1Mfns = [g];
      const s = (511 - COMPAT_L2_FIRST_XEN_SLOT) * 2;
      this.compatXenL2[s] = pteLo(g, hvRw);
      this.compatXenL2[s + 1] = pteHi(g, 0);
    }
    // Tables validated before this call get Xen's entries now.
    for (let i = 0; i < mem.frameCount; i++) {
      if (!this.typeCount[i] || !(this.pflags[i] & PF_VALIDATED)) continue;
      const mfn = mem.mfnBase + i;
      if (this.ptype[i] === PGT_L4) this.writeXenL4Slots(mfn, true);
      else if (this.ptype[i] === PGT_L2 && this.pflags[i] & PF_PAE_XEN_L2) this.writeCompatXenSlots(mfn);
    }
    for (const v of this.dom.vcpus) this.refreshGdtWindow(v);
  }

  /** Guest linear address of vCPU `id`'s GDT window (where GDTR points). */
  gdtWindowBase(id: number): bigint {
    return this.dom.bits === 64
      ? PERDOMAIN_VIRT_START_64 + BigInt(id) * BigInt(GDT_LDT_VCPU_SPAN_64)
      : BigInt(GDT_WINDOW_VIRT_START_32 + id * GDT_WINDOW_SPAN_32);
  }

  /** Returns [L1 mfn, first slot] of the window of vCPU `id`, allocating the L1 when needed. */
  private gdtWindowSlots(id: number): [number, number] | null {
    if (this.dom.bits === 64) {
      const t = Math.floor(id / 16);
      if (t >= 512) return null;
      while (this.gdtL1Mfns.length <= t) {
        const l1 = this.allocXen();
        const k = this.gdtL1Mfns.length;
        this.gdtL1Mfns.push(l1);
        const hvRw = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
        this.dom.mem.write64(
          this.dom.mem.mfnToOffset(this.perdomainL2Mfn) + k * 8,
          pteLo(l1, hvRw),
          pteHi(l1, 0),
        );
      }
      return [this.gdtL1Mfns[t], (id % 16) * 32];
    }
    if (id >= 32) return null;
    return [this.gdtL1Mfns[0], id * 16];
  }

  /**
   * Re-maps vCPU `v`'s GDT window from v.gdtFrames (unused guest pages map
   * Xen's zero page), writes Xen's reserved page after them, points the
   * CPU's GDTR at the window and flushes the window from its TLB. xen-core
   * calls this for vCPUs brought up after installXenMappings().
   */
  refreshGdtWindow(v: XenVcpuCore): void {
    if (!this.installed) return;
    const w = this.gdtWindowSlots(v.id);
    if (!w) return;
    const [l1, first] = w;
    const mem = this.dom.mem;
    const hvRw = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY;
    for (let p = 0; p < FIRST_RESERVED_GDT_PAGE; p++) {
      const f = p < v.gdtFrames.length ? v.gdtFrames[p] : this.zeroMfn;
      const flags = p < v.gdtFrames.length ? hvRw : _PAGE_PRESENT | _PAGE_ACCESSED;
      mem.write64(mem.mfnToOffset(l1) + (first + p) * 8, pteLo(f, flags), pteHi(f, 0));
    }
    let rg = this.reservedGdtMfns.get(v.id);
    if (rg === undefined) {
      rg = this.allocXen();
      this.reservedGdtMfns.set(v.id, rg);
      const off = mem.mfnToOffset(rg);
      for (const [k, d] of xenReservedGdt(this.dom.bits, v.id)) mem.write64Big(off + k * 8, d);
    }
    mem.write64(mem.mfnToOffset(l1) + (first + FIRST_RESERVED_GDT_PAGE) * 8, pteLo(rg, hvRw), pteHi(rg, 0));
    const base = this.gdtWindowBase(v.id);
    const st = v.cpu.state;
    st.gdtrBaseLo = Number(base & 0xffffffffn) | 0;
    st.gdtrBaseHi = Number(base >> 32n) | 0;
    st.gdtrLimit = GDT_LIMIT;
    for (let p = 0; p <= FIRST_RESERVED_GDT_PAGE; p++) {
      const va = base + BigInt(p * PAGE_SIZE);
      v.cpu.flushTlbPage(Number(va & 0xffffffffn) | 0, Number(va >> 32n) | 0);
    }
  }

  /** Writes Xen's L4 slots 256-271 (slot 256 RO M2P when `roMpt`, slot 260 per-domain area). */
  private writeXenL4Slots(mfn: number, roMpt: boolean): void {
    for (let s = ROOT_PAGETABLE_FIRST_XEN_SLOT; s <= ROOT_PAGETABLE_LAST_XEN_SLOT; s++) {
      let lo = 0;
      let hi = 0;
      if (s === L4_SLOT_RO_MPT && roMpt) {
        lo = this.roMptL4Lo;
        hi = this.roMptL4Hi;
      } else if (s === L4_SLOT_PERDOMAIN) {
        lo = this.perdomainL4Lo;
        hi = this.perdomainL4Hi;
      }
      this.writeEntry(mfn, s, lo, hi);
    }
  }

  private writeCompatXenSlots(mfn: number): void {
    if (!this.compatXenL2.length) return;
    for (let s = COMPAT_L2_FIRST_XEN_SLOT; s < 512; s++) {
      const k = (s - COMPAT_L2_FIRST_XEN_SLOT) * 2;
      this.writeEntry(mfn, s, this.compatXenL2[k], this.compatXenL2[k + 1]);
    }
  }

  // ---------------------------------------------------------------------
  // Refusals
  // ---------------------------------------------------------------------

  /** Reports a refusal: `context` plus the innermost reason; returns -errno. */
  private refuse(errno: number, context: string): number {
    const reason = this.why ? `${context}: ${this.why}` : context;
    this.why = '';
    return this.dom.reject(errno, reason);
  }

  // ---------------------------------------------------------------------
  // Pinning and base pointers
  // ---------------------------------------------------------------------

  /**
   * MMUEXT_PIN_Ln_TABLE for `mfn` (Xen do_mmuext_op pin_page): validates
   * the table recursively and keeps a type reference until unpinned.
   * 32-bit guests: level 4 is silently ignored (returns 0).
   * @returns 0, or -EINVAL (not the domain's frame, already pinned, invalid
   *   table), -EBUSY (an L1 maps a page-table frame writable), -EPERM (MMIO),
   *   -ERANGE (32-bit L3 above 4 GiB without pae_extended_cr3).
   */
  pin(level: 1 | 2 | 3 | 4, mfn: number): number {
    this.why = '';
    if (level === 4 && this.dom.bits === 32) return 0;
    if (![1, 2, 3, 4].includes(level)) return this.refuse(EINVAL, `Bad pin level ${level}`);
    if (!this.ownedBySelf(mfn)) {
      return this.refuse(EINVAL, `mfn ${hex(mfn)} bad, or bad owner d${this.dom.domid} (pin L${level})`);
    }
    const rc = this.getPageType(mfn, level);
    if (rc < 0) return this.refuse(-rc, `Error ${rc} while pinning mfn ${hex(mfn)}`);
    const i = this.idx(mfn);
    if (this.pflags[i] & PF_PINNED) {
      this.putPageType(mfn);
      return this.refuse(EINVAL, `mfn ${hex(mfn)} already pinned`);
    }
    this.pflags[i] |= PF_PINNED;
    this.getRef(mfn);
    return 0;
  }

  /**
   * MMUEXT_UNPIN_TABLE: drops the pin's type reference (devalidating the
   * table and, recursively, what it referenced when nothing else uses it).
   * @returns 0, or -EINVAL (not the domain's frame, or not pinned).
   */
  unpin(mfn: number): number {
    this.why = '';
    if (!this.ownedBySelf(mfn))
      return this.refuse(EINVAL, `mfn ${hex(mfn)} bad, or bad owner d${this.dom.domid}`);
    const i = this.idx(mfn);
    if (!(this.pflags[i] & PF_PINNED)) return this.refuse(EINVAL, `mfn ${hex(mfn)} not pinned`);
    this.pflags[i] &= ~PF_PINNED;
    this.putPageAndType(mfn);
    return 0;
  }

  /** CR3 halves for root `mfn`: 64-bit mfn << 12; 32-bit folded (mfn << 12) | (mfn >> 20). */
  cr3For(mfn: number): [number, number] {
    if (this.dom.bits === 32) return [((mfn << 12) | (mfn >>> 20)) >>> 0, 0];
    return [(mfn % 0x100000) * 4096, Math.floor(mfn / 0x100000)];
  }

  /**
   * MMUEXT_NEW_BASEPTR (Xen new_guest_cr3): type-references `mfn` as the
   * root (64-bit L4, 32-bit L3), makes it vcpu.kernelRootMfn, loads the
   * CPU's CR3 (32-bit: folded encoding) and flushes the TLB, then drops the
   * old root's reference.
   * @returns 0 or -errno (-EINVAL invalid table / not owned, -EBUSY, -EPERM, -ERANGE).
   */
  newBaseptr(vcpu: XenVcpuCore, mfn: number): number {
    this.why = '';
    const old = vcpu.kernelRootMfn;
    if (old !== mfn) {
      const rc = this.getPageAndType(mfn, this.dom.bits === 64 ? PGT_L4 : PGT_L3);
      if (rc < 0) {
        return this.refuse(
          -rc,
          this.dom.bits === 64
            ? `Error while installing new baseptr ${hex(mfn)}`
            : `Error while installing new compat baseptr ${hex(mfn)}`,
        );
      }
      if (this.dom.bits === 64 && !this.dom.vmAssistOn(VMASST_TYPE_m2p_strict)) this.fillRoMpt(mfn);
      vcpu.kernelRootMfn = mfn;
    }
    if (vcpu.kernelMode || this.dom.bits === 32 || vcpu.userRootMfn === 0) this.loadCr3(vcpu, mfn);
    if (old !== mfn && old !== 0) this.putPageAndType(old);
    return 0;
  }

  /**
   * Loads the CPU's CR3 for root `mfn` and flushes its TLB. 64-bit: the L4.
   * 32-bit on a CPU in PAE protected mode: the folded L3 encoding. 32-bit on
   * a CPU in long mode (Xen's compat model): a Xen-owned per-vCPU L4
   * (vcpu.compatL4Mfn) whose slot 0 maps the guest's L3 with P|RW|US|A|D,
   * as Xen's new_guest_cr3() installs it, so the new tables are live at once
   * (e.g. for the rest of an mmuext_op batch).
   */
  private loadCr3(vcpu: XenVcpuCore, mfn: number): void {
    const st = vcpu.cpu.state;
    const EFER_LMA = 1 << 10;
    if (this.dom.bits === 32 && st.efer & EFER_LMA) {
      let l4 = vcpu.compatL4Mfn ?? 0;
      if (!l4) {
        l4 = this.allocXen();
        vcpu.compatL4Mfn = l4;
      }
      const off = this.dom.mem.mfnToOffset(l4);
      this.dom.mem.write64(off, ((mfn % 0x100000) * 4096 + 0x67) >>> 0, Math.floor(mfn / 0x100000));
      st.cr3Lo = ((l4 % 0x100000) * 4096) | 0;
      st.cr3Hi = Math.floor(l4 / 0x100000) | 0;
    } else {
      const [lo, hi] = this.cr3For(mfn);
      st.cr3Lo = lo | 0;
      st.cr3Hi = hi | 0;
    }
    vcpu.cpu.stateChanged();
    this.flushVcpuTlb(vcpu);
  }

  private fillRoMpt(mfn: number): void {
    const [lo, hi] = this.readEntry(mfn, L4_SLOT_RO_MPT);
    if (lo === 0 && hi === 0 && this.roMptL4Lo)
      this.writeEntry(mfn, L4_SLOT_RO_MPT, this.roMptL4Lo, this.roMptL4Hi);
  }

  /**
   * MMUEXT_NEW_USER_BASEPTR (64-bit): type-references `mfn` as an L4 (0 =
   * no user tables), sets vcpu.userRootMfn, drops the previous one. With
   * VMASST m2p_strict the RO M2P slot of the user L4 is cleared. Does not
   * change CR3 (xen-core switches on user/kernel transitions).
   * @returns 0 or -errno (32-bit guests: -EINVAL).
   */
  newUserBaseptr(vcpu: XenVcpuCore, mfn: number): number {
    this.why = '';
    if (this.dom.bits === 32)
      return this.refuse(EINVAL, 'MMUEXT_NEW_USER_BASEPTR is not available to 32-bit guests');
    const old = vcpu.userRootMfn;
    if (old === mfn) return 0;
    if (mfn !== 0) {
      const rc = this.getPageAndType(mfn, PGT_L4);
      if (rc < 0) return this.refuse(-rc, `Error ${rc} installing new mfn ${hex(mfn)}`);
      if (this.dom.vmAssistOn(VMASST_TYPE_m2p_strict)) this.writeEntry(mfn, L4_SLOT_RO_MPT, 0, 0);
    }
    vcpu.userRootMfn = mfn;
    if (old !== 0) this.putPageAndType(old);
    return 0;
  }

  // ---------------------------------------------------------------------
  // Entry updates (mod_lN_entry)
  // ---------------------------------------------------------------------

  /**
   * Xen mod_l1_entry(): validated write of one L1 entry.
   * @param preserveAd MMU_PT_UPDATE_PRESERVE_AD: keep the current A/D bits
   */
  private modL1Entry(
    l1mfn: number,
    slot: number,
    nlo: number,
    nhi: number,
    pgOwner: number,
    preserveAd: boolean,
  ): number {
    const [olo, ohi] = this.readEntry(l1mfn, slot);
    nlo >>>= 0;
    nhi >>>= 0;
    if (preserveAd) nlo = (nlo | (olo & (_PAGE_ACCESSED | _PAGE_DIRTY))) >>> 0;
    if (nlo & _PAGE_PRESENT) {
      const bad = pteFlags(nlo, nhi) & this.l1DisallowMask();
      if (bad) {
        this.why = `Bad L1 flags ${hex(bad)}`;
        return -EINVAL;
      }
      if (this.sameMapping(olo, ohi, nlo, nhi)) {
        const [al, ah] = this.adjustL1(nlo, nhi);
        this.writeEntry(l1mfn, slot, al, ah);
        return 0;
      }
      const rc = this.getPageFromL1e(nlo, nhi, pgOwner);
      if (rc < 0) return rc;
      const [al, ah] = this.adjustL1(nlo, nhi);
      this.writeEntry(l1mfn, slot, al, ah);
    } else {
      this.writeEntry(l1mfn, slot, nlo, nhi);
    }
    this.putPageFromL1e(olo, ohi);
    return 0;
  }

  /** !lNe_has_changed(old, new, ~FASTPATH_FLAG_WHITELIST): same frame, same non-whitelisted flags. */
  private sameMapping(olo: number, ohi: number, nlo: number, nhi: number): boolean {
    if (pteMfn(olo, ohi) !== pteMfn(nlo, nhi)) return false;
    const diff = pteFlags(olo, ohi) ^ pteFlags(nlo, nhi);
    return (diff & ~FASTPATH_FLAG_WHITELIST & 0xffffff) === 0;
  }

  /** Xen mod_l2_entry / mod_l3_entry / mod_l4_entry. */
  private modUpperEntry(
    level: number,
    mfn: number,
    slot: number,
    nlo: number,
    nhi: number,
    preserveAd: boolean,
  ): number {
    nlo >>>= 0;
    nhi >>>= 0;
    if (level === 2 && !this.isGuestL2Slot(mfn, slot)) {
      this.why = `L2 update in Xen-private area, slot ${hex(slot)}`;
      return -EPERM;
    }
    if (level === 3 && this.dom.bits === 32 && slot >= 3) {
      this.why = `L3 update of slot ${slot} refused: slots 3 and up hold Xen's mappings`;
      return -EINVAL;
    }
    if (level === 4 && !PvMm.isGuestL4Slot(slot)) {
      this.why = `L4 update in Xen-private area, slot ${hex(slot)}`;
      return -EINVAL;
    }
    const [olo, ohi] = this.readEntry(mfn, slot);
    if (preserveAd) nlo = (nlo | (olo & (_PAGE_ACCESSED | _PAGE_DIRTY))) >>> 0;
    if (nlo & _PAGE_PRESENT) {
      const mask = level === 2 ? L2_DISALLOW_MASK : level === 3 ? this.l3DisallowMask() : L4_DISALLOW_MASK;
      const bad = pteFlags(nlo, nhi) & mask;
      if (bad) {
        this.why = `Bad L${level} flags ${hex(bad)}`;
        return -EINVAL;
      }
      if (olo & _PAGE_PRESENT && this.sameMapping(olo, ohi, nlo, nhi)) {
        this.writeEntry(mfn, slot, this.adjustUpper(level, nlo), nhi);
        return 0;
      }
      const rc = this.getPageFromUpper(level, nlo, nhi, mfn);
      if (rc < 0) return rc;
      this.writeEntry(mfn, slot, this.adjustUpper(level, nlo), nhi);
    } else {
      this.writeEntry(mfn, slot, nlo, nhi);
    }
    this.putPageFromUpper(olo, ohi, mfn);
    if (level === 3 && this.dom.bits === 32) this.reloadPaeRoots(mfn);
    return 0;
  }

  /** A 32-bit L3 in use as CR3: the CPU may cache the PDPTEs, so reload them. */
  private reloadPaeRoots(l3: number): void {
    for (const v of this.dom.vcpus) {
      if (v.kernelRootMfn === l3) {
        v.cpu.stateChanged();
        v.cpu.flushTlb(true);
      }
    }
  }

  // ---------------------------------------------------------------------
  // Hypercalls
  // ---------------------------------------------------------------------

  /**
   * Xen get_pg_owner(): the domain named by a foreigndom argument.
   * @returns the domid (self, or DOMID_IO), or -errno: -ESRCH for unknown
   *   domains, DOMID_XEN and the caller's own numeric id; -EPERM for another
   *   existing domain (a domU may not act on dom0's frames).
   */
  private pgOwner(fd: number, what: string): number {
    fd &= 0xffff;
    if (fd === DOMID_SELF) return this.dom.domid;
    if (fd === this.dom.domid) return this.refuse(ESRCH, `${what}: Cannot specify itself as foreign domain`);
    if (fd === DOMID_IO) return DOMID_IO;
    if (fd === DOMID_XEN) return this.refuse(ESRCH, `${what}: Cannot set foreign dom`);
    if (fd === 0) return this.refuse(EPERM, `${what}: d${this.dom.domid} may not use d0's frames`);
    return this.refuse(ESRCH, `${what}: Unknown domain d${fd}`);
  }

  private guestWord(): number {
    return this.dom.bits === 64 ? 8 : 4;
  }

  /**
   * HYPERVISOR_mmu_update(req, count, done, foreigndom) (hypercall 1).
   * `a` = [req (guest VA of mmu_update_t[]), count, done (u32* or 0),
   * foreigndom]. Stops at the first failing request; writes the number of
   * completed requests to `done`.
   * @returns 0 or -errno of the failing request (-EFAULT unreadable request,
   *   -EINVAL/-EBUSY/-EPERM validation, -ENOSYS unknown command, -ESRCH/-EPERM foreigndom).
   */
  mmuUpdate(vcpu: XenVcpuCore, a: bigint[]): number {
    return this.guestOp(() => this.doMmuUpdate(vcpu, a));
  }

  private guestOp(f: () => number): number {
    this.why = '';
    this.inGuestOp = true;
    try {
      return f();
    } finally {
      this.inGuestOp = false;
    }
  }

  private doMmuUpdate(vcpu: XenVcpuCore, a: bigint[]): number {
    const ureqs = a[0] ?? 0n;
    let count = Number((a[1] ?? 0n) & 0xffffffffn);
    const pdone = a[2] ?? 0n;
    const fd = Number((a[3] ?? 0n) & 0xffffffffn);
    let done = 0;
    if (count & MMU_UPDATE_PREEMPTED) {
      count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
      if (pdone !== 0n) done = Number(readGuestUint(vcpu.cpu, pdone, 4) ?? 0n);
    }
    let rc = 0;
    const ptDom = fd >>> 16;
    if (ptDom !== 0 && ptDom - 1 !== this.dom.domid) {
      rc =
        ptDom - 1 === 0
          ? this.refuse(EPERM, 'mmu_update: page tables of d0')
          : this.refuse(ESRCH, `mmu_update: unknown page-table domain d${ptDom - 1}`);
      return this.writeDone(vcpu, pdone, done, rc);
    }
    const pgOwner = this.pgOwner(fd, 'mmu_update');
    if (pgOwner < 0) return this.writeDone(vcpu, pdone, done, pgOwner);
    let i = 0;
    for (; i < count; i++) {
      // Xen: `if (i && hypercall_preempt_check()) rc = -ERESTART` before each request but the first.
      if (i && hypercallPreemptCheck()) {
        rc = createContinuation(1, [
          this.guestVa(ureqs + BigInt(i * 16)),
          BigInt(((count - i) | MMU_UPDATE_PREEMPTED) >>> 0),
          pdone,
          BigInt(fd >>> 0),
        ]);
        break;
      }
      chargeWork();
      const req = copyFromGuest(vcpu.cpu, ureqs + BigInt(i * 16), 16);
      if (!req) {
        rc = this.refuse(EFAULT, `mmu_update: cannot read request ${i} at ${hex(ureqs + BigInt(i * 16))}`);
        break;
      }
      const dv = new DataView(req.buffer);
      const ptrLo = dv.getUint32(0, true);
      const ptrHi = dv.getUint32(4, true);
      const valLo = dv.getUint32(8, true);
      const valHi = dv.getUint32(12, true);
      const cmd = ptrLo & 7;
      const maddr = ptrHi * 0x100000000 + (ptrLo - cmd);
      const mfn = Math.floor(maddr / PAGE_SIZE);
      switch (cmd) {
        case MMU_NORMAL_PT_UPDATE:
        case MMU_PT_UPDATE_PRESERVE_AD:
        case MMU_PT_UPDATE_NO_TRANSLATE:
          rc = this.normalUpdate(
            mfn,
            (maddr % PAGE_SIZE) / 8,
            valLo,
            valHi,
            pgOwner,
            cmd === MMU_PT_UPDATE_PRESERVE_AD,
          );
          if (rc < 0)
            rc = this.refuse(
              -rc,
              `mmu_update request ${i} (ptr ${hex(BigInt(ptrHi) * 0x100000000n + BigInt(ptrLo))}, val ${entryHex(valLo, valHi)})`,
            );
          break;
        case MMU_MACHPHYS_UPDATE: {
          if (pgOwner !== this.dom.domid || !this.ownedBySelf(mfn)) {
            rc = this.refuse(
              EINVAL,
              `mmu_update request ${i}: Could not get page for mach->phys update (mfn ${hex(mfn)})`,
            );
            break;
          }
          let pfn: number;
          if (this.dom.bits === 32) pfn = valLo >>> 0;
          else
            pfn =
              valHi === 0
                ? valLo >>> 0
                : valHi === 0xffffffff && valLo === 0xffffffff
                  ? -1
                  : valHi * 0x100000000 + valLo;
          this.dom.setM2p(mfn, pfn);
          rc = 0;
          break;
        }
        default:
          rc = this.refuse(ENOSYS, `mmu_update request ${i}: unknown command ${cmd}`);
      }
      if (rc < 0) break;
    }
    return this.writeDone(vcpu, pdone, done + i, rc);
  }

  /** A guest virtual address wrapped to the guest's word size (continuation arguments). */
  private guestVa(va: bigint): bigint {
    return this.dom.bits === 64 ? BigInt.asUintN(64, va) : va & 0xffffffffn;
  }

  private writeDone(vcpu: XenVcpuCore, pdone: bigint, done: number, rc: number): number {
    if (pdone !== 0n) writeGuestUint(vcpu.cpu, pdone, 4, BigInt(done >>> 0));
    return rc;
  }

  /** One MMU_NORMAL_PT_UPDATE: validated write into a page table, plain write into any other frame of the guest. */
  private normalUpdate(
    mfn: number,
    slot: number,
    lo: number,
    hi: number,
    pgOwner: number,
    preserveAd: boolean,
  ): number {
    if (!this.ownedBySelf(mfn)) {
      this.why = `Could not get page for normal update (mfn ${hex(mfn)})`;
      return -EINVAL;
    }
    const i = this.idx(mfn);
    if (this.typeCount[i] > 0 && this.pflags[i] & PF_VALIDATED) {
      const t = this.ptype[i];
      switch (t) {
        case PGT_L1:
          return this.modL1Entry(mfn, slot, lo, hi, pgOwner, preserveAd);
        case PGT_L2:
        case PGT_L3:
        case PGT_L4:
          if (pgOwner !== this.dom.domid) {
            this.why = `L${t} update with a foreign page owner`;
            return -EINVAL;
          }
          return this.modUpperEntry(t, mfn, slot, lo, hi, preserveAd);
        case PGT_WRITABLE:
          this.writeEntry(mfn, slot, lo, hi);
          return 0;
        default:
          this.why = `mfn ${hex(mfn)} is a ${TYPE_NAMES[t]} page`;
          return -EINVAL;
      }
    }
    const rc = this.getPageType(mfn, PGT_WRITABLE);
    if (rc < 0) return rc;
    this.writeEntry(mfn, slot, lo, hi);
    this.putPageType(mfn);
    return 0;
  }

  /**
   * Walks the guest's kernel page tables (root vcpu.kernelRootMfn) to the L1
   * entry mapping `va` (Xen map_guest_l1e / guest_get_eff_kern_l1e).
   * @returns [l1 mfn, slot] or null when an upper level is not present,
   *   is a superpage, or the root is unset.
   */
  findL1e(vcpu: XenVcpuCore, va: bigint): [number, number] | null {
    let t = vcpu.kernelRootMfn;
    if (!t || this.idx(t) < 0) return null;
    if (this.dom.bits === 64) {
      for (const shift of [39n, 30n, 21n]) {
        const [lo, hi] = this.readEntry(t, Number((va >> shift) & 511n));
        if (!(lo & _PAGE_PRESENT) || (shift !== 39n && lo & _PAGE_PSE)) return null;
        t = pteMfn(lo, hi);
        if (this.idx(t) < 0) return null;
      }
      return [t, Number((va >> 12n) & 511n)];
    }
    const v = Number(va & 0xffffffffn);
    const [l3lo, l3hi] = this.readEntry(t, v >>> 30);
    if (!(l3lo & _PAGE_PRESENT)) return null;
    t = pteMfn(l3lo, l3hi);
    if (this.idx(t) < 0) return null;
    const [l2lo, l2hi] = this.readEntry(t, (v >>> 21) & 511);
    if (!(l2lo & _PAGE_PRESENT) || l2lo & _PAGE_PSE) return null;
    t = pteMfn(l2lo, l2hi);
    if (this.idx(t) < 0) return null;
    return [t, (v >>> 12) & 511];
  }

  /** Xen __addr_ok(): guest addresses outside Xen's part of the address space. */
  private addrOk(va: bigint): boolean {
    if (this.dom.bits === 32) return va < BigInt(HYPERVISOR_COMPAT_VIRT_START);
    return va < 0xffff800000000000n || va >= 0xffff880000000000n;
  }

  /**
   * HYPERVISOR_update_va_mapping (14). `a` = 64-bit [va, val, flags];
   * 32-bit [va, val_lo, val_hi, flags]. Validates the new L1 entry for `va`
   * in the current kernel page tables like an mmu_update, then flushes per
   * UVMF_* flags (vcpumask pointer for MULTI).
   * @returns 0 or -errno (-EINVAL no L1 for va / invalid entry, -EBUSY,
   *   -EPERM, -EFAULT unreadable vcpumask).
   */
  updateVaMapping(vcpu: XenVcpuCore, a: bigint[]): number {
    return this.guestOp(() => {
      const [va, val, flags] = this.uvmArgs(a);
      return this.doUpdateVaMapping(vcpu, va, val, flags, this.dom.domid);
    });
  }

  /**
   * HYPERVISOR_update_va_mapping_otherdomain (22): as update_va_mapping
   * with the data frame owned by `domid` (64-bit a[3], 32-bit a[4]). A domU
   * may only name itself (DOMID_SELF); others get -ESRCH/-EPERM.
   */
  updateVaMappingOtherdomain(vcpu: XenVcpuCore, a: bigint[]): number {
    return this.guestOp(() => {
      const [va, val, flags] = this.uvmArgs(a);
      const domid = Number((a[this.dom.bits === 64 ? 3 : 4] ?? 0n) & 0xffffn);
      const owner = this.pgOwner(domid, 'update_va_mapping_otherdomain');
      if (owner < 0) return owner;
      if (owner === DOMID_IO && (val & 1n) !== 0n) {
        return this.refuse(
          EPERM,
          `update_va_mapping_otherdomain: d${this.dom.domid} may not map DOMID_IO frames`,
        );
      }
      return this.doUpdateVaMapping(vcpu, va, val, flags, owner);
    });
  }

  private uvmArgs(a: bigint[]): [bigint, bigint, bigint] {
    const M64 = (1n << 64n) - 1n;
    if (this.dom.bits === 64) return [(a[0] ?? 0n) & M64, (a[1] ?? 0n) & M64, (a[2] ?? 0n) & M64];
    const lo = (a[1] ?? 0n) & 0xffffffffn;
    const hi = (a[2] ?? 0n) & 0xffffffffn;
    return [(a[0] ?? 0n) & 0xffffffffn, (hi << 32n) | lo, (a[3] ?? 0n) & 0xffffffffn];
  }

  private doUpdateVaMapping(
    vcpu: XenVcpuCore,
    va: bigint,
    val: bigint,
    flags: bigint,
    pgOwner: number,
  ): number {
    const lo = Number(val & 0xffffffffn);
    const hi = Number((val >> 32n) & 0xffffffffn);
    const where = `update_va_mapping(${hex(va)}, ${entryHex(lo, hi)}, ${hex(flags)})`;
    const l1 = this.addrOk(va) ? this.findL1e(vcpu, va) : null;
    if (!l1) return this.refuse(EINVAL, `${where}: no L1 table maps this address`);
    const [l1mfn, slot] = l1;
    if (!this.ownedBySelf(l1mfn) || !this.isValidatedTable(l1mfn, 1)) {
      return this.refuse(
        EINVAL,
        `${where}: mfn ${hex(l1mfn)} mapping it is not a validated L1 of d${this.dom.domid}`,
      );
    }
    const rc = this.modL1Entry(l1mfn, slot, lo, hi, pgOwner, false);
    if (rc < 0) return this.refuse(-rc, where);
    const vaLo = Number(va & 0xffffffffn) | 0;
    const vaHi = Number((va >> 32n) & 0xffffffffn) | 0;
    const type = Number(flags & 3n);
    if (type === UVMF_NONE) return 0;
    const bmap = flags & ~3n;
    let targets: XenVcpuCore[];
    if (bmap === 0n) targets = [vcpu];
    else if (bmap === BigInt(UVMF_ALL)) targets = this.dom.vcpus;
    else {
      const sel = this.readVcpumask(vcpu, bmap);
      if (!sel) return this.refuse(EFAULT, `${where}: cannot read vcpumask at ${hex(bmap)}`);
      targets = sel;
    }
    for (const v of targets) {
      if (type === UVMF_TLB_FLUSH) this.flushVcpuTlb(v);
      else if (type === UVMF_INVLPG) v.cpu.flushTlbPage(vaLo, vaHi);
    }
    return 0;
  }

  /** Xen vcpumask_to_pcpumask(): reads a guest bitmap of vCPUs (guest-word sized chunks). */
  private readVcpumask(vcpu: XenVcpuCore, ptr: bigint): XenVcpuCore[] | null {
    const w = this.guestWord();
    const out: XenVcpuCore[] = [];
    const n = this.dom.vcpus.length;
    for (let offs = 0; offs * w * 8 < n; offs++) {
      const word = readGuestUint(vcpu.cpu, ptr + BigInt(offs * w), w);
      if (word === null) return null;
      for (let b = 0; b < w * 8; b++) {
        if ((word >> BigInt(b)) & 1n) {
          const id = offs * w * 8 + b;
          if (id < n) out.push(this.dom.vcpus[id]);
        }
      }
    }
    return out;
  }

  /**
   * HYPERVISOR_mmuext_op(ops, count, done, foreigndom) (hypercall 26).
   * `a` = [ops (guest VA of mmuext_op_t[]: 24 bytes each for 64-bit, 12 for
   * 32-bit), count, done (u32* or 0), foreigndom]. Commands of brief §5.4;
   * stops at the first failure and writes the completed count to `done`.
   * @returns 0 or -errno of the failing op.
   */
  mmuextOp(vcpu: XenVcpuCore, a: bigint[]): number {
    return this.guestOp(() => this.doMmuextOp(vcpu, a));
  }

  private doMmuextOp(vcpu: XenVcpuCore, a: bigint[]): number {
    const uops = a[0] ?? 0n;
    let count = Number((a[1] ?? 0n) & 0xffffffffn);
    const pdone = a[2] ?? 0n;
    const fd = Number((a[3] ?? 0n) & 0xffffffffn);
    let done = 0;
    if (count & MMU_UPDATE_PREEMPTED) {
      count = (count & ~MMU_UPDATE_PREEMPTED) >>> 0;
      if (pdone !== 0n) done = Number(readGuestUint(vcpu.cpu, pdone, 4) ?? 0n);
    }
    const owner = this.pgOwner(fd, 'mmuext_op');
    if (owner < 0) return this.writeDone(vcpu, pdone, done, owner);
    if (owner === DOMID_IO)
      return this.writeDone(vcpu, pdone, done, this.refuse(EINVAL, 'mmuext_op: DOMID_IO is not a PV domain'));
    const size = this.dom.bits === 64 ? 24 : 12;
    let rc = 0;
    let i = 0;
    for (; i < count; i++) {
      if (i && hypercallPreemptCheck()) {
        rc = createContinuation(26, [
          this.guestVa(uops + BigInt(i * size)),
          BigInt(((count - i) | MMU_UPDATE_PREEMPTED) >>> 0),
          pdone,
          BigInt(fd >>> 0),
        ]);
        break;
      }
      chargeWork();
      const raw = copyFromGuest(vcpu.cpu, uops + BigInt(i * size), size);
      if (!raw) {
        rc = this.refuse(EFAULT, `mmuext_op: cannot read op ${i} at ${hex(uops + BigInt(i * size))}`);
        break;
      }
      const dv = new DataView(raw.buffer);
      const cmd = dv.getUint32(0, true);
      const arg1 = this.dom.bits === 64 ? dv.getBigUint64(8, true) : BigInt(dv.getUint32(4, true));
      const arg2 = this.dom.bits === 64 ? dv.getBigUint64(16, true) : BigInt(dv.getUint32(8, true));
      rc = this.oneMmuextOp(vcpu, i, cmd, arg1, arg2);
      if (rc < 0) break;
    }
    return this.writeDone(vcpu, pdone, done + i, rc);
  }

  private oneMmuextOp(vcpu: XenVcpuCore, i: number, cmd: number, arg1: bigint, arg2: bigint): number {
    const mfn = Number(arg1 & 0xfffffffffffffn);
    const at = `mmuext_op ${i} (cmd ${cmd})`;
    switch (cmd) {
      case MMUEXT_PIN_L1_TABLE:
      case MMUEXT_PIN_L2_TABLE:
      case MMUEXT_PIN_L3_TABLE:
      case MMUEXT_PIN_L4_TABLE:
        if (arg1 > 0xfffffffffffffn) return this.refuse(EINVAL, `${at}: bad mfn ${hex(arg1)}`);
        return this.pin((cmd + 1) as 1 | 2 | 3 | 4, mfn);
      case MMUEXT_UNPIN_TABLE:
        return this.unpin(mfn);
      case MMUEXT_NEW_BASEPTR:
        return this.newBaseptr(vcpu, mfn);
      case MMUEXT_NEW_USER_BASEPTR:
        return this.newUserBaseptr(vcpu, mfn);
      case MMUEXT_TLB_FLUSH_LOCAL:
        this.flushVcpuTlb(vcpu);
        return 0;
      case MMUEXT_INVLPG_LOCAL:
        vcpu.cpu.flushTlbPage(Number(arg1 & 0xffffffffn) | 0, Number((arg1 >> 32n) & 0xffffffffn) | 0);
        return 0;
      case MMUEXT_TLB_FLUSH_MULTI:
      case MMUEXT_INVLPG_MULTI: {
        const sel = this.readVcpumask(vcpu, arg2);
        if (!sel) return this.refuse(EINVAL, `${at}: cannot read vcpumask at ${hex(arg2)}`);
        for (const v of sel) {
          if (cmd === MMUEXT_TLB_FLUSH_MULTI) this.flushVcpuTlb(v);
          else if (this.addrOk(arg1))
            v.cpu.flushTlbPage(Number(arg1 & 0xffffffffn) | 0, Number((arg1 >> 32n) & 0xffffffffn) | 0);
        }
        return 0;
      }
      case MMUEXT_TLB_FLUSH_ALL:
        for (const v of this.dom.vcpus) this.flushVcpuTlb(v);
        return 0;
      case MMUEXT_INVLPG_ALL:
        if (this.addrOk(arg1)) {
          for (const v of this.dom.vcpus)
            v.cpu.flushTlbPage(Number(arg1 & 0xffffffffn) | 0, Number((arg1 >> 32n) & 0xffffffffn) | 0);
        }
        return 0;
      case MMUEXT_FLUSH_CACHE:
        return this.refuse(EACCES, `${at}: MMUEXT_FLUSH_CACHE needs cache-flush privilege`);
      case MMUEXT_FLUSH_CACHE_GLOBAL:
        return this.refuse(EINVAL, `${at}: MMUEXT_FLUSH_CACHE_GLOBAL needs cache-flush privilege`);
      case MMUEXT_SET_LDT:
        return this.setLdt(vcpu, arg1, Number(arg2 & 0xffffffffn));
      case MMUEXT_CLEAR_PAGE: {
        if (!this.ownedBySelf(mfn) || this.getPageType(mfn, PGT_WRITABLE) < 0) {
          return this.refuse(EINVAL, `Error clearing mfn ${hex(mfn)}`);
        }
        this.dom.mem.fill(this.dom.mem.mfnToOffset(mfn), PAGE_SIZE, 0);
        this.putPageType(mfn);
        return 0;
      }
      case MMUEXT_COPY_PAGE: {
        const src = Number(arg2 & 0xfffffffffffffn);
        if (!this.ownedBySelf(src)) return this.refuse(EINVAL, `Error copying from mfn ${hex(src)}`);
        if (!this.ownedBySelf(mfn) || this.getPageType(mfn, PGT_WRITABLE) < 0) {
          return this.refuse(EINVAL, `Error copying to mfn ${hex(mfn)}`);
        }
        const mem = this.dom.mem;
        mem.writeBytes(mem.mfnToOffset(mfn), mem.readBytes(mem.mfnToOffset(src), PAGE_SIZE));
        this.putPageType(mfn);
        return 0;
      }
      case MMUEXT_MARK_SUPER:
      case MMUEXT_UNMARK_SUPER:
        return this.refuse(EOPNOTSUPP, `${at}: PV superpages are not supported`);
      default:
        return this.refuse(ENOSYS, `${at}: unknown mmuext_op command`);
    }
  }

  /**
   * MMUEXT_SET_LDT: base must be page aligned and below Xen's area,
   * entries <= 8192 (0 = no LDT). Sets vcpu.ldtBase/ldtEnts and the CPU's
   * LDTR cache (selector 0xE050, base = guest linear ldt_base, limit =
   * ents * 8 - 1) so descriptors with TI=1 are read from the guest's LDT.
   */
  private setLdt(vcpu: XenVcpuCore, base: bigint, ents: number): number {
    const ptr = ents ? base : 0n;
    if ((ptr & 0xfffn) !== 0n || !this.addrOk(ptr) || ents > MAX_LDT_ENTRIES) {
      return this.refuse(EINVAL, `Bad args to SET_LDT: ptr=${hex(ptr)}, ents=${hex(ents)}`);
    }
    vcpu.ldtBase = ptr;
    vcpu.ldtEnts = ents;
    this.loadLdt(vcpu);
    return 0;
  }

  /** Loads the CPU's LDTR cache from vcpu.ldtBase/ldtEnts (xen-core may call it after a context switch). */
  loadLdt(vcpu: XenVcpuCore): void {
    const LDTR = 6;
    if (vcpu.ldtEnts === 0) {
      vcpu.cpu.setSegmentRaw(LDTR, 0, 0, 0, 0, 1 << 16);
      return;
    }
    const base = vcpu.ldtBase;
    // Present (0x80), DPL 0, system type 2 (LDT).
    vcpu.cpu.setSegmentRaw(
      LDTR,
      LDT_SELECTOR,
      Number(base & 0xffffffffn) | 0,
      Number((base >> 32n) & 0xffffffffn) | 0,
      vcpu.ldtEnts * 8 - 1,
      0x82,
    );
  }

  /**
   * HYPERVISOR_set_gdt(frame_list, entries) (hypercall 2): entries <= 7168;
   * frame_list holds ceil(entries / 512) frame numbers (guest words). Each
   * frame must be the domain's and typeable seg_desc (every descriptor
   * passes the checks, and no writable mapping). Installs them in the
   * vCPU's GDT window (Xen's reserved page follows) and points GDTR at it.
   * @returns 0, -EINVAL, or -EFAULT (unreadable frame list).
   */
  setGdt(vcpu: XenVcpuCore, a: bigint[]): number {
    return this.guestOp(() => {
      const list = a[0] ?? 0n;
      const entries = Number((a[1] ?? 0n) & 0xffffffffn);
      if (entries > FIRST_RESERVED_GDT_ENTRY) {
        return this.refuse(EINVAL, `set_gdt: ${entries} entries exceed ${FIRST_RESERVED_GDT_ENTRY}`);
      }
      const nr = Math.ceil(entries / 512);
      const w = this.guestWord();
      const frames: number[] = [];
      for (let k = 0; k < nr; k++) {
        const f = readGuestUint(vcpu.cpu, list + BigInt(k * w), w);
        if (f === null)
          return this.refuse(EFAULT, `set_gdt: cannot read frame ${k} at ${hex(list + BigInt(k * w))}`);
        if (f > 0xfffffffffffffn) return this.refuse(EINVAL, `set_gdt: bad frame ${hex(f)}`);
        frames.push(Number(f));
      }
      return this.installGdt(vcpu, frames, entries);
    });
  }

  /**
   * Xen pv_set_gdt(): type-references the new frames as seg_desc, drops the
   * old ones, updates the window. Also usable by xen-core for
   * VCPUOP_initialise contexts.
   * @returns 0 or -EINVAL.
   */
  installGdt(vcpu: XenVcpuCore, frames: number[], entries: number): number {
    if (entries > FIRST_RESERVED_GDT_ENTRY || frames.length < Math.ceil(entries / 512)) {
      return this.refuse(EINVAL, `set_gdt: bad entry count ${entries}`);
    }
    const use = frames.slice(0, Math.ceil(entries / 512));
    for (let k = 0; k < use.length; k++) {
      const rc = this.getPageAndType(use[k], PGT_SEG_DESC);
      if (rc < 0) {
        for (let j = k - 1; j >= 0; j--) this.putPageAndType(use[j]);
        return this.refuse(EINVAL, `set_gdt: frame ${k} (mfn ${hex(use[k])}) cannot be a descriptor page`);
      }
    }
    for (const f of vcpu.gdtFrames) this.putPageAndType(f);
    vcpu.gdtFrames = use;
    vcpu.gdtEnts = entries;
    this.refreshGdtWindow(vcpu);
    vcpu.cpu.flushTlb(false);
    return 0;
  }

  /**
   * HYPERVISOR_update_descriptor (10). 64-bit `a` = [maddr, desc]; 32-bit
   * [maddr_lo, maddr_hi, desc_lo, desc_hi]. maddr must be 8-byte aligned;
   * the descriptor must pass Xen's checks (it may be rewritten); the frame
   * must be the domain's, a seg_desc page or typeable writable.
   * @returns 0 or -EINVAL.
   */
  updateDescriptor(vcpu: XenVcpuCore, a: bigint[]): number {
    void vcpu;
    return this.guestOp(() => {
      let maddr: bigint;
      let desc: bigint;
      if (this.dom.bits === 64) {
        maddr = a[0] ?? 0n;
        desc = a[1] ?? 0n;
      } else {
        maddr = (((a[1] ?? 0n) & 0xffffffffn) << 32n) | ((a[0] ?? 0n) & 0xffffffffn);
        desc = (((a[3] ?? 0n) & 0xffffffffn) << 32n) | ((a[2] ?? 0n) & 0xffffffffn);
      }
      const where = `update_descriptor(${hex(maddr)}, ${hex(desc)})`;
      if (maddr & 7n) return this.refuse(EINVAL, `${where}: address not 8-byte aligned`);
      const r = checkDescriptor(
        Number(desc & 0xffffffffn),
        Number((desc >> 32n) & 0xffffffffn),
        this.dom.bits,
      );
      if (!r) return this.refuse(EINVAL, `${where}: descriptor refused`);
      const mfn = Number(maddr >> 12n);
      if (maddr >> 12n > 0xfffffffffn || !this.ownedBySelf(mfn)) {
        return this.refuse(EINVAL, `${where}: mfn ${hex(maddr >> 12n)} is not d${this.dom.domid}'s`);
      }
      const i = this.idx(mfn);
      const rc = this.getPageType(mfn, this.ptype[i] === PGT_SEG_DESC ? PGT_SEG_DESC : PGT_WRITABLE);
      if (rc < 0) return this.refuse(EINVAL, `${where}: frame in use in an unsafe context`);
      this.dom.mem.write64(this.dom.mem.mfnToOffset(mfn) + Number(maddr & 0xfffn), r.a, r.b);
      this.putPageType(mfn);
      return 0;
    });
  }

  // ---------------------------------------------------------------------
  // Writable page tables
  // ---------------------------------------------------------------------

  /**
   * Writable page-table emulation (Xen pv/ro-page-fault.c) for a guest
   * kernel #PF: with VMASST writable_pagetables, a write fault (error code
   * P|W, not RSVD, not I-fetch) on a read-only mapping of one of the
   * domain's frames typed L1 is emulated: the instruction at RIP is decoded
   * (MOV, XCHG, CMPXCHG, CMPXCHG8B, OR, AND, BTS/BTR/BTC), the store must be
   * naturally aligned and within CR2's page, sub-8-byte stores are merged,
   * the new PTE is validated like mmu_update (32-bit: an invalid present
   * value written to the high half has P cleared, the "high half first"
   * PAE order), adjusted (§5.3), written, the old entry's references
   * dropped, registers/flags updated and RIP advanced.
   * @returns true when emulated; false to deliver the #PF to the guest (an
   *   invalid PTE is also recorded through dom.reject).
   */
  ptwrFault(vcpu: XenVcpuCore, cr2: bigint, errorCode: number): boolean {
    this.why = '';
    try {
      return this.doPtwr(vcpu, cr2, errorCode);
    } catch {
      return false;
    }
  }

  private doPtwr(vcpu: XenVcpuCore, cr2: bigint, errorCode: number): boolean {
    if (!this.dom.vmAssistOn(VMASST_TYPE_writable_pagetables)) return false;
    if ((errorCode & (PFEC_PRESENT | PFEC_WRITE | PFEC_RSVD | PFEC_INSN)) !== (PFEC_PRESENT | PFEC_WRITE))
      return false;
    if (!vcpu.kernelMode) return false;
    const loc = this.findL1e(vcpu, cr2);
    if (!loc) return false;
    const [pteLoV, pteHiV] = this.readEntry(loc[0], loc[1]);
    if ((pteLoV & (_PAGE_PRESENT | _PAGE_RW)) !== _PAGE_PRESENT) return false;
    const target = pteMfn(pteLoV, pteHiV);
    if (!this.ownedBySelf(target) || !this.isValidatedTable(target, 1)) return false;

    const cpu = vcpu.cpu;
    const st = cpu.state;
    const long = this.dom.bits === 64;
    const ripFull = (BigInt(st.ripHi >>> 0) << 32n) | BigInt(st.ripLo >>> 0);
    const csBase = long ? 0n : BigInt(st.segBaseLo[1] >>> 0);
    const ripLin = long ? ripFull : (csBase + (ripFull & 0xffffffffn)) & 0xffffffffn;
    const code: number[] = [];
    for (let k = 0; k < 15; k++) {
      const b = copyFromGuest(cpu, ripLin + BigInt(k), 1);
      if (!b) break;
      code.push(b[0]);
    }
    const gpr = (n: number): bigint => (BigInt(st.gprHi[n] >>> 0) << 32n) | BigInt(st.gprLo[n] >>> 0);
    const env: DecodeEnv = {
      long,
      gpr: (n) => (long ? gpr(n) : gpr(n) & 0xffffffffn),
      segBase: (n) => (BigInt(st.segBaseHi[n] >>> 0) << 32n) | BigInt(st.segBaseLo[n] >>> 0),
      rip: ripFull,
    };
    const d = decodeStore(Uint8Array.from(code), env);
    if (!d) return false;
    const addr = d.ea;
    const size = d.size;
    if ((addr ^ cr2) >> 12n !== 0n || (addr & BigInt(size - 1)) !== 0n) return false;

    // Merge into the full 8-byte entry.
    const slot = Number((addr & 0xfffn) >> 3n);
    const [clo, chi] = this.readEntry(target, slot);
    const full = (BigInt(chi >>> 0) << 32n) | BigInt(clo >>> 0);
    const offBits = BigInt(Number(addr & 7n) * 8);
    const m = ((1n << BigInt(size * 8)) - 1n) << offBits;
    const cur = (full & m) >> offBits;
    let newPart: bigint;
    let cmpFail = false;
    let cf = -1;
    const szMask = (1n << BigInt(size * 8)) - 1n;
    switch (d.op) {
      case 'mov':
      case 'xchg':
        newPart = d.src;
        break;
      case 'cmpxchg': {
        const acc = readSizedReg(env, 0, size, false);
        if (acc !== cur) cmpFail = true;
        newPart = d.src;
        break;
      }
      case 'cmpxchg8b': {
        const acc = ((env.gpr(2) & 0xffffffffn) << 32n) | (env.gpr(0) & 0xffffffffn);
        if (acc !== cur) cmpFail = true;
        newPart = d.src;
        break;
      }
      case 'or':
        newPart = cur | d.src;
        break;
      case 'and':
        newPart = cur & d.src;
        break;
      default: {
        const bit = 1n << d.src;
        cf = (cur & bit) !== 0n ? 1 : 0;
        newPart = d.op === 'bts' ? cur | bit : d.op === 'btr' ? cur & ~bit : cur ^ bit;
      }
    }
    newPart &= szMask;

    if (!cmpFail) {
      const nval = (full & ~m) | (newPart << offBits);
      let nlo = Number(nval & 0xffffffffn) >>> 0;
      const nhi = Number(nval >> 32n) >>> 0;
      if (nlo & _PAGE_PRESENT) {
        const rc = this.getPageFromL1e(nlo, nhi, this.dom.domid);
        if (rc < 0) {
          const highHalfFirst =
            !long && size === 4 && (addr & 4n) !== 0n && d.op !== 'cmpxchg' && d.op !== 'cmpxchg8b';
          if (highHalfFirst) {
            nlo = (nlo & ~_PAGE_PRESENT) >>> 0;
            this.why = '';
          } else {
            this.refuse(
              -rc,
              `ptwr_emulate: could not get_page_from_l1e() for ${entryHex(nlo, nhi)} at ${hex(addr)}`,
            );
            return false;
          }
        }
      }
      const [alo, ahi] = this.adjustL1(nlo, nhi);
      this.writeEntry(target, slot, alo, ahi);
      this.putPageFromL1e(clo, chi);
    }

    // Architectural effects on registers and flags.
    const setReg = (n: number, v: bigint, sz: number, high8: boolean): void => {
      if (sz === 1) {
        const k = high8 ? n - 4 : n;
        const sh = high8 ? 8 : 0;
        st.gprLo[k] = (st.gprLo[k] & ~(0xff << sh)) | (Number(v & 0xffn) << sh) | 0;
      } else if (sz === 2) {
        st.gprLo[n] = (st.gprLo[n] & ~0xffff) | Number(v & 0xffffn) | 0;
      } else if (sz === 4) {
        st.gprLo[n] = Number(v & 0xffffffffn) | 0;
        if (long) st.gprHi[n] = 0;
      } else {
        st.gprLo[n] = Number(v & 0xffffffffn) | 0;
        st.gprHi[n] = Number((v >> 32n) & 0xffffffffn) | 0;
      }
    };
    let rflags = cpu.getRflags();
    const ZF = 1 << 6;
    const CF = 1;
    switch (d.op) {
      case 'xchg':
        setReg(d.reg, cur, size, d.regHigh8);
        break;
      case 'cmpxchg': {
        const acc = readSizedReg(env, 0, size, false);
        rflags = (rflags & ~0x8d5) | arithSubFlags(acc, cur, size);
        if (cmpFail) setReg(0, cur, size, false);
        break;
      }
      case 'cmpxchg8b':
        rflags = cmpFail ? rflags & ~ZF : rflags | ZF;
        if (cmpFail) {
          setReg(0, cur & 0xffffffffn, 4, false);
          setReg(2, cur >> 32n, 4, false);
        }
        break;
      case 'or':
      case 'and':
        rflags = (rflags & ~0x8d5) | logicFlags(newPart, size);
        break;
      case 'bts':
      case 'btr':
      case 'btc':
        rflags = cf ? rflags | CF : rflags & ~CF;
        break;
      default:
        break;
    }
    cpu.setRflags(rflags);
    const next = ripFull + BigInt(d.len);
    if (long) {
      st.ripLo = Number(next & 0xffffffffn) | 0;
      st.ripHi = Number((next >> 32n) & 0xffffffffn) | 0;
    } else {
      st.ripLo = Number(next & 0xffffffffn) | 0;
      st.ripHi = 0;
    }
    return true;
  }
}

function parity8(v: number): number {
  let p = v & 0xff;
  p ^= p >> 4;
  p ^= p >> 2;
  p ^= p >> 1;
  return (p & 1) === 0 ? 1 << 2 : 0;
}

/** CF/PF/AF/ZF/SF/OF of `a - b` at `size` bytes (SDM vol. 1 §3.4.3). */
function arithSubFlags(a: bigint, b: bigint, size: number): number {
  const bits = BigInt(size * 8);
  const m = (1n << bits) - 1n;
  const r = (a - b) & m;
  const sign = 1n << (bits - 1n);
  let f = 0;
  if (a < b) f |= 1;
  f |= parity8(Number(r & 0xffn));
  if (((a ^ b ^ r) & 0x10n) !== 0n) f |= 1 << 4;
  if (r === 0n) f |= 1 << 6;
  if (r & sign) f |= 1 << 7;
  if (((a ^ b) & (a ^ r) & sign) !== 0n) f |= 1 << 11;
  return f;
}

/** Flags of a logical operation result (CF = OF = 0). */
function logicFlags(r: bigint, size: number): number {
  const sign = 1n << BigInt(size * 8 - 1);
  let f = parity8(Number(r & 0xffn));
  if (r === 0n) f |= 1 << 6;
  if (r & sign) f |= 1 << 7;
  return f;
}
