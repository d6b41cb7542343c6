import { percentile } from '../../../shared/metrics/snapshot';
import {
  isWorkerLive,
  servedCapabilities,
  WorkerStats,
  LATENCY_BUCKETS_MS,
} from '../../../shared/metrics/worker-stats';
import { statusOf } from '../../../shared/metrics/worker-registry';
import { useAzurite } from '../../helpers/storage';

const env = useAzurite();

describe('worker counters', () => {
  it('counts completed tasks with their latency, failures and transient errors', async () => {
    const stats = new WorkerStats('w1', ['light']);
    await stats.track('light', async () => 'succeeded');
    await stats.track('light', async () => 'failed');
    await expect(stats.track('light', async () => Promise.reject(new Error('storage busy')))).rejects.toThrow(
      'storage busy',
    );
    const c = stats.countersOf('light');
    expect([c.completed, c.failed, c.errors]).toEqual([1, 1, 1]);
    expect(c.latency.reduce((a, b) => a + b, 0)).toBe(1);
    expect(c.latency[0]).toBe(1);
    expect(stats.inFlight).toBe(0);
  });

  it('counts only transitions that happened: a deferred copy, a task found done or a lost claim is no completion', async () => {
    const stats = new WorkerStats('w1', ['light']);
    for (const outcome of ['deferred', 'already_succeeded', 'lost_claim', 'sent_to_poison'] as const) {
      await stats.track('light', async () => outcome);
    }
    expect(stats.countersOf('light')).toMatchObject({ completed: 0, failed: 0, errors: 0 });
  });

  it('counts tasks in flight while they run', async () => {
    const stats = new WorkerStats('w1', ['heavy']);
    let release!: () => void;
    const running = stats.track('heavy', () => new Promise((resolve) => (release = () => resolve('succeeded'))));
    expect(stats.inFlight).toBe(1);
    release();
    await running;
    expect(stats.inFlight).toBe(0);
  });

  it('serves every capability unless the host runs only some functions (AzureFunctionsJobHost__functions__N)', () => {
    expect(servedCapabilities({})).toEqual(['light', 'heavy']);
    expect(
      servedCapabilities({
        AzureFunctionsJobHost__functions__0: 'processHeavy',
        AzureFunctionsJobHost__functions__1: 'poisonHeavy',
      }),
    ).toEqual(['heavy']);
  });

  it('estimates percentiles as histogram bucket bounds', () => {
    const histogram = LATENCY_BUCKETS_MS.map(() => 0);
    histogram[0] = 50; // ≤100 ms
    histogram[3] = 45; // ≤1000 ms
    histogram[5] = 5; // ≤5000 ms
    expect(percentile(histogram, 0.5)).toBe(100);
    expect(percentile(histogram, 0.95)).toBe(1000);
    expect(percentile(histogram, 0.99)).toBe(5000);
    expect(
      percentile(
        LATENCY_BUCKETS_MS.map(() => 0),
        0.5,
      ),
    ).toBeNull();
  });

  it('derives worker status from heartbeats: busy, idle, dead after three silent beats, stopped', () => {
    const now = new Date('2026-01-01T00:01:00Z');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:58Z', in_flight: 2 }, now)).toBe('busy');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:58Z', in_flight: 0 }, now)).toBe('idle');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:40Z', in_flight: 1 }, now)).toBe('dead');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:59Z', in_flight: 0, stopped: true }, now)).toBe('stopped');
  });
});

describe('isWorkerLive (the claim check asks the registry)', () => {
  it('is true for a worker that heartbeats, false for one silent for three beats, stopped or never registered', async () => {
    const storage = await env.storage();
    const now = new Date();
    const row = (id: string, beatAgoMs: number, stopped = false) =>
      storage.workers.upsertEntity(
        {
          ...new WorkerStats(id, ['light']).toEntity(new Date(now.getTime() - beatAgoMs), stopped),
        },
        'Replace',
      );
    await row('alive', 1000);
    await row('silent', 60000);
    await row('stopped', 1000, true);
    const live = (id: string) => isWorkerLive(storage, id, now);
    expect(await Promise.all(['alive', 'silent', 'stopped', 'unknown'].map(live))).toEqual([true, false, false, false]);
  });
});
