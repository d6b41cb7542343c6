/**
 * Storage that cannot answer (refused, silent, busy) makes every HTTP route answer 503
 * problem+json with Retry-After within the request budget, never a 500 or a hang in the SDKs' retries.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { loadSettings } from '../../shared/config';
import { deadLetterRoutes } from '../../shared/http/dead-letters';
import { healthRoutes } from '../../shared/http/health';
import { imageRoutes } from '../../shared/http/images';
import { jobActionRoutes } from '../../shared/http/job-actions';
import { jobRoutes } from '../../shared/http/jobs';
import { metricsRoutes } from '../../shared/http/metrics';
import { purgeRoutes } from '../../shared/http/purge';
import { taskRoutes } from '../../shared/http/tasks';
import { requestBudget, Storage } from '../../shared/storage/clients';
import { azuriteConnectionString } from '../../shared/storage/connection';
import { resourceNames } from '../../shared/storage/names';
import { asStorageOutage, RETRY_AFTER_SECONDS } from '../../shared/storage/outage';
import { photo } from '../helpers/images';
import { call, multipart, type CallOptions, type CallResult } from '../helpers/http';
import { uniqueNamespace } from '../helpers/storage';

const settings = loadSettings({ STORAGE_REQUEST_TIMEOUT_MS: '500' });
/** Far beyond the budget (2 tries of 500 ms), far below the ~16 s the SDKs' default retries took. */
const DEADLINE_MS = 8000;

const JOB = '0b6f4c1e-8d3a-4c57-9a51-2f1e0c9d7a11';
const TASK = `${JOB}_0000`;

type Handler = Parameters<typeof call>[0];

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const servers: net.Server[] = [];
const sockets = new Set<net.Socket>();
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) if (s instanceof http.Server) s.closeAllConnections();
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** Storage endpoints of each kind of outage. */
async function outage(kind: 'refused' | 'silent' | 'busy'): Promise<string> {
  if (kind === 'refused') {
    const server = net.createServer();
    const port = await listen(server);
    await new Promise((resolve) => server.close(resolve)); // nothing listens there any more
    return azuriteConnectionString({ blob: port, queue: port, table: port });
  }
  const server =
    kind === 'silent'
      ? net.createServer((socket) => sockets.add(socket)) // accepts, never answers
      : http.createServer((_req, res) => {
          res.writeHead(503, { 'x-ms-error-code': 'ServerBusy', 'retry-after': '2' });
          res.end();
        });
  servers.push(server);
  const port = await listen(server);
  return azuriteConnectionString({ blob: port, queue: port, table: port });
}

async function routesOver(connectionString: string) {
  const storage = new Storage(connectionString, resourceNames(uniqueNamespace()), requestBudget(settings));
  const get = () => storage;
  const png = await photo(32, 24, 'png');
  const form = multipart([{ name: 'a.png', data: png, type: 'image/png' }], { filters: 'grayscale' });
  const calls: [string, Handler, CallOptions][] = [];
  const add = (name: string, handler: Handler, options: CallOptions) => calls.push([name, handler, options]);
  const images = imageRoutes(get, settings);
  const jobs = jobRoutes(get, settings);
  const tasks = taskRoutes(get);
  const dead = deadLetterRoutes(get);
  const metrics = metricsRoutes(get, settings);
  add('GET /images', images.listImages, { path: '/api/images' });
  add('GET /images/{name}', images.getImage, { path: '/api/images/a.png', params: { name: 'a.png' } });
  add('GET /images/{name}/info', images.getImageInfo, { path: '/api/images/a.png/info', params: { name: 'a.png' } });
  const put = { method: 'PUT', path: '/api/images/a.png', params: { name: 'a.png' }, body: png };
  add('PUT /images/{name}', images.putImage, { ...put, headers: { 'content-type': 'image/png' } });
  const del = { method: 'DELETE', path: '/api/images/a.png', params: { name: 'a.png' } };
  add('DELETE /images/{name}', images.deleteImage, del);
  const jsonJob = { filters: ['grayscale'], images: ['a.png'] };
  add('POST /jobs (json)', jobs.submitJob, { method: 'POST', path: '/api/jobs', body: jsonJob });
  const rawJob = { method: 'POST', path: '/api/jobs?filters=grayscale', body: png };
  add('POST /jobs (raw)', jobs.submitJob, { ...rawJob, headers: { 'content-type': 'image/png' } });
  const formJob = { method: 'POST', path: '/api/jobs', body: form.body };
  add('POST /jobs (multipart)', jobs.submitJob, { ...formJob, headers: { 'content-type': form.contentType } });
  add('GET /jobs/{id}', jobs.getJob, { path: `/api/jobs/${JOB}`, params: { job_id: JOB } });
  const actions = jobActionRoutes(get);
  add('GET /jobs', actions.listJobs, { path: '/api/jobs' });
  add('POST /jobs/{id}/retry', actions.retryJob, { method: 'POST', path: '', params: { job_id: JOB } });
  add('DELETE /jobs/{id}', actions.deleteJob, { method: 'DELETE', path: '', params: { job_id: JOB } });
  add('GET /tasks/{id}', tasks.getTask, { path: `/api/tasks/${TASK}`, params: { task_id: TASK } });
  const result = { path: `/api/tasks/${TASK}/result`, params: { task_id: TASK } };
  add('GET /tasks/{id}/result', tasks.getTaskResult, result);
  add('GET /dead-letters', dead.deadLetters, { path: '/api/dead-letters' });
  const requeue = { method: 'POST', path: '/api/dead-letters/light/requeue', params: { capability: 'light' } };
  add('POST /dead-letters/{cap}/requeue', dead.requeue, requeue);
  const one = { method: 'POST', path: '/api/dead-letters/light/a1/requeue', params: { capability: 'light', id: 'a1' } };
  add('POST /dead-letters/{cap}/{id}/requeue', dead.requeueOne, one);
  add('GET /metrics', metrics.metrics, { path: '/api/metrics' });
  add('GET /metrics?format=prometheus', metrics.metrics, { path: '/api/metrics?format=prometheus' });
  add('GET /metrics/history', metrics.metricsHistory, { path: '/api/metrics/history' });
  add('GET /workers', metrics.workers, { path: '/api/workers' });
  add('DELETE /tasks', purgeRoutes(get).purgeTasks, { method: 'DELETE', path: '/api/tasks' });
  add('GET /health', healthRoutes(get, settings).health, { path: '/api/health' });
  return calls;
}

/** The call's answer, or a failure when it does not come before the deadline. */
async function answered(handler: Handler, options: CallOptions): Promise<CallResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([call(handler, options), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe.each(['refused', 'silent', 'busy'] as const)('storage %s', (kind) => {
  it('every route answers 503 problem+json with Retry-After, within the request budget', async () => {
    const calls = await routesOver(await outage(kind));
    const results = await Promise.all(
      calls.map(async ([name, handler, options]) => ({ name, res: await answered(handler, options) })),
    );
    for (const { name, res } of results) {
      const seen = { name, status: res.status, type: res.json?.type, retryAfter: res.headers['retry-after'] };
      if (name === 'GET /health') {
        // Health reports each probe rather than a problem; it has always answered 503 in time.
        expect(seen).toMatchObject({ status: 503 });
        expect(res.json).toMatchObject({ status: 'unavailable' });
        continue;
      }
      expect(seen).toEqual({
        name,
        status: 503,
        type: 'urn:image-pipeline:problem:storage_unavailable',
        retryAfter: kind === 'busy' ? '2' : String(RETRY_AFTER_SECONDS),
      });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json.detail).toMatch(
        kind === 'refused'
          ? /^Storage is unreachable \(ECONNREFUSED\); try again in 5 s$/
          : kind === 'silent'
            ? /^Storage did not answer in time; try again in 5 s$/
            : /^Storage answered 503 ServerBusy; try again in 2 s$/,
      );
    }
  }, 30000);
});

describe('what counts as a storage outage', () => {
  const restError = (statusCode: number, code?: string) =>
    Object.assign(new Error('x'), { name: 'RestError', statusCode, code });

  it.each([
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['connection reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['unknown host', Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' })],
    ['a try that timed out', Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' })],
    ['server busy', restError(503, 'ServerBusy')],
    ['throttled', restError(429)],
    ['internal error', restError(500, 'InternalError')],
    ['operation timed out', restError(500, 'OperationTimedOut')],
  ])('%s is an outage', (_, err) => {
    expect(asStorageOutage(err)).toMatchObject({ code: 'storage_unavailable', status: 503 });
  });

  it.each([
    ['a wrong key', restError(403, 'AuthenticationFailed')],
    ['a missing blob', restError(404, 'BlobNotFound')],
    ['a conflict', restError(409, 'TableAlreadyExists')],
    ['a lost ETag race', restError(412, 'UpdateConditionNotSatisfied')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a non-error', 'ECONNREFUSED'],
  ])('%s is not', (_, err) => {
    expect(asStorageOutage(err)).toBeUndefined();
  });
});
