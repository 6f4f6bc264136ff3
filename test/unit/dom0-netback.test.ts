import { strict as assert } from 'node:assert';
import { MachineMemory } from '../../engine/memory/machine-memory';
import { Xenstored } from '../../engine/dom0/xenstored';
import {
  GATEWAY_MAC,
  Netback,
  NETIF_RSP_ERROR,
  NETIF_RSP_NULL,
  NETIF_RSP_OKAY,
  NETRXF_data_validated,
  NETTXF_extra_info,
  NETTXF_more_data,
} from '../../engine/dom0/netback';
import type { EvtchnBackendApi, GrantBackendApi } from '../../engine/xen/types';

const TX_RING = 1;
const RX_RING = 2;
// TX data pages 3..6, RX buffers 7..14
const FE = '/local/domain/1/device/vif/0';
const BE = '/local/domain/0/backend/vif/1/0';
const GUEST_MAC = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01];
const GUEST_IP = [10, 0, 2, 15];
const GW_IP = [10, 0, 2, 2];

function checksum(b: Uint8Array, off: number, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function setup() {
  const mem = new MachineMemory(16);
  const xs = new Xenstored();
  xs.introduceDomain(1, { name: 'g', memoryKiB: 65536, vcpus: 1 });
  const live = new Set<number>();
  let next = 1;
  const grants: GrantBackendApi = {
    map(front, ref) {
      if (front !== 1 || ref < 1 || ref > 14) return { error: -4 };
      live.add(next);
      return { mfn: ref, handle: next++ };
    },
    unmap(h) {
      live.delete(h);
    },
  };
  let onNotify: (() => void) | null = null;
  let notifies = 0;
  const evtchn: EvtchnBackendApi = {
    bindInterdomain(_f, _p, cb) {
      onNotify = cb;
      return { notify: () => notifies++, close: () => (onNotify = null) };
    },
  };
  const nb = new Netback({ xenstored: xs, frontDomid: 1, devid: 0, mem, grants, evtchn });
  const tx = mem.mfnToOffset(TX_RING);
  const rx = mem.mfnToOffset(RX_RING);
  for (const r of [tx, rx]) {
    mem.write32(r + 4, 1);
    mem.write32(r + 12, 1);
  }
  const connect = () => {
    xs.write(`${FE}/tx-ring-ref`, String(TX_RING));
    xs.write(`${FE}/rx-ring-ref`, String(RX_RING));
    xs.write(`${FE}/event-channel`, '7');
    xs.write(`${FE}/request-rx-copy`, '1');
    xs.write(`${FE}/state`, '4');
  };
  let txProd = 0;
  let txCons = 0;
  let rxProd = 0;
  let rxCons = 0;
  const txSlot = (gref: number, offset: number, flags: number, id: number, size: number) => {
    const s = tx + 64 + (txProd & 255) * 12;
    mem.write32(s, gref);
    mem.write16(s + 4, offset);
    mem.write16(s + 6, flags);
    mem.write16(s + 8, id);
    mem.write16(s + 10, size);
    txProd++;
  };
  const txExtra = (more: boolean) => {
    const s = tx + 64 + (txProd & 255) * 12;
    mem.fill(s, 12, 0);
    mem.write8(s, 1); // XEN_NETIF_EXTRA_TYPE_GSO
    mem.write8(s + 1, more ? 1 : 0);
    txProd++;
  };
  const txPush = () => {
    mem.write32(tx, txProd);
    onNotify!();
  };
  const txResponses = () => {
    const out: { id: number; status: number }[] = [];
    const prod = mem.read32(tx + 8);
    while (txCons !== prod) {
      const s = tx + 64 + (txCons & 255) * 12;
      out.push({ id: mem.read16(s), status: (mem.read16(s + 2) << 16) >> 16 });
      txCons++;
    }
    return out;
  };
  const postRx = (n: number) => {
    for (let i = 0; i < n; i++) {
      const s = rx + 64 + (rxProd & 255) * 8;
      mem.write16(s, 100 + (rxProd % 8));
      mem.write32(s + 4, 7 + (rxProd % 8));
      rxProd++;
    }
    mem.write32(rx, rxProd);
    onNotify?.();
  };
  const rxResponses = () => {
    const out: { id: number; flags: number; status: number; data: Uint8Array }[] = [];
    const prod = mem.read32(rx + 8);
    while (rxCons !== prod) {
      const s = rx + 64 + (rxCons & 255) * 8;
      const id = mem.read16(s);
      const status = (mem.read16(s + 6) << 16) >> 16;
      const page = mem.mfnToOffset(7 + (id - 100));
      out.push({ id, flags: mem.read16(s + 4), status, data: mem.readBytes(page, Math.max(status, 0)) });
      rxCons++;
    }
    return out;
  };
  const putData = (mfn: number, off: number, data: Uint8Array) =>
    mem.writeBytes(mem.mfnToOffset(mfn) + off, data);
  return {
    mem,
    xs,
    nb,
    live,
    connect,
    txSlot,
    txExtra,
    txPush,
    txResponses,
    postRx,
    rxResponses,
    putData,
    notifies: () => notifies,
  };
}

function arpRequest(): Uint8Array {
  const f = new Uint8Array(42);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(GUEST_MAC, 22);
  f.set(GUEST_IP, 28);
  f.set(GW_IP, 38);
  return f;
}

function pingRequest(payload: number): Uint8Array {
  const ipLen = 20 + 8 + payload;
  const f = new Uint8Array(14 + ipLen);
  f.set(GATEWAY_MAC, 0);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x00], 12);
  f.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0], 14);
  f.set(GUEST_IP, 26);
  f.set(GW_IP, 30);
  const hc = checksum(f, 14, 20);
  f[24] = hc >> 8;
  f[25] = hc & 0xff;
  f.set([8, 0, 0, 0, 0x12, 0x34, 0, 1], 34);
  for (let i = 0; i < payload; i++) f[42 + i] = i & 0xff;
  const ic = checksum(f, 34, 8 + payload);
  f[36] = ic >> 8;
  f[37] = ic & 0xff;
  return f;
}

describe('dom0 netback', () => {
  it('creates the vif directories and connects when the frontend is Connected', () => {
    const t = setup();
    assert.equal(t.xs.read(`${BE}/state`), '2');
    assert.equal(t.xs.read(`${BE}/feature-rx-copy`), '1');
    assert.equal(t.xs.read(`${FE}/mac`), '00:16:3e:00:00:01');
    assert.equal(t.xs.read(`${FE}/backend`), BE);
    assert.deepEqual(t.xs.getPerms(FE), ['n1', 'r0']);
    t.connect();
    assert.equal(t.xs.read(`${BE}/state`), '4');
    assert.ok(t.nb.connected);
  });

  it('answers ARP for the gateway and ping through the rings', () => {
    const t = setup();
    t.connect();
    const sent: Uint8Array[] = [];
    t.nb.onTransmit((f) => sent.push(f));
    t.putData(3, 100, arpRequest());
    t.txSlot(3, 100, 0, 5, 42);
    t.txPush();
    assert.deepEqual(t.txResponses(), [{ id: 5, status: NETIF_RSP_OKAY }]);
    assert.equal(sent.length, 1);
    // The reply waits until the guest posts receive buffers.
    assert.equal(t.rxResponses().length, 0);
    t.postRx(4);
    const [arp] = t.rxResponses();
    assert.equal(arp.status, 42);
    assert.equal(arp.flags, NETRXF_data_validated);
    assert.deepEqual([...arp.data.subarray(0, 6)], GUEST_MAC);
    assert.equal((arp.data[20] << 8) | arp.data[21], 2); // ARP reply
    assert.deepEqual([...arp.data.subarray(22, 28)], [...GATEWAY_MAC]);
    assert.deepEqual([...arp.data.subarray(28, 32)], GW_IP);
    // Ping, split over two slots (first slot's size is the whole packet).
    const ping = pingRequest(100);
    t.putData(4, 4000, ping.subarray(0, 96));
    t.putData(5, 0, ping.subarray(96));
    t.txSlot(4, 4000, NETTXF_more_data, 6, ping.length);
    t.txSlot(5, 0, 0, 7, ping.length - 96);
    t.txPush();
    assert.deepEqual(t.txResponses(), [
      { id: 6, status: NETIF_RSP_OKAY },
      { id: 7, status: NETIF_RSP_OKAY },
    ]);
    const [reply] = t.rxResponses();
    assert.equal(reply.status, ping.length);
    const r = reply.data;
    assert.equal(r[34], 0); // echo reply
    assert.deepEqual([...r.subarray(26, 30)], GW_IP);
    assert.deepEqual([...r.subarray(30, 34)], GUEST_IP);
    assert.equal(checksum(r, 14, 20), 0);
    assert.equal(checksum(r, 34, ping.length - 34), 0);
    assert.deepEqual([...r.subarray(42)], [...ping.subarray(42)]);
    assert.ok(t.notifies() > 0);
    assert.equal(t.nb.stats.txPackets, 2);
    assert.equal(t.live.size, 2); // only the two rings stay mapped
  });

  it('answers extra-info slots with NETIF_RSP_NULL and bad packets with NETIF_RSP_ERROR', () => {
    const t = setup();
    t.connect();
    t.putData(3, 0, arpRequest());
    t.txSlot(3, 0, NETTXF_extra_info, 1, 42);
    t.txExtra(false);
    t.txPush();
    assert.deepEqual(t.txResponses(), [
      { id: 1, status: NETIF_RSP_OKAY },
      { id: 0, status: NETIF_RSP_NULL },
    ]);
    t.txSlot(3, 4090, 0, 2, 42); // crosses the page
    t.txSlot(99, 0, 0, 3, 42); // bad grant
    t.txSlot(3, 0, NETTXF_more_data, 4, 10); // later slots larger than the packet
    t.txSlot(4, 0, 0, 5, 20);
    t.txPush();
    assert.deepEqual(t.txResponses(), [
      { id: 2, status: NETIF_RSP_ERROR },
      { id: 3, status: NETIF_RSP_ERROR },
      { id: 4, status: NETIF_RSP_ERROR },
      { id: 5, status: NETIF_RSP_ERROR },
    ]);
    assert.equal(t.nb.stats.txErrors, 3);
    // A packet whose last slot has not arrived waits.
    t.txSlot(3, 0, NETTXF_more_data, 8, 50);
    t.txPush();
    assert.equal(t.txResponses().length, 0);
    t.txSlot(4, 0, 0, 9, 8);
    t.txPush();
    assert.equal(t.txResponses().length, 2);
  });

  it('delivers injected frames, drops beyond the queue bound, and halts on bogus indexes', () => {
    const t = setup();
    t.connect();
    for (let i = 0; i < 300; i++) t.nb.inject(new Uint8Array(60).fill(i & 0xff));
    assert.equal(t.nb.stats.rxDropped, 300 - 256);
    t.postRx(8);
    const got = t.rxResponses();
    assert.equal(got.length, 8);
    assert.equal(got[0].data[0], 300 - 256);
    t.mem.write32(t.mem.mfnToOffset(TX_RING), 5000);
    assert.doesNotThrow(() => t.nb.kick());
    assert.ok(t.nb.ringHalted);
  });

  it('follows Closed and re-initialisation, and refuses a frontend without rx-copy', () => {
    const t = setup();
    t.connect();
    t.xs.write(`${FE}/state`, '6');
    assert.equal(t.xs.read(`${BE}/state`), '6');
    assert.equal(t.live.size, 0);
    t.xs.write(`${FE}/state`, '1');
    assert.equal(t.xs.read(`${BE}/state`), '2');
    t.xs.write(`${FE}/request-rx-copy`, '0');
    t.xs.write(`${FE}/state`, '4');
    assert.equal(t.xs.read(`${BE}/state`), '5');
    assert.match(t.xs.read(`/local/domain/0/error${BE}/error`) ?? '', /request-rx-copy/);
    t.nb.destroy();
  });
});
