/**
 * Argument parsers for commander. Each throws InvalidArgumentError, which commander turns into
 * "error: ... is invalid" plus the usage and, through the entry point, exit code 2.
 */
import { InvalidArgumentError } from 'commander';

const received = (value: string) => `received '${value}'`;

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a number above 0, ${received(value)}`);
  return n;
}

export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, ${received(value)}`);
    return n;
  };
}

/** `a,b,c` → ['a', 'b', 'c']; empty entries are dropped, none at all is an error. */
export function nameList(value: string): string[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new InvalidArgumentError(`expected comma-separated names, ${received(value)}`);
  return names;
}

export type FilterEntry = string | Readonly<Record<string, unknown>>;

/** `resize,blur`, or a JSON array as the API takes it (`[{"name":"blur","radius":2}]`). */
export function filterList(value: string): FilterEntry[] {
  if (!value.trim().startsWith('[')) return nameList(value);
  const parsed = parseJson(value);
  if (!Array.isArray(parsed) || parsed.length === 0)
    throw new InvalidArgumentError(`expected a non-empty JSON array of filters, ${received(value)}`);
  return parsed as FilterEntry[];
}

/** A JSON object, e.g. --params '{"resize": {"width": 800}}'. */
export function jsonObject(value: string): Record<string, unknown> {
  const parsed = parseJson(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError(`expected a JSON object, ${received(value)}`);
  return parsed as Record<string, unknown>;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new InvalidArgumentError(
      `expected JSON (${err instanceof Error ? err.message : String(err)}), ${received(value)}`,
    );
  }
}
