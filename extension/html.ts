/**
 * HTML shell of the pvscope panel webviews: a strict Content Security
 * Policy with a per-load nonce, the panel's bundled script
 * (dist/webviews/<panel>.js) and no data: all data arrives by postMessage.
 */

/** Inputs of {@link panelHtml}; all strings are produced by the extension, never by the guest. */
export interface PanelHtmlOptions {
  /** `webview.cspSource`. */
  cspSource: string;
  /** `webview.asWebviewUri(dist/webviews/<panel>.js)` as a string. */
  scriptUri: string;
  /** Random nonce (base64/alphanumeric, at least 16 characters). */
  nonce: string;
  /** Panel title (extension-defined constant). */
  title: string;
}

/**
 * Builds the panel document. The CSP is
 * `default-src 'none'; script-src 'nonce-N'; style-src <cspSource> 'nonce-N';
 * img-src <cspSource>; font-src <cspSource>`: no inline script, no eval, no
 * remote content; the bundled @vscode-elements components style themselves
 * with constructable stylesheets, which need no 'unsafe-inline'.
 *
 * @throws Error when the nonce is not alphanumeric (it would break the policy).
 */
export function panelHtml(o: PanelHtmlOptions): string {
  if (!/^[A-Za-z0-9]{16,}$/.test(o.nonce)) throw new Error('panelHtml: bad nonce');
  const attr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${o.nonce}'`,
    `style-src ${o.cspSource} 'nonce-${o.nonce}'`,
    `img-src ${o.cspSource}`,
    `font-src ${o.cspSource}`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${attr(o.title)}</title>
</head>
<body>
<div id="app"></div>
<script nonce="${o.nonce}" src="${attr(o.scriptUri)}"></script>
</body>
</html>`;
}

/** A random alphanumeric nonce of 32 characters (extension host side only). */
export function makeNonce(random: (n: number) => Uint8Array): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(random(32), (b) => chars[b % chars.length]).join('');
}
