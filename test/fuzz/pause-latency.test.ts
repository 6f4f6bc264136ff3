/**
 * Issue 8: the adapter's `pause` and the CLI's `--timeout` are honoured
 * within 100 ms of host time whatever the guest does: a busy loop, loops of
 * long (preempted) or cheap hypercalls, REP string loops, a guest blocked
 * with only console input to wake it and one blocked forever (the hostile
 * guests of test/helpers/hostile-guests.ts).
 *
 * What bounds the latency is the host time of one `Machine.run(budget)`
 * slice: the adapter serves a request between slices, the CLI reads the
 * clock after each. So each case is measured three ways:
 * - the engine: the longest slice at the adapter's largest budget
 *   (MAX_BUDGET) in a child process (test/helpers/engine-probe.ts), which
 *   must stay under 100 ms of CPU time (and 100 ms + PAUSE_SLACK_MS of
 *   host time, which adds the machine's load);
 * - the adapter over DAP (real engine, dist/debug-adapter.js): `pause` sent
 *   while the guest runs until the `stopped` event, several times; the
 *   median must be under 100 ms, every one under 100 ms + PAUSE_SLACK_MS
 *   (a loaded 2-core CI machine deschedules the adapter now and then); the
 *   same for a `threads` request while running;
 * - the CLI: `--timeout 1` exits 3 within 1 s + 100 ms + CLI_SLACK_MS of
 *   a run that exits at once (start-up subtracted; the slack covers the
 *   start-up's own variation on a loaded machine).
 * The figures are printed (PVSCOPE_LATENCY_QUIET=1 silences them).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { startClient } from '../helpers/dap';
import { probeGuest } from '../helpers/engine-probe';
import {
  BLOCKED_FOREVER_64,
  BLOCKERS,
  BUSY_LOOP_64,
  HYPERCALL_LOOPS,
  REP_LOOPS,
} from '../helpers/hostile-guests';
import { buildXenGuest } from '../helpers/xen-guest';
import { MAX_BUDGET } from '../../debug-adapter/session';

/** The issue's bound (ms of host time). */
const BOUND_MS = 100;
/** Extra allowed for a single measurement (not the median) on a loaded machine. */
const PAUSE_SLACK_MS = 400;
/** Extra allowed for the CLI, whose process start-up is subtracted from a separate run. */
const CLI_SLACK_MS = 600;
const PAUSES = 5;

const ROOT = join(__dirname, '..', '..');
const quiet = process.env.PVSCOPE_LATENCY_QUIET === '1';
const report = (line: string) => {
  if (!quiet) process.stdout.write(`      ${line}\n`);
};

const CASES: Record<string, string> = {
  'busy loop': BUSY_LOOP_64,
  'multicall loop': HYPERCALL_LOOPS['multicall(buf, 1024) over zeroed memory'],
  'xen_version (hypercall) loop': HYPERCALL_LOOPS['xen_version loop'],
  'mmu_update loop': HYPERCALL_LOOPS['mmu_update(zeroed, 0x7fffffff)'],
  'REP stosb loop': REP_LOOPS['a loop of 4000-byte rep stosb'],
  'REP movsb + xen_version loop': REP_LOOPS['a loop of 65536-byte rep movsb and xen_version'],
  'blocked, console can wake (hlt)': BLOCKERS.hlt[64],
  'blocked forever (hlt, ports closed)': BLOCKED_FOREVER_64,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');

let dir = '';
const kernels = new Map<string, string>();
function kernel(name: string): string {
  let p = kernels.get(name);
  if (!p) {
    p = join(dir, `${name.replace(/\W/g, '_')}.elf`);
    writeFileSync(p, buildXenGuest({ bits: 64, asm: CASES[name] }));
    kernels.set(name, p);
  }
  return p;
}

describe('pause and --timeout latency with hostile guests (issue 8)', function () {
  this.timeout(300_000);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pvscope-latency-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe(`engine: the longest Machine.run(${MAX_BUDGET}) slice (the adapter's largest budget)`, () => {
    for (const name of Object.keys(CASES)) {
      it(`${name}: under ${BOUND_MS} ms`, () => {
        const r = probeGuest(
          { kernel: kernel(name), budget: MAX_BUDGET, maxRuns: 15, maxTotalMs: 1500 },
          60_000,
        );
        assert.ok(!r.hung, `Machine.run hung: ${r.error} ${r.stderr ?? ''}`);
        assert.equal(r.error, null, r.stderr);
        const cpuMs = r.maxSliceCpuMs ?? Infinity;
        report(
          `longest slice ${r.maxSliceMs.toFixed(1)} ms host, ${cpuMs.toFixed(1)} ms CPU over ${r.runs} runs (${r.instructions} instructions)`,
        );
        assert.ok(r.runs >= 2, `only ${r.runs} runs`);
        // CPU time is what the engine spends; host (wall) time adds the machine's load.
        assert.ok(cpuMs < BOUND_MS, `longest slice ${cpuMs.toFixed(1)} ms of CPU time`);
        assert.ok(r.maxSliceMs < BOUND_MS + PAUSE_SLACK_MS, `longest slice ${r.maxSliceMs.toFixed(1)} ms`);
      });
    }
  });

  describe('adapter: pause and threads while the guest runs', () => {
    let dc: DebugClient;
    beforeEach(async () => {
      dc = await startClient({ fake: false });
      await dc.initializeRequest({ adapterID: 'pvscope', linesStartAt1: true, columnsStartAt1: true });
    });
    afterEach(async () => {
      await dc.stop();
    });

    /** Continues and lets the guest run `ms`; returns the stop it reached by itself, if any. */
    async function runFor(ms: number): Promise<DebugProtocol.StoppedEvent | null> {
      let ev: DebugProtocol.StoppedEvent | null = null;
      const seen = (e: DebugProtocol.StoppedEvent) => (ev = e);
      dc.once('stopped', seen);
      await dc.continueRequest({ threadId: 1 });
      await sleep(ms);
      dc.removeListener('stopped', seen);
      return ev;
    }

    for (const name of Object.keys(CASES)) {
      it(`${name}: pause honoured within ${BOUND_MS} ms (median of ${PAUSES})`, async () => {
        const initialized = dc.waitForEvent('initialized');
        await dc.launchRequest({ kernel: kernel(name), memory: 16 } as DebugProtocol.LaunchRequestArguments);
        await initialized;
        await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
        // A blocked guest stops by itself first (a 'blocked' pause stop); continuing it again idles.
        const own = await runFor(300);
        if (name.startsWith('blocked')) {
          assert.ok(own, 'a blocked guest stops by itself');
          assert.match(own.body.description ?? '', /blocked/);
        } else assert.equal(own, null, `stopped by itself: ${JSON.stringify(own?.body)}`);
        const pauses: number[] = [];
        const threads: number[] = [];
        for (let i = 0; i < PAUSES; i++) {
          if (i > 0 || own) assert.equal(await runFor(150), null);
          let t = performance.now();
          const th = await dc.threadsRequest();
          threads.push(performance.now() - t);
          assert.equal(th.body.threads.length, 1);
          t = performance.now();
          const [, ev] = await Promise.all([
            dc.pauseRequest({ threadId: 1 }),
            dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
          ]);
          pauses.push(performance.now() - t);
          assert.equal(ev.body.reason, 'pause');
        }
        report(`pause ms: ${fmt(pauses)}; threads ms: ${fmt(threads)}`);
        assert.ok(median(pauses) < BOUND_MS, `pause median ${median(pauses).toFixed(1)} ms`);
        assert.ok(median(threads) < BOUND_MS, `threads median ${median(threads).toFixed(1)} ms`);
        assert.ok(Math.max(...pauses) < BOUND_MS + PAUSE_SLACK_MS, `pause ${fmt(pauses)} ms`);
        assert.ok(Math.max(...threads) < BOUND_MS + PAUSE_SLACK_MS, `threads ${fmt(threads)} ms`);
        // Still inspectable after all that.
        const st = await dc.stackTraceRequest({ threadId: 1 });
        assert.ok(st.body.stackFrames.length >= 1);
      });
    }
  });

  describe('CLI: --timeout 1', () => {
    const cli = (args: string[]) => {
      const t = performance.now();
      const r = spawnSync(
        process.execPath,
        ['--require', 'tsx/cjs', join(ROOT, 'cli', 'main.ts'), 'run', ...args],
        { encoding: 'utf8', cwd: ROOT, timeout: 120_000, killSignal: 'SIGKILL' },
      );
      return { ...r, ms: performance.now() - t };
    };
    for (const name of Object.keys(CASES)) {
      const blocked = name.startsWith('blocked');
      it(`${name}: ${blocked ? 'exits 1 with the blocked reason at once' : `exits 3 within 1 s + ${BOUND_MS} ms`}`, () => {
        const k = kernel(name);
        const base = cli(['--kernel', k, '--max-instructions', '100']);
        const r = cli(['--kernel', k, '--timeout', '1']);
        const late = r.ms - base.ms - (blocked ? 0 : 1000);
        report(`start-up ${base.ms.toFixed(0)} ms; late by ${late.toFixed(0)} ms`);
        if (blocked) {
          assert.equal(r.status, 1, r.stderr);
          assert.match(r.stderr, /blocked/);
        } else {
          assert.equal(base.status, 3, base.stderr);
          assert.equal(r.status, 3, r.stderr);
          assert.match(r.stderr, /timeout after 1 s/);
        }
        assert.ok(
          late < BOUND_MS + CLI_SLACK_MS,
          `late by ${late.toFixed(0)} ms (start-up ${base.ms.toFixed(0)} ms)`,
        );
      });
    }
  });
});
