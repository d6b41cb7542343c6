/**
 * The pipeline a command line asks for, checked with the API's own normalizeTaskSpec before
 * anything is sent: one rule, one implementation. A mistake is a bad command line (exit 2).
 */
import { ValidationError } from '../../shared/errors';
import type { Limits } from '../../shared/imaging/limits';
import { normalizeTaskSpec, type TaskSpec, type TaskSpecInput } from '../../shared/imaging/spec';
import { UsageError } from './io';

/**
 * The app's limits are its settings, which this process cannot see: with these none binds, so
 * the check refuses only what every app refuses (unknown filters and parameters, wrong types,
 * fixed ranges) and the app still judges its own limits.
 */
export const UNBOUNDED: Limits = Object.freeze({
  maxInputPixels: Number.MAX_SAFE_INTEGER,
  maxOutputWidth: Number.MAX_SAFE_INTEGER,
  maxOutputHeight: Number.MAX_SAFE_INTEGER,
  maxOutputPixels: Number.MAX_SAFE_INTEGER,
  maxFiltersPerTask: Number.MAX_SAFE_INTEGER,
});

export function checkedSpec(input: TaskSpecInput, limits: Limits, consequence: string): TaskSpec {
  try {
    return normalizeTaskSpec(input, limits);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const lines = err.errors.map((e) => `  - ${e.message}`);
    const more = err.total > err.errors.length ? [`  (and ${err.total - err.errors.length} more)`] : [];
    throw new UsageError([`the pipeline is not valid; ${consequence}:`, ...lines, ...more].join('\n'));
  }
}
