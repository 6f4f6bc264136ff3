/**
 * The one facade the CLI, the debug adapter and the tests use to run a PV
 * guest (shared/design/ARCHITECTURE.md: engine/machine.ts). `engine/machine.ts`
 * exports `createMachine(config): Machine` implementing this contract.
 *
 * Addresses and 64-bit values cross this boundary as `bigint` (cold path:
 * the debugger and CLI, never per instruction). Sizes are bytes unless named
 * otherwise; memory in MiB where the name says so.
 *
 * The inspection results below are also the JSON bodies of the adapter's
 * custom requests (`pvscope/*`, see debug-adapter/): bigint values are
 * serialised as hex strings `"0x..."` by the adapter.
 */

/** One disk as given by an xl `disk=` spec or a launch attribute. */
export interface DiskSpec {
  /** Host path of the image file. */
  target: string;
  /** Guest device name, e.g. `xvda`. */
  vdev: string;
  /** `r` or `w`. */
  access: 'r' | 'w';
  format?: 'raw';
}

export interface VifSpec {
  mac?: string;
  bridge?: string;
}

export type ShutdownAction = 'destroy' | 'restart' | 'preserve';

/** Domain configuration (xl's `name`, `kernel`, ... keys; see engine/xen/config.ts). */
export interface DomainConfig {
  name: string;
  /** Path to an ELF or bzImage, or the image bytes. */
  kernel: string | Uint8Array;
  ramdisk?: string | Uint8Array;
  cmdline?: string;
  /** Guest RAM in MiB. */
  memory: number;
  vcpus: number;
  disks: DiskSpec[];
  vifs: VifSpec[];
  onPoweroff?: ShutdownAction;
  onReboot?: ShutdownAction;
  onCrash?: ShutdownAction;
  /** Let HYPERVISOR_console_io writes through (a release Xen returns -EPERM to a domU). Default false. */
  consoleIoWrites?: boolean;
  /** Guest TSC ticks per instruction retired (default 1 => "1 GHz" at 1 instruction per ns). */
  tscPerInstruction?: number;
}

export type ShutdownReason = 'poweroff' | 'reboot' | 'suspend' | 'crash' | 'watchdog' | 'soft_reset';

/** Why `Machine.run` returned. */
export type Stop =
  | { kind: 'budget' }
  | { kind: 'pause' }
  | { kind: 'step'; vcpu: number }
  | { kind: 'breakpoint'; vcpu: number; address: bigint; ids: number[] }
  | { kind: 'data-breakpoint'; vcpu: number; address: bigint; write: boolean; ids: number[] }
  /** An exception-filter stop (hypercall, grant, pagefault, trap, event, mmu-reject, crash). */
  | {
      kind: 'filter';
      filter: FilterId;
      vcpu: number;
      /** One line, e.g. `hypercall mmu_update(req=0xffff8000..., count=3, done=NULL, DOMID_SELF)`. */
      description: string;
      /** Decoded details (hypercall args, Xen's rejection reason, CR2, port, ...). */
      details: Record<string, string | number | boolean>;
    }
  | { kind: 'shutdown'; reason: ShutdownReason; code: number; description: string }
  /**
   * Every vCPU sleeps (HLT, SCHEDOP_block, SCHEDOP_poll) and no timer can wake
   * one: no single-shot or periodic timer raises an unmasked VIRQ_TIMER, no
   * poll timeout, no pending event. `forever`: nothing can ever wake the
   * domain (`vCPU 0 blocked forever: no bound VIRQ_TIMER, no pending events`);
   * otherwise only console input typed by the user can (`...; only console
   * input (port 2) can wake it`). Reported once per idle episode; later
   * run() calls return 'budget' at once until a vCPU wakes. Resumable.
   */
  | {
      kind: 'blocked';
      /** The first sleeping vCPU, the one the description names. */
      vcpu: number;
      forever: boolean;
      description: string;
      /** `forever`, `rip` of that vCPU, `vcpuN` = why vCPU N cannot wake, `consolePort` when console input can. */
      details: Record<string, string | number | boolean>;
    };

export type FilterId = 'hypercall' | 'grant' | 'pagefault' | 'trap' | 'event' | 'mmu-reject' | 'crash';

export interface VcpuRegisters {
  /** Register name (lower case: rax..r15 or eax..edi, rip/eip, rflags/eflags, cs.., cr0.., efer, gdtr.base, ...) to value. */
  [name: string]: bigint;
}

export interface DescriptorEntry {
  index: number;
  selector: number;
  raw: bigint;
  present: boolean;
  /** 'code', 'data', 'tss', 'ldt', 'call-gate', 'interrupt-gate', 'trap-gate', 'task-gate', 'null', 'system', 'xen-reserved' */
  kind: string;
  base: bigint;
  limit: number;
  type: number;
  dpl: number;
  s: boolean;
  l: boolean;
  db: boolean;
  g: boolean;
  /** Gates: target selector:offset and the symbol at the offset if known. */
  gateSelector?: number;
  gateOffset?: bigint;
  symbol?: string;
  /** True for Xen's reserved entries (0xE000 and up). */
  xenReserved: boolean;
  /** Segment registers now holding this selector (e.g. ['cs']). */
  loadedIn: string[];
}

export interface TrapTableEntry {
  vector: number;
  flags: number;
  dpl: number;
  maskEvents: boolean;
  cs: number;
  address: bigint;
  symbol?: string;
}

export interface PageTableEntryInfo {
  index: number;
  raw: bigint;
  present: boolean;
  flags: string[]; // e.g. ['P','RW','US','A','D','G','NX','PSE']
  mfn: bigint;
  /** Pseudo-physical frame from the M2P, or null when the frame is not the domain's. */
  pfn: bigint | null;
  /** Xen's page type of the target frame: 'none'|'l1'|'l2'|'l3'|'l4'|'seg_desc'|'writable' */
  targetType: string;
  pinned: boolean;
  /**
   * Virtual range this entry maps, [vaStart, vaEnd), relative to the VA the
   * table's entry 0 maps (a table may be reached by several paths); for a
   * root table (a 64-bit L4 or a 32-bit L3) it is absolute, canonical.
   */
  vaStart: bigint;
  vaEnd: bigint;
}

export interface PageTableNode {
  level: number; // 4..1 (PAE top is 3)
  mfn: bigint;
  pfn: bigint | null;
  type: string;
  pinned: boolean;
  typeCount: number;
  entries: PageTableEntryInfo[]; // present entries only unless requested
}

export interface WalkStep {
  level: number;
  tableMfn: bigint;
  index: number;
  entry: bigint;
  flags: string[];
}

export interface WalkResult {
  va: bigint;
  steps: WalkStep[];
  /** Null when the walk faulted. */
  maddr: bigint | null;
  pfn: bigint | null;
  paddr: bigint | null;
  fault?: string;
}

export interface EvtchnInfo {
  port: number;
  state: 'free' | 'unbound' | 'interdomain' | 'pirq' | 'virq' | 'ipi';
  vcpu: number;
  remoteDom?: number;
  remotePort?: number;
  virq?: number;
  virqName?: string;
  pirq?: number;
  pending: boolean;
  masked: boolean;
  sends: number;
  upcalls: number;
  /** Who is on the other end inside the engine, e.g. 'xenstored', 'console', 'blkback xvda'. */
  backend?: string;
}

export interface VcpuEventState {
  vcpu: number;
  upcallPending: boolean;
  upcallMask: boolean;
  pendingSel: bigint;
}

export interface GrantInfo {
  ref: number;
  flags: number;
  flagNames: string[];
  domid: number;
  frame: bigint;
  /** Who maps or copies it inside the engine, e.g. ['blkback xvda']. */
  mappedBy: string[];
}

export interface XenstoreNode {
  path: string;
  value: string;
  /** xenstored's permission string list, e.g. ['n0','r1']. */
  perms: string[];
  children: XenstoreNode[];
}

export interface XenstoreWatchInfo {
  domid: number;
  path: string;
  token: string;
}

export interface MachineInfo {
  name: string;
  bits: 32 | 64;
  entry: bigint;
  nrPages: number;
  vcpus: number;
  instructionsRetired: number;
}

export interface ConsoleApi {
  /** Called with guest console output bytes as the console daemon drains the ring. */
  onOutput(cb: (data: Uint8Array) => void): void;
  /** Queue keyboard input for the guest's console ring. */
  input(data: Uint8Array | string): void;
}

export interface Machine {
  readonly info: MachineInfo;
  readonly console: ConsoleApi;

  /** Run at most `budget` instructions in total across vCPUs; never blocks, never throws for guest behaviour. */
  run(budget: number): Stop;
  /** Makes the running `run` return `{kind:'pause'}` at the next instruction boundary. */
  pause(): void;
  /** Execute one instruction on `vcpu`, returning its stop (normally `step`). */
  step(vcpu: number): Stop;
  /** True once the domain has shut down or crashed. */
  readonly finished: boolean;

  // Breakpoints and filters.
  /** Instruction breakpoint at a guest virtual address; returns an id. */
  addBreakpoint(va: bigint): number;
  removeBreakpoint(id: number): void;
  /** Data breakpoint on a guest virtual ('virtual') or pseudo-physical ('physical') range. */
  addDataBreakpoint(
    space: 'virtual' | 'physical',
    address: bigint,
    length: number,
    access: 'read' | 'write' | 'readWrite',
  ): number;
  removeDataBreakpoint(id: number): void;
  /**
   * Enables a filter with an optional condition string (syntax per filter,
   * see the debug adapter's docs), or disables it with `enabled=false`.
   * Throws Error with a user-facing message on a bad condition.
   */
  setFilter(filter: FilterId, enabled: boolean, condition?: string): void;

  // State.
  getRegisters(vcpu: number): VcpuRegisters;
  setRegister(vcpu: number, name: string, value: bigint): void;
  /** Reads guest memory; returns the bytes readable from the start (may be shorter: stops at the first unmapped byte). */
  readMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    length: number,
    vcpu: number,
  ): Uint8Array;
  /** Writes; returns bytes written (stops at the first unmapped/read-only-to-debugger byte). */
  writeMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    data: Uint8Array,
    vcpu: number,
  ): number;
  /**
   * Machine frame number backing pseudo-physical frame `pfn` in Xen's own
   * view (the frame the domain owns whose M2P entry is `pfn`, as Xen's
   * get_gfn for a PV domain), or null when the domain owns no such frame.
   * Never consults the guest's own p2m list (the guest may have scribbled on it).
   */
  machineFrame(pfn: bigint): bigint | null;

  // Hypervisor state inspection (also served as DAP custom requests).
  gdt(vcpu: number): DescriptorEntry[];
  ldt(vcpu: number): DescriptorEntry[];
  idt(vcpu: number): DescriptorEntry[];
  trapTable(vcpu: number): TrapTableEntry[];
  /** Page-table node at `mfn` (or the root for vcpu: 'kernel' | 'user' L4 on 64-bit). */
  pageTable(vcpu: number, root: 'kernel' | 'user' | bigint): PageTableNode | null;
  walk(vcpu: number, va: bigint): WalkResult;
  evtchns(): { ports: EvtchnInfo[]; vcpus: VcpuEventState[] };
  grants(): GrantInfo[];
  xenstore(path?: string): XenstoreNode | null;
  xenstoreWatches(): XenstoreWatchInfo[];
  /** Decoded start_info, shared_info summary, vcpu_info, runstate, callbacks (name -> value). */
  domainInfo(): Record<string, string | number>;
  vcpuInfo(vcpu: number): Record<string, string | number>;

  /** Tear everything down (close disk files). Idempotent. */
  destroy(): void;
}
