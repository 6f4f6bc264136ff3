/**
 * ELF32/ELF64 little-endian x86 image parser (cold path).
 *
 * Follows the System V ABI gABI (ELF header, program headers, section headers,
 * symbol tables) and its x86 supplements; the extended-numbering escapes
 * (PN_XNUM, SHN_XINDEX, e_shnum 0) are honoured. Every malformed input throws
 * {@link ImageError} naming the broken structure.
 */
import { inflateRawBounded } from './decompress';
import { ByteReader, ImageError, hex, readCString, toSafeNumber } from './errors';

/** e_machine values accepted. */
export const EM_386 = 3;
export const EM_X86_64 = 62;

/** Program header types (gABI). */
export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
/** Program header flags. */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** Section header types (gABI). */
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;
export const SHT_SYMTAB_SHNDX = 18;
/** Section flags. */
export const SHF_ALLOC = 0x2n;
export const SHF_EXECINSTR = 0x4n;
export const SHF_COMPRESSED = 0x800n;
/** Compression type of an SHF_COMPRESSED section (Elf_Chdr.ch_type). */
export const ELFCOMPRESS_ZLIB = 1;

/** Symbol types (ELF_ST_TYPE). */
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;
export const STT_TLS = 6;
/** Special section indexes. */
export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;
export const SHN_XINDEX = 0xffff;
const PN_XNUM = 0xffff;

/** Upper bound on program/section/symbol counts considered sane (a guard against absurd headers). */
const MAX_TABLE_ENTRIES = 1 << 24;

/** The ELF file header (Elf32_Ehdr/Elf64_Ehdr); counts already resolved through the extended-numbering escapes. */
export interface ElfHeader {
  /** 32 (ELFCLASS32) or 64 (ELFCLASS64). */
  bits: 32 | 64;
  /** e_type: 2 = ET_EXEC, 3 = ET_DYN, 1 = ET_REL, 4 = ET_CORE. */
  type: number;
  /** e_machine: EM_386 (3) or EM_X86_64 (62). */
  machine: number;
  /** e_entry: virtual address of the entry point. */
  entry: bigint;
  /** e_phoff/e_shoff: file offsets (bytes) of the tables, 0 if absent. */
  phoff: number;
  shoff: number;
  flags: number;
  ehsize: number;
  phentsize: number;
  /** Number of program headers (PN_XNUM resolved). */
  phnum: number;
  shentsize: number;
  /** Number of section headers (e_shnum 0 resolved). */
  shnum: number;
  /** Index of the section-name string table (SHN_XINDEX resolved); 0 when none. */
  shstrndx: number;
}

/** One program header (Elf32_Phdr/Elf64_Phdr). File quantities are numbers (bytes), addresses bigints. */
export interface ElfProgramHeader {
  index: number;
  type: number;
  /** PF_R | PF_W | PF_X. */
  flags: number;
  /** File offset (bytes); [offset, offset+filesz) lies inside the file. */
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  /** Bytes in the file. */
  filesz: number;
  /** Bytes in memory (>= filesz for PT_LOAD). */
  memsz: bigint;
  align: bigint;
}

/** One section header (Elf32_Shdr/Elf64_Shdr) with its resolved name. */
export interface ElfSection {
  index: number;
  /** Name from the section-name string table ('' when there is none). */
  name: string;
  type: number;
  flags: bigint;
  addr: bigint;
  /** File offset (bytes); for types other than SHT_NOBITS/SHT_NULL, [offset, offset+size) is inside the file. */
  offset: number;
  /** Size in bytes (in the file, or in memory for SHT_NOBITS). */
  size: number;
  link: number;
  info: number;
  addralign: bigint;
  entsize: number;
}

/** One symbol (Elf32_Sym/Elf64_Sym). */
export interface ElfSymbol {
  name: string;
  value: bigint;
  size: bigint;
  /** ELF_ST_TYPE: STT_FUNC, STT_OBJECT, ... */
  type: number;
  /** ELF_ST_BIND: 0 local, 1 global, 2 weak. */
  bind: number;
  /** Section index (SHN_UNDEF, SHN_ABS, ... ; SHN_XINDEX resolved through SHT_SYMTAB_SHNDX). */
  shndx: number;
  /** 'symtab' or 'dynsym'. */
  table: 'symtab' | 'dynsym';
}

/** A parsed ELF file. */
export interface ElfFile {
  /** The whole file. */
  bytes: Uint8Array;
  header: ElfHeader;
  programHeaders: ElfProgramHeader[];
  sections: ElfSection[];
  /** Symbols of .symtab followed by .dynsym (null symbol 0 of each table omitted). */
  symbols: ElfSymbol[];
}

/** True if `bytes` starts with the ELF magic 7F 'E' 'L' 'F'. */
export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46
  );
}

/**
 * Parses a little-endian ELF32 (EM_386) or ELF64 (EM_X86_64) file.
 *
 * @param bytes the whole file.
 * @returns header, program headers, sections (with names) and symbols.
 * @throws ImageError on anything malformed: bad magic/class/data/version/machine,
 *   header tables or entries beyond the file, entry sizes too small, absurd
 *   counts, segments or sections whose data leaves the file, string/symbol
 *   tables that are out of range.
 */
export function parseElf(bytes: Uint8Array): ElfFile {
  const r = new ByteReader(bytes);
  if (bytes.length < 16)
    throw new ImageError(`ELF identification is truncated (${bytes.length} bytes, need 16)`);
  if (!isElf(bytes)) throw new ImageError('not an ELF file (bad magic)');
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2)
    throw new ImageError(`ELF class ${cls} is invalid (expected 1 = ELFCLASS32 or 2 = ELFCLASS64)`);
  const bits: 32 | 64 = cls === 1 ? 32 : 64;
  if (bytes[5] !== 1)
    throw new ImageError(`ELF data encoding ${bytes[5]} is not supported (only 1 = little-endian)`);
  if (bytes[6] !== 1) throw new ImageError(`ELF identification version ${bytes[6]} is invalid (expected 1)`);
  const ehsizeMin = bits === 32 ? 52 : 64;
  if (bytes.length < ehsizeMin)
    throw new ImageError(`ELF header is truncated (${bytes.length} bytes, need ${ehsizeMin})`);

  const type = r.u16(16);
  const machine = r.u16(18);
  if (bits === 32 && machine !== EM_386)
    throw new ImageError(`ELF32 machine ${machine} is not supported (expected EM_386 = 3)`);
  if (bits === 64 && machine !== EM_X86_64)
    throw new ImageError(`ELF64 machine ${machine} is not supported (expected EM_X86_64 = 62)`);
  const version = r.u32(20);
  if (version !== 1) throw new ImageError(`ELF version ${version} is invalid (expected 1)`);

  let entry: bigint, phoffB: bigint, shoffB: bigint, o: number;
  if (bits === 32) {
    entry = BigInt(r.u32(24));
    phoffB = BigInt(r.u32(28));
    shoffB = BigInt(r.u32(32));
    o = 36;
  } else {
    entry = r.u64(24);
    phoffB = r.u64(32);
    shoffB = r.u64(40);
    o = 48;
  }
  const flags = r.u32(o);
  const ehsize = r.u16(o + 4);
  const phentsize = r.u16(o + 6);
  let phnum = r.u16(o + 8);
  const shentsize = r.u16(o + 10);
  let shnum = r.u16(o + 12);
  let shstrndx = r.u16(o + 14);
  if (ehsize < ehsizeMin) throw new ImageError(`ELF header size ${ehsize} is too small (need ${ehsizeMin})`);
  const phoff = toSafeNumber(phoffB, 'ELF program header table offset');
  const shoff = toSafeNumber(shoffB, 'ELF section header table offset');

  const shentMin = bits === 32 ? 40 : 64;
  const phentMin = bits === 32 ? 32 : 56;

  // Extended numbering lives in section header 0.
  let sh0: { size: bigint; link: number; info: number } | undefined;
  if (shoff !== 0) {
    if (shentsize < shentMin)
      throw new ImageError(`ELF section header entry size ${shentsize} is too small (need ${shentMin})`);
    r.check(shoff, shentMin, 'ELF section header 0');
    sh0 = readShdrRaw(r, bits, shoff);
  }
  if (phnum === PN_XNUM && sh0) phnum = sh0.info;
  if (shoff !== 0 && shnum === 0 && sh0) shnum = toSafeNumber(sh0.size, 'ELF section count');
  if (shstrndx === SHN_XINDEX && sh0) shstrndx = sh0.link;
  if (shoff === 0) shnum = 0;

  if (phnum > MAX_TABLE_ENTRIES) throw new ImageError(`ELF program header count ${phnum} is absurd`);
  if (shnum > MAX_TABLE_ENTRIES) throw new ImageError(`ELF section header count ${shnum} is absurd`);

  const header: ElfHeader = {
    bits,
    type,
    machine,
    entry,
    phoff,
    shoff,
    flags,
    ehsize,
    phentsize,
    phnum,
    shentsize,
    shnum,
    shstrndx,
  };

  // Program headers.
  const programHeaders: ElfProgramHeader[] = [];
  if (phnum > 0) {
    if (phoff === 0) throw new ImageError(`ELF declares ${phnum} program headers but e_phoff is 0`);
    if (phentsize < phentMin)
      throw new ImageError(`ELF program header entry size ${phentsize} is too small (need ${phentMin})`);
    if (phoff + phnum * phentsize > bytes.length)
      throw new ImageError(
        `ELF program header table extends beyond the file (${phnum} entries of ${phentsize} bytes at ${hex(phoff)}, file is ${bytes.length} bytes)`,
      );
    for (let i = 0; i < phnum; i++) {
      const p = phoff + i * phentsize;
      let ph: ElfProgramHeader;
      if (bits === 32) {
        ph = {
          index: i,
          type: r.u32(p),
          offset: r.u32(p + 4),
          vaddr: BigInt(r.u32(p + 8)),
          paddr: BigInt(r.u32(p + 12)),
          filesz: r.u32(p + 16),
          memsz: BigInt(r.u32(p + 20)),
          flags: r.u32(p + 24),
          align: BigInt(r.u32(p + 28)),
        };
      } else {
        ph = {
          index: i,
          type: r.u32(p),
          flags: r.u32(p + 4),
          offset: toSafeNumber(r.u64(p + 8), `ELF program header ${i} offset`),
          vaddr: r.u64(p + 16),
          paddr: r.u64(p + 24),
          filesz: toSafeNumber(r.u64(p + 32), `ELF program header ${i} file size`),
          memsz: r.u64(p + 40),
          align: r.u64(p + 48),
        };
      }
      if (ph.type !== PT_NULL && ph.filesz > 0 && ph.offset + ph.filesz > bytes.length)
        throw new ImageError(
          `ELF program header ${i} extends beyond the file (offset ${hex(ph.offset)} + ${hex(ph.filesz)} bytes, file is ${hex(bytes.length)} bytes)`,
        );
      if (ph.type === PT_LOAD && BigInt(ph.filesz) > ph.memsz)
        throw new ImageError(
          `ELF program header ${i} has p_filesz ${hex(ph.filesz)} larger than p_memsz ${hex(ph.memsz)}`,
        );
      programHeaders.push(ph);
    }
  }

  // Section headers.
  const sections: ElfSection[] = [];
  if (shnum > 0) {
    if (shoff + shnum * shentsize > bytes.length)
      throw new ImageError(
        `ELF section header table extends beyond the file (${shnum} entries of ${shentsize} bytes at ${hex(shoff)}, file is ${bytes.length} bytes)`,
      );
    for (let i = 0; i < shnum; i++) {
      const s = shoff + i * shentsize;
      let sec: ElfSection;
      if (bits === 32) {
        sec = {
          index: i,
          name: '',
          type: r.u32(s + 4),
          flags: BigInt(r.u32(s + 8)),
          addr: BigInt(r.u32(s + 12)),
          offset: r.u32(s + 16),
          size: r.u32(s + 20),
          link: r.u32(s + 24),
          info: r.u32(s + 28),
          addralign: BigInt(r.u32(s + 32)),
          entsize: r.u32(s + 36),
        };
      } else {
        sec = {
          index: i,
          name: '',
          type: r.u32(s + 4),
          flags: r.u64(s + 8),
          addr: r.u64(s + 16),
          offset: toSafeNumber(r.u64(s + 24), `ELF section ${i} offset`),
          size: i === 0 ? 0 : toSafeNumber(r.u64(s + 32), `ELF section ${i} size`),
          link: r.u32(s + 40),
          info: r.u32(s + 44),
          addralign: r.u64(s + 48),
          entsize: toSafeNumber(r.u64(s + 56), `ELF section ${i} entry size`),
        };
      }
      if (i === 0) sec.size = 0; // section 0 holds the extended-numbering escapes only
      if (
        sec.type !== SHT_NOBITS &&
        sec.type !== SHT_NULL &&
        sec.size > 0 &&
        sec.offset + sec.size > bytes.length
      )
        throw new ImageError(
          `ELF section ${i} extends beyond the file (offset ${hex(sec.offset)} + ${hex(sec.size)} bytes, file is ${hex(bytes.length)} bytes)`,
        );
      sections.push(sec);
    }
    if (shstrndx !== 0) {
      if (shstrndx >= shnum)
        throw new ImageError(
          `ELF section-name string table index ${shstrndx} is out of range (${shnum} sections)`,
        );
      const strtab = sections[shstrndx];
      if (strtab.type === SHT_NOBITS)
        throw new ImageError(`ELF section-name string table (section ${shstrndx}) has no data`);
      for (const sec of sections) {
        const nameOff = r.u32(shoff + sec.index * shentsize, `ELF section ${sec.index} header`);
        if (sec.index !== 0 && nameOff >= strtab.size && strtab.size > 0)
          throw new ImageError(
            `ELF section ${sec.index} name offset ${hex(nameOff)} is beyond the section-name string table`,
          );
        sec.name = readCString(bytes, strtab.offset + nameOff, strtab.offset + strtab.size);
      }
    }
  }

  const file: ElfFile = { bytes, header, programHeaders, sections, symbols: [] };
  for (const sec of sections) {
    if (sec.type === SHT_SYMTAB) file.symbols.push(...readSymbols(file, sec, 'symtab'));
  }
  for (const sec of sections) {
    if (sec.type === SHT_DYNSYM) file.symbols.push(...readSymbols(file, sec, 'dynsym'));
  }
  return file;
}

function readShdrRaw(
  r: ByteReader,
  bits: 32 | 64,
  off: number,
): { size: bigint; link: number; info: number } {
  if (bits === 32) return { size: BigInt(r.u32(off + 20)), link: r.u32(off + 24), info: r.u32(off + 28) };
  return { size: r.u64(off + 32), link: r.u32(off + 40), info: r.u32(off + 44) };
}

function readSymbols(file: ElfFile, sec: ElfSection, table: 'symtab' | 'dynsym'): ElfSymbol[] {
  const { bytes, sections } = file;
  const bits = file.header.bits;
  const entMin = bits === 32 ? 16 : 24;
  const what = `ELF symbol table '${sec.name}' (section ${sec.index})`;
  const ent = sec.entsize === 0 ? entMin : sec.entsize;
  if (ent < entMin) throw new ImageError(`${what} entry size ${ent} is too small (need ${entMin})`);
  if (sec.link >= sections.length)
    throw new ImageError(`${what} links to string table ${sec.link}, which does not exist`);
  const strtab = sections[sec.link];
  if (strtab.type === SHT_NOBITS) throw new ImageError(`${what} links to a string table with no data`);
  const data = sectionBytes(file, sec);
  const r = new ByteReader(data);
  const count = Math.floor(data.length / ent);
  // Optional SHT_SYMTAB_SHNDX companion for SHN_XINDEX.
  let shndxTable: ByteReader | undefined;
  for (const s of sections) {
    if (s.type === SHT_SYMTAB_SHNDX && s.link === sec.index)
      shndxTable = new ByteReader(sectionBytes(file, s));
  }
  const out: ElfSymbol[] = [];
  for (let i = 1; i < count; i++) {
    const p = i * ent;
    let nameOff: number, value: bigint, size: bigint, info: number, shndx: number;
    if (bits === 32) {
      nameOff = r.u32(p);
      value = BigInt(r.u32(p + 4));
      size = BigInt(r.u32(p + 8));
      info = r.u8(p + 12);
      shndx = r.u16(p + 14);
    } else {
      nameOff = r.u32(p);
      info = r.u8(p + 4);
      shndx = r.u16(p + 6);
      value = r.u64(p + 8);
      size = r.u64(p + 16);
    }
    if (nameOff !== 0 && nameOff >= strtab.size)
      throw new ImageError(
        `${what} symbol ${i} name offset ${hex(nameOff)} is beyond its string table (${strtab.size} bytes)`,
      );
    if (shndx === SHN_XINDEX && shndxTable && shndxTable.length >= (i + 1) * 4) shndx = shndxTable.u32(i * 4);
    out.push({
      name: readCString(bytes, strtab.offset + nameOff, strtab.offset + strtab.size),
      value,
      size,
      type: info & 0xf,
      bind: info >> 4,
      shndx,
      table,
    });
  }
  return out;
}

/**
 * The raw bytes of a section as stored in the file (a view, not a copy).
 * SHT_NOBITS and SHT_NULL sections give an empty array.
 */
export function sectionBytes(file: ElfFile, sec: ElfSection): Uint8Array {
  if (sec.type === SHT_NOBITS || sec.type === SHT_NULL) return new Uint8Array(0);
  return file.bytes.subarray(sec.offset, sec.offset + sec.size);
}

/** The first section with the given name, or undefined. */
export function findSection(file: ElfFile, name: string): ElfSection | undefined {
  return file.sections.find((s) => s.name === name);
}

/** Cap on the size of an inflated SHF_COMPRESSED section (bytes). */
const MAX_DECOMPRESSED_SECTION = 512 * 1024 * 1024;

/**
 * A section's contents, inflated when the section is SHF_COMPRESSED
 * (gABI Elf32_Chdr/Elf64_Chdr with ELFCOMPRESS_ZLIB), or when it is a GNU
 * ".zdebug_*" section ("ZLIB" + 8-byte big-endian size + zlib stream).
 *
 * @returns the uncompressed bytes (a view into the file when uncompressed).
 * @throws ImageError for an unknown compression type, a truncated header, a
 *   corrupt zlib stream, a size mismatch or a declared size above 512 MiB.
 */
export function sectionContents(file: ElfFile, sec: ElfSection): Uint8Array {
  const raw = sectionBytes(file, sec);
  const what = `ELF section '${sec.name}' (section ${sec.index})`;
  if ((sec.flags & SHF_COMPRESSED) !== 0n) {
    const r = new ByteReader(raw);
    const hdr = file.header.bits === 32 ? 12 : 24;
    r.check(0, hdr, `${what} compression header`, 'section');
    const chType = r.u32(0);
    const size = file.header.bits === 32 ? r.u32(4) : toSafeNumber(r.u64(8), `${what} uncompressed size`);
    if (chType !== ELFCOMPRESS_ZLIB)
      throw new ImageError(`${what} uses compression type ${chType}, only zlib (1) is supported`);
    return inflateSection(raw.subarray(hdr), size, what);
  }
  if (
    sec.name.startsWith('.zdebug') &&
    raw.length >= 12 &&
    raw[0] === 0x5a &&
    raw[1] === 0x4c &&
    raw[2] === 0x49 &&
    raw[3] === 0x42
  ) {
    const be = new DataView(raw.buffer, raw.byteOffset + 4, 8);
    const sizeBe = toSafeNumber(be.getBigUint64(0, false), `${what} uncompressed size`);
    return inflateSection(raw.subarray(12), sizeBe, what);
  }
  return raw;
}

function inflateSection(data: Uint8Array, size: number, what: string): Uint8Array {
  if (size > MAX_DECOMPRESSED_SECTION)
    throw new ImageError(`${what} declares ${size} uncompressed bytes, above the 512 MiB limit`);
  // Deflate expands at most 1032:1 (RFC 1951: a 258-byte match in 2 bits): a larger claim is a lie.
  if (size > data.length * 1032 + 1024)
    throw new ImageError(
      `${what} declares ${size} uncompressed bytes, more than ${data.length} bytes of zlib data can hold`,
    );
  // zlib (RFC 1950): CMF (CM 8 = deflate), FLG (FCHECK, no preset dictionary), deflate body, Adler-32.
  if (data.length < 2 || (data[0] & 0x0f) !== 8 || ((data[0] << 8) | data[1]) % 31 !== 0 || data[1] & 0x20)
    throw new ImageError(`${what} has corrupt zlib data: bad zlib header`);
  let out: Uint8Array;
  try {
    out = inflateRawBounded(data, 2, size, 'zlib', size).out;
  } catch (e) {
    throw new ImageError(`${what} has corrupt zlib data: ${(e as Error).message}`);
  }
  return out;
}

/** The contents of the first section named `name` (inflated if compressed), or undefined. */
export function sectionByName(file: ElfFile, name: string): Uint8Array | undefined {
  const s = findSection(file, name);
  if (s) return sectionContents(file, s);
  if (name.startsWith('.debug_')) {
    const z = findSection(file, '.zdebug_' + name.slice(7));
    if (z) return sectionContents(file, z);
  }
  return undefined;
}
