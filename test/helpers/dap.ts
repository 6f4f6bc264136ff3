/**
 * Helpers for the debug adapter's DAP tests: builds dist/debug-adapter.js
 * (the same esbuild options as scripts/build.mjs) and starts DebugClients
 * against it, with the real engine or the test machine of fake-machine.ts.
 */
import { DebugClient } from '@vscode/debugadapter-testsupport';
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './debian';

export const ADAPTER = join(REPO_ROOT, 'dist', 'debug-adapter.js');
let built: Promise<void> | undefined;

/** Bundles debug-adapter/main.ts to dist/debug-adapter.js once per test run. */
export function buildAdapter(): Promise<void> {
  built ??= esbuild
    .build({
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      sourcemap: true,
      logLevel: 'warning',
      entryPoints: [join(REPO_ROOT, 'debug-adapter', 'main.ts')],
      outfile: ADAPTER,
    })
    .then(() => undefined);
  return built;
}

/** Starts a DebugClient on `node dist/debug-adapter.js`; `fake` selects test/helpers/fake-machine.ts as the engine. */
export async function startClient(opts: { fake: boolean }): Promise<DebugClient> {
  await buildAdapter();
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opts.fake) {
    env.PVSCOPE_TEST_MACHINE_MODULE = join(REPO_ROOT, 'test', 'helpers', 'fake-machine.ts');
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --require tsx/cjs`.trim();
  } else {
    delete env.PVSCOPE_TEST_MACHINE_MODULE;
  }
  const dc = new DebugClient('node', ADAPTER, 'pvscope', { env, cwd: REPO_ROOT }, true);
  dc.defaultTimeout = 20000;
  await dc.start();
  return dc;
}

/** A scratch file under .cache/dap/ (git-ignored); returns its path. */
export function scratchFile(name: string, content: string | Uint8Array): string {
  const dir = join(REPO_ROOT, '.cache', 'dap');
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/**
 * Assembles and links a small x86-64 program (GNU as syntax) with DWARF line
 * information, text at 0x1000 and data at 0x4000, into .cache/dap/<name>.elf.
 * Throws when gcc fails.
 */
export function buildAsmGuest(name: string, source: string): { elf: string; src: string } {
  const src = scratchFile(`${name}.S`, source);
  const elf = join(REPO_ROOT, '.cache', 'dap', `${name}.elf`);
  execFileSync(
    'gcc',
    [
      '-g',
      '-nostdlib',
      '-static',
      '-no-pie',
      '-Wl,-Ttext=0x1000',
      '-Wl,-Tdata=0x4000',
      '-Wl,--build-id=none',
      '-Wl,-z,max-page-size=0x1000',
      '-Wl,-z,noseparate-code',
      '-o',
      elf,
      src,
    ],
    { stdio: 'pipe' },
  );
  return { elf, src };
}
