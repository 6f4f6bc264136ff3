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

/** Registers every class's opcodes once (exec.ts calls it at load). */
export function registerIntegerOps(): void {
  registerAlu();
  registerShift();
  registerMulDiv();
  registerBit();
  registerString();
  registerStack();
  registerControl();
  registerMove();
  registerSys();
}
