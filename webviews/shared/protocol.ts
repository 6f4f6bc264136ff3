/**
 * Messages between the extension (extension/panels.ts) and the panel
 * webviews (webviews/<panel>/main.ts). Data only; every string in them may
 * be guest-controlled and is rendered as text (textContent), never markup.
 * 64-bit values are "0x..." hex strings, as in the adapter's custom requests
 * (docs/debug-adapter.md).
 */

/** The panels. */
export type PanelKind = 'descriptors' | 'pagetables' | 'evtchn' | 'grants' | 'xenstore';

/** Extension -> webview. */
export type ToWebview =
  | {
      type: 'data';
      /** Response body of the panel's `pvscope/...` request (null when there is no session). */
      data: unknown;
      /** vCPU the data belongs to. */
      vcpu: number;
      running: boolean;
      /** Why there is no data (no session, request failed). */
      error?: string;
    }
  | { type: 'pageTable'; reqId: number; node: unknown; error?: string }
  | { type: 'walk'; result: unknown; error?: string }
  | { type: 'eventFilter'; ports: number[]; error?: string };

/** Webview -> extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'refresh' }
  /** Load one page table: root 'kernel' | 'user' | '0x<mfn>'. */
  | { type: 'pageTable'; reqId: number; root: string }
  | { type: 'walk'; va: string }
  /** Open VS Code's memory view on a memory reference (`m:0x...`, `p:0x...`, `0x...`). */
  | { type: 'openMemory'; memoryReference: string }
  /** Toggle the `event` exception filter condition for one port. */
  | { type: 'eventBreak'; port: number; on: boolean }
  | { type: 'xenstorePath'; path: string };
