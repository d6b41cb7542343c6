/**
 * The app with an identity-based storage connection and no account key anywhere in its settings:
 * Azurite over HTTPS with OAuth (`--oauth basic`, a certificate made here by openssl), the built local
 * host with AzureWebJobsStorage unset and AzureWebJobsStorage__blobServiceUri / __queueServiceUri /
 * __tableServiceUri + __credential=managedidentity, as the Functions host reads them
 * (azure-functions-host src/WebJobs.Script/StorageProvider/StorageClientProvider.cs, azure-sdk-for-net
 * sdk/extensions/Microsoft.Extensions.Azure/src/Internal/ClientFactory.cs CreateCredential).
 * The host's own ManagedIdentityCredential (@azure/identity) gets its tokens from a local endpoint
 * speaking App Service's managed identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER, as
 * @azure/msal-node's ManagedIdentitySources/AppService reads them), which hands out tokens Azurite's
 * basic OAuth check accepts (issuer, audience and lifetime; Azurite does not verify signatures).
 * Result links are user delegation SASs (Azurite answers Get User Delegation Key under OAuth).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { azuriteServiceUris } from '../../shared/storage/connection';
import { photo } from '../helpers/images';
import { HOST_MAIN, getJson, jobDone, spawnApp, type HostProcess } from '../helpers/host';
import { uniqueNamespace } from '../helpers/storage';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const IDENTITY_HEADER = 'local-identity-header';
const ROOT = path.resolve(__dirname, '../..');

/** A JWT as Entra ID issues for storage; Azurite reads its claims and does not check the signature. */
function storageToken(lifetimeSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = {
    aud: 'https://storage.azure.com',
    iss: `https://sts.windows.net/${TENANT}/`,
    iat: now - 60,
    nbf: now - 60,
    exp: now + lifetimeSeconds,
    oid: '0e3d6a5c-1f2b-4c8d-9e7f-a1b2c3d4e5f6',
    tid: TENANT,
  };
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from('unsigned').toString('base64url')}`;
}

let dir: string;
let cert: string;
let azurite: RunningAzurite;
let tokenServer: http.Server;
let identityEndpoint: string;
const tokenRequests: { resource: string | null; header: string | undefined }[] = [];
let host: HostProcess | undefined;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'identity-'));
  cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-keyout', key, '-out', cert,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' }); // prettier-ignore
  azurite = await startAzurite({ https: { cert, key, oauth: true } });
  tokenServer = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://localhost');
    const header = req.headers['x-identity-header'] as string | undefined;
    tokenRequests.push({ resource: url.searchParams.get('resource'), header });
    if (header !== IDENTITY_HEADER) return void res.writeHead(401).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        access_token: storageToken(),
        expires_on: Math.floor(Date.now() / 1000) + 3600,
        resource: url.searchParams.get('resource'),
        token_type: 'Bearer',
      }),
    );
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
  identityEndpoint = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/msi/token`;
  const uris = azuriteServiceUris(azurite.ports);
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(AzureWebJobsStorage|AZURE_|IDENTITY_|MSI_)/i.test(k)),
  );
  env = {
    ...inherited,
    // blank, so local.settings.json's UseDevelopmentStorage=true (loaded for variables not set, as func
    // does) does not fill it in: a set connection string would win over the identity settings
    AzureWebJobsStorage: '',
    AzureWebJobsStorage__blobServiceUri: uris.blob,
    AzureWebJobsStorage__queueServiceUri: uris.queue,
    AzureWebJobsStorage__tableServiceUri: uris.table,
    AzureWebJobsStorage__credential: 'managedidentity',
    IDENTITY_ENDPOINT: identityEndpoint,
    IDENTITY_HEADER,
    NODE_EXTRA_CA_CERTS: cert,
    STORAGE_NAMESPACE: uniqueNamespace(),
    LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
  };
}, 60000);

afterAll(async () => {
  if (host && host.child.exitCode === null) {
    host.child.kill('SIGKILL');
    await host.exited;
  }
  await new Promise((r) => tokenServer?.close(r));
  await azurite?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** An HTTPS request trusting the test's certificate (this process was not started with NODE_EXTRA_CA_CERTS). */
function request(url: string, method = 'GET', body?: Buffer): Promise<{ status: number; type?: string; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'x-ms-blob-type': 'BlockBlob', 'content-length': String(body.length) } : undefined;
    const req = https.request(url, { method, ca: readFileSync(cert), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, type: res.headers['content-type'], data: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('an identity-based storage connection (no account key)', () => {
  let url: string;
  let job: any;

  it('runs a job end to end: the host authenticates to storage with tokens from its managed identity', async () => {
    const settings = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n');
    expect(settings).not.toMatch(
      /AccountKey|SharedAccessSignature|Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/,
    );
    expect(env.AzureWebJobsStorage).toBe('');
    host = await spawnApp(HOST_MAIN, env, /Host listening on/);
    url = host.url;
    const res = await fetch(
      `${url}/jobs?filters=resize&filter_params=${encodeURIComponent('{"resize":{"width":120}}')}&format=png`,
      {
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        body: await photo(320, 240, 'jpeg'),
      },
    );
    expect(res.status).toBe(202);
    const submitted = (await res.json()) as { job_id: string };
    job = await jobDone(url, submitted.job_id, 90000);
    expect(job.status).toBe('succeeded');
    expect(job.tasks[0].output).toMatchObject({ width: 120, format: 'png' });
    // the tokens came from the identity endpoint, asked for storage with the secret header
    expect(tokenRequests.length).toBeGreaterThan(0);
    expect(tokenRequests.every((r) => r.header === IDENTITY_HEADER && r.resource === 'https://storage.azure.com')).toBe(
      true,
    );
  }, 120000);

  it('redirects a result to a user delegation SAS that downloads it, read-only, for that blob only', async () => {
    const taskId = job.tasks[0].task_id;
    const res = await fetch(`${url}/tasks/${taskId}/result`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const link = new URL(res.headers.get('location')!);
    expect(link.origin).toBe(new URL(env.AzureWebJobsStorage__blobServiceUri!).origin);
    expect(link.searchParams.get('skoid')).toBe('0e3d6a5c-1f2b-4c8d-9e7f-a1b2c3d4e5f6'); // signed by the identity's key
    expect(link.searchParams.get('sp')).toBe('r');
    expect(link.searchParams.get('spr')).toBe('https');

    const download = await request(link.href);
    expect(download.status).toBe(200);
    expect(download.type).toBe('image/png');
    expect(await sharp(download.data).metadata()).toMatchObject({ format: 'png', width: 120, height: 90 });
    expect((await request(link.href, 'PUT', Buffer.from('overwritten'))).status).toBe(403);
    const input = `${env.AzureWebJobsStorage__blobServiceUri}/${env.STORAGE_NAMESPACE}-images/${job.tasks[0].image}`;
    const other = await request(`${input}?${link.searchParams.toString()}`);
    expect(other.status).toBe(403);
    expect((await request(link.href)).status).toBe(200);

    // the task and job JSON carry the same kind of link
    const task = await getJson(`${url}/tasks/${taskId}`);
    expect(new URL(task.result_url).searchParams.get('skoid')).toBe(link.searchParams.get('skoid'));
    expect((await request(task.result_url)).status).toBe(200);
    const again = await getJson(`${url}/jobs/${job.job_id}`);
    expect((await request(again.tasks[0].result_url)).status).toBe(200);

    // and ?download=stream still sends the bytes through the function
    const streamed = await fetch(`${url}/tasks/${taskId}/result?download=stream`);
    expect(streamed.status).toBe(200);
    expect(await sharp(Buffer.from(await streamed.arrayBuffer())).metadata()).toMatchObject({ width: 120 });
    // a link is a bearer secret: the host never prints one
    expect(host!.output()).not.toContain(link.searchParams.get('sig')!);
    expect(host!.output()).not.toMatch(/skoid=|sig=/);
  }, 60000);

  it('a user delegation link expires', async () => {
    // the link builder in a process of its own with the same settings (this one does not trust the
    // certificate), as if the link had been made 61 s ago with the shortest lifetime allowed
    const blob = job.tasks[0].output.blob;
    const script = `
      const { Storage } = require('./dist/shared/storage/clients');
      const { resolveStorageConnection } = require('./dist/shared/storage/connection');
      const { resourceNames } = require('./dist/shared/storage/names');
      const storage = new Storage(resolveStorageConnection(), resourceNames());
      Promise.all([storage.results.link(${JSON.stringify(blob)}, 60, new Date(Date.now() - 61000)), storage.results.link(${JSON.stringify(blob)}, 60)])
        .then((links) => { process.stdout.write(JSON.stringify(links.map((l) => l.url))); process.exit(0); })
        .catch((err) => { console.error(err); process.exit(1); });`;
    // not spawnSync: the identity endpoint it asks for a token runs in this process
    const run = await promisify(execFile)(process.execPath, ['-e', script], { cwd: ROOT, env, timeout: 30000 });
    const [expired, fresh] = JSON.parse(run.stdout) as string[];
    expect(new URL(expired).searchParams.get('skoid')).not.toBeNull();
    expect((await request(expired)).status).toBe(403);
    expect((await request(fresh)).status).toBe(200); // the same link made now works: only its time differs
  }, 60000);
});
