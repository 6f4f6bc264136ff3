/**
 * The guest console as a VS Code terminal (Pseudoterminal): output from the
 * adapter's `output` events (category stdout), keystrokes into the guest's
 * console ring through the custom request `pvscope/consoleInput`
 * (docs/debug-adapter.md). A terminal renders text, not markup, so guest
 * bytes cannot inject anything; control sequences other than the ones a
 * console normally uses are kept as the guest sent them (as xl console does).
 */
import * as vscode from 'vscode';
import type { SessionState, SessionTracker } from './sessions';

/** Converts guest console text for the terminal: lone LF becomes CRLF. */
export function toTerminalText(text: string): string {
  return text.replace(/\r?\n/g, '\r\n');
}

/** One terminal per pvscope session. */
export class GuestConsoles implements vscode.Disposable {
  private readonly terminals = new Map<
    string,
    { terminal: vscode.Terminal; write: vscode.EventEmitter<string>; buffered: string[]; open: boolean }
  >();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly tracker: SessionTracker) {
    this.disposables.push(
      tracker.onStarted((st) => this.open(st)),
      tracker.onOutput(({ state, text }) => this.write(state, text)),
      tracker.onEnded((st) => {
        const t = this.terminals.get(st.session.id);
        if (t) t.write.fire('\r\n[pvscope: debug session ended]\r\n');
        this.terminals.delete(st.session.id);
      }),
    );
  }

  /** Shows the console terminal of the current session (opening one if needed). */
  show(st: SessionState | undefined): void {
    if (!st) {
      void vscode.window.showInformationMessage('pvscope: no pvscope debug session is running.');
      return;
    }
    (this.terminals.get(st.session.id)?.terminal ?? this.open(st)).show();
  }

  private open(st: SessionState): vscode.Terminal {
    const existing = this.terminals.get(st.session.id);
    if (existing) return existing.terminal;
    const write = new vscode.EventEmitter<string>();
    const entry = {
      terminal: undefined as unknown as vscode.Terminal,
      write,
      buffered: [] as string[],
      open: false,
    };
    const pty: vscode.Pseudoterminal = {
      onDidWrite: write.event,
      open: () => {
        entry.open = true;
        for (const b of entry.buffered) write.fire(b);
        entry.buffered = [];
      },
      close: () => {
        this.terminals.delete(st.session.id);
      },
      handleInput: (data: string) => {
        st.session.customRequest('pvscope/consoleInput', { text: data }).then(undefined, (e: unknown) => {
          write.fire(
            `\r\n[pvscope: console input failed: ${e instanceof Error ? e.message : String(e)}]\r\n`,
          );
        });
      },
    };
    entry.terminal = vscode.window.createTerminal({
      name: `Guest console (${st.session.name})`,
      pty,
      iconPath: new vscode.ThemeIcon('terminal'),
    });
    this.terminals.set(st.session.id, entry);
    entry.terminal.show(true);
    return entry.terminal;
  }

  private write(st: SessionState, text: string): void {
    const t = this.terminals.get(st.session.id) ?? (this.open(st), this.terminals.get(st.session.id)!);
    const out = toTerminalText(text);
    if (t.open) t.write.fire(out);
    else t.buffered.push(out);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    for (const t of this.terminals.values()) t.terminal.dispose();
  }
}
