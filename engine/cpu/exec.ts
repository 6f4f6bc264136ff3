/**
 * Generic implementation of every instruction the core supports, one
 * decoded `Insn` at a time (Intel SDM vol. 2 instruction pages). Compiled
 * blocks call it for instructions they do not emit inline; it is also the
 * reference semantics for the less common operand sizes.
 *
 * `execInsn` does the checks common to every instruction (decode errors,
 * LOCK, RIP of block-ending instructions) and calls the opcode's handler
 * from the table in ops/table.ts; the handlers live by class in ops/*.ts
 * (alu, shift, muldiv, bit, string, stack, control, move, sys, misc), x87
 * in fpu/x87.ts, MMX/SSE in simd/ (see docs/cpu-core.md).
 *
 * Contract: faults go through `cpu.fault`/`cpu.pageFault` before any
 * architectural change (restartable), except REP string instructions,
 * which commit completed iterations (RCX/RSI/RDI) as the SDM requires.
 * Block-ending instructions set RIP themselves (default: the next
 * instruction). Returns 1 when the instruction retired, 0 when a REP string
 * instruction stopped early to be resumed (RIP left at it).
 */
import type { Cpu } from './cpu';
import type { Insn } from './decoder';
import { isTerminator } from './block-rules';
import { ud } from './ops/operands';
import { lockAccepted, opHandlers } from './ops/table';
import { registerIntegerOps } from './ops/index';
/** The operand helpers the unit files use (they live in ops/operands.ts; re-exported for older imports). */
export { getR, operandAddress, readRm, setR, undefinedOpcode, writeRm } from './ops/operands';

registerIntegerOps();

/** Executes one instruction; see the file comment for the contract. */
export function execInsn(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  cpu.insnRipLo = d.ripLo;
  cpu.insnRipHi = d.ripHi;
  cpu.insnLength = d.len;
  if (d.bad === 2) return cpu.fault(13, 0);
  if (d.bad) return ud(cpu, d);
  // LOCK only on the memory-destination forms the SDM lists (table: opLock), else #UD.
  if (d.lock && !lockAccepted(d)) return ud(cpu, d);
  if (isTerminator(d)) {
    st.ripLo = d.nextLo;
    st.ripHi = d.nextHi;
  }
  return opHandlers[d.op]!(cpu, d);
}
