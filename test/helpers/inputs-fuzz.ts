/**
 * The inputs fuzzer (issue 8): deterministic malformed kernel images and xl
 * configuration files, run in a child process so that a hang fails a test
 * (the parent's timeout) instead of wedging mocha, and so that the child's
 * peak RSS measures what loading costs.
 *
 * Image cases start from seed images the parent builds (gcc-built PV ELFs,
 * 64- and 32-bit, with Xen notes, symbols, DWARF and CFI; each compressed by
 * every command-line compressor present, and wrapped in a bzImage) and the
 * bomb generators of image-bombs.ts, then apply one to three mutations:
 * truncation (often at a structure boundary), byte flips, runs of 0x00/0xff,
 * and structure-aware field writes with boundary values: ELF header fields
 * (e_phoff, e_phnum, e_shoff, e_shnum, e_shstrndx, e_phentsize...), program
 * headers (p_offset, p_filesz, p_memsz, p_vaddr... overflowing 64-bit
 * offsets), section headers (sh_offset, sh_size, sh_link, sh_entsize,
 * SHF_COMPRESSED), Xen note headers and descriptors, symbol entries,
 * section contents (DWARF, CFI), and the bzImage setup header
 * (setup_sects, version, payload_offset, payload_length). Each case goes
 * through loadKernelImage (decompression cap `cap`), the debugger's
 * loadSymbolFile for ELF-family cases, and on success createMachine (the
 * domain builder) with 8 MiB of RAM.
 *
 * Config cases: random bytes, and grammar-shaped statements (known,
 * refused, ignored, unknown and Object.prototype key names; `=` and `+=`;
 * huge, negative, fractional and hex numbers; strings with every escape,
 * unterminated or long; lists nested up to 30 deep; `;`, comments,
 * continuations); each parsed with parseXlConfigDetailed, the result
 * re-validated by validateDomainConfig and checked against the limits; plus
 * random xl disk and vif spec strings.
 *
 * Launch cases: random launch-attribute objects for the debug adapter's
 * validateLaunchArgs (right and wrong types, huge, negative, fractional and
 * non-finite numbers, prototype names as attributes, disks and symbols
 * arrays of odd entries, paths to a regular file, a directory, /dev/zero, a
 * missing file, the seed files, an xl file with random text); a plan must
 * be within the limits.
 *
 * A case is clean when it gives an ImageError / MachineConfigError /
 * ConfigError with a non-empty message, or a loaded image / valid config.
 * Anything else (TypeError, RangeError, a plain Error, a non-Error, a
 * config outside the limits) is a failure, reported with the case id.
 *
 * As a script: `node -r tsx/cjs test/helpers/inputs-fuzz.ts JOB.json` prints
 * one `{"fuzz": InputsFuzzResult}` line.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decompress,
  ImageError,
  loadKernelImage,
  loadSymbolFile,
  type CompressionFormat,
} from '../../engine/image';
import { createMachine, MachineConfigError } from '../../engine/machine';
import {
  ConfigError,
  IGNORED_KEYS,
  MAX_CMDLINE,
  MAX_MEMORY_MIB,
  MAX_VCPUS,
  parseDiskSpec,
  parseVifSpec,
  parseXlConfigDetailed,
  REFUSED_KEYS,
  validateDomainConfig,
} from '../../engine/xen/config';
import { LaunchError, validateLaunchArgs } from '../../debug-adapter/launch';
import { gzipBomb, lz4Bomb, zstdBomb } from './image-bombs';
import { makeBzImage } from './image-build';
import { Rng } from './x86-gen';

/** What the child runs. */
export interface InputsFuzzJob {
  kind: 'images' | 'configs' | 'launch';
  seed: number;
  cases: number;
  /** Directory of seed files (images only): NAME.bin, any format. */
  seedDir?: string;
  /** Decompression cap for loadKernelImage (bytes). */
  cap: number;
  /** A case slower than this (ms) is a failure. */
  caseBoundMs: number;
  /** Also count clean errors by message shape (digits and paths folded), in `messages`. */
  messages?: boolean;
}

/** What the child reports. */
export interface InputsFuzzResult {
  kind: 'images' | 'configs' | 'launch';
  cases: number;
  /** Outcome counts: `loaded`, `built`, `ImageError`, `MachineConfigError`, `ConfigError`, `config`. */
  outcomes: Record<string, number>;
  maxCaseMs: number;
  maxCase: string;
  peakRssMiB: number;
  totalMs: number;
  /** First 20 failures: case id, what happened. */
  failures: string[];
  failureCount: number;
  /** The child failed (no result line). */
  error?: string;
  /** With `job.messages`: clean errors by message shape. */
  messages?: Record<string, number>;
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Images

/** Boundary values for an n-byte field, `len` the file length. */
function boundary(rng: Rng, bytes: 1 | 2 | 4 | 8, len: number): bigint {
  const all = (1n << BigInt(bytes * 8)) - 1n;
  const picks: bigint[] = [
    0n,
    1n,
    2n,
    all,
    all >> 1n,
    (all >> 1n) + 1n,
    all - 1n,
    BigInt(len),
    BigInt(Math.max(0, len - 1)),
    BigInt(len + 1),
    BigInt(len) * 2n,
    0x40n,
    0x1000n,
    0xffffn,
    0x10000n,
    0x7fffffffn,
    0x80000000n,
    0xffffffffn,
    0x100000000n,
    0xffffffff80000000n,
    0xffffffffffff0000n,
    1n << 53n,
    BigInt(rng.u32()),
    rng.u64(),
  ];
  return rng.pick(picks) & all;
}

function writeField(b: Uint8Array, off: number, size: 1 | 2 | 4 | 8, v: bigint): void {
  if (off < 0 || off + size > b.length) return;
  for (let i = 0; i < size; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

function readField(b: Uint8Array, off: number, size: 1 | 2 | 4 | 8): number {
  if (off < 0 || off + size > b.length) return 0;
  let v = 0;
  for (let i = Math.min(size, 6) - 1; i >= 0; i--) v = v * 256 + b[off + i];
  return v;
}

/** Layout facts of an ELF seed, for structure-aware mutations. */
interface ElfShape {
  is64: boolean;
  phoff: number;
  phnum: number;
  phentsize: number;
  shoff: number;
  shnum: number;
  shentsize: number;
}

function elfShape(b: Uint8Array): ElfShape | undefined {
  if (b.length < 52 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) return undefined;
  const is64 = b[4] === 2;
  return is64
    ? {
        is64,
        phoff: readField(b, 32, 8),
        shoff: readField(b, 40, 8),
        phentsize: readField(b, 54, 2),
        phnum: readField(b, 56, 2),
        shentsize: readField(b, 58, 2),
        shnum: readField(b, 60, 2),
      }
    : {
        is64,
        phoff: readField(b, 28, 4),
        shoff: readField(b, 32, 4),
        phentsize: readField(b, 42, 2),
        phnum: readField(b, 44, 2),
        shentsize: readField(b, 46, 2),
        shnum: readField(b, 48, 2),
      };
}

type Field = [off: number, size: 1 | 2 | 4 | 8];

const EHDR64: Field[] = [
  [4, 1],
  [5, 1],
  [16, 2],
  [18, 2],
  [24, 8],
  [32, 8],
  [40, 8],
  [52, 2],
  [54, 2],
  [56, 2],
  [58, 2],
  [60, 2],
  [62, 2],
];
const EHDR32: Field[] = [
  [4, 1],
  [5, 1],
  [16, 2],
  [18, 2],
  [24, 4],
  [28, 4],
  [32, 4],
  [40, 2],
  [42, 2],
  [44, 2],
  [46, 2],
  [48, 2],
  [50, 2],
];
const PHDR64: Field[] = [
  [0, 4],
  [4, 4],
  [8, 8],
  [16, 8],
  [24, 8],
  [32, 8],
  [40, 8],
  [48, 8],
];
const PHDR32: Field[] = [
  [0, 4],
  [4, 4],
  [8, 4],
  [12, 4],
  [16, 4],
  [20, 4],
  [24, 4],
  [28, 4],
];
const SHDR64: Field[] = [
  [0, 4],
  [4, 4],
  [8, 8],
  [16, 8],
  [24, 8],
  [32, 8],
  [40, 4],
  [44, 4],
  [48, 8],
  [56, 8],
];
const SHDR32: Field[] = [
  [0, 4],
  [4, 4],
  [8, 4],
  [12, 4],
  [16, 4],
  [20, 4],
  [24, 4],
  [28, 4],
  [32, 4],
  [36, 4],
];

/** Section [offset, size] of section `i` (from the seed's own table). */
function section(b: Uint8Array, s: ElfShape, i: number): { off: number; size: number; type: number } {
  const h = s.shoff + i * s.shentsize;
  return s.is64
    ? { type: readField(b, h + 4, 4), off: readField(b, h + 24, 8), size: readField(b, h + 32, 8) }
    : { type: readField(b, h + 4, 4), off: readField(b, h + 16, 4), size: readField(b, h + 20, 4) };
}

/** Offsets of the note headers in every PT_NOTE segment. */
function noteHeaders(b: Uint8Array, s: ElfShape): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.phnum && i < 64; i++) {
    const h = s.phoff + i * s.phentsize;
    if (readField(b, h, 4) !== 4) continue;
    const off = s.is64 ? readField(b, h + 8, 8) : readField(b, h + 4, 4);
    const size = s.is64 ? readField(b, h + 32, 8) : readField(b, h + 16, 4);
    let p = off;
    while (p + 12 <= Math.min(b.length, off + size) && out.length < 256) {
      out.push(p);
      const namesz = readField(b, p, 4);
      const descsz = readField(b, p + 4, 4);
      p += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
    }
  }
  return out;
}

/** One structure-aware ELF mutation (in place); returns its description. */
function mutateElf(rng: Rng, b: Uint8Array, s: ElfShape): string {
  const len = b.length;
  const what = rng.int(7);
  if (what === 0) {
    const [off, size] = rng.pick(s.is64 ? EHDR64 : EHDR32);
    writeField(b, off, size, boundary(rng, size, len));
    return `ehdr@${off}`;
  }
  if (what === 1 && s.phnum > 0) {
    const i = rng.int(Math.min(s.phnum, 64));
    const [off, size] = rng.pick(s.is64 ? PHDR64 : PHDR32);
    writeField(b, s.phoff + i * s.phentsize + off, size, boundary(rng, size, len));
    return `phdr${i}@${off}`;
  }
  if (what === 2 && s.shnum > 0) {
    const i = rng.int(Math.min(s.shnum, 256));
    const [off, size] = rng.pick(s.is64 ? SHDR64 : SHDR32);
    // Sometimes set SHF_COMPRESSED (0x800) on a section's flags instead.
    const v = off === 8 && rng.bool(0.3) ? 0x800n : boundary(rng, size, len);
    writeField(b, s.shoff + i * s.shentsize + off, size, v);
    return `shdr${i}@${off}`;
  }
  if (what === 3) {
    const notes = noteHeaders(b, s);
    if (notes.length > 0) {
      const p = rng.pick(notes);
      if (rng.bool(0.6)) {
        const f = rng.int(3) * 4;
        writeField(b, p + f, 4, boundary(rng, 4, len));
        return `note@${p}+${f}`;
      }
      // The descriptor: a boundary value over its start (VIRT_BASE, ENTRY, HYPERCALL_PAGE...), or junk.
      const namesz = readField(b, p, 4);
      const d = p + 12 + ((namesz + 3) & ~3);
      if (rng.bool()) writeField(b, d, 8, boundary(rng, 8, len));
      else for (let k = 0; k < 8 && d + k < len; k++) b[d + k] = rng.u32() & 0xff;
      return `notedesc@${d}`;
    }
  }
  if ((what === 4 || what === 5) && s.shnum > 0) {
    // Inside a section's contents: symbols (st_name, st_value, st_shndx), DWARF, CFI, strings.
    const i = rng.int(Math.min(s.shnum, 256));
    const sec = section(b, s, i);
    if (sec.type !== 8 && sec.size > 0 && sec.off < len) {
      const at = sec.off + rng.int(Math.min(sec.size, len - sec.off));
      const size = rng.pick([1, 2, 4, 8] as const);
      if (rng.bool(0.5)) writeField(b, at, size, boundary(rng, size, len));
      else for (let k = 0; k < 16 && at + k < len; k++) b[at + k] = rng.u32() & 0xff;
      return `sec${i}+${at - sec.off}`;
    }
  }
  return mutateBytes(rng, b);
}

/** Generic byte mutations (in place). */
function mutateBytes(rng: Rng, b: Uint8Array): string {
  if (b.length === 0) return 'empty';
  const at = rng.bool(0.5) ? rng.int(Math.min(b.length, 4096)) : rng.int(b.length);
  switch (rng.int(3)) {
    case 0: {
      const n = 1 + rng.int(8);
      for (let k = 0; k < n; k++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return `flip${n}`;
    }
    case 1: {
      const v = rng.pick([0, 0xff, 0x7f, 0x80]);
      const n = 1 + rng.int(64);
      b.fill(v, at, Math.min(b.length, at + n));
      return `fill${v}@${at}+${n}`;
    }
    default:
      b[at] = rng.u32() & 0xff;
      return `byte@${at}`;
  }
}

/** A truncation point: a structure boundary of the ELF, or anywhere. */
function truncation(rng: Rng, b: Uint8Array): number {
  const s = elfShape(b);
  if (s && rng.bool(0.6)) {
    const points = [
      0,
      4,
      16,
      52,
      63,
      64,
      s.phoff,
      s.phoff + s.phentsize - 1,
      s.phoff + s.phnum * s.phentsize - 1,
      s.shoff,
      s.shoff + 10,
      s.shoff + s.shnum * s.shentsize - 1,
    ];
    for (let i = 0; i < Math.min(s.shnum, 64); i++) {
      const sec = section(b, s, i);
      points.push(sec.off, sec.off + 1, sec.off + Math.floor(sec.size / 2));
    }
    for (const n of noteHeaders(b, s)) points.push(n + 5, n + 13);
    return Math.max(0, Math.min(b.length - 1, rng.pick(points)));
  }
  return rng.int(b.length);
}

const BZ_FIELDS: Field[] = [
  [0x1f1, 1],
  [0x202, 4],
  [0x206, 2],
  [0x248, 4],
  [0x24c, 4],
];

/** The seeds: files in `dir`, plus small bombs in the formats image-bombs.ts generates. */
function loadSeeds(dir: string): { name: string; bytes: Uint8Array }[] {
  const seeds: { name: string; bytes: Uint8Array }[] = readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ name: f.slice(0, -4), bytes: new Uint8Array(readFileSync(join(dir, f))) }));
  seeds.push(
    { name: 'bomb-gzip-48M', bytes: gzipBomb(48 * MiB) },
    { name: 'bomb-zstd-48M', bytes: zstdBomb(48 * MiB) },
    { name: 'bomb-zstd-1Gwindow', bytes: zstdBomb(4 * MiB, 0xa0) },
    { name: 'bomb-lz4-48M', bytes: lz4Bomb(48 * MiB) },
  );
  return seeds;
}

/** Builds image case `i` of the job (deterministic in seed and i). */
function imageCase(
  rng: Rng,
  seeds: { name: string; bytes: Uint8Array }[],
): { id: string; bytes: Uint8Array; format?: CompressionFormat } {
  const seed = rng.pick(seeds);
  let b: Uint8Array<ArrayBufferLike> = seed.bytes.slice();
  const steps: string[] = [];
  // Raw compressed streams: a kernel file may be a gzip-compressed ELF, other formats only inside
  // a bzImage; unwrapped ones also go to decompress() directly.
  const format = seedFormat(seed.name);
  let raw = format !== undefined;
  if (format !== undefined && (format !== 'gzip' || rng.bool(0.3)) && rng.bool(0.7)) {
    b = makeBzImage(b, rng.bool() ? { sizeTrailer: rng.pick([0, b.length, 0xffffffff, 64 * MiB]) } : {});
    steps.push('bzwrap');
    raw = false;
  }
  const n = 1 + rng.int(3);
  for (let k = 0; k < n; k++) {
    const shape = elfShape(b);
    const r = rng.int(10);
    if (r === 0 && b.length > 1) {
      const t = truncation(rng, b);
      b = b.slice(0, t);
      steps.push(`trunc${t}`);
    } else if (r === 1 && b.length > 0x250 && b[0x202] === 0x48) {
      const [off, size] = rng.pick(BZ_FIELDS);
      writeField(b, off, size, boundary(rng, size, b.length));
      steps.push(`bz@${off.toString(16)}`);
    } else if (r === 2) {
      const junk = rng.bytes(1 + rng.int(256));
      const out = new Uint8Array(b.length + junk.length);
      out.set(b);
      out.set(junk, b.length);
      b = out;
      steps.push('append');
    } else if (shape && r < 8) steps.push(mutateElf(rng, b, shape));
    else steps.push(mutateBytes(rng, b));
  }
  return { id: `${seed.name}:${steps.join(',')}`, bytes: b, format: raw ? format : undefined };
}

/** The compression format of a raw compressed seed, from its name (`gz-elf64`, `bomb-xz-48M`...). */
function seedFormat(name: string): CompressionFormat | undefined {
  const m = /^(?:bomb-)?(gz|gzip|bz2|xz|lzma|lz4|zst|zstd)-/.exec(name);
  if (!m) return undefined;
  return (
    {
      gz: 'gzip',
      gzip: 'gzip',
      bz2: 'bzip2',
      xz: 'xz',
      lzma: 'lzma',
      lz4: 'lz4',
      zst: 'zstd',
      zstd: 'zstd',
    } as const
  )[m[1]];
}

// ---------------------------------------------------------------------------
// Configs

const KEYS = [
  'name',
  'kernel',
  'ramdisk',
  'cmdline',
  'root',
  'extra',
  'memory',
  'maxmem',
  'vcpus',
  'maxvcpus',
  'disk',
  'vif',
  'type',
  'builder',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'on_watchdog',
  'on_soft_reset',
  'constructor',
  '__proto__',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'memroy',
  ...Object.keys(REFUSED_KEYS).slice(0, 8),
  ...[...IGNORED_KEYS].slice(0, 8),
];

function randomString(rng: Rng, maxLen: number): string {
  const alphabet = 'abcxyz019 ,=:/.-_[]"\'#;\\\t';
  const escapes = ['\\n', '\\t', '\\\\', '\\"', "\\'", '\\x41', '\\x', '\\xZZ', '\\777', '\\0', '\\q', '\\'];
  let s = '';
  const n = rng.int(maxLen + 1);
  for (let i = 0; i < n; i++) {
    const r = rng.int(20);
    if (r === 0) s += rng.pick(escapes);
    else if (r === 1) s += String.fromCharCode(rng.int(0x300));
    else s += alphabet[rng.int(alphabet.length)];
  }
  return s;
}

function randomNumber(rng: Rng): string {
  switch (rng.int(8)) {
    case 0:
      return '9'.repeat(1 + rng.int(400));
    case 1:
      return `-${rng.int(100)}`;
    case 2:
      return `0x${rng.u32().toString(16)}${rng.bool() ? rng.u32().toString(16) : ''}`;
    case 3:
      return `${rng.int(5000)}.${rng.int(100)}`;
    case 4:
      return rng.pick(['0', '1', '32', '33', '64', '3584', '3585', '4096', '1e999', '0x', '+7', '1.', '.5']);
    default:
      return String(rng.int(70000));
  }
}

function randomValue(rng: Rng, depth: number, maxDepth: number): string {
  const r = rng.int(10);
  if (r < 3) return randomNumber(rng);
  if (r < 7 || depth >= maxDepth) {
    const q = rng.bool(0.8) ? '"' : "'";
    const s = randomString(rng, rng.bool(0.05) ? 3000 : 40);
    const body = s.split(q).join(`\\${q}`);
    return rng.bool(0.95) ? `${q}${body}${q}` : `${q}${body}`; // sometimes unterminated
  }
  const n = rng.int(5);
  const items: string[] = [];
  for (let i = 0; i < n; i++) items.push(randomValue(rng, depth + 1, maxDepth));
  const sep = rng.pick([',', ',\n', ' , ', ',\\\n']);
  return `[${items.join(sep)}${rng.bool(0.2) ? ',' : ''}${rng.bool(0.97) ? ']' : ''}`;
}

/** Disk and vif spec shaped strings. */
function specString(rng: Rng): string {
  const parts = [
    'format=raw',
    'vdev=xvda',
    'vdev=xvdz:cdrom',
    'vdev=hda',
    'vdev=sd',
    'access=rw',
    'access=x',
    'target=/tmp/x.img',
    'phy:/dev/vg/lv',
    'file:/a',
    'qcow2:/a',
    'xvdb',
    'w',
    'ro',
    'cdrom',
    'devtype=disk',
    'backend=1',
    'script=x',
    'discard',
    'mac=00:16:3e:00:00:01',
    'mac=01:00:00:00:00:00',
    'mac=zz',
    'bridge=',
    'bridge=xenbr0',
    'ip=1.2.3.4',
    '=',
    '',
    randomString(rng, 12),
  ];
  const n = rng.int(7);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(parts));
  return out.join(rng.pick([',', ', ', ',,']));
}

function configCase(rng: Rng): { id: string; text: string } {
  const r = rng.int(10);
  if (r === 0) {
    let s = '';
    const n = rng.int(600);
    for (let i = 0; i < n; i++) s += String.fromCharCode(rng.int(256));
    return { id: 'bytes', text: s };
  }
  if (r === 1) {
    // Deep nesting, far past the parser's limit.
    const d = 5 + rng.int(5000);
    return { id: `nest${d}`, text: `name = "g"\nkernel = "k"\ndisk = ${'['.repeat(d)}"x"${']'.repeat(d)}\n` };
  }
  const lines: string[] = [];
  if (rng.bool(0.7)) lines.push('name = "g"');
  if (rng.bool(0.7)) lines.push('kernel = "k"');
  const n = rng.int(12);
  for (let i = 0; i < n; i++) {
    const key = rng.bool(0.9) ? rng.pick(KEYS) : randomString(rng, 6).replace(/[^A-Za-z0-9_]/g, '') || 'k_';
    const op = rng.bool(0.8) ? '=' : rng.pick(['+=', '==', ':', '']);
    let value =
      key === 'disk' || key === 'vif'
        ? rng.bool(0.7)
          ? `[ ${Array.from({ length: rng.int(3) }, () => `"${specString(rng)}"`).join(', ')} ]`
          : randomValue(rng, 0, 30)
        : randomValue(rng, 0, rng.bool(0.1) ? 30 : 3);
    if (rng.bool(0.05)) value += ` ${randomValue(rng, 0, 1)}`;
    const end = rng.pick(['\n', '\n', ';', ' # comment\n', '\\\n', '\r\n']);
    lines.push(`${key} ${op} ${value}${end}`);
  }
  return { id: 'stmts', text: lines.join(rng.bool(0.9) ? '\n' : '') };
}

// ---------------------------------------------------------------------------
// Launch attributes

function launchCase(rng: Rng, paths: string[], xlFile: string): { id: string; args: unknown } {
  if (rng.bool(0.03)) return { id: 'non-object', args: rng.pick([null, 5, 'x', [], [1], true]) };
  // An xl file with random text for the `config` attribute.
  writeFileSync(xlFile, configCase(rng).text);
  const anyValue = (depth = 0): unknown => {
    switch (rng.int(depth > 2 ? 8 : 10)) {
      case 0:
        return rng.pick([0, -1, 1, 2, 32, 33, 64, 128, 3584, 3585, 4096, 1.5, NaN, Infinity, 1e20, -0]);
      case 1:
        return rng.pick(paths);
      case 2:
        return 'x'.repeat(rng.pick([0, 1, 1023, 1024, 5000]));
      case 3:
        return rng.pick([true, false, null, undefined]);
      case 4:
        return String(rng.u32());
      case 5:
        return rng.pick(['0x10', '-0x10', '0x', '12abc', ' 7 ', '1e3', '-5']);
      case 6:
        return randomString(rng, 20);
      case 7:
        return { toString: null, valueOf: 1 };
      case 8:
        return Array.from({ length: rng.int(4) }, () => anyValue(depth + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: rng.int(4) }, () => [
            rng.pick(['target', 'vdev', 'access', 'format', 'path', 'offset', '__proto__', 'x']),
            anyValue(depth + 1),
          ]),
        );
    }
  };
  const attrs = [
    'kernel',
    'ramdisk',
    'cmdline',
    'memory',
    'vcpus',
    'disks',
    'config',
    'symbols',
    'stopOnEntry',
    'consoleInput',
    'trace',
    'domainName',
    'consoleIoWrites',
    'cwd',
    'type',
    'request',
  ];
  const oddAttrs = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'bogus'];
  const args: Record<string, unknown> = {};
  // Mostly a real file (paths[0] and [1] are seed images), so that the other attributes get checked.
  if (rng.bool(0.8)) args.kernel = rng.bool(0.7) ? paths[rng.int(2)] : rng.pick(paths);
  const n = rng.int(6);
  for (let i = 0; i < n; i++) {
    const k = rng.bool(0.04) ? rng.pick(oddAttrs) : rng.pick(attrs);
    let v: unknown;
    if (k === 'config') v = rng.bool(0.7) ? xlFile : anyValue();
    else if (k === 'disks')
      v = rng.bool(0.6)
        ? Array.from({ length: rng.int(3) }, () =>
            rng.bool(0.5)
              ? `${rng.pick(paths)},raw,${rng.pick(['xvda', 'xvdb', 'hda', 'bad'])},w`
              : anyValue(1),
          )
        : anyValue();
    else v = anyValue();
    Object.defineProperty(args, k, { value: v, enumerable: true, configurable: true, writable: true });
  }
  return { id: Object.keys(args).join('+'), args };
}

// ---------------------------------------------------------------------------
// Runner

function describeThrown(e: unknown): string {
  if (!(e instanceof Error)) return `non-Error thrown: ${String(e)}`;
  const where = (e.stack ?? '').split('\n').slice(1, 4).join(' | ');
  return `${e.constructor.name}: ${e.message.slice(0, 200)} @ ${where}`;
}

/** Runs a job in this process (the child). */
export function runInputsFuzzJob(job: InputsFuzzJob): InputsFuzzResult {
  const rng = new Rng(job.seed);
  const res: InputsFuzzResult = {
    kind: job.kind,
    cases: 0,
    outcomes: {},
    maxCaseMs: 0,
    maxCase: '',
    peakRssMiB: 0,
    totalMs: 0,
    failures: [],
    failureCount: 0,
  };
  const fail = (id: string, what: string) => {
    res.failureCount++;
    if (res.failures.length < 20) res.failures.push(`case ${id}: ${what}`);
  };
  const count = (k: string) => (res.outcomes[k] = (res.outcomes[k] ?? 0) + 1);
  const clean = (id: string, e: unknown, classes: (new (...a: never[]) => Error)[]) => {
    if (classes.some((c) => e instanceof c) && (e as Error).message.length > 0) {
      count((e as Error).constructor.name);
      if (job.messages) {
        const shape = (e as Error).message.replace(/0x[0-9a-f]+|\d+/gi, 'N').slice(0, 90);
        res.messages ??= {};
        res.messages[shape] = (res.messages[shape] ?? 0) + 1;
      }
      return;
    }
    fail(id, describeThrown(e));
  };
  const t0 = Date.now();
  const seeds = job.kind === 'images' ? loadSeeds(job.seedDir!) : [];
  const launchPaths =
    job.kind === 'launch'
      ? [
          ...readdirSync(job.seedDir!)
            .filter((f) => f.endsWith('.bin'))
            .slice(0, 4)
            .map((f) => join(job.seedDir!, f)),
          job.seedDir!,
          '/dev/zero',
          '/dev/null',
          join(job.seedDir!, 'missing.bin'),
          'relative/missing',
          '',
          ' ',
        ]
      : [];
  const xlFile = join(job.seedDir ?? '/tmp', `launch-${job.seed}.cfg`);
  for (let i = 0; i < job.cases; i++) {
    const c0 = Date.now();
    let id = `${i}`;
    if (job.kind === 'images') {
      const c = imageCase(rng, seeds);
      id = `${i} ${c.id}`;
      let loaded = false;
      try {
        loadKernelImage(c.bytes, job.cap);
        loaded = true;
        count('loaded');
      } catch (e) {
        clean(id, e, [ImageError]);
      }
      if (loaded) {
        try {
          const m = createMachine({
            name: 'fuzz',
            kernel: c.bytes,
            memory: 8,
            vcpus: 1,
            disks: [],
            vifs: [],
          });
          m.destroy();
          count('built');
        } catch (e) {
          clean(id, e, [MachineConfigError]);
        }
      }
      if (c.format !== undefined) {
        try {
          decompress(c.format, c.bytes, job.cap);
          count('decompressed');
        } catch (e) {
          clean(`${id} (decompress ${c.format})`, e, [ImageError]);
        }
      }
      if (!id.includes('bomb') && c.bytes.length < 8 * MiB) {
        try {
          loadSymbolFile(c.bytes, { name: 'fuzz' });
          count('symbols');
        } catch (e) {
          clean(`${id} (symbols)`, e, [ImageError]);
        }
      }
    } else if (job.kind === 'launch') {
      const c = launchCase(rng, launchPaths, xlFile);
      id = `${i} ${c.id}`;
      try {
        const plan = validateLaunchArgs(c.args);
        count('plan');
        const v = plan.config;
        if (!(v.memory >= 1 && v.memory <= MAX_MEMORY_MIB)) fail(id, `memory ${v.memory} accepted`);
        if (!(v.vcpus >= 1 && v.vcpus <= MAX_VCPUS)) fail(id, `vcpus ${v.vcpus} accepted`);
        if (v.cmdline !== undefined && Buffer.byteLength(v.cmdline) > MAX_CMDLINE)
          fail(id, `cmdline of ${Buffer.byteLength(v.cmdline)} bytes accepted`);
        for (const d of v.disks)
          if (d.target === '/dev/zero') fail(id, 'a character device accepted as a disk');
        if (v.kernel === '/dev/zero') fail(id, 'a character device accepted as the kernel');
        JSON.stringify(plan, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
      } catch (e) {
        clean(id, e, [LaunchError]);
      }
    } else {
      const c = configCase(rng);
      id = `${i} ${c.id}`;
      try {
        const r = parseXlConfigDetailed(c.text, '/fuzz');
        count('config');
        const v = validateDomainConfig(r.config);
        if (v.memory < 1 || v.memory > MAX_MEMORY_MIB) fail(id, `memory ${v.memory} accepted`);
        if (v.vcpus < 1 || v.vcpus > MAX_VCPUS) fail(id, `vcpus ${v.vcpus} accepted`);
        if (v.cmdline !== undefined && Buffer.byteLength(v.cmdline) > MAX_CMDLINE)
          fail(id, `cmdline of ${Buffer.byteLength(v.cmdline)} bytes accepted`);
        if (!r.warnings.every((w) => typeof w === 'string' && w.length > 0)) fail(id, 'empty warning');
      } catch (e) {
        clean(id, e, [ConfigError]);
      }
      const spec = specString(rng);
      try {
        parseDiskSpec(spec, '/fuzz');
      } catch (e) {
        clean(`${id} disk ${JSON.stringify(spec)}`, e, [ConfigError]);
      }
      try {
        parseVifSpec(spec);
      } catch (e) {
        clean(`${id} vif ${JSON.stringify(spec)}`, e, [ConfigError]);
      }
    }
    res.cases++;
    const ms = Date.now() - c0;
    if (ms > res.maxCaseMs) {
      res.maxCaseMs = ms;
      res.maxCase = id;
    }
    if (ms > job.caseBoundMs) fail(id, `took ${ms} ms (bound ${job.caseBoundMs})`);
  }
  res.totalMs = Date.now() - t0;
  res.peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
  return res;
}

/** Runs a job in a child process (hang: the child is killed after `timeoutMs`). */
export function runInputsFuzz(job: InputsFuzzJob, jobFile: string, timeoutMs: number): InputsFuzzResult {
  writeFileSync(jobFile, JSON.stringify(job));
  try {
    const p = spawnSync(process.execPath, ['-r', 'tsx/cjs', __filename, jobFile], {
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 16 * MiB,
    });
    const line = (p.stdout ?? '').split('\n').find((l) => l.startsWith('{"fuzz":'));
    if (!line) {
      return {
        kind: job.kind,
        cases: 0,
        outcomes: {},
        maxCaseMs: 0,
        maxCase: '',
        peakRssMiB: 0,
        totalMs: 0,
        failures: [],
        failureCount: 1,
        error: `child ended without a result (status ${p.status}, signal ${p.signal}): ${(p.stderr ?? '').slice(-2000)}`,
      };
    }
    return (JSON.parse(line) as { fuzz: InputsFuzzResult }).fuzz;
  } finally {
    rmSync(jobFile, { force: true });
  }
}

if (require.main === module) {
  const job = JSON.parse(readFileSync(process.argv[2], 'utf8')) as InputsFuzzJob;
  process.stdout.write(`${JSON.stringify({ fuzz: runInputsFuzzJob(job) })}\n`);
}
