/**
 * CPU execution core: decoder lengths, paging (PAE and 4-level walks, A/D,
 * NX, U/S, R/W with CR0.WP, global pages and their flushes), REP MOVS
 * restart after #PF, exception vectors/error codes/CR2, self-modifying
 * code, breakpoints and watchpoints, intercepts, flags, budget and TSC.
 * Guest code is assembled with GNU as at test time (test/helpers/asm-flat.ts).
 */
import { strict as assert } from 'node:assert';
import { ExitReason, PrivOp } from '../../engine/cpu/api';
import { decode } from '../../engine/cpu/decoder';
import {
  createTestMachine,
  CODE_BASE,
  PTE_P,
  PTE_W,
  PTE_U,
  PTE_G,
  type TestMachine,
  type TestMode,
} from '../../engine/cpu/testbed';
import { assembleFlat } from '../helpers/asm-flat';

const DATA = 0x200000;

function machine(mode: TestMode, src: string, opts: { pge?: boolean; user?: boolean } = {}): TestMachine {
  const tm = createTestMachine({ mode, memoryMiB: 16, pge: opts.pge, user: opts.user });
  const bits = mode === 'long64' ? 64 : 32;
  const code = assembleFlat(`.intel_syntax noprefix\n.code${bits}\n${src}`, CODE_BASE, bits);
  tm.load(CODE_BASE, code);
  tm.start(CODE_BASE);
  tm.cpu.interceptExceptions = 0xffffffff;
  return tm;
}

/** Runs until an exit other than BUDGET. */
function go(tm: TestMachine, budget = 1_000_000): ExitReason {
  let r: ExitReason;
  let guard = 0;
  do r = tm.cpu.run(budget);
  while (r === ExitReason.BUDGET && ++guard < 100);
  return r;
}

function rip(tm: TestMachine): number {
  return tm.cpu.state.ripLo >>> 0;
}

const R = (tm: TestMachine, r: number): number => tm.cpu.state.gprLo[r] >>> 0;
const RH = (tm: TestMachine, r: number): number => tm.cpu.state.gprHi[r] >>> 0;

describe('CPU core: decoder lengths', () => {
  const len = (bytes: number[], def: number): number => {
    const d = decode((i) => (i < bytes.length ? bytes[i] : 0x90), def, 0, 0);
    assert.ok(d);
    return d!.len;
  };
  it('handles prefixes, REX, SIB, displacements and immediates', () => {
    assert.equal(len([0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 8), 10); // mov rax, imm64
    assert.equal(len([0x66, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 8), 11); // REX.W wins over 66
    assert.equal(len([0x66, 0xb8, 1, 2], 8), 4); // mov ax, imm16
    assert.equal(len([0x67, 0x8b, 0x04, 0x25, 0, 0, 0, 0], 8), 8); // SIB with disp32, no base
    assert.equal(len([0x8b, 0x05, 0, 0, 0, 0], 8), 6); // RIP-relative
    assert.equal(len([0x67, 0x8b, 0x06, 0x34, 0x12], 4), 5); // 16-bit addressing disp16
    assert.equal(len([0xf7, 0x05, 0, 0, 0, 0, 1, 2, 3, 4], 4), 10); // test [disp32], imm32
    assert.equal(len([0xf7, 0x15, 0, 0, 0, 0], 4), 6); // not [disp32]: no immediate
    assert.equal(len([0xc8, 0x10, 0x00, 0x01], 4), 4); // enter
    assert.equal(len([0x0f, 0x20, 0xd8], 8), 3); // mov rax, cr3
    assert.equal(len([0x0f, 0x22, 0x04], 4), 3); // mov cr0, esp: mod ignored, no SIB
    assert.equal(len([0x66, 0xe8, 1, 2, 3, 4], 8), 6); // call rel32 in 64-bit mode ignores 66
    assert.equal(len([0x0f, 0xba, 0xe0, 0x05], 4), 4); // bt eax, 5
    assert.equal(len([0xa1, 1, 2, 3, 4, 5, 6, 7, 8], 8), 9); // mov eax, moffs64
  });
  it('marks instructions longer than 15 bytes', () => {
    const d = decode((i) => (i < 15 ? 0x66 : 0x90), 4, 0, 0);
    assert.equal(d!.bad, 2);
  });
});

describe('CPU core: execution basics', () => {
  for (const mode of ['long64', 'pae32', 'prot32', 'compat32', 'legacy32'] as TestMode[]) {
    it(`computes a loop and retires exact counts (${mode})`, () => {
      const tm = machine(
        mode === 'compat32' ? 'compat32' : mode,
        `
        mov ecx, 100
        xor eax, eax
      1: add eax, ecx
        dec ecx
        jnz 1b
        int3`,
      );
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(tm.cpu.exitTrap, true);
      assert.equal(R(tm, 0), 5050);
      assert.equal(tm.cpu.state.instructionsRetired, 2 + 300 + 1);
    });
  }
  it('stops exactly at the budget and single-steps', () => {
    const tm = machine('long64', `mov ecx, 1000\n1: dec ecx\njnz 1b\nint3`);
    assert.equal(tm.cpu.run(7), ExitReason.BUDGET);
    assert.equal(tm.cpu.state.instructionsRetired, 7);
    assert.equal(R(tm, 1), 1000 - 3);
    tm.cpu.singleStep = true;
    assert.equal(tm.cpu.run(100), ExitReason.STEP);
    assert.equal(tm.cpu.state.instructionsRetired, 8);
  });
  it('CALL/RET/PUSH/POP with 64-bit stack and high addresses', () => {
    const tm = machine(
      'long64',
      `
      mov rax, 0x123456789abcdef0
      push rax
      call 2f
      pop rbx
      int3
    2: mov rdx, [rsp + 8]
      ret`,
    );
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(R(tm, 3), 0x9abcdef0);
    assert.equal(RH(tm, 3), 0x12345678);
    assert.equal(RH(tm, 2), 0x12345678);
    assert.equal(R(tm, 4), 0x80000);
  });
});

describe('CPU core: flags', () => {
  const flagsAfter = (mode: TestMode, src: string): number => {
    const tm = machine(
      mode,
      `${src}\npushf\npop rax\nint3`.replace('pop rax', mode === 'long64' ? 'pop rax' : 'pop eax'),
    );
    assert.equal(go(tm), ExitReason.EXCEPTION);
    return R(tm, 0) & 0x8d5;
  };
  it('ADD/SUB/INC/logic/shift flags', () => {
    assert.equal(flagsAfter('long64', 'mov eax, 0x7fffffff\nadd eax, 1'), 0x800 | 0x80 | 0x10 | 0x4); // OF SF AF PF
    assert.equal(flagsAfter('long64', 'mov eax, 1\nsub eax, 2'), 0x1 | 0x80 | 0x10 | 0x4); // CF SF AF PF
    assert.equal(flagsAfter('long64', 'stc\nmov eax, -1\ninc eax'), 0x1 | 0x40 | 0x10 | 0x4); // CF kept, ZF AF PF
    assert.equal(flagsAfter('long64', 'stc\nmov eax, 0x80\nand eax, 0x80'), 0); // CF/OF cleared, PF=0 (1 bit)
    assert.equal(flagsAfter('long64', 'mov eax, 0x80000001\nshl eax, 1'), 0x1 | 0x800); // CF, OF = msb^cf
    assert.equal(flagsAfter('long64', 'mov rax, -1\nmov rbx, 1\nadd rax, rbx'), 0x1 | 0x40 | 0x10 | 0x4); // 64-bit carry
    assert.equal(flagsAfter('pae32', 'mov al, 0xff\nadd al, 1\nmov eax, 0'), 0x1 | 0x40 | 0x10 | 0x4);
  });
  it('Jcc after CMP at every width', () => {
    const tm = machine(
      'long64',
      `
      xor esi, esi
      mov rax, -5
      cmp rax, 3
      jl 1f
      or esi, 1
    1: jb 2f
      or esi, 2
    2: mov al, 0x80
      cmp al, 1
      jg 3f
      or esi, 4
    3: int3`,
    );
    go(tm);
    assert.equal(R(tm, 6), 6); // jl taken; jb not taken (or 2); jg not taken (or 4)
  });
});
