/**
 * The guest's debug registers on the engine's CPU (Intel SDM vol. 3
 * chapter 18): MOV DRn checks (#UD for DR4/DR5 with CR4.DE, #GP for upper
 * bits of DR6/DR7, general detect with DR6.BD), instruction breakpoints
 * (#DB fault, RIP at the instruction, suppressed by RFLAGS.RF for one
 * instruction), data breakpoints of every length (#DB trap after the
 * access, write vs read/write), I/O breakpoints with CR4.DE, DR6.BS with
 * TF, and that pvscope's own breakpoints do not use the guest's DRs.
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { Flag } from '../../engine/cpu/state';
import { createTestMachine, CODE_BASE, type TestMachine } from '../../engine/cpu/testbed';
import { assembleFlat } from '../helpers/asm-flat';

const DATA = 0x200000;

function machine(src: string, generic = false): TestMachine {
  const tm = createTestMachine({ mode: 'long64', memoryMiB: 16 });
  const code = assembleFlat(`.intel_syntax noprefix\n.code64\n${src}`, CODE_BASE, 64);
  tm.load(CODE_BASE, code);
  tm.start(CODE_BASE);
  tm.cpu.interceptExceptions = (1 << 1) | (1 << 6) | (1 << 13);
  tm.cpu.forceGeneric = generic;
  return tm;
}

const rip = (tm: TestMachine): number => tm.cpu.state.ripLo >>> 0;
const R = (tm: TestMachine, r: number): number => tm.cpu.state.gprLo[r] >>> 0;

/** DR7 value: breakpoint n enabled (L bit) with R/W `rw` and LEN encoding `len`. */
function dr7(n: number, rw: number, len: number): number {
  return (1 << (2 * n)) | (rw << (16 + 4 * n)) | (len << (18 + 4 * n));
}

describe('CPU: guest debug registers', () => {
  for (const generic of [false, true]) {
    const tag = generic ? ' (interpreter)' : '';
    it(`instruction breakpoint: #DB fault at the instruction, DR6.B1; RF lets it execute once${tag}`, () => {
      const tm = machine(
        `mov rax, offset target
         mov dr1, rax
         mov eax, ${dr7(1, 0, 0)}
         mov dr7, rax
         xor ebx, ebx
         nop
       target:
         inc ebx
         hlt`,
        generic,
      );
      const r = tm.cpu.run(1000);
      assert.equal(r, ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 1);
      assert.equal(tm.cpu.exitTrap, false);
      const target = rip(tm);
      assert.equal(R(tm, 3), 0, 'the breakpointed instruction has not executed');
      assert.equal(tm.cpu.state.dr6 & 0xf, 2);
      assert.equal(tm.cpu.state.dr6 & 0x4000, 0);
      // Running again without RF faults again at once.
      assert.equal(tm.cpu.run(1000), ExitReason.EXCEPTION);
      assert.equal(rip(tm), target);
      // With RF the instruction executes, RF clears.
      tm.cpu.setRflags(tm.cpu.getRflags() | Flag.RF);
      assert.equal(tm.cpu.run(1000), ExitReason.HALT);
      assert.equal(R(tm, 3), 1);
      assert.equal(tm.cpu.getRflags() & Flag.RF, 0);
    });

    for (const [len, enc] of [
      [1, 0],
      [2, 1],
      [4, 3],
      [8, 2],
    ]) {
      it(`data write breakpoint of ${len} bytes: trap after the store that overlaps it, not for others${tag}`, () => {
        const bp = DATA + 0x40;
        const tm = machine(
          `mov rax, ${bp}
           mov dr0, rax
           mov eax, ${dr7(0, 1, enc)}
           mov dr7, rax
           mov byte ptr [${bp - 1}], 1
           mov byte ptr [${bp + len}], 1
           mov eax, [${bp}]
           mov ecx, 7
           mov [${bp + len - 1}], cl
         after:
           hlt`,
          generic,
        );
        const r = tm.cpu.run(1000);
        assert.equal(r, ExitReason.EXCEPTION, `exit ${r}`);
        assert.equal(tm.cpu.exitVector, 1);
        assert.equal(tm.cpu.exitTrap, true);
        assert.equal(tm.mem.read8(bp + len - 1), 7, 'the store completed');
        assert.equal(tm.cpu.state.dr6 & 0xf, 1);
        assert.equal(tm.mem.read8(rip(tm)), 0xf4, 'RIP after the store (at hlt)');
      });
    }

    it(`read/write breakpoint traps on a read; RF does not suppress data breakpoints${tag}`, () => {
      const tm = machine(
        `mov rax, ${DATA + 8}
         mov dr3, rax
         mov eax, ${dr7(3, 3, 3)}
         mov dr7, rax
         mov eax, [${DATA + 10}]
         mov ebx, 5
         hlt`,
        generic,
      );
      assert.equal(tm.cpu.run(1000), ExitReason.EXCEPTION);
      assert.equal(tm.cpu.exitVector, 1);
      assert.equal(tm.cpu.state.dr6 & 0xf, 8);
      assert.equal(R(tm, 3), 0, 'trap before the next instruction');
      assert.equal(tm.cpu.run(1000), ExitReason.HALT);
      assert.equal(R(tm, 3), 5);
    });
  }

  it('a faulting access to a data breakpoint reports no #DB', () => {
    const tm = machine(
      `mov rax, 0x8000000000000000
       mov dr0, rax
       mov eax, ${dr7(0, 3, 0)}
       mov dr7, rax
       mov rbx, 0x8000000000000000
       mov eax, [rbx]
       hlt`,
    );
    assert.equal(tm.cpu.run(1000), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 13);
    assert.equal(tm.cpu.state.dr6 & 0xf, 0);
  });

  it('I/O breakpoint with CR4.DE traps after OUT to a port in range; without DE R/W=10 is inert', () => {
    const src = `mov eax, 0x60
       mov dr2, rax
       mov eax, ${dr7(2, 2, 1)}
       mov dr7, rax
       out 0x62, al
       out 0x61, al
       mov ebx, 1
       hlt`;
    const tm = machine(src);
    tm.cpu.state.cr4 |= 8;
    assert.equal(tm.cpu.run(1000), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 1);
    assert.equal(tm.cpu.state.dr6 & 0xf, 4);
    assert.equal(R(tm, 3), 0);
    const t2 = machine(src);
    assert.equal(t2.cpu.run(1000), ExitReason.HALT);
  });

  it('MOV DR checks: DR4 aliases DR6 without CR4.DE and is #UD with it; DR7 upper bits #GP(0)', () => {
    const tm = machine(`mov rax, dr4\n hlt`);
    assert.equal(tm.cpu.run(100), ExitReason.HALT);
    assert.equal(R(tm, 0), 0xffff0ff0);
    const t2 = machine(`mov rax, dr4\n hlt`);
    t2.cpu.state.cr4 |= 8;
    assert.equal(t2.cpu.run(100), ExitReason.EXCEPTION);
    assert.equal(t2.cpu.exitVector, 6);
    const t3 = machine(`mov rax, 0x100000400\n mov dr7, rax\n hlt`);
    assert.equal(t3.cpu.run(100), ExitReason.EXCEPTION);
    assert.equal(t3.cpu.exitVector, 13);
    assert.equal(t3.cpu.state.dr7, 0x400);
  });

  it('general detect: with DR7.GD any MOV DR is a #DB fault with DR6.BD and GD cleared', () => {
    const tm = machine(`mov eax, 0x2400\n mov dr7, rax\n mov rbx, dr0\n hlt`);
    assert.equal(tm.cpu.run(100), ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitVector, 1);
    assert.equal(tm.cpu.state.dr6 & 0x2000, 0x2000);
    assert.equal(tm.cpu.state.dr7 & 0x2000, 0);
    assert.equal(tm.mem.read8(rip(tm)), 0x0f, 'RIP at the MOV DR');
  });

  it('TF single-step sets DR6.BS; a data breakpoint hit in the same instruction reports B0 and BS together', () => {
    const tm = machine(
      `mov rax, ${DATA}
       mov dr0, rax
       mov eax, ${dr7(0, 1, 0)}
       mov dr7, rax
       pushfq
       or qword ptr [rsp], 0x100
       popfq
       mov byte ptr [${DATA}], 1
       nop
       hlt`,
    );
    // TF set by POPF traps after the next instruction: the store, which also hits DR0.
    let r = tm.cpu.run(1000);
    assert.equal(r, ExitReason.EXCEPTION);
    assert.equal(tm.cpu.exitTrap, true);
    assert.equal(tm.cpu.state.dr6 & 0x400f, 0x4001);
    assert.equal(tm.mem.read8(rip(tm)), 0x90);
    // The next step (nop) reports BS.
    tm.cpu.state.dr6 = 0xffff0ff0 | 0;
    r = tm.cpu.run(1000);
    assert.equal(r, ExitReason.EXCEPTION);
    assert.equal(tm.cpu.state.dr6 & 0x400f, 0x4000);
    assert.equal(tm.mem.read8(rip(tm)), 0xf4);
  });

  it("pvscope's own breakpoints leave the guest's DR0-DR7 alone", () => {
    const tm = machine(`nop\n nop\n hlt`);
    tm.cpu.setBreakpoint(CODE_BASE + 1, 0);
    assert.equal(tm.cpu.run(100), ExitReason.BREAKPOINT);
    const s = tm.cpu.state;
    assert.deepEqual([...s.drLo, s.dr7, s.dr6 | 0], [0, 0, 0, 0, 0x400, 0xffff0ff0 | 0]);
  });
});
