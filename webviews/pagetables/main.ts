/**
 * Page table panel: the tree from CR3 (on 64-bit the kernel and the user
 * L4), each entry with flags, machine frame, pseudo-physical frame, the page
 * type and pin state Xen holds, and the virtual range it maps. Lower levels
 * load lazily when an entry is expanded (`pvscope/pageTable` with root
 * '0x<mfn>'). Rows are virtualised: only the rows in view are in the DOM.
 * The translate box runs `pvscope/walk` and shows each level.
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

interface Entry {
  index: number;
  raw: string;
  present: boolean;
  flags: string[];
  mfn: string;
  pfn: string | null;
  targetType: string;
  pinned: boolean;
  vaStart: string;
  vaEnd: string;
}
interface PtNode {
  level: number;
  mfn: string;
  pfn: string | null;
  type: string;
  pinned: boolean;
  typeCount: number;
  entries: Entry[];
}
interface WalkStep {
  level: number;
  tableMfn: string;
  index: number;
  entry: string;
  flags: string[];
}
interface Walk {
  va: string;
  steps: WalkStep[];
  maddr: string | null;
  pfn: string | null;
  paddr: string | null;
  fault?: string;
}

const ROW_H = 22;
addStyles(BASE_CSS);
addStyles(`
#viewport { height: 62vh; overflow: auto; position: relative; border: 1px solid var(--vscode-panel-border, var(--vscode-contrastBorder, #8884)); }
#spacer { position: relative; }
.ptrow { position: absolute; left: 0; right: 0; height: ${ROW_H}px; line-height: ${ROW_H}px; white-space: nowrap;
  font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); padding-left: 4px; }
.ptrow:hover { background: var(--vscode-list-hoverBackground); }
.ptrow.node { font-weight: 600; }
.ptrow span.c { display: inline-block; margin-right: 10px; }
.tw { width: 16px; cursor: pointer; user-select: none; }
.idx { width: 36px; text-align: right; }
.va { width: 330px; }
#walk td { white-space: nowrap; }
`);

const { status, bar } = header('Page tables');
const vaBox = h('vscode-textfield', { id: 'va', attrs: { placeholder: 'virtual address or 0x…' } });
const translate = h('vscode-button', { id: 'translate' }, 'Translate');
bar.append(vaBox, translate);
const walkOut = h('div', { id: 'walkout' });
const summary = h('div', { id: 'summary', className: 'toolbar' });
const spacer = h('div', { id: 'spacer' });
const viewport = h('div', { id: 'viewport', tabIndex: 0 }, spacer);
root().append(walkOut, summary, viewport);

function vaValue(): string {
  return String((vaBox as unknown as { value?: string }).value ?? '').trim();
}
translate.addEventListener('click', () => {
  const va = vaValue();
  if (va) post({ type: 'walk', va });
});
vaBox.addEventListener('keydown', (e) => {
  if ((e as KeyboardEvent).key === 'Enter') translate.click();
});

type Row =
  | { kind: 'node'; depth: number; label: string; node: PtNode }
  | { kind: 'entry'; depth: number; level: number; entry: Entry; key: string; va: string }
  | { kind: 'loading'; depth: number; text: string };

let roots: { label: string; node: PtNode }[] = [];
const nodes = new Map<string, PtNode>(); // mfn -> node
const expanded = new Set<string>(); // key: path of mfns
const pending = new Map<number, string>(); // reqId -> mfn
let nextReq = 1;
let rows: Row[] = [];

function expandable(level: number, e: Entry): boolean {
  return e.present && level > 1 && !e.flags.includes('PSE');
}

function build(): void {
  const out: Row[] = [];
  // Entry ranges come relative to their table's base; add the path's base for absolute VAs.
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  const walkNode = (node: PtNode, depth: number, path: string, base: bigint) => {
    for (const e of node.entries) {
      const key = `${path}/${e.index}`;
      const start = base + BigInt(e.vaStart);
      const end = base + BigInt(e.vaEnd);
      out.push({
        kind: 'entry',
        depth,
        level: node.level,
        entry: e,
        key,
        va: `${hex(start)}\u2013${hex(end)}`,
      });
      if (expanded.has(key) && expandable(node.level, e)) {
        const child = nodes.get(e.mfn);
        if (!child) {
          out.push({ kind: 'loading', depth: depth + 1, text: 'loading…' });
          if (![...pending.values()].includes(e.mfn)) request(e.mfn);
        } else {
          out.push({ kind: 'node', depth: depth + 1, label: `L${child.level}`, node: child });
          walkNode(child, depth + 1, key, start);
        }
      }
    }
  };
  for (const r of roots) {
    out.push({ kind: 'node', depth: 0, label: `${r.label} L${r.node.level}`, node: r.node });
    walkNode(r.node, 0, r.label + ':' + r.node.mfn, 0n);
  }
  rows = out;
  spacer.style.height = `${rows.length * ROW_H}px`;
  paint();
}

function cell(cls: string, ...c: (Node | string)[]): HTMLElement {
  return h('span', { className: 'c ' + cls }, ...c);
}

function memLink(text: string, ref: string): HTMLElement {
  const b = h('button', { className: 'link', title: `Open ${ref} in the memory view` }, text);
  b.addEventListener('click', (ev) => {
    ev.stopPropagation();
    post({ type: 'openMemory', memoryReference: ref });
  });
  return b;
}

function mref(mfn: string): string {
  return `m:0x${(BigInt(mfn) << 12n).toString(16)}`;
}

function renderRow(r: Row, i: number): HTMLElement {
  const div = h('div', { className: 'ptrow' });
  div.style.top = `${i * ROW_H}px`;
  div.style.paddingLeft = `${4 + r.depth * 18}px`;
  if (r.kind === 'loading') {
    div.append(cell('dim', r.text));
    return div;
  }
  if (r.kind === 'node') {
    const n = r.node;
    div.className += ' node';
    div.dataset.mfn = n.mfn;
    div.append(
      cell('', `${r.label} table`),
      cell('', 'mfn ', memLink(n.mfn, mref(n.mfn))),
      cell('', `pfn ${n.pfn ?? '-'}`),
      cell('', `type ${n.type}`),
      cell('', n.pinned ? 'pinned' : 'not pinned'),
      cell('', `type count ${n.typeCount}`),
      cell('dim', `${n.entries.length} present entries`),
    );
    return div;
  }
  const e = r.entry;
  const canExpand = expandable(r.level, e);
  const tw = cell('tw', canExpand ? (expanded.has(r.key) ? '\u25be' : '\u25b8') : '');
  if (canExpand) {
    div.style.cursor = 'pointer';
    div.addEventListener('click', () => toggle(r.key, e.mfn));
  }
  div.dataset.key = r.key;
  div.append(
    tw,
    cell('idx', String(e.index)),
    cell('va', r.va),
    cell('', ...e.flags.map((f) => h('span', { className: 'tag' }, f))),
    cell('', 'mfn ', memLink(e.mfn, mref(e.mfn))),
    cell('', `pfn ${e.pfn ?? '-'}`),
    cell('', e.targetType),
    cell('', e.pinned ? 'pinned' : ''),
    cell('dim', e.raw),
  );
  return div;
}

let painted = -1;
function paint(): void {
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_H) - 10);
  const last = Math.min(rows.length, first + Math.ceil(viewport.clientHeight / ROW_H) + 30);
  const kids: HTMLElement[] = [];
  for (let i = first; i < last; i++) kids.push(renderRow(rows[i], i));
  spacer.replaceChildren(...kids);
  painted = first;
}
viewport.addEventListener('scroll', () => {
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_H) - 10);
  if (Math.abs(first - painted) >= 5) paint();
});
window.addEventListener('resize', () => paint());

function request(mfn: string): void {
  const id = nextReq++;
  pending.set(id, mfn);
  post({ type: 'pageTable', reqId: id, root: mfn });
}

function toggle(key: string, mfn: string): void {
  if (expanded.has(key)) expanded.delete(key);
  else {
    expanded.add(key);
  }
  build();
}

function showWalk(w: Walk | null, error?: string): void {
  if (error || !w) {
    replace(walkOut, h('div', { className: 'message' }, error ?? 'no result'));
    return;
  }
  const steps = w.steps.map((s) =>
    row([`L${s.level}`, memLink(s.tableMfn, mref(s.tableMfn)), String(s.index), s.entry, s.flags.join(' ')]),
  );
  replace(
    walkOut,
    h(
      'div',
      { className: 'toolbar mono', id: 'walkresult' },
      `${w.va} \u2192 `,
      w.fault
        ? h('span', { className: 'on' }, `fault: ${w.fault}`)
        : h(
            'span',
            {},
            `pseudo-physical ${w.paddr ?? '-'} (pfn ${w.pfn ?? '-'}) \u2192 machine ${w.maddr ?? '-'}`,
          ),
    ),
    table(['level', 'table mfn', 'index', 'entry', 'flags'], steps, 'walk'),
  );
}

onMessage((msg) => {
  if (msg.type === 'walk') return showWalk(msg.result as Walk | null, msg.error);
  if (msg.type === 'pageTable') {
    const mfn = pending.get(msg.reqId);
    pending.delete(msg.reqId);
    if (mfn === undefined) return;
    const node = msg.node as PtNode | null;
    if (node) nodes.set(mfn, node);
    else
      nodes.set(mfn, {
        level: 0,
        mfn,
        pfn: null,
        type: msg.error ?? 'unreadable',
        pinned: false,
        typeCount: 0,
        entries: [],
      });
    build();
    return;
  }
  if (msg.type !== 'data') return;
  setStatus(status, msg);
  const b = msg.data as { kernel: PtNode | null; user: PtNode | null; cr3?: string } | null;
  roots = [];
  if (b?.kernel) roots.push({ label: 'kernel', node: b.kernel });
  if (b?.user && b.user.mfn !== b.kernel?.mfn) roots.push({ label: 'user', node: b.user });
  // Expanded tables reload (their content may have changed since the last stop).
  nodes.clear();
  pending.clear();
  for (const r of roots) nodes.set(r.node.mfn, r.node);
  replace(
    summary,
    ...roots.map((r) =>
      h(
        'span',
        { className: 'tag', id: `root-${r.label}` },
        `${r.label} L${r.node.level} at mfn ${r.node.mfn}`,
      ),
    ),
    roots.length ? null : 'no page tables',
  );
  build();
});
