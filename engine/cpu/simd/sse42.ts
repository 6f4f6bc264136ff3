/**
 * SSE4.2 and the integer instructions that live in the 0F 38 F0/F1 slots
 * (Intel SDM vol. 2): PCMPGTQ (66 0F 38 37), the string compares
 * PCMPESTRM/PCMPESTRI/PCMPISTRM/PCMPISTRI (66 0F 3A 60-63, SDM vol. 2 §4.1
 * "Imm8 Control Byte Operation for PCMPESTRI / PCMPESTRM / PCMPISTRI /
 * PCMPISTRM"), CRC32 (F2 0F 38 F0/F1, CRC-32C polynomial 11EDC6F41H) and
 * MOVBE (0F 38 F0/F1 without F2). CRC32 and MOVBE touch no FPU/SSE state
 * (kind INT: no CR0/CR4 checks).
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { getR, operandAddress, readRm, setR, undefinedOpcode } from '../ops/operands';
import { readRm128 } from './operands';
import { defineSimd, Pfx, SimdKind } from './table';
import { pcmpgtq, xmmBinary } from './sse-int';

const S1 = new ArrayBuffer(16);
const S2 = new ArrayBuffer(16);
const S1_32 = new Int32Array(S1);
const S2_32 = new Int32Array(S2);
const S1u8 = new Uint8Array(S1);
const S1s8 = new Int8Array(S1);
const S1u16 = new Uint16Array(S1);
const S1s16 = new Int16Array(S1);
const S2u8 = new Uint8Array(S2);
const S2s8 = new Int8Array(S2);
const S2u16 = new Uint16Array(S2);
const S2s16 = new Int16Array(S2);
/** Element values of the two operands (signedness applied). */
const E1 = new Int32Array(16);
const E2 = new Int32Array(16);

/** Number of elements before the first zero element of `e` (implicit length), at most `n`. */
function implicitLength(e: Int32Array, n: number): number {
  for (let i = 0; i < n; i++) if (e[i] === 0) return i;
  return n;
}

/** |RAX| or |EAX| (or RDX/EDX) saturated to `n` (SDM: explicit lengths are absolute values, saturating). */
function explicitLength(cpu: Cpu, d: Insn, reg: number, n: number): number {
  const lo = cpu.state.gprLo[reg];
  let v: number;
  if (d.rex & 8) v = cpu.state.gprHi[reg] * 4294967296 + (lo >>> 0);
  else v = lo;
  v = Math.abs(v);
  return v > n ? n : v;
}

/**
 * Runs one string compare: operands from XMMreg (src1) and XMMrm/m128
 * (src2, no alignment requirement), control byte `imm`, lengths explicit
 * (EAX/EDX, REX.W: RAX/RDX) or implicit (first null element). Returns
 * IntRes2 (bit i = element i) and sets CF, ZF, SF, OF (AF = PF = 0).
 */
function compareStrings(cpu: Cpu, d: Insn, explicit: boolean): number {
  readRm128(cpu, d, false, S2_32, 0);
  const x = cpu.state.xmm;
  const r = d.reg << 2;
  S1_32[0] = x[r];
  S1_32[1] = x[r + 1];
  S1_32[2] = x[r + 2];
  S1_32[3] = x[r + 3];
  const imm = d.imm & 0xff;
  const words = (imm & 1) !== 0;
  const signed = (imm & 2) !== 0;
  const n = words ? 8 : 16;
  for (let i = 0; i < n; i++) {
    if (words) {
      E1[i] = signed ? S1s16[i] : S1u16[i];
      E2[i] = signed ? S2s16[i] : S2u16[i];
    } else {
      E1[i] = signed ? S1s8[i] : S1u8[i];
      E2[i] = signed ? S2s8[i] : S2u8[i];
    }
  }
  let len1: number, len2: number;
  if (explicit) {
    len1 = explicitLength(cpu, d, 0, n);
    len2 = explicitLength(cpu, d, 2, n);
  } else {
    len1 = implicitLength(E1, n);
    len2 = implicitLength(E2, n);
  }
  let res1 = 0;
  switch ((imm >> 2) & 3) {
    case 0: // equal any: src2[j] is one of src1[0..len1)
      for (let j = 0; j < len2; j++)
        for (let i = 0; i < len1; i++)
          if (E1[i] === E2[j]) {
            res1 |= 1 << j;
            break;
          }
      break;
    case 1: // ranges: src1 holds (low, high) pairs
      for (let j = 0; j < len2; j++)
        for (let i = 0; i + 1 < len1; i += 2)
          if (E2[j] >= E1[i] && E2[j] <= E1[i + 1]) {
            res1 |= 1 << j;
            break;
          }
      break;
    case 2: // equal each: both invalid -> true, one invalid -> false
      for (let i = 0; i < n; i++) {
        const v1 = i < len1,
          v2 = i < len2;
        if (v1 && v2 ? E1[i] === E2[i] : !v1 && !v2) res1 |= 1 << i;
      }
      break;
    default: // equal ordered: src1 (needle) found at src2[j]
      for (let j = 0; j < n; j++) {
        let ok = true;
        for (let i = 0; i < n - j && ok; i++) {
          const k = i + j;
          if (i >= len1) break; // needle element invalid: true for the rest
          if (k >= len2)
            ok = false; // haystack ended while the needle did not
          else if (E1[i] !== E2[k]) ok = false;
        }
        if (ok) res1 |= 1 << j;
      }
  }
  const all = words ? 0xff : 0xffff;
  let res2: number;
  switch ((imm >> 4) & 3) {
    case 1:
      res2 = ~res1 & all;
      break;
    case 3:
      res2 = res1 ^ ((1 << len2) - 1);
      break;
    default:
      res2 = res1;
  }
  cpu.setArith((res2 !== 0 ? 1 : 0) | (len2 < n ? 0x40 : 0) | (len1 < n ? 0x80 : 0) | (res2 & 1 ? 0x800 : 0));
  return res2;
}

/** PCMPxSTRI: ECX = least (imm8[6] = 0) or most significant set bit of IntRes2, or the element count if none. */
function strIndex(explicit: boolean) {
  return (cpu: Cpu, d: Insn): number => {
    const res = compareStrings(cpu, d, explicit);
    const n = d.imm & 1 ? 8 : 16;
    let idx = n;
    if (res !== 0) idx = d.imm & 0x40 ? 31 - Math.clz32(res) : 31 - Math.clz32(res & -res);
    setR(cpu, d, 4, 1, idx, 0);
    return 1;
  };
}

/** PCMPxSTRM: XMM0 = IntRes2 as a bit mask (imm8[6] = 0) or expanded to byte/word masks (imm8[6] = 1). */
function strMask(explicit: boolean) {
  return (cpu: Cpu, d: Insn): number => {
    const res = compareStrings(cpu, d, explicit);
    const x = cpu.state.xmm;
    if (d.imm & 0x40) {
      const u8 = cpu.state.xmmU8;
      if (d.imm & 1) {
        for (let i = 0; i < 8; i++) u8[2 * i] = u8[2 * i + 1] = (res >> i) & 1 ? 0xff : 0;
      } else for (let i = 0; i < 16; i++) u8[i] = (res >> i) & 1 ? 0xff : 0;
    } else {
      x[0] = res;
      x[1] = x[2] = x[3] = 0;
    }
    return 1;
  };
}

/** CRC-32C table, reflected polynomial 82F63B78H (SDM CRC32: polynomial 11EDC6F41H, bit-reflected). */
const CRC_TABLE = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  CRC_TABLE[i] = c;
}

function crcBytes(crc: number, v: number, bytes: number): number {
  for (let i = 0; i < bytes; i++) {
    crc = CRC_TABLE[(crc ^ v) & 0xff] ^ (crc >>> 8);
    v >>>= 8;
  }
  return crc;
}

/** Byte-swaps the low `s` (2 or 4) bytes of v. */
function bswap(v: number, s: number): number {
  if (s === 2) return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

/** Registers PCMPGTQ, PCMPESTRx/PCMPISTRx, CRC32 and MOVBE. */
export function registerSse42(): void {
  const S = SimdKind.SSE;
  defineSimd(0x237, Pfx.P66, S, xmmBinary(pcmpgtq));
  defineSimd(0x360, Pfx.P66, S, strMask(true));
  defineSimd(0x361, Pfx.P66, S, strIndex(true));
  defineSimd(0x362, Pfx.P66, S, strMask(false));
  defineSimd(0x363, Pfx.P66, S, strIndex(false));

  // CRC32 r32/r64, r/m8 (F2 [REX.W] 0F 38 F0) and r/m16/32/64 (F2 [66|REX.W] 0F 38 F1).
  // The destination is the 32-bit accumulator; a 32-bit result zero-extends the 64-bit register.
  const crc = (cpu: Cpu, d: Insn, s: number): number => {
    let v: number,
      vh = 0;
    if (d.mod === 3) {
      v = getR(cpu, d, s, d.rm);
      if (s === 8) vh = cpu.tmpHi;
    } else {
      v = readRm(cpu, d, s);
      if (s === 8) vh = cpu.tmpHi;
    }
    let c = cpu.state.gprLo[d.reg];
    c = crcBytes(c, v, s > 4 ? 4 : s);
    if (s === 8) c = crcBytes(c, vh, 4);
    setR(cpu, d, 4, d.reg, c, 0);
    return 1;
  };
  defineSimd(0x2f0, Pfx.F2, SimdKind.INT, (cpu, d) => crc(cpu, d, 1));
  defineSimd(0x2f1, Pfx.F2, SimdKind.INT, (cpu, d) => crc(cpu, d, d.osz));

  // MOVBE r, m (0F 38 F0) and MOVBE m, r (0F 38 F1): memory operand only; 66 gives 16 bits.
  const movbe = (store: boolean) => {
    return (cpu: Cpu, d: Insn): number => {
      if (d.mod === 3) return undefinedOpcode(cpu, d);
      const s = d.osz;
      if (store) {
        const v = getR(cpu, d, s, d.reg);
        const vh = cpu.tmpHi;
        const a = operandAddress(cpu, d, s, true);
        if (s === 8) cpu.wrS(a, cpu.tmpHi, 8, bswap(vh, 4), bswap(v, 4));
        else cpu.wrS(a, cpu.tmpHi, s, bswap(v, s), 0);
      } else {
        const v = readRm(cpu, d, s);
        if (s === 8) setR(cpu, d, 8, d.reg, bswap(cpu.tmpHi, 4), bswap(v, 4));
        else setR(cpu, d, s, d.reg, bswap(v, s), 0);
      }
      return 1;
    };
  };
  defineSimd(0x2f0, Pfx.NONE, SimdKind.INT, movbe(false));
  defineSimd(0x2f1, Pfx.NONE, SimdKind.INT, movbe(true));
  defineSimd(0x2f0, Pfx.P66, SimdKind.INT, movbe(false));
  defineSimd(0x2f1, Pfx.P66, SimdKind.INT, movbe(true));
}
