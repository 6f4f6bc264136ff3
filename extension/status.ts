/**
 * Status bar item while a pvscope guest runs: selected vCPU, instructions
 * retired and MIPS, from the adapter's `pvscope/status` (polled every
 * {@link STATUS_INTERVAL_MS} ms of host time).
 */
import * as vscode from 'vscode';
import type { SessionTracker } from './sessions';

/** Poll period (ms). */
export const STATUS_INTERVAL_MS = 500;

/** Body of `pvscope/status` (docs/debug-adapter.md). */
export interface StatusBody {
  running: boolean;
  instructionsRetired: number;
  mips: number;
  vcpu: number;
  finished: boolean;
}

/** Formats the status bar text, e.g. "$(chip) vcpu0 · 1,234,567 insns · 12.3 MIPS". */
export function statusText(s: StatusBody, vcpu: number): string {
  const n = Math.max(0, Math.floor(Number(s.instructionsRetired) || 0)).toLocaleString('en-US');
  const state = s.finished ? 'finished' : s.running ? `${(Number(s.mips) || 0).toFixed(1)} MIPS` : 'stopped';
  return `$(chip) vcpu${vcpu} \u00b7 ${n} insns \u00b7 ${state}`;
}

/** The status bar item. */
export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(
    'pvscope.status',
    vscode.StatusBarAlignment.Left,
    50,
  );
  private timer: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly tracker: SessionTracker) {
    this.item.name = 'pvscope guest';
    this.item.tooltip = 'pvscope: selected vCPU, guest instructions retired, MIPS';
    this.timer = setInterval(() => void this.update(), STATUS_INTERVAL_MS);
    tracker.onStopped(() => void this.update());
    tracker.onEnded(() => void this.update());
  }

  private async update(): Promise<void> {
    if (this.busy) return;
    const st = this.tracker.current();
    if (!st) {
      this.item.hide();
      return;
    }
    this.busy = true;
    try {
      const body = (await st.session.customRequest('pvscope/status', {})) as StatusBody;
      // The adapter's view of the run state also covers starts without a DAP event (stopOnEntry: false).
      if (typeof body.running === 'boolean') st.running = body.running && !body.finished;
      this.item.text = statusText(body, this.tracker.selectedVcpu(st));
      this.item.show();
    } catch {
      this.item.hide();
    } finally {
      this.busy = false;
    }
  }

  dispose(): void {
    clearInterval(this.timer);
    this.item.dispose();
  }
}
