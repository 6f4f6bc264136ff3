import { strict as assert } from 'node:assert';
import { unwindStack } from '../../engine/debug/unwind';

/** A little-endian memory of 64-bit words. */
function mem(words: Record<string, bigint>) {
  return (a: bigint, size: 4 | 8): bigint | undefined => {
    const v = words['0x' + a.toString(16)];
    return v === undefined ? undefined : size === 4 ? v & 0xffffffffn : v;
  };
}

describe('engine/debug/unwind', () => {
  it('follows the frame-pointer chain', () => {
    // main's frame at 0x8ff0 (saved fp 0, return 0x1005); f's frame at 0x8fd0 (saved fp 0x8ff0, return 0x2010).
    const read = mem({ '0x8fd0': 0x8ff0n, '0x8fd8': 0x2010n, '0x8ff0': 0n, '0x8ff8': 0x1005n });
    const frames = unwindStack({ pc: 0x3000n, sp: 0x8fc0n, fp: 0x8fd0n, wordSize: 8, read, maxFrames: 10 });
    assert.deepEqual(
      frames.map((f) => f.pc),
      [0x3000n, 0x2010n, 0x1005n],
    );
  });

  it('uses the return address at the stack pointer at a function entry and on ret', () => {
    const read = mem({ '0x8fc0': 0x2010n, '0x8fd0': 0n, '0x8fd8': 0x1005n });
    const atEntry = unwindStack({
      pc: 0x3000n,
      sp: 0x8fc0n,
      fp: 0x8fd0n,
      wordSize: 8,
      read,
      maxFrames: 10,
      functionOffset: () => 0n,
    });
    assert.deepEqual(
      atEntry.map((f) => f.pc),
      [0x3000n, 0x2010n, 0x1005n],
    );
    const onRet = unwindStack({
      pc: 0x3007n,
      sp: 0x8fc0n,
      fp: 0x8fd0n,
      wordSize: 8,
      read,
      maxFrames: 2,
      isReturn: () => true,
    });
    assert.deepEqual(
      onRet.map((f) => f.pc),
      [0x3007n, 0x2010n],
    );
  });

  it('stops on unreadable memory, loops and frame pointers outside the stack', () => {
    const loop = mem({ '0x8fd0': 0x8fd0n, '0x8fd8': 0x2010n });
    assert.equal(
      unwindStack({ pc: 1n, sp: 0x8fc0n, fp: 0x8fd0n, wordSize: 8, read: loop, maxFrames: 100 }).length,
      2,
    );
    assert.equal(
      unwindStack({ pc: 1n, sp: 0x8fc0n, fp: 0x10n, wordSize: 8, read: loop, maxFrames: 100 }).length,
      1,
    );
    assert.equal(
      unwindStack({ pc: 1n, sp: 0x8fc0n, fp: 0x9000n, wordSize: 8, read: mem({}), maxFrames: 100 }).length,
      1,
    );
  });

  it('unwinds 32-bit frames with 4-byte words', () => {
    const read = mem({ '0x8fd0': 0n, '0x8fd4': 0x1234n });
    const frames = unwindStack({ pc: 0x3000n, sp: 0x8fc0n, fp: 0x8fd0n, wordSize: 4, read, maxFrames: 10 });
    assert.deepEqual(
      frames.map((f) => f.pc),
      [0x3000n, 0x1234n],
    );
  });
});
