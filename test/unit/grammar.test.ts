import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const cli = join(root, 'node_modules', 'vscode-tmgrammar-test', 'dist', 'unit.js');

/** Runs vscode-tmgrammar-test on one grammar test file; returns its exit status and output. */
function runGrammarTest(grammar: string, testFile: string): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    [cli, '--grammar', join(root, 'syntaxes', grammar), join(root, 'test', 'grammar', testFile)],
    { encoding: 'utf8', cwd: root },
  );
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('TextMate grammars', () => {
  it('xl domain configuration grammar passes its scope assertions', () => {
    const r = runGrammarTest('xl-config.tmLanguage.json', 'domain.xl');
    assert.equal(r.status, 0, r.out);
  });
  it('pvscope trace grammar passes its scope assertions', () => {
    const r = runGrammarTest('pvscope-trace.tmLanguage.json', 'trace.pvtrace');
    assert.equal(r.status, 0, r.out);
  });
  it('a wrong scope assertion fails (the runner really checks)', () => {
    const { mkdtempSync, writeFileSync } = require('node:fs') as typeof import('node:fs');
    const dir = mkdtempSync(join(require('node:os').tmpdir(), 'pvscope-grammar-'));
    const bad = join(dir, 'bad.xl');
    writeFileSync(
      bad,
      '# SYNTAX TEST "source.xl-config"\nmemory = 512\n#        ^^^ string.quoted.double.xl-config\n',
    );
    const r = spawnSync(
      process.execPath,
      [cli, '--grammar', join(root, 'syntaxes', 'xl-config.tmLanguage.json'), bad],
      {
        encoding: 'utf8',
      },
    );
    assert.notEqual(r.status, 0);
  });
});
