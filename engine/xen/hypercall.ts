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
import {
  beginHypercall,
  chargeWork,
  createContinuation,
  hcState,
  hypercallPreemptCheck,
  setContinuationRegs,
} from './preempt';

import {
  hypercallName as hypercallNameOf,
  __HYPERVISOR_arch_1,
  __HYPERVISOR_callback_op,
  __HYPERVISOR_console_io,
  __HYPERVISOR_dm_op,
  __HYPERVISOR_domctl,
  __HYPERVISOR_event_channel_op,
  __HYPERVISOR_event_channel_op_compat,
  __HYPERVISOR_fpu_taskswitch,
  __HYPERVISOR_get_debugreg,
  __HYPERVISOR_grant_table_op,
  __HYPERVISOR_hvm_op,
  __HYPERVISOR_hypfs_op,
  __HYPERVISOR_iret,
  __HYPERVISOR_kexec_op,
  __HYPERVISOR_mca,
  __HYPERVISOR_memory_op,
  __HYPERVISOR_mmu_update,
  __HYPERVISOR_mmuext_op,
  __HYPERVISOR_multicall,
  __HYPERVISOR_nmi_op,
  __HYPERVISOR_physdev_op,
  __HYPERVISOR_physdev_op_compat,
  __HYPERVISOR_platform_op,
  __HYPERVISOR_sched_op,
  __HYPERVISOR_sched_op_compat,
  __HYPERVISOR_set_callbacks,
  __HYPERVISOR_set_debugreg,
  __HYPERVISOR_set_gdt,
  __HYPERVISOR_set_segment_base,
  __HYPERVISOR_set_timer_op,
  __HYPERVISOR_set_trap_table,
  __HYPERVISOR_stack_switch,
  __HYPERVISOR_sysctl,
  __HYPERVISOR_update_descriptor,
  __HYPERVISOR_update_va_mapping,
  __HYPERVISOR_update_va_mapping_otherdomain,
  __HYPERVISOR_vcpu_op,
  __HYPERVISOR_vm_assist,
  __HYPERVISOR_xen_version,
  __HYPERVISOR_xenpmu_op,
  __HYPERVISOR_xsm_op,
} from './public/xen';
export { HYPERCALL_NAMES } from './public/xen';
export { hypercallNameOf };

const MULTICALL = __HYPERVISOR_multicall;
const IRET = __HYPERVISOR_iret;

/** Per-domain settings the dispatcher needs beyond the Domain object. */
export interface HypercallEnv {
  consoleIo: ConsoleIoState;
  /** Counts hypercalls executed (stats, bench). */
  count: number;
  /** Continuations created (hypercalls preempted and re-executed by the guest; engine/xen/preempt.ts). */
  preemptions?: number;
}

/** Reads the hypercall number and arguments from the registers (cold path). */
export function readHypercallRegs(v: Vcpu): { nr: number; args: bigint[] } {
  const cpu = v.cpu;
  const args: bigint[] = [];
  if (v.domain.bits === 64) {
    const rax = getReg(cpu, Reg.RAX);
    for (let i = 0; i < 6; i++) args.push(getReg(cpu, ARG_REGS_64[i]));
    return { nr: rax > 0xffffn ? -1 : Number(rax), args };
  }
  const lo = cpu.state.gprLo;
  for (let i = 0; i < 6; i++) args.push(BigInt(lo[ARG_REGS_32[i]] >>> 0));
  return { nr: lo[Reg.RAX] >>> 0 > 0xffff ? -1 : lo[Reg.RAX] >>> 0, args };
}

/** Argument registers in order (Xen pv/hypercall.c): 64-bit RDI RSI RDX R10 R8 R9, 32-bit EBX ECX EDX ESI EDI EBP. */
const ARG_REGS_64 = [Reg.RDI, Reg.RSI, Reg.RDX, Reg.R10, Reg.R8, Reg.R9];
const ARG_REGS_32 = [Reg.RBX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.RBP];

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
    case __HYPERVISOR_set_trap_table:
      return setTrapTable(v, a[0]);
    case __HYPERVISOR_mmu_update:
      return d.mm.mmuUpdate(v, a);
    case __HYPERVISOR_set_gdt:
      return d.mm.setGdt(v, a);
    case __HYPERVISOR_stack_switch:
      return stackSwitch(v, a[0], a[1]);
    case __HYPERVISOR_set_callbacks:
      return setCallbacks(v, a);
    case __HYPERVISOR_fpu_taskswitch:
      return fpuTaskswitch(v, a[0]);
    case __HYPERVISOR_sched_op_compat:
      return schedOpCompat(v, i32(a[0]), a[1]);
    case __HYPERVISOR_platform_op:
      return -E.EPERM;
    case __HYPERVISOR_set_debugreg:
      return setDebugreg(v, i32(a[0]), a[1]);
    case __HYPERVISOR_get_debugreg:
      return getDebugreg(v, i32(a[0]));
    case __HYPERVISOR_update_descriptor:
      return d.mm.updateDescriptor(v, a);
    case __HYPERVISOR_memory_op:
      return memoryOp(v, a[0], a[1]);
    case __HYPERVISOR_multicall:
      if (inMulticall) return -E.EINVAL;
      return multicall(v, env, a[0], u32(a[1]));
    case __HYPERVISOR_update_va_mapping:
      return d.mm.updateVaMapping(v, a);
    case __HYPERVISOR_set_timer_op:
      return setTimerOp(v, d.bits === 64 ? a[0] : (a[1] << 32n) | a[0]);
    case __HYPERVISOR_event_channel_op_compat: {
      const cmd = v.rd(a[0], 4);
      if (cmd === null) return -E.EFAULT;
      return d.evtchn.op(v, Number(cmd), a[0] + 4n);
    }
    case __HYPERVISOR_xen_version:
      return xenVersion(v, i32(a[0]), a[1]);
    case __HYPERVISOR_console_io:
      return consoleIo(v, env.consoleIo, i32(a[0]), u32(a[1]), a[2]);
    case __HYPERVISOR_physdev_op_compat: {
      const cmd = v.rd(a[0], 4);
      if (cmd === null) return -E.EFAULT;
      return physdevOp(v, Number(cmd), a[0] + 4n);
    }
    case __HYPERVISOR_grant_table_op:
      return d.gnttab.op(v, u32(a[0]), a[1], u32(a[2]));
    case __HYPERVISOR_vm_assist:
      return vmAssist(v, u32(a[0]), u32(a[1]));
    case __HYPERVISOR_update_va_mapping_otherdomain:
      return d.mm.updateVaMappingOtherdomain(v, a);
    case __HYPERVISOR_iret:
      if (inMulticall) return -E.EINVAL;
      return doIret(v);
    case __HYPERVISOR_vcpu_op:
      return vcpuOp(v, i32(a[0]), u32(a[1]), a[2]);
    case __HYPERVISOR_set_segment_base:
      return setSegmentBase(v, u32(a[0]), a[1]);
    case __HYPERVISOR_mmuext_op:
      return d.mm.mmuextOp(v, a);
    case __HYPERVISOR_xsm_op: // xsm_op: dummy XSM module
      return -E.ENOSYS;
    case __HYPERVISOR_nmi_op: // nmi_op
      return -E.ENOSYS;
    case __HYPERVISOR_sched_op:
      return schedOp(v, i32(a[0]), a[1]);
    case __HYPERVISOR_callback_op:
      return callbackOp(v, i32(a[0]), a[1]);
    case __HYPERVISOR_event_channel_op:
      return d.evtchn.op(v, i32(a[0]), a[1]);
    case __HYPERVISOR_physdev_op:
      return physdevOp(v, i32(a[0]), a[1]);
    case __HYPERVISOR_hvm_op: // hvm_op on a PV domain
      return -E.EINVAL;
    case __HYPERVISOR_sysctl:
    case __HYPERVISOR_domctl:
    case __HYPERVISOR_kexec_op:
    case __HYPERVISOR_dm_op:
    case __HYPERVISOR_hypfs_op:
    case __HYPERVISOR_mca:
    case __HYPERVISOR_arch_1:
      // Control-domain interfaces (XSM dummy policy: privileged only).
      return -E.EPERM;
    case __HYPERVISOR_xenpmu_op: // xenpmu_op with vPMU off
      return -E.EOPNOTSUPP;
    default:
      return -E.ENOSYS;
  }
}

/**
 * multicall (13): Xen common/multicall.c do_multicall. Runs the
 * multicall_entry_t list (op, result, args[6], each a guest word) in order;
 * each entry's result is written back. Preemptible: before every entry but
 * the first, a hypercall that has done HYPERCALL_QUANTUM units of work
 * returns a continuation multicall(list + i entries, count - i); a sub-call
 * that itself preempted has its continuation (op and args) written into its
 * entry and the multicall continues from that entry.
 * @returns 0, -EFAULT (unreadable entry, unwritable result, or a list that
 *   leaves the guest's address space), or the continuation's op number.
 */
function multicall(v: Vcpu, env: HypercallEnv, list: bigint, count: number): number {
  const d = v.domain;
  const es = d.bits / 8;
  const entSize = es * 8;
  const mask = d.bits === 64 ? (1n << 64n) - 1n : 0xffffffffn;
  // guest_handle_okay(call_list, nr_calls): the whole array inside the guest's part of the address space.
  const end = list + BigInt(count) * BigInt(entSize);
  if (d.bits === 32 ? end > 0x1_0000_0000n : list < 0x8000_0000_0000n && end > 0x8000_0000_0000n)
    return -E.EFAULT;
  for (let i = 0; i < count; i++) {
    const base = (list + BigInt(i * entSize)) & mask;
    if (i && hypercallPreemptCheck()) return createContinuation(MULTICALL, [base, BigInt(count - i)]);
    // An entry is a whole hypercall (dispatch, result copy): three units, as much as a short batch.
    chargeWork(3);
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
    } else {
      hcState.inMulticall = true;
      try {
        r = dispatch(v, env, op, args, true);
      } finally {
        hcState.inMulticall = false;
      }
    }
    const rv = BigInt.asUintN(es * 8, BigInt(r));
    if (!v.wr(base + BigInt(es), es, rv)) {
      hcState.preempted = false;
      return -E.EFAULT;
    }
    if (hcState.preempted) {
      // The sub-call's continuation goes back into its entry (multicall.c xlat_multicall_entry).
      const call = hcState.mcCall;
      hcState.preempted = false;
      let ok = v.wr(base, es, call[0] & mask);
      for (let k = 1; ok && k < call.length && k <= 6; k++)
        ok = v.wr(base + BigInt((k + 1) * es), es, call[k] & mask);
      if (!ok) return -E.EFAULT;
      return createContinuation(MULTICALL, [base, BigInt(count - i)]);
    }
    if (d.finished) break;
  }
  return 0;
}

/** Writes a continuation's op and arguments into the hypercall registers of the vCPU in `contSink.v`. */
const contSink = {
  v: null as Vcpu | null,
  setArgs(op: number, args: bigint[]): void {
    const v = this.v;
    if (!v) return;
    const cpu = v.cpu;
    if (v.domain.bits === 64) {
      setReg(cpu, Reg.RAX, BigInt(op));
      for (let i = 0; i < args.length && i < 6; i++) setReg(cpu, ARG_REGS_64[i], BigInt.asUintN(64, args[i]));
    } else {
      setReg(cpu, Reg.RAX, BigInt(op));
      for (let i = 0; i < args.length && i < 6; i++) setReg(cpu, ARG_REGS_32[i], BigInt.asUintN(32, args[i]));
    }
  },
};

/**
 * Handles a hypercall exit: RIP is at the `syscall`/`int $0x82`. Advances
 * RIP, runs the call, writes the result. Returns the result. A call that
 * preempted itself (engine/xen/preempt.ts) leaves its continuation in the
 * argument registers, its number in RAX and RIP back on the hypercall
 * instruction; `hcState.preempted` and `hcState.units` (work done) tell the
 * caller, until the next hypercall.
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
  beginHypercall();
  contSink.v = v;
  setContinuationRegs(contSink);
  try {
    r = dispatch(v, env, nr, args);
  } catch (e) {
    d.crash(`hypervisor model error in ${hypercallNameOf(nr)}: ${(e as Error)?.message ?? String(e)}`);
    hcState.preempted = false;
    r = -E.EFAULT;
  } finally {
    setContinuationRegs(null);
    contSink.v = null;
  }
  if (hcState.preempted && !d.finished) {
    // Xen pv/hypercall.c: a preempted hypercall rewinds RIP by 2 so that the guest executes it again.
    env.preemptions = (env.preemptions ?? 0) + 1;
    setRip(cpu, d.bits === 64 ? BigInt.asUintN(64, next - 2n) : (next - 2n) & 0xffffffffn);
  } else hcState.preempted = false;
  if (!v.noResult) {
    if (d.bits === 64) setReg(cpu, Reg.RAX, BigInt.asUintN(64, BigInt(r)));
    else setReg(cpu, Reg.RAX, BigInt.asUintN(32, BigInt(r)));
  }
  d.observer.afterHypercall?.(v, nr, args, typeof r === 'bigint' ? Number(BigInt.asIntN(64, r)) : r);
  return r;
}

// Re-exported for callers that read the shadow GS base.
export { getKernelGsBase };
