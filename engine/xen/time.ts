/**
 * Guest time (Xen common/time.c, arch/x86/time.c as a PV guest sees it).
 *
 * Deterministic: system time (ns) = instructions the vCPU retired + the
 * time it spent blocked (advanced by the scheduler when every vCPU sleeps).
 * The TSC runs at `tscPerInstruction` ticks per instruction, i.e. at
 * `tscPerInstruction` GHz, so ns = TSC / tscPerInstruction. vcpu_time_info
 * carries the matching tsc_to_system_mul/tsc_shift; the wall clock is the
 * fixed WALLCLOCK_EPOCH_SEC at system time 0.
 */
import type { Domain, Vcpu } from './domain';
import { WALLCLOCK_EPOCH_SEC } from './layout';

/** Pick (mul, shift) so that ((tsc << shift) * mul) >> 32 = tsc / k (Xen public/xen.h vcpu_time_info). */
export function tscScale(k: number): { mul: number; shift: number } {
  // Want mul * 2^shift / 2^32 = 1/k with mul in [2^31, 2^32).
  let shift = 0;
  let mul = 2 ** 32 / k;
  while (mul >= 2 ** 32) {
    mul /= 2;
    shift++;
  }
  while (mul < 2 ** 31) {
    mul *= 2;
    shift--;
  }
  return { mul: Math.floor(mul), shift };
}

export class XenTime {
  readonly k: number;
  readonly mul: number;
  readonly shift: number;
  /** ns each vCPU spent blocked (added to instructions retired). */
  private readonly idleNs: number[] = [];

  constructor(
    readonly dom: Domain,
    tscPerInstruction: number,
  ) {
    this.k = Math.max(1, Math.floor(tscPerInstruction));
    const s = tscScale(this.k);
    this.mul = s.mul;
    this.shift = s.shift;
  }

  /** System time of vCPU `v` in ns. */
  nowNs(v: Vcpu): number {
    return v.cpu.state.instructionsRetired + (this.idleNs[v.id] ?? 0);
  }

  /** Advances `v`'s clock by `ns` (blocked time); keeps TSC = ns * k. */
  advance(v: Vcpu, ns: number): void {
    if (ns <= 0) return;
    this.idleNs[v.id] = (this.idleNs[v.id] ?? 0) + ns;
    v.cpu.tscOffset += ns * this.k;
  }

  /** Writes vcpu_time_info of `v` (version odd, fields, version even). Xen public/xen.h. */
  updateVcpuTime(v: Vcpu): void {
    const off = v.vcpuInfoOff();
    if (off >= 0) this.writeTimeInfo(off + 0x20, v);
    // The secondary copy registered with VCPUOP_register_vcpu_time_memory_area (guest virtual).
    if (v.timeArea !== 0n) {
      const o = v.cpu.translate(
        Number(v.timeArea & 0xffffffffn) | 0,
        Number(v.timeArea >> 32n) | 0,
        1,
        false,
        true,
      );
      if (o >= 0 && (o % 4096) + 32 <= 4096) this.writeTimeInfo(o, v);
    }
  }

  /** Writes a vcpu_time_info record at buffer offset `o` using the seqcount protocol. */
  writeTimeInfo(o: number, v: Vcpu): void {
    const mem = this.dom.mem;
    const ver = mem.read32(o);
    mem.write32(o, ((ver + 1) | 1) >>> 0);
    const tsc = v.cpu.state.instructionsRetired * this.k + v.cpu.tscOffset;
    const ns = this.nowNs(v);
    mem.write64(o + 8, tsc % 0x100000000, Math.floor(tsc / 0x100000000));
    mem.write64(o + 0x10, ns % 0x100000000, Math.floor(ns / 0x100000000));
    mem.write32(o + 0x18, this.mul);
    mem.write8(o + 0x1c, this.shift & 0xff);
    mem.write8(o + 0x1d, 1); // XEN_PVCLOCK_TSC_STABLE_BIT
    mem.write32(o + 0, ((ver + 1) | 1) + 1);
  }

  /** Writes the wall clock (wc_version, wc_sec, wc_nsec, sec_hi) into shared_info. */
  writeWallclock(): void {
    const mem = this.dom.mem;
    const si = this.dom.sharedInfoOff();
    const base = this.dom.bits === 64 ? 0xc00 : 0x900;
    const ver = mem.read32(si + base);
    mem.write32(si + base, (ver + 1) | 1);
    mem.write32(si + base + 4, WALLCLOCK_EPOCH_SEC);
    mem.write32(si + base + 8, 0);
    if (this.dom.bits === 64) mem.write32(si + 0xc0c, 0);
    else mem.write32(si + 0x924, 0);
    mem.write32(si + base, ((ver + 1) | 1) + 1);
  }

  /** Earliest timer deadline of `v` in ns, or Infinity. */
  nextDeadline(v: Vcpu): number {
    let d = Infinity;
    if (v.singleshotNs > 0) d = v.singleshotNs;
    if (v.periodicNs > 0 && v.nextPeriodicNs < d) d = v.nextPeriodicNs;
    if (v.pollPorts && v.pollTimeoutNs > 0 && v.pollTimeoutNs < d) d = v.pollTimeoutNs;
    return d;
  }

  /** Fires expired timers of `v` (VIRQ_TIMER); returns true when one fired. */
  checkTimers(v: Vcpu): boolean {
    const now = this.nowNs(v);
    let fired = false;
    if (v.singleshotNs > 0 && now >= v.singleshotNs) {
      v.singleshotNs = 0;
      fired = true;
    }
    if (v.periodicNs > 0 && now >= v.nextPeriodicNs) {
      const late = now - v.nextPeriodicNs;
      v.nextPeriodicNs += (Math.floor(late / v.periodicNs) + 1) * v.periodicNs;
      fired = true;
    }
    if (v.pollPorts && v.pollTimeoutNs > 0 && now >= v.pollTimeoutNs) {
      v.pollPorts = null;
      v.pollTimeoutNs = 0;
      v.blocked = false;
    }
    if (fired) this.dom.evtchn.sendVirq(v, 0 /* VIRQ_TIMER */);
    return fired;
  }
}
