/**
 * Flag helpers for the integer handlers: the lazy arithmetic flags
 * (`cpu.lfOp`/`lfA`/`lfB`/`lfR` and high halves; kinds in ../flags.ts) and
 * eager partial updates (Intel SDM vol. 1 §3.4.3.1 status flags).
 */
import type { Cpu } from '../cpu';
import { PARITY } from '../flags';
import { mask, sign, SZI } from './operands';

/** Records a lazy flag producer: kind (LF_*), size `s`, operands and result halves (SDM flags derived on demand by `cpu.arith`). */
export function setLazy(
  cpu: Cpu,
  kind: number,
  s: number,
  a: number,
  b: number,
  r: number,
  ah: number,
  bh: number,
  rh: number,
): void {
  cpu.lfOp = kind | (SZI[s] << 4);
  cpu.lfA = a;
  cpu.lfB = b;
  cpu.lfR = r;
  cpu.lfAH = ah;
  cpu.lfBH = bh;
  cpu.lfRH = rh;
}

/** ZF SF PF of a result of size s. */
export function szp(s: number, r: number, rh: number): number {
  let f = PARITY[r & 0xff];
  if (s === 8) {
    if ((r | rh) === 0) f |= 0x40;
    if (rh < 0) f |= 0x80;
  } else {
    if ((r & mask(s)) === 0) f |= 0x40;
    if (r & sign(s)) f |= 0x80;
  }
  return f;
}

/** Sets only the listed arithmetic flag bits (mask), keeping the others. */
export function setSome(cpu: Cpu, m: number, v: number): void {
  const f = cpu.arith();
  cpu.setArith((f & ~m) | (v & m));
}
