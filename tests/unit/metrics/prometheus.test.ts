/**
 * The Prometheus text (shared/metrics/prometheus.ts) parsed as a scraper would: every line against the text
 * exposition format 0.0.4 grammar (https://prometheus.io/docs/instrumenting/exposition_formats/), one HELP and
 * TYPE per family before its samples, families contiguous, no duplicate series, counters named `_total` and never
 * negative, and histograms with cumulative, monotone `le` buckets ending in `+Inf` equal to `_count`.
 */
import { CAPABILITIES } from '../../../shared/capabilities';
import { record, type LatencyHistogram } from '../../../shared/metrics/latency';
import { toPrometheus } from '../../../shared/metrics/prometheus';
import type { CapabilityMetrics, Snapshot } from '../../../shared/metrics/snapshot';
import { emptyCounters, LATENCY_BUCKETS_MS } from '../../../shared/metrics/worker-stats';
import { checkHistogram, parseExposition } from '../../helpers/prometheus';

function metrics(latencies: number[], overrides: Partial<CapabilityMetrics['totals']> = {}): CapabilityMetrics {
  const latency: LatencyHistogram = {};
  for (const ms of latencies) record(latency, ms);
  return {
    queue: 'tasks-x',
    queue_length: 3,
    poison_length: 0,
    oldest_message_age_s: null,
    workers: { active: 1, busy: 1, utilization: 0.5 },
    tasks: {
      completed: 2,
      failed: 0,
      success_rate: 1,
      throughput_per_min: 12,
      arrivals_per_min: 12,
      latency_ms: { p50: latencies.length ? 240 : null, p95: latencies.length ? 4100 : null, p99: null },
    },
    recommendation: {
      current_workers: 1,
      recommended_workers: 1,
      action: 'MAINTAIN',
      reason: 'keeping 1 worker',
      confidence: 0.5,
      urgency: 'LOW',
      keda_replicas: 1,
      model: { service_per_worker_per_min: 10, required_for_arrivals: 1, required_for_backlog: 0, drain_time_s: 3 },
    },
    totals: {
      ...emptyCounters(),
      completed: latencies.length,
      failed: 2,
      errors: 1,
      busy_ms: 12345,
      latency,
      latency_sum_ms: latencies.reduce((a, b) => a + b, 0),
      ...overrides,
    },
  };
}

const latencies = [12, 95, 240, 260, 999, 1000, 1001, 4100, 70000, 9_000_000];
const snapshot = {
  timestamp: '2026-12-02T07:00:00.000Z',
  window_s: 10,
  host: { cpu_percent: 12.5, memory_percent: 40, memory_used_mb: 800 },
  capabilities: {
    [CAPABILITIES[0].name]: metrics([]),
    [CAPABILITIES[1].name]: metrics(latencies),
  },
} as unknown as Snapshot;

describe('the Prometheus text', () => {
  const text = toPrometheus(snapshot);
  const families = parseExposition(text);

  it('parses line by line as text format 0.0.4, every family with one HELP and one TYPE before its samples', () => {
    expect(families.size).toBeGreaterThan(10);
    for (const [name, family] of families) {
      expect([name, family.help !== undefined && family.help.length > 0, family.type]).toEqual([
        name,
        true,
        expect.stringMatching(/^(counter|gauge|histogram)$/),
      ]);
      expect([name, family.samples.length]).not.toEqual([name, 0]);
    }
  });

  it('names counters `_total`, from the cumulative totals, never negative; window figures are gauges', () => {
    const counters = [...families].filter(([, f]) => f.type === 'counter');
    expect(counters.map(([n]) => n).sort()).toEqual([
      'image_pipeline_task_errors_total',
      'image_pipeline_tasks_completed_total',
      'image_pipeline_tasks_failed_total',
      'image_pipeline_worker_busy_seconds_total',
    ]);
    for (const [, f] of counters) for (const s of f.samples) expect(s.value).toBeGreaterThanOrEqual(0);
    for (const [name, f] of families) if (name.endsWith('_total')) expect([name, f.type]).toEqual([name, 'counter']);
    expect(families.get('image_pipeline_throughput_per_minute')!.type).toBe('gauge');
    const heavy = { capability: CAPABILITIES[1].name };
    expect(families.get('image_pipeline_tasks_completed_total')!.samples).toContainEqual({
      name: 'image_pipeline_tasks_completed_total',
      labels: heavy,
      value: latencies.length,
    });
    expect(families.get('image_pipeline_worker_busy_seconds_total')!.samples).toContainEqual({
      name: 'image_pipeline_worker_busy_seconds_total',
      labels: heavy,
      value: 12.345,
    });
  });

  it('shows latency as a histogram in seconds: cumulative monotone buckets, +Inf = _count = completed, _sum', () => {
    const name = 'image_pipeline_task_duration_seconds';
    const histogram = families.get(name)!;
    expect(histogram.type).toBe('histogram');
    checkHistogram(name, histogram);
    const heavy = histogram.samples.filter((s) => s.labels.capability === CAPABILITIES[1].name);
    const buckets = heavy.filter((s) => s.name === `${name}_bucket`);
    expect(buckets.map((b) => b.labels.le)).toEqual(
      LATENCY_BUCKETS_MS.map((ms) => (Number.isFinite(ms) ? String(ms / 1000) : '+Inf')),
    );
    // exact counts at each bound: the bounds are bounds of the fine buckets
    expect(buckets.map((b) => b.value)).toEqual(
      LATENCY_BUCKETS_MS.map((ms) => latencies.filter((v) => v <= ms).length),
    );
    expect(heavy.find((s) => s.name === `${name}_count`)!.value).toBe(latencies.length);
    expect(heavy.find((s) => s.name === `${name}_sum`)!.value).toBeCloseTo(
      latencies.reduce((a, b) => a + b, 0) / 1000,
      6,
    );
    // no task yet: an all-zero histogram, still well formed
    const light = histogram.samples.filter((s) => s.labels.capability === CAPABILITIES[0].name);
    expect(light.every((s) => s.value === 0)).toBe(true);
  });

  it('states the instant of its figures and the window percentiles as gauges with a quantile label', () => {
    expect(families.get('image_pipeline_snapshot_timestamp_seconds')!.samples[0].value).toBe(
      Date.parse(snapshot.timestamp) / 1000,
    );
    const window = families.get('image_pipeline_task_duration_window_seconds')!;
    expect(window.type).toBe('gauge');
    expect(window.samples.filter((s) => s.labels.capability === CAPABILITIES[1].name)).toEqual([
      expect.objectContaining({ labels: { capability: CAPABILITIES[1].name, quantile: '0.5' }, value: 0.24 }),
      expect.objectContaining({ labels: { capability: CAPABILITIES[1].name, quantile: '0.95' }, value: 4.1 }),
      expect.objectContaining({ labels: { capability: CAPABILITIES[1].name, quantile: '0.99' }, value: NaN }),
    ]);
  });

  it('escapes label values and help text, and the parser refuses what breaks the format', () => {
    const odd = { ...snapshot, capabilities: { 'a"b\\c\nd': metrics([5]) } } as unknown as Snapshot;
    const parsed = parseExposition(toPrometheus(odd));
    expect(parsed.get('image_pipeline_queue_length')!.samples[0].labels.capability).toBe('a"b\\c\nd');
    expect(() => parseExposition('x{a="1"} 1\n')).toThrow(/outside its family/);
    expect(() => parseExposition('# TYPE x gauge\nx{a="1} 1\n')).toThrow(/not a sample line/);
    expect(() => parseExposition('# TYPE x gauge\nx 1\nx 2\n')).toThrow(/duplicate series/);
    expect(() => parseExposition('# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 3\n')).toThrow(/outside its family/);
  });
});
