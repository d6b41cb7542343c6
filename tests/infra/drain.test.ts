/**
 * The worker pods' preStop drain hook, run as Kubernetes runs it (the exec command from the rendered
 * manifest) against a fake host that implements the real admin API: Azure/azure-functions-host
 * src/WebJobs.Script.WebHost/Controllers/HostController.cs (commit 89dc438d476542786f2fc4070f553423213a6223),
 * `POST /admin/host/drain` -> 202 Accepted, `GET /admin/host/drain/status` -> 200
 * {"state":"Disabled"|"InProgress"|"Completed","outstandingInvocations":n,"outstandingRetries":n}
 * (Models/DrainModeStatus.cs), both [Authorize(Policy = AdminAuthLevelOrInternal)]: the master key.
 * What only a cluster proves (the host really drains, SIGTERM reaches it) is listed in scripts/k8s.ts.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DRAIN_DEADLINE_SECONDS, HTTP_PORT, MASTER_KEY_FILE } from '../../scripts/k8s';
import { K8S_DIR, kustomize, type K8sObject } from '../helpers/k8s';

const MASTER_KEY = 'master-key-for-the-drain-test';
let dir: string;
let keyFile: string;
let command: string[];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'drain-'));
  keyFile = path.join(dir, 'host.master');
  writeFileSync(keyFile, `${MASTER_KEY}\n`);
  const workers = kustomize(path.join(K8S_DIR, 'base')).objects.filter(
    (o: K8sObject) =>
      o.kind === 'Deployment' && o.metadata.labels?.['app.kubernetes.io/component']?.startsWith('worker-'),
  );
  const commands = workers.map((w) => w.spec.template.spec.containers[0].lifecycle.preStop.exec.command as string[]);
  expect(new Set(commands.map((c) => JSON.stringify(c))).size).toBe(1);
  command = commands[0];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  method: string;
  url: string;
  key: string | undefined;
}

/** A host whose drain completes after `inProgressPolls` status answers of InProgress (never when Infinity). */
async function fakeHost(
  inProgressPolls: number,
  drainStatus = 202,
): Promise<{ server: Server; port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  let draining = false;
  let polls = 0;
  const server = createServer((req: IncomingMessage, res) => {
    seen.push({ method: req.method!, url: req.url!, key: req.headers['x-functions-key'] as string | undefined });
    if (req.headers['x-functions-key'] !== MASTER_KEY) return res.writeHead(401).end();
    if (req.method === 'POST' && req.url === '/admin/host/drain') {
      draining = drainStatus === 202;
      return res.writeHead(drainStatus).end();
    }
    if (req.method === 'GET' && req.url === '/admin/host/drain/status') {
      const outstanding = draining && polls++ < inProgressPolls ? 1 : 0;
      const state = !draining ? 'Disabled' : outstanding ? 'InProgress' : 'Completed';
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ state, outstandingInvocations: outstanding, outstandingRetries: 0 }));
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

/** Runs the manifest's preStop command with the fake host's port, the test key file and a deadline. */
function runHook(port: number, deadlineSeconds: number): Promise<{ code: number | null; output: string }> {
  const [program, ...args] = command;
  const argv = [...args.slice(0, -3), String(port), keyFile, String(deadlineSeconds)];
  const child = spawn(program === 'node' ? process.execPath : program, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
}

it('is `node -e <script> <host port> <master key file> <deadline>`, aimed at the host port and the mounted master key', () => {
  expect(command[0]).toBe('node');
  expect(command[1]).toBe('-e');
  expect(command.slice(-3)).toEqual([String(HTTP_PORT), MASTER_KEY_FILE, String(DRAIN_DEADLINE_SECONDS)]);
});

it('POSTs the drain with the master key and returns once the host says the drain is Completed', async () => {
  const host = await fakeHost(2);
  try {
    const { code, output } = await runHook(host.port, 30);
    expect(output).toContain('drain completed');
    expect(code).toBe(0);
    expect(host.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /admin/host/drain',
      'GET /admin/host/drain/status',
      'GET /admin/host/drain/status',
      'GET /admin/host/drain/status',
    ]);
    expect(host.seen.every((s) => s.key === MASTER_KEY)).toBe(true);
  } finally {
    host.server.close();
  }
}, 20000);

it('fails (exit 1, saying why) when the drain is still in progress at the deadline', async () => {
  const host = await fakeHost(Infinity);
  try {
    const started = Date.now();
    const { code, output } = await runHook(host.port, 1);
    expect(code).toBe(1);
    expect(output).toMatch(/drain failed: drain still InProgress after 1 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  } finally {
    host.server.close();
  }
}, 20000);

it('fails at once when the host refuses the drain request', async () => {
  const host = await fakeHost(0, 503);
  try {
    const { code, output } = await runHook(host.port, 30);
    expect(code).toBe(1);
    expect(output).toMatch(/answered 503/);
    expect(host.seen.map((s) => s.method)).toEqual(['POST']);
  } finally {
    host.server.close();
  }
}, 20000);
