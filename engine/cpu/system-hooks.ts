/**
 * The seam between the CPU's execution core (cpu.ts: decoder, block
 * compiler, paging, TLB) and its system half (system.ts, segmentation.ts).
 *
 * The core decodes every instruction. For system instructions it does the
 * intercept checks documented in api.ts that concern decoding (INT n,
 * SYSCALL, SYSENTER), sets `cpu.insnLength` / `cpu.insnRipLo/Hi`, sets RIP
 * to the NEXT instruction (so a system op that does not transfer control
 * needs to do nothing about RIP), then calls one of these functions. A
 * function that transfers control calls `cpu.setRip`. A function that
 * faults calls `cpu.fault` / `cpu.pageFault` / `cpu.privileged` (which throw
 * the core's sentinel); the core then restores RIP to the instruction start.
 *
 * After any of these returns, the core ends the current decoded block and
 * re-derives mode, CPL and paging state (so system ops may change CS, CR0,
 * CR3, CR4, EFER, CPL freely; they should still call `cpu.flushTlb` where
 * the SDM says the TLB is flushed, e.g. MOV to CR3).
 *
 * Operand sizes are in bytes (2, 4, 8). Linear addresses are (lo, hi)
 * halves. Selectors are 16-bit numbers. 64-bit results: low half returned,
 * high half in `cpu.tmpHi`.
 */
import type { CpuInternals } from './internals';

/** Descriptor-table instructions dispatched through `SystemOps.descriptorTableOp`. */
export const enum DescOp {
  /** LGDT m: operand = linear address of the pseudo-descriptor. */
  LGDT = 0,
  LIDT = 1,
  /** SGDT m / SIDT m: store the pseudo-descriptor at the linear address. */
  SGDT = 2,
  SIDT = 3,
  /** LLDT r/m16 / LTR r/m16: operand = selector (in `lo`). */
  LLDT = 4,
  LTR = 5,
}

export interface SystemOps {
  /** MOV Sreg, r/m16 and POP Sreg (seg = Seg.*): full protected-mode checks; faults via cpu.fault (SDM vol. 2 MOV, vol. 3 §5.4-5.6). */
  loadSegment(cpu: CpuInternals, seg: number, sel: number): void;
  /** Same checks as `loadSegment` but reports instead of faulting: -1 on success, else (vector << 16) | errorCode. Used by CpuApi.loadSegment. */
  tryLoadSegment(cpu: CpuInternals, seg: number, sel: number): number;
  /** JMP ptr16:16/32, JMP m16:16/32/64 (incl. call gates / TSS when supported). */
  farJump(cpu: CpuInternals, sel: number, offLo: number, offHi: number, opSize: number): void;
  /** CALL far; pushes CS:RIP (RIP already = next instruction) with `opSize` bytes per slot. */
  farCall(cpu: CpuInternals, sel: number, offLo: number, offHi: number, opSize: number): void;
  /** RET far [imm16]: pops RIP, CS, then releases `popBytes` of parameters. */
  farReturn(cpu: CpuInternals, opSize: number, popBytes: number): void;
  /** IRET/IRETD/IRETQ (opSize 2/4/8). */
  iret(cpu: CpuInternals, opSize: number): void;
  /**
   * Delivers an interrupt/exception through the IDT (see CpuInternals.deliverInterrupt).
   * `software` is true for INT n / INT3 / INTO (gate DPL checked against CPL).
   */
  deliverInterrupt(
    cpu: CpuInternals,
    vector: number,
    errorCode: number,
    software: boolean,
    returnLo: number,
    returnHi: number,
  ): void;
  /**
   * Exception classes for nested faults (SDM vol. 3 §6.15 table 6-5): given
   * the vector being delivered (`first`) and the vector of a fault raised
   * while delivering it (`second`), returns the vector to deliver next:
   * `second` (serial delivery), 8 (#DF, error code 0) or -1 (triple fault:
   * shutdown). The core's exception-delivery loop uses it.
   */
  nestedException(first: number, second: number): number;
  /** SYSCALL (only called when not intercepted). */
  syscall(cpu: CpuInternals): void;
  /** SYSRET with operand size 4 or 8. */
  sysret(cpu: CpuInternals, opSize: number): void;
  /** SYSENTER (only called when not intercepted). */
  sysenter(cpu: CpuInternals): void;
  sysexit(cpu: CpuInternals, opSize: number): void;
  swapgs(cpu: CpuInternals): void;
  /** MOV CRn, r64/r32 (value halves; `reg` = the source GPR number, reported as exitPrivReg on a privileged exit). */
  movToCr(cpu: CpuInternals, n: number, lo: number, hi: number, reg: number): void;
  /** MOV r, CRn: returns lo, hi in cpu.tmpHi. */
  movFromCr(cpu: CpuInternals, n: number, reg: number): number;
  /** MOV DRn, r / MOV r, DRn; `reg` as for movToCr (destination GPR for the "from" forms). */
  movToDr(cpu: CpuInternals, n: number, lo: number, hi: number, reg: number): void;
  movFromDr(cpu: CpuInternals, n: number, reg: number): number;
  /** RDMSR: ECX in, EDX:EAX out (writes the registers itself). */
  rdmsr(cpu: CpuInternals): void;
  /** WRMSR: ECX, EDX:EAX in. */
  wrmsr(cpu: CpuInternals): void;
  /** IN/OUT/INS/OUTS permission check (CPL vs IOPL, TSS I/O bitmap); faults or `cpu.privileged`. `op` is PrivOp.IN/OUT/INS/OUTS, port -1 when from DX is unknown. */
  ioCheck(cpu: CpuInternals, op: number, port: number, size: number): void;
  /** Port input after ioCheck passed; size in bytes (1, 2, 4). */
  in(cpu: CpuInternals, port: number, size: number): number;
  out(cpu: CpuInternals, port: number, size: number, value: number): void;
  /** LGDT/LIDT/SGDT/SIDT (lo/hi = linear address of the m16&32/64 operand, opSize 2/4/8) and LLDT/LTR (lo = selector). */
  descriptorTableOp(cpu: CpuInternals, op: DescOp, lo: number, hi: number, opSize: number): void;
  /** SLDT / STR: the selector. */
  storeLdtr(cpu: CpuInternals): number;
  storeTr(cpu: CpuInternals): number;
  /** LAR: access rights (as the SDM's destination value) or -1 when invalid (ZF=0). */
  lar(cpu: CpuInternals, sel: number): number;
  /** LSL: segment limit in bytes (u32) or -1 when invalid (ZF=0). */
  lsl(cpu: CpuInternals, sel: number): number;
  verr(cpu: CpuInternals, sel: number): boolean;
  verw(cpu: CpuInternals, sel: number): boolean;
  /** LMSW (value = the 16-bit source). */
  lmsw(cpu: CpuInternals, value: number): void;
  /** SMSW: low 16 (or 32/64) bits of CR0. */
  smsw(cpu: CpuInternals): number;
  /** CPUID: reads EAX/ECX, writes EAX/EBX/ECX/EDX through `cpu.cpuid`. */
  cpuid(cpu: CpuInternals): void;
  /** XGETBV (0F 01 D0): EDX:EAX := XCR[ECX]; `prefixed`: a 66/F2/F3 prefix was present (#UD). Returns 1 (retired). */
  xgetbv(cpu: CpuInternals, prefixed: boolean): number;
  /** XSETBV (0F 01 D1): XCR[ECX] := EDX:EAX at CPL 0; `prefixed` as for xgetbv. */
  xsetbv(cpu: CpuInternals, prefixed: boolean): number;
  /** RDTSC (TSD check) and RDTSCP (writes ECX = TSC_AUX). */
  rdtsc(cpu: CpuInternals): void;
  rdtscp(cpu: CpuInternals): void;
  rdpmc(cpu: CpuInternals): void;
  /** HLT: CPL check, then `state.halted = true` (the core exits HALT). */
  hlt(cpu: CpuInternals): void;
  /** CLI / STI (IOPL/CPL checks). */
  cli(cpu: CpuInternals): void;
  sti(cpu: CpuInternals): void;
  clts(cpu: CpuInternals): void;
  /** INVLPG m (CPL check, then `cpu.flushTlbPage`). */
  invlpg(cpu: CpuInternals, linLo: number, linHi: number): void;
  /** WBINVD / INVD (CPL check only). */
  wbinvd(cpu: CpuInternals): void;
  invd(cpu: CpuInternals): void;
}
