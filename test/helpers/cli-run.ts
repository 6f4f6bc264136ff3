/**
 * Runs the CLI (`pvscope run ...`) from source in a child process
 * (`node -r tsx/cjs cli/main.ts`, or the entry in PVSCOPE_CLI_ENTRY), so that
 * a hang is a timeout for the test, not a stuck test process.
 */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const ENTRY = resolve(ROOT, process.env.PVSCOPE_CLI_ENTRY ?? 'cli/main.ts');

/** Result of one CLI run; `status` is null when the child was killed at the timeout. */
export interface CliResult {
  status: number | null;
  stderr: string;
  stdout: string;
}

/** Runs `pvscope run ARGS` with empty stdin; a hang ends at `timeoutMs` (default 30 s). */
export function runCli(args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): CliResult {
  const tsx = require.resolve('tsx/cjs', { paths: [ROOT] });
  const p = spawnSync(process.execPath, ['-r', tsx, ENTRY, 'run', ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    input: '',
    maxBuffer: 4 * 1024 * 1024,
  });
  return { status: p.status, stderr: p.stderr ?? '', stdout: p.stdout ?? '' };
}
