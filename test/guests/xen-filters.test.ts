/**
 * Hypervisor-level stops of Machine.run (filters): a hypercall stop happens
 * before the call with RIP at the `syscall`, resuming runs it once without
 * stopping again; mmu-reject stops after Xen's refusal with its reason and
 * errno; crash stops before teardown; a page-fault stop precedes the bounce.
 */
import { strict as assert } from 'node:assert';
import { buildXenGuest } from '../helpers/xen-guest';
import { createMachine } from '../../engine/machine';

const GUEST = `
_start:
  lea stack_top(%rip), %rsp
  xor %edi, %edi
  xor %esi, %esi
  HYPERCALL 17
  mov %rax, %r13
  mov $0x2000, %rdi
  mov $0x2013, %rsi     # PCD in an L1 entry: refused for a domU
  mov $2, %edx
  HYPERCALL 14
  mov %rax, %r14
  ud2
`;

function machine() {
  const kernel = buildXenGuest({ bits: 64, asm: GUEST });
  return createMachine({ name: 'f', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
}

describe('guests: debugger stops from the hypervisor model', function () {
  this.timeout(60_000);

  it('stops before a hypercall, resumes it exactly once, then stops at the next', () => {
    const m = machine();
    m.setFilter('hypercall', true);
    const s1 = m.run(1_000_000);
    assert.equal(s1.kind, 'filter');
    assert.equal(s1.kind === 'filter' && s1.filter, 'hypercall');
    assert.match(s1.kind === 'filter' ? s1.description : '', /xen_version/);
    const rip = m.getRegisters(0).rip;
    assert.deepEqual([...m.readMemory('virtual', rip, 2, 0)], [0x0f, 0x05]);
    const s2 = m.run(1_000_000);
    assert.equal(s2.kind === 'filter' && s2.filter, 'hypercall');
    assert.match(s2.kind === 'filter' ? s2.description : '', /update_va_mapping/);
    assert.equal(m.getRegisters(0).r13, BigInt((4 << 16) | 19));
  });

  it('stops on an MMU refusal with Xen-like reason and errno, then on the crash', () => {
    const m = machine();
    m.setFilter('mmu-reject', true);
    m.setFilter('crash', true);
    const s1 = m.run(1_000_000);
    assert.equal(s1.kind === 'filter' && s1.filter, 'mmu-reject');
    if (s1.kind !== 'filter') return;
    assert.equal(s1.details.errno, -22);
    assert.ok(String(s1.details.reason).length > 5);
    const s2 = m.run(1_000_000);
    assert.equal(s2.kind === 'filter' && s2.filter, 'crash');
    assert.equal(BigInt.asIntN(64, m.getRegisters(0).r14), -22n);
    const s3 = m.run(1_000_000);
    assert.equal(s3.kind, 'shutdown');
    assert.equal(s3.kind === 'shutdown' && s3.reason, 'crash');
    assert.equal(m.finished, true);
  });

  it('step, registers by name and the inspection views work on a stopped machine', () => {
    const m = machine();
    const s = m.step(0);
    assert.equal(s.kind, 'step');
    assert.ok(m.info.instructionsRetired >= 1);
    const regs = m.getRegisters(0);
    assert.equal(regs.cs, 0xe033n);
    m.setRegister(0, 'rbx', 0x55n);
    assert.equal(m.getRegisters(0).rbx, 0x55n);
    assert.throws(() => m.setRegister(0, 'nosuchreg', 1n), /cannot be written/);
    const info = m.domainInfo();
    assert.equal(info.magic, 'xen-3.0-x86_64');
    const ev = m.evtchns();
    assert.deepEqual(
      ev.ports.map((p) => [p.port, p.state, p.backend]),
      [
        [1, 'interdomain', 'xenstored'],
        [2, 'interdomain', 'console'],
      ],
    );
    assert.equal(m.grants().length, 2);
    const w = m.walk(0, 0x1000n);
    assert.ok(w.maddr !== null && w.pfn === 1n);
    assert.equal(m.pageTable(0, 'kernel')?.level, 4);
    assert.ok(m.xenstore('/local/domain/1'));
  });

  it('stops before an event upcall (VIRQ_TIMER after SCHEDOP_block); resuming delivers it', () => {
    const kernel = buildXenGuest({
      bits: 64,
      asm: `
_start:
  lea stack_top(%rip), %rsp
  mov %rsi, %r15
  lea cb(%rip), %rsi
  mov $0, %edi
  HYPERCALL 30
  lea bv(%rip), %rsi
  mov $1, %edi
  HYPERCALL 32
  mov 0x28(%r15), %rsi
  or $7, %rsi
  mov $0x3ff000, %rdi
  mov $2, %edx
  HYPERCALL 14
  movb $0, 0x3ff001
  xor %esi, %esi
  mov $1, %edi
  HYPERCALL 29
  SHUTDOWN 1
handler:
  SHUTDOWN 0
bv: .long 0, 0, 0
cb:
  .word 0, 1
  .long 0
  .quad handler
`,
    });
    const m = createMachine({ name: 'ev', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
    m.setFilter('event', true);
    const s1 = m.run(10_000_000);
    assert.equal(s1.kind === 'filter' && s1.filter, 'event');
    assert.equal(s1.kind === 'filter' && s1.details.kind, 'upcall');
    const port = s1.kind === 'filter' ? Number(s1.details.port) : -1;
    assert.equal(m.evtchns().ports.find((p) => p.port === port)?.virqName, 'VIRQ_TIMER');
    const s2 = m.run(10_000_000);
    assert.equal(s2.kind === 'shutdown' && s2.reason, 'poweroff');
    assert.equal(m.evtchns().ports.find((p) => p.port === port)?.upcalls, 1);
  });
});

describe('guests: pause', function () {
  it('pause() between runs makes the next run return pause at once; the run after continues', () => {
    const kernel = buildXenGuest({ bits: 64, asm: '_start:\n  lea stack_top(%rip), %rsp\n1:\n  jmp 1b\n' });
    const m = createMachine({ name: 'p', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
    m.run(1000);
    const before = m.info.instructionsRetired;
    m.pause();
    assert.equal(m.run(1000).kind, 'pause');
    assert.equal(m.info.instructionsRetired, before);
    assert.equal(m.run(1000).kind, 'budget');
    assert.ok(m.info.instructionsRetired >= before + 1000);
  });
});
