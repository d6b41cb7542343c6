/**
 * The worker registry as the API shows it: Table `workers` rows with a status derived from their
 * heartbeats.
 */
import type { Storage } from '../storage/clients';
import type { CapabilityName } from '../capabilities';
import { appSettings, type Settings } from '../config';
import type { CapabilityCounters, RecentTask } from './worker-stats';

export type WorkerStatus = 'idle' | 'busy' | 'dead' | 'stopped';

export interface WorkerView {
  readonly id: string;
  readonly host: string;
  readonly capabilities: readonly CapabilityName[];
  readonly status: WorkerStatus;
  readonly in_flight: number;
  readonly processed: number;
  readonly failed: number;
  readonly started_at: string;
  readonly last_heartbeat: string;
  readonly counters: Readonly<Partial<Record<CapabilityName, CapabilityCounters>>>;
  /** The worker's latest tasks, newest first. */
  readonly recent_tasks: readonly RecentTask[];
}

interface WorkerEntity {
  rowKey?: string;
  host: string;
  capabilities: string;
  started_at: string;
  last_heartbeat: string;
  in_flight: number;
  counters: string;
  recent_tasks?: string;
  stopped?: boolean;
}

/** Silent for three heartbeats means dead. */
export const deadAfterMs = (settings: Settings = appSettings()): number => 3 * settings.workerHeartbeatSeconds * 1000;

export function statusOf(
  e: Pick<WorkerEntity, 'last_heartbeat' | 'in_flight' | 'stopped'>,
  now: Date,
  deadAfter = deadAfterMs(),
): WorkerStatus {
  if (e.stopped) return 'stopped';
  if (now.getTime() - Date.parse(e.last_heartbeat) > deadAfter) return 'dead';
  return e.in_flight > 0 ? 'busy' : 'idle';
}

export async function listWorkers(storage: Storage, now = new Date()): Promise<WorkerView[]> {
  await storage.ensureResources();
  const workers: WorkerView[] = [];
  for await (const e of storage.workers.listEntities<WorkerEntity>({
    queryOptions: { filter: "PartitionKey eq 'workers'" },
  })) {
    const counters = JSON.parse(e.counters) as Partial<Record<CapabilityName, CapabilityCounters>>;
    const sum = (key: 'completed' | 'failed') =>
      Object.values(counters).reduce((total, c) => total + (c?.[key] ?? 0), 0);
    workers.push({
      id: e.rowKey!,
      host: e.host,
      capabilities: JSON.parse(e.capabilities) as CapabilityName[],
      status: statusOf(e, now),
      in_flight: e.in_flight,
      processed: sum('completed'),
      failed: sum('failed'),
      started_at: e.started_at,
      last_heartbeat: e.last_heartbeat,
      counters,
      recent_tasks: e.recent_tasks ? (JSON.parse(e.recent_tasks) as RecentTask[]) : [],
    });
  }
  return workers.sort((a, b) => a.id.localeCompare(b.id));
}

export const isLive = (w: WorkerView) => w.status === 'idle' || w.status === 'busy';
