/**
 * What the collectMetrics timer does: a snapshot from the previous one, saved, old ones pruned, sent to Application
 * Insights.
 */
import type { Storage } from '../storage/clients';
import { collectSnapshot, type Snapshot } from './snapshot';
import { latestSnapshot, pruneSnapshots, saveSnapshot } from './snapshot-store';
import { appTelemetry, type Telemetry } from '../telemetry';
import { reportSnapshot } from './report';

export async function collectAndStore(
  storage: Storage,
  now = new Date(),
  telemetry: Telemetry = appTelemetry(),
): Promise<Snapshot> {
  // the metrics role may be the first to touch a fresh storage account: the table must exist before it is read
  await storage.ensureResources();
  const previous = await latestSnapshot(storage);
  const snapshot = await collectSnapshot(storage, previous, now);
  await saveSnapshot(storage, snapshot);
  await pruneSnapshots(storage, now);
  reportSnapshot(telemetry, snapshot, previous);
  await telemetry.flush();
  return snapshot;
}
