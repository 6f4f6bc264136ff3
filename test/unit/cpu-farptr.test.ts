/**
 * Far-pointer loads (LDS/LES/LSS/LFS/LGS, SDM vol. 2 "LDS/LES/LFS/LGS/LSS")
 * in 32-bit protected mode, compatibility-free 64-bit mode (0F B2/B4/B5 with
 * and without REX.W) and the #UD cases (register operand, C4/C5 as VEX in
 * 64-bit mode), plus the descriptor checks of the segment load. Code is
 * assembled at test time with GNU as (test/helpers/asm-flat.ts).
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { Seg } from '../../engine/cpu/state';
import { createTestMachine, CODE_BASE, type TestMachine, type TestMode } from '../../engine/cpu/testbed';
import { assembleFlat } from '../helpers/asm-flat';

const DATA = 0x200000;

function machine(mode: TestMode, src: string): TestMachine {
  const tm = createTestMachine({ mode, memoryMiB: 16 });
  const bits = mode === 'long64' ? 64 : 32;
  const code = assembleFlat(`.intel_syntax noprefix\n.code${bits}\n${src}`, CODE_BASE, bits);
  tm.load(CODE_BASE, code);
  tm.start(CODE_BASE);
  tm.cpu.interceptExceptions = 0xffffffff;
  return tm;
}

function go(tm: TestMachine): ExitReason {
  let r: ExitReason;
  let guard = 0;
  do r = tm.cpu.run(100000);
  while (r === ExitReason.BUDGET && ++guard < 10);
  return r;
}

const R = (tm: TestMachine, r: number): number => tm.cpu.state.gprLo[r] >>> 0;

describe('CPU: far-pointer loads', () => {
  it('32-bit: lss esp, [m16:32] loads SS:ESP (the first stack of a 32-bit PV kernel), then push uses it', () => {
    const tm = machine(
      'prot32',
      `lss esp, [${DATA}]
       push 0x1234abcd
       lds ebx, [${DATA + 8}]
       les ecx, [${DATA + 8}]
       lfs edx, [${DATA + 8}]
       lgs si, [${DATA + 16}]
       hlt`,
    );
    tm.mem.write32(DATA, 0x70000);
    tm.mem.write16(DATA + 4, 0x10);
    tm.mem.write32(DATA + 8, 0xdeadbeef);
    tm.mem.write16(DATA + 12, 0x10);
    tm.mem.write16(DATA + 16, 0x5678);
    tm.mem.write16(DATA + 18, 0x10);
    tm.cpu.state.segSel[Seg.SS] = 0; // changed by the load
    const r = go(tm);
    assert.equal(r, ExitReason.HALT, `exit ${r} vector ${tm.cpu.exitVector}`);
    const s = tm.cpu.state;
    assert.equal(s.segSel[Seg.SS], 0x10);
    assert.equal(R(tm, 4), 0x70000 - 4);
    assert.equal(tm.mem.read32(0x70000 - 4) >>> 0, 0x1234abcd);
    assert.equal(R(tm, 3), 0xdeadbeef);
    assert.equal(R(tm, 1), 0xdeadbeef);
    assert.equal(R(tm, 2), 0xdeadbeef);
    assert.equal(R(tm, 6) & 0xffff, 0x5678);
    for (const g of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) assert.equal(s.segSel[g], 0x10);
  });

  it('32-bit: lss with a code selector raises #GP(sel) and leaves ESP and SS unchanged', () => {
    const tm = machine('prot32', `mov esp, 0x60000\n lss esp, [${DATA}]\n hlt`);
    tm.mem.write32(DATA, 0x70000);
    tm.mem.write16(DATA + 4, 0x08);
    const r = go(tm);
    assert.equal(r, ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 13);
    assert.equal(tm.cpu.exitErrorCode, 0x08);
    assert.equal(R(tm, 4), 0x60000);
    assert.equal(tm.cpu.state.segSel[Seg.SS], 0x10);
  });

  it('32-bit: lds with a selector beyond the GDT limit raises #GP(sel); a null selector loads an unusable DS', () => {
    const tm = machine('prot32', `lds eax, [${DATA}]\n hlt`);
    tm.mem.write32(DATA, 1);
    tm.mem.write16(DATA + 4, 0x3f8);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 13);
    assert.equal(tm.cpu.exitErrorCode, 0x3f8);
    assert.equal(R(tm, 0), 0);
    const t2 = machine('prot32', `lds eax, [${DATA}]\n hlt`);
    t2.mem.write32(DATA, 7);
    t2.mem.write16(DATA + 4, 0);
    assert.equal(go(t2), ExitReason.HALT);
    assert.equal(R(t2, 0), 7);
    assert.equal(t2.cpu.state.segSel[Seg.DS], 0);
  });

  it('32-bit: a register operand is #UD', () => {
    const tm = machine('prot32', `.byte 0x0f, 0xb2, 0xc0\n hlt`);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 6);
  });

  it('64-bit: lss rsp, m16:64 (REX.W), lfs m16:32 (upper half zeroed), lgs m16:16', () => {
    const tm = machine(
      'long64',
      `mov rax, -1
       mov rbx, -1
       .byte 0x48, 0x0f, 0xb2, 0x24, 0x25
       .long ${DATA}
       lfs eax, [${DATA + 16}]
       lgs bx, [${DATA + 32}]
       hlt`,
    );
    tm.mem.write32(DATA, 0x7f000);
    tm.mem.write32(DATA + 4, 0);
    tm.mem.write16(DATA + 8, 0x10);
    tm.mem.write32(DATA + 16, 0x12345678);
    tm.mem.write16(DATA + 20, 0x10);
    tm.mem.write16(DATA + 32, 0x4321);
    tm.mem.write16(DATA + 34, 0x10);
    const r = go(tm);
    assert.equal(r, ExitReason.HALT, `exit ${r} vector ${tm.cpu.exitVector}`);
    const s = tm.cpu.state;
    assert.equal(R(tm, 4), 0x7f000);
    assert.equal(s.gprHi[4], 0);
    assert.equal(R(tm, 0), 0x12345678);
    assert.equal(s.gprHi[0], 0);
    assert.equal(R(tm, 3), 0xffff4321);
    assert.equal(s.gprHi[3] >>> 0, 0xffffffff);
    assert.equal(s.segSel[Seg.SS], 0x10);
    assert.equal(s.segSel[Seg.FS], 0x10);
    assert.equal(s.segSel[Seg.GS], 0x10);
  });

  it('64-bit: C4/C5 are VEX prefixes and raise #UD (AVX is not offered)', () => {
    for (const b of [0xc4, 0xc5]) {
      const tm = machine('long64', `.byte ${b}, 0x00, 0x00, 0x00\n hlt`);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 6);
    }
  });

  it('32-bit: C4/C5 with mod=11 are VEX (#UD); with a memory operand they are LES/LDS', () => {
    const tm = machine('prot32', `.byte 0xc5, 0xc0\n hlt`);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 6);
  });
});
