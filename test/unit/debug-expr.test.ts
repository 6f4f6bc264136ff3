import { strict as assert } from 'node:assert';
import { compileExpr, evaluateExpr, ExprError, type ExprContext } from '../../engine/debug/expr';

function ctx(regs: Record<string, bigint>, mem: Map<bigint, number> = new Map()): ExprContext {
  return {
    lookup: (n) => regs[n.replace(/^\$/, '').toLowerCase()],
    readMemory(addr, size) {
      let v = 0n;
      for (let i = 0; i < size; i++) {
        const b = mem.get(addr + BigInt(i));
        if (b === undefined) return undefined;
        v |= BigInt(b) << BigInt(8 * i);
      }
      return v;
    },
  };
}

describe('engine/debug/expr', () => {
  const regs = { rax: 5n, rsp: 0x1000n, sym: 0x2000n };
  const mem = new Map<bigint, number>();
  for (let i = 0; i < 16; i++) mem.set(0x1008n + BigInt(i), i + 1);
  for (let i = 0; i < 8; i++) mem.set(0x2000n + BigInt(i), 0xf0 + i);
  const c = ctx(regs, mem);

  it('does C arithmetic with precedence', () => {
    assert.equal(evaluateExpr('1 + 2 * 3', c), 7n);
    assert.equal(evaluateExpr('(1 + 2) * 3', c), 9n);
    assert.equal(evaluateExpr('1 << 4 | 1', c), 17n);
    assert.equal(evaluateExpr('0x10 >> 2', c), 4n);
    assert.equal(evaluateExpr('7 % 4 ^ 1', c), 2n);
    assert.equal(evaluateExpr('~0', c), 0xffffffffffffffffn);
    assert.equal(evaluateExpr('-1', c), 0xffffffffffffffffn);
    assert.equal(evaluateExpr('!0 && 3 || 0', c), 1n);
    assert.equal(evaluateExpr('3 < 4 == 1', c), 1n);
    assert.equal(evaluateExpr('5 >= 6', c), 0n);
  });

  it('reads registers with and without $', () => {
    assert.equal(evaluateExpr('$rax + rax', c), 10n);
    assert.equal(evaluateExpr('rax == 5 && $rsp != 0', c), 1n);
  });

  it('dereferences with casts and indexes', () => {
    assert.equal(evaluateExpr('*(u64*)($rsp+8)', c), 0x0807060504030201n);
    assert.equal(evaluateExpr('*(u32*)($rsp+8)', c), 0x04030201n);
    assert.equal(evaluateExpr('*(u8*)sym', c), 0xf0n);
    assert.equal(evaluateExpr('*(s8*)sym', c), -16n);
    assert.equal(evaluateExpr('((u16*)sym)[1]', c), 0xf3f2n);
    assert.equal(evaluateExpr('*((u8*)sym + 2)', c), 0xf2n);
    assert.equal(evaluateExpr('(u8)0x1234', c), 0x34n);
    assert.equal(evaluateExpr('(unsigned int)-1', c), 0xffffffffn);
  });

  it('reports errors clearly', () => {
    assert.throws(
      () => evaluateExpr('nosuch + 1', c),
      (e: Error) => e instanceof ExprError && /unknown name 'nosuch'/.test(e.message),
    );
    assert.throws(() => evaluateExpr('*(u64*)0x9999', c), /cannot read 8 byte\(s\) at 0x9999/);
    assert.throws(() => evaluateExpr('1 / 0', c), /division by zero/);
    assert.throws(() => compileExpr('1 +'), /unexpected end/);
    assert.throws(() => compileExpr('(1'), /expected '\)'/);
    assert.throws(() => compileExpr('1 # 2'), /unexpected character '#'/);
    assert.throws(() => compileExpr(''), /empty expression/);
    assert.throws(() => compileExpr('('.repeat(3000) + '1' + ')'.repeat(3000)), ExprError);
  });

  it('lists the names it mentions', () => {
    assert.deepEqual(compileExpr('arg0 == 4 && arg1 > nr').names.sort(), ['arg0', 'arg1', 'nr']);
  });
});
