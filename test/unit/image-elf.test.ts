import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  ImageError,
  PT_LOAD,
  PT_NOTE,
  STT_FUNC,
  STT_OBJECT,
  findSection,
  parseElf,
  sectionByName,
} from '../../engine/image';
import { buildTestElf, makeTempDir, readBytes } from '../helpers/image-build';

/** readelf's view of the symbol table: name -> value. */
function readelfSymbols(path: string): Map<string, bigint> {
  const out = execFileSync('readelf', ['-sW', path], { encoding: 'utf8' });
  const m = new Map<string, bigint>();
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && /^\d+:$/.test(f[0]) && (f[3] === 'FUNC' || f[3] === 'OBJECT'))
      m.set(f[7], BigInt('0x' + f[1]));
  }
  return m;
}

function expectImageError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

describe('engine/image ELF parser', function () {
  this.timeout(60_000);
  const dir = makeTempDir();
  const notes = [
    [6, 'linux'],
    [5, 'xen-3.0'],
  ] as [number, string][];
  let elf64Path = '';
  let elf32Path = '';
  before(() => {
    elf64Path = buildTestElf(dir, { bits: 64, name: 'e64', notes, dwarf: 4 });
    elf32Path = buildTestElf(dir, { bits: 32, name: 'e32', notes, dwarf: 4 });
  });

  for (const bits of [64, 32] as const) {
    it(`parses a gcc-built ELF${bits}: header, segments, sections and symbols as readelf sees them`, () => {
      const path = bits === 64 ? elf64Path : elf32Path;
      const bytes = readBytes(path);
      const elf = parseElf(bytes);
      assert.equal(elf.header.bits, bits);
      assert.equal(elf.header.machine, bits === 64 ? 62 : 3);
      const loads = elf.programHeaders.filter((p) => p.type === PT_LOAD);
      assert.ok(loads.length >= 1);
      assert.ok(elf.programHeaders.some((p) => p.type === PT_NOTE));
      assert.ok(findSection(elf, '.text'));
      assert.ok(findSection(elf, '.note.Xen'));
      assert.ok(sectionByName(elf, '.debug_line')!.length > 0);
      const ref = readelfSymbols(path);
      const compute = elf.symbols.find((s) => s.name === 'compute')!;
      assert.equal(compute.type, STT_FUNC);
      assert.equal(compute.value, ref.get('compute'));
      assert.ok(compute.size > 0n);
      const counter = elf.symbols.find((s) => s.name === 'counter')!;
      assert.equal(counter.type, STT_OBJECT);
      assert.equal(counter.value, ref.get('counter'));
      assert.equal(elf.header.entry, ref.get('_start'));
    });
  }

  it('reads SHF_COMPRESSED (zlib) debug sections', () => {
    const p = buildTestElf(dir, { bits: 64, name: 'gz', notes, dwarf: 5, flags: ['-gz=zlib'] });
    const elf = parseElf(readBytes(p));
    const sec = findSection(elf, '.debug_line')!;
    assert.ok((sec.flags & 0x800n) !== 0n, 'section should be SHF_COMPRESSED');
    const data = sectionByName(elf, '.debug_line')!;
    assert.ok(data.length > sec.size, 'inflated data is larger than the stored section');
    assert.equal(data[4] | (data[5] << 8), 5, 'DWARF 5 line table header after inflation');
  });

  describe('malformed input gives ImageError', () => {
    let good: Uint8Array = new Uint8Array(0);
    let good32: Uint8Array = new Uint8Array(0);
    before(() => {
      good = readBytes(elf64Path);
      good32 = readBytes(elf32Path);
    });
    const patch = (src: Uint8Array, f: (dv: DataView, b: Uint8Array) => void): Uint8Array => {
      const b = src.slice();
      f(new DataView(b.buffer), b);
      return b;
    };
    it('empty and truncated identification', () => {
      expectImageError(() => parseElf(new Uint8Array(0)), /identification is truncated/);
      expectImageError(() => parseElf(good.subarray(0, 40)), /ELF header is truncated/);
    });
    it('bad magic, class, data encoding, version, machine', () => {
      expectImageError(() => parseElf(patch(good, (_d, b) => (b[1] = 0x46))), /bad magic/);
      expectImageError(() => parseElf(patch(good, (_d, b) => (b[4] = 3))), /ELF class 3/);
      expectImageError(() => parseElf(patch(good, (_d, b) => (b[5] = 2))), /data encoding 2/);
      expectImageError(() => parseElf(patch(good, (d) => d.setUint32(20, 7, true))), /ELF version 7/);
      expectImageError(() => parseElf(patch(good, (d) => d.setUint16(18, 40, true))), /machine 40/);
    });
    it('program header table beyond the file, absurd counts, small entry sizes', () => {
      expectImageError(
        () => parseElf(patch(good, (d) => d.setBigUint64(32, BigInt(good.length - 8), true))),
        /program header table extends beyond the file/,
      );
      expectImageError(
        () => parseElf(patch(good, (d) => d.setUint16(56, 0xfff0, true))),
        /program header table extends beyond the file/,
      );
      expectImageError(
        () => parseElf(patch(good, (d) => d.setUint16(54, 8, true))),
        /program header entry size 8 is too small/,
      );
      expectImageError(
        () => parseElf(patch(good, (d) => d.setBigUint64(32, 1n << 60n, true))),
        /absurdly large/,
      );
      expectImageError(
        () => parseElf(patch(good32, (d) => d.setUint16(44, 0xfff0, true))),
        /program header table extends beyond the file/,
      );
    });
    it('segment data beyond the file names the program header', () => {
      const phoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(32, true));
      const bad = patch(good, (d) => d.setBigUint64(phoff + 56 * 0 + 32, BigInt(good.length * 2), true));
      expectImageError(() => parseElf(bad), /ELF program header 0 extends beyond the file/);
      const bad2 = patch(good, (d) => d.setBigUint64(phoff + 8, BigInt(good.length), true));
      expectImageError(() => parseElf(bad2), /ELF program header 0 extends beyond the file/);
    });
    it('p_filesz larger than p_memsz', () => {
      const phoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(32, true));
      const bad = patch(good, (d) => d.setBigUint64(phoff + 40, 1n, true));
      expectImageError(() => parseElf(bad), /p_filesz .* larger than p_memsz/);
    });
    it('section headers beyond the file, bad string table index, bad section data', () => {
      expectImageError(
        () => parseElf(patch(good, (d) => d.setBigUint64(40, BigInt(good.length - 10), true))),
        /section header 0 extends beyond the file|section header table extends beyond the file/,
      );
      expectImageError(
        () => parseElf(patch(good, (d) => d.setUint16(62, 0x7000, true))),
        /string table index .* out of range/,
      );
      const shoff = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(40, true));
      const bad = patch(good, (d) => d.setBigUint64(shoff + 64 * 1 + 24, BigInt(good.length), true));
      expectImageError(() => parseElf(bad), /ELF section 1 extends beyond the file/);
    });
    it('every truncation of a real ELF throws ImageError, never another error', () => {
      for (let n = 0; n < good.length; n += Math.max(1, Math.floor(good.length / 97))) {
        try {
          parseElf(good.subarray(0, n));
        } catch (e) {
          assert.ok(e instanceof ImageError, `truncation at ${n}: ${String(e)}`);
        }
      }
    });
    it('random byte corruption never escapes as a non-ImageError', () => {
      let seed = 12345;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24);
      for (let k = 0; k < 300; k++) {
        const b = good.slice();
        for (let j = 0; j < 4; j++) b[Math.floor(rnd() * Math.min(b.length, 4096))] = Math.floor(rnd() * 256);
        try {
          const elf = parseElf(b);
          for (const s of elf.sections) sectionByName(elf, s.name);
        } catch (e) {
          assert.ok(e instanceof ImageError, `corruption ${k}: ${String(e)}`);
        }
      }
    });
  });
});
