/**
 * The HTTP side of the local host: routes under host.json `routePrefix` with `{param}`
 * templates, methods, query, headers, binary bodies and streamed responses, calling the
 * registered handlers with the library's own HttpRequest and InvocationContext. Function keys
 * are not checked, as with `func start`. Every request is answered: what Kestrel refuses before
 * routing (a bad Host header, `%00` in the path, a body over the host's limit, bytes node's parser
 * cannot read) is a 4xx problem+json, a throw before the response a 500, and a failure after the
 * response started closes the connection. Paths are decoded as Kestrel does (see kestrel.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import type { RegisteredFunction } from './functions-core';
import { allows, grantedLevel, hostKeys, type AuthLevel, type HostKeys } from './keys';
import { decodePath, isHostHeaderValid } from './kestrel';

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

/**
 * The Functions host buffers a request body up to FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (100 MB by
 * default) and answers 413 above it; the bytes are counted as they arrive, so a chunked body with no
 * Content-Length is stopped at the limit too.
 */
export const HOST_MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024;

/**
 * An answer of the host itself, before or around a function: RFC 9457 problem+json with type
 * `about:blank` (the status says it all), so a client can tell it from the app's own problems
 * (`urn:image-pipeline:problem:*`): the CLI, for one, reads a host 404 as "wrong URL".
 */
class HttpFailure extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

const badRequest = (detail: string) => new HttpFailure(400, detail);

async function readRequestBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  const tooLarge = (bytes: string) =>
    new HttpFailure(413, `The body is ${bytes} bytes: the host accepts at most ${max}`);
  if (Number.isFinite(declared) && declared > max) throw tooLarge(String(declared));
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of req) {
      total += (chunk as Buffer).length;
      if (total > max) throw tooLarge(`more than ${max}`);
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof HttpFailure) throw err;
    throw badRequest(`The request body could not be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  return Buffer.concat(chunks, total);
}

const problemBody = (failure: HttpFailure) =>
  JSON.stringify({
    type: 'about:blank',
    title: http.STATUS_CODES[failure.status] ?? 'Error',
    status: failure.status,
    detail: failure.message,
  });

function sendProblem(res: http.ServerResponse, failure: HttpFailure, close = false): void {
  const body = problemBody(failure);
  res.writeHead(failure.status, {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** The request target split into its path (decoded as Kestrel does) and its raw query. */
function requestTarget(req: http.IncomingMessage): { url: string; path: string } {
  const host = req.headers.host ?? '';
  // Kestrel: RequestRejectionReason.MissingHostHeader for HTTP/1.1 (HTTP/1.0 may omit it)
  if (req.headers.host === undefined && req.httpVersion !== '1.0') throw badRequest('The Host header is missing');
  if (!isHostHeaderValid(host)) throw badRequest(`Invalid Host header: '${host.slice(0, 100)}'`);
  let target = req.url ?? '/';
  if (/^https?:\/\//i.test(target)) {
    try {
      const absolute = new URL(target);
      target = `${absolute.pathname}${absolute.search}`;
    } catch {
      throw badRequest('Invalid request target');
    }
  }
  if (!target.startsWith('/')) throw badRequest('Invalid request target: expected a path starting with /');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  let path: string;
  try {
    path = decodePath(rawPath);
  } catch (err) {
    throw badRequest(`Invalid request target: ${err instanceof Error ? err.message : String(err)}`);
  }
  let url: string;
  try {
    url = new URL(`http://${host || 'localhost'}${rawPath}${q < 0 ? '' : target.slice(q)}`).toString();
  } catch {
    throw badRequest(`Invalid Host header: '${host.slice(0, 100)}'`);
  }
  return { url, path };
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

/** What Kestrel answers for a request node's parser refused (it never reaches routing). */
function clientErrorStatus(err: NodeJS.ErrnoException): HttpFailure {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HttpFailure(431, 'The request line or headers are too large');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new HttpFailure(408, 'The request was not received in time');
  return badRequest(`The request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
}

/**
 * The host's own routes, before any function: `admin/host/ping` (GET or POST, anonymous, an empty 200
 * that is never cached: Azure/azure-functions-host src/WebJobs.Script.WebHost/Controllers/HostController.cs
 * Ping) and the homepage at `/` (src/WebJobs.Script.WebHost/Middleware/HomepageMiddleware.cs: an HTML
 * page, or 204 when AzureWebJobsDisableHomepage is true).
 */
function answerHostRoute(req: http.IncomingMessage, res: http.ServerResponse, path: string): boolean {
  const method = (req.method ?? 'GET').toUpperCase();
  if (path.toLowerCase() === '/admin/host/ping' && (method === 'GET' || method === 'POST')) {
    res.writeHead(200, { 'cache-control': 'no-store, no-cache', 'content-length': '0' }).end();
    return true;
  }
  if (path !== '/') return false;
  if (/^true$/i.test(process.env.AzureWebJobsDisableHomepage ?? '')) {
    res.writeHead(204).end();
    return true;
  }
  const page =
    '<!DOCTYPE html><html><head><title>Your Functions app is up and running</title></head>' +
    '<body><h1>Your Functions app is up and running</h1><p>Local Functions host (no Core Tools).</p></body></html>';
  res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) }).end(page);
  return true;
}

/** Drain mode as HostController.cs (azure-functions-host) exposes it; states from Models/DrainModeState.cs. */
export interface HostDrain {
  start(): void;
  status(): {
    state: 'Disabled' | 'InProgress' | 'Completed';
    outstandingInvocations: number;
    outstandingRetries: number;
  };
}

/**
 * POST admin/host/drain (202, starts the drain without waiting) and GET admin/host/drain/status, both of level
 * admin (the master key) as in HostController.cs: when keys are checked, anything else gets an empty 401.
 */
function answerDrainRoute(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  drain: HostDrain | undefined,
  granted: () => AuthLevel | null,
): boolean {
  const route = path.toLowerCase();
  const method = (req.method ?? 'GET').toUpperCase();
  const isStart = route === '/admin/host/drain' && method === 'POST';
  const isStatus = route === '/admin/host/drain/status' && method === 'GET';
  if (!drain || (!isStart && !isStatus)) return false;
  const level = granted();
  if (level !== null && level !== 'admin') {
    res.writeHead(401, { 'content-length': '0' }).end();
    return true;
  }
  if (isStart) {
    drain.start();
    res.writeHead(202, { 'content-length': '0' }).end();
    return true;
  }
  const body = JSON.stringify(drain.status());
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  return true;
}

export async function startHttpServer(opts: {
  port: number;
  host?: string;
  routePrefix: string;
  functions: readonly RegisteredFunction[];
  log: (line: string) => void;
  maxRequestBodyBytes?: number;
  /**
   * Runs a function as the host does (invocation hooks, functionTimeout); without it the handler is
   * called directly.
   */
  invoke?: (fn: RegisteredFunction, inputs: unknown[]) => Promise<unknown>;
  /** The host's drain mode (POST admin/host/drain, GET admin/host/drain/status). */
  drain?: HostDrain;
  /** Keys to check; undefined reads LOCAL_HOST_AUTH and its keys from the environment, null checks none. */
  keys?: HostKeys | null;
}): Promise<RunningHttpServer> {
  let keys = opts.keys;
  if (keys === undefined) {
    const configured = hostKeys();
    keys = configured?.keys ?? null;
    if (configured) {
      opts.log('LOCAL_HOST_AUTH=keys: routes of level function need a key (x-functions-key header or ?code=)');
      for (const name of configured.generated) {
        const value = name === 'master' ? configured.keys.masterKey : configured.keys.functionKey;
        opts.log(`  generated ${name} key: ${value}`);
      }
    }
  }
  const routes = opts.functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .map((f) => compileRoute(f, opts.routePrefix))
    .sort((a, b) => b.literals - a.literals);
  const maxBody = opts.maxRequestBodyBytes ?? HOST_MAX_REQUEST_BODY_BYTES;
  const inFlight = new Set<Promise<void>>();

  const route = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => {
    const matches = routes.map((r) => ({ route: r, match: r.pattern.exec(path) })).filter((m) => m.match);
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    if (matches.length === 0) throw new HttpFailure(404, `No function is registered for ${shown}`);
    const method = (req.method ?? 'GET').toUpperCase();
    const hit = matches.find((m) => m.route.methods.includes(method));
    if (!hit) {
      res.setHeader('allow', [...new Set(matches.flatMap((m) => m.route.methods))].join(', '));
      throw new HttpFailure(405, `${method} is not allowed on ${shown}`);
    }
    const params: Record<string, string> = Object.fromEntries(
      hit.route.params.flatMap((name, i) => {
        const value: string | undefined = hit.match![i + 1];
        return value === undefined ? [] : [[name, value] as const];
      }),
    );
    return { fn: hit.route.fn, method, params };
  };

  const invoke = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const { url, path } = requestTarget(req);
    if (answerHostRoute(req, res, path)) return;
    /** The level the request's key grants, or null when this host checks no keys. */
    const keyLevel = (): AuthLevel | null => {
      if (!keys) return null;
      const header = req.headers['x-functions-key'];
      return grantedLevel(Array.isArray(header) ? header[0] : header, new URL(url).searchParams.get('code'), keys);
    };
    if (answerDrainRoute(req, res, path, opts.drain, keyLevel)) return;
    const { fn, method, params } = route(req, res, path);
    const granted = keyLevel();
    if (granted !== null) {
      if (!allows(fn.trigger.authLevel, granted)) {
        // FunctionInvocationMiddleware: UnauthorizedResult, an empty 401
        res.writeHead(401, { 'content-length': '0' }).end();
        opts.log(`${method} ${path} → 401 (${fn.name} needs a ${fn.trigger.authLevel} key)`);
        return;
      }
    }
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
    );
    const body = await readRequestBody(req, maxBody);
    const request = new HttpRequest({
      method,
      url,
      headers,
      params,
      ...(body.length ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({
      invocationId: randomUUID(),
      functionName: fn.name,
      logHandler: (level, ...args) => opts.log(`[${fn.name}] ${level}: ${args.map(String).join(' ')}`),
    });
    const started = Date.now();
    try {
      await writeResponse(res, await (opts.invoke ? opts.invoke(fn, [request]) : fn.handler(request, context)));
      opts.log(`${method} ${path} → ${res.statusCode} (${fn.name}, ${Date.now() - started} ms)`);
    } catch (err) {
      opts.log(`${method} ${path} → 500 (${fn.name}): ${err instanceof Error ? err.stack : String(err)}`);
      throw new HttpFailure(500, `Function ${fn.name} failed`);
    }
  };

  /** Every request is answered: a refusal as problem+json, a failure after the headers went out by closing. */
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      await invoke(req, res);
    } catch (err) {
      const failure = err instanceof HttpFailure ? err : new HttpFailure(500, 'The host failed to handle the request');
      if (!(err instanceof HttpFailure)) opts.log(`request failed: ${err instanceof Error ? err.stack : String(err)}`);
      if (res.writableEnded) return; // answered already (a framing error in its body)
      if (res.headersSent || res.destroyed) return void res.destroy();
      // a request refused before its body was read closes the connection rather than reading on
      sendProblem(res, failure, !req.complete);
      if (!req.complete) res.once('finish', () => req.socket.destroySoon());
    }
  };

  /** The response being written on a connection, so an error in a pipelined request is answered after it. */
  const responding = new WeakMap<object, http.ServerResponse>();
  // the Host header is checked in requestTarget, so that a missing one is answered as problem+json too
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    responding.set(req.socket, res);
    res.once('close', () => {
      if (responding.get(req.socket) === res) responding.delete(req.socket);
    });
    const done = handle(req, res);
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const failure = clientErrorStatus(err);
    const body = problemBody(failure);
    const answer = () =>
      socket.writable
        ? socket.end(
            `HTTP/1.1 ${failure.status} ${http.STATUS_CODES[failure.status] ?? 'Bad Request'}\r\n` +
              `content-type: application/problem+json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
              `connection: close\r\n\r\n${body}`,
          )
        : socket.destroy();
    const pending = responding.get(socket);
    if (!pending) return answer();
    // an error after a whole request (pipelining) is answered after that request's response;
    // an error in the body of the request being handled is that request's answer
    if (pending.req.complete) return void pending.once('close', answer);
    if (pending.headersSent) return void socket.destroy();
    sendProblem(pending, failure, true);
  });
  server.keepAliveTimeout = 5000;
  // Kestrel's RequestHeadersTimeout (KestrelServerLimits, default 30 s): headers never finished → 408
  server.headersTimeout = 30_000;
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
