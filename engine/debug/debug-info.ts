/**
 * What the debugger knows about the guest's code: symbols (engine/image
 * symbols.ts) and DWARF line tables (engine/image/dwarf.ts) of the kernel and
 * of extra `symbols` ELF files, each with a load offset (bytes added to every
 * address).
 */
import { SymbolTable, type SymbolLookup } from '../image/symbols';
import type { LineTable, SourceLocation } from '../image/dwarf';
import type { CallFrameInfo, UnwindStep } from '../image/cfi';
import { loadSymbolFile } from '../image/debug-info';

/** Symbols and line tables over any number of ELF files. */
export class DebugInfo {
  readonly symbols = new SymbolTable();
  private readonly lines: LineTable[] = [];
  private readonly frames: CallFrameInfo[] = [];

  /**
   * Adds a symbol file through engine/image `loadSymbolFile`: an ELF (also
   * inside a bzImage or gzip) gives symbols, DWARF line table and call frame
   * information; other files are read as kallsyms/System.map text. `offset`
   * (bytes) is added to every address. Returns the loader's warnings (e.g.
   * unusable DWARF). Throws ImageError when the file is unreadable.
   */
  addFile(bytes: Uint8Array, offset = 0n, name?: string): string[] {
    const f = loadSymbolFile(bytes, { name, offset });
    this.symbols.merge(f.symbols);
    if (f.lines && f.lines.files().length > 0) this.lines.push(f.lines);
    if (f.frames) this.frames.push(f.frames);
    return f.warnings;
  }

  /** Adds an already built symbol table (e.g. the one the engine read from the kernel image). */
  addSymbols(table: SymbolTable): void {
    this.symbols.merge(table);
  }

  /**
   * One CFI unwinding step at `pc` (engine/image/cfi.ts), from the first file
   * whose call frame information covers it; undefined when none does or a
   * needed value is unknown. `callerFrame`: `pc` is a return address.
   */
  cfiStep(
    pc: bigint,
    readReg: (reg: number) => bigint | undefined,
    readMem: (addr: bigint, size: number) => bigint | undefined,
    callerFrame: boolean,
  ): UnwindStep | undefined {
    for (const f of this.frames) {
      if (!f.findFde(callerFrame ? pc - 1n : pc)) continue;
      try {
        return f.unwindStep(pc, readReg, readMem, callerFrame);
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** True when some file carried DWARF line information. */
  get hasLines(): boolean {
    return this.lines.length > 0;
  }

  /** Symbol containing `addr` with the offset into it. */
  lookup(addr: bigint): SymbolLookup | undefined {
    return this.symbols.lookup(addr);
  }

  /** Address of symbol `name`. */
  resolve(name: string): bigint | undefined {
    return this.symbols.resolve(name);
  }

  /** `name+0x1f` for an address, or undefined. */
  format(addr: bigint): string | undefined {
    return this.symbols.describe(addr);
  }

  /** Source position of `addr`, from the first line table that covers it. */
  addressToLine(addr: bigint): SourceLocation | undefined {
    for (const t of this.lines) {
      const l = t.addressToLine(addr);
      if (l) return l;
    }
    return undefined;
  }

  /** Where a breakpoint at file:line lands (first later line with code), with its addresses. */
  resolveBreakpoint(file: string, line: number): { line: number; addresses: bigint[] } | undefined {
    for (const t of this.lines) {
      const r = t.resolveBreakpoint(file, line);
      if (r && r.addresses.length > 0) return r;
    }
    return undefined;
  }

  /** Statement addresses of exactly file:line (all tables). */
  lineToAddresses(file: string, line: number): bigint[] {
    const out: bigint[] = [];
    for (const t of this.lines) out.push(...t.lineToAddresses(file, line));
    return out;
  }
}
