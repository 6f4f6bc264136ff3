/**
 * Data breakpoints by pseudo-physical address (`p:0x...` memory references)
 * on Debian's PV GRUB images: a read watch on the start_info page (the
 * guest finds it at RSI/ESI on entry; GRUB's virtual addresses equal its
 * pseudo-physical ones, virt_base 0) stops when GRUB first reads it, and a
 * write watch on the stack slot below the stack pointer stops at the next
 * push, both after the access with the accessed pseudo-physical address.
 */
import { strict as assert } from 'node:assert';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { fetchDebianFile } from '../helpers/debian';
import { startClient } from '../helpers/dap';

const IMAGES = [
  { bits: 64, file: '/usr/lib/grub-xen/grub-x86_64-xen.bin', si: '$rsi', sp: '$rsp' },
  { bits: 32, file: '/usr/lib/grub-xen/grub-i386-xen.bin', si: '$esi', sp: '$esp' },
];

async function go(dc: DebugClient, req: Promise<unknown>): Promise<DebugProtocol.StoppedEvent> {
  const [, ev] = await Promise.all([
    req,
    dc.waitForEvent('stopped', 120000) as Promise<DebugProtocol.StoppedEvent>,
  ]);
  return ev;
}

async function value(dc: DebugClient, expr: string): Promise<bigint> {
  const r = await dc.evaluateRequest({ expression: expr, context: 'watch', frameId: 0 });
  const m = /^0x[0-9a-f]+/i.exec(r.body.result);
  assert.ok(m, `${expr} = ${r.body.result}`);
  return BigInt(m[0]);
}

async function setWatch(
  dc: DebugClient,
  address: bigint,
  bytes: number,
  accessType: 'read' | 'write',
): Promise<void> {
  const info = await dc.dataBreakpointInfoRequest({
    name: `p:0x${address.toString(16)}`,
    bytes,
    asAddress: true,
  });
  assert.equal(info.body.dataId, `p:0x${address.toString(16)}:${bytes}`, info.body.description);
  const set = await dc.setDataBreakpointsRequest({
    breakpoints: [{ dataId: info.body.dataId!, accessType }],
  });
  assert.equal(set.body.breakpoints[0].verified, true, set.body.breakpoints[0].message);
}

function accessed(ev: DebugProtocol.StoppedEvent, kind: 'read' | 'write'): bigint {
  assert.equal(ev.body.reason, 'data breakpoint', ev.body.description);
  const m = new RegExp(`^${kind} at p:(0x[0-9a-f]+)$`).exec(ev.body.description ?? '');
  assert.ok(m, ev.body.description);
  return BigInt(m[1]);
}

for (const img of IMAGES) {
  describe(`debug adapter: pseudo-physical data breakpoints on Debian PV GRUB ${img.bits}-bit`, function () {
    this.timeout(300000);
    let dc: DebugClient;
    afterEach(async () => {
      await dc?.stop();
    });

    it('stops after GRUB reads start_info, then after a push writes the watched stack slot', async () => {
      const kernel = await fetchDebianFile('grub-xen-host', img.file);
      dc = await startClient({ fake: false });
      await dc.initializeRequest({ adapterID: 'pvscope', linesStartAt1: true, columnsStartAt1: true });
      const initialized = dc.waitForEvent('initialized');
      await dc.launchRequest({ kernel, memory: 64 } as DebugProtocol.LaunchRequestArguments);
      await initialized;
      const entry = await go(dc, dc.configurationDoneRequest());
      assert.equal(entry.body.reason, 'entry');

      // start_info (Xen public/xen.h: struct start_info) is page-aligned guest RAM.
      const si = await value(dc, img.si);
      assert.equal(si & 0xfffn, 0n);
      await setWatch(dc, si, 4096, 'read');
      const read = await go(dc, dc.continueRequest({ threadId: 1 }));
      const a = accessed(read, 'read');
      assert.ok(a >= si && a < si + 4096n, `read at 0x${a.toString(16)} outside start_info`);

      // Replace it by a write watch on the stack slot below the stack pointer.
      const sp = await value(dc, img.sp);
      const slot = sp - BigInt(img.bits / 8);
      await setWatch(dc, slot, img.bits / 8, 'write');
      const write = await go(dc, dc.continueRequest({ threadId: 1 }));
      assert.equal(accessed(write, 'write'), slot);
      assert.equal(await value(dc, img.sp), slot, 'the push completed before the stop');
    });
  });
}
