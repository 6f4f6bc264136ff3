/**
 * Hypercall numbers of Xen's public/xen.h (`__HYPERVISOR_*`) and arch-x86/xen.h
 * and arch-x86/xen-mca.h (`__HYPERVISOR_mca` is x86's arch_0; 49 is named
 * paging_domctl_cont as Xen's hypercall-defs.c calls it), as TypeScript constants named exactly as Xen names them, and the
 * number -> name table that dispatch errors, trace text, filter conditions and
 * the debugger's descriptions share. engine/debug imports this, never the other
 * way round. test/unit/xen-public-headers.test.ts checks every number against
 * the headers of Debian's libxen-dev.
 */

export const __HYPERVISOR_set_trap_table = 0;
export const __HYPERVISOR_mmu_update = 1;
export const __HYPERVISOR_set_gdt = 2;
export const __HYPERVISOR_stack_switch = 3;
export const __HYPERVISOR_set_callbacks = 4;
export const __HYPERVISOR_fpu_taskswitch = 5;
export const __HYPERVISOR_sched_op_compat = 6;
export const __HYPERVISOR_platform_op = 7;
export const __HYPERVISOR_set_debugreg = 8;
export const __HYPERVISOR_get_debugreg = 9;
export const __HYPERVISOR_update_descriptor = 10;
export const __HYPERVISOR_memory_op = 12;
export const __HYPERVISOR_multicall = 13;
export const __HYPERVISOR_update_va_mapping = 14;
export const __HYPERVISOR_set_timer_op = 15;
export const __HYPERVISOR_event_channel_op_compat = 16;
export const __HYPERVISOR_xen_version = 17;
export const __HYPERVISOR_console_io = 18;
export const __HYPERVISOR_physdev_op_compat = 19;
export const __HYPERVISOR_grant_table_op = 20;
export const __HYPERVISOR_vm_assist = 21;
export const __HYPERVISOR_update_va_mapping_otherdomain = 22;
export const __HYPERVISOR_iret = 23;
export const __HYPERVISOR_vcpu_op = 24;
export const __HYPERVISOR_set_segment_base = 25;
export const __HYPERVISOR_mmuext_op = 26;
export const __HYPERVISOR_xsm_op = 27;
export const __HYPERVISOR_nmi_op = 28;
export const __HYPERVISOR_sched_op = 29;
export const __HYPERVISOR_callback_op = 30;
export const __HYPERVISOR_xenoprof_op = 31;
export const __HYPERVISOR_event_channel_op = 32;
export const __HYPERVISOR_physdev_op = 33;
export const __HYPERVISOR_hvm_op = 34;
export const __HYPERVISOR_sysctl = 35;
export const __HYPERVISOR_domctl = 36;
export const __HYPERVISOR_kexec_op = 37;
export const __HYPERVISOR_tmem_op = 38;
export const __HYPERVISOR_argo_op = 39;
export const __HYPERVISOR_xenpmu_op = 40;
export const __HYPERVISOR_dm_op = 41;
export const __HYPERVISOR_hypfs_op = 42;
export const __HYPERVISOR_arch_0 = 48;
export const __HYPERVISOR_arch_1 = 49;
export const __HYPERVISOR_arch_2 = 50;
export const __HYPERVISOR_arch_3 = 51;
export const __HYPERVISOR_arch_4 = 52;
export const __HYPERVISOR_arch_5 = 53;
export const __HYPERVISOR_arch_6 = 54;
export const __HYPERVISOR_arch_7 = 55;

/** x86's name of arch_0 (arch-x86/xen-mca.h). */
export const __HYPERVISOR_mca = __HYPERVISOR_arch_0;

/** Hypercall number -> Xen's name without the `__HYPERVISOR_` prefix (x86 names for 48 and 49). */
export const HYPERCALL_NAMES: Readonly<Record<number, string>> = {
  [__HYPERVISOR_set_trap_table]: 'set_trap_table',
  [__HYPERVISOR_mmu_update]: 'mmu_update',
  [__HYPERVISOR_set_gdt]: 'set_gdt',
  [__HYPERVISOR_stack_switch]: 'stack_switch',
  [__HYPERVISOR_set_callbacks]: 'set_callbacks',
  [__HYPERVISOR_fpu_taskswitch]: 'fpu_taskswitch',
  [__HYPERVISOR_sched_op_compat]: 'sched_op_compat',
  [__HYPERVISOR_platform_op]: 'platform_op',
  [__HYPERVISOR_set_debugreg]: 'set_debugreg',
  [__HYPERVISOR_get_debugreg]: 'get_debugreg',
  [__HYPERVISOR_update_descriptor]: 'update_descriptor',
  [__HYPERVISOR_memory_op]: 'memory_op',
  [__HYPERVISOR_multicall]: 'multicall',
  [__HYPERVISOR_update_va_mapping]: 'update_va_mapping',
  [__HYPERVISOR_set_timer_op]: 'set_timer_op',
  [__HYPERVISOR_event_channel_op_compat]: 'event_channel_op_compat',
  [__HYPERVISOR_xen_version]: 'xen_version',
  [__HYPERVISOR_console_io]: 'console_io',
  [__HYPERVISOR_physdev_op_compat]: 'physdev_op_compat',
  [__HYPERVISOR_grant_table_op]: 'grant_table_op',
  [__HYPERVISOR_vm_assist]: 'vm_assist',
  [__HYPERVISOR_update_va_mapping_otherdomain]: 'update_va_mapping_otherdomain',
  [__HYPERVISOR_iret]: 'iret',
  [__HYPERVISOR_vcpu_op]: 'vcpu_op',
  [__HYPERVISOR_set_segment_base]: 'set_segment_base',
  [__HYPERVISOR_mmuext_op]: 'mmuext_op',
  [__HYPERVISOR_xsm_op]: 'xsm_op',
  [__HYPERVISOR_nmi_op]: 'nmi_op',
  [__HYPERVISOR_sched_op]: 'sched_op',
  [__HYPERVISOR_callback_op]: 'callback_op',
  [__HYPERVISOR_xenoprof_op]: 'xenoprof_op',
  [__HYPERVISOR_event_channel_op]: 'event_channel_op',
  [__HYPERVISOR_physdev_op]: 'physdev_op',
  [__HYPERVISOR_hvm_op]: 'hvm_op',
  [__HYPERVISOR_sysctl]: 'sysctl',
  [__HYPERVISOR_domctl]: 'domctl',
  [__HYPERVISOR_kexec_op]: 'kexec_op',
  [__HYPERVISOR_tmem_op]: 'tmem_op',
  [__HYPERVISOR_argo_op]: 'argo_op',
  [__HYPERVISOR_xenpmu_op]: 'xenpmu_op',
  [__HYPERVISOR_dm_op]: 'dm_op',
  [__HYPERVISOR_hypfs_op]: 'hypfs_op',
  [__HYPERVISOR_mca]: 'mca',
  // Xen's internal name for arch_1 on x86 (xen/include/hypercall-defs.c), not in the public headers.
  [__HYPERVISOR_arch_1]: 'paging_domctl_cont',
  [__HYPERVISOR_arch_2]: 'arch_2',
  [__HYPERVISOR_arch_3]: 'arch_3',
  [__HYPERVISOR_arch_4]: 'arch_4',
  [__HYPERVISOR_arch_5]: 'arch_5',
  [__HYPERVISOR_arch_6]: 'arch_6',
  [__HYPERVISOR_arch_7]: 'arch_7',
};

/** Name of hypercall `nr` (Xen's, without `__HYPERVISOR_`), or `hypercall_<nr>` when undefined. */
export function hypercallName(nr: number): string {
  return HYPERCALL_NAMES[nr] ?? `hypercall_${nr}`;
}

/** Virtual interrupts (xen.h VIRQ_*); engine/xen/event-channel.ts VIRQ_NAMES names them by number. */
export const VIRQ_TIMER = 0;
export const VIRQ_DEBUG = 1;
export const VIRQ_CONSOLE = 2;
export const VIRQ_DOM_EXC = 3;
export const VIRQ_TBUF = 4;
export const VIRQ_DEBUGGER = 6;
export const VIRQ_XENOPROF = 7;
export const VIRQ_CON_RING = 8;
export const VIRQ_PCPU_STATE = 9;
export const VIRQ_MEM_EVENT = 10;
export const VIRQ_ARGO = 11;
export const VIRQ_ENOMEM = 12;
export const VIRQ_XENPMU = 13;
export const VIRQ_ARCH_0 = 16;
export const VIRQ_ARCH_1 = 17;
export const VIRQ_ARCH_2 = 18;
export const VIRQ_ARCH_3 = 19;
export const VIRQ_ARCH_4 = 20;
export const VIRQ_ARCH_5 = 21;
export const VIRQ_ARCH_6 = 22;
export const VIRQ_ARCH_7 = 23;
/** Number of VIRQs (xen.h NR_VIRQS). */
export const NR_VIRQS = 24;
