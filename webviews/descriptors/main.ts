/**
 * Descriptor tables panel: GDT (Xen's reserved entries marked), LDT, IDT and
 * the PV trap table from set_trap_table, each entry decoded; the selectors
 * loaded in the segment registers are highlighted. Data: the adapter's
 * `pvscope/descriptorTables` body (docs/debug-adapter.md).
 */
import {
  addStyles,
  BASE_CSS,
  h,
  header,
  hex,
  onMessage,
  replace,
  root,
  row,
  setStatus,
  table,
} from '../shared/dom';

interface Desc {
  index: number;
  selector: number;
  raw: string;
  present: boolean;
  kind: string;
  base: string;
  limit: number;
  type: number;
  dpl: number;
  s: boolean;
  l: boolean;
  db: boolean;
  g: boolean;
  gateSelector?: number;
  gateOffset?: string;
  symbol?: string;
  xenReserved: boolean;
  loadedIn: string[];
}
interface Trap {
  vector: number;
  flags: number;
  dpl: number;
  maskEvents: boolean;
  cs: number;
  address: string;
  symbol?: string;
}
interface Body {
  gdt: Desc[];
  ldt: Desc[];
  idt: Desc[];
  trapTable: Trap[];
  loaded: Record<string, number>;
}

addStyles(BASE_CSS);
const { status } = header('Descriptor tables');
const loadedLine = h('div', { className: 'toolbar mono', id: 'loaded' });
const content = h('div', { id: 'content' });
root().append(loadedLine, content);

function flags(d: Desc): string {
  const f: string[] = [];
  if (d.present) f.push('P');
  if (d.l) f.push('L');
  if (d.db) f.push('D');
  if (d.g) f.push('G');
  if (!d.s) f.push('sys');
  return f.join(' ');
}

function descTable(id: string, entries: Desc[], gates: boolean): HTMLElement {
  const headers = gates
    ? ['#', 'kind', 'target', 'symbol', 'type', 'DPL', 'P', 'raw']
    : ['selector', 'kind', 'base', 'limit', 'type', 'DPL', 'flags', 'loaded in', 'raw'];
  const rows = entries.map((d) => {
    const cls = (d.loadedIn?.length ? 'loaded ' : '') + (d.xenReserved ? 'reserved' : '');
    const cells = gates
      ? [
          String(d.index),
          d.kind,
          d.gateSelector !== undefined ? `${hex(d.gateSelector, 4)}:${d.gateOffset ?? ''}` : '',
          d.symbol ?? '',
          hex(d.type),
          String(d.dpl),
          d.present ? 'yes' : 'no',
          d.raw,
        ]
      : [
          hex(d.selector, 4),
          d.kind,
          d.base,
          hex(d.limit),
          hex(d.type),
          String(d.dpl),
          flags(d),
          (d.loadedIn ?? []).join(' '),
          d.raw,
        ];
    return row(cells, { className: cls.trim(), dataset: { selector: hex(d.selector, 4) } });
  });
  return table(headers, rows, id);
}

onMessage((msg) => {
  if (msg.type !== 'data') return;
  setStatus(status, msg);
  const b = msg.data as Body | null;
  if (!b) {
    replace(content);
    replace(loadedLine);
    return;
  }
  replace(
    loadedLine,
    'Loaded: ',
    ...Object.entries(b.loaded ?? {}).map(([k, v]) => h('span', { className: 'tag' }, `${k}=${hex(v, 4)}`)),
  );
  const trapRows = (b.trapTable ?? []).map((t) =>
    row([
      String(t.vector),
      `${hex(t.cs, 4)}:${t.address}`,
      t.symbol ?? '',
      String(t.dpl),
      t.maskEvents ? 'yes' : 'no',
      hex(t.flags),
    ]),
  );
  replace(
    content,
    h('h2', {}, `GDT (${b.gdt?.length ?? 0} entries)`),
    descTable('gdt', b.gdt ?? [], false),
    h('h2', {}, `LDT (${b.ldt?.length ?? 0} entries)`),
    (b.ldt?.length ?? 0) ? descTable('ldt', b.ldt, false) : h('div', { className: 'dim' }, 'empty'),
    h('h2', {}, `IDT (${b.idt?.length ?? 0} entries)`),
    (b.idt?.length ?? 0)
      ? descTable('idt', b.idt, true)
      : h('div', { className: 'dim' }, 'not loaded (a PV guest uses the trap table)'),
    h('h2', {}, `PV trap table (set_trap_table, ${trapRows.length} entries)`),
    trapRows.length
      ? table(['vector', 'handler', 'symbol', 'DPL', 'mask events', 'flags'], trapRows, 'traps')
      : h('div', { className: 'dim' }, 'none registered'),
  );
});
