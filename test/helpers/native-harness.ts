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
 * x87/SSE state (FPU and SIMD differential tests). Give a case
 * `NativeInput.fpu`, a 512-byte FXSAVE image built with `buildFxImage`
 * (FCW, FSW, abridged FTW, FOP, FIP/FDP, MXCSR, ST0-7 as 80-bit values
 * (`f80`, `f80FromNumber`), XMM0-15 as 128-bit BigInts), in the case's
 * layout (64: FXSAVE64, 32: legacy). The driver loads it with FXRSTOR64 /
 * FXRSTOR right before the body and stores FXSAVE64 / FXSAVE right after it
 * (or takes the signal context's fpstate at a fault); the outcome's `fpu`
 * is that image. The engine side does the same through the engine's own
 * FXRSTOR/FXSAVE code. A test needs four calls:
 *
 *     const batch = buildNativeBatch(64, bodies);
 *     const host = batch.run(inputs);                       // inputs[i].fpu = buildFxImage({...}, 64)
 *     const m = createMachine(64, UNMAPPED_PAGES); loadBatch(m, batch);   // engine-runner.ts
 *     const problems = checkCase(m, batch, i, inputs[i], host[i], opt);  // [] when equal
 *
 * `checkCase` compares GPRs, flags, scratch memory, exceptions and the
 * images field by field (`diffFxImage`: reserved bytes never compared; FCS/
 * FDS not in 32-bit runs) after test/helpers/vendor-table.ts has put in the
 * engine vendor's documented values where the host is another vendor
 * (MXCSR_MASK, x87 error pointers with FSW.ES clear, ...; tag a case with
 * `opt.vendorRows` for the others, `opt.fxsaveAt` when the body stores an
 * FXSAVE image in the scratch buffer). Keep images consistent (FSW.ES/B set
 * exactly when an exception flag is unmasked): FXRSTOR recomputes them.
 * test/unit/cpu-diff-fpu.test.ts is a worked example.
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
  /**
   * x87/SSE state to load before the body: a 512-byte FXSAVE image (build it
   * with `buildFxImage`), loaded with FXRSTOR64 (64-bit) or FXRSTOR (32-bit).
   * Its MXCSR must not set bits outside 0xFFFF (FXRSTOR would #GP in the
   * harness, outside the case). When present, the outcome carries `fpu`.
   */
  fpu?: Uint8Array;
}

/** What the host did with one case. */
export type NativeOutcome =
  | {
      kind: 'ok';
      regs: bigint[];
      rflags: number;
      memDiff: Map<number, number>;
      /** FXSAVE64 (64-bit) / FXSAVE (32-bit) image after the body; only when the input had `fpu`. */
      fpu?: Uint8Array;
    }
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
      /**
       * The FXSAVE image at the fault, from the signal context's fpstate (only
       * when the input had `fpu`). The kernel saves it in the 64-bit layout
       * even for 32-bit processes, so in 32-bit runs FCS/FDS are not
       * meaningful there; components the kernel's XSAVE reported in their
       * initial state (XSTATE_BV clear) are filled with their initial values.
       */
      fpu?: Uint8Array;
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

/**
 * For a differential suite's `before` hook: skips the suite (with the reason
 * on the console) when the host cannot build and run native batches of
 * `bitness`, and throws instead when CI is set, so CI never skips silently.
 */
export function requireNativeToolchain(ctx: Mocha.Context, bitness: Bitness): void {
  const problem = nativeToolchainProblem(bitness);
  if (!problem) return;
  if (process.env.CI) throw new Error(`CI=true but the native toolchain is unusable: ${problem}`);
  console.log(`      skipped: ${problem}`);
  ctx.skip();
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
/* FXSAVE image at the fault (from the signal context). */
static unsigned char fault_fpu[512];

/* Copies the fxsave-layout area 'fx' of the kernel's signal fpstate; components the kernel's XSAVE
   reported as initial (XSTATE_BV bit clear, when the xstate magic is present) get their initial values. */
static void copy_fpstate(const unsigned char *fx) {
  memcpy(fault_fpu, fx, 512);
  if (*(const uint32_t *)(fx + 464) == 0x46505853u) { /* FP_XSTATE_MAGIC1: an XSAVE header follows */
    uint64_t bv = *(const uint64_t *)(fx + 512);
    if (!(bv & 1)) {
      memset(fault_fpu, 0, 24);
      memset(fault_fpu + 32, 0, 128);
      fault_fpu[0] = 0x7f; fault_fpu[1] = 0x03;
    }
    if (!(bv & 2)) memset(fault_fpu + 160, 0, 256);
  }
}

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
  if (uc->uc_mcontext.fpregs) copy_fpstate((const unsigned char *)uc->uc_mcontext.fpregs);
#else
  static const int order[8] = { REG_EAX, REG_ECX, REG_EDX, REG_EBX, REG_UESP, REG_EBP, REG_ESI, REG_EDI };
  fault_rip = (unsigned long long)(unsigned int)g[REG_EIP];
  fault_flags = (unsigned long long)(unsigned int)g[REG_EFL];
  for (int i = 0; i < 8; i++) fault_regs[i] = (unsigned long long)(unsigned int)g[order[i]];
  /* struct _fpstate_32: 112 bytes of FNSAVE data + status + magic (0 = FXSR data follows), then the fxsave area. */
  if (uc->uc_mcontext.fpregs && ((const uint16_t *)uc->uc_mcontext.fpregs)[55] == 0)
    copy_fpstate((const unsigned char *)uc->uc_mcontext.fpregs + 112);
#endif
  siglongjmp(env, sig);
}

static void print_fpu(int want, const unsigned char *img) {
  if (!want) { printf(" -"); return; }
  putchar(' ');
  for (int i = 0; i < 512; i++) printf("%02x", img[i]);
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
    /* FXSAVE image to load ('-' = none): CTRL+0x400, flag at CTRL+0x210; result at CTRL+0x600. */
    static char fpuhex[1100];
    if (scanf("%1030s", fpuhex) != 1) return 3;
    int want_fpu = fpuhex[0] != '-';
    if (want_fpu) {
      if (strlen(fpuhex) != 1024) return 3;
      for (int i = 0; i < 512; i++) {
        unsigned b;
        if (sscanf(fpuhex + 2 * i, "%2x", &b) != 1) return 3;
        CTRL[0x400 + i] = (unsigned char)b;
      }
      *(unsigned *)(CTRL + 0x210) = 1;
      memcpy(CTRL + 0x600, CTRL + 0x400, 512);
    }
    memset(fault_fpu, 0, sizeof fault_fpu);
    memcpy(SCRATCH, init, SCRATCH_SIZE);
    if (idx >= pv_case_count) return 4;
    int sig = sigsetjmp(env, 1);
    if (sig) {
      printf("F %u %d %llx %llx %llx", idx, sig, fault_rip, fault_addr, fault_flags);
      for (int r = 0; r < NREGS; r++) printf(" %llx", fault_regs[r]);
      print_fpu(want_fpu, fault_fpu);
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
    print_fpu(want_fpu, CTRL + 0x600);
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
    // the driver's own x87/SSE state is kept at +0x800; the case's image (if any) loaded from +0x400
    L.push(`\tfxsave64 ${hex(C + 0x800)}`, `\tcmpl $0, ${hex(C + 0x210)}`, '\tje 1f');
    L.push(`\tfxrstor64 ${hex(C + 0x400)}`, '1:');
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
      `\tcmpl $0, ${hex(C + 0x210)}`,
      '\tje 1f',
      `\tfxsave64 ${hex(C + 0x600)}`,
      '1:',
      `\tfxrstor64 ${hex(C + 0x800)}`,
      '\tcld',
    );
    for (const r of ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx']) L.push(`\tpop %${r}`);
    L.push('\tret');
  } else {
    for (const r of ['ebx', 'ebp', 'esi', 'edi']) L.push(`\tpush %${r}`);
    L.push('\tmov 20(%esp), %eax', `\tmov %eax, ${hex(C + 0x208)}`, `\tmov %esp, ${hex(C + 0x200)}`);
    L.push(`\tfxsave ${hex(C + 0x800)}`, `\tcmpl $0, ${hex(C + 0x210)}`, '\tje 1f');
    L.push(`\tfxrstor ${hex(C + 0x400)}`, '1:');
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
      `\tcmpl $0, ${hex(C + 0x210)}`,
      '\tje 1f',
      `\tfxsave ${hex(C + 0x600)}`,
      '1:',
      `\tfxrstor ${hex(C + 0x800)}`,
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
          let fpu = '-';
          if (inp.fpu) {
            if (inp.fpu.length !== 512)
              throw new Error(`case ${i}: fpu image of ${inp.fpu.length} bytes, want 512`);
            const mx = (inp.fpu[24] | (inp.fpu[25] << 8) | (inp.fpu[26] << 16) | (inp.fpu[27] << 24)) >>> 0;
            if (mx > 0xffff)
              throw new Error(`case ${i}: fpu image MXCSR ${mx.toString(16)} sets reserved bits`);
            fpu = Buffer.from(inp.fpu).toString('hex');
          }
          lines.push(
            `${i} ${(inp.rflags >>> 0).toString(16)} ${(inp.memSeed >>> 0).toString(16)} ${regs} ${patch.length} ${p} ${fpu}`,
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
            const fpu = parseFpu(t[6 + nregs]);
            out[idx] = {
              kind: 'signal',
              signal: parseInt(t[2], 10),
              rip: BigInt('0x' + t[3]),
              addr: BigInt('0x' + t[4]),
              rflags: Number(BigInt('0x' + t[5]) & 0xffffffffn),
              regs,
              memDiff: parseDiff(t.slice(7 + nregs)),
              ...(fpu ? { fpu } : {}),
            };
          } else if (t[0] === 'R') {
            const rflags = Number(BigInt('0x' + t[2]) & 0xffffffffn);
            const regs = t.slice(3, 3 + nregs).map((h) => BigInt('0x' + h));
            const fpu = parseFpu(t[3 + nregs]);
            out[idx] = {
              kind: 'ok',
              regs,
              rflags,
              memDiff: parseDiff(t.slice(4 + nregs)),
              ...(fpu ? { fpu } : {}),
            };
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

/** Parses the driver's FXSAVE image token ('-' = none, else 1024 hex digits). */
function parseFpu(tok: string | undefined): Uint8Array | undefined {
  if (!tok || tok === '-') return undefined;
  return new Uint8Array(Buffer.from(tok, 'hex'));
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

// ---- FXSAVE images (x87/SSE state of a case) ----

/** Fields of a 512-byte FXSAVE image (SDM vol. 2 FXSAVE tables 3-43/3-46). Omitted fields take `buildFxImage`'s defaults. */
export interface FxFields {
  /** FPU control word (default 0x037F, the FNINIT value). */
  fcw?: number;
  /** FPU status word, TOP in bits 11-13 (default 0). */
  fsw?: number;
  /** Abridged tag byte: bit i set = PHYSICAL register Ri is not empty (default 0: all empty). */
  ftw?: number;
  /** Last x87 opcode, 11 bits (default 0). */
  fop?: number;
  /** FPU instruction pointer (64-bit layout: 64 bits; 32-bit layout: offset, with `fcs`). */
  fip?: bigint;
  fcs?: number;
  /** FPU data pointer (64-bit layout: 64 bits; 32-bit layout: offset, with `fds`). */
  fdp?: bigint;
  fds?: number;
  /** MXCSR (default 0x1F80). */
  mxcsr?: number;
  /** MXCSR_MASK field (ignored by FXRSTOR; default 0). */
  mxcsrMask?: number;
  /** ST0..ST7 in STACK order (ST(i) = R[(TOP + i) & 7]) as 80-bit values: bits 0-63 significand, 64-78 exponent, 79 sign. */
  st?: bigint[];
  /** XMM0..XMM15 as 128-bit values. */
  xmm?: bigint[];
}

/** Layout of an FXSAVE image: 64 = FXSAVE64 (REX.W, 64-bit FIP/FDP), 32 = legacy layout (32-bit offsets + FCS/FDS). */
export type FxLayout = 32 | 64;

/** An 80-bit extended value from its sign (0/1), biased exponent (15 bits) and 64-bit significand (integer bit = bit 63). */
export function f80(sign: number, exp: number, sig: bigint): bigint {
  return (BigInt(sign & 1) << 79n) | (BigInt(exp & 0x7fff) << 64n) | (sig & ((1n << 64n) - 1n));
}

/** The exact 80-bit extended value of a JS number (every double is representable; NaN: the default quiet NaN with sign 1). */
export function f80FromNumber(x: number): bigint {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const bits = dv.getBigUint64(0);
  const sign = Number(bits >> 63n);
  const e = Number((bits >> 52n) & 0x7ffn);
  const frac = bits & ((1n << 52n) - 1n);
  if (e === 0x7ff)
    return frac ? f80(sign, 0x7fff, (1n << 63n) | (1n << 62n) | (frac << 11n)) : f80(sign, 0x7fff, 1n << 63n);
  if (e === 0) {
    if (frac === 0n) return f80(sign, 0, 0n);
    // double denormal: normalise into the wider exponent range
    let m = frac;
    let ex = 1 - 1023 + 16383;
    while (!(m & (1n << 52n))) {
      m <<= 1n;
      ex--;
    }
    return f80(sign, ex, m << 11n);
  }
  return f80(sign, e - 1023 + 16383, ((1n << 52n) | frac) << 11n);
}

function putLE(b: Uint8Array, off: number, n: number, v: bigint): void {
  for (let i = 0; i < n; i++) b[off + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}
function getLE(b: Uint8Array, off: number, n: number): bigint {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]);
  return v;
}

/**
 * Builds a 512-byte FXSAVE image for `NativeInput.fpu` in `layout` (use the
 * case's bitness). Reserved and unused bytes are 0.
 */
export function buildFxImage(f: FxFields, layout: FxLayout): Uint8Array {
  const b = new Uint8Array(512);
  putLE(b, 0, 2, BigInt(f.fcw ?? 0x037f));
  putLE(b, 2, 2, BigInt(f.fsw ?? 0));
  b[4] = (f.ftw ?? 0) & 0xff;
  putLE(b, 6, 2, BigInt((f.fop ?? 0) & 0x7ff));
  if (layout === 64) {
    putLE(b, 8, 8, f.fip ?? 0n);
    putLE(b, 16, 8, f.fdp ?? 0n);
  } else {
    putLE(b, 8, 4, f.fip ?? 0n);
    putLE(b, 12, 2, BigInt(f.fcs ?? 0));
    putLE(b, 16, 4, f.fdp ?? 0n);
    putLE(b, 20, 2, BigInt(f.fds ?? 0));
  }
  putLE(b, 24, 4, BigInt(f.mxcsr ?? 0x1f80));
  putLE(b, 28, 4, BigInt(f.mxcsrMask ?? 0));
  (f.st ?? []).forEach((v, i) => putLE(b, 32 + 16 * i, 10, v));
  (f.xmm ?? []).forEach((v, i) => putLE(b, 160 + 16 * i, 16, v));
  return b;
}

/** Decodes an FXSAVE image of `layout` into its fields (XMM0-15 in 64-bit layout, XMM0-7 in 32-bit). */
export function parseFxImage(b: Uint8Array, layout: FxLayout): Required<FxFields> {
  const nx = layout === 64 ? 16 : 8;
  return {
    fcw: Number(getLE(b, 0, 2)),
    fsw: Number(getLE(b, 2, 2)),
    ftw: b[4],
    fop: Number(getLE(b, 6, 2)),
    fip: layout === 64 ? getLE(b, 8, 8) : getLE(b, 8, 4),
    fcs: layout === 64 ? 0 : Number(getLE(b, 12, 2)),
    fdp: layout === 64 ? getLE(b, 16, 8) : getLE(b, 16, 4),
    fds: layout === 64 ? 0 : Number(getLE(b, 20, 2)),
    mxcsr: Number(getLE(b, 24, 4)),
    mxcsrMask: Number(getLE(b, 28, 4)),
    st: Array.from({ length: 8 }, (_, i) => getLE(b, 32 + 16 * i, 10)),
    xmm: Array.from({ length: nx }, (_, i) => getLE(b, 160 + 16 * i, 16)),
  };
}

/** Field names `diffFxImage` reports and can ignore. */
export type FxFieldName = keyof FxFields;

/**
 * Compares two FXSAVE images of `layout` field by field: FCW FSW FTW FOP FIP
 * FCS FDS FDP (FCS/FDS only in the 32-bit layout) MXCSR MXCSR_MASK ST0-7
 * (10 bytes each) XMM0-7 (32-bit layout) or XMM0-15. Reserved bytes (5,
 * 14-15, 22-23, bytes 10-15 of each ST slot, 288-415 in the 32-bit layout,
 * 416-511) are never compared. Fields in `ignore` are skipped.
 * @returns one line per differing field ("FSW: want 0x3800 got 0x0"), empty when equal.
 */
export function diffFxImage(
  want: Uint8Array,
  got: Uint8Array,
  layout: FxLayout,
  ignore: FxFieldName[] = [],
): string[] {
  const a = parseFxImage(want, layout);
  const g = parseFxImage(got, layout);
  const out: string[] = [];
  const skip = new Set<string>(ignore);
  if (layout === 64) skip.add('fcs').add('fds');
  const h = (v: number | bigint) => '0x' + v.toString(16);
  for (const k of ['fcw', 'fsw', 'ftw', 'fop', 'fip', 'fcs', 'fdp', 'fds', 'mxcsr', 'mxcsrMask'] as const) {
    if (skip.has(k)) continue;
    if (a[k] !== g[k]) out.push(`${k.toUpperCase()}: want ${h(a[k])} got ${h(g[k])}`);
  }
  if (!skip.has('st'))
    a.st.forEach((v, i) => {
      if (v !== g.st[i]) out.push(`ST${i}: want ${h(v)} got ${h(g.st[i])}`);
    });
  if (!skip.has('xmm'))
    a.xmm.forEach((v, i) => {
      if (v !== g.xmm[i]) out.push(`XMM${i}: want ${h(v)} got ${h(g.xmm[i])}`);
    });
  return out;
}
