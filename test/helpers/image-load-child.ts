/**
 * Child process for the image-loading memory tests: loads one file with
 * loadKernelImage (or decompresses it with `decompress`) and prints one JSON
 * line: {ok, errorName, message, baseMiB, peakMiB, growthMiB}, where peakMiB
 * is the process's peak RSS (getrusage ru_maxrss) after loading and baseMiB
 * the peak before it (with the input already read).
 *
 * usage: node -r tsx/cjs test/helpers/image-load-child.ts FILE [CAP_BYTES] [FORMAT]
 */
import { readFileSync } from 'node:fs';
import {
  decompress,
  loadKernelImage,
  MAX_DECOMPRESSED_BYTES,
  type CompressionFormat,
} from '../../engine/image';

const [file, capArg, format] = process.argv.slice(2);
const bytes = new Uint8Array(readFileSync(file));
const cap = capArg ? Number(capArg) : MAX_DECOMPRESSED_BYTES;
const base = process.resourceUsage().maxRSS / 1024;
let result: Record<string, unknown>;
try {
  if (format) decompress(format as CompressionFormat, bytes, cap);
  else loadKernelImage(bytes, cap);
  result = { ok: true };
} catch (e) {
  result = { ok: false, errorName: (e as Error).constructor.name, message: (e as Error).message };
}
const peak = process.resourceUsage().maxRSS / 1024;
process.stdout.write(
  JSON.stringify({
    ...result,
    baseMiB: Math.round(base),
    peakMiB: Math.round(peak),
    growthMiB: Math.round(peak - base),
  }) + '\n',
);
