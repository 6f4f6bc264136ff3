/**
 * sched_op (29), sched_op_compat (6), set_timer_op (15): Xen
 * common/sched/core.c do_sched_op / do_set_timer_op, as a domU sees them.
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { DOMID_SELF } from './types';

export const SCHEDOP_yield = 0;
export const SCHEDOP_block = 1;
export const SCHEDOP_shutdown = 2;
export const SCHEDOP_poll = 3;
export const SCHEDOP_remote_shutdown = 4;
export const SCHEDOP_shutdown_code = 5;
export const SCHEDOP_watchdog = 6;
export const SCHEDOP_pin_override = 7;

export const SHUTDOWN_NAMES = ['poweroff', 'reboot', 'suspend', 'crash', 'watchdog', 'soft_reset'] as const;

/** Called by sched ops to let the machine's loop react (yield kicks backends). */
export interface SchedHooks {
  onYield?(v: Vcpu): void;
}
export const schedHooks: WeakMap<object, SchedHooks> = new WeakMap();

function shutdown(v: Vcpu, reason: number): number {
  const d = v.domain;
  if (reason > 5) return -E.EINVAL;
  if (reason === 3) {
    d.crash('the guest requested SHUTDOWN_crash');
    return 0;
  }
  if (reason === 2) {
    // Suspend: no toolstack to save the domain; Xen returns 1 (cancelled) after resume.
    return 1;
  }
  if (reason === 4 || reason === 5) {
    d.shutdownReason = reason;
    return 0;
  }
  d.shutdownReason = reason;
  return 0;
}

/** Blocks the vCPU unless an event is pending (SCHEDOP_block clears the upcall mask first). */
export function block(v: Vcpu): number {
  v.upcallMask = 0;
  if (!v.upcallPending) v.blocked = true;
  return 0;
}

export function schedOp(v: Vcpu, cmd: number, arg: bigint): number {
  const d = v.domain;
  switch (cmd) {
    case SCHEDOP_yield:
      schedHooks.get(d)?.onYield?.(v);
      return 0;
    case SCHEDOP_block:
      return block(v);
    case SCHEDOP_shutdown: {
      const r = v.rd(arg, 4);
      if (r === null) return -E.EFAULT;
      return shutdown(v, Number(r));
    }
    case SCHEDOP_shutdown_code: {
      const r = v.rd(arg, 4);
      if (r === null) return -E.EFAULT;
      if (Number(r) > 5) return -E.EINVAL;
      d.shutdownCode = Number(r);
      return 0;
    }
    case SCHEDOP_poll: {
      const sz = d.bits === 64 ? 24 : 16;
      const b = v.rdStruct(arg, sz);
      if (!b) return -E.EFAULT;
      const ptr = d.bits === 64 ? b.getBigUint64(0, true) : BigInt(b.getUint32(0, true));
      const n = d.bits === 64 ? b.getUint32(8, true) : b.getUint32(4, true);
      const timeout = Number(d.bits === 64 ? b.getBigUint64(16, true) : b.getBigUint64(8, true));
      if (n > 128) return -E.EINVAL;
      // Xen: polling requires the upcall mask to be set (events disabled).
      if (!v.upcallMask) return -E.EINVAL;
      const ports: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = v.rd(ptr + BigInt(i * 4), 4);
        if (p === null) return -E.EFAULT;
        const port = Number(p);
        if (!d.evtchn.valid(port)) return -E.EINVAL;
        if (d.evtchn.isPending(port)) return 0;
        ports.push(port);
      }
      if (timeout !== 0 && timeout < v.nowNs()) return 0;
      v.pollPorts = ports;
      v.pollTimeoutNs = timeout;
      v.blocked = true;
      return 0;
    }
    case SCHEDOP_remote_shutdown: {
      const b = v.rdStruct(arg, 8);
      if (!b) return -E.EFAULT;
      const dom = b.getUint16(0, true);
      if (dom === DOMID_SELF || dom === d.domid) return -E.EPERM;
      return -E.ESRCH;
    }
    case SCHEDOP_watchdog:
      return -E.EPERM;
    case SCHEDOP_pin_override:
      return -E.EPERM;
    default:
      return -E.ENOSYS;
  }
}

/** sched_op_compat (6): cmd with the shutdown reason passed by value. */
export function schedOpCompat(v: Vcpu, cmd: number, arg: bigint): number {
  switch (cmd) {
    case SCHEDOP_yield:
      schedHooks.get(v.domain)?.onYield?.(v);
      return 0;
    case SCHEDOP_block:
      return block(v);
    case SCHEDOP_shutdown:
      return shutdown(v, Number(arg & 0xffffffffn));
    default:
      return -E.ENOSYS;
  }
}

/** set_timer_op (15): single-shot timer at absolute system time `ns` (0 cancels). */
export function setTimerOp(v: Vcpu, ns: bigint): number {
  if (ns === 0n) {
    v.singleshotNs = 0;
    return 0;
  }
  let t = Number(BigInt.asIntN(64, ns));
  const now = v.nowNs();
  // Xen: negative or absurdly far timeouts become now + 100 ms (sched/core.c).
  if (t < 0 || t - now > 2 ** 50) t = now + 100_000_000;
  v.singleshotNs = Math.max(t, 1);
  return 0;
}
