/**
 * Assembles GNU `as` source (AT&T syntax unless the source says otherwise)
 * into a flat binary linked at a fixed address, for tests that run real
 * code on the engine's CPU. Uses the host toolchain (`as`, `ld`); results
 * are cached per process by source text.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cache = new Map<string, Uint8Array>();

/**
 * @param source assembly text; `.code32`/`.code64` directives may switch modes inside it
 * @param origin link address of the first byte (bytes)
 * @param bits 32 (as --32, ld -m elf_i386) or 64
 * @returns the bytes of .text (and .data if any) laid out from `origin`
 * @throws Error with the tool's stderr when assembling or linking fails
 */
export function assembleFlat(source: string, origin: number, bits: 32 | 64 = 32): Uint8Array {
  const key = `${bits}:${origin}:${source}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-asm-'));
  try {
    const src = join(dir, 't.s');
    const obj = join(dir, 't.o');
    const bin = join(dir, 't.bin');
    writeFileSync(src, source + '\n');
    const run = (cmd: string, args: string[]) => {
      try {
        execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        const err = e as { stderr?: Buffer };
        throw new Error(`${cmd} failed: ${err.stderr?.toString() ?? String(e)}`);
      }
    };
    run('as', [bits === 32 ? '--32' : '--64', '-o', obj, src]);
    run('ld', [
      '-m',
      bits === 32 ? 'elf_i386' : 'elf_x86_64',
      `-Ttext=0x${origin.toString(16)}`,
      '--oformat',
      'binary',
      '-o',
      bin,
      obj,
    ]);
    const out = new Uint8Array(readFileSync(bin));
    cache.set(key, out);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
