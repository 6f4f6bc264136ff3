/**
 * Names of Xen's hypercalls, sub-operations, special domain ids, errno values
 * and x86 exception vectors, for the debugger's descriptions and filter
 * conditions. Numbers follow Xen's public headers (xen.h, event_channel.h,
 * grant_table.h, memory.h, sched.h, vcpu.h, callback.h, version.h, physdev.h,
 * errno.h) as summarised in shared/design/xen-pv-abi.md §3.2 and §3.6, and the
 * SDM vol. 3 §6.3.1 (exception vectors).
 */

// Hypercall numbers and names live with the rest of Xen's ABI in engine/xen/public/.
export { HYPERCALL_NAMES, hypercallName } from '../xen/public/xen';

/** Sub-operation tables of the multiplexed hypercalls: hypercall number -> { prefix, names by cmd }. */
export const SUBOPS: Record<number, { prefix: string; names: Record<number, string>; mask?: number }> = {
  12: {
    prefix: 'XENMEM_',
    mask: 0x3f,
    names: {
      0: 'increase_reservation',
      1: 'decrease_reservation',
      2: 'maximum_ram_page',
      3: 'current_reservation',
      4: 'maximum_reservation',
      5: 'machphys_mfn_list',
      6: 'populate_physmap',
      7: 'add_to_physmap',
      9: 'memory_map',
      10: 'machine_memory_map',
      11: 'exchange',
      12: 'machphys_mapping',
      13: 'set_memory_map',
      14: 'maximum_gpfn',
      15: 'remove_from_physmap',
      16: 'set_pod_target',
      17: 'get_pod_target',
      18: 'get_sharing_freed_pages',
      19: 'get_sharing_shared_pages',
      20: 'paging_op',
      21: 'access_op',
      22: 'sharing_op',
      23: 'add_to_physmap_batch',
      24: 'claim_pages',
      25: 'machphys_compat_mfn_list',
      26: 'get_vnumainfo',
      27: 'reserved_device_memory_map',
      28: 'acquire_resource',
    },
  },
  32: {
    prefix: 'EVTCHNOP_',
    names: {
      0: 'bind_interdomain',
      1: 'bind_virq',
      2: 'bind_pirq',
      3: 'close',
      4: 'send',
      5: 'status',
      6: 'alloc_unbound',
      7: 'bind_ipi',
      8: 'bind_vcpu',
      9: 'unmask',
      10: 'reset',
      11: 'init_control',
      12: 'expand_array',
      13: 'set_priority',
    },
  },
  20: {
    prefix: 'GNTTABOP_',
    names: {
      0: 'map_grant_ref',
      1: 'unmap_grant_ref',
      2: 'setup_table',
      3: 'dump_table',
      4: 'transfer',
      5: 'copy',
      6: 'query_size',
      7: 'unmap_and_replace',
      8: 'set_version',
      9: 'get_status_frames',
      10: 'get_version',
      11: 'swap_grant_ref',
      12: 'cache_flush',
    },
  },
  29: {
    prefix: 'SCHEDOP_',
    names: {
      0: 'yield',
      1: 'block',
      2: 'shutdown',
      3: 'poll',
      4: 'remote_shutdown',
      5: 'shutdown_code',
      6: 'watchdog',
      7: 'pin_override',
    },
  },
  6: { prefix: 'SCHEDOP_', names: { 0: 'yield', 1: 'block', 2: 'shutdown' } },
  24: {
    prefix: 'VCPUOP_',
    names: {
      0: 'initialise',
      1: 'up',
      2: 'down',
      3: 'is_up',
      4: 'get_runstate_info',
      5: 'register_runstate_memory_area',
      6: 'set_periodic_timer',
      7: 'stop_periodic_timer',
      8: 'set_singleshot_timer',
      9: 'stop_singleshot_timer',
      10: 'register_vcpu_info',
      11: 'send_nmi',
      12: 'get_physid',
      13: 'register_vcpu_time_memory_area',
      14: 'register_runstate_phys_area',
      15: 'register_vcpu_time_phys_area',
    },
  },
  30: { prefix: 'CALLBACKOP_', names: { 0: 'register', 1: 'unregister' } },
  17: {
    prefix: 'XENVER_',
    names: {
      0: 'version',
      1: 'extraversion',
      2: 'compile_info',
      3: 'capabilities',
      4: 'changeset',
      5: 'platform_parameters',
      6: 'get_features',
      7: 'pagesize',
      8: 'guest_handle',
      9: 'commandline',
      10: 'build_id',
      11: 'extraversion2',
      12: 'capabilities2',
      13: 'changeset2',
      14: 'commandline2',
    },
  },
  18: { prefix: 'CONSOLEIO_', names: { 0: 'write', 1: 'read' } },
  21: { prefix: 'VMASST_CMD_', names: { 0: 'enable', 1: 'disable' } },
  28: { prefix: 'XENNMI_', names: { 0: 'register_callback', 1: 'unregister_callback' } },
  33: {
    prefix: 'PHYSDEVOP_',
    names: {
      4: 'irq_unmask_notify',
      5: 'irq_status_query',
      6: 'set_iopl',
      7: 'set_iobitmap',
      8: 'apic_read',
      9: 'apic_write',
      10: 'alloc_irq_vector',
      11: 'free_irq_vector',
      12: 'eoi',
      13: 'map_pirq',
      14: 'unmap_pirq',
      15: 'manage_pci_add',
      16: 'manage_pci_remove',
      17: 'pirq_eoi_gmfn_v1',
      19: 'restore_msi',
      20: 'manage_pci_add_ext',
      21: 'setup_gsi',
      23: 'get_free_pirq',
      24: 'pci_mmcfg_reserved',
      25: 'pci_device_add',
      26: 'pci_device_remove',
      27: 'restore_msi_ext',
      28: 'pirq_eoi_gmfn_v2',
      29: 'dbgp_op',
      30: 'prepare_msix',
      31: 'release_msix',
      32: 'pci_device_reset',
    },
  },
};

/** MMUEXT_* commands of mmuext_op (xen.h; brief §5.4). */
export const MMUEXT_NAMES: Record<number, string> = {
  0: 'PIN_L1_TABLE',
  1: 'PIN_L2_TABLE',
  2: 'PIN_L3_TABLE',
  3: 'PIN_L4_TABLE',
  4: 'UNPIN_TABLE',
  5: 'NEW_BASEPTR',
  6: 'TLB_FLUSH_LOCAL',
  7: 'INVLPG_LOCAL',
  8: 'TLB_FLUSH_MULTI',
  9: 'INVLPG_MULTI',
  10: 'TLB_FLUSH_ALL',
  11: 'INVLPG_ALL',
  12: 'FLUSH_CACHE',
  13: 'SET_LDT',
  15: 'NEW_USER_BASEPTR',
  16: 'CLEAR_PAGE',
  17: 'COPY_PAGE',
  18: 'FLUSH_CACHE_GLOBAL',
  19: 'MARK_SUPER',
  20: 'UNMARK_SUPER',
};

/** MMU_* request commands of mmu_update (ptr & 3). */
export const MMU_UPDATE_CMDS = [
  'MMU_NORMAL_PT_UPDATE',
  'MMU_MACHPHYS_UPDATE',
  'MMU_PT_UPDATE_PRESERVE_AD',
  'MMU_PT_UPDATE_NO_TRANSLATE',
];

/** VMASST_TYPE_* (xen.h). */
export const VMASST_TYPES: Record<number, string> = {
  0: '4gb_segments',
  1: '4gb_segments_notify',
  2: 'writable_pagetables',
  3: 'pae_extended_cr3',
  4: 'architectural_iopl',
  5: 'runstate_update_flag',
  32: 'm2p_strict',
};

/** SHUTDOWN_* reasons (sched.h). */
export const SHUTDOWN_REASONS: Record<number, string> = {
  0: 'poweroff',
  1: 'reboot',
  2: 'suspend',
  3: 'crash',
  4: 'watchdog',
  5: 'soft_reset',
};

/** CALLBACKTYPE_* (callback.h). */
export const CALLBACK_TYPES: Record<number, string> = {
  0: 'event',
  1: 'failsafe',
  2: 'syscall',
  3: 'sysenter_deprecated',
  4: 'nmi',
  5: 'sysenter',
  7: 'syscall32',
};

/** SEGBASE_* of set_segment_base (xen-x86_64.h). */
export const SEGBASE_NAMES: Record<number, string> = {
  0: 'SEGBASE_FS',
  1: 'SEGBASE_GS_USER',
  2: 'SEGBASE_GS_KERNEL',
  3: 'SEGBASE_GS_USER_SEL',
};

/** Special domain ids (xen.h). */
export const DOMID_NAMES: Record<number, string> = {
  0x7ff0: 'DOMID_SELF',
  0x7ff1: 'DOMID_IO',
  0x7ff2: 'DOMID_XEN',
  0x7ff3: 'DOMID_COW',
  0x7ff4: 'DOMID_INVALID',
  0x7ff5: 'DOMID_ANY',
  0x7fff: 'DOMID_IDLE',
};

// Errno values and names live in engine/xen/public/errno.ts (Xen public/errno.h).
export { XEN_ERRNO, errnoName } from '../xen/public/errno';

/** x86 exception vectors (SDM vol. 3 §6.3.1): mnemonic (without '#') -> vector. */
export const VECTOR_NAMES: Record<string, number> = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  BR: 5,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  MF: 16,
  AC: 17,
  MC: 18,
  XM: 19,
  XF: 19,
  VE: 20,
  CP: 21,
};

/** `#GP` style name of a vector, or `vector N` for the rest. */
export function vectorName(vector: number): string {
  if (vector === 2) return 'NMI';
  for (const [k, v] of Object.entries(VECTOR_NAMES)) if (v === vector && k !== 'XF') return '#' + k;
  return `vector ${vector}`;
}

/** Name of a domain id: DOMID_SELF etc., else the decimal number. */
export function domidName(domid: number): string {
  return DOMID_NAMES[domid & 0xffff] ?? String(domid);
}
