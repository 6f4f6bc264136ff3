/**
 * PHYSDEVOP_* sub-operations of physdev_op that the model handles (Xen
 * public/physdev.h). Checked against Debian libxen-dev by
 * test/unit/xen-public-headers.test.ts.
 */
export const PHYSDEVOP_irq_status_query = 5;
export const PHYSDEVOP_set_iopl = 6;
export const PHYSDEVOP_set_iobitmap = 7;
export const PHYSDEVOP_eoi = 12;
export const PHYSDEVOP_pirq_eoi_gmfn_v1 = 17;
export const PHYSDEVOP_pirq_eoi_gmfn_v2 = 28;
