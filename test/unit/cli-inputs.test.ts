/**
 * Issue 8 item 7: the CLI refuses non-regular files (a character device, a
 * FIFO, a directory) for every option that names a file it reads: the
 * kernel, the ramdisk, disk images, the xl file (and the images it names),
 * `--input-file`; with the debug adapter's message ("not a regular file:
 * PATH"), from the one check both use (engine/xen/config.ts
 * `checkRegularFile`). The CLI runs in a child process (test/helpers/cli-run.ts).
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LaunchError, validateLaunchArgs } from '../../debug-adapter/launch';
import { runCli } from '../helpers/cli-run';
import { makeTempDir } from '../helpers/image-build';

describe('CLI: non-regular input files are refused (issue 8 item 7)', function () {
  this.timeout(240_000);
  let dir = '';
  let fifo = '';
  let kernel = '';
  let haveFifo = true;
  before(() => {
    dir = makeTempDir('pvscope-cli-');
    fifo = join(dir, 'fifo');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      haveFifo = false;
    }
    kernel = join(dir, 'kernel.bin');
    writeFileSync(kernel, 'not an ELF image\n');
    mkdirSync(join(dir, 'sub'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refused = (r: ReturnType<typeof runCli>, option: string, file: string) => {
    assert.notEqual(r.status, null, `the CLI hung (killed after the timeout); stderr: ${r.stderr}`);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(
      r.stderr.includes(`pvscope: ${option}: not a regular file: ${file}`),
      `expected "${option}: not a regular file: ${file}" in: ${r.stderr}`,
    );
  };

  it('--kernel /dev/zero: refused at once (no endless read)', () => {
    refused(runCli(['--kernel', '/dev/zero', '--timeout', '5']), '--kernel', '/dev/zero');
  });

  it('--kernel FIFO: refused (no blocking open)', function () {
    if (!haveFifo) this.skip();
    refused(runCli(['--kernel', fifo, '--timeout', '5']), '--kernel', fifo);
  });

  it('--kernel DIRECTORY, relative to the working directory: refused with the absolute path', () => {
    refused(runCli(['--kernel', 'sub', '--timeout', '5'], { cwd: dir }), '--kernel', join(dir, 'sub'));
  });

  it('--ramdisk, --disk and --input-file: the same refusal, naming the option', function () {
    if (!haveFifo) this.skip();
    refused(runCli(['--kernel', kernel, '--ramdisk', fifo]), '--ramdisk', fifo);
    refused(runCli(['--kernel', kernel, '--disk', `${fifo},raw,xvda,w`]), '--disk', fifo);
    refused(runCli(['--kernel', kernel, '--input-file', '/dev/zero']), '--input-file', '/dev/zero');
  });

  it('the xl file itself, and the kernel, ramdisk and disks it names', function () {
    if (!haveFifo) this.skip();
    refused(runCli([fifo]), 'config file', fifo);
    const cfg = (lines: string) => {
      const f = join(dir, 'dom.cfg');
      writeFileSync(f, `name = "g"\n${lines}\n`);
      return f;
    };
    let f = cfg('kernel = "/dev/zero"');
    refused(runCli([f]), `${f}: kernel`, '/dev/zero');
    f = cfg(`kernel = "kernel.bin"\nramdisk = "fifo"`);
    refused(runCli([f]), `${f}: ramdisk`, fifo);
    f = cfg(`kernel = "kernel.bin"\ndisk = [ "fifo,raw,xvda,w" ]`);
    refused(runCli([f]), `${f}: disk`, fifo);
    // An option replacing the file's kernel is what gets checked.
    f = cfg('kernel = "/dev/zero"');
    refused(runCli([f, '--kernel', fifo]), '--kernel', fifo);
  });

  it('the debug adapter gives the same reason from the same check (kernel, ramdisk, disks, config)', function () {
    if (!haveFifo) this.skip();
    const reason = (args: Record<string, unknown>): string => {
      try {
        validateLaunchArgs({ cwd: dir, ...args });
      } catch (e) {
        assert.ok(e instanceof LaunchError, String(e));
        return e.message;
      }
      return assert.fail('accepted');
    };
    assert.equal(reason({ kernel: '/dev/zero' }), "launch attribute 'kernel': not a regular file: /dev/zero");
    assert.equal(reason({ kernel: 'fifo' }), `launch attribute 'kernel': not a regular file: ${fifo}`);
    assert.equal(
      reason({ kernel, ramdisk: 'sub' }),
      `launch attribute 'ramdisk': not a regular file: ${join(dir, 'sub')}`,
    );
    assert.equal(
      reason({ kernel, disks: [`${fifo},raw,xvda,w`] }),
      `launch attribute 'disks[0]': not a regular file: ${fifo}`,
    );
    assert.equal(reason({ config: 'fifo' }), `launch attribute 'config': not a regular file: ${fifo}`);
    const f = join(dir, 'dom2.cfg');
    writeFileSync(f, `name = "g"\nkernel = "/dev/zero"\n`);
    assert.equal(
      reason({ config: f }),
      `launch attribute 'config': ${f}: kernel: not a regular file: /dev/zero`,
    );
  });
});
