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
import { Cpu } from '../../engine/cpu/cpu';
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
  it('keeps budgets exact with generic instructions inside blocks', () => {
    const tm = machine('long64', `mov ecx, 1000\n1: nop\nnop\nrdtsc\nbt eax, 3\ndec ecx\njnz 1b\nint3`);
    for (let i = 1; i <= 20; i++) {
      assert.equal(tm.cpu.run(7), ExitReason.BUDGET);
      assert.equal(tm.cpu.state.instructionsRetired, 7 * i);
    }
  });

  it('a single step that raises an exception stops at the handler entry', () => {
    const tm = machine('long64', `ud2\n.p2align 4\nhandler: nop\nint3`);
    tm.setIdtGate(6, CODE_BASE + 16);
    tm.cpu.interceptExceptions = 0;
    tm.cpu.singleStep = true;
    assert.equal(tm.cpu.run(10), ExitReason.STEP);
    assert.equal(rip(tm), CODE_BASE + 16);
    assert.equal(tm.cpu.state.instructionsRetired, 0);
  });

  it('RFLAGS.TF raises a #DB trap after each instruction (DR6.BS), POPF setting TF traps from the next one', () => {
    const tm = machine('long64', `pushf\nor dword ptr [rsp], 0x100\npopf\nmov eax, 1\nmov ebx, 2\nint3`);
    tm.cpu.interceptExceptions = (1 << 1) | (1 << 3);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 1, 'trap after the first instruction run with TF=1');
    assert.equal(tm.cpu.exitTrap, true);
    assert.equal(R(tm, 0), 1, 'MOV EAX completed');
    assert.equal(R(tm, 3), 0);
    assert.ok(tm.cpu.state.dr6 & 0x4000);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 1);
    assert.equal(R(tm, 3), 2);
    assert.equal(tm.cpu.state.instructionsRetired, 5);
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

describe('CPU core: 64-bit multiply', () => {
  it('MUL/IMUL r/m64 give the 128-bit product in RDX:RAX and CF=OF as the SDM says', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const big = (l: number, h: number): bigint => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);
    const edge = [0, 1, -1, 0x7fffffff, -0x80000000];
    for (let i = 0; i < 400; i++) {
      const signed = (i & 1) === 1;
      const tm = machine('long64', signed ? 'imul rbx\nint3' : 'mul rbx\nint3');
      const st = tm.cpu.state;
      for (const r of [0, 3]) {
        st.gprLo[r] = rnd() % 4 ? rnd() : edge[rnd() % 5];
        st.gprHi[r] = rnd() % 4 ? rnd() : edge[rnd() % 5];
      }
      let a = big(st.gprLo[0], st.gprHi[0]);
      let b = big(st.gprLo[3], st.gprHi[3]);
      if (signed) {
        a = BigInt.asIntN(64, a);
        b = BigInt.asIntN(64, b);
      }
      const p = BigInt.asUintN(128, a * b);
      go(tm);
      const got = (big(st.gprLo[2], st.gprHi[2]) << 64n) | big(st.gprLo[0], st.gprHi[0]);
      assert.equal(got, p, `${signed ? 'imul' : 'mul'} ${a} * ${b}`);
      const lo = p & ((1n << 64n) - 1n);
      const hi = p >> 64n;
      const of = signed ? hi !== (BigInt.asIntN(64, lo) < 0n ? (1n << 64n) - 1n : 0n) : hi !== 0n;
      const f = tm.cpu.getRflags();
      assert.equal((f & 1) !== 0, of);
      assert.equal((f & 0x800) !== 0, of);
    }
  });
});

describe('CPU core: 32-bit divide', () => {
  it('DIV/IDIV r/m32 of EDX:EAX give quotient/remainder or #DE as the SDM says', () => {
    let seed = 999;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    const edge = [0, 1, -1, 0x7fffffff, -0x80000000, 2, -2];
    let checked = 0;
    for (let i = 0; i < 600; i++) {
      const signed = (i & 1) === 1;
      const tm = machine('pae32', signed ? 'idiv ebx\nint3' : 'div ebx\nint3');
      const st = tm.cpu.state;
      st.gprLo[0] = rnd() % 3 ? rnd() : edge[rnd() % 7];
      st.gprLo[2] = rnd() % 3 ? (rnd() % 2 ? rnd() % 1000 : rnd()) : edge[rnd() % 7];
      st.gprLo[3] = rnd() % 3 ? rnd() : edge[rnd() % 7];
      const n0 = (BigInt(st.gprLo[2] >>> 0) << 32n) | BigInt(st.gprLo[0] >>> 0);
      const n = signed ? BigInt.asIntN(64, n0) : n0;
      const d = signed ? BigInt(st.gprLo[3]) : BigInt(st.gprLo[3] >>> 0);
      let q = 0n;
      let r = 0n;
      let wantDE = d === 0n;
      if (!wantDE) {
        q = n / d;
        r = n % d;
        wantDE = signed ? q > 0x7fffffffn || q < -0x80000000n : q > 0xffffffffn;
      }
      go(tm);
      assert.equal(tm.cpu.exitVector === 0, wantDE, `${signed ? 'idiv' : 'div'} ${n} / ${d}`);
      if (wantDE) continue;
      checked++;
      assert.equal(st.gprLo[0] | 0, Number(BigInt.asIntN(32, q)));
      assert.equal(st.gprLo[2] | 0, Number(BigInt.asIntN(32, r)));
    }
    assert.ok(checked > 200);
  });
});

describe('CPU core: paging', () => {
  const PAGE = 0x40000000; // a linear page mapped by the tests

  for (const mode of ['long64', 'pae32'] as TestMode[]) {
    const ax = mode === 'long64' ? 'rax' : 'eax';
    it(`sets Accessed then Dirty like hardware (${mode})`, () => {
      const tm = machine(mode, `mov eax, [${PAGE}]\nint3\nmov dword ptr [${PAGE}], 7\nint3`);
      tm.mapPage(PAGE, DATA, PTE_P | PTE_W);
      const pte = tm.pteOffset(PAGE);
      go(tm);
      assert.equal(tm.mem.read32(pte) & 0x60, 0x20, 'A set, D clear after a read');
      go(tm);
      assert.equal(tm.mem.read32(pte) & 0x60, 0x60, 'D set after a write');
      assert.equal(tm.mem.read32(DATA), 7);
      void ax;
    });

    it(`raises #PF with CR2 and error codes for not-present, write to read-only (WP), NX fetch (${mode})`, () => {
      const tm = machine(mode, `mov eax, [${PAGE}]\nint3\nmov dword ptr [${PAGE}], 1\nint3\njmp ${ax}\n`);
      // Not present.
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 14);
      assert.equal(tm.cpu.exitErrorCode, 0);
      assert.equal(tm.cpu.exitCr2Lo >>> 0, PAGE);
      assert.equal(rip(tm), CODE_BASE, 'fault leaves RIP at the instruction');
      // Map read-only: the read passes, the supervisor write faults with WP=1 (P|W).
      tm.mapPage(PAGE, DATA, PTE_P);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 14);
      assert.equal(tm.cpu.exitErrorCode, 3);
      // With CR0.WP clear a supervisor write to a read-only page succeeds.
      tm.cpu.state.cr0 &= ~0x10000;
      tm.cpu.stateChanged();
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(tm.mem.read32(DATA), 1);
      // NX: jumping to an NX page faults on the fetch with the I bit.
      tm.mapPage(PAGE, DATA, PTE_P | PTE_W, true);
      tm.cpu.flushTlb(true);
      tm.cpu.state.gprLo[0] = PAGE;
      tm.cpu.state.gprHi[0] = 0;
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 14);
      assert.equal(tm.cpu.exitErrorCode, 0x11);
      assert.equal(rip(tm), PAGE);
    });

    it(`checks U/S for CPL 3 accesses (${mode})`, () => {
      const tm = machine(mode, `mov eax, [${PAGE}]\nint3`, { user: true });
      tm.mapPage(PAGE, DATA, PTE_P | PTE_W);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 14);
      assert.equal(tm.cpu.exitErrorCode, 5, 'P|U');
      tm.mapPage(PAGE, DATA, PTE_P | PTE_U);
      tm.cpu.flushTlbPage(PAGE, 0);
      tm.mem.write32(DATA, 0x1234);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(R(tm, 0), 0x1234);
    });

    it(`keeps global entries across CR3 reloads; INVLPG and CR4.PGE toggles flush (${mode})`, () => {
      const tm = machine(
        mode,
        `
        mov eax, [${PAGE}]
        int3
        mov ${ax}, cr3
        mov cr3, ${ax}
        mov eax, [${PAGE}]
        mov ebx, [${PAGE + 0x1000}]
        int3
        invlpg [${PAGE}]
        mov eax, [${PAGE}]
        int3
        mov eax, [${PAGE + 0x1000}]
        mov ${ax}, cr4
        and eax, ~0x80
        mov cr4, ${ax}
        or eax, 0x80
        mov cr4, ${ax}
        mov eax, [${PAGE + 0x1000}]
        int3`,
        { pge: true },
      );
      tm.mem.write32(DATA, 0xaaaa);
      tm.mem.write32(DATA + 0x1000, 0xbbbb);
      tm.mem.write32(DATA + 0x2000, 0xcccc);
      tm.mapPage(PAGE, DATA, PTE_P | PTE_W | PTE_G);
      tm.mapPage(PAGE + 0x1000, DATA + 0x1000, PTE_P | PTE_W | PTE_G);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(R(tm, 0), 0xaaaa);
      // Remap both pages to the third frame without flushing.
      tm.mapPage(PAGE, DATA + 0x2000, PTE_P | PTE_W | PTE_G);
      tm.mapPage(PAGE + 0x1000, DATA + 0x2000, PTE_P | PTE_W);
      assert.equal(go(tm), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 3);
      assert.equal(R(tm, 0), 0xaaaa, 'global entry survives the CR3 reload');
      assert.equal(R(tm, 3), 0xcccc, 'second page was never cached: new mapping');
      go(tm);
      assert.equal(R(tm, 0), 0xcccc, 'INVLPG dropped the global entry');
      tm.mapPage(PAGE + 0x1000, DATA + 0x1000, PTE_P | PTE_W | PTE_G);
      go(tm);
      assert.equal(R(tm, 0), 0xbbbb, 'CR4.PGE toggle flushed everything');
    });
  }

  it('walks 4-level tables for high canonical addresses and raises #GP for non-canonical ones', () => {
    const tm = machine(
      'long64',
      `
      mov rbx, 0xffff800000001000
      mov eax, [rbx]
      int3
      mov rbx, 0x0000800000000000
      mov eax, [rbx]
      int3`,
    );
    tm.mapPage(0xffff800000001000n, DATA, PTE_P | PTE_W);
    tm.mem.write32(DATA, 0x5a5a);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 3);
    assert.equal(R(tm, 0), 0x5a5a);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 13);
    assert.equal(tm.cpu.exitErrorCode, 0);
  });

  it('treats entries pointing outside machine memory as reserved (#PF with RSVD), never crashing', () => {
    const tm = machine('long64', `mov eax, [${PAGE}]\nint3`);
    tm.mapPage(PAGE, 0x7fff0000000, PTE_P | PTE_W);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 14);
    assert.equal(tm.cpu.exitErrorCode & 9, 9);
  });

  it('translate() reports walks without side effects unless asked', () => {
    const tm = machine('pae32', 'int3');
    tm.mapPage(PAGE, DATA, PTE_P);
    const pte = tm.pteOffset(PAGE);
    assert.equal(tm.cpu.translate(PAGE + 5, 0, 0, false, false), DATA + 5);
    assert.equal(tm.mem.read32(pte) & 0x20, 0);
    assert.equal(tm.cpu.translate(PAGE, 0, 1, false, false), -1);
    assert.equal(tm.cpu.lastWalkError, 3);
    assert.equal(tm.cpu.translate(PAGE, 0, 0, true, false), -1);
    assert.equal(tm.cpu.lastWalkError, 5);
  });
});

describe('CPU core: exceptions and restart', () => {
  it('#DE, #UD (with the instruction named), #GP for non-canonical, faults restart with state unchanged', () => {
    const tm = machine(
      'long64',
      `mov eax, 5\nxor ecx, ecx\nxor edx, edx\ndiv ecx\nint3\nud2\nint3\nfld st(0)\nud2\n`,
    );
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 0);
    assert.equal(tm.cpu.exitErrorCode, -1);
    assert.equal(R(tm, 0), 5);
    assert.equal(tm.cpu.state.instructionsRetired, 3);
    tm.cpu.state.gprLo[1] = 2;
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 3);
    assert.equal(R(tm, 0), 2);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 6);
    tm.cpu.skipInstruction();
    assert.equal(tm.cpu.exitInsnLength, 2);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    // fld st(0) now executes (the x87 unit); the ud2 after it is #UD.
    assert.equal(tm.cpu.exitVector, 6);
    assert.equal(tm.cpu.state.fpuSw & 0x3800, 0x3800, 'fld pushed: TOP = 7');
  });

  it('#NM for x87 when CR0.TS is set', () => {
    const tm = machine('pae32', `fld st(0)`);
    tm.cpu.state.cr0 |= 8;
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 7);
  });

  it('restarts REP MOVSB after a #PF mid-string with RCX/RSI/RDI at the completed iterations', () => {
    const SRC = 0x300000;
    const DST = 0x50000000;
    const tm = machine('long64', `mov rsi, ${SRC}\nmov rdi, ${DST}\nmov ecx, 0x2100\ncld\nrep movsb\nint3`);
    for (let i = 0; i < 0x2100; i++) tm.mem.u8[SRC + i] = (i * 7) & 0xff;
    tm.mapPage(DST, 0x400000, PTE_P | PTE_W);
    // DST + 0x1000 unmapped; DST + 0x2000 mapped.
    tm.mapPage(DST + 0x2000, 0x402000, PTE_P | PTE_W);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 14);
    assert.equal(tm.cpu.exitCr2Lo >>> 0, DST + 0x1000);
    assert.equal(tm.cpu.exitErrorCode, 2);
    assert.equal(R(tm, 1), 0x1100, 'RCX counts the remaining iterations');
    assert.equal(R(tm, 6), SRC + 0x1000);
    assert.equal(R(tm, 7), DST + 0x1000);
    assert.equal(rip(tm) > CODE_BASE, true);
    tm.mapPage(DST + 0x1000, 0x401000, PTE_P | PTE_W);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 3);
    assert.equal(R(tm, 1), 0);
    for (let i = 0; i < 0x2100; i += 0x123) assert.equal(tm.mem.u8[0x400000 + i], (i * 7) & 0xff);
  });
});

describe('CPU core: bounded runs', () => {
  it('a huge REP STOSB yields to the budget, keeping RCX/RDI consistent, and resumes', () => {
    const tm = machine('long64', `mov rdi, 0x200000\nmov ecx, 0xffffffff\nxor eax, eax\nrep stosb\nint3`);
    assert.equal(tm.cpu.run(1000), ExitReason.BUDGET);
    const done = 0xffffffff - R(tm, 1);
    assert.ok(done > 0 && done < 0x100000, `iterations done ${done}`);
    assert.equal(R(tm, 7), 0x200000 + done);
    assert.equal(
      rip(tm),
      CODE_BASE + 14,
      'RIP stays at the REP instruction (mov rdi 7 + mov ecx 5 + xor 2 bytes)',
    );
    assert.equal(tm.cpu.run(1000), ExitReason.BUDGET);
    assert.ok(0xffffffff - R(tm, 1) > done, 'progress on the next run');
  });
});

describe('CPU core: bounded runs (exceptions)', () => {
  it('an exception handler that faults at once (serial #UD loop) still returns at the budget', () => {
    const tm = machine('long64', `ud2`);
    tm.setIdtGate(6, CODE_BASE);
    tm.cpu.interceptExceptions = 0;
    assert.equal(tm.cpu.run(1000), ExitReason.BUDGET);
    assert.equal(tm.cpu.state.instructionsRetired, 0);
  });
});

describe('CPU core: self-modifying code, breakpoints, watchpoints', () => {
  it('sees stores into code it already ran and writes through MachineMemory', () => {
    const tm = machine(
      'long64',
      `
      xor eax, eax
    1: call 2f
      inc ebx
      cmp ebx, 3
      jne 1b
      int3
    2: add eax, 1
      mov byte ptr [rip + 2b + 2], 5
      ret`,
    );
    go(tm);
    // add eax,1 is 83 c0 01: the store patched the immediate to 5 after the first call.
    assert.equal(R(tm, 0), 1 + 5 + 5);
    // External write through MachineMemory invalidates decoded code too.
    const tm2 = machine('pae32', `mov eax, 1\nint3`);
    go(tm2);
    assert.equal(R(tm2, 0), 1);
    tm2.mem.write8(CODE_BASE + 1, 9);
    tm2.start(CODE_BASE);
    go(tm2);
    assert.equal(R(tm2, 0), 9);
  });

  it('honours a breakpoint set inside a block that was already compiled and chained', () => {
    const tm = machine('long64', `mov ecx, 100\n1: add eax, 1\nadd ebx, 2\ndec ecx\njnz 1b\nint3`);
    assert.equal(tm.cpu.run(50), ExitReason.BUDGET);
    const bp = CODE_BASE + 5 + 3; // the second ADD
    tm.cpu.setBreakpoint(bp, 0);
    assert.equal(go(tm), ExitReason.BREAKPOINT);
    assert.equal(rip(tm), bp);
    const ebx = R(tm, 3);
    assert.equal(go(tm), ExitReason.BREAKPOINT, 'next iteration stops again');
    assert.equal(R(tm, 3), ebx + 2);
    tm.cpu.clearBreakpoint(bp, 0);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(R(tm, 1), 0);
    assert.equal(R(tm, 3), 200);
  });

  it('invalidates code decoded by one vCPU when another vCPU sharing the memory writes it', () => {
    const tm = machine('long64', `mov eax, 1\nint3\nmov byte ptr [${CODE_BASE + 1}], 7\nint3`);
    const a = tm.cpu;
    const b = new Cpu(tm.mem);
    const sa = a.state,
      sb = b.state;
    sb.cr0 = sa.cr0;
    sb.cr3Lo = sa.cr3Lo;
    sb.cr4 = sa.cr4;
    sb.efer = sa.efer;
    for (let g = 0; g < 8; g++)
      b.setSegmentRaw(g, sa.segSel[g], sa.segBaseLo[g], sa.segBaseHi[g], sa.segLimit[g], sa.segAttr[g]);
    b.interceptExceptions = 0xffffffff;
    go(tm);
    assert.equal(R(tm, 0), 1);
    // vCPU b runs the store (it has the code page in its TLB as data first).
    sb.ripLo = CODE_BASE + 6;
    sb.gprLo[4] = 0x70000;
    assert.equal(b.run(100), ExitReason.EXCEPTION);
    assert.equal(b.exitVector, 3);
    tm.start(CODE_BASE);
    go(tm);
    assert.equal(R(tm, 0), 7, 'vCPU a sees the code written by vCPU b');
  });

  it('exits BREAKPOINT before the instruction and resumes over it; WATCH after the access', () => {
    const tm = machine('long64', `mov eax, 1\nmov ebx, 2\nmov [${DATA}], ebx\nmov ecx, 3\nint3`);
    const bp = CODE_BASE + 5;
    tm.cpu.setBreakpoint(bp, 0);
    assert.equal(go(tm), ExitReason.BREAKPOINT);
    assert.equal(rip(tm), bp);
    assert.equal(R(tm, 3), 0);
    tm.cpu.clearBreakpoint(bp, 0);
    const id = tm.cpu.setWatch(DATA, 0, 4, 2);
    assert.equal(go(tm), ExitReason.WATCH);
    assert.equal(tm.cpu.exitWatchLinLo >>> 0, DATA);
    assert.equal(tm.cpu.exitWatchWrite, true);
    assert.equal(tm.mem.read32(DATA), 2, 'the access completed');
    assert.equal(R(tm, 1), 0, 'next instruction not executed');
    tm.cpu.clearWatch(id);
    assert.equal(go(tm), ExitReason.EXCEPTION);
    assert.equal(R(tm, 1), 3);
  });
});

describe('CPU core: intercepts and time', () => {
  it('INT n exits SOFT_INT at the instruction; SYSCALL exits SYSCALL; HLT at CPL3 exits PRIVILEGED', () => {
    const tm = machine('long64', `int 0x80\nsyscall\nhlt`, { user: true });
    tm.cpu.interceptSoftInt[0x80] = 1;
    tm.cpu.interceptSyscall = true;
    tm.cpu.interceptPrivileged = true;
    assert.equal(go(tm), ExitReason.SOFT_INT);
    assert.equal(tm.cpu.exitVector, 0x80);
    assert.equal(tm.cpu.exitInsnLength, 2);
    assert.equal(rip(tm), CODE_BASE);
    tm.cpu.skipInstruction();
    assert.equal(go(tm), ExitReason.SYSCALL);
    assert.equal(rip(tm), CODE_BASE + 2);
    tm.cpu.exitInsnLength = 2;
    tm.cpu.skipInstruction();
    assert.equal(go(tm), ExitReason.PRIVILEGED);
    assert.equal(tm.cpu.exitPrivOp, PrivOp.HLT);
    assert.equal(tm.cpu.exitInsnLength, 1);
    assert.equal(rip(tm), CODE_BASE + 4);
  });

  it('RDTSC = instructions retired * tscPerInstruction + tscOffset', () => {
    const tm = machine('long64', `nop\nnop\nrdtsc\nint3`);
    tm.cpu.tscPerInstruction = 3;
    tm.cpu.tscOffset = 1000;
    go(tm);
    assert.equal(R(tm, 0), 2 * 3 + 1000);
    assert.equal(R(tm, 2), 0);
  });
});
