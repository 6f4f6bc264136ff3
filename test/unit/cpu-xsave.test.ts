/**
 * Hand-checked unit tests of the XSAVE feature set in the engine (the parts
 * the host differential test cannot reach: the host runs at CPL 3 with
 * CR4.OSXSAVE set): #UD without CR4.OSXSAVE, #NM with CR0.TS, prefix and
 * LOCK #UD, XSETBV's rules at CPL 0 and its privileged exit / #GP(0) at
 * CPL 3, XCR0 = x87 alone narrowing RFBM, XINUSE through XGETBV ECX = 1,
 * XSAVES/XRSTORS #UD (SDM vol. 1 ch. 13, vol. 2 XSAVE, XRSTOR, XGETBV,
 * XSETBV).
 */
import { strict as assert } from 'node:assert';
import { ExitReason, PrivOp } from '../../engine/cpu/api';
import { systemOps } from '../../engine/cpu/system';
import { Cr4, Reg } from '../../engine/cpu/state';
import type { CpuInternals } from '../../engine/cpu/internals';
import { createMachine, runUntilExit, setGpr, type TestMachine } from '../helpers/engine-runner';
import { MockCpu, Fault, PrivExit } from '../helpers/cpu-system-mock';

const CODE = 0x300000;
const AREA = 0x204000;

function run(bytes: number[], prep?: (m: TestMachine) => void): { m: TestMachine; vector: number } {
  const m = createMachine(64);
  setGpr(m.cpu, Reg.RSI, BigInt(AREA));
  setGpr(m.cpu, Reg.RAX, 3n);
  setGpr(m.cpu, Reg.RDX, 0n);
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

const XSAVE = [0x0f, 0xae, 0x26];
const XRSTOR = [0x0f, 0xae, 0x2e];
const XSAVEOPT = [0x0f, 0xae, 0x36];
const XSAVEC = [0x0f, 0xc7, 0x26];
const XGETBV = [0x0f, 0x01, 0xd0];
const XSETBV = [0x0f, 0x01, 0xd1];

describe('XSAVE feature set: engine unit checks', () => {
  it('#UD for XSAVE/XSAVEOPT/XSAVEC/XRSTOR/XGETBV/XSETBV when CR4.OSXSAVE = 0', () => {
    for (const insn of [XSAVE, XSAVEOPT, XSAVEC, XRSTOR, XGETBV, XSETBV])
      assert.equal(run(insn, (m) => (m.cpu.state.cr4 &= ~Cr4.OSXSAVE)).vector, 6, insn.join(' '));
  });

  it('#NM with CR0.TS; #UD with a 66/F3 prefix or LOCK (the forms are NP); XSAVES/XRSTORS #UD', () => {
    for (const insn of [XSAVE, XSAVEOPT, XSAVEC, XRSTOR])
      assert.equal(run(insn, (m) => (m.cpu.state.cr0 |= 8)).vector, 7, insn.join(' '));
    assert.equal(run([0x66, ...XSAVE]).vector, 6);
    assert.equal(run([0xf3, ...XRSTOR]).vector, 6);
    assert.equal(run([0xf0, ...XSAVE]).vector, 6);
    assert.equal(run([0x66, ...XGETBV]).vector, 6);
    assert.equal(run([0x0f, 0xc7, 0x2e]).vector, 6, 'XSAVES');
    assert.equal(run([0x0f, 0xc7, 0x1e]).vector, 6, 'XRSTORS');
  });

  it('XSAVE writes the legacy region and XSTATE_BV and leaves bytes 416-511 and 520-575 alone', () => {
    const { m, vector } = run(XSAVE, (m) => {
      m.mem.writeBytes(AREA, new Uint8Array(576).fill(0xaa));
      m.cpu.state.xmm[0] = 0x1234;
      m.cpu.state.xinuse = 0;
    });
    assert.equal(vector, 3);
    const b = m.mem.readBytes(AREA, 576);
    assert.equal(b[0] | (b[1] << 8), 0x037f, 'FCW');
    assert.equal(b[24] | (b[25] << 8), 0x1f80, 'MXCSR');
    assert.equal(b[160] | (b[161] << 8), 0x1234, 'XMM0');
    // x87 in its initial configuration (XINUSE[0] = 0), SSE in use: 0xaa with bits 0-1 = 10b
    assert.equal(b[512], 0xaa);
    assert.ok(
      b.subarray(416, 512).every((x) => x === 0xaa),
      'bytes 416-511 untouched',
    );
    assert.ok(
      b.subarray(520, 576).every((x) => x === 0xaa),
      'header past XSTATE_BV untouched',
    );
  });

  it('XSAVEC: XSTATE_BV = RFBM & XINUSE, XCOMP_BV = 8000...0000H | RFBM; XSAVEOPT skips init components', () => {
    const c = run(XSAVEC, (m) => {
      m.mem.writeBytes(AREA, new Uint8Array(576).fill(0xaa));
      m.cpu.state.xmm[5] = 1;
    });
    let b = c.m.mem.readBytes(AREA, 576);
    assert.deepEqual(Array.from(b.subarray(512, 528)), [2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x80]);
    assert.equal(b[0], 0xaa, 'x87 (initial) not written');
    assert.equal(b[24], 0x80, 'MXCSR written with the SSE state');
    assert.equal(b[528], 0xaa);
    const o = run(XSAVEOPT, (m) => m.mem.writeBytes(AREA, new Uint8Array(576).fill(0xaa)));
    b = o.m.mem.readBytes(AREA, 576);
    assert.equal(b[0], 0xaa, 'x87 not written');
    assert.equal(b[160], 0xaa, 'XMM not written');
    assert.equal(b[24], 0x80, 'MXCSR always written with RFBM[1]');
    assert.equal(b[512], 0xa8, 'XSTATE_BV bits 0-1 cleared');
  });

  it('XRSTOR: standard form initialises components with XSTATE_BV[i] = 0; XGETBV ECX = 1 reads XINUSE', () => {
    const { m, vector } = run([...XRSTOR, 0xb9, 1, 0, 0, 0, ...XGETBV], (m) => {
      const img = new Uint8Array(576);
      img[24] = 0x80;
      img[25] = 0x1f;
      m.mem.writeBytes(AREA, img);
      m.cpu.state.xmm.fill(7);
      m.cpu.state.fpuCw = 0x27f;
      m.cpu.state.fpSigLo[3] = 5;
    });
    assert.equal(vector, 3);
    const s = m.cpu.state;
    assert.ok(s.xmm.every((x) => x === 0));
    assert.equal(s.fpuCw, 0x37f);
    assert.equal(s.fpSigLo[3], 0);
    assert.equal(s.gprLo[Reg.RAX], 0, 'XINUSE = 0 after initialisation');
    // a load sets XINUSE even for initial values
    const l = run([...XRSTOR, 0xb9, 1, 0, 0, 0, ...XGETBV], (m) => {
      const img = new Uint8Array(576);
      img[0] = 0x7f;
      img[1] = 0x03;
      img[24] = 0x80;
      img[25] = 0x1f;
      img[512] = 3;
      m.mem.writeBytes(AREA, img);
    });
    assert.equal(l.m.cpu.state.gprLo[Reg.RAX], 3);
  });

  it('XSETBV at CPL 0: XCR0 must have bit 0 and only x87|SSE; ECX must be 0; XCR0 = 1 narrows RFBM', () => {
    const set = (eax: number, edx = 0, ecx = 0) =>
      run(XSETBV, (m) => {
        setGpr(m.cpu, Reg.RAX, BigInt(eax));
        setGpr(m.cpu, Reg.RDX, BigInt(edx));
        setGpr(m.cpu, Reg.RCX, BigInt(ecx));
      });
    const ok = set(1);
    assert.equal(ok.vector, 3);
    assert.equal(ok.m.cpu.state.xcr0, 1);
    assert.equal(set(3).m.cpu.state.xcr0, 3);
    for (const [eax, edx, ecx] of [
      [2, 0, 0],
      [0, 0, 0],
      [7, 0, 0],
      [0x203, 0, 0],
      [3, 1, 0],
      [3, 0, 1],
    ])
      assert.equal(set(eax, edx, ecx).vector, 13, `xsetbv eax=${eax} edx=${edx} ecx=${ecx}`);
    // XCR0 = x87 only: XSAVE with EAX = 3 saves x87 alone (MXCSR, XMM and XSTATE_BV[1] untouched)
    const x = run([...XSETBV, ...XSAVE], (m) => {
      setGpr(m.cpu, Reg.RAX, 1n);
      m.mem.writeBytes(AREA, new Uint8Array(576).fill(0xaa));
    });
    assert.equal(x.vector, 3);
    const b = x.m.mem.readBytes(AREA, 576);
    assert.equal(b[0], 0x7f);
    assert.equal(b[24], 0xaa);
    assert.equal(b[512], 0xaa, 'XSTATE_BV: bit 0 written 0 (initial x87), bit 1 kept');
  });

  it('XSETBV at CPL 3: a privileged exit (PrivOp.XSETBV) when intercepting, else #GP(0); XGETBV works at any CPL', () => {
    const c = new MockCpu();
    c.state.cr4 = Cr4.OSXSAVE | Cr4.PAE;
    c.state.cr0 = 1;
    c.state.cpl = 3;
    c.state.xcr0 = 3;
    c.setReg(Reg.RAX, 1);
    const cpu = c as unknown as CpuInternals;
    assert.throws(
      () => systemOps.xsetbv(cpu, false),
      (e: unknown) => e instanceof Fault && e.vector === 13 && e.errorCode === 0,
    );
    c.interceptPrivileged = true;
    assert.throws(
      () => systemOps.xsetbv(cpu, false),
      (e: unknown) => e instanceof PrivExit && e.op === PrivOp.XSETBV,
    );
    assert.equal(c.state.xcr0, 3);
    c.setReg(Reg.RCX, 0);
    systemOps.xgetbv(cpu, false);
    assert.equal(c.reg(Reg.RAX), 3);
    assert.equal(c.reg(Reg.RDX), 0);
  });
});
