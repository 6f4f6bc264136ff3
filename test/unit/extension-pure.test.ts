import { strict as assert } from 'node:assert';
import { eventPortsOf, parseEventPorts, withEventPorts } from '../../extension/event-filter';
import { makeNonce, panelHtml } from '../../extension/html';

describe('extension helpers (no vscode)', () => {
  it('parses event filter ports with ranges and words', () => {
    assert.deepEqual(parseEventPorts('1,2, 5-7 send'), [1, 2, 5, 6, 7]);
    assert.deepEqual(parseEventPorts(''), []);
    assert.deepEqual(parseEventPorts('x,y'), []);
    assert.equal(parseEventPorts('0-100000').length, 4096);
  });
  it('changes only the event filter in setExceptionBreakpoints arguments', () => {
    const prev = {
      filters: ['crash', 'event'],
      filterOptions: [
        { filterId: 'hypercall', condition: 'mmu_update' },
        { filterId: 'event', condition: '3' },
      ],
    };
    const next = withEventPorts(prev, [3, 4]);
    assert.deepEqual(next.filters, ['crash']);
    assert.deepEqual(next.filterOptions, [
      { filterId: 'hypercall', condition: 'mmu_update' },
      { filterId: 'event', condition: '3,4' },
    ]);
    assert.deepEqual(eventPortsOf(next), [3, 4]);
    const off = withEventPorts(next, []);
    assert.deepEqual(off.filterOptions, [{ filterId: 'hypercall', condition: 'mmu_update' }]);
    assert.deepEqual(eventPortsOf(off), []);
    assert.deepEqual(withEventPorts(null, [1]), {
      filters: [],
      filterOptions: [{ filterId: 'event', condition: '1' }],
    });
  });
  it('builds a panel page with a strict nonce CSP and no inline data', () => {
    const nonce = makeNonce((n) => new Uint8Array(n).map((_, i) => i * 7));
    assert.match(nonce, /^[A-Za-z0-9]{32}$/);
    const html = panelHtml({
      cspSource: 'https://x.vscode-cdn.net',
      scriptUri: 'https://x.vscode-cdn.net/dist/webviews/evtchn.js',
      nonce,
      title: 'T',
    });
    assert.match(html, new RegExp(`default-src 'none'; script-src 'nonce-${nonce}';`));
    assert.ok(!html.includes('unsafe-inline'));
    assert.ok(!html.includes('unsafe-eval'));
    assert.match(
      html,
      new RegExp(`<script nonce="${nonce}" src="https://x.vscode-cdn.net/dist/webviews/evtchn.js">`),
    );
    assert.throws(() =>
      panelHtml({ cspSource: 'a', scriptUri: 'b', nonce: "x' 'unsafe-inline", title: 't' }),
    );
  });
});
