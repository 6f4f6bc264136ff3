/**
 * A small stand-in for engine/machine.ts used ONLY by the debug adapter's
 * tests (loaded through PVSCOPE_TEST_MACHINE_MODULE): it implements the
 * Machine contract of engine/machine-api.ts over a 1 MiB flat memory and a
 * tiny interpreter for the handful of x86-64 instructions the test programs
 * use, with real FilterSet decisions and hypercall descriptions.
 *
 * Address spaces: virtual = pseudo-physical (identity, below 1 MiB);
 * machine address = pseudo-physical + 0x200000 (pfn + 0x200 = mfn).
 *
 * Supported instructions: mov r64,imm32 (48/49 C7 C0+r), xor r64,r64
 * (48 31 /r), inc r64 (48 FF C0+r), add r64,imm8 (48 83 C0+r),
 * mov [disp32],r32 (89 /r with SIB disp32) and mov r32,[disp32] (8B), push/pop
 * rbp, mov rbp,rsp, call rel32, ret, jmp rel8/rel32, nop, syscall (hypercall:
 * rax = number, args rdi, rsi, rdx, r10, r8, r9; mmu_update with count 3 is
 * "rejected" with -EINVAL and a reason; sched_op(SCHEDOP_shutdown) shuts the
 * domain down), hlt (shutdown). Anything else crashes the domain.
 */
import { readFileSync } from 'node:fs';
import type {
  ConsoleApi,
  DescriptorEntry,
  DomainConfig,
  EvtchnInfo,
  FilterId,
  GrantInfo,
  Machine,
  MachineInfo,
  PageTableNode,
  Stop,
  TrapTableEntry,
  VcpuEventState,
  VcpuRegisters,
  WalkResult,
  XenstoreNode,
  XenstoreWatchInfo,
} from '../../engine/machine-api';
import { FilterSet, describeHypercall } from '../../engine/debug/filters';
import { isElf, parseElf, PT_LOAD } from '../../engine/image/elf';

const MEM = 1 << 20;
const MFN_BASE = 0x200000n;
const GPR = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];

/** Default program at 0x1000 when the kernel file is not ELF (see the module comment). */
export const DEFAULT_PROGRAM: [number, number[]][] = [
  [
    0x1000,
    [
      0x48,
      0xc7,
      0xc0,
      0x01,
      0x00,
      0x00,
      0x00, // 1000 mov rax,1
      0x48,
      0xc7,
      0xc7,
      0x00,
      0x20,
      0x00,
      0x00, // 1007 mov rdi,0x2000
      0x48,
      0xc7,
      0xc6,
      0x03,
      0x00,
      0x00,
      0x00, // 100e mov rsi,3
      0x48,
      0x31,
      0xd2, //                         1015 xor rdx,rdx
      0x49,
      0xc7,
      0xc2,
      0xf0,
      0x7f,
      0x00,
      0x00, // 1018 mov r10,0x7ff0
      0x0f,
      0x05, //                               101f syscall (mmu_update)
      0xe8,
      0xda,
      0x00,
      0x00,
      0x00, //             1021 call 0x1100
      0x48,
      0xff,
      0xc3, //                         1026 inc rbx
      0x89,
      0x1c,
      0x25,
      0x00,
      0x30,
      0x00,
      0x00, // 1029 mov [0x3000],ebx
      0xeb,
      0xf4, //                               1030 jmp 0x1026
    ],
  ],
  [
    0x1100,
    [
      0x55, //                                     1100 push rbp
      0x48,
      0x89,
      0xe5, //                         1101 mov rbp,rsp
      0x48,
      0x83,
      0xc1,
      0x05, //                   1104 add rcx,5
      0x90, //                                     1108 nop
      0x5d, //                                     1109 pop rbp
      0xc3, //                                     110a ret
    ],
  ],
];

class FakeMachine implements Machine {
  readonly info: MachineInfo;
  readonly console: ConsoleApi;
  finished = false;
  private readonly mem = new Uint8Array(MEM);
  private readonly regs = new Map<string, bigint>();
  private readonly filters = new FilterSet();
  private readonly bps = new Map<number, bigint>();
  private readonly dbps = new Map<
    number,
    { space: 'virtual' | 'physical'; a: bigint; len: number; access: string }
  >();
  private nextId = 1;
  private pauseFlag = false;
  private skipRip: bigint | null = null;
  private outputCbs: ((d: Uint8Array) => void)[] = [];
  private greeted = false;
  private consoleIn = '';
  private destroyed = false;
  private crashed: string | null = null;

  constructor(private readonly config: DomainConfig) {
    let entry = 0x1000n;
    const k = config.kernel;
    const bytes = typeof k === 'string' ? new Uint8Array(readFileSync(k)) : k;
    if (isElf(bytes)) {
      const elf = parseElf(bytes);
      for (const ph of elf.programHeaders) {
        if (ph.type !== PT_LOAD) continue;
        const va = Number(ph.vaddr);
        if (va + Number(ph.memsz) > MEM)
          throw new Error(`fake machine: segment at 0x${va.toString(16)} beyond 1 MiB`);
        this.mem.set(bytes.subarray(Number(ph.offset), Number(ph.offset) + Number(ph.filesz)), va);
      }
      entry = elf.header.entry;
    } else {
      for (const [a, code] of DEFAULT_PROGRAM) this.mem.set(code, a);
    }
    for (const r of GPR) this.regs.set(r, 0n);
    this.regs.set('rsp', 0x8000n);
    this.regs.set('rip', entry);
    this.regs.set('rflags', 0x202n);
    this.regs.set('cs', 0xe033n);
    this.regs.set('cs.base', 0n);
    this.regs.set('cs.limit', 0xffffffffn);
    this.regs.set('cs.l', 1n);
    this.regs.set('ss', 0xe02bn);
    for (const s of ['ds', 'es', 'fs', 'gs']) this.regs.set(s, 0n);
    this.regs.set('cr0', 0x80050033n);
    this.regs.set('cr2', 0n);
    this.regs.set('cr3', MFN_BASE + 0x10000n);
    this.regs.set('cr4', 0x6f0n);
    this.regs.set('efer', 0xd01n);
    this.regs.set('fs.base', 0n);
    this.regs.set('gs.base', 0n);
    this.info = {
      name: config.name,
      bits: 64,
      entry,
      nrPages: MEM / 4096,
      vcpus: config.vcpus,
      instructionsRetired: 0,
    };
    this.console = {
      onOutput: (cb) => this.outputCbs.push(cb),
      input: (d) => {
        this.consoleIn += typeof d === 'string' ? d : Buffer.from(d).toString('latin1');
      },
    };
  }

  private emit(text: string): void {
    const b = new TextEncoder().encode(text);
    for (const cb of this.outputCbs) cb(b);
  }

  private r(n: string): bigint {
    return this.regs.get(n) ?? 0n;
  }
  private set(n: string, v: bigint): void {
    this.regs.set(n, BigInt.asUintN(64, v));
  }
  private rd(a: bigint, n: number): bigint {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.mem[Number(a) + i] ?? 0);
    return v;
  }
  private wr(a: bigint, n: number, v: bigint): void {
    for (let i = 0; i < n; i++) this.mem[Number(a) + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  }

  /** Executes one instruction; returns a stop when one must be reported (filters, data breakpoints, shutdown). */
  private exec(checkFilters: boolean): Stop | null {
    const rip = this.r('rip');
    if (rip >= BigInt(MEM - 16)) return this.crash(`fetch outside memory at 0x${rip.toString(16)}`);
    const p = Number(rip);
    const b = this.mem;
    const s32 = (o: number): bigint =>
      BigInt(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24) | 0);
    const s8 = (o: number): bigint => BigInt((b[o] << 24) >> 24);
    let len = 0;
    let next: bigint | null = null;
    let stop: Stop | null = null;
    const op0 = b[p];
    if ((op0 === 0x48 || op0 === 0x49) && b[p + 1] === 0xc7 && (b[p + 2] & 0xf8) === 0xc0) {
      this.set(GPR[(b[p + 2] & 7) + (op0 === 0x49 ? 8 : 0)], s32(p + 3));
      len = 7;
    } else if (op0 === 0x48 && b[p + 1] === 0x31 && (b[p + 2] & 0xc0) === 0xc0) {
      const d = GPR[b[p + 2] & 7];
      const s = GPR[(b[p + 2] >> 3) & 7];
      this.set(d, this.r(d) ^ this.r(s));
      len = 3;
    } else if (op0 === 0x48 && b[p + 1] === 0xff && (b[p + 2] & 0xf8) === 0xc0) {
      const d = GPR[b[p + 2] & 7];
      this.set(d, this.r(d) + 1n);
      len = 3;
    } else if (op0 === 0x48 && b[p + 1] === 0x83 && (b[p + 2] & 0xf8) === 0xc0) {
      const d = GPR[b[p + 2] & 7];
      this.set(d, this.r(d) + s8(p + 3));
      len = 4;
    } else if ((op0 === 0x89 || op0 === 0x8b) && (b[p + 1] & 0xc7) === 0x04 && b[p + 2] === 0x25) {
      const reg = GPR[(b[p + 1] >> 3) & 7];
      const addr = BigInt.asUintN(64, s32(p + 3));
      len = 7;
      if (addr + 4n > BigInt(MEM)) return this.crash(`page fault at 0x${addr.toString(16)}`);
      if (op0 === 0x89) this.wr(addr, 4, this.r(reg) & 0xffffffffn);
      else this.set(reg, this.rd(addr, 4));
      for (const [id, d] of this.dbps) {
        const write = op0 === 0x89;
        if (
          addr < d.a + BigInt(d.len) &&
          addr + 4n > d.a &&
          (d.access === 'readWrite' || (d.access === 'write') === write)
        ) {
          stop = { kind: 'data-breakpoint', vcpu: 0, address: addr, write, ids: [id] };
        }
      }
    } else if (op0 === 0x55) {
      this.set('rsp', this.r('rsp') - 8n);
      this.wr(this.r('rsp'), 8, this.r('rbp'));
      len = 1;
    } else if (op0 === 0x5d) {
      this.set('rbp', this.rd(this.r('rsp'), 8));
      this.set('rsp', this.r('rsp') + 8n);
      len = 1;
    } else if (op0 === 0x48 && b[p + 1] === 0x89 && b[p + 2] === 0xe5) {
      this.set('rbp', this.r('rsp'));
      len = 3;
    } else if (op0 === 0xe8) {
      len = 5;
      this.set('rsp', this.r('rsp') - 8n);
      this.wr(this.r('rsp'), 8, rip + 5n);
      next = rip + 5n + s32(p + 1);
    } else if (op0 === 0xc3) {
      next = this.rd(this.r('rsp'), 8);
      this.set('rsp', this.r('rsp') + 8n);
      len = 1;
    } else if (op0 === 0xeb) {
      len = 2;
      next = rip + 2n + s8(p + 1);
    } else if (op0 === 0xe9) {
      len = 5;
      next = rip + 5n + s32(p + 1);
    } else if (op0 === 0x90) {
      len = 1;
    } else if (op0 === 0xf4) {
      this.finished = true;
      return {
        kind: 'shutdown',
        reason: 'poweroff',
        code: 0,
        description: 'hlt: domain shut down (poweroff)',
      };
    } else if (op0 === 0x0f && b[p + 1] === 0x05) {
      const nr = Number(this.r('rax') & 0xffffffffn);
      const args = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'].map((n) => this.r(n));
      if (checkFilters && this.filters.hypercall(nr, args)) {
        const d = describeHypercall(nr, args, 64);
        return {
          kind: 'filter',
          filter: 'hypercall',
          vcpu: 0,
          description: d.description,
          details: d.details,
        };
      }
      len = 2;
      let result = 0n;
      if (nr === 1 && args[1] === 3n) {
        const reason = 'Bad L1 flags 0x800000';
        result = -22n;
        if (this.filters.mmuReject(-22, reason))
          stop = {
            kind: 'filter',
            filter: 'mmu-reject',
            vcpu: 0,
            description: `mmu_update rejected: ${reason} (-EINVAL)`,
            details: { reason, errno: -22 },
          };
      } else if (nr === 29 && args[0] === 2n) {
        this.finished = true;
        this.set('rip', rip + 2n);
        this.info.instructionsRetired++;
        return { kind: 'shutdown', reason: 'poweroff', code: 0, description: 'domain shut down (poweroff)' };
      } else if (nr === 18) {
        // console_io(CONSOLEIO_write, count, buf): output for tests.
        const n = Number(args[1] & 0xfffn);
        this.emit(Buffer.from(this.mem.subarray(Number(args[2]), Number(args[2]) + n)).toString('latin1'));
      } else if (!(nr in { 1: 1, 26: 1, 32: 1, 20: 1, 29: 1 })) result = -38n;
      this.set('rcx', rip + 2n);
      this.set('r11', this.r('rflags'));
      this.set('rax', result);
    } else {
      return this.crash(`unsupported instruction byte 0x${op0.toString(16)} at 0x${rip.toString(16)}`);
    }
    this.set('rip', next ?? rip + BigInt(len));
    this.info.instructionsRetired++;
    return stop;
  }

  /** Like engine/machine.ts: the domain is already finished (crashed) when the crash filter stops. */
  private crash(reason: string): Stop {
    this.finished = true;
    this.crashed = reason;
    if (this.filters.crash(reason))
      return {
        kind: 'filter',
        filter: 'crash',
        vcpu: 0,
        description: `domain crash: ${reason}`,
        details: { reason },
      };
    return { kind: 'shutdown', reason: 'crash', code: 0, description: `domain crashed: ${reason}` };
  }

  private finishedStop(): Stop {
    return this.crashed !== null
      ? { kind: 'shutdown', reason: 'crash', code: 0, description: `domain crashed: ${this.crashed}` }
      : { kind: 'shutdown', reason: 'poweroff', code: 0, description: 'already shut down' };
  }

  run(budget: number): Stop {
    if (this.destroyed) throw new Error('machine destroyed');
    if (!this.greeted) {
      this.greeted = true;
      this.emit('fake guest console\n');
    }
    if (this.finished) return this.finishedStop();
    for (let i = 0; i < budget; i++) {
      if (this.pauseFlag) {
        this.pauseFlag = false;
        return { kind: 'pause' };
      }
      const rip = this.r('rip');
      const skip = this.skipRip === rip;
      this.skipRip = null;
      if (!skip) {
        const ids = [...this.bps].filter(([, a]) => a === rip).map(([id]) => id);
        if (ids.length > 0) {
          this.skipRip = rip;
          return { kind: 'breakpoint', vcpu: 0, address: rip, ids };
        }
      }
      const s = this.exec(!skip);
      if (s) {
        if (s.kind === 'filter' && s.filter === 'hypercall') this.skipRip = rip;
        return s;
      }
    }
    return { kind: 'budget' };
  }

  pause(): void {
    this.pauseFlag = true;
  }

  step(vcpu: number): Stop {
    void vcpu;
    if (this.finished) return this.finishedStop();
    const rip = this.r('rip');
    const skip = this.skipRip === rip;
    this.skipRip = null;
    const s = this.exec(!skip);
    if (s) {
      if (s.kind === 'filter' && s.filter === 'hypercall') this.skipRip = rip;
      return s;
    }
    return { kind: 'step', vcpu: 0 };
  }

  addBreakpoint(va: bigint): number {
    const id = this.nextId++;
    this.bps.set(id, va);
    return id;
  }
  removeBreakpoint(id: number): void {
    this.bps.delete(id);
  }
  addDataBreakpoint(
    space: 'virtual' | 'physical',
    address: bigint,
    length: number,
    access: 'read' | 'write' | 'readWrite',
  ): number {
    if (length <= 0 || length > 4096) throw new Error('data breakpoint length must be 1..4096');
    const id = this.nextId++;
    this.dbps.set(id, { space, a: address, len: length, access });
    return id;
  }
  removeDataBreakpoint(id: number): void {
    this.dbps.delete(id);
  }
  setFilter(filter: FilterId, enabled: boolean, condition?: string): void {
    this.filters.set(filter, enabled, condition);
  }

  getRegisters(vcpu: number): VcpuRegisters {
    this.checkVcpu(vcpu);
    return Object.fromEntries(this.regs);
  }
  setRegister(vcpu: number, name: string, value: bigint): void {
    this.checkVcpu(vcpu);
    if (!this.regs.has(name)) throw new Error(`unknown register '${name}'`);
    this.set(name, value);
  }
  private checkVcpu(vcpu: number): void {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.info.vcpus) throw new Error(`no vCPU ${vcpu}`);
  }
  private toPhys(space: 'virtual' | 'physical' | 'machine', a: bigint): bigint {
    return space === 'machine' ? a - MFN_BASE : a;
  }
  readMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    length: number,
    vcpu: number,
  ): Uint8Array {
    this.checkVcpu(vcpu);
    const p = this.toPhys(space, address);
    if (p < 0n || p >= BigInt(MEM)) return new Uint8Array(0);
    const n = Math.min(length, MEM - Number(p));
    return this.mem.slice(Number(p), Number(p) + n);
  }
  writeMemory(
    space: 'virtual' | 'physical' | 'machine',
    address: bigint,
    data: Uint8Array,
    vcpu: number,
  ): number {
    this.checkVcpu(vcpu);
    const p = this.toPhys(space, address);
    if (p < 0n || p >= BigInt(MEM)) return 0;
    const n = Math.min(data.length, MEM - Number(p));
    this.mem.set(data.subarray(0, n), Number(p));
    return n;
  }

  machineFrame(pfn: bigint): bigint | null {
    return pfn >= 0n && pfn < BigInt(MEM >> 12) ? pfn + (MFN_BASE >> 12n) : null;
  }

  gdt(): DescriptorEntry[] {
    const e = (
      index: number,
      kind: string,
      l: boolean,
      dpl: number,
      loadedIn: string[],
    ): DescriptorEntry => ({
      index,
      selector: index * 8,
      raw: 0x00af9b000000ffffn,
      present: true,
      kind,
      base: 0n,
      limit: 0xfffff,
      type: kind === 'code' ? 0xb : 0x3,
      dpl,
      s: true,
      l,
      db: !l,
      g: true,
      xenReserved: index >= 0x1c00,
      loadedIn,
    });
    return [e(0x1c06, 'code', true, 3, ['cs']), e(0x1c05, 'data', false, 3, ['ss'])];
  }
  ldt(): DescriptorEntry[] {
    return [];
  }
  idt(): DescriptorEntry[] {
    return [];
  }
  trapTable(): TrapTableEntry[] {
    return [{ vector: 14, flags: 0, dpl: 0, maskEvents: false, cs: 0xe033, address: 0x1100n }];
  }
  pageTable(vcpu: number, root: 'kernel' | 'user' | bigint): PageTableNode | null {
    this.checkVcpu(vcpu);
    if (root === 'user') return null;
    const mfn = root === 'kernel' ? this.r('cr3') >> 12n : root;
    // Only the root frame is a page table (typed l4); any other frame is ordinary writable memory.
    if (mfn !== this.r('cr3') >> 12n)
      return {
        level: 1,
        mfn,
        pfn: mfn - (MFN_BASE >> 12n),
        type: 'writable',
        pinned: false,
        typeCount: 0,
        entries: [],
      };
    return {
      level: 4,
      mfn,
      pfn: mfn - (MFN_BASE >> 12n),
      type: 'l4',
      pinned: true,
      typeCount: 1,
      entries: [
        {
          index: 0,
          raw: 0x211067n,
          present: true,
          flags: ['P', 'RW', 'US', 'A'],
          mfn: 0x211n,
          pfn: 0x11n,
          targetType: 'l3',
          pinned: false,
          vaStart: 0n,
          vaEnd: 1n << 39n,
        },
      ],
    };
  }
  walk(vcpu: number, va: bigint): WalkResult {
    this.checkVcpu(vcpu);
    if (va >= BigInt(MEM))
      return {
        va,
        steps: [
          {
            level: 4,
            tableMfn: this.r('cr3') >> 12n,
            index: Number((va >> 39n) & 511n),
            entry: 0n,
            flags: [],
          },
        ],
        maddr: null,
        pfn: null,
        paddr: null,
        fault: 'L4 entry not present',
      };
    return {
      va,
      steps: [4, 3, 2, 1].map((level) => ({
        level,
        tableMfn: 0x210n + BigInt(level),
        index: Number((va >> BigInt(12 + 9 * (level - 1))) & 511n),
        entry: 0x211067n,
        flags: ['P', 'RW'],
      })),
      maddr: va + MFN_BASE,
      pfn: va >> 12n,
      paddr: va,
    };
  }
  evtchns(): { ports: EvtchnInfo[]; vcpus: VcpuEventState[] } {
    return {
      ports: [
        {
          port: 1,
          state: 'interdomain',
          vcpu: 0,
          remoteDom: 0,
          remotePort: 5,
          pending: false,
          masked: false,
          sends: 3,
          upcalls: 0,
          backend: 'console',
        },
        {
          port: 2,
          state: 'interdomain',
          vcpu: 0,
          remoteDom: 0,
          remotePort: 6,
          pending: true,
          masked: false,
          sends: 1,
          upcalls: 1,
          backend: 'xenstored',
        },
      ],
      vcpus: [{ vcpu: 0, upcallPending: false, upcallMask: true, pendingSel: 0n }],
    };
  }
  grants(): GrantInfo[] {
    return [
      {
        ref: 8,
        flags: 1,
        flagNames: ['permit_access'],
        domid: 0,
        frame: 0x1234n,
        mappedBy: ['blkback xvda'],
      },
    ];
  }
  xenstore(path?: string): XenstoreNode | null {
    // An engine bug on demand, for the adapter's top-level guard test.
    if (path === '/pvscope-test/engine-bug') throw new TypeError('fake engine bug');
    const root: XenstoreNode = {
      path: '/local/domain/1',
      value: '',
      perms: ['n1'],
      children: [{ path: '/local/domain/1/name', value: this.config.name, perms: ['n1'], children: [] }],
    };
    if (path === undefined || path === root.path) return root;
    return root.children.find((c) => c.path === path) ?? null;
  }
  xenstoreWatches(): XenstoreWatchInfo[] {
    return [{ domid: 0, path: '/local/domain/1/device', token: 'fe' }];
  }
  domainInfo(): Record<string, string | number> {
    return {
      domid: 1,
      name: this.config.name,
      nr_pages: MEM / 4096,
      shared_info: '0x210000',
      'console.evtchn': 1,
      'store.evtchn': 2,
      'start_info.flags': 0,
    };
  }
  vcpuInfo(vcpu: number): Record<string, string | number> {
    this.checkVcpu(vcpu);
    return {
      evtchn_upcall_pending: 0,
      evtchn_upcall_mask: 1,
      evtchn_pending_sel: '0x0',
      mode: 'kernel',
      'time.system_time': this.info.instructionsRetired,
      'runstate.state': 'running',
      consoleInput: this.consoleIn,
    };
  }
  destroy(): void {
    this.destroyed = true;
    this.finished = true;
  }
}

/** Machine factory with the engine's signature (engine/machine.ts `createMachine`). */
export function createMachine(config: DomainConfig): Machine {
  return new FakeMachine(config);
}
