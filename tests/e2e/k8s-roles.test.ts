/**
 * The Kubernetes topology without a cluster: the files infra/Dockerfile puts in the image, run
 * once per rendered Deployment with that Deployment's settings (its function allow-list, the
 * ConfigMap), against one Azurite. Each role must do its part and nothing else.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Storage } from '../../shared/storage/clients';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { seedSampleImages } from '../../scripts/seed';
import { copies, parseDockerfile } from '../helpers/dockerfile';
import { getJson, jobDone, keyed, postJson, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { K8S_DIR, kustomize, selectedFunctionsOf, envOf, type K8sObject } from '../helpers/k8s';
import { uniqueNamespace } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';

const ROOT = path.resolve(__dirname, '../..');
let azurite: RunningAzurite;
let layout: string;
const hosts: HostProcess[] = [];

/** /home/site/wwwroot as the Dockerfile's runtime stage fills it (node_modules linked, not installed). */
function imageLayout(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'image-layout-'));
  const stages = parseDockerfile(readFileSync(path.join(ROOT, 'infra/Dockerfile'), 'utf8'));
  for (const copy of copies(stages[stages.length - 1])) {
    for (const source of copy.sources) {
      const relative = copy.from ? source.replace(/^\/src\//, '') : source;
      const target = copy.dest === './' ? path.join(dir, path.basename(relative)) : path.join(dir, copy.dest);
      if (relative === 'node_modules') symlinkSync(path.join(ROOT, 'node_modules'), target, 'dir');
      else cpSync(path.join(ROOT, relative), target, { recursive: true });
    }
  }
  return dir;
}

beforeAll(async () => {
  azurite = await startAzurite();
  layout = imageLayout();
}, 60000);

afterAll(async () => {
  for (const h of hosts) if (h.child.exitCode === null) h.child.kill('SIGKILL');
  await azurite?.stop();
  if (layout) rmSync(layout, { recursive: true, force: true });
});

const FUNCTION_KEY = 'k8s-roles-test-function-key';
const MASTER_KEY = 'k8s-roles-test-master-key';

it('each Deployment runs only its functions; together they process jobs, and a capability without workers waits', async () => {
  const { objects } = kustomize(path.join(K8S_DIR, 'overlays/azure'));
  const config = objects.find((o) => o.kind === 'ConfigMap')!.data as Record<string, string>;
  const deployments = new Map(
    objects.filter((o) => o.kind === 'Deployment').map((d) => [d.metadata.name.replace(/^image-pipeline-/, ''), d]),
  );
  expect([...deployments.keys()].sort()).toEqual(['api', 'metrics', 'worker-heavy', 'worker-light']);

  const namespace = uniqueNamespace();
  await seedSampleImages(new Storage(azurite.connectionString, resourceNames(namespace)));
  const run = async (role: string, overrides: NodeJS.ProcessEnv = {}) => {
    const deployment: K8sObject = deployments.get(role)!;
    const env: NodeJS.ProcessEnv = {
      ...config,
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: namespace,
    };
    for (const e of envOf(deployment)) if (e.value !== undefined) env[e.name] = e.value;
    // quicker than in a cluster, so the test is short
    Object.assign(env, {
      METRICS_SCHEDULE: '*/2 * * * * *',
      WORKER_HEARTBEAT_SECONDS: '1',
      LOCAL_HOST_QUEUE_LEASE_SECONDS: '5',
      LOCAL_HOST_GRACE_MS: '5000',
      // keys checked as the real host checks them (scripts/local-host/keys.ts cites its source)
      LOCAL_HOST_AUTH: 'keys',
      LOCAL_HOST_FUNCTION_KEY: FUNCTION_KEY,
      LOCAL_HOST_MASTER_KEY: MASTER_KEY,
      ...overrides,
    });
    const host = await spawnApp(path.join(layout, 'dist/scripts/local-host/main.js'), env, /Host listening on/);
    hosts.push(host);
    expect(host.output()).toContain(
      `running only the selected functions: ${selectedFunctionsOf(deployment).join(', ')}`,
    );
    return host;
  };

  const [api, metrics, heavy] = await Promise.all([run('api'), run('metrics'), run('worker-heavy')]);
  // the API answers, and serves the dashboard from the image's files
  expect((await fetch(`${api.url}/health`)).status).toBe(200);
  expect((await fetch(`${api.url}/dashboard`)).headers.get('content-type')).toMatch(/text\/html/);
  // read to the end: an unread body (this one is 200 KB) keeps its socket, and so the jest worker, alive after the
  // host has exited, until garbage collection
  const chart = await fetch(`${api.url}/dashboard/assets/chart.umd.js`);
  expect([chart.status, (await chart.text()).length > 0]).toEqual([200, true]);
  // a worker role serves no HTTP function
  expect((await fetch(`${heavy.url}/health`)).status).toBe(404);

  // a write without the function key is refused by the host before the function runs; with it, it is accepted
  const keyless = await fetch(`${api.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ images: ['sample_640x480.jpg'], filters: ['grayscale'] }),
  });
  expect(keyless.status).toBe(401);
  const blurred = await postJson(`${api.url}/jobs?code=${FUNCTION_KEY}`, {
    images: ['sample_640x480.jpg', 'sample_1280x720.jpg'],
    filters: [{ name: 'blur', radius: 2 }],
  });
  const grey = await postJson(`${api.url}/jobs?code=${FUNCTION_KEY}`, {
    images: ['sample_640x480.jpg'],
    filters: ['grayscale'],
  });
  expect((await jobDone(api.url, blurred.job_id, 60000, keyed(FUNCTION_KEY))).counts).toMatchObject({
    succeeded: 2,
    failed: 0,
  });

  // nobody serves light yet: the task says so
  const waiting = await waitFor(
    'the light task to report its missing worker',
    async () => {
      const task = await getJson(`${api.url}/tasks/${grey.tasks[0].task_id}`, keyed(FUNCTION_KEY));
      return task.queue_position?.waiting_for ? task : undefined;
    },
    20000,
    250,
  );
  expect(waiting.status).toBe('queued');
  expect(waiting.queue_position.waiting_for).toMatch(/no live worker serves the light capability/);

  // only worker processes register; the heavy one serves heavy only
  const { workers } = await getJson(`${api.url}/workers`, keyed(FUNCTION_KEY));
  expect(
    workers
      .filter((w: { status: string }) => w.status !== 'dead')
      .map((w: { capabilities: string[] }) => w.capabilities),
  ).toEqual([['heavy']]);

  // the metrics role ran the timer: snapshots exist, with the heavy tasks counted
  const history = await waitFor(
    'snapshots with the heavy tasks',
    async () => {
      const h = await getJson(`${api.url}/metrics/history?minutes=5`, keyed(FUNCTION_KEY));
      const completed = h.snapshots.reduce(
        (sum: number, s: { capabilities: { heavy: { tasks: { completed: number } } } }) =>
          sum + s.capabilities.heavy.tasks.completed,
        0,
      );
      return completed === 2 ? h : undefined;
    },
    20000,
    500,
  );
  expect(history.count).toBeGreaterThan(0);
  expect(api.output()).not.toMatch(/collectMetrics/);
  expect(metrics.output()).toMatch(/collectMetrics: schedule/);

  // a light worker arrives (KEDA's scale-up from zero) and the waiting job completes
  // (with the real host's 10-minute lease, so a message left hidden by a stop would stall the job below)
  const production = { LOCAL_HOST_QUEUE_LEASE_SECONDS: '600' };
  const light = await run('worker-light', production);
  expect((await jobDone(api.url, grey.job_id, 60000, keyed(FUNCTION_KEY))).counts).toMatchObject({
    succeeded: 1,
    failed: 0,
  });

  // KEDA scales the light worker in while it runs tasks: SIGTERM lets the running ones finish, the rest stay
  // on the queue for the next worker at once (none waits out a lease), each task runs once, and the
  // registry says stopped, not dead
  const TASKS = 24;
  const busy = await postJson(`${api.url}/jobs?code=${FUNCTION_KEY}`, {
    images: Array.from({ length: TASKS }, () => 'sample_4k.jpg'),
    filters: [{ name: 'resize', width: 3000 }, 'grayscale'],
  });
  await waitFor(
    'light tasks in flight',
    async () =>
      (await getJson(`${api.url}/jobs/${busy.job_id}`, keyed(FUNCTION_KEY))).counts.processing > 0 ? true : undefined,
    30000,
    50,
  );
  // as Kubernetes stops a pod: the Deployment's preStop hook (the exact command, aimed at this host and a
  // file holding its master key) drains the host, then SIGTERM. The local host's drain mode mirrors
  // azure-functions-host src/WebJobs.Script.WebHost/Controllers/HostController.cs (Drain: 202, admin level;
  // DrainStatus) and Models/DrainModeStatus.cs / DrainModeState.cs (Disabled, InProgress, Completed)
  const [program, ...hookArgs] = deployments.get('worker-light')!.spec.template.spec.containers[0].lifecycle.preStop
    .exec.command as string[];
  const keyFile = path.join(layout, 'host.master');
  writeFileSync(keyFile, MASTER_KEY);
  const hook = spawnSync(program === 'node' ? process.execPath : program, [
    ...hookArgs.slice(0, -3),
    String(light.port),
    keyFile,
    '60',
  ]);
  expect({ status: hook.status, output: `${hook.stdout.toString()}${hook.stderr.toString()}` }).toEqual({
    status: 0,
    output: expect.stringContaining('drain completed'),
  });
  light.child.kill('SIGTERM');
  expect(await light.exited).toBe(0);
  const stopped = await getJson(`${api.url}/jobs/${busy.job_id}`, keyed(FUNCTION_KEY));
  expect(stopped.counts.processing).toBe(0);
  expect(stopped.counts.queued).toBeGreaterThan(0);
  await run('worker-light', production);
  const drained = await jobDone(api.url, busy.job_id, 60000, keyed(FUNCTION_KEY));
  expect(drained.counts).toMatchObject({ succeeded: TASKS, failed: 0 });
  expect(drained.tasks.map((t: { attempts: number }) => t.attempts)).toEqual(Array(TASKS).fill(1));
  const registry = (await getJson(`${api.url}/workers`, keyed(FUNCTION_KEY))).workers as {
    id: string;
    status: string;
  }[];
  expect(registry.find((w) => w.id.endsWith(`-${light.child.pid}`))?.status).toBe('stopped');

  // SIGTERM, as Kubernetes stops a pod: each role exits cleanly
  for (const h of hosts) h.child.kill('SIGTERM');
  expect(await Promise.all(hosts.map((h) => h.exited))).toEqual(hosts.map(() => 0));
}, 180000);
