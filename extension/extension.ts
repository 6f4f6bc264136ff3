import * as vscode from 'vscode';

/** Extension entry point (filled in by the extension work). */
export function activate(_context: vscode.ExtensionContext): void {}
export function deactivate(): void {}
