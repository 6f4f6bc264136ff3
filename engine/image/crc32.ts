/** CRC-32 as gzip (RFC 1952) and xz use it: IEEE 802.3 polynomial, reflected, initial and final XOR 0xFFFFFFFF. */
let table: Uint32Array | undefined;

/**
 * CRC-32 of `data[start, end)`.
 * @returns the CRC as an unsigned 32-bit number.
 */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const t = table;
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
