import { strict as assert } from 'node:assert';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildAsmGuest, startClient } from '../helpers/dap';

// Line numbers below refer to this source (1-based).
const SOURCE = `\t.text
\t.globl _start
\t.type _start, @function
_start:
\tmov $1, %rax
\tcall func
loop:
\tinc %rbx
\tmov %ebx, counter
\tjmp loop
\t.size _start, . - _start
\t.type func, @function
func:
\tpush %rbp
\tmov %rsp, %rbp
\tadd $5, %rcx
\tnop
\tpop %rbp
\tret
\t.size func, . - func
\t.data
\t.type counter, @object
counter:
\t.long 0
\t.size counter, 4
`;

async function top(dc: DebugClient): Promise<DebugProtocol.StackFrame> {
  return (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames[0];
}

describe('debug adapter: symbols and DWARF line tables (test machine)', function () {
  this.timeout(60000);
  let dc: DebugClient;
  let guest: { elf: string; src: string };
  before(() => {
    guest = buildAsmGuest('lines', SOURCE);
  });
  beforeEach(async () => {
    dc = await startClient({ fake: true });
    await dc.initializeRequest({
      adapterID: 'pvscope',
      linesStartAt1: true,
      columnsStartAt1: true,
      pathFormat: 'path',
    });
  });
  afterEach(async () => {
    await dc.stop();
  });

  async function launch(): Promise<void> {
    const initialized = dc.waitForEvent('initialized');
    await dc.launchRequest({ kernel: guest.elf } as DebugProtocol.LaunchRequestArguments);
    await initialized;
  }

  it('maps the entry stop to its source line and steps by lines', async () => {
    await launch();
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
    let f = await top(dc);
    assert.equal(f.name, '_start');
    assert.equal(f.source?.path, guest.src);
    assert.equal(f.line, 5);
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    assert.equal((await top(dc)).line, 6);
    // next steps over the call.
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    f = await top(dc);
    assert.equal(f.line, 8);
    assert.equal(f.name, 'loop');
  });

  it('steps into a function by line, shows the caller line, and steps out', async () => {
    await launch();
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
    await Promise.all([dc.nextRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    await Promise.all([dc.stepInRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    let st = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.equal(st[0].name, 'func');
    assert.equal(st[0].line, 14);
    assert.equal(st[1].line, 6);
    await Promise.all([dc.stepInRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    await Promise.all([dc.stepInRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    st = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.equal(st[0].line, 16);
    assert.equal(st[1].name, '_start+0xc');
    await Promise.all([dc.stepOutRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    assert.equal((await top(dc)).line, 8);
  });

  it('prints logpoints with interpolated expressions and stops at a conditional line breakpoint', async () => {
    await launch();
    const logs: string[] = [];
    dc.on('output', (e: DebugProtocol.OutputEvent) => {
      if (e.body.category === 'console') logs.push(e.body.output);
    });
    const r = await dc.setBreakpointsRequest({
      source: { path: guest.src },
      breakpoints: [
        { line: 8, logMessage: 'rbx={rbx} rip={$rip}' },
        { line: 9, condition: 'rbx == 3' },
      ],
    });
    assert.ok(r.body.breakpoints.every((b) => b.verified));
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]);
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'breakpoint');
    assert.deepEqual(ev.body.hitBreakpointIds, [r.body.breakpoints[1].id]);
    assert.deepEqual(
      logs.filter((l) => l.startsWith('rbx=')),
      ['rbx=0x0 rip=0x100c\n', 'rbx=0x1 rip=0x100c\n', 'rbx=0x2 rip=0x100c\n'],
    );
  });

  it('stops at source-line and function breakpoints and on a data breakpoint on a symbol', async () => {
    await launch();
    const src = await dc.setBreakpointsRequest({
      source: { path: guest.src },
      breakpoints: [{ line: 16 }, { line: 200 }],
    });
    assert.equal(src.body.breakpoints[0].verified, true);
    assert.equal(src.body.breakpoints[0].line, 16);
    assert.equal(src.body.breakpoints[1].verified, false);
    const fn = await dc.setFunctionBreakpointsRequest({
      breakpoints: [{ name: 'loop' }, { name: 'nosuchfunction' }],
    });
    assert.equal(fn.body.breakpoints[0].verified, true);
    assert.equal(fn.body.breakpoints[1].verified, false);
    await Promise.all([dc.configurationDoneRequest(), dc.waitForEvent('stopped')]); // entry
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'breakpoint');
    assert.deepEqual(ev.body.hitBreakpointIds, [src.body.breakpoints[0].id]);
    assert.equal((await top(dc)).line, 16);
    const [, ev2] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev2.body.reason, 'function breakpoint');
    assert.equal((await top(dc)).name, 'loop');
    await dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    const info = await dc.dataBreakpointInfoRequest({ name: 'counter' });
    assert.ok(info.body.dataId, info.body.description);
    await dc.setDataBreakpointsRequest({ breakpoints: [{ dataId: info.body.dataId!, accessType: 'write' }] });
    const [, ev3] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev3.body.reason, 'data breakpoint');
    const v = await dc.evaluateRequest({ expression: '*(u32*)counter', context: 'watch', frameId: 0 });
    assert.match(v.body.result, /^0x1 \(1\)/);
    const d = await dc.customRequest('disassemble', { memoryReference: '0x1000', instructionCount: 4 });
    const ins = d.body.instructions as DebugProtocol.DisassembledInstruction[];
    assert.equal(ins[0].symbol, '_start');
    assert.equal(ins[0].line, 5);
    assert.match(ins[1].instruction, /call 0x1018 <func>/);
  });
});
