/**
 * The CPU's public contract: what the Xen model, the debugger, the CLI and
 * the tests may rely on. `engine/cpu/cpu.ts` implements it (`class Cpu
 * implements CpuApi`).
 *
 * Execution model: `run(budget)` executes instructions until the budget is
 * spent or something needs the driver's attention, and returns an
 * `ExitReason`. It never throws for anything the guest does (bad opcodes,
 * faults, absurd addresses all become architectural exceptions or exits);
 * a JS exception escaping `run` is an engine bug.
 *
 * Intercepts (decided BEFORE architectural delivery, so a hypervisor model
 * can take over):
 *  - `interceptExceptions`: bit v set => exception vector v (0-31), raised by
 *    an instruction, exits with EXCEPTION instead of going through the IDT.
 *    Faults leave RIP at the faulting instruction with all state as before
 *    it; traps (#DB single-step, #BP from INT3, #OF from INTO) leave RIP after
 *    it (`exitTrap` = true).
 *  - `interceptSoftInt`: bit n (Uint8Array of 256, 1 = intercept) => `INT n`
 *    (CD ib) exits with SOFT_INT before any IDT/DPL check; RIP is at the INT
 *    instruction and `exitInsnLength` = 2. INT3 / INTO are exceptions (#BP,
 *    #OF) and use `interceptExceptions`.
 *  - `interceptSyscall`: SYSCALL exits with SYSCALL before any architectural
 *    effect (RIP at the instruction, length 2). Likewise `interceptSysenter`.
 *  - `interceptPrivileged`: a privileged instruction that would raise #GP(0)
 *    (or #UD where the SDM says so for CPL>0) only because of CPL/IOPL exits
 *    with PRIVILEGED, `exitPrivOp` saying which and operands decoded, RIP at
 *    the instruction. The driver emulates it and calls `skipInstruction()`,
 *    or injects #GP itself.
 *  - HLT at CPL 0 sets `state.halted` and exits HALT.
 *
 * Breakpoints: `setBreakpoint(lin)` / `clearBreakpoint(lin)` on linear
 * addresses (halves); `run` exits BREAKPOINT with RIP at the instruction
 * *before* executing it. The check must cost nothing measurable when no
 * breakpoint is set (e.g. checked only on block entry of pages that hold one).
 * `run` starting exactly at a breakpoint executes that instruction (so a
 * debugger can resume) - i.e. the breakpoint check skips the very first
 * instruction of a `run` call.
 *
 * Memory-access watch (data breakpoints) is done by the debugger through
 * `setWatch(...)`: accesses to watched linear pages take a slow path that
 * reports via exit WATCH after the access completes. Physical data watches
 * live on the memory (`MachineMemory.setDataWatches`): the CPU caches no
 * matching TLB permission for watched frames and reports the same way, with
 * `exitWatchData` set.
 */
import type { MachineMemory } from '../memory/machine-memory';
import type { CpuState, CpuMode } from './state';

export const enum ExitReason {
  /** Budget spent. */
  BUDGET = 0,
  /** Intercepted exception; see exitVector/exitErrorCode/exitCr2*. */
  EXCEPTION = 1,
  /** Intercepted INT n; exitVector = n. */
  SOFT_INT = 2,
  SYSCALL = 3,
  SYSENTER = 4,
  /** Intercepted privileged instruction; see exitPrivOp. */
  PRIVILEGED = 5,
  HALT = 6,
  BREAKPOINT = 7,
  /** A watched access completed; see exitWatch*. */
  WATCH = 8,
  /** Triple fault / shutdown (only when the CPU delivers exceptions itself). */
  SHUTDOWN = 9,
  /** `requestStop()` was called (e.g. from a hook). */
  STOP_REQUESTED = 10,
  /** Single step done (`singleStep` = true executes exactly one instruction). */
  STEP = 11,
}

/** Privileged instruction classes reported with ExitReason.PRIVILEGED. */
export const enum PrivOp {
  MOV_FROM_CR = 1, // exitPrivReg = destination GPR, exitPrivCr = CR number
  MOV_TO_CR = 2, // exitPrivReg = source GPR, exitPrivCr
  MOV_FROM_DR = 3,
  MOV_TO_DR = 4,
  RDMSR = 5,
  WRMSR = 6,
  IN = 7, // exitPrivPort (-1 = DX), exitPrivSize bytes
  OUT = 8,
  INS = 9,
  OUTS = 10,
  CLTS = 11,
  HLT = 12,
  INVLPG = 13, // exitPrivLinLo/Hi = the address operand
  LGDT = 14,
  LIDT = 15,
  LLDT = 16,
  LTR = 17,
  CLI = 18,
  STI = 19,
  WBINVD = 20,
  INVD = 21,
  RDPMC = 22,
  RDTSC = 23, // only when CR4.TSD and CPL>0
  LMSW = 24,
  SWAPGS = 25,
  SYSRET = 26,
  SYSEXIT = 27,
  IRET = 28, // never produced today; reserved
  XSETBV = 29, // XCR number in ECX, value in EDX:EAX
  OTHER = 99,
}

/** CPUID answer for one leaf/subleaf (all values u32). */
export interface CpuidResult {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/**
 * CPUID policy: the driver may replace `leaf` to extend or filter (the Xen
 * model adds 0x40000000-0x40000005). Default: the GenuineIntel model of
 * engine/cpu/cpuid.ts with exactly the features the engine implements.
 * `cr4` is the CPU's CR4 when the CPUID instruction executes (leaf 1
 * OSXSAVE follows it); callers outside an executing CPUID instruction (Xen's
 * forced-emulation path, tests) omit it.
 */
export interface CpuidPolicy {
  leaf(eax: number, ecx: number, cr4?: number): CpuidResult;
}

export interface CpuApi {
  /**
   * Budget units the last run() charged beyond instructions retired (REP string iterations, REP
   * chunks that yielded, exception deliveries): the machine weighs them to bound a slice's host time.
   */
  readonly runStall: number;
  readonly state: CpuState;
  readonly mem: MachineMemory;

  cpuid: CpuidPolicy;
  /** Guest TSC = instructionsRetired * tscPerInstruction (integer >= 1). Deterministic. */
  tscPerInstruction: number;
  /** TSC offset added to the above (halves not needed: kept < 2^53). */
  tscOffset: number;

  interceptExceptions: number;
  readonly interceptSoftInt: Uint8Array;
  interceptSyscall: boolean;
  interceptSysenter: boolean;
  interceptPrivileged: boolean;
  /** Execute exactly one instruction per `run` call, exiting STEP. */
  singleStep: boolean;

  // Exit information (valid after run returns the matching reason).
  exitVector: number;
  /** -1 when the exception has no error code. */
  exitErrorCode: number;
  exitCr2Lo: number;
  exitCr2Hi: number;
  exitTrap: boolean;
  exitInsnLength: number;
  exitPrivOp: number;
  exitPrivReg: number;
  exitPrivCr: number;
  exitPrivPort: number;
  exitPrivSize: number;
  exitPrivLinLo: number;
  exitPrivLinHi: number;
  exitWatchLinLo: number;
  exitWatchLinHi: number;
  exitWatchWrite: boolean;
  /**
   * True when the WATCH exit comes from `mem.storeWatchFrames`: the store has
   * NOT happened, RIP is at the storing instruction, and `exitWatchOffset` is
   * the buffer offset it would write. Set `skipStoreWatchOnce` before the next
   * `run` to let that store through.
   */
  exitWatchPhysical: boolean;
  exitWatchOffset: number;
  skipStoreWatchOnce: boolean;
  /**
   * True when the WATCH exit comes from `mem.dataWatches` (physical data
   * breakpoint): the access HAS completed, RIP is past the instruction,
   * `exitWatchOffset` is the buffer offset of the access (of its part in the
   * watched frame), `exitWatchSize` its bytes in that frame, `exitWatchWrite`
   * read or write, `exitWatchLinLo/Hi` its linear address.
   */
  exitWatchData: boolean;
  exitWatchSize: number;
  /** Human-readable name of the instruction that raised #UD/#NM for x87/SSE/unknown opcodes. */
  exitDetail: string;

  /** Run up to `budget` instructions (>= 1). */
  run(budget: number): ExitReason;
  /** Ask a running `run` to return STOP_REQUESTED at the next instruction boundary. */
  requestStop(): void;

  /** Current mode, derived from CR0/EFER/CS/RFLAGS. */
  mode(): CpuMode;
  getRflags(): number;
  setRflags(v: number): void;
  /** Advances RIP by `exitInsnLength` (used after emulating an intercepted instruction). */
  skipInstruction(): void;

  /** Segment load with full protected-mode checks; returns -1 on success or an error code for #GP/#NP/#SS (vector in high bits: vector<<16 | errcode). */
  loadSegment(seg: number, selector: number): number;
  /** Sets a segment register's selector and hidden cache directly (no checks). */
  setSegmentRaw(
    seg: number,
    selector: number,
    baseLo: number,
    baseHi: number,
    limit: number,
    attr: number,
  ): void;

  /** After changing CR0/CR3/CR4/EFER/CPL/segments from outside: recompute derived state. */
  stateChanged(): void;
  /** TLB maintenance: all non-global entries (global too if `includeGlobal`). */
  flushTlb(includeGlobal: boolean): void;
  flushTlbPage(linLo: number, linHi: number): void;

  /**
   * Translates a linear address through the current paging structures
   * without side effects on A/D bits unless `setAD`.
   * @param access 0 read, 1 write, 2 execute
   * @param user true = check as a CPL-3 access
   * @returns machine buffer offset (>= 0) or -1 on fault, with the #PF error
   *   code in `lastWalkError`.
   */
  translate(linLo: number, linHi: number, access: number, user: boolean, setAD: boolean): number;
  lastWalkError: number;

  /** Raise an exception now as if the current instruction raised it (used by drivers emulating instructions). */
  injectException(vector: number, errorCode: number): void;

  setBreakpoint(linLo: number, linHi: number): void;
  clearBreakpoint(linLo: number, linHi: number): void;
  clearAllBreakpoints(): void;
  /** Watch a linear range: kind bit0 read, bit1 write. Returns an id. */
  setWatch(linLo: number, linHi: number, len: number, kind: number): number;
  clearWatch(id: number): void;

  /** Drop every cached decoded block (after bulk writes or mode changes). */
  flushCodeCache(): void;

  /**
   * Port I/O handlers, called by IN/INS once the I/O permission check has
   * passed (SDM vol. 1 §19.5). `port` 0-0xFFFF, `size` in bytes (1, 2, 4);
   * the result is masked to `size`. When absent, reads return all ones.
   */
  ioRead?: (port: number, size: number) => number;
  /** As `ioRead`, for OUT/OUTS (`value` already masked to `size`). When absent, writes are ignored. */
  ioWrite?: (port: number, size: number, value: number) => void;
}
