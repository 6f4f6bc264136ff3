/**
 * Event channel panel: every port (state, remote end or VIRQ, bound vCPU,
 * pending/masked, send and upcall counts) and per-vCPU upcall state. A click
 * on a port's "break" box asks the extension to add that port to the `event`
 * exception filter's condition. Data: the adapter's `pvscope/eventChannels`.
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

interface Port {
  port: number;
  state: string;
  vcpu: number;
  remoteDom?: number;
  remotePort?: number;
  virq?: number;
  virqName?: string;
  pirq?: number;
  pending: boolean;
  masked: boolean;
  sends: number;
  upcalls: number;
  backend?: string;
}
interface VcpuState {
  vcpu: number;
  upcallPending: boolean;
  upcallMask: boolean;
  pendingSel: string;
}

addStyles(BASE_CSS);
const { status } = header('Event channels');
const filterLine = h('div', { className: 'toolbar', id: 'filter' }, 'Stop on ports: none');
const content = h('div', { id: 'content' });
root().append(filterLine, content);
let breakPorts = new Set<number>();
let last: { ports: Port[]; vcpus: VcpuState[] } | null = null;

function peer(p: Port): string {
  switch (p.state) {
    case 'interdomain':
      return `dom${p.remoteDom ?? '?'} port ${p.remotePort ?? '?'}`;
    case 'unbound':
      return p.remoteDom !== undefined ? `awaiting dom${p.remoteDom}` : '';
    case 'virq':
      return `${p.virqName ?? 'VIRQ'} (${p.virq ?? '?'})`;
    case 'pirq':
      return `pirq ${p.pirq ?? '?'}`;
    default:
      return '';
  }
}

function render(): void {
  if (!last) return replace(content);
  const rows = (last.ports ?? []).map((p) => {
    const box = h('input', {
      type: 'checkbox',
      checked: breakPorts.has(p.port),
      title: `Stop at events on port ${p.port}`,
    });
    box.className = 'break';
    box.addEventListener('change', () => post({ type: 'eventBreak', port: p.port, on: box.checked }));
    return row(
      [
        box,
        String(p.port),
        p.state,
        peer(p),
        p.backend ?? '',
        String(p.vcpu),
        p.pending ? h('span', { className: 'on' }, 'pending') : h('span', { className: 'dim' }, '-'),
        p.masked ? h('span', { className: 'on' }, 'masked') : h('span', { className: 'dim' }, '-'),
        String(p.sends),
        String(p.upcalls),
      ],
      { dataset: { port: String(p.port) } },
    );
  });
  const vrows = (last.vcpus ?? []).map((v) =>
    row([`vcpu${v.vcpu}`, v.upcallPending ? 'yes' : 'no', v.upcallMask ? 'yes' : 'no', String(v.pendingSel)]),
  );
  replace(
    content,
    h('h2', {}, `Ports (${rows.length})`),
    table(
      [
        'break',
        'port',
        'state',
        'remote end / VIRQ',
        'backend',
        'vCPU',
        'pending',
        'masked',
        'sends',
        'upcalls',
      ],
      rows,
      'ports',
    ),
    h('h2', {}, 'vCPU upcall state'),
    table(['vCPU', 'upcall pending', 'upcall mask', 'pending selector'], vrows, 'vcpus'),
  );
}

onMessage((msg) => {
  if (msg.type === 'eventFilter') {
    breakPorts = new Set(msg.ports);
    filterLine.textContent = msg.error
      ? `Event filter: ${msg.error}`
      : `Stop on ports: ${msg.ports.length ? msg.ports.join(', ') : 'none'}`;
    render();
    return;
  }
  if (msg.type !== 'data') return;
  setStatus(status, msg);
  last = msg.data as typeof last;
  render();
});
