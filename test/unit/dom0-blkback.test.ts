import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MachineMemory } from '../../engine/memory/machine-memory';
import { Xenstored } from '../../engine/dom0/xenstored';
import {
  Blkback,
  BLKIF_OP_DISCARD,
  BLKIF_OP_FLUSH_DISKCACHE,
  BLKIF_OP_INDIRECT,
  BLKIF_OP_READ,
  BLKIF_OP_WRITE,
  BLKIF_OP_WRITE_BARRIER,
  BLKIF_RSP_EOPNOTSUPP,
  BLKIF_RSP_ERROR,
  BLKIF_RSP_OKAY,
  vdevToDevid,
} from '../../engine/dom0/blkback';
import type { EvtchnBackendApi, GrantBackendApi } from '../../engine/xen/types';

const SECTORS = 64; // 32 KiB image
const RING_MFN = 1;
const DATA_MFN = 2; // data pages 2..5
const DOMID = 1;

class FakeGrants implements GrantBackendApi {
  /** ref -> [mfn, readonly] */
  table = new Map<number, [number, boolean]>();
  live = new Map<number, number>();
  private next = 1;
  map(frontDomid: number, ref: number, write: boolean): { mfn: number; handle: number } | { error: number } {
    const e = this.table.get(ref);
    if (frontDomid !== DOMID || !e) return { error: -4 };
    if (write && e[1]) return { error: -8 };
    const h = this.next++;
    this.live.set(h, ref);
    return { mfn: e[0], handle: h };
  }
  unmap(handle: number): void {
    this.live.delete(handle);
  }
}

class FakeEvtchn implements EvtchnBackendApi {
  onNotify: (() => void) | null = null;
  notifies = 0;
  closed = 0;
  boundPort = -1;
  bindInterdomain(frontDomid: number, frontPort: number, onNotify: () => void) {
    if (frontDomid !== DOMID || frontPort === 0) return { error: -22 };
    this.onNotify = onNotify;
    this.boundPort = frontPort;
    return {
      notify: () => {
        this.notifies++;
      },
      close: () => {
        this.closed++;
        this.onNotify = null;
      },
    };
  }
}

interface Layout {
  proto: string;
  slot: number;
  id: number;
  sector: number;
  seg: number;
}
const L32: Layout = { proto: 'x86_32-abi', slot: 108, id: 4, sector: 12, seg: 20 };
const L64: Layout = { proto: 'x86_64-abi', slot: 112, id: 8, sector: 16, seg: 24 };

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempImage(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pvscope-blk-'));
  tempDirs.push(dir);
  const p = path.join(dir, 'disk.img');
  const buf = Buffer.alloc(SECTORS * 512);
  for (let s = 0; s < SECTORS; s++) buf.fill(s & 0xff, s * 512, s * 512 + 512);
  fs.writeFileSync(p, buf);
  return p;
}

function setup(L: Layout, opts: { readonly?: boolean } = {}) {
  const mem = new MachineMemory(8);
  const xs = new Xenstored();
  xs.introduceDomain(DOMID, { name: 'g', memoryKiB: 65536, vcpus: 1 });
  const grants = new FakeGrants();
  const evtchn = new FakeEvtchn();
  grants.table.set(8, [RING_MFN, false]);
  for (let i = 0; i < 4; i++) grants.table.set(9 + i, [DATA_MFN + i, false]);
  grants.table.set(20, [DATA_MFN, true]); // read-only grant
  const img = tempImage();
  const be = new Blkback({
    xenstored: xs,
    frontDomid: DOMID,
    devid: vdevToDevid('xvda'),
    vdev: 'xvda',
    path: img,
    readonly: opts.readonly ?? false,
    mem,
    grants,
    evtchn,
  });
  const ring = mem.mfnToOffset(RING_MFN);
  // SHARED_RING_INIT
  mem.write32(ring + 0, 0);
  mem.write32(ring + 4, 1);
  mem.write32(ring + 8, 0);
  mem.write32(ring + 12, 1);
  const fe = `/local/domain/${DOMID}/device/vbd/51712`;
  const bePath = `/local/domain/0/backend/vbd/${DOMID}/51712`;
  const connect = () => {
    xs.write(`${fe}/ring-ref`, '8');
    xs.write(`${fe}/event-channel`, '5');
    xs.write(`${fe}/protocol`, L.proto);
    xs.write(`${fe}/state`, '3');
  };
  let reqProd = 0;
  let rspCons = 0;
  const push = (op: number, id: number, sector: number, segs: [number, number, number][]) => {
    const s = ring + 64 + (reqProd & 31) * L.slot;
    mem.fill(s, L.slot, 0);
    mem.write8(s, op);
    mem.write8(s + 1, segs.length);
    mem.write16(s + 2, 51712);
    mem.write64(s + L.id, id, 0x12345678);
    mem.write64(s + L.sector, sector, 0);
    segs.forEach(([gref, first, last], i) => {
      mem.write32(s + L.seg + i * 8, gref);
      mem.write8(s + L.seg + i * 8 + 4, first);
      mem.write8(s + L.seg + i * 8 + 5, last);
    });
    reqProd++;
    mem.write32(ring + 0, reqProd);
  };
  const responses = () => {
    const out: { id: number; idHi: number; op: number; status: number }[] = [];
    const prod = mem.read32(ring + 8);
    while (rspCons !== prod) {
      const s = ring + 64 + (rspCons & 31) * L.slot;
      out.push({
        id: mem.read32(s),
        idHi: mem.read32(s + 4),
        op: mem.read8(s + 8),
        status: (mem.read16(s + 10) << 16) >> 16,
      });
      rspCons++;
    }
    mem.write32(ring + 12, rspCons + 1); // rsp_event
    return out;
  };
  const one = (op: number, id: number, sector: number, segs: [number, number, number][]) => {
    push(op, id, sector, segs);
    evtchn.onNotify!();
    const r = responses();
    assert.equal(r.length, 1);
    assert.equal(r[0].id, id);
    assert.equal(r[0].idHi, 0x12345678);
    assert.equal(r[0].op, op);
    return r[0].status;
  };
  return { mem, xs, grants, evtchn, img, be, ring, fe, bePath, connect, push, responses, one };
}

for (const L of [L64, L32]) {
  describe(`dom0 blkback (${L.proto})`, () => {
    it('creates backend and frontend directories and connects on Initialised', () => {
      const t = setup(L);
      assert.equal(t.xs.read(`${t.bePath}/state`), '2');
      assert.equal(t.xs.read(`${t.bePath}/frontend`), t.fe);
      assert.equal(t.xs.read(`${t.bePath}/params`), t.img);
      assert.equal(t.xs.read(`${t.bePath}/mode`), 'w');
      assert.deepEqual(t.xs.getPerms(t.bePath), ['n0', 'r1']);
      assert.equal(t.xs.read(`${t.fe}/backend`), t.bePath);
      assert.equal(t.xs.read(`${t.fe}/backend-id`), '0');
      assert.equal(t.xs.read(`${t.fe}/state`), '1');
      assert.deepEqual(t.xs.getPerms(t.fe), ['n1', 'r0']);
      t.connect();
      assert.equal(t.xs.read(`${t.bePath}/state`), '4');
      assert.equal(t.xs.read(`${t.bePath}/sectors`), String(SECTORS));
      assert.equal(t.xs.read(`${t.bePath}/sector-size`), '512');
      assert.equal(t.xs.read(`${t.bePath}/feature-flush-cache`), '1');
      assert.equal(t.xs.read(`${t.bePath}/info`), '0');
      assert.ok(t.be.connected);
      assert.equal(t.evtchn.boundPort, 5);
      t.be.destroy();
    });

    it('reads sectors into granted pages', () => {
      const t = setup(L);
      t.connect();
      // Sectors 3..10 into page DATA (sectors 0..7 of the frame).
      assert.equal(t.one(BLKIF_OP_READ, 77, 3, [[9, 0, 7]]), BLKIF_RSP_OKAY);
      const page = t.mem.mfnToOffset(DATA_MFN);
      for (let s = 0; s < 8; s++) assert.equal(t.mem.read8(page + s * 512 + 100), 3 + s);
      // Two segments, partial frames.
      assert.equal(
        t.one(BLKIF_OP_READ, 78, 20, [
          [10, 2, 3],
          [11, 7, 7],
        ]),
        BLKIF_RSP_OKAY,
      );
      const p1 = t.mem.mfnToOffset(DATA_MFN + 1);
      const p2 = t.mem.mfnToOffset(DATA_MFN + 2);
      assert.equal(t.mem.read8(p1 + 2 * 512), 20);
      assert.equal(t.mem.read8(p1 + 3 * 512 + 511), 21);
      assert.equal(t.mem.read8(p1 + 0), 0); // untouched
      assert.equal(t.mem.read8(p2 + 7 * 512), 22);
      assert.equal(t.be.stats.reads, 2);
      assert.equal(t.grants.live.size, 1); // only the ring stays mapped
      t.be.destroy();
    });

    it('persists writes at the right offset, and flushes', () => {
      const t = setup(L);
      t.connect();
      const page = t.mem.mfnToOffset(DATA_MFN + 3);
      t.mem.fill(page + 512, 1024, 0xab);
      assert.equal(t.one(BLKIF_OP_WRITE, 5, 40, [[12, 1, 2]]), BLKIF_RSP_OKAY);
      const disk = fs.readFileSync(t.img);
      assert.equal(disk[40 * 512 - 1], 39 & 0xff);
      assert.equal(disk[40 * 512], 0xab);
      assert.equal(disk[42 * 512 - 1], 0xab);
      assert.equal(disk[42 * 512], 42);
      assert.equal(t.one(BLKIF_OP_FLUSH_DISKCACHE, 6, 0, []), BLKIF_RSP_OKAY);
      assert.equal(t.one(BLKIF_OP_WRITE_BARRIER, 7, 50, [[12, 1, 1]]), BLKIF_RSP_OKAY);
      assert.equal(fs.readFileSync(t.img)[50 * 512], 0xab);
      assert.equal(t.be.stats.writes, 2);
      assert.equal(t.be.stats.flushes, 2);
      t.be.destroy();
    });

    it('answers bad requests with BLKIF_RSP_ERROR and unsupported ones with EOPNOTSUPP', () => {
      const t = setup(L);
      t.connect();
      const before = fs.readFileSync(t.img);
      assert.equal(t.one(BLKIF_OP_READ, 1, SECTORS - 2, [[9, 0, 7]]), BLKIF_RSP_ERROR); // beyond the end
      assert.equal(t.one(BLKIF_OP_WRITE, 2, SECTORS - 1, [[9, 0, 1]]), BLKIF_RSP_ERROR);
      assert.equal(t.one(BLKIF_OP_READ, 3, 0, [[9, 5, 4]]), BLKIF_RSP_ERROR); // first > last
      assert.equal(t.one(BLKIF_OP_READ, 4, 0, [[9, 0, 8]]), BLKIF_RSP_ERROR); // last > 7
      assert.equal(t.one(BLKIF_OP_READ, 5, 0, []), BLKIF_RSP_ERROR); // no segments
      assert.equal(t.one(BLKIF_OP_READ, 6, 0, Array(12).fill([9, 0, 0])), BLKIF_RSP_ERROR); // > 11
      assert.equal(t.one(BLKIF_OP_READ, 7, 0, [[99, 0, 0]]), BLKIF_RSP_ERROR); // bad grant
      assert.equal(t.one(BLKIF_OP_READ, 8, 0, [[20, 0, 0]]), BLKIF_RSP_ERROR); // read into a read-only grant
      assert.equal(t.one(BLKIF_OP_WRITE, 9, 0, [[20, 0, 0]]), BLKIF_RSP_OKAY); // writing from it is fine
      assert.equal(t.one(BLKIF_OP_DISCARD, 10, 0, []), BLKIF_RSP_EOPNOTSUPP);
      assert.equal(t.one(BLKIF_OP_INDIRECT, 11, 0, []), BLKIF_RSP_EOPNOTSUPP);
      assert.equal(t.one(42, 12, 0, []), BLKIF_RSP_EOPNOTSUPP);
      const after = fs.readFileSync(t.img);
      assert.deepEqual(after.subarray(512), before.subarray(512)); // only sector 0 changed
      assert.equal(t.grants.live.size, 1);
      t.be.destroy();
    });

    it('refuses writes and flushes on a read-only disk', () => {
      const t = setup(L, { readonly: true });
      assert.equal(t.xs.read(`${t.bePath}/mode`), 'r');
      t.connect();
      assert.equal(t.xs.read(`${t.bePath}/info`), '4');
      const before = fs.readFileSync(t.img);
      assert.equal(t.one(BLKIF_OP_WRITE, 1, 0, [[9, 0, 7]]), BLKIF_RSP_ERROR);
      assert.equal(t.one(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, []), BLKIF_RSP_ERROR);
      assert.equal(t.one(BLKIF_OP_READ, 3, 0, [[9, 0, 0]]), BLKIF_RSP_OKAY);
      assert.deepEqual(fs.readFileSync(t.img), before);
      t.be.destroy();
    });

    it('serves a batch of requests and notifies per the rsp_event rule', () => {
      const t = setup(L);
      t.connect();
      for (let i = 0; i < 20; i++) t.push(BLKIF_OP_READ, 100 + i, i, [[9, 0, 0]]);
      t.evtchn.onNotify!();
      const r = t.responses();
      assert.equal(r.length, 20);
      assert.deepEqual(
        r.map((x) => x.id),
        Array.from({ length: 20 }, (_, i) => 100 + i),
      );
      assert.equal(t.evtchn.notifies, 1);
      // Frontend waits for more responses: req_event set to cons + 1 by the backend.
      assert.equal(t.mem.read32(t.ring + 4), 21);
      // Many more rounds wrap the 32-slot ring.
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 30; i++) t.push(BLKIF_OP_READ, i, i, [[9, 0, 0]]);
        t.evtchn.onNotify!();
        assert.equal(t.responses().length, 30);
      }
      t.be.destroy();
    });

    it('halts the ring on bogus indexes without throwing', () => {
      const t = setup(L);
      t.connect();
      t.mem.write32(t.ring + 0, 1000);
      assert.doesNotThrow(() => t.evtchn.onNotify!());
      assert.ok(t.be.ringHalted);
      assert.equal(t.mem.read32(t.ring + 8), 0);
      assert.match(t.be.log.join('\n'), /bogus ring requests/);
      t.be.destroy();
    });

    it('follows Closing/Closed and reconnects after the frontend re-initialises (GRUB hand-off)', () => {
      const t = setup(L);
      t.connect();
      t.xs.write(`${t.fe}/state`, '6');
      assert.equal(t.xs.read(`${t.bePath}/state`), '6');
      assert.ok(!t.be.connected);
      assert.equal(t.evtchn.closed, 1);
      assert.equal(t.grants.live.size, 0);
      t.xs.write(`${t.fe}/state`, '1');
      assert.equal(t.xs.read(`${t.bePath}/state`), '2');
      t.connect();
      assert.equal(t.xs.read(`${t.bePath}/state`), '4');
      assert.equal(t.one(BLKIF_OP_READ, 1, 1, [[9, 0, 0]]), BLKIF_RSP_OKAY);
      t.be.destroy();
      assert.equal(t.grants.live.size, 0);
    });

    it('reports a bad handshake like xenbus_dev_fatal', () => {
      const t = setup(L);
      t.xs.write(`${t.fe}/ring-ref`, '8');
      t.xs.write(`${t.fe}/event-channel`, '5');
      t.xs.write(`${t.fe}/protocol`, 'arm-abi');
      t.xs.write(`${t.fe}/state`, '3');
      assert.equal(t.xs.read(`${t.bePath}/state`), '5');
      assert.match(t.xs.read(`/local/domain/0/error${t.bePath}/error`) ?? '', /unknown fe protocol/);
      assert.ok(!t.be.connected);
      t.be.destroy();
    });
  });
}

describe('dom0 blkback: device numbers and bad images', () => {
  it('maps vdev names to xenbus device numbers', () => {
    assert.equal(vdevToDevid('xvda'), 51712);
    assert.equal(vdevToDevid('xvdb1'), 51729);
    assert.equal(vdevToDevid('xvdq'), (1 << 28) | (16 << 8));
    assert.equal(vdevToDevid('sda'), 2048);
    assert.equal(vdevToDevid('hdc'), 22 << 8);
    assert.equal(vdevToDevid('51712'), 51712);
    assert.equal(vdevToDevid('floppy'), -1);
  });

  it('throws a clear Error when the image cannot be opened', () => {
    const xs = new Xenstored();
    assert.throws(
      () =>
        new Blkback({
          xenstored: xs,
          frontDomid: 1,
          devid: 51712,
          vdev: 'xvda',
          path: '/nonexistent/disk.img',
          readonly: false,
          mem: new MachineMemory(1),
          grants: new FakeGrants(),
          evtchn: new FakeEvtchn(),
        }),
      /cannot open disk image \/nonexistent\/disk\.img/,
    );
    assert.throws(
      () =>
        new Blkback({
          xenstored: xs,
          frontDomid: 1,
          devid: 51712,
          vdev: 'xvda',
          path: os.tmpdir(),
          readonly: true,
          mem: new MachineMemory(1),
          grants: new FakeGrants(),
          evtchn: new FakeEvtchn(),
        }),
      /not a regular file/,
    );
  });
});
