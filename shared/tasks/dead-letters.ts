/**
 * Messages that ran out of retries (or were garbled) are kept in Table `deadletters`,
 * partitioned by capability, until someone requeues them: the poison function records them
 * here because the host deletes a poison message once its function succeeds. Requeue puts their
 * tasks back to queued and their messages back on the capability queue.
 */
import type { TableClient } from '@azure/data-tables';
import type { CapabilityName } from '../capabilities';
import type { Storage } from '../storage/clients';
import { decodeMessageText, enqueue } from '../storage/queue';
import { TaskStore } from './store';

export interface DeadLetter {
  readonly capability: CapabilityName;
  readonly id: string;
  readonly task_id: string | null;
  readonly reason: string;
  readonly message: string;
  readonly dequeue_count: number | null;
  readonly failed_at: string;
}

type DeadLetterEntity = {
  partitionKey: string;
  rowKey: string;
  task_id?: string;
  reason: string;
  message: string;
  dequeue_count?: number;
  failed_at: string;
};

export class DeadLetterStore {
  constructor(private readonly table: TableClient) {}

  /** Keyed by task (or by message id for garbage), so a redelivered poison message is recorded once. */
  async record(letter: Omit<DeadLetter, 'failed_at'>, now = new Date()): Promise<void> {
    const entity: DeadLetterEntity = {
      partitionKey: letter.capability,
      rowKey: letter.id,
      reason: letter.reason,
      message: letter.message.slice(0, 32000),
      failed_at: now.toISOString(),
      ...(letter.task_id ? { task_id: letter.task_id } : {}),
      ...(letter.dequeue_count !== null ? { dequeue_count: letter.dequeue_count } : {}),
    };
    await this.table.upsertEntity(entity, 'Replace');
  }

  async list(capability: CapabilityName): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    const query = this.table.listEntities<DeadLetterEntity>({
      queryOptions: { filter: `PartitionKey eq '${capability}'` },
    });
    for await (const e of query) {
      letters.push({
        capability,
        id: e.rowKey,
        task_id: e.task_id ?? null,
        reason: e.reason,
        message: e.message,
        dequeue_count: e.dequeue_count ?? null,
        failed_at: e.failed_at,
      });
    }
    return letters.sort((a, b) => a.failed_at.localeCompare(b.failed_at));
  }

  async remove(capability: CapabilityName, id: string): Promise<void> {
    await this.table.deleteEntity(capability, id);
  }
}

export interface RequeueResult {
  readonly capability: CapabilityName;
  readonly queue: string;
  /** Dead letters and poison-queue messages put back on the queue. */
  readonly requeued: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

/**
 * Replays a capability's dead letters: each named task goes back to queued and its message back on
 * the queue; a task that meanwhile succeeded is dropped from the dead letters, and a letter that
 * names no task is skipped (and kept). Messages still in the poison queue (its function has not run
 * yet) go back too.
 */
export async function requeueDeadLetters(storage: Storage, capability: CapabilityName): Promise<RequeueResult> {
  const letters = new DeadLetterStore(storage.deadLetters);
  const tasks = new TaskStore(storage.tasks);
  let requeued = 0;
  const skipped: { id: string; reason: string }[] = [];
  for (const letter of await letters.list(capability)) {
    const task = letter.task_id ? (await tasks.requeue(letter.task_id))?.record : undefined;
    if (!task || task.status === 'succeeded') {
      skipped.push({ id: letter.id, reason: task ? 'task already succeeded' : `no task to run (${letter.reason})` });
      if (task) await letters.remove(capability, letter.id);
      continue;
    }
    await enqueue(storage.queue(capability), letter.message);
    await letters.remove(capability, letter.id);
    requeued += 1;
  }
  requeued += await drainPoisonQueue(storage, capability);
  return { capability, queue: storage.names.queueOf(capability), requeued, skipped };
}

async function drainPoisonQueue(storage: Storage, capability: CapabilityName): Promise<number> {
  let moved = 0;
  for (;;) {
    const { receivedMessageItems: batch } = await storage
      .poisonQueue(capability)
      .receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    if (batch.length === 0) return moved;
    for (const message of batch) {
      await enqueue(storage.queue(capability), decodeMessageText(message.messageText));
      await storage.poisonQueue(capability).deleteMessage(message.messageId, message.popReceipt);
      moved += 1;
    }
  }
}
