/**
 * XSAVE-managed state bookkeeping shared by the XSAVE family
 * (engine/cpu/fpu/xsave.ts) and XGETBV (engine/cpu/system.ts): the XINUSE
 * bitmap and the initial configurations of state components 0 (x87) and 1
 * (SSE) (Intel SDM vol. 1 §13.6 "Processor Tracking of XSAVE-Managed State").
 * No imports beyond the state type, so either side can use it without an
 * import circle.
 */
import type { CpuState } from '../state';

/** XCR0 / XSTATE_BV bit of state component 0 (x87). */
export const XSTATE_X87 = 1;
/** XCR0 / XSTATE_BV bit of state component 1 (SSE: XMM registers; MXCSR rides with it). */
export const XSTATE_SSE = 2;
/** MXCSR's reset / initial value. */
export const MXCSR_DEFAULT = 0x1f80;

/**
 * True when the x87 state is in its initial configuration (SDM vol. 1 §13.6):
 * FCW = 037FH, FSW = 0, FTW = FFFFH (all empty), FOP = 0, FIP = FDP = 0,
 * FCS = FDS = 0 and the eight data registers 0.
 */
export function x87IsInit(s: CpuState): boolean {
  if (s.fpuCw !== 0x037f || s.fpuSw !== 0 || s.fpuTw !== 0xffff || s.fpuFop !== 0) return false;
  if ((s.fpuIpLo | s.fpuIpHi | s.fpuDpLo | s.fpuDpHi | s.fpuCs | s.fpuDs) !== 0) return false;
  for (let r = 0; r < 8; r++) if ((s.fpSigLo[r] | s.fpSigHi[r] | s.fpSe[r]) !== 0) return false;
  return true;
}

/**
 * True when the SSE state is in its initial configuration (SDM vol. 1 §13.6):
 * XMM0..XMM(xmmCount-1) all 0 (16 registers in 64-bit mode, 8 outside it).
 * MXCSR is not part of it.
 */
export function sseIsInit(s: CpuState, xmmCount: number): boolean {
  const x = s.xmm;
  for (let i = 0; i < xmmCount * 4; i++) if (x[i] !== 0) return false;
  return true;
}

/**
 * XINUSE (bits 0-1) as the XSAVE family, XSAVEOPT's and XSAVEC's init
 * optimisation and XGETBV with ECX = 1 see it: the bits FXRSTOR/XRSTOR left
 * in `s.xinuse` (1 after a load, 0 after XRSTOR initialised the component),
 * plus every component that is not in its initial configuration now. The
 * SDM's rule (XINUSE[i] = 0 implies component i is in its initial
 * configuration) therefore always holds, and XINUSE[i] = 1 for a component
 * XRSTOR loaded, as the SDM's XRSTOR operation sets it.
 */
export function xinuse(s: CpuState, xmmCount: number): number {
  let v = s.xinuse & (XSTATE_X87 | XSTATE_SSE);
  if (!(v & XSTATE_X87) && !x87IsInit(s)) v |= XSTATE_X87;
  if (!(v & XSTATE_SSE) && !sseIsInit(s, xmmCount)) v |= XSTATE_SSE;
  return v;
}

/**
 * Puts the x87 state in its initial configuration (XRSTOR with
 * XSTATE_BV[0] = 0): the FNINIT values plus FOP/FIP/FDP/FCS/FDS = 0 and all
 * data registers 0 (SDM vol. 1 §13.6).
 */
export function x87Init(s: CpuState): void {
  s.fpuCw = 0x037f;
  s.fpuSw = 0;
  s.fpuTw = 0xffff;
  s.fpuFop = 0;
  s.fpuIpLo = s.fpuIpHi = s.fpuDpLo = s.fpuDpHi = 0;
  s.fpuCs = s.fpuDs = 0;
  s.fpSigLo.fill(0);
  s.fpSigHi.fill(0);
  s.fpSe.fill(0);
}
