/**
 * The HTTP side of the local host: routes under host.json `routePrefix` matched as the Functions host matches
 * them (routes.ts: ASP.NET Core templates and inline constraints, function-name order, methods as a route
 * constraint), methods, query, headers, binary bodies and streamed responses, calling the registered handlers
 * with the library's own HttpRequest and InvocationContext. Function keys are checked only with
 * LOCAL_HOST_AUTH=keys, as `func start` checks none. Every request is answered, and what the host answers
 * itself carries no body, as in production: a request no route matches (or whose method no route takes) an
 * empty 404; what Kestrel refuses before routing (a bad Host header, `%00` in the path, bytes node's parser
 * cannot read, a request line over 8 KB, headers over 32 KB) its status with `Content-Length: 0` and
 * `Connection: close`; a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT or a throw in the function an empty 500.
 * A failure after the response started closes the connection. Paths are decoded as Kestrel does (kestrel.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { HttpRequest, HttpResponse, InvocationContext } from '@azure/functions';
import type { RegisteredFunction } from './functions-core';
import { allows, grantedLevel, hostKeys, type AuthLevel, type HostKeys } from './keys';
import { decodePath, isHostHeaderValid } from './kestrel';
import { allowsMethod, byNameIgnoringCase, compileRoute, type CompiledRoute } from './routes';

interface Route {
  readonly fn: RegisteredFunction;
  readonly compiled: CompiledRoute;
  readonly methods: readonly string[] | undefined;
}

export interface RunningHttpServer {
  readonly url: string;
  stop(graceMs?: number): Promise<void>;
}

/**
 * The Functions host sets Kestrel's MaxRequestBodySize to 100 MB (Azure/azure-functions-host
 * src/WebJobs.Script.WebHost/Program.cs, ScriptConstants.DefaultMaxRequestBodySize = 104857600), or to
 * FUNCTIONS_REQUEST_BODY_SIZE_LIMIT when that parses as a long (Middleware/HttpRequestBodySizeMiddleware.cs).
 */
export const HOST_MAX_REQUEST_BODY_BYTES = 104_857_600;

/** FUNCTIONS_REQUEST_BODY_SIZE_LIMIT as HttpRequestBodySizeMiddleware reads it (long.TryParse), else undefined. */
export function requestBodySizeLimit(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const m = /^[\t\n\v\f\r ]*([+-]?\d+)[\t\n\v\f\r ]*$/.exec(env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT ?? '');
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 0 && Number.isSafeInteger(n) ? n : undefined;
}

/**
 * An answer of the host itself, never a function's: the status with an empty body (`Content-Length: 0`).
 * What Kestrel refuses before routing (a bad Host header, `%00`, a malformed request line or header) it answers
 * in HttpProtocol.SetBadRequestState / SetErrorResponseHeaders (dotnet/aspnetcore
 * src/Servers/Kestrel/Core/src/Internal/Http/HttpProtocol.cs): status, `Content-Length: 0`, keep-alive off, so
 * `Connection: close`. `close` says whether the connection ends after it.
 */
class HostAnswer extends Error {
  constructor(
    readonly status: number,
    detail: string,
    readonly close = true,
  ) {
    super(detail);
  }
}

const badRequest = (detail: string) => new HostAnswer(400, detail);

/**
 * A body the client stopped sending (it closed its side first): Kestrel closes the connection without
 * a response (Http1MessageBody.ThrowUnexpectedEndOfRequestContent calls OnInputOrOutputCompleted first).
 */
class ConnectionDropped extends Error {}

/**
 * The body, read whole before the function runs, as the real host does for a worker without HTTP streaming: it
 * copies the body into a byte array (src/WebJobs.Script/Extensions/HttpRequestExtensions.cs GetRequestBodyAsBytesAsync,
 * called from src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs PopulateBody). Kestrel
 * refuses a declared Content-Length over the limit on the first read and counts the bytes of a chunked body as they
 * arrive (Http1ContentLengthMessageBody.OnReadStarting, Http1MessageBody.OnObservedBytesExceedMaxRequestBodySize),
 * so nothing over the limit is ever held. Its BadHttpRequestException (413, keep-alive off) is thrown into the host
 * while it binds the function's `req`; the host's ExceptionMiddleware turns any exception into an empty 500
 * (src/WebJobs.Script.WebHost/Middleware/ExceptionMiddleware.cs; Azure/azure-functions-host#10519), and the
 * handler never runs. A body Kestrel cannot read (broken chunking, cut short) takes the same path.
 */
async function readRequestBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  const tooLarge = (bytes: string) =>
    new HostAnswer(
      500,
      `The body is ${bytes} bytes: the host accepts at most ${max} (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)`,
    );
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
    if (err instanceof HostAnswer) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') throw new ConnectionDropped('The client closed mid-body');
    throw new HostAnswer(
      500,
      `The request body could not be read: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return Buffer.concat(chunks, total);
}

const emptyHead = (answer: HostAnswer) =>
  `HTTP/1.1 ${answer.status} ${http.STATUS_CODES[answer.status] ?? 'Error'}\r\ncontent-length: 0\r\n` +
  `${answer.close ? 'connection: close\r\n' : ''}\r\n`;

function sendEmpty(res: http.ServerResponse, answer: HostAnswer): void {
  res.writeHead(answer.status, { 'content-length': '0', ...(answer.close ? { connection: 'close' } : {}) });
  res.end();
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

/** Kestrel's request line and header limits (KestrelServerLimits: MaxRequestLineSize, MaxRequestHeadersTotalSize). */
const MAX_REQUEST_LINE_BYTES = 8 * 1024;
const MAX_REQUEST_HEADERS_BYTES = 32 * 1024;

/**
 * What Kestrel answers for a request node's parser refused (it never reaches routing): the status of its
 * RequestRejectionReason (src/Servers/Kestrel/Core/src/KestrelBadHttpRequestException.cs), an empty body.
 */
function clientErrorAnswer(err: NodeJS.ErrnoException): HostAnswer {
  if (err.code === 'HPE_HEADER_OVERFLOW') return new HostAnswer(431, 'The request line or headers are too large');
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return new HostAnswer(408, 'The request headers were not received in time');
  if (err.code === 'HPE_INVALID_VERSION') return new HostAnswer(505, 'Unrecognized HTTP version');
  return badRequest(`The request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
}

/** RequestLineTooLong (414) and HeadersExceedMaxTotalSize (431), checked as Kestrel counts them. */
function checkRequestSize(req: http.IncomingMessage): void {
  const line = `${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}\r\n`;
  if (Buffer.byteLength(line, 'latin1') > MAX_REQUEST_LINE_BYTES)
    throw new HostAnswer(414, `The request line is longer than ${MAX_REQUEST_LINE_BYTES} bytes`);
  let headerBytes = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
    headerBytes +=
      Buffer.byteLength(req.rawHeaders[i], 'latin1') + Buffer.byteLength(req.rawHeaders[i + 1], 'latin1') + 4;
  if (headerBytes > MAX_REQUEST_HEADERS_BYTES)
    throw new HostAnswer(431, `The request headers are longer than ${MAX_REQUEST_HEADERS_BYTES} bytes`);
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
  // tried in function-name order, the first match wins (see routes.ts); a template ASP.NET Core refuses, such
  // as an unknown constraint, stops the start as it stops the real host's
  const routes: Route[] = opts.functions
    .filter((f) => f.trigger.type === 'httpTrigger')
    .sort((a, b) => byNameIgnoringCase(a.name, b.name))
    .map((fn) => {
      try {
        const template = [opts.routePrefix, fn.trigger.route ?? fn.name].filter(Boolean).join('/');
        return { fn, compiled: compileRoute(template), methods: fn.trigger.methods };
      } catch (err) {
        throw new Error(`Function ${fn.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  const maxBody = opts.maxRequestBodyBytes ?? requestBodySizeLimit() ?? HOST_MAX_REQUEST_BODY_BYTES;
  const inFlight = new Set<Promise<void>>();

  /** The first route whose template, constraints and methods match, or undefined. */
  const route = (req: http.IncomingMessage, path: string) => {
    const method = (req.method ?? 'GET').toUpperCase();
    for (const r of routes) {
      if (!allowsMethod(r.methods, method)) continue;
      const params = r.compiled.match(path);
      if (params) return { fn: r.fn, method, params };
    }
    return undefined;
  };

  const invoke = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    checkRequestSize(req);
    const { url, path } = requestTarget(req);
    if (answerHostRoute(req, res, path)) return;
    /** The level the request's key grants, or null when this host checks no keys. */
    const keyLevel = (): AuthLevel | null => {
      if (!keys) return null;
      const header = req.headers['x-functions-key'];
      return grantedLevel(Array.isArray(header) ? header[0] : header, new URL(url).searchParams.get('code'), keys);
    };
    if (answerDrainRoute(req, res, path, opts.drain, keyLevel)) return;
    const hit = route(req, path);
    if (!hit) {
      // no route matched: nothing in the pipeline writes (FunctionInvocationMiddleware finds no
      // IFunctionExecutionFeature), so ASP.NET Core's default 404 goes out with an empty body
      res.writeHead(404, { 'content-length': '0' }).end();
      opts.log(`${req.method} ${path.length > 200 ? `${path.slice(0, 200)}…` : path} → 404 (no route)`);
      return;
    }
    const { fn, method, params } = hit;
    const granted = keyLevel();
    if (granted !== null) {
      if (!allows(fn.trigger.authLevel, granted)) {
        // FunctionInvocationMiddleware: UnauthorizedResult, an empty 401
        res.writeHead(401, { 'content-length': '0' }).end();
        opts.log(
          `${method} ${path} → 401 (${fn.name} needs the ${fn.trigger.authLevel === 'admin' ? 'master' : 'function'} key)`,
        );
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
      // the invocation's exception reaches ExceptionMiddleware: an empty 500, the connection kept
      throw new HostAnswer(500, `Function ${fn.name} failed`, false);
    }
  };

  /** Every request is answered: a refusal with its empty host answer; a failure after the headers went out closes. */
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    try {
      await invoke(req, res);
    } catch (err) {
      if (err instanceof ConnectionDropped) return void req.socket?.destroy();
      const answer =
        err instanceof HostAnswer ? err : new HostAnswer(500, 'The host failed to handle the request', false);
      if (err instanceof HostAnswer)
        opts.log(`${req.method} ${req.url?.slice(0, 200)} → ${answer.status}: ${answer.message}`);
      else opts.log(`request failed: ${err instanceof Error ? err.stack : String(err)}`);
      if (res.writableEnded) return; // answered already (a framing error in its body)
      if (res.headersSent || res.destroyed) return void res.destroy();
      // a request answered before its body was read closes the connection rather than reading on
      const closing = answer.close || !req.complete ? new HostAnswer(answer.status, answer.message, true) : answer;
      const socket = req.socket;
      sendEmpty(res, closing);
      // node ends a `Connection: close` response's socket once the request is read; one still sending is cut off
      if (closing.close) res.once('finish', () => socket?.destroySoon());
    }
  };

  /** The response being written on a connection, so an error in a pipelined request is answered after it. */
  const responding = new WeakMap<object, http.ServerResponse>();
  // the Host header is checked in requestTarget, so that a missing one is answered as Kestrel answers it; node
  // parses up to Kestrel's line and header limits together, checkRequestSize tells which one a request broke
  const server = http.createServer(
    { requireHostHeader: false, maxHeaderSize: MAX_REQUEST_LINE_BYTES + MAX_REQUEST_HEADERS_BYTES },
    (req, res) => {
      responding.set(req.socket, res);
      res.once('close', () => {
        if (responding.get(req.socket) === res) responding.delete(req.socket);
      });
      const done = handle(req, res);
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done));
    },
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const failure = clientErrorAnswer(err);
    const answer = () => (socket.writable ? socket.end(emptyHead(failure)) : socket.destroy());
    const pending = responding.get(socket);
    if (!pending) return answer();
    // an error after a whole request (pipelining) is answered after that request's response;
    // an error in the body of the request being handled is that request's answer
    if (pending.req.complete) return void pending.once('close', answer);
    if (pending.headersSent || err.code === 'HPE_INVALID_EOF_STATE') return void socket.destroy();
    // in a body Kestrel reads while the host binds `req`: the exception ends as ExceptionMiddleware's empty 500
    sendEmpty(pending, new HostAnswer(500, `The request body could not be read (${err.code ?? 'parse error'})`));
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
