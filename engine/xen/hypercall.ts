/**
 * Hypercall entry and dispatch (Xen arch/x86/pv/hypercall.c,
 * include/hypercall-defs.c): `syscall` in 64-bit guest-kernel mode and
 * `int $0x82` from ring 1 (32-bit) enter here with the number in rAX and
 * arguments in RDI RSI RDX R10 R8 (R9) / EBX ECX EDX ESI EDI. Results go to
 * rAX; 64-bit returns as SYSRET does (RCX = return RIP, R11 = RFLAGS).
 */
import { Reg, Seg } from '../cpu/state';
import type { Vcpu } from './domain';
import * as E from './errno';
import {
  getReg,
  setReg,
  getRip,
  setRip,
  getSegBase,
  setSegBase,
  setKernelGsBase,
  getKernelGsBase,
  isCanonical,
  loadGuestSegment,
} from './regs';
import {
  setTrapTable,
  setCallbacks,
  stackSwitch,
  fpuTaskswitch,
  setDebugreg,
  getDebugreg,
  doIret,
  callbackOp,
} from './traps';
import { schedOp, schedOpCompat, setTimerOp } from './sched';
import { vcpuOp } from './vcpu-op';
import { memoryOp } from './memory';
import { xenVersion } from './version';
import { consoleIo, type ConsoleIoState } from './console-io';
import { physdevOp } from './physdev';

import { hypercallName as hypercallNameOf } from '../debug/xen-names';
export { HYPERCALL_NAMES } from '../debug/xen-names';
export { hypercallNameOf };

const MULTICALL = 13;
const IRET = 23;

/** Per-domain settings the dispatcher needs beyond the Domain object. */
export interface HypercallEnv {
  consoleIo: ConsoleIoState;
  /** Counts hypercalls executed (stats, bench). */
  count: number;
}

/** Reads the hypercall number and arguments from the registers (cold path). */
export function readHypercallRegs(v: Vcpu): { nr: number; args: bigint[] } {
  const cpu = v.cpu;
  if (v.domain.bits === 64) {
    const rax = getReg(cpu, Reg.RAX);
    return {
      nr: rax > 0xffffn ? -1 : Number(rax),
      args: [Reg.RDI, Reg.RSI, Reg.RDX, Reg.R10, Reg.R8, Reg.R9].map((r) => getReg(cpu, r)),
    };
  }
  return {
    nr: cpu.state.gprLo[Reg.RAX] >>> 0 > 0xffff ? -1 : cpu.state.gprLo[Reg.RAX] >>> 0,
    args: [Reg.RBX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.RBP].map((r) => BigInt(cpu.state.gprLo[r] >>> 0)),
  };
}

/** vm_assist (21): Xen common/domain.c do_vm_assist with the PV valid masks. */
export function vmAssist(v: Vcpu, cmd: number, type: number): number {
  const d = v.domain;
  if (type >= d.bits) return -E.EINVAL;
  const valid = d.bits === 64 ? [0, 1, 2, 3, 4, 5, 32] : [0, 1, 2, 3, 4, 5];
  if (!valid.includes(type)) return -E.EINVAL;
  if (cmd === 0) d.setVmAssist(type, true);
  else if (cmd === 1) d.setVmAssist(type, false);
  else return -E.ENOSYS;
  return 0;
}

/** set_segment_base (25): 64-bit only (Xen arch/x86/pv/misc-hypercalls.c do_set_segment_base). */
export function setSegmentBase(v: Vcpu, which: number, base: bigint): number {
  const d = v.domain;
  const cpu = v.cpu;
  if (d.bits !== 64) return -E.ENOSYS;
  switch (which) {
    case 0:
      if (!isCanonical(base)) return -E.EINVAL;
      setSegBase(cpu, Seg.FS, base);
      v.fsBase = base;
      return 0;
    case 1:
      if (!isCanonical(base)) return -E.EINVAL;
      if (v.kernelMode) setKernelGsBase(cpu, base);
      else setSegBase(cpu, Seg.GS, base);
      v.gsBaseUser = base;
      return 0;
    case 2:
      if (!isCanonical(base)) return -E.EINVAL;
      if (v.kernelMode) setSegBase(cpu, Seg.GS, base);
      else setKernelGsBase(cpu, base);
      v.gsBaseKernel = base;
      return 0;
    case 3: {
      // swapgs; mov sel,%gs; swapgs: the selector's base becomes the user GS base.
      const sel = Number(base & 0xffffn);
      const kernelBase = getSegBase(cpu, Seg.GS);
      if (!loadGuestSegment(v, Seg.GS, sel)) loadGuestSegment(v, Seg.GS, 0);
      const userBase = getSegBase(cpu, Seg.GS) & 0xffffffffn;
      setKernelGsBase(cpu, userBase);
      setSegBase(cpu, Seg.GS, kernelBase);
      v.gsBaseUser = userBase;
      return 0;
    }
    default:
      return -E.EINVAL;
  }
}

/**
 * Executes hypercall `nr` with `a` for vCPU `v`. Returns Xen's result
 * (number, or bigint for get_debugreg values). Never throws for guest input.
 */
export function dispatch(
  v: Vcpu,
  env: HypercallEnv,
  nr: number,
  a: bigint[],
  inMulticall = false,
): number | bigint {
  const d = v.domain;
  const u32 = (x: bigint) => Number(x & 0xffffffffn);
  const i32 = (x: bigint) => Number(BigInt.asIntN(32, x));
  env.count++;
  switch (nr) {
    case 0:
      return setTrapTable(v, a[0]);
    case 1:
      return d.mm.mmuUpdate(v, a);
    case 2:
      return d.mm.setGdt(v, a);
    case 3:
      return stackSwitch(v, a[0], a[1]);
    case 4:
      return setCallbacks(v, a);
    case 5:
      return fpuTaskswitch(v, a[0]);
    case 6:
      return schedOpCompat(v, i32(a[0]), a[1]);
    case 7:
      return -E.EPERM;
    case 8:
      return setDebugreg(v, i32(a[0]), a[1]);
    case 9:
      return getDebugreg(v, i32(a[0]));
    case 10:
      return d.mm.updateDescriptor(v, a);
    case 12:
      return memoryOp(v, a[0], a[1]);
    case MULTICALL:
      if (inMulticall) return -E.EINVAL;
      return multicall(v, env, a[0], u32(a[1]));
    case 14:
      return d.mm.updateVaMapping(v, a);
    case 15:
      return setTimerOp(v, d.bits === 64 ? a[0] : (a[1] << 32n) | a[0]);
    case 16: {
      const cmd = v.rd(a[0], 4);
      if (cmd === null) return -E.EFAULT;
      return d.evtchn.op(v, Number(cmd), a[0] + 4n);
    }
    case 17:
      return xenVersion(v, i32(a[0]), a[1]);
    case 18:
      return consoleIo(v, env.consoleIo, i32(a[0]), u32(a[1]), a[2]);
    case 19: {
      const cmd = v.rd(a[0], 4);
      if (cmd === null) return -E.EFAULT;
      return physdevOp(v, Number(cmd), a[0] + 4n);
    }
    case 20:
      return d.gnttab.op(v, u32(a[0]), a[1], u32(a[2]));
    case 21:
      return vmAssist(v, u32(a[0]), u32(a[1]));
    case 22:
      return d.mm.updateVaMappingOtherdomain(v, a);
    case IRET:
      if (inMulticall) return -E.EINVAL;
      return doIret(v);
    case 24:
      return vcpuOp(v, i32(a[0]), u32(a[1]), a[2]);
    case 25:
      return setSegmentBase(v, u32(a[0]), a[1]);
    case 26:
      return d.mm.mmuextOp(v, a);
    case 27: // xsm_op: dummy XSM module
      return -E.ENOSYS;
    case 28: // nmi_op
      return -E.ENOSYS;
    case 29:
      return schedOp(v, i32(a[0]), a[1]);
    case 30:
      return callbackOp(v, i32(a[0]), a[1]);
    case 32:
      return d.evtchn.op(v, i32(a[0]), a[1]);
    case 33:
      return physdevOp(v, i32(a[0]), a[1]);
    case 34: // hvm_op on a PV domain
      return -E.EINVAL;
    case 35:
    case 36:
    case 37:
    case 41:
    case 42:
    case 48:
    case 49:
      // Control-domain interfaces (XSM dummy policy: privileged only).
      return -E.EPERM;
    case 40: // xenpmu_op with vPMU off
      return -E.EOPNOTSUPP;
    default:
      return -E.ENOSYS;
  }
}

/** multicall (13): Xen common/multicall.c do_multicall. */
function multicall(v: Vcpu, env: HypercallEnv, list: bigint, count: number): number {
  const d = v.domain;
  const es = d.bits / 8;
  const entSize = es * 8;
  for (let i = 0; i < count; i++) {
    const base = list + BigInt(i * entSize);
    const b = v.rdStruct(base, entSize);
    if (!b) return -E.EFAULT;
    const rd = (k: number) => (es === 8 ? b.getBigUint64(k * 8, true) : BigInt(b.getUint32(k * 4, true)));
    const op = Number(rd(0) > 0xffffn ? -1n : rd(0));
    const args = [rd(2), rd(3), rd(4), rd(5), rd(6), rd(7)];
    const obs = d.observer;
    obs.trace?.(`multicall[${i}] ${hypercallNameOf(op)}`);
    let r: number | bigint;
    if (op === IRET) {
      r = -E.EINVAL;
    } else r = dispatch(v, env, op, args, true);
    const rv = BigInt.asUintN(es * 8, BigInt(r));
    if (!v.wr(base + BigInt(es), es, rv)) return -E.EFAULT;
    if (d.finished) break;
  }
  return 0;
}

/**
 * Handles a hypercall exit: RIP is at the `syscall`/`int $0x82`. Advances
 * RIP, runs the call, writes the result. Returns the result.
 */
export function doHypercall(v: Vcpu, env: HypercallEnv, insnLength: number): number | bigint {
  const d = v.domain;
  const cpu = v.cpu;
  const { nr, args } = readHypercallRegs(v);
  const rip = getRip(cpu);
  const next = d.bits === 64 ? rip + BigInt(insnLength) : (rip + BigInt(insnLength)) & 0xffffffffn;
  setRip(cpu, next);
  if (d.bits === 64) {
    // SYSRET-style return: RCX = return RIP, R11 = RFLAGS.
    setReg(cpu, Reg.RCX, next);
    setReg(cpu, Reg.R11, BigInt(cpu.getRflags() >>> 0));
  }
  v.noResult = false;
  let r: number | bigint;
  try {
    r = dispatch(v, env, nr, args);
  } catch (e) {
    d.crash(`hypervisor model error in ${hypercallNameOf(nr)}: ${(e as Error)?.message ?? String(e)}`);
    r = -E.EFAULT;
  }
  if (!v.noResult) {
    if (d.bits === 64) setReg(cpu, Reg.RAX, BigInt.asUintN(64, BigInt(r)));
    else setReg(cpu, Reg.RAX, BigInt.asUintN(32, BigInt(r)));
  }
  d.observer.afterHypercall?.(v, nr, args, typeof r === 'bigint' ? Number(BigInt.asIntN(64, r)) : r);
  return r;
}

// Re-exported for callers that read the shadow GS base.
export { getKernelGsBase };
