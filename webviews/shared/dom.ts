/**
 * DOM helpers shared by the pvscope panels. Everything is built with
 * element properties and text nodes: no innerHTML, no string markup, so a
 * guest-controlled string (XenStore value, symbol, console text) is always
 * shown as text. Styles go through a constructable stylesheet (CSSOM), which
 * the panels' Content Security Policy permits without 'unsafe-inline'.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { FromWebview, ToWebview } from './protocol';

/** The VS Code webview API object. */
interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(s: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api: VsCodeApi = acquireVsCodeApi();

/** Sends a message to the extension. */
export function post(msg: FromWebview): void {
  api.postMessage(msg);
}

/** Registers the handler for messages from the extension and announces readiness. */
export function onMessage(handler: (msg: ToWebview) => void): void {
  window.addEventListener('message', (ev: MessageEvent) => {
    const msg = ev.data as ToWebview;
    if (msg && typeof msg === 'object' && typeof msg.type === 'string') {
      try {
        handler(msg);
      } catch (e) {
        showError(String(e instanceof Error ? e.message : e));
      }
    }
  });
  post({ type: 'ready' });
}

/** Child: a node, a string (becomes a text node), or nothing. */
export type Child = Node | string | number | null | undefined | false;

/**
 * Creates an element. `props` are assigned as element properties
 * (`className`, `title`, `onclick`, ...) except `dataset` (merged) and
 * `attrs` (setAttribute, for custom elements' attributes). String children
 * become text nodes.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Partial<Omit<HTMLElementTagNameMap[K], 'dataset'>> & {
    dataset?: Record<string, string>;
    attrs?: Record<string, string>;
  },
  ...children: Child[]
): HTMLElementTagNameMap[K];
export function h(tag: string, props?: Record<string, unknown>, ...children: Child[]): HTMLElement;
export function h(tag: string, props?: Record<string, unknown>, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined) continue;
      if (k === 'dataset') Object.assign(el.dataset, v as Record<string, string>);
      else if (k === 'attrs') {
        for (const [a, av] of Object.entries(v as Record<string, string>)) {
          if (/^on/i.test(a)) continue; // never event-handler attributes
          el.setAttribute(a, av);
        }
      } else (el as unknown as Record<string, unknown>)[k] = v;
    }
  }
  append(el, ...children);
  return el;
}

/** Appends children (strings as text nodes). */
export function append(el: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
}

/** Replaces all children of `el`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, ...children);
}

/** The `#app` root. */
export function root(): HTMLElement {
  return document.getElementById('app') as HTMLElement;
}

let errorBox: HTMLElement | null = null;
/** Shows (or clears with '') a message line at the top of the panel. */
export function showError(text: string): void {
  if (!errorBox) {
    errorBox = h('div', { className: 'message', id: 'message' });
    document.body.insertBefore(errorBox, document.body.firstChild);
  }
  errorBox.textContent = text;
  errorBox.hidden = text === '';
}

/** Adds CSS rules (theme variables of VS Code) through a constructable stylesheet. */
export function addStyles(css: string): void {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

/** Common panel styles: VS Code theme colours, compact monospace tables. */
export const BASE_CSS = `
body { color: var(--vscode-foreground); background: var(--vscode-editor-background);
  font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); padding: 0 12px 12px; }
h2 { font-size: 1.1em; margin: 14px 0 6px; font-weight: 600; }
.toolbar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 8px 0; }
.status { opacity: 0.8; }
.message { border: 1px solid var(--vscode-inputValidation-warningBorder, orange); padding: 4px 8px; margin: 8px 0;
  background: var(--vscode-inputValidation-warningBackground, transparent); }
table.grid { border-collapse: collapse; font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size);
  width: auto; min-width: 60%; }
table.grid th { text-align: left; position: sticky; top: 0; background: var(--vscode-editor-background);
  border-bottom: 1px solid var(--vscode-panel-border, var(--vscode-contrastBorder, #888)); padding: 2px 6px; font-weight: 600; }
table.grid td { padding: 1px 6px; white-space: nowrap; border-bottom: 1px solid var(--vscode-editorGroup-border, transparent); }
table.grid tr:hover td { background: var(--vscode-list-hoverBackground); }
tr.loaded td { background: var(--vscode-editor-selectionHighlightBackground, rgba(128,128,255,.2));
  outline: 1px dashed var(--vscode-contrastActiveBorder, transparent); }
tr.reserved td:first-child::after { content: " Xen"; color: var(--vscode-charts-orange, orange); font-size: .85em; }
.tag { display: inline-block; padding: 0 4px; border-radius: 3px; margin-right: 3px;
  border: 1px solid var(--vscode-contrastBorder, transparent);
  background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); font-size: .85em; }
.dim { opacity: .6; }
.on { color: var(--vscode-charts-red, #f14c4c); font-weight: 600; }
a.link, button.link { color: var(--vscode-textLink-foreground); cursor: pointer; background: none; border: none; padding: 0;
  font: inherit; text-decoration: underline; }
button.link:focus { outline: 1px solid var(--vscode-focusBorder); }
.mono { font-family: var(--vscode-editor-font-family); }
`;

/** Formats a number as 0x-hex of at least `digits` digits. */
export function hex(v: number | string | null | undefined, digits = 0): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  return '0x' + v.toString(16).padStart(digits, '0');
}

/** Makes a simple table; `rows` are arrays of cells (Child or an element). */
export function table(headers: string[], rows: HTMLTableRowElement[], id?: string): HTMLTableElement {
  return h(
    'table',
    { className: 'grid', id },
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, ...rows),
  );
}

/** Makes a row of cells. */
export function row(
  cells: Child[],
  props?: { className?: string; title?: string; dataset?: Record<string, string> },
): HTMLTableRowElement {
  return h(
    'tr',
    (props ?? {}) as Record<string, unknown>,
    ...cells.map((c) => h('td', {}, c)),
  ) as HTMLTableRowElement;
}

/** Standard header: title, status line ("vcpu0, stopped") and a refresh button. */
export function header(title: string): { status: HTMLElement; bar: HTMLElement } {
  const status = h('span', { className: 'status', id: 'status' }, 'waiting for a pvscope debug session');
  const refresh = h('vscode-button', { id: 'refresh', attrs: { secondary: '' } }, 'Refresh');
  refresh.addEventListener('click', () => post({ type: 'refresh' }));
  const bar = h('div', { className: 'toolbar' }, h('strong', {}, title), status, refresh);
  root().appendChild(bar);
  return { status, bar };
}

/** Updates the status line from a data message. */
export function setStatus(
  status: HTMLElement,
  msg: { vcpu: number; running: boolean; error?: string },
): void {
  status.textContent = msg.error
    ? msg.error
    : `vcpu${msg.vcpu} \u2013 ${msg.running ? 'running' : 'stopped'}`;
}
