/**
 * `npm run bench`: engine benchmarks. Each section returns flat
 * `{ key: number }` figures; all are merged into bench-results.json at the
 * repository root (existing keys from other sections are kept).
 *
 * CPU section: the anchor loop (../shared/bench/loop.inc, see its README)
 * assembled with GNU as at bench time, run in 32-bit protected mode with
 * PAE paging and in 64-bit long mode with 4-level paging;
 * MIPS = 31 * iterations / (t(run) - t(0-iteration run)). Plus a TLB-heavy
 * workload (random pages, INVLPG, CR3 reloads, #PF handled by an IDT
 * handler that maps the page): `cpu.mipsTlbHeavy` = instructions retired
 * (handler included) per second.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTestMachine, CODE_BASE, type TestMachine } from '../engine/cpu/testbed';
import { guestSection } from './bench-guest';

const repoRoot = path.resolve(__dirname, '..');
const loopInc = path.resolve(repoRoot, '..', 'shared', 'bench', 'loop.inc');

/** One benchmark section: a name and a function producing flat figures. */
export interface BenchSection {
  name: string;
  run(): Record<string, number>;
}

/** Assembles Intel-syntax source (with cpp) into a flat binary linked at `base`. */
function assemble(src: string, bits: 32 | 64, base: number): Uint8Array {
  const dir = mkdtempSync(path.join(tmpdir(), 'pvscope-bench-'));
  try {
    const s = path.join(dir, 'a.S');
    writeFileSync(s, src);
    const o = path.join(dir, 'a.o');
    const elf = path.join(dir, 'a.elf');
    const bin = path.join(dir, 'a.bin');
    execFileSync('gcc', [
      bits === 32 ? '-m32' : '-m64',
      '-c',
      '-x',
      'assembler-with-cpp',
      '-I',
      path.dirname(loopInc),
      s,
      '-o',
      o,
    ]);
    execFileSync('ld', [
      '-m',
      bits === 32 ? 'elf_i386' : 'elf_x86_64',
      '-Ttext',
      `0x${base.toString(16)}`,
      '-e',
      '_start',
      '-o',
      elf,
      o,
    ]);
    execFileSync('objcopy', ['-O', 'binary', elf, bin]);
    return new Uint8Array(readFileSync(bin));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

const EXPECT = { esi: 0xadaf5d41, ebx: 0x54e75407, ebp: 0xe22d5608 };

/** Runs the anchor loop once; returns seconds and the machine. */
function runAnchor(
  bin: Uint8Array,
  mode: 'pae32' | 'long64',
  iterations: number,
): { secs: number; tm: TestMachine } {
  const tm = createTestMachine({ mode, memoryMiB: 16 });
  tm.load(CODE_BASE, bin);
  tm.start(CODE_BASE);
  const R = tm.cpu.state.gprLo;
  R[1] = iterations;
  R[6] = 0x2545f491;
  R[3] = 0;
  R[5] = -1;
  tm.cpu.interceptExceptions = 1 << 3;
  const t0 = performance.now();
  let r: number;
  do r = tm.cpu.run(1 << 30);
  while (r === 0);
  const secs = (performance.now() - t0) / 1000;
  if (r !== 1 || tm.cpu.exitVector !== 3) {
    throw new Error(
      `anchor loop (${mode}) stopped with exit ${r} vector ${tm.cpu.exitVector} ${tm.cpu.exitDetail}`,
    );
  }
  return { secs, tm };
}

function anchorMips(mode: 'pae32' | 'long64'): number {
  const bin = assemble(anchorSource(mode === 'pae32' ? 32 : 64), mode === 'pae32' ? 32 : 64, CODE_BASE);
  const iterations = 16_000_000;
  // Warm-up run (V8 tiers up the engine's own code), then measure.
  runAnchor(bin, mode, 200_000);
  const t0 = runAnchor(bin, mode, 0).secs;
  const { secs, tm } = runAnchor(bin, mode, iterations);
  const R = tm.cpu.state.gprLo;
  const got = { esi: R[6] >>> 0, ebx: R[3] >>> 0, ebp: R[5] >>> 0 };
  if (got.esi !== EXPECT.esi || got.ebx !== EXPECT.ebx || got.ebp !== EXPECT.ebp) {
    throw new Error(
      `anchor loop (${mode}) computed wrong results: esi=${got.esi.toString(16)} ebx=${got.ebx.toString(16)} ebp=${got.ebp.toString(16)}`,
    );
  }
  const retired = tm.cpu.state.instructionsRetired;
  // 31 per iteration, plus test/jz, the .p2align padding NOPs before the loop and the final int3.
  const extra = retired - 31 * iterations;
  if (extra < 3 || extra > 16) throw new Error(`anchor loop (${mode}): ${retired} instructions retired`);
  return (31 * iterations) / (secs - t0) / 1e6;
}

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

function tlbHeavyMips(): number {
  const bin = assemble(tlbSource(), 64, CODE_BASE);
  // pf_handler offset: find the handler by assembling with a symbol dump would need nm; it is 16-aligned after int3.
  const run = (iterations: number): { secs: number; retired: number } => {
    const tm = createTestMachine({ mode: 'long64', memoryMiB: 64 });
    tm.load(CODE_BASE, bin);
    for (let i = 0; i < DATA_PAGES; i++) tm.mapPage(DATA_LIN + i * 4096, DATA_PHYS + i * 4096, 0x63);
    const pt0 = tm.pteOffset(DATA_LIN);
    for (let i = 0; i < DATA_PAGES; i++) {
      if (tm.pteOffset(DATA_LIN + i * 4096) !== pt0 + i * 8)
        throw new Error('bench: TLB workload page tables not contiguous');
    }
    // Start with every data page unmapped: the handler maps them on demand.
    tm.mem.fill(pt0, DATA_PAGES * 8, 0);
    const handler = findHandler(bin);
    tm.setIdtGate(14, CODE_BASE + handler);
    tm.start(CODE_BASE);
    const R = tm.cpu.state.gprLo;
    R[7] = DATA_LIN;
    R[8] = pt0;
    R[1] = iterations;
    tm.cpu.interceptExceptions = 1 << 3;
    const t0 = performance.now();
    let r: number;
    do r = tm.cpu.run(1 << 30);
    while (r === 0);
    const secs = (performance.now() - t0) / 1000;
    if (r !== 1 || tm.cpu.exitVector !== 3 || R[1] !== 0) {
      throw new Error(
        `TLB workload stopped with exit ${r} vector ${tm.cpu.exitVector} ecx=${R[1]} ${tm.cpu.exitDetail}`,
      );
    }
    return { secs, retired: tm.cpu.state.instructionsRetired };
  };
  run(100_000);
  const base = run(1);
  const full = run(4_000_000);
  return (full.retired - base.retired) / (full.secs - base.secs) / 1e6;
}

/** Offset of pf_handler: the first 16-aligned offset after the int3 (0xcc) that ends the loop. */
function findHandler(bin: Uint8Array): number {
  // Search for the handler's prologue: push rax (50), push rdx (52), mov rax, cr2 (0f 20 d0).
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

const cpuSection: BenchSection = {
  name: 'cpu',
  run(): Record<string, number> {
    const out: Record<string, number> = {};
    // The anchor loop other emulators were measured on lives beside the project (../shared/bench);
    // a fresh clone without it still measures the rest.
    if (existsSync(loopInc)) {
      out['cpu.mips32pae'] = round(anchorMips('pae32'));
      console.log(`cpu.mips32pae  ${out['cpu.mips32pae']}`);
      out['cpu.mips64'] = round(anchorMips('long64'));
      console.log(`cpu.mips64     ${out['cpu.mips64']}`);
    } else console.log(`cpu.mips32pae/cpu.mips64: skipped (no ${loopInc})`);
    try {
      out['cpu.mipsTlbHeavy'] = round(tlbHeavyMips());
      console.log(`cpu.mipsTlbHeavy ${out['cpu.mipsTlbHeavy']}`);
    } catch (e) {
      console.error(`cpu.mipsTlbHeavy failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    }
    return out;
  },
};

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/**
 * Debug adapter section (scripts/bench-dap.ts): its DAP round trips are
 * asynchronous, so it runs in a child process that prints its figures as JSON.
 */
const dapSection: BenchSection = {
  name: 'dap',
  run(): Record<string, number> {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts', 'bench-dap.ts')],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const figures = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>;
    for (const [k, v] of Object.entries(figures)) console.log(`${k} ${v}`);
    return figures;
  },
};

/** Sections run in order; other parts of the engine add theirs here. */
export const sections: BenchSection[] = [cpuSection, guestSection, dapSection];

function main(): void {
  const only = process.argv.slice(2);
  const resultsPath = path.join(repoRoot, 'bench-results.json');
  let results: Record<string, number> = {};
  if (existsSync(resultsPath)) {
    try {
      results = JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, number>;
    } catch {
      results = {};
    }
  }
  for (const s of sections) {
    if (only.length && !only.includes(s.name)) continue;
    Object.assign(results, s.run());
  }
  writeFileSync(resultsPath, JSON.stringify(results, null, 2) + '\n');
}

main();
