/**
 * A guest-side XenStore client for tests: speaks xsd_sockmsg over a real
 * xenstore ring page in MachineMemory, connected to a Xenstored.
 */
import { strict as assert } from 'node:assert';
import { MachineMemory } from '../../engine/memory/machine-memory';
import {
  Xenstored,
  XS_RING_REQ_CONS,
  XS_RING_REQ_PROD,
  XS_RING_RSP_CONS,
  XS_RING_RSP_PROD,
  XS_WATCH_EVENT,
} from '../../engine/dom0/xenstored';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Msg {
  type: number;
  reqId: number;
  txId: number;
  body: Uint8Array;
  text: string;
}

/** A guest-side xenstore client over a real ring page in MachineMemory. */
export class RingClient {
  readonly mem = new MachineMemory(4);
  readonly off = 2 * 4096;
  readonly xs: Xenstored;
  readonly conn: { kick(): void };
  notifications = 0;
  private reqId = 100;
  constructor(
    xs: Xenstored,
    readonly domid = 1,
  ) {
    this.xs = xs;
    this.conn = xs.connect(domid, { mem: this.mem, offset: this.off }, () => this.notifications++);
  }
  u32(field: number): number {
    return this.mem.read32(this.off + field);
  }
  set32(field: number, v: number): void {
    this.mem.write32(this.off + field, v >>> 0);
  }
  /** Puts raw bytes into req[] (no kick). Returns bytes written. */
  putRaw(bytes: Uint8Array): number {
    const cons = this.u32(XS_RING_REQ_CONS);
    let prod = this.u32(XS_RING_REQ_PROD);
    let n = 0;
    while (n < bytes.length && (prod - cons) >>> 0 < 1024) {
      this.mem.write8(this.off + (prod & 1023), bytes[n++]);
      prod = (prod + 1) >>> 0;
    }
    this.set32(XS_RING_REQ_PROD, prod);
    return n;
  }
  encode(type: number, body: Uint8Array | string, txId = 0, reqId = this.reqId++): Uint8Array {
    const b = typeof body === 'string' ? enc.encode(body) : body;
    const m = new Uint8Array(16 + b.length);
    const dv = new DataView(m.buffer);
    dv.setUint32(0, type, true);
    dv.setUint32(4, reqId, true);
    dv.setUint32(8, txId, true);
    dv.setUint32(12, b.length, true);
    m.set(b, 16);
    return m;
  }
  /** Reads every complete message in rsp[]. */
  take(): Msg[] {
    const out: Msg[] = [];
    while (true) {
      const cons = this.u32(XS_RING_RSP_CONS);
      const prod = this.u32(XS_RING_RSP_PROD);
      const avail = (prod - cons) >>> 0;
      if (avail < 16) break;
      const peek = (i: number) => this.mem.read8(this.off + 0x400 + ((cons + i) & 1023));
      const hdr = new Uint8Array(16);
      for (let i = 0; i < 16; i++) hdr[i] = peek(i);
      const dv = new DataView(hdr.buffer);
      const len = dv.getUint32(12, true);
      if (avail < 16 + len) break;
      const body = new Uint8Array(len);
      for (let i = 0; i < len; i++) body[i] = peek(16 + i);
      this.set32(XS_RING_RSP_CONS, cons + 16 + len);
      out.push({
        type: dv.getUint32(0, true),
        reqId: dv.getUint32(4, true),
        txId: dv.getUint32(8, true),
        body,
        text: dec.decode(body),
      });
    }
    return out;
  }
  /** Sends one request, kicks, returns all messages that arrived. */
  call(type: number, body: Uint8Array | string, txId = 0): Msg[] {
    let msg = this.encode(type, body, txId);
    const out: Msg[] = [];
    // Feed as much as fits, kick, repeat (like a guest waiting for ring space).
    for (let guard = 0; guard < 20; guard++) {
      const n = this.putRaw(msg);
      msg = msg.subarray(n);
      this.conn.kick();
      out.push(...this.take());
      if (msg.length === 0) break;
    }
    return out;
  }
  /** Sends one request and returns its reply (the last non-event message). */
  req(type: number, body: Uint8Array | string, txId = 0): Msg {
    const msgs = this.call(type, body, txId).filter((m) => m.type !== XS_WATCH_EVENT);
    assert.equal(msgs.length, 1, `expected one reply, got ${msgs.length}`);
    return msgs[0];
  }
}
