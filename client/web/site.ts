import { mkdir, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../../infra/db/schema';
import { describeError } from '../../infra/errors';
import { bearerToken, closeServer, listen, tokenMatches } from '../../infra/http';
import type { Logger } from '../../infra/log';
import { NotFound, loadModel, loadOverview, loadRun, loadRuns, loadVersion } from './data';
import { errorPage, modelPage, overviewPage, pageFile, runPage, runsPage, versionPage, type SiteContext } from './pages';

/**
 * The registry web page, served (`mlops ui`, the dev stack) and exported (`mlops ui --export`,
 * the demo's report): the same pages from the same data. Read-only, GET only. When a token is
 * set (MLOPS_ADMIN_TOKEN, the admin API's) every page needs it: a bearer header, or `?token=`
 * once in a browser, which sets an HttpOnly cookie for the links that follow.
 */

export interface SiteSettings {
  temporalUi: string;
  namespace: string;
}

const COOKIE = 'mlops_registry_token';
// No script, no external asset: the browser enforces what the pages promise.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

type Route = { kind: 'index' } | { kind: 'model'; name: string } | { kind: 'version'; name: string; version: number } | { kind: 'runs' } | { kind: 'run'; id: string };

export function routeOf(pathname: string): Route | undefined {
  if (pathname === '/' || pathname === `/${pageFile.index()}`) return { kind: 'index' };
  if (pathname === `/${pageFile.runs()}`) return { kind: 'runs' };
  let m = /^\/run-(\d{1,18})\.html$/.exec(pathname);
  if (m) return { kind: 'run', id: m[1]! };
  m = /^\/model-([a-z0-9][a-z0-9-]{0,62})\.v(\d{1,9})\.html$/.exec(pathname);
  if (m) return { kind: 'version', name: m[1]!, version: Number(m[2]) };
  m = /^\/model-([a-z0-9][a-z0-9-]{0,62})\.html$/.exec(pathname);
  if (m) return { kind: 'model', name: m[1]! };
  return undefined;
}

export async function renderRoute(db: Kysely<Database>, route: Route, ctx: SiteContext): Promise<string> {
  switch (route.kind) {
    case 'index':
      return overviewPage(ctx, await loadOverview(db));
    case 'model':
      return modelPage(ctx, await loadModel(db, route.name));
    case 'version':
      return versionPage(ctx, await loadVersion(db, route.name, route.version));
    case 'runs':
      return runsPage(ctx, await loadRuns(db));
    case 'run':
      return runPage(ctx, await loadRun(db, route.id));
  }
}

export interface RegistryWeb {
  url: string;
  close(): Promise<void>;
}

export async function startRegistryWeb(opts: SiteSettings & { db: Kysely<Database>; port: number; host: string; token?: string; log: Logger }): Promise<RegistryWeb> {
  const ctx = (): SiteContext => ({ temporalUi: opts.temporalUi, namespace: opts.namespace, generatedAt: new Date() });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://registry');
    const html = (status: number, body: string, extra: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, ...extra }).end(body);
    if (req.method !== 'GET' && req.method !== 'HEAD') return html(405, errorPage(ctx(), 'Read-only', 'The registry page only answers GET.'), { allow: 'GET, HEAD' });
    if (url.pathname === '/healthz') return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (opts.token) {
      const given = url.searchParams.get('token') ?? bearerToken(req) ?? cookieValue(req.headers.cookie, COOKIE);
      if (!given || !tokenMatches(given, opts.token)) {
        return html(401, errorPage(ctx(), 'Token needed', 'This registry page is behind the admin token (MLOPS_ADMIN_TOKEN): open it once with ?token=<token>, or send Authorization: Bearer <token>.'), { 'www-authenticate': 'Bearer' });
      }
      if (url.searchParams.has('token')) {
        // Drop the token from the address bar and history; the cookie carries it from here.
        url.searchParams.delete('token');
        return res
          .writeHead(303, { location: `${url.pathname}${url.search}`, 'set-cookie': `${COOKIE}=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/`, ...SECURITY_HEADERS })
          .end();
      }
    }
    const route = routeOf(url.pathname);
    if (!route) return html(404, errorPage(ctx(), 'Not found', `No page at ${url.pathname}.`));
    renderRoute(opts.db, route, ctx())
      .then((body) => html(200, body))
      .catch((err: unknown) => {
        if (err instanceof NotFound) return html(404, errorPage(ctx(), 'Not found', err.message));
        opts.log.warn(`registry page ${url.pathname}: ${describeError(err)}`);
        html(500, errorPage(ctx(), 'The registry could not be read', describeError(err)));
      });
  });
  const url = await listen(server, opts.port, opts.host);
  opts.log.info(`registry page at ${url}/${opts.token ? ' (token: MLOPS_ADMIN_TOKEN)' : ''}`);
  return {
    url,
    close: () => closeServer(server),
  };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return undefined;
}

/**
 * Writes every page (each model, version and run) as static files into `dir`: the same pages
 * the server shows, linked by the same flat names, so the folder opens offline from index.html.
 */
export async function exportRegistrySite(db: Kysely<Database>, dir: string, settings: SiteSettings, opts: { maxRuns?: number } = {}): Promise<string[]> {
  const ctx: SiteContext = { ...settings, generatedAt: new Date(), exported: true };
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const put = async (file: string, html: string) => {
    const target = path.join(dir, file);
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, html);
    await rename(tmp, target);
    written.push(target);
  };
  const overview = await loadOverview(db);
  await put(pageFile.index(), overviewPage(ctx, overview));
  for (const { model } of overview) {
    await put(pageFile.model(model.name), modelPage(ctx, await loadModel(db, model.name)));
    for (const v of model.versions) await put(pageFile.version(model.name, v.version), versionPage(ctx, await loadVersion(db, model.name, v.version)));
  }
  const runs = await loadRuns(db, opts.maxRuns ?? 500);
  await put(pageFile.runs(), runsPage(ctx, runs));
  for (const r of runs) await put(pageFile.run(r.id), runPage(ctx, await loadRun(db, r.id)));
  return written;
}
