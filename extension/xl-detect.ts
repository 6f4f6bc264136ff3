/**
 * Content heuristic that recognises xl domain configuration files saved as
 * `*.cfg` (VS Code maps `.cfg` to the built-in `properties` language).
 *
 * The heuristic (documented in README.md, "xl configuration files"):
 * - only the first 200 non-empty lines are looked at;
 * - comment lines (`#...`) and blank lines are ignored;
 * - every other line must look like an xl assignment `key = value` (key:
 *   letters, digits, `_`), or be a continuation of a list/string value that
 *   spans lines (inside `[ ... ]`);
 * - at least one key must be a typical xl key that names a domain
 *   (`name`, `kernel`, `builder`, `type`, `bootloader`, `ramdisk`,
 *   `extra`, `cmdline`, `root`, `disk`, `vif`), and at least two xl keys
 *   overall (so a `name = x` properties file is not taken), or a
 *   `type = "pv"` / `builder = "linux"` line alone.
 *
 * Source: the xl.cfg(5) manual page (key names and syntax).
 */

/** xl keys (xl.cfg(5)) that count as evidence. */
export const XL_KEYS: ReadonlySet<string> = new Set([
  'name',
  'kernel',
  'builder',
  'type',
  'bootloader',
  'bootloader_args',
  'ramdisk',
  'extra',
  'cmdline',
  'root',
  'disk',
  'vif',
  'memory',
  'maxmem',
  'vcpus',
  'maxvcpus',
  'on_poweroff',
  'on_reboot',
  'on_crash',
  'uuid',
  'pool',
  'cpus',
  'vfb',
  'pci',
  'channel',
  'p9',
  'usbctrl',
  'seclabel',
]);

const DOMAIN_KEYS = new Set([
  'name',
  'kernel',
  'builder',
  'type',
  'bootloader',
  'ramdisk',
  'extra',
  'cmdline',
  'root',
  'disk',
  'vif',
]);

/**
 * Returns true when `text` (a file's content) looks like an xl domain
 * configuration file. Pure; never throws.
 *
 * @param text the document text (only the first 64 KiB are examined)
 */
export function looksLikeXlConfig(text: string): boolean {
  const lines = text.slice(0, 65536).split(/\r?\n/);
  let xlKeys = 0;
  let domainKeys = 0;
  let strong = false;
  let depth = 0;
  let seen = 0;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (++seen > 200) break;
    if (depth > 0) {
      depth += count(line, '[') - count(line, ']');
      continue;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) return false;
    const key = m[1].toLowerCase();
    const value = m[2];
    if (XL_KEYS.has(key)) xlKeys++;
    if (DOMAIN_KEYS.has(key)) domainKeys++;
    if (key === 'type' && /^["']pvh?["']/.test(value)) strong = true;
    if (key === 'builder' && /^["'](linux|generic)["']/.test(value)) strong = true;
    if (value.startsWith('[')) depth = Math.max(0, count(value, '[') - count(value, ']'));
  }
  return strong || (domainKeys >= 1 && xlKeys >= 2);
}

function count(s: string, ch: string): number {
  let n = 0;
  for (const c of s) if (c === ch) n++;
  return n;
}
