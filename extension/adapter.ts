/**
 * How VS Code starts the pvscope debug adapter, and the launch
 * configurations the extension offers.
 *
 * - `pvscope.adapterMode: "process"` (default): the adapter runs as its own
 *   Node process, `node dist/debug-adapter.js` (DebugAdapterExecutable).
 * - `"inline"`: the adapter's session class (debug-adapter/session.ts
 *   `PvscopeSession`) runs inside the extension host
 *   (DebugAdapterInlineImplementation); used by tests.
 */
import * as vscode from 'vscode';
import { createMachine } from '../engine/machine';
import { PvscopeSession } from '../debug-adapter/session';

/** Launch configuration for an xl domain configuration file. */
export function xlLaunchConfig(file: string): vscode.DebugConfiguration {
  return {
    type: 'pvscope',
    request: 'launch',
    name: 'Debug from an xl domain config',
    config: file,
    stopOnEntry: true,
  };
}

/** Initial launch.json configurations (the same as package.json's initialConfigurations and snippets). */
export const INITIAL_CONFIGURATIONS: vscode.DebugConfiguration[] = [
  {
    type: 'pvscope',
    request: 'launch',
    name: 'Debug a Xen PV kernel',
    kernel: '${workspaceFolder}/vmlinux',
    cmdline: 'console=hvc0 earlyprintk=xen',
    memory: 256,
    stopOnEntry: true,
    cwd: '${workspaceFolder}',
  },
  {
    type: 'pvscope',
    request: 'launch',
    name: 'Debug from an xl domain config',
    config: '${workspaceFolder}/domain.cfg',
    stopOnEntry: true,
    cwd: '${workspaceFolder}',
  },
];

/**
 * DebugConfigurationProvider: initial configurations; F5 with no launch.json
 * launches the xl configuration open in the active editor; otherwise an
 * empty configuration gets a message instead of a failing launch.
 */
export class PvscopeConfigurationProvider implements vscode.DebugConfigurationProvider {
  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    return INITIAL_CONFIGURATIONS.map((c) => ({ ...c }));
  }

  resolveDebugConfiguration(
    folder: vscode.WorkspaceFolder | undefined,
    config: vscode.DebugConfiguration,
  ): vscode.ProviderResult<vscode.DebugConfiguration> {
    if (!config.type && !config.request && !config.name) {
      const editor = vscode.window.activeTextEditor;
      if (editor && editor.document.languageId === 'xl-config' && editor.document.uri.scheme === 'file') {
        const c = xlLaunchConfig(editor.document.uri.fsPath);
        if (folder) c.cwd = folder.uri.fsPath;
        return c;
      }
      void vscode.window.showInformationMessage(
        'pvscope: open an xl domain configuration file, or add a pvscope configuration to launch.json.',
      );
      return undefined;
    }
    if (!config.cwd && folder) config.cwd = folder.uri.fsPath;
    return config;
  }
}

/** Chooses process or inline mode from the `pvscope.adapterMode` setting. */
export class PvscopeAdapterFactory implements vscode.DebugAdapterDescriptorFactory {
  constructor(private readonly extensionUri: vscode.Uri) {}

  createDebugAdapterDescriptor(): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    const mode = vscode.workspace.getConfiguration('pvscope').get<string>('adapterMode', 'process');
    if (mode === 'inline') {
      const session = new PvscopeSession({ createMachine: () => createMachine });
      return new vscode.DebugAdapterInlineImplementation(session as unknown as vscode.DebugAdapter);
    }
    const script = vscode.Uri.joinPath(this.extensionUri, 'dist', 'debug-adapter.js').fsPath;
    return new vscode.DebugAdapterExecutable(process.execPath, [script]);
  }
}
