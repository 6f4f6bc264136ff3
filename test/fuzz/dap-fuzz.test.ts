/**
 * Issue 8: DAP fuzzing. Malformed requests sent to the real adapter
 * (PvscopeSession in-process over a pair of streams, the same wire framing
 * as stdio, the real engine) on a small PV guest: unknown commands (incl.
 * Object.prototype names), non-string commands, arguments of the wrong
 * type, huge / negative / fractional / non-finite-turned-null numbers,
 * missing fields, garbage strings, deep expressions, huge arrays, requests
 * in the wrong state (before launch, while running, after terminate), and
 * frames that are not JSON requests at all.
 *
 * Arguments are drawn from each request's own schema (debug-adapter/schema.ts
 * REQUEST_SCHEMAS): a plausible value of the right type most of the time,
 * else a hostile one, properties left out or added at random.
 *
 * Every request must get exactly one response (success, or an error with a
 * message that is not "internal error": that is a bug caught by the guard),
 * within RESPONSE_BOUND_MS; nothing may escape as an uncaught exception or
 * rejection; the session must not shut itself down (only `disconnect` may);
 * and a `threads` request must still answer at the end of every sequence.
 *
 * Quick deterministic run (fixed seeds) by default; PVSCOPE_FUZZ_LONG=1
 * runs 20x the sequences. Figures printed per run.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { createMachine } from '../../engine/machine';
import { PvscopeSession } from '../../debug-adapter/session';
import { REQUEST_SCHEMAS, type Schema } from '../../debug-adapter/schema';
import { Rng } from '../helpers/x86-gen';
import { buildXenGuest } from '../helpers/xen-guest';

const LONG = process.env.PVSCOPE_FUZZ_LONG === '1';
const SEQUENCES = LONG ? 160 : 8;
const REQUESTS_PER_SEQUENCE = LONG ? 400 : 200;
/** A response must come within this much host time (generous for a loaded 2-core machine). */
const RESPONSE_BOUND_MS = 10_000;

/** A guest that runs for ever: counts, calls xen_version, writes its scratch area. */
const GUEST = `
_start:
  lea stack_top(%rip), %rsp
1:
  inc %r12
  mov %r12, scratch(%rip)
  xor %edi, %edi
  xor %esi, %esi
  HYPERCALL 17
  lea scratch+64(%rip), %rdi
  mov $64, %ecx
  rep stosb
  jmp 1b
`;

const PROTO_NAMES = [
  'valueOf',
  'constructor',
  'toString',
  'hasOwnProperty',
  '__proto__',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupSetter__',
  'prototype',
  'then',
];
const COMMANDS = [...REQUEST_SCHEMAS.keys()];
const STRINGS = [
  '',
  ' ',
  '0',
  '0x',
  '0x1000',
  '0xffffffffffffffff',
  '0x10000000000000000',
  '-1',
  '1e400',
  'NaN',
  'Infinity',
  'rip',
  'rax',
  'cr3',
  'fs.base',
  '$rsp',
  '_start',
  'scratch',
  '*(long*)0x1000',
  'rax + 1',
  '((((1))))',
  'v:0x1000',
  'p:0x2000',
  'm:0x1000000',
  'x:0x1',
  'v:',
  'p:-1',
  'hypercall',
  'crash',
  'page-fault',
  'mmu-reject',
  'read',
  'write',
  'readWrite',
  'bogus',
  'kernel',
  'user',
  '/local/domain/1',
  '/',
  '..',
  '%s%s%n',
  '{0}',
  '<script>alert(1)</script>',
  '\u0000',
  '\ud800',
  'é€😀',
  '__proto__',
  'constructor',
  'valueOf',
];

/** A hostile value of any type. */
function hostile(r: Rng, depth = 0): unknown {
  switch (r.int(16)) {
    case 0:
      return null;
    case 1:
      return r.pick([
        0,
        -1,
        1,
        -0,
        0.5,
        -1e9,
        1e9,
        2 ** 31,
        2 ** 32,
        2 ** 53,
        2 ** 53 + 2,
        1e20,
        -1e20,
        1e308,
        -1e308,
      ]);
    case 2:
      // Non-finite numbers cannot be sent as JSON: they arrive as null (as from any client).
      return r.pick([NaN, Infinity, -Infinity]);
    case 3:
      return r.bool();
    case 4:
      return r.pick(STRINGS);
    case 5:
      return garbageString(r);
    case 6:
      return depth > 2 ? [] : Array.from({ length: r.int(4) }, () => hostile(r, depth + 1));
    case 7:
      return depth > 2
        ? {}
        : Object.fromEntries(
            Array.from({ length: r.int(4) }, () => [r.pick(STRINGS), hostile(r, depth + 1)]),
          );
    case 8:
      // Own properties named like Object.prototype's (as JSON.parse makes them from the wire).
      return JSON.parse(
        '{"__proto__":{"polluted":true},"constructor":"x","valueOf":1,"toString":null,"hasOwnProperty":2}',
      );
    case 9:
      return r.u32() - 0x80000000;
    case 10:
      return `0x${r.u64().toString(16)}`;
    case 11:
      return r.int(100000) / 7;
    case 12:
      return 'x'.repeat(r.pick([100, 1000, 65537, 200_000]));
    case 13:
      return r.int(3) === 0 ? [] : {};
    case 14:
      return deepExpression(r);
    default:
      return r.int(64);
  }
}

function garbageString(r: Rng): string {
  const n = r.int(r.bool(0.1) ? 5000 : 40);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(r.bool(0.8) ? 32 + r.int(95) : r.int(0x10000));
  return s;
}

function deepExpression(r: Rng): string {
  const n = r.pick([100, 1000, 10000, 30000]);
  switch (r.int(4)) {
    case 0:
      return '('.repeat(n) + '1' + ')'.repeat(n);
    case 1:
      return '-'.repeat(n) + '1';
    case 2:
      return Array.from({ length: n }, () => '1').join('+');
    default:
      return '*'.repeat(n) + '(long*)0x1000';
  }
}

/** Ids the adapter handed out in this sequence (frame ids, variablesReference, breakpoint ids). */
const harvested: number[] = [];

/** Adds every id-like number in a response body to `harvested`. */
function harvest(v: unknown, depth = 0): void {
  if (depth > 6 || typeof v !== 'object' || v === null) return;
  for (const [k, x] of Object.entries(v)) {
    if (typeof x === 'number' && /^(id|frameId|variablesReference|threadId)$/.test(k) && x > 0)
      if (harvested.length < 200 && !harvested.includes(x)) harvested.push(x);
    if (typeof x === 'object') harvest(x, depth + 1);
  }
}

/** A plausible value for `s` (right type, sensible range) or, with probability pBad, a hostile one. */
function fromSchema(s: Schema, r: Rng, pBad: number, depth = 0): unknown {
  if (r.bool(pBad)) return hostile(r, depth);
  switch (s.t) {
    case 'any':
      return r.bool(0.7) ? r.pick([0, 1, 10000, ...harvested]) : hostile(r, depth);
    case 'bool':
      return r.bool();
    case 'int': {
      if (harvested.length > 0 && r.bool(0.3)) return r.pick(harvested);
      const min = s.min ?? -(2 ** 53 - 1);
      const max = s.max ?? 2 ** 53 - 1;
      const pick = r.int(6);
      if (pick === 0) return min;
      if (pick === 1) return max;
      if (pick === 2 && min <= 10000 && max >= 10000) return r.pick([10000, 10001, 20000]);
      const lo = Math.max(min, -64);
      const hi = Math.min(max, 64);
      return lo + r.int(hi - lo + 1);
    }
    case 'string':
      if (s.oneOf) return r.pick(s.oneOf);
      return r.bool(0.8) ? r.pick(STRINGS) : garbageString(r);
    case 'ref':
      return r.bool(0.2)
        ? r.int(0x10000)
        : r.pick([
            '0x1000',
            'v:0x1000',
            'p:0x2000',
            'm:0x1000000',
            'v:0xffff800000010000',
            '0x0',
            '0xfffffffffffff000',
            'scratch',
            '',
          ]);
    case 'array': {
      const big = r.bool(0.01);
      const n = big ? r.pick([10_000, 100_000, 1_000_001]) : r.int(6);
      // Huge arrays repeat one small element (10^6 distinct or long ones would only slow the wire).
      let one = fromSchema(s.items, r, pBad, depth + 1);
      while (big && (JSON.stringify(one) ?? '').length > 120) one = fromSchema(s.items, r, pBad, depth + 1);
      return Array.from({ length: n }, () => (big ? one : fromSchema(s.items, r, pBad, depth + 1)));
    }
    case 'object': {
      const o: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(s.props)) {
        if (r.bool(0.15)) continue; // missing
        o[k] = fromSchema(v, r, pBad, depth + 1);
      }
      if (r.bool(0.1)) o[r.pick(STRINGS)] = hostile(r, depth + 1);
      return o;
    }
    case 'either':
      return fromSchema(r.bool() ? s.a : s.b, r, pBad, depth);
  }
}

function argumentsFor(command: string, r: Rng, kernel: string): unknown {
  const roll = r.int(20);
  if (roll === 0) return undefined;
  if (roll === 1) return hostile(r);
  if (command === 'launch' || (command === 'restart' && r.bool())) {
    const a: Record<string, unknown> = { kernel: r.bool(0.8) ? kernel : hostile(r), memory: 16 };
    if (r.bool(0.3))
      a[r.pick(['memory', 'vcpus', 'cmdline', 'stopOnEntry', 'symbols', 'disks', 'trace', 'bogus'])] =
        hostile(r);
    return command === 'restart' ? { arguments: a } : a;
  }
  const schema = REQUEST_SCHEMAS.get(command) ?? {};
  return fromSchema({ t: 'object', props: schema }, r, 0.15);
}

function pickCommand(r: Rng): unknown {
  const roll = r.int(100);
  if (roll < 6) return r.pick(PROTO_NAMES);
  if (roll < 8) return garbageString(r);
  if (roll < 9) return hostile(r);
  if (roll < 11) return `pvscope/${r.pick(['nope', 'status ', 'Status', '__proto__'])}`;
  // Lifecycle requests that end a sequence early are rarer.
  for (;;) {
    const c = r.pick(COMMANDS);
    if (['disconnect', 'terminate', 'restart'].includes(c) && !r.bool(0.2)) continue;
    return c;
  }
}

interface Figures {
  requests: number;
  errors: number;
  internal: string[];
  missing: string[];
  slowestMs: number;
  slowest: string;
  shutdowns: number;
  uncaught: string[];
  rawFrames: number;
  /** Commands answered with success at least once (the fuzz reaches past the schema checks). */
  succeeded: Set<string>;
}

/** One adapter in-process over a pair of streams, with a DAP client on the other ends. */
class Wire {
  readonly session: PvscopeSession;
  private readonly toAdapter = new PassThrough();
  private readonly fromAdapter = new PassThrough();
  private buf = Buffer.alloc(0);
  private seq = 1;
  private readonly waiting = new Map<number, (r: DebugProtocol.Response) => void>();
  readonly stderr: string[] = [];
  readonly duplicate: string[] = [];
  private readonly answered = new Set<number>();
  shutdowns = 0;

  constructor() {
    this.session = new PvscopeSession({ createMachine: () => createMachine });
    // Count shutdown requests instead of exiting (stdio mode exits the process).
    this.session.shutdown = () => {
      this.shutdowns++;
    };
    this.fromAdapter.on('data', (d: Buffer) => this.onData(d));
    this.session.start(this.toAdapter, this.fromAdapter);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const h = this.buf.indexOf('\r\n\r\n');
      if (h < 0) return;
      const m = /Content-Length: (\d+)/.exec(this.buf.subarray(0, h).toString('latin1'));
      assert.ok(m, 'frame without Content-Length from the adapter');
      const len = Number(m[1]);
      if (this.buf.length < h + 4 + len) return;
      const msg = JSON.parse(
        this.buf.subarray(h + 4, h + 4 + len).toString('utf8'),
      ) as DebugProtocol.ProtocolMessage;
      this.buf = this.buf.subarray(h + 4 + len);
      if (msg.type === 'response') {
        const r = msg as DebugProtocol.Response;
        // Responses to raw frames (seq not ours) are not counted.
        if (this.waiting.has(r.request_seq) || this.answered.has(r.request_seq)) {
          if (this.answered.has(r.request_seq)) this.duplicate.push(`${r.command} #${r.request_seq}`);
          this.answered.add(r.request_seq);
        }
        this.waiting.get(r.request_seq)?.(r);
        this.waiting.delete(r.request_seq);
      } else if (msg.type === 'event') {
        const e = msg as DebugProtocol.OutputEvent;
        if (e.event === 'output' && e.body.category === 'stderr') this.stderr.push(e.body.output);
      }
    }
  }

  /** Sends raw bytes (a frame that may not be a request at all). */
  raw(text: string): void {
    this.toAdapter.write(`Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
  }

  request(command: unknown, args: unknown, timeoutMs: number): Promise<DebugProtocol.Response | null> {
    const seq = this.seq++;
    const msg: Record<string, unknown> = { seq, type: 'request', command };
    if (args !== undefined) msg.arguments = args;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(seq);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(seq, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.raw(JSON.stringify(msg));
    });
  }

  /** Disconnects (ending the guest) and closes the streams. */
  async close(): Promise<void> {
    const n = this.shutdowns;
    await this.request('disconnect', {}, RESPONSE_BOUND_MS);
    this.shutdowns = n;
    this.session.shutdown = () => undefined;
    this.toAdapter.end();
  }
}

const RAW_FRAMES = [
  '',
  'not json',
  '{',
  'null',
  '5',
  '"request"',
  '[]',
  '{"type":"request"}',
  '{"type":"request","seq":"x","command":7}',
  '{"type":"response","request_seq":1}',
  '{"type":"event","event":"stopped"}',
  '{"type":"request","seq":-1,"command":"threads","arguments":[1,2]}',
];

async function sequence(seed: number, kernel: string, f: Figures): Promise<void> {
  const r = new Rng(seed);
  const w = new Wire();
  let disconnected = false;
  harvested.length = 0;
  const send = async (command: unknown, args: unknown) => {
    const label = `${truncate(JSON.stringify(command) ?? String(command), 60)} ${truncate(JSON.stringify(args) ?? '', 160)}`;
    const t = performance.now();
    const resp = await w.request(command, args, RESPONSE_BOUND_MS);
    const dt = performance.now() - t;
    f.requests++;
    if (dt > f.slowestMs) {
      f.slowestMs = dt;
      f.slowest = label;
    }
    if (!resp) {
      f.missing.push(`seed ${seed}: no response to ${label}`);
      return null;
    }
    if (resp.success && typeof command === 'string') {
      f.succeeded.add(command);
      harvest(resp.body);
    }
    if (!resp.success) {
      f.errors++;
      if (
        typeof resp.message !== 'string' ||
        resp.message.length === 0 ||
        /internal error/.test(resp.message)
      )
        f.internal.push(`seed ${seed}: ${label} -> ${truncate(String(resp.message), 400)}`);
    }
    return resp;
  };
  try {
    // Wrong state first: a few requests before initialize / launch.
    for (let i = 0; i < 5; i++) {
      const c = pickCommand(r);
      if (c === 'launch' || c === 'disconnect') continue;
      await send(c, argumentsFor(typeof c === 'string' ? c : '', r, kernel));
    }
    await send('initialize', { adapterID: 'pvscope', linesStartAt1: true, columnsStartAt1: true });
    await send('launch', { kernel, memory: 16 });
    await send('configurationDone', {});
    for (let i = 0; i < REQUESTS_PER_SEQUENCE; i++) {
      if (r.bool(0.03)) {
        w.raw(r.pick(RAW_FRAMES));
        f.rawFrames++;
        continue;
      }
      const c = pickCommand(r);
      const resp = await send(c, argumentsFor(typeof c === 'string' ? c : '', r, kernel));
      if (c === 'disconnect') {
        // The session ends by request: that one shutdown is expected, and nothing after it.
        if (resp?.success) w.shutdowns--;
        disconnected = true;
        break;
      }
      // Let a running guest run a little now and then (requests then arrive while it runs).
      if (c === 'continue' && resp?.success && r.bool(0.5))
        await new Promise((res) => setTimeout(res, r.int(20)));
      if ((c === 'terminate' || c === 'restart') && r.bool(0.7)) await send('launch', { kernel, memory: 16 });
    }
    // Still alive: pause and threads answer.
    if (!disconnected) {
      await send('pause', { threadId: 1 });
      const th = await send('threads', {});
      if (!th) f.missing.push(`seed ${seed}: threads did not answer at the end`);
    }
    const internalLogs = w.stderr.filter((s) => /internal error/.test(s));
    for (const s of internalLogs) f.internal.push(`seed ${seed}: logged ${truncate(s, 400)}`);
    for (const d of w.duplicate) f.internal.push(`seed ${seed}: two responses to ${d}`);
    f.shutdowns += w.shutdowns;
  } finally {
    await w.close();
  }
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

describe('DAP fuzz (issue 8)', function () {
  this.timeout(LONG ? 3_600_000 : 240_000);
  let dir = '';
  let kernel = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pvscope-dap-fuzz-'));
    kernel = join(dir, 'guest.elf');
    writeFileSync(kernel, buildXenGuest({ bits: 64, asm: GUEST }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('found by the fuzz: non-JSON frames, non-object messages and an unprintable command keep the session up', async () => {
    const w = new Wire();
    try {
      for (const t of ['not json', 'null', '5', '[]', '{"type":7}']) w.raw(t);
      const r = await w.request(JSON.parse('{"toString":null}'), {}, RESPONSE_BOUND_MS);
      assert.ok(r && !r.success && /'command' must be a string/.test(r.message ?? ''), JSON.stringify(r));
      const th = await w.request('threads', {}, RESPONSE_BOUND_MS);
      assert.ok(th?.success, JSON.stringify(th));
      assert.equal(w.shutdowns, 0);
      assert.ok(
        w.stderr.some((l) => /ignored a malformed DAP message/.test(l)),
        w.stderr.join(''),
      );
    } finally {
      await w.close();
    }
  });

  it(`${SEQUENCES} sequences of ${REQUESTS_PER_SEQUENCE} malformed requests: each answered, the session stays up`, async () => {
    const f: Figures = {
      requests: 0,
      errors: 0,
      internal: [],
      missing: [],
      slowestMs: 0,
      slowest: '',
      shutdowns: 0,
      uncaught: [],
      rawFrames: 0,
      succeeded: new Set(),
    };
    const onUncaught = (e: unknown) => f.uncaught.push(String((e as Error)?.stack ?? e));
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    // Mocha's own handler would end the test at the first one; count them all instead.
    const mochaHandlers = process.listeners('uncaughtException').filter((l) => l !== onUncaught);
    for (const l of mochaHandlers) process.removeListener('uncaughtException', l);
    const t0 = performance.now();
    try {
      for (let s = 1; s <= SEQUENCES; s++) await sequence(s, kernel, f);
      await new Promise((res) => setTimeout(res, 50));
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      process.removeListener('unhandledRejection', onUncaught);
      for (const l of mochaHandlers) process.on('uncaughtException', l);
    }
    const ms = performance.now() - t0;
    console.log(
      `      ${JSON.stringify({
        sequences: SEQUENCES,
        requests: f.requests,
        rawFrames: f.rawFrames,
        errorResponses: f.errors,
        internal: f.internal.length,
        missing: f.missing.length,
        uncaught: f.uncaught.length,
        shutdowns: f.shutdowns,
        commandsSucceeded: f.succeeded.size,
        neverSucceeded: COMMANDS.filter((c) => !f.succeeded.has(c)),
        slowestMs: Math.round(f.slowestMs),
        slowest: f.slowest,
        totalMs: Math.round(ms),
      })}`,
    );
    assert.deepEqual(f.uncaught, [], 'uncaught exceptions');
    assert.deepEqual(f.missing, [], 'requests without a response');
    assert.deepEqual(f.internal.slice(0, 20), [], 'internal errors');
    assert.equal(f.shutdowns, 0, 'the session shut itself down');
    assert.ok(f.requests >= SEQUENCES * 50, `only ${f.requests} requests`);
  });
});
