/**
 * Random "valid-ish" x86 encodings for decoder agreement tests: legacy
 * prefixes, REX (64-bit), one-byte / 0F / 0F 38 / 0F 3A opcodes, then random
 * ModRM, SIB, displacement and immediate bytes. Deterministic in the Rng.
 *
 * Also the bridge to iced-x86 used by the tests: `icedGpr` maps an iced
 * `Register` to the engine's GPR number (ModRM order), and `CORE_FEATURES`
 * lists the CPUID features of the general-purpose and system instructions
 * a PV kernel uses (the engine is expected to decode all of them).
 */
import { CpuidFeature, Register } from 'iced-x86';
import type { Rng } from './x86-gen';

export type DecodeBitness = 16 | 32 | 64;

const LEGACY_PREFIXES = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65];

/** Bytes returned by `randomEncoding` (longer than any instruction, so decoders never run out). */
export const ENCODING_BUFFER = 24;

/**
 * One random encoding of `ENCODING_BUFFER` bytes: the instruction is at the
 * start; trailing bytes are random.
 */
export function randomEncoding(rng: Rng, bitness: DecodeBitness): Uint8Array {
  const out: number[] = [];
  const np = rng.bool(0.5) ? 0 : rng.bool(0.6) ? 1 : 2 + rng.int(3);
  for (let i = 0; i < np; i++) out.push(rng.pick(LEGACY_PREFIXES));
  if (bitness === 64 && rng.bool(0.4)) {
    const rex = 0x40 | rng.int(16);
    // Usually right before the opcode; sometimes (ignored by the CPU) before a legacy prefix.
    if (out.length && rng.bool(0.05)) out.splice(rng.int(out.length), 0, rex);
    else out.push(rex);
  }
  const map = rng.int(20);
  if (map < 12) out.push(rng.int(256));
  else if (map < 18) out.push(0x0f, rng.int(256));
  else if (map < 19) out.push(0x0f, 0x38, rng.int(256));
  else out.push(0x0f, 0x3a, rng.int(256));
  // ModRM: favour memory forms with SIB and displacements a little.
  const r = rng.int(4);
  if (r === 0) out.push((rng.int(3) << 6) | (rng.int(8) << 3) | 4);
  else out.push(rng.int(256));
  while (out.length < ENCODING_BUFFER) out.push(rng.int(256));
  return Uint8Array.from(out.slice(0, ENCODING_BUFFER));
}

const GPR_NAMES: string[][] = [
  ['RAX', 'EAX', 'AX', 'AL'],
  ['RCX', 'ECX', 'CX', 'CL'],
  ['RDX', 'EDX', 'DX', 'DL'],
  ['RBX', 'EBX', 'BX', 'BL'],
  ['RSP', 'ESP', 'SP', 'SPL'],
  ['RBP', 'EBP', 'BP', 'BPL'],
  ['RSI', 'ESI', 'SI', 'SIL'],
  ['RDI', 'EDI', 'DI', 'DIL'],
];
const gprIndex = new Map<string, number>();
GPR_NAMES.forEach((names, i) => names.forEach((n) => gprIndex.set(n, i)));
for (let i = 8; i < 16; i++) for (const s of ['', 'D', 'W', 'L']) gprIndex.set(`R${i}${s}`, i);

/** Engine GPR number of an iced register (-1 for None, -2 for RIP/EIP, -3 for anything else). */
export function icedGpr(r: Register): number {
  if (r === Register.None) return -1;
  if (r === Register.RIP || r === Register.EIP) return -2;
  return gprIndex.get(Register[r]) ?? -3;
}

/**
 * CPUID features of instructions the engine must decode: the 8086-486
 * integer and system instructions, x86-64, CMOV, CMPXCHG8B/16B, CPUID,
 * RDMSR/WRMSR, RDTSC(P), SYSCALL/SYSENTER, multi-byte NOP, PAUSE, POPCNT,
 * LZCNT, CLFLUSH (what the default CPUID advertises). An instruction counts
 * as core when ALL its features are in this set.
 */
export const CORE_FEATURES = new Set<number>([
  CpuidFeature.INTEL8086,
  CpuidFeature.INTEL186,
  CpuidFeature.INTEL286,
  CpuidFeature.INTEL386,
  CpuidFeature.INTEL486,
  CpuidFeature.X64,
  CpuidFeature.CMOV,
  CpuidFeature.CX8,
  CpuidFeature.CMPXCHG16B,
  CpuidFeature.CPUID,
  CpuidFeature.MSR,
  CpuidFeature.TSC,
  CpuidFeature.RDTSCP,
  CpuidFeature.SYSCALL,
  CpuidFeature.SEP,
  CpuidFeature.MULTIBYTENOP,
  CpuidFeature.PAUSE,
  CpuidFeature.POPCNT,
  CpuidFeature.LZCNT,
  CpuidFeature.CLFSH,
]);
