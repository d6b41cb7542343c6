/**
 * Messages that ran out of retries (or were garbled) are kept in Table `deadletters`,
 * partitioned by capability, until someone requeues them: the poison function records them
 * here because the host deletes a poison message once its function succeeds. Messages the poison
 * function cannot take (not base64: the host cannot decode them, and a `-poison` queue has no poison
 * queue of its own, so they stay where they are) are listed straight from the poison queue.
 * Requeue puts failed tasks back to queued and their messages back on the capability queue.
 */
import type { TableClient } from '@azure/data-tables';
import type { CapabilityName } from '../capabilities';
import { isStatus, type Storage } from '../storage/clients';
import { enqueue } from '../storage/queue';
import { reopenCallback } from './callbacks';
import { parseTaskMessage } from './message';
import { TaskStore } from './store';

export interface DeadLetter {
  readonly capability: CapabilityName;
  readonly id: string;
  readonly task_id: string | null;
  readonly reason: string;
  /** The message text exactly as it was enqueued. */
  readonly message: string;
  /** How many times a worker started the task (each start is one attempt); null without a task. */
  readonly dequeue_count: number | null;
  /** Why it is here, in words: the last error, or what is wrong with the message. */
  readonly error: string | null;
  readonly failed_at: string;
}

type DeadLetterEntity = {
  partitionKey: string;
  rowKey: string;
  task_id?: string;
  reason: string;
  message: string;
  dequeue_count?: number;
  error?: string;
  failed_at: string;
};

function toLetter(capability: CapabilityName, e: DeadLetterEntity): DeadLetter {
  return {
    capability,
    id: e.rowKey,
    task_id: e.task_id ?? null,
    reason: e.reason,
    message: e.message,
    dequeue_count: e.dequeue_count ?? null,
    error: e.error ?? null,
    failed_at: e.failed_at,
  };
}

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
      ...(letter.error ? { error: letter.error.slice(0, 4000) } : {}),
    };
    await this.table.upsertEntity(entity, 'Replace');
  }

  /** One letter by its id, or undefined. */
  async get(capability: CapabilityName, id: string): Promise<DeadLetter | undefined> {
    try {
      const e = await this.table.getEntity<DeadLetterEntity>(capability, id);
      return toLetter(capability, e);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async list(capability: CapabilityName): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    const query = this.table.listEntities<DeadLetterEntity>({
      queryOptions: { filter: `PartitionKey eq '${capability}'` },
    });
    for await (const e of query) letters.push(toLetter(capability, e));
    return letters.sort((a, b) => a.failed_at.localeCompare(b.failed_at));
  }

  async remove(capability: CapabilityName, id: string): Promise<void> {
    await this.table.deleteEntity(capability, id);
  }

  /** Removes a letter if it is still there; false when it was already gone (a retry, requeue or delete took it). */
  async discard(capability: CapabilityName, id: string): Promise<boolean> {
    try {
      await this.remove(capability, id);
      return true;
    } catch (err) {
      if (isStatus(err, 404)) return false;
      throw err;
    }
  }

  /**
   * The ids of the letters that name a task of the job (keyed by task id for a run that gave up, by message id
   * for a garbled message): one query on the letters' task_id range `<job id>_…`.
   */
  async idsOfJob(capability: CapabilityName, jobId: string): Promise<string[]> {
    // '`' is the character after '_': the range holds exactly the task ids `<job id>_…`
    const filter = `PartitionKey eq '${capability}' and task_id ge '${jobId}_' and task_id lt '${jobId}${'`'}'`;
    const ids: string[] = [];
    for await (const letter of this.table.listEntities({ queryOptions: { filter, select: ['RowKey'] } }))
      ids.push(letter.rowKey!);
    return ids;
  }
}

/** A message still in a poison queue, as stored: its text decoded when it is base64, else raw. */
export interface PoisonMessage {
  readonly id: string;
  readonly text: string;
  /** `base64` as the trigger expects; `not_base64`: the host cannot decode it, so no function ever takes it. */
  readonly encoding: 'base64' | 'not_base64';
  readonly dequeue_count: number;
  readonly inserted_at: string | null;
}

/** The text of a stored message when it is strict base64 (Node skips bad characters; a round trip exposes them). */
export function decodeStrictBase64(messageText: string): string | undefined {
  const bytes = Buffer.from(messageText, 'base64');
  const unpadded = (text: string) => text.replace(/=+$/, '');
  return unpadded(bytes.toString('base64')) === unpadded(messageText) ? bytes.toString('utf8') : undefined;
}

/** How many messages of a poison queue are listed (one peek; the count says how many there are). */
export const PEEKED_POISON_MESSAGES = 32;

/**
 * The messages waiting in a capability's poison queue that are visible now (a message the host is
 * trying, or holding after a failed decode, is hidden until its lease ends; the queue's count
 * includes it).
 */
export async function peekPoisonQueue(storage: Storage, capability: CapabilityName): Promise<PoisonMessage[]> {
  const { peekedMessageItems } = await storage
    .poisonQueue(capability)
    .peekMessages({ numberOfMessages: PEEKED_POISON_MESSAGES });
  return peekedMessageItems.map((m) => {
    const decoded = decodeStrictBase64(m.messageText);
    return {
      id: m.messageId,
      text: decoded ?? m.messageText,
      encoding: decoded === undefined ? 'not_base64' : 'base64',
      dequeue_count: m.dequeueCount,
      inserted_at: m.insertedOn?.toISOString() ?? null,
    };
  });
}

export interface RequeueResult {
  readonly capability: CapabilityName;
  readonly queue: string;
  /** Dead letters and poison-queue messages put back on the queue. */
  readonly requeued: number;
  readonly skipped: readonly { readonly id: string; readonly reason: string }[];
}

/** Why a dead letter cannot be replayed: it is not a valid task message (replaying it changes nothing). */
function unreplayable(message: string): string | undefined {
  try {
    parseTaskMessage(message);
    return undefined;
  } catch (err) {
    return `not a valid task message (${err instanceof Error ? err.message.slice(0, 200) : String(err)})`;
  }
}

/**
 * Replays a capability's dead letters: each failed task goes back to queued and its message back on
 * the queue; a letter whose task succeeded or is already queued or running again is dropped; a letter
 * whose message is not a valid task message, or names no task, is skipped and kept. Messages still in
 * the poison queue (its function has not run yet) go back too when they are valid task messages;
 * the others are recorded as dead letters (reason not_base64 or invalid_message), so they stay visible.
 */
export async function requeueDeadLetters(storage: Storage, capability: CapabilityName): Promise<RequeueResult> {
  const letters = new DeadLetterStore(storage.deadLetters);
  const tasks = new TaskStore(storage.tasks);
  let requeued = 0;
  const skipped: { id: string; reason: string }[] = [];
  for (const letter of await letters.list(capability)) {
    const outcome = await replayLetter(storage, letters, tasks, letter);
    if (outcome.replayed) requeued += 1;
    else {
      skipped.push({ id: letter.id, reason: outcome.reason });
      if (outcome.taskStatus) await letters.remove(capability, letter.id);
    }
  }
  requeued += await drainPoisonQueue(storage, capability, letters);
  return { capability, queue: storage.names.queueOf(capability), requeued, skipped };
}

/** Why a letter was not replayed; `taskStatus` when its task exists but is not failed (nothing left to run). */
type ReplayOutcome =
  { readonly replayed: true } | { readonly replayed: false; readonly reason: string; readonly taskStatus?: string };

/** One dead letter back to work: its failed task to queued, its message on the queue, the letter removed. */
async function replayLetter(
  storage: Storage,
  letters: DeadLetterStore,
  tasks: TaskStore,
  letter: DeadLetter,
): Promise<ReplayOutcome> {
  const invalid = unreplayable(letter.message);
  if (invalid || !letter.task_id) return { replayed: false, reason: invalid ?? `no task to run (${letter.reason})` };
  const back = await tasks.requeue(letter.task_id);
  if (!back) return { replayed: false, reason: 'no such task' };
  if (!back.changed) {
    const status = back.task.record.status;
    return { replayed: false, reason: `task already ${status}`, taskStatus: status };
  }
  await enqueue(storage.queue(letter.capability), letter.message);
  await letters.remove(letter.capability, letter.id);
  // the task's job runs again: its completion callback, if any, is sent again for the state it ends in
  await reopenCallback(storage, back.task.record.job_id);
  return { replayed: true };
}

export type RequeueOneResult =
  | { readonly outcome: 'requeued'; readonly result: RequeueResult }
  | { readonly outcome: 'not_found' }
  | { readonly outcome: 'not_replayable' | 'task_not_failed'; readonly reason: string };

/**
 * Replays one dead letter (by its id, as listed) the way requeueDeadLetters replays each. A letter that cannot
 * run (not a valid task message, no task, or its task is not failed) stays where it is, and the outcome says
 * why. Messages still in the poison queue are not dead letters yet: the capability's requeue takes them.
 */
export async function requeueDeadLetter(
  storage: Storage,
  capability: CapabilityName,
  id: string,
): Promise<RequeueOneResult> {
  const letters = new DeadLetterStore(storage.deadLetters);
  const letter = await letters.get(capability, id);
  if (!letter) return { outcome: 'not_found' };
  const outcome = await replayLetter(storage, letters, new TaskStore(storage.tasks), letter);
  if (outcome.replayed) {
    const result = { capability, queue: storage.names.queueOf(capability), requeued: 1, skipped: [] };
    return { outcome: 'requeued', result };
  }
  return { outcome: outcome.taskStatus ? 'task_not_failed' : 'not_replayable', reason: outcome.reason };
}

async function drainPoisonQueue(
  storage: Storage,
  capability: CapabilityName,
  letters: DeadLetterStore,
): Promise<number> {
  const poison = storage.poisonQueue(capability);
  let moved = 0;
  for (;;) {
    const { receivedMessageItems: batch } = await poison.receiveMessages({
      numberOfMessages: 32,
      visibilityTimeout: 60,
    });
    if (batch.length === 0) return moved;
    for (const message of batch) {
      const text = decodeStrictBase64(message.messageText);
      const invalid = text === undefined ? 'not base64' : unreplayable(text);
      if (text !== undefined && !invalid) {
        await enqueue(storage.queue(capability), text);
        moved += 1;
      } else {
        await letters.record({
          capability,
          id: message.messageId,
          task_id: null,
          reason: text === undefined ? 'not_base64' : 'invalid_message',
          message: text ?? message.messageText,
          dequeue_count: null,
          error: invalid ?? null,
        });
      }
      await poison.deleteMessage(message.messageId, message.popReceipt);
    }
  }
}
