/**
 * x87 FPU instructions: opcodes D8-DF and FWAIT (9B) (Intel SDM vol. 1
 * ch. 8, vol. 2 "FADD".."FYL2XP1"). State lives in `CpuState` (fpSigLo/
 * fpSigHi/fpSe as physical R0-R7, fpuCw, fpuSw with TOP in bits 11-13,
 * fpuTw full tag word, fpuFop, fpuIp*, fpuCs, fpuDp*, fpuDs).
 *
 * Arithmetic is the soft-float core in `softfloat.ts` (exact, correctly
 * rounded in all rounding and precision modes); transcendentals are in
 * `softfloat-trans.ts`.
 *
 * Exceptions (SDM vol. 1 §8.4-8.5): every instruction computes its flags
 * first; an unmasked IE/DE/ZE leaves the destination and TOP unchanged;
 * unmasked OE/UE on a register destination deliver the exponent-scaled
 * result, on a memory destination store nothing; each unmasked exception
 * sets FSW.ES and FSW.B and is delivered as #MF (vector 16) by the next
 * waiting x87 instruction (CR0.NE=1). With CR0.NE=0 the engine does not
 * model FERR#/IGNNE# (no IRQ 13): the waiting instruction just proceeds
 * (documented deviation; Xen PV guests always run with NE=1).
 *
 * FIP/FCS/FOP are updated by every non-control instruction, FDP/FDS by every
 * non-control instruction with a memory operand (SDM vol. 1 §8.1.8-8.1.9);
 * FDP holds the operand's offset in its segment.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { operandAddress, undefinedOpcode } from '../ops/operands';
import {
  BIAS,
  Exc,
  F80,
  K,
  add,
  classify,
  compare,
  div,
  fHi,
  fLo,
  fromF32,
  fromF64,
  fromInt64,
  intHi,
  intLo,
  mul,
  prem,
  premPartial,
  premQ,
  roundInt,
  scale,
  setIndefinite,
  sf,
  sfMode,
  sqrt,
  toFloat,
  toInt,
  xtract,
} from './softfloat';
import { f2xm1, fcos, fpatan, fptan, fsin, fsincos, fyl2x, fyl2xp1, trigOutOfRange } from './softfloat-trans';

// FSW bits.
const SW_SF = 0x40;
const SW_ES = 0x80;
const SW_C0 = 0x100;
const SW_C1 = 0x200;
const SW_C2 = 0x400;
const SW_C3 = 0x4000;
const SW_B = 0x8000;
const SW_CC = SW_C0 | SW_C1 | SW_C2 | SW_C3;

// Preallocated operands and results.
const A = new F80();
const B = new F80();
const R = new F80();
const R2 = new F80();
const buf = new Uint8Array(128);

function top(cpu: Cpu): number {
  return (cpu.state.fpuSw >>> 11) & 7;
}

function setTop(cpu: Cpu, t: number): void {
  const st = cpu.state;
  st.fpuSw = (st.fpuSw & ~0x3800) | ((t & 7) << 11);
}

function isEmpty(cpu: Cpu, p: number): boolean {
  return ((cpu.state.fpuTw >>> (p * 2)) & 3) === 3;
}

function setTag(cpu: Cpu, p: number, t: number): void {
  const st = cpu.state;
  st.fpuTw = (st.fpuTw & ~(3 << (p * 2))) | (t << (p * 2));
}

function getReg(cpu: Cpu, p: number, out: F80): F80 {
  const st = cpu.state;
  const se = st.fpSe[p];
  return out.set(se >>> 15, se & 0x7fff, st.fpSigHi[p], st.fpSigLo[p]);
}

function putReg(cpu: Cpu, p: number, v: F80): void {
  const st = cpu.state;
  st.fpSe[p] = (v.s << 15) | v.e;
  st.fpSigHi[p] = v.hi | 0;
  st.fpSigLo[p] = v.lo | 0;
  setTag(cpu, p, classifyTag(v.e, v.hi | 0, v.lo | 0));
}

/** ORs exception flags into FSW; sets ES and B when one is unmasked. */
function raise(cpu: Cpu, exc: number): void {
  const st = cpu.state;
  st.fpuSw |= exc & 0x7f;
  if (exc & ~st.fpuCw & 0x3f) st.fpuSw |= SW_ES | SW_B;
}

function setC1(cpu: Cpu, on: boolean): void {
  const st = cpu.state;
  st.fpuSw = on ? st.fpuSw | SW_C1 : st.fpuSw & ~SW_C1;
}

/** Condition codes C3 C2 C0 from a compare result (0 <, 1 =, 2 >, 3 unordered); C1 cleared. */
function setCmpCodes(cpu: Cpu, r: number): void {
  const st = cpu.state;
  let cc = 0;
  if (r === 0) cc = SW_C0;
  else if (r === 1) cc = SW_C3;
  else if (r === 3) cc = SW_C0 | SW_C2 | SW_C3;
  st.fpuSw = (st.fpuSw & ~SW_CC) | cc;
}

/** Stack underflow: IE + SF, C1 = 0. Returns true when masked (the caller writes the indefinite). */
function underflow(cpu: Cpu): boolean {
  setC1(cpu, false);
  raise(cpu, Exc.IE | SW_SF);
  return (cpu.state.fpuCw & Exc.IE) !== 0;
}

/** Stack overflow on a push: IE + SF, C1 = 1. Returns true when masked. */
function overflow(cpu: Cpu): boolean {
  setC1(cpu, true);
  raise(cpu, Exc.IE | SW_SF);
  return (cpu.state.fpuCw & Exc.IE) !== 0;
}

/** Pushes v (checks overflow: masked pushes the indefinite, unmasked changes nothing). */
function push(cpu: Cpu, v: F80): void {
  const t = (top(cpu) - 1) & 7;
  if (!isEmpty(cpu, t)) {
    if (!overflow(cpu)) return;
    setIndefinite(v);
  }
  setTop(cpu, t);
  putReg(cpu, t, v);
}

function pop(cpu: Cpu): void {
  const t = top(cpu);
  setTag(cpu, t, 3);
  setTop(cpu, t + 1);
}

/** Exceptions that block the destination write when unmasked. */
const BLOCKING = Exc.IE | Exc.DE | Exc.ZE;

/**
 * Ends an arithmetic operation whose result is in `v` for physical register
 * `p`: applies the masked/unmasked response, C1 (rounded up), then pops
 * `pops` times. Returns true when the result was written.
 */
function commit(cpu: Cpu, p: number, v: F80, pops: number): boolean {
  const exc = sf.exc;
  const unmasked = exc & ~sf.mask;
  if (unmasked & BLOCKING) {
    raise(cpu, exc & BLOCKING);
    return false;
  }
  putReg(cpu, p, v);
  setC1(cpu, (exc & Exc.PE) !== 0 && sf.up);
  raise(cpu, exc);
  for (let i = 0; i < pops; i++) pop(cpu);
  return true;
}

// ---- Memory operands ----

let eaLo = 0;
let eaHi = 0;

/** Linear address of the memory operand into eaLo/eaHi; records FDP/FDS (committed by `pointers`). */
function ea(cpu: Cpu, d: Insn, size: number, write: boolean): void {
  eaLo = operandAddress(cpu, d, size, write);
  eaHi = cpu.tmpHi;
}

/** Updates FIP/FCS/FOP (and FDP/FDS for memory operands): SDM vol. 1 §8.1.8. */
function pointers(cpu: Cpu, d: Insn, mem: boolean): void {
  const st = cpu.state;
  const long = cpu.curMode === 5;
  st.fpuIpLo = long ? d.ripLo : d.ripLo;
  st.fpuIpHi = long ? d.ripHi : 0;
  st.fpuCs = st.segSel[1];
  st.fpuFop = ((d.op & 7) << 8) | (d.mod << 6) | ((d.reg & 7) << 3) | (d.rm & 7);
  if (mem) {
    const seg = d.seg >= 0 ? d.seg : d.defSeg;
    // FDP is the offset in the segment: the linear address minus the segment base.
    let lo = eaLo,
      hi = eaHi;
    if (!long || seg >= 4) {
      const t = (lo >>> 0) - (st.segBaseLo[seg] >>> 0);
      lo = t | 0;
      hi = long ? (hi - st.segBaseHi[seg] - (t < 0 ? 1 : 0)) | 0 : 0;
    }
    if (d.asz === 2) lo &= 0xffff;
    st.fpuDpLo = lo;
    st.fpuDpHi = hi;
    st.fpuDs = st.segSel[seg];
  }
}

/** Reads the memory operand as an extended value into out (kind: 0 m32fp, 1 m64fp, 2 m80fp, 3 m16int, 4 m32int, 5 m64int). */
function readMem(cpu: Cpu, d: Insn, kind: number, out: F80): void {
  switch (kind) {
    case 0:
      ea(cpu, d, 4, false);
      fromF32(cpu.rdS(eaLo, eaHi, 4), out);
      return;
    case 1: {
      ea(cpu, d, 8, false);
      const lo = cpu.rdS(eaLo, eaHi, 8);
      fromF64(lo, cpu.tmpHi, out);
      return;
    }
    case 2:
      ea(cpu, d, 10, false);
      cpu.rdBytes(eaLo, eaHi, 10, buf, 0);
      decode80(buf, 0, out);
      return;
    case 3: {
      ea(cpu, d, 2, false);
      const v = (cpu.rdS(eaLo, eaHi, 2) << 16) >> 16;
      fromInt64(v, v < 0 ? -1 : 0, out);
      return;
    }
    case 4: {
      ea(cpu, d, 4, false);
      const v = cpu.rdS(eaLo, eaHi, 4) | 0;
      fromInt64(v, v < 0 ? -1 : 0, out);
      return;
    }
    default: {
      ea(cpu, d, 8, false);
      const lo = cpu.rdS(eaLo, eaHi, 8);
      fromInt64(lo, cpu.tmpHi, out);
    }
  }
}

function decode80(b: Uint8Array, o: number, out: F80): void {
  const lo = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
  const hi = b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24);
  const se = b[o + 8] | (b[o + 9] << 8);
  out.set(se >>> 15, se & 0x7fff, hi, lo);
}

function encode80(b: Uint8Array, o: number, v: F80): void {
  const lo = v.lo,
    hi = v.hi,
    se = (v.s << 15) | v.e;
  b[o] = lo & 0xff;
  b[o + 1] = (lo >>> 8) & 0xff;
  b[o + 2] = (lo >>> 16) & 0xff;
  b[o + 3] = lo >>> 24;
  b[o + 4] = hi & 0xff;
  b[o + 5] = (hi >>> 8) & 0xff;
  b[o + 6] = (hi >>> 16) & 0xff;
  b[o + 7] = hi >>> 24;
  b[o + 8] = se & 0xff;
  b[o + 9] = se >>> 8;
}

function regEncode(cpu: Cpu, p: number, b: Uint8Array, o: number): void {
  encode80(b, o, getReg(cpu, p, R2));
}

// ---- Arithmetic ----

/** Computes x OP y into R for op = ModRM.reg class (0 add, 1 mul, 4/5 sub, 6/7 div). */
function arith(opc: number, x: F80, y: F80): void {
  switch (opc) {
    case 0:
      add(x, y, false, R);
      return;
    case 1:
      mul(x, y, R);
      return;
    case 4:
    case 5:
      add(x, y, true, R);
      return;
    default:
      div(x, y, R);
  }
}

/** D8/DA/DC/DE memory forms: ST(0) op m (opc 2/3: compare, pops for 3). */
function arithMem(cpu: Cpu, d: Insn, kind: number): void {
  const opc = d.reg & 7;
  readMem(cpu, d, kind, B); // may fault: nothing changed yet
  // The conversion's DE (denormal m32/m64) is reported only when the operation raises no IE (host behaviour).
  const conv = sf.exc;
  sf.exc = conv & Exc.IE;
  const p0 = top(cpu);
  if (opc === 2 || opc === 3) {
    if (isEmpty(cpu, p0)) {
      const masked = underflow(cpu);
      setCmpCodes(cpu, 3);
      if (masked && opc === 3) pop(cpu);
      return;
    }
    getReg(cpu, p0, A);
    const r = compare(A, B, false);
    if (!(sf.exc & Exc.IE) && classify(A) < K.QNAN) sf.exc |= conv;
    finishCompare(cpu, r, opc === 3 ? 1 : 0);
    return;
  }
  if (isEmpty(cpu, p0)) {
    if (underflow(cpu)) {
      setIndefinite(R);
      putReg(cpu, p0, R);
    }
    return;
  }
  getReg(cpu, p0, A);
  if (opc === 5 || opc === 7) arith(opc, B, A);
  else arith(opc, A, B);
  if (!(sf.exc & Exc.IE) && classify(A) < K.QNAN) sf.exc |= conv;
  commit(cpu, p0, R, 0);
}

function finishCompare(cpu: Cpu, r: number, pops: number): void {
  const exc = sf.exc;
  if (exc & ~sf.mask & BLOCKING) {
    // Unmasked: the condition codes are still set, nothing is popped.
    setCmpCodes(cpu, r);
    raise(cpu, exc & BLOCKING);
    return;
  }
  setCmpCodes(cpu, r);
  raise(cpu, exc);
  for (let i = 0; i < pops; i++) pop(cpu);
}

/** Register forms of D8 (dest ST0) and DC/DE (dest ST(i); DE pops). */
function arithReg(cpu: Cpu, d: Insn, destSti: boolean, pops: number): void {
  const opc = d.reg & 7;
  const t = top(cpu);
  const p0 = t;
  const pi = (t + (d.rm & 7)) & 7;
  const dest = destSti ? pi : p0;
  if (isEmpty(cpu, p0) || isEmpty(cpu, pi)) {
    if (underflow(cpu)) {
      setIndefinite(R);
      putReg(cpu, dest, R);
      for (let i = 0; i < pops; i++) pop(cpu);
    }
    return;
  }
  getReg(cpu, p0, A);
  getReg(cpu, pi, B);
  // x = ST0, y = ST(i) for /4 (FSUB ST0,STi; FSUBR STi,ST0) and /6; reversed for /5 and /7.
  if (opc === 5 || opc === 7) arith(opc, B, A);
  else arith(opc, A, B);
  commit(cpu, dest, R, pops);
}

/** FCOM/FCOMP/FUCOM/FUCOMP/FCOMPP/FUCOMPP on ST0 and ST(i). */
function compareReg(cpu: Cpu, i: number, quiet: boolean, pops: number): void {
  const t = top(cpu);
  const pi = (t + i) & 7;
  if (isEmpty(cpu, t) || isEmpty(cpu, pi)) {
    const masked = underflow(cpu);
    setCmpCodes(cpu, 3);
    if (masked) for (let k = 0; k < pops; k++) pop(cpu);
    return;
  }
  getReg(cpu, t, A);
  getReg(cpu, pi, B);
  finishCompare(cpu, compare(A, B, quiet), pops);
}

/** FCOMI/FCOMIP/FUCOMI/FUCOMIP: ZF, PF, CF from the compare; OF, SF, AF cleared. */
function compareI(cpu: Cpu, i: number, quiet: boolean, pops: number): void {
  const t = top(cpu);
  const pi = (t + i) & 7;
  let r: number;
  if (isEmpty(cpu, t) || isEmpty(cpu, pi)) {
    if (!underflow(cpu)) {
      cpu.setArith(0x45);
      return;
    }
    r = 3;
  } else {
    getReg(cpu, t, A);
    getReg(cpu, pi, B);
    r = compare(A, B, quiet);
    const exc = sf.exc;
    setC1(cpu, false);
    if (exc & ~sf.mask & BLOCKING) {
      // Unmasked: EFLAGS are still set, nothing is popped (host behaviour).
      raise(cpu, exc & BLOCKING);
      cpu.setArith(r === 0 ? 1 : r === 1 ? 0x40 : r === 3 ? 0x45 : 0);
      return;
    }
    raise(cpu, exc);
  }
  cpu.setArith(r === 0 ? 1 : r === 1 ? 0x40 : r === 3 ? 0x45 : 0);
  for (let k = 0; k < pops; k++) pop(cpu);
}

// ---- Stores ----

/** FST/FSTP m32/m64/m80 (kind 0/1/2). */
function storeFloat(cpu: Cpu, d: Insn, kind: number, popAfter: boolean): void {
  const size = kind === 0 ? 4 : kind === 1 ? 8 : 10;
  ea(cpu, d, size, true);
  const t = top(cpu);
  let lo = 0,
    hi = 0;
  if (isEmpty(cpu, t)) {
    if (!(cpu.state.fpuCw & Exc.IE)) {
      underflow(cpu);
      return;
    }
    setIndefinite(A);
    sf.exc = 0;
  } else getReg(cpu, t, A);
  const wasEmpty = isEmpty(cpu, t);
  if (kind === 2) {
    encode80(buf, 0, A);
    cpu.wrBytes(eaLo, eaHi, 10, buf, 0);
    if (wasEmpty) underflow(cpu);
    else setC1(cpu, false);
    if (popAfter) pop(cpu);
    return;
  }
  toFloat(A, kind === 1);
  lo = fLo;
  hi = fHi;
  const exc = sf.exc;
  // Unmasked IE/DE or OE/UE: nothing stored (SDM FST "#O/#U ... destination not changed" for memory).
  if (exc & ~sf.mask & BLOCKING) {
    raise(cpu, exc & BLOCKING);
    return;
  }
  if (exc & ~sf.mask & (Exc.OE | Exc.UE)) {
    // Memory destination: nothing stored, and PE is not reported with the unmasked OE/UE.
    raise(cpu, exc & ~Exc.PE);
    return;
  }
  if (kind === 1) cpu.wrS(eaLo, eaHi, 8, lo, hi);
  else cpu.wrS(eaLo, eaHi, 4, lo, 0);
  if (wasEmpty) underflow(cpu);
  else setC1(cpu, (exc & Exc.PE) !== 0 && sf.up);
  raise(cpu, exc);
  if (popAfter) pop(cpu);
}

/** FIST/FISTP/FISTTP m16/m32/m64. */
function storeInt(cpu: Cpu, d: Insn, bytes: number, popAfter: boolean, trunc: boolean): void {
  ea(cpu, d, bytes, true);
  const t = top(cpu);
  const wasEmpty = isEmpty(cpu, t);
  if (wasEmpty) {
    if (!(cpu.state.fpuCw & Exc.IE)) {
      underflow(cpu);
      return;
    }
    setIndefinite(A);
  } else getReg(cpu, t, A);
  toInt(A, bytes, trunc);
  const exc = sf.exc;
  if (exc & ~sf.mask & BLOCKING) {
    raise(cpu, exc & BLOCKING);
    return;
  }
  cpu.wrS(eaLo, eaHi, bytes, intLo, intHi);
  if (wasEmpty) underflow(cpu);
  else {
    setC1(cpu, (exc & Exc.PE) !== 0 && sf.up);
    raise(cpu, exc);
  }
  if (popAfter) pop(cpu);
}

/** FBLD m80bcd: 18 packed BCD digits (bytes 0-8, low first) and the sign (byte 9 bit 7). */
function fbld(cpu: Cpu, d: Insn): void {
  ea(cpu, d, 10, false);
  cpu.rdBytes(eaLo, eaHi, 10, buf, 0);
  let h = 0,
    l = 0;
  for (let i = 8; i >= 0; i--) {
    const b = buf[i];
    for (let k = 0; k < 2; k++) {
      const digit = k === 0 ? b >>> 4 : b & 15;
      const v = l * 10 + digit;
      l = v % 4294967296;
      h = h * 10 + Math.floor(v / 4294967296);
    }
  }
  fromInt64(l, h, A);
  if (buf[9] & 0x80) A.s = 1;
  loadWithExc(cpu);
}

/** FBSTP m80bcd: ST0 rounded by RC to an integer, stored as 18 BCD digits; out of range / NaN: IE, BCD indefinite. */
function fbstp(cpu: Cpu, d: Insn): void {
  ea(cpu, d, 10, true);
  const t = top(cpu);
  const wasEmpty = isEmpty(cpu, t);
  if (wasEmpty && !(cpu.state.fpuCw & Exc.IE)) {
    underflow(cpu);
    return;
  }
  let invalid = wasEmpty;
  let s = 0;
  if (!wasEmpty) {
    getReg(cpu, t, A);
    s = A.s;
    const k = classify(A);
    if (k === K.INVALID || k >= K.INF) {
      invalid = true;
      sf.exc |= Exc.IE;
    } else {
      roundInt(A, R);
      sf.exc &= ~Exc.DE; // no DE for a denormal source (host behaviour)
      // |R| <= 10^18 - 1 (0x0DE0B6B3A763FFFF)?
      if (
        R.e > BIAS + 59 ||
        (R.e === BIAS + 59 && (R.hi > 0xde0b6b3a || (R.hi === 0xde0b6b3a && R.lo > 0x763fffff)))
      ) {
        invalid = true;
        sf.exc = (sf.exc & ~Exc.PE) | Exc.IE;
      }
    }
  }
  const exc = sf.exc;
  if (!wasEmpty && exc & ~sf.mask & BLOCKING) {
    raise(cpu, exc & BLOCKING);
    return;
  }
  if (invalid) {
    buf.fill(0, 0, 10);
    buf[7] = 0xc0;
    buf[8] = 0xff;
    buf[9] = 0xff;
  } else {
    // Integer value of R (< 2^60).
    let h = 0,
      l = 0;
    if (classify(R) !== K.ZERO) {
      const sh = BIAS + 63 - R.e;
      if (sh >= 32) {
        l = sh >= 64 ? 0 : R.hi >>> (sh - 32);
        h = 0;
      } else if (sh > 0) {
        l = ((R.lo >>> sh) | (R.hi << (32 - sh))) >>> 0;
        h = R.hi >>> sh;
      }
    }
    for (let i = 0; i < 9; i++) {
      let byte = 0;
      for (let k = 0; k < 2; k++) {
        const hq = Math.floor(h / 10);
        const rem = h - hq * 10;
        const v = rem * 4294967296 + l;
        const lq = Math.floor(v / 10);
        const digit = v - lq * 10;
        h = hq;
        l = lq;
        byte |= digit << (k * 4);
      }
      buf[i] = byte;
    }
    buf[9] = s ? 0x80 : 0;
  }
  cpu.wrBytes(eaLo, eaHi, 10, buf, 0);
  if (wasEmpty) underflow(cpu);
  else {
    setC1(cpu, !invalid && (exc & Exc.PE) !== 0 && sf.up);
    raise(cpu, exc);
  }
  pop(cpu);
}

// ---- Environment ----

/** Tag word as FSTENV/FSAVE store it: empty per fpuTw, otherwise classified from the contents. */
function storedTagWord(cpu: Cpu): number {
  let tw = 0;
  for (let i = 0; i < 8; i++) tw |= x87TagOf(cpu, i) << (i * 2);
  return tw;
}

function put16(o: number, v: number): void {
  buf[o] = v & 0xff;
  buf[o + 1] = (v >>> 8) & 0xff;
}
function put32(o: number, v: number): void {
  put16(o, v);
  put16(o + 2, v >>> 16);
}
function get16(o: number): number {
  return buf[o] | (buf[o + 1] << 8);
}
function get32(o: number): number {
  return (get16(o) | (get16(o + 2) << 16)) >>> 0;
}

/** True for the real-address-mode layout (real mode and virtual-8086 mode). */
function realLayout(cpu: Cpu): boolean {
  return cpu.curMode === 0 || cpu.curMode === 6;
}

/** Builds the x87 environment (14 or 28 bytes by operand size) in buf[0..]. SDM vol. 1 figures 8-9..8-12. */
function buildEnv(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const tw = storedTagWord(cpu);
  const real = realLayout(cpu);
  const ip = st.fpuIpLo >>> 0,
    dp = st.fpuDpLo >>> 0;
  if (d.osz === 2) {
    put16(0, st.fpuCw);
    put16(2, st.fpuSw);
    put16(4, tw);
    if (real) {
      put16(6, ip);
      put16(8, ((ip >>> 4) & 0xf000) | (st.fpuFop & 0x7ff));
      put16(10, dp);
      put16(12, (dp >>> 4) & 0xf000);
    } else {
      put16(6, ip);
      put16(8, st.fpuCs);
      put16(10, dp);
      put16(12, st.fpuDs);
    }
    return 14;
  }
  put32(0, 0xffff0000 | st.fpuCw);
  put32(4, 0xffff0000 | st.fpuSw);
  put32(8, 0xffff0000 | tw);
  if (real) {
    put32(12, 0xffff0000 | (ip & 0xffff));
    put32(16, ((ip >>> 16) << 12) | (st.fpuFop & 0x7ff));
    put32(20, 0xffff0000 | (dp & 0xffff));
    put32(24, (dp >>> 16) << 12);
  } else {
    put32(12, ip);
    put32(16, (st.fpuCs & 0xffff) | ((st.fpuFop & 0x7ff) << 16));
    put32(20, dp);
    put32(24, 0xffff0000 | st.fpuDs);
  }
  return 28;
}

/** Loads an environment image from buf[0..]; the tag word's empty/non-empty bits are kept, classes recomputed. */
function loadEnv(cpu: Cpu, d: Insn): void {
  const st = cpu.state;
  const real = realLayout(cpu);
  let tw: number;
  if (d.osz === 2) {
    st.fpuCw = get16(0);
    st.fpuSw = get16(2);
    tw = get16(4);
    if (real) {
      st.fpuIpLo = get16(6) | ((get16(8) & 0xf000) << 4);
      st.fpuFop = get16(8) & 0x7ff;
      st.fpuDpLo = get16(10) | ((get16(12) & 0xf000) << 4);
    } else {
      st.fpuIpLo = get16(6);
      st.fpuCs = get16(8);
      st.fpuDpLo = get16(10);
      st.fpuDs = get16(12);
    }
  } else {
    st.fpuCw = get16(0);
    st.fpuSw = get16(4);
    tw = get16(8);
    if (real) {
      st.fpuIpLo = get16(12) | ((get32(16) >>> 12) << 16) | 0;
      st.fpuFop = get32(16) & 0x7ff;
      st.fpuDpLo = get16(20) | ((get32(24) >>> 12) << 16) | 0;
    } else {
      st.fpuIpLo = get32(12) | 0;
      st.fpuCs = get16(16);
      st.fpuFop = (get32(16) >>> 16) & 0x7ff;
      st.fpuDpLo = get32(20) | 0;
      st.fpuDs = get16(24);
    }
  }
  st.fpuIpHi = 0;
  st.fpuDpHi = 0;
  st.fpuTw = tw;
  fixEs(cpu);
}

/** Recomputes FSW.ES and FSW.B from the exception flags and masks (after FLDCW/FLDENV/FRSTOR). */
function fixEs(cpu: Cpu): void {
  const st = cpu.state;
  if (st.fpuSw & ~st.fpuCw & 0x3f) st.fpuSw |= SW_ES | SW_B;
  else st.fpuSw &= ~(SW_ES | SW_B);
}

function retag(cpu: Cpu): void {
  const st = cpu.state;
  let tw = st.fpuTw;
  for (let i = 0; i < 8; i++) {
    if (((tw >>> (i * 2)) & 3) !== 3) {
      tw =
        (tw & ~(3 << (i * 2))) | (classifyTag(st.fpSe[i] & 0x7fff, st.fpSigHi[i], st.fpSigLo[i]) << (i * 2));
    }
  }
  st.fpuTw = tw;
}

/** FNINIT state (SDM vol. 1 table 8-10). */
function fninit(cpu: Cpu): void {
  const st = cpu.state;
  st.fpuCw = 0x037f;
  st.fpuSw = 0;
  st.fpuTw = 0xffff;
  st.fpuFop = 0;
  st.fpuIpLo = 0;
  st.fpuIpHi = 0;
  st.fpuCs = 0;
  st.fpuDpLo = 0;
  st.fpuDpHi = 0;
  st.fpuDs = 0;
}

// ---- Constants ----

/** FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ: exponent, truncated 64-bit significand, RN rounds up. */
const CONST_E = [BIAS, BIAS + 1, BIAS, BIAS + 1, BIAS - 2, BIAS - 1, 0];
const CONST_HI = [0x80000000, 0xd49a784b, 0xb8aa3b29, 0xc90fdaa2, 0x9a209a84, 0xb17217f7, 0];
const CONST_LO = [0, 0xcd1b8afe, 0x5c17f0bb, 0x2168c234, 0xfbcff798, 0xd1cf79ab, 0];
const CONST_RN_UP = [false, false, true, true, true, true, false];

function loadConst(cpu: Cpu, i: number): void {
  const rc = (cpu.state.fpuCw >>> 10) & 3;
  let lo = CONST_LO[i];
  const exact = i === 0 || i === 6;
  // All these constants are positive: RU rounds up, RD/RZ truncate, RN as tabulated.
  if (!exact && (rc === 2 || (rc === 0 && CONST_RN_UP[i]))) lo = lo + 1;
  A.set(0, CONST_E[i], CONST_HI[i], lo);
  setC1(cpu, false);
  push(cpu, A);
}

// ---- Dispatcher ----

/**
 * Whether an x87 encoding is defined (SDM vol. 2 appendix A.4, x87 opcode
 * maps): `op` is the low three bits of D8-DF, `mem` the memory form, `reg`
 * ModRM.reg, `rm` ModRM.rm. Reserved: memory D9 /1, DB /4, DB /6, DD /5;
 * register D9 D1-D7, D9 E2/E3/E6/E7/EF, DA except C0-DF and E9, DB E5-E7 and
 * F8-FF, DD F0-FF, DE D8/DA-DF, DF E1-E7 and F8-FF.
 */
export function x87EncodingValid(op: number, mem: boolean, reg: number, rm: number): boolean {
  if (mem)
    return !((op === 1 && reg === 1) || (op === 3 && (reg === 4 || reg === 6)) || (op === 5 && reg === 5));
  switch (op) {
    case 1:
      if (reg === 2) return rm === 0;
      if (reg === 4) return rm !== 2 && rm !== 3 && rm !== 6 && rm !== 7;
      if (reg === 5) return rm !== 7;
      return true;
    case 2:
      return reg < 4 || (reg === 5 && rm === 1);
    case 3:
      return reg !== 7 && (reg !== 4 || rm <= 4);
    case 5:
      return reg < 6;
    case 6:
      return reg !== 3 || rm === 1;
    case 7:
      return reg !== 7 && (reg !== 4 || rm === 0);
    default:
      return true;
  }
}

/**
 * Executes one x87 instruction (D8-DF) or FWAIT (9B).
 * Faults: #NM when CR0.EM or CR0.TS (FWAIT: only when CR0.MP and CR0.TS),
 * #MF for a pending unmasked exception at a waiting instruction (CR0.NE=1),
 * #UD for reserved encodings, #PF/#GP/#SS from memory operands (before any
 * state changes). Returns 1 (retired).
 */
export function execX87(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const cr0 = st.cr0;
  if (d.op === 0x9b) {
    if ((cr0 & 0xa) === 0xa) cpu.fault(7, -1);
    x87RaisePendingMf(cpu);
    return 1;
  }
  if (cr0 & 0xc) cpu.fault(7, -1);
  const op = d.op & 7;
  const reg = d.reg & 7;
  const mem = d.mod !== 3;
  // Non-waiting control forms: FNINIT, FNCLEX, FNSTENV, FNSTCW, FNSAVE, FNSTSW (and FENI/FDISI/FSETPM NOPs).
  let nowait = false;
  if (mem) nowait = (op === 1 && (reg === 6 || reg === 7)) || (op === 5 && (reg === 6 || reg === 7));
  else
    nowait =
      (op === 3 && d.reg >= 4 && (d.rm & 7) <= 4 && reg === 4) || (op === 7 && reg === 4 && (d.rm & 7) === 0);
  // A reserved encoding is a decode fault: #UD ranks above #MF (SDM vol. 3 table 6-2).
  if (!x87EncodingValid(op, mem, reg, d.rm & 7)) return undefinedOpcode(cpu, d);
  if (!nowait) x87RaisePendingMf(cpu);
  sfMode(st.fpuCw);
  if (mem) return execMem(cpu, d, op, reg);
  return execReg(cpu, d, op, reg, d.rm & 7);
}

function execMem(cpu: Cpu, d: Insn, op: number, reg: number): number {
  const st = cpu.state;
  switch (op) {
    case 0: // D8: m32fp arithmetic
      arithMem(cpu, d, 0);
      break;
    case 4: // DC: m64fp arithmetic
      arithMem(cpu, d, 1);
      break;
    case 2: // DA: m32int arithmetic
      arithMem(cpu, d, 4);
      break;
    case 6: // DE: m16int arithmetic
      arithMem(cpu, d, 3);
      break;
    case 1: // D9
      switch (reg) {
        case 0:
          readMem(cpu, d, 0, A);
          quietLoaded();
          loadWithExc(cpu);
          break;
        case 2:
        case 3:
          storeFloat(cpu, d, 0, reg === 3);
          break;
        case 4: // FLDENV
          ea(cpu, d, d.osz === 2 ? 14 : 28, false);
          cpu.rdBytes(eaLo, eaHi, d.osz === 2 ? 14 : 28, buf, 0);
          loadEnv(cpu, d);
          retag(cpu);
          return 1;
        case 5: // FLDCW
          ea(cpu, d, 2, false);
          st.fpuCw = cpu.rdS(eaLo, eaHi, 2) & 0x1f7f;
          st.fpuCw |= 0x40;
          fixEs(cpu);
          return 1;
        case 6: {
          // FNSTENV: store, then mask all exceptions.
          const n = d.osz === 2 ? 14 : 28;
          ea(cpu, d, n, true);
          buildEnv(cpu, d);
          cpu.wrBytes(eaLo, eaHi, n, buf, 0);
          st.fpuCw |= 0x3f;
          return 1;
        }
        case 7: // FNSTCW
          ea(cpu, d, 2, true);
          cpu.wrS(eaLo, eaHi, 2, st.fpuCw, 0);
          return 1;
        default:
          return undefinedOpcode(cpu, d);
      }
      break;
    case 3: // DB
      switch (reg) {
        case 0:
          readMem(cpu, d, 4, A);
          loadWithExc(cpu);
          break;
        case 1:
          storeInt(cpu, d, 4, true, true);
          break;
        case 2:
        case 3:
          storeInt(cpu, d, 4, reg === 3, false);
          break;
        case 5:
          readMem(cpu, d, 2, A);
          loadWithExc(cpu);
          break;
        case 7:
          storeFloat(cpu, d, 2, true);
          break;
        default:
          return undefinedOpcode(cpu, d);
      }
      break;
    case 5: // DD
      switch (reg) {
        case 0:
          readMem(cpu, d, 1, A);
          quietLoaded();
          loadWithExc(cpu);
          break;
        case 1:
          storeInt(cpu, d, 8, true, true);
          break;
        case 2:
        case 3:
          storeFloat(cpu, d, 1, reg === 3);
          break;
        case 4: {
          // FRSTOR
          const n = d.osz === 2 ? 14 : 28;
          ea(cpu, d, n + 80, false);
          cpu.rdBytes(eaLo, eaHi, n + 80, buf, 0);
          loadEnv(cpu, d);
          const t = top(cpu);
          for (let i = 0; i < 8; i++) {
            decode80(buf, n + i * 10, A);
            const p = (t + i) & 7;
            st.fpSe[p] = (A.s << 15) | A.e;
            st.fpSigHi[p] = A.hi | 0;
            st.fpSigLo[p] = A.lo | 0;
          }
          retag(cpu);
          return 1;
        }
        case 6: {
          // FNSAVE: environment + ST(0)..ST(7), then FNINIT.
          const n = d.osz === 2 ? 14 : 28;
          ea(cpu, d, n + 80, true);
          buildEnv(cpu, d);
          const t = top(cpu);
          for (let i = 0; i < 8; i++) regEncode(cpu, (t + i) & 7, buf, n + i * 10);
          cpu.wrBytes(eaLo, eaHi, n + 80, buf, 0);
          fninit(cpu);
          return 1;
        }
        case 7: // FNSTSW m16
          ea(cpu, d, 2, true);
          cpu.wrS(eaLo, eaHi, 2, st.fpuSw, 0);
          return 1;
        default:
          return undefinedOpcode(cpu, d);
      }
      break;
    default: // DF
      switch (reg) {
        case 0:
          readMem(cpu, d, 3, A);
          loadWithExc(cpu);
          break;
        case 1:
          storeInt(cpu, d, 2, true, true);
          break;
        case 2:
        case 3:
          storeInt(cpu, d, 2, reg === 3, false);
          break;
        case 4:
          fbld(cpu, d);
          break;
        case 5:
          readMem(cpu, d, 5, A);
          loadWithExc(cpu);
          break;
        case 6:
          fbstp(cpu, d);
          break;
        default:
          storeInt(cpu, d, 8, true, false);
      }
  }
  pointers(cpu, d, true);
  return 1;
}

/** An m32/m64 SNaN is loaded quieted (IE already raised by the conversion); FLD m80 loads it unchanged. */
function quietLoaded(): void {
  if (classify(A) === K.SNAN) A.hi = (A.hi | 0x40000000) >>> 0;
}

/** FLD m32/m64: conversion exceptions (IE for SNaN, DE for denormals) then push; an unmasked DE still loads (host behaviour). */
function loadWithExc(cpu: Cpu): void {
  const exc = sf.exc;
  if (exc & ~sf.mask & Exc.IE) {
    raise(cpu, exc);
    return;
  }
  const t = (top(cpu) - 1) & 7;
  if (!isEmpty(cpu, t)) {
    push(cpu, A); // overflow response
    return;
  }
  setC1(cpu, false);
  raise(cpu, exc);
  push(cpu, A);
}

function cond(cpu: Cpu, k: number): boolean {
  const f = cpu.getRflags();
  switch (k) {
    case 0:
      return (f & 1) !== 0; // B
    case 1:
      return (f & 0x40) !== 0; // E
    case 2:
      return (f & 0x41) !== 0; // BE
    default:
      return (f & 4) !== 0; // U
  }
}

function execReg(cpu: Cpu, d: Insn, op: number, reg: number, i: number): number {
  const st = cpu.state;
  const t = top(cpu);
  const p0 = t;
  const pi = (t + i) & 7;
  switch (op) {
    case 0: // D8
      if (reg === 2 || reg === 3) compareReg(cpu, i, false, reg === 3 ? 1 : 0);
      else arithReg(cpu, d, false, 0);
      break;
    case 4: // DC
      if (reg === 2 || reg === 3)
        compareReg(cpu, i, false, reg === 3 ? 1 : 0); // FCOM2/FCOMP3 aliases
      else arithReg(cpu, d, true, 0);
      break;
    case 6: // DE
      if (reg === 2)
        compareReg(cpu, i, false, 1); // FCOMP5 alias
      else if (reg === 3) {
        if (i !== 1) return undefinedOpcode(cpu, d);
        compareReg(cpu, 1, false, 2); // FCOMPP
      } else arithReg(cpu, d, true, 1);
      break;
    case 1: // D9
      if (reg === 0) {
        // FLD ST(i)
        if (isEmpty(cpu, pi)) {
          if (!underflow(cpu)) break;
          setIndefinite(A);
        } else getReg(cpu, pi, A);
        if (!isEmpty(cpu, (t - 1) & 7)) {
          push(cpu, A);
          break;
        }
        setC1(cpu, false);
        push(cpu, A);
      } else if (reg === 1) fxch(cpu, pi);
      else if (reg === 2) {
        if (i !== 0) return undefinedOpcode(cpu, d);
        // FNOP
      } else if (reg === 3)
        fstReg(cpu, pi, true); // FSTP1 alias
      else if (!execD9Misc(cpu, d, (reg << 3) | i)) return undefinedOpcode(cpu, d);
      break;
    case 2: // DA
      if (reg < 4) fcmov(cpu, pi, cond(cpu, reg));
      else if (reg === 5 && i === 1)
        compareReg(cpu, 1, true, 2); // FUCOMPP
      else return undefinedOpcode(cpu, d);
      break;
    case 3: // DB
      if (reg < 4) fcmov(cpu, pi, !cond(cpu, reg));
      else if (reg === 4) {
        if (i === 2)
          st.fpuSw &= 0x7f00; // FNCLEX
        else if (i === 3) fninit(cpu);
        else if (i === 0 || i === 1 || i === 4) {
          // FENI, FDISI (8087 only), FSETPM (80287 only): NOPs.
        } else return undefinedOpcode(cpu, d);
        return 1;
      } else if (reg === 5) compareI(cpu, i, true, 0);
      else if (reg === 6) compareI(cpu, i, false, 0);
      else return undefinedOpcode(cpu, d);
      break;
    case 5: // DD
      if (reg === 0) {
        setTag(cpu, pi, 3); // FFREE
      } else if (reg === 1)
        fxch(cpu, pi); // FXCH4 alias
      else if (reg === 2 || reg === 3) fstReg(cpu, pi, reg === 3);
      else if (reg === 4) compareReg(cpu, i, true, 0);
      else if (reg === 5) compareReg(cpu, i, true, 1);
      else return undefinedOpcode(cpu, d);
      break;
    default: // DF
      if (reg === 0) {
        setTag(cpu, pi, 3); // FFREEP
        pop(cpu);
      } else if (reg === 1)
        fxch(cpu, pi); // FXCH7 alias
      else if (reg === 2 || reg === 3)
        fstReg(cpu, pi, true); // FSTP8/FSTP9 aliases
      else if (reg === 4) {
        if (i !== 0) return undefinedOpcode(cpu, d);
        st.gprLo[0] = (st.gprLo[0] & ~0xffff) | (st.fpuSw & 0xffff); // FNSTSW AX
        return 1;
      } else if (reg === 5) compareI(cpu, i, true, 1);
      else if (reg === 6) compareI(cpu, i, false, 1);
      else return undefinedOpcode(cpu, d);
  }
  void p0;
  pointers(cpu, d, false);
  return 1;
}

function fxch(cpu: Cpu, pi: number): void {
  const t = top(cpu);
  const e0 = isEmpty(cpu, t),
    ei = isEmpty(cpu, pi);
  if (e0 || ei) {
    if (!underflow(cpu)) return;
    if (e0) {
      setIndefinite(R);
      putReg(cpu, t, R);
    }
    if (ei) {
      setIndefinite(R);
      putReg(cpu, pi, R);
    }
  } else setC1(cpu, false);
  getReg(cpu, t, A);
  getReg(cpu, pi, B);
  putReg(cpu, t, B);
  putReg(cpu, pi, A);
}

function fstReg(cpu: Cpu, pi: number, popAfter: boolean): void {
  const t = top(cpu);
  if (isEmpty(cpu, t)) {
    if (!underflow(cpu)) return;
    setIndefinite(A);
  } else {
    getReg(cpu, t, A);
    setC1(cpu, false);
  }
  putReg(cpu, pi, A);
  if (popAfter) pop(cpu);
}

function fcmov(cpu: Cpu, pi: number, c: boolean): void {
  const t = top(cpu);
  if (isEmpty(cpu, t) || isEmpty(cpu, pi)) {
    if (!underflow(cpu)) return;
    if (c) {
      setIndefinite(A);
      putReg(cpu, t, A);
    }
    return;
  }
  setC1(cpu, false);
  if (c) putReg(cpu, t, getReg(cpu, pi, A));
}

/** D9 E0-FF (code = reg << 3 | rm). Returns false for reserved encodings. */
function execD9Misc(cpu: Cpu, d: Insn, code: number): boolean {
  const st = cpu.state;
  const t = top(cpu);
  const p1 = (t + 1) & 7;
  void d;
  switch (code) {
    case 0x20: // FCHS
    case 0x21: // FABS
      if (isEmpty(cpu, t)) {
        if (underflow(cpu)) {
          setIndefinite(A);
          putReg(cpu, t, A);
        }
        return true;
      }
      getReg(cpu, t, A);
      A.s = code === 0x20 ? A.s ^ 1 : 0;
      putReg(cpu, t, A);
      setC1(cpu, false);
      return true;
    case 0x24: // FTST
      if (isEmpty(cpu, t)) {
        if (underflow(cpu)) setCmpCodes(cpu, 3);
        return true;
      }
      getReg(cpu, t, A);
      B.set(0, 0, 0, 0);
      finishCompare(cpu, compare(A, B, false), 0);
      return true;
    case 0x25: {
      // FXAM
      getReg(cpu, t, A);
      let cc: number;
      if (isEmpty(cpu, t)) cc = SW_C3 | SW_C0;
      else {
        const k = classify(A);
        if (k === K.INVALID) cc = 0;
        else if (k === K.QNAN || k === K.SNAN) cc = SW_C0;
        else if (k === K.NORMAL) cc = SW_C2;
        else if (k === K.INF) cc = SW_C2 | SW_C0;
        else if (k === K.ZERO) cc = SW_C3;
        else cc = SW_C3 | SW_C2;
      }
      st.fpuSw = (st.fpuSw & ~SW_CC) | cc | (A.s ? SW_C1 : 0);
      return true;
    }
    case 0x28:
    case 0x29:
    case 0x2a:
    case 0x2b:
    case 0x2c:
    case 0x2d:
    case 0x2e:
      loadConst(cpu, code - 0x28);
      return true;
    case 0x30: // F2XM1
      return unary(cpu, 0);
    case 0x31: // FYL2X
      return binaryPop(cpu, 0);
    case 0x32: // FPTAN
      return pushing(cpu, 0);
    case 0x33: // FPATAN
      return binaryPop(cpu, 1);
    case 0x34: // FXTRACT
      return pushing(cpu, 1);
    case 0x35: // FPREM1
    case 0x38: // FPREM
      if (isEmpty(cpu, t) || isEmpty(cpu, p1)) {
        if (underflow(cpu)) {
          setIndefinite(A);
          putReg(cpu, t, A);
          st.fpuSw &= ~(SW_C0 | SW_C2 | SW_C3);
        }
        return true;
      }
      getReg(cpu, t, A);
      getReg(cpu, p1, B);
      prem(A, B, code === 0x35, R);
      if (sf.exc & ~sf.mask & BLOCKING) {
        raise(cpu, sf.exc & BLOCKING);
        return true;
      }
      putReg(cpu, t, R);
      raise(cpu, sf.exc);
      {
        const k = classify(A);
        const ok = !(sf.exc & Exc.IE) || (k !== K.QNAN && k !== K.SNAN && k !== K.INVALID);
        let cc = 0;
        if (premPartial) cc = SW_C2;
        else if (ok && !(sf.exc & Exc.IE))
          cc = (premQ & 4 ? SW_C0 : 0) | (premQ & 2 ? SW_C3 : 0) | (premQ & 1 ? SW_C1 : 0);
        st.fpuSw = (st.fpuSw & ~SW_CC) | cc;
      }
      return true;
    case 0x36: // FDECSTP
      setTop(cpu, t - 1);
      setC1(cpu, false);
      return true;
    case 0x37: // FINCSTP
      setTop(cpu, t + 1);
      setC1(cpu, false);
      return true;
    case 0x39: // FYL2XP1
      return binaryPop(cpu, 2);
    case 0x3a: // FSQRT
      return unary(cpu, 1);
    case 0x3b: // FSINCOS
      return pushing(cpu, 2);
    case 0x3c: // FRNDINT
      return unary(cpu, 2);
    case 0x3d: {
      // FSCALE
      if (isEmpty(cpu, t) || isEmpty(cpu, p1)) {
        if (underflow(cpu)) {
          setIndefinite(A);
          putReg(cpu, t, A);
        }
        return true;
      }
      getReg(cpu, t, A);
      getReg(cpu, p1, B);
      scale(A, B, R);
      commit(cpu, t, R, 0);
      return true;
    }
    case 0x3e: // FSIN
      return unary(cpu, 3);
    case 0x3f: // FCOS
      return unary(cpu, 4);
    default:
      return false;
  }
}

/** One-operand ST0 functions: 0 F2XM1, 1 FSQRT, 2 FRNDINT, 3 FSIN, 4 FCOS. */
function unary(cpu: Cpu, which: number): boolean {
  const st = cpu.state;
  const t = top(cpu);
  if (isEmpty(cpu, t)) {
    if (underflow(cpu)) {
      setIndefinite(A);
      putReg(cpu, t, A);
    }
    return true;
  }
  getReg(cpu, t, A);
  if (which === 0) f2xm1(A, R);
  else if (which === 1) sqrt(A, R);
  else if (which === 2) roundInt(A, R);
  else {
    // FSIN/FCOS: |x| >= 2^63 leaves ST0 unchanged with C2 = 1.
    if (trigOutOfRange(A)) {
      st.fpuSw = (st.fpuSw & ~SW_C1) | SW_C2;
      return true;
    }
    if (which === 3) fsin(A, R);
    else fcos(A, R);
  }
  if (commit(cpu, t, R, 0) && which >= 3) st.fpuSw &= ~SW_C2;
  return true;
}

/** ST1 := f(ST1, ST0), pop: 0 FYL2X, 1 FPATAN, 2 FYL2XP1. */
function binaryPop(cpu: Cpu, which: number): boolean {
  const t = top(cpu);
  const p1 = (t + 1) & 7;
  if (isEmpty(cpu, t) || isEmpty(cpu, p1)) {
    if (underflow(cpu)) {
      setIndefinite(A);
      putReg(cpu, p1, A);
      pop(cpu);
    }
    return true;
  }
  getReg(cpu, t, A);
  getReg(cpu, p1, B);
  if (which === 0) fyl2x(A, B, R);
  else if (which === 1) fpatan(B, A, R);
  else fyl2xp1(A, B, R);
  commit(cpu, p1, R, 1);
  return true;
}

/** ST0 := f(ST0), then push a second result: 0 FPTAN (1.0), 1 FXTRACT (significand), 2 FSINCOS (cos). */
function pushing(cpu: Cpu, which: number): boolean {
  const st = cpu.state;
  const t = top(cpu);
  const pn = (t - 1) & 7;
  if (isEmpty(cpu, t)) {
    if (underflow(cpu)) {
      setIndefinite(A);
      putReg(cpu, t, A);
      if (isEmpty(cpu, pn)) push(cpu, A);
    }
    return true;
  }
  if (!isEmpty(cpu, pn)) {
    if (overflow(cpu)) {
      setIndefinite(A);
      putReg(cpu, t, A);
      push(cpu, A);
    }
    return true;
  }
  getReg(cpu, t, A);
  if (which !== 1 && trigOutOfRange(A)) {
    st.fpuSw = (st.fpuSw & ~SW_C1) | SW_C2;
    return true;
  }
  // R = value for ST(1) (replaces ST0 before the push), R2 = value pushed.
  if (which === 0) fptan(A, R, R2);
  else if (which === 1) xtract(A, R, R2);
  else fsincos(A, R, R2);
  const exc = sf.exc;
  if (exc & ~sf.mask & BLOCKING) {
    raise(cpu, exc & BLOCKING);
    return true;
  }
  putReg(cpu, t, R);
  setTop(cpu, pn);
  putReg(cpu, pn, R2);
  setC1(cpu, (exc & Exc.PE) !== 0 && sf.up);
  raise(cpu, exc);
  if (which !== 1) st.fpuSw &= ~SW_C2;
  return true;
}

/**
 * Classifies physical x87 register `physReg` (0-7) as the SDM's tag values:
 * 0 valid, 1 zero, 2 special (NaN, infinity, denormal, pseudo-denormal,
 * unnormal, or an MMX value with exponent 0x7FFF), 3 empty (per `fpuTw`).
 * The content decides the class, not the stored tag bits (MMX writes set
 * `fpuTw` to "valid" whatever the value): Intel SDM vol. 2 FXRSTOR / FSTENV
 * "tag word", vol. 1 §8.1.7.
 */
export function x87TagOf(cpu: Cpu, physReg: number): number {
  const st = cpu.state;
  const i = physReg & 7;
  if (((st.fpuTw >>> (i * 2)) & 3) === 3) return 3;
  return classifyTag(st.fpSe[i] & 0x7fff, st.fpSigHi[i], st.fpSigLo[i]);
}

/** Tag class of an 80-bit value from its biased exponent and significand halves (0 valid, 1 zero, 2 special). */
export function classifyTag(exp: number, sigHi: number, sigLo: number): number {
  if (exp === 0x7fff) return 2;
  if (exp === 0) return (sigHi | sigLo) === 0 ? 1 : 2;
  return sigHi < 0 ? 0 : 2; // integer bit clear: unnormal
}

/** True when FSW.ES is set: an unmasked x87 exception is pending (delivered as #MF by the next waiting x87/MMX instruction when CR0.NE=1). */
export function x87PendingUnmasked(cpu: Cpu): boolean {
  return (cpu.state.fpuSw & 0x80) !== 0;
}

/**
 * #MF (vector 16) when an unmasked x87 exception is pending (FSW.ES) and CR0.NE is set: the check of
 * every waiting x87 instruction, MMX instruction and SSE form with an MMX operand (SDM vol. 1 §8.6,
 * vol. 3 §9.6 / §12.5). With CR0.NE clear no #MF is raised (FERR# is not modelled).
 */
export function x87RaisePendingMf(cpu: Cpu): void {
  const st = cpu.state;
  if (st.fpuSw & 0x80 && st.cr0 & 0x20) cpu.fault(16, -1);
}

/**
 * Full 16-bit tag word (2 bits per physical register) from FXSAVE's abridged
 * tag byte (bit i set = Ri not empty), classifying the register contents
 * already in `cpu.state` (so load the registers first). Intel SDM vol. 2
 * FXRSTOR, vol. 1 §10.5.1 table 10-2. Does not modify state.
 */
export function x87FullTagFromAbridged(cpu: Cpu, abridged: number): number {
  const st = cpu.state;
  let tw = 0;
  for (let i = 0; i < 8; i++) {
    const t = abridged & (1 << i) ? classifyTag(st.fpSe[i] & 0x7fff, st.fpSigHi[i], st.fpSigLo[i]) : 3;
    tw |= t << (i * 2);
  }
  return tw;
}

/** FXSAVE's abridged tag byte from `fpuTw`: bit i set when physical register i is not empty (Intel SDM vol. 2 FXSAVE). */
export function x87AbridgedTag(cpu: Cpu): number {
  const tw = cpu.state.fpuTw;
  let a = 0;
  for (let i = 0; i < 8; i++) if (((tw >>> (i * 2)) & 3) !== 3) a |= 1 << i;
  return a;
}
