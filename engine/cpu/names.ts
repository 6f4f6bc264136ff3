/**
 * Names of instructions the core does not implement (x87, SSE, unknown
 * opcodes), for `CpuApi.exitDetail`. Cold path: uses the iced-x86
 * disassembler when it loads, else falls back to the opcode bytes.
 */
import type { Cpu } from './cpu';
import type { Insn } from './decoder';

type Iced = typeof import('iced-x86');
let iced: Iced | null | undefined;

function loadIced(): Iced | null {
  if (iced === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      iced = require('iced-x86') as Iced;
    } catch {
      iced = null;
    }
  }
  return iced;
}

/** Reads the instruction's bytes (up to its length) without side effects; stops at an unmapped byte. */
function insnBytes(cpu: Cpu, d: Insn): Uint8Array {
  const out: number[] = [];
  const csBase = cpu.curMode === 5 ? 0 : cpu.state.segBaseLo[1];
  for (let i = 0; i < Math.max(1, d.len); i++) {
    const n = (d.ripLo >>> 0) + csBase + i;
    const lo = n | 0;
    const hi = d.long ? (d.ripHi + (n > 0xffffffff ? 1 : 0)) | 0 : 0;
    const off = cpu.translate(lo, hi, 2, cpu.state.cpl === 3, false);
    if (off < 0) break;
    out.push(cpu.mem.u8[off]);
  }
  return Uint8Array.from(out);
}

/**
 * Human-readable name of instruction `d`, e.g. "fld st(0), ..." or "movaps xmm0,xmm1".
 * Never throws.
 */
export function insnName(cpu: Cpu, d: Insn): string {
  let bytes: Uint8Array;
  try {
    bytes = insnBytes(cpu, d);
  } catch {
    return 'unknown instruction';
  }
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const lib = loadIced();
  if (lib && bytes.length) {
    try {
      const bitness = d.long ? 64 : cpu.defSize === 2 ? 16 : 32;
      const dec = new lib.Decoder(bitness, bytes, lib.DecoderOptions.None);
      const ins = dec.decode();
      const fmt = new lib.Formatter(lib.FormatterSyntax.Intel);
      const text = fmt.format(ins);
      ins.free();
      dec.free();
      fmt.free();
      if (text && !text.startsWith('(bad)')) return text;
    } catch {
      /* fall through */
    }
  }
  return `opcode ${hex || '??'}`;
}
