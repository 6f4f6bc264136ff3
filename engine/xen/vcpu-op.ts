/**
 * vcpu_op (24): Xen common/domain.c do_vcpu_op + arch/x86/domain.c
 * arch_do_vcpu_op, for a PV domU.
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { PAGE_SIZE } from '../memory/machine-memory';

export const VCPUOP_initialise = 0;
export const VCPUOP_up = 1;
export const VCPUOP_down = 2;
export const VCPUOP_is_up = 3;
export const VCPUOP_get_runstate_info = 4;
export const VCPUOP_register_runstate_memory_area = 5;
export const VCPUOP_set_periodic_timer = 6;
export const VCPUOP_stop_periodic_timer = 7;
export const VCPUOP_set_singleshot_timer = 8;
export const VCPUOP_stop_singleshot_timer = 9;
export const VCPUOP_register_vcpu_info = 10;
export const VCPUOP_send_nmi = 11;
export const VCPUOP_get_physid = 12;
export const VCPUOP_register_vcpu_time_memory_area = 13;

/** Initialises a vCPU from a vcpu_guest_context (set by machine code; see builder.initVcpuFromContext). */
export const vcpuInitHook: { init?: (target: Vcpu, ctx: DataView) => number } = {};

/** Writes vcpu_runstate_info (state, entry time, time[4]) into `buf`. */
export function runstateBytes(v: Vcpu): Uint8Array {
  const bits = v.domain.bits;
  const b = new DataView(new ArrayBuffer(bits === 64 ? 48 : 44));
  const now = v.nowNs();
  const times = [...v.runstateTime];
  times[v.runstate] += now - v.runstateEntryNs;
  b.setUint32(0, v.runstate, true);
  const base = bits === 64 ? 8 : 4;
  b.setBigUint64(base, BigInt(v.runstateEntryNs), true);
  for (let i = 0; i < 4; i++) b.setBigUint64(base + 8 + i * 8, BigInt(Math.max(0, times[i])), true);
  return new Uint8Array(b.buffer);
}

/** Changes the runstate of `v` and updates its registered runstate area. */
export function setRunstate(v: Vcpu, state: number): void {
  if (v.runstate === state) return;
  const now = v.nowNs();
  v.runstateTime[v.runstate] += now - v.runstateEntryNs;
  v.runstate = state;
  v.runstateEntryNs = now;
  updateRunstateArea(v);
}
export function updateRunstateArea(v: Vcpu): void {
  if (v.runstateArea !== 0n) v.wrBytes(v.runstateArea, runstateBytes(v));
}

export function vcpuOp(v: Vcpu, cmd: number, vcpuid: number, arg: bigint): number {
  const d = v.domain;
  const t = d.vcpus[vcpuid];
  if (!t) return -E.ENOENT;
  switch (cmd) {
    case VCPUOP_initialise: {
      if (t.online || t.kernelRootMfn !== 0) return -E.EEXIST;
      const size = d.bits === 64 ? 5168 : 2800;
      const ctx = v.rdStruct(arg, size);
      if (!ctx) return -E.EFAULT;
      return vcpuInitHook.init ? vcpuInitHook.init(t, ctx) : -E.ENOSYS;
    }
    case VCPUOP_up:
      if (t.kernelRootMfn === 0) return -E.EINVAL;
      t.online = true;
      setRunstate(t, 1);
      return 0;
    case VCPUOP_down:
      t.online = false;
      setRunstate(t, 3);
      return 0;
    case VCPUOP_is_up:
      return t.online ? 1 : 0;
    case VCPUOP_get_runstate_info:
      return v.wrBytes(arg, runstateBytes(t)) ? 0 : -E.EFAULT;
    case VCPUOP_register_runstate_memory_area: {
      if (t !== v && t.online) return -E.EINVAL;
      const p = v.rd(arg, d.bits / 8);
      if (p === null) return -E.EFAULT;
      t.runstateArea = p;
      if (p !== 0n) updateRunstateArea(t);
      return 0;
    }
    case VCPUOP_register_vcpu_time_memory_area: {
      const p = v.rd(arg, d.bits / 8);
      if (p === null) return -E.EFAULT;
      t.timeArea = p;
      if (t === v) d.time.updateVcpuTime(t);
      return 0;
    }
    case VCPUOP_set_periodic_timer: {
      const p = v.rd(arg, 8);
      if (p === null) return -E.EFAULT;
      // Xen: periods under 1 ms are refused; values >= 2^63 too.
      if (p < 1_000_000n || p >> 63n) return -E.EINVAL;
      t.periodicNs = Number(p);
      t.nextPeriodicNs = t.nowNs() + t.periodicNs;
      return 0;
    }
    case VCPUOP_stop_periodic_timer:
      t.periodicNs = 0;
      return 0;
    case VCPUOP_set_singleshot_timer: {
      if (t !== v) return -E.EINVAL;
      const b = v.rdStruct(arg, d.bits === 64 ? 16 : 12);
      if (!b) return -E.EFAULT;
      const ns = Number(b.getBigUint64(0, true));
      const flags = b.getUint32(8, true);
      if (flags & 1 && ns < v.nowNs()) return -E.ETIME;
      t.singleshotNs = Math.max(ns, 1);
      return 0;
    }
    case VCPUOP_stop_singleshot_timer:
      if (t !== v) return -E.EINVAL;
      t.singleshotNs = 0;
      return 0;
    case VCPUOP_register_vcpu_info: {
      const b = v.rdStruct(arg, 16);
      if (!b) return -E.EFAULT;
      const mfn = Number(b.getBigUint64(0, true));
      const off = b.getUint32(8, true);
      if (b.getUint32(12, true) !== 0) return -E.EINVAL;
      if (off > PAGE_SIZE - 64 || off & 7) return -E.EINVAL;
      if (t.vcpuInfoRegistered) return -E.EINVAL;
      if (d.frameOwner(mfn) !== d.domid) return -E.EINVAL;
      // Copy the current contents, then point Xen at the new location.
      const oldOff = t.vcpuInfoOff();
      const newBase = d.mem.mfnToOffset(mfn) + off;
      const old = d.mem.readBytes(oldOff, 64);
      d.mem.writeBytes(newBase, old);
      // The old copy keeps upcall_mask set and pending 1 (Xen marks all pending in the new one).
      t.vcpuInfoMfn = mfn;
      t.vcpuInfoOffset = off;
      t.vcpuInfoRegistered = true;
      t.upcallPending = 1;
      const sel = newBase + (d.bits === 64 ? 8 : 4);
      if (d.bits === 64) d.mem.write64(sel, -1, -1);
      else d.mem.write32(sel, 0xffffffff);
      d.time.updateVcpuTime(t);
      return 0;
    }
    case VCPUOP_send_nmi:
      return 0;
    case VCPUOP_get_physid:
      return -E.EINVAL;
    default:
      return -E.ENOSYS;
  }
}
