/**
 * Event channels, 2-level ABI (Xen common/event_channel.c, event_2l.c;
 * public/event_channel.h), the guest's EVTCHNOP_* hypercalls and dom0's
 * end for the backends (EvtchnBackendApi).
 */
import type { Domain, Vcpu } from './domain';
import { DOMID_SELF, type EvtchnBackendApi } from './types';
import { BACKEND_DOMID } from './layout';
import * as E from './errno';
import { chargeWork } from './preempt';

export const ECS_FREE = 0;
export const ECS_UNBOUND = 1;
export const ECS_INTERDOMAIN = 2;
export const ECS_PIRQ = 3;
export const ECS_VIRQ = 4;
export const ECS_IPI = 5;

import {
  EVTCHNOP_bind_interdomain,
  EVTCHNOP_bind_virq,
  EVTCHNOP_bind_pirq,
  EVTCHNOP_close,
  EVTCHNOP_send,
  EVTCHNOP_status,
  EVTCHNOP_alloc_unbound,
  EVTCHNOP_bind_ipi,
  EVTCHNOP_bind_vcpu,
  EVTCHNOP_unmask,
  EVTCHNOP_reset,
  EVTCHNOP_init_control,
  EVTCHNOP_expand_array,
  EVTCHNOP_set_priority,
} from './public/event_channel';
// Every constant of the header is re-exported for the modules and tests that import them from here.
export * from './public/event_channel';

export const NR_VIRQS = 24;
export const VIRQ_NAMES = [
  'VIRQ_TIMER',
  'VIRQ_DEBUG',
  'VIRQ_CONSOLE',
  'VIRQ_DOM_EXC',
  'VIRQ_TBUF',
  'VIRQ_5',
  'VIRQ_DEBUGGER',
  'VIRQ_XENOPROF',
  'VIRQ_CON_RING',
  'VIRQ_PCPU_STATE',
  'VIRQ_MEM_EVENT',
  'VIRQ_ARGO',
  'VIRQ_ENOMEM',
  'VIRQ_XENPMU',
  'VIRQ_14',
  'VIRQ_15',
  'VIRQ_ARCH_0',
  'VIRQ_ARCH_1',
  'VIRQ_ARCH_2',
  'VIRQ_ARCH_3',
  'VIRQ_ARCH_4',
  'VIRQ_ARCH_5',
  'VIRQ_ARCH_6',
  'VIRQ_ARCH_7',
];
/** Per-vCPU VIRQs (Xen's virq_is_global() false): TIMER, DEBUG, XENOPROF, XENPMU. */
export function virqIsPerVcpu(virq: number): boolean {
  return virq === 0 || virq === 1 || virq === 7 || virq === 13;
}

/** One port of the domain. */
export interface Port {
  state: number;
  vcpu: number;
  remoteDom: number;
  remotePort: number;
  virq: number;
  pirq: number;
  sends: number;
  upcalls: number;
  /** The engine-side peer (xenstored, console, blkback...) for an interdomain port toward dom0. */
  backend: string | null;
  onNotify: (() => void) | null;
}

export class EventChannels implements EvtchnBackendApi {
  readonly ports: Port[] = [];
  readonly maxPorts: number;
  /** Synthetic dom0-side port numbers handed to backends. */
  private nextBackendPort = 1;

  constructor(readonly dom: Domain) {
    this.maxPorts = dom.bits === 64 ? 4096 : 1024;
    // Port 0 is reserved (never allocated).
    this.ports.push(this.newPort());
    this.ports[0].state = -1;
  }

  private newPort(): Port {
    return {
      state: ECS_FREE,
      vcpu: 0,
      remoteDom: 0,
      remotePort: 0,
      virq: -1,
      pirq: -1,
      sends: 0,
      upcalls: 0,
      backend: null,
      onNotify: null,
    };
  }

  /** True when `port` names an allocated slot (Xen's evtchn_port_is_valid). */
  valid(port: number): boolean {
    return Number.isInteger(port) && port > 0 && port < this.ports.length;
  }

  /** Lowest free port (allocating a new slot when needed), or -ENOSPC. */
  allocPort(): number {
    for (let p = 1; p < this.ports.length; p++) if (this.ports[p].state === ECS_FREE) return p;
    if (this.ports.length >= this.maxPorts) return -E.ENOSPC;
    this.ports.push(this.newPort());
    return this.ports.length - 1;
  }

  /** Creates an unbound port toward `remoteDom` (toolstack use at build: xenstore, console). */
  allocUnbound(remoteDom: number): number {
    const p = this.allocPort();
    if (p < 0) return p;
    const s = this.ports[p];
    s.state = ECS_UNBOUND;
    s.remoteDom = remoteDom;
    s.vcpu = 0;
    return p;
  }

  // --- 2-level bit helpers (byte-addressed: bit p of the array is bit p&7 of byte p>>3) ---
  private pendOff(): number {
    return this.dom.sharedInfoOff() + 0x800;
  }
  private maskOff(): number {
    return this.dom.sharedInfoOff() + (this.dom.bits === 64 ? 0xa00 : 0x880);
  }
  private testBit(off: number, bit: number): boolean {
    return ((this.dom.mem.read8(off + (bit >> 3)) >> (bit & 7)) & 1) === 1;
  }
  /** Sets a bit; returns its previous value. */
  private testAndSet(off: number, bit: number): boolean {
    const b = this.dom.mem.read8(off + (bit >> 3));
    const m = 1 << (bit & 7);
    if (b & m) return true;
    this.dom.mem.write8(off + (bit >> 3), b | m);
    return false;
  }
  private testAndClear(off: number, bit: number): boolean {
    const b = this.dom.mem.read8(off + (bit >> 3));
    const m = 1 << (bit & 7);
    if (!(b & m)) return false;
    this.dom.mem.write8(off + (bit >> 3), b & ~m);
    return true;
  }
  isPending(port: number): boolean {
    return this.testBit(this.pendOff(), port);
  }
  isMasked(port: number): boolean {
    return this.testBit(this.maskOff(), port);
  }

  /** Marks the selector bit and upcall_pending on the port's vCPU (Xen evtchn_2l_set_pending tail). */
  private notifyVcpu(port: number): void {
    const s = this.ports[port];
    const v = this.dom.vcpus[s.vcpu] ?? this.dom.vcpus[0];
    const vo = v.vcpuInfoOff();
    if (vo < 0) return;
    const word = Math.floor(port / this.dom.bits);
    const selOff = vo + (this.dom.bits === 64 ? 8 : 4);
    if (!this.testAndSet(selOff, word)) {
      v.upcallPending = 1;
      this.wake(v);
    }
  }

  /**
   * vcpu_mark_events_pending -> vcpu_kick -> vcpu_unblock (Xen common/sched/core.c):
   * a new upcall wakes the vCPU whether it blocked or polls (a poller leaves
   * SCHEDOP_poll; Linux rechecks its ports).
   */
  private wake(v: Vcpu): void {
    if (!v.blocked) return;
    v.blocked = false;
    v.pollPorts = null;
    v.pollTimeoutNs = 0;
  }

  /**
   * Whether raising `port` now would wake the vCPU it is bound to: it is in
   * that vCPU's SCHEDOP_poll set, or it is not yet pending, not masked, and
   * its selector bit is clear so that the raise sets upcall_pending (the
   * same steps as raise()). Cold path: the run loop asks when every vCPU
   * sleeps, to find a blocked domain nothing can wake.
   */
  wouldWake(port: number): boolean {
    if (!this.valid(port)) return false;
    const s = this.ports[port];
    if (s.state === ECS_FREE) return false;
    const v = this.dom.vcpus[s.vcpu] ?? this.dom.vcpus[0];
    if (!v || !v.online) return false;
    if (v.pollPorts && v.pollPorts.includes(port)) return true;
    if (this.isPending(port) || this.isMasked(port)) return false;
    const vo = v.vcpuInfoOff();
    if (vo < 0) return false;
    const word = Math.floor(port / this.dom.bits);
    return !this.testBit(vo + (this.dom.bits === 64 ? 8 : 4), word);
  }

  /** Raises `port` (Xen evtchn_2l_set_pending). Also wakes pollers of the port. */
  raise(port: number): void {
    if (!this.valid(port)) return;
    const s = this.ports[port];
    const v = this.dom.vcpus[s.vcpu] ?? this.dom.vcpus[0];
    if (v.pollPorts && v.pollPorts.includes(port)) {
      v.pollPorts = null;
      v.blocked = false;
    }
    if (this.testAndSet(this.pendOff(), port)) return;
    if (!this.isMasked(port)) this.notifyVcpu(port);
  }

  /** Raises the port bound to `virq` on `v` (no-op when unbound). */
  sendVirq(v: Vcpu, virq: number): void {
    const port = v.virqPorts[virq];
    if (port > 0) this.raise(port);
  }

  // --- EvtchnBackendApi ---
  bindInterdomain(
    frontDomid: number,
    frontPort: number,
    onNotify: () => void,
  ): { notify(): void; close(): void } | { error: number } {
    if (frontDomid !== this.dom.domid) return { error: -E.ESRCH };
    if (!this.valid(frontPort)) return { error: -E.EINVAL };
    const s = this.ports[frontPort];
    if (s.state !== ECS_UNBOUND || s.remoteDom !== BACKEND_DOMID) return { error: -E.EINVAL };
    return this.connectBackend(frontPort, 'backend', onNotify);
  }

  /** Binds an unbound port toward dom0 to an engine backend named `name`. */
  connectBackend(port: number, name: string, onNotify: () => void): { notify(): void; close(): void } {
    const s = this.ports[port];
    s.state = ECS_INTERDOMAIN;
    s.remoteDom = BACKEND_DOMID;
    s.remotePort = this.nextBackendPort++;
    s.onNotify = onNotify;
    s.backend = name;
    let open = true;
    return {
      notify: () => {
        if (open && s.state === ECS_INTERDOMAIN && s.onNotify === onNotify) this.raise(port);
      },
      close: () => {
        if (!open) return;
        open = false;
        if (s.state === ECS_INTERDOMAIN && s.onNotify === onNotify) {
          s.state = ECS_UNBOUND;
          s.onNotify = null;
          s.backend = null;
          s.remotePort = 0;
        }
      },
    };
  }

  /** Sets the display name of the backend on `port`. */
  nameBackend(port: number, name: string): void {
    if (this.valid(port)) this.ports[port].backend = name;
  }

  // --- Hypercall (event_channel_op, 32) ---
  /**
   * EVTCHNOP_* with the argument struct at guest virtual `arg`.
   * @returns 0 or -errno (Xen common/event_channel.c do_event_channel_op).
   */
  op(v: Vcpu, cmd: number, arg: bigint): number {
    const d = this.dom;
    switch (cmd) {
      case EVTCHNOP_alloc_unbound: {
        const b = v.rdStruct(arg, 8);
        if (!b) return -E.EFAULT;
        const dom = b.getUint16(0, true);
        let remote = b.getUint16(2, true);
        if (dom !== DOMID_SELF && dom !== d.domid) return -E.EPERM;
        if (remote === DOMID_SELF) remote = d.domid;
        if (remote !== d.domid && remote !== BACKEND_DOMID) return -E.ESRCH;
        const p = this.allocUnbound(remote);
        if (p < 0) return p;
        if (!v.wr(arg + 4n, 4, p)) {
          this.closePort(p);
          return -E.EFAULT;
        }
        return 0;
      }
      case EVTCHNOP_bind_interdomain: {
        const b = v.rdStruct(arg, 12);
        if (!b) return -E.EFAULT;
        let rdom = b.getUint16(0, true);
        const rport = b.getUint32(4, true);
        if (rdom === DOMID_SELF) rdom = d.domid;
        if (rdom !== d.domid) {
          // dom0 has no unbound ports offered to this domain inside the engine.
          return rdom === BACKEND_DOMID ? -E.EINVAL : -E.ESRCH;
        }
        if (!this.valid(rport)) return -E.EINVAL;
        const r = this.ports[rport];
        if (r.state !== ECS_UNBOUND || r.remoteDom !== d.domid) return -E.EINVAL;
        const lp = this.allocPort();
        if (lp < 0) return lp;
        const l = this.ports[lp];
        l.state = ECS_INTERDOMAIN;
        l.remoteDom = d.domid;
        l.remotePort = rport;
        l.vcpu = 0;
        r.state = ECS_INTERDOMAIN;
        r.remotePort = lp;
        if (!v.wr(arg + 8n, 4, lp)) return -E.EFAULT;
        // Xen raises the local port once bound so no notification is lost.
        this.raise(lp);
        return 0;
      }
      case EVTCHNOP_bind_virq: {
        const b = v.rdStruct(arg, 12);
        if (!b) return -E.EFAULT;
        const virq = b.getUint32(0, true);
        const vcpu = b.getUint32(4, true);
        if (virq >= NR_VIRQS) return -E.EINVAL;
        if (!virqIsPerVcpu(virq) && vcpu !== 0) return -E.EINVAL;
        const tv = d.vcpus[vcpu];
        if (!tv) return -E.ENOENT;
        if (tv.virqPorts[virq] !== 0) return -E.EEXIST;
        const p = this.allocPort();
        if (p < 0) return p;
        const s = this.ports[p];
        s.state = ECS_VIRQ;
        s.virq = virq;
        s.vcpu = vcpu;
        tv.virqPorts[virq] = p;
        if (!v.wr(arg + 8n, 4, p)) return -E.EFAULT;
        return 0;
      }
      case EVTCHNOP_bind_ipi: {
        const b = v.rdStruct(arg, 8);
        if (!b) return -E.EFAULT;
        const vcpu = b.getUint32(0, true);
        if (!d.vcpus[vcpu]) return -E.ENOENT;
        const p = this.allocPort();
        if (p < 0) return p;
        const s = this.ports[p];
        s.state = ECS_IPI;
        s.vcpu = vcpu;
        if (!v.wr(arg + 4n, 4, p)) return -E.EFAULT;
        return 0;
      }
      case EVTCHNOP_bind_pirq: {
        const b = v.rdStruct(arg, 12);
        if (!b) return -E.EFAULT;
        const pirq = b.getInt32(0, true);
        if (pirq < 0 || pirq >= 256) return -E.EINVAL;
        // A domU has no physical IRQ access (xen common/event_channel.c: pirq_access_permitted).
        return -E.EPERM;
      }
      case EVTCHNOP_close: {
        const port = v.rd(arg, 4);
        if (port === null) return -E.EFAULT;
        return this.closePort(Number(port));
      }
      case EVTCHNOP_send: {
        const port = v.rd(arg, 4);
        if (port === null) return -E.EFAULT;
        return this.send(v, Number(port));
      }
      case EVTCHNOP_status: {
        const b = v.rdStruct(arg, 24);
        if (!b) return -E.EFAULT;
        const dom = b.getUint16(0, true);
        const port = b.getUint32(4, true);
        if (dom !== DOMID_SELF && dom !== d.domid) return -E.EPERM;
        if (!this.valid(port)) return -E.EINVAL;
        const s = this.ports[port];
        const out = new DataView(new ArrayBuffer(16));
        out.setUint32(0, s.state, true);
        out.setUint32(4, s.vcpu, true);
        if (s.state === ECS_UNBOUND)
          out.setUint16(8, s.remoteDom === d.domid ? DOMID_SELF : s.remoteDom, true);
        else if (s.state === ECS_INTERDOMAIN) {
          out.setUint16(8, s.remoteDom, true);
          out.setUint32(12, s.remotePort, true);
        } else if (s.state === ECS_PIRQ) out.setUint32(8, s.pirq, true);
        else if (s.state === ECS_VIRQ) out.setUint32(8, s.virq, true);
        if (!v.wrBytes(arg + 8n, new Uint8Array(out.buffer))) return -E.EFAULT;
        return 0;
      }
      case EVTCHNOP_bind_vcpu: {
        const b = v.rdStruct(arg, 8);
        if (!b) return -E.EFAULT;
        const port = b.getUint32(0, true);
        const vcpu = b.getUint32(4, true);
        if (!d.vcpus[vcpu] || !d.vcpus[vcpu].online) return -E.ENOENT;
        if (!this.valid(port)) return -E.EINVAL;
        const s = this.ports[port];
        if (s.state === ECS_VIRQ) {
          if (virqIsPerVcpu(s.virq)) return -E.EINVAL;
        } else if (s.state !== ECS_UNBOUND && s.state !== ECS_INTERDOMAIN && s.state !== ECS_PIRQ)
          return -E.EINVAL;
        s.vcpu = vcpu;
        return 0;
      }
      case EVTCHNOP_unmask: {
        const port = v.rd(arg, 4);
        if (port === null) return -E.EFAULT;
        return this.unmask(Number(port));
      }
      case EVTCHNOP_reset: {
        const dom = v.rd(arg, 2);
        if (dom === null) return -E.EFAULT;
        if (Number(dom) !== DOMID_SELF && Number(dom) !== d.domid) return -E.EPERM;
        // Xen evtchn_reset checks for preemption every 64 ports; at most maxPorts here, so it is charged, not split.
        chargeWork(Math.ceil(this.ports.length / 64));
        for (let p = 1; p < this.ports.length; p++) {
          // Ports toward the engine's own backends stay (the toolstack re-offers them).
          if (this.ports[p].state !== ECS_FREE && this.ports[p].onNotify === null) this.closePort(p);
        }
        return 0;
      }
      case EVTCHNOP_init_control:
      case EVTCHNOP_expand_array:
      case EVTCHNOP_set_priority:
        // FIFO ABI not offered: guests stay on the 2-level ABI.
        return -E.ENOSYS;
      default:
        return -E.ENOSYS;
    }
  }

  /** EVTCHNOP_send from the guest (Xen evtchn_send). */
  send(v: Vcpu | null, port: number): number {
    if (!this.valid(port)) return -E.EINVAL;
    const s = this.ports[port];
    switch (s.state) {
      case ECS_INTERDOMAIN:
        s.sends++;
        if (s.remoteDom === this.dom.domid) this.raise(s.remotePort);
        else s.onNotify?.();
        return 0;
      case ECS_IPI:
        s.sends++;
        this.raise(port);
        return 0;
      case ECS_UNBOUND:
        s.sends++;
        return 0;
      default:
        return -E.EINVAL;
    }
  }

  /** EVTCHNOP_unmask (Xen evtchn_2l_unmask). */
  unmask(port: number): number {
    if (!this.valid(port)) return -E.EINVAL;
    if (this.testAndClear(this.maskOff(), port) && this.isPending(port)) this.notifyVcpu(port);
    return 0;
  }

  /** EVTCHNOP_close (Xen evtchn_close). */
  closePort(port: number): number {
    if (!this.valid(port)) return -E.EINVAL;
    const s = this.ports[port];
    switch (s.state) {
      case ECS_FREE:
        return -E.EINVAL;
      case ECS_VIRQ: {
        const tv = this.dom.vcpus[s.vcpu];
        if (tv && tv.virqPorts[s.virq] === port) tv.virqPorts[s.virq] = 0;
        break;
      }
      case ECS_INTERDOMAIN:
        if (s.remoteDom === this.dom.domid && this.valid(s.remotePort)) {
          const r = this.ports[s.remotePort];
          if (r.state === ECS_INTERDOMAIN && r.remotePort === port) {
            r.state = ECS_UNBOUND;
            r.remotePort = 0;
          }
        }
        break;
    }
    Object.assign(s, this.newPort());
    return 0;
  }
}
