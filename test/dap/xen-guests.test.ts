/**
 * The debug adapter on the real engine with small PV test kernels built at
 * test time: page-fault, event-send and mmu-reject filter stops, a data
 * breakpoint on a guest variable, and line stepping through C built with -g.
 */
import { strict as assert } from 'node:assert';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildXenGuest } from '../helpers/xen-guest';
import { buildDebugXenGuest, scratchFile, startClient } from '../helpers/dap';

const ASM = `
_start:
  movl $5, counter(%rip)
  mov 0x50(%rsi), %eax          # start_info.console.domU.evtchn
  mov %eax, scratch(%rip)
  mov $4, %edi                  # EVTCHNOP_send
  lea scratch(%rip), %rsi
  HYPERCALL 32
  mov $0x100000, %rdi           # update_va_mapping of a frame the domain does not own
  movabs $0x7ffffff067, %rsi
  xor %edx, %edx
  HYPERCALL 14
  movl $1, 0x40000000           # unmapped: page fault
  SHUTDOWN 0
  .data
  .type counter, @object
counter: .long 0
  .size counter, 4
`;

const C = `volatile int counter;
static int add(int a, int b) {
  int s = a + b;
  return s;
}
void cmain(void) {
  int x = 1;
  x = add(x, 2);
  counter = x;
  counter++;
}
`;

async function top(dc: DebugClient): Promise<DebugProtocol.StackFrame> {
  return (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames[0];
}

async function go(dc: DebugClient, req: Promise<unknown>): Promise<DebugProtocol.StoppedEvent> {
  const [, ev] = await Promise.all([req, dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>]);
  return ev;
}

describe('debug adapter on PV test kernels (real engine)', function () {
  this.timeout(120000);
  let dc: DebugClient;
  let asmGuest: string;
  let cGuest: { elf: string; src: string };
  before(() => {
    asmGuest = scratchFile('xen-asm-guest.elf', buildXenGuest({ bits: 64, asm: ASM }));
    cGuest = buildDebugXenGuest('cguest', C);
  });
  beforeEach(async () => {
    dc = await startClient({ fake: false });
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

  async function launch(kernel: string): Promise<void> {
    const initialized = dc.waitForEvent('initialized');
    await dc.launchRequest({ kernel, memory: 32 } as DebugProtocol.LaunchRequestArguments);
    await initialized;
  }

  it('stops on an event send, Xen\u2019s mmu rejection and the page fault, with details', async () => {
    await launch(asmGuest);
    await dc.setExceptionBreakpointsRequest({
      filters: ['mmu-reject'],
      filterOptions: [
        { filterId: 'event', condition: 'send' },
        { filterId: 'pagefault', condition: '0x40000000-0x40000fff write' },
      ],
    });
    await go(dc, dc.configurationDoneRequest());
    let ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    assert.equal(ev.body.reason, 'exception');
    assert.match(ev.body.description!, /^event send port=\d+$/);
    let info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'event');

    ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'mmu-reject');
    assert.match(info.body.description!, /MMIO space 0x7ffffff/);
    assert.match(info.body.details!.stackTrace!, /errnoName: EPERM/);

    ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'pagefault');
    assert.match(info.body.details!.stackTrace!, /cr2: 0x40000000/);
    const err = /errorCode: (\d+)/.exec(info.body.details!.stackTrace!);
    assert.ok(err && (Number(err[1]) & 2) !== 0, info.body.details!.stackTrace);
  });

  it('stops on a data breakpoint on a guest variable', async () => {
    await launch(asmGuest);
    const info = await dc.dataBreakpointInfoRequest({ name: 'counter' });
    assert.ok(info.body.dataId, info.body.description);
    const set = await dc.setDataBreakpointsRequest({
      breakpoints: [{ dataId: info.body.dataId!, accessType: 'write' }],
    });
    assert.equal(set.body.breakpoints[0].verified, true, set.body.breakpoints[0].message);
    await go(dc, dc.configurationDoneRequest());
    const ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    assert.equal(ev.body.reason, 'data breakpoint');
    const v = await dc.evaluateRequest({ expression: '*(u32*)counter', context: 'watch', frameId: 0 });
    assert.match(v.body.result, /^0x5 \(5\)/);
  });

  it('steps by source lines through a C guest built with -g', async () => {
    await launch(cGuest.elf);
    const fb = await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'cmain' }] });
    assert.equal(fb.body.breakpoints[0].verified, true);
    await go(dc, dc.configurationDoneRequest());
    let ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    assert.equal(ev.body.reason, 'function breakpoint');
    let f = await top(dc);
    assert.equal(f.name, 'cmain');
    assert.equal(f.source?.path, cGuest.src);
    assert.equal(f.line, 6);
    await go(dc, dc.nextRequest({ threadId: 1 }));
    assert.equal((await top(dc)).line, 7);
    await go(dc, dc.nextRequest({ threadId: 1 }));
    assert.equal((await top(dc)).line, 8);
    ev = await go(dc, dc.stepInRequest({ threadId: 1 }));
    assert.equal(ev.body.reason, 'step');
    let frames = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.equal(frames[0].name, 'add');
    assert.equal(frames[0].line, 2);
    assert.equal(frames[1].name.startsWith('cmain+'), true);
    assert.equal(frames[1].line, 8);
    await go(dc, dc.nextRequest({ threadId: 1 }));
    assert.equal((await top(dc)).line, 3);
    await go(dc, dc.stepOutRequest({ threadId: 1 }));
    f = await top(dc);
    assert.equal(f.name.startsWith('cmain+'), true);
    assert.equal(f.line, 8);
    await go(dc, dc.nextRequest({ threadId: 1 }));
    assert.equal((await top(dc)).line, 9);
    const bp = await dc.setBreakpointsRequest({ source: { path: cGuest.src }, breakpoints: [{ line: 10 }] });
    assert.equal(bp.body.breakpoints[0].verified, true);
    ev = await go(dc, dc.continueRequest({ threadId: 1 }));
    assert.equal(ev.body.reason, 'breakpoint');
    frames = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.equal(frames[0].line, 10);
    const v = await dc.evaluateRequest({
      expression: '*(u32*)counter',
      context: 'watch',
      frameId: frames[0].id,
    });
    assert.match(v.body.result, /^0x3 \(3\)/);
    const term = dc.waitForEvent('terminated');
    await dc.continueRequest({ threadId: 1 });
    await term;
  });
});
