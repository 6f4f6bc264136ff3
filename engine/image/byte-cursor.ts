/**
 * The byte cursor the DWARF readers share (line tables, call-frame
 * information, expressions).
 */
import { ImageError, hex } from './errors';

export const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Bounds-checked little-endian cursor over a byte range [pos, end) of a
 * section (DWARF .debug_line, .eh_frame/.debug_frame, DWARF expressions).
 * Every read past `end` throws ImageError naming `section` and the offset.
 */
export class ByteCursor {
  private readonly dv: DataView;
  constructor(
    readonly b: Uint8Array,
    public pos: number,
    public end: number,
    readonly section: string,
  ) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (end > b.length) this.end = b.length;
  }
  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end)
      throw new ImageError(
        `${this.section}: read of ${n} bytes at ${hex(this.pos)} runs past the end of the data (${hex(this.end)})`,
      );
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++];
  }
  i8(): number {
    this.need(1);
    return (this.b[this.pos++] << 24) >> 24;
  }
  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.b[this.pos] | (this.b[this.pos + 1] << 8) | (this.b[this.pos + 2] << 16);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** Unsigned LEB128 as a number (saturating above 2^53 is an error). */
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * mul;
      mul *= 128;
      if (!(byte & 0x80)) break;
      if (i > 9) throw new ImageError(`${this.section}: LEB128 number at ${hex(this.pos)} is too long`);
    }
    if (!Number.isSafeInteger(result))
      throw new ImageError(`${this.section}: LEB128 number at ${hex(this.pos)} is too large`);
    return result;
  }
  /** Unsigned LEB128 as a bigint (addresses). */
  ulebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; ; i++) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if (!(byte & 0x80)) break;
      if (i > 9) throw new ImageError(`${this.section}: LEB128 number at ${hex(this.pos)} is too long`);
    }
    return result & ((1n << 64n) - 1n);
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    let byte: number;
    let i = 0;
    do {
      byte = this.u8();
      result += (byte & 0x7f) * mul;
      mul *= 128;
      if (++i > 10) throw new ImageError(`${this.section}: LEB128 number at ${hex(this.pos)} is too long`);
    } while (byte & 0x80);
    if (byte & 0x40) result -= mul;
    return result;
  }
  /** Address of `size` bytes (1, 2, 4 or 8). */
  addr(size: number): bigint {
    switch (size) {
      case 1:
        return BigInt(this.u8());
      case 2:
        return BigInt(this.u16());
      case 4:
        return BigInt(this.u32());
      case 8:
        return this.u64();
      default:
        throw new ImageError(`${this.section}: unsupported address size ${size}`);
    }
  }
  /** Offset of the unit's offset size (4 or 8 bytes), as a number. */
  offset(size: 4 | 8): number {
    if (size === 4) return this.u32();
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new ImageError(`${this.section}: offset ${hex(v)} is absurd`);
    return Number(v);
  }
  cstr(): string {
    let i = this.pos;
    while (i < this.end && this.b[i] !== 0) i++;
    if (i >= this.end)
      throw new ImageError(`${this.section}: string at ${hex(this.pos)} is not NUL-terminated`);
    const s = utf8.decode(this.b.subarray(this.pos, i));
    this.pos = i + 1;
    return s;
  }
  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
  /** The next `n` bytes, as a view into the section. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
}
