/**
 * A tiny HTML template: `html` escapes every interpolated value unless it is
 * itself `html` (or `raw`), and joins arrays, so pages are plain functions of their data.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

type Value = Html | string | number | boolean | null | undefined | Value[];

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Trusted markup (our own constants only). */
export const raw = (markup: string) => new Html(markup);

/** JSON inside a <script type="application/json">: `<` escaped so it cannot close the element. */
export const jsonForScript = (value: unknown) => raw(JSON.stringify(value).replace(/</g, '\\u003c'));
