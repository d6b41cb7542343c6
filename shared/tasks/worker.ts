/**
 * What a capability's queue worker does with one delivered message.
 * - valid message, task not yet succeeded → process, write the result blob, mark succeeded;
 * - PermanentError (bad image, filter cannot apply, missing input) → mark failed/job_failure, return;
 * - anything else → throw, so the host retries and, after maxDequeueCount, moves it to poison;
 * - garbled message → failed/job_failure if it names a real task, else straight to poison.
 * Processing is idempotent: the result blob name is fixed per task and a succeeded task is
 * acknowledged without work, so at-least-once delivery never duplicates results.
 * The normal path is one read and two writes of the task record: start's write returns the ETag
 * that succeed's write is guarded by.
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
import { messageText, parseTaskMessage, taskIdOf, type DeliveredTask } from './message';
import { TaskStore } from './store';

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
  const startedAt = Date.now();
  const started = await tasks.start(message.task_id, deps.workerId ?? WORKER_ID);
  if (!started) return sendToPoison(delivered, deps, `unknown task ${message.task_id}`);
  if (started.record.status === 'succeeded') return 'already_succeeded';
  try {
    const { data: input } = await readImage(deps.storage, message.image);
    const result = await processImage(message.spec, input, limits);
    const output = await writeResult(deps.storage, { ...message, filters: message.spec.filters }, result);
    await tasks.succeed(started, output, Date.now() - startedAt);
    return 'succeeded';
  } catch (err) {
    if (!(err instanceof PermanentError)) throw err;
    await tasks.fail(started, { type: 'job_failure', reason: err.code, error: err.message });
    return 'failed';
  }
}

/** A message that fails the schema: fail its task if it names one, else keep it visible in poison. */
async function rejectGarbled(
  delivered: unknown,
  err: ValidationError,
  tasks: TaskStore,
  deps: WorkerDeps,
): Promise<WorkerOutcome> {
  const taskId = taskIdOf(delivered);
  const failed =
    taskId && (await tasks.fail(taskId, { type: 'job_failure', reason: 'invalid_message', error: err.message }));
  if (failed) return 'failed';
  return sendToPoison(delivered, deps, `invalid message: ${err.message}`);
}

async function sendToPoison(delivered: unknown, deps: WorkerDeps, why: string): Promise<WorkerOutcome> {
  deps.log?.(`moving message to ${deps.storage.names.poisonQueueOf(deps.capability)}: ${why}`);
  await enqueue(deps.storage.poisonQueue(deps.capability), messageText(delivered));
  return 'sent_to_poison';
}
