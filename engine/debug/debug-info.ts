/**
 * What the debugger knows about the guest's code: symbols (engine/image
 * symbols.ts) and DWARF line tables (engine/image/dwarf.ts) of the kernel and
 * of extra `symbols` ELF files, each with a load offset (bytes added to every
 * address).
 */
import { isElf, parseElf } from '../image/elf';
import { SymbolTable, type SymbolLookup } from '../image/symbols';
import { LineTable, type SourceLocation } from '../image/dwarf';

/** Symbols and line tables over any number of ELF files. */
export class DebugInfo {
  readonly symbols = new SymbolTable();
  private readonly lines: LineTable[] = [];

  /**
   * Adds an ELF file's symbols and line tables, shifted by `offset` bytes.
   * Returns false (adding nothing) when `bytes` is not ELF. Throws Error
   * (ImageError) when the ELF or its DWARF is malformed; symbols already read
   * from a file whose DWARF is malformed are kept.
   */
  addElf(bytes: Uint8Array, offset = 0n, source?: string): boolean {
    if (!isElf(bytes)) return false;
    const elf = parseElf(bytes);
    this.symbols.merge(SymbolTable.fromElf(elf, { offset, source }));
    const lt = LineTable.fromElf(elf, offset);
    if (lt.files().length > 0) this.lines.push(lt);
    return true;
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
