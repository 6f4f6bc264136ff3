/**
 * Debian's PV GRUB (grub-xen-host) boots to `grub>`, runs `echo`, and
 * `halt` powers the domain off: through the `pvscope run` CLI (dist/cli.js,
 * built by `npm test`) and through createMachine. Also: the same image and
 * input give the same hypercall trace (determinism).
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchDebianFile, REPO_ROOT } from '../helpers/debian';
import { createMachine } from '../../engine/machine';
import { buildXenGuest } from '../helpers/xen-guest';

const IMAGES = [
  { bits: 64, file: '/usr/lib/grub-xen/grub-x86_64-xen.bin' },
  { bits: 32, file: '/usr/lib/grub-xen/grub-i386-xen.bin' },
];

/** Runs GRUB with createMachine, typing `input` once the prompt appeared; returns console text and hypercall trace. */
function runGrub(kernel: string, input: string, maxInsns = 400_000_000) {
  const trace: string[] = [];
  const m = createMachine(
    { name: 'grub', kernel, memory: 256, vcpus: 1, disks: [], vifs: [] },
    { trace: { kinds: new Set(['hypercalls']), sink: (l) => trace.push(l) } },
  );
  let out = '';
  m.console.onOutput((d) => (out += Buffer.from(d).toString('latin1')));
  let typed = false;
  let stop;
  for (;;) {
    stop = m.run(1_000_000);
    if (!typed && out.includes('grub>')) {
      m.console.input(input);
      typed = true;
    }
    if (stop.kind === 'shutdown' || m.info.instructionsRetired > maxInsns) break;
  }
  m.destroy();
  return { out, trace, stop, insns: m.info.instructionsRetired };
}

describe('guests: Debian PV GRUB', function () {
  this.timeout(600_000);
  for (const img of IMAGES) {
    it(`grub ${img.bits}-bit reaches grub>, echoes and powers off (createMachine)`, async () => {
      const kernel = await fetchDebianFile('grub-xen-host', img.file);
      const r = runGrub(kernel, 'echo pvscope-hello\nhalt\n');
      assert.match(r.out, /GNU GRUB/);
      assert.match(r.out, /grub> /);
      assert.match(r.out, /\n\r?pvscope-hello/);
      assert.equal(r.stop?.kind, 'shutdown');
      assert.equal(r.stop?.kind === 'shutdown' && r.stop.reason, 'poweroff');
    });

    it(`grub ${img.bits}-bit through the CLI exits 0 with the prompt and the echo on stdout`, async () => {
      const kernel = await fetchDebianFile('grub-xen-host', img.file);
      const cli = join(REPO_ROOT, 'dist', 'cli.js');
      assert.ok(existsSync(cli), 'dist/cli.js missing: run npm run build');
      const p = spawnSync(
        'node',
        [cli, 'run', '--kernel', kernel, '--input', 'echo pvscope-hello\\nhalt\\n', '--timeout', '300'],
        {
          encoding: 'latin1',
          timeout: 400_000,
        },
      );
      assert.equal(p.status, 0, `stderr: ${p.stderr}`);
      assert.match(p.stdout, /grub> /);
      assert.match(p.stdout, /\n\r?pvscope-hello/);
      assert.match(p.stderr, /shut down \(poweroff\)/);
    });
  }

  it('runs deterministically: two runs give the same hypercall trace and instruction count', async () => {
    const kernel = await fetchDebianFile('grub-xen-host', IMAGES[0].file);
    const a = runGrub(kernel, 'echo x\nhalt\n');
    const b = runGrub(kernel, 'echo x\nhalt\n');
    const h = (t: string[]) => createHash('sha256').update(t.join('\n')).digest('hex');
    assert.ok(a.trace.length > 100);
    assert.equal(h(a.trace), h(b.trace));
    assert.equal(a.insns, b.insns);
  });

  it('the CLI reports bad usage with exit status 2', () => {
    const cli = join(REPO_ROOT, 'dist', 'cli.js');
    const p = spawnSync('node', [cli, 'run', '--memory', 'lots'], { encoding: 'utf8' });
    assert.equal(p.status, 2);
    assert.match(p.stderr, /--memory: bad value 'lots'/);
    const q = spawnSync('node', [cli, 'run', '--kernel', '/nonexistent/kernel'], { encoding: 'utf8' });
    assert.equal(q.status, 2);
    assert.match(q.stderr, /--kernel: file not found: \/nonexistent\/kernel/);
  });

  it('reads its configuration from a disk through blkback (xl config file, ext2 image)', async () => {
    const kernel = await fetchDebianFile('grub-xen-host', IMAGES[0].file);
    const dir = mkdtempSync(join(tmpdir(), 'pvscope-disk-'));
    try {
      mkdirSync(join(dir, 'root', 'boot', 'grub'), { recursive: true });
      writeFileSync(join(dir, 'root', 'boot', 'grub', 'grub.cfg'), 'echo from-disk-config\nhalt\n');
      const img = join(dir, 'disk.img');
      const mk = spawnSync('mkfs.ext2', ['-q', '-F', '-d', join(dir, 'root'), img, '4M'], {
        encoding: 'utf8',
      });
      assert.equal(
        mk.status,
        0,
        `mkfs.ext2 (e2fsprogs) is needed to build the test disk: ${mk.stderr ?? mk.error}`,
      );
      const cfg = join(dir, 'dom.cfg');
      writeFileSync(
        cfg,
        `name = "grubdisk"\nkernel = "${kernel}"\nmemory = 128\ndisk = [ '${img},raw,xvda,r' ]\n`,
      );
      const p = spawnSync('node', [join(REPO_ROOT, 'dist', 'cli.js'), 'run', cfg, '--timeout', '300'], {
        encoding: 'latin1',
        timeout: 400_000,
      });
      assert.equal(p.status, 0, `stderr: ${p.stderr}`);
      assert.match(p.stdout, /Reading \(xen\/xvda\)\/boot\/grub\/grub.cfg/);
      assert.match(p.stdout, /from-disk-config/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('CLI exit status: 1 with the reason and guest PC on a crash, 4 on reboot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pvscope-cli-'));
    try {
      const crash = join(dir, 'crash.elf');
      writeFileSync(crash, buildXenGuest({ bits: 64, asm: '_start:\n  lea stack_top(%rip), %rsp\n  ud2\n' }));
      const p = spawnSync(
        'node',
        [join(REPO_ROOT, 'dist', 'cli.js'), 'run', '--kernel', crash, '--memory', '16'],
        { encoding: 'utf8' },
      );
      assert.equal(p.status, 1);
      assert.match(p.stderr, /domain crashed: Unhandled invalid opcode/);
      assert.match(p.stderr, /guest PC 0x[0-9a-f]+/);
      const reboot = join(dir, 'reboot.elf');
      writeFileSync(
        reboot,
        buildXenGuest({ bits: 32, asm: '_start:\n  mov $stack_top, %esp\n  SHUTDOWN 1\n' }),
      );
      const q = spawnSync(
        'node',
        [join(REPO_ROOT, 'dist', 'cli.js'), 'run', '--kernel', reboot, '--memory', '16'],
        { encoding: 'utf8' },
      );
      assert.equal(q.status, 4, q.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
