/**
 * Validation of the `pvscope` launch attributes (package.json
 * `contributes.debuggers[0].configurationAttributes.launch`) into a
 * DomainConfig plus the adapter's own options. Every bad attribute gives a
 * {@link LaunchError} whose message names the attribute.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DiskSpec, DomainConfig } from '../engine/machine-api';
import {
  checkRegularFile,
  ConfigError,
  describeValue,
  parseDiskSpec as parseXlDiskSpec,
  parseXlConfigDetailed,
  validateDomainConfig,
} from '../engine/xen/config';

/** A launch attribute was missing, ill-typed or pointed at something unusable. */
export class LaunchError extends Error {
  constructor(
    readonly attribute: string,
    reason: string,
  ) {
    super(`launch attribute '${attribute}': ${reason}`);
    this.name = 'LaunchError';
  }
}

/** An ELF file whose symbols (and line tables, where present) the debugger loads; `offset` is added to every address. */
export interface SymbolFileSpec {
  path: string;
  offset: bigint;
}

/** Everything a launch needs. */
export interface LaunchPlan {
  config: DomainConfig;
  symbols: SymbolFileSpec[];
  stopOnEntry: boolean;
  consoleInput?: string;
  trace: boolean;
  /** Warnings for the Debug Console, e.g. the xl file's unknown keys ("FILE: line N: unknown key "k" ignored"). */
  warnings: string[];
}

/** Parses an xl configuration file's text into a DomainConfig (engine/xen/config.ts `parseXlConfig`). */
export type XlParser = (text: string, baseDir: string) => DomainConfig;

/** Attributes VS Code or users add to every configuration; accepted and ignored. */
const GENERIC_KEYS = new Set([
  'type',
  'request',
  'name',
  'cwd',
  'preLaunchTask',
  'postDebugTask',
  'internalConsoleOptions',
  'presentation',
  'debugServer',
  'noDebug',
  'suppressMultipleSessionWarning',
  'env',
  'envFile',
]);

/** The launch attributes this adapter accepts (package.json declares the same). */
export const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'kernel',
  'ramdisk',
  'cmdline',
  'memory',
  'vcpus',
  'disks',
  'config',
  'symbols',
  'stopOnEntry',
  'consoleInput',
  'trace',
  'domainName',
  'consoleIoWrites',
]);

function str(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new LaunchError(key, `expected a string, got ${typeof v}`);
  return v;
}

function bool(args: Record<string, unknown>, key: string): boolean | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new LaunchError(key, `expected true or false, got ${describeValue(v)}`);
  return v;
}

/** engine/xen/config.ts `checkRegularFile` (the CLI's check too), naming the launch attribute. Throws LaunchError. */
function existingFile(key: string, p: string, base: string): string {
  try {
    return checkRegularFile(key, p, base);
  } catch (e) {
    if (e instanceof ConfigError) throw new LaunchError(key, e.reason);
    throw e;
  }
}

/** Parses one xl disk spec through engine/xen/config.ts, naming the launch attribute on error. Throws LaunchError. */
export function parseDiskSpec(spec: string, base: string, key = 'disks'): DiskSpec {
  let d: DiskSpec;
  try {
    d = parseXlDiskSpec(spec, base);
  } catch (e) {
    throw new LaunchError(key, e instanceof ConfigError ? e.reason : (e as Error).message);
  }
  d.target = existingFile(key, d.target, base);
  return d;
}

function parseOffset(key: string, v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?(0x[0-9a-fA-F]+|[0-9]+)$/.test(v.trim())) {
    const t = v.trim();
    return t.startsWith('-') ? -BigInt(t.slice(1)) : BigInt(t);
  }
  throw new LaunchError(key, `offset must be a number or a "0x..." string, got ${describeValue(v)}`);
}

/**
 * Validates launch arguments. `xlParser` parses the `config` file when given
 * (explicit attributes override the file's keys). Relative paths resolve
 * against `cwd` (default: the process's working directory); paths inside an
 * xl file resolve against the file's directory. memory, vcpus and cmdline
 * go through engine/xen/config.ts validateDomainConfig (the same limits and
 * reasons as the CLI and the xl file). The plan's `warnings` carry the xl
 * file's warnings (unknown keys) when the built-in parser reads it. Throws
 * LaunchError.
 */
export function validateLaunchArgs(raw: unknown, xlParser?: XlParser): LaunchPlan {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new LaunchError('arguments', 'expected an object');
  const args = raw as Record<string, unknown>;
  for (const k of Object.keys(args)) {
    if (k.startsWith('__') || GENERIC_KEYS.has(k) || KNOWN_KEYS.has(k)) continue;
    throw new LaunchError(k, `unknown attribute (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const cwd = str(args, 'cwd') ?? process.cwd();
  let base: Partial<DomainConfig> = {};
  const warnings: string[] = [];
  const configPath = str(args, 'config');
  if (configPath !== undefined) {
    const abs = existingFile('config', configPath, cwd);
    try {
      const text = readFileSync(abs, 'utf8');
      if (xlParser) base = xlParser(text, dirname(abs));
      else {
        const r = parseXlConfigDetailed(text, dirname(abs));
        base = r.config;
        for (const w of r.warnings) warnings.push(`${abs}: ${w}`);
      }
    } catch (e) {
      throw new LaunchError('config', `${abs}: ${(e as Error).message}`);
    }
    // The file's own kernel, ramdisk and disk images get the same regular-file check, naming the xl key.
    const inFile = (key: string, p: string): string => {
      try {
        return checkRegularFile(key, p, dirname(abs));
      } catch (e) {
        if (e instanceof ConfigError) throw new LaunchError('config', `${abs}: ${e.message}`);
        throw e;
      }
    };
    if (typeof base.kernel === 'string' && args.kernel == null) inFile('kernel', base.kernel);
    if (typeof base.ramdisk === 'string' && args.ramdisk == null) inFile('ramdisk', base.ramdisk);
    if (args.disks == null) for (const d of base.disks ?? []) inFile('disk', d.target);
  }
  const kernelAttr = str(args, 'kernel');
  let kernel: string | Uint8Array | undefined = base.kernel;
  if (kernelAttr !== undefined) kernel = existingFile('kernel', kernelAttr, cwd);
  if (kernel === undefined)
    throw new LaunchError('kernel', 'missing (give a kernel path, or a config file with a kernel= line)');
  const ramdiskAttr = str(args, 'ramdisk');
  const ramdisk = ramdiskAttr !== undefined ? existingFile('ramdisk', ramdiskAttr, cwd) : base.ramdisk;
  const cmdline = str(args, 'cmdline') ?? base.cmdline;
  // memory and vcpus: type and range checked once, by validateDomainConfig below (the CLI's and the xl file's check).
  const memory = (args.memory ?? base.memory ?? 128) as number;
  const vcpus = (args.vcpus ?? base.vcpus ?? 1) as number;
  let disks = base.disks ?? [];
  if (args.disks !== undefined) {
    if (!Array.isArray(args.disks))
      throw new LaunchError('disks', 'expected an array of xl disk specs or {target, vdev, access} objects');
    disks = args.disks.map((d, i) => {
      const key = `disks[${i}]`;
      if (typeof d === 'string') return parseDiskSpec(d, cwd, key);
      if (typeof d !== 'object' || d === null) throw new LaunchError(key, 'expected a string or an object');
      const o = d as Record<string, unknown>;
      if (typeof o.target !== 'string') throw new LaunchError(`${key}.target`, 'expected a string path');
      if (typeof o.vdev !== 'string')
        throw new LaunchError(`${key}.vdev`, 'expected a string such as "xvda"');
      const access = o.access === undefined ? 'rw' : o.access;
      if (typeof access !== 'string') throw new LaunchError(`${key}.access`, 'expected "r" or "w"');
      const fmt = o.format === undefined ? '' : `format=${String(o.format)},`;
      return parseDiskSpec(
        `${fmt}vdev=${o.vdev},access=${access},target=${resolve(cwd, o.target)}`,
        cwd,
        key,
      );
    });
  }
  const symbols: SymbolFileSpec[] = [];
  if (args.symbols !== undefined) {
    if (!Array.isArray(args.symbols))
      throw new LaunchError('symbols', 'expected an array of {path, offset?}');
    args.symbols.forEach((s, i) => {
      const key = `symbols[${i}]`;
      if (typeof s === 'string') symbols.push({ path: existingFile(key, s, cwd), offset: 0n });
      else if (typeof s === 'object' && s !== null && typeof (s as { path?: unknown }).path === 'string') {
        const o = s as { path: string; offset?: unknown };
        symbols.push({
          path: existingFile(`${key}.path`, o.path, cwd),
          offset: parseOffset(`${key}.offset`, o.offset),
        });
      } else throw new LaunchError(key, 'expected {path, offset?} or a path string');
    });
  }
  const stopOnEntry = bool(args, 'stopOnEntry') ?? true;
  const consoleInput = str(args, 'consoleInput');
  const trace = bool(args, 'trace') ?? false;
  const consoleIoWrites = bool(args, 'consoleIoWrites') ?? base.consoleIoWrites;
  const nameAttr = str(args, 'domainName');
  const config: DomainConfig = {
    ...base,
    name: nameAttr ?? base.name ?? 'pvscope-guest',
    kernel,
    ramdisk,
    cmdline,
    memory,
    vcpus,
    disks,
    vifs: base.vifs ?? [],
  };
  if (consoleIoWrites !== undefined) config.consoleIoWrites = consoleIoWrites;
  if (ramdisk === undefined) delete config.ramdisk;
  if (cmdline === undefined) delete config.cmdline;
  let clean: DomainConfig;
  try {
    clean = validateDomainConfig(config);
  } catch (e) {
    if (e instanceof ConfigError)
      throw new LaunchError(e.key === 'name' ? 'domainName' : e.key || 'arguments', e.reason);
    throw e;
  }
  return { config: clean, symbols, stopOnEntry, consoleInput, trace, warnings };
}
