/**
 * Differential tests of the SSE floating-point unit (engine/cpu/simd/sse-fp.ts,
 * sse-cvt.ts, engine/cpu/fpu/softfloat-sse.ts) against the host CPU: every
 * SSE/SSE2/SSE3/SSE4.1 floating-point instruction and move, in register and
 * memory forms (64-bit, and 32-bit protected mode for the forms without REX).
 *
 * Each case loads a whole x87/SSE state through the harness
 * (`NativeInput.fpu`, an FXSAVE image: XMM0-15 with edge-value lanes, MXCSR
 * with a random rounding mode, DAZ, FTZ, sticky flags and exception masks),
 * runs ONE instruction and compares the FXSAVE image afterwards (every XMM
 * register bit for bit, MXCSR with its six flags, the x87 part for the MMX
 * forms), the GPRs, RFLAGS (COMIS/UCOMIS) and the scratch memory (stores)
 * with `checkCase` (test/helpers/engine-runner.ts). An unmasked exception is
 * #XM (CR4.OSXMMEXCPT, set by Linux and by `createMachine`): SIGFPE on the
 * host, with the FXSAVE image of the signal context (flags set, destination
 * unchanged) compared as well.
 *
 * Operands: ±0, denormals (smallest, largest, random), smallest/largest
 * normals, ±inf, QNaN and SNaN with payloads, the QNaN indefinite, values
 * around rounding boundaries (ties, 1±ulp, x.5, integer-conversion limits
 * 2^31, 2^63 and their neighbours), operands one of which is derived from
 * the other (a few ulps apart, negated, scaled by 2^k: cancellation, exact
 * zero sums, underflow after rounding), random magnitudes and random bits.
 *
 * RCPPS/RCPSS/RSQRTPS/RSQRTSS results are implementation-specific: those
 * cases go through the vendor-table row `rcp-rsqrt-approx`
 * (test/helpers/vendor-table.ts): lanes whose result the SDM defines
 * exactly are compared bit for bit, the others against the SDM's bound
 * (relative error <= 1.5 * 2^-12), the engine's AND the host's, on every
 * host. Everything else is vendor-neutral (SDM vol. 1 ch. 10-12 = APM vol. 4)
 * and compared exactly on every host; the `everyFpuCase` rows (MXCSR_MASK,
 * x87 error pointers) apply as for every FXSAVE-image case.
 *
 * `PVSCOPE_SIMD_FP_VARIANTS=<n>` changes the inputs per form (default 16 in
 * 64-bit, a third of that in 32-bit), `PVSCOPE_SIMD_FP_SEED=<n>` the seed.
 */
import { strict as assert } from 'node:assert';
import {
  buildFxImage,
  buildNativeBatch,
  f80,
  requireNativeToolchain,
  parseFxImage,
  SCRATCH_BASE,
  SIG,
  UNMAPPED_PAGES,
  type Bitness,
  type NativeBatch,
  type NativeInput,
  type NativeOutcome,
} from '../helpers/native-harness';
import {
  checkCase,
  createMachine,
  diffOutcome,
  loadBatch,
  runEngineCase,
  type TestMachine,
} from '../helpers/engine-runner';
import { Rng } from '../helpers/x86-gen';
import {
  engineExpectation,
  rcpRsqrtCheck,
  rcpRsqrtDocumented,
  rcpRsqrtOperands,
  VENDOR_ROWS,
  type ApproxOp,
} from '../helpers/vendor-table';

const VARIANTS = Number(process.env.PVSCOPE_SIMD_FP_VARIANTS) || 16;
const SEED = Number(process.env.PVSCOPE_SIMD_FP_SEED) || 0x5eed0f9;

/** 16-byte aligned memory operand block in the scratch buffer (32 bytes are patched). */
const MEM = 0x040;
const S = (off: number) => `0x${(SCRATCH_BASE + off).toString(16)}`;

// ---------------- operand values ----------------

type Kind = 'f32' | 'f64' | 'i32' | 'i64';

const F32_EDGE = [
  0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00400000, 0x00012345, 0x00800000,
  0x80800000, 0x00800001, 0x00ffffff, 0x7f7fffff, 0xff7fffff, 0x7f7ffffe, 0x7f000000, 0x7f800000, 0xff800000,
  0x7fc00000, 0xffc00000, 0x7fc12345, 0xffe00001, 0x7f800001, 0xff812345, 0x7fbfffff, 0x3f800000, 0xbf800000,
  0x3f800001, 0x3f7fffff, 0x3fc00000, 0x3f000000, 0x40000000, 0x40200000, 0xbfc00000, 0x40400000, 0x4b000000,
  0x4b000001, 0x4b7fffff, 0x4effffff, 0x4f000000, 0xcf000000, 0xcf000001, 0x5effffff, 0x5f000000, 0xdf000000,
  0xdf000001, 0x3effffff, 0x3f000001, 0x7e800000, 0x01000000, 0x0c000000, 0x33800000, 0x34000000, 0x3f7ffffe,
  0x1f800000, 0x5f800000,
];
const F64_EDGE: bigint[] = [
  0x0000000000000000n,
  0x8000000000000000n,
  0x0000000000000001n,
  0x8000000000000001n,
  0x000fffffffffffffn,
  0x800fffffffffffffn,
  0x0008000000000000n,
  0x0000000123456789n,
  0x0010000000000000n,
  0x8010000000000000n,
  0x0010000000000001n,
  0x001fffffffffffffn,
  0x7fefffffffffffffn,
  0xffefffffffffffffn,
  0x7fe0000000000000n,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x7ff8000000000000n,
  0xfff8000000000000n,
  0x7ff80000deadbeefn,
  0xfffc000000000001n,
  0x7ff0000000000001n,
  0xfff456789abcdef0n,
  0x7ff7ffffffffffffn,
  0x3ff0000000000000n,
  0xbff0000000000000n,
  0x3ff0000000000001n,
  0x3fefffffffffffffn,
  0x3ff8000000000000n,
  0x3fe0000000000000n,
  0x4004000000000000n,
  0xbff8000000000000n,
  0x41dfffffffe00000n,
  0x41e0000000000000n,
  0xc1e0000000000000n,
  0xc1e0000000200000n,
  0xc1e0000000100000n,
  0x41dfffffffc00000n,
  0x43dfffffffffffffn,
  0x43e0000000000000n,
  0xc3e0000000000000n,
  0xc3e0000000000001n,
  0x4330000000000000n,
  0x4330000000000001n,
  0x47efffffe0000000n,
  0x47efffffefffffffn,
  0x47effffff0000000n,
  0x36a0000000000000n,
  0x3690000000000000n,
  0x380fffffe0000000n,
  0x3810000000000000n,
  0x37a0000000000000n,
  0x3ff0000010000000n,
  0x3ff0000010000001n,
  0x3ff0000030000000n,
  0x3fe0000000000001n,
  0x7fd0000000000000n,
  0x0020000000000000n,
  0x3ca0000000000000n,
  0x3cb0000000000000n,
];
const I32_EDGE = [
  0, 1, -1, 2, 0x7fffffff, 0x80000000, 0x00ffffff, 0x01000000, 0x01000001, 0x01000003, 0x7fffff80, 0x7fffffc0,
  0x7fffffbf, 0x80000080, 0x80000001, 0xfeffffff, 0x00800001,
];
const I64_EDGE: bigint[] = [
  0n,
  1n,
  -1n,
  0x7fffffffffffffffn,
  -0x8000000000000000n,
  0x20000000000001n,
  0x20000000000003n,
  0x1000001n,
  0x4000004000000001n,
  0x7ffffffffffffc00n,
  0x7ffffffffffffdffn,
  0x7ffffffffffffe00n,
  -0x7ffffffffffffc00n,
  0xffffffffn,
  0x80000000n,
  -0x80000001n,
  0x8000008000000000n,
];

function f32Lane(rng: Rng): number {
  const s = rng.int(10);
  if (s < 4) return rng.pick(F32_EDGE) >>> 0;
  const sign = rng.bool() ? 0x80000000 : 0;
  const mant = rng.u32() & 0x7fffff;
  if (s < 7) return (sign | ((127 - 12 + rng.int(25)) << 23) | mant) >>> 0; // moderate magnitudes
  if (s < 8)
    return (sign | (rng.pick([1, 2, 3, 24, 25, 126, 127, 128, 230, 252, 253, 254]) << 23) | mant) >>> 0;
  if (s < 9) return (sign | (rng.int(3) << 23) | mant) >>> 0; // denormals and the smallest normals
  return rng.u32();
}
function f64Lane(rng: Rng): bigint {
  const s = rng.int(10);
  if (s < 4) return rng.pick(F64_EDGE);
  const sign = rng.bool() ? 1n << 63n : 0n;
  const mant = rng.u64() & ((1n << 52n) - 1n);
  if (s < 7) return sign | (BigInt(1023 - 30 + rng.int(61)) << 52n) | mant;
  if (s < 8) {
    const e = rng.pick([1, 2, 3, 53, 54, 896, 897, 1022, 1023, 1024, 1150, 1151, 1152, 2045, 2046]);
    return sign | (BigInt(e) << 52n) | mant;
  }
  if (s < 9) return sign | (BigInt(rng.int(3)) << 52n) | mant;
  return rng.u64();
}
function i32Lane(rng: Rng): number {
  const s = rng.int(4);
  if (s < 2) return rng.pick(I32_EDGE) >>> 0;
  if (s < 3) return (rng.u32() >>> rng.int(32)) * (rng.bool() ? -1 : 1);
  return rng.u32();
}
function i64Lane(rng: Rng): bigint {
  const s = rng.int(4);
  if (s < 2) return BigInt.asUintN(64, rng.pick(I64_EDGE));
  if (s < 3) return BigInt.asUintN(64, (rng.u64() >> BigInt(rng.int(64))) * (rng.bool() ? -1n : 1n));
  return rng.u64();
}

/** A 128-bit register value of `kind` lanes. */
function lanes128(rng: Rng, kind: Kind): bigint {
  let v = 0n;
  if (kind === 'f32' || kind === 'i32')
    for (let k = 3; k >= 0; k--)
      v = (v << 32n) | BigInt((kind === 'f32' ? f32Lane(rng) : i32Lane(rng)) >>> 0);
  else for (let k = 1; k >= 0; k--) v = (v << 64n) | (kind === 'f64' ? f64Lane(rng) : i64Lane(rng));
  return v;
}

/** A value derived from `a` lane by lane: a few ulps away, negated, scaled by 2^k, or equal. */
function related(rng: Rng, a: bigint, kind: Kind): bigint {
  const w = kind === 'f32' || kind === 'i32' ? 32 : 64;
  const n = 128 / w;
  const m = (1n << BigInt(w)) - 1n;
  const expShift = w === 32 ? 23n : 52n;
  let out = 0n;
  for (let k = n - 1; k >= 0; k--) {
    let x = (a >> BigInt(k * w)) & m;
    switch (rng.int(5)) {
      case 0:
        x = (x + BigInt(rng.int(7)) - 3n) & m;
        break;
      case 1:
        x ^= 1n << BigInt(w - 1);
        break;
      case 2:
        x = (x + (BigInt(rng.int(5) - 2) << expShift)) & m;
        break;
      case 3:
        x = (x ^ (1n << BigInt(w - 1)) ^ BigInt(rng.int(3))) & m;
        break;
      default:
        break;
    }
    out = (out << BigInt(w)) | x;
  }
  return out;
}

/** MXCSR: random rounding mode, DAZ, FTZ, sometimes sticky flags, sometimes unmasked exceptions. */
function mxcsrFor(rng: Rng): number {
  let masks = 0x3f;
  if (rng.int(10) < 3) masks = rng.int(0x40) | rng.int(0x40); // ~3/4 of the exceptions masked
  let v = (masks << 7) | (rng.int(4) << 13);
  if (rng.int(10) < 3) v |= 0x40; // DAZ
  if (rng.int(10) < 3) v |= 0x8000; // FTZ
  if (rng.int(10) < 2) v |= rng.int(0x40); // sticky flags
  return v;
}

// ---------------- forms ----------------

interface Form {
  /** Class (one `it` per class). */
  cls: string;
  body: string;
  /** Lanes of the source operands (registers and memory). */
  kind: Kind;
  /** Destination register (its lanes are `kind` too) and the second source: a register or 'mem' (at MEM). */
  dst: number;
  src: number | 'mem';
  /** The form reads MMX registers (x87 state matters; sometimes an unmasked x87 exception is pending). */
  mmx?: boolean;
  /** GPR source: RAX/RCX get `kind` integer values. */
  gpr?: boolean;
  /** RCP/RSQRT: checked through the `rcp-rsqrt-approx` vendor row. */
  approx?: { op: ApproxOp; lanes: 1 | 4 };
  /** Only in 64-bit mode (REX registers, REX.W forms). */
  only64?: boolean;
  /** Register form that also gets the special-class matrix (`matrixInputs`). */
  matrix?: boolean;
}

function forms(): Form[] {
  const f: Form[] = [];
  const add = (
    cls: string,
    body: string,
    kind: Kind,
    dst: number,
    src: number | 'mem',
    extra: Partial<Form> = {},
  ) =>
    f.push({
      cls,
      body,
      kind,
      dst,
      src,
      ...extra,
      only64: extra.only64 || /%r|%xmm(8|9|1\d)|^\w+q /.test(body),
    });
  const rm = (cls: string, insn: string, kind: Kind, memOff = 0, extra: Partial<Form> = {}) => {
    add(cls, `${insn} %xmm1, %xmm0`, kind, 0, 1, {
      matrix: /^(arith|cmp|comis|cvt|sse3)\./.test(cls),
      ...extra,
    });
    add(cls, `${insn} ${S(MEM + memOff)}, %xmm2`, kind, 2, 'mem', extra);
  };
  // Moves.
  for (const [op, kind] of [
    ['movups', 'f32'],
    ['movupd', 'f64'],
    ['movaps', 'f32'],
    ['movapd', 'f64'],
  ] as const) {
    const al = op.includes('a');
    add(`move.${op}`, `${op} %xmm1, %xmm0`, kind, 0, 1);
    add(`move.${op}`, `${op} ${S(MEM + (al ? 0 : 3))}, %xmm2`, kind, 2, 'mem');
    add(`move.${op}`, `${op} %xmm3, ${S(MEM + (al ? 16 : 5))}`, kind, 3, 'mem');
    add(`move.${op}`, `${op} %xmm9, %xmm12`, kind, 12, 9);
    if (al) {
      add(`move.${op}`, `${op} ${S(MEM + 8)}, %xmm2`, kind, 2, 'mem'); // #GP(0): misaligned
      add(`move.${op}`, `${op} %xmm3, ${S(MEM + 4)}`, kind, 3, 'mem');
    }
  }
  for (const [op, kind] of [
    ['movss', 'f32'],
    ['movsd', 'f64'],
  ] as const) {
    add(`move.${op}`, `${op} %xmm1, %xmm0`, kind, 0, 1);
    add(`move.${op}`, `${op} ${S(MEM + 2)}, %xmm2`, kind, 2, 'mem');
    add(`move.${op}`, `${op} %xmm3, ${S(MEM + 6)}`, kind, 3, 'mem');
    add(`move.${op}`, `${op} %xmm14, %xmm7`, kind, 7, 14);
  }
  for (const op of ['movlps', 'movhps', 'movlpd', 'movhpd']) {
    const kind: Kind = op.endsWith('d') ? 'f64' : 'f32';
    add(`move.${op}`, `${op} ${S(MEM + 1)}, %xmm2`, kind, 2, 'mem');
    add(`move.${op}`, `${op} %xmm3, ${S(MEM + 7)}`, kind, 3, 'mem');
  }
  add('move.movhlps', 'movhlps %xmm1, %xmm0', 'f32', 0, 1);
  add('move.movlhps', 'movlhps %xmm1, %xmm0', 'f32', 0, 1);
  add('move.movlhps', 'movlhps %xmm10, %xmm5', 'f32', 5, 10);
  for (const op of ['movntps', 'movntpd']) {
    add(`move.${op}`, `${op} %xmm3, ${S(MEM)}`, 'f32', 3, 'mem');
    add(`move.${op}`, `${op} %xmm3, ${S(MEM + 8)}`, 'f32', 3, 'mem');
  }
  for (const op of ['movmskps', 'movmskpd']) {
    add(`move.${op}`, `${op} %xmm1, %eax`, 'f32', 0, 1);
    add(`move.${op}`, `${op} %xmm11, %r9d`, 'f32', 0, 11);
    add(`move.${op}`, `${op} %xmm1, %rcx`, 'f32', 0, 1);
  }
  // Operands running into the not-present page above the scratch page: #PF, nothing written.
  add('move.pagefault', `movups ${S(0xff8)}, %xmm0`, 'f32', 0, 'mem');
  add('move.pagefault', `movups %xmm1, ${S(0xff4)}`, 'f32', 1, 'mem');
  add('move.pagefault', `movlps %xmm1, ${S(0xffc)}`, 'f32', 1, 'mem');
  add('move.pagefault', `lddqu ${S(0xff1)}, %xmm3`, 'f32', 3, 'mem');
  add('move.pagefault', `addsd ${S(0xffc)}, %xmm0`, 'f64', 0, 'mem');
  add('move.pagefault', `extractps $1, %xmm1, ${S(0xffe)}`, 'f32', 1, 'mem');
  // Shuffles.
  for (const op of ['unpcklps', 'unpckhps', 'unpcklpd', 'unpckhpd'])
    rm(`shuffle.${op}`, op, op.endsWith('d') ? 'f64' : 'f32');
  for (const imm of [0x00, 0x1b, 0xe4, 0x4e, 0xb1, 0xff, 0x93])
    rm('shuffle.shufps', `shufps $${imm},`, 'f32');
  for (let imm = 0; imm < 4; imm++) rm('shuffle.shufpd', `shufpd $${imm},`, 'f64');
  // Arithmetic.
  for (const op of ['add', 'sub', 'mul', 'div', 'min', 'max', 'sqrt']) {
    rm(`arith.${op}ps`, `${op}ps`, 'f32');
    rm(`arith.${op}pd`, `${op}pd`, 'f64');
    rm(`arith.${op}ss`, `${op}ss`, 'f32', 4);
    rm(`arith.${op}sd`, `${op}sd`, 'f64', 8);
    add(`arith.${op}ps`, `${op}ps %xmm13, %xmm8`, 'f32', 8, 13);
    add(`arith.${op}sd`, `${op}sd %xmm13, %xmm8`, 'f64', 8, 13);
  }
  add('arith.misaligned', `addps ${S(MEM + 4)}, %xmm0`, 'f32', 0, 'mem');
  add('arith.misaligned', `sqrtpd ${S(MEM + 8)}, %xmm0`, 'f64', 0, 'mem');
  add('arith.misaligned', `mulss ${S(MEM + 1)}, %xmm0`, 'f32', 0, 'mem');
  // Logic.
  for (const op of ['and', 'andn', 'or', 'xor']) {
    rm(`logic.${op}ps`, `${op}ps`, 'f32');
    rm(`logic.${op}pd`, `${op}pd`, 'f64');
  }
  // Compares: all eight predicates (and reserved immediate bits, which legacy SSE ignores).
  for (const imm of [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x1f, 0xfd]) {
    const reserved = imm > 7;
    for (const [op, kind, off] of [
      ['cmpps', 'f32', 0],
      ['cmppd', 'f64', 0],
      ['cmpss', 'f32', 4],
      ['cmpsd', 'f64', 8],
    ] as const) {
      if (reserved) add(`cmp.${op}`, `${op} $${imm}, %xmm1, %xmm0`, kind, 0, 1);
      else rm(`cmp.${op}`, `${op} $${imm},`, kind, off);
    }
  }
  for (const [op, kind] of [
    ['comiss', 'f32'],
    ['ucomiss', 'f32'],
    ['comisd', 'f64'],
    ['ucomisd', 'f64'],
  ] as const) {
    rm(`comis.${op}`, op, kind, 4);
    add(`comis.${op}`, `${op} %xmm15, %xmm6`, kind, 6, 15);
  }
  // Conversions.
  const cv = (
    cls: string,
    body: string,
    kind: Kind,
    dst: number,
    src: number | 'mem',
    extra: Partial<Form> = {},
  ) => add(`cvt.${cls}`, body, kind, dst, src, extra);
  cv('cvtpi2ps', 'cvtpi2ps %mm1, %xmm0', 'i32', 0, 1, { mmx: true });
  cv('cvtpi2ps', `cvtpi2ps ${S(MEM + 1)}, %xmm2`, 'i32', 2, 'mem', { mmx: true });
  cv('cvtpi2pd', 'cvtpi2pd %mm1, %xmm0', 'i32', 0, 1, { mmx: true });
  cv('cvtpi2pd', `cvtpi2pd ${S(MEM + 1)}, %xmm2`, 'i32', 2, 'mem', { mmx: true });
  for (const op of ['cvtps2pi', 'cvttps2pi']) {
    cv(op, `${op} %xmm1, %mm0`, 'f32', 0, 1, { mmx: true });
    cv(op, `${op} ${S(MEM + 3)}, %mm2`, 'f32', 2, 'mem', { mmx: true });
  }
  for (const op of ['cvtpd2pi', 'cvttpd2pi']) {
    cv(op, `${op} %xmm1, %mm0`, 'f64', 0, 1, { mmx: true });
    cv(op, `${op} ${S(MEM)}, %mm2`, 'f64', 2, 'mem', { mmx: true });
    cv(op, `${op} ${S(MEM + 8)}, %mm2`, 'f64', 2, 'mem', { mmx: true }); // #GP(0)
  }
  for (const op of ['cvtsi2ss', 'cvtsi2sd']) {
    cv(op, `${op}l %eax, %xmm0`, 'i32', 0, 'mem', { gpr: true });
    cv(op, `${op}l ${S(MEM + 2)}, %xmm2`, 'i32', 2, 'mem');
    cv(op, `${op}q %rcx, %xmm0`, 'i64', 0, 'mem', { gpr: true });
    cv(op, `${op}q ${S(MEM + 2)}, %xmm2`, 'i64', 2, 'mem');
    cv(op, `${op}q %r8, %xmm11`, 'i64', 11, 'mem', { gpr: true });
  }
  for (const [op, kind] of [
    ['cvtss2si', 'f32'],
    ['cvttss2si', 'f32'],
    ['cvtsd2si', 'f64'],
    ['cvttsd2si', 'f64'],
  ] as const) {
    cv(op, `${op} %xmm1, %eax`, kind, 0, 1);
    cv(op, `${op} ${S(MEM + 4)}, %ecx`, kind, 0, 'mem');
    cv(op, `${op} %xmm1, %rax`, kind, 0, 1);
    cv(op, `${op} ${S(MEM + 4)}, %rcx`, kind, 0, 'mem');
    cv(op, `${op} %xmm9, %r10`, kind, 0, 9);
  }
  for (const [op, kind, off] of [
    ['cvtps2pd', 'f32', 8],
    ['cvtpd2ps', 'f64', 0],
    ['cvtss2sd', 'f32', 4],
    ['cvtsd2ss', 'f64', 8],
    ['cvtdq2ps', 'i32', 0],
    ['cvtps2dq', 'f32', 0],
    ['cvttps2dq', 'f32', 0],
    ['cvtdq2pd', 'i32', 8],
    ['cvtpd2dq', 'f64', 0],
    ['cvttpd2dq', 'f64', 0],
  ] as const)
    rm(`cvt.${op}`, op, kind, off);
  // SSE3.
  for (const op of ['addsubps', 'haddps', 'hsubps']) rm(`sse3.${op}`, op, 'f32');
  for (const op of ['addsubpd', 'haddpd', 'hsubpd']) rm(`sse3.${op}`, op, 'f64');
  rm('sse3.movsldup', 'movsldup', 'f32');
  rm('sse3.movshdup', 'movshdup', 'f32');
  rm('sse3.movddup', 'movddup', 'f64', 8);
  add('sse3.lddqu', `lddqu ${S(MEM + 5)}, %xmm2`, 'f32', 2, 'mem');
  add('sse3.lddqu', `lddqu ${S(MEM)}, %xmm10`, 'f32', 10, 'mem');
  add('sse3.misaligned', `haddps ${S(MEM + 4)}, %xmm0`, 'f32', 0, 'mem');
  // SSE4.1.
  for (let imm = 0; imm < 16; imm++) {
    for (const [op, kind, off] of [
      ['roundps', 'f32', 0],
      ['roundpd', 'f64', 0],
      ['roundss', 'f32', 4],
      ['roundsd', 'f64', 8],
    ] as const) {
      add(`sse41.${op}`, `${op} $${imm}, %xmm1, %xmm0`, kind, 0, 1);
      if (imm % 4 === 1) add(`sse41.${op}`, `${op} $${imm}, ${S(MEM + off)}, %xmm2`, kind, 2, 'mem');
    }
  }
  add('sse41.roundps', `roundps $0xf4, %xmm1, %xmm0`, 'f32', 0, 1);
  add('sse41.roundsd', `roundsd $0x93, %xmm1, %xmm0`, 'f64', 0, 1);
  for (const imm of [0xff, 0xf1, 0x31, 0x7f, 0x0f, 0xf0, 0x55, 0xaa, 0x93, 0xc6, 0x1e])
    rm('sse41.dpps', `dpps $${imm},`, 'f32');
  for (const imm of [0x33, 0x31, 0x13, 0x11, 0x22, 0x03, 0x30, 0x00, 0xff, 0xcc])
    rm('sse41.dppd', `dppd $${imm},`, 'f64');
  for (const imm of [0, 1, 5, 0xa, 0xf, 0x36]) rm('sse41.blendps', `blendps $${imm},`, 'f32');
  for (const imm of [0, 1, 2, 3, 0xfe]) rm('sse41.blendpd', `blendpd $${imm},`, 'f64');
  for (const op of ['blendvps', 'blendvpd']) {
    add(`sse41.${op}`, `${op} %xmm0, %xmm1, %xmm2`, 'f32', 2, 1);
    add(`sse41.${op}`, `${op} %xmm0, ${S(MEM)}, %xmm3`, 'f32', 3, 'mem');
  }
  for (const imm of [0x00, 0x10, 0x20, 0x30, 0x40, 0x8c, 0xc3, 0xff, 0x5a, 0x0f]) {
    add('sse41.insertps', `insertps $${imm}, %xmm1, %xmm0`, 'f32', 0, 1);
    if (imm & 0x40) add('sse41.insertps', `insertps $${imm}, ${S(MEM + 1)}, %xmm2`, 'f32', 2, 'mem');
  }
  for (const imm of [0, 1, 2, 3, 6]) {
    add('sse41.extractps', `extractps $${imm}, %xmm1, %eax`, 'f32', 0, 1);
    add('sse41.extractps', `extractps $${imm}, %xmm1, %rcx`, 'f32', 0, 1);
    add('sse41.extractps', `extractps $${imm}, %xmm1, ${S(MEM + 3)}`, 'f32', 0, 1);
  }
  // RCP/RSQRT: the vendor row.
  for (const [op, a, lanes] of [
    ['rcpps', 'rcp', 4],
    ['rcpss', 'rcp', 1],
    ['rsqrtps', 'rsqrt', 4],
    ['rsqrtss', 'rsqrt', 1],
  ] as const) {
    const approx = { op: a, lanes } as const;
    add(`approx.${op}`, `${op} %xmm1, %xmm0`, 'f32', 0, 1, { approx });
    add(`approx.${op}`, `${op} ${S(MEM + (lanes === 4 ? 0 : 4))}, %xmm2`, 'f32', 2, 'mem', { approx });
    if (lanes === 4) add(`approx.${op}`, `${op} ${S(MEM + 4)}, %xmm2`, 'f32', 2, 'mem', { approx }); // #GP(0)
  }
  return f;
}

// ---------------- inputs ----------------

function inputFor(rng: Rng, form: Form, bits: Bitness): NativeInput {
  const nx = bits === 64 ? 16 : 8;
  const xmm: bigint[] = [];
  for (let i = 0; i < nx; i++) xmm.push(lanes128(rng, form.kind));
  const memVal = [lanes128(rng, form.kind), lanes128(rng, form.kind)];
  if (rng.int(10) < 4) {
    // the second source derived from the destination: cancellation, exact zeros, tiny results
    const d = xmm[form.dst] ?? xmm[0];
    if (form.src === 'mem') memVal[0] = related(rng, d, form.kind);
    else xmm[form.src] = related(rng, d, form.kind);
  }
  if (form.src === 'mem' && rng.int(4) === 0) {
    // unaligned memory operands straddle two blocks: relate the second too
    memVal[1] = related(rng, memVal[0], form.kind);
  }
  const memPatch: Array<[number, number]> = [];
  for (let b = 0; b < 2; b++)
    for (let i = 0; i < 16; i++)
      memPatch.push([MEM + 16 * b + i, Number((memVal[b] >> BigInt(8 * i)) & 0xffn)]);
  const regs: bigint[] = [];
  for (let i = 0; i < (bits === 64 ? 16 : 8); i++) {
    let v = rng.u64();
    if (form.gpr && (i === 0 || i === 1 || i === 8)) {
      v = form.kind === 'i64' ? i64Lane(rng) : BigInt(i32Lane(rng) >>> 0) | (rng.u64() << 32n);
    }
    regs.push(bits === 64 ? BigInt.asUintN(64, v) : v & 0xffffffffn);
  }
  // x87 state: MMX registers as ints (exponent 0xFFFF like an MMX write, or random), random TOP and tags;
  // for MMX forms, sometimes an unmasked x87 exception pending (#MF before the instruction).
  const st: bigint[] = [];
  for (let i = 0; i < 8; i++) {
    const sig = form.mmx ? (BigInt(i32Lane(rng) >>> 0) << 32n) | BigInt(i32Lane(rng) >>> 0) : rng.u64();
    st.push(f80(1, rng.int(4) ? 0x7fff : rng.int(0x8000), sig));
  }
  let fcw = 0x037f;
  let fsw = rng.int(8) << 11;
  if (form.mmx && rng.int(8) === 0) {
    fcw = 0x037e; // IM clear
    fsw |= 0x8081; // IE, ES, B
  }
  const fpu = buildFxImage({ fcw, fsw, ftw: rng.int(256), mxcsr: mxcsrFor(rng), st, xmm }, bits);
  return { regs, rflags: 0x2 | (rng.u32() & 0x8d5), memSeed: rng.u32() || 1, memPatch, fpu };
}

/** One value of each special class (binary32 bits): zeros, denormals, min/max normal, 1, -1.5, infinities, NaNs. */
const F32_CLASSES = [
  0x00000000, 0x80000000, 0x00012345, 0x807fffff, 0x00800000, 0x3f800000, 0xbfc00000, 0x7f7fffff, 0x7f800000,
  0xff800000, 0x7fc12345, 0xff812345,
];
const F64_CLASSES: bigint[] = [
  0x0000000000000000n,
  0x8000000000000000n,
  0x0000000123456789n,
  0x800fffffffffffffn,
  0x0010000000000000n,
  0x3ff0000000000000n,
  0xbff8000000000000n,
  0x7fefffffffffffffn,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x7ff80000deadbeefn,
  0xfff456789abcdef0n,
];
/**
 * MXCSR settings the matrix rotates through: default; DAZ+FTZ round down;
 * everything unmasked round toward zero; IE/DE unmasked with DAZ round up.
 */
const MATRIX_MXCSR = [0x1f80, 0xbfc0, 0x6000, 0x5e40];

/**
 * Every (destination, source) pair of special classes (`F32_CLASSES` /
 * `F64_CLASSES`; unary forms: every source class) for a register form,
 * packed into as many lanes as the form uses, each case under the next
 * `MATRIX_MXCSR` setting; the rest of each input comes from `inputFor`.
 */
function matrixInputs(rng: Rng, form: Form, bits: Bitness): NativeInput[] {
  const wide = form.kind === 'f64';
  const classes: bigint[] = wide ? F64_CLASSES : F32_CLASSES.map((v) => BigInt(v >>> 0));
  const unary = /sqrt|cvt|round/.test(form.body);
  const scalar = /(ss|sd)\b|comis|2si/.test(form.body.split(' ')[0]);
  const perCase = scalar ? 1 : wide ? 2 : 4;
  const w = wide ? 64n : 32n;
  const pairs: Array<[bigint, bigint]> = [];
  for (const a of unary ? [classes[5]] : classes) for (const b of classes) pairs.push([a, b]);
  const out: NativeInput[] = [];
  for (let c = 0; c * perCase < pairs.length; c++) {
    const inp = inputFor(rng, form, bits);
    const img = inp.fpu!;
    const put = (reg: number, k: number, v: bigint) => {
      for (let i = 0; i < Number(w) / 8; i++)
        img[160 + 16 * reg + (k * Number(w)) / 8 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    };
    for (let k = 0; k < perCase; k++) {
      const [a, b] = pairs[(c * perCase + k) % pairs.length];
      put(form.dst, k, a);
      put(form.src as number, k, b);
    }
    const mx = MATRIX_MXCSR[c % MATRIX_MXCSR.length];
    for (let i = 0; i < 4; i++) img[24 + i] = (mx >>> (8 * i)) & 0xff;
    out.push(inp);
  }
  return out;
}

// ---------------- RCP / RSQRT through the vendor row ----------------

/** RCP/RSQRT operands: the special classes, the SDM's tiny-result limits and their neighbours, 1 and its neighbours. */
const APPROX_EDGES = [
  ...F32_CLASSES,
  0x7e7fe800,
  0x7e7fe801,
  0x7e7fe7ff,
  0x7e800000,
  0x7e800c00,
  0x7e800c01,
  0x7e800c02,
  0x7f000000,
  0x7e7fffff,
  0x3f800000,
  0x3f7fffff,
  0x3f800001,
  0x3fffffff,
  0x40000000,
  0x00800001,
  0x00ffffff,
  0x7fbfffff,
  0x7fffffff,
];

/** Inputs of an RCP/RSQRT register form: every `APPROX_EDGES` value and its negation in the source lanes. */
function approxInputs(rng: Rng, form: Form, bits: Bitness): NativeInput[] {
  const vals = [...APPROX_EDGES, ...APPROX_EDGES.map((v) => (v ^ 0x80000000) >>> 0)];
  const n = form.approx!.lanes;
  const out: NativeInput[] = [];
  for (let c = 0; c * n < vals.length; c++) {
    const inp = inputFor(rng, form, bits);
    for (let k = 0; k < n; k++) {
      const v = vals[(c * n + k) % vals.length];
      for (let i = 0; i < 4; i++)
        inp.fpu![160 + 16 * (form.src as number) + 4 * k + i] = (v >>> (8 * i)) & 0xff;
    }
    out.push(inp);
  }
  return out;
}

/** Lanes checked by `checkApprox`: bit for bit (documented) and against the bound. */
const approxSeen = { documented: 0, bound: 0 };

function lane32(img: Uint8Array, reg: number, k: number): number {
  const o = 160 + 16 * reg + 4 * k;
  return (img[o] | (img[o + 1] << 8) | (img[o + 2] << 16) | (img[o + 3] << 24)) >>> 0;
}

/**
 * Checks an RCP/RSQRT case: the lanes the SDM defines exactly (zeros,
 * denormals, infinities, NaNs, negative RSQRT operands) against the engine
 * vendor's value (the host's on a host of that vendor), the others against
 * the SDM's bound for the engine and the host alike; everything else (other
 * lanes, MXCSR, the rest of the state) exactly.
 */
function checkApprox(
  m: TestMachine,
  batch: NativeBatch,
  i: number,
  form: Form,
  inp: NativeInput,
  host: NativeOutcome,
): string[] {
  const eng = runEngineCase(m, batch, i, inp);
  const want = engineExpectation(
    host,
    { bitness: m.bitness, input: inp, caseStart: batch.caseStart[i], body: form.body },
    ['rcp-rsqrt-approx'],
  );
  const out: string[] = [];
  if (!want.fpu || !eng.fpu || want.kind !== 'ok' || eng.kind !== 'ok')
    return diffOutcome(m.bitness, want, eng);
  const ops = rcpRsqrtOperands({
    bitness: m.bitness,
    input: inp,
    caseStart: batch.caseStart[i],
    body: form.body,
  });
  if (!ops || ops.src.length !== form.approx!.lanes || ops.dst !== form.dst)
    return [`unparsed approx body ${form.body}`];
  const { op, src } = ops;
  const w = want.fpu.slice();
  src.forEach((s, k) => {
    const e = lane32(eng.fpu!, form.dst, k);
    const h = lane32(w, form.dst, k);
    const hex = (v: number) => '0x' + (v >>> 0).toString(16);
    if (rcpRsqrtDocumented(op, s) !== null) {
      approxSeen.documented++;
      if (e !== h) out.push(`${op}(${hex(s)}) lane ${k}: want ${hex(h)} (documented) got ${hex(e)}`);
      return;
    }
    approxSeen.bound++;
    const pe = rcpRsqrtCheck(op, s, e);
    if (pe) out.push(`engine: ${pe}`);
    const ph = rcpRsqrtCheck(op, s, lane32(host.fpu!, form.dst, k));
    if (ph) out.push(`host: ${ph} (the row's bound does not hold on this host)`);
    // within the bound: the lane is the engine's own documented choice
    for (let b = 0; b < 4; b++)
      w[160 + 16 * form.dst + 4 * k + b] = eng.fpu![160 + 16 * form.dst + 4 * k + b];
  });
  out.push(...diffOutcome(m.bitness, { ...want, fpu: w }, eng));
  return out;
}

// ---------------- the suite ----------------

function describeInput(inp: NativeInput, bits: Bitness, form: Form): string {
  const f = parseFxImage(inp.fpu!, bits);
  const h = (v: bigint) => v.toString(16).padStart(32, '0');
  const srcText =
    form.src === 'mem'
      ? `mem ${h(
          BigInt(
            '0x' +
              inp
                .memPatch!.slice(0, 16)
                .reverse()
                .map(([, b]) => b.toString(16).padStart(2, '0'))
                .join(''),
          ),
        )}`
      : `xmm${form.src} ${h(f.xmm[form.src])}`;
  const gpr = form.gpr ? ` rax ${inp.regs[0].toString(16)} rcx ${inp.regs[1].toString(16)}` : '';
  return `mxcsr ${f.mxcsr.toString(16)} xmm${form.dst} ${h(f.xmm[form.dst] ?? 0n)} ${srcText}${gpr}`;
}

for (const bitness of [64, 32] as const) {
  const all = forms().filter((fm) => bitness === 64 || !fm.only64);
  const variants = bitness === 64 ? VARIANTS : Math.max(2, Math.ceil(VARIANTS / 3));
  const rng = new Rng(SEED ^ bitness);
  const bodies: string[] = [];
  const inputs: NativeInput[] = [];
  const owner: number[] = [];
  all.forEach((form, fi) => {
    const mine = Array.from({ length: variants }, () => inputFor(rng, form, bitness));
    if (form.matrix && typeof form.src === 'number') mine.push(...matrixInputs(rng, form, bitness));
    if (form.approx && typeof form.src === 'number') mine.push(...approxInputs(rng, form, bitness));
    for (const inp of mine) {
      bodies.push(form.body);
      inputs.push(inp);
      owner.push(fi);
    }
  });
  const classes = new Map<string, number[]>();
  owner.forEach((fi, i) => classes.set(all[fi].cls, [...(classes.get(all[fi].cls) ?? []), i]));

  describe(`SSE floating point vs host CPU (${bitness}-bit): ${all.length} forms, ${bodies.length} cases`, function () {
    this.timeout(600000);
    let batch: NativeBatch | undefined;
    let host: NativeOutcome[] = [];
    let m: TestMachine | undefined;

    before(function () {
      requireNativeToolchain(this, bitness);
      batch = buildNativeBatch(bitness, bodies);
      host = batch.run(inputs);
      m = createMachine(bitness, UNMAPPED_PAGES);
      loadBatch(m, batch);
    });
    after(() => batch?.dispose());

    it('the cases reach unmasked #XM, #GP and every rounding mode', () => {
      const fpe = host.filter((h) => h.kind === 'signal' && h.signal === SIG.SIGFPE).length;
      const segv = host.filter((h) => h.kind === 'signal' && h.signal === SIG.SIGSEGV).length;
      const rcs = new Set(inputs.map((inp) => (inp.fpu![25] >> 5) & 3));
      assert.ok(fpe > bodies.length / 40, `only ${fpe} SIGFPE (#XM/#MF) cases`);
      assert.ok(segv > 0, 'no #GP (misaligned) case');
      assert.equal(rcs.size, 4);
    });

    it('the vendor row rcp-rsqrt-approx exists with its references', () => {
      const row = VENDOR_ROWS['rcp-rsqrt-approx'];
      assert.ok(row && /SDM/.test(row.intel) && /APM/.test(row.amd));
    });

    for (const [cls, idx] of classes) {
      it(`${cls}: ${idx.length} cases`, function () {
        assert.ok(batch && m, 'setup did not run');
        const fails: string[] = [];
        for (const i of idx) {
          const form = all[owner[i]];
          const d = form.approx
            ? checkApprox(m, batch, i, form, inputs[i], host[i])
            : checkCase(m, batch, i, inputs[i], host[i]);
          const h = host[i];
          if (!d.length && h.kind === 'signal' && h.signal === SIG.SIGFPE) {
            // SIGFPE is #MF (an x87 exception pending before a form with an MMX register operand; CVTPI2PS/PD
            // from memory take none) or #XM: tell them apart
            const mmxReg = form.mmx && !(form.src === 'mem' && /^cvtpi2p/.test(form.body));
            const mf = mmxReg && (inputs[i].fpu![2] & 0x80) !== 0;
            if (m.cpu.exitVector !== (mf ? 16 : 19))
              d.push(`want vector ${mf ? 16 : 19}, engine raised ${m.cpu.exitVector}`);
          }
          if (d.length)
            fails.push(`\`${form.body}\` ${describeInput(inputs[i], bitness, form)}: ${d.join('; ')}`);
        }
        assert.equal(
          fails.length,
          0,
          `${fails.length}/${idx.length} differ:\n  ${fails.slice(0, 8).join('\n  ')}`,
        );
      });
    }

    it('RCP/RSQRT lanes were checked both ways (documented bits and the bound)', () => {
      assert.ok(approxSeen.documented >= 50, `${approxSeen.documented} documented lanes`);
      assert.ok(approxSeen.bound >= 50, `${approxSeen.bound} lanes against the bound`);
    });
  });
}
