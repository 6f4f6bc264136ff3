/**
 * bzImage recognition and payload location, as libxenguest's
 * xg_dom_bzimageloader.c does it (x86 boot protocol, Linux
 * Documentation/arch/x86/boot.rst: setup header fields).
 */
import { ByteReader, ImageError, hex } from './errors';
import { CompressionFormat, detectCompression } from './decompress';

/** Where a bzImage keeps its compressed vmlinux. */
export interface BzImageInfo {
  /** Boot protocol version (u16 at 0x206), e.g. 0x020f. */
  protocolVersion: number;
  /** setup_sects (u8 at 0x1F1); 0 is not special-cased, as in libxenguest. */
  setupSects: number;
  /** payload_offset (u32 at 0x248), relative to the end of the setup code. */
  payloadOffset: number;
  /** File offset of the payload: (setup_sects + 1) * 512 + payload_offset (bytes). */
  payloadStart: number;
  /** payload_length (u32 at 0x24C), bytes. */
  payloadLength: number;
  /** Compression identified from the payload's magic, if any. */
  compression: CompressionFormat | undefined;
}

/** True when `bytes` carries the "HdrS" setup-header signature at 0x202. */
export function hasBzImageSignature(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 0x206 &&
    bytes[0x202] === 0x48 &&
    bytes[0x203] === 0x64 &&
    bytes[0x204] === 0x72 &&
    bytes[0x205] === 0x53
  );
}

/**
 * Reads the setup header of a bzImage.
 * @returns undefined when there is no "HdrS" signature (not a bzImage).
 * @throws ImageError when the boot protocol is older than 2.08 (no payload
 *   fields), the header is truncated, or the payload lies outside the file.
 */
export function parseBzImage(bytes: Uint8Array): BzImageInfo | undefined {
  if (!hasBzImageSignature(bytes)) return undefined;
  const r = new ByteReader(bytes);
  const protocolVersion = r.u16(0x206, 'bzImage setup header');
  if (protocolVersion < 0x0208)
    throw new ImageError(
      `bzImage boot protocol ${hex(protocolVersion)} is older than 2.08 and has no payload fields`,
    );
  if (bytes.length < 0x250)
    throw new ImageError(`bzImage setup header is truncated (${bytes.length} bytes, need 0x250)`);
  const setupSects = r.u8(0x1f1);
  const payloadOffset = r.u32(0x248);
  const payloadLength = r.u32(0x24c);
  const payloadStart = (setupSects + 1) * 512 + payloadOffset;
  if (payloadStart >= bytes.length)
    throw new ImageError(
      `bzImage payload offset ${hex(payloadStart)} is beyond the end of the file (${hex(bytes.length)} bytes)`,
    );
  if (payloadStart + payloadLength > bytes.length)
    throw new ImageError(
      `bzImage payload (${hex(payloadLength)} bytes at ${hex(payloadStart)}) extends beyond the end of the file (${hex(bytes.length)} bytes)`,
    );
  const compression = detectCompression(bytes.subarray(payloadStart, payloadStart + payloadLength));
  return { protocolVersion, setupSects, payloadOffset, payloadStart, payloadLength, compression };
}

/** The payload bytes of a parsed bzImage (a view into `bytes`). */
export function bzImagePayload(bytes: Uint8Array, info: BzImageInfo): Uint8Array {
  return bytes.subarray(info.payloadStart, info.payloadStart + info.payloadLength);
}
