/**
 * Tracks pvscope debug sessions through a DebugAdapterTracker: run state
 * (stopped / running), the vCPU of the last stop, console output (DAP
 * `output` events with category `stdout`) and the exception-filter settings
 * VS Code last sent (so the extension can change one filter's condition
 * without dropping the others).
 */
import * as vscode from 'vscode';
import type { DebugProtocol } from '@vscode/debugprotocol';

/** State of one pvscope session as seen from the DAP traffic. */
export interface SessionState {
  session: vscode.DebugSession;
  running: boolean;
  /** vCPU index of the last stop (thread id - 1). */
  stoppedVcpu: number;
  /** Last `setExceptionBreakpoints` arguments sent to the adapter (by VS Code or by the extension). */
  exceptionArgs: DebugProtocol.SetExceptionBreakpointsArguments | null;
}

/** Events fired by {@link SessionTracker}. */
export class SessionTracker implements vscode.Disposable {
  readonly states = new Map<string, SessionState>();
  private readonly _onStopped = new vscode.EventEmitter<SessionState>();
  private readonly _onContinued = new vscode.EventEmitter<SessionState>();
  private readonly _onOutput = new vscode.EventEmitter<{ state: SessionState; text: string }>();
  private readonly _onStarted = new vscode.EventEmitter<SessionState>();
  private readonly _onEnded = new vscode.EventEmitter<SessionState>();
  /** A session stopped (breakpoint, step, filter, entry, pause). */
  readonly onStopped = this._onStopped.event;
  /** A session resumed. */
  readonly onContinued = this._onContinued.event;
  /** Guest console output (text as the adapter sent it). */
  readonly onOutput = this._onOutput.event;
  /** A pvscope session started. */
  readonly onStarted = this._onStarted.event;
  /** A pvscope session ended. */
  readonly onEnded = this._onEnded.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(
      vscode.debug.registerDebugAdapterTrackerFactory('pvscope', {
        createDebugAdapterTracker: (session) => this.tracker(session),
      }),
      vscode.debug.onDidTerminateDebugSession((s) => {
        const st = this.states.get(s.id);
        if (st) {
          this.states.delete(s.id);
          this._onEnded.fire(st);
        }
      }),
    );
  }

  /** The state of the active pvscope session, or of any pvscope session. */
  current(): SessionState | undefined {
    const active = vscode.debug.activeDebugSession;
    if (active && this.states.has(active.id)) return this.states.get(active.id);
    let last: SessionState | undefined;
    for (const s of this.states.values()) last = s;
    return last;
  }

  /** vCPU selected in the Call Stack view (activeStackItem), else the vCPU of the last stop. */
  selectedVcpu(st: SessionState): number {
    const item = vscode.debug.activeStackItem;
    if (item && item.session.id === st.session.id && typeof item.threadId === 'number' && item.threadId >= 1)
      return item.threadId - 1;
    return st.stoppedVcpu;
  }

  private tracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    const st: SessionState = { session, running: false, stoppedVcpu: 0, exceptionArgs: null };
    this.states.set(session.id, st);
    return {
      onWillStartSession: () => this._onStarted.fire(st),
      onWillReceiveMessage: (m: DebugProtocol.ProtocolMessage) => {
        if (m.type !== 'request') return;
        const r = m as DebugProtocol.Request;
        if (r.command === 'setExceptionBreakpoints')
          st.exceptionArgs = (r.arguments ?? null) as DebugProtocol.SetExceptionBreakpointsArguments | null;
      },
      onDidSendMessage: (m: DebugProtocol.ProtocolMessage) => {
        if (m.type === 'event') {
          const ev = m as DebugProtocol.Event;
          if (ev.event === 'stopped') {
            const b = (ev as DebugProtocol.StoppedEvent).body;
            st.running = false;
            if (typeof b?.threadId === 'number') st.stoppedVcpu = Math.max(0, b.threadId - 1);
            this._onStopped.fire(st);
          } else if (ev.event === 'continued') {
            st.running = true;
            this._onContinued.fire(st);
          } else if (ev.event === 'output') {
            const b = (ev as DebugProtocol.OutputEvent).body;
            if (b?.category === 'stdout' && typeof b.output === 'string')
              this._onOutput.fire({ state: st, text: b.output });
          }
        } else if (m.type === 'response') {
          const r = m as DebugProtocol.Response;
          if (
            r.success &&
            ['continue', 'next', 'stepIn', 'stepOut', 'stepBack', 'reverseContinue', 'restart'].includes(
              r.command,
            )
          ) {
            st.running = true;
            this._onContinued.fire(st);
          }
        }
      },
    };
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this._onStopped.dispose();
    this._onContinued.dispose();
    this._onOutput.dispose();
    this._onStarted.dispose();
    this._onEnded.dispose();
  }
}
