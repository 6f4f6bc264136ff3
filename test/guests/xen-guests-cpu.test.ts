/**
 * Small PV test kernels (test/helpers/xen-guest.ts) for the CPU's system
 * side as a PV guest sees it through the Xen model: a 32-bit kernel's first
 * stack loaded with `lss`, debug registers through HYPERVISOR_set_debugreg
 * and #DB bounces, and the virtual CR0.TS of HYPERVISOR_fpu_taskswitch with
 * #NM bounces.
 */
import { strict as assert } from 'node:assert';
import { buildXenGuest } from '../helpers/xen-guest';
import { createMachine } from '../../engine/machine';
import type { Stop } from '../../engine/machine-api';

function boot(bits: 32 | 64, asm: string) {
  const kernel = buildXenGuest({ bits, asm });
  const m = createMachine({ name: 't', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
  let stop: Stop = { kind: 'budget' };
  for (let i = 0; i < 200 && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
  return { m, stop };
}

function words(m: ReturnType<typeof boot>['m'], va: bigint, n: number, size: 4 | 8): bigint[] {
  const b = m.readMemory('virtual', va, n * size, 0);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: n }, (_, i) =>
    size === 8 ? dv.getBigUint64(i * 8, true) : BigInt(dv.getUint32(i * 4, true)),
  );
}

function sym(m: ReturnType<typeof boot>['m'], name: string): bigint {
  const s = (m as unknown as { symbols: { resolve(n: string): bigint | undefined } }).symbols.resolve(name);
  if (s === undefined) throw new Error(`no ${name} symbol`);
  return s;
}

describe('guests: CPU system side of small PV kernels', function () {
  this.timeout(120_000);

  it('32-bit: the kernel loads its first stack with lss (FLAT_RING1_SS) and pushes on it', () => {
    const { m, stop } = boot(
      32,
      `
_start:
  lss stack_ptr, %esp
  pushl $0x5a5a1234
  mov %ss, %eax
  mov %eax, scratch
  mov %esp, scratch+4
  popl scratch+8
  SHUTDOWN 0
stack_ptr:
  .long stack_top
  .word 0xe021
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, sym(m, 'scratch'), 3, 4);
    assert.equal(f[0], 0xe021n);
    assert.equal(f[1], sym(m, 'stack_top') - 4n);
    assert.equal(f[2], 0x5a5a1234n);
  });
});
