/** The built local host as a child process, the way `npm start` runs it, on a free port. */
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../scripts/azurite';

const ROOT = path.resolve(__dirname, '../..');
export const HOST_MAIN = path.join(ROOT, 'dist/scripts/local-host/main.js');
export const START_MAIN = path.join(ROOT, 'dist/scripts/start.js');

export interface HostProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly url: string;
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Spawns `script` (the host or the start script) with the given environment and waits until it says it listens. */
export async function spawnApp(
  script: string,
  env: NodeJS.ProcessEnv,
  readyPattern: RegExp,
  opts: { detached?: boolean; port?: number; args?: string[]; cwd?: string } = {},
): Promise<HostProcess> {
  const port = opts.port ?? (await freePort());
  const child = spawn(process.execPath, [script, '--port', String(port), ...(opts.args ?? [])], {
    cwd: opts.cwd ?? ROOT,
    // a host id of its own (as a separate app), so a host killed earlier does not keep this one's timers
    // waiting for its singleton lock to expire; tests about the lock pass AzureFunctionsWebHost__hostid
    // LOCAL_HOST_AUTH=none unless a test asks for keys: local.settings.json turns them on for `npm start`, and most
    // tests are about something else (tests/e2e/keys.test.ts covers every route with keys on)
    env: {
      ...process.env,
      PORT: String(port),
      AzureFunctionsWebHost__hostid: `t${randomUUID().slice(0, 8)}`,
      LOCAL_HOST_AUTH: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = waitFor(
    `${path.basename(script)} to listen`,
    async () => (readyPattern.test(output) ? true : undefined),
    60000,
    100,
  );
  const died = exited.then((code) => {
    throw new Error(`${path.basename(script)} exited with ${code} before listening`);
  });
  try {
    await Promise.race([ready, died]);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${String(err)}\n${output}`);
  }
  died.catch(() => undefined);
  return { child, port, url: `http://localhost:${port}/api`, output: () => output, exited };
}

/** Headers a test sends to a host that checks keys: `keyed(FUNCTION_KEY)`. */
/** The settings of an app on this storage and namespace that checks keys (LOCAL_HOST_AUTH=keys) with the given two. */
export const keyedAppEnv = (
  connectionString: string,
  namespace: string,
  keys: { readonly functionKey: string; readonly masterKey: string },
): Record<string, string> => ({
  AzureWebJobsStorage: connectionString,
  STORAGE_NAMESPACE: namespace,
  LOCAL_HOST_AUTH: 'keys',
  LOCAL_HOST_FUNCTION_KEY: keys.functionKey,
  LOCAL_HOST_MASTER_KEY: keys.masterKey,
});

export const keyed = (key: string): Record<string, string> => ({ 'x-functions-key': key });

/** SIGTERM, then SIGKILL if it has not exited after graceMs; resolves once it has exited. */
export async function stopHost(h: HostProcess, graceMs = 10000): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  h.child.kill('SIGTERM');
  const timer = setTimeout(() => h.child.kill('SIGKILL'), graceMs);
  await h.exited;
  clearTimeout(timer);
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, { headers });
  return res.json();
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** Polls a job until no task is queued or processing. */
export function jobDone(
  url: string,
  jobId: string,
  timeoutMs = 120000,
  headers: Record<string, string> = {},
): Promise<any> {
  return waitFor(
    `job ${jobId}`,
    async () => {
      const job = await getJson(`${url}/jobs/${jobId}`, headers);
      return ['succeeded', 'failed', 'partially_failed'].includes(job.status) ? job : undefined;
    },
    timeoutMs,
    250,
  );
}
