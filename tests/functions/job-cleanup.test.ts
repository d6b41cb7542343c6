/**
 * What a job retry and a job delete leave behind elsewhere: a retried task's dead letter leaves the list (as a
 * dead-letter requeue removes it), and a deleted job takes its tasks' dead letters and its callback
 * registration with it, never another job's. Through real HttpRequests against Azurite.
 */
import { randomUUID } from 'node:crypto';
import { loadSettings } from '../../shared/config';
import { deadLetterRoutes } from '../../shared/http/dead-letters';
import { jobActionRoutes } from '../../shared/http/job-actions';
import { normalizeTaskSpec } from '../../shared/imaging/spec';
import type { Storage } from '../../shared/storage/clients';
import { getCallback, processCallbackMessage, registerCallback } from '../../shared/tasks/callbacks';
import { DeadLetterStore } from '../../shared/tasks/dead-letters';
import { createJob } from '../../shared/tasks/jobs';
import { giveUp } from '../helpers/dead-letters';
import { call } from '../helpers/http';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();

/**
 * A job of `count` light tasks that ran out of retries, each recorded as a dead letter under its task id (as the
 * poison function records them), its messages taken off the queue.
 */
async function deadJob(storage: Storage, count: number, callbackUrl?: string) {
  const jobId = randomUUID();
  if (callbackUrl) await registerCallback(storage, jobId, callbackUrl, 'http://localhost:7071/api');
  const images = Array.from({ length: count }, (_, i) => `img-${i}.jpg`);
  const job = await createJob(storage, images, normalizeTaskSpec({ filters: ['flip'] }), new Date(), jobId);
  const queue = storage.queue('light');
  const received = [];
  while (received.length < count) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    received.push(...receivedMessageItems);
  }
  for (const m of received) await giveUp(storage, m);
  return { jobId, taskIds: job.tasks.map((t) => t.task_id) };
}

const letterIds = async (storage: Storage) =>
  (await new DeadLetterStore(storage.deadLetters).list('light')).map((l) => l.id).sort();

it("a retry takes the retried tasks' dead letters off the list (their Requeue would answer 409)", async () => {
  const storage = await env.storage();
  const { jobId, taskIds } = await deadJob(storage, 2);
  const other = await deadJob(storage, 1);
  expect(await letterIds(storage)).toEqual([...taskIds, ...other.taskIds].sort());

  const retried = await call(jobActionRoutes(() => storage).retryJob, {
    method: 'POST',
    path: `/api/jobs/${jobId}/retry`,
    params: { job_id: jobId },
  });
  expect([retried.status, retried.json.requeued]).toEqual([200, taskIds]);
  expect(await letterIds(storage)).toEqual(other.taskIds);

  // the other job's letter still replays
  const requeued = await call(deadLetterRoutes(() => storage).requeueOne, {
    method: 'POST',
    path: `/api/dead-letters/light/${other.taskIds[0]}/requeue`,
    params: { capability: 'light', id: other.taskIds[0] },
  });
  expect(requeued.status).toBe(200);
});

it("a delete takes the job's dead letters (by task id and garbled ones naming its tasks) and its callback", async () => {
  const storage = await env.storage();
  const { jobId, taskIds } = await deadJob(storage, 2, 'https://hooks.example.com/done');
  const other = await deadJob(storage, 1, 'https://hooks.example.com/other');
  // a garbled message that named a task of the job: recorded under its message id
  await new DeadLetterStore(storage.deadLetters).record({
    capability: 'light',
    id: 'message-id-of-garbage',
    task_id: taskIds[0],
    reason: 'invalid_message_for_failed_task',
    message: '{"task_id":"…"}',
    dequeue_count: null,
    error: 'not a task message',
  });

  const deleted = await call(jobActionRoutes(() => storage).deleteJob, {
    method: 'DELETE',
    path: `/api/jobs/${jobId}`,
    params: { job_id: jobId },
  });
  expect(deleted.status).toBe(200);
  expect(deleted.json.deleted).toEqual({
    task_records: 2,
    results: 0,
    job_record: true,
    dead_letters: 3,
    callback: true,
  });
  expect(await letterIds(storage)).toEqual(other.taskIds);
  expect(await getCallback(storage, jobId)).toBeUndefined();
  expect(await getCallback(storage, other.jobId)).toMatchObject({ state: 'pending' });

  // the deleted job's pending check is dropped when it comes, instead of waiting for tasks that are gone
  const settings = loadSettings({ CALLBACK_SECRET: 's'.repeat(48) });
  const check = JSON.stringify({ v: 1, job_id: jobId, seq: 0 });
  expect(await processCallbackMessage(check, { storage, settings })).toBe('unknown_job');
});
