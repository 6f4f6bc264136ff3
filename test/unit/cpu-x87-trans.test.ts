/**
 * Hand-checked x87 transcendental cases on the soft-float core
 * (engine/cpu/fpu/softfloat-trans.ts): the SDM's special-value tables and
 * exact cases bit for bit with their flags, and seeded random operands in
 * all four rounding modes checked against the BigInt reference in
 * test/helpers/gen-x87.ts (`transRef`): every result must be the correctly
 * rounded reference value (docs/cpu-testing.md "x87 transcendentals"), C1
 * must say whether the rounding increased the magnitude, PE must be set.
 * The host-differential cases are in cpu-x87-trans-diff.test.ts.
 */
import { strict as assert } from 'node:assert';
import { Exc, F80, sf, sfMode } from '../../engine/cpu/fpu/softfloat';
import * as tr from '../../engine/cpu/fpu/softfloat-trans';
import { bfFromF80, checkRounding, f80, f80Text, transRef, type BF } from '../helpers/gen-x87';
import { Rng } from '../helpers/x86-gen';

const BIAS = 16383;
const v = (s: number, e: number, hi: number, lo = 0) => new F80().set(s, e, hi, lo);
const ONE = v(0, BIAS, 0x80000000);
const ZERO = v(0, 0, 0);
const NZERO = v(1, 0, 0);
const INF = v(0, 0x7fff, 0x80000000);
const NINF = v(1, 0x7fff, 0x80000000);
const SNAN = v(0, 0x7fff, 0xa0000000, 5);
const text = (a: F80) => f80Text(f80(a.s, a.e, a.hi, a.lo));
const bfOf = (a: F80): BF => bfFromF80(f80(a.s, a.e, a.hi, a.lo));

/** Runs f with FCW (all masked, rc) and returns [result text, exceptions, C1]. */
function run(rc: number, f: () => void): [number, boolean] {
  sfMode(0x037f | (rc << 10));
  f();
  return [sf.exc, sf.up];
}

function expect(got: F80, want: F80, exc: number, wantExc: number, what: string): void {
  assert.equal(text(got), text(want), `${what}: value`);
  assert.equal(exc, wantExc, `${what}: exceptions ${exc.toString(16)} want ${wantExc.toString(16)}`);
}

describe('x87 transcendentals: special values (SDM tables)', () => {
  const o = new F80(),
    o2 = new F80();
  it('FSIN/FCOS/FSINCOS/FPTAN of zeros are exact; infinities are invalid; SNaN quieted', () => {
    for (const z of [ZERO, NZERO]) {
      let [e] = run(0, () => tr.fsin(z, o));
      expect(o, z, e, 0, 'fsin(0)');
      [e] = run(0, () => tr.fcos(z, o));
      expect(o, ONE, e, 0, 'fcos(0)');
      [e] = run(0, () => tr.fptan(z, o, o2));
      expect(o, z, e, 0, 'fptan(0)');
      expect(o2, ONE, e, 0, 'fptan(0) pushes 1.0');
      [e] = run(0, () => tr.fsincos(z, o, o2));
      expect(o, z, e, 0, 'fsincos(0) sin');
      expect(o2, ONE, e, 0, 'fsincos(0) cos');
    }
    for (const i of [INF, NINF]) {
      const [e] = run(0, () => tr.fsin(i, o));
      expect(o, v(1, 0x7fff, 0xc0000000), e, Exc.IE, 'fsin(inf)');
    }
    const [e] = run(0, () => tr.fcos(SNAN, o));
    expect(o, v(0, 0x7fff, 0xe0000000, 5), e, Exc.IE, 'fcos(SNaN)');
    assert.equal(tr.trigOutOfRange(v(0, BIAS + 63, 0x80000000)), true, '2^63 is out of range');
    assert.equal(
      tr.trigOutOfRange(v(1, BIAS + 62, 0xffffffff, 0xffffffff)),
      false,
      '-(2^63 - 1) is in range',
    );
  });

  it('F2XM1: ±0, ±1, -inf, +inf exact in every rounding mode', () => {
    const cases: Array<[F80, F80]> = [
      [ZERO, ZERO],
      [NZERO, NZERO],
      [ONE, ONE],
      [v(1, BIAS, 0x80000000), v(1, BIAS - 1, 0x80000000)],
      [NINF, v(1, BIAS, 0x80000000)],
      [INF, INF],
    ];
    for (const [a, w] of cases) {
      for (let rc = 0; rc < 4; rc++) {
        const [e, up] = run(rc, () => tr.f2xm1(a, o));
        expect(o, w, e, 0, `f2xm1(${text(a)}) rc=${rc}`);
        assert.equal(up, false, 'C1');
      }
    }
  });

  it('FYL2X: the table (x = ST0, y = ST1) and exact powers of two', () => {
    const F = v(0, BIAS + 1, 0xc0000000); // 3
    const NF = v(1, BIAS + 1, 0xc0000000);
    const half = v(0, BIAS - 1, 0x80000000);
    const rows: Array<[F80, F80, F80, number, string]> = [
      [ONE, F, ZERO, 0, 'log2(1) * 3 = +0'],
      [ONE, NF, NZERO, 0, 'log2(1) * -3 = -0'],
      [ONE, INF, v(1, 0x7fff, 0xc0000000), Exc.IE, 'log2(1) * inf invalid'],
      [ZERO, F, NINF, Exc.ZE, 'log2(0) * 3: ZE, -inf'],
      [NZERO, NF, INF, Exc.ZE, 'log2(-0) * -3: ZE, +inf'],
      [ZERO, NINF, INF, 0, 'log2(0) * -inf = +inf'],
      [ZERO, ZERO, v(1, 0x7fff, 0xc0000000), Exc.IE, 'log2(0) * 0 invalid'],
      [NF, F, v(1, 0x7fff, 0xc0000000), Exc.IE, 'log2(negative) invalid'],
      [INF, ZERO, v(1, 0x7fff, 0xc0000000), Exc.IE, 'log2(inf) * 0 invalid'],
      [INF, NF, NINF, 0, 'log2(inf) * -3 = -inf'],
      [half, NINF, INF, 0, 'log2(0.5) * -inf = +inf'],
      [half, ZERO, NZERO, 0, 'log2(0.5) * +0 = -0'],
      [v(0, BIAS + 3, 0x80000000), F, v(0, BIAS + 3, 0x90000000), 0, 'log2(8) * 3 = 9 exact'],
      [half, F, NF, 0, 'log2(0.5) * 3 = -3 exact'],
    ];
    for (const [x, y, w, we, what] of rows) {
      const [e] = run(0, () => tr.fyl2x(x, y, o));
      expect(o, w, e, we, what);
    }
  });

  it('FYL2XP1: zeros take sign(x) xor sign(y); infinities', () => {
    const F = v(0, BIAS + 1, 0xc0000000);
    const eps = v(1, BIAS - 5, 0x80000000);
    const rows: Array<[F80, F80, F80, number, string]> = [
      [NZERO, F, NZERO, 0, '-0, +F: -0'],
      [ZERO, v(1, BIAS, 0x80000000), NZERO, 0, '+0, -F: -0'],
      [NZERO, NZERO, ZERO, 0, '-0, -0: +0'],
      [ZERO, INF, v(1, 0x7fff, 0xc0000000), Exc.IE, '+0, +inf invalid'],
      [eps, INF, NINF, 0, '-eps, +inf: -inf'],
      [eps, NZERO, ZERO, 0, '-eps, -0: +0'],
    ];
    for (const [x, y, w, we, what] of rows) {
      const [e] = run(0, () => tr.fyl2xp1(x, y, o));
      expect(o, w, e, we, what);
    }
  });

  it('FPATAN: quadrant rules for zeros and infinities, pi constants rounded (PE, C1)', () => {
    const F = v(0, BIAS + 1, 0xc0000000);
    const NF = v(1, BIAS + 1, 0xc0000000);
    // pi = C90FDAA2 2168C234 C4C6..., rounded to nearest: ...C235 (up), toward zero: ...C234.
    const piN = v(0, BIAS + 1, 0xc90fdaa2, 0x2168c235);
    const piZ = v(0, BIAS + 1, 0xc90fdaa2, 0x2168c234);
    let [e, up] = run(0, () => tr.fpatan(ZERO, NZERO, o));
    expect(o, piN, e, Exc.PE, 'atan2(+0, -0) = +pi');
    assert.equal(up, true, 'pi rounded up in nearest');
    [e, up] = run(3, () => tr.fpatan(NZERO, NF, o));
    expect(o, v(1, piZ.e, piZ.hi, piZ.lo), e, Exc.PE, 'atan2(-0, -F) = -pi (chop)');
    assert.equal(up, false);
    [e] = run(0, () => tr.fpatan(NZERO, ZERO, o));
    expect(o, NZERO, e, 0, 'atan2(-0, +0) = -0');
    [e] = run(0, () => tr.fpatan(F, INF, o));
    expect(o, ZERO, e, 0, 'atan2(F, +inf) = +0');
    [e] = run(0, () => tr.fpatan(INF, INF, o));
    expect(o, v(0, BIAS - 1, 0xc90fdaa2, 0x2168c235), e, Exc.PE, 'atan2(inf, inf) = pi/4');
    [e] = run(0, () => tr.fpatan(NINF, NINF, o));
    expect(o, v(1, BIAS + 1, 0x96cbe3f9, 0x990e91a8), e, Exc.PE, 'atan2(-inf, -inf) = -3pi/4');
    [e] = run(0, () => tr.fpatan(NF, ZERO, o));
    expect(o, v(1, BIAS, 0xc90fdaa2, 0x2168c235), e, Exc.PE, 'atan2(-F, 0) = -pi/2');
    [e] = run(0, () => tr.fpatan(F, F, o));
    expect(o, v(0, BIAS - 1, 0xc90fdaa2, 0x2168c235), e, Exc.PE, 'atan2(3, 3) = pi/4');
  });

  it('denormal operands: DE, and the tiny results underflow (UE, PE) on the right side of x', () => {
    const o = new F80();
    const d = v(0, 0, 0x40000000, 0x123); // denormal
    // sin(d) = d - d^3/6: nearest gives d, toward zero / down give the next lower denormal.
    let [e] = run(0, () => tr.fsin(d, o));
    expect(o, d, e, Exc.DE | Exc.UE | Exc.PE, 'fsin(denormal) nearest');
    [e] = run(3, () => tr.fsin(d, o));
    expect(o, v(0, 0, 0x40000000, 0x122), e, Exc.DE | Exc.UE | Exc.PE, 'fsin(denormal) chop');
    // tan(d) = d + d^3/3: up gives the next denormal.
    [e] = run(2, () => tr.fptan(d, o, new F80()));
    expect(o, v(0, 0, 0x40000000, 0x124), e, Exc.DE | Exc.UE | Exc.PE, 'fptan(denormal) up');
    // atan(d / 1) = d - d^3/3: down gives the next lower one.
    [e] = run(1, () => tr.fpatan(d, ONE, o));
    expect(o, v(0, 0, 0x40000000, 0x122), e, Exc.DE | Exc.UE | Exc.PE, 'fpatan(denormal, 1) down');
  });
});

describe('x87 transcendentals vs the BigInt reference (all rounding modes)', () => {
  const names = ['fsin', 'fcos', 'fptan', 'fsincos', 'f2xm1', 'fyl2x', 'fyl2xp1', 'fpatan'];
  const N = Number(process.env.PVSCOPE_X87_TRANS_CASES) || 60;
  for (const nm of names) {
    it(`${nm}: ${N} random operands correctly rounded, C1 = rounded up, PE`, function () {
      this.timeout(120000);
      const r = new Rng(nm.length * 977 + 3);
      const X = new F80(),
        Y = new F80(),
        O1 = new F80(),
        O2 = new F80();
      let maxErr = 0;
      let allBelow1 = true;
      for (let i = 0; i < N; i++) {
        const rc = i & 3;
        let ex: number;
        const k = r.int(4);
        if (nm === 'f2xm1') ex = BIAS - 1 - r.int(k ? 70 : 16000);
        else if (nm === 'fyl2xp1') ex = BIAS - 3 - r.int(k ? 70 : 16000);
        else if (nm === 'fyl2x') ex = BIAS + (k ? r.int(200) - 100 : r.int(32000) - 16000);
        else if (nm === 'fpatan') ex = BIAS + r.int(k ? 140 : 32000) - (k ? 70 : 16000);
        else ex = Math.min(BIAS + 62, BIAS + r.int(k ? 100 : 200) - (k ? 70 : 170));
        X.set(r.int(2), ex, (r.u32() | 0x80000000) >>> 0, r.u32());
        if (nm === 'fyl2x') X.s = 0;
        if (nm === 'fyl2xp1' && ex === BIAS - 3) X.hi = (X.hi & 0x3fffffff) | 0x80000000;
        Y.set(r.int(2), BIAS + r.int(40) - 20, (r.u32() | 0x80000000) >>> 0, r.u32());
        sfMode(0x037f | (rc << 10));
        let outs: F80[];
        if (nm === 'fsin') (tr.fsin(X, O1), (outs = [O1]));
        else if (nm === 'fcos') (tr.fcos(X, O1), (outs = [O1]));
        else if (nm === 'fptan') (tr.fptan(X, O2, O1), (outs = [O1, O2]));
        else if (nm === 'fsincos') (tr.fsincos(X, O2, O1), (outs = [O1, O2]));
        else if (nm === 'f2xm1') (tr.f2xm1(X, O1), (outs = [O1]));
        else if (nm === 'fyl2x') (tr.fyl2x(X, Y, O1), (outs = [O1]));
        else if (nm === 'fyl2xp1') (tr.fyl2xp1(X, Y, O1), (outs = [O1]));
        else (tr.fpatan(Y, X, O1), (outs = [O1]));
        const refs = transRef(nm, bfOf(X), bfOf(Y));
        const what = `${nm} rc=${rc} x=${text(X)} y=${text(Y)}`;
        assert.ok(sf.exc & Exc.PE, `${what}: PE`);
        refs.forEach((ref, j) => {
          if (!ref) {
            assert.equal(text(outs[j]), text(ONE), `${what}: pushed 1.0`);
            return;
          }
          const c = checkRounding(bfOf(outs[j]), ref, rc);
          maxErr = Math.max(maxErr, c.err);
          allBelow1 &&= c.below1;
          if (!c.hard)
            assert.ok(
              c.correct,
              `${what}: result ${j} ${text(outs[j])} not correctly rounded (err ${c.err} ulp)`,
            );
          else assert.ok(c.below1, `${what}: ${c.err} ulp`);
          // C1 is the sine's for FSINCOS (ST1) and the tangent's for FPTAN (ST1).
          const last = refs.length - 1;
          if (j === last && !c.hard) assert.equal(sf.up, c.up, `${what}: C1`);
        });
      }
      assert.ok(allBelow1, `max error ${maxErr} ulp`);
    });
  }
});

describe('x87 transcendentals: 160-bit primitives are exactly rounded to odd', () => {
  const { MP, mul, div, add, divSmall } = tr.mpForTest;
  type M = InstanceType<typeof MP>;
  const r = new Rng(99);
  const limb = () => {
    const k = r.int(6);
    return k === 0 ? 0xffff : k === 1 ? 0 : k === 2 ? 0x8000 : r.int(65536);
  };
  const rand = (e: number): M => {
    const x = new MP();
    x.z = false;
    x.e = e;
    x.s = r.int(2);
    for (let j = 0; j < 10; j++) x.m[j] = limb();
    x.m[0] |= 0x8000;
    return x;
  };
  const sig = (x: M) => x.m.reduce((v, l) => (v << 16n) | BigInt(l), 0n);
  /** Exact value num / den (den > 0) as a signed rational; d must be its truncation with the lost part jammed into the last bit. */
  function check(d: M, num: bigint, den: bigint, what: string): void {
    const neg = num < 0n;
    const an = neg ? -num : num;
    assert.equal(d.z, an === 0n, `${what}: zero`);
    if (d.z) return;
    assert.equal(d.s, neg ? 1 : 0, `${what}: sign`);
    // d = D * 2^(d.e - 160): D = an / den * 2^(160 - d.e)
    const sh = 160 - d.e;
    const n2 = sh >= 0 ? an << BigInt(sh) : an;
    const d2 = sh >= 0 ? den : den << BigInt(-sh);
    const q = n2 / d2;
    const want = n2 % d2 === 0n ? q : q | 1n;
    assert.equal(sig(d).toString(16), want.toString(16), what);
    assert.ok(want >> 159n === 1n, `${what}: normalized`);
  }
  it('mul, div, divSmall, add/sub on adversarial limb patterns', () => {
    const d = new MP();
    const val = (x: M) => (x.s ? -1n : 1n) * sig(x);
    for (let i = 0; i < 1500; i++) {
      const a = rand(0),
        b = rand(-r.int(r.int(2) ? 20 : 250));
      // Values: sig * 2^(e - 160); scale everything by 2^(160 - b.e + 160).
      mul(d, a, b);
      check(d, val(a) * val(b), 1n << BigInt(320 - a.e - b.e), `mul #${i}`);
      div(d, a, b);
      check(d, (a.s !== b.s ? -1n : 1n) * (sig(a) << BigInt(a.e - b.e + 400)), sig(b) << 400n, `div #${i}`);
      const n = 1 + r.int(65535);
      divSmall(d, a, n);
      check(d, val(a), BigInt(n) << BigInt(160 - a.e), `divSmall #${i}`);
      const sub = r.int(2) === 1;
      add(d, a, b, sub);
      check(
        d,
        (val(a) << BigInt(a.e - b.e)) + (sub ? -1n : 1n) * val(b),
        1n << BigInt(160 - b.e),
        `add #${i}`,
      );
    }
  });
});
