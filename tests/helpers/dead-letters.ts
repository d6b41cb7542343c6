/**
 * A task message that ran out of retries, as the poison function leaves it: the message off the queue, its task
 * failed (exhausted_retries), and a dead letter recorded under the task id with the message text.
 */
import type { DequeuedMessageItem } from '@azure/storage-queue';
import type { Storage } from '../../shared/storage/clients';
import { decodeMessageText } from '../../shared/storage/queue';
import { DeadLetterStore } from '../../shared/tasks/dead-letters';
import { TaskStore } from '../../shared/tasks/store';

export async function giveUp(storage: Storage, m: DequeuedMessageItem): Promise<string> {
  const text = decodeMessageText(m.messageText);
  const taskId = (JSON.parse(text) as { task_id: string }).task_id;
  await storage.queue('light').deleteMessage(m.messageId, m.popReceipt);
  await new TaskStore(storage.tasks).fail(taskId, {
    type: 'worker_failure',
    reason: 'exhausted_retries',
    error: 'gave up',
  });
  await new DeadLetterStore(storage.deadLetters).record({
    capability: 'light',
    id: taskId,
    task_id: taskId,
    reason: 'exhausted_retries',
    message: text,
    dequeue_count: 5,
    error: 'gave up',
  });
  return taskId;
}
