import { strict as assert } from 'node:assert';
import {
  PvMm,
  MMU_MACHPHYS_UPDATE,
  MMU_NORMAL_PT_UPDATE,
  MMUEXT_NEW_BASEPTR,
  MMUEXT_PIN_L1_TABLE,
  MMUEXT_PIN_L3_TABLE,
  MMUEXT_PIN_L4_TABLE,
  MMUEXT_SET_LDT,
  MMUEXT_UNPIN_TABLE,
  MMUEXT_FLUSH_CACHE,
  MMUEXT_MARK_SUPER,
  MMUEXT_TLB_FLUSH_MULTI,
  UVMF_INVLPG,
  UVMF_TLB_FLUSH,
  UVMF_ALL,
} from '../../engine/xen/mm';
import { EBUSY, EFAULT, EINVAL, EPERM, ESRCH, EACCES, EOPNOTSUPP, ENOSYS } from '../../engine/xen/errno';
import { DOMID_SELF, VMASST_TYPE_writable_pagetables, VMASST_TYPE_m2p_strict } from '../../engine/xen/types';
import {
  A,
  BOOT,
  buildBootTables,
  D,
  DOM0_MFN0,
  FakeDomain,
  G,
  mfnOf,
  P,
  PCD,
  PSE,
  pte,
  PWT,
  RW,
  US,
} from '../helpers/xen-mm-fake';

const GK = 1n << 52n; // _PAGE_GUEST_KERNEL
const NX = 1n << 63n;
/** Guest page (identity mapped, RW) used for hypercall argument buffers. */
const ARG_PFN = 10;
const ARG_VA = BigInt(ARG_PFN * 4096);

function setup(bits: 32 | 64, nvcpus = 1): { d: FakeDomain; mm: PvMm } {
  const d = new FakeDomain(bits, nvcpus);
  const mm = new PvMm(d);
  const root = buildBootTables(d);
  mm.installXenMappings();
  assert.equal(mm.pin(bits === 64 ? 4 : 3, mfnOf(root)), 0, d.lastReason());
  for (const v of d.vcpus) assert.equal(mm.newBaseptr(v, mfnOf(root)), 0, d.lastReason());
  return { d, mm };
}

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/** Writes mmu_update requests at ARG_VA; returns the hypercall args. */
function mmuReqs(d: FakeDomain, reqs: [bigint, bigint][], done = true): bigint[] {
  const buf = new Uint8Array(reqs.length * 16 + 8);
  const dv = new DataView(buf.buffer);
  reqs.forEach(([ptr, val], i) => {
    dv.setBigUint64(i * 16, BigInt.asUintN(64, ptr), true);
    dv.setBigUint64(i * 16 + 8, BigInt.asUintN(64, val), true);
  });
  d.poke(ARG_PFN, 0, buf);
  return [ARG_VA, BigInt(reqs.length), done ? ARG_VA + 0x800n : 0n, BigInt(DOMID_SELF)];
}

function doneCount(d: FakeDomain): number {
  return Number(d.mem.read32(d.mem.mfnToOffset(mfnOf(ARG_PFN)) + 0x800));
}

/** Writes mmuext ops at ARG_VA + 0x400. */
function extOps(d: FakeDomain, ops: [number, bigint, bigint][]): bigint[] {
  const size = d.bits === 64 ? 24 : 12;
  const buf = new Uint8Array(ops.length * size);
  const dv = new DataView(buf.buffer);
  ops.forEach(([cmd, a1, a2], i) => {
    dv.setUint32(i * size, cmd, true);
    if (d.bits === 64) {
      dv.setBigUint64(i * size + 8, a1, true);
      dv.setBigUint64(i * size + 16, a2, true);
    } else {
      dv.setUint32(i * size + 4, Number(a1), true);
      dv.setUint32(i * size + 8, Number(a2), true);
    }
  });
  d.poke(ARG_PFN, 0x400, buf);
  return [ARG_VA + 0x400n, BigInt(ops.length), ARG_VA + 0x800n, BigInt(DOMID_SELF)];
}

/** Machine address of entry `slot` of guest frame `pfn`. */
function eaddr(pfn: number, slot: number): bigint {
  return BigInt(mfnOf(pfn)) * 4096n + BigInt(slot * 8);
}

function uvm(d: FakeDomain, va: bigint, val: bigint, flags: bigint): bigint[] {
  return d.bits === 64 ? [va, val, flags] : [va, val & 0xffffffffn, val >> 32n, flags];
}

describe('xen-mm: PV MMU (page types, validation, hypercalls)', () => {
  for (const bits of [64, 32] as const) {
    describe(`${bits}-bit guest`, () => {
      it('pins the bootstrap root recursively with type and reference counts', () => {
        const { d, mm } = setup(bits);
        const root = mm.pageInfo(mfnOf(BOOT.l4));
        assert.equal(root.type, bits === 64 ? 'l4' : 'l3');
        assert.equal(root.pinned, true);
        assert.equal(root.typeCount, 2); // pin + base pointer
        if (bits === 64) {
          // One reference from the L4 entry, one from its read-only mapping in the L1.
          assert.deepEqual(mm.pageInfo(mfnOf(BOOT.l3)), {
            type: 'l3',
            typeCount: 1,
            pinned: false,
            refCount: 2,
          });
        } else {
          assert.equal(mm.pageInfo(mfnOf(BOOT.l2x)).type, 'l2');
        }
        assert.equal(mm.pageInfo(mfnOf(BOOT.l2)).type, 'l2');
        assert.equal(mm.pageInfo(mfnOf(BOOT.l1)).type, 'l1');
        const data = mm.pageInfo(mfnOf(5));
        assert.equal(data.type, 'writable');
        assert.equal(data.typeCount, 1);
        assert.equal(data.refCount, 1);
        assert.equal(d.rejections.length, 0);
      });

      it('pins and unpins a standalone L1, releasing references', () => {
        const { d, mm } = setup(bits);
        d.setEntry(300, 0, pte(301, P | RW | A));
        d.setEntry(300, 1, pte(302, P | A));
        assert.equal(mm.pin(1, mfnOf(300)), 0);
        assert.deepEqual(mm.pageInfo(mfnOf(300)), { type: 'l1', typeCount: 1, pinned: true, refCount: 1 });
        assert.equal(mm.pageInfo(mfnOf(301)).type, 'writable');
        assert.equal(mm.pageInfo(mfnOf(301)).typeCount, 1);
        assert.equal(mm.pageInfo(mfnOf(302)).refCount, 1);
        assert.equal(mm.pin(1, mfnOf(300)), -EINVAL);
        assert.match(d.lastReason(), /already pinned/);
        assert.equal(mm.unpin(mfnOf(300)), 0);
        assert.equal(mm.pageInfo(mfnOf(300)).typeCount, 0);
        assert.equal(mm.pageInfo(mfnOf(301)).typeCount, 0);
        assert.equal(mm.pageInfo(mfnOf(302)).refCount, 0);
        assert.equal(mm.unpin(mfnOf(300)), -EINVAL);
        assert.match(d.lastReason(), /not pinned/);
      });

      it('refuses to pin a frame the domain does not own', () => {
        const { d, mm } = setup(bits);
        assert.equal(mm.pin(1, DOM0_MFN0), -EINVAL);
        assert.match(d.lastReason(), /bad owner/);
      });

      it('refuses a RW mapping of a page-table frame (-EBUSY)', () => {
        const { d, mm } = setup(bits);
        const r = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 20), pte(BOOT.l1, P | RW | A)]]));
        assert.equal(r, -EBUSY);
        assert.match(d.lastReason(), /Error getting mfn/);
        assert.match(d.lastReason(), /PGT_writable_page/);
        assert.equal(doneCount(d), 0);
      });

      it('refuses to validate a table that is mapped writable', () => {
        const { d, mm } = setup(bits);
        // pfn 5 is mapped RW by the bootstrap L1.
        assert.equal(mm.pin(1, mfnOf(5)), -EINVAL);
        assert.match(d.lastReason(), /Bad type \(saw writable != exp l1\)/);
      });

      it('refuses foreign and MMIO frames in L1 entries', () => {
        const { d, mm } = setup(bits);
        const foreign = (BigInt(DOM0_MFN0) << 12n) | BigInt(P | A);
        assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300), foreign]])), -EBUSY);
        assert.match(d.lastReason(), /real_pg_owner d0/);
        const mmio = (0x900000n << 12n) | BigInt(P | A);
        assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300), mmio]])), -EPERM);
        assert.match(d.lastReason(), /non-privileged attempt to map MMIO space/);
      });

      it('refuses PWT/PCD/PAT in a domU L1 and PSE in an L2', () => {
        const { d, mm } = setup(bits);
        for (const [flag, hexs] of [
          [PWT, '0x8'],
          [PCD, '0x10'],
          [PSE, '0x80'],
        ] as const) {
          const r = mm.mmuUpdate(
            d.vcpus[0],
            mmuReqs(d, [[eaddr(BOOT.l1, 300), pte(300, P | RW | A | flag)]]),
          );
          assert.equal(r, -EINVAL);
          assert.ok(d.lastReason().includes(`Bad L1 flags ${hexs}`), d.lastReason());
        }
        // Grant bit (62) is refused in L1s; NX is allowed.
        assert.equal(
          mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300), pte(300, P | A, 1n << 62n)]])),
          -EINVAL,
        );
        if (bits === 64) {
          assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300), pte(300, P | A, NX)]])), 0);
        }
        const r = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l2, 5), pte(0, P | RW | US | PSE)]]));
        assert.equal(r, -EINVAL);
        assert.match(d.lastReason(), /Bad L2 flags 0x80/);
      });

      it('applies the guest-visible rewrites of validated entries', () => {
        const { d } = setup(bits);
        if (bits === 64) {
          // Kernel mapping (no US) gains US + bit 52.
          assert.equal(d.getEntry(BOOT.l1, 5), pte(5, P | RW | A | US, GK));
          assert.equal(d.getEntry(BOOT.l2, 0), pte(BOOT.l1, P | RW | A | D | US));
          assert.equal(d.getEntry(BOOT.l4, 0) & 0xfffn, BigInt(P | RW | A | D | US));
          // Xen's slots: RO M2P at 256 (user, read-only), per-domain at 260.
          const m2pe = d.getEntry(BOOT.l4, 256);
          assert.equal(m2pe & 7n, BigInt(P | US));
          assert.notEqual(d.getEntry(BOOT.l4, 260), 0n);
        } else {
          // 32-bit: L1 entries stored as written; L3 entries gain US|RW.
          assert.equal(d.getEntry(BOOT.l1, 5), pte(5, P | RW | A));
          assert.equal(d.getEntry(BOOT.l4, 0), pte(BOOT.l2, P | RW | US));
          // Xen's slots of the L2 under L3[3].
          assert.notEqual(d.getEntry(BOOT.l2x, 428), 0n);
          assert.notEqual(d.getEntry(BOOT.l2x, 511), 0n);
        }
      });

      it('stops mmu_update at the first failure and reports done', () => {
        const { d, mm } = setup(bits);
        const r = mm.mmuUpdate(
          d.vcpus[0],
          mmuReqs(d, [
            [eaddr(BOOT.l1, 300), pte(300, P | RW | A | US)],
            [eaddr(BOOT.l1, 301), pte(301, P | RW | A | PCD)],
            [eaddr(BOOT.l1, 302), pte(302, P | RW | A)],
          ]),
        );
        assert.equal(r, -EINVAL);
        assert.equal(doneCount(d), 1);
        assert.equal(d.getEntry(BOOT.l1, 300) & 0xfffn, BigInt(P | RW | A | US | (bits === 64 ? G : 0)));
        assert.equal(d.getEntry(BOOT.l1, 302), 0n);
        assert.match(d.lastReason(), /mmu_update request 1/);
      });

      it('handles MMU_MACHPHYS_UPDATE ownership', () => {
        const { d, mm } = setup(bits);
        assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[BigInt(mfnOf(7)) * 4096n + 1n, 0x77n]])), 0);
        assert.equal(d.m2p(mfnOf(7)), 0x77);
        const r = mm.mmuUpdate(
          d.vcpus[0],
          mmuReqs(d, [[BigInt(DOM0_MFN0) * 4096n + BigInt(MMU_MACHPHYS_UPDATE), 1n]]),
        );
        assert.equal(r, -EINVAL);
        assert.match(d.lastReason(), /mach->phys/);
      });

      it('rejects unknown commands and foreign domains in mmu_update', () => {
        const { d, mm } = setup(bits);
        assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300) + 5n, 0n]])), -ENOSYS);
        const args = mmuReqs(d, [[eaddr(BOOT.l1, 300), 0n]]);
        args[3] = 0n;
        assert.equal(mm.mmuUpdate(d.vcpus[0], args), -EPERM);
        args[3] = 7n;
        assert.equal(mm.mmuUpdate(d.vcpus[0], args), -ESRCH);
        args[3] = 1n; // its own numeric id
        assert.equal(mm.mmuUpdate(d.vcpus[0], args), -ESRCH);
        const bad = [0xdead0000n, 1n, 0n, BigInt(DOMID_SELF)];
        assert.equal(mm.mmuUpdate(d.vcpus[0], bad), -EFAULT);
      });

      it('refuses writes to Xen slots', () => {
        const { d, mm } = setup(bits);
        if (bits === 64) {
          const r = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l4, 256), pte(300, P | US)]]));
          assert.equal(r, -EINVAL);
          assert.match(d.lastReason(), /L4 update in Xen-private area, slot 0x100/);
        } else {
          const r = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l2x, 428), 0n]]));
          assert.equal(r, -EPERM);
          assert.match(d.lastReason(), /L2 update in Xen-private area/);
          const r3 = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l4, 3), 0n]]));
          assert.equal(r3, -EINVAL);
        }
      });

      it('refuses NEW_BASEPTR of an invalid table', () => {
        const { d, mm } = setup(bits);
        d.setEntry(310, 0, pte(311, P | RW | PCD)); // bad flags for any level
        d.setEntry(310, 3, pte(312, P));
        const r = mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_NEW_BASEPTR, BigInt(mfnOf(310)), 0n]]));
        assert.equal(r, -EINVAL);
        assert.match(d.lastReason(), /installing new/);
        assert.equal(d.vcpus[0].kernelRootMfn, mfnOf(BOOT.l4));
        assert.equal(mm.pageInfo(mfnOf(310)).typeCount, 0);
      });

      it('implements the flush/privilege/unknown mmuext commands', () => {
        const { d, mm } = setup(bits, 2);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_FLUSH_CACHE, 0n, 0n]])), -EACCES);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_MARK_SUPER, 0n, 0n]])), -EOPNOTSUPP);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[99, 0n, 0n]])), -ENOSYS);
        d.poke(ARG_PFN, 0x900, u64le(2n)); // vcpu 1 only
        const before = [d.fake(0).flushes, d.fake(1).flushes];
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_TLB_FLUSH_MULTI, 0n, ARG_VA + 0x900n]])), 0);
        assert.equal(d.fake(0).flushes, before[0]);
        assert.equal(d.fake(1).flushes, before[1] + 1);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_TLB_FLUSH_MULTI, 0n, 0xdead000n]])), -EINVAL);
      });

      it('handles update_va_mapping flush flags', () => {
        const { d, mm } = setup(bits, 2);
        const va = 300n * 4096n;
        assert.equal(
          mm.updateVaMapping(d.vcpus[0], uvm(d, va, pte(300, P | RW | A), BigInt(UVMF_INVLPG))),
          0,
        );
        assert.deepEqual(d.fake(0).flushedPages.slice(-1), [va]);
        assert.equal(d.fake(1).flushedPages.includes(va), false);
        const f0 = d.fake(0).flushes;
        const f1 = d.fake(1).flushes;
        assert.equal(
          mm.updateVaMapping(d.vcpus[0], uvm(d, va, pte(301, P | A), BigInt(UVMF_TLB_FLUSH | UVMF_ALL))),
          0,
        );
        assert.equal(d.fake(0).flushes, f0 + 1);
        assert.equal(d.fake(1).flushes, f1 + 1);
        assert.equal(mm.pageInfo(mfnOf(300)).typeCount, 0); // old RW mapping released
        d.poke(ARG_PFN, 0x900, u64le(2n));
        assert.equal(
          mm.updateVaMapping(d.vcpus[0], uvm(d, va, 0n, BigInt(UVMF_INVLPG) | (ARG_VA + 0x900n))),
          0,
        );
        assert.ok(d.fake(1).flushedPages.includes(va));
        assert.equal(
          mm.updateVaMapping(d.vcpus[0], uvm(d, va, 0n, BigInt(UVMF_INVLPG) | 0xdead000n)),
          -EFAULT,
        );
        // No L1 for the address.
        const far = bits === 64 ? 0x40000000000n : 0x40000000n;
        assert.equal(mm.updateVaMapping(d.vcpus[0], uvm(d, far, 0n, 0n)), -EINVAL);
        assert.match(d.lastReason(), /no L1 table/);
      });

      it('accepts read-only linear page tables and refuses writable ones', () => {
        const { d, mm } = setup(bits);
        if (bits === 64) {
          const ro = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l4, 100), pte(BOOT.l4, P | US)]]));
          assert.equal(ro, 0, d.lastReason());
          const rw = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l4, 101), pte(BOOT.l4, P | RW | US)]]));
          assert.equal(rw, -EINVAL);
          assert.match(d.lastReason(), /Attempt to create linear p.t. with write perms/);
        } else {
          const rw = mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l2, 100), pte(BOOT.l2, P | RW)]]));
          assert.equal(rw, -EINVAL);
          assert.match(d.lastReason(), /Attempt to create linear p.t. with write perms/);
          assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l2, 100), pte(BOOT.l2, P)]])), 0);
        }
      });

      it('maps the read-only M2P and the GDT window in the hole', () => {
        const { d } = setup(bits);
        const cpu = d.fake(0);
        const mfn = mfnOf(33);
        const va = bits === 64 ? 0xffff800000000000n + BigInt(mfn) * 8n : 0xf5800000n + BigInt(mfn) * 4n;
        const off = cpu.translate(Number(va & 0xffffffffn) | 0, Number(va >> 32n) | 0, 0, bits === 64, false);
        assert.ok(off >= 0, 'M2P entry readable');
        assert.equal(d.mem.read32(off), 33);
        assert.equal(
          cpu.translate(Number(va & 0xffffffffn) | 0, Number(va >> 32n) | 0, 1, bits === 64, false),
          -1,
        );
        // GDTR points at the window; Xen's flat kernel CS is readable there.
        const st = cpu.state;
        const gdtr = (BigInt(st.gdtrBaseHi >>> 0) << 32n) | BigInt(st.gdtrBaseLo >>> 0);
        assert.equal(st.gdtrLimit, 0xefff);
        const cs = bits === 64 ? 0xe033 : 0xe019;
        const dva = gdtr + BigInt(cs & ~7);
        const doff = cpu.translate(Number(dva & 0xffffffffn) | 0, Number(dva >> 32n) | 0, 0, false, false);
        assert.ok(doff >= 0);
        assert.equal(d.mem.read64Big(doff), bits === 64 ? 0x00affb000000ffffn : 0x00cfbb000000ffffn);
        if (bits === 64) {
          // Supervisor only: a user (CPL 3) access faults.
          assert.equal(
            cpu.translate(Number(dva & 0xffffffffn) | 0, Number(dva >> 32n) | 0, 0, true, false),
            -1,
          );
        }
      });

      it('set_gdt: refuses writable frames, installs read-only descriptor frames', () => {
        const { d, mm } = setup(bits);
        d.poke(ARG_PFN, 0x900, u64le(BigInt(mfnOf(5)))); // pfn 5 is mapped RW
        assert.equal(mm.setGdt(d.vcpus[0], [ARG_VA + 0x900n, 16n]), -EINVAL);
        assert.match(d.lastReason(), /set_gdt/);
        // pfn 320: not mapped anywhere; a DPL0 data descriptor gets its DPL raised.
        d.setEntry(320, 2, 0x00cf93000000ffffn);
        d.poke(ARG_PFN, 0x900, u64le(BigInt(mfnOf(320))));
        assert.equal(mm.setGdt(d.vcpus[0], [ARG_VA + 0x900n, 16n]), 0, d.lastReason());
        assert.equal(mm.pageInfo(mfnOf(320)).type, 'seg_desc');
        assert.deepEqual(d.vcpus[0].gdtFrames, [mfnOf(320)]);
        const dpl = bits === 64 ? 3n : 1n;
        assert.equal((d.getEntry(320, 2) >> 45n) & 3n, dpl);
        // Readable through the window.
        const st = d.fake(0).state;
        const gdtr = (BigInt(st.gdtrBaseHi >>> 0) << 32n) | BigInt(st.gdtrBaseLo >>> 0);
        const off = d
          .fake(0)
          .translate(
            Number((gdtr + 16n) & 0xffffffffn) | 0,
            Number((gdtr + 16n) >> 32n) | 0,
            0,
            false,
            false,
          );
        assert.equal(d.mem.read64Big(off), d.getEntry(320, 2));
        // A RW mapping of the GDT frame is now refused.
        assert.equal(mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, 300), pte(320, P | RW)]])), -EBUSY);
        // Too many entries.
        assert.equal(mm.setGdt(d.vcpus[0], [ARG_VA + 0x900n, 7169n]), -EINVAL);
      });

      it('update_descriptor: alignment, descriptor checks, rewrite', () => {
        const { d, mm } = setup(bits);
        const maddr = BigInt(mfnOf(321)) * 4096n + 8n;
        const call = (ma: bigint, desc: bigint): number =>
          bits === 64
            ? mm.updateDescriptor(d.vcpus[0], [ma, desc])
            : mm.updateDescriptor(d.vcpus[0], [ma & 0xffffffffn, ma >> 32n, desc & 0xffffffffn, desc >> 32n]);
        assert.equal(call(maddr + 4n, 0x00cf93000000ffffn), -EINVAL);
        assert.match(d.lastReason(), /aligned/);
        assert.equal(call(maddr, 0x0000890000000067n), -EINVAL); // present TSS
        assert.match(d.lastReason(), /descriptor refused/);
        if (bits === 32) assert.equal(call(maddr, 0x00af9b000000ffffn), -EINVAL); // L bit
        assert.equal(call(maddr, 0x00cf93000000ffffn), 0);
        assert.equal((d.getEntry(321, 1) >> 45n) & 3n, bits === 64 ? 3n : 1n);
        // A frame in use as a page table is refused.
        assert.equal(call(BigInt(mfnOf(BOOT.l1)) * 4096n, 0n), -EINVAL);
      });

      it('SET_LDT: alignment and entry limits, LDTR loaded', () => {
        const { d, mm } = setup(bits);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_SET_LDT, 0x20010n, 4n]])), -EINVAL);
        assert.match(d.lastReason(), /Bad args to SET_LDT/);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_SET_LDT, 0x20000n, 8193n]])), -EINVAL);
        assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_SET_LDT, 0x20000n, 16n]])), 0);
        assert.equal(d.vcpus[0].ldtBase, 0x20000n);
        assert.equal(d.vcpus[0].ldtEnts, 16);
        assert.deepEqual(d.fake(0).ldtr, { sel: 0xe050, baseLo: 0x20000, baseHi: 0, limit: 127, attr: 0x82 });
      });

      it('emulates a direct PTE store (ptwr) and refuses an invalid one', () => {
        const { d, mm } = setup(bits);
        d.enableAssist(VMASST_TYPE_writable_pagetables);
        const v = d.vcpus[0];
        const st = d.fake(0).state;
        const l1va = BigInt(BOOT.l1 * 4096);
        // mov [edi], eax (32-bit: high half first then low half); 64-bit: mov [rdi], rax.
        const code = bits === 64 ? [0x48, 0x89, 0x07] : [0x89, 0x07];
        d.poke(20, 0, Uint8Array.from(code));
        st.ripLo = 20 * 4096;
        st.ripHi = 0;
        const slot = 300;
        const val = pte(300, P | RW | A);
        if (bits === 64) {
          st.gprLo[7] = Number((l1va + BigInt(slot * 8)) & 0xffffffffn);
          st.gprLo[0] = Number(val & 0xffffffffn) | 0;
          st.gprHi[0] = Number(val >> 32n) | 0;
          assert.equal(mm.ptwrFault(v, l1va + BigInt(slot * 8), 3), true, d.lastReason());
          assert.equal(st.ripLo, 20 * 4096 + 3);
          assert.equal(d.getEntry(BOOT.l1, slot), val | BigInt(US) | GK);
        } else {
          st.gprLo[7] = Number(l1va) + slot * 8;
          st.gprLo[0] = Number(val & 0xffffffffn) | 0;
          assert.equal(mm.ptwrFault(v, l1va + BigInt(slot * 8), 3), true, d.lastReason());
          assert.equal(st.ripLo, 20 * 4096 + 2);
          assert.equal(d.getEntry(BOOT.l1, slot), val);
        }
        assert.equal(mm.pageInfo(mfnOf(300)).typeCount, 1);
        // Invalid: a RW mapping of the L1 itself -> not emulated, #PF goes to the guest.
        st.ripLo = 20 * 4096;
        const bad = pte(BOOT.l1, P | RW | A);
        st.gprLo[0] = Number(bad & 0xffffffffn) | 0;
        st.gprHi[0] = Number(bad >> 32n) | 0;
        st.gprLo[7] = Number(l1va) + 301 * 8;
        const n = d.rejections.length;
        assert.equal(mm.ptwrFault(v, l1va + 301n * 8n, 3), false);
        assert.equal(d.rejections.length, n + 1);
        assert.match(d.lastReason(), /ptwr_emulate/);
        assert.equal(d.getEntry(BOOT.l1, 301), 0n);
        assert.equal(st.ripLo, 20 * 4096);
        // Without the VMASST nothing is emulated.
        const d2 = setup(bits);
        assert.equal(d2.mm.ptwrFault(d2.d.vcpus[0], l1va, 3), false);
      });

      it(`runs GRUB's map_all_pages sequence (${bits}-bit)`, () => {
        const { d, mm } = setup(bits);
        const v = d.vcpus[0];
        // a. swap two frames' M2P entries (console and xenstore rings).
        const r1 = mm.mmuUpdate(
          v,
          mmuReqs(d, [
            [BigInt(mfnOf(30)) * 4096n + 1n, 511n],
            [BigInt(mfnOf(511)) * 4096n + 1n, 30n],
            [BigInt(mfnOf(31)) * 4096n + 1n, 510n],
            [BigInt(mfnOf(510)) * 4096n + 1n, 31n],
          ]),
        );
        assert.equal(r1, 0, d.lastReason());
        assert.equal(doneCount(d), 4);
        // b. new tables in frames 400-404, each filled through the window page (pfn 40).
        const win = 40n * 4096n;
        const NEW = { root: 400, l3: 401, l2: 402, l1: 403, l2x: 404 };
        const newTables = bits === 64 ? [400, 401, 402, 403] : [400, 402, 403, 404];
        const oldTables =
          bits === 64 ? [BOOT.l4, BOOT.l3, BOOT.l2, BOOT.l1] : [BOOT.l4, BOOT.l2, BOOT.l1, BOOT.l2x];
        const up = bits === 64 ? P | RW | US : P | RW;
        for (const t of newTables) {
          assert.equal(
            mm.updateVaMapping(v, uvm(d, win, pte(t, P | RW | US), BigInt(UVMF_INVLPG))),
            0,
            d.lastReason(),
          );
          // The window maps t: fill it with ordinary stores.
          const fill = (slot: number, e: bigint): void => {
            const off = d.fake(0).translate(Number(win) + slot * 8, 0, 1, false, false);
            assert.ok(off >= 0);
            d.mem.write64Big(off, e);
          };
          if (t === NEW.l1) {
            for (let p = 0; p < 512; p++) {
              const ro = newTables.includes(p) || oldTables.includes(p);
              fill(p, pte(p, ro ? P | US : P | RW | US));
            }
          } else if (t === NEW.l2) fill(0, pte(NEW.l1, up));
          else if (bits === 64 && t === NEW.l3) fill(0, pte(NEW.l2, up));
          else if (t === NEW.root) {
            fill(0, pte(bits === 64 ? NEW.l3 : NEW.l2, up));
            if (bits === 32) fill(3, pte(NEW.l2x, up));
          }
        }
        // c. unmap the window.
        assert.equal(mm.updateVaMapping(v, uvm(d, win, 0n, BigInt(UVMF_INVLPG))), 0);
        // d. pin the new root, switch to it, unpin the old one.
        const pinCmd = bits === 64 ? MMUEXT_PIN_L4_TABLE : MMUEXT_PIN_L3_TABLE;
        const r2 = mm.mmuextOp(
          v,
          extOps(d, [
            [pinCmd, BigInt(mfnOf(NEW.root)), 0n],
            [MMUEXT_NEW_BASEPTR, BigInt(mfnOf(NEW.root)), 0n],
            [MMUEXT_UNPIN_TABLE, BigInt(mfnOf(BOOT.l4)), 0n],
          ]),
        );
        assert.equal(r2, 0, d.lastReason());
        assert.equal(doneCount(d), 3);
        assert.equal(v.kernelRootMfn, mfnOf(NEW.root));
        const cr3 = d.fake(0).state.cr3Lo >>> 0;
        assert.equal(cr3, (mfnOf(NEW.root) << 12) >>> 0);
        for (const t of oldTables)
          assert.equal(mm.pageInfo(mfnOf(t)).typeCount, 0, `old table ${t} released`);
        // e. remap the old bootstrap frames writable.
        for (const t of oldTables) {
          assert.equal(
            mm.updateVaMapping(v, uvm(d, BigInt(t * 4096), pte(t, P | RW | US), BigInt(UVMF_INVLPG))),
            0,
            d.lastReason(),
          );
          assert.equal(mm.pageInfo(mfnOf(t)).type, 'writable');
        }
        // The new tables are in use and read-only.
        assert.equal(mm.pageInfo(mfnOf(NEW.l1)).type, 'l1');
        assert.equal(
          mm.updateVaMapping(v, uvm(d, BigInt(NEW.l1 * 4096), pte(NEW.l1, P | RW | US), 0n)),
          -EBUSY,
        );
        assert.equal(d.rejections.length, 1);
      });
    });
  }

  it('64-bit: NEW_USER_BASEPTR with m2p_strict clears the RO M2P slot', () => {
    const { d, mm } = setup(64);
    d.enableAssist(VMASST_TYPE_m2p_strict);
    d.setEntry(330, 0, 0n);
    assert.equal(mm.newUserBaseptr(d.vcpus[0], mfnOf(330)), 0, d.lastReason());
    assert.equal(d.vcpus[0].userRootMfn, mfnOf(330));
    assert.equal(mm.pageInfo(mfnOf(330)).type, 'l4');
    assert.equal(d.getEntry(330, 256), 0n);
    assert.notEqual(d.getEntry(330, 260), 0n);
    assert.equal(mm.newUserBaseptr(d.vcpus[0], 0), 0);
    assert.equal(mm.pageInfo(mfnOf(330)).typeCount, 0);
  });

  it('32-bit: L3 validation rules (bad bits, missing slot 3, PIN_L4 ignored, entries 4-511 cleared)', () => {
    const { d, mm } = setup(32);
    d.setEntry(340, 0, pte(341, P, NX));
    d.setEntry(340, 3, pte(342, P));
    assert.equal(mm.pin(3, mfnOf(340)), -EINVAL);
    assert.match(d.lastReason(), /Bad L3 flags 0x800000/);
    d.setEntry(340, 0, pte(341, P | PWT));
    assert.equal(mm.pin(3, mfnOf(340)), -EINVAL);
    assert.match(d.lastReason(), /Bad L3 flags 0x8/);
    d.setEntry(340, 0, 0n);
    d.setEntry(340, 3, 0n);
    assert.equal(mm.pin(3, mfnOf(340)), -EINVAL);
    assert.match(d.lastReason(), /PAE L3 3rd slot is empty/);
    d.setEntry(340, 3, pte(342, P));
    d.setEntry(340, 100, 0x1234n);
    assert.equal(mm.pin(3, mfnOf(340)), 0, d.lastReason());
    assert.equal(d.getEntry(340, 100), 0n);
    assert.equal(mm.pin(4, mfnOf(345)), 0);
    assert.equal(mm.pageInfo(mfnOf(345)).type, 'none');
    // The slot-3 L2 may not be shared by another L3.
    d.setEntry(343, 3, pte(342, P));
    assert.equal(mm.pin(3, mfnOf(343)), -EINVAL);
    assert.match(d.lastReason(), /pae_xen_l2|shared/);
    // mmuext PIN_L1 on a 32-bit guest works through the hypercall too.
    assert.equal(mm.mmuextOp(d.vcpus[0], extOps(d, [[MMUEXT_PIN_L1_TABLE, BigInt(mfnOf(350)), 0n]])), 0);
    assert.equal(mm.pageInfo(mfnOf(350)).type, 'l1');
  });

  it('lets the guest map Xen pages shared with it (shared_info, grant frames), never as tables', () => {
    const { d, mm } = setup(64);
    const si = d.allocXenFrame();
    const gt = d.allocXenFrame();
    (d as unknown as { sharedInfoMfn: number }).sharedInfoMfn = si;
    (d as unknown as { gnttab: { frames: number[] } }).gnttab = { frames: [gt] };
    const map = (slot: number, mfn: number, flags: number): number =>
      mm.mmuUpdate(d.vcpus[0], mmuReqs(d, [[eaddr(BOOT.l1, slot), (BigInt(mfn) << 12n) | BigInt(flags)]]));
    assert.equal(map(300, si, P | RW | US), 0, d.lastReason());
    assert.equal(map(301, gt, P | RW | US), 0, d.lastReason());
    assert.equal(mm.pageInfo(si).type, 'writable');
    assert.equal(mm.pin(1, si), -EINVAL);
    // Other Xen frames stay off limits.
    const other = d.allocXenFrame();
    assert.equal(map(302, other, P | US), -EBUSY);
    assert.match(d.lastReason(), /real_pg_owner d32754/);
    // Explicit registration works too (read-only share).
    mm.shareWithGuest(other, false);
    assert.equal(map(302, other, P | US), 0);
    assert.equal(map(303, other, P | RW | US), -EBUSY);
  });

  it('32-bit on a long-mode CPU: the L3 goes under a per-vCPU Xen L4 (compat model)', () => {
    const { d, mm } = setup(32);
    const v = d.vcpus[0];
    d.fake(0).state.efer = (1 << 8) | (1 << 10); // LME | LMA
    const l3 = mfnOf(BOOT.l4);
    assert.equal(mm.newBaseptr(v, l3), 0);
    const l4 = v.compatL4Mfn ?? 0;
    assert.ok(l4 > 0);
    assert.equal(d.frameOwner(l4), 0x7ff2);
    assert.equal(d.mem.read64Big(d.mem.mfnToOffset(l4)), (BigInt(l3) << 12n) | 0x67n);
    assert.equal(d.fake(0).state.cr3Lo >>> 0, (l4 * 4096) >>> 0);
  });

  it('gives every vCPU its own GDT window and fills Xen slots of tables validated before the hole existed', () => {
    for (const bits of [64, 32] as const) {
      const d = new FakeDomain(bits, 3);
      const mm = new PvMm(d);
      const root = buildBootTables(d);
      assert.equal(mm.pin(bits === 64 ? 4 : 3, mfnOf(root)), 0);
      // Pinned before installXenMappings: Xen's slots are still empty.
      assert.equal(d.getEntry(bits === 64 ? BOOT.l4 : BOOT.l2x, bits === 64 ? 260 : 511), 0n);
      mm.installXenMappings();
      assert.notEqual(d.getEntry(bits === 64 ? BOOT.l4 : BOOT.l2x, bits === 64 ? 260 : 511), 0n);
      const bases = d.vcpus.map((v) => mm.gdtWindowBase(v.id));
      assert.equal(new Set(bases).size, 3);
      d.vcpus.forEach((v, k) => {
        const st = d.fake(k).state;
        assert.equal((BigInt(st.gdtrBaseHi >>> 0) << 32n) | BigInt(st.gdtrBaseLo >>> 0), bases[k]);
      });
      for (const v of d.vcpus) assert.equal(mm.newBaseptr(v, mfnOf(root)), 0);
      // The per-CPU entry (0xE060) of each window carries the vCPU number in its limit.
      d.vcpus.forEach((v, k) => {
        const va = bases[k] + 0xe060n;
        const off = d.fake(k).translate(Number(va & 0xffffffffn) | 0, Number(va >> 32n) | 0, 0, false);
        assert.ok(off >= 0);
        assert.equal(d.mem.read32(off) & 0xffff, k);
      });
    }
  });

  it('uses MMU_NORMAL_PT_UPDATE as a plain write on non-table frames', () => {
    const { d, mm } = setup(64);
    assert.equal(
      mm.mmuUpdate(
        d.vcpus[0],
        mmuReqs(d, [[eaddr(360, 7) + BigInt(MMU_NORMAL_PT_UPDATE), 0x1122334455667788n]]),
      ),
      0,
    );
    assert.equal(d.getEntry(360, 7), 0x1122334455667788n);
    assert.equal(mm.pageInfo(mfnOf(360)).typeCount, 0);
  });
});
