/**
 * The Machine facade (engine/machine-api.ts): builds a PV domain from a
 * DomainConfig, wires the dom0 services (xenstored, console daemon,
 * blkback), and runs the guest in bounded, deterministic slices, turning
 * hypervisor events into debugger stops.
 */
import * as fs from 'node:fs';
import type {
  Machine,
  MachineInfo,
  DomainConfig,
  Stop,
  FilterId,
  VcpuRegisters,
  DescriptorEntry,
  TrapTableEntry,
  PageTableNode,
  PageTableEntryInfo,
  WalkResult,
  WalkStep,
  EvtchnInfo,
  VcpuEventState,
  GrantInfo,
  XenstoreNode,
  XenstoreWatchInfo,
  ConsoleApi,
  ShutdownReason,
} from './machine-api';
import { ExitReason } from './cpu/api';
import { Reg, Seg, Vector, REG_NAMES64, SEG_NAMES } from './cpu/state';
import { loadKernelImage, type LoadedImage } from './image/index';
import { buildDomain, syncCompatCr3, type BuildImage, type BuildResult } from './xen/builder';
import type { Domain, Vcpu } from './xen/domain';
import { doHypercall, readHypercallRegs, hypercallNameOf, type HypercallEnv } from './xen/hypercall';
import { __HYPERVISOR_event_channel_op, __HYPERVISOR_grant_table_op } from './xen/public/xen';
import { EVTCHNOP_send } from './xen/public/event_channel';
import {
  injectTrap,
  deliverEvents,
  emulatePrivOp,
  bounce,
  guestKernel,
  trapName,
  hasErrorCode,
  guestPfErrorCode,
} from './xen/traps';
import { schedHooks, SHUTDOWN_NAMES } from './xen/sched';
import { setRunstate } from './xen/vcpu-op';
import {
  getReg,
  setReg,
  getRip,
  setRip,
  getSegBase,
  setSegBase,
  readDescriptor,
  decodeDescriptor,
} from './xen/regs';
import {
  ECS_FREE,
  ECS_UNBOUND,
  ECS_INTERDOMAIN,
  ECS_PIRQ,
  ECS_VIRQ,
  ECS_IPI,
  VIRQ_NAMES,
} from './xen/event-channel';
import { grantFlagNames } from './xen/grant-table';
import { errnoName } from './xen/errno';
import { GUEST_MFN_BASE } from './xen/layout';
import { hcState } from './xen/preempt';
import { Xenstored } from './dom0/xenstored';
import { ConsoleDaemon } from './dom0/console';
import { Blkback, vdevToDevid } from './dom0/blkback';
import { FilterSet, describeHypercall } from './debug/filters';
import { PAGE_SIZE } from './memory/machine-memory';

/** Instructions per slice between backend kicks and timer checks. */
const SLICE = 20_000;

/**
 * Work units `Machine.run(budget)` charges against its budget besides one
 * per instruction retired (docs/architecture.md "The run loop"): a unit is
 * about the host time of one simple guest instruction (~10 ns on the
 * reference 2-core machine).
 *
 * EXIT_COST: each exit to the hypervisor (hypercall, exception, privileged
 * instruction, HLT...), whose host cost (~2-6 us) is that of hundreds of
 * instructions. ENTRY_COST: each unit of batch work a hypercall reports
 * (engine/xen/preempt.ts: a multicall entry, an mmu_update request, a
 * memory_op extent, ...). IDLE_COST: one step of the idle loop (every vCPU
 * blocked: kick the backends, skip guest time to the next timer).
 */
export const EXIT_COST = 400;
export const ENTRY_COST = 200;
export const IDLE_COST = 400;
/**
 * Weight of the budget units Cpu.run spends without retiring instructions
 * (a REP string chunk of 4096 iterations counts 256 there but costs ~12x as
 * much host time as 256 instructions): charged when a slice runs out of
 * budget (slice - retired), and from Cpu.runStall when the slice ended in an exit.
 */
export const STALL_WEIGHT = 12;

/** Adapts engine/image's LoadedImage to the builder's input. */
export function toBuildImage(img: LoadedImage): BuildImage {
  return {
    bits: img.bits,
    entry: img.xen.entry,
    virtBase: img.xen.virtBase,
    virtKstart: img.xen.virtKstart,
    virtKend: img.xen.virtKend,
    hypercallPage: img.xen.hypercallPage,
    modStartPfn: img.xen.modStartPfn,
    segments: img.segments.map((s) => ({
      vaddr: s.vaddr,
      data: img.elf.bytes.subarray(s.fileOffset, s.fileOffset + s.filesz),
      memsz: s.memsz,
    })),
  };
}

/** Trace event sink: one line per event (docs/trace-format.md). */
export type TraceKind = 'hypercalls' | 'events' | 'grants' | 'faults';

export interface MachineOptions {
  /** Receives trace lines for the enabled kinds. */
  trace?: { kinds: Set<TraceKind>; sink: (line: string) => void };
  /** Receives console_io writes when DomainConfig.consoleIoWrites is set. */
  onConsoleIo?: (data: Uint8Array) => void;
}

/** Errors in the configuration (bad kernel path, too little memory): not guest behaviour. */
export class MachineConfigError extends Error {}

class PvMachine implements Machine {
  readonly info: MachineInfo;
  readonly console: ConsoleApi;
  readonly dom: Domain;
  readonly build: BuildResult;
  readonly xenstored: Xenstored;
  readonly consoled: ConsoleDaemon;
  readonly blkbacks: Blkback[] = [];
  readonly filters = new FilterSet();
  readonly env: HypercallEnv;
  private readonly image: LoadedImage;
  private xsConn: { kick(): void };
  private pauseRequested = false;
  private pendingStop: Stop | null = null;
  private crashReported = false;
  private destroyed = false;
  private rr = 0;
  private bpNext = 1;
  private readonly breakpoints = new Map<number, { lo: number; hi: number }>();
  /** Instruction breakpoints per address (64-bit va): how many ids share it, so removal is O(1). */
  private readonly bpPerAddress = new Map<bigint, number>();
  private readonly watches = new Map<number, number[]>();
  /** Physical data breakpoints: id -> watched byte ranges (buffer offsets) and kind (1 read, 2 write, 3 both). */
  private readonly physWatches = new Map<number, { ranges: { off: number; len: number }[]; kind: number }>();
  private readonly trace?: MachineOptions['trace'];
  /** Last fault stop (vcpu, rip, vector) so resuming does not stop again for the same fault. */
  private skipFault: { vcpu: number; rip: bigint; vector: number } | null = null;
  /** Set after an upcall stop so that resuming delivers it. */
  private skipUpcall = false;
  /** True while run() executes (pause() from a hook must stop the CPU mid-slice). */
  private running = false;
  /** Work units charged in the current slice beyond instructions retired (exits, batch entries). */
  private extraWork = 0;
  /** The last Cpu.run of runSlice returned BUDGET: it spent its whole budget (instructions, REP chunks, deliveries). */
  private sliceBudgetSpent = false;
  /** The 'blocked' stop of the current idle episode was reported (cleared when a vCPU runs again). */
  private blockedReported = false;

  constructor(config: DomainConfig, opts: MachineOptions = {}) {
    let bytes: Uint8Array;
    try {
      bytes =
        typeof config.kernel === 'string' ? new Uint8Array(fs.readFileSync(config.kernel)) : config.kernel;
    } catch (e) {
      throw new MachineConfigError(`kernel: cannot read ${String(config.kernel)}: ${(e as Error).message}`);
    }
    let ramdisk: Uint8Array | undefined;
    if (config.ramdisk !== undefined) {
      try {
        ramdisk =
          typeof config.ramdisk === 'string'
            ? new Uint8Array(fs.readFileSync(config.ramdisk))
            : config.ramdisk;
      } catch (e) {
        throw new MachineConfigError(
          `ramdisk: cannot read ${String(config.ramdisk)}: ${(e as Error).message}`,
        );
      }
    }
    try {
      this.image = loadKernelImage(bytes);
    } catch (e) {
      throw new MachineConfigError(`kernel: ${(e as Error).message}`);
    }
    const nrPages = Math.floor(config.memory * 256);
    try {
      this.build = buildDomain(toBuildImage(this.image), {
        nrPages,
        vcpus: config.vcpus,
        cmdline: config.cmdline ?? '',
        ramdisk,
        tscPerInstruction: config.tscPerInstruction ?? 1,
      });
    } catch (e) {
      throw new MachineConfigError((e as Error).message);
    }
    this.trace = opts.trace;
    const dom = (this.dom = this.build.dom);
    this.env = {
      count: 0,
      consoleIo: { allowWrites: !!config.consoleIoWrites, sink: (d) => opts.onConsoleIo?.(d) },
    };
    const mem = dom.mem;
    const b = this.build;

    // dom0 services.
    this.xenstored = new Xenstored();
    this.xenstored.introduceDomain(dom.domid, {
      name: config.name,
      memoryKiB: config.memory * 1024,
      vcpus: config.vcpus,
      storeMfn: GUEST_MFN_BASE + b.storePfn,
      storePort: b.storePort,
      consoleMfn: GUEST_MFN_BASE + b.consolePfn,
      consolePort: b.consolePort,
    });
    const storeOff = mem.mfnToOffset(GUEST_MFN_BASE + b.storePfn);
    const consOff = mem.mfnToOffset(GUEST_MFN_BASE + b.consolePfn);
    this.xsConn = this.xenstored.connect(dom.domid, { mem, offset: storeOff }, () => storeLink.notify());
    const storeLink = dom.evtchn.connectBackend(b.storePort, 'xenstored', () => this.xsConn.kick());
    this.consoled = new ConsoleDaemon({ mem, offset: consOff }, () => consLink.notify());
    const consLink = dom.evtchn.connectBackend(b.consolePort, 'console', () => this.consoled.kick());
    this.console = this.consoled;
    for (const disk of config.disks) {
      try {
        dom.gnttab.backendName = `blkback ${disk.vdev}`;
        this.blkbacks.push(
          new Blkback({
            xenstored: this.xenstored,
            frontDomid: dom.domid,
            devid: vdevToDevid(disk.vdev),
            vdev: disk.vdev,
            path: disk.target,
            readonly: disk.access !== 'w',
            mem,
            grants: dom.gnttab,
            evtchn: dom.evtchn,
          }),
        );
      } catch (e) {
        this.destroy();
        throw new MachineConfigError(`disk ${disk.vdev}: ${(e as Error).message}`);
      }
    }
    schedHooks.set(dom, { onYield: () => this.kickBackends() });

    // Observers: tracing and debugger filters.
    dom.observer = {
      reject: (errno, reason) => {
        this.traceLine('faults', dom.vcpus[0], `mmu-reject ${errnoName(errno)} ${reason}`);
        if (!this.pendingStop && this.filters.mmuReject(errno, reason)) {
          this.pendingStop = {
            kind: 'filter',
            filter: 'mmu-reject',
            vcpu: 0,
            description: `Xen refused: ${reason} (-${errnoName(errno)})`,
            details: { reason, errno: -errno, errnoName: errnoName(errno) },
          };
        }
      },
      crash: (reason) => {
        this.traceLine('faults', dom.vcpus[0], `crash ${reason}`);
        if (!this.pendingStop && this.filters.crash(reason)) {
          this.pendingStop = {
            kind: 'filter',
            filter: 'crash',
            vcpu: 0,
            description: `domain crash: ${reason}`,
            details: { reason },
          };
        }
      },
      trace: (line) => this.traceLine('hypercalls', dom.vcpus[0], line),
    };

    const img = this.image;
    this.info = {
      name: config.name,
      bits: img.bits,
      entry: b.entry,
      nrPages,
      vcpus: config.vcpus,
      get instructionsRetired(): number {
        return dom.vcpus.reduce((s, v) => s + v.cpu.state.instructionsRetired, 0);
      },
    };
  }

  get finished(): boolean {
    return this.dom.finished;
  }

  /** Symbols of the loaded image (for the debugger). */
  get symbols() {
    return this.image.symbols;
  }

  private traceLine(kind: TraceKind, v: Vcpu | undefined, text: string): void {
    if (!this.trace || !this.trace.kinds.has(kind)) return;
    if (!v) {
      this.trace.sink(text);
      return;
    }
    const rip = getRip(v.cpu);
    this.trace.sink(
      `[insn ${v.cpu.state.instructionsRetired}] vcpu${v.id} rip=0x${rip.toString(16)} ${text}`,
    );
  }

  kickBackends(): void {
    this.xsConn.kick();
    this.consoled.kick();
    for (const b of this.blkbacks) b.kick();
  }

  private shutdownStop(): Stop {
    const d = this.dom;
    const reason = (SHUTDOWN_NAMES[d.shutdownReason ?? 0] ?? 'poweroff') as ShutdownReason;
    const description = d.crashed !== null ? `domain crashed: ${d.crashed}` : `domain shut down: ${reason}`;
    return { kind: 'shutdown', reason, code: d.shutdownCode, description };
  }

  pause(): void {
    this.pauseRequested = true;
    // Only a run in progress (pause() called from a hook) needs the CPU to stop mid-slice.
    if (this.running) for (const v of this.dom.vcpus) v.cpu.requestStop();
  }

  step(vcpu: number): Stop {
    const v = this.dom.vcpus[vcpu];
    if (!v) throw new Error(`no vCPU ${vcpu}`);
    v.cpu.singleStep = true;
    try {
      const s = this.runSlice(v, 1, true);
      return s ?? { kind: 'step', vcpu };
    } finally {
      v.cpu.singleStep = false;
    }
  }

  run(budget: number): Stop {
    this.running = true;
    try {
      return this.runInner(budget);
    } catch (e) {
      // An engine bug: report it as a crash stop with the JS error text.
      const msg = `pvscope engine error: ${(e as Error)?.stack ?? String(e)}`;
      this.dom.crash(msg);
      return {
        kind: 'filter',
        filter: 'crash',
        vcpu: 0,
        description: msg.split('\n')[0],
        details: { reason: msg },
      };
    }
  }

  /**
   * The run loop. Spends `budget` work units (one per instruction retired,
   * EXIT_COST per exit, ENTRY_COST per unit of hypercall batch work,
   * IDLE_COST per idle step) and returns; every path through the loop
   * spends at least one unit, and no single step does more than one
   * hypercall quantum (engine/xen/preempt.ts), so the host time of a call is
   * bounded by the budget whatever the guest does.
   */
  private runInner(budget: number): Stop {
    const d = this.dom;
    // A pause() made between run() calls makes this run return at once.
    let remaining = Math.max(1, Math.floor(budget));
    while (remaining > 0) {
      if (this.pendingStop) {
        const s = this.pendingStop;
        this.pendingStop = null;
        return s;
      }
      if (d.finished) return this.shutdownStop();
      if (this.pauseRequested) {
        this.pauseRequested = false;
        return { kind: 'pause' };
      }
      const v = this.pickVcpu();
      if (!v) {
        // Every vCPU sleeps: let dom0 answer, then skip guest time to the earliest timer that can
        // wake a vCPU (deterministic idle). Each step is charged so that idling spends the budget.
        remaining -= IDLE_COST;
        this.kickBackends();
        if (this.pickVcpu()) continue;
        const wake = this.nextWakeNs();
        if (wake === Infinity) {
          // Nothing inside the machine can wake it: say so once, then idle until input arrives.
          if (this.blockedReported) return { kind: 'budget' };
          this.blockedReported = true;
          return this.blockedStop();
        }
        for (const x of d.vcpus) {
          if (!x.online) continue;
          const now = d.time.nowNs(x);
          if (wake > now) d.time.advance(x, wake - now);
          d.time.checkTimers(x);
        }
        continue;
      }
      this.blockedReported = false;
      const before = v.cpu.state.instructionsRetired;
      const deadline = d.time.nextDeadline(v);
      const now = d.time.nowNs(v);
      const untilTimer = deadline === Infinity ? SLICE : Math.max(1, Math.ceil(deadline - now));
      const slice = Math.max(1, Math.min(remaining, SLICE, untilTimer));
      this.extraWork = 0;
      this.sliceBudgetSpent = false;
      const s = this.runSlice(v, slice, false);
      const used = v.cpu.state.instructionsRetired - before;
      // A slice that ran out of budget spent all of it (Cpu.run also charges REP string chunks that
      // retire nothing and exception deliveries); one that ended in an exit spent what retired.
      remaining -=
        Math.max(
          1,
          this.sliceBudgetSpent ? used + (slice - used) * STALL_WEIGHT : used + v.cpu.runStall * STALL_WEIGHT,
        ) + this.extraWork;
      this.kickBackends();
      if (s) return s;
    }
    if (this.pendingStop) {
      const s = this.pendingStop;
      this.pendingStop = null;
      return s;
    }
    return { kind: 'budget' };
  }

  /**
   * Earliest guest time (ns) at which a timer wakes a sleeping vCPU: a
   * SCHEDOP_poll timeout, or a single-shot / periodic timer whose
   * VIRQ_TIMER port would wake its vCPU when raised (EventChannels.wouldWake).
   * Timers that fire into nothing (VIRQ_TIMER unbound, masked, already
   * pending) do not count. Infinity when no timer can wake anyone.
   */
  private nextWakeNs(): number {
    const d = this.dom;
    let best = Infinity;
    for (const x of d.vcpus) {
      if (!x.online) continue;
      if (x.pollPorts && x.pollTimeoutNs > 0) best = Math.min(best, x.pollTimeoutNs);
      const port = x.virqPorts[0];
      if (port <= 0 || !d.evtchn.wouldWake(port)) continue;
      if (x.singleshotNs > 0) best = Math.min(best, x.singleshotNs);
      if (x.periodicNs > 0) best = Math.min(best, x.nextPeriodicNs);
    }
    return best;
  }

  /**
   * The stop for a domain whose vCPUs all sleep with no timer that can wake
   * them: `vCPU 0 blocked forever: no bound VIRQ_TIMER, no pending events`,
   * or, when a port from the console daemon could still wake one (input
   * typed by the user), `vCPU 0 blocked: ...; only console input (port 2)
   * can wake it`.
   */
  private blockedStop(): Stop {
    const d = this.dom;
    const ev = d.evtchn;
    const sleepers = d.vcpus.filter((x) => x.online && x.blocked);
    const v = sleepers[0] ?? d.vcpus[0];
    const timer = (x: Vcpu): string => {
      const port = x.virqPorts[0];
      if (port <= 0) return 'no bound VIRQ_TIMER';
      if (x.singleshotNs <= 0 && x.periodicNs <= 0) return `no timer set (VIRQ_TIMER on port ${port})`;
      if (ev.isMasked(port)) return `VIRQ_TIMER port ${port} masked`;
      if (ev.isPending(port)) return `VIRQ_TIMER port ${port} already pending`;
      return `VIRQ_TIMER port ${port} cannot raise an upcall (selector bit set)`;
    };
    const how = (x: Vcpu): string => {
      if (!x.pollPorts) return '';
      const ports = x.pollPorts.length ? `ports ${x.pollPorts.join(', ')}` : 'no ports';
      return ` in SCHEDOP_poll (${ports}, no timeout)`;
    };
    const consolePort = this.build.consolePort;
    const consoleWakes =
      ev.valid(consolePort) && ev.ports[consolePort].onNotify !== null && ev.wouldWake(consolePort);
    const why = `${timer(v)}, no pending events`;
    const description = consoleWakes
      ? `vCPU ${v.id} blocked${how(v)}: ${why}; only console input (port ${consolePort}) can wake it`
      : `vCPU ${v.id} blocked forever${how(v)}: ${why}`;
    const details: Record<string, string | number | boolean> = {
      forever: !consoleWakes,
      rip: `0x${getRip(v.cpu).toString(16)}`,
    };
    for (const x of sleepers) details[`vcpu${x.id}`] = `${timer(x)}${how(x)}`;
    if (consoleWakes) details.consolePort = consolePort;
    return { kind: 'blocked', vcpu: v.id, forever: !consoleWakes, description, details };
  }

  private pickVcpu(): Vcpu | null {
    const vs = this.dom.vcpus;
    for (let i = 0; i < vs.length; i++) {
      const v = vs[(this.rr + i) % vs.length];
      if (v.online && !v.blocked) {
        this.rr = (v.id + 1) % vs.length;
        return v;
      }
    }
    return null;
  }

  /** Runs `v` for up to `n` instructions and handles its exit. Returns a stop or null to continue. */
  private runSlice(v: Vcpu, n: number, stepping: boolean): Stop | null {
    const d = this.dom;
    const cpu = v.cpu;
    this.syncGrantWatch();
    d.time.checkTimers(v);
    const pre = this.upcall(v);
    if (pre) return pre;
    if (v.blocked) return stepping ? { kind: 'step', vcpu: v.id } : null;
    setRunstate(v, 0);
    const reason = cpu.run(n);
    this.sliceBudgetSpent = reason === ExitReason.BUDGET;
    if (reason !== ExitReason.BUDGET) this.extraWork += EXIT_COST;
    const stop = this.handleExit(v, reason);
    if (d.bits === 32) syncCompatCr3(v);
    if (stop) return stop;
    if (this.pendingStop) {
      const s = this.pendingStop;
      this.pendingStop = null;
      return s;
    }
    if (d.finished) return this.shutdownStop();
    if (v.blocked) setRunstate(v, 2);
    const post = this.upcall(v);
    if (post) return post;
    if (stepping && reason !== ExitReason.STEP) return { kind: 'step', vcpu: v.id };
    return null;
  }

  /**
   * A guest access hit a physical data watch (it has completed). Maps the
   * buffer offset back to the pseudo-physical address (m2p) and the ids of
   * the physical data breakpoints it overlaps.
   */
  private physWatchHit(v: Vcpu): Stop | null {
    const cpu = v.cpu;
    const off = cpu.exitWatchOffset;
    const end = off + cpu.exitWatchSize;
    const bit = cpu.exitWatchWrite ? 2 : 1;
    const ids: number[] = [];
    for (const [id, w] of this.physWatches)
      if (w.kind & bit && w.ranges.some((r) => off < r.off + r.len && end > r.off)) ids.push(id);
    if (!ids.length) return null;
    const mem = this.dom.mem;
    const pfn = this.dom.m2p((off >>> 12) + mem.mfnBase);
    const address = (BigInt(pfn >>> 0) << 12n) | BigInt(off & 0xfff);
    return { kind: 'data-breakpoint', vcpu: v.id, address, write: cpu.exitWatchWrite, ids };
  }

  /** Pushes the physical data breakpoints' ranges to the memory's data watches. */
  private syncPhysWatches(): void {
    const list: { off: number; len: number; kind: number }[] = [];
    for (const w of this.physWatches.values()) for (const r of w.ranges) list.push({ ...r, kind: w.kind });
    this.dom.mem.setDataWatches(list);
  }

  private grantWatchOn = false;
  private grantWatchCount = 0;

  /**
   * Keeps the CPUs' store watch on the grant-table frames in step with the
   * `grant` filter, so a direct guest store into a grant entry stops like a
   * grant_table_op does (MachineMemory.storeWatchFrames).
   */
  private syncGrantWatch(): void {
    const on = this.filters.isEnabled('grant');
    const frames = this.dom.gnttab.frames;
    if (on === this.grantWatchOn && frames.length === this.grantWatchCount) return;
    const mem = this.dom.mem;
    for (const mfn of frames) {
      const off = mem.mfnToOffset(mfn);
      if (off >= 0) mem.storeWatchFrames[off >>> 12] = on ? 1 : 0;
    }
    this.grantWatchOn = on;
    this.grantWatchCount = frames.length;
    for (const v of this.dom.vcpus) v.cpu.flushTlb(true);
  }

  /**
   * A guest store is about to write a grant-table frame (the store has not
   * happened; RIP is at the instruction). Stops when the grant filter wants
   * this ref; either way the store goes through when the vCPU runs next.
   */
  private grantEntryWrite(v: Vcpu): Stop | null {
    const cpu = v.cpu;
    cpu.skipStoreWatchOnce = true;
    const frameIndex = cpu.exitWatchOffset >>> 12;
    const mem = this.dom.mem;
    const i = this.dom.gnttab.frames.findIndex((mfn) => mem.mfnToOffset(mfn) >>> 12 === frameIndex);
    if (i < 0) return null;
    const byte = cpu.exitWatchOffset & 0xfff;
    const ref = i * 512 + (byte >>> 3);
    if (!this.filters.grantEntryWrite(ref)) return null;
    const rip = getRip(cpu);
    const field = ['flags', 'flags', 'domid', 'domid', 'frame', 'frame', 'frame', 'frame'][byte & 7];
    return {
      kind: 'filter',
      filter: 'grant',
      vcpu: v.id,
      description: `grant entry write ref=${ref} (${field}) at rip=0x${rip.toString(16)}`,
      details: { op: 'write', ref, field, gnttabFrame: i, offset: byte, rip: `0x${rip.toString(16)}` },
    };
  }

  /** Lowest pending, unmasked port bound to `v` (for the upcall filter and statistics), or -1. */
  private firstPendingPort(v: Vcpu): number {
    const ev = this.dom.evtchn;
    for (let p = 1; p < ev.ports.length; p++) {
      if (ev.ports[p].vcpu === v.id && ev.isPending(p) && !ev.isMasked(p)) return p;
    }
    return -1;
  }

  /** Delivers a pending upcall to `v`, stopping first when the event filter asks (resuming delivers it). */
  private upcall(v: Vcpu): Stop | null {
    if (!v.eventCallback || !v.upcallPending || v.upcallMask || this.dom.finished) return null;
    const port = this.firstPendingPort(v);
    if (!this.skipUpcall && this.filters.isEnabled('event') && this.filters.event(port, 'upcall')) {
      this.skipUpcall = true;
      return {
        kind: 'filter',
        filter: 'event',
        vcpu: v.id,
        description: `event upcall port=${port}`,
        details: { port, kind: 'upcall' },
      };
    }
    this.skipUpcall = false;
    if (deliverEvents(v)) {
      if (port > 0) this.dom.evtchn.ports[port].upcalls++;
      this.traceLine('events', v, `event upcall port=${port}`);
    }
    return null;
  }

  private handleExit(v: Vcpu, reason: ExitReason): Stop | null {
    const d = this.dom;
    const cpu = v.cpu;
    switch (reason) {
      case ExitReason.BUDGET:
        return null;
      case ExitReason.STEP:
        return { kind: 'step', vcpu: v.id };
      case ExitReason.STOP_REQUESTED:
        this.pauseRequested = false;
        return { kind: 'pause' };
      case ExitReason.BREAKPOINT: {
        const rip = getRip(cpu);
        const ids: number[] = [];
        for (const [id, b] of this.breakpoints)
          if (b.lo === cpu.state.ripLo && b.hi === cpu.state.ripHi) ids.push(id);
        return { kind: 'breakpoint', vcpu: v.id, address: rip, ids };
      }
      case ExitReason.WATCH: {
        if (cpu.exitWatchPhysical) return this.grantEntryWrite(v);
        if (cpu.exitWatchData) return this.physWatchHit(v);
        const addr = (BigInt(cpu.exitWatchLinHi >>> 0) << 32n) | BigInt(cpu.exitWatchLinLo >>> 0);
        const ids: number[] = [...this.watches.keys()];
        return { kind: 'data-breakpoint', vcpu: v.id, address: addr, write: cpu.exitWatchWrite, ids };
      }
      case ExitReason.SHUTDOWN:
        d.crash('triple fault');
        return null;
      case ExitReason.HALT:
        v.upcallMask = 0;
        if (!v.upcallPending) v.blocked = true;
        return null;
      case ExitReason.SYSCALL:
        return this.onSyscall(v);
      case ExitReason.SYSENTER:
        return this.fault(v, Vector.UD, -1);
      case ExitReason.SOFT_INT:
        return this.onSoftInt(v);
      case ExitReason.PRIVILEGED: {
        const op = cpu.exitPrivOp;
        if (emulatePrivOp(v)) {
          cpu.state.instructionsRetired++;
          return null;
        }
        this.traceLine('faults', v, `privileged op ${op} not emulated -> #GP`);
        return this.fault(v, Vector.GP, 0);
      }
      case ExitReason.EXCEPTION: {
        const vec = cpu.exitVector;
        const err = cpu.exitErrorCode;
        const cr2 = (BigInt(cpu.exitCr2Hi >>> 0) << 32n) | BigInt(cpu.exitCr2Lo >>> 0);
        if (vec === Vector.PF && guestKernel(v) && d.mm.ptwrFault(v, cr2, err)) {
          cpu.state.instructionsRetired++;
          return null;
        }
        if (vec === Vector.UD && this.forcedCpuid(v)) return null;
        const guestErr = vec === Vector.PF ? guestPfErrorCode(v, err) : err;
        return this.fault(v, vec, hasErrorCode(vec) ? guestErr : -1, vec === Vector.PF ? cr2 : undefined);
      }
      default:
        return null;
    }
  }

  /** The CPUID forced-emulation prefix `ud2; .ascii "xen"; cpuid` (Xen pv/emul-inv-op.c). */
  private forcedCpuid(v: Vcpu): boolean {
    const bytes = v.rdBytes(getRip(v.cpu), 7);
    const sig = [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2];
    if (!bytes || !sig.every((b, i) => bytes[i] === b)) return false;
    const cpu = v.cpu;
    const r = cpu.cpuid.leaf(cpu.state.gprLo[Reg.RAX] >>> 0, cpu.state.gprLo[Reg.RCX] >>> 0);
    for (const [reg, val] of [
      [Reg.RAX, r.eax],
      [Reg.RBX, r.ebx],
      [Reg.RCX, r.ecx],
      [Reg.RDX, r.edx],
    ] as const) {
      cpu.state.gprLo[reg] = val | 0;
      cpu.state.gprHi[reg] = 0;
    }
    setRip(cpu, (getRip(cpu) + 7n) & (v.domain.bits === 64 ? (1n << 64n) - 1n : 0xffffffffn));
    cpu.state.instructionsRetired++;
    return true;
  }

  /** Bounces (or crashes on) an exception, with the trap/pagefault filters first. */
  private fault(v: Vcpu, vec: number, err: number, cr2?: bigint): Stop | null {
    const rip = getRip(v.cpu);
    const skip = this.skipFault;
    this.skipFault = null;
    const resumed = skip && skip.vcpu === v.id && skip.rip === rip && skip.vector === vec;
    if (!resumed) {
      const pf = vec === Vector.PF && cr2 !== undefined && this.filters.pageFault(cr2, err);
      if (pf || this.filters.trap(vec)) {
        this.skipFault = { vcpu: v.id, rip, vector: vec };
        const details: Record<string, string | number | boolean> = {
          vector: vec,
          name: trapName(vec),
          rip: `0x${rip.toString(16)}`,
        };
        if (err >= 0) details.errorCode = err;
        if (cr2 !== undefined) details.cr2 = `0x${cr2.toString(16)}`;
        return {
          kind: 'filter',
          filter: pf ? 'pagefault' : 'trap',
          vcpu: v.id,
          description:
            vec === Vector.PF
              ? `page fault cr2=0x${cr2?.toString(16)} err=0x${err.toString(16)}`
              : `${trapName(vec)} (#${vec})`,
          details,
        };
      }
    }
    const ok = injectTrap(v, vec, err, cr2);
    this.traceLine(
      'faults',
      v,
      `fault #${vec}${cr2 !== undefined ? ` cr2=0x${cr2.toString(16)}` : ''}${err >= 0 ? ` err=0x${err.toString(16)}` : ''} -> ${ok ? 'bounced' : 'crash'}`,
    );
    return null;
  }

  private onSoftInt(v: Vcpu): Stop | null {
    const cpu = v.cpu;
    const n = cpu.exitVector;
    const d = this.dom;
    if (n === 0x82 && d.bits === 32) {
      if (cpu.state.cpl === 1) return this.hypercall(v);
      // Xen's gate 0x82 has DPL 1: from ring 3 it is #GP(vector<<3 | 2).
      return this.fault(v, Vector.GP, (0x82 << 3) | 2);
    }
    const t = v.trapTable[n];
    const dpl = t.flags & 3;
    const allowed = guestKernel(v) ? dpl >= 1 : dpl >= 3;
    if (!allowed) return this.fault(v, Vector.GP, (n << 3) | 2);
    const missing = d.bits === 64 ? t.address === 0n : (t.cs & ~3) === 0;
    if (missing) return this.fault(v, Vector.GP, (n << 3) | 2);
    cpu.skipInstruction();
    cpu.state.instructionsRetired++;
    bounce(v, t, -1, (t.flags & 4) !== 0, `int $0x${n.toString(16)}`);
    return null;
  }

  private onSyscall(v: Vcpu): Stop | null {
    const d = this.dom;
    const cpu = v.cpu;
    if (d.bits === 64 && v.kernelMode) return this.hypercall(v);
    if (d.bits === 64) {
      const compat = (cpu.state.segAttr[Seg.CS] & (1 << 9)) === 0;
      const cb = compat ? v.syscall32Callback : v.syscallCallback;
      if (!cb || cb.address === 0n) return this.fault(v, Vector.UD, -1);
      const next = getRip(cpu) + BigInt(cpu.exitInsnLength);
      setReg(cpu, Reg.RCX, next);
      setReg(cpu, Reg.R11, BigInt(cpu.getRflags() >>> 0));
      setRip(cpu, next);
      cpu.setRflags(cpu.getRflags() & ~(1 << 10)); // DF cleared
      cpu.state.instructionsRetired++;
      bounce(v, cb, -1, cb.maskEvents, 'syscall');
      return null;
    }
    return this.fault(v, Vector.UD, -1);
  }

  /** Grant references a grant_table_op touches (map: each ref; copy: gref sides), for the grant filter. */
  private grantRefs(v: Vcpu, args: bigint[]): number[] {
    const cmd = Number(args[0] & 0xffffffffn);
    const count = Math.min(Number(args[2] & 0xffffffffn), 64);
    const refs: number[] = [];
    const bits = this.dom.bits;
    for (let i = 0; i < count; i++) {
      if (cmd === 0) {
        const r = v.rd(args[1] + BigInt(i * 32 + 12), 4);
        if (r !== null) refs.push(Number(r));
      } else if (cmd === 5) {
        const sz = bits === 64 ? 40 : 24;
        const b = v.rdStruct(args[1] + BigInt(i * sz), sz);
        if (!b) break;
        const flags = b.getUint16(bits === 64 ? 34 : 18, true);
        if (flags & 1) refs.push(b.getUint32(0, true));
        if (flags & 2) refs.push(b.getUint32(bits === 64 ? 16 : 8, true));
      }
    }
    return refs;
  }

  private hypercall(v: Vcpu): Stop | null {
    const cpu = v.cpu;
    const d = this.dom;
    const { nr, args } = readHypercallRegs(v);
    const resumed = v.skipFilterRipLo === cpu.state.ripLo && v.skipFilterRipHi === cpu.state.ripHi;
    v.skipFilterRipLo = -1;
    v.skipFilterRipHi = -1;
    if (!resumed) {
      let stop: Stop | null = null;
      if (this.filters.hypercall(nr, args)) {
        const desc = describeHypercall(nr, args, d.bits);
        stop = {
          kind: 'filter',
          filter: 'hypercall',
          vcpu: v.id,
          description: desc.description,
          details: desc.details,
        };
      } else if (
        nr === __HYPERVISOR_grant_table_op &&
        this.filters.grantOp(Number(args[0] & 0xffffffffn), this.grantRefs(v, args))
      ) {
        const desc = describeHypercall(nr, args, d.bits);
        stop = {
          kind: 'filter',
          filter: 'grant',
          vcpu: v.id,
          description: desc.description,
          details: desc.details,
        };
      } else if (nr === __HYPERVISOR_event_channel_op && args[0] === BigInt(EVTCHNOP_send)) {
        const port = v.rd(args[1], 4);
        if (port !== null && this.filters.event(Number(port), 'send')) {
          stop = {
            kind: 'filter',
            filter: 'event',
            vcpu: v.id,
            description: `event send port=${port}`,
            details: { port: Number(port), kind: 'send' },
          };
        }
      }
      if (stop) {
        v.skipFilterRipLo = cpu.state.ripLo;
        v.skipFilterRipHi = cpu.state.ripHi;
        return stop;
      }
    }
    const before =
      this.trace && this.trace.kinds.has('hypercalls') ? describeHypercall(nr, args, d.bits).description : '';
    const r = doHypercall(v, this.env, cpu.exitInsnLength);
    cpu.state.instructionsRetired++;
    this.extraWork += hcState.units * ENTRY_COST;
    if (hcState.preempted) {
      // The guest re-executes the call with its continuation: no second filter stop for it.
      v.skipFilterRipLo = cpu.state.ripLo;
      v.skipFilterRipHi = cpu.state.ripHi;
    }
    if (before) {
      const rv = typeof r === 'bigint' ? r : r;
      const rs = typeof rv === 'number' && rv < 0 ? `-${errnoName(-rv)}` : `${rv}`;
      this.traceLine(
        'hypercalls',
        v,
        `${before.startsWith('hypercall ') ? before : 'hypercall ' + before} = ${rs}`,
      );
    }
    if (nr === __HYPERVISOR_event_channel_op && args[0] === BigInt(EVTCHNOP_send)) {
      const port = v.rd(args[1], 4);
      this.traceLine('events', v, `event send port=${port}`);
    }
    if (nr === __HYPERVISOR_grant_table_op)
      this.traceLine('grants', v, `grant ${hypercallNameOf(nr)} cmd=${args[0]} count=${args[2]} = ${r}`);
    return null;
  }

  // --- Breakpoints and filters ---
  /** Instruction breakpoint at guest virtual `va` (several ids may share one address); O(1). */
  addBreakpoint(va: bigint): number {
    const id = this.bpNext++;
    const lo = Number(va & 0xffffffffn) | 0;
    const hi = Number((va >> 32n) & 0xffffffffn) | 0;
    this.breakpoints.set(id, { lo, hi });
    const key = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    const n = this.bpPerAddress.get(key) ?? 0;
    this.bpPerAddress.set(key, n + 1);
    if (n === 0) for (const v of this.dom.vcpus) v.cpu.setBreakpoint(lo, hi);
    return id;
  }
  /** Removes breakpoint `id` (unknown ids ignored); the CPUs drop the address with its last id. O(1). */
  removeBreakpoint(id: number): void {
    const b = this.breakpoints.get(id);
    if (!b) return;
    this.breakpoints.delete(id);
    const key = (BigInt(b.hi >>> 0) << 32n) | BigInt(b.lo >>> 0);
    const n = (this.bpPerAddress.get(key) ?? 1) - 1;
    if (n > 0) {
      this.bpPerAddress.set(key, n);
      return;
    }
    this.bpPerAddress.delete(key);
    for (const v of this.dom.vcpus) v.cpu.clearBreakpoint(b.lo, b.hi);
  }
  /**
   * Data breakpoint on `length` bytes (1..4096) at `address`: 'virtual' uses
   * the CPUs' linear watches; 'physical' (pseudo-physical) is translated
   * through the p2m now (page by page; throws Error when a page is not guest
   * RAM) and watches those machine bytes for guest accesses through any
   * mapping (MachineMemory.setDataWatches). Either stops after the access
   * with `{kind:'data-breakpoint', address}` (linear, resp. pseudo-physical).
   */
  addDataBreakpoint(
    space: 'virtual' | 'physical',
    address: bigint,
    length: number,
    access: 'read' | 'write' | 'readWrite',
  ): number {
    if (!(length > 0 && length <= 4096)) throw new Error(`bad data breakpoint length ${length}`);
    const kind = access === 'read' ? 1 : access === 'write' ? 2 : 3;
    if (space === 'physical') {
      // Pseudo-physical -> machine through the p2m, page by page (the range may span frames).
      if (address < 0n || address + BigInt(length) > 1n << 52n)
        throw new Error(`pseudo-physical address 0x${address.toString(16)} out of range`);
      const ranges: { off: number; len: number }[] = [];
      let a = address;
      let left = length;
      while (left > 0) {
        const mfn = this.pfnToMfn(Number(a >> 12n));
        const off = mfn < 0 ? -1 : this.dom.mem.mfnToOffset(mfn);
        if (off < 0) throw new Error(`pseudo-physical address 0x${a.toString(16)} is not guest RAM`);
        const k = Math.min(left, PAGE_SIZE - Number(a & 0xfffn));
        ranges.push({ off: off + Number(a & 0xfffn), len: k });
        left -= k;
        a += BigInt(k);
      }
      const id = this.bpNext++;
      this.physWatches.set(id, { ranges, kind });
      this.syncPhysWatches();
      return id;
    }
    const id = this.bpNext++;
    const ids = this.dom.vcpus.map((v) =>
      v.cpu.setWatch(Number(address & 0xffffffffn) | 0, Number(address >> 32n) | 0, length, kind),
    );
    this.watches.set(id, ids);
    return id;
  }
  removeDataBreakpoint(id: number): void {
    if (this.physWatches.delete(id)) {
      this.syncPhysWatches();
      return;
    }
    const ids = this.watches.get(id);
    if (!ids) return;
    this.watches.delete(id);
    this.dom.vcpus.forEach((v, i) => v.cpu.clearWatch(ids[i]));
  }
  setFilter(filter: FilterId, enabled: boolean, condition?: string): void {
    this.filters.set(filter, enabled, condition);
  }

  // --- Registers ---
  private vcpu(n: number): Vcpu {
    const v = this.dom.vcpus[n];
    if (!v) throw new Error(`no vCPU ${n}`);
    return v;
  }

  getRegisters(n: number): VcpuRegisters {
    const v = this.vcpu(n);
    const cpu = v.cpu;
    const r: VcpuRegisters = {};
    if (this.dom.bits === 64) {
      REG_NAMES64.forEach((name, i) => (r[name] = getReg(cpu, i)));
      r.rip = getRip(cpu);
      r.rflags = BigInt(cpu.getRflags() >>> 0);
    } else {
      ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'].forEach(
        (name, i) => (r[name] = BigInt(cpu.state.gprLo[i] >>> 0)),
      );
      r.eip = BigInt(cpu.state.ripLo >>> 0);
      r.eflags = BigInt(cpu.getRflags() >>> 0);
    }
    SEG_NAMES.slice(0, 6).forEach((name, i) => (r[name] = BigInt(cpu.state.segSel[i])));
    if (this.dom.bits === 64) {
      r['fs.base'] = getSegBase(cpu, Seg.FS);
      r['gs.base'] = getSegBase(cpu, Seg.GS);
      r['kernel_gs_base'] =
        (BigInt(cpu.state.kernelGsBaseHi >>> 0) << 32n) | BigInt(cpu.state.kernelGsBaseLo >>> 0);
    }
    r.cr0 = BigInt(cpu.state.cr0 >>> 0);
    r.cr2 = v.cr2;
    r.cr3 = (BigInt(cpu.state.cr3Hi >>> 0) << 32n) | BigInt(cpu.state.cr3Lo >>> 0);
    r.cr4 = BigInt(cpu.state.cr4 >>> 0);
    r.efer = BigInt(cpu.state.efer >>> 0);
    r['gdtr.base'] = (BigInt(cpu.state.gdtrBaseHi >>> 0) << 32n) | BigInt(cpu.state.gdtrBaseLo >>> 0);
    r['gdtr.limit'] = BigInt(cpu.state.gdtrLimit);
    r.cpl = BigInt(cpu.state.cpl);
    for (let i = 0; i < 8; i++) if (i !== 4 && i !== 5) r[`dr${i}`] = v.debugreg[i];
    return r;
  }

  setRegister(n: number, name: string, value: bigint): void {
    const v = this.vcpu(n);
    const cpu = v.cpu;
    const lname = name.toLowerCase();
    const i64 = REG_NAMES64.indexOf(lname);
    const i32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'].indexOf(lname);
    if (i64 >= 0 && this.dom.bits === 64) setReg(cpu, i64, BigInt.asUintN(64, value));
    else if (i32 >= 0) {
      cpu.state.gprLo[i32] = Number(value & 0xffffffffn) | 0;
      if (this.dom.bits === 32) cpu.state.gprHi[i32] = 0;
    } else if (lname === 'rip' || lname === 'eip') setRip(cpu, BigInt.asUintN(this.dom.bits, value));
    else if (lname === 'rflags' || lname === 'eflags') cpu.setRflags(Number(value & 0xffffffffn));
    else if (lname === 'fs.base') setSegBase(cpu, Seg.FS, value);
    else if (lname === 'gs.base') setSegBase(cpu, Seg.GS, value);
    else throw new Error(`register '${name}' cannot be written`);
    cpu.stateChanged();
  }

  // --- Memory ---
  private pfnToMfn(pfn: number): number {
    const fast = GUEST_MFN_BASE + pfn;
    if (this.dom.frameOwner(fast) === this.dom.domid && this.dom.m2p(fast) === pfn) return fast;
    for (let i = 0; i < this.dom.owner.length; i++) {
      const mfn = i + this.dom.mem.mfnBase;
      if (this.dom.owner[i] === this.dom.domid && this.dom.m2p(mfn) === pfn) return mfn;
    }
    return -1;
  }

  machineFrame(pfn: bigint): bigint | null {
    if (pfn < 0n || pfn >= 1n << 40n) return null;
    const mfn = this.pfnToMfn(Number(pfn));
    return mfn < 0 ? null : BigInt(mfn);
  }

  private offsetOf(space: 'virtual' | 'physical' | 'machine', addr: bigint, v: Vcpu, write: boolean): number {
    if (space === 'machine')
      return addr < 0n || addr >= 1n << 52n ? -1 : this.dom.mem.maddrToOffset(Number(addr));
    if (space === 'physical') {
      if (addr < 0n || addr >= 1n << 52n) return -1;
      const mfn = this.pfnToMfn(Number(addr >> 12n));
      return mfn < 0 ? -1 : this.dom.mem.mfnToOffset(mfn) + Number(addr & 0xfffn);
    }
    const a = BigInt.asUintN(64, addr);
    const off = v.cpu.translate(Number(a & 0xffffffffn) | 0, Number(a >> 32n) | 0, 0, false, false);
    void write;
    return off;
  }

  readMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    length: number,
    vcpu: number,
  ): Uint8Array {
    const v = this.vcpu(vcpu);
    const out: number[] = [];
    let a = address;
    const n = Math.max(0, Math.min(length, 1 << 24));
    while (out.length < n) {
      const off = this.offsetOf(space, a, v, false);
      if (off < 0) break;
      const inPage = PAGE_SIZE - Number(a & 0xfffn);
      const k = Math.min(inPage, n - out.length);
      for (let i = 0; i < k; i++) out.push(this.dom.mem.u8[off + i]);
      a += BigInt(k);
    }
    return Uint8Array.from(out);
  }

  writeMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    data: Uint8Array,
    vcpu: number,
  ): number {
    const v = this.vcpu(vcpu);
    let done = 0;
    let a = address;
    while (done < data.length) {
      const off = this.offsetOf(space, a, v, true);
      if (off < 0) break;
      const k = Math.min(PAGE_SIZE - Number(a & 0xfffn), data.length - done);
      this.dom.mem.writeBytes(off, data.subarray(done, done + k));
      done += k;
      a += BigInt(k);
    }
    return done;
  }

  // --- Inspection ---
  private describeDesc(index: number, raw: bigint, v: Vcpu, ldt: boolean): DescriptorEntry {
    const { base, limit, attr } = decodeDescriptor(raw);
    const s = (attr & 0x10) !== 0;
    const type = attr & 0xf;
    const present = (attr & 0x80) !== 0;
    let kind = 'null';
    if (raw !== 0n) {
      if (s) kind = type & 8 ? 'code' : 'data';
      else
        kind =
          (
            {
              2: 'ldt',
              9: 'tss',
              11: 'tss',
              12: 'call-gate',
              14: 'interrupt-gate',
              15: 'trap-gate',
              5: 'task-gate',
            } as Record<number, string>
          )[type] ?? 'system';
    }
    const selector = (index << 3) | (ldt ? 4 : 0);
    const loadedIn: string[] = [];
    for (let i = 0; i < 6; i++) if ((v.cpu.state.segSel[i] & ~3) === selector) loadedIn.push(SEG_NAMES[i]);
    const e: DescriptorEntry = {
      index,
      selector,
      raw,
      present,
      kind,
      base: BigInt(base),
      limit,
      type,
      dpl: (attr >> 5) & 3,
      s,
      l: (attr & 0x200) !== 0,
      db: (attr & 0x400) !== 0,
      g: (attr & 0x800) !== 0,
      xenReserved: index >= 0x1c00,
      loadedIn,
    };
    if (kind.endsWith('gate')) {
      e.gateSelector = Number((raw >> 16n) & 0xffffn);
      e.gateOffset = (raw & 0xffffn) | ((raw >> 32n) & 0xffff0000n);
    }
    return e;
  }

  gdt(n: number): DescriptorEntry[] {
    const v = this.vcpu(n);
    const out: DescriptorEntry[] = [];
    for (let i = 0; i < v.gdtEnts; i++) {
      const raw = readDescriptor(v, i << 3);
      if (raw !== null) out.push(this.describeDesc(i, raw, v, false));
    }
    for (let i = 0x1c00; i < 0x1c10; i++) {
      const raw = readDescriptor(v, i << 3);
      if (raw !== null) out.push(this.describeDesc(i, raw, v, false));
    }
    return out;
  }
  ldt(n: number): DescriptorEntry[] {
    const v = this.vcpu(n);
    const out: DescriptorEntry[] = [];
    for (let i = 0; i < Math.min(v.ldtEnts, 8192); i++) {
      const raw = readDescriptor(v, (i << 3) | 4);
      if (raw === null) break;
      out.push(this.describeDesc(i, raw, v, true));
    }
    return out;
  }
  idt(n: number): DescriptorEntry[] {
    // A PV guest has no IDT of its own: Xen's virtual IDT is the trap table.
    void n;
    return [];
  }
  trapTable(n: number): TrapTableEntry[] {
    const v = this.vcpu(n);
    const out: TrapTableEntry[] = [];
    v.trapTable.forEach((t, vector) => {
      if (t.address === 0n && (t.cs & ~3) === 0) return;
      const l = this.image.symbols.lookup(t.address);
      const sym = l ? (l.offset ? `${l.name}+0x${l.offset.toString(16)}` : l.name) : undefined;
      out.push({
        vector,
        flags: t.flags,
        dpl: t.flags & 3,
        maskEvents: (t.flags & 4) !== 0,
        cs: t.cs,
        address: t.address,
        symbol: sym,
      });
    });
    return out;
  }

  private flagNames(e: bigint, level: number): string[] {
    const f: string[] = [];
    const names: [bigint, string][] = [
      [1n, 'P'],
      [2n, 'RW'],
      [4n, 'US'],
      [8n, 'PWT'],
      [16n, 'PCD'],
      [32n, 'A'],
      [64n, 'D'],
    ];
    for (const [b, n] of names) if (e & b) f.push(n);
    if (e & 128n) f.push(level === 1 ? 'PAT' : 'PSE');
    if (e & 256n && level === 1) f.push('G');
    if (e >> 63n) f.push('NX');
    return f;
  }

  pageTable(n: number, root: 'kernel' | 'user' | bigint): PageTableNode | null {
    const v = this.vcpu(n);
    const d = this.dom;
    let mfn: number;
    if (root === 'kernel') mfn = v.kernelRootMfn;
    else if (root === 'user') mfn = v.userRootMfn;
    else mfn = Number(root);
    if (!mfn || d.mem.mfnToOffset(mfn) < 0) return null;
    const info = d.mm.pageInfo(mfn);
    const lvlFromType = { l1: 1, l2: 2, l3: 3, l4: 4 } as Record<string, number>;
    const level =
      lvlFromType[info.type] ?? (root === 'kernel' || root === 'user' ? (d.bits === 64 ? 4 : 3) : 1);
    const off = d.mem.mfnToOffset(mfn);
    const entries: PageTableEntryInfo[] = [];
    const nEnt = d.bits === 32 && level === 3 ? 4 : 512;
    for (let i = 0; i < nEnt; i++) {
      const raw = d.mem.read64Big(off + i * 8);
      if (!(raw & 1n)) continue;
      const tm = Number((raw >> 12n) & 0xffffffffffn);
      const ti = d.mm.pageInfo(tm);
      const pfn = d.m2p(tm);
      const shift = BigInt(12 + 9 * (level - 1));
      // An L4 is always a root: its upper half maps canonical addresses (bit 47 sign-extended).
      let start = BigInt(i) << shift;
      if (level === 4 && start >> 47n) start |= 0xffff000000000000n;
      entries.push({
        index: i,
        raw,
        present: true,
        flags: this.flagNames(raw, level),
        mfn: BigInt(tm),
        pfn: pfn < 0 ? null : BigInt(pfn),
        targetType: ti.type,
        pinned: ti.pinned,
        vaStart: start,
        vaEnd: start + (1n << shift),
      });
    }
    const pfn = d.m2p(mfn);
    return {
      level,
      mfn: BigInt(mfn),
      pfn: pfn < 0 ? null : BigInt(pfn),
      type: info.type,
      pinned: info.pinned,
      typeCount: info.typeCount,
      entries,
    };
  }

  walk(n: number, va: bigint): WalkResult {
    const v = this.vcpu(n);
    const d = this.dom;
    const steps: WalkStep[] = [];
    // 32-bit guests run under a Xen-owned per-vCPU L4 (compat mode): their own root is the L3.
    let table =
      d.bits === 32
        ? v.kernelRootMfn
        : Number(((BigInt(v.cpu.state.cr3Hi >>> 0) << 32n) | BigInt(v.cpu.state.cr3Lo >>> 0)) >> 12n);
    const levels = d.bits === 64 ? [4, 3, 2, 1] : [3, 2, 1];
    for (const level of levels) {
      const shift = BigInt(12 + 9 * (level - 1));
      const idx = d.bits === 32 && level === 3 ? Number((va >> 30n) & 3n) : Number((va >> shift) & 511n);
      const off = d.mem.mfnToOffset(table);
      if (off < 0)
        return {
          va,
          steps,
          maddr: null,
          pfn: null,
          paddr: null,
          fault: `table mfn 0x${table.toString(16)} does not exist`,
        };
      const e = d.mem.read64Big(off + idx * 8);
      steps.push({ level, tableMfn: BigInt(table), index: idx, entry: e, flags: this.flagNames(e, level) });
      if (!(e & 1n))
        return {
          va,
          steps,
          maddr: null,
          pfn: null,
          paddr: null,
          fault: `L${level} entry ${idx} not present`,
        };
      table = Number((e >> 12n) & 0xffffffffffn);
    }
    const maddr = (BigInt(table) << 12n) | (va & 0xfffn);
    const pfn = d.m2p(table);
    return {
      va,
      steps,
      maddr,
      pfn: pfn < 0 ? null : BigInt(pfn),
      paddr: pfn < 0 ? null : (BigInt(pfn) << 12n) | (va & 0xfffn),
    };
  }

  evtchns(): { ports: EvtchnInfo[]; vcpus: VcpuEventState[] } {
    const ev = this.dom.evtchn;
    const names = ['free', 'unbound', 'interdomain', 'pirq', 'virq', 'ipi'] as const;
    const ports: EvtchnInfo[] = [];
    for (let p = 1; p < ev.ports.length; p++) {
      const s = ev.ports[p];
      if (s.state === ECS_FREE) continue;
      const e: EvtchnInfo = {
        port: p,
        state: names[s.state] ?? 'free',
        vcpu: s.vcpu,
        pending: ev.isPending(p),
        masked: ev.isMasked(p),
        sends: s.sends,
        upcalls: s.upcalls,
      };
      if (s.state === ECS_UNBOUND || s.state === ECS_INTERDOMAIN) e.remoteDom = s.remoteDom;
      if (s.state === ECS_INTERDOMAIN) e.remotePort = s.remotePort;
      if (s.state === ECS_VIRQ) {
        e.virq = s.virq;
        e.virqName = VIRQ_NAMES[s.virq];
      }
      if (s.state === ECS_PIRQ) e.pirq = s.pirq;
      if (s.backend) e.backend = s.backend;
      void ECS_IPI;
      ports.push(e);
    }
    const vcpus: VcpuEventState[] = this.dom.vcpus.map((v) => {
      const o = v.vcpuInfoOff();
      const sel =
        o < 0
          ? 0n
          : this.dom.bits === 64
            ? this.dom.mem.read64Big(o + 8)
            : BigInt(this.dom.mem.read32(o + 4));
      return { vcpu: v.id, upcallPending: !!v.upcallPending, upcallMask: !!v.upcallMask, pendingSel: sel };
    });
    return { ports, vcpus };
  }

  grants(): GrantInfo[] {
    const g = this.dom.gnttab;
    const out: GrantInfo[] = [];
    for (let ref = 0; ref < g.nrEntries; ref++) {
      const e = g.entry(ref);
      if (!e || (e.flags === 0 && e.domid === 0 && e.frame === 0)) continue;
      out.push({
        ref,
        flags: e.flags,
        flagNames: grantFlagNames(e.flags),
        domid: e.domid,
        frame: BigInt(e.frame),
        mappedBy: g.mappedBy(ref),
      });
    }
    return out;
  }

  xenstore(path?: string): XenstoreNode | null {
    return this.xenstored.tree(path ?? '/');
  }
  xenstoreWatches(): XenstoreWatchInfo[] {
    return this.xenstored.watches();
  }

  domainInfo(): Record<string, string | number> {
    const d = this.dom;
    const b = this.build;
    const hex = (x: number | bigint) => `0x${x.toString(16)}`;
    const v0 = d.vcpus[0];
    return {
      domid: d.domid,
      name: this.info.name,
      bits: d.bits,
      magic: d.magic,
      nr_pages: d.nrPages,
      max_pages: d.maxPages,
      shared_info_mfn: hex(d.sharedInfoMfn),
      start_info_pfn: hex(b.startInfoPfn),
      store_mfn: hex(GUEST_MFN_BASE + b.storePfn),
      store_evtchn: b.storePort,
      console_mfn: hex(GUEST_MFN_BASE + b.consolePfn),
      console_evtchn: b.consolePort,
      pt_base_pfn: hex(b.ptBasePfn),
      nr_pt_frames: b.nrPtFrames,
      mfn_list_pfn: hex(b.p2mPfn),
      entry: hex(b.entry),
      vm_assist: hex(d.vmAssistBits()),
      grant_frames: d.gnttab.frames.length,
      hypercalls: this.env.count,
      event_callback: v0.eventCallback ? hex(v0.eventCallback.address) : 'none',
      failsafe_callback: v0.failsafeCallback ? hex(v0.failsafeCallback.address) : 'none',
      syscall_callback: v0.syscallCallback ? hex(v0.syscallCallback.address) : 'none',
      state:
        d.crashed !== null
          ? `crashed: ${d.crashed}`
          : d.shutdownReason !== null
            ? `shutdown: ${SHUTDOWN_NAMES[d.shutdownReason]}`
            : 'running',
      last_reject: d.lastReject ? `${errnoName(d.lastReject.errno)}: ${d.lastReject.reason}` : 'none',
    };
  }

  vcpuInfo(n: number): Record<string, string | number> {
    const v = this.vcpu(n);
    const hex = (x: number | bigint) => `0x${x.toString(16)}`;
    return {
      vcpu: v.id,
      online: v.online ? 1 : 0,
      blocked: v.blocked ? 1 : 0,
      kernel_mode: v.kernelMode ? 1 : 0,
      upcall_pending: v.upcallPending,
      upcall_mask: v.upcallMask,
      vcpu_info_mfn: hex(v.vcpuInfoMfn),
      vcpu_info_offset: v.vcpuInfoOffset,
      kernel_root_mfn: hex(v.kernelRootMfn),
      user_root_mfn: hex(v.userRootMfn),
      kernel_ss: hex(v.kernelSs),
      kernel_sp: hex(v.kernelSp),
      gdt_ents: v.gdtEnts,
      ldt_ents: v.ldtEnts,
      iopl: v.iopl,
      system_time_ns: v.nowNs(),
      singleshot_ns: v.singleshotNs,
      periodic_ns: v.periodicNs,
      runstate: ['running', 'runnable', 'blocked', 'offline'][v.runstate],
      cr2: hex(v.cr2),
      instructions: v.cpu.state.instructionsRetired,
    };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.blkbacks) {
      try {
        b.destroy();
      } catch {
        /* closing is best effort */
      }
    }
  }
}

/**
 * Builds a machine for `config`. Throws MachineConfigError (a user-facing
 * message naming the bad item) for an unreadable/invalid kernel, too little
 * memory or a disk that cannot be opened.
 */
export function createMachine(
  config: DomainConfig,
  opts: MachineOptions = {},
): Machine & {
  /** The Xen model's domain (cold-path inspection and tests). */
  readonly dom: Domain;
  /** Symbols of the loaded kernel image (engine/image SymbolTable). */
  readonly symbols: LoadedImage['symbols'];
  /** Lets xenstored, the console daemon and blkback process their rings now. */
  kickBackends(): void;
  /** Hypercall counters and console_io settings. */
  readonly env: HypercallEnv;
} {
  return new PvMachine(config, opts);
}
