/**
 * Segment descriptor checks and Xen's reserved GDT page (Xen
 * pv/descriptor-tables.c check_descriptor(), arch/x86/gdt / boot GDT tables,
 * public/arch-x86/xen-x86_{32,64}.h flat selectors).
 *
 * Descriptors are handled as two 32-bit words like Xen does: `a` = bytes 0-3,
 * `b` = bytes 4-7.
 */

/** First GDT entry Xen reserves (selector 0xE000); guests own entries below it. */
export const FIRST_RESERVED_GDT_ENTRY = 7168;
/** Page of the GDT holding Xen's reserved entries (entries 7168-7679). */
export const FIRST_RESERVED_GDT_PAGE = 14;
/** GDTR limit Xen loads for a PV vCPU: guest entries plus Xen's page, in bytes - 1. */
export const GDT_LIMIT = (FIRST_RESERVED_GDT_PAGE + 1) * 4096 - 1;
/** LDT entries a guest may ask for with MMUEXT_SET_LDT. */
export const MAX_LDT_ENTRIES = 8192;

/** 64-bit PV flat kernel CS (public/arch-x86/xen-x86_64.h FLAT_KERNEL_CS). */
export const FLAT_KERNEL_CS64 = 0xe033;
/** 32-bit PV flat kernel CS (FLAT_RING1_CS; Xen's FLAT_COMPAT_KERNEL_CS). */
export const FLAT_COMPAT_KERNEL_CS = 0xe019;
/** Selector of Xen's LDT descriptor slot in the reserved page. */
export const LDT_SELECTOR = 0xe050;

const SEG_P = 1 << 15;
const SEG_S = 1 << 12;
const SEG_DPL = 3 << 13;
const SEG_L = 1 << 21;
const SEG_G = 1 << 23;
const SEG_TYPE = 0xf00;

/** Lowest usable address of Xen's compat hole (HYPERVISOR_COMPAT_VIRT_START for a domU). */
export const HYPERVISOR_COMPAT_VIRT_START = 0xf5800000;

/**
 * Checks (and fixes up) one descriptor the way Xen does for GDT/LDT pages
 * and update_descriptor.
 *
 * Rules (Xen check_descriptor()): not-present -> accepted unchanged; DPL is
 * raised to the guest kernel RPL (1 for 32-bit, 3 for 64-bit); code/data
 * segments accepted (32-bit guests: L bit refused; a base-0 segment whose
 * limit reaches past 0xF5800000 is widened to 4 GiB); system type 0 accepted
 * unchanged (second half of a 16-byte gate); only call gates (type 0xC)
 * among system types, whose target selector must be a guest GDT entry, an
 * LDT selector or the flat kernel CS; the gate's DPL is forced to 0 with the
 * original DPL moved into the target selector's RPL; reserved bits zero.
 *
 * @param a bytes 0-3 of the descriptor (u32)
 * @param b bytes 4-7 (u32)
 * @param bits guest width
 * @returns the (possibly rewritten) words, or null when Xen refuses it
 */
export function checkDescriptor(a: number, b: number, bits: 32 | 64): { a: number; b: number } | null {
  a >>>= 0;
  b >>>= 0;
  const a0 = a;
  const b0 = b;
  if (!(b & SEG_P)) return { a, b };
  const rpl = bits === 32 ? 1 : 3;
  let dpl = (b >>> 13) & 3;
  if (dpl < rpl) dpl = rpl;
  b = ((b & ~SEG_DPL) | (dpl << 13)) >>> 0;
  if (b & SEG_S) {
    if (bits === 32) {
      if (b & SEG_L) return null;
      const base = ((b & 0xff000000) | ((b & 0xff) << 16) | (a >>> 16)) >>> 0;
      let limit = ((b & 0xf0000) | (a & 0xffff)) + 1;
      if (b & SEG_G) limit *= 4096;
      if (base === 0 && limit > HYPERVISOR_COMPAT_VIRT_START) {
        a = (a | 0xffff) >>> 0;
        b = (b | 0xf0000) >>> 0;
      }
    }
    return { a, b };
  }
  // Type 0 is harmless (second half of a 16-byte gate): accepted as given.
  if ((b & SEG_TYPE) === 0) return { a: a0, b: b0 };
  if ((b & SEG_TYPE) !== 0xc00) return null;
  let cs = a >>> 16;
  const flatCs = bits === 32 ? FLAT_COMPAT_KERNEL_CS : FLAT_KERNEL_CS64;
  if (!(cs >>> 3 < FIRST_RESERVED_GDT_ENTRY || cs === flatCs || cs & 4)) return null;
  b = (b & ~SEG_DPL) >>> 0;
  cs = (cs & ~3) | dpl;
  a = ((a & 0xffff) | (cs << 16)) >>> 0;
  if (b & (bits === 32 ? 0xe0 : 0xff)) return null;
  return { a, b };
}

/**
 * Raw 8-byte descriptors of Xen's reserved GDT page (entries 7168-7679),
 * indexed from 0 = selector 0xE000. Values from Xen's boot GDT tables
 * (x86_64: gdt_table; 32-bit guests: compat_gdt_table). The TSS (0xE040) and
 * LDT (0xE050) slots stay zero: the engine keeps the CPU's TR/LDTR caches
 * itself. 0xE060 is the per-CPU entry whose limit holds the vCPU number.
 */
export function xenReservedGdt(bits: 32 | 64, vcpuId: number): Map<number, bigint> {
  const m = new Map<number, bigint>();
  m.set(1, 0x00af9b000000ffffn); // 0xE008 ring 0 code, 64-bit
  m.set(2, 0x00cf93000000ffffn); // 0xE010 ring 0 data
  if (bits === 64) {
    m.set(4, 0x00cffb000000ffffn); // 0xE023 ring 3 code, compatibility
    m.set(5, 0x00cff3000000ffffn); // 0xE02B ring 3 data
    m.set(6, 0x00affb000000ffffn); // 0xE033 ring 3 code, 64-bit
  } else {
    m.set(3, 0x00cfbb000000ffffn); // 0xE019 ring 1 code, compatibility
    m.set(4, 0x00cfb3000000ffffn); // 0xE021 ring 1 data
    m.set(5, 0x00cffb000000ffffn); // 0xE02B ring 3 code
    m.set(6, 0x00cff3000000ffffn); // 0xE033 ring 3 data
  }
  m.set(7, 0x00cf9b000000ffffn); // 0xE038 ring 0 code, compatibility
  m.set(12, 0x0000910000000000n | BigInt(vcpuId & 0xffff)); // 0xE060 per-CPU entry
  return m;
}
