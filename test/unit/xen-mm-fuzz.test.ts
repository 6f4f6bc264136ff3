import { strict as assert } from 'node:assert';
import { PvMm, type PageInfo } from '../../engine/xen/mm';
import { DOMID_SELF } from '../../engine/xen/types';
import { BOOT, buildBootTables, FakeDomain, mfnOf, pte } from '../helpers/xen-mm-fake';

/** Deterministic generator (LCG, Numerical Recipes constants). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

/**
 * Random sequences of table writes, mmu_update requests, pins and unpins
 * over a pool of frames: nothing may throw, and once every pin is dropped no
 * type or general reference may be left behind (validation failures must
 * unwind exactly what they took).
 */
describe('xen-mm: reference counting survives random operation sequences', () => {
  for (const bits of [64, 32] as const) {
    it(`${bits}-bit: no leaks, no exceptions`, () => {
      const d = new FakeDomain(bits);
      const mm = new PvMm(d);
      buildBootTables(d);
      mm.installXenMappings();
      assert.equal(mm.pin(bits === 64 ? 4 : 3, mfnOf(BOOT.l4)), 0);
      assert.equal(mm.newBaseptr(d.vcpus[0], mfnOf(BOOT.l4)), 0);
      const bootFrames = [BOOT.l4, BOOT.l3, BOOT.l2, BOOT.l1, BOOT.l2x, 5, 6];
      const before = new Map<number, PageInfo>(bootFrames.map((p) => [p, mm.pageInfo(mfnOf(p))]));
      const POOL0 = 256;
      const POOL = 24;
      const r = rng(bits);
      const pick = (n: number): number => r() % n;
      const flagBits = [1, 2, 4, 0x20, 0x40, 0x80, 0x10, 0x100, 0x8];
      const randomEntry = (): bigint => {
        if (pick(8) === 0) return 0n;
        const target = pick(10) === 0 ? bootFrames[pick(bootFrames.length)] : POOL0 + pick(POOL);
        let f = 1;
        for (const b of flagBits) if (pick(b <= 0x40 ? 2 : 12) === 0) f |= b;
        if (pick(6) === 0) f &= ~1;
        const high = pick(20) === 0 ? 1n << 63n : pick(30) === 0 ? 1n << 62n : 0n;
        return pte(target, f, high);
      };
      const pinned = new Set<number>();
      const pinsByLevel = [0, 0, 0, 0, 0];
      for (let step = 0; step < 4000; step++) {
        const pfn = POOL0 + pick(POOL);
        const slot = pick(6) === 0 ? pick(512) : pick(5);
        switch (pick(5)) {
          case 0: {
            // A raw store, as the guest could do through a RW mapping: only to frames not in use as tables.
            const info = mm.pageInfo(mfnOf(pfn));
            if (info.typeCount === 0 || info.type === 'writable') d.setEntry(pfn, slot, randomEntry());
            break;
          }
          case 1: {
            const buf = new Uint8Array(16);
            const dv = new DataView(buf.buffer);
            dv.setBigUint64(0, BigInt(mfnOf(pfn)) * 4096n + BigInt(slot * 8), true);
            dv.setBigUint64(8, randomEntry(), true);
            d.poke(10, 0, buf);
            mm.mmuUpdate(d.vcpus[0], [10n * 4096n, 1n, 0n, BigInt(DOMID_SELF)]);
            break;
          }
          case 2:
          case 3: {
            const level = (1 + pick(bits === 64 ? 4 : 3)) as 1 | 2 | 3 | 4;
            if (mm.pin(level, mfnOf(pfn)) === 0) {
              pinned.add(pfn);
              pinsByLevel[level]++;
            }
            break;
          }
          default:
            if (mm.unpin(mfnOf(pfn)) === 0) pinned.delete(pfn);
        }
      }
      assert.ok(d.rejections.length > 100, 'the sequence exercised refusals');
      assert.ok(pinsByLevel[2] > 0 && pinsByLevel[3] > 0, 'multi-level tables were validated');
      for (const p of [...pinned]) assert.equal(mm.unpin(mfnOf(p)), 0);
      for (let k = 0; k < POOL; k++) {
        const info = mm.pageInfo(mfnOf(POOL0 + k));
        assert.equal(info.typeCount, 0, `pfn ${POOL0 + k} keeps a type reference (${info.type})`);
        assert.equal(info.refCount, 0, `pfn ${POOL0 + k} keeps ${info.refCount} references`);
      }
      for (const p of bootFrames) assert.deepEqual(mm.pageInfo(mfnOf(p)), before.get(p), `boot frame ${p}`);
    });
  }
});

describe('xen-mm: hypercalls with garbage arguments', () => {
  for (const bits of [64, 32] as const) {
    it(`${bits}-bit: every handler returns an errno or 0, never throws`, () => {
      const d = new FakeDomain(bits, 2);
      const mm = new PvMm(d);
      buildBootTables(d);
      mm.installXenMappings();
      assert.equal(mm.pin(bits === 64 ? 4 : 3, mfnOf(BOOT.l4)), 0);
      for (const v of d.vcpus) assert.equal(mm.newBaseptr(v, mfnOf(BOOT.l4)), 0);
      const r = rng(99 + bits);
      const specials = [
        0n,
        1n,
        (1n << 64n) - 1n,
        1n << 63n,
        0x7ff0n,
        0x80000000n,
        10n * 4096n,
        0xffff800000000000n,
      ];
      const word = (): bigint => {
        const k = r() % 4;
        if (k === 0) return specials[r() % specials.length];
        if (k === 1) return BigInt(r() % 64);
        return (BigInt(r()) << 32n) | BigInt(r());
      };
      // Random bytes where pointers may land.
      const junk = new Uint8Array(4096);
      for (let i = 0; i < junk.length; i++) junk[i] = r() & 0xff;
      d.poke(10, 0, junk);
      const handlers = [
        mm.mmuUpdate,
        mm.mmuextOp,
        mm.updateVaMapping,
        mm.updateVaMappingOtherdomain,
        mm.setGdt,
        mm.updateDescriptor,
      ];
      for (let i = 0; i < 3000; i++) {
        const h = handlers[r() % handlers.length];
        const a = [word(), word(), word(), word(), word()];
        if (r() % 3 === 0) a[0] = 10n * 4096n + BigInt(r() % 4000);
        if (r() % 5 === 0) a[1] = BigInt(r() % 8);
        const rc = h.call(mm, d.vcpus[r() % 2], a);
        assert.ok(Number.isInteger(rc) && rc <= 0, `handler returned ${rc}`);
      }
      for (let i = 0; i < 500; i++) {
        const code = new Uint8Array(16).map(() => r() & 0xff);
        d.poke(20, 0, code);
        d.fake(0).state.ripLo = 20 * 4096;
        d.fake(0).state.gprLo[7] = BOOT.l1 * 4096 + (r() % 512) * 8;
        const res = mm.ptwrFault(d.vcpus[0], BigInt(BOOT.l1 * 4096 + (r() % 4096)), 3);
        assert.equal(typeof res, 'boolean');
      }
    });
  }
});
