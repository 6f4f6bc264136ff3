/**
 * blkback: the block backend of the emulated dom0, serving one virtual
 * disk (a raw image file) to one frontend.
 *
 * XenStore handshake as Linux's xen-blkback does it
 * (drivers/block/xen-blkback/xenbus.c, Xen public/io/blkif.h):
 * - backend directory `/local/domain/0/backend/vbd/<domid>/<devid>`
 *   (frontend, frontend-id, online, removable, bootable, dev, type, mode,
 *   params, device-type, state = 2 InitWait), readable by the guest;
 * - frontend directory `/local/domain/<domid>/device/vbd/<devid>`
 *   (backend, backend-id, virtual-device, device-type, state = 1), owned by
 *   the guest;
 * - when the frontend reaches Initialised (3) or Connected (4): read
 *   `ring-ref`, `event-channel` and `protocol` (`x86_32-abi` /
 *   `x86_64-abi`, default the 64-bit layout), map the ring grant, bind the
 *   event channel, write sectors, info, sector-size, physical-sector-size,
 *   feature-flush-cache = 1, feature-barrier = 1, feature-discard = 0,
 *   feature-persistent = 0, and switch to Connected (4); Closing (5) and
 *   Closed (6) follow the frontend; a frontend back at Initialising (1)
 *   after Closed puts the backend back to InitWait (2) (PV GRUB's hand-off
 *   to the kernel). Errors are reported like xenbus_dev_fatal: the
 *   message goes to `/local/domain/0/error/<backend path>/error` and the
 *   backend switches to Closing.
 *
 * Requests: READ, WRITE, WRITE_BARRIER and FLUSH_DISKCACHE (with or
 * without data segments) are served synchronously; DISCARD, INDIRECT and
 * unknown operations answer BLKIF_RSP_EOPNOTSUPP (not advertised). A
 * request gets BLKIF_RSP_ERROR for a bad segment count (READ/WRITE need
 * 1..11, flushes 0..11), a segment with first_sect > last_sect or
 * last_sect > 7, a sector range beyond the end of the disk, a write or
 * flush to a read-only disk, a grant that cannot be mapped, or an I/O
 * error. Writes go to the image with synchronous `fs.writeSync` at the
 * request's offset; flushes and barriers `fs.fsyncSync` before their
 * data and again after it when they carry any. The only file opened is
 * the configured image. A frontend that claims more requests
 * than the ring holds (`req_prod - rsp_prod_pvt > 32`) halts servicing of
 * that ring, as blkback does ("Frontend provided bogus ring requests").
 * Nothing here throws because of guest input.
 */
import * as fs from 'node:fs';
import type { MachineMemory } from '../memory/machine-memory';
import type { EvtchnBackendApi, GrantBackendApi } from '../xen/types';
import type { Xenstored } from './xenstored';
import { XenbusBackendEnd, XenbusState } from './xenbus';

export { vdevToDevid } from './vdev';

/** blkif operations (Xen public/io/blkif.h). */
export const BLKIF_OP_READ = 0;
export const BLKIF_OP_WRITE = 1;
export const BLKIF_OP_WRITE_BARRIER = 2;
export const BLKIF_OP_FLUSH_DISKCACHE = 3;
export const BLKIF_OP_DISCARD = 5;
export const BLKIF_OP_INDIRECT = 6;
/** Response status values. */
export const BLKIF_RSP_OKAY = 0;
export const BLKIF_RSP_ERROR = -1;
export const BLKIF_RSP_EOPNOTSUPP = -2;
export const BLKIF_MAX_SEGMENTS_PER_REQUEST = 11;
/** `info` bits (VDISK_*). */
export const VDISK_CDROM = 1;
export const VDISK_REMOVABLE = 2;
export const VDISK_READONLY = 4;

export { XenbusState };

/** Slots per one-page blkif ring in both ABIs. */
export const BLKIF_RING_SIZE = 32;
const RING_HDR = 64;

/** Field offsets of blkif_request for one ABI. */
interface BlkifLayout {
  name: 'x86_32-abi' | 'x86_64-abi';
  slot: number;
  id: number;
  sector: number;
  seg: number;
}
const LAYOUT_32: BlkifLayout = { name: 'x86_32-abi', slot: 108, id: 4, sector: 12, seg: 20 };
const LAYOUT_64: BlkifLayout = { name: 'x86_64-abi', slot: 112, id: 8, sector: 16, seg: 24 };

/** Construction options of a Blkback. */
export interface BlkbackOptions {
  xenstored: Xenstored;
  frontDomid: number;
  /** Device number (see vdevToDevid). */
  devid: number;
  /** Guest device name, e.g. `xvda`. */
  vdev: string;
  /** Host path of the raw image; the only file this backend opens. */
  path: string;
  readonly: boolean;
  mem: MachineMemory;
  grants: GrantBackendApi;
  evtchn: EvtchnBackendApi;
}

/** Counters for inspection. */
export interface BlkbackStats {
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  errors: number;
  unsupported: number;
  sectorsRead: number;
  sectorsWritten: number;
}

export class Blkback {
  readonly backendPath: string;
  readonly frontendPath: string;
  /** Label used by inspection (event channels, grants): `blkback <vdev>`. */
  readonly label: string;
  /** Disk size in 512-byte sectors. */
  readonly sectors: number;
  readonly stats: BlkbackStats = {
    requests: 0,
    reads: 0,
    writes: 0,
    flushes: 0,
    errors: 0,
    unsupported: 0,
    sectorsRead: 0,
    sectorsWritten: 0,
  };

  private readonly o: BlkbackOptions;
  private fd: number;
  private readonly xb: XenbusBackendEnd;

  /** What went wrong, oldest first (capped at 200 lines). */
  get log(): string[] {
    return this.xb.log;
  }
  private ring: { handle: number; offset: number; layout: BlkifLayout } | null = null;
  private port: { notify(): void; close(): void } | null = null;
  private reqCons = 0;
  private rspProdPvt = 0;
  private halted = false;
  private servicing = false;
  private unwatch: (() => void) | null = null;
  private destroyed = false;

  /**
   * Opens the image and creates the backend and frontend XenStore
   * directories. Throws Error when the image cannot be opened or the
   * device number is invalid (configuration problems, not guest input).
   */
  constructor(opts: BlkbackOptions) {
    this.o = opts;
    if (!Number.isInteger(opts.devid) || opts.devid < 0)
      throw new Error(`blkback: bad device number for ${opts.vdev}`);
    this.label = `blkback ${opts.vdev}`;
    try {
      this.fd = fs.openSync(opts.path, opts.readonly ? 'r' : 'r+');
    } catch (e) {
      throw new Error(`blkback: cannot open disk image ${opts.path}: ${(e as Error).message}`);
    }
    const st = fs.fstatSync(this.fd);
    if (!st.isFile()) {
      fs.closeSync(this.fd);
      throw new Error(`blkback: disk image ${opts.path} is not a regular file`);
    }
    const size = st.size;
    this.sectors = Math.floor(size / 512);
    const xs = opts.xenstored;
    const d = opts.frontDomid;
    this.backendPath = `/local/domain/0/backend/vbd/${d}/${opts.devid}`;
    this.xb = new XenbusBackendEnd(opts.xenstored, this.backendPath);
    this.frontendPath = `/local/domain/${d}/device/vbd/${opts.devid}`;
    const be = this.backendPath;
    const fe = this.frontendPath;
    xs.rm(be);
    xs.mkdir(be);
    xs.setPerms(be, ['n0', `r${d}`]);
    xs.write(`${be}/frontend`, fe);
    xs.write(`${be}/frontend-id`, String(d));
    xs.write(`${be}/online`, '1');
    xs.write(`${be}/removable`, '0');
    xs.write(`${be}/bootable`, '1');
    xs.write(`${be}/dev`, opts.vdev);
    xs.write(`${be}/type`, 'phy');
    xs.write(`${be}/mode`, opts.readonly ? 'r' : 'w');
    xs.write(`${be}/params`, opts.path);
    xs.write(`${be}/device-type`, 'disk');
    xs.write(`${be}/state`, String(XenbusState.InitWait));
    xs.rm(fe);
    xs.mkdir(fe);
    xs.setPerms(fe, [`n${d}`, 'r0']);
    xs.write(`${fe}/backend`, be);
    xs.write(`${fe}/backend-id`, '0');
    xs.write(`${fe}/virtual-device`, String(opts.devid));
    xs.write(`${fe}/device-type`, 'disk');
    xs.write(`${fe}/state`, String(XenbusState.Initialising));
    this.unwatch = xs.watch(`${fe}/state`, `${this.label}:frontend-state`, () => this.frontendChanged());
  }

  /** Current backend xenbus state. */
  get backendState(): number {
    return this.xb.state;
  }

  /** True once a ring is mapped and the event channel bound. */
  get connected(): boolean {
    return this.ring !== null;
  }

  /** True when servicing stopped because the frontend corrupted the ring indexes. */
  get ringHalted(): boolean {
    return this.halted;
  }

  /** Services the ring (also run on every frontend notification). Never throws. */
  kick(): void {
    this.service();
  }

  /** Disconnects (unmaps the ring, closes the event channel), removes the watch and closes the image. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.disconnect();
    this.unwatch?.();
    this.unwatch = null;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private frontendChanged(): void {
    if (this.destroyed) return;
    const v = this.o.xenstored.read(`${this.frontendPath}/state`);
    if (v === undefined) return;
    const fstate = /^[0-9]+$/.test(v) ? Number(v) : XenbusState.Unknown;
    switch (fstate) {
      case XenbusState.Initialising:
        if (this.xb.state === XenbusState.Closed) {
          this.xb.note('frontend re-initialising: prepare for reconnect');
          this.xb.switchState(XenbusState.InitWait);
        }
        break;
      case XenbusState.Initialised:
      case XenbusState.Connected:
        if (this.xb.state === XenbusState.Connected) break;
        this.disconnect();
        if (this.connectRing()) this.connect();
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

  private connectRing(): boolean {
    const xs = this.o.xenstored;
    const order = this.readUint('ring-page-order');
    if (order !== null && order > 0) {
      this.xb.fatal(22, `ring-page-order ${order} not supported (max-ring-page-order not advertised)`);
      return false;
    }
    const ref = this.readUint('ring-ref');
    const evtchn = this.readUint('event-channel');
    if (ref === null || evtchn === null) {
      this.xb.fatal(2, `reading ${this.frontendPath}/ring-ref and event-channel`);
      return false;
    }
    const proto = xs.read(`${this.frontendPath}/protocol`);
    let layout: BlkifLayout;
    if (proto === undefined || proto === '' || proto === 'x86_64-abi') layout = LAYOUT_64;
    else if (proto === 'x86_32-abi') layout = LAYOUT_32;
    else {
      this.xb.fatal(38, `unknown fe protocol ${proto}`);
      return false;
    }
    const m = this.o.grants.map(this.o.frontDomid, ref, true);
    if ('error' in m) {
      this.xb.fatal(22, `mapping ring-ref ${ref} port ${evtchn}: grant status ${m.error}`);
      return false;
    }
    const offset = this.o.mem.mfnToOffset(m.mfn);
    if (offset < 0) {
      this.o.grants.unmap(m.handle);
      this.xb.fatal(22, `ring-ref ${ref} maps machine frame ${m.mfn}, which does not exist`);
      return false;
    }
    const b = this.o.evtchn.bindInterdomain(this.o.frontDomid, evtchn, () => this.service());
    if ('error' in b) {
      this.o.grants.unmap(m.handle);
      this.xb.fatal(-b.error, `binding event channel ${evtchn}: error ${b.error}`);
      return false;
    }
    this.ring = { handle: m.handle, offset, layout };
    this.port = b;
    // The frontend initialised the shared ring; the backend's private indexes start from its current state.
    this.reqCons = this.o.mem.read32(offset + 8);
    this.rspProdPvt = this.reqCons;
    this.halted = false;
    return true;
  }

  private connect(): void {
    const xs = this.o.xenstored;
    const be = this.backendPath;
    xs.write(`${be}/feature-flush-cache`, '1');
    xs.write(`${be}/feature-barrier`, '1');
    xs.write(`${be}/feature-discard`, '0');
    xs.write(`${be}/feature-persistent`, '0');
    xs.write(`${be}/sectors`, String(this.sectors));
    xs.write(`${be}/info`, String(this.o.readonly ? VDISK_READONLY : 0));
    xs.write(`${be}/sector-size`, '512');
    xs.write(`${be}/physical-sector-size`, '512');
    this.xb.switchState(XenbusState.Connected);
    // Requests may already be waiting.
    this.service();
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
    if (this.ring) {
      this.o.grants.unmap(this.ring.handle);
      this.ring = null;
    }
  }

  private service(): void {
    if (!this.ring || this.halted || this.servicing || this.destroyed) return;
    this.servicing = true;
    try {
      this.serviceRing();
    } catch (e) {
      this.halted = true;
      this.xb.note(`internal error, ring halted: ${(e as Error).message}`);
    } finally {
      this.servicing = false;
    }
  }

  private serviceRing(): void {
    const ring = this.ring!;
    const m = this.o.mem;
    const base = ring.offset;
    for (let round = 0; round < 64; round++) {
      const rp = m.read32(base + 0);
      if ((rp - this.rspProdPvt) >>> 0 > BLKIF_RING_SIZE) {
        this.halted = true;
        this.xb.note(
          `Frontend provided bogus ring requests (${rp} - ${this.rspProdPvt} = ${(rp - this.rspProdPvt) | 0}). Halting ring processing on dev=${this.o.devid.toString(16).padStart(4, '0')}`,
        );
        return;
      }
      let any = false;
      while (this.reqCons !== rp) {
        if ((this.reqCons - this.rspProdPvt) >>> 0 >= BLKIF_RING_SIZE) break;
        const slot = base + RING_HDR + (this.reqCons & (BLKIF_RING_SIZE - 1)) * ring.layout.slot;
        this.reqCons = (this.reqCons + 1) >>> 0;
        const { idLo, idHi, op, status } = this.handle(slot, ring.layout);
        const rs = base + RING_HDR + (this.rspProdPvt & (BLKIF_RING_SIZE - 1)) * ring.layout.slot;
        m.write32(rs + 0, idLo);
        m.write32(rs + 4, idHi);
        m.write8(rs + 8, op);
        m.write8(rs + 9, 0);
        m.write16(rs + 10, status & 0xffff);
        this.rspProdPvt = (this.rspProdPvt + 1) >>> 0;
        any = true;
      }
      if (any) {
        // RING_PUSH_RESPONSES_AND_CHECK_NOTIFY
        const old = m.read32(base + 8);
        const nw = this.rspProdPvt;
        m.write32(base + 8, nw);
        const ev = m.read32(base + 12);
        if ((nw - ev) >>> 0 < (nw - old) >>> 0) this.port?.notify();
      }
      // RING_FINAL_CHECK_FOR_REQUESTS
      if (this.reqCons === m.read32(base + 0)) {
        m.write32(base + 4, (this.reqCons + 1) >>> 0);
        if (this.reqCons === m.read32(base + 0)) return;
      }
      if (!any) return;
    }
  }

  /** Decodes and performs one request; returns the response fields. */
  private handle(slot: number, L: BlkifLayout): { idLo: number; idHi: number; op: number; status: number } {
    const m = this.o.mem;
    const op = m.read8(slot);
    const nseg = m.read8(slot + 1);
    const idLo = m.read32(slot + L.id);
    const idHi = m.read32(slot + L.id + 4);
    const secLo = m.read32(slot + L.sector);
    const secHi = m.read32(slot + L.sector + 4);
    this.stats.requests++;
    const res = (status: number) => {
      if (status === BLKIF_RSP_ERROR) this.stats.errors++;
      if (status === BLKIF_RSP_EOPNOTSUPP) this.stats.unsupported++;
      return { idLo, idHi, op, status };
    };
    const isFlush = op === BLKIF_OP_WRITE_BARRIER || op === BLKIF_OP_FLUSH_DISKCACHE;
    if (op !== BLKIF_OP_READ && op !== BLKIF_OP_WRITE && !isFlush) {
      this.xb.note(`unsupported operation ${op}`);
      return res(BLKIF_RSP_EOPNOTSUPP);
    }
    if ((nseg === 0 && !isFlush) || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
      this.xb.note(`Bad number of segments in request (${nseg})`);
      return res(BLKIF_RSP_ERROR);
    }
    const writing = op !== BLKIF_OP_READ;
    if (writing && this.o.readonly) {
      this.xb.note(`operation ${op} on read-only disk`);
      return res(BLKIF_RSP_ERROR);
    }
    const segs: { gref: number; first: number; last: number }[] = [];
    let total = 0;
    for (let i = 0; i < nseg; i++) {
      const s = slot + L.seg + i * 8;
      const gref = m.read32(s);
      const first = m.read8(s + 4);
      const last = m.read8(s + 5);
      if (last > 7 || first > last) {
        this.xb.note(`bad segment ${i}: first_sect ${first} last_sect ${last}`);
        return res(BLKIF_RSP_ERROR);
      }
      segs.push({ gref, first, last });
      total += last - first + 1;
    }
    const sector = secHi * 0x100000000 + secLo;
    if (nseg > 0 && (secHi >= 0x200000 || sector + total > this.sectors)) {
      this.xb.note(`access beyond end of device: sector ${sector} + ${total} > ${this.sectors}`);
      return res(BLKIF_RSP_ERROR);
    }
    // Map every segment first: any failure fails the request before I/O.
    const maps: { mfn: number; handle: number }[] = [];
    for (const sg of segs) {
      const r = this.o.grants.map(this.o.frontDomid, sg.gref, op === BLKIF_OP_READ);
      if ('error' in r || this.o.mem.mfnToOffset(r.mfn) < 0) {
        if (!('error' in r)) this.o.grants.unmap(r.handle);
        for (const x of maps) this.o.grants.unmap(x.handle);
        this.xb.note(`cannot map grant ${sg.gref}: ${'error' in r ? `status ${r.error}` : 'no such frame'}`);
        return res(BLKIF_RSP_ERROR);
      }
      maps.push(r);
    }
    try {
      if (isFlush) {
        fs.fsyncSync(this.fd);
        this.stats.flushes++;
      }
      let pos = sector * 512;
      for (let i = 0; i < segs.length; i++) {
        const sg = segs[i];
        const len = (sg.last - sg.first + 1) * 512;
        const off = this.o.mem.mfnToOffset(maps[i].mfn) + sg.first * 512;
        if (op === BLKIF_OP_READ) {
          const buf = new Uint8Array(len);
          let got = 0;
          while (got < len) {
            const n = fs.readSync(this.fd, buf, got, len - got, pos + got);
            if (n <= 0) break;
            got += n;
          }
          this.o.mem.writeBytes(off, buf);
        } else {
          const buf = this.o.mem.readBytes(off, len);
          let put = 0;
          while (put < len) put += fs.writeSync(this.fd, buf, put, len - put, pos + put);
        }
        pos += len;
      }
      if (op === BLKIF_OP_READ) {
        this.stats.reads++;
        this.stats.sectorsRead += total;
      } else if (total > 0) {
        this.stats.writes++;
        this.stats.sectorsWritten += total;
      }
      // Data carried by a flush or barrier is durable when the response goes out.
      if (isFlush && total > 0) fs.fsyncSync(this.fd);
    } catch (e) {
      this.xb.note(`I/O error: ${(e as Error).message}`);
      return res(BLKIF_RSP_ERROR);
    } finally {
      for (const x of maps) this.o.grants.unmap(x.handle);
    }
    return res(BLKIF_RSP_OKAY);
  }
}
