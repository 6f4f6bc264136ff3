/**
 * Frame-pointer stack unwinding for the debugger's stack traces and stepOut
 * (System V x86-64 / i386 ABI frame layout: `push %rbp; mov %rsp,%rbp`, the
 * return address just above the saved frame pointer).
 *
 * Heuristics, since kernels are often built without frame pointers:
 * - at a function's first instruction (symbol offset 0), or on a `ret`, the
 *   return address is at [rsp];
 * - after `push %rbp` but before `mov %rsp,%rbp` (symbol offset 1), it is at [rsp+w];
 * - otherwise follow rbp when it points into the stack at or above rsp
 *   (within 1 MiB); stop when the chain leaves the stack, repeats or goes down.
 */

/** Reads a little-endian unsigned word of `size` bytes (4 or 8) at a guest virtual address; undefined when unreadable. */
export type WordReader = (address: bigint, size: 4 | 8) => bigint | undefined;

/** One unwound frame: program counter, stack pointer and frame pointer at that frame. */
export interface UnwoundFrame {
  pc: bigint;
  sp: bigint;
  fp: bigint;
}

export interface UnwindInput {
  pc: bigint;
  sp: bigint;
  fp: bigint;
  /** Guest word size in bytes. */
  wordSize: 4 | 8;
  read: WordReader;
  /** Offset of `pc` in its function (from the symbol table), if known. */
  functionOffset?: (pc: bigint) => bigint | undefined;
  /** True when the instruction at `pc` is a return (`ret`). */
  isReturn?: (pc: bigint) => boolean;
  /** Maximum frames to return (>= 1). */
  maxFrames: number;
}

const STACK_WINDOW = 1n << 20n;

/**
 * Unwinds from the given registers. The first frame is always the current
 * one; the list ends at the first frame that cannot be recovered. Never throws.
 */
export function unwindStack(inp: UnwindInput): UnwoundFrame[] {
  const w = BigInt(inp.wordSize);
  const mask = inp.wordSize === 8 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
  const frames: UnwoundFrame[] = [{ pc: inp.pc, sp: inp.sp, fp: inp.fp }];
  let { pc, sp, fp } = inp;
  // First caller: decide whether the current function has set up its frame yet.
  const off = inp.functionOffset?.(pc);
  const atRet = inp.isReturn?.(pc) ?? false;
  let leafRa: bigint | undefined;
  let leafSp: bigint | undefined;
  if (off === 0n || atRet) {
    leafRa = inp.read(sp, inp.wordSize);
    leafSp = (sp + w) & mask;
  } else if (off === 1n) {
    leafRa = inp.read((sp + w) & mask, inp.wordSize);
    leafSp = (sp + 2n * w) & mask;
    fp = inp.read(sp, inp.wordSize) ?? fp;
  }
  if (leafRa !== undefined && leafSp !== undefined) {
    if (frames.length >= inp.maxFrames || leafRa === 0n) return frames;
    pc = leafRa;
    sp = leafSp;
    frames.push({ pc, sp, fp });
  }
  const seen = new Set<bigint>();
  while (frames.length < inp.maxFrames) {
    if (fp < sp || fp - sp > STACK_WINDOW || fp % w !== 0n || seen.has(fp)) break;
    seen.add(fp);
    const savedFp = inp.read(fp, inp.wordSize);
    const ra = inp.read((fp + w) & mask, inp.wordSize);
    if (savedFp === undefined || ra === undefined || ra === 0n) break;
    sp = (fp + 2n * w) & mask;
    pc = ra;
    if (savedFp !== 0n && savedFp <= fp) {
      frames.push({ pc, sp, fp: savedFp });
      break;
    }
    fp = savedFp;
    frames.push({ pc, sp, fp });
    if (savedFp === 0n) break;
  }
  return frames;
}
