/**
 * Xen's public ABI (xen/include/public) as TypeScript: one module per Xen
 * header, constants named exactly as Xen names them. The hypervisor model
 * (engine/xen) and the debugger (engine/debug) both import from here;
 * nothing here imports from engine/. Checked against Debian's libxen-dev by
 * test/unit/xen-public-headers.test.ts.
 *
 * So far: xen.h (hypercall numbers and names, VIRQs), errno.h,
 * event_channel.h (EVTCHNOP_*), grant_table.h (GNTTABOP_*, GTF_*, GNTST_*,
 * GNTCOPY_*), memory.h (XENMEM_*), physdev.h (the PHYSDEVOP_* the model
 * handles).
 */
export * from './xen';
export * from './errno';
export * from './event_channel';
export * from './grant_table';
export * from './memory';
export * from './physdev';
