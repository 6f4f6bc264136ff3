/**
 * Inline code generation vs the generic implementation: random instruction
 * streams run twice from the same state, once compiled inline (codegen.ts)
 * and once through exec.ts (`Cpu.forceGeneric`); registers, RIP, flags,
 * exit reason, instructions retired and memory must agree exactly.
 * The streams mix the opcodes the compiler inlines (ALU, MOV, shifts,
 * INC/DEC, PUSH/POP, LEA, IMUL, MOVZX/MOVSX, CMOVcc, SETcc, Jcc, CALL/RET)
 * with random ModRM bytes. Deterministic (seeded).
 */
import { strict as assert } from 'node:assert';
import { createTestMachine, CODE_BASE, type TestMode } from '../../engine/cpu/testbed';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

// Opcode templates: [opcode bytes..., 'm' = ModRM follows, 'i8'/'i32' immediates].
const ONE = [
  0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x20, 0x21, 0x22, 0x23, 0x28, 0x29, 0x2a, 0x2b, 0x30, 0x31,
  0x32, 0x33, 0x38, 0x39, 0x3a, 0x3b, 0x84, 0x85, 0x88, 0x89, 0x8a, 0x8b, 0x8d,
];

function gen(next: () => number, long: boolean): number[] {
  const out: number[] = [];
  // Registers point into a scratch area: keep ModRM memory forms near it with small displacements.
  const modrm = (): number[] => {
    const mod = next() % 4;
    const reg = next() & 7;
    let rm = next() & 7;
    if (mod !== 3 && (rm === 4 || rm === 5)) rm = 3; // avoid SIB / absolute / RIP-relative forms
    const b = [(mod << 6) | (reg << 3) | rm];
    if (mod === 1) b.push(next() & 0x7f);
    if (mod === 2) b.push(next() & 0xff, next() & 0x0f, 0, 0);
    return b;
  };
  for (let n = 0; n < 24; n++) {
    const pick = next() % 16;
    const rex = long && next() % 3 === 0 ? [0x40 | (next() & 15)] : [];
    const p66 = next() % 8 === 0 ? [0x66] : [];
    switch (pick) {
      case 0:
      case 1:
      case 2:
      case 3:
        out.push(...p66, ...rex, ONE[next() % ONE.length], ...modrm());
        break;
      case 4:
        out.push(...p66, ...rex, 0x83, ...modrm(), next() & 0xff);
        break;
      case 5:
        out.push(...rex, 0x81, ...modrm(), next() & 0xff, next() & 0xff, next() & 0xff, next() & 0xff);
        break;
      case 6:
        out.push(...p66, ...rex, 0xc1, ...modrm(), next() & 0x3f);
        break;
      case 7:
        out.push(...rex, next() & 1 ? 0xff : 0xfe, (((next() % 4) << 6) & 0xc0) | ((next() & 1) << 3) | 3); // INC/DEC
        break;
      case 8:
        out.push(0x50 + (next() & 7), 0x58 + (next() & 7) === 0x5c ? 0x5b : 0x58 + (next() & 3));
        break;
      case 9:
        out.push(...rex, 0x0f, 0x40 + (next() & 15), 0xc0 | (next() & 0x3f)); // CMOVcc reg
        break;
      case 10:
        out.push(0x0f, 0x90 + (next() & 15), 0xc0 | (next() & 7)); // SETcc reg
        break;
      case 11:
        out.push(...rex, 0x0f, [0xb6, 0xb7, 0xbe, 0xbf, 0xaf][next() % 5], ...modrm());
        break;
      case 12:
        out.push(...rex, 0x6b, 0xc0 | (next() & 0x3f), next() & 0xff);
        break;
      case 13:
        out.push(0x70 + (next() & 15), 2, 0x90, 0x90); // Jcc over two NOPs
        break;
      case 14:
        out.push(...rex, 0xf7, 0xc0 | ((2 + (next() & 1)) << 3) | (next() & 7)); // NOT/NEG reg
        break;
      default:
        out.push(...rex, 0xd1, 0xc0 | ([4, 5, 7, 0, 1][next() % 5] << 3) | (next() & 7)); // shift by 1
    }
  }
  out.push(0xcc);
  return out;
}

function runOnce(mode: TestMode, code: number[], regs: number[], generic: boolean) {
  const tm = createTestMachine({ mode, memoryMiB: 8 });
  tm.cpu.forceGeneric = generic;
  tm.load(CODE_BASE, code);
  tm.start(CODE_BASE, 0x70000);
  const s = tm.cpu.state;
  for (let r = 0; r < 8; r++) if (r !== 4) s.gprLo[r] = regs[r];
  tm.cpu.setRflags(regs[8] & 0x8d5);
  tm.cpu.interceptExceptions = 0xffffffff;
  // Run to the final INT3, skipping faulting instructions (same decisions in both runs).
  let exit = 0;
  const vectors: number[] = [];
  for (let i = 0; i < 64; i++) {
    exit = tm.cpu.run(1000);
    vectors.push(tm.cpu.exitVector);
    if (exit !== 1 || tm.cpu.exitVector === 3) break;
    tm.cpu.skipInstruction();
  }
  let sum = 0;
  for (let a = 0x200000; a < 0x220000; a += 4) sum = (Math.imul(sum, 31) + tm.mem.read32(a)) | 0;
  return {
    exit,
    vectors,
    rip: s.ripLo >>> 0,
    retired: s.instructionsRetired,
    flags: tm.cpu.getRflags() & 0x8d5,
    lo: Array.from(s.gprLo),
    hi: Array.from(s.gprHi),
    sum,
  };
}

describe('CPU inline code vs generic implementation', function () {
  this.timeout(120000);
  for (const mode of ['long64', 'pae32'] as TestMode[]) {
    it(`agree on random instruction streams (${mode})`, () => {
      const next = rng(mode === 'long64' ? 12345 : 54321);
      let total = 0;
      for (let round = 0; round < 150; round++) {
        const code = gen(next, mode === 'long64');
        const regs = Array.from({ length: 9 }, () =>
          next() & 1 ? 0x200000 + (next() & 0xfff0) : next() | 0,
        );
        const a = runOnce(mode, code, regs, false);
        const b = runOnce(mode, code, regs, true);
        const hex = code.map((x) => x.toString(16).padStart(2, '0')).join(' ');
        assert.deepEqual(a, b, `round ${round}, code ${hex}`);
        total += a.retired;
      }
      // The streams must mostly execute, not fault at once.
      assert.ok(total > 150 * 16, `only ${total} instructions retired`);
    });
  }
});
