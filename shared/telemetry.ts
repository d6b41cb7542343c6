/**
 * Application Insights for the metrics timer: the snapshot's figures as custom metrics and an
 * event when a capability's recommendation changes. Without APPLICATIONINSIGHTS_CONNECTION_STRING
 * every call is a silent no-op (applicationinsights 3.x throws on some calls without one).
 */
import type * as ApplicationInsights from 'applicationinsights';
import type * as OpenTelemetryResources from '@opentelemetry/resources';
import type { Snapshot } from './metrics/snapshot';

export interface Telemetry {
  readonly enabled: boolean;
  metric(name: string, value: number, properties?: Record<string, string>): void;
  event(name: string, properties: Record<string, string>): void;
  flush(): Promise<void>;
}

const NO_TELEMETRY: Telemetry = {
  enabled: false,
  metric: () => undefined,
  event: () => undefined,
  flush: async () => undefined,
};

export function createTelemetry(
  connectionString = process.env.APPLICATIONINSIGHTS_CONNECTION_STRING,
  log: (line: string) => void = () => undefined,
): Telemetry {
  if (!connectionString?.trim()) return NO_TELEMETRY;
  // Loaded only when configured: the SDK pulls in OpenTelemetry, which no-telemetry runs do not need.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TelemetryClient } = require('applicationinsights') as typeof ApplicationInsights;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { defaultResource, resourceFromAttributes } =
    require('@opentelemetry/resources') as typeof OpenTelemetryResources;
  // Own providers, not the process-wide ones: no auto-collection of HTTP or console traffic.
  const client = new TelemetryClient(connectionString, { useGlobalProviders: false });
  // The cloud role Application Insights groups by (it would be "unknown_service:node"); OTEL_SERVICE_NAME overrides it.
  const serviceName = process.env.OTEL_SERVICE_NAME?.trim() || 'image-pipeline';
  client.config.azureMonitorOpenTelemetryOptions = {
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': serviceName })),
  };
  const guard = (what: string, call: () => void) => {
    try {
      call();
    } catch (err) {
      log(`telemetry ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return {
    enabled: true,
    metric: (name, value, properties) => guard('metric', () => client.trackMetric({ name, value, properties })),
    event: (name, properties) => guard('event', () => client.trackEvent({ name, properties })),
    flush: async () => {
      try {
        await client.flush();
      } catch (err) {
        log(`telemetry flush failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

let processTelemetry: Telemetry | undefined;
export const appTelemetry = (): Telemetry =>
  (processTelemetry ??= createTelemetry(undefined, (line) => console.warn(line)));

/** Custom metric names, prefixed so they group in Application Insights' metric explorer. */
export const METRIC_PREFIX = 'imagepipeline.';

export function reportSnapshot(telemetry: Telemetry, snapshot: Snapshot, previous?: Snapshot): void {
  if (!telemetry.enabled) return;
  telemetry.metric(`${METRIC_PREFIX}host.cpu_percent`, snapshot.host.cpu_percent);
  telemetry.metric(`${METRIC_PREFIX}host.memory_percent`, snapshot.host.memory_percent);
  for (const [capability, m] of Object.entries(snapshot.capabilities)) {
    const figures: Record<string, number | null> = {
      queue_length: m.queue_length,
      poison_length: m.poison_length,
      workers_active: m.workers.active,
      workers_busy: m.workers.busy,
      utilization: m.workers.utilization,
      throughput_per_min: m.tasks.throughput_per_min,
      success_rate: m.tasks.success_rate,
      latency_p95_ms: m.tasks.latency_ms.p95,
      recommended_workers: m.recommendation.recommended_workers,
      keda_replicas: m.recommendation.keda_replicas,
    };
    for (const [name, value] of Object.entries(figures))
      if (value !== null) telemetry.metric(`${METRIC_PREFIX}${name}`, value, { capability });
    const before = previous?.capabilities[capability as keyof Snapshot['capabilities']]?.recommendation;
    const now = m.recommendation;
    if (!before || before.action !== now.action || before.recommended_workers !== now.recommended_workers) {
      telemetry.event('ScalingRecommendationChanged', {
        capability,
        action: now.action,
        recommended_workers: String(now.recommended_workers),
        current_workers: String(now.current_workers),
        keda_replicas: String(now.keda_replicas),
        urgency: now.urgency,
        reason: now.reason,
        previous_action: before?.action ?? 'none',
      });
    }
  }
}
