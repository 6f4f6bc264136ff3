/**
 * The hypercall page (brief §3.3; Xen arch/x86/pv/hypercall.c
 * pv_ring3_init_hypercall_page / pv_ring1_init_hypercall_page).
 */
import { PAGE_SIZE } from '../memory/machine-memory';
import type { Domain } from './domain';
import { HYPERCALL_PAGE_SLOTS } from './layout';

/** Fills the page at buffer offset `off`: 0xCC everywhere, then one 32-byte stub per slot 0..127. */
export function writeHypercallPage(d: Domain, off: number): void {
  if (off < 0) return;
  const page = new Uint8Array(PAGE_SIZE).fill(0xcc);
  for (let n = 0; n < HYPERCALL_PAGE_SLOTS; n++) {
    const p = n * 32;
    const imm = [n & 0xff, (n >> 8) & 0xff, 0, 0];
    let stub: number[];
    if (d.bits === 64) {
      stub =
        n === 23
          ? [0x51, 0x41, 0x53, 0x50, 0xb8, ...imm, 0x0f, 0x05]
          : [0x51, 0x41, 0x53, 0xb8, ...imm, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3];
    } else {
      stub = n === 23 ? [0x50, 0xb8, ...imm, 0xcd, 0x82] : [0xb8, ...imm, 0xcd, 0x82, 0xc3];
    }
    page.set(stub, p);
  }
  d.mem.writeBytes(off, page);
}
