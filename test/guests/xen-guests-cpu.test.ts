/**
 * Small PV test kernels (test/helpers/xen-guest.ts) for the CPU's system
 * side as a PV guest sees it through the Xen model: a 32-bit kernel's first
 * stack loaded with `lss`, debug registers through HYPERVISOR_set_debugreg
 * and #DB bounces, and the virtual CR0.TS of HYPERVISOR_fpu_taskswitch with
 * #NM bounces.
 */
import { strict as assert } from 'node:assert';
import { bootGuest as boot, guestSymbol, guestWords as words } from '../helpers/xen-guest';

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
    const f = words(m, guestSymbol(m, 'scratch'), 3, 4);
    assert.equal(f[0], 0xe021n);
    assert.equal(f[1], guestSymbol(m, 'stack_top') - 4n);
    assert.equal(f[2], 0x5a5a1234n);
  });

  it('64-bit: set_debugreg validates as Xen does; an instruction breakpoint set through it is bounced as #DB', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  mov $0, %edi
  mov $0xffff800000001000, %rsi
  HYPERCALL 8
  mov %rax, scratch(%rip)
  mov $7, %edi
  mov $0x2001, %esi
  HYPERCALL 8
  mov %rax, scratch+8(%rip)
  mov $7, %edi
  mov $0x100000001, %rsi
  HYPERCALL 8
  mov %rax, scratch+16(%rip)
  mov $8, %edi
  xor %esi, %esi
  HYPERCALL 8
  mov %rax, scratch+24(%rip)
  mov $7, %edi
  mov $0x20003, %esi
  HYPERCALL 8
  mov %rax, scratch+32(%rip)
  mov $0, %edi
  lea target(%rip), %rsi
  HYPERCALL 8
  mov $7, %edi
  mov $1, %esi
  HYPERCALL 8
  mov %rax, scratch+40(%rip)
target:
  nop
  SHUTDOWN 1
db_handler:
  mov (%rsp), %rax
  mov %rax, scratch+48(%rip)
  mov 16(%rsp), %rax
  mov %rax, scratch+56(%rip)
  mov $6, %edi
  HYPERCALL 9
  mov %rax, scratch+64(%rip)
  SHUTDOWN 0
traps:
  .byte 1, 0
  .word 0
  .long 0
  .quad db_handler
  .quad 0, 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, guestSymbol(m, 'scratch'), 9, 8);
    const neg = (e: number) => BigInt.asUintN(64, BigInt(-e));
    assert.equal(f[0], neg(1), 'DR0 in the hypervisor range: -EPERM');
    assert.equal(f[1], neg(1), 'DR7.GD: -EPERM');
    assert.equal(f[2], neg(22), 'DR7 upper bits: -EINVAL');
    assert.equal(f[3], neg(19), 'DR8: -ENODEV');
    assert.equal(f[4], neg(1), 'I/O breakpoint without CR4.DE: -EPERM');
    assert.equal(f[5], 0n);
    assert.equal(
      f[7],
      guestSymbol(m, 'target'),
      '#DB fault frame (RCX, R11, RIP): RIP at the breakpointed instruction',
    );
    assert.equal(f[8] & 0xfn, 1n, 'get_debugreg(6): B0');
  });

  it('64-bit: with the guest CR4.DE, DR4/DR5 are -ENODEV / #UD and an I/O breakpoint traps emulated OUT as #DB', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  mov $6, %edi
  lea iopl(%rip), %rsi
  HYPERCALL 33
  mov $5, %edi
  mov $0x20001, %esi
  HYPERCALL 8
  mov %rax, scratch(%rip)
  mov %cr4, %rax
  or $8, %rax
  mov %rax, %cr4
  mov %cr4, %rax
  mov %rax, scratch+8(%rip)
  mov $4, %edi
  xor %esi, %esi
  HYPERCALL 8
  mov %rax, scratch+16(%rip)
  mov $0, %edi
  mov $0x80, %esi
  HYPERCALL 8
  mov $7, %edi
  mov $0x20001, %esi
  HYPERCALL 8
  mov %rax, scratch+24(%rip)
  mov $7, %edi
  HYPERCALL 9
  mov %rax, scratch+32(%rip)
  mov $0x81, %al
  out %al, $0x81
  out %al, $0x80
after_out:
  nop
  mov %dr4, %rax
  SHUTDOWN 1
db_handler:
  mov 16(%rsp), %rax
  mov %rax, scratch+40(%rip)
  mov $6, %edi
  HYPERCALL 9
  mov %rax, scratch+48(%rip)
  mov 16(%rsp), %rax
  jmp *%rax
ud_handler:
  mov 16(%rsp), %rax
  mov %rax, scratch+56(%rip)
  SHUTDOWN 0
iopl:
  .long 1
traps:
  .byte 1, 0
  .word 0
  .long 0
  .quad db_handler
  .byte 6, 0
  .word 0
  .long 0
  .quad ud_handler
  .quad 0, 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, guestSymbol(m, 'scratch'), 8, 8);
    const neg = (e: number) => BigInt.asUintN(64, BigInt(-e));
    assert.equal(f[0], neg(1), 'I/O breakpoint through DR5 (alias of DR7) without CR4.DE: -EPERM');
    assert.equal(f[1] & 8n, 8n, 'the guest CR4 keeps DE');
    assert.equal(f[2], neg(19), 'set_debugreg(4) with CR4.DE: -ENODEV');
    assert.equal(f[3], 0n, 'I/O breakpoint with CR4.DE accepted');
    assert.equal(f[4], 0x20401n, 'get_debugreg(7) merges the emulated I/O enables back');
    assert.equal(
      f[5],
      guestSymbol(m, 'after_out'),
      '#DB trap frame RIP after the OUT to port 0x80 (not after 0x81)',
    );
    assert.equal(f[6] & 0xfn, 1n, 'DR6.B0 for the I/O breakpoint');
    assert.equal(
      f[7],
      guestSymbol(m, 'after_out') + 1n,
      '#UD for MOV from DR4 with CR4.DE, at the instruction',
    );
  });

  it('64-bit: fpu_taskswitch(1) makes fninit raise #NM, bounced with the virtual TS then clear; CLTS is emulated', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  mov $1, %edi
  HYPERCALL 5
  mov %cr0, %rax
  mov %rax, scratch(%rip)
nm_insn:
  fninit
  movq $1, scratch+24(%rip)
  mov $1, %edi
  HYPERCALL 5
  clts
  mov %cr0, %rax
  mov %rax, scratch+32(%rip)
  fninit
  SHUTDOWN 0
nm_handler:
  mov 16(%rsp), %rax
  mov %rax, scratch+8(%rip)
  mov %cr0, %rax
  mov %rax, scratch+16(%rip)
  mov 8(%rsp), %rcx
  mov 16(%rsp), %r11
  add $16, %rsp
  jmp *scratch_ret(%rip)
scratch_ret:
  .quad 0
traps:
  .byte 7, 0
  .word 0
  .long 0
  .quad nm_handler
  .quad 0, 0
`,
    );
    void stop;
    const f = words(m, guestSymbol(m, 'scratch'), 5, 8);
    assert.equal(f[0] & 8n, 8n, 'CR0.TS read back after fpu_taskswitch(1)');
    assert.equal(f[1], guestSymbol(m, 'nm_insn'), '#NM frame: RIP at fninit');
    assert.equal(f[2] & 8n, 0n, 'virtual TS clear in the #NM handler');
  });
});
