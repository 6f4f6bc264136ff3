/**
 * Grant tables, version 1 (Xen common/grant_table.c, public/grant_table.h):
 * the guest's GNTTABOP_* hypercalls and the backend side (GrantBackendApi)
 * used by engine/dom0 to map/copy the frontend's grants.
 */
import type { Domain, Vcpu } from './domain';
import { DOMID_SELF, type GrantBackendApi } from './types';
import { MAX_GRANT_FRAMES, BACKEND_DOMID } from './layout';
import { PAGE_SIZE } from '../memory/machine-memory';
import * as E from './errno';
import { chargeWork, createContinuation, hypercallPreemptCheck } from './preempt';

import {
  GNTTABOP_map_grant_ref,
  GNTTABOP_unmap_grant_ref,
  GNTTABOP_setup_table,
  GNTTABOP_dump_table,
  GNTTABOP_transfer,
  GNTTABOP_copy,
  GNTTABOP_query_size,
  GNTTABOP_unmap_and_replace,
  GNTTABOP_set_version,
  GNTTABOP_get_status_frames,
  GNTTABOP_get_version,
  GNTTABOP_swap_grant_ref,
  GNTTABOP_cache_flush,
  GTF_invalid,
  GTF_permit_access,
  GTF_accept_transfer,
  GTF_transitive,
  GTF_type_mask,
  GTF_readonly,
  GTF_reading,
  GTF_writing,
  GNTST_okay,
  GNTST_general_error,
  GNTST_bad_domain,
  GNTST_bad_gntref,
  GNTST_bad_handle,
  GNTST_bad_virt_addr,
  GNTST_bad_dev_addr,
  GNTST_no_device_space,
  GNTST_permission_denied,
  GNTST_bad_page,
  GNTST_bad_copy_arg,
  GNTST_address_too_big,
  GNTST_eagain,
  GNTCOPY_source_gref,
  GNTCOPY_dest_gref,
} from './public/grant_table';
// Every constant of the header is re-exported for the modules and tests that import them from here.
export * from './public/grant_table';

const ENTRIES_PER_FRAME = PAGE_SIZE / 8;

/** Names of GTF_* flags for inspection. */
export function grantFlagNames(flags: number): string[] {
  const t = ['invalid', 'permit_access', 'accept_transfer', 'transitive'][flags & 3];
  const r = [t];
  if (flags & GTF_readonly) r.push('readonly');
  if (flags & GTF_reading) r.push('reading');
  if (flags & GTF_writing) r.push('writing');
  if (flags & 0x20) r.push('PWT');
  if (flags & 0x40) r.push('PCD');
  if (flags & 0x80) r.push('PAT');
  if (flags & 0x100) r.push('sub_page');
  return r;
}

interface Mapping {
  handle: number;
  ref: number;
  write: boolean;
  by: string;
}

export class GrantTable implements GrantBackendApi {
  /** MFNs of the grant-table frames (Xen-owned). */
  readonly frames: number[] = [];
  readonly version = 1;
  private readonly maps = new Map<number, Mapping>();
  private nextHandle = 1;
  /** Name recorded for the next backend mappings (e.g. 'blkback xvda'). */
  backendName = 'backend';

  constructor(readonly dom: Domain) {}

  /** Grows the table to `n` frames; false when Xen's pool is exhausted. */
  grow(n: number): boolean {
    while (this.frames.length < n) {
      const mfn = this.dom.allocXenFrame();
      if (mfn < 0) return false;
      this.frames.push(mfn);
    }
    return true;
  }

  get nrEntries(): number {
    return this.frames.length * ENTRIES_PER_FRAME;
  }

  /** Buffer offset of v1 entry `ref`, or -1. */
  entryOff(ref: number): number {
    if (!Number.isInteger(ref) || ref < 0 || ref >= this.nrEntries) return -1;
    const f = Math.floor(ref / ENTRIES_PER_FRAME);
    return this.dom.mem.mfnToOffset(this.frames[f]) + (ref % ENTRIES_PER_FRAME) * 8;
  }

  /** Reads entry `ref`: flags, domid, frame. */
  entry(ref: number): { flags: number; domid: number; frame: number } | null {
    const o = this.entryOff(ref);
    if (o < 0) return null;
    const m = this.dom.mem;
    return { flags: m.read16(o), domid: m.read16(o + 2), frame: m.read32(o + 4) };
  }

  /** Writes entry `ref` (toolstack seeding: console/xenstore grants). */
  seed(ref: number, flags: number, domid: number, frame: number): void {
    const o = this.entryOff(ref);
    if (o < 0) return;
    this.dom.mem.write16(o + 2, domid);
    this.dom.mem.write32(o + 4, frame);
    this.dom.mem.write16(o, flags);
  }

  /** Who maps each ref (inspection). */
  mappedBy(ref: number): string[] {
    const r: string[] = [];
    for (const m of this.maps.values()) if (m.ref === ref) r.push(m.by);
    return r;
  }

  // --- GrantBackendApi (dom0 mapping the guest's grants) ---
  map(frontDomid: number, ref: number, write: boolean): { mfn: number; handle: number } | { error: number } {
    if (frontDomid !== this.dom.domid) return { error: GNTST_bad_domain };
    const e = this.entry(ref);
    if (!e) return { error: GNTST_bad_gntref };
    if ((e.flags & GTF_type_mask) !== GTF_permit_access || e.domid !== BACKEND_DOMID) {
      return { error: GNTST_permission_denied };
    }
    if (write && e.flags & GTF_readonly) return { error: GNTST_permission_denied };
    if (this.dom.frameOwner(e.frame) !== this.dom.domid) return { error: GNTST_bad_page };
    const o = this.entryOff(ref);
    this.dom.mem.write16(o, e.flags | GTF_reading | (write ? GTF_writing : 0));
    const handle = this.nextHandle++;
    this.maps.set(handle, { handle, ref, write, by: this.backendName });
    return { mfn: e.frame, handle };
  }

  unmap(handle: number): void {
    const m = this.maps.get(handle);
    if (!m) return;
    this.maps.delete(handle);
    let reading = false;
    let writing = false;
    for (const x of this.maps.values()) {
      if (x.ref === m.ref) {
        reading = true;
        writing ||= x.write;
      }
    }
    const o = this.entryOff(m.ref);
    if (o < 0) return;
    let f = this.dom.mem.read16(o);
    if (!reading) f &= ~GTF_reading;
    if (!writing) f &= ~GTF_writing;
    this.dom.mem.write16(o, f);
  }

  copy(frontDomid: number, ref: number, offset: number, data: Uint8Array, toGuest: boolean): number {
    if (frontDomid !== this.dom.domid) return GNTST_bad_domain;
    const e = this.entry(ref);
    if (!e) return GNTST_bad_gntref;
    if ((e.flags & GTF_type_mask) !== GTF_permit_access || e.domid !== BACKEND_DOMID)
      return GNTST_permission_denied;
    if (toGuest && e.flags & GTF_readonly) return GNTST_permission_denied;
    if (offset < 0 || offset + data.length > PAGE_SIZE) return GNTST_bad_copy_arg;
    const base = this.dom.mem.mfnToOffset(e.frame);
    if (base < 0 || this.dom.frameOwner(e.frame) !== this.dom.domid) return GNTST_bad_page;
    if (toGuest) this.dom.mem.writeBytes(base + offset, data);
    else data.set(this.dom.mem.u8.subarray(base + offset, base + offset + data.length));
    return GNTST_okay;
  }

  // --- grant_table_op (20) ---
  /**
   * GNTTABOP_* on `count` structs at guest virtual `uop`.
   * @returns 0, or -errno for a bad count / unreadable argument (per-op
   *   failures go into each struct's status field as GNTST_*).
   */
  op(v: Vcpu, cmd: number, uop: bigint, count: number): number {
    const d = this.dom;
    const self = (dom: number) => dom === DOMID_SELF || dom === d.domid;
    const bits = d.bits;
    if (count < 0 || count > 0x7fffffff) return -E.EINVAL;
    switch (cmd) {
      case GNTTABOP_setup_table: {
        if (count !== 1) return -E.EINVAL;
        const sz = bits === 64 ? 24 : 16;
        const b = v.rdStruct(uop, sz);
        if (!b) return -E.EFAULT;
        const dom = b.getUint16(0, true);
        const nr = b.getUint32(4, true);
        const list = bits === 64 ? b.getBigUint64(16, true) : BigInt(b.getUint32(12, true));
        let status = GNTST_okay;
        if (!self(dom)) status = dom === BACKEND_DOMID ? GNTST_permission_denied : GNTST_bad_domain;
        else if (nr > MAX_GRANT_FRAMES) {
          d.reject(
            E.EINVAL,
            `Xen only supports up to ${MAX_GRANT_FRAMES} grant-table frames per domain (asked ${nr})`,
          );
          status = GNTST_general_error;
        } else if (!this.grow(nr)) status = GNTST_general_error;
        else {
          const es = v.ulong;
          for (let i = 0; i < nr; i++) {
            if (!v.wr(list + BigInt(i * es), es, this.frames[i])) {
              status = GNTST_bad_virt_addr;
              break;
            }
          }
        }
        if (!v.wr(uop + 8n, 2, status & 0xffff)) return -E.EFAULT;
        return 0;
      }
      case GNTTABOP_query_size: {
        if (count !== 1) return -E.EINVAL;
        const b = v.rdStruct(uop, 16);
        if (!b) return -E.EFAULT;
        const dom = b.getUint16(0, true);
        const out = new DataView(new ArrayBuffer(10));
        if (self(dom)) {
          out.setUint32(0, this.frames.length, true);
          out.setUint32(4, MAX_GRANT_FRAMES, true);
          out.setInt16(8, GNTST_okay, true);
        } else out.setInt16(8, dom === BACKEND_DOMID ? GNTST_permission_denied : GNTST_bad_domain, true);
        if (!v.wrBytes(uop + 4n, new Uint8Array(out.buffer))) return -E.EFAULT;
        return 0;
      }
      case GNTTABOP_set_version: {
        if (count !== 1) return -E.EINVAL;
        const ver = v.rd(uop, 4);
        if (ver === null) return -E.EFAULT;
        let rc = 0;
        if (ver === 2n) rc = d.reject(E.EACCES, 'grant table version 2 is disabled (gnttab max version 1)');
        else if (ver !== 1n) rc = -E.EINVAL;
        if (!v.wr(uop, 4, 1)) return -E.EFAULT;
        return rc;
      }
      case GNTTABOP_get_version: {
        if (count !== 1) return -E.EINVAL;
        const dom = v.rd(uop, 2);
        if (dom === null) return -E.EFAULT;
        if (!self(Number(dom))) return Number(dom) === BACKEND_DOMID ? -E.EPERM : -E.ESRCH;
        if (!v.wr(uop + 4n, 4, 1)) return -E.EFAULT;
        return 0;
      }
      case GNTTABOP_get_status_frames: {
        if (count !== 1) return -E.EINVAL;
        const b = v.rdStruct(uop, 8);
        if (!b) return -E.EFAULT;
        // Only meaningful for version 2 tables.
        if (!v.wr(uop + 6n, 2, GNTST_general_error & 0xffff)) return -E.EFAULT;
        return -E.EINVAL;
      }
      case GNTTABOP_dump_table: {
        if (count !== 1) return -E.EINVAL;
        const dom = v.rd(uop, 2);
        if (dom === null) return -E.EFAULT;
        const st = self(Number(dom)) ? GNTST_okay : GNTST_bad_domain;
        if (!v.wr(uop + 2n, 2, st & 0xffff)) return -E.EFAULT;
        return 0;
      }
      case GNTTABOP_copy:
        return this.copyOps(v, uop, count);
      case GNTTABOP_map_grant_ref: {
        for (let i = 0; i < count; i++) {
          const a = uop + BigInt(i * 32);
          if (i && hypercallPreemptCheck()) return this.continuation(v, cmd, a, count - i);
          chargeWork();
          const b = v.rdStruct(a, 32);
          if (!b) return -E.EFAULT;
          const ref = b.getUint32(12, true);
          const dom = b.getUint16(16, true);
          let st: number;
          if (!self(dom)) st = GNTST_bad_domain;
          else {
            const e = this.entry(ref);
            if (!e) st = GNTST_bad_gntref;
            else if ((e.flags & GTF_type_mask) !== GTF_permit_access || e.domid !== d.domid)
              st = GNTST_permission_denied;
            else {
              d.reject(
                E.EINVAL,
                `grant self-mapping of ref ${ref} is not supported by this hypervisor model`,
              );
              st = GNTST_general_error;
            }
          }
          if (!v.wr(a + 18n, 2, st & 0xffff)) return -E.EFAULT;
        }
        return 0;
      }
      case GNTTABOP_unmap_grant_ref: {
        for (let i = 0; i < count; i++) {
          const a = uop + BigInt(i * 24);
          if (i && hypercallPreemptCheck()) return this.continuation(v, cmd, a, count - i);
          chargeWork();
          const b = v.rdStruct(a, 24);
          if (!b) return -E.EFAULT;
          if (!v.wr(a + 20n, 2, GNTST_bad_handle & 0xffff)) return -E.EFAULT;
        }
        return 0;
      }
      case GNTTABOP_transfer:
      case GNTTABOP_unmap_and_replace:
      case GNTTABOP_swap_grant_ref:
      case GNTTABOP_cache_flush:
        return -E.ENOSYS;
      default:
        return -E.ENOSYS;
    }
  }

  /**
   * The continuation of a preempted batch (Xen do_grant_table_op:
   * hypercall_create_continuation(grant_table_op, "ihi", cmd, uop + done, count - done)).
   */
  private continuation(v: Vcpu, cmd: number, uop: bigint, left: number): number {
    const va = v.domain.bits === 64 ? BigInt.asUintN(64, uop) : uop & 0xffffffffn;
    return createContinuation(20, [BigInt(cmd), va, BigInt(left)]);
  }

  /** Reads one side of a gnttab_copy and resolves it to a buffer offset, or a GNTST error. */
  private resolveCopy(
    v: Vcpu,
    isGref: boolean,
    ref: bigint,
    domid: number,
    off: number,
    len: number,
    write: boolean,
  ): number {
    const d = this.dom;
    if (domid !== DOMID_SELF && domid !== d.domid)
      return domid === BACKEND_DOMID ? GNTST_permission_denied : GNTST_bad_domain;
    if (off + len > PAGE_SIZE) return GNTST_bad_copy_arg;
    let mfn: number;
    if (isGref) {
      const e = this.entry(Number(ref));
      if (!e || ref > 0xffffffffn) return GNTST_bad_gntref;
      if ((e.flags & GTF_type_mask) !== GTF_permit_access || e.domid !== d.domid)
        return GNTST_permission_denied;
      if (write && e.flags & GTF_readonly) return GNTST_permission_denied;
      mfn = e.frame;
    } else {
      if (ref > 0xffffffffn) return GNTST_bad_page;
      mfn = Number(ref);
    }
    if (d.frameOwner(mfn) !== d.domid) return GNTST_bad_page;
    return d.mem.mfnToOffset(mfn) + off;
  }

  private copyOps(v: Vcpu, uop: bigint, count: number): number {
    const d = this.dom;
    const sz = d.bits === 64 ? 40 : 24;
    for (let i = 0; i < count; i++) {
      const a = uop + BigInt(i * sz);
      if (i && hypercallPreemptCheck()) return this.continuation(v, GNTTABOP_copy, a, count - i);
      chargeWork();
      const b = v.rdStruct(a, sz);
      if (!b) return -E.EFAULT;
      let srcRef: bigint, srcDom: number, srcOff: number, dstRef: bigint, dstDom: number, dstOff: number;
      let len: number, flags: number, stOff: number;
      if (d.bits === 64) {
        srcRef = b.getBigUint64(0, true);
        srcDom = b.getUint16(8, true);
        srcOff = b.getUint16(10, true);
        dstRef = b.getBigUint64(16, true);
        dstDom = b.getUint16(24, true);
        dstOff = b.getUint16(26, true);
        len = b.getUint16(32, true);
        flags = b.getUint16(34, true);
        stOff = 36;
      } else {
        srcRef = BigInt(b.getUint32(0, true));
        srcDom = b.getUint16(4, true);
        srcOff = b.getUint16(6, true);
        dstRef = BigInt(b.getUint32(8, true));
        dstDom = b.getUint16(12, true);
        dstOff = b.getUint16(14, true);
        len = b.getUint16(16, true);
        flags = b.getUint16(18, true);
        stOff = 20;
      }
      if (flags & GNTCOPY_source_gref) srcRef &= 0xffffffffn;
      if (flags & GNTCOPY_dest_gref) dstRef &= 0xffffffffn;
      let st = GNTST_okay;
      if (flags & ~3) st = GNTST_bad_copy_arg;
      const s = st === 0 ? this.resolveCopy(v, !!(flags & 1), srcRef, srcDom, srcOff, len, false) : st;
      const t = s >= 0 ? this.resolveCopy(v, !!(flags & 2), dstRef, dstDom, dstOff, len, true) : s;
      if (s < 0) st = s;
      else if (t < 0) st = t;
      else d.mem.writeBytes(t, d.mem.u8.slice(s, s + len));
      if (!v.wr(a + BigInt(stOff), 2, st & 0xffff)) return -E.EFAULT;
    }
    return 0;
  }
}
