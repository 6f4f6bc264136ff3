/**
 * The x86 CPU execution core: run loop, paging with a software TLB, lazy
 * flags, the decoded-block cache (blocks compiled to JS functions by
 * codegen.ts), breakpoints and watchpoints. System instructions go through
 * `systemOps` (system.ts) via the `CpuInternals` contract.
 *
 * Sources: Intel SDM vol. 1 §3.4.3 (flags), vol. 3 ch. 4 (paging: 32-bit,
 * PAE, 4-level; A/D bits, U/S, R/W with CR0.WP, NX, reserved bits, global
 * pages, TLB invalidation §4.10.4), ch. 6 (exceptions, fault vs trap).
 *
 * Engine choices, documented:
 *  - A page-table entry (or, with paging off, a linear address) that points
 *    outside machine memory is treated as a reserved-bit violation: #PF with
 *    P|RSVD in the error code (never a host crash).
 *  - PAE PDPTEs are read at walk time (not cached at CR3 load).
 *  - A store that modifies code of the block currently executing takes
 *    effect at the next block boundary (blocks are at most one page and end
 *    at every branch).
 *  - With a watchpoint set, blocks are one instruction long.
 */
import type { CpuApi, CpuidPolicy } from './api';
import type { CpuInternals } from './internals';
import { CpuState } from './state';
import type { MachineMemory } from '../memory/machine-memory';
import { systemOps } from './system';
import { defaultCpuidPolicy, MAXPHYADDR } from './cpuid';
import { decode, decodeInfo, type Insn } from './decoder';
import { compileBlock, type Block } from './codegen';
import { BlockCache } from './block-cache';
import { execInsn } from './exec';
import { isTerminator } from './block-rules';
import { drDecode, drMatchExec, drMatchRange, drOnPage, type DrArmed } from './debug-regs';
import {
  ARITH_FLAGS,
  LF_ADD,
  LF_DEC,
  LF_EAGER,
  LF_IMUL64,
  LF_INC,
  LF_LOGIC,
  LF_MUL,
  LF_SAR,
  LF_SHL,
  LF_SHR,
  LF_SUB,
  PARITY,
} from './flags';

/** TLB size in entries (direct-mapped, indexed by linear page number bits 0-11). */
export const TLB_SIZE = 4096;
const TLB_MASK = TLB_SIZE - 1;
/** Tag value that never matches a page-aligned address. */
const NO_TAG = 1;

const FAULT = { cpuFault: true };

export class Cpu implements CpuInternals {
  readonly state = new CpuState();
  readonly mem: MachineMemory;
  cpuid: CpuidPolicy = defaultCpuidPolicy();
  tscPerInstruction = 1;
  tscOffset = 0;

  interceptExceptions = 0;
  readonly interceptSoftInt = new Uint8Array(256);
  interceptSyscall = false;
  interceptSysenter = false;
  interceptPrivileged = false;
  singleStep = false;

  exitVector = 0;
  exitErrorCode = -1;
  exitCr2Lo = 0;
  exitCr2Hi = 0;
  exitTrap = false;
  exitInsnLength = 0;
  exitPrivOp = 0;
  exitPrivReg = 0;
  exitPrivCr = 0;
  exitPrivPort = 0;
  exitPrivSize = 0;
  exitPrivLinLo = 0;
  exitPrivLinHi = 0;
  exitWatchLinLo = 0;
  exitWatchLinHi = 0;
  exitWatchWrite = false;
  exitWatchPhysical = false;
  exitWatchOffset = 0;
  skipStoreWatchOnce = false;
  exitDetail = '';
  lastWalkError = 0;

  tmpHi = 0;
  insnRipLo = 0;
  insnRipHi = 0;
  insnLength = 0;

  // ---- flags ----
  /** Non-arithmetic RFLAGS bits (and bit 1); arithmetic bits live in the lazy state. */
  rfl = 2;
  /** Eager arithmetic flags, valid when lfOp == LF_EAGER. */
  fl = 0;
  lfOp = 0;
  lfA = 0;
  lfB = 0;
  lfR = 0;
  lfAH = 0;
  lfBH = 0;
  lfRH = 0;
  lfCf = 0;

  // ---- TLB (direct-mapped; tag arrays hold the page-aligned linear address low half when the access kind is allowed) ----
  readonly tlbHi = new Int32Array(TLB_SIZE);
  readonly tlbPage = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tlbOff = new Int32Array(TLB_SIZE);
  readonly tlbGlobal = new Uint8Array(TLB_SIZE);
  readonly tagRK = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tagWK = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tagXK = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tagRU = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tagWU = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly tagXU = new Int32Array(TLB_SIZE).fill(NO_TAG);
  readonly dv: DataView;
  readonly u8: Uint8Array;

  // ---- derived mode state ----
  /** Block key: mode | user << 3 | flat << 4 | longTlb << 5. */
  modeKey = 0;
  curMode = 0;
  /** Default operand size of the code segment in bytes (2, 4, 8). */
  defSize = 4;
  /** True when DS/ES/SS are flat 4 GiB segments with base 0 (32-bit modes). */
  flat = true;
  private savedCr0 = 0;
  private savedCr3Lo = 0;
  private savedCr3Hi = 0;
  private savedCr4 = 0;
  private savedEfer = 0;

  // ---- code cache ----
  private readonly blocks: BlockCache;
  /** Linear pages (key hi:lo>>>12) holding breakpoints -> count. */
  private bpPages = new Map<string, number>();
  private bps = new Set<string>();
  private watches = new Map<number, { lo: number; hi: number; len: number; kind: number }>();
  private watchPages = new Set<string>();
  private nextWatchId = 1;
  watchHit = false;

  // ---- exits raised inside an instruction ----
  private stopReq = false;
  /** Instruction index in the block at which the current block faulted. */
  faultIc = 0;
  /**
   * REP string iterations done since the run loop last looked (exec.ts adds them; `run` charges
   * one budget unit per 4 iterations so that a guest looping on long REP instructions cannot keep
   * one run() call busy: host time per budget unit stays bounded).
   */
  repWork = 0;
  /**
   * Budget units the last `run` call charged beyond instructions retired (REP iterations at one unit
   * per 4, REP chunks that yielded, exception deliveries). The machine weighs them (engine/machine.ts
   * STALL_WEIGHT) to bound the host time of a slice that ended in an exit.
   */
  runStall = 0;
  /** Pending exception / exit raised by fault()/privileged()/intercepts. */
  private pendVector = 0;
  private pendError = -1;
  private pendCr2Lo = 0;
  private pendCr2Hi = 0;
  private pendIsPf = false;
  /** 0 = exception; otherwise an ExitReason to return directly (SOFT_INT, SYSCALL, SYSENTER, PRIVILEGED). */
  private pendExit = 0;
  /** The faulting/exiting instruction completes (trap): RIP after it, counted as retired. */
  private pendTrap = false;

  // ---- physical data watches (MachineMemory.dataWatches) ----
  exitWatchData = false;
  exitWatchSize = 0;
  /** Bytes of the current data access (set by the slow paths before `xlate`; data watches use it). */
  private accSize = 1;
  private dataWatchGenSeen = 0;
  /** `mem.dataWatches` is non-empty (refreshed with `dataWatchGenSeen` at the start of `run`). */
  private dataWatchOn = false;

  // ---- the guest's debug registers (engine/cpu/debug-regs.ts; never used by pvscope's debugger) ----
  /** Armed DR0-DR3 breakpoints per class, decoded from DR7 by `syncDebugRegs` (all 0: no cost anywhere). */
  private readonly drArmed: DrArmed = { exec: 0, write: 0, read: 0, io: 0 };
  /** DR0-DR3 halves, DR7 and CR4.DE as last decoded (a change re-decodes and drops cached code and TLB). */
  private readonly drSeen = new Int32Array(10);
  /** Data/I-O breakpoints hit by the current instruction (DR6 B0-B3 bits): #DB trap after it completes. */
  drHit = 0;

  constructor(mem: MachineMemory) {
    this.mem = mem;
    this.dv = mem.view;
    this.u8 = mem.u8;
    this.blocks = new BlockCache(mem.frameCount, (f: number) => {
      this.mem.codeFrames[f] = 1;
      for (const c of this.peers) c.tlbDropWrites(f);
    });
    // vCPUs sharing one machine memory share code-write tracking.
    let peers = CPUS_BY_MEMORY.get(mem);
    if (!peers) {
      const list: Cpu[] = [];
      peers = list;
      CPUS_BY_MEMORY.set(mem, list);
      mem.onCodeWrite = (f: number) => {
        for (const c of list) c.invalidateFrame(f);
      };
    }
    peers.push(this);
    this.peers = peers;
    this.stateChanged();
  }

  // =====================================================================
  // Flags
  // =====================================================================

  /** Arithmetic flags (CF PF AF ZF SF OF) from the lazy state (SDM vol. 1 §3.4.3.1). */
  arith(): number {
    const op = this.lfOp;
    if (op === LF_EAGER) return this.fl;
    const kind = op & 15;
    const sz = op >> 4;
    let f = 0;
    if (
      sz === 3 &&
      (kind <= LF_DEC || kind === LF_SHL || kind === LF_SHR || kind === LF_SAR || kind >= LF_MUL)
    ) {
      const a = this.lfA,
        ah = this.lfAH,
        b = this.lfB,
        bh = this.lfBH,
        r = this.lfR,
        rh = this.lfRH;
      if ((r | rh) === 0) f |= 0x40;
      if (rh < 0) f |= 0x80;
      f |= PARITY[r & 0xff];
      switch (kind) {
        case LF_ADD:
          if (rh >>> 0 < ah >>> 0 || (rh === ah && r >>> 0 < a >>> 0)) f |= 1;
          if ((a ^ b ^ r) & 0x10) f |= 0x10;
          if (((ah ^ rh) & (bh ^ rh)) < 0) f |= 0x800;
          break;
        case LF_SUB:
          if (ah >>> 0 < bh >>> 0 || (ah === bh && a >>> 0 < b >>> 0)) f |= 1;
          if ((a ^ b ^ r) & 0x10) f |= 0x10;
          if (((ah ^ bh) & (ah ^ rh)) < 0) f |= 0x800;
          break;
        case LF_INC:
          f |= this.lfCf;
          if ((r & 0xf) === 0) f |= 0x10;
          if (rh === -2147483648 && r === 0) f |= 0x800;
          break;
        case LF_DEC:
          f |= this.lfCf;
          if ((r & 0xf) === 0xf) f |= 0x10;
          if (rh === 0x7fffffff && r === -1) f |= 0x800;
          break;
        case LF_SHL: {
          const n = 64 - b;
          const cf = n < 32 ? (a >>> n) & 1 : (ah >>> (n - 32)) & 1;
          f |= cf;
          if ((rh >>> 31) ^ cf) f |= 0x800;
          break;
        }
        case LF_SHR:
          f |= b - 1 < 32 ? (a >>> (b - 1)) & 1 : (ah >>> (b - 33)) & 1;
          if (ah < 0) f |= 0x800;
          break;
        case LF_SAR:
          f |= b - 1 < 32 ? (a >>> (b - 1)) & 1 : (ah >> (b - 33)) & 1;
          break;
        case LF_MUL:
          if (this.lfCf) f |= 0x801;
          break;
        case LF_IMUL64: {
          // Cold: the full signed product decides CF/OF.
          const big = (l: number, h: number) => (BigInt(h) << 32n) | BigInt(l >>> 0);
          const p = big(a, ah) * big(b, bh);
          if (BigInt.asIntN(64, p) !== p) f |= 0x801;
          break;
        }
      }
      return f;
    }
    const bits = 8 << sz;
    const sb = bits === 32 ? -2147483648 : 1 << (bits - 1);
    const m = bits === 32 ? -1 : (1 << bits) - 1;
    const a = this.lfA,
      b = this.lfB,
      r = this.lfR;
    if ((r & m) === 0) f |= 0x40;
    if (r & sb) f |= 0x80;
    f |= PARITY[r & 0xff];
    switch (kind) {
      case LF_ADD:
        if ((r & m) >>> 0 < (a & m) >>> 0) f |= 1;
        if ((a ^ b ^ r) & 0x10) f |= 0x10;
        if ((a ^ r) & (b ^ r) & sb) f |= 0x800;
        break;
      case LF_SUB:
        if ((a & m) >>> 0 < (b & m) >>> 0) f |= 1;
        if ((a ^ b ^ r) & 0x10) f |= 0x10;
        if ((a ^ b) & (a ^ r) & sb) f |= 0x800;
        break;
      case LF_LOGIC:
        break;
      case LF_INC:
        f |= this.lfCf;
        if ((r & 0xf) === 0) f |= 0x10;
        if ((r & m) === (sb & m)) f |= 0x800;
        break;
      case LF_DEC:
        f |= this.lfCf;
        if ((r & 0xf) === 0xf) f |= 0x10;
        if ((r & m) === ((sb - 1) & m)) f |= 0x800;
        break;
      case LF_SHL: {
        const cf = b <= bits ? ((a & m) >>> (bits - b)) & 1 : 0;
        f |= cf;
        if ((r & sb ? 1 : 0) ^ cf) f |= 0x800;
        break;
      }
      case LF_SHR:
        f |= b <= 32 ? ((a & m) >>> (b - 1)) & 1 : 0;
        if (a & sb) f |= 0x800;
        break;
      case LF_MUL:
        if (this.lfCf) f |= 0x801;
        break;
      case LF_SAR: {
        const sa = bits === 32 ? a : (a << (32 - bits)) >> (32 - bits);
        f |= (sa >> (b - 1 > 31 ? 31 : b - 1)) & 1;
        break;
      }
    }
    return f;
  }

  /** CF as 0/1. */
  getCF(): number {
    return this.arith() & 1;
  }

  /** Evaluates condition code `cc` (0-15, the Jcc/SETcc/CMOVcc encoding) against the current flags. */
  cond(cc: number): boolean {
    const f = this.arith();
    let r: boolean;
    switch (cc >> 1) {
      case 0:
        r = (f & 0x800) !== 0;
        break;
      case 1:
        r = (f & 1) !== 0;
        break;
      case 2:
        r = (f & 0x40) !== 0;
        break;
      case 3:
        r = (f & 0x41) !== 0;
        break;
      case 4:
        r = (f & 0x80) !== 0;
        break;
      case 5:
        r = (f & 4) !== 0;
        break;
      case 6:
        r = ((f & 0x80) !== 0) !== ((f & 0x800) !== 0);
        break;
      default:
        r = (f & 0x40) !== 0 || ((f & 0x80) !== 0) !== ((f & 0x800) !== 0);
        break;
    }
    return cc & 1 ? !r : r;
  }

  /** Sets the arithmetic flags eagerly (bits outside ARITH_FLAGS ignored). */
  setArith(f: number): void {
    this.fl = f & ARITH_FLAGS;
    this.lfOp = LF_EAGER;
  }

  getRflags(): number {
    return ((this.rfl & ~ARITH_FLAGS) | this.arith() | 2) >>> 0;
  }

  setRflags(v: number): void {
    this.rfl = (v & ~ARITH_FLAGS & 0x3f7fff) | 2;
    this.fl = v & ARITH_FLAGS;
    this.lfOp = LF_EAGER;
  }

  // =====================================================================
  // Mode and derived state
  // =====================================================================

  mode(): number {
    const s = this.state;
    if (!(s.cr0 & 1)) return 0;
    if (this.rfl & 0x20000) return 6;
    const a = s.segAttr[1];
    if (s.efer & 0x400) {
      if (a & 0x200) return 5;
      return a & 0x400 ? 4 : 3;
    }
    return a & 0x400 ? 2 : 1;
  }

  stateChanged(): void {
    const s = this.state;
    s.cpl &= 3;
    const m = this.mode();
    this.curMode = m;
    this.defSize = m === 5 ? 8 : m === 2 || m === 4 ? 4 : 2;
    let flat = true;
    if (m !== 5) {
      const b = s.segBaseLo,
        l = s.segLimit;
      if ((b[0] | b[2] | b[3]) !== 0 || l[0] !== 0xffffffff || l[2] !== 0xffffffff || l[3] !== 0xffffffff)
        flat = false;
      if (!(s.segAttr[2] & 0x400)) flat = false;
    }
    this.flat = flat;
    const user = s.cpl === 3 ? 1 : 0;
    const longTlb = s.efer & 0x400 ? 1 : 0;
    const key = m | (user << 3) | ((flat ? 1 : 0) << 4) | (longTlb << 5);
    if (key !== this.modeKey) this.epoch++;
    this.modeKey = key;
    // Paging configuration changes flush the TLB (SDM vol. 3 §4.10.4.1).
    if (
      ((s.cr0 ^ this.savedCr0) & 0x80010001) !== 0 ||
      ((s.cr4 ^ this.savedCr4) & 0xb0) !== 0 ||
      ((s.efer ^ this.savedEfer) & 0xd00) !== 0
    ) {
      this.flushTlb(true);
    } else if (s.cr3Lo !== this.savedCr3Lo || s.cr3Hi !== this.savedCr3Hi) {
      this.flushTlb(false);
    }
    this.savedCr0 = s.cr0;
    this.savedCr3Lo = s.cr3Lo;
    this.savedCr3Hi = s.cr3Hi;
    this.savedCr4 = s.cr4;
    this.savedEfer = s.efer;
    this.syncDebugRegs();
  }

  /**
   * Re-decodes DR7 when DR0-DR3, DR7 or CR4.DE changed since the last call
   * (MOV DRn, the Xen model's set_debugreg, a vCPU context load). Changes
   * flush the TLB (no permission is cached for pages holding a data
   * breakpoint) and the code cache (blocks end at instruction breakpoints;
   * one-instruction blocks while a data breakpoint is armed).
   */
  private syncDebugRegs(): void {
    const s = this.state;
    const v = this.drSeen;
    const de = s.cr4 & 8;
    if (
      v[8] === s.dr7 &&
      v[9] === de &&
      v[0] === s.drLo[0] &&
      v[1] === s.drHi[0] &&
      v[2] === s.drLo[1] &&
      v[3] === s.drHi[1] &&
      v[4] === s.drLo[2] &&
      v[5] === s.drHi[2] &&
      v[6] === s.drLo[3] &&
      v[7] === s.drHi[3]
    )
      return;
    const a = this.drArmed;
    const was = a.exec | a.write | a.read | a.io;
    for (let n = 0; n < 4; n++) {
      v[2 * n] = s.drLo[n];
      v[2 * n + 1] = s.drHi[n];
    }
    v[8] = s.dr7;
    v[9] = de;
    drDecode(s.dr7, de !== 0, a);
    if (was !== 0 || (a.exec | a.write | a.read | a.io) !== 0) {
      this.flushTlb(true);
      this.flushCodeCache();
    }
  }

  /** DR6 B0-B3 bits of the guest's I/O breakpoints matching an access of `size` bytes to `port` (CR4.DE). */
  matchIoBreakpoints(port: number, size: number): number {
    const m = this.drArmed.io;
    return m === 0 ? 0 : drMatchRange(this.state, this.state.dr7, m, port & 0xffff, 0, size, false);
  }

  setSegmentRaw(
    seg: number,
    selector: number,
    baseLo: number,
    baseHi: number,
    limit: number,
    attr: number,
  ): void {
    const s = this.state;
    s.segSel[seg] = selector;
    s.segBaseLo[seg] = baseLo | 0;
    s.segBaseHi[seg] = baseHi | 0;
    s.segLimit[seg] = limit >>> 0;
    s.segAttr[seg] = attr | 0;
    if (seg === 1) s.cpl = selector & 3;
    this.stateChanged();
  }

  loadSegment(seg: number, selector: number): number {
    try {
      const r = systemOps.tryLoadSegment(this, seg, selector);
      this.stateChanged();
      return r;
    } catch (e) {
      if (e === FAULT) return (this.pendVector << 16) | (this.pendError & 0xffff);
      throw e;
    }
  }

  // =====================================================================
  // Faults and exits
  // =====================================================================

  fault(vector: number, errorCode: number): never {
    this.pendVector = vector;
    this.pendError = errorCode;
    this.pendIsPf = false;
    this.pendExit = 0;
    this.pendTrap = false;
    throw FAULT;
  }

  pageFault(linLo: number, linHi: number, errorCode: number): never {
    this.pendVector = 14;
    this.pendError = errorCode;
    this.pendCr2Lo = linLo | 0;
    this.pendCr2Hi = linHi | 0;
    this.pendIsPf = true;
    this.pendExit = 0;
    this.pendTrap = false;
    throw FAULT;
  }

  /** Raise a trap-class exception (the instruction completes; RIP after it): #BP from INT3, #OF from INTO. */
  trap(vector: number): never {
    this.pendVector = vector;
    this.pendError = -1;
    this.pendIsPf = false;
    this.pendExit = 0;
    this.pendTrap = true;
    throw FAULT;
  }

  /** Abort the instruction with a driver exit (SOFT_INT, SYSCALL, SYSENTER, PRIVILEGED); RIP stays at it. */
  exitWith(reason: number): never {
    this.pendExit = reason;
    this.pendTrap = false;
    this.exitInsnLength = this.insnLength;
    throw FAULT;
  }

  /**
   * Driver exit before instruction `d` takes effect, without unwinding
   * (INT n / SYSCALL / SYSENTER intercepts are block terminators): RIP is
   * left at the instruction and the run loop returns `reason` after the
   * block. @returns 0 (the instruction did not retire)
   */
  exitAtBoundary(reason: number, d: Insn): number {
    this.pendingExit = reason;
    this.exitInsnLength = d.len;
    this.state.ripLo = d.ripLo;
    this.state.ripHi = d.ripHi;
    return 0;
  }

  /** Exit requested by `exitAtBoundary`, returned by the run loop after the block. */
  private pendingExit = 0;

  privileged(op: number): never {
    if (this.interceptPrivileged) {
      this.exitPrivOp = op;
      this.exitWith(5);
    }
    return this.fault(13, 0);
  }

  /**
   * Delivers `vector` through the IDT now (RIP = the faulting instruction,
   * as set by the driver). Nested faults escalate as in `run`; a resulting
   * exit (intercepted nested exception, shutdown) is returned by the next
   * `run` call. For #PF the driver sets CR2 first.
   */
  injectException(vector: number, errorCode: number): void {
    const r = this.deliverException(vector, errorCode, false, 0);
    if (r >= 0) this.deferredExit = r;
  }

  /** Exit produced outside `run` (by injectException), returned by the next `run`. */
  private deferredExit = -1;

  deliverInterrupt(
    vector: number,
    errorCode: number,
    software: boolean,
    returnLo: number,
    returnHi: number,
  ): void {
    systemOps.deliverInterrupt(this, vector, errorCode, software, returnLo, returnHi);
  }

  requestStop(): void {
    this.stopReq = true;
  }

  skipInstruction(): void {
    const s = this.state;
    if (this.curMode === 5) {
      const n = (s.ripLo >>> 0) + this.exitInsnLength;
      s.ripLo = n | 0;
      if (n > 0xffffffff) s.ripHi = (s.ripHi + 1) | 0;
    } else if (this.defSize === 2) s.ripLo = (s.ripLo + this.exitInsnLength) & 0xffff;
    else s.ripLo = (s.ripLo + this.exitInsnLength) | 0;
  }

  setRip(lo: number, hi: number): void {
    this.state.ripLo = lo | 0;
    this.state.ripHi = this.curMode === 5 ? hi | 0 : 0;
  }

  // =====================================================================
  // TLB and paging
  // =====================================================================

  flushTlb(includeGlobal: boolean): void {
    this.epoch++;
    if (includeGlobal) {
      this.tlbPage.fill(NO_TAG);
      this.tagRK.fill(NO_TAG);
      this.tagWK.fill(NO_TAG);
      this.tagXK.fill(NO_TAG);
      this.tagRU.fill(NO_TAG);
      this.tagWU.fill(NO_TAG);
      this.tagXU.fill(NO_TAG);
      this.tlbGlobal.fill(0);
      return;
    }
    const g = this.tlbGlobal;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (!g[i]) this.dropSlot(i);
    }
  }

  private dropSlot(i: number): void {
    this.tlbPage[i] = NO_TAG;
    this.tagRK[i] = NO_TAG;
    this.tagWK[i] = NO_TAG;
    this.tagXK[i] = NO_TAG;
    this.tagRU[i] = NO_TAG;
    this.tagWU[i] = NO_TAG;
    this.tagXU[i] = NO_TAG;
    this.tlbGlobal[i] = 0;
  }

  flushTlbPage(linLo: number, linHi: number): void {
    this.epoch++;
    const i = (linLo >>> 12) & TLB_MASK;
    if (this.tlbPage[i] === (linLo & -4096) && this.tlbHi[i] === (linHi | 0)) this.dropSlot(i);
  }

  /** Removes write permission from every TLB entry mapping buffer page `frame` (so stores reach the slow path). */
  private tlbDropWrites(frame: number): void {
    const base = frame * 4096;
    const to = this.tlbOff;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (to[i] === base) {
        this.tagWK[i] = NO_TAG;
        this.tagWU[i] = NO_TAG;
      }
    }
  }

  translate(linLo: number, linHi: number, access: number, user: boolean, setAD: boolean): number {
    return this.walk(linLo | 0, linHi | 0, access, user, setAD, false);
  }

  /** Canonical in 48-bit linear address space (SDM vol. 1 §3.3.7.1). */
  static canonical(hi: number): boolean {
    return (hi << 16) >> 16 === hi;
  }

  /**
   * Page walk for linear (lo, hi). access 0 read, 1 write, 2 execute.
   * @returns buffer offset of the byte, or -1 with `lastWalkError` = #PF error code.
   *   With `fill`, installs the 4 KiB translation in the TLB.
   */
  private walk(lo: number, hi: number, access: number, user: boolean, setAD: boolean, fill: boolean): number {
    const s = this.state;
    const mem = this.mem;
    const dv = this.dv;
    const errBase = (access === 1 ? 2 : 0) | (user ? 4 : 0);
    let maddr: number;
    let allW = true;
    let allU = true;
    let nx = false;
    let global = false;
    let dirty = true;
    const nxe = (s.efer & 0x800) !== 0;
    const wp = (s.cr0 & 0x10000) !== 0;
    const fetchBit = access === 2 && nxe ? 16 : 0;
    if (!(s.cr0 & 0x80000000)) {
      maddr = lo >>> 0;
      if (hi !== 0) maddr += hi * 4294967296;
      const off = mem.maddrToOffset(maddr);
      if (off < 0) {
        this.lastWalkError = errBase | 1 | 8;
        return -1;
      }
      if (fill) this.fillTlb(lo, hi, off & -4096, true, true, true, true, false);
      return off;
    }
    const rsvdHiMask = ~((1 << (MAXPHYADDR - 32)) - 1) & 0xfffff; // bits MAXPHYADDR..51 in the high half
    if (s.cr4 & 0x20) {
      // PAE or 4-level paging: 64-bit entries.
      let tableM: number; // machine address of the current table
      let level: number;
      let idxShift: number;
      if (s.efer & 0x400) {
        tableM = (s.cr3Lo & -4096) >>> 0;
        tableM += (s.cr3Hi & 0xfffff) * 4294967296;
        level = 4;
      } else {
        // PAE: PDPT of 4 entries at CR3[31:5].
        const pdptOff = mem.maddrToOffset((s.cr3Lo & -32) >>> 0);
        if (pdptOff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
        const eoff = pdptOff + ((lo >>> 30) << 3);
        const eLo = dv.getInt32(eoff, true);
        const eHi = dv.getInt32(eoff + 4, true);
        if (!(eLo & 1)) return this.walkFail(errBase | fetchBit, 0);
        if (eLo & 0x1e6 || eHi & rsvdHiMask || eHi & 0x80000000)
          return this.walkFail(errBase | fetchBit, 1 | 8);
        tableM = ((eLo & -4096) >>> 0) + (eHi & 0xfffff) * 4294967296;
        level = 2;
      }
      for (;;) {
        idxShift = 12 + 9 * (level - 1);
        let idx: number;
        if (idxShift >= 32) idx = (hi >>> (idxShift - 32)) & 511;
        else if (idxShift + 9 > 32) idx = ((lo >>> idxShift) | (hi << (32 - idxShift))) & 511;
        else idx = (lo >>> idxShift) & 511;
        const toff = mem.maddrToOffset(tableM);
        if (toff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
        const eoff = toff + idx * 8;
        const eLo = dv.getInt32(eoff, true);
        const eHi = dv.getInt32(eoff + 4, true);
        if (!(eLo & 1)) return this.walkFail(errBase | fetchBit, 0);
        if (eHi & rsvdHiMask) return this.walkFail(errBase | fetchBit, 1 | 8);
        if (eHi < 0) {
          if (!nxe) return this.walkFail(errBase | fetchBit, 1 | 8);
          nx = true;
        }
        if (!(eLo & 2)) allW = false;
        if (!(eLo & 4)) allU = false;
        const ps = (eLo & 0x80) !== 0;
        if (level === 4 && ps) return this.walkFail(errBase | fetchBit, 1 | 8);
        if (level === 1 || ps) {
          if (level === 3 && ps && eLo & 0x3fffe000) return this.walkFail(errBase | fetchBit, 1 | 8);
          if (level === 2 && ps && eLo & 0x1fe000) return this.walkFail(errBase | fetchBit, 1 | 8);
          // Leaf: permission checks before touching A/D (SDM: no A/D update on a faulting access).
          if (!this.permOk(access, user, allW, allU, nx, wp)) return this.walkFail(errBase | fetchBit, 1);
          global = (eLo & 0x100) !== 0 && (s.cr4 & 0x80) !== 0;
          let pageM: number;
          if (level === 1) pageM = ((eLo & -4096) >>> 0) + (eHi & 0xfffff) * 4294967296;
          else {
            // Large page: base from the entry plus the linear bits below the level.
            const span = idxShift; // 21 or 30
            const baseLo = (eLo & -4096 & ~((1 << span) - 1) & -1) >>> 0;
            const inLo = span >= 32 ? lo >>> 0 : (lo & ((1 << span) - 1)) >>> 0;
            pageM = baseLo + (eHi & 0xfffff) * 4294967296 + (inLo & ~0xfff);
          }
          const poff = mem.maddrToOffset(pageM);
          if (poff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
          if (setAD) this.setBits(eoff, eLo, access === 1 ? 0x60 : 0x20);
          dirty = access === 1 || (eLo & 0x40) !== 0;
          if (fill) this.fillTlbPerm(lo, hi, poff, allW, allU, nx, wp, dirty, global);
          return poff + (lo & 0xfff);
        }
        if (setAD) this.setBits(eoff, eLo, 0x20);
        tableM = ((eLo & -4096) >>> 0) + (eHi & 0xfffff) * 4294967296;
        level--;
      }
    }
    // Legacy 32-bit paging (SDM vol. 3 §4.3), PSE 4 MiB pages when CR4.PSE.
    const pdOff = mem.maddrToOffset((s.cr3Lo & -4096) >>> 0);
    if (pdOff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
    const pdeOff = pdOff + ((lo >>> 22) << 2);
    const pde = dv.getInt32(pdeOff, true);
    if (!(pde & 1)) return this.walkFail(errBase | fetchBit, 0);
    if (!(pde & 2)) allW = false;
    if (!(pde & 4)) allU = false;
    if (pde & 0x80 && s.cr4 & 0x10) {
      if (!this.permOk(access, user, allW, allU, false, wp)) return this.walkFail(errBase | fetchBit, 1);
      const pageM = ((pde & 0xffc00000) >>> 0) + (lo & 0x3ff000);
      const poff = mem.maddrToOffset(pageM);
      if (poff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
      if (setAD) this.setBits(pdeOff, pde, access === 1 ? 0x60 : 0x20);
      dirty = access === 1 || (pde & 0x40) !== 0;
      global = (pde & 0x100) !== 0 && (s.cr4 & 0x80) !== 0;
      if (fill) this.fillTlbPerm(lo, hi, poff, allW, allU, false, wp, dirty, global);
      return poff + (lo & 0xfff);
    }
    const ptOff = mem.maddrToOffset((pde & -4096) >>> 0);
    if (ptOff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
    const pteOff = ptOff + (((lo >>> 12) & 1023) << 2);
    const pte = dv.getInt32(pteOff, true);
    if (!(pte & 1)) return this.walkFail(errBase | fetchBit, 0);
    if (!(pte & 2)) allW = false;
    if (!(pte & 4)) allU = false;
    if (!this.permOk(access, user, allW, allU, false, wp)) return this.walkFail(errBase | fetchBit, 1);
    const poff = mem.maddrToOffset((pte & -4096) >>> 0);
    if (poff < 0) return this.walkFail(errBase | fetchBit, 1 | 8);
    if (setAD) this.setBits(pdeOff, pde, 0x20);
    if (setAD) this.setBits(pteOff, pte, access === 1 ? 0x60 : 0x20);
    dirty = access === 1 || (pte & 0x40) !== 0;
    global = (pte & 0x100) !== 0 && (s.cr4 & 0x80) !== 0;
    if (fill) this.fillTlbPerm(lo, hi, poff, allW, allU, false, wp, dirty, global);
    return poff + (lo & 0xfff);
  }

  /** Sets A (and D) bits of a paging-structure entry at buffer offset `eoff` when missing. */
  private setBits(eoff: number, v: number, bits: number): void {
    if ((v & bits) !== bits) {
      this.dv.setInt32(eoff, v | bits, true);
      if (this.mem.codeFrames[eoff >>> 12]) this.mem.noteWrite(eoff, 4);
    }
  }

  private walkFail(base: number, err: number): number {
    this.lastWalkError = err | base;
    return -1;
  }

  private permOk(
    access: number,
    user: boolean,
    allW: boolean,
    allU: boolean,
    nx: boolean,
    wp: boolean,
  ): boolean {
    if (user && !allU) return false;
    if (access === 1) {
      if (!allW && (user || wp)) return false;
    } else if (access === 2) {
      if (nx) return false;
    }
    return true;
  }

  private fillTlbPerm(
    lo: number,
    hi: number,
    poff: number,
    allW: boolean,
    allU: boolean,
    nx: boolean,
    wp: boolean,
    dirty: boolean,
    global: boolean,
  ): void {
    const wK = (allW || !wp) && dirty;
    const wU = allU && allW && dirty;
    this.fillTlb(lo, hi, poff, wK, allU, wU, !nx, global);
    if (!allU) {
      const i = (lo >>> 12) & TLB_MASK;
      this.tagRU[i] = NO_TAG;
      this.tagXU[i] = NO_TAG;
    }
  }

  private fillTlb(
    lo: number,
    hi: number,
    poff: number,
    wK: boolean,
    rU: boolean,
    wU: boolean,
    x: boolean,
    global: boolean,
  ): void {
    if (this.watchPages.size && this.watchPages.has(pageKey(lo, hi))) return;
    if (
      (this.drArmed.write | this.drArmed.read) !== 0 &&
      drOnPage(this.state, this.state.dr7, this.drArmed.write | this.drArmed.read, lo, hi, this.curMode === 5)
    )
      return; // the guest's data breakpoints: every access to the page takes xlate
    const i = (lo >>> 12) & TLB_MASK;
    const page = lo & -4096;
    if (this.tlbPage[i] !== page || this.tlbHi[i] !== hi || this.tlbOff[i] !== poff) {
      this.dropSlot(i);
      this.tlbPage[i] = page;
      this.tlbHi[i] = hi;
      this.tlbOff[i] = poff;
    }
    this.tlbGlobal[i] = global ? 1 : 0;
    // Data watches: no read / write permission cached for watched frames.
    const dw = this.dataWatchOn ? this.mem.dataWatchFrames[poff >>> 12] : 0;
    if (!(dw & 1)) this.tagRK[i] = page;
    // No write permission is cached for frames holding decoded code or watched by the debugger.
    const code =
      this.mem.codeFrames[poff >>> 12] !== 0 ||
      this.mem.storeWatchFrames[poff >>> 12] !== 0 ||
      (dw & 2) !== 0;
    if (wK && !code) this.tagWK[i] = page;
    if (x) this.tagXK[i] = page;
    if (rU) {
      if (!(dw & 1)) this.tagRU[i] = page;
      if (x) this.tagXU[i] = page;
      if (wU && !code) this.tagWU[i] = page;
    }
  }

  /**
   * Translates for an access by the running code, filling the TLB; raises
   * #PF (or #GP for a non-canonical address in IA-32e mode) on failure.
   * @returns buffer offset of the byte at (lo, hi)
   */
  xlate(lo: number, hi: number, access: number, user: boolean): number {
    if (this.state.efer & 0x400) {
      if (!Cpu.canonical(hi)) this.fault(13, 0);
    } else hi = 0;
    const i = (lo >>> 12) & TLB_MASK;
    const tags =
      access === 0
        ? user
          ? this.tagRU
          : this.tagRK
        : access === 1
          ? user
            ? this.tagWU
            : this.tagWK
          : user
            ? this.tagXU
            : this.tagXK;
    if (tags[i] === (lo & -4096) && this.tlbHi[i] === hi) return this.tlbOff[i] + (lo & 0xfff);
    const off = this.walk(lo, hi, access, user, true, true);
    if (off < 0) this.pageFault(lo, hi, this.lastWalkError);
    if (access === 1) {
      const f = off >>> 12;
      if (this.mem.storeWatchFrames[f]) {
        if (this.skipStoreWatchOnce) this.skipStoreWatchOnce = false;
        else {
          this.exitWatchLinLo = lo;
          this.exitWatchLinHi = hi;
          this.exitWatchWrite = true;
          this.exitWatchPhysical = true;
          this.exitWatchOffset = off;
          this.exitWith(8);
        }
      }
      if (this.mem.codeFrames[f]) for (const c of this.peers) c.invalidateFrame(f);
    }
    if (this.dataWatchOn && access !== 2 && this.mem.dataWatchFrames[off >>> 12] & (access + 1))
      this.checkDataWatch(lo, hi, off, access === 1);
    if (access !== 2 && (access === 1 ? this.drArmed.write : this.drArmed.read) !== 0) {
      const m = access === 1 ? this.drArmed.write : this.drArmed.read;
      this.drHit |= drMatchRange(this.state, this.state.dr7, m, lo, hi, this.accSize, this.curMode === 5);
    }
    if (this.watchPages.size) this.checkWatch(lo, hi, access === 1);
    return off;
  }

  /** Flags a data-watch hit when the access at buffer offset `off` (`accSize` bytes, clipped to the page) overlaps a watched range. */
  private checkDataWatch(lo: number, hi: number, off: number, write: boolean): void {
    const size = Math.max(1, Math.min(this.accSize, 4096 - (off & 0xfff)));
    const bit = write ? 2 : 1;
    for (const w of this.mem.dataWatches) {
      if (w.kind & bit && off < w.off + w.len && off + size > w.off) {
        this.watchHit = true;
        this.exitWatchLinLo = lo;
        this.exitWatchLinHi = hi;
        this.exitWatchWrite = write;
        this.exitWatchPhysical = false;
        this.exitWatchData = true;
        this.exitWatchOffset = off;
        this.exitWatchSize = size;
        return;
      }
    }
  }

  private checkWatch(lo: number, hi: number, write: boolean): void {
    if (!this.watchPages.has(pageKey(lo, hi))) return;
    for (const w of this.watches.values()) {
      if (w.hi !== hi) continue;
      const d = ((lo >>> 0) - (w.lo >>> 0)) >>> 0;
      if (d < w.len && w.kind & (write ? 2 : 1)) {
        this.watchHit = true;
        this.exitWatchLinLo = lo;
        this.exitWatchLinHi = hi;
        this.exitWatchWrite = write;
        this.exitWatchPhysical = false;
        this.exitWatchData = false;
      }
    }
  }

  // ---- data access slow paths (TLB miss, page crossing, watched pages, code frames) ----

  /** Read `size` (1, 2, 4, 8) bytes at linear (lo, hi) as the current CPL. 8: lo returned, hi in tmpHi. */
  rdS(lo: number, hi: number, size: number): number {
    return this.rdAny(lo, hi, size, this.state.cpl === 3);
  }

  wrS(lo: number, hi: number, size: number, v: number, vh: number): void {
    this.wrAny(lo, hi, size, v, vh, this.state.cpl === 3);
  }

  private rdAny(lo: number, hi: number, size: number, user: boolean): number {
    lo |= 0;
    hi |= 0;
    const po = lo & 0xfff;
    if (po + size > 4096) {
      // Crosses a page: translate both pages first (fault before any effect).
      const n = (lo >>> 0) + 4096 - po;
      const lo2 = n | 0;
      const hi2 = this.curMode === 5 || this.state.efer & 0x400 ? (hi + (n > 0xffffffff ? 1 : 0)) | 0 : 0;
      const k = 4096 - po;
      this.accSize = k;
      const o1 = this.xlate(lo, hi, 0, user);
      this.accSize = size - k;
      const o2 = this.xlate(lo2, hi2, 0, user);
      let vlo = 0;
      let vhi = 0;
      for (let j = 0; j < size; j++) {
        const b = j < k ? this.u8[o1 + j] : this.u8[o2 + j - k];
        if (j < 4) vlo |= b << (8 * j);
        else vhi |= b << (8 * (j - 4));
      }
      this.tmpHi = vhi;
      return size === 4 || size === 8 ? vlo : vlo >>> 0;
    }
    this.accSize = size;
    const o = this.xlate(lo, hi, 0, user);
    const dv = this.dv;
    switch (size) {
      case 1:
        return this.u8[o];
      case 2:
        return dv.getUint16(o, true);
      case 4:
        return dv.getInt32(o, true);
      default:
        this.tmpHi = dv.getInt32(o + 4, true);
        return dv.getInt32(o, true);
    }
  }

  private wrAny(lo: number, hi: number, size: number, v: number, vh: number, user: boolean): void {
    lo |= 0;
    hi |= 0;
    const po = lo & 0xfff;
    if (po + size > 4096) {
      const n = (lo >>> 0) + 4096 - po;
      const lo2 = n | 0;
      const hi2 = this.state.efer & 0x400 ? (hi + (n > 0xffffffff ? 1 : 0)) | 0 : 0;
      const k = 4096 - po;
      this.accSize = k;
      const o1 = this.xlate(lo, hi, 1, user);
      this.accSize = size - k;
      const o2 = this.xlate(lo2, hi2, 1, user);
      for (let j = 0; j < size; j++) {
        const b = (j < 4 ? v >>> (8 * j) : vh >>> (8 * (j - 4))) & 0xff;
        if (j < k) this.u8[o1 + j] = b;
        else this.u8[o2 + j - k] = b;
      }
      return;
    }
    this.accSize = size;
    const o = this.xlate(lo, hi, 1, user);
    const dv = this.dv;
    switch (size) {
      case 1:
        this.u8[o] = v;
        break;
      case 2:
        dv.setUint16(o, v, true);
        break;
      case 4:
        dv.setInt32(o, v, true);
        break;
      default:
        dv.setInt32(o, v, true);
        dv.setInt32(o + 4, vh, true);
    }
  }

  /**
   * Reads `n` bytes (1-4096) at linear (lo, hi) as the current CPL into
   * `out[at .. at + n)`. Every page touched is translated before any byte
   * is copied, so a #PF/#GP leaves nothing changed (restartable). Used by
   * wide operands: 80-bit x87 values, 128-bit SSE operands, FXSAVE/XSAVE
   * images, x87 environments. No allocation.
   */
  rdBytes(lo: number, hi: number, n: number, out: Uint8Array, at: number): void {
    const sp = this.xlateSpan(lo, hi, n, 0);
    const o1 = sp[0],
      k = sp[1],
      o2 = sp[2];
    const u8 = this.u8;
    for (let j = 0; j < k; j++) out[at + j] = u8[o1 + j];
    for (let j = k; j < n; j++) out[at + j] = u8[o2 + j - k];
  }

  /**
   * Writes `n` bytes (1-4096) from `src[at .. at + n)` to linear (lo, hi) as
   * the current CPL. Both pages of a page-crossing store are translated for
   * writing before any byte is stored (SDM: a faulting store changes no
   * memory). No allocation.
   */
  wrBytes(lo: number, hi: number, n: number, src: Uint8Array, at: number): void {
    const sp = this.xlateSpan(lo, hi, n, 1);
    const o1 = sp[0],
      k = sp[1],
      o2 = sp[2];
    const u8 = this.u8;
    for (let j = 0; j < k; j++) u8[o1 + j] = src[at + j];
    for (let j = k; j < n; j++) u8[o2 + j - k] = src[at + j];
  }

  /** Translation of an access of `n` bytes (1-4096): [offset of the first part, its length, offset of the second page's part]. */
  private xlateSpan(lo: number, hi: number, n: number, access: number): Int32Array {
    lo |= 0;
    hi |= 0;
    const user = this.state.cpl === 3;
    const po = lo & 0xfff;
    const span = this.spanTmp;
    if (po + n <= 4096) {
      this.accSize = n;
      span[0] = this.xlate(lo, hi, access, user);
      span[1] = n;
      span[2] = 0;
      return span;
    }
    const k = 4096 - po;
    const t = (lo >>> 0) + k;
    const hi2 = this.curMode === 5 || this.state.efer & 0x400 ? (hi + (t > 0xffffffff ? 1 : 0)) | 0 : 0;
    this.accSize = k;
    const o1 = this.xlate(lo, hi, access, user);
    this.accSize = n - k;
    const o2 = this.xlate(t | 0, hi2, access, user);
    span[0] = o1;
    span[1] = k;
    span[2] = o2;
    return span;
  }
  private readonly spanTmp = new Int32Array(3);

  linRead8(lo: number, hi: number, user: boolean): number {
    return this.rdAny(lo, hi, 1, user);
  }
  linRead16(lo: number, hi: number, user: boolean): number {
    return this.rdAny(lo, hi, 2, user);
  }
  linRead32(lo: number, hi: number, user: boolean): number {
    return this.rdAny(lo, hi, 4, user);
  }
  linRead64(lo: number, hi: number, user: boolean): number {
    return this.rdAny(lo, hi, 8, user);
  }
  linWrite8(lo: number, hi: number, v: number, user: boolean): void {
    this.wrAny(lo, hi, 1, v, 0, user);
  }
  linWrite16(lo: number, hi: number, v: number, user: boolean): void {
    this.wrAny(lo, hi, 2, v, 0, user);
  }
  linWrite32(lo: number, hi: number, v: number, user: boolean): void {
    this.wrAny(lo, hi, 4, v, 0, user);
  }
  linWrite64(lo: number, hi: number, vLo: number, vHi: number, user: boolean): void {
    this.wrAny(lo, hi, 8, vLo, vHi, user);
  }

  /**
   * Segment-relative offset to linear address for 32/16-bit modes with
   * non-flat segments: adds the base and checks the limit (expand-up and
   * expand-down), raising #GP(0) or #SS(0) (SDM vol. 3 §5.3).
   * @returns the linear address (low half; high half is 0)
   */
  segLin(seg: number, off: number, size: number, write: boolean): number {
    const s = this.state;
    const attr = s.segAttr[seg];
    const vec = seg === 2 ? 12 : 13;
    if (this.curMode === 0 || this.curMode === 6) return (s.segBaseLo[seg] + (off & 0xffff)) | 0;
    if (attr & 0x10000) this.fault(vec, 0);
    // Type checks (SDM vol. 3 §5.5): writes need a writable data segment; reads fail on execute-only code.
    if (write) {
      if ((attr & 0x1a) !== 0x12) this.fault(vec, 0);
    } else if ((attr & 0x1a) === 0x18) {
      this.fault(vec, 0);
    }
    const limit = s.segLimit[seg];
    const u = off >>> 0;
    const last = u + size - 1;
    if ((attr & 0x1c) === 0x14) {
      // Expand-down data segment: valid offsets are (limit, max].
      const max = attr & 0x400 ? 0xffffffff : 0xffff;
      if (u <= limit || last > max) this.fault(vec, 0);
    } else if (last > limit) this.fault(vec, 0);
    return (s.segBaseLo[seg] + off) | 0;
  }

  // =====================================================================
  // Breakpoints and watchpoints
  // =====================================================================

  setBreakpoint(linLo: number, linHi: number): void {
    const k = `${linHi | 0}:${linLo | 0}`;
    if (this.bps.has(k)) return;
    this.bps.add(k);
    const pk = pageKey(linLo, linHi);
    this.bpPages.set(pk, (this.bpPages.get(pk) ?? 0) + 1);
    this.invalidateLinearPage(linLo, linHi);
  }

  /** Drops decoded code of the frame currently mapped at linear (lo, hi) (everything when unmapped). */
  private invalidateLinearPage(lo: number, hi: number): void {
    let off = this.walk(lo | 0, hi | 0, 2, false, false, false);
    if (off < 0) off = this.walk(lo | 0, hi | 0, 2, true, false, false);
    if (off < 0) off = this.walk(lo | 0, hi | 0, 0, false, false, false);
    if (off >= 0) {
      for (const c of this.peers) c.invalidateFrame(off >>> 12);
    } else this.flushCodeCache();
  }

  clearBreakpoint(linLo: number, linHi: number): void {
    const k = `${linHi | 0}:${linLo | 0}`;
    if (!this.bps.delete(k)) return;
    const pk = pageKey(linLo, linHi);
    const n = (this.bpPages.get(pk) ?? 1) - 1;
    if (n <= 0) this.bpPages.delete(pk);
    else this.bpPages.set(pk, n);
    this.invalidateLinearPage(linLo, linHi);
  }

  clearAllBreakpoints(): void {
    this.bps.clear();
    this.bpPages.clear();
    this.flushCodeCache();
  }

  /** True when a breakpoint is set at linear (lo, hi). */
  hasBreakpoint(lo: number, hi: number): boolean {
    return this.bps.size !== 0 && this.bps.has(`${hi | 0}:${lo | 0}`);
  }

  /** True when linear page of (lo, hi) holds a breakpoint. */
  pageHasBreakpoint(lo: number, hi: number): boolean {
    return this.bpPages.size !== 0 && this.bpPages.has(pageKey(lo, hi));
  }

  setWatch(linLo: number, linHi: number, len: number, kind: number): number {
    const id = this.nextWatchId++;
    len = Math.max(1, Math.min(len >>> 0, 1 << 20));
    this.watches.set(id, { lo: linLo | 0, hi: linHi | 0, len, kind });
    this.rebuildWatchPages();
    return id;
  }

  clearWatch(id: number): void {
    if (this.watches.delete(id)) this.rebuildWatchPages();
  }

  private rebuildWatchPages(): void {
    const wasWatching = this.watchPages.size !== 0;
    this.watchPages.clear();
    for (const w of this.watches.values()) {
      for (let o = 0; o < w.len + (w.lo & 0xfff); o += 4096) {
        const n = (w.lo >>> 0) + o;
        this.watchPages.add(pageKey(n | 0, (w.hi + (n > 0xffffffff ? 1 : 0)) | 0));
      }
    }
    this.flushTlb(true);
    // Blocks are one instruction long while watching: rebuild when that changes.
    if (wasWatching !== (this.watchPages.size !== 0)) this.flushCodeCache();
  }

  /** True when watchpoints exist (blocks are then one instruction long). */
  get watching(): boolean {
    return (
      this.watches.size !== 0 ||
      this.mem.dataWatches.length !== 0 ||
      (this.drArmed.write | this.drArmed.read | this.drArmed.io) !== 0
    );
  }

  // =====================================================================
  // Code cache
  // =====================================================================

  flushCodeCache(): void {
    for (let f = 0; f < this.blocks.frameCount; f++) {
      if (this.blocks.holds(f)) this.invalidateFrame(f);
    }
  }

  /** Cpus sharing this machine memory (this one included). */
  private peers: Cpu[] = [];

  /** Drops every block decoded from buffer frame `f` (SMC, or writes from outside the CPU). */
  invalidateFrame(f: number): void {
    this.epoch++;
    let held = false;
    for (const c of this.peers) if (c !== this && c.blocks.holds(f)) held = true;
    if (!held) this.mem.codeFrames[f] = 0;
    this.blocks.dropFrame(f);
  }

  private registerBlock(b: Block): void {
    this.blocks.add(b);
  }

  /** Linear address of the current RIP (CS base applied outside 64-bit mode). */
  private fetchLin(): number {
    const s = this.state;
    return this.curMode === 5 ? s.ripLo : (s.segBaseLo[1] + s.ripLo) | 0;
  }

  /**
   * Builds the block starting at the current RIP (buffer offset `off` of
   * its first byte). `maxInsns` 1 builds a one-instruction block (not cached
   * in the lookup table).
   */
  private buildBlock(off: number, maxInsns: number): Block {
    const s = this.state;
    const long = this.curMode === 5;
    const user = s.cpl === 3;
    const linStart = this.fetchLin();
    const ripHi = long ? s.ripHi : 0;
    const insns: Insn[] = [];
    let ripLo = s.ripLo;
    let ripH = ripHi;
    let lin = linStart;
    let frame2 = -1;
    const pageBase = off & -4096;
    const bpPage = this.pageHasBreakpoint(linStart, ripHi);
    const limit = this.watching ? 1 : maxInsns;
    const drx = this.drArmed.exec;
    for (let k = 0; k < limit; k++) {
      const linHi = long ? ripH : 0;
      if (k > 0 && bpPage && this.hasBreakpoint(lin, linHi)) break;
      // The guest's instruction breakpoints start a block of their own (checked at block entry).
      if (k > 0 && drx !== 0 && drMatchExec(s, drx, lin, linHi, long) !== 0) break;
      const first = lin;
      let pageCross = -1;
      const fetch = (i: number): number => {
        const a = (first + i) | 0;
        if ((a & -4096) === (linStart & -4096) && (long ? (first >>> 0) + i <= 0xffffffff : true)) {
          return this.u8[pageBase + (a & 0xfff)];
        }
        // Byte on the next page.
        const carry = long && (first >>> 0) + i > 0xffffffff ? 1 : 0;
        const ahi = (linHi + carry) | 0;
        if (long && !Cpu.canonical(ahi)) {
          this.lastFetchErr = -1;
          return -1;
        }
        const o = this.walk(a, ahi, 2, user, true, false);
        if (o < 0) {
          this.lastFetchErr = this.lastWalkError;
          this.lastFetchLo = a;
          this.lastFetchHi = ahi;
          return -1;
        }
        pageCross = o >>> 12;
        return this.u8[o];
      };
      if ((lin & -4096) !== (linStart & -4096)) break; // next page: new block
      const d = decode(fetch, this.defSize, ripLo, ripH);
      if (!d) {
        if (k === 0) {
          void decodeInfo;
          if (this.lastFetchErr === -1) this.fault(13, 0);
          this.pageFault(this.lastFetchLo, this.lastFetchHi, this.lastFetchErr);
        }
        break;
      }
      if (pageCross >= 0) {
        if (k > 0) break; // a page-crossing instruction starts its own block
        frame2 = pageCross;
      }
      insns.push(d);
      ripLo = d.nextLo;
      ripH = d.nextHi;
      lin = (lin + d.len) | 0;
      if (isTerminator(d) || frame2 >= 0) break;
    }
    const blk = compileBlock(this, insns, this.modeKey, off >>> 12, off & 0xfff, frame2, maxInsns === 1);
    blk.bp = bpPage && this.hasBreakpoint(linStart, ripHi);
    blk.drbp = drx !== 0 ? drMatchExec(s, drx, linStart, ripHi, long) : 0;
    // With watchpoints, every (one-instruction) block is followed by the run loop's exit checks.
    if (this.watching) blk.sys = true;
    this.registerBlock(blk);
    return blk;
  }

  private lastFetchErr = 0;
  private lastFetchLo = 0;
  private lastFetchHi = 0;

  // =====================================================================
  // Run loop
  // =====================================================================

  /** Testing aid: compile every instruction through the generic implementation (exec.ts) instead of inline code. */
  forceGeneric = false;

  /** The object thrown by fault()/pageFault()/privileged() (compiled blocks compare against it). */
  readonly faultSentinel: object = FAULT;

  /** Bumped whenever a cached block successor may be stale (TLB flush, code invalidation, mode change). */
  private epoch = 1;

  /** Looks up (or builds) the block at the current RIP through the code TLB. Faults on fetch. */
  private lookupBlock(): Block {
    const s = this.state;
    const long = this.curMode === 5;
    const lin = long ? s.ripLo : (s.segBaseLo[1] + s.ripLo) | 0;
    const linHi = long ? s.ripHi : 0;
    const i = (lin >>> 12) & TLB_MASK;
    const xt = s.cpl === 3 ? this.tagXU : this.tagXK;
    let off: number;
    this.insnRipLo = s.ripLo;
    this.insnRipHi = s.ripHi;
    this.insnLength = 0;
    if (xt[i] === (lin & -4096) && this.tlbHi[i] === linHi) off = this.tlbOff[i] + (lin & 0xfff);
    else off = this.xlate(lin, linHi, 2, s.cpl === 3);
    let blk = this.blocks.lookup(off);
    if (
      blk === undefined ||
      blk.ripLo !== s.ripLo ||
      blk.ripHi !== linHi ||
      blk.key !== this.modeKey ||
      (blk.frame2 >= 0 && !this.checkFrame2(blk, lin, linHi))
    ) {
      blk = this.buildBlock(off, 64);
    }
    this.lastOff = off;
    return blk;
  }

  private lastOff = 0;

  run(budget: number): number {
    const s = this.state;
    this.stopReq = false;
    this.watchHit = false;
    if (this.mem.dataWatchGen !== this.dataWatchGenSeen) {
      // Data watches changed: drop cached permissions and rebuild blocks (one instruction each while watching).
      this.dataWatchGenSeen = this.mem.dataWatchGen;
      this.dataWatchOn = this.mem.dataWatches.length !== 0;
      this.flushTlb(true);
      this.flushCodeCache();
    }
    if (!(budget >= 1)) budget = 1;
    if (this.singleStep) budget = 1;
    if (this.deferredExit >= 0) {
      const r = this.deferredExit;
      this.deferredExit = -1;
      return r;
    }
    // Budget end as an absolute instruction count (blocks may add to instructionsRetired themselves).
    const end = s.instructionsRetired + budget;
    // Budget charged for REP string iterations and chunks that yielded without retiring, and for
    // exception deliveries (keeps run() bounded).
    this.runStall = 0;
    let first = true;
    if (s.halted) return 6;
    // Drivers may have changed CR0/CR3/CR4/EFER/CS/CPL between runs: re-derive (cheap when nothing changed).
    this.stateChanged();
    let prev: Block | null = null;
    for (;;) {
      let blk: Block | undefined;
      this.faultIc = -1;
      try {
        for (;;) {
          const remaining = end - s.instructionsRetired - this.runStall;
          if (remaining <= 0) return this.singleStep ? 11 : 0;
          // Successor cache: valid while no TLB flush / invalidation / mode change happened.
          const ep = this.epoch;
          if (prev !== null && prev.c0ep === ep && prev.c0lo === s.ripLo && prev.c0hi === s.ripHi)
            blk = prev.c0!;
          else if (prev !== null && prev.c1ep === ep && prev.c1lo === s.ripLo && prev.c1hi === s.ripHi)
            blk = prev.c1!;
          else {
            blk = this.lookupBlock();
            if (prev !== null && this.epoch === ep) {
              // Fill the emptier slot (slot 0 first, then alternate).
              if (prev.c0ep !== ep) {
                prev.c0 = blk;
                prev.c0lo = s.ripLo;
                prev.c0hi = s.ripHi;
                prev.c0ep = ep;
              } else {
                prev.c1 = blk;
                prev.c1lo = s.ripLo;
                prev.c1hi = s.ripHi;
                prev.c1ep = ep;
              }
            }
          }
          if (blk.bp && !first) return 7;
          // RFLAGS.TF (checked before the instruction): execute one instruction, then #DB.
          const sf = this.rfl & 0x10100;
          const tf = (sf & 0x100) !== 0;
          if ((sf & 0x10000) !== 0) {
            // RFLAGS.RF: the first instruction's instruction breakpoints are suppressed, and RF
            // clears as it executes (an IRET loading RF = 1 sets it again) (SDM vol. 3 §18.3.1.1).
            this.rfl &= ~0x10000;
          } else if (blk.drbp !== 0) {
            const r = this.debugException(blk.drbp, false);
            prev = null;
            first = false;
            if (r >= 0) return r;
            continue;
          }
          if (blk.n > remaining || tf) {
            // Budget tail or single-step trap: a one-instruction block.
            this.lookupBlock();
            this.insnRipLo = s.ripLo;
            this.insnRipHi = s.ripHi;
            const off = this.lastOff;
            const sb = this.blocks.lookupSingle(off);
            if (
              sb !== undefined &&
              sb.ripLo === s.ripLo &&
              sb.ripHi === (this.curMode === 5 ? s.ripHi : 0) &&
              sb.key === this.modeKey &&
              sb.frame2 < 0
            ) {
              blk = sb;
            } else blk = this.buildBlock(off, 1);
          }
          const n = blk.fn();
          if (n < 0) {
            // The block caught a fault (cpu.faultIc says where).
            prev = null;
            first = false;
            this.runStall += 16; // exception deliveries count against the budget (a handler that faults at once must not hang run())
            const r = this.handleFault(blk);
            if (r >= 0) return r;
            // A step that ended in exception delivery stops at the handler's first instruction.
            if (this.singleStep) return 11;
            if (this.stopReq) {
              this.stopReq = false;
              return 10;
            }
            this.faultIc = -1;
            continue;
          }
          s.instructionsRetired += n;
          first = false;
          if (n === 0) this.runStall += 256;
          if (this.repWork !== 0) {
            this.runStall += this.repWork >>> 2;
            this.repWork = 0;
          }
          if (blk.sys || blk.single) {
            this.stateChanged();
            prev = null;
            if (this.pendingExit) {
              const r = this.pendingExit;
              this.pendingExit = 0;
              return r;
            }
            if (s.halted) return 6;
            if (this.stopReq) {
              this.stopReq = false;
              return 10;
            }
            if (this.watchHit) {
              this.watchHit = false;
              return 8;
            }
            if (this.drHit !== 0 && n > 0) {
              // Data / I/O breakpoint: #DB trap after the instruction (BS too when single-stepping).
              const r = this.debugException(this.drHit | (tf ? 0x4000 : 0), true);
              if (r >= 0) return r;
            } else if (tf && n > 0) {
              const r = this.singleStepTrap();
              if (r >= 0) return r;
            }
          } else prev = blk;
        }
      } catch (e) {
        prev = null;
        if (e !== FAULT) {
          this.exitDetail = `internal error: ${e instanceof Error ? e.message : String(e)}`;
          return 9;
        }
        const r = this.handleFault(blk);
        first = false;
        this.runStall += 16;
        if (r >= 0) return r;
        if (this.singleStep) return 11;
        if (this.stopReq) {
          this.stopReq = false;
          return 10;
        }
      }
    }
  }

  private faultRetired = 0;

  /** Second page of a page-crossing block still maps the same frame. */
  private checkFrame2(b: Block, lin: number, linHi: number): boolean {
    const n = (lin >>> 0) + 4096;
    const lo2 = n & -4096;
    const hi2 = this.curMode === 5 ? (linHi + (n > 0xffffffff ? 1 : 0)) | 0 : 0;
    const o = this.walk(lo2 | 0, hi2, 2, this.state.cpl === 3, false, false);
    return o >= 0 && o >>> 12 === b.frame2;
  }

  /**
   * Completes a fault thrown inside a block (or during block lookup):
   * restores RIP, counts the instructions that completed, then exits or
   * delivers the exception. @returns an ExitReason, or -1 to keep running.
   */
  private handleFault(blk: Block | undefined): number {
    const s = this.state;
    let retired = 0;
    this.drHit = 0; // the faulting instruction did not complete: no data-breakpoint trap
    let insn: Insn | undefined;
    if (blk && this.faultIc >= 0) {
      const k = this.faultIc;
      retired = k - (blk.addedAt[k] ?? 0);
      insn = blk.insns[k];
      if (insn) {
        s.ripLo = insn.ripLo;
        s.ripHi = insn.ripHi;
        this.insnLength = insn.len;
      }
    }
    this.faultIc = -1;
    if (this.pendTrap && insn) {
      retired++;
      s.ripLo = insn.nextLo;
      s.ripHi = insn.nextHi;
    }
    s.instructionsRetired += retired;
    this.faultRetired = retired;
    this.stateChanged();
    if (this.pendExit) {
      const r = this.pendExit;
      this.pendExit = 0;
      if (insn) this.exitInsnLength = insn.len;
      return r;
    }
    const v = this.pendVector;
    this.exitTrap = this.pendTrap;
    if (v < 32 && this.interceptExceptions & (1 << v)) {
      this.exitVector = v;
      this.exitErrorCode = this.pendError;
      this.exitInsnLength = insn ? insn.len : 0;
      if (this.pendIsPf) {
        this.exitCr2Lo = this.pendCr2Lo;
        this.exitCr2Hi = this.pendCr2Hi;
      }
      return 1;
    }
    return this.deliverException(v, this.pendError, this.pendIsPf, 0);
  }

  /**
   * Single-step trap after an instruction that began with RFLAGS.TF = 1
   * (SDM vol. 3 §17.3.1.4): DR6.BS set, #DB delivered with RIP after the
   * instruction, or exits EXCEPTION (vector 1, exitTrap) when intercepted.
   * @returns an ExitReason or -1 to keep running
   */
  /**
   * #DB for the guest's debug registers (SDM vol. 3 §18.3.1): `status` holds
   * the DR6 bits to report (B0-B3 of the matching breakpoints, BS); B0-B3
   * are replaced, other status bits accumulate. `trap`: data/I-O breakpoint
   * (RIP already after the instruction); otherwise an instruction-breakpoint
   * fault (RIP at the instruction). Exits EXCEPTION (vector 1) when #DB is
   * intercepted, else delivers it through the IDT.
   * @returns an ExitReason or -1 to keep running
   */
  private debugException(status: number, trap: boolean): number {
    const s = this.state;
    this.drHit = 0;
    s.dr6 = ((s.dr6 & ~0xf) | (status & 0xe00f)) & ~0x1000;
    if (this.interceptExceptions & 2) {
      this.exitVector = 1;
      this.exitErrorCode = -1;
      this.exitTrap = trap;
      this.exitInsnLength = 0;
      return 1;
    }
    return this.deliverException(1, -1, false, 0);
  }

  private singleStepTrap(): number {
    const s = this.state;
    s.dr6 |= 0x4000;
    if (this.interceptExceptions & 2) {
      this.exitVector = 1;
      this.exitErrorCode = -1;
      this.exitTrap = true;
      this.exitInsnLength = 0;
      return 1;
    }
    return this.deliverException(1, -1, false, 0);
  }

  /** Architectural delivery of an exception through the IDT, escalating nested faults to #DF and then SHUTDOWN. */
  private deliverException(v: number, err: number, isPf: boolean, depth: number): number {
    const s = this.state;
    if (isPf) {
      s.cr2Lo = this.pendCr2Lo;
      s.cr2Hi = this.pendCr2Hi;
    }
    try {
      systemOps.deliverInterrupt(this, v, err, false, s.ripLo, s.ripHi);
      this.stateChanged();
      return -1;
    } catch (e) {
      if (e !== FAULT) {
        this.exitDetail = `exception ${v} delivery failed: ${e instanceof Error ? e.message : String(e)}`;
        return 9;
      }
      const second = this.pendVector;
      const next = depth >= 3 ? -1 : systemOps.nestedException(v, second);
      if (next < 0) {
        this.exitDetail = `triple fault (vector ${v}, then ${second})`;
        return 9;
      }
      if (next !== 8) {
        if (second < 32 && this.interceptExceptions & (1 << second)) {
          this.exitVector = second;
          this.exitErrorCode = this.pendError;
          this.exitTrap = false;
          if (this.pendIsPf) {
            this.exitCr2Lo = this.pendCr2Lo;
            this.exitCr2Hi = this.pendCr2Hi;
          }
          return 1;
        }
        return this.deliverException(second, this.pendError, this.pendIsPf, depth + 1);
      }
      if (this.interceptExceptions & (1 << 8)) {
        this.exitVector = 8;
        this.exitErrorCode = 0;
        this.exitTrap = false;
        return 1;
      }
      return this.deliverException(8, 0, false, depth + 1);
    }
  }

  /** TSC value (SDM RDTSC): instructionsRetired * tscPerInstruction + tscOffset; lo returned, hi in tmpHi. */
  readTsc(): number {
    const t = this.state.instructionsRetired * this.tscPerInstruction + this.tscOffset;
    this.tmpHi = Math.floor(t / 4294967296) | 0;
    return (t % 4294967296) | 0;
  }

  /** Low 64 bits of (a, ah) * (b, bh) (any signedness); high half in tmpHi. SDM IMUL (truncated forms). */
  mul64(a: number, ah: number, b: number, bh: number): number {
    const a0 = a & 0xffff,
      a1 = a >>> 16,
      b0 = b & 0xffff,
      b1 = b >>> 16;
    const p00 = a0 * b0,
      p01 = a0 * b1,
      p10 = a1 * b0,
      p11 = a1 * b1;
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const lo = ((mid & 0xffff) << 16) | (p00 & 0xffff);
    const hi = p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
    this.tmpHi = (hi + Math.imul(a, bh) + Math.imul(ah, b)) | 0;
    return lo;
  }

  /** Executes one decoded instruction through the generic implementation (used by compiled blocks for rare instructions). */
  x(d: Insn): number {
    return execInsn(this, d);
  }
}

/** Cpus attached to each machine memory (for code-write invalidation across vCPUs). */
const CPUS_BY_MEMORY = new WeakMap<MachineMemory, Cpu[]>();

/** Key of the linear page holding (lo, hi). */
function pageKey(lo: number, hi: number): string {
  return `${hi | 0}:${lo >>> 12}`;
}

export type { CpuApi };
