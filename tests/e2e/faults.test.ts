/**
 * The app under faults, as a user runs it (the built local host as a child process, Azurite on disk):
 * the host is killed (SIGKILL) mid-task and restarted, storage is stopped mid-job and restarted on the
 * same ports with the same data, and every task message is delivered several times at once. Every
 * task must end in one final state, with one result write and one count.
 *
 * One result write is measured, not inferred: Azurite's debug log records every request with its
 * headers, and each result upload carries the claim (worker id and attempt) that produced it as blob
 * metadata, so the distinct claims among a result blob's PUTs are the runs that wrote it (an SDK
 * retry of one write repeats the same claim). One count: each invocation logs its outcome; the
 * `succeeded` outcomes across both host processes equal the number of tasks, and the surviving
 * host's worker counters equal its own log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { freePort, isListening } from '../../scripts/azurite';
import { normalizeTaskSpec } from '../../shared/imaging/spec';
import { listWorkers } from '../../shared/metrics/worker-registry';
import { Storage } from '../../shared/storage/clients';
import { azuriteConnectionString, type AzuritePorts } from '../../shared/storage/connection';
import { resourceNames } from '../../shared/storage/names';
import { enqueue } from '../../shared/storage/queue';
import { buildTaskMessage } from '../../shared/tasks/message';
import { TaskStore, type TaskRecord } from '../../shared/tasks/store';
import { getJson, HOST_MAIN, postJson, spawnApp, waitFor, type HostProcess } from '../helpers/host';
import { photo } from '../helpers/images';
import { uniqueNamespace } from '../helpers/storage';

const AZURITE_BIN = require.resolve('azurite/dist/src/azurite.js');
const COPIES = 3;

interface RunningStorage {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/** Azurite on fixed ports with its data in `dir`, logging every request to debug-<run>.log there. */
async function startStorage(dir: string, ports: AzuritePorts, run: number): Promise<RunningStorage> {
  const child = spawn(
    process.execPath,
    [
      AZURITE_BIN,
      '--silent',
      '--skipApiVersionCheck',
      '--disableTelemetry',
      ...['--blobPort', String(ports.blob), '--queuePort', String(ports.queue), '--tablePort', String(ports.table)],
      ...['--location', dir, '--debug', path.join(dir, `debug-${run}.log`)],
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    'Azurite to listen',
    async () =>
      (await Promise.all([ports.blob, ports.queue, ports.table].map(isListening))).every(Boolean) || undefined,
    20000,
    50,
  );
  return {
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Per result blob, the distinct claims its PUT requests carried, from every Azurite debug log in `dir`. */
function claimsWritten(dir: string, container: string): Map<string, Set<string>> {
  const writes = new Map<string, Set<string>>();
  const put = new RegExp(
    `RequestMethod=PUT RequestURL=\\S*/devstoreaccount1/${container}/([^?\\s]+) RequestHeaders:(.*)`,
  );
  for (const file of readdirSync(dir).filter((f) => /^debug-\d+\.log$/.test(f))) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      const m = put.exec(line);
      if (!m) continue;
      const claim = /"x-ms-meta-claim":"([^"]*)"/.exec(m[2])?.[1] ?? '(none)';
      writes.set(m[1], (writes.get(m[1]) ?? new Set()).add(claim));
    }
  }
  return writes;
}

const succeededLines = (host: HostProcess) => (host.output().match(/task message \S+: succeeded$/gm) ?? []).length;

let dir: string;
let storage: RunningStorage | undefined;
const hosts: HostProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'faults-'));
});
afterAll(async () => {
  for (const h of hosts) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  await storage?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('host killed mid-task, storage stopped mid-job, duplicates at once: one final state, one write, one count per task', async () => {
  const ports = { blob: await freePort(), queue: await freePort(), table: await freePort() };
  const connectionString = azuriteConnectionString(ports);
  storage = await startStorage(dir, ports, 1);
  const ns = uniqueNamespace();
  const names = resourceNames(ns);
  const store = new Storage(connectionString, names);
  await store.ensureResources();
  const images = ['p0.jpg', 'p1.jpg', 'p2.jpg', 'p3.jpg'];
  for (const [i, name] of images.entries()) {
    await store.images.getBlockBlobClient(name).uploadData(await photo(960 + 32 * i, 720, 'jpeg'));
  }
  const app = (port?: number) =>
    spawnApp(
      HOST_MAIN,
      {
        AzureWebJobsStorage: connectionString,
        STORAGE_NAMESPACE: ns,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '2',
        WORKER_HEARTBEAT_SECONDS: '1',
      },
      /Host listening on/,
      { port },
    ).then((h) => (hosts.push(h), h));
  const pipeline = [{ name: 'median', size: 5 }, { name: 'blur', radius: 4 }, 'emboss'];

  // (a) the host is killed with SIGKILL while tasks run, and restarted
  const first = await app();
  const jobA = await postJson(`${first.url}/jobs`, { images: [...images, ...images, ...images], filters: pipeline });
  await waitFor(
    'a task in flight',
    async () => ((await getJson(`${first.url}/jobs/${jobA.job_id}`)).counts.processing > 0 ? true : undefined),
    30000,
    25,
  );
  first.child.kill('SIGKILL');
  await first.exited;
  const second = await app(first.port);

  // (c) every message of a second job delivered COPIES times at once: the copies of a task sit side by
  // side in the queue, so one batch (host.json batchSize 8) hands them to the host together
  const spec = normalizeTaskSpec({ filters: pipeline });
  const jobB = { job_id: randomUUID(), tasks: [] as TaskRecord[] };
  const createdB = await new TaskStore(store.tasks).create(
    [...images, ...images].map((image, i) => ({
      task_id: `${jobB.job_id}_${String(i).padStart(4, '0')}`,
      job_id: jobB.job_id,
      image,
      filters: spec.filters,
      output_spec: spec.encoding,
      capability: 'heavy',
      queue: names.queueOf('heavy'),
    })),
  );
  jobB.tasks = createdB.map((t) => t.record);
  for (const { record, etag } of createdB) {
    const text = JSON.stringify(buildTaskMessage(record, spec, new Date(record.created_at), etag));
    for (let i = 0; i < COPIES; i++) await enqueue(store.queue('heavy'), text);
  }

  // (b) storage stops while the second job runs, and comes back on the same ports with the same data
  const tasks = new TaskStore(store.tasks);
  await waitFor(
    'a task of the second job in flight',
    async () => ((await tasks.listJob(jobB.job_id)).some((t) => t.status === 'processing') ? true : undefined),
    30000,
    25,
  );
  await storage.stop();
  await new Promise((r) => setTimeout(r, 1500)); // an outage the workers' storage calls run into
  storage = await startStorage(dir, ports, 2);

  const all = [...jobA.tasks.map((t: { task_id: string }) => t.task_id), ...jobB.tasks.map((t) => t.task_id)];
  const final = await waitFor(
    'every task in a final state',
    async () => {
      const records = [...(await tasks.listJob(jobA.job_id)), ...(await tasks.listJob(jobB.job_id))];
      return records.every((t) => t.status === 'succeeded' || t.status === 'failed') ? records : undefined;
    },
    60000,
    250,
  );
  // deferred copies come back after a few seconds; wait until every copy has been delivered and acknowledged
  await waitFor(
    'the queues to drain',
    async () => {
      const counts = await Promise.all([store.queue('heavy'), store.queue('light')].map((q) => q.getProperties()));
      return counts.every((p) => p.approximateMessagesCount === 0) ? true : undefined;
    },
    30000,
    250,
  );
  const { capabilities } = await getJson(`${second.url}/dead-letters`);
  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
  const workers = await listWorkers(store);
  const queues: string[] = [];
  for await (const q of QueueServiceClient.fromConnectionString(connectionString).listQueues({ prefix: ns })) {
    queues.push(q.name);
  }
  await storage.stop();

  // one final state: every task succeeded, none is left running or failed
  expect(final.map((t) => t.task_id).sort()).toEqual([...all].sort());
  expect(final.filter((t) => t.status !== 'succeeded').map((t) => [t.task_id, t.failure_reason, t.error])).toEqual([]);
  expect(
    capabilities.map((c: { count: number; poison_messages: unknown[] }) => c.count + c.poison_messages.length),
  ).toEqual([0, 0]);
  // one result write: only the run whose claim succeeded wrote the result blob
  const writes = claimsWritten(dir, names.processed);
  const claimOf = (t: TaskRecord) => `${t.worker_id}#${t.attempts}`;
  expect(final.map((t) => [t.task_id, [...(writes.get(t.output!.blob) ?? [])]])).toEqual(
    final.map((t) => [t.task_id, [claimOf(t)]]),
  );
  // one count: every task counted once across both hosts, and the surviving host's counters agree with its log
  expect(succeededLines(first) + succeededLines(second)).toBe(all.length);
  const survivor = workers.find((w) => w.status === 'stopped');
  expect(survivor?.processed).toBe(succeededLines(second));
  expect(workers.reduce((sum, w) => sum + w.processed, 0)).toBeLessThanOrEqual(all.length);
  // the local host creates no poison queue for a poison queue (QueueListenerFactory.CreatePoisonQueueReference)
  expect(queues.filter((q) => q.endsWith('-poison-poison'))).toEqual([]);
  // one poison queue per queue function's queue: the two capabilities' task queues and the callbacks queue
  expect(queues.filter((q) => q.endsWith('-poison')).sort()).toEqual(
    [names.poisonQueueOf('heavy'), names.poisonQueueOf('light'), `${names.callbacksQueue}-poison`].sort(),
  );
}, 150000);
