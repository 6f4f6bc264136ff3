/**
 * System half of the CPU, called by the execution core through the
 * `SystemOps` seam (system-hooks.ts): segment loads, far JMP/CALL/RET with
 * call gates, interrupt and exception delivery through the IDT, IRET,
 * SYSCALL/SYSRET, SYSENTER/SYSEXIT, SWAPGS, MOV CR/DR, RDMSR/WRMSR, I/O
 * permission and port I/O, descriptor-table instructions, LAR/LSL/VERR/VERW,
 * CLI/STI, CPUID, RDTSC/RDTSCP/RDPMC, HLT, CLTS, LMSW/SMSW, INVLPG,
 * WBINVD/INVD.
 *
 * Sources: Intel SDM vol. 2 (the instruction pages named at each function)
 * and vol. 3 ch. 2 (control registers), ch. 3 (segmentation), ch. 5
 * (protection, call gates), ch. 6 (interrupts and exceptions, including
 * §6.15 exception classes and table 6-5 for double faults), ch. 7 (TSS).
 *
 * Conventions (see system-hooks.ts): the core has set RIP to the next
 * instruction before calling; faults go through `cpu.fault` /
 * `cpu.pageFault` / `cpu.privileged`, which throw the core's sentinel, and
 * every check happens before the first architectural change so a fault
 * leaves registers as they were (stack memory below the stack pointer may
 * have been written, which is not architectural state).
 *
 * Not supported (documented deviations): hardware task switching (a far
 * JMP/CALL to a TSS or task gate, an interrupt through a task gate, and IRET
 * with NT=1 raise #GP as described at each site); virtual-8086 mode
 * extensions (CR4.VME/PVI) are accepted in CR4 but have no effect.
 */
import type { CpuInternals } from './internals';
import { PrivOp } from './api';
import { Cr0, Cr4, Efer, Flag, Reg, Seg, SegAttr, Vector } from './state';
import { DescOp, type SystemOps } from './system-hooks';
import { xinuse } from './fpu/xstate';
import { XCR0_SUPPORTED } from './cpuid';
import {
  Descriptor,
  SysType,
  commitSegment,
  flatCodeAttr,
  flatDataAttr,
  in64BitMode,
  ioPermitted,
  isCanonical,
  lar,
  loadDataSegment,
  loadLdtr,
  loadNull,
  loadTr,
  longModeActive,
  lsl,
  readDescriptor,
  readLin32,
  readTssStack,
  setAccessed,
  tssStack,
  verify,
} from './segmentation';

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Writes a 32-bit result into a GPR (upper half zeroed, as 32-bit writes do in 64-bit mode). */
function setReg32(cpu: CpuInternals, r: number, v: number): void {
  cpu.state.gprLo[r] = v | 0;
  cpu.state.gprHi[r] = 0;
}

function iopl(fl: number): number {
  return (fl >>> 12) & 3;
}

function isProtected(cpu: CpuInternals): boolean {
  return (cpu.state.cr0 & Cr0.PE) !== 0;
}

/**
 * Privilege check shared by the CPL-0-only instructions: outside real mode,
 * CPL != 0 (or virtual-8086 mode) takes the privileged-instruction exit /
 * #GP(0) via `cpu.privileged(op)`.
 */
function requireCpl0(cpu: CpuInternals, op: number): void {
  const s = cpu.state;
  if ((s.cr0 & Cr0.PE) === 0) return;
  if (s.cpl !== 0 || cpu.getRflags() & Flag.VM) cpu.privileged(op);
}

/** Combines two 32-bit halves into a Number (exact below 2^53). */
function toNumber(lo: number, hi: number): number {
  return (hi >>> 0) * 0x100000000 + (lo >>> 0);
}

// ---------------------------------------------------------------------------
// Stack cursor: frames are built (or read) here and the stack pointer is
// committed only when the whole operation has succeeded.
// ---------------------------------------------------------------------------

/** Current cursor (halves; 64-bit only with `stSize` 8). */
let stLo = 0;
let stHi = 0;
/** Stack address size in bytes: 2 (SP), 4 (ESP) or 8 (RSP). */
let stSize = 4;
/** Upper 16 bits of ESP kept when the stack address size is 16. */
let stUpper = 0;
let stBase = 0;
let stLimit = 0;
let stAttr = 0;
/** Access privilege of the stack accesses (true = CPL 3). */
let stUser = false;
/** Error code of #SS on a limit / canonical violation. */
let stErr = 0;

/** Points the cursor at the current SS:RSP. */
function stackCurrent(cpu: CpuInternals): void {
  const s = cpu.state;
  if (in64BitMode(cpu)) {
    stackSet(8, s.gprLo[Reg.RSP], s.gprHi[Reg.RSP], 0, 0, 0, s.cpl === 3, 0);
  } else {
    // SS.B selects ESP or SP (real mode too: B = 0 unless unreal mode set it).
    const size = (s.segAttr[Seg.SS] & SegAttr.DB) !== 0 ? 4 : 2;
    stackSet(
      size,
      s.gprLo[Reg.RSP],
      0,
      s.segBaseLo[Seg.SS],
      s.segLimit[Seg.SS],
      s.segAttr[Seg.SS],
      s.cpl === 3,
      0,
    );
  }
}

function stackSet(
  size: number,
  spLo: number,
  spHi: number,
  base: number,
  limit: number,
  attr: number,
  user: boolean,
  err: number,
): void {
  stSize = size;
  stUpper = spLo & 0xffff0000;
  stLo = size === 2 ? spLo & 0xffff : spLo >>> 0;
  stHi = size === 8 ? spHi | 0 : 0;
  stBase = base >>> 0;
  stLimit = limit >>> 0;
  stAttr = attr;
  stUser = user;
  stErr = err;
}

/** Linear address of `n` bytes at the cursor, with limit/canonical checks (#SS(stErr)). */
let linLo = 0;
let linHi = 0;
function stackLinear(cpu: CpuInternals, n: number): void {
  if (stSize === 8) {
    if (!isCanonical(stLo, stHi)) cpu.fault(Vector.SS, stErr);
    const endLo = stLo + n - 1;
    const endHi = endLo > 0xffffffff ? stHi + 1 : stHi;
    if (!isCanonical(endLo >>> 0, endHi)) cpu.fault(Vector.SS, stErr);
    linLo = stLo;
    linHi = stHi;
    return;
  }
  const off = stLo;
  if ((stAttr & SegAttr.UNUSABLE) === 0 && (stAttr & SegAttr.S) !== 0) {
    if ((stAttr & 0xc) === 4) {
      // Expand-down data segment: valid offsets are limit+1 .. 0xFFFF / 0xFFFFFFFF.
      const upper = stAttr & SegAttr.DB ? 0xffffffff : 0xffff;
      if (off <= stLimit || off + n - 1 > upper) cpu.fault(Vector.SS, stErr);
    } else if (off + n - 1 > stLimit) {
      cpu.fault(Vector.SS, stErr);
    }
  }
  linLo = (stBase + off) >>> 0;
  linHi = 0;
}

function stackDown(n: number): void {
  if (stSize === 8) {
    const lo = stLo - n;
    stLo = lo >>> 0;
    if (lo < 0) stHi = (stHi - 1) | 0;
  } else if (stSize === 4) {
    stLo = (stLo - n) >>> 0;
  } else {
    stLo = (stLo - n) & 0xffff;
  }
}

function stackUp(n: number): void {
  if (stSize === 8) {
    const lo = stLo + n;
    stLo = lo >>> 0;
    if (lo > 0xffffffff) stHi = (stHi + 1) | 0;
  } else if (stSize === 4) {
    stLo = (stLo + n) >>> 0;
  } else {
    stLo = (stLo + n) & 0xffff;
  }
}

/** Pushes a value of `n` bytes (2, 4; for 8 use push64). */
function push(cpu: CpuInternals, v: number, n: number): void {
  if (n === 8) {
    push64(cpu, v, 0);
    return;
  }
  stackDown(n);
  stackLinear(cpu, n);
  if (n === 2) cpu.linWrite16(linLo, linHi, v & 0xffff, stUser);
  else cpu.linWrite32(linLo, linHi, v | 0, stUser);
}

function push64(cpu: CpuInternals, lo: number, hi: number): void {
  stackDown(8);
  stackLinear(cpu, 8);
  cpu.linWrite64(linLo, linHi, lo | 0, hi | 0, stUser);
}

/** Pops `n` bytes (2, 4, 8); returns the low 32 bits, high half in `popHi`. */
let popHi = 0;
function pop(cpu: CpuInternals, n: number): number {
  stackLinear(cpu, n);
  let v: number;
  if (n === 2) {
    v = cpu.linRead16(linLo, linHi, stUser);
    popHi = 0;
  } else if (n === 4) {
    v = cpu.linRead32(linLo, linHi, stUser);
    popHi = 0;
  } else {
    v = cpu.linRead64(linLo, linHi, stUser);
    popHi = cpu.tmpHi | 0;
  }
  stackUp(n);
  return v;
}

/** Commits the cursor into RSP (16-bit stacks keep ESP's upper half). */
function stackCommit(cpu: CpuInternals): void {
  const s = cpu.state;
  if (stSize === 8) {
    s.gprLo[Reg.RSP] = stLo | 0;
    s.gprHi[Reg.RSP] = stHi | 0;
  } else if (stSize === 4) {
    s.gprLo[Reg.RSP] = stLo | 0;
    s.gprHi[Reg.RSP] = 0;
  } else {
    s.gprLo[Reg.RSP] = stUpper | stLo | 0;
  }
}

// ---------------------------------------------------------------------------
// Segment loads
// ---------------------------------------------------------------------------

/** SystemOps.loadSegment: MOV/POP Sreg, LDS/LES/LFS/LGS/LSS. See `loadDataSegment`. */
function loadSegment(cpu: CpuInternals, seg: number, sel: number): void {
  loadDataSegment(cpu, seg, sel);
}

/**
 * SystemOps.tryLoadSegment (CpuApi.loadSegment, for drivers): loads any
 * segment register, CS included (code-segment checks: null -> #GP(0),
 * beyond the table or not code -> #GP(sel), not present -> #NP(sel); CPL :=
 * RPL), LDTR as LLDT does and TR as LTR does (a busy TSS accepted). Faults
 * propagate as the sentinel; the core converts them into (vector << 16) |
 * error code. Returns -1.
 */
function tryLoadSegment(cpu: CpuInternals, seg: number, sel: number): number {
  if (seg === Seg.LDTR || seg === Seg.TR) {
    if (seg === Seg.LDTR) loadLdtr(cpu, sel);
    else loadTr(cpu, sel, true);
    return -1;
  }
  if (seg !== Seg.CS) {
    loadDataSegment(cpu, seg, sel);
    return -1;
  }
  const s = cpu.state;
  sel &= 0xffff;
  if (!isProtected(cpu) || cpu.getRflags() & Flag.VM) {
    loadRealCs(cpu, sel);
    return -1;
  }
  const err = sel & 0xfffc;
  if (err === 0 && (sel & 4) === 0) cpu.fault(Vector.GP, 0);
  const d = dCode;
  if (!readDescriptor(cpu, sel, d, false)) cpu.fault(Vector.GP, err);
  if (!d.code) cpu.fault(Vector.GP, err);
  if (!d.present) cpu.fault(Vector.NP, err);
  setAccessed(cpu, d);
  commitSegment(cpu, Seg.CS, sel, d);
  s.cpl = sel & 3;
  cpu.stateChanged();
  return -1;
}

// ---------------------------------------------------------------------------
// Far transfers
// ---------------------------------------------------------------------------

const dCode = new Descriptor();
const dGate = new Descriptor();
const dStack = new Descriptor();

/** Real-mode / V86 far transfer target: CS = sel, base = sel * 16. */
function loadRealCs(cpu: CpuInternals, sel: number): void {
  const s = cpu.state;
  sel &= 0xffff;
  const v86 = (s.cr0 & Cr0.PE) !== 0;
  const attr = v86 ? 0xb | SegAttr.S | (3 << SegAttr.DPL_SHIFT) | SegAttr.P : s.segAttr[Seg.CS] | SegAttr.P;
  cpu.setSegmentRaw(Seg.CS, sel, sel << 4, 0, v86 ? 0xffff : s.segLimit[Seg.CS], attr);
  s.cpl = v86 ? 3 : 0;
}

/**
 * Checks a code-segment descriptor as the direct target of a far JMP/CALL
 * (SDM vol. 2 "JMP"/"CALL", protected mode): conforming with DPL > CPL,
 * or non-conforming with RPL > CPL or DPL != CPL -> #GP(sel); not present ->
 * #NP(sel); in IA-32e mode L=1 with D=1 -> #GP(sel).
 */
function checkDirectCode(cpu: CpuInternals, sel: number, d: Descriptor): void {
  const cpl = cpu.state.cpl;
  const err = sel & 0xfffc;
  if (d.conforming) {
    if (d.dpl > cpl) cpu.fault(Vector.GP, err);
  } else if ((sel & 3) > cpl || d.dpl !== cpl) {
    cpu.fault(Vector.GP, err);
  }
  if (!d.present) cpu.fault(Vector.NP, err);
  if (longModeActive(cpu) && (d.attr & (SegAttr.L | SegAttr.DB)) === (SegAttr.L | SegAttr.DB)) {
    cpu.fault(Vector.GP, err);
  }
}

/**
 * Checks the new RIP against the target CS: a 64-bit target needs a
 * canonical address, others need offset <= limit and a zero high half;
 * #GP(0) otherwise (SDM vol. 2 "JMP").
 */
function checkTargetRip(cpu: CpuInternals, d: Descriptor, lo: number, hi: number, errCode = 0): void {
  if (longModeActive(cpu) && d.long) {
    if (!isCanonical(lo, hi)) cpu.fault(Vector.GP, errCode);
  } else if ((hi | 0) !== 0 || lo >>> 0 > d.limit >>> 0) {
    cpu.fault(Vector.GP, errCode);
  }
}

/** Loads CS from a checked descriptor with RPL = `cpl` and sets CPL. */
function commitCs(cpu: CpuInternals, sel: number, d: Descriptor, cpl: number): void {
  cpu.setSegmentRaw(Seg.CS, (sel & 0xfffc) | cpl, d.baseLo | 0, 0, d.limit, d.attr);
  cpu.state.cpl = cpl;
}

/** Truncates a branch target to the operand size. */
function truncRip(lo: number, hi: number, opSize: number): void {
  if (opSize === 2) {
    ripLo = lo & 0xffff;
    ripHi = 0;
  } else if (opSize === 4) {
    ripLo = lo >>> 0;
    ripHi = 0;
  } else {
    ripLo = lo >>> 0;
    ripHi = hi | 0;
  }
}
let ripLo = 0;
let ripHi = 0;

/** Decoded call gate (SDM vol. 3 §5.8.3, figure 5-8; §5.8.3.1 figure 5-9 for 64-bit). */
let gateSel = 0;
let gateOffLo = 0;
let gateOffHi = 0;
let gateParams = 0;
let gateSize = 4;

/**
 * Reads and checks a call gate `d` (already read from `sel`) for a far
 * JMP/CALL: DPL < CPL or RPL > DPL -> #GP(sel); not present -> #NP(sel);
 * IA-32e mode: must be a 64-bit call gate (type 0xC, 16 bytes, upper type
 * 0) else #GP(sel). Then the target code segment: null -> #GP(0); beyond the
 * table or not code -> #GP(target); in IA-32e mode not 64-bit code ->
 * #GP(target). Leaves the target in dCode and the gate fields in gate*.
 */
function readCallGate(cpu: CpuInternals, sel: number, d: Descriptor): void {
  const cpl = cpu.state.cpl;
  const err = sel & 0xfffc;
  const lma = longModeActive(cpu);
  if (d.dpl < cpl || (sel & 3) > d.dpl) cpu.fault(Vector.GP, err);
  if (!d.present) cpu.fault(Vector.NP, err);
  if (lma) {
    if (d.type !== SysType.CALL_GATE) cpu.fault(Vector.GP, err);
    // Re-read as 16 bytes.
    if (!readDescriptor(cpu, sel, d, true)) cpu.fault(Vector.GP, err);
    if ((d.w3 >>> 8) & 0x1f) cpu.fault(Vector.GP, err);
    gateOffHi = d.w2 | 0;
    gateSize = 8;
    gateParams = 0;
  } else {
    gateOffHi = 0;
    gateSize = d.type === SysType.CALL_GATE16 ? 2 : 4;
    gateParams = d.w1 & 0x1f;
  }
  gateSel = d.w0 >>> 16;
  gateOffLo = gateSize === 2 ? d.w0 & 0xffff : ((d.w0 & 0xffff) | (d.w1 & 0xffff0000)) >>> 0;
  const tErr = gateSel & 0xfffc;
  if (tErr === 0 && (gateSel & 4) === 0) cpu.fault(Vector.GP, 0);
  if (!readDescriptor(cpu, gateSel, dCode, false)) cpu.fault(Vector.GP, tErr);
  if (!dCode.code || dCode.dpl > cpl) cpu.fault(Vector.GP, tErr);
  if (lma && !dCode.long) cpu.fault(Vector.GP, tErr);
}

/**
 * JMP far (SDM vol. 2 "JMP"): real/V86 mode loads CS:IP directly; protected
 * mode jumps to a code segment (checks in `checkDirectCode`) or through a
 * call gate (no privilege change: target DPL must equal CPL for
 * non-conforming code, else #GP(target)). A TSS or task gate (task switch)
 * raises #GP(sel): task switching is not supported.
 */
function farJump(cpu: CpuInternals, sel: number, offLo: number, offHi: number, opSize: number): void {
  sel &= 0xffff;
  truncRip(offLo, offHi, opSize);
  if (!isProtected(cpu) || cpu.getRflags() & Flag.VM) {
    loadRealCs(cpu, sel);
    cpu.setRip(ripLo, 0);
    return;
  }
  const err = sel & 0xfffc;
  if (err === 0 && (sel & 4) === 0) cpu.fault(Vector.GP, 0);
  const d = dGate;
  if (!readDescriptor(cpu, sel, d, false)) cpu.fault(Vector.GP, err);
  const cpl = cpu.state.cpl;
  if (d.code) {
    checkDirectCode(cpu, sel, d);
    checkTargetRip(cpu, d, ripLo, ripHi);
    setAccessed(cpu, d);
    commitCs(cpu, sel, d, cpl);
    cpu.setRip(ripLo, ripHi);
    cpu.stateChanged();
    return;
  }
  if (!d.system || (d.type !== SysType.CALL_GATE && d.type !== SysType.CALL_GATE16)) {
    // Data segment, LDT, TSS, task gate, interrupt/trap gate.
    cpu.fault(Vector.GP, err);
  }
  readCallGate(cpu, sel, d);
  const t = dCode;
  const tErr = gateSel & 0xfffc;
  if (!t.conforming && t.dpl !== cpl) cpu.fault(Vector.GP, tErr);
  if (!t.present) cpu.fault(Vector.NP, tErr);
  checkTargetRip(cpu, t, gateOffLo, gateOffHi);
  setAccessed(cpu, t);
  commitCs(cpu, gateSel, t, cpl);
  cpu.setRip(gateOffLo, gateOffHi);
  cpu.stateChanged();
}

/**
 * CALL far (SDM vol. 2 "CALL"): pushes CS and the return RIP (`opSize`
 * bytes each) and transfers like `farJump`. Through a call gate to a more
 * privileged non-conforming segment it switches to the inner stack from the
 * TSS (32/16-bit TSS SSn:ESPn with the SDM's #TS/#SS checks; IA-32e: RSPn
 * with a null SS of RPL = new CPL), pushes the caller's SS and RSP, copies
 * `param count` parameters (32/16-bit gates), then CS and RIP with the gate's
 * size. Stack overflow on the new stack raises #SS(new SS); on the current
 * stack #SS(0).
 */
function farCall(cpu: CpuInternals, sel: number, offLo: number, offHi: number, opSize: number): void {
  const s = cpu.state;
  sel &= 0xffff;
  truncRip(offLo, offHi, opSize);
  const retLo = s.ripLo;
  const retHi = s.ripHi;
  const csSel = s.segSel[Seg.CS];
  if (!isProtected(cpu) || cpu.getRflags() & Flag.VM) {
    stackCurrent(cpu);
    push(cpu, csSel, opSize);
    push(cpu, retLo, opSize);
    loadRealCs(cpu, sel);
    stackCommit(cpu);
    cpu.setRip(ripLo, 0);
    return;
  }
  const err = sel & 0xfffc;
  if (err === 0 && (sel & 4) === 0) cpu.fault(Vector.GP, 0);
  const d = dGate;
  if (!readDescriptor(cpu, sel, d, false)) cpu.fault(Vector.GP, err);
  const cpl = s.cpl;
  if (d.code) {
    checkDirectCode(cpu, sel, d);
    checkTargetRip(cpu, d, ripLo, ripHi);
    stackCurrent(cpu);
    if (opSize === 8) {
      push64(cpu, csSel, 0);
      push64(cpu, retLo, retHi);
    } else {
      push(cpu, csSel, opSize);
      push(cpu, retLo, opSize);
    }
    setAccessed(cpu, d);
    commitCs(cpu, sel, d, cpl);
    stackCommit(cpu);
    cpu.setRip(ripLo, ripHi);
    cpu.stateChanged();
    return;
  }
  if (!d.system || (d.type !== SysType.CALL_GATE && d.type !== SysType.CALL_GATE16)) {
    cpu.fault(Vector.GP, err);
  }
  readCallGate(cpu, sel, d);
  const t = dCode;
  const tSel = gateSel;
  const tErr = tSel & 0xfffc;
  if (!t.present) cpu.fault(Vector.NP, tErr);
  const size = gateSize;
  if (!t.conforming && t.dpl < cpl) {
    // More privileged: stack switch (SDM vol. 3 §5.8.5).
    const newCpl = t.dpl;
    const lma = longModeActive(cpu);
    const oldSs = s.segSel[Seg.SS];
    const oldSpLo = s.gprLo[Reg.RSP];
    const oldSpHi = s.gprHi[Reg.RSP];
    readTssStack(cpu, newCpl, 0, 0);
    const newSpLo = tssStack.spLo;
    const newSpHi = tssStack.spHi;
    let newSs = tssStack.ss & 0xffff;
    if (lma) {
      newSs = newCpl;
      if (!isCanonical(newSpLo, newSpHi)) cpu.fault(Vector.SS, 0);
    } else {
      checkNewStack(cpu, newSs, newCpl, 0);
    }
    checkTargetRip(cpu, t, gateOffLo, gateOffHi);
    // Parameters come from the caller's stack (read before switching).
    const nParams = lma ? 0 : gateParams;
    const pSize = size === 2 ? 2 : 4;
    if (lma) {
      stackSet(8, newSpLo, newSpHi, 0, 0, 0, newCpl === 3, 0);
      push64(cpu, oldSs, 0);
      push64(cpu, oldSpLo, oldSpHi);
      push64(cpu, csSel, 0);
      push64(cpu, retLo, retHi);
    } else {
      const ssd = dStack;
      const newSize = ssd.attr & SegAttr.DB ? 4 : 2;
      stackSet(newSize, newSpLo, 0, ssd.baseLo, ssd.limit, ssd.attr, newCpl === 3, newSs & 0xfffc);
      push(cpu, oldSs, pSize);
      push(cpu, oldSpLo, pSize);
      if (nParams) {
        // Copy from the caller's SS:ESP + (n-1)*size down to SS:ESP.
        const oldB = s.segAttr[Seg.SS] & SegAttr.DB ? 4 : 2;
        const oldBase = s.segBaseLo[Seg.SS] >>> 0;
        const oldLimit = s.segLimit[Seg.SS] >>> 0;
        const oldAttr = s.segAttr[Seg.SS];
        const oldUser = cpl === 3;
        for (let i = nParams - 1; i >= 0; i--) {
          const off = oldB === 4 ? (oldSpLo + i * pSize) >>> 0 : (oldSpLo + i * pSize) & 0xffff;
          if ((oldAttr & 0xc) !== 4 && off + pSize - 1 > oldLimit) cpu.fault(Vector.SS, 0);
          const lin = (oldBase + off) >>> 0;
          const v = pSize === 2 ? cpu.linRead16(lin, 0, oldUser) : cpu.linRead32(lin, 0, oldUser);
          push(cpu, v, pSize);
        }
      }
      push(cpu, csSel, pSize);
      push(cpu, retLo, pSize);
    }
    // Commit.
    setAccessed(cpu, t);
    if (lma) {
      loadNull(cpu, Seg.SS, newSs, newCpl);
    } else {
      setAccessed(cpu, dStack);
      commitSegment(cpu, Seg.SS, newSs, dStack);
    }
    commitCs(cpu, tSel, t, newCpl);
    stackCommit(cpu);
    cpu.setRip(gateOffLo, gateOffHi);
    cpu.stateChanged();
    return;
  }
  // Same privilege through the gate.
  checkTargetRip(cpu, t, gateOffLo, gateOffHi);
  stackCurrent(cpu);
  if (size === 8) {
    push64(cpu, csSel, 0);
    push64(cpu, retLo, retHi);
  } else {
    push(cpu, csSel, size);
    push(cpu, retLo, size);
  }
  setAccessed(cpu, t);
  commitCs(cpu, tSel, t, cpl);
  stackCommit(cpu);
  cpu.setRip(gateOffLo, gateOffHi);
  cpu.stateChanged();
}

/**
 * Checks the inner stack segment from the TSS for a privilege change to
 * `newCpl` (SDM vol. 3 §5.8.5 and vol. 2 "CALL"/"INT n"): null -> #TS(ext);
 * beyond the table -> #TS(SS); RPL != newCpl, DPL != newCpl or not writable
 * data -> #TS(SS); not present -> #SS(SS). Leaves the descriptor in dStack.
 */
function checkNewStack(cpu: CpuInternals, ss: number, newCpl: number, ext: number): void {
  const err = (ss & 0xfffc) | ext;
  if ((ss & 0xfffc) === 0 && (ss & 4) === 0) cpu.fault(Vector.TS, ext);
  if (!readDescriptor(cpu, ss, dStack, false)) cpu.fault(Vector.TS, err);
  if ((ss & 3) !== newCpl || dStack.dpl !== newCpl || !dStack.writable) cpu.fault(Vector.TS, err);
  if (!dStack.present) cpu.fault(Vector.SS, err);
}

/**
 * After a return to an outer privilege level: ES, DS, FS, GS holding a
 * data or non-conforming code segment with DPL < new CPL are loaded with a
 * null selector (SDM vol. 2 "RET"/"IRET"). Null registers stay as they are.
 */
function nullOuterDataSegments(cpu: CpuInternals, newCpl: number): void {
  const s = cpu.state;
  for (const seg of DATA_SEGS) {
    const a = s.segAttr[seg];
    if (a & SegAttr.UNUSABLE || (s.segSel[seg] & 0xfffc) === 0) continue;
    const conformingCode = (a & (SegAttr.S | 0xc)) === (SegAttr.S | 0xc);
    const dpl = (a >>> SegAttr.DPL_SHIFT) & 3;
    if (!conformingCode && dpl < newCpl) loadNull(cpu, seg, 0);
  }
}
const DATA_SEGS = [Seg.ES, Seg.DS, Seg.FS, Seg.GS];

/**
 * Checks a popped return CS for RET far / IRET (SDM vol. 2 "RET", "IRET"):
 * null -> #GP(0); beyond the table or not code -> #GP(sel); RPL < CPL ->
 * #GP(sel); conforming with DPL > RPL, or non-conforming with DPL != RPL
 * -> #GP(sel); not present -> #NP(sel). IA-32e mode: L=1 with D=1 ->
 * #GP(sel). Leaves the descriptor in dCode.
 */
function checkReturnCs(cpu: CpuInternals, sel: number): void {
  const err = sel & 0xfffc;
  if (err === 0 && (sel & 4) === 0) cpu.fault(Vector.GP, 0);
  const d = dCode;
  if (!readDescriptor(cpu, sel, d, false)) cpu.fault(Vector.GP, err);
  if (!d.code) cpu.fault(Vector.GP, err);
  const rpl = sel & 3;
  if (rpl < cpu.state.cpl) cpu.fault(Vector.GP, err);
  if (d.conforming ? d.dpl > rpl : d.dpl !== rpl) cpu.fault(Vector.GP, err);
  if (!d.present) cpu.fault(Vector.NP, err);
  if (longModeActive(cpu) && (d.attr & (SegAttr.L | SegAttr.DB)) === (SegAttr.L | SegAttr.DB)) {
    cpu.fault(Vector.GP, err);
  }
}

/**
 * Checks a popped SS for a return to outer privilege `rpl` (SDM vol. 2
 * "RET"/"IRET"): null -> #GP(0) unless returning to 64-bit code at RPL < 3
 * (IA-32e), where a null SS is loaded; beyond the table, RPL != rpl,
 * DPL != rpl or not writable data -> #GP(SS); not present -> #SS(SS).
 * @returns true when SS will be null (descriptor not read).
 */
function checkReturnSs(cpu: CpuInternals, ss: number, rpl: number, to64: boolean): boolean {
  const err = ss & 0xfffc;
  if (err === 0 && (ss & 4) === 0) {
    if (to64 && rpl !== 3 && (ss & 3) === rpl) return true;
    cpu.fault(Vector.GP, 0);
  }
  if (!readDescriptor(cpu, ss, dStack, false)) cpu.fault(Vector.GP, err);
  if ((ss & 3) !== rpl || dStack.dpl !== rpl || !dStack.writable) cpu.fault(Vector.GP, err);
  if (!dStack.present) cpu.fault(Vector.SS, err);
  return false;
}

/**
 * RET far [imm16] (SDM vol. 2 "RET"): pops RIP and CS (`opSize` bytes
 * each), releases `popBytes`; to the same privilege it checks RIP against
 * the new CS; to an outer privilege (CS.RPL > CPL) it also pops RSP and SS,
 * checks SS, loads both, releases `popBytes` on the outer stack too and
 * nulls data segment registers not accessible at the new CPL.
 */
function farReturn(cpu: CpuInternals, opSize: number, popBytes: number): void {
  const s = cpu.state;
  stackCurrent(cpu);
  const rLo = pop(cpu, opSize);
  const rHi = popHi;
  const cs = pop(cpu, opSize) & 0xffff;
  truncRip(rLo, rHi, opSize);
  if (!isProtected(cpu) || cpu.getRflags() & Flag.VM) {
    stackUp(popBytes);
    loadRealCs(cpu, cs);
    stackCommit(cpu);
    cpu.setRip(ripLo, 0);
    return;
  }
  checkReturnCs(cpu, cs);
  const d = dCode;
  const rpl = cs & 3;
  if (rpl === s.cpl) {
    checkTargetRip(cpu, d, ripLo, ripHi);
    stackUp(popBytes);
    setAccessed(cpu, d);
    commitCs(cpu, cs, d, rpl);
    stackCommit(cpu);
    cpu.setRip(ripLo, ripHi);
    cpu.stateChanged();
    return;
  }
  // Outer privilege.
  stackUp(popBytes);
  const spLo = pop(cpu, opSize);
  const spHi = popHi;
  const ss = pop(cpu, opSize) & 0xffff;
  const to64 = longModeActive(cpu) && d.long;
  const ssNull = checkReturnSs(cpu, ss, rpl, to64);
  checkTargetRip(cpu, d, ripLo, ripHi);
  setAccessed(cpu, d);
  if (!ssNull) setAccessed(cpu, dStack);
  commitCs(cpu, cs, d, rpl);
  if (ssNull) loadNull(cpu, Seg.SS, ss, rpl);
  else commitSegment(cpu, Seg.SS, ss, dStack);
  // New stack pointer, then release popBytes on it.
  if (to64) stackSet(8, spLo, opSize === 8 ? spHi : 0, 0, 0, 0, rpl === 3, 0);
  else stackSet(ssNull || dStack.attr & SegAttr.DB ? 4 : 2, spLo, 0, 0, 0, SegAttr.UNUSABLE, rpl === 3, 0);
  stackUp(popBytes);
  stackCommit(cpu);
  nullOuterDataSegments(cpu, rpl);
  cpu.setRip(ripLo, ripHi);
  cpu.stateChanged();
}

// ---------------------------------------------------------------------------
// Interrupt and exception delivery
// ---------------------------------------------------------------------------

/** Exception classes for double-fault detection (SDM vol. 3 table 6-4). */
function faultClass(vector: number): number {
  // 0 benign, 1 contributory, 2 page fault, 3 double fault
  switch (vector) {
    case Vector.DE:
    case Vector.TS:
    case Vector.NP:
    case Vector.SS:
    case Vector.GP:
      return 1;
    case Vector.PF:
      return 2;
    case Vector.DF:
      return 3;
    default:
      return 0;
  }
}

/**
 * Nested-exception rule (SDM vol. 3 §6.15, table 6-5): `first` is being
 * delivered when `second` is raised. Returns 8 (#DF, error code 0) for a
 * contributory fault during a contributory exception or a contributory
 * fault / #PF during a #PF; -1 (triple fault: shutdown) for a contributory
 * fault or #PF during #DF; otherwise `second` (delivered serially).
 */
export function nestedException(first: number, second: number): number {
  const a = faultClass(first);
  const b = faultClass(second);
  if (a === 3 && (b === 1 || b === 2)) return -1;
  if ((a === 1 && b === 1) || (a === 2 && (b === 1 || b === 2))) return Vector.DF;
  return second;
}

/**
 * CpuInternals.deliverInterrupt: delivers `vector` through the IDT (real-
 * mode IVT, 8-byte protected-mode gates, or 16-byte IA-32e gates) and clears
 * `state.halted`. `software` marks INT n / INT3 / INTO: the gate's DPL is
 * checked against CPL and no error code is pushed; vectors 3 (#BP) and 4
 * (#OF) without an error code are always treated so, since only INT3 and
 * INTO raise them. The EXT bit of error codes is set for everything else.
 * Faults raised while delivering
 * propagate as the core's sentinel; the core applies `nestedException`.
 */
function deliverInterrupt(
  cpu: CpuInternals,
  vector: number,
  errorCode: number,
  software: boolean,
  returnLo: number,
  returnHi: number,
): void {
  deliverOnce(cpu, vector, errorCode, software, returnLo, returnHi);
  cpu.state.halted = false;
}

/** Does one delivery attempt; faults propagate to `deliverInterrupt`. */
function deliverOnce(
  cpu: CpuInternals,
  vector: number,
  errorCode: number,
  software: boolean,
  returnLo: number,
  returnHi: number,
): void {
  const s = cpu.state;
  vector &= 0xff;
  // #BP and #OF only ever come from INT3 / INTO: they get the software
  // interrupt treatment (gate DPL check, EXT = 0) even when the core
  // delivers them through its exception path.
  if ((vector === Vector.BP || vector === Vector.OF) && errorCode < 0) software = true;
  const ext = software ? 0 : 1;
  if ((s.cr0 & Cr0.PE) === 0) {
    deliverReal(cpu, vector, returnLo);
    return;
  }
  const fl = cpu.getRflags();
  if (software && fl & Flag.VM && iopl(fl) < 3) cpu.fault(Vector.GP, 0);
  const idtErr = (vector << 3) | 2 | ext;
  if (longModeActive(cpu)) {
    deliverLong(cpu, vector, errorCode, software, returnLo, returnHi, fl, ext, idtErr);
  } else {
    deliverProtected(cpu, vector, errorCode, software, returnLo, fl, ext, idtErr);
  }
}

/** Real-address-mode delivery through the IVT (SDM vol. 3 §20.1.4): push FLAGS, CS, IP; clear IF, TF, AC. */
function deliverReal(cpu: CpuInternals, vector: number, returnLo: number): void {
  const s = cpu.state;
  const off = vector * 4;
  if (off + 3 > s.idtrLimit >>> 0) cpu.fault(Vector.GP, (vector << 3) | 2);
  const ent = cpu.linRead32((s.idtrBaseLo + off) >>> 0, 0, false);
  const fl = cpu.getRflags();
  stackCurrent(cpu);
  push(cpu, fl, 2);
  push(cpu, s.segSel[Seg.CS], 2);
  push(cpu, returnLo, 2);
  stackCommit(cpu);
  loadRealCs(cpu, ent >>> 16);
  cpu.setRflags(fl & ~(Flag.IF | Flag.TF | Flag.AC | Flag.RF));
  cpu.setRip(ent & 0xffff, 0);
  cpu.stateChanged();
}

/**
 * Reads IDT gate `vector` (8 or 16 bytes) into dGate and checks it: beyond
 * the IDT limit -> #GP(idtErr); not an interrupt/trap gate of the mode (a
 * task gate included: task switches are not supported) -> #GP(idtErr);
 * software interrupt with gate DPL < CPL -> #GP(idtErr); not present ->
 * #NP(idtErr). Returns nothing; the gate is in dGate.
 */
function readIdtGate(
  cpu: CpuInternals,
  vector: number,
  software: boolean,
  idtErr: number,
  wide: boolean,
): void {
  const s = cpu.state;
  const size = wide ? 16 : 8;
  const off = vector * size;
  if (off + size - 1 > s.idtrLimit >>> 0) cpu.fault(Vector.GP, idtErr);
  const d = dGate;
  const bLo = s.idtrBaseLo;
  const bHi = wide ? s.idtrBaseHi : 0;
  d.w0 = readLin32(cpu, bLo, bHi, off, wide);
  d.w1 = readLin32(cpu, bLo, bHi, off + 4, wide);
  d.w2 = wide ? readLin32(cpu, bLo, bHi, off + 8, wide) : 0;
  d.w3 = wide ? readLin32(cpu, bLo, bHi, off + 12, wide) : 0;
  d.attr = (d.w1 >>> 8) & 0xff;
  const type = d.attr & 0x1f; // includes S
  if (wide) {
    if (type !== SysType.INT_GATE && type !== SysType.TRAP_GATE) cpu.fault(Vector.GP, idtErr);
  } else if (
    type !== SysType.INT_GATE &&
    type !== SysType.TRAP_GATE &&
    type !== SysType.INT_GATE16 &&
    type !== SysType.TRAP_GATE16
  ) {
    cpu.fault(Vector.GP, idtErr);
  }
  if (software && d.dpl < s.cpl) cpu.fault(Vector.GP, idtErr);
  if (!d.present) cpu.fault(Vector.NP, idtErr);
}

/**
 * Reads and checks the gate's target code segment for delivery: null ->
 * #GP(ext); beyond the table, not code, or DPL > CPL -> #GP(sel | ext); not
 * present -> #NP(sel | ext). Leaves it in dCode.
 */
function readHandlerCs(cpu: CpuInternals, sel: number, ext: number): void {
  const err = (sel & 0xfffc) | ext;
  if ((sel & 0xfffc) === 0 && (sel & 4) === 0) cpu.fault(Vector.GP, ext);
  if (!readDescriptor(cpu, sel, dCode, false)) cpu.fault(Vector.GP, err);
  if (!dCode.code || dCode.dpl > cpu.state.cpl) cpu.fault(Vector.GP, err);
  if (!dCode.present) cpu.fault(Vector.NP, err);
}

/** Protected-mode (legacy) delivery through 8-byte gates (SDM vol. 3 §6.12.1, vol. 2 "INT n" pseudocode). */
function deliverProtected(
  cpu: CpuInternals,
  vector: number,
  errorCode: number,
  software: boolean,
  returnLo: number,
  fl: number,
  ext: number,
  idtErr: number,
): void {
  const s = cpu.state;
  readIdtGate(cpu, vector, software, idtErr, false);
  const g = dGate;
  const gType = g.type;
  const size = gType & 8 ? 4 : 2;
  const isInt = (gType & 1) === 0;
  const tSel = g.w0 >>> 16;
  const offLo = size === 4 ? ((g.w0 & 0xffff) | (g.w1 & 0xffff0000)) >>> 0 : g.w0 & 0xffff;
  readHandlerCs(cpu, tSel, ext);
  const t = dCode;
  const cpl = s.cpl;
  const vm = (fl & Flag.VM) !== 0;
  const hasErr = errorCode >= 0 && !software;
  const oldSs = s.segSel[Seg.SS];
  const oldSp = s.gprLo[Reg.RSP];
  if (!t.conforming && t.dpl < cpl) {
    // Inner privilege: stack from the TSS.
    const newCpl = t.dpl;
    if (vm && newCpl !== 0) cpu.fault(Vector.GP, (tSel & 0xfffc) | ext);
    readTssStack(cpu, newCpl, 0, ext);
    const newSs = tssStack.ss & 0xffff;
    const newSp = tssStack.spLo;
    checkNewStack(cpu, newSs, newCpl, ext);
    if (offLo > t.limit >>> 0) cpu.fault(Vector.GP, ext);
    const ssd = dStack;
    stackSet(
      ssd.attr & SegAttr.DB ? 4 : 2,
      newSp,
      0,
      ssd.baseLo,
      ssd.limit,
      ssd.attr,
      newCpl === 3,
      (newSs & 0xfffc) | ext,
    );
    if (vm) {
      push(cpu, s.segSel[Seg.GS], size);
      push(cpu, s.segSel[Seg.FS], size);
      push(cpu, s.segSel[Seg.DS], size);
      push(cpu, s.segSel[Seg.ES], size);
    }
    push(cpu, oldSs, size);
    push(cpu, oldSp, size);
    push(cpu, fl, size);
    push(cpu, s.segSel[Seg.CS], size);
    push(cpu, returnLo, size);
    if (hasErr) push(cpu, errorCode, size);
    // Commit.
    setAccessed(cpu, t);
    setAccessed(cpu, ssd);
    commitSegment(cpu, Seg.SS, newSs, ssd);
    commitCs(cpu, tSel, t, newCpl);
    if (vm) {
      for (const seg of DATA_SEGS) loadNull(cpu, seg, 0);
    }
  } else {
    if (vm) cpu.fault(Vector.GP, (tSel & 0xfffc) | ext);
    if (offLo > t.limit >>> 0) cpu.fault(Vector.GP, ext);
    stackCurrent(cpu);
    stErr = ext; // #SS(EXT) on the current stack
    push(cpu, fl, size);
    push(cpu, s.segSel[Seg.CS], size);
    push(cpu, returnLo, size);
    if (hasErr) push(cpu, errorCode, size);
    setAccessed(cpu, t);
    commitCs(cpu, tSel, t, cpl);
  }
  stackCommit(cpu);
  let nf = fl & ~(Flag.TF | Flag.NT | Flag.RF | Flag.VM);
  if (isInt) nf &= ~Flag.IF;
  cpu.setRflags(nf);
  cpu.setRip(offLo, 0);
  cpu.stateChanged();
}

/**
 * IA-32e delivery through 16-byte gates (SDM vol. 3 §6.14): the target must
 * be 64-bit code; with a privilege change (or an IST index) RSP comes from
 * the 64-bit TSS (RSPn or IST n) and SS becomes null with RPL = new CPL;
 * RSP is aligned down to 16 bytes; SS, RSP, RFLAGS, CS, RIP and the error
 * code are pushed as 8-byte values. Non-canonical new RSP -> #SS(ext),
 * non-canonical handler RIP -> #GP(ext).
 */
function deliverLong(
  cpu: CpuInternals,
  vector: number,
  errorCode: number,
  software: boolean,
  returnLo: number,
  returnHi: number,
  fl: number,
  ext: number,
  idtErr: number,
): void {
  const s = cpu.state;
  readIdtGate(cpu, vector, software, idtErr, true);
  const g = dGate;
  const isInt = (g.type & 1) === 0;
  const tSel = g.w0 >>> 16;
  const offLo = ((g.w0 & 0xffff) | (g.w1 & 0xffff0000)) >>> 0;
  const offHi = g.w2 | 0;
  const ist = g.w1 & 7;
  readHandlerCs(cpu, tSel, ext);
  const t = dCode;
  if (!t.long) cpu.fault(Vector.GP, (tSel & 0xfffc) | ext);
  const cpl = s.cpl;
  const inner = !t.conforming && t.dpl < cpl;
  const newCpl = inner ? t.dpl : cpl;
  let spLo: number;
  let spHi: number;
  if (inner || ist) {
    readTssStack(cpu, newCpl, ist, ext);
    spLo = tssStack.spLo;
    spHi = tssStack.spHi;
  } else {
    spLo = s.gprLo[Reg.RSP];
    spHi = s.gprHi[Reg.RSP];
    if (!in64BitMode(cpu)) spHi = 0;
  }
  if (!isCanonical(spLo, spHi)) cpu.fault(Vector.SS, ext);
  if (!isCanonical(offLo, offHi)) cpu.fault(Vector.GP, ext);
  stackSet(8, spLo & ~0xf, spHi, 0, 0, 0, newCpl === 3, ext);
  const hasErr = errorCode >= 0 && !software;
  push64(cpu, s.segSel[Seg.SS], 0);
  push64(cpu, s.gprLo[Reg.RSP], in64BitMode(cpu) ? s.gprHi[Reg.RSP] : 0);
  push64(cpu, fl, 0);
  push64(cpu, s.segSel[Seg.CS], 0);
  push64(cpu, returnLo, in64BitMode(cpu) ? returnHi : 0);
  if (hasErr) push64(cpu, errorCode, 0);
  setAccessed(cpu, t);
  if (inner) loadNull(cpu, Seg.SS, newCpl, newCpl);
  commitCs(cpu, tSel, t, newCpl);
  stackCommit(cpu);
  let nf = fl & ~(Flag.TF | Flag.NT | Flag.RF | Flag.VM);
  if (isInt) nf &= ~Flag.IF;
  cpu.setRflags(nf);
  cpu.setRip(offLo, offHi);
  cpu.stateChanged();
}

// ---------------------------------------------------------------------------
// IRET
// ---------------------------------------------------------------------------

/** RFLAGS bits IRET/POPF may ever write. */
const FLAGS_WRITABLE =
  Flag.CF |
  Flag.PF |
  Flag.AF |
  Flag.ZF |
  Flag.SF |
  Flag.TF |
  Flag.IF |
  Flag.DF |
  Flag.OF |
  Flag.IOPL |
  Flag.NT |
  Flag.RF |
  Flag.AC |
  Flag.VIF |
  Flag.VIP |
  Flag.ID;

/**
 * Merges a popped flags image with the current RFLAGS as IRET does (SDM
 * vol. 2 "IRET"): CPL 0 may change everything but VM/VIF/VIP here (VM is
 * handled by the caller); CPL <= IOPL may change IF but not IOPL; otherwise
 * neither IF nor IOPL change. 16-bit operand size writes bits 0-15 only.
 */
function mergeFlags(cur: number, popped: number, opSize: number, cpl: number): number {
  let mask = FLAGS_WRITABLE;
  if (cpl > 0) mask &= ~(Flag.IOPL | Flag.VIF | Flag.VIP);
  if (cpl > iopl(cur)) mask &= ~Flag.IF;
  if (opSize === 2) mask &= 0xffff;
  return ((cur & ~mask) | (popped & mask) | Flag.FIXED1) & ~0x8028;
}

/**
 * IRET/IRETD/IRETQ (SDM vol. 2 "IRET"). Real mode: pops IP, CS, FLAGS.
 * Protected mode: NT=1 (task return) -> #GP(0), unsupported; a popped
 * EFLAGS.VM at CPL 0 returns to virtual-8086 mode (pops ESP, SS, ES, DS,
 * FS, GS); otherwise the return CS is checked (`checkReturnCs`), same
 * privilege returns keep the stack (except in 64-bit mode, which always
 * pops SS:RSP), outer returns pop and check SS:RSP, load them and null data
 * segments not accessible at the new CPL. IA-32e mode: NT=1 -> #GP(0).
 */
function iret(cpu: CpuInternals, opSize: number): void {
  const s = cpu.state;
  const fl = cpu.getRflags();
  stackCurrent(cpu);
  if ((s.cr0 & Cr0.PE) === 0) {
    const ip = pop(cpu, opSize);
    const cs = pop(cpu, opSize) & 0xffff;
    const nf = pop(cpu, opSize);
    truncRip(ip, 0, opSize);
    if (ripLo > s.segLimit[Seg.CS] >>> 0) cpu.fault(Vector.GP, 0);
    loadRealCs(cpu, cs);
    stackCommit(cpu);
    const mask = opSize === 2 ? 0xffff : FLAGS_WRITABLE & ~(Flag.VIF | Flag.VIP);
    cpu.setRflags(((fl & ~mask) | (nf & mask) | Flag.FIXED1) & ~0x8028);
    cpu.setRip(ripLo, 0);
    cpu.stateChanged();
    return;
  }
  if (fl & Flag.VM) {
    // Virtual-8086 mode: IOPL must be 3.
    if (iopl(fl) < 3) cpu.fault(Vector.GP, 0);
    const ip = pop(cpu, opSize);
    const cs = pop(cpu, opSize) & 0xffff;
    const nf = pop(cpu, opSize);
    truncRip(ip, 0, opSize);
    if (ripLo > 0xffff) cpu.fault(Vector.GP, 0);
    loadRealCs(cpu, cs);
    stackCommit(cpu);
    const mask = (opSize === 2 ? 0xffff : FLAGS_WRITABLE) & ~(Flag.IOPL | Flag.VIF | Flag.VIP);
    cpu.setRflags(((fl & ~mask) | (nf & mask) | Flag.FIXED1 | Flag.VM) & ~0x8028);
    cpu.setRip(ripLo, 0);
    cpu.stateChanged();
    return;
  }
  if (fl & Flag.NT) cpu.fault(Vector.GP, 0);
  const lma = longModeActive(cpu);
  const from64 = in64BitMode(cpu);
  const rLo = pop(cpu, opSize);
  const rHi = popHi;
  const cs = pop(cpu, opSize) & 0xffff;
  const nf = pop(cpu, opSize);
  truncRip(rLo, rHi, opSize);
  const cpl = s.cpl;
  if (!lma && nf & Flag.VM && opSize === 4 && cpl === 0) {
    iretToV86(cpu, cs, nf);
    return;
  }
  checkReturnCs(cpu, cs);
  const d = dCode;
  const rpl = cs & 3;
  const to64 = lma && d.long;
  const merged = mergeFlags(fl, nf, opSize, cpl) & ~Flag.VM;
  if (rpl === cpl && !from64) {
    checkTargetRip(cpu, d, ripLo, ripHi);
    setAccessed(cpu, d);
    commitCs(cpu, cs, d, rpl);
    stackCommit(cpu);
    cpu.setRflags(merged);
    cpu.setRip(ripLo, ripHi);
    cpu.stateChanged();
    return;
  }
  const spLo = pop(cpu, opSize);
  const spHi = popHi;
  const ss = pop(cpu, opSize) & 0xffff;
  const ssNull = checkReturnSs(cpu, ss, rpl, to64);
  checkTargetRip(cpu, d, ripLo, ripHi);
  setAccessed(cpu, d);
  if (!ssNull) setAccessed(cpu, dStack);
  commitCs(cpu, cs, d, rpl);
  if (ssNull) loadNull(cpu, Seg.SS, ss, rpl);
  else commitSegment(cpu, Seg.SS, ss, dStack);
  if (to64 || (lma && opSize === 8)) {
    s.gprLo[Reg.RSP] = spLo | 0;
    s.gprHi[Reg.RSP] = opSize === 8 ? spHi | 0 : 0;
  } else if (ssNull || dStack.attr & SegAttr.DB) {
    s.gprLo[Reg.RSP] = opSize === 2 ? (s.gprLo[Reg.RSP] & 0xffff0000) | (spLo & 0xffff) : spLo | 0;
    s.gprHi[Reg.RSP] = 0;
  } else {
    s.gprLo[Reg.RSP] = (s.gprLo[Reg.RSP] & 0xffff0000) | (spLo & 0xffff);
  }
  cpu.setRflags(merged);
  if (rpl > cpl) nullOuterDataSegments(cpu, rpl);
  cpu.setRip(ripLo, ripHi);
  cpu.stateChanged();
}

/** IRET to virtual-8086 mode (SDM vol. 2 "IRET", RETURN-TO-VIRTUAL-8086-MODE). */
function iretToV86(cpu: CpuInternals, cs: number, nf: number): void {
  const s = cpu.state;
  const esp = pop(cpu, 4);
  const ss = pop(cpu, 4) & 0xffff;
  const es = pop(cpu, 4) & 0xffff;
  const ds = pop(cpu, 4) & 0xffff;
  const fs = pop(cpu, 4) & 0xffff;
  const gs = pop(cpu, 4) & 0xffff;
  const v86Data = 0x3 | SegAttr.S | (3 << SegAttr.DPL_SHIFT) | SegAttr.P;
  cpu.setRflags(((nf & (FLAGS_WRITABLE | Flag.VM)) | Flag.FIXED1) & ~0x8028);
  cpu.setSegmentRaw(Seg.CS, cs, cs << 4, 0, 0xffff, 0xb | SegAttr.S | (3 << SegAttr.DPL_SHIFT) | SegAttr.P);
  cpu.setSegmentRaw(Seg.SS, ss, ss << 4, 0, 0xffff, v86Data);
  cpu.setSegmentRaw(Seg.ES, es, es << 4, 0, 0xffff, v86Data);
  cpu.setSegmentRaw(Seg.DS, ds, ds << 4, 0, 0xffff, v86Data);
  cpu.setSegmentRaw(Seg.FS, fs, fs << 4, 0, 0xffff, v86Data);
  cpu.setSegmentRaw(Seg.GS, gs, gs << 4, 0, 0xffff, v86Data);
  s.gprLo[Reg.RSP] = esp | 0;
  s.gprHi[Reg.RSP] = 0;
  s.cpl = 3;
  cpu.setRip(ripLo & 0xffff, 0);
  cpu.stateChanged();
}

// ---------------------------------------------------------------------------
// SYSCALL / SYSRET / SYSENTER / SYSEXIT / SWAPGS
// ---------------------------------------------------------------------------

/**
 * SYSCALL (SDM vol. 2 "SYSCALL"): #UD unless IA-32e mode is active and
 * EFER.SCE = 1. RCX := next RIP, R11 := RFLAGS with RF clear, CS :=
 * STAR[47:32] & 0xFFFC (flat 64-bit code, DPL 0), SS := STAR[47:32] + 8
 * (flat data, DPL 0), CPL := 0, RFLAGS &= ~(IA32_FMASK | RF), RIP := LSTAR
 * from 64-bit mode or CSTAR from compatibility mode (the latter is AMD's
 * behaviour, which Xen's 32-bit-on-64 syscall path models; Intel raises
 * #UD there).
 */
function syscall(cpu: CpuInternals): void {
  const s = cpu.state;
  if ((s.efer & (Efer.LMA | Efer.SCE)) !== (Efer.LMA | Efer.SCE)) cpu.fault(Vector.UD, -1);
  const from64 = in64BitMode(cpu);
  const fl = cpu.getRflags();
  s.gprLo[Reg.RCX] = s.ripLo | 0;
  s.gprHi[Reg.RCX] = from64 ? s.ripHi | 0 : 0;
  s.gprLo[Reg.R11] = fl & ~Flag.RF;
  s.gprHi[Reg.R11] = 0;
  const sel = s.starHi & 0xfffc;
  cpu.setSegmentRaw(Seg.CS, sel, 0, 0, 0xffffffff, flatCodeAttr(0, true));
  cpu.setSegmentRaw(Seg.SS, (sel + 8) & 0xffff, 0, 0, 0xffffffff, flatDataAttr(0));
  s.cpl = 0;
  cpu.setRflags((fl & ~(s.sfmask | Flag.RF)) | Flag.FIXED1);
  if (from64) cpu.setRip(s.lstarLo, s.lstarHi);
  else cpu.setRip(s.cstarLo, s.cstarHi);
  cpu.stateChanged();
}

/**
 * SYSRET (SDM vol. 2 "SYSRET"): #UD unless in 64-bit mode with EFER.SCE;
 * CPL != 0 -> privileged exit / #GP(0); REX.W form with a non-canonical RCX
 * -> #GP(0). RFLAGS := (R11 & 0x3C7FD7) | 2; REX.W: CS := (STAR[63:48] +
 * 16) | 3 as 64-bit code, RIP := RCX; else CS := STAR[63:48] | 3 as 32-bit
 * code, RIP := ECX. SS := (STAR[63:48] + 8) | 3 (flat data, DPL 3); CPL 3.
 */
function sysret(cpu: CpuInternals, opSize: number): void {
  const s = cpu.state;
  if ((s.efer & Efer.SCE) === 0 || !in64BitMode(cpu)) cpu.fault(Vector.UD, -1);
  requireCpl0(cpu, PrivOp.SYSRET);
  const rcxLo = s.gprLo[Reg.RCX];
  const rcxHi = s.gprHi[Reg.RCX];
  if (opSize === 8 && !isCanonical(rcxLo, rcxHi)) cpu.fault(Vector.GP, 0);
  const base = s.starHi >>> 16;
  cpu.setRflags((s.gprLo[Reg.R11] & 0x3c7fd7) | Flag.FIXED1);
  if (opSize === 8) {
    cpu.setSegmentRaw(Seg.CS, ((base + 16) | 3) & 0xffff, 0, 0, 0xffffffff, flatCodeAttr(3, true));
  } else {
    cpu.setSegmentRaw(Seg.CS, (base | 3) & 0xffff, 0, 0, 0xffffffff, flatCodeAttr(3, false));
  }
  cpu.setSegmentRaw(Seg.SS, ((base + 8) | 3) & 0xffff, 0, 0, 0xffffffff, flatDataAttr(3));
  s.cpl = 3;
  cpu.setRip(rcxLo, opSize === 8 ? rcxHi : 0);
  cpu.stateChanged();
}

/**
 * SYSENTER (SDM vol. 2 "SYSENTER"): CR0.PE = 0 or IA32_SYSENTER_CS[15:2] =
 * 0 -> #GP(0). Clears VM, IF, RF; CS := SYSENTER_CS & 0xFFFC (flat code,
 * DPL 0; 64-bit when IA-32e mode is active), SS := CS + 8; RSP/RIP :=
 * SYSENTER_ESP/EIP (64-bit in IA-32e mode, else low 32 bits); CPL 0.
 */
function sysenter(cpu: CpuInternals): void {
  const s = cpu.state;
  if ((s.cr0 & Cr0.PE) === 0 || (s.sysenterCs & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  const lma = longModeActive(cpu);
  const sel = s.sysenterCs & 0xfffc;
  cpu.setRflags(cpu.getRflags() & ~(Flag.VM | Flag.IF | Flag.RF));
  cpu.setSegmentRaw(Seg.CS, sel, 0, 0, 0xffffffff, flatCodeAttr(0, lma));
  cpu.setSegmentRaw(Seg.SS, (sel + 8) & 0xffff, 0, 0, 0xffffffff, flatDataAttr(0));
  s.cpl = 0;
  s.gprLo[Reg.RSP] = s.sysenterEspLo | 0;
  s.gprHi[Reg.RSP] = lma ? s.sysenterEspHi | 0 : 0;
  cpu.setRip(s.sysenterEipLo, lma ? s.sysenterEipHi : 0);
  cpu.stateChanged();
}

/**
 * SYSEXIT (SDM vol. 2 "SYSEXIT"): SYSENTER_CS[15:2] = 0 or CR0.PE = 0 ->
 * #GP(0); CPL != 0 -> privileged exit / #GP(0). REX.W (64-bit mode): RSP :=
 * RCX, RIP := RDX (both canonical, else #GP(0)), CS := (SYSENTER_CS + 32) |
 * 3 as 64-bit code, SS := +40; otherwise RSP := ECX, RIP := EDX, CS :=
 * (SYSENTER_CS + 16) | 3 as 32-bit code, SS := +24. CPL 3.
 */
function sysexit(cpu: CpuInternals, opSize: number): void {
  const s = cpu.state;
  if ((s.cr0 & Cr0.PE) === 0 || (s.sysenterCs & 0xfffc) === 0) cpu.fault(Vector.GP, 0);
  requireCpl0(cpu, PrivOp.SYSEXIT);
  const base = s.sysenterCs & 0xffff;
  const w = opSize === 8;
  const spLo = s.gprLo[Reg.RCX];
  const spHi = w ? s.gprHi[Reg.RCX] : 0;
  const ipLo = s.gprLo[Reg.RDX];
  const ipHi = w ? s.gprHi[Reg.RDX] : 0;
  if (w && (!isCanonical(spLo, spHi) || !isCanonical(ipLo, ipHi))) cpu.fault(Vector.GP, 0);
  cpu.setSegmentRaw(Seg.CS, ((base + (w ? 32 : 16)) | 3) & 0xffff, 0, 0, 0xffffffff, flatCodeAttr(3, w));
  cpu.setSegmentRaw(Seg.SS, ((base + (w ? 40 : 24)) | 3) & 0xffff, 0, 0, 0xffffffff, flatDataAttr(3));
  s.cpl = 3;
  s.gprLo[Reg.RSP] = spLo | 0;
  s.gprHi[Reg.RSP] = spHi | 0;
  cpu.setRip(ipLo, ipHi);
  cpu.stateChanged();
}

/**
 * SWAPGS (SDM vol. 2 "SWAPGS"): #UD outside 64-bit mode; CPL != 0 ->
 * privileged exit / #GP(0). Exchanges GS.base with IA32_KERNEL_GS_BASE.
 */
function swapgs(cpu: CpuInternals): void {
  const s = cpu.state;
  if (!in64BitMode(cpu)) cpu.fault(Vector.UD, -1);
  if (s.cpl !== 0) cpu.privileged(PrivOp.SWAPGS);
  const lo = s.segBaseLo[Seg.GS];
  const hi = s.segBaseHi[Seg.GS];
  s.segBaseLo[Seg.GS] = s.kernelGsBaseLo;
  s.segBaseHi[Seg.GS] = s.kernelGsBaseHi;
  s.kernelGsBaseLo = lo;
  s.kernelGsBaseHi = hi;
  cpu.stateChanged();
}

// ---------------------------------------------------------------------------
// Control and debug registers
// ---------------------------------------------------------------------------

/** CR0 bits software can change (others read as before; ET is hardwired to 1). SDM vol. 3 §2.5. */
const CR0_WRITABLE = Cr0.PE | Cr0.MP | Cr0.EM | Cr0.TS | Cr0.NE | Cr0.WP | Cr0.AM | Cr0.NW | Cr0.CD | Cr0.PG;
/** CR4 bits the engine accepts (OSXSAVE: CPUID.1:ECX.XSAVE is offered); setting any other bit raises #GP(0). */
export const CR4_ALLOWED =
  Cr4.OSXSAVE |
  Cr4.VME |
  Cr4.PVI |
  Cr4.TSD |
  Cr4.DE |
  Cr4.PSE |
  Cr4.PAE |
  Cr4.MCE |
  Cr4.PGE |
  Cr4.PCE |
  Cr4.OSFXSR |
  Cr4.OSXMMEXCPT;
/** Physical-address width of CR3 in IA-32e mode (bits); must match the CPUID policy's 0x80000008. */
const CR3_PHYS_BITS = 40;

/** Checks MOV CR's CR number: CR0, CR2-CR4 always, CR8 in 64-bit mode; others #UD. */
function checkCrNumber(cpu: CpuInternals, n: number): void {
  if (n === 0 || n === 2 || n === 3 || n === 4) return;
  if (n === 8 && in64BitMode(cpu)) return;
  cpu.fault(Vector.UD, -1);
}

/**
 * MOV CRn, r (SDM vol. 2 "MOV - Move to/from Control Registers", vol. 3
 * §2.5). `reg` is the source GPR (reported in `exitPrivReg` on a
 * privileged exit). Invalid CR -> #UD; CPL != 0 -> privileged exit/#GP(0).
 * CR0: bits 63:32 set, PG without PE, NW without CD, enabling paging with
 * EFER.LME and CR4.PAE = 0, or clearing PG in 64-bit mode -> #GP(0);
 * enabling paging with LME sets EFER.LMA, disabling clears it; PG/WP/PE/CD
 * changes flush the whole TLB. CR3: reserved bits (above the physical width
 * in IA-32e mode) -> #GP(0); flushes non-global TLB entries. CR4: unknown
 * bits or clearing PAE in IA-32e mode -> #GP(0); PGE/PAE/PSE changes flush
 * all. CR8: bits 63:4 -> #GP(0).
 */
function movToCr(cpu: CpuInternals, n: number, lo: number, hi: number, reg: number): void {
  const s = cpu.state;
  checkCrNumber(cpu, n);
  cpu.exitPrivReg = reg;
  cpu.exitPrivCr = n;
  requireCpl0(cpu, PrivOp.MOV_TO_CR);
  const w64 = in64BitMode(cpu);
  if (!w64) hi = 0;
  switch (n) {
    case 0: {
      if (hi !== 0) cpu.fault(Vector.GP, 0);
      const old = s.cr0;
      const v = (old & ~CR0_WRITABLE) | (lo & CR0_WRITABLE) | Cr0.ET | 0;
      if (v & Cr0.PG && (v & Cr0.PE) === 0) cpu.fault(Vector.GP, 0);
      if (v & Cr0.NW && (v & Cr0.CD) === 0) cpu.fault(Vector.GP, 0);
      const pgOn = (old & Cr0.PG) === 0 && (v & Cr0.PG) !== 0;
      const pgOff = (old & Cr0.PG) !== 0 && (v & Cr0.PG) === 0;
      if (pgOn && s.efer & Efer.LME && (s.cr4 & Cr4.PAE) === 0) cpu.fault(Vector.GP, 0);
      if (pgOff && w64) cpu.fault(Vector.GP, 0);
      s.cr0 = v;
      if (pgOn && s.efer & Efer.LME) s.efer |= Efer.LMA;
      if (pgOff) s.efer &= ~Efer.LMA;
      if ((old ^ v) & (Cr0.PG | Cr0.WP | Cr0.PE | Cr0.CD)) cpu.flushTlb(true);
      break;
    }
    case 2:
      s.cr2Lo = lo | 0;
      s.cr2Hi = hi | 0;
      break;
    case 3: {
      if (longModeActive(cpu)) {
        if (hi >>> (CR3_PHYS_BITS - 32) !== 0) cpu.fault(Vector.GP, 0);
      } else {
        hi = 0;
      }
      s.cr3Lo = lo | 0;
      s.cr3Hi = hi | 0;
      cpu.flushTlb(false);
      break;
    }
    case 4: {
      if (hi !== 0 || lo & ~CR4_ALLOWED) cpu.fault(Vector.GP, 0);
      if (longModeActive(cpu) && (lo & Cr4.PAE) === 0) cpu.fault(Vector.GP, 0);
      const old = s.cr4;
      s.cr4 = lo | 0;
      if ((old ^ lo) & (Cr4.PGE | Cr4.PAE | Cr4.PSE | Cr4.SMEP | Cr4.SMAP)) cpu.flushTlb(true);
      break;
    }
    case 8:
      if (hi !== 0 || lo & ~0xf) cpu.fault(Vector.GP, 0);
      s.cr8 = lo & 0xf;
      break;
  }
  cpu.stateChanged();
}

/**
 * MOV r, CRn: returns the low half, high half in `cpu.tmpHi`. `reg` is the
 * destination GPR (for the privileged exit). Invalid CR -> #UD; CPL != 0 ->
 * privileged exit / #GP(0).
 */
function movFromCr(cpu: CpuInternals, n: number, reg: number): number {
  const s = cpu.state;
  checkCrNumber(cpu, n);
  cpu.exitPrivReg = reg;
  cpu.exitPrivCr = n;
  requireCpl0(cpu, PrivOp.MOV_FROM_CR);
  let lo = 0;
  let hi = 0;
  switch (n) {
    case 0:
      lo = s.cr0;
      break;
    case 2:
      lo = s.cr2Lo;
      hi = s.cr2Hi;
      break;
    case 3:
      lo = s.cr3Lo;
      hi = s.cr3Hi;
      break;
    case 4:
      lo = s.cr4;
      break;
    case 8:
      lo = s.cr8 & 0xf;
      break;
  }
  cpu.tmpHi = hi | 0;
  return lo | 0;
}

/** Resolves DR4/DR5 aliasing (CR4.DE = 1 -> #UD) and DR7.GD (-> #DB with DR6.BD); returns the DR number. */
function checkDr(cpu: CpuInternals, n: number): number {
  const s = cpu.state;
  if (n > 7) cpu.fault(Vector.UD, -1);
  if (n === 4 || n === 5) {
    if (s.cr4 & Cr4.DE) cpu.fault(Vector.UD, -1);
    n += 2;
  }
  if (s.dr7 & (1 << 13)) {
    s.dr7 &= ~(1 << 13);
    s.dr6 |= 1 << 13;
    cpu.fault(Vector.DB, -1);
  }
  return n;
}

/**
 * MOV DRn, r (SDM vol. 2 "MOV - Move to/from Debug Registers", vol. 3
 * §17.2): CPL != 0 -> privileged exit / #GP(0); DR4/5 alias DR6/7 unless
 * CR4.DE (then #UD); DR8+ -> #UD; DR7.GD set -> #DB (GD cleared, DR6.BD
 * set); DR6/DR7 with bits 63:32 set in 64-bit mode -> #GP(0). DR6 keeps its
 * reserved bits at 1 (bits 4-11, 16-31) and bit 12 at 0; DR7 keeps bit 10 at
 * 1 and bits 11, 12, 14, 15 at 0. Breakpoints set in DR7 are stored only.
 */
function movToDr(cpu: CpuInternals, n: number, lo: number, hi: number, reg: number): void {
  const s = cpu.state;
  cpu.exitPrivReg = reg;
  cpu.exitPrivCr = n;
  requireCpl0(cpu, PrivOp.MOV_TO_DR);
  n = checkDr(cpu, n);
  if (!in64BitMode(cpu)) hi = 0;
  if (n < 4) {
    s.drLo[n] = lo | 0;
    s.drHi[n] = hi | 0;
    return;
  }
  if (hi !== 0) cpu.fault(Vector.GP, 0);
  if (n === 6) s.dr6 = (lo & 0x0000e00f) | 0xffff0ff0 | 0;
  else s.dr7 = (lo & ~0xd800) | 0x400 | 0;
}

/** MOV r, DRn: value (high half in `cpu.tmpHi`); checks as `movToDr`. */
function movFromDr(cpu: CpuInternals, n: number, reg: number): number {
  const s = cpu.state;
  cpu.exitPrivReg = reg;
  cpu.exitPrivCr = n;
  requireCpl0(cpu, PrivOp.MOV_FROM_DR);
  n = checkDr(cpu, n);
  if (n < 4) {
    cpu.tmpHi = s.drHi[n] | 0;
    return s.drLo[n] | 0;
  }
  cpu.tmpHi = 0;
  return n === 6 ? s.dr6 | 0 : s.dr7 | 0;
}

/** CLTS (SDM vol. 2 "CLTS"): CPL != 0 -> privileged exit / #GP(0); clears CR0.TS. */
function clts(cpu: CpuInternals): void {
  requireCpl0(cpu, PrivOp.CLTS);
  cpu.state.cr0 &= ~Cr0.TS;
  cpu.stateChanged();
}

/**
 * LMSW (SDM vol. 2 "LMSW"): CPL != 0 -> privileged exit / #GP(0); loads
 * CR0 bits 0-3 (PE, MP, EM, TS) from the source; PE can be set, not cleared.
 */
function lmsw(cpu: CpuInternals, value: number): void {
  requireCpl0(cpu, PrivOp.LMSW);
  const s = cpu.state;
  s.cr0 = (s.cr0 & ~0xe) | (value & 0xf) | (s.cr0 & Cr0.PE) | 0;
  cpu.stateChanged();
}

/** SMSW (SDM vol. 2 "SMSW"): CR0 (the core truncates to the operand size). Allowed at any CPL (no UMIP). */
function smsw(cpu: CpuInternals): number {
  return cpu.state.cr0 | 0;
}

// ---------------------------------------------------------------------------
// MSRs
// ---------------------------------------------------------------------------

/** Model-specific register numbers the engine implements (SDM vol. 4). */
export const enum Msr {
  TSC = 0x10,
  APIC_BASE = 0x1b,
  BIOS_SIGN_ID = 0x8b,
  SYSENTER_CS = 0x174,
  SYSENTER_ESP = 0x175,
  SYSENTER_EIP = 0x176,
  MISC_ENABLE = 0x1a0,
  PAT = 0x277,
  EFER = 0xc0000080,
  STAR = 0xc0000081,
  LSTAR = 0xc0000082,
  CSTAR = 0xc0000083,
  FMASK = 0xc0000084,
  FS_BASE = 0xc0000100,
  GS_BASE = 0xc0000101,
  KERNEL_GS_BASE = 0xc0000102,
  TSC_AUX = 0xc0000103,
}

/** Guest TSC (Number, exact below 2^53): instructionsRetired * tscPerInstruction + tscOffset, wrapped to >= 0. */
function tscValue(cpu: CpuInternals): number {
  const v = cpu.state.instructionsRetired * cpu.tscPerInstruction + cpu.tscOffset;
  return v < 0 ? 0 : v;
}

/**
 * Reads MSR `index` into (lo, `cpu.tmpHi`) without privilege checks.
 * @returns the low half, or throws #GP(0) via `cpu.fault` for an MSR the
 *   engine does not implement (SDM vol. 2 "RDMSR").
 */
export function readMsr(cpu: CpuInternals, index: number): number {
  const s = cpu.state;
  let lo = 0;
  let hi = 0;
  switch (index >>> 0) {
    case Msr.TSC: {
      const v = tscValue(cpu);
      lo = v % 0x100000000;
      hi = Math.floor(v / 0x100000000);
      break;
    }
    case Msr.APIC_BASE:
      lo = s.apicBaseLo;
      hi = s.apicBaseHi;
      break;
    case Msr.BIOS_SIGN_ID:
      break;
    case Msr.SYSENTER_CS:
      lo = s.sysenterCs;
      break;
    case Msr.SYSENTER_ESP:
      lo = s.sysenterEspLo;
      hi = s.sysenterEspHi;
      break;
    case Msr.SYSENTER_EIP:
      lo = s.sysenterEipLo;
      hi = s.sysenterEipHi;
      break;
    case Msr.MISC_ENABLE:
      lo = s.miscEnableLo;
      hi = s.miscEnableHi;
      break;
    case Msr.PAT:
      lo = s.patLo;
      hi = s.patHi;
      break;
    case Msr.EFER:
      lo = s.efer;
      break;
    case Msr.STAR:
      lo = s.starLo;
      hi = s.starHi;
      break;
    case Msr.LSTAR:
      lo = s.lstarLo;
      hi = s.lstarHi;
      break;
    case Msr.CSTAR:
      lo = s.cstarLo;
      hi = s.cstarHi;
      break;
    case Msr.FMASK:
      lo = s.sfmask;
      break;
    case Msr.FS_BASE:
      lo = s.segBaseLo[Seg.FS];
      hi = s.segBaseHi[Seg.FS];
      break;
    case Msr.GS_BASE:
      lo = s.segBaseLo[Seg.GS];
      hi = s.segBaseHi[Seg.GS];
      break;
    case Msr.KERNEL_GS_BASE:
      lo = s.kernelGsBaseLo;
      hi = s.kernelGsBaseHi;
      break;
    case Msr.TSC_AUX:
      lo = s.tscAux;
      break;
    default:
      cpu.fault(Vector.GP, 0);
  }
  cpu.tmpHi = hi | 0;
  return lo | 0;
}

/** True when every byte of a PAT value names a valid memory type (0, 1, 4, 5, 6, 7). */
function patValid(lo: number, hi: number): boolean {
  for (let i = 0; i < 4; i++) {
    const a = (lo >>> (i * 8)) & 0xff;
    const b = (hi >>> (i * 8)) & 0xff;
    if (a > 7 || a === 2 || a === 3 || b > 7 || b === 2 || b === 3) return false;
  }
  return true;
}

/**
 * Writes MSR `index` without privilege checks (SDM vol. 2 "WRMSR", vol. 4):
 * unknown MSR, reserved bits set, or a non-canonical address in
 * FS_BASE/GS_BASE/KERNEL_GS_BASE/LSTAR/CSTAR/SYSENTER_ESP/SYSENTER_EIP ->
 * #GP(0). EFER: bits other than SCE/LME/NXE (LMA is read-only and kept)
 * -> #GP(0); changing LME while CR0.PG = 1 -> #GP(0); an NXE change
 * flushes the TLB. TSC: sets `tscOffset` so the TSC reads the value now.
 */
export function writeMsr(cpu: CpuInternals, index: number, lo: number, hi: number): void {
  const s = cpu.state;
  lo |= 0;
  hi |= 0;
  const canonical = isCanonical(lo, hi);
  switch (index >>> 0) {
    case Msr.TSC:
      cpu.tscOffset = toNumber(lo, hi) - s.instructionsRetired * cpu.tscPerInstruction;
      break;
    case Msr.APIC_BASE:
      // Bits 0-7, 9, 10 (no x2APIC) and above the physical width are reserved.
      if (lo & 0x6ff || hi >>> (CR3_PHYS_BITS - 32)) cpu.fault(Vector.GP, 0);
      s.apicBaseLo = lo;
      s.apicBaseHi = hi;
      break;
    case Msr.BIOS_SIGN_ID:
      break;
    case Msr.SYSENTER_CS:
      s.sysenterCs = lo & 0xffff;
      break;
    case Msr.SYSENTER_ESP:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.sysenterEspLo = lo;
      s.sysenterEspHi = hi;
      break;
    case Msr.SYSENTER_EIP:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.sysenterEipLo = lo;
      s.sysenterEipHi = hi;
      break;
    case Msr.MISC_ENABLE:
      s.miscEnableLo = lo;
      s.miscEnableHi = hi;
      break;
    case Msr.PAT:
      if (!patValid(lo, hi)) cpu.fault(Vector.GP, 0);
      s.patLo = lo;
      s.patHi = hi;
      cpu.flushTlb(true);
      break;
    case Msr.EFER: {
      if (hi !== 0 || lo & ~(Efer.SCE | Efer.LME | Efer.LMA | Efer.NXE)) cpu.fault(Vector.GP, 0);
      const old = s.efer;
      if ((old ^ lo) & Efer.LME && s.cr0 & Cr0.PG) cpu.fault(Vector.GP, 0);
      s.efer = (lo & ~Efer.LMA) | (old & Efer.LMA);
      if ((old ^ lo) & Efer.NXE) cpu.flushTlb(true);
      cpu.stateChanged();
      break;
    }
    case Msr.STAR:
      s.starLo = lo;
      s.starHi = hi;
      break;
    case Msr.LSTAR:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.lstarLo = lo;
      s.lstarHi = hi;
      break;
    case Msr.CSTAR:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.cstarLo = lo;
      s.cstarHi = hi;
      break;
    case Msr.FMASK:
      if (hi !== 0) cpu.fault(Vector.GP, 0);
      s.sfmask = lo;
      break;
    case Msr.FS_BASE:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.segBaseLo[Seg.FS] = lo;
      s.segBaseHi[Seg.FS] = hi;
      cpu.stateChanged();
      break;
    case Msr.GS_BASE:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.segBaseLo[Seg.GS] = lo;
      s.segBaseHi[Seg.GS] = hi;
      cpu.stateChanged();
      break;
    case Msr.KERNEL_GS_BASE:
      if (!canonical) cpu.fault(Vector.GP, 0);
      s.kernelGsBaseLo = lo;
      s.kernelGsBaseHi = hi;
      break;
    case Msr.TSC_AUX:
      if (hi !== 0) cpu.fault(Vector.GP, 0);
      s.tscAux = lo;
      break;
    default:
      cpu.fault(Vector.GP, 0);
  }
}

/** RDMSR (SDM vol. 2 "RDMSR"): CPL != 0 -> privileged exit / #GP(0); EDX:EAX := MSR[ECX]. */
function rdmsr(cpu: CpuInternals): void {
  requireCpl0(cpu, PrivOp.RDMSR);
  const s = cpu.state;
  const lo = readMsr(cpu, s.gprLo[Reg.RCX]);
  setReg32(cpu, Reg.RAX, lo);
  setReg32(cpu, Reg.RDX, cpu.tmpHi);
}

/** WRMSR (SDM vol. 2 "WRMSR"): CPL != 0 -> privileged exit / #GP(0); MSR[ECX] := EDX:EAX. */
function wrmsr(cpu: CpuInternals): void {
  requireCpl0(cpu, PrivOp.WRMSR);
  const s = cpu.state;
  writeMsr(cpu, s.gprLo[Reg.RCX], s.gprLo[Reg.RAX], s.gprLo[Reg.RDX]);
}

// ---------------------------------------------------------------------------
// TSC, CPUID, HLT, interrupts flag, cache and TLB instructions
// ---------------------------------------------------------------------------

/** RDTSC (SDM vol. 2 "RDTSC"): CR4.TSD with CPL > 0 -> privileged exit / #GP(0); EDX:EAX := TSC. */
function rdtsc(cpu: CpuInternals): void {
  const s = cpu.state;
  if (s.cr4 & Cr4.TSD && s.cr0 & Cr0.PE && (s.cpl !== 0 || cpu.getRflags() & Flag.VM)) {
    cpu.privileged(PrivOp.RDTSC);
  }
  const v = tscValue(cpu);
  setReg32(cpu, Reg.RAX, v % 0x100000000);
  setReg32(cpu, Reg.RDX, Math.floor(v / 0x100000000));
}

/** RDTSCP: as RDTSC, plus ECX := IA32_TSC_AUX. */
function rdtscp(cpu: CpuInternals): void {
  rdtsc(cpu);
  setReg32(cpu, Reg.RCX, cpu.state.tscAux);
}

/**
 * RDPMC (SDM vol. 2 "RDPMC"): CR4.PCE = 0 with CPL > 0 -> privileged exit /
 * #GP(0). The engine has no performance counters, so every ECX is invalid:
 * #GP(0).
 */
function rdpmc(cpu: CpuInternals): void {
  const s = cpu.state;
  if ((s.cr4 & Cr4.PCE) === 0 && s.cr0 & Cr0.PE && (s.cpl !== 0 || cpu.getRflags() & Flag.VM)) {
    cpu.privileged(PrivOp.RDPMC);
  }
  cpu.fault(Vector.GP, 0);
}

/** CPUID (SDM vol. 2 "CPUID"): EAX/EBX/ECX/EDX := `cpu.cpuid.leaf(EAX, ECX, CR4)`, zero-extended. */
function cpuid(cpu: CpuInternals): void {
  const s = cpu.state;
  const r = cpu.cpuid.leaf(s.gprLo[Reg.RAX] >>> 0, s.gprLo[Reg.RCX] >>> 0, s.cr4);
  setReg32(cpu, Reg.RAX, r.eax);
  setReg32(cpu, Reg.RBX, r.ebx);
  setReg32(cpu, Reg.RCX, r.ecx);
  setReg32(cpu, Reg.RDX, r.edx);
}

/**
 * XGETBV (SDM vol. 2 "XGETBV"): #UD when CR4.OSXSAVE = 0 or with a 66/F2/F3
 * prefix; ECX = 0: EDX:EAX := XCR0; ECX = 1 (CPUID.(EAX=0DH,ECX=1):EAX[2]):
 * EDX:EAX := XCR0 AND XINUSE; any other ECX: #GP(0). Any CPL. RAX/RDX
 * upper halves cleared in 64-bit mode.
 */
function xgetbv(cpu: CpuInternals, prefixed: boolean): number {
  const s = cpu.state;
  if (prefixed || !(s.cr4 & Cr4.OSXSAVE)) cpu.fault(Vector.UD, -1);
  const ecx = s.gprLo[Reg.RCX] >>> 0;
  if (ecx > 1) cpu.fault(Vector.GP, 0);
  const v = ecx === 0 ? s.xcr0 : s.xcr0 & xinuse(s, in64BitMode(cpu) ? 16 : 8);
  setReg32(cpu, Reg.RAX, v);
  setReg32(cpu, Reg.RDX, 0);
  return 1;
}

/**
 * XSETBV (SDM vol. 2 "XSETBV", vol. 1 §13.3): #UD when CR4.OSXSAVE = 0 or
 * with a 66/F2/F3 prefix; CPL != 0 (or virtual-8086 mode) -> privileged exit
 * (PrivOp.XSETBV) / #GP(0); ECX != 0 -> #GP(0); EDX:EAX must have bit 0
 * (x87) set and no bit outside the supported XCR0 (x87|SSE,
 * CPUID.(EAX=0DH,ECX=0):EDX:EAX), else #GP(0).
 */
function xsetbv(cpu: CpuInternals, prefixed: boolean): number {
  const s = cpu.state;
  if (prefixed || !(s.cr4 & Cr4.OSXSAVE)) cpu.fault(Vector.UD, -1);
  if (s.cpl !== 0 || cpu.getRflags() & Flag.VM) cpu.privileged(PrivOp.XSETBV);
  if (s.gprLo[Reg.RCX] !== 0) cpu.fault(Vector.GP, 0);
  const lo = s.gprLo[Reg.RAX];
  if (s.gprLo[Reg.RDX] !== 0 || lo & ~XCR0_SUPPORTED || !(lo & 1)) cpu.fault(Vector.GP, 0);
  s.xcr0 = lo & XCR0_SUPPORTED;
  return 1;
}

/** HLT (SDM vol. 2 "HLT"): CPL != 0 -> privileged exit / #GP(0); sets `state.halted` (the core exits HALT). */
function hlt(cpu: CpuInternals): void {
  requireCpl0(cpu, PrivOp.HLT);
  cpu.state.halted = true;
}

/**
 * CLI/STI (SDM vol. 2 "CLI", "STI"): real mode, or protected mode with CPL
 * <= IOPL, or V86 mode with IOPL = 3, change IF; otherwise privileged exit
 * / #GP(0) (CR4.PVI/VME virtual-interrupt forms are not modelled). The STI
 * interrupt shadow is not modelled.
 */
function setIf(cpu: CpuInternals, on: boolean): void {
  const s = cpu.state;
  const fl = cpu.getRflags();
  if (s.cr0 & Cr0.PE) {
    const allowed = fl & Flag.VM ? iopl(fl) === 3 : s.cpl <= iopl(fl);
    if (!allowed) cpu.privileged(on ? PrivOp.STI : PrivOp.CLI);
  }
  cpu.setRflags(on ? fl | Flag.IF : fl & ~Flag.IF);
}

/** INVLPG (SDM vol. 2 "INVLPG"): CPL != 0 -> privileged exit (exitPrivLin = the address) / #GP(0); flushes that page. */
function invlpg(cpu: CpuInternals, linLo: number, linHi: number): void {
  cpu.exitPrivLinLo = linLo;
  cpu.exitPrivLinHi = linHi;
  requireCpl0(cpu, PrivOp.INVLPG);
  cpu.flushTlbPage(linLo, linHi);
}

// ---------------------------------------------------------------------------
// Port I/O
// ---------------------------------------------------------------------------

/**
 * IN/OUT/INS/OUTS permission (SDM vol. 1 §19.5): allowed when CR0.PE = 0,
 * or CPL <= IOPL outside V86 mode, or the TSS I/O bitmap clears every bit of
 * the accessed ports; otherwise a privileged exit (`op` = PrivOp.IN/OUT/INS/
 * OUTS) or #GP(0). `port` -1 means "the port in DX", read here. The core
 * fills exitPrivPort (-1 for the DX forms) and exitPrivSize before calling.
 */
function ioCheck(cpu: CpuInternals, op: number, port: number, size: number): void {
  const p = port < 0 ? cpu.state.gprLo[Reg.RDX] & 0xffff : port & 0xffff;
  if (ioPermitted(cpu, p, size)) return;
  cpu.privileged(op);
}

/** Port input through `cpu.ioRead` (default: all ones of `size` bytes). */
function portIn(cpu: CpuInternals, port: number, size: number): number {
  const mask = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  cpu.drHit |= cpu.matchIoBreakpoints(port, size); // I/O breakpoints (CR4.DE): #DB trap after the instruction
  const h = cpu.ioRead;
  if (!h) return mask | 0;
  return (h(port & 0xffff, size) & mask) | 0;
}

/** Port output through `cpu.ioWrite` (default: ignored). */
function portOut(cpu: CpuInternals, port: number, size: number, value: number): void {
  cpu.drHit |= cpu.matchIoBreakpoints(port, size);
  const h = cpu.ioWrite;
  if (!h) return;
  const mask = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
  h(port & 0xffff, size, (value & mask) >>> 0);
}

// ---------------------------------------------------------------------------
// Descriptor-table instructions
// ---------------------------------------------------------------------------

/** #UD outside protected mode and in V86 mode (LLDT, LTR, SLDT, STR, LAR, LSL, VERR, VERW). */
function requireProtected(cpu: CpuInternals): void {
  if (!isProtected(cpu) || cpu.getRflags() & Flag.VM) cpu.fault(Vector.UD, -1);
}

/**
 * LGDT/LIDT/SGDT/SIDT/LLDT/LTR (SDM vol. 2 pages of the same names).
 * LGDT/LIDT: CPL != 0 -> privileged exit (exitPrivLin = operand address) /
 * #GP(0); reads a 16-bit limit and a base (8 bytes in 64-bit mode, must be
 * canonical else #GP(0); else 4 bytes, 24 bits with a 16-bit operand).
 * SGDT/SIDT: store limit and base (8 bytes in 64-bit mode, else 4), any CPL.
 * LLDT/LTR: #UD outside protected mode; CPL != 0 -> privileged exit
 * (exitPrivLinLo = the selector) / #GP(0); then `loadLdtr` / `loadTr`.
 * Memory operands are accessed with the current CPL's privilege.
 */
function descriptorTableOp(cpu: CpuInternals, op: DescOp, lo: number, hi: number, opSize: number): void {
  const s = cpu.state;
  const user = s.cpl === 3;
  const w64 = in64BitMode(cpu);
  const lin = (off: number): void => {
    const t = (lo >>> 0) + off;
    linLo = t >>> 0;
    linHi = w64 ? (t > 0xffffffff ? hi + 1 : hi) | 0 : 0;
  };
  switch (op) {
    case DescOp.LGDT:
    case DescOp.LIDT: {
      cpu.exitPrivLinLo = lo;
      cpu.exitPrivLinHi = hi;
      requireCpl0(cpu, op === DescOp.LGDT ? PrivOp.LGDT : PrivOp.LIDT);
      lin(0);
      const limit = cpu.linRead16(linLo, linHi, user);
      lin(2);
      let bLo: number;
      let bHi = 0;
      if (w64) {
        bLo = cpu.linRead64(linLo, linHi, user);
        bHi = cpu.tmpHi | 0;
        if (!isCanonical(bLo, bHi)) cpu.fault(Vector.GP, 0);
      } else {
        bLo = cpu.linRead32(linLo, linHi, user);
        if (opSize === 2) bLo &= 0x00ffffff;
      }
      if (op === DescOp.LGDT) {
        s.gdtrLimit = limit;
        s.gdtrBaseLo = bLo | 0;
        s.gdtrBaseHi = bHi;
      } else {
        s.idtrLimit = limit;
        s.idtrBaseLo = bLo | 0;
        s.idtrBaseHi = bHi;
      }
      return;
    }
    case DescOp.SGDT:
    case DescOp.SIDT: {
      const g = op === DescOp.SGDT;
      lin(0);
      cpu.linWrite16(linLo, linHi, g ? s.gdtrLimit : s.idtrLimit, user);
      lin(2);
      if (w64)
        cpu.linWrite64(linLo, linHi, g ? s.gdtrBaseLo : s.idtrBaseLo, g ? s.gdtrBaseHi : s.idtrBaseHi, user);
      else cpu.linWrite32(linLo, linHi, g ? s.gdtrBaseLo : s.idtrBaseLo, user);
      return;
    }
    case DescOp.LLDT:
    case DescOp.LTR: {
      requireProtected(cpu);
      cpu.exitPrivLinLo = lo & 0xffff;
      cpu.exitPrivLinHi = 0;
      requireCpl0(cpu, op === DescOp.LLDT ? PrivOp.LLDT : PrivOp.LTR);
      if (op === DescOp.LLDT) loadLdtr(cpu, lo & 0xffff);
      else loadTr(cpu, lo & 0xffff);
      return;
    }
    default:
      cpu.fault(Vector.UD, -1);
  }
}

/** SLDT (SDM vol. 2 "SLDT"): the LDTR selector; #UD outside protected mode. */
function storeLdtr(cpu: CpuInternals): number {
  requireProtected(cpu);
  return cpu.state.segSel[Seg.LDTR];
}

/** STR (SDM vol. 2 "STR"): the TR selector; #UD outside protected mode. */
function storeTr(cpu: CpuInternals): number {
  requireProtected(cpu);
  return cpu.state.segSel[Seg.TR];
}

// ---------------------------------------------------------------------------
// The seam
// ---------------------------------------------------------------------------

/** The system operations the execution core dispatches to (see system-hooks.ts). */
export const systemOps: SystemOps = {
  loadSegment,
  tryLoadSegment,
  farJump,
  farCall,
  farReturn,
  iret,
  deliverInterrupt,
  nestedException,
  syscall,
  sysret,
  sysenter,
  sysexit,
  swapgs,
  movToCr,
  movFromCr,
  movToDr,
  movFromDr,
  rdmsr,
  wrmsr,
  ioCheck,
  in: portIn,
  out: portOut,
  descriptorTableOp,
  storeLdtr,
  storeTr,
  lar: (cpu, sel) => {
    requireProtected(cpu);
    return lar(cpu, sel);
  },
  lsl: (cpu, sel) => {
    requireProtected(cpu);
    return lsl(cpu, sel);
  },
  verr: (cpu, sel) => {
    requireProtected(cpu);
    return verify(cpu, sel, false);
  },
  verw: (cpu, sel) => {
    requireProtected(cpu);
    return verify(cpu, sel, true);
  },
  lmsw,
  smsw,
  cpuid,
  xgetbv,
  xsetbv,
  rdtsc,
  rdtscp,
  rdpmc,
  hlt,
  cli: (cpu) => setIf(cpu, false),
  sti: (cpu) => setIf(cpu, true),
  clts,
  invlpg,
  wbinvd: (cpu) => requireCpl0(cpu, PrivOp.WBINVD),
  invd: (cpu) => requireCpl0(cpu, PrivOp.INVD),
};
