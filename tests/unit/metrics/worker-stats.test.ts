import { isClaimRunning, servedCapabilities, WorkerStats } from '../../../shared/metrics/worker-stats';
import { countOf } from '../../../shared/metrics/latency';
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
    expect(countOf(c.latency)).toBe(1);
    expect(Object.keys(c.latency)).toHaveLength(1);
    expect(c.latency_sum_ms).toBeGreaterThanOrEqual(0);
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

  it('derives worker status from heartbeats: busy, idle, dead after three silent beats, stopped', () => {
    const now = new Date('2026-01-01T00:01:00Z');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:58Z', in_flight: 2 }, now)).toBe('busy');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:58Z', in_flight: 0 }, now)).toBe('idle');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:40Z', in_flight: 1 }, now)).toBe('dead');
    expect(statusOf({ last_heartbeat: '2026-01-01T00:00:59Z', in_flight: 0, stopped: true }, now)).toBe('stopped');
  });
});

describe('isClaimRunning (the claim check asks the registry)', () => {
  it('a claim is live while its worker heartbeats and runs the task, or has not beaten since it claimed', async () => {
    const storage = await env.storage();
    const now = new Date();
    const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
    const row = (id: string, beatAgoMs: number, running: string[], stopped = false) =>
      storage.workers.upsertEntity(
        {
          ...new WorkerStats(id, ['light']).toEntity(new Date(now.getTime() - beatAgoMs), stopped),
          running: JSON.stringify(running),
        },
        'Replace',
      );
    await row('runs-it', 1000, ['t1']);
    await row('let-go', 1000, []);
    await row('silent', 60000, ['t1']);
    await row('stopped', 1000, ['t1'], true);
    const live = (worker_id: string, claimedAgoMs: number) =>
      isClaimRunning(storage, { task_id: 't1', worker_id, started_at: ago(claimedAgoMs) }, now, 15000);
    expect(await live('runs-it', 5000)).toBe(true);
    expect(await live('let-go', 5000)).toBe(false); // beat after claiming, without the task: it failed and let go
    expect(await live('let-go', 500)).toBe(true); // claimed after its last beat: not listed yet
    expect(await live('silent', 5000)).toBe(false);
    expect(await live('stopped', 5000)).toBe(false);
    expect(await live('never-registered', 5000)).toBe(true); // may not have beaten yet
    expect(await live('never-registered', 20000)).toBe(false);
  });

  it('lists the tasks a worker runs in its registry row', async () => {
    const stats = new WorkerStats('w1', ['light']);
    let release!: () => void;
    const run = stats.track('light', () => new Promise((resolve) => (release = () => resolve('succeeded'))), 't9');
    expect(JSON.parse(stats.toEntity(new Date()).running)).toEqual(['t9']);
    release();
    await run;
    expect(JSON.parse(stats.toEntity(new Date()).running)).toEqual([]);
  });
});
