/**
 * Jobs you can list and act on, through the built local host with keys on (as `npm start` runs it) and
 * the built CLI: GET /api/jobs, GET /api/jobs/{id}, POST /api/jobs/{id}/retry, DELETE /api/jobs/{id},
 * each with bad input answered as problem+json. A job with one good and one corrupt image partially
 * fails; the corrupt image is replaced and the job retried: the same task succeeds on attempt 2.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { Storage } from '../../shared/storage/clients';
import { resourceNames } from '../../shared/storage/names';
import { HOST_MAIN, jobDone, keyed, spawnApp, stopHost, waitFor, type HostProcess, keyedAppEnv } from '../helpers/host';
import { photo } from '../helpers/images';
import { uniqueNamespace } from '../helpers/storage';

const CLI = path.resolve(__dirname, '../../dist/scripts/cli.js');
const FUNCTION_KEY = 'jobs-e2e-function-key-0000000000';
const MASTER_KEY = 'jobs-e2e-master-key-000000000000';
const FN = keyed(FUNCTION_KEY);
const ADMIN = keyed(MASTER_KEY);

let azurite: RunningAzurite;
let host: HostProcess;
let storage: Storage;

beforeAll(async () => {
  azurite = await startAzurite();
  const namespace = uniqueNamespace();
  storage = new Storage(azurite.connectionString, resourceNames(namespace));
  await storage.ensureResources();
  await storage.images.getBlockBlobClient('good.png').uploadData(await photo(48, 32, 'png'));
  await storage.images.getBlockBlobClient('broken.png').uploadData(Buffer.from('not an image at all'));
  host = await spawnApp(
    HOST_MAIN,
    {
      ...keyedAppEnv(azurite.connectionString, namespace, { functionKey: FUNCTION_KEY, masterKey: MASTER_KEY }),
    },
    /Host listening on/,
  );
}, 90000);

afterAll(async () => {
  if (host) await stopHost(host);
  await azurite?.stop();
});

async function request(method: string, route: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(`${host.url}${route}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: text ? JSON.parse(text) : null };
}

function expectProblem(res: Awaited<ReturnType<typeof request>>, status: number, code: string) {
  expect([res.status, res.type]).toEqual([status, expect.stringMatching(/^application\/problem\+json/)]);
  expect(res.json).toMatchObject({ type: `urn:image-pipeline:problem:${code}`, status, detail: expect.any(String) });
}

function cli(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, IMAGE_PIPELINE_URL: host.url };
    delete env.IMAGE_PIPELINE_KEY;
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('jobs through the running app', () => {
  let jobId: string;
  let brokenTask: string;

  it('a job with a corrupt image partially fails; GET /api/jobs lists it, newest first', async () => {
    const submitted = await request('POST', '/jobs', FN, {
      images: ['good.png', 'broken.png'],
      filters: ['grayscale'],
      output: { format: 'png' },
    });
    expect(submitted.status).toBe(202);
    jobId = submitted.json.job_id;
    brokenTask = submitted.json.tasks[1].task_id;
    await jobDone(host.url, jobId, 60000, FN);
    const listed = await request('GET', '/jobs?limit=5', FN);
    expect(listed.status).toBe(200);
    expect(listed.json.jobs[0]).toMatchObject({
      job_id: jobId,
      status: 'partially_failed',
      counts: { succeeded: 1, failed: 1, queued: 0, processing: 0 },
      filters: ['grayscale'],
    });
    expect((await request('GET', '/jobs?status=failed', FN)).json.jobs).toEqual([]);
    expect((await request('GET', '/jobs', {})).status).toBe(401);
  }, 90000);

  it('GET /api/jobs with bad parameters: 400 problem+json naming each', async () => {
    const bad = await request('GET', '/jobs?status=broken&limit=1000&continuation=%7B%7D', FN);
    expectProblem(bad, 400, 'validation_failed');
    expect(bad.json.errors.map((e: { field: string }) => e.field)).toEqual([
      'query.status',
      'query.limit',
      'query.continuation',
    ]);
  });

  it("GET /api/jobs/{id}: the failed task's reason and error, each task's image and result links", async () => {
    const job = await request('GET', `/jobs/${jobId}`, FN);
    expect(job.status).toBe(200);
    expect(job.json.tasks[1]).toMatchObject({
      task_id: brokenTask,
      status: 'failed',
      image: 'broken.png',
      image_url: `${host.url}/images/broken.png`,
      failure_type: 'job_failure',
      failure_reason: expect.any(String),
      error: expect.any(String),
    });
    expect(job.json.tasks[0]).toMatchObject({ status: 'succeeded', result_url: expect.stringMatching(/^http/) });
  });

  it('POST /api/jobs/{id}/retry: the failed task runs again as attempt 2 and the job succeeds', async () => {
    expectProblem(await request('POST', '/jobs/not-a-job/retry', FN), 400, 'validation_failed');
    expectProblem(await request('POST', '/jobs/00000000-0000-4000-8000-000000000000/retry', FN), 404, 'not_found');
    await storage.images.getBlockBlobClient('broken.png').uploadData(await photo(48, 32, 'png'));
    const retried = await request('POST', `/jobs/${jobId}/retry`, FN);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ job_id: jobId, requeued: [brokenTask], failed_before: 1 });
    const done = await jobDone(host.url, jobId, 60000, FN);
    expect(done.status).toBe('succeeded');
    expect(done.tasks[1]).toMatchObject({ task_id: brokenTask, status: 'succeeded', attempts: 2, error: null });
    const listed = await waitFor('the list to show the retried job succeeded', async () => {
      const page = await request('GET', '/jobs', FN);
      return page.json.jobs[0].status === 'succeeded' ? page.json.jobs[0] : undefined;
    });
    expect(listed).toMatchObject({ job_id: jobId, retries: 1 });
    expect((await request('POST', `/jobs/${jobId}/retry`, FN)).json).toMatchObject({ requeued: [] });
  }, 90000);

  it('the CLI lists, shows and retries the job', async () => {
    const jobs = await cli(['--key', FUNCTION_KEY, 'jobs', '--limit', '5']);
    expect([jobs.code, jobs.stderr]).toEqual([0, '']);
    expect(jobs.stdout).toMatch(new RegExp(`${jobId}\\s+│\\s*succeeded\\s+│.*│\\s*2/0/2\\s+│\\s*light`));
    const job = await cli(['--key', FUNCTION_KEY, 'job', jobId]);
    expect(job.code).toBe(0);
    expect(job.stdout).toMatch(/0001\s+│\s*broken\.png\s+│\s*succeeded\s+│\s*2\s+│/);
    const retry = await cli(['--key', FUNCTION_KEY, 'retry', jobId]);
    expect([retry.code, retry.stdout]).toEqual([0, `job ${jobId}: no failed task to retry\n`]);
  }, 60000);

  it('DELETE /api/jobs/{id}: the master key only; removes the job; a second delete is 404', async () => {
    expect((await request('DELETE', `/jobs/${jobId}`, FN)).status).toBe(401);
    expectProblem(await request('DELETE', '/jobs/nope', ADMIN), 400, 'validation_failed');
    const deleted = await cli(['--key', MASTER_KEY, 'delete', jobId], 'y\n');
    expect([deleted.code, deleted.stderr]).toEqual([0, '']);
    expect(deleted.stdout).toMatch(/deleted job .*: 2 task record\(s\), 2 result\(s\), its index row/);
    expectProblem(await request('GET', `/jobs/${jobId}`, FN), 404, 'not_found');
    expectProblem(await request('DELETE', `/jobs/${jobId}`, ADMIN), 404, 'not_found');
    expect((await request('GET', '/jobs', FN)).json.jobs).toEqual([]);
    expect(await storage.images.getBlockBlobClient('good.png').exists()).toBe(true);
  }, 60000);
});
