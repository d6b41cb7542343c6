/**
 * GET /api/metrics through real HttpRequests against Azurite: the JSON and the Prometheus text are one snapshot's
 * figures (queue lengths beside the advice are those the advice was computed from; the queues read now are apart,
 * under `live`), the JSON carries the cumulative totals the Prometheus counters and histogram show, and `?at=` reads
 * the snapshot of a given instant.
 */
import { metricsRoutes } from '../../shared/http/metrics';
import { collectAndStore } from '../../shared/metrics/collect';
import { WorkerStats } from '../../shared/metrics/worker-stats';
import { enqueue } from '../../shared/storage/queue';
import { call } from '../helpers/http';
import { parseExposition } from '../helpers/prometheus';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();

const sample = (families: ReturnType<typeof parseExposition>, name: string, labels: Record<string, string>) =>
  families
    .get(name.replace(/_(sum|count)$/, ''))
    ?.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

async function setUp() {
  const storage = await env.storage();
  const stats = new WorkerStats('worker-m', ['light', 'heavy']);
  await storage.workers.upsertEntity(stats.toEntity(new Date()), 'Replace');
  const first = await collectAndStore(storage, new Date(Date.now() - 10000));
  const durations = [30, 60, 90, 400, 800];
  for (const ms of durations)
    await stats.track('heavy', async () => (await new Promise((r) => setTimeout(r, ms)), 'succeeded'));
  await stats.track('heavy', async () => 'failed');
  await storage.workers.upsertEntity(stats.toEntity(new Date()), 'Replace');
  const snapshot = await collectAndStore(storage, new Date());
  return { storage, routes: metricsRoutes(() => storage), stats, first, snapshot, durations };
}

describe('GET /api/metrics', () => {
  it('answers one snapshot: its queue figures beside its advice, the queues read now under live', async () => {
    const { storage, routes, snapshot } = await setUp();
    expect(snapshot.capabilities.heavy.queue_length).toBe(0);
    for (let i = 0; i < 3; i++) await enqueue(storage.queue('heavy'), { n: i });

    const res = await call(routes.metrics, { path: '/api/metrics' });
    expect(res.status).toBe(200);
    const heavy = res.json.capabilities.heavy;
    expect(res.json.timestamp).toBe(snapshot.timestamp);
    // the figures the advice was computed from, not a later reading of the queue
    expect(heavy.queue_length).toBe(0);
    expect(heavy.recommendation.reason).toBe(snapshot.capabilities.heavy.recommendation.reason);
    expect(res.json.live.capabilities.heavy).toMatchObject({ queue_length: 3, poison_length: 0 });
    expect(Date.parse(res.json.live.read_at)).toBeGreaterThanOrEqual(Date.parse(snapshot.timestamp));
  });

  it('carries the cumulative totals the Prometheus counters and histogram show, and real window percentiles', async () => {
    const { routes, stats, snapshot, durations } = await setUp();
    const counters = stats.countersOf('heavy');
    const { json } = await call(routes.metrics, { path: '/api/metrics' });
    const totals = json.capabilities.heavy.totals;
    expect(totals).toEqual({
      completed: 5,
      failed: 1,
      errors: 0,
      busy_ms: counters.busy_ms,
      latency_count: 5,
      latency_sum_ms: counters.latency_sum_ms,
      latency_ms: json.capabilities.heavy.tasks.latency_ms, // the window held every task so far
    });
    expect(totals.latency_sum_ms).toBeGreaterThanOrEqual(durations.reduce((a, b) => a + b, 0));
    // the window's percentiles against the exact ones of the five tasks (their durations as the worker reports them)
    const took = (JSON.parse(stats.toEntity(new Date()).recent_tasks) as { outcome: string; duration_ms: number }[])
      .filter((t) => t.outcome === 'succeeded')
      .map((t) => t.duration_ms)
      .sort((a, b) => a - b);
    const { p50, p95, p99 } = json.capabilities.heavy.tasks.latency_ms;
    for (const [shown, exact] of [
      [p50, took[2]],
      [p95, took[4]],
      [p99, took[4]],
    ])
      expect(Math.abs(shown - exact)).toBeLessThanOrEqual(Math.max(1, exact * 0.1));
    expect(p50).toBeLessThan(p95);

    const text = await call(routes.metrics, { path: '/api/metrics?format=prometheus' });
    expect(text.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parseExposition(text.bytes.toString());
    const heavy = { capability: 'heavy' };
    expect(sample(families, 'image_pipeline_snapshot_timestamp_seconds', {})).toBe(
      Date.parse(snapshot.timestamp) / 1000,
    );
    expect(sample(families, 'image_pipeline_tasks_completed_total', heavy)).toBe(totals.completed);
    expect(sample(families, 'image_pipeline_tasks_failed_total', heavy)).toBe(totals.failed);
    expect(sample(families, 'image_pipeline_task_errors_total', heavy)).toBe(totals.errors);
    expect(sample(families, 'image_pipeline_worker_busy_seconds_total', heavy)).toBe(totals.busy_ms / 1000);
    expect(sample(families, 'image_pipeline_task_duration_seconds_count', heavy)).toBe(totals.latency_count);
    expect(sample(families, 'image_pipeline_task_duration_seconds_sum', heavy)).toBe(totals.latency_sum_ms / 1000);
    expect(sample(families, 'image_pipeline_queue_length', heavy)).toBe(json.capabilities.heavy.queue_length);
  });

  it('?at= answers the snapshot of that instant (JSON or Prometheus), 404 past the retention, 400 for a non-timestamp', async () => {
    const { routes, first, snapshot } = await setUp();
    const at = await call(routes.metrics, { path: `/api/metrics?at=${first.timestamp}` });
    expect(at.status).toBe(200);
    expect(at.json.timestamp).toBe(first.timestamp);
    expect(at.json.live).toBeUndefined();
    expect(at.json.capabilities.heavy.totals.completed).toBe(0);
    const text = await call(routes.metrics, { path: `/api/metrics?format=prometheus&at=${snapshot.timestamp}` });
    expect(sample(parseExposition(text.bytes.toString()), 'image_pipeline_snapshot_timestamp_seconds', {})).toBe(
      Date.parse(snapshot.timestamp) / 1000,
    );

    const missing = await call(routes.metrics, { path: '/api/metrics?at=2020-01-01T00:00:00.000Z' });
    expect([missing.status, missing.json.type]).toEqual([404, 'urn:image-pipeline:problem:not_found']);
    expect(missing.json.detail).toContain('/api/metrics/history');
    const bad = await call(routes.metrics, { path: '/api/metrics?at=yesterday' });
    expect(bad.status).toBe(400);
    expect(bad.json.errors).toEqual([
      expect.objectContaining({ field: 'at', received: expect.stringContaining('yesterday') }),
    ]);
  });

  it('history carries the totals too, without the latency histograms the timer keeps for itself', async () => {
    const { routes } = await setUp();
    const { json } = await call(routes.metricsHistory, { path: '/api/metrics/history?minutes=5' });
    expect(json.count).toBe(2);
    expect(
      json.snapshots.map((s: { capabilities: { heavy: { totals: object } } }) => s.capabilities.heavy.totals),
    ).toEqual([
      expect.objectContaining({ completed: 0, latency_count: 0, latency_sum_ms: 0 }),
      expect.objectContaining({ completed: 5, latency_count: 5 }),
    ]);
    for (const s of json.snapshots) expect(s.capabilities.heavy.totals.latency).toBeUndefined();
  });
});
