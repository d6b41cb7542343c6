/**
 * One registry of the errors this app raises on purpose: each code carries its HTTP status and a
 * title. Whether retrying can help is a separate, single notion: the PermanentError class (like
 * BullMQ's UnrecoverableError). A worker fails a task at once for a PermanentError and lets the
 * host retry anything else.
 */
export const ERROR_CODES = {
  validation_failed: { status: 400, title: 'The request is not valid' },
  not_an_image: { status: 415, title: 'The input is not a supported image' },
  refused_format: { status: 415, title: 'The image format is refused' },
  corrupt_image: { status: 422, title: 'The image is corrupt or truncated' },
  input_too_large: { status: 413, title: 'The image has too many pixels' },
  output_too_large: { status: 422, title: 'The result would be too large' },
  output_too_large_for_format: { status: 422, title: 'The result is too large for its output format' },
  filter_not_applicable: { status: 422, title: 'A filter cannot be applied to this image' },
  image_not_found: { status: 404, title: 'The image does not exist' },
  not_found: { status: 404, title: 'Not found' },
  not_ready: { status: 409, title: 'The result is not ready' },
  result_expired: { status: 410, title: 'The result has expired' },
  image_exists: { status: 409, title: 'An image with this name exists' },
  precondition_failed: { status: 412, title: 'The image changed' },
  body_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'The content type is not supported' },
  bad_request: { status: 400, title: 'The request is malformed' },
  storage_unavailable: { status: 503, title: 'Storage is unavailable' },
  invalid_configuration: { status: 500, title: 'The service is misconfigured' },
  callbacks_not_configured: { status: 501, title: 'Completion callbacks are not configured' },
  job_active: { status: 409, title: 'The job still has tasks queued or processing' },
  dead_letter_not_replayable: { status: 422, title: 'The dead letter cannot run again' },
  dead_letter_task_not_failed: { status: 409, title: "The dead letter's task is not failed" },
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
  readonly errors: readonly FieldProblem[];

  constructor(code: ErrorCode, detail: string, options: { errors?: readonly FieldProblem[]; cause?: unknown } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    const entry = ERROR_CODES[code];
    this.name = new.target.name;
    this.code = code;
    this.status = entry.status;
    this.title = entry.title;
    this.errors = Object.freeze([...(options.errors ?? [])]);
  }
}

/** Retrying cannot help: the task is marked failed at once (job_failure). */
export class PermanentError extends AppError {}

/** At most this many problems are reported in one error; the rest are counted, so an answer stays small. */
export const MAX_REPORTED_PROBLEMS = 20;

/**
 * Input did not match a schema; `errors` lists every problem found (up to MAX_REPORTED_PROBLEMS, then
 * how many were left out), not just the first.
 */
export class ValidationError extends PermanentError {
  /** How many problems were found in all, including those left out of `errors`. */
  readonly total: number;

  constructor(problems: readonly FieldProblem[], subject = 'request') {
    const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
    const omitted = problems.length - shown.length;
    const more = omitted > 0 ? `; and ${omitted} more problem${omitted === 1 ? '' : 's'} not listed` : '';
    const detail =
      problems.length === 1
        ? problems[0].message
        : `${problems.length} problems in the ${subject}: ${shown.map((p) => p.message).join('; ')}${more}`;
    super('validation_failed', detail, { errors: shown });
    this.total = problems.length;
  }
}

/** A service the app depends on (storage) cannot answer now: HTTP 503 with Retry-After, never a bare 500. */
export class UnavailableError extends AppError {
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
    options: { cause?: unknown } = {},
  ) {
    super('storage_unavailable', detail, options);
  }
}

/** A setting from the environment is unusable; raised at start-up, never retried. */
export class ConfigError extends AppError {
  constructor(problems: readonly FieldProblem[]) {
    super('invalid_configuration', problems.map((p) => p.message).join('; '), { errors: problems });
  }
}
