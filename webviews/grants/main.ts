/**
 * Grant table panel: every grant entry in use (ref, flags, domid, frame, who
 * maps it). Data: the adapter's `pvscope/grants` body.
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

interface Grant {
  ref: number;
  flags: number;
  flagNames: string[];
  domid: number;
  frame: string;
  mappedBy: string[];
}

addStyles(BASE_CSS);
const { status } = header('Grant table');
const content = h('div', { id: 'content' });
root().append(content);

onMessage((msg) => {
  if (msg.type !== 'data') return;
  setStatus(status, msg);
  const b = msg.data as { entries: Grant[] } | null;
  if (!b) return replace(content);
  const rows = (b.entries ?? []).map((g) => {
    const frame = h(
      'button',
      { className: 'link', title: 'Open the granted frame in the memory view' },
      g.frame,
    );
    frame.addEventListener('click', () => {
      // GTF_permit_access frames are the granting domain's gfns.
      post({ type: 'openMemory', memoryReference: `p:0x${(BigInt(g.frame) << 12n).toString(16)}` });
    });
    return row([
      String(g.ref),
      h('span', {}, ...(g.flagNames ?? []).map((f) => h('span', { className: 'tag' }, f))),
      `0x${g.flags.toString(16)}`,
      String(g.domid),
      frame,
      (g.mappedBy ?? []).join(', '),
    ]);
  });
  replace(
    content,
    h('h2', {}, `${rows.length} entries in use`),
    table(['ref', 'flags', 'raw', 'domid', 'frame', 'mapped by'], rows, 'grants'),
  );
});
