/**
 * The pvscope panels (webviews): descriptor tables, page tables, event
 * channels, grant table, XenStore. Each panel follows the selected vCPU
 * (vscode.debug.activeStackItem), refreshes at every stop and every
 * {@link LIVE_INTERVAL_MS} while the guest runs, through the adapter's
 * `pvscope/...` custom requests (docs/debug-adapter.md). Data goes to the
 * webview only by postMessage; the webview renders it as text.
 */
import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import type { FromWebview, PanelKind, ToWebview } from '../webviews/shared/protocol';
import { eventPortsOf, withEventPorts } from './event-filter';
import { makeNonce, panelHtml } from './html';
import type { SessionState, SessionTracker } from './sessions';

/** Refresh period of visible panels while the guest runs (ms of host time). */
export const LIVE_INTERVAL_MS = 500;

/** Titles and commands of the panels. */
export const PANELS: Record<PanelKind, { title: string; command: string }> = {
  descriptors: { title: 'pvscope: Descriptor Tables', command: 'pvscope.showDescriptorTables' },
  pagetables: { title: 'pvscope: Page Tables', command: 'pvscope.showPageTables' },
  evtchn: { title: 'pvscope: Event Channels', command: 'pvscope.showEventChannels' },
  grants: { title: 'pvscope: Grant Table', command: 'pvscope.showGrantTable' },
  xenstore: { title: 'pvscope: XenStore', command: 'pvscope.showXenStore' },
};

class Panel {
  readonly panel: vscode.WebviewPanel;
  private ready = false;
  private busy = false;
  private xenstorePath: string | undefined;

  constructor(
    readonly kind: PanelKind,
    private readonly extensionUri: vscode.Uri,
    private readonly manager: PanelManager,
  ) {
    this.panel = vscode.window.createWebviewPanel(`pvscope.${kind}`, PANELS[kind].title, manager.column(), {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webviews')],
    });
    const webview = this.panel.webview;
    webview.html = panelHtml({
      cspSource: webview.cspSource,
      scriptUri: webview
        .asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webviews', `${kind}.js`))
        .toString(),
      nonce: makeNonce((n) => randomBytes(n)),
      title: PANELS[kind].title,
    });
    webview.onDidReceiveMessage((m: FromWebview) => this.onMessage(m));
    this.panel.onDidChangeViewState(() => {
      if (this.panel.visible) void this.refresh();
    });
  }

  private post(msg: ToWebview): void {
    void this.panel.webview.postMessage(msg);
  }

  private async onMessage(m: FromWebview): Promise<void> {
    if (!m || typeof m !== 'object') return;
    const st = this.manager.tracker.current();
    switch (m.type) {
      case 'ready':
        this.ready = true;
        if (this.kind === 'evtchn')
          this.post({ type: 'eventFilter', ports: eventPortsOf(st?.exceptionArgs ?? null) });
        return this.refresh();
      case 'refresh':
        return this.refresh();
      case 'xenstorePath':
        this.xenstorePath = typeof m.path === 'string' && m.path.trim() ? m.path.trim() : undefined;
        return this.refresh();
      case 'pageTable': {
        if (!st) return this.post({ type: 'pageTable', reqId: m.reqId, node: null, error: 'no session' });
        try {
          const node = await st.session.customRequest('pvscope/pageTable', {
            vcpu: this.manager.tracker.selectedVcpu(st),
            root: String(m.root),
          });
          this.post({ type: 'pageTable', reqId: m.reqId, node });
        } catch (e) {
          this.post({ type: 'pageTable', reqId: m.reqId, node: null, error: errText(e) });
        }
        return;
      }
      case 'walk': {
        if (!st) return this.post({ type: 'walk', result: null, error: 'no pvscope debug session' });
        const va = String(m.va).trim();
        try {
          let addr: string | number = va;
          if (!/^(0x[0-9a-f]+|\d+)$/i.test(va)) {
            // An expression (symbol, register): evaluate it in the debugger.
            const ev = await st.session.customRequest('evaluate', { expression: va, context: 'watch' });
            const mm = /^(0x[0-9a-f]+)/i.exec(String(ev?.result ?? ''));
            if (!mm) throw new Error(`cannot evaluate '${va}' to an address`);
            addr = mm[1];
          }
          const result = await st.session.customRequest('pvscope/walk', {
            vcpu: this.manager.tracker.selectedVcpu(st),
            va: addr,
          });
          this.post({ type: 'walk', result });
        } catch (e) {
          this.post({ type: 'walk', result: null, error: errText(e) });
        }
        return;
      }
      case 'openMemory':
        if (st && typeof m.memoryReference === 'string') await openMemory(st.session, m.memoryReference);
        return;
      case 'eventBreak': {
        if (!st) return;
        const ports = new Set(eventPortsOf(st.exceptionArgs));
        if (m.on) ports.add(Number(m.port));
        else ports.delete(Number(m.port));
        const args = withEventPorts(
          st.exceptionArgs,
          [...ports].sort((a, b) => a - b),
        );
        try {
          await st.session.customRequest('setExceptionBreakpoints', args);
          st.exceptionArgs = args;
          this.manager.broadcastEventFilter(eventPortsOf(args));
        } catch (e) {
          this.post({ type: 'eventFilter', ports: eventPortsOf(st.exceptionArgs), error: errText(e) });
        }
        return;
      }
    }
  }

  /** Fetches the panel's data from the current session and posts it. */
  async refresh(): Promise<void> {
    if (!this.ready || this.busy) return;
    const st = this.manager.tracker.current();
    if (!st) {
      this.post({ type: 'data', data: null, vcpu: 0, running: false, error: 'no pvscope debug session' });
      return;
    }
    this.busy = true;
    const vcpu = this.manager.tracker.selectedVcpu(st);
    // The Breakpoints view may have changed the filters since the last refresh.
    if (this.kind === 'evtchn') this.post({ type: 'eventFilter', ports: eventPortsOf(st.exceptionArgs) });
    try {
      const data = await this.fetch(st, vcpu);
      this.post({ type: 'data', data, vcpu, running: st.running });
    } catch (e) {
      this.post({ type: 'data', data: null, vcpu, running: st.running, error: errText(e) });
    } finally {
      this.busy = false;
    }
  }

  private async fetch(st: SessionState, vcpu: number): Promise<unknown> {
    const s = st.session;
    switch (this.kind) {
      case 'descriptors':
        return s.customRequest('pvscope/descriptorTables', { vcpu });
      case 'pagetables': {
        const kernel = await s.customRequest('pvscope/pageTable', { vcpu, root: 'kernel' });
        let user: unknown = null;
        try {
          user = await s.customRequest('pvscope/pageTable', { vcpu, root: 'user' });
        } catch {
          user = null; // 32-bit guests have one root
        }
        return { kernel, user };
      }
      case 'evtchn':
        return s.customRequest('pvscope/eventChannels', {});
      case 'grants':
        return s.customRequest('pvscope/grants', {});
      case 'xenstore':
        return s.customRequest('pvscope/xenstore', this.xenstorePath ? { path: this.xenstorePath } : {});
    }
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Opens VS Code's memory view for a memory reference of the session, the way
 * the Variables view's "View Binary Data" does: a `vscode-debug-memory` URI
 * (authority: session id, path: the encoded reference) opened with the Hex
 * Editor when it is installed, else with the default editor.
 */
export async function openMemory(session: vscode.DebugSession, memoryReference: string): Promise<void> {
  const uri = vscode.Uri.from({
    scheme: 'vscode-debug-memory',
    authority: session.id,
    path: `/${encodeURIComponent(memoryReference)}/${encodeURIComponent(memoryReference.replace(/[^A-Za-z0-9]+/g, '_'))}.bin`,
    query: 'range=0:4096',
  });
  try {
    if (vscode.extensions.getExtension('ms-vscode.hexeditor'))
      await vscode.commands.executeCommand('vscode.openWith', uri, 'hexEditor.hexedit');
    else await vscode.commands.executeCommand('vscode.open', uri);
  } catch (e) {
    void vscode.window.showErrorMessage(`pvscope: cannot open memory ${memoryReference}: ${errText(e)}`);
  }
}

/** Owns the panels and their refresh schedule. */
export class PanelManager implements vscode.Disposable {
  private readonly panels = new Map<PanelKind, Panel>();
  private timer: NodeJS.Timeout | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    readonly tracker: SessionTracker,
  ) {
    this.disposables.push(
      tracker.onStopped(() => this.refreshAll()),
      tracker.onContinued(() => this.refreshAll()),
      tracker.onStarted(() => this.refreshAll()),
      tracker.onEnded(() => this.refreshAll()),
      vscode.debug.onDidChangeActiveStackItem(() => this.refreshAll()),
      vscode.debug.onDidChangeActiveDebugSession(() => this.refreshAll()),
    );
    this.timer = setInterval(() => {
      const st = tracker.current();
      if (st?.running) this.refreshAll();
    }, LIVE_INTERVAL_MS);
  }

  /** Opens (or reveals) a panel. */
  show(kind: PanelKind): void {
    const existing = this.panels.get(kind);
    if (existing) {
      existing.panel.reveal();
      void existing.refresh();
      return;
    }
    const p = new Panel(kind, this.extensionUri, this);
    p.panel.onDidDispose(() => this.panels.delete(kind));
    this.panels.set(kind, p);
  }

  /** Editor column for a new panel: the column of an open pvscope panel, else beside the active editor. */
  column(): vscode.ViewColumn {
    for (const p of this.panels.values()) if (p.panel.viewColumn !== undefined) return p.panel.viewColumn;
    return vscode.ViewColumn.Beside;
  }

  /** Refreshes every visible panel. */
  refreshAll(): void {
    for (const p of this.panels.values()) if (p.panel.visible) void p.refresh();
  }

  /** Tells the event-channel panel which ports the `event` filter stops on. */
  broadcastEventFilter(ports: number[]): void {
    const p = this.panels.get('evtchn');
    if (p) void p.panel.webview.postMessage({ type: 'eventFilter', ports } satisfies ToWebview);
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    for (const d of this.disposables) d.dispose();
    for (const p of this.panels.values()) p.panel.dispose();
  }
}
