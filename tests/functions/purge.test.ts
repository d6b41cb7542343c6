/**
 * DELETE /api/tasks: every kind of task data goes, counted per kind; images, workers, metrics and
 * other namespaces stay.
 */
import net, { type AddressInfo } from 'node:net';
import { loadSettings } from '../../shared/config';
import { purgeRoutes } from '../../shared/http/purge';
import { jobRoutes } from '../../shared/http/jobs';
import { requestBudget, Storage } from '../../shared/storage/clients';
import { azuriteConnectionString } from '../../shared/storage/connection';
import { resourceNames } from '../../shared/storage/names';
import { enqueue } from '../../shared/storage/queue';
import { photo } from '../helpers/images';
import { call } from '../helpers/http';
import { uniqueNamespace, useAzurite } from '../helpers/storage';

const env = useAzurite();

/** Two tasks (records, messages), a result, a dead letter, a garbled poison message; images, a worker, a snapshot. */
async function populate(storage: Storage): Promise<void> {
  const image = await photo(32, 24, 'jpeg');
  await Promise.all(['a.jpg', 'b.jpg'].map((n) => storage.images.getBlockBlobClient(n).uploadData(image)));
  const submitted = await call(jobRoutes(() => storage).submitJob, {
    method: 'POST',
    path: '/api/jobs',
    body: { images: ['a.jpg', 'b.jpg'], filters: ['flip'] },
  });
  expect(submitted.status).toBe(202);
  await storage.processed.getBlockBlobClient('result.jpg').uploadData(image);
  await enqueue(storage.poisonQueue('heavy'), 'not a task');
  await storage.deadLetters.createEntity({
    partitionKey: 'light',
    rowKey: 'letter',
    reason: 'exhausted_retries',
    message: '{}',
    failed_at: new Date().toISOString(),
  });
  await storage.workers.createEntity({ partitionKey: 'w', rowKey: 'worker-1' });
  await storage.metrics.createEntity({ partitionKey: 'm', rowKey: 'snapshot-1' });
}

async function census(storage: Storage) {
  const count = async (items: AsyncIterable<unknown>) => {
    let n = 0;
    for await (const _ of items) n++;
    return n;
  };
  const queued = async (q: ReturnType<Storage['queue']>) => (await q.getProperties()).approximateMessagesCount ?? 0;
  return {
    tasks: await count(storage.tasks.listEntities()),
    jobs: await count(storage.jobs.listEntities()),
    deadLetters: await count(storage.deadLetters.listEntities()),
    messages:
      (await queued(storage.queue('light'))) +
      (await queued(storage.poisonQueue('light'))) +
      (await queued(storage.queue('heavy'))) +
      (await queued(storage.poisonQueue('heavy'))),
    results: await count(storage.processed.listBlobsFlat()),
    images: await count(storage.images.listBlobsFlat()),
    workers: await count(storage.workers.listEntities()),
    metrics: await count(storage.metrics.listEntities()),
  };
}

describe('DELETE /api/tasks', () => {
  it('deletes messages, task records, dead letters and results of its own storage only, and counts each', async () => {
    const mine = await env.storage();
    const other = await env.storage(); // another app's namespace in the same account
    await populate(mine);
    await populate(other);
    const before = await census(other);
    expect(before).toEqual({
      tasks: 2,
      jobs: 1,
      deadLetters: 1,
      messages: 3,
      results: 1,
      images: 2,
      workers: 1,
      metrics: 1,
    });

    const res = await call(purgeRoutes(() => mine).purgeTasks, { method: 'DELETE', path: '/api/tasks' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      queued_messages: {
        deleted: 3,
        queues: [
          mine.names.queueOf('light'),
          mine.names.poisonQueueOf('light'),
          mine.names.queueOf('heavy'),
          mine.names.poisonQueueOf('heavy'),
        ],
      },
      task_records: { deleted: 2, table: mine.names.tasksTable },
      job_records: { deleted: 1, table: mine.names.jobsTable },
      dead_letters: { deleted: 1, table: mine.names.deadLettersTable },
      processed_results: { deleted: 1, container: mine.names.processed },
      kept: [
        `images (container ${mine.names.images})`,
        `workers (table ${mine.names.workersTable})`,
        `metrics (table ${mine.names.metricsTable})`,
      ],
    });
    expect(await census(mine)).toEqual({
      tasks: 0,
      jobs: 0,
      deadLetters: 0,
      messages: 0,
      results: 0,
      images: 2,
      workers: 1,
      metrics: 1,
    });
    expect(await census(other)).toEqual(before);

    const again = await call(purgeRoutes(() => mine).purgeTasks, { method: 'DELETE', path: '/api/tasks' });
    expect(again.json).toMatchObject({
      queued_messages: { deleted: 0 },
      task_records: { deleted: 0 },
      job_records: { deleted: 0 },
      dead_letters: { deleted: 0 },
      processed_results: { deleted: 0 },
    });
  }, 30000);

  it('answers 503 storage_unavailable, promptly, when storage is not there', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve)); // nothing listens there any more
    const budget = requestBudget(loadSettings({ STORAGE_REQUEST_TIMEOUT_MS: '500' }));
    const gone = new Storage(
      azuriteConnectionString({ blob: port, queue: port, table: port }),
      resourceNames(uniqueNamespace()),
      budget,
    );
    const started = Date.now();
    const res = await call(purgeRoutes(() => gone).purgeTasks, { method: 'DELETE', path: '/api/tasks' });
    expect(Date.now() - started).toBeLessThan(8000);
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ type: 'urn:image-pipeline:problem:storage_unavailable' });
  });
});
