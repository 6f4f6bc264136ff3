/**
 * Debian's stock x86_64 kernel for the guest tests: which package
 * `linux-image-amd64` points at, its bzImage out of the git-ignored cache
 * (test/helpers/debian.ts: `apt-get download` + `dpkg-deb`), and a boot
 * loop that runs the kernel as a 64-bit PV domU until a console line
 * appears.
 */
import { execFileSync } from 'node:child_process';
import { fetchDebianFile } from './debian';
import { createMachine } from '../../engine/machine';
import type { Stop } from '../../engine/machine-api';

/**
 * The versioned kernel package behind the `linux-image-amd64` metapackage
 * (e.g. "linux-image-6.1.0-57-amd64"), from `apt-cache depends`.
 * @throws Error saying what failed (apt-cache missing, no Depends line).
 */
export function debianKernelPackage(): string {
  let out: string;
  try {
    out = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    throw new Error(
      `cannot find Debian's kernel package: 'apt-cache depends linux-image-amd64' failed: ${(e as Error).message}`,
    );
  }
  const m = /Depends: (linux-image-[0-9][^\s]*)/.exec(out);
  if (!m) throw new Error(`cannot find the kernel package behind linux-image-amd64:\n${out}`);
  return m[1];
}

/**
 * Host path of Debian's kernel bzImage (/boot/vmlinuz-<version>), fetched on
 * first use.
 * @throws Error naming the package and the reason when it cannot be fetched.
 */
export async function debianKernel(): Promise<string> {
  const pkg = debianKernelPackage();
  return fetchDebianFile(pkg, `/boot/vmlinuz-${pkg.replace(/^linux-image-/, '')}`);
}

/** What {@link bootLinux} saw. */
export interface LinuxBoot {
  /** console_io (earlyprintk=xen) and hvc0 output, in arrival order, latin1. */
  text: string;
  /** Whether `until` appeared. */
  reached: boolean;
  /** Guest instructions retired when the run stopped. */
  instructions: number;
  /** Host seconds spent in Machine.run (wall clock; reported, not asserted). */
  seconds: number;
  /** The last non-budget stop, if the run ended on one (shutdown, crash, filter). */
  stop?: Stop;
}

/**
 * Boots `kernel` as a 64-bit PV domU (512 MiB, one vCPU, no disks, console_io
 * writes let through as a Xen debug build does) with `ramdisk` as the
 * initramfs, in 1M-instruction slices, until `until` appears on the
 * console, the domain shuts down or crashes, sleeps with nothing to wake it
 * but console input, or `maxInstructions` have been retired.
 */
export function bootLinux(opts: {
  kernel: string;
  ramdisk?: Uint8Array;
  cmdline?: string;
  until: string;
  maxInstructions: number;
}): LinuxBoot {
  let text = '';
  const m = createMachine(
    {
      name: 'linux',
      kernel: opts.kernel,
      ramdisk: opts.ramdisk,
      memory: 512,
      vcpus: 1,
      disks: [],
      vifs: [],
      cmdline: opts.cmdline ?? 'console=hvc0 earlyprintk=xen',
      consoleIoWrites: true,
    },
    { onConsoleIo: (d) => (text += Buffer.from(d).toString('latin1')) },
  );
  m.console.onOutput((d) => (text += Buffer.from(d).toString('latin1')));
  const t0 = process.hrtime.bigint();
  let stop: Stop | undefined;
  let idle = 0;
  try {
    while (!text.includes(opts.until) && m.info.instructionsRetired < opts.maxInstructions) {
      const before = m.info.instructionsRetired;
      const s = m.run(1_000_000);
      // A domain only console input can wake returns at once without retiring anything.
      idle = m.info.instructionsRetired === before ? idle + 1 : 0;
      if (idle > 1000) {
        stop = s;
        break;
      }
      if (s.kind === 'shutdown' || s.kind === 'filter') {
        stop = s;
        break;
      }
      if (s.kind === 'blocked' && s.forever) {
        stop = s;
        break;
      }
    }
    return {
      text,
      reached: text.includes(opts.until),
      instructions: m.info.instructionsRetired,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      stop,
    };
  } finally {
    m.destroy();
  }
}
