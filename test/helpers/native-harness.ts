/**
 * Native side of the CPU differential tests: runs generated x86 code on the
 * host processor (x86-64, and IA-32 through `gcc -m32`) and reports the
 * architectural result, so the engine can be compared against real silicon.
 *
 * How it works. `buildNativeBatch(bitness, bodies)` writes one GNU as file in
 * which every case body (AT&T syntax) sits in its own slot of the section
 * `.casebody`, linked at the fixed address `CODE_BASE`; every body is
 * followed by `jmp pv_exit`. A fixed C driver (built with `gcc -O0 -static
 * -no-pie`, `-m32` for 32-bit) maps the scratch buffer and the control page at
 * fixed addresses (`SCRATCH_BASE`, `CTRL_BASE`), and for each case read from
 * stdin: fills the scratch buffer (`scratchInit`), loads every GPR and
 * RFLAGS from the control page, jumps to the body, then stores every GPR and
 * RFLAGS back and prints them with the bytes of the scratch buffer that
 * changed. A case that faults (SIGFPE for #DE, SIGSEGV, SIGILL, ...) is
 * caught on an alternate signal stack and reported with the faulting RIP,
 * the fault address (si_addr), the registers and the changed scratch bytes
 * at the fault (from the signal context).
 *
 * The bytes of `.casebody` are extracted from the linked executable
 * (`objcopy -O binary`), so the engine executes exactly the bytes the host
 * executed, at the same linear addresses (`code`, `caseStart`, `caseEnd`).
 *
 * Shapes: registers are BigInt (test code, cold path), 16 of them for
 * 64-bit (RAX..R15 in ModRM order) and 8 for 32-bit (EAX..EDI); RFLAGS is a
 * number; addresses are linear byte addresses.
 *
 * Errors: `nativeToolchainProblem` returns a reason string when gcc/as/objcopy
 * (or 32-bit multilib support) is missing; `buildNativeBatch` throws an Error
 * carrying the assembler's message when a body does not assemble.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Scratch buffer (memory operands, string-op buffers, stacks): linear address, bytes. */
export const SCRATCH_BASE = 0x00200000;
export const SCRATCH_SIZE = 0x1000;
/** Control page: register inputs/outputs of the native driver (engine does not need it). */
export const CTRL_BASE = 0x00203000;
/** GS base in 64-bit runs (set with arch_prctl natively, in the GS cache in the engine). */
export const GS_BASE64 = 0x001f0000;
/** Pages next to the scratch buffer that are never mapped (page-fault cases use them). */
export const UNMAPPED_PAGES = [0x001ff000, 0x00201000];
/** Linear address where `.casebody` (every case's code) is linked. */
export const CODE_BASE = 0x00300000;
/** `.casebody` must end below this address (the harness program is linked here). */
export const CODE_LIMIT = 0x00f00000;

export type Bitness = 32 | 64;

/** Inputs of one case. */
export interface NativeInput {
  /** 16 (64-bit) or 8 (32-bit) register values, ModRM order. */
  regs: bigint[];
  /** RFLAGS to load (only arithmetic flags and DF should be set). */
  rflags: number;
  /** Seed of the scratch buffer's pseudo-random fill (see `scratchInit`). */
  memSeed: number;
  /** Bytes written over the fill: [offset in scratch, byte]. */
  memPatch?: Array<[number, number]>;
}

/** What the host did with one case. */
export type NativeOutcome =
  | { kind: 'ok'; regs: bigint[]; rflags: number; memDiff: Map<number, number> }
  | {
      kind: 'signal';
      signal: number;
      /** Faulting instruction. */
      rip: bigint;
      /** Registers, RFLAGS and changed scratch bytes when the signal was raised. */
      regs: bigint[];
      rflags: number;
      memDiff: Map<number, number>;
      /** si_addr: the faulting linear address for SIGSEGV/SIGBUS (CR2 for #PF). */
      addr: bigint;
    };

export interface NativeBatch {
  bitness: Bitness;
  /** Contents of `.casebody`, to be loaded at `CODE_BASE`. */
  code: Uint8Array;
  /** Linear address of each case's first instruction. */
  caseStart: number[];
  /** Linear address just after each case's body (where the native `jmp pv_exit` sits). */
  caseEnd: number[];
  /** Runs the cases (index i uses body i) natively; returns one outcome per input. */
  run(inputs: NativeInput[]): NativeOutcome[];
  /** Removes the build directory. */
  dispose(): void;
}

/** Host signal numbers (Linux x86). */
export const SIG = { SIGILL: 4, SIGTRAP: 5, SIGBUS: 7, SIGFPE: 8, SIGSEGV: 11 } as const;

/**
 * Pseudo-random fill of the scratch buffer: xorshift32 from `seed` (0 is
 * replaced by 1), one byte per step, then `patch` applied. The C driver uses
 * the same generator, so both sides start from identical memory.
 */
export function scratchInit(seed: number, patch?: Array<[number, number]>): Uint8Array {
  const buf = new Uint8Array(SCRATCH_SIZE);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < SCRATCH_SIZE; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x & 0xff;
  }
  if (patch) for (const [off, b] of patch) buf[off] = b & 0xff;
  return buf;
}

function tool(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}

const problemCache = new Map<Bitness, string | null>();

/**
 * Checks that the host can build and run a native batch of `bitness`.
 * @returns null when it can, otherwise a human-readable reason.
 */
export function nativeToolchainProblem(bitness: Bitness): string | null {
  const cached = problemCache.get(bitness);
  if (cached !== undefined) return cached;
  let problem: string | null = null;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    problem = `native differential tests need Linux on x86-64 (host is ${process.platform}/${process.arch})`;
  } else {
    for (const t of ['gcc', 'objcopy', 'nm']) {
      if (!tool(t, ['--version']).ok) {
        problem = `${t} not found (install gcc and binutils)`;
        break;
      }
    }
    if (!problem) {
      try {
        const b = buildNativeBatch(bitness, ['nop']);
        const out = b.run([{ regs: new Array(bitness === 64 ? 16 : 8).fill(0n), rflags: 2, memSeed: 1 }]);
        b.dispose();
        if (out.length !== 1 || out[0].kind !== 'ok') problem = 'native probe case did not run';
      } catch (e) {
        problem =
          `cannot build a ${bitness}-bit native harness` +
          (bitness === 32 ? ' (install gcc-multilib)' : '') +
          `: ${(e as Error).message.slice(0, 400)}`;
      }
    }
  }
  problemCache.set(bitness, problem);
  return problem;
}

const DRIVER_C = String.raw`
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifdef __x86_64__
#include <asm/prctl.h>
#endif

#define SCRATCH ((unsigned char *)0x${SCRATCH_BASE.toString(16)}UL)
#define SCRATCH_SIZE ${SCRATCH_SIZE}
#define CTRL ((unsigned char *)0x${CTRL_BASE.toString(16)}UL)
#ifdef __x86_64__
#define NREGS 16
#else
#define NREGS 8
#endif

extern void pv_run_case(void *target);
extern void *pv_case_table[];
extern unsigned pv_case_count;

static sigjmp_buf env;
static volatile unsigned long long fault_rip, fault_flags, fault_addr;
static volatile unsigned long long fault_regs[NREGS];
static unsigned char init[SCRATCH_SIZE];

static void on_signal(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = (ucontext_t *)ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  fault_addr = (unsigned long long)(uintptr_t)si->si_addr;
#ifdef __x86_64__
  static const int order[16] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                 REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };
  fault_rip = (unsigned long long)g[REG_RIP];
  fault_flags = (unsigned long long)g[REG_EFL];
  for (int i = 0; i < 16; i++) fault_regs[i] = (unsigned long long)g[order[i]];
#else
  static const int order[8] = { REG_EAX, REG_ECX, REG_EDX, REG_EBX, REG_UESP, REG_EBP, REG_ESI, REG_EDI };
  fault_rip = (unsigned long long)(unsigned int)g[REG_EIP];
  fault_flags = (unsigned long long)(unsigned int)g[REG_EFL];
  for (int i = 0; i < 8; i++) fault_regs[i] = (unsigned long long)(unsigned int)g[order[i]];
#endif
  siglongjmp(env, sig);
}

int main(void) {
  void *m = mmap(SCRATCH, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (m != (void *)SCRATCH) { perror("mmap"); return 2; }
  m = mmap(CTRL, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (m != (void *)CTRL) { perror("mmap"); return 2; }
  static unsigned char altstack[1 << 16];
  stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
  if (sigaltstack(&ss, 0)) { perror("sigaltstack"); return 2; }
#ifdef __x86_64__
  if (syscall(SYS_arch_prctl, ARCH_SET_GS, 0x${GS_BASE64.toString(16)}UL)) { perror("arch_prctl"); return 2; }
#endif
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP };
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, 0);
  setvbuf(stdout, 0, _IOFBF, 1 << 20);

  unsigned idx;
  while (scanf("%u", &idx) == 1) {
    unsigned long long flags, v;
    unsigned seed, npatch;
    if (scanf("%llx %x", &flags, &seed) != 2) return 3;
    memset(CTRL, 0, 0x1000);
    for (int r = 0; r < NREGS; r++) {
      if (scanf("%llx", &v) != 1) return 3;
#ifdef __x86_64__
      *(unsigned long long *)(CTRL + 8 * r) = v;
#else
      *(unsigned int *)(CTRL + 8 * r) = (unsigned int)v;
#endif
    }
    *(unsigned long long *)(CTRL + 0x80) = flags;
    uint32_t x = seed ? seed : 1;
    for (int i = 0; i < SCRATCH_SIZE; i++) {
      x ^= x << 13; x ^= x >> 17; x ^= x << 5;
      init[i] = (unsigned char)x;
    }
    if (scanf("%u", &npatch) != 1) return 3;
    for (unsigned p = 0; p < npatch; p++) {
      unsigned off, b;
      if (scanf("%x %x", &off, &b) != 2 || off >= SCRATCH_SIZE) return 3;
      init[off] = (unsigned char)b;
    }
    memcpy(SCRATCH, init, SCRATCH_SIZE);
    if (idx >= pv_case_count) return 4;
    int sig = sigsetjmp(env, 1);
    if (sig) {
      printf("F %u %d %llx %llx %llx", idx, sig, fault_rip, fault_addr, fault_flags);
      for (int r = 0; r < NREGS; r++) printf(" %llx", fault_regs[r]);
      for (int i = 0; i < SCRATCH_SIZE; i++)
        if (SCRATCH[i] != init[i]) printf(" %x:%x", i, SCRATCH[i]);
      printf("\n");
      continue;
    }
    pv_run_case(pv_case_table[idx]);
    printf("R %u %llx", idx, *(unsigned long long *)(CTRL + 0x180));
    for (int r = 0; r < NREGS; r++) {
#ifdef __x86_64__
      printf(" %llx", *(unsigned long long *)(CTRL + 0x100 + 8 * r));
#else
      printf(" %x", *(unsigned int *)(CTRL + 0x100 + 8 * r));
#endif
    }
    for (int i = 0; i < SCRATCH_SIZE; i++)
      if (SCRATCH[i] != init[i]) printf(" %x:%x", i, SCRATCH[i]);
    printf("\n");
  }
  fflush(stdout);
  return 0;
}
`;

const REGS64 = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];
const REGS32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/** The run/exit stubs: load every GPR and RFLAGS from the control page, jump to the case; store them back. */
function stubs(bitness: Bitness): string {
  const C = CTRL_BASE;
  const L: string[] = ['\t.text', '\t.globl pv_run_case', 'pv_run_case:'];
  if (bitness === 64) {
    for (const r of ['rbx', 'rbp', 'r12', 'r13', 'r14', 'r15']) L.push(`\tpush %${r}`);
    L.push(`\tmov %rsp, ${hex(C + 0x200)}`, `\tmov %rdi, ${hex(C + 0x208)}`);
    L.push(`\tpushq ${hex(C + 0x80)}`, '\tpopfq');
    REGS64.forEach((r, i) => {
      if (i !== 4) L.push(`\tmov ${hex(C + 8 * i)}, %${r}`);
    });
    L.push(`\tmov ${hex(C + 0x20)}, %rsp`, `\tjmp *${hex(C + 0x208)}`);
    L.push('\t.globl pv_exit', 'pv_exit:');
    REGS64.forEach((r, i) => L.push(`\tmov %${r}, ${hex(C + 0x100 + 8 * i)}`));
    L.push(
      `\tmov ${hex(C + 0x200)}, %rsp`,
      '\tpushfq',
      '\tpopq %rax',
      `\tmov %rax, ${hex(C + 0x180)}`,
      '\tcld',
    );
    for (const r of ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx']) L.push(`\tpop %${r}`);
    L.push('\tret');
  } else {
    for (const r of ['ebx', 'ebp', 'esi', 'edi']) L.push(`\tpush %${r}`);
    L.push('\tmov 20(%esp), %eax', `\tmov %eax, ${hex(C + 0x208)}`, `\tmov %esp, ${hex(C + 0x200)}`);
    L.push(`\tpushl ${hex(C + 0x80)}`, '\tpopfl');
    REGS32.forEach((r, i) => {
      if (i !== 4) L.push(`\tmov ${hex(C + 8 * i)}, %${r}`);
    });
    L.push(`\tmov ${hex(C + 0x20)}, %esp`, `\tjmp *${hex(C + 0x208)}`);
    L.push('\t.globl pv_exit', 'pv_exit:');
    REGS32.forEach((r, i) => L.push(`\tmov %${r}, ${hex(C + 0x100 + 8 * i)}`));
    L.push(
      `\tmov ${hex(C + 0x200)}, %esp`,
      '\tpushfl',
      '\tpopl %eax',
      `\tmov %eax, ${hex(C + 0x180)}`,
      '\tcld',
    );
    for (const r of ['edi', 'esi', 'ebp', 'ebx']) L.push(`\tpop %${r}`);
    L.push('\tret');
  }
  return L.join('\n') + '\n';
}

/**
 * Assembles and links `bodies` (one GNU as AT&T snippet per case, no labels
 * named c_N/e_N) into a native batch of `bitness`.
 * @throws Error with the compiler/assembler output when the build fails.
 */
export function buildNativeBatch(bitness: Bitness, bodies: string[]): NativeBatch {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pvscope-diff${bitness}-`));
  try {
    const parts: string[] = [stubs(bitness)];
    // writable too: self-modifying-code cases patch their own instructions
    parts.push('\t.section .casebody,"awx",@progbits', 'pv_casebody_start:');
    bodies.forEach((b, i) => {
      parts.push(`c_${i}:`, b, `e_${i}:`, '\tjmp pv_exit');
    });
    parts.push('\t.section .rodata', '\t.globl pv_case_table', '\t.balign 8', 'pv_case_table:');
    const ptr = bitness === 64 ? '.quad' : '.long';
    for (let i = 0; i < bodies.length; i++) parts.push(`\t${ptr} c_${i}`);
    parts.push('\t.globl pv_case_count', '\t.balign 4', 'pv_case_count:', `\t.long ${bodies.length}`);
    parts.push('\t.section .note.GNU-stack,"",@progbits');
    const asmPath = path.join(dir, 'cases.s');
    fs.writeFileSync(asmPath, parts.join('\n') + '\n');
    const cPath = path.join(dir, 'driver.c');
    fs.writeFileSync(cPath, DRIVER_C);
    const exe = path.join(dir, 'harness');
    const args = [
      '-O0',
      ...(bitness === 32 ? ['-m32'] : []),
      '-static',
      '-no-pie',
      cPath,
      asmPath,
      '-o',
      exe,
      `-Wl,--section-start=.casebody=${hex(CODE_BASE)}`,
      // the harness itself lives above the case code, so `.casebody` can grow to CODE_LIMIT
      `-Wl,-Ttext-segment=${hex(CODE_LIMIT)}`,
    ];
    const cc = tool('gcc', args);
    if (!cc.ok) throw new Error(`gcc ${args.join(' ')} failed:\n${cc.out.slice(0, 4000)}`);
    const nm = tool('nm', [exe]);
    if (!nm.ok) throw new Error(`nm failed: ${nm.out}`);
    const sym = new Map<string, number>();
    for (const line of nm.out.split('\n')) {
      const m = /^([0-9a-f]+) \w (\S+)$/.exec(line.trim());
      if (m) sym.set(m[2], parseInt(m[1], 16));
    }
    if (sym.get('pv_casebody_start') !== CODE_BASE) {
      throw new Error(`.casebody not linked at ${hex(CODE_BASE)} (got ${sym.get('pv_casebody_start')})`);
    }
    const bin = path.join(dir, 'casebody.bin');
    const oc = tool('objcopy', ['-O', 'binary', '--only-section=.casebody', exe, bin]);
    if (!oc.ok) throw new Error(`objcopy failed: ${oc.out}`);
    const code = new Uint8Array(fs.readFileSync(bin));
    if (CODE_BASE + code.length > CODE_LIMIT) {
      throw new Error(
        `${bodies.length} cases need ${code.length} bytes of code: more than one batch can hold`,
      );
    }
    const caseStart: number[] = [];
    const caseEnd: number[] = [];
    for (let i = 0; i < bodies.length; i++) {
      const s = sym.get(`c_${i}`);
      const e = sym.get(`e_${i}`);
      if (s === undefined || e === undefined) throw new Error(`case ${i}: labels missing`);
      caseStart.push(s);
      caseEnd.push(e);
    }
    const nregs = bitness === 64 ? 16 : 8;
    return {
      bitness,
      code,
      caseStart,
      caseEnd,
      run(inputs: NativeInput[]): NativeOutcome[] {
        const lines: string[] = [];
        inputs.forEach((inp, i) => {
          if (inp.regs.length !== nregs)
            throw new Error(`case ${i}: ${inp.regs.length} registers, want ${nregs}`);
          const mask = bitness === 64 ? (1n << 64n) - 1n : 0xffffffffn;
          const regs = inp.regs.map((r) => (r & mask).toString(16)).join(' ');
          const patch = inp.memPatch ?? [];
          const p = patch.map(([o, b]) => `${o.toString(16)} ${(b & 0xff).toString(16)}`).join(' ');
          lines.push(
            `${i} ${(inp.rflags >>> 0).toString(16)} ${(inp.memSeed >>> 0).toString(16)} ${regs} ${patch.length} ${p}`,
          );
        });
        const r = spawnSync(exe, [], {
          input: lines.join('\n') + '\n',
          encoding: 'utf8',
          maxBuffer: 1 << 30,
        });
        if (r.status !== 0) {
          throw new Error(
            `native harness exited with ${r.status ?? r.signal}: ${(r.stderr ?? '').slice(0, 2000)}`,
          );
        }
        const out: NativeOutcome[] = new Array(inputs.length);
        for (const line of r.stdout.split('\n')) {
          if (!line) continue;
          const t = line.split(' ');
          const idx = parseInt(t[1], 10);
          if (t[0] === 'F') {
            const regs = t.slice(6, 6 + nregs).map((h) => BigInt('0x' + h));
            out[idx] = {
              kind: 'signal',
              signal: parseInt(t[2], 10),
              rip: BigInt('0x' + t[3]),
              addr: BigInt('0x' + t[4]),
              rflags: Number(BigInt('0x' + t[5]) & 0xffffffffn),
              regs,
              memDiff: parseDiff(t.slice(6 + nregs)),
            };
          } else if (t[0] === 'R') {
            const rflags = Number(BigInt('0x' + t[2]) & 0xffffffffn);
            const regs = t.slice(3, 3 + nregs).map((h) => BigInt('0x' + h));
            out[idx] = { kind: 'ok', regs, rflags, memDiff: parseDiff(t.slice(3 + nregs)) };
          }
        }
        for (let i = 0; i < inputs.length; i++) {
          if (!out[i]) throw new Error(`native harness printed no result for case ${i}`);
        }
        return out;
      },
      dispose() {
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Parses the driver's `offset:byte` list of changed scratch bytes (hex). */
function parseDiff(items: string[]): Map<number, number> {
  const memDiff = new Map<number, number>();
  for (const d of items) {
    const [o, b] = d.split(':');
    memDiff.set(parseInt(o, 16), parseInt(b, 16));
  }
  return memDiff;
}
