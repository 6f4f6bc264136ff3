/**
 * Small PV guests built at test time (test/helpers/xen-guest.ts) for what
 * GRUB never exercises: trap-table bounces with Xen's frames (64-bit and
 * 32-bit compat), unhandled exceptions crashing the domain, event upcalls
 * from VIRQ_TIMER after SCHEDOP_block, console_io -EPERM, multicall.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bootGuest as boot, buildXenGuest, guestSymbol, guestWords as words } from '../helpers/xen-guest';
import { createMachine } from '../../engine/machine';
import type { Stop } from '../../engine/machine-api';

describe('guests: small PV test kernels', function () {
  this.timeout(120_000);

  it('64-bit: #PF is bounced with RCX, R11, error code, RIP, CS|mask<<32, RFLAGS, RSP, SS; CR2 in vcpu_info', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  lea fault_insn(%rip), %rax
  mov %rax, scratch+64(%rip)
  mov %rsp, scratch+72(%rip)
  mov $0x1234, %rcx
  mov $0x5678, %r11
fault_insn:
  movb $1, 0x7000000
pf_handler:
  lea scratch(%rip), %rdi
  mov %rsp, %rsi
  mov $8, %ecx
  rep movsq
  SHUTDOWN 0
traps:
  .byte 14, 0
  .word 0
  .long 0
  .quad pf_handler
  .quad 0, 0
`,
    );
    assert.equal(stop.kind, 'shutdown');
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
    const s = guestSymbol(m, 'scratch');
    const f = words(m, s, 10, 8);
    assert.equal(f[0], 0x1234n);
    assert.equal(f[1], 0x5678n);
    assert.equal(f[2], 0x2n); // write, not present, guest kernel (U/S clear)
    assert.equal(f[3], f[8]); // RIP = the faulting store
    assert.equal(f[4], 0x1_0000_e030n); // kernel CS with RPL 0, previous upcall mask 1
    assert.equal(f[5] & 0x200n, 0n); // IF = !mask = 0
    assert.equal(f[6], f[9]);
    assert.equal(f[7], 0xe02bn);
    const v = (
      m as unknown as { dom: { vcpus: { vcpuInfoOff(): number }[]; mem: { read32(o: number): number } } }
    ).dom;
    assert.equal(v.mem.read32(v.vcpus[0].vcpuInfoOff() + 0x10), 0x7000000);
  });

  it('64-bit: #DE (fault, no error code) and int3 (trap, RIP after) use the frame without an error code', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  lea de_insn(%rip), %rax
  mov %rax, scratch+128(%rip)
  lea bp_after(%rip), %rax
  mov %rax, scratch+136(%rip)
  xor %ecx, %ecx
  mov $1, %eax
de_insn:
  div %ecx
bp_insn:
  int3
bp_after:
  SHUTDOWN 1
de_handler:
  lea scratch(%rip), %rdi
  mov %rsp, %rsi
  mov $7, %ecx
  rep movsq
  lea bp_insn(%rip), %rax
  mov %rax, 16(%rsp)
  pop %rcx
  pop %r11
  push $0
  push %r11
  push %rcx
  push %rax
  mov $23, %eax
  syscall
bp_handler:
  lea scratch+64(%rip), %rdi
  mov %rsp, %rsi
  mov $7, %ecx
  rep movsq
  SHUTDOWN 0
traps:
  .byte 0, 0
  .word 0
  .long 0
  .quad de_handler
  .byte 3, 3
  .word 0
  .long 0
  .quad bp_handler
  .quad 0, 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
    const s = guestSymbol(m, 'scratch');
    const de = words(m, s, 7, 8);
    const bp = words(m, s + 64n, 7, 8);
    const [deInsn, bpAfter] = words(m, s + 128n, 2, 8);
    assert.equal(de[2], deInsn, '#DE: RIP at the faulting div');
    assert.equal(de[3] & 0xffffn, 0xe030n);
    assert.equal(de[6], 0xe02bn, 'no error code: SS at +48');
    assert.equal(bp[2], bpAfter, 'int3: RIP after the instruction');
    assert.equal(bp[6], 0xe02bn);
  });

  it('32-bit compat: INT without a gate DPL is #GP(vec<<3|2) bounced with [err, EIP, CS|mask<<16, EFLAGS]', () => {
    const { m, stop } = boot(
      32,
      `
_start:
  mov $stack_top, %esp
  mov $traps, %ebx
  HYPERCALL 0
fault_insn:
  int $0x80
gp_handler:
  mov %esp, %esi
  mov $scratch, %edi
  mov $4, %ecx
  rep movsl
  movl $fault_insn, scratch+16
  SHUTDOWN 0
traps:
  .byte 13, 0
  .word 0xe019
  .long gp_handler
  .long 0, 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
    const f = words(m, guestSymbol(m, 'scratch'), 5, 4);
    assert.equal(f[0], BigInt((0x80 << 3) | 2));
    assert.equal(f[1], f[4]);
    assert.equal(f[2], 0x1e019n);
    assert.equal(f[3] & 0x200n, 0n);
  });

  it("an exception with no trap table crashes the domain with Xen's reason", () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  ud2
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'crash');
    assert.match(
      stop.kind === 'shutdown' ? stop.description : '',
      /Unhandled invalid opcode fault\/trap \[#6\]/,
    );
    void m;
  });

  it('VIRQ_TIMER wakes SCHEDOP_block and the event callback runs with events masked', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  mov %rsi, %r15
  lea cb(%rip), %rsi
  mov $0, %edi
  HYPERCALL 30
  mov %rax, scratch+8(%rip)
  lea bv(%rip), %rsi
  mov $1, %edi
  HYPERCALL 32
  mov %rax, scratch+16(%rip)
  mov 0x28(%r15), %rsi
  or $7, %rsi
  mov $0x3ff000, %rdi
  mov $2, %edx
  HYPERCALL 14
  mov %rax, scratch+24(%rip)
  movb $0, 0x3ff001
  xor %esi, %esi
  mov $1, %edi
  HYPERCALL 29
  SHUTDOWN 1
handler:
  movq $0xe7e7, scratch(%rip)
  movzbl 0x3ff001, %eax
  mov %rax, scratch+32(%rip)
  SHUTDOWN 0
bv: .long 0, 0, 0
cb:
  .word 0, 1
  .long 0
  .quad handler
`,
    );
    const f = words(m, guestSymbol(m, 'scratch'), 5, 8);
    assert.deepEqual(f.slice(1, 4), [0n, 0n, 0n], 'callback_op / bind_virq / update_va_mapping results');
    assert.equal(f[0], 0xe7e7n, 'event callback ran');
    assert.equal(f[4], 1n, 'upcall mask set on entry');
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
    assert.ok(m.info.instructionsRetired < 1000, 'blocked time is not spent executing');
  });

  it('console_io is -EPERM for a domU; multicall writes each result', () => {
    const { m } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  mov $0, %edi
  mov $3, %esi
  lea msg(%rip), %rdx
  HYPERCALL 18
  mov %rax, scratch(%rip)
  lea mc(%rip), %rdi
  mov $2, %esi
  HYPERCALL 13
  mov %rax, scratch+8(%rip)
  mov mc+8(%rip), %rax
  mov %rax, scratch+16(%rip)
  mov mc+72(%rip), %rax
  mov %rax, scratch+24(%rip)
  SHUTDOWN 0
msg: .ascii "hi\\n"
  .data
  .balign 8
mc:
  .quad 17, 0, 0, 0, 0, 0, 0, 0
  .quad 21, 0, 0, 99, 0, 0, 0, 0
`,
    );
    const f = words(m, guestSymbol(m, 'scratch'), 4, 8);
    assert.equal(BigInt.asIntN(64, f[0]), -1n);
    assert.equal(f[1], 0n);
    assert.equal(f[2], BigInt((4 << 16) | 19));
    assert.equal(BigInt.asIntN(64, f[3]), -22n);
  });
});

describe('guests: second vCPU', function () {
  this.timeout(60_000);
  it('VCPUOP_initialise + VCPUOP_up start vCPU 1 from a vcpu_guest_context', () => {
    const kernel = buildXenGuest({
      bits: 64,
      asm: `
_start:
  lea stack_top(%rip), %rsp
  lea scratch(%rip), %rbx
  movq $4, 0x200(%rbx)
  lea secondary(%rip), %rax
  mov %rax, 0x288(%rbx)
  movq $0xe033, 0x290(%rbx)
  movq $0x200, 0x298(%rbx)
  lea scratch+0x8000(%rip), %rax
  mov %rax, 0x2a0(%rbx)
  movq $0xe02b, 0x2a8(%rbx)
  mov %cr3, %rax
  mov %rax, 0x1390(%rbx)
  mov $3, %edi
  mov $1, %esi
  HYPERCALL 24
  mov %rax, scratch+0x9018(%rip)
  mov $0, %edi
  mov $1, %esi
  mov %rbx, %rdx
  HYPERCALL 24
  mov %rax, scratch+0x9000(%rip)
  mov $1, %edi
  mov $1, %esi
  xor %edx, %edx
  HYPERCALL 24
  mov %rax, scratch+0x9008(%rip)
1:
  cmpq $0, scratch+0x9010(%rip)
  je 1b
  SHUTDOWN 0
secondary:
  movq $0x77, scratch+0x9010(%rip)
2:
  jmp 2b
`,
    });
    const m = createMachine({ name: 'smp', kernel, memory: 16, vcpus: 2, disks: [], vifs: [] });
    let stop: Stop = { kind: 'budget' };
    for (let i = 0; i < 20 && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
    const base = guestSymbol(m, 'scratch') + 0x9000n;
    const f = words(m, base, 4, 8);
    assert.equal(f[3], 0n, 'is_up(1) before up');
    assert.equal(f[0], 0n, 'initialise');
    assert.equal(f[1], 0n, 'up');
    assert.equal(f[2], 0x77n, 'vCPU 1 ran');
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
  });
});

describe('guests: failsafe callback', function () {
  this.timeout(60_000);
  it('32-bit: iret with a DS that can no longer be loaded enters the failsafe callback with [DS, ES, FS, GS, EIP, CS, EFLAGS]', () => {
    const kernel = buildXenGuest({
      bits: 32,
      asm: `
_start:
  mov $stack_top, %esp
  mov %esi, %ebp
  mov $0xe019, %ebx
  mov $fs_handler, %ecx
  mov $0xe019, %edx
  mov $fs_handler, %esi
  HYPERCALL 4
  mov %eax, results+32
  movl $0x0000ffff, scratch+8
  movl $0x00cfb300, scratch+12
  mov 0x44(%ebp), %eax
  mov $scratch, %ecx
  shr $12, %ecx
  mov (%eax,%ecx,4), %edi
  mov %edi, gdt_mfn
  mov $scratch, %ebx
  mov %edi, %ecx
  shl $12, %ecx
  or $0x21, %ecx
  xor %edx, %edx
  mov $2, %esi
  HYPERCALL 14
  mov %eax, results+36
  mov $gdt_mfn, %ebx
  mov $2, %ecx
  HYPERCALL 2
  mov %eax, results+40
  mov $0x9, %eax
  mov %eax, %ds
  mov gdt_mfn, %ebx
  shl $12, %ebx
  add $8, %ebx
  mov gdt_mfn, %ecx
  shr $20, %ecx
  mov $0x0000ffff, %edx
  mov $0x00cf3300, %esi
  HYPERCALL 10
  mov %eax, %ss:results+44
  pushl $0x200
  pushl $0xe019
  pushl $after
  pushl $0
  HYPERCALL 23
after:
  SHUTDOWN 1
fs_handler:
  mov $0xe021, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %esp, %esi
  mov $results, %edi
  mov $7, %ecx
  rep movsl
  SHUTDOWN 0
  .data
  .balign 16
gdt_mfn: .long 0
results: .fill 64, 1, 0
  .text
`,
    });
    const m = createMachine({ name: 'fs', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
    let stop: Stop = { kind: 'budget' };
    for (let i = 0; i < 20 && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
    const res = (m as unknown as { symbols: { resolve(n: string): bigint | undefined } }).symbols.resolve(
      'results',
    )!;
    const after = (m as unknown as { symbols: { resolve(n: string): bigint | undefined } }).symbols.resolve(
      'after',
    )!;
    const f = words(m, res, 12, 4);
    assert.deepEqual(
      f.slice(8, 12),
      [0n, 0n, 0n, 0n],
      'set_callbacks, update_va_mapping, set_gdt, update_descriptor',
    );
    assert.equal(f[0], 0x9n, 'DS as found');
    assert.equal(f[4], after, 'EIP');
    assert.equal(f[5] & 0xffffn, 0xe019n, 'CS');
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
  });
});

describe('guests: xenstore through the real ring', function () {
  this.timeout(60_000);
  it('transactions commit atomically and watches fire, via store_evtchn and the ring page', () => {
    const kernel = buildXenGuest({
      bits: 64,
      asm: `
_start:
  lea stack_top(%rip), %rsp
  mov %rsi, %rdi
  call c_main
  SHUTDOWN 0
`,
      c: readFileSync(join(__dirname, 'xenstore-guest.c'), 'utf8'),
    });
    const m = createMachine({ name: 'xs', kernel, memory: 16, vcpus: 1, disks: [], vifs: [] });
    let stop: Stop = { kind: 'budget' };
    for (let i = 0; i < 20 && stop.kind !== 'shutdown'; i++) stop = m.run(1_000_000);
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff');
    const res = (m as unknown as { symbols: { resolve(n: string): bigint | undefined } }).symbols.resolve(
      'results',
    )!;
    const f = words(m, res, 11, 8);
    assert.equal(f[10], 0x600dn, 'guest finished');
    assert.equal(f[0], 6n, 'TRANSACTION_START reply');
    assert.ok(f[1] > 0n, 'transaction id');
    assert.equal(f[2], 11n, 'WRITE in the transaction');
    assert.equal(f[3], 16n, 'not visible outside the transaction before commit (XS_ERROR)');
    assert.equal(f[4], 7n, 'TRANSACTION_END');
    assert.equal(f[5], 2n, 'READ after commit');
    assert.equal(f[6], 1n, 'value v1');
    assert.equal(f[7], 4n, 'WATCH ok');
    assert.equal(f[8], 15n, 'WATCH_EVENT');
    assert.equal(f[9], 1n, 'event names the path and token');
    assert.equal(m.xenstore('/local/domain/1/data/k')?.value, 'v1');
    assert.ok(m.xenstoreWatches().some((w) => w.token === 'tok'));
  });
});
