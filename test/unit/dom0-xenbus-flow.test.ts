/**
 * The xenbus conversations real frontends have with xenstored and blkback,
 * request by request over the guest's xenstore ring: PV GRUB's xendisk
 * (grub-core/disk/xen/xendisk.c: init, open, read, fini/hand-off) and
 * Linux's xen-blkfront (state switches inside transactions, watches on the
 * backend state).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MachineMemory } from '../../engine/memory/machine-memory';
import {
  Xenstored,
  XS_DIRECTORY,
  XS_READ,
  XS_TRANSACTION_END,
  XS_TRANSACTION_START,
  XS_WATCH,
  XS_WATCH_EVENT,
  XS_WRITE,
} from '../../engine/dom0/xenstored';
import { Blkback, BLKIF_OP_READ } from '../../engine/dom0/blkback';
import type { EvtchnBackendApi, GrantBackendApi } from '../../engine/xen/types';
import { RingClient } from '../helpers/xs-ring-client';

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function world(bits: 32 | 64) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pvscope-flow-'));
  tempDirs.push(dir);
  const img = path.join(dir, 'disk.img');
  const data = Buffer.alloc(16 * 512);
  data.write('GRUB-FLOW-SECTOR-0', 0);
  data.write('SECTOR-5', 5 * 512);
  fs.writeFileSync(img, data);
  const xs = new Xenstored();
  xs.introduceDomain(1, { name: 'g', memoryKiB: 65536, vcpus: 1, storeMfn: 2, storePort: 1 });
  const client = new RingClient(xs, 1);
  const mem = client.mem; // the guest's frames live in the same machine memory
  // Grants the guest "wrote directly into its grant table": ref 0 = ring (mfn 0), ref 1 = DMA page (mfn 1).
  const grants: GrantBackendApi & { mapped: number } = {
    mapped: 0,
    map(front: number, ref: number) {
      if (front !== 1 || ref > 1) return { error: -4 };
      grants.mapped++;
      return { mfn: ref, handle: ref + 100 };
    },
    unmap() {
      grants.mapped--;
    },
  };
  let notify: (() => void) | null = null;
  const evtchn: EvtchnBackendApi = {
    bindInterdomain(_front: number, _port: number, onNotify: () => void) {
      notify = onNotify;
      return { notify: () => {}, close: () => (notify = null) };
    },
  };
  const be = new Blkback({
    xenstored: xs,
    frontDomid: 1,
    devid: 51712,
    vdev: 'xvda',
    path: img,
    readonly: false,
    mem,
    grants,
    evtchn,
  });
  const read = (p: string) => {
    const r = client.req(XS_READ, `${p}\0`);
    return r.type === XS_READ ? r.text : null;
  };
  const write = (p: string, v: string, tx = 0) =>
    assert.equal(client.req(XS_WRITE, `${p}\0${v}`, tx).text, 'OK\0');
  const slot = bits === 64 ? 112 : 108;
  const seg = bits === 64 ? 24 : 20;
  const sectorOff = bits === 64 ? 16 : 12;
  const blkRead = (sector: number, n: number) => {
    const ringOff = mem.mfnToOffset(0);
    const prod = mem.read32(ringOff);
    const s = ringOff + 64 + (prod & 31) * slot;
    mem.write8(s, BLKIF_OP_READ);
    mem.write8(s + 1, 1);
    mem.write32(s + sectorOff, sector);
    mem.write32(s + seg, 1);
    mem.write8(s + seg + 4, 0);
    mem.write8(s + seg + 5, n - 1);
    mem.write32(ringOff, prod + 1);
    notify!();
    assert.equal(mem.read32(ringOff + 8), prod + 1, 'response pushed');
    const status = (mem.read16(ringOff + 64 + (prod & 31) * slot + 10) << 16) >> 16;
    return { status, data: Buffer.from(mem.readBytes(mem.mfnToOffset(1), n * 512)) };
  };
  return { xs, client, mem, be, grants, read, write, blkRead, hasNotify: () => notify !== null };
}

for (const bits of [64, 32] as const) {
  describe(`dom0 xenbus flows (${bits}-bit frontends)`, () => {
    it("follows PV GRUB's xendisk init, open, read and hand-off", () => {
      const w = world(bits);
      // grub_xendisk_init: count and fill.
      const dir = w.client.req(XS_DIRECTORY, 'device/vbd\0');
      assert.equal(dir.text, '51712\0');
      const backend = w.read('device/vbd/51712/backend')!;
      assert.equal(backend, '/local/domain/0/backend/vbd/1/51712');
      assert.equal(w.read(`${backend}/dev`), 'xvda');
      assert.equal(w.read('device/vbd/51712/backend-id'), '0');
      // SHARED_RING_INIT in the ring page, then the handshake writes.
      const ringOff = w.mem.mfnToOffset(0);
      w.mem.fill(ringOff, 4096, 0);
      w.mem.write32(ringOff + 4, 1);
      w.mem.write32(ringOff + 12, 1);
      w.write('device/vbd/51712/ring-ref', '0');
      w.write('device/vbd/51712/event-channel', '9');
      w.write('device/vbd/51712/protocol', bits === 64 ? 'x86_64-abi' : 'x86_32-abi');
      w.write('device/vbd/51712/state', '3');
      // GRUB polls the backend state until it is no longer 2.
      assert.equal(w.read(`${backend}/state`), '4');
      // grub_virtdisk_open.
      assert.equal(w.read(`${backend}/sectors`), '16');
      assert.equal(w.read(`${backend}/sector-size`), '512');
      // One read of up to 8 sectors into the DMA page.
      const r = w.blkRead(0, 8);
      assert.equal(r.status, 0);
      assert.equal(r.data.subarray(0, 18).toString(), 'GRUB-FLOW-SECTOR-0');
      assert.equal(r.data.subarray(5 * 512, 5 * 512 + 8).toString(), 'SECTOR-5');
      // grub_xendisk_fini: Closed, wait for the backend, clear ring-ref/event-channel, back to Initialising.
      w.write('device/vbd/51712/state', '6');
      assert.equal(w.read(`${backend}/state`), '6');
      assert.ok(!w.hasNotify());
      assert.equal(w.grants.mapped, 0);
      w.write('device/vbd/51712/ring-ref', '');
      w.write('device/vbd/51712/event-channel', '');
      w.write('device/vbd/51712/state', '1');
      assert.equal(w.read(`${backend}/state`), '2'); // ready for the kernel's blkfront
      w.be.destroy();
    });

    it('follows Linux blkfront: watches, transactions, Initialised then Connected', () => {
      const w = world(bits);
      const fe = 'device/vbd/51712';
      const backend = w.read(`${fe}/backend`)!;
      // xenbus_watch_pathfmt(otherend/state): fires once at once.
      const wmsgs = w.client.call(XS_WATCH, `${backend}/state\0be-state\0`);
      assert.ok(wmsgs.some((m) => m.type === XS_WATCH_EVENT && m.text === `${backend}/state\0be-state\0`));
      assert.equal(w.read(`${backend}/state`), '2');
      // talk_to_blkback: one transaction with ring-ref, event-channel, protocol.
      const ringOff = w.mem.mfnToOffset(0);
      w.mem.fill(ringOff, 4096, 0);
      w.mem.write32(ringOff + 4, 1);
      w.mem.write32(ringOff + 12, 1);
      const tx = Number(w.client.req(XS_TRANSACTION_START, '\0').text.replace('\0', ''));
      w.write(`${fe}/ring-ref`, '0', tx);
      w.write(`${fe}/event-channel`, '9', tx);
      w.write(`${fe}/protocol`, bits === 64 ? 'x86_64-abi' : 'x86_32-abi', tx);
      assert.equal(w.client.req(XS_TRANSACTION_END, 'T\0', tx).text, 'OK\0');
      // xenbus_switch_state(Initialised) in its own transaction; the backend connects on commit.
      const tx2 = Number(w.client.req(XS_TRANSACTION_START, '\0').text.replace('\0', ''));
      assert.equal(w.read(`${fe}/state`), '1');
      w.write(`${fe}/state`, '3', tx2);
      assert.equal(w.xs.read(`/local/domain/0/backend/vbd/1/51712/state`), '2'); // not before the commit
      const end = w.client.call(XS_TRANSACTION_END, 'T\0', tx2);
      assert.ok(end.some((m) => m.type === XS_TRANSACTION_END && m.text === 'OK\0'));
      // The backend's switch to Connected reached the frontend's watch.
      const events = [...end, ...w.client.take()].filter((m) => m.type === XS_WATCH_EVENT);
      assert.ok(events.some((m) => m.text === `${backend}/state\0be-state\0`));
      assert.equal(w.read(`${backend}/state`), '4');
      // blkfront_connect reads what the backend advertised.
      assert.equal(w.read(`${backend}/feature-flush-cache`), '1');
      assert.equal(w.read(`${backend}/info`), '0');
      w.write(`${fe}/state`, '4');
      assert.equal(w.read(`${backend}/state`), '4');
      assert.equal(w.blkRead(5, 1).data.subarray(0, 8).toString(), 'SECTOR-5');
      // Shutdown: Closing then Closed.
      w.write(`${fe}/state`, '5');
      assert.equal(w.read(`${backend}/state`), '5');
      w.write(`${fe}/state`, '6');
      assert.equal(w.read(`${backend}/state`), '6');
      w.be.destroy();
    });
  });
}
