import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { XEN_ELFNOTE, loadKernelImage } from '../../engine/image';
import { fetchDebianFileOrSkip } from '../helpers/debian';

/** The versioned kernel package linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64). */
function debianKernelPackage(): string | undefined {
  try {
    const out = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
    return /Depends: (linux-image-\d\S*-amd64)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

describe("engine/image on Debian's stock x86_64 kernel (xz + x86 BCJ bzImage)", function () {
  this.timeout(600_000);

  it('unwraps the bzImage and reads the Linux Xen notes', async function () {
    const pkg = debianKernelPackage();
    if (!pkg) {
      if (process.env.CI) throw new Error('cannot resolve linux-image-amd64 with apt-cache');
      this.skip();
    }
    const version = pkg!.slice('linux-image-'.length);
    const path = await fetchDebianFileOrSkip(this, pkg!, `/boot/vmlinuz-${version}`);
    const img = loadKernelImage(new Uint8Array(readFileSync(path)));
    assert.equal(img.container, 'bzimage');
    assert.equal(img.bits, 64);
    const x = img.xen;
    assert.equal(x.guestOs, 'linux');
    assert.equal(x.xenVersion, 'xen-3.0');
    assert.equal(x.loader, 'generic');
    assert.equal(x.virtBase, 0xffffffff80000000n);
    assert.equal(x.paddrOffset, 0n);
    assert.equal(x.initP2m, 0x8000000000n);
    assert.equal(x.hvStartLow, 0xffff800000000000n);
    assert.equal(x.paeMode, 'extended-cr3');
    assert.ok(x.features.required.has('writable_page_tables'));
    assert.ok(x.features.supported.has('pae_pgdir_above_4gb'));
    assert.ok(x.features.supported.has('dom0'));
    assert.deepEqual(x.l1MfnValid, [1n, 1n]);
    assert.equal(x.suspendCancel, true);
    assert.equal(x.modStartPfn, true);
    assert.ok(x.notes.some((n) => n.type === XEN_ELFNOTE.ENTRY));
    assert.ok(x.entry >= x.virtKstart && x.entry < x.virtKend);
    assert.ok(img.segments.length >= 2);
    // The entry point is startup_xen: its first instruction is `mov %rsi,...` or `cld`; the bytes must lie in a segment.
    const seg = img.segments.find((s) => x.entry >= s.vaddr && x.entry < s.vaddr + BigInt(s.filesz))!;
    assert.ok(seg, 'entry lies inside a loaded segment');
  });
});
