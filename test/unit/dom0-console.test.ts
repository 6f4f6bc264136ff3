import { strict as assert } from 'node:assert';
import { MachineMemory } from '../../engine/memory/machine-memory';
import {
  ConsoleDaemon,
  XENCONS_IN,
  XENCONS_IN_CONS,
  XENCONS_IN_PROD,
  XENCONS_OUT,
  XENCONS_OUT_CONS,
  XENCONS_OUT_PROD,
} from '../../engine/dom0/console';

const dec = new TextDecoder();

function setup() {
  const mem = new MachineMemory(2);
  const off = 4096;
  let notified = 0;
  const con = new ConsoleDaemon({ mem, offset: off }, () => notified++);
  const chunks: string[] = [];
  con.onOutput((d) => chunks.push(dec.decode(d)));
  /** Guest-side write into out[] (like GRUB's/Linux's console writer). */
  const guestWrite = (s: string) => {
    let prod = mem.read32(off + XENCONS_OUT_PROD);
    for (const ch of Buffer.from(s)) {
      mem.write8(off + XENCONS_OUT + (prod & 2047), ch);
      prod = (prod + 1) >>> 0;
    }
    mem.write32(off + XENCONS_OUT_PROD, prod);
  };
  /** Guest-side read of in[] (masked, like Linux's hvc_xen). */
  const guestRead = () => {
    let cons = mem.read32(off + XENCONS_IN_CONS);
    const prod = mem.read32(off + XENCONS_IN_PROD);
    const out: number[] = [];
    while (cons !== prod) {
      out.push(mem.read8(off + XENCONS_IN + (cons & 1023)));
      cons = (cons + 1) >>> 0;
    }
    mem.write32(off + XENCONS_IN_CONS, cons);
    return Buffer.from(out).toString();
  };
  return { mem, off, con, chunks, guestWrite, guestRead, notified: () => notified };
}

describe('dom0 console daemon', () => {
  it('drains out[] on kick so out_cons reaches out_prod, and notifies', () => {
    const t = setup();
    t.guestWrite('Welcome to GRUB!\n');
    t.con.kick();
    assert.equal(t.chunks.join(''), 'Welcome to GRUB!\n');
    assert.equal(t.mem.read32(t.off + XENCONS_OUT_CONS), t.mem.read32(t.off + XENCONS_OUT_PROD));
    assert.equal(t.notified(), 1);
    t.con.kick(); // nothing new: no output, no notification
    assert.equal(t.chunks.length, 1);
    assert.equal(t.notified(), 1);
  });

  it('handles wrap-around of out[] over many writes', () => {
    const t = setup();
    let expect = '';
    for (let i = 0; i < 100; i++) {
      const line = `line ${i} ${'#'.repeat(i % 97)}\n`;
      expect += line;
      t.guestWrite(line);
      if (i % 3 === 0) t.con.kick();
    }
    t.con.kick();
    assert.equal(t.chunks.join(''), expect);
    assert.ok(t.mem.read32(t.off + XENCONS_OUT_PROD) > 2048 * 2);
    assert.equal(dec.decode(t.con.output()), expect);
    assert.equal(t.con.bytesOut, Buffer.byteLength(expect));
  });

  it('feeds input into in[] with wrap-around, queueing what does not fit', () => {
    const t = setup();
    t.con.input('hello');
    assert.equal(t.notified(), 1);
    assert.equal(t.guestRead(), 'hello');
    const big = 'x'.repeat(1500);
    t.con.input(big);
    assert.equal(t.con.pendingInput, 1500 - 1024);
    let got = t.guestRead();
    t.con.kick();
    got += t.guestRead();
    assert.equal(got, big);
    assert.equal(t.con.pendingInput, 0);
    for (let i = 0; i < 50; i++) {
      t.con.input(`cmd${i}\n`);
      assert.equal(t.guestRead(), `cmd${i}\n`);
    }
    assert.ok(t.mem.read32(t.off + XENCONS_IN_PROD) > 1024);
  });

  it('resynchronises corrupt ring indexes without throwing', () => {
    const t = setup();
    t.mem.write32(t.off + XENCONS_OUT_PROD, 100000);
    assert.doesNotThrow(() => t.con.kick());
    assert.equal(t.mem.read32(t.off + XENCONS_OUT_CONS), 100000);
    assert.equal(t.chunks.length, 0);
    t.mem.write32(t.off + XENCONS_IN_PROD, 5000);
    assert.doesNotThrow(() => t.con.input('ab'));
    assert.equal(t.guestRead(), 'ab');
    assert.equal(t.con.log.length, 2);
    // After resync, normal traffic works.
    t.guestWrite('ok');
    t.con.kick();
    assert.equal(t.chunks.join(''), 'ok');
  });

  it('rejects a ring offset that is not a page in memory', () => {
    const mem = new MachineMemory(1);
    assert.throws(() => new ConsoleDaemon({ mem, offset: 4096 }, () => {}), RangeError);
    assert.throws(() => new ConsoleDaemon({ mem, offset: 12 }, () => {}), RangeError);
  });
});
