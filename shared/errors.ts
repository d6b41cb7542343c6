/**
 * One registry of the errors this app raises on purpose. Each code carries its HTTP status and
 * whether retrying can help; anything thrown that is not an AppError is treated as transient.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'The request is not valid', permanent: true },
  not_an_image: { status: 415, title: 'The input is not a supported image', permanent: true },
  refused_format: { status: 415, title: 'The image format is refused', permanent: true },
  corrupt_image: { status: 422, title: 'The image is corrupt or truncated', permanent: true },
  input_too_large: { status: 413, title: 'The image has too many pixels', permanent: true },
  output_too_large: { status: 422, title: 'The result would be too large', permanent: true },
  filter_not_applicable: { status: 422, title: 'A filter cannot be applied to this image', permanent: true },
  image_not_found: { status: 404, title: 'The image does not exist', permanent: true },
  not_found: { status: 404, title: 'Not found', permanent: true },
  not_ready: { status: 409, title: 'The result is not ready', permanent: true },
  body_too_large: { status: 413, title: 'The request body is too large', permanent: true },
  unsupported_media_type: { status: 415, title: 'The content type is not supported', permanent: true },
  invalid_configuration: { status: 500, title: 'The service is misconfigured', permanent: true },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** One problem with one field: what was expected and what was received. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
  readonly expected?: string;
  readonly received?: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly permanent: boolean;
  readonly errors: readonly FieldProblem[];

  constructor(code: ErrorCode, detail: string, options: { errors?: readonly FieldProblem[]; cause?: unknown } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERROR_CODES[code];
    this.name = new.target.name;
    this.code = code;
    this.status = entry.status;
    this.title = entry.title;
    this.permanent = entry.permanent;
    this.errors = Object.freeze([...(options.errors ?? [])]);
  }
}

/** Retrying cannot help: the task is marked failed at once (job_failure). */
export class PermanentError extends AppError {}

/** Input did not match a schema; `errors` lists every problem found, not just the first. */
export class ValidationError extends PermanentError {
  constructor(problems: readonly FieldProblem[], subject = 'request') {
    const detail =
      problems.length === 1
        ? problems[0].message
        : `${problems.length} problems in the ${subject}: ${problems.map((p) => p.message).join('; ')}`;
    super('validation_failed', detail, { errors: problems });
  }
}

/** A setting from the environment is unusable; raised at start-up, never retried. */
export class ConfigError extends AppError {
  constructor(problems: readonly FieldProblem[]) {
    super('invalid_configuration', problems.map((p) => p.message).join('; '), { errors: problems });
  }
}
