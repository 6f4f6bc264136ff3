/**
 * Generator of x87 differential cases (test/unit/cpu-x87-diff.test.ts): each
 * case body starts from a known FPU state (FNINIT, eight FLDZ, FNINIT, so
 * every data register holds +0 and is empty), loads a control word and up to
 * three 80-bit operands with FLDT (which raises nothing), runs ONE x87
 * instruction given as bytes, then stores the whole FPU state with FNSAVE
 * (32-bit layout, 108 bytes: FCW, FSW, FTW, pointers, ST0-ST7) into the
 * scratch page. FNSAVE does not wait, so unmasked exceptions are compared as
 * the pending state they leave (ES, B, unchanged destination); cases ending
 * in FWAIT check the #MF delivery itself. The pointer fields (FIP, FCS, FOP,
 * FDP, FDS) are cleared by the body after FNSAVE: the host's values depend
 * on its vendor's deprecations (Intel CPUID.7.EBX[13] FCS/FDS deprecation,
 * FOP only on unmasked exceptions) and its CS selector; the engine's pointer
 * updates are checked by unit tests instead.
 *
 * Scratch layout (offsets from the scratch base, held in RBX/EBX): 0x000 FCW,
 * 0x010/0x020/0x030 the 80-bit inputs x (ST0), y (ST1), z (ST2), 0x040 the
 * memory operand (16 bytes), 0x100 memory destinations (16 bytes), 0x200 the
 * FNSAVE image.
 *
 * Shapes: values are 10-byte little-endian arrays; cases carry memPatch
 * entries for the native harness. Deterministic from the seed.
 */
import { SCRATCH_BASE } from './native-harness';
import { Rng } from './x86-gen';

export const OFF_CW = 0x000;
export const OFF_X = 0x010;
export const OFF_Y = 0x020;
export const OFF_Z = 0x030;
export const OFF_MEM = 0x040;
export const OFF_DST = 0x100;
export const OFF_SAVE = 0x200;

export interface X87Case {
  id: string;
  /** Class (for grouping the tests). */
  cls: string;
  body: string;
  memPatch: Array<[number, number]>;
  /** Case ends with FWAIT and may raise #MF (SIGFPE natively). */
  waits: boolean;
  /** Description of the inputs (for failure messages). */
  note: string;
}

/** 80-bit value from sign, biased exponent, significand hi/lo (unsigned 32-bit). */
export function f80(s: number, e: number, hi: number, lo: number): number[] {
  const b: number[] = [];
  for (let i = 0; i < 4; i++) b.push((lo >>> (i * 8)) & 0xff);
  for (let i = 0; i < 4; i++) b.push((hi >>> (i * 8)) & 0xff);
  const se = (s << 15) | e;
  b.push(se & 0xff, se >>> 8);
  return b;
}

/** Text of an 80-bit value (sign exponent:significand in hex). */
export function f80Text(b: ArrayLike<number>, o = 0): string {
  const h = (i: number) => b[o + i].toString(16).padStart(2, '0');
  let sig = '';
  for (let i = 7; i >= 0; i--) sig += h(i);
  return `${h(9)}${h(8)}:${sig}`;
}

const SPECIAL: number[][] = [
  f80(0, 0, 0, 0),
  f80(1, 0, 0, 0),
  f80(0, 0x3fff, 0x80000000, 0),
  f80(1, 0x3fff, 0x80000000, 0),
  f80(0, 0x3fff, 0xc0000000, 0),
  f80(0, 0x4000, 0xc90fdaa2, 0x2168c235),
  f80(0, 0x7fff, 0x80000000, 0), // +inf
  f80(1, 0x7fff, 0x80000000, 0), // -inf
  f80(0, 0x7fff, 0xc0000000, 0x1234), // QNaN
  f80(1, 0x7fff, 0xa0000000, 0x5678), // SNaN
  f80(1, 0x7fff, 0xc0000000, 0), // indefinite
  f80(0, 0, 0x00000000, 0x1), // smallest denormal
  f80(0, 0, 0x40000000, 0), // denormal
  f80(0, 0, 0x80000000, 0x5), // pseudo-denormal
  f80(0, 0x1234, 0x40000000, 0), // unnormal
  f80(0, 0x7fff, 0x40000000, 0), // pseudo-NaN
  f80(0, 0x7ffe, 0xffffffff, 0xffffffff), // max
  f80(1, 0x0001, 0x80000000, 0), // -min normal
  f80(0, 0x3fff, 0x80000000, 1), // 1 + ulp
  f80(0, 0x3ffe, 0xffffffff, 0xffffffff), // 1 - ulp/2
  f80(0, 0x403e, 0xffffffff, 0xfffff800), // near 2^64
  f80(0, 0x401d, 0xb2d05e00, 0), // 3e8 (integer)
  f80(1, 0x3ffe, 0x80000000, 0), // -0.5
  f80(0, 0x4000, 0xa0000000, 0), // 2.5
];

function randomNormal(r: Rng, expLo: number, expHi: number): number[] {
  return f80(r.int(2), expLo + r.int(expHi - expLo + 1), (r.u32() | 0x80000000) >>> 0, r.u32());
}

/** A value with a low-bit pattern that makes 24/53-bit rounding interesting (ties, near-ties). */
function roundingValue(r: Rng): number[] {
  const kinds = [0x80, 0x7f, 0x81, 0x400, 0x3ff, 0x401, 0x80000000, 0x7fffffff];
  const hi = (r.u32() | 0x80000000) >>> 0;
  const k = r.pick(kinds);
  const lo = r.int(2) ? k : (r.u32() & ~0xfff) | (k & 0xfff);
  return f80(r.int(2), 0x3fff + r.int(40) - 20, r.int(2) ? (hi & ~0xff) | (k & 0xff) : hi, lo >>> 0);
}

function value(r: Rng): number[] {
  const k = r.int(10);
  if (k < 3) return r.pick(SPECIAL).slice(); // a copy: callers perturb values in place
  if (k < 6) return randomNormal(r, 0x3ff0, 0x400f);
  if (k < 8) return roundingValue(r);
  if (k < 9) return randomNormal(r, 1, 0x7ffe);
  // tiny / huge
  return r.int(2) ? randomNormal(r, 1, 80) : randomNormal(r, 0x7fa0, 0x7ffe);
}

/** Memory operand bytes: m32/m64 floats (specials and random), integers. */
function memValue(r: Rng, kind: 'm32' | 'm64' | 'm16i' | 'm32i' | 'm64i' | 'm80' | 'bcd'): number[] {
  const rnd = (n: number) => Array.from({ length: n }, () => r.int(256));
  switch (kind) {
    case 'm32': {
      const specials = [
        0, 0x80000000, 0x3f800000, 0x7f800000, 0xff800000, 0x7fc00001, 0x7f800001, 1, 0x807fffff,
      ];
      const v = r.int(3) ? (r.int(2) ? 0x3f000000 : 0) + (r.u32() & 0x0fffffff) : r.pick(specials);
      return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
    }
    case 'm64': {
      if (r.int(3)) {
        const b = rnd(8);
        b[7] = (b[7] & 0x80) | (r.int(2) ? 0x3f : b[7] & 0x7f);
        return b;
      }
      return r.pick([
        [0, 0, 0, 0, 0, 0, 0xf0, 0x7f],
        [0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
        [1, 0, 0, 0, 0, 0, 0xf0, 0x7f],
        [1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0x80],
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00],
      ]);
    }
    case 'm16i':
      return r.int(4)
        ? rnd(2)
        : r.pick([
            [0, 0x80],
            [0xff, 0x7f],
            [0, 0],
            [0xff, 0xff],
          ]);
    case 'm32i':
      return r.int(4)
        ? rnd(4)
        : r.pick([
            [0, 0, 0, 0x80],
            [0xff, 0xff, 0xff, 0x7f],
            [0, 0, 0, 0],
          ]);
    case 'm64i':
      return r.int(4)
        ? rnd(8)
        : r.pick([
            [0, 0, 0, 0, 0, 0, 0, 0x80],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
          ]);
    case 'm80':
      return value(r);
    default: {
      const b: number[] = [];
      for (let i = 0; i < 9; i++) b.push(r.int(10) | (r.int(10) << 4));
      b.push(r.int(2) ? 0x80 : 0);
      return b;
    }
  }
}

/** One instruction template: bytes (with {m} for the memory ModRM [rbx+0x40] or [rbx+0x100]), operands used. */
interface Op {
  cls: string;
  name: string;
  bytes: number[];
  /** Stack inputs loaded (0-3). */
  nstack: number;
  mem?: 'm32' | 'm64' | 'm16i' | 'm32i' | 'm64i' | 'm80' | 'bcd';
  /** Memory operand is a destination (at OFF_DST). */
  store?: boolean;
}

// ModRM for [rbx + disp8]: mod 01, rm 011.
const mrm = (reg: number) => 0x43 | (reg << 3);

function ops(): Op[] {
  const out: Op[] = [];
  const arithNames = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
  // D8 / DC / DA / DE memory forms.
  const memKinds: Array<[number, Op['mem'], string]> = [
    [0xd8, 'm32', 'm32'],
    [0xdc, 'm64', 'm64'],
    [0xda, 'm32i', 'm32int'],
    [0xde, 'm16i', 'm16int'],
  ];
  for (const [opb, kind, kn] of memKinds) {
    for (let reg = 0; reg < 8; reg++) {
      out.push({
        cls: reg === 2 || reg === 3 ? 'compare' : 'arith',
        name: `${arithNames[reg]} ${kn}`,
        bytes: [opb, mrm(reg), OFF_MEM],
        nstack: 1,
        mem: kind,
      });
    }
  }
  // Register forms.
  for (let reg = 0; reg < 8; reg++) {
    for (const i of [0, 1, 2]) {
      out.push({
        cls: reg === 2 || reg === 3 ? 'compare' : 'arith',
        name: `d8 ${arithNames[reg]} st,st(${i})`,
        bytes: [0xd8, 0xc0 | (reg << 3) | i],
        nstack: 3,
      });
      if (reg !== 2 && reg !== 3) {
        out.push({
          cls: 'arith',
          name: `dc /${reg} st(${i}),st`,
          bytes: [0xdc, 0xc0 | (reg << 3) | i],
          nstack: 3,
        });
        out.push({
          cls: 'arith',
          name: `de /${reg}p st(${i}),st`,
          bytes: [0xde, 0xc0 | (reg << 3) | i],
          nstack: 3,
        });
      }
    }
  }
  // Compares.
  for (const [b, n] of [
    [[0xdd, 0xe1], 'fucom st(1)'],
    [[0xdd, 0xe9], 'fucomp st(1)'],
    [[0xda, 0xe9], 'fucompp'],
    [[0xde, 0xd9], 'fcompp'],
    [[0xdb, 0xe9], 'fucomi st(1)'],
    [[0xdb, 0xf1], 'fcomi st(1)'],
    [[0xdf, 0xe9], 'fucomip st(1)'],
    [[0xdf, 0xf1], 'fcomip st(1)'],
    [[0xd9, 0xe4], 'ftst'],
    [[0xd9, 0xe5], 'fxam'],
    [[0xdd, 0xe3], 'fucom st(3) (empty)'],
  ] as Array<[number[], string]>) {
    out.push({ cls: 'compare', name: n, bytes: b, nstack: 2 });
  }
  // Loads and stores.
  out.push({ cls: 'load', name: 'fld m32', bytes: [0xd9, mrm(0), OFF_MEM], nstack: 1, mem: 'm32' });
  out.push({ cls: 'load', name: 'fld m64', bytes: [0xdd, mrm(0), OFF_MEM], nstack: 1, mem: 'm64' });
  out.push({ cls: 'load', name: 'fld m80', bytes: [0xdb, mrm(5), OFF_MEM], nstack: 1, mem: 'm80' });
  out.push({ cls: 'load', name: 'fild m16', bytes: [0xdf, mrm(0), OFF_MEM], nstack: 1, mem: 'm16i' });
  out.push({ cls: 'load', name: 'fild m32', bytes: [0xdb, mrm(0), OFF_MEM], nstack: 1, mem: 'm32i' });
  out.push({ cls: 'load', name: 'fild m64', bytes: [0xdf, mrm(5), OFF_MEM], nstack: 1, mem: 'm64i' });
  out.push({ cls: 'load', name: 'fbld', bytes: [0xdf, mrm(4), OFF_MEM], nstack: 1, mem: 'bcd' });
  out.push({ cls: 'load', name: 'fld st(1)', bytes: [0xd9, 0xc1], nstack: 2 });
  out.push({ cls: 'load', name: 'fld st(5) (empty)', bytes: [0xd9, 0xc5], nstack: 2 });
  out.push({
    cls: 'load',
    name: 'fld m80 full stack',
    bytes: [0xdb, mrm(5), OFF_MEM],
    nstack: 8,
    mem: 'm80',
  });
  const stores: Array<[number[], string]> = [
    [[0xd9, mrm(2)], 'fst m32'],
    [[0xd9, mrm(3)], 'fstp m32'],
    [[0xdd, mrm(2)], 'fst m64'],
    [[0xdd, mrm(3)], 'fstp m64'],
    [[0xdb, mrm(7)], 'fstp m80'],
    [[0xdf, mrm(2)], 'fist m16'],
    [[0xdf, mrm(3)], 'fistp m16'],
    [[0xdb, mrm(2)], 'fist m32'],
    [[0xdb, mrm(3)], 'fistp m32'],
    [[0xdf, mrm(7)], 'fistp m64'],
    [[0xdf, mrm(1)], 'fisttp m16'],
    [[0xdb, mrm(1)], 'fisttp m32'],
    [[0xdd, mrm(1)], 'fisttp m64'],
    [[0xdf, mrm(6)], 'fbstp'],
  ];
  for (const [b, n] of stores)
    out.push({ cls: 'store', name: n, bytes: [...b, OFF_DST], nstack: 1, store: true });
  for (const [b, n] of [
    [[0xdd, 0xd1], 'fst st(1)'],
    [[0xdd, 0xd9], 'fstp st(1)'],
    [[0xd9, 0xc9], 'fxch st(1)'],
    [[0xd9, 0xcb], 'fxch st(3) (empty)'],
    [[0xdd, 0xc1], 'ffree st(1)'],
    [[0xd9, 0xf6], 'fdecstp'],
    [[0xd9, 0xf7], 'fincstp'],
    [[0xd9, 0xd0], 'fnop'],
    [[0xdf, 0xc1], 'ffreep st(1)'],
  ] as Array<[number[], string]>) {
    out.push({ cls: 'stack', name: n, bytes: b, nstack: 2 });
  }
  for (let c = 0; c < 8; c++) {
    for (const b of [0xda, 0xdb]) {
      out.push({
        cls: 'fcmov',
        name: `fcmov ${b.toString(16)} /${c & 3}`,
        bytes: [b, 0xc0 | ((c & 3) << 3) | 1],
        nstack: 2,
      });
    }
  }
  for (const [b, n] of [
    [0xe0, 'fchs'],
    [0xe1, 'fabs'],
    [0xfa, 'fsqrt'],
    [0xfc, 'frndint'],
    [0xf4, 'fxtract'],
    [0xfd, 'fscale'],
    [0xf8, 'fprem'],
    [0xf5, 'fprem1'],
  ] as Array<[number, string]>) {
    out.push({ cls: 'misc', name: n, bytes: [0xd9, b], nstack: 2 });
  }
  for (const [b, n] of [
    [0xe8, 'fld1'],
    [0xe9, 'fldl2t'],
    [0xea, 'fldl2e'],
    [0xeb, 'fldpi'],
    [0xec, 'fldlg2'],
    [0xed, 'fldln2'],
    [0xee, 'fldz'],
  ] as Array<[number, string]>) {
    out.push({ cls: 'const', name: n, bytes: [0xd9, b], nstack: 1 });
  }
  return out;
}

const CWS_PC = [0x000, 0x200, 0x300];
const CWS_RC = [0x000, 0x400, 0x800, 0xc00];

/** Generates `count` cases from `seed`, for 64- or 32-bit code (the bodies are the same bytes). */
export function generateX87Cases(count: number, seed: number, bitness: 32 | 64): X87Case[] {
  const r = new Rng(seed * 7919 + 13);
  const all = ops();
  const base = bitness === 64 ? '%rbx' : '%ebx';
  const cases: X87Case[] = [];
  for (let n = 0; n < count; n++) {
    const op = all[n % all.length];
    // Control word: precision x rounding, masks mostly all-masked, sometimes all or some unmasked.
    const mk = r.int(8);
    const masks = mk < 5 ? 0x3f : mk < 6 ? 0x00 : mk < 7 ? 0x20 : r.int(64);
    const cw = 0x40 | masks | r.pick(CWS_PC) | r.pick(CWS_RC);
    const patch: Array<[number, number]> = [
      [OFF_CW, cw & 0xff],
      [OFF_CW + 1, cw >> 8],
    ];
    const x = value(r),
      y = value(r),
      z = value(r);
    // Related operands make subtraction/compare/prem interesting.
    if (r.int(4) === 0) {
      y.splice(0, 10, ...x);
      y[r.int(3)] ^= 1 << r.int(8);
      if (r.int(2)) y[8] = (y[8] + r.int(130) - 65) & 0xff;
    }
    [x, y, z].forEach((v, k) => v.forEach((b, i) => patch.push([OFF_X + 0x10 * k + i, b])));
    let note = `cw=${cw.toString(16)} x=${f80Text(x)} y=${f80Text(y)} z=${f80Text(z)}`;
    if (op.mem) {
      const m = memValue(r, op.mem);
      m.forEach((b, i) => patch.push([OFF_MEM + i, b]));
      note += ` mem=${m.map((b) => b.toString(16).padStart(2, '0')).join('')}`;
    }
    const lines = ['\tfninit', ...Array(8).fill('\tfldz'), '\tfninit', `\tfldcw ${OFF_CW}(${base})`];
    const loads = [OFF_Z, OFF_Y, OFF_X];
    if (op.nstack >= 8) for (let k = 0; k < 7; k++) lines.push(`\tfldt ${OFF_Y}(${base})`);
    else for (const o of loads.slice(3 - op.nstack)) lines.push(`\tfldt ${o}(${base})`);
    lines.push(`\t.byte ${op.bytes.map((b) => '0x' + b.toString(16)).join(', ')}`);
    const waits = r.int(16) === 0 && masks !== 0x3f;
    if (waits) lines.push('\tfwait');
    lines.push(`\tfnsave ${OFF_SAVE}(${base})`);
    for (const o of [12, 16, 20, 24]) lines.push(`\tmovl $0, ${OFF_SAVE + o}(${base})`);
    cases.push({
      id: `${op.name}#${n}`,
      cls: op.cls,
      body: lines.join('\n'),
      memPatch: patch,
      waits,
      note,
    });
  }
  return cases;
}

/** Scratch base as the case bodies expect it in RBX/EBX. */
export const X87_BASE = SCRATCH_BASE;

// ---- High-precision reference for the transcendentals (BigInt; tests only) ----

/** A binary float for the reference: m * 2^e (m a signed BigInt). */
export interface BF {
  m: bigint;
  e: number;
}

/** Working precision of the reference (bits). */
export const REF_PREC = 400;

function bitLen(v: bigint): number {
  return v === 0n ? 0 : (v < 0n ? -v : v).toString(2).length;
}

/** Rounds to REF_PREC bits, to odd (truncated, lost bits jammed into the last bit: an inexact value never lands on a shorter number). */
function bfNorm(x: BF): BF {
  const n = bitLen(x.m);
  if (n <= REF_PREC) return x;
  const sh = BigInt(n - REF_PREC);
  const neg = x.m < 0n;
  const m = neg ? -x.m : x.m;
  let a = m >> sh;
  if (a << sh !== m) a |= 1n;
  return { m: neg ? -a : a, e: x.e + Number(sh) };
}
const bf = (m: bigint, e = 0): BF => bfNorm({ m, e });
function bfAdd(a: BF, b: BF): BF {
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  const e = Math.min(a.e, b.e);
  // Drop a term far below the other (beyond the precision), keeping a nudge of the last bit for its sign.
  const ta = bitLen(a.m) + a.e,
    tb = bitLen(b.m) + b.e;
  const nudge = (big: BF, small: BF): BF => {
    const sh = REF_PREC + 8 - bitLen(big.m);
    return bfNorm({ m: (big.m << BigInt(sh)) + (small.m < 0n ? -1n : 1n), e: big.e - sh });
  };
  if (tb < ta - REF_PREC - 8) return nudge(a, b);
  if (ta < tb - REF_PREC - 8) return nudge(b, a);
  return bfNorm({ m: (a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e)), e });
}
const bfNeg = (a: BF): BF => ({ m: -a.m, e: a.e });
const bfSub = (a: BF, b: BF): BF => bfAdd(a, bfNeg(b));
const bfMul = (a: BF, b: BF): BF => bfNorm({ m: a.m * b.m, e: a.e + b.e });
function bfDiv(a: BF, b: BF): BF {
  const sh = REF_PREC + bitLen(b.m) - bitLen(a.m) + 2;
  return bfNorm({ m: (a.m << BigInt(sh)) / b.m, e: a.e - b.e - sh });
}
const bfDivInt = (a: BF, n: number): BF => bfDiv(a, { m: BigInt(n), e: 0 });
function bfSqrt(a: BF): BF {
  // a > 0: integer sqrt of m * 2^(2k)
  let sh = 2 * REF_PREC - bitLen(a.m);
  if ((a.e - sh) & 1) sh += 1;
  const v = a.m << BigInt(sh);
  let x = 1n << BigInt((bitLen(v) >> 1) + 1);
  for (;;) {
    const y = (x + v / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  return bfNorm({ m: x, e: (a.e - sh) / 2 });
}
const bfMag = (a: BF): number => (a.m === 0n ? -Infinity : bitLen(a.m) + a.e); // |a| < 2^mag
const ONE_BF: BF = { m: 1n, e: 0 };

function atanhSeries(s: BF): BF {
  // 2 atanh(s) = ln((1+s)/(1-s))
  const s2 = bfMul(s, s);
  let p = s;
  let sum = s;
  for (let k = 1; k < 2000; k++) {
    p = bfMul(p, s2);
    const t = bfDivInt(p, 2 * k + 1);
    sum = bfAdd(sum, t);
    if (bfMag(t) < bfMag(sum) - REF_PREC - 4) break;
  }
  return { m: sum.m, e: sum.e + 1 };
}
function atanInvInt(n: number): BF {
  // atan(1/n) = sum (-1)^k / ((2k+1) n^(2k+1))
  let p = bfDivInt(ONE_BF, n);
  let sum = p;
  for (let k = 1; k < 2000; k++) {
    p = bfDivInt(p, n * n);
    const t = bfDivInt(p, 2 * k + 1);
    sum = k & 1 ? bfSub(sum, t) : bfAdd(sum, t);
    if (bfMag(t) < -REF_PREC - 8) break;
  }
  return sum;
}
/** pi by Machin's formula, ln 2 = 2 atanh(1/3). */
export const REF_PI: BF = (() => {
  const a = atanInvInt(5),
    b = atanInvInt(239);
  const v = bfSub(bfMul(a, bf(16n)), bfMul(b, bf(4n)));
  return v;
})();
export const REF_LN2: BF = atanhSeries(bfDivInt(ONE_BF, 3));

/** The x87's 66-bit pi (SDM vol. 1 §8.3.8): 0xC90FDAA22168C234C * 2^-66. */
const PI66 = 0xc90fdaa22168c234cn;

/** sin and cos of r by Taylor series (|r| <= 1). */
function sinCosRef(r: BF): [BF, BF] {
  const r2 = bfMul(r, r);
  let t: BF = ONE_BF;
  let s: BF = ONE_BF,
    c: BF = ONE_BF;
  for (let k = 1; k < 500; k++) {
    t = bfDivInt(bfMul(t, r2), (2 * k - 1) * 2 * k);
    const ts = bfDivInt(t, 2 * k + 1);
    c = k & 1 ? bfSub(c, t) : bfAdd(c, t);
    s = k & 1 ? bfSub(s, ts) : bfAdd(s, ts);
    if (t.m === 0n || bfMag(t) < -REF_PREC - 8) break;
  }
  return [bfMul(s, r), c];
}

/** x reduced by k * Pi66/2, k rounded to nearest, exactly: returns [k mod 4, r]. x = X * 2^ex, X > 0. */
function reduceRef(X: bigint, ex: number): [number, BF] {
  // x / (Pi66/2) = X * 2^ex / (PI66 * 2^-67)
  const sh = ex + 67;
  let num = X,
    den = PI66;
  if (sh >= 0) num <<= BigInt(sh);
  else den <<= BigInt(-sh);
  let k = num / den;
  let rem = num - k * den;
  if (2n * rem > den) {
    k += 1n;
    rem -= den;
  }
  // r = x - k * Pi66/2 = rem * 2^-67 (sh >= 0) or rem * 2^ex (sh < 0), exactly.
  const r = bf(rem, sh >= 0 ? -67 : ex);
  return [Number(k % 4n), r];
}

/** Extended value (finite) as BF. */
export function bfFromF80(b: ArrayLike<number>, o = 0): BF {
  let sig = 0n;
  for (let i = 7; i >= 0; i--) sig = (sig << 8n) | BigInt(b[o + i]);
  const se = b[o + 8] | (b[o + 9] << 8);
  const e = se & 0x7fff;
  const m = se & 0x8000 ? -sig : sig;
  return { m, e: (e === 0 ? 1 : e) - 16383 - 63 };
}

/**
 * Reference results of a transcendental for finite nonzero operands in the
 * ranges where the result is a rounded value: `name` (fsin, fcos, fptan,
 * fsincos, f2xm1, fyl2x, fyl2xp1, fpatan), x = ST0, y = ST1. Returns the
 * results in FNSAVE order after the instruction (ST0 first), null where the
 * result is exact/special (compared bit for bit with the host instead).
 */
export function transRef(name: string, x: BF, y: BF): Array<BF | null> {
  const neg = x.m < 0n;
  const X = neg ? -x.m : x.m;
  switch (name) {
    case 'fsin':
    case 'fcos':
    case 'fptan':
    case 'fsincos': {
      const [k, r] = reduceRef(X, x.e);
      const [s, c] = sinCosRef(r);
      const sq = [s, c, bfNeg(s), bfNeg(c)];
      let sin = sq[k],
        cos = sq[(k + 1) & 3];
      if (neg) sin = bfNeg(sin);
      if (name === 'fsin') return [sin];
      if (name === 'fcos') return [cos];
      if (name === 'fsincos') return [cos, sin];
      if (!(k & 1) && bfMag(r) < -40) {
        // tan(r) = r (1 + r^2/3 + 2r^4/15 + 17r^6/315 + 62r^8/2835 + O(r^10)): keeps tan(r) > r where r^2/3 is below the precision.
        const r2 = bfMul(r, r);
        let p = ONE_BF;
        let t = ONE_BF;
        for (const [a, b] of [
          [1, 3],
          [2, 15],
          [17, 315],
          [62, 2835],
        ]) {
          p = bfMul(p, r2);
          t = bfAdd(t, bfDivInt(bfMul(p, bf(BigInt(a))), b));
        }
        const v = bfMul(r, t);
        return [null, neg ? bfNeg(v) : v];
      }
      return [null, bfDiv(sin, cos)];
    }
    case 'f2xm1': {
      const t = bfMul(x, REF_LN2);
      // expm1 by Taylor on t / 2^8, then expm1(2u) = expm1(u) (expm1(u) + 2), 8 times.
      const u = { m: t.m, e: t.e - 8 };
      let term = u,
        sum = u;
      for (let n = 2; n < 500; n++) {
        term = bfDivInt(bfMul(term, u), n);
        sum = bfAdd(sum, term);
        if (term.m === 0n || bfMag(term) < bfMag(sum) - REF_PREC - 8) break;
      }
      for (let i = 0; i < 8; i++) sum = bfMul(sum, bfAdd(sum, bf(2n)));
      return [sum];
    }
    case 'fyl2x':
    case 'fyl2xp1': {
      let arg: BF;
      let lnv: BF;
      if (name === 'fyl2xp1') {
        // ln(1 + x) = 2 atanh(x / (2 + x))
        lnv = atanhSeries(bfDiv(x, bfAdd(bf(2n), x)));
        arg = x;
      } else {
        arg = x;
        // x = m * 2^E with m in [1, 2): ln x = E ln 2 + 2 atanh((m - 1)/(m + 1))
        const E = bitLen(X) - 1 + x.e;
        const m: BF = { m: X, e: x.e - E };
        const s = bfDiv(bfSub(m, ONE_BF), bfAdd(m, ONE_BF));
        lnv = bfAdd(bfMul(bf(BigInt(E)), REF_LN2), s.m === 0n ? { m: 0n, e: 0 } : atanhSeries(s));
      }
      void arg;
      return [bfDiv(bfMul(y, lnv), REF_LN2)];
    }
    case 'fpatan': {
      // atan2(y, x): atan(q) with q = |small/big|, by three half-angle steps then Taylor.
      const ay: BF = { m: y.m < 0n ? -y.m : y.m, e: y.e };
      const ax: BF = { m: X, e: x.e };
      const swap = bfSub(ay, ax).m > 0n;
      let q = swap ? bfDiv(ax, ay) : bfDiv(ay, ax);
      for (let i = 0; i < 3; i++) q = bfDiv(q, bfAdd(ONE_BF, bfSqrt(bfAdd(ONE_BF, bfMul(q, q)))));
      const q2 = bfMul(q, q);
      let p = q,
        sum = q;
      for (let k = 1; k < 2000; k++) {
        p = bfMul(p, q2);
        const t = bfDivInt(p, 2 * k + 1);
        sum = k & 1 ? bfSub(sum, t) : bfAdd(sum, t);
        if (t.m === 0n || bfMag(t) < bfMag(sum) - REF_PREC - 8) break;
      }
      let a: BF = { m: sum.m, e: sum.e + 3 };
      const halfPi: BF = { m: REF_PI.m, e: REF_PI.e - 1 };
      if (swap) a = bfSub(halfPi, a);
      if (neg) a = bfSub(REF_PI, a);
      if (y.m < 0n) a = bfNeg(a);
      return [a];
    }
  }
  return [null];
}

/** Extended value as an exact BF (finite) and the ulp of the reference at its exponent. */
export interface RoundCheck {
  /** |got - ref| in ulps of the 64-bit significand at ref's binade (denormal range: 2^-16445). */
  err: number;
  /** got is the correctly rounded value of ref in the rounding mode. */
  correct: boolean;
  /** ref is closer than the reference precision to a rounding boundary (correct rounding not decidable). */
  hard: boolean;
  /** The correctly rounded value increased the magnitude (C1). */
  up: boolean;
  /** |got - ref| < 1 ulp (exactly). */
  below1: boolean;
}

/** Compares an extended result (finite) with the reference value under rounding control rc (0-3). */
export function checkRounding(got: BF, ref: BF, rc: number): RoundCheck {
  const mag = bfMag(ref); // |ref| in [2^(mag-1), 2^mag)
  const ulpE = Math.max(mag - 64, -16445);
  const scale = (v: BF, extra: number): bigint => {
    const s = v.e - ulpE + extra;
    if (s >= 0) return v.m << BigInt(s);
    // Truncate toward zero with the lost bits jammed into the last bit (round to odd keeps the side of a boundary).
    const a = v.m < 0n ? -v.m : v.m;
    let t = a >> BigInt(-s);
    if (t << BigInt(-s) !== a) t |= 1n;
    return v.m < 0n ? -t : t;
  };
  const X = 320;
  const g = scale(got, X),
    r = scale(ref, X);
  const diff = g - r;
  const err = Number(diff < 0n ? -diff : diff) / 2 ** X;
  // Correctly rounded value of ref in units of ulp.
  const unit = 1n << BigInt(X);
  const neg = ref.m < 0n;
  const ar = neg ? -r : r;
  const lo = ar >> BigInt(X);
  const frac = ar - (lo << BigInt(X));
  let up: boolean;
  if (rc === 0) up = frac > unit / 2n || (frac === unit / 2n && (lo & 1n) === 1n);
  else if (rc === 3) up = false;
  else up = (rc === 2) !== neg;
  if (frac === 0n) up = false;
  const want = lo + (up ? 1n : 0n);
  const ag = g < 0n ? -g : g;
  // The reference is good to better than 2^-300 relative: undecidable within that of a boundary.
  const tol = 1n << BigInt(X + 64 - 300);
  const dMid = frac - unit / 2n;
  const hard = rc === 0 ? (dMid < 0n ? -dMid : dMid) <= tol : frac <= tol || unit - frac <= tol;
  const below1 = (diff < 0n ? -diff : diff) < unit;
  return { err, correct: ag === want << BigInt(X) && (ag === 0n || g < 0n === neg), hard, up, below1 };
}

// ---- Transcendental differential cases (cpu-x87-diff.test.ts "transcendentals") ----

/** What a transcendental case computes (for the reference check). */
export interface X87TransInfo {
  name: string;
  /** FCW of the case. */
  cw: number;
  /** ST0 and ST1 inputs (10-byte values). */
  x: number[];
  y: number[];
  /** Stack inputs loaded (2 normally; 0 underflow; 8 full stack). */
  nstack: number;
}

const TRANS_OPS: Array<[string, number]> = [
  ['fsin', 0xfe],
  ['fcos', 0xff],
  ['fsincos', 0xfb],
  ['fptan', 0xf2],
  ['f2xm1', 0xf0],
  ['fyl2x', 0xf1],
  ['fyl2xp1', 0xf9],
  ['fpatan', 0xf3],
];

/** x = k * pi/2 (k < 2^20) rounded, with its low bits perturbed: the reduction's hard region. */
function nearHalfPi(r: Rng): number[] {
  const k = 1 + r.int(r.int(2) ? 8 : 1 << 20);
  // 0xC90FDAA22168C234C4C6628B = pi * 2^94: v = k * pi/2 * 2^94.
  const v = (BigInt(k) * 0xc90fdaa22168c234c4c6628bn) >> 1n;
  const n = v.toString(2).length;
  let sig = (v >> BigInt(n - 64)) + BigInt(r.int(64) - 32);
  if (sig >= 1n << 64n) sig = (1n << 64n) - 1n;
  if (sig < 1n << 63n) sig = 1n << 63n;
  const e = n - 1 - 94 + 16383;
  return f80(r.int(2), e, Number(sig >> 32n) >>> 0, Number(sig & 0xffffffffn) >>> 0);
}

/** SPECIAL entries inside the SDM's domain of F2XM1 (|x| <= 1) and FYL2XP1 (|x| < 1 - sqrt(2)/2); beyond it the result is undefined. */
function inDomain(name: string, b: number[]): boolean {
  const e = (b[8] | (b[9] << 8)) & 0x7fff;
  if (e === 0) return true; // zeros, denormals
  if (e === 0x7fff) return !(b[7] === 0x80 && b.slice(0, 7).every((v) => v === 0)); // NaNs and invalid encodings, not infinities
  if (name === 'f2xm1')
    return e < 16383 || (e === 16383 && b[7] === 0x80 && b.slice(0, 7).every((v) => v === 0));
  if (name === 'fyl2xp1') return e < 16381;
  return true;
}

function transValue(r: Rng, name: string): number[] {
  const k = r.int(16);
  if (k === 0) {
    const v = r.pick(SPECIAL).slice();
    return inDomain(name, v) ? v : f80(v[9] >> 7, 0, 0, 0);
  }
  if (k === 1) return f80(r.int(2), 0, r.u32() >>> 1, r.u32()); // denormal
  const sig = () => [(r.u32() | 0x80000000) >>> 0, r.u32()] as const;
  const [h, l] = sig();
  switch (name) {
    case 'f2xm1':
      return f80(r.int(2), 16382 - (k < 4 ? r.int(16000) : r.int(70)), h, l);
    case 'fyl2xp1': {
      // |x| < 1 - sqrt(2)/2 = 0.2928...: exponent <= -3, or -2 with significand < 0x95F6...
      const e = 16381 - (k < 4 ? r.int(16000) : r.int(70));
      return f80(r.int(2), e, e === 16381 ? (h & 0x0fffffff) | 0x80000000 : h, l);
    }
    case 'fyl2x':
      return f80(0, 16383 + (k < 4 ? r.int(32000) - 16000 : r.int(140) - 70), h, l);
    case 'fpatan':
      return f80(r.int(2), 16383 + (k < 4 ? r.int(30000) - 15000 : r.int(140) - 70), h, l);
    default:
      if (k < 6) return nearHalfPi(r);
      if (k === 6) return f80(r.int(2), 16383 + 63 + r.int(3), h, l); // out of range: C2
      return f80(r.int(2), 16383 + r.int(k < 9 ? 63 : 8) - (k < 8 ? 70 : 4), h, l);
  }
}

/** Generates `count` transcendental cases (same body layout as generateX87Cases) with their `trans` info. */
export function generateX87TransCases(
  count: number,
  seed: number,
  bitness: 32 | 64,
): Array<X87Case & { trans: X87TransInfo }> {
  const r = new Rng(seed * 104729 + 71);
  const base = bitness === 64 ? '%rbx' : '%ebx';
  const out: Array<X87Case & { trans: X87TransInfo }> = [];
  for (let n = 0; n < count; n++) {
    const [name, opb] = TRANS_OPS[n % TRANS_OPS.length];
    const mk = r.int(10);
    const masks = mk < 7 ? 0x3f : mk < 8 ? 0x00 : mk < 9 ? 0x20 : r.int(64);
    const cw = 0x40 | masks | r.pick(CWS_PC) | r.pick(CWS_RC);
    const x = transValue(r, name);
    let y = name === 'fyl2x' || name === 'fyl2xp1' || name === 'fpatan' ? transValue(r, 'fpatan') : value(r);
    // FYL2X with a huge y: overflow (OE; unmasked: the result scaled by 2^-24576).
    if (name === 'fyl2x' && r.int(6) === 0)
      y = f80(r.int(2), 0x7ff0 + r.int(15), (r.u32() | 0x80000000) >>> 0, r.u32());
    const z = value(r);
    const st = r.int(24);
    const nstack = st === 0 ? 0 : st === 1 ? 1 : st === 2 ? 8 : 2;
    const patch: Array<[number, number]> = [
      [OFF_CW, cw & 0xff],
      [OFF_CW + 1, cw >> 8],
    ];
    [x, y, z].forEach((v, k) => v.forEach((b, i) => patch.push([OFF_X + 0x10 * k + i, b])));
    const lines = ['\tfninit', ...Array(8).fill('\tfldz'), '\tfninit', `\tfldcw ${OFF_CW}(${base})`];
    if (nstack === 8) for (let k = 0; k < 6; k++) lines.push(`\tfldt ${OFF_Z}(${base})`);
    if (nstack >= 2) lines.push(`\tfldt ${OFF_Y}(${base})`);
    if (nstack >= 1) lines.push(`\tfldt ${OFF_X}(${base})`);
    lines.push(`\t.byte 0xd9, 0x${opb.toString(16)}`);
    const waits = r.int(16) === 0 && masks !== 0x3f;
    if (waits) lines.push('\tfwait');
    lines.push(`\tfnsave ${OFF_SAVE}(${base})`);
    for (const o of [12, 16, 20, 24]) lines.push(`\tmovl $0, ${OFF_SAVE + o}(${base})`);
    out.push({
      id: `${name}#${n}`,
      cls: name,
      body: lines.join('\n'),
      memPatch: patch,
      waits,
      note: `cw=${cw.toString(16)} nstack=${nstack} x=${f80Text(x)} y=${f80Text(y)}`,
      trans: { name, cw, x, y, nstack },
    });
  }
  return out;
}
