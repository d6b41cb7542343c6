/**
 * A snapshot in the Prometheus text exposition format (version 0.0.4), one label per capability. Counters are the
 * workers' cumulative totals (`_total`, never window figures), latency is a real histogram (`_bucket` with
 * cumulative `le` buckets up to `+Inf`, `_sum`, `_count`, in seconds), and window figures are gauges. Every value is
 * the snapshot's, of one instant (`image_pipeline_snapshot_timestamp_seconds`).
 */
import { asHistogram, cumulativeCounts, countOf } from './latency';
import type { CapabilityMetrics, Snapshot } from './snapshot';
import { LATENCY_BUCKETS_MS } from './worker-stats';

type Labels = Record<string, string>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter' | 'histogram';
  /** Samples; `suffix` names a histogram's `_bucket`, `_sum` or `_count` series. */
  readonly values: readonly { labels: Labels; value: number | null; suffix?: string }[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

/** A sample value as the text format spells it: NaN for a figure not measured yet, ±Inf. */
function formatValue(value: number | null): string {
  if (value === null || Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

const seconds = (ms: number) => (Number.isFinite(ms) ? ms / 1000 : Number.POSITIVE_INFINITY);

export function toPrometheus(snapshot: Snapshot): string {
  const caps = Object.entries(snapshot.capabilities);
  const perCap = (
    name: string,
    help: string,
    pick: (m: CapabilityMetrics) => number | null,
    type: 'gauge' | 'counter' = 'gauge',
  ): Metric => ({
    name: `image_pipeline_${name}`,
    help,
    type,
    values: caps.map(([capability, m]) => ({ labels: { capability }, value: pick(m) })),
  });
  const actions = ['SCALE_UP', 'SCALE_DOWN', 'MAINTAIN'];
  const quantiles = [
    ['0.5', 'p50'],
    ['0.95', 'p95'],
    ['0.99', 'p99'],
  ] as const;
  const metrics: Metric[] = [
    {
      name: 'image_pipeline_snapshot_timestamp_seconds',
      help: 'When the snapshot these figures come from was taken (Unix time).',
      type: 'gauge',
      values: [{ labels: {}, value: Date.parse(snapshot.timestamp) / 1000 }],
    },
    {
      name: 'image_pipeline_host_cpu_percent',
      help: 'Host CPU load (1-minute load average per core), percent.',
      type: 'gauge',
      values: [{ labels: {}, value: snapshot.host.cpu_percent }],
    },
    {
      name: 'image_pipeline_host_memory_percent',
      help: 'Host memory in use, percent.',
      type: 'gauge',
      values: [{ labels: {}, value: snapshot.host.memory_percent }],
    },
    perCap('queue_length', 'Messages waiting in the capability queue.', (m) => m.queue_length),
    perCap('poison_length', 'Messages in the poison queue.', (m) => m.poison_length),
    perCap('oldest_message_age_seconds', 'Age of the oldest waiting message.', (m) => m.oldest_message_age_s),
    perCap('workers_active', 'Live workers serving the capability.', (m) => m.workers.active),
    perCap('workers_busy', 'Workers with tasks in flight.', (m) => m.workers.busy),
    perCap('worker_utilization_ratio', 'Share of worker slots busy over the window.', (m) => m.workers.utilization),
    perCap('tasks_completed_total', 'Tasks completed since the workers started.', (m) => m.totals.completed, 'counter'),
    perCap('tasks_failed_total', 'Tasks failed since the workers started.', (m) => m.totals.failed, 'counter'),
    perCap(
      'task_errors_total',
      'Deliveries that threw a transient error (the host retries them) since the workers started.',
      (m) => m.totals.errors,
      'counter',
    ),
    perCap(
      'worker_busy_seconds_total',
      'Time workers spent running tasks since they started.',
      (m) => m.totals.busy_ms / 1000,
      'counter',
    ),
    {
      name: 'image_pipeline_task_duration_seconds',
      help: 'Latency of completed tasks since the workers started.',
      type: 'histogram',
      values: caps.flatMap(([capability, m]) => {
        // a snapshot stored before the fine histogram (an array) shows an empty one until the next snapshot
        const histogram = asHistogram(m.totals.latency);
        const counts = cumulativeCounts(histogram, LATENCY_BUCKETS_MS);
        return [
          ...LATENCY_BUCKETS_MS.map((bound, i) => ({
            suffix: '_bucket',
            labels: { capability, le: formatValue(seconds(bound)) },
            value: counts[i],
          })),
          { suffix: '_sum', labels: { capability }, value: (Number(m.totals.latency_sum_ms) || 0) / 1000 },
          { suffix: '_count', labels: { capability }, value: countOf(histogram) },
        ];
      }),
    },
    perCap('throughput_per_minute', 'Tasks completed per minute over the window.', (m) => m.tasks.throughput_per_min),
    {
      name: 'image_pipeline_task_duration_window_seconds',
      help: 'Latency percentiles of the tasks completed in the window (from the merged worker histograms).',
      type: 'gauge',
      values: caps.flatMap(([capability, m]) =>
        quantiles.map(([quantile, key]) => {
          const ms = m.tasks.latency_ms[key];
          return { labels: { capability, quantile }, value: ms === null ? null : ms / 1000 };
        }),
      ),
    },
    perCap('recommended_workers', 'Workers the scaling model recommends.', (m) => m.recommendation.recommended_workers),
    perCap('keda_replicas', "Replicas KEDA's queue-length rule would choose.", (m) => m.recommendation.keda_replicas),
    {
      name: 'image_pipeline_recommendation_action',
      help: 'The recommended action (1 for the current one).',
      type: 'gauge',
      values: caps.flatMap(([capability, m]) =>
        actions.map((action) => ({
          labels: { capability, action },
          value: m.recommendation.action === action ? 1 : 0,
        })),
      ),
    },
  ];
  const lines: string[] = [];
  for (const metric of metrics) {
    lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const { labels, value, suffix = '' } of metric.values) {
      const rendered = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${metric.name}${suffix}${rendered ? `{${rendered}}` : ''} ${formatValue(value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
