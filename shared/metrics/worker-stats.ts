/**
 * Running counters of one worker process and its heartbeat into Table `workers`. Counters are
 * cumulative, so the metrics timer reads O(workers) rows and takes differences between
 * snapshots instead of reading every task.
 */
import os from 'node:os';
import type { Storage } from '../storage/clients';
import { appSettings, functionAllowList } from '../config';
import { CAPABILITIES, workerFunctionName, type CapabilityName } from '../capabilities';
import { isStatus } from '../storage/clients';
import { redactSecrets } from '../redact';
import { WORKER_ID, type WorkerOutcome } from '../tasks/worker';
import { deadAfterMs, statusOf } from './worker-registry';
import { record, type LatencyHistogram } from './latency';

/**
 * Upper bounds (ms) of the coarse latency buckets Prometheus shows (`le`, in seconds); the last one catches
 * everything. Each is a bound of the fine histogram (latency.ts), so their counts are exact.
 */
export const LATENCY_BUCKETS_MS = [
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  120000,
  300000,
  Number.POSITIVE_INFINITY,
] as const;

export interface CapabilityCounters {
  completed: number;
  failed: number;
  /** Transient errors: the host retries these messages. */
  errors: number;
  busy_ms: number;
  /** Completed-task latencies: a fine, mergeable histogram (latency.ts). */
  latency: LatencyHistogram;
  /** Sum of the completed-task latencies, ms (Prometheus' `_sum`). */
  latency_sum_ms: number;
}

export interface RecentTask {
  readonly task_id: string | null;
  readonly capability: CapabilityName;
  readonly outcome: WorkerOutcome | 'error';
  readonly duration_ms: number;
  readonly finished_at: string;
}

/** How many of its latest tasks a worker reports (the dashboard's "recent tasks"). */
const RECENT_TASKS = 10;

export const emptyCounters = (): CapabilityCounters => ({
  completed: 0,
  failed: 0,
  errors: 0,
  busy_ms: 0,
  latency: {},
  latency_sum_ms: 0,
});

/**
 * The capabilities this process serves: in a per-capability deployment the host runs only the
 * functions named in AzureFunctionsJobHost__functions__N; otherwise it runs them all.
 */
export function servedCapabilities(env: NodeJS.ProcessEnv = process.env): CapabilityName[] {
  const selected = functionAllowList(env);
  // the host matches allow-list names case-insensitively (FunctionMetadataManager.ApplyAllowList)
  const runs = (name: string): boolean => !selected || selected.some((s) => s.toLowerCase() === name.toLowerCase());
  return CAPABILITIES.map((c) => c.name).filter((c) => runs(workerFunctionName(c)));
}

export class WorkerStats {
  readonly startedAt = new Date().toISOString();
  inFlight = 0;
  /** The tasks running now, by id (a copy of one counts twice), so the registry shows whose claim is live. */
  private readonly running = new Map<string, number>();
  private readonly counters = new Map<CapabilityName, CapabilityCounters>();
  private readonly recent: RecentTask[] = [];

  constructor(
    readonly id: string,
    readonly capabilities: readonly CapabilityName[],
  ) {}

  /**
   * Runs one task and counts it: completed (with its latency), failed, or a transient error. Only
   * the transition that happened counts: a deferred copy, one that found the task done, or one that
   * lost its claim is no completion.
   */
  async track(
    capability: CapabilityName,
    run: () => Promise<WorkerOutcome>,
    taskId: string | null = null,
  ): Promise<WorkerOutcome> {
    const counters = this.countersOf(capability);
    const started = Date.now();
    let outcome: WorkerOutcome | 'error' = 'error';
    this.inFlight += 1;
    if (taskId) this.running.set(taskId, (this.running.get(taskId) ?? 0) + 1);
    try {
      outcome = await run();
      const ms = Date.now() - started;
      if (outcome === 'succeeded') {
        counters.completed += 1;
        record(counters.latency, ms);
        counters.latency_sum_ms += ms;
      } else if (outcome === 'failed') counters.failed += 1;
      return outcome;
    } catch (err) {
      counters.errors += 1;
      throw err;
    } finally {
      this.inFlight -= 1;
      if (taskId && (this.running.get(taskId) ?? 0) <= 1) this.running.delete(taskId);
      else if (taskId) this.running.set(taskId, this.running.get(taskId)! - 1);
      const ms = Date.now() - started;
      counters.busy_ms += ms;
      this.recent.unshift({
        task_id: taskId,
        capability,
        outcome,
        duration_ms: ms,
        finished_at: new Date().toISOString(),
      });
      this.recent.length = Math.min(this.recent.length, RECENT_TASKS);
    }
  }

  countersOf(capability: CapabilityName): CapabilityCounters {
    let counters = this.counters.get(capability);
    if (!counters) this.counters.set(capability, (counters = emptyCounters()));
    return counters;
  }

  /** The Table `workers` row of this process. */
  toEntity(now: Date, stopped = false) {
    return {
      partitionKey: 'workers',
      rowKey: this.id,
      host: os.hostname(),
      capabilities: JSON.stringify(this.capabilities),
      started_at: this.startedAt,
      last_heartbeat: now.toISOString(),
      in_flight: this.inFlight,
      running: JSON.stringify([...this.running.keys()]),
      counters: JSON.stringify(Object.fromEntries(this.counters)),
      recent_tasks: JSON.stringify(this.recent),
      stopped,
    };
  }
}

export const workerStats = new WorkerStats(WORKER_ID, servedCapabilities());

/** Heartbeats from a plain interval (a timer trigger would run on one instance only). */
export function startHeartbeat(
  storage: Storage,
  stats: WorkerStats = workerStats,
  intervalMs = appSettings().workerHeartbeatSeconds * 1000,
  log: (line: string) => void = () => undefined,
) {
  // A process running no worker function (the API or the metrics timer in Kubernetes) is not a worker.
  if (stats.capabilities.length === 0) return { stop: () => Promise.resolve() };
  const beat = async (stopped = false) => {
    try {
      await storage.ensureResources();
      await storage.workers.upsertEntity(stats.toEntity(new Date(), stopped), 'Replace');
    } catch (err) {
      log(`heartbeat failed: ${redactSecrets(err instanceof Error ? err.message.split('\n')[0] : String(err))}`);
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();
  return {
    /** A last heartbeat that says the worker stopped on purpose (not dead). */
    stop: async () => {
      clearInterval(timer);
      await beat(true);
    },
  };
}

/**
 * Whether a task's claim is live: its worker heartbeats (three missed beats mean dead; a worker
 * that stopped on purpose finished or gave up its tasks) and is running the task, or has not
 * heartbeaten since it claimed it. A worker never registered is given the time a worker takes to be
 * declared dead. One point read of Table `workers`, made only when a claim by another worker is found.
 */
export async function isClaimRunning(
  storage: Storage,
  claim: { readonly task_id: string; readonly worker_id: string | null; readonly started_at: string | null },
  now = new Date(),
  deadAfter = deadAfterMs(),
): Promise<boolean> {
  const startedAt = Date.parse(claim.started_at ?? '') || now.getTime();
  let row: WorkerRow;
  try {
    row = await storage.workers.getEntity<WorkerRow>('workers', claim.worker_id ?? '');
  } catch (err) {
    if (isStatus(err, 404)) return now.getTime() - startedAt < deadAfter;
    throw err;
  }
  const status = statusOf(row, now, deadAfter);
  if (status !== 'idle' && status !== 'busy') return false;
  const running = row.running ? (JSON.parse(row.running) as string[]) : [];
  return running.includes(claim.task_id) || Date.parse(row.last_heartbeat) <= startedAt;
}

interface WorkerRow {
  last_heartbeat: string;
  in_flight: number;
  stopped?: boolean;
  running?: string;
}
