/**
 * 64-bit mode: a non-canonical address formed through SS (RSP or RBP as the
 * base, an explicit SS: override, or an implicit stack access such as PUSH,
 * POP, CALL) raises #SS(0); through any other segment #GP(0) (SDM vol. 3
 * §6.15 "Interrupt 12 - Stack Fault Exception" and "Interrupt 13"). Checked
 * on compiled blocks and on the generic interpreter (`forceGeneric`).
 */
import { strict as assert } from 'node:assert';
import { ExitReason } from '../../engine/cpu/api';
import { createTestMachine, CODE_BASE } from '../../engine/cpu/testbed';
import { assembleFlat } from '../helpers/asm-flat';

function fault(src: string, generic: boolean): [number, number, number] {
  const tm = createTestMachine({ mode: 'long64', memoryMiB: 16 });
  const code = assembleFlat(`.intel_syntax noprefix\n.code64\n${src}\nhlt`, CODE_BASE, 64);
  tm.load(CODE_BASE, code);
  tm.start(CODE_BASE);
  tm.cpu.interceptExceptions = 0xffffffff;
  tm.cpu.forceGeneric = generic;
  const r = tm.cpu.run(1000);
  return [r, r === ExitReason.EXCEPTION ? tm.cpu.exitVector : -1, tm.cpu.exitErrorCode];
}

const NC = '0x8000000000001000';

const cases: [string, string, number][] = [
  ['push through a non-canonical RSP', `mov rsp, ${NC}\n push rax`, 12],
  ['pop through a non-canonical RSP', `mov rsp, ${NC}\n pop rax`, 12],
  ['call through a non-canonical RSP', `mov rsp, ${NC}\n call 1f\n1:`, 12],
  ['load with RBP as base', `mov rbp, ${NC}\n mov rax, [rbp + 8]`, 12],
  ['store with RSP as base', `mov rsp, ${NC}\n mov [rsp], rax`, 12],
  ['explicit SS: override with RBX as base', `mov rbx, ${NC}\n mov rax, ss:[rbx]`, 12],
  ['load with RBX as base (DS)', `mov rbx, ${NC}\n mov rax, [rbx]`, 13],
  ['store with RSI as base (DS)', `mov rsi, ${NC}\n mov [rsi], eax`, 13],
];

describe('CPU: non-canonical addresses through SS raise #SS(0)', () => {
  for (const generic of [false, true]) {
    for (const [name, src, vec] of cases) {
      it(`${generic ? 'interpreter' : 'compiled'}: ${name} -> ${vec === 12 ? '#SS(0)' : '#GP(0)'}`, () => {
        const [r, v, e] = fault(src, generic);
        assert.equal(r, ExitReason.EXCEPTION);
        assert.equal(v, vec);
        assert.equal(e, 0);
      });
    }
  }
});
