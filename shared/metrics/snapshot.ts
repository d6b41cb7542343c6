/**
 * One metrics snapshot: host load, and per capability its queue, workers, task figures over the
 * window since the previous snapshot, and a scaling recommendation. Built from O(capabilities +
 * workers) reads (queue properties and the worker registry), never from task records.
 */
import os from 'node:os';
import { appSettings } from '../config';
import type { Storage } from '../storage/clients';
import { CAPABILITIES, type CapabilityName } from '../capabilities';
import { DEFAULT_POLICY, policyFor, recommend, round, workerCapacity, type Recommendation } from './recommendation';
import { isLive, listWorkers, type WorkerView } from './worker-registry';
import { emptyCounters, type CapabilityCounters } from './worker-stats';
import { asHistogram, merge, quantile, subtract, type LatencyHistogram } from './latency';

export interface CapabilityMetrics {
  readonly queue: string;
  readonly queue_length: number;
  readonly poison_length: number;
  readonly oldest_message_age_s: number | null;
  readonly workers: { readonly active: number; readonly busy: number; readonly utilization: number };
  readonly tasks: {
    readonly completed: number;
    readonly failed: number;
    readonly success_rate: number | null;
    readonly throughput_per_min: number;
    readonly arrivals_per_min: number;
    /** Completed-task latency percentiles over the window, from the workers' merged histograms (latency.ts). */
    readonly latency_ms: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null };
  };
  readonly recommendation: Recommendation;
  /** Cumulative counters over every worker ever registered, for the next snapshot's differences. */
  readonly totals: CapabilityCounters;
}

export interface Snapshot {
  readonly timestamp: string;
  readonly window_s: number | null;
  readonly host: { readonly cpu_percent: number; readonly memory_percent: number; readonly memory_used_mb: number };
  readonly capabilities: Readonly<Record<CapabilityName, CapabilityMetrics>>;
}

function hostLoad() {
  const total = os.totalmem();
  const used = total - os.freemem();
  return {
    cpu_percent: round(Math.min(100, (os.loadavg()[0] / os.cpus().length) * 100), 1),
    memory_percent: round((used / total) * 100, 1),
    memory_used_mb: Math.round(used / 1024 / 1024),
  };
}

function sumCounters(workers: readonly WorkerView[], capability: CapabilityName): CapabilityCounters {
  const total = emptyCounters();
  for (const c of workers.map((w) => w.counters[capability]).filter((c): c is CapabilityCounters => c !== undefined)) {
    total.completed += c.completed;
    total.failed += c.failed;
    total.errors += c.errors;
    total.busy_ms += c.busy_ms;
    // a row written before the histogram had fine buckets (an array) counts as none
    total.latency = merge(total.latency, asHistogram(c.latency));
    total.latency_sum_ms += c.latency_sum_ms ?? 0;
  }
  return total;
}

/** Counter growth since the previous snapshot (never negative: a pruned worker row would shrink the totals). */
function difference(now: CapabilityCounters, before: CapabilityCounters | undefined): CapabilityCounters {
  const base = before ?? emptyCounters();
  const minus = (a: number, b: number) => Math.max(0, a - b);
  return {
    completed: minus(now.completed, base.completed),
    failed: minus(now.failed, base.failed),
    errors: minus(now.errors, base.errors),
    busy_ms: minus(now.busy_ms, base.busy_ms),
    latency: subtract(now.latency, asHistogram(base.latency)),
    latency_sum_ms: minus(now.latency_sum_ms, base.latency_sum_ms ?? 0),
  };
}

/** p50, p95 and p99 of a histogram, whole milliseconds (null when no task completed). */
export function percentiles(histogram: LatencyHistogram) {
  const at = (q: number) => {
    const ms = quantile(histogram, q);
    return ms === null ? null : Math.round(ms);
  };
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export async function queueFigures(storage: Storage, capability: CapabilityName, now: Date) {
  const [props, poison, peeked] = await Promise.all([
    storage.queue(capability).getProperties(),
    storage.poisonQueue(capability).getProperties(),
    storage.queue(capability).peekMessages({ numberOfMessages: 1 }),
  ]);
  const oldest = peeked.peekedMessageItems[0]?.insertedOn;
  return {
    queue_length: props.approximateMessagesCount ?? 0,
    poison_length: poison.approximateMessagesCount ?? 0,
    oldest_message_age_s: oldest ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000)) : null,
  };
}

/**
 * Each capability is advised under its own scaling row in the capability table (the figures its ScaledObject
 * uses). `slotsPerWorker` is how many tasks one worker runs at once (WORKER_SLOTS).
 */
export async function collectSnapshot(
  storage: Storage,
  previous?: Snapshot,
  now = new Date(),
  slotsPerWorker = appSettings().workerSlots,
): Promise<Snapshot> {
  await storage.ensureResources();
  const workers = await listWorkers(storage, now);
  const windowMs = previous ? now.getTime() - Date.parse(previous.timestamp) : null;
  const capabilities = {} as Record<CapabilityName, CapabilityMetrics>;
  for (const capability of CAPABILITIES) {
    const { name, scaling } = capability;
    const queue = await queueFigures(storage, name, now);
    const serving = workers.filter((w) => isLive(w) && w.capabilities.includes(name));
    const totals = sumCounters(workers, name);
    const before = previous?.capabilities[name];
    const delta = difference(totals, before?.totals);
    const minutes = windowMs ? windowMs / 60000 : null;
    const busy = serving.filter((w) => w.status === 'busy').length;
    // Over a window, busy time per slot; for the first snapshot only the busy workers right now.
    const utilization = !serving.length
      ? 0
      : windowMs
        ? Math.min(1, delta.busy_ms / (windowMs * serving.length * slotsPerWorker))
        : busy / serving.length;
    const backlogGrowth = before ? queue.queue_length - before.queue_length : 0;
    const arrivals = minutes ? Math.max(0, (delta.completed + delta.failed + backlogGrowth) / minutes) : 0;
    // Tasks one fully busy worker finishes per minute: completions per slot-minute of busy time, times its slots.
    const servicePerWorker =
      delta.completed > 0 && delta.busy_ms > 0 ? (delta.completed / (delta.busy_ms / 60000)) * slotsPerWorker : null;
    const finished = delta.completed + delta.failed;
    capabilities[name] = {
      queue: storage.names.queueOf(name),
      ...queue,
      workers: { active: serving.length, busy, utilization: round(utilization, 3) },
      tasks: {
        completed: delta.completed,
        failed: delta.failed,
        success_rate: finished ? round(delta.completed / finished, 3) : null,
        throughput_per_min: minutes ? round(delta.completed / minutes, 2) : 0,
        arrivals_per_min: round(arrivals, 2),
        latency_ms: percentiles(delta.latency),
      },
      recommendation: recommend(
        {
          currentWorkers: serving.length,
          queueLength: queue.queue_length,
          arrivalPerMin: arrivals,
          servicePerWorkerPerMin: servicePerWorker,
          utilization,
          samples: delta.completed,
          oldestMessageAgeS: queue.oldest_message_age_s,
        },
        policyFor(scaling, DEFAULT_POLICY, workerCapacity(capability, appSettings().workerTasksPerMin)),
      ),
      totals,
    };
  }
  return {
    timestamp: now.toISOString(),
    window_s: windowMs === null ? null : round(windowMs / 1000, 1),
    host: hostLoad(),
    capabilities,
  };
}
