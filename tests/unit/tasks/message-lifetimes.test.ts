/**
 * Every message the app sends never expires (time-to-live -1), on Azurite: a task message, a retried or
 * requeued one, a deferred copy, a garbled one sent to poison and every callback message. With the
 * service default (7 days) a task whose message expired stayed queued for ever, its job never ended and
 * nobody was told. Messages sent with a visibility delay are read once they show.
 */
import { randomUUID } from 'node:crypto';
import type { QueueClient, ReceivedMessageItem } from '@azure/storage-queue';
import { loadSettings } from '../../../shared/config';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import type { Storage } from '../../../shared/storage/clients';
import { decodeMessageText, enqueue, MESSAGE_TIME_TO_LIVE_SECONDS } from '../../../shared/storage/queue';
import { processCallbackMessage, registerCallback } from '../../../shared/tasks/callbacks';
import { DeadLetterStore, requeueDeadLetter, requeueDeadLetters } from '../../../shared/tasks/dead-letters';
import { retryJob } from '../../../shared/tasks/job-actions';
import { createJob } from '../../../shared/tasks/jobs';
import { TaskStore } from '../../../shared/tasks/store';
import { processTaskMessage } from '../../../shared/tasks/worker';
import { waitFor } from '../../helpers/host';
import { useAzurite } from '../../helpers/storage';
import { workerDeps } from '../../helpers/worker';

const env = useAzurite();

/** What the storage service answers for a message sent with time-to-live -1 (Azure and Azurite alike). */
const NEVER = new Date('9999-12-31T23:59:59Z');
const DAY_MS = 24 * 60 * 60 * 1000;

/** The next message of a queue once it is visible (a delayed one shows after its delay), taken off the queue. */
async function next(queue: QueueClient): Promise<ReceivedMessageItem & { text: string }> {
  const m = await waitFor(
    `a message on ${queue.name}`,
    async () => (await queue.receiveMessages({ visibilityTimeout: 30 })).receivedMessageItems[0],
    10000,
    100,
  );
  await queue.deleteMessage(m.messageId, m.popReceipt);
  return { ...m, text: decodeMessageText(m.messageText) };
}

/** Whole seconds: the service keeps message times to the second. */
const neverExpires = (m: ReceivedMessageItem) =>
  expect(Math.floor(m.expiresOn.getTime() / 1000)).toBe(Math.floor(NEVER.getTime() / 1000));

const flipSpec = () => normalizeTaskSpec({ filters: ['flip'] });

/** A job of one light task whose message was taken off the queue and whose task failed. */
async function failedTask(storage: Storage) {
  const job = await createJob(storage, ['a.jpg'], flipSpec());
  const message = await next(storage.queue('light'));
  const taskId = job.tasks[0].task_id;
  await new TaskStore(storage.tasks).fail(taskId, { type: 'worker_failure', reason: 'exhausted_retries', error: 'x' });
  return { jobId: job.job_id, taskId, text: message.text };
}

it('enqueue sends with time-to-live -1, and the service keeps such a message for ever', async () => {
  expect(MESSAGE_TIME_TO_LIVE_SECONDS).toBe(-1);
  const storage = await env.storage();
  await enqueue(storage.queue('light'), { hello: 'forever' });
  const [peeked] = (await storage.queue('light').peekMessages()).peekedMessageItems;
  expect(Math.floor(peeked.expiresOn.getTime() / 1000)).toBe(Math.floor(NEVER.getTime() / 1000));
});

it("a job's task messages never expire (a capability with no worker for a week keeps its work)", async () => {
  const storage = await env.storage();
  await createJob(storage, ['a.jpg', 'b.jpg'], normalizeTaskSpec({ filters: ['blur'] }));
  neverExpires(await next(storage.queue('heavy')));
  neverExpires(await next(storage.queue('heavy')));
});

it("a retried job's messages never expire", async () => {
  const storage = await env.storage();
  const { jobId, taskId } = await failedTask(storage);
  expect(await retryJob(storage, jobId)).toMatchObject({ requeued: [taskId] });
  const back = await next(storage.queue('light'));
  expect(JSON.parse(back.text)).toMatchObject({ task_id: taskId });
  neverExpires(back);
});

it('a requeued dead letter never expires, one letter or all of them', async () => {
  const storage = await env.storage();
  const letters = new DeadLetterStore(storage.deadLetters);
  for (const replay of [
    (id: string) => requeueDeadLetter(storage, 'light', id),
    () => requeueDeadLetters(storage, 'light'),
  ]) {
    const { taskId, text } = await failedTask(storage);
    const letter = { capability: 'light' as const, id: taskId, task_id: taskId, reason: 'exhausted_retries' };
    await letters.record({ ...letter, message: text, dequeue_count: 5, error: 'gave up after 5 attempts' });
    await replay(taskId);
    const back = await next(storage.queue('light'));
    expect(back.text).toBe(text);
    neverExpires(back);
  }
});

it("a message requeued straight from the poison queue drops the host's 7 days and never expires", async () => {
  const storage = await env.storage();
  const { text } = await failedTask(storage);
  // as the host copies a message to -poison: its text, sent with the service default time-to-live
  await storage.poisonQueue('light').sendMessage(Buffer.from(text).toString('base64'));
  const [poisoned] = (await storage.poisonQueue('light').peekMessages()).peekedMessageItems;
  expect(poisoned.expiresOn.getTime() - poisoned.insertedOn.getTime()).toBe(7 * DAY_MS);
  expect(await requeueDeadLetters(storage, 'light')).toMatchObject({ requeued: 1 });
  neverExpires(await next(storage.queue('light')));
});

it('a copy deferred behind a live claim never expires', async () => {
  const storage = await env.storage();
  await createJob(storage, ['a.jpg'], flipSpec());
  const { text } = await next(storage.queue('light'));
  const tasks = new TaskStore(storage.tasks);
  await tasks.start(JSON.parse(text).task_id, 'w-old', undefined, new Date(Date.now() - 1000));
  const deps = workerDeps(storage, { deadAfterMs: 1000, isClaimRunning: () => Promise.resolve(true) });
  expect(await processTaskMessage(Buffer.from(text), deps)).toBe('deferred');
  const deferred = await next(storage.queue('light'));
  expect(deferred.text).toBe(text);
  neverExpires(deferred);
});

it('a garbled message the worker sends to poison never expires (it stays until the poison function records it)', async () => {
  const storage = await env.storage();
  expect(await processTaskMessage('not json at all', workerDeps(storage))).toBe('sent_to_poison');
  const poisoned = await next(storage.poisonQueue('light'));
  expect(poisoned.text).toBe('not json at all');
  neverExpires(poisoned);
});

describe('callback messages never expire', () => {
  const settings = loadSettings({ CALLBACK_RETRY_BASE_SECONDS: '1' }); // no CALLBACK_SECRET: every delivery fails

  it("the first check, a check while the job runs, and a delivery's retry", async () => {
    const storage = await env.storage();
    const jobId = randomUUID();
    await registerCallback(storage, jobId, 'https://example.com/hook', 'http://localhost:7071/api');
    const job = await createJob(storage, ['a.jpg'], flipSpec(), new Date(), jobId);
    const first = await next(storage.callbackQueue());
    neverExpires(first);
    expect(await processCallbackMessage(first.text, { storage, settings })).toBe('waiting');
    const check = await next(storage.callbackQueue());
    neverExpires(check);
    await new TaskStore(storage.tasks).fail(job.tasks[0].task_id, { type: 'job_failure', reason: 't', error: 'x' });
    expect(await processCallbackMessage(check.text, { storage, settings })).toBe('retrying');
    neverExpires(await next(storage.callbackQueue()));
  });
});
