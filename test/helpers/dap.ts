/**
 * Helpers for the debug adapter's DAP tests: builds dist/debug-adapter.js
 * (the same esbuild options as scripts/build.mjs) and starts DebugClients
 * against it, with the real engine or the test machine of fake-machine.ts.
 */
import { DebugClient } from '@vscode/debugadapter-testsupport';
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './debian';

export const ADAPTER = join(REPO_ROOT, 'dist', 'debug-adapter.js');
let built: Promise<void> | undefined;

/** Bundles debug-adapter/main.ts to dist/debug-adapter.js once per test run. */
export function buildAdapter(): Promise<void> {
  built ??= esbuild
    .build({
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: true,
      logLevel: 'warning',
      entryPoints: [join(REPO_ROOT, 'debug-adapter', 'main.ts')],
      outfile: ADAPTER,
    })
    .then(() => undefined);
  return built;
}

/** Starts a DebugClient on `node dist/debug-adapter.js`; `fake` selects test/helpers/fake-machine.ts as the engine. */
export async function startClient(opts: { fake: boolean }): Promise<DebugClient> {
  await buildAdapter();
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opts.fake) {
    env.PVSCOPE_TEST_MACHINE_MODULE = join(REPO_ROOT, 'test', 'helpers', 'fake-machine.ts');
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require tsx/cjs`.trim();
  } else {
    delete env.PVSCOPE_TEST_MACHINE_MODULE;
  }
  const dc = new DebugClient('node', ADAPTER, 'pvscope', { env, cwd: REPO_ROOT }, true);
  dc.defaultTimeout = 20000;
  await dc.start();
  return dc;
}

/** A scratch file under .cache/dap/ (git-ignored); returns its path. */
export function scratchFile(name: string, content: string | Uint8Array): string {
  const dir = join(REPO_ROOT, '.cache', 'dap');
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/**
 * Assembles and links a small x86-64 program (GNU as syntax) with DWARF line
 * information, text at 0x1000 and data at 0x4000, into .cache/dap/<name>.elf.
 * Throws when gcc fails.
 */
export function buildAsmGuest(name: string, source: string): { elf: string; src: string } {
  const src = scratchFile(`${name}.S`, source);
  const elf = join(REPO_ROOT, '.cache', 'dap', `${name}.elf`);
  execFileSync(
    'gcc',
    [
      '-g',
      '-nostdlib',
      '-static',
      '-no-pie',
      '-Wl,-Ttext=0x1000',
      '-Wl,-Tdata=0x4000',
      '-Wl,--build-id=none',
      '-Wl,-z,max-page-size=0x1000',
      '-Wl,-z,noseparate-code',
      '-o',
      elf,
      src,
    ],
    { stdio: 'pipe' },
  );
  return { elf, src };
}

/**
 * Builds a 64-bit Xen PV test kernel from freestanding C compiled with
 * `-g -O0` (DWARF line tables, frame pointers) plus a small `_start` that
 * sets up a stack, calls `cmain()` and shuts the domain down (poweroff).
 * The ELF carries the Xen notes a PV loader needs (GUEST_OS, LOADER generic,
 * XEN_VERSION xen-3.0, VIRT_BASE 0, ENTRY _start); text at 0x1000.
 * Files go to .cache/dap/<name>/. Throws when gcc/ld fail.
 */
export function buildDebugXenGuest(name: string, c: string): { elf: string; src: string } {
  const dir = join(REPO_ROOT, '.cache', 'dap', name);
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `${name}.c`);
  writeFileSync(src, c);
  const note = (type: number, desc: string, size: number) =>
    `  .balign 4\n  .long 4\n  .long ${size}\n  .long ${type}\n  .asciz "Xen"\n  .balign 4\n${desc}\n  .balign 4\n`;
  const str = (type: number, s: string) => note(type, `  .asciz "${s}"`, s.length + 1);
  const asm = `  .text
  .globl _start
  .type _start, @function
_start:
  lea stack_top(%rip), %rsp
  xor %ebp, %ebp
  call cmain
  movl $0, shutdown_reason(%rip)
  lea shutdown_reason(%rip), %rsi
  mov $2, %edi
  mov $29, %eax
  syscall
1: jmp 1b
  .size _start, . - _start
  .data
  .balign 16
shutdown_reason: .long 0
  .bss
  .balign 4096
stack: .fill 16384, 1, 0
stack_top:
  .section .note.Xen, "a", @note
${str(6, 'pvscope-test')}${str(8, 'generic')}${str(5, 'xen-3.0')}${note(3, '  .quad 0', 8)}${note(1, '  .quad _start', 8)}`;
  const asmFile = join(dir, 'start.S');
  writeFileSync(asmFile, asm);
  const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe', cwd: dir });
  run('as', ['--64', '-o', join(dir, 'start.o'), asmFile]);
  run('gcc', [
    '-m64',
    '-g',
    '-O0',
    '-fno-omit-frame-pointer',
    '-ffreestanding',
    '-fno-pic',
    '-fno-pie',
    '-fno-stack-protector',
    '-fno-asynchronous-unwind-tables',
    '-fcf-protection=none',
    '-mno-red-zone',
    '-mgeneral-regs-only',
    '-nostdlib',
    '-c',
    src,
    '-o',
    join(dir, 'c.o'),
  ]);
  const elf = join(dir, `${name}.elf`);
  run('ld', [
    '-m',
    'elf_x86_64',
    '-Ttext-segment=0x1000',
    '-z',
    'noexecstack',
    '--no-warn-rwx-segments',
    '-o',
    elf,
    join(dir, 'start.o'),
    join(dir, 'c.o'),
  ]);
  return { elf, src };
}
