/**
 * The one escaping helper of the web view: `html` is a tagged template that HTML-escapes every interpolated value
 * unless it is already {@link SafeHtml} (the result of another `html` template). Arrays are joined; `undefined`,
 * `null` and `false` render as nothing. Every page (and the SVG the web layer draws) is built from it, so a file name
 * such as `<script>` can only ever reach the browser as text.
 */

/** Markup that is safe to send: made by {@link html}, which escaped everything interpolated into it. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text escaped for element content and (double- or single-quoted) attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** An interpolated value: SafeHtml passes, arrays are joined, nothing renders as '', anything else is escaped text. */
export type HtmlValue = SafeHtml | string | number | bigint | boolean | null | undefined | HtmlValue[];

function render(v: HtmlValue): string {
  if (v === undefined || v === null || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

/** The escaping tagged template: html`<td>${name}</td>` escapes `name`. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

