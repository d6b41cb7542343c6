/**
 * `npm start`'s own script, interrupted like a terminal's Ctrl-C (SIGINT to its process group)
 * in the middle of a job: it exits 0 within a bounded time, leaves no process or listening port
 * behind, and a second start finishes the job with the earlier results still there.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, isListening } from '../../scripts/azurite';
import { getJson, jobDone, postJson, spawnApp, START_MAIN, waitFor, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let env: NodeJS.ProcessEnv;
let ports: number[];
const started: HostProcess[] = [];

beforeAll(async () => {
  ports = [await freePort(), await freePort(), await freePort()];
  env = {
    AZURITE_BLOB_PORT: String(ports[0]),
    AZURITE_QUEUE_PORT: String(ports[1]),
    AZURITE_TABLE_PORT: String(ports[2]),
    AZURITE_LOCATION: mkdtempSync(path.join(tmpdir(), 'azurite-data-')),
    STORAGE_NAMESPACE: uniqueNamespace(),
    LOCAL_HOST_ONLY: '1',
    LOCAL_HOST_GRACE_MS: '8000',
    LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
  };
});

afterAll(() => {
  for (const app of started) if (app.child.exitCode === null) process.kill(-app.child.pid!, 'SIGKILL');
});

async function npmStart(port?: number): Promise<HostProcess> {
  const app = await spawnApp(START_MAIN, env, /Host listening on/, { detached: true, port });
  started.push(app);
  return app;
}

it('Ctrl-C mid-job exits cleanly and the next start completes the job', async () => {
  const first = await npmStart();
  const images = ['sample_4k.jpg', 'sample_1920x1080.jpg', 'sample_4k.jpg', 'sample_1280x720.jpg', 'sample_4k.jpg'];
  const job = await postJson(`${first.url}/jobs`, { images, filters: [{ name: 'median', size: 5 }, 'sharpen'] });
  await waitFor(
    'a task in flight',
    async () => ((await getJson(`${first.url}/jobs/${job.job_id}`)).counts.processing > 0 ? true : undefined),
    60000,
    50,
  );
  const before = await getJson(`${first.url}/jobs/${job.job_id}`);

  const interrupted = Date.now();
  process.kill(-first.child.pid!, 'SIGINT');
  expect(await first.exited).toBe(0);
  expect(Date.now() - interrupted).toBeLessThan(20000);
  expect(alive(first.child.pid!)).toBe(false);
  for (const port of [first.port, ...ports]) expect(await isListening(port)).toBe(false);

  const second = await npmStart(first.port);
  const done = await jobDone(second.url, job.job_id, 150000);
  expect(done.tasks.map((t: { status: string }) => t.status)).toEqual(images.map(() => 'succeeded'));
  const finishedBefore = before.tasks
    .filter((t: { status: string }) => t.status === 'succeeded')
    .map((t: { task_id: string; output: unknown }) => [t.task_id, t.output]);
  for (const [taskId, output] of finishedBefore)
    expect(done.tasks.find((t: { task_id: string }) => t.task_id === taskId).output).toEqual(output);
  process.kill(-second.child.pid!, 'SIGTERM');
  expect(await second.exited).toBe(0);
}, 240000);

it('refuses ports held by something that is not Azurite, with a message saying what to do', async () => {
  const sockets = new Set<net.Socket>();
  const squatter = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined); // the probe hangs up on it
    socket.end('not http\r\n');
  });
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', () => resolve()));
  const taken = (squatter.address() as net.AddressInfo).port;
  try {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, [START_MAIN], {
        env: { ...process.env, ...env, AZURITE_BLOB_PORT: String(taken) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (code) => resolve({ code, output }));
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain(`Port(s) ${taken} are in use by something that is not Azurite`);
    expect(result.output).toContain('AZURITE_BLOB_PORT');
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => squatter.close(resolve));
  }
}, 30000);
