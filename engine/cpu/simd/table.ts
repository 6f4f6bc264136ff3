/**
 * Opcode table of the MMX/SSE units: one handler per (opcode, mandatory
 * prefix). The unit files (`mmx-int.ts`, `sse-int.ts`, `sse-fp.ts`, ...)
 * register their handlers with `defineSimd` when `simd/index.ts` loads them;
 * `execSimd` looks the instruction up, applies the checks common to its
 * class (CR0.EM/TS, CR4.OSFXSR, pending x87 exceptions for MMX) and calls it.
 *
 * Opcode numbering is the decoder's (`Insn.op`): 0F xx = 0x100-0x1ff,
 * 0F 38 xx = 0x200-0x2ff, 0F 3A xx = 0x300-0x3ff.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';

/** Mandatory prefix of an entry: none, 66, F3, F2 (SDM vol. 2 §2.1.2: F2/F3 win over 66). */
export const enum Pfx {
  NONE = 0,
  P66 = 1,
  F3 = 2,
  F2 = 3,
}

/** Class of an entry: which checks run before the handler (SDM vol. 1 tables 13-x, vol. 3 §2.5). */
export const enum SimdKind {
  /** MMX register form: #UD if CR0.EM, #NM if CR0.TS, #MF if an unmasked x87 exception is pending. */
  MMX = 1,
  /** SSE family (XMM registers): #UD if CR0.EM or !CR4.OSFXSR, #NM if CR0.TS. */
  SSE = 2,
  /** No FPU/SSE state touched (MOVBE, CRC32, POPCNT...): no CR0/CR4 checks. */
  INT = 3,
}

/**
 * Operand forms an entry accepts (SDM vol. 2 opcode tables: "mod = 11B
 * only" / "memory only"); any other form is #UD at decode, before the class
 * checks (so it ranks above #NM and #MF, SDM vol. 3 table 6-2).
 */
export const enum Form {
  ANY = 0,
  /** Register form only (ModRM.mod = 3). */
  REG = 1,
  /** Memory form only. */
  MEM = 2,
}

/** A handler: executes `d`, returns 1 when retired. Faults through `cpu.fault`/`cpu.pageFault` before any change. */
export type SimdHandler = (cpu: Cpu, d: Insn) => number;

/** Index of (op, prefix): op in 0x100-0x3ff. */
function slot(op: number, pfx: number): number {
  return ((op - 0x100) << 2) | pfx;
}

const handlers: (SimdHandler | undefined)[] = new Array(0x300 * 4);
const kinds = new Uint8Array(0x300 * 4);
/** Per slot: bits 0-7 the ModRM.reg values allowed (group opcodes), bits 8-9 the `Form`. */
const forms = new Uint16Array(0x300 * 4);

/**
 * Registers `fn` for opcode `op` (0x100-0x3ff) with mandatory prefix `pfx`,
 * accepting operand form `form` and, for group opcodes, the ModRM.reg values
 * whose bits are set in `regMask` (bit n = /n; default all). Throws (at load
 * time) when the slot is already taken: two units must not claim one encoding.
 */
export function defineSimd(
  op: number,
  pfx: Pfx,
  kind: SimdKind,
  fn: SimdHandler,
  form: Form = Form.ANY,
  regMask = 0xff,
): void {
  const i = slot(op, pfx);
  if (handlers[i]) throw new Error(`simd table: 0x${op.toString(16)}/${pfx} defined twice`);
  handlers[i] = fn;
  kinds[i] = kind;
  forms[i] = (form << 8) | (regMask & 0xff);
}

/** Whether `d` has an operand form and ModRM.reg that slot `i` accepts (false: #UD). */
export function simdFormOk(i: number, d: Insn): boolean {
  const f = forms[i];
  if (!((f >> (d.reg & 7)) & 1)) return false;
  const form = f >> 8;
  return form === Form.ANY || (form === Form.REG) === (d.mod === 3);
}

/** Mandatory-prefix class of `d`: the last F2/F3 wins, else 66, else none. */
export function prefixOf(d: Insn): Pfx {
  return d.rep === 0xf3 ? Pfx.F3 : d.rep === 0xf2 ? Pfx.F2 : d.p66 ? Pfx.P66 : Pfx.NONE;
}

/** Table slot of `d` (for `simdHandler` / `simdKind`), or -1 when the opcode is outside the SIMD maps. */
export function simdSlot(d: Insn): number {
  if (d.op < 0x100 || d.op > 0x3ff) return -1;
  return slot(d.op, prefixOf(d));
}

/** Handler in slot `i` (undefined: no such instruction, #UD). */
export function simdHandler(i: number): SimdHandler | undefined {
  return i < 0 ? undefined : handlers[i];
}

/** Kind (`SimdKind`) of slot `i`; 0 when empty. */
export function simdKind(i: number): number {
  return i < 0 ? 0 : kinds[i];
}
