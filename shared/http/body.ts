/** Reading request bodies within limits, with errors that say what was expected. */
import type { HttpRequest } from '@azure/functions';
import { AppError, ValidationError } from '../errors';
import { fieldProblem } from '../validation';

export function mediaType(request: HttpRequest): string {
  return (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
}

function tooLarge(bytes: number, max: number): AppError {
  return new AppError('body_too_large', `The body is ${bytes} bytes: expected at most ${max} (MAX_BODY_BYTES)`);
}

/** Refuses a body by its declared length before reading any of it. */
export function checkDeclaredLength(request: HttpRequest, max: number): void {
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(declared, max);
}

export async function readBody(request: HttpRequest, max: number): Promise<Buffer> {
  checkDeclaredLength(request, max);
  const body = Buffer.from(await request.arrayBuffer());
  if (body.length > max) throw tooLarge(body.length, max);
  return body;
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
  try {
    return JSON.parse(value);
  } catch {
    throw new ValidationError([fieldProblem(field, 'JSON', value)]);
  }
}

/** `filters` as `a,b,c` or as a JSON array. */
export function parseFiltersField(value: string | null): unknown {
  if (value === null || value.trim() === '') return [];
  const text = value.trim();
  return text.startsWith('[')
    ? parseJsonField(text, 'filters')
    : text
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean);
}
