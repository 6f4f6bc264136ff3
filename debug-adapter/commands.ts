/**
 * Debug-console commands for the hypervisor's state (typed in VS Code's
 * Debug Console; anything else is an expression): `info gdt`, `info idt`,
 * `info ldt`, `info trap`, `info pt <va>`, `info evtchn`, `info grants`,
 * `info domain`, `info vcpu`, `xenstore-ls [path]`, `help`.
 * Output is plain text (the console does not render markup).
 */
import type { DescriptorEntry, Machine, XenstoreNode } from '../engine/machine-api';
import type { DebugInfo } from '../engine/debug/debug-info';

/** What a command can see. */
export interface CommandContext {
  machine: Machine;
  vcpu: number;
  symbols: DebugInfo;
  bits: 32 | 64;
  /** Evaluates an expression (for `info pt <va>`). Throws ExprError. */
  evaluate(expr: string): bigint;
}

const HELP = `pvscope debug console
  <expression>        evaluate: registers ($rax or rax), symbols, C operators, *(u32*)addr
  info gdt|ldt|idt    descriptor tables of the current vCPU
  info trap           the virtual IDT registered with set_trap_table
  info pt <va>        page-table walk of a guest virtual address
  info evtchn         event channels (ports, state, pending/masked)
  info grants         grant table entries in use
  info domain         start_info and shared_info summary
  info vcpu           vcpu_info, runstate, callbacks of the current vCPU
  xenstore-ls [path]  the XenStore tree (default: the guest's /local/domain/<id>)
  help                this text`;

/** True when `text` is a console command rather than an expression. */
export function isConsoleCommand(text: string): boolean {
  return /^(info\s|info$|xenstore-ls\b|help$|\?$)/.test(text.trim());
}

function hex(v: bigint | number, pad = 0): string {
  return '0x' + BigInt.asUintN(64, BigInt(v)).toString(16).padStart(pad, '0');
}

function descriptors(list: DescriptorEntry[], title: string): string {
  if (list.length === 0) return `${title}: empty`;
  const lines = [`${title}: ${list.length} entr${list.length === 1 ? 'y' : 'ies'}`];
  for (const d of list) {
    if (!d.present && d.kind === 'null') continue;
    const where = d.loadedIn.length > 0 ? `  [${d.loadedIn.join(',')}]` : '';
    const gate =
      d.gateSelector !== undefined
        ? ` -> ${hex(d.gateSelector, 4)}:${hex(d.gateOffset ?? 0n)}${d.symbol ? ` <${d.symbol}>` : ''}`
        : '';
    const seg =
      d.gateSelector === undefined
        ? ` base=${hex(d.base)} limit=${hex(d.limit)}${d.l ? ' L' : ''}${d.db ? ' D/B' : ''}${d.g ? ' G' : ''}`
        : '';
    lines.push(
      `  [${String(d.index).padStart(4)}] sel=${hex(d.selector, 4)} ${d.kind.padEnd(14)} dpl=${d.dpl} ${d.present ? 'P' : '-'}${seg}${gate}${d.xenReserved ? ' (Xen)' : ''}${where}`,
    );
  }
  return lines.join('\n');
}

function tree(n: XenstoreNode, depth: number, lines: string[]): void {
  if (lines.length > 2000) return;
  const name = depth === 0 ? n.path : n.path.slice(n.path.lastIndexOf('/') + 1);
  lines.push(`${'  '.repeat(depth)}${name} = ${JSON.stringify(n.value)}   (${n.perms.join(' ')})`);
  for (const c of n.children) tree(c, depth + 1, lines);
}

/** Runs a console command and returns its text. Throws Error with a user-facing message. */
export function runConsoleCommand(text: string, ctx: CommandContext): string {
  const parts = text.trim().split(/\s+/);
  const m = ctx.machine;
  if (parts[0] === 'help' || parts[0] === '?') return HELP;
  if (parts[0] === 'xenstore-ls') {
    const path = parts[1];
    const node = m.xenstore(path);
    if (!node) return `xenstore-ls: ${path ?? '/'}: no such node`;
    const lines: string[] = [];
    tree(node, 0, lines);
    return lines.join('\n');
  }
  const what = parts[1];
  switch (what) {
    case 'gdt':
      return descriptors(m.gdt(ctx.vcpu), 'GDT');
    case 'ldt':
      return descriptors(m.ldt(ctx.vcpu), 'LDT');
    case 'idt':
      return descriptors(m.idt(ctx.vcpu), 'IDT');
    case 'trap':
    case 'traps': {
      const t = m.trapTable(ctx.vcpu);
      if (t.length === 0) return 'trap table: empty (set_trap_table not called yet)';
      return [
        'trap table:',
        ...t.map(
          (e) =>
            `  vector ${String(e.vector).padStart(3)} dpl=${e.dpl}${e.maskEvents ? ' mask-events' : ''} ${hex(e.cs, 4)}:${hex(e.address)}${e.symbol ? ` <${e.symbol}>` : (ctx.symbols.format(e.address) ?? '') ? ` <${ctx.symbols.format(e.address)}>` : ''}`,
        ),
      ].join('\n');
    }
    case 'pt': {
      const expr = parts.slice(2).join(' ');
      if (!expr) throw new Error('usage: info pt <virtual address expression>');
      const va = ctx.evaluate(expr);
      const w = m.walk(ctx.vcpu, va);
      const lines = [`walk of ${hex(va)}:`];
      for (const s of w.steps)
        lines.push(
          `  L${s.level} table mfn=${hex(s.tableMfn)} [${s.index}] = ${hex(s.entry, 16)} ${s.flags.join(' ')}`,
        );
      if (w.maddr === null) lines.push(`  not mapped${w.fault ? `: ${w.fault}` : ''}`);
      else
        lines.push(
          `  -> maddr ${hex(w.maddr)}${w.paddr !== null ? `  paddr ${hex(w.paddr)}` : ''}${w.pfn !== null ? `  pfn ${hex(w.pfn)}` : ''}`,
        );
      return lines.join('\n');
    }
    case 'evtchn':
    case 'events': {
      const e = m.evtchns();
      const lines = ['port  state        vcpu  pending masked  remote/virq        sends upcalls  backend'];
      for (const p of e.ports) {
        if (p.state === 'free') continue;
        const remote =
          p.state === 'interdomain'
            ? `dom${p.remoteDom}:${p.remotePort}`
            : p.state === 'virq'
              ? (p.virqName ?? `virq ${p.virq}`)
              : p.state === 'pirq'
                ? `pirq ${p.pirq}`
                : p.remoteDom !== undefined
                  ? `dom${p.remoteDom}`
                  : '';
        lines.push(
          `${String(p.port).padStart(4)}  ${p.state.padEnd(12)} ${String(p.vcpu).padStart(4)}  ${(p.pending ? 'yes' : 'no').padEnd(7)} ${(p.masked ? 'yes' : 'no').padEnd(6)}  ${remote.padEnd(18)} ${String(p.sends).padStart(5)} ${String(p.upcalls).padStart(7)}  ${p.backend ?? ''}`,
        );
      }
      for (const v of e.vcpus)
        lines.push(
          `vcpu${v.vcpu}: upcall_pending=${v.upcallPending ? 1 : 0} upcall_mask=${v.upcallMask ? 1 : 0} pending_sel=${hex(v.pendingSel)}`,
        );
      return lines.join('\n');
    }
    case 'grants':
    case 'gnttab': {
      const g = m.grants();
      if (g.length === 0) return 'grant table: no entries in use';
      return [
        'ref    flags                          domid  frame',
        ...g.map(
          (e) =>
            `${String(e.ref).padStart(5)}  ${`${hex(e.flags, 4)} ${e.flagNames.join('|')}`.padEnd(30)} ${String(e.domid).padStart(5)}  ${hex(e.frame)}${e.mappedBy.length > 0 ? `  mapped by ${e.mappedBy.join(', ')}` : ''}`,
        ),
      ].join('\n');
    }
    case 'domain':
      return Object.entries(m.domainInfo())
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
    case 'vcpu':
      return Object.entries(m.vcpuInfo(ctx.vcpu))
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n');
    default:
      throw new Error(`unknown command 'info ${what ?? ''}' (try 'help')`);
  }
}
