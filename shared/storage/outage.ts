/**
 * Which storage failures mean "storage is unavailable right now" rather than a bug: the endpoint
 * refuses or drops connections, a try ran out of time, or the service answers that it is busy,
 * throttling or failing (408, 429, 5xx). On an HTTP route they become 503 + Retry-After; anything
 * else (403 bad key, 404, 409, 412) keeps its own meaning.
 */
import { UnavailableError } from '../errors';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
]);
const BUSY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** What a client is told to wait when storage gave no Retry-After of its own. */
export const RETRY_AFTER_SECONDS = 5;
const MAX_RETRY_AFTER_SECONDS = 60;

interface SdkError {
  readonly name?: unknown;
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly response?: { readonly headers?: { get?(name: string): string | undefined } };
}

/** @azure/identity's failures to get a token (the identity endpoint down or refusing): storage cannot be reached. */
const TOKEN_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError']);

function whatHappened(err: SdkError): string | undefined {
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return 'did not answer in time';
  if (typeof err.name === 'string' && TOKEN_ERRORS.has(err.name))
    return 'cannot be reached: the managed identity got no token';
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return `is unreachable (${err.code})`;
  if (err.name === 'RestError' && typeof err.statusCode === 'number' && BUSY_STATUSES.has(err.statusCode)) {
    const code = typeof err.code === 'string' && err.code ? err.code : err.response?.headers?.get?.('x-ms-error-code');
    return `answered ${err.statusCode}${code ? ` ${code}` : ''}`;
  }
  return undefined;
}

function retryAfterOf(err: SdkError): number {
  const header = Number(err.response?.headers?.get?.('retry-after'));
  return Number.isFinite(header) && header >= 1
    ? Math.min(Math.ceil(header), MAX_RETRY_AFTER_SECONDS)
    : RETRY_AFTER_SECONDS;
}

/** The failure as an UnavailableError when it says storage cannot answer now, else undefined. */
export function asStorageOutage(err: unknown): UnavailableError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const happened = whatHappened(err);
  if (!happened) return undefined;
  const seconds = retryAfterOf(err);
  return new UnavailableError(`Storage ${happened}; try again in ${seconds} s`, seconds, { cause: err });
}

/**
 * Runs an idempotent storage operation again while storage is unavailable, after each of `delaysMs`;
 * any other failure, or an outage that outlasts the delays, is thrown.
 */
export async function retryOutages<T>(
  operation: () => Promise<T>,
  delaysMs: readonly number[] = [500, 1000, 2000, 4000],
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (err) {
      if (attempt >= delaysMs.length || !asStorageOutage(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, delaysMs[attempt]));
    }
  }
}
