/**
 * Data transfer (Intel SDM vol. 1 §7.3.1; vol. 2 MOV, MOV Sreg, MOVZX,
 * MOVSX, MOVSXD, CMOVcc, XCHG, BSWAP, XLAT, LEA, CBW/CWDE/CDQE,
 * CWD/CDQ/CQO, LDS/LES/LSS/LFS/LGS). Segment register loads go through
 * `SystemOps.loadSegment` (descriptor checks of a segment load).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { systemOps } from '../system';
import { applySeg, ea, getR, linOf, offsetOf, rdMem, rdRM, setR, ud, wrMem, wrRM } from './operands';
import { defineOp, OpPfx, range } from './table';

/** XCHG r/m, r (86/87; locked whether or not LOCK is given). */
function xchgRm(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const a = rdRM(cpu, d, sz, true);
  const ah = cpu.tmpHi;
  const b = getR(cpu, d, sz, d.reg);
  const bh = cpu.tmpHi;
  wrRM(cpu, d, sz, b, bh);
  setR(cpu, d, sz, d.reg, a, ah);
  return 1;
}

/** MOV r/m, r (88/89). */
function movRmR(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const v = getR(cpu, d, sz, d.reg);
  if (d.mod !== 3) linOf(cpu, d, sz, true);
  wrRM(cpu, d, sz, v, cpu.tmpHi);
  return 1;
}

/** MOV r, r/m (8A/8B). */
function movRRm(cpu: Cpu, d: Insn): number {
  const sz = d.op & 1 ? d.osz : 1;
  const v = rdRM(cpu, d, sz, false);
  setR(cpu, d, sz, d.reg, v, cpu.tmpHi);
  return 1;
}

/** MOV r/m, Sreg (8C): a register destination takes the operand size, memory 16 bits. */
function movFromSreg(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const sr = d.reg & 7;
  if (sr > 5) return ud(cpu, d);
  const v = cpu.state.segSel[sr];
  if (d.mod === 3) setR(cpu, d, s === 8 ? 8 : s, d.rm, v, 0);
  else {
    linOf(cpu, d, 2, true);
    wrMem(cpu, 2, v, 0);
  }
  return 1;
}

/** LEA r, m (8D): the offset, no segment; register form #UD. */
function lea(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (d.mod === 3) return ud(cpu, d);
  offsetOf(cpu, d);
  setR(cpu, d, s, d.reg, s === 2 ? ea.lo & 0xffff : ea.lo, ea.hi);
  return 1;
}

/** MOV Sreg, r/m (8E): CS or a reserved Sreg is #UD. */
function movToSreg(cpu: Cpu, d: Insn): number {
  const sr = d.reg & 7;
  if (sr === 1 || sr > 5) return ud(cpu, d);
  const v = rdRM(cpu, d, 2, false);
  systemOps.loadSegment(cpu, sr, v & 0xffff);
  return 1;
}

/** NOP (90), or XCHG r8, rAX with REX.B (also PAUSE with F3). */
function nopXchg(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (d.rex & 1) {
    const a = getR(cpu, d, s, 8);
    const ah = cpu.tmpHi;
    const b = getR(cpu, d, s, 0);
    setR(cpu, d, s, 0, a, ah);
    setR(cpu, d, s, 8, b, cpu.tmpHi);
  } else if (cpu.curMode === 5 && s === 4) {
    // 32-bit NOP in 64-bit mode does not clear the upper half.
  }
  return 1;
}

/** XCHG r, rAX (91-97). */
function xchgAcc(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const r = (d.op & 7) | ((d.rex & 1) << 3);
  const a = getR(cpu, d, s, r);
  const ah = cpu.tmpHi;
  const b = getR(cpu, d, s, 0);
  setR(cpu, d, s, r, b, cpu.tmpHi);
  setR(cpu, d, s, 0, a, ah);
  return 1;
}

/** CBW/CWDE/CDQE (98). */
function cbw(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  if (s === 2) setR(cpu, d, 2, 0, (R[0] << 24) >> 24, 0);
  else if (s === 4) setR(cpu, d, 4, 0, (R[0] << 16) >> 16, 0);
  else setR(cpu, d, 8, 0, R[0], R[0] >> 31);
  return 1;
}

/** CWD/CDQ/CQO (99). */
function cwd(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  if (s === 2) setR(cpu, d, 2, 2, (R[0] << 16) >> 31, 0);
  else if (s === 4) setR(cpu, d, 4, 2, R[0] >> 31, 0);
  else setR(cpu, d, 8, 2, H[0] >> 31, H[0] >> 31);
  return 1;
}

/** MOV AL/rAX, moffs (A0/A1) and MOV moffs, AL/rAX (A2/A3). */
function movMoffs(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const sz = op & 1 ? d.osz : 1;
  ea.lo = d.imm;
  ea.hi = d.asz === 8 ? d.immHi : 0;
  applySeg(cpu, d.seg >= 0 ? d.seg : 3, sz, op >= 0xa2);
  if (op < 0xa2) setR(cpu, d, sz, 0, rdMem(cpu, sz), cpu.tmpHi);
  else wrMem(cpu, sz, getR(cpu, d, sz, 0), cpu.tmpHi);
  return 1;
}

/** MOV r8, imm8 (B0-B7) / MOV r, imm16/32/64 (B8-BF). */
function movImmReg(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const sz = op < 0xb8 ? 1 : d.osz;
  const r = (op & 7) | ((d.rex & 1) << 3);
  setR(cpu, d, sz, r, sz === 1 ? d.imm & 0xff : sz === 2 ? d.imm & 0xffff : d.imm, sz === 8 ? d.immHi : 0);
  return 1;
}

/** MOV r/m, imm (C6/C7 /0). */
function movImmRm(cpu: Cpu, d: Insn): number {
  if ((d.reg & 7) !== 0) return ud(cpu, d);
  const sz = d.op & 1 ? d.osz : 1;
  if (d.mod !== 3) linOf(cpu, d, sz, true);
  wrRM(cpu, d, sz, sz === 1 ? d.imm & 0xff : sz === 2 ? d.imm & 0xffff : d.imm, d.imm >> 31);
  return 1;
}

/** MOVSXD r, r/m32 (63 in 64-bit mode); ARPL outside it is #UD here. */
function movsxd(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  if (cpu.curMode === 5) {
    const v = rdRM(cpu, d, 4, false);
    if (s === 8) setR(cpu, d, 8, d.reg, v, v >> 31);
    else setR(cpu, d, s, d.reg, v, 0);
    return 1;
  }
  return ud(cpu, d); // ARPL: not for protected-mode guests here
}

/** LES / LDS (C4/C5) outside 64-bit mode with a memory operand; otherwise a VEX prefix: #UD. */
function lesLds(cpu: Cpu, d: Insn): number {
  // 64-bit mode, or mod = 11 outside it: a VEX prefix (AVX is not offered) -> #UD.
  if (cpu.curMode === 5 || d.mod === 3) return ud(cpu, d);
  return farPointerLoad(cpu, d, d.op === 0xc4 ? 0 : 3); // LES / LDS
}

/** LSS / LFS / LGS (0F B2/B4/B5); register forms #UD. */
function lssLfsLgs(cpu: Cpu, d: Insn): number {
  const op = d.op;
  if (d.mod === 3) return ud(cpu, d);
  return farPointerLoad(cpu, d, op === 0x1b2 ? 2 : op === 0x1b4 ? 4 : 5); // LSS / LFS / LGS
}

/** MOVZX (0F B6/B7) / MOVSX (0F BE/BF). */
function movzxsx(cpu: Cpu, d: Insn): number {
  const op = d.op;
  const s = d.osz;
  const ss = op & 1 ? 2 : 1;
  let v = rdRM(cpu, d, ss, false);
  if (op >= 0x1be) v = ss === 1 ? (v << 24) >> 24 : (v << 16) >> 16;
  setR(cpu, d, s, d.reg, s === 2 ? v & 0xffff : v, v >> 31);
  return 1;
}

/** CMOVcc r, r/m (0F 40-4F): the source is read (and may fault) either way; a 32-bit destination is zero-extended. */
function cmovcc(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const H = cpu.state.gprHi;
  const v = rdRM(cpu, d, s, false);
  const vh = cpu.tmpHi;
  if (cpu.cond(d.op & 15)) setR(cpu, d, s, d.reg, v, vh);
  else if (s === 4) H[d.reg] = 0;
  return 1;
}

/** BSWAP r (0F C8-CF). */
function bswap(cpu: Cpu, d: Insn): number {
  const s = d.osz;
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  const r = (d.op & 7) | ((d.rex & 1) << 3);
  const sw = (v: number) => ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
  if (s === 8) {
    const lo = R[r],
      hi = H[r];
    R[r] = sw(hi);
    H[r] = sw(lo);
  } else if (s === 4) {
    R[r] = sw(R[r]);
    H[r] = 0;
  } else R[r] &= ~0xffff; // BSWAP r16 is undefined; zero as hardware does
  return 1;
}

/** XLAT (D7): AL = [seg:rBX + AL]. */
function xlat(cpu: Cpu, d: Insn): number {
  const R = cpu.state.gprLo;
  const H = cpu.state.gprHi;
  const al = R[0] & 0xff;
  if (d.asz === 8) {
    const t = (R[3] >>> 0) + al;
    ea.lo = t | 0;
    ea.hi = (H[3] + (t > 0xffffffff ? 1 : 0)) | 0;
  } else {
    ea.lo = d.asz === 4 ? (R[3] + al) | 0 : (R[3] + al) & 0xffff;
    ea.hi = 0;
  }
  applySeg(cpu, d.seg >= 0 ? d.seg : 3, 1, false);
  R[0] = (R[0] & ~0xff) | rdMem(cpu, 1);
  return 1;
}

/** Registers this file's opcodes (see table.ts). */
export function registerMove(): void {
  defineOp([0x86, 0x87], xchgRm, { lock: 0xff });
  defineOp([0x88, 0x89], movRmR);
  defineOp([0x8a, 0x8b], movRRm);
  defineOp(0x8c, movFromSreg);
  defineOp(0x8d, lea);
  defineOp(0x8e, movToSreg);
  defineOp(0x90, nopXchg, { pfx: OpPfx.F3 });
  defineOp(range(0x91, 0x97), xchgAcc);
  defineOp(0x98, cbw);
  defineOp(0x99, cwd);
  defineOp(range(0xa0, 0xa3), movMoffs);
  defineOp(range(0xb0, 0xbf), movImmReg);
  defineOp([0xc6, 0xc7], movImmRm);
  defineOp(0x63, movsxd);
  defineOp([0xc4, 0xc5], lesLds);
  defineOp([0x1b2, 0x1b4, 0x1b5], lssLfsLgs);
  defineOp([0x1b6, 0x1b7, 0x1be, 0x1bf], movzxsx);
  defineOp(range(0x140, 0x14f), cmovcc);
  defineOp(range(0x1c8, 0x1cf), bswap);
  defineOp(0xd7, xlat);
}

/**
 * LDS/LES/LSS/LFS/LGS (SDM vol. 2 "LDS/LES/LFS/LGS/LSS - Load Far Pointer"):
 * reads the m16:16 / m16:32 / m16:64 (REX.W, Intel) far pointer, offset
 * first and the selector after it, loads segment `seg` with the full checks
 * of a segment load (`SystemOps.loadSegment`), then writes the offset to the
 * destination register. A fault on the read or the load leaves both
 * unchanged. Register forms are #UD (the caller checks).
 */
function farPointerLoad(cpu: Cpu, d: Insn, seg: number): number {
  const s = d.osz;
  linOf(cpu, d, s + 2, false);
  const lo = ea.lo,
    hi = ea.hi;
  const off = rdMem(cpu, s);
  const offHi = cpu.tmpHi;
  const selLo = (lo + s) | 0;
  let selHi = hi;
  if (cpu.curMode === 5 && (lo >>> 0) + s > 0xffffffff) selHi = (hi + 1) | 0;
  else if (cpu.curMode !== 5) selHi = 0;
  const sel = cpu.rdS(selLo, selHi, 2) & 0xffff;
  systemOps.loadSegment(cpu, seg, sel);
  setR(cpu, d, s, d.reg, s === 2 ? off & 0xffff : off, s === 8 ? offHi : 0);
  return 1;
}
