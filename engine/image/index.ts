/**
 * Kernel image loading: unwrap (bzImage, gzip-compressed ELF), parse the ELF,
 * read the Xen notes, compute the load segments, collect symbols.
 *
 * Follows libxenguest's probe order (xg_dom_bzimageloader.c, then the ELF
 * loader xg_dom_elfloader.c over libelf) and the rules in the project's Xen PV
 * ABI brief §1.1-1.3.
 */
import { bzImagePayload, parseBzImage } from './bzimage';
import { CompressionFormat, MAX_DECOMPRESSED_BYTES, decompress, detectCompression } from './decompress';
import { ElfFile, isElf, parseElf } from './elf';
import { ImageError } from './errors';
import { SymbolTable } from './symbols';
import { LoadSegment, XenImageInfo, readXenImage } from './xen-notes';

export { ImageError } from './errors';
export * from './elf';
export * from './xen-notes';
export * from './bzimage';
export * from './decompress';
export * from './symbols';
export * from './dwarf';
export { decodeXz, decodeLzmaAlone, bcjX86Decode } from './xz';
export { crc32 } from './crc32';

/** How the ELF was wrapped in the input file. */
export type ImageContainer = 'elf' | 'compressed-elf' | 'bzimage';

/** A kernel image ready for the domain builder and the debugger. */
export interface LoadedImage {
  /** The (unwrapped) ELF file. */
  elf: ElfFile;
  /** 32 (ELF32, EM_386, PAE guest) or 64 (ELF64, EM_X86_64). */
  bits: 32 | 64;
  /** Xen notes with libelf's defaults applied. */
  xen: XenImageInfo;
  /** PT_LOAD segments with guest virtual addresses; copy `filesz` bytes from `elf.bytes` at `fileOffset`, zero to `memsz`. */
  segments: LoadSegment[];
  /** Function/object symbols of the ELF (empty when stripped). */
  symbols: SymbolTable;
  /** What wrapped the ELF in the input. */
  container: ImageContainer;
  /** Compression of the ELF in the input, if any. */
  compression?: CompressionFormat;
}

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

/**
 * Loads a PV kernel image (synchronous): unwrap bzImage/gzip, parse the ELF,
 * read the Xen notes (or `__xen_guest`), apply libelf's acceptance checks,
 * compute the segments and collect symbols.
 *
 * @param bytes the kernel file (ELF, gzip-compressed ELF or bzImage).
 * @param maxDecompressed output cap for decompression in bytes (default 512 MiB).
 * @returns the image, ready for the domain builder.
 * @throws ImageError for malformed input or an image Xen would refuse (the
 *   message says why; refusals start with "Xen would refuse this image:").
 */
export function loadKernelImage(bytes: Uint8Array, maxDecompressed = MAX_DECOMPRESSED_BYTES): LoadedImage {
  const u = unwrapKernelImage(bytes, maxDecompressed);
  const elf = parseElf(u.elfBytes);
  const { xen, segments } = readXenImage(elf);
  return {
    elf,
    bits: elf.header.bits,
    xen,
    segments,
    symbols: SymbolTable.fromElf(elf, { source: 'kernel' }),
    container: u.container,
    compression: u.compression,
  };
}
export * from './cfi';
