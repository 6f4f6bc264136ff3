/**
 * Debug adapter benchmarks (section "dap" of `npm run bench`), over DAP
 * against `node dist/debug-adapter.js` on Debian's PV GRUB x86_64:
 *  - dap.stepLatencyMs.p50 / dap.stepLatencyMs.p95: wall-clock milliseconds
 *    of a `next` (instruction granularity) request until its `stopped` event,
 *    over 200 steps from GRUB's first mmu_update hypercall;
 *  - dap.breakpointOverhead: time of a `continue` from entry to GRUB's first
 *    sched_op hypercall (about 6.2 million instructions, stopped by the
 *    hypercall filter) with 100 instruction breakpoints that are never hit
 *    and the other six filters armed with conditions that never match,
 *    divided by the same run with nothing else armed (1.0 = no overhead;
 *    best of three runs each).
 * Run standalone with `node --import tsx scripts/bench-dap.ts`: prints the
 * figures as one JSON line.
 */
import { performance } from 'node:perf_hooks';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { fetchDebianFile } from '../test/helpers/debian';
import { startClient } from '../test/helpers/dap';

async function launchGrub(kernel: string): Promise<DebugClient> {
  const dc = await startClient({ fake: false });
  dc.defaultTimeout = 600000;
  await dc.initializeRequest({ adapterID: 'pvscope', linesStartAt1: true, columnsStartAt1: true });
  const initialized = dc.waitForEvent('initialized');
  await dc.launchRequest({ kernel, memory: 256 } as DebugProtocol.LaunchRequestArguments);
  await initialized;
  return dc;
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function stepLatency(kernel: string): Promise<{ p50: number; p95: number }> {
  const dc = await launchGrub(kernel);
  try {
    // Step in GRUB's page-table setup code (after its first mmu_update): `next` steps over calls that
    // return there, while from the entry point it would run over GRUB's never-returning main.
    await dc.setExceptionBreakpointsRequest({
      filters: [],
      filterOptions: [{ filterId: 'hypercall', condition: 'mmu_update' }],
    });
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    await dc.setExceptionBreakpointsRequest({ filters: [] });
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      await Promise.all([
        dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
        dc.waitForEvent('stopped'),
      ]);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { p50: percentile(times, 50), p95: percentile(times, 95) };
  } finally {
    await dc.stop();
  }
}

async function timeToFirstSchedOp(kernel: string, armed: boolean): Promise<number> {
  const dc = await launchGrub(kernel);
  try {
    const filterOptions: DebugProtocol.ExceptionFilterOptions[] = [
      { filterId: 'hypercall', condition: 'sched_op' },
    ];
    if (armed) {
      const bps = Array.from({ length: 100 }, (_, i) => ({
        instructionReference: `0x${(0x7fff0000 + i * 16).toString(16)}`,
      }));
      await dc.customRequest('setInstructionBreakpoints', { breakpoints: bps });
      filterOptions.push(
        { filterId: 'grant', condition: 'ref 4000-4001' },
        { filterId: 'pagefault', condition: '0xdead0000-0xdeadffff' },
        { filterId: 'trap', condition: '#MC' },
        { filterId: 'event', condition: '4000' },
        { filterId: 'mmu-reject', condition: 'EXDEV' },
        { filterId: 'crash', condition: 'never-matches' },
      );
    }
    await dc.setExceptionBreakpointsRequest({ filters: [], filterOptions });
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
    const t0 = performance.now();
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    const t = performance.now() - t0;
    if (ev.body.reason !== 'exception' || !/sched_op/.test(ev.body.description ?? '')) {
      throw new Error(
        `bench dap: expected the sched_op filter stop, got ${ev.body.reason} ${ev.body.description ?? ''}`,
      );
    }
    return t;
  } finally {
    await dc.stop();
  }
}

/** Runs the dap benchmarks; returns flat figures. */
export async function dapBench(): Promise<Record<string, number>> {
  const kernel = await fetchDebianFile('grub-xen-host', '/usr/lib/grub-xen/grub-x86_64-xen.bin');
  const lat = await stepLatency(kernel);
  const plain: number[] = [];
  const armed: number[] = [];
  for (let i = 0; i < 3; i++) {
    plain.push(await timeToFirstSchedOp(kernel, false));
    armed.push(await timeToFirstSchedOp(kernel, true));
  }
  const r = (v: number, d = 100) => Math.round(v * d) / d;
  return {
    'dap.stepLatencyMs.p50': r(lat.p50),
    'dap.stepLatencyMs.p95': r(lat.p95),
    'dap.breakpointOverhead': r(Math.min(...armed) / Math.min(...plain), 1000),
  };
}

if (require.main === module) {
  dapBench().then(
    (r) => console.log(JSON.stringify(r)),
    (e) => {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(1);
    },
  );
}
