/**
 * Xen ELF notes, the legacy `__xen_guest` string, the loader's acceptance
 * checks and the load-address computation, as Xen's libelf
 * (xen/common/libelf/libelf-dominfo.c: elf_xen_parse, elf_xen_note_check,
 * elf_xen_addr_calc_check) and libxenguest (xg_dom_elfloader.c,
 * xg_dom_x86.c) do them. Constants from Xen public/elfnote.h and
 * public/features.h.
 */
import { ElfFile, EM_386, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE, SHT_NOTE, findSection } from './elf';
import { ImageError, hex, readCString } from './errors';

/** XEN_ELFNOTE_* type numbers (Xen public/elfnote.h). */
export const XEN_ELFNOTE = {
  INFO: 0,
  ENTRY: 1,
  HYPERCALL_PAGE: 2,
  VIRT_BASE: 3,
  PADDR_OFFSET: 4,
  XEN_VERSION: 5,
  GUEST_OS: 6,
  GUEST_VERSION: 7,
  LOADER: 8,
  PAE_MODE: 9,
  FEATURES: 10,
  BSD_SYMTAB: 11,
  HV_START_LOW: 12,
  L1_MFN_VALID: 13,
  SUSPEND_CANCEL: 14,
  INIT_P2M: 15,
  MOD_START_PFN: 16,
  SUPPORTED_FEATURES: 17,
  PHYS32_ENTRY: 18,
  PHYS32_RELOC: 19,
} as const;

/** Names of the note types libelf parses, indexed by type; `str` = string descriptor. */
const NOTE_DESC: Record<number, { name: string; str: boolean }> = {
  1: { name: 'ENTRY', str: false },
  2: { name: 'HYPERCALL_PAGE', str: false },
  3: { name: 'VIRT_BASE', str: false },
  4: { name: 'PADDR_OFFSET', str: false },
  5: { name: 'XEN_VERSION', str: true },
  6: { name: 'GUEST_OS', str: true },
  7: { name: 'GUEST_VERSION', str: true },
  8: { name: 'LOADER', str: true },
  9: { name: 'PAE_MODE', str: true },
  10: { name: 'FEATURES', str: true },
  11: { name: 'BSD_SYMTAB', str: true },
  12: { name: 'HV_START_LOW', str: false },
  13: { name: 'L1_MFN_VALID', str: false },
  14: { name: 'SUSPEND_CANCEL', str: false },
  15: { name: 'INIT_P2M', str: false },
  16: { name: 'MOD_START_PFN', str: false },
  17: { name: 'SUPPORTED_FEATURES', str: false },
  18: { name: 'PHYS32_ENTRY', str: false },
};

/** XENFEAT_* bit numbers (Xen public/features.h). */
export const XENFEAT_NAMES: readonly string[] = [
  'writable_page_tables',
  'writable_descriptor_tables',
  'auto_translated_physmap',
  'supervisor_mode_kernel',
  'pae_pgdir_above_4gb',
  'mmu_pt_update_preserve_ad',
  'highmem_assist',
  'gnttab_map_avail_bits',
  'hvm_callback_vector',
  'hvm_safe_pvclock',
  'hvm_pirqs',
  'dom0',
  'grant_map_identity',
  'memory_op_vnode_supported',
  'ARM_SMCCC_supported',
  'linux_rsdp_unrestricted',
  'not_direct_mapped',
  'direct_mapped',
];

/** The feature names libelf's FEATURES parser knows (elf_xen_feature_names), by XENFEAT bit. */
const LIBELF_FEATURES: ReadonlyMap<string, number> = new Map([
  ['writable_page_tables', 0],
  ['writable_descriptor_tables', 1],
  ['auto_translated_physmap', 2],
  ['supervisor_mode_kernel', 3],
  ['pae_pgdir_above_4gb', 4],
  ['hvm_callback_vector', 8],
  ['dom0', 11],
]);

/** libelf's ELF_MAX_TOTAL_NOTE_COUNT. */
const MAX_TOTAL_NOTES = 65536;
const U64 = (1n << 64n) - 1n;

/**
 * PAE capability of an x86_32 image as libelf records it (enum xen_pae_type):
 * 'no' (XEN_PAE_NO), 'yes' (XEN_PAE_YES: legacy `PAE=yes...`), 'extended-cr3'
 * (XEN_PAE_EXTCR3: note "yes" or legacy `PAE=yes[extended-cr3]`), 'bimodal'
 * (note containing "bimodal"); undefined when the image says nothing.
 */
export type PaeMode = 'yes' | 'extended-cr3' | 'bimodal' | 'no' | undefined;

/** One Xen note as read (owner "Xen"), for display. */
export interface XenNote {
  /** XEN_ELFNOTE_* type. */
  type: number;
  /** Name from the type table, or `UNKNOWN(n)`. */
  name: string;
  /** Numeric value (descriptor of 1/2/4/8 bytes, else 0) or the string up to NUL. */
  value: bigint | string;
  /** Descriptor size claimed by the note header (bytes). */
  descsz: number;
}

/** One range of the image to copy into guest memory (from a loadable PT_LOAD). */
export interface LoadSegment {
  /** Index of the program header. */
  index: number;
  /** Guest virtual address = p_paddr + virt_offset (mod 2^64). */
  vaddr: bigint;
  /** Offset in the ELF file (bytes). */
  fileOffset: number;
  /** Bytes copied from the file. */
  filesz: number;
  /** Bytes in memory; [filesz, memsz) is zero-filled. */
  memsz: number;
  /** PF_R | PF_W | PF_X. */
  flags: number;
}

/** What a kernel image tells the domain builder, with libelf's defaults applied. */
export interface XenImageInfo {
  /** Where the information came from. */
  source: 'note-segments' | 'note-sections' | 'xen-guest-section';
  /** Builder guest type (xc_dom_guest_type). */
  guestType: 'xen-3.0-x86_64' | 'xen-3.0-x86_32p' | 'xen-3.0-x86_32';
  /** Virtual entry point (ENTRY note / VIRT_ENTRY, default e_entry). */
  entry: bigint;
  /** VIRT_BASE (default 0): virtual address of pfn 0. */
  virtBase: bigint;
  /** PADDR_OFFSET / ELF_PADDR_OFFSET (default 0 with notes, VIRT_BASE with the legacy string). */
  paddrOffset: bigint;
  /** virt_offset = VIRT_BASE - PADDR_OFFSET (mod 2^64). */
  virtOffset: bigint;
  /** Lowest / highest-end virtual address of the loaded image. */
  virtKstart: bigint;
  virtKend: bigint;
  /** Virtual address of the hypercall page, if the image asks for one. */
  hypercallPage?: bigint;
  xenVersion: string;
  guestOs: string;
  guestVersion: string;
  loader: string;
  paeMode: PaeMode;
  /** The PAE_MODE note string (or legacy PAE value) as written, if any. */
  paeModeString?: string;
  /** XENFEAT names: supported (FEATURES names plus SUPPORTED_FEATURES bits) and required (`!name`). */
  features: { supported: Set<string>; required: Set<string> };
  /** XENFEAT bitmap (submap 0) of supported features. */
  supportedFeaturesBitmap: number;
  /** XENFEAT bitmap (submap 0) of required features. */
  requiredFeaturesBitmap: number;
  /** INIT_P2M: virtual address for the p2m list outside the initial mapping. */
  initP2m?: bigint;
  /** MOD_START_PFN non-zero: initrd may be placed unmapped (start_info.mod_start is then a PFN). */
  modStartPfn: boolean;
  /** HV_START_LOW, if given. */
  hvStartLow?: bigint;
  /** SUSPEND_CANCEL non-zero. */
  suspendCancel: boolean;
  /** L1_MFN_VALID mask/value words (maddr-sized), if given. */
  l1MfnValid?: bigint[];
  /** BSD_SYMTAB "yes" (or key present in the legacy string). */
  bsdSymtab: boolean;
  /** PHYS32_ENTRY (PVH only; ignored for PV). */
  phys32Entry?: number;
  /** Every Xen note read, in file order (empty for the legacy string). */
  notes: XenNote[];
  /** The legacy __xen_guest string, when that was used. */
  xenGuestString?: string;
  /** Things libelf would only log (unknown notes, truncated descriptors, ignored legacy errors). */
  warnings: string[];
}

interface Parms {
  virtBase?: bigint;
  entry?: bigint;
  hypercall?: bigint;
  hvStartLow?: bigint;
  p2mBase?: bigint;
  paddrOffset?: bigint;
  phys32Entry?: number;
  xenVersion: string;
  guestOs: string;
  guestVersion: string;
  loader: string;
  pae: PaeMode;
  paeString?: string;
  bsdSymtab: boolean;
  suspendCancel: boolean;
  modStartPfn: boolean;
  l1MfnValid?: bigint[];
  supported: number;
  required: number;
  notes: XenNote[];
  warnings: string[];
}

function newParms(): Parms {
  return {
    xenVersion: '',
    guestOs: '',
    guestVersion: '',
    loader: '',
    pae: undefined,
    bsdSymtab: false,
    suspendCancel: false,
    modStartPfn: false,
    supported: 0,
    required: 0,
    notes: [],
    warnings: [],
  };
}

/**
 * Parses a FEATURES string as libelf's elf_xen_parse_features: names separated
 * by '|', at most 63 characters each, `!name` = required. Unknown plain names
 * are ignored.
 * @returns the unknown required name, or undefined on success.
 */
function parseFeatures(s: string, p: Parms): string | undefined {
  let pos = 0;
  while (pos < s.length) {
    let len = 0;
    let feature = '';
    for (;;) {
      if (len >= 63) break;
      if (pos + len >= s.length) break;
      const c = s[pos + len];
      if (c === '|') {
        len++;
        break;
      }
      feature += c;
      len++;
    }
    pos += len;
    const req = feature.startsWith('!');
    const name = req ? feature.slice(1) : feature;
    const bit = LIBELF_FEATURES.get(name);
    if (bit !== undefined) {
      p.supported |= 1 << bit;
      if (req) p.required |= 1 << bit;
    } else if (req) {
      return name;
    }
  }
  return undefined;
}

/** A note whose descriptor is 1, 2, 4 or 8 bytes reads as that little-endian number; anything else as 0 (elf_note_numeric). */
function noteNumeric(bytes: Uint8Array, desc: number, descsz: number): bigint | undefined {
  if (descsz !== 1 && descsz !== 2 && descsz !== 4 && descsz !== 8) return 0n;
  if (desc + descsz > bytes.length) return undefined;
  let v = 0n;
  for (let i = descsz - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[desc + i]);
  return v;
}

/**
 * Walks the notes in [start, end) of the file (elf_xen_parse_notes).
 * @returns the number of Xen notes parsed.
 * @throws ImageError for an unknown required feature or too many notes.
 */
function parseNoteRange(
  elf: ElfFile,
  p: Parms,
  start: number,
  end: number,
  what: string,
  total: { n: number },
): number {
  const bytes = elf.bytes;
  end = Math.min(end, bytes.length);
  let count = 0;
  let off = start;
  while (off < end) {
    if (++total.n > MAX_TOTAL_NOTES)
      throw new ImageError(`too many ELF notes (more than ${MAX_TOTAL_NOTES})`);
    if (off + 12 > bytes.length) {
      p.warnings.push(`${what}: note header at ${hex(off)} is truncated`);
      break;
    }
    const dv = new DataView(bytes.buffer, bytes.byteOffset + off, 12);
    const namesz = dv.getUint32(0, true);
    const descsz = dv.getUint32(4, true);
    const type = dv.getUint32(8, true);
    const nameOff = off + 12;
    const descOff = nameOff + align4(namesz);
    const next = descOff + align4(descsz);
    const name = readCString(bytes, nameOff, Math.min(nameOff + namesz, end));
    if (name === 'Xen') {
      count++;
      parseXenNote(elf, p, type, descOff, descsz, end, what);
    }
    if (next <= off) break;
    off = next;
  }
  return count;
}

function align4(n: number): number {
  return n + 3 - ((n + 3) % 4);
}

function parseXenNote(
  elf: ElfFile,
  p: Parms,
  type: number,
  desc: number,
  descsz: number,
  end: number,
  what: string,
): void {
  const bytes = elf.bytes;
  const d = NOTE_DESC[type];
  if (!d) {
    p.notes.push({ type, name: `UNKNOWN(${hex(type)})`, value: 0n, descsz });
    p.warnings.push(`${what}: unknown Xen note type ${hex(type)} ignored`);
    return;
  }
  let str = '';
  let val = 0n;
  if (d.str) {
    // Defensive: stop at NUL, at the end of the note range and at the end of the file
    // (GRUB's i386 PAE_MODE note claims 12 bytes but the segment ends after "yes\0").
    str = readCString(bytes, desc, Math.min(desc + descsz, end));
    if (desc + descsz > end)
      p.warnings.push(
        `${what}: ${d.name} note descriptor (${descsz} bytes) runs past the end of its note area; read up to NUL`,
      );
    p.notes.push({ type, name: d.name, value: str, descsz });
  } else {
    const v = noteNumeric(bytes, desc, descsz);
    if (v === undefined)
      p.warnings.push(`${what}: ${d.name} note descriptor extends beyond the file; read as 0`);
    else if (
      descsz !== 1 &&
      descsz !== 2 &&
      descsz !== 4 &&
      descsz !== 8 &&
      type !== XEN_ELFNOTE.L1_MFN_VALID &&
      type !== XEN_ELFNOTE.SUPPORTED_FEATURES
    )
      p.warnings.push(`${what}: ${d.name} note has a ${descsz}-byte descriptor; read as 0`);
    val = v ?? 0n;
    p.notes.push({ type, name: d.name, value: val, descsz });
  }
  switch (type) {
    case XEN_ELFNOTE.LOADER:
      p.loader = str;
      break;
    case XEN_ELFNOTE.GUEST_OS:
      p.guestOs = str;
      break;
    case XEN_ELFNOTE.GUEST_VERSION:
      p.guestVersion = str;
      break;
    case XEN_ELFNOTE.XEN_VERSION:
      p.xenVersion = str;
      break;
    case XEN_ELFNOTE.PAE_MODE:
      p.paeString = str;
      if (str === 'yes') p.pae = 'extended-cr3';
      if (str.includes('bimodal')) p.pae = 'bimodal';
      if (p.pae === undefined) p.pae = 'no';
      break;
    case XEN_ELFNOTE.BSD_SYMTAB:
      if (str === 'yes') p.bsdSymtab = true;
      break;
    case XEN_ELFNOTE.VIRT_BASE:
      p.virtBase = val;
      break;
    case XEN_ELFNOTE.ENTRY:
      p.entry = val;
      break;
    case XEN_ELFNOTE.INIT_P2M:
      p.p2mBase = val;
      break;
    case XEN_ELFNOTE.MOD_START_PFN:
      p.modStartPfn = val !== 0n;
      break;
    case XEN_ELFNOTE.PADDR_OFFSET:
      p.paddrOffset = val;
      break;
    case XEN_ELFNOTE.HYPERCALL_PAGE:
      p.hypercall = val;
      break;
    case XEN_ELFNOTE.HV_START_LOW:
      p.hvStartLow = val;
      break;
    case XEN_ELFNOTE.SUSPEND_CANCEL:
      p.suspendCancel = val !== 0n;
      break;
    case XEN_ELFNOTE.PHYS32_ENTRY:
      p.phys32Entry = Number(val & 0xffffffffn);
      break;
    case XEN_ELFNOTE.FEATURES: {
      const bad = parseFeatures(str, p);
      if (bad !== undefined)
        throw new ImageError(
          `Xen FEATURES note requires unknown feature '${bad}' (libelf refuses the image)`,
        );
      break;
    }
    case XEN_ELFNOTE.SUPPORTED_FEATURES:
      // elf_note_numeric_array(note, 4, 0): first u32 when the descriptor is a whole number of u32s.
      if (descsz >= 4 && descsz % 4 === 0 && desc + 4 <= bytes.length)
        p.supported |= new DataView(bytes.buffer, bytes.byteOffset + desc, 4).getUint32(0, true);
      break;
    case XEN_ELFNOTE.L1_MFN_VALID: {
      const word = elf.header.bits === 64 ? 8 : 4;
      const words: bigint[] = [];
      for (let i = 0; i + word <= descsz && desc + i + word <= bytes.length && words.length < 64; i += word) {
        let v = 0n;
        for (let k = word - 1; k >= 0; k--) v = (v << 8n) | BigInt(bytes[desc + i + k]);
        words.push(v);
      }
      p.l1MfnValid = words;
      break;
    }
  }
}

/** C strtoull(s, NULL, 0): leading space, optional sign, 0x hex / 0 octal / decimal; stops at the first bad digit; 0 if none; saturates. */
export function strtoull(s: string): bigint {
  let i = 0;
  while (i < s.length && /\s/.test(s[i])) i++;
  let neg = false;
  if (s[i] === '+' || s[i] === '-') {
    neg = s[i] === '-';
    i++;
  }
  let base = 10;
  if (s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) {
    base = 16;
    i += 2;
  } else if (s[i] === '0') base = 8;
  let v = 0n;
  let overflow = false;
  for (; i < s.length; i++) {
    const d = parseInt(s[i], 36);
    if (Number.isNaN(d) || d >= base) break;
    v = v * BigInt(base) + BigInt(d);
    if (v > U64) overflow = true;
  }
  if (overflow) return U64;
  return neg ? -v & U64 : v;
}

/** Parses the legacy `__xen_guest` string (elf_xen_parse_guest_info). */
function parseGuestInfo(s: string, p: Parms): void {
  let h = 0;
  while (h < s.length && s[h] !== '\0') {
    let name = '';
    let value = '';
    for (let len = 0; ; len++, h++) {
      if (len >= 31) break;
      if (h >= s.length) break;
      if (s[h] === ',') {
        h++;
        break;
      }
      if (s[h] === '=') {
        h++;
        for (let vlen = 0; ; vlen++, h++) {
          if (vlen >= 127) break;
          if (h >= s.length) break;
          if (s[h] === ',') {
            h++;
            break;
          }
          value += s[h];
        }
        break;
      }
      name += s[h];
    }
    if (name === 'LOADER') p.loader = value;
    if (name === 'GUEST_OS') p.guestOs = value;
    if (name === 'GUEST_VER') p.guestVersion = value;
    if (name === 'XEN_VER') p.xenVersion = value;
    if (name === 'PAE') {
      p.paeString = value;
      if (value === 'yes[extended-cr3]') p.pae = 'extended-cr3';
      else if (value.startsWith('yes')) p.pae = 'yes';
    }
    if (name === 'BSD_SYMTAB') p.bsdSymtab = true;
    if (name === 'VIRT_BASE') p.virtBase = strtoull(value);
    if (name === 'VIRT_ENTRY') p.entry = strtoull(value);
    if (name === 'ELF_PADDR_OFFSET') p.paddrOffset = strtoull(value);
    if (name === 'HYPERCALL_PAGE') p.hypercall = (strtoull(value) << 12n) & U64;
    if (name === 'FEATURES') {
      const bad = parseFeatures(value, p);
      if (bad !== undefined) {
        // libelf stops parsing the string here but does not refuse the image.
        p.warnings.push(
          `__xen_guest FEATURES requires unknown feature '${bad}'; the rest of the string was ignored (as libelf does)`,
        );
        break;
      }
    }
  }
  if (p.virtBase !== undefined && p.hypercall !== undefined) p.hypercall = (p.hypercall + p.virtBase) & U64;
}

/** Result of scanning an image for Xen information, before the acceptance checks. */
export interface XenNoteScan {
  parms: Parms;
  source: XenImageInfo['source'] | undefined;
  xenGuestString?: string;
}

/**
 * Finds the Xen information of an image as elf_xen_parse does: every PT_NOTE
 * segment (skipping those with p_offset 0); if no Xen note was found, every
 * SHT_NOTE section; if still none, the `__xen_guest` section.
 * @throws ImageError when a FEATURES note requires an unknown feature or there are more than 65536 notes.
 */
export function scanXenNotes(elf: ElfFile): XenNoteScan {
  const p = newParms();
  const total = { n: 0 };
  let found = 0;
  let source: XenImageInfo['source'] | undefined;
  for (const ph of elf.programHeaders) {
    if (ph.type !== PT_NOTE || ph.offset === 0) continue;
    found += parseNoteRange(
      elf,
      p,
      ph.offset,
      ph.offset + ph.filesz,
      `PT_NOTE program header ${ph.index}`,
      total,
    );
  }
  if (found > 0) source = 'note-segments';
  if (found === 0) {
    for (const sec of elf.sections) {
      if (sec.index === 0 || sec.type !== SHT_NOTE) continue;
      found += parseNoteRange(elf, p, sec.offset, sec.offset + sec.size, `note section '${sec.name}'`, total);
    }
    if (found > 0) source = 'note-sections';
  }
  let xenGuestString: string | undefined;
  if (found === 0) {
    // Only Xen notes count; notes of other owners must not leak into the defaults.
    p.notes = [];
    const sec = findSection(elf, '__xen_guest');
    if (sec) {
      xenGuestString = readCString(elf.bytes, sec.offset, sec.offset + sec.size);
      parseGuestInfo(xenGuestString, p);
      source = 'xen-guest-section';
    }
  }
  return { parms: p, source, xenGuestString };
}

/** Refusal reasons are prefixed so the debugger can show why the image was rejected. */
function refuse(reason: string): never {
  throw new ImageError(`Xen would refuse this image: ${reason}`);
}

/** Upper bound on one segment's memory size (bytes). */
const MAX_SEGMENT_MEMSZ = 64 * 1024 * 1024 * 1024;

/**
 * Reads the Xen information of a PV kernel image and applies libelf's and the
 * domain builder's checks and address computation.
 *
 * @param elf a parsed ELF32 (EM_386) or ELF64 (EM_X86_64) file.
 * @returns the image information and the PT_LOAD segments with their guest virtual addresses.
 * @throws ImageError "Xen would refuse this image: ..." when libelf/libxenguest
 *   would: no Xen notes nor `__xen_guest`; LOADER not `generic` and GUEST_OS not
 *   `linux`; XEN_VERSION not `xen-3.0...`; an unknown required feature; required
 *   auto_translated_physmap ("PV autotranslate no longer supported");
 *   ELF_PADDR_OFFSET without VIRT_BASE; start/entry out of bounds; INIT_P2M
 *   inside the image; a 32-bit image without PAE. Also ImageError for no
 *   loadable segment, overlapping segments or absurd sizes.
 */
export function readXenImage(elf: ElfFile): { xen: XenImageInfo; segments: LoadSegment[] } {
  const scan = scanXenNotes(elf);
  const p = scan.parms;
  if (scan.source === undefined)
    refuse("not a Xen-ELF image: no Xen ELF notes or '__xen_guest' section found");

  // elf_xen_note_check
  if (!p.loader.startsWith('generic') && !p.guestOs.startsWith('linux'))
    refuse(
      `will only load images built for the generic loader or Linux images (LOADER '${p.loader}', GUEST_OS '${p.guestOs}')`,
    );
  if (!p.xenVersion.startsWith('xen-3.0'))
    refuse(`Xen will only load images built for Xen v3.0 (XEN_VERSION '${p.xenVersion}')`);
  if (p.required & (1 << 2))
    refuse('PV autotranslate no longer supported (FEATURES requires auto_translated_physmap)');

  // Loadable segments (elf_phdr_is_loadable: PT_LOAD with any of PF_R|PF_W|PF_X).
  const loads = elf.programHeaders.filter(
    (ph) => ph.type === PT_LOAD && (ph.flags & (PF_R | PF_W | PF_X)) !== 0,
  );
  if (loads.length === 0) throw new ImageError('ELF image has no loadable PT_LOAD segment');
  let pstart = U64;
  let pend = 0n;
  for (const ph of loads) {
    if (ph.memsz > BigInt(MAX_SEGMENT_MEMSZ))
      throw new ImageError(`ELF program header ${ph.index} memory size ${hex(ph.memsz)} is absurd`);
    if (ph.paddr < pstart) pstart = ph.paddr;
    const e = ph.paddr + ph.memsz;
    if (e > pend) pend = e;
  }

  // elf_xen_addr_calc_check
  if (p.paddrOffset !== undefined && p.virtBase === undefined)
    refuse('ELF_PADDR_OFFSET set, VIRT_BASE unset');
  const virtBase = p.virtBase ?? 0n;
  const paddrOffset = p.paddrOffset ?? (scan.source === 'xen-guest-section' ? virtBase : 0n);
  const virtOffset = (virtBase - paddrOffset) & U64;
  const virtKstart = (pstart + virtOffset) & U64;
  const virtKend = (pend + virtOffset) & U64;
  const entry = p.entry ?? elf.header.entry;
  if (virtKstart > virtKend || entry < virtKstart || entry > virtKend || virtBase > virtKstart)
    refuse(
      `ELF start or entries are out of bounds (VIRT_BASE ${hex(virtBase)}, kernel ${hex(virtKstart)}-${hex(virtKend)}, entry ${hex(entry)})`,
    );
  if (p.p2mBase !== undefined && p.p2mBase >= virtKstart && p.p2mBase < virtKend)
    refuse(
      `P->M table base ${hex(p.p2mBase)} is out of bounds (inside the kernel image ${hex(virtKstart)}-${hex(virtKend)})`,
    );

  // xc_dom_guest_type
  let guestType: XenImageInfo['guestType'];
  if (elf.header.machine === EM_386) {
    guestType =
      p.pae === 'yes' || p.pae === 'extended-cr3' || p.pae === 'bimodal'
        ? 'xen-3.0-x86_32p'
        : 'xen-3.0-x86_32';
    if (guestType === 'xen-3.0-x86_32')
      refuse(
        '32-bit image without PAE support (guest type xen-3.0-x86_32 has no domain builder; PAE_MODE must be "yes")',
      );
  } else guestType = 'xen-3.0-x86_64';

  const segments: LoadSegment[] = loads.map((ph) => ({
    index: ph.index,
    vaddr: (ph.paddr + virtOffset) & U64,
    fileOffset: ph.offset,
    filesz: ph.filesz,
    memsz: Number(ph.memsz),
    flags: ph.flags,
  }));
  const sorted = [...segments].sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (a.vaddr + BigInt(a.memsz) > b.vaddr)
      throw new ImageError(
        `ELF program headers ${a.index} and ${b.index} overlap in guest memory (${hex(a.vaddr)}+${hex(a.memsz)} and ${hex(b.vaddr)})`,
      );
  }

  const names = (bits: number): Set<string> => {
    const s = new Set<string>();
    for (let i = 0; i < 32; i++) if (bits & (1 << i)) s.add(XENFEAT_NAMES[i] ?? `bit${i}`);
    return s;
  };
  const xen: XenImageInfo = {
    source: scan.source,
    guestType,
    entry,
    virtBase,
    paddrOffset,
    virtOffset,
    virtKstart,
    virtKend,
    hypercallPage: p.hypercall,
    xenVersion: p.xenVersion,
    guestOs: p.guestOs,
    guestVersion: p.guestVersion,
    loader: p.loader,
    paeMode: p.pae,
    paeModeString: p.paeString,
    features: { supported: names(p.supported), required: names(p.required) },
    supportedFeaturesBitmap: p.supported >>> 0,
    requiredFeaturesBitmap: p.required >>> 0,
    initP2m: p.p2mBase,
    modStartPfn: p.modStartPfn,
    hvStartLow: p.hvStartLow,
    suspendCancel: p.suspendCancel,
    l1MfnValid: p.l1MfnValid,
    bsdSymtab: p.bsdSymtab,
    phys32Entry: p.phys32Entry,
    notes: p.notes,
    xenGuestString: scan.xenGuestString,
    warnings: p.warnings,
  };
  return { xen, segments };
}
