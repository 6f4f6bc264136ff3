import { strict as assert } from 'node:assert';
import { describeHypercall, FilterSet, hypercallName } from '../../engine/debug/filters';

describe('engine/debug/filters', () => {
  it('matches hypercalls by name, number, sub-op and expression', () => {
    const f = new FilterSet();
    assert.equal(f.hypercall(1, []), false);
    f.set('hypercall', true, 'mmu_update,mmuext_op');
    assert.ok(f.isEnabled('hypercall'));
    assert.ok(f.hypercall(1, [0n, 3n, 0n, 0x7ff0n]));
    assert.ok(f.hypercall(26, []));
    assert.ok(!f.hypercall(20, []));
    f.set('hypercall', true, 'event_channel_op && arg0 == 4');
    assert.ok(f.hypercall(32, [4n, 0x1000n]));
    assert.ok(!f.hypercall(32, [3n, 0x1000n]));
    f.set('hypercall', true, 'EVTCHNOP_send, 20');
    assert.ok(f.hypercall(32, [4n]));
    assert.ok(!f.hypercall(32, [6n]));
    assert.ok(f.hypercall(20, [2n]));
    f.set('hypercall', true, 'arg1 > 2');
    assert.ok(f.hypercall(1, [0n, 3n]));
    assert.ok(!f.hypercall(1, [0n, 1n]));
    f.set('hypercall', true, '');
    assert.ok(f.hypercall(55, []));
    f.set('hypercall', false);
    assert.ok(!f.isEnabled('hypercall'));
    assert.ok(!f.hypercall(1, []));
  });

  it('rejects bad conditions with a message and keeps the old setting', () => {
    const f = new FilterSet();
    f.set('hypercall', true, 'mmu_update');
    assert.throws(() => f.set('hypercall', true, 'mmu_updat'), /unknown hypercall 'mmu_updat'/);
    assert.ok(f.hypercall(1, []));
    assert.throws(() => f.set('hypercall', true, 'mmu_update && arg0 =='), /hypercall filter condition/);
    assert.throws(() => f.set('trap', true, '#XX'), /unknown vector '#XX'/);
    assert.throws(() => f.set('event', true, 'foo'), /event filter condition/);
    assert.throws(() => f.set('grant', true, 'frobnicate'), /unknown grant operation 'frobnicate'/);
    assert.throws(() => f.set('pagefault', true, 'bogus'), /pagefault filter condition/);
    assert.throws(() => f.set('nope' as never, true), /unknown filter/);
  });

  it('matches grant ops, entry writes and ref ranges', () => {
    const f = new FilterSet();
    f.set('grant', true, 'setup_table, write');
    assert.ok(f.grantOp(2, []));
    assert.ok(!f.grantOp(0, [9]));
    assert.ok(f.grantEntryWrite(3));
    f.set('grant', true, 'ref 8-15');
    assert.ok(f.grantOp(0, [9]));
    assert.ok(!f.grantOp(0, [16]));
    assert.ok(f.grantEntryWrite(8));
    assert.ok(!f.grantEntryWrite(7));
    f.set('grant', true, 'map_grant_ref ref 3');
    assert.ok(f.grantOp(0, [3]));
    assert.ok(!f.grantOp(0, [4]));
    assert.ok(!f.grantEntryWrite(3));
  });

  it('matches page faults by range, error bits and expression', () => {
    const f = new FilterSet();
    f.set('pagefault', true, '0xffff800000000000-0xffff8fffffffffff write');
    assert.ok(f.pageFault(0xffff800000001000n, 3));
    assert.ok(!f.pageFault(0xffff800000001000n, 1));
    assert.ok(!f.pageFault(0x1000n, 3));
    f.set('pagefault', true, 'err & 2');
    assert.ok(f.pageFault(0n, 2));
    assert.ok(!f.pageFault(0n, 4));
    f.set('pagefault', true, 'user && !present');
    assert.ok(f.pageFault(0n, 4));
    assert.ok(!f.pageFault(0n, 5));
  });

  it('matches traps, events, mmu rejects and crashes', () => {
    const f = new FilterSet();
    f.set('trap', true, '#GP,#PF,3');
    assert.ok(f.trap(13) && f.trap(14) && f.trap(3) && !f.trap(6));
    f.set('event', true, '1,2,5-9 send');
    assert.ok(f.event(6, 'send'));
    assert.ok(!f.event(6, 'upcall'));
    assert.ok(!f.event(4, 'send'));
    f.set('mmu-reject', true, 'EINVAL');
    assert.ok(f.mmuReject(-22, 'Bad L1 flags 0x800000'));
    assert.ok(!f.mmuReject(-1, 'x'));
    f.set('mmu-reject', true, 'l1 flags');
    assert.ok(f.mmuReject(-22, 'Bad L1 flags 0x800000'));
    assert.ok(!f.crash('x'));
    f.set('crash', true);
    assert.ok(f.crash('triple fault'));
  });

  it('describes hypercalls with decoded arguments', () => {
    const d = describeHypercall(1, [0xffff800000123000n, 3n, 0n, 0x7ff0n], 64);
    assert.equal(d.name, 'mmu_update');
    assert.equal(
      d.description,
      'hypercall mmu_update(req=0xffff800000123000, count=3, done=NULL, DOMID_SELF)',
    );
    assert.equal(d.details.count, 3);
    const e = describeHypercall(32, [4n, 0x7000n], 64);
    assert.equal(e.description, 'hypercall event_channel_op(EVTCHNOP_send, arg=0x7000)');
    assert.equal(e.details.subop, 'EVTCHNOP_send');
    const g = describeHypercall(20, [2n, 0x5000n, 1n], 32);
    assert.equal(g.description, 'hypercall grant_table_op(GNTTABOP_setup_table, ops=0x5000, count=1)');
    const u = describeHypercall(14, [0x400000n, 0x1234067n, 0n, 2n], 32);
    assert.equal(
      u.description,
      'hypercall update_va_mapping(va=0x400000, pte=0x1234067, flags=UVMF_INVLPG|UVMF_LOCAL)',
    );
    assert.equal(describeHypercall(99, [1n], 64).name, 'hypercall_99');
    assert.equal(hypercallName(29), 'sched_op');
    for (let nr = 0; nr < 64; nr++)
      assert.ok(describeHypercall(nr, [1n, 2n, 3n, 4n, 5n, 6n], 64).description.startsWith('hypercall '));
  });
});
