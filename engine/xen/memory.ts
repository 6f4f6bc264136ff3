/**
 * memory_op (12): Xen common/memory.c do_memory_op and
 * arch/x86/x86_64/mm.c subarch_memory_op, for a PV domU.
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { DOMID_SELF } from './types';
import { PAGE_SIZE } from '../memory/machine-memory';
import { chargeWork, createContinuation, hypercallPreemptCheck } from './preempt';
import {
  HYPERVISOR_VIRT_START_64,
  M2P_VIRT_END_64,
  HYPERVISOR_VIRT_START_32,
  M2P_VIRT_END_32,
} from './layout';

import {
  XENMEM_increase_reservation,
  XENMEM_decrease_reservation,
  XENMEM_maximum_ram_page,
  XENMEM_current_reservation,
  XENMEM_maximum_reservation,
  XENMEM_machphys_mfn_list,
  XENMEM_populate_physmap,
  XENMEM_add_to_physmap,
  XENMEM_memory_map,
  XENMEM_machine_memory_map,
  XENMEM_exchange,
  XENMEM_machphys_mapping,
  XENMEM_set_memory_map,
  XENMEM_maximum_gpfn,
} from './public/memory';
// Every constant of the header is re-exported for the modules and tests that import them from here.
export * from './public/memory';

/** The start extent of a continued reservation op sits above the command (Xen public/memory.h). */
export const MEMOP_EXTENT_SHIFT = 6;
/** Largest nr_extents whose continuation can be encoded (Xen: UINT_MAX >> MEMOP_EXTENT_SHIFT). */
export const MEMOP_MAX_EXTENTS = 0xffffffff >>> MEMOP_EXTENT_SHIFT;

interface Reservation {
  extentStart: bigint;
  nrExtents: number;
  order: number;
  flags: number;
  domid: number;
}

function readReservation(v: Vcpu, arg: bigint): Reservation | null {
  const b = v.rdStruct(arg, v.domain.bits === 64 ? 32 : 20);
  if (!b) return null;
  if (v.domain.bits === 64) {
    return {
      extentStart: b.getBigUint64(0, true),
      nrExtents: Number(b.getBigUint64(8, true)),
      order: b.getUint32(16, true),
      flags: b.getUint32(20, true),
      domid: b.getUint16(24, true),
    };
  }
  return {
    extentStart: BigInt(b.getUint32(0, true)),
    nrExtents: b.getUint32(4, true),
    order: b.getUint32(8, true),
    flags: b.getUint32(12, true),
    domid: b.getUint16(16, true),
  };
}

/**
 * Runs memory_op (Xen common/memory.c do_memory_op). The reservation ops
 * (increase_reservation, decrease_reservation, populate_physmap) return the
 * number of extents done, and as on Xen return the start extent unchanged for
 * an unreadable argument, a foreign domain, an nr_extents too large to encode
 * a continuation or a start extent past the end; an extent that fails ends
 * the op there (its count is the result). They are preemptible: after
 * HYPERCALL_QUANTUM extents the call becomes the continuation
 * memory_op(cmd | (done << MEMOP_EXTENT_SHIFT), arg) (engine/xen/preempt.ts).
 * @returns extents done, a value, or -errno for the other ops.
 */
export function memoryOp(v: Vcpu, cmdFull: bigint, arg: bigint): number {
  const d = v.domain;
  const cmd = Number(cmdFull & 0x3fn);
  const startBig = BigInt.asUintN(d.bits, cmdFull) >> BigInt(MEMOP_EXTENT_SHIFT);
  const startExtent = Number(startBig);
  const es = d.bits / 8;
  const selfDom = (x: number) => x === DOMID_SELF || x === d.domid;
  switch (cmd) {
    case XENMEM_increase_reservation:
    case XENMEM_decrease_reservation:
    case XENMEM_populate_physmap: {
      const r = readReservation(v, arg);
      if (!r) return startExtent;
      if (r.nrExtents > MEMOP_MAX_EXTENTS) return startExtent;
      if (startExtent >= r.nrExtents) return startExtent;
      // rcu_lock_domain_by_any_id + xsm_memory_adjust_reservation: only the domain itself.
      if (!selfDom(r.domid)) return startExtent;
      // Only 4 KiB extents: PV superpage extents need contiguous machine memory Xen would not guarantee here.
      if (r.order > 0) {
        d.reject(E.ENOMEM, `memory_op: extents of order ${r.order} are not available to this domain`);
        return startExtent;
      }
      let i = startExtent;
      for (; i < r.nrExtents; i++) {
        if (i !== startExtent && hypercallPreemptCheck())
          return createContinuation(12, [BigInt(cmd) | (BigInt(i) << BigInt(MEMOP_EXTENT_SHIFT)), arg]);
        chargeWork();
        const slot = r.extentStart + BigInt(i * es);
        if (cmd === XENMEM_decrease_reservation) {
          const g = v.rd(slot, es);
          if (g === null) break;
          const mfn = Number(g);
          if (d.frameOwner(mfn) !== d.domid) {
            d.reject(E.EINVAL, `Domain ${d.domid} page number ${mfn.toString(16)} invalid`);
            break;
          }
          if (d.mm && d.mm.pageInfo(mfn).type !== 'none' && d.mm.pageInfo(mfn).typeCount > 0) {
            d.reject(
              E.EBUSY,
              `decrease_reservation: mfn ${mfn.toString(16)} is still in use as a ${d.mm.pageInfo(mfn).type} page`,
            );
            break;
          }
          d.setFrameOwner(mfn, -1);
          d.setM2p(mfn, -1);
          // Keep the free list sorted (lowest MFN handed out first) without re-sorting it.
          let at = d.freeGuestMfns.length;
          while (at > 0 && d.freeGuestMfns[at - 1] > mfn) at--;
          d.freeGuestMfns.splice(at, 0, mfn);
          d.nrPages--;
        } else {
          if (d.nrPages >= d.maxPages || d.freeGuestMfns.length === 0) {
            d.reject(
              E.ENOMEM,
              `memory_op: domain ${d.domid} is at its maximum reservation (${d.maxPages} pages)`,
            );
            break;
          }
          let gpfn = 0n;
          if (cmd === XENMEM_populate_physmap) {
            const g = v.rd(slot, es);
            if (g === null) break;
            gpfn = g;
          }
          const mfn = d.freeGuestMfns.shift()!;
          d.setFrameOwner(mfn, d.domid);
          d.mem.fill(d.mem.mfnToOffset(mfn), PAGE_SIZE, 0);
          d.nrPages++;
          if (cmd === XENMEM_populate_physmap) d.setM2p(mfn, Number(gpfn));
          // increase_reservation may pass a NULL extent_start (no MFNs reported back).
          // A failed copy-out ends the op there (Xen: goto out, nr_done = i).
          if ((cmd === XENMEM_populate_physmap || r.extentStart !== 0n) && !v.wr(slot, es, mfn)) break;
        }
      }
      return i;
    }
    case XENMEM_maximum_ram_page:
      return d.m2pEntries - 1;
    case XENMEM_current_reservation:
    case XENMEM_maximum_reservation:
    case XENMEM_maximum_gpfn: {
      const dom = v.rd(arg, 2);
      if (dom === null) return -E.EFAULT;
      if (!selfDom(Number(dom))) return Number(dom) === 0 ? -E.EPERM : -E.ESRCH;
      if (cmd === XENMEM_current_reservation) return d.nrPages;
      if (cmd === XENMEM_maximum_reservation) return d.maxPages;
      return d.maxPages - 1;
    }
    case XENMEM_machphys_mapping: {
      const b = new DataView(new ArrayBuffer(3 * es));
      const maxMfn = d.m2pEntries - 1;
      if (d.bits === 64) {
        b.setBigUint64(0, HYPERVISOR_VIRT_START_64, true);
        b.setBigUint64(8, M2P_VIRT_END_64, true);
        b.setBigUint64(16, BigInt(maxMfn), true);
      } else {
        b.setUint32(0, Number(HYPERVISOR_VIRT_START_32), true);
        b.setUint32(4, Number(M2P_VIRT_END_32), true);
        b.setUint32(8, maxMfn, true);
      }
      return v.wrBytes(arg, new Uint8Array(b.buffer)) ? 0 : -E.EFAULT;
    }
    case XENMEM_machphys_mfn_list: {
      const b = v.rdStruct(arg, d.bits === 64 ? 24 : 12);
      if (!b) return -E.EFAULT;
      const max = b.getUint32(0, true);
      const list = d.bits === 64 ? b.getBigUint64(8, true) : BigInt(b.getUint32(4, true));
      // One entry per 2 MiB (64-bit) / 4 MiB? chunk of the M2P: the MFN of its first frame.
      const chunk = 512;
      let n = 0;
      for (let f = 0; f < d.m2pMfns.length && n < max; f += chunk, n++) {
        if (!v.wr(list + BigInt(n * es), es, d.m2pMfns[f])) return -E.EFAULT;
      }
      return v.wr(arg + (d.bits === 64 ? 16n : 8n), 4, n) ? 0 : -E.EFAULT;
    }
    case XENMEM_memory_map: {
      const b = v.rdStruct(arg, d.bits === 64 ? 16 : 8);
      if (!b) return -E.EFAULT;
      const nr = b.getUint32(0, true);
      const buf = d.bits === 64 ? b.getBigUint64(8, true) : BigInt(b.getUint32(4, true));
      if (nr < 1) return -E.EINVAL;
      // libxl gives a PV domU one E820 RAM entry covering its maximum memory.
      const e = new DataView(new ArrayBuffer(20));
      e.setBigUint64(0, 0n, true);
      e.setBigUint64(8, BigInt(d.maxPages) * 4096n, true);
      e.setUint32(16, 1, true);
      if (!v.wrBytes(buf, new Uint8Array(e.buffer))) return -E.EFAULT;
      return v.wr(arg, 4, 1) ? 0 : -E.EFAULT;
    }
    case XENMEM_machine_memory_map:
    case XENMEM_set_memory_map:
      return -E.EPERM;
    case XENMEM_add_to_physmap:
      // Translated guests only.
      return -E.EINVAL;
    case XENMEM_exchange:
      return -E.ENOSYS;
    default:
      return -E.ENOSYS;
  }
}
