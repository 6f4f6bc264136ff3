/**
 * One argument schema per DAP request (Debug Adapter Protocol specification,
 * "Requests": the argument interfaces), checked before a handler runs: types,
 * integer ranges (offsets, counts, addresses, frame and thread ids), enums
 * (access types, granularities) and array lengths. A request whose
 * arguments do not fit gets an error response naming the argument path,
 * e.g. `argument 'breakpoints[0].offset' must be an integer in
 * -9007199254740991..9007199254740991`. Properties the schema does not name
 * are ignored (clients add their own), so they never reach a handler.
 *
 * The launch attributes are checked by launch.ts (`validateLaunchArgs`).
 */
import { RequestError } from './format';

/** A value's shape. `opt` marks an optional property (undefined or null pass). */
export type Schema = (
  | { t: 'any' }
  | { t: 'bool' }
  /** An integer in [min, max] (defaults: the safe integer range). `hex`: also "0x.." / decimal strings. */
  | { t: 'int'; min?: number; max?: number; hex?: boolean }
  | { t: 'string'; max?: number; oneOf?: readonly string[] }
  /** A memory reference or address: a string, or a non-negative safe integer. */
  | { t: 'ref' }
  | { t: 'array'; items: Schema; max?: number }
  | { t: 'object'; props: Record<string, Schema> }
  /** Either of two shapes (tried in order; the first one's error is reported). */
  | { t: 'either'; a: Schema; b: Schema }
) & { opt?: boolean };

const SAFE = Number.MAX_SAFE_INTEGER;
/** Longest string accepted in any argument (expressions, conditions, paths): 1 MiB characters. */
export const MAX_STRING = 1 << 20;
/** Longest array accepted (breakpoint lists): one million entries. */
export const MAX_ARRAY = 1_000_000;
/** Most bytes one readMemory may ask for (16 MiB), and the base64 text one writeMemory may carry. */
export const MAX_MEMORY_COUNT = 16 * 1024 * 1024;
/** Most instructions one disassemble may ask for. */
export const MAX_INSTRUCTION_COUNT = 10000;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  return `a ${typeof v}`;
}

function bad(path: string, what: string, v: unknown): RequestError {
  return new RequestError(`argument '${path}' must be ${what} (got ${describe(v)})`);
}

/**
 * Checks `v` against `s`; `path` names it in errors (`breakpoints[3].line`).
 * Throws RequestError. Runs in time linear in the size of what the schema names.
 */
export function check(s: Schema, v: unknown, path: string): void {
  if (v === undefined || v === null) {
    if (s.opt || s.t === 'any') return;
    throw new RequestError(`missing argument '${path}'`);
  }
  switch (s.t) {
    case 'any':
      return;
    case 'bool':
      if (typeof v !== 'boolean') throw bad(path, 'true or false', v);
      return;
    case 'int': {
      const min = s.min ?? -SAFE;
      const max = s.max ?? SAFE;
      let n: number;
      if (typeof v === 'number') n = v;
      else if (s.hex && typeof v === 'string' && /^\s*(0x[0-9a-fA-F]{1,16}|[0-9]{1,16})\s*$/.test(v))
        n = Number(v.trim());
      else throw bad(path, `an integer in ${min}..${max}`, v);
      if (!Number.isInteger(n) || n < min || n > max) throw bad(path, `an integer in ${min}..${max}`, v);
      return;
    }
    case 'string':
      if (typeof v !== 'string') throw bad(path, 'a string', v);
      if (v.length > (s.max ?? MAX_STRING))
        throw new RequestError(`argument '${path}' is longer than ${s.max ?? MAX_STRING} characters`);
      if (s.oneOf && !s.oneOf.includes(v))
        throw bad(path, `one of ${s.oneOf.map((x) => `'${x}'`).join(', ')}`, v);
      return;
    case 'ref':
      if (typeof v === 'string') {
        if (v.length > 100) throw new RequestError(`argument '${path}' is not a memory reference`);
        return;
      }
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return;
      throw bad(path, 'a memory reference such as "0x1000", "v:0x1000", "p:0x1000" or "m:0x1000"', v);
    case 'array': {
      if (!Array.isArray(v)) throw bad(path, 'an array', v);
      const max = s.max ?? MAX_ARRAY;
      if (v.length > max) throw new RequestError(`argument '${path}' has more than ${max} entries`);
      for (let i = 0; i < v.length; i++) check(s.items, v[i], `${path}[${i}]`);
      return;
    }
    case 'object': {
      if (typeof v !== 'object' || Array.isArray(v)) throw bad(path, 'an object', v);
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(s.props))
        check(s.props[k], Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined, `${path}.${k}`);
      return;
    }
    case 'either':
      try {
        check(s.a, v, path);
      } catch (e) {
        try {
          check(s.b, v, path);
        } catch {
          throw e;
        }
      }
      return;
  }
}

/** Checks a request's arguments object; property errors name the property without a prefix. */
export function checkArguments(command: string, args: unknown): void {
  const s = REQUEST_SCHEMAS.get(command);
  if (args !== undefined && args !== null && (typeof args !== 'object' || Array.isArray(args)))
    throw new RequestError(`the arguments of '${command}' must be an object (got ${describe(args)})`);
  if (!s) return;
  const o = (args ?? {}) as Record<string, unknown>;
  for (const k of Object.keys(s))
    check(s[k], Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined, k);
}

const opt = <T extends Schema>(s: T): T => ({ ...s, opt: true });
const int = (min?: number, max?: number): Schema => ({ t: 'int', min, max });
const str: Schema = { t: 'string' };
const bool: Schema = { t: 'bool', opt: true };
const obj = (props: Record<string, Schema>): Schema => ({ t: 'object', props });
const arr = (items: Schema, max?: number): Schema => ({ t: 'array', items, max });
/** Thread ids are vCPU index + 1; the handler checks the upper bound against the domain. */
const threadId = opt(int(1, 1 << 20));
/** Frame ids: vCPU * 10000 + frame index (session.ts FRAME_STRIDE). */
const frameId = int(0, SAFE);
const variablesReference = int(0, 2 ** 31 - 1);
/** Memory offsets: any safe integer (the sum with the reference is taken modulo 2^64). */
const offset = opt(int());
const condition = opt({ ...str, max: 65536 });
const vcpu: Schema = { t: 'int', min: 0, max: 1 << 20, hex: true, opt: true };
const format = opt(obj({ hex: bool }));
const source = obj({
  name: opt(str),
  path: opt(str),
  sourceReference: opt(int(0, 2 ** 31 - 1)),
});
const stepArgs = {
  threadId,
  singleThread: bool,
  targetId: opt(int()),
  granularity: opt({ t: 'string', oneOf: ['statement', 'line', 'instruction'] } as Schema),
};

/** Property schemas of each request's arguments (DAP specification; pvscope/* in docs/debug-adapter.md). */
export const REQUEST_SCHEMAS: ReadonlyMap<string, Record<string, Schema>> = new Map<
  string,
  Record<string, Schema>
>([
  [
    'initialize',
    {
      clientID: opt(str),
      clientName: opt(str),
      adapterID: opt(str),
      locale: opt(str),
      linesStartAt1: bool,
      columnsStartAt1: bool,
      pathFormat: opt(str),
    },
  ],
  ['launch', {}],
  ['attach', {}],
  ['configurationDone', {}],
  [
    'setBreakpoints',
    {
      source,
      breakpoints: opt(
        arr(
          obj({
            line: int(1, 2 ** 31 - 1),
            column: opt(int(0, 2 ** 31 - 1)),
            condition,
            hitCondition: condition,
            logMessage: condition,
          }),
        ),
      ),
      lines: opt(arr(int(1, 2 ** 31 - 1))),
      sourceModified: bool,
    },
  ],
  [
    'setFunctionBreakpoints',
    { breakpoints: arr(obj({ name: { ...str, max: 65536 }, condition, hitCondition: condition })) },
  ],
  [
    'setInstructionBreakpoints',
    {
      breakpoints: arr(
        obj({
          instructionReference: { t: 'string', max: 100 },
          offset,
          condition,
          hitCondition: condition,
          mode: opt(str),
        }),
      ),
    },
  ],
  [
    'setExceptionBreakpoints',
    {
      filters: opt(arr({ t: 'string', max: 100 }, 1000)),
      filterOptions: opt(arr(obj({ filterId: { t: 'string', max: 100 }, condition }), 1000)),
      exceptionOptions: opt({ t: 'array', items: { t: 'any' }, max: 1000 }),
    },
  ],
  [
    'dataBreakpointInfo',
    {
      variablesReference: opt(variablesReference),
      name: { ...str, max: 65536 },
      frameId: opt(frameId),
      bytes: opt(int(1, 1 << 20)),
      asAddress: bool,
      mode: opt(str),
    },
  ],
  [
    'setDataBreakpoints',
    {
      breakpoints: arr(
        obj({
          dataId: { t: 'string', max: 200 },
          accessType: opt({ t: 'string', oneOf: ['read', 'write', 'readWrite'] } as Schema),
          condition,
          hitCondition: condition,
        }),
      ),
    },
  ],
  ['threads', {}],
  ['stackTrace', { threadId, startFrame: opt(int(0, SAFE)), levels: opt(int(0, SAFE)), format }],
  // frameOf() checks it and answers 'unknown frameId'.
  ['scopes', { frameId: { t: 'any' } }],
  [
    'variables',
    {
      variablesReference,
      filter: opt({ t: 'string', oneOf: ['indexed', 'named'] } as Schema),
      start: opt(int(0, SAFE)),
      count: opt(int(0, SAFE)),
      format,
    },
  ],
  ['setVariable', { variablesReference, name: { ...str, max: 1000 }, value: { ...str, max: 65536 }, format }],
  [
    'evaluate',
    {
      expression: { ...str, max: 65536 },
      frameId: opt(frameId),
      context: opt({ ...str, max: 100 }),
      format,
    },
  ],
  ['continue', { threadId, singleThread: bool }],
  ['next', stepArgs],
  ['stepIn', stepArgs],
  ['stepOut', stepArgs],
  ['pause', { threadId }],
  ['readMemory', { memoryReference: { t: 'ref' }, offset, count: int(0, MAX_MEMORY_COUNT) }],
  [
    'writeMemory',
    {
      memoryReference: { t: 'ref' },
      offset,
      allowPartial: bool,
      force: bool,
      data: { t: 'string', max: Math.ceil(MAX_MEMORY_COUNT / 3) * 4 },
    },
  ],
  [
    'disassemble',
    {
      memoryReference: { t: 'ref' },
      offset,
      instructionOffset: offset,
      instructionCount: int(0, MAX_INSTRUCTION_COUNT),
      resolveSymbols: bool,
    },
  ],
  ['exceptionInfo', { threadId }],
  ['source', { source: opt(source), sourceReference: opt(int(0, 2 ** 31 - 1)) }],
  ['loadedSources', {}],
  ['terminate', { restart: bool }],
  ['restart', { arguments: opt(obj({})) }],
  ['disconnect', { restart: bool, terminateDebuggee: bool, suspendDebuggee: bool }],
  ['pvscope/descriptorTables', { vcpu }],
  [
    'pvscope/pageTable',
    {
      vcpu,
      root: opt({
        t: 'either',
        a: { t: 'string', max: 100 },
        b: int(0, SAFE),
      } as Schema),
    },
  ],
  ['pvscope/walk', { vcpu, va: { t: 'ref' } }],
  ['pvscope/eventChannels', {}],
  ['pvscope/grants', {}],
  ['pvscope/xenstore', { path: opt({ ...str, max: 4096 }) }],
  ['pvscope/consoleInput', { text: { ...str, max: 1 << 20 } }],
  ['pvscope/status', {}],
]);
