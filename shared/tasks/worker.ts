/**
 * What a capability's queue worker and poison function do with one delivered message.
 * - valid message, task not yet succeeded → process, write the output blob, mark succeeded;
 * - PermanentError (bad image, filter cannot apply, missing input) → mark failed/job_failure, return;
 * - anything else → throw, so the host retries and, after maxDequeueCount, moves it to poison;
 * - garbled message → failed/job_failure if it names a real task, else straight to poison.
 * Processing is idempotent: the output blob name is fixed per task and a succeeded task is
 * acknowledged without work, so at-least-once delivery never duplicates results.
 */
import os from 'node:os';
import { AppError, ValidationError } from '../errors';
import { processImage } from '../imaging/pipeline';
import { ENCODERS } from '../imaging/output';
import { currentLimits, type Limits } from '../imaging/limits';
import type { Storage } from '../storage/clients';
import { downloadImage } from '../storage/images';
import { enqueue } from '../storage/queue';
import type { CapabilityName } from './capabilities';
import { DeadLetterStore } from './dead-letters';
import { parseTaskMessage, TASK_ID, type TaskMessage } from './message';
import { TaskStore, type TaskRecord } from './store';

export interface WorkerDeps {
  readonly storage: Storage;
  readonly capability: CapabilityName;
  readonly workerId?: string;
  readonly limits?: Limits;
  readonly log?: (message: string) => void;
}

export type WorkerOutcome = 'succeeded' | 'already_succeeded' | 'failed' | 'sent_to_poison';

/** Worker ids name the instance and the process, so two workers on one host are told apart. */
export const WORKER_ID = `${process.env.WEBSITE_INSTANCE_ID?.slice(0, 12) ?? os.hostname()}-${process.pid}`;

export function outputBlobName(taskId: string, format: keyof typeof ENCODERS): string {
  return `${taskId}.${ENCODERS[format].extension}`;
}

export async function processTaskMessage(delivered: unknown, deps: WorkerDeps): Promise<WorkerOutcome> {
  await deps.storage.ensureResources(); // a worker may run before any HTTP call created the containers
  const tasks = new TaskStore(deps.storage.tasks);
  let message: TaskMessage;
  try {
    message = parseTaskMessage(delivered, deps.limits ?? currentLimits());
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return rejectGarbled(delivered, err, tasks, deps);
  }
  const started = Date.now();
  const task = await tasks.transition(message.task_id, (current) =>
    current.status === 'succeeded'
      ? undefined
      : {
          status: 'processing',
          attempts: current.attempts + 1,
          worker_id: deps.workerId ?? WORKER_ID,
          started_at: new Date().toISOString(),
        },
  );
  if (!task) return sendToPoison(delivered, deps, `unknown task ${message.task_id}`);
  if (task.status === 'succeeded') return 'already_succeeded';
  try {
    const { data: input } = await downloadImage(deps.storage, message.image);
    const result = await processImage(message, input, deps.limits ?? currentLimits());
    const blob = outputBlobName(message.task_id, message.output.format);
    await deps.storage.processed.getBlockBlobClient(blob).uploadData(result.data, {
      blobHTTPHeaders: { blobContentType: result.info.content_type },
      metadata: {
        task_id: message.task_id,
        job_id: message.job_id,
        filters: asciiMetadata(message.filters.map((f) => f.name).join(',')),
      },
    });
    await tasks.transition(message.task_id, () => ({
      status: 'succeeded',
      completed_at: new Date().toISOString(),
      duration_ms: Date.now() - started,
      output: {
        blob,
        format: result.info.format,
        content_type: result.info.content_type,
        width: result.info.width,
        height: result.info.height,
        bytes: result.info.bytes,
      },
      failure_type: null,
      failure_reason: null,
      error: null,
    }));
    return 'succeeded';
  } catch (err) {
    if (!(err instanceof AppError && err.permanent)) throw err;
    await markJobFailure(tasks, message.task_id, err.code, err.message);
    return 'failed';
  }
}

function markJobFailure(
  tasks: TaskStore,
  taskId: string,
  reason: string,
  error: string,
): Promise<TaskRecord | undefined> {
  return tasks.transition(taskId, (current) =>
    current.status === 'succeeded'
      ? undefined
      : {
          status: 'failed',
          completed_at: new Date().toISOString(),
          failure_type: 'job_failure',
          failure_reason: reason,
          error,
        },
  );
}

/** A message that fails the schema: fail its task if it names one, else keep it visible in poison. */
async function rejectGarbled(
  delivered: unknown,
  err: ValidationError,
  tasks: TaskStore,
  deps: WorkerDeps,
): Promise<WorkerOutcome> {
  const taskId = (delivered as { task_id?: unknown } | null)?.task_id;
  if (
    typeof taskId === 'string' &&
    TASK_ID.test(taskId) &&
    (await markJobFailure(tasks, taskId, 'invalid_message', err.message))
  )
    return 'failed';
  return sendToPoison(delivered, deps, `invalid message: ${err.message}`);
}

async function sendToPoison(delivered: unknown, deps: WorkerDeps, why: string): Promise<WorkerOutcome> {
  deps.log?.(`moving message to ${deps.storage.names.poisonQueueOf(deps.capability)}: ${why}`);
  await enqueue(
    deps.storage.poisonQueue(deps.capability),
    typeof delivered === 'string' ? delivered : JSON.stringify(delivered),
  );
  return 'sent_to_poison';
}

/** Blob metadata values must be ASCII. */
function asciiMetadata(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?');
}

export interface PoisonDeps {
  readonly storage: Storage;
  readonly capability: CapabilityName;
}

/**
 * The poison function: the task (if the message names one) ends failed/worker_failure unless
 * it already succeeded, and the message is kept as a dead letter for GET /api/dead-letters
 * and requeue.
 */
export async function handlePoisonMessage(
  delivered: unknown,
  deps: PoisonDeps,
  meta: { id: string; dequeueCount: number | null },
): Promise<void> {
  await deps.storage.ensureResources();
  const text = typeof delivered === 'string' ? delivered : JSON.stringify(delivered);
  const taskId = (delivered as { task_id?: unknown } | null)?.task_id;
  const named = typeof taskId === 'string' && TASK_ID.test(taskId) ? taskId : null;
  const tasks = new TaskStore(deps.storage.tasks);
  const task = named
    ? await tasks.transition(named, (current) =>
        current.status === 'succeeded'
          ? undefined
          : {
              status: 'failed',
              completed_at: new Date().toISOString(),
              failure_type: 'worker_failure',
              failure_reason: 'exhausted_retries',
              error: `gave up after ${meta.dequeueCount ?? 'several'} deliveries`,
            },
      )
    : undefined;
  if (task?.status === 'succeeded') return;
  const reason = task ? 'exhausted_retries' : named ? 'unknown_task' : 'invalid_message';
  await new DeadLetterStore(deps.storage.deadLetters).record({
    capability: deps.capability,
    id: task?.task_id ?? meta.id,
    task_id: task?.task_id ?? null,
    reason,
    message: text,
    dequeue_count: meta.dequeueCount,
  });
}
