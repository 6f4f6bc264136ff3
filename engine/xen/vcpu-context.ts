/**
 * VCPUOP_initialise: loads a vcpu_guest_context (Xen public/arch-x86/xen.h,
 * layouts in brief §2.8) into an offline vCPU (Xen arch/x86/domain.c
 * arch_set_info_guest for PV).
 */
import type { Vcpu } from './domain';
import * as E from './errno';
import { Reg, Seg } from '../cpu/state';
import { setReg, setRip, loadGuestSegment, setSegBase, setKernelGsBase, isCanonical } from './regs';
import { setupCpu } from './builder';
import { FLAT_KERNEL_CS64 } from './layout';

const VGCF_in_kernel = 4;

/** @returns 0, or -errno (-EINVAL for bad selectors/addresses or a refused base pointer). */
export function initVcpuFromContext(t: Vcpu, c: DataView): number {
  const d = t.domain;
  const cpu = t.cpu;
  setupCpu(t, cpu.tscPerInstruction);
  if (d.bits === 64) {
    const flags = Number(c.getBigUint64(0x200, true));
    const ur = 0x208;
    const q = (o: number) => c.getBigUint64(ur + o, true);
    const regs: [number, number][] = [
      [Reg.R15, 0],
      [Reg.R14, 8],
      [Reg.R13, 16],
      [Reg.R12, 24],
      [Reg.RBP, 32],
      [Reg.RBX, 40],
      [Reg.R11, 48],
      [Reg.R10, 56],
      [Reg.R9, 64],
      [Reg.R8, 72],
      [Reg.RAX, 80],
      [Reg.RCX, 88],
      [Reg.RDX, 96],
      [Reg.RSI, 104],
      [Reg.RDI, 112],
      [Reg.RSP, 152],
    ];
    for (const [r, o] of regs) setReg(cpu, r, q(o));
    const rip = q(128);
    if (!isCanonical(rip)) return -E.EINVAL;
    setRip(cpu, rip);
    cpu.setRflags((Number(q(144) & 0xffffffffn) & ~0x3000) | 0x202);
    for (let i = 0; i < 256; i++) {
      const o = 0x2d0 + i * 16;
      const addr = c.getBigUint64(o + 8, true);
      t.trapTable[i] = {
        flags: c.getUint8(o + 1),
        cs: FLAT_KERNEL_CS64,
        address: isCanonical(addr) ? addr : 0n,
      };
    }
    t.kernelSs = Number(c.getBigUint64(0x1368, true) & 0xffffn);
    t.kernelSp = c.getBigUint64(0x1370, true);
    const cb = (o: number, mask: boolean) => {
      const a = c.getBigUint64(o, true);
      return a === 0n ? null : { cs: FLAT_KERNEL_CS64, address: a, maskEvents: mask };
    };
    t.eventCallback = cb(0x13f8, true);
    t.failsafeCallback = cb(0x1400, (flags & 8) !== 0);
    t.syscallCallback = cb(0x1408, (flags & 16) !== 0);
    // Xen starts a PV vCPU in kernel mode whatever VGCF_in_kernel says for 64-bit guests.
    void (flags & VGCF_in_kernel);
    t.kernelMode = true;
    // Base pointers, then the GDT and LDT (Xen arch_set_info_guest), then the
    // segment registers, whose selectors may name guest GDT/LDT entries.
    const cr3 = c.getBigUint64(0x1378 + 3 * 8, true);
    const rc = d.mm.newBaseptr(t, Number(cr3 >> 12n));
    if (rc < 0) return rc;
    const user = c.getBigUint64(0x1378 + 1 * 8, true);
    if (user !== 0n) {
      const r2 = d.mm.newUserBaseptr(t, Number(user >> 12n));
      if (r2 < 0) return r2;
    }
    const frames: number[] = [];
    for (let i = 0; i < 16; i++) frames.push(Number(c.getBigUint64(0x12e0 + i * 8, true) & 0xffffffffn));
    const rg = loadDescriptorTables(
      t,
      frames,
      Number(c.getBigUint64(0x1360, true) & 0xffffffffn),
      c.getBigUint64(0x12d0, true),
      Number(c.getBigUint64(0x12d8, true) & 0xffffffffn),
    );
    if (rg < 0) return rg;
    const cs = Number(q(136) & 0xffffn);
    const ss = Number(q(160) & 0xffffn);
    if (!loadGuestSegment(t, Seg.CS, cs | 3) || !loadGuestSegment(t, Seg.SS, ss | 3)) return -E.EINVAL;
    for (const [s, o] of [
      [Seg.ES, 168],
      [Seg.DS, 176],
      [Seg.FS, 184],
      [Seg.GS, 192],
    ] as const) {
      if (!loadGuestSegment(t, s, Number(q(o) & 0xffffn))) loadGuestSegment(t, s, 0);
    }
    setSegBase(cpu, Seg.FS, c.getBigUint64(0x1418, true));
    setSegBase(cpu, Seg.GS, c.getBigUint64(0x1420, true));
    setKernelGsBase(cpu, c.getBigUint64(0x1428, true));
  } else {
    const flags = c.getUint32(0x200, true);
    const ur = 0x204;
    const l = (o: number) => c.getUint32(ur + o, true);
    const regs: [number, number][] = [
      [Reg.RBX, 0],
      [Reg.RCX, 4],
      [Reg.RDX, 8],
      [Reg.RSI, 12],
      [Reg.RDI, 16],
      [Reg.RBP, 20],
      [Reg.RAX, 24],
      [Reg.RSP, 44],
    ];
    for (const [r, o] of regs) setReg(cpu, r, BigInt(l(o)));
    cpu.state.ripLo = l(32) | 0;
    cpu.state.ripHi = 0;
    cpu.setRflags((l(40) & ~0x3000) | 0x202);
    for (let i = 0; i < 256; i++) {
      const o = 0x248 + i * 8;
      const cs = c.getUint16(o + 2, true);
      t.trapTable[i] = {
        flags: c.getUint8(o + 1),
        cs: cs === 0 ? 0 : (cs & ~3) | Math.max(cs & 3, 1),
        address: BigInt(c.getUint32(o + 4, true)),
      };
    }
    t.kernelSs = c.getUint32(0xa94, true) & 0xffff;
    t.kernelSp = BigInt(c.getUint32(0xa98, true));
    const cb = (oc: number, oe: number, mask: boolean) => {
      const a = c.getUint32(oe, true);
      const s = c.getUint32(oc, true) & 0xffff;
      return a === 0 && s === 0 ? null : { cs: s, address: BigInt(a), maskEvents: mask };
    };
    t.eventCallback = cb(0xadc, 0xae0, true);
    t.failsafeCallback = cb(0xae4, 0xae8, (flags & 8) !== 0);
    const cs = l(36) & 0xffff;
    const ss = l(48) & 0xffff;
    if ((cs & 3) === 0) return -E.EINVAL;
    const cr3 = c.getUint32(0xa9c + 3 * 4, true);
    const mfn = ((cr3 >>> 12) | ((cr3 & 0xfff) << 20)) >>> 0;
    const rc = d.mm.newBaseptr(t, mfn);
    if (rc < 0) return rc;
    const frames: number[] = [];
    for (let i = 0; i < 16; i++) frames.push(c.getUint32(0xa50 + i * 4, true));
    const rg = loadDescriptorTables(
      t,
      frames,
      c.getUint32(0xa90, true),
      BigInt(c.getUint32(0xa48, true)),
      c.getUint32(0xa4c, true),
    );
    if (rg < 0) return rg;
    if (!loadGuestSegment(t, Seg.CS, cs) || !loadGuestSegment(t, Seg.SS, ss)) return -E.EINVAL;
    cpu.state.cpl = cs & 3;
    for (const [s, o] of [
      [Seg.ES, 52],
      [Seg.DS, 56],
      [Seg.FS, 60],
      [Seg.GS, 64],
    ] as const) {
      if (!loadGuestSegment(t, s, l(o) & 0xffff)) loadGuestSegment(t, s, 0);
    }
  }
  cpu.stateChanged();
  d.time.updateVcpuTime(t);
  return 0;
}

/**
 * Installs the context's GDT (gdt_frames[0..ceil(ents/512)), gdt_ents) and
 * LDT (linear base, entry count) as set_gdt and MMUEXT_SET_LDT would (Xen
 * arch_set_info_guest: pv_set_gdt, then the LDT fields).
 * @returns 0 or -errno (-EINVAL for a bad table).
 */
function loadDescriptorTables(
  t: Vcpu,
  frames: number[],
  gdtEnts: number,
  ldtBase: bigint,
  ldtEnts: number,
): number {
  const d = t.domain;
  if (gdtEnts > 0) {
    const rc = d.mm.installGdt(t, frames.slice(0, Math.ceil(gdtEnts / 512)), gdtEnts);
    if (rc < 0) return rc;
  }
  if (ldtEnts > 8192 || (ldtBase & 0xfffn) !== 0n) return -E.EINVAL;
  t.ldtBase = ldtBase;
  t.ldtEnts = ldtEnts;
  d.mm.loadLdt(t);
  return 0;
}
