import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CallFrameInfo, RegisterRule, UnwindRow, parseElf } from '../../engine/image';
import { buildTestElf, makeTempDir, readBytes } from '../helpers/image-build';

const REGS64 = [
  'rax',
  'rdx',
  'rcx',
  'rbx',
  'rsi',
  'rdi',
  'rbp',
  'rsp',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
  'ra',
];
const REGS32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'ra'];

/** readelf --debug-dump=frames-interp, as { fdeStart -> rows of "LOC CFA col=rule ..." }. */
function readelfRows(path: string, section: string): Map<bigint, string[]> {
  const out = execFileSync('readelf', [`--debug-dump=frames-interp`, path], { encoding: 'utf8' });
  const res = new Map<bigint, string[]>();
  let inSection = false;
  let cols: string[] = [];
  let cur: string[] | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('Contents of the ')) {
      inSection = line.includes(`${section} section`);
      cur = undefined;
      continue;
    }
    if (!inSection) continue;
    const fde = / FDE cie=\S+ pc=([0-9a-f]+)\.\./.exec(line);
    if (fde) {
      cur = [];
      res.set(BigInt('0x' + fde[1]), cur);
      continue;
    }
    if (/ CIE /.test(line)) {
      cur = undefined;
      continue;
    }
    const f = line.trim().split(/\s+/);
    if (f[0] === 'LOC') {
      cols = f.slice(2);
      continue;
    }
    if (cur && /^[0-9a-f]{8,16}$/.test(f[0]))
      cur.push([BigInt('0x' + f[0]).toString(16), f[1], ...cols.map((c, i) => `${c}=${f[2 + i]}`)].join(' '));
  }
  return res;
}

function fmtRule(r: RegisterRule | undefined): string {
  if (!r || r.kind === 'undefined') return 'u';
  switch (r.kind) {
    case 'same':
      return 's';
    case 'offset':
      return `c${r.offset >= 0 ? '+' : ''}${r.offset}`;
    case 'valOffset':
      return `v${r.offset >= 0 ? '+' : ''}${r.offset}`;
    case 'register':
      return `r${r.reg}`;
    case 'expression':
      return 'exp';
    case 'valExpression':
      return 'vexp';
  }
}

function fmtRow(row: UnwindRow, names: string[], cols: string[]): string {
  const cfa =
    row.cfa.kind === 'regOffset'
      ? `${names[row.cfa.reg]}${row.cfa.offset >= 0 ? '+' : ''}${row.cfa.offset}`
      : 'exp';
  return [
    row.loc.toString(16),
    cfa,
    ...cols.map((c) => `${c}=${fmtRule(row.registers.get(names.indexOf(c)))}`),
  ].join(' ');
}

describe('engine/image DWARF call frame information', function () {
  this.timeout(60_000);

  for (const bits of [64, 32] as const)
    for (const opt of ['-O0', '-O2'])
      for (const section of ['.eh_frame', '.debug_frame'])
        it(`${section}, ELF${bits} ${opt}: every row matches readelf --debug-dump=frames-interp`, () => {
          const dir = makeTempDir();
          const flags =
            section === '.eh_frame'
              ? [opt, '-fasynchronous-unwind-tables', '-fno-omit-frame-pointer']
              : [opt, '-fno-omit-frame-pointer'];
          const path = buildTestElf(dir, {
            bits,
            name: 'k',
            dwarf: 4,
            flags,
            keepEhFrame: section === '.eh_frame',
          });
          const cfi = CallFrameInfo.fromElf(parseElf(readBytes(path)));
          const ref = readelfRows(path, section);
          assert.ok(ref.size >= 2, `readelf shows FDEs in ${section}`);
          const names = bits === 64 ? REGS64 : REGS32;
          let compared = 0;
          for (const [start, rows] of ref) {
            const fde = cfi.fdes.find((f) => f.start === start && f.section === section);
            assert.ok(fde, `FDE at ${start.toString(16)}`);
            if (rows.length === 0) continue;
            const cols = rows[0]
              .split(' ')
              .slice(2)
              .map((c) => c.split('=')[0]);
            const mine = cfi.rows(fde!).map((r) => fmtRow(r, names, cols));
            assert.deepEqual(mine, rows, `FDE at ${start.toString(16)}`);
            compared += rows.length;
          }
          assert.ok(compared >= 3, `compared ${compared} rows`);
        });

  it('unwinds one frame from a synthetic stack', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, {
      bits: 64,
      name: 'k',
      dwarf: 4,
      flags: ['-O0', '-fasynchronous-unwind-tables', '-fno-omit-frame-pointer'],
      keepEhFrame: true,
    });
    const elf = parseElf(readBytes(path));
    const cfi = CallFrameInfo.fromElf(elf);
    const compute = elf.symbols.find((s) => s.name === 'compute')!;
    const fde = cfi.findFde(compute.value)!;
    const rows = cfi.rows(fde);
    // After `push %rbp; mov %rsp,%rbp` the CFA is rbp+16, the caller's rbp at CFA-16, the return address at CFA-8.
    const body = rows.find((r) => r.cfa.kind === 'regOffset' && r.cfa.reg === 6)!;
    assert.ok(body, 'frame-pointer row exists');
    const rbp = 0x7fff0000n;
    const mem = new Map<bigint, bigint>([
      [rbp, 0x7fff0100n], // saved rbp
      [rbp + 8n, 0x401234n], // return address
    ]);
    const step = cfi.unwindStep(
      body.loc,
      (r) => (r === 6 ? rbp : r === 7 ? rbp - 0x20n : undefined),
      (a) => mem.get(a),
    )!;
    assert.equal(step.cfa, rbp + 16n);
    assert.equal(step.returnAddress, 0x401234n);
    assert.equal(step.registers.get(6), 0x7fff0100n);
    assert.equal(step.registers.get(7), rbp + 16n);
    // No FDE, no step.
    assert.equal(
      cfi.unwindStep(
        0x10n,
        () => 0n,
        () => 0n,
      ),
      undefined,
    );
  });

  it('an empty or absent frame section gives no FDEs; corrupt ones give ImageError', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, {
      bits: 64,
      name: 'k',
      flags: ['-fasynchronous-unwind-tables'],
      keepEhFrame: true,
    });
    const bytes = readBytes(path);
    const elf = parseElf(bytes);
    const sec = elf.sections.find((s) => s.name === '.eh_frame')!;
    assert.ok(CallFrameInfo.fromElf(elf).fdes.length > 0);
    const b = bytes.slice();
    new DataView(b.buffer).setUint32(sec.offset, 0x7ffffff0, true);
    assert.throws(() => CallFrameInfo.fromElf(parseElf(b)), /extends beyond the section/);
    let seed = 3;
    for (let k = 0; k < 200; k++) {
      const c = bytes.slice();
      seed = (seed * 1103515245 + 12345) >>> 0;
      c[sec.offset + (seed % sec.size)] = (seed >>> 11) & 0xff;
      try {
        const cfi = CallFrameInfo.fromElf(parseElf(c));
        for (const f of cfi.fdes)
          cfi.unwindStep(
            f.start,
            () => 0x1000n,
            () => 0n,
          );
      } catch (e) {
        assert.equal((e as Error).name, 'ImageError', String(e));
      }
    }
  });
});
