/**
 * Robustness: random bytes as code in paged 64-bit, 32-bit PAE and 32-bit
 * compatibility-mode machines, at CPL 0 and CPL 3, with and without
 * intercepts. Whatever the bytes, `run` must return an ExitReason and never
 * throw or report an internal error. Deterministic (seeded xorshift).
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { createTestMachine, CODE_BASE, IDT_BASE, type TestMode } from '../../engine/cpu/testbed';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const ROUNDS = Number(process.env.PVSCOPE_FUZZ_ROUNDS) || 20;

describe('CPU fuzz: random code never throws', function () {
  this.timeout(300000);
  for (const mode of ['long64', 'pae32', 'compat32'] as TestMode[]) {
    for (const user of [false, true]) {
      for (const intercept of [true, false]) {
        it(`${mode}, CPL ${user ? 3 : 0}, exceptions ${intercept ? 'intercepted' : 'through the IDT'}`, () => {
          const next = rng(0x9e3779b1 ^ (mode.length * 7919) ^ (user ? 1 : 0) ^ (intercept ? 2 : 0));
          let exits = 0;
          for (let round = 0; round < ROUNDS; round++) {
            const tm = createTestMachine({ mode, memoryMiB: 8, user });
            const cpu = tm.cpu;
            // 64 KiB of random code; random register values pointing anywhere.
            const code = new Uint8Array(0x10000);
            for (let i = 0; i < code.length; i++) code[i] = next() & 0xff;
            tm.load(CODE_BASE, code);
            // Exceptions through the IDT: gates into the random code, or (one round in four) a garbage IDT.
            if (!intercept) {
              if (round % 4 === 3) {
                const idt = new Uint8Array(4096);
                for (let i = 0; i < idt.length; i++) idt[i] = next() & 0xff;
                tm.load(IDT_BASE, idt);
              } else {
                for (let v = 0; v < 256; v++) tm.setIdtGate(v, CODE_BASE + (next() & 0xffff), 3);
              }
            }
            for (let r = 0; r < 16; r++) {
              cpu.state.gprLo[r] = next() & (r === 4 ? 0x7fff0 : 0xffffffff);
              cpu.state.gprHi[r] = mode === 'long64' && r !== 4 && next() & 1 ? next() : 0;
            }
            tm.start(CODE_BASE + (next() & 0xfff), 0x40000 + (next() & 0xfff0));
            cpu.interceptExceptions = intercept ? 0xffffffff : 0;
            cpu.interceptPrivileged = intercept;
            cpu.interceptSyscall = intercept;
            cpu.interceptSysenter = intercept;
            for (let step = 0; step < 40; step++) {
              let r: ExitReason;
              try {
                r = cpu.run(500);
              } catch (e) {
                assert.fail(`run threw in round ${round}: ${e instanceof Error ? e.stack : String(e)}`);
              }
              assert.ok(!cpu.exitDetail.startsWith('internal error'), `round ${round}: ${cpu.exitDetail}`);
              exits++;
              if (r === ExitReason.SHUTDOWN) break;
              if (r === ExitReason.HALT) cpu.state.halted = false;
              if (
                r === ExitReason.PRIVILEGED ||
                r === ExitReason.SOFT_INT ||
                r === ExitReason.SYSCALL ||
                r === ExitReason.SYSENTER
              ) {
                cpu.skipInstruction();
              } else if (r === ExitReason.EXCEPTION && !cpu.exitTrap) {
                // Skip the faulting instruction by a pseudo-random amount to keep going.
                cpu.exitInsnLength = 1 + (next() % 4);
                cpu.skipInstruction();
              }
              cpu.exitDetail = '';
            }
          }
          assert.ok(exits >= ROUNDS);
        });
      }
    }
  }
});
