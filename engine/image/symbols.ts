/**
 * Symbol tables for the debugger: from ELF .symtab/.dynsym, from Linux
 * `/proc/kallsyms` text and from System.map files, each with an optional load
 * offset. Lookups use sorted arrays and binary search.
 */
import { ElfFile, STT_FILE, STT_FUNC, STT_OBJECT, STT_SECTION, STT_TLS, SHN_UNDEF } from './elf';
import { ImageError } from './errors';

const U64 = (1n << 64n) - 1n;

/** One symbol of a {@link SymbolTable}. */
export interface SymbolEntry {
  name: string;
  /** Address after the load offset (mod 2^64). */
  address: bigint;
  /** Size in bytes; 0 when unknown (kallsyms, System.map, assembler labels). */
  size: bigint;
  /** function (STT_FUNC, kallsyms t/T), object (STT_OBJECT, d/D/b/B/r/R), other. */
  kind: 'function' | 'object' | 'other';
  /** True for global or weak binding (kallsyms upper-case type). */
  global: boolean;
  /** Where it came from: a file name, 'kallsyms', ... (informational). */
  source?: string;
  /** Kernel module name for kallsyms lines with a `[module]` suffix. */
  module?: string;
}

/** Result of {@link SymbolTable.lookup}. */
export interface SymbolLookup {
  name: string;
  /** addr - symbol address, bytes. */
  offset: bigint;
  symbol: SymbolEntry;
}

/** Options for building a table. */
export interface SymbolSourceOptions {
  /** Added to every address (mod 2^64), e.g. the load offset of a `symbols` file given to the debugger. Default 0. */
  offset?: bigint;
  /** Label kept in {@link SymbolEntry.source}. */
  source?: string;
}

function rank(e: SymbolEntry): number {
  return (
    (e.kind === 'function' ? 4 : e.kind === 'object' ? 2 : 0) + (e.global ? 1 : 0) + (e.size > 0n ? 8 : 0)
  );
}

/**
 * A searchable set of symbols. Build with {@link SymbolTable.fromElf},
 * {@link SymbolTable.fromKallsyms} or {@link SymbolTable.add}; query with
 * {@link SymbolTable.lookup} (address to name+offset) and
 * {@link SymbolTable.resolve} (name to address).
 */
export class SymbolTable {
  private list: SymbolEntry[] = [];
  private sorted = true;
  private byName = new Map<string, SymbolEntry>();
  /** Malformed lines ignored by {@link SymbolTable.fromKallsyms}. */
  skippedLines = 0;

  /** Number of symbols. */
  get size(): number {
    return this.list.length;
  }

  /** All symbols, sorted by address (then preference). */
  entries(): readonly SymbolEntry[] {
    this.sort();
    return this.list;
  }

  /** Adds symbols (addresses already including any offset). */
  add(entries: Iterable<SymbolEntry>): this {
    for (const e of entries) {
      this.list.push(e);
      const prev = this.byName.get(e.name);
      if (!prev || (!prev.global && e.global)) this.byName.set(e.name, e);
    }
    this.sorted = false;
    return this;
  }

  /** Adds every symbol of another table. */
  merge(other: SymbolTable): this {
    return this.add(other.list);
  }

  /**
   * Function and object symbols of an ELF file (.symtab then .dynsym), skipping
   * undefined, section and file symbols and unnamed entries.
   */
  static fromElf(elf: ElfFile, opts: SymbolSourceOptions = {}): SymbolTable {
    const off = opts.offset ?? 0n;
    const t = new SymbolTable();
    const seen = new Set<string>();
    const out: SymbolEntry[] = [];
    for (const s of elf.symbols) {
      if (
        !s.name ||
        s.shndx === SHN_UNDEF ||
        s.type === STT_SECTION ||
        s.type === STT_FILE ||
        s.type === STT_TLS
      )
        continue;
      if (s.name.startsWith('$')) continue;
      const key = `${s.name}@${s.value}`;
      if (seen.has(key)) continue; // .dynsym repeats .symtab
      seen.add(key);
      out.push({
        name: s.name,
        address: (s.value + off) & U64,
        size: s.size,
        kind: s.type === STT_FUNC ? 'function' : s.type === STT_OBJECT ? 'object' : 'other',
        global: s.bind === 1 || s.bind === 2,
        source: opts.source,
      });
    }
    return t.add(out);
  }

  /**
   * Parses `/proc/kallsyms` or System.map text: lines "<hex address> <type> <name>[\t[module]]".
   * Undefined (U), absolute (a/A) and debugging (N/n) entries are skipped; blank
   * and malformed lines are ignored (counted in {@link SymbolTable.skippedLines}).
   * @throws ImageError naming the first malformed line (1-based) when no line is valid.
   */
  static fromKallsyms(text: string, opts: SymbolSourceOptions = {}): SymbolTable {
    const off = opts.offset ?? 0n;
    const out: SymbolEntry[] = [];
    const lines = text.split('\n');
    let firstBad: { n: number; line: string } | undefined;
    let valid = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      if (line === '') continue;
      const m = /^([0-9a-fA-F]{1,16})\s+([A-Za-z?])\s+(\S+)(?:\s+\[(\S+)\])?$/.exec(line);
      if (!m) {
        firstBad ??= { n: i + 1, line };
        continue;
      }
      valid++;
      const type = m[2];
      const addr = BigInt('0x' + m[1]);
      if ('UAaNn'.includes(type)) continue;
      if ((type === 'w' || type === 'v') && addr === 0n) continue; // undefined weak
      const lower = type.toLowerCase();
      out.push({
        name: m[3],
        address: (addr + off) & U64,
        size: 0n,
        kind: lower === 't' || lower === 'w' ? 'function' : 'dbrgsv'.includes(lower) ? 'object' : 'other',
        global: type !== lower,
        source: opts.source ?? 'kallsyms',
        module: m[4],
      });
    }
    if (valid === 0 && firstBad)
      throw new ImageError(
        `not a kallsyms/System.map file: line ${firstBad.n} is not "<address> <type> <name>": ${JSON.stringify(firstBad.line.slice(0, 80))}`,
      );
    const t = new SymbolTable().add(out);
    t.skippedLines = firstBad ? lines.filter((l) => l.trim() !== '').length - valid : 0;
    return t;
  }

  private sort(): void {
    if (this.sorted) return;
    this.list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : rank(b) - rank(a)));
    this.sorted = true;
  }

  /** Index of the last symbol with address <= addr, or -1. */
  private floor(addr: bigint): number {
    this.sort();
    let lo = 0;
    let hi = this.list.length - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid].address <= addr) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  /**
   * The symbol containing `addr`: the nearest symbol at or below it. When that
   * symbol has a size and `addr` lies past its end, a few earlier sized symbols
   * are tried (nested symbols); if none covers `addr`, undefined. Symbols without
   * a size cover everything up to the next symbol.
   * @param addr virtual address (bigint, mod 2^64).
   */
  lookup(addr: bigint): SymbolLookup | undefined {
    const i = this.floor(addr);
    if (i < 0) return undefined;
    // Best entry at this address comes first among equals.
    let j = i;
    const at = this.list[i].address;
    while (j > 0 && this.list[j - 1].address === at) j--;
    const cand = this.list[j];
    if (cand.size === 0n || addr < cand.address + cand.size) {
      // Prefer a sized symbol at the same address that covers addr.
      return { name: cand.name, offset: addr - cand.address, symbol: cand };
    }
    for (let k = j - 1, n = 0; k >= 0 && n < 16; k--, n++) {
      const e = this.list[k];
      if (e.size > 0n && addr < e.address + e.size)
        return { name: e.name, offset: addr - e.address, symbol: e };
    }
    return undefined;
  }

  /** Address of the symbol called `name` (globals preferred), or undefined. */
  resolve(name: string): bigint | undefined {
    return this.byName.get(name)?.address;
  }

  /** The symbol called `name`, or undefined. */
  get(name: string): SymbolEntry | undefined {
    return this.byName.get(name);
  }

  /** Formats an address as "name+0xoff" (or "name"), or undefined when no symbol covers it. */
  describe(addr: bigint): string | undefined {
    const l = this.lookup(addr);
    if (!l) return undefined;
    return l.offset === 0n ? l.name : `${l.name}+0x${l.offset.toString(16)}`;
  }
}
