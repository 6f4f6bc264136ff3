/**
 * The hostile PV guest bodies of issue 8 (for test/helpers/xen-guest.ts
 * `buildXenGuest`, AT&T syntax starting at `_start`), shared by the
 * engine's hostile-guest tests (test/fuzz/engine-hostile.test.ts) and the
 * pause / --timeout latency tests (test/fuzz/pause-latency.test.ts).
 *
 * Hypercall numbers and sub-ops are Xen's (xen/include/public/xen.h,
 * sched.h, event_channel.h, memory.h, grant_table.h).
 */

/** 64-bit and 32-bit bodies that block with the periodic timer running and VIRQ_TIMER unbound. */
export const BLOCKERS: Record<string, Record<32 | 64, string>> = {
  hlt: { 64: `_start:\n  hlt\n  jmp _start\n`, 32: `_start:\n  hlt\n  jmp _start\n` },
  SCHEDOP_block: {
    64: `_start:\n  mov $1, %edi\n  xor %esi, %esi\n  HYPERCALL 29\n  jmp _start\n`,
    32: `_start:\n  mov $1, %ebx\n  xor %ecx, %ecx\n  HYPERCALL 29\n  jmp _start\n`,
  },
  'SCHEDOP_poll with no ports': {
    64: `_start:\n  mov $3, %edi\n  lea scratch(%rip), %rsi\n  HYPERCALL 29\n  jmp _start\n`,
    32: `_start:\n  mov $3, %ebx\n  mov $scratch, %ecx\n  HYPERCALL 29\n  jmp _start\n`,
  },
};

/** 64-bit prologue: closes the console and xenstore ports first (EVTCHNOP_close), so that nothing at all can wake the guest. */
export const CLOSE_PORTS_64 = `
  lea stack_top(%rip), %rsp
  movl $1, scratch+256(%rip)
  mov $3, %edi
  lea scratch+256(%rip), %rsi
  HYPERCALL 32
  movl $2, scratch+256(%rip)
  mov $3, %edi
  lea scratch+256(%rip), %rsi
  HYPERCALL 32
`;

/** 64-bit `hlt` loop with its console and xenstore ports closed: "blocked forever". */
export const BLOCKED_FOREVER_64 = `_start:\n${CLOSE_PORTS_64}\n1:\n  hlt\n  jmp 1b\n`;

/** 64-bit busy loop: one instruction, no hypercall, no memory access. */
export const BUSY_LOOP_64 = `_start:\n  jmp _start\n`;

/** 64-bit loops of long (preemptible) hypercalls or of one cheap hypercall. */
export const HYPERCALL_LOOPS: Record<string, string> = {
  'multicall(buf, 1024) over zeroed memory': `_start:\n  lea scratch(%rip), %rdi\n  mov $1024, %esi\n  HYPERCALL 13\n  jmp _start\n`,
  'xen_version loop': `_start:\n  xor %edi, %edi\n  xor %esi, %esi\n  HYPERCALL 17\n  jmp _start\n`,
  'mmu_update(zeroed, 0x7fffffff)': `_start:\n  lea scratch(%rip), %rdi\n  mov $0x7fffffff, %esi\n  xor %edx, %edx\n  mov $0x7ff0, %r10d\n  HYPERCALL 1\n  jmp _start\n`,
  'increase_reservation(NULL, 2^26-1 extents)': `_start:\n  lea scratch(%rip), %rsi\n  movq $0x3ffffff, 8(%rsi)\n  movw $0x7ff0, 24(%rsi)\n  xor %edi, %edi\n  HYPERCALL 12\n  jmp _start\n`,
  'grant copy of 2^31-1 zeroed ops': `_start:\n  mov $5, %edi\n  lea scratch(%rip), %rsi\n  mov $0x7fffffff, %edx\n  HYPERCALL 20\n  jmp _start\n`,
};

/** 64-bit loops of REP string instructions (long REP work per instruction). */
export const REP_LOOPS: Record<string, string> = {
  'a loop of 4000-byte rep stosb': `_start:\n  lea scratch(%rip), %rdi\n  mov $4000, %ecx\n  rep stosb\n  jmp _start\n`,
  'a loop of 65536-byte rep movsb and xen_version': `_start:\n  lea scratch(%rip), %rsi\n  mov %rsi, %rdi\n  mov $65536, %ecx\n  rep movsb\n  xor %edi, %edi\n  xor %esi, %esi\n  HYPERCALL 17\n  jmp _start\n`,
};
