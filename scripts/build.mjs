// Bundles the extension, the debug adapter and the CLI into dist/ with esbuild.
// Webview scripts are bundled for the browser into dist/webviews/.
import * as esbuild from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
};

const builds = [
  { ...common, entryPoints: ['extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...common, entryPoints: ['debug-adapter/main.ts'], outfile: 'dist/debug-adapter.js' },
  { ...common, entryPoints: ['cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
];

// Every webviews/<panel>/main.ts becomes dist/webviews/<panel>.js for the browser.
if (existsSync('webviews')) {
  for (const entry of readdirSync('webviews', { withFileTypes: true })) {
    const main = join('webviews', entry.name, 'main.ts');
    if (entry.isDirectory() && existsSync(main)) {
      builds.push({
        bundle: true,
        platform: 'browser',
        target: 'es2022',
        format: 'iife',
        sourcemap: false,
        logLevel: 'warning',
        entryPoints: [main],
        outfile: `dist/webviews/${entry.name}.js`,
      });
    }
  }
}

await Promise.all(builds.map((b) => esbuild.build(b)));

// iced-x86 loads its WebAssembly next to its own script, so the adapter
// requires it at run time; ship a copy beside the bundles (dist/node_modules)
// so the packaged extension finds it without the project's node_modules.
const iced = join('node_modules', 'iced-x86');
const icedOut = join('dist', 'node_modules', 'iced-x86');
mkdirSync(icedOut, { recursive: true });
for (const f of ['package.json', 'iced_x86.js', 'iced_x86_bg.wasm', 'LICENSE.txt']) {
  copyFileSync(join(iced, f), join(icedOut, f));
}
