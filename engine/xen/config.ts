/**
 * xl domain configuration files (xl.cfg(5), xl-disk-configuration(5),
 * xl-network-configuration(5)) parsed and validated into a DomainConfig
 * (engine/machine-api.ts), and validation of the same shape when it comes
 * from elsewhere (the debug adapter's launch attributes).
 *
 * Syntax (libxlu's cfg grammar): `key = value` or `key += value`
 * statements ended by a newline or `;`; values are strings in double or
 * single quotes (C escapes `\n \t \\ \" \' \xHH \ooo` ...), numbers
 * (decimal, 0x hex, with an optional fraction), or lists `[ v, v, ]` that
 * may span lines; `#` starts a comment outside strings.
 *
 * Keys, one by one:
 * - used: `name` (required), `type`/`builder` (must be PV: `pv`,
 *   `generic`, `linux`), `kernel` (required), `ramdisk`, `cmdline`, or
 *   `root` + `extra` (ignored, with a warning, when `cmdline` is set, as xl
 *   does), `memory` (MiB, default 128), `maxmem` (must be >= memory; the
 *   guest starts with `memory`), `vcpus` (default 1), `maxvcpus` (must
 *   equal vcpus), `disk`, `vif`, `on_poweroff` / `on_reboot` / `on_crash`
 *   (`destroy`, `restart`, `preserve`; xl's `rename-restart`,
 *   `coredump-destroy`, `coredump-restart` and `soft-reset` are refused as
 *   unsupported). Relative `kernel`, `ramdisk` and disk paths are resolved
 *   against the configuration file's directory.
 * - refused when set to anything but an empty string or list (they would
 *   change what the guest sees and pvscope does not model them): see
 *   REFUSED_KEYS below.
 * - ignored (no effect on a PV guest inside pvscope, e.g. `uuid`,
 *   scheduling, HVM-only and display keys): see IGNORED_KEYS below.
 * - anything else is ignored with a warning, as xl ignores unknown keys.
 *
 * Every problem is a ConfigError naming the key (and the line when the
 * text came from a file) and the reason.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DiskSpec, DomainConfig, ShutdownAction, VifSpec } from '../machine-api';
import { vdevToDevid } from '../dom0/vdev';

/** A configuration problem: `key` is the offending key ('' for a syntax error outside any key). */
export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
    readonly line?: number,
  ) {
    super(`${line !== undefined ? `line ${line}: ` : ''}${key ? `${key}: ` : ''}${reason}`);
    this.name = 'ConfigError';
  }
}

/** Keys refused because they change the guest's view and pvscope does not model them (key -> why). */
export const REFUSED_KEYS: Readonly<Record<string, string>> = {
  bootloader: 'host-side bootloaders (pygrub) are not supported; boot PV GRUB as the kernel instead',
  bootloader_args: 'host-side bootloaders are not supported',
  pci: 'PCI passthrough is not supported',
  pci_permissive: 'PCI passthrough is not supported',
  pci_msitranslate: 'PCI passthrough is not supported',
  pci_seize: 'PCI passthrough is not supported',
  pci_power_mgmt: 'PCI passthrough is not supported',
  dtdev: 'device tree passthrough is not supported',
  iomem: 'I/O memory passthrough is not supported',
  ioports: 'I/O port passthrough is not supported',
  irqs: 'IRQ passthrough is not supported',
  e820_host: 'the host E820 map is not supported',
  usbctrl: 'PV USB is not supported',
  usbdev: 'PV USB is not supported',
  vtpm: 'vTPM devices are not supported',
  vfb: 'PV framebuffers are not supported',
  vkb: 'PV keyboards are not supported',
  channel: 'PV channels are not supported',
  p9: '9pfs devices are not supported',
  pvcalls: 'PV calls are not supported',
  vdispl: 'PV displays are not supported',
  vsnd: 'PV sound is not supported',
  vuart: 'virtual UARTs are not supported',
  cpuid: 'CPUID policy overrides are not supported',
  max_grant_frames: 'only the default grant table size is supported',
  max_event_channels: 'only the default event channel limit is supported',
  device_tree: 'device trees are not supported',
  driver_domain: 'driver domains are not supported',
  pvh: 'only PV guests are supported',
  nestedhvm: 'only PV guests are supported',
};

/** Keys accepted and ignored: no effect on a PV guest run by pvscope. */
export const IGNORED_KEYS: ReadonlySet<string> = new Set([
  'uuid',
  'description',
  'seclabel',
  'init_seclabel',
  'stubdomain_seclabel',
  'device_model_stubdomain_seclabel',
  'cpus',
  'cpus_soft',
  'cpu_weight',
  'cap',
  'pool',
  'vcpu_hard_affinity',
  'vcpu_soft_affinity',
  'nomigrate',
  'localtime',
  'rtc_timeoffset',
  'tsc_mode',
  'claim_mode',
  'max_maptrack_frames',
  'on_watchdog',
  'on_soft_reset',
  'autoballoon',
  'shadow_memory',
  'dm_restrict',
  'xsm',
  'gfx_passthru',
  // HVM and display keys, which xl ignores for PV guests.
  'vnc',
  'vnclisten',
  'vncdisplay',
  'vncunused',
  'vncpasswd',
  'sdl',
  'opengl',
  'keymap',
  'serial',
  'boot',
  'acpi',
  'acpi_s3',
  'acpi_s4',
  'apic',
  'pae',
  'hap',
  'hpet',
  'stdvga',
  'vga',
  'videoram',
  'viridian',
  'soundhw',
  'usb',
  'usbdevice',
  'xen_platform_pci',
  'device_model_version',
  'device_model_override',
  'device_model_args',
  'device_model_user',
  'spice',
  'nographic',
]);

const SHUTDOWN_ACTIONS: readonly string[] = ['destroy', 'restart', 'preserve'];
const XL_ONLY_ACTIONS: readonly string[] = [
  'rename-restart',
  'coredump-destroy',
  'coredump-restart',
  'soft-reset',
];

/**
 * Largest guest RAM accepted, MiB (machine memory holds at most 4 GiB
 * including Xen's own frames). The one limit for the xl file, the CLI's
 * `--memory` and the adapter's `memory` attribute.
 */
export const MAX_MEMORY_MIB = 3584;
/**
 * Most vCPUs a domain can have: the vcpu_info slots in shared_info (Xen
 * public/xen.h XEN_LEGACY_MAX_VCPUS = 32; pvscope does not model
 * VCPUOP_register_vcpu_info placement beyond them). The builder
 * (engine/xen/builder.ts) enforces the same constant.
 */
export const MAX_VCPUS = 32;
/** start_info.cmd_line is 1024 bytes including the NUL (Xen public/xen.h MAX_GUEST_CMDLINE). */
export const MAX_CMDLINE = 1023;

/** A parsed xl value. */
type XlValue = { kind: 'string'; v: string } | { kind: 'number'; v: string } | { kind: 'list'; v: XlValue[] };

interface XlEntry {
  key: string;
  value: XlValue;
  line: number;
}

/** Tokenizer + parser for the xl cfg grammar; throws ConfigError on syntax errors. */
function parseXlSyntax(text: string): XlEntry[] {
  const entries: XlEntry[] = [];
  // Entries by key: one lookup per statement keeps parsing linear in the number of keys.
  const byKey = new Map<string, XlEntry>();
  let i = 0;
  let line = 1;
  const n = text.length;
  const err = (key: string, reason: string): never => {
    throw new ConfigError(key, reason, line);
  };
  const skipSpace = (newlines: boolean) => {
    while (i < n) {
      const c = text[i];
      if (c === '#') {
        while (i < n && text[i] !== '\n') i++;
      } else if (c === ' ' || c === '\t' || c === '\r') i++;
      else if (c === '\\' && text[i + 1] === '\n') {
        i += 2;
        line++;
      } else if (newlines && c === '\n') {
        i++;
        line++;
      } else break;
    }
  };
  const parseString = (key: string): string => {
    const q = text[i++];
    let out = '';
    while (true) {
      if (i >= n || text[i] === '\n') err(key, 'unterminated string');
      const c = text[i++];
      if (c === q) break;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = text[i++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'a':
          out += '\x07';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'x': {
          const h = /^[0-9a-fA-F]{1,2}/.exec(text.slice(i, i + 2));
          if (!h) err(key, 'bad \\x escape in string');
          out += String.fromCharCode(parseInt(h![0], 16));
          i += h![0].length;
          break;
        }
        case undefined:
          err(key, 'unterminated string');
          break;
        default:
          if (e >= '0' && e <= '7') {
            const o = /^[0-7]{1,3}/.exec(text.slice(i - 1, i + 2))![0];
            out += String.fromCharCode(parseInt(o, 8) & 0xff);
            i += o.length - 1;
          } else out += e;
      }
    }
    return out;
  };
  const parseValue = (key: string, depth: number): XlValue => {
    skipSpace(depth > 0);
    const c = text[i];
    if (c === '"' || c === "'") return { kind: 'string', v: parseString(key) };
    if (c === '[') {
      if (depth > 8) err(key, 'lists nested too deeply');
      i++;
      const items: XlValue[] = [];
      while (true) {
        skipSpace(true);
        if (i >= n) err(key, 'unterminated list (missing "]")');
        if (text[i] === ']') {
          i++;
          break;
        }
        items.push(parseValue(key, depth + 1));
        skipSpace(true);
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          break;
        }
        if (i >= n) err(key, 'unterminated list (missing "]")');
        err(key, `expected "," or "]" in list, found ${describe(text[i])}`);
      }
      return { kind: 'list', v: items };
    }
    const num = /^[+-]?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?)/.exec(text.slice(i, i + 64));
    if (num && !/[A-Za-z0-9_.]/.test(text[i + num[0].length] ?? '')) {
      i += num[0].length;
      return { kind: 'number', v: num[0] };
    }
    return err(key, `expected a value (string in quotes, number or list), found ${describe(c)}`);
  };
  while (true) {
    skipSpace(true);
    if (i >= n) break;
    if (text[i] === ';') {
      i++;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 256));
    if (!id) err('', `expected a key, found ${describe(text[i])}`);
    const key = id![0];
    i += key.length;
    const keyLine = line;
    skipSpace(false);
    let append = false;
    if (text[i] === '+' && text[i + 1] === '=') {
      append = true;
      i += 2;
    } else if (text[i] === '=') i++;
    else err(key, `expected "=" after the key, found ${describe(text[i])}`);
    const value = parseValue(key, 0);
    skipSpace(false);
    if (i < n && text[i] !== '\n' && text[i] !== ';')
      err(key, `unexpected ${describe(text[i])} after the value`);
    const prev = byKey.get(key);
    if (append && prev) {
      if (prev.value.kind === 'list' && value.kind === 'list') {
        for (const v of value.v) prev.value.v.push(v);
      } else if (prev.value.kind === 'string' && value.kind === 'string')
        prev.value = { kind: 'string', v: prev.value.v + value.v };
      else err(key, '"+=" needs a string or list of the same kind as the earlier value');
    } else if (prev) {
      prev.value = value;
      prev.line = keyLine;
    } else {
      const e = { key, value, line: keyLine };
      entries.push(e);
      byKey.set(key, e);
    }
  }
  return entries;
}

function describe(c: string | undefined): string {
  if (c === undefined) return 'end of file';
  if (c === '\n') return 'end of line';
  return JSON.stringify(c);
}

/** Result of parsing an xl file: the configuration and the warnings (ignored unknown keys, overridden keys). */
export interface XlParseResult {
  config: DomainConfig;
  warnings: string[];
}

/**
 * Parses an xl domain configuration file's text.
 * @param baseDir directory that relative kernel/ramdisk/disk paths are resolved against.
 * @throws ConfigError naming the key, line and reason for every malformed or unsupported entry.
 */
export function parseXlConfig(text: string, baseDir: string): DomainConfig {
  return parseXlConfigDetailed(text, baseDir).config;
}

/** parseXlConfig that also returns the warnings. Same errors. */
export function parseXlConfigDetailed(text: string, baseDir: string): XlParseResult {
  const entries = parseXlSyntax(text);
  const warnings: string[] = [];
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const get = (key: string) => byKey.get(key);
  for (const e of entries) {
    const empty =
      (e.value.kind === 'list' && e.value.v.length === 0) || (e.value.kind === 'string' && e.value.v === '');
    if (Object.hasOwn(REFUSED_KEYS, e.key) && !empty)
      throw new ConfigError(e.key, `not supported: ${REFUSED_KEYS[e.key]}`, e.line);
  }
  const str = (key: string, required: boolean): string | undefined => {
    const e = get(key);
    if (!e) {
      if (required) throw new ConfigError(key, 'missing (required)');
      return undefined;
    }
    if (e.value.kind === 'list') throw new ConfigError(key, 'expected a string, found a list', e.line);
    return e.value.v;
  };
  const int = (key: string, min: number, max: number): number | undefined => {
    const e = get(key);
    if (!e) return undefined;
    if (e.value.kind === 'list') throw new ConfigError(key, 'expected a number, found a list', e.line);
    const s = e.value.v.trim();
    if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s))
      throw new ConfigError(key, `expected a whole number, found ${JSON.stringify(e.value.v)}`, e.line);
    const v = Number(s);
    if (v < min || v > max) throw new ConfigError(key, `${v} is out of range (${min}..${max})`, e.line);
    return v;
  };
  const list = (key: string): { items: string[]; line: number } => {
    const e = get(key);
    if (!e) return { items: [], line: 0 };
    const vals = e.value.kind === 'list' ? e.value.v : [e.value];
    const items = vals.map((v) => {
      if (v.kind !== 'string') throw new ConfigError(key, 'each entry must be a string in quotes', e.line);
      return v.v;
    });
    return { items, line: e.line };
  };
  const at = <T>(key: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigError && err.line === undefined) {
        throw new ConfigError(err.key, err.reason, get(key)?.line);
      }
      throw err;
    }
  };

  const type = str('type', false);
  if (type !== undefined && type !== 'pv')
    throw new ConfigError(
      'type',
      `"${type}" is not supported: only PV guests (type = "pv")`,
      get('type')!.line,
    );
  const builder = str('builder', false);
  if (builder !== undefined && builder !== 'generic' && builder !== 'linux') {
    throw new ConfigError(
      'builder',
      `"${builder}" is not supported: only PV guests (builder = "generic")`,
      get('builder')!.line,
    );
  }
  const name = str('name', true)!;
  const kernelRaw = str('kernel', true)!;
  const ramdiskRaw = str('ramdisk', false);
  let cmdline = str('cmdline', false);
  const root = str('root', false);
  const extra = str('extra', false);
  if (cmdline !== undefined) {
    if (root !== undefined || extra !== undefined)
      warnings.push('ignoring "root" and "extra" in favour of "cmdline"');
  } else if (root !== undefined || extra !== undefined) {
    cmdline = [root !== undefined ? `root=${root}` : '', extra ?? ''].filter((s) => s !== '').join(' ');
  }
  // memory and vcpus: range-checked once, by validateDomainConfig below (the CLI's and the adapter's check).
  const memory = int('memory', 0, Infinity) ?? 128;
  const maxmem = int('maxmem', 1, 1 << 30);
  if (maxmem !== undefined && maxmem < memory) {
    throw new ConfigError('maxmem', `${maxmem} is below memory (${memory})`, get('maxmem')!.line);
  }
  const vcpus = int('vcpus', 0, Infinity) ?? 1;
  const maxvcpus = int('maxvcpus', 1, MAX_VCPUS);
  if (maxvcpus !== undefined && maxvcpus !== vcpus) {
    throw new ConfigError(
      'maxvcpus',
      `must equal vcpus (${vcpus}): offline vCPUs are not supported`,
      get('maxvcpus')!.line,
    );
  }
  const action = (key: string): ShutdownAction | undefined => {
    const v = str(key, false);
    if (v === undefined) return undefined;
    if (SHUTDOWN_ACTIONS.includes(v)) return v as ShutdownAction;
    const line = get(key)!.line;
    if (XL_ONLY_ACTIONS.includes(v))
      throw new ConfigError(key, `"${v}" is not supported (use destroy, restart or preserve)`, line);
    throw new ConfigError(key, `invalid action "${v}" (expected destroy, restart or preserve)`, line);
  };
  const onPoweroff = action('on_poweroff') ?? 'destroy';
  const onReboot = action('on_reboot') ?? 'restart';
  const onCrash = action('on_crash') ?? 'destroy';
  for (const k of ['on_watchdog', 'on_soft_reset']) {
    const v = str(k, false);
    if (v !== undefined && !SHUTDOWN_ACTIONS.includes(v) && !XL_ONLY_ACTIONS.includes(v)) {
      throw new ConfigError(k, `invalid action "${v}"`, get(k)!.line);
    }
  }
  const disksL = list('disk');
  const disks = disksL.items.map((s) => at('disk', () => parseDiskSpec(s, baseDir)));
  const vifsL = list('vif');
  const vifs = vifsL.items.map((s) => at('vif', () => parseVifSpec(s)));

  const used = new Set([
    'name',
    'type',
    'builder',
    'kernel',
    'ramdisk',
    'cmdline',
    'root',
    'extra',
    'memory',
    'maxmem',
    'vcpus',
    'maxvcpus',
    'on_poweroff',
    'on_reboot',
    'on_crash',
    'disk',
    'vif',
  ]);
  for (const e of entries) {
    if (!used.has(e.key) && !IGNORED_KEYS.has(e.key))
      warnings.push(`line ${e.line}: unknown key "${e.key}" ignored`);
  }
  const cfg: DomainConfig = {
    name,
    kernel: resolvePath(kernelRaw, baseDir),
    ramdisk: ramdiskRaw !== undefined ? resolvePath(ramdiskRaw, baseDir) : undefined,
    cmdline,
    memory,
    vcpus,
    disks,
    vifs,
    onPoweroff,
    onReboot,
    onCrash,
  };
  if (cfg.ramdisk === undefined) delete cfg.ramdisk;
  if (cfg.cmdline === undefined) delete cfg.cmdline;
  try {
    return { config: validateDomainConfig(cfg, { baseDir }), warnings };
  } catch (e) {
    if (e instanceof ConfigError && e.line === undefined) {
      const xlKey =
        (
          {
            onPoweroff: 'on_poweroff',
            onReboot: 'on_reboot',
            onCrash: 'on_crash',
            disks: 'disk',
            vifs: 'vif',
          } as Record<string, string>
        )[e.key] ?? e.key;
      throw new ConfigError(xlKey, e.reason, get(xlKey)?.line);
    }
    throw e;
  }
}

/**
 * Resolves `p` against `baseDir` and checks that it names an existing
 * regular file: the one check the CLI and the debug adapter apply to every
 * file they read (kernel, ramdisk, disk images, the xl file, symbol files)
 * before opening it, so that `/dev/zero` (endless), a FIFO (blocks on open)
 * or a directory is refused up front instead of hanging the host. Uses
 * stat(2) only: nothing is opened.
 * @param key the option or attribute named in the error (e.g. `kernel`, `--kernel`).
 * @returns the absolute path.
 * @throws ConfigError(key, 'empty path' | 'file not found: ABS' | 'not a regular file: ABS').
 */
export function checkRegularFile(key: string, p: string, baseDir: string): string {
  if (p.trim() === '') throw new ConfigError(key, 'empty path');
  const abs = path.isAbsolute(p) ? p : path.resolve(baseDir, p);
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(abs, { throwIfNoEntry: false });
  } catch (e) {
    throw new ConfigError(key, `cannot stat ${abs}: ${(e as Error).message}`);
  }
  if (st === undefined) throw new ConfigError(key, `file not found: ${abs}`);
  if (!st.isFile()) throw new ConfigError(key, `not a regular file: ${abs}`);
  return abs;
}

function resolvePath(p: string, baseDir: string | undefined): string {
  if (p === '') return p;
  return baseDir !== undefined && !path.isAbsolute(p) ? path.resolve(baseDir, p) : p;
}

const DISK_FORMATS_UNSUPPORTED = new Set(['qcow', 'qcow2', 'vhd', 'qed', 'empty']);
const DEPRECATED_PREFIXES = [
  'tap:aio:',
  'tap2:aio:',
  'tap:tapdisk:',
  'tap:',
  'tap2:',
  'phy:',
  'file:',
  'aio:',
  'raw:',
];
const UNSUPPORTED_PREFIXES = [
  'qcow:',
  'qcow2:',
  'vhd:',
  'tap:qcow:',
  'tap:qcow2:',
  'tap:vhd:',
  'iscsi:',
  'nbd:',
  'drbd:',
  'rbd:',
];

/**
 * Parses one xl disk spec (xl-disk-configuration(5)): positional
 * `target[,format[,vdev[,access]]]` (with the deprecated `phy:`/`file:`
 * target prefixes, after which the next positional is the vdev), key=value
 * `target=` (must be last: takes the rest), `format=`, `vdev=`,
 * `access=` (r, ro, w, rw), `devtype=disk`, `backendtype=`, `backend=0`,
 * and the flags `discard`, `no-discard`, `direct-io-safe`, `trusted`,
 * `untrusted`. CD-ROMs, scripts, other backends and non-raw formats are
 * refused.
 * @throws ConfigError (key `disk`).
 */
export function parseDiskSpec(spec: string, baseDir?: string): DiskSpec {
  const bad = (reason: string): never => {
    throw new ConfigError('disk', `${JSON.stringify(spec)}: ${reason}`);
  };
  let target: string | undefined;
  let format: string | undefined;
  let vdev: string | undefined;
  let access: string | undefined;
  let positional = 0;
  let rest = spec;
  while (rest.length) {
    const t = /^\s*target\s*=/.exec(rest);
    if (t) {
      target = rest.slice(t[0].length).trim();
      break;
    }
    const comma = rest.indexOf(',');
    const tok = (comma < 0 ? rest : rest.slice(0, comma)).trim();
    rest = comma < 0 ? '' : rest.slice(comma + 1);
    if (tok === '') {
      positional++;
      continue;
    }
    const eq = tok.indexOf('=');
    if (eq >= 0) {
      const k = tok.slice(0, eq).trim();
      const v = tok.slice(eq + 1).trim();
      switch (k) {
        case 'format':
          format = v;
          break;
        case 'vdev':
          vdev = v;
          break;
        case 'access':
          access = v;
          break;
        case 'devtype':
          if (v !== 'disk') bad(`devtype "${v}" is not supported (only disk)`);
          break;
        case 'backendtype':
          if (!['phy', 'qdisk', 'tap', 'standalone'].includes(v)) bad(`unknown backendtype "${v}"`);
          break;
        case 'backend':
          if (v !== '0' && v !== 'Domain-0') bad(`backend "${v}" is not supported (only dom0)`);
          break;
        case 'script':
          bad('block scripts are not supported');
          break;
        case 'discard':
        case 'no-discard':
        case 'direct-io-safe':
        case 'trusted':
        case 'untrusted':
          break;
        default:
          bad(`unknown key "${k}"`);
      }
      continue;
    }
    switch (tok) {
      case 'cdrom':
        bad('CD-ROM devices are not supported');
        break;
      case 'discard':
      case 'no-discard':
      case 'direct-io-safe':
      case 'trusted':
      case 'untrusted':
        continue;
    }
    // Positional parameter.
    if (positional === 0) {
      target = tok;
      positional = 1;
      const pre = DEPRECATED_PREFIXES.find((p) => tok.startsWith(p));
      if (UNSUPPORTED_PREFIXES.some((p) => tok.startsWith(p)))
        bad(`target type "${tok.slice(0, tok.lastIndexOf(':') + 1)}" is not supported (raw images only)`);
      if (pre) {
        target = tok.slice(pre.length);
        format ??= 'raw';
        positional = 2;
      }
    } else if (positional === 1) {
      positional = 2;
      if (vdevToDevid(tok.split(':')[0]) >= 0 && !['raw', ...DISK_FORMATS_UNSUPPORTED].includes(tok)) {
        // xm-style "target,vdev,access" without a prefix.
        vdev = tok;
        positional = 3;
      } else format = tok;
    } else if (positional === 2) {
      vdev = tok;
      positional = 3;
    } else if (positional === 3) {
      access = tok;
      positional = 4;
    } else bad(`too many positional parameters ("${tok}")`);
  }
  if (vdev !== undefined && vdev.includes(':')) {
    const [v, suffix] = vdev.split(':');
    if (suffix === 'cdrom') bad('CD-ROM devices are not supported');
    if (suffix !== 'disk') bad(`unknown vdev suffix ":${suffix}"`);
    vdev = v;
  }
  if (format !== undefined && format !== 'raw') {
    if (DISK_FORMATS_UNSUPPORTED.has(format)) bad(`format "${format}" is not supported (raw images only)`);
    bad(`unknown format "${format}"`);
  }
  if (target === undefined || target === '') bad('no target (image path)');
  if (vdev === undefined || vdev === '') bad('no vdev (guest device name, e.g. xvda)');
  if (vdevToDevid(vdev!) < 0) bad(`invalid vdev "${vdev}"`);
  let acc: 'r' | 'w';
  switch (access ?? 'rw') {
    case 'r':
    case 'ro':
      acc = 'r';
      break;
    case 'w':
    case 'rw':
      acc = 'w';
      break;
    default:
      return bad(`invalid access "${access}" (r, ro, w or rw)`);
  }
  return { target: resolvePath(target!, baseDir), vdev: vdev!, access: acc, format: 'raw' };
}

/**
 * Parses one xl vif spec (xl-network-configuration(5)): comma-separated
 * key=value pairs; `mac` (six hex octets) and `bridge` are used, `ip`,
 * `script`, `vifname`, `type`, `model`, `rate`, `gatewayip`, `mtu`,
 * `accel`, `trusted`, `untrusted` are accepted and ignored.
 * @throws ConfigError (key `vif`).
 */
export function parseVifSpec(spec: string): VifSpec {
  const bad = (reason: string): never => {
    throw new ConfigError('vif', `${JSON.stringify(spec)}: ${reason}`);
  };
  const out: VifSpec = {};
  for (const raw of spec.split(',')) {
    const tok = raw.trim();
    if (tok === '') continue;
    const eq = tok.indexOf('=');
    if (eq < 0) {
      if (tok === 'trusted' || tok === 'untrusted') continue;
      bad(`expected key=value, found "${tok}"`);
    }
    const k = tok.slice(0, eq).trim();
    const v = tok.slice(eq + 1).trim();
    switch (k) {
      case 'mac':
        if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v))
          bad(`invalid mac "${v}" (six hex octets like 00:16:3e:12:34:56)`);
        if (parseInt(v.slice(0, 2), 16) & 1) bad(`mac "${v}" is a multicast address`);
        out.mac = v.toLowerCase();
        break;
      case 'bridge':
        if (v === '') bad('empty bridge');
        out.bridge = v;
        break;
      case 'backend':
        if (v !== '0' && v !== 'Domain-0') bad(`backend "${v}" is not supported (only dom0)`);
        break;
      case 'ip':
      case 'script':
      case 'vifname':
      case 'type':
      case 'model':
      case 'rate':
      case 'gatewayip':
      case 'mtu':
      case 'accel':
      case 'devid':
        break;
      default:
        bad(`unknown key "${k}"`);
    }
  }
  return out;
}

const CONFIG_KEYS = new Set([
  'name',
  'kernel',
  'ramdisk',
  'cmdline',
  'memory',
  'vcpus',
  'disks',
  'vifs',
  'onPoweroff',
  'onReboot',
  'onCrash',
  'consoleIoWrites',
  'tscPerInstruction',
]);

/**
 * A value as error messages show it: JSON where JSON can say it (strings in
 * quotes), `NaN`, `Infinity`, `5n` for numbers and BigInts JSON cannot show,
 * "an object" / "an array" for what it cannot serialise (cycles), at most
 * 80 characters. Never throws.
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return typeof v;
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  if (s === undefined) return Array.isArray(v) ? 'an array' : 'an object';
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Options of validateDomainConfig. */
export interface ValidateOptions {
  /** Directory relative paths (kernel, ramdisk, disk targets) are resolved against; none = left as given. */
  baseDir?: string;
  /** Keys to skip silently (e.g. the DAP launch request's own `type`, `request`, `name`...). */
  ignoreKeys?: readonly string[];
}

/**
 * Checks an object claiming to be a DomainConfig (e.g. launch attributes)
 * and returns a clean copy. Disks and vifs may be objects or xl spec
 * strings. Defaults: memory 128 MiB, vcpus 1, no disks, no vifs.
 * @throws ConfigError naming the first bad key and why (unknown keys too,
 *   unless listed in `opts.ignoreKeys`).
 */
export function validateDomainConfig(obj: unknown, opts: ValidateOptions = {}): DomainConfig {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    throw new ConfigError('', 'configuration must be an object');
  const o = obj as Record<string, unknown>;
  const ignore = new Set(opts.ignoreKeys ?? []);
  for (const k of Object.keys(o)) {
    if (!CONFIG_KEYS.has(k) && !ignore.has(k) && o[k] !== undefined) throw new ConfigError(k, 'unknown key');
  }
  const name = o.name;
  if (typeof name !== 'string' || name.length === 0)
    throw new ConfigError('name', 'must be a non-empty string');
  if (name.length > 64 || /[\x00-\x1f\x7f/]/.test(name))
    throw new ConfigError('name', 'must be at most 64 characters without "/" or control characters');
  const image = (key: 'kernel' | 'ramdisk', v: unknown): string | Uint8Array => {
    if (typeof v === 'string') {
      if (v === '') throw new ConfigError(key, 'must not be empty');
      if (v.includes('\0')) throw new ConfigError(key, 'contains a NUL character');
      return resolvePath(v, opts.baseDir);
    }
    if (v instanceof Uint8Array) {
      if (v.length === 0) throw new ConfigError(key, 'image is empty');
      return v;
    }
    throw new ConfigError(key, 'must be a path (string) or the image bytes');
  };
  const cfg: DomainConfig = {
    name,
    kernel: image('kernel', o.kernel),
    memory: 128,
    vcpus: 1,
    disks: [],
    vifs: [],
  };
  if (o.kernel === undefined) throw new ConfigError('kernel', 'missing (required)');
  if (o.ramdisk !== undefined) cfg.ramdisk = image('ramdisk', o.ramdisk);
  if (o.cmdline !== undefined) {
    if (typeof o.cmdline !== 'string') throw new ConfigError('cmdline', 'must be a string');
    if (Buffer.byteLength(o.cmdline) > MAX_CMDLINE)
      throw new ConfigError('cmdline', `longer than ${MAX_CMDLINE} bytes (start_info.cmd_line)`);
    if (o.cmdline.includes('\0')) throw new ConfigError('cmdline', 'contains a NUL character');
    cfg.cmdline = o.cmdline;
  }
  const int = (key: string, min: number, max: number): number | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw new ConfigError(key, `must be a whole number, found ${describeValue(v)}`);
    if (v < min || v > max) throw new ConfigError(key, `${v} is out of range (${min}..${max})`);
    return v;
  };
  cfg.memory = int('memory', 1, MAX_MEMORY_MIB) ?? 128;
  cfg.vcpus = int('vcpus', 1, MAX_VCPUS) ?? 1;
  if (o.disks !== undefined) {
    if (!Array.isArray(o.disks)) throw new ConfigError('disks', 'must be a list');
    cfg.disks = o.disks.map((d, i) => checkDisk(d, i, opts.baseDir));
    const seen = new Map<number, string>();
    for (const d of cfg.disks) {
      const id = vdevToDevid(d.vdev);
      if (seen.has(id))
        throw new ConfigError('disks', `vdev "${d.vdev}" used twice (same device as "${seen.get(id)}")`);
      seen.set(id, d.vdev);
    }
  }
  if (o.vifs !== undefined) {
    if (!Array.isArray(o.vifs)) throw new ConfigError('vifs', 'must be a list');
    cfg.vifs = o.vifs.map((v) => checkVif(v));
  }
  for (const k of ['onPoweroff', 'onReboot', 'onCrash'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || !SHUTDOWN_ACTIONS.includes(v)) {
      throw new ConfigError(k, `invalid action ${describeValue(v)} (expected destroy, restart or preserve)`);
    }
    cfg[k] = v as ShutdownAction;
  }
  if (o.consoleIoWrites !== undefined) {
    if (typeof o.consoleIoWrites !== 'boolean')
      throw new ConfigError('consoleIoWrites', 'must be true or false');
    cfg.consoleIoWrites = o.consoleIoWrites;
  }
  if (o.tscPerInstruction !== undefined) {
    const t = o.tscPerInstruction;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > 1e6) {
      throw new ConfigError('tscPerInstruction', 'must be a positive number (at most 1000000)');
    }
    cfg.tscPerInstruction = t;
  }
  return cfg;
}

function checkDisk(d: unknown, i: number, baseDir: string | undefined): DiskSpec {
  if (typeof d === 'string') {
    try {
      return parseDiskSpec(d, baseDir);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError('disks', e.reason);
      throw e;
    }
  }
  if (typeof d !== 'object' || d === null)
    throw new ConfigError('disks', `entry ${i} must be an object or an xl disk spec string`);
  const r = d as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!['target', 'vdev', 'access', 'format'].includes(k))
      throw new ConfigError('disks', `entry ${i}: unknown key "${k}"`);
  }
  if (typeof r.target !== 'string' || r.target === '')
    throw new ConfigError('disks', `entry ${i}: target must be a non-empty path`);
  if (typeof r.vdev !== 'string' || vdevToDevid(r.vdev) < 0)
    throw new ConfigError('disks', `entry ${i}: invalid vdev ${describeValue(r.vdev)}`);
  const access = r.access ?? 'w';
  if (access !== 'r' && access !== 'w')
    throw new ConfigError('disks', `entry ${i}: access must be "r" or "w"`);
  if (r.format !== undefined && r.format !== 'raw')
    throw new ConfigError(
      'disks',
      `entry ${i}: format ${describeValue(r.format)} is not supported (raw only)`,
    );
  return { target: resolvePath(r.target, baseDir), vdev: r.vdev, access, format: 'raw' };
}

function checkVif(v: unknown): VifSpec {
  if (typeof v === 'string') {
    try {
      return parseVifSpec(v);
    } catch (e) {
      if (e instanceof ConfigError) throw new ConfigError('vifs', e.reason);
      throw e;
    }
  }
  if (typeof v !== 'object' || v === null)
    throw new ConfigError('vifs', 'each entry must be an object or an xl vif spec string');
  const r = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(r)) {
    if (k !== 'mac' && k !== 'bridge') throw new ConfigError('vifs', `unknown key "${k}"`);
    if (typeof r[k] !== 'string') throw new ConfigError('vifs', `${k} must be a string`);
    parts.push(`${k}=${r[k] as string}`);
  }
  try {
    return parseVifSpec(parts.join(','));
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError('vifs', e.reason);
    throw e;
  }
}
