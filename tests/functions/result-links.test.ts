/**
 * GET /api/tasks/{id}/result answers 302 to a short-lived, read-only link for that one result blob
 * (a service SAS here, with Azurite's account key); ?download=stream keeps the bytes flowing through
 * the function; task and job JSON carry the same kind of link as result_url once a task has succeeded.
 * The identity-based (user delegation SAS) side runs against Azurite with OAuth in
 * tests/e2e/identity-storage.test.ts.
 */
import sharp from 'sharp';
import { loadSettings } from '../../shared/config';
import { jobRoutes } from '../../shared/http/jobs';
import { taskRoutes } from '../../shared/http/tasks';
import { decodeMessageText } from '../../shared/storage/queue';
import { processTaskMessage } from '../../shared/tasks/worker';
import { photo } from '../helpers/images';
import { call } from '../helpers/http';
import { useAzurite } from '../helpers/storage';

const env = useAzurite();

async function succeededTask() {
  const storage = await env.storage();
  const routes = { ...jobRoutes(() => storage), ...taskRoutes(() => storage) };
  await storage.images.getBlockBlobClient('cat.jpg').uploadData(await photo(160, 120, 'jpeg'));
  const submitted = await call(routes.submitJob, {
    method: 'POST',
    path: '/api/jobs',
    body: { images: ['cat.jpg'], filters: [{ name: 'resize', width: 80 }], output: { format: 'png' } },
  });
  const [task] = submitted.json.tasks;
  const { receivedMessageItems } = await storage.queue(task.capability).receiveMessages();
  const body = JSON.parse(decodeMessageText(receivedMessageItems[0].messageText));
  expect(await processTaskMessage(body, { storage, capability: task.capability })).toBe('succeeded');
  return { storage, routes, task, jobId: submitted.json.job_id as string };
}

type Handler = ReturnType<typeof taskRoutes>['getTaskResult'];
const resultOf = (routes: { getTaskResult: Handler }, taskId: string, query = '') =>
  call(routes.getTaskResult, { path: `/api/tasks/${taskId}/result${query}`, params: { task_id: taskId } });

describe('result links with an account key (service SAS)', () => {
  it('redirects to a read-only link for that one blob, valid for RESULT_LINK_TTL_SECONDS', async () => {
    const { storage, routes, task } = await succeededTask();
    const before = Date.now();
    const res = await resultOf(routes, task.task_id);
    expect(res.status).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const link = new URL(res.headers.location);
    expect(`${link.origin}${link.pathname}`).toBe(storage.processed.getBlobClient(`${task.task_id}.png`).url);
    expect(link.searchParams.get('sp')).toBe('r');
    expect(link.searchParams.get('sr')).toBe('b');
    expect(link.searchParams.get('skoid')).toBeNull(); // not a user delegation SAS: signed with the key
    const expiry = Date.parse(link.searchParams.get('se')!);
    expect(expiry - before).toBeGreaterThan(890_000);
    expect(expiry - before).toBeLessThan(905_000);

    const download = await fetch(link);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('image/png');
    const image = Buffer.from(await download.arrayBuffer());
    expect(await sharp(image).metadata()).toMatchObject({ format: 'png', width: 80, height: 60 });

    // read-only: a write with the same link is refused
    const put = await fetch(link, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'overwritten' });
    expect(put.status).toBe(403);
    // one blob: the same signature on another blob is refused
    await storage.processed.getBlockBlobClient('other.png').uploadData(image);
    const other = storage.processed.getBlobClient('other.png').url;
    expect((await fetch(`${other}?${link.searchParams.toString()}`)).status).toBe(403);
    expect((await fetch(link)).status).toBe(200); // and the result is still there, unchanged
  });

  it('task and job JSON carry the link as result_url once the task has succeeded', async () => {
    const { routes, task, jobId } = await succeededTask();
    const got = await call(routes.getTask, { path: '', params: { task_id: task.task_id } });
    expect(got.json.status_url).toBe(`http://localhost:7071/api/tasks/${task.task_id}`);
    const url = new URL(got.json.result_url);
    expect(url.searchParams.get('sp')).toBe('r');
    expect((await fetch(url)).status).toBe(200);
    const job = await call(routes.getJob, { path: '', params: { job_id: jobId } });
    expect(new URL(job.json.tasks[0].result_url).pathname).toBe(url.pathname);
    expect((await fetch(job.json.tasks[0].result_url)).status).toBe(200);
  });

  it('keeps the route as result_url while a task is not done, and 409 from it', async () => {
    const storage = await env.storage();
    const routes = { ...jobRoutes(() => storage), ...taskRoutes(() => storage) };
    await storage.images.getBlockBlobClient('cat.jpg').uploadData(await photo(64, 48, 'jpeg'));
    const submitted = await call(routes.submitJob, {
      method: 'POST',
      path: '/api/jobs',
      body: { images: ['cat.jpg'], filters: ['grayscale'] },
    });
    const [task] = submitted.json.tasks;
    expect(task.result_url).toBe(`http://localhost:7071/api/tasks/${task.task_id}/result`);
    const got = await call(routes.getTask, { path: '', params: { task_id: task.task_id } });
    expect(got.json.result_url).toBe(`http://localhost:7071/api/tasks/${task.task_id}/result`);
    expect((await resultOf(routes, task.task_id)).status).toBe(409);
  });

  it('?download=stream sends the bytes through the function; another download value is a 400 naming it', async () => {
    const { routes, task } = await succeededTask();
    const streamed = await resultOf(routes, task.task_id, '?download=stream');
    expect(streamed.status).toBe(200);
    expect(streamed.headers['content-type']).toBe('image/png');
    expect(await sharp(streamed.bytes).metadata()).toMatchObject({ format: 'png', width: 80 });
    const bad = await resultOf(routes, task.task_id, '?download=zip');
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0]).toMatchObject({ field: 'query.download', received: expect.stringContaining('zip') });
  });

  it('a link expires: one made with a short lifetime is refused after it', async () => {
    const { storage, task } = await succeededTask();
    const blob = `${task.task_id}.png`;
    // through the route with the shortest allowed lifetime, as if made 61 s ago
    const short = taskRoutes(() => storage, loadSettings({ RESULT_LINK_TTL_SECONDS: '60' }));
    const res = await resultOf(short, task.task_id);
    const expiry = Date.parse(new URL(res.headers.location).searchParams.get('se')!);
    expect(expiry - Date.now()).toBeLessThanOrEqual(60_000);
    expect((await fetch(res.headers.location)).status).toBe(200);
    const made = new Date(Date.now() - 61_000);
    const expired = await storage.results.link(blob, 60, made);
    expect(expired.expiresOn.getTime()).toBeLessThan(Date.now());
    const refused = await fetch(expired.url);
    expect(refused.status).toBe(403);
    // the same link made now works: only its time window differs
    expect((await fetch((await storage.results.link(blob, 60)).url)).status).toBe(200);
  });
});
