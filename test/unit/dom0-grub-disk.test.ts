/**
 * Debian's PV GRUB (grub-xen-host, both images) against the dom0 services:
 * it finds the disk through xenstored (xendisk init), completes the
 * blkback handshake in its own ABI, reads `/boot/grub/grub.cfg` from an
 * ext2 image, and `save_env` writes through blkback into the image file;
 * the same write on a read-only disk fails in the guest ("write failed")
 * and leaves the image untouched. The image is made with mke2fs -d.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchDebianFile } from '../helpers/debian';
import { createMachine } from '../../engine/machine';

const IMAGES = [
  { bits: 64, file: '/usr/lib/grub-xen/grub-x86_64-xen.bin' },
  { bits: 32, file: '/usr/lib/grub-xen/grub-i386-xen.bin' },
];

const GRUB_CFG = [
  'echo "disk-config-read"',
  'set pvscope_saved=written-through-blkback',
  'save_env -f /boot/grub/grubenv pvscope_saved',
  'halt',
  '',
].join('\n');

function findMke2fs(): string | null {
  for (const p of ['/usr/sbin/mke2fs', '/sbin/mke2fs', '/usr/bin/mke2fs']) if (fs.existsSync(p)) return p;
  return null;
}

/** An ext2 image holding /boot/grub/grub.cfg and an empty 1 KiB grubenv block. */
function makeImage(dir: string, mke2fs: string): string {
  const root = path.join(dir, 'root');
  fs.mkdirSync(path.join(root, 'boot', 'grub'), { recursive: true });
  fs.writeFileSync(path.join(root, 'boot', 'grub', 'grub.cfg'), GRUB_CFG);
  const head = '# GRUB Environment Block\n';
  fs.writeFileSync(path.join(root, 'boot', 'grub', 'grubenv'), head + '#'.repeat(1024 - head.length));
  const img = path.join(dir, 'disk.img');
  execFileSync(mke2fs, ['-q', '-F', '-t', 'ext2', '-d', root, img, '4M'], { stdio: 'pipe' });
  return img;
}

function runGrub(kernel: string, img: string, access: 'r' | 'w') {
  const m = createMachine({
    name: 'grub-disk',
    kernel,
    memory: 64,
    vcpus: 1,
    disks: [{ target: img, vdev: 'xvda', access, format: 'raw' }],
    vifs: [],
  });
  let out = '';
  m.console.onOutput((d) => (out += Buffer.from(d).toString('latin1')));
  let stop;
  try {
    for (let i = 0; i < 600; i++) {
      stop = m.run(1_000_000);
      if (stop.kind === 'shutdown' || m.finished) break;
    }
    const backend = m.xenstore('/local/domain/0/backend/vbd');
    return { out, stop, backend, insns: m.info.instructionsRetired };
  } finally {
    m.destroy();
  }
}

describe('dom0 services with Debian PV GRUB on an ext2 disk', function () {
  this.timeout(600_000);
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const mke2fs = findMke2fs();
  before(function () {
    if (!mke2fs) {
      if (process.env.CI) throw new Error('mke2fs (e2fsprogs) is needed to build the test disk image');
      this.skip();
    }
  });

  for (const img of IMAGES) {
    it(`grub ${img.bits}-bit reads grub.cfg from xvda and save_env persists through blkback`, async () => {
      const kernel = await fetchDebianFile('grub-xen-host', img.file);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pvscope-grubdisk-'));
      dirs.push(dir);
      const disk = makeImage(dir, mke2fs!);
      const r = runGrub(kernel, disk, 'w');
      assert.match(r.out, /disk-config-read/);
      assert.doesNotMatch(r.out, /write failed/);
      assert.equal(r.stop?.kind, 'shutdown');
      const bytes = fs.readFileSync(disk).toString('latin1');
      assert.ok(
        bytes.includes('pvscope_saved=written-through-blkback\n#'),
        'grubenv block updated in the image',
      );
      // The frontend went through the whole handshake and closed on hand-off/halt or stayed connected.
      assert.ok(r.backend, 'backend directory exists');
    });

    if (img.bits === 64) {
      it('runs deterministically with a disk: same instruction count, console and image bytes', async () => {
        const kernel = await fetchDebianFile('grub-xen-host', img.file);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pvscope-grubdisk-'));
        dirs.push(dir);
        // One image (mke2fs stamps times and UUIDs), copied for each run.
        const master = makeImage(dir, mke2fs!);
        const runs = [1, 2].map((n) => {
          const disk = path.join(dir, `run${n}.img`);
          fs.copyFileSync(master, disk);
          const r = runGrub(kernel, disk, 'w');
          return { r, bytes: fs.readFileSync(disk) };
        });
        assert.equal(runs[0].r.insns, runs[1].r.insns);
        assert.equal(runs[0].r.out, runs[1].r.out);
        assert.ok(runs[0].bytes.equals(runs[1].bytes));
      });
    }

    it(`grub ${img.bits}-bit gets "write failed" on a read-only disk, which stays unchanged`, async () => {
      const kernel = await fetchDebianFile('grub-xen-host', img.file);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pvscope-grubdisk-'));
      dirs.push(dir);
      const disk = makeImage(dir, mke2fs!);
      const before = fs.readFileSync(disk);
      const r = runGrub(kernel, disk, 'r');
      assert.match(r.out, /disk-config-read/);
      assert.match(r.out, /write failed/);
      assert.ok(fs.readFileSync(disk).equals(before), 'read-only image unchanged');
    });
  }
});
