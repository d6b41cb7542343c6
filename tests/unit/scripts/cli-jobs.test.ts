/**
 * The CLI's job commands in-process through `main(argv, io)` against a stand-in HTTP server (as
 * tests/unit/scripts/cli.test.ts does for the others): `jobs` (one page, --all following the
 * continuation), `job <id>`, `retry <id>`, `delete <id>` (asks first, the master key) and their usage errors.
 * The real app: tests/e2e/jobs.test.ts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { main } from '../../../scripts/cli';
import { sinceOption } from '../../../scripts/cli/commands/jobs';
import type { CliIo } from '../../../scripts/cli/io';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const NO_LOCAL_KEYS: NodeJS.ProcessEnv = { LOCAL_HOST_FUNCTION_KEY: '', LOCAL_HOST_MASTER_KEY: '' };

async function run(argv: string[], opts: { stdin?: string } = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: CliIo = {
    stdout,
    stderr,
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
    env: NO_LOCAL_KEYS,
    interrupts: () => new AbortController().signal,
  };
  const code = await main(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const JOB = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const OLDER = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
const counts = (succeeded: number, failed: number) => ({ queued: 0, processing: 0, succeeded, failed });
const listed = (job_id: string, status: string, created_at: string) => ({
  job_id,
  status,
  created_at,
  total: 2,
  counts: status === 'succeeded' ? counts(2, 0) : counts(1, 1),
  capability: 'light',
  images: 2,
  filters: ['resize', 'grayscale'],
  output_format: 'jpeg',
  retries: 0,
});

describe('job commands against a stand-in server', () => {
  let server: http.Server;
  let url: string;
  const routes = new Map<string, { status: number; body: unknown; key?: string }>();
  const received: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      received.push(`${req.method} ${req.url}`);
      const route = routes.get(`${req.method} ${req.url}`);
      if (!route || (route.key && req.headers['x-functions-key'] !== route.key)) {
        res.writeHead(route ? 401 : 404, { 'content-length': '0' });
        return void res.end();
      }
      const problem = route.status >= 400;
      res.writeHead(route.status, { 'content-type': problem ? 'application/problem+json' : 'application/json' });
      res.end(JSON.stringify(route.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    routes.clear();
    received.length = 0;
  });

  it('jobs: one page as a table, and how to get more', async () => {
    routes.set('GET /api/jobs?status=partially_failed&limit=1', {
      status: 200,
      body: { jobs: [listed(JOB, 'partially_failed', '2026-12-02T07:00:00.000Z')], count: 1, continuation: 'TOKEN1' },
    });
    const r = await run(['--url', url, 'jobs', '--status', 'partially_failed', '--limit', '1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/job\s+│\s*status\s+│\s*created/);
    expect(r.stdout).toContain(JOB);
    expect(r.stdout).toMatch(
      /partially_failed\s+│\s*2026-12-02T07:00:00.000Z\s+│\s*1\/1\/2\s+│\s*light\s+│\s*resize,grayscale/,
    );
    expect(r.stdout).toMatch(/more: --all, or --continuation TOKEN1\n$/);
  });

  it('jobs --all follows the continuation until the last page', async () => {
    routes.set('GET /api/jobs', {
      status: 200,
      body: { jobs: [listed(JOB, 'succeeded', '2026-12-02T07:00:00.000Z')], continuation: 'TOKEN1' },
    });
    routes.set('GET /api/jobs?continuation=TOKEN1', {
      status: 200,
      body: { jobs: [listed(OLDER, 'succeeded', '2026-12-01T07:00:00.000Z')], continuation: null },
    });
    const r = await run(['--url', url, 'jobs', '--all']);
    expect(r.code).toBe(0);
    expect(received).toEqual(['GET /api/jobs', 'GET /api/jobs?continuation=TOKEN1']);
    expect(r.stdout.indexOf(JOB)).toBeLessThan(r.stdout.indexOf(OLDER));
    expect(r.stdout).not.toMatch(/more:/);
  });

  it('jobs: bad options are usage errors (exit 2) and nothing is sent', async () => {
    for (const args of [
      ['--status', 'done'],
      ['--limit', '0'],
      ['--limit', '101'],
      ['--since', 'yesterday'],
    ]) {
      const r = await run(['--url', url, 'jobs', ...args]);
      expect([args, r.code]).toEqual([args, 2]);
    }
    expect(received).toEqual([]);
    expect(sinceOption('6h', new Date('2026-12-02T12:00:00Z'))).toBe('2026-12-02T06:00:00.000Z');
    expect(sinceOption('7d', new Date('2026-12-08T00:00:00Z'))).toBe('2026-12-01T00:00:00.000Z');
    expect(sinceOption('2026-12-01T00:00:00Z')).toBe('2026-12-01T00:00:00Z');
  });

  it('jobs: an API problem is printed with its field errors (exit 1)', async () => {
    routes.set('GET /api/jobs?continuation=bad', {
      status: 400,
      body: {
        type: 'urn:image-pipeline:problem:validation_failed',
        status: 400,
        detail: 'Expected the continuation token of a previous page for query.continuation',
      },
    });
    const r = await run(['--url', url, 'jobs', '--continuation', 'bad']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Expected the continuation token of a previous page.*\(HTTP 400\)/);
  });

  it('job <id>: each task with its status, attempts, result and failure, and the retry hint', async () => {
    routes.set(`GET /api/jobs/${JOB}`, {
      status: 200,
      body: {
        job_id: JOB,
        status: 'partially_failed',
        total: 2,
        counts: counts(1, 1),
        tasks: [
          {
            task_id: `${JOB}_0000`,
            image: 'a.jpg',
            status: 'succeeded',
            attempts: 1,
            duration_ms: 42,
            output: { blob: 'x', format: 'jpeg', content_type: 'image/jpeg', width: 64, height: 48, bytes: 900 },
            failure_reason: null,
            error: null,
          },
          {
            task_id: `${JOB}_0001`,
            image: 'b.jpg',
            status: 'failed',
            attempts: 2,
            duration_ms: null,
            output: null,
            failure_reason: 'corrupt_image',
            error: 'The image is truncated',
          },
        ],
      },
    });
    const r = await run(['--url', url, 'job', JOB]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job .*: partially_failed · 1 succeeded, 1 failed, 0 queued, 0 processing of 2\n/);
    expect(r.stdout).toMatch(/0000\s+│\s*a\.jpg\s+│\s*succeeded\s+│\s*1\s+│\s*42 ms\s+│\s*64x48 jpeg\s+│\s*-/);
    expect(r.stdout).toMatch(
      /0001\s+│\s*b\.jpg\s+│\s*failed\s+│\s*2\s+│\s*-\s+│\s*-\s+│\s*corrupt_image: The image is truncated/,
    );
    expect(r.stdout).toContain(`retry the 1 failed task(s) with: image-pipeline retry ${JOB}`);
    expect((await run(['--url', url, 'job', 'not-a-uuid'])).code).toBe(2);
  });

  it('retry <id>: prints what went back on the queue, or that nothing failed', async () => {
    routes.set(`POST /api/jobs/${JOB}/retry`, {
      status: 200,
      body: { job_id: JOB, requeued: [`${JOB}_0001`], failed_before: 1 },
    });
    const r = await run(['--url', url, 'retry', JOB]);
    expect(r).toEqual({
      code: 0,
      stderr: '',
      stdout: `job ${JOB}: requeued 1 failed task(s) as a new attempt\n  ${JOB}_0001\n`,
    });
    routes.set(`POST /api/jobs/${JOB}/retry`, { status: 200, body: { job_id: JOB, requeued: [], failed_before: 0 } });
    expect((await run(['--url', url, 'retry', JOB])).stdout).toBe(`job ${JOB}: no failed task to retry\n`);
    routes.set(`POST /api/jobs/${OLDER}/retry`, {
      status: 404,
      body: { type: 'urn:image-pipeline:problem:not_found', status: 404, detail: `No job ${OLDER}` },
    });
    const missing = await run(['--url', url, 'retry', OLDER]);
    expect([missing.code, missing.stderr]).toEqual([1, `error: No job ${OLDER} (HTTP 404)\n`]);
  });

  it('a job id in upper case is sent in lower case; one that is no UUID is a usage error and nothing is sent', async () => {
    routes.set(`POST /api/jobs/${JOB}/retry`, { status: 200, body: { job_id: JOB, requeued: [], failed_before: 0 } });
    expect(await run(['--url', url, 'retry', JOB.toUpperCase()])).toMatchObject({ code: 0 });
    expect(received).toEqual([`POST /api/jobs/${JOB}/retry`]);
    received.length = 0;
    const misplaced = `${JOB.replace(/-/g, '')}----`; // 36 characters of hex and dashes, not in 8-4-4-4-12
    const bad = await run(['--url', url, 'job', misplaced]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`expected a job id (UUID), received '${misplaced}'`);
    expect(received).toEqual([]);
  });

  describe('delete <id>', () => {
    const REPORT = {
      job_id: JOB,
      deleted: { task_records: 2, results: 1, job_record: true },
      kept: ['source images (container images): other jobs may use them'],
    };

    it('refuses with exit 2 when stdin is not a terminal and nothing is typed; nothing is sent', async () => {
      const r = await run(['--url', url, 'delete', JOB]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe(
        `Delete job ${JOB} (its task records and results; source images are kept) at ${url}? [y/N] `,
      );
      expect(r.stderr).toMatch(/refusing to delete.*pass --yes/);
      expect((await run(['--url', url, 'delete', JOB], { stdin: 'n\n' })).stdout).toMatch(/Nothing deleted\.\n$/);
      expect(received).toEqual([]);
    });

    it('on yes (typed, or --yes) sends DELETE with the master key and prints what went', async () => {
      routes.set(`DELETE /api/jobs/${JOB}`, { status: 200, body: REPORT, key: 'master' });
      routes.set(`DELETE /api/jobs/${JOB}?force=true`, { status: 200, body: REPORT, key: 'master' });
      const typed = await run(['--url', url, '--key', 'master', 'delete', JOB], { stdin: 'yes\n' });
      expect(typed.code).toBe(0);
      expect(typed.stdout).toMatch(
        /deleted job .*: 2 task record\(s\), 1 result\(s\), its index row; kept source images \(container images\)/,
      );
      expect((await run(['--url', url, '--key', 'master', 'delete', JOB, '--yes', '--force'])).code).toBe(0);
      expect(received).toEqual([`DELETE /api/jobs/${JOB}`, `DELETE /api/jobs/${JOB}?force=true`]);
      const r = await run(['--url', url, '--key', 'function-key', 'delete', JOB, '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: ${url}/jobs/${JOB} answered HTTP 401: delete needs the app's master key; pass it with --key or IMAGE_PIPELINE_KEY\n`,
      );
    });
  });
});
