/**
 * Guest benchmarks for `npm run bench` (section "guest"):
 *  - grub.x86_64.rssMiBAtPrompt / grub.i386.rssMiBAtPrompt: process RSS (MiB)
 *    when that GRUB (256 MiB guest) reaches its prompt
 *  - grub.x86_64.secondsToPrompt / grub.i386.secondsToPrompt: wall-clock
 *    seconds from createMachine to GRUB's `grub>` prompt on the console
 *    (Debian grub-xen-host, fetched into .cache/debian/ on first use);
 *  - xen.hypercallsPerSecond: a 64-bit test guest issuing xen_version(0)
 *    in a tight loop (hypercalls completed per wall-clock second).
 */
import { fetchDebianFile } from '../cli/debian';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createMachine } from '../engine/machine';
import { buildXenGuest } from '../test/helpers/xen-guest';

const repoRoot = path.resolve(__dirname, '..');

function grubPath(file: string): string {
  return fetchDebianFile(repoRoot, 'grub-xen-host', `/usr/lib/grub-xen/${file}`);
}

/** Resident set size of this process (MiB) when the last GRUB reached its prompt. */
let rssAtPromptMiB = 0;

function secondsToPrompt(file: string): number {
  const t0 = performance.now();
  const m = createMachine({
    name: 'grub',
    kernel: grubPath(file),
    memory: 256,
    vcpus: 1,
    disks: [],
    vifs: [],
  });
  let out = '';
  m.console.onOutput((d) => (out += Buffer.from(d).toString('latin1')));
  while (!out.includes('grub>')) {
    const s = m.run(1_000_000);
    if (s.kind === 'shutdown') throw new Error(`GRUB stopped before its prompt: ${s.description}`);
    if (m.info.instructionsRetired > 2_000_000_000) throw new Error('GRUB did not reach its prompt');
  }
  const t = (performance.now() - t0) / 1000;
  rssAtPromptMiB = process.memoryUsage().rss / (1 << 20);
  m.destroy();
  return t;
}

function hypercallsPerSecond(): number {
  const n = 200_000;
  const kernel = buildXenGuest({
    bits: 64,
    asm: `
_start:
  lea stack_top(%rip), %rsp
  mov $${n}, %r12d
1:
  xor %edi, %edi
  xor %esi, %esi
  HYPERCALL 17
  dec %r12d
  jnz 1b
  SHUTDOWN 0
`,
  });
  const m = createMachine({ name: 'hc', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
  const t0 = performance.now();
  for (;;) {
    const s = m.run(10_000_000);
    if (s.kind === 'shutdown') break;
  }
  const t = (performance.now() - t0) / 1000;
  const count = m.env.count;
  m.destroy();
  return count / t;
}

export const guestSection = {
  name: 'guest',
  run(): Record<string, number> {
    const out: Record<string, number> = {};
    const r = (v: number) => Math.round(v * 100) / 100;
    out['grub.x86_64.secondsToPrompt'] = r(secondsToPrompt('grub-x86_64-xen.bin'));
    console.log(`grub.x86_64.secondsToPrompt ${out['grub.x86_64.secondsToPrompt']}`);
    out['grub.x86_64.rssMiBAtPrompt'] = Math.round(rssAtPromptMiB);
    console.log(`grub.x86_64.rssMiBAtPrompt ${out['grub.x86_64.rssMiBAtPrompt']}`);
    out['grub.i386.secondsToPrompt'] = r(secondsToPrompt('grub-i386-xen.bin'));
    console.log(`grub.i386.secondsToPrompt ${out['grub.i386.secondsToPrompt']}`);
    out['grub.i386.rssMiBAtPrompt'] = Math.round(rssAtPromptMiB);
    console.log(`grub.i386.rssMiBAtPrompt ${out['grub.i386.rssMiBAtPrompt']}`);
    out['xen.hypercallsPerSecond'] = Math.round(hypercallsPerSecond());
    console.log(`xen.hypercallsPerSecond ${out['xen.hypercallsPerSecond']}`);
    return out;
  },
};
