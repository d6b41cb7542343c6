/** Snapshots on Azurite from worker rows and queues: figures over a window, recommendations, Prometheus text. */
import { CAPABILITIES } from '../../../shared/capabilities';
import { collectSnapshot } from '../../../shared/metrics/snapshot';
import { collectAndStore } from '../../../shared/metrics/collect';
import { latestSnapshot, pruneSnapshots, snapshotsSince } from '../../../shared/metrics/snapshot-store';
import { toPrometheus } from '../../../shared/metrics/prometheus';
import { startHeartbeat, WorkerStats } from '../../../shared/metrics/worker-stats';
import { listWorkers } from '../../../shared/metrics/worker-registry';
import { enqueue } from '../../../shared/storage/queue';
import { useAzurite } from '../../helpers/storage';
import { checkHistogram, parseExposition } from '../../helpers/prometheus';
import { bucketOf, MAX_LATENCY_MS } from '../../../shared/metrics/latency';

const env = useAzurite();

describe('metrics snapshots', () => {
  it('reports queues, live workers and task figures over the window, with a recommendation per capability', async () => {
    const storage = await env.storage();
    const stats = new WorkerStats('worker-a', ['light', 'heavy']);
    const heartbeat = startHeartbeat(storage, stats, 60000);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = new Date();
    const first = await collectSnapshot(storage, undefined, t0);
    expect(first.window_s).toBeNull();
    // no task completed yet: the advice assumes the capability's measured capacity (capabilities.ts)
    for (const c of CAPABILITIES)
      expect(first.capabilities[c.name].recommendation.model.service_per_worker_per_min).toBe(
        c.capacity.tasksPerMinPerWorker,
      );
    expect(first.capabilities.heavy).toMatchObject({
      queue: storage.names.queueOf('heavy'),
      queue_length: 0,
      workers: { active: 1, busy: 0 },
    });

    for (let i = 0; i < 12; i++) await enqueue(storage.queue('heavy'), { n: i });
    for (let i = 0; i < 6; i++)
      await stats.track('heavy', async () => (await new Promise((r) => setTimeout(r, 20)), 'succeeded'));
    await stats.track('heavy', async () => 'failed');
    await heartbeat.stop();
    const second = await collectSnapshot(storage, first, new Date(t0.getTime() + 60000));
    const heavy = second.capabilities.heavy;
    expect(second.window_s).toBe(60);
    expect(heavy.queue_length).toBe(12);
    expect(heavy.oldest_message_age_s).toBeGreaterThanOrEqual(0);
    expect(heavy.tasks).toMatchObject({
      completed: 6,
      failed: 1,
      success_rate: 0.857,
      throughput_per_min: 6,
    });
    // the window's percentiles are the six tasks' (as the worker reports their durations), not a bucket bound
    const took = (JSON.parse(stats.toEntity(new Date()).recent_tasks) as { outcome: string; duration_ms: number }[])
      .filter((t) => t.outcome === 'succeeded')
      .map((t) => t.duration_ms)
      .sort((a, b) => a - b);
    const near = (shown: number | null, exact: number) =>
      expect(Math.abs(shown! - exact)).toBeLessThanOrEqual(Math.max(1, exact * 0.1));
    near(heavy.tasks.latency_ms.p50, took[2]);
    near(heavy.tasks.latency_ms.p99, took[5]);
    expect(heavy.totals).toMatchObject({ completed: 6, failed: 1, errors: 0 });
    expect(heavy.totals.latency_sum_ms).toBeGreaterThanOrEqual(120);
    expect(heavy.tasks.arrivals_per_min).toBe(19); // 7 finished + 12 more waiting than before
    expect(heavy.workers.active).toBe(0); // the heartbeat said it stopped
    expect(heavy.recommendation).toMatchObject({ current_workers: 0, action: 'SCALE_UP', urgency: 'HIGH' });
    expect(heavy.recommendation.keda_replicas).toBeGreaterThan(0);
    expect(second.capabilities.light.tasks.completed).toBe(0);
  });

  it('reads a worker row and a stored snapshot from before the fine histogram (latency an array) as no latency', async () => {
    const storage = await env.storage();
    const stats = new WorkerStats('worker-old', ['heavy']);
    const row = stats.toEntity(new Date());
    const old = { completed: 4, failed: 0, errors: 0, busy_ms: 900, latency: [4, 0, 0, 0, 0, 0, 0, 0, 0, 0] };
    await storage.workers.upsertEntity({ ...row, counters: JSON.stringify({ heavy: old }) }, 'Replace');
    const first = await collectSnapshot(storage, undefined, new Date(Date.now() - 10000));
    const legacy = JSON.parse(JSON.stringify(first)) as typeof first;
    (legacy.capabilities.heavy.totals as unknown as { latency: number[] }).latency = old.latency;
    const second = await collectSnapshot(storage, legacy);
    expect(second.capabilities.heavy.totals).toMatchObject({ completed: 4, latency: {}, latency_sum_ms: 0 });
    expect(second.capabilities.heavy.tasks.latency_ms).toEqual({ p50: null, p95: null, p99: null });
    parseExposition(toPrometheus(legacy));
  });

  it('stores snapshots, serves the latest and a window of history, and prunes past the retention', async () => {
    const storage = await env.storage();
    const base = Date.now();
    for (let i = 0; i < 3; i++) await collectAndStore(storage, new Date(base + i * 10000));
    expect((await latestSnapshot(storage))!.timestamp).toBe(new Date(base + 20000).toISOString());
    expect((await snapshotsSince(storage, 1, new Date(base + 20000))).map((s) => s.window_s)).toEqual([10, 10, null]);
    expect(await pruneSnapshots(storage, new Date(base + 20000), 0.25)).toBe(1);
    expect(await snapshotsSince(storage, 60, new Date(base + 20000))).toHaveLength(2);
  });

  it('lists workers with their status and counters', async () => {
    const storage = await env.storage();
    const stats = new WorkerStats('worker-b', ['light']);
    await stats.track('light', async () => 'succeeded');
    const heartbeat = startHeartbeat(storage, stats, 60000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await listWorkers(storage)).toMatchObject([
      { id: 'worker-b', capabilities: ['light'], status: 'idle', processed: 1, failed: 0, in_flight: 0 },
    ]);
    await heartbeat.stop();
    expect((await listWorkers(storage))[0].status).toBe('stopped');
  });

  it('renders Prometheus text that parses, with one label per capability and a histogram per capability', async () => {
    const storage = await env.storage();
    const text = toPrometheus(await collectSnapshot(storage));
    const families = parseExposition(text);
    expect(text).toContain('image_pipeline_queue_length{capability="heavy"} 0');
    expect(families.get('image_pipeline_tasks_completed_total')!.type).toBe('counter');
    checkHistogram('image_pipeline_task_duration_seconds', families.get('image_pipeline_task_duration_seconds')!);
    expect(
      families.get('image_pipeline_recommendation_action')!.samples.filter((s) => s.labels.capability === 'light'),
    ).toHaveLength(3);
  });

  it('keeps a stored snapshot under 64 KiB (its one string property) with every latency bucket of every worker full', async () => {
    const storage = await env.storage();
    const stats = new WorkerStats(
      'worker-full',
      CAPABILITIES.map((c) => c.name),
    );
    for (const c of CAPABILITIES) {
      const counters = stats.countersOf(c.name);
      for (let ms = 0; ms <= MAX_LATENCY_MS; ms = bucketOf(ms + 1)) {
        counters.latency[String(ms)] = 999_999_999;
        if (ms === MAX_LATENCY_MS) break;
      }
    }
    await storage.workers.upsertEntity(stats.toEntity(new Date()), 'Replace');
    const snapshot = await collectAndStore(storage);
    expect(JSON.stringify(snapshot).length * 2).toBeLessThanOrEqual(64 * 1024);
    expect(Object.keys((await latestSnapshot(storage))!.capabilities.heavy.totals.latency)).toHaveLength(551);
  });
});
