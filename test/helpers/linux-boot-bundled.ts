/**
 * Runs {@link bootLinux} in a child `node` process on the engine bundled by
 * esbuild, as the CLI and the adapter ship it (and as `npm run bench` runs
 * it): through tsx each module is compiled on its own, so every read of an
 * imported constant in the hot loops is a getter call, and a boot of
 * Debian's kernel to /init takes about 1.6 times as long. The bundle goes to
 * the git-ignored `.cache/linux/`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { REPO_ROOT } from './debian';
import type { LinuxBoot } from './linux-debian';

/**
 * Boots `kernel` with `ramdisk` (see bootLinux for the machine) in a child
 * process until `until` appears or `maxInstructions` retire. The bundle and
 * the ramdisk are written to `.cache/linux/` for the child and removed after. `seconds` is the child's time in
 * Machine.run; `stop` arrives JSON-decoded (bigints as "0x..." strings).
 * @throws Error with the child's exit status and stderr when it fails.
 */
export function bootLinuxBundled(opts: {
  kernel: string;
  ramdisk?: Uint8Array;
  cmdline?: string;
  until: string;
  maxInstructions: number;
}): LinuxBoot {
  const dir = join(REPO_ROOT, '.cache', 'linux');
  mkdirSync(dir, { recursive: true });
  const script = join(dir, `boot-child-${process.pid}.js`);
  buildSync({
    entryPoints: [join(__dirname, 'linux-boot-child.ts')],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile: script,
    logLevel: 'warning',
  });
  let ramdisk: string | null = null;
  if (opts.ramdisk) {
    ramdisk = join(dir, `initramfs-${process.pid}.cpio`);
    writeFileSync(ramdisk, opts.ramdisk);
  }
  const req = {
    kernel: opts.kernel,
    ramdisk,
    cmdline: opts.cmdline,
    until: opts.until,
    maxInstructions: opts.maxInstructions,
  };
  let r;
  try {
    r = spawnSync(process.execPath, [script], {
      input: JSON.stringify(req),
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
  } finally {
    rmSync(script, { force: true });
    if (ramdisk) rmSync(ramdisk, { force: true });
  }
  if (r.status !== 0 || r.error) {
    throw new Error(
      `Linux boot child failed (status ${r.status}, signal ${r.signal}): ${r.error?.message ?? ''}\n${r.stderr.slice(-4000)}`,
    );
  }
  return JSON.parse(r.stdout) as LinuxBoot;
}
