import assert from 'node:assert/strict';
import { gzipSync } from 'fflate';
import { SymbolFileSet, ImageError, loadSymbolFile, parseElf } from '../../engine/image';
import { TEST_C_SOURCE, buildTestElf, lineOf, makeTempDir, readBytes } from '../helpers/image-build';

describe('engine/image symbol files for the debugger', function () {
  this.timeout(60_000);

  it('an ELF symbol file with an offset gives symbols, lines and CFI at shifted addresses', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, {
      bits: 64,
      name: 'k',
      dwarf: 5,
      flags: ['-O0', '-fasynchronous-unwind-tables'],
      keepEhFrame: true,
    });
    const bytes = readBytes(path);
    const compute = parseElf(bytes).symbols.find((s) => s.name === 'compute')!.value;
    const off = 0x100000n;
    const f = loadSymbolFile(bytes, { name: 'k', offset: off });
    assert.equal(f.kind, 'elf');
    assert.deepEqual(f.warnings, []);
    const info = new SymbolFileSet().add(f);
    assert.equal(info.resolve('compute'), compute + off);
    assert.equal(info.lookup(compute + off + 1n)!.name, 'compute');
    const line = lineOf(TEST_C_SOURCE, 'compute-first');
    const addrs = info.lineToAddresses('k.c', line);
    assert.equal(addrs.length, 1);
    assert.ok(addrs[0] > compute + off && addrs[0] < compute + off + 0x40n);
    assert.equal(info.addressToLine(addrs[0])!.line, line);
    assert.ok(f.frames!.findFde(compute + off), 'FDE found at the shifted address');
    // The same file gzip-compressed is accepted too.
    assert.equal(loadSymbolFile(gzipSync(bytes)).symbols.resolve('compute'), compute);
  });

  it('a System.map text file, and earlier files win', () => {
    const map = new TextEncoder().encode('ffffffff81000000 T _stext\nffffffff81000010 T compute\n');
    const info = new SymbolFileSet().add(loadSymbolFile(map, { name: 'System.map' }));
    assert.equal(info.resolve('compute'), 0xffffffff81000010n);
    assert.equal(info.lookup(0xffffffff81000004n)!.name, '_stext');
    assert.equal(info.addressToLine(0xffffffff81000004n), undefined);
    info.add(loadSymbolFile(new TextEncoder().encode('ffffffffa0000000 T compute\n'), { name: 'other' }));
    assert.equal(info.resolve('compute'), 0xffffffff81000010n, 'the first file that defines the name wins');
    assert.equal(info.lookup(0xffffffffa0000001n)!.name, 'compute');
  });

  it('corrupt DWARF still yields the symbols, with a warning', () => {
    const dir = makeTempDir();
    const bytes = readBytes(buildTestElf(dir, { bits: 64, name: 'k', dwarf: 4 }));
    const elf = parseElf(bytes);
    const sec = elf.sections.find((s) => s.name === '.debug_line')!;
    const b = bytes.slice();
    new DataView(b.buffer).setUint16(sec.offset + 4, 42, true);
    const f = loadSymbolFile(b);
    assert.ok(f.symbols.resolve('compute') !== undefined);
    assert.ok(f.warnings.some((w) => /line table not usable: .*version 42/.test(w)));
  });

  it('binary junk is refused', () => {
    assert.throws(() => loadSymbolFile(new Uint8Array([1, 0, 2, 0, 3])), ImageError);
  });
});
