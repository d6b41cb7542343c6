import { resourceNames } from '../../../shared/storage/names';
import type { Storage } from '../../../shared/storage/clients';
import sharp from 'sharp';
import { decodeMessageText } from '../../../shared/storage/queue';
import { createJob } from '../../../shared/tasks/jobs';
import { normalizeTaskSpec, type TaskSpecInput } from '../../../shared/imaging/spec';
import { TaskStore } from '../../../shared/tasks/store';
import { DeadLetterStore } from '../../../shared/tasks/dead-letters';
import { processTaskMessage } from '../../../shared/tasks/worker';
import { photo } from '../../helpers/images';
import { uniqueNamespace, useAzurite, withFailingUploads } from '../../helpers/storage';
import { handlePoisonMessage } from '../../../shared/tasks/poison';

const env = useAzurite();

async function setUp(spec: TaskSpecInput, images: Record<string, Buffer> = {}) {
  const storage = await env.storage();
  for (const [name, data] of Object.entries(images)) await storage.images.getBlockBlobClient(name).uploadData(data);
  const job = await createJob(
    storage,
    Object.keys(images).length ? Object.keys(images) : ['missing.jpg'],
    normalizeTaskSpec(spec),
  );
  const queue = storage.queue(job.tasks[0].capability);
  const received = (await queue.receiveMessages({ numberOfMessages: 32 })).receivedMessageItems;
  const messages = received.map((m) => JSON.parse(decodeMessageText(m.messageText)) as Record<string, unknown>);
  return { storage, job, messages, tasks: new TaskStore(storage.tasks) };
}

describe('processTaskMessage', () => {
  it('processes a task end to end: output blob with content type and metadata, status succeeded', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: [{ name: 'resize', width: 160 }, 'blur'], output: { format: 'webp' } },
      { 'a.jpg': await photo(320, 240, 'jpeg') },
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      v: 1,
      task_id: job.tasks[0].task_id,
      job_id: job.job_id,
      image: 'a.jpg',
      output: { format: 'webp', quality: 80 },
    });
    expect(await processTaskMessage(messages[0], { storage, capability: 'heavy', workerId: 'w1' })).toBe('succeeded');
    const task = await tasks.get(job.tasks[0].task_id);
    expect(task).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      worker_id: 'w1',
      output: { blob: `${job.tasks[0].task_id}.webp`, width: 160, height: 120, content_type: 'image/webp' },
    });
    const blob = storage.processed.getBlockBlobClient(task!.output!.blob);
    const props = await blob.getProperties();
    expect(props.contentType).toBe('image/webp');
    expect(props.metadata).toMatchObject({ task_id: job.tasks[0].task_id, filters: 'resize,blur' });
    expect(await sharp(await blob.downloadToBuffer()).metadata()).toMatchObject({
      format: 'webp',
      width: 160,
      height: 120,
    });
  });

  it('acknowledges a duplicate delivery without work: one output, status stays succeeded', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['grayscale'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    await processTaskMessage(messages[0], { storage, capability: 'light' });
    const first = await storage.processed.getBlockBlobClient(`${job.tasks[0].task_id}.jpg`).getProperties();
    expect(await processTaskMessage(JSON.stringify(messages[0]), { storage, capability: 'light' })).toBe(
      'already_succeeded',
    );
    const second = await storage.processed.getBlockBlobClient(`${job.tasks[0].task_id}.jpg`).getProperties();
    expect(second.etag).toBe(first.etag);
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    let blobs = 0;
    for await (const _ of storage.processed.listBlobsFlat()) blobs += 1;
    expect(blobs).toBe(1);
  });

  it('two concurrent deliveries of one message still leave one output and a succeeded task', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['sepia'] },
      { 'a.jpg': await photo(160, 120, 'jpeg') },
    );
    const outcomes = await Promise.all([
      processTaskMessage(messages[0], { storage, capability: 'heavy' }),
      processTaskMessage(messages[0], { storage, capability: 'heavy' }),
    ]);
    expect(outcomes).toContain('succeeded');
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({ status: 'succeeded' });
    const names: string[] = [];
    for await (const blob of storage.processed.listBlobsFlat()) names.push(blob.name);
    expect(names).toEqual([`${job.tasks[0].task_id}.jpg`]);
  });

  it('fails a task at once (job_failure) for a corrupt image or a missing one', async () => {
    const jpeg = await photo(64, 48, 'jpeg');
    const corrupt = await setUp({ filters: ['blur'] }, { 'bad.jpg': jpeg.subarray(0, jpeg.length / 2) });
    expect(await processTaskMessage(corrupt.messages[0], { storage: corrupt.storage, capability: 'heavy' })).toBe(
      'failed',
    );
    expect(await corrupt.tasks.get(corrupt.job.tasks[0].task_id)).toMatchObject({
      status: 'failed',
      failure_type: 'job_failure',
      failure_reason: 'corrupt_image',
    });
    const missing = await setUp({ filters: ['blur'] });
    expect(await processTaskMessage(missing.messages[0], { storage: missing.storage, capability: 'heavy' })).toBe(
      'failed',
    );
    expect(await missing.tasks.get(missing.job.tasks[0].task_id)).toMatchObject({
      failure_reason: 'image_not_found',
      error: expect.stringContaining("No image named 'missing.jpg' in the"),
    });
  });

  it('throws on a transient storage failure and leaves the task unfailed for the retry', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    await expect(
      processTaskMessage(messages[0], { storage: withFailingUploads(storage), capability: 'light' }),
    ).rejects.toThrow(/Server Busy/);
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({
      status: 'processing',
      attempts: 1,
      failure_type: null,
    });
    expect(await processTaskMessage(messages[0], { storage, capability: 'light' })).toBe('succeeded');
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('fails the named task of a garbled message, and sends an anonymous one to poison', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    expect(await processTaskMessage({ ...messages[0], filters: ['explode'] }, { storage, capability: 'light' })).toBe(
      'failed',
    );
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({
      status: 'failed',
      failure_reason: 'invalid_message',
      error: expect.stringContaining("'explode'"),
    });
    expect(await processTaskMessage('not json at all', { storage, capability: 'light' })).toBe('sent_to_poison');
    const [poisoned] = (await storage.poisonQueue('light').receiveMessages()).receivedMessageItems;
    expect(decodeMessageText(poisoned.messageText)).toBe('not json at all');
  });

  it('a garbled message never overwrites a task that ended; it becomes a dead letter that says so', async () => {
    const image = { 'a.jpg': await photo(64, 48, 'jpeg'), 'b.jpg': await photo(64, 48, 'jpeg') };
    const { storage, job, messages, tasks } = await setUp({ filters: ['flip'] }, image);
    const [done, failed] = job.tasks.map((t) => t.task_id);
    const byTask = (id: string) => messages.find((m) => m.task_id === id)!;
    expect(await processTaskMessage(byTask(done), { storage, capability: 'light' })).toBe('succeeded');
    await tasks.fail(failed, { type: 'job_failure', reason: 'corrupt_image', error: 'truncated' });
    for (const id of [done, failed]) {
      const garbled = Buffer.from(JSON.stringify({ ...byTask(id), filters: ['explode'] }));
      expect(await processTaskMessage(garbled, { storage, capability: 'light' })).toBe('sent_to_poison');
      const [poisoned] = (await storage.poisonQueue('light').receiveMessages()).receivedMessageItems;
      await handlePoisonMessage(
        Buffer.from(decodeMessageText(poisoned.messageText)),
        { storage, capability: 'light' },
        {
          id: poisoned.messageId,
          dequeueCount: 1,
        },
      );
    }
    expect(await tasks.get(done)).toMatchObject({ status: 'succeeded', failure_reason: null });
    expect(await tasks.get(failed)).toMatchObject({
      status: 'failed',
      failure_reason: 'corrupt_image',
      error: 'truncated',
    });
    const letters = await new DeadLetterStore(storage.deadLetters).list('light');
    expect(letters.map((l) => [l.task_id, l.reason]).sort()).toEqual(
      [
        [done, 'invalid_message_for_succeeded_task'],
        [failed, 'invalid_message_for_failed_task'],
      ].sort(),
    );
    expect(letters.every((l) => l.message.includes('explode') && l.error?.includes("'explode'"))).toBe(true);
  });
});

describe('handlePoisonMessage', () => {
  it('marks the task failed (worker_failure, exhausted_retries) and keeps the message as a dead letter', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    // five deliveries fail on a busy storage account, then the host moves the message to poison, whose
    // own first delivery has dequeueCount 1: the task and the letter report the five attempts
    for (let i = 0; i < 5; i++) {
      await expect(
        processTaskMessage(messages[0], { storage: withFailingUploads(storage), capability: 'light' }),
      ).rejects.toThrow(/Server Busy/);
    }
    await handlePoisonMessage(messages[0], { storage, capability: 'light' }, { id: 'm1', dequeueCount: 1 });
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({
      status: 'failed',
      attempts: 5,
      failure_type: 'worker_failure',
      failure_reason: 'exhausted_retries',
      error: 'gave up after 5 attempts',
    });
    const [letter] = await new DeadLetterStore(storage.deadLetters).list('light');
    expect(letter).toMatchObject({
      task_id: job.tasks[0].task_id,
      reason: 'exhausted_retries',
      dequeue_count: 5,
      error: 'gave up after 5 attempts',
    });
    expect(JSON.parse(letter.message)).toEqual(messages[0]);
  });

  /** The same storage, except that the dead-letter table's writes fail `times` times as `error`. */
  function withFailingDeadLetterWrites(storage: Storage, times: number, error: Error): Storage {
    const broken = Object.create(storage) as Storage;
    const table = Object.create(storage.deadLetters) as Storage['deadLetters'];
    let failures = 0;
    table.upsertEntity = (...args: Parameters<Storage['deadLetters']['upsertEntity']>) =>
      failures++ < times ? Promise.reject(error) : storage.deadLetters.upsertEntity(...args);
    Object.defineProperty(broken, 'deadLetters', { value: table });
    return broken;
  }
  const restError = (statusCode: number, code: string) =>
    Object.assign(new Error(code), { name: 'RestError', statusCode, code });

  it('records the dead letter through a storage outage: the whole handling is retried inside the invocation', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    const busy = withFailingDeadLetterWrites(storage, 2, restError(503, 'ServerBusy'));
    await handlePoisonMessage(
      messages[0],
      { storage: busy, capability: 'light' },
      { id: 'm1', dequeueCount: 1 },
      [1, 1, 1],
    );
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({
      status: 'failed',
      failure_reason: 'exhausted_retries',
    });
    const letters = await new DeadLetterStore(storage.deadLetters).list('light');
    expect(letters.map((l) => [l.task_id, l.reason])).toEqual([[job.tasks[0].task_id, 'exhausted_retries']]);
  });

  it('throws at once when storage refuses for good (a wrong key is no outage)', async () => {
    const { storage, messages } = await setUp({ filters: ['flip'] }, { 'a.jpg': await photo(64, 48, 'jpeg') });
    const refusing = withFailingDeadLetterWrites(storage, 100, restError(403, 'AuthenticationFailed'));
    await expect(
      handlePoisonMessage(
        messages[0],
        { storage: refusing, capability: 'light' },
        { id: 'm1', dequeueCount: 1 },
        [1, 1, 1],
      ),
    ).rejects.toThrow('AuthenticationFailed');
  });

  it('leaves a task that already succeeded alone', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    await processTaskMessage(messages[0], { storage, capability: 'light' });
    await handlePoisonMessage(messages[0], { storage, capability: 'light' }, { id: 'm1', dequeueCount: 5 });
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({ status: 'succeeded' });
    expect(await new DeadLetterStore(storage.deadLetters).list('light')).toEqual([]);
  });

  it('keeps the exact text of a message that is JSON but no object (1e999 is not stored as null)', async () => {
    const storage = await env.storage();
    expect(await processTaskMessage(Buffer.from('1e999'), { storage, capability: 'heavy' })).toBe('sent_to_poison');
    const [poisoned] = (await storage.poisonQueue('heavy').receiveMessages()).receivedMessageItems;
    expect(decodeMessageText(poisoned.messageText)).toBe('1e999');
    await handlePoisonMessage(Buffer.from('1e999'), { storage, capability: 'heavy' }, { id: 'm2', dequeueCount: 1 });
    expect(await new DeadLetterStore(storage.deadLetters).list('heavy')).toMatchObject([
      {
        id: 'm2',
        task_id: null,
        reason: 'invalid_message',
        message: '1e999',
        error: expect.stringContaining('Infinity'),
      },
    ]);
  });

  it('records garbage as an invalid_message dead letter', async () => {
    const storage = await env.storage();
    await handlePoisonMessage('garbage', { storage, capability: 'heavy' }, { id: 'm9', dequeueCount: 1 });
    expect(await new DeadLetterStore(storage.deadLetters).list('heavy')).toMatchObject([
      { id: 'm9', task_id: null, reason: 'invalid_message', message: 'garbage' },
    ]);
  });
});

it('resource names in these tests never collide', () => {
  expect(resourceNames(uniqueNamespace()).images).not.toBe(resourceNames(uniqueNamespace()).images);
});
