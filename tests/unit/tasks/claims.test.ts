/**
 * At-least-once delivery must not mean twice the work: copies of one task message delivered at the
 * same time run the task once, write its result once and count once; a claim whose worker is dead
 * or whose invocation is older than the function timeout is taken over; a delivery that lost its
 * claim records nothing.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { WorkerStats } from '../../../shared/metrics/worker-stats';
import type { Storage } from '../../../shared/storage/clients';
import { decodeMessageText } from '../../../shared/storage/queue';
import { createJob } from '../../../shared/tasks/jobs';
import { CLAIM_STALE_AFTER_MS, TaskStore, type TaskRecord } from '../../../shared/tasks/store';
import { processTaskMessage, type WorkerOutcome } from '../../../shared/tasks/worker';
import { photo } from '../../helpers/images';
import { useAzurite } from '../../helpers/storage';
import { workerDeps } from '../../helpers/worker';

const env = useAzurite();

/** The same storage, counting every result upload per blob name. */
function countingUploads(storage: Storage): { storage: Storage; uploads: Map<string, number> } {
  const uploads = new Map<string, number>();
  const counted = Object.create(storage) as Storage;
  const processed = Object.create(storage.processed) as Storage['processed'];
  processed.getBlockBlobClient = (name: string) => {
    const blob = storage.processed.getBlockBlobClient(name);
    const upload = blob.uploadData.bind(blob);
    blob.uploadData = (...args: Parameters<typeof upload>) => {
      uploads.set(name, (uploads.get(name) ?? 0) + 1);
      return upload(...args);
    };
    return blob;
  };
  Object.defineProperty(counted, 'processed', { value: processed });
  return { storage: counted, uploads };
}

async function job(storage: Storage, images: number) {
  await storage.images.getBlockBlobClient('a.jpg').uploadData(await photo(96, 64, 'jpeg'));
  const created = await createJob(
    storage,
    Array.from({ length: images }, () => 'a.jpg'),
    normalizeTaskSpec({ filters: ['grayscale'] }),
  );
  const queue = storage.queue('light');
  const texts: string[] = [];
  while (texts.length < images) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    for (const m of receivedMessageItems) {
      texts.push(decodeMessageText(m.messageText));
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }
  }
  return { created, texts, tasks: new TaskStore(storage.tasks) };
}

const queued = async (storage: Storage) => (await storage.queue('light').getProperties()).approximateMessagesCount;

describe('one task message delivered several times at once', () => {
  it.each([
    ['three workers', ['w-a', 'w-b', 'w-c']],
    ['one worker (same process)', ['w-a', 'w-a', 'w-a']],
  ])(
    'runs each of 20 tasks once, with one result write and one count (%s)',
    async (_, workers) => {
      const { storage, uploads } = countingUploads(await env.storage());
      const { created, texts, tasks } = await job(storage, 20);
      const stats = new WorkerStats('stats', ['light']);
      const outcomes: WorkerOutcome[] = await Promise.all(
        texts.flatMap((text) =>
          workers.map((workerId) =>
            stats.track('light', () =>
              processTaskMessage(Buffer.from(text), { storage, capability: 'light', workerId, deadAfterMs: 5000 }),
            ),
          ),
        ),
      );
      const count = (o: WorkerOutcome) => outcomes.filter((x) => x === o).length;
      expect(count('succeeded')).toBe(20);
      expect(count('deferred') + count('already_succeeded')).toBe(40);
      expect(stats.countersOf('light')).toMatchObject({ completed: 20, failed: 0, errors: 0 });
      expect([...uploads.values()]).toEqual(Array.from({ length: 20 }, () => 1));
      const records = await Promise.all(created.tasks.map((t) => tasks.get(t.task_id)));
      expect(records.map((r) => [r?.status, r?.attempts])).toEqual(created.tasks.map(() => ['succeeded', 1]));
      // a deferred copy is back on the queue, hidden, and is acknowledged without work once it comes back
      expect(await queued(storage)).toBe(count('deferred'));
      expect(await processTaskMessage(Buffer.from(texts[0]), { storage, capability: 'light', workerId: 'w-z' })).toBe(
        'already_succeeded',
      );
      expect(uploads.get(`${created.tasks[0].task_id}.jpg`)).toBe(1);
    },
    60000,
  );
});

describe('claims', () => {
  async function claimedBy(workerId: string, ageMs: number) {
    const storage = await env.storage();
    const { created, texts, tasks } = await job(storage, 1);
    const taskId = created.tasks[0].task_id;
    await tasks.start(taskId, workerId, undefined, new Date(Date.now() - ageMs));
    return { storage, taskId, text: texts[0], tasks };
  }

  it('a live claim stands: the copy is deferred, hidden on the queue, and the registry is asked once', async () => {
    const { storage, taskId, text, tasks } = await claimedBy('w-old', 10000);
    const asked: (string | null)[] = [];
    const isClaimRunning = (claim: TaskRecord) => (asked.push(claim.worker_id), Promise.resolve(true));
    expect(await processTaskMessage(Buffer.from(text), workerDeps(storage, { isClaimRunning }))).toBe('deferred');
    expect(asked).toEqual(['w-old']);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'processing', worker_id: 'w-old', attempts: 1 });
    expect((await storage.queue('light').peekMessages()).peekedMessageItems).toEqual([]); // hidden for now
    expect(await queued(storage)).toBe(1);
  });

  it('the normal path never reads the registry', async () => {
    const storage = await env.storage();
    const { texts } = await job(storage, 1);
    const isClaimRunning = () => Promise.reject(new Error('the registry must not be read'));
    expect(await processTaskMessage(Buffer.from(texts[0]), workerDeps(storage, { isClaimRunning }))).toBe('succeeded');
  });

  it('a claim whose worker is dead, or no longer runs the task, is taken over and the task completes', async () => {
    const { storage, taskId, text, tasks } = await claimedBy('w-old', 10000);
    const isClaimRunning = () => Promise.resolve(false);
    expect(await processTaskMessage(Buffer.from(text), workerDeps(storage, { isClaimRunning }))).toBe('succeeded');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', worker_id: 'w-new', attempts: 2 });
  });

  it('a claim older than the function timeout is taken over whatever the registry says', async () => {
    const { storage, taskId, text, tasks } = await claimedBy('w-old', CLAIM_STALE_AFTER_MS + 1000);
    const isClaimRunning = () => Promise.resolve(true);
    expect(await processTaskMessage(Buffer.from(text), workerDeps(storage, { isClaimRunning }))).toBe('succeeded');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it("a claim under this process's own id that it is not running is left from an earlier process", async () => {
    const { storage, taskId, text, tasks } = await claimedBy('w-new', 0);
    expect(await processTaskMessage(Buffer.from(text), workerDeps(storage))).toBe('succeeded');
    expect(await tasks.get(taskId)).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('a delivery that lost its claim writes neither success nor failure', async () => {
    const { taskId, tasks } = await claimedBy('w-old', 0);
    const mine = (await tasks.start(taskId, 'w-a', () => Promise.resolve(false)))!.task;
    const theirs = await tasks.start(taskId, 'w-b', () => Promise.resolve(false));
    expect(theirs?.changed).toBe(true);
    const output = {
      blob: 'x.jpg',
      url: 'x',
      format: 'jpeg',
      width: 1,
      height: 1,
      bytes: 1,
      content_type: 'image/jpeg',
    };
    expect((await tasks.succeed(mine, output as never, 5))?.changed).toBe(false);
    expect((await tasks.fail(mine, { type: 'job_failure', reason: 'corrupt_image', error: 'x' }))?.changed).toBe(false);
    expect(await tasks.get(taskId)).toMatchObject({ status: 'processing', worker_id: 'w-b', attempts: 3 });
  });

  it('a claim goes stale after host.json functionTimeout, the longest an invocation runs', () => {
    const host = JSON.parse(readFileSync(path.resolve(__dirname, '../../../host.json'), 'utf8')) as {
      functionTimeout: string;
    };
    const [h, m, s] = host.functionTimeout.split(':').map(Number);
    expect(CLAIM_STALE_AFTER_MS).toBe(((h * 60 + m) * 60 + s) * 1000);
  });
});
