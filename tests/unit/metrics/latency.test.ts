/**
 * The latency histogram (shared/metrics/latency.ts): percentiles that are real (p50 ≠ p95 on a spread
 * distribution, within one fine bucket of the exact value), histograms that merge and subtract exactly, and a
 * heartbeat row that stays under Table storage's limits even with every bucket full.
 */
import { CAPABILITIES } from '../../../shared/capabilities';
import {
  bucketOf,
  countOf,
  cumulativeCounts,
  lowerOf,
  MAX_LATENCY_MS,
  merge,
  quantile,
  record,
  subtract,
  type LatencyHistogram,
} from '../../../shared/metrics/latency';
import { percentiles } from '../../../shared/metrics/snapshot';
import { LATENCY_BUCKETS_MS, WorkerStats } from '../../../shared/metrics/worker-stats';

/** A deterministic PRNG (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whole-millisecond durations, as Date.now() differences are. */
const DISTRIBUTIONS: Record<string, (r: () => number) => number> = {
  // log-normal around 800 ms: most tasks quick, a long tail
  lognormal: (r) => Math.round(800 * Math.exp(0.9 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()))),
  uniform: (r) => Math.round(20 + r() * 9980),
  // two kinds of image: small ones in ~40 ms, 4K ones in ~3 s
  bimodal: (r) => (r() < 0.7 ? Math.round(30 + r() * 20) : Math.round(2500 + r() * 1000)),
};

/** The exact nearest-rank percentile. */
function exact(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

const histogramOf = (values: readonly number[]): LatencyHistogram => {
  const h: LatencyHistogram = {};
  for (const v of values) record(h, v);
  return h;
};

/** Every bucket's upper bound, in order. */
function allBuckets(): number[] {
  const bounds = [0];
  while (bounds[bounds.length - 1] < MAX_LATENCY_MS) bounds.push(bucketOf(bounds[bounds.length - 1] + 1));
  return bounds;
}

describe('the fine latency buckets', () => {
  it('round a duration up to two significant digits: whole ms to 100, then 90 buckets a decade', () => {
    expect([0, 1, 37, 100, 101, 110, 111, 999, 1000, 1001, 2450, 59999].map(bucketOf)).toEqual([
      0, 1, 37, 100, 110, 110, 120, 1000, 1000, 1100, 2500, 60000,
    ]);
    expect([110, 1000, 1100, 60000].map(lowerOf)).toEqual([100, 990, 1000, 59000]);
    expect(bucketOf(-5)).toBe(0);
    expect(bucketOf(Number.NaN)).toBe(MAX_LATENCY_MS);
    expect(bucketOf(3 * MAX_LATENCY_MS)).toBe(MAX_LATENCY_MS);
    const bounds = allBuckets();
    expect(bounds).toHaveLength(551);
    // each bucket starts where the previous one ends, and is at most 10 % of its values wide
    for (const [i, upper] of bounds.entries()) {
      if (i === 0) continue;
      expect(lowerOf(upper)).toBe(bounds[i - 1]);
      if (upper > 100) expect((upper - lowerOf(upper)) / lowerOf(upper)).toBeLessThanOrEqual(0.1);
    }
  });

  it("put every bound of Prometheus' coarse histogram on a bucket bound, so its counts are exact", () => {
    for (const bound of LATENCY_BUCKETS_MS.filter(Number.isFinite)) expect(bucketOf(bound)).toBe(bound);
    const values = [0, 50, 51, 100, 101, 250, 251, 999, 1000, 60000, 60001, 9_000_000];
    const counts = cumulativeCounts(histogramOf(values), LATENCY_BUCKETS_MS);
    expect(counts).toEqual(LATENCY_BUCKETS_MS.map((bound) => values.filter((v) => v <= bound).length));
  });
});

describe('percentiles from the histogram', () => {
  it.each(Object.keys(DISTRIBUTIONS))(
    '%s: p50 ≠ p95 ≠ p99, each within one bucket (≤ 10 %%, exact below 100 ms) of the exact value',
    (name) => {
      const r = random(17);
      const values = Array.from({ length: 5000 }, () => DISTRIBUTIONS[name](r));
      const h = histogramOf(values);
      const shown = percentiles(h);
      expect(new Set([shown.p50, shown.p95, shown.p99]).size).toBe(3);
      for (const q of [0.5, 0.9, 0.95, 0.99]) {
        const truth = exact(values, q);
        const estimate = quantile(h, q)!;
        const upper = bucketOf(truth);
        // the estimate lies in the bucket of the exact value
        expect(estimate).toBeGreaterThanOrEqual(truth <= 100 ? truth : lowerOf(upper));
        expect(estimate).toBeLessThanOrEqual(upper);
        if (truth <= 100) expect(estimate).toBe(truth);
        else expect(Math.abs(estimate - truth) / truth).toBeLessThanOrEqual(0.1);
      }
    },
  );

  it('are typically much closer than the bound: within 2 % on a log-normal spread of 5000 tasks', () => {
    const r = random(5);
    const values = Array.from({ length: 5000 }, () => DISTRIBUTIONS.lognormal(r));
    const h = histogramOf(values);
    for (const q of [0.5, 0.95, 0.99]) {
      const truth = exact(values, q);
      expect(Math.abs(quantile(h, q)! - truth) / truth).toBeLessThan(0.02);
    }
  });

  it('are null with no task, and one task is every percentile (the middle of its bucket)', () => {
    expect(percentiles({})).toEqual({ p50: null, p95: null, p99: null });
    expect(percentiles(histogramOf([1234]))).toEqual({ p50: 1250, p95: 1250, p99: 1250 });
    expect(percentiles(histogramOf([42]))).toEqual({ p50: 42, p95: 42, p99: 42 });
  });
});

describe('merging and windows', () => {
  it('two workers merged are the histogram of all their tasks; a later total minus an earlier is the window', () => {
    const r = random(3);
    const a = Array.from({ length: 700 }, () => DISTRIBUTIONS.bimodal(r));
    const b = Array.from({ length: 300 }, () => DISTRIBUTIONS.lognormal(r));
    expect(merge(histogramOf(a), histogramOf(b))).toEqual(histogramOf([...a, ...b]));
    const before = histogramOf(a.slice(0, 400));
    const after = histogramOf(a);
    expect(subtract(after, before)).toEqual(histogramOf(a.slice(400)));
    expect(countOf(subtract(before, after))).toBe(0); // never negative (a worker row pruned between snapshots)
  });
});

describe('the heartbeat row', () => {
  it('stays under Table limits (64 KiB per string property, 1 MiB per entity) with every bucket of every capability full', () => {
    const stats = new WorkerStats(
      'w-full',
      CAPABILITIES.map((c) => c.name),
    );
    for (const c of CAPABILITIES) {
      const counters = stats.countersOf(c.name);
      for (const bound of allBuckets()) counters.latency[String(bound)] = 999_999_999;
      Object.assign(counters, { completed: 1e12, failed: 1e12, errors: 1e12, busy_ms: 1e15, latency_sum_ms: 1e15 });
    }
    const entity = stats.toEntity(new Date());
    // a string property is UTF-16: 64 KiB is 32,768 characters
    for (const [key, value] of Object.entries(entity))
      if (typeof value === 'string') expect([key, value.length * 2 <= 64 * 1024]).toEqual([key, true]);
    expect(JSON.stringify(entity).length * 2).toBeLessThan(1024 * 1024);
  });
});
