/**
 * System half of the CPU, in isolation over a flat-memory mock of the core:
 * segment loads and their faults, far CALL/RET through call gates with
 * stack switches (32-bit and 64-bit), IDT delivery and IRET, nested-fault
 * classes, LAR/LSL/VERR/VERW, LLDT/LTR. Expected values follow the Intel
 * SDM (vol. 2 instruction pages, vol. 3 ch. 5-7).
 */
import { strict as assert } from 'node:assert';
import { systemOps, nestedException } from '../../engine/cpu/system';
import { Cr0, Cr4, Efer, Flag, Reg, Seg, SegAttr } from '../../engine/cpu/state';
import { DescOp } from '../../engine/cpu/system-hooks';
import {
  CODE0,
  CODE3,
  DATA0,
  DATA3,
  Fault,
  G32,
  G64,
  MockCpu,
  gate32,
  gate64,
  segDesc,
} from '../helpers/cpu-system-mock';

const GDT = 0x1000;
const IDT = 0x2000;
const TSS = 0x3000;
const LDT = 0x3800;

function put(c: MockCpu, addr: number, words: number[]): void {
  words.forEach((w, i) => c.write32(addr + 4 * i, w));
}

function gdt(c: MockCpu, sel: number, words: number[]): void {
  put(c, GDT + (sel & ~7), words);
}

/** Expects `fn` to raise exception `vector` with `errorCode`, leaving the listed state untouched. */
function expectFault(c: MockCpu, fn: () => void, vector: number, errorCode: number): void {
  const before = snapshot(c);
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Fault, `expected a fault, got ${String(e)}`);
    assert.deepEqual([e.vector, e.errorCode], [vector, errorCode]);
    assert.deepEqual(snapshot(c), before, 'state changed by a faulting operation');
    return;
  }
  assert.fail(`expected fault ${vector}(${errorCode.toString(16)})`);
}

function snapshot(c: MockCpu): unknown {
  const s = c.state;
  return {
    sel: [...s.segSel],
    base: [...s.segBaseLo],
    attr: [...s.segAttr],
    gpr: [...s.gprLo],
    gprHi: [...s.gprHi],
    rip: [s.ripLo, s.ripHi],
    cpl: s.cpl,
    fl: c.rflags,
  };
}

/** 32-bit protected mode, CPL 0, flat segments, TSS with ESP0 = 0x9000. */
function setup32(): MockCpu {
  const c = new MockCpu();
  const s = c.state;
  s.cr0 = Cr0.PE | Cr0.ET | Cr0.NE;
  s.gdtrBaseLo = GDT;
  s.gdtrLimit = 0x7ff;
  s.idtrBaseLo = IDT;
  s.idtrLimit = 0x7ff;
  gdt(c, 0x08, segDesc(0, 0xfffff, CODE0, G32));
  gdt(c, 0x10, segDesc(0, 0xfffff, DATA0 & ~1, G32)); // accessed bit clear
  gdt(c, 0x18, segDesc(0, 0xfffff, CODE3, G32));
  gdt(c, 0x20, segDesc(0, 0xfffff, DATA3, G32));
  gdt(c, 0x28, segDesc(0, 0xfffff, 0x72, G32)); // not present, DPL3 data
  gdt(c, 0x30, segDesc(0, 0xfffff, 0xf0, G32)); // read-only data DPL3
  gdt(c, 0x38, segDesc(0, 0xfffff, 0xf8, G32)); // execute-only code DPL3
  gdt(c, 0x40, segDesc(0, 0xfffff, 0x9e, G32)); // conforming readable code DPL0
  gdt(c, 0x48, segDesc(TSS, 0x68 + 8192 / 8, 0x89, 0)); // 32-bit TSS, available
  gdt(c, 0x50, segDesc(LDT, 0xff, 0x82, 0)); // LDT
  gdt(c, 0x58, gate32(0x08, 0x5000, 0xc, 3, 2)); // call gate DPL3 -> ring 0, 2 params
  gdt(c, 0x60, gate32(0x08, 0x5000, 0xc, 0)); // call gate DPL0
  gdt(c, 0x68, segDesc(0x12340, 0xffff, 0xb2, 0)); // 16-bit data DPL1 at 0x12340
  gdt(c, 0x70, segDesc(0, 0xfffff, 0x9a, G32) /* same as 0x08 */);
  // TSS: ESP0/SS0, ESP1/SS1; I/O map at 0x68.
  c.write32(TSS + 4, 0x9000);
  c.write32(TSS + 8, 0x10);
  c.mem.write16(TSS + 0x66, 0x68);
  c.setSegmentRaw(Seg.CS, 0x08, 0, 0, 0xffffffff, 0x9b | SegAttr.DB | SegAttr.G);
  for (const seg of [Seg.SS, Seg.DS, Seg.ES, Seg.FS, Seg.GS]) {
    c.setSegmentRaw(seg, 0x10, 0, 0, 0xffffffff, 0x93 | SegAttr.DB | SegAttr.G);
  }
  c.setSegmentRaw(Seg.TR, 0x48, TSS, 0, 0x68 + 1024, 0x8b);
  c.setSegmentRaw(Seg.LDTR, 0, 0, 0, 0, SegAttr.UNUSABLE);
  c.setReg(Reg.RSP, 0x8000);
  return c;
}

function toCpl3(c: MockCpu): void {
  c.setSegmentRaw(Seg.CS, 0x1b, 0, 0, 0xffffffff, 0xfb | SegAttr.DB | SegAttr.G);
  for (const seg of [Seg.SS, Seg.DS, Seg.ES])
    c.setSegmentRaw(seg, 0x23, 0, 0, 0xffffffff, 0xf3 | SegAttr.DB | SegAttr.G);
  c.setReg(Reg.RSP, 0x7000);
}

/** IA-32e mode, 64-bit CS at CPL 0; GDT laid out like Linux (0x08 kcode, 0x10 kdata, 0x1b ucode32, 0x23 udata, 0x2b ucode64). */
function setup64(): MockCpu {
  const c = new MockCpu();
  const s = c.state;
  s.cr0 = Cr0.PE | Cr0.ET | Cr0.NE | Cr0.PG;
  s.cr4 = Cr4.PAE;
  s.efer = Efer.LME | Efer.LMA | Efer.SCE;
  s.gdtrBaseLo = GDT;
  s.gdtrLimit = 0x7ff;
  s.idtrBaseLo = IDT;
  s.idtrLimit = 0xfff;
  gdt(c, 0x08, segDesc(0, 0xfffff, CODE0, G64));
  gdt(c, 0x10, segDesc(0, 0xfffff, DATA0, G32));
  gdt(c, 0x18, segDesc(0, 0xfffff, CODE3, G32));
  gdt(c, 0x20, segDesc(0, 0xfffff, DATA3, G32));
  gdt(c, 0x28, segDesc(0, 0xfffff, CODE3, G64));
  const [t0, t1] = segDesc(TSS, 0x67, 0x89, 0);
  gdt(c, 0x30, [t0, t1, 0, 0]);
  gdt(c, 0x40, gate64(0x08, 0x5000, 0, 0xc, 3));
  // 64-bit TSS: RSP0 at +4, IST1 at +0x24.
  c.write32(TSS + 4, 0x9000);
  c.write32(TSS + 0x24, 0xa008);
  c.setSegmentRaw(Seg.CS, 0x08, 0, 0, 0xffffffff, 0x9b | SegAttr.L | SegAttr.G);
  c.setSegmentRaw(Seg.SS, 0x10, 0, 0, 0xffffffff, 0x93 | SegAttr.DB | SegAttr.G);
  for (const seg of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) c.setSegmentRaw(seg, 0, 0, 0, 0, SegAttr.UNUSABLE);
  c.setSegmentRaw(Seg.TR, 0x30, TSS, 0, 0x67, 0x8b);
  c.setReg(Reg.RSP, 0x8000);
  return c;
}

function toCpl3Long(c: MockCpu): void {
  c.setSegmentRaw(Seg.CS, 0x2b, 0, 0, 0xffffffff, 0xfb | SegAttr.L | SegAttr.G);
  c.setSegmentRaw(Seg.SS, 0x23, 0, 0, 0xffffffff, 0xf3 | SegAttr.DB | SegAttr.G);
  c.setReg(Reg.RSP, 0x7000);
}

const cpuOf = (c: MockCpu) => c.asInternals();

describe('cpu-system: segment loads (SDM vol. 2 MOV Sreg)', () => {
  it('loads a DPL0 data segment at CPL0 and sets its Accessed bit in the GDT', () => {
    const c = setup32();
    c.setSegmentRaw(Seg.DS, 0, 0, 0, 0, SegAttr.UNUSABLE);
    systemOps.loadSegment(cpuOf(c), Seg.DS, 0x10);
    assert.equal(c.state.segSel[Seg.DS], 0x10);
    assert.equal(c.state.segLimit[Seg.DS], 0xffffffff);
    assert.equal(c.state.segAttr[Seg.DS] & 0xff, 0x93);
    assert.equal((c.read32(GDT + 0x14) >>> 8) & 0xff, 0x93, 'accessed bit written back');
  });

  it('decodes base and byte-granular limit of a 16-bit segment', () => {
    const c = setup32();
    systemOps.loadSegment(cpuOf(c), Seg.ES, 0x68);
    assert.equal(c.state.segBaseLo[Seg.ES], 0x12340);
    assert.equal(c.state.segLimit[Seg.ES], 0xffff);
    assert.equal(c.state.segAttr[Seg.ES] & SegAttr.DB, 0);
  });

  it('raises #GP(sel) for privilege violations and bad types, #NP/#SS for not-present', () => {
    const c = setup32();
    // RPL 3 > DPL 0.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x13), 13, 0x10);
    // Execute-only code into DS.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x3b), 13, 0x38);
    // Beyond the GDT limit.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x1000), 13, 0x1000);
    // LDT selector while LDTR is null.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x0c), 13, 0x0c);
    // Not present: #NP for DS, #SS for SS.
    toCpl3(c);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x2b), 11, 0x28);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0x2b), 12, 0x28);
    // CPL 3 > DPL 0.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.DS, 0x13), 13, 0x10);
    // SS: read-only data, DPL != CPL, RPL != CPL, null.
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0x33), 13, 0x30);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0x13), 13, 0x10);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0x20), 13, 0x20);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0x3), 13, 0);
  });

  it('accepts conforming readable code in DS from CPL3, and read-only data', () => {
    const c = setup32();
    toCpl3(c);
    systemOps.loadSegment(cpuOf(c), Seg.DS, 0x43);
    assert.equal(c.state.segSel[Seg.DS], 0x43);
    systemOps.loadSegment(cpuOf(c), Seg.FS, 0x33);
    assert.equal(c.state.segSel[Seg.FS], 0x33);
  });

  it('a null selector makes DS unusable; SS may be null only in 64-bit mode at CPL<3 with RPL=CPL', () => {
    const c = setup32();
    systemOps.loadSegment(cpuOf(c), Seg.DS, 3);
    assert.equal(c.state.segSel[Seg.DS], 3);
    assert.ok(c.state.segAttr[Seg.DS] & SegAttr.UNUSABLE);
    expectFault(c, () => systemOps.loadSegment(cpuOf(c), Seg.SS, 0), 13, 0);
    const l = setup64();
    systemOps.loadSegment(cpuOf(l), Seg.SS, 0);
    assert.ok(l.state.segAttr[Seg.SS] & SegAttr.UNUSABLE);
    expectFault(l, () => systemOps.loadSegment(cpuOf(l), Seg.SS, 1), 13, 0);
    toCpl3Long(l);
    expectFault(l, () => systemOps.loadSegment(cpuOf(l), Seg.SS, 3), 13, 0);
  });

  it('64-bit mode: FS takes the descriptor base with a zero upper half', () => {
    const l = setup64();
    gdt(l, 0x50, segDesc(0xabcd0000, 0xfffff, DATA0, G32));
    l.state.segBaseHi[Seg.FS] = 0x1234;
    systemOps.loadSegment(cpuOf(l), Seg.FS, 0x50);
    assert.equal(l.state.segBaseLo[Seg.FS] >>> 0, 0xabcd0000);
    assert.equal(l.state.segBaseHi[Seg.FS], 0);
  });

  it('real mode: base = selector * 16', () => {
    const c = new MockCpu();
    systemOps.loadSegment(cpuOf(c), Seg.DS, 0x1234);
    assert.equal(c.state.segBaseLo[Seg.DS], 0x12340);
  });

  it('tryLoadSegment loads CS for drivers and sets CPL from RPL; LDTR and TR load as LLDT/LTR (busy TSS accepted)', () => {
    const c = setup32();
    assert.equal(systemOps.tryLoadSegment(cpuOf(c), Seg.CS, 0x1b), -1);
    assert.equal(c.state.cpl, 3);
    systemOps.tryLoadSegment(cpuOf(c), Seg.LDTR, 0x50);
    assert.equal(c.state.segBaseLo[Seg.LDTR], LDT);
    systemOps.tryLoadSegment(cpuOf(c), Seg.TR, 0x48);
    systemOps.tryLoadSegment(cpuOf(c), Seg.TR, 0x48);
    assert.equal(c.state.segAttr[Seg.TR] & 0xf, 0xb);
    expectFault(c, () => systemOps.tryLoadSegment(cpuOf(c), Seg.TR, 0x10), 13, 0x10);
  });
});

describe('cpu-system: far transfers and call gates (SDM vol. 2 CALL/JMP/RET, vol. 3 §5.8)', () => {
  it('far JMP to a code segment at the same privilege; non-conforming DPL != CPL is #GP', () => {
    const c = setup32();
    systemOps.farJump(cpuOf(c), 0x70, 0x1234, 0, 4);
    assert.equal(c.state.segSel[Seg.CS], 0x70);
    assert.equal(c.state.ripLo, 0x1234);
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0x1b, 0x1234, 0, 4), 13, 0x18);
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0, 0x1234, 0, 4), 13, 0);
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0x10, 0x1234, 0, 4), 13, 0x10);
    // TSS target (task switch) is not supported: #GP(sel).
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0x48, 0, 0, 4), 13, 0x48);
  });

  it('far CALL through a 32-bit call gate from CPL3 switches to the TSS stack, copies parameters, and RETF returns', () => {
    const c = setup32();
    toCpl3(c);
    c.state.ripLo = 0x4002; // return address (next instruction)
    // Two parameters on the user stack.
    c.setReg(Reg.RSP, 0x6ff8);
    c.write32(0x6ff8, 0x11111111);
    c.write32(0x6ffc, 0x22222222);
    systemOps.farCall(cpuOf(c), 0x5b, 0xdead, 0, 4); // gate offset ignored
    const s = c.state;
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.CS], 0x08);
    assert.equal(s.segSel[Seg.SS], 0x10);
    assert.equal(s.ripLo, 0x5000);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x9000 - 6 * 4);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => c.read32(sp + 4 * i)),
      [0x4002, 0x1b, 0x11111111, 0x22222222, 0x6ff8, 0x23],
    );
    // Kernel loads a DPL0 segment into DS; the return to CPL3 must null it.
    systemOps.loadSegment(cpuOf(c), Seg.DS, 0x10);
    systemOps.farReturn(cpuOf(c), 4, 8);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.CS], 0x1b);
    assert.equal(s.segSel[Seg.SS], 0x23);
    assert.equal(c.reg(Reg.RSP), 0x7000, 'ESP = caller ESP + 8 bytes of parameters');
    assert.equal(s.ripLo, 0x4002);
    assert.equal(s.segSel[Seg.DS], 0);
    assert.ok(s.segAttr[Seg.DS] & SegAttr.UNUSABLE);
    assert.equal(s.segSel[Seg.ES], 0x23, 'DPL3 ES kept');
  });

  it('call gate checks: gate DPL < CPL is #GP(gate), not-present gate is #NP(gate)', () => {
    const c = setup32();
    toCpl3(c);
    expectFault(c, () => systemOps.farCall(cpuOf(c), 0x63, 0, 0, 4), 13, 0x60);
    gdt(c, 0x60, gate32(0x08, 0x5000, 0xc, 3, 0, false));
    expectFault(c, () => systemOps.farCall(cpuOf(c), 0x63, 0, 0, 4), 11, 0x60);
    // JMP through a gate to a more privileged non-conforming segment: #GP(target).
    gdt(c, 0x60, gate32(0x08, 0x5000, 0xc, 3));
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0x63, 0, 0, 4), 13, 0x08);
  });

  it('inner stack checks: bad SS0 in the TSS raises #TS(SS0)', () => {
    const c = setup32();
    toCpl3(c);
    c.write32(TSS + 8, 0x20); // SS0 = DPL3 data
    expectFault(c, () => systemOps.farCall(cpuOf(c), 0x5b, 0, 0, 4), 10, 0x20);
  });

  it('far CALL through a 64-bit call gate pushes SS, RSP, CS, RIP as 8-byte values with a null SS', () => {
    const c = setup64();
    toCpl3Long(c);
    c.state.ripLo = 0x4005;
    c.state.ripHi = 0;
    c.setReg(Reg.RSP, 0x7000);
    systemOps.farCall(cpuOf(c), 0x43, 0, 0, 4);
    const s = c.state;
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.CS], 0x08);
    assert.equal(s.segSel[Seg.SS], 0, 'SS = null selector with RPL = new CPL');
    assert.ok(s.segAttr[Seg.SS] & SegAttr.UNUSABLE);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x9000 - 32);
    assert.deepEqual(
      [0, 8, 16, 24].map((o) => c.read32(sp + o)),
      [0x4005, 0x2b, 0x7000, 0x23],
    );
    assert.deepEqual(
      [4, 12, 20, 28].map((o) => c.read32(sp + o)),
      [0, 0, 0, 0],
    );
    systemOps.farReturn(cpuOf(c), 8, 0);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.CS], 0x2b);
    assert.equal(s.segSel[Seg.SS], 0x23);
    assert.equal(c.reg(Reg.RSP), 0x7000);
    assert.equal(s.ripLo, 0x4005);
  });

  it('RETF to a less privileged CS with a bad SS raises #GP(SS) without changing state', () => {
    const c = setup32();
    c.setReg(Reg.RSP, 0x8000 - 16);
    put(c, 0x8000 - 16, [0x4000, 0x1b, 0x7000, 0x13]); // SS RPL 3 but DPL 0
    expectFault(c, () => systemOps.farReturn(cpuOf(c), 4, 0), 13, 0x10);
    // RPL < CPL on the return CS.
    toCpl3(c);
    c.setReg(Reg.RSP, 0x6000);
    put(c, 0x6000, [0x4000, 0x08]);
    expectFault(c, () => systemOps.farReturn(cpuOf(c), 4, 0), 13, 0x08);
  });
});

describe('cpu-system: interrupt delivery and IRET (SDM vol. 3 ch. 6)', () => {
  it('INT n from CPL3 through a DPL3 trap gate switches to ESP0, keeps IF, and IRET returns to CPL3', () => {
    const c = setup32();
    put(c, IDT + 0x80 * 8, gate32(0x08, 0x6000, 0xf, 3));
    toCpl3(c);
    c.rflags = 2 | Flag.IF | Flag.TF | Flag.CF;
    c.state.ripLo = 0x4002;
    systemOps.deliverInterrupt(cpuOf(c), 0x80, -1, true, 0x4002, 0);
    const s = c.state;
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.SS], 0x10);
    assert.equal(s.ripLo, 0x6000);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x9000 - 20);
    assert.deepEqual(
      [0, 4, 8, 12, 16].map((o) => c.read32(sp + o)),
      [0x4002, 0x1b, 2 | Flag.IF | Flag.TF | Flag.CF, 0x7000, 0x23],
    );
    assert.equal(c.rflags & Flag.IF, Flag.IF, 'trap gate keeps IF');
    assert.equal(c.rflags & Flag.TF, 0, 'TF cleared');
    systemOps.iret(cpuOf(c), 4);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.CS], 0x1b);
    assert.equal(s.segSel[Seg.SS], 0x23);
    assert.equal(c.reg(Reg.RSP), 0x7000);
    assert.equal(s.ripLo, 0x4002);
    assert.equal(c.rflags, 2 | Flag.IF | Flag.TF | Flag.CF);
  });

  it('INT n from CPL3 to a DPL0 gate raises #GP((n << 3) | 2)', () => {
    const c = setup32();
    put(c, IDT + 0x21 * 8, gate32(0x08, 0x6000, 0xe, 0));
    toCpl3(c);
    expectFault(
      c,
      () => systemOps.deliverInterrupt(cpuOf(c), 0x21, -1, true, 0x4002, 0),
      13,
      (0x21 << 3) | 2,
    );
  });

  it('an exception with an error code through an interrupt gate at CPL0 pushes it and clears IF; not-present gate is #NP with EXT', () => {
    const c = setup32();
    put(c, IDT + 13 * 8, gate32(0x08, 0x6100, 0xe, 0));
    c.rflags = 2 | Flag.IF;
    systemOps.deliverInterrupt(cpuOf(c), 13, 0x28, false, 0x4444, 0);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x8000 - 16);
    assert.deepEqual(
      [0, 4, 8, 12].map((o) => c.read32(sp + o)),
      [0x28, 0x4444, 0x08, 2 | Flag.IF],
    );
    assert.equal(c.rflags & Flag.IF, 0);
    assert.equal(c.state.ripLo, 0x6100);
    const d = setup32();
    put(d, IDT + 14 * 8, gate32(0x08, 0x6100, 0xe, 0, 0, false));
    expectFault(d, () => systemOps.deliverInterrupt(cpuOf(d), 14, 2, false, 0, 0), 11, (14 << 3) | 2 | 1);
    // Beyond the IDT limit.
    d.state.idtrLimit = 8 * 14 - 1;
    expectFault(d, () => systemOps.deliverInterrupt(cpuOf(d), 14, 2, false, 0, 0), 13, (14 << 3) | 2 | 1);
  });

  it('task gates are not supported: #GP(IDT error code)', () => {
    const c = setup32();
    put(c, IDT + 8 * 8, gate32(0x48, 0, 0x5, 0));
    expectFault(c, () => systemOps.deliverInterrupt(cpuOf(c), 8, 0, false, 0, 0), 13, (8 << 3) | 2 | 1);
  });

  it('64-bit IDT: IST stack, 16-byte alignment, SS:RSP always pushed, IRETQ back', () => {
    const c = setup64();
    put(c, IDT + 2 * 16, gate64(0x08, 0x6200, 0, 0xe, 0, 1));
    c.setReg(Reg.RSP, 0x8004);
    c.rflags = 2 | Flag.IF;
    systemOps.deliverInterrupt(cpuOf(c), 2, -1, false, 0x4010, 0);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0xa000 - 40, 'IST1 0xa008 aligned down to 0xa000');
    assert.deepEqual(
      [0, 8, 16, 24, 32].map((o) => c.read32(sp + o)),
      [0x4010, 0x08, 2 | Flag.IF, 0x8004, 0x10],
    );
    assert.equal(c.state.segSel[Seg.SS], 0x10, 'same privilege: SS kept');
    systemOps.iret(cpuOf(c), 8);
    assert.equal(c.reg(Reg.RSP), 0x8004);
    assert.equal(c.state.ripLo, 0x4010);
    assert.equal(c.rflags & Flag.IF, Flag.IF);
  });

  it('64-bit IDT from CPL3: RSP0 from the TSS, SS null with RPL 0, error code pushed; IRETQ to CPL3', () => {
    const c = setup64();
    put(c, IDT + 14 * 16, gate64(0x08, 0x6300, 0xffff8000, 0xe, 0));
    toCpl3Long(c);
    c.setReg(Reg.RSP, 0x7008);
    systemOps.deliverInterrupt(cpuOf(c), 14, 6, false, 0x4020, 0);
    const s = c.state;
    assert.equal(s.cpl, 0);
    assert.equal(s.segSel[Seg.SS], 0);
    assert.equal(s.ripLo >>> 0, 0x6300);
    assert.equal(s.ripHi >>> 0, 0xffff8000);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x9000 - 48);
    assert.deepEqual(
      [0, 8, 16, 24, 32, 40].map((o) => c.read32(sp + o)),
      [6, 0x4020, 0x2b, 2, 0x7008, 0x23],
    );
    c.setReg(Reg.RSP, sp + 8); // handler pops the error code
    systemOps.iret(cpuOf(c), 8);
    assert.equal(s.cpl, 3);
    assert.equal(s.segSel[Seg.SS], 0x23);
    assert.equal(c.reg(Reg.RSP), 0x7008);
  });

  it('64-bit IDT: a gate to non-64-bit code is #GP(sel | EXT); 8-byte legacy types are #GP(IDT)', () => {
    const c = setup64();
    put(c, IDT + 5 * 16, gate64(0x18, 0x6300, 0, 0xe, 3));
    expectFault(c, () => systemOps.deliverInterrupt(cpuOf(c), 5, -1, false, 0, 0), 13, 0x18 | 1);
    put(c, IDT + 4 * 16, gate64(0x08, 0x6300, 0, 0x6, 3));
    expectFault(c, () => systemOps.deliverInterrupt(cpuOf(c), 4, -1, true, 0, 0), 13, (4 << 3) | 2);
  });

  it('IRET with NT set (task return) is #GP(0); IRET at CPL3 cannot change IOPL or IF when IOPL < 3', () => {
    const c = setup32();
    c.rflags = 2 | Flag.NT;
    expectFault(c, () => systemOps.iret(cpuOf(c), 4), 13, 0);
    toCpl3(c);
    c.rflags = 2 | Flag.IF;
    c.setReg(Reg.RSP, 0x6000);
    put(c, 0x6000, [0x4000, 0x1b, 2 | Flag.IOPL | Flag.CF]);
    systemOps.iret(cpuOf(c), 4);
    assert.equal(c.rflags, 2 | Flag.IF | Flag.CF);
  });

  it('real mode: INT n through the IVT pushes FLAGS, CS, IP and clears IF', () => {
    const c = new MockCpu();
    c.write32(0x21 * 4, 0x12345678); // CS 0x1234, IP 0x5678
    c.setSegmentRaw(Seg.CS, 0x100, 0x1000, 0, 0xffff, 0x9b);
    c.setSegmentRaw(Seg.SS, 0, 0, 0, 0xffff, 0x93);
    c.setReg(Reg.RSP, 0x800);
    c.rflags = 2 | Flag.IF;
    systemOps.deliverInterrupt(cpuOf(c), 0x21, -1, true, 0x22, 0);
    assert.equal(c.state.segSel[Seg.CS], 0x1234);
    assert.equal(c.state.segBaseLo[Seg.CS], 0x12340);
    assert.equal(c.state.ripLo, 0x5678);
    assert.equal(c.reg(Reg.RSP), 0x7fa);
    assert.deepEqual(
      [c.mem.read16(0x7fa), c.mem.read16(0x7fc), c.mem.read16(0x7fe)],
      [0x22, 0x100, 2 | Flag.IF],
    );
    assert.equal(c.rflags & Flag.IF, 0);
    systemOps.iret(cpuOf(c), 2);
    assert.equal(c.state.segSel[Seg.CS], 0x100);
    assert.equal(c.state.ripLo, 0x22);
    assert.equal(c.rflags & Flag.IF, Flag.IF);
  });

  it('nested faults follow the benign/contributory/page-fault classes (SDM table 6-5)', () => {
    assert.equal(nestedException(13, 13), 8, '#GP during #GP -> #DF');
    assert.equal(nestedException(14, 14), 8, '#PF during #PF -> #DF');
    assert.equal(nestedException(14, 13), 8, '#GP during #PF -> #DF');
    assert.equal(nestedException(13, 14), 14, '#PF during #GP -> #PF');
    assert.equal(nestedException(6, 13), 13, '#GP during benign #UD -> #GP');
    assert.equal(nestedException(3, 14), 14);
    assert.equal(nestedException(8, 13), -1, 'fault during #DF -> triple fault');
    assert.equal(nestedException(8, 14), -1);
    assert.equal(nestedException(0, 11), 8, '#NP during #DE -> #DF');
  });
});

describe('cpu-system: LAR/LSL/VERR/VERW, LLDT/LTR (SDM vol. 2)', () => {
  it('LAR/LSL return access rights and expanded limits, -1 for invalid selectors', () => {
    const c = setup32();
    const cpu = cpuOf(c);
    assert.equal(systemOps.lar(cpu, 0x08) >>> 0, 0x00cf9a00);
    assert.equal(systemOps.lsl(cpu, 0x08) >>> 0, 0xffffffff);
    assert.equal(systemOps.lsl(cpu, 0x68), 0xffff);
    assert.equal(systemOps.lar(cpu, 0x48) >>> 0, 0x00008900, 'TSS descriptors are visible to LAR');
    assert.equal(systemOps.lar(cpu, 0), -1);
    assert.equal(systemOps.lar(cpu, 0x1000), -1);
    assert.equal(systemOps.lsl(cpu, 0x58), -1, 'LSL rejects call gates');
    assert.equal(systemOps.lar(cpu, 0x58) >>> 0, (gate32(0x08, 0x5000, 0xc, 3, 2)[1] & 0x00ffff00) >>> 0);
    toCpl3(c);
    assert.equal(systemOps.lar(cpu, 0x10), -1, 'DPL0 not visible at CPL3');
    assert.notEqual(systemOps.lar(cpu, 0x43), -1, 'conforming code skips the privilege check');
  });

  it('VERR/VERW', () => {
    const c = setup32();
    const cpu = cpuOf(c);
    assert.equal(systemOps.verr(cpu, 0x10), true);
    assert.equal(systemOps.verw(cpu, 0x10), true);
    assert.equal(systemOps.verr(cpu, 0x3b), false, 'execute-only code');
    assert.equal(systemOps.verr(cpu, 0x08), true, 'readable code');
    assert.equal(systemOps.verw(cpu, 0x08), false);
    assert.equal(systemOps.verw(cpu, 0x33), false, 'read-only data');
    assert.equal(systemOps.verr(cpu, 0x48), false, 'system descriptor');
    toCpl3(c);
    assert.equal(systemOps.verr(cpu, 0x10), false);
    assert.equal(systemOps.verw(cpu, 0x23), true);
  });

  it('LTR loads an available TSS and marks it busy; a busy TSS is #GP(sel)', () => {
    const c = setup32();
    c.setSegmentRaw(Seg.TR, 0, 0, 0, 0, SegAttr.UNUSABLE);
    systemOps.descriptorTableOp(cpuOf(c), DescOp.LTR, 0x48, 0, 2);
    assert.equal(c.state.segSel[Seg.TR], 0x48);
    assert.equal(c.state.segAttr[Seg.TR] & 0xf, 0xb);
    assert.equal((c.read32(GDT + 0x4c) >>> 8) & 0xf, 0xb, 'busy bit in the GDT');
    expectFault(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LTR, 0x48, 0, 2), 13, 0x48);
    expectFault(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LTR, 0, 0, 2), 13, 0);
    expectFault(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LTR, 0x10, 0, 2), 13, 0x10);
    assert.equal(systemOps.storeTr(cpuOf(c)), 0x48);
  });

  it('LLDT loads the LDT; LDT selectors then resolve through it', () => {
    const c = setup32();
    systemOps.descriptorTableOp(cpuOf(c), DescOp.LLDT, 0x50, 0, 2);
    assert.equal(c.state.segBaseLo[Seg.LDTR], LDT);
    assert.equal(c.state.segLimit[Seg.LDTR], 0xff);
    put(c, LDT + 8, segDesc(0x5000, 0xfff, DATA0, 0));
    systemOps.loadSegment(cpuOf(c), Seg.ES, 0x0c);
    assert.equal(c.state.segBaseLo[Seg.ES], 0x5000);
    expectFault(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LLDT, 0x10, 0, 2), 13, 0x10);
    systemOps.descriptorTableOp(cpuOf(c), DescOp.LLDT, 0, 0, 2);
    assert.ok(c.state.segAttr[Seg.LDTR] & SegAttr.UNUSABLE);
  });

  it('LGDT/SGDT round trip in 64-bit mode; non-canonical base is #GP(0)', () => {
    const c = setup64();
    c.write32(0x500, 0x12340fff); // limit 0x0fff, base low 16 bits 0x1234
    c.write32(0x504, 0x89abcdef >>> 0);
    c.write32(0x508, 0x0000ffff);
    systemOps.descriptorTableOp(cpuOf(c), DescOp.LGDT, 0x500, 0, 8);
    assert.equal(c.state.gdtrLimit, 0xfff);
    assert.equal(c.state.gdtrBaseLo >>> 0, 0xcdef1234);
    assert.equal(c.state.gdtrBaseHi >>> 0, 0xffff89ab);
    systemOps.descriptorTableOp(cpuOf(c), DescOp.SGDT, 0x600, 0, 8);
    assert.deepEqual(
      [c.read32(0x600), c.read32(0x604), c.read32(0x608) & 0xffff],
      [0x12340fff, 0x89abcdef, 0xffff],
    );
    c.write32(0x508, 0x00007fff);
    expectFault(c, () => systemOps.descriptorTableOp(cpuOf(c), DescOp.LGDT, 0x500, 0, 8), 13, 0);
  });
});

describe('cpu-system: #BP/#OF delivered as software interrupts', () => {
  it('#BP raised at CPL3 through a DPL0 gate is #GP((3 << 3) | 2) without EXT', () => {
    const c = setup32();
    put(c, IDT + 3 * 8, gate32(0x08, 0x6000, 0xe, 0));
    toCpl3(c);
    expectFault(c, () => systemOps.deliverInterrupt(cpuOf(c), 3, -1, false, 0x4001, 0), 13, (3 << 3) | 2);
    put(c, IDT + 3 * 8, gate32(0x08, 0x6000, 0xe, 3));
    systemOps.deliverInterrupt(cpuOf(c), 3, -1, false, 0x4001, 0);
    assert.equal(c.state.ripLo, 0x6000);
    assert.equal(c.read32(c.reg(Reg.RSP)), 0x4001);
  });
});

describe('cpu-system: more transfer forms', () => {
  it('RETF imm16 to the same privilege releases the parameters', () => {
    const c = setup32();
    c.setReg(Reg.RSP, 0x7ff0);
    put(c, 0x7ff0, [0x4321, 0x08]);
    systemOps.farReturn(cpuOf(c), 4, 12);
    assert.equal(c.state.ripLo, 0x4321);
    assert.equal(c.reg(Reg.RSP), 0x7ff0 + 8 + 12);
    assert.equal(c.state.cpl, 0);
  });

  it('a call gate to a conforming segment does not change privilege or stack', () => {
    const c = setup32();
    gdt(c, 0x60, gate32(0x40, 0x5100, 0xc, 3));
    toCpl3(c);
    c.state.ripLo = 0x4444;
    systemOps.farCall(cpuOf(c), 0x63, 0, 0, 4);
    assert.equal(c.state.cpl, 3);
    assert.equal(c.state.segSel[Seg.CS], 0x43, 'conforming: RPL becomes CPL');
    assert.equal(c.state.segSel[Seg.SS], 0x23);
    assert.equal(c.reg(Reg.RSP), 0x7000 - 8);
    assert.deepEqual([c.read32(0x7000 - 8), c.read32(0x7000 - 4)], [0x4444, 0x1b]);
  });

  it('far JMP through a 64-bit call gate at the same privilege', () => {
    const c = setup64();
    gdt(c, 0x50, gate64(0x08, 0x5000, 0xffff8000, 0xc, 0));
    systemOps.farJump(cpuOf(c), 0x50, 0, 0, 4);
    assert.equal(c.state.ripLo, 0x5000);
    assert.equal(c.state.ripHi >>> 0, 0xffff8000);
    // A 32-bit (8-byte) code target through a gate in IA-32e mode is #GP(target).
    gdt(c, 0x50, gate64(0x18, 0x5000, 0, 0xc, 3));
    toCpl3Long(c);
    expectFault(c, () => systemOps.farJump(cpuOf(c), 0x53, 0, 0, 4), 13, 0x18);
  });

  it('16-bit interrupt gates push 16-bit frames', () => {
    const c = setup32();
    put(c, IDT + 0x40 * 8, gate32(0x08, 0x6000, 0x6, 0));
    c.rflags = 2 | Flag.IF;
    systemOps.deliverInterrupt(cpuOf(c), 0x40, -1, true, 0x1234, 0);
    assert.equal(c.reg(Reg.RSP), 0x8000 - 6);
    assert.deepEqual(
      [c.mem.read16(0x8000 - 6), c.mem.read16(0x8000 - 4), c.mem.read16(0x8000 - 2)],
      [0x1234, 0x08, 0x202],
    );
  });

  it('stack overflow in an expand-down stack segment while delivering an exception is #SS(EXT) with state unchanged', () => {
    const c = setup32();
    put(c, IDT + 13 * 8, gate32(0x08, 0x6000, 0xe, 0));
    // Expand-down data segment (type 6) with limit 0x7ff7: valid offsets 0x7ff8..0xffffffff.
    c.setSegmentRaw(Seg.SS, 0x10, 0, 0, 0x7ff7, 0x97 | SegAttr.DB);
    c.setReg(Reg.RSP, 0x8004);
    expectFault(c, () => systemOps.deliverInterrupt(cpuOf(c), 13, 0, false, 0, 0), 12, 1);
  });

  it('interrupt from virtual-8086 mode to ring 0 saves and nulls the data segments; IRET returns to V86', () => {
    const c = setup32();
    put(c, IDT + 0x20 * 8, gate32(0x08, 0x6000, 0xe, 0));
    const v86Attr = 0xf3;
    for (const [seg, sel] of [
      [Seg.ES, 0x1000],
      [Seg.DS, 0x2000],
      [Seg.FS, 0x3000],
      [Seg.GS, 0x4000],
      [Seg.SS, 0x500],
    ]) {
      c.setSegmentRaw(seg, sel, sel << 4, 0, 0xffff, v86Attr);
    }
    c.setSegmentRaw(Seg.CS, 0x600, 0x6000, 0, 0xffff, 0xfb);
    c.state.cpl = 3;
    c.setReg(Reg.RSP, 0xfff0);
    c.rflags = 2 | Flag.VM | Flag.IF | Flag.IOPL;
    systemOps.deliverInterrupt(cpuOf(c), 0x20, -1, false, 0x100, 0);
    const s = c.state;
    assert.equal(s.cpl, 0);
    assert.equal(c.rflags & Flag.VM, 0);
    assert.equal(s.segSel[Seg.DS], 0);
    const sp = c.reg(Reg.RSP);
    assert.equal(sp, 0x9000 - 36);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => c.read32(sp + 4 * i)),
      [0x100, 0x600, 2 | Flag.VM | Flag.IF | Flag.IOPL, 0xfff0, 0x500, 0x1000, 0x2000, 0x3000, 0x4000],
    );
    systemOps.iret(cpuOf(c), 4);
    assert.equal(s.cpl, 3);
    assert.ok(c.rflags & Flag.VM);
    assert.equal(s.segBaseLo[Seg.DS], 0x20000);
    assert.equal(s.segBaseLo[Seg.CS], 0x6000);
    assert.equal(s.ripLo, 0x100);
    assert.equal(c.reg(Reg.RSP), 0xfff0);
  });
});
