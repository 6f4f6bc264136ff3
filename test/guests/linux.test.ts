/**
 * Debian's stock x86_64 kernel (linux-image-amd64) as a PV domU: it must get
 * through xen_start_kernel and setup_arch (page-table switch, pinning,
 * multicalls, callbacks, memory map, shared_info mapping) to the point
 * where it builds its NUMA node data from the memory map, printing through
 * console_io (DomainConfig.consoleIoWrites, as earlyprintk=xen does).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { fetchDebianFile } from '../helpers/debian';
import { createMachine } from '../../engine/machine';

function kernelPackage(): string {
  const out = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const m = /Depends: (linux-image-[0-9][^\s]*)/.exec(out);
  if (!m) throw new Error(`cannot find the kernel package behind linux-image-amd64:\n${out}`);
  return m[1];
}

describe('guests: Debian Linux x86_64 (PV)', function () {
  this.timeout(900_000);
  it('boots through xen_start_kernel into setup_arch memory initialisation without an oops', async () => {
    const pkg = kernelPackage();
    const kernel = await fetchDebianFile(pkg, `/boot/vmlinuz-${pkg.replace(/^linux-image-/, '')}`);
    let text = '';
    const m = createMachine(
      {
        name: 'linux',
        kernel,
        memory: 512,
        vcpus: 1,
        disks: [],
        vifs: [],
        cmdline: 'console=hvc0 earlyprintk=xen',
        consoleIoWrites: true,
      },
      { onConsoleIo: (d) => (text += Buffer.from(d).toString('latin1')) },
    );
    for (let i = 0; i < 400 && !text.includes('NODE_DATA(0) allocated'); i++) {
      const s = m.run(1_000_000);
      if (s.kind === 'shutdown') break;
    }
    m.destroy();
    assert.match(text, /Linux version/);
    assert.match(text, /Hypervisor detected: Xen PV/);
    assert.match(text, /Xen: \[mem 0x0000000000100000-0x000000001fffffff\] usable/);
    assert.match(text, /NODE_DATA\(0\) allocated/);
    assert.doesNotMatch(text, /BUG:|Oops|Kernel panic/);
  });
});
