/**
 * The running app with its storage gone: the local host (the built function files, as `npm start`
 * runs them) answers every data route with 503 problem+json and Retry-After at once, instead of a
 * 500 after the storage SDKs' retries, and health says which probe failed.
 */
import { startAzurite, type RunningAzurite } from '../../scripts/azurite';
import { HOST_MAIN, spawnApp, type HostProcess } from '../helpers/host';
import { photo } from '../helpers/images';
import { uniqueNamespace } from '../helpers/storage';

let azurite: RunningAzurite | undefined;
let host: HostProcess | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
  host = await spawnApp(
    HOST_MAIN,
    { AzureWebJobsStorage: azurite.connectionString, STORAGE_NAMESPACE: uniqueNamespace() },
    /Host listening on/,
  );
}, 60000);
afterAll(async () => {
  if (host?.child.exitCode === null) host.child.kill('SIGKILL');
  await azurite?.stop();
});

it('answers 503 with Retry-After on every data route while storage is down', async () => {
  const url = host!.url;
  expect((await fetch(`${url}/health`)).status).toBe(200);
  await azurite!.stop();
  const png = await photo(16, 16, 'png');
  const job = '0b6f4c1e-8d3a-4c57-9a51-2f1e0c9d7a11';
  const requests: [string, RequestInit?][] = [
    [`${url}/images`],
    [`${url}/images/a.png`],
    [`${url}/images/a.png`, { method: 'PUT', body: png, headers: { 'content-type': 'image/png' } }],
    [
      `${url}/jobs`,
      { method: 'POST', body: '{"filters":["grayscale"]}', headers: { 'content-type': 'application/json' } },
    ],
    [`${url}/jobs?filters=grayscale`, { method: 'POST', body: png, headers: { 'content-type': 'image/png' } }],
    [`${url}/jobs/${job}`],
    [`${url}/tasks/${job}_0000`],
    [`${url}/dead-letters`],
    [`${url}/dead-letters/light/requeue`, { method: 'POST' }],
    [`${url}/metrics`],
    [`${url}/workers`],
  ];
  for (const [target, init] of requests) {
    // A deadline, not a benchmark: the SDKs' default retries held these requests ~16 s.
    const res = await fetch(target, { ...init, signal: AbortSignal.timeout(8000) });
    const seen = { target, status: res.status, retryAfter: res.headers.get('retry-after') };
    expect(seen).toEqual({ target, status: 503, retryAfter: '5' });
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ type: 'urn:image-pipeline:problem:storage_unavailable', status: 503 });
  }
  const health = await fetch(`${url}/health`, { signal: AbortSignal.timeout(8000) });
  expect(health.status).toBe(503);
}, 60000);
