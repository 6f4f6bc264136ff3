/**
 * Engine side of the CPU differential tests: a bare test machine (no Xen)
 * with flat segments and identity paging, in 64-bit long mode or 32-bit
 * protected mode with PAE paging, running at CPL 0 with every exception
 * intercepted. Linear = machine address for the first `IDENTITY_BYTES`.
 *
 * Built only through the CPU's public contract (engine/cpu/api.ts,
 * state.ts): `new Cpu(mem)`, CR0/CR3/CR4/EFER in `state`, `setSegmentRaw`,
 * `stateChanged`, `run`.
 *
 * Page tables (4 KiB pages, all present + writable + user) live above the
 * identity-mapped range, so nothing a case does can reach them.
 */
import { Cpu } from '../../engine/cpu/cpu';
import { ExitReason } from '../../engine/cpu/api';
import { MachineMemory } from '../../engine/memory/machine-memory';
import { fxrstorImage, fxsaveImage } from '../../engine/cpu/fpu/xsave';
import {
  diffFxImage,
  scratchInit,
  CODE_BASE,
  GS_BASE64,
  SCRATCH_BASE,
  SCRATCH_SIZE,
  SIG,
  type Bitness,
  type FxFieldName,
  type NativeBatch,
  type NativeInput,
  type NativeOutcome,
} from './native-harness';
import { engineExpectation } from './vendor-table';

/** Bytes identity-mapped from linear 0. */
export const IDENTITY_BYTES = 16 << 20;
const PT_BASE = IDENTITY_BYTES; // page-table frames start here (machine address)

/** Segment attribute words (`SegAttr`): P, S, DPL 0, type; L / D/B / G in bits 8-11. */
const CODE64 = 0x9b | 0x200 | 0x800;
const CODE32 = 0x9b | 0x400 | 0x800;
const CODE16 = 0x9b | 0x800;
const DATA32 = 0x93 | 0x400 | 0x800;
/** DPL field of a segment attribute word. */
const DPL3 = 3 << 5;

export interface TestMachine {
  cpu: Cpu;
  mem: MachineMemory;
  bitness: Bitness;
}

/**
 * Creates a CPL-0 flat machine of `bitness` (64: IA-32e 64-bit mode; 32:
 * protected mode, PAE paging) with `IDENTITY_BYTES` of identity-mapped RAM
 * and `interceptExceptions` = all vectors (64-bit: CS/DS/ES/SS hidden bases
 * are junk, which 64-bit mode ignores, and GS base = `GS_BASE64`, as in the
 * native harness); the 4 KiB pages at the linear
 * addresses in `unmapped` are not present. See `resetSegments` for 16-bit
 * code and CPL 3.
 */
export function createMachine(bitness: Bitness, unmapped: number[] = []): TestMachine {
  const ptFrames = 16;
  const mem = new MachineMemory(IDENTITY_BYTES / 4096 + ptFrames);
  const cpu = new Cpu(mem);
  const s = cpu.state;
  const nPt = IDENTITY_BYTES / (2 << 20); // page tables, 512 entries x 4 KiB each
  const ptAddr = (i: number) => PT_BASE + 0x3000 + i * 0x1000;
  for (let i = 0; i < nPt; i++) {
    for (let e = 0; e < 512; e++) {
      const frame = (i * 512 + e) * 0x1000;
      mem.write64(ptAddr(i) + e * 8, frame | 0x7, 0);
    }
  }
  // Pages left not-present (page-fault cases).
  for (const lin of unmapped)
    mem.write64(ptAddr(Math.floor(lin / (2 << 20))) + ((lin >>> 12) & 511) * 8, 0, 0);
  const pd = PT_BASE + 0x2000;
  for (let i = 0; i < nPt; i++) mem.write64(pd + i * 8, ptAddr(i) | 0x7, 0);
  const pdpt = PT_BASE + 0x1000;
  if (bitness === 64) {
    const pml4 = PT_BASE;
    mem.write64(pml4, pdpt | 0x7, 0);
    mem.write64(pdpt, pd | 0x7, 0);
    s.cr3Lo = pml4;
    s.efer = 0x100 | 0x400 | 0x1; // LME, LMA, SCE
  } else {
    // PAE PDPTEs: only P (bit 0) is allowed among the low control bits.
    mem.write64(pdpt, pd | 0x1, 0);
    s.cr3Lo = pdpt;
    s.efer = 0;
  }
  // PAE, OSFXSR, OSXMMEXCPT, OSXSAVE: as Linux runs the native side; XCR0 = x87 | SSE
  s.cr4 = 0x20 | 0x200 | 0x400 | 0x40000;
  s.xcr0 = 3;
  s.cr0 = 0x80000000 | 0x1 | 0x2 | 0x10 | 0x20; // PG, PE, MP, ET, NE
  s.cpl = 0;
  resetSegments(cpu, bitness, 0);
  if (bitness === 64) {
    // 64-bit mode ignores the bases of CS, DS, ES and SS (SDM vol. 3 §3.4.4): give them junk to prove it.
    for (const seg of [0, 1, 2, 3]) {
      const st = cpu.state;
      cpu.setSegmentRaw(seg, st.segSel[seg], 0x12345000, 0, st.segLimit[seg], st.segAttr[seg]);
    }
    cpu.setSegmentRaw(5, 0, GS_BASE64, 0, 0xffffffff, DATA32);
  }
  cpu.interceptExceptions = -1;
  cpu.stateChanged();
  cpu.flushCodeCache();
  return { cpu, mem, bitness };
}

/**
 * Loads flat segments (base 0, limit 4 GiB) for code of `codeBits` (16, 32,
 * 64) at privilege level `cpl` (0 or 3): CS = 0x08|cpl, data = 0x10|cpl.
 */
export function resetSegments(cpu: Cpu, codeBits: 16 | 32 | 64, cpl: 0 | 3): void {
  const dpl = cpl === 3 ? DPL3 : 0;
  const code = codeBits === 64 ? CODE64 : codeBits === 32 ? CODE32 : CODE16;
  for (const seg of [0, 2, 3, 4, 5]) cpu.setSegmentRaw(seg, 0x10 | cpl, 0, 0, 0xffffffff, DATA32 | dpl);
  cpu.setSegmentRaw(1, 0x08 | cpl, 0, 0, 0xffffffff, code | dpl);
  cpu.state.cpl = cpl;
  cpu.stateChanged();
}

/** Sets GPR `i` from a BigInt (64-bit two's complement). */
export function setGpr(cpu: Cpu, i: number, v: bigint): void {
  cpu.state.gprLo[i] = Number(v & 0xffffffffn) | 0;
  cpu.state.gprHi[i] = Number((v >> 32n) & 0xffffffffn) | 0;
}

/** GPR `i` as an unsigned 64-bit BigInt. */
export function getGpr(cpu: Cpu, i: number): bigint {
  return (BigInt(cpu.state.gprHi[i] >>> 0) << 32n) | BigInt(cpu.state.gprLo[i] >>> 0);
}

/** RIP as an unsigned BigInt. */
export function getRip(cpu: Cpu): bigint {
  return (BigInt(cpu.state.ripHi >>> 0) << 32n) | BigInt(cpu.state.ripLo >>> 0);
}

/** Names of ExitReason values for messages. */
export const EXIT_NAMES = [
  'BUDGET',
  'EXCEPTION',
  'SOFT_INT',
  'SYSCALL',
  'SYSENTER',
  'PRIVILEGED',
  'HALT',
  'BREAKPOINT',
  'WATCH',
  'SHUTDOWN',
  'STOP_REQUESTED',
  'STEP',
];

/** Result of `runUntilExit`. */
export interface RunResult {
  exit: number;
  /** Exception vector when exit = EXCEPTION. */
  vector: number;
  /** A JS error escaped the engine (always a bug). */
  thrown?: string;
}

/**
 * Runs until an exit other than BUDGET, at most `maxInsns` instructions.
 * Never throws: a JS error from the engine is returned in `thrown`.
 */
export function runUntilExit(cpu: Cpu, maxInsns = 100000): RunResult {
  let left = maxInsns;
  try {
    while (left > 0) {
      const slice = Math.min(left, 10000);
      const before = cpu.state.instructionsRetired;
      const r = cpu.run(slice);
      if (r !== ExitReason.BUDGET) return { exit: r, vector: cpu.exitVector };
      left -= Math.max(1, cpu.state.instructionsRetired - before);
    }
    return { exit: ExitReason.BUDGET, vector: -1 };
  } catch (e) {
    return { exit: -1, vector: -1, thrown: (e as Error)?.stack ?? String(e) };
  }
}

/**
 * Loads a 512-byte FXSAVE image into the engine's x87/SSE state with the
 * engine's own FXRSTOR code (engine/cpu/fpu/xsave.ts `fxrstorImage`): the
 * 64-bit layout (FXRSTOR64) and XMM0-15 for 64-bit machines, the 32-bit
 * layout and XMM0-7 otherwise.
 * @throws Error when the image's MXCSR sets reserved bits (FXRSTOR would #GP).
 */
export function loadFxImage(m: TestMachine, img: Uint8Array): void {
  const ok = fxrstorImage(m.cpu.state, img, 0, m.bitness === 64, m.bitness === 64 ? 16 : 8);
  if (!ok) throw new Error('FXSAVE image: MXCSR sets reserved bits');
  m.cpu.state.xinuse = 3; // as the native side's FXRSTOR: both components loaded (SDM vol. 1 §13.6)
}

/**
 * The engine's FXSAVE image (engine/cpu/fpu/xsave.ts `fxsaveImage`, layout
 * as `loadFxImage`); bytes the instruction does not write (XMM8-15 area in
 * 32-bit, 416-511) are 0.
 */
export function saveFxImage(m: TestMachine): Uint8Array {
  const b = new Uint8Array(512);
  fxsaveImage(m.cpu.state, b, 0, m.bitness === 64, m.bitness === 64 ? 16 : 8);
  return b;
}

/**
 * Copies a batch's code into the machine at `CODE_BASE`, with every case's
 * trailing jump back to the native driver replaced by INT3 (the engine stops
 * there). Call once per batch before `runEngineCase`.
 */
export function loadBatch(m: TestMachine, batch: NativeBatch): void {
  const code = batch.code.slice();
  for (const e of batch.caseEnd) code[e - CODE_BASE] = 0xcc;
  m.mem.writeBytes(CODE_BASE, code);
  m.cpu.flushCodeCache();
}

/** What the engine did with one case (`runEngineCase`). */
export interface EngineOutcome {
  /** 'ok': reached the case's end; 'exception': stopped on another exception; 'other': any other exit or a JS error. */
  kind: 'ok' | 'exception' | 'other';
  /** Exception vector (kind 'exception'). */
  vector: number;
  /** RIP where the engine stopped (the faulting instruction for faults). */
  rip: bigint;
  /** CR2 of the exit (for #PF). */
  cr2: bigint;
  regs: bigint[];
  rflags: number;
  /** Scratch bytes that differ from the initial fill: offset -> byte. */
  memDiff: Map<number, number>;
  /** FXSAVE image after the case (or at the fault), when the input had `fpu`. */
  fpu?: Uint8Array;
  /** Text for messages: exit name, vector, RIP, exitDetail, thrown error. */
  text: string;
}

/**
 * Runs case `index` of a loaded batch (`loadBatch`) in the engine with the
 * same inputs the native side got (`NativeInput`: registers, RFLAGS,
 * scratch fill, and the FXSAVE image `fpu` loaded with `loadFxImage`).
 * Never throws for engine errors (kind 'other' with the error in `text`).
 */
export function runEngineCase(
  m: TestMachine,
  batch: NativeBatch,
  index: number,
  inp: NativeInput,
): EngineOutcome {
  const { cpu, mem } = m;
  const nregs = m.bitness === 64 ? 16 : 8;
  const init = scratchInit(inp.memSeed, inp.memPatch);
  mem.writeBytes(SCRATCH_BASE, init);
  for (let i = 0; i < 16; i++) setGpr(cpu, i, i < nregs ? inp.regs[i] : 0n);
  if (inp.fpu) loadFxImage(m, inp.fpu);
  cpu.state.ripLo = batch.caseStart[index];
  cpu.state.ripHi = 0;
  cpu.setRflags(inp.rflags);
  cpu.state.halted = false;
  const r = runUntilExit(cpu, 100000);
  const rip = getRip(cpu);
  const now = mem.readBytes(SCRATCH_BASE, SCRATCH_SIZE);
  const memDiff = new Map<number, number>();
  for (let i = 0; i < SCRATCH_SIZE; i++) if (now[i] !== init[i]) memDiff.set(i, now[i]);
  const end = BigInt(batch.caseEnd[index] + 1);
  let kind: EngineOutcome['kind'] = 'other';
  if (!r.thrown && r.exit === ExitReason.EXCEPTION) kind = r.vector === 3 && rip === end ? 'ok' : 'exception';
  const text = r.thrown
    ? `engine threw: ${r.thrown.split('\n').slice(0, 3).join(' | ')}`
    : `${EXIT_NAMES[r.exit] ?? r.exit}${r.exit === ExitReason.EXCEPTION ? ` vector ${r.vector}` : ''} at rip 0x${rip.toString(16)}${cpu.exitDetail ? ` (${cpu.exitDetail})` : ''}`;
  return {
    kind,
    vector: r.vector,
    rip: kind === 'ok' ? BigInt(batch.caseEnd[index]) : rip,
    cr2: (BigInt(cpu.exitCr2Hi >>> 0) << 32n) | BigInt(cpu.exitCr2Lo >>> 0),
    regs: Array.from({ length: nregs }, (_, i) => getGpr(cpu, i)),
    rflags: cpu.getRflags(),
    memDiff,
    ...(inp.fpu ? { fpu: saveFxImage(m) } : {}),
    text,
  };
}

/** Exception vectors the engine may raise for a host signal (SIGFPE: #DE, #MF, #XM; SIGSEGV: #SS #GP #PF; ...). */
export function vectorsForSignal(sig: number): number[] {
  switch (sig) {
    case SIG.SIGFPE:
      return [0, 16, 19];
    case SIG.SIGILL:
      return [6];
    case SIG.SIGSEGV:
      return [12, 13, 14];
    case SIG.SIGBUS:
      return [12, 13, 17];
    case SIG.SIGTRAP:
      return [1, 3];
    default:
      return [];
  }
}

/** What `diffOutcome` leaves out. */
export interface DiffOptions {
  /** RFLAGS bits compared (default: CF PF AF ZF SF DF OF). */
  flagMask?: number;
  /** Registers not compared (bit i = register i). */
  undefRegs?: number;
  /** FXSAVE fields not compared (e.g. ['fip', 'fdp'] where the SDM leaves them undefined). */
  fpuIgnore?: FxFieldName[];
}

/**
 * Compares a host outcome with the engine's: the same end (case end, or the
 * matching exception at the same RIP and, for #PF, CR2), every GPR, the
 * compared flags, the scratch memory and, when both carry one, the FXSAVE
 * image (`diffFxImage`, layout by bitness; in 32-bit runs FCS/FDS are never
 * compared: the host's user selectors differ from the test machine's, and at
 * a fault the kernel's fpstate has the 64-bit layout).
 * @returns one line per difference (empty when they agree).
 */
export function diffOutcome(
  bitness: Bitness,
  host: NativeOutcome,
  eng: EngineOutcome,
  opt: DiffOptions = {},
): string[] {
  const out: string[] = [];
  const nregs = bitness === 64 ? 16 : 8;
  const wmask = bitness === 64 ? (1n << 64n) - 1n : 0xffffffffn;
  const flagMask = opt.flagMask ?? 0xcd5;
  if (host.kind === 'signal') {
    const vectors = vectorsForSignal(host.signal);
    if (eng.kind !== 'exception' || !vectors.includes(eng.vector) || eng.rip !== host.rip) {
      out.push(
        `want exception ${vectors.join('/')} at rip 0x${host.rip.toString(16)} (signal ${host.signal}), engine: ${eng.text}`,
      );
      return out;
    }
    if (eng.vector === 14 && eng.cr2 !== host.addr)
      out.push(`#PF address: want 0x${host.addr.toString(16)} got 0x${eng.cr2.toString(16)}`);
  } else if (eng.kind !== 'ok') {
    out.push(`want the case to reach its end, engine: ${eng.text}`);
    return out;
  }
  for (let i = 0; i < nregs; i++) {
    if ((opt.undefRegs ?? 0) & (1 << i)) continue;
    if ((host.regs[i] & wmask) !== (eng.regs[i] & wmask))
      out.push(
        `reg${i}: want ${(host.regs[i] & wmask).toString(16)} got ${(eng.regs[i] & wmask).toString(16)}`,
      );
  }
  if ((host.rflags & flagMask) !== (eng.rflags & flagMask))
    out.push(
      `rflags: want ${(host.rflags & flagMask).toString(16)} got ${(eng.rflags & flagMask).toString(16)}`,
    );
  const offs = new Set([...host.memDiff.keys(), ...eng.memDiff.keys()]);
  for (const o of [...offs].sort((a, b) => a - b)) {
    if (host.memDiff.get(o) !== eng.memDiff.get(o)) {
      out.push(
        `mem[+${o.toString(16)}]: want ${host.memDiff.get(o)?.toString(16) ?? 'unchanged'} got ${eng.memDiff.get(o)?.toString(16) ?? 'unchanged'}`,
      );
      if (out.length > 12) break;
    }
  }
  if (host.fpu && eng.fpu) {
    const ignore: FxFieldName[] = [...(opt.fpuIgnore ?? [])];
    if (bitness === 32) ignore.push('fcs', 'fds');
    out.push(...diffFxImage(host.fpu, eng.fpu, bitness, ignore));
  } else if (host.fpu || eng.fpu) out.push('FXSAVE image on one side only');
  return out;
}

/** Options of `checkCase`: what `diffOutcome` leaves out, and the vendor-table rows of the case. */
export interface CheckOptions extends DiffOptions {
  /** Ids of rows in test/helpers/vendor-table.ts `VENDOR_ROWS` that apply to this case (rows marked `everyFpuCase` apply anyway). */
  vendorRows?: string[];
  /** The engine's documented FIP/FDP/FOP after the case, for the `x87-error-pointers` row (default: the input image's). */
  x87Pointers?: { fip: bigint; fdp: bigint; fop: number };
  /** Scratch offsets where the body stores FXSAVE images (the FXSAVE vendor rows apply to those bytes too). */
  fxsaveAt?: number[];
  /** XSAVE-family images the body stores, with the legacy parts written (the FXSAVE vendor rows patch only those). */
  xsaveAt?: Array<{ at: number; x87: boolean; mxcsr: boolean }>;
  /** The engine's documented CR2, for the `wide-pf-cr2` row. */
  cr2?: bigint;
}

/**
 * Runs case `index` in the engine (`runEngineCase`) and compares it with the
 * host's outcome after the vendor table has put in the engine vendor's
 * documented values where the host is another vendor (`engineExpectation`).
 * The one call a differential test needs per case.
 * @returns one line per difference (empty when the engine agrees).
 */
export function checkCase(
  m: TestMachine,
  batch: NativeBatch,
  index: number,
  input: NativeInput,
  host: NativeOutcome,
  opt: CheckOptions = {},
): string[] {
  const eng = runEngineCase(m, batch, index, input);
  const want = engineExpectation(
    host,
    {
      bitness: m.bitness,
      input,
      caseStart: batch.caseStart[index],
      x87Pointers: opt.x87Pointers,
      fxsaveAt: opt.fxsaveAt,
      xsaveAt: opt.xsaveAt,
      cr2: opt.cr2,
      initial: scratchInit(input.memSeed, input.memPatch),
    },
    opt.vendorRows,
  );
  return diffOutcome(m.bitness, want, eng, opt);
}
