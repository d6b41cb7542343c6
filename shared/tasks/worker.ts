/**
 * What a capability's queue worker does with one delivered message.
 * - valid message, task open → claim it, process, write the result blob, mark succeeded;
 * - PermanentError (bad image, filter cannot apply, missing input) → mark failed/job_failure, return;
 * - anything else → throw, so the host retries and, after maxDequeueCount, moves it to poison;
 * - garbled message → failed/invalid_message if it names a queued or processing task, else to poison
 *   (where it becomes a dead letter), so it never overwrites a task that already ended.
 *
 * At-least-once delivery runs a task once. A task is claimed once (TaskStore.start): a copy that
 * finds a live claim by another delivery is put back on the queue, hidden until that claim could
 * be found dead or stale, and acknowledged ('deferred', not a failed delivery); a copy that finds the
 * task succeeded is acknowledged ('already_succeeded'). A claim stands while it is younger than the
 * function timeout and the registry shows its worker alive and running the task (asked only when a
 * claim by another worker is found); a copy of a task this process is already running is deferred
 * without a read, and a claim under this process's own id that it is not running is taken over.
 * The succeeded or failed write happens only while the claim still stands ('lost_claim' otherwise),
 * so only the transition that happened is reported, and counted.
 * The normal path is two writes of the task record and no read: the message carries the ETag of the
 * record as the job created it, so start writes the claim guarded by that ETag (reading the record
 * only when it changed since: a copy, a retry, a replayed dead letter), and its write returns the
 * ETag that succeed's write is guarded by.
 */
import os from 'node:os';
import type { CapabilityName } from '../capabilities';
import { appSettings } from '../config';
import { PermanentError, ValidationError } from '../errors';
import type { Limits } from '../imaging/limits';
import { processImage } from '../imaging/pipeline';
import type { Storage } from '../storage/clients';
import { readImage, writeResult } from '../storage/images';
import { enqueue } from '../storage/queue';
import { parseTaskMessage, received, taskIdOf, type DeliveredTask } from './message';
import { asCreated, CLAIM_STALE_AFTER_MS, claimAgeMs, TaskStore, type StoredTask, type TaskRecord } from './store';

export interface WorkerDeps {
  readonly storage: Storage;
  readonly capability: CapabilityName;
  readonly workerId?: string;
  readonly limits?: Limits;
  readonly log?: (message: string) => void;
  /**
   * Whether another worker's claim on a task is live (the worker registry: its worker heartbeats and
   * runs the task). Without it, another worker's claim stands until it is stale.
   */
  readonly isClaimRunning?: (claim: TaskRecord) => Promise<boolean>;
  /**
   * How long a deferred copy stays hidden before it looks again (at most until the claim is stale):
   * the time the registry takes to call a silent worker dead. Default 30 s.
   */
  readonly deadAfterMs?: number;
}

export type WorkerOutcome = 'succeeded' | 'already_succeeded' | 'failed' | 'sent_to_poison' | 'deferred' | 'lost_claim';

/** Worker ids name the instance and the process, so two workers on one host are told apart. */
export const WORKER_ID = `${process.env.WEBSITE_INSTANCE_ID?.slice(0, 12) ?? os.hostname()}-${process.pid}`;

const DEFAULT_DEAD_AFTER_MS = 30000;

/** Tasks this process is running, per worker id: a second copy of one of them is deferred at once. */
const running = new Set<string>();

export async function processTaskMessage(delivered: unknown, deps: WorkerDeps): Promise<WorkerOutcome> {
  await deps.storage.ensureResources(); // a worker may run before any HTTP call created the containers
  const tasks = new TaskStore(deps.storage.tasks);
  const limits = deps.limits ?? appSettings();
  let message: DeliveredTask;
  try {
    message = parseTaskMessage(delivered, limits);
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return rejectGarbled(delivered, err, tasks, deps);
  }
  const workerId = deps.workerId ?? WORKER_ID;
  const deadAfterMs = deps.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS;
  const key = `${workerId}/${message.task_id}`;
  if (running.has(key)) return defer(delivered, deps, deadAfterMs);
  running.add(key);
  try {
    const startedAt = Date.now();
    // This process runs no other copy (above), so a claim under its own worker id is left over from an
    // earlier process with the same id (a restarted container) or from a delivery that failed: taken over.
    const stands = async (claim: TaskRecord): Promise<boolean> => {
      if (claim.worker_id === workerId) return false;
      return !deps.isClaimRunning || deps.isClaimRunning(claim);
    };
    const start = await tasks.start(presumedRecord(message, deps) ?? message.task_id, workerId, stands);
    if (!start) return await sendToPoison(delivered, deps, `unknown task ${message.task_id}`);
    const { task: started, changed } = start;
    if (started.record.status === 'succeeded') return 'already_succeeded';
    if (!changed) {
      const untilStale = CLAIM_STALE_AFTER_MS - claimAgeMs(started.record);
      return await defer(delivered, deps, Math.min(untilStale, deadAfterMs));
    }
    try {
      const { data: input } = await readImage(deps.storage, message.image);
      const result = await processImage(message.spec, input, limits);
      const claim = `${workerId}#${started.record.attempts}`;
      const output = await writeResult(deps.storage, { ...message, filters: message.spec.filters, claim }, result);
      const done = await tasks.succeed(started, output, Date.now() - startedAt);
      return done?.changed ? 'succeeded' : lostClaim(deps, message.task_id);
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      const done = await tasks.fail(started, { type: 'job_failure', reason: err.code, error: err.message });
      return done?.changed ? 'failed' : lostClaim(deps, message.task_id);
    }
  } finally {
    running.delete(key);
  }
}

/**
 * The record as the job created it, when the message carries its ETag: queued, never attempted, its
 * created_at the message's submitted_at (createJob writes both from one clock reading). Only the
 * claim's own columns are written from it, and only while the record is still that version.
 */
function presumedRecord(message: DeliveredTask, deps: WorkerDeps): StoredTask | undefined {
  if (message.etag === undefined) return undefined;
  const task = {
    task_id: message.task_id,
    job_id: message.job_id,
    image: message.image,
    filters: message.spec.filters,
    output_spec: message.spec.encoding,
    capability: deps.capability,
    queue: deps.storage.names.queueOf(deps.capability),
  };
  // a retried task's record counts its earlier attempts, and its message says how many
  return { record: { ...asCreated(task, message.submitted_at), attempts: message.attempts ?? 0 }, etag: message.etag };
}

function lostClaim(deps: WorkerDeps, taskId: string): WorkerOutcome {
  deps.log?.(`task ${taskId}: another delivery took over the claim; this one's result is not recorded`);
  return 'lost_claim';
}

/**
 * Another delivery holds a live claim: the same text goes back on the queue, hidden until the claim
 * could be found dead or stale, and this copy is acknowledged without counting as a failed delivery.
 */
async function defer(delivered: unknown, deps: WorkerDeps, delayMs: number): Promise<WorkerOutcome> {
  const visibilityTimeout = Math.max(1, Math.ceil(delayMs / 1000));
  await enqueue(deps.storage.queue(deps.capability), received(delivered).text, { visibilityTimeout });
  return 'deferred';
}

/**
 * A message that fails the schema: its task fails (invalid_message) if it is still queued or
 * processing; otherwise (no task, or one that already ended) the message goes to poison, where the
 * poison function keeps it as a dead letter that says why.
 */
async function rejectGarbled(
  delivered: unknown,
  err: ValidationError,
  tasks: TaskStore,
  deps: WorkerDeps,
): Promise<WorkerOutcome> {
  const taskId = taskIdOf(delivered);
  const failed =
    taskId && (await tasks.fail(taskId, { type: 'job_failure', reason: 'invalid_message', error: err.message }));
  if (failed && failed.changed) return 'failed';
  const why = failed ? `a garbled message for ${failed.task.record.status} task ${taskId}` : 'invalid message';
  return sendToPoison(delivered, deps, `${why}: ${err.message}`);
}

async function sendToPoison(delivered: unknown, deps: WorkerDeps, why: string): Promise<WorkerOutcome> {
  deps.log?.(`moving message to ${deps.storage.names.poisonQueueOf(deps.capability)}: ${why}`);
  await enqueue(deps.storage.poisonQueue(deps.capability), received(delivered).text);
  return 'sent_to_poison';
}
