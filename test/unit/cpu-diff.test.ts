/**
 * Differential tests of the CPU against the host processor: every generated
 * case (test/helpers/x86-gen.ts) runs natively (test/helpers/native-harness.ts,
 * 64-bit and `gcc -m32`) and in the engine (test/helpers/engine-runner.ts:
 * long mode, and 32-bit protected mode with PAE paging) on the SAME machine
 * code bytes at the same linear addresses; every GPR, every defined
 * arithmetic flag and DF, and the scratch memory must match. Cases the host
 * faults on (#DE; #PF on the not-present pages around the scratch page) must
 * raise the same exception in the engine at the same RIP (and CR2), with
 * registers, flags and memory as the host had them at the fault.
 *
 * Sizes: ~4000 64-bit and ~2000 32-bit cases by default;
 * `PVSCOPE_DIFF_CASES=<n>` runs n 64-bit and n/2 32-bit cases;
 * `PVSCOPE_DIFF_SEED=<n>` changes the seed (default 1).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { ExitReason } from '../../engine/cpu/api';
import { Cpu } from '../../engine/cpu/cpu';
import { MachineMemory } from '../../engine/memory/machine-memory';
import {
  buildNativeBatch,
  requireNativeToolchain,
  scratchInit,
  CODE_BASE,
  SCRATCH_BASE,
  SCRATCH_SIZE,
  SIG,
  UNMAPPED_PAGES,
  type Bitness,
  type NativeBatch,
  type NativeOutcome,
} from '../helpers/native-harness';
import { COMPARED_FLAGS, OPTIONAL_FEATURES, generateCases, type DiffCase } from '../helpers/x86-gen';
import {
  createMachine,
  getGpr,
  getRip,
  runUntilExit,
  setGpr,
  EXIT_NAMES,
  type TestMachine,
  loadBatch,
} from '../helpers/engine-runner';
import { engineExpectation, hostVendor, engineVendor } from '../helpers/vendor-table';

const REQUESTED = Number(process.env.PVSCOPE_DIFF_CASES) || 4000;
const SEED = Number(process.env.PVSCOPE_DIFF_SEED) || 1;

const FLAG_NAMES: Array<[number, string]> = [
  [0x1, 'CF'],
  [0x4, 'PF'],
  [0x10, 'AF'],
  [0x40, 'ZF'],
  [0x80, 'SF'],
  [0x400, 'DF'],
  [0x800, 'OF'],
];
const REG64 = [
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
const REG32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];

function flagText(f: number): string {
  return FLAG_NAMES.filter(([b]) => f & b)
    .map(([, n]) => n)
    .join(' ');
}

/** Optional instructions available on BOTH the host (/proc/cpuinfo) and the engine (its default CPUID). */
function commonFeatures(): { features: Set<string>; note: string } {
  let host = '';
  try {
    host =
      fs
        .readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('flags')) ?? '';
  } catch {
    /* not Linux: the native side is skipped anyway */
  }
  const hostFlags = new Set(host.split(/\s+/));
  const hostHas: Record<string, boolean> = {
    lzcnt: hostFlags.has('abm') || hostFlags.has('lzcnt'),
    tzcnt: hostFlags.has('bmi1'),
    popcnt: hostFlags.has('popcnt'),
  };
  const engineHas: Record<string, boolean> = { lzcnt: false, tzcnt: false, popcnt: false };
  try {
    const cpu = new Cpu(new MachineMemory(1));
    engineHas.popcnt = !!(cpu.cpuid.leaf(1, 0).ecx & (1 << 23));
    engineHas.lzcnt = !!(cpu.cpuid.leaf(0x80000001, 0).ecx & (1 << 5));
    engineHas.tzcnt = !!(cpu.cpuid.leaf(7, 0).ebx & (1 << 3));
  } catch {
    /* engine not constructible: the tests below report it */
  }
  const features = new Set(OPTIONAL_FEATURES.filter((f) => hostHas[f] && engineHas[f]));
  const left = OPTIONAL_FEATURES.filter((f) => !features.has(f)).map(
    (f) => `${f} (host ${hostHas[f] ? 'yes' : 'no'}, engine CPUID ${engineHas[f] ? 'yes' : 'no'})`,
  );
  return {
    features,
    note: left.length ? `not tested: ${left.join(', ')}` : 'all optional instructions tested',
  };
}

function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Expected engine exception vectors for a host signal. */
function vectorsFor(sig: number): number[] {
  switch (sig) {
    case SIG.SIGFPE:
      return [0];
    case SIG.SIGILL:
      return [6];
    case SIG.SIGSEGV:
      return [12, 13, 14];
    case SIG.SIGBUS:
      return [12, 13, 17];
    case SIG.SIGTRAP:
      return [1, 3];
    default:
      return [];
  }
}

/** Runs one case in the engine and compares with the host; returns null or a description of the mismatch. */
function compareCase(
  m: TestMachine,
  batch: NativeBatch,
  index: number,
  c: DiffCase,
  hostRaw: NativeOutcome,
): string | null {
  // Where the host is not the engine's vendor, the vendor table's rows put in the engine vendor's values.
  const host = engineExpectation(
    hostRaw,
    { bitness: m.bitness, input: c, caseStart: batch.caseStart[index], body: c.body },
    c.vendorRows,
  );
  const { cpu, mem } = m;
  const nregs = m.bitness === 64 ? 16 : 8;
  const names = m.bitness === 64 ? REG64 : REG32;
  const wmask = m.bitness === 64 ? (1n << 64n) - 1n : 0xffffffffn;
  const start = batch.caseStart[index];
  const end = batch.caseEnd[index];
  const bytes = batch.code.slice(start - CODE_BASE, end - CODE_BASE);
  const init = scratchInit(c.memSeed, c.memPatch);
  mem.writeBytes(SCRATCH_BASE, init);
  for (let i = 0; i < 16; i++) setGpr(cpu, i, i < nregs ? c.regs[i] : 0n);
  cpu.state.ripLo = start;
  cpu.state.ripHi = 0;
  cpu.setRflags(c.rflags);
  cpu.state.halted = false;
  const r = runUntilExit(cpu, 100000);

  const header = () => {
    const regs = c.regs.map((v, i) => `${names[i]}=${v.toString(16)}`).join(' ');
    return `${c.id} \`${c.body.trim().replace(/\n\t/g, '; ')}\` [${hexBytes(bytes)}]\n      in: ${regs} flags=${c.rflags.toString(16)} (${flagText(c.rflags)}) memSeed=${c.memSeed}`;
  };
  if (r.thrown) return `${header()}\n      engine threw: ${r.thrown.split('\n').slice(0, 3).join(' | ')}`;

  const ripNow = getRip(cpu);
  const engineExit = () =>
    `${EXIT_NAMES[r.exit] ?? r.exit}${r.exit === ExitReason.EXCEPTION ? ` vector ${r.vector}` : ''} at rip 0x${ripNow.toString(16)}${cpu.exitDetail ? ` (${cpu.exitDetail})` : ''}`;
  const regDiffs = (want: bigint[]): string[] => {
    const out: string[] = [];
    for (let i = 0; i < nregs; i++) {
      if (c.undefRegs & (1 << i)) continue;
      const got = getGpr(cpu, i) & wmask;
      if (got !== (want[i] & wmask))
        out.push(`${names[i]}: want ${want[i].toString(16)} got ${got.toString(16)}`);
    }
    return out;
  };
  const memDiffs = (want: Map<number, number>): string[] => {
    const now = mem.readBytes(SCRATCH_BASE, SCRATCH_SIZE);
    const out: string[] = [];
    for (let i = 0; i < SCRATCH_SIZE; i++) {
      const expect = want.has(i) ? want.get(i)! : init[i];
      if (now[i] !== expect)
        out.push(`mem[+${i.toString(16)}]: want ${expect.toString(16)} got ${now[i].toString(16)}`);
      if (out.length > 8) break;
    }
    return out;
  };

  const mask = COMPARED_FLAGS & ~c.undefFlags;
  const flagDiff = (want: number): string[] => {
    const got = cpu.getRflags();
    if ((got & mask) === (want & mask)) return [];
    const bad = (got ^ want) & mask;
    return [
      `flags: want ${flagText(want & mask) || '-'} got ${flagText(got & mask) || '-'} (differ: ${flagText(bad)}; undefined here: ${flagText(c.undefFlags) || 'none'})`,
    ];
  };

  if (host.kind === 'signal') {
    // The host faulted: the engine must raise the matching exception at the same instruction, with
    // registers, flags and memory as the host had them at the fault (REP string ops stop part-way).
    const vectors = vectorsFor(host.signal);
    const problems: string[] = [];
    if (!c.expectFault) problems.push(`host raised signal ${host.signal} (generator bug)`);
    if (r.exit !== ExitReason.EXCEPTION || !vectors.includes(r.vector) || ripNow !== host.rip) {
      problems.push(
        `want exception ${vectors.join('/')} at rip 0x${host.rip.toString(16)}, engine: ${engineExit()}`,
      );
    } else if (r.vector === 14) {
      const cr2 = (BigInt(cpu.exitCr2Hi >>> 0) << 32n) | BigInt(cpu.exitCr2Lo >>> 0);
      if (cr2 !== host.addr)
        problems.push(`#PF address: want 0x${host.addr.toString(16)} got 0x${cr2.toString(16)}`);
    }
    problems.push(...regDiffs(host.regs), ...flagDiff(host.rflags), ...memDiffs(host.memDiff));
    return problems.length ? `${header()}\n      ${problems.join('\n      ')}` : null;
  }

  const problems: string[] = [];
  if (c.expectFault) problems.push('host did not fault although the case expects #DE');
  if (r.exit !== ExitReason.EXCEPTION || r.vector !== 3 || ripNow !== BigInt(end + 1)) {
    problems.push(`want the case to reach its end (int3 at 0x${end.toString(16)}), engine: ${engineExit()}`);
    return `${header()}\n      ${problems.join('\n      ')}`;
  }
  problems.push(...regDiffs(host.regs), ...flagDiff(host.rflags), ...memDiffs(host.memDiff));
  return problems.length ? `${header()}\n      ${problems.join('\n      ')}` : null;
}

const { features, note } = commonFeatures();

for (const bitness of [64, 32] as const) {
  const count = bitness === 64 ? REQUESTED : Math.ceil(REQUESTED / 2);
  const cases = generateCases(bitness, count, SEED, features);
  const classes = new Map<string, number[]>();
  cases.forEach((c, i) => {
    const l = classes.get(c.cls) ?? [];
    l.push(i);
    classes.set(c.cls, l);
  });
  const modeName = bitness === 64 ? '64-bit long mode' : '32-bit protected mode with PAE paging';

  describe(`CPU vs host CPU, ${modeName}: ${cases.length} generated cases in ${classes.size} classes (seed ${SEED})`, function () {
    this.timeout(300000);
    let batch: NativeBatch | undefined;
    let host: NativeOutcome[] = [];
    let machine: TestMachine | undefined;
    let setupError: Error | undefined;

    before(function () {
      requireNativeToolchain(this, bitness as Bitness);
      if (bitness === 64)
        console.log(`      optional instructions: ${note}; host ${hostVendor()}, engine ${engineVendor()}`);
      batch = buildNativeBatch(
        bitness,
        cases.map((c) => c.body),
      );
      host = batch.run(
        cases.map((c) => ({ regs: c.regs, rflags: c.rflags, memSeed: c.memSeed, memPatch: c.memPatch })),
      );
      try {
        machine = createMachine(bitness, UNMAPPED_PAGES);
        // Each case ends where the native code jumps back to the harness: the engine stops there on INT3.
        loadBatch(machine, batch);
      } catch (e) {
        setupError = e as Error;
      }
    });

    after(function () {
      batch?.dispose();
    });

    for (const [cls, idx] of classes) {
      const widths = [...new Set(idx.map((i) => cases[i].width))].join('/');
      const forms = [
        ...new Set(idx.map((i) => cases[i].form.replace(/^(o|no|b|ae|e|ne|be|a|s|ns|p|np|l|ge|le|g)\./, ''))),
      ];
      it(`${cls}: ${idx.length} cases, widths ${widths}, forms ${forms.slice(0, 8).join(' ')}${forms.length > 8 ? ' ...' : ''}`, function () {
        if (setupError) throw setupError;
        assert.ok(batch && machine, 'setup did not run');
        const failures: string[] = [];
        for (const i of idx) {
          const f = compareCase(machine, batch, i, cases[i], host[i]);
          if (f) failures.push(f);
        }
        assert.equal(
          failures.length,
          0,
          `${failures.length} of ${idx.length} ${cls} cases differ from the host:\n  ${failures.slice(0, 12).join('\n  ')}`,
        );
      });
    }
  });
}
