/**
 * Builds small test ELF images with the host toolchain (gcc, as, ld; gcc -m32
 * for ELF32) and wraps them the way Linux wraps vmlinux into a bzImage, for
 * the engine/image tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory for one test file's artefacts. */
export function makeTempDir(prefix = 'pvscope-image-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Xen note list for {@link xenNotesAsm}: [type, value]; strings become NUL-terminated, numbers `.long`/`.quad`. */
export type NoteSpec = [type: number, value: string | bigint | number, size?: 1 | 2 | 4 | 8];

/**
 * Assembly for a `.note.Xen` section in the ELFNOTE layout
 * (namesz, descsz, type, "Xen\0", desc, 4-byte alignment) — the layout Linux's
 * xen-head.S and Xen's elfnote.h use.
 */
export function xenNotesAsm(notes: NoteSpec[], owner = 'Xen'): string {
  let s = '.section .note.Xen, "a", @note\n.balign 4\n';
  notes.forEach(([type, value, size], i) => {
    s += `.long 2f${i} - 1f${i}\n.long 4f${i} - 3f${i}\n.long ${type}\n1${i}: .asciz "${owner}"\n2${i}: .balign 4\n3${i}: `;
    if (typeof value === 'string') s += `.asciz "${value}"\n`;
    else {
      const sz = size ?? 8;
      const dir = sz === 1 ? '.byte' : sz === 2 ? '.short' : sz === 4 ? '.long' : '.quad';
      s += `${dir} ${value.toString()}\n`;
    }
    s += `4${i}: .balign 4\n`;
  });
  // Turn the "1f0"/"10:" placeholders into local labels (.Lxn1_0) that leave no symbols.
  return s
    .replace(/(\d)f(\d+)/g, (_m, a: string, b: string) => `.Lxn${a}_${b}`)
    .replace(/^(\d)(\d+):/gm, '.Lxn$1_$2:')
    .replace(/ (\d)(\d+): /g, ' .Lxn$1_$2: ');
}

/** Header of the test "kernel", placed in inc/util.h (a second file in another directory). */
export const TEST_H_SOURCE = `/* pvscope image test header */
static inline int twice(int v)
{
  return v * 2; /* MARK:twice */
}
`;

/** C source of the test "kernel": known functions and objects; `MARK:name` comments locate lines. */
export const TEST_C_SOURCE = `/* pvscope image test guest */
#include "inc/util.h"
int counter = 5;
const char banner[] = "hello";
static int helper(int x)
{
  int y = x * 3;
  y += counter; /* MARK:helper */
  return y;
}

__attribute__((noinline)) int compute(int a, int b)
{
  int s = 0; /* MARK:compute-first */
  for (int i = 0; i < a; i++)
    s += helper(i) + twice(b); /* MARK:loop */
  return s;
}

void _start(void)
{
  counter = compute(3, 4); /* MARK:start */
  for (;;)
    ;
}
`;

/** 1-based line of the `MARK:<name>` comment in `source`. */
export function lineOf(source: string, name: string): number {
  const i = source
    .split('\n')
    .findIndex(
      (l) => l.includes(`MARK:${name} `) || l.endsWith(`MARK:${name}`) || l.includes(`MARK:${name} */`),
    );
  if (i < 0) throw new Error(`no MARK:${name}`);
  return i + 1;
}

/** Options for {@link buildTestElf}. */
export interface BuildOptions {
  bits: 32 | 64;
  /** Xen notes to include (none when omitted). */
  notes?: NoteSpec[];
  /** Legacy __xen_guest string to include. */
  xenGuest?: string;
  /** DWARF version for -g (none when omitted). */
  dwarf?: 4 | 5;
  /** Extra gcc flags (e.g. -Wl,--compress-debug-sections=zlib). */
  flags?: string[];
  /** Linker script text (default: the toolchain's). */
  linkerScript?: string;
  /** Output file name inside `dir`. */
  name: string;
  /** Let gcc emit .eh_frame (the default build passes -fno-asynchronous-unwind-tables before `flags`). */
  keepEhFrame?: boolean;
}

/**
 * Compiles {@link TEST_C_SOURCE} plus the notes/__xen_guest assembly into a
 * static, freestanding ELF in `dir`.
 * @returns the path of the ELF file.
 * @throws Error with the compiler's output when the build fails.
 */
export function buildTestElf(dir: string, o: BuildOptions): string {
  const c = join(dir, `${o.name}.c`);
  const s = join(dir, `${o.name}.s`);
  const out = join(dir, o.name);
  writeFileSync(c, TEST_C_SOURCE);
  mkdirSync(join(dir, 'inc'), { recursive: true });
  writeFileSync(join(dir, 'inc', 'util.h'), TEST_H_SOURCE);
  let asm = '';
  if (o.notes) asm += xenNotesAsm(o.notes);
  if (o.xenGuest !== undefined) asm += `.section __xen_guest, "", @progbits\n.asciz "${o.xenGuest}"\n`;
  writeFileSync(s, asm);
  const args = [
    o.bits === 32 ? '-m32' : '-m64',
    '-O1',
    '-ffreestanding',
    '-fno-pie',
    '-no-pie',
    '-nostdlib',
    '-static',
    ...(o.keepEhFrame ? [] : ['-fno-asynchronous-unwind-tables']),
    '-Wl,--build-id=none',
    '-Wl,-z,max-page-size=4096',
    ...(o.dwarf ? [`-gdwarf-${o.dwarf}`] : []),
    ...(o.flags ?? []),
    c,
    s,
    '-o',
    out,
  ];
  if (o.linkerScript) {
    const ld = join(dir, `${o.name}.ld`);
    writeFileSync(ld, o.linkerScript);
    args.push(`-Wl,-T,${ld}`);
  }
  try {
    execFileSync('gcc', args, { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`gcc failed: ${err.stderr?.toString() ?? err.message}`);
  }
  return out;
}

/**
 * Linker script placing the image like Linux x86_64: virtual addresses at
 * `virtBase + physStart`, physical load addresses (p_paddr) at `physStart`.
 */
export function kernelLinkerScript(virtBase: bigint, physStart: bigint): string {
  const v = '0x' + (virtBase + physStart).toString(16);
  const off = '0x' + virtBase.toString(16);
  return `ENTRY(_start)
SECTIONS {
  . = ${v};
  .text : AT(ADDR(.text) - ${off}) { *(.text*) }
  .rodata : AT(ADDR(.rodata) - ${off}) { *(.rodata*) }
  .note.Xen : AT(ADDR(.note.Xen) - ${off}) { *(.note.Xen) }
  .data : AT(ADDR(.data) - ${off}) { *(.data*) }
  .bss : AT(ADDR(.bss) - ${off}) { *(.bss*) *(COMMON) }
  /DISCARD/ : { *(.comment) *(.eh_frame) *(.note.GNU-stack) }
}
`;
}

/** Runs a command-line compressor reading `data` from stdin, e.g. ['xz', '--check=crc32', '-c']. */
export function compressWith(cmd: string[], data: Uint8Array): Uint8Array {
  return new Uint8Array(execFileSync(cmd[0], cmd.slice(1), { input: data, maxBuffer: 1 << 30 }));
}

/** True if `cmd` is on PATH. */
export function haveTool(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Wraps a compressed payload into a minimal bzImage: setup header with "HdrS",
 * boot protocol `version`, `setupSects`, payload_offset and payload_length;
 * the payload gets Linux's 4-byte uncompressed-size trailer when `sizeTrailer` is given.
 */
export function makeBzImage(
  payload: Uint8Array,
  opts: {
    setupSects?: number;
    payloadOffset?: number;
    version?: number;
    sizeTrailer?: number;
    tail?: number;
  } = {},
): Uint8Array {
  const setupSects = opts.setupSects ?? 4;
  const payloadOffset = opts.payloadOffset ?? 0x200;
  let body = payload;
  if (opts.sizeTrailer !== undefined) {
    body = new Uint8Array(payload.length + 4);
    body.set(payload);
    new DataView(body.buffer).setUint32(payload.length, opts.sizeTrailer, true);
  }
  const start = (setupSects + 1) * 512 + payloadOffset;
  const out = new Uint8Array(start + body.length + (opts.tail ?? 64));
  const dv = new DataView(out.buffer);
  out[0x1f1] = setupSects;
  out.set([0x48, 0x64, 0x72, 0x53], 0x202);
  dv.setUint16(0x206, opts.version ?? 0x020f, true);
  dv.setUint32(0x248, payloadOffset, true);
  dv.setUint32(0x24c, body.length, true);
  out.set(body, start);
  return out;
}

/** Reads a file as a Uint8Array. */
export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Runs addr2line on `elf` for the given addresses; returns "file:line" strings (as addr2line prints). */
export function addr2line(elf: string, addrs: bigint[]): string[] {
  if (addrs.length === 0) return [];
  const out = execFileSync('addr2line', ['-e', elf, ...addrs.map((a) => '0x' + a.toString(16))], {
    encoding: 'utf8',
  });
  return out.trim().split('\n');
}
