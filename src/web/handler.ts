/**
 * The web view's request handler, mounted by `viva serve` beside the sync protocol (see docs/web.md and the web
 * section of docs/protocol.md). Read-only: GET and HEAD only (the login form's POST sets a cookie and nothing else).
 * Every page is HTML under /ui/ and the same data as JSON under /api/ (or with `Accept: application/json`), in the
 * shapes the CLI's `--json` prints. Each response carries a Content-Security-Policy that allows no inline script or
 * style, and a Server-Timing header with the server time.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VivaError } from '../errors.js';
import type { Repository } from '../store/repository.js';
import { html, type SafeHtml } from './html.js';
import { page } from './layout.js';
import { routePage, type PageResult } from './routes.js';

/** The Content-Security-Policy of every web response: only this server's own script, style and images. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** The name of the cookie the login page sets (HttpOnly, SameSite=Strict). */
export const TOKEN_COOKIE = 'viva_token';

/** How the server that mounts the web view authenticates (the same token as sync; see serve's ServeHandler). */
export interface WebAuth {
  /** The server was started with a token: every page and API answer needs it. */
  required: boolean;
  /** Whether `token` is the server's token (compared in constant time). */
  check(token: string): boolean;
  /** The server speaks TLS (the cookie is then Secure). */
  tls?: boolean;
}

/** A request handler for requests outside the sync protocol's /v1/ paths: resolves with the status it sent. */
export type WebHandler = (req: http.IncomingMessage, res: http.ServerResponse, auth: WebAuth) => Promise<number>;

/** The static files of the client, built by `npm run build` (esbuild) into dist/web/. */
const STATIC_TYPES: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

/** The package root (where package.json is), from this module's location in src/ or dist/src/. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

const STATIC_DIR = path.join(packageRoot(), 'dist/web');

function securityHeaders(res: http.ServerResponse): void {
  res.setHeader('content-security-policy', CONTENT_SECURITY_POLICY);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
}

function serverTiming(res: http.ServerResponse, start: bigint): void {
  res.setHeader('server-timing', `app;dur=${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)}`);
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, start: bigint, extra: Record<string, string> = {}): number {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  serverTiming(res, start);
  res.writeHead(status, { 'content-type': type, 'content-length': b.length, 'cache-control': 'no-store', ...extra });
  res.end(b);
  return status;
}

/** Whether the client wants JSON: an /api/ path, or an Accept header that prefers application/json to HTML. */
function wantsJson(req: http.IncomingMessage, pathname: string): boolean {
  if (pathname === '/api' || pathname.startsWith('/api/')) return true;
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

function cookies(req: http.IncomingMessage): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      m.set(part.slice(0, i).trim(), decodeURIComponent(part.slice(i + 1).trim()));
    } catch {
      // A malformed cookie (not ours) is ignored.
    }
  }
  return m;
}

function authorized(req: http.IncomingMessage, auth: WebAuth): boolean {
  if (!auth.required) return true;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const candidate = m ? m[1]!.trim() : cookies(req).get(TOKEN_COOKIE);
  return candidate !== undefined && auth.check(candidate);
}

/** A local path to go back to after the login (anything else goes to the namespace page). */
function safeNext(next: string | null): string {
  return next && /^\/(ui|api)(\/|$)/.test(next) && !next.startsWith('//') ? next : '/ui/';
}

function loginPage(next: string, failed: boolean): SafeHtml {
  return page('log in', '', html`<h1>Log in</h1>
<p>This server needs its token (the first line of its --token-file).</p>
${failed ? html`<p class="error">wrong token</p>` : ''}
<form class="login" action="/ui/login" method="post"><input type="hidden" name="next" value="${next}">
<label>token <input type="password" name="token" autocomplete="current-password" required></label> <button>log in</button></form>`);
}

async function formBody(req: http.IncomingMessage, max: number): Promise<URLSearchParams> {
  let text = '';
  for await (const c of req) {
    text += (c as Buffer).toString('utf8');
    if (text.length > max) break;
  }
  return new URLSearchParams(text.slice(0, max));
}

/** The status and message of an error for the web view (404 for what is not there, 400 for a bad request). */
function errorStatus(e: unknown): number {
  if (!(e instanceof VivaError)) return 500;
  switch (e.code) {
    case 'ERR_REVISION_NOT_FOUND': case 'ERR_PATH_NOT_FOUND': case 'ERR_REF_NOT_FOUND': case 'ERR_OBJECT_NOT_FOUND': return 404;
    case 'ERR_USAGE': case 'ERR_AMBIGUOUS_REVISION': case 'ERR_INVALID_REF_NAME': return 400;
    default: return 500;
  }
}

/**
 * The web view of `repo` as a {@link WebHandler} for `serve({ handler })`. Locking: none (reads only; the repository
 * stays open for the server's life). `log` gets one line with the stack of each internal error (default: stderr);
 * the client sees only 'internal error'.
 */
export function webHandler(repo: Repository, log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): WebHandler {
  return async (req, res, auth) => {
    const start = process.hrtime.bigint();
    securityHeaders(res);
    const url = new URL(req.url ?? '/', 'http://x');
    const pathname = url.pathname;
    const json = wantsJson(req, pathname);
    const fail = (status: number, message: string, extra: Record<string, string> = {}) => (json
      ? send(res, status, 'application/json', JSON.stringify({ error: { status, message } }), start, extra)
      : send(res, status, 'text/html; charset=utf-8', page(`${status}`, '', html`<h1>${status}</h1><p class="error">${message}</p>`).value, start, extra));

    if (pathname === '/ui/login' && req.method === 'POST') {
      const form = await formBody(req, 4096);
      const next = safeNext(form.get('next'));
      const token = form.get('token') ?? '';
      if (!auth.required) return send(res, 303, 'text/plain', '', start, { location: next });
      if (!auth.check(token)) return send(res, 401, 'text/html; charset=utf-8', loginPage(next, true).value, start);
      const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${auth.tls ? '; Secure' : ''}`;
      return send(res, 303, 'text/plain', '', start, { location: next, 'set-cookie': cookie });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume();
      return fail(405, `${req.method} is not allowed: the web view is read-only`, { allow: 'GET, HEAD' });
    }
    if (pathname.startsWith('/static/')) {
      const name = pathname.slice('/static/'.length);
      const type = STATIC_TYPES[name];
      if (!type) return fail(404, `no such file: ${pathname}`);
      let body: Buffer;
      try {
        body = fs.readFileSync(path.join(STATIC_DIR, name));
      } catch {
        return fail(500, `the web view's ${name} is not built (npm run build)`);
      }
      return send(res, 200, type, body, start, { 'cache-control': 'no-cache' });
    }
    if (pathname === '/ui/login') return send(res, 200, 'text/html; charset=utf-8', loginPage(safeNext(url.searchParams.get('next')), false).value, start);
    if (!authorized(req, auth)) {
      const message = 'this server needs its token: Authorization: Bearer …, or log in at /ui/login';
      if (json) return fail(401, message, { 'www-authenticate': 'Bearer realm="viva"' });
      return send(res, 401, 'text/html; charset=utf-8', loginPage(safeNext(pathname + url.search), false).value, start, { 'www-authenticate': 'Bearer realm="viva"' });
    }
    let result: PageResult;
    try {
      result = await routePage(repo, pathname, url.searchParams, json);
    } catch (e) {
      const status = errorStatus(e);
      if (status === 500) log(`web: internal error on ${req.method} ${req.url}: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      return fail(status, status === 500 && !(e instanceof VivaError) ? 'internal error' : (e as Error).message);
    }
    switch (result.kind) {
      case 'not-found': return fail(404, `no such page: ${pathname}`);
      case 'redirect': return send(res, 302, 'text/plain', '', start, { location: result.location });
      case 'json': {
        const extra: Record<string, string> = {};
        if (result.paging) {
          if (result.paging.total !== undefined) extra['x-total-count'] = String(result.paging.total);
          const links: string[] = [];
          const at = (p: number) => { const q = new URLSearchParams(url.searchParams); q.set('page', String(p)); return `<${pathname}?${q}>`; };
          if (result.paging.page < result.paging.pages) links.push(`${at(result.paging.page + 1)}; rel="next"`);
          if (result.paging.page > 1) links.push(`${at(result.paging.page - 1)}; rel="prev"`);
          if (links.length) extra.link = links.join(', ');
        }
        return send(res, 200, 'application/json', `${JSON.stringify(result.value, null, 2)}\n`, start, extra);
      }
      case 'html': return send(res, 200, 'text/html; charset=utf-8', result.html.value, start);
      case 'stream': {
        serverTiming(res, start);
        res.writeHead(200, {
          'content-type': 'application/octet-stream', 'content-length': result.size, 'cache-control': 'no-store',
          'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(result.filename)}`,
        });
        if (req.method === 'HEAD') { res.end(); return 200; }
        for await (const piece of result.body) {
          if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
        }
        res.end();
        return 200;
      }
    }
  };
}
