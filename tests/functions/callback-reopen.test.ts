/**
 * A job's completion callback after the job was final and went back to work (POST /api/jobs/{id}/retry, a
 * dead-letter requeue): the job's next final state is sent as a new event, and no attempt ever sends an event
 * for a job that is not final. On Azurite, with a real HTTP receiver; the callbacks queue is drained as the
 * host drains it (receive, run the handler, delete), honouring each message's visibility delay.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSettings, type Settings } from '../../shared/config';
import { deadLetterRoutes } from '../../shared/http/dead-letters';
import { jobActionRoutes } from '../../shared/http/job-actions';
import { jobRoutes } from '../../shared/http/jobs';
import type { Storage } from '../../shared/storage/clients';
import { decodeMessageText, enqueue } from '../../shared/storage/queue';
import { getCallback, processCallbackMessage, type CallbackOutcome } from '../../shared/tasks/callbacks';
import { DeadLetterStore } from '../../shared/tasks/dead-letters';
import { buildTaskMessage } from '../../shared/tasks/message';
import { TaskStore } from '../../shared/tasks/store';
import { processTaskMessage } from '../../shared/tasks/worker';
import { waitFor } from '../helpers/host';
import { call } from '../helpers/http';
import { photo } from '../helpers/images';
import { useAzurite } from '../helpers/storage';
import { workerDeps } from '../helpers/worker';

const env = useAzurite();

const settings: Settings = loadSettings({
  CALLBACK_SECRET: 's'.repeat(48),
  CALLBACK_ALLOW_PRIVATE: 'true',
  CALLBACK_MAX_ATTEMPTS: '5',
  CALLBACK_TIMEOUT_MS: '500',
  CALLBACK_RETRY_BASE_SECONDS: '1',
});

interface Delivery {
  readonly eventId: string;
  readonly event: { type: string; status: string; counts: Record<string, number> };
}

/** A receiver that answers 500 to the first `failures` requests, then 204. */
async function receiver(failures = 0) {
  const deliveries: Delivery[] = [];
  let seen = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({
        eventId: String(req.headers['x-event-id']),
        event: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Delivery['event'],
      });
      seen += 1;
      if (seen <= failures) res.writeHead(500).end('down');
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    deliveries,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Runs every visible callbacks message through the handler until `until` holds. */
async function drainCallbacks(storage: Storage, until: () => Promise<boolean> | boolean): Promise<CallbackOutcome[]> {
  const outcomes: CallbackOutcome[] = [];
  await waitFor(
    'the callbacks queue to get there',
    async () => {
      const queue = storage.callbackQueue();
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 60 });
      for (const m of receivedMessageItems) {
        outcomes.push(await processCallbackMessage(decodeMessageText(m.messageText), { storage, settings }));
        await queue.deleteMessage(m.messageId, m.popReceipt);
      }
      return (await until()) ? true : undefined;
    },
    30000,
    100,
  );
  return outcomes;
}

/** Runs the light queue's task messages through a worker. */
async function runTasks(storage: Storage): Promise<string[]> {
  const queue = storage.queue('light');
  const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
  const outcomes = [];
  for (const m of receivedMessageItems) {
    outcomes.push(await processTaskMessage(decodeMessageText(m.messageText), workerDeps(storage)));
    await queue.deleteMessage(m.messageId, m.popReceipt);
  }
  return outcomes;
}

/** A job of one image that fails (the image is deleted before the worker reads it), with a callback to `url`. */
async function failedJobWithCallback(storage: Storage, url: string): Promise<string> {
  await storage.images.getBlockBlobClient('a.png').uploadData(await photo(40, 30, 'png'));
  const submitted = await call(jobRoutes(() => storage, settings).submitJob, {
    method: 'POST',
    path: '/api/jobs',
    body: { images: ['a.png'], filters: ['grayscale'], callback_url: url },
  });
  expect(submitted.status).toBe(202);
  await storage.images.deleteBlob('a.png');
  expect(await runTasks(storage)).toEqual(['failed']);
  return submitted.json.job_id as string;
}

const retry = (storage: Storage, jobId: string) =>
  call(jobActionRoutes(() => storage).retryJob, {
    method: 'POST',
    path: `/api/jobs/${jobId}/retry`,
    params: { job_id: jobId },
  });

it('a retried job that ends again is sent again: a new event, with a new id, for the state it ends in', async () => {
  const storage = await env.storage();
  const hook = await receiver();
  try {
    const jobId = await failedJobWithCallback(storage, hook.url);
    await drainCallbacks(storage, async () => (await getCallback(storage, jobId))?.state === 'delivered');
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed']);
    const first = await getCallback(storage, jobId);

    await storage.images.getBlockBlobClient('a.png').uploadData(await photo(40, 30, 'png'));
    const retried = await retry(storage, jobId);
    expect(retried.json.requeued).toEqual([`${jobId}_0000`]);
    // the registration waits for the job again, for a new event
    const reopened = await getCallback(storage, jobId);
    expect(reopened).toMatchObject({ state: 'pending', attempts: 0, delivered_at: null, last_status: null });
    expect(reopened?.event_id).not.toBe(first?.event_id);

    expect(await runTasks(storage)).toEqual(['succeeded']);
    await drainCallbacks(storage, () => hook.deliveries.length === 2);
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed', 'job.succeeded']);
    expect(hook.deliveries[1].eventId).toBe(reopened?.event_id);
    expect(hook.deliveries[1].eventId).not.toBe(hook.deliveries[0].eventId);
    await waitFor('the second event recorded', async () =>
      (await getCallback(storage, jobId))?.state === 'delivered' ? true : undefined,
    );
    // a retry with nothing failed re-arms nothing
    expect((await retry(storage, jobId)).json.requeued).toEqual([]);
    expect((await getCallback(storage, jobId))?.state).toBe('delivered');
  } finally {
    await hook.close();
  }
}, 90000);

it('an attempt that finds the job running again sends nothing, and the job is announced once it ends', async () => {
  const storage = await env.storage();
  // the first attempt fails, so the registration is `delivering` (a new attempt waits) when the task goes back
  const hook = await receiver(1);
  try {
    const jobId = await failedJobWithCallback(storage, hook.url);
    await drainCallbacks(storage, async () => (await getCallback(storage, jobId))?.state === 'delivering');
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed']);

    // the task goes back to work by a path that does not re-arm the callback (a requeue written directly)
    const back = await new TaskStore(storage.tasks).requeue(`${jobId}_0000`);
    expect(back?.changed).toBe(true);
    const { record, etag } = back!.task;
    const spec = { filters: record.filters, encoding: record.output_spec };
    await enqueue(storage.queue('light'), buildTaskMessage(record, spec, new Date(record.created_at), etag));
    // the waiting attempt comes (1 s later): it must not announce a job that is queued again
    await drainCallbacks(
      storage,
      async () => hook.deliveries.length > 1 || (await getCallback(storage, jobId))?.state === 'pending',
    );
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed']);
    const waiting = await getCallback(storage, jobId);
    expect(waiting).toMatchObject({ state: 'pending', attempts: 0, next_attempt_at: null });

    await storage.images.getBlockBlobClient('a.png').uploadData(await photo(40, 30, 'png'));
    expect(await runTasks(storage)).toEqual(['succeeded']);
    await drainCallbacks(storage, () => hook.deliveries.length === 2);
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed', 'job.succeeded']);
    // a new outcome under a new id: a receiver that kept the first id does not drop it as a duplicate
    expect(hook.deliveries[1].eventId).toBe(waiting?.event_id);
    expect(hook.deliveries[1].eventId).not.toBe(hook.deliveries[0].eventId);
  } finally {
    await hook.close();
  }
}, 90000);

it('a dead-letter requeue of a task of a final job re-arms its callback', async () => {
  const storage = await env.storage();
  const hook = await receiver();
  try {
    const jobId = await failedJobWithCallback(storage, hook.url);
    await drainCallbacks(storage, async () => (await getCallback(storage, jobId))?.state === 'delivered');
    const taskId = `${jobId}_0000`;
    const task = await new TaskStore(storage.tasks).get(taskId);
    await new DeadLetterStore(storage.deadLetters).record({
      capability: 'light',
      id: taskId,
      task_id: taskId,
      reason: 'exhausted_retries',
      message: JSON.stringify(
        buildTaskMessage(task!, { filters: task!.filters, encoding: task!.output_spec }, new Date(task!.created_at)),
      ),
      dequeue_count: 5,
      error: 'gave up',
    });
    await storage.images.getBlockBlobClient('a.png').uploadData(await photo(40, 30, 'png'));
    const res = await call(deadLetterRoutes(() => storage).requeueOne, {
      method: 'POST',
      path: `/api/dead-letters/light/${taskId}/requeue`,
      params: { capability: 'light', id: taskId },
    });
    expect(res.status).toBe(200);
    expect((await getCallback(storage, jobId))?.state).toBe('pending');
    expect(await runTasks(storage)).toEqual(['succeeded']);
    await drainCallbacks(storage, () => hook.deliveries.length === 2);
    expect(hook.deliveries.map((d) => d.event.type)).toEqual(['job.failed', 'job.succeeded']);
  } finally {
    await hook.close();
  }
}, 90000);
