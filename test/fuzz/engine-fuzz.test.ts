/**
 * Issue 8: the engine fuzzer (test/helpers/engine-fuzz.ts), fixed seeds.
 * Quick run by default; PVSCOPE_FUZZ_LONG=1 runs 20x the cases.
 * Fails on an exception out of the engine, a crash or blocked stop without
 * a reason, a Machine.run(1M) slice past SLICE_BOUND_MS, or RSS past RSS_BOUND_MIB.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzGuest, runFuzz, type FuzzKind } from '../helpers/engine-fuzz';

const LONG = process.env.PVSCOPE_FUZZ_LONG === '1';
/** Generous for a loaded 2-core machine (see docs/architecture.md "The run loop"). */
const SLICE_BOUND_MS = 1500;
const RSS_BOUND_MIB = 768;

describe('engine fuzz (issue 8)', function () {
  this.timeout(LONG ? 3_600_000 : 120_000);
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pvscope-fuzz-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  for (const kind of ['hypercalls', 'mmu', 'rings'] as FuzzKind[]) {
    for (const bits of [64, 32] as const) {
      it(`${kind}, ${bits}-bit: every case ends in Xen's answer, a stop with a reason or a timeout`, () => {
        const r = runFuzz(
          {
            kind,
            bits,
            kernel: fuzzGuest(dir, kind, bits),
            seed: 1,
            cases: LONG ? 400 : 20,
            budget: 1_000_000,
            runsPerCase: 3,
            sliceBoundMs: SLICE_BOUND_MS,
            maxTotalMs: LONG ? 0 : 8_000,
          },
          LONG ? 3_000_000 : 100_000,
        );
        console.log(`      ${JSON.stringify({ ...r, failures: r.failures.slice(0, 3) })}`);
        assert.equal(r.error, undefined, r.error);
        assert.equal(r.failureCount, 0, r.failures.join('\n'));
        assert.ok(r.cases > 0);
        assert.ok(r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
      });
    }
  }
});
