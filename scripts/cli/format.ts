/** Tables and numbers as the CLI prints them: plain text, no colour codes, so output pipes and diffs cleanly. */
import Table from 'cli-table3';

export type Cell = string | number | null | undefined;

export function table(head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  // compact: no rule between rows, so a monitor screen fits more; empty colour lists: no ANSI codes.
  const t = new Table({ head: [...head], style: { head: [], border: [], compact: true } });
  for (const row of rows) t.push(row.map((c) => (c === null || c === undefined ? '-' : c)));
  return t.toString();
}

/** Two-column "name  value" lines, aligned, for reports that scripts can grep. */
export function report(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}

export const ms = (value: number | null | undefined): string =>
  value === null || value === undefined ? '-' : `${Math.round(value)} ms`;

export const seconds = (valueMs: number): string => `${(valueMs / 1000).toFixed(1)} s`;

export const percent = (ratio: number | null | undefined, digits = 1): string =>
  ratio === null || ratio === undefined ? '-' : `${(ratio * 100).toFixed(digits)}%`;

export const fixed = (value: number | null | undefined, digits = 1): string =>
  value === null || value === undefined ? '-' : value.toFixed(digits);

/** Nearest-rank percentile (p in 0..1) of unsorted values; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`;
