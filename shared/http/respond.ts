/**
 * One mapping from anything thrown to an HTTP response: AppErrors become RFC 9457
 * `application/problem+json` with their status, title, detail and field errors; storage that cannot
 * answer becomes 503 with Retry-After; anything else is logged and becomes a plain 500 that leaks nothing.
 * What is logged or answered passes through redactSecrets: an SDK's message may quote a URL or a header.
 */
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { AppError, UnavailableError } from '../errors';
import { describeError, redactSecrets } from '../redact';
import { asStorageOutage } from '../storage/outage';

export const PROBLEM_TYPE_PREFIX = 'urn:image-pipeline:problem:';

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { 'content-type': 'application/json; charset=utf-8', ...headers } };
}

export function problemResponse(thrown: unknown, context: InvocationContext, instance?: string): HttpResponseInit {
  const outage = asStorageOutage(thrown);
  if (outage)
    context.warn(`storage unavailable: ${redactSecrets(thrown instanceof Error ? thrown.message : String(thrown))}`);
  const err = outage ?? thrown;
  if (err instanceof AppError) {
    const detail = redactSecrets(err.message);
    context.log(`${err.status} ${err.code}: ${detail}`);
    return {
      status: err.status,
      headers: {
        'content-type': 'application/problem+json; charset=utf-8',
        ...(err instanceof UnavailableError ? { 'retry-after': String(err.retryAfterSeconds) } : {}),
      },
      jsonBody: {
        type: `${PROBLEM_TYPE_PREFIX}${err.code}`,
        title: err.title,
        status: err.status,
        detail,
        ...(instance ? { instance } : {}),
        ...(err.errors.length ? { errors: err.errors } : {}),
      },
    };
  }
  context.error(`unhandled error: ${describeError(err)}`);
  return {
    status: 500,
    headers: { 'content-type': 'application/problem+json; charset=utf-8' },
    jsonBody: {
      type: `${PROBLEM_TYPE_PREFIX}internal`,
      title: 'Internal error',
      status: 500,
      detail: `The request failed unexpectedly; look up invocation ${context.invocationId} in the logs.`,
    },
  };
}

/** Wraps a handler so every failure goes through `problemResponse`. */
export function handled<Req extends { url: string }>(
  handler: (request: Req, context: InvocationContext) => Promise<HttpResponseInit> | HttpResponseInit,
) {
  return async (request: Req, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      return await handler(request, context);
    } catch (err) {
      return problemResponse(err, context, new URL(request.url).pathname);
    }
  };
}
