/**
 * Cache of compiled blocks per machine frame (docs/cpu-core.md "Blocks"):
 * lookup by buffer offset of a block's first byte, a separate map for
 * one-instruction blocks (budget tails, TF single-step), and per frame the
 * list of every block depending on it (a block crossing into a second
 * frame is listed there too) so a code write drops them all.
 */
import type { Block } from './codegen';

/** Per-frame decoded blocks: lookup by page offset plus the list for invalidation. */
interface FrameCode {
  /** Blocks by page offset of their first byte (a Map: memory proportional to the code decoded). */
  byOff: Map<number, Block>;
  /** One-instruction blocks (budget tails, TF single-step) by page offset. */
  single: Map<number, Block>;
  /** Every block depending on this frame (for invalidation). */
  all: Block[];
}

/** One vCPU's block cache over `frameCount` machine frames. */
export class BlockCache {
  private readonly frames: (FrameCode | undefined)[];

  /** `onNewFrame(f)` runs when frame `f` first holds decoded code (the CPU marks it and drops cached write permissions). */
  constructor(
    frameCount: number,
    private readonly onNewFrame: (f: number) => void,
  ) {
    this.frames = new Array(frameCount);
  }

  /** Number of frames covered. */
  get frameCount(): number {
    return this.frames.length;
  }

  /** Whether frame `f` holds any cached block. */
  holds(f: number): boolean {
    return this.frames[f] !== undefined;
  }

  /** Cached block starting at buffer offset `off` (undefined: none). */
  lookup(off: number): Block | undefined {
    const fc = this.frames[off >>> 12];
    return fc ? fc.byOff.get(off & 0xfff) : undefined;
  }

  /** Cached one-instruction block starting at buffer offset `off`. */
  lookupSingle(off: number): Block | undefined {
    const fc = this.frames[off >>> 12];
    return fc ? fc.single.get(off & 0xfff) : undefined;
  }

  /** Drops (marks invalid) every block depending on frame `f`. */
  dropFrame(f: number): void {
    const fc = this.frames[f];
    if (!fc) return;
    this.frames[f] = undefined;
    for (const b of fc.all) {
      b.valid = false;
      if (b.frame2 >= 0 && b.frame2 !== f) {
        const o = this.frames[b.frame2];
        if (o) o.all = o.all.filter((x) => x !== b);
      }
      if (b.frame !== f) {
        const o = this.frames[b.frame];
        if (o && o.byOff.get(b.pageOff) === b) o.byOff.delete(b.pageOff);
        if (o && o.single.get(b.pageOff) === b) o.single.delete(b.pageOff);
      }
    }
  }

  /** Adds `b`; a block at the same offset (other mode/RIP) is dropped. */
  add(b: Block): void {
    let fc = this.frames[b.frame];
    if (!fc) {
      fc = { byOff: new Map(), single: new Map(), all: [] };
      this.frames[b.frame] = fc;
      this.onNewFrame(b.frame);
    }
    // A block replacing another at the same offset (other mode/RIP) drops the old one.
    const map = b.single ? fc.single : fc.byOff;
    const old = map.get(b.pageOff);
    if (old) {
      old.valid = false;
      fc.all = fc.all.filter((x) => x !== old);
    }
    map.set(b.pageOff, b);
    fc.all.push(b);
    if (b.frame2 >= 0 && b.frame2 !== b.frame) {
      let f2 = this.frames[b.frame2];
      if (!f2) {
        f2 = { byOff: new Map(), single: new Map(), all: [] };
        this.frames[b.frame2] = f2;
        this.onNewFrame(b.frame2);
      }
      f2.all.push(b);
    }
  }
}
