/**
 * Lazy arithmetic flags: the kinds recorded in `CpuState.lfOp` by the
 * interpreter (exec.ts) and the block compiler (codegen.ts), and the
 * parity table. The flags are materialised on demand (cpu.ts getFlags).
 * Source: Intel SDM vol. 1 §3.4.3 (EFLAGS status flags).
 */

/** Arithmetic flag bits (CF PF AF ZF SF OF). */
export const ARITH_FLAGS = 0x8d5;

// Lazy flag kinds (low 4 bits of lfOp; size index 0-3 = 8/16/32/64 bits in bits 4-5).
export const LF_EAGER = 0;
export const LF_ADD = 1;
export const LF_SUB = 2;
export const LF_LOGIC = 3;
export const LF_INC = 4;
export const LF_DEC = 5;
export const LF_SHL = 6;
export const LF_SHR = 7;
export const LF_SAR = 8;
/** IMUL: flags from the result, CF=OF=lfCf. */
export const LF_MUL = 9;
/** 64-bit IMUL (2/3-operand): CF=OF computed on demand from lfA/lfAH * lfB/lfBH. */
export const LF_IMUL64 = 10;

/** Parity flag lookup for the low byte of a result. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let b = i;
  b ^= b >> 4;
  b ^= b >> 2;
  b ^= b >> 1;
  PARITY[i] = b & 1 ? 0 : 4;
}
