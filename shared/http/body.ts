/** Reading request bodies within limits, with errors that say what was expected. */
import type { HttpRequest } from '@azure/functions';
import { AppError, ValidationError } from '../errors';
import { fieldProblem } from '../validation';

export function mediaType(request: HttpRequest): string {
  return (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
}

function tooLarge(bytes: number | string, max: number): AppError {
  return new AppError('body_too_large', `The body is ${bytes} bytes: expected at most ${max} (MAX_BODY_BYTES)`);
}

/** The longest text field (a query parameter or multipart field) read: a pipeline never needs more. */
export const MAX_FIELD_CHARS = 16384;

/** Refuses a body by its declared length before reading any of it. */
export function checkDeclaredLength(request: HttpRequest, max: number): void {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(declared, max);
}

/**
 * The body's bytes, counted as they are read: reading stops at `max` + 1 bytes whatever the
 * declared length (a chunked body has none), so no more than the limit is ever buffered.
 */
export async function readBody(request: HttpRequest, max: number): Promise<Buffer> {
  checkDeclaredLength(request, max);
  if (!request.body) return Buffer.alloc(0);
  const reader = (request.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge(`more than ${max}`, max);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

/**
 * A multipart/form-data body read within `max` bytes (counted, as readBody does) and then parsed,
 * so a chunked upload cannot pass the limit.
 */
export async function readForm(request: HttpRequest, max: number): Promise<FormData> {
  const bytes = await readBody(request, max);
  try {
    return await new Response(bytes, {
      headers: { 'content-type': request.headers.get('content-type') ?? '' },
    }).formData();
  } catch (err) {
    const received = err instanceof Error ? err.message : String(err);
    throw new ValidationError([fieldProblem('body', 'a well-formed multipart/form-data body', received)]);
  }
}

export async function readJson(request: HttpRequest, max: number): Promise<unknown> {
  const body = await readBody(request, max);
  if (body.length === 0) throw new ValidationError([fieldProblem('body', 'a JSON object', undefined)]);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new ValidationError([
      {
        field: 'body',
        expected: 'valid JSON',
        received: body.subarray(0, 40).toString('utf8'),
        message: `The body is not valid JSON: ${detail}`,
      },
    ]);
  }
}

/** A JSON-valued query parameter or form field (filter_params, output). */
export function parseJsonField(value: string | null, field: string): unknown {
  if (value === null || value === '') return undefined;
  checkFieldLength(value, field);
  try {
    return JSON.parse(value);
  } catch {
    throw new ValidationError([fieldProblem(field, 'JSON', value)]);
  }
}

/** `filters` as `a,b,c` or as a JSON array. */
export function parseFiltersField(value: string | null): unknown {
  if (value === null || value.trim() === '') return [];
  checkFieldLength(value, 'filters');
  const text = value.trim();
  return text.startsWith('[')
    ? parseJsonField(text, 'filters')
    : text
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean);
}

function checkFieldLength(value: string, field: string): void {
  if (value.length <= MAX_FIELD_CHARS) return;
  const expected = `at most ${MAX_FIELD_CHARS} characters`;
  const received = `${value.length} characters`;
  const message = `Expected ${expected} for ${field} but received ${received}`;
  throw new ValidationError([{ field, expected, received, message }]);
}
