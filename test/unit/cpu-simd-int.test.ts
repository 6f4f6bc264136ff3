/**
 * Hand-checked unit tests of the SIMD integer unit: MMX/x87 aliasing
 * (SDM vol. 1 §9.5: MMX write sets the exponent field to 0xFFFF, TOP = 0,
 * tags valid; EMMS empties the tags), the class checks (CR0.EM/TS,
 * CR4.OSFXSR; CRC32 needs none) and known values (CRC-32C check value).
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { createMachine, runUntilExit, setGpr, type TestMachine } from '../helpers/engine-runner';

const CODE = 0x300000;

function run(bytes: number[], prep?: (m: TestMachine) => void): { m: TestMachine; vector: number } {
  const m = createMachine(64);
  m.cpu.state.cr4 |= 0x600;
  prep?.(m);
  m.cpu.stateChanged();
  m.mem.writeBytes(CODE, Uint8Array.from([...bytes, 0xcc]));
  m.cpu.flushCodeCache();
  m.cpu.state.ripLo = CODE;
  m.cpu.state.ripHi = 0;
  const r = runUntilExit(m.cpu, 100);
  assert.equal(r.thrown, undefined);
  assert.equal(r.exit, ExitReason.EXCEPTION);
  return { m, vector: r.vector };
}

describe('SIMD integer unit: aliasing, class checks, known values', () => {
  it('MOVD mm0, eax writes physical x87 R0 significand, exponent 0xFFFF, TOP=0, tags valid; EMMS empties tags', () => {
    const { m, vector } = run([0x0f, 0x6e, 0xc0], (m) => {
      setGpr(m.cpu, 0, 0x12345678n);
      m.cpu.state.fpuSw = 0x3800; // TOP = 7
      m.cpu.state.fpuTw = 0xffff;
    });
    assert.equal(vector, 3);
    const st = m.cpu.state;
    assert.equal(st.fpSigLo[0], 0x12345678);
    assert.equal(st.fpSigHi[0], 0);
    assert.equal(st.fpSe[0], 0xffff);
    assert.equal(st.fpuSw & 0x3800, 0);
    assert.equal(st.fpuTw, 0);
    const e = run([0x0f, 0x6e, 0xc0, 0x0f, 0x77]);
    assert.equal(e.m.cpu.state.fpuTw, 0xffff);
  });
  it('PADDB xmm #UD without CR4.OSFXSR, #NM with CR0.TS; MMX PADDB #NM with TS, #UD with EM', () => {
    assert.equal(run([0x66, 0x0f, 0xfc, 0xc1], (m) => (m.cpu.state.cr4 &= ~0x200)).vector, 6);
    assert.equal(run([0x66, 0x0f, 0xfc, 0xc1], (m) => (m.cpu.state.cr0 |= 8)).vector, 7);
    assert.equal(run([0x0f, 0xfc, 0xc1], (m) => (m.cpu.state.cr0 |= 8)).vector, 7);
    assert.equal(run([0x0f, 0xfc, 0xc1], (m) => (m.cpu.state.cr0 |= 4)).vector, 6);
    // MMX forms do not need OSFXSR.
    assert.equal(run([0x0f, 0xfc, 0xc1], (m) => (m.cpu.state.cr4 &= ~0x200)).vector, 3);
  });
  it('CRC32 (no CR checks): CRC-32C of "123456789" is 0xE3069283', () => {
    // mov ecx, -1; then crc32 ecx, byte [rsi+i] for each byte; not ecx
    const text = '123456789';
    const code = [0xb9, 0xff, 0xff, 0xff, 0xff];
    for (let i = 0; i < text.length; i++) code.push(0xf2, 0x0f, 0x38, 0xf0, 0x4e, i);
    code.push(0xf7, 0xd1);
    const { m, vector } = run(code, (m) => {
      m.cpu.state.cr0 |= 8; // TS set: CRC32 does not care
      m.mem.writeBytes(0x200000, new TextEncoder().encode(text));
      setGpr(m.cpu, 6, 0x200000n);
    });
    assert.equal(vector, 3);
    assert.equal(m.cpu.state.gprLo[1] >>> 0, 0xe3069283);
  });
  it('MOVDQA with a misaligned memory operand raises #GP(0); PMOVMSKB memory form is #UD', () => {
    assert.equal(run([0x66, 0x0f, 0x6f, 0x04, 0x25, 0x08, 0x00, 0x20, 0x00]).vector, 13);
    assert.equal(run([0x66, 0x0f, 0xd7, 0x00]).vector, 6);
  });
  it('with an unmasked x87 exception pending, reserved MMX/x87 encodings are #UD (decode ranks above #MF), valid ones #MF', () => {
    // FSW.ES + IE set, IE unmasked in FCW, CR0.NE: the next waiting instruction raises #MF.
    const pending = (m: TestMachine): void => {
      m.cpu.state.cr0 |= 0x20;
      m.cpu.state.fpuCw = 0x037e;
      m.cpu.state.fpuSw = 0x0081;
    };
    const ud = [
      [0x0f, 0xd7, 0x00], // PMOVMSKB mm, m64
      [0x0f, 0xc5, 0x00, 0x01], // PEXTRW r32, m64, imm8
      [0x0f, 0x71, 0xc8, 0x01], // 0F 71 /1
      [0x0f, 0x73, 0xd8, 0x01], // 0F 73 /3 (66-only form)
      [0x0f, 0x71, 0x00, 0x01], // 0F 71 /0 memory
      [0x0f, 0xe7, 0xc0], // MOVNTQ register form
      [0xf3, 0x0f, 0xd6, 0x00], // MOVQ2DQ memory form
      [0xd9, 0xe7], // reserved D9 E7
      [0xda, 0xf0], // reserved DA F0
      [0xdb, 0x30], // reserved DB /6 memory
      [0xdd, 0x28], // reserved DD /5 memory
      [0xdf, 0xe1], // reserved DF E1
    ];
    for (const b of ud) assert.equal(run(b, pending).vector, 6, b.map((x) => x.toString(16)).join(' '));
    for (const b of [[0x0f, 0xd7, 0xc1], [0x0f, 0x71, 0xd0, 0x01], [0xd9, 0xe8], [0xde, 0xc1], [0x9b]])
      assert.equal(run(b, pending).vector, 16, b.map((x) => x.toString(16)).join(' '));
  });
});
