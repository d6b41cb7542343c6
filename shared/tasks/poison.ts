/**
 * What a capability's poison function does with a message that ran out of deliveries: the task (if
 * the message names one) ends failed/worker_failure unless it already succeeded, and the message is
 * kept as a dead letter for GET /api/dead-letters and requeue.
 */
import type { CapabilityName } from '../capabilities';
import type { Storage } from '../storage/clients';
import { DeadLetterStore } from './dead-letters';
import { messageText, taskIdOf, type Delivery } from './message';
import { TaskStore } from './store';

export interface PoisonDeps {
  readonly storage: Storage;
  readonly capability: CapabilityName;
}

export async function handlePoisonMessage(delivered: unknown, deps: PoisonDeps, meta: Delivery): Promise<void> {
  await deps.storage.ensureResources();
  const named = taskIdOf(delivered);
  const error = `gave up after ${meta.dequeueCount ?? 'several'} deliveries`;
  const task = named
    ? (
        await new TaskStore(deps.storage.tasks).fail(named, {
          type: 'worker_failure',
          reason: 'exhausted_retries',
          error,
        })
      )?.record
    : undefined;
  if (task?.status === 'succeeded') return;
  const reason = task ? 'exhausted_retries' : named ? 'unknown_task' : 'invalid_message';
  await new DeadLetterStore(deps.storage.deadLetters).record({
    capability: deps.capability,
    id: task?.task_id ?? meta.id,
    task_id: task?.task_id ?? null,
    reason,
    message: messageText(delivered),
    dequeue_count: meta.dequeueCount,
  });
}
