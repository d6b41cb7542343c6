/**
 * The normal path claims a task without reading its record: the task message carries the ETag of the
 * record as the job created it, and the claim is written guarded by it. Any other version of the
 * record (a copy, a retry, a replayed dead letter, a record changed by hand), an ETag that is not one
 * entity tag, or none at all takes the read path and behaves as it always did. Transitions write only
 * the columns they change, and replace the record only to remove a column.
 */
import type { TableClient } from '@azure/data-tables';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import type { Storage } from '../../../shared/storage/clients';
import { decodeMessageText } from '../../../shared/storage/queue';
import type { TaskResult } from '../../../shared/storage/images';
import { createJob } from '../../../shared/tasks/jobs';
import { asCreated, TaskStore, type StoredTask } from '../../../shared/tasks/store';
import { processTaskMessage } from '../../../shared/tasks/worker';
import { photo } from '../../helpers/images';
import { useAzurite } from '../../helpers/storage';
import { workerDeps } from '../../helpers/worker';

const env = useAzurite();

interface TableCalls {
  reads: number;
  /** The mode of each update, and whether the server took it. */
  writes: { mode: string; status: number | 'ok' }[];
}

/** The same storage, recording every read and update of the tasks table; `reject` may answer an update instead. */
function countingTable(
  storage: Storage,
  reject?: (etag: string | undefined) => Error | undefined,
): { storage: Storage; calls: TableCalls } {
  const calls: TableCalls = { reads: 0, writes: [] };
  const table = Object.create(storage.tasks) as TableClient;
  table.getEntity = (...args: Parameters<TableClient['getEntity']>) => {
    calls.reads += 1;
    return storage.tasks.getEntity(...args);
  };
  table.updateEntity = async (...args: Parameters<TableClient['updateEntity']>) => {
    const [, mode = 'Merge', options] = args;
    const write = { mode, status: 'ok' as number | 'ok' };
    calls.writes.push(write);
    try {
      const refused = reject?.(options?.etag);
      if (refused) throw refused;
      return await storage.tasks.updateEntity(...args);
    } catch (err) {
      write.status = (err as { statusCode?: number }).statusCode ?? -1;
      throw err;
    }
  };
  const counted = Object.create(storage) as Storage;
  Object.defineProperty(counted, 'tasks', { value: table });
  return { storage: counted, calls };
}

async function setUp() {
  const storage = await env.storage();
  await storage.images.getBlockBlobClient('a.jpg').uploadData(await photo(64, 48, 'jpeg'));
  await storage.images.getBlockBlobClient('b.jpg').uploadData(await photo(32, 24, 'jpeg'));
  const job = await createJob(storage, ['a.jpg'], normalizeTaskSpec({ filters: ['grayscale'] }));
  const [m] = (await storage.queue('light').receiveMessages()).receivedMessageItems;
  await storage.queue('light').deleteMessage(m.messageId, m.popReceipt);
  const message = JSON.parse(decodeMessageText(m.messageText)) as Record<string, unknown>;
  const taskId = job.tasks[0].task_id;
  const entity = () => storage.tasks.getEntity<Record<string, unknown>>(job.job_id, taskId);
  return { storage, job, taskId, message, tasks: new TaskStore(storage.tasks), entity };
}

const RESULT: TaskResult = { blob: 'x.jpg', format: 'jpeg', content_type: 'image/jpeg', width: 1, height: 1, bytes: 1 };

describe('a task message carries the ETag of its record as created', () => {
  it('createJob puts each record ETag in its message, exactly the ETag the table holds', async () => {
    const { message, entity } = await setUp();
    expect(message.etag).toEqual(expect.stringMatching(/^W\/"[^\r\n]+"$/));
    expect(message.etag).toBe((await entity()).etag);
  });

  it('create returns every record with its ETag, matched by row key across batches of 100', async () => {
    const storage = await env.storage();
    const jobId = '00000000-0000-4000-8000-000000000001';
    const spec = normalizeTaskSpec({ filters: ['flip'] });
    const created = await new TaskStore(storage.tasks).create(
      Array.from({ length: 150 }, (_, i) => ({
        task_id: `${jobId}_${String(i).padStart(4, '0')}`,
        job_id: jobId,
        image: `i${i}.jpg`,
        filters: spec.filters,
        output_spec: spec.encoding,
        capability: 'light' as const,
        queue: 'q',
      })),
    );
    expect(created).toHaveLength(150);
    for (const { record, etag } of [created[0], created[99], created[100], created[149]]) {
      expect(etag).toBe((await storage.tasks.getEntity(jobId, record.task_id)).etag);
    }
    expect(created.every((c) => c.etag !== undefined)).toBe(true);
  });
});

describe('the normal path', () => {
  it('claims and completes a task from createJob with two writes of its record and no read', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    const counting = countingTable(storage);
    expect(await processTaskMessage(Buffer.from(JSON.stringify(message)), workerDeps(counting.storage))).toBe(
      'succeeded',
    );
    expect(counting.calls).toEqual({
      reads: 0,
      writes: [
        { mode: 'Merge', status: 'ok' },
        { mode: 'Merge', status: 'ok' },
      ],
    });
    expect(await tasks.get(taskId)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      worker_id: 'w-new',
      image: 'a.jpg',
      queue: storage.names.queueOf('light'),
      failure_type: null,
      output: { blob: `${taskId}.jpg` },
    });
  });

  it('a message without an etag (hand-written, or older) reads the record first, as before', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    const counting = countingTable(storage);
    const { etag: _, ...old } = message;
    expect(await processTaskMessage(old, workerDeps(counting.storage))).toBe('succeeded');
    expect(counting.calls.reads).toBe(1);
    expect(counting.calls.writes.map((w) => w.status)).toEqual(['ok', 'ok']);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });
});

describe('a stale etag takes the read path and behaves as before', () => {
  it('a task another worker started and still runs: the write is refused (412), the copy is deferred', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    await tasks.start(taskId, 'w-old');
    const counting = countingTable(storage);
    const isClaimRunning = () => Promise.resolve(true);
    expect(await processTaskMessage(message, workerDeps(counting.storage, { isClaimRunning }))).toBe('deferred');
    expect(counting.calls).toEqual({ reads: 1, writes: [{ mode: 'Merge', status: 412 }] });
    expect(await tasks.get(taskId)).toMatchObject({ status: 'processing', worker_id: 'w-old', attempts: 1 });
  });

  it('a task that succeeded is acknowledged without work', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    expect(await processTaskMessage(message, workerDeps(storage))).toBe('succeeded');
    const counting = countingTable(storage);
    expect(await processTaskMessage(message, workerDeps(counting.storage))).toBe('already_succeeded');
    expect(counting.calls).toEqual({ reads: 1, writes: [{ mode: 'Merge', status: 412 }] });
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('a failed task requeued (a replayed dead letter) is claimed again and its failure is gone', async () => {
    const { storage, taskId, message, tasks, entity } = await setUp();
    await tasks.fail(taskId, { type: 'worker_failure', reason: 'exhausted_retries', error: 'gave up' });
    await tasks.requeue(taskId);
    expect(Object.keys(await entity())).not.toContain('failure_type'); // requeue removed the columns
    const counting = countingTable(storage);
    expect(await processTaskMessage(message, workerDeps(counting.storage))).toBe('succeeded');
    expect(counting.calls.reads).toBe(1);
    expect(await tasks.get(taskId)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      failure_type: null,
      failure_reason: null,
      error: null,
    });
  });

  it('a message for a task that does not exist (never created, or purged) goes to poison, as before', async () => {
    const { storage, job, message } = await setUp();
    const missing = { ...message, task_id: `${job.job_id}_0001` };
    const counting = countingTable(storage);
    expect(await processTaskMessage(missing, workerDeps(counting.storage))).toBe('sent_to_poison');
    expect(counting.calls).toEqual({ reads: 1, writes: [{ mode: 'Merge', status: 404 }] });
    const [poisoned] = (await storage.poisonQueue('light').receiveMessages()).receivedMessageItems;
    expect(JSON.parse(decodeMessageText(poisoned.messageText))).toEqual(missing);
  });

  it('a retry of a delivery that failed after its claim takes its claim over', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    await tasks.start(taskId, 'w-new');
    expect(await processTaskMessage(message, workerDeps(storage))).toBe('succeeded');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });
});

describe('an etag that is no entity tag of this record never loses the task', () => {
  it.each([['nonsense'], ['"nonsense"'], ['W/"datetime\'2001-01-01T00%3A00%3A00.0000000Z\'"'], ['']])(
    'etag %j: the task is read and processed',
    async (etag) => {
      const { storage, taskId, message, tasks } = await setUp();
      expect(await processTaskMessage({ ...message, etag }, workerDeps(storage))).toBe('succeeded');
      expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
    },
  );

  it('"*" (or a list) is never sent as If-Match: it would match a task another worker runs', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    await tasks.start(taskId, 'w-old');
    const isClaimRunning = () => Promise.resolve(true);
    for (const etag of ['*', `${String(message.etag)}, *`]) {
      const counting = countingTable(storage);
      expect(await processTaskMessage({ ...message, etag }, workerDeps(counting.storage, { isClaimRunning }))).toBe(
        'deferred',
      );
      expect(counting.calls).toEqual({ reads: 1, writes: [] });
    }
    expect(await tasks.get(taskId)).toMatchObject({ status: 'processing', worker_id: 'w-old', attempts: 1 });
  });

  it('a server that finds the If-Match malformed (400) sends the claim to the read path', async () => {
    const { storage, taskId, message, tasks } = await setUp();
    const malformed = Object.assign(new Error('InvalidInput'), { name: 'RestError', statusCode: 400 });
    const etag = 'W/"unparseable\\tag"';
    const counting = countingTable(storage, (ifMatch) => (ifMatch === etag ? malformed : undefined));
    expect(await processTaskMessage({ ...message, etag }, workerDeps(counting.storage))).toBe('succeeded');
    expect(counting.calls.reads).toBe(1);
    expect(counting.calls.writes.map((w) => w.status)).toEqual([400, 'ok', 'ok']);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });
});

describe('an etag that is not a string of at most 256 characters fails the message like any bad field', () => {
  it.each([
    [42, '42 of type number'],
    [null, 'null'],
    [{ a: 1 }, 'an object with keys a'],
    ['x'.repeat(257), 'a string of 257 characters'],
  ])('etag %j', async (etag, received) => {
    const { storage, taskId, message, tasks } = await setUp();
    expect(await processTaskMessage({ ...message, etag }, workerDeps(storage))).toBe('failed');
    expect(await tasks.get(taskId)).toMatchObject({
      status: 'failed',
      failure_type: 'job_failure',
      failure_reason: 'invalid_message',
      error: expect.stringContaining(
        `Expected the task record's ETag, a string of at most 256 characters for etag but received ${received}`,
      ),
    });
  });
});

describe('transitions write only what they change', () => {
  const presumed = (record: StoredTask['record'], etag: string): StoredTask => ({ record, etag });

  it('a claim from the message never writes back a column it does not own', async () => {
    const { job, taskId, message, tasks, entity } = await setUp();
    const asWritten = job.tasks[0];
    // the record is still the version the etag names, but the message says another image and queue
    const fromMessage = asCreated({ ...asWritten, image: 'b.jpg', queue: 'elsewhere' }, asWritten.created_at);
    const start = await tasks.start(presumed(fromMessage, String(message.etag)), 'w-new');
    expect(start?.changed).toBe(true);
    expect(await entity()).toMatchObject({ image: 'a.jpg', queue: asWritten.queue, status: 'processing' });
    await tasks.succeed(start!.task, RESULT, 5);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', image: 'a.jpg', queue: asWritten.queue });
  });

  it('a record changed by hand refuses the claim from the message (412), and the read path keeps the change', async () => {
    const { storage, job, taskId, message, tasks, entity } = await setUp();
    await storage.tasks.updateEntity({ partitionKey: job.job_id, rowKey: taskId, image: 'b.jpg' }, 'Merge');
    const counting = countingTable(storage);
    const store = new TaskStore(counting.storage.tasks);
    const start = await store.start(presumed(job.tasks[0], String(message.etag)), 'w-new');
    expect(counting.calls).toEqual({
      reads: 1,
      writes: [
        { mode: 'Merge', status: 412 },
        { mode: 'Merge', status: 'ok' },
      ],
    });
    expect(start?.task.record).toMatchObject({ image: 'b.jpg', status: 'processing', attempts: 1 });
    expect(await entity()).toMatchObject({ image: 'b.jpg', status: 'processing' });
    await tasks.succeed(start!.task, RESULT, 5);
    expect(await entity()).toMatchObject({ image: 'b.jpg', status: 'succeeded' });
  });

  it('a transition that clears a column the record has removes it (Replace), guarded all the same', async () => {
    const { storage, job, taskId, tasks, entity } = await setUp();
    await tasks.start(taskId, 'w-old');
    const failure = { failure_type: 'worker_failure', failure_reason: 'left_over', error: 'by hand' };
    await storage.tasks.updateEntity({ partitionKey: job.job_id, rowKey: taskId, ...failure }, 'Merge');
    const counting = countingTable(storage);
    const store = new TaskStore(counting.storage.tasks);
    const start = await store.start(taskId, 'w-new', () => Promise.resolve(false));
    expect(start?.task.record).toMatchObject({ worker_id: 'w-new', attempts: 2, failure_reason: 'left_over' });
    expect(await store.succeed(start!.task, RESULT, 5)).toMatchObject({ changed: true });
    expect(counting.calls.writes.map((w) => w.mode)).toEqual(['Merge', 'Replace']);
    const stored = await entity();
    for (const column of Object.keys(failure)) expect(Object.keys(stored)).not.toContain(column);
    expect(stored).toMatchObject({ status: 'succeeded', image: 'a.jpg', worker_id: 'w-new', attempts: 2 });
  });
});
