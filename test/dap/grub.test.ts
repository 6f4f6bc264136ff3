/**
 * The debug adapter driving the real engine on Debian's PV GRUB images
 * (grub-xen-host, x86_64 and i386): entry stop at the image's entry point,
 * instruction stepping, the hypercall and grant filters with decoded
 * arguments, memory through the three address spaces, disassembly at the PC.
 */
import { strict as assert } from 'node:assert';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { fetchDebianFile } from '../helpers/debian';
import { startClient } from '../helpers/dap';

const IMAGES = [
  { bits: 64, file: '/usr/lib/grub-xen/grub-x86_64-xen.bin' },
  { bits: 32, file: '/usr/lib/grub-xen/grub-i386-xen.bin' },
];

async function pc(dc: DebugClient): Promise<bigint> {
  const st = await dc.stackTraceRequest({ threadId: 1 });
  return BigInt(st.body.stackFrames[0].instructionPointerReference!);
}

async function byte(dc: DebugClient, ref: string): Promise<number> {
  const r = await dc.customRequest('readMemory', { memoryReference: ref, count: 1 });
  const b = Buffer.from(r.body.data, 'base64');
  assert.equal(b.length, 1, `no byte readable at ${ref}`);
  return b[0];
}

async function continueToStop(dc: DebugClient): Promise<DebugProtocol.StoppedEvent> {
  const [, ev] = await Promise.all([
    dc.continueRequest({ threadId: 1 }),
    dc.waitForEvent('stopped', 120000) as Promise<DebugProtocol.StoppedEvent>,
  ]);
  return ev;
}

for (const img of IMAGES) {
  describe(`debug adapter on Debian PV GRUB ${img.bits}-bit`, function () {
    this.timeout(300000);
    let dc: DebugClient;
    let kernel: string;
    before(async () => {
      kernel = await fetchDebianFile('grub-xen-host', img.file);
    });
    beforeEach(async () => {
      dc = await startClient({ fake: false });
      await dc.initializeRequest({
        adapterID: 'pvscope',
        linesStartAt1: true,
        columnsStartAt1: true,
        pathFormat: 'path',
      });
      const initialized = dc.waitForEvent('initialized');
      await dc.launchRequest({ kernel, memory: 256 } as DebugProtocol.LaunchRequestArguments);
      await initialized;
    });
    afterEach(async () => {
      await dc.stop();
    });

    async function entry(): Promise<DebugProtocol.StoppedEvent> {
      const [, ev] = await Promise.all([
        dc.configurationDoneRequest(),
        dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
      ]);
      return ev;
    }

    it('stops on entry at the entry point (0) and steps 100 instructions', async () => {
      const ev = await entry();
      assert.equal(ev.body.reason, 'entry');
      assert.equal(await pc(dc), 0n);
      const regs = await dc.scopesRequest({ frameId: 0 });
      const vars = await dc.variablesRequest({ variablesReference: regs.body.scopes[0].variablesReference });
      assert.ok(vars.body.variables.some((v) => v.name === (img.bits === 64 ? 'rip' : 'eip')));
      const before = (await dc.customRequest('pvscope/status')).body.instructionsRetired as number;
      const seen = new Set<bigint>();
      for (let i = 0; i < 100; i++) {
        const [, s] = await Promise.all([
          dc.stepInRequest({ threadId: 1, granularity: 'instruction' }),
          dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
        ]);
        assert.ok(['step', 'exception'].includes(s.body.reason), s.body.reason);
        seen.add(await pc(dc));
      }
      const after = (await dc.customRequest('pvscope/status')).body.instructionsRetired as number;
      assert.ok(after - before >= 90 && after - before <= 100, `retired ${after - before}`);
      assert.ok(seen.size > 10);
    });

    it('stops at the first mmu_update with decoded arguments', async () => {
      await dc.setExceptionBreakpointsRequest({
        filters: [],
        filterOptions: [{ filterId: 'hypercall', condition: 'mmu_update' }],
      });
      await entry();
      const ev = await continueToStop(dc);
      assert.equal(ev.body.reason, 'exception');
      assert.match(
        ev.body.description!,
        /^hypercall mmu_update\(req=0x[0-9a-f]+, count=\d+, done=(NULL|0x[0-9a-f]+), DOMID_SELF\)$/,
      );
      const info = await dc.exceptionInfoRequest({ threadId: 1 });
      assert.equal(info.body.exceptionId, 'hypercall');
      assert.match(info.body.details!.stackTrace!, /name: mmu_update/);
      // The PC is at the hypercall instruction (syscall or int $0x82).
      const d = await dc.customRequest('disassemble', {
        memoryReference: '0x' + (await pc(dc)).toString(16),
        instructionCount: 1,
      });
      assert.match(d.body.instructions[0].instruction, img.bits === 64 ? /syscall/ : /int 0x82|int \$0x82/);
      // Resuming executes it; the result is visible after a step.
      const out: string[] = [];
      dc.on('output', (e: DebugProtocol.OutputEvent) => out.push(e.body.output));
      await Promise.all([
        dc.nextRequest({ threadId: 1, granularity: 'instruction' }),
        dc.waitForEvent('stopped'),
      ]);
      assert.ok(
        out.some((o) => /hypercall mmu_update\(.*\) = -?\d+/.test(o)),
        out.join(''),
      );
    });

    it('stops at grant setup_table with its decoded arguments', async () => {
      await dc.setExceptionBreakpointsRequest({
        filters: [],
        filterOptions: [{ filterId: 'grant', condition: 'setup_table' }],
      });
      await entry();
      const ev = await continueToStop(dc);
      assert.equal(ev.body.reason, 'exception');
      assert.match(ev.body.description!, /grant_table_op\(GNTTABOP_setup_table, ops=0x[0-9a-f]+, count=1\)/);
      const info = await dc.exceptionInfoRequest({ threadId: 1 });
      assert.equal(info.body.exceptionId, 'grant');
    });

    it('stops at an instruction breakpoint on a hot hypercall site only on its third hit', async () => {
      // Find the event-send site: stop on the first EVTCHNOP_send.
      await dc.setExceptionBreakpointsRequest({
        filters: [],
        filterOptions: [{ filterId: 'hypercall', condition: 'EVTCHNOP_send' }],
      });
      await entry();
      await continueToStop(dc);
      const site = await pc(dc);
      await dc.setExceptionBreakpointsRequest({ filters: [] });
      const logs: string[] = [];
      dc.on('output', (e: DebugProtocol.OutputEvent) => logs.push(e.body.output));
      const set = await dc.customRequest('setInstructionBreakpoints', {
        breakpoints: [{ instructionReference: '0x' + site.toString(16), hitCondition: '3' }],
      });
      assert.equal(set.body.breakpoints[0].verified, true);
      const before = (await dc.customRequest('pvscope/status')).body.instructionsRetired as number;
      const ev = await continueToStop(dc);
      assert.equal(ev.body.reason, 'instruction breakpoint');
      assert.deepEqual(ev.body.hitBreakpointIds, [set.body.breakpoints[0].id]);
      assert.equal(await pc(dc), site);
      const after = (await dc.customRequest('pvscope/status')).body.instructionsRetired as number;
      assert.ok(after > before);
    });

    it('runs to the grub> prompt, takes console input and pauses', async () => {
      let text = '';
      dc.on('output', (e: DebugProtocol.OutputEvent) => {
        if (e.body.category === 'stdout') text += e.body.output;
      });
      await entry();
      await dc.continueRequest({ threadId: 1 });
      const waitFor = async (re: RegExp): Promise<void> => {
        for (let i = 0; i < 600 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 100));
        assert.match(text, re);
      };
      await waitFor(/grub> /);
      await dc.customRequest('pvscope/consoleInput', { text: 'echo pvscope-dap-echo\n' });
      await waitFor(/\n\r?pvscope-dap-echo/);
      const st = await dc.customRequest('pvscope/status');
      assert.equal(st.body.running, true);
      const [, ev] = await Promise.all([
        dc.pauseRequest({ threadId: 1 }),
        dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>,
      ]);
      assert.equal(ev.body.reason, 'pause');
      const xs = await dc.evaluateRequest({ expression: 'xenstore-ls', context: 'repl' });
      assert.match(xs.body.result, /console/);
      const evt = await dc.evaluateRequest({ expression: 'info evtchn', context: 'repl' });
      assert.match(evt.body.result, /interdomain/);
    });

    it('reads the same byte through virtual, pseudo-physical and machine addresses, and disassembles at the PC', async () => {
      await entry();
      const here = await pc(dc);
      const v = await byte(dc, 'v:0x' + here.toString(16));
      // PV GRUB is built with virt_base 0: its virtual addresses are its pseudo-physical ones.
      assert.equal(await byte(dc, 'p:0x' + here.toString(16)), v);
      const walk = await dc.customRequest('pvscope/walk', { vcpu: 0, va: '0x' + here.toString(16) });
      assert.ok(walk.body.maddr, JSON.stringify(walk.body));
      assert.equal(walk.body.steps.length, img.bits === 64 ? 4 : 3);
      assert.equal(BigInt(walk.body.paddr), here);
      assert.equal(await byte(dc, 'm:' + walk.body.maddr), v);
      const root = await dc.customRequest('pvscope/pageTable', { vcpu: 0, root: 'kernel' });
      const first = root.body.entries[0];
      assert.equal(BigInt(first.vaStart), 0n);
      if (img.bits === 64) {
        // Xen's read-only M2P at L4 slot 256: the range shows as the canonical hole address.
        const m2p = root.body.entries.find((e: { index: number }) => e.index === 256);
        assert.equal(m2p?.vaStart, '0xffff800000000000');
      }
      const d = await dc.customRequest('disassemble', {
        memoryReference: '0x' + here.toString(16),
        instructionCount: 10,
      });
      const ins = d.body.instructions as DebugProtocol.DisassembledInstruction[];
      assert.equal(ins.length, 10);
      assert.equal(BigInt(ins[0].address), here);
      assert.ok(ins.slice(0, 5).every((i) => i.presentationHint !== 'invalid' && i.instruction.length > 0));
      const scopes = await dc.scopesRequest({ frameId: 0 });
      const regs = await dc.variablesRequest({
        variablesReference: scopes.body.scopes[0].variablesReference,
      });
      const cs = regs.body.variables.find((x) => x.name === 'cs')!;
      const csKids = await dc.variablesRequest({ variablesReference: cs.variablesReference });
      const kid = (n: string) => csKids.body.variables.find((x) => x.name === n)?.value;
      assert.equal(kid('kind'), 'code');
      assert.equal(kid('dpl'), img.bits === 64 ? '3' : '1'); // 64-bit PV kernels run in ring 3, 32-bit ones in ring 1
      assert.equal(kid('L'), img.bits === 64 ? '1' : '0');
      const dt = await dc.customRequest('pvscope/descriptorTables', { vcpu: 0 });
      assert.ok(Array.isArray(dt.body.gdt));
      const ev = await dc.customRequest('pvscope/eventChannels');
      assert.ok(Array.isArray(ev.body.ports));
    });
  });
}
