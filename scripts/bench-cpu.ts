/**
 * CPU workloads for `npm run bench` (section "cpu", wired in scripts/bench.ts).
 *
 * Each workload is Intel-syntax GNU as source assembled at bench time
 * (`gcc -x assembler-with-cpp`, `ld`, `objcopy -O binary`; binutils and gcc
 * are what `.ci/run` installs), loaded at CODE_BASE of a bare-metal test
 * machine (engine/cpu/testbed.ts) and run to its final `int3`. After every
 * run the workload's final state (registers, memory, x87/SSE state) is
 * compared with a host-side model of the same loop, and the instructions
 * retired with the exact per-iteration count, so a broken CPU cannot report
 * a fast figure: a mismatch throws.
 *
 * Figures (million guest instructions retired per wall-clock second, the
 * difference of a long and a 1-iteration run so set-up and V8 warm-up do
 * not count):
 *  - cpu.mipsInt32pae / cpu.mipsInt64: the project's own integer loop
 *    (LCG, table read-modify-write, shifts/rotates, LEA, MOVZX, CALL/RET,
 *    a data-dependent branch, ADC) in 32-bit PAE and 64-bit long mode;
 *  - cpu.mipsTlbHeavy: random pages, INVLPG, CR3 reloads, #PF handled by an
 *    IDT handler that maps the page (handler instructions included);
 *  - cpu.mipsSse: SSE/SSE2 over memory (MOVDQA, PADDD, PXOR, PAND,
 *    CVTDQ2PS, MOVAPS, MULPS, ADDPS, CVTPS2PD, MULPD, ADDPD, CVTTPD2DQ);
 *  - cpu.mipsX87: FLD m64, FILD m32, FMUL, FADDP, FLD ST(i), FSTP m64,
 *    FXCH under FLDCW precision control 53 bits (so the host model is plain
 *    IEEE double arithmetic);
 *  - cpu.mips32pae / cpu.mips64: the anchor loop ../shared/bench/loop.inc
 *    (other emulators were measured on it), only where that file exists;
 *    MIPS = 31 * iterations / (t(run) - t(0-iteration run)).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTestMachine, CODE_BASE, type TestMachine, type TestMode } from '../engine/cpu/testbed';

const repoRoot = path.resolve(__dirname, '..');
/** The shared anchor loop beside the project (absent in a fresh clone). */
export const LOOP_INC = path.resolve(repoRoot, '..', 'shared', 'bench', 'loop.inc');

/**
 * Assembles Intel-syntax source (preprocessed with cpp; `#include` looks in
 * `includeDir` when given) into a flat binary linked at `base`.
 * @throws Error (from execFileSync) when gcc/ld/objcopy fail or are missing.
 */
export function assemble(src: string, bits: 32 | 64, base: number, includeDir?: string): Uint8Array {
  const dir = mkdtempSync(path.join(tmpdir(), 'pvscope-bench-'));
  try {
    const s = path.join(dir, 'a.S');
    writeFileSync(s, src);
    const o = path.join(dir, 'a.o');
    const elf = path.join(dir, 'a.elf');
    const bin = path.join(dir, 'a.bin');
    const inc = includeDir !== undefined ? ['-I', includeDir] : [];
    execFileSync(
      'gcc',
      [bits === 32 ? '-m32' : '-m64', '-c', '-x', 'assembler-with-cpp', ...inc, s, '-o', o],
      {
        stdio: 'pipe',
      },
    );
    execFileSync(
      'ld',
      [
        '-m',
        bits === 32 ? 'elf_i386' : 'elf_x86_64',
        '-Ttext',
        `0x${base.toString(16)}`,
        '-e',
        '_start',
        '-o',
        elf,
        o,
      ],
      { stdio: 'pipe' },
    );
    execFileSync('objcopy', ['-O', 'binary', elf, bin], { stdio: 'pipe' });
    return new Uint8Array(readFileSync(bin));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One CPU workload: source, machine set-up for n iterations, and the check of its final state. */
export interface CpuWorkload {
  /** Figure key in bench-results.json, e.g. `cpu.mipsSse`. */
  figure: string;
  mode: TestMode;
  /** Machine memory in MiB (default 16). */
  memoryMiB?: number;
  /** Iterations of the measured run. */
  iterations: number;
  /** Instructions retired per iteration when fixed (checked exactly), else undefined. */
  perIteration?: number;
  /** GNU as source (Intel syntax) with `_start` at the start of the binary. */
  source(): string;
  /** Loads data and sets registers for `n` iterations (code already loaded, RIP/RSP set). */
  setup(tm: TestMachine, n: number, bin: Uint8Array): void;
  /** Throws an Error naming the first wrong value when the final state is not the model's for `n` iterations. */
  check(tm: TestMachine, n: number): void;
}

/** Result of one run: wall-clock seconds and instructions retired. */
export interface WorkloadRun {
  secs: number;
  retired: number;
  tm: TestMachine;
}

/**
 * Runs workload `w` (binary `bin` from `assemble`) for `n` iterations to its
 * final int3 and checks the final state.
 * @throws Error when the run stops elsewhere or the state is wrong.
 */
export function runWorkload(w: CpuWorkload, bin: Uint8Array, n: number): WorkloadRun {
  const tm = createTestMachine({ mode: w.mode, memoryMiB: w.memoryMiB ?? 16 });
  // OSFXSR | OSXMMEXCPT, as an SSE-using kernel sets them.
  tm.cpu.state.cr4 |= 0x600;
  tm.cpu.stateChanged();
  tm.load(CODE_BASE, bin);
  tm.start(CODE_BASE);
  w.setup(tm, n, bin);
  tm.cpu.interceptExceptions = 1 << 3;
  const t0 = performance.now();
  let r: number;
  do r = tm.cpu.run(1 << 30);
  while (r === 0);
  const secs = (performance.now() - t0) / 1000;
  if (r !== 1 || tm.cpu.exitVector !== 3) {
    throw new Error(
      `${w.figure} workload stopped with exit ${r} vector ${tm.cpu.exitVector} ${tm.cpu.exitDetail}`,
    );
  }
  w.check(tm, n);
  return { secs, retired: tm.cpu.state.instructionsRetired, tm };
}

/**
 * Measures workload `w`: assembles it, runs a warm-up, a 1-iteration and the
 * full run (each checked), and returns million instructions per second of
 * the difference. `iterations` overrides the workload's count.
 * @throws Error when any run is wrong (see runWorkload) or the retired count is not n * perIteration more than the short run's.
 */
export function workloadMips(w: CpuWorkload, iterations = w.iterations): number {
  const bin = assemble(w.source(), w.mode === 'long64' ? 64 : 32, CODE_BASE);
  runWorkload(w, bin, Math.max(1, Math.floor(iterations / 20)));
  const base = runWorkload(w, bin, 1);
  const full = runWorkload(w, bin, iterations);
  const retired = full.retired - base.retired;
  if (w.perIteration !== undefined && retired !== w.perIteration * (iterations - 1)) {
    throw new Error(`${w.figure}: ${retired} instructions retired for ${iterations - 1} iterations`);
  }
  return retired / (full.secs - base.secs) / 1e6;
}

function u32(v: number): string {
  return (v >>> 0).toString(16);
}

function expectEq(what: string, got: number, want: number): void {
  if (got >>> 0 !== want >>> 0) throw new Error(`${what}: got ${u32(got)} want ${u32(want)}`);
}

// ---- Integer loop (32-bit PAE and 64-bit) ----

const INT_SEED = 0x2545f491;

function intSource(bits: 32 | 64): string {
  const idx = bits === 32 ? 'eax' : 'rax';
  return `.intel_syntax noprefix
${bits === 32 ? '.code32' : '.code64'}
.text
.globl _start
_start:
        /* ecx = iterations, esi = LCG state, ebx = sum, edi = second sum */
        test    ecx, ecx
        jz      9f
        .p2align 4
1:
        imul    esi, esi, 1664525
        add     esi, 1013904223
        mov     eax, esi
        shr     eax, 24
        mov     edx, [int_table + ${idx}*4]
        add     edx, esi
        rol     edx, 7
        mov     [int_table + ${idx}*4], edx
        xor     ebx, edx
        lea     edi, [${bits === 32 ? 'edi + edx' : 'rdi + rdx'}*2 + 1]
        movzx   eax, dl
        call    int_step
        test    edx, 0x100
        jz      2f
        sub     edi, ebx
        jmp     3f
2:
        xor     edi, 0x5a5a
        add     edi, ebx
3:
        cmp     edx, esi
        adc     ebx, 0
        dec     ecx
        jnz     1b
9:
        int3
        .p2align 4
int_step:
        add     ebx, eax
        ror     ebx, 3
        ret
        .p2align 12
int_table:
        .space 1024
`;
}

/** Host model of the integer loop: final esi, ebx, edi and the table. */
export function intModel(n: number): { esi: number; ebx: number; edi: number; table: Int32Array } {
  const table = new Int32Array(256);
  let x = INT_SEED | 0;
  let b = 0;
  let di = 0;
  for (let c = n; c > 0; c--) {
    x = (Math.imul(x, 1664525) + 1013904223) | 0;
    const idx = x >>> 24;
    let d = (table[idx] + x) | 0;
    d = (d << 7) | (d >>> 25);
    table[idx] = d;
    b ^= d;
    di = (di + (d << 1) + 1) | 0;
    b = (b + (d & 0xff)) | 0;
    b = (b >>> 3) | (b << 29);
    if (d & 0x100) di = (di - b) | 0;
    else di = ((di ^ 0x5a5a) + b) | 0;
    b = (b + (d >>> 0 < x >>> 0 ? 1 : 0)) | 0;
  }
  return { esi: x, ebx: b, edi: di, table };
}

function intWorkload(bits: 32 | 64): CpuWorkload {
  return {
    figure: bits === 32 ? 'cpu.mipsInt32pae' : 'cpu.mipsInt64',
    mode: bits === 32 ? 'pae32' : 'long64',
    iterations: 12_000_000,
    perIteration: 23,
    source: () => intSource(bits),
    setup(tm, n) {
      const R = tm.cpu.state.gprLo;
      R[1] = n;
      R[6] = INT_SEED;
      R[3] = 0;
      R[7] = 0;
    },
    check(tm, n) {
      const R = tm.cpu.state.gprLo;
      const want = intModel(n);
      expectEq(`${this.figure} ecx`, R[1], 0);
      expectEq(`${this.figure} esi`, R[6], want.esi);
      expectEq(`${this.figure} ebx`, R[3], want.ebx);
      expectEq(`${this.figure} edi`, R[7], want.edi);
      // The table is at the first 4 KiB boundary after the code (.p2align 12; the code is < 4 KiB).
      const tbl = CODE_BASE + 0x1000;
      let sumGot = 0;
      let sumWant = 0;
      for (let i = 0; i < 256; i++) {
        sumGot = (Math.imul(sumGot, 31) + tm.mem.view.getInt32(tbl + i * 4, true)) | 0;
        sumWant = (Math.imul(sumWant, 31) + want.table[i]) | 0;
      }
      expectEq(`${this.figure} table checksum`, sumGot, sumWant);
    },
  };
}

// ---- SSE2 loop (64-bit) ----

/** Physical (= linear) address of the SIMD / x87 workloads' data: 64 slots of 16 bytes of integers, then of floats. */
const SIMD_DATA = 0x200000;
const SSE_SLOTS = 64;

function sseSource(): string {
  return `.intel_syntax noprefix
.code64
.text
.globl _start
_start:
        /* rsi = data (ints at +0, floats at +1024), ecx = iterations */
        movdqa  xmm7, [sse_inc]
        movdqa  xmm8, [sse_mask]
        movaps  xmm6, [sse_half]
        movapd  xmm9, [sse_quarter]
        pxor    xmm1, xmm1
        xorpd   xmm3, xmm3
        xorps   xmm2, xmm2
        test    ecx, ecx
        jz      9f
        .p2align 4
1:
        mov     eax, ecx
        and     eax, 63
        shl     eax, 4
        movdqa  xmm0, [rsi + rax]
        paddd   xmm0, xmm7
        movdqa  [rsi + rax], xmm0
        pxor    xmm1, xmm0
        movdqa  xmm4, xmm0
        pand    xmm4, xmm8
        cvtdq2ps xmm4, xmm4
        movaps  xmm2, [rsi + rax + 1024]
        mulps   xmm2, xmm6
        addps   xmm2, xmm4
        movaps  [rsi + rax + 1024], xmm2
        cvtps2pd xmm5, xmm2
        mulpd   xmm3, xmm9
        addpd   xmm3, xmm5
        cvttpd2dq xmm4, xmm3
        paddd   xmm1, xmm4
        dec     ecx
        jnz     1b
9:
        int3
        .p2align 4
sse_inc:        .long 1, 3, 5, 7
sse_mask:       .long 0xffff, 0xffff, 0xffff, 0xffff
sse_half:       .float 0.5, 0.5, 0.5, 0.5
sse_quarter:    .double 0.25, 0.25
`;
}

/** Initial integer lanes of the SSE workload's data. */
function sseInitInt(i: number): number {
  return Math.imul(i + 1, 0x9e3779b1);
}

/** Host model of the SSE loop: final xmm1 (4 int lanes), xmm2 (4 floats), xmm3 (2 doubles) and the data. */
export function sseModel(n: number): {
  xmm1: Int32Array;
  xmm2: Float32Array;
  xmm3: Float64Array;
  ints: Int32Array;
  floats: Float32Array;
} {
  const ints = new Int32Array(SSE_SLOTS * 4);
  for (let i = 0; i < ints.length; i++) ints[i] = sseInitInt(i);
  const floats = new Float32Array(SSE_SLOTS * 4);
  const inc = [1, 3, 5, 7];
  const xmm1 = new Int32Array(4);
  const xmm2 = new Float32Array(4);
  const xmm3 = new Float64Array(2);
  const cvt = new Int32Array(4);
  for (let c = n; c > 0; c--) {
    const s = (c & 63) * 4;
    for (let k = 0; k < 4; k++) {
      const v = (ints[s + k] + inc[k]) | 0;
      ints[s + k] = v;
      xmm1[k] ^= v;
      const f = Math.fround(Math.fround(floats[s + k] * 0.5) + (v & 0xffff));
      floats[s + k] = f;
      xmm2[k] = f;
    }
    for (let k = 0; k < 2; k++) {
      xmm3[k] = xmm3[k] * 0.25 + xmm2[k];
      cvt[k] = Math.trunc(xmm3[k]);
    }
    cvt[2] = 0;
    cvt[3] = 0;
    for (let k = 0; k < 4; k++) xmm1[k] = (xmm1[k] + cvt[k]) | 0;
  }
  return { xmm1, xmm2, xmm3, ints, floats };
}

const sseWorkload: CpuWorkload = {
  figure: 'cpu.mipsSse',
  mode: 'long64',
  iterations: 400_000,
  perIteration: 21,
  source: sseSource,
  setup(tm, n) {
    for (let i = 0; i < SSE_SLOTS * 4; i++) tm.mem.view.setInt32(SIMD_DATA + i * 4, sseInitInt(i), true);
    const R = tm.cpu.state.gprLo;
    R[1] = n;
    R[6] = SIMD_DATA;
  },
  check(tm, n) {
    const want = sseModel(n);
    const st = tm.cpu.state;
    const dv = tm.mem.view;
    for (let k = 0; k < 4; k++) {
      expectEq(`cpu.mipsSse xmm1[${k}]`, st.xmm[4 + k], want.xmm1[k]);
      expectEq(`cpu.mipsSse xmm2[${k}] (float bits)`, st.xmm[8 + k], new Int32Array(want.xmm2.buffer)[k]);
    }
    const x3 = new Int32Array(want.xmm3.buffer);
    for (let k = 0; k < 4; k++) expectEq(`cpu.mipsSse xmm3 dword ${k} (double bits)`, st.xmm[12 + k], x3[k]);
    const fw = new Int32Array(want.floats.buffer);
    for (let i = 0; i < SSE_SLOTS * 4; i++) {
      expectEq(`cpu.mipsSse ints[${i}]`, dv.getInt32(SIMD_DATA + i * 4, true), want.ints[i]);
      expectEq(`cpu.mipsSse floats[${i}] (bits)`, dv.getInt32(SIMD_DATA + 1024 + i * 4, true), fw[i]);
    }
    if (st.mxcsr & 0x3f & ~0x20)
      throw new Error(`cpu.mipsSse: MXCSR ${u32(st.mxcsr)} has flags other than PE`);
  },
};

// ---- x87 loop (64-bit) ----

const X87_SLOTS = 64;

function x87Source(): string {
  return `.intel_syntax noprefix
.code64
.text
.globl _start
_start:
        /* rsi = data (64 doubles a[], then 64 int32 k[] at +512, the result at +1024), ecx = iterations */
        fninit
        fldcw   [x87_cw]
        fld     qword ptr [x87_c075]
        fld     qword ptr [x87_c05]
        fldz
        test    ecx, ecx
        jz      9f
        .p2align 4
1:
        /* st0 = acc, st1 = 0.5, st2 = 0.75 */
        mov     eax, ecx
        and     eax, 63
        fld     qword ptr [rsi + rax*8]
        fmul    st, st(3)
        fild    dword ptr [rsi + rax*4 + 512]
        faddp   st(1), st
        fld     st(0)
        fstp    qword ptr [rsi + rax*8]
        fxch    st(1)
        fmul    st, st(2)
        faddp   st(1), st
        dec     ecx
        jnz     1b
9:
        fstp    qword ptr [rsi + 1024]
        int3
        .p2align 4
x87_c075:       .double 0.75
x87_c05:        .double 0.5
x87_cw:         .short 0x027f
`;
}

function x87InitA(i: number): number {
  return i + 0.5;
}

/** Integer addend of slot i: never 0 (a slot with k = 0 would decay to denormals, flagging UE/DE). */
function x87InitK(i: number): number {
  return ((i * 7) % 13) - 6 || 9;
}

/** Host model of the x87 loop (precision control 53 bits = IEEE double): final acc and a[]. */
export function x87Model(n: number): { acc: number; a: Float64Array } {
  const a = new Float64Array(X87_SLOTS);
  for (let i = 0; i < X87_SLOTS; i++) a[i] = x87InitA(i);
  let acc = 0;
  for (let c = n; c > 0; c--) {
    const s = c & 63;
    const v = a[s] * 0.75 + x87InitK(s);
    a[s] = v;
    acc = v + acc * 0.5;
  }
  return { acc, a };
}

const x87Workload: CpuWorkload = {
  figure: 'cpu.mipsX87',
  mode: 'long64',
  iterations: 800_000,
  perIteration: 13,
  source: x87Source,
  setup(tm, n) {
    const dv = tm.mem.view;
    for (let i = 0; i < X87_SLOTS; i++) {
      dv.setFloat64(SIMD_DATA + i * 8, x87InitA(i), true);
      dv.setInt32(SIMD_DATA + 512 + i * 4, x87InitK(i), true);
    }
    const R = tm.cpu.state.gprLo;
    R[1] = n;
    R[6] = SIMD_DATA;
  },
  check(tm, n) {
    const want = x87Model(n);
    const dv = tm.mem.view;
    const eq = (what: string, got: number, w: number): void => {
      if (!Object.is(got, w)) throw new Error(`cpu.mipsX87 ${what}: got ${got} want ${w}`);
    };
    eq('acc', dv.getFloat64(SIMD_DATA + 1024, true), want.acc);
    for (let i = 0; i < X87_SLOTS; i++) eq(`a[${i}]`, dv.getFloat64(SIMD_DATA + i * 8, true), want.a[i]);
    const sw = tm.cpu.state.fpuSw;
    // Two constants left on the stack: TOP = 6; no exception flag other than PE.
    if (((sw >> 11) & 7) !== 6) throw new Error(`cpu.mipsX87: FSW ${u32(sw)}: TOP is not 6`);
    if (sw & 0x5f) throw new Error(`cpu.mipsX87: FSW ${u32(sw)} has flags other than PE`);
  },
};

// ---- TLB-heavy workload (64-bit) ----

const DATA_LIN = 0x40000000;
const DATA_PHYS = 32 * 1024 * 1024;
const DATA_PAGES = 4096;

function tlbSource(): string {
  return `.intel_syntax noprefix
.code64
.text
.globl _start
_start:
        /* rdi = data base (linear), r8 = PTE array (identity-mapped), ecx = iterations */
1:
        mov     eax, ecx
        imul    eax, eax, 0x9E3779B1
        shr     eax, 20
        mov     rdx, rax
        shl     rdx, 12
        add     rdx, rdi
        mov     r9, [rdx]
        add     r9, 1
        mov     [rdx], r9
        test    ecx, 63
        jnz     2f
        mov     qword ptr [r8 + rax*8], 0
        invlpg  [rdx]
2:
        test    ecx, 1023
        jnz     3f
        mov     rax, cr3
        mov     cr3, rax
3:
        dec     ecx
        jnz     1b
        int3
        .p2align 4
.globl pf_handler
pf_handler:
        push    rax
        push    rdx
        mov     rax, cr2
        sub     rax, rdi
        shr     rax, 12
        mov     rdx, rax
        shl     rdx, 12
        add     rdx, ${DATA_PHYS + 0x63}
        mov     [r8 + rax*8], rdx
        pop     rdx
        pop     rax
        add     rsp, 8
        iretq
`;
}

/** Offset of pf_handler: its prologue push rax (50), push rdx (52), mov rax, cr2 (0f 20 d0). */
function findHandler(bin: Uint8Array): number {
  for (let i = 0; i + 5 <= bin.length; i++) {
    if (
      bin[i] === 0x50 &&
      bin[i + 1] === 0x52 &&
      bin[i + 2] === 0x0f &&
      bin[i + 3] === 0x20 &&
      bin[i + 4] === 0xd0
    )
      return i;
  }
  throw new Error('bench: pf_handler not found');
}

/** Host model of the TLB workload: the 64-bit counter of each data page after n iterations. */
function tlbCounts(n: number): Map<number, number> {
  const m = new Map<number, number>();
  for (let c = n; c > 0; c--) {
    const page = Math.imul(c, 0x9e3779b1) >>> 20;
    m.set(page, (m.get(page) ?? 0) + 1);
  }
  return m;
}

const tlbWorkload: CpuWorkload = {
  figure: 'cpu.mipsTlbHeavy',
  mode: 'long64',
  memoryMiB: 64,
  iterations: 4_000_000,
  source: tlbSource,
  setup(tm, n, bin) {
    for (let i = 0; i < DATA_PAGES; i++) tm.mapPage(DATA_LIN + i * 4096, DATA_PHYS + i * 4096, 0x63);
    const pt0 = tm.pteOffset(DATA_LIN);
    for (let i = 0; i < DATA_PAGES; i++) {
      if (tm.pteOffset(DATA_LIN + i * 4096) !== pt0 + i * 8)
        throw new Error('bench: TLB workload page tables not contiguous');
    }
    // Start with every data page unmapped: the handler maps them on demand.
    tm.mem.fill(pt0, DATA_PAGES * 8, 0);
    tm.setIdtGate(14, CODE_BASE + findHandler(bin));
    const R = tm.cpu.state.gprLo;
    R[7] = DATA_LIN;
    R[8] = pt0;
    R[1] = n;
  },
  check(tm, n) {
    expectEq('cpu.mipsTlbHeavy ecx', tm.cpu.state.gprLo[1], 0);
    const dv = tm.mem.view;
    for (const [page, count] of tlbCounts(n)) {
      expectEq(`cpu.mipsTlbHeavy page ${page} counter`, dv.getUint32(DATA_PHYS + page * 4096, true), count);
    }
  },
};

/** The project's own workloads, in the order the bench prints them. */
export const CPU_WORKLOADS: readonly CpuWorkload[] = [
  intWorkload(32),
  intWorkload(64),
  tlbWorkload,
  sseWorkload,
  x87Workload,
];

// ---- The anchor loop (../shared/bench/loop.inc) ----

function anchorSource(bits: 32 | 64): string {
  return `#include "loop.inc"
.intel_syntax noprefix
${bits === 32 ? '.code32' : '.code64'}
.text
.globl _start
_start:
        BENCH_LOOP ${bits === 32 ? 'edx' : 'rdx'}
        int3
        BENCH_CRC_STEP
        .p2align 12
bench_table:
        .space 1024
`;
}

const ANCHOR_EXPECT = { esi: 0xadaf5d41, ebx: 0x54e75407, ebp: 0xe22d5608 };
const ANCHOR_ITERATIONS = 16_000_000;

function anchorWorkload(bits: 32 | 64): CpuWorkload {
  return {
    figure: bits === 32 ? 'cpu.mips32pae' : 'cpu.mips64',
    mode: bits === 32 ? 'pae32' : 'long64',
    iterations: ANCHOR_ITERATIONS,
    perIteration: 31,
    source: () => anchorSource(bits),
    setup(tm, n) {
      const R = tm.cpu.state.gprLo;
      R[1] = n;
      R[6] = 0x2545f491;
      R[3] = 0;
      R[5] = -1;
    },
    check(tm, n) {
      if (n !== ANCHOR_ITERATIONS) return; // the known results are for the full run only
      const R = tm.cpu.state.gprLo;
      expectEq(`${this.figure} esi`, R[6], ANCHOR_EXPECT.esi);
      expectEq(`${this.figure} ebx`, R[3], ANCHOR_EXPECT.ebx);
      expectEq(`${this.figure} ebp`, R[5], ANCHOR_EXPECT.ebp);
    },
  };
}

/**
 * The anchor loop's MIPS (31 instructions per iteration over the time of a
 * 16 M-iteration run less that of a 0-iteration run), checked against the
 * loop's known results. Needs LOOP_INC.
 * @throws Error when the results or the instruction count are wrong.
 */
export function anchorMips(bits: 32 | 64): number {
  const w = anchorWorkload(bits);
  const bin = assemble(w.source(), bits, CODE_BASE, path.dirname(LOOP_INC));
  // Warm-up run (V8 tiers up the engine's own code), then measure.
  runWorkload(w, bin, 200_000);
  const zero = runWorkload(w, bin, 0);
  const full = runWorkload(w, bin, w.iterations);
  const extra = full.retired - 31 * w.iterations;
  // test/jz, the .p2align padding NOPs before the loop and the final int3.
  if (extra < 3 || extra > 16) throw new Error(`anchor loop (${bits}): ${full.retired} instructions retired`);
  return (31 * w.iterations) / (full.secs - zero.secs) / 1e6;
}
