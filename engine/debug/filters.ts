/**
 * Hypervisor-level stop filters (the DAP exception breakpoint filters
 * `hypercall`, `grant`, `pagefault`, `trap`, `event`, `mmu-reject`, `crash`)
 * and the one-line hypercall descriptions shown when one stops.
 *
 * The hypervisor model (engine/xen/) asks a {@link FilterSet} at each event
 * whether to stop; `Machine.setFilter` forwards to {@link FilterSet.set}.
 * Checks are cheap when a filter is disabled (one property read), so the
 * hooks may call them unconditionally.
 *
 * Condition syntax per filter (documented for users in docs/debug-adapter.md):
 * - hypercall:  `mmu_update,mmuext_op`, numbers (`1,26`), sub-operations
 *               (`EVTCHNOP_send`, `GNTTABOP_setup_table`, `SCHEDOP_shutdown`...),
 *               optionally `&& <expr>` over arg0..arg5 and nr; or just `<expr>`.
 * - grant:      op names (`setup_table`, `map_grant_ref`, `copy`, ... and `write`
 *               for direct guest stores into a grant entry) and/or `ref 8-15`.
 * - pagefault:  address ranges `0xffff800000000000-0xffff8fffffffffff` or single
 *               addresses, error-code words `write`, `user`, `present`, `fetch`,
 *               `rsvd`, `pk`, `read`, `kernel`, `not-present` (a leading `!`
 *               negates), or an expression over `cr2` and `err` (`err & 2`);
 *               clauses joined by `&&` must all hold.
 * - trap:       vectors as numbers or names: `#GP,#PF,13`, `0x80`, ranges `32-47`.
 * - event:      ports `1,2,5-9`, optionally `send` or `upcall`.
 * - mmu-reject: errno names (`EINVAL`, `-EPERM`, comma separated) or a
 *               case-insensitive substring of Xen's reason.
 * - crash:      optional case-insensitive substring of the crash reason.
 * An empty condition always matches.
 */
import type { FilterId } from '../machine-api';
import { compileExpr, ExprError, type CompiledExpr } from './expr';
import {
  domidName,
  errnoName,
  HYPERCALL_NAMES,
  SEGBASE_NAMES,
  SHUTDOWN_REASONS,
  SUBOPS,
  VECTOR_NAMES,
  VMASST_TYPES,
  XEN_ERRNO,
} from './xen-names';
import { hypercallName } from './xen-names';
export { hypercallName };

/** All filter ids, in the order the adapter lists them. */
export const FILTER_IDS: readonly FilterId[] = [
  'hypercall',
  'grant',
  'pagefault',
  'trap',
  'event',
  'mmu-reject',
  'crash',
];

type Range = [bigint, bigint];

interface HypercallMatch {
  /** Hypercall numbers with an optional sub-op constraint; empty = any. */
  calls: { nr: number; subop?: number }[];
  expr?: CompiledExpr;
}
interface GrantMatch {
  ops: Set<number>;
  writes: boolean;
  refs: Range[];
}
interface PfMatch {
  ranges: Range[];
  set: number;
  clear: number;
  exprs: CompiledExpr[];
}
interface EventMatch {
  ports: Range[];
  kind?: 'send' | 'upcall';
}
interface RejectMatch {
  errnos?: Set<number>;
  text?: string;
}

/** Parses `a`, `a-b`, `a..b` (decimal or 0x hex) into an inclusive range; undefined when not a range. */
function parseRange(s: string): Range | undefined {
  const m = /^(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)(?:\s*(?:-|\.\.)\s*(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*))?$/.exec(
    s.trim(),
  );
  if (!m) return undefined;
  const a = BigInt(m[1].replace(/_/g, ''));
  const b = m[2] !== undefined ? BigInt(m[2].replace(/_/g, '')) : a;
  return a <= b ? [a, b] : [b, a];
}

function inRanges(v: bigint, ranges: Range[]): boolean {
  for (const [a, b] of ranges) if (v >= a && v <= b) return true;
  return false;
}

function splitItems(s: string): string[] {
  return s
    .split(/[,\s]+/)
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/** Hypercall name (or number, or `__HYPERVISOR_x`, or a sub-op like `EVTCHNOP_send`) -> match item; undefined if unknown. */
function lookupHypercall(word: string): { nr: number; subop?: number } | undefined {
  let w = word.trim();
  if (/^(0x[0-9a-f]+|[0-9]+)$/i.test(w)) {
    const n = Number(w);
    return n >= 0 && n < 64 ? { nr: n } : undefined;
  }
  w = w.replace(/^(__)?HYPERVISOR_/i, '');
  for (const [nr, name] of Object.entries(HYPERCALL_NAMES))
    if (name === w.toLowerCase()) return { nr: Number(nr) };
  for (const [nr, t] of Object.entries(SUBOPS)) {
    if (Number(nr) === 6) continue; // SCHEDOP_ names mean sched_op, not the compat call
    if (w.toUpperCase().startsWith(t.prefix)) {
      const rest = w.slice(t.prefix.length).toLowerCase();
      for (const [op, name] of Object.entries(t.names))
        if (name === rest) return { nr: Number(nr), subop: Number(op) };
    }
  }
  return undefined;
}

const GRANT_OPS: Record<string, number> = Object.fromEntries(
  Object.entries(SUBOPS[20].names).map(([k, v]) => [v, Number(k)]),
);

/** Page-fault error code bits (SDM vol. 3 §4.7). */
const PF_BITS: Record<string, number> = {
  present: 1,
  p: 1,
  write: 2,
  w: 2,
  user: 4,
  u: 4,
  rsvd: 8,
  fetch: 16,
  i: 16,
  pk: 32,
  ss: 64,
  sgx: 0x8000,
};

function compileOrThrow(filter: string, src: string): CompiledExpr {
  try {
    return compileExpr(src);
  } catch (e) {
    throw new Error(`${filter} filter condition: ${(e as Error).message} in '${src}'`);
  }
}

function evalBool(expr: CompiledExpr, vars: Record<string, bigint>): boolean {
  try {
    return expr.evaluate({ lookup: (n) => vars[n.toLowerCase()] }) !== 0n;
  } catch (e) {
    if (e instanceof ExprError) return false; // conditions that cannot be evaluated do not stop
    throw e;
  }
}

/**
 * The set of enabled hypervisor-level filters and their parsed conditions.
 * Owned by the Machine; engine/xen hooks call the predicate methods, which
 * never throw.
 */
export class FilterSet {
  private hc: HypercallMatch | null = null;
  private gr: GrantMatch | null = null;
  private pf: PfMatch | null = null;
  private tr: Range[] | null = null;
  private ev: EventMatch | null = null;
  private rj: RejectMatch | null = null;
  private cr: string | null = null;
  private readonly raw = new Map<FilterId, string>();

  /**
   * Enables `filter` with `condition` (empty/undefined = always), or disables it.
   * Throws Error with a user-facing message naming the filter and the bad part
   * of the condition; on error the previous setting stays in force.
   */
  set(filter: FilterId, enabled: boolean, condition?: string): void {
    const cond = (condition ?? '').trim();
    if (!enabled) {
      this.assign(filter, null);
      this.raw.delete(filter);
      return;
    }
    this.assign(filter, this.parse(filter, cond));
    this.raw.set(filter, cond);
  }

  /** True when `filter` is enabled (whatever its condition). */
  isEnabled(filter: FilterId): boolean {
    return this.raw.has(filter);
  }

  /** The condition text `filter` was enabled with ('' = always), or undefined when disabled. */
  condition(filter: FilterId): string | undefined {
    return this.raw.get(filter);
  }

  /** Should the machine stop before hypercall `nr` with raw argument registers `args` (arg0..arg5)? */
  hypercall(nr: number, args: bigint[]): boolean {
    const m = this.hc;
    if (!m) return false;
    if (m.calls.length > 0) {
      let hit = false;
      for (const c of m.calls) {
        if (c.nr !== nr) continue;
        if (c.subop === undefined) {
          hit = true;
          break;
        }
        const mask = SUBOPS[nr]?.mask;
        const cmd = args.length > 0 ? Number(BigInt.asUintN(32, args[0])) : -1;
        if ((mask !== undefined ? cmd & mask : cmd) === c.subop) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    if (m.expr) {
      const vars: Record<string, bigint> = { nr: BigInt(nr) };
      for (let i = 0; i < 6; i++) vars['arg' + i] = i < args.length ? args[i] : 0n;
      return evalBool(m.expr, vars);
    }
    return true;
  }

  /** Should the machine stop at grant_table_op sub-op `cmd` touching grant references `refs`? */
  grantOp(cmd: number, refs: number[]): boolean {
    const m = this.gr;
    if (!m) return false;
    const opsGiven = m.ops.size > 0 || m.writes;
    if (opsGiven && !m.ops.has(cmd)) return false;
    if (m.refs.length > 0) return refs.some((r) => inRanges(BigInt(r), m.refs));
    return true;
  }

  /** Should the machine stop at a direct guest store into grant entry `ref`? */
  grantEntryWrite(ref: number): boolean {
    const m = this.gr;
    if (!m) return false;
    const opsGiven = m.ops.size > 0 || m.writes;
    if (opsGiven && !m.writes) return false;
    if (m.refs.length > 0) return inRanges(BigInt(ref), m.refs);
    return true;
  }

  /** Should the machine stop at a guest page fault at `cr2` with `errorCode` (SDM §4.7 bits)? */
  pageFault(cr2: bigint, errorCode: number): boolean {
    const m = this.pf;
    if (!m) return false;
    const a = BigInt.asUintN(64, cr2);
    if (m.ranges.length > 0 && !inRanges(a, m.ranges)) return false;
    if ((errorCode & m.set) !== m.set || (errorCode & m.clear) !== 0) return false;
    for (const e of m.exprs)
      if (!evalBool(e, { cr2: a, err: BigInt(errorCode), error_code: BigInt(errorCode) })) return false;
    return true;
  }

  /** Should the machine stop when Xen bounces exception `vector` to the guest? */
  trap(vector: number): boolean {
    const m = this.tr;
    if (!m) return false;
    return m.length === 0 || inRanges(BigInt(vector), m);
  }

  /** Should the machine stop at an event on `port` (guest send, or upcall delivery of it)? */
  event(port: number, kind: 'send' | 'upcall'): boolean {
    const m = this.ev;
    if (!m) return false;
    if (m.kind && m.kind !== kind) return false;
    return m.ports.length === 0 || inRanges(BigInt(port), m.ports);
  }

  /** Should the machine stop after Xen refused an MMU request with `errno` (negative or positive) and `reason`? */
  mmuReject(errno: number, reason: string): boolean {
    const m = this.rj;
    if (!m) return false;
    if (m.errnos) return m.errnos.has(Math.abs(errno));
    if (m.text) return reason.toLowerCase().includes(m.text);
    return true;
  }

  /** Should the machine stop before tearing down a crashed domain? */
  crash(reason: string): boolean {
    if (this.cr === null) return false;
    return this.cr === '' || reason.toLowerCase().includes(this.cr);
  }

  private assign(filter: FilterId, v: unknown): void {
    switch (filter) {
      case 'hypercall':
        this.hc = v as HypercallMatch | null;
        break;
      case 'grant':
        this.gr = v as GrantMatch | null;
        break;
      case 'pagefault':
        this.pf = v as PfMatch | null;
        break;
      case 'trap':
        this.tr = v as Range[] | null;
        break;
      case 'event':
        this.ev = v as EventMatch | null;
        break;
      case 'mmu-reject':
        this.rj = v as RejectMatch | null;
        break;
      case 'crash':
        this.cr = v as string | null;
        break;
      default:
        throw new Error(`unknown filter '${String(filter)}' (known: ${FILTER_IDS.join(', ')})`);
    }
  }

  private parse(filter: FilterId, cond: string): unknown {
    switch (filter) {
      case 'hypercall':
        return parseHypercallCondition(cond);
      case 'grant':
        return parseGrantCondition(cond);
      case 'pagefault':
        return parsePageFaultCondition(cond);
      case 'trap':
        return parseTrapCondition(cond);
      case 'event':
        return parseEventCondition(cond);
      case 'mmu-reject':
        return parseRejectCondition(cond);
      case 'crash':
        return cond.toLowerCase();
      default:
        throw new Error(`unknown filter '${String(filter)}' (known: ${FILTER_IDS.join(', ')})`);
    }
  }
}

function parseHypercallCondition(cond: string): HypercallMatch {
  if (cond === '') return { calls: [] };
  const amp = cond.indexOf('&&');
  const head = (amp >= 0 ? cond.slice(0, amp) : cond).trim();
  const tail = amp >= 0 ? cond.slice(amp + 2).trim() : '';
  const items = head.split(',').map((s) => s.trim());
  const looksLikeList =
    head !== '' && items.every((s) => /^[A-Za-z_][A-Za-z0-9_]*$|^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s));
  const isVarOnly = items.length === 1 && /^(arg[0-5]|nr)$/i.test(items[0]);
  if (looksLikeList && !isVarOnly) {
    const calls: { nr: number; subop?: number }[] = [];
    for (const it of items) {
      const c = lookupHypercall(it);
      if (!c)
        throw new Error(
          `hypercall filter condition: unknown hypercall '${it}' (use a name such as mmu_update, a number 0-63, or a sub-op such as EVTCHNOP_send)`,
        );
      calls.push(c);
    }
    if (amp >= 0 && tail === '')
      throw new Error("hypercall filter condition: expected an expression after '&&'");
    return { calls, expr: tail !== '' ? compileOrThrow('hypercall', tail) : undefined };
  }
  // The whole condition is an expression over arg0..arg5 and nr.
  const expr = compileOrThrow('hypercall', cond);
  for (const n of expr.names) {
    if (!/^(arg[0-5]|nr)$/i.test(n)) {
      throw new Error(
        `hypercall filter condition: unknown name '${n}' (a condition is a list of hypercall names, optionally followed by '&& <expression over arg0..arg5, nr>')`,
      );
    }
  }
  return { calls: [], expr };
}

function parseGrantCondition(cond: string): GrantMatch {
  const m: GrantMatch = { ops: new Set(), writes: false, refs: [] };
  if (cond === '') return m;
  // Normalise "ref 8-15", "refs=8..15", "ref: 3" into items.
  const text = cond.replace(/\b(refs?)\s*[=:]?\s*/gi, 'ref ').replace(/\s*(-|\.\.)\s*/g, '$1');
  const items = splitItems(text);
  let inRefs = false;
  for (const it of items) {
    const low = it.toLowerCase();
    if (low === 'ref') {
      inRefs = true;
      continue;
    }
    const r = parseRange(it);
    if (r) {
      if (!inRefs) throw new Error(`grant filter condition: '${it}' must follow 'ref' (e.g. 'ref 8-15')`);
      if (r[1] > 0xffffffffn) throw new Error(`grant filter condition: grant reference ${it} out of range`);
      m.refs.push(r);
      continue;
    }
    inRefs = false;
    const name = low.replace(/^gnttabop_/, '');
    if (name === 'write' || name === 'writes') m.writes = true;
    else if (GRANT_OPS[name] !== undefined) m.ops.add(GRANT_OPS[name]);
    else
      throw new Error(
        `grant filter condition: unknown grant operation '${it}' (known: ${Object.keys(GRANT_OPS).join(', ')}, write, ref N-M)`,
      );
  }
  return m;
}

function parsePageFaultCondition(cond: string): PfMatch {
  const m: PfMatch = { ranges: [], set: 0, clear: 0, exprs: [] };
  if (cond === '') return m;
  for (const clauseRaw of cond.split('&&')) {
    const clause = clauseRaw.trim();
    if (clause === '') throw new Error("pagefault filter condition: empty clause around '&&'");
    const items = splitItems(clause.replace(/\s*(-|\.\.)\s*/g, '$1'));
    const simple = items.every((it) => parseRange(it) !== undefined || /^!?[a-z-]+$/i.test(it));
    const words = items.filter((it) => parseRange(it) === undefined);
    const allKnownWords = words.every((w) => {
      const neg = w.startsWith('!');
      const k = (neg ? w.slice(1) : w).toLowerCase();
      return (
        PF_BITS[k] !== undefined ||
        k === 'read' ||
        k === 'kernel' ||
        k === 'not-present' ||
        k === 'supervisor'
      );
    });
    if (simple && allKnownWords) {
      for (const it of items) {
        const r = parseRange(it);
        if (r) {
          m.ranges.push(r);
          continue;
        }
        const neg = it.startsWith('!');
        const k = (neg ? it.slice(1) : it).toLowerCase();
        let bit: number;
        let wantSet: boolean;
        if (k === 'read') [bit, wantSet] = [2, false];
        else if (k === 'kernel' || k === 'supervisor') [bit, wantSet] = [4, false];
        else if (k === 'not-present') [bit, wantSet] = [1, false];
        else [bit, wantSet] = [PF_BITS[k], true];
        if (neg) wantSet = !wantSet;
        if (wantSet) m.set |= bit;
        else m.clear |= bit;
      }
      continue;
    }
    const expr = compileOrThrow('pagefault', clause);
    for (const n of expr.names) {
      if (!/^(cr2|err|error_code)$/i.test(n)) {
        throw new Error(
          `pagefault filter condition: unknown word '${n}' (use address ranges like 0xffff800000000000-0xffff8fffffffffff, write/user/present/fetch/rsvd/read/kernel, or an expression over cr2 and err)`,
        );
      }
    }
    m.exprs.push(expr);
  }
  if ((m.set & m.clear) !== 0)
    throw new Error('pagefault filter condition: an error-code bit is required both set and clear');
  return m;
}

function parseTrapCondition(cond: string): Range[] {
  const out: Range[] = [];
  for (const it of splitItems(cond.replace(/\s*(-|\.\.)\s*/g, '$1'))) {
    const r = parseRange(it);
    if (r) {
      if (r[1] > 255n) throw new Error(`trap filter condition: vector ${it} out of range 0-255`);
      out.push(r);
      continue;
    }
    const name = it.replace(/^#/, '').toUpperCase();
    const v = VECTOR_NAMES[name];
    if (v === undefined)
      throw new Error(
        `trap filter condition: unknown vector '${it}' (use numbers 0-255 or names like #GP, #PF, #UD, #DB, #BP, #NM, #DE)`,
      );
    out.push([BigInt(v), BigInt(v)]);
  }
  return out;
}

function parseEventCondition(cond: string): EventMatch {
  const m: EventMatch = { ports: [] };
  for (const it of splitItems(cond.replace(/\s*(-|\.\.)\s*/g, '$1'))) {
    const low = it.toLowerCase();
    if (low === 'send' || low === 'upcall') {
      if (m.kind && m.kind !== low)
        throw new Error("event filter condition: give at most one of 'send' and 'upcall'");
      m.kind = low;
      continue;
    }
    const r = parseRange(low.replace(/^port/, ''));
    if (!r)
      throw new Error(
        `event filter condition: '${it}' is not a port, a port range (5-9), 'send' or 'upcall'`,
      );
    if (r[1] > 0xffffffffn) throw new Error(`event filter condition: port ${it} out of range`);
    m.ports.push(r);
  }
  return m;
}

function parseRejectCondition(cond: string): RejectMatch {
  if (cond === '') return {};
  const items = cond.split(',').map((s) => s.trim().replace(/^-/, ''));
  if (items.every((s) => XEN_ERRNO[s.toUpperCase()] !== undefined)) {
    return { errnos: new Set(items.map((s) => XEN_ERRNO[s.toUpperCase()])) };
  }
  return { text: cond.toLowerCase() };
}

// ---------------------------------------------------------------------------
// Hypercall descriptions

type Kind = 'ptr' | 'uint' | 'int' | 'hex' | 'domid' | 'cmd' | 'skip';
interface ArgSpec {
  name: string;
  kind: Kind;
}

function a(name: string, kind: Kind): ArgSpec {
  return { name, kind };
}

/** Per-hypercall argument layout (64-bit); `spec32` when the 32-bit layout differs. */
const SPECS: Record<number, { spec: ArgSpec[]; spec32?: ArgSpec[] }> = {
  0: { spec: [a('table', 'ptr')] },
  1: { spec: [a('req', 'ptr'), a('count', 'uint'), a('done', 'ptr'), a('foreigndom', 'domid')] },
  2: { spec: [a('frame_list', 'ptr'), a('entries', 'uint')] },
  3: { spec: [a('ss', 'hex'), a('sp', 'hex')] },
  4: {
    spec: [a('event', 'ptr'), a('failsafe', 'ptr'), a('syscall', 'ptr')],
    spec32: [a('event_cs', 'hex'), a('event', 'ptr'), a('failsafe_cs', 'hex'), a('failsafe', 'ptr')],
  },
  5: { spec: [a('set', 'int')] },
  6: { spec: [a('cmd', 'cmd'), a('arg', 'uint')] },
  7: { spec: [a('op', 'ptr')] },
  8: { spec: [a('reg', 'int'), a('value', 'hex')] },
  9: { spec: [a('reg', 'int')] },
  10: { spec: [a('maddr', 'hex'), a('desc', 'hex')] },
  12: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  13: { spec: [a('list', 'ptr'), a('count', 'uint')] },
  14: { spec: [a('va', 'hex'), a('pte', 'hex'), a('flags', 'hex')] },
  15: { spec: [a('timeout', 'uint')] },
  16: { spec: [a('op', 'ptr')] },
  17: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  18: { spec: [a('cmd', 'cmd'), a('count', 'uint'), a('buf', 'ptr')] },
  19: { spec: [a('op', 'ptr')] },
  20: { spec: [a('cmd', 'cmd'), a('ops', 'ptr'), a('count', 'uint')] },
  21: { spec: [a('cmd', 'cmd'), a('type', 'uint')] },
  22: { spec: [a('va', 'hex'), a('pte', 'hex'), a('flags', 'hex'), a('domid', 'domid')] },
  23: { spec: [] },
  24: { spec: [a('cmd', 'cmd'), a('vcpuid', 'uint'), a('arg', 'ptr')] },
  25: { spec: [a('which', 'uint'), a('base', 'hex')] },
  26: { spec: [a('ops', 'ptr'), a('count', 'uint'), a('done', 'ptr'), a('foreigndom', 'domid')] },
  27: { spec: [a('op', 'ptr')] },
  28: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  29: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  30: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  32: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  33: { spec: [a('cmd', 'cmd'), a('arg', 'ptr')] },
  34: { spec: [a('op', 'uint'), a('arg', 'ptr')] },
  35: { spec: [a('op', 'ptr')] },
  36: { spec: [a('op', 'ptr')] },
  37: { spec: [a('op', 'uint'), a('arg', 'ptr')] },
  39: { spec: [a('cmd', 'uint'), a('arg1', 'ptr'), a('arg2', 'ptr'), a('arg3', 'uint'), a('arg4', 'uint')] },
  40: { spec: [a('op', 'uint'), a('arg', 'ptr')] },
  41: { spec: [a('domid', 'domid'), a('nr_bufs', 'uint'), a('bufs', 'ptr')] },
  42: { spec: [a('cmd', 'uint'), a('arg1', 'ptr'), a('arg2', 'uint'), a('arg3', 'ptr'), a('arg4', 'uint')] },
  48: { spec: [a('op', 'ptr')] },
};

function hexs(v: bigint): string {
  return '0x' + v.toString(16);
}

/** Name of sub-op `cmd` of multiplexed hypercall `nr` with its prefix (e.g. `EVTCHNOP_send`), or undefined. */
export function subopName(nr: number, cmd: number): string | undefined {
  const t = SUBOPS[nr];
  if (!t) return undefined;
  const n = t.names[t.mask !== undefined ? cmd & t.mask : cmd];
  return n === undefined ? undefined : t.prefix + n;
}

/**
 * One-line description and decoded details of hypercall `nr` with raw
 * argument registers `args` (arg0..: 64-bit RDI, RSI, RDX, R10, R8, R9;
 * 32-bit EBX, ECX, EDX, ESI, EDI, EBP) for a guest of width `bits`.
 * Description: `hypercall mmu_update(req=0xffff800000123000, count=3, done=NULL, DOMID_SELF)`.
 * Details: `nr`, `name`, `bits`, each decoded argument by name (strings/numbers),
 * `subop` for multiplexed calls, and raw `arg0..argN` hex strings. Never throws.
 * Layouts: shared/design/xen-pv-abi.md §3.2 (Xen public/xen.h and friends).
 */
export function describeHypercall(
  nr: number,
  args: bigint[],
  bits: 32 | 64,
): { name: string; description: string; details: Record<string, string | number | boolean> } {
  const name = hypercallName(nr);
  const w = bits === 32 ? 32 : 64;
  const raw = (i: number): bigint => BigInt.asUintN(w, i < args.length ? args[i] : 0n);
  const details: Record<string, string | number | boolean> = { nr, name, bits };
  const parts: string[] = [];
  const entry = SPECS[nr];
  const specs = entry
    ? bits === 32 && entry.spec32
      ? entry.spec32
      : entry.spec
    : [a('arg0', 'hex'), a('arg1', 'hex'), a('arg2', 'hex')];
  let i = 0;
  // 32-bit calls that split 64-bit values into (lo, hi) register pairs.
  const pair = (lo: number): bigint => raw(lo) | (raw(lo + 1) << 32n);
  if (bits === 32 && (nr === 10 || nr === 14 || nr === 15 || nr === 22)) {
    if (nr === 10) {
      const maddr = pair(0);
      const desc = pair(2);
      parts.push(`maddr=${hexs(maddr)}`, `desc=${hexs(desc)}`);
      details.maddr = hexs(maddr);
      details.desc = hexs(desc);
    } else if (nr === 15) {
      const t = pair(0);
      parts.push(t === 0n ? 'timeout=0 (cancel)' : `timeout=${t}ns`);
      details.timeout = t.toString();
    } else {
      const va = raw(0);
      const pte = pair(1);
      const flags = raw(3);
      parts.push(`va=${hexs(va)}`, `pte=${hexs(pte)}`, `flags=${uvmfFlags(flags)}`);
      details.va = hexs(va);
      details.pte = hexs(pte);
      details.flags = uvmfFlags(flags);
      if (nr === 22) {
        parts.push(domidName(Number(raw(4) & 0xffffn)));
        details.domid = domidName(Number(raw(4) & 0xffffn));
      }
    }
  } else {
    for (const s of specs) {
      const v = raw(i);
      i++;
      let text: string;
      let det: string | number;
      switch (s.kind) {
        case 'ptr':
          text = v === 0n ? 'NULL' : hexs(v);
          det = text;
          break;
        case 'uint': {
          if ((nr === 1 || nr === 26) && s.name === 'count' && (v & 0x80000000n) !== 0n) {
            text = `${v & 0x7fffffffn}|MMU_UPDATE_PREEMPTED`;
            det = text;
          } else if (nr === 21 && s.name === 'type') {
            text =
              VMASST_TYPES[Number(v)] !== undefined ? `VMASST_TYPE_${VMASST_TYPES[Number(v)]}` : v.toString();
            det = text;
          } else if (
            nr === 6 &&
            s.name === 'arg' &&
            raw(0) === 2n &&
            SHUTDOWN_REASONS[Number(v)] !== undefined
          ) {
            text = `SHUTDOWN_${SHUTDOWN_REASONS[Number(v)]}`;
            det = text;
          } else if (nr === 25 && s.name === 'which') {
            text = SEGBASE_NAMES[Number(v)] ?? v.toString();
            det = text;
          } else if (nr === 15 && s.name === 'timeout') {
            text = v === 0n ? 'timeout=0 (cancel)' : `timeout=${BigInt.asIntN(64, v)}ns`;
            det = BigInt.asIntN(64, v).toString();
            parts.push(text);
            details[s.name] = det;
            continue;
          } else {
            text = v.toString();
            det = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
          }
          break;
        }
        case 'int': {
          const sv = BigInt.asIntN(w, v);
          text = sv.toString();
          det = Number(sv);
          break;
        }
        case 'domid': {
          if (nr === 1 || nr === 26) {
            const fd = Number(v & 0xffffn);
            const pfd = Number((v >> 16n) & 0xffffn);
            text = domidName(fd) + (pfd !== 0 ? `, pfd=${domidName(pfd - 1)}` : '');
          } else text = domidName(Number(v & 0xffffn));
          det = text;
          parts.push(text);
          details[s.name] = det;
          continue;
        }
        case 'cmd': {
          const sub = subopName(nr, Number(v & 0xffffffffn));
          text = sub ?? v.toString();
          if (nr === 12 && v >> 6n !== 0n) text += ` (continue at extent ${v >> 6n})`;
          det = text;
          if (sub) details.subop = sub;
          parts.push(text);
          details[s.name] = det;
          continue;
        }
        case 'hex':
        default:
          if (nr === 14 && s.name === 'flags') text = uvmfFlags(v);
          else text = hexs(v);
          det = text;
          break;
      }
      parts.push(`${s.name}=${text}`);
      details[s.name] = det;
    }
  }
  const n = Math.max(specs.length, Math.min(args.length, 6));
  for (let k = 0; k < n && k < 6; k++) details['arg' + k] = hexs(raw(k));
  return { name, description: `hypercall ${name}(${parts.join(', ')})`, details };
}

/** update_va_mapping flags: UVMF_NONE/TLB_FLUSH/INVLPG | LOCAL/ALL, or MULTI with a vCPU mask pointer. */
function uvmfFlags(v: bigint): string {
  const type = Number(v & 3n);
  const t = ['UVMF_NONE', 'UVMF_TLB_FLUSH', 'UVMF_INVLPG', 'UVMF_3'][type];
  const rest = v & ~7n;
  if (rest !== 0n) return `${t}|UVMF_MULTI(mask=${hexs(rest)})`;
  return `${t}|${(v & 4n) !== 0n ? 'UVMF_ALL' : 'UVMF_LOCAL'}`;
}

/** Errno name helper re-exported for the adapter and the hypervisor (e.g. -22 -> 'EINVAL'). */
export { errnoName };
