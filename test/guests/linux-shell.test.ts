/**
 * Debian's Linux 6.1 into user space (issue 11, first part): the busybox
 * initramfs /init (a `#!/bin/sh` script run by busybox-static's ash) mounts
 * proc/sysfs/devtmpfs, runs a few commands on hvc0 (fork+exec of busybox
 * applets, a pipe, shell arithmetic, /proc/cpuinfo) and powers off. Before
 * the TLB flush on page-type change (engine/xen/mm/index.ts, Xen
 * _get_page_type), exec of /init failed in xen_pgd_pin with "Bad type (saw
 * writable != exp l4)". Packages come from apt-get download
 * (test/helpers/debian.ts); in CI a fetch failure fails with the package's
 * name, never a skip.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { debianKernel } from '../helpers/linux-debian';
import { fetchDebianFile } from '../helpers/debian';
import { bootLinuxBundled } from '../helpers/linux-boot-bundled';
import { cpioNewc, S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, type CpioEntry } from '../helpers/linux-initramfs';

/** The /init script: every command through /bin/busybox (no applet links needed). */
const INIT = [
  '#!/bin/sh',
  'B=/bin/busybox',
  '$B mount -t proc proc /proc',
  '$B mount -t sysfs sysfs /sys',
  '$B mount -t devtmpfs devtmpfs /dev',
  'echo "pvscope-shell: start"',
  '$B uname -a',
  '$B cat /proc/cpuinfo | $B grep -m1 "^flags"',
  'echo "answer=$((6*7))"',
  'echo "pvscope-shell: done"',
  '$B poweroff -f',
  '',
].join('\n');

describe('guests: Debian Linux user space (busybox shell on hvc0)', function () {
  this.timeout(900_000);

  it('runs /init under busybox sh: uname, a pipe over /proc/cpuinfo, shell arithmetic', async () => {
    const kernel = await debianKernel();
    const busybox = readFileSync(await fetchDebianFile('busybox-static', '/bin/busybox'));
    const dir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
    const ramdisk = cpioNewc([
      dir('bin'),
      dir('dev'),
      { name: 'dev/console', mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 },
      dir('proc'),
      dir('sys'),
      { name: 'bin/busybox', mode: S_IFREG | 0o755, data: busybox },
      { name: 'bin/sh', mode: S_IFLNK | 0o777, data: Buffer.from('busybox', 'latin1') },
      { name: 'init', mode: S_IFREG | 0o755, data: Buffer.from(INIT, 'latin1') },
    ]);
    const r = bootLinuxBundled({
      kernel,
      ramdisk,
      until: 'pvscope-shell: marker never printed',
      maxInstructions: 5_000_000_000,
    });
    console.log(
      `      Linux to poweroff -f from /init: ${(r.instructions / 1e9).toFixed(2)} G instructions, ${r.seconds.toFixed(1)} s`,
    );
    const i = r.text.indexOf('Run /init as init process');
    const user = i < 0 ? '' : r.text.slice(i);
    const tail = r.text.slice(-3000);
    assert.ok(i >= 0, `no "Run /init as init process"; console ends:\n${tail}`);
    assert.doesNotMatch(user, /Bad type|Kernel panic|Oops|general protection|segfault/, user);
    assert.match(user, /pvscope-shell: start/, user);
    assert.match(user, /Linux \S+ 6\.1\.\S+ .*x86_64/, user);
    assert.match(user, /flags\s*: .*\bfpu\b.*\bsse2\b/, user);
    assert.match(user, /answer=42/, user);
    assert.match(user, /pvscope-shell: done/, user);
    // `poweroff -f`: reboot(2) -> SCHEDOP_shutdown(poweroff) ends the run.
    assert.deepEqual(
      [r.stop?.kind, (r.stop as { reason?: string } | undefined)?.reason],
      ['shutdown', 'poweroff'],
      JSON.stringify(r.stop),
    );
  });
});
