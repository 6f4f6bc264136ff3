/**
 * Machine memory: every frame the emulated host owns (Xen's own frames and
 * every domain's RAM) lives in one ArrayBuffer.
 *
 * Frames are numbered by machine frame number (MFN). The buffer holds the
 * contiguous MFN range [mfnBase, mfnBase + frameCount); byte offset in the
 * buffer = (mfn - mfnBase) * 4096 + offset-in-page. A machine address
 * (maddr, bytes) is therefore `mfn * 4096 + offset`; `maddrToOffset`
 * converts it to a buffer offset or returns -1 when no such frame exists.
 *
 * Writers outside the CPU (Xen, the dom0 backends, the debugger) must use the
 * write methods here: they keep the CPU's decoded-code cache honest by
 * calling `onCodeWrite(frameIndex)` when a frame flagged in `codeFrames` is
 * written. The CPU flags frames it has decoded code from and clears the flag
 * when it drops that frame's cache.
 *
 * All multi-byte accesses are little-endian, like x86. 64-bit values are
 * passed as two 32-bit halves (lo, hi) to keep BigInt out of hot paths; the
 * `*Big` helpers exist for cold paths (hypercall decoding, the debugger).
 */
export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;

/** A watched byte range for data breakpoints: buffer offset, length in bytes, kind (1 read, 2 write, 3 both). */
export interface DataWatch {
  off: number;
  len: number;
  kind: number;
}

export class MachineMemory {
  /** Number of 4 KiB frames held. */
  readonly frameCount: number;
  /** MFN of the first frame in the buffer. */
  readonly mfnBase: number;
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly view: DataView;
  /** 1 when the CPU holds decoded code from this frame (index = mfn - mfnBase). */
  readonly codeFrames: Uint8Array;
  /**
   * 1 when a guest store into this frame must stop the CPU before it happens
   * (ExitReason.WATCH with `exitWatchPhysical`): the debugger's watch on
   * grant-table frames. Writes through this class (Xen, backends) are not
   * watched. Whoever sets a flag flushes the CPUs' TLBs.
   */
  readonly storeWatchFrames: Uint8Array;
  /**
   * Data-breakpoint watch bits per frame (index = mfn - mfnBase): 1 = guest
   * reads, 2 = guest writes. Kept in step with `dataWatches` by
   * `setDataWatches`; the CPU caches no read (bit 1) or write (bit 2)
   * permission in its TLB for such frames and checks `dataWatches` on every
   * such access. Writes through this class are not watched.
   */
  readonly dataWatchFrames: Uint8Array;
  /** Watched byte ranges (buffer offsets); empty when no data watch is set. */
  dataWatches: readonly DataWatch[] = [];
  /** Bumped by `setDataWatches`; a CPU seeing a new value flushes its TLB and decoded blocks. */
  dataWatchGen = 0;
  /** Called when a frame flagged in `codeFrames` is written through this class. */
  onCodeWrite: (frameIndex: number) => void = () => {};

  /**
   * @param frameCount frames (4 KiB each) to allocate; throws RangeError when < 1
   *   or when the buffer would exceed 4 GiB.
   * @param mfnBase MFN of the first frame (0 gives identity machine addresses,
   *   as a bare-metal test machine wants).
   */
  constructor(frameCount: number, mfnBase = 0) {
    if (!Number.isInteger(frameCount) || frameCount < 1 || frameCount > 0x100000) {
      throw new RangeError(`machine memory: bad frame count ${frameCount}`);
    }
    this.frameCount = frameCount;
    this.mfnBase = mfnBase;
    this.buffer = new ArrayBuffer(frameCount * PAGE_SIZE);
    this.u8 = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
    this.codeFrames = new Uint8Array(frameCount);
    this.storeWatchFrames = new Uint8Array(frameCount);
    this.dataWatchFrames = new Uint8Array(frameCount);
  }

  /**
   * Replaces the data watches: guest instructions reading (kind bit 1) or
   * writing (bit 2) any byte of [off, off + len) (buffer offsets, may span
   * frames) make the CPU exit ExitReason.WATCH with `exitWatchData` after
   * the instruction. Ranges outside the buffer are clipped.
   */
  setDataWatches(list: readonly DataWatch[]): void {
    this.dataWatchFrames.fill(0);
    const kept: DataWatch[] = [];
    const end = this.frameCount * PAGE_SIZE;
    for (const w of list) {
      const lo = Math.max(0, w.off);
      const hi = Math.min(end, w.off + w.len);
      if (hi <= lo || !(w.kind & 3)) continue;
      kept.push({ off: lo, len: hi - lo, kind: w.kind & 3 });
      for (let f = lo >>> PAGE_SHIFT; f <= (hi - 1) >>> PAGE_SHIFT; f++)
        this.dataWatchFrames[f] |= w.kind & 3;
    }
    this.dataWatches = kept;
    this.dataWatchGen++;
  }

  /** True when `mfn` names a frame in this memory. */
  hasMfn(mfn: number): boolean {
    const i = mfn - this.mfnBase;
    return i >= 0 && i < this.frameCount;
  }

  /** Buffer offset of a frame's first byte, or -1 when the MFN is not held. */
  mfnToOffset(mfn: number): number {
    const i = mfn - this.mfnBase;
    return i >= 0 && i < this.frameCount ? i * PAGE_SIZE : -1;
  }

  /** Buffer offset of machine address `maddr` (bytes, < 2^53), or -1. */
  maddrToOffset(maddr: number): number {
    const i = Math.floor(maddr / PAGE_SIZE) - this.mfnBase;
    return i >= 0 && i < this.frameCount ? i * PAGE_SIZE + (maddr % PAGE_SIZE) : -1;
  }

  /** Marks a write of `len` bytes at buffer offset `off` (invalidates decoded code). */
  noteWrite(off: number, len: number): void {
    const first = off >>> PAGE_SHIFT;
    const last = (off + len - 1) >>> PAGE_SHIFT;
    for (let f = first; f <= last; f++) {
      if (this.codeFrames[f]) this.onCodeWrite(f);
    }
  }

  // Accessors by buffer offset. Callers check bounds (offsets from mfnToOffset are valid).
  read8(off: number): number {
    return this.u8[off];
  }
  read16(off: number): number {
    return this.view.getUint16(off, true);
  }
  read32(off: number): number {
    return this.view.getUint32(off, true);
  }
  /** A 64-bit value (cold paths only; hot paths read two read32 halves). */
  read64Big(off: number): bigint {
    return this.view.getBigUint64(off, true);
  }
  write8(off: number, v: number): void {
    this.u8[off] = v;
    if (this.codeFrames[off >>> PAGE_SHIFT]) this.onCodeWrite(off >>> PAGE_SHIFT);
  }
  write16(off: number, v: number): void {
    this.view.setUint16(off, v, true);
    this.noteWrite(off, 2);
  }
  write32(off: number, v: number): void {
    this.view.setUint32(off, v >>> 0, true);
    this.noteWrite(off, 4);
  }
  write64(off: number, lo: number, hi: number): void {
    this.view.setUint32(off, lo >>> 0, true);
    this.view.setUint32(off + 4, hi >>> 0, true);
    this.noteWrite(off, 8);
  }
  write64Big(off: number, v: bigint): void {
    this.view.setBigUint64(off, BigInt.asUintN(64, v), true);
    this.noteWrite(off, 8);
  }
  /** Copies bytes in; `off + data.length` must be inside the buffer. */
  writeBytes(off: number, data: Uint8Array): void {
    this.u8.set(data, off);
    if (data.length) this.noteWrite(off, data.length);
  }
  readBytes(off: number, len: number): Uint8Array {
    return this.u8.slice(off, off + len);
  }
  fill(off: number, len: number, value = 0): void {
    this.u8.fill(value, off, off + len);
    if (len) this.noteWrite(off, len);
  }
}
