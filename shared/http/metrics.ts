/** GET /api/metrics (JSON or Prometheus text), /api/metrics/history and /api/workers. */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { appSettings, type Settings } from '../config';
import { ValidationError } from '../errors';
import { collectSnapshot, queueFigures, type Snapshot } from '../metrics/snapshot';
import { latestSnapshot, snapshotsSince } from '../metrics/snapshot-store';
import { toPrometheus } from '../metrics/prometheus';
import { listWorkers } from '../metrics/worker-registry';
import type { Storage } from '../storage/clients';
import type { CapabilityName } from '../capabilities';
import { fieldProblem } from '../validation';
import { handled, json } from './respond';

/** The latest snapshot with queue figures read now (or a fresh snapshot before the timer's first). */
async function currentSnapshot(storage: Storage): Promise<Snapshot> {
  const latest = await latestSnapshot(storage);
  if (!latest) return collectSnapshot(storage);
  const now = new Date();
  const capabilities = Object.fromEntries(
    await Promise.all(
      Object.entries(latest.capabilities).map(async ([name, m]) => [
        name,
        { ...m, ...(await queueFigures(storage, name as CapabilityName, now)) },
      ]),
    ),
  ) as Snapshot['capabilities'];
  return { ...latest, capabilities };
}

/** Snapshots without the cumulative totals the timer keeps for itself. */
const publicView = (s: Snapshot) => ({
  ...s,
  capabilities: Object.fromEntries(
    Object.entries(s.capabilities).map(([name, m]) => [name, { ...m, totals: undefined }]),
  ),
});

export function metricsRoutes(getStorage: () => Storage, settings: Settings = appSettings()) {
  return {
    metrics: handled(async (request: HttpRequest): Promise<HttpResponseInit> => {
      const storage = getStorage();
      await storage.ensureResources();
      const snapshot = await currentSnapshot(storage);
      const format = request.query.get('format') ?? 'json';
      if (format === 'prometheus')
        return {
          status: 200,
          body: toPrometheus(snapshot),
          headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' },
        };
      if (format !== 'json') throw new ValidationError([fieldProblem('format', 'json or prometheus', format)]);
      return json(200, publicView(snapshot));
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
