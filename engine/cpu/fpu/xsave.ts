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
 */
import type { Cpu } from '../cpu';
import type { CpuState } from '../state';
import type { Insn } from '../decoder';
import { operandAddress, readRm, undefinedOpcode, writeRm } from '../exec';
import { classifyTag } from './x87';

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
 * Loads the x87 part of an FXSAVE image (FXRSTOR, SDM vol. 2): FCW, FSW
 * (ES and B recomputed from the unmasked exception flags),
 * FOP, FIP/FDP (64-bit layout when `rexW`: FCS and FDS become 0; otherwise
 * 32-bit offsets with FCS/FDS), ST0-ST7 into the physical registers by the
 * image's TOP, and the full tag word rebuilt from the abridged byte by
 * classifying each non-empty register (SDM vol. 1 §10.5.1, table 10-2).
 */
export function fxrstorX87(s: CpuState, b: Uint8Array, at: number, rexW: boolean): void {
  s.fpuCw = rd16(b, at);
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

/**
 * Executes FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE/XRSTOR/XSAVEOPT (0F AE memory
 * forms /0-/6) and XRSTORS/XSAVEC/XSAVES (0F C7 /3-/5).
 * Returns 1 (retired); faults as the SDM lists for each. A LOCK prefix is #UD.
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
    }
  }
  const cr0 = cpu.state.cr0;
  if (cr0 & 0xc) cpu.fault(7, -1);
  return undefinedOpcode(cpu, d);
}
