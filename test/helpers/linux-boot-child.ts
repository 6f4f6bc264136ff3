/**
 * Child-process entry for {@link bootLinuxBundled} (test/helpers/linux-boot-bundled.ts):
 * bundled by esbuild, run with `node`. Reads one JSON request on stdin
 * (`kernel` path, `ramdisk` path or null, `cmdline`, `until`,
 * `maxInstructions`), boots with bootLinux (test/helpers/linux-debian.ts)
 * and writes the LinuxBoot result as one JSON document on stdout (bigints
 * as "0x..." strings).
 */
import { readFileSync } from 'node:fs';
import { bootLinux } from './linux-debian';

const req = JSON.parse(readFileSync(0, 'utf8')) as {
  kernel: string;
  ramdisk: string | null;
  cmdline?: string;
  until: string;
  maxInstructions: number;
};
const r = bootLinux({
  kernel: req.kernel,
  ramdisk: req.ramdisk ? new Uint8Array(readFileSync(req.ramdisk)) : undefined,
  cmdline: req.cmdline,
  until: req.until,
  maxInstructions: req.maxInstructions,
});
process.stdout.write(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)));
