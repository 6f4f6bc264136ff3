/**
 * The demo guest (guests/demo/demo.S), which `npm start` runs where Debian's
 * PV GRUB cannot be fetched: built from the project's sources with as/ld,
 * it prints its banner, echoes typed input and powers off on 'q'.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

describe('guests: the demo guest through the CLI', function () {
  this.timeout(120000);
  it('prints its banner, echoes input and powers off (exit 0)', () => {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'dist', 'cli.js'), 'run', '--demo-guest', '--input', 'pvscope-echo q', '--timeout', '60'],
      { encoding: 'utf8', cwd: ROOT },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /pvscope demo guest \(64-bit Xen PV\)/);
    assert.match(r.stdout, /pvscope-echo/);
    assert.match(r.stdout, /powering off/);
    assert.match(r.stderr, /poweroff/);
  });
});
