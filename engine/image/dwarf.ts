/**
 * DWARF line tables (.debug_line versions 2-5) for source-level debugging:
 * address -> file:line and file:line -> addresses.
 *
 * Follows the DWARF 4 (§6.2) and DWARF 5 (§6.2, §7.22) specifications: line
 * program header (v5 directory/file entry formats, DW_FORM_line_strp into
 * .debug_line_str, DW_FORM_strp into .debug_str), the line-number state
 * machine (standard, extended and special opcodes) and sequences. Compilation
 * directories of v2-4 units are taken from the root DIE of the compilation
 * unit that points at the line program (DW_AT_stmt_list, DW_AT_comp_dir).
 * Compressed debug sections are inflated by the ELF reader.
 */
import { ElfFile, sectionByName } from './elf';
import { ImageError, hex } from './errors';
import { ByteCursor as Cursor, utf8 } from './byte-cursor';

/** One row of the line-number matrix. */
export interface LineRow {
  address: bigint;
  /** Index into the unit's file list (as the program used it). */
  file: number;
  line: number;
  column: number;
  isStmt: boolean;
  endSequence: boolean;
}

/** A line-number program unit: its header values and file table. */
interface LineUnit {
  data: Uint8Array;
  /** Offset of the unit in .debug_line (for messages). */
  offset: number;
  programEnd: number;
  version: number;
  addrSize: number;
  minInst: number;
  defaultIsStmt: boolean;
  lineBase: number;
  lineRange: number;
  opcodeBase: number;
  stdLengths: number[];
  dirs: string[];
  /** Full paths by file index (v2-4: index 0 unused; DW_LNE_define_file entries appended by the scan). */
  files: string[];
}

/**
 * A contiguous sequence of rows covering [start, end). Rows are decoded from
 * the line program on first use and then kept, so a large .debug_line costs
 * one scan and little memory until queried.
 */
export class LineSequence {
  private decoded: LineRow[] | undefined;
  /** Built by {@link LineTable.fromElf}. */
  constructor(
    public start: bigint,
    public end: bigint,
    private readonly unit: LineUnit,
    private readonly programOffset: number,
    private readonly loadOffset: bigint,
  ) {}
  /** Full paths of the unit's files, by file index. */
  get files(): string[] {
    return this.unit.files;
  }
  /** Rows sorted by address (program order kept for equal addresses; the end_sequence row last). */
  get rows(): LineRow[] {
    if (!this.decoded) {
      const rows: LineRow[] = [];
      const mask = this.unit.addrSize === 4 ? 0xffffffffn : (1n << 64n) - 1n;
      const off = this.loadOffset;
      runProgram(this.unit, this.programOffset, true, (hi, lo, file, line, column, isStmt, end) => {
        rows.push({
          address: (((BigInt(hi) << 32n) | BigInt(lo)) + off) & mask,
          file,
          line,
          column,
          isStmt,
          endSequence: end,
        });
        return !end;
      });
      rows.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
      this.decoded = rows;
    }
    return this.decoded;
  }
}

/** One source position. */
export interface SourceLocation {
  /** Full path as recorded (directory joined with file name). */
  file: string;
  line: number;
  column: number;
}

const DW_FORM = {
  addr: 0x01,
  block2: 0x03,
  block4: 0x04,
  data2: 0x05,
  data4: 0x06,
  data8: 0x07,
  string: 0x08,
  block: 0x09,
  block1: 0x0a,
  data1: 0x0b,
  flag: 0x0c,
  sdata: 0x0d,
  strp: 0x0e,
  udata: 0x0f,
  ref_addr: 0x10,
  ref1: 0x11,
  ref2: 0x12,
  ref4: 0x13,
  ref8: 0x14,
  ref_udata: 0x15,
  indirect: 0x16,
  sec_offset: 0x17,
  exprloc: 0x18,
  flag_present: 0x19,
  strx: 0x1a,
  addrx: 0x1b,
  ref_sup4: 0x1c,
  strp_sup: 0x1d,
  data16: 0x1e,
  line_strp: 0x1f,
  ref_sig8: 0x20,
  implicit_const: 0x21,
  loclistx: 0x22,
  rnglistx: 0x23,
  ref_sup8: 0x24,
  strx1: 0x25,
  strx2: 0x26,
  strx3: 0x27,
  strx4: 0x28,
  addrx1: 0x29,
  addrx2: 0x2a,
  addrx3: 0x2b,
  addrx4: 0x2c,
  GNU_addr_index: 0x1f01,
  GNU_str_index: 0x1f02,
  GNU_ref_alt: 0x1f20,
  GNU_strp_alt: 0x1f21,
} as const;

const DW_AT_name = 0x03;
const DW_AT_stmt_list = 0x10;
const DW_AT_comp_dir = 0x1b;
const DW_AT_str_offsets_base = 0x72;

const DW_LNCT_path = 1;
const DW_LNCT_directory_index = 2;

/** Reads the NUL-terminated string at `off` of a string section. */
function strAt(sec: Uint8Array | undefined, off: number, name: string): string {
  if (!sec) throw new ImageError(`${name} is referenced but the file has no such section`);
  if (off < 0 || off >= sec.length)
    throw new ImageError(`${name} offset ${hex(off)} is beyond the section (${sec.length} bytes)`);
  let i = off;
  while (i < sec.length && sec[i] !== 0) i++;
  return utf8.decode(sec.subarray(off, i));
}

/** Joins a directory and a file name as the compiler meant (absolute names win). */
function joinPath(dir: string, file: string): string {
  if (file.startsWith('/') || dir === '') return file;
  return dir.endsWith('/') ? dir + file : `${dir}/${file}`;
}

/** Removes `.` segments and resolves `..` where possible. */
function normalizePath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(part);
  }
  return (abs ? '/' : '') + out.join('/');
}

interface Sections {
  line: Uint8Array;
  lineStr?: Uint8Array;
  str?: Uint8Array;
  info?: Uint8Array;
  abbrev?: Uint8Array;
  strOffsets?: Uint8Array;
}

/** Value read for one attribute form (only what the root DIE reader needs). */
type FormValue =
  | { kind: 'num'; v: number }
  | { kind: 'str'; v: string }
  | { kind: 'strx'; index: number }
  | { kind: 'none' };

function readForm(
  c: Cursor,
  form: number,
  offSize: 4 | 8,
  addrSize: number,
  version: number,
  s: Sections,
  implicitConst: number,
): FormValue {
  switch (form) {
    case DW_FORM.addr:
      c.addr(addrSize);
      return { kind: 'none' };
    case DW_FORM.block2:
      c.skip(c.u16());
      return { kind: 'none' };
    case DW_FORM.block4:
      c.skip(c.u32());
      return { kind: 'none' };
    case DW_FORM.data2:
      return { kind: 'num', v: c.u16() };
    case DW_FORM.data4:
      return { kind: 'num', v: c.u32() };
    case DW_FORM.data8: {
      const v = c.u64();
      return { kind: 'num', v: v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v) };
    }
    case DW_FORM.string:
      return { kind: 'str', v: c.cstr() };
    case DW_FORM.block:
    case DW_FORM.exprloc:
      c.skip(c.uleb());
      return { kind: 'none' };
    case DW_FORM.block1:
      c.skip(c.u8());
      return { kind: 'none' };
    case DW_FORM.data1:
    case DW_FORM.flag:
    case DW_FORM.ref1:
    case DW_FORM.strx1:
    case DW_FORM.addrx1: {
      const v = c.u8();
      return form === DW_FORM.strx1 ? { kind: 'strx', index: v } : { kind: 'num', v };
    }
    case DW_FORM.ref2:
    case DW_FORM.strx2:
    case DW_FORM.addrx2: {
      const v = c.u16();
      return form === DW_FORM.strx2 ? { kind: 'strx', index: v } : { kind: 'num', v };
    }
    case DW_FORM.strx3:
    case DW_FORM.addrx3: {
      const v = c.u24();
      return form === DW_FORM.strx3 ? { kind: 'strx', index: v } : { kind: 'num', v };
    }
    case DW_FORM.ref4:
    case DW_FORM.ref_sup4:
    case DW_FORM.strx4:
    case DW_FORM.addrx4: {
      const v = c.u32();
      return form === DW_FORM.strx4 ? { kind: 'strx', index: v } : { kind: 'num', v };
    }
    case DW_FORM.ref8:
    case DW_FORM.ref_sig8:
    case DW_FORM.ref_sup8:
      c.skip(8);
      return { kind: 'none' };
    case DW_FORM.sdata:
      return { kind: 'num', v: c.sleb() };
    case DW_FORM.udata:
    case DW_FORM.ref_udata:
    case DW_FORM.addrx:
    case DW_FORM.loclistx:
    case DW_FORM.rnglistx:
    case DW_FORM.GNU_addr_index:
      return { kind: 'num', v: c.uleb() };
    case DW_FORM.strx:
    case DW_FORM.GNU_str_index:
      return { kind: 'strx', index: c.uleb() };
    case DW_FORM.strp:
      return { kind: 'str', v: strAt(s.str, c.offset(offSize), '.debug_str') };
    case DW_FORM.line_strp:
      return { kind: 'str', v: strAt(s.lineStr, c.offset(offSize), '.debug_line_str') };
    case DW_FORM.ref_addr:
      if (version <= 2) c.addr(addrSize);
      else c.offset(offSize);
      return { kind: 'none' };
    case DW_FORM.sec_offset:
      return { kind: 'num', v: c.offset(offSize) };
    case DW_FORM.strp_sup:
    case DW_FORM.GNU_ref_alt:
    case DW_FORM.GNU_strp_alt:
      c.offset(offSize);
      return { kind: 'none' };
    case DW_FORM.flag_present:
      return { kind: 'num', v: 1 };
    case DW_FORM.implicit_const:
      return { kind: 'num', v: implicitConst };
    case DW_FORM.data16:
      c.skip(16);
      return { kind: 'none' };
    case DW_FORM.indirect:
      return readForm(c, c.uleb(), offSize, addrSize, version, s, implicitConst);
    default:
      throw new ImageError(`${c.section}: unknown attribute form ${hex(form)} at ${hex(c.pos)}`);
  }
}

/** Unit header common to .debug_info and .debug_line: length and offset size. */
function unitLength(c: Cursor): { length: number; offSize: 4 | 8 } {
  const l32 = c.u32();
  if (l32 === 0xffffffff) return { length: c.offset(8), offSize: 8 };
  if (l32 >= 0xfffffff0)
    throw new ImageError(`${c.section}: reserved unit length ${hex(l32)} at ${hex(c.pos - 4)}`);
  return { length: l32, offSize: 4 };
}

/**
 * For every compilation unit, the line-program offset (DW_AT_stmt_list) and
 * the compilation directory/name of its root DIE.
 */
function readCompUnits(s: Sections): Map<number, { compDir?: string; name?: string }> {
  const out = new Map<number, { compDir?: string; name?: string }>();
  if (!s.info || !s.abbrev) return out;
  const info = s.info;
  let off = 0;
  while (off + 4 <= info.length) {
    const c = new Cursor(info, off, info.length, '.debug_info');
    const { length, offSize } = unitLength(c);
    const unitEnd = c.pos + length;
    if (unitEnd > info.length)
      throw new ImageError(`.debug_info: unit at ${hex(off)} extends beyond the section`);
    c.end = unitEnd;
    const version = c.u16();
    if (version < 2 || version > 5) {
      off = unitEnd;
      continue;
    }
    let addrSize: number;
    let abbrevOff: number;
    let unitType = 1;
    if (version >= 5) {
      unitType = c.u8();
      addrSize = c.u8();
      abbrevOff = c.offset(offSize);
      if (unitType === 4 || unitType === 5) c.skip(8);
      else if (unitType === 2 || unitType === 6) {
        c.skip(8);
        c.offset(offSize);
      }
    } else {
      abbrevOff = c.offset(offSize);
      addrSize = c.u8();
    }
    if (unitType === 1 || unitType === 3 || unitType === 4) {
      const code = c.uleb();
      if (code !== 0) {
        const attrs = findAbbrev(s.abbrev, abbrevOff, code);
        let stmt: number | undefined;
        let compDir: FormValue | undefined;
        let name: FormValue | undefined;
        let strOffBase = 8;
        for (const a of attrs) {
          const v = readForm(c, a.form, offSize, addrSize, version, s, a.implicitConst);
          if (a.attr === DW_AT_stmt_list && v.kind === 'num') stmt = v.v;
          else if (a.attr === DW_AT_comp_dir) compDir = v;
          else if (a.attr === DW_AT_name) name = v;
          else if (a.attr === DW_AT_str_offsets_base && v.kind === 'num') strOffBase = v.v;
        }
        const str = (v: FormValue | undefined): string | undefined => {
          if (!v) return undefined;
          if (v.kind === 'str') return v.v;
          if (v.kind === 'strx' && s.strOffsets) {
            const p = strOffBase + v.index * offSize;
            if (p + offSize > s.strOffsets.length) return undefined;
            const cc = new Cursor(s.strOffsets, p, s.strOffsets.length, '.debug_str_offsets');
            return strAt(s.str, cc.offset(offSize), '.debug_str');
          }
          return undefined;
        };
        if (stmt !== undefined) out.set(stmt, { compDir: str(compDir), name: str(name) });
      }
    }
    off = unitEnd;
  }
  return out;
}

function findAbbrev(
  abbrev: Uint8Array,
  off: number,
  code: number,
): { attr: number; form: number; implicitConst: number }[] {
  const c = new Cursor(abbrev, off, abbrev.length, '.debug_abbrev');
  if (off >= abbrev.length)
    throw new ImageError(`.debug_abbrev: table offset ${hex(off)} is beyond the section`);
  for (let n = 0; n < 1_000_000; n++) {
    const cd = c.uleb();
    if (cd === 0) break;
    c.uleb(); // tag
    c.u8(); // children
    const attrs: { attr: number; form: number; implicitConst: number }[] = [];
    for (;;) {
      const attr = c.uleb();
      const form = c.uleb();
      let implicitConst = 0;
      if (form === DW_FORM.implicit_const) implicitConst = c.sleb();
      if (attr === 0 && form === 0) break;
      attrs.push({ attr, form, implicitConst });
    }
    if (cd === code) return attrs;
  }
  throw new ImageError(`.debug_abbrev: abbreviation ${code} not found in the table at ${hex(off)}`);
}

/** Parses the header of the line program at `off`. @returns the unit and the offsets of its program and of the next unit. */
function parseLineHeader(
  s: Sections,
  off: number,
  cus: Map<number, { compDir?: string; name?: string }>,
): { unit: LineUnit; programStart: number; next: number } {
  const line = s.line;
  const c = new Cursor(line, off, line.length, '.debug_line');
  const { length, offSize } = unitLength(c);
  const unitEnd = c.pos + length;
  const where = `.debug_line unit at ${hex(off)}`;
  if (unitEnd > line.length)
    throw new ImageError(`${where} extends beyond the section (${hex(unitEnd)} > ${hex(line.length)})`);
  c.end = unitEnd;
  const version = c.u16();
  if (version < 2 || version > 5) throw new ImageError(`${where} has unsupported version ${version}`);
  let addrSize = 8;
  if (version >= 5) {
    addrSize = c.u8();
    c.u8(); // segment_selector_size
    if (addrSize !== 4 && addrSize !== 8)
      throw new ImageError(`${where} has unsupported address size ${addrSize}`);
  }
  const headerLength = c.offset(offSize);
  const programStart = c.pos + headerLength;
  if (programStart > unitEnd)
    throw new ImageError(`${where} header length ${hex(headerLength)} runs past the unit`);
  const minInst = c.u8();
  if (version >= 4) c.u8(); // maximum_operations_per_instruction (1 on x86)
  const defaultIsStmt = c.u8() !== 0;
  const lineBase = c.i8();
  const lineRange = c.u8();
  const opcodeBase = c.u8();
  if (lineRange === 0) throw new ImageError(`${where} has line_range 0`);
  if (opcodeBase === 0) throw new ImageError(`${where} has opcode_base 0`);
  const stdLengths: number[] = [0];
  for (let i = 1; i < opcodeBase; i++) stdLengths.push(c.u8());

  const cu = cus.get(off);
  let dirs: string[] = [];
  const files: string[] = [];
  if (version >= 5) {
    const readEntries = (what: string): Map<number, FormValue>[] => {
      const fmtCount = c.u8();
      const fmt: [number, number][] = [];
      for (let i = 0; i < fmtCount; i++) fmt.push([c.uleb(), c.uleb()]);
      const count = c.uleb();
      if (count > 1_000_000) throw new ImageError(`${where} declares ${count} ${what}, which is absurd`);
      const entries: Map<number, FormValue>[] = [];
      for (let i = 0; i < count; i++) {
        const m = new Map<number, FormValue>();
        for (const [type, form] of fmt) m.set(type, readForm(c, form, offSize, addrSize, version, s, 0));
        entries.push(m);
      }
      return entries;
    };
    const strOf = (v: FormValue | undefined): string => (v && v.kind === 'str' ? v.v : '');
    dirs = readEntries('directories').map((m) => strOf(m.get(DW_LNCT_path)));
    if (dirs.length > 0 && !dirs[0].startsWith('/') && cu?.compDir) dirs[0] = joinPath(cu.compDir, dirs[0]);
    for (const m of readEntries('file names')) {
      const d = m.get(DW_LNCT_directory_index);
      const di = d && d.kind === 'num' ? d.v : 0;
      files.push(fileName(dirs, di, strOf(m.get(DW_LNCT_path))));
    }
  } else {
    dirs = [cu?.compDir ?? ''];
    for (;;) {
      const d = c.cstr();
      if (d === '') break;
      dirs.push(d);
    }
    files.push(''); // file numbers start at 1
    for (;;) {
      const name = c.cstr();
      if (name === '') break;
      const di = c.uleb();
      c.uleb(); // mtime
      c.uleb(); // length
      files.push(fileName(dirs, di, name));
    }
  }
  const unit: LineUnit = {
    data: line,
    offset: off,
    programEnd: unitEnd,
    version,
    addrSize,
    minInst,
    defaultIsStmt,
    lineBase,
    lineRange,
    opcodeBase,
    stdLengths,
    dirs,
    files,
  };
  return { unit, programStart, next: unitEnd };
}

function fileName(dirs: string[], di: number, name: string): string {
  const dir = di < dirs.length ? dirs[di] : '';
  const base = di === 0 || dir.startsWith('/') ? dir : joinPath(dirs[0] ?? '', dir);
  return normalizePath(joinPath(base, name));
}

/**
 * Row callback: address as two 32-bit halves, then file, line, column,
 * is_stmt and end_sequence. Return false to stop.
 */
type RowSink = (
  hi: number,
  lo: number,
  file: number,
  line: number,
  column: number,
  isStmt: boolean,
  end: boolean,
) => boolean;

/**
 * Runs the line-number state machine of `unit` from byte `from` (the start of a
 * sequence), calling `sink` for every row. Addresses are kept as 32-bit halves
 * so large programs need no BigInt per opcode.
 * @param decodeOnly true when re-decoding a sequence (DW_LNE_define_file entries were added by the scan).
 * @returns the position after the last opcode executed.
 */
function runProgram(unit: LineUnit, from: number, decodeOnly: boolean, sink: RowSink): number {
  const c = new Cursor(unit.data, from, unit.programEnd, `.debug_line unit at ${hex(unit.offset)}`);
  const { minInst, lineBase, lineRange, opcodeBase, stdLengths, defaultIsStmt } = unit;
  const wide = unit.addrSize === 8;
  let hi = 0;
  let lo = 0;
  let file = 1;
  let ln = 1;
  let column = 0;
  let isStmt = defaultIsStmt;
  const add = (delta: number) => {
    // 0 <= delta < 2^53
    const sum = lo + delta;
    lo = sum % 4294967296;
    if (wide) hi = (hi + Math.floor(sum / 4294967296)) % 4294967296;
  };
  const constAddPc = Math.floor((255 - opcodeBase) / lineRange) * minInst;
  while (c.pos < unit.programEnd) {
    const op = c.u8();
    if (op >= opcodeBase) {
      const adj = op - opcodeBase;
      add(Math.floor(adj / lineRange) * minInst);
      ln += lineBase + (adj % lineRange);
      if (!sink(hi, lo, file, ln, column, isStmt, false)) return c.pos;
    } else if (op === 0) {
      const len = c.uleb();
      const next = c.pos + len;
      if (len === 0) continue;
      if (next > unit.programEnd)
        throw new ImageError(`${c.section}: extended opcode at ${hex(c.pos)} runs past the unit`);
      const sub = c.u8();
      if (sub === 1) {
        c.pos = next;
        if (!sink(hi, lo, file, ln, column, isStmt, true)) return c.pos;
        hi = lo = 0;
        file = 1;
        ln = 1;
        column = 0;
        isStmt = defaultIsStmt;
        continue;
      } else if (sub === 2) {
        const n = len - 1;
        if (n === 8) {
          lo = c.u32();
          hi = c.u32();
        } else if (n === 4) {
          lo = c.u32();
          hi = 0;
        } else throw new ImageError(`${c.section}: DW_LNE_set_address with a ${n}-byte operand`);
      } else if (sub === 3 && unit.version <= 4 && !decodeOnly) {
        const name = c.cstr();
        const di = c.uleb();
        unit.files.push(fileName(unit.dirs, di, name));
      }
      c.pos = next;
    } else {
      switch (op) {
        case 1: // DW_LNS_copy
          if (!sink(hi, lo, file, ln, column, isStmt, false)) return c.pos;
          break;
        case 2: // DW_LNS_advance_pc
          add(c.uleb() * minInst);
          break;
        case 3: // DW_LNS_advance_line
          ln += c.sleb();
          break;
        case 4: // DW_LNS_set_file
          file = c.uleb();
          break;
        case 5: // DW_LNS_set_column
          column = c.uleb();
          break;
        case 6: // DW_LNS_negate_stmt
          isStmt = !isStmt;
          break;
        case 7: // DW_LNS_set_basic_block
          break;
        case 8: // DW_LNS_const_add_pc
          add(constAddPc);
          break;
        case 9: // DW_LNS_fixed_advance_pc
          add(c.u16());
          break;
        case 10: // DW_LNS_set_prologue_end
        case 11: // DW_LNS_set_epilogue_begin
          break;
        case 12: // DW_LNS_set_isa
          c.uleb();
          break;
        default:
          for (let i = 0; i < stdLengths[op]; i++) c.uleb();
      }
    }
  }
  return c.pos;
}

/** Scans a unit's program, recording each sequence's address range and starting offset. */
function scanSequences(unit: LineUnit, programStart: number, loadOffset: bigint, out: LineSequence[]): void {
  const mask = unit.addrSize === 4 ? 0xffffffffn : (1n << 64n) - 1n;
  const big = (h: number, l: number) => (BigInt(h) << 32n) | BigInt(l);
  let pos = programStart;
  while (pos < unit.programEnd) {
    const seqStart = pos;
    let rows = 0;
    let minHi = 0;
    let minLo = 0;
    pos = runProgram(unit, pos, false, (hi, lo, _f, _l, _c, _s, end) => {
      if (!end) {
        if (rows === 0 || hi < minHi || (hi === minHi && lo < minLo)) {
          minHi = hi;
          minLo = lo;
        }
        rows++;
        return true;
      }
      if (rows > 0) {
        const start = big(minHi, minLo);
        const endAddr = big(hi, lo);
        // A sequence starting at 0 in a linked image is a discarded function (gc-sections/COMDAT): drop it.
        if (endAddr > start && start !== 0n)
          out.push(
            new LineSequence(
              (start + loadOffset) & mask,
              (endAddr + loadOffset) & mask,
              unit,
              seqStart,
              loadOffset,
            ),
          );
      }
      return false;
    });
    if (pos <= seqStart) break;
  }
}

/** Matches a query path against a recorded path: equal, or one is a '/'-bounded suffix of the other. */
function pathMatches(recorded: string, query: string): boolean {
  if (recorded === query) return true;
  const [long, short] = recorded.length >= query.length ? [recorded, query] : [query, recorded];
  if (short === '' || !long.endsWith(short)) return false;
  return short.startsWith('/') || long[long.length - short.length - 1] === '/';
}

/**
 * The line table of an ELF file's .debug_line. Build with {@link LineTable.fromElf}.
 */
export class LineTable {
  /** Sequences sorted by start address. */
  readonly sequences: LineSequence[];
  private readonly units: LineUnit[];
  private constructor(sequences: LineSequence[], units: LineUnit[]) {
    this.sequences = sequences.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    this.units = units;
  }

  /** Sequences of units whose file table has a file matching `q` (exact when `exact`). */
  private sequencesFor(q: string, exact: boolean): LineSequence[] {
    const match = new Set<string[]>();
    for (const u of this.units)
      if (u.files.some((f) => (exact ? f === q : pathMatches(f, q)))) match.add(u.files);
    return this.sequences.filter((s) => match.has(s.files));
  }

  /**
   * Reads every line program of .debug_line (compressed sections inflated).
   * @param offset added to every address (load offset of a symbol file), default 0.
   * @returns a table (empty when the file has no .debug_line).
   * @throws ImageError on malformed DWARF, naming the unit and what is wrong.
   */
  static fromElf(elf: ElfFile, offset = 0n): LineTable {
    const line = sectionByName(elf, '.debug_line');
    if (!line) return new LineTable([], []);
    const s: Sections = {
      line,
      lineStr: sectionByName(elf, '.debug_line_str'),
      str: sectionByName(elf, '.debug_str'),
      info: sectionByName(elf, '.debug_info'),
      abbrev: sectionByName(elf, '.debug_abbrev'),
      strOffsets: sectionByName(elf, '.debug_str_offsets'),
    };
    const cus = readCompUnits(s);
    const seqs: LineSequence[] = [];
    const units: LineUnit[] = [];
    let off = 0;
    while (off < line.length) {
      if (line.length - off < 4) break;
      const h = parseLineHeader(s, off, cus);
      scanSequences(h.unit, h.programStart, offset, seqs);
      units.push(h.unit);
      off = h.next;
    }
    return new LineTable(seqs, units);
  }

  /** Every distinct file path the table mentions. */
  files(): string[] {
    return [...this.fileSet()].sort();
  }

  private fileSetCache: Set<string> | undefined;
  private fileSet(): Set<string> {
    if (!this.fileSetCache) {
      this.fileSetCache = new Set<string>();
      for (const u of this.units) for (const f of u.files) if (f) this.fileSetCache.add(f);
    }
    return this.fileSetCache;
  }

  /**
   * Source position of an address: the last row at or below `addr` in the
   * sequence containing it.
   * @returns undefined when no sequence covers `addr`.
   */
  addressToLine(addr: bigint): SourceLocation | undefined {
    const seqs = this.sequences;
    let lo = 0;
    let hi = seqs.length - 1;
    let idx = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (seqs[mid].start <= addr) {
        idx = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Sequences may nest or overlap in odd images: look back a little.
    for (let k = idx; k >= 0 && k > idx - 8; k--) {
      const q = seqs[k];
      if (addr >= q.start && addr < q.end) return rowAt(q, addr);
    }
    return undefined;
  }

  /**
   * Statement addresses of a source line: for each run of rows of `line` in a
   * matching file, the lowest address (one per inlined/duplicated copy).
   * @param file absolute path, or a relative path/basename matched as a '/'-bounded suffix.
   * @returns sorted addresses; empty when the line has no code.
   */
  lineToAddresses(file: string, line: number): bigint[] {
    const q = normalizePath(file);
    const exact = this.fileSet().has(q);
    const out = new Set<bigint>();
    for (const seq of this.sequencesFor(q, exact)) {
      let prevMatched = false;
      for (const r of seq.rows) {
        const f = seq.files[r.file] ?? '';
        const hit = !r.endSequence && r.line === line && (exact ? f === q : pathMatches(f, q));
        if (hit && r.isStmt && !prevMatched) out.add(r.address);
        prevMatched = hit && r.isStmt ? true : !r.endSequence && hit ? prevMatched : false;
      }
    }
    return [...out].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /**
   * Where a breakpoint on file:line lands: the first line at or after `line`
   * (within the same file) that has statement addresses, as debuggers do.
   * @returns the line used and its addresses, or undefined when no later line has code.
   */
  resolveBreakpoint(file: string, line: number): { line: number; addresses: bigint[] } | undefined {
    const q = normalizePath(file);
    const exact = this.fileSet().has(q);
    let best = Infinity;
    for (const seq of this.sequencesFor(q, exact))
      for (const r of seq.rows) {
        if (r.endSequence || !r.isStmt || r.line < line || r.line >= best) continue;
        const f = seq.files[r.file] ?? '';
        if (exact ? f === q : pathMatches(f, q)) best = r.line;
      }
    if (best === Infinity) return undefined;
    return { line: best, addresses: this.lineToAddresses(file, best) };
  }
}

function rowAt(q: LineSequence, addr: bigint): SourceLocation | undefined {
  const rows = q.rows;
  let lo = 0;
  let hi = rows.length - 1;
  let idx = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid].address <= addr) {
      idx = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (idx < 0 || rows[idx].endSequence) return undefined;
  const r = rows[idx];
  return { file: q.files[r.file] ?? `<file ${r.file}>`, line: r.line, column: r.column };
}
