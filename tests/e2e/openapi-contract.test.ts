/**
 * The contract holds for real answers: the built local host on Azurite, with keys on, is called once per
 * documented operation (and for its error answers: bad input, missing things, conflicts, no key), and
 * every answer's status, content type and body are checked against the operation in the app's own
 * GET /api/openapi.json (tests/helpers/openapi.ts, Ajv for JSON Schema 2020-12). The last test fails
 * when the document has an operation no test here called, so a new route gets its contract check.
 * Needs the build (npm run build).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { HOST_MAIN, spawnApp, stopHost, waitFor, type HostProcess, keyedAppEnv } from '../helpers/host';
import { photo, solid } from '../helpers/images';
import { Contract } from '../helpers/openapi';
import { uniqueNamespace, useAzurite } from '../helpers/storage';

const FUNCTION_KEY = 'contract-function-key-000000000';
const MASTER_KEY = 'contract-master-key-0000000000000';
const KEY = { 'x-functions-key': FUNCTION_KEY };
const MASTER = { 'x-functions-key': MASTER_KEY };
const UNKNOWN_JOB = '0b6f4c1e-8d3a-4c57-9a51-2f1e0c9d7a11';
const CALLBACK_SECRET = 'contract-callback-secret-000000000000';

const { azurite } = useAzurite();
let host: HostProcess;
let contract: Contract;
let api: string;

beforeAll(async () => {
  const namespace = uniqueNamespace();
  await new Storage(azurite().connectionString, resourceNames(namespace)).ensureResources();
  host = await spawnApp(
    HOST_MAIN,
    {
      ...keyedAppEnv(azurite().connectionString, namespace, { functionKey: FUNCTION_KEY, masterKey: MASTER_KEY }),
      CALLBACK_SECRET: CALLBACK_SECRET,
      CALLBACK_ALLOW_PRIVATE: 'true',
      METRICS_SCHEDULE: '*/2 * * * * *',
    },
    /Host listening on/,
  );
  api = host.url;
  contract = await Contract.of(api);
}, 60000);

afterAll(async () => {
  if (host) await stopHost(host);
  receiver?.close();
});

/** A completion-callback receiver that takes every event (204). */
let receiver: Server | undefined;
async function startReceiver(): Promise<string> {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
}

const get = (path: string, headers: Record<string, string> = KEY) => contract.fetch(`${api}/${path}`, { headers });
const send = (method: string, path: string, body: RequestInit['body'], headers: Record<string, string>) =>
  contract.fetch(`${api}/${path}`, { method, body, headers });
const postJson = (path: string, body: unknown, headers: Record<string, string> = KEY) =>
  send('POST', path, JSON.stringify(body), { ...headers, 'content-type': 'application/json' });

/** Polls a job through the contract until no task is queued or processing. */
const finished = (jobId: string) =>
  waitFor(`job ${jobId}`, async () => {
    const { body } = await get(`jobs/${jobId}`);
    return ['succeeded', 'failed', 'partially_failed'].includes(body.status) ? body : undefined;
  });

describe('every answer of the running app matches its operation in /api/openapi.json', () => {
  it('service: health, the filter catalog and the document itself, without a key', async () => {
    expect((await get('health', {})).status).toBe(200);
    expect((await get('filters', {})).status).toBe(200);
    const { status, body } = await get('openapi.json', {});
    expect([status, body.servers]).toEqual([200, [{ url: api }]]);
  });

  it('dashboard: the page, a cached copy, its assets and an unknown asset', async () => {
    const page = await get('dashboard', {});
    expect(page.status).toBe(200);
    expect((await get('dashboard', { 'if-none-match': page.headers.get('etag')! })).status).toBe(304);
    expect((await get('dashboard/assets/dashboard.js', {})).status).toBe(200);
    expect((await get('dashboard/assets/dashboard.css', {})).status).toBe(200);
    expect((await get('dashboard/assets/nope.js', {})).status).toBe(404);
  });

  it('images: upload, conflicts, replace, read, info, list, refusals, delete', async () => {
    const png = await photo(64, 48);
    const put = (name: string, body: RequestInit['body'], headers: Record<string, string> = {}, query = '') =>
      send('PUT', `images/${name}${query}`, body, { ...KEY, 'content-type': 'image/png', ...headers });
    expect((await put('contract.png', png)).status).toBe(201);
    expect((await put('contract.png', png)).status).toBe(409);
    expect((await put('contract.png', png, {}, '?overwrite=true')).status).toBe(200);
    expect((await put('contract.png', png, {}, '?overwrite=maybe')).status).toBe(400);
    expect((await put('contract.png', png, { 'if-match': '"0x8DEADBEEF"' })).status).toBe(412);
    expect((await put('text.png', 'hello', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await put('notimage.png', Buffer.from('not an image at all'))).status).toBe(415);
    expect((await put('cut.png', png.subarray(0, png.length - 20))).status).toBe(422);
    expect((await put('gone.png', await solid(8, 8, { r: 1, g: 2, b: 3 }))).status).toBe(201);

    expect((await get('images/contract.png')).status).toBe(200);
    expect((await get('images/missing.png')).status).toBe(404);
    expect((await get('images/..bad')).status).toBe(400);
    expect((await get('images/contract.png/info')).body).toMatchObject({ width: 64, height: 48, format: 'png' });
    expect((await get('images/missing.png/info')).status).toBe(404);
    expect((await get('images/..bad/info')).status).toBe(400);
    expect((await get('images')).body.count).toBeGreaterThanOrEqual(2);

    expect((await send('DELETE', 'images/gone.png', undefined, MASTER)).status).toBe(204);
    expect((await send('DELETE', 'images/gone.png', undefined, MASTER)).status).toBe(404);
    expect((await send('DELETE', 'images/..bad', undefined, MASTER)).status).toBe(400);
    expect((await send('DELETE', 'images/contract.png', undefined, KEY)).status).toBe(401);
  });

  it('jobs and tasks: the three submit forms, progress, records, results and their refusals', async () => {
    const json = await postJson('jobs', { images: ['contract.png'], filters: [{ name: 'resize', width: 32 }] });
    expect(json.status).toBe(202);
    const raw = await send('POST', 'jobs?filters=grayscale&format=webp', await photo(40, 30), {
      ...KEY,
      'content-type': 'image/png',
    });
    expect(raw.status).toBe(202);
    const form = new FormData();
    form.append('filters', 'blur');
    form.append('image', new Blob([await photo(40, 30, 'jpeg')], { type: 'image/jpeg' }), 'form.jpg');
    const multipart = await contract.fetch(`${api}/jobs`, { method: 'POST', body: form, headers: KEY });
    expect(multipart.status).toBe(202);
    // a task that fails when it runs: the crop starts outside the image
    const failing = await postJson('jobs', {
      images: ['contract.png'],
      filters: [{ name: 'crop', left: 5000, width: 8, height: 8 }],
    });
    expect(failing.status).toBe(202);

    expect((await postJson('jobs', { images: ['contract.png'], filters: ['blurr'] })).status).toBe(400);
    expect((await postJson('jobs', { images: ['missing.png'], filters: ['blur'] })).status).toBe(404);
    expect((await send('POST', 'jobs', 'filters=blur', { ...KEY, 'content-type': 'text/plain' })).status).toBe(415);
    expect(
      (await send('POST', 'jobs?filters=blur', 'not an image', { ...KEY, 'content-type': 'image/png' })).status,
    ).toBe(415);
    expect((await postJson('jobs', { filters: ['blur'] }, {})).status).toBe(401);
    // a completion callback: the submit answer and the job detail carry where it stands
    const hook = await startReceiver();
    const called = await postJson('jobs', { images: ['contract.png'], filters: ['flip'], callback_url: hook });
    expect([called.status, called.body.callback]).toEqual([202, { url: hook, state: 'pending' }]);
    expect(
      (await postJson('jobs', { images: ['contract.png'], filters: ['flip'], callback_url: 'ftp://x' })).status,
    ).toBe(400);
    await waitFor(`callback of ${called.body.job_id}`, async () => {
      const { body } = await get(`jobs/${called.body.job_id}`);
      return body.callback?.state === 'delivered' ? body : undefined;
    });

    for (const submitted of [json, raw, multipart])
      expect((await finished(submitted.body.job_id)).status).toBe('succeeded');
    expect((await finished(failing.body.job_id)).status).toBe('failed');
    expect((await get(`jobs/${UNKNOWN_JOB}`)).status).toBe(404);
    expect((await get('jobs/not-a-uuid')).status).toBe(400);

    const task = json.body.tasks[0].task_id as string;
    expect((await get(`tasks/${task}`)).body).toMatchObject({ status: 'succeeded' });
    expect((await get(`tasks/${UNKNOWN_JOB}_0000`)).status).toBe(404);
    expect((await get('tasks/nope')).status).toBe(400);
    expect((await get(`tasks/${task}/result`)).status).toBe(302);
    const stream = await get(`tasks/${task}/result?download=stream`);
    expect([stream.status, stream.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    expect((await get(`tasks/${task}/result?download=zip`)).status).toBe(400);
    expect((await get(`tasks/${failing.body.tasks[0].task_id}/result`)).status).toBe(409);
    expect((await get(`tasks/${UNKNOWN_JOB}_0000/result`)).status).toBe(404);

    // the job list, retry and delete
    const page = await get('jobs?limit=2');
    expect([page.status, page.body.jobs.length, typeof page.body.continuation]).toEqual([200, 2, 'string']);
    expect((await get(`jobs?limit=2&continuation=${page.body.continuation}`)).status).toBe(200);
    expect((await get('jobs?status=failed')).body.jobs.map((j: { job_id: string }) => j.job_id)).toContain(
      failing.body.job_id,
    );
    expect((await get('jobs?continuation=garbled!')).status).toBe(400);
    expect((await get('jobs?limit=0')).status).toBe(400);
    const retried = await send('POST', `jobs/${failing.body.job_id}/retry`, undefined, KEY);
    expect([retried.status, retried.body.requeued]).toEqual([200, [failing.body.tasks[0].task_id]]);
    expect((await send('POST', `jobs/${UNKNOWN_JOB}/retry`, undefined, KEY)).status).toBe(404);
    expect((await send('POST', 'jobs/not-a-uuid/retry', undefined, KEY)).status).toBe(400);
    expect((await finished(failing.body.job_id)).status).toBe('failed');
    expect((await send('DELETE', `jobs/${failing.body.job_id}`, undefined, KEY)).status).toBe(401);
    const deleted = await send('DELETE', `jobs/${failing.body.job_id}`, undefined, MASTER);
    expect([deleted.status, deleted.body.deleted.task_records]).toEqual([200, 1]);
    expect((await send('DELETE', `jobs/${failing.body.job_id}`, undefined, MASTER)).status).toBe(404);
    expect((await send('DELETE', 'jobs/not-a-uuid', undefined, MASTER)).status).toBe(400);
    // a job still at work is not deleted without ?force=true
    const busy = await postJson('jobs', { images: ['contract.png'], filters: [{ name: 'median', size: 9 }] });
    const active = await send('DELETE', `jobs/${busy.body.job_id}`, undefined, MASTER);
    expect([409, 200]).toContain(active.status); // 200 only if the job already ended
    if (active.status === 409) expect((await finished(busy.body.job_id)).status).toBe('succeeded');
  }, 120000);

  it('metrics, history, workers and dead letters', async () => {
    expect((await get('metrics')).status).toBe(200);
    const text = await get('metrics?format=prometheus');
    expect([text.status, text.headers.get('content-type')]).toEqual([200, expect.stringMatching(/^text\/plain/)]);
    expect((await get('metrics?format=xml')).status).toBe(400);
    expect((await get('metrics')).body.live).toBeDefined();
    // a snapshot the timer stored, asked for by its timestamp: no live queues (that is history)
    const stored = await waitFor('a stored snapshot', async () => {
      const { body } = await get('metrics/history?minutes=5');
      return body.snapshots.at(-1)?.timestamp as string | undefined;
    });
    const at = await get(`metrics?at=${encodeURIComponent(stored)}`);
    expect([at.status, at.body.timestamp, at.body.live]).toEqual([200, stored, undefined]);
    expect((await get('metrics?at=2000-01-01T00:00:00.000Z')).status).toBe(404);
    expect((await get('metrics?at=yesterday')).status).toBe(400);
    expect((await get('metrics/history?minutes=5')).status).toBe(200);
    expect((await get('metrics/history?minutes=-1')).status).toBe(400);
    expect((await get('workers')).body.count).toBeGreaterThanOrEqual(1);
    expect((await get('dead-letters')).status).toBe(200);
    expect((await send('POST', 'dead-letters/light/requeue', undefined, MASTER)).status).toBe(404);
    expect((await send('POST', 'dead-letters/medium/requeue', undefined, MASTER)).status).toBe(400);
    // one letter: none in this app, so the app says so (the 200 and 409/422 are in tests/functions/dead-letter-requeue)
    expect((await send('POST', 'dead-letters/light/no-such-letter/requeue', undefined, MASTER)).status).toBe(404);
    expect((await send('POST', 'dead-letters/light/no-such-letter/requeue', undefined, KEY)).status).toBe(401);
  });

  it('admin: purge', async () => {
    expect((await send('DELETE', 'tasks', undefined, KEY)).status).toBe(401);
    expect((await send('DELETE', 'tasks', undefined, MASTER)).status).toBe(200);
  });

  it('called every operation of the document', () => {
    const documented = Object.values<Record<string, { operationId: string }>>(contract.doc.paths).flatMap((item) =>
      Object.values(item).map((op) => op.operationId),
    );
    expect(documented.filter((id) => !contract.seen.has(id)).sort()).toEqual([]);
  });
});
