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

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly url: string,
    /** The parsed body (a problem document or any JSON), or the text when it is not JSON. */
    readonly body: unknown,
  ) {
    super(ApiError.describe(status, url, body));
  }

  get problem(): Problem | undefined {
    return typeof this.body === 'object' && this.body !== null ? this.body : undefined;
  }

  /** The detail first, then every field error, as the API words them. */
  lines(): string[] {
    const problem = this.problem;
    // One problem: the detail already says it.
    const errors = (problem?.errors ?? []).filter((e) => e.message !== problem?.detail);
    return [this.message, ...errors.map((e) => `  - ${e.message}`)];
  }

  private static describe(status: number, url: string, body: unknown): string {
    const problem = typeof body === 'object' && body !== null ? (body as Problem) : undefined;
    if (problem?.detail) return `${problem.detail} (HTTP ${status})`;
    if (status === 401)
      return `${url} answered HTTP 401: this route needs a function key; pass --key or set ${KEY_ENV}`;
    const text = typeof body === 'string' && body.trim() ? `: ${body.trim().slice(0, 200)}` : '';
    return `${url} answered HTTP ${status}${text}`;
  }
}

export class ApiUnreachable extends Error {
  override name = 'ApiUnreachable';
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`Cannot reach ${url} (${reason}): is the app running? (npm start)`);
  }
}

interface ErrorLike {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
}

/** Duck-typed, not instanceof: fetch's errors can come from another realm (jest's sandbox, for one). */
const asErrorLike = (value: unknown): ErrorLike | undefined =>
  typeof value === 'object' && value !== null ? value : undefined;
const firstLine = (value: unknown): string | undefined =>
  typeof value === 'string' && value ? value.split('\n')[0] : undefined;

/** The most specific reason fetch gives: `connect ECONNREFUSED 127.0.0.1:7071` rather than `fetch failed`. */
function networkReason(err: unknown): string {
  const e = asErrorLike(err);
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return firstLine(asErrorLike(e?.cause)?.message) ?? firstLine(e?.message) ?? String(err);
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
  ) {}

  url(path: string): string {
    return `${this.baseUrl}${path}`;
  }

  /** JSON in, JSON out. The response is trusted to match T: the API is the contract. */
  async json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const init: RequestInit =
      body === undefined
        ? { method }
        : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
    const res = await this.send(path, init);
    return (await res.json()) as T;
  }

  get<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.json<T>('POST', path, body);
  }

  async put<T>(path: string, data: Buffer, contentType: string): Promise<T> {
    const res = await this.send(path, { method: 'PUT', body: data, headers: { 'content-type': contentType } });
    return (await res.json()) as T;
  }

  async download(path: string): Promise<Buffer> {
    const res = await this.send(path, { method: 'GET' });
    return Buffer.from(await res.arrayBuffer());
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
    if (res.ok) return res;
    const text = await res.text().catch(() => '');
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (a proxy's HTML page, say): keep the text for the message
    }
    throw new ApiError(res.status, url, body);
  }
}
