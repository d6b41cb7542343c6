/**
 * The CLI in-process through `main(argv, io)`: argument errors and their exit codes, how API
 * errors and an unreachable app are reported (against a tiny stand-in HTTP server), and the
 * pure pieces (tables, the stress report, the recommendation tally). The real app: tests/e2e/cli.test.ts.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
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
    env: opts.env ?? {},
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

  describe('against a stand-in server', () => {
    let server: http.Server;
    let url: string;
    const routes = new Map<string, { status: number; type?: string; body: unknown; key?: string }>();

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const route = routes.get(`${req.method} ${req.url}`);
        if (route?.key && req.headers['x-functions-key'] !== route.key) {
          // the Functions host answers a missing or wrong key with an empty 401
          res.writeHead(401);
          res.end();
          return;
        }
        res.writeHead(route?.status ?? 404, { 'content-type': route?.type ?? 'application/json' });
        res.end(JSON.stringify(route?.body ?? { detail: `no route ${req.method} ${req.url}` }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('prints a problem document: the detail, then each field error', async () => {
      routes.set('POST /api/jobs', {
        status: 400,
        type: 'application/problem+json',
        body: {
          type: 'urn:image-pipeline:problem:validation_failed',
          title: 'The request is not valid',
          status: 400,
          detail: '2 problems in the task spec',
          errors: [
            { field: 'filters[0]', message: "Expected one of the filters … (did you mean 'blur'?)" },
            { field: 'filters[1].radius', message: 'Expected number between 0.3 and 100' },
          ],
        },
      });
      const r = await run(['--url', url, 'submit', 'cat.jpg', '--filters', 'blurr']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        "error: 2 problems in the task spec (HTTP 400)\n  - Expected one of the filters … (did you mean 'blur'?)\n  - Expected number between 0.3 and 100\n",
      );
    });

    it('sends the function key from --key or IMAGE_PIPELINE_KEY, and says what to do on 401', async () => {
      routes.set('POST /api/dead-letters/heavy/requeue', {
        status: 200,
        key: 's3cret',
        body: { capability: 'heavy', queue: 'tasks-heavy', requeued: 2, skipped: [] },
      });
      const without = await run(['--url', url, 'requeue', 'heavy']);
      expect(without.code).toBe(1);
      expect(without.stderr).toBe(
        `error: ${url}/dead-letters/heavy/requeue answered HTTP 401: this route needs a function key; pass --key or set IMAGE_PIPELINE_KEY\n`,
      );
      const flag = await run(['--url', url, '--key', 's3cret', 'requeue', 'heavy']);
      expect([flag.code, flag.stdout]).toEqual([0, 'heavy: requeued 2 message(s) onto tasks-heavy; skipped 0\n']);
      const env = await run(['requeue', 'heavy'], { env: { IMAGE_PIPELINE_URL: url, IMAGE_PIPELINE_KEY: 's3cret' } });
      expect(env.code).toBe(0);
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

    it('requeue with nothing to requeue is not a failure', async () => {
      routes.set('POST /api/dead-letters/light/requeue', {
        status: 404,
        type: 'application/problem+json',
        body: { status: 404, detail: 'No dead letters for light' },
      });
      const r = await run(['--url', url, 'requeue', 'light']);
      expect(r).toEqual({ code: 0, stdout: 'light: nothing to requeue (No dead letters for light)\n', stderr: '' });
    });
  });
});

describe('purge asks first', () => {
  it('refuses with exit 2 when stdin is not a terminal and nothing is typed', async () => {
    const r = await run(['purge']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('Delete all task records, dead letters and processed results? [y/N] ');
    expect(r.stderr).toMatch(/refusing to purge.*pass --yes/);
  });

  it('deletes nothing when the answer is not yes', async () => {
    const r = await run(['purge'], { stdin: 'n\n' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Nothing deleted\./);
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
        latency_ms: { p50: 5000, p95: 5000 },
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

  it('compare: speed-up against the sequential run; a mode that did not run shows dashes', () => {
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
    expect(uploadName('my photo..jpg')).toBe('compare-my_photo.jpg');
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
