/**
 * The app as a user runs it: Azurite + the local host as a separate process (what `npm start`
 * does without Core Tools), driven over HTTP. Needs the build (npm test builds first). The README's
 * walkthrough runs verbatim in readme-examples.test.ts.
 */
import { Storage } from '../../shared/storage/clients';
import { listWorkers } from '../../shared/metrics/worker-registry';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { seedSampleImages } from '../../scripts/seed';
import { SAMPLE_SET } from '../../scripts/samples';
import { getJson, HOST_MAIN, jobDone, postJson, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';

let azurite: RunningAzurite;
const hosts: HostProcess[] = [];

beforeAll(async () => {
  azurite = await startAzurite();
}, 30000);
afterAll(async () => {
  for (const h of hosts) if (h.child.exitCode === null) h.child.kill('SIGKILL');
  await azurite?.stop();
});

async function app(namespace: string, opts: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<HostProcess> {
  const host = await spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: azurite.connectionString,
      STORAGE_NAMESPACE: namespace,
      LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
      ...opts.env,
    },
    /Host listening on/,
    { port: opts.port },
  );
  hosts.push(host);
  return host;
}

async function seeded(namespace: string): Promise<Storage> {
  const storage = new Storage(azurite.connectionString, resourceNames(namespace));
  await seedSampleImages(storage);
  return storage;
}

describe('jobs over HTTP', () => {
  let url: string;
  beforeAll(async () => {
    const ns = uniqueNamespace();
    await seeded(ns);
    url = (await app(ns)).url;
  }, 90000);

  it('processes the whole sample set', async () => {
    const job = await postJson(`${url}/jobs`, { filters: [{ name: 'resize', width: 320 }, 'edges'] });
    const done = await jobDone(url, job.job_id);
    expect(done.status).toBe('succeeded');
    expect(done.tasks.map((t: { image: string }) => t.image).sort()).toEqual(SAMPLE_SET.map((s) => s.name).sort());
    expect(done.tasks.every((t: { output: { width: number } }) => t.output.width === 320)).toBe(true);
  }, 120000);

  it('runs a 4K image through a heavy pipeline', async () => {
    const job = await postJson(`${url}/jobs`, {
      images: ['sample_4k.jpg'],
      filters: [{ name: 'blur', radius: 4 }, 'sharpen', { name: 'median', size: 3 }],
      output: { format: 'jpeg', quality: 85 },
    });
    expect(job.tasks[0].capability).toBe('heavy');
    const done = await jobDone(url, job.job_id);
    expect(done.tasks[0]).toMatchObject({
      status: 'succeeded',
      output: { width: 3840, height: 2160, content_type: 'image/jpeg' },
    });
    const res = await fetch(`${url}/tasks/${job.tasks[0].task_id}/result`);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect((await res.arrayBuffer()).byteLength).toBe(done.tasks[0].output.bytes);
  }, 120000);

  // Azure/azure-functions-host src/WebJobs.Script.WebHost/WebScriptHostHttpRoutesManager.cs maps each function's
  // route with an HttpMethodRouteConstraint, so a wrong method does not match; a request no route matches gets
  // nothing from FunctionInvocationMiddleware.cs (no IFunctionExecutionFeature): ASP.NET Core's empty 404
  it('answers unknown routes and wrong methods with an empty 404, as the Functions host does', async () => {
    for (const res of [await fetch(`${url}/nope`), await fetch(`${url}/health`, { method: 'DELETE' })]) {
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBeNull();
      expect(res.headers.get('allow')).toBeNull();
      expect(res.headers.get('content-length')).toBe('0');
      expect(await res.text()).toBe('');
    }
  });

  it('hands an escape Kestrel cannot decode to the function as text, which names the field', async () => {
    // dotnet/aspnetcore src/Shared/UrlDecoder/UrlDecoder.cs: undecodable escapes stay literal
    const res = await fetch(`${url}/images/%E0%A4%A`, { signal: AbortSignal.timeout(10000) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: object[] }).errors[0]).toMatchObject({
      field: 'name',
      received: "'%E0%A4%A' of type string",
    });
  });
});

describe('crash and restart', () => {
  it('a host killed with SIGKILL mid-job loses nothing: after a restart every task succeeds once', async () => {
    const ns = uniqueNamespace();
    const storage = await seeded(ns);
    const first = await app(ns);
    // six tasks, all received at once (batchSize 8), each long enough to be caught running; no 4K image: the
    // restarted host runs every one again, and that CPU time is the test's wall time
    const images = [
      'sample_640x480.jpg',
      'sample_1920x1080.jpg',
      'sample_1280x720.jpg',
      'sample_portrait_1200x1600.jpg',
      'sample_640x480.jpg',
      'sample_1920x1080.jpg',
    ];
    const job = await postJson(`${first.url}/jobs`, { images, filters: [{ name: 'median', size: 5 }, 'emboss'] });
    await waitFor(
      'a task in flight',
      async () => ((await getJson(`${first.url}/jobs/${job.job_id}`)).counts.processing > 0 ? true : undefined),
      60000,
      50,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await app(ns, { port: first.port });
    const done = await jobDone(second.url, job.job_id, 150000);
    expect(done.tasks.map((t: { status: string }) => t.status)).toEqual(images.map(() => 'succeeded'));
    expect(done.tasks.every((t: { failure_type: string | null }) => t.failure_type === null)).toBe(true);
    const outputs: string[] = [];
    for await (const blob of storage.processed.listBlobsFlat()) outputs.push(blob.name);
    expect(outputs.sort()).toEqual(done.tasks.map((t: { task_id: string }) => `${t.task_id}.jpg`).sort());
    const letters = await getJson(`${second.url}/dead-letters`);
    expect(letters.capabilities.every((c: { count: number }) => c.count === 0)).toBe(true);
  }, 200000);
});

describe('workers and metrics through the running host', () => {
  it('the worker registers and heartbeats, the timer writes snapshots, and the routes serve them', async () => {
    const ns = uniqueNamespace();
    await seeded(ns);
    // a snapshot every 2 s instead of local.settings.json's 10 s: the test waits for two
    const host = await app(ns, { env: { METRICS_SCHEDULE: '*/2 * * * * *' } });
    const job = await postJson(`${host.url}/jobs`, {
      images: ['sample_1280x720.jpg', 'sample_640x480.jpg'],
      filters: ['blur'],
    });
    await jobDone(host.url, job.job_id);
    const workers = await waitFor(
      'a live worker with two processed tasks',
      async () => {
        const { workers: list } = await getJson(`${host.url}/workers`);
        return list.find((w: { status: string; processed: number }) => w.status !== 'dead' && w.processed === 2)
          ? list
          : undefined;
      },
      20000,
    );
    expect(workers[0]).toMatchObject({ capabilities: ['light', 'heavy'], failed: 0, in_flight: 0 });
    const history = await waitFor(
      'two metrics snapshots',
      async () => {
        const h = await getJson(`${host.url}/metrics/history?minutes=5`);
        return h.count >= 2 ? h : undefined;
      },
      30000,
      1000,
    );
    expect(history.snapshots[0].capabilities.heavy).toMatchObject({
      queue: `${ns}-tasks-heavy`,
      workers: { active: 1 },
      recommendation: { action: expect.stringMatching(/SCALE_UP|SCALE_DOWN|MAINTAIN/) },
    });
    const metrics = await getJson(`${host.url}/metrics`);
    // the cumulative totals, without the latency histogram the timer keeps for itself
    expect(Object.keys(metrics.capabilities.light.totals).sort()).toEqual([
      'busy_ms',
      'completed',
      'errors',
      'failed',
      'latency_count',
      'latency_ms',
      'latency_sum_ms',
    ]);
    const prometheus = await (await fetch(`${host.url}/metrics?format=prometheus`)).text();
    expect(prometheus).toContain('image_pipeline_workers_active{capability="heavy"} 1');
    host.child.kill('SIGTERM');
    expect(await host.exited).toBe(0);
    // a graceful stop says so in the registry: the worker is stopped, not dead
    expect((await listWorkers(new Storage(azurite.connectionString, resourceNames(ns)))).map((w) => w.status)).toEqual([
      'stopped',
    ]);
  }, 60000);
});
