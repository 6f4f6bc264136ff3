/**
 * The `grant` filter on Debian's PV GRUB with a disk: GRUB's xendisk driver
 * grants its ring and buffer pages by storing straight into grant entries, so
 * the filter stops first at grant_table_op(setup_table) and then at the first
 * direct grant-entry write, before the store happens.
 */
import { strict as assert } from 'node:assert';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { fetchDebianFile } from '../helpers/debian';
import { scratchFile, startClient } from '../helpers/dap';

async function continueToStop(dc: DebugClient): Promise<DebugProtocol.StoppedEvent> {
  const [, ev] = await Promise.all([
    dc.continueRequest({ threadId: 1 }),
    dc.waitForEvent('stopped', 120000) as Promise<DebugProtocol.StoppedEvent>,
  ]);
  return ev;
}

for (const arch of ['x86_64', 'i386']) {
  describe(`debug adapter: grant filter on Debian PV GRUB ${arch} with a disk`, function () {
    this.timeout(300000);
    let dc: DebugClient;
    afterEach(async () => {
      await dc?.stop();
    });

    it('stops at setup_table, then at the first direct grant-entry write before the store', async () => {
      const kernel = await fetchDebianFile('grub-xen-host', `/usr/lib/grub-xen/grub-${arch}-xen.bin`);
      const disk = scratchFile(`grant-${arch}.img`, new Uint8Array(1 << 20));
      dc = await startClient({ fake: false });
      await dc.initializeRequest({ adapterID: 'pvscope', linesStartAt1: true, columnsStartAt1: true });
      const initialized = dc.waitForEvent('initialized');
      await dc.launchRequest({
        kernel,
        memory: 64,
        disks: [`format=raw, vdev=xvda, access=rw, target=${disk}`],
      } as DebugProtocol.LaunchRequestArguments);
      await initialized;
      await dc.setExceptionBreakpointsRequest({
        filters: [],
        filterOptions: [{ filterId: 'grant', condition: 'setup_table, write' }],
      });
      await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);

      const setup = await continueToStop(dc);
      assert.equal(setup.body.reason, 'exception');
      assert.match(setup.body.description!, /GNTTABOP_setup_table/);

      const write = await continueToStop(dc);
      assert.equal(write.body.reason, 'exception');
      assert.match(write.body.description!, /^grant entry write ref=(\d+) \((flags|domid|frame)\)/);
      const ref = Number(/ref=(\d+)/.exec(write.body.description!)![1]);
      assert.ok(ref >= 2, `GRUB's first free entry follows the two the toolstack seeded, got ${ref}`);
      const info = await dc.exceptionInfoRequest({ threadId: 1 });
      assert.equal(info.body.exceptionId, 'grant');

      // The store has not happened yet: the entry still reads as free (flags 0) in the grant table.
      const grants = await dc.customRequest('pvscope/grants');
      const entry = (grants.body.entries as { ref: number; flags: number }[]).find((g) => g.ref === ref);
      assert.ok(!entry || entry.flags === 0, JSON.stringify(entry));
    });
  });
}
