/**
 * Application Insights end to end: the running app's metrics timer sends the snapshot's figures as
 * custom metrics and recommendation changes as events to the ingestion endpoint named in
 * APPLICATIONINSIGHTS_CONNECTION_STRING (here a fake one on a local port).
 */
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { HOST_MAIN, getJson, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { FAKE_IKEY, metricsSeen, startFakeIngestion, type FakeIngestion } from '../helpers/fake-ingestion';
import { uniqueNamespace } from '../helpers/storage';

let azurite: RunningAzurite;
let ingestion: FakeIngestion;
let host: HostProcess | undefined;

beforeAll(async () => {
  // each kept as soon as it runs, so that afterAll stops it even when the other failed to start (a destructured
  // Promise.all kept neither, and the ingestion server left listening kept the jest worker from exiting)
  await Promise.all([startAzurite().then((a) => (azurite = a)), startFakeIngestion().then((i) => (ingestion = i))]);
}, 30000);
afterAll(async () => {
  if (host && host.child.exitCode === null) host.child.kill('SIGKILL');
  await Promise.all([azurite?.stop(), ingestion?.stop()]);
});

it('sends every snapshot figure as a custom metric per capability and the recommendation as an event', async () => {
  host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: uniqueNamespace(),
      METRICS_SCHEDULE: '*/2 * * * * *',
      WORKER_HEARTBEAT_SECONDS: '1',
      APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
      NODE_EXTRA_CA_CERTS: ingestion.caFile,
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
      APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
      OTEL_SERVICE_NAME: '',
    },
    /Host listening on/,
  );
  const expected = [
    'queue_length',
    'poison_length',
    'workers_active',
    'workers_busy',
    'recommended_workers',
    'keda_replicas',
  ].map((n) => `imagepipeline.${n}`);
  const seen = await waitFor(
    'metrics and events at the ingestion endpoint',
    async () => {
      const metrics = metricsSeen(ingestion.envelopes);
      const events = ingestion.envelopes.filter((e) => e.data.baseType === 'EventData');
      const complete =
        expected.every((name) => metrics.get(name)?.has('light') && metrics.get(name)?.has('heavy')) &&
        metrics.has('imagepipeline.host.cpu_percent') &&
        events.length >= 2;
      return complete ? { metrics, events } : undefined;
    },
    45000,
    250,
  );
  expect(
    seen.events
      .map((e) => [e.data.baseData.name, e.data.baseData.properties?.capability])
      .slice(0, 2)
      .sort(),
  ).toEqual([
    ['ScalingRecommendationChanged', 'heavy'],
    ['ScalingRecommendationChanged', 'light'],
  ]);
  expect(seen.events[0].data.baseData.properties).toMatchObject({
    action: expect.stringMatching(/^(MAINTAIN|SCALE_UP|SCALE_DOWN)$/),
    recommended_workers: expect.stringMatching(/^\d+$/),
    previous_action: 'none',
  });
  for (const e of ingestion.envelopes) {
    expect(e.iKey).toBe(FAKE_IKEY);
    expect(e.tags?.['ai.cloud.role']).toBe('image-pipeline');
  }
  // the figures sent are the snapshot's
  const latest = await getJson(`${host.url}/metrics`);
  expect(Object.keys(latest.capabilities).sort()).toEqual(['heavy', 'light']);
  expect(host.output()).not.toMatch(/telemetry .* failed/);
}, 90000);
