import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ImageError, SymbolTable, parseElf } from '../../engine/image';
import { buildTestElf, makeTempDir, readBytes } from '../helpers/image-build';

describe('engine/image symbol tables', function () {
  this.timeout(60_000);

  it('ELF symbols: lookup is size-aware and resolve gives addresses as nm does', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, { bits: 64, name: 's64', notes: [[6, 'linux']] });
    const elf = parseElf(readBytes(path));
    const t = SymbolTable.fromElf(elf);
    const nm = new Map<string, bigint>();
    for (const line of execFileSync('nm', [path], { encoding: 'utf8' }).trim().split('\n')) {
      const [a, , name] = line.split(' ');
      nm.set(name, BigInt('0x' + a));
    }
    for (const name of ['compute', '_start', 'counter', 'banner'])
      assert.equal(t.resolve(name), nm.get(name), name);
    const compute = t.get('compute')!;
    assert.equal(compute.kind, 'function');
    assert.equal(t.get('counter')!.kind, 'object');
    assert.deepEqual(t.lookup(compute.address), { name: 'compute', offset: 0n, symbol: compute });
    assert.equal(t.lookup(compute.address + compute.size - 1n)!.name, 'compute');
    assert.equal(t.describe(compute.address + 3n), 'compute+0x3');
    // Below every symbol: nothing.
    assert.equal(t.lookup(0n), undefined);
    assert.equal(t.resolve('no_such_symbol'), undefined);
    // With a load offset.
    const t2 = SymbolTable.fromElf(elf, { offset: 0x1000n });
    assert.equal(t2.resolve('compute'), compute.address + 0x1000n);
    assert.equal(t2.lookup(compute.address + 0x1000n + 2n)!.name, 'compute');
  });

  it('a sized symbol does not cover addresses past its end; an enclosing sized symbol does', () => {
    const t = new SymbolTable().add([
      { name: 'outer', address: 0x1000n, size: 0x100n, kind: 'function', global: true },
      { name: 'inner', address: 0x1010n, size: 0x10n, kind: 'function', global: false },
      { name: 'gapped', address: 0x2000n, size: 0x10n, kind: 'function', global: true },
      { name: 'label', address: 0x3000n, size: 0n, kind: 'other', global: false },
    ]);
    assert.equal(t.lookup(0x1015n)!.name, 'inner');
    assert.equal(t.lookup(0x1030n)!.name, 'outer');
    assert.equal(t.lookup(0x1030n)!.offset, 0x30n);
    assert.equal(t.lookup(0x2010n), undefined);
    assert.equal(t.lookup(0x3fffn)!.name, 'label');
  });

  it('kallsyms and System.map text, with modules, offsets and skipped kinds', () => {
    const text = [
      'ffffffff81000000 T _stext',
      'ffffffff81000000 T startup_64',
      'ffffffff81000100 t secondary_startup_64',
      'ffffffff82000000 D init_task',
      'ffffffff83000000 b some_bss',
      '0000000000000000 A VDSO32_PRELINK',
      '                 U undefined_thing',
      'ffffffffc0000000 t xenbus_probe\t[xen_blkfront]',
      '0000000000000000 w weak_undefined',
      '',
    ].join('\n');
    const t = SymbolTable.fromKallsyms(text);
    assert.equal(t.resolve('startup_64'), 0xffffffff81000000n);
    assert.equal(t.resolve('VDSO32_PRELINK'), undefined, 'absolute symbols are skipped');
    assert.equal(t.resolve('weak_undefined'), undefined);
    assert.equal(t.describe(0xffffffff81000104n), 'secondary_startup_64+0x4');
    assert.equal(t.lookup(0xffffffff81000010n)!.symbol.global, true);
    assert.equal(t.get('init_task')!.kind, 'object');
    assert.equal(t.get('xenbus_probe')!.module, 'xen_blkfront');
    assert.equal(t.skippedLines, 1, 'the line without an address is skipped');
    const shifted = SymbolTable.fromKallsyms(text, { offset: 0x200000n });
    assert.equal(shifted.resolve('_stext'), 0xffffffff81200000n);
    // Wraps modulo 2^64.
    assert.equal(
      SymbolTable.fromKallsyms('ffffffffffffff00 T top', { offset: 0x200n }).resolve('top'),
      0x100n,
    );
  });

  it('a file with no symbol line at all is rejected with the line', () => {
    assert.throws(
      () => SymbolTable.fromKallsyms('this is not\na symbol file\n'),
      (e: unknown) => e instanceof ImageError && /line 1/.test(e.message),
    );
  });

  it('lookups on a large table are fast (binary search)', () => {
    const n = 200_000;
    const entries = [];
    for (let i = 0; i < n; i++)
      entries.push({
        name: `f${i}`,
        address: 0xffffffff81000000n + BigInt(i * 64),
        size: 48n,
        kind: 'function' as const,
        global: true,
      });
    const t = new SymbolTable().add(entries.reverse());
    assert.equal(t.lookup(0xffffffff81000000n + 64n * 12345n + 10n)!.name, 'f12345');
    assert.equal(t.lookup(0xffffffff81000000n + 64n * 12345n + 50n), undefined);
    let hits = 0;
    for (let i = 0; i < 100_000; i++)
      if (t.lookup(0xffffffff81000000n + BigInt((i * 7919) % n) * 64n + 1n)) hits++;
    assert.equal(hits, 100_000);
  });
});
