/**
 * netback: the network backend of the emulated dom0 for one vif, attached
 * to a small built-in virtual network instead of a host bridge.
 *
 * XenStore handshake as Linux's xen-netback does it
 * (drivers/net/xen-netback/xenbus.c, Xen public/io/netif.h):
 * - backend directory `/local/domain/0/backend/vif/<domid>/<devid>`
 *   (frontend, frontend-id, online, handle, mac, bridge, type,
 *   feature-rx-copy = 1, feature-rx-flip = 0, feature-sg = 0,
 *   feature-gso-tcpv4 = 0, feature-gso-tcpv6 = 0,
 *   feature-ipv6-csum-offload = 0, feature-split-event-channels = 0,
 *   state = 2 InitWait), readable by the guest;
 * - frontend directory `/local/domain/<domid>/device/vif/<devid>`
 *   (backend, backend-id, handle, mac, state = 1), owned by the guest;
 * - when the frontend reaches Connected (4): read `tx-ring-ref`,
 *   `rx-ring-ref`, `event-channel`, `request-rx-copy` (must be 1: page
 *   flipping is not offered), map both rings, bind the event channel,
 *   switch to Connected; Closing/Closed follow the frontend, and a
 *   frontend back at Initialising after Closed finds InitWait again.
 *
 * Transmit ring (guest -> network; 256 slots of 12 bytes): packets may
 * span several slots (NETTXF_more_data; the first slot's `size` is the
 * whole packet) and carry extra-info slots (NETTXF_extra_info, answered
 * NETIF_RSP_NULL); each slot's data is copied out through a read-only
 * grant mapping. Bad requests (offset + size beyond the page, a size that
 * does not add up, an unmappable grant, a packet over 65535 bytes) answer
 * NETIF_RSP_ERROR for every slot of the packet. Receive ring (network ->
 * guest; 256 slots of 8 bytes): one packet per posted buffer, copied
 * through a writable grant mapping at offset 0, flagged
 * NETRXF_data_validated; packets wait in a bounded queue (oldest dropped
 * beyond 256) until the guest posts buffers. Corrupt ring indexes halt
 * that ring, as netback does; nothing throws because of guest input.
 *
 * The built-in network answers ARP requests for any IPv4 address other
 * than the guest's own (with the gateway MAC 02:00:00:00:00:01) and ICMP
 * echo requests to any such address, so `ping` works in the guest; every
 * transmitted frame is also handed to `onTransmit` listeners, and
 * `inject()` delivers arbitrary frames to the guest.
 */
import type { MachineMemory } from '../memory/machine-memory';
import type { EvtchnBackendApi, GrantBackendApi } from '../xen/types';
import { XenbusBackendEnd, XenbusState } from './xenbus';
import type { Xenstored } from './xenstored';

export const NETTXF_csum_blank = 1;
export const NETTXF_data_validated = 2;
export const NETTXF_more_data = 4;
export const NETTXF_extra_info = 8;
export const NETRXF_data_validated = 1;
export const NETIF_RSP_DROPPED = -2;
export const NETIF_RSP_ERROR = -1;
export const NETIF_RSP_OKAY = 0;
export const NETIF_RSP_NULL = 1;
/** netif_extra_info flags: another extra-info slot follows. */
export const XEN_NETIF_EXTRA_FLAG_MORE = 1;

/** Slots per one-page netif ring (TX and RX). */
export const NET_RING_SIZE = 256;
const RING_HDR = 64;
const TX_SLOT = 12;
const RX_SLOT = 8;
const MAX_PACKET = 65535;
const RX_QUEUE_MAX = 256;

/** MAC of the built-in network's gateway. */
export const GATEWAY_MAC = new Uint8Array([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);

export interface NetbackOptions {
  xenstored: Xenstored;
  frontDomid: number;
  /** vif index (devid), 0 for the first `vif` entry. */
  devid: number;
  /** Guest MAC `xx:xx:xx:xx:xx:xx`; default 00:16:3e:00:00:<devid+1>. */
  mac?: string;
  bridge?: string;
  mem: MachineMemory;
  grants: GrantBackendApi;
  evtchn: EvtchnBackendApi;
}

export interface NetbackStats {
  txPackets: number;
  txErrors: number;
  rxPackets: number;
  rxDropped: number;
}

function parseMac(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(s)) return null;
  return new Uint8Array(s.split(':').map((x) => parseInt(x, 16)));
}

/** RFC 1071 Internet checksum of `b[off, off+len)`. */
function inetChecksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export class Netback {
  readonly backendPath: string;
  readonly frontendPath: string;
  /** Label used by inspection: `netback vif<devid>`. */
  readonly label: string;
  readonly mac: Uint8Array;
  readonly stats: NetbackStats = { txPackets: 0, txErrors: 0, rxPackets: 0, rxDropped: 0 };

  private readonly o: NetbackOptions;
  private readonly xb: XenbusBackendEnd;

  /** What went wrong, oldest first (capped at 200 lines). */
  get log(): string[] {
    return this.xb.log;
  }
  private tx: { handle: number; offset: number } | null = null;
  private rx: { handle: number; offset: number } | null = null;
  private port: { notify(): void; close(): void } | null = null;
  private txReqCons = 0;
  private txRspPvt = 0;
  private rxReqCons = 0;
  private rxRspPvt = 0;
  private halted = false;
  private servicing = false;
  private rxQueue: Uint8Array[] = [];
  private listeners: ((frame: Uint8Array) => void)[] = [];
  private unwatch: (() => void) | null = null;
  private destroyed = false;

  /**
   * Creates the backend and frontend XenStore directories.
   * @throws Error for a malformed MAC or devid (configuration problems).
   */
  constructor(opts: NetbackOptions) {
    this.o = opts;
    if (!Number.isInteger(opts.devid) || opts.devid < 0 || opts.devid > 0xffff) {
      throw new Error(`netback: bad vif number ${opts.devid}`);
    }
    const macStr = opts.mac ?? `00:16:3e:00:00:${((opts.devid + 1) & 0xff).toString(16).padStart(2, '0')}`;
    const mac = parseMac(macStr);
    if (!mac) throw new Error(`netback: bad MAC ${macStr}`);
    this.mac = mac;
    this.label = `netback vif${opts.devid}`;
    const xs = opts.xenstored;
    const d = opts.frontDomid;
    this.backendPath = `/local/domain/0/backend/vif/${d}/${opts.devid}`;
    this.xb = new XenbusBackendEnd(opts.xenstored, this.backendPath);
    this.frontendPath = `/local/domain/${d}/device/vif/${opts.devid}`;
    const be = this.backendPath;
    const fe = this.frontendPath;
    xs.rm(be);
    xs.mkdir(be);
    xs.setPerms(be, ['n0', `r${d}`]);
    const beNodes: [string, string][] = [
      ['frontend', fe],
      ['frontend-id', String(d)],
      ['online', '1'],
      ['handle', String(opts.devid)],
      ['mac', macStr.toLowerCase()],
      ['bridge', opts.bridge ?? 'pvscope0'],
      ['type', 'vif'],
      ['feature-rx-copy', '1'],
      ['feature-rx-flip', '0'],
      ['feature-sg', '0'],
      ['feature-gso-tcpv4', '0'],
      ['feature-gso-tcpv6', '0'],
      ['feature-ipv6-csum-offload', '0'],
      ['feature-split-event-channels', '0'],
      ['state', String(XenbusState.InitWait)],
    ];
    for (const [k, v] of beNodes) xs.write(`${be}/${k}`, v);
    xs.rm(fe);
    xs.mkdir(fe);
    xs.setPerms(fe, [`n${d}`, 'r0']);
    xs.write(`${fe}/backend`, be);
    xs.write(`${fe}/backend-id`, '0');
    xs.write(`${fe}/handle`, String(opts.devid));
    xs.write(`${fe}/mac`, macStr.toLowerCase());
    xs.write(`${fe}/state`, String(XenbusState.Initialising));
    this.unwatch = xs.watch(`${fe}/state`, `${this.label}:frontend-state`, () => this.frontendChanged());
  }

  get backendState(): number {
    return this.xb.state;
  }

  get connected(): boolean {
    return this.port !== null;
  }

  get ringHalted(): boolean {
    return this.halted;
  }

  /** Frames the guest transmits, after the built-in network has seen them. */
  onTransmit(cb: (frame: Uint8Array) => void): void {
    this.listeners.push(cb);
  }

  /** Queues an Ethernet frame for the guest (delivered when it posts receive buffers). Frames over 4096 bytes are dropped. */
  inject(frame: Uint8Array): void {
    if (frame.length > 4096 || frame.length < 14) {
      this.stats.rxDropped++;
      return;
    }
    this.rxQueue.push(frame.slice());
    while (this.rxQueue.length > RX_QUEUE_MAX) {
      this.rxQueue.shift();
      this.stats.rxDropped++;
    }
    this.service();
  }

  /** Services both rings (also run on every frontend notification). Never throws. */
  kick(): void {
    this.service();
  }

  /** Disconnects and removes the watch. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.disconnect();
    this.unwatch?.();
    this.unwatch = null;
  }

  private frontendChanged(): void {
    if (this.destroyed) return;
    const v = this.o.xenstored.read(`${this.frontendPath}/state`);
    if (v === undefined) return;
    const s = /^[0-9]+$/.test(v) ? Number(v) : XenbusState.Unknown;
    switch (s) {
      case XenbusState.Initialising:
        if (this.xb.state === XenbusState.Closed) this.xb.switchState(XenbusState.InitWait);
        break;
      case XenbusState.Connected:
        if (this.xb.state === XenbusState.Connected) break;
        this.disconnect();
        if (this.connectRings()) {
          this.xb.switchState(XenbusState.Connected);
          this.service();
        }
        break;
      case XenbusState.Closing:
        this.xb.switchState(XenbusState.Closing);
        break;
      case XenbusState.Closed:
        this.disconnect();
        this.xb.switchState(XenbusState.Closed);
        break;
      default:
        break;
    }
  }

  private readUint(node: string): number | null {
    const v = this.o.xenstored.read(`${this.frontendPath}/${node}`);
    if (v === undefined || !/^[0-9]+$/.test(v.trim())) return null;
    const n = Number(v.trim());
    return n <= 0xffffffff ? n : null;
  }

  private mapRing(ref: number, what: string): { handle: number; offset: number } | null {
    const m = this.o.grants.map(this.o.frontDomid, ref, true);
    if ('error' in m) {
      this.xb.fatal(22, `mapping ${what} ${ref}: grant status ${m.error}`);
      return null;
    }
    const offset = this.o.mem.mfnToOffset(m.mfn);
    if (offset < 0) {
      this.o.grants.unmap(m.handle);
      this.xb.fatal(22, `${what} ${ref} maps machine frame ${m.mfn}, which does not exist`);
      return null;
    }
    return { handle: m.handle, offset };
  }

  private connectRings(): boolean {
    const txRef = this.readUint('tx-ring-ref');
    const rxRef = this.readUint('rx-ring-ref');
    const evtchn = this.readUint('event-channel');
    if (txRef === null || rxRef === null || evtchn === null) {
      this.xb.fatal(2, `reading ${this.frontendPath}/tx-ring-ref, rx-ring-ref and event-channel`);
      return false;
    }
    if (this.readUint('request-rx-copy') !== 1) {
      this.xb.fatal(
        95,
        `${this.frontendPath}: request-rx-copy not set (receive page flipping is not supported)`,
      );
      return false;
    }
    const tx = this.mapRing(txRef, 'tx-ring-ref');
    if (!tx) return false;
    const rx = this.mapRing(rxRef, 'rx-ring-ref');
    if (!rx) {
      this.o.grants.unmap(tx.handle);
      return false;
    }
    const b = this.o.evtchn.bindInterdomain(this.o.frontDomid, evtchn, () => this.service());
    if ('error' in b) {
      this.o.grants.unmap(tx.handle);
      this.o.grants.unmap(rx.handle);
      this.xb.fatal(-b.error, `binding event channel ${evtchn}: error ${b.error}`);
      return false;
    }
    this.tx = tx;
    this.rx = rx;
    this.port = b;
    const m = this.o.mem;
    this.txReqCons = this.txRspPvt = m.read32(tx.offset + 8);
    this.rxReqCons = this.rxRspPvt = m.read32(rx.offset + 8);
    this.halted = false;
    return true;
  }

  private disconnect(): void {
    if (this.port) {
      try {
        this.port.close();
      } catch {
        // engine side gone
      }
      this.port = null;
    }
    if (this.tx) this.o.grants.unmap(this.tx.handle);
    if (this.rx) this.o.grants.unmap(this.rx.handle);
    this.tx = this.rx = null;
  }

  private service(): void {
    if (!this.tx || !this.rx || this.halted || this.servicing || this.destroyed) return;
    this.servicing = true;
    try {
      let notify = false;
      for (let round = 0; round < 16 && !this.halted; round++) {
        const sent = this.serviceTx();
        const t = this.serviceRx();
        notify = notify || sent.notify || t.notify;
        if (!sent.progress && !t.progress) break;
      }
      if (notify) this.port?.notify();
    } catch (e) {
      this.halted = true;
      this.xb.note(`internal error, rings halted: ${(e as Error).message}`);
    } finally {
      this.servicing = false;
    }
  }

  /** Pushes responses (`rsp_prod` at +8) and applies the notify rule against `rsp_event` (+12). */
  private push(base: number, pvt: number): boolean {
    const m = this.o.mem;
    const old = m.read32(base + 8);
    if (old === pvt) return false;
    m.write32(base + 8, pvt);
    const ev = m.read32(base + 12);
    return (pvt - ev) >>> 0 < (pvt - old) >>> 0;
  }

  private serviceTx(): { progress: boolean; notify: boolean } {
    const m = this.o.mem;
    const base = this.tx!.offset;
    const rp = m.read32(base);
    if ((rp - this.txRspPvt) >>> 0 > NET_RING_SIZE) {
      this.halted = true;
      this.xb.note(
        `Impossible number of TX requests (req_prod ${rp}, rsp_prod ${this.txRspPvt}); rings halted`,
      );
      return { progress: false, notify: false };
    }
    let progress = false;
    while (this.txReqCons !== rp) {
      const avail = (rp - this.txReqCons) >>> 0;
      // Gather one packet: its data slots and extra-info slots.
      const slots: { id: number; extra: boolean }[] = [];
      const frags: { gref: number; offset: number; size: number }[] = [];
      let flags = 0;
      let total = 0;
      let i = 0;
      let complete = false;
      let bad = '';
      let expectExtra = false;
      while (i < avail && i < NET_RING_SIZE) {
        const s = base + RING_HDR + ((this.txReqCons + i) & (NET_RING_SIZE - 1)) * TX_SLOT;
        i++;
        if (expectExtra) {
          slots.push({ id: -1, extra: true });
          expectExtra = (m.read8(s + 1) & XEN_NETIF_EXTRA_FLAG_MORE) !== 0;
          if (!expectExtra && !(flags & NETTXF_more_data)) {
            complete = true;
            break;
          }
          continue;
        }
        const gref = m.read32(s);
        const offset = m.read16(s + 4);
        const f = m.read16(s + 6);
        const id = m.read16(s + 8);
        const size = m.read16(s + 10);
        slots.push({ id, extra: false });
        if (frags.length === 0) {
          total = size;
          if (f & NETTXF_extra_info) expectExtra = true;
        }
        frags.push({ gref, offset, size });
        flags = f;
        // The first slot's size is the whole packet: its own length is checked once known.
        if (frags.length > 1 && offset + size > 4096)
          bad = `slot data crosses the page (offset ${offset} size ${size})`;
        if (!(f & NETTXF_more_data) && !expectExtra) {
          complete = true;
          break;
        }
      }
      if (!complete) {
        if (i >= NET_RING_SIZE) {
          this.halted = true;
          this.xb.note('TX packet longer than the ring; rings halted');
        }
        break; // wait for the rest of the packet
      }
      this.txReqCons = (this.txReqCons + i) >>> 0;
      progress = true;
      // First slot's size is the whole packet; its own data is what the others leave.
      let rest = 0;
      for (let k = 1; k < frags.length; k++) rest += frags[k].size;
      if (!bad && (total > MAX_PACKET || rest > total))
        bad = `packet size ${total} does not match its slots (${rest} after the first)`;
      if (!bad) frags[0].size = total - rest;
      if (!bad && frags[0].offset + frags[0].size > 4096)
        bad = `slot data crosses the page (offset ${frags[0].offset} size ${frags[0].size})`;
      let packet: Uint8Array | null = null;
      if (!bad) {
        packet = new Uint8Array(total);
        let at = 0;
        for (const fr of frags) {
          const r = this.o.grants.map(this.o.frontDomid, fr.gref, false);
          if ('error' in r || this.o.mem.mfnToOffset(r.mfn) < 0) {
            if (!('error' in r)) this.o.grants.unmap(r.handle);
            bad = `cannot map TX grant ${fr.gref}`;
            break;
          }
          packet.set(
            m.u8.subarray(
              this.o.mem.mfnToOffset(r.mfn) + fr.offset,
              this.o.mem.mfnToOffset(r.mfn) + fr.offset + fr.size,
            ),
            at,
          );
          at += fr.size;
          this.o.grants.unmap(r.handle);
        }
      }
      const status = bad ? NETIF_RSP_ERROR : NETIF_RSP_OKAY;
      if (bad) {
        this.xb.note(bad);
        this.stats.txErrors++;
      }
      for (const sl of slots) {
        const rs = base + RING_HDR + (this.txRspPvt & (NET_RING_SIZE - 1)) * TX_SLOT;
        m.write16(rs, sl.extra ? 0 : sl.id);
        m.write16(rs + 2, (sl.extra ? NETIF_RSP_NULL : status) & 0xffff);
        this.txRspPvt = (this.txRspPvt + 1) >>> 0;
      }
      if (packet) {
        this.stats.txPackets++;
        this.network(packet);
        for (const l of this.listeners) {
          try {
            l(packet);
          } catch (e) {
            this.xb.note(`transmit listener failed: ${(e as Error).message}`);
          }
        }
      }
    }
    const notify = this.push(base, this.txRspPvt);
    if (this.txReqCons === m.read32(base)) m.write32(base + 4, (this.txReqCons + 1) >>> 0);
    return { progress, notify };
  }

  private serviceRx(): { progress: boolean; notify: boolean } {
    const m = this.o.mem;
    const base = this.rx!.offset;
    const rp = m.read32(base);
    if ((rp - this.rxRspPvt) >>> 0 > NET_RING_SIZE) {
      this.halted = true;
      this.xb.note(
        `Impossible number of RX requests (req_prod ${rp}, rsp_prod ${this.rxRspPvt}); rings halted`,
      );
      return { progress: false, notify: false };
    }
    let progress = false;
    while (this.rxQueue.length && this.rxReqCons !== rp) {
      const s = base + RING_HDR + (this.rxReqCons & (NET_RING_SIZE - 1)) * RX_SLOT;
      const id = m.read16(s);
      const gref = m.read32(s + 4);
      this.rxReqCons = (this.rxReqCons + 1) >>> 0;
      const frame = this.rxQueue.shift()!;
      let status: number = frame.length;
      const r = this.o.grants.map(this.o.frontDomid, gref, true);
      if ('error' in r || this.o.mem.mfnToOffset(r.mfn) < 0) {
        if (!('error' in r)) this.o.grants.unmap(r.handle);
        this.xb.note(`cannot map RX grant ${gref}`);
        status = NETIF_RSP_ERROR;
        this.stats.rxDropped++;
      } else {
        this.o.mem.writeBytes(this.o.mem.mfnToOffset(r.mfn), frame);
        this.o.grants.unmap(r.handle);
        this.stats.rxPackets++;
      }
      const rs = base + RING_HDR + (this.rxRspPvt & (NET_RING_SIZE - 1)) * RX_SLOT;
      m.write16(rs, id);
      m.write16(rs + 2, 0);
      m.write16(rs + 4, status >= 0 ? NETRXF_data_validated : 0);
      m.write16(rs + 6, status & 0xffff);
      this.rxRspPvt = (this.rxRspPvt + 1) >>> 0;
      progress = true;
    }
    const notify = this.push(base, this.rxRspPvt);
    if (this.rxReqCons === m.read32(base)) m.write32(base + 4, (this.rxReqCons + 1) >>> 0);
    return { progress, notify };
  }

  /** The built-in network: ARP and ICMP echo answers from a virtual gateway. */
  private network(f: Uint8Array): void {
    if (f.length < 14) return;
    const type = (f[12] << 8) | f[13];
    const srcMac = f.subarray(6, 12);
    if (type === 0x0806 && f.length >= 42) {
      // ARP request (htype 1, ptype IPv4, op 1) for an address other than the sender's.
      const op = (f[20] << 8) | f[21];
      const spa = f.subarray(28, 32);
      const tpa = f.subarray(38, 42);
      if (op !== 1 || spa.every((b, i) => b === tpa[i])) return;
      const r = new Uint8Array(42);
      r.set(srcMac, 0);
      r.set(GATEWAY_MAC, 6);
      r.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02], 12);
      r.set(GATEWAY_MAC, 22);
      r.set(tpa, 28);
      r.set(f.subarray(22, 28), 32);
      r.set(spa, 38);
      this.inject(r);
      return;
    }
    if (type === 0x0800 && f.length >= 34) {
      const ihl = (f[14] & 0x0f) * 4;
      const totalLen = (f[16] << 8) | f[17];
      if (f[14] >> 4 !== 4 || ihl < 20 || 14 + totalLen > f.length || totalLen < ihl + 8) return;
      if (f[23] !== 1) return; // ICMP
      const icmp = 14 + ihl;
      if (f[icmp] !== 8) return; // echo request
      const r = f.slice(0, 14 + totalLen);
      r.set(srcMac, 0);
      r.set(GATEWAY_MAC, 6);
      // Swap addresses, fresh TTL, recompute the header checksum.
      r.set(f.subarray(30, 34), 26);
      r.set(f.subarray(26, 30), 30);
      r[22] = 64;
      r[24] = r[25] = 0;
      const hc = inetChecksum(r, 14, ihl);
      r[24] = hc >> 8;
      r[25] = hc & 0xff;
      r[icmp] = 0; // echo reply
      r[icmp + 2] = r[icmp + 3] = 0;
      const ic = inetChecksum(r, icmp, totalLen - ihl);
      r[icmp + 2] = ic >> 8;
      r[icmp + 3] = ic & 0xff;
      this.inject(r);
    }
  }
}
