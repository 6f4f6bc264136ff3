/**
 * Opcode table of the integer core, after Bochs' `ia_opcodes.def`: one
 * entry per decoder opcode (`Insn.op`: one-byte 0x000-0x0ff, 0F xx
 * 0x100-0x1ff, 0F 38 xx 0x200-0x2ff, 0F 3A xx 0x300-0x3ff) with its
 * handler and facts:
 * - `unit`: which unit executes it (integer core in ops/*, system
 *   instructions, x87 in fpu/, MMX/SSE in simd/, which has its own
 *   per-prefix table in simd/table.ts);
 * - `lock`: the ModRM.reg values (bit n = /n) whose memory form accepts a
 *   LOCK prefix (Intel SDM vol. 2 "LOCK"); anything else with LOCK is #UD,
 *   checked by `execInsn` before the handler;
 * - `pfx`: what F2/F3 mean for it (REP string, or a mandatory F3 that
 *   selects another instruction; otherwise ignored).
 *
 * Each class file (alu.ts, shift.ts, ...) exports a `register...()` that
 * `ops/index.ts` calls once at load; a new instruction set is a new file
 * plus one line there. `defineOp` throws when two files claim one opcode.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';

/**
 * An instruction handler: executes `d` (faults through `cpu.fault` /
 * `cpu.pageFault` before any architectural change) and returns 1 when it
 * retired, 0 when a REP string instruction stopped early to be resumed.
 */
export type OpHandler = (cpu: Cpu, d: Insn) => number;

/** Which unit executes an opcode. */
export const enum Unit {
  /** General-purpose integer instructions (ops/*.ts). */
  INT = 1,
  /** System instructions: privileged, segment/descriptor, I/O, MSR, CPUID (ops/sys.ts over ../system.ts). */
  SYSTEM = 2,
  /** x87 (fpu/x87.ts). */
  X87 = 3,
  /** MMX/SSE..SSE4.2, dispatched again by mandatory prefix (simd/table.ts). */
  SIMD = 4,
}

/** What F2/F3 prefixes mean for an opcode (bits). 0: ignored. */
export const enum OpPfx {
  /** REP / REPE / REPNE repeat the string instruction (SDM vol. 2 "REP/REPE/REPZ/REPNE/REPNZ"). */
  REP = 1,
  /** F3 selects another instruction (POPCNT, TZCNT/LZCNT, PAUSE). */
  F3 = 2,
  /** F2/F3 give encodings the core does not offer (#UD). */
  NO_REP = 4,
}

/** Facts of an opcode besides its handler. */
export interface OpFacts {
  /** Default `Unit.INT`. */
  unit?: Unit;
  /** ModRM.reg mask (bit n = /n) of the memory forms that accept LOCK; default 0 (none). */
  lock?: number;
  /** `OpPfx` bits; default 0. */
  pfx?: number;
}

/** Number of opcode slots (0x000-0x3ff). */
export const OP_SLOTS = 0x400;

/** Handler per opcode (undefined until registered; `ops/index.ts` fills the rest with #UD). */
export const opHandlers: (OpHandler | undefined)[] = new Array<OpHandler | undefined>(OP_SLOTS).fill(
  undefined,
);
/** `Unit` per opcode (0: none registered). */
export const opUnit = new Uint8Array(OP_SLOTS);
/** LOCK-accepting ModRM.reg mask per opcode (memory forms only). */
export const opLock = new Uint8Array(OP_SLOTS);
/** `OpPfx` bits per opcode. */
export const opPfx = new Uint8Array(OP_SLOTS);

/**
 * Registers `fn` for each opcode in `ops` (a number, a list, or a
 * [first, last] inclusive range given as `range(first, last)`). Throws at
 * load time when an opcode is already taken or out of range.
 */
export function defineOp(ops: number | readonly number[], fn: OpHandler, facts: OpFacts = {}): void {
  for (const op of typeof ops === 'number' ? [ops] : ops) {
    if (!(op >= 0 && op < OP_SLOTS)) throw new Error(`op table: opcode 0x${op.toString(16)} out of range`);
    if (opHandlers[op]) throw new Error(`op table: opcode 0x${op.toString(16)} defined twice`);
    opHandlers[op] = fn;
    opUnit[op] = facts.unit ?? Unit.INT;
    opLock[op] = facts.lock ?? 0;
    opPfx[op] = facts.pfx ?? 0;
  }
}

/** The opcodes first..last inclusive, for `defineOp`. */
export function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let op = first; op <= last; op++) out.push(op);
  return out;
}

/** Whether `d` may carry LOCK: a memory destination and an opcode (and /reg) that accepts it. */
export function lockAccepted(d: Insn): boolean {
  return d.isMem && ((opLock[d.op] >> (d.reg & 7)) & 1) !== 0;
}
