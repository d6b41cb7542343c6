/**
 * Nothing that ran out of retries is invisible: messages still in a poison queue are listed with their
 * text (raw when it is not base64, which no function can take), and requeue replays what can run and
 * keeps the rest as dead letters that say why.
 */
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { decodeMessageText, enqueue } from '../../../shared/storage/queue';
import { DeadLetterStore, peekPoisonQueue, requeueDeadLetters } from '../../../shared/tasks/dead-letters';
import { createJob } from '../../../shared/tasks/jobs';
import { TaskStore } from '../../../shared/tasks/store';
import { useAzurite } from '../../helpers/storage';

const env = useAzurite();

async function failedTask() {
  const storage = await env.storage();
  const job = await createJob(storage, ['a.jpg'], normalizeTaskSpec({ filters: ['flip'] }));
  const [m] = (await storage.queue('light').receiveMessages()).receivedMessageItems;
  await storage.queue('light').deleteMessage(m.messageId, m.popReceipt);
  const taskId = job.tasks[0].task_id;
  await new TaskStore(storage.tasks).fail(taskId, { type: 'worker_failure', reason: 'exhausted_retries', error: 'x' });
  return { storage, taskId, text: decodeMessageText(m.messageText) };
}

it('lists the messages in a poison queue with their text, raw when it is not base64', async () => {
  const { storage, text } = await failedTask();
  await enqueue(storage.poisonQueue('light'), text);
  await storage.poisonQueue('light').sendMessage('not base64 !!');
  const listed = await peekPoisonQueue(storage, 'light');
  expect(listed.map((m) => [m.encoding, m.text]).sort()).toEqual(
    [
      ['base64', text],
      ['not_base64', 'not base64 !!'],
    ].sort(),
  );
  expect(listed[0]).toMatchObject({ id: expect.any(String), dequeue_count: 0, inserted_at: expect.any(String) });
});

it('requeue replays valid messages and keeps the others as dead letters that say why', async () => {
  const { storage, taskId, text } = await failedTask();
  await enqueue(storage.poisonQueue('light'), text);
  await storage.poisonQueue('light').sendMessage('not base64 !!');
  const letters = new DeadLetterStore(storage.deadLetters);
  await letters.record({
    capability: 'light',
    id: 'garbled-1',
    task_id: taskId,
    reason: 'invalid_message_for_failed_task',
    message: '{"task_id":"nope"}',
    dequeue_count: 1,
    error: 'bad',
  });
  const result = await requeueDeadLetters(storage, 'light');
  expect(result.requeued).toBe(1);
  expect(result.skipped).toEqual([{ id: 'garbled-1', reason: expect.stringMatching(/^not a valid task message/) }]);
  const back = (await storage.queue('light').receiveMessages()).receivedMessageItems;
  expect(back.map((m) => decodeMessageText(m.messageText))).toEqual([text]);
  expect(await peekPoisonQueue(storage, 'light')).toEqual([]);
  const kept = await letters.list('light');
  expect(kept.map((l) => [l.reason, l.message]).sort()).toEqual(
    [
      ['invalid_message_for_failed_task', '{"task_id":"nope"}'],
      ['not_base64', 'not base64 !!'],
    ].sort(),
  );
  // the task of the replayed message stays failed until a worker claims it; nothing else changed it
  expect(await new TaskStore(storage.tasks).get(taskId)).toMatchObject({ status: 'failed' });
});

it('requeue puts a failed task back to queued once and drops the letter of a task that meanwhile succeeded', async () => {
  const { storage, taskId, text } = await failedTask();
  const letters = new DeadLetterStore(storage.deadLetters);
  const letter = {
    capability: 'light' as const,
    id: taskId,
    task_id: taskId,
    reason: 'exhausted_retries',
    message: text,
    dequeue_count: 5,
    error: 'gave up after 5 attempts',
  };
  await letters.record(letter);
  expect(await requeueDeadLetters(storage, 'light')).toMatchObject({ requeued: 1, skipped: [] });
  expect(await new TaskStore(storage.tasks).get(taskId)).toMatchObject({ status: 'queued', failure_reason: null });
  await letters.record(letter); // a stale letter for a task already back in the queue
  expect(await requeueDeadLetters(storage, 'light')).toMatchObject({
    requeued: 0,
    skipped: [{ id: taskId, reason: 'task already queued' }],
  });
  expect(await letters.list('light')).toEqual([]);
});
