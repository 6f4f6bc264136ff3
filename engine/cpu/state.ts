/**
 * Architectural state of one x86 logical processor (Intel SDM vol. 3).
 *
 * Shared contract between the CPU's parts (decoder/interpreter, paging,
 * segmentation and system instructions) and whoever drives the CPU (the Xen
 * model, the debugger). 64-bit quantities are kept as two 32-bit halves
 * (lo = bits 0-31, hi = bits 32-63, both stored as signed int32 views; read
 * with `>>> 0` for unsigned) so the hot path never needs BigInt.
 *
 * RFLAGS is NOT stored here: arithmetic flags are computed lazily by the
 * interpreter. Use `Cpu.getRflags()` / `Cpu.setRflags()`.
 */

/** General-purpose register numbers, in ModRM/REX encoding order. */
export const enum Reg {
  RAX = 0,
  RCX = 1,
  RDX = 2,
  RBX = 3,
  RSP = 4,
  RBP = 5,
  RSI = 6,
  RDI = 7,
  R8 = 8,
  R9 = 9,
  R10 = 10,
  R11 = 11,
  R12 = 12,
  R13 = 13,
  R14 = 14,
  R15 = 15,
}

/** Segment register numbers in the SDM's Sreg encoding, plus LDTR and TR caches. */
export const enum Seg {
  ES = 0,
  CS = 1,
  SS = 2,
  DS = 3,
  FS = 4,
  GS = 5,
  LDTR = 6,
  TR = 7,
}

export const REG_NAMES64 = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'ldtr', 'tr'];

/** RFLAGS bits (SDM vol. 1 §3.4.3). */
export const enum Flag {
  CF = 1 << 0,
  FIXED1 = 1 << 1,
  PF = 1 << 2,
  AF = 1 << 4,
  ZF = 1 << 6,
  SF = 1 << 7,
  TF = 1 << 8,
  IF = 1 << 9,
  DF = 1 << 10,
  OF = 1 << 11,
  IOPL = 3 << 12,
  NT = 1 << 14,
  RF = 1 << 16,
  VM = 1 << 17,
  AC = 1 << 18,
  VIF = 1 << 19,
  VIP = 1 << 20,
  ID = 1 << 21,
}

/** CR0 / CR4 / EFER bits used by the engine. */
export const enum Cr0 {
  PE = 1 << 0,
  MP = 1 << 1,
  EM = 1 << 2,
  TS = 1 << 3,
  ET = 1 << 4,
  NE = 1 << 5,
  WP = 1 << 16,
  AM = 1 << 18,
  NW = 1 << 29,
  CD = 1 << 30,
  PG = 1 << 31,
}
export const enum Cr4 {
  VME = 1 << 0,
  PVI = 1 << 1,
  TSD = 1 << 2,
  DE = 1 << 3,
  PSE = 1 << 4,
  PAE = 1 << 5,
  MCE = 1 << 6,
  PGE = 1 << 7,
  PCE = 1 << 8,
  OSFXSR = 1 << 9,
  OSXMMEXCPT = 1 << 10,
  UMIP = 1 << 11,
  FSGSBASE = 1 << 16,
  PCIDE = 1 << 17,
  OSXSAVE = 1 << 18,
  SMEP = 1 << 20,
  SMAP = 1 << 21,
}
export const enum Efer {
  SCE = 1 << 0,
  LME = 1 << 8,
  LMA = 1 << 10,
  NXE = 1 << 11,
}

/**
 * Segment attribute word as kept in `CpuState.segAttr`: bits 0-7 = descriptor
 * access byte (type[3:0], S, DPL[1:0], P), bits 8-11 = descriptor flags nibble
 * (AVL, L, D/B, G), bit 16 = "unusable" (null selector loaded).
 */
export const enum SegAttr {
  TYPE_MASK = 0xf,
  ACCESSED = 1 << 0,
  S = 1 << 4,
  DPL_SHIFT = 5,
  P = 1 << 7,
  AVL = 1 << 8,
  L = 1 << 9,
  DB = 1 << 10,
  G = 1 << 11,
  UNUSABLE = 1 << 16,
}

/** Processor mode, derived from CR0.PE, EFER.LMA, CS.L, CS.D and RFLAGS.VM. */
export const enum CpuMode {
  REAL = 0,
  PROT16 = 1,
  PROT32 = 2,
  /** IA-32e compatibility mode with a 16-bit CS. */
  COMPAT16 = 3,
  /** IA-32e compatibility mode with a 32-bit CS. */
  COMPAT32 = 4,
  LONG64 = 5,
  V86 = 6,
}

/** Architectural exception vectors (SDM vol. 3 table 6-1). */
export const enum Vector {
  DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OF = 4,
  BR = 5,
  UD = 6,
  NM = 7,
  DF = 8,
  TS = 10,
  NP = 11,
  SS = 12,
  GP = 13,
  PF = 14,
  MF = 16,
  AC = 17,
  MC = 18,
  XM = 19,
}

/** Page-fault error-code bits (SDM vol. 3 §4.7). */
export const enum PfErr {
  P = 1 << 0,
  W = 1 << 1,
  U = 1 << 2,
  RSVD = 1 << 3,
  I = 1 << 4,
}

/** Plain architectural state. Owned by `Cpu`; drivers may read and write it between `run` calls. */
export class CpuState {
  /** GPR bits 0-31, indexed by `Reg`. */
  readonly gprLo = new Int32Array(16);
  /** GPR bits 32-63. Writes of 32-bit results zero this half, as in 64-bit mode. */
  readonly gprHi = new Int32Array(16);
  ripLo = 0;
  ripHi = 0;

  /** Visible selectors, indexed by `Seg` (ES..GS, LDTR, TR). */
  readonly segSel = new Uint16Array(8);
  /** Hidden descriptor caches: base (two halves; hi used for FS/GS/LDTR/TR in long mode), limit in bytes, attributes (`SegAttr`). */
  readonly segBaseLo = new Int32Array(8);
  readonly segBaseHi = new Int32Array(8);
  readonly segLimit = new Uint32Array(8);
  readonly segAttr = new Int32Array(8);

  gdtrBaseLo = 0;
  gdtrBaseHi = 0;
  gdtrLimit = 0xffff;
  idtrBaseLo = 0;
  idtrBaseHi = 0;
  idtrLimit = 0xffff;

  /** Current privilege level (0-3); equal to CS.RPL outside real mode transitions. */
  cpl = 0;

  cr0 = 0x60000010;
  cr2Lo = 0;
  cr2Hi = 0;
  cr3Lo = 0;
  cr3Hi = 0;
  cr4 = 0;
  cr8 = 0;
  efer = 0;

  /** DR0-DR3 as halves, DR6, DR7 (lo only). */
  readonly drLo = new Int32Array(4);
  readonly drHi = new Int32Array(4);
  dr6 = 0xffff0ff0 | 0;
  dr7 = 0x400;

  // MSRs the engine models (values as halves where 64-bit).
  kernelGsBaseLo = 0;
  kernelGsBaseHi = 0;
  starLo = 0;
  starHi = 0;
  lstarLo = 0;
  lstarHi = 0;
  cstarLo = 0;
  cstarHi = 0;
  sfmask = 0;
  sysenterCs = 0;
  sysenterEspLo = 0;
  sysenterEspHi = 0;
  sysenterEipLo = 0;
  sysenterEipHi = 0;
  tscAux = 0;
  patLo = 0x00070406;
  patHi = 0x00070406;
  apicBaseLo = 0xfee00900 | 0;
  apicBaseHi = 0;
  /** IA32_MISC_ENABLE (0x1A0): fast strings (bit 0), BTS/PEBS unavailable (bits 11, 12). */
  miscEnableLo = 0x1801;
  miscEnableHi = 0;

  // ---- x87 FPU (Intel SDM vol. 1 ch. 8) ----
  /**
   * Physical x87 data registers R0-R7 (not ST(i): ST(i) is R[(TOP + i) & 7]).
   * Each is an 80-bit extended value: the 64-bit significand as halves
   * (`fpSigHi` bit 31 is the explicit integer bit) and `fpSe`, the sign
   * (bit 15) and biased exponent (bits 0-14). MMX register MMi aliases the
   * significand of Ri (SDM vol. 1 §9.5).
   */
  readonly fpSigLo = new Int32Array(8);
  readonly fpSigHi = new Int32Array(8);
  readonly fpSe = new Uint16Array(8);
  /** FPU control word (FNINIT value 0x037F: all exceptions masked, 64-bit precision, round to nearest). */
  fpuCw = 0x037f;
  /** FPU status word, TOP included in bits 11-13 (SDM vol. 1 §8.1.3). */
  fpuSw = 0;
  /** Full FPU tag word, 2 bits per physical register Ri: 00 valid, 01 zero, 10 special, 11 empty. */
  fpuTw = 0xffff;
  /** Last x87 opcode (11 bits: low 3 bits of the first opcode byte, then the ModRM byte). */
  fpuFop = 0;
  /** Last x87 instruction pointer (offset halves + CS selector) and data pointer (offset halves + DS selector). */
  fpuIpLo = 0;
  fpuIpHi = 0;
  fpuCs = 0;
  fpuDpLo = 0;
  fpuDpHi = 0;
  fpuDs = 0;

  // ---- SSE (Intel SDM vol. 1 ch. 10-12) ----
  /**
   * XMM0-XMM15, four 32-bit lanes each: XMMn lane k (bits 32k..32k+31) is
   * `xmm[n * 4 + k]`. `xmmF32` / `xmmF64` / `xmmU8` view the same bytes
   * (little-endian, as every x86 host running Node is).
   */
  readonly xmm = new Int32Array(64);
  readonly xmmF32 = new Float32Array(this.xmm.buffer);
  readonly xmmF64 = new Float64Array(this.xmm.buffer);
  readonly xmmU8 = new Uint8Array(this.xmm.buffer);
  /** MXCSR (reset 0x1F80: all exceptions masked, round to nearest, no DAZ/FTZ). */
  mxcsr = 0x1f80;
  /** XCR0 (XFEATURE_ENABLED_MASK) low half; bit 0 (x87) is always set. High half is always 0 here. */
  xcr0 = 1;
  /**
   * XINUSE bits the XSAVE family tracks (SDM vol. 1 §13.6): bit 0 x87, bit 1
   * SSE. Set when FXRSTOR/XRSTOR load the component, cleared when XRSTOR
   * initialises it; engine/cpu/fpu/xsave.ts `xinuse()` ORs in every
   * component that is not in its initial configuration, so other
   * instructions need not update it.
   */
  xinuse = 0;

  /** Set by HLT; cleared when an interrupt/event is delivered. */
  halted = false;
  /** Instructions retired since reset (exact integer up to 2^53). */
  instructionsRetired = 0;
}
