/**
 * physdev_op (33) and physdev_op_compat (19): Xen arch/x86/physdev.c
 * do_physdev_op for a domU without device passthrough.
 */
import type { Vcpu } from './domain';
import * as E from './errno';

import {
  PHYSDEVOP_irq_status_query,
  PHYSDEVOP_set_iopl,
  PHYSDEVOP_set_iobitmap,
  PHYSDEVOP_eoi,
  PHYSDEVOP_pirq_eoi_gmfn_v1,
  PHYSDEVOP_pirq_eoi_gmfn_v2,
} from './public/physdev';
// Every constant of the header is re-exported for the modules and tests that import them from here.
export * from './public/physdev';

export function physdevOp(v: Vcpu, cmd: number, arg: bigint): number {
  const d = v.domain;
  switch (cmd) {
    case PHYSDEVOP_set_iopl: {
      const x = v.rd(arg, 4);
      if (x === null) return -E.EFAULT;
      if (x > 3n) return -E.EINVAL;
      v.iopl = Number(x);
      return 0;
    }
    case PHYSDEVOP_set_iobitmap: {
      const b = v.rdStruct(arg, d.bits === 64 ? 16 : 8);
      if (!b) return -E.EFAULT;
      const n = d.bits === 64 ? b.getUint32(8, true) : b.getUint32(4, true);
      if (n > 65536) return -E.EINVAL;
      return 0;
    }
    case PHYSDEVOP_pirq_eoi_gmfn_v1:
    case PHYSDEVOP_pirq_eoi_gmfn_v2: {
      const g = v.rd(arg, d.bits / 8);
      if (g === null) return -E.EFAULT;
      const mfn = Number(g);
      if (d.frameOwner(mfn) !== d.domid)
        return d.reject(
          E.EINVAL,
          `pirq_eoi_gmfn: gmfn ${mfn.toString(16)} is not a page of domain ${d.domid}`,
        );
      return 0;
    }
    case PHYSDEVOP_irq_status_query: {
      const b = v.rdStruct(arg, 8);
      if (!b) return -E.EFAULT;
      const irq = b.getUint32(0, true);
      if (irq >= 256) return -E.EINVAL;
      return v.wr(arg + 4n, 4, 0) ? 0 : -E.EFAULT;
    }
    case PHYSDEVOP_eoi:
      return -E.EINVAL;
    case 4: // irq_unmask_notify
      return 0;
    case 8:
    case 9:
    case 10:
    case 11: // apic_read/write, alloc/free_irq_vector
    case 13:
    case 14:
    case 15:
    case 16:
    case 19:
    case 20:
    case 21:
    case 23:
    case 24:
    case 25:
    case 26:
    case 27:
    case 29:
    case 30:
    case 31:
    case 32:
      return -E.EPERM;
    default:
      return -E.ENOSYS;
  }
}
