/**
 * pvscope VS Code extension entry point (bundled to dist/extension.js).
 *
 * Registers: the `pvscope` debug configuration provider and adapter factory
 * (extension/adapter.ts), the debug adapter tracker (extension/sessions.ts),
 * the guest console terminal (extension/console.ts), the panels
 * (extension/panels.ts), the status bar item (extension/status.ts) and the
 * xl detection of `.cfg` files (extension/xl-detect.ts).
 */
import * as vscode from 'vscode';
import { PvscopeAdapterFactory, PvscopeConfigurationProvider } from './adapter';
import { GuestConsoles } from './console';
import { PanelManager, PANELS } from './panels';
import { SessionTracker } from './sessions';
import { StatusItem } from './status';
import { looksLikeXlConfig } from './xl-detect';
import type { PanelKind } from '../webviews/shared/protocol';

/** Switches a `.cfg` document to the xl-config language when its content looks like an xl domain configuration. */
function detectXl(doc: vscode.TextDocument): void {
  if (doc.languageId === 'xl-config' || !/\.cfg$/i.test(doc.uri.path)) return;
  if (doc.languageId !== 'properties' && doc.languageId !== 'plaintext' && doc.languageId !== 'ini') return;
  if (looksLikeXlConfig(doc.getText())) void vscode.languages.setTextDocumentLanguage(doc, 'xl-config');
}

/** Activates the extension. */
export function activate(context: vscode.ExtensionContext): void {
  const tracker = new SessionTracker();
  const consoles = new GuestConsoles(tracker);
  const panels = new PanelManager(context.extensionUri, tracker);
  const status = new StatusItem(tracker);
  const provider = new PvscopeConfigurationProvider();
  context.subscriptions.push(
    tracker,
    consoles,
    panels,
    status,
    vscode.debug.registerDebugConfigurationProvider('pvscope', provider),
    vscode.debug.registerDebugConfigurationProvider(
      'pvscope',
      provider,
      vscode.DebugConfigurationProviderTriggerKind.Dynamic,
    ),
    vscode.debug.registerDebugAdapterDescriptorFactory(
      'pvscope',
      new PvscopeAdapterFactory(context.extensionUri),
    ),
    vscode.commands.registerCommand('pvscope.showConsole', () => consoles.show(tracker.current())),
    vscode.workspace.onDidOpenTextDocument(detectXl),
  );
  for (const [kind, p] of Object.entries(PANELS))
    context.subscriptions.push(
      vscode.commands.registerCommand(p.command, () => panels.show(kind as PanelKind)),
    );
  for (const doc of vscode.workspace.textDocuments) detectXl(doc);
}

/** Deactivates the extension (everything is disposed through the subscriptions). */
export function deactivate(): void {}
