/**
 * Decompression of kernel payloads by magic number, as libxenguest's
 * xg_dom_bzimageloader.c recognises them (gzip, bzip2, xz, lzma, lzo, lz4
 * legacy frame, zstd), with an output cap against decompression bombs. All
 * synchronous.
 *
 * Libraries: fflate (deflate body of gzip, streaming), seek-bzip (bzip2), fzstd
 * (zstd, streaming). xz and LZMA-alone use ./xz.ts (the packaged xz decoder is
 * async-only and lacks the x86 BCJ filter Linux uses; LZMA-JS cannot bound its
 * output). LZ4: the kernel's legacy frame (magic 0x184C2102, blocks of
 * <u32 compressed size><LZ4 block>) is walked here and each block is decoded by
 * a bounds-checked LZ4 block decoder written for this module (lz4js reads only
 * the modern frame format and its block decoder does no bounds checks).
 * LZO: recognised, not supported.
 */
import { Inflate } from 'fflate';
import { Decompress as ZstdDecompress } from 'fzstd';
import { crc32 } from './crc32';
import { ImageError } from './errors';
import { decodeLzmaAlone, decodeXz } from './xz';

/** Compression formats recognised by magic number. */
export type CompressionFormat = 'gzip' | 'bzip2' | 'xz' | 'lzma' | 'lzo' | 'lz4' | 'zstd';

/** Default cap on decompressed output (bytes): 512 MiB. */
export const MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024;

/**
 * Identifies a compressed stream by its leading magic bytes
 * (gzip 1F 8B, bzip2 "BZh", xz FD 37 7A 58 5A 00, lzma 5D 00, lzo 89 4C 5A 4F 00,
 * lz4 legacy 02 21 4C 18, zstd 28 B5 2F FD).
 * @returns the format, or undefined when no magic matches.
 */
export function detectCompression(b: Uint8Array): CompressionFormat | undefined {
  const m = (...xs: number[]) => b.length >= xs.length && xs.every((x, i) => b[i] === x);
  if (m(0x1f, 0x8b)) return 'gzip';
  if (m(0x42, 0x5a, 0x68)) return 'bzip2';
  if (m(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (m(0x5d, 0x00)) return 'lzma';
  if (m(0x89, 0x4c, 0x5a, 0x4f, 0x00)) return 'lzo';
  if (m(0x02, 0x21, 0x4c, 0x18)) return 'lz4';
  if (m(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  return undefined;
}

/** Collects output chunks and enforces the cap. */
class Sink {
  private chunks: Uint8Array[] = [];
  length = 0;
  constructor(
    private readonly max: number,
    private readonly format: string,
  ) {}
  push(chunk: Uint8Array, copy: boolean): void {
    if (this.length + chunk.length > this.max) throw tooBig(this.format, this.max);
    this.chunks.push(copy ? chunk.slice() : chunk);
    this.length += chunk.length;
  }
  result(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0];
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function tooBig(format: string, max: number): ImageError {
  return new ImageError(
    `${format} payload decompresses to more than ${Math.floor(max / (1024 * 1024))} MiB (decompression limit)`,
  );
}

function corrupt(format: string, e: unknown): ImageError {
  if (e instanceof ImageError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ImageError(`corrupt ${format} data: ${msg}`);
}

/**
 * gzip (RFC 1952): header parsed here, deflate body through fflate's streaming
 * Inflate (which stops at the final block, so appended bytes such as Linux's
 * size trailer are ignored), then the member trailer (CRC-32, ISIZE) is found
 * after the body and checked.
 */
function gunzip(data: Uint8Array, max: number): Uint8Array {
  if (data.length < 18)
    throw new ImageError(`corrupt gzip data: ${data.length} bytes is too short for a gzip member`);
  if (data[2] !== 8) throw new ImageError(`corrupt gzip data: compression method ${data[2]} is not deflate`);
  const flg = data[3];
  let p = 10;
  const need = (n: number) => {
    if (p + n > data.length) throw new ImageError('corrupt gzip data: header is truncated');
  };
  if (flg & 4) {
    need(2);
    p += 2 + (data[p] | (data[p + 1] << 8));
  }
  for (const bit of [8, 16]) {
    if (flg & bit) {
      while (p < data.length && data[p] !== 0) p++;
      p++;
    }
  }
  if (flg & 2) p += 2;
  need(1);
  const sink = new Sink(max, 'gzip');
  let done = false;
  const inf = new Inflate((chunk, final) => {
    sink.push(chunk, true);
    if (final) done = true;
  });
  try {
    inf.push(data.subarray(p), true);
  } catch (e) {
    throw corrupt('gzip', e);
  }
  if (!done) throw new ImageError('corrupt gzip data: stream is truncated');
  const out = sink.result();
  const crc = crc32(out);
  const isize = out.length >>> 0;
  // The 8-byte member trailer follows the deflate body; look for it near the end.
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let t = data.length - 8; t >= p && t >= data.length - 8 - 4096; t--) {
    if (dv.getUint32(t, true) === crc && dv.getUint32(t + 4, true) === isize) return out;
  }
  throw new ImageError('corrupt gzip data: CRC-32/size trailer does not match the decompressed data');
}

function bunzip2(data: Uint8Array, max: number): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Bunzip = require('seek-bzip') as {
    decode(input: unknown, output: unknown, multistream?: boolean): unknown;
  };
  let buf = new Uint8Array(Math.min(max, Math.max(65536, data.length * 4)));
  let pos = 0;
  const out = {
    writeByte(b: number) {
      if (pos >= buf.length) {
        if (buf.length >= max) throw tooBig('bzip2', max);
        const nb = new Uint8Array(Math.min(max, buf.length * 2));
        nb.set(buf);
        buf = nb;
      }
      buf[pos++] = b;
    },
    write(b: Uint8Array, off: number, len: number) {
      for (let i = 0; i < len; i++) this.writeByte(b[off + i]);
      return len;
    },
    flush() {},
  };
  let ipos = 0;
  const input = {
    readByte() {
      if (ipos >= data.length) throw new ImageError('corrupt bzip2 data: stream is truncated');
      return data[ipos++];
    },
    read(b: Uint8Array, off: number, len: number) {
      let n = 0;
      while (n < len && ipos < data.length) b[off + n++] = data[ipos++];
      return n === 0 ? -1 : n;
    },
    seek(p: number) {
      ipos = p;
    },
    eof() {
      return ipos >= data.length;
    },
  };
  try {
    Bunzip.decode(input, out, false);
  } catch (e) {
    throw corrupt('bzip2', e);
  }
  return buf.subarray(0, pos);
}

function unzstd(data: Uint8Array, max: number): Uint8Array {
  const sink = new Sink(max, 'zstd');
  const d = new ZstdDecompress((chunk) => sink.push(chunk, true));
  try {
    d.push(data, true);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    // Linux appends the uncompressed size (4 bytes) after the frame; retry without it.
    if (data.length > 4 && sink.length > 0) {
      const sink2 = new Sink(max, 'zstd');
      const d2 = new ZstdDecompress((chunk) => sink2.push(chunk, true));
      try {
        d2.push(data.subarray(0, data.length - 4), true);
        return sink2.result();
      } catch (e2) {
        throw corrupt('zstd', e2);
      }
    }
    throw corrupt('zstd', e);
  }
  if (sink.length === 0) throw new ImageError('corrupt zstd data: no output');
  return sink.result();
}

const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Maximum decompressed size of one legacy-frame block (8 MiB, LZ4 legacy format). */
const LZ4_LEGACY_BLOCK = 8 * 1024 * 1024;

/**
 * Decodes one raw LZ4 block (LZ4 block format: token, literals, 2-byte offset,
 * match length; last sequence has literals only) from src[s, sEnd) into dst at
 * d, never reading or writing out of range.
 * @returns the new output position.
 * @throws ImageError on any malformed sequence or output overflow.
 */
export function lz4DecodeBlock(src: Uint8Array, s: number, sEnd: number, dst: Uint8Array, d: number): number {
  const bad = (why: string) => new ImageError(`corrupt lz4 data: ${why}`);
  while (s < sEnd) {
    const token = src[s++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= sEnd) throw bad('literal length runs past the block');
        b = src[s++];
        lit += b;
      } while (b === 255);
    }
    if (s + lit > sEnd) throw bad('literals run past the block');
    if (d + lit > dst.length) throw bad('output overflows the block size');
    dst.set(src.subarray(s, s + lit), d);
    s += lit;
    d += lit;
    if (s >= sEnd) break; // last sequence
    if (s + 2 > sEnd) throw bad('match offset runs past the block');
    const off = src[s] | (src[s + 1] << 8);
    s += 2;
    if (off === 0 || off > d) throw bad(`match offset ${off} points before the output`);
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (s >= sEnd) throw bad('match length runs past the block');
        b = src[s++];
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (d + len > dst.length) throw bad('output overflows the block size');
    let from = d - off;
    if (off >= len) {
      dst.copyWithin(d, from, from + len);
      d += len;
    } else {
      for (let i = 0; i < len; i++) dst[d++] = dst[from++];
    }
  }
  return d;
}

function unlz4Legacy(data: Uint8Array, max: number): Uint8Array {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 4 || dv.getUint32(0, true) !== LZ4_LEGACY_MAGIC)
    throw new ImageError('corrupt lz4 data: not a legacy frame');
  const sink = new Sink(max, 'lz4');
  const block = new Uint8Array(LZ4_LEGACY_BLOCK);
  let p = 4;
  let blocks = 0;
  while (p + 4 <= data.length) {
    const size = dv.getUint32(p, true);
    if (size === LZ4_LEGACY_MAGIC) {
      p += 4; // concatenated frames
      continue;
    }
    // Linux appends the uncompressed size (u32) after the last block.
    if (p + 4 === data.length && blocks > 0) break;
    p += 4;
    if (size === 0) break;
    if (p + size > data.length)
      throw new ImageError(`corrupt lz4 data: block of ${size} bytes runs past the end of the data`);
    const n = lz4DecodeBlock(data, p, p + size, block, 0);
    sink.push(block.subarray(0, n), true);
    p += size;
    blocks++;
  }
  if (blocks === 0) throw new ImageError('corrupt lz4 data: no blocks');
  return sink.result();
}

/**
 * Decompresses `data` in the given format (synchronously; every format but lzo).
 * Bytes after the end of the compressed stream (Linux appends the 4-byte
 * uncompressed size) are ignored.
 * @param max output cap in bytes (default 512 MiB).
 * @returns the decompressed bytes.
 * @throws ImageError for corrupt data, output above `max`, an unsupported xz
 *   filter, or lzo ("lzo-compressed bzImage payloads are not supported").
 */
export function decompress(
  format: CompressionFormat,
  data: Uint8Array,
  max = MAX_DECOMPRESSED_BYTES,
): Uint8Array {
  switch (format) {
    case 'gzip':
      return gunzip(data, max);
    case 'bzip2':
      return bunzip2(data, max);
    case 'lzma':
      return decodeLzmaAlone(data, max);
    case 'xz':
      return decodeXz(data, max);
    case 'zstd':
      return unzstd(data, max);
    case 'lz4':
      return unlz4Legacy(data, max);
    case 'lzo':
      throw new ImageError('lzo-compressed bzImage payloads are not supported');
  }
}
