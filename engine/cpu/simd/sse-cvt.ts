/**
 * SSE/SSE2 conversions (Intel SDM vol. 2 CVT*): CVTPI2PS, CVTPS2PI,
 * CVTTPS2PI, CVTPI2PD, CVTPD2PI, CVTTPD2PI (MMX operands: an MMX register
 * operand makes the x87 unit enter MMX state, SDM vol. 1 §11.6.7, and a
 * pending x87 exception raises #MF), CVTSI2SS/CVTSI2SD (r/m32, REX.W r/m64),
 * CVT(T)SS2SI/CVT(T)SD2SI (r32, REX.W r64), CVTDQ2PS, CVT(T)PS2DQ,
 * CVTDQ2PD, CVT(T)PD2DQ, CVTPD2PS, CVTPS2PD, CVTSS2SD, CVTSD2SS.
 *
 * Rounding per MXCSR.RC (CVTT*: toward zero); NaN or out-of-range
 * float-to-integer results are the integer indefinite (0x80000000,
 * 0x80000000_00000000) with IE; exceptions as in sse-fp.ts (`mxCommit`).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { readRm, setR } from '../ops/operands';
import { x87RaisePendingMf } from '../fpu/x87';
import {
  cvt32to64,
  cvt64to32,
  f32ForInt,
  f64,
  f64ForInt,
  i32to32,
  i64to32,
  i64to64,
  sf,
  toInt,
  bits64,
} from '../fpu/softfloat-sse';
import { mmxEnter, readMmxRm, readRm128, readRmLow, setMmx } from './operands';
import { mxBegin, mxCommit } from './sse-fp';
import { Pfx, SimdKind, defineSimd, type SimdHandler } from './table';

const B = new Int32Array(4);
const R = new Int32Array(4);

function def(op: number, pfx: Pfx, fn: SimdHandler): void {
  defineSimd(op, pfx, SimdKind.SSE, fn);
}

/** REX.W form: 64-bit integer operand. */
function wide(d: Insn): boolean {
  return (d.rex & 8) !== 0;
}

/*
 * MMX-operand forms (SDM vol. 2 CVTPI2PS, CVTPI2PD, CVTPS2PI, CVTPD2PI):
 * an MMX register operand means a pending unmasked x87 exception is #MF
 * first, and the x87 -> MMX transition (TOP = 0, all tags valid) happens
 * once the operands are read, before the SIMD exception check: an unmasked
 * SIMD exception (#XM) leaves the transition done (measured on the host;
 * as Bochs's prepareFPU2MMX). CVTPI2PS/CVTPI2PD with a memory source touch
 * no MMX register: no #MF, no transition ("if the source operand is a
 * memory location, the instruction does not cause a transition to MMX
 * technology and does not take x87 FPU exceptions").
 */
const cvtpi2ps: SimdHandler = (cpu, d) => {
  if (d.mod === 3) x87RaisePendingMf(cpu);
  readMmxRm(cpu, d, B, 0);
  if (d.mod === 3) mmxEnter(cpu);
  mxBegin(cpu);
  const a = i32to32(B[0]);
  const b = i32to32(B[1]);
  mxCommit(cpu, d);
  const x = cpu.state.xmm;
  x[d.reg << 2] = a;
  x[(d.reg << 2) + 1] = b;
  return 1;
};
const cvtpi2pd: SimdHandler = (cpu, d) => {
  if (d.mod === 3) x87RaisePendingMf(cpu);
  readMmxRm(cpu, d, B, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  x[r] = bits64(B[0]);
  x[r + 1] = sf.hi;
  x[r + 2] = bits64(B[1]);
  x[r + 3] = sf.hi;
  if (d.mod === 3) mmxEnter(cpu);
  return 1;
};
function cvtps2pi(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    x87RaisePendingMf(cpu);
    readRmLow(cpu, d, 8, B, 0);
    mmxEnter(cpu);
    mxBegin(cpu);
    const a = toInt(f32ForInt(B[0]), trunc, 32);
    const b = toInt(f32ForInt(B[1]), trunc, 32);
    mxCommit(cpu, d);
    setMmx(cpu, d.reg & 7, a, b);
    return 1;
  };
}
function cvtpd2pi(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    x87RaisePendingMf(cpu);
    readRm128(cpu, d, true, B, 0);
    mmxEnter(cpu);
    mxBegin(cpu);
    const a = toInt(f64ForInt(B[0], B[1]), trunc, 32);
    const b = toInt(f64ForInt(B[2], B[3]), trunc, 32);
    mxCommit(cpu, d);
    setMmx(cpu, d.reg & 7, a, b);
    return 1;
  };
}
const cvtsi2ss: SimdHandler = (cpu, d) => {
  const w = wide(d);
  const lo = readRm(cpu, d, w ? 8 : 4);
  const hi = cpu.tmpHi;
  mxBegin(cpu);
  const v = w ? i64to32(lo, hi) : i32to32(lo);
  mxCommit(cpu, d);
  cpu.state.xmm[d.reg << 2] = v;
  return 1;
};
const cvtsi2sd: SimdHandler = (cpu, d) => {
  const w = wide(d);
  const lo = readRm(cpu, d, w ? 8 : 4);
  const hi = cpu.tmpHi;
  mxBegin(cpu);
  const v = w ? i64to64(lo, hi) : bits64(lo);
  const vh = sf.hi;
  mxCommit(cpu, d);
  const x = cpu.state.xmm;
  x[d.reg << 2] = v;
  x[(d.reg << 2) + 1] = vh;
  return 1;
};
function cvtss2si(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 4, B, 0);
    const w = wide(d);
    mxBegin(cpu);
    const v = toInt(f32ForInt(B[0]), trunc, w ? 64 : 32);
    const vh = sf.hi;
    mxCommit(cpu, d);
    setR(cpu, d, w ? 8 : 4, d.reg, v, vh);
    return 1;
  };
}
function cvtsd2si(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    readRmLow(cpu, d, 8, B, 0);
    const w = wide(d);
    mxBegin(cpu);
    const v = toInt(f64ForInt(B[0], B[1]), trunc, w ? 64 : 32);
    const vh = sf.hi;
    mxCommit(cpu, d);
    setR(cpu, d, w ? 8 : 4, d.reg, v, vh);
    return 1;
  };
}
const cvtps2pd: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  mxBegin(cpu);
  R[0] = cvt32to64(B[0]);
  R[1] = sf.hi;
  R[2] = cvt32to64(B[1]);
  R[3] = sf.hi;
  mxCommit(cpu, d);
  put4(cpu, d.reg << 2);
  return 1;
};
const cvtpd2ps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  mxBegin(cpu);
  R[0] = cvt64to32(B[0], B[1]);
  R[1] = cvt64to32(B[2], B[3]);
  R[2] = R[3] = 0;
  mxCommit(cpu, d);
  put4(cpu, d.reg << 2);
  return 1;
};
const cvtss2sd: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 4, B, 0);
  mxBegin(cpu);
  const lo = cvt32to64(B[0]);
  const hi = sf.hi;
  mxCommit(cpu, d);
  const x = cpu.state.xmm;
  x[d.reg << 2] = lo;
  x[(d.reg << 2) + 1] = hi;
  return 1;
};
const cvtsd2ss: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  mxBegin(cpu);
  const v = cvt64to32(B[0], B[1]);
  mxCommit(cpu, d);
  cpu.state.xmm[d.reg << 2] = v;
  return 1;
};
const cvtdq2ps: SimdHandler = (cpu, d) => {
  readRm128(cpu, d, true, B, 0);
  mxBegin(cpu);
  for (let k = 0; k < 4; k++) R[k] = i32to32(B[k]);
  mxCommit(cpu, d);
  put4(cpu, d.reg << 2);
  return 1;
};
function cvtps2dq(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    mxBegin(cpu);
    for (let k = 0; k < 4; k++) R[k] = toInt(f32ForInt(B[k]), trunc, 32);
    mxCommit(cpu, d);
    put4(cpu, d.reg << 2);
    return 1;
  };
}
const cvtdq2pd: SimdHandler = (cpu, d) => {
  readRmLow(cpu, d, 8, B, 0);
  R[0] = bits64(B[0]);
  R[1] = sf.hi;
  R[2] = bits64(B[1]);
  R[3] = sf.hi;
  put4(cpu, d.reg << 2);
  return 1;
};
function cvtpd2dq(trunc: boolean): SimdHandler {
  return (cpu, d) => {
    readRm128(cpu, d, true, B, 0);
    mxBegin(cpu);
    R[0] = toInt(f64ForInt(B[0], B[1]), trunc, 32);
    R[1] = toInt(f64ForInt(B[2], B[3]), trunc, 32);
    R[2] = R[3] = 0;
    mxCommit(cpu, d);
    put4(cpu, d.reg << 2);
    return 1;
  };
}

function put4(cpu: Cpu, r: number): void {
  const x = cpu.state.xmm;
  x[r] = R[0];
  x[r + 1] = R[1];
  x[r + 2] = R[2];
  x[r + 3] = R[3];
}

/** Value of a binary64 lane (for tests and tools). */
export function laneF64(cpu: Cpu, reg: number, lane: number): number {
  const x = cpu.state.xmm;
  return f64(x[(reg << 2) + 2 * lane], x[(reg << 2) + 2 * lane + 1]);
}

/** Registers the conversions in the SIMD table (called once by simd/index.ts registerAll). */
export function registerSseCvt(): void {
  def(0x12a, Pfx.NONE, cvtpi2ps);
  def(0x12a, Pfx.P66, cvtpi2pd);
  def(0x12a, Pfx.F3, cvtsi2ss);
  def(0x12a, Pfx.F2, cvtsi2sd);
  def(0x12c, Pfx.NONE, cvtps2pi(true));
  def(0x12c, Pfx.P66, cvtpd2pi(true));
  def(0x12c, Pfx.F3, cvtss2si(true));
  def(0x12c, Pfx.F2, cvtsd2si(true));
  def(0x12d, Pfx.NONE, cvtps2pi(false));
  def(0x12d, Pfx.P66, cvtpd2pi(false));
  def(0x12d, Pfx.F3, cvtss2si(false));
  def(0x12d, Pfx.F2, cvtsd2si(false));
  def(0x15a, Pfx.NONE, cvtps2pd);
  def(0x15a, Pfx.P66, cvtpd2ps);
  def(0x15a, Pfx.F3, cvtss2sd);
  def(0x15a, Pfx.F2, cvtsd2ss);
  def(0x15b, Pfx.NONE, cvtdq2ps);
  def(0x15b, Pfx.P66, cvtps2dq(false));
  def(0x15b, Pfx.F3, cvtps2dq(true));
  def(0x1e6, Pfx.P66, cvtpd2dq(true));
  def(0x1e6, Pfx.F2, cvtpd2dq(false));
  def(0x1e6, Pfx.F3, cvtdq2pd);
}
