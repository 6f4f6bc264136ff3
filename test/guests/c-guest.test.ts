import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../../engine/machine';
import type { Stop } from '../../engine/machine-api';
import { buildXenGuest } from '../helpers/xen-guest';

// guests/ctest/ctest.c built with gcc -O2 and SSE on, as a PV kernel (64-bit, and 32-bit PAE with
// -mfpmath=sse) and as a host program: the guest's console lines must equal the host CPU's.
const SRC = join(__dirname, '..', '..', 'guests', 'ctest', 'ctest.c');
const FLAGS = ['-O2', '-msse2', '-fno-math-errno', '-fno-tree-loop-distribute-patterns'];
const FLAGS32 = [...FLAGS, '-mfpmath=sse'];

const START = {
  64: `
_start:
  lea stack_top(%rip), %rsp
  call c_main
  SHUTDOWN 0
`,
  32: `
_start:
  mov $stack_top, %esp
  call c_main
  SHUTDOWN 0
`,
};

/** Builds ctest.c as a host program and returns its output, or undefined when this gcc cannot link that target. */
function hostOutput(bits: 32 | 64): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-ctest-'));
  try {
    const exe = join(dir, 'ctest');
    try {
      execFileSync(
        'gcc',
        [bits === 32 ? '-m32' : '-m64', ...(bits === 32 ? FLAGS32 : FLAGS), SRC, '-o', exe],
        {
          stdio: 'pipe',
        },
      );
    } catch {
      if (bits === 32) return undefined; // no 32-bit libc on this host
      throw new Error('gcc could not build the host ctest');
    }
    return execFileSync(exe, { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function buildGuest(bits: 32 | 64): Uint8Array {
  return buildXenGuest({
    bits,
    asm: START[bits],
    c: `#define CTEST_GUEST 1\n${readFileSync(SRC, 'utf8')}`,
    cflags: bits === 32 ? FLAGS32 : FLAGS,
  });
}

/** Mnemonics in the kernel's disassembly (objdump -d). */
function mnemonics(kernel: Uint8Array): Set<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-ctest-'));
  try {
    const f = join(dir, 'k.elf');
    writeFileSync(f, kernel);
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', f], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    const set = new Set<string>();
    for (const line of dis.split('\n')) {
      const m = /^\s+[0-9a-f]+:\s+([a-z0-9]+)/.exec(line);
      if (m) set.add(m[1]);
    }
    return set;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runGuest(kernel: Uint8Array): { out: string; stop: Stop } {
  let out = '';
  const m = createMachine(
    { name: 'ctest', kernel, memory: 16, vcpus: 1, disks: [], vifs: [], consoleIoWrites: true },
    { onConsoleIo: (d) => (out += Buffer.from(d).toString('latin1')) },
  );
  let stop: Stop = { kind: 'budget' };
  for (let i = 0; i < 200 && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
  m.destroy();
  return { out, stop };
}

function lines(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of s.split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) m.set(l.slice(0, i), l.slice(i + 1));
  }
  return m;
}

// Values that do not depend on the host: the x87 and SSE reset/start-of-day state, constants.
const KNOWN: Record<string, string> = {
  'init.fcw': '0000037f',
  'init.mxcsr': '00001f80',
  'x87.sqrt2': '3fff:b504f333f9de6484', // sqrt(2) rounded to a 64-bit significand
  'x87.ld_to_s64': '00000002dfdc1c1b', // 12345678.875 * 1000
  'x87.neg_to_s64': 'fffffffffffffff9', // (s64)-7.625 truncates to -7
  'x87.u64_to_ld': '403e:fedcba9876543210', // exact: 64-bit significand
  'x87.ld_to_u64': 'fedcba9876542e10',
  'x87.third_as_double': '3fd5555555555555',
  'x87.third_as_float': '3eaaaaab',
  'sse.nan': 'fff8000000000000', // the default NaN (0/0)
  'sse.div': '402e000000000000', // 1.5 / 0.1 rounds to 15 exactly
  'str.strlen_words': '0004f41b', // lengths 0, 1, 15, 16, 27 in base 64
  'str.strlen_ok': '00000640', // 1600 = 16 alignments x 100 lengths
};

/** Lines whose value differs between the -m32 and -m64 builds of the same source. */
const BUILD_DEPENDENT = new Set(['fxsave.ftw_abridged']);

describe('guests: a gcc -O2 SSE/x87 C kernel (guests/ctest)', function () {
  this.timeout(120_000);
  let host64: Map<string, string>;
  before(() => {
    host64 = lines(hostOutput(64)!);
    for (const [k, v] of Object.entries(KNOWN)) assert.equal(host64.get(k), v, `host ${k}`);
  });

  for (const bits of [64, 32] as const) {
    it(`${bits}-bit${bits === 32 ? ' PAE (-mfpmath=sse)' : ''}: every result equals the host CPU's and it powers off`, () => {
      const kernel = buildGuest(bits);
      // The build really uses the units under test.
      const ops = mnemonics(kernel);
      for (const op of [
        'fninit',
        'ldmxcsr',
        'fsqrt',
        'fdivr',
        'mulps',
        'mulpd',
        'addpd',
        'pcmpeqb',
        'pmovmskb',
        'movdqu',
        'cvttsd2si',
        'sqrtsd',
        'ucomisd',
        'frndint',
        'fistp',
        'fnclex',
        'cvtsd2si',
      ])
        assert.ok(
          [...ops].some((o) => o.startsWith(op)),
          `${op} in the ${bits}-bit kernel`,
        );
      const { out, stop } = runGuest(kernel);
      assert.equal(
        stop.kind === 'shutdown' && stop.reason,
        'poweroff',
        `stop ${JSON.stringify(stop)}; console:\n${out}`,
      );
      assert.ok(out.endsWith('done\n'), `console ends with done:\n${out}`);
      const got = lines(out);
      const ref = bits === 32 ? lines(hostOutput(32) ?? '') : host64;
      // Without a 32-bit host libc, the 64-bit host's lines (the same C arithmetic) are the reference,
      // less those that depend on the compiler's x87 register use (registers live around an asm).
      const want = ref.size > 0 ? ref : new Map([...host64].filter(([k]) => !BUILD_DEPENDENT.has(k)));
      assert.ok(want.size >= 50, `${want.size} reference lines`);
      const wrong: string[] = [];
      for (const [k, v] of want) if (got.get(k) !== v) wrong.push(`${k}: guest ${got.get(k)} host ${v}`);
      assert.deepEqual(wrong, [], 'guest lines that differ from the host');
      assert.equal(got.size, want.size + (ref.size > 0 ? 0 : BUILD_DEPENDENT.size));
    });
  }
});
