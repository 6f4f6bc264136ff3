/**
 * copy_from_guest / copy_to_guest: hypervisor access to guest virtual memory
 * through the vCPU's current page tables, as Xen's __copy_{from,to}_guest do
 * for a PV guest (the access is checked as a guest-kernel access; a failed
 * translation makes the hypercall return -EFAULT).
 *
 * Addresses are bigint guest virtual addresses (u64 for 64-bit guests, u32
 * for 32-bit ones). Lengths in bytes. Nothing here throws for guest input.
 */
import type { CpuApi } from '../cpu/api';
import { PAGE_SIZE } from '../memory/machine-memory';

const MASK64 = (1n << 64n) - 1n;

function split(va: bigint): [number, number] {
  const v = va & MASK64;
  return [Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0];
}

/**
 * Reads `len` bytes at guest virtual `va`.
 * @returns the bytes, or null when any byte is unmapped (caller returns -EFAULT).
 */
export function copyFromGuest(cpu: CpuApi, va: bigint, len: number): Uint8Array | null {
  if (len < 0 || len > 1 << 24) return null;
  const out = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const [lo, hi] = split(va + BigInt(done));
    const off = cpu.translate(lo, hi, 0, false, true);
    if (off < 0) return null;
    const inPage = PAGE_SIZE - ((lo >>> 0) % PAGE_SIZE);
    const n = Math.min(inPage, len - done);
    out.set(cpu.mem.u8.subarray(off, off + n), done);
    done += n;
  }
  return out;
}

/**
 * Writes `data` at guest virtual `va` (checked as a write: read-only
 * mappings fail). Writes nothing unless every page is writable.
 * @returns true on success, false when any page is unmapped or read-only (-EFAULT).
 */
export function copyToGuest(cpu: CpuApi, va: bigint, data: Uint8Array): boolean {
  const offs: number[] = [];
  const lens: number[] = [];
  let done = 0;
  while (done < data.length) {
    const [lo, hi] = split(va + BigInt(done));
    const off = cpu.translate(lo, hi, 1, false, true);
    if (off < 0) return false;
    const inPage = PAGE_SIZE - ((lo >>> 0) % PAGE_SIZE);
    const n = Math.min(inPage, data.length - done);
    offs.push(off);
    lens.push(n);
    done += n;
  }
  done = 0;
  for (let i = 0; i < offs.length; i++) {
    cpu.mem.writeBytes(offs[i], data.subarray(done, done + lens[i]));
    done += lens[i];
  }
  return true;
}

/** Reads a little-endian unsigned integer of `size` bytes (1, 2, 4 or 8); null on fault. */
export function readGuestUint(cpu: CpuApi, va: bigint, size: number): bigint | null {
  const b = copyFromGuest(cpu, va, size);
  if (!b) return null;
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** Writes a little-endian unsigned integer of `size` bytes; false on fault. */
export function writeGuestUint(cpu: CpuApi, va: bigint, size: number, value: bigint): boolean {
  const b = new Uint8Array(size);
  let v = value;
  for (let i = 0; i < size; i++) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return copyToGuest(cpu, va, b);
}
