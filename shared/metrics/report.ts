/**
 * What the metrics timer tells Application Insights about a snapshot: its figures as custom metrics
 * (one per capability) and an event when a capability's scaling advice changes.
 */
import type { Telemetry } from '../telemetry';
import type { Snapshot } from './snapshot';

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
