/**
 * x87 FPU instructions: opcodes D8-DF and FWAIT (9B) (Intel SDM vol. 1
 * ch. 8, vol. 2 "FADD".."FYL2XP1"). State lives in `CpuState` (fpSigLo/
 * fpSigHi/fpSe, fpuCw, fpuSw, fpuTw, fpuFop, fpuIp*, fpuDp*).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { undefinedOpcode } from '../exec';

/**
 * Executes one x87 instruction (D8-DF) or FWAIT (9B).
 * Faults: #NM when CR0.EM or CR0.TS (FWAIT: only when CR0.MP and CR0.TS),
 * #MF for a pending unmasked exception at a waiting instruction (CR0.NE=1),
 * #PF/#GP/#SS from memory operands. Returns 1 (retired).
 */
export function execX87(cpu: Cpu, d: Insn): number {
  const cr0 = cpu.state.cr0;
  if (d.op === 0x9b) {
    if ((cr0 & 0xa) === 0xa) cpu.fault(7, -1);
    return 1;
  }
  if (cr0 & 0xc) cpu.fault(7, -1);
  return undefinedOpcode(cpu, d);
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
