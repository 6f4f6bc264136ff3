/**
 * Kernel file unwrapping in libxenguest's probe order
 * (xg_dom_bzimageloader.c, xc_dom_try_gunzip): bzImage payload, gzip-compressed
 * ELF, plain ELF.
 */
import { bzImagePayload, parseBzImage } from './bzimage';
import { CompressionFormat, MAX_DECOMPRESSED_BYTES, decompress, detectCompression } from './decompress';
import { isElf } from './elf';
import { ImageError } from './errors';

/** How the ELF was wrapped in the input file. */
export type ImageContainer = 'elf' | 'compressed-elf' | 'bzimage';

/** Result of unwrapping: the ELF bytes and how they were stored. */
export interface UnwrappedImage {
  elfBytes: Uint8Array;
  container: ImageContainer;
  compression?: CompressionFormat;
}

/**
 * Unwraps a kernel file to its ELF bytes, in libxenguest's probe order: a
 * bzImage ("HdrS", protocol >= 2.08) gives its payload, decompressed by magic;
 * a gzip-compressed file is gunzipped; a plain ELF is returned as is.
 * @param maxDecompressed output cap in bytes (default 512 MiB).
 * @throws ImageError: not a kernel format, unknown or unsupported (lzo)
 *   compression, corrupt data, output above the cap, payload not an ELF.
 */
export function unwrapKernelImage(
  bytes: Uint8Array,
  maxDecompressed = MAX_DECOMPRESSED_BYTES,
): UnwrappedImage {
  const bz = parseBzImage(bytes);
  if (bz) {
    if (!bz.compression) throw new ImageError('bzImage payload: unknown compression format');
    const out = decompress(bz.compression, bzImagePayload(bytes, bz), maxDecompressed);
    if (!isElf(out))
      throw new ImageError(`bzImage payload (${bz.compression}) does not decompress to an ELF file`);
    return { elfBytes: out, container: 'bzimage', compression: bz.compression };
  }
  if (isElf(bytes)) return { elfBytes: bytes, container: 'elf' };
  if (detectCompression(bytes) === 'gzip') {
    // libxenguest gunzips any gzip-compressed kernel (xc_dom_try_gunzip); other formats only inside a bzImage.
    const out = decompress('gzip', bytes, maxDecompressed);
    if (!isElf(out)) throw new ImageError('gzip-compressed kernel does not decompress to an ELF file');
    return { elfBytes: out, container: 'compressed-elf', compression: 'gzip' };
  }
  if (bytes.length < 4) throw new ImageError(`kernel image is too short (${bytes.length} bytes)`);
  throw new ImageError('kernel image is neither an ELF file, a gzip-compressed ELF file nor a bzImage');
}
