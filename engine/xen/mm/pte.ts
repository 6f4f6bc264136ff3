/**
 * Page-table entry bits and Xen's per-level masks for PV guests (Xen
 * asm-x86/page.h, x86_64/page.h, arch/x86/mm.c, pv/mm.h).
 *
 * Entries are 8 bytes (64-bit and PAE) and handled as two 32-bit halves
 * (lo = bits 0-31, hi = bits 32-63). Xen checks flags in its "24-bit flag"
 * notation: bits 0-11 of the entry stay where they are, bits 52-63 move to
 * bits 12-23. The masks below use that notation, like Xen's source.
 */

/** Entry flag bits (bits 0-11 of an entry; same value in 24-bit notation). */
export const _PAGE_PRESENT = 0x001;
export const _PAGE_RW = 0x002;
export const _PAGE_USER = 0x004;
export const _PAGE_PWT = 0x008;
export const _PAGE_PCD = 0x010;
export const _PAGE_ACCESSED = 0x020;
export const _PAGE_DIRTY = 0x040;
/** PSE in L2/L3 entries, PAT in L1 entries. */
export const _PAGE_PSE = 0x080;
export const _PAGE_PAT = 0x080;
export const _PAGE_GLOBAL = 0x100;
/** Software bits 9-11. */
export const _PAGE_AVAIL = 0xe00;

/** 24-bit notation of entry bits 52-62 (software-available high bits). */
export const _PAGE_AVAIL_HIGH = 0x7ff000;
/** 24-bit notation of entry bit 63 (NX). */
export const _PAGE_NX = 0x800000;
/** 24-bit notation of entry bit 52: Xen marks guest-kernel L1 mappings with it (64-bit PV). */
export const _PAGE_GUEST_KERNEL = 0x001000;
/** 24-bit notation of entry bit 62: grant mappings; a guest may not set it in an L1. */
export const _PAGE_GNTTAB = 0x400000;

/** Xen's base_disallow_mask on a CPU with NX: PWT, PCD, PSE/PAT, G (arch_init_memory). */
export const BASE_DISALLOW_MASK = 0x198;
/** L1: base mask plus the grant bit, minus Global (Global is allowed in L1s). */
export const L1_DISALLOW_MASK = (BASE_DISALLOW_MASK | _PAGE_GNTTAB) & ~_PAGE_GLOBAL;
export const L2_DISALLOW_MASK = BASE_DISALLOW_MASK;
export const L3_DISALLOW_MASK = BASE_DISALLOW_MASK;
export const L4_DISALLOW_MASK = BASE_DISALLOW_MASK;
/** 32-bit (compat) L3: only P, RW, US, A, D and bits 9-11 (Xen COMPAT_L3_DISALLOW_MASK 0xFFFFF198). */
export const COMPAT_L3_DISALLOW_MASK = 0xfff198;

/**
 * PTE flags a guest may change without the entry being re-validated
 * (Xen FASTPATH_FLAG_WHITELIST), in 24-bit notation.
 */
export const FASTPATH_FLAG_WHITELIST =
  _PAGE_NX | _PAGE_AVAIL_HIGH | _PAGE_AVAIL | _PAGE_GLOBAL | _PAGE_DIRTY | _PAGE_ACCESSED | _PAGE_USER;

/** Flags of an entry in Xen's 24-bit notation. */
export function pteFlags(lo: number, hi: number): number {
  return (lo & 0xfff) | ((hi >>> 20) << 12);
}

/** Frame number held in an entry (address bits 12-51). */
export function pteMfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & 0xfffff) * 0x100000;
}

/** Low half of an entry for frame `mfn` with flag bits 0-11. */
export function pteLo(mfn: number, flags: number): number {
  return (((mfn % 0x100000) << 12) | (flags & 0xfff)) >>> 0;
}

/** High half of an entry for frame `mfn` with 24-bit flags (bits 12-23 go to 52-63). */
export function pteHi(mfn: number, flags: number): number {
  return ((Math.floor(mfn / 0x100000) & 0xfffff) | ((flags >>> 12) << 20)) >>> 0;
}

/** High half bits to add for 24-bit flags (bits 12-23 -> 52-63). */
export function flagsHi(flags: number): number {
  return ((flags >>> 12) << 20) >>> 0;
}

/** Human-readable flag names of an entry (P, RW, US, PWT, PCD, A, D, PSE/PAT, G, NX). */
export function pteFlagNames(lo: number, hi: number, level: number): string[] {
  const f = pteFlags(lo, hi);
  const out: string[] = [];
  if (f & _PAGE_PRESENT) out.push('P');
  if (f & _PAGE_RW) out.push('RW');
  if (f & _PAGE_USER) out.push('US');
  if (f & _PAGE_PWT) out.push('PWT');
  if (f & _PAGE_PCD) out.push('PCD');
  if (f & _PAGE_ACCESSED) out.push('A');
  if (f & _PAGE_DIRTY) out.push('D');
  if (f & _PAGE_PSE) out.push(level === 1 ? 'PAT' : 'PSE');
  if (f & _PAGE_GLOBAL) out.push('G');
  if (f & _PAGE_NX) out.push('NX');
  return out;
}
