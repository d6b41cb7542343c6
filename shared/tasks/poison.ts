/**
 * What a capability's poison function does with a message in `tasks-<cap>-poison`: every message
 * there ends as a dead letter (GET /api/dead-letters, requeue) that keeps its exact text and says why,
 * unless its task already succeeded and the message is a valid copy of it (nothing was lost).
 * - a valid message that ran out of deliveries: its task, if still queued or processing, ends
 *   failed/worker_failure/exhausted_retries; the count reported is the task's attempts (every start
 *   counts one), not this poison message's own dequeue count, which is 1;
 * - a garbled message (the worker sends those here when its task already ended, or names none):
 *   `invalid_message`, `unknown_task`, or `invalid_message_for_<status>_task`, the task untouched
 *   unless it was still open.
 * It never throws for a bad message. A poison queue has no poison queue of its own, so a failing
 * invocation would only come back after its lease, again and again: the whole handling is idempotent
 * (guarded transitions, a dead letter upserted under a fixed key) and is run again inside the
 * invocation while storage is unavailable (retryOutages: 0.5, 1, 2 and 4 s).
 */
import type { CapabilityName } from '../capabilities';
import { ValidationError } from '../errors';
import type { Limits } from '../imaging/limits';
import type { Storage } from '../storage/clients';
import { retryOutages } from '../storage/outage';
import { DeadLetterStore } from './dead-letters';
import { parseTaskMessage, received, taskIdOf, type Delivery } from './message';
import { TaskStore, type TaskRecord } from './store';

export interface PoisonDeps {
  readonly storage: Storage;
  readonly capability: CapabilityName;
  readonly limits?: Limits;
}

/** What the message is: valid, or the first problems that make it garbled. */
function validity(delivered: unknown, limits: Limits | undefined): string | null {
  try {
    parseTaskMessage(delivered, limits);
    return null;
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.message;
  }
}

const gaveUp = (task: TaskRecord): string =>
  task.attempts > 0
    ? `gave up after ${task.attempts} attempt${task.attempts === 1 ? '' : 's'}`
    : 'gave up: no delivery could start the task';

export function handlePoisonMessage(
  delivered: unknown,
  deps: PoisonDeps,
  meta: Delivery,
  retryDelaysMs?: readonly number[],
): Promise<void> {
  return retryOutages(() => recordPoisonMessage(delivered, deps, meta), retryDelaysMs);
}

async function recordPoisonMessage(delivered: unknown, deps: PoisonDeps, meta: Delivery): Promise<void> {
  await deps.storage.ensureResources();
  const tasks = new TaskStore(deps.storage.tasks);
  const named = taskIdOf(delivered);
  const problem = validity(delivered, deps.limits);
  const existing = named ? ((await tasks.get(named)) ?? null) : null;
  let task = existing;
  let reason: string;
  let error: string | null = problem;
  if (named && !existing) reason = 'unknown_task';
  else if (!existing) reason = 'invalid_message';
  else if (problem) {
    const failed = await tasks.fail(existing.task_id, {
      type: 'job_failure',
      reason: 'invalid_message',
      error: problem,
    });
    task = failed?.task.record ?? existing;
    reason = failed?.changed ? 'invalid_message' : `invalid_message_for_${existing.status}_task`;
  } else {
    if (existing.status === 'succeeded') return; // a late copy of a task that is done: nothing lost
    error = gaveUp(existing);
    const failed = await tasks.fail(existing.task_id, { type: 'worker_failure', reason: 'exhausted_retries', error });
    task = failed?.task.record ?? existing;
    if (task.status === 'succeeded') return;
    reason = 'exhausted_retries';
  }
  await new DeadLetterStore(deps.storage.deadLetters).record({
    capability: deps.capability,
    // one letter per task for a run that gave up (a redelivered poison message is recorded once);
    // per message for garbage, so it never replaces the letter of the task it names
    id: reason === 'exhausted_retries' && task ? task.task_id : meta.id,
    task_id: task?.task_id ?? null,
    reason,
    message: received(delivered).text,
    dequeue_count: task ? task.attempts : null,
    error,
  });
}
