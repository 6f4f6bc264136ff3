/**
 * The default CPUID policy (engine/cpu/cpuid.ts): one documented GenuineIntel
 * model advertising exactly what the engine implements (SDM vol. 2 CPUID,
 * vol. 1 ch. 13 for leaf 0xD), and the CPUID instruction's dynamic OSXSAVE
 * bit (system.ts passes CR4).
 */
import { strict as assert } from 'assert';
import { defaultCpuidPolicy, XSAVE_AREA_SIZE } from '../../engine/cpu/cpuid';
import { systemOps } from '../../engine/cpu/system';
import { Cr4, Reg } from '../../engine/cpu/state';
import { MockCpu } from '../helpers/cpu-system-mock';
import type { CpuInternals } from '../../engine/cpu/internals';

const p = defaultCpuidPolicy();
const bitsOf = (v: number): number[] => [...Array(32).keys()].filter((i) => (v >>> i) & 1);

describe('CPUID policy (engine/cpu/cpuid.ts)', () => {
  it('leaf 0: GenuineIntel, highest basic leaf 0xD', () => {
    const r = p.leaf(0, 0);
    assert.equal(r.eax, 0xd);
    const s = Buffer.alloc(12);
    s.writeUInt32LE(r.ebx, 0);
    s.writeUInt32LE(r.edx, 4);
    s.writeUInt32LE(r.ecx, 8);
    assert.equal(s.toString('latin1'), 'GenuineIntel');
  });

  it('leaf 1: exactly the implemented features (x87, MMX, FXSR, SSE-SSE4.2, XSAVE)', () => {
    const r = p.leaf(1, 0);
    assert.equal(r.eax, 0x000306a9, 'family 6 model 0x3a stepping 9');
    // EDX: FPU VME DE PSE TSC MSR PAE CX8 SEP PGE CMOV PAT CLFSH MMX FXSR SSE SSE2.
    assert.deepEqual(bitsOf(r.edx), [0, 1, 2, 3, 4, 5, 6, 8, 11, 13, 15, 16, 19, 23, 24, 25, 26]);
    // ECX: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 MOVBE POPCNT XSAVE; OSXSAVE (27) clear without CR4.
    assert.deepEqual(bitsOf(r.ecx), [0, 9, 13, 19, 20, 22, 23, 26]);
    for (const [bit, name] of [
      [1, 'PCLMULQDQ'],
      [12, 'FMA'],
      [25, 'AES'],
      [28, 'AVX'],
      [29, 'F16C'],
      [30, 'RDRAND'],
    ] as const)
      assert.equal((r.ecx >>> bit) & 1, 0, `${name} must not be offered`);
    assert.equal((r.ebx >>> 8) & 0xff, 8, 'CLFLUSH line size 8 qwords (64 bytes)');
  });

  it('leaf 1 ECX.OSXSAVE mirrors the CR4 the CPUID instruction runs with', () => {
    assert.equal((p.leaf(1, 0, Cr4.OSXSAVE).ecx >>> 27) & 1, 1);
    assert.equal((p.leaf(1, 0, Cr4.PAE | Cr4.OSFXSR).ecx >>> 27) & 1, 0);
    const c = new MockCpu();
    const run = (cr4: number): number => {
      c.state.cr4 = cr4;
      c.setReg(Reg.RAX, 1);
      c.setReg(Reg.RCX, 0);
      systemOps.cpuid(c as unknown as CpuInternals);
      return c.reg(Reg.RCX);
    };
    assert.equal((run(Cr4.OSXSAVE | Cr4.OSFXSR) >>> 27) & 1, 1);
    assert.equal((run(Cr4.OSFXSR) >>> 27) & 1, 0);
  });

  it('leaf 7: no structured extended features (no AVX2, BMI, AVX-512, FSGSBASE, ERMS)', () => {
    for (const sub of [0, 1]) assert.deepEqual(p.leaf(7, sub), { eax: 0, ebx: 0, ecx: 0, edx: 0 });
  });

  it('leaf 0xD: XCR0 = x87|SSE, 576-byte area, XSAVEOPT/XSAVEC/XGETBV1 but not XSAVES', () => {
    assert.equal(XSAVE_AREA_SIZE, 512 + 64);
    assert.deepEqual(p.leaf(0xd, 0), { eax: 3, ebx: 576, ecx: 576, edx: 0 });
    const s1 = p.leaf(0xd, 1);
    assert.equal(s1.eax, 0b111, 'XSAVEOPT (0), XSAVEC (1), XGETBV ECX=1 (2); XSAVES (3) clear');
    assert.equal(s1.ebx, 576);
    assert.equal(s1.ecx | s1.edx, 0, 'no IA32_XSS components');
    for (const sub of [2, 3, 5, 9, 63])
      assert.deepEqual(p.leaf(0xd, sub), { eax: 0, ebx: 0, ecx: 0, edx: 0 });
  });

  it('leaf 4: L1d, L1i, L2, L3 parameters multiply to their sizes; then a null sub-leaf', () => {
    const want = [
      [1, 1, 32 << 10],
      [2, 1, 32 << 10],
      [3, 2, 256 << 10],
      [3, 3, 8 << 20],
    ];
    want.forEach(([type, level, size], i) => {
      const r = p.leaf(4, i);
      assert.equal(r.eax & 0x1f, type, `sub-leaf ${i} type`);
      assert.equal((r.eax >>> 5) & 7, level, `sub-leaf ${i} level`);
      assert.equal(r.eax >>> 14, 0, 'one thread shares it, one core per package');
      const ways = (r.ebx >>> 22) + 1;
      const parts = ((r.ebx >>> 12) & 0x3ff) + 1;
      const line = (r.ebx & 0xfff) + 1;
      assert.equal(line, 64);
      assert.equal(ways * parts * line * (r.ecx + 1), size, `sub-leaf ${i} size`);
    });
    assert.equal(p.leaf(4, 4).eax & 0x1f, 0);
  });

  it('leaf 2: one query, valid descriptor registers, 0xFF (caches in leaf 4)', () => {
    const r = p.leaf(2, 0);
    assert.equal(r.eax & 0xff, 1);
    for (const v of [r.eax, r.ebx, r.ecx, r.edx])
      assert.equal(v >>> 31, 0, 'bit 31 clear: register holds descriptors');
    const desc = [r.eax >>> 8, r.ebx, r.ecx, r.edx].flatMap((v, i) =>
      [0, 8, 16, 24].filter((sh) => i > 0 || sh < 24).map((sh) => (v >>> sh) & 0xff),
    );
    assert.ok(desc.includes(0xff));
  });

  it('extended leaves: max 0x80000008, brand, 0x80000005 reserved on Intel, L2 in 0x80000006, 40/48-bit addresses', () => {
    assert.equal(p.leaf(0x80000000, 0).eax, 0x80000008);
    const brand = [2, 3, 4]
      .map((i) => p.leaf(0x80000000 + i, 0))
      .flatMap((r) => [r.eax, r.ebx, r.ecx, r.edx])
      .map((x) => String.fromCharCode(x & 255, (x >>> 8) & 255, (x >>> 16) & 255, x >>> 24))
      .join('');
    assert.equal(brand.trim(), 'pvscope virtual CPU');
    assert.deepEqual(p.leaf(0x80000005, 0), { eax: 0, ebx: 0, ecx: 0, edx: 0 });
    const l2 = p.leaf(0x80000006, 0).ecx;
    assert.equal(l2 >>> 16, 256, 'L2 KiB, as leaf 4 sub-leaf 2');
    assert.equal((l2 >>> 12) & 0xf, 6, '8-way');
    assert.equal(l2 & 0xff, 64);
    assert.equal(p.leaf(0x80000008, 0).eax & 0xffff, 0x3028);
    assert.deepEqual(p.leaf(0x80000009, 0), { eax: 0, ebx: 0, ecx: 0, edx: 0 });
  });
});
