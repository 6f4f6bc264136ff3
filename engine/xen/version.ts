/**
 * xen_version (17): Xen common/kernel.c do_xen_version, as a domU sees it.
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { HYPERVISOR_VIRT_START_64, HYPERVISOR_VIRT_START_32 } from './layout';

export const XEN_MAJOR = 4;
export const XEN_MINOR = 19;
export const XEN_EXTRAVERSION = '.0-pvscope';
export const XEN_CAPABILITIES =
  'xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64 xen-3.0-x86_32p';
export const XEN_CHANGESET = 'pvscope model';

/** XENFEAT bits a PV domU gets (brief §6.2): 5,6,7,13,17,18,19,20 (+4 with pae_extended_cr3). */
export function featureSubmap(v: Vcpu, idx: number): number {
  if (idx !== 0) return 0;
  let f = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 13) | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20);
  if (v.domain.vmAssistOn(3)) f |= 1 << 4;
  // writable_page_tables (0) and writable_descriptor_tables (1) are not advertised by a PV Xen.
  return f >>> 0;
}

function cstr(s: string, size: number): Uint8Array {
  const b = new Uint8Array(size);
  b.set(new TextEncoder().encode(s).subarray(0, size - 1));
  return b;
}

export function xenVersion(v: Vcpu, cmd: number, arg: bigint): number {
  const bits = v.domain.bits;
  switch (cmd) {
    case 0:
      return (XEN_MAJOR << 16) | XEN_MINOR;
    case 1:
      return v.wrBytes(arg, cstr(XEN_EXTRAVERSION, 16)) ? 0 : -E.EFAULT;
    case 2: {
      const b = new Uint8Array(64 + 16 + 32 + 32);
      b.set(cstr('gcc (pvscope)', 64), 0);
      b.set(cstr('pvscope', 16), 64);
      b.set(cstr('pvscope.invalid', 32), 80);
      b.set(cstr('Thu Jan  1 00:00:00 UTC 2026', 32), 112);
      return v.wrBytes(arg, b) ? 0 : -E.EFAULT;
    }
    case 3:
      return v.wrBytes(arg, cstr(XEN_CAPABILITIES, 1024)) ? 0 : -E.EFAULT;
    case 4:
      return v.wrBytes(arg, cstr(XEN_CHANGESET, 64)) ? 0 : -E.EFAULT;
    case 5: {
      const start = bits === 64 ? HYPERVISOR_VIRT_START_64 : HYPERVISOR_VIRT_START_32;
      return v.wr(arg, bits / 8, start) ? 0 : -E.EFAULT;
    }
    case 6: {
      const b = v.rdStruct(arg, 8);
      if (!b) return -E.EFAULT;
      return v.wr(arg + 4n, 4, featureSubmap(v, b.getUint32(0, true))) ? 0 : -E.EFAULT;
    }
    case 7:
      return 4096;
    case 8: {
      // xen_domain_handle_t: 16-byte UUID; the engine uses a fixed one.
      const h = new Uint8Array(16);
      h.set([0x70, 0x76, 0x73, 0x63, 0x6f, 0x70, 0x65, 0x00], 0);
      return v.wrBytes(arg, h) ? 0 : -E.EFAULT;
    }
    case 9:
      // Hypervisor command line: hidden from a domU (XSM dummy policy).
      return -E.EPERM;
    case 10:
      return -E.EPERM;
    case 11:
    case 12:
    case 13:
    case 14:
      // The *2 variants (Xen 4.20+): return the string length; domU gets it for extraversion/capabilities/changeset.
      return -E.ENOSYS;
    default:
      return -E.ENOSYS;
  }
}
