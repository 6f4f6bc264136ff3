/**
 * Physical data watches (MachineMemory.setDataWatches): a read watch and a
 * write watch on a machine frame fire for guest accesses through two linear
 * aliases of that frame, after the access completes (ExitReason.WATCH with
 * `exitWatchData`), byte-granular (an access to a neighbouring byte does not
 * fire), and stop firing once removed. Guest code is assembled with GNU as
 * at test time (test/helpers/asm-flat.ts).
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import {
  createTestMachine,
  CODE_BASE,
  PTE_P,
  PTE_W,
  type TestMachine,
  type TestMode,
} from '../../engine/cpu/testbed';
import { assembleFlat } from '../helpers/asm-flat';

/** The watched frame (machine address; identity-mapped at the same linear address). */
const FRAME = 0x300000;
/** A second linear alias of FRAME. */
const ALIAS = 0x400000;
/** Watched bytes: FRAME + 0x10 .. FRAME + 0x13. */
const WATCHED = FRAME + 0x10;

const hex = (n: number): string => `0x${n.toString(16)}`;

const PROGRAM = [
  `mov dword ptr [${hex(ALIAS + 0x10)}], 9`, // write through the alias: only a read watch yet, no hit
  `mov eax, dword ptr [${hex(FRAME + 0x0c)}]`, // neighbouring bytes 0x0c..0x0f: no hit
  `mov ebx, dword ptr [${hex(ALIAS + 0x10)}]`, // read hit through the alias
  `mov ecx, dword ptr [${hex(FRAME + 0x12)}]`, // read hit through the identity mapping (overlaps 0x12..0x13)
  `mov byte ptr [${hex(FRAME + 0x14)}], 5`, // neighbouring byte write: no hit
  `mov dword ptr [${hex(ALIAS + 0x10)}], 7`, // write hit through the alias
  `mov word ptr [${hex(FRAME + 0x0f)}], 0x1234`, // write hit through the identity mapping (0x0f..0x10)
  `mov edx, 2`,
  `mov esi, dword ptr [${hex(ALIAS + 0x10)}]`, // after removal: no hit
  `int3`,
].join('\n');

function machine(mode: TestMode): TestMachine {
  const tm = createTestMachine({ mode, memoryMiB: 16 });
  const bits = mode === 'long64' ? 64 : 32;
  tm.load(CODE_BASE, assembleFlat(`.intel_syntax noprefix\n.code${bits}\n${PROGRAM}`, CODE_BASE, bits));
  tm.mapPage(ALIAS, FRAME, PTE_P | PTE_W);
  tm.cpu.flushTlb(true);
  tm.start(CODE_BASE);
  tm.cpu.interceptExceptions = 0xffffffff;
  return tm;
}

function go(tm: TestMachine): ExitReason {
  let r: ExitReason;
  let guard = 0;
  do r = tm.cpu.run(100_000);
  while (r === ExitReason.BUDGET && ++guard < 100);
  return r;
}

const R = (tm: TestMachine, r: number): number => tm.cpu.state.gprLo[r] >>> 0;

function expectHit(tm: TestMachine, write: boolean, lin: number, off: number): void {
  assert.equal(go(tm), ExitReason.WATCH);
  assert.equal(tm.cpu.exitWatchData, true, 'a data-watch exit');
  assert.equal(tm.cpu.exitWatchPhysical, false, 'not a grant store watch');
  assert.equal(tm.cpu.exitWatchWrite, write);
  assert.equal(tm.cpu.exitWatchLinLo >>> 0, lin);
  assert.equal(tm.cpu.exitWatchOffset, off);
}

for (const mode of ['long64', 'pae32'] as const) {
  describe(`CPU physical data watch (${mode})`, () => {
    it('fires for reads and writes through two aliases of the frame, after the access, byte-granular', () => {
      const tm = machine(mode);
      tm.mem.setDataWatches([{ off: WATCHED, len: 4, kind: 1 }]);
      assert.equal(tm.cpu.watching, true, 'blocks are single-instruction while watching');

      expectHit(tm, false, ALIAS + 0x10, FRAME + 0x10);
      assert.equal(tm.mem.read32(WATCHED), 9, 'the earlier write went through without a hit');
      assert.equal(R(tm, 3), 9, 'the read completed');
      assert.equal(R(tm, 1), 0, 'the next instruction has not run');

      expectHit(tm, false, FRAME + 0x12, FRAME + 0x12);
      assert.equal(R(tm, 1), 9 >>> 16, 'the read completed');

      // Add a write watch on the same bytes.
      tm.mem.setDataWatches([
        { off: WATCHED, len: 4, kind: 1 },
        { off: WATCHED, len: 4, kind: 2 },
      ]);
      expectHit(tm, true, ALIAS + 0x10, FRAME + 0x10);
      assert.equal(tm.mem.read8(FRAME + 0x14), 5, 'the neighbouring byte write went through without a hit');
      assert.equal(tm.mem.read32(WATCHED), 7, 'the write completed');

      expectHit(tm, true, FRAME + 0x0f, FRAME + 0x0f);
      assert.equal(tm.mem.read16(FRAME + 0x0f), 0x1234, 'the write completed');
      assert.equal(R(tm, 2), 0, 'the next instruction has not run');

      tm.mem.setDataWatches([]);
      assert.equal(tm.cpu.watching, false);
      assert.equal(go(tm), ExitReason.EXCEPTION, 'no more hits: runs to int3');
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(R(tm, 2), 2);
      assert.equal(R(tm, 6), tm.mem.read32(WATCHED));
    });

    it('does not fire for a write when only a read watch is set, nor for instruction fetch', () => {
      const tm = machine(mode);
      // Watch the code page itself for reads: fetches are not data reads.
      tm.mem.setDataWatches([
        { off: CODE_BASE, len: 4096, kind: 1 },
        { off: WATCHED + 8, len: 1, kind: 1 },
      ]);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(R(tm, 2), 2);
    });
  });
}
