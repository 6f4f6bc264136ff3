/**
 * Differential tests of the x87 unit against the host CPU: every case from
 * test/helpers/gen-x87.ts (one x87 instruction between a known starting
 * state and an FNSAVE of the whole FPU state) runs natively
 * (test/helpers/native-harness.ts) and in the engine
 * (test/helpers/engine-runner.ts) on the same bytes at the same addresses.
 * Compared: the FNSAVE image (FCW, FSW with TOP/condition codes/exception
 * flags/ES/B, the tag word, all eight registers as 80-bit values), the
 * memory destinations, RFLAGS ZF/PF/CF (FCOMI), and for cases ending in
 * FWAIT with a pending unmasked exception, #MF (SIGFPE natively) at the
 * FWAIT. Every precision and rounding mode, masked and unmasked exceptions.
 *
 * Sizes: 3000 64-bit and 1000 32-bit cases; `PVSCOPE_X87_CASES=<n>` and
 * `PVSCOPE_X87_SEED=<n>` change them.
 *
 * Vendor notes: the pointer fields (FIP/FCS/FOP/FDP/FDS) are not compared
 * here (see gen-x87.ts); nothing else is loosened for either vendor.
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import {
  buildNativeBatch,
  nativeToolchainProblem,
  scratchInit,
  CODE_BASE,
  SCRATCH_BASE,
  SCRATCH_SIZE,
  SIG,
  type NativeBatch,
  type NativeOutcome,
} from '../helpers/native-harness';
import {
  createMachine,
  getRip,
  runUntilExit,
  setGpr,
  EXIT_NAMES,
  type TestMachine,
} from '../helpers/engine-runner';
import { OFF_SAVE, f80Text, generateX87Cases, type X87Case } from '../helpers/gen-x87';

const COUNT = Number(process.env.PVSCOPE_X87_CASES) || 3000;
const SEED = Number(process.env.PVSCOPE_X87_SEED) || 1;
const IN_CI = !!process.env.CI;

function regsFor(bitness: 32 | 64): bigint[] {
  const r = new Array<bigint>(bitness === 64 ? 16 : 8).fill(0n);
  r[3] = BigInt(SCRATCH_BASE);
  r[4] = BigInt(SCRATCH_BASE + 0xff0);
  return r;
}

/** Describes the FNSAVE image differences (field by field). */
function saveDiff(want: Uint8Array, got: Uint8Array): string[] {
  const out: string[] = [];
  const w16 = (b: Uint8Array, o: number) => b[OFF_SAVE + o] | (b[OFF_SAVE + o + 1] << 8);
  const names = ['fcw', 'fsw', 'ftw'];
  for (let k = 0; k < 3; k++) {
    const a = w16(want, k * 4),
      b = w16(got, k * 4);
    if (a !== b) out.push(`${names[k]}: want ${a.toString(16)} got ${b.toString(16)}`);
    for (const o of [2, 3])
      if (want[OFF_SAVE + k * 4 + o] !== got[OFF_SAVE + k * 4 + o])
        out.push(`${names[k]} reserved bytes differ`);
  }
  for (let i = 0; i < 8; i++) {
    const o = OFF_SAVE + 28 + i * 10;
    let same = true;
    for (let j = 0; j < 10; j++) if (want[o + j] !== got[o + j]) same = false;
    if (!same) out.push(`st(${i}): want ${f80Text(want, o)} got ${f80Text(got, o)}`);
  }
  return out;
}

function compareCase(
  m: TestMachine,
  batch: NativeBatch,
  i: number,
  c: X87Case,
  host: NativeOutcome,
): string | null {
  const { cpu, mem } = m;
  const start = batch.caseStart[i];
  const end = batch.caseEnd[i];
  const init = scratchInit(0, c.memPatch);
  mem.writeBytes(SCRATCH_BASE, init);
  const regs = regsFor(m.bitness);
  for (let k = 0; k < 16; k++) setGpr(cpu, k, k < regs.length ? regs[k] : 0n);
  cpu.state.ripLo = start;
  cpu.state.ripHi = 0;
  cpu.setRflags(0x2);
  const r = runUntilExit(cpu, 1000);
  const head = `${c.id}\n      ${c.note}`;
  if (r.thrown) return `${head}\n      engine threw: ${r.thrown.split('\n').slice(0, 4).join(' | ')}`;
  const rip = getRip(cpu);
  const exitText = `${EXIT_NAMES[r.exit] ?? r.exit}${r.exit === ExitReason.EXCEPTION ? ` vector ${r.vector}` : ''} at 0x${rip.toString(16)} ${cpu.exitDetail ?? ''}`;
  const want = new Uint8Array(SCRATCH_SIZE);
  want.set(init);
  for (const [o, b] of host.memDiff) want[o] = b;
  const got = mem.readBytes(SCRATCH_BASE, SCRATCH_SIZE);
  const problems: string[] = [];
  if (host.kind === 'signal') {
    if (host.signal !== SIG.SIGFPE || !c.waits)
      problems.push(`host signal ${host.signal} at 0x${host.rip.toString(16)}`);
    if (r.exit !== ExitReason.EXCEPTION || r.vector !== 16 || rip !== host.rip)
      problems.push(`want #MF at 0x${host.rip.toString(16)}, engine: ${exitText}`);
  } else {
    if (r.exit !== ExitReason.EXCEPTION || r.vector !== 3 || rip !== BigInt(end + 1)) {
      return `${head}\n      want the end of the case, engine: ${exitText}`;
    }
    problems.push(...saveDiff(want, got));
    const f = cpu.getRflags() & 0x45;
    if (f !== (host.rflags & 0x45))
      problems.push(`ZF/PF/CF: want ${(host.rflags & 0x45).toString(16)} got ${f.toString(16)}`);
  }
  for (let o = 0; o < SCRATCH_SIZE && problems.length < 14; o++) {
    if (o >= OFF_SAVE && o < OFF_SAVE + 108) continue;
    if (want[o] !== got[o])
      problems.push(`mem[+${o.toString(16)}]: want ${want[o].toString(16)} got ${got[o].toString(16)}`);
  }
  return problems.length ? `${head}\n      ${problems.join('\n      ')}` : null;
}

for (const bitness of [64, 32] as const) {
  const count = bitness === 64 ? COUNT : Math.ceil(COUNT / 3);
  const cases = generateX87Cases(count, SEED + bitness, bitness);
  const classes = new Map<string, number[]>();
  cases.forEach((c, i) => classes.set(c.cls, [...(classes.get(c.cls) ?? []), i]));

  describe(`x87 vs host CPU, ${bitness}-bit: ${cases.length} cases (seed ${SEED})`, function () {
    this.timeout(300000);
    let batch: NativeBatch | undefined;
    let host: NativeOutcome[] = [];
    let machine: TestMachine | undefined;

    before(function () {
      const problem = nativeToolchainProblem(bitness);
      if (problem) {
        if (IN_CI) throw new Error(`CI=true but the native toolchain is unusable: ${problem}`);
        console.log(`      skipped: ${problem}`);
        this.skip();
      }
      batch = buildNativeBatch(
        bitness,
        cases.map((c) => c.body),
      );
      host = batch.run(
        cases.map((c) => ({ regs: regsFor(bitness), rflags: 0x2, memSeed: 0, memPatch: c.memPatch })),
      );
      machine = createMachine(bitness, []);
      const code = batch.code.slice();
      for (const e of batch.caseEnd) code[e - CODE_BASE] = 0xcc;
      machine.mem.writeBytes(CODE_BASE, code);
      machine.cpu.flushCodeCache();
    });

    after(function () {
      batch?.dispose();
    });

    for (const [cls, idx] of classes) {
      it(`${cls}: ${idx.length} cases`, function () {
        assert.ok(batch && machine, 'setup did not run');
        const failures: string[] = [];
        for (const i of idx) {
          const f = compareCase(machine, batch, i, cases[i], host[i]);
          if (f) failures.push(f);
        }
        assert.equal(
          failures.length,
          0,
          `${failures.length} of ${idx.length} ${cls} cases differ from the host:\n  ${failures.slice(0, 10).join('\n  ')}`,
        );
      });
    }
  });
}
