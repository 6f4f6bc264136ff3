/**
 * Disassembly for the DAP `disassemble` request and the stepping logic,
 * through iced-x86 in GNU assembler (AT&T) syntax, the syntax of objdump -d
 * and GDB's default, which kernel developers read daily.
 *
 * iced-x86 loads its WebAssembly file next to its own script, so it is
 * required at run time from node_modules rather than bundled.
 */
import { createRequire } from 'node:module';
import type * as Iced from 'iced-x86';

let iced: typeof Iced | undefined;

function lib(): typeof Iced {
  if (!iced) {
    const req = createRequire(__filename);
    iced = req('iced-x86') as typeof Iced;
  }
  return iced;
}

/** One decoded instruction. */
export interface DecodedInstruction {
  address: bigint;
  length: number;
  bytes: Uint8Array;
  /** AT&T text, e.g. `mov $0x1,%eax`; `(bad)` for undecodable bytes. */
  text: string;
  invalid: boolean;
  /** 'call', 'ret', 'jump', 'cond-jump', 'syscall', 'int', 'other' */
  flow: 'call' | 'ret' | 'jump' | 'cond-jump' | 'syscall' | 'int' | 'other';
  /** Near branch target for direct calls/jumps. */
  target?: bigint;
}

let formatter: Iced.Formatter | undefined;

/**
 * Decodes instructions from `bytes` (which start at guest virtual `address`)
 * in `bitness` 16/32/64 mode, at most `max` instructions. Undecodable bytes
 * become one-byte `(bad)` entries. Never throws for bad input.
 */
export function decode(
  bytes: Uint8Array,
  address: bigint,
  bitness: 16 | 32 | 64,
  max: number,
): DecodedInstruction[] {
  const L = lib();
  const out: DecodedInstruction[] = [];
  if (bytes.length === 0 || max <= 0) return out;
  if (!formatter) {
    formatter = new L.Formatter(L.FormatterSyntax.Gas);
    formatter.firstOperandCharIndex = 0;
    formatter.smallHexNumbersInDecimal = false;
    formatter.uppercaseHex = false;
    formatter.hexPrefix = '0x';
    formatter.hexSuffix = '';
    formatter.branchLeadingZeros = false;
    formatter.leadingZeros = false;
  }
  const decoder = new L.Decoder(bitness, bytes, L.DecoderOptions.None);
  decoder.ip = address;
  let pos = 0;
  try {
    while (out.length < max && pos < bytes.length) {
      const ins = decoder.decode();
      const len = ins.length;
      const ip = address + BigInt(pos);
      if (ins.isInvalid || len === 0 || pos + len > bytes.length) {
        const truncated = !ins.isInvalid && pos + len > bytes.length;
        ins.free();
        if (truncated) break;
        out.push({
          address: ip,
          length: 1,
          bytes: bytes.subarray(pos, pos + 1),
          text: '(bad)',
          invalid: true,
          flow: 'other',
        });
        pos += 1;
        decoder.position = pos;
        decoder.ip = address + BigInt(pos);
        continue;
      }
      const fc = ins.flowControl;
      let flow: DecodedInstruction['flow'] = 'other';
      let target: bigint | undefined;
      const mn = ins.mnemonic;
      if (mn === L.Mnemonic.Syscall || mn === L.Mnemonic.Sysenter) flow = 'syscall';
      else if (fc === L.FlowControl.Call || fc === L.FlowControl.IndirectCall) flow = 'call';
      else if (fc === L.FlowControl.Return) flow = 'ret';
      else if (fc === L.FlowControl.UnconditionalBranch || fc === L.FlowControl.IndirectBranch) flow = 'jump';
      else if (fc === L.FlowControl.ConditionalBranch) flow = 'cond-jump';
      else if (fc === L.FlowControl.Interrupt) flow = 'int';
      if (
        (fc === L.FlowControl.Call ||
          fc === L.FlowControl.UnconditionalBranch ||
          fc === L.FlowControl.ConditionalBranch) &&
        ins.op0Kind !== L.OpKind.Register &&
        ins.op0Kind !== L.OpKind.Memory
      ) {
        try {
          target = ins.nearBranchTarget;
        } catch {
          target = undefined;
        }
      }
      const text = formatter.format(ins);
      out.push({
        address: ip,
        length: len,
        bytes: bytes.subarray(pos, pos + len),
        text,
        invalid: false,
        flow,
        target: target === 0n && flow === 'other' ? undefined : target,
      });
      ins.free();
      pos += len;
    }
  } finally {
    decoder.free();
  }
  return out;
}

/** Space-separated hex of instruction bytes, e.g. `48 89 e5`. */
export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}
