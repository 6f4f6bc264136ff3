import { strict as assert } from 'node:assert';
import { PvMm } from '../../engine/xen/mm';
import { decodeStore, type DecodeEnv } from '../../engine/xen/mm/ptwr-decode';
import { VMASST_TYPE_writable_pagetables } from '../../engine/xen/types';
import { BOOT, buildBootTables, FakeDomain, mfnOf, P, RW, A, US, pte } from '../helpers/xen-mm-fake';

function env(long: boolean, regs: Record<number, bigint> = {}, rip = 0x1000n): DecodeEnv {
  return { long, gpr: (n) => regs[n] ?? 0n, segBase: () => 0n, rip };
}

describe('xen-mm: ptwr instruction decoder', () => {
  it('decodes MOV stores with ModRM/SIB/displacement forms', () => {
    // mov [rdi+rcx*8+0x10], rax
    let d = decodeStore(
      Uint8Array.from([0x48, 0x89, 0x44, 0xcf, 0x10]),
      env(true, { 0: 5n, 1: 2n, 7: 0x1000n }),
    );
    assert.deepEqual(d && [d.op, d.len, d.size, d.ea, d.src], ['mov', 5, 8, 0x1020n, 5n]);
    // mov dword [ebx+0x12345678], 0xdeadbeef (32-bit)
    d = decodeStore(
      Uint8Array.from([0xc7, 0x83, 0x78, 0x56, 0x34, 0x12, 0xef, 0xbe, 0xad, 0xde]),
      env(false, { 3: 8n }),
    );
    assert.deepEqual(d && [d.op, d.len, d.size, d.ea, d.src], ['mov', 10, 4, 0x12345680n, 0xdeadbeefn]);
    // mov qword [rip+0x100], imm32 sign-extended
    d = decodeStore(
      Uint8Array.from([0x48, 0xc7, 0x05, 0x00, 0x01, 0, 0, 0xff, 0xff, 0xff, 0xff]),
      env(true, {}, 0x2000n),
    );
    assert.deepEqual(d && [d.len, d.ea, d.src], [11, 0x2000n + 11n + 0x100n, 0xffffffffffffffffn]);
    // register destination is not a store
    assert.equal(decodeStore(Uint8Array.from([0x89, 0xc0]), env(false)), null);
    // unsupported opcode
    assert.equal(decodeStore(Uint8Array.from([0x0f, 0x0b]), env(true)), null);
    // truncated instruction
    assert.equal(decodeStore(Uint8Array.from([0x48, 0x89]), env(true)), null);
  });
  it('decodes XCHG, LOCK CMPXCHG, CMPXCHG8B and LOCK BTR', () => {
    let d = decodeStore(Uint8Array.from([0x48, 0x87, 0x07]), env(true, { 0: 9n, 7: 0x40n }));
    assert.deepEqual(d && [d.op, d.reg, d.ea, d.src], ['xchg', 0, 0x40n, 9n]);
    d = decodeStore(Uint8Array.from([0xf0, 0x48, 0x0f, 0xb1, 0x17]), env(true, { 2: 7n, 7: 0x48n }));
    assert.deepEqual(d && [d.op, d.len, d.reg, d.src], ['cmpxchg', 5, 2, 7n]);
    d = decodeStore(Uint8Array.from([0xf0, 0x0f, 0xc7, 0x0e]), env(false, { 1: 0x11n, 3: 0x22n, 6: 0x80n }));
    assert.deepEqual(d && [d.op, d.size, d.ea, d.src], ['cmpxchg8b', 8, 0x80n, 0x1100000022n]);
    d = decodeStore(Uint8Array.from([0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01]), env(true, { 7: 0x50n }));
    assert.deepEqual(d && [d.op, d.len, d.src], ['btr', 6, 1n]);
  });
});

describe('xen-mm: writable page-table emulation', () => {
  function setup(bits: 32 | 64): { d: FakeDomain; mm: PvMm } {
    const d = new FakeDomain(bits);
    const mm = new PvMm(d);
    buildBootTables(d);
    mm.installXenMappings();
    assert.equal(mm.pin(bits === 64 ? 4 : 3, mfnOf(BOOT.l4)), 0);
    assert.equal(mm.newBaseptr(d.vcpus[0], mfnOf(BOOT.l4)), 0);
    d.enableAssist(VMASST_TYPE_writable_pagetables);
    return { d, mm };
  }
  const L1VA = BigInt(BOOT.l1 * 4096);
  const CODE = 20;

  function run(d: FakeDomain, mm: PvMm, code: number[], regs: Record<number, bigint>, cr2: bigint): boolean {
    const st = d.fake(0).state;
    d.poke(CODE, 0, Uint8Array.from(code));
    st.ripLo = CODE * 4096;
    st.ripHi = 0;
    for (const [r, v] of Object.entries(regs)) {
      st.gprLo[Number(r)] = Number(v & 0xffffffffn) | 0;
      st.gprHi[Number(r)] = Number((v >> 32n) & 0xffffffffn) | 0;
    }
    return mm.ptwrFault(d.vcpus[0], cr2, 3);
  }

  it('XCHG clears a PTE and returns the old value (ptep_get_and_clear)', () => {
    const { d, mm } = setup(64);
    const slot = 7; // pfn 7 is mapped RW by the boot L1
    const old = d.getEntry(BOOT.l1, slot);
    assert.equal(mm.pageInfo(mfnOf(7)).typeCount, 1);
    assert.equal(
      run(d, mm, [0x48, 0x87, 0x07], { 0: 0n, 7: L1VA + BigInt(slot * 8) }, L1VA + BigInt(slot * 8)),
      true,
    );
    assert.equal(d.getEntry(BOOT.l1, slot), 0n);
    const st = d.fake(0).state;
    assert.equal((BigInt(st.gprHi[0] >>> 0) << 32n) | BigInt(st.gprLo[0] >>> 0), old);
    assert.equal(mm.pageInfo(mfnOf(7)).typeCount, 0);
    assert.equal(st.ripLo, CODE * 4096 + 3);
  });

  it('CMPXCHG succeeds or fails like the instruction', () => {
    const { d, mm } = setup(64);
    const slot = 300;
    const nv = pte(300, P | RW | A | US);
    // Expected old value 0 matches: store happens, ZF set.
    assert.equal(
      run(d, mm, [0xf0, 0x48, 0x0f, 0xb1, 0x17], { 0: 0n, 2: nv, 7: L1VA + 2400n }, L1VA + 2400n),
      true,
    );
    assert.equal(d.getEntry(BOOT.l1, slot) & ~(1n << 8n), nv); // Xen adds G to user mappings
    assert.ok(d.fake(0).rflags & 0x40);
    // Expected 0 again, now mismatching: no store, RAX := current, ZF clear.
    const cur = d.getEntry(BOOT.l1, slot);
    assert.equal(
      run(d, mm, [0xf0, 0x48, 0x0f, 0xb1, 0x17], { 0: 0n, 2: 0n, 7: L1VA + 2400n }, L1VA + 2400n),
      true,
    );
    assert.equal(d.getEntry(BOOT.l1, slot), cur);
    assert.equal(d.fake(0).rflags & 0x40, 0);
    assert.equal(BigInt(d.fake(0).state.gprLo[0] >>> 0), cur & 0xffffffffn);
  });

  it('LOCK BTR clears RW of a PTE (ptep_set_wrprotect)', () => {
    const { d, mm } = setup(64);
    const slot = 9;
    assert.equal(mm.pageInfo(mfnOf(9)).type, 'writable');
    assert.equal(
      run(
        d,
        mm,
        [0xf0, 0x48, 0x0f, 0xba, 0x37, 0x01],
        { 7: L1VA + BigInt(slot * 8) },
        L1VA + BigInt(slot * 8),
      ),
      true,
    );
    assert.equal(d.getEntry(BOOT.l1, slot) & 2n, 0n);
    assert.equal(d.fake(0).rflags & 1, 1); // CF = old RW bit
    assert.equal(mm.pageInfo(mfnOf(9)).typeCount, 0);
  });

  it('refuses misaligned stores and stores outside the CR2 page', () => {
    const { d, mm } = setup(64);
    assert.equal(run(d, mm, [0x48, 0x89, 0x07], { 0: 0n, 7: L1VA + 4n }, L1VA + 4n), false);
    assert.equal(run(d, mm, [0x48, 0x89, 0x07], { 0: 0n, 7: L1VA + 0x2000n }, L1VA), false);
    // Not an L1 frame (data page mapped read-only? pfn 501 is the L3): no emulation.
    assert.equal(
      run(d, mm, [0x48, 0x89, 0x07], { 0: 0n, 7: BigInt(BOOT.l3 * 4096) }, BigInt(BOOT.l3 * 4096)),
      false,
    );
    // User-mode writes are never emulated.
    d.vcpus[0].kernelMode = false;
    assert.equal(run(d, mm, [0x48, 0x89, 0x07], { 0: 0n, 7: L1VA }, L1VA), false);
  });

  it('32-bit: tolerates the high half written first (P cleared), then the low half', () => {
    const { d, mm } = setup(32);
    const slot = 300;
    // Existing valid entry for pfn 300.
    d.setEntry(BOOT.l1, slot, 0n);
    assert.equal(run(d, mm, [0x89, 0x07], { 0: pte(300, P | RW | A), 7: L1VA + 2400n }, L1VA + 2400n), true);
    // Now the guest writes a high half pointing far away first: present+invalid -> P cleared.
    assert.equal(run(d, mm, [0x89, 0x47, 0x04], { 0: 0x10n, 7: L1VA + 2400n }, L1VA + 2404n), true);
    const e = d.getEntry(BOOT.l1, slot);
    assert.equal(e & 1n, 0n);
    assert.equal(e >> 32n, 0x10n);
    assert.equal(mm.pageInfo(mfnOf(300)).typeCount, 0);
    // Then the low half with a valid frame... and a zero high half restored.
    assert.equal(run(d, mm, [0x89, 0x47, 0x04], { 0: 0n, 7: L1VA + 2400n }, L1VA + 2404n), true);
    assert.equal(run(d, mm, [0x89, 0x07], { 0: pte(301, P | A), 7: L1VA + 2400n }, L1VA + 2400n), true);
    assert.equal(d.getEntry(BOOT.l1, slot), pte(301, P | A));
    // A low-half store of an invalid value is refused.
    assert.equal(run(d, mm, [0x89, 0x07], { 0: pte(BOOT.l1, P | RW), 7: L1VA + 2408n }, L1VA + 2408n), false);
  });

  it('merges sub-8-byte stores into the entry (byte and word MOV, OR)', () => {
    const { d, mm } = setup(64);
    const slot = 11; // pfn 11, mapped P|RW|A (+US|bit 52 after validation)
    const before = d.getEntry(BOOT.l1, slot);
    const ea = L1VA + BigInt(slot * 8);
    // mov byte [rdi], al: clear RW (0x23 -> keep P|A; low byte of entry becomes 0x25 with US)
    const lowByte = Number(before & 0xffn) & ~2;
    assert.equal(run(d, mm, [0x88, 0x07], { 0: BigInt(lowByte), 7: ea }, ea), true);
    assert.equal(d.getEntry(BOOT.l1, slot), (before & ~0xffn) | BigInt(lowByte));
    assert.equal(mm.pageInfo(mfnOf(11)).typeCount, 0); // RW dropped
    // or word [rdi], 2: RW back on
    assert.equal(run(d, mm, [0x66, 0x83, 0x0f, 0x02], { 7: ea }, ea), true);
    assert.equal(d.getEntry(BOOT.l1, slot) & 2n, 2n);
    assert.equal(mm.pageInfo(mfnOf(11)).typeCount, 1);
    assert.equal(d.fake(0).state.ripLo, CODE * 4096 + 4);
  });

  it('32-bit: CMPXCHG8B updates a whole PAE entry', () => {
    const { d, mm } = setup(32);
    const nv = pte(302, P | RW | A);
    const regs = { 0: 0n, 2: 0n, 3: nv & 0xffffffffn, 1: nv >> 32n, 6: L1VA + 2416n };
    assert.equal(run(d, mm, [0xf0, 0x0f, 0xc7, 0x0e], regs, L1VA + 2416n), true);
    assert.equal(d.getEntry(BOOT.l1, 302), nv);
    assert.equal(mm.pageInfo(mfnOf(302)).type, 'writable');
  });
});
