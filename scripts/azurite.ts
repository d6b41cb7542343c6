/**
 * Starts Azurite from the npm package as a child process and stops it. Used by the tests
 * (free ports, in memory) and by the one-command local run (fixed ports, data on disk).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { azuriteConnectionString, type AzuritePorts } from '../shared/storage/connection';

export interface AzuriteOptions {
  /** Fixed ports; by default three free ones are picked. */
  ports?: AzuritePorts;
  /** Folder for Azurite's data; none means in memory only. */
  location?: string;
  /** How long to wait for the three services to listen. */
  startTimeoutMs?: number;
  /** In its own process group, so a terminal's Ctrl-C reaches the host first and Azurite is stopped after it. */
  detached?: boolean;
  /** Extra environment, e.g. AZURITE_ACCOUNTS (`name:base64key`) for an account whose key only a test knows. */
  env?: NodeJS.ProcessEnv;
  /**
   * Serve HTTPS with this certificate (PEM files) instead of HTTP; with `oauth`, Azurite also accepts
   * OAuth bearer tokens (`--oauth basic`: it checks a token's issuer, audience and lifetime, not its
   * signature), which it accepts only over HTTPS.
   */
  https?: { cert: string; key: string; oauth?: boolean };
  /**
   * Receives Azurite's access log (one line per request, morgan's "common" format:
   * `ip - - [date] "METHOD /account/path?query HTTP/1.1" status length`); without it Azurite runs `--silent`.
   */
  accessLog?: (line: string) => void;
}

export interface RunningAzurite {
  readonly connectionString: string;
  readonly ports: AzuritePorts;
  readonly pid: number;
  stop(): Promise<void>;
}

const AZURITE_BIN = require.resolve('azurite/dist/src/azurite.js');

/**
 * `count` distinct free ports: every listener stays open until all are chosen, so the system cannot hand the
 * same just-released port out twice (Azurite's three services once got one port and failed with EADDRINUSE).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    return await Promise.all(
      Array.from({ length: count }, () => {
        const server = net.createServer();
        servers.push(server);
        return new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
        });
      }),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port;
}

/** Whether something accepts TCP connections on the local port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitForPorts(
  child: ChildProcess,
  ports: AzuritePorts,
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.pid === undefined)
      throw new Error(`Azurite did not start (exit code ${child.exitCode}): ${output()}`);
    const up = await Promise.all([ports.blob, ports.queue, ports.table].map(isListening));
    if (up.every(Boolean)) return;
    if (Date.now() > deadline)
      throw new Error(`Azurite did not listen on ${JSON.stringify(ports)} within ${timeoutMs} ms: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<RunningAzurite> {
  const [blob = 0, queue = 0, table = 0] = options.ports ? [] : await freePorts(3);
  const ports: AzuritePorts = options.ports ?? { blob, queue, table };
  const args = [
    AZURITE_BIN,
    ...(options.accessLog ? [] : ['--silent']),
    '--skipApiVersionCheck', // current SDKs send API versions newer than Azurite knows
    '--disableTelemetry', // telemetry tries to reach the internet
    '--blobPort',
    String(ports.blob),
    '--queuePort',
    String(ports.queue),
    '--tablePort',
    String(ports.table),
    ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
    ...(options.https ? ['--cert', options.https.cert, '--key', options.https.key] : []),
    ...(options.https?.oauth ? ['--oauth', 'basic'] : []),
  ];
  // In memory, a scratch working directory catches anything Azurite still writes to its cwd.
  const cwd = options.location ?? mkdtempSync(path.join(tmpdir(), 'azurite-'));
  mkdirSync(cwd, { recursive: true });
  const child = spawn(process.execPath, args, {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
  });
  let output = '';
  child.once('error', (err) => (output += `${err.message}\n`)); // e.g. node missing: reported by the wait below
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const text = d.toString();
    if (!options.accessLog) return void (output += text);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.includes('" ')) options.accessLog(line);
    if (output.length < 4000) output += text; // start-up messages, for the error when it does not start
  });
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // the scratch directory is ours; a --location is the caller's data
    if (!options.location) rmSync(cwd, { recursive: true, force: true });
  };
  try {
    await waitForPorts(child, ports, options.startTimeoutMs ?? 20000, () => output.slice(-2000));
  } catch (err) {
    await stop();
    throw err;
  }
  const protocol = options.https ? 'https' : 'http';
  return { connectionString: azuriteConnectionString(ports, '127.0.0.1', protocol), ports, pid: child.pid!, stop };
}
