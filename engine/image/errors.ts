/**
 * Errors raised while reading kernel images, symbol files and debug information.
 *
 * Every malformed input handled by engine/image (truncated headers, tables that
 * extend beyond the file, bad note sizes, corrupt compressed payloads, images
 * Xen's loader would refuse) surfaces as an {@link ImageError} with a message
 * naming what is wrong, never as a RangeError/TypeError from the parser.
 */
export class ImageError extends Error {
  /**
   * @param message human-readable reason, e.g. "ELF program header 3 extends beyond the file".
   */
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

/**
 * Bounds-checked little-endian reader over a byte array (cold path: image
 * parsing only). Every read that would leave `bytes` throws an ImageError whose
 * message starts with `what`.
 */
export class ByteReader {
  readonly view: DataView;
  /** @param bytes the whole file (or section) being read. */
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /** Length in bytes. */
  get length(): number {
    return this.bytes.length;
  }
  /** Throws ImageError(`${what} extends beyond the ...`) unless [off, off+len) lies inside the bytes. */
  check(off: number, len: number, what: string, container = 'file'): void {
    if (
      !Number.isSafeInteger(off) ||
      !Number.isSafeInteger(len) ||
      off < 0 ||
      len < 0 ||
      off + len > this.bytes.length
    ) {
      throw new ImageError(
        `${what} extends beyond the ${container} (offset ${hex(off)}, ${len} bytes, ${container} is ${this.bytes.length} bytes)`,
      );
    }
  }
  u8(off: number, what = 'read'): number {
    this.check(off, 1, what);
    return this.bytes[off];
  }
  u16(off: number, what = 'read'): number {
    this.check(off, 2, what);
    return this.view.getUint16(off, true);
  }
  u32(off: number, what = 'read'): number {
    this.check(off, 4, what);
    return this.view.getUint32(off, true);
  }
  i32(off: number, what = 'read'): number {
    this.check(off, 4, what);
    return this.view.getInt32(off, true);
  }
  u64(off: number, what = 'read'): bigint {
    this.check(off, 8, what);
    return this.view.getBigUint64(off, true);
  }
}

/** Formats a number or bigint as 0x-prefixed hexadecimal (negative/NaN as decimal). */
export function hex(v: number | bigint): string {
  if (typeof v === 'number' && (!Number.isFinite(v) || v < 0)) return String(v);
  return '0x' + v.toString(16);
}

/**
 * Converts a bigint file quantity (offset/size) to a number, throwing ImageError
 * when it cannot possibly address the file (above 2^53).
 */
export function toSafeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError(`${what} is absurdly large (${hex(v)})`);
  return Number(v);
}

/**
 * Reads a NUL-terminated string starting at `off`, stopping at the first NUL or
 * at `end` (exclusive, clamped to the byte length). Bytes are read as Latin-1
 * so any input decodes without error.
 */
export function readCString(bytes: Uint8Array, off: number, end = bytes.length): string {
  const stop = Math.min(end, bytes.length);
  if (off < 0 || off >= stop) return '';
  let i = off;
  while (i < stop && bytes[i] !== 0) i++;
  return latin1(bytes, off, i);
}

/** Decodes bytes [start, end) as Latin-1 (one char per byte). */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, Array.from(bytes.subarray(i, Math.min(end, i + 8192))));
  }
  return s;
}
