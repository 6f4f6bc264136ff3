import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { createMachine } from '../../engine/machine';
import { fetchDebianFile } from '../helpers/debian';

/**
 * Debian's PV GRUB rebuilds its page tables at start (map_all_pages: M2P
 * swaps, update_va_mapping of a window, PIN + NEW_BASEPTR + UNPIN, then the
 * old bootstrap tables remapped writable). Under the MMU model it must do so
 * without a single refusal, ending with its own root pinned and the
 * builder's tables released.
 */
describe('xen-mm: real PV GRUB page-table switch', function () {
  this.timeout(300000);
  for (const [arch, bits] of [
    ['x86_64', 64],
    ['i386', 32],
  ] as const) {
    it(`grub-${arch}-xen.bin switches page tables without MMU refusals`, async () => {
      const file = await fetchDebianFile('grub-xen-host', `/usr/lib/grub-xen/grub-${arch}-xen.bin`);
      const m = createMachine({
        name: 'grub',
        kernel: fs.readFileSync(file),
        memory: 64,
        vcpus: 1,
        disks: [],
        vifs: [],
      });
      try {
        const dom = m.dom;
        const v = dom.vcpus[0];
        const bootRoot = v.kernelRootMfn;
        assert.equal(dom.mm.pageInfo(bootRoot).pinned, true);
        m.setFilter('mmu-reject', true);
        m.setFilter('crash', true);
        const refusals: string[] = [];
        let slices = 0;
        // Run until GRUB has switched roots and remapped the old tables (a few million instructions).
        while (slices < 200 && !m.finished) {
          const s = m.run(500000);
          slices++;
          if (s.kind === 'filter') refusals.push(s.description);
          if (v.kernelRootMfn !== bootRoot && dom.mm.pageInfo(bootRoot).type === 'writable') break;
        }
        assert.deepEqual(refusals, []);
        assert.equal(m.finished, false);
        const root = v.kernelRootMfn;
        assert.notEqual(root, bootRoot, 'GRUB installed its own page tables');
        const info = dom.mm.pageInfo(root);
        assert.equal(info.type, bits === 64 ? 'l4' : 'l3');
        assert.equal(info.pinned, true);
        assert.equal(info.typeCount, 2); // pin + base pointer
        const old = dom.mm.pageInfo(bootRoot);
        assert.equal(old.pinned, false);
        assert.equal(old.type, 'writable');
      } finally {
        m.destroy();
      }
    });
  }
});
