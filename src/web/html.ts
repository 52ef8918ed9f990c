/**
 * The one escaping helper of the web view: `html` is a tagged template that HTML-escapes every interpolated value
 * unless it is already {@link SafeHtml} (the result of another `html` template, or of {@link rawHtml} for markup the
 * web layer itself produced). Arrays are joined, `undefined`, `null` and `false` render as nothing. Every page is built
 * from it, so a file name such as `<script>` can only ever reach the browser as text.
 */

/** Markup that is already safe to send (escaped, or produced by the web layer itself). */
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

/** Markup produced by the web layer itself (an SVG it laid out), taken as is: never pass user data here. */
export function rawHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
