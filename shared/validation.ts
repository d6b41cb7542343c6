/**
 * Tiny predicates and one message shape for every validation problem, after sharp's
 * `Expected integer between 1 and 1000 for size but received 0 of type number`.
 */
import { MAX_REPORTED_PROBLEMS, type FieldProblem } from './errors';

export type PlainObject = Record<string, unknown>;

export const isPlainObject = (v: unknown): v is PlainObject => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isInteger = (v: unknown): v is number => Number.isInteger(v);
export const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
export const inRange = (v: number, min: number, max: number): boolean => v >= min && v <= max;

const MAX_SHOWN = 60;

/** How a received value reads in a message: `0 of type number`, `'abc' of type string`, `an array of 2 items`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length} item${v.length === 1 ? '' : 's'}`;
  if (typeof v === 'object') {
    const keys = Object.keys(v);
    const shown = keys.slice(0, 8).map(shownKey).join(', ');
    return `an object with ${keys.length > 8 ? `${keys.length} keys: ${shown}, …` : `keys ${shown || '(none)'}`}`;
  }
  if (typeof v === 'string') {
    const shown = v.length > MAX_SHOWN ? `${v.slice(0, MAX_SHOWN)}…` : v;
    return `'${shown}' of type string`;
  }
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- objects and arrays are described above
  return `${String(v)} of type ${typeof v}`;
}

const MAX_KEY_SHOWN = 40;

/** A user-given key as it appears in a field path or message: long keys are cut, so an answer stays small. */
export function shownKey(key: string): string {
  return key.length > MAX_KEY_SHOWN ? `${key.slice(0, MAX_KEY_SHOWN)}…` : key;
}

export function fieldProblem(field: string, expected: string, received: unknown): FieldProblem {
  const got = describeValue(received);
  return { field, expected, received: got, message: `Expected ${expected} for ${field} but received ${got}` };
}

/** Closest candidate by edit distance, for "did you mean" hints on misspelt names. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > MAX_KEY_SHOWN) return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * One problem per key of `keys` that is not in `known` (`__proto__` included: JSON.parse makes it an
 * own key), each naming the closest known one; past MAX_REPORTED_PROBLEMS, the last problem counts the
 * rest, so a million unknown keys cost one pass and a short answer.
 */
export function unknownKeyProblems(
  keys: readonly string[],
  known: readonly string[],
  fieldOf: (key: string) => string,
  what = 'field',
): FieldProblem[] {
  const unknown = keys.filter((key) => !known.includes(key));
  const expected = `one of ${known.join(', ')}`;
  const described = unknown.length > MAX_REPORTED_PROBLEMS ? MAX_REPORTED_PROBLEMS - 1 : unknown.length;
  const problems: FieldProblem[] = unknown.slice(0, described).map((key) => {
    const hint = closest(key, known);
    const field = fieldOf(shownKey(key));
    return {
      field,
      expected,
      received: `'${shownKey(key)}'`,
      message: `Unknown ${what} ${field}: expected ${expected}${hint ? ` (did you mean '${hint}'?)` : ''}`,
    };
  });
  const more = unknown.length - problems.length;
  if (more > 0) {
    const message = `${more} more unknown ${what}s`;
    problems.push({ field: fieldOf('…'), expected, received: `${unknown.length} unknown ${what}s`, message });
  }
  return problems;
}
