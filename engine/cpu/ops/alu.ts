/**
 * Integer arithmetic and logic (Intel SDM vol. 1 §7.3.2 binary and §7.3.3
 * decimal arithmetic, §7.3.4 logical; vol. 2 ADD...XOR, CMP, TEST, INC, DEC,
 * XADD, CMPXCHG, CMPXCHG8B/16B, DAA/DAS/AAA/AAS/AAM/AAD). `alu` and
 * `incdec` are shared with the other classes (NEG, CMPS/SCAS, INC/DEC r/m).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SUB } from '../flags';
import { execXsave } from '../fpu/xsave';
import { ea, getR, linOf, mask, rdMem, rdRM, res, setR, sign, ud, wrMem, wrRM } from './operands';
import { setLazy, setSome, szp } from './arith-flags';
import { defineOp, range } from './table';

/** ADD OR ADC SBB AND SUB XOR CMP in forms 00-05 (r/m,r; r,r/m; AL/eAX,imm), op = opcode >> 3. */
function aluForms(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const aop = op >> 3;
  const form = op & 7;
  const sz = form & 1 ? s : 1;
  let a: number, ah: number, b: number, bh: number;
  if (form < 2) {
    a = rdRM(cpu, d, sz, aop !== 7);
    ah = cpu.tmpHi;
    b = getR(cpu, d, sz, d.reg);
    bh = cpu.tmpHi;
    const r = alu(cpu, aop, sz, a, ah, b, bh);
    if (aop !== 7) wrRM(cpu, d, sz, r, res.hi);
  } else if (form < 4) {
    a = getR(cpu, d, sz, d.reg);
    ah = cpu.tmpHi;
    b = rdRM(cpu, d, sz, false);
    bh = cpu.tmpHi;
    const r = alu(cpu, aop, sz, a, ah, b, bh);
    if (aop !== 7) setR(cpu, d, sz, d.reg, r, res.hi);
  } else {
    a = getR(cpu, d, sz, 0);
    ah = cpu.tmpHi;
    b = sz === 1 ? d.imm & 0xff : sz === 2 ? d.imm & 0xffff : d.imm;
    bh = d.imm >> 31;
    const r = alu(cpu, aop, sz, a, ah, b, bh);
    if (aop !== 7) setR(cpu, d, sz, 0, r, res.hi);
  }
  return 1;
}

/** Group 1 (80-83): ALU op /reg on r/m with an immediate; 82 is #UD in 64-bit mode. */
function group1(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  if (op === 0x82 && cpu.curMode === 5) return ud(cpu, d);
  const sz = op === 0x80 || op === 0x82 ? 1 : s;
  const aop = d.reg & 7;
  const a = rdRM(cpu, d, sz, aop !== 7);
  const ah = cpu.tmpHi;
  const b = sz === 1 ? d.imm & 0xff : sz === 2 ? d.imm & 0xffff : d.imm;
  const r = alu(cpu, aop, sz, a, ah, b, d.imm >> 31);
  if (aop !== 7) wrRM(cpu, d, sz, r, res.hi);
  return 1;
}

/** TEST r/m, r (84/85). */
function testRm(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const a = rdRM(cpu, d, sz, false);
  const ah = cpu.tmpHi;
  const b = getR(cpu, d, sz, d.reg);
  alu(cpu, 4, sz, a, ah, b, cpu.tmpHi);
  return 1;
}

/** TEST AL/eAX, imm (A8/A9). */
function testAcc(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const a = getR(cpu, d, sz, 0);
  alu(cpu, 4, sz, a, cpu.tmpHi, sz === 1 ? d.imm & 0xff : sz === 2 ? d.imm & 0xffff : d.imm, d.imm >> 31);
  return 1;
}

/** INC/DEC r (40-4F; not in 64-bit mode, where these are REX and never reach here). */
function incDecReg(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const r = op & 7;
  const a = getR(cpu, d, s, r);
  const v = incdec(cpu, s, a, cpu.tmpHi, op >= 0x48);
  setR(cpu, d, s, r, v, res.hi);
  return 1;
}

/** CMPXCHG r/m, r (0F B0/B1). */
function cmpxchg(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const dst = rdRM(cpu, d, sz, true);
  const dh = cpu.tmpHi;
  const acc = getR(cpu, d, sz, 0);
  const acch = cpu.tmpHi;
  alu(cpu, 7, sz, acc, acch, dst, dh);
  const eq = (cpu.arith() & 0x40) !== 0;
  if (eq) wrRM(cpu, d, sz, getR(cpu, d, sz, d.reg), cpu.tmpHi);
  else {
    // The destination is written back with its own value (locked cycle), then the accumulator loaded.
    if (d.mod !== 3) wrMem(cpu, sz, dst, dh);
    setR(cpu, d, sz, 0, dst, dh);
  }
  return 1;
}

/** XADD r/m, r (0F C0/C1). */
function xadd(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const dst = rdRM(cpu, d, sz, true);
  const dh = cpu.tmpHi;
  const src = getR(cpu, d, sz, d.reg);
  const sh = cpu.tmpHi;
  const r = alu(cpu, 0, sz, dst, dh, src, sh);
  const rh = res.hi;
  wrRM(cpu, d, sz, r, rh);
  if (!(d.mod === 3 && d.rm === d.reg)) setR(cpu, d, sz, d.reg, dst, dh);
  return 1;
}

/** Group 9 (0F C7): CMPXCHG8B/CMPXCHG16B (/1); XRSTORS/XSAVEC/XSAVES (/3-/5) go to fpu/xsave.ts. */
function group9(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const R = st.gprLo;
  const H = st.gprHi;
  const s = d.osz;
  const g = d.reg & 7;
  if (g === 1 && d.mod !== 3) {
    // CMPXCHG8B / CMPXCHG16B
    if (s === 8) {
      linOf(cpu, d, 16, true);
      if (ea.lo & 15) cpu.fault(13, 0);
      const m0 = rdMem(cpu, 8),
        m0h = cpu.tmpHi;
      const n = (ea.lo >>> 0) + 8;
      const a2l = n | 0,
        a2h = (ea.hi + (n > 0xffffffff ? 1 : 0)) | 0;
      const m1 = cpu.rdS(a2l, a2h, 8),
        m1h = cpu.tmpHi;
      if (m0 === R[0] && m0h === H[0] && m1 === R[2] && m1h === H[2]) {
        cpu.wrS(a2l, a2h, 8, R[1], H[1]);
        wrMem(cpu, 8, R[3], H[3]);
        setSome(cpu, 0x40, 0x40);
      } else {
        cpu.wrS(a2l, a2h, 8, m1, m1h);
        wrMem(cpu, 8, m0, m0h);
        R[0] = m0;
        H[0] = m0h;
        R[2] = m1;
        H[2] = m1h;
        setSome(cpu, 0x40, 0);
      }
    } else {
      linOf(cpu, d, 8, true);
      const lo = rdMem(cpu, 8),
        hi = cpu.tmpHi;
      if (lo === R[0] && hi === R[2]) {
        wrMem(cpu, 8, R[3], R[1]);
        setSome(cpu, 0x40, 0x40);
      } else {
        wrMem(cpu, 8, lo, hi);
        setR(cpu, d, 4, 0, lo, 0);
        setR(cpu, d, 4, 2, hi, 0);
        setSome(cpu, 0x40, 0);
      }
    }
    return 1;
  }
  // XRSTORS (3), XSAVEC (4), XSAVES (5): memory forms without a prefix.
  if (g >= 3 && g <= 5 && d.mod !== 3 && !d.rep && !d.p66) return execXsave(cpu, d);
  return ud(cpu, d); // RDRAND/RDSEED/VMPTRLD...: not supported
}

/** DAA/DAS/AAA/AAS (27/2F/37/3F): #UD in 64-bit mode. */
function decimalAdjust(cpu: Cpu, d: Insn): number {
  if (cpu.curMode === 5) return ud(cpu, d);
  bcdAdjust(cpu, d.op);
  return 1;
}

/** AAM/AAD imm8 (D4/D5): #UD in 64-bit mode. */
function asciiAdjustMulDiv(cpu: Cpu, d: Insn): number {
  if (cpu.curMode === 5) return ud(cpu, d);
  aamAad(cpu, d);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerAlu(): void {
  for (const op of range(0x00, 0x3f)) {
    if ((op & 7) >= 6) continue;
    // LOCK: the r/m-destination forms (00/01, 08/09, ...) except CMP (38/39).
    defineOp(op, aluForms, { lock: (op & 7) < 2 && op >> 3 !== 7 ? 0xff : 0 });
  }
  defineOp(range(0x80, 0x83), group1, { lock: 0x7f });
  defineOp([0x84, 0x85], testRm);
  defineOp([0xa8, 0xa9], testAcc);
  defineOp(range(0x40, 0x4f), incDecReg);
  defineOp([0x1b0, 0x1b1], cmpxchg, { lock: 0xff });
  defineOp([0x1c0, 0x1c1], xadd, { lock: 0xff });
  defineOp(0x1c7, group9, { lock: 0x02 });
  defineOp([0x27, 0x2f, 0x37, 0x3f], decimalAdjust);
  defineOp([0xd4, 0xd5], asciiAdjustMulDiv);
}

/** ALU op 0-7 (ADD OR ADC SBB AND SUB XOR CMP) at size s; returns result lo (hi in res.hi); sets flags. */
export function alu(cpu: Cpu, op: number, s: number, a: number, ah: number, b: number, bh: number): number {
  const m = mask(s);
  let r = 0,
    rh = 0;
  switch (op) {
    case 0:
      if (s === 8) {
        const t = (a >>> 0) + (b >>> 0);
        r = t | 0;
        rh = (ah + bh + (t > 0xffffffff ? 1 : 0)) | 0;
      } else r = s === 4 ? (a + b) | 0 : (a + b) & m;
      setLazy(cpu, LF_ADD, s, a, b, r, ah, bh, rh);
      break;
    case 5:
    case 7:
      if (s === 8) {
        const t = (a >>> 0) - (b >>> 0);
        r = t | 0;
        rh = (ah - bh - (t < 0 ? 1 : 0)) | 0;
      } else r = s === 4 ? (a - b) | 0 : (a - b) & m;
      setLazy(cpu, LF_SUB, s, a, b, r, ah, bh, rh);
      break;
    case 1:
      r = a | b;
      rh = ah | bh;
      setLazy(cpu, LF_LOGIC, s, a, b, r, ah, bh, rh);
      break;
    case 4:
      r = a & b;
      rh = ah & bh;
      setLazy(cpu, LF_LOGIC, s, a, b, r, ah, bh, rh);
      break;
    case 6:
      r = a ^ b;
      rh = ah ^ bh;
      setLazy(cpu, LF_LOGIC, s, a, b, r, ah, bh, rh);
      break;
    case 2:
    case 3: {
      const c = cpu.getCF();
      let cf = 0,
        of = 0;
      const sub = op === 3;
      if (s === 8) {
        if (!sub) {
          const t = (a >>> 0) + (b >>> 0) + c;
          r = t | 0;
          const t2 = (ah >>> 0) + (bh >>> 0) + (t > 0xffffffff ? 1 : 0);
          rh = t2 | 0;
          cf = t2 > 0xffffffff ? 1 : 0;
          of = (ah ^ rh) & (bh ^ rh) & 0x80000000 ? 1 : 0;
        } else {
          const t = (a >>> 0) - (b >>> 0) - c;
          r = t | 0;
          const t2 = (ah >>> 0) - (bh >>> 0) - (t < 0 ? 1 : 0);
          rh = t2 | 0;
          cf = t2 < 0 ? 1 : 0;
          of = (ah ^ bh) & (ah ^ rh) & 0x80000000 ? 1 : 0;
        }
      } else {
        const ua = s === 4 ? a >>> 0 : a & m,
          ub = s === 4 ? b >>> 0 : b & m;
        const mm = s === 4 ? 0xffffffff : m;
        if (!sub) {
          const t = ua + ub + c;
          r = s === 4 ? t | 0 : t & m;
          cf = t > mm ? 1 : 0;
          of = (a ^ r) & (b ^ r) & sign(s) ? 1 : 0;
        } else {
          const t = ua - ub - c;
          r = s === 4 ? t | 0 : t & m;
          cf = t < 0 ? 1 : 0;
          of = (a ^ b) & (a ^ r) & sign(s) ? 1 : 0;
        }
      }
      cpu.setArith(cf | (of << 11) | ((a ^ b ^ r) & 0x10) | szp(s, r, rh));
      break;
    }
  }
  res.hi = rh;
  return r;
}

export function incdec(cpu: Cpu, s: number, a: number, ah: number, dec: boolean): number {
  const cf = cpu.getCF();
  let r: number,
    rh = 0;
  if (s === 8) {
    if (dec) {
      r = (a - 1) | 0;
      rh = a === 0 ? (ah - 1) | 0 : ah;
    } else {
      r = (a + 1) | 0;
      rh = r === 0 ? (ah + 1) | 0 : ah;
    }
  } else if (s === 4) r = dec ? (a - 1) | 0 : (a + 1) | 0;
  else r = (dec ? a - 1 : a + 1) & mask(s);
  setLazy(cpu, dec ? LF_DEC : LF_INC, s, a, 1, r, ah, 0, rh);
  cpu.lfCf = cf;
  res.hi = rh;
  return r;
}

export function bcdAdjust(cpu: Cpu, op: number): void {
  const R = cpu.state.gprLo;
  const f = cpu.arith();
  let al = R[0] & 0xff;
  let cf = f & 1;
  const af = (f & 0x10) !== 0;
  const oldAl = al;
  let newAf = 0;
  switch (op) {
    case 0x27: // DAA
      if ((al & 0xf) > 9 || af) {
        al = (al + 6) & 0xff;
        newAf = 0x10;
      }
      if (oldAl > 0x99 || cf) {
        al = (al + 0x60) & 0xff;
        cf = 1;
      } else cf = 0;
      break;
    case 0x2f: {
      // DAS (SDM: CF keeps the borrow of the low step unless the high step sets it)
      let c2 = 0;
      if ((al & 0xf) > 9 || af) {
        c2 = cf | (al < 6 ? 1 : 0);
        al = (al - 6) & 0xff;
        newAf = 0x10;
      }
      if (oldAl > 0x99 || cf) {
        al = (al - 0x60) & 0xff;
        c2 = 1;
      }
      cf = c2;
      break;
    }
    case 0x37: // AAA
    case 0x3f: {
      // AAS
      if ((al & 0xf) > 9 || af) {
        const ax = R[0] & 0xffff;
        const nax = op === 0x37 ? ax + 0x106 : ax - 0x106;
        R[0] = (R[0] & ~0xffff) | (nax & 0xffff);
        cf = 1;
        newAf = 0x10;
      } else cf = 0;
      R[0] &= ~0xf0;
      cpu.setArith(cf | newAf | szp(1, R[0] & 0xff, 0));
      return;
    }
  }
  R[0] = (R[0] & ~0xff) | al;
  cpu.setArith(cf | newAf | szp(1, al, 0));
}

export function aamAad(cpu: Cpu, d: Insn): void {
  const R = cpu.state.gprLo;
  const base = d.imm & 0xff;
  if (d.op === 0xd4) {
    if (base === 0) cpu.fault(0, -1);
    const al = R[0] & 0xff;
    const ah = Math.floor(al / base);
    const nal = al % base;
    R[0] = (R[0] & ~0xffff) | (ah << 8) | nal;
    cpu.setArith(szp(1, nal, 0));
  } else {
    const al = ((R[0] & 0xff) + ((R[0] >> 8) & 0xff) * base) & 0xff;
    R[0] = (R[0] & ~0xffff) | al;
    cpu.setArith(szp(1, al, 0));
  }
}
