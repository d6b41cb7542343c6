/**
 * A small client for the app's HTTP API on fetch. Every failure becomes one of two errors the
 * entry point knows how to print: ApiError (the app answered with an error, usually
 * problem+json) and ApiUnreachable (no answer at all, almost always "the app is not running").
 */
export const DEFAULT_URL = 'http://localhost:7071/api';
export const URL_ENV = 'IMAGE_PIPELINE_URL';
/** A function key, for an app that enforces them (Azure, Kubernetes): sent as x-functions-key. */
export const KEY_ENV = 'IMAGE_PIPELINE_KEY';
const REQUEST_TIMEOUT_MS = 60000;

export interface Problem {
  readonly type?: string;
  readonly title?: string;
  readonly status?: number;
  readonly detail?: string;
  readonly errors?: readonly { readonly field?: string; readonly message: string }[];
}

/**
 * Problems the app raises carry this type prefix; a 404 without it came from the host: no route there (the
 * Functions host answers a request no function route matches with an empty 404).
 */
const APP_PROBLEM = 'urn:image-pipeline:problem:';
const ROUTE_PREFIX = '/api';

/** What to say when the host (not the app) answers 404: the URL most likely lacks the route prefix. */
export function missingRouteHint(baseUrl: string): string {
  const base = new URL(baseUrl);
  if (!base.pathname.replace(/\/+$/, '').endsWith(ROUTE_PREFIX)) {
    const suggested = `${baseUrl.replace(/\/+$/, '')}${ROUTE_PREFIX}`;
    return `no function has this route: is the URL missing ${ROUTE_PREFIX}? try --url ${suggested}`;
  }
  return (
    `no function has this route: is ${baseUrl} the image pipeline's API (--url should end in ${ROUTE_PREFIX}), ` +
    'and is the app as new as this CLI?'
  );
}

/**
 * A problem as lines: its detail, then each field error. A detail that only repeats the field
 * errors (a validation error's summary) is cut to its summary (or the title), and what it says
 * beyond them (how many were left out) comes last.
 */
export function problemLines(
  detail: string,
  errors: readonly { readonly message: string }[],
  title: string,
  suffix = '',
): string[] {
  const listed = errors.filter((e) => e.message !== detail);
  const bullets = listed.map((e) => `  - ${e.message}`);
  const first = listed.length > 0 ? detail.indexOf(listed[0].message) : -1;
  if (first < 0 || !listed.every((e) => detail.includes(e.message))) return [`${detail}${suffix}`, ...bullets];
  const last = listed.at(-1)!.message;
  const summary = detail.slice(0, first).replace(/[\s:;,]+$/, '');
  const rest = detail.slice(detail.lastIndexOf(last) + last.length).replace(/^[\s:;,]+/, '');
  return [`${summary || title}${suffix}`, ...bullets, ...(rest ? [`  (${rest})`] : [])];
}

/** Whether the app itself answered (a problem of its registry), rather than the host or a proxy. */
const isAppProblem = (body: unknown): boolean =>
  typeof body === 'object' && body !== null && String((body as Problem).type).startsWith(APP_PROBLEM);

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** The parsed body (a problem document or any JSON), or the text when it is not JSON. */
    readonly body: unknown,
    /** Added to the message when the answer alone does not say what to do. */
    readonly hint?: string,
    /** Where the key sent came from (see cli/keys.ts), for a 401. */
    readonly keySource?: string,
  ) {
    super(ApiError.describe(status, url, body, hint, keySource));
  }

  get problem(): Problem | undefined {
    return typeof this.body === 'object' && this.body !== null ? this.body : undefined;
  }

  /** The app's own answer (one of its registered problems), not the host's or a proxy's. */
  get fromApp(): boolean {
    return isAppProblem(this.body);
  }

  /** The detail, then every field error as the API words it (see problemLines). */
  lines(): string[] {
    const problem = this.problem;
    const errors = problem?.errors ?? [];
    if (!problem?.detail || this.hint) return [this.message, ...errors.map((e) => `  - ${e.message}`)];
    return problemLines(problem.detail, errors, problem.title ?? 'The request was refused', ` (HTTP ${this.status})`);
  }

  private static describe(status: number, url: string, body: unknown, hint?: string, keySource?: string): string {
    const problem = typeof body === 'object' && body !== null ? (body as Problem) : undefined;
    if (hint) {
      const said = problem?.detail ? ` (${problem.detail})` : body === '' ? ' with an empty body' : '';
      return `${url} answered HTTP ${status}${said}: ${hint}`;
    }
    if (problem?.detail) return `${problem.detail} (HTTP ${status})`;
    if (status === 401 && keySource)
      return `${url} answered HTTP 401: the key from ${keySource} was refused; pass the app's key with --key or set ${KEY_ENV}`;
    if (status === 401)
      return `${url} answered HTTP 401: this route needs a function key; pass --key or set ${KEY_ENV}`;
    const text = typeof body === 'string' && body.trim() ? `: ${body.trim().slice(0, 200)}` : '';
    return `${url} answered HTTP ${status}${text}`;
  }
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export class ApiUnreachable extends Error {
  override name = 'ApiUnreachable';
  constructor(
    readonly url: string,
    reason: NetworkReason,
  ) {
    super(`Cannot reach ${url} (${reason.text}): ${ApiUnreachable.advice(url, reason.code)}`);
  }

  private static advice(url: string, code: string | undefined): string {
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'is the host name in the URL right?';
    if (LOCAL_HOSTS.has(new URL(url).hostname)) return 'is the app running? (npm start)';
    return 'is the app running, and is the URL right?';
  }
}

interface ErrorLike {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly code?: unknown;
  readonly cause?: unknown;
}

interface NetworkReason {
  readonly text: string;
  readonly code?: string;
}

/** Duck-typed, not instanceof: fetch's errors can come from another realm (jest's sandbox, for one). */
const asErrorLike = (value: unknown): ErrorLike | undefined =>
  typeof value === 'object' && value !== null ? value : undefined;
const firstLine = (value: unknown): string | undefined =>
  typeof value === 'string' && value ? value.split('\n')[0] : undefined;

/** The most specific reason fetch gives: `connect ECONNREFUSED 127.0.0.1:7071` rather than `fetch failed`. */
function networkReason(err: unknown): NetworkReason {
  const e = asErrorLike(err);
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError')
    return { text: `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, code: 'ETIMEDOUT' };
  const cause = asErrorLike(e?.cause);
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return { text: firstLine(cause?.message) ?? firstLine(e?.message) ?? String(err), code };
}

export function normalizeBaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`expected an http(s) URL such as ${DEFAULT_URL} but received '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`expected an http(s) URL but received '${value}'`);
  return url.toString().replace(/\/+$/, '');
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly key?: string,
    /** Where the key came from (see cli/keys.ts), named when the app refuses it. */
    readonly keySource?: string,
  ) {}

  url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  /** JSON in, JSON out. The response is trusted to match T: the API is the contract. */
  async json<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const init: RequestInit =
      body === undefined
        ? { method }
        : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
    return this.parsed<T>(await this.send(path, init));
  }

  get<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.json<T>('DELETE', path);
  }

  async put<T>(path: string, data: Buffer, contentType: string): Promise<T> {
    return this.parsed<T>(
      await this.send(path, { method: 'PUT', body: data, headers: { 'content-type': contentType } }),
    );
  }

  /**
   * A result: the route answers 302 to a short-lived storage link, fetched here without the function
   * key (fetch would carry x-functions-key to the storage host on a redirect: it drops only
   * Authorization across origins). The link is a bearer secret: errors show it without its query.
   */
  async download(path: string): Promise<Buffer> {
    const res = await this.send(path, { method: 'GET', redirect: 'manual' });
    const location = res.status >= 300 && res.status < 400 ? res.headers.get('location') : null;
    if (!location) return Buffer.from(await res.arrayBuffer());
    const link = new URL(location, res.url || this.url(path));
    const shown = `${link.origin}${link.pathname}`;
    let stored: Response;
    try {
      stored = await fetch(link, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
      throw new ApiUnreachable(shown, networkReason(err));
    }
    if (!stored.ok) throw new ApiError(stored.status, shown, await stored.text().catch(() => ''));
    return Buffer.from(await stored.arrayBuffer());
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const url = this.url(path);
    let res: Response;
    try {
      const headers = new Headers(init.headers);
      if (this.key) headers.set('x-functions-key', this.key);
      res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (err) {
      throw new ApiUnreachable(url, networkReason(err));
    }
    if (res.ok || (init.redirect === 'manual' && res.status >= 300 && res.status < 400)) return res;
    const text = await res.text().catch(() => '');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (a proxy's HTML page, say): keep the text for the message
    }
    const noRoute = res.status === 404 && !isAppProblem(body);
    throw new ApiError(
      res.status,
      url,
      body,
      noRoute ? missingRouteHint(this.baseUrl) : undefined,
      this.key ? this.keySource : undefined,
    );
  }

  /** A success that is not JSON is not this API (a web server's page, say): said so, not a SyntaxError. */
  private async parsed<T>(res: Response): Promise<T> {
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      const type = res.headers.get('content-type') ?? 'no content type';
      throw new ApiError(res.status, res.url, text, `expected JSON from the image pipeline's API but received ${type}`);
    }
  }
}
