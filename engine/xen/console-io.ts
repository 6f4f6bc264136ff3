/**
 * console_io (18): Xen drivers/char/console.c do_console_io. A release Xen
 * refuses it to a domU (-EPERM, XSM dummy policy); DomainConfig.consoleIoWrites
 * lets writes through (as a debug build of Xen would), delivered to `sink`.
 */
import type { Vcpu } from './domain';
import * as E from './errno';

export const CONSOLEIO_write = 0;
export const CONSOLEIO_read = 1;

export interface ConsoleIoState {
  allowWrites: boolean;
  sink: (data: Uint8Array) => void;
}

export function consoleIo(v: Vcpu, st: ConsoleIoState, cmd: number, count: number, buf: bigint): number {
  if (cmd === CONSOLEIO_write) {
    if (!st.allowWrites) return -E.EPERM;
    const n = Math.min(count >>> 0, 1 << 16);
    const data = v.rdBytes(buf, n);
    if (!data) return -E.EFAULT;
    st.sink(data);
    return 0;
  }
  if (cmd === CONSOLEIO_read) return -E.EPERM;
  return -E.ENOSYS;
}
