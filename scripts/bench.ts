/**
 * `npm run bench`: engine benchmarks. Each section returns flat
 * `{ key: number }` figures; all are merged into bench-results.json at the
 * repository root (existing keys from other sections are kept).
 *
 * CPU section (scripts/bench-cpu.ts): the project's own workloads, each
 * checked against a host model of its final state: integer
 * (`cpu.mipsInt32pae`, `cpu.mipsInt64`), TLB-heavy (`cpu.mipsTlbHeavy`),
 * SSE2 (`cpu.mipsSse`) and x87 (`cpu.mipsX87`); and, where
 * ../shared/bench/loop.inc exists, the anchor loop in 32-bit PAE and
 * 64-bit mode (`cpu.mips32pae`, `cpu.mips64`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { anchorMips, CPU_WORKLOADS, LOOP_INC, workloadMips } from './bench-cpu';
import { guestSection } from './bench-guest';

const repoRoot = path.resolve(__dirname, '..');

/** One benchmark section: a name and a function producing flat figures. */
export interface BenchSection {
  name: string;
  run(): Record<string, number>;
}

const cpuSection: BenchSection = {
  name: 'cpu',
  run(): Record<string, number> {
    const out: Record<string, number> = {};
    // The anchor loop other emulators were measured on lives beside the project (../shared/bench);
    // a fresh clone without it still measures the project's own workloads.
    if (existsSync(LOOP_INC)) {
      out['cpu.mips32pae'] = round(anchorMips(32));
      console.log(`cpu.mips32pae    ${out['cpu.mips32pae']}`);
      out['cpu.mips64'] = round(anchorMips(64));
      console.log(`cpu.mips64       ${out['cpu.mips64']}`);
    } else console.log(`cpu.mips32pae/cpu.mips64: skipped (no ${LOOP_INC})`);
    for (const w of CPU_WORKLOADS) {
      try {
        out[w.figure] = round(workloadMips(w));
        console.log(`${w.figure.padEnd(16)} ${out[w.figure]}`);
      } catch (e) {
        console.error(`${w.figure} failed: ${e instanceof Error ? e.message : String(e)}`);
        process.exitCode = 1;
      }
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
