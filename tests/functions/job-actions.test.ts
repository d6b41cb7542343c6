/**
 * GET /api/jobs, GET /api/jobs/{id} (per-task failure, image and result links), POST /api/jobs/{id}/retry
 * and DELETE /api/jobs/{id}, through real HttpRequests against Azurite, with a worker run in-process.
 */
import { jobActionRoutes } from '../../shared/http/job-actions';
import { jobRoutes } from '../../shared/http/jobs';
import type { Storage } from '../../shared/storage/clients';
import { decodeMessageText } from '../../shared/storage/queue';
import { JobIndex } from '../../shared/tasks/job-index';
import { TaskStore } from '../../shared/tasks/store';
import { processTaskMessage } from '../../shared/tasks/worker';
import { photo } from '../helpers/images';
import { call, type CallResult } from '../helpers/http';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();

async function api() {
  const storage = await env.storage();
  const get = () => storage;
  return { storage, ...jobRoutes(get), ...jobActionRoutes(get) };
}

function expectProblem(res: CallResult, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: `urn:image-pipeline:problem:${code}`, status, detail: expect.any(String) });
}

async function receiveAll(storage: Storage) {
  const { receivedMessageItems } = await storage.queue('light').receiveMessages({ numberOfMessages: 32 });
  await Promise.all(receivedMessageItems.map((m) => storage.queue('light').deleteMessage(m.messageId, m.popReceipt)));
  return receivedMessageItems.map((m) => JSON.parse(decodeMessageText(m.messageText)) as Record<string, unknown>);
}

/** Runs every message waiting on the light queue, as a worker would. */
async function work(storage: Storage): Promise<string[]> {
  const outcomes = [];
  for (const message of await receiveAll(storage))
    outcomes.push(await processTaskMessage(message, { storage, capability: 'light' }));
  return outcomes;
}

type Api = Awaited<ReturnType<typeof api>>;

/** A job of two images, `ok.png` (uploaded) and `later.png` (missing until the test uploads it): it partially fails. */
async function partlyFailedJob(a: Api): Promise<{ jobId: string; okTask: string; failedTask: string }> {
  await a.storage.images.getBlockBlobClient('ok.png').uploadData(await photo(40, 30, 'png'));
  await a.storage.images.getBlockBlobClient('later.png').uploadData(await photo(40, 30, 'png'));
  const submitted = await call(a.submitJob, {
    method: 'POST',
    path: '/api/jobs',
    body: { images: ['ok.png', 'later.png'], filters: ['grayscale'], output: { format: 'png' } },
  });
  expect(submitted.status).toBe(202);
  await a.storage.images.deleteBlob('later.png');
  expect((await work(a.storage)).sort()).toEqual(['failed', 'succeeded']);
  const [okTask, failedTask] = submitted.json.tasks.map((t: { task_id: string }) => t.task_id);
  return { jobId: submitted.json.job_id, okTask, failedTask };
}

const list = (a: Api, query = '') => call(a.listJobs, { path: `/api/jobs${query}` });

describe('GET /api/jobs', () => {
  it('lists submitted jobs newest first with their status, paged by a continuation and next_url', async () => {
    const a = await api();
    const { jobId: first } = await partlyFailedJob(a);
    await a.storage.images.getBlockBlobClient('ok.png').uploadData(await photo(40, 30, 'png'));
    const second = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['ok.png'], filters: ['flip'] },
    });
    const all = await list(a);
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ count: 2, continuation: null, next_url: null });
    expect(all.json.jobs).toEqual([
      expect.objectContaining({
        job_id: second.json.job_id,
        status: 'queued',
        total: 1,
        filters: ['flip'],
        status_url: `http://localhost:7071/api/jobs/${second.json.job_id}`,
      }),
      expect.objectContaining({
        job_id: first,
        status: 'partially_failed',
        counts: { queued: 0, processing: 0, succeeded: 1, failed: 1 },
        output_format: 'png',
      }),
    ]);
    const page = await list(a, '?limit=1');
    expect(page.json.jobs.map((j: { job_id: string }) => j.job_id)).toEqual([second.json.job_id]);
    expect(page.json.next_url).toBe(`http://localhost:7071/api/jobs?limit=1&continuation=${page.json.continuation}`);
    const next = await list(a, `?limit=1&continuation=${page.json.continuation}`);
    expect(next.json.jobs.map((j: { job_id: string }) => j.job_id)).toEqual([first]);
    const filtered = await list(a, '?status=partially_failed');
    expect(filtered.json.jobs.map((j: { job_id: string }) => j.job_id)).toEqual([first]);
    expect((await list(a, `?since=${new Date(Date.now() + 60_000).toISOString()}`)).json.jobs).toEqual([]);
  });

  it('answers 400 problem+json naming each bad parameter and what it takes', async () => {
    const a = await api();
    const bad = await list(a, '?status=done&limit=500&since=yesterday&continuation=garbled!&order=asc');
    expectProblem(bad, 400, 'validation_failed');
    const messages = bad.json.errors.map((e: { message: string }) => e.message);
    expect(messages).toEqual([
      expect.stringMatching(/query parameter.*order/i),
      expect.stringContaining(
        'Expected one of queued, processing, succeeded, failed, partially_failed for query.status but received',
      ),
      expect.stringContaining('Expected an ISO 8601 time'),
      expect.stringContaining('Expected an integer between 1 and 100 for query.limit'),
      expect.stringContaining('Expected the continuation token of a previous page'),
    ]);
    const token = Buffer.from('{"v":1,"pk":"x","rk":"y"}').toString('base64url');
    const garbled = await list(a, `?continuation=${token}`);
    expectProblem(garbled, 400, 'validation_failed');
    expect(garbled.json.detail).toMatch(/continuation token.*it names no position in the job index/);
  });
});

describe('GET /api/jobs/{id}', () => {
  it("shows each task's failure reason and error, source image and its link, and result link", async () => {
    const a = await api();
    const { jobId, okTask, failedTask } = await partlyFailedJob(a);
    const res = await call(a.getJob, { path: `/api/jobs/${jobId}`, params: { job_id: jobId } });
    expect(res.status).toBe(200);
    const byId = new Map(res.json.tasks.map((t: { task_id: string }) => [t.task_id, t]));
    expect(byId.get(failedTask)).toMatchObject({
      status: 'failed',
      image: 'later.png',
      image_url: 'http://localhost:7071/api/images/later.png',
      failure_type: 'job_failure',
      failure_reason: 'image_not_found',
      error: expect.stringContaining("No image named 'later.png'"),
      attempts: 1,
    });
    expect(byId.get(okTask)).toMatchObject({
      status: 'succeeded',
      image: 'ok.png',
      image_url: 'http://localhost:7071/api/images/ok.png',
      result_url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/.*processed\/.*\.png\?.*sig=/),
      failure_reason: null,
    });
  });

  it('takes the job id in upper case too (UUIDs compare without case) and answers it in lower case', async () => {
    const a = await api();
    const { jobId } = await partlyFailedJob(a);
    const upper = jobId.toUpperCase();
    const res = await call(a.getJob, { path: `/api/jobs/${upper}`, params: { job_id: upper } });
    expect(res.status).toBe(200);
    expect(res.json.job_id).toBe(jobId);
    const retried = await call(a.retryJob, { method: 'POST', path: '', params: { job_id: upper } });
    expect(retried.status).toBe(200);
    expect(retried.json.job_id).toBe(jobId);
    // not a UUID: 36 dashes, or hex in the wrong groups
    for (const bad of ['-'.repeat(36), `${jobId.replace(/-/g, '')}----`])
      expectProblem(await call(a.getJob, { path: '', params: { job_id: bad } }), 400, 'validation_failed');
  });
});

describe('POST /api/jobs/{id}/retry', () => {
  it('re-enqueues the failed tasks as a new attempt of the same ids; the message carries the new ETag', async () => {
    const a = await api();
    const { jobId, okTask, failedTask } = await partlyFailedJob(a);
    expect((await list(a)).json.jobs[0].status).toBe('partially_failed');
    await a.storage.images.getBlockBlobClient('later.png').uploadData(await photo(40, 30, 'png'));
    const retry = () => call(a.retryJob, { method: 'POST', path: '', params: { job_id: jobId } });
    const res = await retry();
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      job_id: jobId,
      requeued: [failedTask],
      failed_before: 1,
      status_url: `http://localhost:7071/api/jobs/${jobId}`,
    });
    const record = await new TaskStore(a.storage.tasks).get(failedTask);
    expect(record).toMatchObject({ status: 'queued', attempts: 1, failure_reason: null, error: null });
    // the job is open again, and the retry is counted
    expect((await list(a)).json.jobs[0]).toMatchObject({ job_id: jobId, status: 'processing', retries: 1 });
    const [message] = await receiveAll(a.storage);
    expect(message).toMatchObject({ task_id: failedTask, image: 'later.png', attempts: 1, etag: expect.any(String) });
    expect(await processTaskMessage(message, { storage: a.storage, capability: 'light' })).toBe('succeeded');
    const after = await new TaskStore(a.storage.tasks).get(failedTask);
    expect(after).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect((await new TaskStore(a.storage.tasks).get(okTask))?.attempts).toBe(1);
    expect((await list(a)).json.jobs[0]).toMatchObject({ status: 'succeeded' });
    // nothing failed any more: 200 with nothing requeued (retry is safe to repeat)
    expect((await retry()).json).toMatchObject({ requeued: [], failed_before: 0 });
  });

  it('answers 404 for an unknown job and 400 for a malformed id', async () => {
    const a = await api();
    const unknown = '00000000-0000-4000-8000-000000000000';
    expectProblem(await call(a.retryJob, { method: 'POST', path: '', params: { job_id: unknown } }), 404, 'not_found');
    expectProblem(
      await call(a.retryJob, { method: 'POST', path: '', params: { job_id: 'x' } }),
      400,
      'validation_failed',
    );
  });
});

describe('DELETE /api/jobs/{id}', () => {
  it('removes task records, results and the index row, keeps source images; a second delete is 404', async () => {
    const a = await api();
    const { jobId, okTask } = await partlyFailedJob(a);
    const unrelated = 'someone-else.png';
    await a.storage.processed.getBlockBlobClient(unrelated).uploadData(Buffer.from('x'));
    const store = new TaskStore(a.storage.tasks);
    const createdAt = (await store.get(okTask))!.created_at;
    const del = () => call(a.deleteJob, { method: 'DELETE', path: '', params: { job_id: jobId } });
    const res = await del();
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      job_id: jobId,
      deleted: { task_records: 2, results: 1, job_record: true, dead_letters: 0, callback: false },
      kept: [`source images (container ${a.storage.names.images}): other jobs may use them`],
    });
    expect(await store.listJob(jobId)).toEqual([]);
    expect(await new JobIndex(a.storage.jobs).get(jobId, createdAt)).toBeUndefined();
    expect(await a.storage.processed.getBlockBlobClient(`${okTask}.png`).exists()).toBe(false);
    expect(await a.storage.processed.getBlockBlobClient(unrelated).exists()).toBe(true);
    expect(await a.storage.images.getBlockBlobClient('ok.png').exists()).toBe(true);
    expect((await list(a)).json.jobs).toEqual([]);
    expectProblem(await del(), 404, 'not_found');
  });

  it('refuses a job with tasks still queued (409) unless ?force=true; bad id or force → 400', async () => {
    const a = await api();
    await a.storage.images.getBlockBlobClient('q.png').uploadData(await photo(8, 8, 'png'));
    const submitted = await call(a.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['q.png'], filters: ['flip'] },
    });
    const jobId = submitted.json.job_id as string;
    const del = (query = '') =>
      call(a.deleteJob, { method: 'DELETE', path: `/api/jobs/${jobId}${query}`, params: { job_id: jobId } });
    const refused = await del();
    expectProblem(refused, 409, 'job_active');
    expect(refused.json.detail).toMatch(/1 task\(s\) still queued or processing.*force=true/);
    expectProblem(await del('?force=yes'), 400, 'validation_failed');
    expectProblem(await del('?forse=true'), 400, 'validation_failed');
    expect((await del('?force=true')).json.deleted).toMatchObject({ task_records: 1, job_record: true });
    expectProblem(
      await call(a.deleteJob, { method: 'DELETE', path: '', params: { job_id: '../x' } }),
      400,
      'validation_failed',
    );
  });
});
