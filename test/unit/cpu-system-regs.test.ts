/**
 * System half of the CPU over the flat-memory mock: SYSCALL/SYSRET,
 * SYSENTER/SYSEXIT, SWAPGS, control/debug registers (paging and long-mode
 * activation), MSRs, I/O permission (IOPL and the TSS bitmap), CLI/STI,
 * and the privileged-instruction exits a Xen PV model relies on.
 */
import { strict as assert } from 'node:assert';
import { systemOps, readMsr, Msr } from '../../engine/cpu/system';
import { Cr0, Cr4, Efer, Flag, Reg, Seg, SegAttr } from '../../engine/cpu/state';
import { PrivOp } from '../../engine/cpu/api';
import { DescOp } from '../../engine/cpu/system-hooks';
import { Fault, MockCpu, PrivExit } from '../helpers/cpu-system-mock';

const TSS = 0x3000;

function expectFault(fn: () => void, vector: number, errorCode: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Fault, `expected a fault, got ${String(e)}`);
    assert.deepEqual([e.vector, e.errorCode], [vector, errorCode]);
    return true;
  });
}

function expectExit(c: MockCpu, fn: () => void, op: number): void {
  c.interceptPrivileged = true;
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PrivExit, `expected a privileged exit, got ${String(e)}`);
    assert.equal(e.op, op);
    return true;
  });
  c.interceptPrivileged = false;
}

/** Flat 32-bit protected mode at `cpl`. */
function prot32(cpl = 0): MockCpu {
  const c = new MockCpu();
  c.state.cr0 = Cr0.PE | Cr0.ET;
  c.setSegmentRaw(Seg.CS, 0x08 | cpl, 0, 0, 0xffffffff, 0x9b | (cpl << 5) | SegAttr.DB | SegAttr.G);
  c.setSegmentRaw(Seg.SS, 0x10 | cpl, 0, 0, 0xffffffff, 0x93 | (cpl << 5) | SegAttr.DB | SegAttr.G);
  c.setSegmentRaw(Seg.TR, 0x28, TSS, 0, 0x67, 0x8b);
  return c;
}

/** 64-bit mode at `cpl` with SCE enabled. */
function long64(cpl = 0): MockCpu {
  const c = new MockCpu();
  const s = c.state;
  s.cr0 = Cr0.PE | Cr0.ET | Cr0.PG;
  s.cr4 = Cr4.PAE;
  s.efer = Efer.LME | Efer.LMA | Efer.SCE;
  c.setSegmentRaw(Seg.CS, 0x08 | cpl, 0, 0, 0xffffffff, 0x9b | (cpl << 5) | SegAttr.L | SegAttr.G);
  c.setSegmentRaw(Seg.SS, 0x10 | cpl, 0, 0, 0xffffffff, 0x93 | (cpl << 5) | SegAttr.DB | SegAttr.G);
  c.setSegmentRaw(Seg.TR, 0x30, TSS, 0, 0x67, 0x8b);
  return c;
}

const cpuOf = (c: MockCpu) => c.asInternals();

describe('cpu-system: SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS (SDM vol. 2)', () => {
  it('SYSCALL from CPL3 64-bit code and SYSRET back (REX.W)', () => {
    const c = long64(3);
    const s = c.state;
    s.starHi = (0x18 << 16) | 0x08; // SYSRET base 0x18, SYSCALL CS 0x08
    s.lstarLo = 0x1000;
    s.lstarHi = 0xffff8000 | 0;
    s.sfmask = Flag.IF | Flag.TF;
    s.ripLo = 0x400123;
    s.ripHi = 0;
    c.rflags = 2 | Flag.IF | Flag.CF | Flag.RF;
    systemOps.syscall(cpuOf(c));
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.CS], 0x08);
    assert.equal(s.segSel[Seg.SS], 0x10);
    assert.ok(s.segAttr[Seg.CS] & SegAttr.L);
    assert.deepEqual([s.ripLo >>> 0, s.ripHi >>> 0], [0x1000, 0xffff8000]);
    assert.equal(c.reg(Reg.RCX), 0x400123);
    assert.equal(c.reg(Reg.R11), 2 | Flag.IF | Flag.CF);
    assert.equal(c.rflags, 2 | Flag.CF);
    // SYSRET to 64-bit code.
    systemOps.sysret(cpuOf(c), 8);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.CS], 0x2b);
    assert.equal(s.segSel[Seg.SS], 0x23);
    assert.ok(s.segAttr[Seg.CS] & SegAttr.L);
    assert.equal(s.ripLo, 0x400123);
    assert.equal(c.rflags, 2 | Flag.IF | Flag.CF);
  });

  it('SYSRET to 32-bit code uses STAR[63:48] | 3 and ECX; non-canonical RCX is #GP(0); CPL3 is privileged', () => {
    const c = long64(0);
    const s = c.state;
    s.starHi = (0x18 << 16) | 0x08;
    c.setReg(Reg.RCX, 0x8048000, 0x1234);
    c.setReg(Reg.R11, 0x202);
    systemOps.sysret(cpuOf(c), 4);
    assert.equal(s.segSel[Seg.CS], 0x1b);
    assert.ok(s.segAttr[Seg.CS] & SegAttr.DB);
    assert.equal(s.segAttr[Seg.CS] & SegAttr.L, 0);
    assert.deepEqual([s.ripLo, s.ripHi], [0x8048000, 0]);
    const d = long64(0);
    d.state.starHi = 0x180008;
    d.setReg(Reg.RCX, 0, 0x00008000);
    expectFault(() => systemOps.sysret(cpuOf(d), 8), 13, 0);
    const u = long64(3);
    expectExit(u, () => systemOps.sysret(cpuOf(u), 8), PrivOp.SYSRET);
  });

  it('SYSCALL is #UD with EFER.SCE clear or outside IA-32e mode; compatibility mode uses CSTAR', () => {
    const c = long64(3);
    c.state.efer &= ~Efer.SCE;
    expectFault(() => systemOps.syscall(cpuOf(c)), 6, -1);
    expectFault(() => systemOps.syscall(cpuOf(prot32(3))), 6, -1);
    const k = long64(3);
    k.setSegmentRaw(Seg.CS, 0x1b, 0, 0, 0xffffffff, 0xfb | SegAttr.DB | SegAttr.G);
    k.state.cstarLo = 0x2000;
    k.state.starHi = 0x00180008;
    k.state.ripLo = 0x8048010;
    systemOps.syscall(cpuOf(k));
    assert.equal(k.state.ripLo, 0x2000);
    assert.equal(k.reg(Reg.RCX), 0x8048010);
  });

  it('SYSENTER/SYSEXIT in 32-bit protected mode; SYSENTER_CS = 0 is #GP(0)', () => {
    const c = prot32(3);
    const s = c.state;
    expectFault(() => systemOps.sysenter(cpuOf(c)), 13, 0);
    s.sysenterCs = 0x60;
    s.sysenterEspLo = 0x9000;
    s.sysenterEipLo = 0xc0001000 | 0;
    c.rflags = 2 | Flag.IF;
    systemOps.sysenter(cpuOf(c));
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.CS], 0x60);
    assert.equal(s.segSel[Seg.SS], 0x68);
    assert.equal(c.reg(Reg.RSP), 0x9000);
    assert.equal(s.ripLo >>> 0, 0xc0001000);
    assert.equal(c.rflags & Flag.IF, 0);
    c.setReg(Reg.RCX, 0xbfff0000);
    c.setReg(Reg.RDX, 0x8048100);
    systemOps.sysexit(cpuOf(c), 4);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.CS], 0x73);
    assert.equal(s.segSel[Seg.SS], 0x7b);
    assert.equal(c.reg(Reg.RSP), 0xbfff0000);
    assert.equal(s.ripLo, 0x8048100);
    expectExit(c, () => systemOps.sysexit(cpuOf(c), 4), PrivOp.SYSEXIT);
  });

  it('SYSENTER in IA-32e mode loads 64-bit RSP/RIP and a 64-bit CS; SYSEXIT REX.W returns to 64-bit code', () => {
    const c = long64(3);
    const s = c.state;
    s.sysenterCs = 0x08;
    s.sysenterEspLo = 0x9000;
    s.sysenterEspHi = 0xffff8000 | 0;
    s.sysenterEipLo = 0x1000;
    s.sysenterEipHi = 0xffff8000 | 0;
    systemOps.sysenter(cpuOf(c));
    assert.ok(s.segAttr[Seg.CS] & SegAttr.L);
    assert.equal(s.gprHi[Reg.RSP] >>> 0, 0xffff8000);
    assert.equal(s.ripHi >>> 0, 0xffff8000);
    c.setReg(Reg.RCX, 0x7000);
    c.setReg(Reg.RDX, 0x401000);
    systemOps.sysexit(cpuOf(c), 8);
    assert.equal(s.segSel[Seg.CS], 0x2b);
    assert.equal(s.segSel[Seg.SS], 0x33);
    assert.ok(s.segAttr[Seg.CS] & SegAttr.L);
  });

  it('SWAPGS exchanges GS.base with KERNEL_GS_BASE; #UD outside 64-bit mode; privileged at CPL3', () => {
    const c = long64(0);
    const s = c.state;
    s.segBaseLo[Seg.GS] = 0x1111;
    s.kernelGsBaseLo = 0x2222;
    s.kernelGsBaseHi = 0xffff8000 | 0;
    systemOps.swapgs(cpuOf(c));
    assert.equal(s.segBaseLo[Seg.GS], 0x2222);
    assert.equal(s.segBaseHi[Seg.GS] >>> 0, 0xffff8000);
    assert.equal(s.kernelGsBaseLo, 0x1111);
    expectFault(() => systemOps.swapgs(cpuOf(prot32(0))), 6, -1);
    const u = long64(3);
    expectFault(() => systemOps.swapgs(cpuOf(u)), 13, 0);
    expectExit(u, () => systemOps.swapgs(cpuOf(u)), PrivOp.SWAPGS);
  });
});

describe('cpu-system: control and debug registers (SDM vol. 3 §2.5)', () => {
  it('enabling PAE, LME and then CR0.PG activates IA-32e mode (EFER.LMA) and flushes the TLB', () => {
    const c = prot32(0);
    const cpu = cpuOf(c);
    const s = c.state;
    systemOps.movToCr(cpu, 4, Cr4.PAE | Cr4.PGE, 0, Reg.RAX);
    assert.equal(s.cr4, Cr4.PAE | Cr4.PGE);
    systemOps.movToCr(cpu, 3, 0x5000, 0, Reg.RAX);
    assert.equal(s.cr3Lo, 0x5000);
    assert.equal(c.localFlushes, 1, 'MOV CR3 flushes non-global entries');
    c.setReg(Reg.RCX, Msr.EFER);
    c.setReg(Reg.RAX, Efer.LME);
    c.setReg(Reg.RDX, 0);
    systemOps.wrmsr(cpu);
    assert.equal(s.efer, Efer.LME);
    const flushes = c.fullFlushes;
    systemOps.movToCr(cpu, 0, s.cr0 | Cr0.PG, 0, Reg.RAX);
    assert.equal(s.efer, Efer.LME | Efer.LMA);
    assert.ok(c.fullFlushes > flushes);
    assert.equal(systemOps.movFromCr(cpu, 0, Reg.RBX) >>> 0, (Cr0.PE | Cr0.ET | Cr0.PG) >>> 0);
    // EFER.LME cannot change while paging is on.
    c.setReg(Reg.RAX, 0);
    expectFault(() => systemOps.wrmsr(cpu), 13, 0);
    // CR4.PAE cannot be cleared in IA-32e mode.
    expectFault(() => systemOps.movToCr(cpu, 4, 0, 0, Reg.RAX), 13, 0);
  });

  it('CR0/CR4 reserved combinations raise #GP(0); invalid CRs raise #UD', () => {
    const c = prot32(0);
    const cpu = cpuOf(c);
    expectFault(() => systemOps.movToCr(cpu, 0, Cr0.PG | Cr0.ET, 0, 0), 13, 0); // PG without PE
    expectFault(() => systemOps.movToCr(cpu, 0, Cr0.PE | Cr0.NW, 0, 0), 13, 0); // NW without CD
    expectFault(() => systemOps.movToCr(cpu, 4, 1 << 25, 0, 0), 13, 0);
    expectFault(() => systemOps.movToCr(cpu, 1, 0, 0, 0), 6, -1);
    expectFault(() => systemOps.movToCr(cpu, 8, 0, 0, 0), 6, -1); // CR8 outside 64-bit mode
    // PG with LME but without PAE.
    c.state.efer = Efer.LME;
    expectFault(() => systemOps.movToCr(cpu, 0, Cr0.PE | Cr0.PG, 0, 0), 13, 0);
    const l = long64(0);
    expectFault(() => systemOps.movToCr(cpuOf(l), 0, Cr0.PE, 0, 0), 13, 0); // clearing PG in 64-bit mode
    expectFault(() => systemOps.movToCr(cpuOf(l), 3, 0x1000, 0x100, 0), 13, 0); // above MAXPHYADDR
    expectFault(() => systemOps.movToCr(cpuOf(l), 8, 0x10, 0, 0), 13, 0);
    systemOps.movToCr(cpuOf(l), 8, 0x7, 0, 0);
    assert.equal(systemOps.movFromCr(cpuOf(l), 8, 0), 7);
  });

  it('MOV CR at CPL1 exits PRIVILEGED with the CR and GPR; without intercept it is #GP(0)', () => {
    const c = prot32(1);
    expectFault(() => systemOps.movToCr(cpuOf(c), 3, 0x1000, 0, Reg.RBX), 13, 0);
    expectExit(c, () => systemOps.movToCr(cpuOf(c), 3, 0x1000, 0, Reg.RBX), PrivOp.MOV_TO_CR);
    assert.deepEqual([c.exitPrivCr, c.exitPrivReg], [3, Reg.RBX]);
    expectExit(c, () => systemOps.movFromCr(cpuOf(c), 0, Reg.RSI), PrivOp.MOV_FROM_CR);
    assert.deepEqual([c.exitPrivCr, c.exitPrivReg], [0, Reg.RSI]);
    expectExit(c, () => systemOps.movToDr(cpuOf(c), 7, 0, 0, Reg.RAX), PrivOp.MOV_TO_DR);
    expectExit(c, () => systemOps.clts(cpuOf(c)), PrivOp.CLTS);
    expectExit(c, () => systemOps.hlt(cpuOf(c)), PrivOp.HLT);
    expectExit(c, () => systemOps.wbinvd(cpuOf(c)), PrivOp.WBINVD);
    expectExit(c, () => systemOps.lmsw(cpuOf(c), 1), PrivOp.LMSW);
    expectExit(c, () => systemOps.invlpg(cpuOf(c), 0x5000, 0), PrivOp.INVLPG);
    assert.equal(c.exitPrivLinLo, 0x5000);
    expectExit(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LGDT, 0x700, 0, 4), PrivOp.LGDT);
    assert.equal(c.exitPrivLinLo, 0x700);
    expectExit(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LTR, 0x28, 0, 2), PrivOp.LTR);
    assert.equal(c.state.cr3Lo, 0, 'nothing changed');
  });

  it('CLTS, LMSW (cannot clear PE), SMSW, HLT and INVLPG at CPL0', () => {
    const c = prot32(0);
    const cpu = cpuOf(c);
    c.state.cr0 |= Cr0.TS;
    systemOps.clts(cpu);
    assert.equal(c.state.cr0 & Cr0.TS, 0);
    systemOps.lmsw(cpu, Cr0.MP | Cr0.TS);
    assert.equal(c.state.cr0 & 0xf, Cr0.PE | Cr0.MP | Cr0.TS);
    assert.equal(systemOps.smsw(cpu) & 0xffff, c.state.cr0 & 0xffff);
    systemOps.hlt(cpu);
    assert.equal(c.state.halted, true);
    systemOps.invlpg(cpu, 0x12345678, 0);
    assert.deepEqual(c.pageFlushes, [0x12345678]);
  });

  it('DR4/DR5 alias DR6/DR7 unless CR4.DE; DR6/DR7 fixed bits', () => {
    const c = prot32(0);
    const cpu = cpuOf(c);
    systemOps.movToDr(cpu, 5, 0x1, 0, 0);
    assert.equal(c.state.dr7, 0x401);
    assert.equal(systemOps.movFromDr(cpu, 4, 0) >>> 0, 0xffff0ff0);
    systemOps.movToDr(cpu, 0, 0xdeadbeef, 0, 0);
    assert.equal(systemOps.movFromDr(cpu, 0, 0) >>> 0, 0xdeadbeef);
    c.state.cr4 = Cr4.DE;
    expectFault(() => systemOps.movFromDr(cpu, 4, 0), 6, -1);
    // DR7.GD: the next DR access raises #DB with DR6.BD.
    c.state.cr4 = 0;
    systemOps.movToDr(cpu, 7, 1 << 13, 0, 0);
    expectFault(() => systemOps.movFromDr(cpu, 0, 0), 1, -1);
    assert.ok(c.state.dr6 & (1 << 13));
  });
});

describe('cpu-system: MSRs (SDM vol. 4)', () => {
  it('RDMSR/WRMSR of FS/GS/KERNEL_GS bases, STAR/LSTAR/SFMASK, SYSENTER, PAT, TSC', () => {
    const c = long64(0);
    const cpu = cpuOf(c);
    const wr = (msr: number, lo: number, hi: number) => {
      c.setReg(Reg.RCX, msr);
      c.setReg(Reg.RAX, lo);
      c.setReg(Reg.RDX, hi);
      systemOps.wrmsr(cpu);
    };
    const rd = (msr: number): [number, number] => {
      c.setReg(Reg.RCX, msr);
      systemOps.rdmsr(cpu);
      return [c.reg(Reg.RAX), c.reg(Reg.RDX)];
    };
    wr(Msr.FS_BASE, 0x1000, 0xffff8000);
    assert.equal(c.state.segBaseLo[Seg.FS], 0x1000);
    assert.deepEqual(rd(Msr.FS_BASE), [0x1000, 0xffff8000]);
    wr(Msr.KERNEL_GS_BASE, 0x2000, 0x7fff);
    assert.deepEqual(rd(Msr.KERNEL_GS_BASE), [0x2000, 0x7fff]);
    expectFault(() => wr(Msr.GS_BASE, 0, 0x8000), 13, 0); // non-canonical
    expectFault(() => wr(Msr.LSTAR, 0, 0x12345678), 13, 0);
    wr(Msr.STAR, 0, 0x00230010);
    assert.equal(c.state.starHi, 0x00230010);
    wr(Msr.PAT, 0x00070406, 0x00070406);
    expectFault(() => wr(Msr.PAT, 0x02, 0), 13, 0); // type 2 is reserved
    expectFault(() => wr(Msr.EFER, 1 << 1, 0), 13, 0);
    expectFault(() => wr(Msr.FMASK, 0, 1), 13, 0);
    expectFault(() => rd(0x12345), 13, 0);
    wr(Msr.SYSENTER_EIP, 0xc0001000, 0);
    assert.deepEqual(rd(Msr.SYSENTER_EIP), [0xc0001000, 0]);
    assert.deepEqual(rd(Msr.MISC_ENABLE), [0x1801, 0]);
    // TSC: instructionsRetired * tscPerInstruction + tscOffset.
    c.state.instructionsRetired = 1000;
    c.tscPerInstruction = 3;
    assert.deepEqual(rd(Msr.TSC), [3000, 0]);
    wr(Msr.TSC, 0, 1);
    assert.deepEqual(rd(Msr.TSC), [0, 1]);
    c.state.instructionsRetired = 1010;
    assert.deepEqual(rd(Msr.TSC), [30, 1]);
    systemOps.rdtscp(cpu);
    assert.deepEqual([c.reg(Reg.RAX), c.reg(Reg.RDX), c.reg(Reg.RCX)], [30, 1, 0]);
  });

  it('RDMSR/WRMSR at CPL3 exit PRIVILEGED; RDTSC only with CR4.TSD', () => {
    const c = long64(3);
    c.setReg(Reg.RCX, Msr.EFER);
    expectExit(c, () => systemOps.rdmsr(cpuOf(c)), PrivOp.RDMSR);
    expectExit(c, () => systemOps.wrmsr(cpuOf(c)), PrivOp.WRMSR);
    systemOps.rdtsc(cpuOf(c));
    c.state.cr4 |= Cr4.TSD;
    expectExit(c, () => systemOps.rdtsc(cpuOf(c)), PrivOp.RDTSC);
    expectFault(() => systemOps.rdtsc(cpuOf(c)), 13, 0);
    assert.equal(readMsr(cpuOf(c), Msr.EFER), Efer.LME | Efer.LMA | Efer.SCE);
  });

  it('CPUID writes EAX..EDX from the policy', () => {
    const c = long64(3);
    c.setReg(Reg.RAX, 0, 0x1234);
    systemOps.cpuid(cpuOf(c));
    const vendor = Buffer.alloc(12);
    vendor.writeUInt32LE(c.reg(Reg.RBX), 0);
    vendor.writeUInt32LE(c.reg(Reg.RDX), 4);
    vendor.writeUInt32LE(c.reg(Reg.RCX), 8);
    assert.equal(vendor.toString('latin1'), 'GenuineIntel');
    assert.equal(c.state.gprHi[Reg.RAX], 0);
  });
});

describe('cpu-system: I/O permission and interrupt flag (SDM vol. 1 §19.5)', () => {
  function withBitmap(cpl: number, iopl: number): MockCpu {
    const c = prot32(cpl);
    c.rflags = 2 | (iopl << 12);
    c.setSegmentRaw(Seg.TR, 0x28, TSS, 0, 0x68 + 0x20, 0x8b);
    c.mem.write16(TSS + 0x66, 0x68);
    // Ports 0x00-0xff: all denied except 0x60 and 0x64.
    for (let i = 0; i < 0x20; i++) c.mem.write8(TSS + 0x68 + i, 0xff);
    c.mem.write8(TSS + 0x68 + 0x0c, 0xff & ~((1 << 0) | (1 << 4)));
    return c;
  }

  it('CPL <= IOPL allows any port; otherwise the TSS bitmap decides', () => {
    const c = withBitmap(3, 3);
    systemOps.ioCheck(cpuOf(c), PrivOp.IN, 0x80, 1);
    const d = withBitmap(3, 0);
    systemOps.ioCheck(cpuOf(d), PrivOp.IN, 0x60, 1);
    systemOps.ioCheck(cpuOf(d), PrivOp.OUT, 0x64, 1);
    expectFault(() => systemOps.ioCheck(cpuOf(d), PrivOp.IN, 0x61, 1), 13, 0);
    expectFault(() => systemOps.ioCheck(cpuOf(d), PrivOp.IN, 0x60, 2), 13, 0); // 0x61 denied
    // Beyond the TSS limit: denied.
    expectFault(() => systemOps.ioCheck(cpuOf(d), PrivOp.IN, 0x3f8, 1), 13, 0);
    // Port from DX (-1).
    d.setReg(Reg.RDX, 0x64);
    systemOps.ioCheck(cpuOf(d), PrivOp.OUTS, -1, 1);
    d.setReg(Reg.RDX, 0x70);
    expectExit(d, () => systemOps.ioCheck(cpuOf(d), PrivOp.OUT, -1, 4), PrivOp.OUT);
    expectExit(d, () => systemOps.ioCheck(cpuOf(d), PrivOp.INS, 0x71, 1), PrivOp.INS);
  });

  it('64-bit TSS bitmap works the same; port I/O goes through ioRead/ioWrite with defaults', () => {
    const c = long64(3);
    c.setSegmentRaw(Seg.TR, 0x30, TSS, 0, 0x68 + 0x10, 0x8b);
    c.mem.write16(TSS + 0x66, 0x68);
    c.mem.write8(TSS + 0x68 + 0x0f, 0x7f); // 0x78-0x7e denied, 0x7f allowed
    systemOps.ioCheck(cpuOf(c), PrivOp.IN, 0x7f, 1);
    systemOps.ioCheck(cpuOf(c), PrivOp.IN, 0x00, 4);
    expectFault(() => systemOps.ioCheck(cpuOf(c), PrivOp.IN, 0x7e, 1), 13, 0);
    assert.equal(systemOps.in(cpuOf(c), 0x70, 2), 0xffff);
    const log: number[][] = [];
    c.ioRead = (port, size) => port + size;
    c.ioWrite = (port, size, v) => log.push([port, size, v]);
    assert.equal(systemOps.in(cpuOf(c), 0x70, 1), 0x71);
    systemOps.out(cpuOf(c), 0x80, 1, 0x1234);
    assert.deepEqual(log, [[0x80, 1, 0x34]]);
  });

  it('CLI/STI: allowed when CPL <= IOPL, else privileged exit / #GP(0)', () => {
    const c = prot32(1);
    c.rflags = 2 | Flag.IF | (1 << 12);
    systemOps.cli(cpuOf(c));
    assert.equal(c.rflags & Flag.IF, 0);
    systemOps.sti(cpuOf(c));
    assert.equal(c.rflags & Flag.IF, Flag.IF);
    c.rflags = 2 | Flag.IF;
    expectFault(() => systemOps.cli(cpuOf(c)), 13, 0);
    expectExit(c, () => systemOps.cli(cpuOf(c)), PrivOp.CLI);
    expectExit(c, () => systemOps.sti(cpuOf(c)), PrivOp.STI);
    assert.equal(c.rflags & Flag.IF, Flag.IF);
  });
});
