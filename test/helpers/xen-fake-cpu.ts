/**
 * A stand-in for engine/cpu's Cpu for unit tests of the Xen model: holds the
 * architectural state and walks the real page tables in machine memory for
 * `translate` (4-level long mode when EFER.LMA, else PAE), so hypercall
 * handlers and the builder's tables are exercised as they are with the
 * interpreter. It executes no instructions (`run` returns BUDGET).
 */
import type { CpuApi, CpuidPolicy } from '../../engine/cpu/api';
import { CpuState } from '../../engine/cpu/state';
import type { MachineMemory } from '../../engine/memory/machine-memory';

export class FakeCpu implements CpuApi {
  readonly state = new CpuState();
  cpuid: CpuidPolicy = { leaf: () => ({ eax: 0, ebx: 0, ecx: 0, edx: 0 }) };
  tscPerInstruction = 1;
  tscOffset = 0;
  runStall = 0;
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
  exitInsnLength = 2;
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
  exitWatchData = false;
  exitWatchSize = 0;
  exitDetail = '';
  lastWalkError = 0;
  private rflags = 0x2;
  tlbFlushes = 0;

  constructor(readonly mem: MachineMemory) {}

  run(): number {
    return 0;
  }
  requestStop(): void {}
  mode(): number {
    return this.state.efer & (1 << 10) ? 5 : 2;
  }
  getRflags(): number {
    return this.rflags;
  }
  setRflags(v: number): void {
    this.rflags = (v | 2) >>> 0;
  }
  skipInstruction(): void {
    this.state.ripLo = (this.state.ripLo + this.exitInsnLength) | 0;
  }
  loadSegment(): number {
    return -1;
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
    s.segBaseLo[seg] = baseLo;
    s.segBaseHi[seg] = baseHi;
    s.segLimit[seg] = limit;
    s.segAttr[seg] = attr;
  }
  stateChanged(): void {}
  flushTlb(): void {
    this.tlbFlushes++;
  }
  flushTlbPage(): void {
    this.tlbFlushes++;
  }
  translate(linLo: number, linHi: number, access: number, user: boolean): number {
    const va = (BigInt(linHi >>> 0) << 32n) | BigInt(linLo >>> 0);
    const long = (this.state.efer & (1 << 10)) !== 0;
    let table = ((BigInt(this.state.cr3Hi >>> 0) << 32n) | BigInt(this.state.cr3Lo >>> 0)) & ~0xfffn;
    const levels = long ? [39n, 30n, 21n, 12n] : [30n, 21n, 12n];
    if (!long) table = ((BigInt(this.state.cr3Hi >>> 0) << 32n) | BigInt(this.state.cr3Lo >>> 0)) & ~0x1fn;
    let writable = true;
    let usr = true;
    for (let i = 0; i < levels.length; i++) {
      const sh = levels[i];
      const idx = !long && i === 0 ? (va >> 30n) & 3n : (va >> sh) & 511n;
      const off = this.mem.maddrToOffset(Number(table + idx * 8n));
      if (off < 0) {
        this.lastWalkError = 0;
        return -1;
      }
      const e = this.mem.read64Big(off);
      if (!(e & 1n)) {
        this.lastWalkError = (access === 1 ? 2 : 0) | (user ? 4 : 0);
        return -1;
      }
      if (!(!long && i === 0)) {
        writable &&= (e & 2n) !== 0n;
        usr &&= (e & 4n) !== 0n;
      }
      table = e & 0x000ffffffffff000n;
    }
    if ((access === 1 && !writable && (user || this.state.cr0 & (1 << 16))) || (user && !usr)) {
      this.lastWalkError = 1 | (access === 1 ? 2 : 0) | (user ? 4 : 0);
      return -1;
    }
    return this.mem.maddrToOffset(Number(table | (va & 0xfffn)));
  }
  injectException(vector: number, errorCode: number): void {
    this.exitVector = vector;
    this.exitErrorCode = errorCode;
  }
  setBreakpoint(): void {}
  clearBreakpoint(): void {}
  clearAllBreakpoints(): void {}
  setWatch(): number {
    return 1;
  }
  clearWatch(): void {}
  flushCodeCache(): void {}
}
