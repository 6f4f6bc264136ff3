import { strict as assert } from 'node:assert';
import { PvMm, UVMF_TLB_FLUSH } from '../../engine/xen/mm';
import { BOOT, buildBootTables, FakeDomain, mfnOf, P, RW, A, pte } from '../helpers/xen-mm-fake';

/**
 * Xen _get_page_type(): a frame whose type changes (here writable -> L1)
 * flushes the TLB of every vCPU that has not flushed since the frame's type
 * count last reached 0 (tlbflush_timestamp / tlbflush_filter), so a guest
 * that dropped the writable mapping with update_va_mapping(..., 0) cannot
 * keep writing through a stale TLB entry (issue 11, xen_pgd_pin).
 */
describe('xen-mm: TLB flush on page-type change', () => {
  function setup(nvcpus = 1): { d: FakeDomain; mm: PvMm } {
    const d = new FakeDomain(64, nvcpus);
    const mm = new PvMm(d);
    buildBootTables(d);
    mm.installXenMappings();
    assert.equal(mm.pin(4, mfnOf(BOOT.l4)), 0);
    assert.equal(mm.newBaseptr(d.vcpus[0], mfnOf(BOOT.l4)), 0);
    return { d, mm };
  }
  const PFN = 7; // mapped RW by the boot L1, content zero
  const va = BigInt(PFN * 4096);
  const uvm = (v: bigint, flags: number): bigint[] => [va, v, BigInt(flags)];

  it('flushes every vCPU when a frame unmapped without a flush becomes a page table', () => {
    const { d, mm } = setup(2);
    assert.equal(mm.pageInfo(mfnOf(PFN)).type, 'writable');
    assert.equal(mm.updateVaMapping(d.vcpus[0], uvm(pte(PFN, P | A), 0)), 0);
    assert.equal(mm.pageInfo(mfnOf(PFN)).typeCount, 0);
    const before = [d.fake(0).flushes, d.fake(1).flushes];
    assert.equal(mm.pin(1, mfnOf(PFN)), 0);
    assert.deepEqual([d.fake(0).flushes, d.fake(1).flushes], [before[0] + 1, before[1] + 1]);
  });

  it('does not flush a vCPU that flushed after the type count dropped (filtered)', () => {
    const { d, mm } = setup(2);
    assert.equal(mm.updateVaMapping(d.vcpus[0], uvm(pte(PFN, P | A), UVMF_TLB_FLUSH)), 0);
    const before = [d.fake(0).flushes, d.fake(1).flushes];
    assert.equal(mm.pin(1, mfnOf(PFN)), 0);
    // vCPU 0 flushed with the update; vCPU 1 did not and is flushed now.
    assert.deepEqual([d.fake(0).flushes, d.fake(1).flushes], [before[0], before[1] + 1]);
  });

  it('does not flush when the frame keeps its type (writable mapping dropped and re-made)', () => {
    const { d, mm } = setup(1);
    const f = d.fake(0).flushes;
    assert.equal(mm.updateVaMapping(d.vcpus[0], uvm(pte(PFN, P | A), 0)), 0);
    assert.equal(mm.updateVaMapping(d.vcpus[0], uvm(pte(PFN, P | RW | A), 0)), 0);
    assert.equal(mm.pageInfo(mfnOf(PFN)).typeCount, 1);
    assert.equal(d.fake(0).flushes, f);
  });
});
