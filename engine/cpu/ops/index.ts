/**
 * Loads every instruction class into the opcode table (table.ts). A new
 * instruction set is a new file under ops/ with a `register...()` and one
 * line here.
 */
import { registerAlu } from './alu';
import { registerShift } from './shift';
import { registerMulDiv } from './muldiv';
import { registerBit } from './bit';
import { registerString } from './string';
import { registerStack } from './stack';
import { registerControl } from './control';
import { registerMove } from './move';
import { registerSys } from './sys';
import { registerMisc } from './misc';
import { execX87 } from '../fpu/x87';
import { execSimd } from '../simd/index';
import { defineOp, opHandlers, range, Unit } from './table';
import { ud } from './operands';

let registered = false;

/**
 * Registers every class's opcodes once (exec.ts calls it at load): the
 * integer and system classes, then the x87 and SIMD units, then #UD for
 * every opcode nobody claimed.
 */
export function registerIntegerOps(): void {
  if (registered) return;
  registered = true;
  registerAlu();
  registerShift();
  registerMulDiv();
  registerBit();
  registerString();
  registerStack();
  registerControl();
  registerMove();
  registerSys();
  registerMisc();
  // x87: D8-DF and FWAIT (9B) -> fpu/x87.ts.
  defineOp([...range(0xd8, 0xdf), 0x9b], execX87, { unit: Unit.X87 });
  // MMX/SSE: the 0F, 0F 38 and 0F 3A opcodes no class above claimed -> simd/index.ts (its own table by prefix).
  for (let op = 0x100; op < 0x400; op++) {
    if (opHandlers[op] === undefined && isSimdOpcode(op)) defineOp(op, execSimd, { unit: Unit.SIMD });
  }
  // Everything else is #UD (unit 0: no instruction).
  for (let op = 0; op < 0x400; op++) if (opHandlers[op] === undefined) opHandlers[op] = ud;
}

/**
 * Opcodes of the MMX/SSE maps (SDM vol. 2 appendix A): 0F 10-17, 28-2F,
 * 50-7F, C2-C6, D0-FF, B8, 0E/0F (FEMMS/3DNow!, #UD in the SIMD table),
 * 77 (EMMS), and all of 0F 38 / 0F 3A.
 */
function isSimdOpcode(op: number): boolean {
  if (op >= 0x200) return true;
  if (op < 0x100) return false;
  const b = op & 0xff;
  return (
    (b >= 0x10 && b <= 0x17) ||
    (b >= 0x28 && b <= 0x2f) ||
    (b >= 0x50 && b <= 0x7f) ||
    b === 0xc2 ||
    b === 0xc3 ||
    (b >= 0xc4 && b <= 0xc6) ||
    b >= 0xd0 ||
    b === 0xb8 ||
    b === 0x0e ||
    b === 0x0f
  );
}
