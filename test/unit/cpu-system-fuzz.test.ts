/**
 * Untrusted-guest robustness of the CPU's system half: random descriptor
 * tables, TSS contents, stacks, selectors, control-register values and MSR
 * numbers fed to every system operation in every mode. Each call must
 * either complete or raise an architectural exception / privileged exit;
 * no JS error may escape, and every exception must carry a valid vector
 * and a 16-bit (or absent) error code. Seeded, so runs are reproducible.
 */
import { strict as assert } from 'node:assert';
import { systemOps } from '../../engine/cpu/system';
import { Cr0, Cr4, Efer, Reg, Seg, SegAttr } from '../../engine/cpu/state';
import { DescOp } from '../../engine/cpu/system-hooks';
import { Fault, MockCpu, PrivExit } from '../helpers/cpu-system-mock';
import { Cpu } from '../../engine/cpu/cpu';
import { ExitReason } from '../../engine/cpu/api';
import { MachineMemory } from '../../engine/memory/machine-memory';

/** xorshift32 */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const MODES = ['real', 'prot32', 'prot16', 'long64', 'compat', 'v86'] as const;

function randomMachine(r: () => number): MockCpu {
  const c = new MockCpu(16);
  const s = c.state;
  // Random words over the tables (GDT 0x1000, IDT 0x2000, TSS 0x3000, LDT 0x3800) and sparse stack words.
  for (let a = 0x1000; a < 0x4000; a += 4) c.write32(a, r() & 0x1 ? r() : r() & 0x00cf9fff);
  for (let a = 0; a < 64; a++) c.write32((0x4000 + (r() & 0xbffc)) >>> 0, r());
  // Bias some descriptors towards valid-looking ones.
  for (let i = 1; i < 32; i++) {
    if (r() & 1) {
      const access = [0x9a, 0x92, 0xfa, 0xf2, 0x89, 0x82, 0x8c, 0xec, 0x8e, 0xef, 0x96, 0x9e][r() % 12];
      c.write32(0x1000 + i * 8, r() & 0xffff);
      c.write32(0x1004 + i * 8, (access << 8) | ((r() & 0xf) << 20) | (r() & 0xf0000));
    }
  }
  const mode = MODES[r() % MODES.length];
  s.gdtrBaseLo = r() & 7 ? 0x1000 : r() & 0xffff;
  s.gdtrLimit = r() & 0xffff;
  s.idtrBaseLo = r() & 7 ? 0x2000 : r();
  s.idtrLimit = r() & 0xffff;
  const cpl = r() & 3;
  const cs = (r() & 0xf8) | cpl;
  if (mode !== 'real') s.cr0 = Cr0.PE | Cr0.ET;
  if (mode === 'long64' || mode === 'compat') {
    s.cr0 |= Cr0.PG;
    s.cr4 = Cr4.PAE;
    s.efer = Efer.LME | Efer.LMA | (r() & 1 ? Efer.SCE : 0);
  }
  const csAttr =
    0x9b |
    (cpl << 5) |
    (mode === 'long64' ? SegAttr.L : mode === 'prot16' || mode === 'real' ? 0 : SegAttr.DB);
  c.setSegmentRaw(Seg.CS, cs, 0, 0, 0xffffffff, csAttr);
  c.setSegmentRaw(
    Seg.SS,
    (r() & 0xf8) | cpl,
    0,
    0,
    r() & 1 ? 0xffffffff : r() & 0xffff,
    0x93 | (cpl << 5) | (r() & 1 ? SegAttr.DB : 0),
  );
  c.setSegmentRaw(
    Seg.TR,
    0x40,
    r() & 3 ? 0x3000 : r(),
    r() & 3 ? 0 : r(),
    r() & 0xffff,
    r() & 1 ? 0x8b : r() & 0xff,
  );
  c.setSegmentRaw(Seg.LDTR, 0x48, r() & 1 ? 0x3800 : r(), 0, r() & 0xfff, r() & 1 ? 0x82 : SegAttr.UNUSABLE);
  if (mode === 'real') s.cpl = 0;
  c.rflags = (r() & 0x3f7fd5) | 2 | (mode === 'v86' ? 0x20000 : 0);
  for (let i = 0; i < 16; i++) c.setReg(i, r() & 3 ? r() & 0xffff : r(), r() & 3 ? 0 : r());
  c.setReg(Reg.RSP, r() & 3 ? 0x8000 + (r() & 0x7ff0) : r());
  s.starHi = r();
  s.sysenterCs = r() & 0xffff;
  c.interceptPrivileged = (r() & 1) === 1;
  return c;
}

function randomOp(c: MockCpu, r: () => number): void {
  const cpu = c.asInternals();
  const sel = r() & 3 ? r() & 0xff : r() & 0xffff;
  const size = [2, 4, 8][r() % 3];
  switch (r() % 30) {
    case 0:
      return systemOps.loadSegment(cpu, [0, 2, 3, 4, 5][r() % 5], sel);
    case 1:
      systemOps.tryLoadSegment(cpu, r() % 6, sel);
      return;
    case 2:
      return systemOps.farJump(cpu, sel, r(), r() & 1 ? 0 : r(), size);
    case 3:
      return systemOps.farCall(cpu, sel, r(), r() & 1 ? 0 : r(), size);
    case 4:
      return systemOps.farReturn(cpu, size, r() & 0xffff);
    case 5:
      return systemOps.iret(cpu, size);
    case 6:
      return systemOps.deliverInterrupt(
        cpu,
        r() & 0xff,
        r() & 1 ? -1 : r() & 0xffff,
        (r() & 1) === 1,
        r(),
        r(),
      );
    case 7:
      return systemOps.syscall(cpu);
    case 8:
      return systemOps.sysret(cpu, r() & 1 ? 8 : 4);
    case 9:
      return systemOps.sysenter(cpu);
    case 10:
      return systemOps.sysexit(cpu, r() & 1 ? 8 : 4);
    case 11:
      return systemOps.swapgs(cpu);
    case 12:
      return systemOps.movToCr(cpu, r() % 16, r(), r() & 1 ? 0 : r(), r() % 16);
    case 13:
      systemOps.movFromCr(cpu, r() % 16, r() % 16);
      return;
    case 14:
      return systemOps.movToDr(cpu, r() % 16, r(), r() & 1 ? 0 : r(), r() % 16);
    case 15:
      systemOps.movFromDr(cpu, r() % 16, r() % 16);
      return;
    case 16:
      c.setReg(
        Reg.RCX,
        r() & 1 ? [0x10, 0x1b, 0x174, 0x175, 0x176, 0x1a0, 0x277][r() % 7] : 0xc0000080 + (r() % 0x90),
      );
      return r() & 1 ? systemOps.rdmsr(cpu) : systemOps.wrmsr(cpu);
    case 17:
      return systemOps.ioCheck(cpu, 7 + (r() % 4), r() & 1 ? -1 : r() & 0xffff, [1, 2, 4][r() % 3]);
    case 18:
      return systemOps.descriptorTableOp(
        cpu,
        (r() % 6) as DescOp,
        r() & 1 ? r() & 0xffff : r(),
        r() & 1 ? 0 : r(),
        size,
      );
    case 19:
      systemOps.lar(cpu, sel);
      return;
    case 20:
      systemOps.lsl(cpu, sel);
      return;
    case 21:
      systemOps.verr(cpu, sel);
      return;
    case 22:
      systemOps.verw(cpu, sel);
      return;
    case 23:
      return systemOps.lmsw(cpu, r());
    case 24:
      return r() & 1 ? systemOps.cli(cpu) : systemOps.sti(cpu);
    case 25:
      return r() & 1 ? systemOps.rdtscp(cpu) : systemOps.rdpmc(cpu);
    case 26:
      return systemOps.invlpg(cpu, r(), r());
    case 27:
      systemOps.storeLdtr(cpu);
      systemOps.storeTr(cpu);
      return;
    case 28:
      return systemOps.hlt(cpu);
    default:
      return systemOps.cpuid(cpu);
  }
}

describe('cpu-system: random inputs never escape as JS errors', () => {
  it('40000 random system operations over random tables in every mode', function () {
    this.timeout(120000);
    const r = rng(0x5eed);
    let faults = 0;
    let exits = 0;
    let done = 0;
    for (let i = 0; i < 2000; i++) {
      const c = randomMachine(r);
      for (let k = 0; k < 20; k++) {
        try {
          randomOp(c, r);
          done++;
        } catch (e) {
          if (e instanceof Fault) {
            faults++;
            assert.ok(e.vector >= 0 && e.vector < 32, `vector ${e.vector}`);
            assert.ok(
              e.errorCode === -1 || (e.errorCode >= 0 && e.errorCode <= 0xffff),
              `error code ${e.errorCode}`,
            );
          } else if (e instanceof PrivExit) {
            exits++;
          } else {
            throw e;
          }
        }
        assert.ok(c.state.cpl >= 0 && c.state.cpl <= 3);
      }
    }
    // The mix must exercise all three outcomes.
    assert.ok(faults > 1000 && exits > 100 && done > 1000, `faults ${faults} exits ${exits} done ${done}`);
  });
});

describe('cpu-system: random code on the real CPU with random system tables', () => {
  it('300 runs of random bytes at CPL 0-3 in 32-bit and 64-bit modes deliver through the IDT without JS errors', function () {
    this.timeout(120000);
    const r = rng(0xc0ffee);
    const counts = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const mem = new MachineMemory(256);
      const cpu = new Cpu(mem);
      const s = cpu.state;
      const long = (r() & 1) === 1;
      const cpl = r() & 3;
      // Tables: GDT 0x1000 with flat code/data at every DPL, then random entries; IDT 0x2000 with
      // gates to random handlers (mostly valid); TSS 0x3000 with random stacks.
      for (let a = 0x1000; a < 0x4000; a += 4) mem.write32(a, r());
      const put = (sel: number, lo: number, hi: number) => {
        mem.write32(0x1000 + sel, lo);
        mem.write32(0x1004 + sel, hi);
      };
      put(0, 0, 0);
      for (let dpl = 0; dpl < 4; dpl++) {
        put(0x08 + dpl * 0x18, 0xffff, (long ? 0x00af9a00 : 0x00cf9a00) | (dpl << 13));
        put(0x10 + dpl * 0x18, 0xffff, 0x00cf9200 | (dpl << 13));
      }
      for (let v = 0; v < 256; v++) {
        if (r() % 8 === 0) continue;
        const target = 0x10000 + (r() & 0xfff);
        const dpl = r() & 3;
        const csSel = 0x08 + (r() & 3) * 0x18;
        const type = r() & 1 ? 0xe : 0xf;
        const lo = (target & 0xffff) | (csSel << 16);
        const hi = (target & 0xffff0000) | ((0x80 | (dpl << 5) | type) << 8);
        if (long) {
          mem.write32(0x2000 + v * 16, lo);
          mem.write32(0x2004 + v * 16, hi | (r() & 7 ? 0 : r() & 7));
          mem.write32(0x2008 + v * 16, 0);
          mem.write32(0x200c + v * 16, 0);
        } else {
          mem.write32(0x2000 + v * 8, lo);
          mem.write32(0x2004 + v * 8, hi);
        }
      }
      for (let k = 0; k < 0x2000; k++) mem.write8(0x10000 + k, r() & 0xff);
      s.cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
      if (long) {
        // Identity map of the first 8 MiB with 2 MiB pages.
        mem.write32(0x20000, 0x21000 | 7);
        mem.write32(0x21000, 0x22000 | 7);
        for (let p = 0; p < 4; p++) mem.write32(0x22000 + p * 8, (p << 21) | 0x87);
        s.cr3Lo = 0x20000;
        s.cr4 = Cr4.PAE;
        s.cr0 |= Cr0.PG;
        s.efer = Efer.LME | Efer.LMA | Efer.SCE;
      }
      s.gdtrBaseLo = 0x1000;
      s.gdtrLimit = r() & 7 ? 0x2ff : r() & 0xffff;
      s.idtrBaseLo = 0x2000;
      s.idtrLimit = r() & 7 ? 0xfff : r() & 0xffff;
      cpu.setSegmentRaw(
        Seg.CS,
        (0x08 + cpl * 0x18) | cpl,
        0,
        0,
        0xffffffff,
        0x9b | (cpl << 5) | (long ? SegAttr.L : SegAttr.DB) | SegAttr.G,
      );
      for (const seg of [Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS]) {
        cpu.setSegmentRaw(
          seg,
          (0x10 + cpl * 0x18) | cpl,
          0,
          0,
          0xffffffff,
          0x93 | (cpl << 5) | SegAttr.DB | SegAttr.G,
        );
      }
      mem.write32(0x3004, 0x9000);
      mem.write32(0x3008, 0x10);
      cpu.setSegmentRaw(Seg.TR, 0x80, 0x3000, 0, 0x67 + (r() & 0xff), 0x8b);
      s.gprLo[Reg.RSP] = 0x8000;
      s.ripLo = 0x10000;
      cpu.setRflags(2 | (r() & 0x3000));
      cpu.stateChanged();
      cpu.interceptPrivileged = (r() & 1) === 1;
      const res = cpu.run(3000);
      counts.set(res, (counts.get(res) ?? 0) + 1);
      if (res === ExitReason.SHUTDOWN) {
        assert.doesNotMatch(cpu.exitDetail, /delivery failed/, `run ${i}: ${cpu.exitDetail}`);
      }
      assert.ok(s.cpl >= 0 && s.cpl <= 3);
    }
    if (process.env.PVSCOPE_FUZZ_STATS) console.log(counts);
    assert.ok((counts.get(ExitReason.SHUTDOWN) ?? 0) + (counts.get(ExitReason.BUDGET) ?? 0) > 0);
  });
});
