/**
 * x86 instruction decoder (Intel SDM vol. 2 ch. 2: prefixes, REX, ModR/M,
 * SIB, displacement, immediate). Cold path: runs once per instruction when a
 * block is built; the result (`Insn`) is baked into the block's compiled code.
 *
 * Opcode numbering in `Insn.op`: one-byte opcodes 0x000-0x0ff, 0F xx =
 * 0x100-0x1ff, 0F 38 xx = 0x200-0x2ff, 0F 3A xx = 0x300-0x3ff.
 */

/** Decoded instruction. Offsets/addresses are (lo, hi) halves; sizes in bytes. */
export class Insn {
  ripLo = 0;
  ripHi = 0;
  nextLo = 0;
  nextHi = 0;
  /** Total length in bytes (1-15). */
  len = 0;
  op = 0;
  /** Operand size in bytes: 2, 4 or 8 (byte forms are told apart by opcode). */
  osz = 4;
  /** Address size in bytes: 2, 4 or 8. */
  asz = 4;
  /** Segment override (Seg number) or -1. */
  seg = -1;
  /** 0, 0xF2 (REPNE) or 0xF3 (REP/REPE): the last of F2/F3 seen. */
  rep = 0;
  /** 0x66 prefix seen (for SSE opcode naming). */
  p66 = false;
  lock = false;
  /** REX byte (0 if none). */
  rex = 0;
  hasModrm = false;
  mod = 0;
  /** ModRM.reg including REX.R. */
  reg = 0;
  /** ModRM.rm including REX.B (register operand when mod == 3). */
  rm = 0;
  /** Memory operand: base register (-1 none), index register (-1 none), scale shift, disp (int32). */
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** RIP-relative (64-bit mode, mod=00 rm=101). */
  ripRel = false;
  /** Default segment of the memory operand (SS for rBP/rSP bases, else DS). */
  defSeg = 3;
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER level; selector of a far pointer). */
  imm2 = 0;
  /** 64-bit mode. */
  long = false;
  /** Decode error: 0 ok, 1 = #UD (invalid encoding), 2 = #GP (longer than 15 bytes). */
  bad = 0;

  /** True when the r/m operand is memory. */
  get isMem(): boolean {
    return this.hasModrm && this.mod !== 3;
  }
}

// Immediate kinds.
const I_NONE = 0;
const I_B = 1; // imm8 (sign-extended where the instruction says so)
const I_W = 2; // imm16
const I_Z = 3; // imm16/32 by operand size (sign-extended to 64)
const I_V = 4; // imm16/32/64 by operand size (MOV r, imm)
const I_MOFFS = 5; // address-size offset
const I_PTR = 6; // far pointer: offset (osz) + selector
const I_ENTER = 7; // imm16 + imm8
const I_REL8 = 8;
const I_REL = 9; // rel16/32 by operand size (branches: 32 in 64-bit mode)

/** 1 when the one-byte opcode has a ModRM byte. */
const MODRM1 = new Uint8Array(256);
const IMM1 = new Uint8Array(256);
const MODRM2 = new Uint8Array(256);
const IMM2 = new Uint8Array(256);

(function initTables() {
  for (let i = 0; i < 0x40; i += 8) {
    for (let j = 0; j < 4; j++) MODRM1[i + j] = 1;
    IMM1[i + 4] = I_B;
    IMM1[i + 5] = I_Z;
  }
  for (const o of [
    0x62, 0x63, 0x69, 0x6b, 0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3, 0xf6, 0xf7, 0xfe,
    0xff,
  ]) {
    MODRM1[o] = 1;
  }
  for (let o = 0x80; o <= 0x8f; o++) MODRM1[o] = 1;
  for (let o = 0xd8; o <= 0xdf; o++) MODRM1[o] = 1;
  IMM1[0x68] = I_Z;
  IMM1[0x69] = I_Z;
  IMM1[0x6a] = I_B;
  IMM1[0x6b] = I_B;
  for (let o = 0x70; o <= 0x7f; o++) IMM1[o] = I_REL8;
  IMM1[0x80] = I_B;
  IMM1[0x81] = I_Z;
  IMM1[0x82] = I_B;
  IMM1[0x83] = I_B;
  IMM1[0x9a] = I_PTR;
  for (let o = 0xa0; o <= 0xa3; o++) IMM1[o] = I_MOFFS;
  IMM1[0xa8] = I_B;
  IMM1[0xa9] = I_Z;
  for (let o = 0xb0; o <= 0xb7; o++) IMM1[o] = I_B;
  for (let o = 0xb8; o <= 0xbf; o++) IMM1[o] = I_V;
  IMM1[0xc0] = I_B;
  IMM1[0xc1] = I_B;
  IMM1[0xc2] = I_W;
  IMM1[0xc6] = I_B;
  IMM1[0xc7] = I_Z;
  IMM1[0xc8] = I_ENTER;
  IMM1[0xca] = I_W;
  IMM1[0xcd] = I_B;
  IMM1[0xd4] = I_B;
  IMM1[0xd5] = I_B;
  for (let o = 0xe0; o <= 0xe3; o++) IMM1[o] = I_REL8;
  for (let o = 0xe4; o <= 0xe7; o++) IMM1[o] = I_B;
  IMM1[0xe8] = I_REL;
  IMM1[0xe9] = I_REL;
  IMM1[0xea] = I_PTR;
  IMM1[0xeb] = I_REL8;

  // Two-byte map: ModRM everywhere except the listed ones.
  MODRM2.fill(1);
  for (const o of [
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77, 0xa0, 0xa1,
    0xa2, 0xa8, 0xa9, 0xaa,
  ]) {
    MODRM2[o] = 0;
  }
  for (let o = 0x80; o <= 0x8f; o++) {
    MODRM2[o] = 0;
    IMM2[o] = I_REL;
  }
  for (let o = 0xc8; o <= 0xcf; o++) MODRM2[o] = 0;
  for (const o of [0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]) IMM2[o] = I_B;
})();

/** One-byte opcodes whose operand size defaults to 64 bits in 64-bit mode (push/pop, near branches, ...). */
function defaults64(op: number, reg: number): boolean {
  if (op >= 0x50 && op <= 0x5f) return true;
  switch (op) {
    case 0x68:
    case 0x6a:
    case 0x8f:
    case 0x9c:
    case 0x9d:
    case 0xc8:
    case 0xc9:
    case 0x1a0:
    case 0x1a1:
    case 0x1a8:
    case 0x1a9:
      return true;
    case 0xff:
      return reg === 2 || reg === 4 || reg === 6;
  }
  return false;
}

/** Near branches: operand size forced to 64 in 64-bit mode (Intel behaviour: 66h ignored). */
function forced64(op: number, reg: number): boolean {
  if ((op >= 0x70 && op <= 0x7f) || (op >= 0x180 && op <= 0x18f)) return true;
  switch (op) {
    case 0xe8:
    case 0xe9:
    case 0xeb:
    case 0xc2:
    case 0xc3:
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3:
      return true;
    case 0xff:
      return reg === 2 || reg === 4;
  }
  return false;
}

/**
 * Byte source for the decoder: returns the byte at `index` bytes after the
 * instruction start, or -1 when the byte cannot be fetched (the caller then
 * raises the fetch fault).
 */
export type FetchByte = (index: number) => number;

/**
 * Decodes one instruction.
 * @param fetch byte source (see FetchByte)
 * @param defSize 2/4 (code segment D bit) or 8 for 64-bit mode
 * @returns the instruction, or null when a byte needed could not be fetched
 *   (`decodeInfo.failIndex` says which). Invalid encodings come back with `bad` set.
 */
export function decode(fetch: FetchByte, defSize: number, ripLo: number, ripHi: number): Insn | null {
  const d = new Insn();
  d.ripLo = ripLo;
  d.ripHi = ripHi;
  const long = defSize === 8;
  d.long = long;
  let p = 0;
  let osz16 = false;
  let asz = false;
  let b = 0;
  const next = (): number => {
    if (p >= 15) {
      d.bad = 2;
      throw TOO_LONG;
    }
    const v = fetch(p);
    if (v < 0) {
      decodeInfo.failIndex = p;
      throw FETCH_FAIL;
    }
    p++;
    return v;
  };
  try {
    // Prefixes.
    for (;;) {
      b = next();
      if (b === 0x66) osz16 = true;
      else if (b === 0x67) asz = true;
      else if (b === 0xf2 || b === 0xf3) d.rep = b;
      else if (b === 0xf0) d.lock = true;
      else if (b === 0x26) d.seg = 0;
      else if (b === 0x2e) d.seg = 1;
      else if (b === 0x36) d.seg = 2;
      else if (b === 0x3e) d.seg = 3;
      else if (b === 0x64) d.seg = 4;
      else if (b === 0x65) d.seg = 5;
      else break;
    }
    if (long) {
      // ES/CS/DS overrides are ignored in 64-bit mode; SS is kept (base 0 as well) so a
      // non-canonical address through SS: raises #SS(0) (SDM vol. 3 §6.15).
      if (d.seg >= 0 && d.seg < 4 && d.seg !== 2) d.seg = -1;
      if ((b & 0xf0) === 0x40) {
        d.rex = b;
        b = next();
        // A REX not immediately before the opcode is ignored.
        while ((b & 0xf0) === 0x40) {
          d.rex = b;
          b = next();
        }
        if (
          b === 0x66 ||
          b === 0x67 ||
          b === 0xf2 ||
          b === 0xf3 ||
          b === 0xf0 ||
          (b & 0xe7) === 0x26 ||
          b === 0x64 ||
          b === 0x65
        ) {
          // Legacy prefix after REX: REX is ignored; continue prefix scan.
          d.rex = 0;
          for (;;) {
            if (b === 0x66) osz16 = true;
            else if (b === 0x67) asz = true;
            else if (b === 0xf2 || b === 0xf3) d.rep = b;
            else if (b === 0xf0) d.lock = true;
            else if (b === 0x64) d.seg = 4;
            else if (b === 0x65) d.seg = 5;
            else if ((b & 0xe7) === 0x26) {
              /* ignored */
            } else if ((b & 0xf0) === 0x40) {
              d.rex = b;
            } else break;
            if ((b & 0xf0) !== 0x40) d.rex = 0;
            b = next();
          }
        }
      }
    }
    d.p66 = osz16;
    let op = b;
    let immKind: number;
    let hasModrm: number;
    if (b === 0x0f) {
      const b2 = next();
      if (b2 === 0x38 || b2 === 0x3a) {
        const b3 = next();
        op = (b2 === 0x38 ? 0x200 : 0x300) | b3;
        hasModrm = 1;
        immKind = b2 === 0x3a ? I_B : I_NONE;
      } else {
        op = 0x100 | b2;
        hasModrm = MODRM2[b2];
        immKind = IMM2[b2];
      }
    } else {
      hasModrm = MODRM1[b];
      immKind = IMM1[b];
      // VEX (C4/C5) in 64-bit mode, or in 32-bit mode when the next byte has mod=11: not supported -> #UD.
    }
    d.op = op;
    const rexW = (d.rex & 8) !== 0;
    d.asz = long ? (asz ? 4 : 8) : defSize === 4 ? (asz ? 2 : 4) : asz ? 4 : 2;
    if (hasModrm) {
      d.hasModrm = true;
      const m = next();
      // MOV to/from CR/DR: the r/m operand is always a register, whatever mod says.
      d.mod = op >= 0x120 && op <= 0x123 ? 3 : m >> 6;
      d.reg = ((m >> 3) & 7) | ((d.rex & 4) << 1);
      const rm = m & 7;
      if (d.mod === 3) {
        d.rm = rm | ((d.rex & 1) << 3);
      } else if (d.asz === 2) {
        d.rm = rm;
        switch (rm) {
          case 0:
            d.base = 3;
            d.index = 6;
            break;
          case 1:
            d.base = 3;
            d.index = 7;
            break;
          case 2:
            d.base = 5;
            d.index = 6;
            d.defSeg = 2;
            break;
          case 3:
            d.base = 5;
            d.index = 7;
            d.defSeg = 2;
            break;
          case 4:
            d.base = 6;
            break;
          case 5:
            d.base = 7;
            break;
          case 6:
            if (d.mod === 0) d.base = -1;
            else {
              d.base = 5;
              d.defSeg = 2;
            }
            break;
          case 7:
            d.base = 3;
            break;
        }
        if (d.mod === 0 && rm === 6) d.disp = ((next() | (next() << 8)) << 16) >> 16;
        else if (d.mod === 1) d.disp = (next() << 24) >> 24;
        else if (d.mod === 2) d.disp = ((next() | (next() << 8)) << 16) >> 16;
      } else {
        d.rm = rm | ((d.rex & 1) << 3);
        if (rm === 4) {
          const sib = next();
          d.scale = sib >> 6;
          const idx = ((sib >> 3) & 7) | ((d.rex & 2) << 2);
          d.index = idx === 4 ? -1 : idx;
          const base = (sib & 7) | ((d.rex & 1) << 3);
          if ((sib & 7) === 5 && d.mod === 0) {
            d.base = -1;
            d.disp = next32();
          } else d.base = base;
        } else if (rm === 5 && d.mod === 0) {
          d.base = -1;
          d.disp = next32();
          if (long) d.ripRel = true;
        } else {
          d.base = d.rm;
        }
        if (d.mod === 1) d.disp = (next() << 24) >> 24;
        else if (d.mod === 2) d.disp = next32();
        if (d.base === 4 || d.base === 5) d.defSeg = 2;
      }
    }
    // Operand size.
    if (long) {
      if (rexW) d.osz = 8;
      else if (forced64(op, d.reg)) d.osz = 8;
      else if (defaults64(op, d.reg)) d.osz = osz16 ? 2 : 8;
      else d.osz = osz16 ? 2 : 4;
      if (forced64(op, d.reg)) d.osz = 8;
    } else {
      d.osz = defSize === 4 ? (osz16 ? 2 : 4) : osz16 ? 4 : 2;
    }
    // Group 3 TEST has an immediate.
    if ((op === 0xf6 || op === 0xf7) && (d.reg & 7) < 2) immKind = op === 0xf6 ? I_B : I_Z;
    switch (immKind) {
      case I_B:
        d.imm = (next() << 24) >> 24;
        d.immHi = d.imm >> 31;
        break;
      case I_REL8:
        d.imm = (next() << 24) >> 24;
        break;
      case I_W:
        d.imm = next() | (next() << 8);
        break;
      case I_Z:
        if (d.osz === 2) d.imm = ((next() | (next() << 8)) << 16) >> 16;
        else d.imm = next32();
        d.immHi = d.imm >> 31;
        break;
      case I_REL:
        if (d.osz === 2) d.imm = ((next() | (next() << 8)) << 16) >> 16;
        else d.imm = next32();
        break;
      case I_V:
        if (d.osz === 2) d.imm = next() | (next() << 8);
        else if (d.osz === 4) d.imm = next32();
        else {
          d.imm = next32();
          d.immHi = next32();
        }
        break;
      case I_MOFFS:
        if (d.asz === 2) d.imm = next() | (next() << 8);
        else if (d.asz === 4) d.imm = next32();
        else {
          d.imm = next32();
          d.immHi = next32();
        }
        break;
      case I_PTR:
        if (long) d.bad = 1;
        else {
          d.imm = d.osz === 2 ? next() | (next() << 8) : next32();
          d.imm2 = next() | (next() << 8);
        }
        break;
      case I_ENTER:
        d.imm = next() | (next() << 8);
        d.imm2 = next();
        break;
    }
  } catch (e) {
    if (e === FETCH_FAIL) return null;
    if (e !== TOO_LONG) throw e;
    p = 15;
  }
  d.len = p;
  const n = (d.ripLo >>> 0) + p;
  d.nextLo = n | 0;
  d.nextHi = long ? (d.ripHi + (n > 0xffffffff ? 1 : 0)) | 0 : 0;
  if (!long) d.nextLo = defSize === 2 ? n & 0xffff : n | 0;
  return d;

  function next32(): number {
    return next() | (next() << 8) | (next() << 16) | (next() << 24);
  }
}

const FETCH_FAIL = { fetchFail: true };
const TOO_LONG = { tooLong: true };
/** `failIndex`: bytes from the instruction start of the byte that could not be fetched by the last failed `decode`. */
export const decodeInfo = { failIndex: 0 };
