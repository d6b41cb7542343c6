/**
 * No secret in what the app prints or stores. The built local host runs with keys on
 * (LOCAL_HOST_AUTH=keys, a known function key and master key), a storage account whose key only this
 * test knows (Azurite's AZURITE_ACCOUNTS) and an Application Insights connection string whose
 * instrumentation key only this test knows (a fake ingestion endpoint). The test drives every kind
 * of work: uploads (PUT, raw and multipart jobs), jobs that succeed and fail, a hand-written poison
 * message, the metrics timer, dead letters and their requeue, 401s (a wrong key in the header and in
 * ?code=), 4xx problems, the dashboard and the result route. Then it looks for every form of every
 * secret, and any SAS signature or connection-string key, in the host's stdout and stderr, every
 * response (headers and body), every table entity, every container's and blob's metadata and tags,
 * the content of every blob that is not an image, and every queue message.
 *
 * Meant to carry a SAS, and so not searched for `sig=`: the result route's Location header and the
 * `result_url` of task and job JSON (short-lived read-only links to one result blob).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { HOST_MAIN, spawnApp, stopHost, waitFor, type HostProcess } from '../helpers/host';
import { FAKE_IKEY, startFakeIngestion, type FakeIngestion } from '../helpers/fake-ingestion';
import { photo } from '../helpers/images';
import { multipart } from '../helpers/http';
import { SecretScanner, secretForms, type Secret } from '../helpers/secrets';
import { uniqueNamespace } from '../helpers/storage';
import { resourceNames } from '../../shared/storage/names';

const NAMESPACE = uniqueNamespace();
const ACCOUNT = `acct${randomBytes(4).toString('hex')}`;
const SECRETS = {
  functionKey: `fk_${randomBytes(24).toString('base64url')}`,
  masterKey: `mk_${randomBytes(24).toString('base64url')}`,
  accountKey: randomBytes(64).toString('base64'),
  instrumentationKey: randomUUID(),
};
const secretList: Secret[] = Object.entries(SECRETS).map(([name, value]) => ({ name, value }));

let azurite: RunningAzurite;
let ingestion: FakeIngestion;
let host: HostProcess | undefined;
let connectionString: string;

beforeAll(async () => {
  // each kept as soon as it runs, so that afterAll stops it even when the other failed to start
  await Promise.all([
    startAzurite({ env: { AZURITE_ACCOUNTS: `${ACCOUNT}:${SECRETS.accountKey}` } }).then((a) => (azurite = a)),
    startFakeIngestion().then((i) => (ingestion = i)),
  ]);
  const endpoint = (port: number) => `http://127.0.0.1:${port}/${ACCOUNT}`;
  connectionString = [
    'DefaultEndpointsProtocol=http',
    `AccountName=${ACCOUNT}`,
    `AccountKey=${SECRETS.accountKey}`,
    `BlobEndpoint=${endpoint(azurite.ports.blob)}`,
    `QueueEndpoint=${endpoint(azurite.ports.queue)}`,
    `TableEndpoint=${endpoint(azurite.ports.table)}`,
  ].join(';');
}, 30000);

afterAll(async () => {
  if (host) await stopHost(host);
  await Promise.all([azurite?.stop(), ingestion?.stop()]);
});

interface Collected {
  readonly where: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** Every response the test received, to be searched once the run is over. */
const responses: Collected[] = [];

async function request(
  path: string,
  init: RequestInit & { /** function, master, none, or the literal key to send */ key?: string } = {},
): Promise<Collected> {
  const { key = 'function', ...rest } = init;
  const headers = new Headers(rest.headers);
  const value =
    key === 'function' ? SECRETS.functionKey : key === 'master' ? SECRETS.masterKey : key === 'none' ? '' : key;
  if (value) headers.set('x-functions-key', value);
  const res = await fetch(`${host!.url}${path}`, { ...rest, headers, redirect: 'manual' });
  const collected = {
    where: `${rest.method ?? 'GET'} /api${path.replace(/([?&]code=)[^&]*/, '$1…')} → ${res.status}`,
    status: res.status,
    headers: res.headers,
    body: Buffer.from(await res.arrayBuffer()),
  };
  responses.push(collected);
  return collected;
}

const jsonOf = (res: Collected) => JSON.parse(res.body.toString('utf8'));

/** A copy of a JSON value without `result_url` anywhere in it: the one field meant to carry a SAS. */
function withoutResultUrls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutResultUrls);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).flatMap(([k, v]) => (k === 'result_url' ? [] : [[k, withoutResultUrls(v)]])),
    );
  return value;
}

async function drive(): Promise<void> {
  const jpeg = await photo(64, 48, 'jpeg');
  const png = await photo(40, 30, 'png');

  // uploads: PUT (with a conflict, a replace and a delete), a raw job keyed by ?code=, a multipart job
  expect(
    (await request('/images/known.jpg', { method: 'PUT', body: jpeg, headers: { 'content-type': 'image/jpeg' } }))
      .status,
  ).toBe(201);
  expect(
    (await request('/images/known.jpg', { method: 'PUT', body: jpeg, headers: { 'content-type': 'image/jpeg' } }))
      .status,
  ).toBe(409);
  const replace = { method: 'PUT', body: png, headers: { 'content-type': 'image/png' } };
  expect((await request('/images/known.jpg?overwrite=true', replace)).status).toBe(200);
  expect((await request('/images/doomed.png', replace)).status).toBe(201);
  expect((await request('/images/doomed.png', { method: 'DELETE', key: 'function' })).status).toBe(401);
  expect((await request('/images/doomed.png', { method: 'DELETE', key: 'master' })).status).toBe(204);
  expect((await request('/images/doomed.png', { method: 'DELETE', key: 'master' })).status).toBe(404);
  const raw = await request(
    `/jobs?filters=grayscale&name=Holiday%20%C3%A9t%C3%A9.jpg&code=${encodeURIComponent(SECRETS.functionKey)}`,
    {
      method: 'POST',
      key: 'none',
      body: jpeg,
      headers: { 'content-type': 'image/jpeg' },
    },
  );
  expect(raw.status).toBe(202);
  const form = multipart(
    [
      { name: 'a photo.jpg', data: jpeg, type: 'image/jpeg' },
      { name: 'logo.png', data: png, type: 'image/png' },
    ],
    { filters: 'blur', output: '{"format":"webp"}' },
  );
  const multi = await request('/jobs', {
    method: 'POST',
    body: form.body,
    headers: { 'content-type': form.contentType },
  });
  expect(multi.status).toBe(202);
  const named = await request('/jobs', {
    method: 'POST',
    body: JSON.stringify({ images: ['known.jpg'], filters: [{ name: 'resize', width: 16 }] }),
    headers: { 'content-type': 'application/json' },
  });
  expect(named.status).toBe(202);

  // a job that fails: bytes that are not an image, stored behind the API's back
  const blobs = BlobServiceClient.fromConnectionString(connectionString);
  const imagesContainer = blobs.getContainerClient(jsonOf(await request('/images')).container);
  await imagesContainer
    .getBlockBlobClient('broken.jpg')
    .uploadData(Buffer.concat([jpeg.subarray(0, 200), randomBytes(200)]));
  const failing = await request('/jobs', {
    method: 'POST',
    body: JSON.stringify({ images: ['broken.jpg'], filters: ['grayscale'] }),
    headers: { 'content-type': 'application/json' },
  });
  expect(failing.status).toBe(202);

  // a poison message: hand-written garbage on a task queue
  const queues = QueueServiceClient.fromConnectionString(connectionString);
  await request('/filters', { key: 'none' });
  const lightQueue = resourceNames(NAMESPACE).queueOf('light');
  await queues.getQueueClient(lightQueue).sendMessage(Buffer.from('{"v":1,"task_id":"garbage"').toString('base64'));
  await queues.getQueueClient(lightQueue).sendMessage('not base64 at all !!!');

  // every job ends; the result route answers (a stream, or a redirect to a SAS link)
  const jobIds = [raw, multi, named, failing].map((r) => jsonOf(r).job_id as string);
  for (const id of jobIds) {
    await waitFor(
      `job ${id}`,
      async () => {
        const job = jsonOf(await request(`/jobs/${id}`));
        return ['succeeded', 'failed', 'partially_failed'].includes(job.status) ? job : undefined;
      },
      60000,
      300,
    );
  }
  expect(jsonOf(await request(`/jobs/${jsonOf(failing).job_id}`)).status).toBe('failed');
  const done = jsonOf(named).tasks[0].task_id as string;
  const task = jsonOf(await request(`/tasks/${done}`));
  expect(task.status).toBe('succeeded');
  const result = await request(`/tasks/${done}/result`);
  expect([200, 302]).toContain(result.status);
  if (result.status === 302) expect((await fetch(result.headers.get('location')!)).status).toBe(200);
  await request(`/tasks/${done}/result?download=stream`);
  await request(`/tasks/${jsonOf(failing).tasks[0].task_id}/result`);

  // dead letters, then their requeue with the master key (and refused with a wrong one)
  await waitFor(
    'the garbage message to be listed as a dead letter',
    async () => {
      const listing = jsonOf(await request('/dead-letters'));
      const letters = listing.capabilities.flatMap((c: { dead_letters: unknown[] }) => c.dead_letters);
      return letters.length > 0 ? true : undefined;
    },
    60000,
    500,
  );
  expect((await request('/dead-letters/light/requeue', { method: 'POST', key: 'wrong-key-0123456789' })).status).toBe(
    401,
  );
  expect([200, 404]).toContain(
    (await request('/dead-letters/light/requeue', { method: 'POST', key: 'master' })).status,
  );

  // the metrics timer has run; workers, metrics in both formats, history
  await waitFor(
    'a metrics snapshot',
    async () => {
      const metrics = await request('/metrics');
      return metrics.status === 200 && jsonOf(metrics).capabilities ? true : undefined;
    },
    30000,
    500,
  );
  await waitFor(
    'an Application Insights metric',
    async () => (ingestion.envelopes.length > 0 ? true : undefined),
    30000,
    250,
  );
  await request('/metrics?format=prometheus');
  await request('/metrics/history?minutes=5');
  await request('/workers');
  await request('/health', { key: 'none' });

  // 401: no key, a wrong key in the header, a wrong key in ?code=
  expect(
    (
      await request('/jobs', {
        method: 'POST',
        key: 'none',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      })
    ).status,
  ).toBe(401);
  expect((await request('/images/x.png', { method: 'PUT', key: 'not-the-key-0123456789', body: png })).status).toBe(
    401,
  );
  expect((await request('/jobs?code=not-the-key-0123456789', { method: 'POST', key: 'none', body: '{}' })).status).toBe(
    401,
  );
  expect(
    (await request(`/tasks?code=${encodeURIComponent(SECRETS.functionKey)}`, { method: 'DELETE', key: 'none' })).status,
  ).toBe(401);

  // 4xx problems
  await request('/jobs', { method: 'POST', body: '{"filters": [', headers: { 'content-type': 'application/json' } });
  await request('/jobs', {
    method: 'POST',
    body: JSON.stringify({ images: ['nope.jpg'], filters: ['blurr'] }),
    headers: { 'content-type': 'application/json' },
  });
  await request('/jobs', { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
  await request(`/tasks/${randomUUID()}_0000`);
  await request('/images/nope.png');
  await request('/images/..%2Fetc');
  await request('/dead-letters/nope/requeue', { method: 'POST', key: 'master' });

  // the dashboard page and every asset it (or its scripts) names
  const page = await request('/dashboard');
  expect(page.status).toBe(200);
  const assets = new Set([...page.body.toString().matchAll(/assets\/([\w.-]+)/g)].map((m) => m[1]));
  for (const name of [...assets]) {
    const asset = await request(`/dashboard/assets/${name}`);
    const map = /sourceMappingURL=([\w.-]+)/.exec(asset.body.toString())?.[1];
    if (map && !assets.has(map)) {
      assets.add(map);
      await request(`/dashboard/assets/${map}`);
    }
  }
  expect(assets.size).toBeGreaterThanOrEqual(3);
}

/** Everything the app stored: table entities, container and blob metadata and tags, non-image blobs, queue messages. */
async function scanStorage(scanner: SecretScanner): Promise<void> {
  const tableService = TableServiceClient.fromConnectionString(connectionString, { allowInsecureConnection: true });
  for await (const table of tableService.listTables()) {
    const client = TableClient.fromConnectionString(connectionString, table.name!, { allowInsecureConnection: true });
    for await (const entity of client.listEntities())
      scanner.scan(`table ${table.name} entity ${entity.partitionKey}/${entity.rowKey}`, JSON.stringify(entity));
  }
  const blobs = BlobServiceClient.fromConnectionString(connectionString);
  for await (const container of blobs.listContainers({ includeMetadata: true })) {
    scanner.scan(`container ${container.name} metadata`, JSON.stringify(container.metadata ?? {}));
    const client = blobs.getContainerClient(container.name);
    for await (const blob of client.listBlobsFlat({ includeMetadata: true, includeTags: true })) {
      const where = `blob ${container.name}/${blob.name}`;
      scanner.scan(`${where} metadata and tags`, JSON.stringify({ metadata: blob.metadata, tags: blob.tags }));
      if (!blob.properties.contentType?.startsWith('image/'))
        scanner.scan(`${where} content`, (await client.getBlobClient(blob.name).downloadToBuffer()).toString('latin1'));
    }
  }
  const queues = QueueServiceClient.fromConnectionString(connectionString);
  for await (const queue of queues.listQueues()) {
    const { peekedMessageItems } = await queues.getQueueClient(queue.name).peekMessages({ numberOfMessages: 32 });
    for (const m of peekedMessageItems) {
      scanner.scan(`queue ${queue.name} message ${m.messageId}`, m.messageText);
      scanner.scan(
        `queue ${queue.name} message ${m.messageId} (base64-decoded)`,
        Buffer.from(m.messageText, 'base64').toString('latin1'),
      );
    }
  }
}

function scanResponses(scanner: SecretScanner): void {
  for (const res of responses) {
    const isResultRoute = /^GET \/api\/tasks\/[^/]+\/result/.test(res.where);
    for (const [name, value] of res.headers) {
      if (!(isResultRoute && name === 'location')) scanner.scan(`${res.where} header ${name}`, value);
    }
    const type = res.headers.get('content-type') ?? '';
    let text = res.body.toString('latin1');
    if (/json/.test(type)) {
      try {
        text = JSON.stringify(withoutResultUrls(JSON.parse(res.body.toString('utf8'))));
      } catch {
        // not JSON after all: searched as it is
      }
    }
    scanner.scan(`${res.where} body`, text);
  }
}

it('finds a secret in every form it can take, and where it was', () => {
  const secret = { name: 'k', value: 'Abc/def+ghi=jkl0123456789' };
  const scanner = new SecretScanner([secret]);
  for (const pad of ['', 'x', 'xy'])
    scanner.scan(`base64 ${pad.length}`, Buffer.from(`${pad}{"key":"${secret.value}"}`).toString('base64'));
  scanner.scan('url', `https://x/?code=${encodeURIComponent(secret.value)}`);
  scanner.scan('sas', 'https://a.blob.core.windows.net/c/b?sv=2024&sp=r&sig=abcdefABCDEF0123%3D');
  scanner.scan('clean', 'nothing to see');
  expect(scanner.hits.map((h) => h.where).sort()).toEqual(['base64 0', 'base64 1', 'base64 2', 'sas', 'url']);
  expect(secretForms(secret).every((f) => f.text.length >= 12)).toBe(true);
});

function startHost(extra: NodeJS.ProcessEnv = {}): Promise<HostProcess> {
  return spawnApp(
    HOST_MAIN,
    {
      AzureWebJobsStorage: connectionString,
      STORAGE_NAMESPACE: NAMESPACE,
      LOCAL_HOST_AUTH: 'keys',
      LOCAL_HOST_FUNCTION_KEY: SECRETS.functionKey,
      LOCAL_HOST_MASTER_KEY: SECRETS.masterKey,
      METRICS_SCHEDULE: '*/2 * * * * *',
      WORKER_HEARTBEAT_SECONDS: '1',
      APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString.replace(FAKE_IKEY, SECRETS.instrumentationKey),
      NODE_EXTRA_CA_CERTS: ingestion.caFile,
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
      APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
      OTEL_SERVICE_NAME: '',
      ...extra,
    },
    /Host listening on/,
  );
}

async function stopAndReadOutput(): Promise<string> {
  host!.child.kill('SIGTERM');
  await host!.exited;
  return host!.output();
}

/**
 * The app's own queue messages, left in the queues: a second host that runs only the HTTP functions
 * (as an API-only Deployment does) takes a job and requeues the dead letters, and no worker takes
 * them off the queues before they are searched.
 */
async function leaveMessagesQueued(firstOutput: string): Promise<string> {
  const httpFunctions = [...firstOutput.matchAll(/^ {2}(\w+): [A-Z,]+ http:/gm)].map((m) => m[1]);
  expect(httpFunctions).toContain('submitJob');
  host = await startHost(
    Object.fromEntries(httpFunctions.map((name, i) => [`AzureFunctionsJobHost__functions__${i}`, name])),
  );
  const job = await request('/jobs', {
    method: 'POST',
    body: JSON.stringify({ images: ['known.jpg'], filters: ['grayscale', 'blur'], output: { format: 'avif' } }),
    headers: { 'content-type': 'application/json' },
  });
  expect(job.status).toBe(202);
  await request('/dead-letters/light/requeue', { method: 'POST', key: 'master' });
  return stopAndReadOutput();
}

it('no key, account key, instrumentation key or SAS signature in logs, answers, metrics, dead letters, storage or the dashboard', async () => {
  host = await startHost();
  await drive();
  // the telemetry reached the fake endpoint with this test's key: the secret was in use
  expect(ingestion.envelopes.some((e) => e.iKey === SECRETS.instrumentationKey)).toBe(true);

  // the hosts' whole output (last words included), and storage as they leave it
  const first = await stopAndReadOutput();
  const second = await leaveMessagesQueued(first);
  const scanner = new SecretScanner(secretList);
  scanner.scan('host stdout/stderr', first);
  scanner.scan('host stdout/stderr (HTTP functions only)', second);
  await scanStorage(scanner);
  scanResponses(scanner);

  const places = [...scanner.scanned.keys()];

  const looked = [
    /^table \w*tasks /,
    /^table \w*deadletters /,
    /^table \w*metrics /,
    /^table \w*workers /,
    /^blob .* metadata and tags$/,
    /^queue \w+-tasks-heavy message/,
    /dashboard\/assets\/dashboard\.js → 200 body/,
    /format=prometheus → 200 body/,
    /dead-letters → 200 body/,
    /^host stdout/,
  ];
  expect(looked.filter((where) => !places.some((p) => where.test(p)))).toEqual([]);
  expect(scanner.report()).toEqual([]);
}, 150000);
