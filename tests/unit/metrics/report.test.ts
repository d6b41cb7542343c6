/** What the metrics timer reports to Application Insights; without a connection string, nothing (and no throw). */
import { collectSnapshot } from '../../../shared/metrics/snapshot';
import { reportSnapshot } from '../../../shared/metrics/report';
import { createTelemetry } from '../../../shared/telemetry';
import { useAzurite } from '../../helpers/storage';

const env = useAzurite();

it('reports every snapshot figure as a custom metric per capability, and an event when advice changes', async () => {
  const storage = await env.storage();
  const metrics: { name: string; value: number; properties?: Record<string, string> }[] = [];
  const events: { name: string; properties: Record<string, string> }[] = [];
  const recorder = {
    enabled: true,
    metric: (name: string, value: number, properties?: Record<string, string>) =>
      void metrics.push({ name, value, properties }),
    event: (name: string, properties: Record<string, string>) => void events.push({ name, properties }),
    flush: async () => undefined,
  };
  const first = await collectSnapshot(storage);
  reportSnapshot(recorder, first);
  expect(metrics.filter((m) => m.properties?.capability === 'heavy').map((m) => m.name)).toEqual(
    expect.arrayContaining([
      'imagepipeline.queue_length',
      'imagepipeline.workers_active',
      'imagepipeline.recommended_workers',
      'imagepipeline.keda_replicas',
    ]),
  );
  expect(metrics.find((m) => m.name === 'imagepipeline.host.cpu_percent')).toBeDefined();
  expect(events.map((e) => [e.name, e.properties.capability, e.properties.previous_action])).toEqual([
    ['ScalingRecommendationChanged', 'light', 'none'],
    ['ScalingRecommendationChanged', 'heavy', 'none'],
  ]);
  events.length = 0;
  reportSnapshot(recorder, first, first);
  expect(events).toEqual([]);
});

it('does nothing, and throws nothing, without a connection string', async () => {
  const telemetry = createTelemetry('');
  expect(telemetry.enabled).toBe(false);
  const storage = await env.storage();
  expect(() =>
    reportSnapshot(telemetry, {
      timestamp: new Date().toISOString(),
      window_s: null,
      host: { cpu_percent: 1, memory_percent: 1, memory_used_mb: 1 },
      capabilities: {} as never,
    }),
  ).not.toThrow();
  await expect(telemetry.flush()).resolves.toBeUndefined();
  void storage;
});
