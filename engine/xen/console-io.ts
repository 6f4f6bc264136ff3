/**
 * console_io (18): Xen drivers/char/console.c do_console_io. A release Xen
 * refuses it to a domU (-EPERM, XSM dummy policy); DomainConfig.consoleIoWrites
 * lets writes through (as a debug build of Xen would), delivered to `sink`.
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { chargeWork, createContinuation, hypercallPreemptCheck } from './preempt';

/** The console_io hypercall number (Xen public/xen.h __HYPERVISOR_console_io). */
const CONSOLE_IO = 18;

export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

export interface ConsoleIoState {
  allowWrites: boolean;
  sink: (data: Uint8Array) => void;
}

/** Bytes Xen's guest_console_write copies per step (its 128-byte kbuf less the NUL). */
const KBUF_BYTES = 127;

/**
 * Runs console_io. CONSOLEIO_write (when allowed) copies `count` bytes from
 * `buf` in 127-byte steps as Xen's guest_console_write does, one work unit
 * each, and is preemptible: the continuation is console_io(CONSOLEIO_write,
 * bytes left, buf + bytes done) (engine/xen/preempt.ts).
 * @returns 0, -EPERM (writes not allowed, reads), -EFAULT (unreadable
 *   buffer; the bytes before it were written), -ENOSYS (other commands), or
 *   the continuation's op number.
 */
export function consoleIo(v: Vcpu, st: ConsoleIoState, cmd: number, count: number, buf: bigint): number {
  if (cmd === CONSOLEIO_write) {
    if (!st.allowWrites) return -E.EPERM;
    let left = count >>> 0;
    let at = buf;
    const mask = v.domain.bits === 64 ? (1n << 64n) - 1n : 0xffffffffn;
    for (let k = 0; left > 0; k++) {
      if (k && hypercallPreemptCheck())
        return createContinuation(CONSOLE_IO, [BigInt(CONSOLEIO_write), BigInt(left), at & mask]);
      chargeWork();
      const n = Math.min(left, KBUF_BYTES);
      const data = v.rdBytes(at & mask, n);
      if (!data) return -E.EFAULT;
      st.sink(data);
      at += BigInt(n);
      left -= n;
    }
    return 0;
  }
  if (cmd === CONSOLEIO_read) return -E.EPERM;
  return -E.ENOSYS;
}
