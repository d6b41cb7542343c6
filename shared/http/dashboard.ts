/**
 * GET /api/dashboard (the live page) and GET /api/dashboard/assets/{file} (its script, stylesheet
 * and Chart.js, served by the app itself so the page works offline and without a CDN).
 * Only the names on the allow-list are served: a request names an entry, never a path.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { AppError } from '../errors';
import { handled } from './respond';

interface StaticFile {
  readonly file: string;
  readonly contentType: string;
  readonly cacheControl: string;
}

interface LoadedFile {
  readonly body: Buffer;
  readonly etag: string;
}

/** tsc copies no .html/.js/.css into dist/, so the page is read from the source tree: the folder holding host.json. */
export function projectRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'host.json'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

/** chart.js exports only its entry points, so its UMD build is found beside the CommonJS one (dist/). */
const chartDist = () => path.dirname(require.resolve('chart.js'));

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
// File names carry no version, so browsers revalidate (cheap with the ETag) instead of keeping a stale copy.
const REVALIDATE = 'no-cache';
const ONE_HOUR = 'public, max-age=3600';

/** The page may load only its own assets and call only its own API. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function dashboardFiles(root = projectRoot(__dirname)) {
  const pageDir = path.join(root, 'shared', 'http', 'dashboard');
  const page: StaticFile = { file: path.join(pageDir, 'index.html'), contentType: HTML, cacheControl: REVALIDATE };
  const assets = new Map<string, StaticFile>([
    ['dashboard.js', { file: path.join(pageDir, 'dashboard.js'), contentType: JS, cacheControl: REVALIDATE }],
    ['dashboard.css', { file: path.join(pageDir, 'dashboard.css'), contentType: CSS, cacheControl: REVALIDATE }],
    ['chart.umd.js', { file: path.join(chartDist(), 'chart.umd.js'), contentType: JS, cacheControl: ONE_HOUR }],
    // Named by the script's sourceMappingURL: browser developer tools fetch it.
    [
      'chart.umd.js.map',
      {
        file: path.join(chartDist(), 'chart.umd.js.map'),
        contentType: 'application/json; charset=utf-8',
        cacheControl: ONE_HOUR,
      },
    ],
  ]);
  return { page, assets };
}

/** Files are read once per process; the ETag lets a browser skip the body when it has the file. */
function fileCache() {
  const loaded = new Map<string, Promise<LoadedFile>>();
  return (file: string): Promise<LoadedFile> => {
    let entry = loaded.get(file);
    if (!entry) {
      entry = readFile(file).then((body) => ({
        body,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
      }));
      entry.catch(() => loaded.delete(file));
      loaded.set(file, entry);
    }
    return entry;
  };
}

async function serve(
  request: HttpRequest,
  what: StaticFile,
  load: (file: string) => Promise<LoadedFile>,
  extra: Record<string, string> = {},
): Promise<HttpResponseInit> {
  const { body, etag } = await load(what.file);
  const headers = { etag, 'cache-control': what.cacheControl, 'x-content-type-options': 'nosniff', ...extra };
  if (request.headers.get('if-none-match') === etag) return { status: 304, headers };
  return { status: 200, body, headers: { 'content-type': what.contentType, ...headers } };
}

export function dashboardRoutes(files = dashboardFiles()) {
  const load = fileCache();
  return {
    dashboard: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const url = new URL(request.url);
      // The page uses relative URLs (./dashboard/assets/…, ./metrics): they only resolve from the path without a
      // trailing slash.
      if (url.pathname.endsWith('/'))
        return { status: 308, headers: { location: `../${path.posix.basename(url.pathname)}${url.search}` } };
      return serve(request, files.page, load, {
        'content-security-policy': CONTENT_SECURITY_POLICY,
        'referrer-policy': 'no-referrer',
      });
    }),

    dashboardAssets: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const name = request.params.file ?? '';
      const asset = files.assets.get(name);
      if (!asset)
        throw new AppError(
          'not_found',
          `No dashboard asset is named '${name.slice(0, 100)}'; the assets are ${[...files.assets.keys()].join(', ')}`,
        );
      return serve(request, asset, load);
    }),
  };
}
