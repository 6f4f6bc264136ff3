/**
 * xenstored: the XenStore daemon of the emulated dom0.
 *
 * One tree of nodes (value bytes, permission list, ordered child names,
 * generation count) shared by the toolstack (this class's direct methods,
 * acting as dom0 with full privilege) and the guests (one connection per
 * domain on its xenstore ring page, speaking `xsd_sockmsg`).
 *
 * Behaviour follows Xen's C xenstored (tools/xenstored/core.c, domain.c,
 * watch.c, transaction.c) and docs/misc/xenstore.txt, xenstore-ring.txt:
 * - request types, payload formats and error strings of io/xs_wire.h;
 *   unknown or server-only message types get `ENOSYS` (core.c
 *   process_message), privileged ones (CONTROL, INTRODUCE, RELEASE,
 *   IS_DOMAIN_INTRODUCED, RESUME, SET_TARGET, GET/SET_FEATURE,
 *   GET/SET_QUOTA) `EACCES` for a domU;
 * - relative paths live under `/local/domain/<domid>/`; path characters
 *   `[A-Za-z0-9-/_@]`, no `//`, no trailing `/`, at most 2048 characters
 *   after a `/local/domain/<n>/` prefix (XENSTORE_REL_PATH_MAX);
 * - permissions `n`/`r`/`w`/`b` + domid, first entry = owner and default;
 *   owners and dom0 get everything; a domU creating a node owns it;
 *   an error on a missing node becomes `EACCES` when the nearest existing
 *   ancestor is not accessible (errno_from_parents);
 * - quotas for unprivileged domains: 1000 nodes, node size 2048 bytes
 *   (16-byte header + 8 bytes per permission + value + child names), 128
 *   watches, 10 transactions, 1024 nodes touched per transaction, 5
 *   permissions per node, 20 outstanding replies;
 * - watches fire once on registration and then for the changed path when
 *   it is the watched node or below it (removals fire for every removed
 *   node), only toward watchers that can read the node or its parent;
 *   relative watches get relative paths;
 * - transactions see a private copy; commit fails with `EAGAIN` when any
 *   node the transaction touched changed meanwhile (generation counts);
 * - ring misuse (indices more than 1024 apart, payload > 4096 bytes)
 *   makes xenstored ignore the connection and set the ring's `error`
 *   field (XENSTORE_ERROR_RINGIDX 2 / XENSTORE_ERROR_PROTO 3), until the
 *   guest asks for a reconnect (`connection` = 1).
 *
 * Deterministic: nothing happens on a timer; connections are served when
 * their `kick()` runs. Nothing here throws because of guest input.
 */
import type { MachineMemory } from '../memory/machine-memory';
import type { XenstoreNode, XenstoreWatchInfo } from '../machine-api';

/** xsd_sockmsg_type values (Xen public/io/xs_wire.h). */
export const XS_CONTROL = 0;
export const XS_DIRECTORY = 1;
export const XS_READ = 2;
export const XS_GET_PERMS = 3;
export const XS_WATCH = 4;
export const XS_UNWATCH = 5;
export const XS_TRANSACTION_START = 6;
export const XS_TRANSACTION_END = 7;
export const XS_INTRODUCE = 8;
export const XS_RELEASE = 9;
export const XS_GET_DOMAIN_PATH = 10;
export const XS_WRITE = 11;
export const XS_MKDIR = 12;
export const XS_RM = 13;
export const XS_SET_PERMS = 14;
export const XS_WATCH_EVENT = 15;
export const XS_ERROR = 16;
export const XS_IS_DOMAIN_INTRODUCED = 17;
export const XS_RESUME = 18;
export const XS_SET_TARGET = 19;
export const XS_RESET_WATCHES = 21;
export const XS_DIRECTORY_PART = 22;
export const XS_GET_FEATURE = 23;
export const XS_SET_FEATURE = 24;
export const XS_GET_QUOTA = 25;
export const XS_SET_QUOTA = 26;

/** Layout of xenstore_domain_interface (Xen public/io/xs_wire.h), byte offsets in the ring page. */
export const XENSTORE_RING_SIZE = 1024;
export const XS_RING_REQ = 0x0;
export const XS_RING_RSP = 0x400;
export const XS_RING_REQ_CONS = 0x800;
export const XS_RING_REQ_PROD = 0x804;
export const XS_RING_RSP_CONS = 0x808;
export const XS_RING_RSP_PROD = 0x80c;
export const XS_RING_SERVER_FEATURES = 0x810;
export const XS_RING_CONNECTION = 0x814;
export const XS_RING_ERROR = 0x818;
/** Largest payload of one message (XENSTORE_PAYLOAD_MAX). */
export const XENSTORE_PAYLOAD_MAX = 4096;
/** server_features bits. */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
/** `connection` values. */
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
/** `error` values. */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;

/** Quotas of C xenstored for unprivileged domains (tools/xenstored/domain.c defaults). */
export const XS_QUOTA = {
  nodes: 1000,
  watches: 128,
  outstanding: 20,
  transactions: 10,
  transactionNodes: 1024,
  nodePerms: 5,
  pathMax: 2048,
  nodeSize: 2048,
  /** Bytes of queued output after which watch events are dropped (memory quota, 2.5 MiB). */
  memory: 2.5 * 1024 * 1024,
} as const;

const HDR = 16;
const NODE_HDR_SIZE = 16;
const PERM_SIZE = 8;

type PermChar = 'n' | 'r' | 'w' | 'b';
/** One permission entry: domain `id` gets `perm`. */
interface XsPerm {
  id: number;
  perm: PermChar;
  /** Entry names a domain that does not exist (xenstored's XS_PERM_IGNORE). */
  ignore?: boolean;
}
/** A node as stored. Records are immutable: every change stores a new one. */
interface NodeRec {
  value: Uint8Array;
  perms: XsPerm[];
  children: string[];
  generation: number;
}

const PERM_READ = 1;
const PERM_WRITE = 2;
const PERM_OWNER = 4;

function permBits(p: PermChar): number {
  return p === 'r' ? PERM_READ : p === 'w' ? PERM_WRITE : p === 'b' ? PERM_READ | PERM_WRITE : 0;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8');
/**
 * Paths, tokens and arguments on the wire are byte strings: keep every
 * byte (ISO-8859-1 both ways) so a token comes back exactly as sent.
 */
function wireString(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}
function wireBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** Error carrying a xenstored error name (`ENOENT`, `EACCES`, ...). */
class XsError extends Error {
  constructor(readonly errname: string) {
    super(errname);
  }
}
function fail(name: string): never {
  throw new XsError(name);
}

interface Watch {
  /** Canonical (absolute or `@special`) path. */
  path: string;
  token: string;
  /** Prefix to strip from reported paths (`/local/domain/N`), or null for an absolute watch. */
  relativeTo: string | null;
}

interface InternalWatch {
  path: string;
  token: string;
  cb: (path: string, token: string) => void;
}

interface Transaction {
  id: number;
  store: Map<string, NodeRec>;
  /** Path -> generation seen at first access (-1: did not exist). */
  accessed: Map<string, number>;
  modified: Set<string>;
  /** Watch events to fire at commit. */
  events: PendingEvent[];
  failed: boolean;
}

interface PendingEvent {
  path: string;
  exact: boolean;
  /** The node as it was when the change happened (for the watchers' read check), if it exists. */
  node: NodeRec | undefined;
  parent: NodeRec | undefined;
  oldPerms?: XsPerm[];
}

/** Who is performing an operation. */
interface Actor {
  domid: number;
  priv: boolean;
  tx: Transaction | null;
  conn: Connection | null;
}

/** Information about a domain the toolstack introduced (`introduceDomain`). */
export interface XenstoreDomainOptions {
  name: string;
  /** Guest RAM, KiB (memory/target, memory/static-max). */
  memoryKiB: number;
  vcpus: number;
  /** `uuid` of the /vm/<uuid> entry; derived from the domid when absent. */
  uuid?: string;
  /** start_info.store_mfn and store_evtchn (store/ring-ref, store/port). */
  storeMfn?: number;
  storePort?: number;
  /** start_info.console.domU.mfn and .evtchn (console/ring-ref, console/port). */
  consoleMfn?: number;
  consolePort?: number;
}

/** The guest side of one connection, returned by `Xenstored.connect`. */
export interface XenstoreConnection {
  /** Serve the ring: consume complete requests, write replies and watch events, notify. Never throws. */
  kick(): void;
}

class Connection {
  inHdr = new Uint8Array(HDR);
  inHdrUsed = 0;
  inBody: Uint8Array | null = null;
  inBodyUsed = 0;
  out: Uint8Array[] = [];
  /** Bytes of out[0] already written. */
  outUsed = 0;
  outBytes = 0;
  /** Number of queued replies (not watch events) (outstanding quota). */
  outReplies = 0;
  /** Parallel to `out`: true for watch events. */
  outIsEvent: boolean[] = [];
  watches: Watch[] = [];
  transactions = new Map<number, Transaction>();
  nextTxId = 1;
  ignored = false;
  /** Why the connection was ignored, for inspection. */
  ignoredReason = '';
  constructor(
    readonly domid: number,
    readonly mem: MachineMemory,
    readonly offset: number,
    readonly notifyGuest: () => void,
  ) {}
}

function validChars(p: string): boolean {
  return /^[A-Za-z0-9\-/_@]*$/.test(p);
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** True when `path` is `base` or below it. */
function isChild(path: string, base: string): boolean {
  if (path === base) return true;
  if (base === '/') return path.startsWith('/');
  return path.startsWith(base) && path.charCodeAt(base.length) === 0x2f;
}

function permsToStrings(perms: XsPerm[]): string[] {
  return perms.map((p) => `${p.perm}${p.id}`);
}

/** Parses `["n0","r1"]` into entries; null on a malformed entry (xenstore_strings_to_perms). */
function parsePerms(list: string[]): XsPerm[] | null {
  const out: XsPerm[] = [];
  for (const s of list) {
    const c = s[0];
    if (c !== 'n' && c !== 'r' && c !== 'w' && c !== 'b') return null;
    const num = s.slice(1);
    if (!/^[0-9]+$/.test(num)) return null;
    const id = Number(num);
    if (id > 0xffff) return null;
    out.push({ id, perm: c });
  }
  return out;
}

function splitStrings(buf: Uint8Array): { strings: string[]; rest: number } {
  // Returns the NUL-terminated strings and the offset after the last NUL.
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === 0) {
      strings.push(wireString(buf.subarray(start, i)));
      start = i + 1;
    }
  }
  return { strings, rest: start };
}

/** The single argument of a request: exactly one NUL, at the end (core.c onearg). */
function oneArg(buf: Uint8Array): string | null {
  if (buf.length === 0) return null;
  const nul = buf.indexOf(0);
  if (nul !== buf.length - 1) return null;
  return wireString(buf.subarray(0, nul));
}

function nodeSize(rec: { value: Uint8Array; perms: XsPerm[]; children: string[] }): number {
  let childlen = 0;
  for (const c of rec.children) childlen += enc.encode(c).length + 1;
  return NODE_HDR_SIZE + PERM_SIZE * rec.perms.length + rec.value.length + childlen;
}

/**
 * The XenStore daemon. The toolstack side (`write`, `read`, `mkdir`, `rm`,
 * `setPerms`, `watch`) acts as dom0 with full privilege; guests talk
 * through `connect`.
 */
export class Xenstored {
  private nodes = new Map<string, NodeRec>();
  private generation = 0;
  private conns = new Map<number, Connection>();
  private internalWatches: InternalWatch[] = [];
  private callbacks: (() => void)[] = [];
  private runningCallbacks = false;
  /** Domains known to exist (dom0 and introduced guests): permission entries naming others are ignored. */
  private knownDomains = new Set<number>([0]);
  /**
   * Called after each guest request with one line such as
   * `WRITE device/vbd/51712/state|3 -> OK|` (NULs shown as `|`, other
   * control bytes as `\xNN`, at most 200 characters of payload each way).
   */
  onTrace: ((domid: number, line: string) => void) | null = null;
  /** Log lines (ring misuse, dropped connections), oldest first; capped at 200. */
  readonly log: string[] = [];

  constructor() {
    const root: XsPerm[] = [{ id: 0, perm: 'n' }];
    this.setRaw('/', { value: new Uint8Array(0), perms: root, children: [], generation: 0 });
    this.setRaw('@introduceDomain', { value: new Uint8Array(0), perms: root, children: [], generation: 0 });
    this.setRaw('@releaseDomain', { value: new Uint8Array(0), perms: root, children: [], generation: 0 });
    this.write('/tool/xenstored', '');
    this.write('/local/domain/0/name', 'Domain-0');
    this.write('/local/domain/0/domid', '0');
  }

  // ---------------------------------------------------------------- toolstack API

  /**
   * Writes `value` at absolute `path` as dom0 (creating missing parents,
   * which inherit their parent's permissions). Fires watches.
   * @throws Error for an invalid path (toolstack bug, never guest input).
   */
  write(path: string, value: string | Uint8Array): void {
    this.toolstack((a) =>
      this.opWrite(a, this.apiPath(path), typeof value === 'string' ? enc.encode(value) : value),
    );
  }

  /** Value at absolute `path` (UTF-8 decoded), or undefined when the node does not exist. */
  read(path: string): string | undefined {
    const rec = this.nodes.get(this.apiPath(path));
    return rec ? dec.decode(rec.value) : undefined;
  }

  /** Creates `path` (and parents) with an empty value if missing, as dom0. */
  mkdir(path: string): void {
    this.toolstack((a) => this.opMkdir(a, this.apiPath(path)));
  }

  /** Removes `path` and everything below it, as dom0; a missing node is fine. */
  rm(path: string): void {
    const p = this.apiPath(path);
    if (p === '/') throw new Error('xenstored: cannot remove /');
    this.toolstack((a) => {
      if (this.getNode(a, p)) this.opRm(a, p);
    });
  }

  /**
   * Sets the permission list of an existing node, e.g. `['n0', 'r1']`
   * (first entry: owner and default for everyone else).
   * @throws Error for a missing node or a malformed permission string.
   */
  setPerms(path: string, perms: string[]): void {
    const p = this.apiPath(path);
    const parsed = parsePerms(perms);
    if (!parsed || parsed.length === 0)
      throw new Error(`xenstored: bad permissions ${JSON.stringify(perms)}`);
    if (!this.nodes.has(p)) throw new Error(`xenstored: no node ${p}`);
    this.toolstack((a) => this.opSetPerms(a, p, parsed));
  }

  /** Permission strings of `path`, or undefined when it does not exist. */
  getPerms(path: string): string[] | undefined {
    const rec = this.nodes.get(this.apiPath(path));
    return rec ? permsToStrings(rec.perms) : undefined;
  }

  /** Child names of `path` in creation order, or undefined when it does not exist. */
  directory(path: string): string[] | undefined {
    const rec = this.nodes.get(this.apiPath(path));
    return rec ? rec.children.slice() : undefined;
  }

  /**
   * Registers a dom0 (toolstack/backend) watch. Like a guest watch it fires
   * once right away, then whenever `path` or a node below it changes.
   * Callbacks run after the request that caused them has been answered
   * (never re-entrantly inside a store operation).
   * @returns a function removing the watch.
   */
  watch(path: string, token: string, cb: (path: string, token: string) => void): () => void {
    const p = path.startsWith('@') ? path : this.apiPath(path);
    const w: InternalWatch = { path: p, token, cb };
    this.internalWatches.push(w);
    this.callbacks.push(() => cb(p, token));
    this.runCallbacks();
    return () => {
      const i = this.internalWatches.indexOf(w);
      if (i >= 0) this.internalWatches.splice(i, 1);
    };
  }

  /** The subtree at `path` (default `/`), or null when it does not exist. Values are UTF-8 decoded. */
  tree(path = '/'): XenstoreNode | null {
    let p: string;
    try {
      p = this.apiPath(path);
    } catch {
      return null;
    }
    const build = (np: string, depth: number): XenstoreNode | null => {
      const rec = this.nodes.get(np);
      if (!rec) return null;
      const children: XenstoreNode[] = [];
      if (depth < 1100) {
        for (const c of rec.children) {
          const n = build(np === '/' ? `/${c}` : `${np}/${c}`, depth + 1);
          if (n) children.push(n);
        }
      }
      return { path: np, value: dec.decode(rec.value), perms: permsToStrings(rec.perms), children };
    };
    return build(p, 0);
  }

  /** Every registered watch: guests' (by domid) and dom0's internal ones (domid 0). */
  watches(): XenstoreWatchInfo[] {
    const out: XenstoreWatchInfo[] = [];
    for (const w of this.internalWatches) out.push({ domid: 0, path: w.path, token: w.token });
    for (const c of this.conns.values())
      for (const w of c.watches) out.push({ domid: c.domid, path: w.path, token: w.token });
    return out;
  }

  /**
   * Creates the standard tree of a new domain as xl/libxl does
   * (libxl_create.c libxl__domain_make / libxl__build_post):
   * `/local/domain/N` owned by dom0 and readable by N, with `vm`, `name`,
   * `domid`, `cpu/`, `memory/`, `device/`, `control/` (dom0-owned,
   * readable), guest-writable `control/shutdown`, `control/feature-*`,
   * `control/sysrq`, `data`, `drivers`, `feature`, `attr`, `error`,
   * `device/suspend/event-channel`; `store/` and `console/` entries; the
   * `/vm/<uuid>` directory. Fires `@introduceDomain`.
   */
  introduceDomain(domid: number, opts: XenstoreDomainOptions): void {
    if (!Number.isInteger(domid) || domid <= 0 || domid >= 0x7ff0)
      throw new Error(`xenstored: bad domid ${domid}`);
    this.knownDomains.add(domid);
    const dom = `/local/domain/${domid}`;
    const uuid = opts.uuid ?? `00000000-0000-0000-0000-${domid.toString(16).padStart(12, '0')}`;
    const vm = `/vm/${uuid}`;
    const ro = [`n0`, `r${domid}`];
    const rw = [`n${domid}`];
    this.rm(dom);
    this.mkdir(dom);
    this.setPerms(dom, ro);
    this.mkdir(vm);
    this.setPerms(vm, ro);
    this.write(`${vm}/uuid`, uuid);
    this.write(`${vm}/name`, opts.name);
    this.mkdir(`/libxl/${domid}`);
    this.write(`${dom}/vm`, vm);
    this.write(`${dom}/name`, opts.name);
    this.write(`${dom}/domid`, String(domid));
    for (const d of ['cpu', 'memory', 'device', 'control']) this.mkdir(`${dom}/${d}`);
    for (const n of [
      'control/shutdown',
      'control/feature-poweroff',
      'control/feature-reboot',
      'control/feature-suspend',
      'control/sysrq',
      'device/suspend/event-channel',
      'data',
      'drivers',
      'feature',
      'attr',
      'error',
    ]) {
      this.mkdir(`${dom}/${n}`);
      this.setPerms(`${dom}/${n}`, rw);
    }
    this.write(`${dom}/control/platform-feature-multiprocessor-suspend`, '1');
    this.write(`${dom}/control/platform-feature-xs_reset_watches`, '1');
    for (let i = 0; i < opts.vcpus; i++) this.write(`${dom}/cpu/${i}/availability`, 'online');
    this.write(`${dom}/memory/static-max`, String(opts.memoryKiB));
    this.write(`${dom}/memory/target`, String(opts.memoryKiB));
    this.write(`${dom}/memory/videoram`, '-1');
    if (opts.storeMfn !== undefined) this.write(`${dom}/store/ring-ref`, String(opts.storeMfn));
    if (opts.storePort !== undefined) this.write(`${dom}/store/port`, String(opts.storePort));
    // Console 0: frontend entries owned by the guest, readable by the backend (dom0).
    this.mkdir(`${dom}/console`);
    this.setPerms(`${dom}/console`, [`n${domid}`, 'r0']);
    const conBack = `/local/domain/0/backend/console/${domid}/0`;
    this.write(`${dom}/console/backend`, conBack);
    this.write(`${dom}/console/backend-id`, '0');
    this.write(`${dom}/console/limit`, '1048576');
    this.write(`${dom}/console/type`, 'xenconsoled');
    this.write(`${dom}/console/output`, 'pty');
    this.write(`${dom}/console/tty`, '');
    if (opts.consoleMfn !== undefined) this.write(`${dom}/console/ring-ref`, String(opts.consoleMfn));
    if (opts.consolePort !== undefined) this.write(`${dom}/console/port`, String(opts.consolePort));
    this.mkdir(conBack);
    this.setPerms(conBack, ['n0', `r${domid}`]);
    this.write(`${conBack}/frontend`, `${dom}/console`);
    this.write(`${conBack}/frontend-id`, String(domid));
    this.write(`${conBack}/online`, '1');
    this.write(`${conBack}/state`, '1');
    this.write(`${conBack}/protocol`, 'vt100');
    this.toolstack((a) =>
      this.queueEvent(a, {
        path: '@introduceDomain',
        exact: false,
        node: this.nodes.get('@introduceDomain'),
        parent: undefined,
      }),
    );
  }

  /** Forgets a domain: drops its connection, removes `/local/domain/N` and fires `@releaseDomain`. */
  releaseDomain(domid: number): void {
    this.conns.delete(domid);
    this.knownDomains.delete(domid);
    this.rm(`/local/domain/${domid}`);
    this.toolstack((a) =>
      this.queueEvent(a, {
        path: '@releaseDomain',
        exact: false,
        node: this.nodes.get('@releaseDomain'),
        parent: undefined,
      }),
    );
  }

  /**
   * Attaches domain `domid`'s xenstore ring. `ring.offset` is the buffer
   * offset (in `ring.mem`) of the 4 KiB xenstore_domain_interface page.
   * Writes server_features (reconnection, error) and clears connection/error.
   * `notifyGuest` is called after replies or events were written (the
   * caller raises the guest's store event channel).
   */
  connect(
    domid: number,
    ring: { mem: MachineMemory; offset: number },
    notifyGuest: () => void,
  ): XenstoreConnection {
    if (ring.offset < 0 || ring.offset % 4096 !== 0 || ring.offset + 4096 > ring.mem.u8.length) {
      throw new Error(`xenstored: bad ring offset ${ring.offset}`);
    }
    this.knownDomains.add(domid);
    const conn = new Connection(domid, ring.mem, ring.offset, notifyGuest);
    this.conns.set(domid, conn);
    const m = ring.mem;
    m.write32(
      ring.offset + XS_RING_SERVER_FEATURES,
      XENSTORE_SERVER_FEATURE_RECONNECTION | XENSTORE_SERVER_FEATURE_ERROR,
    );
    m.write32(ring.offset + XS_RING_CONNECTION, XENSTORE_CONNECTED);
    m.write32(ring.offset + XS_RING_ERROR, XENSTORE_ERROR_NONE);
    return {
      kick: () => {
        if (this.conns.get(domid) !== conn) return;
        try {
          this.serve(conn);
        } catch (e) {
          // Defensive: a bug here must not take the engine down.
          this.ignore(conn, XENSTORE_ERROR_COMM, `internal error: ${(e as Error).message}`);
        }
        this.runCallbacks();
        this.pumpAll();
      },
    };
  }

  /**
   * Store consistency check (xenstored's check_store, for tests and
   * debugging): every child listed exists, every node except `/` and the
   * special ones is listed by its parent, no child is listed twice.
   * @returns one line per problem; empty when consistent.
   */
  checkConsistency(): string[] {
    const problems: string[] = [];
    for (const [p, rec] of this.nodes) {
      const seen = new Set<string>();
      for (const c of rec.children) {
        if (seen.has(c)) problems.push(`${p}: child ${c} listed twice`);
        seen.add(c);
        const cp = p === '/' ? `/${c}` : `${p}/${c}`;
        if (!this.nodes.has(cp)) problems.push(`${p}: child ${c} does not exist`);
      }
      if (p === '/' || p.startsWith('@')) continue;
      const parent = this.nodes.get(parentOf(p));
      if (!parent) problems.push(`${p}: parent missing`);
      else if (!parent.children.includes(baseName(p))) problems.push(`${p}: not listed by its parent`);
    }
    return problems;
  }

  /** True when domain `domid`'s connection is being ignored after ring misuse. */
  isIgnored(domid: number): boolean {
    return this.conns.get(domid)?.ignored ?? false;
  }

  // ---------------------------------------------------------------- internals: store

  private setRaw(path: string, rec: NodeRec): void {
    this.nodes.set(path, rec);
  }

  /** Absolute canonical path for the toolstack API (throws Error when invalid). */
  private apiPath(path: string): string {
    if (path.startsWith('@')) {
      if (path === '@introduceDomain' || path === '@releaseDomain') return path;
      throw new Error(`xenstored: invalid path ${JSON.stringify(path)}`);
    }
    if (
      !path.startsWith('/') ||
      !validChars(path) ||
      path.includes('//') ||
      (path.length > 1 && path.endsWith('/'))
    ) {
      throw new Error(`xenstored: invalid path ${JSON.stringify(path)}`);
    }
    return path;
  }

  private toolstack(fn: (a: Actor) => void): void {
    const a: Actor = { domid: 0, priv: true, tx: null, conn: null };
    fn(a);
    this.runCallbacks();
    this.pumpAll();
  }

  private store(a: Actor): Map<string, NodeRec> {
    return a.tx ? a.tx.store : this.nodes;
  }

  private touch(a: Actor, path: string): void {
    const tx = a.tx;
    if (!tx || tx.accessed.has(path)) return;
    if (a.conn && !a.priv && tx.accessed.size >= XS_QUOTA.transactionNodes) {
      // Part of the request may already be in the transaction: it can no longer commit.
      tx.failed = true;
      fail('ENOSPC');
    }
    tx.accessed.set(path, tx.store.get(path)?.generation ?? -1);
  }

  private getNode(a: Actor, path: string): NodeRec | undefined {
    this.touch(a, path);
    return this.store(a).get(path);
  }

  private putNode(a: Actor, path: string, rec: Omit<NodeRec, 'generation'>): void {
    if (!a.priv && nodeSize(rec) > XS_QUOTA.nodeSize) fail('ENOSPC');
    this.touch(a, path);
    const full: NodeRec = { ...rec, generation: a.tx ? -2 : ++this.generation };
    this.store(a).set(path, full);
    if (a.tx) a.tx.modified.add(path);
  }

  private delNode(a: Actor, path: string): void {
    this.touch(a, path);
    this.store(a).delete(path);
    if (a.tx) a.tx.modified.add(path);
  }

  private domainExists(id: number): boolean {
    return this.knownDomains.has(id);
  }

  /** Effective permissions with ignored entries for domains that no longer exist. */
  private permFor(a: Actor, perms: XsPerm[]): number {
    if (a.priv || perms[0].id === a.domid) return PERM_READ | PERM_WRITE | PERM_OWNER;
    for (let i = 1; i < perms.length; i++) {
      if (!perms[i].ignore && perms[i].id === a.domid) return permBits(perms[i].perm);
    }
    return permBits(perms[0].perm);
  }

  /**
   * Canonicalises a guest path (core.c canonicalize): relative paths go
   * under /local/domain/<domid>; invalid ones are EINVAL.
   */
  private canonical(a: Actor, raw: string | null, allowSpecial: boolean): string {
    if (raw === null || !validChars(raw) || (raw.startsWith('@') && !allowSpecial)) fail('EINVAL');
    const name = raw.startsWith('/') || raw.startsWith('@') ? raw : `/local/domain/${a.domid}/${raw}`;
    if ((name.endsWith('/') && name !== '/') || name.includes('//')) fail('EINVAL');
    const m = /^\/local\/domain\/([0-9]{1,5})\//.exec(name);
    const len = name.length - (m ? m[0].length : 0);
    if (!a.priv && len > XS_QUOTA.pathMax) fail('EINVAL');
    return name;
  }

  /** Nearest existing ancestor's permission (core.c ask_parents). */
  private parentPerm(a: Actor, path: string): number {
    let p = path;
    while (p !== '/') {
      p = parentOf(p);
      const rec = this.getNode(a, p);
      if (rec) return this.permFor(a, rec.perms);
    }
    return 0;
  }

  /**
   * Reads a node the actor needs `perm` on. Missing node: ENOENT, or
   * EACCES when the nearest ancestor does not grant `perm` either.
   */
  private need(a: Actor, path: string, perm: number): NodeRec {
    const rec = path.startsWith('@') ? this.store(a).get(path) : this.getNode(a, path);
    if (rec && (this.permFor(a, rec.perms) & perm) === perm) return rec;
    if (path.startsWith('@')) fail(rec ? 'EACCES' : 'ENOENT');
    // errno_from_parents
    if (this.parentPerm(a, path) & perm) fail(rec ? 'EACCES' : 'ENOENT');
    fail('EACCES');
  }

  private countOwned(a: Actor, domid: number): number {
    let n = 0;
    for (const [k, r] of this.store(a)) if (!k.startsWith('@') && r.perms[0].id === domid) n++;
    return n;
  }

  /** core.c create_node: constructs `path` and missing ancestors. Returns the node. */
  private createNode(a: Actor, path: string, value: Uint8Array): NodeRec {
    const missing: string[] = [path];
    let parentPath = parentOf(path);
    let parent = this.getNode(a, parentPath);
    while (!parent) {
      if (parentPath === '/') fail('EINVAL');
      missing.push(parentPath);
      parentPath = parentOf(parentPath);
      parent = this.getNode(a, parentPath);
    }
    if (!a.priv && this.countOwned(a, a.domid) + missing.length > XS_QUOTA.nodes) fail('ENOSPC');
    // Validate sizes before touching anything so a failure leaves no half-made path.
    const planned: { path: string; rec: Omit<NodeRec, 'generation'> }[] = [];
    let perms = parent.perms;
    let curParentPath = parentPath;
    let curParent: Omit<NodeRec, 'generation'> = { ...parent, children: parent.children.slice() };
    const parentUpdates: { path: string; rec: Omit<NodeRec, 'generation'> }[] = [];
    for (let i = missing.length - 1; i >= 0; i--) {
      const p = missing[i];
      curParent.children.push(baseName(p));
      parentUpdates.push({ path: curParentPath, rec: curParent });
      const newPerms = perms.map((x) => ({ ...x }));
      if (!a.priv) newPerms[0].id = a.domid;
      perms = newPerms;
      const rec = { value: i === 0 ? value : new Uint8Array(0), perms: newPerms, children: [] as string[] };
      planned.push({ path: p, rec });
      curParentPath = p;
      curParent = rec;
    }
    if (!a.priv) {
      for (const u of parentUpdates) if (nodeSize(u.rec) > XS_QUOTA.nodeSize) fail('ENOSPC');
    }
    this.putNode(a, parentUpdates[0].path, parentUpdates[0].rec);
    for (const pl of planned) this.putNode(a, pl.path, pl.rec);
    return this.store(a).get(path)!;
  }

  private opWrite(a: Actor, path: string, value: Uint8Array): void {
    if (path.startsWith('@')) fail('EINVAL');
    let rec: NodeRec | undefined;
    try {
      rec = this.need(a, path, PERM_WRITE);
    } catch (e) {
      if (!(e instanceof XsError) || e.errname !== 'ENOENT') throw e;
    }
    if (rec) {
      this.putNode(a, path, { value, perms: rec.perms, children: rec.children });
    } else {
      this.createNode(a, path, value);
    }
    this.queueEvent(a, this.eventFor(a, path, false));
  }

  private opMkdir(a: Actor, path: string): void {
    if (path.startsWith('@')) fail('EINVAL');
    try {
      this.need(a, path, PERM_WRITE);
      return;
    } catch (e) {
      if (!(e instanceof XsError) || e.errname !== 'ENOENT') throw e;
    }
    this.createNode(a, path, new Uint8Array(0));
    this.queueEvent(a, this.eventFor(a, path, false));
  }

  private opRm(a: Actor, path: string): void {
    if (path === '/' || path.startsWith('@')) fail('EINVAL');
    const parentPath = parentOf(path);
    const parent = this.getNode(a, parentPath);
    if (!parent) fail('EINVAL');
    // Depth-first, children before their parent (walk_node_tree exit order).
    const removed: PendingEvent[] = [];
    // Iterative post-order walk (paths may nest ~1000 levels deep within the length limit).
    const order: { p: string; rec: NodeRec }[] = [];
    const stack = [path];
    while (stack.length) {
      const p = stack.pop()!;
      const rec = this.getNode(a, p);
      if (!rec) continue;
      order.push({ p, rec });
      for (const c of rec.children) stack.push(`${p}/${c}`);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const { p, rec } = order[i];
      removed.push({ path: p, exact: p !== path, node: rec, parent: this.store(a).get(parentOf(p)) });
      this.delNode(a, p);
    }
    const name = baseName(path);
    this.putNode(a, parentPath, { ...parent, children: parent.children.filter((c) => c !== name) });
    for (const ev of removed) this.queueEvent(a, ev);
  }

  private opSetPerms(a: Actor, path: string, perms: XsPerm[]): void {
    // Entries naming domains that do not exist are kept but ignored (domain_alloc_permrefs);
    // the toolstack knows which domains it is about to create, so its lists are taken as given.
    const checked = a.priv
      ? perms
      : perms.map((p, i) => (i > 0 && !this.domainExists(p.id) ? { ...p, ignore: true } : p));
    if (!a.priv && !this.domainExists(checked[0].id)) fail('ENOENT');
    const rec = this.need(a, path, PERM_WRITE | PERM_OWNER);
    if (!a.priv && checked[0].id !== rec.perms[0].id) fail('EPERM');
    const oldPerms = rec.perms;
    if (path.startsWith('@')) {
      // Special nodes are not in a transaction's view of the tree.
      this.nodes.set(path, { ...rec, perms: checked, generation: ++this.generation });
    } else {
      this.putNode(a, path, { value: rec.value, perms: checked, children: rec.children });
    }
    const ev = this.eventFor(a, path, false);
    ev.oldPerms = oldPerms;
    this.queueEvent(a, ev);
  }

  private eventFor(a: Actor, path: string, exact: boolean): PendingEvent {
    const s = this.store(a);
    return {
      path,
      exact,
      node: s.get(path),
      parent: path.startsWith('@') ? undefined : s.get(parentOf(path)),
    };
  }

  // ---------------------------------------------------------------- watches

  private queueEvent(a: Actor, ev: PendingEvent): void {
    if (a.tx) {
      a.tx.events.push(ev);
      return;
    }
    this.fireEvent(ev);
  }

  private watchPermitted(domid: number, ev: PendingEvent): boolean {
    const a: Actor = { domid, priv: domid === 0, tx: null, conn: null };
    if (a.priv) return true;
    if (ev.oldPerms && this.permFor(a, ev.oldPerms) & PERM_READ) return true;
    if (ev.node && this.permFor(a, ev.node.perms) & PERM_READ) return true;
    if (ev.parent && this.permFor(a, ev.parent.perms) & PERM_READ) return true;
    return false;
  }

  private fireEvent(ev: PendingEvent): void {
    const matches = (wpath: string) => (ev.exact ? ev.path === wpath : isChild(ev.path, wpath));
    for (const w of this.internalWatches) {
      if (matches(w.path)) {
        const cb = w.cb;
        const token = w.token;
        const p = ev.path;
        this.callbacks.push(() => cb(p, token));
      }
    }
    for (const c of this.conns.values()) {
      if (c.ignored) continue;
      let permitted: boolean | undefined;
      for (const w of c.watches) {
        if (!matches(w.path)) continue;
        permitted ??= this.watchPermitted(c.domid, ev);
        if (!permitted) break;
        this.sendEvent(c, w, ev.path);
      }
    }
  }

  private sendEvent(c: Connection, w: Watch, path: string): void {
    let p = path;
    if (w.relativeTo && p.startsWith(w.relativeTo)) {
      p = p.slice(w.relativeTo.length);
      if (p.startsWith('/')) p = p.slice(1);
    }
    const body = wireBytes(`${p}\0${w.token}\0`);
    if (body.length > XENSTORE_PAYLOAD_MAX) return;
    const msg = new Uint8Array(HDR + body.length);
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, XS_WATCH_EVENT, true);
    dv.setUint32(12, body.length, true);
    msg.set(body, HDR);
    // Drop an identical event still waiting untouched in the queue (core.c send_event).
    for (let i = 0; i < c.out.length; i++) {
      if (!c.outIsEvent[i] || (i === 0 && c.outUsed > 0)) continue;
      const q = c.out[i];
      if (q.length === msg.length && q.every((b, j) => b === msg[j])) return;
    }
    if (c.outBytes + msg.length > XS_QUOTA.memory) return;
    this.enqueue(c, msg, true);
  }

  private enqueue(c: Connection, msg: Uint8Array, isEvent: boolean): void {
    c.out.push(msg);
    c.outIsEvent.push(isEvent);
    c.outBytes += msg.length;
    if (!isEvent) c.outReplies++;
  }

  private runCallbacks(): void {
    if (this.runningCallbacks) return;
    this.runningCallbacks = true;
    try {
      let guard = 0;
      while (this.callbacks.length && guard++ < 100000) {
        const cb = this.callbacks.shift()!;
        try {
          cb();
        } catch (e) {
          this.addLog(`watch callback failed: ${(e as Error).message}`);
        }
      }
      this.callbacks.length = 0;
    } finally {
      this.runningCallbacks = false;
    }
  }

  private addLog(line: string): void {
    this.log.push(line);
    if (this.log.length > 200) this.log.shift();
  }

  // ---------------------------------------------------------------- ring

  private ignore(c: Connection, err: number, reason: string): void {
    c.ignored = true;
    c.ignoredReason = reason;
    c.watches = [];
    c.transactions.clear();
    c.out = [];
    c.outIsEvent = [];
    c.outUsed = 0;
    c.outBytes = 0;
    c.outReplies = 0;
    c.inHdrUsed = 0;
    c.inBody = null;
    c.inBodyUsed = 0;
    c.mem.write32(c.offset + XS_RING_ERROR, err);
    this.addLog(`d${c.domid}: connection ignored (error ${err}): ${reason}`);
    c.notifyGuest();
  }

  private reconnect(c: Connection): void {
    const m = c.mem;
    const o = c.offset;
    c.ignored = false;
    c.ignoredReason = '';
    c.watches = [];
    c.transactions.clear();
    c.out = [];
    c.outIsEvent = [];
    c.outUsed = 0;
    c.outBytes = 0;
    c.outReplies = 0;
    c.inHdrUsed = 0;
    c.inBody = null;
    c.inBodyUsed = 0;
    m.write32(o + XS_RING_REQ_CONS, 0);
    m.write32(o + XS_RING_REQ_PROD, 0);
    m.write32(o + XS_RING_RSP_CONS, 0);
    m.write32(o + XS_RING_RSP_PROD, 0);
    m.write32(o + XS_RING_ERROR, XENSTORE_ERROR_NONE);
    m.write32(o + XS_RING_CONNECTION, XENSTORE_CONNECTED);
    c.notifyGuest();
  }

  /** Reads up to `len` bytes from the request ring into dst; -1 on bad indexes. */
  private ringRead(c: Connection, dst: Uint8Array, at: number, len: number): number {
    const m = c.mem;
    const o = c.offset;
    const cons = m.read32(o + XS_RING_REQ_CONS);
    const prod = m.read32(o + XS_RING_REQ_PROD);
    const avail = (prod - cons) >>> 0;
    if (avail > XENSTORE_RING_SIZE) return -1;
    let n = Math.min(len, avail);
    const first = Math.min(n, XENSTORE_RING_SIZE - (cons & (XENSTORE_RING_SIZE - 1)));
    const src = o + XS_RING_REQ + (cons & (XENSTORE_RING_SIZE - 1));
    dst.set(m.u8.subarray(src, src + first), at);
    if (n > first) dst.set(m.u8.subarray(o + XS_RING_REQ, o + XS_RING_REQ + (n - first)), at + first);
    if (n > 0) {
      m.write32(o + XS_RING_REQ_CONS, (cons + n) >>> 0);
      if (avail === XENSTORE_RING_SIZE) c.notifyGuest();
    }
    return n;
  }

  /** Writes queued output; returns bytes written or -1 on bad indexes. */
  private flushOut(c: Connection): number {
    const m = c.mem;
    const o = c.offset;
    let total = 0;
    while (c.out.length) {
      const cons = m.read32(o + XS_RING_RSP_CONS);
      const prod = m.read32(o + XS_RING_RSP_PROD);
      const used = (prod - cons) >>> 0;
      if (used > XENSTORE_RING_SIZE) return -1;
      const space = XENSTORE_RING_SIZE - used;
      if (space === 0) break;
      const msg = c.out[0];
      const n = Math.min(space, msg.length - c.outUsed);
      const idx = prod & (XENSTORE_RING_SIZE - 1);
      const first = Math.min(n, XENSTORE_RING_SIZE - idx);
      m.writeBytes(o + XS_RING_RSP + idx, msg.subarray(c.outUsed, c.outUsed + first));
      if (n > first) m.writeBytes(o + XS_RING_RSP, msg.subarray(c.outUsed + first, c.outUsed + n));
      m.write32(o + XS_RING_RSP_PROD, (prod + n) >>> 0);
      c.outUsed += n;
      total += n;
      if (c.outUsed === msg.length) {
        c.out.shift();
        const ev = c.outIsEvent.shift();
        if (!ev) c.outReplies--;
        c.outBytes -= msg.length;
        c.outUsed = 0;
      }
    }
    return total;
  }

  private pump(c: Connection): void {
    if (c.ignored || !c.out.length) return;
    const n = this.flushOut(c);
    if (n < 0) this.ignore(c, XENSTORE_ERROR_RINGIDX, 'response ring indexes out of range');
    else if (n > 0) c.notifyGuest();
  }

  private pumpAll(): void {
    for (const c of [...this.conns.values()]) this.pump(c);
  }

  private serve(c: Connection): void {
    const m = c.mem;
    if (m.read32(c.offset + XS_RING_CONNECTION) === XENSTORE_RECONNECT) this.reconnect(c);
    if (c.ignored) return;
    this.pump(c);
    for (let guard = 0; guard < 4096; guard++) {
      if (c.ignored) return;
      if (c.outReplies >= XS_QUOTA.outstanding) break;
      if (!c.inBody) {
        const n = this.ringRead(c, c.inHdr, c.inHdrUsed, HDR - c.inHdrUsed);
        if (n < 0) return this.ignore(c, XENSTORE_ERROR_RINGIDX, 'request ring indexes out of range');
        c.inHdrUsed += n;
        if (c.inHdrUsed < HDR) break;
        const len = new DataView(c.inHdr.buffer).getUint32(12, true);
        if (len > XENSTORE_PAYLOAD_MAX) {
          return this.ignore(
            c,
            XENSTORE_ERROR_PROTO,
            `message payload of ${len} bytes (max ${XENSTORE_PAYLOAD_MAX})`,
          );
        }
        c.inBody = new Uint8Array(len);
        c.inBodyUsed = 0;
      }
      if (c.inBodyUsed < c.inBody.length) {
        const n = this.ringRead(c, c.inBody, c.inBodyUsed, c.inBody.length - c.inBodyUsed);
        if (n < 0) return this.ignore(c, XENSTORE_ERROR_RINGIDX, 'request ring indexes out of range');
        c.inBodyUsed += n;
        if (c.inBodyUsed < c.inBody.length) break;
      }
      const hdr = new DataView(c.inHdr.buffer);
      const type = hdr.getUint32(0, true);
      const reqId = hdr.getUint32(4, true);
      const txId = hdr.getUint32(8, true);
      const body = c.inBody;
      c.inHdrUsed = 0;
      c.inBody = null;
      c.inBodyUsed = 0;
      this.process(c, type, reqId, txId, body);
      this.pump(c);
    }
    this.pump(c);
  }

  private reply(c: Connection, type: number, reqId: number, txId: number, body: Uint8Array): void {
    if (body.length > XENSTORE_PAYLOAD_MAX) {
      type = XS_ERROR;
      body = enc.encode('E2BIG\0');
    }
    const msg = new Uint8Array(HDR + body.length);
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, type, true);
    dv.setUint32(4, reqId, true);
    dv.setUint32(8, txId, true);
    dv.setUint32(12, body.length, true);
    msg.set(body, HDR);
    this.enqueue(c, msg, false);
  }

  private process(c: Connection, type: number, reqId: number, txId: number, body: Uint8Array): void {
    const a: Actor = { domid: c.domid, priv: false, tx: null, conn: c };
    let result: string;
    try {
      const res = this.dispatch(c, a, type, reqId, txId, body);
      if (res) this.reply(c, type, reqId, txId, res);
      result = res ? printable(res) : 'OK';
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      this.reply(c, XS_ERROR, reqId, txId, enc.encode(`${e.errname}\0`));
      result = e.errname;
    }
    if (this.onTrace) {
      const line = `${XS_TYPE_NAMES[type] ?? `type ${type}`}${txId ? ` tx=${txId}` : ''} ${printable(body)} -> ${result}`;
      try {
        this.onTrace(c.domid, line);
      } catch {
        // a tracing problem must not disturb the guest
      }
    }
  }

  private static readonly OK = enc.encode('OK\0');

  /** Handles one request; returns the reply payload, or null when the handler queued its reply itself. */
  private dispatch(
    c: Connection,
    a: Actor,
    type: number,
    reqId: number,
    txId: number,
    body: Uint8Array,
  ): Uint8Array | null {
    switch (type) {
      case XS_CONTROL:
      case XS_INTRODUCE:
      case XS_RELEASE:
      case XS_IS_DOMAIN_INTRODUCED:
      case XS_RESUME:
      case XS_SET_TARGET:
      case XS_GET_FEATURE:
      case XS_SET_FEATURE:
      case XS_GET_QUOTA:
      case XS_SET_QUOTA:
        fail('EACCES');
      case XS_WATCH:
        return this.doWatch(c, a, reqId, txId, body);
      case XS_UNWATCH:
        return this.doUnwatch(c, a, body);
      case XS_DIRECTORY:
      case XS_READ:
      case XS_GET_PERMS:
      case XS_TRANSACTION_START:
      case XS_TRANSACTION_END:
      case XS_GET_DOMAIN_PATH:
      case XS_WRITE:
      case XS_MKDIR:
      case XS_RM:
      case XS_SET_PERMS:
      case XS_RESET_WATCHES:
      case XS_DIRECTORY_PART:
        break;
      default:
        fail('ENOSYS');
    }
    if (txId !== 0) {
      const tx = c.transactions.get(txId);
      if (!tx) fail('ENOENT');
      a.tx = tx;
    }
    switch (type) {
      case XS_DIRECTORY: {
        const rec = this.need(a, this.canonical(a, oneArg(body), false), PERM_READ);
        return enc.encode(rec.children.map((x) => `${x}\0`).join(''));
      }
      case XS_DIRECTORY_PART: {
        const { strings } = splitStrings(body);
        if (strings.length !== 2) fail('EINVAL');
        const rec = this.need(a, this.canonical(a, strings[0], false), PERM_READ);
        const off = parseInt(strings[1], 10) || 0;
        const children = enc.encode(rec.children.map((x) => `${x}\0`).join(''));
        const gen = enc.encode(`${Math.max(rec.generation, 0)}\0`);
        if (off < 0 || off >= children.length) return concat(gen, new Uint8Array([0]));
        // Whole child names that fit; a final extra NUL marks the end of the list.
        const maxlen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
        let len = 0;
        let p = off;
        while (p < children.length) {
          const nul = children.indexOf(0, p);
          const l = (nul < 0 ? children.length : nul) - p;
          if (len + l >= maxlen) break;
          len += l + 1;
          p += l + 1;
        }
        const part = children.subarray(off, off + len);
        return off + len >= children.length ? concat(gen, part, new Uint8Array([0])) : concat(gen, part);
      }
      case XS_READ: {
        const rec = this.need(a, this.canonical(a, oneArg(body), false), PERM_READ);
        return rec.value;
      }
      case XS_GET_PERMS: {
        const rec = this.need(a, this.canonical(a, oneArg(body), true), PERM_READ);
        return enc.encode(
          permsToStrings(rec.perms)
            .map((x) => `${x}\0`)
            .join(''),
        );
      }
      case XS_WRITE: {
        const nul = body.indexOf(0);
        if (nul < 0) fail('EINVAL');
        const path = this.canonical(a, wireString(body.subarray(0, nul)), false);
        this.opWrite(a, path, body.slice(nul + 1));
        return Xenstored.OK;
      }
      case XS_MKDIR:
        this.opMkdir(a, this.canonical(a, oneArg(body), false));
        return Xenstored.OK;
      case XS_RM: {
        const path = this.canonical(a, oneArg(body), false);
        try {
          this.need(a, path, PERM_WRITE);
        } catch (e) {
          if (e instanceof XsError && e.errname === 'ENOENT') {
            // Missing node: fine when the parent exists.
            if (this.getNode(a, parentOf(path))) return Xenstored.OK;
          }
          throw e;
        }
        if (path === '/') fail('EINVAL');
        this.opRm(a, path);
        return Xenstored.OK;
      }
      case XS_SET_PERMS: {
        const { strings } = splitStrings(body);
        if (strings.length < 2) fail('EINVAL');
        if (strings.length - 1 > XS_QUOTA.nodePerms) fail('ENOSPC');
        const perms = parsePerms(strings.slice(1));
        if (!perms) fail('EINVAL');
        this.opSetPerms(a, this.canonical(a, strings[0], true), perms);
        return Xenstored.OK;
      }
      case XS_GET_DOMAIN_PATH: {
        const arg = oneArg(body);
        if (arg === null) fail('EINVAL');
        const id = parseInt(arg, 10);
        return enc.encode(`/local/domain/${Number.isFinite(id) ? id >>> 0 : 0}\0`);
      }
      case XS_TRANSACTION_START: {
        if (a.tx) fail('EBUSY');
        if (c.transactions.size > XS_QUOTA.transactions) fail('ENOSPC');
        let id = c.nextTxId;
        while (id === 0 || c.transactions.has(id)) id = (id + 1) >>> 0;
        c.nextTxId = (id + 1) >>> 0;
        c.transactions.set(id, {
          id,
          store: new Map(this.nodes),
          accessed: new Map(),
          modified: new Set(),
          events: [],
          failed: false,
        });
        return enc.encode(`${id}\0`);
      }
      case XS_TRANSACTION_END: {
        const arg = oneArg(body);
        if (arg !== 'T' && arg !== 'F') fail('EINVAL');
        const tx = a.tx;
        if (!tx) fail('ENOENT');
        c.transactions.delete(tx.id);
        a.tx = null;
        if (arg === 'F') return Xenstored.OK;
        if (tx.failed) fail('EAGAIN');
        for (const [p, g] of tx.accessed) {
          if ((this.nodes.get(p)?.generation ?? -1) !== g) fail('EAGAIN');
        }
        for (const p of tx.modified) {
          const rec = tx.store.get(p);
          if (rec) this.nodes.set(p, { ...rec, generation: ++this.generation });
          else this.nodes.delete(p);
        }
        for (const ev of tx.events) this.fireEvent(ev);
        return Xenstored.OK;
      }
      case XS_RESET_WATCHES:
        c.watches = [];
        c.transactions.clear();
        return Xenstored.OK;
    }
    fail('ENOSYS');
  }

  private doWatch(c: Connection, a: Actor, reqId: number, txId: number, body: Uint8Array): null {
    const { strings } = splitStrings(body);
    if (strings.length !== 2) fail('EINVAL');
    const [raw, token] = strings;
    let path: string;
    let relativeTo: string | null = null;
    if (raw.startsWith('@')) {
      if (raw.length > XS_QUOTA.pathMax || !validChars(raw)) fail('EINVAL');
      path = raw;
    } else {
      path = this.canonical(a, raw, false);
      if (!raw.startsWith('/')) relativeTo = `/local/domain/${c.domid}`;
    }
    if (c.watches.some((w) => w.path === path && w.token === token)) fail('EEXIST');
    if (c.watches.length > XS_QUOTA.watches) fail('E2BIG');
    const w: Watch = { path, token, relativeTo };
    c.watches.push(w);
    // The ack goes first, then the initial event (core.c do_watch).
    this.reply(c, XS_WATCH, reqId, txId, Xenstored.OK);
    this.sendEvent(c, w, path);
    return null;
  }

  private doUnwatch(c: Connection, a: Actor, body: Uint8Array): Uint8Array {
    const { strings } = splitStrings(body);
    if (strings.length !== 2) fail('EINVAL');
    const [raw, token] = strings;
    const path = raw.startsWith('@') ? raw : this.canonical(a, raw, false);
    const i = c.watches.findIndex((w) => w.path === path && w.token === token);
    if (i < 0) fail('ENOENT');
    c.watches.splice(i, 1);
    return Xenstored.OK;
  }
}

const XS_TYPE_NAMES: Record<number, string> = {
  0: 'CONTROL',
  1: 'DIRECTORY',
  2: 'READ',
  3: 'GET_PERMS',
  4: 'WATCH',
  5: 'UNWATCH',
  6: 'TRANSACTION_START',
  7: 'TRANSACTION_END',
  8: 'INTRODUCE',
  9: 'RELEASE',
  10: 'GET_DOMAIN_PATH',
  11: 'WRITE',
  12: 'MKDIR',
  13: 'RM',
  14: 'SET_PERMS',
  15: 'WATCH_EVENT',
  16: 'ERROR',
  17: 'IS_DOMAIN_INTRODUCED',
  18: 'RESUME',
  19: 'SET_TARGET',
  21: 'RESET_WATCHES',
  22: 'DIRECTORY_PART',
  23: 'GET_FEATURE',
  24: 'SET_FEATURE',
  25: 'GET_QUOTA',
  26: 'SET_QUOTA',
};

/** Payload bytes as one printable line: NUL as `|`, other control/non-ASCII bytes as `\xNN`, capped at 200 bytes. */
function printable(b: Uint8Array): string {
  let out = '';
  const n = Math.min(b.length, 200);
  for (let i = 0; i < n; i++) {
    const x = b[i];
    if (x === 0) out += '|';
    else if (x >= 0x20 && x < 0x7f) out += String.fromCharCode(x);
    else out += `\\x${x.toString(16).padStart(2, '0')}`;
  }
  return b.length > n ? `${out}...(${b.length} bytes)` : out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
