/**
 * Xen's errno values: re-exported from engine/xen/public/errno.ts, the ABI's
 * one home (Xen public/errno.h), for the hypervisor modules that import
 * `./errno`.
 */
export * from './public/errno';
