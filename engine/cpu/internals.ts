/**
 * Internal contract between the CPU's execution core (cpu.ts, decoder,
 * interpreter, paging) and its system-level half (segmentation.ts,
 * system.ts: descriptor loads, far transfers, gates, IDT delivery,
 * SYSCALL/SYSENTER, CR/DR/MSR, I/O permission). Not for use outside
 * engine/cpu; drivers use `CpuApi`.
 *
 * Faults: `fault(vector, errorCode)` aborts the current instruction by
 * throwing a preallocated sentinel (no allocation); the run loop restores RIP
 * to the instruction's start and then either exits (intercepted) or calls
 * `deliverException`. errorCode -1 = the vector has no error code. System
 * code must do every check before committing any architectural change, so
 * that a fault leaves state untouched (SDM: faults are restartable).
 */
import type { CpuApi } from './api';

export interface CpuInternals extends CpuApi {
  /** Abort the current instruction with an exception. For #PF set cr2 via `pageFault` instead. */
  fault(vector: number, errorCode: number): never;
  /** Abort with #PF: sets the exception's CR2 and error code. */
  pageFault(linLo: number, linHi: number, errorCode: number): never;
  /**
   * Abort the instruction with an ExitReason.PRIVILEGED exit if
   * `interceptPrivileged` is set (fill exitPriv* fields first), else with
   * #GP(0). RIP stays at the instruction; exitInsnLength is set by the core.
   */
  privileged(op: number): never;

  /** Linear-address accesses through paging (and the TLB) as CPL `user ? 3 : 0`. Faults with #PF. */
  linRead8(lo: number, hi: number, user: boolean): number;
  linRead16(lo: number, hi: number, user: boolean): number;
  linRead32(lo: number, hi: number, user: boolean): number;
  /** Returns bits 0-31; bits 32-63 are left in `tmpHi`. */
  linRead64(lo: number, hi: number, user: boolean): number;
  linWrite8(lo: number, hi: number, v: number, user: boolean): void;
  linWrite16(lo: number, hi: number, v: number, user: boolean): void;
  linWrite32(lo: number, hi: number, v: number, user: boolean): void;
  linWrite64(lo: number, hi: number, vLo: number, vHi: number, user: boolean): void;
  /** Scratch high half returned by 64-bit reads. */
  tmpHi: number;

  /** DR6 B0-B3 bits of the guest's data/I-O breakpoints hit by the current instruction (#DB trap after it). */
  drHit: number;
  /** DR6 B0-B3 bits of the armed I/O breakpoints (CR4.DE) an access of `size` bytes to `port` matches. */
  matchIoBreakpoints(port: number, size: number): number;

  /** Start of the current instruction (for fault restart and for gates/iret return addresses). */
  insnRipLo: number;
  insnRipHi: number;
  /** Length in bytes of the current instruction (valid while it executes). */
  insnLength: number;
  /** Sets RIP (canonical check is the caller's job: #GP(0) if non-canonical in 64-bit mode). */
  setRip(lo: number, hi: number): void;

  /**
   * Deliver an interrupt or exception through the IDT (real mode IVT,
   * protected-mode gates, long-mode 16-byte gates, stack switch via TSS,
   * IST). `software` = INT n / INT3 / INTO (DPL check against CPL, return
   * address after the instruction); `errorCode` -1 = none. Implemented in
   * system.ts; nested faults escalate to #DF, then SHUTDOWN.
   */
  deliverInterrupt(
    vector: number,
    errorCode: number,
    software: boolean,
    returnLo: number,
    returnHi: number,
  ): void;
}
