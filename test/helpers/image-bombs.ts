/**
 * Decompression bombs for the image loader's tests: an ELF header followed by
 * `zeroBytes` zeros, compressed in every format the loader reads, built
 * directly (no compressor run) so that a multi-GiB bomb costs milliseconds.
 *
 * - gzip: RFC 1951 blocks by hand: a stored block with the ELF header, then
 *   repeated units of [fixed-Huffman block of length-258 / distance-1 matches,
 *   empty stored block] (each unit ends byte-aligned, so it repeats as bytes):
 *   about 6.4 KiB per MiB of output.
 * - zstd: RFC 8878 frame of a raw block (the header) and RLE blocks of 128 KiB.
 * - lz4: Linux's legacy frame; each 8 MiB block is one literal and one match.
 * - bzip2, xz, lzma: a real compressor on a small input (those formats cannot be
 *   repeated as bytes), so these bombs are small; tests use a small cap.
 */
import { compressWith } from './image-build';

/** A minimal ELF64 header (EM_X86_64), enough for isElf(). */
export function elfHeader64(): Uint8Array {
  const h = new Uint8Array(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  const dv = new DataView(h.buffer);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 62, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setUint16(52, 64, true);
  return h;
}

class BitWriter {
  bytes: number[] = [];
  cur = 0;
  n = 0;
  /** Writes `count` bits of `v`, least significant first (deflate's order for header and extra bits). */
  bits(v: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.cur |= ((v >>> i) & 1) << this.n;
      if (++this.n === 8) this.flush();
    }
  }
  /** Writes a Huffman code, most significant bit first. */
  code(v: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.bits((v >>> i) & 1, 1);
  }
  align(): void {
    if (this.n > 0) this.flush();
  }
  private flush(): void {
    this.bytes.push(this.cur);
    this.cur = 0;
    this.n = 0;
  }
}

/** Raw deflate stream: stored block with `prefix`, then matches giving about `zeroBytes` zeros, then a final empty block. */
function deflateBomb(prefix: Uint8Array, zeroBytes: number): Uint8Array {
  const head = new BitWriter();
  head.bits(0, 1);
  head.bits(0, 2); // stored
  head.align();
  head.bits(prefix.length, 16);
  head.bits(~prefix.length & 0xffff, 16);
  const headBytes = [...head.bytes, ...prefix];
  // One unit: ~1 MiB of zeros as 4064 matches of 258 at distance 1 (the previous byte is a zero of the prefix).
  const perUnit = 4064;
  const unit = new BitWriter();
  unit.bits(0, 1);
  unit.bits(1, 2); // fixed Huffman
  for (let i = 0; i < perUnit; i++) {
    unit.code(0b11000101, 8); // length code 285 (258)
    unit.code(0, 5); // distance code 0 (1)
  }
  unit.code(0, 7); // end of block
  unit.bits(0, 1);
  unit.bits(0, 2); // empty stored block: byte-aligns the unit
  unit.align();
  unit.bits(0, 16);
  unit.bits(0xffff, 16);
  const unitBytes = Uint8Array.from(unit.bytes);
  const units = Math.ceil(zeroBytes / (perUnit * 258));
  const tail = new BitWriter();
  tail.bits(1, 1);
  tail.bits(1, 2);
  tail.code(0, 7);
  tail.align();
  const out = new Uint8Array(headBytes.length + units * unitBytes.length + tail.bytes.length);
  out.set(headBytes, 0);
  for (let u = 0; u < units; u++) out.set(unitBytes, headBytes.length + u * unitBytes.length);
  out.set(tail.bytes, headBytes.length + units * unitBytes.length);
  return out;
}

/**
 * Raw deflate stream at deflate's best ratio (about 1030:1, what `gzip -9` gives
 * for zeros): a stored block with `prefix` (which must end in a zero byte),
 * then one dynamic-Huffman block whose lit/len code gives symbol 285 (length
 * 258) a 1-bit code and whose single distance code (distance 1) has 1 bit, so
 * each 258 zeros cost 2 zero bits; then end of block.
 */
function deflateBombDynamic(prefix: Uint8Array, zeroBytes: number): Uint8Array {
  const w = new BitWriter();
  w.bits(0, 1);
  w.bits(0, 2); // stored
  w.align();
  w.bits(prefix.length, 16);
  w.bits(~prefix.length & 0xffff, 16);
  w.align();
  const head = [...w.bytes, ...prefix];
  const h = new BitWriter();
  h.bits(1, 1); // BFINAL
  h.bits(2, 2); // dynamic Huffman
  h.bits(286 - 257, 5); // HLIT
  h.bits(0, 5); // HDIST: one distance code
  h.bits(18 - 4, 4); // HCLEN: code-length codes up to symbol 1 in the RFC 1951 order
  const order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
  for (const sym of order) h.bits(sym === 0 || sym === 1 || sym === 2 || sym === 18 ? 2 : 0, 3);
  // Code-length codes (canonical, all of length 2): 0 -> 00, 1 -> 01, 2 -> 10, 18 -> 11.
  const cl = (sym: number) => h.code({ 0: 0, 1: 1, 2: 2, 18: 3 }[sym]!, 2);
  const zeros = (n: number) => {
    while (n > 0) {
      const k = Math.min(n, 138);
      cl(18);
      h.bits(k - 11, 7);
      n -= k;
    }
  };
  cl(2); // literal 0: length 2
  zeros(255); // literals 1..255
  cl(2); // 256 (end of block): length 2
  zeros(28); // 257..284
  cl(1); // 285: length 1
  cl(1); // distance code 0: length 1
  // Lit/len codes: 285 -> 0, 0 -> 10, 256 -> 11; distance 0 -> 0. Matches are two zero bits each.
  const matches = Math.ceil(zeroBytes / 258);
  const matchBits = matches * 2;
  const hdr = Uint8Array.from(h.bytes);
  const pending = (h as unknown as { n: number; cur: number }).n;
  const totalBits = pending + matchBits + 2; // + end of block
  const out = new Uint8Array(head.length + hdr.length + Math.ceil(totalBits / 8) + 1);
  out.set(head, 0);
  out.set(hdr, head.length);
  // The partial byte of the header, then zero bits, then the end-of-block code "11" (MSB first: 1, 1).
  const base = head.length + hdr.length;
  const cur = (h as unknown as { cur: number }).cur;
  out[base] = cur;
  const eobBit = pending + matchBits;
  for (let b = eobBit; b < eobBit + 2; b++) out[base + (b >>> 3)] |= 1 << (b & 7);
  return out.subarray(0, base + Math.ceil(totalBits / 8));
}

/**
 * gzip member whose deflate body is ELF header + about `zeroBytes` zeros at
 * deflate's best ratio: 3 GiB of zeros in a 3 MiB file (trailer CRC not valid).
 */
export function gzipBombDense(zeroBytes: number): Uint8Array {
  const body = deflateBombDynamic(elfHeader64(), zeroBytes);
  const out = new Uint8Array(10 + body.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  out.set(body, 10);
  return out;
}

/** gzip member (RFC 1952) whose body inflates to the ELF header + about `zeroBytes` zeros (trailer CRC not valid). */
export function gzipBomb(zeroBytes: number): Uint8Array {
  const body = deflateBomb(elfHeader64(), zeroBytes);
  const out = new Uint8Array(10 + body.length + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  out.set(body, 10);
  return out;
}

/** zstd frame (8 MiB window, no content size): raw block with the ELF header, then RLE blocks of zeros. */
export function zstdBomb(zeroBytes: number, windowDescriptor = 0x68): Uint8Array {
  const hdr = elfHeader64();
  const blocks = Math.ceil(zeroBytes / 131072);
  const out = new Uint8Array(6 + 3 + hdr.length + blocks * 4);
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, windowDescriptor]);
  let p = 6;
  const blockHeader = (last: boolean, type: number, size: number) => {
    const v = (size << 3) | (type << 1) | (last ? 1 : 0);
    out[p++] = v & 0xff;
    out[p++] = (v >>> 8) & 0xff;
    out[p++] = (v >>> 16) & 0xff;
  };
  blockHeader(false, 0, hdr.length);
  out.set(hdr, p);
  p += hdr.length;
  for (let b = 0; b < blocks; b++) {
    blockHeader(b === blocks - 1, 1, 131072);
    out[p++] = 0;
  }
  return out;
}

/** Linux lz4 legacy frame: a block with the ELF header as literals, then 8 MiB blocks of zeros. */
export function lz4Bomb(zeroBytes: number): Uint8Array {
  const hdr = elfHeader64();
  const first = [0xf0, hdr.length - 15, ...hdr];
  const BLOCK = 8 * 1024 * 1024;
  const zero: number[] = [0x1f, 0x00, 0x01, 0x00];
  let rest = BLOCK - 1 - 4 - 15;
  while (rest >= 255) {
    zero.push(255);
    rest -= 255;
  }
  zero.push(rest);
  const blocks = Math.ceil(zeroBytes / BLOCK);
  const out = new Uint8Array(4 + 4 + first.length + blocks * (4 + zero.length));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x184c2102, true);
  let p = 4;
  dv.setUint32(p, first.length, true);
  out.set(first, p + 4);
  p += 4 + first.length;
  for (let b = 0; b < blocks; b++) {
    dv.setUint32(p, zero.length, true);
    out.set(zero, p + 4);
    p += 4 + zero.length;
  }
  return out;
}

/** ELF header + `zeroBytes` zeros through a command-line compressor (keep `zeroBytes` small: tens of MiB). */
export function cliBomb(cmd: string[], zeroBytes: number): Uint8Array {
  const data = new Uint8Array(64 + zeroBytes);
  data.set(elfHeader64());
  return compressWith(cmd, data);
}
