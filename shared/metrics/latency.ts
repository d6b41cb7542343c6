/**
 * Task latencies as a mergeable histogram of fine buckets: every duration is rounded up to two significant
 * digits (HdrHistogram's "significant digits" idea): 0–100 ms to the millisecond, then 110, 120 … 1000,
 * 1100 … 10000 ms and so on, 90 buckets a decade. A bucket is keyed by its upper bound (inclusive), so a
 * worker's histogram is a small sparse object, `{"140": 3, "1200": 7}`, and histograms add (workers merged)
 * and subtract (a window between two cumulative snapshots) bucket by bucket, exactly.
 *
 * A percentile is read by interpolating inside the bucket that holds its rank; the true value lies in the same
 * bucket, so the error is under one bucket's width: exact below 100 ms (whole milliseconds), at most 10 % of the
 * value just above a power of ten and 1 % just below the next. Every coarse bound the Prometheus histogram
 * shows (LATENCY_BUCKETS_MS) is a bucket bound, so its cumulative counts are exact too.
 *
 * Size: durations are clamped to MAX_LATENCY_MS, so a histogram has at most 101 + 5 × 90 = 551 buckets
 * (about 12 KB of JSON even with billion-task counts in every bucket).
 */

/** Bucket upper bound (ms, as a string key) → tasks. */
export type LatencyHistogram = Record<string, number>;

/** Longer durations count in the last bucket (the host's functionTimeout is 10 minutes). */
export const MAX_LATENCY_MS = 10_000_000;

/** Width of the buckets around `ms`: 1 up to 100 ms, then 10 up to 1000, 100 up to 10000, … */
function stepOf(ms: number): number {
  let step = 1;
  while (ms > 100 * step) step *= 10;
  return step;
}

/** The upper bound of the bucket holding `ms` (the duration rounded up to two significant digits). */
export function bucketOf(ms: number): number {
  const x = Math.min(MAX_LATENCY_MS, Math.max(0, Number.isFinite(ms) ? ms : MAX_LATENCY_MS));
  if (x <= 100) return Math.ceil(x);
  const step = stepOf(x);
  return Math.ceil(x / step) * step;
}

/** The exclusive lower bound of the bucket whose upper bound is `upper`. */
export function lowerOf(upper: number): number {
  return upper === 0 ? 0 : upper - stepOf(upper);
}

export function record(histogram: LatencyHistogram, ms: number): void {
  const key = String(bucketOf(ms));
  histogram[key] = (histogram[key] ?? 0) + 1;
}

/** A histogram as read from storage: anything but a plain object of counts (an older format) reads as empty. */
export function asHistogram(value: unknown): LatencyHistogram {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).filter(
      ([k, n]) => /^\d+$/.test(k) && typeof n === 'number' && Number.isFinite(n) && n > 0,
    ),
  ) as LatencyHistogram;
}

/** a + b, bucket by bucket (merging workers). */
export function merge(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  const out: LatencyHistogram = { ...a };
  for (const [k, n] of Object.entries(b)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** a − b, bucket by bucket, never negative (a window between two cumulative histograms). */
export function subtract(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  const out: LatencyHistogram = {};
  for (const [k, n] of Object.entries(a)) {
    const left = n - (b[k] ?? 0);
    if (left > 0) out[k] = left;
  }
  return out;
}

const sorted = (h: LatencyHistogram): [number, number][] =>
  Object.entries(h)
    .map(([k, n]): [number, number] => [Number(k), n])
    .sort((x, y) => x[0] - y[0]);

export const countOf = (h: LatencyHistogram): number => Object.values(h).reduce((a, b) => a + b, 0);

/**
 * The q-quantile (0 < q ≤ 1) in ms, or null for an empty histogram. The rank q·count is found in its bucket and
 * placed linearly inside it; buckets up to 100 ms hold one whole millisecond each and answer it exactly.
 */
export function quantile(h: LatencyHistogram, q: number): number | null {
  const buckets = sorted(h);
  const count = buckets.reduce((a, [, n]) => a + n, 0);
  if (count === 0) return null;
  const rank = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (const [upper, n] of buckets) {
    if (seen + n >= rank) {
      if (upper <= 100) return upper;
      const lower = lowerOf(upper);
      // the k-th of n values in the bucket sits at the middle of the k-th of n equal slices
      return lower + ((upper - lower) * (rank - seen - 0.5)) / n;
    }
    seen += n;
  }
  return buckets[buckets.length - 1][0];
}

/** Tasks at or under each bound (cumulative, as Prometheus `le` buckets); exact when each bound is a bucket bound. */
export function cumulativeCounts(h: LatencyHistogram, bounds: readonly number[]): number[] {
  const buckets = sorted(h);
  return bounds.map((bound) => buckets.reduce((a, [upper, n]) => (upper <= bound ? a + n : a), 0));
}
