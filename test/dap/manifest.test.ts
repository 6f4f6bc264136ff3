import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KNOWN_KEYS } from '../../debug-adapter/launch';
import { REPO_ROOT } from '../helpers/debian';

describe('package.json: the pvscope debugger contribution', () => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
  const dbg = pkg.contributes.debuggers[0];

  it('declares the adapter program and every launch attribute the adapter accepts', () => {
    assert.equal(dbg.type, 'pvscope');
    assert.equal(dbg.program, './dist/debug-adapter.js');
    assert.equal(dbg.runtime, 'node');
    const props = Object.keys(dbg.configurationAttributes.launch.properties);
    for (const k of KNOWN_KEYS) assert.ok(props.includes(k), `schema lacks '${k}'`);
    for (const k of props)
      assert.ok(KNOWN_KEYS.has(k) || k === 'cwd', `schema declares '${k}' the adapter rejects`);
  });

  it('offers initial configurations and the two snippets', () => {
    assert.equal(dbg.initialConfigurations[0].type, 'pvscope');
    const labels = dbg.configurationSnippets.map((s: { label: string }) => s.label);
    assert.ok(labels.some((l: string) => /Debug a Xen PV kernel/.test(l)));
    assert.ok(labels.some((l: string) => /Debug from an xl domain config/.test(l)));
    for (const s of dbg.configurationSnippets) assert.equal(s.body.request, 'launch');
  });
});
