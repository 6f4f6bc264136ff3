/**
 * Exceptions, bounce frames, callbacks, iret and privileged-instruction
 * emulation for PV guests (Xen arch/x86/pv/traps.c, pv/callback.c,
 * pv/iret.c, pv/emul-priv-op.c, pv/emul-inv-op.c, x86_64/entry.S
 * create_bounce_frame, x86_64/compat/entry.S).
 */
import { Reg, Seg, Flag, Cr0, Cr4, Vector } from '../cpu/state';
import { XCR0_SUPPORTED } from '../cpu/cpuid';
import { PrivOp } from '../cpu/api';
import type { Domain, Vcpu, Callback } from './domain';
import * as E from './errno';
import {
  getReg,
  setReg,
  getRip,
  setRip,
  getSegBase,
  setSegBase,
  getKernelGsBase,
  setKernelGsBase,
  isCanonical,
  loadGuestSegment,
} from './regs';
import {
  FLAT_KERNEL_CS64,
  FLAT_KERNEL_SS64,
  FLAT_RING1_CS,
  FLAT_RING1_DS,
  HYPERVISOR_VIRT_START_64,
  HYPERVISOR_VIRT_START_32,
} from './layout';
import { writeHypercallPage } from './hypercall-page';

const TRAP_NAMES = [
  'divide error',
  'debug',
  'nmi',
  'int3',
  'overflow',
  'bounds',
  'invalid opcode',
  'device not available',
  'double fault',
  'coprocessor segment',
  'invalid tss',
  'segment not found',
  'stack error',
  'general protection fault',
  'page fault',
  'spurious interrupt',
  'coprocessor error',
  'alignment check',
  'machine check',
  'simd error',
  'virtualisation exception',
  'control-flow protection',
];
export function trapName(v: number): string {
  return TRAP_NAMES[v] ?? `vector ${v}`;
}
/** Vectors that push an error code (brief §4.1). */
export function hasErrorCode(vec: number): boolean {
  return vec === 8 || (vec >= 10 && vec <= 14) || vec === 17 || vec === 21 || vec === 29 || vec === 30;
}

const VGCF_in_syscall = 0x100;

/** Kernel RPL of the guest's flat selectors: 3 for 64-bit, 1 for 32-bit. */
function kernelRpl(d: Domain): number {
  return d.bits === 64 ? 3 : 1;
}

/** Switches a 64-bit vCPU between guest kernel and user mode (Xen toggle_guest_mode): CR3 and GS bases. */
export function toggleGuestMode(v: Vcpu): boolean {
  const cpu = v.cpu;
  const toUser = v.kernelMode;
  const root = toUser ? v.userRootMfn : v.kernelRootMfn;
  if (toUser && root === 0) {
    v.domain.crash('iret to guest user mode without a user page table (NEW_USER_BASEPTR not set)');
    return false;
  }
  // Swap the active GS base with the shadow (Xen swaps on every transition).
  const active = getSegBase(cpu, Seg.GS);
  const shadow = getKernelGsBase(cpu);
  setSegBase(cpu, Seg.GS, shadow);
  setKernelGsBase(cpu, active);
  v.kernelMode = !toUser;
  cpu.state.cr3Lo = (root * 4096) | 0;
  cpu.state.cr3Hi = Math.floor(root / 0x100000);
  cpu.stateChanged();
  cpu.flushTlb(false);
  return true;
}

/**
 * Builds a bounce frame on the guest kernel stack and enters `target`
 * (brief §4.2). `errorCode` -1 = none. `maskEvents` sets the upcall mask.
 * Returns false when the domain was crashed instead.
 */
export function bounce(
  v: Vcpu,
  target: { cs: number; address: bigint },
  errorCode: number,
  maskEvents: boolean,
  why: string,
): boolean {
  const d = v.domain;
  const cpu = v.cpu;
  const prevMask = v.upcallMask & 1;
  const rflags = cpu.getRflags();
  if (d.bits === 64) {
    const wasKernel = v.kernelMode;
    const rip = getRip(cpu);
    const rsp = getReg(cpu, Reg.RSP);
    const cs = cpu.state.segSel[Seg.CS];
    const ss = cpu.state.segSel[Seg.SS];
    if (!wasKernel && !toggleGuestMode(v)) return false;
    let sp = (wasKernel ? rsp : v.kernelSp) & ~0xfn;
    const words: bigint[] = [getReg(cpu, Reg.RCX), getReg(cpu, Reg.R11)];
    if (errorCode >= 0) words.push(BigInt(errorCode >>> 0));
    const csWord = BigInt(wasKernel ? cs & ~3 : cs) | (BigInt(prevMask) << 32n);
    let fl = (rflags & ~(Flag.IF | Flag.IOPL)) | (prevMask ? 0 : Flag.IF);
    if (d.vmAssistOn(4)) fl |= (v.iopl & 3) << 12;
    words.push(rip, csWord, BigInt(fl >>> 0), rsp, BigInt(ss));
    sp -= BigInt(words.length * 8);
    sp &= 0xffffffffffffffffn;
    if (sp >= HYPERVISOR_VIRT_START_64 && sp < 0xffff880000000000n) {
      d.crash(`bounce frame for ${why} would be built inside the hypervisor hole (rsp=0x${sp.toString(16)})`);
      return false;
    }
    const buf = new Uint8Array(words.length * 8);
    const dv = new DataView(buf.buffer);
    words.forEach((w, i) => dv.setBigUint64(i * 8, w & 0xffffffffffffffffn, true));
    if (!v.wrBytes(sp, buf)) {
      d.crash(`fault while creating bounce frame for ${why} at 0x${sp.toString(16)}`);
      return false;
    }
    setReg(cpu, Reg.RSP, sp);
    setRip(cpu, target.address);
    loadGuestSegment(v, Seg.CS, FLAT_KERNEL_CS64);
    loadGuestSegment(v, Seg.SS, FLAT_KERNEL_SS64);
    cpu.setRflags((rflags & ~(Flag.AC | Flag.VM | Flag.RF | Flag.NT | Flag.TF)) | Flag.IF);
  } else {
    const cpl = cpu.state.cpl;
    const eip = cpu.state.ripLo >>> 0;
    const esp = cpu.state.gprLo[Reg.RSP] >>> 0;
    const cs = cpu.state.segSel[Seg.CS];
    const ss = cpu.state.segSel[Seg.SS];
    const fromRing1 = cpl <= 1;
    let sp = fromRing1 ? esp : Number(v.kernelSp & 0xffffffffn);
    const ssSel = fromRing1 ? ss : v.kernelSs;
    const words: number[] = [];
    if (errorCode >= 0) words.push(errorCode >>> 0);
    let fl = (rflags & ~(Flag.IF | Flag.IOPL)) | (prevMask ? 0 : Flag.IF);
    if (d.vmAssistOn(4)) fl |= (v.iopl & 3) << 12;
    words.push(eip, (cs | (prevMask << 16)) >>> 0, fl >>> 0);
    if (!fromRing1) words.push(esp, ss);
    sp = (sp - words.length * 4) >>> 0;
    if (!fromRing1 && !loadGuestSegment(v, Seg.SS, ssSel)) {
      d.crash(`bad kernel stack segment 0x${ssSel.toString(16)} for ${why} (stack_switch not done?)`);
      return false;
    }
    const buf = new Uint8Array(words.length * 4);
    const dv = new DataView(buf.buffer);
    words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
    const ssBase = cpu.state.segBaseLo[Seg.SS] >>> 0;
    if (!v.wrBytes(BigInt((ssBase + sp) >>> 0), buf)) {
      d.crash(`fault while creating bounce frame for ${why} at 0x${sp.toString(16)}`);
      return false;
    }
    if ((target.cs & ~3) === 0 || !loadGuestSegment(v, Seg.CS, target.cs | 1)) {
      d.crash(`bad callback CS 0x${target.cs.toString(16)} for ${why}`);
      return false;
    }
    cpu.state.cpl = 1;
    cpu.state.gprLo[Reg.RSP] = sp | 0;
    cpu.state.gprHi[Reg.RSP] = 0;
    setRip(cpu, target.address & 0xffffffffn);
    cpu.setRflags((rflags & ~(Flag.VM | Flag.RF | Flag.NT | Flag.TF)) | Flag.IF);
  }
  if (maskEvents) v.upcallMask = 1;
  cpu.state.halted = false;
  cpu.stateChanged();
  return true;
}

/**
 * The #PF error code a PV guest sees: Xen rewrites U/S (bit 2) to say guest
 * user vs guest kernel mode, because a 64-bit PV kernel really runs at CPL 3
 * (Xen arch/x86/traps.c, the PV page-fault path). Idempotent; 32-bit guests
 * keep the hardware value (their kernel runs at CPL 1).
 */
export function guestPfErrorCode(v: Vcpu, errorCode: number): number {
  if (v.domain.bits !== 64) return errorCode;
  return v.kernelMode ? errorCode & ~4 : errorCode | 4;
}

/**
 * Delivers an exception to the guest per its virtual IDT, or crashes the
 * domain when there is no handler (Xen pv_inject_event). `softReturn`: INT n
 * (RIP already after the instruction).
 */
export function injectTrap(v: Vcpu, vector: number, errorCode: number, cr2?: bigint): boolean {
  const d = v.domain;
  const t = v.trapTable[vector];
  if (vector === Vector.PF && cr2 !== undefined) {
    v.cr2 = cr2;
    const o = v.vcpuInfoOff();
    if (o >= 0) {
      if (d.bits === 64) d.mem.write64(o + 0x10, Number(cr2 & 0xffffffffn), Number(cr2 >> 32n));
      else d.mem.write32(o + 8, Number(cr2 & 0xffffffffn));
    }
    errorCode = guestPfErrorCode(v, errorCode);
  }
  if (vector === Vector.DB) v.debugreg[6] = BigInt(v.cpu.state.dr6 >>> 0);
  if (vector === Vector.NM) {
    // Xen do_device_not_available: the FPU is restored lazily (CR0.TS cleared), and the #NM is
    // bounced only when the guest's virtual TS is set, clearing it; otherwise the guest resumes.
    v.cpu.state.cr0 &= ~Cr0.TS;
    v.cpu.stateChanged();
    if (!v.fpuTs) return true;
    v.fpuTs = false;
  }
  const missing = d.bits === 64 ? t.address === 0n : (t.cs & ~3) === 0;
  if (missing) {
    const ec = errorCode >= 0 ? `, ec=${(errorCode & 0xffff).toString(16).padStart(4, '0')}` : '';
    d.crash(
      `Unhandled ${trapName(vector)} fault/trap [#${vector}${ec}] in domain ${d.domid}` +
        (vector === 14 && cr2 !== undefined ? ` (cr2=0x${cr2.toString(16)})` : ''),
    );
    return false;
  }
  return bounce(v, { cs: t.cs, address: t.address }, errorCode, (t.flags & 4) !== 0, trapName(vector));
}

/** Delivers a pending event upcall if unmasked (Xen's test_all_events on return to guest). */
export function deliverEvents(v: Vcpu): boolean {
  if (v.domain.finished || !v.eventCallback) return false;
  if (!v.upcallPending || v.upcallMask) return false;
  const cb = v.eventCallback;
  if (cb.address === 0n) return false;
  v.domain.observer.event?.(v, 0, 'upcall');
  return bounce(v, cb, -1, true, 'event callback');
}

// --- Hypercalls ---

/** set_trap_table (0): Xen pv/traps.c do_set_trap_table. */
export function setTrapTable(v: Vcpu, table: bigint): number {
  const d = v.domain;
  if (table === 0n) {
    for (const t of v.trapTable) {
      t.flags = 0;
      t.cs = 0;
      t.address = 0n;
    }
    return 0;
  }
  const sz = d.bits === 64 ? 16 : 8;
  for (let i = 0; i < 256 + 1; i++) {
    const b = v.rdStruct(table + BigInt(i * sz), sz);
    if (!b) return -E.EFAULT;
    const vec = b.getUint8(0);
    const flags = b.getUint8(1);
    const cs = b.getUint16(2, true);
    const addr = d.bits === 64 ? b.getBigUint64(8, true) : BigInt(b.getUint32(4, true));
    if (addr === 0n) break;
    if (d.bits === 64 && !isCanonical(addr)) return -E.EINVAL;
    const t = v.trapTable[vec];
    t.flags = flags;
    t.cs = d.bits === 64 ? FLAT_KERNEL_CS64 : cs === 0 ? 0 : (cs & ~3) | Math.max(cs & 3, 1);
    t.address = addr;
  }
  return 0;
}

export const CALLBACKTYPE_event = 0;
export const CALLBACKTYPE_failsafe = 1;
export const CALLBACKTYPE_syscall = 2;
export const CALLBACKTYPE_sysenter_deprecated = 3;
export const CALLBACKTYPE_nmi = 4;
export const CALLBACKTYPE_sysenter = 5;
export const CALLBACKTYPE_syscall32 = 7;

function registerCallback(v: Vcpu, type: number, cs: number, address: bigint, flags: number): number {
  const d = v.domain;
  if (d.bits === 64 && !isCanonical(address)) return -E.EINVAL;
  const cb: Callback = {
    cs: d.bits === 64 ? FLAT_KERNEL_CS64 : cs === 0 ? 0 : (cs & ~3) | Math.max(cs & 3, 1),
    address,
    maskEvents: (flags & 1) !== 0,
  };
  switch (type) {
    case CALLBACKTYPE_event:
      v.eventCallback = cb;
      return 0;
    case CALLBACKTYPE_failsafe:
      v.failsafeCallback = cb;
      return 0;
    case CALLBACKTYPE_syscall:
      if (d.bits === 32) return -E.ENOSYS;
      v.syscallCallback = cb;
      return 0;
    case CALLBACKTYPE_syscall32:
      if (d.bits === 32) return -E.ENOSYS;
      v.syscall32Callback = cb;
      return 0;
    case CALLBACKTYPE_sysenter:
    case CALLBACKTYPE_sysenter_deprecated:
      v.sysenterCallback = cb;
      return 0;
    case CALLBACKTYPE_nmi:
      if (d.bits === 64 && !isCanonical(address)) return -E.EINVAL;
      v.nmiCallback = cb;
      v.trapTable[2] = { flags: 4, cs: cb.cs, address };
      return 0;
    default:
      return -E.ENOSYS;
  }
}

/** callback_op (30): register / unregister (Xen pv/callback.c). */
export function callbackOp(v: Vcpu, cmd: number, arg: bigint): number {
  const d = v.domain;
  if (cmd === 0) {
    const sz = d.bits === 64 ? 16 : 12;
    const b = v.rdStruct(arg, sz);
    if (!b) return -E.EFAULT;
    const type = b.getUint16(0, true);
    const flags = b.getUint16(2, true);
    if (d.bits === 64) return registerCallback(v, type, 0, b.getBigUint64(8, true), flags);
    return registerCallback(v, type, b.getUint32(4, true), BigInt(b.getUint32(8, true)), flags);
  }
  if (cmd === 1) {
    const b = v.rdStruct(arg, 4);
    if (!b) return -E.EFAULT;
    const type = b.getUint16(0, true);
    if (type === CALLBACKTYPE_nmi) {
      v.nmiCallback = null;
      v.trapTable[2] = { flags: 0, cs: 0, address: 0n };
      return 0;
    }
    return type > 7 ? -E.ENOSYS : -E.EINVAL;
  }
  return -E.ENOSYS;
}

/** set_callbacks (4): 64-bit (event, failsafe, syscall); 32-bit (event cs:eip, failsafe cs:eip). */
export function setCallbacks(v: Vcpu, a: bigint[]): number {
  const d = v.domain;
  if (d.bits === 64) {
    for (const x of [a[0], a[1], a[2]]) if (!isCanonical(x)) return -E.EINVAL;
    registerCallback(v, CALLBACKTYPE_event, 0, a[0], 1);
    registerCallback(v, CALLBACKTYPE_failsafe, 0, a[1], 0);
    registerCallback(v, CALLBACKTYPE_syscall, 0, a[2], 0);
    return 0;
  }
  registerCallback(v, CALLBACKTYPE_event, Number(a[0] & 0xffffn), a[1] & 0xffffffffn, 1);
  registerCallback(v, CALLBACKTYPE_failsafe, Number(a[2] & 0xffffn), a[3] & 0xffffffffn, 0);
  return 0;
}

/** stack_switch (3): sets kernel_ss:kernel_sp (Xen do_stack_switch: SS must be a valid kernel data selector). */
export function stackSwitch(v: Vcpu, ss: bigint, sp: bigint): number {
  const sel = Number(ss & 0xffffn);
  const rpl = kernelRpl(v.domain);
  if (v.domain.bits === 32 && (sel & 3) !== rpl && (sel & ~3) === 0) return -E.EPERM;
  v.kernelSs = v.domain.bits === 32 ? (sel & ~3) | Math.max(sel & 3, 1) : sel;
  v.kernelSp = sp;
  return 0;
}

/** fpu_taskswitch (5): sets/clears the virtual CR0.TS. */
export function fpuTaskswitch(v: Vcpu, set: bigint): number {
  v.fpuTs = set !== 0n;
  if (v.fpuTs) v.cpu.state.cr0 |= Cr0.TS;
  else v.cpu.state.cr0 &= ~Cr0.TS;
  v.cpu.stateChanged();
  return 0;
}

/**
 * Reloads DS, ES, FS, GS from the descriptor tables as Xen does on the way
 * back to the guest; when one cannot be loaded, enters the failsafe
 * callback with the selectors as found (brief §4.3). Returns false when the
 * failsafe path was taken (or the domain crashed).
 */
export function reloadDataSegments(v: Vcpu): boolean {
  const cpu = v.cpu;
  const segs = [Seg.DS, Seg.ES, Seg.FS, Seg.GS];
  const sels = segs.map((s) => cpu.state.segSel[s]);
  let bad = false;
  const fsBaseHi = cpu.state.segBaseHi[Seg.FS];
  const fsBaseLo = cpu.state.segBaseLo[Seg.FS];
  const gsBaseHi = cpu.state.segBaseHi[Seg.GS];
  const gsBaseLo = cpu.state.segBaseLo[Seg.GS];
  segs.forEach((s, i) => {
    if ((sels[i] & ~3) === 0) return;
    if (!loadGuestSegment(v, s, sels[i])) bad = true;
  });
  if (v.domain.bits === 64) {
    // 64-bit FS/GS bases are kept by Xen across selector reloads.
    cpu.state.segBaseLo[Seg.FS] = fsBaseLo;
    cpu.state.segBaseHi[Seg.FS] = fsBaseHi;
    cpu.state.segBaseLo[Seg.GS] = gsBaseLo;
    cpu.state.segBaseHi[Seg.GS] = gsBaseHi;
  }
  if (!bad) return true;
  failsafe(v, sels);
  return false;
}

/**
 * iret (23): Xen pv/iret.c do_iret / compat_iret. Sets `v.noResult` so the
 * dispatcher leaves RAX as restored from the frame.
 */
export function doIret(v: Vcpu): number {
  const d = v.domain;
  const cpu = v.cpu;
  v.noResult = true;
  if (d.bits === 64) {
    const rsp = getReg(cpu, Reg.RSP);
    const b = v.rdStruct(rsp, 72);
    if (!b) {
      d.crash(`iret: fault reading the iret frame at 0x${rsp.toString(16)}`);
      return -E.EFAULT;
    }
    const w = (i: number) => b.getBigUint64(i * 8, true);
    const [rax, r11, rcx, flags, rip, cs, rfl, nrsp, ss] = [
      w(0),
      w(1),
      w(2),
      w(3),
      w(4),
      w(5),
      w(6),
      w(7),
      w(8),
    ];
    if ((Number(cs) & 3) === 3 && v.kernelMode) {
      if (!toggleGuestMode(v)) return 0;
    }
    const csSel = Number(cs & 0xffffn) | 3;
    const ssSel = Number(ss & 0xffffn) | 3;
    if (!isCanonical(rip)) {
      d.crash(`iret: non-canonical return address 0x${rip.toString(16)}`);
      return 0;
    }
    if (!loadGuestSegment(v, Seg.CS, csSel) || !loadGuestSegment(v, Seg.SS, ssSel)) {
      d.crash(`iret: bad CS:SS 0x${csSel.toString(16)}:0x${ssSel.toString(16)} in the iret frame`);
      return 0;
    }
    setRip(cpu, rip);
    setReg(cpu, Reg.RSP, nrsp);
    const f = (Number(rfl & 0xffffffffn) & ~(Flag.IOPL | Flag.VM)) | Flag.IF;
    if (d.vmAssistOn(4)) v.iopl = (Number(rfl) >> 12) & 3;
    cpu.setRflags(f);
    v.upcallMask = (Number(rfl) & Flag.IF) === 0 ? 1 : 0;
    if (Number(flags) & VGCF_in_syscall) {
      setReg(cpu, Reg.RCX, rip);
      setReg(cpu, Reg.R11, BigInt(f >>> 0));
    } else {
      setReg(cpu, Reg.RCX, rcx);
      setReg(cpu, Reg.R11, r11);
    }
    setReg(cpu, Reg.RAX, rax);
    cpu.stateChanged();
    reloadDataSegments(v);
    return 0;
  }
  const esp = cpu.state.gprLo[Reg.RSP] >>> 0;
  const ssBase = cpu.state.segBaseLo[Seg.SS] >>> 0;
  const b = v.rdStruct(BigInt((ssBase + esp) >>> 0), 24);
  const b16 = b ?? v.rdStruct(BigInt((ssBase + esp) >>> 0), 16);
  if (!b16) {
    d.crash(`iret: fault reading the iret frame at 0x${esp.toString(16)}`);
    return 0;
  }
  const eax = b16.getUint32(0, true);
  const eip = b16.getUint32(4, true);
  const cs = b16.getUint32(8, true) & 0xffff;
  const efl = b16.getUint32(12, true);
  const rpl = cs & 3;
  if (efl & Flag.VM) {
    cpu.state.gprLo[Reg.RAX] = eax | 0;
    injectTrap(v, Vector.GP, 0);
    return 0;
  }
  if (rpl === 0) {
    d.crash('iret: attempt to return to ring 0');
    return 0;
  }
  if (!loadGuestSegment(v, Seg.CS, cs)) {
    d.crash(`iret: bad CS 0x${cs.toString(16)}`);
    return 0;
  }
  cpu.state.cpl = rpl;
  if (rpl === 1) {
    cpu.state.gprLo[Reg.RSP] = (esp + 16) | 0;
  } else {
    if (!b) {
      d.crash('iret: fault reading the outer-ring iret frame');
      return 0;
    }
    const nesp = b.getUint32(16, true);
    const nss = b.getUint32(20, true) & 0xffff;
    if (!loadGuestSegment(v, Seg.SS, nss)) {
      d.crash(`iret: bad SS 0x${nss.toString(16)}`);
      return 0;
    }
    cpu.state.gprLo[Reg.RSP] = nesp | 0;
  }
  cpu.state.ripLo = eip | 0;
  cpu.state.ripHi = 0;
  cpu.state.gprLo[Reg.RAX] = eax | 0;
  if (d.vmAssistOn(4)) v.iopl = (efl >> 12) & 3;
  cpu.setRflags(((efl & ~(Flag.IOPL | Flag.VM)) | Flag.IF) >>> 0);
  v.upcallMask = efl & Flag.IF ? 0 : 1;
  cpu.stateChanged();
  reloadDataSegments(v);
  return 0;
}

/**
 * Failsafe callback (brief §4.3): used when a data segment selector cannot
 * be reloaded on return to the guest. `bad` are the selectors (DS, ES, FS, GS)
 * as found; the offending ones are replaced by 0.
 */
export function failsafe(v: Vcpu, sels: number[]): boolean {
  const d = v.domain;
  const cb = v.failsafeCallback;
  if (!cb || cb.address === 0n) {
    d.crash('failed to load a guest segment register on return and no failsafe callback is registered');
    return false;
  }
  const cpu = v.cpu;
  const prevMask = v.upcallMask & 1;
  const rflags = cpu.getRflags();
  if (d.bits === 64) {
    const wasKernel = v.kernelMode;
    const rip = getRip(cpu);
    const rsp = getReg(cpu, Reg.RSP);
    const cs = cpu.state.segSel[Seg.CS];
    const ss = cpu.state.segSel[Seg.SS];
    if (!wasKernel && !toggleGuestMode(v)) return false;
    const fl = (rflags & ~(Flag.IF | Flag.IOPL)) | (prevMask ? 0 : Flag.IF);
    const words = [
      getReg(cpu, Reg.RCX),
      getReg(cpu, Reg.R11),
      ...sels.map(BigInt),
      rip,
      BigInt(wasKernel ? cs & ~3 : cs) | (BigInt(prevMask) << 32n),
      BigInt(fl >>> 0),
      rsp,
      BigInt(ss),
    ];
    const sp = ((wasKernel ? rsp : v.kernelSp) & ~0xfn) - BigInt(words.length * 8);
    const buf = new Uint8Array(words.length * 8);
    const dv = new DataView(buf.buffer);
    words.forEach((w, i) => dv.setBigUint64(i * 8, w, true));
    if (!v.wrBytes(sp, buf)) {
      d.crash('fault while creating failsafe frame');
      return false;
    }
    for (const s of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) loadGuestSegment(v, s, 0);
    setReg(cpu, Reg.RSP, sp);
    setRip(cpu, cb.address);
    loadGuestSegment(v, Seg.CS, FLAT_KERNEL_CS64);
    loadGuestSegment(v, Seg.SS, FLAT_KERNEL_SS64);
  } else {
    const cpl = cpu.state.cpl;
    const esp = cpu.state.gprLo[Reg.RSP] >>> 0;
    const fromRing1 = cpl <= 1;
    const fl = (rflags & ~(Flag.IF | Flag.IOPL)) | (prevMask ? 0 : Flag.IF);
    const words = [
      ...sels,
      cpu.state.ripLo >>> 0,
      (cpu.state.segSel[Seg.CS] | (prevMask << 16)) >>> 0,
      fl >>> 0,
    ];
    if (!fromRing1) words.push(esp, cpu.state.segSel[Seg.SS]);
    let sp = fromRing1 ? esp : Number(v.kernelSp & 0xffffffffn);
    sp = (sp - words.length * 4) >>> 0;
    if (!fromRing1 && !loadGuestSegment(v, Seg.SS, v.kernelSs)) {
      d.crash('bad kernel stack segment for failsafe callback');
      return false;
    }
    const buf = new Uint8Array(words.length * 4);
    const dv = new DataView(buf.buffer);
    words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
    if (!v.wrBytes(BigInt(((cpu.state.segBaseLo[Seg.SS] >>> 0) + sp) >>> 0), buf)) {
      d.crash('fault while creating failsafe frame');
      return false;
    }
    for (const s of [Seg.DS, Seg.ES, Seg.FS, Seg.GS]) loadGuestSegment(v, s, 0);
    loadGuestSegment(v, Seg.CS, FLAT_RING1_CS);
    loadGuestSegment(v, Seg.SS, FLAT_RING1_DS);
    cpu.state.cpl = 1;
    cpu.state.gprLo[Reg.RSP] = sp | 0;
    setRip(cpu, cb.address & 0xffffffffn);
  }
  cpu.setRflags((rflags & ~(Flag.AC | Flag.VM | Flag.RF | Flag.NT | Flag.TF)) | Flag.IF);
  if (cb.maskEvents) v.upcallMask = 1;
  cpu.stateChanged();
  return true;
}

// --- Privileged instruction emulation (Xen pv/emul-priv-op.c) ---

const MSR_EFER = 0xc0000080;
const MSR_IA32_DEBUGCTLMSR = 0x1d9;
const MSR_FS_BASE = 0xc0000100;
const MSR_GS_BASE = 0xc0000101;
const MSR_SHADOW_GS_BASE = 0xc0000102;
const MSR_TSC_AUX = 0xc0000103;
const MSR_IA32_APICBASE = 0x1b;
const MSR_IA32_MISC_ENABLE = 0x1a0;
const MSR_IA32_PAT = 0x277;
const MSR_IA32_TSC = 0x10;
const MSR_PLATFORM_INFO = 0xce;
const MSR_HYPERCALL_PAGE = 0x40000000;
const MSR_IA32_UCODE_REV = 0x8b;
const MSR_MISC_FEATURES_ENABLES = 0x140;

/** True when the guest runs in kernel context (64-bit: guest kernel mode; 32-bit: CPL 1). */
export function guestKernel(v: Vcpu): boolean {
  return v.domain.bits === 64 ? v.kernelMode : v.cpu.state.cpl <= 1;
}

function ioplOk(v: Vcpu): boolean {
  // Xen iopl_ok(): the virtual IOPL must cover the guest's virtual ring (kernel 1, user 3).
  return v.iopl >= (guestKernel(v) ? 1 : 3);
}

/** Sets a GPR from a privileged-op exit (32-bit destinations zero-extend). */
function setGpr(v: Vcpu, r: number, val: bigint): void {
  setReg(v.cpu, r, v.domain.bits === 64 ? val : val & 0xffffffffn);
}

/** Guest-visible CR0 (Xen read_cr: TS from the virtual CR0). */
export function guestCr0(v: Vcpu): number {
  return ((v.cpu.state.cr0 & ~Cr0.TS) | (v.fpuTs ? Cr0.TS : 0)) >>> 0;
}
export function guestCr3(v: Vcpu): bigint {
  const mfn = v.domain.bits === 64 && !v.kernelMode ? v.userRootMfn : v.kernelRootMfn;
  if (v.domain.bits === 64) return BigInt(mfn) << 12n;
  return BigInt(((mfn << 12) | (mfn >>> 20)) >>> 0);
}

/**
 * CR4 bits a PV guest controls in its view (Xen PV_CR4_GUEST_MASK: TSD, DE,
 * FSGSBASE, OSXSAVE; FSGSBASE is not in the CPUID policy, so dropped). With
 * the guest's DE, DR4/DR5 references are #UD / -ENODEV and DR7 R/W = 10b
 * arms I/O breakpoints checked in port I/O emulation (setDebugreg,
 * checkGuestIoBreakpoint).
 */
const PV_CR4_GUEST_MASK = Cr4.TSD | Cr4.DE | Cr4.OSXSAVE;
/** CR4 bits a PV guest sees from Xen's own CR4 (Xen PV_CR4_GUEST_VISIBLE_MASK). */
const PV_CR4_GUEST_VISIBLE_MASK = Cr4.PAE | Cr4.MCE | Cr4.OSFXSR | Cr4.OSXMMEXCPT;

/**
 * The guest-visible CR4 for a value the guest writes (Xen pv/domain.c
 * pv_fixup_guest_cr4): the guest-controllable bits (TSD, DE, OSXSAVE; see
 * PV_CR4_GUEST_MASK) from `cr4`, the visible bits from Xen's CR4 (the
 * CPU's), nothing else.
 */
export function pvFixupGuestCr4(v: Vcpu, cr4: number): number {
  return ((cr4 & PV_CR4_GUEST_MASK) | (v.cpu.state.cr4 & PV_CR4_GUEST_VISIBLE_MASK)) >>> 0;
}

/**
 * XSETBV from a PV guest (Xen: #GP in the guest, pv_emulate_privileged_op ->
 * x86_emulate's xsetbv -> x86emul_write_xcr -> handle_xsetbv). #UD (bounced)
 * unless the guest's virtual CR4.OSXSAVE is set; #GP(0) outside guest kernel
 * mode (x86_emulate's mode_ring0 sees the guest kernel as ring 0), for an XCR
 * other than 0, or for a value handle_xsetbv rejects (-EINVAL: bits outside
 * the supported XCR0 x87|SSE, or x87 clear: valid_xcr0). Otherwise XCR0 is
 * loaded (Xen's v->arch.xcr0 and the hardware's) and the instruction skipped.
 * @returns true when handled (emulated or #UD bounced), false for #GP(0).
 */
function emulateXsetbv(v: Vcpu): boolean {
  const cpu = v.cpu;
  const st = cpu.state;
  if (!(v.guestCr4 & Cr4.OSXSAVE)) {
    v.domain.trace('XSETBV with the guest CR4.OSXSAVE clear -> #UD');
    injectTrap(v, Vector.UD, -1);
    return true;
  }
  if (!guestKernel(v)) return false;
  if (st.gprLo[Reg.RCX] !== 0) return false;
  const lo = st.gprLo[Reg.RAX];
  if (st.gprLo[Reg.RDX] !== 0 || lo & ~XCR0_SUPPORTED || !(lo & 1)) {
    v.domain.reject(
      E.EINVAL,
      `handle_xsetbv: XCR0 0x${(st.gprLo[Reg.RDX] >>> 0).toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')} not allowed`,
    );
    return false;
  }
  st.xcr0 = lo & XCR0_SUPPORTED;
  cpu.skipInstruction();
  return true;
}

/**
 * Emulates an intercepted privileged instruction. Returns true when it was
 * emulated (RIP advanced or the guest otherwise moved on), false when #GP
 * should be injected.
 */
export function emulatePrivOp(v: Vcpu): boolean {
  const cpu = v.cpu;
  const d = v.domain;
  const op = cpu.exitPrivOp;
  const kernel = guestKernel(v);
  switch (op) {
    case PrivOp.MOV_FROM_CR: {
      if (!kernel) return false;
      let val: bigint;
      switch (cpu.exitPrivCr) {
        case 0:
          val = BigInt(guestCr0(v));
          break;
        case 2:
          val = v.cr2;
          break;
        case 3:
          val = guestCr3(v);
          break;
        case 4:
          val = BigInt(v.guestCr4 >>> 0);
          break;
        default:
          return false;
      }
      setGpr(v, cpu.exitPrivReg, val);
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.MOV_TO_CR: {
      if (!kernel) return false;
      const val = getReg(cpu, cpu.exitPrivReg) & (d.bits === 64 ? 0xffffffffffffffffn : 0xffffffffn);
      switch (cpu.exitPrivCr) {
        case 0:
          if ((Number(val & 0xffffffffn) ^ guestCr0(v)) & ~Cr0.TS) {
            d.reject(E.EPERM, 'Attempt to change unmodifiable CR0 flags');
            return false;
          }
          fpuTaskswitch(v, val & BigInt(Cr0.TS));
          break;
        case 2:
          v.cr2 = val;
          break;
        case 3: {
          const mfn =
            d.bits === 64
              ? Number(val >> 12n)
              : Number(((val >> 12n) | ((val & 0xfffn) << 20n)) & 0xffffffffn);
          cpu.skipInstruction();
          const rc = d.mm.newBaseptr(v, mfn);
          if (rc < 0) {
            // Undo the skip: the mov faults with #GP.
            cpu.state.ripLo = (cpu.state.ripLo - cpu.exitInsnLength) | 0;
            return false;
          }
          return true;
        }
        case 4:
          // Xen write_cr: ctrlreg[4] = pv_fixup_guest_cr4(val); the hardware CR4 (pv_make_cr4) takes TSD from it.
          v.guestCr4 = pvFixupGuestCr4(v, Number(val & 0xffffffffn));
          cpu.state.cr4 = (cpu.state.cr4 & ~Cr4.TSD) | (v.guestCr4 & Cr4.TSD);
          cpu.stateChanged();
          break;
        default:
          return false;
      }
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.MOV_FROM_DR: {
      if (!kernel) return false;
      // x86emul_read_dr: -ENODEV (DR4/DR5 with the guest's CR4.DE, DR8+) -> #UD in the guest.
      const val = getDebugreg(v, cpu.exitPrivCr);
      if (typeof val === 'number') {
        injectTrap(v, Vector.UD, -1);
        return true;
      }
      setGpr(v, cpu.exitPrivReg, val);
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.MOV_TO_DR: {
      if (!kernel) return false;
      // x86emul_write_dr: set_debugreg's -ENODEV -> #UD, any other error -> #GP(0).
      const rc = setDebugreg(v, cpu.exitPrivCr, getReg(cpu, cpu.exitPrivReg));
      if (rc === -E.ENODEV) {
        injectTrap(v, Vector.UD, -1);
        return true;
      }
      if (rc < 0) return false;
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.RDMSR: {
      if (!kernel) return false;
      const msr = cpu.state.gprLo[Reg.RCX] >>> 0;
      let val: bigint | null = null;
      switch (msr) {
        case MSR_FS_BASE:
          if (d.bits === 64) val = getSegBase(cpu, Seg.FS);
          break;
        case MSR_GS_BASE:
          if (d.bits === 64) val = getSegBase(cpu, Seg.GS);
          break;
        case MSR_SHADOW_GS_BASE:
          if (d.bits === 64) val = getKernelGsBase(cpu);
          break;
        case MSR_EFER:
          val = BigInt(cpu.state.efer >>> 0);
          break;
        case MSR_IA32_APICBASE:
          val = 0xfee00900n;
          break;
        case MSR_IA32_MISC_ENABLE:
          val = (0x1n << 11n) | (0x1n << 12n);
          break;
        case MSR_IA32_PAT:
          val = 0x0007040600070406n;
          break;
        case MSR_IA32_TSC:
          val = BigInt(cpu.state.instructionsRetired * cpu.tscPerInstruction + cpu.tscOffset);
          break;
        case MSR_TSC_AUX:
          val = BigInt(cpu.state.tscAux >>> 0);
          break;
        case MSR_PLATFORM_INFO:
        case MSR_IA32_UCODE_REV:
        case MSR_MISC_FEATURES_ENABLES:
        case MSR_IA32_DEBUGCTLMSR: // Xen guest_rdmsr: a PV guest reads DEBUGCTL as 0
          val = 0n;
          break;
      }
      if (val === null) return false;
      setReg(cpu, Reg.RAX, val & 0xffffffffn);
      setReg(cpu, Reg.RDX, val >> 32n);
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.WRMSR: {
      if (!kernel) return false;
      const msr = cpu.state.gprLo[Reg.RCX] >>> 0;
      const val = (BigInt(cpu.state.gprLo[Reg.RDX] >>> 0) << 32n) | BigInt(cpu.state.gprLo[Reg.RAX] >>> 0);
      switch (msr) {
        case MSR_FS_BASE:
        case MSR_GS_BASE:
        case MSR_SHADOW_GS_BASE:
          if (d.bits !== 64 || !isCanonical(val)) return false;
          if (msr === MSR_FS_BASE) setSegBase(cpu, Seg.FS, val);
          else if (msr === MSR_GS_BASE) setSegBase(cpu, Seg.GS, val);
          else setKernelGsBase(cpu, val);
          break;
        case MSR_EFER:
          if (val !== BigInt(cpu.state.efer >>> 0)) return false;
          break;
        case MSR_IA32_PAT:
        case MSR_IA32_MISC_ENABLE:
          break;
        case MSR_IA32_UCODE_REV:
        case MSR_MISC_FEATURES_ENABLES:
          // Xen: writing 0 is accepted (microcode revision probe, CPUID faulting off).
          if (val !== 0n) return false;
          break;
        case MSR_HYPERCALL_PAGE: {
          const mfn = Number(val >> 12n);
          if (d.frameOwner(mfn) !== d.domid) return false;
          writeHypercallPage(d, d.mem.mfnToOffset(mfn));
          break;
        }
        default:
          return false;
      }
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.IN:
    case PrivOp.OUT: {
      if (!ioplOk(v)) return false;
      // A domU owns no I/O ports: reads return all ones, writes are dropped.
      if (op === PrivOp.IN) {
        const size = cpu.exitPrivSize;
        const mask = size === 1 ? 0xff : size === 2 ? 0xffff : 0xffffffff;
        cpu.state.gprLo[Reg.RAX] = (cpu.state.gprLo[Reg.RAX] & ~mask) | mask | 0;
        if (size === 4) cpu.state.gprHi[Reg.RAX] = 0;
      }
      cpu.skipInstruction();
      // pv_emulate_privileged_op: a matching guest I/O breakpoint sets DR6 B0-B3 and bounces #DB (a trap).
      const port = cpu.exitPrivPort < 0 ? cpu.state.gprLo[Reg.RDX] & 0xffff : cpu.exitPrivPort & 0xffff;
      const match = checkGuestIoBreakpoint(v, port, cpu.exitPrivSize);
      if (match !== 0) {
        cpu.state.dr6 = cpu.state.dr6 | match | 0xffff0ff0 | 0;
        injectTrap(v, Vector.DB, -1);
      }
      return true;
    }
    case PrivOp.CLTS:
      if (!kernel) return false;
      fpuTaskswitch(v, 0n);
      cpu.skipInstruction();
      return true;
    case PrivOp.CLI:
    case PrivOp.STI:
      // Xen: allowed (and ignored) only with I/O privilege.
      if (!ioplOk(v)) return false;
      cpu.skipInstruction();
      return true;
    case PrivOp.WBINVD:
      if (!kernel) return false;
      cpu.skipInstruction();
      return true;
    case PrivOp.INVLPG:
      if (!kernel) return false;
      cpu.flushTlbPage(cpu.exitPrivLinLo, cpu.exitPrivLinHi);
      cpu.skipInstruction();
      return true;
    case PrivOp.RDTSC: {
      // x86_emulate rdtsc: #GP(0) outside ring 0 when the guest's CR4.TSD is set.
      if (!kernel && v.guestCr4 & Cr4.TSD) return false;
      const tsc = cpu.state.instructionsRetired * cpu.tscPerInstruction + cpu.tscOffset;
      cpu.state.gprLo[Reg.RAX] = (tsc % 0x100000000) | 0;
      cpu.state.gprHi[Reg.RAX] = 0;
      cpu.state.gprLo[Reg.RDX] = Math.floor(tsc / 0x100000000) | 0;
      cpu.state.gprHi[Reg.RDX] = 0;
      cpu.skipInstruction();
      return true;
    }
    case PrivOp.XSETBV:
      return emulateXsetbv(v);
    case PrivOp.HLT:
      // Treated as SCHEDOP_block (the guest idles until an event).
      if (!kernel) return false;
      cpu.skipInstruction();
      v.upcallMask = 0;
      if (!v.upcallPending) v.blocked = true;
      return true;
    default:
      return false;
  }
}

/**
 * Xen's breakpoint_addr_ok (asm/debugreg.h, __addr_ok): a DR0-DR3 value must
 * lie in the lower canonical half or above the hypervisor's range
 * (>= HYPERVISOR_VIRT_END 0xffff880000000000), for 32-bit guests too.
 */
function breakpointAddrOk(value: bigint): boolean {
  return value < 1n << 47n || value >= 0xffff880000000000n;
}

/**
 * Xen pv/emul-priv-op.c check_guest_io_breakpoint: DR6 B0-B3 bits of the
 * I/O breakpoints (enabled in dr7Emul, guest CR4.DE set) whose range
 * [DRn, DRn + LENn) overlaps the `len`-byte access at `port` (DRn is not
 * aligned down, as in Xen). 0 when none.
 */
export function checkGuestIoBreakpoint(v: Vcpu, port: number, len: number): number {
  if (v.dr7Emul === 0 || !(v.guestCr4 & Cr4.DE)) return 0;
  let match = 0;
  const dr7 = Number(v.debugreg[7] & 0xffffffffn);
  for (let i = 0; i < 4; i++) {
    if (!(v.dr7Emul & (3 << (2 * i)))) continue;
    const start = Number(v.debugreg[i] & 0xffffffffffffn);
    const lenBits = (dr7 >>> (18 + 4 * i)) & 3;
    const width = lenBits === 0 ? 1 : lenBits === 1 ? 2 : lenBits === 2 ? 8 : 4;
    if (v.debugreg[i] >> 48n === 0n && start < port + len && start + width > port) match |= 1 << i;
  }
  return match;
}

/** Xen x86_adj_dr6_rsvd with no RTM/BLD in the policy: reserved bits read as 1, bit 12 as 0. */
function adjDr6(value: bigint): bigint {
  return (value | 0xffff0ff0n) & ~0x1000n;
}

/** Xen x86_adj_dr7_rsvd with no RTM in the policy: bits 11, 12, 14, 15 forced to 0, bit 10 to 1. */
function adjDr7(value: bigint): bigint {
  return (value & ~0xd800n) | 0x400n;
}

/**
 * set_debugreg (8) (Xen xen/arch/x86/pv/misc-hypercalls.c set_debugreg):
 * DR0-DR3 outside the guest's address range -> -EPERM; DR4/DR5 alias
 * DR6/DR7 without the guest's virtual CR4.DE, -ENODEV with it; DR6/DR7 with
 * bits 63:32 set -> -EINVAL; reserved bits adjusted as
 * x86_adj_dr6_rsvd/x86_adj_dr7_rsvd do; DR7.GD -> -EPERM; with any L/G bit
 * set, an R/W = 10 (I/O) field without CR4.DE -> -EPERM, with it the I/O
 * breakpoints' L/G bits go to dr7Emul (Xen dr7_emul) and out of the
 * hardware DR7 (emulated port I/O checks them). Any other register ->
 * -ENODEV. Values reach the vCPU's hardware debug registers, which the CPU
 * acts on (#DB is then bounced to the guest's trap table).
 */
export function setDebugreg(v: Vcpu, reg: number, value: bigint): number {
  const st = v.cpu.state;
  value = BigInt.asUintN(64, value);
  switch (reg) {
    case 0:
    case 1:
    case 2:
    case 3:
      if (!breakpointAddrOk(value)) return -E.EPERM;
      v.debugreg[reg] = value;
      st.drLo[reg] = Number(value & 0xffffffffn) | 0;
      st.drHi[reg] = Number(value >> 32n) | 0;
      return 0;
    case 4:
    case 6:
      if (reg === 4 && v.guestCr4 & Cr4.DE) return -E.ENODEV;
      if (value >> 32n) return -E.EINVAL;
      v.debugreg[6] = adjDr6(value);
      st.dr6 = Number(v.debugreg[6]) | 0;
      return 0;
    case 5:
    case 7: {
      if (reg === 5 && v.guestCr4 & Cr4.DE) return -E.ENODEV;
      if (value >> 32n) return -E.EINVAL;
      value = adjDr7(value);
      if (value & 0x2000n) return -E.EPERM; // GD: privileged
      let ioEnable = 0;
      if (value & 0xffn) {
        for (let i = 0; i < 4; i++) {
          if (((value >> BigInt(16 + i * 4)) & 3n) === 2n) {
            if (!(v.guestCr4 & Cr4.DE)) return -E.EPERM; // I/O needs the guest's CR4.DE
            ioEnable |= Number(value & BigInt(3 << (2 * i)));
          }
        }
      }
      v.dr7Emul = ioEnable;
      value &= ~BigInt(ioEnable);
      v.debugreg[7] = value;
      st.dr7 = Number(value) | 0;
      return 0;
    }
    default:
      return -E.ENODEV;
  }
}

/**
 * get_debugreg (9) (Xen do_get_debugreg -> x86emul_read_dr): DR0-DR3, DR6,
 * DR7 with the emulated I/O enables (dr7Emul) merged back; DR4/DR5 alias
 * DR6/DR7 without the guest's CR4.DE and are -ENODEV with it; any other
 * register -ENODEV.
 */
export function getDebugreg(v: Vcpu, reg: number): number | bigint {
  if ((reg === 4 || reg === 5) && v.guestCr4 & Cr4.DE) return -E.ENODEV;
  if (reg === 4) reg = 6;
  else if (reg === 5) reg = 7;
  if (reg < 0 || reg > 7 || reg === 4 || reg === 5) return -E.ENODEV;
  if (reg === 6) v.debugreg[6] = BigInt(v.cpu.state.dr6 >>> 0);
  if (reg === 7) return v.debugreg[7] | BigInt(v.dr7Emul);
  return v.debugreg[reg];
}
