/**
 * MMX register forms (Intel SDM vol. 1 ch. 9, vol. 2): the MMX instruction
 * set (0F 60-7F, 0F D1-FE, EMMS), the SSE/SSE2 integer additions that work on
 * MMX registers (PSHUFW, PINSRW, PEXTRW, PMOVMSKB, PAVG*, PSADBW, PMIN/PMAX,
 * PMULUDQ, PADDQ/PSUBQ, MASKMOVQ, MOVNTQ), the SSSE3 MMX forms (0F 38 00-1E,
 * 0F 3A 0F) and MOVQ2DQ/MOVDQ2Q.
 *
 * Aliasing (SDM vol. 1 §9.5): MMX register i is the significand of physical
 * x87 register i (`fpSigLo/fpSigHi[i]`). Every MMX instruction except EMMS
 * sets TOP = 0 and every tag valid (`mmxEnter`), after its operands are
 * read (a fault changes nothing); a write to MMX register i also sets its
 * sign+exponent to 0xFFFF (`setMmx`). EMMS sets every tag empty.
 */
import type { Cpu } from '../cpu';
import type { Insn } from '../decoder';
import { getR, operandAddress, readRm, setR, undefinedOpcode, writeRm } from '../ops/operands';
import { x87RaisePendingMf } from '../fpu/x87';
import { mmxEnter, readMmxRm, setMmx } from './operands';
import { defineSimd, Form, Pfx, SimdKind, type SimdHandler } from './table';
import {
  A16,
  A32,
  A8,
  B16,
  B32,
  R16,
  R32,
  SHARED_BINARY,
  maskedStore,
  psllq,
  pslld,
  psllw,
  psrad,
  psraw,
  psrld,
  psrlq,
  psrlw,
  type Kernel,
} from './sse-int';

/** Handler for `mm1, mm2/m64` (or m32 when `mem32`) with kernel `k`: A = MMreg, B = r/m, result to MMreg. */
function mmxBinary(k: Kernel, mem32: boolean): SimdHandler {
  return (cpu, d) => {
    if (mem32 && d.mod !== 3) {
      const lo = operandAddress(cpu, d, 4, false);
      B32[0] = cpu.rdS(lo, cpu.tmpHi, 4);
      B32[1] = 0;
    } else readMmxRm(cpu, d, B32, 0);
    const st = cpu.state;
    const r = d.reg & 7;
    A32[0] = st.fpSigLo[r];
    A32[1] = st.fpSigHi[r];
    k(8, d.imm & 0xff);
    setMmx(cpu, r, R32[0], R32[1]);
    return 1;
  };
}

/** Shift-by-immediate groups 0F 71/72/73 on MMX registers (register forms only). */
function mmxShiftImm(group: number): SimdHandler {
  return (cpu, d) => {
    const g = d.reg & 7;
    let k: Kernel | undefined;
    if (group === 0x71) k = g === 2 ? psrlw : g === 4 ? psraw : g === 6 ? psllw : undefined;
    else if (group === 0x72) k = g === 2 ? psrld : g === 4 ? psrad : g === 6 ? pslld : undefined;
    else k = g === 2 ? psrlq : g === 6 ? psllq : undefined;
    if (!k) return undefinedOpcode(cpu, d);
    const st = cpu.state;
    const r = d.rm & 7;
    A32[0] = st.fpSigLo[r];
    A32[1] = st.fpSigHi[r];
    B32[0] = d.imm & 0xff;
    B32[1] = 0;
    k(8, 0);
    setMmx(cpu, r, R32[0], R32[1]);
    return 1;
  };
}

/**
 * Checks of instructions that touch both MMX and XMM state (MOVQ2DQ,
 * MOVDQ2Q; SDM exceptions): #UD if CR0.EM or !CR4.OSFXSR, #NM if CR0.TS,
 * #MF if an unmasked x87 exception is pending.
 */
function mmxSseChecks(cpu: Cpu, d: Insn): void {
  const st = cpu.state;
  if (st.cr0 & 4 || !(st.cr4 & 0x200)) undefinedOpcode(cpu, d);
  if (st.cr0 & 8) cpu.fault(7, -1);
  x87RaisePendingMf(cpu);
}

/** Registers every MMX-register form (no mandatory prefix) plus MOVQ2DQ (F3 0F D6) and MOVDQ2Q (F2 0F D6). */
export function registerMmx(): void {
  const M = SimdKind.MMX;
  for (const [op, k] of SHARED_BINARY) defineSimd(op, Pfx.NONE, M, mmxBinary(k, op >= 0x160 && op <= 0x162));

  // EMMS (0F 77): every x87 tag empty.
  defineSimd(0x177, Pfx.NONE, M, (cpu) => {
    cpu.state.fpuTw = 0xffff;
    return 1;
  });
  // MOVD/MOVQ mm, r/m32/64 (0F 6E, REX.W): zero-extended to 64 bits.
  defineSimd(0x16e, Pfx.NONE, M, (cpu, d) => {
    const s = d.rex & 8 ? 8 : 4;
    const v = readRm(cpu, d, s);
    setMmx(cpu, d.reg & 7, v, s === 8 ? cpu.tmpHi : 0);
    return 1;
  });
  // MOVD/MOVQ r/m32/64, mm (0F 7E, REX.W).
  defineSimd(0x17e, Pfx.NONE, M, (cpu, d) => {
    const s = d.rex & 8 ? 8 : 4;
    const st = cpu.state;
    const r = d.reg & 7;
    writeRm(cpu, d, s, st.fpSigLo[r], s === 8 ? st.fpSigHi[r] : 0);
    mmxEnter(cpu);
    return 1;
  });
  // MOVQ mm, mm/m64 (0F 6F).
  defineSimd(0x16f, Pfx.NONE, M, (cpu, d) => {
    readMmxRm(cpu, d, B32, 0);
    setMmx(cpu, d.reg & 7, B32[0], B32[1]);
    return 1;
  });
  // MOVQ mm/m64, mm (0F 7F) and MOVNTQ m64, mm (0F E7, memory only).
  const storeQ: SimdHandler = (cpu, d) => {
    const st = cpu.state;
    const r = d.reg & 7;
    const lo = st.fpSigLo[r],
      hi = st.fpSigHi[r];
    if (d.mod === 3) setMmx(cpu, d.rm & 7, lo, hi);
    else {
      const a = operandAddress(cpu, d, 8, true);
      cpu.wrS(a, cpu.tmpHi, 8, lo, hi);
      mmxEnter(cpu);
    }
    return 1;
  };
  defineSimd(0x17f, Pfx.NONE, M, storeQ);
  defineSimd(0x1e7, Pfx.NONE, M, storeQ, Form.MEM);
  // PSHUFW mm, mm/m64, imm8 (0F 70).
  defineSimd(0x170, Pfx.NONE, M, (cpu, d) => {
    readMmxRm(cpu, d, B32, 0);
    const imm = d.imm & 0xff;
    for (let i = 0; i < 4; i++) R16[i] = B16[(imm >> (2 * i)) & 3];
    setMmx(cpu, d.reg & 7, R32[0], R32[1]);
    return 1;
  });
  // Groups: /2 /4 /6 for words and dwords, /2 /6 for the quadword (SDM vol. 2 table A-6).
  defineSimd(0x171, Pfx.NONE, M, mmxShiftImm(0x71), Form.REG, 0x54);
  defineSimd(0x172, Pfx.NONE, M, mmxShiftImm(0x72), Form.REG, 0x54);
  defineSimd(0x173, Pfx.NONE, M, mmxShiftImm(0x73), Form.REG, 0x44);
  // PINSRW mm, r32/m16, imm8 (0F C4).
  defineSimd(0x1c4, Pfx.NONE, M, (cpu, d) => {
    const v = d.mod === 3 ? getR(cpu, d, 4, d.rm) : readRm(cpu, d, 2);
    const st = cpu.state;
    const r = d.reg & 7;
    A32[0] = st.fpSigLo[r];
    A32[1] = st.fpSigHi[r];
    A16[d.imm & 3] = v;
    setMmx(cpu, r, A32[0], A32[1]);
    return 1;
  });
  // PEXTRW r32, mm, imm8 (0F C5, register form).
  defineSimd(
    0x1c5,
    Pfx.NONE,
    M,
    (cpu, d) => {
      const st = cpu.state;
      const r = d.rm & 7;
      A32[0] = st.fpSigLo[r];
      A32[1] = st.fpSigHi[r];
      setR(cpu, d, 4, d.reg, A16[d.imm & 3], 0);
      mmxEnter(cpu);
      return 1;
    },
    Form.REG,
  );
  // PMOVMSKB r32, mm (0F D7).
  defineSimd(
    0x1d7,
    Pfx.NONE,
    M,
    (cpu, d) => {
      const st = cpu.state;
      const r = d.rm & 7;
      A32[0] = st.fpSigLo[r];
      A32[1] = st.fpSigHi[r];
      let m = 0;
      for (let i = 0; i < 8; i++) m |= (A8[i] >> 7) << i;
      setR(cpu, d, 4, d.reg, m, 0);
      mmxEnter(cpu);
      return 1;
    },
    Form.REG,
  );
  // MASKMOVQ mm1, mm2 (0F F7).
  defineSimd(
    0x1f7,
    Pfx.NONE,
    M,
    (cpu, d) => {
      const st = cpu.state;
      const a = d.reg & 7,
        b = d.rm & 7;
      A32[0] = st.fpSigLo[a];
      A32[1] = st.fpSigHi[a];
      B32[0] = st.fpSigLo[b];
      B32[1] = st.fpSigHi[b];
      maskedStore(cpu, d, 8);
      mmxEnter(cpu);
      return 1;
    },
    Form.REG,
  );
  // MOVQ2DQ xmm, mm (F3 0F D6) and MOVDQ2Q mm, xmm (F2 0F D6): register forms.
  defineSimd(
    0x1d6,
    Pfx.F3,
    SimdKind.INT,
    (cpu, d) => {
      mmxSseChecks(cpu, d);
      const st = cpu.state;
      const x = st.xmm;
      const r = d.reg << 2;
      x[r] = st.fpSigLo[d.rm & 7];
      x[r + 1] = st.fpSigHi[d.rm & 7];
      x[r + 2] = x[r + 3] = 0;
      mmxEnter(cpu);
      return 1;
    },
    Form.REG,
  );
  defineSimd(
    0x1d6,
    Pfx.F2,
    SimdKind.INT,
    (cpu, d) => {
      mmxSseChecks(cpu, d);
      const x = cpu.state.xmm;
      setMmx(cpu, d.reg & 7, x[d.rm << 2], x[(d.rm << 2) + 1]);
      return 1;
    },
    Form.REG,
  );
}
