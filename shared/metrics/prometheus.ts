/** A snapshot in the Prometheus text exposition format (version 0.0.4), one label per capability. */
import type { Snapshot } from './snapshot';

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly values: readonly { labels: Record<string, string>; value: number | null }[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export function toPrometheus(snapshot: Snapshot): string {
  const caps = Object.entries(snapshot.capabilities);
  const perCap = (
    name: string,
    help: string,
    pick: (m: (typeof caps)[number][1]) => number | null,
    type: 'gauge' | 'counter' = 'gauge',
  ): Metric => ({
    name: `image_pipeline_${name}`,
    help,
    type,
    values: caps.map(([capability, m]) => ({ labels: { capability }, value: pick(m) })),
  });
  const actions = ['SCALE_UP', 'SCALE_DOWN', 'MAINTAIN'];
  const metrics: Metric[] = [
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
    perCap('throughput_per_minute', 'Tasks completed per minute over the window.', (m) => m.tasks.throughput_per_min),
    perCap(
      'latency_p95_milliseconds',
      'p95 task latency over the window (histogram bucket bound).',
      (m) => m.tasks.latency_ms.p95,
    ),
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
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`);
    for (const { labels, value } of metric.values) {
      const rendered = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${metric.name}${rendered ? `{${rendered}}` : ''} ${value === null ? 'NaN' : value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
