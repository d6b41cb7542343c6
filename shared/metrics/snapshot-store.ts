/**
 * Snapshots in Table `metrics`, newest first (row keys count down), kept for
 * METRICS_RETENTION_MINUTES: the history behind charts and the previous snapshot the next one
 * takes its differences from.
 */
import { appSettings } from '../config';
import { isStatus, type Storage } from '../storage/clients';
import type { Snapshot } from './snapshot';

const PARTITION = 'snapshots';
const MAX_TIME = 9_999_999_999_999;

const rowKeyOf = (time: number) => String(MAX_TIME - time).padStart(13, '0');

export async function saveSnapshot(storage: Storage, snapshot: Snapshot): Promise<void> {
  await storage.metrics.upsertEntity(
    { partitionKey: PARTITION, rowKey: rowKeyOf(Date.parse(snapshot.timestamp)), data: JSON.stringify(snapshot) },
    'Replace',
  );
}

/** Snapshots newer than `minutes` ago, newest first. */
export async function snapshotsSince(
  storage: Storage,
  minutes: number,
  now = new Date(),
  limit = 1000,
): Promise<Snapshot[]> {
  const filter = `PartitionKey eq '${PARTITION}' and RowKey le '${rowKeyOf(now.getTime() - minutes * 60000)}'`;
  const snapshots: Snapshot[] = [];
  for await (const e of storage.metrics.listEntities<{ data: string }>({ queryOptions: { filter } })) {
    snapshots.push(JSON.parse(e.data) as Snapshot);
    if (snapshots.length >= limit) break;
  }
  return snapshots;
}

/** The snapshot taken at `timestamp` (one point read), or undefined when none was (or it is past the retention). */
export async function snapshotAt(storage: Storage, timestamp: string): Promise<Snapshot | undefined> {
  try {
    const e = await storage.metrics.getEntity<{ data: string }>(PARTITION, rowKeyOf(Date.parse(timestamp)));
    const snapshot = JSON.parse(e.data) as Snapshot;
    return snapshot.timestamp === new Date(Date.parse(timestamp)).toISOString() ? snapshot : undefined;
  } catch (err) {
    if (isStatus(err, 404)) return undefined;
    throw err;
  }
}

export async function latestSnapshot(storage: Storage): Promise<Snapshot | undefined> {
  for await (const e of storage.metrics.listEntities<{ data: string }>({
    queryOptions: { filter: `PartitionKey eq '${PARTITION}'` },
  }))
    return JSON.parse(e.data) as Snapshot;
  return undefined;
}

/** Deletes snapshots older than the retention; cost grows with the retention, not with tasks. */
export async function pruneSnapshots(
  storage: Storage,
  now = new Date(),
  minutes = appSettings().metricsRetentionMinutes,
): Promise<number> {
  const filter = `PartitionKey eq '${PARTITION}' and RowKey gt '${rowKeyOf(now.getTime() - minutes * 60000)}'`;
  let deleted = 0;
  for await (const e of storage.metrics.listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
    await storage.metrics.deleteEntity(PARTITION, e.rowKey!);
    deleted += 1;
  }
  return deleted;
}
