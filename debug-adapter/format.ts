/**
 * Small helpers shared by the adapter's requests: memory references,
 * bigint-safe JSON, register trees and argument checking.
 */

/** Address spaces of memory references. */
export type Space = 'virtual' | 'physical' | 'machine';

/** A parsed memory reference. */
export interface MemRef {
  space: Space;
  address: bigint;
}

/** An error whose message is shown to the user as the response's message. */
export class RequestError extends Error {}

/**
 * Parses a DAP memory reference: `v:0x...` (guest virtual through the
 * current CR3), `p:0x...` (pseudo-physical), `m:0x...` (machine), or a plain
 * number (`0x...` or decimal) meaning virtual. Throws RequestError.
 */
export function parseMemRef(ref: unknown, what = 'memoryReference'): MemRef {
  if (typeof ref !== 'string' && typeof ref !== 'number')
    throw new RequestError(
      `'${what}' must be a string such as "0x1000", "v:0x1000", "p:0x1000" or "m:0x1000"`,
    );
  const s = String(ref).trim();
  const m = /^(?:([vpmVPM]):)?\s*(0[xX][0-9a-fA-F]+|[0-9]+)$/.exec(s);
  if (!m)
    throw new RequestError(`bad ${what} '${s}' (expected "0x1000", "v:0x1000", "p:0x1000" or "m:0x1000")`);
  const space: Space =
    !m[1] || m[1].toLowerCase() === 'v' ? 'virtual' : m[1].toLowerCase() === 'p' ? 'physical' : 'machine';
  const address = BigInt(m[2]);
  if (address >= 1n << 64n) throw new RequestError(`${what} '${s}' is beyond 64 bits`);
  return { space, address };
}

/** Formats a memory reference; virtual addresses are plain `0x...` so clients can do arithmetic on them. */
export function formatMemRef(space: Space, address: bigint): string {
  const a = '0x' + BigInt.asUintN(64, address).toString(16);
  return space === 'virtual' ? a : `${space === 'physical' ? 'p' : 'm'}:${a}`;
}

/** Hex with zero padding to `digits`. */
export function hexPad(v: bigint, digits: number): string {
  return '0x' + BigInt.asUintN(64, v).toString(16).padStart(digits, '0');
}

/** Deep copy with every bigint replaced by a `"0x..."` hex string (the JSON of custom requests). */
export function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return '0x' + BigInt.asUintN(64, v).toString(16);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (v instanceof Uint8Array) return Array.from(v);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = jsonSafe(x);
    return o;
  }
  return v;
}

/** Reads an optional integer argument (number, or "0x.." string), checking range; throws RequestError. */
export function argInt(
  args: Record<string, unknown> | undefined,
  key: string,
  def: number | undefined,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = args?.[key];
  if (v === undefined || v === null) {
    if (def === undefined) throw new RequestError(`missing argument '${key}'`);
    return def;
  }
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) n = Number(v.trim());
  else throw new RequestError(`argument '${key}' must be an integer`);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new RequestError(`argument '${key}' must be an integer in ${min}..${max}`);
  return n;
}

/** Reads an address argument (number or "0x..." string) as bigint; throws RequestError. */
export function argAddress(args: Record<string, unknown> | undefined, key: string): bigint {
  const v = args?.[key];
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) {
    const b = BigInt(v.trim());
    if (b < 1n << 64n) return b;
  }
  throw new RequestError(`argument '${key}' must be an address (number or "0x..." string)`);
}

/** RFLAGS bits shown as children of the flags register (SDM vol. 1 §3.4.3). */
export const RFLAGS_BITS: [string, number, number][] = [
  ['CF', 0, 1],
  ['PF', 2, 1],
  ['AF', 4, 1],
  ['ZF', 6, 1],
  ['SF', 7, 1],
  ['TF', 8, 1],
  ['IF', 9, 1],
  ['DF', 10, 1],
  ['OF', 11, 1],
  ['IOPL', 12, 2],
  ['NT', 14, 1],
  ['RF', 16, 1],
  ['VM', 17, 1],
  ['AC', 18, 1],
  ['VIF', 19, 1],
  ['VIP', 20, 1],
  ['ID', 21, 1],
];

/** CR0/CR4/EFER bit names for the registers view. */
export const CONTROL_BITS: Record<string, [string, number][]> = {
  cr0: [
    ['PE', 0],
    ['MP', 1],
    ['EM', 2],
    ['TS', 3],
    ['ET', 4],
    ['NE', 5],
    ['WP', 16],
    ['AM', 18],
    ['NW', 29],
    ['CD', 30],
    ['PG', 31],
  ],
  cr4: [
    ['VME', 0],
    ['PVI', 1],
    ['TSD', 2],
    ['DE', 3],
    ['PSE', 4],
    ['PAE', 5],
    ['MCE', 6],
    ['PGE', 7],
    ['PCE', 8],
    ['OSFXSR', 9],
    ['OSXMMEXCPT', 10],
    ['UMIP', 11],
    ['FSGSBASE', 16],
    ['PCIDE', 17],
    ['OSXSAVE', 18],
    ['SMEP', 20],
    ['SMAP', 21],
  ],
  efer: [
    ['SCE', 0],
    ['LME', 8],
    ['LMA', 10],
    ['NXE', 11],
  ],
};

/** Canonical display order of registers; others follow alphabetically. */
export const REGISTER_ORDER = [
  'rax',
  'rbx',
  'rcx',
  'rdx',
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
  'eax',
  'ebx',
  'ecx',
  'edx',
  'esi',
  'edi',
  'ebp',
  'esp',
  'rip',
  'eip',
  'rflags',
  'eflags',
  'cs',
  'ss',
  'ds',
  'es',
  'fs',
  'gs',
  'fs.base',
  'gs.base',
  'kernel_gs.base',
  'kernelgsbase',
  'cr0',
  'cr2',
  'cr3',
  'cr4',
  'efer',
  'gdtr',
  'idtr',
  'ldtr',
  'tr',
  'dr0',
  'dr1',
  'dr2',
  'dr3',
  'dr6',
  'dr7',
];

/** Sub-registers derived from 64-bit GPRs: name -> [parent, shift, bits]. */
export const SUBREGS: Record<string, [string, number, number]> = (() => {
  const out: Record<string, [string, number, number]> = {};
  for (const r of ['a', 'b', 'c', 'd']) {
    out[`e${r}x`] = [`r${r}x`, 0, 32];
    out[`${r}x`] = [`r${r}x`, 0, 16];
    out[`${r}l`] = [`r${r}x`, 0, 8];
    out[`${r}h`] = [`r${r}x`, 8, 8];
  }
  for (const r of ['si', 'di', 'bp', 'sp']) {
    out[`e${r}`] = [`r${r}`, 0, 32];
    out[r] = [`r${r}`, 0, 16];
    out[`${r}l`] = [`r${r}`, 0, 8];
  }
  for (let i = 8; i < 16; i++) {
    out[`r${i}d`] = [`r${i}`, 0, 32];
    out[`r${i}w`] = [`r${i}`, 0, 16];
    out[`r${i}b`] = [`r${i}`, 0, 8];
  }
  out.eip = ['rip', 0, 32];
  out.eflags = ['rflags', 0, 32];
  return out;
})();

/**
 * A copy of `v` that JSON.stringify always accepts and that means the same
 * to a client: bigints become `"0x..."` strings (64-bit two's complement),
 * Uint8Arrays number arrays, functions and symbols are dropped, objects
 * nested deeper than `depth` (or met again on their own path) become
 * `"[...]"`, and an object whose properties cannot be read becomes
 * `"[unreadable]"`. Used on every response and event body the adapter sends.
 */
export function wireSafe(v: unknown, depth = 64, path: object[] = []): unknown {
  switch (typeof v) {
    case 'bigint':
      return '0x' + BigInt.asUintN(64, v).toString(16);
    case 'function':
    case 'symbol':
      return undefined;
    case 'object':
      break;
    default:
      return v;
  }
  if (v === null) return null;
  if (depth <= 0 || path.includes(v)) return '[...]';
  if (v instanceof Uint8Array) return Array.from(v);
  path.push(v);
  try {
    if (Array.isArray(v)) return v.map((x) => wireSafe(x, depth - 1, path) ?? null);
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      const x = wireSafe((v as Record<string, unknown>)[k], depth - 1, path);
      if (x !== undefined) o[k] = x;
    }
    return o;
  } catch {
    return '[unreadable]';
  } finally {
    path.pop();
  }
}
