import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { ImageError, LineTable, findSection, parseElf, sectionByName } from '../../engine/image';
import {
  TEST_C_SOURCE,
  TEST_H_SOURCE,
  addr2line,
  buildTestElf,
  lineOf,
  makeTempDir,
  readBytes,
} from '../helpers/image-build';

/** Every address of .text. */
function textAddresses(path: string): bigint[] {
  const elf = parseElf(readBytes(path));
  const text = findSection(elf, '.text')!;
  const out: bigint[] = [];
  for (let a = text.addr; a < text.addr + BigInt(text.size); a++) out.push(a);
  return out;
}

function fmt(l: { file: string; line: number } | undefined): string {
  return l ? `${l.file}:${l.line}` : '??:0';
}

describe('engine/image DWARF line tables', function () {
  this.timeout(120_000);

  for (const bits of [64, 32] as const)
    for (const opt of ['-O0', '-O2'])
      it(`DWARF 4, ELF${bits} ${opt}: every .text address maps to the file:line addr2line gives`, () => {
        const dir = makeTempDir();
        const path = buildTestElf(dir, { bits, name: 'k', dwarf: 4, flags: [opt] });
        const lt = LineTable.fromElf(parseElf(readBytes(path)));
        const addrs = textAddresses(path);
        const ref = addr2line(path, addrs).map((s) => s.replace(/ \(discriminator \d+\)$/, ''));
        const mine = addrs.map((a) => fmt(lt.addressToLine(a)));
        assert.deepEqual(mine, ref);
        assert.deepEqual(lt.files(), [join(dir, 'inc', 'util.h'), join(dir, 'k.c')]);
      });

  for (const bits of [64, 32] as const)
    for (const opt of ['-O0', '-O2'])
      it(`DWARF 5 (line_strp, v5 entry formats), ELF${bits} ${opt}: same table as DWARF 4 of the same code`, () => {
        // Same source and options in two directories: only the debug info format differs, so addresses match.
        const base = makeTempDir();
        const d4 = join(base, 'v4');
        const d5 = join(base, 'v5');
        mkdirSync(d4);
        mkdirSync(d5);
        const p4 = buildTestElf(d4, { bits, name: 'k', dwarf: 4, flags: [opt] });
        const p5 = buildTestElf(d5, { bits, name: 'k', dwarf: 5, flags: [opt] });
        const elf5 = parseElf(readBytes(p5));
        assert.ok(sectionByName(elf5, '.debug_line_str'), 'DWARF 5 uses .debug_line_str');
        const lt4 = LineTable.fromElf(parseElf(readBytes(p4)));
        const lt5 = LineTable.fromElf(elf5);
        const addrs = textAddresses(p5);
        assert.deepEqual(textAddresses(p4), addrs);
        const rel = (l: { file: string; line: number } | undefined, d: string) =>
          l ? `${l.file.replace(d, '')}:${l.line}` : '??';
        assert.deepEqual(
          addrs.map((a) => rel(lt5.addressToLine(a), d5)),
          addrs.map((a) => rel(lt4.addressToLine(a), d4)),
        );
        assert.deepEqual(lt5.files(), [join(d5, 'inc', 'util.h'), join(d5, 'k.c')]);
      });

  it('compressed debug sections (-gz) give the same table', () => {
    const dir = makeTempDir();
    const plain = buildTestElf(dir, { bits: 64, name: 'p', dwarf: 5 });
    const gz = buildTestElf(dir, { bits: 64, name: 'z', dwarf: 5, flags: ['-gz=zlib'] });
    const a = LineTable.fromElf(parseElf(readBytes(plain)));
    const b = LineTable.fromElf(parseElf(readBytes(gz)));
    const strip = (t: LineTable, name: string) =>
      t.sequences.map((s) =>
        s.rows.map((r) => `${r.address}:${s.files[r.file].replace(name, 'X')}:${r.line}`).join(','),
      );
    assert.deepEqual(strip(b, 'z.c'), strip(a, 'p.c'));
    assert.ok(b.sequences.length > 0);
  });

  for (const dwarf of [4, 5] as const)
    it(`DWARF ${dwarf}: lineToAddresses by absolute path, relative suffix and basename; resolveBreakpoint moves to the next line with code`, () => {
      const dir = makeTempDir();
      const path = buildTestElf(dir, { bits: 64, name: 'k', dwarf, flags: ['-O0'] });
      const lt = LineTable.fromElf(parseElf(readBytes(path)));
      const line = lineOf(TEST_C_SOURCE, 'compute-first');
      const abs = lt.lineToAddresses(join(dir, 'k.c'), line);
      assert.equal(abs.length, 1);
      assert.deepEqual(lt.lineToAddresses('k.c', line), abs);
      assert.deepEqual(lt.lineToAddresses(`${dir.split('/').pop()}/k.c`, line), abs);
      assert.deepEqual(
        lt.lineToAddresses('/elsewhere/k.c', line),
        [],
        'a different absolute path does not match',
      );
      assert.deepEqual(lt.lineToAddresses('xk.c', line), [], 'suffix match is on a path boundary');
      // addr2line agrees on the address found.
      assert.equal(addr2line(path, abs)[0], `${join(dir, 'k.c')}:${line}`);
      // The header's line has code (twice() is emitted out of line at -O0).
      const hLine = lineOf(TEST_H_SOURCE, 'twice');
      const inHeader = lt.lineToAddresses('inc/util.h', hLine);
      assert.equal(inHeader.length, 1);
      assert.equal(lt.addressToLine(inHeader[0])!.file, join(dir, 'inc', 'util.h'));
      // Line 1 (a comment) has no code: the breakpoint lands on the first line that has.
      assert.deepEqual(lt.lineToAddresses('k.c', 1), []);
      const bp = lt.resolveBreakpoint('k.c', lineOf(TEST_C_SOURCE, 'compute-first') - 2)!;
      assert.equal(
        bp.line,
        lineOf(TEST_C_SOURCE, 'compute-first') - 1,
        'the opening line of compute() has code',
      );
      assert.equal(lt.resolveBreakpoint('k.c', 10_000), undefined);
    });

  it('a line of an inlined function yields the addresses of its rows at -O2', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, { bits: 64, name: 'k', dwarf: 5, flags: ['-O2'] });
    const lt = LineTable.fromElf(parseElf(readBytes(path)));
    const line = lineOf(TEST_H_SOURCE, 'twice');
    const addrs = lt.lineToAddresses('util.h', line);
    assert.ok(addrs.length >= 1);
    for (const a of addrs) {
      const rows = lt.sequences.flatMap((s) =>
        s.rows.filter((r) => r.address === a).map((r) => `${s.files[r.file]}:${r.line}`),
      );
      assert.ok(rows.includes(`${join(dir, 'inc', 'util.h')}:${line}`), rows.join(' '));
    }
  });

  it('an address outside every sequence has no line', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, { bits: 64, name: 'k', dwarf: 4 });
    const lt = LineTable.fromElf(parseElf(readBytes(path)));
    assert.equal(lt.addressToLine(0n), undefined);
    assert.equal(lt.addressToLine(lt.sequences[lt.sequences.length - 1].end), undefined);
  });

  it('load offset shifts every address', () => {
    const dir = makeTempDir();
    const elf = parseElf(readBytes(buildTestElf(dir, { bits: 64, name: 'k', dwarf: 4 })));
    const a = LineTable.fromElf(elf);
    const b = LineTable.fromElf(elf, 0x10000n);
    const first = a.sequences[0].rows[0];
    assert.deepEqual(b.addressToLine(first.address + 0x10000n), a.addressToLine(first.address));
  });

  it('malformed .debug_line gives ImageError naming the unit, never another error', () => {
    const dir = makeTempDir();
    const path = buildTestElf(dir, { bits: 64, name: 'k', dwarf: 5 });
    const bytes = readBytes(path);
    const elf = parseElf(bytes);
    const sec = findSection(elf, '.debug_line')!;
    // Unit length beyond the section.
    const b = bytes.slice();
    new DataView(b.buffer).setUint32(sec.offset, 0x7fffff00, true);
    assert.throws(
      () => LineTable.fromElf(parseElf(b)),
      (e: unknown) => e instanceof ImageError && /unit at 0x0 extends beyond/.test(e.message),
    );
    // Unsupported version.
    const v = bytes.slice();
    new DataView(v.buffer).setUint16(sec.offset + 4, 9, true);
    assert.throws(() => LineTable.fromElf(parseElf(v)), /unsupported version 9/);
    // Random corruption of the line program and header.
    let seed = 5;
    for (let k = 0; k < 300; k++) {
      const c = bytes.slice();
      for (let j = 0; j < 3; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        c[sec.offset + (seed % sec.size)] = (seed >>> 13) & 0xff;
      }
      try {
        LineTable.fromElf(parseElf(c));
      } catch (e) {
        assert.ok(e instanceof ImageError, `corruption ${k}: ${String(e)}`);
      }
    }
  });
});
