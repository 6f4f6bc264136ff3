/**
 * SSE/SSE2/SSE3/SSE4.1 floating-point instructions and moves (Intel SDM
 * vol. 2; vol. 1 ch. 10-12): MOV{U,A}P{S,D}, MOVS{S,D}, MOV{L,H}P{S,D},
 * MOVHLPS/MOVLHPS, MOVNTP{S,D}, MOVMSKP{S,D}, UNPCK{L,H}P{S,D}, SHUFP{S,D},
 * ADD/SUB/MUL/DIV/MIN/MAX/SQRT P{S,D}/S{S,D}, RCP/RSQRT PS/SS, AND/ANDN/OR/
 * XOR P{S,D}, CMP P{S,D}/S{S,D}, (U)COMIS{S,D}; SSE3 ADDSUB, HADD, HSUB,
 * MOVSLDUP/MOVSHDUP/MOVDDUP, LDDQU; SSE4.1 ROUND*, DPPS/DPPD, BLEND(V)P{S,D},
 * INSERTPS, EXTRACTPS.
 *
 * Arithmetic goes through engine/cpu/fpu/softfloat-sse.ts (MXCSR rounding,
 * DAZ/FTZ, flags). SIMD exceptions (SDM vol. 1 §11.5.2): every lane is
 * computed into a scratch result first; pre-computation exceptions (IE, DE,
 * ZE) of all lanes are checked before post-computation ones (OE, UE, PE);
 * an unmasked one sets its MXCSR flags and raises #XM (CR4.OSXMMEXCPT) or
 * #UD, leaving the destination unchanged. Legacy-SSE 128-bit memory operands
 * must be 16-byte aligned (#GP(0)) except for MOVUPS/MOVUPD/LDDQU.
 *
 * RCPPS/RCPSS/RSQRTPS/RSQRTSS: the SDM only bounds the relative error
 * (|err| <= 1.5 * 2^-12); Intel and AMD parts return different bits. The
 * engine returns the exact reciprocal (square-root reciprocal) rounded to
 * 12 significant bits (error <= 2^-12): deterministic, the same on every
 * host; the differential tests check the bound (the `rcp-rsqrt-approx` row
 * of test/helpers/vendor-table.ts; docs/cpu-testing.md).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { setR, undefinedOpcode, operandAddress } from '../ops/operands';
import {
  FOp,
  Mx,
  cmp32,
  cmp64,
  f32,
  bits32,
  f64,
  bits64,
  isNaN32,
  isNaN64,
  op32,
  op64,
  rel32,
  rel64,
  roundInt,
  sf,
  INDEF32,
} from '../fpu/softfloat-sse';
import { readRm128, readRmLow, writeMemLow, writeRm128 } from './operands';
import { Pfx, SimdKind, defineSimd, type SimdHandler } from './table';

const A = new Int32Array(4);
const B = new Int32Array(4);
const R = new Int32Array(4);

/** Starts an MXCSR-governed instruction: takes MXCSR, clears the flag accumulators. */
export function mxBegin(cpu: Cpu): void {
  sf.mx = cpu.state.mxcsr;
  sf.pre = 0;
  sf.post = 0;
}

/**
 * Commits the flags of the lanes computed since `mxBegin` (SDM vol. 1
 * §11.5.2.1): an unmasked pre-computation exception sets only the
 * pre-computation flags; an unmasked post-computation one sets all; either
 * raises #XM when CR4.OSXMMEXCPT, else #UD, before the destination changes.
 * Otherwise ORs the flags into MXCSR.
 */
export function mxCommit(cpu: Cpu, d: Insn): void {
  const mx = sf.mx;
  const masks = (mx >> 7) & 0x3f;
  const pre = sf.pre;
  const all = pre | sf.post;
  if (pre & ~masks) {
    cpu.state.mxcsr = mx | pre;
    simdException(cpu, d);
  }
  if (all & ~masks) {
    cpu.state.mxcsr = mx | all;
    simdException(cpu, d);
  }
  if (all) cpu.state.mxcsr = mx | all;
}

let mxAcc = 0;
/**
 * Ends one step of a multi-step instruction (DPPS/DPPD: "exceptions are
 * determined separately for each add and multiply operation, in the order
 * of their execution", SDM vol. 2 DPPS): the step's unmasked exceptions are
 * raised as `mxCommit` does, with the flags of the steps before it; masked
 * ones accumulate until `mxStepsDone`. Start with `mxBegin` and
 * `mxAcc = 0`.
 */
function mxStep(cpu: Cpu, d: Insn): void {
  const mx = sf.mx;
  const masks = (mx >> 7) & 0x3f;
  const pre = sf.pre;
  const all = pre | sf.post;
  if (pre & ~masks) {
    cpu.state.mxcsr = mx | mxAcc | pre;
    simdException(cpu, d);
  }
  if (all & ~masks) {
    cpu.state.mxcsr = mx | mxAcc | all;
    simdException(cpu, d);
  }
  mxAcc |= all;
  sf.pre = 0;
  sf.post = 0;
}
/** Commits the flags accumulated by `mxStep` (all steps done, no unmasked exception). */
function mxStepsDone(cpu: Cpu): void {
  if (mxAcc) cpu.state.mxcsr = sf.mx | mxAcc;
}

/** Delivers an unmasked SIMD floating-point exception: #XM (19) if CR4.OSXMMEXCPT, else #UD (SDM vol. 3 §6.15 int 19). */
function simdException(cpu: Cpu, d: Insn): never {
  if (cpu.state.cr4 & 0x400) cpu.fault(19, -1);
  return undefinedOpcode(cpu, d);
}

function put4(cpu: Cpu, r: number, src: Int32Array): void {
  const x = cpu.state.xmm;
  x[r] = src[0];
  x[r + 1] = src[1];
  x[r + 2] = src[2];
  x[r + 3] = src[3];
}

function def(op: number, pfx: Pfx, fn: SimdHandler): void {
  defineSimd(op, pfx, SimdKind.SSE, fn);
}

// ---------------- arithmetic ----------------

function arithPS(op: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    for (let k = 0; k < 4; k++) R[k] = op32(op, x[r + k], B[k]);
    mxCommit(cpu, d);
    put4(cpu, r, R);
    return 1;
  };
}
function arithSS(op: number): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 4, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    const v = op32(op, x[r], B[0]);
    mxCommit(cpu, d);
    x[r] = v;
    return 1;
  };
}
function arithPD(op: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    R[0] = op64(op, x[r], x[r + 1], B[0], B[1]);
    R[1] = sf.hi;
    R[2] = op64(op, x[r + 2], x[r + 3], B[2], B[3]);
    R[3] = sf.hi;
    mxCommit(cpu, d);
    put4(cpu, r, R);
    return 1;
  };
}
function arithSD(op: number): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 8, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    const lo = op64(op, x[r], x[r + 1], B[0], B[1]);
    const hi = sf.hi;
    mxCommit(cpu, d);
    x[r] = lo;
    x[r + 1] = hi;
    return 1;
  };
}

/** ADDSUBPS (SSE3): lanes 0, 2 subtract, 1, 3 add. */
const addsubps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  mxBegin(cpu);
  for (let k = 0; k < 4; k++) R[k] = op32(k & 1 ? FOp.ADD : FOp.SUB, x[r + k], B[k]);
  mxCommit(cpu, d);
  put4(cpu, r, R);
  return 1;
};
const addsubpd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  mxBegin(cpu);
  R[0] = op64(FOp.SUB, x[r], x[r + 1], B[0], B[1]);
  R[1] = sf.hi;
  R[2] = op64(FOp.ADD, x[r + 2], x[r + 3], B[2], B[3]);
  R[3] = sf.hi;
  mxCommit(cpu, d);
  put4(cpu, r, R);
  return 1;
};
/** HADDPS/HSUBPS (SSE3): [a0 op a1, a2 op a3, b0 op b1, b2 op b3]. */
function hps(op: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    R[0] = op32(op, x[r], x[r + 1]);
    R[1] = op32(op, x[r + 2], x[r + 3]);
    R[2] = op32(op, B[0], B[1]);
    R[3] = op32(op, B[2], B[3]);
    mxCommit(cpu, d);
    put4(cpu, r, R);
    return 1;
  };
}
/** HADDPD/HSUBPD (SSE3): [a0 op a1, b0 op b1]. */
function hpd(op: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    R[0] = op64(op, x[r], x[r + 1], x[r + 2], x[r + 3]);
    R[1] = sf.hi;
    R[2] = op64(op, B[0], B[1], B[2], B[3]);
    R[3] = sf.hi;
    mxCommit(cpu, d);
    put4(cpu, r, R);
    return 1;
  };
}

// ---------------- RCP / RSQRT ----------------

/** Rounds the binary32 bits of a positive-or-negative normal value to 12 significant bits (nearest). */
function to12(b: number): number {
  return (b + 0x400) & ~0x7ff;
}
/** RCPPS lane: 1/x to 12 bits; denormal inputs as zero; results below 2^-126 flushed to zero; no MXCSR flags. */
export function rcp32(b: number): number {
  if (isNaN32(b)) return b | 0x400000;
  const e = b & 0x7f800000;
  if (e === 0) return (b & 0x80000000) | 0x7f800000;
  if (e === 0x7f800000) return b & 0x80000000;
  const r = 1 / f32(b);
  const a = r < 0 ? -r : r;
  if (a < 1.1754943508222875e-38) return b & 0x80000000;
  return to12(bits32(Math.fround(r)));
}
/** RSQRTPS lane: 1/sqrt(x) to 12 bits; negative nonzero -> QNaN indefinite; ±0/denormal -> ±inf; no flags. */
export function rsqrt32(b: number): number {
  if (isNaN32(b)) return b | 0x400000;
  const e = b & 0x7f800000;
  if (e === 0) return (b & 0x80000000) | 0x7f800000;
  if (b < 0) return INDEF32;
  if (e === 0x7f800000) return 0;
  return to12(bits32(Math.fround(1 / Math.sqrt(f32(b)))));
}

function approxPS(fn: (b: number) => number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    for (let k = 0; k < 4; k++) x[r + k] = fn(B[k]);
    return 1;
  };
}
function approxSS(fn: (b: number) => number): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 4, B, 0);
    cpu.state.xmm[d.reg << 2] = fn(B[0]);
    return 1;
  };
}

// ---------------- logic ----------------

function logic(kind: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    for (let k = 0; k < 4; k++) {
      const a = x[r + k];
      x[r + k] = kind === 0 ? a & B[k] : kind === 1 ? ~a & B[k] : kind === 2 ? a | B[k] : a ^ B[k];
    }
    return 1;
  };
}

// ---------------- compares ----------------

const cmpps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const p = d.imm & 7;
  mxBegin(cpu);
  for (let k = 0; k < 4; k++) R[k] = cmp32(x[r + k], B[k], p) ? -1 : 0;
  mxCommit(cpu, d);
  put4(cpu, r, R);
  return 1;
};
const cmpss: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 4, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  mxBegin(cpu);
  const v = cmp32(x[r], B[0], d.imm & 7) ? -1 : 0;
  mxCommit(cpu, d);
  x[r] = v;
  return 1;
};
const cmppd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const p = d.imm & 7;
  mxBegin(cpu);
  R[0] = R[1] = cmp64(x[r], x[r + 1], B[0], B[1], p) ? -1 : 0;
  R[2] = R[3] = cmp64(x[r + 2], x[r + 3], B[2], B[3], p) ? -1 : 0;
  mxCommit(cpu, d);
  put4(cpu, r, R);
  return 1;
};
const cmpsd: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  mxBegin(cpu);
  const v = cmp64(x[r], x[r + 1], B[0], B[1], d.imm & 7) ? -1 : 0;
  mxCommit(cpu, d);
  x[r] = v;
  x[r + 1] = v;
  return 1;
};

/** ZF/PF/CF for a COMIS relation (0 >, 1 <, 2 =, 3 unordered); OF, SF, AF cleared (SDM COMISS). */
const COMI_FLAGS = [0, 0x01, 0x40, 0x45];

function comis(signaling: boolean): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 4, B, 0);
    mxBegin(cpu);
    const rel = rel32(cpu.state.xmm[d.reg << 2], B[0], signaling);
    mxCommit(cpu, d);
    cpu.setArith(COMI_FLAGS[rel]);
    return 1;
  };
}
function comisd(signaling: boolean): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 8, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    mxBegin(cpu);
    const rel = rel64(x[r], x[r + 1], B[0], B[1], signaling);
    mxCommit(cpu, d);
    cpu.setArith(COMI_FLAGS[rel]);
    return 1;
  };
}

// ---------------- moves ----------------

function load128(aligned: boolean): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, aligned, B, 0);
    put4(cpu, d.reg << 2, B);
    return 1;
  };
}
function store128(aligned: boolean): SimdHandler {
  return (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    A[0] = x[r];
    A[1] = x[r + 1];
    A[2] = x[r + 2];
    A[3] = x[r + 3];
    writeRm128(cpu, d, aligned, A, 0);
    return 1;
  };
}
/** MOVSS/MOVSD loads: register form moves the low lane(s) only; memory form zeroes the rest. */
function movsLoad(size: 4 | 8): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, size, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    x[r] = B[0];
    if (size === 8) x[r + 1] = B[1];
    if (d.mod !== 3) {
      if (size === 4) x[r + 1] = 0;
      x[r + 2] = 0;
      x[r + 3] = 0;
    }
    return 1;
  };
}
function movsStore(size: 4 | 8): SimdHandler {
  return (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.mod === 3) {
      const t = d.rm << 2;
      x[t] = x[r];
      if (size === 8) x[t + 1] = x[r + 1];
      return 1;
    }
    A[0] = x[r];
    A[1] = x[r + 1];
    writeMemLow(cpu, d, size, A, 0);
    return 1;
  };
}
/** MOVLPS/MOVLPD (mem), MOVHLPS (reg, no prefix only) into the low qword. */
function movlLoad(regForm: boolean): SimdHandler {
  return (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.mod === 3) {
      if (!regForm) return undefinedOpcode(cpu, d);
      const s = d.rm << 2;
      x[r] = x[s + 2];
      x[r + 1] = x[s + 3];
      return 1;
    }
    readRmLow(cpu, d, 8, B, 0);
    x[r] = B[0];
    x[r + 1] = B[1];
    return 1;
  };
}
/** MOVHPS/MOVHPD (mem), MOVLHPS (reg, no prefix only) into the high qword. */
function movhLoad(regForm: boolean): SimdHandler {
  return (cpu, d) => {
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (d.mod === 3) {
      if (!regForm) return undefinedOpcode(cpu, d);
      const s = d.rm << 2;
      x[r + 2] = x[s];
      x[r + 3] = x[s + 1];
      return 1;
    }
    readRmLow(cpu, d, 8, B, 0);
    x[r + 2] = B[0];
    x[r + 3] = B[1];
    return 1;
  };
}
/** MOVLPS/MOVLPD/MOVHPS/MOVHPD stores (`lane` 0 low qword, 2 high): memory only. */
function movqStore(lane: number): SimdHandler {
  return (cpu, d) => {
    if (d.mod === 3) return undefinedOpcode(cpu, d);
    const x = cpu.state.xmm;
    const r = (d.reg << 2) + lane;
    A[0] = x[r];
    A[1] = x[r + 1];
    writeMemLow(cpu, d, 8, A, 0);
    return 1;
  };
}
/** MOVNTPS/MOVNTPD: aligned 128-bit store, memory only (the non-temporal hint has no architectural effect). */
const storeAligned = store128(true);
const movnt: SimdHandler = (cpu, d) => {
  if (d.mod === 3) return undefinedOpcode(cpu, d);
  return storeAligned(cpu, d);
};
/** LDDQU (SSE3): unaligned 128-bit load, memory only. */
const lddqu: SimdHandler = (cpu, d) => {
  if (d.mod === 3) return undefinedOpcode(cpu, d);
  readRm128(cpu, d, false, B, 0);
  put4(cpu, d.reg << 2, B);
  return 1;
};
function movmsk(pd: boolean): SimdHandler {
  return (cpu, d) => {
    if (d.mod !== 3) return undefinedOpcode(cpu, d);
    const x = cpu.state.xmm;
    const s = d.rm << 2;
    const m = pd
      ? ((x[s + 1] >>> 31) | ((x[s + 3] >>> 31) << 1)) >>> 0
      : (x[s] >>> 31) | ((x[s + 1] >>> 31) << 1) | ((x[s + 2] >>> 31) << 2) | ((x[s + 3] >>> 31) << 3);
    setR(cpu, d, 4, d.reg, m, 0);
    return 1;
  };
}
/** MOVSLDUP (odd 0) / MOVSHDUP (odd 1): duplicate the even / odd dwords. */
function movsdup(odd: number): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    x[r] = x[r + 1] = B[odd];
    x[r + 2] = x[r + 3] = B[2 + odd];
    return 1;
  };
}
const movddup: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  x[r] = x[r + 2] = B[0];
  x[r + 1] = x[r + 3] = B[1];
  return 1;
};

// ---------------- shuffles ----------------

function unpck(high: boolean, pd: boolean): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    const o = high ? 2 : 0;
    if (pd) {
      R[0] = x[r + o];
      R[1] = x[r + o + 1];
      R[2] = B[o];
      R[3] = B[o + 1];
    } else {
      R[0] = x[r + o];
      R[1] = B[o];
      R[2] = x[r + o + 1];
      R[3] = B[o + 1];
    }
    put4(cpu, r, R);
    return 1;
  };
}
const shufps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const i = d.imm;
  R[0] = x[r + (i & 3)];
  R[1] = x[r + ((i >> 2) & 3)];
  R[2] = B[(i >> 4) & 3];
  R[3] = B[(i >> 6) & 3];
  put4(cpu, r, R);
  return 1;
};
const shufpd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const i = d.imm;
  const a = r + (i & 1 ? 2 : 0);
  R[0] = x[a];
  R[1] = x[a + 1];
  const b = i & 2 ? 2 : 0;
  R[2] = B[b];
  R[3] = B[b + 1];
  put4(cpu, r, R);
  return 1;
};

// ---------------- SSE4.1 ----------------

/** ROUNDSS/PS lane: imm8[1:0] mode unless imm8[2] (MXCSR.RC); imm8[3] suppresses PE; SNaN -> IE (SDM ROUNDPS). */
function round32(b: number, imm: number): number {
  if (isNaN32(b)) {
    if (!(b & 0x400000)) sf.pre |= Mx.IE;
    return b | 0x400000;
  }
  if ((b & 0x7f800000) === 0 && sf.mx & Mx.DAZ) b &= 0x80000000;
  const x = f32(b);
  const rn = roundInt(x, imm & 4 ? (sf.mx >> 13) & 3 : imm & 3);
  if (rn !== x && !(imm & 8)) sf.post |= Mx.PE;
  return rn === x ? b : bits32(rn);
}
function round64(lo: number, hi: number, imm: number): number {
  if (isNaN64(lo, hi)) {
    if (!(hi & 0x80000)) sf.pre |= Mx.IE;
    sf.hi = hi | 0x80000;
    return lo;
  }
  if ((hi & 0x7ff00000) === 0 && sf.mx & Mx.DAZ) {
    hi &= 0x80000000;
    lo = 0;
  }
  const x = f64(lo, hi);
  const rn = roundInt(x, imm & 4 ? (sf.mx >> 13) & 3 : imm & 3);
  if (rn === x) {
    sf.hi = hi;
    return lo;
  }
  if (!(imm & 8)) sf.post |= Mx.PE;
  return bits64(rn);
}
const roundps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  mxBegin(cpu);
  for (let k = 0; k < 4; k++) R[k] = round32(B[k], d.imm);
  mxCommit(cpu, d);
  put4(cpu, d.reg << 2, R);
  return 1;
};
const roundpd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  mxBegin(cpu);
  R[0] = round64(B[0], B[1], d.imm);
  R[1] = sf.hi;
  R[2] = round64(B[2], B[3], d.imm);
  R[3] = sf.hi;
  mxCommit(cpu, d);
  put4(cpu, d.reg << 2, R);
  return 1;
};
const roundss: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 4, B, 0);
  mxBegin(cpu);
  const v = round32(B[0], d.imm);
  mxCommit(cpu, d);
  cpu.state.xmm[d.reg << 2] = v;
  return 1;
};
const roundsd: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  mxBegin(cpu);
  const lo = round64(B[0], B[1], d.imm);
  const hi = sf.hi;
  mxCommit(cpu, d);
  const x = cpu.state.xmm;
  x[d.reg << 2] = lo;
  x[(d.reg << 2) + 1] = hi;
  return 1;
};
const blendps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  for (let k = 0; k < 4; k++) if ((d.imm >> k) & 1) x[r + k] = B[k];
  return 1;
};
const blendpd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  if (d.imm & 1) {
    x[r] = B[0];
    x[r + 1] = B[1];
  }
  if (d.imm & 2) {
    x[r + 2] = B[2];
    x[r + 3] = B[3];
  }
  return 1;
};
/** BLENDVPS/BLENDVPD: the sign bit of each XMM0 lane selects the source (implicit XMM0 mask). */
function blendv(pd: boolean): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    const x = cpu.state.xmm;
    const r = d.reg << 2;
    if (pd) {
      const m0 = x[1] < 0;
      const m1 = x[3] < 0;
      if (m0) {
        x[r] = B[0];
        x[r + 1] = B[1];
      }
      if (m1) {
        x[r + 2] = B[2];
        x[r + 3] = B[3];
      }
    } else {
      const m = (x[0] >>> 31) | ((x[1] >>> 31) << 1) | ((x[2] >>> 31) << 2) | ((x[3] >>> 31) << 3);
      for (let k = 0; k < 4; k++) if ((m >> k) & 1) x[r + k] = B[k];
    }
    return 1;
  };
}
/**
 * DPPS (SDM): products of the lanes selected by imm8[7:4] (others +0.0),
 * summed as (p0 + p1) + (p2 + p3), each step rounded with its exceptions;
 * the sum goes to the lanes selected by imm8[3:0], +0.0 elsewhere.
 */
const dpps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const i = d.imm;
  mxBegin(cpu);
  mxAcc = 0;
  for (let k = 0; k < 4; k++) A[k] = (i >> (4 + k)) & 1 ? op32(FOp.MUL, x[r + k], B[k]) : 0;
  mxStep(cpu, d);
  const t1 = op32(FOp.ADD, A[0], A[1]);
  const t2 = op32(FOp.ADD, A[2], A[3]);
  mxStep(cpu, d);
  const s = op32(FOp.ADD, t1, t2);
  mxStep(cpu, d);
  mxStepsDone(cpu);
  for (let k = 0; k < 4; k++) x[r + k] = (i >> k) & 1 ? s : 0;
  return 1;
};
const dppd: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  const i = d.imm;
  mxBegin(cpu);
  mxAcc = 0;
  if (i & 0x10) {
    A[0] = op64(FOp.MUL, x[r], x[r + 1], B[0], B[1]);
    A[1] = sf.hi;
  } else A[0] = A[1] = 0;
  if (i & 0x20) {
    A[2] = op64(FOp.MUL, x[r + 2], x[r + 3], B[2], B[3]);
    A[3] = sf.hi;
  } else A[2] = A[3] = 0;
  mxStep(cpu, d);
  const lo = op64(FOp.ADD, A[0], A[1], A[2], A[3]);
  const hi = sf.hi;
  mxStep(cpu, d);
  mxStepsDone(cpu);
  x[r] = i & 1 ? lo : 0;
  x[r + 1] = i & 1 ? hi : 0;
  x[r + 2] = i & 2 ? lo : 0;
  x[r + 3] = i & 2 ? hi : 0;
  return 1;
};
/** INSERTPS: source dword imm8[7:6] (register form) or m32, into lane imm8[5:4], then zero lanes of imm8[3:0]. */
const insertps: SimdHandler = (cpu, d) => {
  const i = d.imm;
  let v: number;
  if (d.mod === 3) v = cpu.state.xmm[(d.rm << 2) + ((i >> 6) & 3)];
  else {
    readRmLow(cpu, d, 4, B, 0);
    v = B[0];
  }
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  x[r + ((i >> 4) & 3)] = v;
  for (let k = 0; k < 4; k++) if ((i >> k) & 1) x[r + k] = 0;
  return 1;
};
/** EXTRACTPS r/m32, xmm, imm8: dword imm8[1:0] to a GPR (zero-extended) or m32. */
const extractps: SimdHandler = (cpu, d) => {
  const v = cpu.state.xmm[(d.reg << 2) + (d.imm & 3)];
  if (d.mod === 3) {
    setR(cpu, d, 4, d.rm, v, 0);
    return 1;
  }
  const lo = operandAddress(cpu, d, 4, true);
  cpu.wrS(lo, cpu.tmpHi, 4, v, 0);
  return 1;
};

/** Registers this unit's encodings in the SIMD table (called once by simd/index.ts registerAll). */
export function registerSseFp(): void {
  def(0x110, Pfx.NONE, load128(false));
  def(0x110, Pfx.P66, load128(false));
  def(0x110, Pfx.F3, movsLoad(4));
  def(0x110, Pfx.F2, movsLoad(8));
  def(0x111, Pfx.NONE, store128(false));
  def(0x111, Pfx.P66, store128(false));
  def(0x111, Pfx.F3, movsStore(4));
  def(0x111, Pfx.F2, movsStore(8));
  def(0x112, Pfx.NONE, movlLoad(true));
  def(0x112, Pfx.P66, movlLoad(false));
  def(0x112, Pfx.F3, movsdup(0));
  def(0x112, Pfx.F2, movddup);
  def(0x113, Pfx.NONE, movqStore(0));
  def(0x113, Pfx.P66, movqStore(0));
  def(0x114, Pfx.NONE, unpck(false, false));
  def(0x114, Pfx.P66, unpck(false, true));
  def(0x115, Pfx.NONE, unpck(true, false));
  def(0x115, Pfx.P66, unpck(true, true));
  def(0x116, Pfx.NONE, movhLoad(true));
  def(0x116, Pfx.P66, movhLoad(false));
  def(0x116, Pfx.F3, movsdup(1));
  def(0x117, Pfx.NONE, movqStore(2));
  def(0x117, Pfx.P66, movqStore(2));
  def(0x128, Pfx.NONE, load128(true));
  def(0x128, Pfx.P66, load128(true));
  def(0x129, Pfx.NONE, store128(true));
  def(0x129, Pfx.P66, store128(true));
  def(0x12b, Pfx.NONE, movnt);
  def(0x12b, Pfx.P66, movnt);
  def(0x12e, Pfx.NONE, comis(false));
  def(0x12e, Pfx.P66, comisd(false));
  def(0x12f, Pfx.NONE, comis(true));
  def(0x12f, Pfx.P66, comisd(true));
  def(0x150, Pfx.NONE, movmsk(false));
  def(0x150, Pfx.P66, movmsk(true));
  for (const op of [FOp.SQRT, FOp.ADD, FOp.MUL, FOp.SUB, FOp.MIN, FOp.DIV, FOp.MAX]) {
    def(0x100 | op, Pfx.NONE, arithPS(op));
    def(0x100 | op, Pfx.P66, arithPD(op));
    def(0x100 | op, Pfx.F3, arithSS(op));
    def(0x100 | op, Pfx.F2, arithSD(op));
  }
  def(0x152, Pfx.NONE, approxPS(rsqrt32));
  def(0x152, Pfx.F3, approxSS(rsqrt32));
  def(0x153, Pfx.NONE, approxPS(rcp32));
  def(0x153, Pfx.F3, approxSS(rcp32));
  for (let k = 0; k < 4; k++) {
    def(0x154 + k, Pfx.NONE, logic(k));
    def(0x154 + k, Pfx.P66, logic(k));
  }
  def(0x1c2, Pfx.NONE, cmpps);
  def(0x1c2, Pfx.P66, cmppd);
  def(0x1c2, Pfx.F3, cmpss);
  def(0x1c2, Pfx.F2, cmpsd);
  def(0x1c6, Pfx.NONE, shufps);
  def(0x1c6, Pfx.P66, shufpd);
  def(0x1d0, Pfx.P66, addsubpd);
  def(0x1d0, Pfx.F2, addsubps);
  def(0x17c, Pfx.P66, hpd(FOp.ADD));
  def(0x17c, Pfx.F2, hps(FOp.ADD));
  def(0x17d, Pfx.P66, hpd(FOp.SUB));
  def(0x17d, Pfx.F2, hps(FOp.SUB));
  def(0x1f0, Pfx.F2, lddqu);
  def(0x308, Pfx.P66, roundps);
  def(0x309, Pfx.P66, roundpd);
  def(0x30a, Pfx.P66, roundss);
  def(0x30b, Pfx.P66, roundsd);
  def(0x30c, Pfx.P66, blendps);
  def(0x30d, Pfx.P66, blendpd);
  def(0x214, Pfx.P66, blendv(false));
  def(0x215, Pfx.P66, blendv(true));
  def(0x340, Pfx.P66, dpps);
  def(0x341, Pfx.P66, dppd);
  def(0x321, Pfx.P66, insertps);
  def(0x317, Pfx.P66, extractps);
}
