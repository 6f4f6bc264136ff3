/**
 * Checks engine/xen/public/ against Xen's own public headers, taken from
 * Debian's libxen-dev (Xen 4.17) at test time (test/helpers/debian.ts caches
 * it under .cache/debian/). Outside CI a failed fetch skips; under CI=true it
 * fails with the reason.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchDebianFileOrSkip } from '../helpers/debian';
import * as xen from '../../engine/xen/public/xen';
import * as errno from '../../engine/xen/public/errno';
import * as evtchn from '../../engine/xen/public/event_channel';
import * as gnttab from '../../engine/xen/public/grant_table';
import * as memory from '../../engine/xen/public/memory';
import * as physdev from '../../engine/xen/public/physdev';

/** The first numeric `#define NAME value` of each macro in `text` (later compat re-#defines are ignored). */
function numericDefines(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(
    /^#define\s+(\w+)\s+\(?(-?(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\)?\s*(?:\/\*.*)?$/gm,
  ))
    if (!out.has(m[1])) out.set(m[1], Number(m[2]));
  return out;
}

/** Macros defined as another macro (`#define A B`), first definition only. */
function aliasDefines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^#define\s+(\w+)\s+([A-Za-z_]\w*)\s*(?:\/\*.*)?$/gm))
    if (!out.has(m[1])) out.set(m[1], m[2]);
  return out;
}

describe('engine/xen/public against Xen public headers (libxen-dev)', function () {
  this.timeout(600_000);

  it('xen.ts: every __HYPERVISOR_* constant and name equals xen.h / arch-x86/xen-mca.h, and none is missing', async function () {
    const xenH = readFileSync(
      await fetchDebianFileOrSkip(this, 'libxen-dev', '/usr/include/xen/xen.h'),
      'utf8',
    );
    const archH = readFileSync(
      await fetchDebianFileOrSkip(this, 'libxen-dev', '/usr/include/xen/arch-x86/xen-mca.h'),
      'utf8',
    );
    const defs = numericDefines(xenH);
    for (const [alias, target] of aliasDefines(archH)) {
      const v = defs.get(target);
      if (alias.startsWith('__HYPERVISOR_') && v !== undefined) defs.set(alias, v);
    }
    const ours = Object.entries(xen).filter(
      ([k, v]) => k.startsWith('__HYPERVISOR_') && typeof v === 'number',
    );
    assert.ok(ours.length >= 50, `only ${ours.length} hypercall constants`);
    for (const [k, v] of ours) assert.equal(v, defs.get(k), `${k}: ours ${v}, Xen's ${defs.get(k)}`);
    const theirs = [...defs].filter(([k]) => k.startsWith('__HYPERVISOR_'));
    for (const [k, v] of theirs)
      assert.equal((xen as Record<string, unknown>)[k], v, `${k} missing or differs`);
    // The name table: every Xen number has its name (x86's for arch_0/arch_1).
    for (const [k, v] of theirs) {
      if (k === '__HYPERVISOR_arch_0' || k === '__HYPERVISOR_arch_1') continue; // mca, paging_domctl_cont
      assert.equal(xen.hypercallName(v), k.slice(13), k);
    }
    assert.equal(xen.hypercallName(48), 'mca');
    assert.equal(xen.hypercallName(49), 'paging_domctl_cont');
    assert.equal(xen.hypercallName(11), 'hypercall_11');
  });
});

describe('engine/xen/public/errno against Xen public/errno.h (libxen-dev)', function () {
  this.timeout(600_000);

  it('every errno constant and XEN_ERRNO entry equals XEN_ERRNO(name, value), and every Xen errno is present', async function () {
    const text = readFileSync(
      await fetchDebianFileOrSkip(this, 'libxen-dev', '/usr/include/xen/errno.h'),
      'utf8',
    );
    const defs = new Map<string, number>();
    for (const m of text.matchAll(/^XEN_ERRNO\(\s*(\w+)\s*,\s*(\d+)\s*\)/gm)) defs.set(m[1], Number(m[2]));
    assert.ok(defs.size >= 40, `parsed only ${defs.size} XEN_ERRNO lines`);
    const ours = Object.entries(errno).filter(([k, v]) => /^E[A-Z0-9]+$/.test(k) && typeof v === 'number');
    for (const [k, v] of ours) assert.equal(v, defs.get(k), `${k}: ours ${v}, Xen's ${defs.get(k)}`);
    for (const [k, v] of defs) {
      assert.equal((errno as Record<string, unknown>)[k], v, `${k} missing or differs`);
      assert.equal(errno.XEN_ERRNO[k], v, `XEN_ERRNO.${k}`);
      if (k !== 'EWOULDBLOCK' && k !== 'EDEADLOCK') assert.equal(errno.errnoName(-v), k);
    }
    assert.equal(Object.keys(errno.XEN_ERRNO).length, defs.size);
  });
});

/** Values of `names` as the C compiler sees them after `#include <xen/${header}>` (gcc, 64-bit). */
function cValues(includeDir: string, header: string, names: string[]): Map<string, number> {
  const dir = mkdtempSync(join(tmpdir(), 'pvscope-xenh-'));
  try {
    const src = [
      '#include <stdio.h>',
      '#include <stdint.h>',
      `#include <xen/${header}>`,
      'int main(void) {',
      ...names.map((n) => `  printf("%s %lld\\n", "${n}", (long long)(${n}));`),
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'c.c'), src);
    try {
      execFileSync(
        'gcc',
        [
          '-D__XEN_INTERFACE_VERSION__=__XEN_LATEST_INTERFACE_VERSION__',
          '-I',
          includeDir,
          '-o',
          join(dir, 'c'),
          join(dir, 'c.c'),
        ],
        { stdio: 'pipe' },
      );
    } catch (e) {
      throw new Error(
        `gcc failed on the ${header} check: ${(e as { stderr?: Buffer }).stderr?.toString() ?? e}`,
      );
    }
    const out = execFileSync(join(dir, 'c'), { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('engine/xen/public constants against the C compiler reading libxen-dev headers', function () {
  this.timeout(600_000);
  const HEADERS = [
    'xen-compat.h',
    'xen.h',
    'arch-x86/xen.h',
    'arch-x86/xen-x86_64.h',
    'arch-x86/xen-x86_32.h',
    'event_channel.h',
    'grant_table.h',
    'memory.h',
    'physdev.h',
  ];
  const MODULES: [string, Record<string, unknown>, RegExp][] = [
    ['xen.h', xen, /^(__HYPERVISOR_(?!mca$)|VIRQ_|NR_VIRQS$)/], // __HYPERVISOR_mca: xen-mca.h, checked above
    ['event_channel.h', evtchn, /^EVTCHNOP_/],
    ['grant_table.h', gnttab, /^(GNTTABOP_|GTF_|GNTST_|GNTCOPY_)/],
    ['memory.h', memory, /^XENMEM_/],
    ['physdev.h', physdev, /^PHYSDEVOP_/],
  ];
  for (const [header, mod, pattern] of MODULES) {
    it(`${header}: every exported constant equals Xen's value`, async function () {
      const paths: string[] = [];
      for (const h of HEADERS)
        paths.push(await fetchDebianFileOrSkip(this, 'libxen-dev', `/usr/include/xen/${h}`));
      const includeDir = join(paths[0], '..', '..'); // .../usr/include (paths[0] is xen/xen-compat.h)
      const ours = Object.entries(mod).filter(([k, v]) => pattern.test(k) && typeof v === 'number');
      assert.ok(ours.length > 0);
      const theirs = cValues(
        includeDir,
        header,
        ours.map(([k]) => k),
      );
      for (const [k, v] of ours) assert.equal(v, theirs.get(k), `${k}: ours ${v}, Xen's ${theirs.get(k)}`);
    });
  }
});
