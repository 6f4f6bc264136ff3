/**
 * The .vsix built by `npm run package` (vsce, offline) holds the bundles,
 * package.json, the grammars, the webview bundles and the README, and no
 * TypeScript sources, tests, caches or node_modules.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { REPO_ROOT } from '../helpers/debian';

describe('extension package (.vsix)', function () {
  this.timeout(180000);
  let names: string[] = [];
  let files: Record<string, Uint8Array> = {};

  before(() => {
    execFileSync('npm', ['run', '--silent', 'package'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 170000 });
    files = unzipSync(new Uint8Array(readFileSync(join(REPO_ROOT, 'pvscope.vsix'))));
    names = Object.keys(files);
  });

  it('contains the bundles, manifest, grammars, webviews and README', () => {
    for (const f of [
      'extension/package.json',
      'extension/dist/extension.js',
      'extension/dist/debug-adapter.js',
      'extension/syntaxes/xl-config.tmLanguage.json',
      'extension/syntaxes/pvscope-trace.tmLanguage.json',
      'extension/syntaxes/xl-config.language-configuration.json',
      'extension.vsixmanifest',
      // The adapter's disassembler loads its WebAssembly beside its own script at run time.
      'extension/dist/node_modules/iced-x86/iced_x86.js',
      'extension/dist/node_modules/iced-x86/iced_x86_bg.wasm',
    ])
      assert.ok(names.includes(f), `${f} missing from the .vsix`);
    for (const p of ['descriptors', 'pagetables', 'evtchn', 'grants', 'xenstore'])
      assert.ok(names.includes(`extension/dist/webviews/${p}.js`), `webview bundle ${p}.js missing`);
    assert.ok(
      names.some((n) => /^extension\/readme\.md$/i.test(n)),
      'README missing',
    );
  });

  it('contains no sources, tests, caches or node_modules', () => {
    const bad = names.filter(
      (n) =>
        /\.ts$/.test(n) ||
        /\.map$/.test(n) ||
        /^extension\/(test|engine|extension|webviews|debug-adapter|cli|scripts|docs|node_modules|\.cache|test-artifacts)\//.test(
          n,
        ),
    );
    assert.deepEqual(bad, []);
  });

  it('has a manifest whose commands all have an activation path', () => {
    const pkg = JSON.parse(new TextDecoder().decode(files['extension/package.json']));
    const cmds: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
    assert.ok(cmds.includes('pvscope.showPageTables'));
    for (const c of cmds) assert.ok(pkg.activationEvents.includes(`onCommand:${c}`), c);
    assert.equal(pkg.main, './dist/extension.js');
  });
});
