/**
 * Hand-checked unit tests of the SSE floating-point unit
 * (engine/cpu/simd/sse-fp.ts, sse-cvt.ts, engine/cpu/fpu/softfloat-sse.ts):
 * each case sets XMM registers and MXCSR directly, runs a few hand-encoded
 * instruction bytes in a 64-bit test machine and checks the result bits, the
 * MXCSR flags and faults against values worked out from the Intel SDM.
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { createMachine, runUntilExit, type TestMachine } from '../helpers/engine-runner';

const CODE = 0x300000;
const DATA = 0x200000;

let m: TestMachine;

function f32bits(x: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, x, true);
  return b.getInt32(0, true);
}
function f64bits(x: number): [number, number] {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return [b.getInt32(0, true), b.getInt32(4, true)];
}
function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

/** Runs `bytes` (then INT3) with `mxcsr`; returns the exception vector that ended it (3 = reached the end). */
function run(bytes: number[], mxcsr = 0x1f80, cr4Extra = 0x600): number {
  m.cpu.state.cr4 = 0x20 | cr4Extra;
  m.cpu.state.mxcsr = mxcsr;
  m.mem.writeBytes(CODE, new Uint8Array([...bytes, 0xcc]));
  m.cpu.flushCodeCache();
  m.cpu.state.ripLo = CODE;
  m.cpu.state.ripHi = 0;
  m.cpu.stateChanged();
  const r = runUntilExit(m.cpu, 100);
  assert.equal(r.thrown, undefined, r.thrown);
  assert.equal(r.exit, ExitReason.EXCEPTION);
  return r.vector;
}
function setX(reg: number, lanes: number[]): void {
  for (let k = 0; k < 4; k++) m.cpu.state.xmm[reg * 4 + k] = lanes[k] ?? 0;
}
function setS(reg: number, ...vals: number[]): void {
  setX(
    reg,
    vals.map((v) => f32bits(v)),
  );
}
function setD(reg: number, a: number, b = 0): void {
  setX(reg, [...f64bits(a), ...f64bits(b)]);
}
function lane(reg: number, k: number): number {
  return m.cpu.state.xmm[reg * 4 + k];
}
function laneD(reg: number, k: number): number {
  const b = new DataView(new ArrayBuffer(8));
  b.setInt32(0, lane(reg, 2 * k), true);
  b.setInt32(4, lane(reg, 2 * k + 1), true);
  return b.getFloat64(0, true);
}
function flags(): number {
  return m.cpu.state.mxcsr & 0x3f;
}

// Encodings (xmm0 = dest, xmm1 = source).
const ADDPS = [0x0f, 0x58, 0xc1];
const ADDSS = [0xf3, 0x0f, 0x58, 0xc1];
const MULSS = [0xf3, 0x0f, 0x59, 0xc1];
const DIVSS = [0xf3, 0x0f, 0x5e, 0xc1];
const MULSD = [0xf2, 0x0f, 0x59, 0xc1];
const ADDSD = [0xf2, 0x0f, 0x58, 0xc1];
const DIVSD = [0xf2, 0x0f, 0x5e, 0xc1];
const SQRTSD = [0xf2, 0x0f, 0x51, 0xc1];
const MINSS = [0xf3, 0x0f, 0x5d, 0xc1];
const MAXSS = [0xf3, 0x0f, 0x5f, 0xc1];
const RC = { RN: 0, RD: 0x2000, RU: 0x4000, RZ: 0x6000 };

describe('CPU SSE floating point (hand-checked)', () => {
  before(() => {
    m = createMachine(64);
  });

  it('ADDPS adds four lanes; exact results set no flag', () => {
    setS(0, 1, 2, -3, 0.5);
    setS(1, 0.5, 2, 3, 0.25);
    assert.equal(run(ADDPS), 3);
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(0, k)),
      [f32bits(1.5), f32bits(4), 0, f32bits(0.75)],
    );
    assert.equal(flags(), 0);
  });

  it('rounding modes: 1 + 2^-30 in binary32 (RN, RD, RU, RZ) and PE', () => {
    const tiny = Math.pow(2, -30);
    const cases: Array<[number, number, number]> = [
      [RC.RN, 1, 1],
      [RC.RD, 1, 1],
      [RC.RU, 1, 1 + Math.pow(2, -23)],
      [RC.RZ, 1, 1],
      [RC.RN, -1, -1],
      [RC.RD, -1, -(1 + Math.pow(2, -23))],
      [RC.RU, -1, -1],
      [RC.RZ, -1, -1],
    ];
    for (const [rc, a, want] of cases) {
      setS(0, a);
      setS(1, a < 0 ? -tiny : tiny);
      assert.equal(run(ADDSS, 0x1f80 | rc), 3);
      assert.equal(hex(lane(0, 0)), hex(f32bits(want)), `rc=${rc} a=${a}`);
      assert.equal(flags(), 0x20, 'PE');
    }
  });

  it('binary64 directed rounding: 1/3 rounds down in RZ/RD, up in RU; exact sqrt sets no PE', () => {
    const third = 1 / 3; // RN(1/3) is below 1/3
    for (const [rc, up] of [
      [RC.RN, false],
      [RC.RD, false],
      [RC.RZ, false],
      [RC.RU, true],
    ] as Array<[number, boolean]>) {
      setD(0, 1);
      setD(1, 3);
      run(DIVSD, 0x1f80 | rc);
      const got = laneD(0, 0);
      assert.equal(got, up ? third + Math.pow(2, -54) : third, `rc=${rc}`);
      assert.equal(flags(), 0x20);
    }
    setD(0, 0);
    setD(1, 2.25);
    run(SQRTSD);
    assert.equal(laneD(0, 0), 1.5);
    assert.equal(flags(), 0);
    setD(1, 2);
    run(SQRTSD, 0x1f80 | RC.RU);
    assert.equal(laneD(0, 0), Math.SQRT2); // RN(sqrt 2) is above sqrt 2
    run(SQRTSD, 0x1f80 | RC.RD);
    assert.equal(laneD(0, 0), Math.SQRT2 - Math.pow(2, -52));
  });

  it('NaN rules: first operand NaN quietened; SNaN sets IE; invalid gives the QNaN indefinite', () => {
    setX(0, [0x7f800001]); // SNaN
    setX(1, [0x7fc00002]); // QNaN
    run(ADDSS);
    assert.equal(hex(lane(0, 0)), hex(0x7fc00001));
    assert.equal(flags(), 1);
    setX(0, [f32bits(1)]);
    setX(1, [0x7fc00002]);
    run(ADDSS);
    assert.equal(hex(lane(0, 0)), hex(0x7fc00002));
    assert.equal(flags(), 0);
    setS(0, Infinity);
    setS(1, -Infinity);
    run(ADDSS);
    assert.equal(hex(lane(0, 0)), hex(0xffc00000));
    assert.equal(flags(), 1);
    setD(0, 0);
    setD(1, 0);
    run(DIVSD);
    assert.deepEqual([lane(0, 0), lane(0, 1) >>> 0], [0, 0xfff80000]);
    assert.equal(flags(), 1);
  });

  it('MINSS/MAXSS return the second operand for a NaN (IE even for QNaN) and for two zeros', () => {
    setX(0, [0x7fc00000]);
    setS(1, 2);
    run(MINSS);
    assert.equal(lane(0, 0), f32bits(2));
    assert.equal(flags(), 1);
    setS(0, 0);
    setS(1, -0);
    run(MAXSS);
    assert.equal(hex(lane(0, 0)), hex(0x80000000));
    setS(0, -0);
    setS(1, 0);
    run(MINSS);
    assert.equal(lane(0, 0), 0);
    assert.equal(flags(), 0);
  });

  it('underflow: exact denormal result sets nothing; tininess is detected after rounding; FTZ flushes', () => {
    setS(0, Math.pow(2, -100));
    setS(1, Math.pow(2, -30));
    run(MULSS);
    assert.equal(lane(0, 0), 1 << 19); // 2^-130: denormal, exact
    assert.equal(flags(), 0);
    // (1 - 2^-23) * 2^-126 (1 + 2^-23) = 2^-126 - 2^-172: rounds to 2^-126 with unbounded exponent: not tiny.
    setX(0, [0x3f7ffffe]);
    setX(1, [0x00800001]);
    run(MULSS);
    assert.equal(hex(lane(0, 0)), hex(0x00800000));
    assert.equal(flags(), 0x20, 'PE only (no UE: tininess after rounding)');
    // (1 - 2^-24) * 2^-126 = 2^-126 - 2^-150: tiny, rounds (tie, even) to 2^-126: UE + PE.
    setX(0, [0x3f7fffff]);
    setX(1, [0x00800000]);
    run(MULSS);
    assert.equal(hex(lane(0, 0)), hex(0x00800000));
    assert.equal(flags(), 0x30);
    // FTZ: an exact denormal result becomes +0 with UE and PE.
    setS(0, Math.pow(2, -100));
    setS(1, Math.pow(2, -30));
    run(MULSS, 0x1f80 | 0x8000);
    assert.equal(lane(0, 0), 0);
    assert.equal(flags(), 0x30);
    // binary64: 2^-1000 * 2^-60 = 2^-1060 exact denormal; * 3 * 2^-1073 inexact.
    setD(0, Math.pow(2, -1000));
    setD(1, Math.pow(2, -60));
    run(MULSD);
    assert.equal(laneD(0, 0), Math.pow(2, -1060));
    assert.equal(flags(), 0);
    setD(0, 1.5);
    setD(1, Math.pow(2, -1074));
    run(MULSD, 0x1f80 | RC.RZ);
    assert.equal(laneD(0, 0), Math.pow(2, -1074));
    assert.equal(flags(), 0x32); // DE (denormal operand), UE, PE
    setD(0, 1.5);
    setD(1, Math.pow(2, -1074));
    run(MULSD, 0x1f80 | RC.RU);
    assert.equal(laneD(0, 0), Math.pow(2, -1073));
  });

  it('overflow: masked OE gives inf (RN) or MAX (RZ) with OE+PE', () => {
    setD(0, Number.MAX_VALUE);
    setD(1, Number.MAX_VALUE);
    run(ADDSD);
    assert.equal(laneD(0, 0), Infinity);
    assert.equal(flags(), 0x28);
    setD(0, Number.MAX_VALUE);
    setD(1, Number.MAX_VALUE);
    run(ADDSD, 0x1f80 | RC.RZ);
    assert.equal(laneD(0, 0), Number.MAX_VALUE);
    assert.equal(flags(), 0x28);
    setS(0, 3e38);
    setS(1, 10);
    run(MULSS, 0x1f80 | RC.RD);
    assert.equal(hex(lane(0, 0)), hex(0x7f7fffff));
  });

  it('DAZ: denormal operands as zero, no DE; without DAZ DE is set', () => {
    setX(0, [1]);
    setS(1, 1);
    run(ADDSS);
    assert.equal(flags(), 0x22); // DE, PE (1 + 2^-149 inexact)
    setX(0, [1]);
    setS(1, 1);
    run(ADDSS, 0x1f80 | 0x40);
    assert.equal(lane(0, 0), f32bits(1));
    assert.equal(flags(), 0);
  });

  it('unmasked exception: #XM with OSXMMEXCPT, #UD without; flag set, destination unchanged', () => {
    setS(0, 1);
    setS(1, 0);
    assert.equal(run(DIVSS, 0x1f80 & ~0x200), 19);
    assert.equal(lane(0, 0), f32bits(1));
    assert.equal(flags(), 4);
    assert.equal(run(DIVSS, 0x1f80 & ~0x200, 0x200), 6);
    assert.equal(lane(0, 0), f32bits(1));
    // Unmasked PE only: post-computation exception, destination unchanged.
    setS(0, 1);
    setS(1, 3);
    assert.equal(run(DIVSS, 0x1f80 & ~0x1000), 19);
    assert.equal(lane(0, 0), f32bits(1));
    assert.equal(flags(), 0x20);
  });

  it('COMISS/UCOMISS flags; QNaN signals IE only for COMISS', () => {
    const COMISS = [0x0f, 0x2f, 0xc1];
    const UCOMISS = [0x0f, 0x2e, 0xc1];
    const cases: Array<[number, number, number]> = [
      [2, 1, 0],
      [1, 2, 1],
      [1, 1, 0x40],
    ];
    for (const [a, b, f] of cases) {
      setS(0, a);
      setS(1, b);
      m.cpu.setRflags(0x8d5);
      run(COMISS);
      assert.equal(m.cpu.getRflags() & 0x8d5, f, `${a} vs ${b}`);
    }
    setX(0, [0x7fc00000]);
    setS(1, 1);
    run(UCOMISS);
    assert.equal(m.cpu.getRflags() & 0x8d5, 0x45);
    assert.equal(flags(), 0);
    run(COMISS);
    assert.equal(flags(), 1);
  });

  it('CMPPS predicates 0-7 on (1, 2), (2, 2), (NaN, 1)', () => {
    for (let p = 0; p < 8; p++) {
      setX(0, [f32bits(1), f32bits(2), 0x7fc00000, f32bits(3)]);
      setX(1, [f32bits(2), f32bits(2), f32bits(1), f32bits(1)]);
      run([0x0f, 0xc2, 0xc1, p]);
      const lt = [false, true, true, false, true, false, false, true][p];
      const eq = [true, false, true, false, false, true, false, true][p];
      const un = [false, false, false, true, true, true, true, false][p];
      const gt = [false, false, false, false, true, true, true, true][p];
      assert.deepEqual(
        [0, 1, 2, 3].map((k) => lane(0, k)),
        [lt, eq, un, gt].map((v) => (v ? -1 : 0)),
        `predicate ${p}`,
      );
      assert.equal(flags(), p === 1 || p === 2 || p === 5 || p === 6 ? 1 : 0, `IE for predicate ${p}`);
    }
  });

  it('conversions: CVTTSS2SI, CVTSS2SI in RN (ties even), indefinite; CVTSI2SD r64 rounding', () => {
    const CVTTSS2SI = [0xf3, 0x0f, 0x2c, 0xc1]; // eax, xmm1
    const CVTSS2SI = [0xf3, 0x0f, 0x2d, 0xc1];
    setS(1, -3.9);
    run(CVTTSS2SI);
    assert.equal(m.cpu.state.gprLo[0], -3);
    assert.equal(flags(), 0x20);
    setS(1, 2.5);
    run(CVTSS2SI);
    assert.equal(m.cpu.state.gprLo[0], 2);
    setS(1, 3e9);
    run(CVTSS2SI);
    assert.equal(m.cpu.state.gprLo[0] >>> 0, 0x80000000);
    assert.equal(flags(), 1);
    // REX.W cvtss2si rax: 2^40
    setS(1, Math.pow(2, 40));
    run([0xf3, 0x48, 0x0f, 0x2d, 0xc1]);
    assert.deepEqual([m.cpu.state.gprLo[0], m.cpu.state.gprHi[0]], [0, 256]);
    // cvtsi2sd xmm0, rax with rax = 2^63 - 1 -> 2^63 (PE); RZ -> 2^63 - 1024
    m.cpu.state.gprLo[0] = -1;
    m.cpu.state.gprHi[0] = 0x7fffffff;
    run([0xf2, 0x48, 0x0f, 0x2a, 0xc0]);
    assert.equal(laneD(0, 0), 9223372036854775808);
    assert.equal(flags(), 0x20);
    run([0xf2, 0x48, 0x0f, 0x2a, 0xc0], 0x1f80 | RC.RZ);
    assert.equal(laneD(0, 0), 9223372036854774784);
  });

  it('CVTSD2SS / CVTSS2SD: NaN payloads, rounding', () => {
    setX(1, [0x7f800001]);
    run([0xf3, 0x0f, 0x5a, 0xc1]); // cvtss2sd xmm0, xmm1
    assert.deepEqual([lane(0, 0), lane(0, 1)], [0x20000000, 0x7ff80000]);
    assert.equal(flags(), 1);
    setD(1, 1 + Math.pow(2, -30));
    run([0xf2, 0x0f, 0x5a, 0xc1], 0x1f80 | RC.RU); // cvtsd2ss
    assert.equal(lane(0, 0), f32bits(1 + Math.pow(2, -23)));
    assert.equal(flags(), 0x20);
  });

  it('MOVAPS from a misaligned address is #GP(0); MOVUPS is not', () => {
    m.mem.writeBytes(
      DATA,
      new Uint8Array(32).map((_, i) => i),
    );
    m.cpu.state.gprLo[0] = DATA + 4;
    m.cpu.state.gprHi[0] = 0;
    assert.equal(run([0x0f, 0x28, 0x00]), 13); // movaps xmm0, [rax]
    assert.equal(run([0x0f, 0x10, 0x00]), 3); // movups
    assert.equal(hex(lane(0, 0)), hex(0x07060504));
  });

  it('RCPPS/RSQRTPS within 1.5 * 2^-12; ROUNDPS modes; SHUFPS; CVTPI2PS enters MMX state', () => {
    const xs = [3, 0.1, 1234.5, 7e-30];
    setS(1, ...xs);
    run([0x0f, 0x53, 0xc1]); // rcpps
    for (let k = 0; k < 4; k++) {
      const got = new DataView(new Int32Array([lane(0, k)]).buffer).getFloat32(0, true);
      assert.ok(Math.abs(got * xs[k] - 1) <= 1.5 * Math.pow(2, -12), `rcp ${xs[k]}: ${got}`);
    }
    run([0x0f, 0x52, 0xc1]); // rsqrtps
    for (let k = 0; k < 4; k++) {
      const got = new DataView(new Int32Array([lane(0, k)]).buffer).getFloat32(0, true);
      assert.ok(Math.abs(got * Math.sqrt(xs[k]) - 1) <= 1.5 * Math.pow(2, -12), `rsqrt ${xs[k]}`);
    }
    setS(1, 1.5, -1.5, 2.5, -0.5);
    const want = [
      [2, -2, 2, -0],
      [1, -2, 2, -1],
      [2, -1, 3, -0],
      [1, -1, 2, -0],
    ];
    for (let mode = 0; mode < 4; mode++) {
      run([0x66, 0x0f, 0x3a, 0x08, 0xc1, mode]); // roundps xmm0, xmm1, mode
      assert.deepEqual(
        [0, 1, 2, 3].map((k) => lane(0, k)),
        want[mode].map(f32bits),
        `mode ${mode}`,
      );
      assert.equal(flags(), 0x20);
    }
    run([0x66, 0x0f, 0x3a, 0x08, 0xc1, 8]); // precision suppressed
    assert.equal(flags(), 0);
    setX(0, [10, 11, 12, 13]);
    setX(1, [20, 21, 22, 23]);
    run([0x0f, 0xc6, 0xc1, 0x1b]); // shufps imm 00 01 10 11
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(0, k)),
      [13, 12, 21, 20],
    );
    m.cpu.state.fpuTw = 0xffff;
    m.cpu.state.fpSigLo[1] = 7;
    m.cpu.state.fpSigHi[1] = -2;
    run([0x0f, 0x2a, 0xc1]); // cvtpi2ps xmm0, mm1
    assert.deepEqual([lane(0, 0), lane(0, 1)], [f32bits(7), f32bits(-2)]);
    assert.equal(m.cpu.state.fpuTw, 0);
  });

  it('DPPS, HADDPS, ADDSUBPD, BLENDVPS, INSERTPS, EXTRACTPS', () => {
    setS(0, 1, 2, 3, 4);
    setS(1, 5, 6, 7, 8);
    run([0x66, 0x0f, 0x3a, 0x40, 0xc1, 0xf5]); // dpps all products, lanes 0, 2
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(0, k)),
      [70, 0, 70, 0].map(f32bits),
    );
    setS(0, 1, 2, 3, 4);
    run([0xf2, 0x0f, 0x7c, 0xc1]); // haddps
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(0, k)),
      [3, 7, 11, 15].map(f32bits),
    );
    setD(2, 10, 20);
    setD(3, 1, 2);
    run([0x66, 0x0f, 0xd0, 0xd3]); // addsubpd xmm2, xmm3
    assert.deepEqual([laneD(2, 0), laneD(2, 1)], [9, 22]);
    setX(0, [-1, 0, -1, 0]);
    setX(2, [1, 2, 3, 4]);
    setX(3, [5, 6, 7, 8]);
    run([0x66, 0x0f, 0x38, 0x14, 0xd3]); // blendvps xmm2, xmm3
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(2, k)),
      [5, 2, 7, 4],
    );
    run([0x66, 0x0f, 0x3a, 0x21, 0xd3, 0xd1]); // insertps xmm2, xmm3, src 3 -> lane 1, zero lane 0
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => lane(2, k)),
      [0, 8, 7, 4],
    );
    run([0x66, 0x0f, 0x3a, 0x17, 0xd0, 0x02]); // extractps eax, xmm2, 2
    assert.equal(m.cpu.state.gprLo[0], 7);
  });

  // Found by test/unit/cpu-simd-fp-diff.test.ts against the host CPU (kept here for hosts without it).
  it('host-found cases: inf/0 and DAZ, MIN with a NaN and DAZ, CVTSI2SS r64 ties, SQRTSD near 1, unmasked UE PE, DPPS steps', () => {
    setX(0, [0xff800000 | 0]);
    setX(1, [0x007fffff]);
    assert.equal(run(DIVSS, 0x1fc0), 3); // -inf / denormal (DAZ: / 0) = -inf exactly: no ZE
    assert.equal(hex(lane(0, 0)), hex(0xff800000));
    assert.equal(flags(), 0);
    setX(0, [0x7fc12345]);
    setX(1, [0x80000001]);
    assert.equal(run(MINSS, 0x1fc0), 3); // NaN first: the second operand as DAZ sees it (-0)
    assert.equal(hex(lane(0, 0)), hex(0x80000000));
    assert.equal(flags(), 1);
    m.cpu.state.gprLo[1] = 0x00000001;
    m.cpu.state.gprHi[1] = 0x40000040;
    assert.equal(run([0xf3, 0x48, 0x0f, 0x2a, 0xc1]), 3); // cvtsi2ss xmm0, rcx = 2^62 + 2^38 + 1: above the tie
    assert.equal(hex(lane(0, 0)), hex(0x5e800001));
    assert.equal(flags(), 0x20);
    setX(1, [-1, 0x3fefffff]); // 1 - 2^-53
    assert.equal(run(SQRTSD), 3);
    assert.deepEqual([hex(lane(0, 0)), hex(lane(0, 1))], [hex(-1), hex(0x3fefffff)]);
    setX(0, [0, 0x00100000]); // 2^-1022
    setX(1, [0xa24cee2a | 0, 0xb80ce3fd | 0]);
    assert.equal(run(MULSD, 0x1780), 19); // unmasked UE, exact when exponent-wrapped: UE without PE
    assert.equal(flags(), 0x10);
    setS(0, 1e-20, 0, 0, 0);
    setS(1, 1e-20, 0, 0, 0);
    assert.equal(run([0x66, 0x0f, 0x3a, 0x40, 0xc1, 0x1f], 0x1780 & ~0x100), 19); // dpps: UE at the multiply step
    assert.equal(flags(), 0x30);
  });
});
