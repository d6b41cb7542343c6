/**
 * The CLI in-process through `main(argv, io)`: argument errors and their exit codes, how API
 * errors and an unreachable app are reported (against a tiny stand-in HTTP server), and the
 * pure pieces (tables, the stress report, the recommendation tally). The real app: tests/e2e/cli.test.ts.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../../../scripts/cli';
import { freePort } from '../../../scripts/azurite';
import { classifyInputs } from '../../../scripts/cli/commands/submit';
import { renderSnapshot } from '../../../scripts/cli/commands/metrics';
import { RecommendationTally, stressReport } from '../../../scripts/cli/commands/stress';
import { compareTable, uploadName } from '../../../scripts/cli/commands/compare';
import { percentile } from '../../../scripts/cli/format';
import { problemLines } from '../../../scripts/cli/api';
import { chooseKey } from '../../../scripts/cli/keys';
import { UsageError, type CliIo } from '../../../scripts/cli/io';
import type { Snapshot, TaskRecord } from '../../../scripts/cli/types';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const NO_LOCAL_KEYS: NodeJS.ProcessEnv = { LOCAL_HOST_FUNCTION_KEY: '', LOCAL_HOST_MASTER_KEY: '' };

async function run(
  argv: string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv; interrupt?: AbortController } = {},
): Promise<Run> {
  const stdout = new Capture();
  const stderr = new Capture();
  const interrupt = opts.interrupt ?? new AbortController();
  const io: CliIo = {
    stdout,
    stderr,
    stdin: Readable.from(opts.stdin === undefined ? [] : [opts.stdin]),
    // No local host key unless a test gives one: set and empty wins over local.settings.json (cli/keys.ts).
    env: opts.env ?? NO_LOCAL_KEYS,
    interrupts: () => interrupt.signal,
  };
  const code = await main(argv, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const ANSI = /\x1b\[/; // eslint-disable-line no-control-regex -- looking for colour codes on purpose

describe('command-line errors exit 2 with the usage on stderr', () => {
  it.each([
    ['an unknown command', ['bogus'], /unknown command 'bogus'/],
    ['an unknown option', ['check', '--nope'], /unknown option '--nope'/],
    ['a missing argument', ['stress', '1'], /missing required argument 'tasks_per_batch'/],
    ['non-numeric minutes', ['stress', 'soon', '10'], /argument 'minutes'.*expected a number above 0, received 'soon'/],
    ['zero minutes', ['stress', '0', '10'], /argument 'minutes'.*expected a number above 0/],
    ['negative minutes', ['stress', '-1', '10'], /unknown option '-1'|argument 'minutes'/],
    ['a fractional batch size', ['stress', '1', '2.5'], /tasks_per_batch.*integer from 1 to 100, received '2.5'/],
    ['a batch size above 100', ['stress', '1', '101'], /tasks_per_batch.*integer from 1 to 100/],
    ['a batch size of 0', ['stress', '1', '0'], /tasks_per_batch.*integer from 1 to 100/],
    ['a bad --interval', ['stress', '1', '10', '--interval', 'x'], /--interval.*expected a number above 0/],
    ['bad --params JSON', ['submit', 'a.jpg', '--filters', 'blur', '--params', '{oops'], /--params.*expected JSON/],
    ['a missing --filters', ['submit', 'a.jpg'], /required option '--filters <list>' not specified/],
    ['a bad --quality', ['submit', 'a.jpg', '--filters', 'blur', '--quality', '0'], /--quality.*integer from 1 to 100/],
    [
      'an unknown --format',
      ['submit', 'a.jpg', '--filters', 'blur', '--format', 'bmp'],
      /Allowed choices are jpeg, png, webp, avif/,
    ],
    ['an unknown capability', ['requeue', 'medium'], /Allowed choices are light, heavy/],
    ['a non-http --url', ['--url', 'ftp://x', 'check'], /expected an http\(s\) URL/],
    ['no command', [], /Usage: image-pipeline/],
  ])('%s', async (_what, argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Usage: image-pipeline/);
    expect(r.stdout).toBe('');
  });

  it('a misspelt filter is a bad command line, found before anything is sent', async () => {
    const url = `http://127.0.0.1:${await freePort()}/api`; // nothing listens: a request would fail with exit 1
    const r = await run(['--url', url, 'stress', '1', '10', '--filters', 'grayscal']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^error: the pipeline is not valid; nothing was submitted:\n {2}- .*'grayscal'.*did you mean 'grayscale'/,
    );
    expect(r.stdout).toBe('');
  });

  it('a bad IMAGE_PIPELINE_URL is a usage error too', async () => {
    const r = await run(['check'], { env: { IMAGE_PIPELINE_URL: 'not a url' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/IMAGE_PIPELINE_URL: expected an http\(s\) URL/);
  });

  it('--help and --version exit 0 on stdout', async () => {
    const help = await run(['stress', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: image-pipeline stress \[options\] <minutes> <tasks_per_batch>/);
    expect((await run(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('submit refuses a file whose name the API would refuse, before sending anything', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));
    writeFileSync(path.join(dir, 'my photo.jpg'), 'x');
    writeFileSync(path.join(dir, 'ok.jpg'), 'x');
    expect(() => classifyInputs(['my photo.jpg'], dir)).toThrow(UsageError);
    expect(() => classifyInputs(['missing/x.jpg'], dir)).toThrow('no such file: missing/x.jpg');
    mkdirSync(path.join(dir, 'other'));
    writeFileSync(path.join(dir, 'other', 'ok.jpg'), 'y');
    expect(() => classifyInputs(['ok.jpg', 'other/ok.jpg'], dir)).toThrow(/would both be uploaded as ok\.jpg/);
    expect(classifyInputs(['ok.jpg', 'in-container.png'], dir)).toEqual([
      { kind: 'file', file: path.join(dir, 'ok.jpg'), name: 'ok.jpg' },
      { kind: 'blob', name: 'in-container.png' },
    ]);
  });
});

describe('talking to the API', () => {
  it('an unreachable app is one line naming the URL, exit 1', async () => {
    const url = `http://127.0.0.1:${await freePort()}/api`;
    const r = await run(['check'], { env: { IMAGE_PIPELINE_URL: url } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^error: Cannot reach ${url}/health \\(.*ECONNREFUSED.*\\): is the app running\\? \\(npm start\\)$`),
      ),
    ]);
  });

  it('a host name that does not resolve asks about the host name, not about npm start', async () => {
    const url = 'http://no-such-host.invalid/api';
    const r = await run(['check', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: Cannot reach http:\/\/no-such-host\.invalid\/api\/health \(.*\): is the host name in the URL right\?\n$/,
    );
  });

  describe('against a stand-in server', () => {
    let server: http.Server;
    let url: string;
    let origin: string;
    const routes = new Map<string, { status: number; type?: string; body: unknown; key?: string }>();
    /** Every request the stand-in received, as "METHOD /path". */
    const received: string[] = [];

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        received.push(`${req.method} ${req.url}`);
        const route = routes.get(`${req.method} ${req.url}`);
        if (route?.key && req.headers['x-functions-key'] !== route.key) {
          // the Functions host answers a missing or wrong key with an empty 401
          res.writeHead(401);
          res.end();
          return;
        }
        if (!route) {
          // No route: what the Functions host answers (an empty 404, as FunctionInvocationMiddleware.cs of
          // Azure/azure-functions-host writes nothing when no function route matched), so the local host too.
          res.writeHead(404, { 'content-length': '0' });
          return void res.end();
        }
        res.writeHead(route.status, { 'content-type': route.type ?? 'application/json' });
        if (Buffer.isBuffer(route.body)) return void res.end(route.body);
        res.end(JSON.stringify(route.body));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      url = `${origin}/api`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
    beforeEach(() => {
      routes.clear();
      received.length = 0;
    });

    it('a URL without /api: says so and suggests the URL with it', async () => {
      const r = await run(['check', '--url', origin]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: ${origin}/health answered HTTP 404 with an empty body: ` +
          `no function has this route: is the URL missing /api? try --url ${origin}/api\n`,
      );
      const requeue = await run(['requeue', 'light', '--url', `${origin}/`]);
      expect(requeue.code).toBe(1); // not "nothing to requeue": the host, not the app, said 404
      expect(requeue.stderr).toMatch(/is the URL missing \/api\? try --url http:\/\/127\.0\.0\.1:\d+\/api$/m);
    });

    it('a route this app does not have under /api: asks whether the URL is this app', async () => {
      const r = await run(['check', '--url', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /HTTP 404 with an empty body: no function has this route: is http:\/\/127\.0\.0\.1:\d+\/api the image pipeline's API \(--url should end in \/api\)/,
      );
    });

    it('a success that is not JSON is named, not a SyntaxError', async () => {
      routes.set('GET /api/metrics', { status: 200, type: 'text/html', body: Buffer.from('<html></html>') });
      const r = await run(['metrics', '--url', url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/expected JSON from the image pipeline's API but received text\/html/);
    });

    it('prints a problem document: its summary once, then each field error, then what was left out', async () => {
      const first = "Expected an image in the images container for images[0] but received 'cat.jpg'";
      const second = "Expected an image in the images container for images[1] but received 'dog.png'";
      routes.set('POST /api/jobs', {
        status: 400,
        type: 'application/problem+json',
        body: {
          type: 'urn:image-pipeline:problem:validation_failed',
          title: 'The request is not valid',
          status: 400,
          // as ValidationError words it: the summary repeats every listed problem
          detail: `23 problems in the request: ${first}; ${second}; and 21 more problems not listed`,
          errors: [
            { field: 'images[0]', message: first },
            { field: 'images[1]', message: second },
          ],
        },
      });
      const r = await run(['--url', url, 'submit', 'cat.jpg', 'dog.png', '--filters', 'blur']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `error: 23 problems in the request (HTTP 400)\n  - ${first}\n  - ${second}\n  (and 21 more problems not listed)\n`,
      );
    });

    it('submit checks the pipeline before sending anything: a misspelt filter uploads nothing', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));
      writeFileSync(path.join(dir, 'photo.jpg'), 'not uploaded');
      const r = await run([
        '--url',
        url,
        'submit',
        path.join(dir, 'photo.jpg'),
        '--filters',
        'resize,blurr',
        '--params',
        '{"resize":{"width":-3}}',
      ]);
      expect(r.code).toBe(2);
      expect(received).toEqual([]);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: the pipeline is not valid; nothing was uploaded:$/m);
      expect(r.stderr).toMatch(/^ {2}- .*filters\[1\].*'blurr'.*did you mean 'blur'/m);
      expect(r.stderr).toMatch(/^ {2}- .*resize.*width.*-3/m);
    });

    it('submit with a misspelt image name uploads none of the files', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));
      writeFileSync(path.join(dir, 'photo.jpg'), 'not uploaded');
      routes.set('GET /api/images', {
        status: 200,
        body: { container: 'images', count: 1, images: [{ name: 'sample.jpg', bytes: 1 }] },
      });
      const r = await run(['--url', url, 'submit', path.join(dir, 'photo.jpg'), 'sampel.jpg', '--filters', 'flip']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^error: not a local file, nor an image in the images container: sampel\.jpg; nothing was uploaded$/m,
      );
      expect(received).toEqual(['GET /api/images']);
    });

    it('submit names each result after its source image, never over an existing file, and shows the mapping', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'cli-'));
      writeFileSync(path.join(dir, 'photo.jpg'), 'j');
      writeFileSync(path.join(dir, 'photo.png'), 'p');
      const out = path.join(dir, 'out');
      const jobId = '0b8e7a52-3d0c-4c8e-9a4e-5d3f0a1b2c3d';
      const task = (i: number, image: string): TaskRecord => ({
        task_id: `${jobId}_000${i}`,
        job_id: jobId,
        status: 'succeeded',
        image,
        capability: 'light',
        created_at: '2026-01-01T00:00:00.000Z',
        completed_at: '2026-01-01T00:00:01.000Z',
        duration_ms: 12,
        output: {
          blob: `${jobId}_000${i}.jpg`,
          format: 'jpeg',
          content_type: 'image/jpeg',
          width: 8,
          height: 6,
          bytes: 3,
        },
        failure_type: null,
        failure_reason: null,
        error: null,
      });
      const tasks = [task(0, 'photo.jpg'), task(1, 'photo.png'), task(2, 'photo-1.jpg')];
      for (const name of ['photo.jpg', 'photo.png'])
        routes.set(`PUT /api/images/${name}?overwrite=true`, {
          status: 201,
          body: { name, content_type: 'image/jpeg', bytes: 1 },
        });
      routes.set('GET /api/images', {
        status: 200,
        body: { container: 'images', count: 1, images: [{ name: 'photo-1.jpg', bytes: 1 }] },
      });
      routes.set('POST /api/jobs', {
        status: 202,
        body: { job_id: jobId, status_url: `${url}/jobs/${jobId}`, tasks },
      });
      routes.set(`GET /api/jobs/${jobId}`, {
        status: 200,
        body: {
          job_id: jobId,
          status: 'succeeded',
          total: 3,
          counts: { queued: 0, processing: 0, succeeded: 3, failed: 0 },
          tasks,
        },
      });
      for (const [i, t] of tasks.entries())
        routes.set(`GET /api/tasks/${t.task_id}/result`, {
          status: 200,
          type: 'image/jpeg',
          body: Buffer.from(`r${i}`),
        });
      // two local files and one image already in the container
      const images = [path.join(dir, 'photo.jpg'), path.join(dir, 'photo.png'), 'photo-1.jpg'];
      const argv = ['--url', url, 'submit', ...images, '--filters', 'flip', '--format', 'jpeg', '--out', out];
      const first = await run(argv);
      const second = await run(argv);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      // photo.jpg → photo.jpg; photo.png → photo-1.jpg (taken); the container's photo-1.jpg → photo-1-1.jpg
      expect(first.stdout).toMatch(/│ photo\.jpg\s+│ succeeded │ 8×6 jpeg │ 3\s+│ 12 ms │ photo\.jpg\s+│/);
      expect(first.stdout).toMatch(/│ photo\.png\s+│ succeeded │ 8×6 jpeg │ 3\s+│ 12 ms │ photo-1\.jpg\s+│/);
      expect(first.stdout).toMatch(/│ photo-1\.jpg\s+│ succeeded │ 8×6 jpeg │ 3\s+│ 12 ms │ photo-1-1\.jpg\s+│/);
      expect(second.code).toBe(0);
      expect(readdirSync(out).sort()).toEqual([
        'photo-1-1.jpg',
        'photo-1-2.jpg',
        'photo-1.jpg',
        'photo-2.jpg',
        'photo-3.jpg',
        'photo.jpg',
      ]);
      expect(readFileSync(path.join(out, 'photo.jpg'), 'utf8')).toBe('r0'); // the first run's, not overwritten
      expect(readFileSync(path.join(out, 'photo-1.jpg'), 'utf8')).toBe('r1');
      expect(readFileSync(path.join(out, 'photo-1-1.jpg'), 'utf8')).toBe('r2');
    });

    it('sends the function key from --key or IMAGE_PIPELINE_KEY, and says what to do on 401', async () => {
      routes.set('GET /api/dead-letters', { status: 200, key: 's3cret', body: { capabilities: [] } });
      const without = await run(['--url', url, 'dead-letters']);
      expect(without.code).toBe(1);
      expect(without.stderr).toBe(
        `error: ${url}/dead-letters answered HTTP 401: this route needs a function key; pass --key or set IMAGE_PIPELINE_KEY\n`,
      );
      const flag = await run(['--url', url, '--key', 's3cret', 'dead-letters']);
      expect([flag.code, flag.stderr]).toEqual([0, '']);
      const env = await run(['dead-letters'], {
        env: { ...NO_LOCAL_KEYS, IMAGE_PIPELINE_URL: url, IMAGE_PIPELINE_KEY: 's3cret' },
      });
      expect(env.code).toBe(0);
    });

    it('requeue says it needs the master key when the app answers 401', async () => {
      routes.set('POST /api/dead-letters/heavy/requeue', {
        status: 200,
        key: 'master',
        body: { capability: 'heavy', queue: 'tasks-heavy', requeued: 2, skipped: [] },
      });
      const without = await run(['--url', url, '--key', 'function-key', 'requeue', 'heavy']);
      expect([without.code, without.stderr]).toEqual([
        1,
        `error: ${url}/dead-letters/heavy/requeue answered HTTP 401: requeue needs the app's master key; pass it with --key or IMAGE_PIPELINE_KEY\n`,
      ]);
      const flag = await run(['--url', url, '--key', 'master', 'requeue', 'heavy']);
      expect([flag.code, flag.stdout]).toEqual([0, 'heavy: requeued 2 message(s) onto tasks-heavy; skipped 0\n']);
    });

    it('requeue <capability> <id> requeues one dead letter; an unknown id is an error', async () => {
      routes.set('POST /api/dead-letters/heavy/abc_0001/requeue', {
        status: 200,
        key: 'master',
        body: { capability: 'heavy', queue: 'tasks-heavy', requeued: 1, skipped: [] },
      });
      const one = await run(['--url', url, '--key', 'master', 'requeue', 'heavy', 'abc_0001']);
      expect([one.code, one.stdout]).toEqual([0, 'heavy: requeued 1 message(s) onto tasks-heavy; skipped 0\n']);
      // the app's own 404 (a problem): not "nothing to requeue" as for a capability, but an error
      routes.set('POST /api/dead-letters/heavy/nope/requeue', {
        status: 404,
        type: 'application/problem+json',
        key: 'master',
        body: {
          type: 'urn:image-pipeline:problem:not_found',
          title: 'Not found',
          status: 404,
          detail: 'No dead letter nope for heavy',
        },
      });
      const missing = await run(['--url', url, '--key', 'master', 'requeue', 'heavy', 'nope']);
      expect([missing.code, missing.stdout]).toEqual([1, '']);
      expect(missing.stderr).toMatch(/No dead letter nope for heavy/);
    });

    it('a localhost URL gets the local host key (function, or master for purge and requeue) without a flag', async () => {
      routes.set('GET /api/dead-letters', { status: 200, key: 'local-function-key-0000', body: { capabilities: [] } });
      routes.set('POST /api/dead-letters/heavy/requeue', {
        status: 200,
        key: 'local-master-key-0000',
        body: { capability: 'heavy', queue: 'tasks-heavy', requeued: 0, skipped: [] },
      });
      const env = {
        LOCAL_HOST_FUNCTION_KEY: 'local-function-key-0000',
        LOCAL_HOST_MASTER_KEY: 'local-master-key-0000',
      };
      expect((await run(['--url', url, 'dead-letters'], { env })).code).toBe(0);
      expect((await run(['--url', url, 'requeue', 'heavy'], { env })).code).toBe(0);
      // a refused local key names where it came from
      const wrong = await run(['--url', url, 'dead-letters'], {
        env: { LOCAL_HOST_FUNCTION_KEY: 'another-key-000000' },
      });
      expect(wrong.stderr).toBe(
        `error: ${url}/dead-letters answered HTTP 401: the key from LOCAL_HOST_FUNCTION_KEY was refused; pass the app's key with --key or set IMAGE_PIPELINE_KEY\n`,
      );
    });

    it('check exits 1 when health answers 503, and says which check failed', async () => {
      routes.set('GET /api/health', {
        status: 503,
        body: {
          status: 'unavailable',
          checks: { blob: 'ok', queue: 'error: no answer in 3000 ms', table: 'ok' },
          version: '0.1.0',
        },
      });
      routes.set('GET /api/filters', {
        status: 200,
        body: {
          filters: [{ name: 'blur', capability: 'heavy' }],
          capabilities: [{ name: 'heavy', queue: 'tasks-heavy', filters: ['blur'] }],
        },
      });
      routes.set('GET /api/workers', { status: 200, body: { count: 0, workers: [] } });
      const r = await run(['check'], { env: { IMAGE_PIPELINE_URL: url } });
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/health\s+unavailable \(blob ok, queue error: no answer in 3000 ms, table ok\)/);
      expect(r.stdout).toMatch(/filters\s+1 \(heavy 1\)/);
      expect(r.stdout).toMatch(/workers\s+0 live.*none live/);
    });

    it('monitor stops after --count refreshes, and at once on Ctrl-C with exit 0', async () => {
      routes.set('GET /api/metrics', { status: 200, body: SNAPSHOT });
      const counted = await run(['--url', url, 'monitor', '--interval', '0.05', '--count', '3']);
      expect(counted.code).toBe(0);
      expect(counted.stdout.match(/^image-pipeline monitor/gm)).toHaveLength(3);
      expect(counted.stdout).not.toMatch(ANSI); // no screen clearing when stdout is not a terminal

      const interrupt = new AbortController();
      const started = Date.now();
      const running = run(['--url', url, 'monitor', '--interval', '60'], { interrupt });
      setTimeout(() => interrupt.abort(), 200);
      const stopped = await running;
      expect(stopped.code).toBe(0);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    describe('purge: asks, then DELETE /tasks on the API at --url, nothing else', () => {
      const REPORT = {
        queued_messages: {
          deleted: 3,
          queues: ['tasks-light', 'tasks-light-poison', 'tasks-heavy', 'tasks-heavy-poison'],
        },
        task_records: { deleted: 124, table: 'tasks' },
        dead_letters: { deleted: 1, table: 'deadletters' },
        processed_results: { deleted: 120, container: 'processed' },
        kept: ['images (container images)', 'workers (table workers)', 'metrics (table metrics)'],
      };
      // Storage settings in the environment are not the CLI's business any more: it must not read them.
      const storageEnv = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', STORAGE_NAMESPACE: 'elsewhere' };

      it('refuses with exit 2 when stdin is not a terminal and nothing is typed; nothing is sent', async () => {
        const r = await run(['--url', url, 'purge'], { env: storageEnv });
        expect(r.code).toBe(2);
        expect(r.stdout).toBe(
          `Delete all queued messages, task records, dead letters and processed results of the app at ${url}? [y/N] `,
        );
        expect(r.stderr).toMatch(/refusing to purge.*pass --yes/);
        expect(received).toEqual([]);
      });

      it('deletes nothing when the answer is not yes', async () => {
        const r = await run(['--url', url, 'purge'], { stdin: 'n\n', env: storageEnv });
        expect(r.code).toBe(1);
        expect(r.stdout).toMatch(/Nothing deleted\./);
        expect(received).toEqual([]);
      });

      it('on yes (typed, or --yes) sends DELETE /api/tasks and prints the count of each kind', async () => {
        routes.set('DELETE /api/tasks', { status: 200, body: REPORT });
        const typed = await run(['--url', url, 'purge'], { stdin: 'y\n', env: storageEnv });
        expect(typed.code).toBe(0);
        const flag = await run(['--url', url, 'purge', '--yes'], { env: storageEnv });
        expect(flag).toEqual({
          code: 0,
          stderr: '',
          stdout: [
            `purged the app at ${url}:`,
            '  3 queued message(s) from tasks-light, tasks-light-poison, tasks-heavy, tasks-heavy-poison',
            '  124 task record(s) from table tasks',
            '  1 dead letter(s) from table deadletters',
            '  120 processed result(s) from container processed',
            'kept: images (container images), workers (table workers), metrics (table metrics)',
            '',
          ].join('\n'),
        });
        expect(received).toEqual(['DELETE /api/tasks', 'DELETE /api/tasks']);
      });

      it('says it needs the master key when the app answers 401', async () => {
        routes.set('DELETE /api/tasks', { status: 200, body: REPORT, key: 'master' });
        const r = await run(['--url', url, 'purge', '--yes', '--key', 'function-key']);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(
          `error: ${url}/tasks answered HTTP 401: purge needs the app's master key; pass it with --key or IMAGE_PIPELINE_KEY\n`,
        );
        expect((await run(['--url', url, '--key', 'master', 'purge', '--yes'])).code).toBe(0);
      });
    });

    it('requeue with nothing to requeue is not a failure', async () => {
      routes.set('POST /api/dead-letters/light/requeue', {
        status: 404,
        type: 'application/problem+json',
        body: { type: 'urn:image-pipeline:problem:not_found', status: 404, detail: 'No dead letters for light' },
      });
      const r = await run(['--url', url, 'requeue', 'light']);
      expect(r).toEqual({ code: 0, stdout: 'light: nothing to requeue (No dead letters for light)\n', stderr: '' });
    });
  });
});

const SNAPSHOT: Snapshot = {
  timestamp: '2026-11-23T14:09:00.002Z',
  window_s: 10,
  host: { cpu_percent: 100, memory_percent: 3.2, memory_used_mb: 761 },
  capabilities: {
    heavy: {
      queue: 'tasks-heavy',
      queue_length: 2,
      poison_length: 0,
      oldest_message_age_s: null,
      workers: { active: 1, busy: 1, utilization: 0.691 },
      tasks: {
        completed: 16,
        failed: 0,
        success_rate: 1,
        throughput_per_min: 96.02,
        arrivals_per_min: 0,
        latency_ms: { p50: 5000, p95: 5000, p99: 5000 },
      },
      recommendation: {
        current_workers: 1,
        recommended_workers: 1,
        action: 'MAINTAIN',
        reason: 'keeping 1 worker',
        confidence: 0.62,
        urgency: 'LOW',
        keda_replicas: 2,
      },
    },
  },
};

describe('rendering', () => {
  it('the metrics table has one row per capability, the advice, and no colour codes', () => {
    const text = renderSnapshot(SNAPSHOT);
    expect(text).toMatch(/^snapshot 2026-11-23T14:09:00.002Z \(window 10 s\) · host cpu 100% · memory 3.2% \(761 MB\)/);
    expect(text).toMatch(
      /│ heavy\s+│ 2\s+│ 0\s+│ 1\/1\s+│ 69\.1%\s+│ 96\.0\s+│ 5000 ms │ 100\.0%\s+│ MAINTAIN │ 1\s+│ 2\s+│ LOW\s+│/,
    );
    expect(text).toMatch(/heavy: keeping 1 worker$/m);
    expect(text).not.toMatch(ANSI);
  });

  it('the recommendation tally counts each snapshot once', () => {
    const tally = new RecommendationTally();
    tally.record(SNAPSHOT);
    tally.record(SNAPSHOT); // GET /metrics repeats the latest snapshot until the timer writes the next
    const up = {
      ...SNAPSHOT.capabilities.heavy,
      recommendation: { ...SNAPSHOT.capabilities.heavy.recommendation, action: 'SCALE_UP', recommended_workers: 3 },
    };
    tally.record({ ...SNAPSHOT, timestamp: '2026-11-23T14:09:10.000Z', capabilities: { heavy: up } });
    expect(tally.snapshots).toBe(2);
    expect(tally.describe()).toBe('heavy: MAINTAIN ×1, SCALE_UP ×1 (recommended up to 3)');
  });

  it('the stress report: counts, latency percentiles from created_at → completed_at, and success only when all succeeded', () => {
    const task = (i: number, status: TaskRecord['status'], latencyMs: number | null): TaskRecord => ({
      task_id: `j_${i}`,
      job_id: 'j',
      status,
      image: 'a.jpg',
      capability: 'light',
      created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      completed_at: latencyMs === null ? null : new Date(Date.UTC(2026, 0, 1, 0, 0, i) + latencyMs).toISOString(),
      duration_ms: latencyMs,
      output: null,
      failure_type: null,
      failure_reason: status === 'failed' ? 'corrupt_image' : null,
      error: null,
    });
    const tasks = [100, 200, 300, 400, 1000].map((ms, i) => task(i, 'succeeded', ms));
    const base = { jobs: 1, submitMs: 60000, waitMs: 1500, batches: 1, intervalS: 5 };
    const good = stressReport({ ...base, tasks }, new RecommendationTally());
    expect(good.ok).toBe(true);
    expect(good.text).toMatch(/submitted\s+5 tasks in 1 job$/m);
    expect(good.text).toMatch(/latency p50\s+300 ms$/m);
    expect(good.text).toMatch(/latency p95\s+1000 ms$/m);
    expect(good.text).toMatch(/recommendations\s+none \(no metrics snapshot during the run\)/);
    const bad = stressReport(
      { ...base, tasks: [...tasks, task(5, 'failed', 50), task(6, 'queued', null)] },
      new RecommendationTally(),
    );
    expect(bad.ok).toBe(false);
    expect(bad.text).toMatch(/failed\s+1$/m);
    expect(bad.text).toMatch(/unfinished\s+1$/m);
    expect(bad.text).toMatch(/failure reasons\s+corrupt_image ×1/);
  });

  it('compare: speed-up against the sequential run, said under the table; a mode that did not run shows dashes', () => {
    const text = compareTable(
      [
        { mode: 'in-process sequential', wallMs: 400, note: '' },
        { mode: 'in-process parallel', wallMs: 200, note: '' },
        { mode: 'queues (running app)', note: 'not run' },
      ],
      4,
    );
    expect(text).toMatch(/in-process parallel\s+│ 4\s+│ 200 ms\s+│ 50 ms\s+│ 2\.00×/);
    expect(text).toMatch(/queues \(running app\)\s+│ 4\s+│ -\s+│ -\s+│ -/);
    expect(text).toMatch(
      /^speed-up = wall time of the in-process sequential run ÷ wall time of this mode, same images and pipeline:$/m,
    );
    expect(text).toMatch(
      /1\.00× is as fast as processing one image after another in this process, 2\.00× twice as fast/,
    );
    expect(uploadName('my photo..jpg')).toBe('compare-my_photo.jpg');
  });

  it('a problem whose detail repeats its field errors prints each once', () => {
    const a = 'Expected an integer for MAX_FILTERS_PER_TASK but received "x"';
    const b = 'Expected an integer for PORT but received "y"';
    expect(problemLines(`${a}; ${b}`, [{ message: a }, { message: b }], 'The service is misconfigured')).toEqual([
      'The service is misconfigured',
      `  - ${a}`,
      `  - ${b}`,
    ]);
    expect(problemLines('No job 1', [], 'Not found', ' (HTTP 404)')).toEqual(['No job 1 (HTTP 404)']);
    expect(problemLines('Something else', [{ message: a }], 'T')).toEqual(['Something else', `  - ${a}`]);
  });

  it('percentile is nearest-rank', () => {
    expect(percentile([], 0.5)).toBeUndefined();
    expect(percentile([5, 1, 3], 0.5)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.95,
      ),
    ).toBe(95);
  });
});

describe('which key a command sends (cli/keys.ts)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'cli-keys-'));
  writeFileSync(
    path.join(root, 'local.settings.json'),
    JSON.stringify({
      Values: { LOCAL_HOST_FUNCTION_KEY: 'file-function-key', LOCAL_HOST_MASTER_KEY: 'file-master-key' },
    }),
  );
  const local = 'http://localhost:7071/api';

  it('takes --key, else IMAGE_PIPELINE_KEY, for any URL', () => {
    expect(chooseKey('function', 'https://app.example/api', 'flag', { IMAGE_PIPELINE_KEY: 'env' }, root)).toEqual({
      key: 'flag',
      source: '--key',
    });
    expect(chooseKey('admin', 'https://app.example/api', undefined, { IMAGE_PIPELINE_KEY: ' env ' }, root)).toEqual({
      key: 'env',
      source: 'IMAGE_PIPELINE_KEY',
    });
  });

  it('for a localhost URL, the local host key of the level from local.settings.json; a set variable wins', () => {
    const file = path.join(root, 'local.settings.json');
    expect(chooseKey('function', local, undefined, {}, root)).toEqual({
      key: 'file-function-key',
      source: `LOCAL_HOST_FUNCTION_KEY in ${file}`,
    });
    expect(chooseKey('admin', 'http://127.0.0.1:9/api', undefined, {}, root).key).toBe('file-master-key');
    expect(chooseKey('function', local, undefined, { LOCAL_HOST_FUNCTION_KEY: 'shell' }, root)).toEqual({
      key: 'shell',
      source: 'LOCAL_HOST_FUNCTION_KEY',
    });
    expect(chooseKey('function', local, undefined, { LOCAL_HOST_FUNCTION_KEY: '' }, root)).toEqual({});
  });

  it('never sends the local keys to another host', () => {
    expect(chooseKey('function', 'https://app.example/api', undefined, {}, root)).toEqual({});
    expect(chooseKey('admin', 'http://localhost.example.com/api', undefined, {}, root)).toEqual({});
  });
});
