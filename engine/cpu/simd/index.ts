/**
 * MMX and SSE..SSE4.2 dispatch (Intel SDM vol. 1 ch. 9-12, vol. 2): looks
 * the instruction up in the opcode table (`table.ts`), applies the checks of
 * its class, then runs the unit's handler. Each unit file registers its
 * instructions in `registerAll` below; a new instruction set is a new file.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { undefinedOpcode } from '../ops/operands';
import { x87RaisePendingMf } from '../fpu/x87';
import { SimdKind, simdFormOk, simdHandler, simdKind, simdSlot } from './table';
import { registerMmx } from './mmx';
import { registerSseInt } from './sse-int';
import { registerSse42 } from './sse42';
import { registerSseFp } from './sse-fp';
import { registerSseCvt } from './sse-cvt';

let registered = false;

/** Loads every unit's table entries once (called lazily on the first SIMD instruction). */
function registerAll(): void {
  registered = true;
  registerMmx();
  registerSseInt();
  registerSse42();
  registerSseFp();
  registerSseCvt();
}

/**
 * Executes one MMX/SSE instruction. Common checks (SDM vol. 3 §2.5, vol. 1
 * §13.1): MMX forms #UD when CR0.EM, #NM when CR0.TS, #MF when an unmasked
 * x87 exception is pending (FSW.ES, CR0.NE); SSE forms #UD when CR0.EM or
 * CR4.OSFXSR is clear, #NM when CR0.TS. An encoding no unit defines, or an
 * operand form its entry does not accept, is #UD before those checks.
 * Returns 1 (retired).
 */
export function execSimd(cpu: Cpu, d: Insn): number {
  if (!registered) registerAll();
  const i = simdSlot(d);
  const fn = simdHandler(i);
  if (!fn || !simdFormOk(i, d)) return undefinedOpcode(cpu, d);
  const st = cpu.state;
  const kind = simdKind(i);
  if (kind === SimdKind.SSE) {
    if (st.cr0 & 4 || !(st.cr4 & 0x200)) return undefinedOpcode(cpu, d);
    if (st.cr0 & 8) cpu.fault(7, -1);
  } else if (kind === SimdKind.MMX) {
    if (st.cr0 & 4) return undefinedOpcode(cpu, d);
    if (st.cr0 & 8) cpu.fault(7, -1);
    x87RaisePendingMf(cpu);
  }
  return fn(cpu, d);
}
