/**
 * The built CLI (node dist/scripts/cli.js) as a user runs it, against the real app: Azurite +
 * the local host in their own processes. Includes the acceptance run `stress 1 10`, which takes
 * its full minute: it starts first and the other commands run against the same app meanwhile (a user may
 * well check or submit while a stress run is on); its test awaits it, then purge counts everything.
 * Needs the build (npm test builds first).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Storage } from '../../shared/storage/clients';
import { freePort, startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { SAMPLES_DIR } from '../../scripts/paths';
import { seedSampleImages } from '../../scripts/seed';
import { HOST_MAIN, spawnApp, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';
import { enqueue } from '../../shared/storage/queue';

// The commands run beside stress 1 10, whose host is busy with its tasks: a test of two or three commands gets a
// minute on a loaded machine (each command has its own 60 s limit, cli() below)
jest.setTimeout(60_000);

const CLI = path.resolve(__dirname, '../../dist/scripts/cli.js');
/**
 * Keys on, with the development keys local.settings.json gives `npm start`: the CLI finds them there itself for a
 * localhost URL (scripts/cli/keys.ts), as a user's CLI does, so no command below passes --key.
 */
const DEV_KEYS = (
  JSON.parse(readFileSync(path.resolve(__dirname, '../../local.settings.json'), 'utf8')) as {
    Values: Record<string, string>;
  }
).Values;
const KEYED = { 'x-functions-key': DEV_KEYS.LOCAL_HOST_FUNCTION_KEY };

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

let azurite: RunningAzurite;
let host: HostProcess;
let env: NodeJS.ProcessEnv;
/** Another app's storage in the same Azurite, the one the CLI's environment names: no command may touch it. */
let elsewhere: Storage;

/** stdin is /dev/null, so nothing can wait for typing. */
function cli(args: string[], timeoutMs = 60000, extraEnv: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cli ${args.join(' ')} took over ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  azurite = await startAzurite();
  const namespace = uniqueNamespace();
  await seedSampleImages(new Storage(azurite.connectionString, resourceNames(namespace)));
  host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: namespace,
      LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
      LOCAL_HOST_AUTH: 'keys',
      LOCAL_HOST_FUNCTION_KEY: DEV_KEYS.LOCAL_HOST_FUNCTION_KEY,
      LOCAL_HOST_MASTER_KEY: DEV_KEYS.LOCAL_HOST_MASTER_KEY,
    },
    /Host listening on/,
  );
  // The CLI's environment names another app's storage (as local.settings.json or a shell may): every
  // command goes through the API at the URL, so that storage must stay as it is.
  const elsewhereNamespace = uniqueNamespace();
  elsewhere = new Storage(azurite.connectionString, resourceNames(elsewhereNamespace));
  await elsewhere.ensureResources();
  await elsewhere.tasks.createEntity({ partitionKey: 'job', rowKey: 'task', status: 'succeeded' });
  await elsewhere.processed.getBlockBlobClient('job_0000.jpg').uploadData(Buffer.from('result'));
  await enqueue(elsewhere.queue('light'), {});
  env = { ...process.env };
  for (const name of ['IMAGE_PIPELINE_KEY', 'LOCAL_HOST_FUNCTION_KEY', 'LOCAL_HOST_MASTER_KEY']) delete env[name];
  env = {
    ...env,
    IMAGE_PIPELINE_URL: host.url,
    AzureWebJobsStorage: azurite.connectionString,
    STORAGE_NAMESPACE: elsewhereNamespace,
  };
}, 60000);

afterAll(async () => {
  if (host && host.child.exitCode === null) {
    host.child.kill('SIGKILL');
    await host.exited;
  }
  await azurite?.stop();
});

describe('the CLI against the running app', () => {
  let jobId: string;
  /** `stress 1 10`, started before the first test; its own test (after the others) awaits it. */
  let stress: Promise<CliRun & { ms: number }>;

  beforeAll(() => {
    const started = Date.now();
    stress = cli(['stress', '1', '10', '--filters', 'grayscale'], 110000).then((r) => ({
      ...r,
      ms: Date.now() - started,
    }));
    stress.catch(() => undefined); // a failure is reported by the stress test, not as an unhandled rejection
  });

  it('check: healthy, with the filter and worker counts', async () => {
    const r = await cli(['check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/health\s+ok \(blob ok, queue ok, table ok\)/);
    expect(r.stdout).toMatch(/filters\s+\d+ \(light \d+, heavy \d+\)/);
    expect(r.stdout).toMatch(/workers\s+1 live/);
  });

  it('metrics: --json is the snapshot; the default is a table per capability', async () => {
    const json = await cli(['metrics', '--json']);
    expect(json.code).toBe(0);
    const snapshot = JSON.parse(json.stdout) as {
      capabilities: Record<string, { recommendation: { action: string } }>;
    };
    expect(Object.keys(snapshot.capabilities).sort()).toEqual(['heavy', 'light']);
    const text = await cli(['metrics']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/│ light\s+│/);
    expect(text.stdout).toMatch(/│ heavy\s+│/);
    expect(text.stdout).not.toMatch(/\x1b\[/); // eslint-disable-line no-control-regex -- no colour codes
  });

  it('submit: a misspelt filter is refused before anything is uploaded', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cli-typo-'));
    const file = path.join(dir, 'typo_check.jpg');
    copyFileSync(path.join(SAMPLES_DIR, 'sample_640x480.jpg'), file);
    const r = await cli(['submit', file, '--filters', 'resize,blurr', '--out', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: the pipeline is not valid; nothing was uploaded:$/m);
    expect(r.stderr).toMatch(/'blurr'.*did you mean 'blur'/);
    const images = (await (await fetch(`${host.url}/images`, { headers: KEYED })).json()) as {
      images: { name: string }[];
    };
    expect(images.images.map((i) => i.name)).not.toContain('typo_check.jpg');
  });

  it('submit: uploads a local file, waits, downloads each result named after its source into --out', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'cli-results-'));
    const file = path.join(SAMPLES_DIR, 'sample_640x480.jpg');
    const r = await cli([
      'submit',
      file,
      'sample_alpha_1024.png',
      '--filters',
      'resize,grayscale',
      '--params',
      '{"resize":{"width":160}}',
      '--format',
      'png',
      '--out',
      out,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^uploaded .*sample_640x480\.jpg as sample_640x480\.jpg/m);
    jobId = /^job ([0-9a-f-]{36}): 2 task\(s\) on light$/m.exec(r.stdout)![1];
    expect(r.stdout).toMatch(/^processing: 2\/2 finished \(2 succeeded, 0 failed\)$/m);
    expect(readdirSync(out).sort()).toEqual(['sample_640x480.png', 'sample_alpha_1024.png']);
    expect(r.stdout).toMatch(
      /│ sample_640x480\.jpg\s+│ succeeded │ 160×120 png\s+│ \d+\s+│ \d+ ms\s+│ sample_640x480\.png\s+│/,
    );
    expect(r.stdout).toMatch(
      /│ sample_alpha_1024\.png\s+│ succeeded │ 160×160 png\s+│ \d+\s+│ \d+ ms\s+│ sample_alpha_1024\.png\s+│/,
    );
    expect(r.stdout).toMatch(new RegExp(`job ${jobId}: succeeded; 2 result\\(s\\) in `));
  }, 60000);

  it('monitor --count stops after that many refreshes', async () => {
    const r = await cli(['monitor', '--interval', '0.2', '--count', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout.match(/^image-pipeline monitor · /gm)).toHaveLength(2);
  });

  it('compare --count 2: sequential, parallel and queued runs with the speed-up', async () => {
    const r = await cli(['compare', '--count', '2']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/compare: 2 image\(s\)/);
    expect(r.stdout).toMatch(/│ in-process sequential\s+│ 2\s+│ \d+ ms\s+│ \d+ ms\s+│ 1\.00×/);
    expect(r.stdout).toMatch(/│ in-process parallel\s+│ 2\s+│ \d+ ms\s+│ \d+ ms\s+│ \d+\.\d\d×/);
    expect(r.stdout).toMatch(/│ queues \(running app\)\s+│ 2\s+│ \d+ ms\s+│ \d+ ms\s+│ \d+\.\d\d×/);
    expect(r.stdout).toMatch(/^speed-up = wall time of the in-process sequential run ÷ wall time of this mode/m);
  }, 60000);

  it('dead-letters: a row per capability', async () => {
    const r = await cli(['dead-letters']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/│ light\s+│ \S+-tasks-light-poison\s+│ 0\s+│ 0\s+│/);
    expect(r.stdout).toMatch(/│ heavy\s+│ \S+-tasks-heavy-poison\s+│ 0\s+│ 0\s+│/);
  });

  it('keys: a refused key says where it came from; admin commands take the master key', async () => {
    const wrong = await cli(['dead-letters'], 60000, { IMAGE_PIPELINE_KEY: 'not-the-key-0000000000' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toBe(
      `error: ${host.url}/dead-letters answered HTTP 401: the key from IMAGE_PIPELINE_KEY was refused; pass the app's key with --key or set IMAGE_PIPELINE_KEY\n`,
    );
    const functionKeyOnly = await cli(['requeue', 'light', '--key', DEV_KEYS.LOCAL_HOST_FUNCTION_KEY]);
    expect(functionKeyOnly.stderr).toMatch(/requeue needs the app's master key/);
    const requeue = await cli(['requeue', 'light']);
    expect([requeue.code, requeue.stdout]).toEqual([0, expect.stringMatching(/^light: /)]);
  });

  it('a URL without /api: the hint names the URL to use', async () => {
    const origin = host.url.replace(/\/api$/, '');
    const r = await cli(['check', '--url', origin]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error: ${origin}/health answered HTTP 404 with an empty body: ` +
        `no function has this route: is the URL missing /api? try --url ${origin}/api\n`,
    );
  });

  it('a bad command line exits 2, an unreachable app exits 1 with one line', async () => {
    const bad = await cli(['stress', '0', '10']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Usage: image-pipeline stress/);
    const url = `http://127.0.0.1:${await freePort()}/api`;
    const down = await cli(['check', '--url', url]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(
      new RegExp(`^error: Cannot reach ${url}/health \\(.*\\): is the app running\\? \\(npm start\\)\\n$`),
    );
  });

  it('stress 1 10: a full minute of batches, every task succeeds, and the report says so', async () => {
    const r = await stress;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(60000);
    expect(r.stdout).toMatch(/^stress: 12 batches of 10 tasks \(grayscale\) every 5 s for 1 min/m);
    expect(r.stdout).toMatch(/^ {2}duration\s+6\d\.\d s submitting \(12 batches every 5 s\)/m);
    expect(r.stdout).toMatch(/^ {2}submitted\s+120 tasks in 12 jobs$/m);
    expect(r.stdout).toMatch(/^ {2}succeeded\s+120$/m);
    expect(r.stdout).toMatch(/^ {2}failed\s+0$/m);
    expect(r.stdout).toMatch(/^ {2}unfinished\s+0$/m);
    expect(r.stdout).toMatch(/^ {2}throughput\s+\d+\.\d tasks\/min/m);
    expect(r.stdout).toMatch(/^ {2}latency p50\s+\d+ ms$/m);
    expect(r.stdout).toMatch(/^ {2}latency p95\s+\d+ ms$/m);
    expect(r.stdout).toMatch(/^ {2}recommendations\s+light: (SCALE_UP|SCALE_DOWN|MAINTAIN) ×\d+/m);
  }, 120000);

  it('purge: refuses without --yes on a non-terminal stdin; with --yes the app at the URL is purged through its API', async () => {
    const refused = await cli(['purge']);
    expect(refused.code).toBe(2);
    expect((await fetch(`${host.url}/jobs/${jobId}`, { headers: KEYED })).status).toBe(200);
    const r = await cli(['purge', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^purged the app at ${host.url}:$`, 'm'));
    expect(r.stdout).toMatch(/^ {2}124 task record\(s\) from table t[0-9a-f]+tasks$/m); // submit 2 + stress 120 + compare 2
    expect(r.stdout).toMatch(/^ {2}\d+ processed result\(s\) from container t[0-9a-f]+-processed$/m);
    expect(host.output()).toMatch(/DELETE \/api\/tasks → 200 \(purgeTasks/);
    expect((await fetch(`${host.url}/jobs/${jobId}`, { headers: KEYED })).status).toBe(404);
    // The storage the CLI's environment named is untouched.
    expect(await elsewhere.tasks.getEntity('job', 'task')).toMatchObject({ status: 'succeeded' });
    expect(await elsewhere.processed.getBlockBlobClient('job_0000.jpg').exists()).toBe(true);
    expect((await elsewhere.queue('light').getProperties()).approximateMessagesCount).toBe(1);
  }, 60000);
});
