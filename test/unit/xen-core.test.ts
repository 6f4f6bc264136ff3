/**
 * Xen model core without the interpreter: the domain builder on Debian's PV
 * GRUB images (layout of brief §1.4), and hypercalls with bad and good
 * arguments (Xen's errno values, never a JS exception), bounce frames.
 * The CPU is a stand-in that walks the real page tables (test/helpers/xen-fake-cpu.ts).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { fetchDebianFile } from '../helpers/debian';
import { FakeCpu } from '../helpers/xen-fake-cpu';
import { loadKernelImage } from '../../engine/image/index';
import { toBuildImage } from '../../engine/machine';
import { buildDomain, type BuildResult } from '../../engine/xen/builder';
import { dispatch, type HypercallEnv } from '../../engine/xen/hypercall';
import { injectTrap, doIret } from '../../engine/xen/traps';
import { getReg, setReg, getRip, setRip } from '../../engine/xen/regs';
import { Reg } from '../../engine/cpu/state';
import { GUEST_MFN_BASE } from '../../engine/xen/layout';
import * as E from '../../engine/xen/errno';
import { Domain } from '../../engine/xen/domain';
import { writeHypercallPage } from '../../engine/xen/hypercall-page';

async function grub(bits: 32 | 64): Promise<BuildResult> {
  const f = await fetchDebianFile(
    'grub-xen-host',
    `/usr/lib/grub-xen/grub-${bits === 64 ? 'x86_64' : 'i386'}-xen.bin`,
  );
  const img = loadKernelImage(new Uint8Array(readFileSync(f)));
  return buildDomain(toBuildImage(img), {
    nrPages: 65536,
    vcpus: 1,
    cmdline: 'test',
    tscPerInstruction: 1,
    createCpu: (m) => new FakeCpu(m),
  });
}

function env(): HypercallEnv {
  return { count: 0, consoleIo: { allowWrites: false, sink: () => {} } };
}

// Scratch guest-virtual area inside GRUB's BSS (mapped read-write by the builder).
const SCRATCH = 0x300000n;

describe('xen-core: domain builder (Debian PV GRUB)', function () {
  this.timeout(300_000);

  it('lays out GRUB x86_64 as libxenguest does (brief §1.4 example)', async () => {
    const b = await grub(64);
    assert.equal(b.p2mPfn, 0x614);
    assert.equal(b.startInfoPfn, 0x694);
    assert.equal(b.storePfn, 0x695);
    assert.equal(b.consolePfn, 0x696);
    assert.equal(b.ptBasePfn, 0x697);
    assert.equal(b.nrPtFrames, 7);
    assert.equal(b.stackPfn, 0x69e);
    assert.equal(b.virtPgtabEnd, 0x800000n);
    const v = b.dom.vcpus[0];
    assert.equal(getRip(v.cpu), 0n);
    assert.equal(getReg(v.cpu, Reg.RSP), 0x69f000n);
    assert.equal(getReg(v.cpu, Reg.RSI), 0x694000n);
    assert.equal(v.cpu.state.segSel[1], 0xe033);
    assert.equal(v.cpu.state.segSel[2], 0xe02b);
    // start_info read through the guest's own page tables.
    const magic = new TextDecoder().decode(v.rdBytes(0x694000n, 14)!);
    assert.equal(magic, 'xen-3.0-x86_64');
    assert.equal(v.rd(0x694000n + 0x20n, 8), 65536n);
    assert.equal(v.rd(0x694000n + 0x58n, 8), 0x697000n);
    assert.equal(v.rd(0x694000n + 0x40n, 4), BigInt(b.storePort));
    assert.notEqual(b.storePort, 0);
    // P2M and M2P agree, and the numbering is not the identity.
    const mfn5 = v.rd(0x614000n + 5n * 8n, 8)!;
    assert.equal(mfn5, BigInt(GUEST_MFN_BASE + 5));
    assert.equal(b.dom.m2p(GUEST_MFN_BASE + 5), 5);
    // Every vcpu_info starts masked; the root is pinned by the MMU.
    assert.equal(v.upcallMask, 1);
    assert.equal(b.dom.mm.pageInfo(GUEST_MFN_BASE + 0x697).pinned, true);
    // Page tables are mapped read-only, the stack read-write.
    assert.equal(v.wr(0x697000n, 8, 0n), false);
    assert.equal(v.wr(0x69e000n, 8, 0n), true);
    // Grant entries 0/1 are seeded for the backends.
    assert.deepEqual(b.dom.gnttab.entry(0), { flags: 1, domid: 0, frame: GUEST_MFN_BASE + 0x696 });
    assert.deepEqual(b.dom.gnttab.entry(1), { flags: 1, domid: 0, frame: GUEST_MFN_BASE + 0x695 });
  });

  it('builds GRUB i386 as a PAE guest with an L3 root and ring-1 selectors', async () => {
    const b = await grub(32);
    const v = b.dom.vcpus[0];
    assert.equal(v.cpu.state.segSel[1], 0xe019);
    assert.equal(v.cpu.state.cpl, 1);
    assert.equal(new TextDecoder().decode(v.rdBytes(BigInt(b.startInfoPfn * 4096), 15)!), 'xen-3.0-x86_32p');
    assert.equal(v.kernelRootMfn, GUEST_MFN_BASE + b.ptBasePfn);
    assert.equal(b.dom.mm.pageInfo(v.kernelRootMfn).type, 'l3');
  });
});

describe('xen-core: hypercalls', function () {
  this.timeout(300_000);
  let b: BuildResult;
  beforeEach(async () => {
    b = await grub(64);
  });

  it('returns -ENOSYS for unknown and unused numbers', () => {
    const v = b.dom.vcpus[0];
    assert.equal(dispatch(v, env(), 11, [0n, 0n, 0n, 0n, 0n, 0n]), -E.ENOSYS);
    assert.equal(dispatch(v, env(), 99, [0n, 0n, 0n, 0n, 0n, 0n]), -E.ENOSYS);
    assert.equal(dispatch(v, env(), 38, [0n, 0n, 0n, 0n, 0n, 0n]), -E.ENOSYS);
    assert.equal(dispatch(v, env(), 36, [0n, 0n, 0n, 0n, 0n, 0n]), -E.EPERM);
  });

  it('xen_version, console_io and vm_assist answer as Xen does for a domU', () => {
    const v = b.dom.vcpus[0];
    const e = env();
    assert.equal(dispatch(v, e, 17, [0n, 0n]), (4 << 16) | 19);
    assert.equal(dispatch(v, e, 17, [6n, SCRATCH]), 0);
    assert.equal(v.rd(SCRATCH + 4n, 4), 0x001e20e0n);
    assert.equal(dispatch(v, e, 17, [5n, SCRATCH]), 0);
    assert.equal(v.rd(SCRATCH, 8), 0xffff800000000000n);
    assert.equal(dispatch(v, e, 17, [9n, SCRATCH]), -E.EPERM);
    assert.equal(dispatch(v, e, 17, [1n, 0xdead000000000n]), -E.EFAULT);
    assert.equal(dispatch(v, e, 18, [0n, 5n, SCRATCH]), -E.EPERM);
    assert.equal(dispatch(v, e, 21, [0n, 9n]), -E.EINVAL);
    assert.equal(dispatch(v, e, 21, [7n, 2n]), -E.ENOSYS);
    assert.equal(dispatch(v, e, 21, [0n, 2n]), 0);
    assert.equal(b.dom.vmAssistOn(2), true);
  });

  it('event channels: allocation, VIRQs, sends, bad ports and pointers', () => {
    const d = b.dom;
    const v = d.vcpus[0];
    const e = env();
    v.wr(SCRATCH, 2, 0x7ff0n);
    v.wr(SCRATCH + 2n, 2, 0n);
    assert.equal(dispatch(v, e, 32, [6n, SCRATCH]), 0);
    const port = Number(v.rd(SCRATCH + 4n, 4));
    assert.equal(port, 3);
    assert.equal(dispatch(v, e, 32, [4n, SCRATCH + 4n]), 0); // send on unbound: dropped
    v.wr(SCRATCH, 4, 0n);
    v.wr(SCRATCH + 4n, 4, 0n);
    assert.equal(dispatch(v, e, 32, [1n, SCRATCH]), 0); // bind VIRQ_TIMER
    const tport = Number(v.rd(SCRATCH + 8n, 4));
    assert.equal(dispatch(v, e, 32, [1n, SCRATCH]), -E.EEXIST);
    v.wr(SCRATCH, 4, 99n);
    assert.equal(dispatch(v, e, 32, [1n, SCRATCH]), -E.EINVAL);
    v.wr(SCRATCH, 4, BigInt(tport));
    assert.equal(dispatch(v, e, 32, [4n, SCRATCH]), -E.EINVAL); // send on a VIRQ port
    v.wr(SCRATCH, 4, 999n);
    assert.equal(dispatch(v, e, 32, [3n, SCRATCH]), -E.EINVAL);
    assert.equal(dispatch(v, e, 32, [4n, 0x40000000n]), -E.EFAULT);
    assert.equal(dispatch(v, e, 32, [11n, SCRATCH]), -E.ENOSYS);
    // The timer raises VIRQ_TIMER: pending bit, selector, upcall_pending.
    d.evtchn.sendVirq(v, 0);
    assert.equal(d.evtchn.isPending(tport), true);
    assert.equal(v.upcallPending, 1);
    // Legacy op 16: {cmd; union}
    v.wr(SCRATCH, 4, 5n);
    v.wr(SCRATCH + 4n, 2, 0x7ff0n);
    v.wr(SCRATCH + 8n, 4, 1n);
    assert.equal(dispatch(v, e, 16, [SCRATCH]), 0);
    assert.equal(v.rd(SCRATCH + 12n, 4), 1n); // port 1 (xenstore): unbound until xenstored binds it
  });

  it('2-level masking: a masked port stays quiet until EVTCHNOP_unmask, which raises the upcall', () => {
    const d = b.dom;
    const v = d.vcpus[0];
    const e = env();
    v.wr(SCRATCH, 4, 0n);
    v.wr(SCRATCH + 4n, 4, 0n);
    assert.equal(dispatch(v, e, 32, [7n, SCRATCH]), 0); // bind_ipi
    const port = Number(v.rd(SCRATCH + 4n, 4));
    const maskOff = d.sharedInfoOff() + 0xa00 + (port >> 3);
    d.mem.write8(maskOff, d.mem.read8(maskOff) | (1 << (port & 7)));
    v.wr(SCRATCH, 4, BigInt(port));
    assert.equal(dispatch(v, e, 32, [4n, SCRATCH]), 0); // send: pending, masked
    assert.equal(d.evtchn.isPending(port), true);
    assert.equal(v.upcallPending, 0);
    assert.equal(dispatch(v, e, 32, [9n, SCRATCH]), 0); // unmask
    assert.equal(d.evtchn.isMasked(port), false);
    assert.equal(v.upcallPending, 1);
    const sel = d.mem.read64Big(v.vcpuInfoOff() + 8);
    assert.equal((sel >> BigInt(Math.floor(port / 64))) & 1n, 1n);
    v.wr(SCRATCH, 4, 4000n);
    assert.equal(dispatch(v, e, 32, [9n, SCRATCH]), -E.EINVAL);
  });

  it('grant tables: versions, setup_table, query_size, copy with Xen status codes', () => {
    const d = b.dom;
    const v = d.vcpus[0];
    const e = env();
    v.wr(SCRATCH, 4, 1n);
    assert.equal(dispatch(v, e, 20, [8n, SCRATCH, 1n]), 0);
    v.wr(SCRATCH, 4, 2n);
    assert.equal(dispatch(v, e, 20, [8n, SCRATCH, 1n]), -E.EACCES);
    assert.equal(dispatch(v, e, 20, [8n, SCRATCH, 2n]), -E.EINVAL);
    // setup_table {dom SELF, nr_frames 2, status, frame_list}
    v.wr(SCRATCH, 2, 0x7ff0n);
    v.wr(SCRATCH + 4n, 4, 2n);
    v.wr(SCRATCH + 16n, 8, SCRATCH + 0x100n);
    assert.equal(dispatch(v, e, 20, [2n, SCRATCH, 1n]), 0);
    assert.equal(v.rd(SCRATCH + 8n, 2), 0n);
    assert.equal(Number(v.rd(SCRATCH + 0x100n, 8)), d.gnttab.frames[0]);
    assert.equal(d.gnttab.frames.length, 2);
    v.wr(SCRATCH + 4n, 4, 65n);
    assert.equal(dispatch(v, e, 20, [2n, SCRATCH, 1n]), 0);
    assert.equal(v.rd(SCRATCH + 8n, 2), 0xffffn); // GNTST_general_error
    // copy gmfn -> gmfn within the domain, then a copy crossing the page end.
    const src = GUEST_MFN_BASE + 0x300;
    const dst = GUEST_MFN_BASE + 0x301;
    d.mem.writeBytes(d.mem.mfnToOffset(src), new Uint8Array([1, 2, 3, 4]));
    const op = SCRATCH + 0x200n;
    v.wr(op, 8, BigInt(src));
    v.wr(op + 8n, 2, 0x7ff0n);
    v.wr(op + 10n, 2, 0n);
    v.wr(op + 16n, 8, BigInt(dst));
    v.wr(op + 24n, 2, 0x7ff0n);
    v.wr(op + 26n, 2, 8n);
    v.wr(op + 32n, 2, 4n);
    v.wr(op + 34n, 2, 0n);
    assert.equal(dispatch(v, e, 20, [5n, op, 1n]), 0);
    assert.equal(v.rd(op + 36n, 2), 0n);
    assert.deepEqual([...d.mem.readBytes(d.mem.mfnToOffset(dst) + 8, 4)], [1, 2, 3, 4]);
    v.wr(op + 26n, 2, 4094n);
    assert.equal(dispatch(v, e, 20, [5n, op, 1n]), 0);
    assert.equal(v.rd(op + 36n, 2), BigInt(0x10000 - 10)); // GNTST_bad_copy_arg
    v.wr(op + 26n, 2, 0n);
    v.wr(op + 16n, 8, 0x10n); // a frame the domain does not own
    assert.equal(dispatch(v, e, 20, [5n, op, 1n]), 0);
    assert.equal(v.rd(op + 36n, 2), BigInt(0x10000 - 9)); // GNTST_bad_page
    assert.equal(dispatch(v, e, 20, [5n, 0x40000000n, 1n]), -E.EFAULT);
  });

  it('grant backend API: dom0 maps the seeded console grant, refuses bad refs', () => {
    const g = b.dom.gnttab;
    const m = g.map(b.dom.domid, 0, true);
    assert.ok('mfn' in m && m.mfn === GUEST_MFN_BASE + b.consolePfn);
    assert.equal(g.entry(0)!.flags & 0x18, 0x18);
    if ('handle' in m) g.unmap(m.handle);
    assert.equal(g.entry(0)!.flags & 0x18, 0);
    assert.deepEqual(g.map(b.dom.domid, 100000, false), { error: -3 });
    assert.deepEqual(g.map(b.dom.domid, 5, false), { error: -8 });
  });

  it('memory_op: reservations, E820 map, machphys mapping, foreign domains', () => {
    const v = b.dom.vcpus[0];
    const e = env();
    v.wr(SCRATCH, 2, 0x7ff0n);
    assert.equal(dispatch(v, e, 12, [4n, SCRATCH]), 65536);
    assert.equal(dispatch(v, e, 12, [3n, SCRATCH]), 65536);
    v.wr(SCRATCH, 2, 5n);
    assert.equal(dispatch(v, e, 12, [4n, SCRATCH]), -E.ESRCH);
    v.wr(SCRATCH, 4, 4n);
    v.wr(SCRATCH + 8n, 8, SCRATCH + 0x40n);
    assert.equal(dispatch(v, e, 12, [9n, SCRATCH]), 0);
    assert.equal(v.rd(SCRATCH, 4), 1n);
    assert.equal(v.rd(SCRATCH + 0x48n, 8), 65536n * 4096n);
    assert.equal(v.rd(SCRATCH + 0x50n, 4), 1n);
    assert.equal(dispatch(v, e, 12, [12n, SCRATCH]), 0);
    assert.equal(v.rd(SCRATCH, 8), 0xffff800000000000n);
    assert.equal(dispatch(v, e, 12, [30n, SCRATCH]), -E.ENOSYS);
  });

  it('multicall writes per-entry results; a bad list is -EFAULT', () => {
    const v = b.dom.vcpus[0];
    const e = env();
    const l = SCRATCH + 0x400n;
    v.wr(l, 8, 17n); // xen_version(0)
    v.wr(l + 16n, 8, 0n);
    v.wr(l + 64n, 8, 21n); // vm_assist(0, 99) -> -EINVAL
    v.wr(l + 64n + 16n, 8, 0n);
    v.wr(l + 64n + 24n, 8, 99n);
    assert.equal(dispatch(v, e, 13, [l, 2n]), 0);
    assert.equal(v.rd(l + 8n, 8), BigInt((4 << 16) | 19));
    assert.equal(BigInt.asIntN(64, v.rd(l + 72n, 8)!), BigInt(-E.EINVAL));
    assert.equal(dispatch(v, e, 13, [0x40000000n, 1n]), -E.EFAULT);
  });

  it('sched_op: shutdown(poweroff) ends the domain; remote_shutdown of self is -EPERM', () => {
    const v = b.dom.vcpus[0];
    const e = env();
    v.wr(SCRATCH, 2, 0x7ff0n);
    v.wr(SCRATCH + 4n, 4, 0n);
    assert.equal(dispatch(v, e, 29, [4n, SCRATCH]), -E.EPERM);
    v.wr(SCRATCH, 4, 7n);
    assert.equal(dispatch(v, e, 29, [2n, SCRATCH]), -E.EINVAL);
    assert.equal(b.dom.finished, false);
    v.wr(SCRATCH, 4, 0n);
    assert.equal(dispatch(v, e, 29, [2n, SCRATCH]), 0);
    assert.equal(b.dom.shutdownReason, 0);
  });

  it("an exception without a trap table crashes the domain with Xen's reason", () => {
    const v = b.dom.vcpus[0];
    assert.equal(injectTrap(v, 14, 2, 0x1234n), false);
    assert.match(b.dom.crashed ?? '', /Unhandled page fault fault\/trap \[#14, ec=0002\]/);
  });

  it('bounces a #PF through the trap table with the 64-bit frame, CR2 in vcpu_info, and iret returns', () => {
    const d = b.dom;
    const v = d.vcpus[0];
    const e = env();
    // trap_info {vector 14, flags 4 (mask events), cs, address 0x1000}, terminator.
    v.wr(SCRATCH, 1, 14n);
    v.wr(SCRATCH + 1n, 1, 4n);
    v.wr(SCRATCH + 8n, 8, 0x1000n);
    v.wr(SCRATCH + 16n, 8, 0n);
    v.wr(SCRATCH + 24n, 8, 0n);
    assert.equal(dispatch(v, e, 0, [SCRATCH]), 0);
    v.upcallMask = 0;
    setRip(v.cpu, 0x2345n);
    setReg(v.cpu, Reg.RSP, 0x200008n);
    setReg(v.cpu, Reg.RCX, 0x11n);
    setReg(v.cpu, Reg.R11, 0x22n);
    assert.equal(injectTrap(v, 14, 0x2, 0xdeadb000n), true);
    assert.equal(getRip(v.cpu), 0x1000n);
    const sp = getReg(v.cpu, Reg.RSP);
    assert.equal(sp, 0x200000n - 64n);
    const w = (i: number) => v.rd(sp + BigInt(i * 8), 8);
    assert.equal(w(0), 0x11n);
    assert.equal(w(1), 0x22n);
    assert.equal(w(2), 0x2n);
    assert.equal(w(3), 0x2345n);
    assert.equal(w(4), 0xe030n); // RPL cleared (kernel), previous mask 0
    assert.equal((w(5)! & 0x200n) !== 0n, true); // IF = !mask
    assert.equal(w(6), 0x200008n);
    assert.equal(w(7), 0xe02bn);
    assert.equal(v.upcallMask, 1);
    assert.equal(d.mem.read32(v.vcpuInfoOff() + 0x10), 0xdeadb000);
    // Guest handler: pops rcx/r11/err, pushes flags + rax/r11/rcx for the iret hypercall.
    const frame = sp + 24n - 32n;
    v.wr(frame, 8, 0x77n); // rax
    v.wr(frame + 8n, 8, 0x22n);
    v.wr(frame + 16n, 8, 0x11n);
    v.wr(frame + 24n, 8, 0n); // flags
    setReg(v.cpu, Reg.RSP, frame);
    doIret(v);
    assert.equal(getRip(v.cpu), 0x2345n);
    assert.equal(getReg(v.cpu, Reg.RSP), 0x200008n);
    assert.equal(getReg(v.cpu, Reg.RAX), 0x77n);
    assert.equal(v.upcallMask, 0);
  });
});

describe('xen-core: hypercall page', () => {
  it('fills 0xCC and one 32-byte stub per slot 0..127 in both forms (brief §3.3)', () => {
    for (const bits of [64, 32] as const) {
      const d = new Domain(1, bits, 256);
      const off = d.mem.mfnToOffset(0x2000);
      writeHypercallPage(d, off);
      const page = d.mem.readBytes(off, 4096);
      const slot = (n: number) => [...page.subarray(n * 32, n * 32 + 32)];
      if (bits === 64) {
        assert.deepEqual(
          slot(17).slice(0, 14),
          [0x51, 0x41, 0x53, 0xb8, 17, 0, 0, 0, 0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3],
        );
        assert.deepEqual(slot(23).slice(0, 11), [0x51, 0x41, 0x53, 0x50, 0xb8, 23, 0, 0, 0, 0x0f, 0x05]);
        assert.deepEqual(slot(127).slice(0, 8), [0x51, 0x41, 0x53, 0xb8, 127, 0, 0, 0]);
        assert.equal(slot(17)[14], 0xcc);
      } else {
        assert.deepEqual(slot(2).slice(0, 8), [0xb8, 2, 0, 0, 0, 0xcd, 0x82, 0xc3]);
        assert.deepEqual(slot(23).slice(0, 8), [0x50, 0xb8, 23, 0, 0, 0, 0xcd, 0x82]);
        assert.equal(slot(2)[8], 0xcc);
      }
    }
  });
});
