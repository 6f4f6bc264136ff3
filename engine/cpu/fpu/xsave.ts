/**
 * FXSAVE/FXRSTOR, LDMXCSR/STMXCSR, XSAVE/XSAVEOPT/XSAVEC/XRSTOR (0F AE /0-/6,
 * 0F C7 /3-/5) (Intel SDM vol. 1 ch. 13, vol. 2 "FXSAVE", "XSAVE").
 *
 * The 512-byte FXSAVE image (SDM vol. 2 FXSAVE tables 3-43, 3-46, 3-47):
 *   0 FCW, 2 FSW, 4 abridged FTW (bit i = physical Ri not empty), 5 reserved, 6 FOP (11 bits),
 *   8 FIP: 64-bit format (REX.W) 8 bytes; 32-bit format 4 bytes + FCS at 12 (16 bits),
 *  16 FDP: 64-bit format 8 bytes; 32-bit format 4 bytes + FDS at 20 (16 bits),
 *  24 MXCSR, 28 MXCSR_MASK, 32 + 16i ST(i) (80 bits; bytes 10-15 reserved),
 * 160 + 16i XMMi (XMM0-7 outside 64-bit mode, XMM0-15 in 64-bit mode),
 * 416-463 reserved, 464-511 available to software (never written).
 *
 * XSAVE area (SDM vol. 1 §13.4) with XCR0 = x87|SSE: that legacy region, then
 * the 64-byte XSAVE header at 512: XSTATE_BV (512-519), XCOMP_BV (520-527,
 * bit 63 = compacted format), 528-575 reserved. No extended region: the area
 * is 576 bytes (CPUID.(EAX=0DH,ECX=0):EBX/ECX). XSAVE, XSAVEOPT, XSAVEC and
 * XRSTOR follow the operations of SDM vol. 1 §13.7-13.10 and vol. 2 "XSAVE",
 * "XSAVEOPT", "XSAVEC", "XRSTOR"; XINUSE is engine/cpu/fpu/xstate.ts's.
 * XSAVEOPT uses the init optimisation only (never the modified
 * optimisation: it writes every in-use component it is asked for, which
 * the SDM allows). XSAVES/XRSTORS (IA32_XSS) are not implemented (#UD).
 */
import type { Cpu } from '../cpu';
import type { CpuState } from '../state';
import type { Insn } from '../decoder';
import { operandAddress, readRm, undefinedOpcode, writeRm } from '../ops/operands';
import { classifyTag } from './x87';
import { MXCSR_DEFAULT, XSTATE_SSE, XSTATE_X87, x87Init, xinuse } from './xstate';

/**
 * MXCSR bits the engine implements (reported as MXCSR_MASK in FXSAVE/XSAVE
 * images): FZ, RC, the six masks, DAZ and the six flags, bits 0-15 (the
 * value Intel processors with DAZ report, SDM vol. 1 §11.6.6). Setting any
 * other bit with LDMXCSR/FXRSTOR/XRSTOR raises #GP(0).
 */
export const MXCSR_MASK = 0xffff;

/** Bytes of the FXSAVE image the processor writes: 64-bit mode (XMM0-15) or other modes (XMM0-7). */
export function fxImageBytes(xmmCount: 8 | 16): number {
  return 160 + 16 * xmmCount;
}

function rd16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}
function rd32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}
function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** FXSAVE's abridged tag byte from the full tag word `tw`: bit i set when Ri is not empty (SDM vol. 2 FXSAVE). */
export function abridgedTagOf(tw: number): number {
  let a = 0;
  for (let i = 0; i < 8; i++) if (((tw >>> (i * 2)) & 3) !== 3) a |= 1 << i;
  return a;
}

/**
 * Writes the x87 part of the FXSAVE image (bytes 0-23 and 32-159) of `s` at
 * `b[at..]`: FCW, FSW, abridged FTW, FOP, FIP/FDP in the 64-bit layout
 * (`rexW`, FXSAVE64) or the 32-bit layout with FCS/FDS (SDM vol. 2 FXSAVE
 * tables 3-43/3-47), and ST0-ST7 in stack order. Reserved bytes in that range
 * are written as 0.
 */
export function fxsaveX87(s: CpuState, b: Uint8Array, at: number, rexW: boolean): void {
  wr16(b, at, s.fpuCw);
  wr16(b, at + 2, s.fpuSw);
  b[at + 4] = abridgedTagOf(s.fpuTw);
  b[at + 5] = 0;
  wr16(b, at + 6, s.fpuFop & 0x7ff);
  wr32(b, at + 8, s.fpuIpLo);
  if (rexW) wr32(b, at + 12, s.fpuIpHi);
  else {
    wr16(b, at + 12, s.fpuCs);
    wr16(b, at + 14, 0);
  }
  wr32(b, at + 16, s.fpuDpLo);
  if (rexW) wr32(b, at + 20, s.fpuDpHi);
  else {
    wr16(b, at + 20, s.fpuDs);
    wr16(b, at + 22, 0);
  }
  const top = (s.fpuSw >>> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const r = (top + i) & 7;
    const o = at + 32 + 16 * i;
    wr32(b, o, s.fpSigLo[r]);
    wr32(b, o + 4, s.fpSigHi[r]);
    wr16(b, o + 8, s.fpSe[r]);
    for (let k = 10; k < 16; k++) b[o + k] = 0;
  }
}

/** Writes MXCSR and MXCSR_MASK (bytes 24-31) of the FXSAVE image at `b[at..]`. */
export function fxsaveMxcsr(s: CpuState, b: Uint8Array, at: number): void {
  wr32(b, at + 24, s.mxcsr);
  wr32(b, at + 28, MXCSR_MASK);
}

/** Writes XMM0..XMM(count-1) (bytes 160..) of the FXSAVE image at `b[at..]`. */
export function fxsaveXmm(s: CpuState, b: Uint8Array, at: number, count: number): void {
  const x = s.xmmU8;
  for (let i = 0; i < count * 16; i++) b[at + 160 + i] = x[i];
}

/**
 * The whole FXSAVE image of `s` (what FXSAVE/FXSAVE64 store, SDM vol. 2
 * FXSAVE): bytes 0..fxImageBytes(xmmCount)-1 written, the rest of the 512
 * bytes left as they are.
 */
export function fxsaveImage(s: CpuState, b: Uint8Array, at: number, rexW: boolean, xmmCount: 8 | 16): void {
  fxsaveX87(s, b, at, rexW);
  fxsaveMxcsr(s, b, at);
  fxsaveXmm(s, b, at, xmmCount);
}

/** MXCSR value of an FXSAVE image at `b[at..]` (to check for reserved bits before restoring). */
export function fxImageMxcsr(b: Uint8Array, at: number): number {
  return rd32(b, at + 24) >>> 0;
}

/**
 * Loads the x87 part of an FXSAVE image (FXRSTOR, SDM vol. 2): FCW (reserved
 * bits 7 and 13-15 cleared, bit 6 set), FSW
 * (ES and B recomputed from the unmasked exception flags),
 * FOP, FIP/FDP (64-bit layout when `rexW`: FCS and FDS become 0; otherwise
 * 32-bit offsets with FCS/FDS), ST0-ST7 into the physical registers by the
 * image's TOP, and the full tag word rebuilt from the abridged byte by
 * classifying each non-empty register (SDM vol. 1 §10.5.1, table 10-2).
 */
export function fxrstorX87(s: CpuState, b: Uint8Array, at: number, rexW: boolean): void {
  // FCW bits 7 and 13-15 are reserved (read 0) and bit 6 reads 1, as FLDCW leaves them (Bochs FPU_CW_Reserved_Bits;
  // measured on AMD EPYC: 0000 -> 0040, FFFF -> 1F7F)
  s.fpuCw = (rd16(b, at) & 0x1f3f) | 0x40;
  // ES (bit 7) and B (bit 15) summarise the unmasked exception flags (SDM vol. 1 §8.1.3.1): recomputed from
  // FSW and FCW, as the host processors the differential tests ran on do
  const sw = rd16(b, at + 2) & ~0x8080;
  s.fpuSw = sw & ~s.fpuCw & 0x3f ? sw | 0x8080 : sw;
  const abridged = b[at + 4];
  s.fpuFop = rd16(b, at + 6) & 0x7ff;
  s.fpuIpLo = rd32(b, at + 8);
  s.fpuDpLo = rd32(b, at + 16);
  if (rexW) {
    s.fpuIpHi = rd32(b, at + 12);
    s.fpuDpHi = rd32(b, at + 20);
    s.fpuCs = 0;
    s.fpuDs = 0;
  } else {
    s.fpuIpHi = 0;
    s.fpuDpHi = 0;
    s.fpuCs = rd16(b, at + 12);
    s.fpuDs = rd16(b, at + 20);
  }
  const top = (s.fpuSw >>> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const r = (top + i) & 7;
    const o = at + 32 + 16 * i;
    s.fpSigLo[r] = rd32(b, o);
    s.fpSigHi[r] = rd32(b, o + 4);
    s.fpSe[r] = rd16(b, o + 8);
  }
  let tw = 0;
  for (let r = 0; r < 8; r++) {
    const t = abridged & (1 << r) ? classifyTag(s.fpSe[r] & 0x7fff, s.fpSigHi[r], s.fpSigLo[r]) : 3;
    tw |= t << (r * 2);
  }
  s.fpuTw = tw;
}

/** Loads XMM0..XMM(count-1) from an FXSAVE image at `b[at..]`. */
export function fxrstorXmm(s: CpuState, b: Uint8Array, at: number, count: number): void {
  const x = s.xmmU8;
  for (let i = 0; i < count * 16; i++) x[i] = b[at + 160 + i];
}

/**
 * Loads a whole FXSAVE image into `s` (FXRSTOR/FXRSTOR64 after its checks).
 * @returns false (and changes nothing) when the image's MXCSR sets a bit
 *   outside `MXCSR_MASK` (the instruction raises #GP(0) then).
 */
export function fxrstorImage(
  s: CpuState,
  b: Uint8Array,
  at: number,
  rexW: boolean,
  xmmCount: 8 | 16,
): boolean {
  const mx = fxImageMxcsr(b, at);
  if (mx & ~MXCSR_MASK) return false;
  fxrstorX87(s, b, at, rexW);
  s.mxcsr = mx;
  fxrstorXmm(s, b, at, xmmCount);
  return true;
}

/** Scratch image for one instruction (no allocation per instruction); XSAVE areas are at most 576 bytes here. */
const img = new Uint8Array(1024);

/** #UD/#NM checks shared by LDMXCSR/STMXCSR (SSE class: #UD when CR0.EM or !CR4.OSFXSR, #NM when CR0.TS). */
function sseChecks(cpu: Cpu, d: Insn): void {
  const st = cpu.state;
  if (st.cr0 & 4 || !(st.cr4 & 0x200)) undefinedOpcode(cpu, d);
  if (st.cr0 & 8) cpu.fault(7, -1);
}

/** Linear address of a 16- or 64-byte aligned save area (#GP(0) when misaligned); high half in cpu.tmpHi. */
function alignedArea(cpu: Cpu, d: Insn, size: number, align: number, write: boolean): number {
  const lo = operandAddress(cpu, d, size, write);
  if (lo & (align - 1)) cpu.fault(13, 0);
  return lo;
}

/**
 * FXSAVE / FXSAVE64 (SDM vol. 2 FXSAVE): #NM when CR0.EM or CR0.TS, #GP(0)
 * when the area is not 16-byte aligned; stores the image (XMM8-15 only in
 * 64-bit mode) with one restartable wide write.
 */
function fxsave(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  if (st.cr0 & 0xc) cpu.fault(7, -1);
  const n = cpu.curMode === 5 ? 16 : 8;
  const size = fxImageBytes(n);
  const lo = alignedArea(cpu, d, 512, 16, true);
  const hi = cpu.tmpHi;
  fxsaveImage(st, img, 0, d.long && (d.rex & 8) !== 0, n);
  cpu.wrBytes(lo, hi, size, img, 0);
  return 1;
}

/**
 * FXRSTOR / FXRSTOR64 (SDM vol. 2 FXRSTOR): #NM when CR0.EM or CR0.TS,
 * #GP(0) when misaligned or when the image's MXCSR sets a bit outside
 * MXCSR_MASK; nothing changes on a fault. Pending x87 exceptions are not
 * raised (the next waiting instruction does).
 */
function fxrstor(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  if (st.cr0 & 0xc) cpu.fault(7, -1);
  const n = cpu.curMode === 5 ? 16 : 8;
  const lo = alignedArea(cpu, d, 512, 16, false);
  cpu.rdBytes(lo, cpu.tmpHi, fxImageBytes(n), img, 0);
  if (!fxrstorImage(st, img, 0, d.long && (d.rex & 8) !== 0, n)) cpu.fault(13, 0);
  st.xinuse |= XSTATE_X87 | XSTATE_SSE; // FXRSTOR loads both components
  return 1;
}

/** LDMXCSR m32 (SDM vol. 2 LDMXCSR): #GP(0) when a bit outside MXCSR_MASK is set. */
function ldmxcsr(cpu: Cpu, d: Insn): number {
  sseChecks(cpu, d);
  const v = readRm(cpu, d, 4) >>> 0;
  if (v & ~MXCSR_MASK) cpu.fault(13, 0);
  cpu.state.mxcsr = v;
  return 1;
}

/** STMXCSR m32 (SDM vol. 2 STMXCSR). */
function stmxcsr(cpu: Cpu, d: Insn): number {
  sseChecks(cpu, d);
  writeRm(cpu, d, 4, cpu.state.mxcsr, 0);
  return 1;
}

/** Size of the XSAVE area with XCR0 = x87|SSE (legacy region + header), bytes. */
export const XSAVE_AREA_BYTES = 576;
/** Offset of the XSAVE header (XSTATE_BV, XCOMP_BV) in the area. */
export const XSAVE_HEADER = 512;

/** XSAVE-family variants sharing `xsaveOp`. */
const enum XsaveKind {
  XSAVE = 0,
  XSAVEOPT = 1,
  XSAVEC = 2,
}

/** Low half of the linear address `lo + off` (hi in `cpu.tmpHi`), wrapping at 4 GiB outside 64-bit mode. */
function linPlus(cpu: Cpu, lo: number, hi: number, off: number): number {
  const t = (lo >>> 0) + off;
  cpu.tmpHi = cpu.curMode === 5 ? (hi + (t > 0xffffffff ? 1 : 0)) | 0 : 0;
  return t | 0;
}

/** Writes `img[from..to)` to the area at (lo, hi) + from (one restartable wide store). */
function storeRange(cpu: Cpu, lo: number, hi: number, from: number, to: number): void {
  if (to <= from) return;
  const l = linPlus(cpu, lo, hi, from);
  cpu.wrBytes(l, cpu.tmpHi, to - from, img, from);
}

/**
 * Checks shared by XSAVE/XSAVEOPT/XSAVEC/XRSTOR (SDM vol. 2 "XSAVE"
 * exceptions) in priority order: 66/F2/F3 prefix (the forms are NP) or
 * CR4.OSXSAVE = 0 -> #UD; CR0.TS -> #NM; then the area: segment/limit
 * #GP(0)/#SS(0), not 64-byte aligned -> #GP(0). Returns the area's linear
 * address (high half in `cpu.tmpHi`).
 */
function xsaveArea(cpu: Cpu, d: Insn, write: boolean): number {
  const st = cpu.state;
  if (d.p66 || d.rep || !(st.cr4 & (1 << 18))) undefinedOpcode(cpu, d);
  if (st.cr0 & 8) cpu.fault(7, -1);
  return alignedArea(cpu, d, XSAVE_AREA_BYTES, 64, write);
}

/**
 * XSAVE / XSAVEOPT / XSAVEC (and their REX.W forms, which store FIP/FDP in
 * the 64-bit layout) (SDM vol. 1 §13.7, §13.9, §13.10). RFBM = XCR0 AND
 * EDX:EAX (upper halves of RAX/RDX ignored).
 * - XSAVE writes x87 state when RFBM[0], XMM registers when RFBM[1], MXCSR
 *   and MXCSR_MASK when RFBM[1]; XSTATE_BV[i] := XINUSE[i] for i in RFBM,
 *   other XSTATE_BV bits and the rest of the header untouched.
 * - XSAVEOPT: as XSAVE, but a component with XINUSE[i] = 0 is not written
 *   (MXCSR still is).
 * - XSAVEC: writes component i only when RFBM[i] AND XINUSE[i] (SSE also
 *   when RFBM[1] and MXCSR != 1F80H; MXCSR goes with the SSE state);
 *   XSTATE_BV := that set, XCOMP_BV := 8000_0000_0000_0000H OR RFBM; the
 *   rest of the header untouched.
 * Bytes 416-511 (reserved, software-available) are never written. The
 * header is written last, so a fault part-way leaves an image whose
 * re-execution writes the same bytes.
 */
function xsaveOp(cpu: Cpu, d: Insn, kind: XsaveKind): number {
  const st = cpu.state;
  const lo = xsaveArea(cpu, d, true);
  const hi = cpu.tmpHi;
  const n = cpu.curMode === 5 ? 16 : 8;
  const rexW = d.long && (d.rex & 8) !== 0;
  const rfbm = st.xcr0 & st.gprLo[0] & (XSTATE_X87 | XSTATE_SSE);
  const inuse = xinuse(st, n);
  let hdrEnd: number;
  let save: number;
  let mx: boolean;
  if (kind === XsaveKind.XSAVEC) {
    save = rfbm & inuse;
    if (rfbm & XSTATE_SSE && st.mxcsr !== MXCSR_DEFAULT) save |= XSTATE_SSE;
    mx = (save & XSTATE_SSE) !== 0;
    for (let i = 0; i < 16; i++) img[XSAVE_HEADER + i] = 0;
    img[XSAVE_HEADER] = save; // XSTATE_BV
    img[XSAVE_HEADER + 8] = rfbm; // XCOMP_BV[62:0] = RFBM
    img[XSAVE_HEADER + 15] = 0x80; // XCOMP_BV[63]: compacted
    hdrEnd = XSAVE_HEADER + 16;
  } else {
    // XSTATE_BV is read, its RFBM bits replaced by XINUSE, and written back.
    const h = linPlus(cpu, lo, hi, XSAVE_HEADER);
    cpu.rdBytes(h, cpu.tmpHi, 8, img, XSAVE_HEADER);
    img[XSAVE_HEADER] = (img[XSAVE_HEADER] & ~rfbm) | (inuse & rfbm);
    save = kind === XsaveKind.XSAVE ? rfbm : rfbm & inuse;
    mx = (rfbm & XSTATE_SSE) !== 0;
    hdrEnd = XSAVE_HEADER + 8;
  }
  const x87 = (save & XSTATE_X87) !== 0;
  const xmm = (save & XSTATE_SSE) !== 0;
  if (x87) fxsaveX87(st, img, 0, rexW);
  if (mx) fxsaveMxcsr(st, img, 0);
  if (xmm) fxsaveXmm(st, img, 0, n);
  // Contiguous runs in ascending order: [0,24) x87, [24,32) MXCSR, [32,160) x87, [160,..) XMM.
  const on = (x87 ? 1 : 0) | (mx ? 2 : 0) | (x87 ? 4 : 0) | (xmm ? 8 : 0);
  let from = -1;
  for (let r = 0; r <= 4; r++) {
    const at = r === 4 ? 160 + 16 * n : LEGACY_RUN_START[r];
    const o = r < 4 && (on >>> r) & 1;
    if (o && from < 0) from = at;
    else if (!o && from >= 0) {
      storeRange(cpu, lo, hi, from, at);
      from = -1;
    }
  }
  storeRange(cpu, lo, hi, XSAVE_HEADER, hdrEnd);
  return 1;
}

/** Starts of the legacy-region runs XSAVE writes: x87 header, MXCSR/MXCSR_MASK, ST0-ST7, XMM registers. */
const LEGACY_RUN_START = [0, 24, 32, 160];

function rd32u(b: Uint8Array, o: number): number {
  return rd32(b, o) >>> 0;
}

/**
 * XRSTOR / XRSTOR64 (SDM vol. 1 §13.8, vol. 2 "XRSTOR"). Reads the header
 * first. XCOMP_BV[63] = 0: standard form, #GP(0) when XSTATE_BV sets a bit
 * outside XCR0 or header bytes 8-23 are not 0; MXCSR is loaded whenever
 * RFBM[1] (#GP(0) for a bit outside MXCSR_MASK), even when the XMM
 * registers are initialised. XCOMP_BV[63] = 1: compacted form, #GP(0) when
 * XCOMP_BV[62:0] sets a bit outside XCR0, XSTATE_BV sets a bit outside
 * XCOMP_BV, or header bytes 16-63 are not 0; a component of RFBM missing
 * from XCOMP_BV is initialised; MXCSR is loaded with the SSE state (or set
 * to 1F80H when SSE is initialised). For each i in RFBM: XSTATE_BV[i] = 1
 * loads the component (XINUSE[i] := 1), 0 initialises it (XINUSE[i] := 0).
 * Every check and read comes before the first change. Pending x87
 * exceptions are not raised.
 */
function xrstor(cpu: Cpu, d: Insn): number {
  const st = cpu.state;
  const lo = xsaveArea(cpu, d, false);
  const hi = cpu.tmpHi;
  const n = cpu.curMode === 5 ? 16 : 8;
  const rexW = d.long && (d.rex & 8) !== 0;
  const xcr0 = st.xcr0;
  const rfbm = xcr0 & st.gprLo[0] & (XSTATE_X87 | XSTATE_SSE);
  const h = linPlus(cpu, lo, hi, XSAVE_HEADER);
  cpu.rdBytes(h, cpu.tmpHi, 64, img, XSAVE_HEADER);
  const bvLo = rd32u(img, XSAVE_HEADER);
  const bvHi = rd32u(img, XSAVE_HEADER + 4);
  const cLo = rd32u(img, XSAVE_HEADER + 8);
  const cHi = rd32u(img, XSAVE_HEADER + 12);
  const compact = (cHi & 0x80000000) !== 0;
  let restore: number;
  let init: number;
  if (!compact) {
    if (bvLo & ~xcr0 || bvHi !== 0) cpu.fault(13, 0);
    for (let i = 8; i < 24; i++) if (img[XSAVE_HEADER + i] !== 0) cpu.fault(13, 0);
    restore = rfbm & bvLo;
    init = rfbm & ~bvLo;
  } else {
    if (cLo & ~xcr0 || cHi & 0x7fffffff) cpu.fault(13, 0);
    if (bvLo & ~cLo || bvHi & ~cHi) cpu.fault(13, 0);
    for (let i = 16; i < 64; i++) if (img[XSAVE_HEADER + i] !== 0) cpu.fault(13, 0);
    restore = rfbm & cLo & bvLo;
    init = (rfbm & ~bvLo) | (rfbm & ~cLo);
  }
  const mxLoad = compact ? (restore & XSTATE_SSE) !== 0 : (rfbm & XSTATE_SSE) !== 0;
  const end = restore & XSTATE_SSE ? 160 + 16 * n : restore & XSTATE_X87 ? 160 : mxLoad ? 32 : 0;
  if (end > 0) cpu.rdBytes(lo, hi, end, img, 0);
  const mx = mxLoad ? rd32u(img, 24) : 0;
  if (mx & ~MXCSR_MASK) cpu.fault(13, 0);
  // No fault from here on.
  if (restore & XSTATE_X87) {
    fxrstorX87(st, img, 0, rexW);
    st.xinuse |= XSTATE_X87;
  } else if (init & XSTATE_X87) {
    x87Init(st);
    st.xinuse &= ~XSTATE_X87;
  }
  if (mxLoad) st.mxcsr = mx;
  if (restore & XSTATE_SSE) {
    fxrstorXmm(st, img, 0, n);
    st.xinuse |= XSTATE_SSE;
  } else if (init & XSTATE_SSE) {
    st.xmm.fill(0, 0, n * 4);
    if (compact) st.mxcsr = MXCSR_DEFAULT;
    st.xinuse &= ~XSTATE_SSE;
  }
  return 1;
}

/**
 * Executes FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE/XRSTOR/XSAVEOPT (0F AE memory
 * forms /0-/6) and XRSTORS/XSAVEC/XSAVES (0F C7 /3-/5).
 * Returns 1 (retired); faults as the SDM lists for each. A LOCK prefix is #UD;
 * XRSTORS and XSAVES (not offered by CPUID) are #UD.
 */
export function execXsave(cpu: Cpu, d: Insn): number {
  if (d.lock) return undefinedOpcode(cpu, d);
  const g = d.reg & 7;
  if (d.op === 0x1ae) {
    switch (g) {
      case 0:
        return fxsave(cpu, d);
      case 1:
        return fxrstor(cpu, d);
      case 2:
        return ldmxcsr(cpu, d);
      case 3:
        return stmxcsr(cpu, d);
      case 4:
        return xsaveOp(cpu, d, XsaveKind.XSAVE);
      case 5:
        return xrstor(cpu, d);
      case 6:
        return xsaveOp(cpu, d, XsaveKind.XSAVEOPT);
    }
  } else if (g === 4) {
    return xsaveOp(cpu, d, XsaveKind.XSAVEC);
  }
  return undefinedOpcode(cpu, d);
}
