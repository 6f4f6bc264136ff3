/**
 * The pvscope Debug Adapter Protocol session: translates DAP requests into
 * calls on one engine `Machine` (engine/machine-api.ts) and the machine's
 * stops into DAP events. Behaviour lives in the engine; this file only
 * translates, validates and schedules.
 *
 * Threads: one per vCPU, thread id = vCPU index + 1, named `vcpu<N>`.
 * The guest runs in slices (`Machine.run(budget)`, budget adapted to about
 * 15 ms of wall time) with setImmediate in between, so requests such as
 * `pause` are served while the guest runs.
 *
 * See docs/debug-adapter.md for launch attributes, filter conditions, the
 * evaluate syntax, console commands and the custom `pvscope/*` requests.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import {
  DebugSession,
  Event,
  OutputEvent,
  Response,
  StoppedEvent,
  TerminatedEvent,
  ExitedEvent,
  InitializedEvent,
  Thread,
} from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import type {
  DescriptorEntry,
  DomainConfig,
  FilterId,
  Machine,
  Stop,
  VcpuRegisters,
} from '../engine/machine-api';
import { compileExpr, ExprError, type CompiledExpr, type ExprContext } from '../engine/debug/expr';
import { describeHypercall, FILTER_IDS } from '../engine/debug/filters';
import { DebugInfo } from '../engine/debug/debug-info';
import { isElf } from '../engine/image/elf';
import { SymbolTable } from '../engine/image/symbols';
import { errnoName } from '../engine/debug/xen-names';
import { unwindStack } from '../engine/debug/unwind';
import { decode, hexBytes, type DecodedInstruction } from './disasm';
import {
  argAddress,
  argInt,
  CONTROL_BITS,
  formatMemRef,
  hexPad,
  jsonSafe,
  parseMemRef,
  REGISTER_ORDER,
  RequestError,
  RFLAGS_BITS,
  SUBREGS,
  wireSafe,
  type Space,
} from './format';
import { checkArguments, MAX_INSTRUCTION_COUNT } from './schema';
import { LaunchError, validateLaunchArgs, type LaunchPlan, type XlParser } from './launch';
import { runConsoleCommand, isConsoleCommand } from './commands';

/** Creates the engine for a validated configuration (engine/machine.ts `createMachine`, or a test double). */
export type MachineFactory = (
  config: DomainConfig,
  opts?: { onConsoleIo?: (data: Uint8Array) => void },
) => Machine;

/** How the session gets its engine and the xl parser. */
export interface SessionOptions {
  createMachine: () => MachineFactory;
  xlParser?: () => XlParser | undefined;
}

/** Exception breakpoint filters offered to the client (DAP `exceptionBreakpointFilters`). */
export const EXCEPTION_FILTERS: DebugProtocol.ExceptionBreakpointsFilter[] = [
  {
    filter: 'hypercall',
    label: 'Hypercalls',
    description: 'Stop before the guest enters Xen (syscall / int $0x82)',
    supportsCondition: true,
    conditionDescription:
      'Hypercall names or numbers, e.g. mmu_update,mmuext_op or EVTCHNOP_send; optionally && <expression over arg0..arg5>',
  },
  {
    filter: 'grant',
    label: 'Grant table operations',
    description: 'Stop at grant_table_op sub-operations and direct guest writes to grant entries',
    supportsCondition: true,
    conditionDescription:
      'Operation names (setup_table, map_grant_ref, copy, ..., write) and/or a reference range: ref 8-15',
  },
  {
    filter: 'pagefault',
    label: 'Page faults',
    description: 'Stop when the guest takes a page fault',
    supportsCondition: true,
    conditionDescription:
      'Address ranges (0xffff800000000000-0xffff8fffffffffff), error-code words (write, user, present, fetch, rsvd) or an expression over cr2 and err',
  },
  {
    filter: 'trap',
    label: 'Guest traps',
    description: 'Stop when Xen bounces an exception to the guest',
    supportsCondition: true,
    conditionDescription: 'Vectors as numbers or names: #GP,#PF,13',
  },
  {
    filter: 'event',
    label: 'Event channels',
    description: 'Stop at event channel sends and upcalls',
    supportsCondition: true,
    conditionDescription: 'Ports (1,2,5-9), optionally send or upcall',
  },
  {
    filter: 'mmu-reject',
    label: 'Rejected MMU operations',
    description: 'Stop when Xen refuses a page-table or descriptor update (with Xen\u2019s reason)',
    supportsCondition: true,
    conditionDescription: 'Errno names (EINVAL, EPERM) or text contained in Xen\u2019s reason',
  },
  {
    filter: 'crash',
    label: 'Domain crash',
    description: 'Stop before a crashed domain is torn down',
    default: true,
    supportsCondition: true,
    conditionDescription: 'Optional text contained in the crash reason',
  },
];

interface BpRecord {
  id: number;
  kind: 'source' | 'function' | 'instruction' | 'data';
  machineIds: number[];
  condition?: CompiledExpr;
  hit?: { op: string; n: number };
  logMessage?: string;
  hits: number;
  /** Address space of a data breakpoint (virtual when absent). */
  space?: Space;
}

type Goal =
  | { kind: 'continue' }
  /** Run until a temporary breakpoint at `addr` is hit on `vcpu` with the stack pointer at or above `minSp`. */
  | { kind: 'until'; vcpu: number; tempIds: number[]; minSp: bigint; strictSp: boolean; reason: 'step' };

type VarNode =
  | { t: 'registers'; vcpu: number; frame: number }
  | { t: 'children'; vcpu: number; items: DebugProtocol.Variable[] }
  | {
      t: 'flat';
      data: () => Record<string, string | number>;
      prefix: string;
      what: 'xen' | 'domain';
      vcpu: number;
    };

const FRAME_STRIDE = 10000;
/** Frames a stack trace may hold (the unwinder's limit). */
const MAX_FRAMES = 256;
/** Poll interval while the guest idles (run slices retire no instruction): no busy loop. */
const IDLE_POLL_MS = 5;
/** Host time one run slice aims at, and the most it may take before the budget shrinks (ms). */
const SLICE_TARGET_MS = 10;
const SLICE_MAX_MS = 25;
/**
 * Bounds of the run slice budget (engine work units). The largest bounds a
 * slice's host time and so the pause latency: the budget adapts on fast work
 * (~5 ns a unit), a guest may then switch to the slowest work per unit (REP
 * string loops, ~60 ns a unit unloaded, docs/architecture.md "The run loop"):
 * 500k units keep that slice near 30 ms, under the 100 ms of issue 8.
 */
const MIN_BUDGET = 1000;
export const MAX_BUDGET = 500_000;
/** Instructions before / after the reference that `disassemble` decodes exactly; beyond, `??` entries. */
const DISASM_REACH_BACK = 4096;
const DISASM_REACH_FORWARD = 65536;

/** One DAP session over one Machine. */
export class PvscopeSession extends DebugSession {
  private readonly opts: SessionOptions;
  private machine: Machine | null = null;
  private plan: LaunchPlan | null = null;
  private launchArgs: unknown = null;
  private symbols = new DebugInfo();
  private configured = false;
  private running = false;
  private pauseRequested = false;
  private goal: Goal = { kind: 'continue' };
  private budget = 200_000;
  private currentVcpu = 0;
  private lastException: {
    filter: FilterId;
    description: string;
    details: Record<string, string | number | boolean>;
  } | null = null;
  private lastHypercall: { vcpu: number; description: string; result: bigint } | null = null;
  private nextBpId = 1;
  private readonly bpByMachineId = new Map<number, BpRecord>();
  private readonly dataBpByMachineId = new Map<number, BpRecord>();
  private sourceBps = new Map<string, BpRecord[]>();
  private functionBps: BpRecord[] = [];
  private instructionBps: BpRecord[] = [];
  private dataBps: BpRecord[] = [];
  private savedRequests: {
    src: Map<string, DebugProtocol.SetBreakpointsArguments>;
    fn?: DebugProtocol.SetFunctionBreakpointsArguments;
    ins?: DebugProtocol.SetInstructionBreakpointsArguments;
    data?: DebugProtocol.SetDataBreakpointsArguments;
    exc?: DebugProtocol.SetExceptionBreakpointsArguments;
  } = { src: new Map() };
  private varHandles = new Map<number, VarNode>();
  private nextVarHandle = 1;
  private textDecoder = new TextDecoder('utf-8');
  private mipsSample: { t: number; n: number } | null = null;
  private mips = 0;
  private sliceTimer: NodeJS.Immediate | NodeJS.Timeout | null = null;
  /** Stopped at a crash-filter stop: the domain is finished but stays inspectable until resumed. */
  private crashStopped = false;
  private sliceIsTimeout = false;
  private trace = false;
  private lineStep: {
    vcpu: number;
    kind: 'next' | 'stepIn';
    file: string;
    line: number;
    sp: bigint;
    left: number;
  } | null = null;
  private finishedReported = false;

  constructor(opts: SessionOptions) {
    super();
    this.opts = opts;
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
    // The base class shuts the session down (stdio: exits the process) on any 'error' event,
    // including a frame that is not JSON. Only stream errors end it; a bad frame is logged.
    this.removeAllListeners('error');
    this.on('error', (ev: DebugProtocol.Event) => {
      const text = typeof ev?.body === 'string' ? ev.body : '';
      if (text.startsWith('Error handling data')) this.logMalformed(text);
      else this.shutdown();
    });
  }

  /** Logs a frame that was not a usable DAP message (category stderr) and carries on. */
  private logMalformed(what: string): void {
    try {
      this.sendEvent(
        new OutputEvent(`pvscope: ignored a malformed DAP message: ${truncate(what, 300)}\n`, 'stderr'),
      );
    } catch {
      /* the output channel is gone */
    }
  }

  /**
   * Every decoded frame comes here: messages that are not objects (`null`,
   * `5`, `[]`) or have no usable `type` are logged and ignored instead of
   * throwing out of the base class's reader (which would end the session).
   */
  override handleMessage(msg: DebugProtocol.ProtocolMessage): void {
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
      this.logMalformed(
        `not an object (${msg === null ? 'null' : Array.isArray(msg) ? 'an array' : typeof msg})`,
      );
      return;
    }
    if (msg.type !== 'request' && msg.type !== 'response') {
      if (msg.type !== 'event')
        this.logMalformed(`unknown message type ${truncate(safeStringify(msg.type), 60)}`);
      return;
    }
    super.handleMessage(msg);
  }

  // -------------------------------------------------------------------------
  // Dispatch: every request goes through one table (a Map: only its own
  // entries are commands, never names inherited from Object.prototype such
  // as `valueOf` or `constructor`), its arguments are checked against the
  // request's schema (schema.ts), and any exception becomes an error
  // response, so malformed requests never take the adapter down.

  protected override dispatchRequest(request: DebugProtocol.Request): void {
    const response: DebugProtocol.Response = new Response(request);
    try {
      // A command that is not a string (an object whose toString is null cannot even be printed).
      if (typeof request.command !== 'string') {
        response.command = '';
        this.fail(
          response,
          new RequestError(`request 'command' must be a string (got ${typeof request.command})`),
        );
        return;
      }
      const command = request.command;
      if (this.trace)
        this.sendEvent(
          new OutputEvent(
            `-> ${command} ${truncate(safeStringify(request.arguments ?? {}), 2000)}\n`,
            'console',
          ),
        );
      const handler = this.handlers.get(command);
      if (!handler) {
        this.fail(response, new RequestError(`unrecognized request '${truncate(command, 200)}'`));
        return;
      }
      checkArguments(command, request.arguments);
      const result = handler.call(this, (request.arguments ?? {}) as never, response);
      Promise.resolve(result).then(
        (body) => {
          if (body === NO_RESPONSE) return;
          if (body !== undefined) (response as DebugProtocol.Response).body = body;
          this.sendResponse(response);
        },
        (e) => this.fail(response, e),
      );
    } catch (e) {
      this.fail(response, e);
    }
  }

  /**
   * The one place an unexpected exception ends up: user-facing errors
   * (RequestError, LaunchError, ExprError, and plain Errors with a message
   * from the engine) keep their message; anything else (a TypeError, a
   * RangeError, a thrown non-Error: a bug) is answered with `internal error in
   * <command>: <name>: <message>` and logged with its stack to the Debug
   * Console (category stderr). The session keeps serving.
   */
  private fail(response: DebugProtocol.Response, e: unknown): void {
    let msg: string;
    if (isUserError(e)) msg = (e as Error).message;
    else {
      msg = `internal error in ${truncate(String(response.command), 200)}: ${errorText(e)}`;
      this.logInternal(msg, e);
    }
    response.success = false;
    response.message = msg;
    (response as DebugProtocol.ErrorResponse).body = {
      error: { id: 1, format: msg.replace(/[{}]/g, (c) => (c === '{' ? '(' : ')')), showUser: true },
    };
    this.sendResponse(response);
  }

  /** Logs an adapter or engine bug to the Debug Console (category stderr), with its stack. */
  private logInternal(msg: string, e: unknown): void {
    const stack = e instanceof Error && e.stack ? `\n${e.stack}` : '';
    try {
      this.sendEvent(new OutputEvent(`pvscope: ${msg}${stack}\n`, 'stderr'));
    } catch {
      /* the output channel is gone */
    }
  }

  /**
   * Runs deferred work (setImmediate callbacks: stops, steps, run slices)
   * under the same guard as requests: an exception is logged and shown as an
   * `exception` stop instead of escaping to the event loop.
   */
  private guarded(what: string, fn: () => void): () => void {
    return () => {
      try {
        fn();
      } catch (e) {
        this.running = false;
        const msg = `internal error in ${what}: ${errorText(e)}`;
        this.logInternal(msg, e);
        if (this.machine && !this.finishedReported) {
          this.lastException = { filter: 'crash', description: msg, details: { error: msg } };
          try {
            this.reportStop('exception', this.currentVcpu, { description: msg, text: 'internal error' });
          } catch {
            /* nothing more to do */
          }
        }
      }
    };
  }

  /** Responses and events always serialise: bigints become "0x..." strings, cycles and depth are cut. */
  override sendResponse(response: DebugProtocol.Response): void {
    if (response.body !== undefined) response.body = wireSafe(response.body);
    super.sendResponse(response);
  }

  override sendEvent(event: DebugProtocol.Event): void {
    if (event.body !== undefined) event.body = wireSafe(event.body);
    super.sendEvent(event);
  }

  private readonly handlers = new Map<string, (args: never, response: DebugProtocol.Response) => unknown>(
    Object.entries({
      initialize: this.initialize,
      launch: this.launch,
      attach: () => {
        throw new RequestError('pvscope cannot attach: use a launch configuration');
      },
      configurationDone: this.configurationDone,
      setBreakpoints: this.setBreakpoints,
      setFunctionBreakpoints: this.setFunctionBreakpoints,
      setInstructionBreakpoints: this.setInstructionBreakpoints,
      setExceptionBreakpoints: this.setExceptionBreakpoints,
      dataBreakpointInfo: this.dataBreakpointInfo,
      setDataBreakpoints: this.setDataBreakpoints,
      threads: this.threads,
      stackTrace: this.stackTrace,
      scopes: this.scopes,
      variables: this.variables,
      setVariable: this.setVariable,
      evaluate: this.evaluate,
      continue: this.continue,
      next: (args: DebugProtocol.NextArguments) => this.stepCommon('next', args),
      stepIn: (args: DebugProtocol.StepInArguments) => this.stepCommon('stepIn', args),
      stepOut: this.stepOut,
      pause: this.pause,
      readMemory: this.readMemory,
      writeMemory: this.writeMemory,
      disassemble: this.disassemble,
      exceptionInfo: this.exceptionInfo,
      source: () => {
        throw new RequestError('no source available');
      },
      loadedSources: () => ({ sources: [] }),
      terminate: this.terminate,
      restart: this.restart,
      disconnect: this.disconnect,
      'pvscope/descriptorTables': this.descriptorTables,
      'pvscope/pageTable': this.pageTable,
      'pvscope/walk': this.walk,
      'pvscope/eventChannels': () => jsonSafe(this.need().evtchns()),
      'pvscope/grants': () => ({ entries: jsonSafe(this.need().grants()) }),
      'pvscope/xenstore': this.xenstore,
      'pvscope/consoleInput': this.consoleInput,
      'pvscope/status': this.status,
    } as Record<string, (args: never, response: DebugProtocol.Response) => unknown>),
  );

  private need(): Machine {
    if (!this.machine) throw new RequestError('no guest is running (launch first)');
    return this.machine;
  }

  private vcpuArg(args: Record<string, unknown> | undefined, key = 'vcpu'): number {
    const m = this.need();
    return argInt(args, key, this.currentVcpu, 0, m.info.vcpus - 1);
  }

  private threadVcpu(threadId: unknown): number {
    const m = this.need();
    if (
      typeof threadId !== 'number' ||
      !Number.isInteger(threadId) ||
      threadId < 1 ||
      threadId > m.info.vcpus
    )
      throw new RequestError(`unknown threadId ${JSON.stringify(threadId)}`);
    return threadId - 1;
  }

  // -------------------------------------------------------------------------
  // Lifecycle

  private initialize(): DebugProtocol.Capabilities {
    return {
      supportsConfigurationDoneRequest: true,
      supportsConditionalBreakpoints: true,
      supportsHitConditionalBreakpoints: true,
      supportsLogPoints: true,
      supportsFunctionBreakpoints: true,
      supportsInstructionBreakpoints: true,
      supportsDataBreakpoints: true,
      supportsDataBreakpointBytes: true,
      supportsReadMemoryRequest: true,
      supportsWriteMemoryRequest: true,
      supportsDisassembleRequest: true,
      supportsSteppingGranularity: true,
      supportsSetVariable: true,
      supportsEvaluateForHovers: true,
      supportsExceptionInfoRequest: true,
      supportsExceptionFilterOptions: true,
      supportsExceptionOptions: false,
      supportsTerminateRequest: true,
      supportsRestartRequest: true,
      supportsStepBack: false,
      supportsLoadedSourcesRequest: false,
      exceptionBreakpointFilters: EXCEPTION_FILTERS,
    };
  }

  private launch(args: Record<string, unknown>): undefined {
    if (this.machine) throw new RequestError('already launched');
    this.startMachine(args);
    this.sendEvent(new InitializedEvent());
    return undefined;
  }

  /** Validates `args`, creates the machine, loads symbols and re-applies stored breakpoints. Throws LaunchError. */
  private startMachine(args: unknown): void {
    const plan = validateLaunchArgs(args, this.opts.xlParser?.());
    const symbols = new DebugInfo();
    const loadSyms = (path: string, offset: bigint, key: string): void => {
      try {
        for (const w of symbols.addFile(readFileSync(path), offset, path)) warnings.push(w);
      } catch (e) {
        throw new LaunchError(key, `cannot read symbols from ${path}: ${(e as Error).message}`);
      }
    };
    const warnings: string[] = [...plan.warnings];
    let kernelSymbols = false;
    if (typeof plan.config.kernel === 'string') {
      try {
        const bytes = readFileSync(plan.config.kernel);
        if (isElf(bytes)) {
          for (const w of symbols.addFile(bytes, 0n, plan.config.kernel)) warnings.push(w);
          kernelSymbols = true;
        }
      } catch (e) {
        warnings.push(`${plan.config.kernel}: symbols not usable: ${(e as Error).message}`);
      }
    }
    plan.symbols.forEach((s, i) => loadSyms(s.path, s.offset, `symbols[${i}]`));
    let machine: Machine;
    try {
      // HYPERCALL_console_io writes (with consoleIoWrites, e.g. earlyprintk=xen) join the console output.
      const ioDecoder = new TextDecoder('utf-8');
      let created: Machine | null = null;
      machine = this.opts.createMachine()(plan.config, {
        onConsoleIo: (data) => {
          if (created === null || this.machine !== created) return;
          const text = ioDecoder.decode(data, { stream: true });
          if (text.length > 0) this.sendEvent(new OutputEvent(text, 'stdout'));
        },
      });
      created = machine;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      const attr =
        /^(memory|vcpus|cmdline):/.exec(msg)?.[1] ??
        (/ramdisk|initrd/i.test(msg) ? 'ramdisk' : /disk/i.test(msg) ? 'disks' : 'kernel');
      throw new LaunchError(attr, `the guest could not be built: ${msg}`);
    }
    // A kernel that is not a plain ELF (bzImage): use the symbols the engine found in the image.
    const imageSymbols = (machine as Machine & { symbols?: unknown }).symbols;
    if (!kernelSymbols && imageSymbols instanceof SymbolTable && imageSymbols.size > 0)
      symbols.addSymbols(imageSymbols);
    for (const w of warnings) this.sendEvent(new OutputEvent(`pvscope: ${w}\n`, 'console'));
    this.machine = machine;
    this.plan = plan;
    this.launchArgs = args;
    this.symbols = symbols;
    this.trace = plan.trace;
    this.currentVcpu = 0;
    this.finishedReported = false;
    this.crashStopped = false;
    this.textDecoder = new TextDecoder('utf-8');
    machine.console.onOutput((data) => {
      if (this.machine !== machine) return;
      const text = this.textDecoder.decode(data, { stream: true });
      if (text.length > 0) this.sendEvent(new OutputEvent(text, 'stdout'));
    });
    if (plan.consoleInput !== undefined) machine.console.input(plan.consoleInput);
    // Crash is on by default until the client configures the filters.
    try {
      machine.setFilter('crash', true);
    } catch {
      /* engine without filters */
    }
    this.reapplyBreakpoints();
  }

  private reapplyBreakpoints(): void {
    if (this.savedRequests.exc) this.applyExceptionFilters(this.savedRequests.exc);
    for (const a of this.savedRequests.src.values()) this.applySourceBreakpoints(a);
    if (this.savedRequests.fn) this.applyFunctionBreakpoints(this.savedRequests.fn);
    if (this.savedRequests.ins) this.applyInstructionBreakpoints(this.savedRequests.ins);
    if (this.savedRequests.data) this.applyDataBreakpoints(this.savedRequests.data);
  }

  private configurationDone(): undefined {
    this.configured = true;
    const m = this.need();
    if (this.plan?.stopOnEntry !== false) {
      setImmediate(this.guarded('entry stop', () => this.reportStop('entry', 0, {})));
    } else {
      setImmediate(this.guarded('run', () => this.startRun({ kind: 'continue' })));
    }
    void m;
    return undefined;
  }

  private teardown(): void {
    this.running = false;
    this.clearSliceTimer();
    const m = this.machine;
    this.machine = null;
    this.bpByMachineId.clear();
    this.dataBpByMachineId.clear();
    if (m) {
      try {
        m.destroy();
      } catch {
        /* already gone */
      }
    }
  }

  private clearSliceTimer(): void {
    const t = this.sliceTimer;
    this.sliceTimer = null;
    if (t === null) return;
    if (this.sliceIsTimeout) clearTimeout(t as NodeJS.Timeout);
    else clearImmediate(t as NodeJS.Immediate);
  }

  private terminate(): undefined {
    this.teardown();
    setImmediate(this.guarded('terminate', () => this.sendEvent(new TerminatedEvent())));
    return undefined;
  }

  private restart(args: DebugProtocol.RestartArguments): undefined {
    const launchArgs = args?.arguments ?? this.launchArgs;
    if (!launchArgs) throw new RequestError('nothing to restart (launch first)');
    this.teardown();
    this.lastException = null;
    this.lastHypercall = null;
    this.startMachine(launchArgs);
    if (this.plan?.stopOnEntry !== false)
      setImmediate(this.guarded('entry stop', () => this.reportStop('entry', 0, {})));
    else setImmediate(this.guarded('run', () => this.startRun({ kind: 'continue' })));
    return undefined;
  }

  private disconnect(_args: unknown, response: DebugProtocol.Response): typeof NO_RESPONSE {
    this.teardown();
    this.sendResponse(response);
    this.shutdown();
    return NO_RESPONSE;
  }

  // -------------------------------------------------------------------------
  // Running and stopping

  private startRun(goal: Goal): void {
    const m = this.machine;
    if (!m || m.finished) {
      if (m) this.finishFrom(m);
      return;
    }
    this.goal = goal;
    this.running = true;
    this.pauseRequested = false;
    this.varHandles.clear();
    this.mipsSample = { t: performance.now(), n: m.info.instructionsRetired };
    // Step off a breakpoint at the current instruction first, whatever the machine does on resume.
    if (this.hasBreakpointAt(this.currentVcpu)) {
      const s = this.safeStep(m, this.currentVcpu);
      if (s.kind !== 'step' && this.handleStop(s)) return;
    }
    this.scheduleSlice();
  }

  /** Schedules the next run slice: at once, or after `delayMs` when the guest is idle (no busy loop). */
  private scheduleSlice(delayMs = 0): void {
    const run = this.guarded('run', () => {
      this.sliceTimer = null;
      this.slice();
    });
    this.clearSliceTimer();
    this.sliceIsTimeout = delayMs > 0;
    this.sliceTimer = delayMs > 0 ? setTimeout(run, delayMs) : setImmediate(run);
  }

  private slice(): void {
    const m = this.machine;
    if (!m || !this.running) return;
    if (this.pauseRequested) {
      this.reportStop('pause', this.currentVcpu, {});
      return;
    }
    const t0 = performance.now();
    const n0 = m.info.instructionsRetired;
    let stop: Stop;
    try {
      stop = m.run(this.budget);
    } catch (e) {
      this.engineError(e);
      return;
    }
    const dt = performance.now() - t0;
    const done = m.info.instructionsRetired - n0;
    // Aim at SLICE_TARGET_MS per slice so pause and other requests are served promptly (pause
    // within 100 ms). A slice that took too long shrinks the budget whatever it retired (hypercall
    // batches and idle steps cost host time without retiring instructions); only slices that really
    // executed their budget say how fast the guest runs (an idle guest returns early).
    if (dt > SLICE_MAX_MS) {
      this.budget = Math.max(MIN_BUDGET, Math.floor((this.budget * SLICE_TARGET_MS) / dt));
    } else if (stop.kind === 'budget' && done >= this.budget / 2 && dt > 0.2) {
      this.budget = Math.max(
        MIN_BUDGET,
        Math.min(MAX_BUDGET, Math.round((done * SLICE_TARGET_MS) / dt), this.budget * 4),
      );
    }
    this.sampleMips();
    if (stop.kind === 'budget') {
      if (m.finished) this.finishFrom(m);
      else this.scheduleSlice(done === 0 ? IDLE_POLL_MS : 0);
      return;
    }
    if (!this.handleStop(stop)) this.scheduleSlice();
  }

  private sampleMips(): void {
    const m = this.machine;
    if (!m || !this.mipsSample) return;
    const now = performance.now();
    const dt = now - this.mipsSample.t;
    if (dt >= 250) {
      this.mips = (m.info.instructionsRetired - this.mipsSample.n) / dt / 1000;
      this.mipsSample = { t: now, n: m.info.instructionsRetired };
    }
  }

  private engineError(e: unknown): void {
    const msg = e instanceof Error ? e.message : String(e);
    this.sendEvent(new OutputEvent(`pvscope engine error: ${msg}\n`, 'stderr'));
    this.lastException = { filter: 'crash', description: `engine error: ${msg}`, details: { error: msg } };
    this.reportStop('exception', this.currentVcpu, {
      description: `engine error: ${msg}`,
      text: 'engine error',
    });
  }

  private safeStep(m: Machine, vcpu: number): Stop {
    try {
      return m.step(vcpu);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return {
        kind: 'filter',
        filter: 'crash',
        vcpu,
        description: `engine error: ${msg}`,
        details: { error: msg },
      };
    }
  }

  private hasBreakpointAt(vcpu: number): boolean {
    if (this.bpByMachineId.size === 0 && !(this.goal.kind === 'until')) return false;
    const m = this.machine;
    if (!m) return false;
    const pc = this.pc(vcpu);
    for (const rec of new Set(this.bpByMachineId.values()))
      if (rec.kind !== 'data' && this.bpAddresses.get(rec)?.includes(pc)) return true;
    return false;
  }

  private readonly bpAddresses = new Map<BpRecord, bigint[]>();

  /**
   * Handles a non-budget stop from run/step. Returns true when the session is
   * now stopped (event sent), false when the run should continue.
   */
  private handleStop(stop: Stop): boolean {
    const m = this.machine;
    if (!m) return true;
    switch (stop.kind) {
      case 'budget':
        return false;
      case 'pause':
        this.reportStop('pause', this.currentVcpu, {});
        return true;
      case 'step':
        this.reportStop('step', stop.vcpu, {});
        return true;
      case 'shutdown':
        this.reportShutdown(stop);
        return true;
      case 'filter': {
        let description = stop.description;
        if (stop.filter === 'crash') {
          // Like the CLI: the reason and the guest PC. The domain is finished but stays inspectable
          // until the user continues (then the session ends with exit code 1).
          description += ` (guest PC ${formatMemRef('virtual', this.safePc(stop.vcpu))})`;
          this.crashStopped = true;
        }
        this.lastException = { filter: stop.filter, description, details: stop.details };
        this.reportStop('exception', stop.vcpu, { description, text: stop.filter });
        return true;
      }
      case 'blocked': {
        // Every vCPU sleeps and nothing inside the machine can wake one (engine/machine-api.ts):
        // a stop the user sees, with the engine's reason; the session stays usable.
        const description = `${stop.description} (guest PC ${formatMemRef('virtual', this.safePc(stop.vcpu))})`;
        this.sendEvent(new OutputEvent(`pvscope: ${description}\n`, 'console'));
        this.reportStop('pause', stop.vcpu, { description, text: 'blocked' });
        return true;
      }
      case 'data-breakpoint': {
        const recs = stop.ids.map((id) => this.dataBpByMachineId.get(id)).filter((r): r is BpRecord => !!r);
        const hit = recs.filter((r) => this.breakpointWants(r, stop.vcpu));
        if (recs.length > 0 && hit.length === 0) return false;
        this.reportStop('data breakpoint', stop.vcpu, {
          hitBreakpointIds: hit.map((r) => r.id),
          description: `${stop.write ? 'write' : 'read'} at ${
            recs.length > 0 && recs[0].space === 'physical'
              ? formatMemRef('physical', stop.address)
              : hexPad(stop.address, 1)
          }`,
        });
        return true;
      }
      case 'breakpoint': {
        const g = this.goal;
        if (g.kind === 'until' && stop.vcpu === g.vcpu && stop.ids.some((id) => g.tempIds.includes(id))) {
          const sp = this.reg(stop.vcpu, 'sp');
          if (g.strictSp ? sp > g.minSp : sp >= g.minSp) {
            this.reportStop('step', stop.vcpu, {});
            return true;
          }
        }
        const recs = [
          ...new Set(stop.ids.map((id) => this.bpByMachineId.get(id)).filter((r): r is BpRecord => !!r)),
        ];
        const hit = recs.filter((r) => this.breakpointWants(r, stop.vcpu));
        if (hit.length > 0) {
          const onlyIns = hit.every((r) => r.kind === 'instruction');
          const onlyFn = hit.every((r) => r.kind === 'function');
          this.reportStop(
            onlyIns ? 'instruction breakpoint' : onlyFn ? 'function breakpoint' : 'breakpoint',
            stop.vcpu,
            { hitBreakpointIds: hit.map((r) => r.id) },
          );
          return true;
        }
        // Not wanted (condition false, logpoint, temp breakpoint of another frame): step past and go on.
        this.currentVcpu = stop.vcpu;
        const s = this.safeStep(m, stop.vcpu);
        if (s.kind !== 'step') return this.handleStop(s);
        return false;
      }
    }
    return true;
  }

  /** Evaluates hit counts, conditions and logpoints; true when the breakpoint should stop. */
  private breakpointWants(r: BpRecord, vcpu: number): boolean {
    if (r.condition) {
      try {
        if (r.condition.evaluate(this.exprContext(vcpu)) === 0n) return false;
      } catch (e) {
        this.sendEvent(
          new OutputEvent(`breakpoint ${r.id}: condition error: ${(e as Error).message}\n`, 'stderr'),
        );
        return true;
      }
    }
    r.hits++;
    if (r.hit) {
      const { op, n } = r.hit;
      const ok =
        op === '>='
          ? r.hits >= n
          : op === '>'
            ? r.hits > n
            : op === '%'
              ? r.hits % n === 0
              : op === '=='
                ? r.hits === n
                : r.hits >= n;
      if (!ok) return false;
    }
    if (r.logMessage !== undefined) {
      this.sendEvent(new OutputEvent(this.interpolate(r.logMessage, vcpu) + '\n', 'console'));
      return false;
    }
    return true;
  }

  private interpolate(msg: string, vcpu: number): string {
    return msg.replace(/\{([^{}]+)\}/g, (_all, expr: string) => {
      try {
        const v = compileExpr(expr).evaluate(this.exprContext(vcpu));
        return '0x' + BigInt.asUintN(64, v).toString(16);
      } catch (e) {
        return `<${(e as Error).message}>`;
      }
    });
  }

  private reportStop(
    reason: string,
    vcpu: number,
    extra: { description?: string; text?: string; hitBreakpointIds?: number[] },
  ): void {
    const ls = this.lineStep;
    if (
      ls &&
      reason === 'step' &&
      !this.pauseRequested &&
      !this.machine?.finished &&
      ls.left-- > 0 &&
      !this.lineStepDone()
    ) {
      // Keep stepping instructions until the source line changes.
      this.clearTempBreakpoints();
      this.goal = { kind: 'continue' };
      this.running = true;
      setImmediate(this.guarded('step', () => this.instructionStep(ls.kind, ls.vcpu)));
      return;
    }
    if (ls && reason === 'step' && this.pauseRequested) reason = 'pause';
    this.lineStep = null;
    this.running = false;
    this.pauseRequested = false;
    this.clearTempBreakpoints();
    this.goal = { kind: 'continue' };
    this.currentVcpu = vcpu;
    this.varHandles.clear();
    if (this.machine?.finished && !this.crashStopped) {
      this.finishFrom(this.machine);
      return;
    }
    const ev = new StoppedEvent(reason, vcpu + 1, extra.text) as DebugProtocol.StoppedEvent;
    ev.body.allThreadsStopped = true;
    ev.body.preserveFocusHint = false;
    if (extra.description) ev.body.description = extra.description;
    if (extra.hitBreakpointIds && extra.hitBreakpointIds.length > 0)
      ev.body.hitBreakpointIds = extra.hitBreakpointIds;
    this.sendEvent(ev);
  }

  /** PC of a vCPU, or 0 when the engine cannot say (never throws). */
  private safePc(vcpu: number): bigint {
    try {
      return this.pc(vcpu);
    } catch {
      return 0n;
    }
  }

  /** The domain is finished: report how it ended (its shutdown stop from the engine) and end the session. */
  private finishFrom(m: Machine): void {
    let stop: Stop | undefined;
    try {
      stop = m.run(1);
    } catch {
      stop = undefined;
    }
    if (stop?.kind === 'shutdown') this.reportShutdown(stop);
    else this.reportFinished(this.crashStopped ? 1 : 0);
  }

  /**
   * The domain shut down or crashed: the reason to the Debug Console, then
   * `exited` and `terminated`. Exit code as the CLI's (cli/main.ts): 1 for a
   * crash (SHUTDOWN_crash, an engine crash), otherwise the shutdown code.
   */
  private reportShutdown(stop: Stop & { kind: 'shutdown' }): void {
    if (this.finishedReported) return;
    const crashed = stop.reason === 'crash' || this.crashStopped;
    let text = `guest ${stop.description || stop.reason} (code ${stop.code})`;
    if (crashed) text += `; guest PC ${formatMemRef('virtual', this.safePc(this.currentVcpu))}`;
    this.sendEvent(new OutputEvent(`${text}\n`, crashed ? 'stderr' : 'console'));
    this.reportFinished(crashed ? 1 : stop.code);
  }

  private reportFinished(code = 0): void {
    this.running = false;
    this.crashStopped = false;
    if (this.finishedReported) return;
    this.finishedReported = true;
    this.sendEvent(new ExitedEvent(code));
    this.sendEvent(new TerminatedEvent());
  }

  private clearTempBreakpoints(): void {
    const g = this.goal;
    if (g.kind === 'until' && this.machine) {
      for (const id of g.tempIds) {
        try {
          this.machine.removeBreakpoint(id);
        } catch {
          /* gone */
        }
      }
      g.tempIds.length = 0;
    }
  }

  private continue(args: DebugProtocol.ContinueArguments): DebugProtocol.ContinueResponse['body'] {
    this.need();
    this.threadVcpu(args.threadId);
    if (!this.running) this.startRun({ kind: 'continue' });
    return { allThreadsContinued: true };
  }

  private pause(args: DebugProtocol.PauseArguments): undefined {
    this.need();
    this.threadVcpu(args.threadId);
    if (this.running) this.pauseRequested = true;
    else setImmediate(this.guarded('pause', () => this.reportStop('pause', this.currentVcpu, {})));
    return undefined;
  }

  private bits(): 32 | 64 {
    return this.need().info.bits;
  }

  private regs(vcpu: number): VcpuRegisters {
    return this.need().getRegisters(vcpu);
  }

  /** pc / sp / fp of a vCPU regardless of width. */
  private reg(vcpu: number, which: 'pc' | 'sp' | 'fp'): bigint {
    const r = this.regs(vcpu);
    const names = which === 'pc' ? ['rip', 'eip', 'pc'] : which === 'sp' ? ['rsp', 'esp'] : ['rbp', 'ebp'];
    for (const n of names) if (r[n] !== undefined) return r[n];
    return 0n;
  }

  private pc(vcpu: number): bigint {
    return this.reg(vcpu, 'pc');
  }

  private cpuBitness(vcpu: number): 16 | 32 | 64 {
    const r = this.regs(vcpu);
    const l = r['cs.l'];
    const db = r['cs.db'] ?? r['cs.d'];
    if (l !== undefined) return l !== 0n ? 64 : db === 0n ? 16 : 32;
    return this.bits();
  }

  private decodeAt(vcpu: number, addr: bigint, count: number): DecodedInstruction[] {
    const m = this.need();
    const bytes = m.readMemory('virtual', addr, Math.max(16, count * 15), vcpu);
    return decode(bytes, addr, this.cpuBitness(vcpu), count);
  }

  private stepCommon(kind: 'next' | 'stepIn', args: DebugProtocol.NextArguments): undefined {
    this.need();
    if (this.running) throw new RequestError('the guest is running; pause first');
    const vcpu = this.threadVcpu(args?.threadId);
    this.currentVcpu = vcpu;
    const loc = args.granularity !== 'instruction' ? this.symbols.addressToLine(this.pc(vcpu)) : undefined;
    this.lineStep = loc
      ? { vcpu, kind, file: loc.file, line: loc.line, sp: this.reg(vcpu, 'sp'), left: 1_000_000 }
      : null;
    if (this.lineStep) this.running = true;
    setImmediate(this.guarded('step', () => this.instructionStep(kind, vcpu)));
    return undefined;
  }

  /** One instruction-level step (over calls for `next`); the stop arrives through handleStop/reportStop. */
  private instructionStep(kind: 'next' | 'stepIn', vcpu: number): void {
    const m = this.machine;
    if (!m) return;
    const ins = this.decodeAt(vcpu, this.pc(vcpu), 1)[0];
    const overCall =
      ins?.flow === 'call' &&
      (kind === 'next' ||
        (this.lineStep !== null && (ins.target === undefined || !this.symbols.addressToLine(ins.target))));
    if (ins && overCall) {
      const sp = this.reg(vcpu, 'sp');
      const ret = ins.address + BigInt(ins.length);
      const id = m.addBreakpoint(ret);
      this.goal = { kind: 'until', vcpu, tempIds: [id], minSp: sp, strictSp: false, reason: 'step' };
      this.runGoal();
      return;
    }
    this.singleStep(vcpu, ins);
  }

  /** During a line step: true when the vCPU reached another source line (or code without lines). */
  private lineStepDone(): boolean {
    const ls = this.lineStep;
    if (!ls) return true;
    const loc = this.symbols.addressToLine(this.pc(ls.vcpu));
    if (!loc) return true;
    return loc.line !== ls.line || loc.file !== ls.file;
  }

  /** Resumes towards the current `until` goal (temporary breakpoint already placed). */
  private runGoal(): void {
    const m = this.machine;
    if (!m) return;
    const g = this.goal;
    this.running = true;

    this.varHandles.clear();
    this.mipsSample = { t: performance.now(), n: m.info.instructionsRetired };
    // Execute the current instruction first (it may itself carry a breakpoint).
    const s = this.safeStep(m, this.currentVcpu);
    if (s.kind !== 'step') {
      if (this.handleStop(s)) return;
    } else if (g.kind === 'until' && this.pc(g.vcpu) !== 0n) {
      // A call that returned within one instruction cannot happen; fall through to running.
    }
    this.scheduleSlice();
  }

  private singleStep(vcpu: number, ins: DecodedInstruction | undefined): void {
    const m = this.machine;
    if (!m) return;
    const pc0 = this.pc(vcpu);
    const regs0 =
      ins &&
      (ins.flow === 'syscall' || (ins.flow === 'int' && ins.bytes[0] === 0xcd && ins.bytes[1] === 0x82))
        ? this.regs(vcpu)
        : undefined;
    const s = this.safeStep(m, vcpu);
    if (regs0 && s.kind === 'step' && ins) {
      const pc1 = this.pc(vcpu);
      if (pc1 === pc0 + BigInt(ins.length)) {
        const is64 = this.bits() === 64;
        const nr = Number((is64 ? regs0.rax : regs0.eax) ?? 0n) >>> 0;
        const names = is64
          ? ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9']
          : ['ebx', 'ecx', 'edx', 'esi', 'edi', 'ebp'];
        const d = describeHypercall(
          nr,
          names.map((n) => regs0[n] ?? 0n),
          is64 ? 64 : 32,
        );
        const r1 = this.regs(vcpu);
        const result = (is64 ? r1.rax : r1.eax) ?? 0n;
        const signed = is64 ? BigInt.asIntN(64, result) : BigInt.asIntN(32, result);
        this.lastHypercall = { vcpu, description: d.description, result: signed };
        this.sendEvent(
          new OutputEvent(
            `${d.description} = ${signed}${signed < 0n ? ` (${errnoText(signed)})` : ''}\n`,
            'console',
          ),
        );
      }
    }
    this.handleStop(s);
  }

  private stepOut(args: DebugProtocol.StepOutArguments): undefined {
    const m = this.need();
    if (this.running) throw new RequestError('the guest is running; pause first');
    const vcpu = this.threadVcpu(args?.threadId);
    this.currentVcpu = vcpu;
    const frames = this.unwind(vcpu, 2);
    if (frames.length < 2) {
      // No caller known: behave like a single instruction step.
      setImmediate(
        this.guarded('step', () => this.singleStep(vcpu, this.decodeAt(vcpu, this.pc(vcpu), 1)[0])),
      );
      return undefined;
    }
    const sp = this.reg(vcpu, 'sp');
    const id = m.addBreakpoint(frames[1].pc);
    this.goal = { kind: 'until', vcpu, tempIds: [id], minSp: sp, strictSp: true, reason: 'step' };
    setImmediate(this.guarded('step', () => this.runGoal()));
    return undefined;
  }

  // -------------------------------------------------------------------------
  // Breakpoints

  private parseHit(s: string | undefined, r: BpRecord): void {
    if (s === undefined || s.trim() === '') return;
    const m = /^\s*(>=|==|>|%|=)?\s*(\d+)\s*$/.exec(s);
    if (!m) throw new RequestError(`bad hit condition '${s}' (use N, >=N, >N, ==N or %N)`);
    r.hit = { op: m[1] === '=' || m[1] === undefined ? '>=' : m[1], n: Number(m[2]) };
    if (r.hit.op === '%' && r.hit.n === 0) throw new RequestError('hit condition %0 is not allowed');
  }

  private makeRecord(
    kind: BpRecord['kind'],
    addrs: bigint[],
    cond?: string,
    hit?: string,
    log?: string,
  ): { rec: BpRecord; message?: string } {
    const rec: BpRecord = { id: this.nextBpId++, kind, machineIds: [], hits: 0 };
    let message: string | undefined;
    try {
      if (cond !== undefined && cond.trim() !== '') rec.condition = compileExpr(cond);
      this.parseHit(hit, rec);
    } catch (e) {
      message = (e as Error).message;
      return { rec, message };
    }
    if (log !== undefined && log !== '') rec.logMessage = log;
    const m = this.machine;
    if (m) {
      for (const a of addrs) {
        const id = m.addBreakpoint(a);
        rec.machineIds.push(id);
        this.bpByMachineId.set(id, rec);
      }
      this.bpAddresses.set(rec, addrs);
    }
    return { rec, message };
  }

  private dropRecords(recs: BpRecord[]): void {
    const m = this.machine;
    for (const r of recs) {
      for (const id of r.machineIds) {
        if (r.kind === 'data') {
          this.dataBpByMachineId.delete(id);
          try {
            m?.removeDataBreakpoint(id);
          } catch {
            /* gone */
          }
        } else {
          this.bpByMachineId.delete(id);
          try {
            m?.removeBreakpoint(id);
          } catch {
            /* gone */
          }
        }
      }
      this.bpAddresses.delete(r);
    }
  }

  private applySourceBreakpoints(args: DebugProtocol.SetBreakpointsArguments): DebugProtocol.Breakpoint[] {
    const key = args.source.path ?? args.source.name ?? String(args.source.sourceReference ?? '');
    this.dropRecords(this.sourceBps.get(key) ?? []);
    const lines = Array.isArray(args.breakpoints)
      ? args.breakpoints
      : Array.isArray(args.lines)
        ? args.lines.map((line) => ({ line }) as DebugProtocol.SourceBreakpoint)
        : [];
    const out: DebugProtocol.Breakpoint[] = [];
    const recs: BpRecord[] = [];
    for (const b of lines) {
      if (typeof b?.line !== 'number') throw new RequestError("each breakpoint needs a numeric 'line'");
      const where = this.symbols.hasLines ? this.symbols.resolveBreakpoint(key, b.line) : undefined;
      if (!where) {
        out.push({
          id: this.nextBpId++,
          verified: false,
          line: b.line,
          message: this.symbols.hasLines
            ? `no code at or after ${key}:${b.line}`
            : `no line information (load an ELF with DWARF line tables as the kernel or through 'symbols')`,
        });
        continue;
      }
      const { rec, message } = this.makeRecord(
        'source',
        where.addresses,
        b.condition,
        b.hitCondition,
        b.logMessage,
      );
      recs.push(rec);
      out.push({
        id: rec.id,
        verified: message === undefined && this.machine !== null,
        message: message ?? (this.machine ? undefined : 'pending until launch'),
        line: where.line,
        source: args.source,
        instructionReference: formatMemRef('virtual', where.addresses[0]),
      });
    }
    this.sourceBps.set(key, recs);
    return out;
  }

  private setBreakpoints(
    args: DebugProtocol.SetBreakpointsArguments,
  ): DebugProtocol.SetBreakpointsResponse['body'] {
    if (!args || typeof args.source !== 'object' || args.source === null)
      throw new RequestError("missing argument 'source'");
    const key = args.source.path ?? args.source.name ?? String(args.source.sourceReference ?? '');
    this.savedRequests.src.set(key, args);
    return { breakpoints: this.applySourceBreakpoints(args) };
  }

  private resolveLocation(name: string, vcpu: number): bigint {
    const direct = this.symbols.resolve(name);
    if (direct !== undefined) return direct;
    const text = name.trim().replace(/^\*/, '');
    return BigInt.asUintN(64, compileExpr(text).evaluate(this.exprContext(vcpu)));
  }

  /**
   * Builds breakpoint records at resolved guest virtual addresses: `resolve`
   * gives the address or throws (the breakpoint is then reported unverified
   * with the error text). Shared by function and instruction breakpoints.
   */
  private addressBreakpoints<T extends { condition?: string; hitCondition?: string }>(
    kind: 'function' | 'instruction',
    list: T[],
    resolve: (b: T) => bigint,
    failure: (b: T, e: Error) => string,
  ): { recs: BpRecord[]; out: DebugProtocol.Breakpoint[] } {
    const recs: BpRecord[] = [];
    const out: DebugProtocol.Breakpoint[] = [];
    for (const b of list) {
      let addr: bigint;
      try {
        addr = resolve(b);
      } catch (e) {
        out.push({ id: this.nextBpId++, verified: false, message: failure(b, e as Error) });
        continue;
      }
      const { rec, message } = this.makeRecord(kind, [addr], b.condition, b.hitCondition);
      recs.push(rec);
      out.push({
        id: rec.id,
        verified: message === undefined,
        message,
        instructionReference: formatMemRef('virtual', addr),
      });
    }
    return { recs, out };
  }

  private applyFunctionBreakpoints(
    args: DebugProtocol.SetFunctionBreakpointsArguments,
  ): DebugProtocol.Breakpoint[] {
    this.dropRecords(this.functionBps);
    this.functionBps = [];
    const list = args.breakpoints ?? [];
    for (const b of list)
      if (typeof b?.name !== 'string') throw new RequestError("each function breakpoint needs a 'name'");
    const { recs, out } = this.addressBreakpoints(
      'function',
      list,
      (b) => this.resolveLocation(b.name, this.currentVcpu),
      (b, e) => `cannot resolve '${b.name}': ${e.message}`,
    );
    this.functionBps = recs;
    return out;
  }

  private setFunctionBreakpoints(
    args: DebugProtocol.SetFunctionBreakpointsArguments,
  ): DebugProtocol.SetFunctionBreakpointsResponse['body'] {
    if (!args || !Array.isArray(args.breakpoints)) throw new RequestError("missing argument 'breakpoints'");
    this.savedRequests.fn = args;
    return {
      breakpoints: this.machine
        ? this.applyFunctionBreakpoints(args)
        : args.breakpoints.map(() => ({ verified: false, message: 'pending until launch' })),
    };
  }

  private applyInstructionBreakpoints(
    args: DebugProtocol.SetInstructionBreakpointsArguments,
  ): DebugProtocol.Breakpoint[] {
    this.dropRecords(this.instructionBps);
    this.instructionBps = [];
    const { recs, out } = this.addressBreakpoints(
      'instruction',
      args.breakpoints ?? [],
      (b) => {
        const ref = parseMemRef(b?.instructionReference, 'instructionReference');
        if (ref.space !== 'virtual')
          throw new RequestError('instruction breakpoints take guest virtual addresses');
        // The schema bounds the offset to a safe integer; the sum wraps modulo 2^64.
        return BigInt.asUintN(64, ref.address + BigInt(b.offset ?? 0));
      },
      (_b, e) => e.message,
    );
    this.instructionBps = recs;
    return out;
  }

  private setInstructionBreakpoints(
    args: DebugProtocol.SetInstructionBreakpointsArguments,
  ): DebugProtocol.SetInstructionBreakpointsResponse['body'] {
    if (!args || !Array.isArray(args.breakpoints)) throw new RequestError("missing argument 'breakpoints'");
    this.savedRequests.ins = args;
    return {
      breakpoints: this.machine
        ? this.applyInstructionBreakpoints(args)
        : args.breakpoints.map(() => ({ verified: false, message: 'pending until launch' })),
    };
  }

  private applyExceptionFilters(
    args: DebugProtocol.SetExceptionBreakpointsArguments,
  ): DebugProtocol.Breakpoint[] {
    const m = this.need();
    const wanted = new Map<string, string | undefined>();
    const order: string[] = [];
    for (const f of args.filters ?? []) {
      wanted.set(f, undefined);
      order.push(f);
    }
    for (const o of args.filterOptions ?? []) {
      wanted.set(o.filterId, o.condition);
      order.push(o.filterId);
    }
    const result = new Map<string, DebugProtocol.Breakpoint>();
    for (const id of wanted.keys()) {
      if (!(FILTER_IDS as readonly string[]).includes(id))
        result.set(id, { verified: false, message: `unknown exception filter '${id}'` });
    }
    for (const id of FILTER_IDS) {
      const on = wanted.has(id);
      try {
        m.setFilter(id, on, on ? wanted.get(id) : undefined);
        if (on) result.set(id, { verified: true });
      } catch (e) {
        result.set(id, { verified: false, message: (e as Error).message });
      }
    }
    return order.map((id) => result.get(id) ?? { verified: true });
  }

  private setExceptionBreakpoints(
    args: DebugProtocol.SetExceptionBreakpointsArguments,
  ): DebugProtocol.SetExceptionBreakpointsResponse['body'] {
    if (!args || (!Array.isArray(args.filters) && !Array.isArray(args.filterOptions)))
      throw new RequestError("missing argument 'filters'");
    if (args.filters !== undefined && !Array.isArray(args.filters))
      throw new RequestError("argument 'filters' must be an array");
    this.savedRequests.exc = args;
    if (!this.machine) return { breakpoints: [] };
    return { breakpoints: this.applyExceptionFilters(args) };
  }

  private dataBreakpointInfo(
    args: DebugProtocol.DataBreakpointInfoArguments,
  ): DebugProtocol.DataBreakpointInfoResponse['body'] {
    if (!args || typeof args.name !== 'string') throw new RequestError("missing argument 'name'");
    const size = typeof args.bytes === 'number' && args.bytes > 0 ? Math.min(args.bytes, 1 << 20) : 8;
    let space: Space = 'virtual';
    let addr: bigint;
    const name = args.name.trim();
    try {
      if (/^[vpm]:/i.test(name) || args.asAddress) {
        const ref = parseMemRef(name, 'name');
        space = ref.space;
        addr = ref.address;
      } else {
        if (args.variablesReference && this.varHandles.get(args.variablesReference)?.t === 'registers') {
          return {
            dataId: null,
            description: `registers cannot be watched; watch the memory at *${name} instead`,
          };
        }
        addr = BigInt.asUintN(64, compileExpr(name).evaluate(this.exprContext(this.currentVcpu)));
      }
    } catch (e) {
      return { dataId: null, description: `cannot watch '${name}': ${(e as Error).message}` };
    }
    const ref = `${space[0]}:0x${addr.toString(16)}:${size}`;
    return {
      dataId: ref,
      description: `${size} byte(s) at ${formatMemRef(space, addr)}`,
      accessTypes: ['read', 'write', 'readWrite'],
      canPersist: true,
    };
  }

  private applyDataBreakpoints(args: DebugProtocol.SetDataBreakpointsArguments): DebugProtocol.Breakpoint[] {
    const m = this.need();
    this.dropRecords(this.dataBps);
    this.dataBps = [];
    const out: DebugProtocol.Breakpoint[] = [];
    for (const b of args.breakpoints ?? []) {
      const mm = typeof b?.dataId === 'string' ? /^([vpm]):(0x[0-9a-f]+):(\d+)$/i.exec(b.dataId) : null;
      if (!mm) {
        out.push({
          id: this.nextBpId++,
          verified: false,
          message: `bad dataId ${JSON.stringify(b?.dataId)}`,
        });
        continue;
      }
      const space = mm[1].toLowerCase() === 'p' ? 'physical' : mm[1].toLowerCase() === 'm' ? null : 'virtual';
      if (!space) {
        out.push({
          id: this.nextBpId++,
          verified: false,
          message: 'data breakpoints take virtual or pseudo-physical addresses',
        });
        continue;
      }
      const access = b.accessType ?? 'write';
      const rec: BpRecord = { id: this.nextBpId++, kind: 'data', machineIds: [], hits: 0, space };
      try {
        if (b.condition) rec.condition = compileExpr(b.condition);
        this.parseHit(b.hitCondition, rec);
        const id = m.addDataBreakpoint(space, BigInt(mm[2]), Number(mm[3]), access);
        rec.machineIds.push(id);
        this.dataBpByMachineId.set(id, rec);
      } catch (e) {
        out.push({ id: rec.id, verified: false, message: (e as Error).message });
        continue;
      }
      this.dataBps.push(rec);
      out.push({
        id: rec.id,
        verified: true,
        description: `${access} ${mm[3]} byte(s) at ${formatMemRef(space, BigInt(mm[2]))}`,
      } as DebugProtocol.Breakpoint);
    }
    return out;
  }

  private setDataBreakpoints(
    args: DebugProtocol.SetDataBreakpointsArguments,
  ): DebugProtocol.SetDataBreakpointsResponse['body'] {
    if (!args || !Array.isArray(args.breakpoints)) throw new RequestError("missing argument 'breakpoints'");
    this.savedRequests.data = args;
    if (!this.machine)
      return {
        breakpoints: args.breakpoints.map(() => ({ verified: false, message: 'pending until launch' })),
      };
    return { breakpoints: this.applyDataBreakpoints(args) };
  }

  private exceptionInfo(
    args: DebugProtocol.ExceptionInfoArguments,
  ): DebugProtocol.ExceptionInfoResponse['body'] {
    this.threadVcpu(args?.threadId);
    const e = this.lastException;
    if (!e) throw new RequestError('the thread did not stop on an exception filter');
    const lines = Object.entries(e.details).map(([k, v]) => `${k}: ${v}`);
    return {
      exceptionId: e.filter,
      description: e.description,
      breakMode: 'always',
      details: {
        message: e.description,
        typeName: e.filter,
        stackTrace: lines.join('\n'),
        pvscope: e.details,
      } as DebugProtocol.ExceptionDetails,
    };
  }

  // -------------------------------------------------------------------------
  // Threads, stack, variables

  private threads(): DebugProtocol.ThreadsResponse['body'] {
    const m = this.machine;
    if (!m) return { threads: [] };
    const out: Thread[] = [];
    for (let i = 0; i < m.info.vcpus; i++) out.push(new Thread(i + 1, `vcpu${i}`));
    return { threads: out };
  }

  private unwind(vcpu: number, max: number): { pc: bigint; sp: bigint; fp: bigint }[] {
    const m = this.need();
    const is64 = this.bits() === 64;
    const w = is64 ? 8 : 4;
    const read = (a: bigint, size: number): bigint | undefined => {
      const b = m.readMemory('virtual', a, size, vcpu);
      if (b.length < size) return undefined;
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
      return v;
    };
    // DWARF register numbers (System V psABI): x86-64 rax rdx rcx rbx rsi rdi rbp rsp r8-r15; i386 eax ecx edx ebx esp ebp esi edi.
    const dwarfNames = is64
      ? [
          'rax',
          'rdx',
          'rcx',
          'rbx',
          'rsi',
          'rdi',
          'rbp',
          'rsp',
          'r8',
          'r9',
          'r10',
          'r11',
          'r12',
          'r13',
          'r14',
          'r15',
        ]
      : ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
    const spReg = is64 ? 7 : 4;
    const fpReg = is64 ? 6 : 5;
    const regs0 = this.regs(vcpu);
    let regs = new Map<number, bigint>();
    dwarfNames.forEach((n, i) => {
      if (regs0[n] !== undefined) regs.set(i, regs0[n]);
    });
    const frames: { pc: bigint; sp: bigint; fp: bigint }[] = [];
    let pc = this.reg(vcpu, 'pc');
    let sp = this.reg(vcpu, 'sp');
    let fp = this.reg(vcpu, 'fp');
    frames.push({ pc, sp, fp });
    // Call frame information first (where the image has it), frame pointers for the rest.
    while (frames.length < max) {
      const st = this.symbols.cfiStep(pc, (r) => regs.get(r), read, frames.length > 1);
      if (!st) break;
      if (st.returnAddress === undefined || st.returnAddress === 0n) return frames;
      const next = new Map(regs);
      for (const [k, v] of st.registers) next.set(k, v);
      next.set(spReg, st.cfa);
      regs = next;
      pc = st.returnAddress;
      sp = st.cfa;
      fp = regs.get(fpReg) ?? fp;
      frames.push({ pc, sp, fp });
    }
    if (frames.length >= max) return frames;
    const innermost = frames.length === 1;
    const rest = unwindStack({
      pc,
      sp,
      fp,
      wordSize: w,
      maxFrames: max - frames.length + 1,
      read: (a, size) => read(a, size),
      functionOffset: innermost ? (p) => this.symbols.lookup(p)?.offset : undefined,
      isReturn: innermost
        ? (p) => {
            const b = m.readMemory('virtual', p, 1, vcpu);
            return b.length === 1 && (b[0] === 0xc3 || b[0] === 0xc2);
          }
        : undefined,
    });
    return frames.concat(rest.slice(1));
  }

  private stackTrace(args: DebugProtocol.StackTraceArguments): DebugProtocol.StackTraceResponse['body'] {
    const vcpu = this.threadVcpu(args?.threadId);
    const start =
      typeof args.startFrame === 'number' && args.startFrame > 0 ? Math.floor(args.startFrame) : 0;
    const levels =
      typeof args.levels === 'number' && args.levels > 0 ? Math.min(Math.floor(args.levels), MAX_FRAMES) : 64;
    const frames = this.unwind(vcpu, Math.min(start + levels, MAX_FRAMES));
    const digits = this.bits() === 64 ? 16 : 8;
    const out: DebugProtocol.StackFrame[] = frames.slice(start).map((f, i) => {
      // Callers are named by the function holding the call (the return address may start another symbol).
      const look = start + i === 0 ? this.symbols.lookup(f.pc) : this.symbols.lookup(f.pc - 1n);
      const off = look ? (start + i === 0 ? look.offset : look.offset + 1n) : 0n;
      const sym = look ? (off === 0n ? look.name : `${look.name}+0x${off.toString(16)}`) : undefined;
      // Callers' return addresses point after the call: look up the line of the call itself.
      const loc = this.symbols.addressToLine(start + i === 0 ? f.pc : f.pc - 1n);
      const frame: DebugProtocol.StackFrame = {
        id: vcpu * FRAME_STRIDE + start + i,
        name: sym ?? hexPad(f.pc, digits),
        line: loc ? loc.line : 0,
        column: loc ? Math.max(1, loc.column) : 0,
        instructionPointerReference: formatMemRef('virtual', f.pc),
        presentationHint: 'normal',
      };
      if (loc) frame.source = { name: basename(loc.file), path: loc.file };
      return frame;
    });
    return { stackFrames: out, totalFrames: frames.length };
  }

  private frameOf(frameId: unknown): { vcpu: number; frame: number } {
    const m = this.need();
    if (typeof frameId !== 'number' || !Number.isInteger(frameId) || frameId < 0)
      throw new RequestError(`unknown frameId ${truncate(safeStringify(frameId), 100)}`);
    const vcpu = Math.floor(frameId / FRAME_STRIDE);
    const frame = frameId % FRAME_STRIDE;
    if (vcpu >= m.info.vcpus || frame >= MAX_FRAMES) throw new RequestError(`unknown frameId ${frameId}`);
    // Frame 0 always exists; callers only while the unwinder finds them (the stack may have changed).
    if (frame > 0 && this.unwind(vcpu, frame + 1).length <= frame)
      throw new RequestError(`unknown frameId ${frameId}`);
    return { vcpu, frame };
  }

  private handle(node: VarNode): number {
    const h = this.nextVarHandle++;
    this.varHandles.set(h, node);
    return h;
  }

  private scopes(args: DebugProtocol.ScopesArguments): DebugProtocol.ScopesResponse['body'] {
    const { vcpu, frame } = this.frameOf(args?.frameId);
    const m = this.need();
    return {
      scopes: [
        {
          name: 'Registers',
          presentationHint: 'registers',
          variablesReference: this.handle({ t: 'registers', vcpu, frame }),
          expensive: false,
        },
        {
          name: 'Xen vCPU',
          variablesReference: this.handle({
            t: 'flat',
            data: () => this.xenVcpuData(vcpu),
            prefix: '',
            what: 'xen',
            vcpu,
          }),
          expensive: false,
        },
        {
          name: 'Domain',
          variablesReference: this.handle({
            t: 'flat',
            data: () => m.domainInfo(),
            prefix: '',
            what: 'domain',
            vcpu,
          }),
          expensive: false,
        },
      ],
    };
  }

  private xenVcpuData(vcpu: number): Record<string, string | number> {
    const d = { ...this.need().vcpuInfo(vcpu) };
    const h = this.lastHypercall;
    if (h && h.vcpu === vcpu) {
      d['last hypercall'] = h.description;
      d['last hypercall result'] = `${h.result}${h.result < 0n ? ` (${errnoText(h.result)})` : ''}`;
    }
    return d;
  }

  private registerVariables(vcpu: number, frame: number): DebugProtocol.Variable[] {
    const digits = this.bits() === 64 ? 16 : 8;
    if (frame > 0) {
      const f = this.unwind(vcpu, frame + 1)[frame];
      if (!f) return [];
      const is64 = this.bits() === 64;
      return [
        {
          name: is64 ? 'rip' : 'eip',
          value: hexPad(f.pc, digits),
          variablesReference: 0,
          memoryReference: formatMemRef('virtual', f.pc),
        },
        {
          name: is64 ? 'rsp' : 'esp',
          value: hexPad(f.sp, digits),
          variablesReference: 0,
          memoryReference: formatMemRef('virtual', f.sp),
        },
        {
          name: is64 ? 'rbp' : 'ebp',
          value: hexPad(f.fp, digits),
          variablesReference: 0,
          memoryReference: formatMemRef('virtual', f.fp),
        },
      ];
    }
    const regs = { ...this.regs(vcpu) };
    // Registers reported only as `name.field` (e.g. gdtr.base, gdtr.limit) get a parent `name`.
    for (const k of Object.keys(regs)) {
      const dot = k.indexOf('.');
      if (dot > 0 && regs[k.slice(0, dot)] === undefined && regs[`${k.slice(0, dot)}.base`] !== undefined)
        regs[k.slice(0, dot)] = regs[`${k.slice(0, dot)}.base`];
    }
    const keys = Object.keys(regs);
    const top = keys.filter((k) => !k.includes('.') || !keys.includes(k.slice(0, k.indexOf('.'))));
    // Descriptor caches of segment registers the engine does not report itself, from the GDT/LDT.
    let tables: { gdt: DescriptorEntry[]; ldt: DescriptorEntry[] } | undefined;
    const descriptorOf = (sel: number): DescriptorEntry | undefined => {
      try {
        tables ??= { gdt: this.need().gdt(vcpu), ldt: this.need().ldt(vcpu) };
      } catch {
        return undefined;
      }
      return ((sel & 4) !== 0 ? tables.ldt : tables.gdt).find((d) => d.index === sel >> 3);
    };
    const rank = (k: string): number => {
      const i = REGISTER_ORDER.indexOf(k);
      return i < 0 ? REGISTER_ORDER.length : i;
    };
    top.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    return top.map((k) => {
      const v = regs[k];
      const children: DebugProtocol.Variable[] = [];
      for (const c of keys)
        if (c.startsWith(k + '.'))
          children.push({
            name: c.slice(k.length + 1),
            value: hexPad(regs[c], c.endsWith('limit') ? 1 : digits),
            variablesReference: 0,
            evaluateName: c,
          });
      if (k === 'rflags' || k === 'eflags') {
        for (const [n, bit, width] of RFLAGS_BITS)
          children.push({
            name: n,
            value: String(Number((v >> BigInt(bit)) & ((1n << BigInt(width)) - 1n))),
            variablesReference: 0,
          });
      }
      if (['cs', 'ds', 'es', 'fs', 'gs', 'ss'].includes(k) && !keys.some((c) => c.startsWith(k + '.'))) {
        const sel = Number(v & 0xffffn);
        children.push(
          { name: 'index', value: String(sel >> 3), variablesReference: 0 },
          { name: 'table', value: (sel & 4) !== 0 ? 'LDT' : 'GDT', variablesReference: 0 },
          { name: 'rpl', value: String(sel & 3), variablesReference: 0 },
        );
        const d = sel >> 2 !== 0 ? descriptorOf(sel) : undefined;
        if (d) {
          children.push(
            { name: 'kind', value: d.kind, variablesReference: 0 },
            { name: 'base', value: hexPad(d.base, digits), variablesReference: 0 },
            { name: 'limit', value: hexPad(BigInt(d.limit), 1), variablesReference: 0 },
            { name: 'type', value: hexPad(BigInt(d.type), 1), variablesReference: 0 },
            { name: 'dpl', value: String(d.dpl), variablesReference: 0 },
            { name: 'present', value: d.present ? '1' : '0', variablesReference: 0 },
            { name: 'L', value: d.l ? '1' : '0', variablesReference: 0 },
            { name: 'D/B', value: d.db ? '1' : '0', variablesReference: 0 },
            { name: 'G', value: d.g ? '1' : '0', variablesReference: 0 },
          );
          if (d.xenReserved)
            children.push({ name: 'xen', value: "Xen's reserved GDT entry", variablesReference: 0 });
        }
      }
      const bits = CONTROL_BITS[k];
      if (bits)
        for (const [n, bit] of bits)
          children.push({ name: n, value: String(Number((v >> BigInt(bit)) & 1n)), variablesReference: 0 });
      const isSeg = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr'].includes(k);
      const memoryReference =
        k === 'cr3'
          ? formatMemRef('machine', v & ~0xfffn)
          : isSeg || bits || k.endsWith('flags')
            ? undefined
            : formatMemRef('virtual', v);
      return {
        name: k,
        value: isSeg ? hexPad(v, 4) : hexPad(v, digits),
        variablesReference: children.length > 0 ? this.handle({ t: 'children', vcpu, items: children }) : 0,
        evaluateName: '$' + k,
        memoryReference,
        presentationHint: { kind: 'property' },
      } as DebugProtocol.Variable;
    });
  }

  private flatVariables(
    data: Record<string, string | number>,
    prefix: string,
    node: VarNode & { t: 'flat' },
  ): DebugProtocol.Variable[] {
    const groups = new Map<string, boolean>();
    const out: DebugProtocol.Variable[] = [];
    for (const [k, v] of Object.entries(data)) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      const dot = rest.indexOf('.');
      if (dot > 0) {
        const g = rest.slice(0, dot);
        if (!groups.has(g) && data[prefix + g] === undefined) {
          groups.set(g, true);
          out.push({
            name: g,
            value: '',
            variablesReference: this.handle({ ...node, prefix: prefix + g + '.' }),
          });
        }
        continue;
      }
      out.push({
        name: rest,
        value:
          typeof v === 'number'
            ? Number.isInteger(v) && Math.abs(v) > 9
              ? `${v} (0x${(v >>> 0 === v ? v : v).toString(16)})`
              : String(v)
            : String(v),
        variablesReference: 0,
      });
    }
    return out;
  }

  private variables(args: DebugProtocol.VariablesArguments): DebugProtocol.VariablesResponse['body'] {
    if (typeof args?.variablesReference !== 'number')
      throw new RequestError("missing argument 'variablesReference'");
    const node = this.varHandles.get(args.variablesReference);
    if (!node) return { variables: [] };
    let vars: DebugProtocol.Variable[];
    if (node.t === 'registers') vars = this.registerVariables(node.vcpu, node.frame);
    else if (node.t === 'children') vars = node.items;
    else vars = this.flatVariables(node.data(), node.prefix, node);
    const start = typeof args.start === 'number' && args.start > 0 ? args.start : 0;
    const count = typeof args.count === 'number' && args.count > 0 ? args.count : vars.length;
    return { variables: vars.slice(start, start + count) };
  }

  private setVariable(args: DebugProtocol.SetVariableArguments): DebugProtocol.SetVariableResponse['body'] {
    if (
      typeof args?.variablesReference !== 'number' ||
      typeof args.name !== 'string' ||
      typeof args.value !== 'string'
    )
      throw new RequestError('setVariable needs variablesReference, name and value');
    const node = this.varHandles.get(args.variablesReference);
    if (!node) throw new RequestError('unknown variablesReference');
    if (this.running) throw new RequestError('the guest is running; pause first');
    const m = this.need();
    const value = BigInt.asUintN(64, compileExpr(args.value).evaluate(this.exprContext(this.currentVcpu)));
    const digits = this.bits() === 64 ? 16 : 8;
    if (node.t === 'registers') {
      if (node.frame !== 0)
        throw new RequestError('only the registers of the innermost frame can be changed');
      m.setRegister(node.vcpu, args.name, value);
      const now = this.regs(node.vcpu)[args.name];
      return { value: hexPad(now ?? value, digits) };
    }
    if (node.t === 'children') {
      const regs = this.regs(node.vcpu);
      const flagsName = regs.rflags !== undefined ? 'rflags' : 'eflags';
      const bit = RFLAGS_BITS.find(([n]) => n === args.name);
      if (bit && node.items.some((i) => i.name === 'CF')) {
        const [, shift, width] = bit;
        const mask = ((1n << BigInt(width)) - 1n) << BigInt(shift);
        const nv = (regs[flagsName] & ~mask) | ((value << BigInt(shift)) & mask);
        m.setRegister(node.vcpu, flagsName, nv);
        return { value: String(Number((this.regs(node.vcpu)[flagsName] & mask) >> BigInt(shift))) };
      }
    }
    throw new RequestError(`'${args.name}' cannot be changed here`);
  }

  // -------------------------------------------------------------------------
  // Expressions and the debug console

  private exprContext(vcpu: number): ExprContext {
    const m = this.need();
    let regs: VcpuRegisters | undefined;
    const getRegs = (): VcpuRegisters => (regs ??= m.getRegisters(vcpu));
    return {
      lookup: (raw) => {
        const dollar = raw.startsWith('$');
        const name = (dollar ? raw.slice(1) : raw).toLowerCase();
        const r = getRegs();
        if (r[name] !== undefined) return r[name];
        const alias: Record<string, string[]> = {
          pc: ['rip', 'eip'],
          ip: ['rip', 'eip'],
          sp: ['rsp', 'esp'],
          fp: ['rbp', 'ebp'],
          flags: ['rflags', 'eflags'],
        };
        for (const a of alias[name] ?? []) if (r[a] !== undefined) return r[a];
        const sub = SUBREGS[name];
        if (sub && r[sub[0]] !== undefined)
          return (r[sub[0]] >> BigInt(sub[1])) & ((1n << BigInt(sub[2])) - 1n);
        if (!dollar) {
          const s = this.symbols.resolve(raw);
          if (s !== undefined) return s;
        }
        if (name === 'vcpu') return BigInt(vcpu);
        return undefined;
      },
      readMemory: (address, size) => {
        const b = m.readMemory('virtual', address, size, vcpu);
        if (b.length < size) return undefined;
        let v = 0n;
        for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        return v;
      },
    };
  }

  private evaluate(args: DebugProtocol.EvaluateArguments): DebugProtocol.EvaluateResponse['body'] {
    if (typeof args?.expression !== 'string') throw new RequestError("missing argument 'expression'");
    const m = this.need();
    let vcpu = this.currentVcpu;
    if (typeof args.frameId === 'number') vcpu = this.frameOf(args.frameId).vcpu;
    const text = args.expression.trim();
    if ((args.context === 'repl' || args.context === undefined) && isConsoleCommand(text)) {
      const out = runConsoleCommand(text, {
        machine: m,
        vcpu,
        symbols: this.symbols,
        bits: this.bits(),
        evaluate: (e) => BigInt.asUintN(64, compileExpr(e).evaluate(this.exprContext(vcpu))),
      });
      return { result: out, variablesReference: 0 };
    }
    const v = compileExpr(text).evaluate(this.exprContext(vcpu));
    const u = BigInt.asUintN(64, v);
    const sym = this.symbols.format(u);
    const dec = v < 0n ? v.toString() : u.toString();
    return {
      result: `0x${u.toString(16)} (${dec})${sym ? ` <${sym}>` : ''}`,
      variablesReference: 0,
      memoryReference: formatMemRef('virtual', u),
    };
  }

  // -------------------------------------------------------------------------
  // Memory and disassembly

  private readMemory(args: DebugProtocol.ReadMemoryArguments): DebugProtocol.ReadMemoryResponse['body'] {
    const m = this.need();
    const ref = parseMemRef(args?.memoryReference);
    const offset = typeof args.offset === 'number' && Number.isInteger(args.offset) ? args.offset : 0;
    const count = argInt(args as unknown as Record<string, unknown>, 'count', undefined, 0, 16 * 1024 * 1024);
    const addr = BigInt.asUintN(64, ref.address + BigInt(offset));
    const data = count === 0 ? new Uint8Array(0) : m.readMemory(ref.space, addr, count, this.currentVcpu);
    return {
      address: formatMemRef(ref.space, addr),
      data: Buffer.from(data.buffer, data.byteOffset, data.length).toString('base64'),
      unreadableBytes: count - data.length,
    };
  }

  /**
   * DAP `writeMemory`, obeying the guest's own permissions (writePermission):
   * a range the guest could not write itself is refused with the reason,
   * nothing written (with `allowPartial`, the writable prefix is written and
   * the message says why the rest was not). With the pvscope argument
   * `force: true` the write goes through anyway, and the response's
   * `message`, `body.overridden` and a Debug Console line say what was
   * overridden.
   */
  private writeMemory(
    args: DebugProtocol.WriteMemoryArguments & { force?: boolean },
  ): DebugProtocol.WriteMemoryResponse['body'] & { overridden?: string[] } {
    const m = this.need();
    if (this.running) throw new RequestError('the guest is running; pause first');
    const ref = parseMemRef(args.memoryReference);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(args.data)) throw new RequestError("argument 'data' must be base64");
    const bytes = new Uint8Array(Buffer.from(args.data, 'base64'));
    const addr = BigInt.asUintN(64, ref.address + BigInt(args.offset ?? 0));
    const vcpu = this.currentVcpu;
    // Page by page: how far the guest itself could write, and why not further.
    const overridden: string[] = [];
    let allowed = 0;
    let refusal: string | undefined;
    while (allowed < bytes.length) {
      const a = BigInt.asUintN(64, addr + BigInt(allowed));
      const inPage = 4096 - Number(a & 0xfffn);
      const why = writePermission(m, ref.space, a, vcpu, this.bits());
      if (why !== null) {
        if (!args.force) {
          refusal = why;
          break;
        }
        if (!overridden.includes(why)) overridden.push(why);
      }
      allowed += Math.min(inPage, bytes.length - allowed);
    }
    if (refusal !== undefined && !args.allowPartial)
      throw new RequestError(`writeMemory refused: ${refusal} (nothing written; 'force: true' overrides)`);
    const n = allowed === 0 ? 0 : m.writeMemory(ref.space, addr, bytes.subarray(0, allowed), vcpu);
    if (n < allowed && !args.allowPartial)
      throw new RequestError(
        `only ${n} of ${bytes.length} byte(s) could be written at ${formatMemRef(ref.space, addr + BigInt(n))}`,
      );
    if (n > 0)
      setImmediate(
        this.guarded('memory event', () =>
          this.sendEvent(
            new Event('memory', { memoryReference: formatMemRef(ref.space, addr), offset: 0, count: n }),
          ),
        ),
      );
    const body: DebugProtocol.WriteMemoryResponse['body'] & { overridden?: string[] } = {
      offset: 0,
      bytesWritten: n,
    };
    if (overridden.length > 0) {
      body.overridden = overridden;
      const text = `forced write of ${n} byte(s) at ${formatMemRef(ref.space, addr)} overrode: ${overridden.join('; ')}`;
      this.sendEvent(new OutputEvent(`pvscope: ${text}\n`, 'console'));
    }
    return body;
  }

  /**
   * DAP `disassemble`: `instructionCount` entries starting `instructionOffset`
   * instructions from `memoryReference + offset`. Up to DISASM_REACH_BACK
   * instructions before and DISASM_REACH_FORWARD after the reference are
   * decoded exactly; entries further away (and unreadable bytes) are `??`
   * entries with `presentationHint: 'invalid'` at byte-granular guessed
   * addresses, so the cost is bounded by the count and the reach, whatever
   * the offsets (arguments bounded by schema.ts).
   */
  private disassemble(args: DebugProtocol.DisassembleArguments): DebugProtocol.DisassembleResponse['body'] {
    const m = this.need();
    const ref = parseMemRef(args.memoryReference);
    if (ref.space !== 'virtual') throw new RequestError('disassemble takes a guest virtual address');
    const count = Math.min(args.instructionCount, MAX_INSTRUCTION_COUNT);
    const vcpu = this.currentVcpu;
    const bitness = this.cpuBitness(vcpu);
    const base = BigInt.asUintN(64, ref.address + BigInt(args.offset ?? 0));
    const first = args.instructionOffset ?? 0;
    const digits = bitness === 64 ? 16 : 8;
    const out: DebugProtocol.DisassembledInstruction[] = [];
    let lastSym: string | undefined;
    const push = (i: DecodedInstruction | null, addr: bigint): void => {
      if (!i) {
        out.push({
          address: hexPad(addr, digits),
          instruction: '??',
          instructionBytes: '??',
          presentationHint: 'invalid',
        });
        return;
      }
      const look = this.symbols.lookup(i.address);
      const symName = look?.name;
      let text = i.text;
      if (i.target !== undefined) {
        const t = this.symbols.format(i.target);
        if (t) text += ` <${t}>`;
      }
      const d: DebugProtocol.DisassembledInstruction = {
        address: hexPad(i.address, digits),
        instructionBytes: hexBytes(i.bytes),
        instruction: text,
      };
      if (i.invalid) d.presentationHint = 'invalid';
      const loc = this.symbols.addressToLine(i.address);
      if (loc) {
        d.location = { name: basename(loc.file), path: loc.file };
        d.line = loc.line;
      }
      if (symName && symName !== lastSym) d.symbol = symName;
      lastSym = symName;
      out.push(d);
    };
    // Entries before the reference (index < 0).
    const negative = first < 0 ? Math.min(count, -first) : 0;
    if (negative > 0) {
      // Window [first, first + negative) of indices; only the part within the reach is decoded.
      const exactFrom = Math.max(first, -DISASM_REACH_BACK);
      const windowEnd = first + negative;
      const got = exactFrom < windowEnd ? this.decodeBackward(base, -exactFrom, bitness, vcpu) : [];
      const lowest = got.length > 0 ? got[0].address : base;
      for (let k = 0; k < negative; k++) {
        const i = first + k;
        const g = i >= -got.length ? got[got.length + i] : undefined;
        if (g) push(g, g.address);
        else push(null, BigInt.asUintN(64, lowest + BigInt(first) + BigInt(k + got.length)));
      }
    }
    // Entries from the reference on (index >= 0).
    let remaining = count - negative;
    const skip = Math.max(0, first);
    if (remaining > 0 && skip > DISASM_REACH_FORWARD) {
      for (let k = 0; k < remaining; k++) push(null, BigInt.asUintN(64, base + BigInt(skip) + BigInt(k)));
      remaining = 0;
    }
    let addr = base;
    if (remaining > 0 && skip > 0) addr = this.decodeRun(addr, skip, bitness, vcpu).next;
    while (remaining > 0) {
      const chunk = Math.min(remaining, 256);
      const bytes = m.readMemory('virtual', addr, chunk * 15, vcpu);
      const ins = decode(bytes, addr, bitness, chunk);
      for (const i of ins) push(i, i.address);
      remaining -= ins.length;
      addr = ins.length > 0 ? ins[ins.length - 1].address + BigInt(ins[ins.length - 1].length) : addr;
      if (ins.length < chunk) {
        // Unreadable memory (or a truncated instruction at its edge): '??' one byte at a time.
        const pad = Math.min(remaining, chunk - ins.length);
        for (let k = 0; k < pad; k++) {
          push(null, addr);
          addr = BigInt.asUintN(64, addr + 1n);
        }
        remaining -= pad;
      }
    }
    return { instructions: out };
  }

  /**
   * Up to `want` (at most DISASM_REACH_BACK) instructions that end exactly at
   * `base`, in address order: decodes from earlier start points until one
   * lands on `base`. Fewer when memory before `base` is unreadable.
   */
  private decodeBackward(
    base: bigint,
    want: number,
    bitness: 16 | 32 | 64,
    vcpu: number,
  ): DecodedInstruction[] {
    const m = this.need();
    const n = Math.min(want, DISASM_REACH_BACK);
    let best: DecodedInstruction[] = [];
    for (let back = n * 15 + 16; back >= 0 && best.length < n; back -= Math.max(1, Math.floor(back / 4))) {
      const start = BigInt.asUintN(64, base - BigInt(back));
      if (start > base) break;
      const bytes = m.readMemory('virtual', start, back, vcpu);
      if (bytes.length < back) {
        if (back === 0) break;
        continue;
      }
      const ins = decode(bytes, start, bitness, n * 15 + 16);
      const end = ins.findIndex((x) => x.address + BigInt(x.length) === base);
      if (end >= 0 && end + 1 > best.length) best = ins.slice(0, end + 1);
      if (back === 0) break;
    }
    return best.slice(-n);
  }

  private decodeRun(addr: bigint, n: number, bitness: 16 | 32 | 64, vcpu: number): { next: bigint } {
    const m = this.need();
    let a = addr;
    let left = n;
    while (left > 0) {
      const chunk = Math.min(left, 256);
      const ins = decode(m.readMemory('virtual', a, chunk * 15, vcpu), a, bitness, chunk);
      if (ins.length === 0) return { next: BigInt.asUintN(64, a + BigInt(left)) };
      left -= ins.length;
      a = ins[ins.length - 1].address + BigInt(ins[ins.length - 1].length);
    }
    return { next: a };
  }

  // -------------------------------------------------------------------------
  // Custom requests (docs/debug-adapter.md)

  private descriptorTables(args: Record<string, unknown>): unknown {
    const m = this.need();
    const vcpu = this.vcpuArg(args);
    const regs = m.getRegisters(vcpu);
    const loaded: Record<string, number> = {};
    for (const s of ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldtr', 'tr'])
      if (regs[s] !== undefined) loaded[s] = Number(regs[s] & 0xffffn);
    return jsonSafe({
      gdt: m.gdt(vcpu),
      ldt: m.ldt(vcpu),
      idt: m.idt(vcpu),
      trapTable: m.trapTable(vcpu),
      loaded,
    });
  }

  private pageTable(args: Record<string, unknown>): unknown {
    const m = this.need();
    const vcpu = this.vcpuArg(args);
    const root = args?.root ?? 'kernel';
    let r: 'kernel' | 'user' | bigint;
    if (root === 'kernel' || root === 'user') r = root;
    else if (
      (typeof root === 'string' && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(root)) ||
      (typeof root === 'number' && Number.isSafeInteger(root) && root >= 0)
    )
      r = BigInt(root);
    else throw new RequestError("argument 'root' must be 'kernel', 'user' or an MFN such as '0x1a2b'");
    return jsonSafe(m.pageTable(vcpu, r));
  }

  private walk(args: Record<string, unknown>): unknown {
    const m = this.need();
    const vcpu = this.vcpuArg(args);
    return jsonSafe(m.walk(vcpu, argAddress(args, 'va')));
  }

  private xenstore(args: Record<string, unknown>): unknown {
    const m = this.need();
    const p = args?.path;
    if (p !== undefined && typeof p !== 'string') throw new RequestError("argument 'path' must be a string");
    return jsonSafe({ tree: m.xenstore(p as string | undefined), watches: m.xenstoreWatches() });
  }

  private consoleInput(args: Record<string, unknown>): undefined {
    const m = this.need();
    if (typeof args?.text !== 'string') throw new RequestError("argument 'text' must be a string");
    m.console.input(args.text);
    return undefined;
  }

  private status(): unknown {
    const m = this.machine;
    return {
      running: this.running,
      instructionsRetired: m ? m.info.instructionsRetired : 0,
      mips: Math.round(this.mips * 100) / 100,
      vcpu: this.currentVcpu,
      finished: m ? m.finished : true,
    };
  }
}

const NO_RESPONSE = Symbol('no-response');

function errnoText(v: bigint): string {
  return `-${errnoName(Number(-v))}`;
}

/** JavaScript's own error classes: thrown by a bug (a missing property, a bad size), never on purpose. */
const BUG_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError];

/** True for an error whose message is meant for the user (ours, the engine's); false for a bug. */
function isUserError(e: unknown): boolean {
  if (e instanceof RequestError || e instanceof LaunchError || e instanceof ExprError) return true;
  return e instanceof Error && !BUG_ERRORS.some((c) => e instanceof c);
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return `thrown ${typeof e}: ${truncate(safeStringify(e), 200)}`;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/** JSON text of anything (bigints as hex, cycles cut); never throws. */
function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(wireSafe(v)) ?? String(v);
  } catch {
    return '<unprintable>';
  }
}

/**
 * Why the guest itself could not write the page holding `a` in `space`, or
 * null when it could: virtual addresses need RW at every level of the walk
 * (PV runs with CR0.WP set, so Xen's read-only M2P and the guest's read-only
 * mappings of its page tables are refused); machine frames, and the machine
 * frames behind pseudo-physical addresses (Machine.machineFrame), must be the
 * domain's (not Xen's) and not typed by Xen as page tables or descriptor
 * pages (Xen validates every update to those: mmu_update, not a store;
 * xen/arch/x86/mm.c get_page_type refuses a writable mapping of them).
 */
function writePermission(m: Machine, space: Space, a: bigint, vcpu: number, bits: 32 | 64): string | null {
  const typed = (mfn: bigint, what: string): string | null => {
    const node = m.pageTable(vcpu, mfn);
    if (!node) return null;
    if (node.pfn === null)
      return `${what} is in machine frame 0x${mfn.toString(16)}, which is Xen's, not the guest's`;
    if (/^l[1-4]$/.test(node.type) || node.type === 'seg_desc')
      return `${what} is in a frame Xen has typed ${node.type === 'seg_desc' ? 'as a descriptor page' : `as an ${node.type.toUpperCase()} page table`} (update it with mmu_update)`;
    return null;
  };
  const where = formatMemRef(space, a);
  if (space === 'virtual') {
    const w = m.walk(vcpu, a);
    if (w.maddr === null) return null;
    for (const st of w.steps) {
      if (bits === 32 && st.level === 3) continue;
      if (!st.flags.includes('RW'))
        return `${where} is mapped read-only (L${st.level} entry ${st.index} has no RW bit)`;
      if (st.flags.includes('PSE')) break;
    }
    return null;
  }
  if (space === 'machine') return typed(a >> 12n, where);
  // Pseudo-physical: the frame behind it in Xen's p2m, with the same rules as a machine address.
  const mfn = m.machineFrame(a >> 12n);
  return mfn === null ? null : typed(mfn, where);
}
