/**
 * Builds tiny Xen PV test kernels at test time with GNU as + ld: the body
 * (AT&T syntax) is wrapped in an ELF with the Xen notes a PV loader needs
 * (GUEST_OS, LOADER "generic", XEN_VERSION "xen-3.0", VIRT_BASE 0, ENTRY
 * `_start`, PAE_MODE "yes" for 32-bit), linked with its text segment at 0x1000.
 *
 * The body may use:
 *   HYPERCALL nr        -- `mov $nr,%eax; syscall` (64) / `mov $nr,%eax; int $0x82` (32)
 *   SHUTDOWN reason     -- sched_op(SCHEDOP_shutdown, &reason) (clobbers argument registers)
 * and the labels `stack_top` (a 16 KiB stack) and `scratch` (a zeroed 64 KiB area).
 * Execution starts at `_start` with rSI = start_info as Xen sets it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../../engine/machine';
import type { Stop } from '../../engine/machine-api';

export interface XenGuestSpec {
  bits: 32 | 64;
  /** Assembly for the text section, starting at `_start`. */
  asm: string;
  /** Optional freestanding C compiled with gcc and linked in (call its functions from `asm`). */
  c?: string;
  /** gcc code-generation flags for `c`, replacing the default `-O1 -mgeneral-regs-only` (e.g. `-O2 -msse2`). */
  cflags?: string[];
}

function notes(bits: 32 | 64): string {
  const num = bits === 64 ? '.quad' : '.long';
  const size = bits === 64 ? 8 : 4;
  const note = (type: number, desc: string, descsz: string) => `
  .balign 4
  .long 4
  .long ${descsz}
  .long ${type}
  .asciz "Xen"
  .balign 4
${desc}
  .balign 4`;
  const str = (type: number, s: string) => note(type, `  .asciz "${s}"`, `${s.length + 1}`);
  return `
  .section .note.Xen, "a", @note
${str(6, 'pvscope-test')}
${str(8, 'generic')}
${str(5, 'xen-3.0')}
${note(3, `  ${num} 0`, String(size))}
${note(1, `  ${num} _start`, String(size))}
${bits === 32 ? str(9, 'yes') : ''}
`;
}

function prelude(bits: 32 | 64): string {
  const hc =
    bits === 64
      ? `.macro HYPERCALL nr
  mov $\\nr, %eax
  syscall
.endm
.macro SHUTDOWN reason
  movl $\\reason, shutdown_reason(%rip)
  lea shutdown_reason(%rip), %rsi
  mov $2, %edi
  HYPERCALL 29
.endm`
      : `.macro HYPERCALL nr
  mov $\\nr, %eax
  int $0x82
.endm
.macro SHUTDOWN reason
  movl $\\reason, shutdown_reason
  mov $shutdown_reason, %ecx
  mov $2, %ebx
  HYPERCALL 29
.endm`;
  return `${hc}
  .text
  .globl _start
`;
}

const TAIL = `
  .data
  .balign 16
shutdown_reason: .long 0
  .bss
  .balign 4096
scratch: .fill 65536, 1, 0
stack: .fill 16384, 1, 0
stack_top:
`;

/**
 * Assembles and links the guest; returns the ELF bytes.
 * @throws Error with the assembler's message when the body does not assemble.
 */
export function buildXenGuest(spec: XenGuestSpec): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-guest-'));
  try {
    const src = join(dir, 'g.S');
    writeFileSync(src, `${prelude(spec.bits)}${spec.asm}\n${TAIL}\n${notes(spec.bits)}\n`);
    const obj = join(dir, 'g.o');
    const elf = join(dir, 'g.elf');
    execFileSync('as', [spec.bits === 64 ? '--64' : '--32', '-o', obj, src], { stdio: 'pipe' });
    const objs = [obj];
    if (spec.c !== undefined) {
      const csrc = join(dir, 'c.c');
      const cobj = join(dir, 'c.o');
      writeFileSync(csrc, spec.c);
      execFileSync(
        'gcc',
        [
          spec.bits === 64 ? '-m64' : '-m32',
          ...(spec.cflags ?? ['-O1', '-mgeneral-regs-only']),
          '-ffreestanding',
          '-fno-pic',
          '-fno-pie',
          '-fno-stack-protector',
          '-fno-asynchronous-unwind-tables',
          '-mno-red-zone',
          '-nostdlib',
          '-c',
          csrc,
          '-o',
          cobj,
        ],
        { stdio: 'pipe' },
      );
      objs.push(cobj);
    }
    execFileSync(
      'ld',
      [
        '-m',
        spec.bits === 64 ? 'elf_x86_64' : 'elf_i386',
        '-Ttext-segment=0x1000',
        '-z',
        'noexecstack',
        '--no-warn-rwx-segments',
        '-o',
        elf,
        ...objs,
      ],
      {
        stdio: 'pipe',
      },
    );
    return new Uint8Array(readFileSync(elf));
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`buildXenGuest: ${err.stderr?.toString() || err.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A machine made by `bootGuest`. */
export type GuestMachine = ReturnType<typeof createMachine>;

/**
 * Builds a small PV guest from `asm` (buildXenGuest), runs it in a 16 MiB one-vCPU domain for at
 * most `runs` run(1M) calls or until it shuts down, and returns the machine and the last stop.
 */
export function bootGuest(bits: 32 | 64, asm: string, runs = 200): { m: GuestMachine; stop: Stop } {
  const kernel = buildXenGuest({ bits, asm });
  const m = createMachine({ name: 't', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
  let stop: Stop = { kind: 'budget' };
  for (let i = 0; i < runs && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
  return { m, stop };
}

/** `n` little-endian words of `size` bytes at guest-virtual `va`. */
export function guestWords(m: GuestMachine, va: bigint, n: number, size: 4 | 8): bigint[] {
  const b = m.readMemory('virtual', va, n * size, 0);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: n }, (_, i) =>
    size === 8 ? dv.getBigUint64(i * 8, true) : BigInt(dv.getUint32(i * 4, true)),
  );
}

/** Address of symbol `name` in the guest's kernel; throws when it has none. */
export function guestSymbol(m: GuestMachine, name: string): bigint {
  const s = m.symbols.resolve(name);
  if (s === undefined) throw new Error(`no ${name} symbol`);
  return s as bigint;
}
