/**
 * Issue 8 (adapter half) on the adapter's test machine: request names
 * inherited from Object.prototype, argument validation by one schema per
 * request (offsets, counts, access types, frame ids), the top-level guard
 * for unexpected exceptions, bounded `disassemble` cost, and crash stops
 * (the test machine crashes like engine/machine.ts: the domain is already
 * finished when the crash filter stops).
 */
import { strict as assert } from 'node:assert';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import { scratchFile, startClient } from '../helpers/dap';

const PROTO_NAMES = [
  'valueOf',
  'constructor',
  'toString',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__proto__',
  '__defineGetter__',
  '__lookupGetter__',
];

async function initialize(dc: DebugClient): Promise<void> {
  await dc.initializeRequest({
    adapterID: 'pvscope',
    linesStartAt1: true,
    columnsStartAt1: true,
    pathFormat: 'path',
  });
}

/** Launches the test machine's default program and waits for the entry stop. */
async function launchToEntry(dc: DebugClient): Promise<void> {
  const kernel = scratchFile('not-elf.bin', 'not an ELF image\n');
  await initialize(dc);
  const initialized = dc.waitForEvent('initialized');
  await dc.launchRequest({ kernel, memory: 32 } as DebugProtocol.LaunchRequestArguments);
  await initialized;
  const stopped = dc.waitForEvent('stopped');
  await dc.configurationDoneRequest();
  await stopped;
}

/** A request that must fail, within `ms` (a dead adapter never answers). Returns the error message. */
async function failsWith(dc: DebugClient, command: string, args: unknown, ms = 5000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no response to '${command}' within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([dc.customRequest(command, args), timeout]);
  } catch (e) {
    const msg = (e as Error).message;
    if (/no response to/.test(msg)) throw e;
    return msg;
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`'${command}' ${JSON.stringify(args)} succeeded`);
}

async function alive(dc: DebugClient): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the adapter stopped answering')), 5000);
  });
  try {
    const r = (await Promise.race([dc.customRequest('pvscope/status'), timeout])) as DebugProtocol.Response;
    assert.equal(r.success, true);
  } finally {
    clearTimeout(timer);
  }
}

describe('debug adapter hardening (test machine)', function () {
  this.timeout(60000);
  let dc: DebugClient;
  beforeEach(async () => {
    dc = await startClient({ fake: true });
  });
  afterEach(async () => {
    await dc.stop();
  });

  it('treats request names from Object.prototype as unknown, before and after launch', async () => {
    await initialize(dc);
    for (const name of PROTO_NAMES)
      assert.match(
        await failsWith(dc, name, {}),
        new RegExp(`unrecognized request '${name.replace(/[$]/g, '\\$&')}'`),
        name,
      );
    await alive(dc);
    const kernel = scratchFile('not-elf.bin', 'not an ELF image\n');
    const initialized = dc.waitForEvent('initialized');
    await dc.launchRequest({ kernel, memory: 32 } as DebugProtocol.LaunchRequestArguments);
    await initialized;
    for (const name of PROTO_NAMES)
      assert.match(
        await failsWith(dc, name, {}),
        new RegExp(`unrecognized request '${name.replace(/[$]/g, '\\$&')}'`),
        name,
      );
    await alive(dc);
  });

  it('rejects ill-typed and out-of-range arguments with an error naming the argument', async () => {
    await launchToEntry(dc);
    const cases: [string, unknown, RegExp][] = [
      ['readMemory', { memoryReference: '0x1000', count: 'many' }, /'count'/],
      ['readMemory', { memoryReference: '0x1000', count: 16, offset: 1e20 }, /'offset'/],
      ['readMemory', { memoryReference: '0x1000', count: 1.5 }, /'count'/],
      ['writeMemory', { memoryReference: '0x5000', data: 'AAA=', offset: -1e30 }, /'offset'/],
      ['writeMemory', { memoryReference: '0x5000', data: 'AAA=', force: 'yes' }, /'force'/],
      ['stackTrace', { threadId: '1' }, /'threadId'/],
      ['stackTrace', { threadId: 1, levels: -5 }, /'levels'/],
      ['scopes', { frameId: 1.5 }, /unknown frameId 1.5/],
      ['variables', { variablesReference: 1, count: 'x' }, /'count'/],
      [
        'disassemble',
        { memoryReference: '0x1000', instructionCount: 8, instructionOffset: 1e20 },
        /'instructionOffset'/,
      ],
      ['disassemble', { memoryReference: '0x1000', instructionCount: 1e9 }, /'instructionCount'/],
      [
        'setInstructionBreakpoints',
        { breakpoints: [{ instructionReference: '0x1000', offset: 1e20 }] },
        /'breakpoints\[0\]\.offset'/,
      ],
      [
        'setInstructionBreakpoints',
        { breakpoints: [{ instructionReference: 7 }] },
        /'breakpoints\[0\]\.instructionReference'/,
      ],
      [
        'setDataBreakpoints',
        { breakpoints: [{ dataId: 'v:0x3000:4', accessType: 'bogus' }] },
        /'breakpoints\[0\]\.accessType'.*read.*write.*readWrite/,
      ],
      ['dataBreakpointInfo', { name: 'v:0x3000', bytes: -1 }, /'bytes'/],
      [
        'setBreakpoints',
        { source: { path: '/x.c' }, breakpoints: [{ line: 'ten' }] },
        /'breakpoints\[0\]\.line'/,
      ],
      ['setExceptionBreakpoints', { filters: [7] }, /'filters\[0\]'/],
      ['evaluate', { expression: '1', frameId: 12345 }, /unknown frameId 12345/],
      ['evaluate', { expression: '1', frameId: 3 }, /unknown frameId 3/],
      ['evaluate', { expression: 1 }, /'expression'/],
      ['continue', { threadId: 42 }, /unknown threadId 42/],
      ['pvscope/walk', { va: '0x1000', vcpu: 1e20 }, /'vcpu'/],
      ['pvscope/consoleInput', { text: 5 }, /'text'/],
    ];
    for (const [command, args, re] of cases) {
      const msg = await failsWith(dc, command, args);
      assert.match(msg, re, `${command} ${JSON.stringify(args)}: ${msg}`);
    }
    // Valid requests still work, and frame 0 stays valid without a stackTrace first.
    const ev = await dc.evaluateRequest({ expression: '1+1', frameId: 0 });
    assert.match(ev.body.result, /^0x2 /);
    await alive(dc);
  });

  it('turns an unexpected exception into an error response and a log line, and keeps serving', async () => {
    await launchToEntry(dc);
    const logs: string[] = [];
    dc.on('output', (e: DebugProtocol.OutputEvent) => logs.push(e.body.output));
    // The test machine throws a TypeError (an engine bug) for this XenStore path.
    const msg = await failsWith(dc, 'pvscope/xenstore', { path: '/pvscope-test/engine-bug' });
    assert.match(msg, /internal error in pvscope\/xenstore: TypeError: fake engine bug/);
    await alive(dc);
    assert.ok(
      logs.some((l) => /internal error in pvscope\/xenstore: TypeError: fake engine bug/.test(l)),
      logs.join(''),
    );
  });

  it('disassembles at huge instruction offsets in bounded time', async () => {
    await launchToEntry(dc);
    for (const instructionOffset of [-1e9, -1e6, 1e9, -(2 ** 53 - 1), 2 ** 53 - 1]) {
      const t0 = performance.now();
      const r = await dc.customRequest('disassemble', {
        memoryReference: '0x1000',
        instructionOffset,
        instructionCount: 50,
      });
      const dt = performance.now() - t0;
      const ins = r.body.instructions as DebugProtocol.DisassembledInstruction[];
      assert.equal(ins.length, 50, `offset ${instructionOffset}`);
      assert.ok(dt < 5000, `offset ${instructionOffset}: ${dt} ms`);
    }
    // Near offsets still decode exactly.
    const back = await dc.customRequest('disassemble', {
      memoryReference: '0x101f',
      instructionOffset: -2,
      instructionCount: 3,
    });
    assert.deepEqual(
      (back.body.instructions as DebugProtocol.DisassembledInstruction[]).map((i) => i.address),
      ['0x0000000000001015', '0x0000000000001018', '0x000000000000101f'],
    );
    await alive(dc);
  });

  it('stops on a crash with the reason and guest PC, stays inspectable, and exits non-zero', async () => {
    await launchToEntry(dc);
    // Jump to a byte the test machine cannot execute (0x00 at 0x9000): the domain crashes.
    await dc.setVariableRequest({ variablesReference: await regsRef(dc), name: 'rip', value: '0x9000' });
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: 1 });
    const ev = await stopped;
    assert.equal(ev.body.reason, 'exception');
    assert.match(ev.body.description ?? '', /domain crash: unsupported instruction byte 0x0 at 0x9000/);
    assert.match(ev.body.description ?? '', /guest PC 0x9000/);
    const st = await dc.stackTraceRequest({ threadId: 1 });
    assert.equal(st.body.stackFrames[0].instructionPointerReference, '0x9000');
    const info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'crash');
    const mem = await dc.customRequest('readMemory', { memoryReference: '0x1000', count: 1 });
    assert.equal(Buffer.from(mem.body.data, 'base64')[0], 0x48);
    const vars = await dc.variablesRequest({ variablesReference: await regsRef(dc) });
    assert.equal(vars.body.variables.find((v) => v.name === 'rip')?.value, '0x0000000000009000');
    const exited = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: 1 });
    assert.equal((await exited).body.exitCode, 1);
  });

  it('exits non-zero for a crash with the crash filter off', async () => {
    await launchToEntry(dc);
    await dc.setExceptionBreakpointsRequest({ filters: [] });
    await dc.setVariableRequest({ variablesReference: await regsRef(dc), name: 'rip', value: '0x9000' });
    const outputs: string[] = [];
    dc.on('output', (e: DebugProtocol.OutputEvent) => outputs.push(e.body.output));
    const exited = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: 1 });
    assert.equal((await exited).body.exitCode, 1);
    assert.ok(
      outputs.some((o) => /crash/.test(o) && /0x9000/.test(o)),
      outputs.join(''),
    );
  });
});

async function regsRef(dc: DebugClient): Promise<number> {
  const s = await dc.scopesRequest({ frameId: 0 });
  return s.body.scopes[0].variablesReference;
}
