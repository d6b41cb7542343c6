/**
 * The job index: keys that sort newest first (within a day and across days), continuation tokens that
 * are checked before use, the listing query's validation, and pages walked across day partitions on
 * Azurite with jobs created at chosen times (createJob's `now`).
 */
import { normalizeTaskSpec } from '../../../shared/imaging/spec';
import { parseListQuery } from '../../../shared/http/job-actions';
import { ValidationError } from '../../../shared/errors';
import type { Storage } from '../../../shared/storage/clients';
import { createdAtOf, decodeCursor, encodeCursor, JobIndex, partitionOf, rowOf } from '../../../shared/tasks/job-index';
import { listJobs, SCAN_PER_PAGE } from '../../../shared/tasks/job-actions';
import { createJob } from '../../../shared/tasks/jobs';
import { TaskStore } from '../../../shared/tasks/store';
import { useAzurite } from '../../helpers/storage';

const JOB_A = '00000000-0000-4000-8000-00000000000a';
const JOB_B = '00000000-0000-4000-8000-00000000000b';
const at = (iso: string) => new Date(iso);

describe('index keys', () => {
  it('sort newest first within a day and across days, by partition then row as the table service orders them', () => {
    const times = [
      '2026-01-01T00:00:00.000Z',
      '2026-01-01T23:59:59.999Z',
      '2026-01-02T00:00:00.000Z',
      '2027-06-30T12:00:00Z',
    ];
    const keys = times.map((t) => `${partitionOf(at(t))}|${rowOf(at(t), JOB_A)}`);
    const sorted = [...keys].sort();
    expect(sorted).toEqual([...keys].reverse());
  });

  it('keep one partition per UTC day and two jobs of one millisecond apart', () => {
    expect(partitionOf(at('2026-03-04T00:00:00Z'))).toBe(partitionOf(at('2026-03-04T23:59:59.999Z')));
    expect(partitionOf(at('2026-03-04T23:59:59.999Z'))).not.toBe(partitionOf(at('2026-03-05T00:00:00Z')));
    expect(partitionOf(at('2026-03-04T12:00:00Z'))).toMatch(/^\d{6}$/);
    const t = at('2026-03-04T12:00:00.123Z');
    expect(rowOf(t, JOB_A)).not.toBe(rowOf(t, JOB_B));
    expect(rowOf(t, JOB_A)).toMatch(/^\d{15}_/);
    expect(createdAtOf(rowOf(t, JOB_A)).toISOString()).toBe(t.toISOString());
  });
});

describe('continuation tokens', () => {
  const cursor = { pk: partitionOf(at('2026-03-04T12:00:00Z')), rk: rowOf(at('2026-03-04T12:00:00Z'), JOB_A) };

  it('round-trip as opaque base64url', () => {
    const token = encodeCursor(cursor);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(token)).toEqual(cursor);
  });

  it.each([
    ['not base64url', 'abc$%'],
    ['not base64url-encoded JSON', Buffer.from('{nope').toString('base64url')],
    ['not version 1', Buffer.from(JSON.stringify({ v: 2, pk: '1', rk: '2' })).toString('base64url')],
    ['it names no position', Buffer.from(JSON.stringify({ v: 1, pk: "0' or 1", rk: 'x' })).toString('base64url')],
    ['not a JSON object', Buffer.from('null').toString('base64url')],
    ['longer than 512', 'A'.repeat(600)],
  ])('refuses a token that is %s, saying what a token is', (why, token) => {
    let thrown: unknown;
    try {
      decodeCursor(token);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    const problem = (thrown as ValidationError).errors[0];
    expect(problem.field).toBe('query.continuation');
    expect(problem.message).toMatch(/Expected the continuation token of a previous page/);
    expect(problem.message).toContain(`(${why.replace(/ 512$/, '')}`);
  });
});

describe('parseListQuery', () => {
  const q = (s: string) => parseListQuery(new URLSearchParams(s));
  const problems = (s: string) => {
    try {
      q(s);
    } catch (err) {
      return (err as ValidationError).errors.map((e) => e.field);
    }
    return [];
  };

  it('defaults to 20 and takes every parameter', () => {
    expect(q('')).toEqual({ limit: 20 });
    const token = encodeCursor({ pk: '979000', rk: rowOf(at('2026-01-01T00:00:00Z'), JOB_A) });
    expect(q(`status=failed&since=2026-01-01T00:00:00Z&limit=100&continuation=${token}&code=k`)).toEqual({
      limit: 100,
      status: 'failed',
      since: at('2026-01-01T00:00:00Z'),
      after: decodeCursor(token),
    });
  });

  it('reports every bad parameter at once', () => {
    expect(problems('status=done&limit=0&since=yesterday&continuation=%%&sort=asc')).toEqual([
      'query.sort',
      'query.status',
      'query.since',
      'query.limit',
      'query.continuation',
    ]);
    expect(problems('limit=101')).toEqual(['query.limit']);
    expect(problems('limit=2.5')).toEqual(['query.limit']);
    expect(problems('since=2026-13-45')).toEqual(['query.since']);
  });
});

describe('listing on Azurite', () => {
  const env = useAzurite();
  const spec = normalizeTaskSpec({ filters: ['grayscale'] });

  /** Jobs created at the given times (createJob's clock), newest last; answers their ids. */
  async function jobsAt(storage: Storage, times: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const t of times) ids.push((await createJob(storage, ['a.png', 'b.png'], spec, at(t))).job_id);
    return ids;
  }

  it('pages newest first across day partitions, with a continuation until the walk ends', async () => {
    const storage = await env.storage();
    const ids = await jobsAt(storage, [
      '2026-01-01T10:00:00Z',
      '2026-01-01T11:00:00Z',
      '2026-01-02T09:00:00Z',
      '2026-01-03T08:00:00Z',
      '2026-01-03T08:00:01Z',
    ]);
    const newestFirst = [...ids].reverse();
    const seen: string[] = [];
    let after;
    for (let page = 0; page < 10; page++) {
      const { jobs, continuation } = await listJobs(storage, { limit: 2, after });
      seen.push(...jobs.map((j) => j.job_id));
      if (!continuation) break;
      after = decodeCursor(continuation);
    }
    expect(seen).toEqual(newestFirst);
    const first = await listJobs(storage, { limit: 100 });
    expect(first.continuation).toBeUndefined();
    expect(first.jobs[0]).toMatchObject({
      job_id: ids[4],
      status: 'queued',
      total: 2,
      images: 2,
      capability: 'light',
      filters: ['grayscale'],
      output_format: 'jpeg',
      created_at: '2026-01-03T08:00:01.000Z',
      counts: { queued: 2, processing: 0, succeeded: 0, failed: 0 },
    });
  });

  it('stops at `since`', async () => {
    const storage = await env.storage();
    const ids = await jobsAt(storage, ['2026-02-01T10:00:00Z', '2026-02-02T10:00:00Z', '2026-02-03T10:00:00Z']);
    const { jobs, continuation } = await listJobs(storage, { limit: 10, since: at('2026-02-02T00:00:00Z') });
    expect(jobs.map((j) => j.job_id)).toEqual([ids[2], ids[1]]);
    expect(continuation).toBeUndefined();
    const paged = await listJobs(storage, { limit: 1, since: at('2026-02-02T10:00:00Z') });
    expect(paged.jobs.map((j) => j.job_id)).toEqual([ids[2]]);
    const rest = await listJobs(storage, {
      limit: 1,
      since: at('2026-02-02T10:00:00Z'),
      after: decodeCursor(paged.continuation!),
    });
    expect(rest.jobs.map((j) => j.job_id)).toEqual([ids[1]]);
  });

  it('filters by status from the tasks, caches only a succeeded status, and skips rows without tasks', async () => {
    const storage = await env.storage();
    const [queued, failed, done, gone] = await jobsAt(storage, [
      '2026-03-01T10:00:00Z',
      '2026-03-02T10:00:00Z',
      '2026-03-03T10:00:00Z',
      '2026-03-04T10:00:00Z',
    ]);
    const store = new TaskStore(storage.tasks);
    for (const t of await store.listJob(failed)) {
      await store.fail(t.task_id, { type: 'job_failure', reason: 'corrupt_image', error: 'truncated' });
    }
    for (const t of await store.listJob(done)) {
      await storage.tasks.updateEntity({ partitionKey: done, rowKey: t.task_id, status: 'succeeded' }, 'Merge');
    }
    for (const t of await store.listJob(gone)) await storage.tasks.deleteEntity(gone, t.task_id);

    const onlyFailed = await listJobs(storage, { limit: 10, status: 'failed' });
    expect(onlyFailed.jobs.map((j) => j.job_id)).toEqual([failed]);
    expect(onlyFailed.jobs[0].counts).toEqual({ queued: 0, processing: 0, succeeded: 0, failed: 2 });
    expect((await listJobs(storage, { limit: 10 })).jobs.map((j) => j.job_id)).toEqual([done, failed, queued]);

    const index = new JobIndex(storage.jobs);
    expect((await index.get(done, '2026-03-03T10:00:00.000Z'))?.entry.final).toEqual({
      status: 'succeeded',
      counts: { queued: 0, processing: 0, succeeded: 2, failed: 0 },
    });
    // failed is not for good (a retry, a dead-letter requeue or a redelivered message runs it again): not cached
    expect((await index.get(failed, '2026-03-02T10:00:00.000Z'))?.entry.final).toBeUndefined();
    const [first] = await store.listJob(failed);
    await store.requeue(first.task_id); // what a dead-letter requeue does, without passing through the index
    expect((await listJobs(storage, { limit: 10, status: 'partially_failed' })).jobs).toEqual([]);
    expect((await listJobs(storage, { limit: 10, status: 'processing' })).jobs.map((j) => j.job_id)).toEqual([failed]);

    // a cached status answers without reading the tasks
    const tasksQuery = jest.spyOn(storage.tasks, 'listEntities');
    const again = await listJobs(storage, { limit: 10, status: 'succeeded' });
    expect(again.jobs.map((j) => j.job_id)).toEqual([done]);
    const partitionsRead = tasksQuery.mock.calls.map((c) => c[0]?.queryOptions?.filter);
    expect(partitionsRead.some((f) => f?.includes(done))).toBe(false);
    expect(partitionsRead.some((f) => f?.includes(failed))).toBe(true);
    tasksQuery.mockRestore();
  });

  it('a filtered page looks at SCAN_PER_PAGE rows at most: fewer items, and a continuation to go on', async () => {
    const storage = await env.storage();
    const index = new JobIndex(storage.jobs);
    expect(SCAN_PER_PAGE).toBe(100);
    // the rows themselves (no tasks behind them) are enough to see the bound; none matches
    const base = at('2026-04-01T00:00:00Z').getTime();
    for (let i = 0; i < SCAN_PER_PAGE + 5; i++) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      await index.add({
        job_id: id,
        created_at: new Date(base + i * 60_000).toISOString(),
        total: 1,
        capability: 'light',
        images: 1,
        filters: ['grayscale'],
        output_format: 'jpeg',
      });
    }
    const first = await listJobs(storage, { limit: 5, status: 'failed' });
    expect(first.jobs).toEqual([]);
    expect(first.continuation).toBeDefined();
    const second = await listJobs(storage, { limit: 5, status: 'failed', after: decodeCursor(first.continuation!) });
    expect(second.jobs).toEqual([]);
    expect(second.continuation).toBeUndefined();
  }, 60000);

  it('a read that saw the tasks before a retry cannot cache its stale final status after it', async () => {
    const storage = await env.storage();
    const [jobId] = await jobsAt(storage, ['2026-05-01T10:00:00Z']);
    const index = new JobIndex(storage.jobs);
    const seen = (await index.get(jobId, '2026-05-01T10:00:00.000Z'))!; // the reader's row, read before its tasks
    const current = (await index.get(jobId, '2026-05-01T10:00:00.000Z'))!;
    await index.reopen(current); // the retry: tasks requeued, then the row rewritten
    await index.cacheFinal(seen, 'succeeded', { queued: 0, processing: 0, succeeded: 2, failed: 0 });
    const after = (await index.get(jobId, '2026-05-01T10:00:00.000Z'))!;
    expect(after.entry.final).toBeUndefined();
    expect(after.entry.retries).toBe(1);
  });

  it('createJob writes no index row when its tasks cannot be written', async () => {
    const storage = await env.storage();
    const broken = Object.create(storage) as Storage;
    const tasks = Object.create(storage.tasks) as Storage['tasks'];
    tasks.submitTransaction = () => Promise.reject(Object.assign(new Error('Server Busy'), { statusCode: 503 }));
    Object.defineProperty(broken, 'tasks', { value: tasks });
    await expect(createJob(broken, ['a.png'], spec, at('2026-06-01T10:00:00Z'))).rejects.toThrow('Server Busy');
    expect((await listJobs(storage, { limit: 10 })).jobs).toEqual([]);
    let rows = 0;
    for await (const _ of storage.jobs.listEntities()) rows++;
    expect(rows).toBe(0);
  });

  it('createJob of more than 100 tasks leaves no record behind when a later transaction fails', async () => {
    const storage = await env.storage();
    const broken = Object.create(storage) as Storage;
    const tasks = Object.create(storage.tasks) as Storage['tasks'];
    let creates = 0;
    // the first transaction of creates is written, the second refused; deletes go through
    tasks.submitTransaction = (actions, ...rest) => {
      if (actions[0][0] === 'create' && ++creates > 1)
        return Promise.reject(Object.assign(new Error('Server Busy'), { statusCode: 503 }));
      return storage.tasks.submitTransaction(actions, ...rest);
    };
    Object.defineProperty(broken, 'tasks', { value: tasks });
    const images = Array.from({ length: 150 }, (_, i) => `img-${i}.png`);
    const jobId = '5d0c6a1e-2f3b-4c4d-9e8f-7a6b5c4d3e2f';
    await expect(createJob(broken, images, spec, at('2026-06-01T10:00:00Z'), jobId)).rejects.toThrow('Server Busy');
    expect(creates).toBe(2);
    let records = 0;
    for await (const _ of storage.tasks.listEntities({ queryOptions: { filter: `PartitionKey eq '${jobId}'` } }))
      records++;
    expect(records).toBe(0);
    expect((await listJobs(storage, { limit: 10 })).jobs).toEqual([]);
  });
});
