/**
 * Hypercall preemption and continuations, as Xen does them
 * (xen/arch/x86/hypercall.c hypercall_create_continuation,
 * xen/arch/x86/pv/hypercall.c, xen/common/multicall.c).
 *
 * Xen's hypercall_preempt_check() asks whether a softirq or a pending event
 * wants the CPU; pvscope, being deterministic, asks whether the current
 * hypercall has done HYPERCALL_QUANTUM units of work (one unit per batch
 * entry: a multicall entry, an mmu_update request, an mmuext op, a
 * memory_op extent, a grant op, a port closed by EVTCHNOP_reset). A long
 * batch then ends early with a continuation: the argument registers (or,
 * inside a multicall, the entry's op and args) get the remaining work, RAX
 * the hypercall number, and RIP is rewound by 2 bytes so that the guest
 * executes the `syscall` / `int $0x82` again, exactly what a PV guest sees
 * on Xen.
 *
 * The state is module-wide: the engine runs one hypercall at a time, and
 * doHypercall (hypercall.ts) resets it on entry.
 */

/** Units of work one hypercall invocation does before it is preempted. */
export const HYPERCALL_QUANTUM = 256;

/** The state of the hypercall in progress. */
export const hcState = {
  /** Work units charged by the current hypercall (all of them, including preempted sub-calls). */
  units: 0,
  /** Set by createContinuation: the caller must re-execute the hypercall instruction. */
  preempted: false,
  /** True while a multicall entry runs: continuations go to `mcArgs` instead of registers. */
  inMulticall: false,
  /** The continuation of a preempted multicall sub-call: [op, arg0..arg5]. */
  mcCall: [] as bigint[],
};

/** Resets the state at hypercall entry. */
export function beginHypercall(): void {
  hcState.units = 0;
  hcState.preempted = false;
  hcState.inMulticall = false;
  hcState.mcCall = [];
}

/** Charges `n` units of work (one per batch entry) to the current hypercall. */
export function chargeWork(n = 1): void {
  hcState.units += n;
}

/**
 * Xen's hypercall_preempt_check(), deterministic: true once the current
 * hypercall has done HYPERCALL_QUANTUM units. Callers check it before each
 * entry but the first of their own invocation, as Xen does (`i && check`).
 */
export function hypercallPreemptCheck(): boolean {
  return hcState.units >= HYPERCALL_QUANTUM;
}

/** Registers that receive the continuation's arguments (the hypercall ABI's order). */
export interface ContinuationRegs {
  setArgs(op: number, args: bigint[]): void;
}

let regsSink: ContinuationRegs | null = null;

/** Installed by doHypercall for the vCPU whose hypercall runs. */
export function setContinuationRegs(r: ContinuationRegs | null): void {
  regsSink = r;
}

/**
 * hypercall_create_continuation(op, args...): the guest will re-execute
 * hypercall `op` with `args`. Inside a multicall the new op and args go to
 * the entry being run (multicall.c copies them back into the guest's list).
 * @returns `op`, which becomes the hypercall's RAX as on Xen.
 */
export function createContinuation(op: number, args: bigint[]): number {
  hcState.preempted = true;
  if (hcState.inMulticall) hcState.mcCall = [BigInt(op), ...args];
  else regsSink?.setArgs(op, args);
  return op;
}
