/**
 * Kernel image loading: unwrap (bzImage, gzip-compressed ELF), parse the ELF,
 * read the Xen notes, compute the load segments, collect symbols.
 *
 * Follows libxenguest's probe order (xg_dom_bzimageloader.c, then the ELF
 * loader xg_dom_elfloader.c over libelf) and the rules in the project's Xen PV
 * ABI brief §1.1-1.3.
 */
import { CompressionFormat, MAX_DECOMPRESSED_BYTES } from './decompress';
import { ElfFile, parseElf } from './elf';
import { SymbolTable } from './symbols';
import { ImageContainer, unwrapKernelImage } from './unwrap';
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
export * from './debug-info';
export * from './unwrap';
