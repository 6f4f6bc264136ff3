/**
 * The debug adapter on Debian's stock x86_64 kernel (linux-image-amd64, a
 * bzImage) on the real engine: entry stop, the hypercall filter at the
 * kernel's first mmuext_op with decoded arguments, earlyprintk=xen output
 * (HYPERVISOR_console_io) as console output, pause.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { fetchDebianFile } from '../helpers/debian';
import { startClient } from '../helpers/dap';

function kernelPackage(): string {
  const out = execFileSync('apt-cache', ['depends', 'linux-image-amd64'], { encoding: 'utf8' });
  const m = /Depends: (linux-image-[0-9][^\s]*)/.exec(out);
  if (!m) throw new Error(`cannot find the kernel package behind linux-image-amd64:\n${out}`);
  return m[1];
}

describe('debug adapter on Debian Linux x86_64 (real engine)', function () {
  this.timeout(600000);
  let dc: DebugClient;
  let kernel: string;
  before(async () => {
    const pkg = kernelPackage();
    kernel = await fetchDebianFile(pkg, `/boot/vmlinuz-${pkg.replace(/^linux-image-/, '')}`);
  });
  beforeEach(async () => {
    dc = await startClient({ fake: false });
  });
  afterEach(async () => {
    await dc.stop();
  });

  it('stops on entry, at the first mmuext_op, prints the early console and pauses', async () => {
    let text = '';
    dc.on('output', (e: DebugProtocol.OutputEvent) => {
      if (e.body.category === 'stdout') text += e.body.output;
    });
    await dc.initializeRequest({
      adapterID: 'pvscope',
      linesStartAt1: true,
      columnsStartAt1: true,
      pathFormat: 'path',
    });
    const initialized = dc.waitForEvent('initialized');
    await dc.launchRequest({
      kernel,
      memory: 512,
      cmdline: 'console=hvc0 earlyprintk=xen',
      consoleIoWrites: true,
    } as DebugProtocol.LaunchRequestArguments);
    await initialized;
    await dc.setExceptionBreakpointsRequest({
      filters: [],
      filterOptions: [{ filterId: 'hypercall', condition: 'mmuext_op' }],
    });
    const [, entry] = await Promise.all([
      dc.configurationDoneRequest(),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(entry.body.reason, 'entry');
    const f0 = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames[0];
    assert.ok(BigInt(f0.instructionPointerReference!) >= 0xffffffff80000000n, f0.instructionPointerReference);
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped', 300000) as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'exception');
    assert.match(
      ev.body.description!,
      /^hypercall mmuext_op\(ops=0x[0-9a-f]+, count=\d+, done=(NULL|0x[0-9a-f]+), DOMID_SELF\)$/,
    );
    await dc.setExceptionBreakpointsRequest({ filters: [] });
    await dc.continueRequest({ threadId: 1 });
    for (let i = 0; i < 3000 && !/Hypervisor detected: Xen PV/.test(text); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.match(text, /Linux version/);
    assert.match(text, /Hypervisor detected: Xen PV/);
    const [, p] = await Promise.all([
      dc.pauseRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(p.body.reason, 'pause');
    const st = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.ok(st.length >= 1);
  });
});
