import assert from 'node:assert/strict';
import {
  ImageError,
  XEN_ELFNOTE as N,
  loadKernelImage,
  parseElf,
  readXenImage,
  scanXenNotes,
  strtoull,
} from '../../engine/image';
import { NoteSpec, buildTestElf, kernelLinkerScript, makeTempDir, readBytes } from '../helpers/image-build';

const VIRT_BASE_64 = 0xffffffff80000000n;
const LINUX64_NOTES: NoteSpec[] = [
  [N.GUEST_OS, 'linux'],
  [N.GUEST_VERSION, '2.6'],
  [N.XEN_VERSION, 'xen-3.0'],
  [N.VIRT_BASE, VIRT_BASE_64],
  [N.INIT_P2M, 0x8000000000n],
  [N.FEATURES, '!writable_page_tables|pae_pgdir_above_4gb'],
  [N.SUPPORTED_FEATURES, 0x8801, 4],
  [N.PAE_MODE, 'yes'],
  [N.LOADER, 'generic'],
  [N.SUSPEND_CANCEL, 1, 4],
  [N.MOD_START_PFN, 1, 4],
  [N.HV_START_LOW, 0xffff800000000000n],
  [N.PADDR_OFFSET, 0n],
  [N.HYPERCALL_PAGE, 0xffffffff81001000n],
];

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof ImageError && re.test(e.message) && /Xen would refuse/.test(e.message),
  );
}

describe('engine/image Xen ELF notes', function () {
  this.timeout(60_000);
  const dir = makeTempDir();
  let n = 0;
  const build = (
    bits: 32 | 64,
    notes: NoteSpec[] | undefined,
    extra: { xenGuest?: string; virtBase?: bigint; phys?: bigint } = {},
  ) =>
    readBytes(
      buildTestElf(dir, {
        bits,
        name: `x${n++}`,
        notes,
        xenGuest: extra.xenGuest,
        linkerScript:
          extra.virtBase !== undefined
            ? kernelLinkerScript(extra.virtBase, extra.phys ?? 0x1000000n)
            : undefined,
      }),
    );

  it('reads a Linux-like x86_64 note set and computes the segments', () => {
    const img = loadKernelImage(build(64, LINUX64_NOTES, { virtBase: VIRT_BASE_64 }));
    const x = img.xen;
    assert.equal(img.bits, 64);
    assert.equal(x.source, 'note-segments');
    assert.equal(x.guestType, 'xen-3.0-x86_64');
    assert.equal(x.guestOs, 'linux');
    assert.equal(x.guestVersion, '2.6');
    assert.equal(x.xenVersion, 'xen-3.0');
    assert.equal(x.loader, 'generic');
    assert.equal(x.virtBase, VIRT_BASE_64);
    assert.equal(x.paddrOffset, 0n);
    assert.equal(x.virtOffset, VIRT_BASE_64);
    assert.equal(x.initP2m, 0x8000000000n);
    assert.equal(x.hypercallPage, 0xffffffff81001000n);
    assert.equal(x.hvStartLow, 0xffff800000000000n);
    assert.equal(x.paeMode, 'extended-cr3');
    assert.equal(x.suspendCancel, true);
    assert.equal(x.modStartPfn, true);
    assert.deepEqual([...x.features.required], ['writable_page_tables']);
    assert.ok(x.features.supported.has('pae_pgdir_above_4gb'));
    assert.ok(x.features.supported.has('dom0'));
    assert.ok(x.features.supported.has('linux_rsdp_unrestricted'));
    assert.equal(x.supportedFeaturesBitmap, 0x8801 | 0x11);
    assert.equal(x.requiredFeaturesBitmap, 1);
    // Entry defaults to e_entry (no ENTRY note) and lies in the image.
    assert.equal(x.entry, img.elf.header.entry);
    assert.equal(x.entry, img.symbols.resolve('_start'));
    assert.ok(x.virtKstart >= x.virtBase && x.entry >= x.virtKstart && x.entry <= x.virtKend);
    assert.equal(x.virtKstart, VIRT_BASE_64 + 0x1000000n);
    const seg = img.segments[0];
    assert.equal(seg.vaddr, VIRT_BASE_64 + 0x1000000n);
    const text = img.elf.sections.find((s) => s.name === '.text')!;
    assert.deepEqual(
      img.elf.bytes.subarray(seg.fileOffset, seg.fileOffset + 16),
      img.elf.bytes.subarray(text.offset, text.offset + 16),
    );
  });

  it('reads numeric notes of 1, 2, 4 and 8 bytes; other descriptor sizes read as 0', () => {
    const notes: NoteSpec[] = [
      [N.GUEST_OS, 'linux'],
      [N.XEN_VERSION, 'xen-3.0'],
      [N.SUSPEND_CANCEL, 1, 1],
      [N.MOD_START_PFN, 1, 2],
      [N.VIRT_BASE, 0n, 4],
    ];
    const elf = parseElf(build(64, notes));
    const scan = scanXenNotes(elf);
    assert.equal(scan.parms.suspendCancel, true);
    assert.equal(scan.parms.modStartPfn, true);
    assert.equal(scan.parms.virtBase, 0n);
    // Claim a 3-byte descriptor for SUSPEND_CANCEL (third note): it must read as 0.
    const b = elf.bytes.slice();
    const dv = new DataView(b.buffer);
    let off = elf.sections.find((s) => s.name === '.note.Xen')!.offset;
    for (let i = 0; i < 2; i++) off += 12 + 4 + ((dv.getUint32(off + 4, true) + 3) & ~3);
    assert.equal(dv.getUint32(off + 8, true), N.SUSPEND_CANCEL);
    dv.setUint32(off + 4, 3, true);
    assert.equal(scanXenNotes(parseElf(b)).parms.suspendCancel, false);
  });

  it('refuses what libelf refuses, saying why', () => {
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.XEN_VERSION, 'xen-3.0'],
            [N.GUEST_OS, 'netbsd'],
          ]),
        ),
      /generic loader or Linux/,
    );
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-4.0'],
          ]),
        ),
      /Xen v3\.0/,
    );
    refused(() => loadKernelImage(build(64, [[N.LOADER, 'generic']])), /Xen v3\.0/);
    assert.throws(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.FEATURES, 'dom0|!no_such_feature'],
          ]),
        ),
      /requires unknown feature 'no_such_feature'/,
    );
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.FEATURES, '!auto_translated_physmap'],
          ]),
        ),
      /autotranslate/,
    );
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.ENTRY, 0x10n],
          ]),
        ),
      /out of bounds/,
    );
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.VIRT_BASE, 0x10000000n],
          ]),
        ),
      /out of bounds/,
    );
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.PADDR_OFFSET, 0n],
          ]),
        ),
      /VIRT_BASE unset/,
    );
    refused(() => loadKernelImage(build(64, undefined)), /no Xen ELF notes/);
    // 32-bit without PAE has no domain builder.
    refused(
      () =>
        loadKernelImage(
          build(32, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
          ]),
        ),
      /without PAE/,
    );
  });

  it('refuses an INIT_P2M inside the kernel image', () => {
    const bytes = build(64, [
      [N.LOADER, 'generic'],
      [N.XEN_VERSION, 'xen-3.0'],
    ]);
    const base = loadKernelImage(bytes).xen.virtKstart;
    refused(
      () =>
        loadKernelImage(
          build(64, [
            [N.LOADER, 'generic'],
            [N.XEN_VERSION, 'xen-3.0'],
            [N.INIT_P2M, base],
          ]),
        ),
      /P->M table base/,
    );
  });

  it('ignores notes of other owners', () => {
    const elf = parseElf(
      build(64, [
        [N.LOADER, 'generic'],
        [N.XEN_VERSION, 'xen-3.0'],
      ]),
    );
    const note = elf.sections.find((s) => s.name === '.note.Xen')!;
    // Rename the owner of the first note "Xen" -> "Xem": that note must not count.
    const b = elf.bytes.slice();
    b[note.offset + 12 + 2] = 0x6d;
    const scan = scanXenNotes(parseElf(b));
    assert.equal(scan.parms.loader, '');
    assert.equal(scan.parms.xenVersion, 'xen-3.0');
  });

  it('falls back to SHT_NOTE sections when the PT_NOTE has p_offset 0', () => {
    const elf = parseElf(
      build(64, [
        [N.LOADER, 'generic'],
        [N.XEN_VERSION, 'xen-3.0'],
      ]),
    );
    const ph = elf.programHeaders.find((p) => p.type === 4)!;
    const b = elf.bytes.slice();
    new DataView(b.buffer).setBigUint64(Number(elf.header.phoff) + ph.index * 56 + 8, 0n, true);
    const img = loadKernelImage(b);
    assert.equal(img.xen.source, 'note-sections');
    assert.equal(img.xen.loader, 'generic');
  });

  it('parses the legacy __xen_guest string', () => {
    const s =
      'GUEST_OS=linux,GUEST_VER=2.6,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,ELF_PADDR_OFFSET=0xC0000000,HYPERCALL_PAGE=0x2,LOADER=generic,PAE=yes[extended-cr3],FEATURES=writable_page_tables|!pae_pgdir_above_4gb,BSD_SYMTAB';
    const bytes = build(32, undefined, { xenGuest: s, virtBase: 0xc0000000n, phys: 0x100000n });
    // Old kernels put virtual addresses in p_paddr: rewrite p_paddr = p_vaddr.
    const elf = parseElf(bytes);
    const b = elf.bytes.slice();
    const dv = new DataView(b.buffer);
    for (const ph of elf.programHeaders)
      dv.setUint32(elf.header.phoff + ph.index * 32 + 12, Number(ph.vaddr), true);
    const img = loadKernelImage(b);
    const x = img.xen;
    assert.equal(x.source, 'xen-guest-section');
    assert.equal(x.xenGuestString, s);
    assert.equal(x.guestOs, 'linux');
    assert.equal(x.guestVersion, '2.6');
    assert.equal(x.virtBase, 0xc0000000n);
    assert.equal(x.paddrOffset, 0xc0000000n);
    assert.equal(
      x.hypercallPage,
      0xc0000000n + 2n * 4096n,
      'HYPERCALL_PAGE is a page number relative to VIRT_BASE',
    );
    assert.equal(x.paeMode, 'extended-cr3');
    assert.equal(x.bsdSymtab, true);
    assert.deepEqual([...x.features.required], ['pae_pgdir_above_4gb']);
    assert.equal(x.guestType, 'xen-3.0-x86_32p');
    assert.equal(img.segments[0].vaddr, 0xc0100000n);
  });

  it('ELF_PADDR_OFFSET defaults to VIRT_BASE with the legacy string', () => {
    const s = 'GUEST_OS=linux,XEN_VER=xen-3.0,VIRT_BASE=0xC0000000,PAE=yes';
    const elf = parseElf(build(32, undefined, { xenGuest: s, virtBase: 0xc0000000n, phys: 0x100000n }));
    const b = elf.bytes.slice();
    const dv = new DataView(b.buffer);
    for (const ph of elf.programHeaders)
      dv.setUint32(elf.header.phoff + ph.index * 32 + 12, Number(ph.vaddr), true);
    const x = loadKernelImage(b).xen;
    assert.equal(x.paddrOffset, 0xc0000000n);
    assert.equal(x.paeMode, 'yes');
  });

  it('strtoull follows C: base prefixes, stops at bad digits, saturates', () => {
    assert.equal(strtoull('0x1F'), 31n);
    assert.equal(strtoull('017'), 15n);
    assert.equal(strtoull('42abc'), 42n);
    assert.equal(strtoull(''), 0n);
    assert.equal(strtoull('zz'), 0n);
    assert.equal(strtoull('-1'), 0xffffffffffffffffn);
    assert.equal(strtoull('0x1ffffffffffffffff'), 0xffffffffffffffffn);
  });

  it('rejects overlapping PT_LOAD destinations', () => {
    const bytes = build(64, [
      [N.LOADER, 'generic'],
      [N.XEN_VERSION, 'xen-3.0'],
    ]);
    const elf = parseElf(bytes);
    const loads = elf.programHeaders.filter((p) => p.type === 1);
    assert.ok(loads.length >= 2, 'test image should have two PT_LOADs');
    const b = bytes.slice();
    // Move the second PT_LOAD's p_paddr onto the first.
    new DataView(b.buffer).setBigUint64(elf.header.phoff + loads[1].index * 56 + 24, loads[0].paddr, true);
    assert.throws(() => readXenImage(parseElf(b)), /overlap in guest memory/);
  });

  it('a string note whose descriptor runs past its note area is read up to NUL', () => {
    const bytes = build(64, [
      [N.LOADER, 'generic'],
      [N.XEN_VERSION, 'xen-3.0'],
      [N.GUEST_OS, 'GRUB'],
    ]);
    const elf = parseElf(bytes);
    const sec = elf.sections.find((s) => s.name === '.note.Xen')!;
    const b = bytes.slice();
    // Claim a 200-byte descriptor for the last note (GUEST_OS).
    let off = sec.offset;
    const dv = new DataView(b.buffer);
    for (let i = 0; i < 2; i++) off += 12 + 4 + ((dv.getUint32(off + 4, true) + 3) & ~3);
    dv.setUint32(off + 4, 200, true);
    const x = loadKernelImage(b).xen;
    assert.equal(x.guestOs, 'GRUB');
    assert.ok(x.warnings.some((w) => /GUEST_OS note descriptor/.test(w)));
  });

  it('absurd note sizes and random note corruption give a result or ImageError, nothing else', () => {
    const bytes = build(64, LINUX64_NOTES, { virtBase: VIRT_BASE_64 });
    const elf = parseElf(bytes);
    const sec = elf.sections.find((s) => s.name === '.note.Xen')!;
    for (const [field, value] of [
      [0, 0xffffffff],
      [4, 0xffffffff],
      [0, 0x7ffffffc],
      [4, 0x10],
    ] as const) {
      const b = bytes.slice();
      new DataView(b.buffer).setUint32(sec.offset + field, value, true);
      try {
        loadKernelImage(b);
      } catch (e) {
        assert.ok(e instanceof ImageError, String(e));
      }
    }
    let seed = 11;
    for (let k = 0; k < 400; k++) {
      const b = bytes.slice();
      for (let j = 0; j < 2; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        b[sec.offset + (seed % sec.size)] = (seed >>> 9) & 0xff;
      }
      try {
        loadKernelImage(b);
      } catch (e) {
        assert.ok(e instanceof ImageError, `corruption ${k}: ${String(e)}`);
      }
    }
  });
});
