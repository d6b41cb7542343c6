/**
 * The HTTP side of the local host: routes under host.json `routePrefix` with `{param}`
 * templates, methods, query, headers, binary bodies and streamed responses, calling the
 * registered handlers with the library's own HttpRequest and InvocationContext. Function keys
 * are not checked, as with `func start`.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import type { RegisteredFunction } from './functions-core';

interface Route {
  readonly fn: RegisteredFunction;
  readonly pattern: RegExp;
  readonly params: readonly string[];
  readonly methods: readonly string[];
  /** Literal segments win over parameters, as in ASP.NET routing. */
  readonly literals: number;
}

export interface RunningHttpServer {
  readonly url: string;
  stop(graceMs?: number): Promise<void>;
}

function compileRoute(fn: RegisteredFunction, prefix: string): Route {
  const template = [prefix, fn.trigger.route ?? fn.name].filter(Boolean).join('/');
  const params: string[] = [];
  let literals = 0;
  const source = template
    .split('/')
    .map((segment) => {
      const param = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\??)\}$/.exec(segment);
      if (!param) {
        literals += 1;
        return `/${segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
      }
      params.push(param[2]);
      const value = param[1] ? '(.+)' : '([^/]+)';
      return param[3] ? `(?:/${value})?` : `/${value}`;
    })
    .join('');
  return {
    fn,
    pattern: new RegExp(`^${source}/?$`, 'i'),
    params,
    methods: (fn.trigger.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
    literals,
  };
}

async function readRequestBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

async function writeResponse(res: http.ServerResponse, result: unknown): Promise<void> {
  const response = result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  res.writeHead(response.status, headers);
  if (!response.body) return void res.end();
  for await (const chunk of Readable.fromWeb(response.body)) res.write(chunk);
  res.end();
}

export async function startHttpServer(opts: {
  port: number;
  host?: string;
  routePrefix: string;
  functions: readonly RegisteredFunction[];
  log: (line: string) => void;
}): Promise<RunningHttpServer> {
  const routes = opts.functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .map((f) => compileRoute(f, opts.routePrefix))
    .sort((a, b) => b.literals - a.literals);
  const inFlight = new Set<Promise<void>>();

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const path = decodeURIComponent(url.pathname);
    const matches = routes.map((route) => ({ route, match: route.pattern.exec(path) })).filter((m) => m.match);
    if (matches.length === 0)
      return send(res, 404, { status: 404, title: 'Not found', detail: `No function is registered for ${path}` });
    const method = (req.method ?? 'GET').toUpperCase();
    const hit = matches.find((m) => m.route.methods.includes(method));
    if (!hit) {
      res.setHeader('allow', [...new Set(matches.flatMap((m) => m.route.methods))].join(', '));
      return send(res, 405, {
        status: 405,
        title: 'Method not allowed',
        detail: `${method} is not allowed on ${path}`,
      });
    }
    const params: Record<string, string> = Object.fromEntries(
      hit.route.params.flatMap((name, i) => {
        const value: string | undefined = hit.match![i + 1];
        return value === undefined ? [] : [[name, value] as const];
      }),
    );
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
    );
    const body = await readRequestBody(req);
    const request = new HttpRequest({
      method,
      url: url.toString(),
      headers,
      params,
      ...(body.length ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({
      invocationId: randomUUID(),
      functionName: hit.route.fn.name,
      logHandler: (level, ...args) => opts.log(`[${hit.route.fn.name}] ${level}: ${args.map(String).join(' ')}`),
    });
    const started = Date.now();
    try {
      await writeResponse(res, await hit.route.fn.handler(request, context));
      opts.log(`${method} ${url.pathname} → ${res.statusCode} (${hit.route.fn.name}, ${Date.now() - started} ms)`);
    } catch (err) {
      opts.log(
        `${method} ${url.pathname} → 500 (${hit.route.fn.name}): ${err instanceof Error ? err.stack : String(err)}`,
      );
      if (!res.headersSent)
        send(res, 500, { status: 500, title: 'Internal error', detail: `Function ${hit.route.fn.name} failed` });
      else res.destroy();
    }
  };

  const server = http.createServer((req, res) => {
    const done = handle(req, res).catch((err: unknown) => opts.log(`request failed: ${String(err)}`));
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/${opts.routePrefix}`,
    stop: async (graceMs = 10000) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await Promise.allSettled([...inFlight]);
      await closed;
      clearTimeout(timer);
    },
  };
}
