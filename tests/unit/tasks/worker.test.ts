import { resourceNames } from '../../../shared/storage/names';
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
});

describe('handlePoisonMessage', () => {
  it('marks the task failed (worker_failure, exhausted_retries) and keeps the message as a dead letter', async () => {
    const { storage, job, messages, tasks } = await setUp(
      { filters: ['flip'] },
      { 'a.jpg': await photo(64, 48, 'jpeg') },
    );
    await handlePoisonMessage(messages[0], { storage, capability: 'light' }, { id: 'm1', dequeueCount: 5 });
    expect(await tasks.get(job.tasks[0].task_id)).toMatchObject({
      status: 'failed',
      failure_type: 'worker_failure',
      failure_reason: 'exhausted_retries',
    });
    const [letter] = await new DeadLetterStore(storage.deadLetters).list('light');
    expect(letter).toMatchObject({ task_id: job.tasks[0].task_id, reason: 'exhausted_retries', dequeue_count: 5 });
    expect(JSON.parse(letter.message)).toEqual(messages[0]);
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
