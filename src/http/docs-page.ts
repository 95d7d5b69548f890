/**
 * GET /docs: a self-contained page that lists the API from /openapi.json with
 * plain JS (no external assets: deployments and tests may have no CDN). Text is
 * inserted with textContent only, and the CSP allows exactly this script and style.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}
h1{margin-bottom:.2rem}.op{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}.get{color:#0a6}.post{color:#06c}
.delete{color:#c22}.path{font-family:ui-monospace,monospace}.lock{color:#a60;font-size:.85em;margin-left:.5rem}
details{margin-top:.4rem}pre{background:#f6f6f6;padding:.6rem;overflow:auto;font-size:13px}.muted{color:#666}`;

const SCRIPT = `
(async () => {
  const root = document.getElementById('api');
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
  let doc;
  try { doc = await (await fetch('/openapi.json')).json(); } catch (e) { root.textContent = 'Could not load /openapi.json'; return; }
  document.getElementById('title').textContent = doc.info.title + ' ' + doc.info.version;
  document.getElementById('intro').textContent = doc.info.description || '';
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === 'parameters' || typeof op !== 'object') continue;
      const box = el('div', 'op');
      box.append(el('span', 'm ' + method, method), el('span', 'path', path));
      if (op.security && op.security.length) box.append(el('span', 'lock', 'bearer token'));
      if (op.summary) box.append(el('div', 'muted', op.summary));
      const params = [...(item.parameters || []), ...(op.parameters || [])];
      if (params.length) box.append(el('div', '', 'Parameters: ' + params.map((p) => p.name + ' (' + p.in + (p.required ? ', required' : '') + ')').join(', ')));
      const body = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
      if (body) {
        const d = el('details'); d.append(el('summary', '', 'Request body'));
        let schema = body.schema; const name = schema.$ref && schema.$ref.split('/').pop();
        if (name) schema = doc.components.schemas[name];
        d.append(el('pre', '', JSON.stringify(schema, null, 2))); box.append(d);
      }
      box.append(el('div', 'muted', 'Responses: ' + Object.keys(op.responses || {}).join(', ')));
      root.append(box);
    }
  }
})();`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

export const DOCS_CONTENT_SECURITY_POLICY = `default-src 'none'; connect-src 'self'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}`;

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>nautico-followups API</title><style>${STYLE}</style></head>
<body><h1 id="title">nautico-followups API</h1><p id="intro" class="muted"></p>
<p class="muted">Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<div id="api">Loading…</div><script>${SCRIPT}</script></body></html>
`;
