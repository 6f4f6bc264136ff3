import { strict as assert } from 'node:assert';
import { CODE_BASE } from '../../engine/cpu/testbed';
import { assemble, CPU_WORKLOADS, runWorkload } from '../../scripts/bench-cpu';

// The bench's CPU workloads (scripts/bench-cpu.ts) on the engine with small iteration counts: each run
// ends at its int3 with the host model's final state (runWorkload throws otherwise), and the
// instructions retired grow by exactly perIteration per iteration.
describe('bench: CPU workloads compute their host model results', function () {
  this.timeout(60_000);
  for (const w of CPU_WORKLOADS) {
    it(`${w.figure} (${w.mode})`, () => {
      const bin = assemble(w.source(), w.mode === 'long64' ? 64 : 32, CODE_BASE);
      const one = runWorkload(w, bin, 1);
      const n = 3001;
      const many = runWorkload(w, bin, n);
      if (w.perIteration !== undefined) assert.equal(many.retired - one.retired, w.perIteration * (n - 1));
      else assert.ok(many.retired > one.retired + 10 * (n - 1), `${many.retired} instructions retired`);
    });
  }

  it('a wrong final state is reported, not measured', () => {
    const w = CPU_WORKLOADS.find((x) => x.figure === 'cpu.mipsSse')!;
    const bin = assemble(w.source(), 64, CODE_BASE);
    const { tm } = runWorkload(w, bin, 100);
    tm.cpu.state.xmm[4] ^= 1;
    assert.throws(() => w.check(tm, 100), /xmm1\[0\]/);
    const x = CPU_WORKLOADS.find((y) => y.figure === 'cpu.mipsX87')!;
    const r = runWorkload(x, assemble(x.source(), 64, CODE_BASE), 100);
    assert.throws(() => x.check(r.tm, 101), /cpu.mipsX87/);
  });
});
