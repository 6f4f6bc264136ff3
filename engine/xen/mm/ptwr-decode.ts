/**
 * Decoder for the memory-writing instructions Xen's writable page-table
 * emulation meets in practice (Xen pv/ro-page-fault.c runs x86_emulate with
 * write/cmpxchg hooks; guests update PTEs with these): MOV r/m,r and
 * MOV r/m,imm; XCHG r/m,r; CMPXCHG r/m,r; CMPXCHG8B m64; OR/AND r/m with a
 * register or immediate; BTS/BTR/BTC r/m,imm8. Cold path (runs on a guest
 * kernel #PF only), so BigInt is used freely.
 *
 * Opcode and ModRM/SIB encodings: Intel SDM vol. 2 §2.1-2.2 and the
 * instruction pages of MOV, XCHG, CMPXCHG, CMPXCHG8B, OR, AND, BTS, BTR, BTC.
 */

/** What a decoded memory-writing instruction does. */
export type PtwrOp = 'mov' | 'xchg' | 'cmpxchg' | 'cmpxchg8b' | 'or' | 'and' | 'bts' | 'btr' | 'btc';

export interface DecodedStore {
  op: PtwrOp;
  /** Instruction length in bytes. */
  len: number;
  /** Operand size in bytes (1, 2, 4 or 8). */
  size: number;
  /** Linear address of the memory operand (segment base included). */
  ea: bigint;
  /** Source value (register or immediate) truncated to `size`; bit offset for BTx. */
  src: bigint;
  /** Register operand number (XCHG/CMPXCHG write it back), -1 when none. */
  reg: number;
  /** True when `reg` names AH/CH/DH/BH (8-bit operand without REX). */
  regHigh8: boolean;
}

/** Register file access for the decoder. */
export interface DecodeEnv {
  /** True in 64-bit mode. */
  long: boolean;
  /** Full 64-bit value of GPR n (0-15). */
  gpr(n: number): bigint;
  /** Base of segment register n (Seg numbering: ES=0, CS=1, SS=2, DS=3, FS=4, GS=5). */
  segBase(n: number): bigint;
  /** Linear address of the instruction's first byte (RIP + CS base). */
  rip: bigint;
}

const M64 = (1n << 64n) - 1n;

function mask(size: number): bigint {
  return (1n << BigInt(size * 8)) - 1n;
}

/** Reads a register operand of `size` bytes (8-bit: AH..BH when `high8`). */
export function readSizedReg(env: DecodeEnv, reg: number, size: number, high8: boolean): bigint {
  if (size === 1 && high8) return (env.gpr(reg - 4) >> 8n) & 0xffn;
  return env.gpr(reg) & mask(size);
}

function sext(v: bigint, bits: number): bigint {
  const s = 1n << BigInt(bits - 1);
  return (v & (s - 1n)) - (v & s);
}

/**
 * Decodes one instruction from `code` (the bytes at RIP, up to 15).
 * @returns the store description, or null when the instruction is not one
 *   of the supported memory-writing forms (the caller lets the #PF through).
 */
export function decodeStore(code: Uint8Array, env: DecodeEnv): DecodedStore | null {
  let i = 0;
  let opsize16 = false;
  let addr32 = !env.long;
  let seg = -1;
  let rex = 0;
  const n = code.length;
  // Legacy prefixes.
  for (; i < n && i < 14; i++) {
    const b = code[i];
    if (b === 0x66) opsize16 = true;
    else if (b === 0x67) {
      if (!env.long) return null; // 16-bit addressing: not supported
      addr32 = true;
    } else if (b === 0xf0 || b === 0xf2 || b === 0xf3) continue;
    else if (b === 0x26) seg = 0;
    else if (b === 0x2e) seg = 1;
    else if (b === 0x36) seg = 2;
    else if (b === 0x3e) seg = 3;
    else if (b === 0x64) seg = 4;
    else if (b === 0x65) seg = 5;
    else break;
  }
  if (env.long && i < n && (code[i] & 0xf0) === 0x40) rex = code[i++];
  if (i >= n) return null;
  const rexW = (rex & 8) !== 0;
  const rexR = rex & 4 ? 8 : 0;
  const rexX = rex & 2 ? 8 : 0;
  const rexB = rex & 1 ? 8 : 0;
  const osz = rexW ? 8 : opsize16 ? 2 : 4;

  let op = code[i++];
  let twoByte = false;
  if (op === 0x0f) {
    if (i >= n) return null;
    twoByte = true;
    op = code[i++];
  }

  // Which forms do we accept? [kind, size, immediate bytes]
  let kind: PtwrOp;
  let size: number;
  let immBytes = 0;
  let regIsSource = true;
  if (!twoByte) {
    switch (op) {
      case 0x88:
        kind = 'mov';
        size = 1;
        break;
      case 0x89:
        kind = 'mov';
        size = osz;
        break;
      case 0xc6:
        kind = 'mov';
        size = 1;
        immBytes = 1;
        regIsSource = false;
        break;
      case 0xc7:
        kind = 'mov';
        size = osz;
        immBytes = osz === 2 ? 2 : 4;
        regIsSource = false;
        break;
      case 0x86:
        kind = 'xchg';
        size = 1;
        break;
      case 0x87:
        kind = 'xchg';
        size = osz;
        break;
      case 0x08:
        kind = 'or';
        size = 1;
        break;
      case 0x09:
        kind = 'or';
        size = osz;
        break;
      case 0x20:
        kind = 'and';
        size = 1;
        break;
      case 0x21:
        kind = 'and';
        size = osz;
        break;
      case 0x80:
      case 0x81:
      case 0x83:
        kind = 'or'; // refined by ModRM.reg below
        size = op === 0x80 ? 1 : osz;
        immBytes = op === 0x81 ? (osz === 2 ? 2 : 4) : 1;
        regIsSource = false;
        break;
      default:
        return null;
    }
  } else {
    switch (op) {
      case 0xb0:
        kind = 'cmpxchg';
        size = 1;
        break;
      case 0xb1:
        kind = 'cmpxchg';
        size = osz;
        break;
      case 0xc7:
        kind = 'cmpxchg8b';
        size = 8;
        regIsSource = false;
        break;
      case 0xba:
        kind = 'bts'; // refined by ModRM.reg
        size = osz;
        immBytes = 1;
        regIsSource = false;
        break;
      default:
        return null;
    }
  }

  if (i >= n) return null;
  const modrm = code[i++];
  const mod = modrm >> 6;
  const regField = ((modrm >> 3) & 7) | rexR;
  let rm = modrm & 7;
  if (mod === 3) return null; // register destination: no memory store

  // Group opcodes: check the /digit.
  const digit = (modrm >> 3) & 7;
  if (!twoByte && (op === 0xc6 || op === 0xc7) && digit !== 0) return null;
  if (!twoByte && (op === 0x80 || op === 0x81 || op === 0x83)) {
    if (digit === 1) kind = 'or';
    else if (digit === 4) kind = 'and';
    else return null;
  }
  if (twoByte && op === 0xc7) {
    if (digit !== 1 || rexW) return null; // CMPXCHG16B not handled
  }
  if (twoByte && op === 0xba) {
    if (digit === 5) kind = 'bts';
    else if (digit === 6) kind = 'btr';
    else if (digit === 7) kind = 'btc';
    else return null;
  }

  // Effective address (SDM vol. 2 tables 2-2 and 2-3; 64-bit mode RIP-relative form).
  let ea = 0n;
  let ripRel = false;
  let defSeg = 3;
  let dispBytes = mod === 1 ? 1 : mod === 2 ? 4 : 0;
  if (rm === 4) {
    if (i >= n) return null;
    const sib = code[i++];
    const scale = sib >> 6;
    const index = ((sib >> 3) & 7) | rexX;
    const base = sib & 7;
    if (index !== 4) ea += env.gpr(index) << BigInt(scale);
    if (base === 5 && mod === 0) dispBytes = 4;
    else {
      ea += env.gpr(base | rexB);
      if (base === 4 || base === 5) defSeg = 2;
    }
  } else if (rm === 5 && mod === 0) {
    dispBytes = 4;
    ripRel = env.long;
  } else {
    ea += env.gpr(rm | rexB);
    if (rm === 5) defSeg = 2;
  }
  if (dispBytes) {
    if (i + dispBytes > n) return null;
    let v = 0n;
    for (let k = dispBytes - 1; k >= 0; k--) v = (v << 8n) | BigInt(code[i + k]);
    ea += sext(v, dispBytes * 8);
    i += dispBytes;
  }

  // Immediate.
  let imm = 0n;
  if (immBytes) {
    if (i + immBytes > n) return null;
    let v = 0n;
    for (let k = immBytes - 1; k >= 0; k--) v = (v << 8n) | BigInt(code[i + k]);
    imm = sext(v, immBytes * 8);
    i += immBytes;
  }
  const len = i;
  if (len > 15) return null;

  if (ripRel) ea += env.rip + BigInt(len);
  ea &= addr32 ? 0xffffffffn : M64;
  const segNo = seg >= 0 ? seg : defSeg;
  if (!env.long || segNo >= 4) ea += env.segBase(segNo);
  ea &= env.long ? M64 : 0xffffffffn;

  let src = 0n;
  let reg = -1;
  let high8 = false;
  if (regIsSource) {
    reg = regField;
    high8 = size === 1 && rex === 0 && regField >= 4 && regField < 8;
    src = readSizedReg(env, reg, size, high8);
  } else if (kind === 'cmpxchg8b') {
    src = (env.gpr(1) & 0xffffffffn) << 32n;
    src |= env.gpr(3) & 0xffffffffn; // ECX:EBX
  } else {
    src = imm & mask(size);
    if (kind === 'bts' || kind === 'btr' || kind === 'btc') src = imm & BigInt(size * 8 - 1);
  }
  return { op: kind, len, size, ea, src, reg, regHigh8: high8 };
}
