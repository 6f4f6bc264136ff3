/**
 * Operand access shared by the MMX/SSE units: XMM/MMX registers and 32-,
 * 64- and 128-bit memory operands (Intel SDM vol. 1 §10.4, §9.2). All
 * helpers copy through caller-given Int32Array lanes (no allocation), and a
 * memory operand is fully translated before anything changes (restartable).
 *
 * Lane convention: lane k of a 128-bit value holds bits 32k..32k+31
 * (little-endian, as `CpuState.xmm`). MMX register i is
 * `CpuState.fpSigLo[i]` (bits 0-31) and `fpSigHi[i]` (bits 32-63).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { operandAddress } from '../ops/operands';

const BUF = new Uint8Array(16);
const BUF32 = new Int32Array(BUF.buffer);

/** XMM register number of ModRM.reg (REX.R included). */
export function xmmReg(d: Insn): number {
  return d.reg;
}

/** XMM register number of ModRM.rm for register forms (REX.B included). */
export function xmmRm(d: Insn): number {
  return d.rm;
}

/**
 * Reads the 128-bit r/m operand (XMMrm, or 16 bytes of memory) into
 * `out[at..at+4)`. `aligned`: the SDM's aligned forms (MOVAPS, MOVDQA, most
 * packed arithmetic with a legacy-SSE memory operand) raise #GP(0) when the
 * address is not 16-byte aligned.
 */
export function readRm128(cpu: Cpu, d: Insn, aligned: boolean, out: Int32Array, at: number): void {
  if (d.mod === 3) {
    const x = cpu.state.xmm;
    const r = d.rm << 2;
    out[at] = x[r];
    out[at + 1] = x[r + 1];
    out[at + 2] = x[r + 2];
    out[at + 3] = x[r + 3];
    return;
  }
  const lo = operandAddress(cpu, d, 16, false);
  const hi = cpu.tmpHi;
  if (aligned && lo & 15) cpu.fault(13, 0);
  cpu.rdBytes(lo, hi, 16, BUF, 0);
  out[at] = BUF32[0];
  out[at + 1] = BUF32[1];
  out[at + 2] = BUF32[2];
  out[at + 3] = BUF32[3];
}

/** Writes `src[at..at+4)` to the 128-bit r/m operand (XMMrm or memory; `aligned` as in `readRm128`). */
export function writeRm128(cpu: Cpu, d: Insn, aligned: boolean, src: Int32Array, at: number): void {
  if (d.mod === 3) {
    const x = cpu.state.xmm;
    const r = d.rm << 2;
    x[r] = src[at];
    x[r + 1] = src[at + 1];
    x[r + 2] = src[at + 2];
    x[r + 3] = src[at + 3];
    return;
  }
  const lo = operandAddress(cpu, d, 16, true);
  const hi = cpu.tmpHi;
  if (aligned && lo & 15) cpu.fault(13, 0);
  BUF32[0] = src[at];
  BUF32[1] = src[at + 1];
  BUF32[2] = src[at + 2];
  BUF32[3] = src[at + 3];
  cpu.wrBytes(lo, hi, 16, BUF, 0);
}

/**
 * Reads the low `size` bytes (4 or 8) of the r/m operand: XMMrm's low lanes,
 * or `size` bytes of memory (no alignment check), into `out[at..]` (one or
 * two lanes).
 */
export function readRmLow(cpu: Cpu, d: Insn, size: 4 | 8, out: Int32Array, at: number): void {
  if (d.mod === 3) {
    const x = cpu.state.xmm;
    const r = d.rm << 2;
    out[at] = x[r];
    if (size === 8) out[at + 1] = x[r + 1];
    return;
  }
  const lo = operandAddress(cpu, d, size, false);
  out[at] = cpu.rdS(lo, cpu.tmpHi, size);
  if (size === 8) out[at + 1] = cpu.tmpHi;
}

/** Writes `size` bytes (4 or 8) from `src[at..]` to memory at the r/m operand (memory forms only). */
export function writeMemLow(cpu: Cpu, d: Insn, size: 4 | 8, src: Int32Array, at: number): void {
  const lo = operandAddress(cpu, d, size, true);
  cpu.wrS(lo, cpu.tmpHi, size, src[at], size === 8 ? src[at + 1] : 0);
}

/** Reads the 64-bit MMX r/m operand (MMrm with rm & 7, or 8 bytes of memory) into `out[at], out[at+1]`. */
export function readMmxRm(cpu: Cpu, d: Insn, out: Int32Array, at: number): void {
  if (d.mod === 3) {
    const r = d.rm & 7;
    out[at] = cpu.state.fpSigLo[r];
    out[at + 1] = cpu.state.fpSigHi[r];
    return;
  }
  const lo = operandAddress(cpu, d, 8, false);
  out[at] = cpu.rdS(lo, cpu.tmpHi, 8);
  out[at + 1] = cpu.tmpHi;
}

/**
 * Marks the x87 state as MMX does on every MMX instruction (SDM vol. 1
 * §9.5.1): TOP = 0 and all tags valid. `setMmx` does this itself; EMMS sets
 * every tag empty instead.
 */
export function mmxEnter(cpu: Cpu): void {
  const st = cpu.state;
  st.fpuSw &= ~0x3800;
  st.fpuTw = 0;
}

/** Writes MMX register `r` (0-7): the significand of physical x87 register r, exponent+sign = 0xFFFF (SDM vol. 1 §9.5.1). */
export function setMmx(cpu: Cpu, r: number, lo: number, hi: number): void {
  const st = cpu.state;
  st.fpSigLo[r] = lo;
  st.fpSigHi[r] = hi;
  st.fpSe[r] = 0xffff;
  mmxEnter(cpu);
}
