/**
 * Debug information for the debugger, gathered from the kernel image and any
 * extra symbol files (ELF with optional DWARF, or kallsyms/System.map text),
 * each with a load offset.
 */
import { LineTable, SourceLocation } from './dwarf';
import { CallFrameInfo, UnwindStep } from './cfi';
import { isElf, parseElf } from './elf';
import { ImageError } from './errors';
import { SymbolLookup, SymbolTable } from './symbols';
import { unwrapKernelImage } from './unwrap';

/** One loaded symbol source. */
export interface SymbolFile {
  /** Label (file name) for messages. */
  name: string;
  kind: 'elf' | 'kallsyms';
  /** Load offset added to every address (bytes). */
  offset: bigint;
  symbols: SymbolTable;
  /** DWARF line table (ELF only; empty without .debug_line). */
  lines?: LineTable;
  /** Call frame information (ELF only). */
  frames?: CallFrameInfo;
  /** Problems that did not stop loading (e.g. malformed DWARF: symbols still usable). */
  warnings: string[];
}

/**
 * Reads a symbol file: an ELF (also inside a bzImage or gzip) gives symbols,
 * line table and CFI; anything else is read as kallsyms/System.map text.
 * Malformed DWARF/CFI is reported in `warnings` instead of failing the file.
 * @param offset load offset (bytes) added to every address; default 0.
 * @throws ImageError when the file is neither a readable ELF nor symbol text.
 */
export function loadSymbolFile(bytes: Uint8Array, opts: { name?: string; offset?: bigint } = {}): SymbolFile {
  const name = opts.name ?? 'symbols';
  const offset = opts.offset ?? 0n;
  let elfBytes: Uint8Array | undefined;
  if (isElf(bytes)) elfBytes = bytes;
  else {
    try {
      elfBytes = unwrapKernelImage(bytes).elfBytes;
    } catch {
      elfBytes = undefined;
    }
  }
  if (elfBytes) {
    const elf = parseElf(elfBytes);
    const warnings: string[] = [];
    const symbols = SymbolTable.fromElf(elf, { offset, source: name });
    let lines: LineTable | undefined;
    let frames: CallFrameInfo | undefined;
    try {
      lines = LineTable.fromElf(elf, offset);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      warnings.push(`${name}: line table not usable: ${e.message}`);
    }
    try {
      frames = CallFrameInfo.fromElf(elf, offset);
    } catch (e) {
      if (!(e instanceof ImageError)) throw e;
      warnings.push(`${name}: call frame information not usable: ${e.message}`);
    }
    return { name, kind: 'elf', offset, symbols, lines, frames, warnings };
  }
  // Text: refuse binary junk early (NUL bytes), then parse lines.
  if (bytes.subarray(0, 4096).includes(0))
    throw new ImageError(`${name}: neither an ELF file nor a kallsyms/System.map text file`);
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  const symbols = SymbolTable.fromKallsyms(text, { offset, source: name });
  const warnings = symbols.skippedLines ? [`${name}: ${symbols.skippedLines} malformed lines ignored`] : [];
  return { name, kind: 'kallsyms', offset, symbols, warnings };
}

/** Several symbol files queried together (earlier files win). */
export class SymbolFileSet {
  readonly files: SymbolFile[] = [];

  /** Adds a loaded file. */
  add(file: SymbolFile): this {
    this.files.push(file);
    return this;
  }

  /** Nearest symbol covering `addr` in the first file that has one. */
  lookup(addr: bigint): SymbolLookup | undefined {
    for (const f of this.files) {
      const l = f.symbols.lookup(addr);
      if (l) return l;
    }
    return undefined;
  }

  /** Address of `name` in the first file that defines it. */
  resolve(name: string): bigint | undefined {
    for (const f of this.files) {
      const a = f.symbols.resolve(name);
      if (a !== undefined) return a;
    }
    return undefined;
  }

  /** Source position of `addr` from the first line table that covers it. */
  addressToLine(addr: bigint): SourceLocation | undefined {
    for (const f of this.files) {
      const l = f.lines?.addressToLine(addr);
      if (l) return l;
    }
    return undefined;
  }

  /** Statement addresses of file:line across every line table. */
  lineToAddresses(file: string, line: number): bigint[] {
    const out: bigint[] = [];
    for (const f of this.files) if (f.lines) out.push(...f.lines.lineToAddresses(file, line));
    return out;
  }

  /** One unwinding step using the first file whose CFI covers `pc`. */
  unwindStep(
    pc: bigint,
    readReg: (reg: number) => bigint | undefined,
    readMem: (addr: bigint, size: number) => bigint | undefined,
    callerFrame = false,
  ): UnwindStep | undefined {
    for (const f of this.files) {
      const s = f.frames?.unwindStep(pc, readReg, readMem, callerFrame);
      if (s) return s;
    }
    return undefined;
  }
}
