import { strict as assert } from 'node:assert';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { ADAPTER, scratchFile, startClient } from '../helpers/dap';
import { REPO_ROOT } from '../helpers/debian';

/** Launches the fake machine's default program and waits for the entry stop. */
async function launchToEntry(
  dc: DebugClient,
  extra: Record<string, unknown> = {},
): Promise<DebugProtocol.StoppedEvent> {
  const kernel = scratchFile('not-elf.bin', 'not an ELF image\n');
  await dc.initializeRequest({
    adapterID: 'pvscope',
    linesStartAt1: true,
    columnsStartAt1: true,
    pathFormat: 'path',
  });
  const initialized = dc.waitForEvent('initialized');
  await dc.launchRequest({ kernel, memory: 32, ...extra } as DebugProtocol.LaunchRequestArguments);
  await initialized;
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  await dc.configurationDoneRequest();
  return stopped;
}

async function setIns(
  dc: DebugClient,
  args: DebugProtocol.SetInstructionBreakpointsArguments,
): Promise<DebugProtocol.SetInstructionBreakpointsResponse> {
  return (await dc.customRequest(
    'setInstructionBreakpoints',
    args,
  )) as DebugProtocol.SetInstructionBreakpointsResponse;
}

async function pc(dc: DebugClient): Promise<bigint> {
  const st = await dc.stackTraceRequest({ threadId: 1 });
  return BigInt(st.body.stackFrames[0].instructionPointerReference!);
}

describe('debug adapter on a test machine', function () {
  this.timeout(60000);
  let dc: DebugClient;
  beforeEach(async () => {
    dc = await startClient({ fake: true });
  });
  afterEach(async () => {
    await dc.stop();
  });

  it('declares its capabilities and the hypervisor exception filters', async () => {
    const r = await dc.initializeRequest();
    const c = r.body!;
    assert.equal(c.supportsConfigurationDoneRequest, true);
    assert.equal(c.supportsInstructionBreakpoints, true);
    assert.equal(c.supportsDataBreakpoints, true);
    assert.equal(c.supportsReadMemoryRequest, true);
    assert.equal(c.supportsDisassembleRequest, true);
    assert.equal(c.supportsExceptionFilterOptions, true);
    assert.equal(c.supportsStepBack, false);
    const ids = c.exceptionBreakpointFilters!.map((f) => f.filter);
    assert.deepEqual(ids, ['hypercall', 'grant', 'pagefault', 'trap', 'event', 'mmu-reject', 'crash']);
    assert.ok(c.exceptionBreakpointFilters!.every((f) => f.supportsCondition && f.conditionDescription));
    assert.equal(c.exceptionBreakpointFilters!.find((f) => f.filter === 'crash')!.default, true);
  });

  it('fails a launch with bad attributes, naming them, and stays up', async () => {
    await dc.initializeRequest();
    await assert.rejects(
      dc.launchRequest({ kernel: '/nonexistent/vmlinuz' } as DebugProtocol.LaunchRequestArguments),
      /'kernel': file not found/,
    );
    await assert.rejects(
      dc.launchRequest({
        kernel: scratchFile('k.bin', 'x'),
        memory: 'lots',
      } as DebugProtocol.LaunchRequestArguments),
      /'memory': must be a whole number/,
    );
    await assert.rejects(
      dc.launchRequest({
        kernel: scratchFile('k.bin', 'x'),
        vcpus: 0,
      } as DebugProtocol.LaunchRequestArguments),
      /'vcpus'/,
    );
    await assert.rejects(
      dc.launchRequest({ kernal: 'x' } as DebugProtocol.LaunchRequestArguments),
      /'kernal': unknown attribute/,
    );
    await assert.rejects(dc.launchRequest({} as DebugProtocol.LaunchRequestArguments), /'kernel': missing/);
    await assert.rejects(
      dc.launchRequest({
        kernel: scratchFile('k.bin', 'x'),
        disks: ['/no/such.img,raw,xvda,rw'],
      } as DebugProtocol.LaunchRequestArguments),
      /'disks\[0\]'/,
    );
    await assert.rejects(
      dc.launchRequest({
        kernel: scratchFile('k.bin', 'x'),
        stopOnEntry: 'yes',
      } as DebugProtocol.LaunchRequestArguments),
      /'stopOnEntry'/,
    );
    // Still serving requests.
    const t = await dc.threadsRequest();
    assert.deepEqual(t.body.threads, []);
  });

  it('launches from an xl domain configuration file, explicit attributes overriding it', async () => {
    scratchFile('cfg-kernel.bin', 'not an ELF image\n');
    const cfg = scratchFile(
      'dom.cfg',
      'name = "cfgdom"\nkernel = "cfg-kernel.bin"\nmemory = 64\nvcpus = 2\nuuid = "00000000-0000-0000-0000-000000000000"\n',
    );
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    await dc.launchRequest({ config: cfg, vcpus: 1 } as DebugProtocol.LaunchRequestArguments);
    await initialized;
    const t = await dc.threadsRequest();
    assert.deepEqual(
      t.body.threads.map((x) => x.name),
      ['vcpu0'],
    );
    const r = await dc.evaluateRequest({ expression: 'info domain', context: 'repl' });
    assert.match(r.body.result, /name: cfgdom/);
  });

  it('fails a launch from a bad xl file naming the file and the key', async () => {
    const cfg = scratchFile('bad.cfg', 'name = "d"\nkernel = "x"\nmemory = "lots"\n');
    await dc.initializeRequest();
    await assert.rejects(
      dc.launchRequest({ config: cfg } as DebugProtocol.LaunchRequestArguments),
      /'config': .*bad\.cfg: .*memory/,
    );
    await assert.rejects(
      dc.launchRequest({ config: '/no/such.cfg' } as DebugProtocol.LaunchRequestArguments),
      /'config': file not found/,
    );
  });

  it('loads kallsyms/System.map symbol files with a load offset', async () => {
    const syms = scratchFile('System.map', '0000000000000100 T start_here\n0000000000000200 t helper_fn\n');
    await launchToEntry(dc, { symbols: [{ path: syms, offset: '0xf00' }] });
    let f = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames[0];
    assert.equal(f.name, 'start_here');
    const fb = await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'helper_fn' }] });
    assert.equal(fb.body.breakpoints[0].verified, true);
    assert.equal(fb.body.breakpoints[0].instructionReference, '0x1100');
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    const st = (await dc.stackTraceRequest({ threadId: 1 })).body.stackFrames;
    assert.equal(st[0].name, 'helper_fn');
    assert.equal(st[1].name, 'start_here+0x26');
    const r = await dc.evaluateRequest({ expression: 'helper_fn + 1', context: 'watch', frameId: 0 });
    assert.match(r.body.result, /^0x1101 \(4353\) <helper_fn\+0x1>/);
  });

  it('fails a launch with an unreadable symbols file, naming the entry', async () => {
    await dc.initializeRequest();
    const bin = scratchFile('junk.sym', new Uint8Array([0, 1, 2, 3, 0, 0]));
    await assert.rejects(
      dc.launchRequest({
        kernel: scratchFile('k2.bin', 'x'),
        symbols: [bin],
      } as DebugProtocol.LaunchRequestArguments),
      /'symbols\[0\]': cannot read symbols/,
    );
  });

  it('stops on entry, single-steps and steps over a call', async () => {
    const ev = await launchToEntry(dc);
    assert.equal(ev.body.reason, 'entry');
    assert.equal(ev.body.threadId, 1);
    const threads = await dc.threadsRequest();
    assert.deepEqual(
      threads.body.threads.map((t) => t.name),
      ['vcpu0'],
    );
    assert.equal(await pc(dc), 0x1000n);
    for (const expected of [0x1007n, 0x100en, 0x1015n]) {
      await Promise.all([
        dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
        dc.waitForEvent('stopped'),
      ]);
      assert.equal(await pc(dc), expected);
    }
    // To the hypercall, through it (its result is printed), then over the call.
    await Promise.all([
      dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    await Promise.all([
      dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    assert.equal(await pc(dc), 0x101fn);
    const outputs: string[] = [];
    dc.on('output', (e: DebugProtocol.OutputEvent) => outputs.push(e.body.output));
    await Promise.all([
      dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    assert.equal(await pc(dc), 0x1021n);
    assert.ok(
      outputs.some((o) =>
        /hypercall mmu_update\(req=0x2000, count=3, done=NULL, DOMID_SELF\) = -22 \(-EINVAL\)/.test(o),
      ),
      outputs.join(''),
    );
    await Promise.all([
      dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    assert.equal(await pc(dc), 0x1026n);
  });

  it('steps into a function, shows the caller frame and steps out', async () => {
    await launchToEntry(dc);
    await setIns(dc, { breakpoints: [{ instructionReference: '0x1021' }] });
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    await Promise.all([
      dc.stepInRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    assert.equal(await pc(dc), 0x1100n);
    await Promise.all([
      dc.stepInRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    await Promise.all([
      dc.stepInRequest({ threadId: 1, granularity: 'instruction' }),
      dc.waitForEvent('stopped'),
    ]);
    const st = await dc.stackTraceRequest({ threadId: 1 });
    assert.ok(st.body.stackFrames.length >= 2);
    assert.equal(BigInt(st.body.stackFrames[1].instructionPointerReference!), 0x1026n);
    await Promise.all([dc.stepOutRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    assert.equal(await pc(dc), 0x1026n);
  });

  it('stops at instruction and function breakpoints with conditions and hit counts', async () => {
    await launchToEntry(dc);
    const r = await setIns(dc, { breakpoints: [{ instructionReference: '0x1029', hitCondition: '3' }] });
    assert.equal(r.body.breakpoints[0].verified, true);
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'instruction breakpoint');
    assert.deepEqual(ev.body.hitBreakpointIds, [r.body.breakpoints[0].id]);
    let v = await dc.evaluateRequest({ expression: '$rbx', context: 'watch', frameId: 0 });
    assert.match(v.body.result, /^0x3 \(3\)/);
    // Condition instead.
    await setIns(dc, { breakpoints: [{ instructionReference: '0x1029', condition: 'rbx == 10' }] });
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    v = await dc.evaluateRequest({ expression: 'rbx', context: 'watch', frameId: 0 });
    assert.match(v.body.result, /^0xa \(10\)/);
    // A function breakpoint given as an address expression.
    await setIns(dc, { breakpoints: [] });
    await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: '*0x1029', condition: 'rbx == 12' }] });
    const [, ev2] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev2.body.reason, 'function breakpoint');
    v = await dc.evaluateRequest({ expression: 'rbx', context: 'watch', frameId: 0 });
    assert.match(v.body.result, /^0xc \(12\)/);
  });

  it('stops on the hypercall filter with a decoded description and exceptionInfo', async () => {
    await launchToEntry(dc);
    const r = await dc.setExceptionBreakpointsRequest({
      filters: [],
      filterOptions: [{ filterId: 'hypercall', condition: 'mmu_update' }],
    });
    assert.equal(r.body?.breakpoints?.[0].verified, true);
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'exception');
    assert.equal(ev.body.description, 'hypercall mmu_update(req=0x2000, count=3, done=NULL, DOMID_SELF)');
    assert.equal(await pc(dc), 0x101fn);
    const info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'hypercall');
    assert.match(info.body.details!.stackTrace!, /count: 3/);
    // A bad condition is reported per filter, not as a failed request.
    const bad = await dc.setExceptionBreakpointsRequest({
      filters: [],
      filterOptions: [{ filterId: 'hypercall', condition: 'mmu_updat' }],
    });
    assert.equal(bad.body?.breakpoints?.[0].verified, false);
    assert.match(bad.body!.breakpoints![0].message!, /unknown hypercall 'mmu_updat'/);
  });

  it('stops on mmu-reject with Xen\u2019s reason', async () => {
    await launchToEntry(dc);
    await dc.setExceptionBreakpointsRequest({ filters: ['mmu-reject'] });
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'exception');
    const info = await dc.exceptionInfoRequest({ threadId: 1 });
    assert.equal(info.body.exceptionId, 'mmu-reject');
    assert.match(info.body.description!, /Bad L1 flags 0x800000/);
  });

  it('stops on data breakpoints', async () => {
    await launchToEntry(dc);
    const info = await dc.dataBreakpointInfoRequest({
      name: '0x3000',
      asAddress: true,
      bytes: 4,
    } as DebugProtocol.DataBreakpointInfoArguments);
    assert.ok(info.body.dataId);
    const set = await dc.setDataBreakpointsRequest({
      breakpoints: [{ dataId: info.body.dataId!, accessType: 'write', condition: 'rbx == 2' }],
    });
    assert.equal(set.body.breakpoints[0].verified, true);
    const [, ev] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'data breakpoint');
    const mem = await dc.customRequest('readMemory', { memoryReference: 'p:0x3000', count: 4 });
    assert.deepEqual([...Buffer.from(mem.body.data, 'base64')], [2, 0, 0, 0]);
  });

  it('pauses a running guest', async () => {
    await launchToEntry(dc);
    await dc.continueRequest({ threadId: 1 });
    await new Promise((r) => setTimeout(r, 200));
    const st = await dc.customRequest('pvscope/status');
    assert.equal(st.body.running, true);
    const [, ev] = await Promise.all([
      dc.pauseRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'pause');
    const st2 = await dc.customRequest('pvscope/status');
    assert.equal(st2.body.running, false);
    assert.ok(st2.body.instructionsRetired > 1000);
  });

  it('shows registers, Xen vCPU and Domain scopes, and sets registers', async () => {
    await launchToEntry(dc);
    const scopes = await dc.scopesRequest({ frameId: 0 });
    assert.deepEqual(
      scopes.body.scopes.map((s) => s.name),
      ['Registers', 'Xen vCPU', 'Domain'],
    );
    assert.equal(scopes.body.scopes[0].presentationHint, 'registers');
    const regs = await dc.variablesRequest({ variablesReference: scopes.body.scopes[0].variablesReference });
    const names = regs.body.variables.map((v) => v.name);
    assert.equal(names[0], 'rax');
    const rip = regs.body.variables.find((v) => v.name === 'rip')!;
    assert.equal(rip.value, '0x0000000000001000');
    assert.equal(rip.memoryReference, '0x1000');
    const rflags = regs.body.variables.find((v) => v.name === 'rflags')!;
    const flags = await dc.variablesRequest({ variablesReference: rflags.variablesReference });
    assert.equal(flags.body.variables.find((v) => v.name === 'IF')!.value, '1');
    const cs = regs.body.variables.find((v) => v.name === 'cs')!;
    const csKids = await dc.variablesRequest({ variablesReference: cs.variablesReference });
    assert.ok(csKids.body.variables.some((v) => v.name === 'base'));
    const set = await dc.setVariableRequest({
      variablesReference: scopes.body.scopes[0].variablesReference,
      name: 'rbx',
      value: '0x40 + 2',
    });
    assert.equal(set.body.value, '0x0000000000000042');
    const ev = await dc.evaluateRequest({ expression: 'rbx * 2', context: 'repl', frameId: 0 });
    assert.match(ev.body.result, /^0x84 \(132\)/);
    const xen = await dc.variablesRequest({ variablesReference: scopes.body.scopes[1].variablesReference });
    assert.ok(xen.body.variables.some((v) => v.name === 'evtchn_upcall_mask'));
    const dom = await dc.variablesRequest({ variablesReference: scopes.body.scopes[2].variablesReference });
    assert.ok(dom.body.variables.some((v) => v.name === 'nr_pages'));
    assert.ok(dom.body.variables.some((v) => v.name === 'console'));
  });

  it('evaluates expressions and debug-console commands', async () => {
    await launchToEntry(dc);
    let r = await dc.evaluateRequest({ expression: '*(u8*)0x1000', context: 'hover', frameId: 0 });
    assert.match(r.body.result, /^0x48 /);
    r = await dc.evaluateRequest({ expression: '*(u32*)($rip + 3)', context: 'watch', frameId: 0 });
    assert.match(r.body.result, /^0x1 \(1\)/);
    await assert.rejects(
      dc.evaluateRequest({ expression: 'nosuchreg + 1', context: 'watch', frameId: 0 }),
      /unknown name 'nosuchreg'/,
    );
    r = await dc.evaluateRequest({ expression: 'help', context: 'repl' });
    assert.match(r.body.result, /info gdt/);
    r = await dc.evaluateRequest({ expression: 'info gdt', context: 'repl' });
    assert.match(r.body.result, /GDT: 2 entries/);
    r = await dc.evaluateRequest({ expression: 'info pt 0x1000', context: 'repl' });
    assert.match(r.body.result, /-> maddr 0x201000/);
    r = await dc.evaluateRequest({ expression: 'info evtchn', context: 'repl' });
    assert.match(r.body.result, /xenstored/);
    r = await dc.evaluateRequest({ expression: 'xenstore-ls', context: 'repl' });
    assert.match(r.body.result, /name = "pvscope-guest"/);
    await assert.rejects(
      dc.evaluateRequest({ expression: 'info bogus', context: 'repl' }),
      /unknown command/,
    );
  });

  it('reads and writes memory in all three address spaces and disassembles', async () => {
    await launchToEntry(dc);
    const one = async (ref: string): Promise<number> => {
      const r = await dc.customRequest('readMemory', { memoryReference: ref, count: 1 });
      return Buffer.from(r.body.data, 'base64')[0];
    };
    assert.equal(await one('0x1000'), 0x48);
    assert.equal(await one('v:0x1000'), 0x48);
    assert.equal(await one('p:0x1000'), 0x48);
    assert.equal(await one('m:0x201000'), 0x48);
    const part = await dc.customRequest('readMemory', { memoryReference: '0xffff0', count: 32 });
    assert.equal(part.body.unreadableBytes, 16);
    const memEvent = dc.waitForEvent('memory');
    const w = await dc.customRequest('writeMemory', {
      memoryReference: 'p:0x5000',
      data: Buffer.from([1, 2, 3]).toString('base64'),
    });
    assert.equal(w.body.bytesWritten, 3);
    await memEvent;
    assert.equal(await one('v:0x5002'), 3);
    await assert.rejects(
      dc.customRequest('readMemory', { memoryReference: 'q:12', count: 1 }),
      /bad memoryReference/,
    );
    const d = await dc.customRequest('disassemble', {
      memoryReference: '0x1000',
      instructionCount: 6,
      resolveSymbols: true,
    });
    const ins = d.body.instructions as DebugProtocol.DisassembledInstruction[];
    assert.equal(ins.length, 6);
    assert.equal(ins[0].address, '0x0000000000001000');
    assert.equal(ins[0].instructionBytes, '48 c7 c0 01 00 00 00');
    assert.match(ins[0].instruction, /mov \$0x1,%rax/);
    assert.match(ins[5].instruction, /syscall/);
    const back = await dc.customRequest('disassemble', {
      memoryReference: '0x101f',
      instructionOffset: -2,
      instructionCount: 3,
    });
    const b = back.body.instructions as DebugProtocol.DisassembledInstruction[];
    assert.deepEqual(
      b.map((i) => i.address),
      ['0x0000000000001015', '0x0000000000001018', '0x000000000000101f'],
    );
    const edge = await dc.customRequest('disassemble', { memoryReference: '0xffffc', instructionCount: 8 });
    assert.equal(edge.body.instructions.length, 8);
    assert.ok(
      (edge.body.instructions as DebugProtocol.DisassembledInstruction[]).some(
        (i) => i.presentationHint === 'invalid',
      ),
    );
  });

  it('serves the custom pvscope requests with hex strings for 64-bit values', async () => {
    await launchToEntry(dc);
    const dt = await dc.customRequest('pvscope/descriptorTables', { vcpu: 0 });
    assert.equal(dt.body.gdt.length, 2);
    assert.equal(dt.body.loaded.cs, 0xe033);
    assert.equal(dt.body.trapTable[0].address, '0x1100');
    const pt = await dc.customRequest('pvscope/pageTable', { vcpu: 0, root: 'kernel' });
    assert.equal(pt.body.level, 4);
    assert.equal(typeof pt.body.mfn, 'string');
    const walk = await dc.customRequest('pvscope/walk', { vcpu: 0, va: '0x1234' });
    assert.equal(walk.body.maddr, '0x201234');
    const ev = await dc.customRequest('pvscope/eventChannels');
    assert.equal(ev.body.ports.length, 2);
    const g = await dc.customRequest('pvscope/grants');
    assert.equal(g.body.entries[0].frame, '0x1234');
    const xs = await dc.customRequest('pvscope/xenstore', {});
    assert.equal(xs.body.tree.path, '/local/domain/1');
    assert.equal(xs.body.watches.length, 1);
    await dc.customRequest('pvscope/consoleInput', { text: 'ls\n' });
    const st = await dc.customRequest('pvscope/status');
    assert.equal(st.body.running, false);
    await assert.rejects(
      dc.customRequest('pvscope/walk', { vcpu: 0, va: 'nope' }),
      /'va' must be an address/,
    );
    await assert.rejects(dc.customRequest('pvscope/pageTable', { vcpu: 7 }), /'vcpu'/);
    await assert.rejects(dc.customRequest('pvscope/nothing'), /unrecognized request 'pvscope\/nothing'/);
  });

  it('answers malformed requests with errors and keeps going', async () => {
    await launchToEntry(dc);
    await assert.rejects(dc.stackTraceRequest({ threadId: 99 }), /unknown threadId/);
    await assert.rejects(dc.stackTraceRequest({} as DebugProtocol.StackTraceArguments), /unknown threadId/);
    await assert.rejects(
      dc.scopesRequest({ frameId: 'x' } as unknown as DebugProtocol.ScopesArguments),
      /unknown frameId/,
    );
    await assert.rejects(
      dc.customRequest('readMemory', { memoryReference: '0x1000' }),
      /missing argument 'count'/,
    );
    await assert.rejects(dc.customRequest('readMemory', { memoryReference: '0x1000', count: -1 }), /'count'/);
    await assert.rejects(dc.customRequest('disassemble', {}), /memoryReference/);
    await assert.rejects(dc.customRequest('setBreakpoints', {}), /source/);
    await assert.rejects(dc.customRequest('evaluate', {}), /expression/);
    await assert.rejects(
      dc.customRequest('writeMemory', { memoryReference: '0x1000', data: '%%%' }),
      /base64/,
    );
    const r = await setIns(dc, { breakpoints: [{ instructionReference: 'garbage' }] });
    assert.equal(r.body.breakpoints[0].verified, false);
    const t = await dc.threadsRequest();
    assert.equal(t.body.threads.length, 1);
  });

  it('survives every request with ill-typed arguments', async () => {
    await launchToEntry(dc);
    const commands = [
      'setBreakpoints',
      'setFunctionBreakpoints',
      'setInstructionBreakpoints',
      'setExceptionBreakpoints',
      'dataBreakpointInfo',
      'setDataBreakpoints',
      'stackTrace',
      'scopes',
      'variables',
      'setVariable',
      'evaluate',
      'next',
      'stepIn',
      'stepOut',
      'readMemory',
      'writeMemory',
      'disassemble',
      'exceptionInfo',
      'pvscope/descriptorTables',
      'pvscope/pageTable',
      'pvscope/walk',
      'pvscope/xenstore',
      'pvscope/consoleInput',
    ];
    const bad: unknown[] = [
      null,
      7,
      'x',
      [1, 2],
      {
        threadId: 'one',
        frameId: {},
        breakpoints: 'no',
        memoryReference: {},
        count: 'many',
        vcpu: -1,
        va: [],
        root: {},
        text: 5,
        path: 9,
        expression: 3,
        filters: 'all',
        source: 4,
        name: null,
        variablesReference: 'r',
      },
    ];
    for (const c of commands) {
      for (const a of bad) {
        try {
          await dc.customRequest(c, a);
        } catch {
          /* an error response is fine */
        }
      }
    }
    const t = await dc.threadsRequest();
    assert.equal(t.body.threads.length, 1);
    const st = await dc.customRequest('pvscope/status');
    assert.equal(typeof st.body.instructionsRetired, 'number');
  });

  it('forwards guest console output and ends on terminate', async () => {
    const outputs: DebugProtocol.OutputEvent[] = [];
    dc.on('output', (e: DebugProtocol.OutputEvent) => outputs.push(e));
    await launchToEntry(dc, { consoleInput: 'hello' });
    await setIns(dc, { breakpoints: [{ instructionReference: '0x1026' }] });
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    assert.ok(outputs.some((e) => e.body.category === 'stdout' && /fake guest console/.test(e.body.output)));
    const scopes = await dc.scopesRequest({ frameId: 0 });
    const xen = await dc.variablesRequest({ variablesReference: scopes.body.scopes[1].variablesReference });
    assert.equal(xen.body.variables.find((v) => v.name === 'consoleInput')?.value, 'hello');
    await Promise.all([dc.terminateRequest(), dc.waitForEvent('terminated')]);
  });

  it('serves sessions over TCP with --server', async () => {
    await dc.stop();
    const env = {
      ...process.env,
      PVSCOPE_TEST_MACHINE_MODULE: join(REPO_ROOT, 'test', 'helpers', 'fake-machine.ts'),
      NODE_OPTIONS: '--require tsx/cjs',
    };
    const server = spawn(process.execPath, [ADAPTER, '--server=0'], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let err = '';
        server.stderr!.on('data', (d: Buffer) => {
          err += d.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
          if (m) resolve(Number(m[1]));
        });
        server.on('exit', () => reject(new Error(`server exited: ${err}`)));
      });
      for (let i = 0; i < 2; i++) {
        const c = new DebugClient('node', ADAPTER, 'pvscope');
        await c.start(port);
        const r = await c.initializeRequest();
        assert.equal(r.body?.supportsConfigurationDoneRequest, true);
        const ev = await launchToEntry(c);
        assert.equal(ev.body.reason, 'entry');
        await c.stop();
      }
    } finally {
      server.kill();
    }
    dc = await startClient({ fake: true });
  });

  it('restarts the guest and stops on entry again', async () => {
    await launchToEntry(dc);
    await setIns(dc, { breakpoints: [{ instructionReference: '0x1026' }] });
    await Promise.all([dc.continueRequest({ threadId: 1 }), dc.waitForEvent('stopped')]);
    assert.equal(await pc(dc), 0x1026n);
    const [, ev] = await Promise.all([
      dc.restartRequest({}),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev.body.reason, 'entry');
    assert.equal(await pc(dc), 0x1000n);
    const [, ev2] = await Promise.all([
      dc.continueRequest({ threadId: 1 }),
      dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
    ]);
    assert.equal(ev2.body.reason, 'instruction breakpoint');
  });
});
