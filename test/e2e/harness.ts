/**
 * End-to-end harness: real VS Code (code-server 4.100.3 = VS Code 1.100.3,
 * installed from npm into .cache/code-server/) driven headless in Debian's
 * Chromium through playwright-core, with the pvscope .vsix installed into a
 * fresh extensions folder. Follows the verified recipe (design notes
 * "e2e-recipe"): ripgrep download cache filled from /usr/bin/rg,
 * npm_config_unsafe_perm / npm_config_yes for the install scripts,
 * `--config /dev/null`, a persistent browser context with service workers.
 *
 * Needs the Debian packages chromium, libkrb5-dev and ripgrep (.ci/run
 * installs them). Without them the suite fails with a clear message (it
 * never skips silently when CI is set).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Frame, type FrameLocator, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/debian';

/** code-server version pinned for Node 20 (newer ones need Node 22+). */
export const CODE_SERVER_VERSION = '4.100.3';
const CS_DIR = join(REPO_ROOT, '.cache', 'code-server');
const CS_ENTRY = join(CS_DIR, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
/** Screenshots go here (git-ignored). */
export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'e2e');
const CHROMIUM = '/usr/bin/chromium';

/** Themes the scenarios run in. */
export type Theme = 'Default Dark Modern' | 'Default High Contrast';

/**
 * Installs code-server into .cache/code-server/ once (its own package.json,
 * outside the project's node_modules).
 * @throws Error with the npm output tail when the install fails.
 */
export function ensureCodeServer(): string {
  if (existsSync(CS_ENTRY)) return CS_ENTRY;
  for (const [bin, pkg] of [
    [CHROMIUM, 'chromium'],
    ['/usr/bin/rg', 'ripgrep'],
  ])
    if (!existsSync(bin))
      throw new Error(`e2e: ${bin} missing: apt-get install -y ${pkg} libkrb5-dev (see .ci/run)`);
  mkdirSync(CS_DIR, { recursive: true });
  writeFileSync(join(CS_DIR, 'package.json'), '{"private":true}\n');
  // @vscode/ripgrep 1.15.11 downloads rg from github.com unless its cache holds the tarball.
  const rgCache = join(tmpdir(), 'vscode-ripgrep-cache-1.15.11');
  const tarball = join(rgCache, 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz');
  if (!existsSync(tarball)) {
    const stage = mkdtempSync(join(tmpdir(), 'rg-'));
    copyFileSync('/usr/bin/rg', join(stage, 'rg'));
    mkdirSync(rgCache, { recursive: true });
    execFileSync('tar', ['-czf', tarball, '-C', stage, 'rg']);
    rmSync(stage, { recursive: true, force: true });
  }
  try {
    execFileSync(
      'npm',
      ['install', '--foreground-scripts', '--no-audit', '--no-fund', `code-server@${CODE_SERVER_VERSION}`],
      {
        cwd: CS_DIR,
        stdio: 'pipe',
        timeout: 900_000,
        env: { ...process.env, npm_config_unsafe_perm: 'true', npm_config_yes: 'true' },
      },
    );
  } catch (e) {
    const err = e as { stdout?: Buffer; stderr?: Buffer; message: string };
    throw new Error(
      `e2e: installing code-server@${CODE_SERVER_VERSION} failed: ${err.message}\n${String(err.stderr ?? '').slice(-3000)}`,
    );
  }
  if (!existsSync(CS_ENTRY)) throw new Error(`e2e: code-server installed but ${CS_ENTRY} is missing`);
  return CS_ENTRY;
}

let vsixBuilt: string | null = null;
/** Builds pvscope.vsix with `npm run package` (once per process). */
export function buildVsix(): string {
  if (vsixBuilt) return vsixBuilt;
  execFileSync('npm', ['run', '--silent', 'package'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 300_000 });
  vsixBuilt = join(REPO_ROOT, 'pvscope.vsix');
  return vsixBuilt;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** What a scenario's workspace contains. */
export interface WorkspaceSpec {
  /** launch.json configurations. */
  configurations: Record<string, unknown>[];
  /** Extra files: relative path -> content. */
  files?: Record<string, string>;
  theme: Theme;
  /** Extra user settings. */
  settings?: Record<string, unknown>;
}

/** A running VS Code + browser. */
export interface VsCode {
  page: Page;
  context: BrowserContext;
  workspace: string;
  /** The extensions folder the .vsix was installed into. */
  extensionsDir: string;
  port: number;
  /** code-server's output so far (for failure messages). */
  log(): string;
  /** The extension host's log files and notifications text, for failure messages. */
  diagnostics(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts code-server with the .vsix installed in a fresh profile, a
 * workspace per `spec`, and opens it in headless Chromium; resolves when the
 * workbench shows the workspace's files.
 */
export async function startVsCode(spec: WorkspaceSpec): Promise<VsCode> {
  const entry = ensureCodeServer();
  const vsix = buildVsix();
  const base = mkdtempSync(join(tmpdir(), 'pvscope-e2e-'));
  const userData = join(base, 'user-data');
  const extDir = join(base, 'extensions');
  const workspace = join(base, 'workspace');
  mkdirSync(join(userData, 'User'), { recursive: true });
  mkdirSync(join(workspace, '.vscode'), { recursive: true });
  writeFileSync(
    join(userData, 'User', 'settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'update.mode': 'none',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'git.enabled': false,
        'chat.disableAIFeatures': true,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        'debug.openDebug': 'openOnSessionStart',
        'workbench.colorTheme': spec.theme,
        'terminal.integrated.gpuAcceleration': 'off',
        'workbench.tips.enabled': false,
        'editor.minimap.enabled': false,
        ...spec.settings,
      },
      null,
      2,
    ),
  );
  // No configurations: no launch.json at all (F5 then asks the configuration provider).
  if (spec.configurations.length)
    writeFileSync(
      join(workspace, '.vscode', 'launch.json'),
      JSON.stringify({ version: '0.2.0', configurations: spec.configurations }, null, 2),
    );
  writeFileSync(join(workspace, 'README.txt'), 'pvscope e2e workspace\n');
  for (const [rel, text] of Object.entries(spec.files ?? {})) writeFileSync(join(workspace, rel), text);

  execFileSync(
    process.execPath,
    [
      entry,
      '--config',
      '/dev/null',
      '--user-data-dir',
      userData,
      '--extensions-dir',
      extDir,
      '--install-extension',
      vsix,
    ],
    { stdio: 'pipe', timeout: 120_000 },
  );

  const port = await freePort();
  let out = '';
  const cs: ChildProcess = spawn(
    process.execPath,
    [
      entry,
      '--config',
      '/dev/null',
      '--user-data-dir',
      userData,
      '--extensions-dir',
      extDir,
      '--auth',
      'none',
      '--bind-addr',
      `127.0.0.1:${port}`,
      '--disable-telemetry',
      '--disable-update-check',
      '--disable-workspace-trust',
      '--disable-getting-started-override',
      '--ignore-last-opened',
      workspace,
    ],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  cs.stdout!.on('data', (d) => (out += d));
  cs.stderr!.on('data', (d) => (out += d));
  const killServer = () => {
    try {
      if (cs.pid) process.kill(-cs.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`code-server did not start:\n${out}`)), 60_000);
      const check = () => {
        if (out.includes('HTTP server listening')) {
          clearTimeout(t);
          resolve();
        }
      };
      cs.stdout!.on('data', check);
      cs.stderr!.on('data', check);
      cs.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`code-server exited (${code}):\n${out}`));
      });
      check();
    });
  } catch (e) {
    killServer();
    throw e;
  }

  const profile = join(base, 'chromium');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1600, height: 1000 },
    serviceWorkers: 'allow',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  await page
    .locator('.explorer-folders-view .monaco-list-row', { hasText: 'README.txt' })
    .first()
    .waitFor({ timeout: 60_000 });
  return {
    page,
    context,
    workspace,
    extensionsDir: extDir,
    port,
    log: () => out,
    diagnostics: async () => {
      let text = '';
      try {
        const files = execFileSync('find', [join(userData, 'logs'), '-name', '*.log'], { encoding: 'utf8' })
          .split('\n')
          .filter((f) => /exthost|pvscope|debug/i.test(f));
        for (const f of files) text += `--- ${f}\n${readFileSync(f, 'utf8').slice(-4000)}\n`;
      } catch {
        /* no logs */
      }
      const toasts = await page
        .locator('.notifications-toasts')
        .allInnerTexts()
        .catch(() => []);
      return `${text}--- notifications\n${toasts.join('\n')}\n--- code-server\n${out.slice(-3000)}`;
    },
    close: async () => {
      await context.close().catch(() => undefined);
      killServer();
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/**
 * Runs a command from the command palette by its exact title, retrying
 * while extension contributions are still arriving (up to `timeoutMs`).
 */
export async function runCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const re = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  for (;;) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(`>${title}`);
    const row = page.locator('.quick-input-list .monaco-list-row').filter({
      has: page.locator('.label-name', { hasText: re }),
    });
    try {
      await row.first().waitFor({ timeout: 3000 });
      await row.first().click();
      return;
    } catch (e) {
      await page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`command '${title}' not found in the palette: ${String(e)}`);
    }
  }
}

/** Waits until the palette lists a command (the extension's contributions have arrived), without running it. */
export async function waitForCommand(page: Page, title: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor();
    await input.fill(`>${title}`);
    const found = await page
      .locator('.quick-input-list .monaco-list-row .label-name', { hasText: title })
      .first()
      .waitFor({ timeout: 3000 })
      .then(() => true)
      .catch(() => false);
    await page.keyboard.press('Escape');
    if (found) return;
    if (Date.now() > deadline) throw new Error(`command '${title}' never appeared in the palette`);
  }
}

/** The inner frame of the webview whose tab title is `title` (the active one). */
export function webview(page: Page, title: string): FrameLocator {
  void title;
  return page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
}

/** The Playwright Frame of the newest webview that contains `selector`. */
export async function webviewFrame(page: Page, selector: string, timeoutMs = 30_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of page.frames()) {
      if (!f.url().includes('/webview/browser/pre/fake.html')) continue;
      if (
        await f
          .locator(selector)
          .count()
          .catch(() => 0)
      )
        return f;
    }
    if (Date.now() > deadline) throw new Error(`no webview contains ${selector}`);
    await page.waitForTimeout(250);
  }
}

/** Saves a screenshot to test-artifacts/e2e/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`) });
}

/** Reads a file from the workspace (for debugging failures). */
export function readWorkspaceFile(vs: VsCode, rel: string): string {
  return readFileSync(join(vs.workspace, rel), 'utf8');
}
