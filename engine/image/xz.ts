/**
 * Synchronous LZMA, LZMA2, .xz container and x86 BCJ decoding for kernel
 * payloads.
 *
 * Why here and not a library: the xz library in the dependency set
 * (xz-decompress, xz-embedded compiled to WebAssembly) is stream/async only and
 * is built without the x86 BCJ filter, which Linux's scripts/xz_wrap.sh always
 * uses for x86 bzImages (Debian's kernels are such images); the lzma library
 * (LZMA-JS) cannot bound its output while decoding. This module follows the
 * formats' specifications: the .xz file format 1.1.0 (tukaani.org), the LZMA
 * and LZMA2 encodings as described by the LZMA SDK documentation, and the x86
 * BCJ filter's definition; the code is written for this project. Output is
 * bounded by a caller-supplied cap; every malformed input gives an ImageError.
 */
import { crc32 } from './crc32';
import { ImageError } from './errors';

const NUM_STATES = 12;
const POS_STATES_MAX = 16;
const DIST_STATES = 4;
const DIST_SLOTS = 64;
const DIST_MODEL_END = 14;
const FULL_DISTANCES = 128;
const ALIGN_SIZE = 16;
const LEN_LOW = 8;
const LEN_MID = 8;
const LEN_HIGH = 256;
const PROB_INIT = 1024;

/** ES2024 resizable ArrayBuffer (Node 20 has it; the project's TypeScript lib is ES2022). */
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void;
}
const ResizableBuffer = ArrayBuffer as unknown as new (
  byteLength: number,
  opts: { maxByteLength: number },
) => ResizableArrayBuffer;

/**
 * Growable output that doubles as the LZMA dictionary (the whole output stays
 * addressable). It lives in one resizable ArrayBuffer reserved up to `max`:
 * growing commits more of the same buffer instead of copying into a new one,
 * so peak memory is the output itself (a doubling copy left the old buffers
 * to the garbage collector: about twice the output, 1.1 GiB for a bomb
 * stopped at the 512 MiB cap). `finish()` shrinks it to the output.
 */
class Output {
  private readonly rab: ResizableArrayBuffer;
  /** Length-tracking view of the whole buffer (grows with it). */
  readonly buf: Uint8Array;
  pos = 0;
  constructor(
    initial: number,
    readonly max: number,
    readonly what: string,
  ) {
    const size = Math.max(1024, Math.min(initial, max));
    this.rab = new ResizableBuffer(size, { maxByteLength: Math.max(size, max) });
    this.buf = new Uint8Array(this.rab);
  }
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.rab.byteLength) return;
    if (need > this.max)
      throw new ImageError(
        `${this.what} payload decompresses to more than ${Math.floor(this.max / (1024 * 1024))} MiB (decompression limit)`,
      );
    let size = this.rab.byteLength * 2;
    while (size < need) size *= 2;
    this.rab.resize(Math.min(size, this.max));
  }
  /** The output so far, the buffer shrunk to it. */
  finish(): Uint8Array {
    this.rab.resize(this.pos);
    return new Uint8Array(this.rab, 0, this.pos);
  }
}

/** Range decoder over data[pos, end). */
class RangeDecoder {
  range = 0;
  code = 0;
  constructor(
    readonly data: Uint8Array,
    public pos: number,
    public end: number,
    readonly what: string,
  ) {}
  init(): void {
    if (this.pos + 5 > this.end) throw this.err('range coder header is truncated');
    if (this.data[this.pos] !== 0) throw this.err('range coder does not start with a zero byte');
    this.code =
      ((this.data[this.pos + 1] << 24) |
        (this.data[this.pos + 2] << 16) |
        (this.data[this.pos + 3] << 8) |
        this.data[this.pos + 4]) >>>
      0;
    this.range = 0xffffffff;
    this.pos += 5;
    if (this.code === this.range) throw this.err('range coder starts with an invalid code');
  }
  err(why: string): ImageError {
    return new ImageError(`corrupt ${this.what} data: ${why}`);
  }
  private next(): number {
    if (this.pos >= this.end) throw this.err('compressed data is truncated');
    return this.data[this.pos++];
  }
  bit(probs: Uint16Array, i: number): number {
    const p = probs[i];
    const bound = (this.range >>> 11) * p;
    let b: number;
    if (this.code < bound) {
      this.range = bound;
      probs[i] = p + ((2048 - p) >>> 5);
      b = 0;
    } else {
      this.range -= bound;
      this.code -= bound;
      probs[i] = p - (p >>> 5);
      b = 1;
    }
    if (this.range < 0x1000000) {
      this.range = this.range * 256;
      this.code = this.code * 256 + this.next();
    }
    return b;
  }
  bitTree(probs: Uint16Array, base: number, bits: number): number {
    let m = 1;
    for (let i = 0; i < bits; i++) m = (m << 1) | this.bit(probs, base + m);
    return m - (1 << bits);
  }
  /** Reverse bit tree; probs[base + 1 ..]. */
  bitTreeReverse(probs: Uint16Array, base: number, bits: number): number {
    let m = 1;
    let sym = 0;
    for (let i = 0; i < bits; i++) {
      const b = this.bit(probs, base + m);
      m = (m << 1) | b;
      sym |= b << i;
    }
    return sym;
  }
  direct(bits: number): number {
    let res = 0;
    for (let i = 0; i < bits; i++) {
      this.range = this.range >>> 1;
      let b = 0;
      if (this.code >= this.range) {
        this.code -= this.range;
        b = 1;
      }
      res = (res << 1) | b;
      if (this.range < 0x1000000) {
        this.range = this.range * 256;
        this.code = this.code * 256 + this.next();
      }
    }
    return res >>> 0;
  }
  /** True when the code is 0, as a correctly finished LZMA stream leaves it. */
  finishedOk(): boolean {
    return this.code === 0;
  }
}

/** Length decoder probabilities: choice, choice2, low[16][8], mid[16][8], high[256]. */
class LenDecoder {
  probs = new Uint16Array(2 + POS_STATES_MAX * LEN_LOW + POS_STATES_MAX * LEN_MID + LEN_HIGH);
  reset(): void {
    this.probs.fill(PROB_INIT);
  }
  /** @returns match length minus 2 (0..271). */
  decode(rc: RangeDecoder, posState: number): number {
    const p = this.probs;
    if (rc.bit(p, 0) === 0) return rc.bitTree(p, 2 + posState * LEN_LOW, 3);
    if (rc.bit(p, 1) === 0)
      return LEN_LOW + rc.bitTree(p, 2 + POS_STATES_MAX * LEN_LOW + posState * LEN_MID, 3);
    return LEN_LOW + LEN_MID + rc.bitTree(p, 2 + POS_STATES_MAX * (LEN_LOW + LEN_MID), 8);
  }
}

/** LZMA decoder state, kept across LZMA2 chunks. */
export class LzmaDecoder {
  lc = 3;
  lp = 0;
  pb = 2;
  state = 0;
  rep0 = 0;
  rep1 = 0;
  rep2 = 0;
  rep3 = 0;
  /** Output position where the current dictionary starts (matches may not reach before it). */
  dictStart = 0;
  dictSize = 0xffffffff;
  private isMatch = new Uint16Array(NUM_STATES * POS_STATES_MAX);
  private isRep = new Uint16Array(NUM_STATES);
  private isRepG0 = new Uint16Array(NUM_STATES);
  private isRepG1 = new Uint16Array(NUM_STATES);
  private isRepG2 = new Uint16Array(NUM_STATES);
  private isRep0Long = new Uint16Array(NUM_STATES * POS_STATES_MAX);
  private distSlot = new Uint16Array(DIST_STATES * DIST_SLOTS);
  private distSpecial = new Uint16Array(FULL_DISTANCES - DIST_MODEL_END + 1);
  private distAlign = new Uint16Array(ALIGN_SIZE);
  private len = new LenDecoder();
  private repLen = new LenDecoder();
  private literal = new Uint16Array(0x300);

  constructor(readonly what: string) {}

  /** Sets lc/lp/pb from the properties byte ((pb * 5 + lp) * 9 + lc). */
  setProps(b: number, lzma2: boolean): void {
    if (b >= 9 * 5 * 5) throw new ImageError(`corrupt ${this.what} data: invalid LZMA properties byte ${b}`);
    this.lc = b % 9;
    b = Math.floor(b / 9);
    this.lp = b % 5;
    this.pb = Math.floor(b / 5);
    if (lzma2 && this.lc + this.lp > 4)
      throw new ImageError(`corrupt ${this.what} data: LZMA2 requires lc + lp <= 4`);
    const n = 0x300 << (this.lc + this.lp);
    if (this.literal.length !== n) this.literal = new Uint16Array(n);
  }

  /** Resets probabilities, state and repeat distances. */
  resetState(): void {
    this.state = 0;
    this.rep0 = this.rep1 = this.rep2 = this.rep3 = 0;
    for (const a of [
      this.isMatch,
      this.isRep,
      this.isRepG0,
      this.isRepG1,
      this.isRepG2,
      this.isRep0Long,
      this.distSlot,
      this.distSpecial,
      this.distAlign,
      this.literal,
    ])
      a.fill(PROB_INIT);
    this.len.reset();
    this.repLen.reset();
  }

  /**
   * Decodes until `out.pos` reaches `limit` (when defined) or an end marker.
   * @returns true when an end-of-payload marker was read.
   */
  decode(rc: RangeDecoder, out: Output, limit: number | undefined, allowEndMarker: boolean): boolean {
    const pbMask = (1 << this.pb) - 1;
    const lpMask = (1 << this.lp) - 1;
    const lc = this.lc;
    for (;;) {
      if (limit !== undefined && out.pos >= limit) return false;
      const pos = out.pos;
      const posState = pos & pbMask;
      const st = this.state;
      if (rc.bit(this.isMatch, st * POS_STATES_MAX + posState) === 0) {
        // Literal.
        out.ensure(1);
        const buf = out.buf;
        const prev = pos > this.dictStart ? buf[pos - 1] : 0;
        const base = 0x300 * (((pos & lpMask) << lc) + (prev >>> (8 - lc)));
        let sym = 1;
        if (st >= 7) {
          let matchByte = buf[pos - this.rep0 - 1];
          while (sym < 0x100) {
            const mb = (matchByte >>> 7) & 1;
            matchByte <<= 1;
            const b = rc.bit(this.literal, base + ((1 + mb) << 8) + sym);
            sym = (sym << 1) | b;
            if (b !== mb) break;
          }
        }
        while (sym < 0x100) sym = (sym << 1) | rc.bit(this.literal, base + sym);
        buf[out.pos++] = sym & 0xff;
        this.state = st < 4 ? 0 : st < 10 ? st - 3 : st - 6;
        continue;
      }
      let len: number;
      if (rc.bit(this.isRep, st) === 0) {
        // Simple match.
        this.rep3 = this.rep2;
        this.rep2 = this.rep1;
        this.rep1 = this.rep0;
        len = this.len.decode(rc, posState);
        this.state = st < 7 ? 7 : 10;
        const dist = this.decodeDistance(rc, len);
        if (dist === 0xffffffff) {
          if (!allowEndMarker) throw rc.err('unexpected end-of-payload marker');
          return true;
        }
        this.rep0 = dist;
      } else {
        if (pos === this.dictStart) throw rc.err('repeated match before any output');
        if (rc.bit(this.isRepG0, st) === 0) {
          if (rc.bit(this.isRep0Long, st * POS_STATES_MAX + posState) === 0) {
            // Short rep: one byte at rep0.
            this.state = st < 7 ? 9 : 11;
            out.ensure(1);
            out.buf[out.pos] = out.buf[out.pos - this.rep0 - 1];
            out.pos++;
            continue;
          }
        } else {
          let dist: number;
          if (rc.bit(this.isRepG1, st) === 0) dist = this.rep1;
          else {
            if (rc.bit(this.isRepG2, st) === 0) dist = this.rep2;
            else {
              dist = this.rep3;
              this.rep3 = this.rep2;
            }
            this.rep2 = this.rep1;
          }
          this.rep1 = this.rep0;
          this.rep0 = dist;
        }
        len = this.repLen.decode(rc, posState);
        this.state = st < 7 ? 8 : 11;
      }
      // Copy the match.
      const dist = this.rep0;
      if (dist >= pos - this.dictStart || dist >= this.dictSize)
        throw rc.err(`match distance ${dist + 1} reaches before the start of the dictionary`);
      let n = len + 2;
      if (limit !== undefined && out.pos + n > limit) {
        if (limit - out.pos <= 0) throw rc.err('match runs past the declared size');
        n = limit - out.pos; // LZMA2 chunk boundary cannot split a match; tolerate at the end
      }
      out.ensure(n);
      const buf = out.buf;
      let from = out.pos - dist - 1;
      let to = out.pos;
      if (dist + 1 >= n) buf.copyWithin(to, from, from + n);
      else for (let i = 0; i < n; i++) buf[to++] = buf[from++];
      out.pos += n;
    }
  }

  private decodeDistance(rc: RangeDecoder, len: number): number {
    const lenState = len < DIST_STATES - 1 ? len : DIST_STATES - 1;
    const slot = rc.bitTree(this.distSlot, lenState * DIST_SLOTS, 6);
    if (slot < 4) return slot;
    const bits = (slot >>> 1) - 1;
    let dist = ((2 | (slot & 1)) << bits) >>> 0; // bits <= 30
    if (slot < DIST_MODEL_END) {
      dist += rc.bitTreeReverse(this.distSpecial, dist - slot - 1, bits);
    } else {
      dist += rc.direct(bits - 4) << 4; // at most 26 direct bits
      dist += rc.bitTreeReverse(this.distAlign, 0, 4);
    }
    return dist >>> 0;
  }
}

/**
 * Decodes an "LZMA alone" (.lzma) stream: 13-byte header (properties byte,
 * u32 dictionary size, u64 uncompressed size or all-ones when unknown) then the
 * range-coded data, ended by the declared size or an end-of-payload marker.
 * Bytes after the end are ignored (Linux appends the uncompressed size).
 * @param max output cap (bytes).
 * @throws ImageError for corrupt data or output above `max`.
 */
export function decodeLzmaAlone(data: Uint8Array, max: number): Uint8Array {
  const what = 'lzma';
  if (data.length < 13) throw new ImageError('corrupt lzma data: header is truncated');
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const dec = new LzmaDecoder(what);
  dec.setProps(data[0], false);
  dec.dictSize = Math.max(4096, dv.getUint32(1, true));
  const size = dv.getBigUint64(5, true);
  const known = size !== 0xffffffffffffffffn;
  if (known && size > BigInt(max))
    throw new ImageError(
      `lzma payload declares ${size} bytes, more than ${Math.floor(max / (1024 * 1024))} MiB (decompression limit)`,
    );
  const out = new Output(
    known ? Math.min(Number(size), Math.max(1 << 20, data.length * 16)) : data.length * 4,
    max,
    what,
  );
  dec.resetState();
  const rc = new RangeDecoder(data, 13, data.length, what);
  rc.init();
  dec.decode(rc, out, known ? Number(size) : undefined, true);
  return out.finish();
}

/** Decodes LZMA2 chunks from data[pos, end). @returns the position after the end-of-data control byte. */
function decodeLzma2(data: Uint8Array, pos: number, end: number, out: Output, dictSize: number): number {
  const what = 'xz';
  const dec = new LzmaDecoder(what);
  dec.dictSize = dictSize;
  let needDictReset = true;
  let needProps = true;
  const err = (why: string) => new ImageError(`corrupt xz data: LZMA2 ${why}`);
  for (;;) {
    if (pos >= end) throw err('stream is truncated');
    const control = data[pos++];
    if (control === 0) return pos;
    if (control === 1 || control === 2) {
      if (pos + 2 > end) throw err('chunk header is truncated');
      const size = ((data[pos] << 8) | data[pos + 1]) + 1;
      pos += 2;
      if (control === 1) {
        dec.dictStart = out.pos;
        needDictReset = false;
      } else if (needDictReset) throw err('first chunk does not reset the dictionary');
      if (pos + size > end) throw err('uncompressed chunk is truncated');
      out.ensure(size);
      out.buf.set(data.subarray(pos, pos + size), out.pos);
      out.pos += size;
      pos += size;
      continue;
    }
    if (control < 0x80) throw err(`invalid control byte ${control}`);
    if (pos + 4 > end) throw err('chunk header is truncated');
    const unpacked = (control & 0x1f) * 65536 + ((data[pos] << 8) | data[pos + 1]) + 1;
    const packed = ((data[pos + 2] << 8) | data[pos + 3]) + 1;
    pos += 4;
    const reset = (control >>> 5) & 3;
    if (reset === 3) {
      dec.dictStart = out.pos;
      needDictReset = false;
    } else if (needDictReset) throw err('first chunk does not reset the dictionary');
    if (reset >= 2) {
      if (pos >= end) throw err('chunk header is truncated');
      dec.setProps(data[pos++], true);
      needProps = false;
    } else if (needProps) throw err('chunk without properties before any properties were set');
    if (reset >= 1) dec.resetState();
    if (pos + packed > end) throw err('compressed chunk is truncated');
    const rc = new RangeDecoder(data, pos, pos + packed, what);
    rc.init();
    const target = out.pos + unpacked;
    out.ensure(unpacked);
    dec.decode(rc, out, target, false);
    if (out.pos !== target) throw err('chunk decoded to the wrong size');
    pos += packed;
  }
}

/**
 * The x86 BCJ decoder: converts the absolute CALL/JMP (E8/E9) targets the
 * encoder wrote back to relative ones. `start` is the filter's start offset.
 */
export function bcjX86Decode(buf: Uint8Array, start = 0): void {
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNum = [0, 1, 2, 2, 3, 3, 3, 3];
  const isMs = (b: number) => b === 0 || b === 0xff;
  if (buf.length <= 4) return;
  const size = buf.length - 4;
  let prevPos = -1;
  let prevMask = 0;
  for (let i = 0; i < size; i++) {
    if ((buf[i] & 0xfe) !== 0xe8) continue;
    const d = i - prevPos;
    if (d > 3) prevMask = 0;
    else {
      prevMask = (prevMask << (d - 1)) & 7;
      if (prevMask !== 0) {
        const b = buf[i + 4 - bitNum[prevMask]];
        if (!allowed[prevMask] || isMs(b)) {
          prevPos = i;
          prevMask = (prevMask << 1) | 1;
          continue;
        }
      }
    }
    prevPos = i;
    if (isMs(buf[i + 4])) {
      let src = (buf[i + 1] | (buf[i + 2] << 8) | (buf[i + 3] << 16) | (buf[i + 4] << 24)) >>> 0;
      let dest: number;
      for (;;) {
        dest = (src - (start + i + 5)) >>> 0;
        if (prevMask === 0) break;
        const j = bitNum[prevMask] * 8;
        const b = (dest >>> (24 - j)) & 0xff;
        if (!isMs(b)) break;
        src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
      }
      dest &= 0x01ffffff;
      if (dest & 0x01000000) dest |= 0xfe000000;
      buf[i + 1] = dest & 0xff;
      buf[i + 2] = (dest >>> 8) & 0xff;
      buf[i + 3] = (dest >>> 16) & 0xff;
      buf[i + 4] = (dest >>> 24) & 0xff;
      i += 4;
    } else prevMask = (prevMask << 1) | 1;
  }
}

/** Reads an xz variable-length integer (up to 9 bytes, 63 bits) as a number. */
function vli(data: Uint8Array, p: { pos: number }, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 9; i++) {
    if (p.pos >= end) throw new ImageError('corrupt xz data: truncated variable-length integer');
    const b = data[p.pos++];
    v += (b & 0x7f) * mul;
    mul *= 128;
    if (!(b & 0x80)) {
      if (i > 0 && b === 0) throw new ImageError('corrupt xz data: non-minimal variable-length integer');
      return v;
    }
  }
  throw new ImageError('corrupt xz data: variable-length integer is too long');
}

const CHECK_SIZES = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

/**
 * Decodes the first stream of an .xz file (stream header, blocks with
 * LZMA2 and optional x86 BCJ filters, index, footer). CRC32 checks are
 * verified; CRC64/SHA-256 checks are skipped. Bytes after the stream are ignored.
 * @param max output cap (bytes).
 * @throws ImageError naming what is corrupt or unsupported (other filters).
 */
export function decodeXz(data: Uint8Array, max: number): Uint8Array {
  const bad = (why: string) => new ImageError(`corrupt xz data: ${why}`);
  if (data.length < 24) throw bad('file is too short');
  const magic = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
  if (!magic.every((m, i) => data[i] === m)) throw bad('bad stream header magic');
  if (crc32(data, 6, 8) !== readU32(data, 8)) throw bad('stream header CRC32 mismatch');
  if (data[6] !== 0 || data[7] > 0x0f) throw bad('unsupported stream flags');
  const checkType = data[7];
  const checkSize = CHECK_SIZES[checkType];
  const out = new Output(data.length * 4, max, 'xz');
  const p = { pos: 12 };
  const end = data.length;
  for (;;) {
    if (p.pos >= end) throw bad('stream is truncated before the index');
    const hsz = data[p.pos];
    if (hsz === 0) break; // index indicator
    const headerSize = (hsz + 1) * 4;
    const hstart = p.pos;
    if (hstart + headerSize > end) throw bad('block header is truncated');
    if (crc32(data, hstart, hstart + headerSize - 4) !== readU32(data, hstart + headerSize - 4))
      throw bad('block header CRC32 mismatch');
    const hend = hstart + headerSize - 4;
    p.pos = hstart + 1;
    const flags = data[p.pos++];
    if (flags & 0x3c) throw bad('unsupported block flags');
    const nFilters = (flags & 3) + 1;
    if (flags & 0x40) vli(data, p, hend);
    let uncompressedSize: number | undefined;
    if (flags & 0x80) uncompressedSize = vli(data, p, hend);
    let dictSize = 0;
    let bcj: number | undefined;
    for (let f = 0; f < nFilters; f++) {
      const id = vli(data, p, hend);
      const psize = vli(data, p, hend);
      if (p.pos + psize > hend) throw bad('filter properties are truncated');
      if (id === 0x21) {
        if (f !== nFilters - 1 || psize !== 1) throw bad('LZMA2 filter must be last with one property byte');
        const b = data[p.pos] & 0x3f;
        if (b > 40) throw bad('LZMA2 dictionary size is invalid');
        dictSize = b === 40 ? 0xffffffff : (2 | (b & 1)) * 2 ** (Math.floor(b / 2) + 11);
      } else if (id === 0x04) {
        if (f === nFilters - 1) throw bad('x86 BCJ filter cannot be last');
        if (psize !== 0 && psize !== 4) throw bad('x86 BCJ filter properties have the wrong size');
        bcj = psize === 4 ? readU32(data, p.pos) : 0;
      } else {
        throw new ImageError(`xz filter ${id} is not supported (only LZMA2 and x86 BCJ)`);
      }
      p.pos += psize;
    }
    if (dictSize === 0) throw bad('block has no LZMA2 filter');
    const blockStart = out.pos;
    const after = decodeLzma2(data, hstart + headerSize, end, out, dictSize);
    const blockOut = out.buf.subarray(blockStart, out.pos);
    if (uncompressedSize !== undefined && blockOut.length !== uncompressedSize)
      throw bad('block size does not match its header');
    if (bcj !== undefined) bcjX86Decode(blockOut, bcj);
    let q = after;
    while ((q - hstart) % 4 !== 0) {
      if (q >= end || data[q] !== 0) throw bad('block padding is not zero');
      q++;
    }
    if (q + checkSize > end) throw bad('block check is truncated');
    if (checkType === 1 && crc32(blockOut) !== readU32(data, q))
      throw bad('block CRC32 does not match the decompressed data');
    p.pos = q + checkSize;
  }
  return out.finish();
}

function readU32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}
