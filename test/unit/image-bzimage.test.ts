import assert from 'node:assert/strict';
import { gzipSync } from 'fflate';
import {
  ImageError,
  XEN_ELFNOTE as N,
  bcjX86Decode,
  decompress,
  detectCompression,
  loadKernelImage,
  lz4DecodeBlock,
  parseBzImage,
  unwrapKernelImage,
} from '../../engine/image';
import {
  NoteSpec,
  buildTestElf,
  compressWith,
  haveTool,
  kernelLinkerScript,
  makeBzImage,
  makeTempDir,
  readBytes,
} from '../helpers/image-build';

const NOTES: NoteSpec[] = [
  [N.GUEST_OS, 'linux'],
  [N.XEN_VERSION, 'xen-3.0'],
  [N.VIRT_BASE, 0xffffffff80000000n],
  [N.PAE_MODE, 'yes'],
  [N.LOADER, 'generic'],
];

/** Command-line compressors as Linux's build uses them (scripts/Makefile.lib, xz_wrap.sh). */
const COMPRESSORS: [string, string[]][] = [
  ['gzip', ['gzip', '-n', '-9', '-c']],
  ['bzip2', ['bzip2', '-9', '-c']],
  ['xz', ['xz', '--check=crc32', '--x86', '--lzma2=dict=1MiB', '-c']],
  ['xz', ['xz', '--check=crc32', '-c']],
  ['lzma', ['lzma', '-9', '-c']],
  ['lz4', ['lz4', '-l', '-9', '-c']],
  ['zstd', ['zstd', '-19', '-c']],
];

function imageError(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

describe('engine/image bzImage and compressed kernels', function () {
  this.timeout(120_000);
  let elf: Uint8Array = new Uint8Array(0);
  before(() => {
    const dir = makeTempDir();
    // A larger image than the default so the compressors emit several blocks and real matches.
    elf = readBytes(
      buildTestElf(dir, {
        bits: 64,
        name: 'bz',
        notes: NOTES,
        dwarf: 5,
        linkerScript: kernelLinkerScript(0xffffffff80000000n, 0x1000000n),
      }),
    );
  });

  for (const [fmt, cmd] of COMPRESSORS) {
    it(`unwraps a bzImage with a ${cmd.join(' ')} payload (with and without the size trailer)`, function () {
      if (!haveTool(cmd[0])) {
        if (process.env.CI) throw new Error(`${cmd[0]} is not installed`);
        this.skip();
      }
      const payload = compressWith(cmd, elf);
      assert.equal(detectCompression(payload), fmt);
      for (const trailer of [undefined, elf.length]) {
        const bz = makeBzImage(payload, { sizeTrailer: trailer });
        const info = parseBzImage(bz)!;
        assert.equal(info.compression, fmt);
        const img = loadKernelImage(bz);
        assert.equal(img.container, 'bzimage');
        assert.equal(img.compression, fmt);
        assert.deepEqual(img.elf.bytes, elf, 'decompressed ELF must equal the original byte for byte');
        assert.equal(img.xen.guestOs, 'linux');
      }
    });
  }

  it('x86 BCJ decoding restores relative CALL targets (xz --x86 round trip on code-like data)', function () {
    if (!haveTool('xz')) this.skip();
    // Many E8/E9 opcodes with varied targets, as in real code.
    const data = new Uint8Array(300_000);
    let seed = 7;
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      data[i] = i % 13 === 0 ? 0xe8 : i % 29 === 0 ? 0xe9 : (seed >>> 16) & (i % 3 === 0 ? 0xff : 0x03);
    }
    const xz = compressWith(['xz', '--check=crc32', '--x86', '--lzma2', '-c'], data);
    assert.deepEqual(decompress('xz', xz), data);
    const xzStart = compressWith(['xz', '--check=crc32', '--x86=start=4096', '--lzma2', '-c'], data);
    assert.deepEqual(decompress('xz', xzStart), data);
    // The filter leaves buffers of 4 bytes or fewer alone.
    const tiny = new Uint8Array([0xe8, 1, 2, 3]);
    bcjX86Decode(tiny);
    assert.deepEqual(tiny, new Uint8Array([0xe8, 1, 2, 3]));
  });

  it('accepts a plain ELF and a gzip-compressed ELF', () => {
    assert.equal(unwrapKernelImage(elf).container, 'elf');
    const u = unwrapKernelImage(gzipSync(elf));
    assert.equal(u.container, 'compressed-elf');
    assert.deepEqual(u.elfBytes, elf);
  });

  it('LZ4 block decoder handles overlapping matches and rejects bad offsets', () => {
    // token: 1 literal + match len 4+4=8, offset 1 -> "a" repeated 9 times; then final literal "b".
    const block = new Uint8Array([0x14, 0x61, 0x01, 0x00, 0x10, 0x62]);
    const out = new Uint8Array(32);
    const n = lz4DecodeBlock(block, 0, block.length, out, 0);
    assert.equal(new TextDecoder().decode(out.subarray(0, n)), 'aaaaaaaaa' + 'b');
    imageError(
      () => lz4DecodeBlock(new Uint8Array([0x14, 0x61, 0x05, 0x00, 0x10, 0x62]), 0, 6, out, 0),
      /offset 5 points before the output/,
    );
    imageError(
      () => lz4DecodeBlock(new Uint8Array([0xf0, 0xff]), 0, 2, out, 0),
      /literal length runs past the block/,
    );
  });

  describe('bad input gives ImageError', () => {
    it('unknown compression, lzo, uncompressed payload', () => {
      imageError(
        () => loadKernelImage(makeBzImage(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))),
        /unknown compression format/,
      );
      imageError(() => loadKernelImage(makeBzImage(elf)), /unknown compression format/);
      imageError(
        () => loadKernelImage(makeBzImage(new Uint8Array([0x89, 0x4c, 0x5a, 0x4f, 0x00, 1, 2, 3]))),
        /lzo-compressed bzImage payloads are not supported/,
      );
    });
    it('old boot protocol, payload offset or length beyond the file, truncated header', () => {
      const gz = gzipSync(elf);
      imageError(() => loadKernelImage(makeBzImage(gz, { version: 0x0206 })), /older than 2\.08/);
      const bz = makeBzImage(gz);
      const far = bz.slice();
      new DataView(far.buffer).setUint32(0x248, 0x7fffffff, true);
      imageError(() => loadKernelImage(far), /payload offset .* beyond the end of the file/);
      const long = bz.slice();
      new DataView(long.buffer).setUint32(0x24c, bz.length, true);
      imageError(() => loadKernelImage(long), /payload .* extends beyond the end of the file/);
      imageError(() => loadKernelImage(bz.subarray(0, 0x220)), /setup header is truncated/);
    });
    it('not a kernel at all', () => {
      imageError(() => loadKernelImage(new Uint8Array(0)), /too short/);
      imageError(
        () => loadKernelImage(new TextEncoder().encode('#!/bin/sh\necho hello\n')),
        /neither an ELF/,
      );
    });
    it('a payload that decompresses to something other than an ELF', () => {
      imageError(
        () => loadKernelImage(makeBzImage(gzipSync(new TextEncoder().encode('not an elf')))),
        /does not decompress to an ELF/,
      );
    });
    for (const [fmt, cmd] of COMPRESSORS) {
      it(`corrupt and truncated ${fmt} data (${cmd.slice(1).join(' ')})`, function () {
        if (!haveTool(cmd[0])) this.skip();
        const payload = compressWith(cmd, elf);
        imageError(
          () => decompress(fmt as 'gzip', payload.subarray(0, Math.floor(payload.length / 2))),
          new RegExp(`corrupt ${fmt}|does not`),
        );
        let seed = 99;
        for (let k = 0; k < 40; k++) {
          const bad = payload.slice();
          for (let j = 0; j < 3; j++) {
            seed = (seed * 1103515245 + 12345) >>> 0;
            bad[16 + (seed % (bad.length - 16))] ^= 1 + ((seed >>> 8) % 255);
          }
          try {
            const out = decompress(fmt as 'gzip', bad);
            // Some formats have no checksum over the data (lzma, lz4 legacy); then output may differ but must be bounded.
            assert.ok(out.length <= 512 * 1024 * 1024);
          } catch (e) {
            assert.ok(e instanceof ImageError, `${fmt} corruption ${k}: ${String(e)}`);
          }
        }
      });
    }
    it('caps decompressed output (decompression bombs)', function () {
      const zeros = new Uint8Array(4 * 1024 * 1024);
      imageError(() => decompress('gzip', gzipSync(zeros), 1024 * 1024), /more than 1 MiB/);
      for (const [fmt, cmd] of COMPRESSORS) {
        if (!haveTool(cmd[0])) continue;
        imageError(
          () => decompress(fmt as 'gzip', compressWith(cmd, zeros), 1024 * 1024),
          /more than 1 MiB|decompression limit/,
        );
      }
    });
  });
});
