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
import { Decompress as ZstdDecompress, decompress as zstdDecompressInto } from 'fzstd';
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

/**
 * Output kept in memory by the first decoding pass (bytes): 64 MiB. Up to this
 * size an image decodes once; above it the first pass only counts the output
 * (stopping as soon as it passes the cap) and a second pass writes into one
 * buffer of the exact size, so that peak memory is the result plus the
 * decoder's state, never a growing copy of it.
 */
export const DECOMPRESS_KEEP_BYTES = 64 * 1024 * 1024;

/**
 * Where a decoder writes its output: checks the cap before every chunk is
 * stored (the decoder stops at the first chunk that passes it), keeps chunks
 * up to {@link DECOMPRESS_KEEP_BYTES} (first pass) or writes into a
 * preallocated buffer of the size the first pass measured (second pass).
 */
export class BoundedOutput {
  /** Bytes produced so far. */
  length = 0;
  private chunks: Uint8Array[] | null = [];
  private readonly exact?: Uint8Array;
  /**
   * @param max output cap (bytes); a chunk that would pass it throws ImageError
   *   "<format> payload decompresses to more than N MiB (decompression limit)".
   * @param format name used in messages ("gzip", "zstd", ...).
   * @param exactSize the output size known in advance (the first pass measured
   *   it, or a header declares it): the output goes into one buffer of that
   *   size; more or fewer bytes is corrupt data.
   */
  constructor(
    readonly max: number,
    readonly format: string,
    exactSize?: number,
  ) {
    if (exactSize !== undefined) this.exact = new Uint8Array(exactSize);
  }
  /** Appends `chunk` (copied when `copy`, i.e. when the decoder reuses its buffer). */
  push(chunk: Uint8Array, copy: boolean): void {
    const n = this.length + chunk.length;
    if (this.exact && n > this.exact.length)
      throw new ImageError(
        `corrupt ${this.format} data: decodes to more than the expected ${this.exact.length} bytes`,
      );
    if (n > this.max) throw tooBig(this.format, this.max);
    if (this.exact) {
      this.exact.set(chunk, this.length);
    } else if (this.chunks) {
      if (n > DECOMPRESS_KEEP_BYTES) this.chunks = null;
      else this.chunks.push(copy ? chunk.slice() : chunk);
    }
    this.length = n;
  }
  /** The output, or undefined when the first pass dropped it (more than DECOMPRESS_KEEP_BYTES). */
  result(): Uint8Array | undefined {
    if (this.exact) {
      if (this.length !== this.exact.length)
        throw new ImageError(
          `corrupt ${this.format} data: decodes to ${this.length} bytes, expected ${this.exact.length}`,
        );
      return this.exact;
    }
    if (!this.chunks) return undefined;
    if (this.chunks.length === 1) return this.chunks[0];
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.chunks = [out];
    return out;
  }
}

/**
 * Runs a deterministic decoder once, or twice when its output passes
 * {@link DECOMPRESS_KEEP_BYTES} (count, then write into an exact-size buffer).
 * Peak memory: max(2 x 64 MiB, output size) plus the decoder's own state.
 */
function decodeBounded(format: string, max: number, run: (out: BoundedOutput) => void): Uint8Array {
  const first = new BoundedOutput(max, format);
  run(first);
  const r = first.result();
  if (r) return r;
  const second = new BoundedOutput(max, format, first.length);
  run(second);
  return second.result()!;
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

/** Input fed to fflate per push (bytes): deflate expands at most 1032:1, so one push yields at most about 16.5 MiB. */
const INFLATE_INPUT_CHUNK = 16 * 1024;

/**
 * Raw deflate (RFC 1951) from data[start..] through fflate's streaming
 * Inflate, fed in 16 KiB pieces so that each push produces a bounded amount of
 * output, which goes to a {@link BoundedOutput} (the cap is checked while it
 * runs). Stops at the final block: bytes after it are ignored.
 * @returns the output and the input offset just after the pushes (the trailer
 *   lies at or before it).
 * @throws ImageError "corrupt <format> data: ..." or the cap error.
 */
export function inflateRawBounded(
  data: Uint8Array,
  start: number,
  max: number,
  format: string,
  exactSize?: number,
): { out: Uint8Array } {
  const run = (sink: BoundedOutput) => {
    const inf = new Inflate((chunk) => sink.push(chunk, false));
    // fflate 0.8 keeps its block state in `s`: f = final block seen, l = inside a block.
    const state = (inf as unknown as { s?: { f?: number; l?: unknown } }).s;
    let o = start;
    try {
      for (;;) {
        const end = Math.min(o + INFLATE_INPUT_CHUNK, data.length);
        inf.push(data.subarray(o, end), end >= data.length);
        o = end;
        if (o >= data.length) break;
        if (state && state.f && !state.l) break; // the final block is complete
      }
    } catch (e) {
      throw corrupt(format, e);
    }
    if (state && !(state.f && !state.l)) throw new ImageError(`corrupt ${format} data: stream is truncated`);
  };
  if (exactSize !== undefined) {
    const sink = new BoundedOutput(max, format, exactSize);
    run(sink);
    return { out: sink.result()! };
  }
  return { out: decodeBounded(format, max, run) };
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
  const { out } = inflateRawBounded(data, p, max, 'gzip');
  const crc = crc32(out);
  const isize = out.length >>> 0;
  // The 8-byte member trailer follows the deflate body; look for it near the end.
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let t = data.length - 8; t >= p && t >= data.length - 8 - 4096; t--) {
    if (dv.getUint32(t, true) === crc && dv.getUint32(t + 4, true) === isize) return out;
  }
  throw new ImageError('corrupt gzip data: CRC-32/size trailer does not match the decompressed data');
}

/**
 * bzip2 through seek-bzip (one byte at a time into a 64 KiB staging buffer,
 * flushed to a {@link BoundedOutput}, so the cap is checked while it runs).
 */
function bunzip2(data: Uint8Array, max: number): Uint8Array {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Bunzip = require('seek-bzip') as {
    decode(input: unknown, output: unknown, multistream?: boolean): unknown;
  };
  return decodeBounded('bzip2', max, (sink) => {
    const stage = new Uint8Array(65536);
    let sp = 0;
    const out = {
      writeByte(b: number) {
        stage[sp++] = b;
        if (sp === stage.length) {
          sink.push(stage, true);
          sp = 0;
        }
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
    sink.push(stage.subarray(0, sp), true);
  });
}

const ZSTD_MAGIC = 0xfd2fb528;
/** Block_Maximum_Size of RFC 8878 (bytes): 128 KiB, or the window when smaller. */
const ZSTD_BLOCK_MAX = 128 * 1024;

/** One zstd frame located by walking its header and block headers (RFC 8878 section 3.1.1). */
interface ZstdFrame {
  /** [start, end) of the frame in the data, checksum included. */
  start: number;
  end: number;
  /** Offset of the first block header. */
  blocks: number;
  windowSize: number;
  contentSize?: number;
  checksum: boolean;
}

/**
 * Reads the frame header at `p` and walks the block headers to the frame's
 * end, without decoding (RFC 8878: Frame_Header_Descriptor, Window_Descriptor,
 * Dictionary_ID, Frame_Content_Size, Block_Header).
 * @throws ImageError for reserved bits, dictionaries, reserved block types,
 *   blocks above Block_Maximum_Size and truncation.
 */
function walkZstdFrame(data: Uint8Array, p: number): ZstdFrame {
  const bad = (why: string) => new ImageError(`corrupt zstd data: ${why}`);
  const start = p;
  if (p + 6 > data.length) throw bad('frame header is truncated');
  const fhd = data[p + 4];
  p += 5;
  const fcsFlag = fhd >>> 6;
  const single = (fhd >>> 5) & 1;
  if (fhd & 8) throw bad('reserved bit of the frame header descriptor is set');
  const checksum = ((fhd >>> 2) & 1) === 1;
  const dictBytes = [0, 1, 2, 4][fhd & 3];
  let windowSize = 0;
  if (!single) {
    const wd = data[p++];
    const base = 2 ** (10 + (wd >>> 3));
    windowSize = base + (base / 8) * (wd & 7);
  }
  if (p + dictBytes > data.length) throw bad('frame header is truncated');
  let dictId = 0;
  for (let i = 0; i < dictBytes; i++) dictId += data[p + i] * 2 ** (8 * i);
  p += dictBytes;
  if (dictId !== 0) throw new ImageError(`zstd frame needs dictionary ${dictId}, which is not available`);
  const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
  if (p + fcsBytes > data.length) throw bad('frame header is truncated');
  let contentSize: number | undefined;
  if (fcsBytes) {
    let v = 0;
    for (let i = 0; i < fcsBytes; i++) v += data[p + i] * 2 ** (8 * i);
    contentSize = fcsBytes === 2 ? v + 256 : v;
  }
  p += fcsBytes;
  if (single) windowSize = contentSize!;
  const blockMax = Math.min(windowSize, ZSTD_BLOCK_MAX);
  const blocks = p;
  for (;;) {
    if (p + 3 > data.length) throw bad('block header is truncated');
    const h = data[p] | (data[p + 1] << 8) | (data[p + 2] << 16);
    p += 3;
    const last = h & 1;
    const type = (h >>> 1) & 3;
    const size = h >>> 3;
    if (type === 3) throw bad('reserved block type');
    if (size > blockMax) throw bad(`block of ${size} bytes is above the block maximum (${blockMax} bytes)`);
    p += type === 1 ? 1 : size;
    if (p > data.length) throw bad('block is truncated');
    if (last) break;
  }
  if (checksum) p += 4;
  if (p > data.length) throw bad('content checksum is truncated');
  return { start, end: p, blocks, windowSize, contentSize, checksum };
}

/**
 * An output buffer for fzstd's one-shot decoder. fzstd 0.1.1's frame-header
 * reader compares its buffer argument with the number 1 (`w == 1`), which
 * converts a Uint8Array to a string of all its bytes (seconds, and a RangeError
 * above about 256 MiB); a primitive conversion of NaN makes that comparison
 * cheap and false, which is what fzstd means.
 */
function zstdTarget(buf: Uint8Array): Uint8Array {
  Object.defineProperty(buf, Symbol.toPrimitive, { value: () => NaN });
  return buf;
}

/**
 * zstd (RFC 8878) through fzstd, in two passes per frame so that neither
 * memory nor time depends on the frame's declared window:
 * 1. fzstd's streaming decoder measures the frame's output, checking the cap
 *    after every block; it is given a 128 KiB window (the header is rewritten),
 *    which leaves the output size exact (a block never exceeds 128 KiB) and keeps
 *    its per-block window shift cheap (fzstd shifts its whole window per block);
 *    the bytes it produces are discarded.
 * 2. fzstd's one-shot decoder writes the frame into its slice of one buffer of
 *    the measured size, using that buffer as the window (no window copy).
 * Skippable frames are skipped; bytes after the last frame that do not start a
 * frame (Linux appends the 4-byte uncompressed size) are ignored. The content
 * checksum is not verified (fzstd does not compute XXH64).
 */
function unzstd(data: Uint8Array, max: number): Uint8Array {
  const frames: { frame: Uint8Array; size: number }[] = [];
  let total = 0;
  let p = 0;
  while (p + 4 <= data.length) {
    const magic = (data[p] | (data[p + 1] << 8) | (data[p + 2] << 16) | (data[p + 3] << 24)) >>> 0;
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (p + 8 > data.length) throw new ImageError('corrupt zstd data: skippable frame is truncated');
      p += 8 + ((data[p + 4] | (data[p + 5] << 8) | (data[p + 6] << 16) | (data[p + 7] << 24)) >>> 0);
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      if (frames.length === 0) throw new ImageError('corrupt zstd data: no zstd frame');
      break;
    }
    const f = walkZstdFrame(data, p);
    let frame = data.subarray(f.start, f.end);
    if (f.windowSize > ZSTD_BLOCK_MAX) {
      // Same blocks behind a header declaring a 128 KiB window: checksum flag kept, no content size.
      const body = data.subarray(f.blocks, f.end);
      frame = new Uint8Array(6 + body.length);
      frame.set([0x28, 0xb5, 0x2f, 0xfd, f.checksum ? 4 : 0, 0x38]);
      frame.set(body, 6);
    }
    let size = 0;
    const d = new ZstdDecompress((chunk) => {
      size += chunk.length;
      if (total + size > max) throw tooBig('zstd', max);
    });
    try {
      d.push(frame, true);
    } catch (e) {
      throw corrupt('zstd', e);
    }
    if (f.contentSize !== undefined && f.contentSize !== size)
      throw new ImageError(
        `corrupt zstd data: frame decodes to ${size} bytes, its header says ${f.contentSize}`,
      );
    frames.push({ frame, size });
    total += size;
    p = f.end;
  }
  if (frames.length === 0) throw new ImageError('corrupt zstd data: no zstd frame');
  if (total === 0) throw new ImageError('corrupt zstd data: no output');
  const out = new Uint8Array(total);
  let o = 0;
  for (const { frame, size } of frames) {
    if (size > 0) {
      try {
        zstdDecompressInto(frame, zstdTarget(out.subarray(o, o + size)));
      } catch (e) {
        throw corrupt('zstd', e);
      }
    }
    o += size;
  }
  return out;
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
  return decodeBounded('lz4', max, (sink) => unlz4LegacyPass(data, dv, sink));
}

/** One pass over a legacy frame's blocks into `sink` (one 8 MiB block buffer, reused). */
function unlz4LegacyPass(data: Uint8Array, dv: DataView, sink: BoundedOutput): void {
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
