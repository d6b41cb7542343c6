/** GET /api/metrics (JSON or Prometheus text), /api/metrics/history and /api/workers. */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { appSettings, type Settings } from '../config';
import { AppError, ValidationError } from '../errors';
import { asHistogram, countOf } from '../metrics/latency';
import { collectSnapshot, percentiles, queueFigures, type Snapshot } from '../metrics/snapshot';
import { latestSnapshot, snapshotAt, snapshotsSince } from '../metrics/snapshot-store';
import type { CapabilityCounters } from '../metrics/worker-stats';
import { toPrometheus } from '../metrics/prometheus';
import { listWorkers } from '../metrics/worker-registry';
import type { Storage } from '../storage/clients';
import type { CapabilityName } from '../capabilities';
import { fieldProblem } from '../validation';
import { handled, json } from './respond';

/** The latest snapshot (or a fresh one before the timer's first): every figure in it is of its `timestamp`. */
async function currentSnapshot(storage: Storage): Promise<Snapshot> {
  return (await latestSnapshot(storage)) ?? collectSnapshot(storage);
}

/**
 * The queues read now, apart from the snapshot: the snapshot's queue figures are those its advice was computed
 * from, so they stay side by side with it; these say how far the queues moved since.
 */
async function liveQueues(storage: Storage, capabilities: readonly string[]) {
  const now = new Date();
  const figures = await Promise.all(
    capabilities.map(async (name) => [name, await queueFigures(storage, name as CapabilityName, now)] as const),
  );
  return { read_at: now.toISOString(), capabilities: Object.fromEntries(figures) };
}

/**
 * The cumulative counters a snapshot keeps, as the API shows them: what the Prometheus counters and histogram say,
 * and the percentiles of every task since the workers started (tasks.latency_ms has the window's).
 */
function publicTotals(t: CapabilityCounters) {
  const latency = asHistogram(t.latency);
  return {
    completed: t.completed,
    failed: t.failed,
    errors: t.errors,
    busy_ms: t.busy_ms,
    latency_count: countOf(latency),
    latency_sum_ms: Number(t.latency_sum_ms) || 0,
    latency_ms: percentiles(latency),
  };
}

/** Snapshots with their cumulative totals, without the latency histograms the timer keeps for itself. */
const publicView = (s: Snapshot) => ({
  ...s,
  capabilities: Object.fromEntries(
    Object.entries(s.capabilities).map(([name, m]) => [name, { ...m, totals: publicTotals(m.totals) }]),
  ),
});

/** `?at=`: a timestamp as snapshots carry it (toISOString). */
const ISO_INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/;

export function metricsRoutes(getStorage: () => Storage, settings: Settings = appSettings()) {
  return {
    metrics: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const format = request.query.get('format') ?? 'json';
      if (format !== 'json' && format !== 'prometheus')
        throw new ValidationError([fieldProblem('format', 'json or prometheus', format)]);
      const at = request.query.get('at');
      if (at !== null && (!ISO_INSTANT.test(at) || Number.isNaN(Date.parse(at))))
        throw new ValidationError([
          fieldProblem('at', "a snapshot's timestamp, e.g. 2026-01-01T00:00:00.000Z (the JSON's timestamp)", at),
        ]);
      const storage = getStorage();
      await storage.ensureResources();
      const snapshot = at === null ? await currentSnapshot(storage) : await snapshotAt(storage, at);
      if (!snapshot)
        throw new AppError(
          'not_found',
          `No snapshot was taken at ${at}, or it is older than METRICS_RETENTION_MINUTES (${settings.metricsRetentionMinutes}); GET /api/metrics/history lists the timestamps kept`,
        );
      if (format === 'prometheus')
        return {
          status: 200,
          body: toPrometheus(snapshot),
          headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
        };
      const view = publicView(snapshot);
      // a snapshot asked for by its timestamp is history: the queues read now belong to the latest one only
      if (at !== null) return json(200, view);
      return json(200, { ...view, live: await liveQueues(storage, Object.keys(snapshot.capabilities)) });
    }),

    metricsHistory: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const raw = request.query.get('minutes') ?? '15';
      const minutes = Number(raw);
      const retention = settings.metricsRetentionMinutes;
      if (!Number.isFinite(minutes) || minutes <= 0 || minutes > retention) {
        const expected = `a number of minutes above 0 and at most ${retention} (METRICS_RETENTION_MINUTES)`;
        throw new ValidationError([fieldProblem('minutes', expected, raw)]);
      }
      const storage = getStorage();
      await storage.ensureResources();
      const snapshots = (await snapshotsSince(storage, minutes)).reverse().map(publicView);
      return json(200, { minutes, count: snapshots.length, snapshots });
    }),

    workers: handled(async (): Promise<HttpResponseInit> => {
      const workers = (await listWorkers(getStorage())).map(({ counters: _counters, ...w }) => w);
      return json(200, { count: workers.length, workers });
    }),
  };
}
