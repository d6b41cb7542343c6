/**
 * Limits that protect workers from hostile or accidental input, configurable by environment.
 * Each default is safe on a 2-core / 4 GiB worker; every bad setting is reported at start-up.
 */
import { ConfigError, type FieldProblem } from '../errors';
import { problem } from '../validation';

export interface Limits {
  /** Width × height of an input image (sharp `limitInputPixels`). */
  readonly maxInputPixels: number;
  readonly maxOutputWidth: number;
  readonly maxOutputHeight: number;
  readonly maxFiltersPerTask: number;
}

interface LimitSetting {
  readonly env: string;
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
  readonly reason: string;
}

export const LIMIT_SETTINGS: { readonly [K in keyof Limits]: LimitSetting } = {
  maxInputPixels: {
    env: 'MAX_INPUT_PIXELS',
    fallback: 100_000_000,
    min: 1,
    max: 0x3fff * 0x3fff * 4,
    reason: '100 MP covers phone and DSLR photos; a decompression bomb is refused before decoding',
  },
  maxOutputWidth: {
    env: 'MAX_OUTPUT_WIDTH',
    fallback: 16383,
    min: 1,
    max: 65535,
    reason: '16383 is the largest side WebP can encode; JPEG stops at 65535',
  },
  maxOutputHeight: {
    env: 'MAX_OUTPUT_HEIGHT',
    fallback: 16383,
    min: 1,
    max: 65535,
    reason: '16383 is the largest side WebP can encode; JPEG stops at 65535',
  },
  maxFiltersPerTask: {
    env: 'MAX_FILTERS_PER_TASK',
    fallback: 20,
    min: 1,
    max: 200,
    reason: 'each filter may add a pipeline stage; 20 is far beyond any useful pipeline',
  },
};

export function loadLimits(env: NodeJS.ProcessEnv = process.env): Limits {
  const problems: FieldProblem[] = [];
  const read = (s: LimitSetting): number => {
    const raw = env[s.env];
    if (raw === undefined || raw.trim() === '') return s.fallback;
    const value = Number(raw.trim().replace(/_/g, ''));
    if (!Number.isInteger(value) || value < s.min || value > s.max) {
      problems.push(problem(s.env, `an integer between ${s.min} and ${s.max}`, raw));
      return s.fallback;
    }
    return value;
  };
  const limits: Limits = Object.freeze({
    maxInputPixels: read(LIMIT_SETTINGS.maxInputPixels),
    maxOutputWidth: read(LIMIT_SETTINGS.maxOutputWidth),
    maxOutputHeight: read(LIMIT_SETTINGS.maxOutputHeight),
    maxFiltersPerTask: read(LIMIT_SETTINGS.maxFiltersPerTask),
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return limits;
}

let processLimits: Limits | undefined;

/** The limits of this process, read from the environment once. */
export function currentLimits(): Limits {
  processLimits ??= loadLimits();
  return processLimits;
}
