/**
 * collectMetrics (timer, METRICS_SCHEDULE, default every 10 s): a snapshot of queues, workers,
 * task figures and scaling recommendations into Table `metrics`.
 * GET /api/metrics (?format=prometheus), GET /api/metrics/history?minutes=N, GET /api/workers
 * (function key): queue names, task figures and worker ids describe the app's traffic, so they are
 * not for strangers; a Prometheus scraper sends the key as the x-functions-key header.
 */
import { app } from '../shared/http/app';
import { appSettings } from '../shared/config';
import { collectAndStore } from '../shared/metrics/collect';
import { metricsRoutes } from '../shared/http/metrics';
import { appStorage, httpStorage } from '../shared/storage/clients';

const routes = metricsRoutes(httpStorage);

app.timer('collectMetrics', {
  schedule: appSettings().metricsSchedule,
  handler: async (_timer, context) => {
    const snapshot = await collectAndStore(appStorage());
    const summary = Object.entries(snapshot.capabilities).map(
      ([name, m]) => `${name}: queue ${m.queue_length}, ${m.workers.active} workers, ${m.recommendation.action}`,
    );
    context.log(`metrics snapshot: ${summary.join('; ')}`);
  },
});
app.http('metrics', { route: 'metrics', methods: ['GET'], authLevel: 'function', handler: routes.metrics });
app.http('metricsHistory', {
  route: 'metrics/history',
  methods: ['GET'],
  authLevel: 'function',
  handler: routes.metricsHistory,
});
app.http('workers', { route: 'workers', methods: ['GET'], authLevel: 'function', handler: routes.workers });
