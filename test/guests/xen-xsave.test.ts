/**
 * The XSAVE feature set as a PV guest sees it through the Xen model: Xen's
 * OSXSAVE leak on the enlightened CPUID path (xen/arch/x86/cpuid.c
 * guest_cpuid, what PV Linux's xen_check_xsave reads) against the
 * architectural bit of native CPUID, the guest's virtual CR4 (Xen
 * pv_fixup_guest_cr4: OSXSAVE guest-controllable), and XSETBV emulated as
 * Xen does (x86_emulate xsetbv -> handle_xsetbv): #UD while the guest's
 * CR4.OSXSAVE is clear, XCR0 = x87 or x87|SSE accepted, other values #GP(0);
 * XGETBV and XSAVE run natively.
 */
import { strict as assert } from 'node:assert';
import { bootGuest as boot, guestSymbol, guestWords as words } from '../helpers/xen-guest';

describe('guests: XSAVE, XGETBV/XSETBV and CR4.OSXSAVE in PV kernels', function () {
  this.timeout(120_000);

  it('OSXSAVE leaks only on the forced-emulation CPUID; XSETBV is #UD until the guest sets CR4.OSXSAVE, then emulated with Xen checks', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  lea traps(%rip), %rdi
  HYPERCALL 0
  mov $1, %eax
  xor %ecx, %ecx
  .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2
  mov %rcx, scratch(%rip)
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  mov %rcx, scratch+8(%rip)
  mov %cr4, %rax
  mov %rax, scratch+16(%rip)
  xor %ecx, %ecx
  xor %edx, %edx
  mov $3, %eax
ud_insn:
  xsetbv
after_ud:
  mov %cr4, %rax
  or $0x40000, %rax
  mov %rax, %cr4
  mov %cr4, %rax
  mov %rax, scratch+32(%rip)
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  mov %rcx, scratch+40(%rip)
  mov $1, %eax
  xor %ecx, %ecx
  xor %edx, %edx
  xsetbv
  xor %ecx, %ecx
  xgetbv
  mov %rax, scratch+48(%rip)
  mov $3, %eax
  xor %ecx, %ecx
  xor %edx, %edx
  xsetbv
  mov scratch+0x1200(%rip), %rax
  mov %rax, scratch+80(%rip)
  lea scratch+0x1000(%rip), %rdi
  xor %edx, %edx
  mov $3, %eax
  xsave64 (%rdi)
  mov scratch+0x1200(%rip), %rax
  mov %rax, scratch+80(%rip)
  fld1
  pcmpeqd %xmm3, %xmm3
  mov $3, %eax
  xor %edx, %edx
  xsave64 (%rdi)
  mov scratch+0x1200(%rip), %rax
  mov %rax, scratch+56(%rip)
  mov $2, %eax
  xor %ecx, %ecx
  xor %edx, %edx
gp_insn:
  xsetbv
after_gp:
  xor %ecx, %ecx
  xgetbv
  mov %rax, scratch+64(%rip)
  SHUTDOWN 0
ud_handler:
  mov 16(%rsp), %rax
  mov %rax, scratch+24(%rip)
  lea stack_top(%rip), %rsp
  jmp after_ud
gp_handler:
  mov 24(%rsp), %rax
  mov %rax, scratch+72(%rip)
  mov 16(%rsp), %rax
  mov %rax, scratch+88(%rip)
  lea stack_top(%rip), %rsp
  jmp after_gp
traps:
  .byte 6, 0
  .word 0
  .long 0
  .quad ud_handler
  .byte 13, 0
  .word 0
  .long 0
  .quad gp_handler
  .quad 0, 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, guestSymbol(m, 'scratch'), 12, 8);
    const XSAVE = 1n << 26n;
    const OSXSAVE = 1n << 27n;
    assert.equal(
      f[0] & (XSAVE | OSXSAVE),
      XSAVE | OSXSAVE,
      'forced CPUID in kernel mode: XSAVE and the leaked OSXSAVE',
    );
    assert.equal(f[1] & (XSAVE | OSXSAVE), XSAVE, 'native CPUID: OSXSAVE follows the guest CR4 (clear)');
    assert.equal(f[2], 0x620n, 'guest CR4 view: PAE | OSFXSR | OSXMMEXCPT (Xen PV_CR4_GUEST_VISIBLE_MASK)');
    assert.equal(
      f[3],
      guestSymbol(m, 'ud_insn'),
      'XSETBV with the guest CR4.OSXSAVE clear: #UD at the instruction',
    );
    assert.equal(f[4], 0x40620n, 'the guest may set CR4.OSXSAVE');
    assert.equal(f[5] & OSXSAVE, OSXSAVE, 'native CPUID: OSXSAVE now set');
    assert.equal(f[6], 1n, 'XSETBV 1 emulated, XGETBV reads it');
    assert.equal(f[10], 0n, 'XSAVE before any x87/SSE use: XSTATE_BV 0 (both components initial)');
    assert.equal(f[7], 3n, 'XSAVE after fld1 and pcmpeqd: XSTATE_BV = x87|SSE');
    assert.equal(f[9], guestSymbol(m, 'gp_insn'), 'XSETBV 2 (x87 clear): #GP(0) at the instruction');
    assert.equal(f[11], 0n, '#GP error code 0');
    assert.equal(f[8], 3n, 'XCR0 unchanged by the rejected XSETBV');
  });
  it('32-bit (ring 1): the forced CPUID leaks OSXSAVE; after MOV CR4 sets OSXSAVE, XSETBV is emulated and XSAVE runs', () => {
    const { m, stop } = boot(
      32,
      `
_start:
  mov $stack_top, %esp
  mov $1, %eax
  xor %ecx, %ecx
  .byte 0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2
  mov %ecx, scratch
  mov %cr4, %eax
  or $0x40000, %eax
  mov %eax, %cr4
  mov %cr4, %eax
  mov %eax, scratch+4
  mov $1, %eax
  xor %ecx, %ecx
  xor %edx, %edx
  xsetbv
  xor %ecx, %ecx
  xgetbv
  mov %eax, scratch+8
  mov $3, %eax
  xor %ecx, %ecx
  xor %edx, %edx
  xsetbv
  fld1
  mov $3, %eax
  xor %edx, %edx
  mov $scratch+0x1000, %edi
  xsavec (%edi)
  mov scratch+0x1200, %eax
  mov %eax, scratch+12
  mov scratch+0x1208, %eax
  mov %eax, scratch+16
  mov scratch+0x120c, %eax
  mov %eax, scratch+20
  SHUTDOWN 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, guestSymbol(m, 'scratch'), 6, 4);
    assert.equal(f[0] & (3n << 26n), 3n << 26n, 'forced CPUID at ring 1: XSAVE and OSXSAVE');
    assert.equal(f[1] & 0x40000n, 0x40000n, 'guest CR4.OSXSAVE set');
    assert.equal(f[2], 1n, 'XSETBV 1 from ring 1 emulated');
    assert.equal(f[3], 1n, 'XSAVEC: XSTATE_BV = x87 only (SSE initial, MXCSR default)');
    assert.equal(f[4], 3n, 'XCOMP_BV[31:0] = RFBM');
    assert.equal(f[5], 0x80000000n, 'XCOMP_BV[63]: compacted');
  });
  it('64-bit: the guest CR4 keeps TSD (kernel RDTSC still works: emulated) and DE, drops FSGSBASE', () => {
    const { m, stop } = boot(
      64,
      `
_start:
  lea stack_top(%rip), %rsp
  mov %cr4, %rax
  or $0x1000c, %rax
  mov %rax, %cr4
  mov %cr4, %rax
  mov %rax, scratch(%rip)
  rdtsc
  mov %rax, scratch+8(%rip)
  SHUTDOWN 0
`,
    );
    assert.equal(stop.kind === 'shutdown' && stop.reason, 'poweroff', JSON.stringify(stop));
    const f = words(m, guestSymbol(m, 'scratch'), 2, 8);
    assert.equal(f[0], 0x62cn, 'TSD and DE (bit 3) kept; FSGSBASE (bit 16) dropped');
    assert.ok(f[1] > 0n, 'RDTSC in guest kernel mode with TSD: emulated');
  });
});
