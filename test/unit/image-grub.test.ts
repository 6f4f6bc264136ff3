import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PT_LOAD, PT_NOTE, loadKernelImage } from '../../engine/image';
import { fetchDebianFileOrSkip } from '../helpers/debian';

/** Debian's PV GRUB images (package grub-xen-host), as the project's Xen PV ABI brief §1.1 describes them. */
describe('engine/image on Debian PV GRUB images', function () {
  this.timeout(300_000);

  it('grub-x86_64-xen.bin: ELF64, GUEST_OS GRUB, entry 0, VIRT_BASE 0, the two PT_LOADs', async function () {
    const path = await fetchDebianFileOrSkip(this, 'grub-xen-host', '/usr/lib/grub-xen/grub-x86_64-xen.bin');
    const img = loadKernelImage(new Uint8Array(readFileSync(path)));
    assert.equal(img.bits, 64);
    assert.equal(img.container, 'elf');
    const x = img.xen;
    assert.equal(x.guestOs, 'GRUB');
    assert.equal(x.loader, 'generic');
    assert.equal(x.xenVersion, 'xen-3.0');
    assert.equal(x.entry, 0n);
    assert.equal(x.virtBase, 0n);
    assert.equal(x.hypercallPage, undefined);
    assert.equal(x.paeMode, undefined);
    assert.equal(x.guestType, 'xen-3.0-x86_64');
    // ENTRY and VIRT_BASE are 8-byte notes here.
    assert.equal(x.notes.find((n) => n.name === 'ENTRY')!.descsz, 8);
    assert.equal(x.notes.find((n) => n.name === 'VIRT_BASE')!.descsz, 8);
    assert.deepEqual(
      img.segments.map((s) => [s.vaddr, s.filesz, s.memsz]),
      [
        [0n, 0xeaef, 0x41e1f0],
        [0x41e1f0n, 0x1f5bd8, 0x1f5bd8],
      ],
    );
    assert.ok(img.elf.programHeaders.some((p) => p.type === PT_NOTE));
    assert.equal(img.elf.programHeaders.filter((p) => p.type === PT_LOAD).length, 2);
    assert.deepEqual(x.warnings, []);
  });

  it('grub-i386-xen.bin: ELF32, PAE "yes" from the short PAE_MODE note, 4-byte numbers', async function () {
    const path = await fetchDebianFileOrSkip(this, 'grub-xen-host', '/usr/lib/grub-xen/grub-i386-xen.bin');
    const img = loadKernelImage(new Uint8Array(readFileSync(path)));
    assert.equal(img.bits, 32);
    const x = img.xen;
    assert.equal(x.guestOs, 'GRUB');
    assert.equal(x.entry, 0n);
    assert.equal(x.virtBase, 0n);
    assert.equal(x.paeModeString, 'yes');
    assert.equal(x.paeMode, 'extended-cr3');
    assert.equal(x.guestType, 'xen-3.0-x86_32p');
    const pae = x.notes.find((n) => n.name === 'PAE_MODE')!;
    assert.equal(pae.descsz, 12, 'the note claims 12 bytes (GRUB mkimage bug)');
    assert.equal(x.notes.find((n) => n.name === 'ENTRY')!.descsz, 4);
    assert.ok(x.warnings.some((w) => /PAE_MODE/.test(w)));
    assert.equal(img.segments.length, 2);
    assert.equal(img.segments[0].vaddr, 0n);
    assert.equal(img.segments[1].vaddr, BigInt(img.segments[0].memsz));
  });
});
