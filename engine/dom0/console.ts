/**
 * The console daemon of the emulated dom0 (xenconsoled's job for one
 * guest): drains the guest's console ring `out[]` and feeds keyboard
 * input into `in[]`.
 *
 * Ring page layout (Xen public/io/console.h, struct xencons_interface):
 * `in` char[1024] @0x000 (backend -> guest), `out` char[2048] @0x400
 * (guest -> backend), free-running u32 indices `in_cons` @0xc00,
 * `in_prod` @0xc04, `out_cons` @0xc08, `out_prod` @0xc0c; a byte lives at
 * `idx & (size - 1)`.
 *
 * GRUB busy-waits until `out_cons == out_prod` after each refresh, so
 * `kick()` always consumes everything the guest produced. Corrupt indices
 * (more bytes claimed than the ring holds) are resynchronised (the
 * consumer index jumps to the producer's) and logged; nothing throws.
 * Deterministic: work happens only in `kick()` and `input()`.
 */
import type { MachineMemory } from '../memory/machine-memory';
import type { ConsoleApi } from '../machine-api';

export const XENCONS_IN = 0x000;
export const XENCONS_IN_SIZE = 1024;
export const XENCONS_OUT = 0x400;
export const XENCONS_OUT_SIZE = 2048;
export const XENCONS_IN_CONS = 0xc00;
export const XENCONS_IN_PROD = 0xc04;
export const XENCONS_OUT_CONS = 0xc08;
export const XENCONS_OUT_PROD = 0xc0c;
export const XENCONS_CONNECTION = 0xc10;

/** Bytes of input kept waiting for ring space before older input is dropped. */
const MAX_PENDING_INPUT = 64 * 1024;

export class ConsoleDaemon implements ConsoleApi {
  private readonly mem: MachineMemory;
  private readonly offset: number;
  private readonly listeners: ((data: Uint8Array) => void)[] = [];
  private pending: number[] = [];
  /** Everything the guest wrote, for inspection and tests (capped at 1 MiB, oldest dropped). */
  private history: Uint8Array[] = [];
  private historyBytes = 0;
  /** Ring problems seen (resyncs), oldest first; capped at 100. */
  readonly log: string[] = [];
  /** Total bytes drained from out[]. */
  bytesOut = 0;
  /** Total bytes placed into in[]. */
  bytesIn = 0;

  /**
   * @param ring `mem` and the buffer offset of the 4 KiB console page (page aligned).
   * @param notifyGuest raises the guest's console event channel.
   * @throws RangeError when the offset is not a page inside `mem`.
   */
  constructor(
    ring: { mem: MachineMemory; offset: number },
    private readonly notifyGuest: () => void,
  ) {
    if (ring.offset < 0 || ring.offset % 4096 !== 0 || ring.offset + 4096 > ring.mem.u8.length) {
      throw new RangeError(`console: bad ring offset ${ring.offset}`);
    }
    this.mem = ring.mem;
    this.offset = ring.offset;
  }

  /** Registers a listener for guest output bytes (called from `kick()`). */
  onOutput(cb: (data: Uint8Array) => void): void {
    this.listeners.push(cb);
  }

  /** Queues keyboard input (strings are UTF-8 encoded) and copies as much as fits into in[] now. */
  input(data: Uint8Array | string): void {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    for (const b of bytes) this.pending.push(b);
    if (this.pending.length > MAX_PENDING_INPUT)
      this.pending.splice(0, this.pending.length - MAX_PENDING_INPUT);
    this.feed();
  }

  /** Drains out[] to the listeners and feeds pending input; notifies the guest when anything moved. Never throws. */
  kick(): void {
    const drained = this.drain();
    const fed = this.feed(false);
    if (drained || fed) this.notifyGuest();
  }

  /** Everything the guest has written so far (up to the last 1 MiB). */
  output(): Uint8Array {
    const out = new Uint8Array(this.historyBytes);
    let o = 0;
    for (const h of this.history) {
      out.set(h, o);
      o += h.length;
    }
    return out;
  }

  /** Input bytes still waiting for space in in[]. */
  get pendingInput(): number {
    return this.pending.length;
  }

  private note(line: string): void {
    this.log.push(line);
    if (this.log.length > 100) this.log.shift();
  }

  private drain(): boolean {
    const m = this.mem;
    const o = this.offset;
    const cons = m.read32(o + XENCONS_OUT_CONS);
    const prod = m.read32(o + XENCONS_OUT_PROD);
    const size = (prod - cons) >>> 0;
    if (size === 0) return false;
    if (size > XENCONS_OUT_SIZE) {
      this.note(`out ring indexes corrupt (out_cons=${cons} out_prod=${prod}); resynchronised`);
      m.write32(o + XENCONS_OUT_CONS, prod);
      return true;
    }
    const data = new Uint8Array(size);
    const idx = cons & (XENCONS_OUT_SIZE - 1);
    const first = Math.min(size, XENCONS_OUT_SIZE - idx);
    data.set(m.u8.subarray(o + XENCONS_OUT + idx, o + XENCONS_OUT + idx + first), 0);
    if (size > first) data.set(m.u8.subarray(o + XENCONS_OUT, o + XENCONS_OUT + (size - first)), first);
    m.write32(o + XENCONS_OUT_CONS, prod);
    this.bytesOut += size;
    this.history.push(data);
    this.historyBytes += size;
    while (this.historyBytes > 1 << 20 && this.history.length > 1)
      this.historyBytes -= this.history.shift()!.length;
    for (const l of this.listeners) {
      try {
        l(data);
      } catch (e) {
        this.note(`output listener failed: ${(e as Error).message}`);
      }
    }
    return true;
  }

  /** Copies pending input into in[]; returns true when bytes were added (and notifies when `notify`). */
  private feed(notify = true): boolean {
    if (!this.pending.length) return false;
    const m = this.mem;
    const o = this.offset;
    const cons = m.read32(o + XENCONS_IN_CONS);
    let prod = m.read32(o + XENCONS_IN_PROD);
    let used = (prod - cons) >>> 0;
    if (used > XENCONS_IN_SIZE) {
      this.note(`in ring indexes corrupt (in_cons=${cons} in_prod=${prod}); resynchronised`);
      prod = cons;
      used = 0;
    }
    const n = Math.min(XENCONS_IN_SIZE - used, this.pending.length);
    if (n === 0) return false;
    for (let i = 0; i < n; i++) {
      m.write8(o + XENCONS_IN + ((prod + i) & (XENCONS_IN_SIZE - 1)), this.pending[i]);
    }
    this.pending.splice(0, n);
    m.write32(o + XENCONS_IN_PROD, (prod + n) >>> 0);
    this.bytesIn += n;
    if (notify) this.notifyGuest();
    return true;
  }
}
