/**
 * Runs one guest in a child process and reports how `Machine.run` behaved,
 * so a guest that hangs the engine fails a test instead of wedging mocha
 * (a synchronous endless loop cannot be interrupted in-process).
 *
 * As a script: `node --require tsx/cjs test/helpers/engine-probe.ts JOB.json`
 * where JOB.json is a ProbeJob; prints one JSON ProbeResult line.
 * From a test: `probeGuest(job, timeoutMs)` spawns that and parses the line;
 * a child killed by the timeout reports `{ hung: true }`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ProbeJob {
  /** Path of the kernel ELF. */
  kernel: string;
  memory?: number;
  vcpus?: number;
  /** Budget of each `Machine.run` call. */
  budget: number;
  /** Stop after this many run() calls... */
  maxRuns: number;
  /** ...or this much host time (ms) in total. */
  maxTotalMs: number;
  /** Call `pause()` before the run() whose index this is (-1: never). */
  pauseAtRun?: number;
}

export interface ProbeResult {
  hung: boolean;
  runs: number;
  /** Longest host time of one run() call, ms. */
  maxSliceMs: number;
  /** Longest CPU time (user + system, process.cpuUsage) of one run() call, ms: unaffected by other processes. */
  maxSliceCpuMs?: number;
  totalMs: number;
  /** Stop kinds seen, in order of first appearance, with a count each. */
  stops: Record<string, number>;
  /** The first non-budget stop (description when it has one). */
  firstStop: string | null;
  firstStopJson: string | null;
  instructions: number;
  hypercalls: number;
  /** Guest system time of vCPU 0 (ns). */
  guestNs: number;
  /** Whether the stop after pause() was a 'pause' stop, and how long that run() took. */
  pauseStop?: string;
  pauseMs?: number;
  peakRssMiB: number;
  error: string | null;
  stderr?: string;
}

const SELF = __filename;

/** Spawns the probe for `job`; `timeoutMs` kills a hung child. */
export function probeGuest(job: ProbeJob, timeoutMs: number): ProbeResult {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-probe-'));
  try {
    const jf = join(dir, 'job.json');
    writeFileSync(jf, JSON.stringify(job));
    const r = spawnSync(process.execPath, ['--require', 'tsx/cjs', SELF, jf], {
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 16 << 20,
    });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{"probe":'));
    if (!line) {
      return {
        hung: r.signal === 'SIGKILL' || (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT',
        runs: 0,
        maxSliceMs: Infinity,
        totalMs: Infinity,
        stops: {},
        firstStop: null,
        firstStopJson: null,
        instructions: 0,
        hypercalls: 0,
        guestNs: 0,
        peakRssMiB: 0,
        error: `probe exited ${r.status} ${r.signal ?? ''}`,
        stderr: (r.stderr ?? '').slice(-4000),
      };
    }
    return (JSON.parse(line) as { probe: ProbeResult }).probe;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bigintSafe(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `0x${v.toString(16)}` : v;
}

function main(jobPath: string): void {
  // Imported here so that loading this module from a test does not load the engine twice.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createMachine } = require('../../engine/machine') as typeof import('../../engine/machine');
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as ProbeJob;
  const out: ProbeResult = {
    hung: false,
    runs: 0,
    maxSliceMs: 0,
    totalMs: 0,
    stops: {},
    firstStop: null,
    firstStopJson: null,
    instructions: 0,
    hypercalls: 0,
    guestNs: 0,
    peakRssMiB: 0,
    error: null,
  };
  try {
    const m = createMachine({
      name: 'probe',
      kernel: new Uint8Array(readFileSync(job.kernel)),
      memory: job.memory ?? 16,
      vcpus: job.vcpus ?? 1,
      disks: [],
      vifs: [],
    });
    const t0 = performance.now();
    for (let i = 0; i < job.maxRuns; i++) {
      if (i === job.pauseAtRun) m.pause();
      const cpu0 = process.cpuUsage();
      const a = performance.now();
      const s = m.run(job.budget);
      const dt = performance.now() - a;
      const cpu = process.cpuUsage(cpu0);
      out.runs++;
      out.maxSliceMs = Math.max(out.maxSliceMs, dt);
      out.maxSliceCpuMs = Math.max(out.maxSliceCpuMs ?? 0, (cpu.user + cpu.system) / 1000);
      out.stops[s.kind] = (out.stops[s.kind] ?? 0) + 1;
      if (i === job.pauseAtRun) {
        out.pauseStop = s.kind;
        out.pauseMs = dt;
      }
      if (s.kind !== 'budget' && out.firstStop === null) {
        out.firstStop = 'description' in s ? `${s.kind}: ${s.description}` : s.kind;
        out.firstStopJson = JSON.stringify(s, bigintSafe);
      }
      if (s.kind === 'shutdown') break;
      out.peakRssMiB = Math.max(out.peakRssMiB, process.memoryUsage.rss() / 2 ** 20);
      if (performance.now() - t0 > job.maxTotalMs) break;
    }
    out.totalMs = performance.now() - t0;
    out.instructions = m.info.instructionsRetired;
    out.hypercalls = m.env.count;
    out.guestNs = m.dom.time.nowNs(m.dom.vcpus[0]);
  } catch (e) {
    out.error = (e as Error)?.stack ?? String(e);
  }
  out.peakRssMiB = Math.max(out.peakRssMiB, process.memoryUsage.rss() / 2 ** 20);
  process.stdout.write(`${JSON.stringify({ probe: out })}\n`);
}

if (require.main === module) main(process.argv[2]);
