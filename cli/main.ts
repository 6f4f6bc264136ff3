/**
 * `pvscope run`: run a Xen PV guest headless (docs/trace-format.md for --trace).
 *
 * Exit status: 0 powered off; 1 crashed (reason and guest PC on stderr);
 * 2 bad usage or configuration; 3 timeout or instruction limit; 4 reboot.
 * A domain whose vCPUs all sleep with nothing to wake them (the engine's
 * 'blocked' stop) exits 1 with the reason, unless console input can still come.
 */
import { fetchDebianFile } from './debian';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createMachine, MachineConfigError, type TraceKind } from '../engine/machine';
import type { DomainConfig } from '../engine/machine-api';
import {
  checkRegularFile,
  ConfigError,
  parseDiskSpec,
  parseXlConfigDetailed,
  validateDomainConfig,
} from '../engine/xen/config';
import { getRip } from '../engine/xen/regs';

const USAGE = `usage: pvscope run [domain.cfg] [--kernel F] [--ramdisk F] [--cmdline S] [--memory MiB] [--vcpus N]
                   [--disk SPEC]... [--input TEXT] [--input-file F] [--timeout S] [--max-instructions N]
                   [--trace hypercalls,events,grants,faults] [--trace-file F] [--default-guest] [--demo-guest]`;

class UsageError extends Error {}

function die(code: number, msg: string): never {
  process.stderr.write(`pvscope: ${msg}\n`);
  process.exit(code);
}

function unescape(s: string): string {
  return s.replace(/\\(n|r|t|e|\\|x[0-9a-fA-F]{2})/g, (_m, c: string) => {
    if (c === 'n') return '\n';
    if (c === 'r') return '\r';
    if (c === 't') return '\t';
    if (c === 'e') return '\x1b';
    if (c === '\\') return '\\';
    return String.fromCharCode(parseInt(c.slice(1), 16));
  });
}

interface Options {
  cfg?: string;
  kernel?: string;
  ramdisk?: string;
  cmdline?: string;
  memory?: number;
  vcpus?: number;
  disks: string[];
  input?: string;
  timeout?: number;
  maxInstructions?: number;
  trace?: Set<TraceKind>;
  traceFile?: string;
  defaultGuest: boolean;
  demoGuest: boolean;
}

function parseArgs(argv: string[]): Options {
  if (argv[0] !== 'run')
    throw new UsageError(argv.length ? `unknown command '${argv[0]}'` : 'missing command');
  const o: Options = { disks: [], defaultGuest: false, demoGuest: false };
  /** A number; `positive` false leaves the range to validateDomainConfig (memory, vcpus: one set of limits). */
  const num = (name: string, v: string | undefined, int = true, positive = true): number => {
    if (v === undefined) throw new UsageError(`${name} needs a value`);
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (positive && n <= 0) || (int && !Number.isInteger(n)))
      throw new UsageError(`${name}: bad value '${v}'`);
    return n;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--kernel':
        o.kernel = val();
        break;
      case '--ramdisk':
        o.ramdisk = val();
        break;
      case '--cmdline':
        o.cmdline = val();
        break;
      case '--memory':
        o.memory = num(a, argv[++i], true, false);
        break;
      case '--vcpus':
        o.vcpus = num(a, argv[++i], true, false);
        break;
      case '--disk':
        o.disks.push(val());
        break;
      case '--input':
        o.input = (o.input ?? '') + unescape(val());
        break;
      case '--input-file': {
        const f = val();
        try {
          const abs = checkRegularFile('--input-file', f, process.cwd());
          o.input = (o.input ?? '') + fs.readFileSync(abs, 'latin1');
        } catch (e) {
          if (e instanceof ConfigError) throw new UsageError(e.message);
          throw new UsageError(`--input-file: cannot read ${f}: ${(e as Error).message}`);
        }
        break;
      }
      case '--timeout':
        o.timeout = num(a, argv[++i], false);
        break;
      case '--max-instructions':
        o.maxInstructions = num(a, argv[++i]);
        break;
      case '--trace': {
        const kinds = val()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const ok = ['hypercalls', 'events', 'grants', 'faults'];
        for (const k of kinds)
          if (!ok.includes(k)) throw new UsageError(`--trace: unknown kind '${k}' (use ${ok.join(',')})`);
        o.trace = new Set(kinds as TraceKind[]);
        break;
      }
      case '--trace-file':
        o.traceFile = val();
        break;
      case '--default-guest':
        o.defaultGuest = true;
        break;
      case '--demo-guest':
        o.demoGuest = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option '${a}'`);
        if (o.cfg) throw new UsageError(`unexpected argument '${a}'`);
        o.cfg = a;
    }
  }
  return o;
}

/** Debian's PV GRUB (grub-xen-host), fetched into .cache/debian/ on first use; else the demo guest. */
function defaultGuestPath(): string {
  try {
    return fetchDebianFile(
      path.resolve(__dirname, '..'),
      'grub-xen-host',
      '/usr/lib/grub-xen/grub-x86_64-xen.bin',
    );
  } catch (e) {
    process.stderr.write(
      `pvscope: ${(e as Error).message.split('\n')[0]}; running the demo guest built from guests/demo instead\n`,
    );
    return demoGuestPath();
  }
}

/**
 * Builds the demo guest (guests/demo/demo.S, a 64-bit PV kernel of the
 * project's own) with GNU as + ld into .cache/demo/ on first use.
 * Exits 2 with a message when binutils is missing.
 */
function demoGuestPath(): string {
  const root = path.resolve(__dirname, '..');
  const src = path.join(root, 'guests', 'demo', 'demo.S');
  const dir = path.join(root, '.cache', 'demo');
  const elf = path.join(dir, 'demo.elf');
  if (fs.existsSync(elf) && fs.statSync(elf).mtimeMs >= fs.statSync(src).mtimeMs) return elf;
  fs.mkdirSync(dir, { recursive: true });
  const obj = path.join(dir, 'demo.o');
  try {
    execFileSync('as', ['--64', '-o', obj, src], { stdio: 'pipe' });
    execFileSync(
      'ld',
      [
        '-m',
        'elf_x86_64',
        '-Ttext-segment=0x1000',
        '-z',
        'noexecstack',
        '--no-warn-rwx-segments',
        '-o',
        elf,
        obj,
      ],
      { stdio: 'pipe' },
    );
  } catch (e) {
    die(2, `cannot build the demo guest with GNU as/ld (binutils): ${(e as Error).message.split('\n')[0]}`);
  }
  return elf;
}

/** The validated option behind each DomainConfig key (validateDomainConfig's error keys). */
const OPTION_OF: Readonly<Record<string, string>> = {
  kernel: '--kernel',
  ramdisk: '--ramdisk',
  cmdline: '--cmdline',
  memory: '--memory',
  vcpus: '--vcpus',
  disks: '--disk',
};

/**
 * The DomainConfig for the options: the xl file (its warnings, e.g. unknown
 * keys, go to stderr) with the command-line options on top, validated by the
 * same engine/xen/config.ts checks as the xl file and the debug adapter's
 * launch attributes (same limits, same reasons, naming the option or the
 * file's key), and every file to be read checked to be a regular file
 * (`checkRegularFile`, the adapter's check). Exits 2 with the message.
 */
function buildConfig(o: Options): DomainConfig {
  const cwd = process.cwd();
  const cfgName = o.cfg;
  const fromOption = (key: string): boolean =>
    (key === 'kernel' && o.kernel !== undefined) ||
    (key === 'ramdisk' && o.ramdisk !== undefined) ||
    (key === 'disk' && o.disks.length > 0);
  try {
    let config: DomainConfig;
    if (cfgName !== undefined) {
      const abs = checkRegularFile('config file', cfgName, cwd);
      const text = fs.readFileSync(abs, 'utf8');
      let parsed;
      try {
        parsed = parseXlConfigDetailed(text, path.dirname(abs));
      } catch (e) {
        throw new UsageError(`${cfgName}: ${(e as Error).message}`);
      }
      for (const w of parsed.warnings) process.stderr.write(`pvscope: ${cfgName}: ${w}\n`);
      config = parsed.config;
      // The file's own images: refused up front when they are not regular files (unless an option replaces them).
      const inFile = (key: string, p: string) => {
        if (fromOption(key)) return;
        try {
          checkRegularFile(key, p, path.dirname(abs));
        } catch (e) {
          throw new UsageError(`${cfgName}: ${(e as Error).message}`);
        }
      };
      if (typeof config.kernel === 'string') inFile('kernel', config.kernel);
      if (typeof config.ramdisk === 'string') inFile('ramdisk', config.ramdisk);
      for (const d of config.disks) inFile('disk', d.target);
    } else {
      const kernel = o.demoGuest ? demoGuestPath() : o.defaultGuest ? defaultGuestPath() : o.kernel;
      if (!kernel)
        throw new UsageError(
          'no kernel: give a domain configuration file, --kernel, --default-guest or --demo-guest',
        );
      // A domain name from the file name, within validateDomainConfig's rules (64 characters, no "/" or controls).
      const name =
        path
          .basename(kernel)
          .replace(/[\x00-\x1f\x7f]/g, '_')
          .slice(0, 64) || 'pvscope-guest';
      config = { name, kernel, memory: 256, vcpus: 1, disks: [], vifs: [] };
    }
    if (o.kernel !== undefined) config.kernel = checkRegularFile('--kernel', o.kernel, cwd);
    else if (typeof config.kernel === 'string' && cfgName === undefined)
      config.kernel = checkRegularFile('kernel', config.kernel, cwd);
    if (o.ramdisk !== undefined) config.ramdisk = checkRegularFile('--ramdisk', o.ramdisk, cwd);
    if (o.cmdline !== undefined) config.cmdline = o.cmdline;
    if (o.memory !== undefined) config.memory = o.memory;
    if (o.vcpus !== undefined) config.vcpus = o.vcpus;
    for (const spec of o.disks) {
      let d;
      try {
        d = parseDiskSpec(spec, cwd);
      } catch (e) {
        if (e instanceof ConfigError) throw new UsageError(`--disk: ${e.reason}`);
        throw e;
      }
      d.target = checkRegularFile('--disk', d.target, cwd);
      config.disks.push(d);
    }
    try {
      return validateDomainConfig(config);
    } catch (e) {
      if (e instanceof ConfigError) {
        const opt = OPTION_OF[e.key];
        throw new UsageError(opt ? `${opt}: ${e.reason}` : e.message);
      }
      throw e;
    }
  } catch (e) {
    die(2, (e as Error).message);
  }
}

function main(): void {
  let o: Options;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    die(2, `${(e as Error).message}\n${USAGE}`);
  }
  const config = buildConfig(o);
  let traceOut: ((line: string) => void) | undefined;
  let traceFd = -1;
  if (o.trace || o.traceFile) {
    if (o.traceFile) {
      try {
        traceFd = fs.openSync(o.traceFile, 'w');
      } catch (e) {
        die(2, `--trace-file: cannot open ${o.traceFile}: ${(e as Error).message}`);
      }
      traceOut = (l) => fs.writeSync(traceFd, l + '\n');
    } else traceOut = (l) => process.stderr.write(l + '\n');
  }
  let m: ReturnType<typeof createMachine>;
  try {
    m = createMachine(config, {
      trace: traceOut
        ? { kinds: o.trace ?? new Set(['hypercalls', 'events', 'grants', 'faults']), sink: traceOut }
        : undefined,
      onConsoleIo: (d) => process.stdout.write(d),
    });
  } catch (e) {
    if (e instanceof MachineConfigError) die(2, e.message);
    die(2, (e as Error).message);
  }
  m.console.onOutput((d) => process.stdout.write(d));

  const interactive = process.stdin.isTTY && o.input === undefined;
  let quit = false;
  if (interactive) {
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (b: Buffer) => {
      if (b.includes(0x1d)) {
        quit = true;
        return;
      }
      m.console.input(new Uint8Array(b));
    });
    process.stderr.write('pvscope: interactive console (Ctrl-] to quit)\n');
  }
  // Scripted input: typed a few bytes at a time, once the guest has had time to start reading.
  const pendingInput = o.input !== undefined ? Buffer.from(o.input, 'latin1') : Buffer.alloc(0);
  let inputPos = 0;
  let sawOutput = false;
  let lastOut = 0;
  m.console.onOutput(() => {
    sawOutput = true;
    lastOut = m.info.instructionsRetired;
  });

  const start = Date.now();
  const limit = o.maxInstructions ?? Infinity;
  const finish = (code: number) => {
    if (interactive) process.stdin.setRawMode(false);
    if (traceFd >= 0) fs.closeSync(traceFd);
    m.destroy();
    process.exit(code);
  };
  // Each Machine.run(budget) call is bounded (about 5 ns of host time per budget unit for ordinary
  // code, up to about 100 ns for REP strings, see docs/architecture.md "The run loop"): the clock is
  // read after every call of at most CLI_SLICE units, so --timeout and Ctrl-] are honoured within
  // one call's time (under 100 ms even for REP loops on a loaded machine); a tick yields to the
  // event loop every 20 ms.
  const CLI_SLICE = 250_000;
  const timeoutMs = o.timeout !== undefined ? o.timeout * 1000 : Infinity;
  const tick = () => {
    const tickStart = Date.now();
    let idle = false;
    for (;;) {
      if (quit) {
        process.stderr.write('\npvscope: quit\n');
        return finish(0);
      }
      const budget = Math.min(CLI_SLICE, limit - m.info.instructionsRetired);
      if (budget <= 0) {
        process.stderr.write(`\npvscope: instruction limit reached (${limit})\n`);
        return finish(3);
      }
      const before = m.info.instructionsRetired;
      const s = m.run(budget);
      idle = m.info.instructionsRetired === before;
      // Feed scripted input when the guest has been quiet for a while (it is waiting for keys),
      // or sleeps with only console input to wake it.
      const waiting = s.kind === 'blocked' || (idle && sawOutput);
      if (
        inputPos < pendingInput.length &&
        sawOutput &&
        (waiting || m.info.instructionsRetired - lastOut > 2_000_000)
      ) {
        const chunk = pendingInput.subarray(inputPos, inputPos + 16);
        inputPos += chunk.length;
        m.console.input(new Uint8Array(chunk));
        lastOut = m.info.instructionsRetired;
      }
      if (s.kind === 'shutdown') {
        const v0 = m.dom.vcpus[0];
        if (m.dom.crashed !== null) {
          process.stderr.write(
            `\npvscope: domain crashed: ${m.dom.crashed}\npvscope: guest PC 0x${getRip(v0.cpu).toString(16)}\n`,
          );
          return finish(1);
        }
        if (s.reason === 'reboot') {
          process.stderr.write('\npvscope: the guest asked to reboot\n');
          return finish(4);
        }
        process.stderr.write(`\npvscope: domain shut down (${s.reason})\n`);
        return finish(s.reason === 'poweroff' ? 0 : 1);
      }
      if (s.kind === 'blocked') {
        // Only typed input can still wake it: wait for it when there is a keyboard or scripted input.
        const inputPossible = interactive || inputPos < pendingInput.length;
        if (s.forever || !inputPossible) {
          process.stderr.write(`\npvscope: ${s.description}\npvscope: guest PC ${s.details.rip}\n`);
          return finish(1);
        }
      }
      if (Date.now() - start > timeoutMs) {
        process.stderr.write(`\npvscope: timeout after ${o.timeout} s\n`);
        return finish(3);
      }
      if (idle || Date.now() - tickStart >= 20) break;
    }
    // An idle guest (waiting for console input) is polled every 10 ms instead of spinning.
    if (idle) setTimeout(tick, 10);
    else setImmediate(tick);
  };
  tick();
}

main();
