/**
 * XenStore panel: the tree with values and permissions (indented rows), and
 * the registered watches. Data: the adapter's `pvscope/xenstore` body.
 */
import {
  addStyles,
  BASE_CSS,
  h,
  header,
  onMessage,
  post,
  replace,
  root,
  row,
  setStatus,
  table,
} from '../shared/dom';

interface XsNode {
  path: string;
  value: string;
  perms: string[];
  children: XsNode[];
}
interface Watch {
  domid: number;
  path: string;
  token: string;
}

addStyles(BASE_CSS);
addStyles(`.indent { display: inline-block; } td.value { white-space: pre; }`);
const { status, bar } = header('XenStore');
const pathBox = h('vscode-textfield', {
  id: 'path',
  attrs: { placeholder: 'subtree path, e.g. /local/domain/1' },
});
const go = h('vscode-button', { id: 'go', attrs: { secondary: '' } }, 'Show');
go.addEventListener('click', () =>
  post({ type: 'xenstorePath', path: String((pathBox as unknown as { value: string }).value ?? '') }),
);
bar.append(pathBox, go);
const content = h('div', { id: 'content' });
root().append(content);

const MAX_ROWS = 5000;

function flatten(n: XsNode, depth: number, out: HTMLTableRowElement[]): void {
  if (out.length >= MAX_ROWS) return;
  const name = depth === 0 ? n.path : n.path.slice(n.path.lastIndexOf('/') + 1);
  const indent = h('span', { className: 'indent' });
  indent.style.width = `${depth * 14}px`;
  const r = row([h('span', {}, indent, name), n.value, (n.perms ?? []).join(' ')], {
    title: n.path,
    dataset: { path: n.path },
  });
  (r.children[1] as HTMLElement).className = 'value';
  out.push(r);
  for (const c of n.children ?? []) flatten(c, depth + 1, out);
}

onMessage((msg) => {
  if (msg.type !== 'data') return;
  setStatus(status, msg);
  const b = msg.data as { tree: XsNode | null; watches: Watch[] } | null;
  if (!b) return replace(content);
  const rows: HTMLTableRowElement[] = [];
  if (b.tree) flatten(b.tree, 0, rows);
  replace(
    content,
    h('h2', {}, 'Tree'),
    table(['node', 'value', 'permissions'], rows, 'tree'),
    rows.length >= MAX_ROWS ? h('div', { className: 'dim' }, `first ${MAX_ROWS} nodes shown`) : null,
    h('h2', {}, `Watches (${b.watches?.length ?? 0})`),
    table(
      ['domid', 'path', 'token'],
      (b.watches ?? []).map((w) => row([String(w.domid), w.path, w.token])),
      'watches',
    ),
  );
});
